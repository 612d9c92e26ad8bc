"""The trainer (`digit.train`) and `digit-train`: overfitting, run folder, exact resume, NaN stop,
config files, and one end-to-end run on the synthetic dataset."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from core.errors import DigitError
from digit.data.batch import Batch
from digit.data.crop import crop_to_image
from digit.losses import LossWeights
from digit.targets import PoseTargets
from digit.train import TrainConfig, resolve_config, train
from digit.train.loop import amp_dtype

SIZE = 64  # crop side of the fake samples (heatmaps 16 x 16, labels 32 x 32)


class FakeSet(Dataset):
    """n random but fixed samples (a function of the index only); `nan=True` poisons the images."""

    def __init__(self, n: int, nan: bool = False) -> None:
        self.n, self.nan, self.epochs = n, nan, []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(1000 + i)
        hm = SIZE // 4
        joints = torch.rand(42, 3, generator=g) * torch.tensor([hm, hm, 64.0])
        image = torch.rand(3, SIZE, SIZE, generator=g)
        if self.nan:
            image = torch.full_like(image, float("nan"))
        affine = torch.tensor([[0.5, 0.0, -10.0], [0.0, 0.5, -20.0]], dtype=torch.float64)
        return {
            "image": image,
            "joints_hm": joints,
            "joint_valid": torch.ones(42, dtype=torch.bool),
            "rel_root_bins": torch.rand((), generator=g) * 64,
            "rel_root_valid": torch.tensor(True),
            "hand_type": torch.tensor([1.0, float(i % 2)]),
            "hand_type_valid": torch.tensor(True),
            "segm_target": torch.randint(0, 33, (SIZE // 2, SIZE // 2), generator=g),
            "segm_valid": torch.tensor(True),
            "index": torch.tensor(i),
            "crop_affine": affine,
            "joints_cam": torch.randn(42, 3, generator=g, dtype=torch.float64) * 30
            + torch.tensor([0.0, 0.0, 500.0], dtype=torch.float64),
            "joint_valid_eval": torch.ones(42, dtype=torch.bool),
            "abs_depth": torch.tensor([500.0, 520.0], dtype=torch.float64),
            "focal": torch.tensor([600.0, 600.0], dtype=torch.float64),
            "princpt": torch.tensor([150.0, 120.0], dtype=torch.float64),
            "hand_type_code": torch.tensor(2 if i % 2 else 0),
            "lr_iou": torch.tensor(float("nan")),
        }


def fake_collate(items: list[dict]) -> Batch:
    s = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    targets = PoseTargets(
        s["joints_hm"],
        s["joint_valid"],
        s["rel_root_bins"],
        s["rel_root_valid"],
        s["hand_type"],
        s["hand_type_valid"],
    )
    return Batch(
        image=s["image"],
        targets=targets,
        segm_target=s["segm_target"],
        segm_valid=s["segm_valid"],
        index=s["index"],
        image_id=s["index"],
        crop_affine=s["crop_affine"],
        joints_cam=s["joints_cam"],
        joint_valid=s["joint_valid_eval"],
        abs_depth=s["abs_depth"],
        focal=s["focal"],
        princpt=s["princpt"],
        hand_type_code=s["hand_type_code"],
        hand_type_valid=s["hand_type_valid"],
        lr_iou=s["lr_iou"],
    )


def fake_loader(dataset, batch_size, shuffle, num_workers, distributed=False) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=fake_collate)


def tiny(tmp_path, **overrides) -> TrainConfig:
    base = dict(
        out=str(tmp_path / "run"),
        input_size=SIZE,
        batch_size=2,
        num_workers=0,
        log_every=1,
        eval_every=0,
        save_every=0,
        amp="off",
        device="cpu",
    )
    return TrainConfig.preset_config("tiny").updated(base | overrides)


def run(cfg, data, val=None, resume=False):
    return train(
        cfg, resume, train_set=data, val_set=val, loader_fn=fake_loader, show_progress=False
    )


def read_metrics(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def params(path):
    return torch.load(path, weights_only=True)["model"]


# ---- the loop -----------------------------------------------------------------------------------


def test_overfits_a_fixed_batch(tmp_path):
    cfg = tiny(tmp_path, lr=1e-3, max_steps=12, augment=False)
    run(cfg, FakeSet(2))  # 2 samples, batch 2: every step sees the same batch
    losses = [r["loss"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert len(losses) == 12 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses


def test_run_folder_holds_config_metrics_tensorboard_and_checkpoints(tmp_path):
    data = FakeSet(6)  # 3 steps per epoch
    cfg = tiny(tmp_path, max_steps=4, eval_every=2)
    result = run(cfg, data, val=FakeSet(4))
    run_dir = tmp_path / "run"
    assert result.step == 4 and result.epoch == 1
    assert data.epochs == [0, 1]
    assert resolve_config(config_file=run_dir / "config.yaml") == cfg  # the resolved config
    records = read_metrics(run_dir)
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]
    val = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in val] == [2, 4]
    assert all(r["counts"]["images"] == 4 and r["mpjpe_all"] > 0 for r in val)
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    last = torch.load(run_dir / "last.pt", weights_only=True)
    assert last["step"] == 4 and last["epoch"] == 1 and last["config"]["max_steps"] == 4
    assert last["optimizer"]["state"]  # Adam moments saved for resume
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["metrics"]["mpjpe_all"] == min(r["mpjpe_all"] for r in val)
    with pytest.raises(DigitError, match="already holds a run"):
        run(cfg, data)


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    # 8 samples, batch 2, 2 passes per step: 2 steps per epoch; lr halves after epoch 1, so
    # the 5 steps cross two epoch boundaries and a learning-rate change.
    common = dict(grad_accum=2, milestones=(1,), gamma=0.5, lr=1e-3)
    full = tiny(tmp_path, max_steps=5, out=str(tmp_path / "full"), **common)
    run(full, FakeSet(8))

    part = tiny(tmp_path, max_steps=3, out=str(tmp_path / "part"), **common)
    run(part, FakeSet(8))
    assert torch.load(tmp_path / "part" / "last.pt", weights_only=True)["step"] == 3
    data = FakeSet(8)
    result = run(part.updated({"max_steps": 5}), data, resume=True)
    assert result.step == 5 and data.epochs == [1, 2]  # resumed mid-epoch 1

    a, b = params(tmp_path / "full" / "last.pt"), params(tmp_path / "part" / "last.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv_hm.weight"], params_at_init(part)["conv_hm.weight"])
    steps = [r["step"] for r in read_metrics(tmp_path / "part") if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5]
    lrs = [r["lr"] for r in read_metrics(tmp_path / "part")]
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 5e-4])  # lr of each step
    with pytest.raises(DigitError, match="lr was"):
        run(part.updated({"lr": 1e-2, "max_steps": 6}), FakeSet(8), resume=True)


def params_at_init(cfg):
    from digit.model import DigitNet

    torch.manual_seed(cfg.seed)
    return DigitNet(cfg.network).state_dict()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = tiny(tmp_path, max_steps=2)
    run(cfg, FakeSet(4))
    last = tmp_path / "run" / "last.pt"
    before = last.read_bytes()
    with pytest.raises(DigitError) as err:
        run(cfg.updated({"max_steps": 4}), FakeSet(4, nan=True), resume=True)
    msg = str(err.value)
    assert "step 3" in msg and str(tmp_path / "run") in msg and "\n" not in msg
    assert last.read_bytes() == before
    assert not (tmp_path / "run" / "best.pt").exists()


def test_amp_modes():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert amp_dtype("auto", cpu) is None and amp_dtype("off", cuda) is None
    assert amp_dtype("bf16", cpu) == torch.bfloat16 and amp_dtype("fp16", cuda) == torch.float16


def test_decode_undoes_the_crop():
    # crop = image * 0.5 + (-10, -20), so image = (crop + (10, 20)) * 2
    affine = np.array([[[0.5, 0.0, -10.0], [0.0, 0.5, -20.0]]])
    uvd = np.array([[[0.0, 0.0, 7.0], [32.0, 16.0, -3.0]] + [[1.0, 1.0, 0.0]] * 40])
    img = crop_to_image(uvd, affine)
    assert img[0, 0] == pytest.approx([20.0, 40.0, 7.0])
    assert img[0, 1] == pytest.approx([84.0, 72.0, -3.0])


# ---- config -------------------------------------------------------------------------------------


def test_paper_preset_is_the_release_recipe():
    cfg = TrainConfig.preset_config("paper")
    net = cfg.network
    assert (net.backbone, net.input_size, net.variant) == ("hrnet_w32", 256, "digit")
    assert (cfg.batch_size, cfg.grad_accum, cfg.lr, cfg.weight_decay) == (32, 2, 1e-4, 0.0)
    assert (cfg.epochs, cfg.milestones, cfg.gamma, cfg.amp) == (50, (40,), 0.1, "fp16")
    assert cfg.loss == LossWeights(1.0, 1.0, 1.0, 10.0, 0.1)
    small = TrainConfig.preset_config("tiny")
    assert small.network.backbone == "hrnet_w18_small" and small.network.input_size == 128
    assert small.batch_size == 8 and 100 <= small.max_steps <= 1000


def test_yaml_config_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("preset: paper\nlr: 1e-3\nmilestones: [10, 20]\nvariant: baseline\n")
    cfg = resolve_config(None, path, {"variant": "segm_loss", "max_steps": None})
    assert cfg.preset == "paper" and cfg.lr == 1e-3 and cfg.milestones == (10, 20)
    assert cfg.network.variant == "segm_loss" and cfg.batch_size == 32
    path.write_text("lr: 1e-3\nlearning_rate: 2\n")
    with pytest.raises(DigitError) as err:
        resolve_config(None, path, {})
    assert str(err.value) == f"{path}: unknown key 'learning_rate'"
    path.write_text("amp: half\n")
    with pytest.raises(DigitError, match="amp: expected one of"):
        resolve_config(None, path, {})


# ---- command line -------------------------------------------------------------------------------


def _cli(*args, env=None):
    code = "from cli.train_app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )


def test_cli_help_and_one_line_errors(tmp_path):
    result = _cli("--help")
    assert result.returncode == 0
    for option in ("--config", "--preset", "--variant", "--data-root", "--masks", "--resume"):
        assert option in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nbogus: 1\n")
    result = _cli("--config", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip() == f"digit-train: error: {bad}: unknown key 'bogus'"
    result = _cli("--data-root", str(tmp_path / "missing"), "--out", str(tmp_path / "r"))
    assert result.returncode == 1 and "Traceback" not in result.stderr


@pytest.mark.integration
def test_cli_trains_on_the_synthetic_dataset(tmp_path, synthetic_root, mask_cache_train):
    pytest.importorskip("digit.data.dataset")
    out = tmp_path / "run"
    small = tmp_path / "small.yaml"  # the tiny preset, made smaller still for 2 shared cores
    small.write_text("input_size: 64\nbatch_size: 2\nnum_workers: 0\nval_limit: 4\n")
    args = ("--preset", "tiny", "--config", str(small), "--data-root", str(synthetic_root))
    args += ("--out", str(out), "--masks", str(mask_cache_train.parent))
    result = _cli(*args, "--max-steps", "3")
    assert result.returncode == 0, result.stderr
    records = read_metrics(out)
    assert [r["step"] for r in records if r["kind"] == "train"] == [3]  # log_every 10: last
    val = [r for r in records if r["kind"] == "val"]
    assert len(val) == 1 and val[0]["counts"]["images"] == 4
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 3
    result = _cli("--out", str(out), "--max-steps", "4", "--resume")  # reads out/config.yaml
    assert result.returncode == 0, result.stderr
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 4


# ---- schedule and time limit -------------------------------------------------------------------


def test_learning_rate_schedules_by_hand():
    from digit.train.schedule import learning_rate, run_progress

    assert learning_rate(1.0, "step", 0, 0, 0.0, milestones=(2, 4), gamma=0.5) == 1.0
    assert learning_rate(1.0, "step", 9, 2, 0.0, milestones=(2, 4), gamma=0.5) == 0.5
    assert learning_rate(1.0, "step", 9, 5, 0.0, milestones=(2, 4), gamma=0.5) == 0.25
    assert learning_rate(2.0, "cosine", 5, 0, 0.0) == 2.0
    assert learning_rate(2.0, "cosine", 5, 0, 0.5, min_lr_ratio=0.1) == pytest.approx(1.1)
    assert learning_rate(2.0, "cosine", 5, 0, 1.0, min_lr_ratio=0.1) == pytest.approx(0.2)
    assert learning_rate(2.0, "cosine", 1, 0, 0.0, warmup_steps=4) == pytest.approx(1.0)
    assert run_progress(10, 100, 30.0, 60.0) == 0.5  # time runs out first
    assert run_progress(90, 100, 30.0, 60.0) == 0.9
    assert run_progress(10, 100, 30.0, None) == 0.1


def test_time_limit_stops_within_one_step_and_keeps_a_valid_best(tmp_path):
    limit_min = 0.05  # 3 s of training
    cfg = tiny(tmp_path, max_steps=10_000, time_limit=limit_min, eval_every=10_000)
    result = run(cfg, FakeSet(8), val=FakeSet(4))
    assert result.stopped_by == "time" and 1 <= result.step < 10_000
    train_records = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    seconds = [r["seconds"] for r in train_records]
    assert all(s < limit_min * 60 for s in seconds[:-1]) and seconds[-1] >= limit_min * 60
    assert [r["step"] for r in read_metrics(tmp_path / "run") if r["kind"] == "val"] == [
        result.step
    ]
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["step"] == result.step and best["provenance"]["input_size"] == SIZE
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert last["step"] == result.step and last["train_seconds"] >= limit_min * 60


def test_validation_and_digit_eval_agree_at_a_non_default_size(
    tmp_path, synthetic_root, mask_cache_train
):
    """Trained at 64 px, the checkpoint records its size: validation inside training and
    digit-eval afterwards run the same network on the same crops and give the same numbers."""
    from digit.evaluate import run_evaluation

    cfg = TrainConfig.preset_config("tiny").updated(
        dict(
            out=str(tmp_path / "run"), input_size=64, batch_size=2, num_workers=0, max_steps=2,
            val_limit=6, eval_every=2, log_every=1, amp="off", device="cpu",
            data_root=str(synthetic_root), masks=str(mask_cache_train.parent),
        )
    )  # fmt: skip
    train(cfg, show_progress=False)
    val = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "val"][-1]
    best = tmp_path / "run" / "best.pt"
    assert torch.load(best, weights_only=True)["network_config"]["input_size"] == 64
    result = run_evaluation(best, "val", synthetic_root, limit=6, out=tmp_path / "eval")
    got = result.summary()
    for key in ("mpjpe_sh", "mpjpe_ih", "mpjpe_all", "mrrpe", "handedness_acc"):
        if val[key] is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(val[key], rel=1e-6), key


def test_backbone_rate_scale_gives_the_backbone_its_own_rate(tmp_path):
    """backbone_lr_scale 0.1: two Adam groups, the backbone's parameters (and only they) in the
    first, whose rate is 0.1 x the schedule's at every step; scale 1 keeps one group."""
    from digit.model import DigitNet
    from digit.train.loop import parameter_groups

    cfg = tiny(tmp_path, max_steps=2, lr=1e-3, backbone_lr_scale=0.1, warmup_steps=0)
    run(cfg, FakeSet(4))
    groups = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["optimizer"][
        "param_groups"
    ]
    assert [g["lr_scale"] for g in groups] == [0.1, 1.0]
    assert groups[0]["lr"] == pytest.approx(0.1 * groups[1]["lr"])
    assert groups[1]["lr"] == pytest.approx(1e-3)  # step schedule, epoch 0

    net = DigitNet(cfg.network, init_backbone=False)
    names = {id(p): n for n, p in net.named_parameters()}
    backbone, rest = (g["params"] for g in parameter_groups(net, 0.1))
    assert all(names[id(p)].startswith("backbone.") for p in backbone)
    assert not any(names[id(p)].startswith("backbone.") for p in rest)
    assert len(backbone) + len(rest) == len(names)
    assert len(parameter_groups(net, 1.0)) == 1


