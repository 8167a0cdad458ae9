"""``python -m cebra_pipe hypotheses``: cohort and group tables from session tables."""

import importlib.util
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


def _session(meta_extra=None, time=None, trial=None, n=400):
    import numpy as np

    from cebra_pipe.pipeline.common import Session

    rng = np.random.default_rng(0)
    meta = {"animal": "a", "session": "s", "label_types": {"position": "continuous"},
            **(meta_extra or {})}
    labels = {"position": np.linspace(0, 1, n, dtype=np.float32)[:, None]}
    return Session(rng.normal(size=(n, 3)).astype("float32"), labels, trial, meta, time=time)


def test_sample_period_comes_from_the_bins_then_the_bin_times_then_the_config():
    import numpy as np

    assert _session({"alignment": {"bin_size": 0.025}}).sample_period(0.5) == 0.025
    # a stream time base has no bin_size: the median step of the bin times
    times = np.cumsum(np.r_[0.0, np.full(399, 1 / 30)])
    times[200:] += 5.0  # a dropped stretch does not change the median step
    session = _session({"alignment": {"bin_size": None}}, time=times)
    assert session.sample_period() == pytest.approx(1 / 30)
    assert _session().sample_period(0.04) == 0.04  # prepared arrays: the config's
    assert _session().sample_period() is None


def test_training_nulls_take_min_shift_in_seconds():
    import numpy as np

    from cebra_pipe.pipeline.common import PipelineError
    from cebra_pipe.pipeline.train import check_label_spec, control_labels

    session = _session({"alignment": {"bin_size": 0.1}})
    position = session.labels["position"][:, 0]
    spec = check_label_spec({"names": ["position"], "shuffle": True, "null_kind":
                             "circular_shift", "min_shift": "19.5 s", "within_trials": False})
    idx = np.arange(400)
    for seed in range(20):  # 19.5 s / 0.1 s = 195 samples: shifts in [195, 205]
        (shifted,) = control_labels(session, spec, idx, [seed])
        shift = int(np.flatnonzero(np.isclose(shifted[:, 0], position[0]))[0])
        assert 195 <= shift <= 205
    with pytest.raises(PipelineError, match="no time base"):
        control_labels(_session(), spec, idx, [0])
    spec["bin_size"] = 0.1  # the config's hypotheses.bin_size for prepared arrays
    assert len(control_labels(_session(), spec, idx, [0])[0]) == 400


def _group_jobs(output: str) -> dict[str, list[str]]:
    """Group job id -> the rules of its jobs, from a dry run's output."""
    groups: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if "] Group job " in line:
            current = line.split("] Group job ", 1)[1].split(" (", 1)[0]
            groups.setdefault(current, []).append("|")  # one entry per group job
        elif current and line.startswith("    rule "):
            groups[current].append(line.strip()[len("rule "):].rstrip(":"))
        elif line and not line.startswith(" ") and not line.startswith("Shell command"):
            current = None
    return groups


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                    reason="needs snakemake-executor-plugin-slurm")
def test_slurm_profile_sends_the_training_nulls_of_a_session_and_model_as_one_job(tmp_path):
    from tests.pipeline.pipeline_helpers import (REPO, ci_rows, load_test_config, snakemake,
                                                 write_workdir)

    config = load_test_config()
    config["controls"] = {"count": 3}
    workdir = write_workdir(tmp_path, config, ci_rows())
    result = snakemake(workdir, "--dry-run", "--profile",
                       str(REPO / "workflow" / "profiles" / "slurm"), check=True, timeout=600)
    groups = _group_jobs(result.stdout)
    animals = sorted({row["animal"] for row in ci_rows()})
    nulls = {g: jobs for g, jobs in groups.items() if g.startswith("training-nulls-")}
    assert sorted(nulls) == [f"training-nulls-{a}-s1-behavior" for a in animals]
    for jobs in nulls.values():
        # one group job holding the three nulls (each all seeds), no real-label training
        assert jobs == ["|", "train_null", "train_null", "train_null"], jobs
    counts = dict(line.split() for line in result.stdout.splitlines()
                  if line.startswith(("train_single ", "train_null ")))
    # the real-label models stay separate jobs: time and behaviour per animal
    assert counts == {"train_null": str(3 * len(animals)), "train_single": str(2 * len(animals))}


