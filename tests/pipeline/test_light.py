"""A light pipeline: table-only steps never load torch; chained steps share one start-up.

Every workflow job starts a fresh Python; torch alone costs about 1.5-2 CPU-seconds to
import, so a table-only step that imports it pays that for nothing. The slow test runs
the CI workflow with a ``sitecustomize`` probe on ``PYTHONPATH`` that records, when each
``python -m cebra_pipe <step>`` process exits, whether torch was loaded. Steps chained
with ``--then`` (one job, several outputs) must write what each writes alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cebra_pipe.__main__ import THEN, main
from cebra_pipe.pipeline import STEPS
from cebra_pipe.pipeline.common import EXIT_BAD_INPUT
from pipeline_helpers import ci_rows, load_test_config, snakemake, write_workdir

# Steps that read tables and arrays only: they must not import torch.
TABLE_STEPS = {"ingest", "split", "consistency-runs", "consistency-datasets", "controls",
               "figures", "aggregate", "hypotheses", "report"}
# Steps that run a model: they must import torch (so the probe can see an import).
MODEL_STEPS = {"train-single", "train-multi", "decode", "hypotheses-session", "hypotheses-loao",
               "attribution", "join-cohort"}

PROBE = textwrap.dedent("""
    import atexit, json, os, sys

    def _record():
        argv = list(sys.argv)
        if len(argv) > 1 and argv[0].endswith(os.path.join("cebra_pipe", "__main__.py")):
            with open(os.environ["CEBRA_PIPE_IMPORT_PROBE"], "a") as out:
                out.write(json.dumps({"step": argv[1], "torch": "torch" in sys.modules}) + "\\n")

    atexit.register(_record)
