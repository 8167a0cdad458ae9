"""Decoding quality and consistency of cebra_pipe's CEBRA-Behavior vs the reference.

Speed only counts at equal quality. This benchmark fits the CEBRA paper's rat set-up
(``offset10-model``, 3 output dims, temperature 1, lr 3e-4, batch 512, 10 time
offsets, ``conditional="time_delta"``, cosine distance) with both libraries on the
same arrays and scores them identically:

* **data**: the first 80 % in time trains, the last 20 % is held out. Datasets:
  ``synthetic`` (``cebra_pipe.datasets`` ``synthetic-linear-track``, rat1, 120 cells,
  10,000 bins) and ``achilles`` (the real rat in
  ``../shared/data/real/rat_hippocampus_achilles``, 10,178 bins x 120 units). Labels
  are the continuous ``[position, right, left]``.
* **decoding**: a kNN regressor (36 neighbours, cosine metric, scikit-learn, run in
  the parent so both libraries share one decoder) maps the train embedding to
  position; the score is the median absolute error on the held-out 20 % (metres).
  ``shuffled`` is the same decoder fitted on time-permuted train positions: chance.
* **consistency**: for each ordered pair of seeds, a linear regression maps one seed's
  held-out embedding onto the other's; the score is its variance-weighted R^2, and
  the table shows the mean over pairs.

Each (library, dataset, seed) fit runs in its own process: the reference with
``--reference-python`` (an environment with ``cebra==0.6.1``; cebra_pipe never imports
it), cebra_pipe with this interpreter. Both load the same ``.npz`` written by the
parent. cebra_pipe gets ``random_state=seed``; the reference has no sampler seeding,
so its worker seeds ``torch``, ``numpy`` and ``random`` globally.

Parallelism: on the 2-core machine, two single-threaded workers at a time finish the
quick mode as fast as one 2-thread worker at a time (38 s vs 37 s), while using ~30 %
less CPU (39 s vs 55 s): a batch of 512 windows is too small for torch's intra-op
threads to pay off. So the default is ``--workers 2 --threads 1``. ``fit_seconds`` is
then single-thread wall time with the other core busy, and depends on whatever else
runs on the machine; ``fit_cpu_seconds`` (process CPU time) is the steadier speed
measure. The full run (3 seeds x 2 libraries x 2 datasets x 5000 steps) takes about
an hour on 2 cores, most of it in the reference; ``--quick`` with the reference takes
about 75 s, without it about 40 s.

Usage::

    python benchmarks/quality.py --reference-python /work/refenv/bin/python
    python benchmarks/quality.py --quick            # cebra_pipe only, ~40 s
    python benchmarks/quality.py --reference-python PY --steps 5000 --seeds 0 1 2 \\
        --datasets synthetic achilles --json benchmarks/out/quality.json

The worker mode (``--worker``) is internal: it imports only numpy, torch and the
library under test, so it runs in either environment.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ACHILLES = (REPO.parent / "shared" / "data" / "real" / "rat_hippocampus_achilles"
            / "rat_hippocampus_achilles.npz")
TRAIN_FRACTION = 0.8
KNN_NEIGHBORS = 36
TARGET_RATIO = 1.05  # ours / reference median error must stay at or below this
LIBRARIES = ("reference", "cebra_pipe")
DATASETS = ("synthetic", "achilles")
# The CEBRA paper's rat hippocampus CEBRA-Behavior set-up; max_iterations comes per run.
ESTIMATOR_PARAMS = {"model_architecture": "offset10-model", "batch_size": 512,
                    "learning_rate": 3e-4, "temperature": 1.0, "output_dimension": 3,
                    "time_offsets": 10, "conditional": "time_delta", "distance": "cosine",
                    "device": "cpu", "verbose": False}


@dataclass(frozen=True)
class Job:
    """One fit: which library, on which data file, with which seed."""

    library: str
    dataset: str
    data_path: Path
    seed: int
    steps: int
    threads: int
    out_path: Path


# -- worker (runs in the library's own interpreter) ------------------------------------------
def _worker(library: str, data_path: str, seed: int, steps: int, threads: int,
            out_path: str) -> None:
    """Fit one model on the train split and save train/test embeddings and the loss.

    Writes ``out_path`` (.npz) with ``train`` (n_train, 3), ``test`` (n_test, 3),
    ``loss`` (steps,), ``fit_seconds`` () and ``fit_cpu_seconds`` ().
    """
    import random

    import torch

    torch.set_num_threads(threads)
    if library == "reference":
        import cebra
        # The reference's samplers draw from the global generators: seed all of them.
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        seeding = {}
    elif library == "cebra_pipe":
        import cebra_pipe as cebra
        seeding = {"random_state": seed}
    else:
        raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}.")
    with np.load(data_path) as data:
        neural, labels, split = data["neural"], data["continuous"], int(data["split"])
    model = cebra.CEBRA(max_iterations=steps, **ESTIMATOR_PARAMS, **seeding)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(neural[:split], labels[:split])
    fit_seconds = time.perf_counter() - start
    # CPU time is the fairer speed measure when other processes share the cores.
    fit_cpu_seconds = time.process_time() - cpu_start
    loss = np.asarray([float(v) for v in model.state_dict_["loss"]], dtype=np.float64)
    np.savez(out_path, train=np.asarray(model.transform(neural[:split])),
             test=np.asarray(model.transform(neural[split:])), loss=loss,
             fit_seconds=np.float64(fit_seconds), fit_cpu_seconds=np.float64(fit_cpu_seconds))


# -- data ------------------------------------------------------------------------------------
def synthetic_arrays(duration: float = 250.0) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic linear track (rat1, seed 0) from cebra_pipe.

    Returns
    -------
    neural : (time, 120) float32 spike counts
    continuous : (time, 3) float32 ``[position, right, left]``
    """
    from cebra_pipe import datasets

    recording = datasets.init("synthetic-linear-track", animal="rat1", seed=0,
                              duration=duration)
    return (np.asarray(recording.neural, dtype=np.float32),
            np.asarray(recording.continuous, dtype=np.float32))


