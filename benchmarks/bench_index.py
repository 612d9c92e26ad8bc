"""Indexing time and memory of `InterHandSplit` on generated annotation files.

Writes, in a temporary folder, data/camera/joint_3d/MANO files in InterHand2.6M's schema
(annotations only, no images) for each size, then indexes each in a fresh subprocess and
prints wall time, peak RSS growth (VmHWM) and retained RSS growth (before and after glibc's
malloc_trim, which returns the freed parse memory), also per 100k images.

    .venv/bin/python benchmarks/bench_index.py [--sizes 20000 50000 100000] [--cameras 40]

`--cameras` is how many cameras see each time frame (the real data has tens; 1 is the worst
case for the frame table, one row per image).
"""

import argparse
import ctypes
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.options import Parser, positive_int, run_main


def _status_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, KiB. VmHWM, unlike ru_maxrss, does not
    inherit the parent's peak across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def write_split(folder: Path, n_images: int, cameras_per_frame: int, seed: int = 0) -> dict:
    """A minimal writer of the four annotation files; returns their paths by role."""
    rng = np.random.default_rng(seed)
    n_frames = -(-n_images // cameras_per_frame)
    frames_per_capture = 2000
    cam_names = [str(400000 + k) for k in range(cameras_per_frame)]
    images, annotations, joints, mano = [], [], {}, {}
    cameras: dict = {}
    for f in range(n_frames):
        capture, frame_idx = f // frames_per_capture, 100 + 3 * (f % frames_per_capture)
        c, fr = str(capture), str(frame_idx)
        if c not in cameras:
            cameras[c] = {
                "campos": {n: rng.normal(0, 500, 3).tolist() for n in cam_names},
                "camrot": {n: np.linalg.qr(rng.normal(size=(3, 3)))[0].tolist() for n in cam_names},
                "focal": {n: [1250.0, 1250.0] for n in cam_names},
                "princpt": {n: [167.0, 256.0] for n in cam_names},
            }
        hand_type = ("right", "left", "interacting")[f % 3]
        valid3d = [[hand_type != "left"]] * 21 + [[hand_type != "right"]] * 21
        world = rng.normal(0, 80, (42, 3)) + np.array([0.0, 0.0, 1000.0])
        world[[not v[0] for v in valid3d]] = 1.0
        joints.setdefault(c, {})[fr] = {
            "world_coord": world.tolist(),
            "joint_valid": valid3d,
            "hand_type": hand_type,
            "hand_type_valid": True,
        }
        fit = {"pose": rng.normal(size=48).tolist(), "shape": [0.0] * 10, "trans": [0, 0, 1.0]}
        mano.setdefault(c, {})[fr] = {
            "right": fit if hand_type != "left" else None,
            "left": fit if hand_type != "right" else None,
        }
        seq = f"{capture:04d}_{hand_type}_sequence_name"
        for name in cam_names:
            image_id = len(images)
            if image_id >= n_images:
                break
            portrait = int(name) % 2 == 0
            images.append(
                {
                    "id": image_id,
                    "file_name": f"Capture{capture}/{seq}/cam{name}/image{frame_idx:04d}.jpg",
                    "width": 334 if portrait else 512,
                    "height": 512 if portrait else 334,
                    "capture": capture,
                    "subject": capture,
                    "seq_name": seq,
                    "camera": name,
                    "frame_idx": frame_idx,
                }
            )
            annotations.append(
                {
                    "id": image_id + 10_000_000,
                    "image_id": image_id,
                    "bbox": rng.uniform(0, 200, 4).tolist(),
                    "joint_valid": [[int(v[0])] for v in valid3d],
                    "hand_type": hand_type,
                    "hand_type_valid": 1,
                }
            )
    paths = {role: folder / f"InterHand2.6M_bench_{role}.json" for role in ("data", "camera")}
    paths["joint_3d"] = folder / "InterHand2.6M_bench_joint_3d.json"
    paths["mano"] = folder / "InterHand2.6M_bench_MANO_NeuralAnnot.json"
    payload = {
        "data": {"images": images, "annotations": annotations},
        "camera": cameras,
        "joint_3d": joints,
        "mano": mano,
    }
    for role, obj in payload.items():
        paths[role].write_text(json.dumps(obj))
    return paths


def measure(folder: Path) -> dict:
    """Index the files in `folder` (run in a fresh process): time and memory."""
    from core.interhand.reader import InterHandSplit

    def path(role: str) -> Path:
        return folder / f"InterHand2.6M_bench_{role}.json"

    gc.collect()
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    split = InterHandSplit.from_files(
        path("data"), path("camera"), path("joint_3d"), folder, mano_json=path("MANO_NeuralAnnot")
    )
    seconds = time.perf_counter() - start
    gc.collect()
    peak = _status_kib("VmHWM")
    retained = _status_kib("VmRSS") - base
    try:  # glibc keeps freed parse memory for reuse; trimming shows what the index holds
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    batch = split.gather(np.arange(min(len(split), 256)))  # touch the lazy paths once
    assert batch.joints_img.shape[1:] == (42, 2) and split[len(split) - 1].file_name
    return {
        "images": len(split),
        "frames": len(split.frames),
        "seconds": seconds,
        "peak_mib": (peak - base) / 1024,
        "retained_mib": retained / 1024,
        "trimmed_mib": (_status_kib("VmRSS") - base) / 1024,
        "arrays_mib": split.nbytes / 2**20,
    }


def main() -> None:
    parser = Parser(prog="bench_index", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[20_000, 50_000, 100_000])
    parser.add_argument("--cameras", type=positive_int, default=40, help="cameras per time frame")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child)))
        return
    print(f"cameras per frame: {args.cameras}")
    print("images   frames  files MiB  index s  peak MiB  retained MiB  trimmed MiB  arrays MiB")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            write_split(folder, n, args.cameras)
            size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(folder)],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(out.stdout)
            k = 100_000 / r["images"]
            print(
                f"{r['images']:>6} {r['frames']:>8} {size:>10.1f} {r['seconds']:>8.2f} "
                f"{r['peak_mib']:>9.1f} {r['retained_mib']:>13.1f} {r['trimmed_mib']:>12.1f} "
                f"{r['arrays_mib']:>11.1f}"
            )
            print(
                f"  per 100k images: {r['seconds'] * k:.2f} s, peak {r['peak_mib'] * k:.0f} MiB, "
                f"retained {r['retained_mib'] * k:.0f} MiB ({r['trimmed_mib'] * k:.0f} MiB "
                "after malloc_trim)"
            )
            for p in folder.iterdir():
                p.unlink()


if __name__ == "__main__":
    sys.exit(run_main("bench_index", main))
