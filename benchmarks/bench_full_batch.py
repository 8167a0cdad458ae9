"""Full-batch training (``batch_size=None``): step time and peak memory.

For recordings of 5,000 and 50,000 time steps x 50 neurons, an ``offset10-model``
(32 hidden units, 8 outputs), ``time_offsets=10`` and a fixed temperature, the script
trains the estimator full-batch, time-contrastive and with a continuous 1-D label
(``time_delta``), and reports per run

* ``ms_per_step``: median time of one training step (time between consecutive
  ``callback(step, solver)`` calls), after ``warmup`` unmeasured steps;
* ``peak_rss_mb``: the process's peak resident memory (``ru_maxrss``), absolute;
* ``peak_rss_delta_mb``: the same minus the peak before this fit (after imports,
  data creation and a 2-step fit on 500 time steps that loads the kernels), i.e.
  what training at this length added.

Every measurement runs in a fresh process. With ``--reference-python`` the reference
``cebra`` package (in its own environment; cebra_pipe never imports it) is measured
the same way at 5,000 steps. Its full batch builds dense ``N x N`` similarity matrices,
about 10 GB at 50,000 steps, so that size runs only with ``--reference-50k``.

Usage::

    python benchmarks/bench_full_batch.py [--quick] [--threads 2] [--passive-omp]
        [--json out.json] [--reference-python /work/refenv/bin/python [--reference-50k]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = (5_000, 50_000)
MODES = ("time", "continuous")
NEURONS = 50

_WORKER = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    import torch

    lib, mode = sys.argv[1], sys.argv[2]
    length, neurons, steps, warmup, threads = map(int, sys.argv[3:8])
    torch.set_num_threads(threads)
    if lib == "reference":
        import cebra
    else:
        import cebra_pipe as cebra

    rng = np.random.default_rng(0)
    neural = rng.normal(size=(length, neurons)).astype("float32")
    position = ((np.sin(np.arange(length) / 200.0) + 1) * 0.8).astype("float32")[:, None]
    labels = () if mode == "time" else (position,)

    def estimator(iterations):
        return cebra.CEBRA(model_architecture="offset10-model", batch_size=None,
                           max_iterations=iterations, time_offsets=10, output_dimension=8,
                           num_hidden_units=32, learning_rate=3e-4, device="cpu",
                           verbose=False)

    # A tiny fit first: the baseline then holds the libraries' one-time memory (code
    # pages, thread pools, kernel caches), and the delta is what this length costs.
    estimator(2).fit(neural[:500], *(label[:500] for label in labels))
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    stamps = []
    model = estimator(warmup + steps)
    start = time.perf_counter()
    model.fit(neural, *labels, callback=lambda step, solver: stamps.append(time.perf_counter()),
              callback_frequency=1)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = np.diff([start] + stamps)[warmup:] * 1000
    print(json.dumps({"ms_per_step": float(np.median(times)),
                      "ms_per_step_mean": float(np.mean(times)),
                      "first_step_ms": float((stamps[0] - start) * 1000),
                      "steps": len(times),
                      "peak_rss_mb": peak_kb / 1024,
                      "peak_rss_delta_mb": (peak_kb - baseline_kb) / 1024}))
""")


