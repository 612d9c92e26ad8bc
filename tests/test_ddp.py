"""DDP, executed: `torchrun --nproc_per_node 2 -m cli.train_app` (gloo on CPU, loopback only)
against one process that accumulates the same two micro-batches per step.

Each torchrun process takes one micro-batch of 2 images per step; the one-process reference
(train() in this process) takes both, one after the other (`digit.train.batching`), so after
every step the parameters agree (DDP's mean of 2 gradients and the accumulated halves round
alike: here they are equal bit for bit). Both sides run one thread per process (torchrun's
default): the thread count changes the summation order inside the conv kernels, and Adam turns
rounding noise in near-zero gradients (conv biases that BatchNorm cancels) into steps of size lr.
BatchNorm running statistics are not compared: DDP broadcasts rank 0's at every forward pass.
"""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from digit.train import resolve_config, train

# The tiny preset with an even smaller backbone, at 64 px: 2 micro-batches of 2 images per step,
# 8 images = 2 steps per epoch (3 steps cross an epoch boundary), no augmentation.
SMALL = """\
backbone: resnet10t
input_size: 64
batch_size: 2
grad_accum: 2
num_workers: 0
augment: false
train_limit: 8
eval_every: 0
log_every: 1
save_every: 0
amp: "off"
device: cpu
lr: 0.001
"""
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(rendezvous: list[str], *args: str) -> subprocess.CompletedProcess:
    """The documented launch line, 2 processes on this machine, everything on 127.0.0.1."""
    env = os.environ | {
        "MASTER_ADDR": "127.0.0.1",
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    torchrun_bin = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun_bin), "--nnodes", "1", "--nproc_per_node", "2", *rendezvous]
    cmd += ["-m", "cli.train_app", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=600)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    model = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    return {k: v for k, v in model.items() if not k.endswith(BUFFERS)}


def assert_same_weights(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-6, worst
    return worst


def moved(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def metric_steps(run_dir: Path) -> list[int]:
    import json

    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


@pytest.mark.slow
@pytest.mark.integration
def test_torchrun_two_processes_equal_one_process_accumulating(
    tmp_path, synthetic_root, mask_cache_train, one_thread
):
    config = tmp_path / "small.yaml"
    config.write_text(SMALL)
    data = ["--data-root", str(synthetic_root), "--masks", str(mask_cache_train.parent)]
    common = ["--preset", "tiny", "--config", str(config), *data]

    # the one-process reference: 2 steps, then resumed to 3 (resume is exact on one process)
    one = tmp_path / "one"
    overrides = {"data_root": str(synthetic_root), "masks": str(mask_cache_train.parent)}
    cfg = resolve_config("tiny", config, overrides | {"out": str(one), "max_steps": 2})
    train(cfg, show_progress=False)
    one_2 = weights(one)
    train(cfg.updated({"max_steps": 3}), resume=True, show_progress=False)
    one_3 = weights(one)

    # two processes, static rendezvous on 127.0.0.1
    ddp = tmp_path / "ddp"
    static = ["--master-addr", "127.0.0.1", "--master-port", str(free_loopback_port())]
    result = torchrun(static, *common, "--max-steps", "2", "--out", str(ddp))
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stderr
    assert said.count("batch 4 images per step = 2 processes x 1 pass x 2 images") == 1
    assert said.count("random initialisation") == 1  # warnings from rank 0 only
    assert said.count("step 2/2") == 1  # progress from rank 0 only
    assert_same_weights(weights(ddp), one_2)
    assert moved(weights(ddp), one_3) > 1e-4  # the comparison can tell steps apart
    # only rank 0 wrote the run folder: the files of a one-process run, each once
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in one.iterdir())
    assert sorted(p.name for p in ddp.iterdir()) == sorted(
        ["config.yaml", "metrics.jsonl", "last.pt", "tb", "learning_curves.png", "train.lock"]
    )
    assert len(list((ddp / "tb").iterdir())) == 1 and metric_steps(ddp) == [1, 2]

    # resume under torchrun (c10d rendezvous, the multi-node form): continues exactly
    elsewhere = tmp_path / "ddp_copy"
    shutil.copytree(ddp, elsewhere)
    c10d = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_loopback_port()}"]
    result = torchrun(c10d, "--out", str(ddp), "--max-steps", "3", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("resuming") == 1
    assert metric_steps(ddp) == [1, 2, 3]
    assert_same_weights(weights(ddp), one_3)

    # resume on another process count (2 -> 1) with the same micro-batch: exact as well
    cfg_copy = cfg.updated({"out": str(elsewhere), "max_steps": 3})
    train(cfg_copy, resume=True, show_progress=False)
    assert_same_weights(weights(elsewhere), one_3)
