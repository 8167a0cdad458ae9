"""``python -m cebra_pipe join-cohort`` (cebra_pipe/pipeline/cohort.py) and the
join_cohort rule (workflow/rules/cohort.smk)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import cebra_pipe as cebra
from cebra_pipe.pipeline import cohort
from cebra_pipe.pipeline.common import PipelineError, load_npz, save_npz
from cebra_pipe.pipeline.config import ConfigError

from pipeline_helpers import (layout_of, load_test_config, snakemake, synthetic_row,
                              write_workdir)

COHORT_PARAMS = dict(model_architecture="offset10-model", batch_size=128, max_iterations=150,
                     output_dimension=3, time_offsets=5, learning_rate=0.003, device="cpu",
                     random_state=0)
DURATION = 60  # seconds of each synthetic animal (25 ms bins)


def _track(animal: str, seed: int = 0):
    return cebra.datasets.init("synthetic-linear-track", animal=animal, seed=seed,
                               duration=DURATION)


def _train_cohort(folder: Path, animals=("rat1", "rat2"), labels=("position",),
                  iterations: int = COHORT_PARAMS["max_iterations"]) -> Path:
    """A multi-session model of ``animals`` with the provenance train-multi writes."""
    tracks = [_track(a) for a in animals]
    model = cebra.CEBRA(**{**COHORT_PARAMS, "max_iterations": iterations}).fit([t.neural for t in tracks],
                                             [t.continuous[:, :1] for t in tracks])
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.pt")
    (folder / "provenance.json").write_text(json.dumps(
        {"params": {"labels": {"names": list(labels)}, "sessions": [f"{a}/s1" for a in animals]}}))
    return folder / "model.pt"


def _session_files(folder: Path, animal: str = "rat3") -> tuple[Path, Path]:
    """A session file as ingest writes it, and an 80/20 split in time."""
    track = _track(animal, seed=1)
    meta = {"animal": animal, "session": "s1",
            "label_types": {"position": "continuous", "direction": "discrete"}}
    save_npz(folder / "session.npz", {"neural": track.neural.astype(np.float32),
                                      "label_position": track.continuous[:, 0],
                                      "label_direction": track.discrete,
                                      "meta": np.array(json.dumps(meta))})
    cut = int(0.8 * len(track.neural))
    save_npz(folder / "split.npz", {"train": np.arange(cut),
                                    "valid": np.arange(cut, len(track.neural))})
    return folder / "session.npz", folder / "split.npz"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cohort")
    session, split = _session_files(root)
    return {"root": root, "model": _train_cohort(root / "cohort"), "session": session,
            "split": split}


def _argv(files: dict[str, Path], outdir: Path, **extra: str) -> list[str]:
    options = {"--cohort-model": files["model"], "--cohort-name": "first",
               "--session": files["session"], "--split": files["split"],
               "--labels": json.dumps({"names": ["position"]}), "--align-label": "position",
               "--num-bins": "10", "--max-adapt-iterations": "150", "--threads": "1",
               "--outdir": outdir, **extra}
    return [str(x) for pair in options.items() for x in pair]


def test_a_session_joins_the_cohort(files):
    outdir = files["root"] / "joined"
    cohort.main(_argv(files, outdir))
    grown = cebra.CEBRA.load(outdir / "model.pt")
    assert grown.num_sessions_ == 3 and grown.n_features_in_[2] == 64  # rat3: 64 cells
    original = cebra.CEBRA.load(files["model"])
    rat1 = _track("rat1").neural
    np.testing.assert_array_equal(grown.transform(rat1, session_id=0),
                                  original.transform(rat1, session_id=0))
    embeddings = load_npz(outdir / "embeddings.npz")
    split = load_npz(files["split"])
    assert embeddings["train"].shape == (len(split["train"]), 3)
    assert embeddings["valid"].shape == (len(split["valid"]), 3)
    assert int(embeddings["session_id"]) == 2
    table = pd.read_csv(outdir / "consistency.tsv", sep="\t")
    assert table["cohort_session"].tolist() == ["rat1/s1", "rat2/s1"]
    assert set(table["label"]) == {"position"} and set(table["split"]) == {"valid"}
    print(table.to_string())
    # The adapted session sits in the cohort's space, far above its unadapted layer.
    assert (table["consistency_r2_pct"] > 80).all()
    assert (table["consistency_r2_pct"] > table["unadapted_r2_pct"] + 10).all()
    record = json.loads((outdir / "provenance.json").read_text())
    assert record["params"]["session_id"] == 2 and record["seeds"] == [0]


def test_joining_is_reproducible(files):
    first, second = files["root"] / "again1", files["root"] / "again2"
    for outdir in (first, second):
        cohort.main(_argv(files, outdir, **{"--max-adapt-iterations": "5"}))
    np.testing.assert_array_equal(load_npz(first / "embeddings.npz")["valid"],
                                  load_npz(second / "embeddings.npz")["valid"])


def test_single_session_model_is_refused(files):
    track = _track("rat1")
    single = cebra.CEBRA(**{**COHORT_PARAMS, "max_iterations": 2}).fit(track.neural,
                                                                       track.continuous[:, :1])
    path = files["root"] / "single" / "model.pt"
    path.parent.mkdir()
    single.save(path)
    outdir = files["root"] / "refused_single"
    with pytest.raises(PipelineError, match=r"single.*model.pt' is a single-session model"):
        cohort.main(_argv(files, outdir, **{"--cohort-model": path}))
    assert not outdir.exists()


def test_label_set_must_be_the_cohorts(files):
    outdir = files["root"] / "refused_labels"
    with pytest.raises(PipelineError, match=r"cohort_models\.first\.label_set gives "
                                            r"\['direction'\]"):
        cohort.main(_argv(files, outdir, **{"--labels": json.dumps({"names": ["direction"]})}))
    assert not outdir.exists()


def test_label_dimensions_are_checked_without_provenance(files, tmp_path):
    """A model from elsewhere (no provenance): the library's check names the problem."""
    model = tmp_path / "elsewhere" / "model.pt"
    model.parent.mkdir()
    model.write_bytes(files["model"].read_bytes())
    with pytest.raises(PipelineError, match="discrete labels, but the cohort was trained "
                                            "with continuous"):
        cohort.main(_argv(files, tmp_path / "out", **{
            "--cohort-model": model, "--labels": json.dumps({"names": ["direction"]})}))
    assert not (tmp_path / "out").exists()


