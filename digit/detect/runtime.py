"""Running a TFLite model: LiteRT's interpreter (`ai-edge-litert`, Apache-2.0, numpy 2)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from core.errors import DigitError
from digit.detect.models import INSTALL_HINT


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null meanwhile: LiteRT's C++ code writes "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU." there while allocating tensors, and no setting
    turns it off. Its failures still arrive as Python exceptions carrying their message."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class TFLiteModel:
    """One float32 model with one NHWC input; call with (1, H, W, C), get outputs by name."""

    def __init__(self, path: Path, threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise DigitError(f"hand detection needs a TFLite runtime: {INSTALL_HINT}") from None
        self._interp = Interpreter(model_path=str(path), num_threads=threads)
        with _native_stderr_silenced():
            self._interp.allocate_tensors()
        (self._input,) = self._interp.get_input_details()
        self._outputs = self._interp.get_output_details()

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self._interp.set_tensor(self._input["index"], np.ascontiguousarray(x, dtype=np.float32))
        self._interp.invoke()
        return {d["name"]: self._interp.get_tensor(d["index"]).copy() for d in self._outputs}
