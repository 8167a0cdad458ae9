"""The results layout (cebra_pipe/pipeline/layout.py): one analysis folder per config,
every path and the shuffled-control naming spelled in one module, the overview never
left beside per-animal reports it does not summarise, Snakemake's report in the
analysis folder."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from cebra_pipe.pipeline import config as cp_config
from cebra_pipe.pipeline.layout import (LABELS_WILDCARD, SHUFFLED_SUFFIX, Layout, analysis_dir,
                                        analysis_name, is_shuffled, shuffled_labels,
                                        split_shuffled)
from cebra_pipe.pipeline.report import invalidate, is_stale, main as report_main
from pipeline_helpers import (REPO, layout_of, load_test_config, results_dir, snakemake,
                              synthetic_row, write_workdir)


# ------------------------------------------------------------------- naming
@pytest.mark.parametrize("configfile, name", [
    ("config/config.yaml", "config"),
    ("config/rats/config.yaml", "rats"),
    ("my/lab_a.yaml", "lab_a"),
    ("/abs/path/study-2/config.yml", "study-2"),
])
def test_analysis_name_derived_from_the_config_file(configfile, name):
    assert analysis_name({}, configfile) == name
    assert analysis_dir({"results_dir": "out"}, configfile) == f"out/{name}"


def test_analysis_field_wins_over_the_file_name():
    config = {"analysis": "pilot", "results_dir": "results"}
    assert analysis_dir(config, "config/rats/config.yaml") == "results/pilot"


@pytest.mark.parametrize("config, configfile, message", [
    ({}, None, "config field 'analysis' is needed"),
    ({"analysis": "../elsewhere"}, "c.yaml", "config field 'analysis' is '../elsewhere'"),
    ({}, "config/my lab.yaml", "derived from config file 'config/my lab.yaml'"),
])
def test_bad_analysis_names_are_refused(config, configfile, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        analysis_name(config, configfile)


def test_shuffled_names_round_trip_and_match_the_wildcard():
    for labels, expected in [("position", ("position", None)),
                             (shuffled_labels("position"), ("position", 0)),
                             (shuffled_labels("pos+dir", 3), ("pos+dir", 3))]:
        assert split_shuffled(labels) == expected
        assert is_shuffled(labels) == (expected[1] is not None)
        assert re.fullmatch(LABELS_WILDCARD, labels)
    assert shuffled_labels("position", 2) == "position" + SHUFFLED_SUFFIX + "2"
    variant = cp_config.Variant("behavior", shuffled_labels("position", 2))
    assert (variant.label_set, variant.shuffled, variant.null_index) == ("position", True, 2)


def test_every_path_lies_in_the_analysis_folder():
    layout = Layout("results/rats")
    folder = layout.single_dir("a1", "s1", "behavior", "position")
    paths = [layout.session_file("a1", "s1"), layout.split_file("a1", "s1", "provenance.json"),
             layout.seed_file(folder, 3, "model.pt"), layout.multi_dir("g", "m", "none"),
             layout.checkpoint_dir("single", "a1"), layout.decode_file("a1", "s1", "m", "l"),
             layout.multi_decode_file("g", "m", "l"), layout.controls_file("a1", "s1"),
             layout.consistency_runs_file("a1", "s1", "m", "l", "png"),
             layout.consistency_datasets_file("multi", "g", "m", "l"),
             layout.hypotheses_file("a1", "s1"), layout.attribution_file("a1", "s1", "json"),
             layout.figure_file("a1", "s1", "loss.png"), layout.table_file("decoding"),
             layout.report_file("overview"), layout.report_notebook("a1"),
             layout.snakemake_report(), layout.log_file("train", "a1", "s1"),
             layout.benchmark_file("train", "a1", "s1")]
    assert all(p.startswith("results/rats/") for p in paths), paths
    assert len(set(paths)) == len(paths)
    assert layout.seed_file(folder, 3, "model.pt").endswith("/position/seed3/model.pt")
    # Wildcard patterns pass through unchanged, so rules and steps share one spelling.
    assert layout.session_file("{animal}", "{session}") == "results/rats/sessions/{animal}/{session}.npz"


def _code(path: Path) -> str:
    """A file's code; for a notebook, all cells but the parameters cell (its defaults are
    examples that papermill replaces)."""
    if path.suffix != ".ipynb":
        return path.read_text()
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                     if "parameters" not in c.metadata.get("tags", []))


def _files(*roots: Path, suffixes=(".py", ".smk", ".ipynb")) -> list[Path]:
    out = [REPO / "Snakefile"]
    for root in roots:
        out += [p for p in root.rglob("*") if p.suffix in suffixes and "__pycache__" not in p.parts]
    return out


def test_no_other_file_spells_the_layout_or_the_shuffled_suffix():
    """Rules, steps and notebooks take paths and names from layout.py."""
    spelled = re.compile(r"""["'/]results/|\{RESULTS\}|-shuffled["\[(\\d]|/ f["']seed\{\w+\}["']""")
    offenders = [str(p.relative_to(REPO)) for p in _files(
        REPO / "cebra_pipe", REPO / "workflow", REPO / "notebooks")
        if p.name != "layout.py" and spelled.search(_code(p))]
    assert not offenders


# -------------------------------------------------------------- stale summaries
def _notebook(path: Path) -> Path:
    params = nbformat.v4.new_code_cell("animal = 'x'")
    params.metadata["tags"] = ["parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(
        "print(animal)")], metadata={"kernelspec": {"name": "python3", "language": "python",
                                                    "display_name": "Python 3"}}), path)
    return path


