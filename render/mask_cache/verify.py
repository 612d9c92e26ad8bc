"""`digit-render verify`: check a mask cache against its annotations and re-render a sample.

Checks, each reported on one line: the attributes and dataset types; the annotation files'
sha256 against the recorded ones; count, image ids, file names and sizes against data.json
(the rows the file's selection names); ``hands`` and ``valid`` against the MANO fits and
hand types; every mask's crc32 against the stored one (a chunk that does not inflate is a
problem of that image, not a crash), class range (0..32, a hand's classes only where that hand
was rendered, 0 outside the image) and visible pixel counts; and a random sample (``--sample
N``), or every image (``--full``), re-rendered and compared byte for byte (masks and per-image
values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from core.mask_cache import (
    FORMAT_VERSION,
    MASKS,
    PER_IMAGE,
    MaskCache,
    mask_crc32,
)
from core.parts import LEFT_OFFSET, NUM_CLASSES, RIGHT_OFFSET, class_table_json
from core.progress import progress
from render.hand_model import MODEL_FILES, HandModel
from render.mask_cache.builder import annotation_digests, check_raster_options
from render.mask_cache.scene import (
    PieceInput,
    mask_valid,
    piece_input,
    render_piece,
    scene_topology,
    vertex_parts,
    visible_pixels,
)
from render.raster import RasterSettings


@dataclass
class VerifyReport:
    """Lines of the report and the problems found (empty: the file is good)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self, name: str, problems: list[str], ok_detail: str = "") -> None:
        if problems:
            self.problems += [f"{name}: {p}" for p in problems]
            shown = problems[:5] + ([f"... {len(problems) - 5} more"] if len(problems) > 5 else [])
            self.lines.append(f"{name}: FAILED")
            self.lines += [f"  - {p}" for p in shown]
        else:
            self.lines.append(f"{name}: ok" + (f" ({ok_detail})" if ok_detail else ""))

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        verdict = "OK" if self.ok else f"FAILED ({len(self.problems)} problems)"
        return "\n".join([*self.lines, verdict])


def _dataset_problems(cache: MaskCache) -> list[str]:
    f, attrs = cache.file, cache.attrs
    out = []
    n = len(cache)
    if attrs.format_version != FORMAT_VERSION:
        out.append(f"format_version {attrs.format_version}, this program reads {FORMAT_VERSION}")
    if attrs.classes != json.loads(class_table_json()):
        out.append("classes differ from this program's class table")
    masks = f[MASKS]
    if masks.dtype != np.uint8 or masks.ndim != 3 or masks.shape[0] != n:
        out.append(f"masks: {masks.dtype} {masks.shape}, expected uint8 ({n}, Hmax, Wmax)")
    chunks = (1, *cache.canvas_hw)
    if masks.chunks != chunks or tuple(attrs.renderer.get("chunks", ())) != chunks:
        out.append(f"masks chunks {masks.chunks}, renderer says {attrs.renderer.get('chunks')}")
    if masks.compression != attrs.renderer.get("compression") or masks.compression_opts != (
        attrs.renderer.get("compression_opts")
    ):
        out.append(
            f"masks filter {masks.compression}-{masks.compression_opts} differs from renderer"
        )
    for name, (dtype, tail) in PER_IMAGE.items():
        ds = f[name]
        same_type = ds.dtype == dtype or (name == "file_name" and ds.dtype.kind == "O")
        if not same_type or ds.shape != (n, *tail):
            out.append(f"{name}: {ds.dtype} {ds.shape}, expected {dtype} {(n, *tail)}")
    hw = cache.image_hw
    if len(hw) and (hw[:, 0].max() > cache.canvas_hw[0] or hw[:, 1].max() > cache.canvas_hw[1]):
        out.append("image_hw exceeds the masks canvas")
    return out


def _rows(cache: MaskCache, n_total: int) -> tuple[int, int]:
    sel = cache.attrs.selection
    if sel is None:
        return 0, n_total
    return int(sel["start"]), int(sel["stop"])


def _index_problems(cache: MaskCache, data: InterHandSplit, start: int, stop: int) -> list[str]:
    f, c = cache.file, data.columns
    out = []
    if stop - start != len(cache) or stop > len(data):
        return [f"{len(cache)} images, the annotations give rows {start}..{stop} of {len(data)}"]
    stored_names = f["file_name"].asstr()[...]
    for name, have, want in (
        ("image_id", cache.image_id, c.image_id[start:stop]),
        ("image_hw", cache.image_hw, c.hw[start:stop]),
        ("file_name", stored_names, np.char.decode(c.file_name[start:stop], "utf-8")),
    ):
        bad = np.flatnonzero((np.asarray(have) != np.asarray(want)).reshape(len(have), -1).any(1))
        out += [f"{name} of image {i} differs from data.json row {start + i}" for i in bad[:5]]
        if len(bad) > 5:
            out.append(f"{name}: {len(bad)} images differ in all")
    return out


