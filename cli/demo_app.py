"""`digit-demo`: predictions on images, as pictures."""

from pathlib import Path

import torch
import typer

from cli.common import make_app, run
from core.errors import DigitError
from core.files import check_output_dir
from core.image_io import load_rgb
from digit.checkpoint import load_network
from digit.image_inputs import expand_image_paths
from digit.visualize import parse_bbox, run_demo

app = make_app("Run a DIGIT checkpoint on images and draw its predictions.")


@app.command()
def demo(
    images: list[Path] | None = typer.Argument(
        None, help="Input images and folders of images (each folder's images, sorted)."
    ),
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="Checkpoint (.pt): this project's or the released DIGIT one."
    ),
    bbox: str | None = typer.Option(
        None,
        "--bbox",
        help="x,y,w,h of the hands in pixels, or 'whole' for the whole image "
        "(default: the hands are detected in each image).",
    ),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    split: str | None = typer.Option(
        None, "--split", help="Instead of IMAGE...: images of this split, with their bboxes."
    ),
    data_root: Path | None = typer.Option(
        None, "--data-root", help="With --split (default: the synthetic dataset)."
    ),
    count: int = typer.Option(4, "--count", help="With --split: how many images."),
) -> None:
    """Draw predicted joints and part segmentation for each image into --out
    (<stem>_pred.png per image, plus predictions.json)."""
    if split is not None:
        if images or bbox is not None:
            raise DigitError("--split: give either IMAGE... (with --bbox) or --split, not both")
        images, box = _split_images(split, data_root, count)
    elif not images:
        raise DigitError("IMAGE...: no image given (or pass --split to use a dataset's images)")
    else:
        images = expand_image_paths(images)
        box = None if bbox in (None, "whole") else parse_bbox(bbox)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    extra = None
    if split is None and bbox is None:
        # bad inputs first (reading is cheap next to detection), so a wrong output, checkpoint
        # or image is the one error line, not "no hands found" or a bar cut short
        check_output_dir(out)
        load_network(checkpoint, "cpu")
        for path in images:
            load_rgb(path)
        from digit.detect.demo_boxes import detect_hand_boxes

        images, box, extra = detect_hand_boxes(images, typer.echo)
    records = run_demo(images, checkpoint, out, bbox=box, device=device, extra=extra)
    typer.echo(f"wrote {len(records)} panels and predictions.json to {out}")


def _split_images(split: str, data_root: Path | None, count: int) -> tuple[list[Path], list]:
    """`count` images spread over a split, each with its annotated bbox."""
    from core.interhand.reader import InterHandSplit
    from render.preview import spread_indices
    from render.synthetic_data.default import prepare_data_root

    data = InterHandSplit.from_root(prepare_data_root(data_root), split)
    indices = spread_indices(len(data), count)
    return [data.image_path(i) for i in indices], [data[i].bbox for i in indices]


main = run(app, "digit-demo")
