"""Read a MANO model pickle (official or the project's synthetic one) into plain numpy arrays.

The official files were written by Python 2 with chumpy objects (``shapedirs``) and a scipy sparse
``J_regressor``. chumpy does not import on today's Python/numpy, and a pickle can run arbitrary code
when loaded, so this module unpickles with a restricted ``pickle.Unpickler`` that admits only the
globals MANO files contain (mapping chumpy classes and ``csc_matrix`` to plain holders) and then
rebuilds every array with numpy. Neither chumpy nor scipy is imported to read a model.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DigitError

try:  # numpy >= 1.26 ships the private ``numpy._core`` package (numpy 2 pickles name it)
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.numeric import _frombuffer as _np_frombuffer
except ImportError:  # pragma: no cover - older numpy
    from numpy.core.multiarray import _reconstruct as _np_reconstruct
    from numpy.core.numeric import _frombuffer as _np_frombuffer

NUM_JOINTS = 16
NUM_BETAS = 10
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 135: (R - I) of the 15 non-root joints
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
# Fingertip vertices of the official MANO mesh (thumb, index, middle, ring, pinky).
MANO_TIP_VERTEX_IDS: tuple[int, ...] = (745, 317, 445, 556, 673)
REQUIRED_KEYS = (
    "v_template",
    "f",
    "weights",
    "J_regressor",
    "kintree_table",
    "shapedirs",
    "posedirs",
    "hands_components",
    "hands_mean",
)
"""The keys smplx reads from a MANO file, all required."""
MANO_NUM_VERTICES = 778
_UINT32_MINUS_ONE = 4294967295


# --------------------------------------------------------------------------- holders
class _Holder:
    """A plain object standing in for a class we refuse to import (chumpy, scipy sparse).

    Unpickling only records the object's state dict in ``self.state``; nothing else runs.
    """

    pickled_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _Holder:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        # Default object pickling gives a dict, or (dict, slots dict) for classes with slots.
        if isinstance(state, tuple) and len(state) == 2:
            merged: dict[Any, Any] = {}
            for part in state:
                if part is not None:
                    if not isinstance(part, dict):
                        raise pickle.UnpicklingError(f"{self.pickled_name}: state is not a dict")
                    merged.update(part)
            state = merged
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.pickled_name}: state is not a dict")
        object.__setattr__(self, "state", dict(state))

    @property
    def fields(self) -> dict[Any, Any]:
        return self.__dict__.get("state", {})


class _ChHolder(_Holder):
    """chumpy.ch.Ch: a wrapped array in attribute ``x``."""

    pickled_name = "chumpy.ch.Ch"


class _SelectHolder(_Holder):
    """chumpy.reordering.Select: ``a.ravel()[idxs].reshape(preferred_shape)``."""

    pickled_name = "chumpy.reordering.Select"


class _CscHolder(_Holder):
    """scipy.sparse csc_matrix state: ``data``, ``indices``, ``indptr``, ``_shape``."""

    pickled_name = "scipy.sparse.csc_matrix"


_unknown_chumpy_holders: dict[str, type[_Holder]] = {}


def _unknown_chumpy_holder(qualified: str) -> type[_Holder]:
    """A holder for a chumpy class we cannot rebuild; the error is raised when its key is used."""
    if qualified not in _unknown_chumpy_holders:
        _unknown_chumpy_holders[qualified] = type(
            "_UnknownChumpyHolder", (_Holder,), {"pickled_name": qualified}
        )
    return _unknown_chumpy_holders[qualified]


def _latin1_encode(text: Any, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes, and nothing more."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode refused for encoding {encoding!r}")
    return text.encode("latin1", errors="strict")


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``: how Python 3 protocol-2 pickles write empty bytes (an empty array's data)."""
    if args:
        raise pickle.UnpicklingError("bytes() refused with arguments")
    return b""


def _reconstructor(cls: Any, base: Any, state: Any) -> _Holder:
    """``copyreg._reconstructor`` (protocol 0/1 object pickles), limited to our holders."""
    if not (isinstance(cls, type) and issubclass(cls, _Holder)) or base is not object:
        raise pickle.UnpicklingError("copyreg._reconstructor refused for this class")
    return cls()


