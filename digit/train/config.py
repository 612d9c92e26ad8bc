"""Training settings: one frozen dataclass composed of the network's and the losses' settings,
presets defined once, YAML files with flat keys, and command-line overrides.

Resolution order (later wins): the preset (`--preset`, else the YAML's `preset` key, else
"tiny"), the YAML file's keys, then the options given on the command line. The YAML keys are
flat (`variant`, `backbone`, ..., `input_size` for the network; `weight_joints`, ... for the
losses; the other fields by name), so `config.yaml` files of earlier versions keep working;
the run folder's `config.yaml` is the resolved config, so `--config RUN/config.yaml` repeats a
run. Batch semantics: a config fixes the global batch, batch_size x grad_accum images per
optimizer step over all processes together, whatever their number; `batch_size` is also the
default per-device cap of a forward pass (`max_batch_per_device` overrides it), and the trainer
derives each process's passes and micro-batch from the process count
(`digit.train.batching`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from core.errors import DigitError
from digit.data.augment import AugmentSettings
from digit.losses import AVERAGES, LossWeights
from digit.model import VARIANTS, NetworkConfig
from digit.model.config import NETWORK_PRESETS, SEMANTIC_INPUTS
from digit.train.bad_images import DEFAULT_MAX_BAD_IMAGES, check_max_bad_images

AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
LR_SCHEDULES: tuple[str, ...] = ("step", "cosine")

# The training half of each preset, over TrainConfig's defaults (= the released recipe); the
# network half is `digit.model.config.NETWORK_PRESETS`. `paper` is the release to the letter:
# loss reduced over all elements (`loss_average: release`, the bone term as left-hand mean plus
# right-hand mean), weights 1 / 1 / 1 / 10 / 0.1 and no heatmap term, the official target
# validity (`digit.targets`), 32 images x 2 accumulated passes, Adam 1e-4 without weight decay,
# x0.1 at epoch 40 of 50, fp16 autocast with a loss scaler. Every departure of the other presets
# is listed in `PRESET_DEPARTURES` with its reason (a test holds the two tables together).
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {
        "loss_average": "valid",
        "batch_size": 8,
        "grad_accum": 1,
        "num_workers": 2,
        "max_steps": 300,
        "amp": "auto",
        "val_limit": 64,
        "log_every": 10,
        "eval_every": 100,
        "save_every": 100,
    },
    # Learns in minutes on 2 CPU cores: pretrained backbone, fresh layers at 2.25x its rate with
    # warm-up and a cosine decay over the run, the heatmap term (not the release's: 300 steps
    # reach 64 mm instead of 80, BENCHMARKS.md), no in-plane rotation or box jitter; antialiased
    # 96 px crops are its network's (`NETWORK_PRESETS`); `make demo` runs a fixed step count.
    "cpu": {
        "loss_average": "valid",
        "batch_size": 16,
        "grad_accum": 1,
        "num_workers": 1,
        "lr": 4.5e-3,
        "backbone_lr_scale": 4 / 9,
        "lr_schedule": "cosine",
        "warmup_steps": 20,
        "min_lr_ratio": 0.02,
        "weight_heatmap": 1.0,
        "augment_rotation": 0.0,
        "augment_shift": 0.0,
        "augment_scale": 0.0,
        "epochs": 1000,
        "max_steps": 20_000,
        "amp": "auto",
        "log_every": 20,
        "eval_every": 300,
        "save_every": 250,
    },
}
PRESETS: tuple[str, ...] = tuple(TRAIN_PRESETS)

# Where each preset departs from the release (`paper`), key by key, and why. A test checks that
# this table names exactly the keys whose values differ from paper's.
_CHECKS_ONLY = "bookkeeping for a short run; changes nothing that is computed"
PRESET_DEPARTURES: dict[str, dict[str, str]] = {
    "tiny": {
        "backbone": "a small HRNet of the same family, so CPU tests and smoke runs are quick",
        "input_size": "128 px: a quarter of the paper's pixels",
        "loss_average": "valid elements only: a batch's loss does not shrink with its "
        "number of invalid joints, steadier on batches of 8",
        "batch_size": "8 images fit a smoke run on any machine",
        "grad_accum": "one pass per step",
        "num_workers": "2 loader processes suit a laptop",
        "max_steps": "300 steps: a smoke run, not a schedule",
        "amp": "auto: bf16 on CUDA where supported, off on CPU (fp16 on CPU is slow)",
        "val_limit": "64 validation images keep each validation short",
        "log_every": _CHECKS_ONLY,
        "eval_every": _CHECKS_ONLY,
        "save_every": _CHECKS_ONLY,
    },
    "cpu": {
        "backbone": "EfficientNet-Lite0 with a stride-4 neck: ImageNet weights ship in a pip "
        "package, and it is several times cheaper than HRNet-W32 on a CPU",
        "backbone_weights": "ImageNet-pretrained: minutes of training cannot learn features",
        "input_size": "96 px: 7 x fewer pixels than the release's 256 for a CPU budget; at 64 "
        "px each hand of a far-apart pair is a few pixels wide. 1,200 steps at 96 px reached "
        "46.4 mm test MPJPE where 1,600 at 64 px reached 48.7, in about the same time "
        "(BENCHMARKS.md, '96 px crops')",
        "head_width": "quarter-width S', fusion UNet and global head: at 64 px they, not the "
        "backbone, cost most of a step",
        "antialias": "a 64 px crop pixel spans 2-4 image pixels; their mean instead of one "
        "bilinear sample (the release's, which enlarges at 256 px on InterHand2.6M) took the "
        "1,600-step demo from 54.8 to 51.1 mm test MPJPE (BENCHMARKS.md)",
        "handedness": "hand_frame: which hand from the backbone features resampled in each "
        "hand slot's frame (upright, centred and sized from its predicted 2D joints), one hand "
        "or two from a small head of its own, and on two-hand images slot 0 trained on the hand "
        "further left in the crop, the branch saying which slot is the right hand and which "
        "side a single hand's part classes are (digit.model.hand_frame): the release's "
        "global head called every demo image 'both' "
        "(handedness 0.50, right vs left on single hands 0.50; with the branch 0.92 and 0.93; "
        "BENCHMARKS.md, 'Which hand, in the hand's frame', 'Two slots, one place')",
        "global_norm": "BatchNorm after each conv of the global head: without it the cpu "
        "recipe's trunk died within 1,200 steps (every unit of its fifth conv negative for "
        "every image), so its root depth was one constant",
        "semantic_input": "probs: S' computed from the part probabilities, as the paper's "
        "text describes (the release feeds the raw logits); with semantic_detach the part "
        "head's output is then a distribution, whatever the pose losses would make of it",
        "semantic_detach": "the pose losses do not reach the part head through S': it learns "
        "from the segmentation loss alone. At the demo's recipe the release's coupling cost "
        "the segmentation (mIoU 0.165 against 0.203 for segm_loss) and the pose (47.1 mm "
        "against 44.7 for class_labels and 44.6 for probs detached, 3 seeds each; BENCHMARKS.md, "
        "'The part head on its own loss')",
        "loss_average": "valid elements only: the loss of a batch does not depend on how "
        "many of its joints are invalid",
        "weight_heatmap": "a Gaussian target for each joint's heatmap: soft-argmax alone gives "
        "a broad map a weak pull (300 steps: 64 mm instead of 80)",
        "augment_rotation": "no in-plane rotation (flip and colour as released): "
        "turns of up to 90 degrees make the 64 px task harder than minutes can learn; without "
        "them the 1,600-step demo went from 51.1 to 48.7 mm test MPJPE (antialiased crops) and "
        "from 54.8 to 53.2 (plain ones), and right vs left leaves chance in the probe "
        "(BENCHMARKS.md)",
        "augment_shift": "no box jitter (flip and colour as released): the evaluation crops "
        "are the boxes' own, and within the demo's steps jittered crops teach less: with a "
        "classifier for right vs left alone, box jitter kept it at chance on its own training "
        "crops (BENCHMARKS.md, 'Where the rule is lost'); without it the demo scored "
        "41.4 / 41.3 / 43.5 mm against 42.4 / 43.1 / 42.4 on three seeds (paired -0.72 mm "
        "[-1.18, -0.25], single hands), handedness and mIoU higher on every seed "
        "(BENCHMARKS.md, 'No box jitter')",
        "augment_scale": "no box jitter: see augment_shift",
        "batch_size": "16 images per step: more updates within the budget",
        "grad_accum": "one pass per step",
        "num_workers": "one loader process beside the training process on 2 cores",
        "lr": "4.5e-3 for the fresh layers after the backbone: 64 images are learned to 15 mm in "
        "400 steps at 3e-3 instead of 27 mm in 1,000 at 1e-3 (benchmarks.overfit), and on the "
        "whole default 4.5e-3 beat 3e-3 on three seeds out of three (42.6 +- 0.4 mm against "
        "43.2 +- 0.2; paired -0.68 mm [-1.04, -0.32]); 6e-3 lost again (BENCHMARKS.md)",
        "backbone_lr_scale": "the pretrained backbone at 2e-3 (4/9 of the heads' rate): the "
        "demo underfits, and its features must move to hands; at 1e-3 three seeds scored 44.6 "
        "+- 0.8 mm, at 2e-3 43.2 +- 0.2 (heads at 3e-3), at 3e-3 one seed 44.3 (BENCHMARKS.md)",
        "lr_schedule": "cosine over the run: ends its decay when the run ends, whatever its length",
        "warmup_steps": "20 warm-up steps protect the pretrained features from the first, "
        "large gradients of fresh heads",
        "min_lr_ratio": "the cosine ends at 2 % of the peak rate",
        "epochs": "runs are bounded by max_steps or the time limit instead",
        "max_steps": "a bound; make demo gives the exact number",
        "amp": "auto: off on CPU, where autocast is slower",
        "log_every": _CHECKS_ONLY,
        "eval_every": _CHECKS_ONLY,
        "save_every": _CHECKS_ONLY,
    },
}

# Flat YAML keys of the composed parts: network fields by name, loss weights as weight_<name>.
NETWORK_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(NetworkConfig))
LOSS_KEYS: dict[str, str] = {f"weight_{f.name}": f.name for f in dataclasses.fields(LossWeights)}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (defaults = the `paper` preset).

    preset: the name the run started from. network: `NetworkConfig` (variant, backbone,
        backbone_weights, semantic_input, input_size). loss: `LossWeights`; loss_average
        ("valid" | "release", see `digit.losses`).
    Data: data_root (None = the synthetic default), masks (folder with masks_{split}.h5; None =
        <data_root>/masks), augment, augment_rotation (degrees: a rotated sample turns by
        clip(N(0, 1), -2, 2) x this, 45 as released; `digit.data.augment`), augment_shift (the
        box's centre moves by up to this fraction of its size per axis, 0.15 as released),
        augment_scale (its size x 1 + clip(N(0, 1), -1, 1) x this, 0.25 as released), train_limit /
        val_limit (first N images, None = all), num_workers.
    Optimisation: batch_size x grad_accum = the global batch (images per optimizer step over
        all processes), max_batch_per_device (images per forward pass and process at most;
        None = batch_size; see `digit.train.batching`), lr (Adam), backbone_lr_scale (the
        backbone's rate is lr x this, the other layers' lr), weight_decay, epochs,
        lr_schedule ("step": lr x gamma at each epoch in milestones, the release's MultiStepLR;
        "cosine": from lr down to lr x min_lr_ratio over the run), warmup_steps (linear ramp
        from 0), max_steps (optimizer steps; None = epochs x steps per epoch), time_limit
        (minutes of training; the run then stops cleanly, validates and saves; None = no
        limit; with "cosine" the schedule follows whichever of steps and time runs out first),
        amp ("auto": bf16 on CUDA where supported, else fp16 with GradScaler, off on CPU;
        "bf16" | "fp16" | "off"), device.
    Run: out (run folder), seed, log_every (steps between metrics.jsonl lines), eval_every
        (steps between validations; 0 = never; a last one runs at the end), save_every (steps
        between last.pt writes; 0 = at validations and the end only), max_bad_images (unreadable
        training samples tolerated: a count, or a fraction of the split; `digit.train.bad_images`).
    """

    preset: str = "paper"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    loss_average: str = "release"
    data_root: str | None = None
    masks: str | None = None
    augment: bool = True
    augment_rotation: float = AugmentSettings.rot_factor_deg
    augment_shift: float = AugmentSettings.shift
    augment_scale: float = AugmentSettings.scale_factor
    train_limit: int | None = None
    val_limit: int | None = None
    num_workers: int = 8
    batch_size: int = 32
    grad_accum: int = 2
    max_batch_per_device: int | None = None
    lr: float = 1e-4
    backbone_lr_scale: float = 1.0
    weight_decay: float = 0.0
    epochs: int = 50
    lr_schedule: str = "step"
    milestones: tuple[int, ...] = (40,)
    gamma: float = 0.1
    min_lr_ratio: float = 0.01
    warmup_steps: int = 0
    max_steps: int | None = None
    time_limit: float | None = None
    amp: str = "fp16"
    device: str = "auto"
    out: str = "runs/digit"
    seed: int = 0
    log_every: int = 50
    eval_every: int = 5000
    save_every: int = 1000
    max_bad_images: int | float = DEFAULT_MAX_BAD_IMAGES

    def __post_init__(self) -> None:
        _check(self)

    @property
    def images_per_step(self) -> int:
        """Images one optimizer step sees over all processes."""
        return self.batch_size * self.grad_accum

    def to_dict(self) -> dict[str, Any]:
        """The flat YAML/JSON-ready dict (network and loss fields spelled out, tuples as
        lists), in field order."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "network":
                out.update(dataclasses.asdict(value))
            elif f.name == "loss":
                out.update({key: getattr(value, name) for key, name in LOSS_KEYS.items()})
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    # ---- construction -----------------------------------------------------------------------

    @classmethod
    def preset_config(cls, name: str) -> TrainConfig:
        """Preset `name`: its network (`NETWORK_PRESETS`) and training settings
        (`TRAIN_PRESETS`) over the defaults."""
        if name not in TRAIN_PRESETS or name not in NETWORK_PRESETS:
            raise DigitError(f"--preset: unknown preset {name!r} (choose {' | '.join(PRESETS)})")
        return replace(cls(), preset=name, network=NetworkConfig.preset(name)).updated(
            TRAIN_PRESETS[name], f"preset {name}"
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Preset named by values["preset"] (default tiny) with the other flat keys on top."""
        base = cls.preset_config(values.get("preset") or "tiny")
        return base.updated({k: v for k, v in values.items() if k != "preset"}, source)

    def updated(self, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """This config with flat keys `values` replaced; `source` names the file or "command
        line" in errors."""
        known = set(flat_keys())
        for key in values:
            if key not in known:
                raise DigitError(f"{source}: unknown key {key!r}")
        clean = {k: _normalise(k, v) for k, v in values.items()}
        net = {k: v for k, v in clean.items() if k in NETWORK_KEYS}
        loss = {LOSS_KEYS[k]: v for k, v in clean.items() if k in LOSS_KEYS}
        rest = {k: v for k, v in clean.items() if k not in net and k not in LOSS_KEYS}
        try:
            return replace(
                self,
                network=replace(self.network, **net),
                loss=replace(self.loss, **loss),
                **rest,
            )
        except DigitError as exc:
            raise DigitError(f"{source}: {exc}") from None


def flat_keys() -> tuple[str, ...]:
    """The user-settable YAML keys, in order."""
    return tuple(TrainConfig().to_dict())


def _normalise(key: str, value: Any) -> Any:
    if key == "milestones" and isinstance(value, list):
        return tuple(value)
    if isinstance(value, Path):
        return str(value)
    if (key in _FLOAT or key in LOSS_KEYS or key == "time_limit") and isinstance(value, str):
        # YAML 1.1 reads "1e-4" (no dot) as a string
        with contextlib.suppress(ValueError):
            return float(value)
    return value


_INT = ("num_workers", "batch_size", "grad_accum", "epochs", "seed")
_STEPS = ("log_every", "eval_every", "save_every", "warmup_steps")
_OPT_INT = ("train_limit", "val_limit", "max_steps", "max_batch_per_device")
_FLOAT = (
    "lr",
    "backbone_lr_scale",
    "weight_decay",
    "gamma",
    "min_lr_ratio",
    "augment_rotation",
    "augment_shift",
    "augment_scale",
)
_OPT_STR = ("data_root", "masks")
_CHOICES = {
    "preset": PRESETS,
    "amp": AMP_MODES,
    "device": DEVICES,
    "loss_average": AVERAGES,
    "lr_schedule": LR_SCHEDULES,
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(cfg: TrainConfig) -> None:
    """Types and ranges of every field; one DigitError naming the first bad one. (The network's
    fields are checked by NetworkConfig itself.)"""

    def bad(name: str, expected: str, value: Any = None) -> DigitError:
        value = getattr(cfg, name) if value is None else value
        return DigitError(f"{name}: expected {expected}, got {value!r}")

    for name in _INT:
        v = getattr(cfg, name)
        if not _is_int(v) or v < (0 if name in ("num_workers", "seed") else 1):
            raise bad(name, "a positive integer" if name != "num_workers" else "an integer >= 0")
    for name in _STEPS:
        v = getattr(cfg, name)
        if not _is_int(v) or v < 0:
            raise bad(name, "an integer >= 0")
    for name in _OPT_INT:
        v = getattr(cfg, name)
        if v is not None and (not _is_int(v) or v < 1):
            raise bad(name, "a positive integer or null")
    for name in _FLOAT:
        v = getattr(cfg, name)
        if not _is_number(v) or not 0 <= v < math.inf:  # NaN fails both comparisons
            raise bad(name, "a finite number >= 0")
    for key, name in LOSS_KEYS.items():
        v = getattr(cfg.loss, name)
        if not _is_number(v) or not 0 <= v < math.inf:
            raise DigitError(f"{key}: expected a finite number >= 0, got {v!r}")
    t = cfg.time_limit
    if t is not None and (not _is_number(t) or not t > 0 or t != t):
        raise bad("time_limit", "minutes > 0 or null")
    for name in _OPT_STR:
        v = getattr(cfg, name)
        if v is not None and not isinstance(v, str):
            raise bad(name, "a string or null")
    for name, choices in _CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise bad(name, f"one of {choices}")
    if not isinstance(cfg.network, NetworkConfig):
        raise bad("network", "a NetworkConfig")
    if cfg.network.variant not in VARIANTS or cfg.network.semantic_input not in SEMANTIC_INPUTS:
        raise bad("network", "a valid NetworkConfig")
    if not isinstance(cfg.out, str) or not cfg.out:
        raise bad("out", "a folder path")
    check_max_bad_images(cfg.max_bad_images)
    if not isinstance(cfg.augment, bool):
        raise bad("augment", "true or false")
    ms = cfg.milestones
    if not isinstance(ms, tuple) or not all(_is_int(m) and m >= 1 for m in ms):
        raise bad("milestones", "a list of positive epoch numbers")
    if list(ms) != sorted(ms):
        raise bad("milestones", "increasing epoch numbers")


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"key {key!r} given twice")
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (YAML itself keeps the last one
    silently, so a forgotten earlier `lr: 5` would train with it)."""

    def construct_unique_mapping(self, node: yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            try:
                key = self.construct_object(key_node, deep=True)
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: SafeLoader's own error says it
                continue
            if first != line:
                raise _DuplicateKey(key, first, line)
        return (yield from self.construct_yaml_map(node))


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:map", _UniqueKeyLoader.construct_unique_mapping)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (flat keys, checked later); a key given twice is one
    DigitError line naming the file, the key and both lines."""
    path = Path(path)
    if not path.is_file():
        raise DigitError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # safe
    except _DuplicateKey as exc:
        raise DigitError(
            f"{path}: key {exc.key!r} is given twice (lines {exc.first} and {exc.second}); keep one"
        ) from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise DigitError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DigitError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def resolve_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Preset, then the YAML file, then `overrides` (command-line options that were given;
    None values are ignored)."""
    file_values = load_yaml(config_file) if config_file is not None else {}
    name = preset or file_values.get("preset") or "tiny"
    base = TrainConfig.preset_config(name)
    if file_values:
        file_values = {k: v for k, v in file_values.items() if k != "preset"}
        base = base.updated(file_values, str(config_file))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return base.updated(given, "command line")


def write_yaml(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config (every flat key) to `path`."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
