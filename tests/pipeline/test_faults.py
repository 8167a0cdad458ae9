"""Faults: a training job killed with SIGKILL resumes from its last checkpoint.

Two kills, for real, on a small config (one animal, one behaviour model, 2 seeds in
one training job):

1. only the training process is killed while it trains seed 1 (a node's OOM killer,
   a cancelled SLURM step): Snakemake reports the failed job; rerunning with
   ``--rerun-incomplete`` keeps seed 0 (already finished) and resumes seed 1 from its
   checkpoint;
2. Snakemake and the job are killed together (the machine goes down): after
   ``--unlock``, ``--rerun-incomplete`` resumes again, and the finished jobs (ingest,
   split) are not rerun.

The resumed results are bit-identical to an uninterrupted run of the same config.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from pipeline_helpers import (REPO, file_hashes, layout_of, load_test_config, results_dir,
                              synthetic_row, write_workdir)

pytestmark = pytest.mark.slow

ITERATIONS = 1500
EVERY = 25


def _config() -> dict:
    config = load_test_config()
    config["models"] = {"behavior": {**config["models"]["behavior"],
                                     "max_iterations": ITERATIONS, "checkpoint_every": EVERY}}
    config["multi_session"] = {}
    config["controls"] = {"shuffle": False}
    return config


def _start(workdir: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
               str(workdir), "--cores", "1", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=workdir, start_new_session=True)


def _checkpoint_step(workdir: Path, seed: int) -> int:
    steps = [int(m.group(1)) for p in (results_dir(workdir) / "checkpoints").rglob(
        f"seed{seed}-*/checkpoint_*.pt") if (m := re.search(r"checkpoint_(\d+)\.pt$", p.name))]
    return max(steps, default=0)


def _wait_for_checkpoint(process: subprocess.Popen, workdir: Path, seed: int, step: int,
                         timeout: float = 900) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        reached = _checkpoint_step(workdir, seed)
        if reached >= step:
            return reached
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended before seed {seed} reached step {step}:\n"
                                 + process.stdout.read()[-4000:])
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint at step {step} of seed {seed} within {timeout} s")


def _training_process(process: subprocess.Popen) -> psutil.Process:
    """The ``python -m cebra_pipe train-single`` process started by our snakemake."""
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            if "train-single" in child.cmdline() and "python" in child.name():
                return child
        except psutil.NoSuchProcess:
            continue
    raise AssertionError("training process not found")


def _train_log(workdir: Path) -> str:
    return next((results_dir(workdir) / "logs" / "train_single").rglob("*.log")).read_text()


def test_killed_training_resumes_from_checkpoint(tmp_path):
    workdir = write_workdir(tmp_path / "work", _config(), [synthetic_row("rat1")])

    # 1. SIGKILL the training process while seed 1 trains.
    process = _start(workdir)
    _wait_for_checkpoint(process, workdir, seed=1, step=2 * EVERY)
    _training_process(process).send_signal(signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0
    assert "Error in rule train_single" in output, output[-3000:]
    finished = {p: p.stat().st_mtime_ns for p in (results_dir(workdir)).glob(
        "s*/rat1/s1.*") if p.suffix in (".npz", ".json")}
    assert len(finished) == 4  # session + split files, each with provenance
    assert not list((results_dir(workdir) / "single").rglob("model.pt"))  # no partial outputs

    # 2. Rerun; while it resumes, kill snakemake and the job together.
    process = _start(workdir, "--rerun-incomplete")
    killed_at = _wait_for_checkpoint(process, workdir, seed=1,
                                     step=_checkpoint_step(workdir, 1) + 2 * EVERY)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    log = _train_log(workdir)
    assert "seed 0: already trained" in log, log
    assert re.search(r"seed 1: resuming from checkpoint at step [1-9]\d* of", log), log

    # 3. Unlock (snakemake died holding the lock) and finish.
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
                    str(workdir), "--unlock"], check=True, capture_output=True)
    process = _start(workdir, "--rerun-incomplete")
    output, _ = process.communicate(timeout=1800)
    assert process.returncode == 0, output[-4000:]
    log = _train_log(workdir)
    resumed = int(re.search(r"seed 1: resuming from checkpoint at step (\d+)", log).group(1))
    assert resumed >= killed_at > 0, log
    assert "rule ingest" not in output and "rule split" not in output, \
        "finished jobs were rerun"
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    assert (results_dir(workdir) / "report" / "overview.html").is_file()
    layout = layout_of(workdir)
    loss = np.loadtxt(layout.seed_file(layout.single_dir("rat1", "s1", "behavior", "position"), 1,
                                       "loss.tsv"), skiprows=1)
    assert len(loss) == ITERATIONS
    assert not list((results_dir(workdir) / "checkpoints").rglob("*.pt"))  # cleaned up

    # 4. Same config, never interrupted: bit-identical embeddings and losses.
    clean = write_workdir(tmp_path / "clean", _config(), [synthetic_row("rat1")])
    target = layout_of(clean).seed_file(layout_of(clean).single_dir(
        "rat1", "s1", "behavior", "position"), 1, "loss.tsv")
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
                    str(clean), "--cores", "1", os.path.relpath(target, clean)], check=True,
                   capture_output=True, cwd=clean)
    patterns = ("single/**/*.npy", "single/**/loss.tsv")
    assert file_hashes(results_dir(workdir), patterns) == file_hashes(results_dir(clean), patterns)
