"""Train the solvers of several seeds in lock-step: a batched ensemble.

``K`` solvers of identical architecture (same model and criterion shapes, same
optimizer and hyper-parameters; different initial weights and each with its own
loader, i.e. its own sampler generator) are trained together:

1. their parameters are stacked into ``(K, ...)`` leaves
   (``torch.func.stack_module_state``) and one optimizer of the members' class
   updates the stacked tensors. The supported optimizers are elementwise, so a
   stacked Adam is K independent Adams;
2. each step every member draws its own batch from its own loader and the K
   losses are computed (see *backends*); the gradient of member ``k``'s loss lands
   in row ``k`` of the stacked gradients, and one optimizer step updates all;
3. the K solvers get their own parameters and optimizer state back (and their loss
   history and log) at the end, at checkpoints and before callbacks, so each solver
   afterwards is what training it alone would have produced.

Backends
--------
``"vmap"``
    One ``torch.func.vmap`` over ``functional_call`` of the members' losses, summed,
    and one backward: the K models run as one batched convolution (vmap turns
    batched convolution weights into a grouped convolution, ``groups=K``). Few,
    large kernels, which is what a GPU wants. Results equal the solo runs to float
    tolerance (the grouped convolution sums in another order).
``"loop"``
    Each member's forward and backward run in turn, through its own solver's code
    and the same kernels as a solo run, with its parameters and gradients being
    views of its rows of the stacked tensors; members are bit-identical to solo
    training on the CPU, and the optimizer update is shared. On the CPU, which is
    compute bound for these models, this is faster than ``vmap`` (oneDNN's grouped
    convolution is about twice as slow as K dense ones; see
    ``benchmarks/bench_ensemble.py``). It also supports what ``vmap`` cannot:
    dropout (each member keeps its own torch RNG stream, as in a solo run) and
    multi-session batches (per-member session permutations).
``"auto"``
    ``"loop"`` on the CPU, for multi-session solvers and for models with active
    dropout; ``"vmap"`` otherwise (CUDA, MPS). Batches ``vmap`` cannot take (full
    batches, batches so large that the criterion works in chunks) run in the loop.

Checkpoints are written per member, in the solo format (``Solver.save_checkpoint``
into that member's own folder), so a member's folder can be resumed by an ensemble
or by a solo ``Solver.fit``. On resume every member restores its newest
checkpoint; members that are behind (a job killed while the K checkpoints of one
step were being written) are first advanced together to the most advanced
member's step, then all continue in lock-step. Resuming is therefore
bit-identical to an uninterrupted run for the ``loop`` backend.

The per-step statistics stay on the device (``(sync_every, K, 4)`` buffer) and are
read every ``sync_every`` steps; nothing in a step waits for the host.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from cebra_pipe.data.datatypes import Batch
from cebra_pipe.models import criterions
from cebra_pipe.solver.base import LOG_KEYS, Solver, check_losses
from cebra_pipe.solver.multi_session import MultiSessionSolver
from cebra_pipe.solver.progress import progress

BACKENDS = ("auto", "vmap", "loop")
# Optimizers whose update of each element depends only on that element's gradient
# and state: stacking K parameter sets changes nothing for them.
_ELEMENTWISE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop,
                torch.optim.Adagrad)
# Optimizer state entries shared by all elements of a parameter (not per element).
_SHARED_STATE = ("step",)


class _Objective(nn.Module):
    """One solver's loss as a module over (model, criterion), for ``functional_call``.

    ``forward(batch)`` returns ``(loss, stats)`` with ``stats (3,) = [align,
    uniform, loss]`` (the first three ``LOG_KEYS``), as ``Solver.step`` records them.
    """

    def __init__(self, solver: Solver):
        super().__init__()
        self.model, self.criterion = solver.model, solver.criterion
        object.__setattr__(self, "solver", solver)  # not a submodule: no duplicate params

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        loss, align, uniform = self.solver.compute_loss(batch)
        return loss, torch.stack([align, uniform, loss]).detach()


class _MemberRNG:
    """Per-member torch RNG streams (they drive dropout), swapped in around a forward.

    A solo run draws dropout masks from torch's global RNG; here each member gets
    its own copy of that state, so the ``loop`` backend reproduces solo dropout.
    """

    def __init__(self, device: torch.device, seeds: Sequence[int | None]):
        self.cuda = device if device.type == "cuda" else None
        current = self.get()
        self.states = [current if seed is None else self._seeded(seed) for seed in seeds]
        self.set(current)

    def _seeded(self, seed: int) -> tuple:
        torch.manual_seed(int(seed))
        return self.get()

    def get(self) -> tuple:
        cuda = torch.cuda.get_rng_state(self.cuda) if self.cuda is not None else None
        return torch.get_rng_state(), cuda

    def set(self, state: tuple) -> None:
        torch.set_rng_state(state[0])
        if self.cuda is not None and state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.cuda)

    @contextlib.contextmanager
    def member(self, index: int):
        """Make member ``index``'s stream the global RNG inside the block."""
        self.set(self.states[index])
        try:
            yield
        finally:
            self.states[index] = self.get()


