"""`digit-demo`: predictions on images, as pictures (not built yet)."""

from pathlib import Path

import typer

from cli.common import make_app, not_built, run

app = make_app("Run a DIGIT checkpoint on images and draw its predictions.")


@app.command()
def demo(
    images: list[Path] = typer.Argument(..., help="Input images."),
    checkpoint: Path = typer.Option(..., "--checkpoint"),
    bbox: str | None = typer.Option(None, "--bbox", help="x,y,w,h of the hands."),
    out: Path = typer.Option(..., "--out"),
) -> None:
    """Draw predicted joints and part segmentation for each image into --out."""
    not_built("digit-demo", "the demo")


main = run(app, "digit-demo")
