"""End to end on CPU with the .test config: outputs, provenance, reports, reanalysis,
reproducibility, the Snakemake report, and the HTML report in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pipeline_helpers import (REPO, ci_rows, file_hashes, load_test_config, planned_jobs,
                              results_dir, snakemake, synthetic_row, write_workdir)

pytestmark = pytest.mark.slow

# Relative to the analysis folder (results_dir).
RESULT_PATTERNS = ("single/**/*.npy", "single/**/loss.tsv", "single/**/model.pt",
                   "multi/**/model.pt", "multi/**/embeddings.npz", "multi/**/loss.tsv",
                   "decoding/**/*.tsv", "controls/**/*.tsv", "consistency/**/*.tsv",
                   "tables/*.tsv", "hypotheses/**/*.tsv", "sessions/**/*.npz",
                   "splits/**/*.npz")


def planned(output: str, rule: str) -> list[dict[str, str]]:
    """Wildcards of every planned job of ``rule`` in ``snakemake -n`` output."""
    jobs, current = [], None
    for line in output.splitlines():
        stripped = line.strip()
        if re.match(r"^(local)?rule \w+:$", stripped):
            current = stripped.split()[-1].rstrip(":")
            if current == rule:
                jobs.append({})
        elif current == rule and stripped.startswith("wildcards:"):
            pairs = stripped[len("wildcards:"):].strip().split(", ")
            jobs[-1] = dict(kv.strip().split("=", 1) for kv in pairs)
    return jobs


def test_outputs_and_scores(ci_run):
    results = results_dir(ci_run)
    for name in ("overview", "rat1", "rat2"):
        html = results / "report" / f"{name}.html"
        assert html.is_file() and html.stat().st_size > 50_000
    decoding = pd.read_csv(results / "tables" / "decoding.tsv", sep="\t")
    assert set(decoding["kind"]) == {"single", "multi"}
    assert set(decoding["metric"]) == {"r2", "median_abs_error", "accuracy", "gof_bits",
                                       "infonce"}
    # sessions x configurations x seeds x (r2, error, accuracy, gof, infonce)
    assert len(decoding[decoding["kind"] == "single"]) == 2 * 3 * 2 * 5
    controls = pd.read_csv(results / "tables" / "controls.tsv", sep="\t")
    assert set(controls["label_set"]) == {"position"}
    hypotheses = pd.read_csv(results / "tables" / "hypotheses.tsv", sep="\t")
    assert {"animal", "session", "model", "label_set", "metric", "real", "null_median",
            "effect", "p_value", "p_adjusted", "verdict", "num_nulls", "min_p"} \
        <= set(hypotheses.columns)
    # sessions x (gof_bits, r2, median_abs_error) of the one label set's model
    assert len(hypotheses) == 2 * 3 and set(hypotheses["label_set"]) == {"position"}
    assert set(hypotheses["verdict"]) <= {"encoded", "not supported"}
    assert (hypotheses["num_nulls"] == 200).all()
    assert (hypotheses["p_value"] >= hypotheses["min_p"] - 1e-9).all()
    assert (hypotheses["min_p"] - 1 / 201).abs().max() < 1e-6
    decoded = hypotheses[hypotheses["metric"] != "gof_bits"]
    assert decoded[["baseline_raw", "baseline_pca"]].notna().all().all()
    cohort = pd.read_csv(results / "tables" / "hypotheses_cohort.tsv", sep="\t")
    assert set(cohort["group"]) == {"cohort"} and (cohort["num_animals"] == 2).all()
    for animal in ("rat1", "rat2"):
        assert (results / "hypotheses" / animal / "s1.png").stat().st_size > 10_000
    consistency = pd.read_csv(results / "tables" / "consistency.tsv", sep="\t")
    assert {"runs", "sessions"} <= set(consistency["between"])
    assert set(consistency[consistency["between"] == "sessions"]["kind"]) == {"single", "multi"}
    loss = pd.read_csv(results / "single" / "rat1" / "s1" / "time" / "none" / "seed0" / "loss.tsv",
                       sep="\t")
    assert len(loss) == load_test_config()["models"]["time"]["max_iterations"]
    for job in ("train_single", "ingest", "report"):
        assert list((results / "logs" / job).rglob("*.log"))
        assert list((results / "benchmarks" / job).rglob("*.tsv"))
    assert not list((results / "checkpoints").rglob("*.pt"))


def test_reports_show_chance_units_embeddings_titles_and_summary(ci_run):
    import matplotlib.image

    report = results_dir(ci_run) / "report"
    animal = (report / "rat1.html").read_text()
    assert "<title>cebra_pipe CI run: animal rat1</title>" in animal
    for text in ("position R² (chance 0)", "position median |error| (cm)",
                 "direction accuracy (chance 0.", "GoF (bits, chance 0)",
                 "standard deviation over seeds", "One row per label"):
        assert text in animal, text
    # one interactive view per configuration, plotly.js inlined once (offline readers)
    assert animal.count('class="plotly-graph-div"') == 3
    assert animal.count("plotly.js v") == 1 and 'src="https://cdn.plot.ly' not in animal
    assert '"colorbar"' in animal and "position (cm)" in animal and "dim 3" in animal
    # embeddings.png: a row per label (position, direction), a column per configuration
    height, width = matplotlib.image.imread(results_dir(ci_run) / "figures" / "rat1" / "s1"
                                            / "embeddings.png").shape[:2]
    assert (round(height / 310), round(width / 340)) == (2, 3)
    overview = (report / "overview.html").read_text()
    assert "<title>cebra_pipe CI run: cohort overview</title>" in overview
    summary = overview[overview.index("What was run"):overview.index('id="Sessions"')]
    for text in ("behavior (60 iterations)", "seeds 0, 1", "is supported (every session",
                 "between seeds is highest for", 'href="rat1.html"', 'href="rat2.html"',
                 "We tested 1 label set(s)"):
        assert text in summary, text
    assert "standard deviation over seeds" in overview
    assert overview.count('id="Summary"') == 1
    assert "dashed line: chance" in overview and "Multi-session embeddings" in overview
    assert overview.count('class="plotly-graph-div"') == 1
    assert overview.count("plotly.js v") == 1


def test_every_result_has_provenance(ci_run):
    results = results_dir(ci_run)
    for folder in (results / "single").rglob("seed*"):
        record = json.loads((folder / "provenance.json").read_text())
        assert record["seeds"] == [int(folder.name[4:])]
        assert len(record["config_sha256"]) == 64
        assert all(len(h) == 64 for h in record["inputs"].values())
        assert {"torch", "numpy", "cebra_pipe", "python"} <= set(record["versions"])
    for table in (results / "decoding").rglob("*.tsv"):
        assert table.with_suffix(".provenance.json").is_file()
    text = "".join(p.read_text() for p in results.rglob("*provenance.json"))
    assert str(ci_run) not in text and str(ci_run.resolve()) not in text


def test_reports_embed_no_absolute_paths(ci_run):
    forbidden = [str(ci_run), str(ci_run.resolve()), str(REPO), str(Path.home()) + "/",
                 "site-packages", "/tmp/"]
    for path in list((results_dir(ci_run) / "report").rglob("*.html")) + list(
            (results_dir(ci_run) / "report").rglob("*.ipynb")):
        text = path.read_text()
        found = [f for f in forbidden if f in text]
        assert not found, f"{path.name} embeds {found}"


def test_snakemake_report(ci_run, tmp_path):
    result = snakemake(ci_run, "--report", "report.html", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = ci_run / "report.html"
    assert report.stat().st_size > 100_000
    text = report.read_text(errors="replace")
    for category in ("Notebook reports", "Consistency", "Hypothesis tests", "Cohort tables"):
        assert category in text
    for path in (str(ci_run), str(ci_run.resolve()), str(REPO)):
        # an absolute path starts after a quote, a space or '=' (not after '../')
        found = re.search(r"""(^|[\s"'=(])""" + re.escape(path), text)
        assert found is None, f"the Snakemake report embeds {path}"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")


@pytest.mark.skipif(_chromium() is None and not os.environ.get("CI"),
                    reason="needs headless Chromium (Debian: chromium); never skipped in CI")
def test_html_report_renders_in_chromium(ci_run, tmp_path):
    browser = _chromium()
    page = (results_dir(ci_run) / "report" / "overview.html").resolve().as_uri()
    flags = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000"]
    dom = subprocess.run(flags + ["--dump-dom", page], capture_output=True, text=True,
                         timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "cohort overview" in dom.stdout and dom.stdout.count("<img") >= 3
    animal = (results_dir(ci_run) / "report" / "rat1.html").resolve().as_uri()
    dom = subprocess.run(flags + ["--dump-dom", animal], capture_output=True, text=True,
                         timeout=180)
    # plotly.js (inlined, no network) drew the interactive 3-D views
    assert dom.stdout.count('class="main-svg"') >= 3, dom.stderr[-2000:]
    shot = tmp_path / "overview.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,1600", page],
                   capture_output=True, timeout=180)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.std() > 0.02, "the rendered page is blank"


