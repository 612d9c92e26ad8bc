"""LiteRT's interpreter says nothing on stderr while a model is loaded (it used to print
"INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to file descriptor 2)."""

import os
import sys

import pytest

pytest.importorskip("ai_edge_litert", reason="hand detection's runtime (make install) absent")


def test_loading_a_model_prints_nothing(capfd):
    from core.errors import DigitError
    from digit.detect.models import PALM_MODEL, model_path
    from digit.detect.runtime import TFLiteModel

    try:
        path = model_path(PALM_MODEL)
    except DigitError as exc:
        pytest.skip(f"the mediapipe models are not installed: {exc}")
    TFLiteModel(path)
    print("after", file=sys.stderr, flush=True)  # fd 2 works again afterwards
    os.write(2, b"raw\n")
    assert capfd.readouterr().err == "after\nraw\n"
