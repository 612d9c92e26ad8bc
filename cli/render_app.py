"""`digit-render`: the synthetic default, the part-mask cache, and pictures of both."""

from pathlib import Path

import typer

from cli.common import data_root_option, make_app, out_option, run
from core.errors import DigitError
from render.synthetic_data.settings import SyntheticSettings

_DEFAULTS = SyntheticSettings()
app = make_app("MANO part-mask renderer for InterHand2.6M (and its synthetic stand-in).")


@app.command("make-synthetic")
def make_synthetic(
    out: Path = out_option(..., "Dataset root to write."),
    captures: int = typer.Option(
        _DEFAULTS.captures, "--captures", help="Captures (subjects) in the train split."
    ),
    eval_captures: int = typer.Option(
        _DEFAULTS.eval_captures,
        "--eval-captures",
        help="Captures (subjects) in each of val and test.",
    ),
    cameras: int = typer.Option(_DEFAULTS.cameras, "--cameras", help="Cameras per capture."),
    frames: int = typer.Option(
        _DEFAULTS.frames, "--frames", help="Frames per sequence (4 per capture)."
    ),
    seed: int = typer.Option(0, "--seed"),
    mix: str = typer.Option(
        "default",
        "--mix",
        help="Sequences per capture: default (right, left, 2 interacting) | interacting "
        "(right, left, 5 interacting with the hands in contact and overlapping) | mirrored "
        "(right, its depth mirror as the left, 1 interacting and its mirror: the outline never "
        "tells right from left).",
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Processes (default: all cores); the output is the same."
    ),
    no_images: bool = typer.Option(False, "--no-images", help="Write annotations only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset."),
) -> None:
    """Write a synthetic dataset in InterHand2.6M's exact layout (images, annotations, MANO)."""
    from render.synthetic_data.generate import make_synthetic as generate

    settings = SyntheticSettings(
        captures=captures,
        cameras=cameras,
        frames=frames,
        seed=seed,
        images=not no_images,
        eval_captures=eval_captures,
        mix=mix,
    )
    root = generate(out, settings, overwrite=overwrite, workers=workers)
    typer.echo(f"wrote the synthetic dataset to {root}")


@app.command("build-masks")
def build_masks(
    split: str = typer.Option(..., "--split", help="train | val | test"),
    data_root: Path | None = data_root_option(),
    mano_dir: Path | None = typer.Option(
        None, "--mano-dir", help="Folder with MANO_RIGHT.pkl, MANO_LEFT.pkl [<data-root>/mano]."
    ),
    out: Path | None = out_option(
        None,
        "Cache file [<data-root>/masks/masks_{split}.h5; --limit builds get "
        "masks_{split}.first{N}.h5]. With --shard K/N, the whole cache's name: the shard "
        "writes <stem>.shard-K-of-N.h5 beside it, which merge --out FILE --shards N joins.",
    ),
    masks: Path | None = typer.Option(
        None, "--masks", help="Folder for the default file names (instead of <data-root>/masks)."
    ),
    backend: str = typer.Option("auto", "--backend", help="Rasterizer: auto | numba | torch."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda (torch backend)."),
    workers: int = typer.Option(1, "--workers", help="Processes on this machine."),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="K/N: only the K-th (from 0) of N contiguous blocks of data.json; slurm: this "
        "Slurm array task's (K = task id - min, N = task count; scripts/slurm/).",
    ),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N images."),
    part_labels: str = typer.Option(
        "skinning", "--part-labels", help="skinning | DIGIT's per-vertex PATH.json."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Rebuild an existing complete file; restart mismatched work."
    ),
    piece_size: int = typer.Option(
        256, "--piece-size", help="Images per resumable piece (work lost at most per kill)."
    ),
) -> None:
    """Render the 33-class part masks of one split into masks_{split}.h5.

    Resumable: rerun the same command after an interruption to finish the job.

    Work in progress lives in <out>.partial/; the result equals an uninterrupted run's.
    """
    from render.mask_cache.builder import build_masks as build
    from render.synthetic_data.default import prepare_data_root

    r = build(
        split,
        data_root=prepare_data_root(data_root),
        mano_dir=mano_dir,
        out=out,
        backend=backend,
        device=device,
        workers=workers,
        shard=shard,
        limit=limit,
        part_labels=part_labels,
        overwrite=overwrite,
        piece_size=piece_size,
        masks_dir=masks,
    )
    what = "" if r.shard is None else f"shard {r.shard[0]}/{r.shard[1]}, "
    typer.echo(
        f"wrote {r.out}: {what}{r.images} images ({r.valid} valid; rendered right "
        f"{r.hands[0]}, left {r.hands[1]}) in {r.seconds:.1f} s with {r.backend}"
        + (f", {r.resumed} of {r.pieces} pieces resumed" if r.resumed else "")
    )
    if r.shard is not None:
        from render.mask_cache.builder import whole_cache_name

        typer.echo(
            f"when all {r.shard[1]} shards are built, join them into the split's cache with "
            f"`digit-render merge --out {whole_cache_name(r.out)} --shards {r.shard[1]}`"
        )
    if any(r.unseen):
        typer.echo(
            f"{r.unseen[0]} right and {r.unseen[1]} left rendered hands have no pixel in their "
            "mask (off the image, behind the camera or hidden): visible_px is 0 for them"
        )


