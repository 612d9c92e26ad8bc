"""The training loop of DIGIT: `train` reads top to bottom as setup, loop, validate, checkpoint.

Steps count optimizer updates. Epoch e covers steps [e * S, (e + 1) * S) with S = full optimizer
steps per epoch (a last partial group of batches is dropped). The learning rate of each step is a
pure function of (step, epoch, progress) (`digit.train.schedule`). The order of an epoch's batches
is fixed by (seed, epoch), so a resumed run (from `last.pt`: model, optimizer, scaler, step)
sees exactly the batches an uninterrupted run would, and on a deterministic device ends with the
same parameters (with a time limit, where the run stops depends on the machine's speed).

Run folder (written by rank 0 only): config.yaml, metrics.jsonl (one JSON object per line:
{"kind": "train", ...} every `log_every` steps, {"kind": "val", ...} per validation), tb/
(TensorBoard scalars and, per validation, an image grid), last.pt, best.pt (lowest validation
MPJPE). A non-finite loss stops the run before the optimizer step, so no checkpoint ever holds
the weights it would have produced.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler

from core.errors import DigitError, Interrupted
from core.files import load_torch_file
from core.paths import build_masks_command, mask_cache_path, resolve_data_root
from core.progress import progress
from digit.checkpoint import save_checkpoint
from digit.data.batch import Batch
from digit.evaluate import collect, evaluate_predictions
from digit.losses import digit_loss
from digit.metrics import error_components, mpjpe_pooled
from digit.model import DigitNet
from digit.provenance import provenance
from digit.references import MeanPose, fit_mean_pose_on_split, mean_pose_predictions
from digit.train import distributed
from digit.train.bad_images import BadImageLog
from digit.train.batching import BatchPlan, plan_batches
from digit.train.config import TrainConfig, load_yaml, write_yaml
from digit.train.distributed import Dist
from digit.train.run_folder import claim_run_dir
from digit.train.schedule import learning_rate, run_progress

# Fields a resumed run may change: they do not alter what is computed.
RESUMABLE_CHANGES = (
    "max_steps",
    "time_limit",
    "num_workers",
    "device",
    "eval_every",
    "log_every",
    "save_every",
    "out",
    "max_bad_images",
    "max_batch_per_device",  # regroups the same samples (see digit.train.batching)
)

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
    last_loss (mean total loss of the last step), best_mpjpe (mm, None without validation),
    stopped_by ("steps" | "time"), train_seconds (wall time of the loop over all sittings)."""

    run_dir: Path
    step: int
    epoch: int
    last_loss: float
    best_mpjpe: float | None
    stopped_by: str = "steps"
    train_seconds: float = 0.0


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