def _flag_problems(cache: MaskCache, data: InterHandSplit, start: int, stop: int) -> list[str]:
    c = data.columns
    has = data.frames.has_mano[c.frame_row[start:stop]]
    hands = cache.file["hands"][...]
    valid = cache.file["valid"][...]
    out = []
    for name, have, want in (
        ("hands", hands, has),
        ("valid", valid, mask_valid(c.hand_type_code[start:stop], has)),
    ):
        bad = np.flatnonzero((have != want).reshape(len(have), -1).any(1))
        out += [f"{name} of image {i} differs from the MANO fits / hand type" for i in bad[:5]]
        if len(bad) > 5:
            out.append(f"{name}: {len(bad)} images differ in all")
    iou = cache.file["lr_iou"][...]
    both = hands.all(1)
    if np.isnan(iou[both]).any() or (~np.isnan(iou[~both])).any():
        out.append("lr_iou is NaN where both hands are rendered, or set where they are not")
    if (iou[both] < 0).any() or (iou[both] > 1).any():
        out.append("lr_iou outside 0..1")
    fit = cache.file["fit_error_mm"][...]
    if (~np.isnan(fit[~hands])).any():
        out.append("fit_error_mm set for a hand without a fit")
    return out


def _mask_problems(cache: MaskCache, hands: np.ndarray, show_progress: bool) -> list[str]:
    """Every mask: inflates, matches its crc32, class range, visible pixel counts."""
    out: list[str] = []
    visible = cache.file["visible_px"][...]
    with progress(len(cache), "masks", enabled=show_progress) as bar:
        for i in range(len(cache)):
            try:
                canvas = cache.canvas(i, check=False)
            except DigitError as exc:
                out.append(f"image {i}: {str(exc).split(': ', 1)[-1].split(';')[0]}")
                continue
            h, w = (int(x) for x in cache.image_hw[i])
            crc = mask_crc32(canvas[:h, :w])
            if crc != int(cache.crc32[i]):
                out.append(
                    f"image {i}: crc32 {crc:08x} differs from the stored {cache.crc32[i]:08x}"
                )
            counts = np.bincount(canvas[:h, :w].ravel(), minlength=256)
            if counts[NUM_CLASSES:].any():
                out.append(f"image {i}: class ids above {NUM_CLASSES - 1}")
            if counts[RIGHT_OFFSET:LEFT_OFFSET].any() and not hands[i, 0]:
                out.append(f"image {i}: right-hand classes but no right hand rendered")
            if counts[LEFT_OFFSET:NUM_CLASSES].any() and not hands[i, 1]:
                out.append(f"image {i}: left-hand classes but no left hand rendered")
            if canvas[h:].any() or canvas[:, w:].any():
                out.append(f"image {i}: non-zero pixels outside its {h}x{w} image")
            if (visible_pixels(canvas[None])[0] != visible[i]).any():
                out.append(f"image {i}: visible_px {visible[i].tolist()} differs from the mask")
            if len(out) > 50:
                out.append("stopped after 50 problems")
                break
            if i % 256 == 255 or i == len(cache) - 1:
                bar.advance(i % 256 + 1)
    return out


def _runs(rows: np.ndarray, longest: int) -> list[tuple[int, int]]:
    """Sorted distinct rows -> [start, stop) runs of consecutive rows, each at most `longest`."""
    runs: list[tuple[int, int]] = []
    for r in rows.tolist():
        if runs and runs[-1][1] == r and r - runs[-1][0] < longest:
            runs[-1] = (runs[-1][0], r + 1)
        else:
            runs.append((r, r + 1))
    return runs


RERENDER_BATCH = 64


