"""`digit-render build-masks`: render a split's part masks into the HDF5 cache, resumably.

Flow: check every input (fail fast, before parsing big annotation files) -> index the split ->
choose the rows (``--limit``, then ``--shard``) -> open ``<out>.partial/`` (same settings or a
clear error) -> render the missing pieces (in this process: one lane per core for the numba
backend, three overlapping stages for the torch one; or in ``workers`` joblib processes) ->
assemble the pieces into ``<out>`` atomically -> delete the partial folder.
Memory stays flat: a piece's inputs are gathered only when it is dispatched, and assembly
copies one piece at a time.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from core.errors import DigitError
from core.files import TMP_MARK, check_free_space, check_output_dir, os_error_line
from core.interhand.reader import AnnotationFiles, InterHandSplit
from core.mask_cache import (
    COMPRESSION,
    COMPRESSION_OPTS,
    FORMAT_VERSION,
    INTEGRITY,
    CacheAttributes,
    finished_cache_kind,
)
from core.parts import class_table_json
from core.paths import mask_cache_path, resolve_data_root, resolve_mano_dir
from core.processes import die_with_parent
from core.progress import progress
from core.splits import check_split, shard_bounds
from render.hand_model import MODEL_FILES, HandModel, file_sha256
from render.mask_cache.assemble import assemble
from render.mask_cache.pieces import (
    PartialDir,
    PieceSpec,
    plan_pieces,
    remove_finished_leftover,
    write_piece,
)
from render.mask_cache.scene import (
    FORWARD_BATCH,
    PieceInput,
    PieceResult,
    PosedScene,
    SceneTopology,
    piece_input,
    pose_piece,
    render_piece,
    render_posed,
    scene_topology,
    vertex_parts,
)
from render.raster import CONVENTION_VERSION, DEFAULT_NEAR_MM, RasterSettings, resolve_backend

DEFAULT_PIECE_SIZE = 256
CLI_BACKENDS = ("auto", "numba", "torch")


# --------------------------------------------------------------------------- options
def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """ "K/N" (K from 0), "slurm" (this Slurm array task's shard, `render.mask_cache.slurm`)
    or (k, n) -> (k, n); DigitError for anything else."""
    if shard is None:
        return None
    if isinstance(shard, str) and shard.strip() == "slurm":
        from render.mask_cache.slurm import slurm_array_shard

        return slurm_array_shard()
    if isinstance(shard, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not match:
            raise DigitError(f"--shard {shard}: expected K/N with 0 <= K < N, e.g. 0/4")
        k, n = int(match[1]), int(match[2])
    else:
        k, n = (int(x) for x in shard)
    if n < 1 or not 0 <= k < n:
        raise DigitError(f"--shard {k}/{n}: expected K/N with 0 <= K < N, e.g. 0/4")
    return k, n


def default_output(
    data_root: Path,
    split: str,
    shard: tuple[int, int] | None = None,
    limit: int | None = None,
    masks_dir: Path | None = None,
) -> Path:
    """``<masks_dir or data-root/masks>/masks_{split}.h5``; ``--limit`` and ``--shard`` builds
    get their own names (``masks_train.first100.h5``, ``masks_train.shard-03-of-16.h5``) so
    that they never take the place of the whole split's cache."""
    name = f"masks_{split}"
    if limit is not None:
        name += f".first{limit}"
    whole = mask_cache_path(masks_dir, data_root, split).with_name(f"{name}.h5")
    return whole if shard is None else shard_output(whole, *shard)


def shard_output(whole: Path, k: int, n: int) -> Path:
    """The file of shard k of n of the cache `whole` (``masks_train.h5`` ->
    ``masks_train.shard-03-of-16.h5``): the names build-masks gives and merge looks for."""
    return whole.with_name(f"{whole.stem}.shard-{k:0{len(str(n - 1))}d}-of-{n}{whole.suffix}")


_SHARD_NAME = re.compile(r"\.shard-(\d+)-of-(\d+)$")


def whole_cache_name(shard_file: Path) -> Path:
    """The cache a shard file is part of (``masks_train.shard-03-of-16.h5`` ->
    ``masks_train.h5``): the `--out` that `merge --shards N` is given."""
    return shard_file.with_name(_SHARD_NAME.sub("", shard_file.stem) + shard_file.suffix)


def shard_file_for(out: Path, k: int, n: int) -> Path:
    """The file shard k of n writes when `--out out` is given: `out` names the whole cache
    (the file `merge --out out --shards n` writes), so the shard takes `shard_output(out, k,
    n)`; an `out` already named as that shard is kept, one named as another shard refused."""
    match = _SHARD_NAME.search(out.stem)
    if match is None:
        return shard_output(out, k, n)
    if (int(match[1]), int(match[2])) != (k, n):
        raise DigitError(
            f"--out {out}: named as shard {int(match[1])}/{match[2]}, but --shard is {k}/{n}; "
            "give --out the whole cache's name (each shard then writes its own file)"
        )
    return out


def check_raster_options(backend: str, device: str) -> tuple[str, str | None]:
    """(resolved backend, torch device or None) for the CLI's --backend / --device."""
    if backend not in CLI_BACKENDS:
        raise DigitError(f"--backend: unknown backend {backend!r} (choose auto, numba or torch)")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise DigitError(f"--device: unknown device {device!r} (choose cpu or cuda)")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DigitError(f"--device {device}: CUDA is not available on this machine")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise DigitError(
                f"--device {device}: no such CUDA device ({torch.cuda.device_count()} found)"
            )
    settings = RasterSettings(backend=backend, device=device)
    try:
        resolved = resolve_backend(settings)
    except DigitError as exc:
        raise DigitError(f"--backend {backend} --device {device}: {exc}") from None
    return resolved, (device if resolved == "torch" else None)


def annotation_digests(files: AnnotationFiles) -> dict:
    """sha256 of the annotation files the masks depend on (None for a missing MANO file)."""
    return {
        "data_json_sha256": file_sha256(files.data),
        "camera_json_sha256": file_sha256(files.camera),
        "joint_3d_json_sha256": file_sha256(files.joint_3d),
        "mano_json_sha256": None if files.mano is None else file_sha256(files.mano),
    }


def part_labels_attribute(part_labels: str) -> dict:
    if part_labels == "skinning":
        return {"source": "skinning"}
    path = Path(part_labels)
    if not path.is_file():
        raise DigitError(f"--part-labels {part_labels}: part-label file not found")
    return {"source": "digit_json", "path": str(path.resolve()), "sha256": file_sha256(path)}


def renderer_attribute(backend: str, canvas_hw: tuple[int, int]) -> dict:
    return {
        "backend": backend,
        "rasterizer_convention": CONVENTION_VERSION,
        "near_mm": DEFAULT_NEAR_MM,
        "compression": COMPRESSION,
        "compression_opts": COMPRESSION_OPTS,
        "chunks": [1, int(canvas_hw[0]), int(canvas_hw[1])],
        "geometry": f"cpu float64, MANO forward in batches of {FORWARD_BATCH} on one thread",
    }


# --------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class RenderContext:
    """What a (worker) process needs to render pieces; small and picklable.

    threads: numba and torch threads in a worker process (0: leave the defaults).
    fingerprint: sha256 of the model and part-label files (a changed file is loaded afresh).
    parent_pid: the building process; a worker exits when it dies (`core.processes`).
    """

    mano_dir: str
    part_labels: str
    backend: str
    device: str | None
    canvas_hw: tuple[int, int]
    threads: int = 0
    fingerprint: str = ""
    parent_pid: int = 0


_LOADED: dict[tuple[str, str, str], tuple[HandModel, SceneTopology]] = {}


def _scene_for(ctx: RenderContext) -> tuple[HandModel, SceneTopology]:
    """The hand model and packed topology, loaded once per process."""
    key = (ctx.mano_dir, ctx.part_labels, ctx.fingerprint)
    if key not in _LOADED:
        model = HandModel.from_dir(Path(ctx.mano_dir))
        _LOADED[key] = (
            model,
            scene_topology(model, vertex_parts(Path(ctx.mano_dir), ctx.part_labels, model)),
        )
    return _LOADED[key]


def render_piece_file(
    ctx: RenderContext, spec: PieceSpec, inp: PieceInput, path: Path
) -> tuple[int, int]:
    """Render one piece and write it atomically to `path`; returns (piece index, images)."""
    if ctx.parent_pid:
        die_with_parent(ctx.parent_pid)
    if ctx.threads > 0:
        import numba

        numba.set_num_threads(min(ctx.threads, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(ctx.threads)
    model, topo = _scene_for(ctx)
    settings = RasterSettings(backend=ctx.backend, device=ctx.device)
    write_piece(path, render_piece(model, topo, inp, ctx.canvas_hw, settings))
    return spec.index, len(inp)


# --------------------------------------------------------------------------- the build
@dataclass(frozen=True)
class BuildReport:
    """What a build did: out (the cache written), images, pieces (total) and resumed (pieces
    found finished), seconds, valid (images with a usable mask), hands (right, left) rendered,
    unseen (right, left): rendered hands with no pixel in the mask (projected off the image or
    behind the camera, or hidden by the other hand), backend (resolved), shard (k, n) of a
    shard build (its file holds only that block; `merge` joins the n)."""

    out: Path
    images: int
    pieces: int
    resumed: int
    seconds: float
    valid: int
    hands: tuple[int, int]
    backend: str
    unseen: tuple[int, int] = (0, 0)
    shard: tuple[int, int] | None = None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _selection(n_total: int, limit: int | None, shard: tuple[int, int] | None) -> dict:
    n = n_total if limit is None else min(limit, n_total)
    start, stop = (0, n) if shard is None else shard_bounds(n, *shard)
    return {
        "total": n_total,
        "limit": limit,
        "shard": None if shard is None else list(shard),
        "start": start,
        "stop": stop,
    }


@dataclass(frozen=True)
class BuildPlan:
    """Everything decided before rendering: the split, its rows and canvas, the attributes of
    the file to write, and the settings that work in progress must match."""

    data: InterHandSplit
    out: Path
    selection: dict
    canvas: tuple[int, int]
    attrs: CacheAttributes
    settings: dict
    pieces: list[PieceSpec]
    context: RenderContext


def plan_build(
    split: str,
    data_root: Path | None,
    mano_dir: Path | None,
    out: Path | None,
    backend: str,
    device: str,
    workers: int,
    shard: str | tuple[int, int] | None,
    limit: int | None,
    part_labels: str,
    overwrite: bool,
    piece_size: int,
    log: Callable[[str], None] = _stderr,
    masks_dir: Path | None = None,
) -> BuildPlan:
    """Check every input (cheap checks first, annotations last) and plan the build; writes
    nothing but the removal of a finished build's leftover folder (with a `log` line)."""
    check_split(split)
    if workers < 1:
        raise DigitError(f"--workers: must be at least 1, got {workers}")
    if limit is not None and limit < 1:
        raise DigitError(f"--limit: must be at least 1, got {limit}")
    if piece_size < 1:
        raise DigitError(f"--piece-size: must be at least 1, got {piece_size}")
    shard_kn = parse_shard(shard)
    resolved, torch_device = check_raster_options(backend, device)
    root = resolve_data_root(data_root)
    mano = resolve_mano_dir(mano_dir, root)
    model = HandModel.from_dir(mano)
    labels_attr = part_labels_attribute(part_labels)
    labels_source = part_labels if part_labels == "skinning" else labels_attr["path"]
    topo = scene_topology(model, vertex_parts(mano, labels_source, model))
    if out is not None and masks_dir is not None:
        raise DigitError("--out and --masks: give one (--masks names a folder for default names)")
    if out is None:
        out = default_output(root, split, shard_kn, limit, masks_dir)
    else:
        out = Path(out) if shard_kn is None else shard_file_for(Path(out), *shard_kn)
    if out.is_dir():
        raise DigitError(f"--out {out}: is a folder, expected a file name")
    check_output_dir(out.parent)
    if out.exists() and not overwrite:
        kind = finished_cache_kind(out)
        if kind is not None:
            leftover = remove_finished_leftover(out)
            if leftover is not None:
                log(f"removed {leftover}: left over from the build that completed {out.name}")
            raise DigitError(f"{out}: {kind} exists (pass --overwrite to rebuild it)")
        raise DigitError(f"{out}: exists and is not a finished mask cache (pass --overwrite)")

    data = InterHandSplit.from_root(root, split)
    if data.files.mano is None:
        raise DigitError(
            f"{root / 'annotations' / split / f'InterHand2.6M_{split}_MANO_NeuralAnnot.json'}: "
            "file not found (build-masks renders the NeuralAnnot MANO fits)"
        )
    if len(data) == 0:
        raise DigitError(f"{data.files.data}: no images")
    sel = _selection(len(data), limit, shard_kn)
    check_mano_finite(data, sel["start"], sel["stop"])
    if sel["start"] == sel["stop"]:
        raise DigitError(f"--shard {shard_kn[0]}/{shard_kn[1]}: empty ({sel['stop']} images)")
    # the canvas spans the whole selection, so that every shard's chunks have the same shape
    hw = data.columns.hw[: sel["total"] if limit is None else min(limit, sel["total"])]
    canvas = (int(hw[:, 0].max()), int(hw[:, 1].max()))
    attrs = CacheAttributes(
        format_version=FORMAT_VERSION,
        split=split,
        classes=json.loads(class_table_json()),
        part_labels=labels_attr,
        mano={
            **{MODEL_FILES[s]: h for s, h in model.model_sha256.items()},
            "synthetic": bool(model.is_synthetic),
        },
        mano_dir=str(mano.resolve()),
        data_root=str(root.resolve()),
        annotations=annotation_digests(data.files),
        renderer=renderer_attribute(resolved, canvas),
        integrity=INTEGRITY,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        complete=True,
        selection=sel if (limit is not None or shard_kn is not None) else None,
    )
    settings = {
        **attrs.content_key(),
        "selection": sel,
        "canvas_hw": list(canvas),
        "piece_size": piece_size,
    }
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
    fingerprint = json.dumps([attrs.mano, attrs.part_labels], sort_keys=True)
    ctx = RenderContext(
        str(mano), labels_source, resolved, torch_device, canvas, threads, fingerprint, os.getpid()
    )
    _LOADED[(ctx.mano_dir, ctx.part_labels, ctx.fingerprint)] = (model, topo)
    pieces = plan_pieces(sel["start"], sel["stop"], piece_size)
    return BuildPlan(data, out, sel, canvas, attrs, settings, pieces, ctx)


def check_mano_finite(data: InterHandSplit, start: int, stop: int) -> None:
    """DigitError naming the MANO file, capture, frame and hand of the first fit of rows
    [start, stop) with a non-finite parameter (caught before hours of rendering)."""
    frames = data.frames
    used = np.unique(data.columns.frame_row[start:stop])
    params = [frames.mano_pose[used], frames.mano_shape[used], frames.mano_trans[used]]
    finite = np.stack([np.isfinite(a).all(axis=-1) for a in params]).all(axis=0)  # (F, 2)
    bad = np.argwhere(frames.has_mano[used] & ~finite)
    if len(bad):
        f, h = (int(x) for x in bad[0])
        side = ("right", "left")[h]
        raise DigitError(
            f"{data.files.mano}: capture {int(frames.capture[used[f]])}, frame "
            f"{int(frames.frame_idx[used[f]])}, {side} hand: MANO fit has non-finite values "
            f"({len(bad)} hand fits in all)"
        )


def build_masks(
    split: str,
    data_root: Path | None = None,
    mano_dir: Path | None = None,
    out: Path | None = None,
    backend: str = "auto",
    device: str = "cpu",
    workers: int = 1,
    shard: str | tuple[int, int] | None = None,
    limit: int | None = None,
    part_labels: str = "skinning",
    overwrite: bool = False,
    *,
    piece_size: int = DEFAULT_PIECE_SIZE,
    masks_dir: Path | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] = _stderr,
) -> BuildReport:
    """Render split `split` into the mask cache `out` (see layout.py); resumes unfinished work.

    data_root: InterHand2.6M-layout root (None: the synthetic default). mano_dir: folder with
    MANO_RIGHT.pkl / MANO_LEFT.pkl (None: ``<data_root>/mano``). out: None gives
    `default_output`. backend/device: rasterizer (auto|numba|torch, cpu|cuda[:i]); geometry
    is always CPU float64, so the bytes do not depend on them. workers: joblib processes.
    shard: "K/N" or (k, n): the k-th of n contiguous blocks (after `limit`). limit: only the
    first N images of data.json. part_labels: "skinning" or DIGIT's per-vertex JSON path.
    overwrite: replace an existing complete `out` (only once the new file is complete) and
    discard work in progress started with other settings. piece_size: images per piece.
    masks_dir: folder for the default file name (instead of ``<data_root>/masks``; not with out).
    """
    plan = plan_build(
        split, data_root, mano_dir, out, backend, device, workers, shard, limit, part_labels,
        overwrite, piece_size, log, masks_dir,
    )  # fmt: skip
    t0 = time.perf_counter()  # the build itself, not the creation of a default dataset
    out = plan.out
    try:  # any write failure (full disk, permissions): one line; finished pieces are kept
        n, resumed = _build(plan, workers, overwrite, show_progress, log)
    except OSError as exc:
        raise DigitError(os_error_line(exc, out)) from None
    seconds = time.perf_counter() - t0
    report = _report(out, n, len(plan.pieces), resumed, seconds, plan.context.backend)
    shard_kn = plan.selection["shard"]
    return report if shard_kn is None else replace(report, shard=tuple(shard_kn))


SPACE_MARGIN = 8 << 20  # bytes beyond the estimate: HDF5 metadata, settings, the file system


def _piece_bytes(partial: PartialDir, pieces: Sequence[PieceSpec]) -> tuple[int, int]:
    """(bytes, images) of the finished pieces among `pieces`."""
    done = partial.finished()
    size = images = 0
    for p in pieces:
        if p.index in done:
            size += partial.piece(p.index).stat().st_size
            images += p.stop - p.start
    return size, images


def _check_space_for_rest(plan: BuildPlan, partial: PartialDir) -> None:
    """Refuse early when the rest of the pieces and the assembled file will not fit, estimated
    from the finished pieces' bytes per image (the assembled file is about all pieces)."""
    size, images = _piece_bytes(partial, plan.pieces)
    if images == 0:
        return
    total = sum(p.stop - p.start for p in plan.pieces)
    per_image = size / images
    need = int(1.1 * per_image * ((total - images) + total)) + SPACE_MARGIN
    check_free_space(plan.out.parent, need, f"the rest of the pieces and {plan.out.name}")


def _build(
    plan: BuildPlan,
    workers: int,
    overwrite: bool,
    show_progress: bool,
    log: Callable[[str], None],
) -> tuple[int, int]:
    """Render the missing pieces and assemble them; (images written, pieces resumed)."""
    out, split = plan.out, plan.attrs.split
    out.parent.mkdir(parents=True, exist_ok=True)
    with PartialDir.open(out, plan.settings, discard_other=overwrite) as partial:
        for stale in out.parent.glob(f"{out.name}{TMP_MARK}*"):  # a killed assembly
            stale.unlink(missing_ok=True)
        done = partial.finished()
        todo = [p for p in plan.pieces if p.index not in done]
        resumed = len(plan.pieces) - len(todo)
        if resumed:
            log(f"resuming {partial.path}: {resumed} of {len(plan.pieces)} pieces already done")
            _check_space_for_rest(plan, partial)
        start, stop = plan.selection["start"], plan.selection["stop"]
        checked = [bool(resumed)]
        with progress(stop - start, f"masks {split}", enabled=show_progress) as bar:

            def advance(n: int) -> None:
                bar.advance(n)
                if not checked[0]:  # once, from the first piece written
                    checked[0] = True
                    _check_space_for_rest(plan, partial)

            bar.advance(sum(p.stop - p.start for p in plan.pieces if p.index in done))
            _render_all(plan.data, plan.context, todo, partial, workers, advance)
        size, _ = _piece_bytes(partial, plan.pieces)
        check_free_space(out.parent, size + SPACE_MARGIN, f"assembling {out.name}")
        names = plan.data.columns.file_name[start:stop]
        with progress(stop - start, f"assemble {out.name}", enabled=show_progress) as bar:
            n = assemble(
                out,
                plan.attrs,
                plan.canvas,
                [partial.piece(p.index) for p in plan.pieces],
                file_names=lambda off, k: [x.decode("utf-8") for x in names[off : off + k]],
                advance=bar.advance,
            )
        partial.remove()
    return n, resumed


def _render_all(
    data: InterHandSplit,
    ctx: RenderContext,
    todo: Sequence[PieceSpec],
    partial: PartialDir,
    workers: int,
    advance: Callable[[int], None],
) -> None:
    def inputs(spec: PieceSpec) -> PieceInput:
        return piece_input(data, spec.start, spec.stop)

    if workers == 1 or len(todo) <= 1:
        if _lanes_fit(ctx):
            _render_lanes(ctx, todo, inputs, partial, advance)
        else:
            _render_pipelined(ctx, todo, inputs, partial, advance)
        return
    from joblib import Parallel, delayed

    jobs = (
        delayed(render_piece_file)(ctx, spec, inputs(spec), partial.piece(spec.index))
        for spec in todo
    )
    run = Parallel(n_jobs=workers, return_as="generator_unordered", pre_dispatch="2*n_jobs")
    for _, n in run(jobs):
        advance(n)


def _lanes_fit(ctx: RenderContext) -> bool:
    """Whether this process renders in lanes (`_render_lanes`): the numba backend, on a
    threading layer that takes kernels launched from several threads at once."""
    if ctx.backend != "numba":
        return False
    from render.raster.numba_kernel import start_threading_layer

    return start_threading_layer() in ("omp", "tbb")


def _render_lanes(
    ctx: RenderContext,
    todo: Sequence[PieceSpec],
    inputs: Callable[[PieceSpec], PieceInput],
    partial: PartialDir,
    advance: Callable[[int], None],
) -> None:
    """The numba backend: one lane per core (numba's thread count), each taking whole pieces
    one after another (MANO, the rasterizer pass, checksums, compression, the file write) on
    one thread. No lane waits for another and no core is shared by more than one lane: the
    build then costs the sum of its stages' CPU time, where three overlapping stages of which
    one used every core lost 0.1-0.2 x of labels alone to threads waiting on each other (same
    run: 1.37-1.45 x against 1.43-1.64 x; BENCHMARKS.md). Every piece is the same bytes as
    rendered any other way (MANO runs in fixed batches; `FORWARD_BATCH`)."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    import numba

    model, topo = _scene_for(ctx)
    settings = RasterSettings(backend=ctx.backend, device=ctx.device)
    lanes = max(1, min(numba.get_num_threads(), len(todo)))

    def piece(spec: PieceSpec) -> int:
        numba.set_num_threads(1)  # this thread's kernels, checksums and deflate on one core
        inp = inputs(spec)
        result = render_posed(topo, inp, pose_piece(model, inp), ctx.canvas_hw, settings)
        return _write_counted(partial.piece(spec.index), result)

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MANO in every lane on one thread, as `pose_hands` asks
    try:
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="lane") as pool:
            running: set = set()
            for spec in todo:  # at most one piece per lane in memory
                if len(running) >= lanes:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        advance(future.result())
                running.add(pool.submit(piece, spec))
            for future in running:
                advance(future.result())
    finally:
        torch.set_num_threads(torch_threads)


def _render_pipelined(
    ctx: RenderContext,
    todo: Sequence[PieceSpec],
    inputs: Callable[[PieceSpec], PieceInput],
    partial: PartialDir,
    advance: Callable[[int], None],
) -> None:
    """The torch backend (or numba on its "workqueue" layer, which takes one parallel launch
    at a time): the pieces one after another in this process, in three overlapping stages: MANO for
    the next piece (`pose_piece`, one thread), the rasterizer pass and checksums of this one
    (`render_posed`, every core), compression and the file write of the one before. The
    kernels, torch, ISA-L and the file write release the GIL, so the single-threaded stages no
    longer leave a core idle. At most one piece waits in each stage (memory: three pieces)."""
    from concurrent.futures import ThreadPoolExecutor

    model, topo = _scene_for(ctx)
    settings = RasterSettings(backend=ctx.backend, device=ctx.device)

    def pose(spec: PieceSpec) -> tuple[PieceInput, PosedScene]:
        inp = inputs(spec)
        return inp, pose_piece(model, inp)

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="pose-piece") as poser,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-piece") as writer,
    ):
        posing = poser.submit(pose, todo[0]) if todo else None
        writing = None
        for k, spec in enumerate(todo):
            inp, posed = posing.result()
            if k + 1 < len(todo):
                posing = poser.submit(pose, todo[k + 1])
            result = render_posed(topo, inp, posed, ctx.canvas_hw, settings)
            if writing is not None:
                advance(writing.result())
            writing = writer.submit(_write_counted, partial.piece(spec.index), result)
        if writing is not None:
            advance(writing.result())


def _write_counted(path: Path, result: PieceResult) -> int:
    write_piece(path, result)
    return len(result.image_id)


def _report(
    out: Path, n: int, pieces: int, resumed: int, seconds: float, backend: str
) -> BuildReport:
    import h5py

    with h5py.File(out, "r") as f:
        valid = int(np.count_nonzero(f["valid"][...]))
        rendered = f["hands"][...]
        unseen = (rendered & (f["visible_px"][...] == 0)).sum(axis=0)
    hands = rendered.sum(axis=0)
    return BuildReport(
        out,
        n,
        pieces,
        resumed,
        seconds,
        valid,
        (int(hands[0]), int(hands[1])),
        backend,
        (int(unseen[0]), int(unseen[1])),
    )
