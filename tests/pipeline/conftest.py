"""Fixtures for the workflow tests (helpers live in pipeline_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_helpers import ci_rows, load_test_config, snakemake, write_workdir


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> Path:
    """The .test config run end to end on CPU once per session (shared by slow tests)."""
    workdir = write_workdir(tmp_path_factory.mktemp("test_run"), load_test_config(),
                            ci_rows())
    snakemake(workdir, "--cores", "2", check=True)
    return workdir
