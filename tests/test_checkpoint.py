"""Checkpoint IO: this project's format round-trips; the released format is recognised; bad
files (missing, not a checkpoint, pickled code, wrong keys) are refused with one line."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import DigitError
from digit.checkpoint import load_network, save_checkpoint
from digit.model import DigitNet, NetworkConfig
from digit.official import to_official_state_dict


def _tiny_net(seed: int = 0, **overrides) -> DigitNet:
    torch.manual_seed(seed)
    net = DigitNet(NetworkConfig.preset("tiny", **overrides), init_backbone=False)
    # non-default BN statistics, so that buffers are checked too
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.9, 1.1)
    return net.eval()


def _one_line(err: pytest.ExceptionInfo, path) -> str:
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_round_trip_gives_identical_outputs(tmp_path):
    net = _tiny_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    path = tmp_path / "run" / "last.pt"
    config = {"lr": 1e-4, "data": {"root": tmp_path}}  # a Path is stored as a string
    save_checkpoint(path, net, config, optimizer=opt, step=12, epoch=3, metrics={"mpjpe": 9.5})
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["last.pt"]

    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "digit-ckpt" and raw["version"] == 1
    assert raw["network_config"] == dataclasses.asdict(net.config)
    assert raw["config"] == {"lr": 1e-4, "data": {"root": str(tmp_path)}}
    assert raw["optimizer"]["param_groups"][0]["lr"] == 1e-4

    loaded, info = load_network(path)
    assert isinstance(loaded, DigitNet) and not loaded.training
    assert loaded.config == net.config
    assert info["format"] == "digit-ckpt" and info["step"] == 12 and info["epoch"] == 3
    assert info["metrics"] == {"mpjpe": 9.5} and "model" not in info and "optimizer" not in info
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = net(x), loaded(x)
    assert torch.equal(a.joints_uvd, b.joints_uvd)
    assert torch.equal(a.segm_logits, b.segm_logits)
    assert torch.equal(a.handedness_logits, b.handedness_logits)
    assert torch.equal(a.rel_root_depth_mm, b.rel_root_depth_mm)


def test_variant_is_restored(tmp_path):
    net = _tiny_net(variant="baseline")
    save_checkpoint(tmp_path / "b.pt", net)
    loaded, info = load_network(tmp_path / "b.pt")
    assert loaded.config.variant == "baseline" and info["config"] == {}
    assert not hasattr(loaded, "hand_segm")


def test_overwrite_is_atomic(tmp_path, monkeypatch):
    import digit.checkpoint as checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, _tiny_net(0), step=1)
    before = path.read_bytes()

    class HalfWriter(io.FileIO):
        def write(self, data):
            super().write(bytes(data[: len(data) // 2]))
            raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "open", lambda p, mode: HalfWriter(p, "w"), raising=False)
    with pytest.raises(DigitError, match="cannot write"):
        save_checkpoint(path, _tiny_net(1), step=2)
    assert path.read_bytes() == before  # the old checkpoint is untouched, no temp left
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


# A file-size limit makes the kernel refuse the bytes past it (EFBIG), as a disk that fills
# during the write does; there torch.save straight into the file raised "RuntimeError: [enforce
# fail at inline_container.cc:672] . unexpected pos" (CI, 2026-12-07).
_SIZE_LIMITED_SAVE = """
import resource, signal, sys
from core.errors import DigitError
from digit.checkpoint import save_checkpoint
from digit.model import DigitNet, NetworkConfig

net = DigitNet(NetworkConfig.preset("tiny"), init_backbone=False)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
try:
    save_checkpoint(sys.argv[1], net)
except DigitError as exc:
    print(exc)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX only")