class _Stack:
    """The parameters, gradients and optimizer state of some members as ``(K, ...)``.

    While attached, every member's parameter is a view of its row of a stacked
    leaf (``param.data = stacked[k]``) and its ``.grad`` a view of that row of the
    stacked gradient: a member's own forward and backward (its solo code path,
    solo kernels) accumulate in place into the stacked gradient, exactly as
    ``DistributedDataParallel``'s gradient-as-bucket-view does, and one optimizer
    step on the stacked leaves updates every member. :meth:`detach` gives the
    members their own tensors and optimizer state again (for checkpoints,
    callbacks and the end of training).

    Parameters
    ----------
    solvers
        The members (already checked to be compatible).
    """

    def __init__(self, solvers: Sequence[Solver]):
        self.solvers = list(solvers)
        self.objectives = [_Objective(s) for s in self.solvers]
        params, _ = stack_module_state(self.objectives)
        self.params: dict[str, torch.Tensor] = params  # name -> (K, ...) leaf
        self.names = list(params)
        self.grads = {name: torch.zeros_like(param) for name, param in params.items()}
        for name, param in params.items():
            param.grad = self.grads[name]
        self._members = [dict(o.named_parameters()) for o in self.objectives]
        self.optimizer = _like(self.solvers[0].optimizer, [params[n] for n in self.names])
        self._stack_optimizer_state()
        self.attach()

    @torch.no_grad()
    def attach(self) -> None:
        """Make the members' parameters and gradients views of the stacked rows."""
        for k, members in enumerate(self._members):
            for name, param in members.items():
                self.params[name][k].copy_(param)  # a callback may have changed it
                param.data = self.params[name][k]
                param.grad = self.grads[name][k]

    @torch.no_grad()
    def detach(self) -> None:
        """Give each member its own copy of its parameters, gradients, optimizer state."""
        for k, (solver, members) in enumerate(zip(self.solvers, self._members)):
            for name, param in members.items():
                stacked = self.params[name]
                param.data = stacked[k].clone()
                param.grad = self.grads[name][k].clone()
                state = self.optimizer.state.get(stacked)
                if state:
                    solver.optimizer.state[param] = {key: _slice_entry(key, value, k)
                                                     for key, value in state.items()}

    def zero_grad(self) -> None:
        """Zero the stacked gradients in place (the members' views stay attached)."""
        for grad in self.grads.values():
            grad.zero_()

    @torch.no_grad()
    def temperatures(self) -> torch.Tensor:
        """``(K,)`` current temperature of each member's criterion (as ``Solver.step``)."""
        values = [1.0 / s.criterion.inverse_temperature() for s in self.solvers]
        if isinstance(values[0], torch.Tensor):
            return torch.stack(values)
        first = self.params[self.names[0]]
        # A fixed temperature, equal for all members (checked): a fill, not a copy
        # from the host, so a CUDA step does not wait.
        return torch.full((len(values),), values[0], dtype=first.dtype, device=first.device)

    def _stack_optimizer_state(self) -> None:
        for name in self.names:
            states = [s.optimizer.state.get(m[name], {})
                      for s, m in zip(self.solvers, self._members)]
            if not any(states):
                continue
            keys = set(states[0])
            if any(set(state) != keys for state in states):
                raise ValueError(f"The members' optimizer states of {name!r} differ in kind "
                                 "(were they trained for different numbers of steps?).")
            self.optimizer.state[self.params[name]] = {
                key: _stack_entry(name, key, [state[key] for state in states])
                for key in states[0]}


def _like(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]
          ) -> torch.optim.Optimizer:
    """A new optimizer of ``optimizer``'s class and settings over ``params``."""
    cls = type(optimizer)
    # defaults may hold derived entries the constructor does not take (AdamW).
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    return cls([{"params": params, **_hyper(optimizer)}], **kwargs)


