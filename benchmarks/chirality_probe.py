"""Can the `cpu` network's backbone learn to tell a right hand from a left one?

    python -m benchmarks.chirality_probe [--data-root DIR] [--masks DIR] [--input-size 96]
                                         [--steps 1500] [--every 300] [--augment release]
                                         [--train-images 800] [--val-images N] [--pairs 200]
                                         [--train-pairs N] [--augment cpu] [--no-antialias]
                                         [--canonical rotate|hand]
                                         [--frame-from CHECKPOINT]

A classifier built only for the question: the backbone of the `cpu` preset (ImageNet
EfficientNet-Lite0 and its stride-4 neck, as `digit-train` builds it), a small strided conv head
that keeps the spatial layout until the last pooling, and a linear layer over three classes
(right hand only, left hand only, both). Cross-entropy, AdamW, a cosine schedule over
`--steps` counted steps (so a run's numbers do not depend on the machine's load), the training
split with the release's augmentation (a flip mirrors the picture and swaps the label, so every
right hand is also seen as a left one), the `cpu` preset's (the release's without rotation),
its two halves with flips (`box`: shift and scale; `colour`: the per-channel gain), flips
only, or none. Crops are antialiased as the `cpu` preset's are (`--no-antialias`: one
bilinear sample per pixel, as every run before 2026-12-05 evening). Every `--every` steps,
one JSON line: step, training loss, and the scores on two sets of unaugmented images: training
images spread over every capture ("train_*": can the probe fit what it sees?) and the validation
split (unseen subjects: does it generalise?). Scores: the 3-class accuracy, "two hands or one",
and right vs left on the single-hand images (the larger of the two single-hand logits; chance
0.5); and on `--pairs` mirror pairs (`render.synthetic_data.mirror_pairs`: a right hand and its
depth mirror, a left hand with the same outline, same light and background), how often each
picture is called right, both are, and both get the same answer (what an outline-only
classifier does).

With `--train-pairs N` the probe trains on N mirror pairs instead of the training split (the
question "is the cue in a 64 px picture at all?", with the outline no help): see
`train_on_pairs`. With `--canonical rotate` every crop, trained on and scored, is first turned so
that its hand points up (`upright`, from the annotated wrist and middle-finger base), with
`--canonical hand` also centred on the hand and sized to it: oracles that ask the question
without the in-plane orientation (and without the box's jitter). With `--frame-from
CHECKPOINT` the hand frame comes from that trained network's 2D joints, predicted on each
(augmented) crop as it is, instead of the annotation: the same question with the network's own
localisation error (which hand's joints give the frame, right or left, is still the annotated
hand type's: the geometry is predicted, the slot is not).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.options import Parser, count, positive_float, positive_int, run_main
from core.errors import DigitError
from core.joints import HAND_JOINTS
from core.progress import progress
from digit.data.augment import AugmentSettings
from digit.data.dataset import InterHandDataset, collate, make_loader, set_loader_epoch
from digit.model import DigitNet, NetworkConfig
from digit.model.hand_frame import hand_frame_theta, heatmap_to_grid, resample_in_frame
from render.synthetic_data.default import prepare_data_root

RIGHT_ONLY, LEFT_ONLY, BOTH = 0, 1, 2


def hand_class(hand_type: torch.Tensor) -> torch.Tensor:
    """(B, 2) (right, left) presence bits -> (B,) RIGHT_ONLY / LEFT_ONLY / BOTH."""
    both = hand_type.sum(dim=1) == 2
    return torch.where(both, BOTH, torch.where(hand_type[:, 0] > 0, RIGHT_ONLY, LEFT_ONLY)).long()


class ChiralityProbe(nn.Module):
    """image (B, 3, S, S) RGB in [0, 1] -> logits (B, 3)."""

    def __init__(self, input_size: int):
        super().__init__()
        net = DigitNet(NetworkConfig.preset("cpu", input_size=input_size))
        self.backbone, self.adapter = net.backbone, net.backbone_adapter
        layers: list[nn.Module] = []
        for c_in, c_out in ((32, 64), (64, 128), (128, 128)):
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out)]
            layers.append(nn.ReLU(inplace=True))
        self.head = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 3))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.adapter(self.backbone(image)[0]))


@torch.no_grad()
def scores(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """Validation accuracies (see the module docstring)."""
    model.eval()
    logits = torch.cat([model(x) for x, _ in batches])
    label = torch.cat([y for _, y in batches])
    model.train()
    single = label != BOTH
    right_left = (logits[single, LEFT_ONLY] > logits[single, RIGHT_ONLY]).long()
    return {
        "acc3": round((logits.argmax(1) == label).float().mean().item(), 3),
        "two_or_one": round(((logits.argmax(1) == BOTH) == ~single).float().mean().item(), 3),
        "right_vs_left": round((right_left == label[single]).float().mean().item(), 3),
        "single_images": int(single.sum()),
    }


AUGMENTS = {
    "release": AugmentSettings(),
    # the cpu preset's until 2026-12-07 (the release's, no rotation; the preset has since
    # dropped the box jitter too, which is the "colour" entry below)
    "cpu": AugmentSettings(rot_factor_deg=0.0),
    "flip": AugmentSettings(shift=0.0, scale_factor=0.0, rot_prob=0.0, color_gain=(1.0, 1.0)),
    # the cpu preset's split in two: box jitter (shift, scale) and flips; colour gain and flips
    "box": AugmentSettings(rot_prob=0.0, color_gain=(1.0, 1.0)),
    "colour": AugmentSettings(shift=0.0, scale_factor=0.0, rot_prob=0.0),
    "none": AugmentSettings(enabled=False),
}


CANONICAL = ("none", "rotate", "hand")


def upright(
    image: torch.Tensor,
    joints_hm: torch.Tensor,
    joint_valid: torch.Tensor,
    hand_type: torch.Tensor,
    frame: str = "rotate",
) -> torch.Tensor:
    """Each crop resampled in its hand's frame (`digit.model.hand_frame.hand_frame_theta`, the
    network's own convention), from the given joints: an oracle with the annotated ones, which
    removes the in-plane orientation (and with "hand" the position and size too) from the
    question. The hand: the right one where it is present, else the left. Crops whose wrist or
    middle base is not valid stay as they are; parts outside the input are black.

    image (B, 3, S, S); joints_hm (B, 42, 3) heatmap units (crop pixel / 4, pixel centres at
    integers); joint_valid (B, 42) bool; hand_type (B, 2) (right, left) presence.
    Returns (B, 3, S, S).
    """
    if frame not in CANONICAL[1:]:
        raise ValueError(f"upright: frame {frame!r}, expected one of {CANONICAL[1:]}")
    offset = torch.where(hand_type[:, 0] > 0, 0, HAND_JOINTS)
    own = (torch.arange(len(image))[:, None], offset[:, None] + torch.arange(HAND_JOINTS))
    xy = heatmap_to_grid(joints_hm[own][..., :2], image.shape[-1])  # (B, 21, 2)
    theta, _ = hand_frame_theta(xy, joint_valid[own] & torch.isfinite(xy).all(-1), frame)
    return resample_in_frame(image, theta)


@torch.no_grad()
def predicted_joints(net: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A trained DIGIT network's 2D joints on crops (B, 3, S, S): (joints_hm (B, 42, 3) in the
    targets' heatmap units, valid (B, 42) bool: where they are finite)."""
    joints = net(image).joints_hm.float()
    return joints, torch.isfinite(joints[..., :2]).all(-1)


