"""The training loop shared by all solvers.

A solver owns a model, a criterion and an optimizer, trains them on batches from a
loader, keeps the per-step loss history and log (align, uniform, total,
temperature), writes checkpoints and turns recordings into embeddings.

The per-step statistics stay on the device in a buffer that is read every
``sync_every`` steps, so a CUDA step never waits for the host.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cebra_pipe.data.datatypes import Batch, FullBatch
from cebra_pipe.io import save_torch
from cebra_pipe.models import time_major
from cebra_pipe.solver.progress import progress

LOG_KEYS = ("pos", "neg", "total", "temperature")
_CHECKPOINT = re.compile(r"checkpoint_(\d+)\.pt$")
_log = logging.getLogger("cebra_pipe")
#: Builds the optimizer over the parameters it is given (e.g. ``CEBRA._make_optimizer``).
OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


class TrainingDivergedError(ValueError):
    """The training loss became NaN or infinite; the message gives the step and loss."""


def check_losses(losses: Sequence[float], first_step: int, who: str = "training") -> None:
    """Raise :class:`TrainingDivergedError` at the first non-finite value of ``losses``.

    ``losses[i]`` is the loss of step ``first_step + i``. Called where the statistics
    are read back anyway (every ``sync_every`` steps), so it adds no device sync.
    """
    for offset, loss in enumerate(losses):
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"{who} diverged: the loss is {loss} at step {first_step + offset}; stopped "
                "without saving a model. Lower learning_rate (or raise temperature) and rerun.")


def newest_checkpoint(directory: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable ``checkpoint_<step>.pt`` in ``directory`` and its state.

    A checkpoint that cannot be read (empty, truncated, corrupt, not a checkpoint) is
    renamed to ``<name>.corrupt``, named in a warning on the ``cebra_pipe`` logger, and
    the next older one is tried, so a damaged file never blocks a rerun.
    """
    directory = Path(directory)
    found = sorted(p for p in directory.glob("checkpoint_*.pt") if _CHECKPOINT.search(p.name)) \
        if directory.is_dir() else []
    for path in reversed(found):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or not {"step", "loader", "model"} <= set(state):
                raise ValueError("not a cebra_pipe checkpoint")
            return path, state
        except Exception as err:  # noqa: BLE001 - any failure to read means "unusable"
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            detail = (str(err).splitlines() or [type(err).__name__])[0][:200]
            _log.warning("checkpoint '%s' cannot be read (%s: %s); set aside as '%s', "
                         "resuming from an older checkpoint or from the start.", path,
                         type(err).__name__, detail, aside)
    return None


