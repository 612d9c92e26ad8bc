"""Write the project's synthetic MANO-format hand model to assets/mano_synthetic/.

Usage: python scripts/build_synthetic_mano.py [OUT_DIR]
The output is deterministic: rerunning gives byte-identical MANO_RIGHT.pkl and MANO_LEFT.pkl.
"""

import hashlib
import sys
from pathlib import Path

from core.assets import SYNTHETIC_MANO_DIR
from render.synthetic_mano.build import write_synthetic_mano


def main(argv: list[str]) -> None:
    out_dir = Path(argv[0]) if argv else SYNTHETIC_MANO_DIR
    for path in write_synthetic_mano(out_dir):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path}  sha256 {digest}")


if __name__ == "__main__":
    main(sys.argv[1:])