def batch_pictures(b, canonical: str, frame_net: nn.Module | None = None) -> torch.Tensor:
    """A batch's crops, resampled `upright` in the hand frame `canonical` ("none": as they
    are), from the annotated joints or, with `frame_net`, from its `predicted_joints`."""
    if canonical == "none":
        return b.image
    t = b.targets
    joints, valid = (t.joints_hm, t.joint_valid)
    if frame_net is not None:
        joints, valid = predicted_joints(frame_net, b.image)
    return upright(b.image, joints, valid, t.hand_type, canonical)


def spread_batches(
    dataset: InterHandDataset,
    n: int,
    layout,
    canonical: str = "none",
    frame_net: nn.Module | None = None,
) -> list[tuple]:
    """Up to n images spread evenly over a split (every capture, not the first few), unaugmented,
    as (image, 3-class label) batches of 64 (turned `upright` with `canonical`)."""
    index = np.unique(np.linspace(0, len(dataset) - 1, min(n, len(dataset))).round().astype(int))
    out = []
    for start in range(0, len(index), 64):
        b = collate([dataset[int(i)] for i in index[start : start + 64]])
        x = batch_pictures(b, canonical, frame_net)
        out.append((x.contiguous(memory_format=layout), hand_class(b.targets.hand_type)))
    return out