class Solver:
    """Trains ``model`` with ``criterion`` and ``optimizer``.

    Parameters
    ----------
    model
        The encoder (a ``nn.ModuleList`` of encoders for multi-session solvers).
    criterion
        An InfoNCE criterion returning ``(loss, align, uniform)``.
    optimizer
        Optimizes the model's (and a learnable criterion's) parameters; or a factory
        ``parameters -> optimizer``, called with the model's and the criterion's
        parameters the first time training needs it. A solver that is only loaded to
        embed then never builds one (constructing a torch optimizer imports
        ``torch._dynamo``, over a CPU-second).
    tqdm_on
        Show a progress bar with loss and temperature.
    sync_every
        Steps between reads of the on-device statistics.
    regularizer
        Called as ``regularizer(solver, batch)`` each step; its scalar is added to
        the loss (:mod:`cebra_pipe.solver.regularizers`). ``None``: the plain loss.
    """

    def __init__(self, model: nn.Module, criterion: nn.Module,
                 optimizer: torch.optim.Optimizer | OptimizerFactory, tqdm_on: bool = False,
                 sync_every: int = 50,
                 regularizer: Callable[["Solver", object], torch.Tensor] | None = None):
        self.model, self.criterion = model, criterion
        self._optimizer: torch.optim.Optimizer | None = None
        self._optimizer_factory: OptimizerFactory | None = None
        # A loaded state waiting for the optimizer to be built (never set alongside it).
        self._optimizer_state: dict | None = None
        if isinstance(optimizer, torch.optim.Optimizer):
            self._optimizer = optimizer
        else:
            self._optimizer_factory = optimizer
        self.regularizer = regularizer
        #: The current step of ``fit`` (1-based; a resumed run continues the count).
        self.iteration = 0
        self.tqdm_on, self.sync_every = tqdm_on, max(1, int(sync_every))
        self.history: list[float] = []
        self.log: dict[str, list[float]] = {k: [] for k in LOG_KEYS}
        self.valid_history: list[tuple[int, float]] = []

    # -- optimizer ----------------------------------------------------------------------
    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer; built from the factory (with any loaded state) on first use."""
        if self._optimizer is None:
            self._optimizer = self._optimizer_factory(self.trained_parameters())
            if self._optimizer_state is not None:
                self._optimizer.load_state_dict(self._optimizer_state)
                self._optimizer_state = None
                self._move_optimizer_state(self.device)
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self._optimizer, self._optimizer_state = optimizer, None

    def trained_parameters(self) -> list[nn.Parameter]:
        """The model's then the criterion's parameters (what a factory optimizer trains)."""
        return list(self.model.parameters()) + list(self.criterion.parameters())

    # -- device -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.model.parameters(), [torch.empty(0)])).device

    def to(self, device: str | torch.device) -> "Solver":
        """Move model, criterion and optimizer state to ``device``."""
        self.model.to(device)
        self.criterion.to(device)
        if self._optimizer is not None:  # a state not loaded yet moves when it is
            self._move_optimizer_state(device)
        return self

    def _move_optimizer_state(self, device: str | torch.device) -> None:
        for state in self._optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and key != "step":
                    state[key] = value.to(device)

    # -- one step -----------------------------------------------------------------------
    def compute_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, align, uniform)`` of one batch."""
        raise NotImplementedError

    def _temperature(self) -> torch.Tensor | float:
        inverse = self.criterion.inverse_temperature()
        return 1.0 / inverse.detach() if isinstance(inverse, torch.Tensor) else 1.0 / inverse

    def step(self, batch) -> torch.Tensor:
        """One optimisation step; returns ``(4,)`` statistics on the device."""
        self.optimizer.zero_grad(set_to_none=True)
        loss, align, uniform = self.compute_loss(batch)
        if self.regularizer is not None:
            loss = loss + self.regularizer(self, batch)
        loss.backward()
        self.optimizer.step()
        stats = torch.empty(4, device=loss.device)
        stats[:3] = torch.stack([align, uniform, loss]).detach()
        stats[3] = self._temperature()
        return stats

    def embed(self, encoder: nn.Module, windows: torch.Tensor) -> torch.Tensor:
        """``(batch, num_output)`` float32 embeddings of ``(batch, neurons, window)``."""
        return encoder(windows).reshape(len(windows), -1).float()

    def session_loss(self, encoder: nn.Module, batch: Batch | FullBatch
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, align, uniform)`` of one session's batch embedded by ``encoder``.

        Reference, positive and negative windows go through ``encoder`` in one pass;
        a full batch with a sliding encoder embeds the recording once instead.
        """
        batch = batch.to(self.device)
        if isinstance(batch, FullBatch) and self._can_slide(batch, encoder):
            ref, pos, neg = self.embed_full_batch(encoder, batch)
        else:
            # A FullBatch cuts its windows on access: count the indices, not windows.
            size = len(batch.index.reference if isinstance(batch, FullBatch)
                       else batch.reference)
            emb = self.embed(encoder, batch.stacked("reference", "positive", "negative"))
            ref, pos, neg = emb[:size], emb[size:2 * size], emb[2 * size:]
        return self.criterion(ref, pos, neg)

    def _can_slide(self, batch: FullBatch, encoder: nn.Module | None = None) -> bool:
        encoder = self.model if encoder is None else encoder
        get_offset = getattr(encoder, "get_offset", None)
        return (slides_over_recording(encoder) and get_offset is not None
                and get_offset() == batch.offset)

    def embed_full_batch(self, encoder: nn.Module, batch: FullBatch
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reference, positive and negative embeddings ``(batch, num_output)`` each.

        The encoder runs once over ``batch.neural (time, neurons)`` (``time -
        len(offset) + 1`` outputs, row ``i`` is time ``i + offset.left``); gathering
        rows keeps the gradient path to every window that is used.
        """
        emb = transform_recording(encoder, batch.neural, pad=False, batch_size=None)
        left = batch.offset.left
        index = batch.index
        return emb[index.reference - left], emb[index.positive - left], emb[index.negative - left]

    # -- training loop ------------------------------------------------------------------
    def fit(self, loader, valid_loader=None, *, valid_frequency: int | None = None,
            checkpoint_dir: str | os.PathLike | None = None,
            checkpoint_frequency: int | None = None, resume: bool = False,
            callback: Callable[[int, "Solver"], None] | None = None,
            callback_frequency: int | None = None) -> "Solver":
        """Train on ``loader``'s batches (``len(loader)`` steps).

        With ``checkpoint_dir`` and ``checkpoint_frequency`` the full training state
        (including the sampler's random state) is written every that many steps;
        ``resume=True`` continues from the newest checkpoint there, reproducing the
        batches of an uninterrupted run. ``callback(step, solver)`` is called every
        ``callback_frequency`` steps.
        """
        total = len(loader)
        start = self.load_checkpoint(checkpoint_dir, loader) if resume and checkpoint_dir else 0
        self.model.train()
        buffer = torch.empty((self.sync_every, 4), device=self.device)
        pending = 0
        # A bar on a terminal; plain progress lines in a job's log file.
        bar = progress(total, start, enabled=self.tqdm_on)
        batches = itertools.islice(iter(loader), total - start)
        for step, batch in enumerate(batches, start + 1):
            self.iteration = step
            buffer[pending] = self.step(batch)
            pending += 1
            if pending == self.sync_every or step == total:
                self._flush(buffer[:pending], bar)
                pending = 0
            if valid_loader is not None and valid_frequency and step % valid_frequency == 0:
                self.valid_history.append((step, self.validation_loss(valid_loader)))
            if checkpoint_dir and checkpoint_frequency and step % checkpoint_frequency == 0:
                self._flush(buffer[:pending], bar)
                pending = 0
                self.save_checkpoint(checkpoint_dir, step, loader)
            if callback is not None and callback_frequency and step % callback_frequency == 0:
                callback(step, self)
        bar.close()
        return self

    def _flush(self, stats: torch.Tensor, bar) -> None:
        if len(stats) == 0:
            return
        rows = stats.tolist()
        check_losses([row[2] for row in rows], len(self.history) + 1)
        for row in rows:
            for key, value in zip(LOG_KEYS, row):
                self.log[key].append(value)
            self.history.append(row[2])
        bar.set_postfix(loss=f"{rows[-1][2]:.4f}", temperature=f"{rows[-1][3]:.3f}")
        bar.update(len(rows))

    @torch.no_grad()
    def validation_loss(self, loader) -> float:
        """Mean loss over ``loader``'s batches, without training."""
        was_training = self.model.training
        self.model.eval()
        losses = [self.compute_loss(batch)[0] for batch in loader]
        self.model.train(was_training)
        return float(torch.stack(losses).mean())

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue training: plain tensors and numbers only."""
        return {
            "model": self.model.state_dict(),
            "criterion": self.criterion.state_dict(),
            "optimizer": (self.optimizer.state_dict() if self._optimizer_state is None
                          else self._optimizer_state),
            "loss": torch.tensor(self.history, dtype=torch.float64),
            "log": {k: torch.tensor(v, dtype=torch.float64) for k, v in self.log.items()},
            "valid": torch.tensor(self.valid_history, dtype=torch.float64).reshape(-1, 2),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.criterion.load_state_dict(state["criterion"])
        if self._optimizer is None:
            # Kept until training needs the optimizer; checked now so a bad file fails here.
            optimizer = state["optimizer"]
            check_optimizer_state(optimizer, len(self.trained_parameters()))
            # Keyed like Optimizer.state_dict() so a re-save writes the same bytes.
            self._optimizer_state = {"state": optimizer["state"],
                                     "param_groups": optimizer["param_groups"]}
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.to(self.device)
        self.history = [float(v) for v in state["loss"]]
        self.log = {k: [float(v) for v in state["log"][k]] for k in LOG_KEYS}
        self.valid_history = [(int(s), float(v)) for s, v in state.get("valid", [])]

    def save_checkpoint(self, directory: str | os.PathLike, step: int, loader) -> Path:
        """Write ``checkpoint_<step>.pt`` atomically and drop older checkpoints."""
        directory = Path(directory)
        path = directory / f"checkpoint_{step:08d}.pt"
        # torch's global RNG drives dropout: without it a resumed run would diverge.
        save_torch({**self.state_dict(), "step": step, "loader": loader.state_dict(),
                    "torch_rng": torch.get_rng_state(), **_cuda_rng_state()}, path)
        for old in directory.glob("checkpoint_*.pt"):
            if old != path and _CHECKPOINT.search(old.name):
                old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self, directory: str | os.PathLike, loader) -> int:
        """Restore the newest readable checkpoint in ``directory`` (unreadable ones are set
        aside, see :func:`newest_checkpoint`); returns its step (0 if none)."""
        newest = newest_checkpoint(directory)
        if newest is None:
            return 0
        _, state = newest
        self.load_state_dict(state)
        loader.load_state_dict(state["loader"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(state["cuda_rng"]))
        return int(state["step"])

    # -- inference ----------------------------------------------------------------------
    def encoder(self, session_id: int | None = None) -> nn.Module:
        """The encoder that embeds session ``session_id``'s recordings (the model itself
        for single-session solvers, which ignore ``session_id``)."""
        return self.model

    def evaluation_loss(self, batch, session_id: int | None = None) -> torch.Tensor:
        """The criterion on one batch's reference, positive and negative samples.

        Hybrid solvers score the behaviour positives only; with ``session_id`` a
        multi-session solver scores a single-session batch of that session with its
        encoder.
        """
        return self.compute_loss(batch)[0]

    @torch.no_grad()
    def score_batches(self, batches, session_id: int | None = None) -> list[float]:
        """:meth:`evaluation_loss` of every batch, with the encoder in eval mode (no
        dropout) and no gradients; the model's training mode is restored after."""
        # Without a session every encoder of the model scores its own session.
        module = self.model if session_id is None else self.encoder(session_id)
        was_training = module.training
        module.eval()
        try:
            return [float(self.evaluation_loss(batch, session_id)) for batch in batches]
        finally:
            module.train(was_training)

    @torch.no_grad()
    def transform(self, inputs: torch.Tensor, session_id: int | None = None,
                  batch_size: int | None = None, pad_before_transform: bool = True
                  ) -> torch.Tensor:
        """Embed windows ``(batch, neurons, window)`` or a recording ``(time, neurons)``.

        A recording gives ``(time, num_output)`` with edge padding (or
        ``time - len(offset) + 1`` rows without it). ``batch_size`` bounds memory
        and gives the same result as one pass.
        """
        encoder = self.encoder(session_id)
        was_training = encoder.training
        encoder.eval()
        try:
            inputs = inputs.to(self.device, torch.float32)
            if inputs.dim() == 3:
                chunks = inputs.split(batch_size or len(inputs))
                return torch.cat([self.embed(encoder, chunk) for chunk in chunks])
            if inputs.dim() != 2:
                raise ValueError(f"transform expects (time, neurons) or (batch, neurons, "
                                 f"window), got shape {tuple(inputs.shape)}.")
            return transform_recording(encoder, inputs, pad_before_transform, batch_size)
        finally:
            encoder.train(was_training)


