"""The .test demo through a real single-node SLURM cluster (started by .ci/slurm.sh).

First run: the sheet also holds a session whose data file is corrupt. Its ingest job
fails on SLURM (non-zero exit); Snakemake reports it and, with the profile's
``keep-going``, finishes everything that does not depend on it (the two good animals'
reports). Second run, the bad row removed: only the cohort-level jobs remain, and the
overview report appears. Training jobs ask SLURM for a GPU (``--gpus=1``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import pytest

from pipeline_helpers import REPO, ci_rows, load_test_config, results_dir, snakemake, write_workdir

# In CI (CI=true) nothing may be skipped: a missing prerequisite must fail the run.
_IN_CI = bool(os.environ.get("CI"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _IN_CI and (os.name != "posix" or os.geteuid() != 0),
                       reason="starting a local SLURM cluster needs root"),
    pytest.mark.skipif(not _IN_CI
                       and importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                       reason="needs snakemake-executor-plugin-slurm"),
    pytest.mark.skipif(not _IN_CI and shutil.which("slurmctld") is None
                       and shutil.which("apt-get") is None,
                       reason="needs slurm-wlm (or apt-get to install it)"),
]

SLURM = REPO / ".ci" / "slurm.sh"
SLURM_ARGS = ("--profile", str(REPO / "workflow" / "profiles" / "slurm"),
              "--slurm-status-command", "squeue", "--slurm-no-account",
              "--slurm-init-seconds-before-status-checks", "2", "--jobs", "4",
              "--latency-wait", "10")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-state")
    env = {**os.environ, "CEBRA_SLURM_DIR": str(state)}
    started = subprocess.run([str(SLURM), "start"], env=env, capture_output=True, text=True,
                             timeout=900)
    if started.returncode != 0:
        pytest.fail(f"local SLURM cluster did not start:\n{started.stderr[-3000:]}")
    yield
    subprocess.run([str(SLURM), "stop"], env=env, capture_output=True, timeout=300)


def _jobs_asking_for_a_gpu() -> list[str]:
    """``scontrol`` records of the cluster's jobs that requested a GPU (squeue keeps
    finished jobs for an hour, MinJobAge)."""
    ids = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i"], capture_output=True,
                         text=True).stdout.split()
    records = [subprocess.run(["scontrol", "show", "job", "-o", i], capture_output=True,
                              text=True).stdout for i in ids]
    return [r for r in records if "gres:gpu:1" in r or "gres/gpu" in r]


def test_demo_on_slurm_with_a_failing_job(cluster, tmp_path):
    data = tmp_path / "work" / "data"
    data.mkdir(parents=True)
    (data / "broken.npz").write_bytes(b"PK\x03\x04 this archive is cut short")
    rows = ci_rows() + [{"animal": "broken", "session": "s1", "group": "cohort",
                         "neural_file": "data/broken.npz", "neural_key": "neural"}]
    config = load_test_config()
    workdir = write_workdir(tmp_path / "work", config, rows)

    result = snakemake(workdir, *SLURM_ARGS, timeout=2400)
    text = result.stdout + result.stderr
    assert result.returncode != 0, text[-4000:]
    assert "Error in rule ingest" in text and "broken" in text, text[-4000:]
    log = (results_dir(workdir) / "logs" / "ingest" / "broken" / "s1.log").read_text()
    assert "broken.npz" in log and "corrupt" in log, log
    results = results_dir(workdir)
    for animal in ("rat1", "rat2"):  # independent of the failed job: completed
        assert (results / "report" / f"{animal}.html").is_file(), text[-4000:]
        assert (results / "tables" / "decoding.tsv").exists() is False  # needs all sessions
    assert not (results / "sessions" / "broken").exists()
    multi = results / "multi" / "cohort" / "behavior" / "position" / "seed1" / "model.pt"
    assert not multi.exists()  # the group model needs the broken session
    assert not (results / "report" / "overview.html").exists()
    # every training job asked SLURM for a GPU (6 single-session jobs ran)
    assert len(_jobs_asking_for_a_gpu()) == 6

    write_workdir(workdir, config, ci_rows())  # drop the bad row
    result = snakemake(workdir, *SLURM_ARGS, timeout=2400)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-4000:]
    assert "rule train_single" not in text  # finished work was not redone
    assert multi.is_file() and (results / "report" / "overview.html").is_file()
    assert len(_jobs_asking_for_a_gpu()) == 7  # + the multi-session training job
