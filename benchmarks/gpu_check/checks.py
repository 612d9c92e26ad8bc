"""The measurements of gpu_check, each a function of a device (CUDA on a GPU machine; the CPU
in tests, on tiny sizes) that returns a `CheckResult`. Timings synchronise the device."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.gpu_check.compare import PixelDiff, differing_pixels, labels_identical, reason
from benchmarks.gpu_check.report import FAIL, PASS, CheckResult

LOSS_TOLERANCE = {torch.bfloat16: 0.05, torch.float16: 0.02, None: 0.02}
"""Largest relative difference allowed between a mode's loss and the fp32 reference's at every
step, from the same weights and batches: bf16 keeps 8 bits of mantissa (relative rounding
0.4 % per operation), fp16 11; "off" on CUDA may use TF32 convolutions (10 bits)."""


LISTED = 100_000
"""Differing pixels written to the JSON at most (about 200 bytes each)."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int = 1) -> float:
    """Seconds per call of fn(), best of `repeats` (after the caller's warm-up)."""
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


# --------------------------------------------------------------------------- rasterizer
@dataclass(frozen=True)
class Scenes:
    """Posed two-hand scenes of the first images of a split: verts (B, V, 3) float64 mm, faces
    (F, 3), face_labels (F,), K (B, 3, 3), hw (B, 2), split (faces of the right hand)."""

    verts: np.ndarray
    faces: np.ndarray
    face_labels: np.ndarray
    K: np.ndarray
    hw: np.ndarray
    split: int


def split_scenes(root: Path, split: str, count: int) -> Scenes:
    from benchmarks.bench_build_stages import split_setup
    from render.mask_cache.scene import piece_input, pose_piece

    model, topo, data = split_setup(root, split)
    inp = piece_input(data, 0, min(count, len(data)))
    posed = pose_piece(model, inp)
    return Scenes(
        np.concatenate(posed.verts, axis=1), topo.faces, topo.face_labels, inp.K, inp.hw,
        len(topo.hand_faces[0]),
    )  # fmt: skip


def raster_check(scenes: Scenes, device: str, repeats: int = 3, explain_images: int = 3):
    """The torch rasterizer on `device` against numba on the same scenes: labels and
    pix_to_face byte-identical, or every differing pixel with its reason (the reference
    rasterizer consulted on the first `explain_images` images with differences); masks/s of
    both (labels, all CPU cores for numba)."""
    from render.raster import RasterSettings, rasterize, rasterize_labels

    dev = torch.device(device)
    s = scenes
    numba = RasterSettings(backend="numba")
    torch_dev = RasterSettings(backend="torch", device=device)
    args = (s.verts, s.faces, s.face_labels, s.K, s.hw)
    lab_n = rasterize_labels(*args, settings=numba)
    lab_t = rasterize_labels(*args, settings=torch_dev)  # also the warm-up
    fr_n = rasterize(s.verts, s.faces, s.K, s.hw, settings=numba)
    fr_t = rasterize(s.verts, s.faces, s.K, s.hw, settings=torch_dev)
    diffs = differing_pixels(
        fr_n.pix_to_face, fr_n.depth, fr_t.pix_to_face, fr_t.depth, names=("numba", "torch")
    )
    images = sorted({d.image for d in diffs})[:explain_images]
    if images:  # the slow exact reference on the first images that differ
        ref = rasterize(
            s.verts[images], s.faces, s.K[images], s.hw[images],
            settings=RasterSettings(backend="reference"),
        ).pix_to_face  # fmt: skip
        diffs = [with_reference(d, ref, images) for d in diffs]
    n = len(s.verts)
    t_numba = timed(lambda: rasterize_labels(*args, settings=numba), torch.device("cpu"), repeats)
    tv = torch.from_numpy(s.verts).to(dev)
    targs = [torch.from_numpy(np.asarray(x)).to(dev) for x in (s.faces, s.face_labels, s.K)]
    hw_t = torch.from_numpy(np.asarray(s.hw)).to(dev)
    t_torch = timed(
        lambda: rasterize_labels(tv, targs[0], targs[1], targs[2], hw_t, settings=torch_dev),
        dev,
        repeats,
    )
    same = labels_identical(lab_n, lab_t) and not diffs
    return CheckResult(
        "raster",
        PASS if same else FAIL,
        {
            "scenes (images)": n,
            "labels byte-identical": labels_identical(lab_n, lab_t),
            "differing pixels (pix_to_face)": len(diffs),
            f"torch on {dev.type} masks/s": n / t_torch,
            "numba (CPU, all cores) masks/s": n / t_numba,
            f"torch {dev.type} / numba speed": t_numba / t_torch,
        },
        ""
        if same
        else f"{len(diffs)} pixels differ; the first {min(len(diffs), LISTED)} "
        "with their reasons in the JSON",
        {
            "differing_pixels": [d.__dict__ for d in diffs[:LISTED]],
            "listed": min(len(diffs), LISTED),
        },
    )


