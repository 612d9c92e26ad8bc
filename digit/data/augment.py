"""Random training augmentation of InterHand2.6M / DIGIT: the parameters and the colour gain.

Official values (`reference/interhand26m.md`, "Official training-time processing"): centre
shift U(-0.15, 0.15) x box size per axis; scale 1 + clip(N(0, 1), -1, 1) x 0.25; rotation
clip(N(0, 1), -2, 2) x 45 deg with probability 0.6, else 0; horizontal flip with probability
0.5; per-channel colour gain U(0.8, 1.2), applied to the warped 0..255 image and clipped to
0..255 before the division by 255.

Draws come from a numpy Generator seeded by (seed, epoch, index), so a sample's augmentation
depends on nothing else (not on the worker that loads it, nor on the order of loading).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random augmentation (training only; `enabled=False` turns it all off).

    shift: max centre shift, fraction of the box size (per axis, uniform).
    scale_factor: scale = 1 + clip(N(0, 1), -1, 1) x scale_factor (> 1 zooms out).
    rot_factor_deg: rotation = clip(N(0, 1), -2, 2) x rot_factor_deg, degrees, drawn with
        probability rot_prob (else 0).
    flip_prob: probability of a horizontal flip.
    color_gain: (low, high) of the per-channel uniform gain.
    """

    enabled: bool = True
    shift: float = 0.15
    scale_factor: float = 0.25
    rot_factor_deg: float = 45.0
    rot_prob: float = 0.6
    flip_prob: float = 0.5
    color_gain: tuple[float, float] = (0.8, 1.2)


@dataclass(frozen=True)
class AugmentParams:
    """One sample's drawn augmentation.

    shift: (tx, ty) fractions of the box's (w, h); scale: box extent multiplier; rot_deg:
    degrees (`digit.data.crop.crop_transform`'s convention); flip: mirror horizontally;
    gain: (3,) float per-channel colour gain (R, G, B).
    """

    shift: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    rot_deg: float = 0.0
    flip: bool = False
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)


NO_AUGMENT = AugmentParams()


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The Generator of sample `index` in `epoch` of a run seeded `seed` (all ints >= 0)."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def draw_augment(settings: AugmentSettings, rng: np.random.Generator) -> AugmentParams:
    """Draw one sample's parameters. Every value is always drawn, in a fixed order, so changing
    one range (e.g. flip_prob) leaves the other draws of the same sample unchanged."""
    if not settings.enabled:
        return NO_AUGMENT
    shift = rng.uniform(-settings.shift, settings.shift, size=2)
    scale = 1.0 + float(np.clip(rng.standard_normal(), -1.0, 1.0)) * settings.scale_factor
    rot = float(np.clip(rng.standard_normal(), -2.0, 2.0)) * settings.rot_factor_deg
    do_rot = rng.random() < settings.rot_prob
    flip = rng.random() < settings.flip_prob
    low, high = settings.color_gain
    gain = rng.uniform(low, high, size=3)
    return AugmentParams(
        shift=(float(shift[0]), float(shift[1])),
        scale=scale,
        rot_deg=rot if do_rot else 0.0,
        flip=bool(flip),
        gain=(float(gain[0]), float(gain[1]), float(gain[2])),
    )


def apply_color_gain(image: torch.Tensor, gain: tuple[float, float, float]) -> torch.Tensor:
    """Per-channel gain of a (3, H, W) or (B, 3, H, W) float image in 0..255, clipped to
    0..255 (the official order: gain, clip, then the caller divides by 255)."""
    g = torch.as_tensor(gain, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * g).clamp_(0.0, 255.0)