def pair_batch(
    pairs: list, size: int, antialias: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(right, left) crops (P, 3, S, S) in [0, 1] of mirror pairs, each pair cropped by its
    right hand's processed crop box as the dataset crops an image (no augmentation)."""
    from digit.data.crop import crop_transform, supersample_factor, warp_image

    out = []
    for side in ("right", "left"):
        crops = []
        for p in pairs:
            picture = torch.from_numpy(getattr(p, side)).permute(2, 0, 1)[None].float()
            A = crop_transform(p.crop_box, size)
            k = supersample_factor(A, antialias)
            crops.append(warp_image(picture, A, size, supersample=k)[0])
        out.append(torch.stack(crops).clamp(0, 255) / 255.0)
    return out[0], out[1]


@torch.no_grad()
def pair_scores(model: nn.Module, right: torch.Tensor, left: torch.Tensor, layout) -> dict:
    """Right vs left on mirror pairs: each picture called by the larger of its two single-hand
    logits. An outline-only answer scores both_correct 0 and same_answer 1."""
    model.eval()
    says_left = []
    for x in (right, left):
        logits = model(x.contiguous(memory_format=layout))
        says_left.append(logits[:, LEFT_ONLY] > logits[:, RIGHT_ONLY])
    model.train()
    right_ok, left_ok = ~says_left[0], says_left[1]
    return {
        "pairs": len(right),
        "pair_right_correct": round(right_ok.float().mean().item(), 3),
        "pair_left_correct": round(left_ok.float().mean().item(), 3),
        "pair_both_correct": round((right_ok & left_ok).float().mean().item(), 3),
        "pair_same_answer": round((says_left[0] == says_left[1]).float().mean().item(), 3),
    }


def learning_rate(step: int, steps: int, lr: float) -> float:
    """The probe's rate before optimizer step `step` (0-based) of `steps`: a 20-step linear
    warm-up, then a cosine from lr down to 2 % of it."""
    cosine = 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / steps))
    return lr * min(1.0, (step + 1) / 20) * cosine


def train_probe(args: argparse.Namespace) -> None:
    """Train `args.steps` steps, printing a JSON line of scores every `args.every` steps: on
    `args.train_images` training images seen without augmentation ("train_*") and on the
    validation split (unseen subjects)."""
    torch.manual_seed(args.seed)
    root = prepare_data_root(args.data_root)
    size, layout, aa = args.input_size, torch.channels_last, args.antialias
    augment = AUGMENTS[args.augment]
    crop = {"input_size": size, "antialias": aa}
    train = InterHandDataset(
        root, "train", args.masks, train=True, augment=augment, seed=args.seed, **crop
    )
    train_seen = InterHandDataset(root, "train", None, train=False, **crop)
    # another dataset's validation split when asked: a mirrored training set's own val shares
    # its sampling, so the default's val is the clean test of a rule learnt on it
    val_root = root if args.val_data_root is None else prepare_data_root(args.val_data_root)
    val = InterHandDataset(val_root, "val", None, train=False, limit=args.val_images, **crop)
    frame_net = None
    if args.frame_from is not None:
        from digit.checkpoint import load_network

        frame_net, _ = load_network(args.frame_from)
        if frame_net.config.input_size != size:
            raise DigitError(
                f"{args.frame_from}: a {frame_net.config.input_size} px network; the probe "
                f"crops {size} px (--input-size)"
            )
        frame_net.requires_grad_(False)
    frames = (args.canonical, frame_net)
    train_batches = spread_batches(train_seen, args.train_images, layout, *frames)
    val_batches = spread_batches(val, len(val), layout, *frames)
    pairs = None
    if args.pairs and args.canonical == "none":  # pairs carry no joints to turn them upright
        from render.synthetic_data.mirror_pairs import mirror_pairs

        pairs = pair_batch(mirror_pairs(args.pairs, seed=args.seed), size, aa)
    model = ChiralityProbe(size).to(memory_format=layout)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)

    def report(row: dict) -> None:
        seen = {f"train_{k}": v for k, v in scores(model, train_batches).items()}
        mirror = pair_scores(model, *pairs, layout) if pairs is not None else {}
        print(json.dumps({**row, **seen, **scores(model, val_batches), **mirror}), flush=True)

    report({"step": 0})
    step, epoch = 0, 0
    loader = make_loader(train, args.batch, True, 1)
    with progress(args.steps, "chirality probe (steps)") as bar:
        while step < args.steps:
            set_loader_epoch(loader, epoch)
            epoch += 1
            for b in loader:
                for group in opt.param_groups:
                    group["lr"] = learning_rate(step, args.steps, args.lr)
                x = batch_pictures(b, *frames).contiguous(memory_format=layout)
                loss = nn.functional.cross_entropy(model(x), hand_class(b.targets.hand_type))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.advance(1)
                if step % args.every == 0 or step == args.steps:
                    report({"step": step, "epoch": epoch, "loss": round(loss.item(), 3)})
                if step == args.steps:
                    return


