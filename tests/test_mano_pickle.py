"""load_mano_pickle: official-format pickles (chumpy, scipy sparse, Python 2 names), no chumpy."""

from __future__ import annotations

import contextlib
import os
import pickle
import pickletools
import struct
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from core.errors import DigitError
from render.mano import load_mano_pickle

MANO_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
OFFICIAL_GLOBALS = {
    "__builtin__ set",
    "chumpy.ch Ch",
    "chumpy.reordering Select",
    "numpy dtype",
    "numpy ndarray",
    "numpy.core.multiarray _reconstruct",
    "scipy.sparse.csc csc_matrix",
}


# --------------------------------------------------------------------------- chumpy stand-ins
class Ch:
    """Same module path, class name and attribute as chumpy.ch.Ch."""

    def __init__(self, x):
        self.x = x

    def __getstate__(self):
        # chumpy pickles its __dict__, which holds a set of dirty variables (-> __builtin__.set).
        return {"x": self.x, "_dirty_vars": {"x"}, "_itr": None}


class Select:
    """Same module path, class name and attributes as chumpy.reordering.Select."""

    def __init__(self, a, idxs, preferred_shape):
        self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape
        self._dirty_vars = set()


class ChOpsAdd:
    """A chumpy class the loader does not know (chumpy.ch_ops.add)."""

    def __init__(self, a, b):
        self.a, self.b = a, b


Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
ChOpsAdd.__module__, ChOpsAdd.__qualname__ = "chumpy.ch_ops", "add"


@contextlib.contextmanager
def chumpy_modules():
    """Register stand-in chumpy modules while pickling; they are gone before any load."""
    names = ("chumpy", "chumpy.ch", "chumpy.reordering", "chumpy.ch_ops")
    assert not any(n in sys.modules for n in names)
    modules = {n: types.ModuleType(n) for n in names}
    modules["chumpy.ch"].Ch = Ch
    modules["chumpy.reordering"].Select = Select
    modules["chumpy.ch_ops"].add = ChOpsAdd
    sys.modules.update(modules)
    try:
        yield
    finally:
        for n in names:
            del sys.modules[n]


def select_first_betas(x: np.ndarray, n: int = 10) -> Select:
    """What chumpy builds for ``Ch(x)[:, :, :n]``: flat indices into x plus the shape."""
    idxs = np.arange(x.size).reshape(x.shape)[:, :, :n].ravel()
    return Select(Ch(x), idxs, (x.shape[0], x.shape[1], n))


class Py2Pickler(pickle._Pickler):
    """Writes protocol 2 as Python 2 did: str opcodes for bytes, and that era's module paths."""

    OLD_MODULES: ClassVar[dict[str, str]] = {
        "builtins": "__builtin__",
        "numpy._core.multiarray": "numpy.core.multiarray",
        "scipy.sparse._csc": "scipy.sparse.csc",
    }
    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        module = self.OLD_MODULES.get(obj.__module__, obj.__module__)
        name = name or obj.__qualname__
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)


