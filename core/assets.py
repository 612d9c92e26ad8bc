"""Where the repository's assets live (the project is installed in editable mode)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
TEXTURES_DIR = ASSETS_DIR / "textures"
SYNTHETIC_MANO_DIR = ASSETS_DIR / "mano_synthetic"