def with_reference(d: PixelDiff, ref: np.ndarray, images: list[int]) -> PixelDiff:
    """`d` with the reference rasterizer's face, where `ref` (len(images), h, w) holds the
    reference's pix_to_face of `images` (its own size: beyond it is background)."""
    if d.image not in images:
        return d
    k = images.index(d.image)
    inside = d.row < ref.shape[1] and d.col < ref.shape[2]
    fref = int(ref[k, d.row, d.col]) if inside else -1
    why = reason(d.face_a, d.face_b, d.depth_a, d.depth_b, fref, ("numba", "torch"))
    return replace(d, face_ref=fref, reason=why)


# --------------------------------------------------------------------------- build-masks
def same_datasets(a: Path, b: Path) -> list[str]:
    """Names of the datasets whose values differ between two cache files."""
    import h5py

    def values(ds) -> list | bytes:
        data = ds[...]
        return data.tolist() if data.dtype == object else data.tobytes()

    with h5py.File(a, "r") as f, h5py.File(b, "r") as g:
        return [k for k in f if k not in g or values(f[k]) != values(g[k])]


def build_check(
    root: Path, split: str, device: str, work: Path, limit: int | None = None
) -> CheckResult:
    """`build-masks --device DEVICE` of the split (its first `limit` images) end to end
    (images/s), next to the numba build (the file must hold the same values), and the share of
    its time spent in the CPU-side stages (MANO, checksums, compression) measured alone."""
    from benchmarks.bench_build_stages import stage_times
    from render.mask_cache.builder import build_masks
    from render.raster import RasterSettings

    out_dev, out_cpu = work / f"masks_{device}.h5", work / "masks_numba.h5"
    backend = "torch"
    common = {"limit": limit, "overwrite": True, "show_progress": False}
    warm = {**common, "limit": min(limit or 8, 8)}
    build_masks(split, root, out=out_dev, backend=backend, device=device, **warm)
    r = build_masks(split, root, out=out_dev, backend=backend, device=device, **common)
    r_cpu = build_masks(split, root, out=out_cpu, **common)
    differ = same_datasets(out_dev, out_cpu)
    st = stage_times(root, split, RasterSettings(backend=backend, device=device), limit)
    cpu_side = st["mano"][0] + st["crc"][0] + st["compress"][0]
    return CheckResult(
        "build",
        PASS if not differ else FAIL,
        {
            "images": r.images,
            f"build-masks --device {device} images/s": r.images / r.seconds,
            "build-masks numba (CPU) images/s": r_cpu.images / r_cpu.seconds,
            "rasterizer pass alone images/s": r.images / st["labels_counts"][0],
            "CPU-side stages (MANO, crc, deflate) s": cpu_side,
            "CPU-side share of the build": cpu_side / r.seconds,
            "same datasets as the numba build": not differ,
        },
        "" if not differ else f"datasets differ from the numba build: {', '.join(differ)}",
    )


# --------------------------------------------------------------------------- training
def _float32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.is_floating_point() else x