def pooled_error(errors: np.ndarray) -> float | None:
    """Per-joint errors (N, 42) mm (NaN = invalid) pooled like `best_metric`: the official
    MPJPE over all images, or, where some joint has no valid sample, the mean of the per-joint
    means of the joints that have one."""
    value, per_joint = mpjpe_pooled(errors, np.ones(len(errors), dtype=bool))
    if np.isfinite(value):
        return value
    known = per_joint[np.isfinite(per_joint)]
    return float(known.mean()) if known.size else None


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

    common = {
        "input_size": cfg.network.input_size,
        "antialias": cfg.network.antialias,
        "seed": cfg.seed,
    }
    train_set = InterHandDataset(
        paths.data_root,
        "train",
        paths.train_masks,
        train=True,
        augment=AugmentSettings(
            enabled=cfg.augment,
            rot_factor_deg=cfg.augment_rotation,
            shift=cfg.augment_shift,
            scale_factor=cfg.augment_scale,
        ),
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


@dataclass(frozen=True)
class TrainData:
    """The datasets, the loader factory, and the step arithmetic of a run: plan (the global
    batch's split over processes), accum forward passes per step in this process, rank (this
    process), steps_per_epoch, total_steps (epochs or max_steps). base_loader yields the
    epoch's micro-batches over all processes."""

    train_set: Any
    val_set: Any | None
    loader_fn: LoaderFn
    base_loader: DataLoader
    accum: int
    steps_per_epoch: int
    total_steps: int
    plan: BatchPlan | None = None
    rank: int = 0


def make_data(cfg: TrainConfig, dist: Dist, train_set, val_set, loader_fn) -> TrainData:
    plan = plan_batches(cfg.batch_size, cfg.grad_accum, dist.world_size, cfg.max_batch_per_device)
    if train_set is None:
        train_set, val_set = default_datasets(cfg, resolve_data(cfg))
    loader_fn = loader_fn or default_loader_fn()
    # one list of micro-batches for all processes; each takes its own (epoch_iterator)
    base_loader = loader_fn(train_set, plan.micro, True, cfg.num_workers, False)
    steps_per_epoch = len(epoch_batches(base_loader, 0, cfg.seed)) // plan.micro_per_step
    if steps_per_epoch == 0:
        raise DigitError(
            f"train split: {len(train_set)} images make no full optimizer step of "
            f"{cfg.batch_size} x {cfg.grad_accum} images"
        )
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    return TrainData(
        train_set, val_set, loader_fn, base_loader, plan.accum, steps_per_epoch, total, plan,
        dist.rank,
    )  # fmt: skip


# ---- model and state --------------------------------------------------------------------------


@dataclass
class TrainState:
    """What changes as a run goes and is saved in last.pt: step, best validation MPJPE, and the
    wall time spent in the loop over all sittings."""

    step: int = 0
    best: float | None = None
    train_seconds: float = 0.0


def parameter_groups(net: torch.nn.Module, backbone_lr_scale: float) -> list[dict]:
    """Adam's parameter groups: the backbone's parameters with "lr_scale" = backbone_lr_scale,
    every other one (adapter, heads, fusion) with 1.0; one group when the scale is 1. Each
    step's rate is the schedule's times the group's scale."""
    if backbone_lr_scale == 1.0:
        return [{"params": list(net.parameters()), "lr_scale": 1.0}]
    backbone = [p for n, p in net.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in net.named_parameters() if not n.startswith("backbone.")]
    return [
        {"params": backbone, "lr_scale": backbone_lr_scale},
        {"params": rest, "lr_scale": 1.0},
    ]


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    # fused kernels on CUDA; foreach on CPU (the per-tensor default is ~8x slower there)
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    groups = parameter_groups(net, cfg.backbone_lr_scale)
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, **fast)


def check_resumable(saved: dict, cfg: TrainConfig, path: Path) -> None:
    """`saved` (the config dict in last.pt) must equal `cfg` but for `RESUMABLE_CHANGES`; keys
    that older versions did not write take the saved preset's values."""
    then = TrainConfig.from_dict(saved, str(path)).to_dict() if saved else {}
    now = cfg.to_dict()
    diff = [k for k in now if k not in RESUMABLE_CHANGES and then.get(k) != now[k]]
    if diff:
        k = diff[0]
        raise DigitError(
            f"{path}: --resume needs the run's own config; {k} was {then.get(k)!r}, now "
            f"{now[k]!r} (only {', '.join(RESUMABLE_CHANGES)} may change)"
        )


def _finite_parameters(net: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.parameters())


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

    def image(self, name: str, picture: np.ndarray, step: int) -> None:
        """An RGB picture (H, W, 3) uint8 under `name` at `step`."""
        if self.enabled:
            self.writer.add_image(name, picture, step, dataformats="HWC")
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def open_run_dir(cfg: TrainConfig, resume: bool, dist: Dist) -> Path:
    """The run folder: a fresh run refuses one that holds last.pt; rank 0 writes config.yaml."""
    run_dir = Path(cfg.out)
    if not resume and (run_dir / "last.pt").exists():
        raise DigitError(f"{run_dir}: already holds a run (last.pt); pass --resume or a new --out")
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(cfg, run_dir / "config.yaml")
    return run_dir


# ---- validation -------------------------------------------------------------------------------


