"""The released checkpoint's key mapping: every key lands where its name says, the segmentation
channels are reordered from DIGIT's part order to MANO's (reference/mano.md), and saving back
to the released naming round-trips exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.errors import DigitError
from digit.model import DigitNet, NetworkConfig
from digit.official import (
    PREFIX,
    load_official_checkpoint,
    load_official_state_dict,
    to_official_state_dict,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
KEYS_JSON = SHARED / "reference" / "digit_official_state_dict.json"

# reference/mano.md: DIGIT's per-vertex JSON value -> MANO joint, typed from the text
DIGIT_VALUE_TO_MANO = {
    8: 0, 10: 1, 1: 2, 11: 3, 3: 4, 14: 5, 4: 6, 2: 7,
    13: 8, 6: 9, 0: 10, 15: 11, 5: 12, 7: 13, 9: 14, 12: 15,
}  # fmt: skip
SEGM = "hand_segm.segm_head.segm_net.double_conv."
SEGM_FEAT = "conv_segm_feat.0.weight"


def _our_class(digit_channel: int) -> int:
    """This project's class id for a released-model channel (mano.md, written out)."""
    if digit_channel == 0:
        return 0
    if digit_channel <= 16:
        return 1 + DIGIT_VALUE_TO_MANO[digit_channel - 1]
    return 17 + DIGIT_VALUE_TO_MANO[digit_channel - 17]


# ours[OURS_FROM[d]] == official[d]; as an index: ours == official[DIGIT_OF]
OURS_FROM = [_our_class(d) for d in range(33)]
DIGIT_OF = [OURS_FROM.index(c) for c in range(33)]


def _json_spec() -> dict:
    if not KEYS_JSON.exists():
        pytest.skip(f"{KEYS_JSON} absent (the shared reference folder is not beside this clone)")
    return json.loads(KEYS_JSON.read_text())


def _distinct_state(spec: dict) -> dict[str, torch.Tensor]:
    """The official keys and shapes, each tensor filled from its own seed."""
    state = {}
    for i, (key, shape) in enumerate(spec["keys"]):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000 + i, dtype=torch.long)
        else:
            gen = torch.Generator().manual_seed(i)
            state[key] = torch.randn(shape, generator=gen) + i  # + i: no two keys alike
    return state


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    return _distinct_state(_json_spec())


@pytest.fixture(scope="module")
def loaded(official_state) -> DigitNet:
    return load_official_state_dict(official_state)


def test_network_names_and_shapes_are_the_released_ones():
    """Key for key, in order, the network's state dict is the released one under PREFIX."""
    spec = _json_spec()
    assert spec["prefix_in_checkpoint"] == PREFIX
    state = DigitNet(NetworkConfig(), init_backbone=False).state_dict()
    assert len(state) == spec["count"] == len(spec["keys"])
    assert [(PREFIX + k, list(v.shape)) for k, v in state.items()] == [
        (k, list(s)) for k, s in spec["keys"]
    ]


def test_every_key_lands_where_its_name_says(official_state, loaded):
    assert not loaded.training
    ours = loaded.state_dict()
    permuted = {SEGM + s for s in ("0.weight", "0.bias", "1.weight", "1.bias")}
    permuted |= {SEGM + s for s in ("1.running_mean", "1.running_var", "3.weight", "3.bias")}
    permuted.add(SEGM_FEAT)
    for key, value in official_state.items():
        name = key.removeprefix(PREFIX)
        if name not in permuted:
            assert torch.equal(ours[name], value), name
    # a few through the module tree, not the state dict
    off = official_state
    assert torch.equal(loaded.conv_hm.weight, off[PREFIX + "conv_hm.weight"])
    assert torch.equal(loaded.hand_fc[2].bias, off[PREFIX + "hand_fc.2.bias"])
    assert torch.equal(
        loaded.backbone.stage4[2].fuse_layers[0][3][1].running_var,
        off[PREFIX + "backbone.stage4.2.fuse_layers.0.3.1.running_var"],
    )
    assert torch.equal(
        loaded.merge_layer.down3.maxpool_conv[1].double_conv[4].weight,
        off[PREFIX + "merge_layer.down3.maxpool_conv.1.double_conv.4.weight"],
    )
    up1 = loaded.hand_segm["segm_head"].upsampler["up1"].conv.double_conv
    assert torch.equal(
        up1[3].weight, off[PREFIX + "hand_segm.segm_head.upsampler.up1.conv.double_conv.3.weight"]
    )
    assert loaded.backbone.bn1.num_batches_tracked.item() == 1000 + 5