def achilles_arrays(path: Path = ACHILLES) -> tuple[np.ndarray, np.ndarray]:
    """The real rat 'achilles' recording.

    Returns
    -------
    neural : (10178, 120) float32 spike counts
    continuous : (10178, 3) float32 ``[position, right, left]``
    """
    if not path.is_file():
        raise FileNotFoundError(f"achilles recording not found at {path}")
    with np.load(path) as data:
        return (np.asarray(data["neural"], dtype=np.float32),
                np.asarray(data["continuous"], dtype=np.float32))


def write_dataset(directory: Path, name: str, neural: np.ndarray,
                  continuous: np.ndarray) -> Path:
    """Save the arrays and the 80/20 split point for the workers.

    Parameters
    ----------
    neural : (time, neurons)
    continuous : (time, 3) ``[position, right, left]``
    """
    path = directory / f"{name}.npz"
    split = round(TRAIN_FRACTION * len(neural))
    np.savez(path, neural=neural, continuous=continuous, split=np.int64(split))
    return path


# -- scoring ---------------------------------------------------------------------------------
def decode_error(train: np.ndarray, train_position: np.ndarray, test: np.ndarray,
                 test_position: np.ndarray) -> float:
    """Median absolute position error of a kNN decoder on held-out data.

    Parameters
    ----------
    train : (n_train, dims) embedding; train_position : (n_train,)
    test : (n_test, dims) embedding; test_position : (n_test,)
    """
    from sklearn.neighbors import KNeighborsRegressor

    decoder = KNeighborsRegressor(n_neighbors=KNN_NEIGHBORS, metric="cosine")
    decoder.fit(train, train_position)
    return float(np.median(np.abs(decoder.predict(test) - test_position)))


def shuffled_error(train: np.ndarray, train_position: np.ndarray, test: np.ndarray,
                   test_position: np.ndarray, seed: int = 0) -> float:
    """The same decoder fitted on time-permuted train positions: the chance level."""
    permuted = np.random.default_rng(seed).permutation(train_position)
    return decode_error(train, permuted, test, test_position)


def pairwise_consistency(embeddings: list[np.ndarray]) -> float:
    """Mean R^2 of linear maps between every ordered pair of embeddings.

    Parameters
    ----------
    embeddings : n >= 2 arrays (time, dims) of the same held-out samples

    Returns
    -------
    Mean variance-weighted R^2 over the n(n-1) ordered pairs; NaN if n < 2.
    """
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    scores = []
    for source, target in itertools.permutations(embeddings, 2):
        fit = LinearRegression().fit(source, target)
        scores.append(r2_score(target, fit.predict(source), multioutput="variance_weighted"))
    return float(np.mean(scores)) if scores else float("nan")


