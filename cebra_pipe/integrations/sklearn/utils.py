"""Input and state checks under the reference's names (``cebra.integrations.sklearn.utils``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cebra_pipe.sklearn.inputs import as_array, check_neural
from cebra_pipe.solver import resolve_device


def check_device(device: str) -> str:
    """The device string ``device`` resolves to here (``"cuda_if_available"`` becomes
    ``"cuda"`` or ``"cpu"``); ValueError when it is unavailable or unknown."""
    return str(resolve_device(device))


def check_fitted(model: Any) -> bool:
    """Whether a cebra_pipe estimator has been fitted (or loaded)."""
    return hasattr(model, "solver_")


def _check_min_samples(array: np.ndarray, min_samples: int, name: str) -> np.ndarray:
    if len(array) < min_samples:
        raise ValueError(f"{name} has {len(array)} sample(s) while a minimum of "
                         f"{min_samples} is required (the model's receptive field).")
    return array


def check_input_array(X: Any, *, min_samples: int) -> np.ndarray:
    """``X`` as a finite ``(time, neurons)`` float32 array with ``>= min_samples`` rows."""
    return _check_min_samples(check_neural(X), min_samples, "X")


def check_label_array(y: Any, *, min_samples: int) -> np.ndarray:
    """``y`` as a numpy array with ``>= min_samples`` rows (torch tensors included)."""
    array = as_array(y.detach().cpu() if isinstance(y, torch.Tensor) else y, "y")
    return _check_min_samples(array, min_samples, "y")


__all__ = ["check_device", "check_fitted", "check_input_array", "check_label_array"]
