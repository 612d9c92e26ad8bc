"""The DIGIT network and its ablation variants (see `digit.model.config` for the variants)."""

from __future__ import annotations

import torch
from torch import nn

from core.errors import DigitError
from digit.model.backbone import build_backbone, feature_channels
from digit.model.config import (
    FEATURE_CHANNELS,
    INPUT_MULTIPLE,
    ROOT_BINS,
    NetworkConfig,
)
from digit.model.decode import (
    bin_expectation,
    expected_depth,
    heatmap_depth_to_mm,
    heatmap_to_pixels,
    normalise_heatmaps,
    root_bins_to_mm,
    soft_argmax_2d,
)
from digit.model.hand_frame import HandFrameHandedness, assign_hands, handedness_from_frames
from digit.model.heads import global_head, joint_map_conv, mlp
from digit.model.output import DigitOutput
from digit.model.segmentation import SegmentationHead, semantic_features, semantic_input
from digit.model.unet import FusionUNet


def _adapter(in_ch: int) -> nn.Module:
    """1x1 conv + BN + ReLU bringing another backbone's stride-4 features to 32 channels."""
    if in_ch == FEATURE_CHANNELS:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_ch, FEATURE_CHANNELS, 1, bias=False),
        nn.BatchNorm2d(FEATURE_CHANNELS),
        nn.ReLU(inplace=True),
    )


class DigitNet(nn.Module):
    """Images (B, 3, H, W), RGB in [0, 1] (no mean/std normalisation, as released), H and W
    multiples of 32 (256 x 256 in the paper) -> `DigitOutput`.

    Submodule names match the released checkpoint (`backbone`, `conv_hm`, `conv_depth`,
    `hand_segm.segm_head`, `conv_segm_feat`, `conv_head`, `merge_layer`, `root_fc`, `hand_fc`),
    registered in its order; variants simply lack the modules they do not use.
    `init_backbone=False` skips pretrained weights and the random-init warning (for callers
    that load a whole state dict next).
    """

    def __init__(self, config: NetworkConfig | None = None, init_backbone: bool = True) -> None:
        super().__init__()
        config = config or NetworkConfig()
        self.config = config
        self.backbone = build_backbone(config.backbone, config.backbone_weights, init_backbone)
        self.backbone_adapter = _adapter(feature_channels(self.backbone))
        pose_ch = config.pose_channels
        self.conv_hm = joint_map_conv(pose_ch)
        self.conv_depth = joint_map_conv(pose_ch)
        if config.has_segmentation:
            # nesting kept from the release ("hand_segm.segm_head.*")
            self.hand_segm = nn.ModuleDict({"segm_head": SegmentationHead(config.num_classes)})
        if config.uses_semantic_features:
            self.conv_segm_feat = semantic_features(
                config.num_classes, config.semantic_channels, config.width(64)
            )
        self.conv_head = global_head(pose_ch, config.head_width, config.global_norm)
        if config.uses_semantic_features:
            self.merge_layer = FusionUNet(pose_ch, config.head_width)
        pooled = config.width(512)
        self.root_fc = mlp(ROOT_BINS, pooled, pooled)
        if config.handedness == "hand_frame":  # its own heads replace hand_fc
            self.hand_frame = HandFrameHandedness(FEATURE_CHANNELS)
        else:
            self.hand_fc = mlp(2, pooled, pooled)
        self._semantic_mode = (
            "labels" if config.variant == "class_labels" else config.semantic_input
        )

    def forward(self, images: torch.Tensor) -> DigitOutput:
        if images.ndim != 4 or images.shape[1] != 3:
            raise DigitError(f"images: expected B x 3 x H x W, got {tuple(images.shape)}")
        if images.shape[-1] % INPUT_MULTIPLE or images.shape[-2] % INPUT_MULTIPLE:
            raise DigitError(
                f"images: height and width must be multiples of {INPUT_MULTIPLE}, "
                f"got {tuple(images.shape[-2:])}"
            )
        cfg = self.config
        features = self.backbone_adapter(self.backbone(images)[0])  # F (B, 32, H/4, W/4)
        segm_logits = self.hand_segm["segm_head"](features) if cfg.has_segmentation else None
        if cfg.uses_semantic_features:
            s = semantic_input(segm_logits, self._semantic_mode, cfg.semantic_detach)
            semantic = self.conv_segm_feat(s)
            fused = semantic if cfg.variant == "segm_only" else torch.cat([features, semantic], 1)
            pose_in = self.merge_layer(fused)
        else:
            pose_in = features
        heatmap_logits = self.conv_hm(pose_in)
        depth_maps = self.conv_depth(pose_in)
        pooled = self.conv_head(pose_in).mean(dim=(2, 3))  # (B, 512)
        root_logits = self.root_fc(pooled)

        probs = normalise_heatmaps(heatmap_logits)
        xy = soft_argmax_2d(probs)
        z = expected_depth(probs, depth_maps)
        root_bins = bin_expectation(root_logits)
        chirality = two_hands = None
        if cfg.handedness == "hand_frame":
            two_hands, chirality = self.hand_frame(features, xy, cfg.input_size)
            hand_logits = handedness_from_frames(two_hands, chirality)
        else:
            hand_logits = self.hand_fc(pooled)
        output = DigitOutput(
            joints_uvd=torch.cat([heatmap_to_pixels(xy), heatmap_depth_to_mm(z)[..., None]], -1),
            rel_root_depth_mm=root_bins_to_mm(root_bins),
            handedness_logits=hand_logits,
            segm_logits=segm_logits,
            heatmaps=probs,
            joints_hm=torch.cat([xy, z[..., None]], -1),
            rel_root_depth_bins=root_bins,
            root_depth_logits=root_logits,
            chirality_logits=chirality,
            two_hands_logit=two_hands,
        )
        # hand_frame: the slots are assigned to hands by the branch outside training (in
        # training, slot 0 holds the hand further left on two-hand images; digit.model.hand_frame)
        return output if two_hands is None or self.training else assign_hands(output)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def parameter_breakdown(net: DigitNet) -> dict[str, int]:
    """Parameters per top-level submodule (backbone, conv_hm, ...), plus "total"."""
    counts = {name: count_parameters(m) for name, m in net.named_children()}
    counts["total"] = count_parameters(net)
    return counts
