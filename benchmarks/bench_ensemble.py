"""Training several seeds at once: one seed, five in sequence, five as an ensemble.

An ``offset10-model`` (120 neurons, 32 hidden units, 8 outputs), batch 512, on a
10,000-step recording with a continuous 1-D label (``time_delta``, ``time_offsets=10``),
fixed temperature, Adam (lr 3e-4), as in ``compare_reference.py``'s step benchmark.
Each row is one way of training:

* ``solo``: one seed, ``Solver.fit``;
* ``sequential``: five seeds, one ``Solver.fit`` after the other;
* ``ensemble-loop`` / ``ensemble-vmap``: five seeds in lock-step with
  :class:`cebra_pipe.solver.ensemble.EnsembleSolver` and that backend. ``vmap`` of a
  convolution whose weights are batched runs as one grouped convolution
  (``groups = seeds``), so this row also measures the grouped-convolution approach.

Columns: ``ms_per_step`` is the time for every seed of the row to advance one step
(sampling, window gathering, forward, backward, Adam), measured between step
``warmup`` and the last step, best of ``repeats``; ``ratio_to_one_seed`` divides it
by the ``solo`` row. ``max_abs_diff_vs_solo`` is the largest difference between an
ensemble member's embedding of the first 2,000 time steps and that of the same seed
trained alone (the ``sequential`` row): 0 means bit-identical.

On the CPU the network is compute bound (the 5 seeds' FLOPs do not shrink by being
batched), so five seeds cost about five times one. Measured with 2 threads on the
project's 2-core AMD EPYC machine: solo 18.1 ms, sequential 88.8 ms (4.9x),
ensemble-loop 81.5 ms (4.5x, bit-identical), ensemble-vmap 164.8 ms (9.1x; oneDNN's
grouped convolution). The ensemble's win (one batched network instead of K small
ones) is expected on a GPU (``--device cuda``), where a solo step of this small
network is dominated by kernel launches; not yet measured there.

With ``reference_python`` the reference ``cebra`` (own environment; never imported
here) is timed for one seed, same settings, in a subprocess (``library=reference``).

Usage::

    python benchmarks/bench_ensemble.py [--quick] [--threads 2] [--seeds 5]
        [--device cpu] [--json out.json] [--reference-python /work/refenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cebra_pipe.models
import cebra_pipe.solver
from cebra_pipe.data import TensorDataset
from cebra_pipe.data.single_session import ContinuousDataLoader
from cebra_pipe.models import criterions
from cebra_pipe.solver import EnsembleSolver

LENGTH, NEURONS, BATCH, UNITS, OUTPUT, OFFSET, LR = 10_000, 120, 512, 32, 8, 10, 3e-4


# -- data and members ----------------------------------------------------------------------
def recording(length: int = LENGTH, neurons: int = NEURONS) -> tuple[np.ndarray, np.ndarray]:
    """Random activity ``(length, neurons)`` and a slow position ``(length, 1)``."""
    rng = np.random.default_rng(0)
    position = ((np.sin(np.arange(length) / 200.0) + 1) * 0.8).astype(np.float32)[:, None]
    return rng.normal(size=(length, neurons)).astype(np.float32), position


def member(seed: int, steps: int, data: tuple[np.ndarray, np.ndarray], device: str):
    """``(solver, loader)`` of one seed: weights from ``seed``, sampler from ``100 + seed``."""
    torch.manual_seed(seed)
    model = cebra_pipe.models.init("offset10-model", num_neurons=NEURONS, num_units=UNITS,
                                   num_output=OUTPUT)
    criterion = criterions.FixedCosineInfoNCE(1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    solver = cebra_pipe.solver.init("single-session", model=model, criterion=criterion,
                                    optimizer=optimizer).to(device)
    dataset = TensorDataset(data[0], continuous=data[1], device=device)
    dataset.configure_for(model)
    loader = ContinuousDataLoader(dataset, steps, BATCH, conditional="time_delta",
                                  time_offset=OFFSET, seed=100 + seed)
    _ = loader.sampler  # build the nearest-label index now, outside the timed steps
    return solver, loader


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class _Clock:
    """``callback`` that notes the time the first time step ``start`` is reached."""

    def __init__(self, start: int, device: str):
        self.start, self.device, self.t0 = start, device, None

    def __call__(self, step: int, _) -> None:
        if step == self.start and self.t0 is None:
            _sync(self.device)
            self.t0 = time.perf_counter()


def _timed(fit, warmup: int, device: str) -> float:
    """Seconds from step ``warmup`` to the end of ``fit(callback, frequency)``."""
    clock = _Clock(warmup, device)
    fit(clock, warmup)
    _sync(device)
    return time.perf_counter() - clock.t0


# -- the ways of training ------------------------------------------------------------------
def train_solo(seeds: list[int], steps: int, warmup: int, data, device: str):
    """Each seed alone, one after another; returns ``(seconds, solvers)``."""
    seconds, solvers = 0.0, []
    for seed in seeds:
        solver, loader = member(seed, warmup + steps, data, device)
        seconds += _timed(lambda cb, every, s=solver, ld=loader: s.fit(
            ld, callback=cb, callback_frequency=every), warmup, device)
        solvers.append(solver)
    return seconds, solvers


def train_ensemble(seeds: list[int], steps: int, warmup: int, data, device: str,
                   backend: str):
    """All seeds in lock-step; returns ``(seconds, solvers)``."""
    pairs = [member(seed, warmup + steps, data, device) for seed in seeds]
    ensemble = EnsembleSolver([p[0] for p in pairs], backend=backend)
    seconds = _timed(lambda cb, every: ensemble.fit([p[1] for p in pairs], callback=cb,
                                                    callback_frequency=every),
                     warmup, device)
    return seconds, ensemble.solvers


def _max_diff(solvers, reference, data) -> float:
    windows = torch.from_numpy(data[0][:2000])
    return max(float((a.transform(windows) - b.transform(windows)).abs().max())
               for a, b in zip(solvers, reference))


# -- the reference, in its own python ------------------------------------------------------
_REFERENCE = textwrap.dedent("""
    import sys, time
    import numpy as np
    import torch
    import cebra
    steps, warmup, threads = map(int, sys.argv[1:4])
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    neural = rng.normal(size=(10000, 120)).astype("float32")
    position = ((np.sin(np.arange(10000) / 200.0) + 1) * 0.8).astype("float32")[:, None]
    stamps = []
    def fit(n):
        model = cebra.CEBRA(model_architecture="offset10-model", batch_size=512,
                            max_iterations=n, time_offsets=10, device="cpu",
                            conditional="time_delta", learning_rate=3e-4,
                            output_dimension=8, num_hidden_units=32, verbose=False)
        start = time.perf_counter()
        model.fit(neural, position)
        return time.perf_counter() - start
    print(1000 * (fit(warmup + steps) - fit(warmup)) / steps)
