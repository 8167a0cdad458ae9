"""Tests of the session figures' shared training-curve plot (``pipeline/figures.py``)."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from cebra_pipe.pipeline.figures import training_curves_figure  # noqa: E402


def _table(offset: float, with_gof: bool = True) -> pd.DataFrame:
    table = pd.DataFrame({"step": [1, 2, 3], "loss": [5.0 + offset, 4.5, 4.0]})
    if with_gof:
        table["gof_bits"] = [0.1 + offset, 0.4, 0.8]
    return table


def test_one_panel_per_variant_one_line_per_seed_with_units():
    curves = {("offset10", "position"): {0: _table(0), 1: _table(0.1)},
              ("offset10", "none"): {0: _table(0.2), 1: _table(0.3, with_gof=False)}}
    fig = training_curves_figure(curves, "gof_bits", "GoF (bits, 0 = chance)", "rat1",
                                 zero_line=True)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert [ax.get_title() for ax in axes] == ["offset10 / position", "offset10 / none"]
    data_lines = [[line for line in ax.lines if line.get_label().startswith("seed")]
                  for ax in axes]
    assert [len(lines) for lines in data_lines] == [2, 1]  # a table without the column: no line
    assert list(data_lines[0][1].get_ydata()) == [0.1 + 0.1, 0.4, 0.8]
    assert axes[0].get_ylabel() == "GoF (bits, 0 = chance)"
    assert any(list(line.get_ydata()) == [0, 0] for line in axes[0].lines)  # chance line
    assert fig.get_suptitle() == "rat1"


def test_loss_curves_without_chance_line_and_unused_panels_hidden():
    curves = {(f"m{i}", "none"): {0: _table(i)} for i in range(5)}  # 2 rows of 4 panels
    fig = training_curves_figure(curves, "loss", "InfoNCE loss (nats)")
    assert len(fig.axes) == 8
    assert sum(ax.axison for ax in fig.axes) == 5
    assert all(len(ax.lines) == 1 for ax in fig.axes if ax.axison)
