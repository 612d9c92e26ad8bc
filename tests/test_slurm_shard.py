"""`--shard slurm` from Slurm's array variables, and `merge --shards N` naming missing shards
(no cluster needed; tests/test_slurm.py runs both under a real Slurm)."""

import pytest

from core.errors import DigitError
from render.mask_cache.builder import default_output, shard_output
from render.mask_cache.merge import expected_shards
from render.mask_cache.slurm import slurm_array_shard


def array(task, low, high, count, step=None):
    env = {
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_ARRAY_TASK_MIN": str(low),
        "SLURM_ARRAY_TASK_MAX": str(high),
        "SLURM_ARRAY_TASK_COUNT": str(count),
    }
    return env | ({} if step is None else {"SLURM_ARRAY_TASK_STEP": str(step)})


def test_shard_of_a_contiguous_array():
    assert slurm_array_shard(array(0, 0, 15, 16, 1)) == (0, 16)
    assert slurm_array_shard(array(15, 0, 15, 16)) == (15, 16)
    assert slurm_array_shard(array(5, 3, 6, 4)) == (2, 4)  # --array=3-6: task 5 is shard 2


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "not inside a Slurm array job (SLURM_ARRAY_TASK_ID is not set)"),
        (array(2, 0, 4, 3, 2), "array 0-4 has 3 tasks in steps of 2"),  # --array=0-4:2
        (array(3, 0, 7, 3), "array 0-7 has 3 tasks;"),  # --array=0,3,7
    ],
)
def test_outside_an_array_stepped_and_sparse_are_refused_in_one_line(env, words):
    with pytest.raises(DigitError) as err:
        slurm_array_shard(env)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("--shard slurm: ")


def test_shard_names_are_the_ones_merge_looks_for(tmp_path):
    assert shard_output(tmp_path / "masks_train.h5", 3, 16).name == "masks_train.shard-03-of-16.h5"
    assert default_output(tmp_path, "val", (1, 4), 100, tmp_path / "m") == (
        tmp_path / "m" / "masks_val.first100.shard-1-of-4.h5"
    )


def test_merge_names_every_missing_shard(tmp_path):
    out = tmp_path / "masks_train.h5"
    (tmp_path / "masks_train.shard-1-of-4.h5").write_bytes(b"")
    (tmp_path / "masks_train.shard-2-of-4.h5.partial").mkdir()
    with pytest.raises(DigitError) as err:
        expected_shards(out, 4)
    assert str(err.value) == (
        f"merge: shards 0/4, 2/4, 3/4 missing (1 of 4 in {tmp_path}; 2 unfinished; "
        "shard 0 would be masks_train.shard-0-of-4.h5)"
    )
