"""Training settings: one frozen dataclass, two presets, YAML files and command-line overrides.

Resolution order (later wins): the preset (`--preset`, else the YAML's `preset` key, else
"tiny"), the YAML file's keys (= field names), then the options given on the command line.
The run folder's `config.yaml` is the resolved config, so `--config RUN/config.yaml` repeats a
run. Batch semantics (nanoGPT's): `batch_size` images per forward pass and process,
`grad_accum` forward passes per optimizer step over all processes together (each of W processes
does grad_accum / W), so one optimizer step always sees batch_size x grad_accum images.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from digit.losses import AVERAGES, LossWeights
from digit.model import VARIANTS, NetworkConfig
from digit.model.config import PRESET_BACKBONES
from render.errors import DigitError

PRESETS: tuple[str, ...] = ("paper", "tiny")
AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
_W = LossWeights()


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (defaults = the `paper` preset).

    Network: preset (the name the run started from), variant (`digit.model.VARIANTS`),
        backbone (timm name), backbone_weights (None | "timm" | "package:NAME" | file),
        semantic_input, input_size (crop side in pixels, a multiple of 32; segmentation at
        input_size / 2).
    Data: data_root (None = the synthetic default), masks (folder with masks_{split}.h5; None =
        <data_root>/masks), augment, train_limit / val_limit (first N images, None = all),
        num_workers.
    Optimisation: batch_size, grad_accum, lr (Adam), weight_decay, epochs, milestones (epochs
        where lr is multiplied by gamma; MultiStepLR stepped per epoch), max_steps (optimizer
        steps; None = epochs x steps per epoch), amp ("auto": bf16 on CUDA where supported, else
        fp16 with GradScaler, off on CPU; "bf16" | "fp16" | "off" as asked), device.
    Loss: loss_average ("valid" | "release", see `digit.losses`), weight_* (LossWeights).
    Run: out (run folder), seed, log_every (steps between metrics.jsonl lines), eval_every
        (steps between validations; 0 = never; a last one runs at the end), save_every (steps
        between last.pt writes; 0 = at validations and the end only).
    """

    preset: str = "paper"
    variant: str = "digit"
    backbone: str = PRESET_BACKBONES["paper"]
    backbone_weights: str | None = None
    semantic_input: str = "logits"
    input_size: int = 256
    data_root: str | None = None
    masks: str | None = None
    augment: bool = True
    train_limit: int | None = None
    val_limit: int | None = None
    num_workers: int = 8
    batch_size: int = 32
    grad_accum: int = 2
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: int = 50
    milestones: tuple[int, ...] = (40,)
    gamma: float = 0.1
    max_steps: int | None = None
    amp: str = "fp16"
    device: str = "auto"
    loss_average: str = "valid"
    weight_joints: float = _W.joints
    weight_root: float = _W.root
    weight_handedness: float = _W.handedness
    weight_segmentation: float = _W.segmentation
    weight_bone: float = _W.bone
    out: str = "runs/digit"
    seed: int = 0
    log_every: int = 50
    eval_every: int = 5000
    save_every: int = 1000

    def __post_init__(self) -> None:
        _check(self, "config")

    # ---- derived settings -------------------------------------------------------------------

    def network_config(self) -> NetworkConfig:
        return NetworkConfig(
            variant=self.variant,
            backbone=self.backbone,
            backbone_weights=self.backbone_weights,
            semantic_input=self.semantic_input,
        )

    def loss_weights(self) -> LossWeights:
        return LossWeights(
            joints=self.weight_joints,
            root=self.weight_root,
            handedness=self.weight_handedness,
            segmentation=self.weight_segmentation,
            bone=self.weight_bone,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready dict of the fields (tuples as lists)."""
        out = {}
        for f in fields():
            value = getattr(self, f)
            out[f] = list(value) if isinstance(value, tuple) else value
        return out

    # ---- construction -----------------------------------------------------------------------

    @classmethod
    def preset_config(cls, name: str) -> TrainConfig:
        """`paper` (the released recipe) or `tiny` (small backbone, 128 px, a few hundred steps:
        CPU smoke runs and the synthetic default)."""
        if name == "paper":
            return cls()
        if name == "tiny":
            return cls(
                preset="tiny",
                backbone=PRESET_BACKBONES["tiny"],
                input_size=128,
                batch_size=8,
                grad_accum=1,
                num_workers=2,
                max_steps=300,
                amp="auto",
                val_limit=64,
                log_every=10,
                eval_every=100,
                save_every=100,
            )
        raise DigitError(f"--preset: unknown preset {name!r} (choose {' or '.join(PRESETS)})")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Preset named by values["preset"] (default tiny) with the other keys on top."""
        base = cls.preset_config(values.get("preset") or "tiny")
        return base.updated(values, source)

    def updated(self, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """This config with `values` (field -> value) replaced; `source` names the file or
        "command line" in errors."""
        known = set(fields())
        for key in values:
            if key not in known:
                raise DigitError(f"{source}: unknown key {key!r}")
        clean = {k: _normalise(k, v) for k, v in values.items()}
        try:
            new = replace(self, **clean)
        except DigitError as exc:
            raise DigitError(f"{source}: {exc}") from None
        return new


def fields() -> tuple[str, ...]:
    """The user-settable field names, in order."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def _normalise(key: str, value: Any) -> Any:
    if key == "milestones" and isinstance(value, list):
        return tuple(value)
    if isinstance(value, Path):
        return str(value)
    if key in _FLOAT and isinstance(value, str):
        # YAML 1.1 reads "1e-4" (no dot) as a string
        with contextlib.suppress(ValueError):
            return float(value)
    return value


_INT = ("input_size", "num_workers", "batch_size", "grad_accum", "epochs", "seed")
_STEPS = ("log_every", "eval_every", "save_every")
_OPT_INT = ("train_limit", "val_limit", "max_steps")
_FLOAT = (
    "lr",
    "weight_decay",
    "gamma",
    "weight_joints",
    "weight_root",
    "weight_handedness",
    "weight_segmentation",
    "weight_bone",
)
_OPT_STR = ("backbone_weights", "data_root", "masks")
_CHOICES = {
    "preset": PRESETS,
    "variant": VARIANTS,
    "amp": AMP_MODES,
    "device": DEVICES,
    "loss_average": AVERAGES,
    "semantic_input": ("logits", "probs"),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(cfg: TrainConfig, where: str) -> None:
    """Types and ranges of every field; one DigitError naming the first bad one."""

    def bad(name: str, expected: str) -> DigitError:
        return DigitError(f"{name}: expected {expected}, got {getattr(cfg, name)!r}")

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
        if not (isinstance(v, (int, float)) and not isinstance(v, bool)) or v < 0:
            raise bad(name, "a number >= 0")
    for name in _OPT_STR:
        v = getattr(cfg, name)
        if v is not None and not isinstance(v, str):
            raise bad(name, "a string or null")
    for name, choices in _CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise bad(name, f"one of {choices}")
    if not isinstance(cfg.backbone, str) or not cfg.backbone:
        raise bad("backbone", "a timm model name")
    if not isinstance(cfg.out, str) or not cfg.out:
        raise bad("out", "a folder path")
    if not isinstance(cfg.augment, bool):
        raise bad("augment", "true or false")
    if cfg.input_size % 32:
        raise bad("input_size", "a multiple of 32")
    ms = cfg.milestones
    if not isinstance(ms, tuple) or not all(_is_int(m) and m >= 1 for m in ms):
        raise bad("milestones", "a list of positive epoch numbers")
    if list(ms) != sorted(ms):
        raise bad("milestones", "increasing epoch numbers")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (keys = TrainConfig field names, checked later)."""
    path = Path(path)
    if not path.is_file():
        raise DigitError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    """Write the resolved config (every field) to `path`."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
