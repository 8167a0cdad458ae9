"""Helpers for the workflow tests: isolated working directories and runners.

Each workflow test copies a config into its own temporary working directory and runs
``snakemake -s <repo>/Snakefile -d <tmp>``, so tests never touch the repository's
``results/``. :func:`results_dir` finds a run's analysis folder through
``cebra_pipe.pipeline.layout``, as the workflow does.
"""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from cebra_pipe.pipeline.layout import Layout, analysis_dir

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
REAL = SHARED / "data" / "real"
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"
TEST_SHEET = REPO / ".test" / "config" / "sessions.tsv"
SHEET_COLUMNS = ["animal", "session", "neural_file", "neural_key", "label_file", "group"]


def load_test_config() -> dict[str, Any]:
    return yaml.safe_load(TEST_CONFIG.read_text())


def write_workdir(path: Path, config: dict[str, Any], rows: list[dict[str, str]]) -> Path:
    """A working directory with ``config/config.yaml`` and ``config/sessions.tsv``."""
    (path / "config").mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(config)
    config["sessions"] = "config/sessions.tsv"
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    lines = ["\t".join(SHEET_COLUMNS)]
    for row in rows:
        lines.append("\t".join(str(row.get(c, "")) for c in SHEET_COLUMNS))
    (path / "config" / "sessions.tsv").write_text("\n".join(lines) + "\n")
    return path


def results_dir(workdir: Path, configfile: str = "config/config.yaml") -> Path:
    """The analysis folder a run of ``workdir``'s ``configfile`` writes into."""
    from snakemake.utils import validate

    config = yaml.safe_load((workdir / configfile).read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))  # defaults
    return workdir / analysis_dir(config, workdir / configfile)


def layout_of(workdir: Path, configfile: str = "config/config.yaml") -> Layout:
    """The :class:`Layout` of that folder (absolute paths)."""
    return Layout(results_dir(workdir, configfile))


def ci_rows() -> list[dict[str, str]]:
    """The rows of .test/config/sessions.tsv."""
    import pandas as pd

    frame = pd.read_csv(TEST_SHEET, sep="\t", dtype=str, keep_default_na=False)
    return frame.to_dict("records")


def synthetic_row(animal: str, seed: int = 1, duration: int = 30, **extra: str) -> dict[str, str]:
    row = {"animal": animal, "session": "s1", "group": "cohort",
           "neural_file": f"synthetic:synthetic-linear-track?animal={animal}&seed={seed}"
                          f"&duration={duration}"}
    row.update(extra)
    return row


def snakemake(workdir: Path, *args: str, timeout: float = 1800, check: bool = False,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in ``workdir``."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
               str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-5000:]}\n{result.stderr[-8000:]}")
    return result


def cebra_pipe(*args: str, cwd: Path | None = None, timeout: float = 600
               ) -> subprocess.CompletedProcess:
    """Run ``python -m cebra_pipe <args>``."""
    return subprocess.run([sys.executable, "-m", "cebra_pipe", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd or REPO)


def file_hashes(root: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of every file under ``root`` matching one of ``patterns`` (relative names)."""
    out = {}
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def planned_jobs(output: str) -> dict[str, int]:
    """``{rule: count}`` from the job-stats table of ``snakemake -n``."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("job ") and "count" in line:
            for row in lines[i + 2:]:
                parts = row.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    break
                if parts[0] != "total":
                    counts[parts[0]] = int(parts[1])
            break
    return counts