def flip_pictures(
    x: torch.Tensor, y: torch.Tensor, flip: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pictures (B, 3, S, S) with labels (B,) RIGHT_ONLY / LEFT_ONLY; where flip (B,) bool, the
    picture mirrored left-right and the label swapped (a mirror image of a right hand shows a
    left one). Returns new tensors."""
    x, y = x.clone(), y.clone()
    x[flip] = x[flip].flip(-1)
    y[flip] = RIGHT_ONLY + LEFT_ONLY - y[flip]
    return x, y


def train_on_pairs(args: argparse.Namespace) -> None:
    """The cue alone: train on `args.train_pairs` mirror pairs (seed + 1: subjects, poses and
    scenes never in the scored pairs) where right and left differ only by which side of the
    hand faces the camera, each picture flipped left-right with probability 0.5 (a flip turns
    a right hand into a left one: the label follows). Scores every `args.every` steps on the
    first 200 training pairs ("train_*") and on the `args.pairs` held-out pairs."""
    from render.synthetic_data.mirror_pairs import mirror_pairs

    torch.manual_seed(args.seed)
    size, layout = args.input_size, torch.channels_last
    aa = args.antialias
    right, left = pair_batch(mirror_pairs(args.train_pairs, seed=args.seed + 1), size, aa)
    held_out = pair_batch(mirror_pairs(max(args.pairs, 1), seed=args.seed), size, aa)
    images = torch.cat([right, left])
    labels = torch.cat([torch.full((len(right),), RIGHT_ONLY), torch.full((len(left),), LEFT_ONLY)])
    model = ChiralityProbe(size).to(memory_format=layout)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(args.seed)
    seen = (right[:200], left[:200])

    def report(row: dict) -> None:
        train = {f"train_{k}": v for k, v in pair_scores(model, *seen, layout).items()}
        print(json.dumps({**row, **train, **pair_scores(model, *held_out, layout)}), flush=True)

    report({"step": 0, "train_pairs": len(right)})
    with progress(args.steps, "chirality probe on pairs (steps)") as bar:
        for step in range(1, args.steps + 1):
            for group in opt.param_groups:
                group["lr"] = learning_rate(step - 1, args.steps, args.lr)
            pick = torch.randint(len(images), (args.batch,), generator=gen)
            flip = torch.rand(args.batch, generator=gen) < 0.5
            x, y = flip_pictures(images[pick], labels[pick], flip)
            loss = nn.functional.cross_entropy(model(x.contiguous(memory_format=layout)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.advance(1)
            if step % args.every == 0 or step == args.steps:
                report({"step": step, "loss": round(loss.item(), 3)})


def main(argv: list[str] | None = None) -> int:
    ap = Parser(prog="chirality_probe", description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="default: the synthetic default")
    ap.add_argument("--masks", default=None, help="folder with masks_train.h5")
    ap.add_argument(
        "--val-data-root",
        default=None,
        help="score this dataset's val split (default: --data-root)",
    )
    ap.add_argument(
        "--input-size",
        type=positive_int,
        default=NetworkConfig.preset("cpu").input_size,
        help="crop side in pixels (default: the cpu preset's, the demo's input size)",
    )
    ap.add_argument("--steps", type=positive_int, default=1500, help="optimizer steps")
    ap.add_argument("--every", type=positive_int, default=300, help="steps between validations")
    ap.add_argument("--augment", choices=sorted(AUGMENTS), default="release")
    ap.add_argument("--train-images", type=positive_int, default=800, help="training images scored")
    ap.add_argument("--pairs", type=count, default=200, help="mirror pairs scored (0: none)")
    ap.add_argument("--val-images", type=positive_int, default=None, help="default: all")
    ap.add_argument(
        "--train-pairs", type=count, default=0, help="train on this many mirror pairs instead"
    )
    ap.add_argument("--batch", type=positive_int, default=16)
    ap.add_argument("--lr", type=positive_float, default=1e-3)
    ap.add_argument("--seed", type=count, default=0)
    ap.add_argument(
        "--antialias",
        action=argparse.BooleanOptionalAction,
        default=NetworkConfig.preset("cpu").antialias,
        help="crop as the cpu preset does (default) or by one bilinear sample per pixel",
    )
    ap.add_argument(
        "--canonical",
        choices=CANONICAL,
        default="none",
        help="resample every crop in its hand's frame from annotated joints (an oracle, see "
        "`upright`): rotate = turned upright, hand = upright, centred and sized; mirror pairs "
        "are not scored",
    )
    ap.add_argument(
        "--frame-from",
        type=Path,
        default=None,
        help="with --canonical: the hand frame from this trained network's predicted 2D joints "
        "(a digit-train checkpoint at --input-size) instead of the annotation",
    )
    args = ap.parse_args(argv)
    if args.frame_from is not None and args.canonical == "none":
        ap.error("--frame-from: needs --canonical rotate or hand")
    if args.canonical != "none" and args.train_pairs:
        ap.error("--canonical: not with --train-pairs (pairs carry no joints)")
    job = train_on_pairs if args.train_pairs else train_probe
    return run_main("chirality_probe", lambda: job(args), "the lines printed so far stand")


if __name__ == "__main__":
    sys.exit(main())
