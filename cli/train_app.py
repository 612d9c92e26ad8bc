"""`digit-train`: train DIGIT end to end (DDP when launched with torchrun)."""

from pathlib import Path

import typer

from cli.common import data_root_option, make_app, run, said_once_under_torchrun

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
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: runs/digit)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (last.pt)."),
) -> None:
    """Train DIGIT; the run folder holds config.yaml, metrics.jsonl, TensorBoard logs (tb/),
    last.pt and best.pt (lowest validation MPJPE).

    On several processes: `torchrun --standalone --nproc_per_node N -m cli.train_app ...`;
    the global batch is split over the N processes (one line says how).

    Without --data-root the synthetic default is used, and its train masks are built on first
    use; for other data, build them first with `digit-render build-masks --split train`.
    --resume reads the run folder's config.yaml unless --config is given.
    """
    from cli.prepare import prepare_training_data
    from digit.train import resolve_config
    from digit.train import train as run_training
    from digit.train.bad_images import parse_max_bad_images
    from digit.train.batching import plan_batches
    from digit.train.distributed import launched_world_size
    from digit.train.loop import config_for_resume

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
        config_file = config
        if resume and config_file is None:
            run_dir = out or Path(resolve_config(preset, None, {}).out)
            config_for_resume(run_dir)  # one clear line if the folder has no config.yaml
            config_file = run_dir / "config.yaml"
        cfg = resolve_config(preset, config_file, overrides)
        plan_batches(  # refuse a split that cannot work before any process group starts
            cfg.batch_size, cfg.grad_accum, launched_world_size(), cfg.max_batch_per_device
        )
    prepare_training_data(cfg)
    run_training(cfg, resume=resume)


main = run(app, "digit-train")

if __name__ == "__main__":  # `python -m cli.train_app`, and so `torchrun ... -m cli.train_app`
    main()
