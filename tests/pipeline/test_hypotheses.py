"""``python -m cebra_pipe hypotheses``: cohort and group tables from session tables."""

import json

import pandas as pd
import pytest

from cebra_pipe.hypothesis.tables import SESSION_COLUMNS, session_table
from cebra_pipe.pipeline.common import EXIT_BAD_INPUT
from cebra_pipe.pipeline.hypotheses import cli_for


def _session_tsv(path, animal, effect):
    rows = [{"animal": animal, "session": "s1", "model": "behavior", "label_set": "position",
             "target": target, "metric": metric, "unit": unit, "real": effect,
             "null_median": 0.0, "effect": effect, "p_value": 0.005 if effect > 0 else 0.5,
             "num_nulls": 200, "null_kind": "circular_shift", "min_shift": 50}
            for target, metric, unit in (("-", "gof_bits", "bits"), ("position", "r2", "R^2"))]
    session_table(rows).to_csv(path, sep="\t", index=False)
    return str(path)


def test_cohort_step_writes_the_three_tables(tmp_path):
    effects = {"c1": 0.5, "c2": 0.6, "c3": 0.4, "t1": 0.1, "t2": -0.1, "t3": 0.0}
    inputs = [_session_tsv(tmp_path / f"{a}.tsv", a, e) for a, e in effects.items()]
    groups = {"control": [[a, "s1"] for a in ("c1", "c2", "c3")],
              "treated": [[a, "s1"] for a in ("t1", "t2", "t3")]}
    out = {k: tmp_path / f"{k}.tsv" for k in ("all", "cohort", "groups")}
    status = cli_for("hypotheses", ["--inputs", *inputs, "--groups", json.dumps(groups),
                                    "--alpha", "0.05", "--out", str(out["all"]),
                                    "--cohort", str(out["cohort"]),
                                    "--groups-out", str(out["groups"]),
                                    "--provenance", str(tmp_path / "p.json")])
    assert status == 0
    table = pd.read_csv(out["all"], sep="\t")
    assert list(table.columns[:len(SESSION_COLUMNS)]) == SESSION_COLUMNS and len(table) == 12
    cohort = pd.read_csv(out["cohort"], sep="\t").set_index(["group", "metric"])
    assert cohort.loc[("control", "gof_bits"), "animals_encoded"] == 3
    assert cohort.loc[("control", "gof_bits"), "sign_flip_p"] == pytest.approx(1 / 8)
    assert cohort.loc[("treated", "r2"), "animals_encoded"] == 1
    groups_table = pd.read_csv(out["groups"], sep="\t")
    assert len(groups_table) == 2  # one pair of groups x two tests
    row = groups_table[groups_table["metric"] == "gof_bits"].iloc[0]
    assert row["difference"] == pytest.approx(0.5) and 0 < row["p_value"] <= 1


def test_cohort_step_rejects_a_foreign_table_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    pd.DataFrame({"animal": ["a"], "value": [1.0]}).to_csv(bad, sep="\t", index=False)
    out = tmp_path / "all.tsv"
    status = cli_for("hypotheses", ["--inputs", str(bad), "--groups", '{"g": [["a", "s1"]]}',
                                    "--alpha", "0.05", "--out", str(out),
                                    "--cohort", str(tmp_path / "c.tsv"),
                                    "--groups-out", str(tmp_path / "g.tsv"),
                                    "--provenance", str(tmp_path / "p.json")])
    assert status == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"hypothesis table '{bad}' lacks column(s)" in err
    assert not list(tmp_path.glob("[acgp]*.*"))


def test_session_step_rejects_bad_variants(tmp_path, capsys):
    status = cli_for("hypotheses-session", [
        "--session", "s.npz", "--split", "x.npz", "--dir", "d", "--variants", '[{"model": "m"}]',
        "--seeds", "0", "--num-nulls", "10", "--null-kind", "circular_shift",
        "--min-shift", "5", "--within-trials", "true", "--correction", "holm", "--alpha",
        "0.05", "--smoothing", "2", "--units", "{}", "--null-seed", "0", "--knn-neighbors",
        "5", "--gof-batches", "2", "--out", str(tmp_path / "o.tsv"), "--nulls",
        str(tmp_path / "o.npz"), "--figure", str(tmp_path / "o.png"), "--provenance",
        str(tmp_path / "o.json")])
    assert status == EXIT_BAD_INPUT
    assert "needs 'model', 'label_set' and a non-empty 'names' list" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