def check_optimizer_state(state: Any, num_parameters: int) -> None:
    """Raise ``ValueError`` unless ``state`` is an ``Optimizer.state_dict()`` over
    ``num_parameters`` parameters (torch checks the rest when it is loaded)."""
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not isinstance(groups, list) or not isinstance(state.get("state"), dict) \
            or not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
        raise ValueError("the optimizer state is not an optimizer state_dict (a dict with "
                         "'state' and 'param_groups' lists of 'params').")
    found = sum(len(group["params"]) for group in groups)
    if found != num_parameters:
        raise ValueError(f"the optimizer state covers {found} parameters, but the model and "
                         f"criterion have {num_parameters}.")


def slides_over_recording(model: nn.Module) -> bool:
    """Whether embedding a whole recording at once equals embedding every window.

    True for convolutional models with one output per time step (``subsample ==
    1``) without active dropout: dropout draws one mask per input, so a shared
    recording would correlate the masks of overlapping windows.
    """
    if getattr(model, "subsample", None) != 1:
        return False
    return not (model.training and any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
                                       for m in model.modules()))


def _cuda_rng_state() -> dict:
    if not torch.cuda.is_available():
        return {}
    return {"cuda_rng": torch.stack(torch.cuda.get_rng_state_all())}


#: Output steps per forward pass when no batch size is given: a few MB of activations
#: per layer instead of the whole recording's (and faster, as the chunk stays in cache).
SLIDING_CHUNK = 8192
#: The same for models that are fed one window per output (they copy each window).
WINDOWED_CHUNK = 1024


