"""Report building blocks: chance levels and units in score names, per-label embedding
figures with colour bars, interactive 3-D views, the overview summary, page titles."""

from __future__ import annotations

import sys

import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from cebra_pipe.pipeline import reportlib as rl  # noqa: E402
from cebra_pipe.pipeline.figures import _embedding_figure  # noqa: E402
from cebra_pipe.pipeline.report import (GENERATED_HTML, defuse, inline_plotly,  # noqa: E402
                                        main as report_main)


def _decoding_rows() -> pd.DataFrame:
    rows = []
    for seed, (r2, err, acc) in enumerate([(0.5, 2.0, 0.6), (0.7, 1.0, 0.8)]):
        base = {"animal": "rat1", "session": "s1", "model": "behavior", "labels": "position",
                "seed": seed}
        rows += [{**base, "target": "position", "metric": "r2", "value": r2},
                 {**base, "target": "position", "metric": "median_abs_error", "value": err},
                 {**base, "target": "direction", "metric": "accuracy", "value": acc},
                 {**base, "target": "-", "metric": "gof_bits", "value": 0.1}]
    return pd.DataFrame(rows)


def test_decoding_summary_names_chance_levels_and_units():
    table = rl.decoding_summary(_decoding_rows(), units={"position": "cm"},
                                classes={("rat1", "s1"): {"direction": 4}})
    assert set(table.columns) == {"position R² (chance 0)", "position median |error| (cm)",
                                  "direction accuracy (chance 0.25)", "GoF (bits, chance 0)"}
    assert table.loc[("behavior", "position"), "position R² (chance 0)"] == "0.600 ± 0.141"


def test_chance_text_spans_sessions_with_different_class_counts():
    assert rl.chance_text([2]) == "chance 0.5"
    assert rl.chance_text([2, 4, 4]) == "chance 1/classes: 0.25-0.5"
    assert rl.score_name("x", "median_abs_error") == "x median |error| (label units)"


def test_embedding_figure_has_a_row_per_label_and_colour_bars(tmp_path):
    variants = [("time", "none"), ("behavior", "position")]
    for model, labels in variants:
        folder = tmp_path / model / labels / "seed0"
        folder.mkdir(parents=True)
        np.save(folder / "embedding_valid.npy", np.random.default_rng(0).normal(size=(50, 5)))
    colors = {"position": np.linspace(0, 1, 50), "direction": np.arange(50) % 3.0}
    fig = _embedding_figure(tmp_path, variants, 0, colors, {"position": "cm"}, step=2,
                            discrete=frozenset({"direction"}))
    scatters = [ax for ax in fig.axes if ax.collections and ax.name == "3d"]
    bars = [ax for ax in fig.axes if ax.name != "3d"]
    assert len(scatters) == 4
    assert sorted(ax.get_ylabel() for ax in bars) == ["direction (class)", "direction (class)",
                                                      "position (cm)", "position (cm)"]
    ticks = [list(ax.get_yticks()) for ax in bars if ax.get_ylabel() == "direction (class)"]
    assert ticks[0] == [0.0, 1.0, 2.0]
    assert all("dims 1-3 of 5" in ax.get_title() for ax in scatters)
    assert len(scatters[0].collections[-1].get_offsets()) == 25


def test_embedding_figure_names_a_missing_embedding(tmp_path):
    from cebra_pipe.pipeline.common import PipelineError

    with pytest.raises(PipelineError, match="embedding_valid.npy"):
        _embedding_figure(tmp_path, [("time", "none")], 0, {"t": np.zeros(3)}, {}, 1)


def _capture(monkeypatch) -> list:
    import IPython.display

    shown: list = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, metadata=None: shown.append((obj, metadata)))
    return shown


