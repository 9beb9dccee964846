"""Fitting a model's params: the loop, metrics, progress, the loss plot."""

from .loop import TrainResult, train

__all__ = ["TrainResult", "train"]
