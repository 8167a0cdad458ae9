"""Session, cohort and group tables and the null-distribution figure."""

import numpy as np
import pytest

from cebra_pipe.hypothesis import NullTest
from cebra_pipe.hypothesis.tables import (SESSION_COLUMNS, cohort_table, combine_seeds,
                                          group_table, plot_null_distributions, session_table,
                                          verdict_table)


def _row(animal, label_set, metric, p, effect=1.0, session="s1", model="m"):
    return {"animal": animal, "session": session, "model": model, "label_set": label_set,
            "target": "-" if metric == "gof_bits" else label_set, "metric": metric,
            "unit": "bits", "real": effect, "null_median": 0.0, "effect": effect,
            "p_value": p, "num_nulls": 199}


def test_combine_seeds_averages_real_and_nulls_pairwise():
    a = [NullTest("r2", "x", "R^2", 0.5, np.array([0.0, 0.2, 0.6]))]
    b = [NullTest("r2", "x", "R^2", 0.7, np.array([0.2, 0.0, 0.8]))]
    (test, spread), = combine_seeds([a, b])
    assert test.real == pytest.approx(0.6)
    np.testing.assert_allclose(test.null, [0.1, 0.1, 0.7])
    assert test.p_value == pytest.approx(2 / 4)
    assert spread == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_session_table_corrects_across_label_sets_per_metric():
    rows = [_row("r1", "a", "gof_bits", 0.01), _row("r1", "b", "gof_bits", 0.04),
            _row("r1", "a", "r2", 0.03), _row("r2", "a", "gof_bits", 0.04)]
    table = session_table(rows, correction="holm", alpha=0.05)
    assert list(table.columns[:len(SESSION_COLUMNS)]) == SESSION_COLUMNS
    # family r1/gof_bits: Holm of (0.01, 0.04) = (0.02, 0.04); singletons unchanged
    np.testing.assert_allclose(table["p_adjusted"], [0.02, 0.04, 0.03, 0.04])
    assert list(table["verdict"]) == ["encoded"] * 4
    assert table["min_p"].iloc[0] == pytest.approx(1 / 200)
    bh = session_table([_row("r1", "a", "r2", 0.03), _row("r1", "b", "r2", 0.04)], correction="bh")
    np.testing.assert_allclose(bh["p_adjusted"], [0.04, 0.04])
    strict = session_table(rows[:2], correction="holm", alpha=0.03)
    assert list(strict["verdict"]) == ["encoded", "not supported"]
    with pytest.raises(ValueError, match="alpha"):
        session_table(rows, alpha=1.5)
    view = verdict_table(table)
    assert view["metric"].iloc[2] == "r2 of a (bits)"


def _cohort(effects_a, effects_b, metric="r2"):
    rows = []
    for group, effects in (("ctrl", effects_a), ("treat", effects_b)):
        for i, e in enumerate(effects):
            rows.append(_row(f"{group}{i}", "pos", metric, 0.01 if e > 0 else 0.6, effect=e))
    table = session_table(rows)
    groups = {"ctrl": [(f"ctrl{i}", "s1") for i in range(len(effects_a))],
              "treat": [(f"treat{i}", "s1") for i in range(len(effects_b))]}
    return table, groups


def test_cohort_table_counts_animals_and_tests_the_group():
    table, groups = _cohort([0.5, 0.4, 0.6, 0.3, 0.7], [0.1, -0.2, 0.05, -0.1, 0.0])
    cohort = cohort_table(table, groups).set_index("group")
    assert cohort.loc["ctrl", "animals_encoded"] == 5 and cohort.loc["ctrl", "num_animals"] == 5
    assert cohort.loc["ctrl", "sign_flip_p"] == pytest.approx(1 / 32)  # exact, 2**5 patterns
    assert cohort.loc["ctrl", "verdict"] == "encoded"
    assert cohort.loc["treat", "animals_encoded"] == 2  # 0.1 and 0.05
    assert cohort.loc["treat", "verdict"] == "not supported"


def test_errors_are_oriented_so_smaller_is_better():
    table, groups = _cohort([-0.5, -0.4, -0.6, -0.3, -0.7], [0.1, 0.2, 0.3, 0.1, 0.2],
                            metric="median_abs_error")
    cohort = cohort_table(table, groups).set_index("group")
    assert cohort.loc["ctrl", "mean_effect"] == pytest.approx(0.5)
    assert cohort.loc["ctrl", "verdict"] == "encoded"


def test_group_table_finds_a_planted_difference_and_not_a_missing_one():
    rng = np.random.default_rng(3)
    table, groups = _cohort(rng.normal(1.0, 0.3, 8), rng.normal(0.0, 0.3, 8))
    planted = group_table(table, groups).iloc[0]
    assert planted["p_value"] < 0.01 and planted["ci_low"] > 0 and planted["cohens_d"] > 1
    false_positives = 0
    for i in range(40):
        table, groups = _cohort(rng.normal(0.5, 0.3, 6), rng.normal(0.5, 0.3, 6))
        false_positives += group_table(table, groups, seed=i).iloc[0]["p_value"] < 0.05
    assert false_positives <= 6  # binomial(40, 0.05): P(> 6) < 0.01


def test_group_table_with_a_single_animal_group_has_no_test():
    table, groups = _cohort([0.5], [0.1, 0.2])
    row = group_table(table, groups).iloc[0]
    assert row["difference"] == pytest.approx(0.35) and np.isnan(row["p_value"])


def test_plot_null_distributions_one_row_per_label_set():
    tests = [{"label_set": s, "metric": m, "target": "-", "unit": "bits", "real": 1.0,
              "null": np.random.default_rng(0).normal(size=50), "p_value": 0.02}
             for s in ("a", "b") for m in ("gof_bits", "r2")]
    fig = plot_null_distributions(tests, title="t")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4 and "p = 0.02" in visible[0].get_title()


def test_leave_one_animal_out_rows_show_the_within_animal_score_and_a_summary():
    import pandas as pd

    from cebra_pipe.hypothesis.tables import summary_paragraph

    plain = [_row("r1", "pos", "gof_bits", 0.01)]
    loao = [dict(_row(a, "pos", "r2", p, effect=e, model="m (loao)"), within_animal=w,
                 real=r, null_median=c)
            for a, p, e, w, r, c in (("r1", 0.005, 0.7, 0.9, 0.6, -0.1),
                                     ("r2", 0.4, 0.1, 0.8, 0.0, -0.1))]
    table = session_table(plain + loao, correction="none")
    view = verdict_table(table)
    columns = list(view.columns)
    assert columns.index("within_animal") == columns.index("null_median") - 1
    assert "within_animal" not in verdict_table(session_table(plain)).columns
    summary = summary_paragraph(table, pd.DataFrame(columns=["metric"]), pd.DataFrame())
    # one of two held-out sessions below alpha; means 0.30 vs 0.85, chance -0.10
    assert ("Model m (loao), label set **pos**: 1 of 2 held-out session(s) are decoded above "
            "chance" in summary)
    assert "mean R^2 0.30 against 0.85 with the animal's own decoder" in summary
    assert "the null median, -0.10" in summary
