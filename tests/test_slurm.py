"""build-masks as a Slurm array job under a real Slurm (`make test-slurm` starts a one-node
cluster on loopback and runs this file; elsewhere it is skipped): one shard per array task,
the merge after the array, a task requeued mid-build resuming its own pieces, a merge on an
unfinished array refusing in one line, stepped arrays refused. The reference is a
single-process build of the same split (the session fixture `mask_cache_train`)."""

import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from render.mask_cache.builder import shard_output
from render.mask_cache.pieces import PIECE_PREFIX, partial_dir_for

REPO = Path(__file__).resolve().parents[1]
ARRAY = REPO / "scripts" / "slurm" / "build_masks_array.sbatch"
MERGE = REPO / "scripts" / "slurm" / "merge_masks.sbatch"

pytestmark = pytest.mark.skipif(
    os.environ.get("DIGIT_SLURM_TEST") != "1" or shutil.which("sbatch") is None,
    reason="needs the local Slurm cluster that `make test-slurm` starts",
)


def job_env(pause: float = 0.0) -> dict:
    """What the batch scripts see (sbatch exports the submitting environment)."""
    render = f"{sys.executable} {REPO / 'tests' / 'slurm_slow_render.py'}"
    return os.environ | {
        "PYTHONPATH": str(REPO),
        "DIGIT_RENDER": render,
        "DIGIT_TEST_PIECE_PAUSE": str(pause),
    }


