"""A version-proof pickle writer (protocol 2, the layout of the real MANO files).

It emits the opcodes itself, so the bytes do not depend on the Python / numpy / scipy versions;
the files load with ``pickle.load(fh, encoding="latin1")`` like real MANO files.
"""

import struct

import numpy as np
import scipy.sparse


def _p_int(x: int) -> bytes:
    if 0 <= x < 256:
        return b"K" + bytes([x])
    if 0 <= x < 65536:
        return b"M" + struct.pack("<H", x)
    return b"J" + struct.pack("<i", x)


def _p_str(s: str) -> bytes:
    raw = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _p_bytes(raw: bytes) -> bytes:
    # Python 2 style string, read back with encoding="latin1" (as every MANO loader does)
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw
    return b"T" + struct.pack("<i", len(raw)) + raw


def _p_tuple(items: list[bytes]) -> bytes:
    if not items:
        return b")"
    if len(items) <= 3:
        return b"".join(items) + bytes([0x84 + len(items)])
    return b"(" + b"".join(items) + b"t"


def _p_array(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    code = {np.float64: "f8", np.uint32: "u4", np.int64: "i8", np.int32: "i4"}[a.dtype.type]
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    minus_one = b"J" + struct.pack("<i", -1)
    dtype_state = [_p_int(3), _p_str("<"), b"N", b"N", b"N", minus_one, minus_one, _p_int(0)]
    dtype = b"cnumpy\ndtype\n" + _p_tuple([_p_str(code), b"\x89", b"\x88"]) + b"R"
    dtype += _p_tuple(dtype_state) + b"b"
    head = b"cnumpy.core.multiarray\n_reconstruct\n" + _p_tuple(
        [b"cnumpy\nndarray\n", _p_tuple([_p_int(0)]), _p_bytes(b"b")]
    )
    shape = _p_tuple([_p_int(int(d)) for d in a.shape])
    state = _p_tuple([_p_int(1), shape, dtype, b"\x89", _p_bytes(le.tobytes())])
    return head + b"R" + state + b"b"


def _p_value(x) -> bytes:
    if isinstance(x, scipy.sparse.spmatrix):
        m = scipy.sparse.csc_matrix(x)
        m.sort_indices()
        items = [
            (_p_str("_shape"), _p_tuple([_p_int(int(d)) for d in m.shape])),
            (_p_str("maxprint"), _p_int(50)),
            (_p_str("indptr"), _p_array(m.indptr.astype(np.int32))),
            (_p_str("indices"), _p_array(m.indices.astype(np.int32))),
            (_p_str("data"), _p_array(m.data.astype(np.float64))),
        ]
        body = b"}(" + b"".join(k + v for k, v in items) + b"u"
        return b"cscipy.sparse.csc\ncsc_matrix\n)\x81" + body + b"b"
    if isinstance(x, np.ndarray):
        return _p_array(x)
    if isinstance(x, bool):
        return b"\x88" if x else b"\x89"
    if isinstance(x, int):
        return _p_int(x)
    if isinstance(x, str):
        return _p_str(x)
    raise TypeError(f"cannot pickle {type(x)}")


def pickle_bytes(model: dict) -> bytes:
    """Protocol-2 pickle of a dict of str -> ndarray | csc matrix | bool | int | str."""
    body = b"".join(_p_str(k) + _p_value(v) for k, v in model.items())
    return b"\x80\x02}(" + body + b"u."
