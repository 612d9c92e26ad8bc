"""What each torchrun process of the gpu_check runs: the trainer's process group setup (NCCL on
CUDA), an all-reduce with a known answer, one DDP step whose gradients every rank must share.

    torchrun ... -m benchmarks.gpu_check.ddp_worker DEVICE OUT_DIR   (writes OUT_DIR/rankR.json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from digit.train import distributed


def main(device: str, out_dir: Path) -> None:
    d = distributed.setup("cuda" if device.startswith("cuda") else "cpu")
    try:
        backend = dist.get_backend() if d.enabled else "none"
        # ranks 0..W-1 contribute r + 1: the mean is (W + 1) / 2
        mean = distributed.mean_across(d, torch.tensor(float(d.rank + 1), device=d.device))
        mean_ok = abs(float(mean) - (d.world_size + 1) / 2) < 1e-6
        torch.manual_seed(0)
        net = torch.nn.Linear(8, 2).to(d.device)
        ddp = DistributedDataParallel(
            net, device_ids=[d.device] if d.device.type == "cuda" else None
        )
        x = torch.full((4, 8), float(d.rank + 1), device=d.device)
        ddp(x).sum().backward()
        # DDP averages the ranks' gradients: d(sum)/dW = 4 x mean input = 4 (W + 1) / 2
        grad = float(net.weight.grad[0, 0])
        grad_ok = abs(grad - 4 * (d.world_size + 1) / 2) < 1e-4
        report = {
            "rank": d.rank, "world_size": d.world_size, "backend": backend,
            "device": str(d.device), "mean": float(mean), "grad": grad,
            "ok": bool(mean_ok and grad_ok and d.enabled),
        }  # fmt: skip
        (out_dir / f"rank{d.rank}.json").write_text(json.dumps(report))
    finally:
        distributed.teardown(d)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
