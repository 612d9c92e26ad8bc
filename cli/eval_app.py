"""`digit-eval`: the official InterHand2.6M evaluation of a checkpoint."""

import json
import sys
from pathlib import Path

import torch
import typer

from cli.common import data_root_option, make_app, out_option, run
from digit.eval_report import format_comparison, format_summary
from digit.evaluate import ROOT_DEPTH_GT, run_evaluation

app = make_app("Evaluate a DIGIT checkpoint with the official InterHand2.6M protocol.")


@app.command()
def evaluate(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="Checkpoint (.pt): this project's or the released DIGIT one."
    ),
    split: str = typer.Option("test", "--split", help="val | test (train also works)"),
    data_root: Path | None = data_root_option(),
    masks: Path | None = typer.Option(
        None,
        "--masks",
        help="Folder with masks_{split}.h5 for the interaction-degree plot "
        "(default: <data-root>/masks when present).",
    ),
    root_depth: str = typer.Option(
        ROOT_DEPTH_GT, "--root-depth", help="gt | PATH to a RootNet output JSON"
    ),
    out: Path = out_option(..., "Output folder."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N images."),
    workers: int = typer.Option(0, "--workers", min=0, help="Data loader worker processes."),
    device: str | None = typer.Option(None, "--device", help="cpu | cuda (default: cuda if any)"),
    amp: bool = typer.Option(False, "--amp", help="Run the network under autocast."),
    flip_test: bool = typer.Option(
        False,
        "--flip-test",
        help="Average each crop's answer with its mirror's (right and left exchanged): two "
        "forward passes per image.",
    ),
    reference: list[str] = typer.Option(
        [],
        "--reference",
        help="Also score a reference on the same images: mean-pose (the training split's "
        "constant mean pose) | untrained (the same network at step 0). Repeatable.",
    ),
    meshes: bool = typer.Option(
        False,
        "--meshes",
        help="Also fit MANO hands to the predictions and report MPVPE (mpvpe_sh / ih / all, "
        "mm) against the ground-truth MANO fits.",
    ),
    mano_dir: Path | None = typer.Option(
        None,
        "--mano-dir",
        help="With --meshes: MANO_RIGHT.pkl / MANO_LEFT.pkl (default: <data-root>/mano).",
    ),
) -> None:
    """Write metrics.json, predictions.npz, per_joint.csv and plots to --out."""
    from render.synthetic_data.default import prepare_data_root

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    result = run_evaluation(
        checkpoint,
        split=split,
        data_root=prepare_data_root(data_root),
        masks=masks,
        root_depth=root_depth,
        out=out,
        device=device,
        batch_size=batch_size,
        limit=limit,
        num_workers=workers,
        amp=amp,
        show_progress=sys.stderr.isatty(),  # a log file gets no bar, only the result
        references=tuple(reference),
        meshes=meshes,
        mano_dir=mano_dir,
        flip_test=flip_test,
    )
    source = "ground truth" if root_depth == ROOT_DEPTH_GT else f"RootNet {root_depth}"
    if flip_test:
        typer.echo("flip test: each crop's answer averaged with its mirror's")
    typer.echo(format_summary(result, source))
    if meshes:
        from digit.meshes.evaluate import format_mpvpe

        typer.echo(format_mpvpe(json.loads((out / "metrics.json").read_text())))
    if reference:
        written = json.loads((out / "metrics.json").read_text())
        typer.echo(format_comparison({"this model": result.summary(), **written["references"]}))
    typer.echo(f"wrote metrics.json, predictions.npz, per_joint.csv and plots to {out}")


main = run(app, "digit-eval")
