"""Datasets: one recording (``TensorDataset``) or several (``DatasetCollection``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cebra_pipe.data.datatypes import Batch, BatchIndex, IndexSet, Offset, cut_windows


def _as_tensor(array, dtype: torch.dtype, name: str) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        tensor = array.detach()
    else:
        array = np.asarray(array)
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise TypeError(f"{name} must be numeric, got dtype {array.dtype}.")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return tensor.to(dtype)


def _check_integral(array, name: str) -> None:
    """Class labels must be whole numbers: casting 0.7 to class 0 would merge classes."""
    values = array.detach() if isinstance(array, torch.Tensor) else np.asarray(array)
    floating = values.is_floating_point() if isinstance(values, torch.Tensor) else \
        values.dtype.kind == "f"
    if floating and bool((values != values.round()).any()):
        raise TypeError(f"{name} labels must be integers (class ids), got non-integer "
                        f"values of dtype {values.dtype}; pass continuous labels as "
                        "continuous.")


class TensorDataset:
    """One recording: neural activity and optional labels, all on one device.

    Parameters
    ----------
    neural : (time, neurons)
        Neural activity.
    continuous : (time,) or (time, dims), optional
        Continuous labels (behaviour).
    discrete : (time,), optional
        Integer labels.
    segments : (time,), optional
        Integer segment ids (trial, session part): a seam lies between consecutive
        samples whose ids differ, and no window or positive crosses it. ``None``: one
        segment.
    offset
        Receptive field of the model the windows are cut for; set by
        :meth:`configure_for`.
    device
        Where the tensors live.
    """

    def __init__(self, neural, continuous=None, discrete=None, offset: Offset = Offset(0, 1),
                 device: str | torch.device = "cpu", segments=None):
        self.neural = _as_tensor(neural, torch.float32, "neural")
        if self.neural.dim() != 2 or self.neural.shape[0] == 0 or self.neural.shape[1] == 0:
            raise ValueError(f"neural must have shape (time, neurons) with both > 0, "
                             f"got {tuple(self.neural.shape)}.")
        self.continuous = None
        if continuous is not None:
            cont = _as_tensor(continuous, torch.float32, "continuous")
            self.continuous = cont[:, None] if cont.dim() == 1 else cont
            self._check_length(self.continuous, "continuous")
        self.discrete = None
        if discrete is not None:
            _check_integral(discrete, "discrete")
            disc = _as_tensor(discrete, torch.long, "discrete")
            if disc.dim() == 2 and disc.shape[1] == 1:
                disc = disc[:, 0]
            if disc.dim() != 1:
                raise ValueError(f"discrete must be 1-D (time,), got {tuple(disc.shape)}.")
            self.discrete = disc
            self._check_length(self.discrete, "discrete")
        self.segments = None if segments is None else self._check_segments(segments)
        self.offset = offset
        self.to(device)

    def _check_length(self, labels: torch.Tensor, name: str) -> None:
        if labels.shape[0] != self.neural.shape[0]:
            raise ValueError(f"{name} has {labels.shape[0]} samples but neural has "
                             f"{self.neural.shape[0]}; they must have the same length.")

    def _check_segments(self, segments) -> torch.Tensor:
        array = segments.detach().cpu().numpy() if isinstance(segments, torch.Tensor) else \
            np.asarray(segments)
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"segments must hold integer segment ids, got dtype {array.dtype}.")
        if array.ndim != 1:
            raise ValueError(f"segments must be 1-D (time,), got shape {array.shape}.")
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
        self._check_length(tensor, "segments")
        return tensor

    def segment_bounds(self) -> torch.Tensor:
        """``(segments, 2)`` ``[start, stop)`` of each run of equal segment ids (CPU)."""
        if self.segments is None:
            return torch.tensor([[0, len(self)]])
        ids = self.segments.cpu()
        seams = torch.nonzero(ids[1:] != ids[:-1])[:, 0] + 1
        edges = torch.cat([torch.tensor([0]), seams, torch.tensor([len(self)])])
        return torch.stack([edges[:-1], edges[1:]], 1)

    def admissible(self, time_offset: int = 0) -> IndexSet:
        """Time indices whose window, and the window ``time_offset`` steps later, lie
        inside one segment (and inside the recording)."""
        bounds = self.segment_bounds()
        start = bounds[:, 0] + self.offset.left
        stop = bounds[:, 1] - self.offset.right + 1 - int(time_offset)
        return IndexSet(torch.stack([start, stop], 1), self.device)

    @property
    def input_dimension(self) -> int:
        return int(self.neural.shape[1])

    @property
    def device(self) -> torch.device:
        return self.neural.device

    def __len__(self) -> int:
        return int(self.neural.shape[0])

    def to(self, device: str | torch.device) -> "TensorDataset":
        """Move all tensors to ``device`` (in place) and return ``self``."""
        self.neural = self.neural.to(device)
        if self.continuous is not None:
            self.continuous = self.continuous.to(device)
        if self.discrete is not None:
            self.discrete = self.discrete.to(device)
        if self.segments is not None:
            self.segments = self.segments.to(device)
        return self

    def configure_for(self, model) -> None:
        """Cut windows matching ``model``'s receptive field."""
        self.offset = model.get_offset()

    def valid_range(self) -> tuple[int, int]:
        """Indices ``[start, stop)`` whose full window lies inside the recording."""
        start, stop = self.offset.left, len(self) - self.offset.right + 1
        if stop <= start:
            raise ValueError(f"The recording has {len(self)} samples, fewer than the model's "
                             f"receptive field of {len(self.offset)}.")
        return start, stop

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        """Windows ``(batch, neurons, len(offset))`` centred on ``index (batch,)``."""
        return cut_windows(self.neural, self.offset, index)

    def load_batch(self, index: BatchIndex) -> Batch:
        """Gather the windows of a batch of indices, in one gather.

        The returned windows are consecutive views of one ``(parts x batch, neurons,
        window)`` tensor, in the order reference, positive, (positive_time,) negative,
        so a solver that concatenates them in that order gets the tensor for free
        (see :meth:`Batch.stacked`).
        """
        names = ["reference", "positive"] + (["positive_time"] if index.positive_time
                                             is not None else []) + ["negative"]
        parts = [getattr(index, name) for name in names]
        windows = self[torch.cat(parts)].split([len(part) for part in parts])
        return Batch(**dict(zip(names, windows)))