""")


def probe_env(tmp_path: Path) -> dict[str, str]:
    """Environment that loads the torch probe into every Python the workflow starts."""
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(PROBE)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "CEBRA_PIPE_IMPORT_PROBE": str(tmp_path / "probe.jsonl")}


def read_probe(tmp_path: Path) -> dict[str, set[bool]]:
    """``{step: {torch loaded?, ...}}`` over every recorded process."""
    seen: dict[str, set[bool]] = {}
    for line in (tmp_path / "probe.jsonl").read_text().splitlines():
        record = json.loads(line)
        seen.setdefault(record["step"], set()).add(record["torch"])
    return seen


def test_every_step_is_classified():
    assert set(STEPS) == TABLE_STEPS | MODEL_STEPS
    assert not TABLE_STEPS & MODEL_STEPS


@pytest.mark.parametrize("step", sorted(TABLE_STEPS))
def test_table_step_help_loads_no_torch(step):
    """``python -m cebra_pipe <step> --help`` of a table step loads no torch."""
    code = ("import sys, contextlib, io\nfrom cebra_pipe.__main__ import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main([{step!r}, '--help'])\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_figure_and_report_code_loads_no_sklearn():
    """Importing any sklearn module loads sklearn.utils (scipy.stats and pandas, over a
    CPU-second): the figure, consistency and report steps' plotting must not."""
    code = ("import sys\nimport numpy as np\nimport cebra_pipe.plot as plot\n"
            "import cebra_pipe.pipeline.figures, cebra_pipe.pipeline.reportlib\n"
            "plot.plot_consistency(np.array([90.0, 80.0]), np.array([['a', 'b'], ['b', 'a']]), "
            "np.array(['a', 'b']))\nprint('sklearn' in sys.modules)\n"
            "try:\n    plot.plot_loss(object())\nexcept Exception as err:\n"
            "    print(type(err).__name__, 'sklearn' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.stdout.split() == ["False", "NotFittedError", "True"]


def test_probe_sees_torch(tmp_path):
    """The probe itself: the same step is recorded with torch when torch was loaded."""
    env = {**os.environ, **probe_env(tmp_path)}
    with_torch = ("import sys, torch\nimport cebra_pipe.__main__ as entry\n"
                  "sys.argv = [entry.__file__, 'split', '--help']\nentry.main()")
    for command in ([sys.executable, "-m", "cebra_pipe", "split", "--help"],
                    [sys.executable, "-c", with_torch]):
        subprocess.run(command, env=env, check=True, timeout=120, capture_output=True)
    assert read_probe(tmp_path) == {"split": {False, True}}


@pytest.mark.slow
def test_table_steps_run_without_torch(tmp_path):
    """The CI workflow end to end: table steps never load torch, model steps do."""
    workdir = write_workdir(tmp_path / "run", load_test_config(), ci_rows())
    snakemake(workdir, "--cores", "2", check=True, env=probe_env(tmp_path))
    seen = read_probe(tmp_path)
    assert {"train-single", "decode", "figures", "report", "aggregate"} <= set(seen)
    with_torch = {step for step, flags in seen.items() if True in flags}
    assert with_torch & TABLE_STEPS == set(), f"table-only steps loaded torch: {with_torch}"
    assert {step for step in seen if step in MODEL_STEPS} <= with_torch


# ------------------------------------------------------------- chained steps
def _table(path: Path, value: float) -> str:
    path.write_text(f"animal\tmetric\tvalue\nrat1\tr2\t{value}\n")
    return str(path)


def _aggregate(inputs: list[str], out: Path) -> list[str]:
    return ["aggregate", "--kind", "decoding", "--inputs", *inputs, "--out", str(out),
            "--provenance", str(out.with_suffix(".json"))]


def test_chained_steps_write_what_each_step_writes_alone(tmp_path):
    a, b = _table(tmp_path / "a.tsv", 0.5), _table(tmp_path / "b.tsv", 0.25)
    alone = tmp_path / "alone"
    alone.mkdir()
    assert main(_aggregate([a], alone / "one.tsv")) == 0
    assert main(_aggregate([a, b], alone / "two.tsv")) == 0
    chained = tmp_path / "chained"
    chained.mkdir()
    argv = _aggregate([a], chained / "one.tsv") + [THEN] + _aggregate([a, b], chained / "two.tsv")
    assert main(argv) == 0
    for name in ("one.tsv", "two.tsv"):
        assert (chained / name).read_bytes() == (alone / name).read_bytes()


def test_a_failing_step_stops_the_chain(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    argv = (_aggregate([str(tmp_path / "missing.tsv")], out / "one.tsv") + [THEN]
            + _aggregate([_table(tmp_path / "b.tsv", 0.25)], out / "two.tsv"))
    assert main(argv) == EXIT_BAD_INPUT
    assert "missing.tsv" in capsys.readouterr().err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("tail", [["not-a-step"], []])
def test_a_bad_chain_runs_nothing(tmp_path, capsys, tail):
    out = tmp_path / "out"
    out.mkdir()
    argv = _aggregate([_table(tmp_path / "a.tsv", 0.5)], out / "one.tsv") + [THEN] + tail
    assert main(argv) == 2
    assert ("not-a-step" if tail else THEN) in capsys.readouterr().err
    assert list(out.iterdir()) == []


def _priorities(dry_run: str) -> dict[str, set[int]]:
    """``{rule: {priority, ...}}`` of the jobs a ``snakemake -n`` run lists (0 if unsaid)."""
    found: dict[str, set[int]] = {}
    rule = None
    for line in dry_run.splitlines() + ["rule end:"]:
        words = line.split()
        if len(words) == 2 and words[0] in ("rule", "localrule") and words[1].endswith(":"):
            if rule is not None:
                found.setdefault(rule, set()).add(priority)
            rule, priority = words[1][:-1], 0
        elif rule is not None and words[:1] == ["priority:"]:
            priority = int(words[1])
    return found


def test_training_jobs_start_before_evaluation_jobs(tmp_path):
    # Snakemake runs the ready jobs of highest priority first: the multi-session job
    # (longest, with the cohort's evaluation behind it), then per-session training and
    # training nulls, then everything else, so no long job starts last.
    workdir = write_workdir(tmp_path, load_test_config(), ci_rows())
    result = snakemake(workdir, "-n", "--cores", "2", timeout=300, check=True)
    found = _priorities(result.stdout + result.stderr)
    assert {"train_multi", "train_single", "train_null", "decode", "report_overview"} <= set(found)
    assert found.pop("train_multi") == {20}
    assert found.pop("train_single") == found.pop("train_null") == {10}
    assert set().union(*found.values()) == {0}
