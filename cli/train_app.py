"""`digit-train`: train DIGIT end to end (not built yet)."""

from pathlib import Path

import typer

from cli.common import make_app, not_built, run

app = make_app("Train DIGIT on InterHand2.6M (or the synthetic default).")


@app.command()
def train(
    config: Path | None = typer.Option(None, "--config", help="YAML config file."),
    preset: str = typer.Option("tiny", "--preset", help="paper | tiny"),
    variant: str = typer.Option("digit", "--variant", help="digit | baseline | segm_loss | ..."),
    data_root: Path | None = typer.Option(None, "--data-root", help="InterHand2.6M root."),
    masks: Path | None = typer.Option(None, "--masks", help="Folder with masks_{split}.h5."),
    max_steps: int | None = typer.Option(None, "--max-steps"),
    out: Path = typer.Option(Path("runs/digit"), "--out", help="Run folder."),
    resume: bool = typer.Option(False, "--resume"),
) -> None:
    """Train DIGIT; the run folder holds config, metrics.jsonl, TensorBoard logs, checkpoints."""
    not_built("digit-train", "training")


main = run(app, "digit-train")
