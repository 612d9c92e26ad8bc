# Two commands matter: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo_out

.PHONY: install test demo lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch and torchvision together, pinned: this pair installs from local disk here.
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest -q

# The synthetic default dataset is created on first use under $$DIGIT_HOME (~/.cache/digit).
demo: install
	@mkdir -p $(DEMO_OUT)
	$(VENV)/bin/digit-render build-masks --split train --out $(DEMO_OUT)/masks_train.h5 --overwrite
	$(VENV)/bin/digit-render verify $(DEMO_OUT)/masks_train.h5
	$(VENV)/bin/digit-render show $(DEMO_OUT)/masks_train.h5 --index 200 --out $(DEMO_OUT)/mask_200.png
	$(VENV)/bin/digit-render show $(DEMO_OUT)/masks_train.h5 --index 305 --out $(DEMO_OUT)/mask_305.png
	$(VENV)/bin/digit-render preview --split train --count 12 --out $(DEMO_OUT)/train_preview.png
	$(VENV)/bin/digit-render hand-gallery --out $(DEMO_OUT)/hand_gallery.png
	@echo "pictures:"; ls -1 $(DEMO_OUT)/*.png

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