def _ndarray_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct``, limited to plain ndarrays."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("numpy _reconstruct refused for a non-ndarray subtype")
    return _np_reconstruct(subtype, shape, dtype)


# Every global a MANO pickle may name: the official Python 2 files, then what numpy 2.4 and
# scipy 1.17 emit today (checked with pickletools for protocols 2 and 5; protocol 2 writes bytes
# as _codecs.encode(str, 'latin1'), or bytes() when empty).
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,
    ("scipy.sparse.csc", "csc_matrix"): _CscHolder,
    ("scipy.sparse._csc", "csc_matrix"): _CscHolder,
    ("scipy.sparse", "csc_matrix"): _CscHolder,
    ("chumpy.ch", "Ch"): _ChHolder,
    ("chumpy.reordering", "Select"): _SelectHolder,
}


class _MANOUnpickler(pickle.Unpickler):
    """Resolves only ``_ALLOWED_GLOBALS``; any other global is refused before it can run."""

    def __init__(self, file: io.BufferedIOBase, path: str) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is not None:
            return found
        # Other chumpy classes become inert holders; using them as an array is an error later,
        # naming the key (a file may hold chumpy expressions in keys we never read).
        if (module == "chumpy" or module.startswith("chumpy.")) and name.isidentifier():
            return _unknown_chumpy_holder(f"{module}.{name}")
        raise DigitError(
            f"{self._path}: refused to unpickle global '{module}.{name}' "
            "(not part of a MANO model file)"
        )


# --------------------------------------------------------------------------- rebuilding
def _csc_to_dense(holder: _CscHolder, where: str) -> np.ndarray:
    state = holder.fields
    shape = state.get("_shape", state.get("shape"))
    try:
        data = np.asarray(state["data"])
        indices = np.asarray(state["indices"])
        indptr = np.asarray(state["indptr"])
        n_rows, n_cols = (int(s) for s in shape)
    except (KeyError, TypeError, ValueError) as err:
        raise DigitError(f"{where}: incomplete sparse matrix ({err})") from None
    ok = (
        data.ndim == 1
        and data.dtype.kind in "biuf"
        and indices.shape == data.shape
        and indptr.shape == (n_cols + 1,)
        and indices.dtype.kind in "iu"
        and indptr.dtype.kind in "iu"
        and n_rows >= 0
        and n_cols >= 0
    )
    if ok and indptr.size:
        ok = indptr[0] == 0 and indptr[-1] == data.size and bool(np.all(np.diff(indptr) >= 0))
    if ok and indices.size:
        ok = bool(indices.min() >= 0 and indices.max() < n_rows)
    if not ok:
        raise DigitError(f"{where}: malformed sparse matrix")
    dense = np.zeros((n_rows, n_cols), dtype=np.float64)
    cols = np.repeat(np.arange(n_cols), np.diff(indptr).astype(np.int64))
    np.add.at(dense, (indices.astype(np.int64), cols), data.astype(np.float64))
    return dense


