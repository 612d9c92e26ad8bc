"""`digit-demo`: predictions on images, as pictures."""

import time
from pathlib import Path

import torch
import typer

from cli.common import data_root_option, make_app, out_option, run
from core.errors import DigitError
from core.image_io import load_rgb
from digit.checkpoint import load_network
from digit.demo.inputs import parse_bbox
from digit.demo.intrinsics import FOCAL_PER_LONG_SIDE, parse_focal, parse_princpt
from digit.demo.out_folder import check_out_folder
from digit.demo.run import DEFAULT_BATCH_SIZE, panel_names, run_demo, run_files
from digit.image_inputs import expand_image_paths

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
    out: Path = out_option(..., "Output folder."),
    split: str | None = typer.Option(
        None, "--split", help="Instead of IMAGE...: images of this split, with their bboxes."
    ),
    data_root: Path | None = data_root_option("With --split (default: the synthetic dataset)."),
    count: int = typer.Option(4, "--count", help="With --split: how many images."),
    batch_size: int = typer.Option(
        DEFAULT_BATCH_SIZE, "--batch-size", help="Images per network call."
    ),
    focal: str | None = typer.Option(
        None,
        "--focal",
        help=f"Focal length F or FX,FY in pixels (default: {FOCAL_PER_LONG_SIDE} x the image's "
        "long side, as InterHand2.6M's cameras; with --split, the dataset camera's).",
    ),
    princpt: str | None = typer.Option(
        None,
        "--princpt",
        help="Principal point X,Y in pixels (default: the image centre; with --split, the "
        "dataset camera's).",
    ),
    pictures: bool = typer.Option(
        True, "--pictures/--no-pictures", help="Draw <stem>_pred.png (or write the JSON only)."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace an earlier digit-demo run in --out: its predictions.json and the "
        "files it lists (nothing else).",
    ),
    meshes: bool = typer.Option(
        False,
        "--meshes",
        help="Also fit MANO hands to the predicted joints: <stem>_{right,left}.obj, "
        "<stem>_mano.json (MANO_NeuralAnnot form) and <stem>_mesh.png per image.",
    ),
    flip_test: bool = typer.Option(
        False,
        "--flip-test",
        help="Average each crop's answer with its mirror's, mapped back (as digit-eval "
        "--flip-test): twice the network time.",
    ),
    mano_dir: Path | None = typer.Option(
        None,
        "--mano-dir",
        help="With --meshes: folder with MANO_RIGHT.pkl and MANO_LEFT.pkl (default: "
        "<data-root>/mano with --split, else the project's synthetic hand model).",
    ),
) -> None:
    """Draw each image's predicted hands (2D, part segmentation, 3D views; with --split next
    to the ground truth and the error) into --out: <stem>_pred.png per image, plus
    predictions.json (2D joints, root-relative 3D joints in mm, handedness, crop, intrinsics)."""
    started = time.perf_counter()
    focal_px = None if focal is None else parse_focal(focal)
    princpt_px = None if princpt is None else parse_princpt(princpt)
    if batch_size < 1:
        raise DigitError(f"--batch-size: must be at least 1, got {batch_size}")
    truths = None
    if split is not None:
        if images or bbox is not None:
            raise DigitError("--split: give either IMAGE... (with --bbox) or --split, not both")
        images, box, truths = _split_images(split, data_root, count)
    elif not images:
        raise DigitError("IMAGE...: no image given (or pass --split to use a dataset's images)")
    else:
        images = expand_image_paths(images)
        box = None if bbox in (None, "whole") else parse_bbox(bbox)
    # bad inputs first (reading is cheap next to detection), so a wrong output, checkpoint or
    # image is the one error line, not "no hands found" or a bar cut short
    check_out_folder(out, images, run_files(panel_names(images), pictures, meshes), overwrite)
    mesh_options = _mesh_options(mano_dir, data_root, split) if meshes else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, info = load_network(checkpoint, device)
    extra = None
    if split is None and bbox is None:
        for path in images:
            load_rgb(path)
        from digit.detect.demo_boxes import detect_hand_boxes

        images, box, extra = detect_hand_boxes(images, typer.echo)
    result = run_demo(
        images, net, info, out, bbox=box, extra=extra, truths=truths, focal=focal_px,
        princpt=princpt_px, batch_size=batch_size, started=started, pictures=pictures,
        overwrite=overwrite, meshes=mesh_options, flip_test=flip_test,
    )  # fmt: skip
    what = f"{len(result.records)} panels and " if pictures else ""
    what += "meshes and " if meshes else ""
    typer.echo(f"wrote {what}predictions.json ({len(result.records)} images) to {out}")
    typer.echo(result.summary())


def _mesh_options(mano_dir: Path | None, data_root: Path | None, split: str | None):
    """The hand model for --meshes (`digit.meshes.demo.MeshOptions.load`): --mano-dir, else
    the data root's mano/ with --split, else the synthetic model."""
    from digit.meshes.demo import MeshOptions
    from render.synthetic_data.default import prepare_data_root

    root = prepare_data_root(data_root) if split is not None and mano_dir is None else None
    return MeshOptions.load(mano_dir, root)


def _split_images(split: str, data_root: Path | None, count: int) -> tuple[list, list, list]:
    """`count` images spread over a split, each with its annotated bbox and ground truth."""
    from core.interhand.reader import InterHandSplit
    from digit.demo.truth import ImageTruth
    from render.preview import spread_indices
    from render.synthetic_data.default import prepare_data_root

    data = InterHandSplit.from_root(prepare_data_root(data_root), split)
    records = [data[i] for i in spread_indices(len(data), count)]
    return (
        [r.image_path for r in records],
        [r.bbox for r in records],
        [ImageTruth.from_record(r) for r in records],
    )


main = run(app, "digit-demo")
