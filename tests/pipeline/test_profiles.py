"""The plain ``snakemake --cores N`` uses the workflow's profile and shows a failed job's error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.pipeline.pipeline_helpers import REPO, load_test_config, snakemake, write_workdir


def test_default_profile_is_where_snakemake_looks_and_suits_every_executor():
    # Snakemake looks for profiles/default next to the Snakefile.
    found = REPO / "profiles" / "default" / "config.yaml"
    settings = yaml.safe_load(found.read_text())
    assert settings["show-failed-logs"] is True and settings["rerun-incomplete"] is True
    assert "quiet" not in settings  # keeps Snakemake's "N of M steps (x%) done" lines
    # Its values override any --profile (e.g. slurm's latency-wait, jobs, executor).
    slurm = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert all(slurm.get(key, value) == value for key, value in settings.items())


@pytest.mark.slow
def test_plain_snakemake_prints_the_failed_jobs_error(tmp_path: Path):
    (tmp_path / "corrupt.npy").write_bytes(b"this is not an npy file")
    row = {"animal": "lab1", "session": "day1", "group": "cohort",
           "neural_file": "corrupt.npy"}
    config = {**load_test_config(), "multi_session": {}}
    workdir = write_workdir(tmp_path, config, [row])
    result = snakemake(workdir, "--cores", "1", "--until", "ingest", timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "workflow specific profile" in out
    error = [line for line in out.splitlines() if line.startswith("cebra_pipe ingest: error:")]
    assert error and "corrupt.npy" in error[0], out[-4000:]