def pickle_globals(data: bytes) -> set[str]:
    return {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def make_arrays(n_vertices: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    j_reg = rng.uniform(size=(16, n_vertices)) * (rng.uniform(size=(16, n_vertices)) < 0.2)
    return {
        "v_template": rng.normal(size=(n_vertices, 3)),
        "f": rng.integers(0, n_vertices, size=(2 * n_vertices, 3)).astype(np.uint32),
        "weights": rng.uniform(size=(n_vertices, 16)),
        "J_regressor": j_reg,
        "kintree_table": np.array(
            [[4294967295, *MANO_PARENTS[1:]], list(range(16))], dtype=np.uint32
        ),
        "shapedirs": rng.normal(size=(n_vertices, 3, 20)),  # 20 stored, 10 selected
        "posedirs": rng.normal(size=(n_vertices, 3, 135)),
        "hands_components": rng.normal(size=(45, 45)),
        "hands_mean": rng.normal(size=45),
    }


def official_style(arrays: dict[str, np.ndarray]) -> dict[str, object]:
    """The official files' structure: chumpy shapedirs, csc J_regressor, extra ignored keys."""
    raw: dict[str, object] = dict(arrays)
    raw["shapedirs"] = select_first_betas(arrays["shapedirs"])
    raw["J_regressor"] = sp.csc_matrix(arrays["J_regressor"])
    raw["J"] = arrays["J_regressor"] @ arrays["v_template"]
    raw["hands_coeffs"] = np.zeros((3, 45))
    raw["bs_style"] = "lbs"
    raw["bs_type"] = "lrotmin"
    return raw


def check_arrays(out: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> None:
    n_vertices = arrays["v_template"].shape[0]
    for key in ("v_template", "weights", "J_regressor", "posedirs", "hands_components"):
        assert out[key].dtype == np.float64
        np.testing.assert_array_equal(out[key], arrays[key], err_msg=key)
    np.testing.assert_array_equal(out["hands_mean"], arrays["hands_mean"])
    assert out["f"].dtype == np.int64 and out["f"].shape == arrays["f"].shape
    np.testing.assert_array_equal(out["f"], arrays["f"].astype(np.int64))
    assert out["kintree_table"].dtype == np.int64
    np.testing.assert_array_equal(out["kintree_table"], [MANO_PARENTS, list(range(16))])
    assert out["shapedirs"].shape == (n_vertices, 3, 10)
    np.testing.assert_array_equal(out["shapedirs"], arrays["shapedirs"][:, :, :10])
    assert out["tip_vertex_ids"].dtype == np.int64 and out["tip_vertex_ids"].shape == (5,)


def write(path: Path, raw: object, protocol: int = 2) -> Path:
    with chumpy_modules():
        path.write_bytes(pickle.dumps(raw, protocol=protocol))
    return path


# --------------------------------------------------------------------------- tests
def test_official_structure_today_spellings(tmp_path):
    arrays = make_arrays(40)
    raw = official_style(arrays)
    raw["tip_vertex_ids"] = np.array([1, 2, 3, 4, 5])
    path = write(tmp_path / "MANO_RIGHT.pkl", raw)
    assert pickle_globals(path.read_bytes()) == {
        "__builtin__ set",
        "_codecs encode",
        "chumpy.ch Ch",
        "chumpy.reordering Select",
        "numpy dtype",
        "numpy ndarray",
        "numpy._core.multiarray _reconstruct",
        "scipy.sparse._csc csc_matrix",
    }
    out = load_mano_pickle(path)
    assert "chumpy" not in sys.modules
    check_arrays(out, arrays)
    np.testing.assert_array_equal(out["tip_vertex_ids"], [1, 2, 3, 4, 5])
    assert "synthetic_model_version" not in out


def test_python2_spellings_and_default_tips(tmp_path):
    arrays = make_arrays(778, seed=1)
    path = tmp_path / "MANO_LEFT.pkl"
    with chumpy_modules(), open(path, "wb") as fh:
        Py2Pickler(fh, protocol=2).dump(official_style(arrays))
    data = path.read_bytes()
    # Exactly the globals of the official file, and array data as Python 2 str opcodes.
    assert pickle_globals(data) == OFFICIAL_GLOBALS
    assert any(op.name == "BINSTRING" for op, _, _ in pickletools.genops(data))
    out = load_mano_pickle(path)
    check_arrays(out, arrays)
    np.testing.assert_array_equal(out["tip_vertex_ids"], [745, 317, 445, 556, 673])


def test_plain_arrays_protocol5_with_synthetic_version(tmp_path):
    arrays = make_arrays(25, seed=2)
    raw = dict(arrays, tip_vertex_ids=np.array([20, 21, 22, 23, 24], dtype=np.int32))
    raw["kintree_table"] = raw["kintree_table"].astype(np.int64)
    raw["synthetic_model_version"] = np.array(3)
    raw["J_regressor"] = sp.csc_matrix(arrays["J_regressor"])
    path = write(tmp_path / "m.pkl", raw, protocol=5)
    out = load_mano_pickle(path)
    check_arrays(out, arrays)
    np.testing.assert_array_equal(out["tip_vertex_ids"], [20, 21, 22, 23, 24])
    assert out["synthetic_model_version"].shape == () and int(out["synthetic_model_version"]) == 3


def test_plain_ch_objects_accepted(tmp_path):
    arrays = make_arrays(12, seed=3)
    raw = official_style(arrays)
    raw["v_template"] = Ch(arrays["v_template"])  # some files wrap more keys in Ch
    raw["tip_vertex_ids"] = np.arange(5)
    check_arrays(load_mano_pickle(write(tmp_path / "m.pkl", raw)), arrays)


class Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_pickle_refused_before_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    raw = dict(make_arrays(12), tip_vertex_ids=np.arange(5))
    raw["posedirs"] = Evil(os.system, f"touch {marker}")
    path = write(tmp_path / "MANO_RIGHT.pkl", raw, protocol=protocol)
    assert b"system" in path.read_bytes()  # the stream really calls os.system
    with pytest.raises(DigitError) as err:
        load_mano_pickle(path)
    assert str(path) in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_eval_and_codecs_abuse_refused(tmp_path):
    raw = {"f": Evil(eval, "__import__('os')")}
    path = write(tmp_path / "a.pkl", raw)
    with pytest.raises(DigitError, match="eval"):
        load_mano_pickle(path)
    # _codecs.encode is admitted only as protocol 2 uses it for bytes (latin1).
    stream = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    (tmp_path / "b.pkl").write_bytes(stream)
    with pytest.raises(DigitError, match=r"b\.pkl: not a readable MANO pickle"):
        load_mano_pickle(tmp_path / "b.pkl")


def test_missing_key_names_file_and_key(tmp_path):
    raw = official_style(make_arrays(12))
    del raw["posedirs"]
    path = write(tmp_path / "MANO_RIGHT.pkl", raw)
    with pytest.raises(DigitError, match=r"MANO_RIGHT\.pkl: missing key 'posedirs'"):
        load_mano_pickle(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("v_template", np.zeros((12, 2))),
        ("weights", np.zeros((12, 15))),
        ("J_regressor", sp.csc_matrix(np.zeros((16, 11)))),
        ("posedirs", np.zeros((12, 3, 134))),
        ("shapedirs", select_first_betas(np.zeros((12, 3, 20)), n=8)),
        ("hands_mean", np.zeros(44)),
        ("f", np.zeros((5, 4), dtype=np.uint32)),
        ("kintree_table", np.zeros((2, 16), dtype=np.int64)),
        ("tip_vertex_ids", np.array([1, 2, 3, 4, 99])),
        ("shapedirs", ChOpsAdd(Ch(np.zeros((12, 3, 10))), Ch(np.zeros((12, 3, 10))))),
        ("hands_components", "not an array"),
    ],
)
def test_wrong_content_names_file_and_key(tmp_path, key, value):
    raw = official_style(make_arrays(12))
    raw["tip_vertex_ids"] = np.arange(5)
    raw[key] = value
    path = write(tmp_path / "MANO_LEFT.pkl", raw)
    with pytest.raises(DigitError) as err:
        load_mano_pickle(path)
    message = str(err.value)
    assert message.startswith(f"{path}: key '{key}'") and "\n" not in message


def test_unknown_tips_for_non_mano_mesh(tmp_path):
    path = write(tmp_path / "m.pkl", official_style(make_arrays(12)))
    with pytest.raises(DigitError, match="key 'tip_vertex_ids'"):
        load_mano_pickle(path)


def test_not_a_pickle_or_missing(tmp_path):
    text = tmp_path / "MANO_RIGHT.pkl"
    text.write_text("this is not a pickle\n")
    with pytest.raises(DigitError, match=r"MANO_RIGHT\.pkl: not a readable MANO pickle"):
        load_mano_pickle(text)
    truncated = tmp_path / "cut.pkl"
    full = write(tmp_path / "full.pkl", official_style(make_arrays(12)))
    truncated.write_bytes(full.read_bytes()[:300])
    with pytest.raises(DigitError, match=r"cut\.pkl"):
        load_mano_pickle(truncated)
    listed = write(tmp_path / "list.pkl", [1, 2, 3])
    with pytest.raises(DigitError, match=r"list\.pkl: holds a list"):
        load_mano_pickle(listed)
    with pytest.raises(DigitError, match=r"absent\.pkl: file not found"):
        load_mano_pickle(tmp_path / "absent.pkl")


@pytest.mark.parametrize("protocol", [0, 1])
def test_old_protocols_use_copyreg_reconstructor(tmp_path, protocol):
    arrays = make_arrays(12, seed=4)
    raw = dict(official_style(arrays), tip_vertex_ids=np.arange(5))
    path = write(tmp_path / "m.pkl", raw, protocol=protocol)
    assert b"_reconstructor" in path.read_bytes()
    check_arrays(load_mano_pickle(path), arrays)
