"""DIGIT network speed and memory on this machine's CPU (or a CUDA device if asked).

    python -m benchmarks.bench_network [--cases paper-256,tiny-256,tiny-128] [--batch 2]
                                       [--repeats 3] [--device cpu|cuda]

Per case (a preset or a backbone name for the `digit` variant, and an input size, e.g.
efficientnet_lite0_fpn-128): forward time per image (eval, no_grad), forward+backward time per
image (train mode, a loss touching every output), and peak memory. On CPU the peak is the
process's peak resident set size, each case run in a fresh process so the numbers do not mix;
"model" is the resident size after building the network, the forward / train columns the peak
above it. On CUDA, torch's peak allocated memory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
import warnings
from queue import Empty

import torch

from benchmarks.options import Parser, positive_int, run_main
from core.errors import DigitError
from digit.model import DigitNet, NetworkConfig, count_parameters
from digit.model.config import NETWORK_PRESETS


def _rss_mb() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _rss_mb()


def run_case(preset: str, size: int, batch: int, repeats: int, device_name: str) -> dict:
    """Time one configuration (`preset`: a preset or a backbone name, `digit` variant);
    returns a dict of the measured numbers."""
    device = torch.device(device_name)
    if preset in NETWORK_PRESETS:
        config = NetworkConfig.preset(preset)
    else:
        config = NetworkConfig(backbone=preset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = DigitNet(config, init_backbone=False).to(device)
    images = torch.rand(batch, 3, size, size, device=device)
    base = _peak_mb(device)

    def forward() -> None:
        with torch.no_grad():
            net(images)

    def train_step() -> None:
        out = net(images)
        loss = out.joints_hm.mean() + out.rel_root_depth_bins.mean() + out.segm_logits.mean()
        loss.backward()
        net.zero_grad(set_to_none=True)

    result = {"preset": preset, "size": size, "batch": batch, "params": count_parameters(net)}
    for name, step, mode in (("forward", forward, False), ("train", train_step, True)):
        net.train(mode)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step()  # warm-up
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        _sync(device)
        result[f"{name}_ms_per_image"] = (time.perf_counter() - start) / repeats / batch * 1e3
        result[f"{name}_peak_mb"] = _peak_mb(device) - (0.0 if device.type == "cuda" else base)
    result["model_mb"] = base
    return result


def _worker(args: tuple, queue: mp.Queue) -> None:
    try:
        queue.put(run_case(*args))
    except Exception as exc:  # said by the parent in one line
        queue.put(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def parse_cases(text: str) -> list[tuple[str, tuple[str, int]]]:
    """--cases "tiny-128,paper-256" -> [(case, (preset or backbone, input size)), ...]."""
    cases = []
    for case in text.split(","):
        name, _, size = case.strip().rpartition("-")
        if not name or not size.isdigit() or int(size) < 1:
            raise argparse.ArgumentTypeError(f"expected PRESET-SIZE like tiny-128, got {case!r}")
        cases.append((case.strip(), (name, int(size))))
    return cases


def _in_child(ctx, job: tuple, case: str) -> dict:
    """`run_case(*job)` in a fresh process; its failure (or death) is one DigitError line, and
    Ctrl-C ends it too."""
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(job, queue))
    proc.start()
    try:
        r = None
        while r is None:
            try:
                r = queue.get(timeout=1.0)
            except Empty:
                if not proc.is_alive():
                    raise DigitError(
                        f"{case}: the measuring process died (exit {proc.exitcode})"
                    ) from None
        proc.join()
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join()
    if isinstance(r, str):
        raise DigitError(f"{case}: {r}")
    return r


def main(argv: list[str] | None = None) -> list[dict]:
    parser = Parser(prog="bench_network", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=parse_cases, default="paper-256,tiny-256,tiny-128")
    parser.add_argument("--batch", type=positive_int, default=2)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    results = []
    threads = torch.get_num_threads()
    print(f"device {args.device}, torch {torch.__version__}, {threads} CPU threads")
    header = (
        f"{'case':<26} {'params':>11} {'fwd ms/img':>11} {'fwd+bwd ms/img':>15} "
        f"{'model MB':>9} {'fwd peak MB':>12} {'train peak MB':>14}"
    )
    print(header)
    for case, (preset, size) in args.cases:
        r = _in_child(ctx, (preset, size, args.batch, args.repeats, args.device), case)
        results.append(r)
        print(
            f"{case:<26} {r['params']:>11,} {r['forward_ms_per_image']:>11.1f} "
            f"{r['train_ms_per_image']:>15.1f} {r['model_mb']:>9.0f} "
            f"{r['forward_peak_mb']:>12.0f} {r['train_peak_mb']:>14.0f}"
        )
    return results


if __name__ == "__main__":
    sys.exit(run_main("bench_network", main))