def _render(tmp_path: Path, name: str, *extra: str) -> None:
    report_main(["--notebook", str(_notebook(tmp_path / "t.ipynb")), "--parameters",
                 json.dumps({"animal": name}), "--out-html", str(tmp_path / f"{name}.html"),
                 "--out-notebook", str(tmp_path / f"{name}.ipynb"),
                 "--provenance", str(tmp_path / f"{name}.json"), *extra])


def test_a_summary_is_stale_when_what_it_summarises_changes(tmp_path):
    _render(tmp_path, "rat1")
    _render(tmp_path, "rat2")
    pages = [str(tmp_path / "rat1.html"), str(tmp_path / "rat2.html")]
    _render(tmp_path, "overview", "--summarises", *pages)
    provenance = tmp_path / "overview.json"
    assert not is_stale(provenance, pages)
    assert is_stale(provenance, pages[:1])  # another set of pages
    assert is_stale(provenance, pages + [str(tmp_path / "rat3.html")])  # one not made yet
    assert is_stale(tmp_path / "missing.json", pages)
    # A new version of an animal page removes the overview made from the old one.
    overview = [tmp_path / f"overview.{ext}" for ext in ("html", "ipynb", "json")]
    _render(tmp_path, "rat1", "--invalidates", *map(str, overview))
    assert not any(p.exists() for p in overview)
    assert invalidate(overview) == []


# ---------------------------------------------------------------- workflows
def _small_config(**changes) -> dict:
    config = load_test_config()
    config["seeds"] = [0]
    config["models"] = {"time": {**config["models"]["time"], "max_iterations": 20}}
    config["multi_session"] = {}
    config["attribution"] = {"enabled": False}
    config.update(changes)
    return config


def _write_config(workdir: Path, relative: str, config: dict, rows: list[dict]) -> str:
    """A config file at ``relative`` with its own sheet beside it."""
    path = workdir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = path.with_suffix(".tsv")
    columns = ["animal", "session", "neural_file", "group"]
    sheet.write_text("\n".join(["\t".join(columns)] + [
        "\t".join(str(r.get(c, "")) for c in columns) for r in rows]) + "\n")
    path.write_text(yaml.safe_dump({**config, "sessions": str(sheet.relative_to(workdir))}))
    return relative


@pytest.mark.slow
def test_two_configs_leave_two_complete_separate_analyses(tmp_path):
    first = _write_config(tmp_path, "config/pilot.yaml", _small_config(),
                          [synthetic_row("rat1"), synthetic_row("rat2", seed=2)])
    second = _write_config(tmp_path, "config/rats/config.yaml", _small_config(),
                           [synthetic_row("rat3", seed=3)])
    for configfile in (first, second):
        snakemake(tmp_path, "--cores", "2", "--configfile", configfile, check=True)
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["pilot", "rats"]
    for configfile, animals in ((first, {"rat1", "rat2"}), (second, {"rat3"})):
        folder = results_dir(tmp_path, configfile)
        pages = {p.stem for p in (folder / "report").glob("*.html")}
        assert pages == animals | {"overview"}, pages
        sessions = (folder / "tables" / "sessions.tsv").read_text()
        assert all(a in sessions for a in animals)
        assert list((folder / "logs").rglob("*.log")) and list((folder / "benchmarks").rglob("*.tsv"))
    assert not (tmp_path / "report.html").exists()

    # Snakemake's own report of an analysis goes into that analysis' folder.
    target = os.path.relpath(layout_of(tmp_path, first).snakemake_report(), tmp_path)
    snakemake(tmp_path, "--configfile", first, "--report", target, check=True)
    assert Path(tmp_path / target).stat().st_size > 10_000
    assert Path(tmp_path / target).is_relative_to(results_dir(tmp_path, first))


@pytest.mark.slow
def test_a_failed_run_leaves_no_stale_overview(tmp_path):
    config = _small_config()
    rows = [synthetic_row("rat1"), synthetic_row("rat2", seed=2)]
    write_workdir(tmp_path, config, rows)
    snakemake(tmp_path, "--cores", "2", check=True)
    layout = layout_of(tmp_path)
    overview = Path(layout.report_file("overview"))
    assert overview.is_file()

    # rat1's data changes (its page is made again) and a new animal's file is corrupt.
    (tmp_path / "broken.npz").write_bytes(b"not an npz file")
    rows = [synthetic_row("rat1", seed=7), rows[1],
            {"animal": "rat3", "session": "s1", "group": "cohort", "neural_file": "broken.npz",
             "neural_key": "neural"}]
    write_workdir(tmp_path, config, rows)
    before = Path(layout.report_file("rat1")).stat().st_mtime_ns
    result = snakemake(tmp_path, "--cores", "2", "--keep-going")
    assert result.returncode != 0
    assert "broken.npz" in Path(layout.log_file("ingest", "rat3", "s1")).read_text()
    assert Path(layout.report_file("rat1")).stat().st_mtime_ns != before  # a new page
    assert not overview.exists(), "the old overview stayed beside the new rat1 page"
    assert not Path(layout.report_notebook("overview")).exists()
