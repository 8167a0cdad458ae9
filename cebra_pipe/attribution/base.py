"""Shared machinery of the attribution methods: windows, batching, reduction, inverses.

Every method produces, for each sampled time step, a tensor ``(output_dim, neurons,
window)``: how embedding dimension ``d`` depends on neuron ``n`` at each lag of the
model's receptive field. It is reduced over the window to ``(output_dim, neurons)``
two ways, as CEBRA does: ``<key>`` (mean over lags) and ``<key>-convabs`` (mean of
absolute values over lags). Methods that invert add the per-sample pseudo-inverse of
each, transposed back to ``(output_dim, neurons)``, under ``<key>-inv-lsq`` and
``<key>-inv-svd``, with the seconds the inversions took under ``time_inversion_lsq``
and ``time_inversion_svd``.

Result arrays are ``(num_samples, output_dim, neurons)`` like CEBRA's, or, with
``aggregate="mean"`` (``"abs-mean"``), the mean over samples of the values (of their
absolute values), ``(output_dim, neurons)``, accumulated batch by batch, so that a
recording of any length runs in bounded memory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import sklearn.metrics
import torch
from torch import nn

from cebra_pipe.data.datatypes import cut_windows
from cebra_pipe.registry import Registry

REGISTRY = Registry("attribution method")

INVERSE_METHODS = ("lsq", "svd")


def encoder_of(model: Any, session_id: int | None = None) -> nn.Module:
    """The torch encoder of a fitted ``cebra_pipe.CEBRA`` estimator, or ``model`` itself.

    Parameters
    ----------
    model
        A fitted estimator or an offset model (``nn.Module`` with ``get_offset``).
    session_id
        Which encoder of a multi-session estimator (required there).
    """
    module = model.model_ if hasattr(model, "solver_") else model
    if isinstance(module, nn.ModuleList):
        if session_id is None or not 0 <= int(session_id) < len(module):
            raise ValueError(f"model is a multi-session model with {len(module)} encoders; "
                             f"pass session_id in 0..{len(module) - 1}, got {session_id!r}.")
        module = module[int(session_id)]
    if not isinstance(module, nn.Module) or not hasattr(module, "get_offset"):
        raise TypeError(f"model must be a fitted cebra_pipe.CEBRA estimator or an offset "
                        f"model with get_offset(), got {type(model).__name__}.")
    return module


class AttributionMap:
    """Base class: samples the time steps to explain and reduces per-sample maps.

    Parameters
    ----------
    model
        A fitted ``cebra_pipe.CEBRA`` or its torch encoder.
    input_data : (time, neurons)
        The recording to explain (numpy or torch, float).
    output_dimension
        Embedding dimensions to explain (the first ``output_dimension``); default all.
    num_samples
        Explain this many time steps drawn without replacement (seeded); default all
        ``time - len(offset) + 1`` steps whose window lies inside the recording.
    seed
        Seed of that draw.
    session_id
        Encoder of a multi-session estimator.
    """

    #: Name of the per-sample map in the result (``"jf"`` for the Jacobian).
    key = "map"
    #: Whether the default result includes the pseudo-inverses.
    invert_by_default = False

    def __init__(self, model: Any, input_data: Any, output_dimension: int | None = None,
                 num_samples: int | None = None, seed: int = 9712341,
                 session_id: int | None = None, invert: bool | None = None):
        self.model = encoder_of(model, session_id)
        self.device = next(self.model.parameters()).device
        self.input_data = _as_recording(input_data, self.model).to(self.device)
        num_output = int(getattr(self.model, "num_output"))
        self.output_dimension = num_output if output_dimension is None else int(output_dimension)
        if not 1 <= self.output_dimension <= num_output:
            raise ValueError(f"output_dimension must be in 1..{num_output} (the model's "
                             f"output dimension), got {output_dimension!r}.")
        self.offset = self.model.get_offset()
        self.invert = self.invert_by_default if invert is None else bool(invert)
        self.seed = int(seed)
        self.indices = self._sample_indices(num_samples)

    def _sample_indices(self, num_samples: int | None) -> torch.Tensor:
        """Centre indices ``(samples,)`` of the windows to explain, in time order."""
        first, last = self.offset.left, len(self.input_data) - self.offset.right
        if last < first:
            raise ValueError(f"input_data has {len(self.input_data)} time steps, fewer than the "
                             f"model's receptive field of {len(self.offset)}.")
        valid = last - first + 1
        if num_samples is None:
            return torch.arange(first, last + 1)
        if isinstance(num_samples, bool) or not 1 <= int(num_samples) <= valid:
            raise ValueError(f"num_samples must be in 1..{valid} (time steps with a full "
                             f"window), got {num_samples!r}.")
        generator = torch.Generator().manual_seed(self.seed)
        chosen = torch.randperm(valid, generator=generator)[:int(num_samples)]
        return chosen.sort().values + first

    @property
    def num_samples(self) -> int:
        return len(self.indices)

    # -- per-batch maps (subclasses) ------------------------------------------------------
    def batch_maps(self, windows: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``(batch, output_dim, neurons, window)`` attributions of ``windows``."""
        raise NotImplementedError

    def forward_fn(self, windows: torch.Tensor) -> torch.Tensor:
        """Embedding ``(batch, output_dimension)`` of ``windows (batch, neurons, window)``."""
        return self.model(windows).reshape(len(windows), -1)[:, :self.output_dimension]

    # -- driver ---------------------------------------------------------------------------
    def compute_attribution_map(self, batch_size: int = 1024, aggregate: str | None = None,
                                inverse_methods: Sequence[str] = INVERSE_METHODS,
                                **kwargs: Any) -> dict[str, Any]:
        """Attribution maps of the sampled time steps.

        Parameters
        ----------
        batch_size
            Time steps per pass (bounds memory; the result does not depend on it).
        aggregate
            ``None``: per-sample arrays ``(num_samples, output_dim, neurons)``;
            ``"mean"`` / ``"abs-mean"``: the mean of the values / of their absolute
            values, ``(output_dim, neurons)``, without ever holding all samples (use
            this on long recordings).
        inverse_methods
            Pseudo-inverses to add for inverting methods (``"lsq"``, ``"svd"``); one
            of them halves the inversion time.
        **kwargs
            Method options (e.g. ``n_steps`` for integrated gradients).

        Returns
        -------
        dict
            ``{key, key-convabs}`` and, for inverting methods, ``{key}-inv-lsq``,
            ``{key}-inv-svd``, ``{key}-convabs-inv-*``, ``time_inversion_lsq``,
            ``time_inversion_svd`` (seconds).
        """
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if aggregate not in (None, "mean", "abs-mean"):
            raise ValueError(f"aggregate must be None, 'mean' or 'abs-mean', got "
                             f"{aggregate!r}.")
        unknown = set(inverse_methods) - set(INVERSE_METHODS)
        if unknown or not inverse_methods:
            raise ValueError(f"inverse_methods must be a non-empty subset of {INVERSE_METHODS}, "
                             f"got {inverse_methods!r}.")
        was_training = self.model.training
        self.model.eval()
        parts: dict[str, list[np.ndarray]] = {}
        sums: dict[str, torch.Tensor] = {}
        timings = {f"time_inversion_{m}": 0.0 for m in inverse_methods}
        try:
            for index in self.indices.split(int(batch_size)):
                windows = cut_windows(self.input_data, self.offset, index.to(self.device))
                full = self.batch_maps(windows, **kwargs).detach()
                for name, value in self._reduce(full, timings, inverse_methods).items():
                    if aggregate is not None:
                        value = value.abs() if aggregate == "abs-mean" else value
                        sums[name] = sums.get(name, 0) + value.double().sum(0)
                    else:
                        parts.setdefault(name, []).append(value.cpu().numpy())
        finally:
            self.model.train(was_training)
        if aggregate is not None:
            result = {k: (v / self.num_samples).cpu().numpy() for k, v in sums.items()}
        else:
            result = {k: np.concatenate(v) for k, v in parts.items()}
        if self.invert:
            result.update(timings)
        return result

    def _reduce(self, full: torch.Tensor, timings: dict[str, float],
                inverse_methods: Sequence[str]) -> dict[str, torch.Tensor]:
        """Window reductions (and their inverses) of ``full (batch, out, neurons, window)``."""
        reduced = {self.key: full.mean(-1), f"{self.key}-convabs": full.abs().mean(-1)}
        out = {}
        for name, value in reduced.items():
            out[name] = value
            if not self.invert:
                continue
            for method in inverse_methods:
                start = time.perf_counter()
                out[f"{name}-inv-{method}"] = pseudo_inverse(value, method)
                timings[f"time_inversion_{method}"] += time.perf_counter() - start
        return out

    # -- scores ---------------------------------------------------------------------------
    def compute_attribution_score(self, attribution_map: np.ndarray,
                                  ground_truth_map: np.ndarray) -> float:
        """ROC-AUC of ``attribution_map`` against a boolean ``ground_truth_map`` (same shape)."""
        return attribution_roc_auc(attribution_map, ground_truth_map)

    def compute_metrics(self, attribution_map: np.ndarray,
                        ground_truth_map: np.ndarray) -> dict[str, float]:
        """Max, mean and min of the map over connected and non-connected entries, and gaps."""
        truth = _check_truth(attribution_map, ground_truth_map)
        values = np.asarray(attribution_map, dtype=np.float64)
        stats = {}
        for label, part in (("connected", values[truth]), ("nonconnected", values[~truth])):
            for fn in ("max", "mean", "min"):
                stats[f"{fn}_{label}"] = float(getattr(np, fn)(part))
        for fn in ("max", "mean", "min"):
            stats[f"gap_{fn}"] = stats[f"{fn}_connected"] - stats[f"{fn}_nonconnected"]
        stats["gap_minmax"] = stats["min_connected"] - stats["max_nonconnected"]
        stats["max_jacobian"], stats["min_jacobian"] = float(values.max()), float(values.min())
        return stats