def validate(
    net: torch.nn.Module,
    loader,
    device: torch.device,
    dtype: torch.dtype | None,
    mean_pose: MeanPose | None = None,
) -> dict:
    """The official metrics (`digit.evaluate`, ground-truth root depths) on `loader`: the summary
    dict of `digit.metrics.EvalResult` plus "mpjpe_joint_mean" (mean over joints with data) and
    "mpjpe_image_mean" (mean of per-image MPJPE), mm; with `mean_pose`, also that constant
    predictor's "mean_pose_mpjpe_all" / "_sh" / "_ih" on the same images (the reference line of
    the learning curves). Leaves `net` in the mode it found."""
    preds, gt = collect(net, loader, device, amp_dtype=dtype)
    result = evaluate_predictions(preds, gt, gt.abs_depth)
    summary = result.summary()
    per_joint = result.per_joint_all[np.isfinite(result.per_joint_all)]
    per_image = result.mpjpe_image[np.isfinite(result.mpjpe_image)]
    summary["mpjpe_joint_mean"] = float(per_joint.mean()) if per_joint.size else None
    summary["mpjpe_image_mean"] = float(per_image.mean()) if per_image.size else None
    # where the error comes from: u, v alone and the root-relative depth alone
    only_2d, only_depth = error_components(
        preds.joints_uvd_img, gt.abs_depth, gt.focal, gt.princpt, gt.joints_cam, gt.joint_valid
    )
    summary["mpjpe_2d"] = pooled_error(only_2d)
    summary["mpjpe_depth"] = pooled_error(only_depth)
    if mean_pose is not None:
        ref = evaluate_predictions(mean_pose_predictions(mean_pose, gt), gt, gt.abs_depth)
        for key in ("mpjpe_all", "mpjpe_sh", "mpjpe_ih"):
            summary[f"mean_pose_{key}"] = ref.summary()[key]
    return summary


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
    already holds last.pt. The folder is locked for the run (`digit.train.run_folder`).
    """
    dist = distributed.setup(cfg.device)
    try:
        with claim_run_dir(Path(cfg.out), enabled=dist.is_main):
            return _train(cfg, resume, dist, train_set, val_set, loader_fn, show_progress)
    except KeyboardInterrupt:  # Ctrl-C: the run folder is safe; say what it holds
        raise Interrupted(interrupted_note(Path(cfg.out))) from None
    finally:
        distributed.teardown(dist)


def interrupted_note(run_dir: Path) -> str:
    """What an interrupted run kept and the command that continues it."""
    last = run_dir / "last.pt"
    try:  # mmap: the step without reading the weights
        step = int(torch.load(last, map_location="cpu", weights_only=True, mmap=True)["step"])
    except Exception:  # no checkpoint yet (or none readable): nothing to continue
        return f"no checkpoint was saved in {run_dir} yet; rerun the same command to start again"
    return (
        f"{last} holds step {step} (later steps are lost); continue with "
        f"`digit-train --out {run_dir} --resume`"
    )


def _train(
    cfg: TrainConfig,
    resume: bool,
    dist: Dist,
    train_set: Any,
    val_set: Any,
    loader_fn: LoaderFn | None,
    show_progress: bool,
) -> TrainResult:
    device, main = dist.device, dist.is_main

    def say(msg: str) -> None:
        if main and show_progress:
            print(msg, file=sys.stderr)

    # -- setup: run folder, data, model, optimizer, precision, resumed state
    run_dir = open_run_dir(cfg, resume, dist)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    data = make_data(cfg, dist, train_set, val_set, loader_fn)
    torch.manual_seed(cfg.seed)
    # oneDNN's convolutions run about 20 % faster per CPU step on channels-last tensors
    # (BENCHMARKS.md); other devices keep the default layout
    layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    net = DigitNet(cfg.network).to(device, memory_format=layout)
    optimizer = make_optimizer(net, cfg, device)
    dtype = amp_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    state = TrainState()
    if resume:
        saved = load_torch_file(last_path, "checkpoint to resume from", device)
        check_resumable(saved.get("config", {}), cfg, last_path)
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        state = TrainState(
            int(saved["step"]), saved.get("best_mpjpe"), float(saved.get("train_seconds", 0.0))
        )
        say(f"digit-train: resuming {run_dir} at step {state.step}")
    model = net
    if dist.enabled:
        model = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    log = RunLog(run_dir, main, state.step if resume else None)
    bad = BadImageLog(run_dir, cfg.max_bad_images, len(data.train_set), dist, resume, say)
    origin = provenance(cfg, net, data.train_set)
    data_root = getattr(data.train_set, "data_root", None)
    mean_pose = None
    if main and data.val_set is not None and data_root is not None:
        mean_pose = fit_mean_pose_on_split(data_root, "train")
    time_limit_s = None if cfg.time_limit is None else cfg.time_limit * 60.0

    def save(path: Path, metrics: dict) -> None:
        if not _finite_parameters(net):  # belt and braces: never store non-finite weights
            kept = "its last good checkpoint" if last_path.exists() else "no checkpoint yet"
            raise DigitError(f"step {state.step}: non-finite weights; {run_dir} keeps {kept}")
        save_checkpoint(
            path, net, cfg.to_dict(), optimizer=optimizer, scaler=scaler.state_dict(),
            step=state.step, epoch=state.step // data.steps_per_epoch, best_mpjpe=state.best,
            train_seconds=state.train_seconds, metrics=metrics, provenance=origin,
        )  # fmt: skip

    def validate_and_keep_best(epoch: int) -> dict:
        val_loader = data.loader_fn(data.val_set, cfg.batch_size, False, cfg.num_workers, False)
        metrics = validate(net, val_loader, device, dtype, mean_pose)
        score = best_metric(metrics)
        log.write(
            {
                "kind": "val",
                "step": state.step,
                "epoch": epoch,
                "images_seen": images_seen(),
                **metrics,
            },
            {f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)},
        )
        if log.enabled:
            from digit.train.figures import validation_grid

            first = next(iter(data.loader_fn(data.val_set, 4, False, 0, False)))
            log.image("val/predictions", validation_grid(net, first, device, dtype), state.step)
        say(f"step {state.step}: validation MPJPE {score} mm")
        if score is not None and (state.best is None or score < state.best):
            state.best = score
            save(best_path, metrics)
        return metrics

    def images_seen() -> int:
        return state.step * cfg.images_per_step

    if data.plan is not None:
        say(f"digit-train: {data.plan.describe()}")
    limit_note = "" if cfg.time_limit is None else f", time limit {cfg.time_limit:g} min"
    say(
        f"digit-train: {cfg.preset}/{cfg.network.variant} on {device}, {data.total_steps} steps "
        f"({data.steps_per_epoch} per epoch{limit_note}), amp {dtype}, run folder {run_dir}"
    )

    # -- the loop: one optimizer step per iteration
    net.train()
    last_loss, stopped_by = float("nan"), "steps"
    t_start, t_log, steps_timed = time.perf_counter(), time.perf_counter(), 0
    seconds_before = state.train_seconds
    batches = None
    with progress(data.total_steps, "train", enabled=show_progress and main) as bar:
        bar.advance(state.step)
        while state.step < data.total_steps:
            epoch, done_in_epoch = divmod(state.step, data.steps_per_epoch)
            if batches is None or done_in_epoch == 0:
                batches = epoch_iterator(data, cfg.seed, epoch, done_in_epoch)

            # -- one optimizer step over `accum` forward passes
            progress_now = run_progress(
                state.step, data.total_steps, state.train_seconds, time_limit_s
            )
            lr = learning_rate(
                cfg.lr, cfg.lr_schedule, state.step, epoch, progress_now,
                milestones=cfg.milestones, gamma=cfg.gamma, min_lr_ratio=cfg.min_lr_ratio,
                warmup_steps=cfg.warmup_steps,
            )  # fmt: skip
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            loss_sum = torch.zeros((), device=device)
            term_sums: dict[str, torch.Tensor] = {}
            for micro in range(data.accum):
                batch: Batch = next(batches).to(device, non_blocking=True)
                bad.add(batch.skipped)
                sync = micro == data.accum - 1  # DDP all-reduces gradients on the last pass only
                no_sync = contextlib.nullcontext() if sync or not dist.enabled else model.no_sync()
                with no_sync:
                    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                        out = model(batch.image.contiguous(memory_format=layout))
                    loss, terms = digit_loss(
                        out, batch.targets, batch.segm_target, batch.segm_valid, cfg.loss,
                        cfg.loss_average,
                    )  # fmt: skip
                    scaler.scale(loss / data.accum).backward()
                loss_sum += loss.detach() / data.accum
                for k, v in terms.items():
                    term_sums[k] = term_sums.get(k, 0.0) + v.detach() / data.accum
            bad.settle()  # too many unreadable samples: stop before the update
            last_loss = float(distributed.mean_across(dist, loss_sum))
            if not math.isfinite(last_loss):
                kept = "its last good checkpoint" if last_path.exists() else "no checkpoint yet"
                raise DigitError(
                    f"step {state.step + 1}: loss is {last_loss}; stopped before updating the "
                    f"weights ({run_dir} keeps {kept})"
                )
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            steps_timed += 1
            bar.advance()
            # every process takes the main process's clock, so all stop at the same step
            state.train_seconds = distributed.from_main(
                dist, seconds_before + time.perf_counter() - t_start
            )
            out_of_time = time_limit_s is not None and state.train_seconds >= time_limit_s
            is_last = state.step == data.total_steps or out_of_time
            if out_of_time and state.step < data.total_steps:
                stopped_by = "time"

            # -- log, validate, save (main process; the others wait at the barrier)
            if main and ((cfg.log_every and state.step % cfg.log_every == 0) or is_last):
                rate = steps_timed / max(time.perf_counter() - t_log, 1e-9)
                record = {
                    "kind": "train", "step": state.step, "epoch": epoch, "lr": lr,
                    "loss": last_loss, **{k: float(v) for k, v in term_sums.items()},
                    "steps_per_s": rate, "images_per_s": rate * cfg.images_per_step,
                    "images_seen": images_seen(), "seconds": state.train_seconds,
                }  # fmt: skip
                log.write(
                    record,
                    {"train/loss": last_loss, "train/lr": lr}
                    | {f"train/{k}": float(v) for k, v in term_sums.items()},
                )
                say(
                    f"step {state.step}/{data.total_steps} epoch {epoch} loss {last_loss:.4f} "
                    f"lr {lr:.2e} {rate:.2f} steps/s"
                )
                t_log, steps_timed = time.perf_counter(), 0
            validate_now = (
                data.val_set is not None
                and cfg.eval_every
                and (state.step % cfg.eval_every == 0 or is_last)
            )
            metrics: dict = {}
            if main and validate_now:
                metrics = validate_and_keep_best(epoch)
                t_log, steps_timed = time.perf_counter(), 0
            if main and (
                is_last or validate_now or (cfg.save_every and state.step % cfg.save_every == 0)
            ):
                save(last_path, metrics)
                t_log, steps_timed = time.perf_counter(), 0
            distributed.barrier(dist)
            if is_last:
                break
    if stopped_by == "time":
        say(f"digit-train: time limit reached after {state.step} steps")
    log.close()
    if main and log.path.exists():
        from digit.train.figures import plot_learning_curves

        title = f"{cfg.preset}/{cfg.network.variant}, {cfg.network.backbone}"
        plot_learning_curves(log.path, run_dir / "learning_curves.png", title=title)
    return TrainResult(
        run_dir,
        state.step,
        state.step // data.steps_per_epoch,
        last_loss,
        state.best,
        stopped_by,
        state.train_seconds,
    )


def epoch_iterator(data: TrainData, seed: int, epoch: int, done_in_epoch: int):
    """The batches of `epoch` from its `done_in_epoch`-th optimizer step on (fixed order)."""
    if hasattr(data.train_set, "set_epoch"):
        data.train_set.set_epoch(epoch)
    order = epoch_batches(data.base_loader, epoch, seed)
    if data.plan is not None:
        order = data.plan.rank_batches(order, data.rank)
    order = order[: data.steps_per_epoch * data.accum]
    return iter(loader_over(data.base_loader, order[done_in_epoch * data.accum :]))


def config_for_resume(run_dir: Path) -> dict:
    """The resolved config a run folder was started with (its config.yaml)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise DigitError(f"{path}: not found; --resume needs a run folder made by digit-train")
    return load_yaml(path)
