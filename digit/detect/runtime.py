"""Running a TFLite model: LiteRT's interpreter (`ai-edge-litert`, Apache-2.0, numpy 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import DigitError
from digit.detect.models import INSTALL_HINT


class TFLiteModel:
    """One float32 model with one NHWC input; call with (1, H, W, C), get outputs by name."""

    def __init__(self, path: Path, threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise DigitError(f"hand detection needs a TFLite runtime: {INSTALL_HINT}") from None
        self._interp = Interpreter(model_path=str(path), num_threads=threads)
        self._interp.allocate_tensors()
        (self._input,) = self._interp.get_input_details()
        self._outputs = self._interp.get_output_details()

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self._interp.set_tensor(self._input["index"], np.ascontiguousarray(x, dtype=np.float32))
        self._interp.invoke()
        return {d["name"]: self._interp.get_tensor(d["index"]).copy() for d in self._outputs}
