"""`make gpu-check`: every CUDA path of the project run once, in one short go, with figures.

    python -m benchmarks.gpu_check [--out DIR] [--budget-s 480] [--device cuda]

Without a CUDA device it prints one line, ``make gpu-check: SKIPPED, no CUDA device``, and
exits 0. With one it runs, within the time budget: the torch rasterizer on CUDA against numba
on the same scenes (`checks.raster_check`), `build-masks --device cuda` on a synthetic split
(`checks.build_check`), the paper preset's training steps under each autocast mode
(`checks.train_check`), the paper network's inference (`checks.inference_check`) and torchrun
with NCCL (`checks.ddp_check`); then writes ``gpu_check.json`` and ``gpu_check.md`` (a table
for BENCHMARKS.md). A check that did not run is reported as not run, never as passed.

Modules: `report` (results, their aggregation, the JSON and the table: pure), `compare` (mask
comparison and the reason for each differing pixel: pure), `checks` (the measurements, on any
device), `ddp_worker` (what each torchrun process runs), `run` (settings, skip, order, budget).
"""
