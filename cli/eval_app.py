"""`digit-eval`: the official InterHand2.6M evaluation (not built yet)."""

from pathlib import Path

import typer

from cli.common import make_app, not_built, run

app = make_app("Evaluate a DIGIT checkpoint with the official InterHand2.6M protocol.")


@app.command()
def evaluate(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint (.pt)."),
    split: str = typer.Option("test", "--split", help="val | test"),
    data_root: Path | None = typer.Option(None, "--data-root"),
    masks: Path | None = typer.Option(None, "--masks"),
    root_depth: str = typer.Option("gt", "--root-depth", help="gt | PATH to RootNet JSON"),
    out: Path = typer.Option(..., "--out", help="Output folder."),
) -> None:
    """Write metrics.json, predictions.npz, per_joint.csv and plots to --out."""
    not_built("digit-eval", "evaluation")


main = run(app, "digit-eval")
