"""Sampling and training-step time of every sampling mode, at several recording lengths.

For each mode and length the script builds the dataset, an ``offset10-model`` (32
hidden units, 8 outputs) and the loader, then reports

* ``build_ms``: one-time construction of the sampler (sorted labels, neighbour
  grids, class member lists), triggered by the first ``loader.sampler`` access;
* ``sample_ms``: median time of ``loader.get_indices(batch_size)`` (indices only);
* ``step_ms``: median time of a full training step: indices, window gathering
  (``loader.load``) and ``solver.step`` (forward, InfoNCE, backward, Adam).

Medians are over ``--steps`` repetitions after ``--warmup`` unmeasured ones. On CUDA
every measurement ends with ``torch.cuda.synchronize()``.

Usage::

    python benchmarks/bench_sampling.py [--lengths 10000 1000000] [--device cpu]
        [--modes time time_delta_1d ...] [--steps 30] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cebra_pipe.models
import cebra_pipe.solver
from cebra_pipe.data import DatasetCollection, TensorDataset
from cebra_pipe.data.multi_session import ContinuousMultiSessionDataLoader
from cebra_pipe.data.single_session import (
    ContinuousDataLoader,
    DiscreteDataLoader,
    MixedDataLoader,
)

from _worker import walk_labels  # noqa: E402

# ``--clock cpu`` switches to the process's CPU time: on one thread a busy machine
# inflates it far less than wall time (CUDA runs keep the wall clock)
CLOCK = time.perf_counter
MODES = ("time", "time_delta_1d", "time_delta_3d", "time_delta_8d", "time_delta_20d",
         "delta_normal", "discrete", "mixed", "multi_session")
MODE_HELP = {
    "time": "time-contrastive, positive = ref + time_offset",
    "time_delta_1d": "time_delta, 1-D position",
    "time_delta_3d": "time_delta, [position, right, left]",
    "time_delta_8d": "time_delta, 8-D pose-like random walk (_worker.walk_labels)",
    "time_delta_20d": "time_delta, 20-D pose-like random walk",
    "delta_normal": "delta_normal (delta=0.1), 1-D position",
    "discrete": "discrete, 8 classes, uniform prior",
    "mixed": "mixed, 8 classes + 1-D position",
    "multi_session": "multi-session time_delta, 2 sessions x length, 3-D labels",
}


# -- synthetic recordings ------------------------------------------------------------------
def _position(length: int, seed: int) -> torch.Tensor:
    """A rat on a 1.6 m track: reflected random walk with momentum, float32 ``(length,)``."""
    gen = torch.Generator().manual_seed(seed)
    steps = torch.randn(length, generator=gen) * 2e-3
    # smooth the steps (momentum) with a short moving average
    kernel = torch.ones(1, 1, 25) / 25
    velocity = torch.nn.functional.conv1d(steps[None, None], kernel, padding=12)[0, 0]
    walk = torch.cumsum(velocity.double(), 0) * 5
    period = 3.2
    folded = torch.remainder(walk, period)
    return torch.where(folded > 1.6, period - folded, folded).float()


def _labels(length: int, seed: int) -> dict[str, torch.Tensor]:
    position = _position(length, seed)
    velocity = torch.diff(position, prepend=position[:1])
    right = (velocity > 0).float()
    left = (velocity < 0).float()
    gen = torch.Generator().manual_seed(seed + 1)
    bout = torch.randint(0, 8, (length // 50 + 1,), generator=gen)
    return {"position": position,
            "pos_dir": torch.stack([position, right, left], 1),
            "classes": bout.repeat_interleave(50)[:length]}


def _neural(length: int, neurons: int, seed: int) -> torch.Tensor:
    return torch.randn(length, neurons, generator=torch.Generator().manual_seed(seed))


# -- one measurement -----------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(steps):
        start = CLOCK()
        fn()
        _sync(device)
        times.append(CLOCK() - start)
    return 1000 * statistics.median(times)


def _model(neurons: int, device: torch.device):
    return cebra_pipe.models.init("offset10-model", num_neurons=neurons, num_units=32,
                                  num_output=8).to(device)


def _single_session_loader(mode: str, length: int, neurons: int, batch_size: int,
                           device: torch.device, seed: int):
    labels = _labels(length, seed)
    neural = _neural(length, neurons, seed)
    continuous = {"time_delta_1d": labels["position"], "delta_normal": labels["position"],
                  "time_delta_3d": labels["pos_dir"], "mixed": labels["position"]}.get(mode)
    if mode in ("time_delta_8d", "time_delta_20d"):
        continuous = torch.from_numpy(walk_labels(length, int(mode[11:-1]), seed))
    discrete = labels["classes"] if mode in ("discrete", "mixed") else None
    data = TensorDataset(neural, continuous=continuous, discrete=discrete, device=device)
    del neural, labels
    model = _model(neurons, device)
    data.configure_for(model)
    if mode == "discrete":
        loader = DiscreteDataLoader(data, 1, batch_size, prior="uniform", seed=seed)
    elif mode == "mixed":
        loader = MixedDataLoader(data, 1, batch_size, time_offset=10, seed=seed)
    else:
        conditional = {"time": "time", "delta_normal": "delta_normal"}.get(mode, "time_delta")
        loader = ContinuousDataLoader(data, 1, batch_size, conditional=conditional,
                                      time_offset=10, delta=0.1, seed=seed)
    solver = cebra_pipe.solver.init(
        "single-session", model=model,
        criterion=cebra_pipe.models.criterions.FixedCosineInfoNCE(temperature=1.0),
        optimizer=torch.optim.Adam(model.parameters(), lr=3e-4))
    return loader, solver


def _multi_session_loader(length: int, neurons: int, batch_size: int, device: torch.device,
                          seed: int, sessions: int = 2):
    datasets = []
    for s in range(sessions):
        datasets.append(TensorDataset(_neural(length, neurons, seed + s),
                                      continuous=_labels(length, seed + s)["pos_dir"],
                                      device=device))
    data = DatasetCollection(*datasets)
    models = torch.nn.ModuleList([_model(neurons, device) for _ in range(sessions)])
    data.configure_for(models)
    loader = ContinuousMultiSessionDataLoader(data, 1, batch_size, conditional="time_delta",
                                              time_offset=10, seed=seed)
    solver = cebra_pipe.solver.init(
        "multi-session", model=models,
        criterion=cebra_pipe.models.criterions.FixedCosineInfoNCE(temperature=1.0),
        optimizer=torch.optim.Adam(models.parameters(), lr=3e-4))
    return loader, solver


def measure(mode: str, length: int, neurons: int, batch_size: int, device: torch.device,
            steps: int, warmup: int, seed: int = 0) -> dict:
    """Build, sampling and step times (ms) of one mode at one length."""
    start = CLOCK()
    if mode == "multi_session":
        loader, solver = _multi_session_loader(length, neurons, batch_size, device, seed)
    else:
        loader, solver = _single_session_loader(mode, length, neurons, batch_size, device,
                                                seed)
    setup_s = CLOCK() - start
    _sync(device)
    start = CLOCK()
    loader.sampler  # noqa: B018  (builds the sampler once)
    _sync(device)
    build_ms = 1000 * (CLOCK() - start)

    sample_ms = _median_ms(lambda: loader.get_indices(batch_size), steps, warmup, device)

    def train_step():
        solver.step(loader.load(loader.get_indices(batch_size)))

    solver.model.train()
    step_ms = _median_ms(train_step, steps, warmup, device)
    with torch.no_grad():
        loss = float(solver.compute_loss(loader.load(loader.get_indices(batch_size)))[0])
    gc.collect()
    return {"mode": mode, "length": length, "neurons": neurons, "batch_size": batch_size,
            "device": str(device), "build_ms": build_ms, "sample_ms": sample_ms,
            "step_ms": step_ms, "sample_fraction": sample_ms / step_ms,
            "setup_s": setup_s, "loss_finite": math.isfinite(loss)}


# -- command line --------------------------------------------------------------------------
def _table(rows: list[dict]) -> str:
    header = (f"{'mode':<15} {'length':>9} {'build ms':>10} {'sample ms/step':>15} "
              f"{'train ms/step':>14} {'sampling %':>11}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['mode']:<15} {r['length']:>9} {r['build_ms']:>10.1f} "
                     f"{r['sample_ms']:>15.2f} {r['step_ms']:>14.2f} "
                     f"{100 * r['sample_fraction']:>10.0f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--device", default="cpu",
                        help="cpu, cuda, cuda:N or cuda_if_available")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--neurons", type=int, default=120)
    parser.add_argument("--steps", type=int, default=30, help="measured repetitions")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured repetitions")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    device = cebra_pipe.solver.resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": str(device), "python": platform.python_version(),
            "machine": platform.machine(), "batch_size": args.batch_size,
            "neurons": args.neurons, "model": "offset10-model", "num_units": 32,
            "steps": args.steps, "warmup": args.warmup, "clock": args.clock}
    print(f"# torch {info['torch']}, {info['threads']} thread(s), device {device}, "
          f"batch {args.batch_size}, {args.neurons} neurons, offset10-model/32 units, "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    for mode in args.modes:
        print(f"#   {mode:<15} {MODE_HELP[mode]}")
    rows = []
    for length in args.lengths:
        for mode in args.modes:
            row = measure(mode, length, args.neurons, args.batch_size, device, args.steps,
                          args.warmup)
            rows.append(row)
            print(f"  {mode:<15} {length:>9}: build {row['build_ms']:.1f} ms, sample "
                  f"{row['sample_ms']:.2f} ms, step {row['step_ms']:.2f} ms", flush=True)
    print()
    print(_table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps({"info": info, "results": rows}, indent=2))
        tmp.replace(args.json)
    return rows


if __name__ == "__main__":
    main()
