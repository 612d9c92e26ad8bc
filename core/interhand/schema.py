"""InterHand2.6M JSON: reading files with one-line errors, and checking and compacting entries.

The train split's data.json holds 1.36 M images; as plain Python objects its annotations alone
take several GB (a list object per `[1]` validity flag). `read_json` therefore takes an
`object_hook` that turns each well-formed entry into a small tuple (numbers packed into bytes)
while the file is parsed. An entry that does not match the schema stays a dict; the table
builder later runs the same parser on it again to raise a DigitError that says where and why.
"""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DigitError
from core.joints import HAND_TYPE_CODE, HAND_TYPES, NUM_JOINTS


class SchemaProblem(Exception):
    """An entry does not match the schema; the message says how (the caller adds where)."""


def read_json(path: Path, object_hook: Callable[[dict], Any] | None = None) -> Any:
    """Parse one JSON file; any failure is a one-line DigitError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DigitError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DigitError(f"{path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError as exc:
        raise DigitError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise DigitError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return json.loads(text, object_hook=object_hook)
    except json.JSONDecodeError as exc:
        raise DigitError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise DigitError(f"{path}: malformed JSON (nested too deeply)") from None


# ---- field checks (each raises SchemaProblem) -------------------------------------------------


def _get(entry: Any, key: str) -> Any:
    if type(entry) is not dict:
        raise SchemaProblem(f"is {type(entry).__name__}, expected an object")
    try:
        return entry[key]
    except KeyError:
        raise SchemaProblem(f"missing key {key!r}") from None


def _int(entry: dict, key: str) -> int:
    value = _get(entry, key)
    if type(value) is not int:
        raise SchemaProblem(f"{key!r} is {value!r}, expected an integer")
    return value


def _str(entry: dict, key: str) -> str:
    value = _get(entry, key)
    if type(value) is not str:
        raise SchemaProblem(f"{key!r} is {value!r}, expected a string")
    return value


def _flag(entry: dict, key: str) -> bool:
    value = _get(entry, key)
    if value not in (0, 1):  # True/False, 0/1 and 0.0/1.0 all compare equal to 0 or 1
        raise SchemaProblem(f"{key!r} is {value!r}, expected 0/1 or a boolean")
    return bool(value)


def numbers_array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of exactly `shape` (nested lists as in the files); SchemaProblem if not."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SchemaProblem(f"{what!r} is not an array of numbers") from None
    if array.shape != shape:
        raise SchemaProblem(f"{what!r} has shape {array.shape}, expected {shape}")
    return array


def _mask(value: Any, what: str, n: int) -> np.ndarray:
    """A (n,) bool mask from n x 1 (as in the files) or n flags: 0/1 or booleans."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise SchemaProblem(f"{what!r} is not an array of flags") from None
    if array.shape not in ((n, 1), (n,)) or array.dtype.kind not in "biuf":
        raise SchemaProblem(f"{what!r} has shape {array.shape}, expected ({n}, 1) flags")
    return array.reshape(n) != 0


# ---- entry parsers ---------------------------------------------------------------------------

# Far above any camera's image (InterHand2.6M: 512x334); a larger size is a broken file, and
# a mask canvas of it would not fit in memory.
MAX_IMAGE_SIDE = 16384

# data.json image -> (id, file_name, height, width, capture, subject, seq_name, camera, frame_idx)
ImageTuple = tuple[int, str, int, int, int, int, str, str, int]
# data.json annotation -> (id, image_id, bbox float64 bytes (4,), joint_valid bool bytes (42,),
#                          hand_type code, hand_type_valid)
AnnotationTuple = tuple[int, int, bytes, bytes, int, bool]


def parse_image(entry: Any) -> ImageTuple:
    """Check one data.json image. `subject` may be absent (-1); `camera` may be int or str."""
    image_id = _int(entry, "id")
    file_name = _str(entry, "file_name")
    width, height = _int(entry, "width"), _int(entry, "height")
    if width <= 0 or height <= 0:
        raise SchemaProblem(f"image size {width}x{height} is not positive")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise SchemaProblem(f"image size {width}x{height} exceeds {MAX_IMAGE_SIDE} pixels a side")
    capture = _int(entry, "capture")
    subject = entry.get("subject", -1)
    if type(subject) is not int:
        raise SchemaProblem(f"'subject' is {subject!r}, expected an integer")
    seq_name = sys.intern(_str(entry, "seq_name"))
    camera = _get(entry, "camera")
    if type(camera) is int:
        camera = str(camera)
    elif type(camera) is not str:
        raise SchemaProblem(f"'camera' is {camera!r}, expected a string")
    frame_idx = _int(entry, "frame_idx")
    return (
        image_id,
        file_name,
        height,
        width,
        capture,
        subject,
        seq_name,
        sys.intern(camera),
        frame_idx,
    )


