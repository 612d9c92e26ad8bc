"""Settings of the DIGIT network: which variant, which backbone, how S' is fed.

Variants (paper Fig. 6, Tables 2 and 7); every one is a real network in which every parameter
receives a gradient from the training losses (so DDP needs no `find_unused_parameters`):

| variant | segmentation head | pose head input |
|---|---|---|
| `baseline` | none | backbone features F (32 ch), no fusion UNet |
| `segm_loss` | 33 classes, auxiliary loss only (+SL) | F (32 ch), no fusion UNet |
| `digit` | 33 classes | fusion UNet on concat(F, S') (544 ch), the released model |
| `segm_only` | 33 classes | fusion UNet on S' alone (512 ch) |
| `class_labels` | 33 classes | like `digit`, S' from the one-hot argmax of S (detached) |
| `lr_segm` | 3 classes (background, right, left) | like `digit` with 3-class S' |

SF* (segmentation features without segmentation supervision) is `digit` trained with
segmentation loss weight 0; it needs no separate network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.errors import DigitError
from digit.model.pretrained import is_package_spec, packaged_weights

VARIANTS: tuple[str, ...] = (
    "baseline",
    "segm_loss",
    "digit",
    "segm_only",
    "class_labels",
    "lr_segm",
)
SEMANTIC_INPUTS: tuple[str, ...] = ("logits", "probs")
# "global": (right, left) presence from the global head, as released; "hand_frame": two hands or
# one from the global head, which one from each hand's own frame (`digit.model.hand_frame`)
HANDEDNESS: tuple[str, ...] = ("global", "hand_frame")

# The network half of each preset (the training half is `digit.train.config.TRAIN_PRESETS`):
# `paper` is the released architecture at 256 px; `tiny` a small HRNet (same family, ~1.2 M
# backbone parameters after pruning) at 128 px for CPU tests and smoke runs; `cpu` the
# ImageNet-pretrained EfficientNet-Lite0 with its fusion neck at 64 px and quarter-width heads,
# the recipe that learns on a laptop-class CPU in minutes (`make demo`).
NETWORK_PRESETS: dict[str, dict[str, object]] = {
    "paper": {"backbone": "hrnet_w32", "input_size": 256},
    "tiny": {"backbone": "hrnet_w18_small", "input_size": 128},
    "cpu": {
        "backbone": "efficientnet_lite0_fpn",
        "backbone_weights": "package:efficientnet-lite0",
        # 96 px: with the quarter-width heads a training step costs ~1.8x that of 64 px on 2
        # cores, and far-apart interacting hands, small in a crop that holds both, need the
        # pixels: 1,200 steps at 96 px beat 1,600 at 64 (BENCHMARKS.md, "96 px crops")
        "input_size": 96,
        # the hand-sized layers after the backbone cost ~80 % of a step at 64 px: at 0.25 a
        # step takes ~0.65 s instead of ~1.7 s, and 600 steps reach val MPJPE 69 mm in 6.5 min
        # (the full-width network needs ~17 min for as many steps; BENCHMARKS.md); half width
        # learned slower within the demo's steps (val 62.4 against 56.8 mm at step 900)
        "head_width": 0.25,
        # a small crop's pixel spans 2-4 image pixels: averaging them instead of picking one
        # (aliasing) took the 1,600-step demo at 64 px from 54.8 to 51.1 mm on the test split
        "antialias": True,
        # which hand: asked in each hand's own frame, and "one or two" by a head of its own;
        # the release's global head called every demo image "both" (BENCHMARKS.md)
        "handedness": "hand_frame",
        # BatchNorm in the global head: without it the trunk died within the demo's steps
        "global_norm": True,
        # S' from the part probabilities (the paper's text), the part head learning from its
        # own loss alone: 2.5 mm better than the release's coupling at the demo's recipe (3 seeds)
        "semantic_input": "probs",
        "semantic_detach": True,
    },
}
INPUT_MULTIPLE = 32  # HRNet's lowest branch and the UNet / global head pool down to H / 32

FEATURE_CHANNELS = 32  # F: backbone features at stride 4
FEATURE_STRIDE = 4  # crop pixel = heatmap unit x 4
SEMANTIC_CHANNELS = 512  # S'
ROOT_BINS = 64  # relative root depth bins
DEPTH_HALF_RANGE_MM = 200.0  # heatmap depth and root bins span +-200 mm (bbox_3d_size 400)
DEPTH_UNITS = 64  # heatmap depth axis resolution: z in 0..64 maps to -200..200 mm


def scaled_width(channels: int, width: float) -> int:
    """A released layer width x `width`, rounded, at least 8 channels."""
    return max(8, round(channels * width))


@dataclass(frozen=True)
class NetworkConfig:
    """Network settings.

    variant: one of `VARIANTS` (see the module docstring).
    backbone: timm model name. `hrnet_w32` is the paper's pose HRNet-W32 (features at stride 4
        with 32 channels); `efficientnet_liteN_fpn` (N = 0, 1, 2) is timm's
        `tf_efficientnet_liteN` with a neck fusing strides 4-32 into 32 stride-4 channels
        (`digit.model.lite_fpn`); any other timm `features_only` model is tapped at its stride-4
        feature map and brought to 32 channels by a 1x1 conv + BN + ReLU adapter.
    backbone_weights: None (random init, with a one-line warning), "timm" (timm's pretrained
        weights, downloaded from its hub: only when asked), "package:NAME" (ImageNet weights
        inside an installed pip package, e.g. `package:efficientnet-lite0` for
        `efficientnet_lite0_fpn`; see `digit.model.pretrained`), or a local file path (timm key
        names, or the HRNet pose repository's `hrnet_w32-36af842e.pth`).
    semantic_input: "logits" (released model: S' is computed from the raw logits S) or "probs"
        (paper text: from softmax(S)). Ignored by `class_labels` and by variants without S'.
    input_size: side of the square input crop in pixels, a multiple of 32 (256 in the paper;
        segmentation at input_size / 2). Checkpoints record it; every consumer uses it.
    head_width: width multiplier in (0, 1] of the layers after the backbone that the release
        sizes by hand: S' (512 channels), the fusion UNet (64-128-256-256), the global head
        (64..512) and its MLPs (512 hidden). 1.0 is the released network; the `cpu` preset uses
        0.25, because at small inputs these layers, not the backbone, cost most of a step.
    antialias: how the input crop is sampled from the image (`digit.data.crop.warp_image`).
        False: one bilinear sample per pixel, as released (cv2.warpAffine); True: the mean of
        k x k bilinear samples over each pixel's square, k = the image pixels a crop pixel
        spans (`supersample_factor`), so that a crop smaller than the hand in the image does
        not alias (at 256 px most InterHand2.6M crops enlarge: k = 1, nothing changes).
        Checkpoints record it; training, evaluation and the demo crop alike.
    handedness: "global" (the release: the global head's two presence logits) or
        "hand_frame" (a small head on the backbone features says two hands or one; another,
        on the features resampled in each hand slot's frame from its predicted 2D joints,
        says which; on two-hand images slot 0 is trained on the hand further left in the crop
        and, outside training, the branch assigns the slots: `digit.model.hand_frame`). The output
        contract (`handedness_logits`, right slot 0..20, left 21..41) is the same.
    global_norm: BatchNorm after each conv of the global head (`digit.model.heads.global_head`;
        the release has none). Without it the `cpu` recipe's global head died within its
        1,200 steps: root depth and handedness were constants.
    semantic_detach: S' reads S without passing gradients back into the part head, which then
        learns from the segmentation loss alone (the release trains it end to end: the pose
        losses reach it through S'). Ignored by variants without S'; `class_labels` is
        detached by construction.
    """

    variant: str = "digit"
    backbone: str = "hrnet_w32"
    backbone_weights: str | None = None
    semantic_input: str = "logits"
    input_size: int = 256
    head_width: float = 1.0
    antialias: bool = False
    handedness: str = "global"
    global_norm: bool = False
    semantic_detach: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise DigitError(f"--variant: unknown variant {self.variant!r}; one of {VARIANTS}")
        if self.semantic_input not in SEMANTIC_INPUTS:
            raise DigitError(
                f"semantic_input: unknown value {self.semantic_input!r}; one of {SEMANTIC_INPUTS}"
            )
        if not isinstance(self.backbone, str) or not self.backbone:
            raise DigitError(f"--backbone: expected a timm model name, got {self.backbone!r}")
        if is_package_spec(self.backbone_weights):
            packaged_weights(self.backbone_weights)  # an unknown name fails here, before any work
        size = self.input_size
        if not isinstance(size, int) or isinstance(size, bool) or size < 32 or size % 32:
            raise DigitError(f"input_size: expected a multiple of {INPUT_MULTIPLE}, got {size!r}")
        width = self.head_width
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
            raise DigitError(f"head_width: expected a number in (0, 1], got {width!r}")
        if not isinstance(self.antialias, bool):
            raise DigitError(f"antialias: expected true or false, got {self.antialias!r}")
        if not isinstance(self.global_norm, bool):
            raise DigitError(f"global_norm: expected true or false, got {self.global_norm!r}")
        if not isinstance(self.semantic_detach, bool):
            raise DigitError(
                f"semantic_detach: expected true or false, got {self.semantic_detach!r}"
            )
        if self.handedness not in HANDEDNESS:
            raise DigitError(f"handedness: unknown value {self.handedness!r}; one of {HANDEDNESS}")

    def width(self, channels: int) -> int:
        """A released layer width scaled by `head_width` (`scaled_width`)."""
        return scaled_width(channels, self.head_width)

    @property
    def semantic_channels(self) -> int:
        """Channels of S' (512 in the release)."""
        return self.width(SEMANTIC_CHANNELS)

    @property
    def num_classes(self) -> int:
        """Segmentation classes: 3 for `lr_segm`, 33 otherwise (unused by `baseline`)."""
        return 3 if self.variant == "lr_segm" else 33

    @property
    def has_segmentation(self) -> bool:
        """Whether the network predicts `segm_logits` (every variant but `baseline`)."""
        return self.variant != "baseline"

    @property
    def uses_semantic_features(self) -> bool:
        """Whether the pose head sees S' (through the fusion UNet)."""
        return self.variant in ("digit", "segm_only", "class_labels", "lr_segm")

    @property
    def pose_channels(self) -> int:
        """Channels of the tensor the heatmap/depth convs and the global head read."""
        if self.variant in ("baseline", "segm_loss"):
            return FEATURE_CHANNELS
        if self.variant == "segm_only":
            return self.semantic_channels
        return FEATURE_CHANNELS + self.semantic_channels

    @classmethod
    def preset(cls, name: str, **overrides: object) -> NetworkConfig:
        """The network of preset `name` (`NETWORK_PRESETS`), with field overrides."""
        if name not in NETWORK_PRESETS:
            raise DigitError(
                f"--preset: unknown preset {name!r} (choose {' | '.join(NETWORK_PRESETS)})"
            )
        return replace(cls(**NETWORK_PRESETS[name]), **overrides)