def test_interactive_view_and_plotly_inlined_once_per_page(monkeypatch):
    pytest.importorskip("plotly")
    shown = _capture(monkeypatch)
    embedding = np.random.default_rng(0).normal(size=(40, 3))
    for _ in range(2):
        rl.show_interactive([("s1", embedding, np.arange(40.0))], "rat1 <b>x</b>",
                            "position (cm)", max_points=20)
    (first, meta), (second, _) = shown
    assert meta == {GENERATED_HTML: True}
    assert "plotly-graph-div" in first.data and len(first.data) < 100_000  # no plotly.js
    assert "position (cm)" in first.data and '"colorbar"' in first.data
    assert "dim 3" in first.data and '"type":"scatter3d"' in first.data
    assert "<b>x" not in first.data and "lt;b" in first.data  # user text escaped for plotly
    page = inline_plotly(f"<html><head></head><body>{first.data}{second.data}</body></html>")
    assert page.count("plotly.js v") == 1 and page.index("plotly.js v") < page.index("</head>")
    assert inline_plotly("<html><head></head><body></body></html>") == (
        "<html><head></head><body></body></html>")


def test_interactive_view_says_when_plotly_is_missing(monkeypatch):
    shown = _capture(monkeypatch)
    monkeypatch.setitem(sys.modules, "plotly", None)
    notes: list[str] = []
    monkeypatch.setattr(rl, "md", notes.append)
    rl.show_interactive([("s1", np.zeros((5, 3)), np.zeros(5))], "t", "c")
    assert not shown and "install plotly" in notes[0]


def test_defuse_keeps_generated_html_only():
    made = nbformat.v4.new_output("display_data", data={"text/html": "<script>ok()</script>"},
                                  metadata={GENERATED_HTML: True})
    user = nbformat.v4.new_output("display_data", data={"text/html": "<script>x()</script>"})
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[made, user])])
    defuse(notebook)
    assert made["data"]["text/html"] == "<script>ok()</script>"
    assert "script" not in user["data"]["text/html"]


def test_overview_summary_says_what_ran_what_is_supported_and_links():
    hypotheses = pd.DataFrame({
        "animal": ["rat1", "rat2"], "session": ["s1", "s1"], "model": "behavior",
        "label_set": "position", "metric": "gof_bits", "verdict": ["encoded", "not supported"],
        "num_nulls": 200, "min_p": 1 / 201, "p_value": [0.005, 0.4],
        "null_kind": "circular_shift"})
    consistency = pd.DataFrame({
        "between": ["runs", "runs", "sessions", "sessions"], "kind": "single",
        "group": ["", "", "cohort", "cohort"], "animal": ["rat1", "rat2", "", ""],
        "session": ["s1", "s1", "", ""], "model": "behavior", "labels": "position",
        "seed": "mean", "source": ["seed 0", "seed 0", "rat1/s1", "rat1/s1"],
        "target": ["seed 1", "seed 1", "rat2/s1", "rat1/s1"], "score": [91.0, 42.0, 60.0, 100]})
    text = rl.overview_summary(["rat1", "rat2"], [["rat1", "s1"], ["rat2", "s1"]],
                               [["behavior", "position"]], [["behavior", "position"]], [0, 1],
                               {"behavior": 60}, hypotheses, pd.DataFrame(columns=["metric"]),
                               pd.DataFrame(), consistency)
    assert "behavior (60 iterations)" in text and "seeds 0, 1" in text
    assert "*position* is supported (every session encoded) in rat1; not in rat2" in text
    assert "highest for rat1/s1, behavior / position (91 %)" in text
    assert "lowest for rat2/s1, behavior / position (42 %)" in text
    assert "between sessions single-session, group cohort, behavior / position (60 %)" in text
    assert "[rat1](rat1.html), [rat2](rat2.html)" in text


def test_report_page_title_names_the_analysis(tmp_path):
    template = tmp_path / "t.ipynb"
    params = nbformat.v4.new_code_cell("animal = 'x'")
    params.metadata["tags"] = ["parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(
        "print(animal)")], metadata={"kernelspec": {"name": "python3", "language": "python",
                                                    "display_name": "Python 3"}}), template)
    html = tmp_path / "out.html"
    report_main(["--notebook", str(template), "--parameters", '{"animal": "rat1"}',
                 "--out-html", str(html), "--out-notebook", str(tmp_path / "out.ipynb"),
                 "--page-title", "Lab <study>: animal rat1"])
    assert "<title>Lab &lt;study&gt;: animal rat1</title>" in html.read_text()