def synthetic_batch(batch: int, size: int, seed: int, device: torch.device):
    """A Batch of plausible random samples: images, both hands' joints inside the crop about
    600 mm away, part labels in blobs (B, size/2, size/2); the same for the same seed."""
    from digit.data.batch import Batch
    from digit.targets import build_pose_targets

    g = torch.Generator().manual_seed(seed)
    joints = 0.2 * size + 0.6 * size * torch.rand(batch, 42, 2, generator=g)
    depth = 600.0 + 40.0 * torch.rand(batch, 42, generator=g)
    targets = build_pose_targets(
        joints.double(), depth.double(), torch.ones(batch, 42, dtype=torch.bool),
        torch.ones(batch, 2), torch.ones(batch, dtype=torch.bool), crop_size=size,
    )  # fmt: skip  # as digit.data.dataset.collate: crop pixels of this input size
    # float32 targets, as the data pipeline's (build_pose_targets keeps the float64 input's)
    targets = type(targets)(**{f.name: _float32(getattr(targets, f.name)) for f in fields(targets)})
    half = size // 2
    coarse = torch.randint(0, 33, (batch, 1, 8, 8), generator=g).float()
    segm = torch.nn.functional.interpolate(coarse, size=(half, half)).long()[:, 0]
    z = torch.zeros(batch)
    b = Batch(
        image=torch.rand(batch, 3, size, size, generator=g), targets=targets, segm_target=segm,
        segm_valid=torch.ones(batch, dtype=torch.bool), index=z.long(), image_id=z.long(),
        crop_affine=torch.zeros(batch, 2, 3), joints_cam=torch.zeros(batch, 42, 3),
        joint_valid=torch.ones(batch, 42, dtype=torch.bool), abs_depth=torch.zeros(batch, 2),
        focal=torch.ones(batch, 2), princpt=torch.zeros(batch, 2), hand_type_code=z.long() + 2,
        hand_type_valid=torch.ones(batch, dtype=torch.bool), lr_iou=z,
    )  # fmt: skip
    return b.to(device)


