"""Training DIGIT: settings (`TrainConfig`) and the loop (`train`)."""

from digit.train.config import TrainConfig, load_yaml, resolve_config, write_yaml
from digit.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "load_yaml", "resolve_config", "train", "write_yaml"]
