"""Run the reference cebra 0.6.1's own tests of its public contract against cebra_pipe.

The test files come from the ``cebra`` source distribution, fetched now with
``pip download`` (nothing of cebra is installed or copied into this repository).
They run in this environment with ``import cebra`` resolved to cebra_pipe
(``cebra_alias.py``). Files and tests of the reference's private internals are left
out (``INTERNAL_FILES``, ``INTERNAL_TESTS``, each with its reason); the rest counts.

    python tests/compat/cebra_contract/run_contract.py            # fetch and run
    python tests/compat/cebra_contract/run_contract.py --sdist cebra-0.6.1.tar.gz -k sklearn

Prints the pass rate per file and overall; ``--min-pass-rate`` makes it an exit status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSION = "0.6.1"
# Files that test the public contract (names, signatures, behaviours users rely on).
CONTRACT_FILES = ("test_api.py", "test_criterions.py", "test_data_helper.py",
                  "test_datasets.py", "test_distributions.py", "test_grid_search.py",
                  "test_load.py", "test_models.py", "test_plot.py", "test_sklearn.py",
                  "test_sklearn_decoder.py", "test_sklearn_metrics.py", "test_usecases.py")
# Left out: they test the reference's private internals or need its network data.
INTERNAL_FILES = {
    "test_attribution.py": "private _jacobian helpers", "test_benchmark.py": "timing",
    "test_cli.py": "empty", "test_data_masking.py": "private masking internals",
    "test_dlc.py": "downloads DeepLabCut data", "test_index.py": "empty",
    "test_integration_train.py": "solver internals", "test_integration_xcebra.py":
    "xCEBRA internals", "test_io.py": "private io helpers", "test_loader.py":
    "loader internals", "test_multiobjective.py": "experimental API",
    "test_plotly.py": "plotly integration", "test_registry.py": "registry internals",
    "test_sklearn_legacy.py": "downloads legacy files", "test_solver.py":
    "solver internals", "test_solver_batched.py": "solver internals",
}
# Single tests inside contract files that exercise private names.
INTERNAL_TESTS = {
    "test_models.py::test_version_check": "private _check_torch_version",
    "test_models.py::test_registry": "registry internals",
    "test_plot.py::test_compare_models_with_different_versions": "patches private names",
    "test_plot.py::test_plot_consistency_unordered_labels": "private _ConsistencyPlot",
    "test_sklearn.py::test_api": "calls the private _compute_offset before each sklearn "
                                 "check (cebra_pipe runs sklearn's checks itself)",
    "test_sklearn.py::test_new_transform": "compares with the private _select_model",
    "test_sklearn.py::test_sklearn_dataset": "private SklearnDataset",
    "test_sklearn.py::test_init_loader": "private _init_loader",
    "test_sklearn.py::test_move_cpu_to_mps_device": "private helper._is_mps_availabe",
    "test_sklearn.py::test_move_mps_to_cuda_device": "private helper._is_mps_availabe",
    "test_sklearn.py::test_mps": "private helper._is_mps_availabe",
    "test_sklearn.py::test_check_device": "patches private helper functions",
    "test_sklearn_decoder.py::test_dtype_checker": "private helper._is_integer",
    "test_usecases.py::test_dataset": "private SklearnDataset",
    "test_datasets.py::test_download_file": "private assets downloader",
}

_CONFTEST = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import cebra_alias
cebra_alias.install()
import matplotlib
matplotlib.use("Agg")
"""


def fetch_sdist(directory: Path) -> Path:
    """Download cebra's source distribution (no install) into ``directory``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--no-binary", ":all:", f"cebra=={VERSION}", "-d", str(directory)],
                   check=True)
    return next(directory.glob(f"cebra-{VERSION}.tar.gz"))


def extract_tests(sdist: Path, directory: Path) -> Path:
    """The sdist's ``tests/`` folder under ``directory``, with the alias conftest."""
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers()
                   if m.name.startswith(f"cebra-{VERSION}/tests/") and m.isfile()]
        archive.extractall(directory, members=members, filter="data")
    tests = directory / f"cebra-{VERSION}" / "tests"
    (tests / "conftest.py").write_text(_CONFTEST)
    (tests / "pytest.ini").write_text("[pytest]\nmarkers =\n    requires_dataset\n"
                                      "    benchmark\n    fast\n    slow\n")
    return tests


def run(tests: Path, extra: list[str]) -> Path:
    """Run the contract files with pytest; returns the JUnit XML report."""
    report = tests / "report.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
               "-c", str(tests / "pytest.ini"), "--rootdir", str(tests),
               "-o", "addopts=", "--continue-on-collection-errors", "-m", "not requires_dataset and not benchmark",
               f"--junitxml={report}", "-W", "ignore::DeprecationWarning",
               *[str(tests / f) for f in CONTRACT_FILES],
               *[f"--deselect={t}" for t in INTERNAL_TESTS], *extra]
    subprocess.run(command, cwd=tests)
    return report


def summarize(report: Path) -> dict[str, Counter]:
    """Outcome counts per test file (passed, failed, error, skipped)."""
    per_file: dict[str, Counter] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        name = (case.get("classname") or "?").split(".")[0] + ".py"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
        per_file.setdefault(name, Counter())[outcome] += 1
    return per_file


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help=f"cebra-{VERSION}.tar.gz (else fetched)")
    parser.add_argument("--min-pass-rate", type=float, default=0.0)
    args, extra = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or fetch_sdist(Path(tmp))
        per_file = summarize(run(extract_tests(sdist, Path(tmp)), extra))
    total = sum(per_file.values(), Counter())
    counted = total["passed"] + total["failure"] + total["error"]
    for name, counts in sorted(per_file.items()):
        print(f"{name:28s} passed {counts['passed']:4d}  failed {counts['failure']:4d}  "
              f"errors {counts['error']:4d}  skipped {counts['skipped']:4d}")
    rate = total["passed"] / counted if counted else 0.0
    print(f"overall: {total['passed']} of {counted} collected tests pass ({100 * rate:.1f} %),"
          f" {total['skipped']} skipped")
    if rate < args.min_pass_rate:
        sys.exit(1)
    return rate


if __name__ == "__main__":
    main()