def sbatch(*args, env: dict, wait: bool = False) -> tuple[str, int]:
    """(job id, sbatch's exit code: the job's with --wait)."""
    cmd = ["sbatch", "--parsable", *(["--wait"] if wait else []), *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    job = result.stdout.strip().split(";")[0]
    if not job:
        raise AssertionError(f"sbatch failed: {result.stderr}")
    return job, result.returncode


def scontrol(*args: str) -> str:
    result = subprocess.run(["scontrol", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"scontrol {' '.join(args)}: {result.stderr}"
    return result.stdout


def job_field(job: str, name: str) -> str:
    match = re.search(rf"\b{name}=(\S*)", scontrol("show", "job", "-o", job))
    return match[1] if match else ""


def wait_for(what: str, ready, timeout: float = 300.0, every: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = ready()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


# states a job does not leave by itself (COMPLETED is the one the tests wait for)
ENDED = ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")


def job_report(job: str, log: Path) -> str:
    """What to show when a job does not do what the test waits for: its record, its output,
    the end of slurmctld's log."""
    ctld = Path(os.environ.get("SLURM_CONF", "/nonexistent")).parent / "log" / "slurmctld.log"
    tail = ctld.read_text().splitlines()[-40:] if ctld.exists() else ["(no slurmctld log)"]
    output = log.read_text() if log.exists() else f"(no {log})"
    record = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
    return "\n".join([record.stdout + record.stderr, output, *tail])


# AuthInfo=cred_expire of the test cluster (scripts/slurm/start_local_cluster.sh)
CRED_EXPIRE_S = 30.0


def wait_until_completed(
    job: str, log: Path, timeout: float = 300.0, revoked_at: float | None = None
) -> None:
    """Wait for JobState=COMPLETED; fail at once, with the job's story, if it ends otherwise.

    A requeued batch job (revoked_at: `time.monotonic()` of the requeue) waits for a begin time
    Slurm sets so that the old run's credential expires (cred_expire + 1 s: 31 s on the test
    cluster, 121 s by default), and slurmctld may set it again when the old run's cleanup
    finishes. Once the credential has expired, the test moves the begin time to now while the
    job waits; any sooner and slurmd kills the new start ("Job credential revoked", as a run on
    2026-12-07 did)."""
    end = time.monotonic() + timeout
    nudge_from = -math.inf if revoked_at is None else revoked_at + CRED_EXPIRE_S + 2.0
    while time.monotonic() < end:
        state, reason = job_field(job, "JobState"), job_field(job, "Reason")
        if state == "COMPLETED":
            return
        if state in ENDED:
            raise AssertionError(f"{job} ended {state}:\n{job_report(job, log)}")
        if state == "PENDING" and reason == "BeginTime" and time.monotonic() >= nudge_from:
            scontrol("update", f"jobid={job}", "StartTime=now")
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {job} to complete:\n{job_report(job, log)}")


def assert_same_datasets(a: Path, b: Path) -> None:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert sorted(fa.keys()) == sorted(fb.keys())
        for name in fa:
            x, y = fa[name][...], fb[name][...]
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


def test_array_job_with_a_requeued_task_and_merges(tmp_path, synthetic_root, mask_cache_train):
    masks = tmp_path / "masks"
    merged = masks / "masks_train.h5"
    build = ["--split", "train", "--data-root", synthetic_root, "--masks", masks]
    env = job_env(pause=0.5)  # 6 pieces of 2 images per shard, half a second each

    # 3 shards, held, so that the test decides when each task runs
    job, _ = sbatch(
        "--hold", "--array=0-2", f"--output={tmp_path}/task-%A_%a.out", f"--chdir={tmp_path}",
        ARRAY, *build, "--piece-size", "2", env=env,
    )  # fmt: skip
    scontrol("release", f"{job}_0", f"{job}_1")

    # requeue task 0 once it has finished a piece (and not all of them)
    partial0 = partial_dir_for(shard_output(merged, 0, 3))
    wait_for("a finished piece of shard 0", lambda: list(partial0.glob(f"{PIECE_PREFIX}*.h5")))
    assert not shard_output(merged, 0, 3).exists()
    scontrol("requeue", f"{job}_0")
    requeued = time.monotonic()
    wait_for("the requeued task", lambda: job_field(f"{job}_0", "JobState") == "PENDING")
    wait_until_completed(f"{job}_0", tmp_path / f"task-{job}_0.out", revoked_at=requeued)
    wait_until_completed(f"{job}_1", tmp_path / f"task-{job}_1.out")
    log0 = (tmp_path / f"task-{job}_0.out").read_text()
    assert "(job" in log0 and "start 1)" in log0, log0  # the second start of task 0
    resumed = re.search(r"resuming \S+: (\d+) of (\d+) pieces already done", log0)
    assert resumed and 1 <= int(resumed[1]) < int(resumed[2]) == 6, log0

    # the merge on the unfinished array refuses in one line naming the missing shard
    _, code = sbatch(
        f"--output={tmp_path}/merge-early.out", MERGE, "--out", merged, "--shards", 3,
        env=env, wait=True,
    )  # fmt: skip
    said = (tmp_path / "merge-early.out").read_text().strip().splitlines()
    assert code != 0 and len(said) == 1, said
    assert said[0].startswith("digit-render: error: merge: shards 2/3 missing (2 of 3 in"), said
    assert not merged.exists()

    # the last task, then the merge after the whole array succeeded
    scontrol("release", f"{job}_2")
    _, code = sbatch(
        f"--dependency=afterok:{job}", f"--output={tmp_path}/merge.out", MERGE,
        "--out", merged, "--shards", 3, env=env, wait=True,
    )  # fmt: skip
    assert code == 0, (tmp_path / "merge.out").read_text()
    assert job_field(f"{job}_2", "JobState") == "COMPLETED"
    assert_same_datasets(merged, mask_cache_train)


def test_stepped_and_sparse_arrays_are_refused(tmp_path, synthetic_root):
    build = ["--split", "train", "--data-root", synthetic_root, "--masks", tmp_path / "masks"]
    for array in ("0-4:2", "0,3"):
        _, code = sbatch(
            f"--array={array}", f"--output={tmp_path}/refused-%a.out", ARRAY, *build,
            env=job_env(), wait=True,
        )  # fmt: skip
        assert code != 0
        said = (tmp_path / "refused-0.out").read_text().splitlines()
        errors = [line for line in said if "error" in line]
        assert errors == [errors[0]] and errors[0].startswith(
            "digit-render: error: --shard slurm: array 0-"
        ), said
        assert "contiguous array" in errors[0]
        (tmp_path / "refused-0.out").unlink()
    assert not (tmp_path / "masks").exists()
