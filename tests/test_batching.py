"""The global batch's split over processes and passes (`digit.train.batching`), and the
command line's one-line refusal of a split that cannot work, said by rank 0 only."""

import os
import subprocess
import sys

import pytest

from core.errors import DigitError
from digit.train.batching import BatchPlan, plan_batches


@pytest.mark.parametrize(
    ("batch", "accum", "world", "cap", "expected"),
    [
        (32, 2, 1, None, (2, 32)),  # the paper on one device: 2 passes of 32
        (32, 2, 2, None, (1, 32)),  # ... on 2: one pass each
        (32, 2, 4, None, (1, 16)),  # ... on 4: 16 per device, under the cap
        (32, 2, 8, None, (1, 8)),
        (32, 2, 64, None, (1, 1)),
        (32, 2, 2, 12, (4, 8)),  # 32 per process, at most 12 per pass: 4 x 8
        (32, 2, 1, 20, (4, 16)),  # 64 images, at most 20 per pass: 4 x 16
        (8, 1, 2, None, (1, 4)),  # tiny on 2 processes (refused before issue 13)
        (6, 1, 2, 2, (3, 1)),  # 3 per process, at most 2 per pass: 3 x 1 (3 is prime)
    ],
)
def test_plan_by_hand(batch, accum, world, cap, expected):
    plan = plan_batches(batch, accum, world, cap)
    assert (plan.accum, plan.micro) == expected
    assert plan.world_size * plan.accum * plan.micro == batch * accum  # the global batch


def test_plan_refuses_only_an_uneven_split_in_one_line():
    with pytest.raises(DigitError) as err:
        plan_batches(32, 2, 3)
    msg = str(err.value)
    assert "64 images" in msg and "3 processes" in msg and "1, 2, 4, 8, 16, 32, 64" in msg
    assert "\n" not in msg
    assert plan_batches(32, 2, 1, 7).micro == 4  # a cap that divides nothing: the next divisor


def test_plan_describes_its_choice_on_one_line():
    line = plan_batches(32, 2, 4).describe()
    assert (
        line
        == "batch 64 images per step = 4 processes x 1 pass x 16 images (at most 32 per device)"
    )


def test_each_process_takes_its_block_of_every_step():
    # 2 steps of 2 processes x 2 passes: micro-batches 0..7; process r takes 2r, 2r+1 of each step
    plan = BatchPlan(global_batch=8, world_size=2, accum=2, micro=1, cap=1)
    batches = [[i] for i in range(9)]  # the 9th makes no whole step
    assert plan.rank_batches(batches, 0) == [[0], [1], [4], [5]]
    assert plan.rank_batches(batches, 1) == [[2], [3], [6], [7]]
    one = BatchPlan(global_batch=8, world_size=1, accum=4, micro=1, cap=1)
    assert one.rank_batches(batches, 0) == [[i] for i in range(8)]


def _cli(*args, env):
    code = "from cli.train_app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


def test_cli_refuses_an_uneven_split_once(tmp_path):
    # torchrun's environment for 3 processes; the refusal comes before any process group
    env = {"WORLD_SIZE": "3", "LOCAL_RANK": "0", "RANK": "0"}
    args = ("--preset", "tiny", "--out", str(tmp_path / "run"))
    main = _cli(*args, env=env)
    assert main.returncode == 1
    assert main.stderr.strip() == (
        "digit-train: error: batch: the global batch of 8 images (8 x 1) cannot be split evenly "
        "over 3 processes (process counts that divide it: 1, 2, 4, 8)"
    )
    other = _cli(*args, env=env | {"RANK": "2", "LOCAL_RANK": "2"})
    assert other.returncode == 1 and other.stderr == ""  # said once, by rank 0
    assert not (tmp_path / "run").exists()
