"""`digit-render`: the synthetic default, the part-mask cache, and pictures of both."""

from pathlib import Path

import typer

from cli.common import make_app, not_built, run

app = make_app("MANO part-mask renderer for InterHand2.6M (and its synthetic stand-in).")


@app.command("make-synthetic")
def make_synthetic(
    out: Path = typer.Option(..., "--out", help="Dataset root to write."),
    captures: int = typer.Option(3, "--captures"),
    cameras: int = typer.Option(4, "--cameras"),
    frames: int = typer.Option(30, "--frames", help="Frames per sequence."),
    seed: int = typer.Option(0, "--seed"),
    no_images: bool = typer.Option(False, "--no-images", help="Write annotations only."),
) -> None:
    """Write a synthetic dataset in InterHand2.6M's exact layout."""
    not_built("digit-render make-synthetic", "the synthetic dataset generator")


@app.command("build-masks")
def build_masks(
    split: str = typer.Option(..., "--split", help="train | val | test"),
    data_root: Path | None = typer.Option(None, "--data-root"),
    mano_dir: Path | None = typer.Option(None, "--mano-dir"),
    out: Path | None = typer.Option(None, "--out"),
    backend: str = typer.Option("auto", "--backend", help="auto | numba | torch"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    workers: int = typer.Option(1, "--workers"),
    shard: str | None = typer.Option(None, "--shard", help="K/N"),
    limit: int | None = typer.Option(None, "--limit"),
    part_labels: str = typer.Option("skinning", "--part-labels", help="skinning | PATH.json"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Render the 33-class part masks of one split into masks_{split}.h5."""
    not_built("digit-render build-masks", "the mask cache builder")


@app.command("merge")
def merge(
    shards: list[Path] = typer.Argument(..., help="Shard files, any order."),
    out: Path = typer.Option(..., "--out"),
) -> None:
    """Join shard files into one mask cache."""
    not_built("digit-render merge", "merging shards")


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., help="masks_{split}.h5"),
    data_root: Path | None = typer.Option(None, "--data-root"),
    mano_dir: Path | None = typer.Option(None, "--mano-dir"),
) -> None:
    """Check a mask cache against its annotations and re-render a sample."""
    not_built("digit-render verify", "verification")


@app.command("show")
def show(
    file: Path = typer.Argument(..., help="masks_{split}.h5"),
    index: int = typer.Option(0, "--index"),
    out: Path = typer.Option(..., "--out"),
    data_root: Path | None = typer.Option(None, "--data-root"),
) -> None:
    """Draw one image, its mask overlay with the legend, and its projected joints."""
    not_built("digit-render show", "drawing cached masks")


@app.command("legend")
def legend(
    out_dir: Path = typer.Option(Path("assets/textures"), "--out-dir"),
) -> None:
    """Write the class table (classes.json) and its legend picture (legend.png)."""
    from render.drawing import legend_image
    from render.parts import class_table_json

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "classes.json").write_text(class_table_json() + "\n")
    legend_image().save(out_dir / "legend.png")
    typer.echo(f"wrote {out_dir / 'classes.json'} and {out_dir / 'legend.png'}")


main = run(app, "digit-render")
