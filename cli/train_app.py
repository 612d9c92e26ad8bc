"""`digit-train`: train DIGIT end to end (DDP when launched with torchrun)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.common import data_root_option, make_app, out_option, run, said_once_under_torchrun
from core.errors import DigitError

if TYPE_CHECKING:
    from digit.train.config import TrainConfig

app = make_app("Train DIGIT on InterHand2.6M (or the synthetic default).")


@app.command()
def train(
    config: Path | None = typer.Option(
        None, "--config", help="YAML config file (keys = TrainConfig fields)."
    ),
    preset: str | None = typer.Option(
        None, "--preset", help="paper | tiny | cpu (default: the config's preset, else tiny)."
    ),
    variant: str | None = typer.Option(
        None, "--variant", help="digit | baseline | segm_loss | segm_only | class_labels | lr_segm"
    ),
    data_root: Path | None = data_root_option(),
    masks: Path | None = typer.Option(
        None, "--masks", help="Folder with masks_{split}.h5 (default: <data-root>/masks)."
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after N steps."),
    time_limit: float | None = typer.Option(
        None,
        "--time-limit",
        help="Minutes of training; then validate, save and stop cleanly (all processes agree).",
    ),
    backbone_weights: str | None = typer.Option(
        None,
        "--backbone-weights",
        help="Starting weights of the backbone: package:NAME (weights inside an installed pip "
        "package, e.g. package:efficientnet-lite0), a local file, or timm (downloads).",
    ),
    max_batch_per_device: int | None = typer.Option(
        None,
        "--max-batch-per-device",
        help="Images per forward pass and process at most (default: the config's batch_size); "
        "the global batch stays batch_size x grad_accum.",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Initialisation and data-order seed."),
    max_bad_images: str | None = typer.Option(
        None,
        "--max-bad-images",
        help="Unreadable training images skipped (listed in bad_images.txt) before the run "
        "stops: a count (5) or a fraction of the split (0.01 or 1%; default 0.01).",
    ),
    out: Path | None = out_option(None, "Run folder (default: runs/digit)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (last.pt)."),
) -> None:
    """Train DIGIT; the run folder holds config.yaml, metrics.jsonl, TensorBoard logs (tb/),
    last.pt and best.pt (lowest validation MPJPE).

    On several processes: `torchrun --standalone --nproc_per_node N -m cli.train_app ...`;
    the global batch is split over the N processes (one line says how).

    Without --data-root the synthetic default is used, and its train masks are built on first
    use; for other data, build them first with `digit-render build-masks --split train`.
    --resume continues with the run folder's config.yaml; --config and the options may change
    only what a resumed run can (max_steps, time_limit, workers, logging, out, ...).
    """
    from cli.prepare import prepare_training_data
    from digit.train import resolve_config
    from digit.train import train as run_training
    from digit.train.bad_images import parse_max_bad_images
    from digit.train.batching import plan_batches
    from digit.train.distributed import launched_world_size

    overrides = {
        "variant": variant,
        "data_root": str(data_root) if data_root else None,
        "masks": str(masks) if masks else None,
        "max_steps": max_steps,
        "time_limit": time_limit,
        "backbone_weights": backbone_weights,
        "max_batch_per_device": max_batch_per_device,
        "seed": seed,
        "out": str(out) if out else None,
        "max_bad_images": parse_max_bad_images(max_bad_images) if max_bad_images else None,
    }
    with said_once_under_torchrun():
        if resume:  # the run's own config first, checked before any data is prepared
            run_dir = out or Path(resolve_config(preset, None, {}).out)
            cfg = resumed_config(run_dir, preset, config, overrides)
        else:
            cfg = resolve_config(preset, config, overrides)
        plan_batches(  # refuse a split that cannot work before any process group starts
            cfg.batch_size, cfg.grad_accum, launched_world_size(), cfg.max_batch_per_device
        )
    warn_implausible_settings(cfg)
    prepare_training_data(cfg)
    run_training(cfg, resume=resume)


def resumed_config(
    run_dir: Path, preset: str | None, config: Path | None, overrides: dict
) -> TrainConfig:
    """The config of `--resume`: the run folder's config.yaml, then --config's keys, then the
    command line; a change to a setting a resumed run must keep is one line naming where it
    was given (the file or the option), the setting, and both values."""
    from digit.train import resolve_config
    from digit.train.config import load_yaml
    from digit.train.loop import RESUMABLE_CHANGES, config_for_resume

    own = run_dir / "config.yaml"
    config_for_resume(run_dir)  # one clear line if the folder has no config.yaml
    run_cfg = resolve_config(None, own, {})
    file_values = load_yaml(config) if config is not None else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    cfg = run_cfg.updated({k: v for k, v in file_values.items() if k != "preset"}, str(config))
    cfg = cfg.updated(given, "command line")
    then, now = run_cfg.to_dict(), cfg.to_dict()
    changed = [k for k in now if k not in RESUMABLE_CHANGES and now[k] != then[k]]
    asked = preset or file_values.get("preset")
    if asked is not None and asked != run_cfg.preset:
        changed.insert(0, "preset")
        now["preset"] = asked
        if preset is not None:
            given["preset"] = preset
    if changed:
        key = changed[0]
        where = f"--{key.replace('_', '-')}" if key in given else str(config or "command line")
        raise DigitError(
            f"{where}: --resume continues {run_dir} with its own config ({own}); {key} is "
            f"{then[key]!r} there, {now[key]!r} here (only {', '.join(RESUMABLE_CHANGES)} may "
            "change): drop it, or start a new run with another --out"
        )
    return cfg


def warn_implausible_settings(cfg: TrainConfig) -> None:
    """One warning line for a learning rate outside `core.plausible.LEARNING_RATE`."""
    from core.plausible import LEARNING_RATE, warn_implausible

    if LEARNING_RATE.outside(cfg.lr):
        warn_implausible(
            f"lr {cfg.lr:g} is outside the plausible {LEARNING_RATE.describe()} (the paper "
            "preset trains at 1e-4, cpu at 1e-3); training goes on with it"
        )


main = run(app, "digit-train")

if __name__ == "__main__":  # `python -m cli.train_app`, and so `torchrun ... -m cli.train_app`
    main()
