"""Device strings: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` and ``cuda_if_available``."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device for ``device``; a clear error when it is not available here."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, got {type(device).__name__}.")
    if device == "cuda_if_available":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device='mps' was requested but MPS is not available here.")
        return torch.device("mps")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available; "
                             "use device='cuda_if_available' to fall back to the CPU.")
        parsed = torch.device(device)
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA "
                             "device(s) are visible.")
        return parsed
    raise ValueError(f"Unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N', 'mps' or "
                     "'cuda_if_available'.")