class DatasetCollection:
    """Several recordings trained jointly (neuron counts may differ).

    Parameters
    ----------
    *datasets
        One :class:`TensorDataset` per session.
    """

    def __init__(self, *datasets: TensorDataset):
        if len(datasets) == 1 and isinstance(datasets[0], (list, tuple)):
            datasets = tuple(datasets[0])
        if not datasets:
            raise ValueError("DatasetCollection needs at least one dataset.")
        for i, ds in enumerate(datasets):
            if not isinstance(ds, TensorDataset):
                raise TypeError(f"session {i} is a {type(ds).__name__}, not a TensorDataset.")
        self._datasets = list(datasets)

    @property
    def num_sessions(self) -> int:
        return len(self._datasets)

    def get_session(self, session_id: int) -> TensorDataset:
        return self._datasets[session_id]

    def __iter__(self):
        return iter(self._datasets)

    def __len__(self) -> int:
        return self.num_sessions

    @property
    def input_dimension(self) -> list[int]:
        return [ds.input_dimension for ds in self._datasets]

    @property
    def device(self) -> torch.device:
        return self._datasets[0].device

    def to(self, device: str | torch.device) -> "DatasetCollection":
        for ds in self._datasets:
            ds.to(device)
        return self

    def configure_for(self, models: Sequence) -> None:
        """Cut each session's windows for its model (one model per session)."""
        if len(models) != self.num_sessions:
            raise ValueError(f"{len(models)} models for {self.num_sessions} sessions.")
        for ds, model in zip(self._datasets, models):
            ds.configure_for(model)
