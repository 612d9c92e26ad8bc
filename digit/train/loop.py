"""The training loop of DIGIT: one function, `train`, that reads top to bottom.

Steps count optimizer updates. Epoch e covers steps [e * S, (e + 1) * S) with S = full optimizer
steps per epoch (a last partial group of batches is dropped); the learning rate follows
MultiStepLR, stepped at each epoch end. The order of an epoch's batches is fixed by (seed,
epoch), so a resumed run (from `last.pt`, which stores model, optimizer, scheduler, scaler and
step) sees exactly the batches an uninterrupted run would, and on a deterministic device ends
with the same parameters.

Run folder (written by rank 0 only): config.yaml, metrics.jsonl (one JSON object per line:
{"kind": "train", ...} every `log_every` steps, {"kind": "val", ...} per validation), tb/
(TensorBoard), last.pt, best.pt (lowest validation MPJPE). A non-finite loss stops the run
before the optimizer step, so no checkpoint ever holds the weights it would have produced.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler

from core.errors import DigitError
from core.files import load_torch_file
from core.paths import build_masks_command, mask_cache_path, resolve_data_root
from core.progress import progress
from digit.checkpoint import save_checkpoint
from digit.data.batch import Batch
from digit.data.crop import crop_to_image
from digit.losses import digit_loss
from digit.metrics import evaluate
from digit.model import DigitNet
from digit.train import distributed
from digit.train.config import TrainConfig, load_yaml, write_yaml

# Fields a resumed run may change: they do not alter what is computed.
RESUMABLE_CHANGES = ("max_steps", "num_workers", "device", "eval_every", "log_every", "out")

LoaderFn = Callable[..., DataLoader]


@dataclass(frozen=True)
class DataPaths:
    """data_root folder; train_masks / val_masks: masks_{split}.h5 files (val may be absent:
    validation needs no masks)."""

    data_root: Path
    train_masks: Path
    val_masks: Path


@dataclass(frozen=True)
class TrainResult:
    """What a finished run reached: step (optimizer steps done), epoch (of the next step),
    last_loss (mean total loss of the last step), best_mpjpe (mm, None without validation)."""

    run_dir: Path
    step: int
    epoch: int
    last_loss: float
    best_mpjpe: float | None


# ---- small pure helpers -----------------------------------------------------------------------


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: "auto" -> bf16 on CUDA where supported, else fp16 on CUDA, None (off) on
    CPU; "bf16" / "fp16" as asked on any device; "off" -> None."""
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def epoch_batches(loader: DataLoader, epoch: int, seed: int) -> list[list[int]]:
    """The sample indices of every batch `loader` yields in `epoch`, fixed by (seed, epoch):
    a DistributedSampler gets set_epoch (its own seed), a RandomSampler a seeded generator."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    elif isinstance(sampler, RandomSampler):
        sampler.generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    batch_sampler = loader.batch_sampler
    if batch_sampler is None:
        batch_sampler = BatchSampler(sampler, loader.batch_size or 1, loader.drop_last)
    return [list(b) for b in batch_sampler]


def loader_over(loader: DataLoader, batches: Sequence[Sequence[int]]) -> DataLoader:
    """A loader like `loader` (same dataset, collate, workers) that yields exactly `batches`."""
    return DataLoader(
        loader.dataset,
        batch_sampler=batches,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
    )


def best_metric(summary: dict) -> float | None:
    """The validation number best.pt is chosen by: the official MPJPE over all images, or,
    where some joint has no valid sample (small val sets), the mean of per-joint means."""
    return (
        summary.get("mpjpe_all")
        if summary.get("mpjpe_all") is not None
        else summary.get("mpjpe_joint_mean")
    )


# ---- data -------------------------------------------------------------------------------------


def resolve_data(cfg: TrainConfig) -> DataPaths:
    """The data root and mask files of `cfg` (a lookup: nothing is built here). Missing train
    masks are one DigitError naming the file and the `digit-render build-masks` line to run."""
    root = resolve_data_root(cfg.data_root)
    train_masks = mask_cache_path(cfg.masks, root, "train")
    if not train_masks.is_file():
        raise DigitError(
            f"{train_masks}: mask cache not found; build it with "
            f"`{build_masks_command(root, 'train', train_masks)}`"
        )
    return DataPaths(root, train_masks, mask_cache_path(cfg.masks, root, "val"))


def default_datasets(cfg: TrainConfig, paths: DataPaths) -> tuple[Any, Any | None]:
    """InterHandDataset for train (augmented unless cfg.augment is False) and, if validation is
    on, val (works without its masks)."""
    from digit.data.augment import AugmentSettings
    from digit.data.dataset import InterHandDataset

    common = {"input_size": cfg.input_size, "seed": cfg.seed}
    train_set = InterHandDataset(
        paths.data_root,
        "train",
        paths.train_masks,
        train=True,
        augment=AugmentSettings(enabled=cfg.augment),
        limit=cfg.train_limit,
        **common,
    )
    val_set = None
    if cfg.eval_every:
        val_set = InterHandDataset(
            paths.data_root, "val", paths.val_masks, train=False, limit=cfg.val_limit, **common
        )
    return train_set, val_set


def default_loader_fn() -> LoaderFn:
    from digit.data.dataset import make_loader

    return make_loader


# ---- validation -------------------------------------------------------------------------------


@torch.no_grad()
def validate(
    net: torch.nn.Module, batches: Iterable[Batch], device: torch.device, dtype: torch.dtype | None
) -> dict:
    """Official metrics on the given batches with ground-truth root depths: the summary dict of
    `digit.metrics.EvalResult` plus "mpjpe_joint_mean" (mean over joints with data) and
    "mpjpe_image_mean" (mean of per-image MPJPE), mm. Leaves `net` in the mode it found."""
    was_training = net.training
    net.eval()
    keys = ("uvd", "rel", "prob", "abs", "focal", "princpt", "gt", "valid", "ht", "htv", "iou")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for batch in batches:
        image = batch.image.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = net(image)
        cols["uvd"].append(
            crop_to_image(out.joints_uvd.double().cpu().numpy(), batch.crop_affine.numpy())
        )
        cols["rel"].append(out.rel_root_depth_mm.double().cpu().numpy())
        cols["prob"].append(torch.sigmoid(out.handedness_logits.double()).cpu().numpy())
        cols["abs"].append(batch.abs_depth.numpy())
        cols["focal"].append(batch.focal.numpy())
        cols["princpt"].append(batch.princpt.numpy())
        cols["gt"].append(batch.joints_cam.numpy())
        cols["valid"].append(batch.joint_valid.numpy())
        cols["ht"].append(batch.hand_type_code.numpy())
        cols["htv"].append(batch.hand_type_valid.numpy())
        cols["iou"].append(batch.lr_iou.numpy())
    net.train(was_training)
    if not cols["uvd"]:
        return {}
    c = {k: np.concatenate(v) for k, v in cols.items()}
    result = evaluate(
        c["uvd"], c["rel"], c["prob"], c["abs"], c["focal"], c["princpt"], c["gt"],
        c["valid"], c["ht"], c["htv"], c["iou"],
    )  # fmt: skip
    summary = result.summary()
    per_joint = result.per_joint_all[np.isfinite(result.per_joint_all)]
    per_image = result.mpjpe_image[np.isfinite(result.mpjpe_image)]
    summary["mpjpe_joint_mean"] = float(per_joint.mean()) if per_joint.size else None
    summary["mpjpe_image_mean"] = float(per_image.mean()) if per_image.size else None
    return summary


# ---- run folder -------------------------------------------------------------------------------


class RunLog:
    """metrics.jsonl and TensorBoard of the main process (a no-op elsewhere)."""

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int | None) -> None:
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            # drop lines logged after last.pt was written: the resumed run logs them again
            keep = [
                line
                for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            self.path.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))

    def write(self, record: dict, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in scalars.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(name, value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _finite_parameters(net: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.parameters())


def _check_resumable(saved: dict, cfg: TrainConfig, path: Path) -> None:
    now = cfg.to_dict()
    diff = [k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]]
    if diff:
        k = diff[0]
        raise DigitError(
            f"{path}: --resume needs the run's own config; {k} was {saved.get(k)!r}, now "
            f"{now[k]!r} (only {', '.join(RESUMABLE_CHANGES)} may change)"
        )


# ---- the loop ---------------------------------------------------------------------------------


def train(
    cfg: TrainConfig,
    resume: bool = False,
    *,
    train_set: Any = None,
    val_set: Any = None,
    loader_fn: LoaderFn | None = None,
    show_progress: bool = True,
) -> TrainResult:
    """Train `cfg` into the run folder `cfg.out`; returns where it ended.

    train_set / val_set: datasets (with `set_epoch(epoch)`) and loader_fn(dataset, batch_size,
    shuffle, num_workers, distributed) -> DataLoader yielding `Batch`; by default
    `digit.data.dataset.InterHandDataset` on cfg's data and `make_loader`. With `train_set`
    given, `val_set` None means no validation. resume: continue from `cfg.out/last.pt`, whose
    config must equal `cfg` except `RESUMABLE_CHANGES`; a fresh run refuses a folder that
    already holds last.pt.
    """
    run_dir = Path(cfg.out)
    dist = distributed.setup(cfg.device)
    try:
        return _train(cfg, resume, dist, run_dir, train_set, val_set, loader_fn, show_progress)
    finally:
        distributed.teardown(dist)


def _train(cfg, resume, dist, run_dir, train_set, val_set, loader_fn, show_progress):
    device, main = dist.device, dist.is_main

    def say(msg: str) -> None:
        if main and show_progress:
            print(msg, file=sys.stderr)

    # -- run folder and config
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if not resume and last_path.exists():
        raise DigitError(f"{run_dir}: already holds a run (last.pt); pass --resume or a new --out")
    if cfg.grad_accum % dist.world_size:
        raise DigitError(
            f"grad_accum: {cfg.grad_accum} is not a multiple of the {dist.world_size} processes"
        )
    accum = cfg.grad_accum // dist.world_size  # forward passes per step in this process
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(cfg, run_dir / "config.yaml")

    # -- data
    if train_set is None:
        train_set, val_set = default_datasets(cfg, resolve_data(cfg))
    loader_fn = loader_fn or default_loader_fn()
    base_loader = loader_fn(train_set, cfg.batch_size, True, cfg.num_workers, dist.enabled)
    steps_per_epoch = len(epoch_batches(base_loader, 0, cfg.seed)) // accum
    if steps_per_epoch == 0:
        raise DigitError(
            f"train split: {len(train_set)} images make no full optimizer step of "
            f"{cfg.batch_size} x {cfg.grad_accum} images"
        )
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)

    # -- model, optimizer, schedule, precision
    torch.manual_seed(cfg.seed)
    net = DigitNet(cfg.network_config()).to(device)
    # fused kernels on CUDA; foreach on CPU (the per-tensor default is ~8x slower there)
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **fast)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma
    )
    dtype = amp_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    weights = cfg.loss_weights()

    step, best = 0, None
    if resume:
        state = load_torch_file(last_path, "checkpoint to resume from", device)
        _check_resumable(state.get("config", {}), cfg, last_path)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step, best = int(state["step"]), state.get("best_mpjpe")
        say(f"digit-train: resuming {run_dir} at step {step}")
    model = net
    if dist.enabled:
        model = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    log = RunLog(run_dir, main, step if resume else None)

    def save(path: Path, metrics: dict) -> None:
        if not _finite_parameters(net):  # belt and braces: never store non-finite weights
            raise DigitError(
                f"step {step}: non-finite weights; {run_dir} keeps its last checkpoint"
            )
        save_checkpoint(
            path, net, cfg.to_dict(), optimizer=optimizer, scheduler=scheduler.state_dict(),
            scaler=scaler.state_dict(), step=step, epoch=step // steps_per_epoch,
            best_mpjpe=best, metrics=metrics,
        )  # fmt: skip

    say(
        f"digit-train: {cfg.preset}/{cfg.variant} on {device}, {total_steps} steps "
        f"({steps_per_epoch} per epoch), amp {dtype}, run folder {run_dir}"
    )
    net.train()
    last_loss, t_log, steps_timed = float("nan"), time.perf_counter(), 0
    with progress(total_steps, "train", enabled=show_progress and main) as bar:
        bar.advance(step)
        while step < total_steps:
            # -- one epoch: fixed batch order, resumed mid-way by skipping the steps done
            epoch, done_in_epoch = divmod(step, steps_per_epoch)
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            order = epoch_batches(base_loader, epoch, cfg.seed)[: steps_per_epoch * accum]
            batches = iter(loader_over(base_loader, order[done_in_epoch * accum :]))
            while step < total_steps and step // steps_per_epoch == epoch:
                # -- one optimizer step over `accum` forward passes
                loss_sum = torch.zeros((), device=device)
                term_sums: dict[str, torch.Tensor] = {}
                for micro in range(accum):
                    batch = next(batches).to(device, non_blocking=True)
                    sync = micro == accum - 1  # DDP all-reduces gradients on the last pass only
                    ctx = contextlib.nullcontext() if sync or not dist.enabled else model.no_sync()
                    with ctx:
                        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                            out = model(batch.image)
                        loss, terms = digit_loss(
                            out, batch.targets, batch.segm_target, batch.segm_valid, weights,
                            cfg.loss_average,
                        )  # fmt: skip
                        scaler.scale(loss / accum).backward()
                    loss_sum += loss.detach() / accum
                    for k, v in terms.items():
                        term_sums[k] = term_sums.get(k, 0.0) + v.detach() / accum
                last_loss = float(distributed.mean_across(dist, loss_sum))
                if not math.isfinite(last_loss):
                    raise DigitError(
                        f"step {step + 1}: loss is {last_loss}; stopped before updating the "
                        f"weights ({run_dir} keeps its last good checkpoint)"
                    )
                lr = optimizer.param_groups[0]["lr"]  # the rate this step uses
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                steps_timed += 1
                if step % steps_per_epoch == 0:
                    scheduler.step()  # MultiStepLR counts epochs
                bar.advance()

                # -- log, validate, save (main process; the others wait at the barrier)
                is_last = step == total_steps
                if main and ((cfg.log_every and step % cfg.log_every == 0) or is_last):
                    rate = steps_timed / max(time.perf_counter() - t_log, 1e-9)
                    record = {
                        "kind": "train", "step": step, "epoch": epoch,
                        "lr": lr, "loss": last_loss,
                        **{k: float(v) for k, v in term_sums.items()},
                        "steps_per_s": rate,
                        "images_per_s": rate * cfg.batch_size * cfg.grad_accum,
                    }  # fmt: skip
                    log.write(
                        record,
                        {"train/loss": last_loss, "train/lr": lr}
                        | {f"train/{k}": float(v) for k, v in term_sums.items()},
                    )
                    say(
                        f"step {step}/{total_steps} epoch {epoch} loss {last_loss:.4f} "
                        f"lr {lr:.2e} {rate:.2f} steps/s"
                    )
                    t_log, steps_timed = time.perf_counter(), 0
                evaluate_now = (
                    val_set is not None
                    and cfg.eval_every
                    and (step % cfg.eval_every == 0 or is_last)
                )
                metrics: dict = {}
                if main and evaluate_now:
                    val_loader = loader_fn(val_set, cfg.batch_size, False, cfg.num_workers, False)
                    metrics = validate(net, val_loader, device, dtype)
                    score = best_metric(metrics)
                    log.write(
                        {"kind": "val", "step": step, "epoch": epoch, **metrics},
                        {f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)},
                    )
                    say(f"step {step}: validation MPJPE {score} mm")
                    if score is not None and (best is None or score < best):
                        best = score
                        save(best_path, metrics)
                    t_log, steps_timed = time.perf_counter(), 0
                if main and (
                    is_last or evaluate_now or (cfg.save_every and step % cfg.save_every == 0)
                ):
                    save(last_path, metrics)
                    t_log, steps_timed = time.perf_counter(), 0
                distributed.barrier(dist)
    log.close()
    return TrainResult(run_dir, step, step // steps_per_epoch, last_loss, best)


def config_for_resume(run_dir: Path) -> dict:
    """The resolved config a run folder was started with (its config.yaml)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise DigitError(f"{path}: not found; --resume needs a run folder made by digit-train")
    return load_yaml(path)
