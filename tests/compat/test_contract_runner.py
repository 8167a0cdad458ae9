"""The contract runner's bookkeeping: outcomes from JUnit XML, expected failures."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "cebra_contract"))
import run_contract  # noqa: E402

README = Path(__file__).parents[2] / "README.md"

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="test_a" name="test_ok[x]" time="0.1"/>
<testcase classname="test_a" name="test_pickle[jl]" time="0.1">
  <failure message="PickleRefusedError: Refusing to read">trace</failure></testcase>
<testcase classname="test_a" name="test_pickle[pkl]" time="0.1">
  <failure message="AssertionError: wrong value">trace</failure></testcase>
<testcase classname="test_b.TestThing" name="test_method" time="0.1">
  <skipped message="no CUDA"/></testcase>
<testcase classname="" name="test_c" time="0.1">
  <error message="collection failure">ImportError</error></testcase>
</testsuite></testsuites>"""

EXPECTED = """
[reasons.pickle]
readme = "No code from data files."

[[expected]]
reason = "pickle"
tests = ["test_a.py::test_pickle[j?]", "test_a.py::test_other[*"]
message = "PickleRefusedError"
"""


@pytest.fixture
def result(tmp_path) -> run_contract.ContractResult:
    (tmp_path / "report.xml").write_text(JUNIT)
    (tmp_path / "expected.toml").write_text(EXPECTED)
    _, expectations = run_contract.load_expectations(tmp_path / "expected.toml")
    outcomes = run_contract.read_outcomes(tmp_path / "report.xml")
    return run_contract.explain(run_contract.ContractResult(outcomes), expectations)


def test_outcomes_are_keyed_by_pytest_id(result):
    assert set(result.outcomes) == {"test_a.py::test_ok[x]", "test_a.py::test_pickle[jl]",
                                    "test_a.py::test_pickle[pkl]",
                                    "test_b.py::TestThing::test_method", "test_c.py"}
    assert result.collection_errors == ["test_c.py"]
    assert result.passed == 1 and result.counted == 4 and result.rate == 0.25


def test_a_failure_needs_the_expected_id_and_message(result):
    assert result.reasons == {"test_a.py::test_pickle[jl]": "pickle"}
    # Same test, other failure text: a regression, as is the file that did not collect.
    assert result.unexpected == ["test_a.py::test_pickle[pkl]", "test_c.py"]


def test_expected_failures_that_did_not_happen_are_stale(result):
    # test_other[* matches no test of the run: the entry would hide nothing, remove it.
    assert result.stale == ["pickle: test_a.py::test_other[*"]


def test_check_fails_on_stale_entries_of_a_complete_run_only(result, monkeypatch):
    monkeypatch.setattr(run_contract, "run_contract", lambda *args: result)
    # only the stale entry is left to report: drop the regression and the collection error
    for test in ("test_a.py::test_pickle[pkl]", "test_c.py"):
        del result.outcomes[test]
    result.unexpected, result.reasons = [], {}  # (main prints the real file's reasons)
    with pytest.raises(SystemExit):
        run_contract.main(["--sdist", "cebra.tar.gz", "--check"])
    # -k narrows the run: entries for tests that did not run are not stale
    assert run_contract.main(["--sdist", "cebra.tar.gz", "--check", "-k", "pickle"]) is result


def test_reason_without_entries_is_refused(tmp_path):
    path = tmp_path / "expected.toml"
    path.write_text(EXPECTED + '\n[reasons.gone]\nreadme = "Known gaps"\n')
    with pytest.raises(ValueError, match=r"\['gone'\] explain no \[\[expected\]\] entry"):
        run_contract.load_expectations(path)


def test_expectation_with_unknown_reason_is_refused(tmp_path):
    path = tmp_path / "expected.toml"
    path.write_text(EXPECTED.replace('reason = "pickle"', 'reason = "typo"'))
    with pytest.raises(ValueError, match=r"expected\[0\]: reason 'typo' is not one of"):
        run_contract.load_expectations(path)


def test_every_reason_is_a_readme_bullet():
    section = README.read_text().split("### Where cebra_pipe differs", 1)[1].split("\n## ", 1)[0]
    bullets = re.findall(r"^- \*\*(.+?)\*\*", section, flags=re.MULTILINE)
    reasons, expectations = run_contract.load_expectations()
    assert expectations
    missing = {key: text for key, text in reasons.items()
               if not any(b.startswith(text) for b in bullets)}
    assert not missing, f"reasons without a README bullet: {missing}"


def test_every_reference_test_file_is_decided():
    assert not set(run_contract.CONTRACT_FILES) & set(run_contract.INTERNAL_FILES)