def _rerender_problems(
    cache: MaskCache,
    data: InterHandSplit,
    start: int,
    mano_dir: Path,
    sample: np.ndarray,
    raster: RasterSettings,
    show_progress: bool = False,
) -> list[str]:
    attrs = cache.attrs
    model = HandModel.from_dir(mano_dir)
    recorded = {k: v for k, v in attrs.mano.items() if k in MODEL_FILES.values()}
    found = {MODEL_FILES[s]: h for s, h in model.model_sha256.items()}
    if recorded != found:
        return [f"{mano_dir}: MANO files differ from the ones the cache was built with"]
    labels = attrs.part_labels
    source = "skinning" if labels.get("source") == "skinning" else labels.get("path", "?")
    topo = scene_topology(model, vertex_parts(mano_dir, source, model))
    out: list[str] = []
    compared = ("hands", "valid", "fit_error_mm", "lr_iou", "image_id", "image_hw", "visible_px")
    with progress(len(sample), "re-render", enabled=show_progress) as bar:
        for a, b in _runs(sample, RERENDER_BATCH):
            inp: PieceInput = piece_input(data, start + a, start + b)
            res = render_piece(model, topo, inp, cache.canvas_hw, raster)
            for k, i in enumerate(range(a, b)):
                try:
                    stored_mask = cache.canvas(i, check=False)
                except DigitError:
                    stored_mask = None  # reported by the mask checks
                if stored_mask is None or res.masks[k].tobytes() != stored_mask.tobytes():
                    diff = (
                        "unreadable"
                        if stored_mask is None
                        else (f"{int(np.count_nonzero(res.masks[k] != stored_mask))} pixels")
                    )
                    out.append(f"image {i}: mask differs from a fresh rendering ({diff})")
                if int(res.mask_crc32[k]) != int(cache.crc32[i]):
                    out.append(f"image {i}: stored crc32 differs from a fresh rendering's")
                for name in compared:
                    stored = cache.file[name][i]
                    fresh = np.asarray(getattr(res, name)[k], dtype=stored.dtype)
                    if np.asarray(stored).tobytes() != fresh.tobytes():
                        out.append(
                            f"image {i}: {name} {stored} differs from a fresh computation {fresh}"
                        )
            bar.advance(b - a)
    return out


def verify_cache(
    path: Path,
    data_root: Path | None = None,
    mano_dir: Path | None = None,
    sample: int = 8,
    seed: int = 0,
    backend: str = "auto",
    device: str = "cpu",
    show_progress: bool = True,
    full: bool = False,
) -> VerifyReport:
    """Run every check on the cache at `path` (see the module docstring).

    data_root / mano_dir default to the folders recorded in the file. sample: how many random
    images to re-render (with `backend` on `device`; results do not depend on them); full:
    re-render every image instead. DigitError only when the file cannot be checked at all
    (not a cache, another format, no annotations).
    """
    if sample < 0:
        raise DigitError(f"--sample: must be at least 0, got {sample}")
    resolved, torch_device = check_raster_options(backend, device)
    report = VerifyReport()
    with MaskCache(path) as cache:
        attrs = cache.attrs
        report.lines.append(
            f"{path}: split {attrs.split}, {len(cache)} images, canvas "
            f"{cache.canvas_hw[0]}x{cache.canvas_hw[1]}, {attrs.renderer.get('compression')}-"
            f"{attrs.renderer.get('compression_opts')}, built with {attrs.renderer.get('backend')}"
        )
        report.check("datasets and attributes", _dataset_problems(cache))
        root = Path(data_root) if data_root is not None else Path(attrs.data_root)
        if not root.is_dir():
            raise DigitError(f"{root}: data root not found (pass --data-root)")
        mano = Path(mano_dir) if mano_dir is not None else Path(attrs.mano_dir)
        data = InterHandSplit.from_root(root, attrs.split)
        digests = annotation_digests(data.files)
        changed = [k for k, v in digests.items() if attrs.annotations.get(k) != v]
        named = {
            "data_json_sha256": data.files.data,
            "camera_json_sha256": data.files.camera,
            "joint_3d_json_sha256": data.files.joint_3d,
            "mano_json_sha256": data.files.mano,
        }
        report.check(
            "annotations",
            [
                f"{named.get(k, k)}: sha256 differs from the file {path} was built from"
                for k in changed
            ],
            f"sha256 of {len(digests)} files match",
        )
        start, stop = _rows(cache, len(data))
        report.check(
            "images",
            _index_problems(cache, data, start, stop),
            f"ids, names and sizes match data.json rows {start}..{stop - 1}",
        )
        if len(cache) != stop - start:
            return report
        report.check("hands, valid, lr_iou, fit_error_mm", _flag_problems(cache, data, start, stop))
        hands = cache.file["hands"][...]
        report.check(
            "masks",
            _mask_problems(cache, hands, show_progress),
            f"{len(cache)} masks: crc32, class range and visible pixels",
        )
        if full:
            picks = np.arange(len(cache))
            what = f"all {len(cache)} images byte-identical"
        else:
            rng = np.random.default_rng(seed)
            picks = np.sort(rng.choice(len(cache), size=min(sample, len(cache)), replace=False))
            shown = ", ".join(map(str, picks[:20].tolist())) + (", ..." if len(picks) > 20 else "")
            what = (
                f"a sample of {len(picks)} of {len(cache)} images byte-identical ({shown}); "
                "--full re-renders every image"
            )
        raster = RasterSettings(backend=resolved, device=torch_device)
        report.check(
            "re-render",
            _rerender_problems(cache, data, start, mano, picks, raster, show_progress and full),
            what,
        )
    return report