def test_augment_rotation_reaches_the_training_set_and_is_checked(
    tmp_path, synthetic_root, mask_cache_train
):
    """augment_rotation sets the rotation factor of the training set's augmentation (45 as
    released); a negative or non-finite value is one error naming the key."""
    from digit.train.loop import DataPaths, default_datasets

    cfg = tiny(tmp_path, augment_rotation=10.0, data_root=str(synthetic_root))
    paths = DataPaths(synthetic_root, mask_cache_train, synthetic_root / "none.h5")
    train_set, _ = default_datasets(cfg, paths)
    assert train_set.augment.rot_factor_deg == 10.0 and train_set.augment.flip_prob == 0.5
    for bad in (-1.0, float("nan")):
        with pytest.raises(DigitError, match="augment_rotation: expected a finite number >= 0"):
            tiny(tmp_path, augment_rotation=bad)


def test_box_jitter_keys_move_the_training_crops_and_zero_turns_them_off(
    tmp_path, synthetic_root, mask_cache_train
):
    """augment_shift / augment_scale are the box jitter of the training crops: at 0 (and no
    rotation) an unflipped training crop is the evaluation crop of the same image, to the last
    bit; at the released 0.15 / 0.25 they are not. A negative value is one error naming the key."""
    from digit.data.dataset import InterHandDataset
    from digit.train.loop import DataPaths, default_datasets

    paths = DataPaths(synthetic_root, mask_cache_train, synthetic_root / "none.h5")
    size = tiny(tmp_path).network.input_size
    plain = InterHandDataset(
        synthetic_root, "train", mask_cache_train, train=False, input_size=size
    )

    def affines(**keys):
        cfg = tiny(tmp_path, data_root=str(synthetic_root), augment_rotation=0.0, **keys)
        train_set, _ = default_datasets(cfg, paths)
        items = [train_set[i] for i in range(12)]
        return [(int(it["index"]), it["crop_affine"]) for it in items if not it["flip"]]

    still = affines(augment_shift=0.0, augment_scale=0.0)
    moved = affines()
    assert len(still) >= 3 and len(moved) >= 3
    for i, affine in still:
        assert torch.equal(affine, plain[i]["crop_affine"])
    assert any(not torch.allclose(a, plain[i]["crop_affine"]) for i, a in moved)
    for key in ("augment_shift", "augment_scale"):
        with pytest.raises(DigitError, match=f"{key}: expected a finite number >= 0"):
            tiny(tmp_path, **{key: -0.1})
