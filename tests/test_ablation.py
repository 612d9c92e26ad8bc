"""The ablation driver (benchmarks/ablation.py) on a tiny split, and its statistics by hand."""

import json
import shutil

import numpy as np
import pytest

from benchmarks import ablation
from benchmarks.ablation_report import (
    bin_means,
    mean_std,
    paired_test,
    seed_averaged_errors,
    summary_markdown,
    write_report,
)
from core.errors import DigitError
from core.interhand.reader import InterHandSplit

TINY = {"batch_size": 2, "num_workers": 0, "val_limit": 4}


@pytest.mark.integration
def test_a_set_writes_complete_results_and_skips_finished_runs(
    tmp_path, synthetic_root, monkeypatch
):
    root = shutil.copytree(synthetic_root, tmp_path / "data")
    said = []
    ablation.prepare_data(root, said.append)  # builds the train and test masks it lacks
    assert (root / "masks" / "masks_train.h5").is_file()
    assert (root / "masks" / "masks_test.h5").is_file() and len(said) == 2
    results = tmp_path / "results"
    args = (["baseline", "digit"], [0], 2, root, tmp_path / "runs", results, said.append)
    ablation.run_set(*args, **TINY)
    doc = json.loads((results / "ablation.json").read_text())
    n_test = len(InterHandSplit.from_root(root, "test"))
    assert doc["settings"]["steps"] == 2 and doc["settings"]["test_images"] == n_test
    assert [(r["variant"], r["seed"]) for r in doc["runs"]] == [("baseline", 0), ("digit", 0)]
    for run in doc["runs"]:
        assert run["steps"] == 2 and run["images_seen"] == 4 and run["train_seconds"] > 0
        for key in ("mpjpe_sh", "mpjpe_ih", "mpjpe_all", "mrrpe", "handedness_acc"):
            assert key in run
        assert run["mpjpe_all"] is not None and run["mpjpe_all"] > 0
        assert set(run["mpjpe_by_bin"]) >= {"0", "(0,0.33]", "(0.33,0.67]", "(0.67,1]"}
        assert len(run["per_image"]["mpjpe"]) == n_test == len(run["per_image"]["interacting"])
        assert run["learning_curve"] and run["learning_curve"][-1]["step"] == 2
        assert run["mean_pose"]["mpjpe_all"] > 0
    # a rerun trains nothing: every (variant, seed) is already there
    monkeypatch.setattr(ablation, "train_and_score", lambda *a, **k: pytest.fail("retrained"))
    ablation.run_set(*args, **TINY)
    assert json.loads((results / "ablation.json").read_text()) == doc
    # rescoring (a newer digit-eval) scores the same checkpoints again: the same numbers
    ablation.rescore(results, tmp_path / "runs", said.append)
    assert json.loads((results / "ablation.json").read_text()) == doc
    # other settings in the same folder are refused in one line
    with pytest.raises(DigitError, match="other settings"):
        ablation.run_set(["baseline"], [0], 3, root, tmp_path / "runs", results, said.append)
    write_report(results / "ablation.json", results, said.append)
    text = (results / "ablation.md").read_text()
    assert "| baseline | 0 |" in text and "| digit |" in text
    assert (results / "ablation_by_bin.png").stat().st_size > 0
    assert (results / "ablation_curves.png").stat().st_size > 0


def test_mean_std_uses_the_sample_deviation_over_finite_values():
    mean, std, n = mean_std([1.0, 2.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 3) and std == pytest.approx(1.0)  # sqrt(((1)^2 + 0 + 1^2) / 2)
    assert np.isnan(mean_std([5.0])[1]) and mean_std([])[2] == 0


def _run(errors, interacting, bins=None, seed=0):
    bins = bins or ["single"] * len(errors)
    return {"per_image": {"mpjpe": errors, "interacting": interacting, "bin": bins}, "seed": seed}


def test_seed_averaged_errors_by_hand():
    runs = [_run([10.0, 20.0, None, 4.0], [True, True, True, False]),
            _run([30.0, 40.0, 5.0, 6.0], [True, True, True, False], seed=1)]  # fmt: skip
    got = seed_averaged_errors(runs)
    assert got[:2].tolist() == [20.0, 30.0]
    assert np.isnan(got[2])  # one seed has no error for it
    assert np.isnan(got[3])  # single-hand image
    assert seed_averaged_errors(runs, interacting_only=False)[3] == 5.0


def test_paired_test_by_hand():
    base = np.array([50.0, 60, 55, 70, 65, 40, 45, 52, 58, 61, np.nan])
    diffs = np.arange(1.0, 11.0)  # 1..10 mm, all positive and distinct
    variant = base.copy()
    variant[:10] += diffs
    t = paired_test(variant, base)
    assert t.n == 10 and t.mean_diff == pytest.approx(5.5) and t.median_diff == pytest.approx(5.5)
    # exact Wilcoxon: all 10 ranks positive, one of 2^10 sign patterns, two-sided
    assert t.p_wilcoxon == pytest.approx(2 / 2**10)
    assert 1.0 <= t.ci_low < 5.5 < t.ci_high <= 10.0
    same = paired_test(base, base)
    assert same.mean_diff == 0 and same.p_wilcoxon == 1.0


def test_bin_means_by_hand():
    run = _run([10.0, 20.0, 30.0, None, 50.0], [False, True, True, True, True],
               ["single", "0", "0", "(0.67,1]", "(0.33,0.67]"])  # fmt: skip
    got = bin_means(run)
    assert got["single"] == (10.0, 1) and got["0"] == (25.0, 2)
    assert got["(0.33,0.67]"] == (50.0, 1)
    assert np.isnan(got["(0.67,1]"][0]) and got["(0.67,1]"][1] == 0


def test_summary_names_the_paired_difference():
    def rec(variant, seed, errs):
        r = _run(errs, [True] * len(errs), ["0"] * len(errs), seed)
        return r | {"variant": variant, "mpjpe_ih": float(np.mean(errs)), "mean_pose": {}}

    doc = {
        "settings": {"steps": 5, "preset": "cpu", "test_images": 3, "data_root": "x"},
        "runs": [rec("baseline", 0, [10.0, 20.0, 30.0]), rec("digit", 0, [9.0, 18.0, 27.0])],
    }
    text = summary_markdown(doc, "cmd")
    assert "| digit | 3 | -2.00 |" in text  # mean of -1, -2, -3
    assert "| baseline | 0 | 20.0 |" in text


def test_the_control_is_digit_without_the_segmentation_loss(tmp_path):
    """The control arm trains `digit`'s network, parameter for parameter, with the segmentation
    loss off and its part head reached by the pose losses (SF*: never detached, else it would
    never learn); everything else equals the `digit` run of the same seed."""
    from digit.model import DigitNet

    control = ablation.run_config("control", 1, 30, tmp_path, tmp_path / "c")
    digit = ablation.run_config("digit", 1, 30, tmp_path, tmp_path / "c")
    assert control.network.variant == "digit" and control.loss.segmentation == 0.0
    assert digit.loss.segmentation > 0.0
    assert digit.network.semantic_detach and not control.network.semantic_detach
    restored = {"weight_segmentation": digit.loss.segmentation, "semantic_detach": True}
    assert control.updated(restored) == digit

    def count(cfg):
        return sum(p.numel() for p in DigitNet(cfg.network).parameters())

    assert count(control) == count(digit)