@app.command("merge")
def merge(
    shards: list[Path] | None = typer.Argument(None, help="Shard files, any order."),
    out: Path = out_option(..., "The cache file to write."),
    count: int | None = typer.Option(
        None,
        "--shards",
        help="N: merge the N shard files build-masks names after --out "
        "(masks_train.h5 <- masks_train.shard-K-of-N.h5), refusing if any is missing.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
) -> None:
    """Join shard files (from build-masks --shard K/N or slurm) into one mask cache."""
    from render.mask_cache.merge import expected_shards, merge_shards

    if count is not None:
        shards = [*(shards or []), *expected_shards(out, count)]
    n = merge_shards(shards or [], out, overwrite=overwrite)
    typer.echo(f"wrote {out}: {n} images from {len(shards or [])} shards")


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., help="masks_{split}.h5"),
    data_root: Path | None = data_root_option(),
    mano_dir: Path | None = typer.Option(None, "--mano-dir"),
    sample: int = typer.Option(8, "--sample", help="Random images to re-render."),
    full: bool = typer.Option(False, "--full", help="Re-render every image (slow)."),
    seed: int = typer.Option(0, "--seed"),
    backend: str = typer.Option("auto", "--backend", help="auto | numba | torch"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
) -> None:
    """Check a mask cache against its annotations and every mask's checksum, and re-render a
    sample (or every image with --full); exit 1 on any mismatch."""
    from render.mask_cache.verify import verify_cache

    report = verify_cache(file, data_root, mano_dir, sample, seed, backend, device, full=full)
    typer.echo(report.text())
    if not report.ok:
        raise typer.Exit(1)


@app.command("show")
def show(
    file: Path = typer.Argument(..., help="masks_{split}.h5"),
    index: int = typer.Option(0, "--index"),
    out: Path = out_option(..., "Picture to write (.png, .jpg)."),
    data_root: Path | None = data_root_option(),
) -> None:
    """Draw one image, its mask overlay with the legend, and its projected joints."""
    from render.mask_cache.show import show_mask

    typer.echo(f"wrote {show_mask(file, index, out, data_root)}")


@app.command("preview")
def preview(
    out: Path = out_option(..., "Picture to write (.png, .jpg)."),
    split: str = typer.Option("train", "--split"),
    data_root: Path | None = data_root_option(),
    count: int = typer.Option(8, "--count", help="Number of images."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """A contact sheet of dataset images with their annotated joints and bboxes drawn on."""
    from core.interhand.reader import InterHandSplit
    from core.picture_files import check_picture_path, save_picture
    from render.preview import preview_sheet, spread_indices
    from render.synthetic_data.default import prepare_data_root

    spread_indices(1, count)  # checks --count before the dataset is read
    check_picture_path(out)
    root = prepare_data_root(data_root)
    data = InterHandSplit.from_root(root, split)
    save_picture(preview_sheet(data, spread_indices(len(data), count, seed)), out)
    typer.echo(f"wrote {out}")


@app.command("hand-gallery")
def hand_gallery(
    out: Path = out_option(..., "Picture to write (.png, .jpg)."),
    mano_dir: Path | None = typer.Option(None, "--mano-dir", help="Default: the synthetic model."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Both hands of a MANO-format model in several poses, coloured by part."""
    from core.assets import SYNTHETIC_MANO_DIR
    from core.picture_files import check_picture_path, save_picture
    from render.gallery import hand_gallery as gallery

    check_picture_path(out)
    save_picture(gallery(mano_dir or SYNTHETIC_MANO_DIR, seed=seed), out)
    typer.echo(f"wrote {out}")


@app.command("legend")
def legend(
    out_dir: Path = out_option(Path("assets/textures"), "Folder to write.", name="--out-dir"),
) -> None:
    """Write the class table (classes.json) and its legend picture (legend.png)."""
    from core.drawing import legend_image
    from core.files import atomic_write_text
    from core.parts import class_table_json
    from core.picture_files import check_picture_path, save_picture

    if out_dir.exists() and not out_dir.is_dir():
        raise DigitError(f"--out-dir {out_dir}: is a file, not a folder")
    check_picture_path(out_dir / "legend.png", "--out-dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "classes.json", class_table_json() + "\n")
    save_picture(legend_image(), out_dir / "legend.png")
    typer.echo(f"wrote {out_dir / 'classes.json'} and {out_dir / 'legend.png'}")


main = run(app, "digit-render")

if __name__ == "__main__":  # `python -m cli.render_app`
    main()