def _stack_entry(name: str, key: str, values: list):
    """One optimizer state entry of K members: stacked if per element, else shared."""
    first = values[0]
    per_element = isinstance(first, torch.Tensor) and key not in _SHARED_STATE
    if per_element:
        return torch.stack([v.detach() for v in values])
    same = all(torch.equal(first, v) if isinstance(first, torch.Tensor) else first == v
               for v in values[1:])
    if not same:
        raise ValueError(f"The members' optimizer state {key!r} of {name!r} differs "
                         f"({[getattr(v, 'tolist', lambda v=v: v)() for v in values]}); "
                         "members trained in lock-step must be at the same step.")
    return first.clone() if isinstance(first, torch.Tensor) else first


def _slice_entry(key: str, value, k: int):
    """Member ``k``'s part of one stacked optimizer state entry."""
    if isinstance(value, torch.Tensor) and key not in _SHARED_STATE:
        return value[k].clone()
    return value.clone() if isinstance(value, torch.Tensor) else value


def _has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
               for m in model.modules())


_PLAIN = (bool, int, float, str, tuple, type(None))


def _signature(solver: Solver) -> list[tuple]:
    """What must agree between members: parameter names, shapes, dtypes, devices, and
    each module's class and plain settings (``normalize``, kernel sizes, a fixed
    temperature, ...), which ``vmap`` takes from the first member for all."""
    objective = _Objective(solver)
    params = [(name, tuple(p.shape), p.dtype, p.device)
              for name, p in objective.named_parameters()]
    modules = [(name, type(m).__name__,
                sorted((k, v) for k, v in vars(m).items()
                       if isinstance(v, _PLAIN) and k != "training"
                       and (not k.startswith("_") or k == "_temperature")))
               for name, m in objective.named_modules()]
    inverse = solver.criterion.inverse_temperature()
    fixed = None if isinstance(inverse, torch.Tensor) else float(inverse)
    return params + modules + [("inverse_temperature", fixed)]


def _check_members(solvers: Sequence[Solver]) -> None:
    """Clear errors for ensembles that cannot be trained in lock-step."""
    if not solvers:
        raise ValueError("An ensemble needs at least one solver, got an empty list.")
    first = solvers[0]
    for k, solver in enumerate(solvers):
        if not isinstance(solver, Solver):
            raise TypeError(f"solvers[{k}] is a {type(solver).__name__}, not a Solver.")
        if type(solver) is not type(first):
            raise TypeError(f"solvers[{k}] is a {type(solver).__name__} but solvers[0] is a "
                             f"{type(first).__name__}; an ensemble needs one kind of solver.")
        if any(True for _ in itertools.chain(solver.model.buffers(), solver.criterion.buffers())):
            raise ValueError(f"solvers[{k}]: models or criteria with buffers (e.g. BatchNorm) "
                             "cannot be trained as an ensemble.")
        _check_optimizer(k, solver, first)
        if _signature(solver) != _signature(first):
            raise ValueError(f"solvers[{k}] has a different architecture than solvers[0] "
                             f"(parameter names/shapes/dtypes/devices differ: "
                             f"{_first_difference(_signature(first), _signature(solver))}); "
                             "an ensemble needs identical models and criteria.")
        if solver is not first and any(a is b for a, b in zip(solver.model.parameters(),
                                                               first.model.parameters())):
            raise ValueError(f"solvers[{k}] shares its model with solvers[0]; each member "
                             "needs its own model.")


def _first_difference(a: list, b: list) -> str:
    for x, y in itertools.zip_longest(a, b):
        if x != y:
            return f"{x} vs {y}"
    return "none"


