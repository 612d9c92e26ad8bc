"""`digit-demo`: predictions on images, as pictures."""

from pathlib import Path

import torch
import typer

from cli.common import make_app, run
from digit.visualize import parse_bbox, run_demo

app = make_app("Run a DIGIT checkpoint on images and draw its predictions.")


@app.command()
def demo(
    images: list[Path] = typer.Argument(..., help="Input images."),
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="Checkpoint (.pt): this project's or the released DIGIT one."
    ),
    bbox: str | None = typer.Option(
        None, "--bbox", help="x,y,w,h of the hands in pixels (default: the whole image)."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder."),
) -> None:
    """Draw predicted joints and part segmentation for each image into --out
    (<stem>_pred.png per image, plus predictions.json)."""
    box = parse_bbox(bbox) if bbox is not None else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    records = run_demo(images, checkpoint, out, bbox=box, device=device)
    typer.echo(f"wrote {len(records)} panels and predictions.json to {out}")


main = run(app, "digit-demo")