def _rebuild(obj: Any, where: str, depth: int = 0) -> np.ndarray:
    """Turn an ndarray, chumpy holder or sparse holder into a plain numeric ndarray."""
    if depth > 8:
        raise DigitError(f"{where}: chumpy objects nested too deeply")
    if isinstance(obj, np.ndarray):
        array = obj
    elif isinstance(obj, _ChHolder):
        if "x" not in obj.fields:
            raise DigitError(f"{where}: chumpy Ch object without 'x'")
        array = _rebuild(obj.fields["x"], where, depth + 1)
    elif isinstance(obj, _SelectHolder):
        state = obj.fields
        if not {"a", "idxs", "preferred_shape"} <= state.keys():
            raise DigitError(f"{where}: chumpy Select without 'a', 'idxs' and 'preferred_shape'")
        source = _rebuild(state["a"], where, depth + 1).ravel()
        idxs = _rebuild(state["idxs"], where, depth + 1).ravel()
        try:
            shape = tuple(int(s) for s in state["preferred_shape"])
        except (TypeError, ValueError):
            raise DigitError(f"{where}: chumpy Select with a bad 'preferred_shape'") from None
        if idxs.dtype.kind not in "iu" or (
            idxs.size and (idxs.min() < 0 or idxs.max() >= source.size)
        ):
            raise DigitError(f"{where}: chumpy Select indices out of range")
        if math.prod(shape) != idxs.size:
            raise DigitError(
                f"{where}: chumpy Select shape {shape} does not fit {idxs.size} indices"
            )
        array = source[idxs].reshape(shape)
    elif isinstance(obj, _CscHolder):
        array = _csc_to_dense(obj, where)
    elif isinstance(obj, _Holder):
        raise DigitError(f"{where}: is a {obj.pickled_name} object, which cannot be rebuilt")
    elif isinstance(obj, (list, tuple, int, float)) and not isinstance(obj, bool):
        try:
            array = np.asarray(obj)
        except ValueError:
            raise DigitError(f"{where}: ragged list, expected an array") from None
    else:
        raise DigitError(f"{where}: holds a {type(obj).__name__}, expected an array")
    if array.dtype.kind not in "biuf":
        raise DigitError(f"{where}: has dtype {array.dtype}, expected numbers")
    return array


def _shaped(raw: dict[str, Any], key: str, shape: tuple[int | None, ...], path: str) -> np.ndarray:
    """The array under ``key`` with the given shape (None: any size on that axis)."""
    where = f"{path}: key '{key}'"
    array = _rebuild(raw[key], where)
    if array.ndim != len(shape) or any(
        e is not None and e != s for e, s in zip(shape, array.shape, strict=True)
    ):
        expected = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
        raise DigitError(f"{where}: has shape {array.shape}, expected {expected}")
    return array


def _float_array(
    raw: dict[str, Any], key: str, shape: tuple[int | None, ...], path: str
) -> np.ndarray:
    array = _shaped(raw, key, shape, path).astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise DigitError(f"{path}: key '{key}': contains NaN or infinity")
    return np.ascontiguousarray(array)


def _int_array(
    raw: dict[str, Any], key: str, shape: tuple[int | None, ...], path: str
) -> np.ndarray:
    array = _shaped(raw, key, shape, path)
    if array.dtype.kind == "f" and (
        not np.all(np.isfinite(array)) or np.any(array != np.round(array))
    ):
        raise DigitError(f"{path}: key '{key}': expected integers")
    return np.ascontiguousarray(array.astype(np.int64))


def _check_indices(array: np.ndarray, n_vertices: int, where: str) -> None:
    if array.size and (array.min() < 0 or array.max() >= n_vertices):
        raise DigitError(f"{where}: vertex index out of range 0..{n_vertices - 1}")


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DigitError(f"{path}: file not found") from None
    except OSError as err:
        raise DigitError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        raw = _MANOUnpickler(io.BytesIO(data), str(path)).load()
    except DigitError:
        raise
    except Exception as err:  # any failure inside the unpickler means "not a MANO pickle"
        message = " ".join(str(err).split())[:200]
        raise DigitError(
            f"{path}: not a readable MANO pickle ({type(err).__name__}: {message})"
        ) from None
    if not isinstance(raw, dict):
        raise DigitError(f"{path}: holds a {type(raw).__name__}, expected a dict of MANO arrays")
    return raw