def pseudo_inverse(maps: torch.Tensor, method: str = "svd") -> torch.Tensor:
    """Per-sample pseudo-inverse of ``maps (batch, out, neurons)``, transposed back to
    ``(batch, out, neurons)``.

    ``"svd"`` is the spectral pseudo-inverse ``J^T U S^-2 U^T`` from the
    eigendecomposition ``J J^T = U S^2 U^T`` of the small ``(out, out)`` Gram matrix:
    the same matrix as ``torch.linalg.pinv`` (to 1e-16) but 3x faster for the wide
    ``(8, 200)`` Jacobians of a recording (0.08 against 0.3 s per 1024). ``"lsq"`` is
    the minimum-norm least-squares solution of ``J X = I`` (LAPACK ``gelsd``, on the
    CPU: CUDA's solver only takes tall full-rank systems). Both run in float64, and
    singular values below ``max(out, neurons) * eps(maps.dtype)`` of the largest are
    treated as zero: a normalised (cosine) embedding's Jacobian has rank ``out - 1``
    (the radial direction), and inverting its rounding noise would give values of ~1e9.
    """
    rtol = max(maps.shape[1:]) * torch.finfo(maps.dtype).eps
    if method == "svd":
        inverse = _spectral_pinv(maps.double(), rtol)
    elif method == "lsq":
        cpu = maps.double().cpu()
        eye = torch.eye(cpu.shape[1], dtype=torch.float64).expand(len(cpu), -1, -1)
        inverse = torch.linalg.lstsq(cpu, eye, rcond=rtol, driver="gelsd").solution.to(
            maps.device)
    else:
        raise ValueError(f"Unknown inverse method {method!r}; choose one of {INVERSE_METHODS}.")
    return inverse.transpose(1, 2).to(maps.dtype)