def _check_optimizer(k: int, solver: Solver, first: Solver) -> None:
    optimizer = solver.optimizer
    if not isinstance(optimizer, _ELEMENTWISE):
        raise TypeError(f"solvers[{k}] uses {type(optimizer).__name__}; an ensemble supports "
                        f"the elementwise optimizers {[c.__name__ for c in _ELEMENTWISE]}.")
    if type(optimizer) is not type(first.optimizer):
        raise TypeError(f"solvers[{k}] uses {type(optimizer).__name__} but solvers[0] uses "
                        f"{type(first.optimizer).__name__}.")
    if len(optimizer.param_groups) != 1:
        raise ValueError(f"solvers[{k}]: an ensemble needs optimizers with one parameter "
                         f"group, got {len(optimizer.param_groups)}.")
    hyper = _hyper(optimizer)
    if hyper != _hyper(first.optimizer):
        raise ValueError(f"solvers[{k}] has optimizer settings {hyper} but solvers[0] has "
                         f"{_hyper(first.optimizer)}; they must be identical.")
    owned = {id(p) for p in _Objective(solver).parameters()}
    optimized = {id(p) for p in optimizer.param_groups[0]["params"]}
    if owned != optimized or any(not p.requires_grad for p in _Objective(solver).parameters()):
        raise ValueError(f"solvers[{k}]: the optimizer must train every parameter of the "
                         "model and criterion (frozen or extra parameters are not supported).")


def _hyper(optimizer: torch.optim.Optimizer) -> dict:
    return {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}