# -- orchestration ---------------------------------------------------------------------------
def _python_for(library: str, reference_python: str | None) -> str:
    return reference_python if library == "reference" else sys.executable


def run_job(job: Job, python: str) -> dict:
    """Run one worker process and load what it saved."""
    env = {**os.environ, "OMP_NUM_THREADS": str(job.threads),
           "MKL_NUM_THREADS": str(job.threads)}
    if job.library == "cebra_pipe":
        # Import the working tree's cebra_pipe, installed or not.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    else:
        env.pop("PYTHONPATH", None)  # keep the reference's interpreter clean
    command = [python, str(Path(__file__).resolve()), "--worker", job.library,
               str(job.data_path), str(job.seed), str(job.steps), str(job.threads),
               str(job.out_path)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env,
                          cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{job.library} worker on {job.dataset} (seed {job.seed}) failed "
                           f"with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    with np.load(job.out_path) as out:
        return {key: out[key] for key in out.files}


def summarize(dataset: str, library: str, jobs: list[Job], results: list[dict],
              data_path: Path) -> dict:
    """One table row: decoding per seed and its median, consistency, fit time."""
    with np.load(data_path) as data:
        position, split = data["continuous"][:, 0], int(data["split"])
    errors = [decode_error(r["train"], position[:split], r["test"], position[split:])
              for r in results]
    chance = [shuffled_error(r["train"], position[:split], r["test"], position[split:],
                             seed=job.seed) for job, r in zip(jobs, results)]
    seconds = [float(r["fit_seconds"]) for r in results]
    cpu_seconds = [float(r.get("fit_cpu_seconds", np.nan)) for r in results]
    return {"benchmark": "quality", "dataset": dataset, "library": library,
            "steps": jobs[0].steps, "threads": jobs[0].threads,
            "seeds": [job.seed for job in jobs],
            "n_train": split, "n_test": len(position) - split,
            "median_abs_error": statistics.median(errors),
            "median_abs_error_per_seed": errors,
            "shuffled_median_abs_error": statistics.median(chance),
            "consistency": pairwise_consistency([r["test"] for r in results]),
            "fit_seconds": statistics.median(seconds), "fit_seconds_per_seed": seconds,
            "fit_cpu_seconds": statistics.median(cpu_seconds),
            "final_loss_per_seed": [float(np.mean(r["loss"][-100:])) for r in results]}


def add_ratios(rows: list[dict]) -> None:
    """Add ``ratio_to_reference`` (ours / reference median error) to cebra_pipe rows."""
    reference = {r["dataset"]: r for r in rows if r["library"] == "reference"}
    for row in rows:
        if row["library"] == "cebra_pipe" and row["dataset"] in reference:
            ratio = row["median_abs_error"] / reference[row["dataset"]]["median_abs_error"]
            row["ratio_to_reference"] = ratio
            row["within_target"] = bool(ratio <= TARGET_RATIO)


def prepare_data(directory: Path, datasets: tuple[str, ...],
                 synthetic_duration: float) -> dict[str, Path]:
    """Write each dataset's arrays once; every worker loads the same file."""
    paths = {}
    for name in datasets:
        if name == "synthetic":
            arrays = synthetic_arrays(synthetic_duration)
        elif name == "achilles":
            arrays = achilles_arrays()
        else:
            raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}.")
        paths[name] = write_dataset(directory, name, *arrays)
    return paths