def parse_annotation(entry: Any) -> AnnotationTuple:
    """Check one data.json annotation and pack its numbers."""
    annot_id = _int(entry, "id")
    image_id = _int(entry, "image_id")
    bbox = numbers_array(_get(entry, "bbox"), "bbox", (4,))
    joint_valid = _mask(_get(entry, "joint_valid"), "joint_valid", NUM_JOINTS)
    hand_type = _get(entry, "hand_type")
    code = HAND_TYPE_CODE.get(hand_type) if type(hand_type) is str else None
    if code is None:
        raise SchemaProblem(f"'hand_type' is {hand_type!r}, expected one of {list(HAND_TYPES)}")
    hand_type_valid = _flag(entry, "hand_type_valid")
    return (annot_id, image_id, bbox.tobytes(), joint_valid.tobytes(), code, hand_type_valid)


def parse_joint_frame(entry: Any) -> tuple[np.ndarray, np.ndarray]:
    """joint_3d.json frame -> (world_coord (42, 3) float64 mm, joint_valid (42,) bool)."""
    coords = numbers_array(_get(entry, "world_coord"), "world_coord", (NUM_JOINTS, 3))
    valid = _mask(_get(entry, "joint_valid"), "joint_valid", NUM_JOINTS)
    return coords, valid


def parse_mano_hand(entry: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MANO_NeuralAnnot hand -> (pose (48,), shape (10,), trans (3,) metres), float64."""
    return (
        numbers_array(_get(entry, "pose"), "pose", (48,)),
        numbers_array(_get(entry, "shape"), "shape", (10,)),
        numbers_array(_get(entry, "trans"), "trans", (3,)),
    )


def parse_rootnet(entry: Any) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """RootNet entry -> (annot_id, abs_depth (2,) mm, root_valid (2,) bool, bbox (4,)).

    `root_valid` is optional (InterHand2.6M's own loader never reads it): absent means valid.
    """
    annot_id = _int(entry, "annot_id")
    abs_depth = numbers_array(_get(entry, "abs_depth"), "abs_depth", (2,))
    if "root_valid" in entry:
        root_valid = _mask(entry["root_valid"], "root_valid", 2)
    else:
        root_valid = np.ones(2, dtype=bool)
    bbox = numbers_array(_get(entry, "bbox"), "bbox", (4,))
    return annot_id, abs_depth, root_valid, bbox


# ---- object hooks: compact well-formed entries while parsing -------------------------------


def data_hook(entry: dict) -> Any:
    """object_hook for data.json: images and annotations become tuples when well-formed."""
    try:
        if "file_name" in entry:
            return parse_image(entry)
        if "image_id" in entry:
            return parse_annotation(entry)
    except SchemaProblem:
        pass  # left as a dict: the table builder reports it with its position
    return entry


def joint_hook(entry: dict) -> Any:
    """object_hook for joint_3d.json: frames become (coords, valid) tuples."""
    if "world_coord" in entry:
        try:
            return parse_joint_frame(entry)
        except SchemaProblem:
            pass
    return entry


def mano_hook(entry: dict) -> Any:
    """object_hook for MANO_NeuralAnnot.json: hands become (pose, shape, trans) tuples."""
    if "pose" in entry:
        try:
            return parse_mano_hand(entry)
        except SchemaProblem:
            pass
    return entry


def rootnet_hook(entry: dict) -> Any:
    """object_hook for RootNet output: entries become tuples."""
    if "annot_id" in entry:
        try:
            return parse_rootnet(entry)
        except SchemaProblem:
            pass
    return entry


def checked_list(container: Any, key: str, path: Path) -> list:
    """container[key], which must be a JSON list (schema error otherwise)."""
    if type(container) is not dict:
        raise DigitError(f"{path}: top level is {type(container).__name__}, expected an object")
    if key not in container:
        raise DigitError(f"{path}: missing key {key!r}")
    value = container[key]
    if type(value) is not list:
        raise DigitError(f"{path}: {key!r} is {type(value).__name__}, expected a list")
    return value


def finish_entries(entries: list, parser: Callable[[Any], tuple], path: Path, where: str) -> None:
    """Parse in place the entries the hook left as dicts; the first bad one is a DigitError."""
    for k, entry in enumerate(entries):
        if type(entry) is not tuple:  # JSON never yields tuples: these came from the hook
            try:
                entries[k] = parser(entry)
            except SchemaProblem as problem:
                raise DigitError(f"{path}: {where}[{k}]: {problem}") from None
