"""`digit-render` with a pause after every piece file written (DIGIT_TEST_PIECE_PAUSE seconds),
so that tests/test_slurm.py can requeue an array task in the middle of its build. The pause is
in `write_piece`, which the build calls for every piece whichever way it renders them."""

import os
import time

import render.mask_cache.builder as builder
from cli.render_app import main

_write_piece = builder.write_piece


def _slow_write_piece(*args, **kwargs):
    _write_piece(*args, **kwargs)
    time.sleep(float(os.environ.get("DIGIT_TEST_PIECE_PAUSE", "0.5")))


builder.write_piece = _slow_write_piece

if __name__ == "__main__":
    main()