def measure(python: str, library: str, mode: str, length: int, steps: int, warmup: int,
            threads: int, timeout: float | None = None, passive_omp: bool = False) -> dict:
    """One row: train in a fresh ``python`` process and read its report.

    ``passive_omp`` sets ``OMP_WAIT_POLICY=passive`` in the worker: idle OpenMP
    threads then sleep instead of spinning, which on a machine shared with other
    jobs keeps each parallel region from waiting for a descheduled thread. A failed
    run (out of memory, or over ``timeout`` seconds) gives a row with ``error``.
    """
    env = dict(os.environ)
    if library == "cebra_pipe":  # import the working tree, installed or not
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if passive_omp:
        env["OMP_WAIT_POLICY"] = "passive"
    row = {"benchmark": f"full_batch_{mode}", "library": library, "timesteps": length,
           "neurons": NEURONS, "threads": threads,
           "omp_wait_policy": env.get("OMP_WAIT_POLICY", "default")}
    command = [python, "-c", _WORKER, library, mode, str(length), str(NEURONS), str(steps),
               str(warmup), str(threads)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                              cwd=tempfile.gettempdir(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**row, "ms_per_step": None, "peak_rss_mb": None,
                "error": f"over the {timeout:.0f} s limit"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return {**row, "ms_per_step": None, "peak_rss_mb": None,
                "error": f"exit {proc.returncode}: {tail[0]}"}
    return {**row, **json.loads(proc.stdout.strip().splitlines()[-1])}


#: Seconds for all of ``--quick``: runs that would end later are cut (and say so).
QUICK_BUDGET_S = 55.0


def _schedule(length: int, quick: bool) -> tuple[int, int]:
    """``(steps, warmup)``: a full batch at 50k takes seconds, so fewer of them.

    ``--quick`` times one step at 50k: the first after the worker's warm-up fit.
    """
    if quick:
        return (3, 1) if length <= 10_000 else (1, 0)
    return (10, 2) if length <= 10_000 else (4, 1)


def run(reference_python: str | None, quick: bool, threads: int = 2,
        reference_50k: bool = False, passive_omp: bool = False) -> list[dict]:
    """Measure cebra_pipe (and the reference) on every mode and length.

    Parameters
    ----------
    reference_python
        Python of an environment with ``cebra==0.6.1``; ``None`` measures cebra_pipe only.
    quick
        Fewer steps, and runs are cut at ``QUICK_BUDGET_S`` seconds in all (a cut run
        gives a row with ``error``).
    threads
        ``torch.set_num_threads`` in each worker.
    reference_50k
        Also run the reference at 50,000 steps (needs ~10 GB for its N x N matrices).
    passive_omp
        ``OMP_WAIT_POLICY=passive`` in every worker (see :func:`measure`).

    Returns
    -------
    list of dict
        One row per run: ``benchmark``, ``library``, ``timesteps``, ``ms_per_step``,
        ``peak_rss_mb``, ``peak_rss_delta_mb`` and the run's settings.
    """
    deadline = time.monotonic() + QUICK_BUDGET_S if quick else None
    rows = []
    for length in LENGTHS:  # the short recordings first: they always fit in --quick
        for mode in MODES:
            steps, warmup = _schedule(length, quick)
            jobs = [(sys.executable, "cebra_pipe")]
            if reference_python and (length <= 10_000 or reference_50k):
                jobs.append((reference_python, "reference"))
            for python, library in jobs:
                timeout = None if deadline is None else max(1.0, deadline - time.monotonic())
                rows.append(measure(python, library, mode, length, steps, warmup, threads,
                                    timeout, passive_omp))
    return rows


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    print(f"{'benchmark':<22}{'library':<12}{'timesteps':>10}{'ms/step':>11}"
          f"{'peak MB':>10}{'delta MB':>10}")
    for row in rows:
        print(f"{row['benchmark']:<22}{row['library']:<12}{row['timesteps']:>10}"
              f"{_fmt(row['ms_per_step'], '.1f'):>11}{_fmt(row['peak_rss_mb'], '.0f'):>10}"
              f"{_fmt(row.get('peak_rss_delta_mb'), '.0f'):>10}"
              + (f"  {row['error']}" if row.get("error") else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps (< 60 s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--reference-python",
                        help="python of an environment with cebra==0.6.1 installed")
    parser.add_argument("--reference-50k", action="store_true",
                        help="also run the reference at 50,000 steps (~10 GB)")
    parser.add_argument("--passive-omp", action="store_true",
                        help="OMP_WAIT_POLICY=passive in the workers (busy, shared machines)")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = run(args.reference_python, args.quick, threads=args.threads,
               reference_50k=args.reference_50k, passive_omp=args.passive_omp)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
