"""Can the `cpu` network's backbone learn to tell a right hand from a left one?

    python -m benchmarks.chirality_probe [--data-root DIR] [--masks DIR] [--input-size 64]
                                         [--minutes 10] [--every 120] [--val-images N]

A classifier built only for the question: the backbone of the `cpu` preset (ImageNet
EfficientNet-Lite0 and its stride-4 neck, as `digit-train` builds it), a small strided conv head
that keeps the spatial layout until the last pooling, and a linear layer over three classes
(right hand only, left hand only, both). Cross-entropy, AdamW, a cosine schedule over the time
budget, the training split with the release's augmentation (a flip mirrors the picture and swaps
the label, so every right hand is also seen as a left one). Every `--every` seconds, one JSON
line: step, seconds, training loss, and on validation images (unseen subjects) the 3-class
accuracy, "two hands or one", and right vs left on the single-hand images (the larger of the two
single-hand logits; chance 0.5).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
from torch import nn

from benchmarks.options import Parser, count, positive_float, positive_int, run_main
from core.progress import progress
from digit.data.dataset import InterHandDataset, make_loader
from digit.model import DigitNet, NetworkConfig
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


def train_probe(args: argparse.Namespace) -> None:
    """Train for `args.minutes`, printing a JSON line of scores every `args.every` seconds."""
    torch.manual_seed(args.seed)
    root = prepare_data_root(args.data_root)
    size, layout = args.input_size, torch.channels_last
    train = InterHandDataset(root, "train", args.masks, train=True, input_size=size, seed=args.seed)
    val = InterHandDataset(root, "val", None, train=False, input_size=size, limit=args.val_images)
    val_batches = [
        (b.image.contiguous(memory_format=layout), hand_class(b.targets.hand_type))
        for b in make_loader(val, 64, False, 0)
    ]
    model = ChiralityProbe(size).to(memory_format=layout)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    print(json.dumps({"step": 0, "seconds": 0, **scores(model, val_batches)}), flush=True)
    budget, step, next_report, shown = args.minutes * 60, 0, args.every, 0
    start = time.monotonic()
    with progress(int(budget), "chirality probe (seconds)") as bar:
        while True:
            for b in make_loader(train, args.batch, True, 1):
                elapsed = time.monotonic() - start
                cosine = 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(elapsed / budget, 1.0)))
                for group in opt.param_groups:
                    group["lr"] = args.lr * min(1.0, (step + 1) / 20) * cosine
                x = b.image.contiguous(memory_format=layout)
                loss = nn.functional.cross_entropy(model(x), hand_class(b.targets.hand_type))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.advance(int(min(elapsed, budget)) - shown)
                shown = int(min(elapsed, budget))
                if elapsed >= next_report or elapsed >= budget:
                    row = {"step": step, "seconds": round(elapsed), "loss": round(loss.item(), 3)}
                    print(json.dumps({**row, **scores(model, val_batches)}), flush=True)
                    next_report += args.every
                    if elapsed >= budget:
                        return


def main(argv: list[str] | None = None) -> int:
    ap = Parser(prog="chirality_probe", description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="default: the synthetic default")
    ap.add_argument("--masks", default=None, help="folder with masks_train.h5")
    ap.add_argument("--input-size", type=positive_int, default=64)
    ap.add_argument("--minutes", type=positive_float, default=10.0)
    ap.add_argument(
        "--every", type=positive_float, default=120.0, help="seconds between validations"
    )
    ap.add_argument("--val-images", type=positive_int, default=None, help="default: all")
    ap.add_argument("--batch", type=positive_int, default=16)
    ap.add_argument("--lr", type=positive_float, default=1e-3)
    ap.add_argument("--seed", type=count, default=0)
    args = ap.parse_args(argv)
    return run_main("chirality_probe", lambda: train_probe(args), "the lines printed so far stand")


if __name__ == "__main__":
    sys.exit(main())
