"""benchmarks.compare_evals: digit-eval folders side by side, paired per image.

The per-image errors are checked against a slow loop over hand-shifted predictions (every
non-root joint moved by a known vector, so each valid one is off by its length and each root
by 0), the table against hand-computed means and sample deviations."""

import json
import math

import numpy as np
import pytest

from benchmarks.compare_evals import compare, load_arms, main, per_image_mpjpe, split_truth
from core.errors import DigitError
from core.joints import HAND_JOINTS, ROOT_JOINTS


def _fake_eval(folder, root, truth, shift, metrics, rows=None):
    """A digit-eval folder whose predictions are the truth with every non-root joint moved by
    `shift` (mm), over `rows` of the split (all by default)."""
    rows = np.arange(len(truth.image_id)) if rows is None else np.asarray(rows)
    joints = truth.joints_cam[rows].copy()
    moved = [j for j in range(2 * HAND_JOINTS) if j not in ROOT_JOINTS]
    joints[:, moved] += np.asarray(shift, dtype=np.float64)
    folder.mkdir(parents=True)
    np.savez(folder / "predictions.npz", image_id=truth.image_id[rows], joints_cam_mm=joints)
    doc = {"data": {"root": str(root), "split": "test"}} | metrics
    (folder / "metrics.json").write_text(json.dumps(doc))
    return folder


def _slow_mpjpe(truth, length):
    """Each image's mean over its valid joints (a joint counts where it and its hand's root
    are valid): roots 0, every other joint `length`."""
    out = []
    for valid in truth.joint_valid:
        errors = []
        for j in range(2 * HAND_JOINTS):
            root = ROOT_JOINTS[j // HAND_JOINTS]
            if valid[j] and valid[root]:
                errors.append(0.0 if j == root else length)
        out.append(sum(errors) / len(errors) if errors else math.nan)
    return np.array(out)


@pytest.fixture(scope="module")
def truth(synthetic_root):
    return split_truth(synthetic_root, "test")


def test_per_image_errors_match_a_slow_loop(synthetic_root, truth, tmp_path):
    assert truth.interacting.any() and (~truth.interacting).any()
    half = np.arange(0, len(truth.image_id), 2)
    run = load_arms(
        [["a", str(_fake_eval(tmp_path / "a", synthetic_root, truth, (3, 4, 0), {}, half))]]
    )
    got = per_image_mpjpe(run["a"][0], truth)
    want = _slow_mpjpe(truth, 5.0)
    assert np.allclose(got[half], want[half], equal_nan=True)
    assert np.isfinite(want[half]).any()
    assert np.isnan(np.delete(got, half)).all()  # images the run did not evaluate


def test_table_and_paired_differences(synthetic_root, truth, tmp_path):
    specs = []
    for arm, shift, values in (
        ("near", (3, 4, 0), [40.0, 44.0]),
        ("far", (6, 8, 0), [50.0, 50.0]),
    ):
        folders = [arm]
        for seed, value in enumerate(values):
            seg = {"miou": 0.2, "side_accuracy_single": 0.9} if seed == 0 else {"miou": 0.3}
            metrics = {"mpjpe_all": value, "segmentation": seg}
            folder = _fake_eval(tmp_path / f"{arm}{seed}", synthetic_root, truth, shift, metrics)
            folders.append(str(folder))
        specs.append(folders)
    report = compare(load_arms(specs), "far", truth)
    near_row = next(line for line in report.splitlines() if line.startswith("| near |"))
    cells = [c.strip() for c in near_row.strip("|").split("|")]
    assert cells[1] == "2"
    assert cells[2] == f"42.00 ± {math.sqrt(8):.2f}"  # 40 and 44: sample std sqrt(8)
    assert cells[7] == f"0.250 ± {math.sqrt(0.005):.3f}"  # mIoU 0.2 and 0.3
    assert cells[8] == "0.900 (1 of 2)"  # one run's metrics lack the key
    assert cells[3] == "n/a"  # no run has mpjpe_sh
    # near - far on each image: 5 - 10 = -5 per non-root joint, so -5 x the non-root share
    diff = _slow_mpjpe(truth, 5.0) - _slow_mpjpe(truth, 10.0)
    for label, keep in (("interacting", truth.interacting), ("all", slice(None))):
        d = diff[keep][np.isfinite(diff[keep])]
        line = next(x for x in report.splitlines() if x.startswith(f"| near | {label} |"))
        assert f"{d.mean():+.2f} [" in line and f"(n {d.size})" in line
        assert line.endswith(f"| {d.mean():+.2f}, {d.mean():+.2f} |")
    assert "| far | interacting |" not in report  # the reference is not compared to itself


def test_bad_folders_are_one_line_errors(synthetic_root, truth, tmp_path, capsys):
    good = _fake_eval(tmp_path / "good", synthetic_root, truth, (1, 0, 0), {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DigitError, match=r"empty/metrics\.json: not found"):
        load_arms([["a", str(tmp_path / "empty")]])
    other = _fake_eval(tmp_path / "other", tmp_path / "elsewhere", truth, (1, 0, 0), {})
    with pytest.raises(DigitError, match="compare runs on the same data and split"):
        load_arms([["a", str(good)], ["b", str(other)]])
    with pytest.raises(DigitError, match="--arm a: give at least one"):
        load_arms([["a"]])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{")
    np.savez(tmp_path / "broken" / "predictions.npz", image_id=np.zeros(1))
    with pytest.raises(DigitError, match=r"broken/metrics\.json: not readable JSON"):
        load_arms([["a", str(tmp_path / "broken")]])
    assert main(["--arm", "a", str(good), "--against", "b"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["compare_evals: error: --against b: no such arm (a)"]
