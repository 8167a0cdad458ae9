"""Dataset registry and the plain containers that registered datasets return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from cebra_pipe.registry import Registry

REGISTRY = Registry("dataset")

#: Upper bound on ``time x neurons`` of one generated recording (2 GB of float32): a
#: typo such as ``duration=1e9`` gets an error instead of filling the memory.
MAX_SYNTHETIC_VALUES = 500_000_000


def check_size(num_timesteps: float, num_neurons: float, name: str) -> None:
    """Refuse a synthetic recording that is not finite or exceeds :data:`MAX_SYNTHETIC_VALUES`.

    Raises
    ------
    ValueError naming the dataset and the sizes.
    """
    if not (np.isfinite(num_timesteps) and np.isfinite(num_neurons)):
        raise ValueError(f"{name}: the recording size must be finite, got {num_timesteps} time "
                         f"steps x {num_neurons} neurons.")
    if float(num_timesteps) * float(num_neurons) > MAX_SYNTHETIC_VALUES:
        raise ValueError(f"{name}: {num_timesteps:.3g} time steps x {num_neurons} neurons "
                         f"exceeds the limit of {MAX_SYNTHETIC_VALUES:,} values per generated "
                         "recording; use a shorter duration or fewer neurons.")


@dataclass
class Recording:
    """One session: neural activity and the labels recorded alongside it.

    Arrays are cast on construction (neural, continuous to float32; discrete to int64)
    and must share their first (time) dimension.

    Parameters
    ----------
    neural : (time, neurons) float32
    continuous : (time, d) float32 or None
        Continuous labels (e.g. position).
    discrete : (time,) int64 or None
        Discrete labels (e.g. running direction).
    latent : (time, k) or None
        The true latent variables a synthetic dataset was generated from.
    name
        Registry name or session name.
    metadata
        Anything else (bin size, generative parameters, units).
    """

    neural: np.ndarray
    continuous: np.ndarray | None = None
    discrete: np.ndarray | None = None
    latent: np.ndarray | None = None
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.neural = _as_2d(self.neural, np.float32, "neural", self.name)
        if self.continuous is not None:
            self.continuous = _as_2d(self.continuous, np.float32, "continuous", self.name)
        if self.latent is not None:
            self.latent = _as_2d(self.latent, None, "latent", self.name)
        if self.discrete is not None:
            discrete = np.asarray(self.discrete)
            if discrete.ndim != 1 or discrete.dtype.kind not in "biu":
                raise ValueError(f"Recording {self.name!r}: discrete must be a 1-D integer array,"
                                 f" got shape {discrete.shape} and dtype {discrete.dtype}.")
            self.discrete = discrete.astype(np.int64, copy=False)
        for label in ("continuous", "discrete", "latent"):
            value = getattr(self, label)
            if value is not None and len(value) != len(self.neural):
                raise ValueError(f"Recording {self.name!r}: {label} has {len(value)} time steps "
                                 f"but neural has {len(self.neural)}.")

    @property
    def num_timesteps(self) -> int:
        return int(self.neural.shape[0])

    @property
    def num_neurons(self) -> int:
        return int(self.neural.shape[1])


def _as_2d(value: Any, dtype: Any, label: str, name: str) -> np.ndarray:
    """(time,) -> (time, 1); anything not 1-D or 2-D numeric is an error."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"Recording {name!r}: {label} must be numeric, got dtype {arr.dtype}.")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"Recording {name!r}: {label} must be (time, features), got shape "
                         f"{arr.shape}.")
    return arr if dtype is None else arr.astype(dtype, copy=False)


@dataclass
class RecordingSet:
    """Several sessions (animals) that share label definitions, for multi-session training.

    Parameters
    ----------
    sessions
        One :class:`Recording` per session; neuron counts and lengths may differ, but
        every session has the same labels (same continuous width, discrete or not).
    name, metadata
        As for :class:`Recording`.
    """

    sessions: list[Recording]
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sessions = list(self.sessions)
        if not self.sessions or not all(isinstance(s, Recording) for s in self.sessions):
            raise ValueError(f"RecordingSet {self.name!r} needs a non-empty list of Recordings.")
        layouts = {(None if s.continuous is None else s.continuous.shape[1],
                    s.discrete is None) for s in self.sessions}
        if len(layouts) > 1:
            raise ValueError(f"RecordingSet {self.name!r}: sessions have different labels "
                             f"(continuous width, discrete missing): {sorted(layouts, key=str)}.")

    def __len__(self) -> int:
        return len(self.sessions)

    def __iter__(self) -> Iterator[Recording]:
        return iter(self.sessions)

    def __getitem__(self, index: int) -> Recording:
        return self.sessions[index]

    @property
    def num_sessions(self) -> int:
        return len(self.sessions)
