"""`digit-render` with a pause after every finished piece (DIGIT_TEST_PIECE_PAUSE seconds),
so that tests/test_slurm.py can requeue an array task in the middle of its build."""

import os
import time

import render.mask_cache.builder as builder
from cli.render_app import main

_render_piece_file = builder.render_piece_file


def _slow_render_piece_file(*args, **kwargs):
    done = _render_piece_file(*args, **kwargs)
    time.sleep(float(os.environ.get("DIGIT_TEST_PIECE_PAUSE", "0.5")))
    return done


builder.render_piece_file = _slow_render_piece_file

if __name__ == "__main__":
    main()