def test_a_model_without_its_cohort_record_is_refused(files, tmp_path):
    model = cebra.CEBRA.load(files["model"])
    model.cohort_anchors_ = None
    path = tmp_path / "model.pt"
    model.save(path)
    with pytest.raises(PipelineError, match="does not record its cohort"):
        cohort.main(_argv(files, tmp_path / "out", **{"--cohort-model": path}))


def test_nothing_is_left_when_a_late_stage_fails(files, tmp_path):
    outdir = tmp_path / "out"
    # Too many label bins for the valid split: fails after adapting, before writing.
    with pytest.raises(PipelineError, match="consistency.num_bins"):
        cohort.main(_argv(files, outdir, **{"--num-bins": "5000",
                                            "--max-adapt-iterations": "2"}))
    assert not outdir.exists() or not any(outdir.iterdir())


def test_check_joins_names_the_row_and_field():
    config = {"label_sets": {"position": ["position"]},
              "cohort_models": {"first": {"model": "m.pt", "label_set": "position"}}}
    rows = [{"animal": "rat3", "session": "s1", "joins": "first"},
            {"animal": "rat4", "session": "s1"}]
    assert cohort.check_joins(rows, config, "sheet") == {("rat3", "s1"): "first"}
    with pytest.raises(ConfigError, match=r"row rat4/s1: column 'joins' is 'second'"):
        cohort.check_joins(rows[:1] + [dict(rows[1], joins="second")], config, "sheet")
    bad = {**config, "cohort_models": {"first": {"model": "m.pt", "label_set": "speed"}}}
    with pytest.raises(ConfigError, match=r"cohort_models\.first\.label_set is 'speed'"):
        cohort.check_joins(rows, bad, "sheet")


def _join_workdir(root: Path, iterations: int = COHORT_PARAMS["max_iterations"]) -> Path:
    """rat3 joins a cohort model of rat1 and rat2 trained before (an earlier analysis)."""
    config = load_test_config()
    # Small: one seed, the behaviour model only, no training nulls (seconds per job).
    config.update(seeds=[0], multi_session={}, controls={"shuffle": False})
    config["models"] = {"behavior": config["models"]["behavior"]}
    config["cohort_models"] = {"first": {"model": "earlier/model.pt", "label_set": "position",
                                         "max_adapt_iterations": 50}}
    workdir = write_workdir(root, config, [synthetic_row("rat3", seed=1, duration=DURATION)])
    sheet = workdir / "config" / "sessions.tsv"
    lines = sheet.read_text().splitlines()
    sheet.write_text("\n".join([lines[0] + "\tjoins"] + [line + "\tfirst" for line in lines[1:]])
                     + "\n")
    _train_cohort(workdir / "earlier", iterations=iterations)
    return workdir


def test_workflow_plans_the_join_and_checks_the_sheet(tmp_path):
    workdir = _join_workdir(tmp_path / "plan", iterations=2)  # planning only
    result = snakemake(workdir, "-n", "--cores", "1", check=True)
    assert "join_cohort" in result.stdout
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config["cohort_models"] = {"other": config["cohort_models"]["first"]}
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "-n", "--cores", "1")
    assert result.returncode != 0
    assert "column 'joins' is 'first', not a model of config field cohort_models" in (
        result.stdout + result.stderr)


@pytest.mark.slow
def test_workflow_joins_a_session_and_reports_it(tmp_path):
    workdir = _join_workdir(tmp_path / "run", iterations=60)
    layout = layout_of(workdir)
    report = layout.report_file("rat3")
    snakemake(workdir, "--cores", "2", str(Path(report).relative_to(workdir)), check=True)
    table = pd.read_csv(layout.joined_dir("first", "rat3", "s1", "consistency.tsv"), sep="\t")
    assert table["cohort_session"].tolist() == ["rat1/s1", "rat2/s1"]
    assert (table["consistency_r2_pct"] > table["unadapted_r2_pct"]).all()
    html = Path(report).read_text()
    assert "Joining a trained cohort model" in html and "unadapted (chance)" in html
    assert "rat1/s1" in html