def test_rerun_does_nothing_and_reanalysis_runs_only_what_changed(ci_run, tmp_path):
    # Same depth as ci_run, so the relative path to the notebooks does not change.
    workdir = tmp_path
    shutil.copytree(ci_run, workdir, symlinks=True, dirs_exist_ok=True)  # keeps mtimes
    nothing = snakemake(workdir, "-n", timeout=300)
    assert "Nothing to be done" in nothing.stdout + nothing.stderr, nothing.stdout[-3000:]

    # Adding an animal: only its jobs (and the cohort-level ones) run.
    rows = ci_rows() + [synthetic_row("rat3")]
    write_workdir(workdir, load_test_config(), rows)
    result = snakemake(workdir, "-n", timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    for rule in ("ingest", "split", "train_single", "decode", "figures", "report_animal"):
        animals = {job.get("animal") for job in planned(text, rule)}
        assert animals == {"rat3"}, f"{rule} would run for {animals}"
    assert planned_jobs(text)["train_single"] == 2 and planned_jobs(text)["train_null"] == 1

    # Changing one model's parameter: only that model's jobs rerun.
    write_workdir(workdir, load_test_config(), ci_rows())
    config = load_test_config()
    config["models"]["time"]["learning_rate"] = 0.002
    write_workdir(workdir, config, ci_rows())
    result = snakemake(workdir, "-n", timeout=300)
    text = result.stdout + result.stderr
    trained = planned(text, "train_single")
    assert trained and {j["model"] for j in trained} == {"time"}, trained
    assert {j["model"] for j in planned(text, "decode")} == {"time"}
    assert not planned(text, "ingest") and not planned(text, "train_multi")


def test_same_config_gives_bit_identical_results(ci_run, tmp_path):
    again = write_workdir(tmp_path / "again", load_test_config(), ci_rows())
    snakemake(again, "--cores", "2", "--until", "table", "hypotheses_cohort", check=True)
    first = file_hashes(results_dir(ci_run), RESULT_PATTERNS)
    second = file_hashes(results_dir(again), RESULT_PATTERNS)
    assert len(first) > 50
    assert first == second, sorted(k for k in first if first[k] != second.get(k))