def train_steps(cfg, state: dict, batches: list, device: torch.device, mode: str, tf32: bool):
    """Train a copy of the network from `state` on `batches` as the trainer's step does
    (autocast `mode`, GradScaler for fp16, Adam of `make_optimizer`); returns (losses per
    step, seconds per step after the first, peak CUDA bytes or None)."""
    from digit.losses import digit_loss
    from digit.model import DigitNet
    from digit.train.loop import amp_dtype, make_optimizer

    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    net = DigitNet(cfg.network, init_backbone=False)
    net.load_state_dict(state)
    net = net.to(device, memory_format=layout).train()
    optimizer = make_optimizer(net, cfg, device)
    dtype = amp_dtype(mode, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, times = [], []
    for batch in batches:
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = net(batch.image.contiguous(memory_format=layout))
        loss, _ = digit_loss(out, batch.targets, batch.segm_target, batch.segm_valid, cfg.loss,
                             cfg.loss_average)  # fmt: skip
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    per_step = float(np.mean(times[1:])) if len(times) > 1 else float("nan")
    return losses, per_step, peak


def loss_agreement(reference: list[float], other: list[float]) -> float:
    """Largest relative difference between two loss sequences, step by step."""
    ref, oth = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if ref.shape != oth.shape or not np.isfinite(oth).all():
        return float("inf")
    return float(np.max(np.abs(oth - ref) / np.maximum(np.abs(ref), 1e-12)))


def train_check(cfg, device: str, batch: int, steps: int, modes: tuple[str, ...]) -> CheckResult:
    """`steps` training steps of `cfg`'s network at `batch` from the same weights and batches
    under fp32 (TF32 off: the reference) and each autocast mode: steps/s, images/s, peak memory,
    and each mode's losses within `LOSS_TOLERANCE` of the reference's."""
    from digit.model import DigitNet
    from digit.train.loop import amp_dtype

    dev = torch.device(device)
    torch.manual_seed(cfg.seed)
    state = copy.deepcopy(DigitNet(cfg.network, init_backbone=False).state_dict())
    size = cfg.network.input_size
    batches = [synthetic_batch(batch, size, k, dev) for k in range(steps)]
    tf32_before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        ref, ref_s, _ = train_steps(cfg, state, batches, dev, "off", tf32=False)
        figures = {f"fp32 reference: s/step at batch {batch}": ref_s}
        worst, ok = {}, True
        for mode in modes:
            losses, sec, peak = train_steps(cfg, state, batches, dev, mode, tf32=tf32_before[0])
            dtype = amp_dtype(mode, dev)
            name = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16+scaler"}[dtype]
            diff = loss_agreement(ref, losses)
            tol = LOSS_TOLERANCE[dtype]
            ok &= diff <= tol
            worst[mode] = diff
            figures[f"{name}: steps/s"] = 1.0 / sec
            figures[f"{name}: images/s"] = batch / sec
            if peak is not None:
                figures[f"{name}: peak memory GiB"] = peak / 2**30
            figures[f"{name}: loss vs fp32 (max rel., tol {tol})"] = diff
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32_before
    return CheckResult(
        "train",
        PASS if ok else FAIL,
        figures,
        f"{cfg.preset} preset ({cfg.network.backbone}, {size} px), batch {batch}, {steps} steps "
        "from the same weights and batches (synthetic); steps/s over the steps after the first",
        {"reference_losses": ref, "worst_relative_difference": worst},
    )


def inference_check(cfg, device: str, batches: tuple[int, ...], repeats: int) -> CheckResult:
    """Images/s of the network in eval mode (no_grad), fp32 and the trainer's "auto" autocast,
    at each batch size; outputs finite."""
    from digit.model import DigitNet
    from digit.train.loop import amp_dtype

    dev = torch.device(device)
    net = DigitNet(cfg.network, init_backbone=False).to(dev).eval()
    size = cfg.network.input_size
    figures, finite = {}, True
    auto = amp_dtype("auto", dev)
    for dtype in dict.fromkeys([None, auto]):
        name = "fp32" if dtype is None else str(dtype).replace("torch.", "")
        for b in batches:
            x = torch.rand(b, 3, size, size, device=dev)

            def forward(x=x, dtype=dtype):
                with (
                    torch.no_grad(),
                    torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None),
                ):
                    return net(x)

            out = forward()  # warm-up
            finite &= bool(torch.isfinite(out.joints_uvd).all())
            figures[f"{name}, batch {b}: images/s"] = b / timed(forward, dev, repeats)
    return CheckResult(
        "inference",
        PASS if finite else FAIL,
        figures,
        f"{cfg.preset} network ({cfg.network.backbone}, {size} px), eval, best of {repeats}; the "
        "paper: 24 FPS on a Titan RTX",
    )


# --------------------------------------------------------------------------- torchrun
def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_check(device: str, procs: int, timeout_s: float = 180) -> CheckResult:
    """`torchrun --nproc_per_node procs` of `ddp_worker` on 127.0.0.1 (static rendezvous,
    sockets on the loopback interface): the trainer's `distributed.setup` (NCCL on CUDA, gloo
    on CPU), an all-reduce and one DDP step; every rank must report the expected values."""
    expected_backend = "nccl" if device.startswith("cuda") else "gloo"
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {
            "MASTER_ADDR": "127.0.0.1",
            "NCCL_SOCKET_IFNAME": "lo",
            "GLOO_SOCKET_IFNAME": "lo",
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
            "--nproc_per_node", str(procs), "--master-addr", "127.0.0.1",
            "--master-port", str(free_loopback_port()),
            "-m", "benchmarks.gpu_check.ddp_worker", device, tmp,
        ]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
        seconds = time.perf_counter() - t0
        reports = [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("rank*.json"))]
    ok = (
        done.returncode == 0
        and len(reports) == procs
        and all(r["backend"] == expected_backend and r["ok"] for r in reports)
    )
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return CheckResult(
        "ddp",
        PASS if ok else FAIL,
        {
            "processes": procs,
            "backend": ", ".join(sorted({r["backend"] for r in reports})) or "none",
            "ranks reporting": len(reports),
            "all-reduce and DDP step agree": all(r["ok"] for r in reports) and bool(reports),
            "torchrun wall s": seconds,
        },
        "" if ok else f"torchrun exit {done.returncode}: {' / '.join(tail)}",
        {"reports": reports},
    )