def resolve_backend(backend: str, solvers: Sequence[Solver]) -> str:
    """The backend ``"auto"`` stands for with these members (see the module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    first = solvers[0]
    loop_only = None
    if isinstance(first, MultiSessionSolver):
        loop_only = "multi-session solvers draw a different session permutation per member"
    elif _has_dropout(first.model):
        loop_only = "the model has dropout, which vmap cannot draw as a solo run would"
    if backend == "vmap" and loop_only:
        raise ValueError(f"backend='vmap' is not possible here: {loop_only}; use 'loop'.")
    if backend != "auto":
        return backend
    return "loop" if loop_only or first.device.type == "cpu" else "vmap"


class EnsembleSolver:
    """Trains ``solvers`` together; afterwards each holds its own trained state.

    Parameters
    ----------
    solvers
        ``K >= 1`` solvers of one class with identical model and criterion
        architectures, on one device, each with its own optimizer of one
        elementwise class (Adam, AdamW, SGD, RMSprop, Adagrad) and identical
        hyper-parameters.
    backend
        ``"auto"``, ``"vmap"`` or ``"loop"`` (module docstring).
    sync_every
        Steps between reads of the on-device statistics (default: the first
        solver's).

    Examples
    --------
    >>> ensemble = EnsembleSolver([solver_a, solver_b])          # doctest: +SKIP
    >>> ensemble.fit([loader_a, loader_b])                        # doctest: +SKIP
    >>> solver_a.history[-1], solver_b.history[-1]                # doctest: +SKIP
    """

    def __init__(self, solvers: Sequence[Solver], backend: str = "auto",
                 sync_every: int | None = None):
        solvers = list(solvers)
        _check_members(solvers)
        if any(getattr(s, "regularizer", None) is not None for s in solvers):
            # The stacked step computes the members' plain losses only.
            raise ValueError("EnsembleSolver does not apply loss regularizers (e.g. "
                             "jacobian_regularization); train such seeds one by one.")
        self.solvers = solvers
        self.backend = resolve_backend(backend, solvers)
        self.sync_every = max(1, int(sync_every or solvers[0].sync_every))
        self.tqdm_on = any(s.tqdm_on for s in solvers)

    def __len__(self) -> int:
        return len(self.solvers)

    @property
    def device(self) -> torch.device:
        return self.solvers[0].device

    # -- training -----------------------------------------------------------------------
    def fit(self, loaders: Sequence, *,
            checkpoint_dirs: Sequence[str | os.PathLike] | None = None,
            checkpoint_frequency: int | None = None, resume: bool = False,
            callback: Callable[[int, EnsembleSolver], None] | None = None,
            callback_frequency: int | None = None,
            rng_seeds: Sequence[int | None] | None = None) -> EnsembleSolver:
        """Train member ``k`` on ``loaders[k]``'s batches (``len(loaders[k])`` steps each).

        Parameters
        ----------
        loaders
            One loader per member, all of the same length; each member's batches
            come from its own loader (its own sampler generator).
        checkpoint_dirs, checkpoint_frequency
            One folder per member; every ``checkpoint_frequency`` steps each member's
            state is written there in the solo checkpoint format.
        resume
            Continue each member from the newest checkpoint in its folder.
        callback, callback_frequency
            ``callback(step, ensemble)`` every that many steps; the member solvers
            hold the current state when it is called.
        rng_seeds
            Seed of member ``k``'s torch RNG stream (dropout), as ``torch.manual_seed``
            before a solo fit; ``None`` (or a ``None`` entry) starts from the current
            global state. torch's global RNG is left as it was.
        """
        loaders = list(loaders)
        total = self._check_loaders(loaders)
        dirs = self._check_dirs(checkpoint_dirs)
        seeds = [None] * len(self) if rng_seeds is None else list(rng_seeds)
        if len(seeds) != len(self):
            raise ValueError(f"rng_seeds has {len(seeds)} entries for {len(self)} solvers.")
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            rng = _MemberRNG(self.device, seeds)
            run = _Run(self, loaders, rng, dirs, checkpoint_frequency, callback,
                       callback_frequency, total)
            try:
                steps = run.resume() if resume and dirs else [0] * len(self)
                run.catch_up(steps)
                run.train(list(range(len(self))), steps[0], total)
            finally:
                run.bar.close()
        return self

    def _check_loaders(self, loaders: list) -> int:
        if len(loaders) != len(self):
            raise ValueError(f"Got {len(loaders)} loaders for {len(self)} solvers; each "
                             "member needs its own loader.")
        lengths = {len(loader) for loader in loaders}
        if len(lengths) != 1:
            raise ValueError(f"The loaders have different lengths {sorted(lengths)}; members "
                             "of an ensemble train for the same number of steps.")
        if len({id(loader) for loader in loaders}) != len(loaders):
            raise ValueError("The same loader was given to several members; each member "
                             "needs its own loader (its own sampler generator).")
        return lengths.pop()

    def _check_dirs(self, dirs) -> list | None:
        if dirs is None:
            return None
        dirs = list(dirs)
        if len(dirs) != len(self):
            raise ValueError(f"checkpoint_dirs has {len(dirs)} folders for {len(self)} "
                             "solvers; give one folder per member.")
        if len({os.path.abspath(d) for d in dirs}) != len(dirs):
            raise ValueError("checkpoint_dirs must be distinct folders, one per member.")
        return dirs

    # -- one step -----------------------------------------------------------------------
    def step(self, stack: _Stack, batches: list, rng: _MemberRNG,
             members: list[int]) -> torch.Tensor:
        """One lock-step update of ``stack``; returns ``(K, 4)`` statistics on the device."""
        stack.zero_grad()
        if self.backend == "vmap" and _vmappable(batches[0]):
            losses, stats = _vmap_losses(stack, batches)
            # d(sum)/d(loss_k) = 1: each member gets exactly its own gradient.
            losses.sum().backward()
        else:
            stats = _loop_backward(stack, batches, rng, members)
        stack.optimizer.step()
        # Solo runs log the temperature after the update; so do we.
        return torch.cat([stats, stack.temperatures()[:, None]], dim=1)


def _loop_backward(stack: _Stack, batches: list, rng: _MemberRNG,
                   members: list[int]) -> torch.Tensor:
    """Forward and backward of each member in turn: its solo code path and kernels.

    The member's parameters are views of the stacked rows, so its backward
    accumulates straight into the stacked gradient. One backward per member right
    after its forward keeps one member's activations alive at a time (less memory,
    a warm cache). Returns ``(K, 3)`` statistics.
    """
    stats = []
    for solver, batch, member in zip(stack.solvers, batches, members):
        with rng.member(member):
            loss, align, uniform = solver.compute_loss(batch)
        loss.backward()
        stats.append(torch.stack([align, uniform, loss]).detach())
    return torch.stack(stats)


def _vmappable(batch) -> bool:
    """Whether the vmap backend can take this batch.

    Plain window batches only: a full batch (the whole recording) is embedded with a
    sliding convolution, and very large batches switch the criterion to a chunked
    custom autograd function that vmap cannot batch; both run in the loop instead.
    """
    if type(batch) is not Batch:
        return False
    pairs = len(batch.reference) * len(batch.negative)
    return not criterions.takes_chunks(pairs, batch.reference.device)


def _vmap_losses(stack: _Stack, batches: list[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
    """All members' losses in one vmapped ``functional_call`` over stacked batches."""
    has_time = batches[0].positive_time is not None
    fields = ["reference", "positive", "negative"] + (["positive_time"] if has_time else [])
    device = stack.params[stack.names[0]].device
    tensors = [torch.stack([getattr(b, f).to(device) for b in batches]) for f in fields]
    objective = stack.objectives[0]

    def one(params: dict, *windows: torch.Tensor):
        return functional_call(objective, params, (Batch(*windows),))

    return vmap(one)(stack.params, *tensors)


