"""`digit-train` as a careless user meets it (issue 24): a YAML key given twice, --resume with
a new config, an implausible learning rate, Ctrl-C, and a run without validation."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_train import FakeSet, run, tiny

from cli import prepare, train_app
from core.errors import DigitError, Interrupted
from digit.train import TrainConfig
from digit.train.config import load_yaml, write_yaml
from digit.train.figures import plot_learning_curves


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["digit-train", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        train_app.main()
    return int(exc.value.code or 0), capsys.readouterr().err


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """Preparing data is where the long work starts: reaching it ends the command with a
    marker line, and DIGIT_HOME is empty, so any dataset built would show."""
    home = tmp_path / "home"
    monkeypatch.setenv("DIGIT_HOME", str(home))

    def reached(cfg):
        raise DigitError("reached the data preparation")

    monkeypatch.setattr(prepare, "prepare_training_data", reached)
    return home


def test_a_yaml_key_given_twice_is_an_error_naming_both_lines(tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("preset: cpu\nlr: 1e-3\nbatch_size: 4\nlr: 5\n")
    with pytest.raises(DigitError) as exc:
        load_yaml(path)
    assert str(exc.value) == f"{path}: key 'lr' is given twice (lines 2 and 4); keep one"
    nested = tmp_path / "n.yaml"
    nested.write_text("milestones: [10]\nextra:\n  a: 1\n  a: 2\n")
    with pytest.raises(DigitError, match=r"key 'a' is given twice \(lines 3 and 4\)"):
        load_yaml(nested)
    code, err = _cli(monkeypatch, capsys, "--config", path)
    assert (
        code == 1
        and err
        == f"digit-train: error: {path}: key 'lr' is given twice (lines 2 and 4); keep one\n"
    )
    path.write_text("preset: cpu\nlr: 1e-3\n")
    assert load_yaml(path) == {"preset": "cpu", "lr": "1e-3"}  # YAML 1.1 reads 1e-3 as text


def _run_folder(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = TrainConfig.preset_config("cpu").updated({"out": str(run_dir)})
    write_yaml(cfg, run_dir / "config.yaml")
    return run_dir


def test_resume_with_a_new_config_names_what_changed_before_any_data(
    tmp_path, monkeypatch, capsys, no_data
):
    run_dir = _run_folder(tmp_path)
    new = tmp_path / "new.yaml"
    new.write_text("max_steps: 50\nlr: 5\n")  # no preset: the run's own (cpu) is kept
    code, err = _cli(monkeypatch, capsys, "--out", run_dir, "--resume", "--config", new)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(
        f"digit-train: error: {new}: --resume continues {run_dir} with its own config "
        f"({run_dir / 'config.yaml'}); lr is {TrainConfig.preset_config('cpu').lr!r} there, "
        "5 here (only max_steps, "
    )
    code, err = _cli(monkeypatch, capsys, "--out", run_dir, "--resume", "--preset", "paper")
    assert code == 1 and "error: --preset: --resume continues" in err
    assert "preset is 'cpu' there, 'paper' here" in err
    code, err = _cli(monkeypatch, capsys, "--out", run_dir, "--resume", "--seed", "3")
    assert code == 1 and "error: --seed: " in err and "seed is 0 there, 3 here" in err
    assert not no_data.exists()  # nothing was prepared
    # what a resumed run may change goes through to the data preparation
    new.write_text("max_steps: 50\ntime_limit: 3\n")
    code, err = _cli(monkeypatch, capsys, "--out", run_dir, "--resume", "--config", new)
    assert code == 1 and err == "digit-train: error: reached the data preparation\n"


def test_an_implausible_learning_rate_warns_in_one_line(tmp_path, monkeypatch, capsys, no_data):
    path = tmp_path / "c.yaml"
    path.write_text("preset: cpu\nlr: 5\n")
    code, err = _cli(monkeypatch, capsys, "--config", path, "--out", tmp_path / "run")
    assert code == 1
    assert err.splitlines()[0] == (
        "digit-train: warning: lr 5 is outside the plausible 1e-06-0.01 for Adam on DIGIT (the "
        "paper preset trains at 1e-4, cpu at 1e-3); training goes on with it"
    )
    path.write_text("preset: cpu\nlr: 3e-4\n")
    code, err = _cli(monkeypatch, capsys, "--config", path, "--out", tmp_path / "run")
    assert "warning" not in err


class InterruptedSet(FakeSet):
    """FakeSet whose sample `at` is where the user presses Ctrl-C."""

    def __init__(self, n: int, at: int) -> None:
        super().__init__(n)
        self.at, self.seen = at, 0

    def __getitem__(self, i: int) -> dict:
        self.seen += 1
        if self.seen == self.at:
            raise KeyboardInterrupt
        return super().__getitem__(i)


def test_ctrl_c_says_what_was_saved_and_how_to_resume(tmp_path):
    cfg = tiny(tmp_path, max_steps=10, save_every=2)
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted) as exc:
        run(cfg, InterruptedSet(40, at=2 * 5 + 1))  # batch 2: in step 6, after the save at 4
    assert str(exc.value) == (
        f"{run_dir / 'last.pt'} holds step 4 (later steps are lost); continue with "
        f"`digit-train --out {run_dir} --resume`"
    )
    early = tiny(tmp_path / "b", max_steps=10, save_every=5)
    with pytest.raises(Interrupted, match=r"no checkpoint was saved in .* yet; rerun the same"):
        run(early, InterruptedSet(40, at=3))


def test_a_run_without_validation_draws_its_curves_without_a_warning(tmp_path):
    cfg = tiny(tmp_path, max_steps=2)
    run(cfg, FakeSet(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = plot_learning_curves(tmp_path / "run" / "metrics.jsonl", tmp_path / "c.png")
    assert out.stat().st_size > 0


def test_the_sides_panel_reads_what_validation_logged(tmp_path):
    from digit.train.figures import _side_curves

    val = [
        {"kind": "val", "step": 5, "handedness_acc": 0.5},  # an older run: no sides logged
        {
            "kind": "val",
            "step": 10,
            "handedness_acc": 0.9,
            "segmentation": {"side_accuracy_single": 0.8, "side_accuracy_interacting": None},
            "hands_exchanged": {"share": 0.25},
        },
    ]
    curves = _side_curves(val)
    assert curves["handedness accuracy"] == [0.5, 0.9]
    assert np.isnan(curves["part sides, single-hand images"][0])
    assert curves["part sides, single-hand images"][1] == 0.8
    assert all(np.isnan(curves["part sides, interacting images"]))
    assert curves["hands not exchanged (interacting)"][1] == 0.75
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in val))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plot_learning_curves(path, tmp_path / "c.png").stat().st_size > 0