def _spectral_pinv(maps: torch.Tensor, rtol: float) -> torch.Tensor:
    """Pseudo-inverse ``(batch, neurons, out)`` of ``maps (batch, out, neurons)`` with
    out <= neurons (wide): via the eigendecomposition of ``maps @ maps.T``."""
    if maps.shape[1] > maps.shape[2]:
        return torch.linalg.pinv(maps, rtol=rtol)
    eigenvalues, vectors = torch.linalg.eigh(maps @ maps.transpose(1, 2))
    singular = eigenvalues.clamp_min(0).sqrt()
    keep = singular > rtol * singular.amax(-1, keepdim=True)
    scale = torch.where(keep, 1 / eigenvalues.clamp_min(torch.finfo(maps.dtype).tiny), 0)
    return maps.transpose(1, 2) @ (vectors * scale[:, None, :]) @ vectors.transpose(1, 2)


def latent_map(attribution_map: np.ndarray, embedding: np.ndarray,
               latents: np.ndarray) -> np.ndarray:
    """Express an inverse map in latent coordinates: ``(..., neurons, latents)``.

    An encoder that inverts the generative map recovers the latents only up to a
    linear transformation ``embedding ~ latents @ L.T + c``; the pseudo-inverse of its
    Jacobian is then ``J_g L^{-1}``, so ``J^+ L`` estimates the Jacobian ``J_g`` of
    the map from latents to neurons, whose sparsity is the true connectivity.

    Parameters
    ----------
    attribution_map : (..., output_dim, neurons)
        An inverse map (e.g. ``jf-inv-svd``), per sample or averaged.
    embedding : (time, output_dim)
    latents : (time, k)
        The latents (or labels) at the same time steps.
    """
    embedding, latents = np.asarray(embedding, np.float64), np.asarray(latents, np.float64)
    if latents.ndim == 1:
        latents = latents[:, None]
    if embedding.ndim != 2 or len(embedding) != len(latents):
        raise ValueError(f"embedding (time, dims) and latents (time, k) must share their "
                         f"time axis, got shapes {embedding.shape} and {latents.shape}.")
    maps = np.asarray(attribution_map, np.float64)
    if maps.shape[-2] != embedding.shape[1]:
        raise ValueError(f"attribution_map has {maps.shape[-2]} output dimensions but the "
                         f"embedding has {embedding.shape[1]}.")
    design = np.column_stack([latents, np.ones(len(latents))])
    mixing = np.linalg.lstsq(design, embedding, rcond=None)[0][:-1].T  # (output_dim, k)
    return np.swapaxes(maps, -1, -2) @ mixing