def test_segmentation_channels_are_reordered(official_state, loaded):
    off = {k.removeprefix(PREFIX): v for k, v in official_state.items()}
    segm = loaded.hand_segm["segm_head"].segm_net.double_conv
    conv0, bn, conv3 = segm[0], segm[1], segm[3]
    # right index tip: DIGIT value 11 (channel 12) is MANO joint 3 -> our class 4; left: 28 -> 20
    assert torch.equal(conv0.weight[4], off[SEGM + "0.weight"][12])
    assert torch.equal(conv0.weight[20], off[SEGM + "0.weight"][28])
    assert torch.equal(conv3.weight[4, 20], off[SEGM + "3.weight"][12, 28])
    assert torch.equal(loaded.conv_segm_feat[0].weight[:, 4], off[SEGM_FEAT][:, 12])
    assert torch.equal(conv0.weight[0], off[SEGM + "0.weight"][0])  # background stays
    # every channel of every reordered tensor
    for d in range(33):
        c = OURS_FROM[d]
        assert torch.equal(conv0.weight[c], off[SEGM + "0.weight"][d])
        assert torch.equal(conv0.bias[c], off[SEGM + "0.bias"][d])
        for attr in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(getattr(bn, attr)[c], off[SEGM + "1." + attr][d])
        assert torch.equal(conv3.bias[c], off[SEGM + "3.bias"][d])
        assert torch.equal(loaded.conv_segm_feat[0].weight[:, c], off[SEGM_FEAT][:, d])
    assert torch.equal(conv3.weight, off[SEGM + "3.weight"][DIGIT_OF][:, DIGIT_OF])


def test_saving_back_round_trips_exactly(official_state, loaded):
    back = to_official_state_dict(loaded)
    assert list(back) == list(official_state)
    for key, value in official_state.items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value), key


def test_prefixes_are_optional(official_state, loaded):
    for cut in ("model.", PREFIX):
        state = {k.removeprefix(cut): v for k, v in official_state.items()}
        net = load_official_state_dict(state)
        assert torch.equal(net.hand_fc[0].weight, loaded.hand_fc[0].weight)


def test_missing_unexpected_and_misshapen_keys(official_state):
    state = dict(official_state)
    del state[PREFIX + "root_fc.2.bias"]
    state["model.pose_reg.extra.weight"] = torch.zeros(1)
    with pytest.raises(DigitError) as err:
        load_official_state_dict(state)
    msg = str(err.value)
    assert "1 missing keys (root_fc.2.bias)" in msg and "unexpected keys (extra.weight)" in msg
    assert "\n" not in msg
    state = dict(official_state)
    state[PREFIX + "conv_hm.bias"] = torch.zeros(41)
    with pytest.raises(DigitError, match=r"conv_hm\.bias \(41,\) \(expected \(42,\)\)"):
        load_official_state_dict(state)
    with pytest.raises(DigitError, match="not a state dict"):
        load_official_state_dict([1, 2, 3])  # type: ignore[arg-type]


def test_reordering_preserves_the_function():
    """A network saved in the released order and run with those weights as they are (DIGIT's
    channel order) computes the same pose and the same segmentation up to the channel order."""
    torch.manual_seed(0)
    ours = DigitNet(NetworkConfig(), init_backbone=False).eval()
    for m in ours.modules():  # tame random init so values stay in a comparable range
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=(1.0 / m.weight[0].numel()) ** 0.5)
    released = DigitNet(NetworkConfig(), init_backbone=False).eval()
    released.load_state_dict(
        {k.removeprefix(PREFIX): v for k, v in to_official_state_dict(ours).items()}
    )
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = ours(x), released(x)
    assert not torch.equal(a.segm_logits, b.segm_logits)
    assert torch.allclose(a.segm_logits, b.segm_logits[:, DIGIT_OF], rtol=1e-4, atol=1e-4)
    assert torch.allclose(a.joints_uvd, b.joints_uvd, rtol=1e-4, atol=1e-3)
    assert torch.allclose(a.handedness_logits, b.handedness_logits, rtol=1e-4, atol=1e-4)


def test_checkpoint_file(tmp_path, official_state):
    path = tmp_path / "db7cba8c1.pt"
    torch.save(official_state, path)
    net = load_official_checkpoint(path)
    assert not net.training
    assert torch.equal(net.root_fc[2].weight, official_state[PREFIX + "root_fc.2.weight"])


def test_checkpoint_file_errors_are_one_line_naming_the_file(tmp_path, official_state):
    cases = {
        "absent.pt": None,
        "list.pt": [1, 2, 3],
        "short.pt": {k: v for i, (k, v) in enumerate(official_state.items()) if i != 7},
        "garbage.pt": b"\x00not a zip",
    }
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            torch.save(content, path)
        with pytest.raises(DigitError) as err:
            load_official_checkpoint(path)
        msg = str(err.value)
        assert msg.startswith(str(path) + ": ") and "\n" not in msg, msg