@pytest.mark.slow
def test_leave_one_animal_out_runs_end_to_end_beside_grouped_local_training_nulls(tmp_path):
    """A tiny config with hypotheses.leave_one_out: the LOAO rows reach the hypothesis
    and cohort tables with the within-animal score and chance level; the training
    nulls' group does not change a local run (each null trains as an ordinary job)."""
    from cebra_pipe.hypothesis import tables as ht
    from tests.pipeline.pipeline_helpers import (ci_rows, load_test_config, results_dir,
                                                 snakemake, write_workdir)

    config = load_test_config()
    config["seeds"] = [0]
    config["models"] = {"behavior": config["models"]["behavior"]}
    config["controls"] = {"count": 2}
    config["hypotheses"] = {"leave_one_out": True, "num_nulls": 20, "min_shift": "0.5 s",
                            "bin_size": 0.025}
    workdir = write_workdir(tmp_path, config, ci_rows())
    result = snakemake(workdir, "--cores", "2", "--until", "hypotheses_cohort", "train_null",
                       check=True, timeout=1500)
    out = result.stdout + result.stderr
    # locally each training null is its own job (groups only bundle cluster jobs)
    assert "Group job" not in out and out.count("rule train_null:") == 4, out[-3000:]
    results = results_dir(workdir)
    for null in ("position-shuffled", "position-shuffled1"):
        assert (results / "single" / "rat1" / "s1" / "behavior" / null / "seed0" /
                "model.pt").is_file()
    table = pd.read_csv(results / "tables" / "hypotheses.tsv", sep="\t")
    loao = table[table["model"] == "behavior (multi, leave-one-animal-out)"]
    assert sorted(loao["animal"].unique()) == ["rat1", "rat2"]
    assert set(loao["metric"]) == {"r2", "median_abs_error"}
    assert loao["within_animal"].notna().all() and (loao["num_nulls"] == 20).all()
    assert (loao["min_shift"] == 20).all()  # 0.5 s at 0.025 s per sample
    assert loao["p_value"].between(1 / 21, 1).all() and loao["verdict"].notna().all()
    cohort = pd.read_csv(results / "tables" / "hypotheses_cohort.tsv", sep="\t")
    assert "behavior (multi, leave-one-animal-out)" in set(cohort["model"])
    assert "within_animal" in ht.verdict_table(table).columns
    summary = ht.summary_paragraph(table, cohort, pd.DataFrame())
    assert ("Model behavior (multi, leave-one-animal-out), label set **position**: "
            in summary) and "with the animal's own decoder" in summary
    assert f"smallest attainable p-value is {1 / 21:.4f}" in summary  # 20 nulls


def _session_files(tmp_path, animal, name):
    import numpy as np

    from cebra_pipe.pipeline.common import canonical_json, save_npz

    rng = np.random.default_rng(0)
    meta = {"animal": animal, "session": name, "label_types": {"position": "continuous"}}
    session, split = tmp_path / f"{animal}_{name}.npz", tmp_path / f"{animal}_{name}_split.npz"
    save_npz(session, {"neural": rng.normal(size=(300, 4)).astype("float32"),
                       "label_position": rng.uniform(size=(300, 1)).astype("float32"),
                       "meta": np.array(canonical_json(meta))})
    save_npz(split, {"train": np.arange(240), "valid": np.arange(240, 300)})
    return str(session), str(split)


@pytest.mark.parametrize("animals, names, match", [
    (["a", "a"], '["position"]', "leaving one animal out needs at least two animals"),
    (["a", "b"], '["speed"]', "label(s) ['speed'] of label set 'position' are not in"),
    (["a", "b"], "[]", "--names must be a non-empty JSON list"),
])
def test_loao_step_rejects_bad_input_and_writes_nothing(tmp_path, capsys, animals, names, match):
    files = [_session_files(tmp_path, a, f"s{i}") for i, a in enumerate(animals)]
    out = tmp_path / "out"
    status = cli_for("hypotheses-loao", [
        "--sessions", *[f[0] for f in files], "--splits", *[f[1] for f in files],
        "--model-name", "behavior", "--label-set", "position",
        "--model", '{"model_architecture": "offset5-model", "max_iterations": 5}',
        "--names", names, "--seeds", "0", "--num-nulls", "19", "--null-kind", "circular_shift",
        "--min-shift", "10", "--within-trials", "true", "--correction", "holm", "--alpha", "0.05",
        "--units", "{}", "--null-seed", "0", "--knn-neighbors", "5",
        "--out", str(out / "t.tsv"), "--provenance", str(out / "p.json")])
    assert status == EXIT_BAD_INPUT
    assert match in capsys.readouterr().err
    assert not out.exists()
