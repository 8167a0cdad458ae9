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

    Notes
    -----
    It also speaks the reference's dataset protocol (``cebra.data`` datasets):
    ``len(recording)`` time steps, ``recording[index]`` the windows
    ``(batch, neurons, len(offset))`` centred on a 1-D integer ``index`` as a float32
    tensor, ``offset`` (the receptive field the windows are cut for, ``Offset(0, 1)``
    until :meth:`configure_for` sets a model's), ``input_dimension``,
    ``continuous_index`` / ``discrete_index`` (the labels as tensors, or None) and
    :meth:`load_batch`. torch is imported only when these are used, so reading a
    recording's arrays stays light.
    """

    neural: np.ndarray
    continuous: np.ndarray | None = None
    discrete: np.ndarray | None = None
    latent: np.ndarray | None = None
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # (left, right) of :attr:`offset`; the reference's base datasets start at Offset(0, 1).
    _window: tuple[int, int] = field(default=(0, 1), init=False, repr=False, compare=False)
    # The tensor view behind the dataset protocol and the arrays it was built from.
    _view: Any = field(default=None, init=False, repr=False, compare=False)

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

    # -- the reference's dataset protocol ----------------------------------------------
    # Indexing takes arrays of time steps, so iterating (which would index 0, 1, ...)
    # is not offered: a recording is not a sequence of sessions.
    __iter__ = None

    def __len__(self) -> int:
        return self.num_timesteps

    @property
    def input_dimension(self) -> int:
        """Neurons, the model's input width."""
        return self.num_neurons

    @property
    def offset(self):
        """:class:`cebra_pipe.data.Offset` the windows of ``recording[index]`` span."""
        from cebra_pipe.data.datatypes import Offset

        return Offset(*self._window)

    @offset.setter
    def offset(self, value: Any) -> None:
        """An ``Offset`` or ``(left, right)``."""
        from cebra_pipe.data.datatypes import Offset

        offset = value if isinstance(value, Offset) else Offset(*value)
        self._window = (offset.left, offset.right)

    def configure_for(self, model: Any) -> None:
        """Cut windows for ``model``'s receptive field (``model.get_offset()``)."""
        self.offset = model.get_offset()

    @property
    def continuous_index(self):
        """Continuous labels ``(time, d)`` as a float32 tensor, or None."""
        return self.tensors().continuous

    @property
    def discrete_index(self):
        """Discrete labels ``(time,)`` as an int64 tensor, or None."""
        return self.tensors().discrete

    def tensors(self):
        """The recording as a :class:`cebra_pipe.data.TensorDataset` (CPU) cut for
        :attr:`offset`; built once per set of arrays (the arrays are shared, not copied)."""
        from cebra_pipe.data.datasets import TensorDataset

        arrays = (self.neural, self.continuous, self.discrete)
        if self._view is None or any(a is not b for a, b in zip(self._view[0], arrays)):
            view = TensorDataset(self.neural, self.continuous, self.discrete)
            self._view = (arrays, view)
        view = self._view[1]
        view.offset = self.offset
        return view

    def __getitem__(self, index: Any):
        """Windows ``(batch, neurons, len(offset))`` centred on ``index`` (1-D integers).

        Raises
        ------
        IndexError for an index whose window leaves the recording (the reference moves
        such indices inside without saying so).
        """
        import torch

        index = torch.as_tensor(np.asarray(index) if not isinstance(index, torch.Tensor)
                                else index)
        if index.dim() != 1 or index.is_floating_point() or index.dtype == torch.bool:
            raise IndexError(f"Recording {self.name!r}: index must be a 1-D array of integer "
                             f"time steps, got {index.dtype} of shape {tuple(index.shape)}.")
        view = self.tensors()
        start, stop = view.valid_range()
        if len(index) and (int(index.min()) < start or int(index.max()) >= stop):
            raise IndexError(f"Recording {self.name!r}: indices {int(index.min())} to "
                             f"{int(index.max())} given, but windows of {self.offset} fit "
                             f"around time steps {start} to {stop - 1} only.")
        return view[index.long()]

    def load_batch(self, index: Any):
        """The windows of a :class:`cebra_pipe.data.BatchIndex` as a ``Batch``."""
        return self.tensors().load_batch(index)


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

    def get_session(self, session_id: int) -> Recording:
        """Session ``session_id`` (the reference's name for ``recordings[session_id]``)."""
        return self.sessions[session_id]
