# Two commands matter: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo_out

.PHONY: install test test-integration test-slurm check-default demo lint format bench gpu-check clean

# Every package at the version in constraints.txt, so that make demo gives the same model on
# every machine and every day (a newer numpy or pillow moves its last digits).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch and torchvision together, pinned: this pair installs from local disk here.
	$(PY) -m pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -c constraints.txt -e '.[test,detect]'
	# hand-detection models only (Apache-2.0): the last mediapipe wheel that ships them
	$(PY) -m pip install -q -c constraints.txt --no-deps mediapipe==0.10.21
	touch $(STAMP)

install: $(STAMP)

# Under 10 minutes on a slow 2-core machine: the five tests of over 20 s each (torchrun, the
# paper network under bf16, an ablation set, the cpu recipe learning a few images by heart,
# digit-train's command line on the synthetic data) are `test-integration`'s; CI runs both.
test: install
	$(PY) -m pytest -q -m "not integration"

test-integration: install
	$(PY) -m pytest -q -m integration

# build-masks as a Slurm array job plus merge, through real sbatch on a one-node Slurm started
# here (root; installs slurm-wlm and munge with apt; loopback only): scripts/slurm/test_slurm.sh
test-slurm: install
	PY=$(PY) scripts/slurm/test_slurm.sh

# Every picture of the synthetic default (created first if absent, about 30 s) can be seen: none
# is black (render/synthetic_data/visibility.py).
check-default: install
	$(PY) -m render.synthetic_data.visibility

# The main job on the synthetic default (created on first use under $$DIGIT_HOME, default
# ~/.cache/digit): part masks and pictures of them, the `cpu` recipe trained for DEMO_STEPS
# optimizer steps (ImageNet-pretrained EfficientNet-Lite0), the official evaluation on the
# unseen test split next to two references (constant mean pose, untrained network), learning
# curves, pictures of the predictions and MANO meshes fitted to them, all in $(DEMO_OUT)/. The
# training counts steps, not minutes, and runs on DEMO_THREADS threads, so the model does not
# depend on the machine's load or core count; the time it took is printed at the end. 1,400
# steps of the 96 px preset: 1.4 mm test MPJPE and 0.014 handedness better than 1,200 (46.4
# against 47.9 mm, 0.918 against 0.904; BENCHMARKS.md, "Two slots, one place"); the whole
# demo about 13 minutes on a quiet 2-core Intel machine (1,200 steps: 11 min 49 s); 1,600 steps
# would take it past 15 (BENCHMARKS.md, "96 px crops").
DEMO_STEPS ?= 1400
DEMO_THREADS ?= 2
demo: install
	@mkdir -p $(DEMO_OUT)
	@date +%s > $(DEMO_OUT)/.demo_started
	$(VENV)/bin/digit-render build-masks --split train --out $(DEMO_OUT)/masks_train.h5 --overwrite
	$(VENV)/bin/digit-render build-masks --split test --out $(DEMO_OUT)/masks_test.h5 --overwrite
	$(VENV)/bin/digit-render verify $(DEMO_OUT)/masks_train.h5
	$(VENV)/bin/digit-render show $(DEMO_OUT)/masks_train.h5 --index 305 --out $(DEMO_OUT)/mask_305.png
	$(VENV)/bin/digit-render preview --split train --count 12 --out $(DEMO_OUT)/train_preview.png
	$(VENV)/bin/digit-render hand-gallery --out $(DEMO_OUT)/hand_gallery.png
	rm -rf $(DEMO_OUT)/run
	OMP_NUM_THREADS=$(DEMO_THREADS) $(VENV)/bin/digit-train --preset cpu --masks $(DEMO_OUT) \
		--max-steps $(DEMO_STEPS) --out $(DEMO_OUT)/run
	OMP_NUM_THREADS=$(DEMO_THREADS) $(VENV)/bin/digit-eval --checkpoint $(DEMO_OUT)/run/best.pt \
		--split test --masks $(DEMO_OUT) --reference mean-pose --reference untrained --workers 1 \
		--out $(DEMO_OUT)/eval
	$(VENV)/bin/digit-demo --split test --count 6 --checkpoint $(DEMO_OUT)/run/best.pt --out $(DEMO_OUT)/predictions \
		--meshes --overwrite
	cp $(DEMO_OUT)/run/learning_curves.png $(DEMO_OUT)/learning_curves.png
	@echo "pictures:"; ls -1 $(DEMO_OUT)/*.png $(DEMO_OUT)/eval/*.png $(DEMO_OUT)/predictions/*.png
	@s=$$(( $$(date +%s) - $$(cat $(DEMO_OUT)/.demo_started) )); \
		echo "make demo: done in $$((s / 60)) min $$((s % 60)) s ($(DEMO_STEPS) training steps)"

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m benchmarks.run_all

# Every CUDA path once, within 8 minutes on one GPU: gpu_check_out/gpu_check.{json,md}
# (benchmarks/gpu_check). Without a CUDA device: one SKIPPED line, exit 0.
gpu-check: install
	@$(PY) -m benchmarks.gpu_check --out gpu_check_out

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