def transform_recording(encoder: nn.Module, recording: torch.Tensor, pad: bool,
                        batch_size: int | None) -> torch.Tensor:
    """Embed every admissible time step of ``recording (time, neurons)``.

    Returns ``(time, num_output)`` with ``pad`` (edge padding) or ``(time -
    len(offset) + 1, num_output)`` without. The recording is processed in chunks of
    ``batch_size`` output steps (a default when ``None``); each chunk is cut with
    its own padding, so the padded recording is never materialised.
    """
    offset = encoder.get_offset()
    length = len(offset)
    num_out = len(recording) if pad else len(recording) - length + 1
    if num_out < 1:
        raise ValueError(f"The recording has {len(recording)} samples, fewer than the "
                         f"model's receptive field of {length}; use pad_before_transform=True.")
    sliding = getattr(encoder, "subsample", None) == 1
    # cuDNN convolutions are fast on long sequences; only the CPU gains from GEMMs.
    fast = recording.device.type == "cpu" and time_major.supports(encoder)
    chunk = batch_size or (SLIDING_CHUNK if sliding else WINDOWED_CHUNK)
    shift = offset.left if pad else 0
    outputs = []
    for begin in range(0, num_out, chunk):
        end = min(begin + chunk, num_out)
        segment = _segment(recording, begin - shift, end + length - 1 - shift)
        if fast:
            outputs.append(time_major.embed(encoder, segment).float())
        elif sliding:
            out = encoder(segment.T.contiguous()[None])
            outputs.append(out.reshape(1, out.shape[1], -1)[0].T.float())
        else:
            windows = segment.unfold(0, length, 1)
            out = encoder(windows)
            outputs.append(out.reshape(len(windows), -1).float())
    return torch.cat(outputs)


def _segment(recording: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows ``start..stop-1`` of ``recording (time, neurons)``, edge-padded outside it."""
    if start >= 0 and stop <= len(recording):
        return recording[start:stop]
    rows = torch.arange(start, stop, device=recording.device).clamp_(0, len(recording) - 1)
    return recording[rows]