def load_mano_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """Load a MANO model pickle as plain numpy arrays, without chumpy and without running code.

    Args:
        path: ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (official, Python 2 era) or the project's
            synthetic model in the same format. Chumpy objects and plain arrays are both accepted.

    Returns:
        dict with (V vertices, F faces; official MANO: V = 778, F = 1538):
        ``v_template`` (V, 3) float64 metres; ``f`` (F, 3) int64; ``weights`` (V, 16) float64;
        ``J_regressor`` (16, V) float64 dense; ``kintree_table`` (2, 16) int64, root parent -1;
        ``shapedirs`` (V, 3, 10) float64 (first 10 betas); ``posedirs`` (V, 3, 135) float64;
        ``hands_components`` (45, 45) float64; ``hands_mean`` (45,) float64;
        ``tip_vertex_ids`` (5,) int64 (thumb, index, middle, ring, pinky; the file's own ids,
        else MANO's 745, 317, 445, 556, 673); and ``synthetic_model_version`` (0-d array) only
        when the file carries it (the project's synthetic model).

    Raises:
        DigitError: naming the file (and key) for a missing file, a non-pickle, a global that
            MANO files do not contain (refused before anything runs), a missing key, a wrong
            shape or dtype, or an object that cannot be rebuilt.
    """
    path = Path(path)
    raw = _unpickle(path)
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise DigitError(f"{path}: missing key '{key}'")

    out: dict[str, np.ndarray] = {}
    out["v_template"] = _float_array(raw, "v_template", (None, 3), str(path))
    n_vertices = out["v_template"].shape[0]
    if n_vertices == 0:
        raise DigitError(f"{path}: key 'v_template': has no vertices")

    where = f"{path}: key 'f'"
    out["f"] = _int_array(raw, "f", (None, 3), str(path))
    if out["f"].shape[0] == 0:
        raise DigitError(f"{where}: has no faces")
    _check_indices(out["f"], n_vertices, where)

    out["weights"] = _float_array(raw, "weights", (n_vertices, NUM_JOINTS), str(path))
    out["J_regressor"] = _float_array(raw, "J_regressor", (NUM_JOINTS, n_vertices), str(path))

    where = f"{path}: key 'kintree_table'"
    kintree = _int_array(raw, "kintree_table", (2, NUM_JOINTS), str(path))
    kintree[kintree == _UINT32_MINUS_ONE] = -1  # uint32 -1 marks the root's parent
    if tuple(kintree[0]) != MANO_PARENTS or tuple(kintree[1]) != tuple(range(NUM_JOINTS)):
        raise DigitError(f"{where}: is not MANO's 16-joint tree (parents {MANO_PARENTS})")
    out["kintree_table"] = kintree

    where = f"{path}: key 'shapedirs'"
    shapedirs = _float_array(raw, "shapedirs", (n_vertices, 3, None), str(path))
    if shapedirs.shape[2] < NUM_BETAS:
        raise DigitError(f"{where}: has {shapedirs.shape[2]} betas, expected at least {NUM_BETAS}")
    out["shapedirs"] = np.ascontiguousarray(shapedirs[:, :, :NUM_BETAS])
    out["posedirs"] = _float_array(raw, "posedirs", (n_vertices, 3, NUM_POSE_BASIS), str(path))
    n_pose = 3 * (NUM_JOINTS - 1)
    out["hands_components"] = _float_array(raw, "hands_components", (n_pose, n_pose), str(path))
    out["hands_mean"] = _float_array(raw, "hands_mean", (n_pose,), str(path))

    where = f"{path}: key 'tip_vertex_ids'"
    if "tip_vertex_ids" in raw:
        out["tip_vertex_ids"] = _int_array(raw, "tip_vertex_ids", (5,), str(path))
    elif n_vertices == MANO_NUM_VERTICES:
        out["tip_vertex_ids"] = np.array(MANO_TIP_VERTEX_IDS, dtype=np.int64)
    else:
        raise DigitError(
            f"{where}: missing, and MANO's default fingertips need {MANO_NUM_VERTICES} vertices "
            f"(this model has {n_vertices})"
        )
    _check_indices(out["tip_vertex_ids"], n_vertices, where)

    if "synthetic_model_version" in raw:
        version = raw["synthetic_model_version"]
        if isinstance(version, str):
            out["synthetic_model_version"] = np.asarray(version)
        elif isinstance(version, np.ndarray) and version.dtype.kind == "U":
            out["synthetic_model_version"] = version
        else:
            where = f"{path}: key 'synthetic_model_version'"
            out["synthetic_model_version"] = _rebuild(version, where)
    return out