def run(reference_python: str | None, quick: bool, *, steps: int | None = None,
        seeds: list[int] | None = None, datasets: tuple[str, ...] | None = None,
        workers: int = 2, threads: int = 1, synthetic_duration: float | None = None,
        keep: Path | None = None, log=print) -> list[dict]:
    """Fit, decode and compare; one row per (dataset, library).

    Parameters
    ----------
    reference_python : interpreter with ``cebra==0.6.1``; ``None`` runs cebra_pipe only
    quick : 500 steps, seeds 0 and 1, synthetic track only, 100 s (4,000 bins) of it
    steps, seeds, datasets, synthetic_duration : override the mode's defaults
    workers : fits run at once; threads : torch threads per fit
    keep : directory to keep the data and each fit's embeddings and loss curve in
        (default: a temporary directory, removed afterwards)

    Returns
    -------
    rows with ``benchmark="quality"``, ``dataset``, ``library``, ``seeds``,
    ``median_abs_error`` (m, median over seeds) and ``median_abs_error_per_seed``,
    ``shuffled_median_abs_error``, ``consistency``, ``fit_seconds`` (median), and for
    cebra_pipe with a reference ``ratio_to_reference`` and ``within_target``.
    """
    steps = steps or (500 if quick else 5000)
    seeds = list(seeds) if seeds is not None else ([0, 1] if quick else [0, 1, 2])
    datasets = tuple(datasets or (("synthetic",) if quick else DATASETS))
    synthetic_duration = synthetic_duration or (100.0 if quick else 250.0)
    libraries = [lib for lib in LIBRARIES if lib != "reference" or reference_python]
    with tempfile.TemporaryDirectory(prefix="cebra_quality_") as scratch:
        tmp = Path(keep) if keep else Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        paths = prepare_data(Path(tmp), datasets, synthetic_duration)
        jobs = [Job(lib, name, paths[name], seed, steps, threads,
                    Path(tmp) / f"{name}-{lib}-{seed}.out.npz")
                for name in datasets for lib in libraries for seed in seeds]
        start = time.perf_counter()
        def one(job: Job) -> dict:
            result = run_job(job, _python_for(job.library, reference_python))
            log(f"# {job.dataset} {job.library} seed {job.seed}: fit "
                f"{float(result['fit_seconds']):.1f} s", flush=True)
            return result

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, jobs))
        log(f"# {len(jobs)} fits of {steps} steps in {time.perf_counter() - start:.1f} s "
            f"({workers} at a time, {threads} thread(s) each)")
        rows = []
        for name, lib in itertools.product(datasets, libraries):
            picked = [(j, r) for j, r in zip(jobs, results) if (j.dataset, j.library) == (name, lib)]
            rows.append(summarize(name, lib, [j for j, _ in picked], [r for _, r in picked],
                                  paths[name]))
    add_ratios(rows)
    return rows


def format_table(rows: list[dict]) -> str:
    """Plain-text table per dataset; errors in cm."""
    lines = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        lines.append(f"\n== {name} (kNN {KNN_NEIGHBORS}, cosine; median |error| on the "
                     f"held-out 20 %, cm) ==")
        lines.append(f"{'library':<11}{'seeds':>8}{'median':>8}{'per seed':>22}{'ratio':>7}"
                     f"{'shuffled':>9}{'consist.':>9}{'loss':>7}{'fit s':>8}{'cpu s':>8}")
        for r in (r for r in rows if r["dataset"] == name):
            per_seed = " ".join(f"{100 * e:.1f}" for e in r["median_abs_error_per_seed"])
            ratio = f"{r['ratio_to_reference']:.3f}" if "ratio_to_reference" in r else "-"
            lines.append(
                f"{r['library']:<11}{','.join(map(str, r['seeds'])):>8}"
                f"{100 * r['median_abs_error']:>8.2f}{per_seed:>22}{ratio:>7}"
                f"{100 * r['shuffled_median_abs_error']:>9.1f}{r['consistency']:>9.3f}"
                f"{statistics.median(r['final_loss_per_seed']):>7.3f}"
                f"{r['fit_seconds']:>8.1f}{r['fit_cpu_seconds']:>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        lib, data_path, seed, steps, threads, out_path = argv[1:7]
        _worker(lib, data_path, int(seed), int(steps), int(threads), out_path)
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-python",
                        help="python of an environment with cebra==0.6.1; omit to run "
                             "cebra_pipe only")
    parser.add_argument("--quick", action="store_true",
                        help="500 steps, 2 seeds, a 4,000-bin synthetic track only")
    parser.add_argument("--steps", type=int, help="training steps (default 5000; quick 500)")
    parser.add_argument("--seeds", type=int, nargs="+", help="default 0 1 2 (quick: 0 1)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS)
    parser.add_argument("--workers", type=int, default=2, help="fits at once (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit")
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--keep", type=Path,
                        help="keep data, embeddings and loss curves in this directory")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run(args.reference_python, args.quick, steps=args.steps, seeds=args.seeds,
               datasets=tuple(args.datasets) if args.datasets else None,
               workers=args.workers, threads=args.threads, keep=args.keep)
    print(format_table(rows))
    print(f"\ntotal {time.perf_counter() - start:.1f} s; target: cebra_pipe / reference "
          f"median error <= {TARGET_RATIO}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
