"""Decoding quality of cebra_pipe against the reference CEBRA 0.6.1, seed for seed.

Speed only counts at equal quality, and single seeds swing by 2-3 cm, so this benchmark
fits many seeds of both libraries side by side and compares medians with a bootstrap
interval of their ratio.

* **set-up** (the CEBRA paper's rat hippocampus one, identical for both libraries):
  ``offset10-model``, 3 output dims, temperature 1, lr 3e-4, batch 512, 10 time
  offsets, cosine distance, 5000 steps. Modes: ``behavior`` (CEBRA-Behavior,
  ``conditional="time_delta"`` on the continuous ``[position, right, left]`` labels)
  and ``time`` (CEBRA-Time, ``conditional="time"``, no labels).
* **data**: the real rats ``achilles`` (10,178 bins x 120 units) and ``buddy``
  (6,577 x 48) from ``../shared/data/real``; ``synthetic`` (cebra_pipe's linear track)
  for ``--quick``. The first 80 % in time trains, the last 20 % is held out.
* **decoding**: a kNN regressor (36 neighbours, cosine metric, scikit-learn, run in the
  parent so both libraries share one decoder) maps the train embedding to position;
  the score is the median absolute error on the held-out 20 % (cm). ``chance`` is the
  same decoder fitted on time-permuted train positions.
* **comparison** per (mode, rat): each library's median over seeds, the ratio
  ours / reference and its bootstrap 95 % interval (percentile, 10,000 resamples of
  the seeds, drawn within each library), and whether the interval lies above or below
  1.0 (a difference) and 1.05 (the 5 % target).

Each fit runs in its own process: the reference with ``--reference-python`` (an
environment with ``cebra==0.6.1``; cebra_pipe never imports it), cebra_pipe with this
interpreter. Jobs are ordered seed by seed with the two libraries' fits of one
(mode, rat, seed) next to each other, so with ``--workers 2`` they run at the same
time and a slow spell of a shared machine hits both.

**Cache**: every finished fit appends one JSON line to ``--cache`` (default
``benchmarks/out/quality/fits.jsonl``), keyed by a hash of everything that determines
it (library, mode, data fingerprint, seed, steps, estimator and decoder settings,
:data:`OURS_REVISION` for cebra_pipe), and keeps its held-out embedding next to it.
An interrupted run resumes where it stopped; runs with other seeds add to the same
table. Bump :data:`OURS_REVISION` when cebra_pipe's training changes on purpose.

Usage::

    python benchmarks/quality.py --reference-python /work/refvenv/bin/python
    python benchmarks/quality.py --quick            # cebra_pipe only, synthetic track
    python benchmarks/quality.py --reference-python PY --modes time --rats achilles \\
        --seeds 0 1 2 3 4 5 6 7 --markdown benchmarks/out/quality.md
    python benchmarks/quality.py --report-only      # tables from the cache, no fits

The worker mode (``--worker``) is internal: it imports only numpy, torch and the
library under test, so it runs in either environment.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"
RATS = ("achilles", "buddy")
DATASETS = RATS + ("synthetic",)
MODES = ("behavior", "time")
LIBRARIES = ("cebra_pipe", "reference")
TRAIN_FRACTION = 0.8
KNN_NEIGHBORS = 36
TARGET_RATIO = 1.05  # ours / reference median error must stay at or below this
CONFIDENCE = 0.95
N_RESAMPLES = 10_000
DEFAULT_CACHE = REPO / "benchmarks" / "out" / "quality" / "fits.jsonl"
# Part of cebra_pipe's cache keys: bump it when a change to training is meant to move
# the figures, so that old fits of ours are not mixed with new ones.
OURS_REVISION = 1
# The CEBRA paper's rat hippocampus set-up; max_iterations comes per run.
ESTIMATOR_PARAMS = {"model_architecture": "offset10-model", "batch_size": 512,
                    "learning_rate": 3e-4, "temperature": 1.0, "output_dimension": 3,
                    "time_offsets": 10, "distance": "cosine", "device": "cpu",
                    "verbose": False}
CONDITIONALS = {"behavior": "time_delta", "time": "time"}


@dataclass(frozen=True)
class Job:
    """One fit: which library, mode, data set and seed, for how many steps."""

    library: str
    mode: str
    dataset: str
    data_path: Path
    fingerprint: str
    seed: int
    steps: int

    def settings(self) -> dict:
        """Everything that determines the fit and its scores (the cache key's input)."""
        settings = {"library": self.library, "mode": self.mode, "dataset": self.dataset,
                    "data": self.fingerprint, "seed": self.seed, "steps": self.steps,
                    "estimator": ESTIMATOR_PARAMS, "conditional": CONDITIONALS[self.mode],
                    "train_fraction": TRAIN_FRACTION, "knn_neighbors": KNN_NEIGHBORS}
        if self.library == "cebra_pipe":
            settings["ours_revision"] = OURS_REVISION
        return settings

    def key(self) -> str:
        """Hash of :meth:`settings`: one cache entry per distinct fit."""
        text = json.dumps(self.settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


# -- worker (runs in the library's own interpreter) ------------------------------------------
def _worker(library: str, mode: str, data_path: str, seed: int, steps: int, threads: int,
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
    model = cebra.CEBRA(max_iterations=steps, conditional=CONDITIONALS[mode],
                        **ESTIMATOR_PARAMS, **seeding)
    start, cpu_start = time.perf_counter(), time.process_time()
    if mode == "behavior":
        model.fit(neural[:split], labels[:split])
    else:
        model.fit(neural[:split])
    fit_seconds = time.perf_counter() - start
    # CPU time is the fairer speed measure when other processes share the cores.
    fit_cpu_seconds = time.process_time() - cpu_start
    loss = np.asarray([float(v) for v in model.state_dict_["loss"]], dtype=np.float64)
    np.savez(out_path, train=np.asarray(model.transform(neural[:split])),
             test=np.asarray(model.transform(neural[split:])), loss=loss,
             fit_seconds=np.float64(fit_seconds), fit_cpu_seconds=np.float64(fit_cpu_seconds))


# -- training-step check (same weights and batches in both libraries) -----------------------
STEP_CHECK_STEPS = 30
STEP_CHECK_TOLERANCE = 1e-4  # float32 summation order differs; a real difference is >> this


def train_steps(model, criterion, neural: np.ndarray, batches: np.ndarray,
                learning_rate: float) -> np.ndarray:
    """Adam steps of ``model`` on fixed batches of windows; the loss of each step.

    Parameters
    ----------
    model : encoder with a ``(batch, neurons, window)`` input, window ``[t - 5, t + 5)``
    criterion : returns the loss (or ``(loss, align, uniform)``) of ``(ref, pos, neg)``
    neural : (time, neurons)
    batches : (steps, 3, batch) time indices of references, positives and negatives

    Returns
    -------
    losses : (steps,)
    """
    import torch

    data = torch.from_numpy(np.asarray(neural, dtype=np.float32))
    around = torch.arange(-5, 5)

    def windows(index: np.ndarray) -> torch.Tensor:
        return data[torch.from_numpy(index)[:, None] + around].transpose(1, 2)

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    losses = []
    for batch in batches:
        out = criterion(*(model(windows(index)) for index in batch))
        loss = out[0] if isinstance(out, tuple) else out
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.asarray(losses)


def _step_check_worker(library: str, data_path: str, out_path: str,
                       init_path: str | None = None) -> None:
    """Run :func:`train_steps` with the library's own ``offset10-model`` and InfoNCE.

    Without ``init_path`` (the reference's role) the weights come from the library's
    initialisation (torch seed 0) and the batches are drawn here; with it, weights and
    batches are loaded from that file. Writes ``out_path`` with ``init`` weights,
    ``batches`` (steps, 3, 512), ``losses`` and the ``final`` weights, flattened.
    """
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if library == "reference":
        import cebra.models
        from cebra.models.criterions import FixedCosineInfoNCE
    else:
        import cebra_pipe.models as cebra_models
        from cebra_pipe.models.criterions import FixedCosineInfoNCE
    with np.load(data_path) as data:
        neural = data["neural"][:int(data["split"])]
    kwargs = {"num_neurons": neural.shape[1], "num_units": 32, "num_output": 3}
    model = (cebra.models.init if library == "reference" else cebra_models.init)(
        "offset10-model", **kwargs)
    if init_path is None:
        rng = np.random.default_rng(1)
        reference = rng.integers(5, len(neural) - 5 - 10, (STEP_CHECK_STEPS, 512))
        negative = rng.integers(5, len(neural) - 5 - 10, (STEP_CHECK_STEPS, 512))
        batches = np.stack([reference, reference + 10, negative], 1)
    else:
        with np.load(init_path) as given:
            batches, init = given["batches"], given["init"]
        torch.nn.utils.vector_to_parameters(torch.from_numpy(init), model.parameters())
    start = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().copy()
    losses = train_steps(model, FixedCosineInfoNCE(temperature=1.0), neural, batches,
                         ESTIMATOR_PARAMS["learning_rate"])
    final = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    np.savez(out_path, init=start, batches=batches, losses=losses, final=final)


def step_check(reference_python: str, data_path: Path, scratch: Path) -> dict:
    """Same weights, same batches: do both libraries' training steps agree?

    The reference initialises ``offset10-model`` and draws the batches; cebra_pipe loads
    them into its own model and criterion; both take :data:`STEP_CHECK_STEPS` Adam steps.

    Returns
    -------
    ``max_loss_diff``, ``max_weight_diff`` and ``agree`` (both below the tolerance).
    """
    outputs = {}
    for library, init in (("reference", None), ("cebra_pipe", scratch / "reference.npz")):
        out = scratch / f"{library}.npz"
        python = reference_python if library == "reference" else sys.executable
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(REPO) if library == "cebra_pipe" else ""}
        command = [python, str(Path(__file__).resolve()), "--step-check-worker", library,
                   str(data_path), str(out), *([str(init)] if init else [])]
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
        if done.returncode != 0:
            raise RuntimeError(f"{library} step check failed:\n{done.stderr[-3000:]}")
        with np.load(out) as result:
            outputs[library] = {key: result[key] for key in result.files}
    ours, ref = outputs["cebra_pipe"], outputs["reference"]
    loss_diff = float(np.abs(ours["losses"] - ref["losses"]).max())
    weight_diff = float(np.abs(ours["final"] - ref["final"]).max())
    return {"max_loss_diff": loss_diff, "max_weight_diff": weight_diff,
            "agree": max(loss_diff, weight_diff) < STEP_CHECK_TOLERANCE,
            "first_loss": float(ref["losses"][0]), "last_loss": float(ref["losses"][-1])}


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


def rat_arrays(rat: str, root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A real rat's recording from ``root/rat_hippocampus_<rat>/`` (default :data:`REAL_DATA`).

    Returns
    -------
    neural : (time, neurons) float32 spike counts
    continuous : (time, 3) float32 ``[position (m), right, left]``
    """
    path = Path(root or REAL_DATA) / f"rat_hippocampus_{rat}" / f"rat_hippocampus_{rat}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"recording of rat {rat!r} not found at {path}")
    with np.load(path) as data:
        return (np.asarray(data["neural"], dtype=np.float32),
                np.asarray(data["continuous"], dtype=np.float32))


def write_dataset(directory: Path, name: str, neural: np.ndarray,
                  continuous: np.ndarray) -> tuple[Path, str]:
    """Save the arrays and the 80/20 split point for the workers.

    Parameters
    ----------
    neural : (time, neurons)
    continuous : (time, 3) ``[position, right, left]``

    Returns
    -------
    The file's path and a fingerprint of its contents (part of the cache keys).
    """
    split = round(TRAIN_FRACTION * len(neural))
    digest = hashlib.sha256()
    for array in (neural, continuous, np.int64(split)):
        digest.update(np.ascontiguousarray(array).tobytes())
    fingerprint = digest.hexdigest()[:16]
    path = directory / f"{name}-{fingerprint}.npz"
    if not path.is_file():
        _atomic_savez(path, neural=neural, continuous=continuous, split=np.int64(split))
    return path, fingerprint


def prepare_data(directory: Path, datasets: tuple[str, ...],
                 synthetic_duration: float) -> dict[str, tuple[Path, str]]:
    """Write each data set once; every worker loads the same file."""
    directory.mkdir(parents=True, exist_ok=True)
    prepared = {}
    for name in datasets:
        if name == "synthetic":
            arrays = synthetic_arrays(synthetic_duration)
        elif name in RATS:
            arrays = rat_arrays(name)
        else:
            raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}.")
        prepared[name] = write_dataset(directory, name, *arrays)
    return prepared


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary name, then rename: no half-written file on interrupt."""
    tmp = path.with_name(path.name + ".part.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


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


def ratio_interval(ours: np.ndarray, reference: np.ndarray, *, confidence: float = CONFIDENCE,
                   n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """Ratio of medians ours / reference with a bootstrap percentile interval.

    The seeds of each library are resampled independently (they are different fits),
    with scipy's bootstrap under a fixed seed, so the interval is reproducible.

    Parameters
    ----------
    ours, reference : (n_seeds,) per-seed errors of each library, n >= 2 each

    Returns
    -------
    ratio, low, high
    """
    from scipy import stats

    ours, reference = np.asarray(ours, float), np.asarray(reference, float)
    if min(len(ours), len(reference)) < 2:
        raise ValueError(f"a bootstrap interval needs >= 2 seeds per library, got "
                         f"{len(ours)} (cebra_pipe) and {len(reference)} (reference).")

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(a, axis=axis) / np.median(b, axis=axis)

    result = stats.bootstrap((ours, reference), ratio, n_resamples=n_resamples,
                             confidence_level=confidence, method="percentile",
                             paired=False, vectorized=True,
                             random_state=np.random.default_rng(seed))
    return (float(ratio(ours, reference)), float(result.confidence_interval.low),
            float(result.confidence_interval.high))


# -- cache -----------------------------------------------------------------------------------
class FitCache:
    """One JSON line per finished fit, plus its embeddings in ``<cache>.d/<key>.npz``.

    A line is appended only after its embeddings are on disk, so an interrupted run
    leaves at most a truncated last line, which :meth:`load` skips (that fit reruns).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.embeddings = self.path.with_name(self.path.name + ".d")
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict]:
        """Finished fits by key (the last line wins if a key repeats)."""
        records = {}
        if not self.path.is_file():
            return records
        with open(self.path) as fh:
            for number, line in enumerate(fh, 1):
                try:
                    record = json.loads(line)
                    records[record["key"]] = record
                except (json.JSONDecodeError, KeyError, TypeError):
                    print(f"# {self.path}:{number}: skipping an unreadable line (an "
                          f"interrupted write?); that fit reruns", file=sys.stderr)
        return records

    def add(self, record: dict, train: np.ndarray, test: np.ndarray) -> None:
        """Store one fit: embeddings first, then its line."""
        self.embeddings.mkdir(parents=True, exist_ok=True)
        _atomic_savez(self.embeddings / f"{record['key']}.npz", train=train, test=test)
        with self._lock, open(self.path, "a") as fh:
            # After an interrupted write the file ends mid-line: start a fresh one.
            lead = "\n" if fh.tell() > 0 and not self._ends_with_newline() else ""
            fh.write(lead + json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def test_embedding(self, key: str) -> np.ndarray | None:
        """The held-out embedding of a fit, (n_test, dims), or None if not kept."""
        path = self.embeddings / f"{key}.npz"
        if not path.is_file():
            return None
        with np.load(path) as data:
            return data["test"]


# -- orchestration ---------------------------------------------------------------------------
def plan(modes: tuple[str, ...], datasets: tuple[str, ...], seeds: list[int],
         libraries: tuple[str, ...], prepared: dict[str, tuple[Path, str]],
         steps: int) -> list[Job]:
    """All jobs, seed by seed; the libraries' fits of one (mode, data, seed) adjacent."""
    return [Job(lib, mode, name, *prepared[name], seed, steps)
            for seed in seeds for mode in modes for name in datasets for lib in libraries]


def score(job: Job, result: dict, threads: int) -> dict:
    """The cache record of one fit: its settings, scores (cm) and cost."""
    with np.load(job.data_path) as data:
        position, split = data["continuous"][:, 0], int(data["split"])
    train_pos, test_pos = position[:split], position[split:]
    return {"key": job.key(), **job.settings(), "threads": threads,
            "error_cm": 100 * decode_error(result["train"], train_pos, result["test"], test_pos),
            "chance_cm": 100 * shuffled_error(result["train"], train_pos, result["test"],
                                              test_pos, seed=job.seed),
            "final_loss": float(np.mean(result["loss"][-100:])),
            "fit_seconds": float(result["fit_seconds"]),
            "fit_cpu_seconds": float(result["fit_cpu_seconds"]),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def run_job(job: Job, python: str, threads: int, scratch: Path, ours_root: Path = REPO) -> dict:
    """Run one worker process and load what it saved.

    ``ours_root`` is the directory whose ``cebra_pipe`` the worker imports (a frozen copy
    keeps a long run's code fixed while the working tree changes).
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if job.library == "cebra_pipe":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ours_root),
                                                          env.get("PYTHONPATH")]))
    else:
        env.pop("PYTHONPATH", None)  # keep the reference's interpreter clean
    out_path = scratch / f"{job.key()}.out.npz"
    command = [python, str(Path(__file__).resolve()), "--worker", job.library, job.mode,
               str(job.data_path), str(job.seed), str(job.steps), str(threads),
               str(out_path)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env,
                          cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{job.library} {job.mode} worker on {job.dataset} (seed "
                           f"{job.seed}) failed with exit code {done.returncode}:\n"
                           f"{done.stderr[-3000:]}")
    with np.load(out_path) as out:
        result = {key: out[key] for key in out.files}
    out_path.unlink()
    return result


def run(reference_python: str | None, *, modes: tuple[str, ...] = MODES,
        datasets: tuple[str, ...] = RATS, seeds: tuple[int, ...] = tuple(range(8)),
        steps: int = 5000, cache: Path = DEFAULT_CACHE, workers: int = 2, threads: int = 1,
        synthetic_duration: float = 250.0, ours_root: Path = REPO,
        log: Callable[..., None] = print) -> list[dict]:
    """Fit whatever the cache lacks, then return the cached records of these jobs.

    Parameters
    ----------
    reference_python : interpreter with ``cebra==0.6.1``; ``None`` fits cebra_pipe only
        (cached reference fits of the same settings are still returned)
    modes, datasets, seeds, steps : the grid of fits
    cache : JSON-lines file of finished fits (see :class:`FitCache`)
    workers : fits run at once; threads : torch threads per fit
    ours_root : directory whose ``cebra_pipe`` is fitted (recorded as ``ours_root``)

    Returns
    -------
    One record per finished (library, mode, dataset, seed), errors in cm.
    """
    for name, chosen, allowed in (("mode", modes, MODES), ("dataset", datasets, DATASETS)):
        unknown = sorted(set(chosen) - set(allowed))
        if unknown:
            raise ValueError(f"unknown {name}(s) {unknown}; choose from {allowed}.")
    store = FitCache(cache)
    prepared = prepare_data(store.path.parent / "data", tuple(datasets), synthetic_duration)
    jobs = plan(tuple(modes), tuple(datasets), list(seeds), LIBRARIES, prepared, steps)
    done = store.load()
    todo = [job for job in jobs if job.key() not in done
            and (job.library != "reference" or reference_python)]
    log(f"# {len(jobs) - len(todo)} of {len(jobs)} fits cached; {len(todo)} to run "
        f"({workers} at a time, {threads} thread(s) each)", flush=True)

    def one(job: Job) -> None:
        python = reference_python if job.library == "reference" else sys.executable
        with tempfile.TemporaryDirectory(prefix="cebra_quality_") as scratch:
            result = run_job(job, python, threads, Path(scratch), ours_root)
        record = score(job, result, threads)
        if job.library == "cebra_pipe":
            record["ours_root"] = str(ours_root)
        store.add(record, result["train"], result["test"])
        log(f"# {job.mode} {job.dataset} {job.library} seed {job.seed}: "
            f"{record['error_cm']:.2f} cm, fit {record['fit_seconds']:.0f} s "
            f"({record['fit_cpu_seconds']:.0f} CPU s)", flush=True)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, todo))
    done = store.load()
    return [done[job.key()] for job in jobs if job.key() in done]


# -- summary ---------------------------------------------------------------------------------
def summarize(records: list[dict], cache: FitCache | None = None) -> list[dict]:
    """One row per (mode, dataset): both libraries' medians and the ratio's interval.

    Parameters
    ----------
    records : cache records (``library``, ``mode``, ``dataset``, ``seed``, ``error_cm``,
        ``chance_cm``, ``fit_cpu_seconds``, ``key``)
    cache : where to find held-out embeddings for the consistency across seeds

    Returns
    -------
    rows with ``mode``, ``dataset``, per library ``seeds_<lib>``, ``median_cm_<lib>``,
    ``errors_cm_<lib>``, ``chance_cm_<lib>``, ``cpu_s_<lib>``, ``consistency_<lib>``, and
    ``ratio``, ``ci_low``, ``ci_high`` (NaN below 2 seeds a library), ``verdict``.
    """
    rows = []
    for mode, dataset in dict.fromkeys((r["mode"], r["dataset"]) for r in records):
        row = {"mode": mode, "dataset": dataset}
        for lib in LIBRARIES:
            picked = sorted((r for r in records if (r["mode"], r["dataset"], r["library"])
                             == (mode, dataset, lib)), key=lambda r: r["seed"])
            errors = [r["error_cm"] for r in picked]
            row[f"seeds_{lib}"] = [r["seed"] for r in picked]
            row[f"errors_cm_{lib}"] = errors
            row[f"median_cm_{lib}"] = float(np.median(errors)) if errors else float("nan")
            row[f"chance_cm_{lib}"] = (float(np.median([r["chance_cm"] for r in picked]))
                                       if picked else float("nan"))
            row[f"cpu_s_{lib}"] = (float(np.median([r["fit_cpu_seconds"] for r in picked]))
                                   if picked else float("nan"))
            embeddings = [cache.test_embedding(r["key"]) for r in picked] if cache else []
            row[f"consistency_{lib}"] = pairwise_consistency(
                [e for e in embeddings if e is not None])
        ours, ref = row["errors_cm_cebra_pipe"], row["errors_cm_reference"]
        if min(len(ours), len(ref)) >= 2:
            row["ratio"], row["ci_low"], row["ci_high"] = ratio_interval(ours, ref)
        else:
            row["ratio"] = (row["median_cm_cebra_pipe"] / row["median_cm_reference"]
                            if ours and ref else float("nan"))
            row["ci_low"] = row["ci_high"] = float("nan")
        row["verdict"] = verdict(row["ci_low"], row["ci_high"])
        rows.append(row)
    return rows


def verdict(low: float, high: float) -> str:
    """What the ratio's interval says about ours / reference."""
    if np.isnan(low) or np.isnan(high):
        return "too few seeds"
    if low > TARGET_RATIO:
        return f"worse by > {100 * (TARGET_RATIO - 1):.0f} %"
    if low > 1.0:
        return (f"worse, within {100 * (TARGET_RATIO - 1):.0f} %" if high <= TARGET_RATIO
                else "worse; 5 % not excluded")
    if high < 1.0:
        return "better"
    if high <= TARGET_RATIO:
        return f"no difference; within {100 * (TARGET_RATIO - 1):.0f} %"
    return f"no difference seen; > {100 * (TARGET_RATIO - 1):.0f} % not excluded"


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if np.isnan(value) else f"{value:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    """The README's table: medians (cm), ratio and its 95 % interval, seeds per library."""
    lines = ["| mode | rat | seeds ours / ref | cebra_pipe median cm | reference median cm "
             "| ratio | 95 % CI | CI excludes 1.0 | CI excludes 1.05 | verdict "
             "| chance cm | consistency ours / ref | CPU s per fit ours / ref |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = r["ci_low"], r["ci_high"]
        known = not (np.isnan(low) or np.isnan(high))
        excludes_1 = ("n/a" if not known else "yes" if (low > 1.0 or high < 1.0) else "no")
        excludes_t = ("n/a" if not known
                      else "yes" if (low > TARGET_RATIO or high < TARGET_RATIO) else "no")
        lines.append(
            f"| {r['mode']} | {r['dataset']} | {len(r['seeds_cebra_pipe'])} / "
            f"{len(r['seeds_reference'])} | {_fmt(r['median_cm_cebra_pipe'])} | "
            f"{_fmt(r['median_cm_reference'])} | {_fmt(r['ratio'], 3)} | "
            f"{_fmt(low, 3)}-{_fmt(high, 3)} | {excludes_1} | {excludes_t} | {r['verdict']} | "
            f"{_fmt(r['chance_cm_cebra_pipe'], 1)} | {_fmt(r['consistency_cebra_pipe'], 3)} / "
            f"{_fmt(r['consistency_reference'], 3)} | {_fmt(r['cpu_s_cebra_pipe'], 0)} / "
            f"{_fmt(r['cpu_s_reference'], 0)} |")
    return "\n".join(lines)


def per_seed_table(rows: list[dict]) -> str:
    """Plain text: every seed's error (cm) per (mode, rat, library)."""
    lines = []
    for r in rows:
        for lib in LIBRARIES:
            errors = " ".join(f"{s}:{e:.2f}" for s, e in zip(r[f"seeds_{lib}"],
                                                             r[f"errors_cm_{lib}"]))
            lines.append(f"{r['mode']:<9}{r['dataset']:<10}{lib:<11}{errors}")
    return "\n".join(lines)


def plot_errors(rows: list[dict], path: Path) -> None:
    """Every seed's error (cm) per (mode, rat), both libraries side by side, medians marked.

    Single seeds swing by centimetres; the picture shows how far the two clouds overlap.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(2.6 * len(rows) + 0.6, 3.4),
                             squeeze=False, sharey=False)
    for ax, row in zip(axes[0], rows):
        for x, (lib, colour) in enumerate(zip(LIBRARIES, ("tab:blue", "tab:orange"))):
            errors = row[f"errors_cm_{lib}"]
            if not errors:
                continue
            jitter = np.linspace(-0.12, 0.12, len(errors)) if len(errors) > 1 else [0.0]
            ax.scatter(x + np.asarray(jitter), errors, color=colour, s=18, alpha=0.8)
            ax.hlines(np.median(errors), x - 0.25, x + 0.25, color=colour, lw=2)
        ax.set_xticks([0, 1], [f"{lib}\n(n={len(row[f'seeds_{lib}'])})" for lib in LIBRARIES])
        ax.set_xlim(-0.6, 1.6)
        ci = ("" if np.isnan(row["ci_low"])
              else f"\nratio {row['ratio']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]")
        ax.set_title(f"CEBRA-{row['mode'].capitalize()}, {row['dataset']}{ci}", fontsize=9)
    axes[0][0].set_ylabel("median |position error| (cm)")
    fig.suptitle(f"one dot per seed; bars: medians (chance ~"
                 f"{np.nanmedian([r['chance_cm_cebra_pipe'] for r in rows]):.0f} cm)",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        lib, mode, data_path, seed, steps, threads, out_path = argv[1:8]
        _worker(lib, mode, data_path, int(seed), int(steps), int(threads), out_path)
        return
    if argv[:1] == ["--step-check-worker"]:
        _step_check_worker(*argv[1:5])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-python",
                        help="python of an environment with cebra==0.6.1; omit to fit "
                             "cebra_pipe only (cached reference fits still count)")
    parser.add_argument("--quick", action="store_true",
                        help="500 steps, seeds 0 1, a 4,000-bin synthetic track only")
    parser.add_argument("--steps", type=int, help="training steps (default 5000; quick 500)")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="default 0-7 (quick: 0 1)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--rats", "--datasets", dest="datasets", nargs="+", choices=DATASETS,
                        help=f"default {' '.join(RATS)} (quick: synthetic)")
    parser.add_argument("--workers", type=int, default=2, help="fits at once (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"JSON lines of finished fits (default {DEFAULT_CACHE})")
    parser.add_argument("--ours-root", type=Path, default=REPO,
                        help="directory holding the cebra_pipe to fit (default: this "
                             "working tree; a frozen copy keeps a long run's code fixed)")
    parser.add_argument("--step-check", action="store_true",
                        help="fit nothing: check that both libraries' training steps agree "
                             "from the same weights on the same batches (needs "
                             "--reference-python)")
    parser.add_argument("--report-only", action="store_true",
                        help="fit nothing: tables from what the cache holds")
    parser.add_argument("--markdown", type=Path, help="also write the markdown table here")
    parser.add_argument("--json", type=Path, help="also write the summary rows here")
    parser.add_argument("--plot", type=Path, help="also draw every seed's error (PNG)")
    args = parser.parse_args(argv)
    steps = args.steps or (500 if args.quick else 5000)
    seeds = args.seeds if args.seeds is not None else ([0, 1] if args.quick else list(range(8)))
    datasets = tuple(args.datasets or (("synthetic",) if args.quick else RATS))
    if args.step_check:
        if not args.reference_python:
            parser.error("--step-check needs --reference-python")
        with tempfile.TemporaryDirectory(prefix="cebra_step_check_") as scratch:
            path, _ = prepare_data(Path(scratch), datasets[:1], 100.0)[datasets[0]]
            result = step_check(args.reference_python, path, Path(scratch))
        print(f"{STEP_CHECK_STEPS} Adam steps on {datasets[0]} from the same weights and "
              f"batches: max |loss difference| {result['max_loss_diff']:.2e}, max |weight "
              f"difference| {result['max_weight_diff']:.2e} (loss {result['first_loss']:.3f}"
              f" -> {result['last_loss']:.3f}); agree: {result['agree']}")
        sys.exit(0 if result["agree"] else 1)
    if args.report_only:
        records = [r for r in FitCache(args.cache).load().values()
                   if r["steps"] == steps and r["mode"] in args.modes
                   and r["dataset"] in datasets and r["seed"] in seeds]
    else:
        records = run(args.reference_python, modes=tuple(args.modes), datasets=datasets,
                      seeds=seeds, steps=steps, cache=args.cache, workers=args.workers,
                      threads=args.threads, synthetic_duration=100.0 if args.quick else 250.0,
                      ours_root=args.ours_root.resolve())
    records.sort(key=lambda r: (MODES.index(r["mode"]), DATASETS.index(r["dataset"]),
                                r["library"], r["seed"]))
    rows = summarize(records, FitCache(args.cache))
    table = markdown_table(rows)
    print(per_seed_table(rows), "", table, sep="\n")
    print(f"\n{steps} steps; errors are median |position error| on the held-out 20 % (cm); "
          f"ratio = cebra_pipe / reference median over seeds; target <= {TARGET_RATIO}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")
    if args.plot and rows:
        plot_errors(rows, args.plot)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