""")


def reference_ms(python: str, steps: int, warmup: int, threads: int) -> float:
    done = subprocess.run([python, "-c", _REFERENCE, str(steps), str(warmup), str(threads)],
                          capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


# -- run -------------------------------------------------------------------------------------
def run(reference_python: str | None, quick: bool, threads: int = 2, num_seeds: int = 5,
        device: str = "cpu") -> list[dict]:
    """Time one seed, ``num_seeds`` in sequence and as an ensemble (both backends).

    Parameters
    ----------
    reference_python
        Python of an environment with ``cebra==0.6.1`` (one-seed row); ``None`` skips it.
    quick
        Fewer steps and one repeat (well under a minute on 2 CPU cores).
    threads
        ``torch.set_num_threads`` for the measurements.
    num_seeds
        Seeds of the sequential and ensemble rows.
    device
        Where to train (``"cpu"`` or ``"cuda"``).

    Returns
    -------
    list of dict
        Rows with ``benchmark``, ``library``, ``mode``, ``seeds``, ``ms_per_step``,
        ``ms_per_seed_step``, ``ratio_to_one_seed``, ``max_abs_diff_vs_solo`` and settings.
    """
    steps, warmup, repeats = (10, 3, 1) if quick else (40, 5, 3)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    data = recording()
    seeds = list(range(num_seeds))
    best: dict[str, float] = {}
    solos, members = None, {}
    try:
        for _ in range(repeats):  # interleaved, so a busy moment hits every mode alike
            for mode in ("solo", "sequential", "ensemble-loop", "ensemble-vmap"):
                if mode == "solo":
                    seconds, _ = train_solo(seeds[:1], steps, warmup, data, device)
                elif mode == "sequential":
                    seconds, solos = train_solo(seeds, steps, warmup, data, device)
                else:
                    seconds, members[mode] = train_ensemble(seeds, steps, warmup, data, device,
                                                            mode.split("-")[1])
                best[mode] = min(best.get(mode, float("inf")), 1000 * seconds / steps)
    finally:
        torch.set_num_threads(previous)
    settings = {"timesteps": LENGTH, "neurons": NEURONS, "batch": BATCH, "threads": threads,
                "device": device, "steps": steps, "repeats": repeats}
    rows = []
    for mode, ms in best.items():
        count = 1 if mode == "solo" else num_seeds
        diff = _max_diff(members[mode], solos, data) if mode in members else None
        rows.append({"benchmark": "ensemble", "library": "cebra_pipe", "mode": mode,
                     "seeds": count, "ms_per_step": ms, "ms_per_seed_step": ms / count,
                     "ratio_to_one_seed": ms / best["solo"], "max_abs_diff_vs_solo": diff,
                     **settings})
    if reference_python:
        ms = reference_ms(reference_python, steps, warmup, threads)
        rows.append({"benchmark": "ensemble", "library": "reference", "mode": "solo",
                     "seeds": 1, "ms_per_step": ms, "ms_per_seed_step": ms,
                     "ratio_to_one_seed": ms / best["solo"], "max_abs_diff_vs_solo": None,
                     **settings})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'library':<12}{'mode':<16}{'seeds':>6}{'ms/step':>10}{'ms/seed':>10}"
          f"{'x one seed':>12}{'max |diff|':>12}")
    for row in rows:
        diff = row["max_abs_diff_vs_solo"]
        print(f"{row['library']:<12}{row['mode']:<16}{row['seeds']:>6}"
              f"{row['ms_per_step']:>10.1f}{row['ms_per_seed_step']:>10.1f}"
              f"{row['ratio_to_one_seed']:>12.2f}{'-' if diff is None else f'{diff:.1e}':>12}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps, one repeat (< 60 s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seeds", type=int, default=5, help="seeds in the ensemble")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--reference-python",
                        help="python of an environment with cebra==0.6.1 installed")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = run(args.reference_python, args.quick, threads=args.threads, num_seeds=args.seeds,
               device=args.device)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