def attribution_roc_auc(attribution_map: np.ndarray, ground_truth_map: np.ndarray) -> float:
    """ROC-AUC of the map's values as scores for the true 0/1 connectivity (chance 0.5).

    Parameters
    ----------
    attribution_map : any shape, e.g. (neurons, latents)
    ground_truth_map : same shape, boolean or 0/1
    """
    truth = _check_truth(attribution_map, ground_truth_map)
    return float(sklearn.metrics.roc_auc_score(truth.ravel(),
                                               np.asarray(attribution_map).ravel()))


def _check_truth(attribution_map: np.ndarray, ground_truth_map: np.ndarray) -> np.ndarray:
    truth = np.asarray(ground_truth_map)
    values = np.asarray(attribution_map)
    if truth.shape != values.shape:
        raise ValueError(f"attribution_map has shape {values.shape} but ground_truth_map has "
                         f"shape {truth.shape}; they must match.")
    if truth.dtype != bool and not np.isin(truth, (0, 1)).all():
        raise ValueError("ground_truth_map must be boolean or 0/1.")
    truth = truth.astype(bool)
    if truth.all() or not truth.any():
        raise ValueError("ground_truth_map needs both connected and non-connected entries.")
    if not np.isfinite(values).all():
        raise ValueError("attribution_map contains NaN or infinite values.")
    return truth


def _as_recording(input_data: Any, model: nn.Module) -> torch.Tensor:
    """``input_data`` as a float32 ``(time, neurons)`` tensor matching ``model``'s input."""
    data = input_data if isinstance(input_data, torch.Tensor) else torch.from_numpy(
        np.asarray(input_data))
    if data.dim() != 2 or not (data.is_floating_point() or data.dtype in (
            torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise ValueError(f"input_data must be a numeric (time, neurons) array, got shape "
                         f"{tuple(data.shape)} and dtype {data.dtype}.")
    data = data.float()
    expected = getattr(model, "num_input", data.shape[1])
    if data.shape[1] != expected:
        raise ValueError(f"input_data has {data.shape[1]} neurons, but the model takes "
                         f"{expected}.")
    # In chunks: isfinite on a whole 1M x 200 recording allocates 1.3 GB of temporaries.
    if not all(bool(torch.isfinite(chunk).all()) for chunk in data.split(1 << 16)):
        raise ValueError("input_data contains NaN or infinite values.")
    return data