def test_a_disk_that_fills_during_the_write_is_one_line(tmp_path):
    path = tmp_path / "last.pt"
    done = subprocess.run(
        [sys.executable, "-c", _SIZE_LIMITED_SAVE, str(path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{path}: cannot write (File too large)\n"
    assert list(tmp_path.iterdir()) == []  # no half-written checkpoint, no temporary file


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_full_disk_is_one_line(tmp_path, monkeypatch):
    # the checkpoint's temporary file is /dev/full, so the bytes meet the kernel's own ENOSPC
    # as on a full disk (on one, torch's zip writer said "unexpected pos", a RuntimeError)
    import digit.checkpoint as checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, _tiny_net(0), step=1)
    before = path.read_bytes()
    real_atomic_path = checkpoint.atomic_path

    @contextlib.contextmanager
    def onto_a_full_disk(target, fsync=False):
        with real_atomic_path(target, fsync):
            yield Path("/dev/full")

    monkeypatch.setattr(checkpoint, "atomic_path", onto_a_full_disk)
    with pytest.raises(DigitError) as err:
        save_checkpoint(path, _tiny_net(1), step=2)
    assert _one_line(err, path).endswith(
        "no space left on the device; free some space and rerun the same command"
    )
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_released_format_is_recognised(tmp_path):
    torch.manual_seed(3)
    paper = DigitNet(NetworkConfig.preset("paper"), init_backbone=False).eval()
    official = to_official_state_dict(paper)
    assert all(k.startswith("model.pose_reg.") for k in official)
    path = tmp_path / "db7cba8c1.pt"
    torch.save(official, path)
    del official
    net, info = load_network(path)
    assert info["format"] == "released" and info["network_config"]["backbone"] == "hrnet_w32"
    assert not net.training
    own = net.state_dict()
    for key, value in paper.state_dict().items():  # channel order restored on load
        assert torch.equal(own[key], value), key


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(DigitError) as err:
        load_network(path)
    assert "not found" in _one_line(err, path)


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello, I am not a checkpoint\n")
    with pytest.raises(DigitError) as err:
        load_network(text)
    _one_line(err, text)

    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(DigitError) as err:
        load_network(tensor)
    assert "not a DIGIT checkpoint" in _one_line(err, tensor)

    odd = tmp_path / "odd.pt"
    torch.save({"epoch": 3, "lr": [0.1]}, odd)
    with pytest.raises(DigitError) as err:
        load_network(odd)
    assert "not a DIGIT checkpoint" in _one_line(err, odd)


def test_wrong_keys_are_refused(tmp_path):
    net = _tiny_net()
    path = tmp_path / "c.pt"
    save_checkpoint(path, net)
    ckpt = torch.load(path, weights_only=True)

    ckpt_missing = dict(ckpt, model={k: v for k, v in ckpt["model"].items() if "hand_fc" not in k})
    torch.save(ckpt_missing, path)
    with pytest.raises(DigitError) as err:
        load_network(path)
    assert "hand_fc" in _one_line(err, path)

    torch.save(dict(ckpt, network_config={**ckpt["network_config"], "variant": "baseline"}), path)
    with pytest.raises(DigitError) as err:
        load_network(path)
    assert "unexpected" in _one_line(err, path)

    torch.save(dict(ckpt, network_config={"variant": "digit", "colour": "red"}), path)
    with pytest.raises(DigitError) as err:
        load_network(path)
    assert "colour" in _one_line(err, path)

    torch.save(dict(ckpt, version=7), path)
    with pytest.raises(DigitError) as err:
        load_network(path)
    assert "version" in _one_line(err, path)

    # a released-looking state dict with a key missing
    torch.save({"model.pose_reg.conv_hm.weight": torch.zeros(42, 544, 1, 1)}, path)
    with pytest.raises(DigitError) as err:
        load_network(path)
    assert "missing keys" in _one_line(err, path)


class _Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_pickled_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    for name, payload in (
        ("plain.pt", _Payload(marker)),
        ("wrapped.pt", {"format": "digit-ckpt", "version": 1, "model": _Payload(marker)}),
    ):
        path = tmp_path / name
        torch.save(payload, path)
        with pytest.raises(DigitError) as err:
            load_network(path)
        _one_line(err, path)
        assert not marker.exists()
    # the payload is real: an unsafe load does run it
    with open(tmp_path / "plain.pt", "rb") as f:
        torch.load(f, weights_only=False)
    assert marker.exists()
    # and a bare pickle (not torch's zip format) is refused too
    marker.unlink()
    bare = tmp_path / "bare.pkl"
    bare.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(DigitError):
        load_network(bare)
    assert not marker.exists()


def test_antialias_is_recorded_and_older_checkpoints_read_as_point_sampled(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, _tiny_net(antialias=True))
    assert load_network(path)[0].config.antialias is True
    # a checkpoint written before the flag existed: its crops were single bilinear samples
    ckpt = torch.load(path, weights_only=True)
    older = {k: v for k, v in ckpt["network_config"].items() if k != "antialias"}
    torch.save(dict(ckpt, network_config=older), path)
    assert load_network(path)[0].config.antialias is False