class _Run:
    """State of one ``EnsembleSolver.fit`` call: loaders, statistics, checkpoints."""

    def __init__(self, ensemble: EnsembleSolver, loaders: list, rng: _MemberRNG,
                 dirs: list | None, checkpoint_frequency: int | None, callback,
                 callback_frequency: int | None, total: int):
        self.ensemble, self.loaders, self.rng, self.dirs = ensemble, loaders, rng, dirs
        self.checkpoint_frequency = checkpoint_frequency if dirs else None
        self.callback, self.callback_frequency = callback, callback_frequency
        self.total = total
        self.bar = progress(total, enabled=ensemble.tqdm_on,
                            desc=f"cebra_pipe ensemble of {len(ensemble)}")

    def resume(self) -> list[int]:
        """Restore each member's newest checkpoint; returns the members' steps."""
        steps = []
        for k, (solver, loader, folder) in enumerate(zip(self.ensemble.solvers, self.loaders,
                                                         self.dirs)):
            # load_checkpoint sets the global RNG to the member's saved stream.
            step = solver.load_checkpoint(folder, loader)
            if step:
                self.rng.states[k] = self.rng.get()
            steps.append(step)
        self.bar.n = min(steps)
        self.bar.refresh()
        return steps

    def catch_up(self, steps: list[int]) -> None:
        """Advance the members that are behind until all are at the same step."""
        while len(set(steps)) > 1:
            low = min(steps)
            target = min(s for s in steps if s > low)
            behind = [k for k, s in enumerate(steps) if s == low]
            self.train(behind, low, target, advance_bar=False)
            for k in behind:
                steps[k] = target
        self.bar.n = steps[0] if steps else 0

    def train(self, members: list[int], start: int, stop: int,
              advance_bar: bool = True) -> None:
        """Train ``members`` in lock-step from step ``start`` to ``stop``."""
        if stop <= start:
            return
        ensemble = self.ensemble
        solvers = [ensemble.solvers[k] for k in members]
        for solver in solvers:
            solver.model.train()
        stack = _Stack(solvers)
        batches = [itertools.islice(iter(self.loaders[k]), stop - start) for k in members]
        buffer = torch.empty((ensemble.sync_every, len(members), len(LOG_KEYS)),
                             device=ensemble.device)
        pending = 0
        try:
            for step in range(start + 1, stop + 1):
                buffer[pending] = ensemble.step(stack, [next(b) for b in batches], self.rng,
                                                members)
                pending += 1
                checkpoint = (bool(self.checkpoint_frequency)
                              and step % self.checkpoint_frequency == 0)
                call = (self.callback is not None and bool(self.callback_frequency)
                        and step % self.callback_frequency == 0)
                if pending == ensemble.sync_every or step == stop or checkpoint or call:
                    self._flush(solvers, buffer[:pending], advance_bar)
                    pending = 0
                if checkpoint or call:
                    # Members with their own tensors: a checkpoint then holds one
                    # member's weights, not the whole stacked storage.
                    stack.detach()
                    if checkpoint:
                        self._save(members, step)
                    if call and len(members) == len(ensemble):
                        self.callback(step, ensemble)
                    stack.attach()
        finally:
            # Also when interrupted: the members hold the steps taken so far, as solo
            # solvers would.
            self._flush(solvers, buffer[:pending], advance_bar)
            stack.detach()

    def _flush(self, solvers: list[Solver], stats: torch.Tensor, advance_bar: bool) -> None:
        """Append ``stats (steps, K, 4)`` to each member's history and log."""
        if len(stats) == 0:
            return
        rows = stats.tolist()  # the only host read: every sync_every steps
        for k, solver in enumerate(solvers):
            check_losses([row[k][2] for row in rows], len(solver.history) + 1,
                         f"training of ensemble member {k}")
        for k, solver in enumerate(solvers):
            for row in rows:
                for key, value in zip(LOG_KEYS, row[k]):
                    solver.log[key].append(value)
                solver.history.append(row[k][2])
        if advance_bar:
            self.bar.set_postfix(loss=" ".join(f"{r[2]:.3f}" for r in rows[-1]))
            self.bar.update(len(rows))

    def _save(self, members: list[int], step: int) -> None:
        for k in members:
            # save_checkpoint records the global RNG: make it this member's stream.
            with self.rng.member(k):
                self.ensemble.solvers[k].save_checkpoint(self.dirs[k], step, self.loaders[k])
