"""Where the detector's model files are: inside the installed mediapipe 0.10.21 wheel.

The wheel is installed without its dependencies (they clash with numpy 2); it is only read,
never imported. Its model files are Apache-2.0, like the rest of MediaPipe.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from core.errors import DigitError

MEDIAPIPE_VERSION = "0.10.21"
PALM_MODEL = "mediapipe/modules/palm_detection/palm_detection_full.tflite"
LANDMARK_MODEL = "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"
INSTALL_HINT = (
    f"run `make install`, or `pip install 'ai-edge-litert>=2.3,<3'` and "
    f"`pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}`"
)


def model_path(relative: str) -> Path:
    """The absolute path of one model file of the installed mediapipe wheel."""
    try:
        dist = metadata.distribution("mediapipe")
    except metadata.PackageNotFoundError:
        raise DigitError(f"hand detection needs the mediapipe models: {INSTALL_HINT}") from None
    path = Path(dist.locate_file(relative))
    if not path.is_file():
        raise DigitError(
            f"{path}: not found in mediapipe {dist.version} (the models ship in "
            f"{MEDIAPIPE_VERSION} only): {INSTALL_HINT}"
        )
    return path
