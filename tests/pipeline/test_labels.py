"""One label definition per session: sheet label_keys/label_units, normalisation at
ingest, ranges that differ between sessions, label kinds carried in the session file,
and split warnings in the reports."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cebra_pipe.pipeline import ingest, labels, split
from cebra_pipe.pipeline import config as cp_config
from cebra_pipe.pipeline.common import (EXIT_BAD_INPUT, PipelineError, load_session,
                                        save_npz)
from cebra_pipe.pipeline.decode import decode_scores
from pipeline_helpers import REPO

LABELS = {"position": {"type": "continuous", "key": "pos_m", "unit": "m"},
          "direction": {"type": "discrete", "key": "dir"}}


def _config(**position: object) -> dict:
    return {"labels": {"position": {**LABELS["position"], **position},
                       "direction": dict(LABELS["direction"], unit="label units")},
            "label_sets": {"position": ["position"]},
            "models": {"behavior": {"conditional": "time_delta", "label_sets": ["position"]}},
            "multi_session": {"behavior": ["position"]}}


def _row(animal: str, **cells: str) -> dict:
    return {"animal": animal, "session": "s1", "group": "cohort",
            "neural_file": f"synthetic:synthetic-linear-track?animal={animal}", **cells}


def _npz(path: Path, scale: float = 1.0, key: str = "pos_m", n: int = 400, seed: int = 0
         ) -> Path:
    rng = np.random.default_rng(seed)
    position = np.abs(np.sin(np.linspace(0, 12 * np.pi, n))) * 1.6 * scale
    np.savez(path, neural=rng.normal(size=(n, 6)).astype(np.float32),
             **{key: position, "dir": (np.arange(n) // 20) % 2})
    return path


def _ingest(tmp_path: Path, row: dict, label_spec: dict = LABELS, name: str = "s"
            ) -> tuple[int, Path, Path]:
    out, prov = tmp_path / "out" / f"{name}.npz", tmp_path / "out" / f"{name}.json"
    row = {"animal": "a", "session": name, "neural_key": "neural", **row}
    status = ingest.cli(["--row", json.dumps(row),
                         "--labels", json.dumps(label_spec), "--out", str(out),
                         "--provenance", str(prov)])
    return status, out, prov


# ------------------------------------------------------------------ sheet columns

def test_label_map_cells_parse_and_name_row_column_and_label():
    assert cp_config.parse_label_map("position=pos_cm; direction = dir2;", LABELS, "w") == {
        "position": "pos_cm", "direction": "dir2"}
    assert cp_config.parse_label_map(None, LABELS, "w") == {}
    for cell, message in [("position", "entry 'position' is not 'label=value'"),
                          ("speed=v", "unknown label 'speed'; the config's labels are "
                                      "['direction', 'position']"),
                          ("position=a;position=b", "label 'position' is given twice")]:
        with pytest.raises(cp_config.ConfigError, match="^row 2, column 'label_keys': "
                           + message.replace("[", r"\[").replace("]", r"\]")):
            cp_config.parse_label_map(cell, LABELS, "row 2, column 'label_keys'")


def test_sheet_check_names_the_row_of_a_bad_label_keys_cell():
    rows = [_row("rat1"), _row("rat2", label_keys="postion=pos_cm")]
    with pytest.raises(cp_config.ConfigError, match=r"sessions sheet, row 2 \(rat2/s1\): column "
                       r"'label_keys': unknown label 'postion'"):
        cp_config.check_sheet(rows, _config())


def test_sheet_check_refuses_different_units_of_a_compared_label_unless_normalised():
    rows = [_row("rat1"), _row("rat2", label_units="position=cm"), _row("rat3")]
    with pytest.raises(cp_config.ConfigError) as err:
        cp_config.check_sheet(rows, _config())
    message = str(err.value)
    assert "column 'label_units': label 'position' is compared between sessions" in message
    assert "m: rat1/s1, rat3/s1; cm: rat2/s1" in message
    assert "labels.position.normalize: range" in message
    cp_config.check_sheet(rows, _config(normalize="range"))  # normalised: no error
    single = {**_config(), "multi_session": {}}
    cp_config.check_sheet(rows[1:2], single)  # one session: nothing is compared
    assert cp_config.label_units(_config(), rows) == {"position": "m / cm",
                                                      "direction": "label units"}
    assert cp_config.label_units(_config(normalize="zscore"), rows)["position"] == (
        "SD of the session")


def test_config_check_refuses_normalising_a_discrete_label():
    config = _config()
    config["labels"]["direction"]["normalize"] = "range"
    with pytest.raises(cp_config.ConfigError, match=r"field 'labels.direction.normalize': a "
                                                     "discrete label"):
        cp_config.check_config(config)


# ------------------------------------------------------------------ ingest

def test_per_session_key_and_unit_override_the_config(tmp_path):
    data = _npz(tmp_path / "cm.npz", scale=100.0, key="position_cm")
    status, out, prov = _ingest(tmp_path, {"neural_file": str(data),
                                           "label_keys": "position=position_cm",
                                           "label_units": "position=cm"})
    assert status == 0
    session = load_session(out)
    assert session.labels["position"].max() == pytest.approx(160.0, rel=1e-3)
    assert session.meta["label_units"] == {"position": "cm", "direction": "label units"}
    assert session.label_type("direction") == "discrete"
    output = json.loads(prov.read_text())["output"]
    assert output["label_types"] == {"position": "continuous", "direction": "discrete"}
    assert output["label_units"]["position"] == "cm"


def test_a_wrong_per_session_key_names_the_file_and_key(tmp_path, capsys):
    data = _npz(tmp_path / "m.npz")
    status, out, _ = _ingest(tmp_path, {"neural_file": str(data),
                                        "label_keys": "position=pos_cm"})
    err = capsys.readouterr().err
    assert status == EXIT_BAD_INPUT and not out.exists()
    assert "label 'position'" in err and "pos_cm" in err and "m.npz" in err
    status, out, _ = _ingest(tmp_path, {"neural_file": str(data), "label_keys": "speed=v"})
    assert status == EXIT_BAD_INPUT
    assert "sheet row a/s: column 'label_keys': unknown label 'speed'" in capsys.readouterr().err


def test_per_session_key_in_an_h5_file(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "rat.h5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f["neural"] = rng.normal(size=(300, 4))
        f["tracking/x_cm"] = np.linspace(0, 150, 300)
        f["dir"] = np.arange(300) % 2
    status, out, _ = _ingest(tmp_path, {"neural_file": str(path), "neural_key": "neural",
                                        "label_keys": "position=tracking/x_cm"})
    assert status == 0
    np.testing.assert_allclose(load_session(out).labels["position"][:, 0],
                               np.linspace(0, 150, 300), rtol=1e-6)


def test_per_session_key_in_an_nwb_recording(tmp_path):
    pytest.importorskip("pynwb")
    from tests.recordings.conftest import write_lab_nwb

    nwb = write_lab_nwb(tmp_path / "lab.nwb")
    spec = {"position": {"type": "continuous", "key": "processing/behavior/Position/other",
                         "index": 0, "max_gap": 0.2}}
    recording = {"time_base": {"bin_size": 0.1}, "neural": {"key": "units"}}
    out, prov = tmp_path / "out" / "s.npz", tmp_path / "out" / "s.json"
    argv = ["--labels", json.dumps(spec), "--recording", json.dumps(recording), "--out",
            str(out), "--provenance", str(prov)]
    row = {"animal": "a", "session": "s", "neural_file": str(nwb)}
    assert ingest.cli(["--row", json.dumps(row), *argv]) == EXIT_BAD_INPUT
    row["label_keys"] = "position=processing/behavior/Position/head"
    assert ingest.cli(["--row", json.dumps(row), *argv]) == 0
    assert load_session(out).labels["position"].shape[1] == 1


@pytest.mark.parametrize("method, low, high", [("range", 0.0, 1.0), ("zscore", None, None)])
def test_normalisation_per_session_is_recorded(tmp_path, method, low, high):
    spec = {**LABELS, "position": {**LABELS["position"], "normalize": method}}
    metres = _npz(tmp_path / "m.npz")
    status, out, prov = _ingest(tmp_path, {"neural_file": str(metres)}, spec)
    assert status == 0
    session = load_session(out)
    values = session.labels["position"][:, 0].astype(np.float64)
    if method == "range":
        assert (values.min(), values.max()) == pytest.approx((low, high), abs=1e-6)
    else:
        assert (values.mean(), values.std()) == pytest.approx((0.0, 1.0), abs=1e-5)
    info = session.meta["label_normalization"]["position"]
    assert info["method"] == method and info["unit"] == "m"
    raw = np.load(metres)["pos_m"]
    np.testing.assert_allclose(values * info["scale"][0] + info["offset"][0], raw, atol=1e-5)
    assert session.meta["label_units"]["position"] == cp_config.NORMALIZE_UNITS[method]
    assert "direction" not in session.meta["label_normalization"]
    assert json.loads(prov.read_text())["output"]["label_normalization"]["position"][
        "method"] == method


def test_normalising_a_constant_label_names_session_and_label(tmp_path, capsys):
    data = tmp_path / "flat.npz"
    np.savez(data, neural=np.random.default_rng(0).normal(size=(50, 3)),
             pos_m=np.ones(50), dir=np.arange(50) % 2)
    spec = {**LABELS, "position": {**LABELS["position"], "normalize": "range"}}
    status, out, _ = _ingest(tmp_path, {"neural_file": str(data)}, spec)
    assert status == EXIT_BAD_INPUT and not out.exists()
    assert ("session a/s, label 'position': cannot normalize (range): dimension 0 is "
            "constant") in capsys.readouterr().err


# ------------------------------------------------------------------ shared ranges

def _sessions(tmp_path: Path, scales: list[float], units: list[str], normalize: str = "none"
              ) -> list:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (scale, unit) in enumerate(zip(scales, units)):
        data = _npz(tmp_path / f"rat{i}.npz", scale=scale, seed=i)
        spec = {**LABELS, "position": {**LABELS["position"], "normalize": normalize}}
        status, path, _ = _ingest(tmp_path, {"neural_file": str(data), "animal": f"rat{i}",
                                             "label_units": f"position={unit}"},
                                  spec, name=f"rat{i}")
        assert status == 0
        out.append(load_session(path))
    return out


def test_sessions_in_metres_and_centimetres_fail_with_ranges_units_and_fix(tmp_path):
    sessions = _sessions(tmp_path, [1.0, 100.0, 1.0], ["m", "cm", "m"])
    with pytest.raises(PipelineError) as err:
        labels.check_shared_range(sessions, "position", "between-session consistency")
    message = str(err.value)
    assert "label 'position' has different ranges in the sessions combined for " \
           "between-session consistency" in message
    assert "rat0/rat0 0 to 1.6 (m); rat2/rat2 0 to 1.6 (m) cover less than 90%" in message
    assert "e.g. rat1/rat1 0 to 160 (cm) (they store it in different units)" in message
    assert "labels.position.normalize: range" in message and "fewer bins" not in message
    labels.check_shared_range(sessions, "direction", "x")  # discrete labels pass


def test_tracks_of_different_length_fail_consistency_unless_normalised(tmp_path):
    longer = _sessions(tmp_path, [1.0, 1.6], ["m", "m"])
    with pytest.raises(PipelineError, match="the units or track lengths may differ"):
        labels.check_shared_range(longer, "position", "between-session consistency")
    # Multi-session training only needs one scale: part of a track is fine, cm beside m not.
    labels.check_shared_range(longer, "position", "multi-session training",
                              labels.MIN_SHARED_RANGE_TRAINING)
    with pytest.raises(PipelineError, match="cover less than 20% of the joint range"):
        labels.check_shared_range(_sessions(tmp_path / "cm", [1.0, 100.0], ["m", "m"]),
                                  "position", "multi-session training",
                                  labels.MIN_SHARED_RANGE_TRAINING)
    labels.check_shared_range(_sessions(tmp_path / "n", [1.0, 1.6], ["m", "m"], "range"),
                              "position", "between-session consistency")
    labels.check_shared_range(_sessions(tmp_path / "s", [1.0, 1.02], ["m", "m"]),
                              "position", "between-session consistency")


# ------------------------------------------------------------------ label kinds

def test_old_session_files_without_label_kinds_still_load(tmp_path):
    path = tmp_path / "old.npz"
    save_npz(path, {"neural": np.ones((30, 2), np.float32),
                    "label_position": np.linspace(0, 1, 30, dtype=np.float32)[:, None],
                    "label_arm": np.arange(30, dtype=np.int64) % 3,
                    "meta": np.array(json.dumps({"animal": "a", "session": "s"}))})
    session = load_session(path)
    assert session.label_type("position") == "continuous"
    assert session.label_type("arm") == "discrete"


def test_decoding_follows_the_stored_kind_not_the_dtype():
    rng = np.random.default_rng(0)
    train, valid = rng.normal(size=(60, 3)), rng.normal(size=(20, 3))
    y_train, y_valid = (np.arange(60) % 2).astype(np.float32), (np.arange(20) % 2).astype(
        np.float32)
    assert set(decode_scores(train, valid, y_train, y_valid, 5, "discrete")) == {"accuracy"}
    assert set(decode_scores(train, valid, y_train, y_valid, 5, "continuous")) == {
        "r2", "median_abs_error"}


def test_hypothesis_targets_are_typed_by_the_stored_kind():
    from cebra_pipe.pipeline.common import Session
    from cebra_pipe.pipeline.hypotheses import _values

    session = Session(np.ones((6, 2), np.float32),
                      {"arm": np.array([0., 1., 2., 0., 1., 2.]),
                       "speed": np.arange(6, dtype=np.int64)[:, None]}, None,
                      {"animal": "a", "session": "s",
                       "label_types": {"arm": "discrete", "speed": "continuous"}})
    idx = np.arange(4)
    assert _values(session, "arm", idx).dtype == np.int64
    speed = _values(session, "speed", idx)
    assert speed.dtype == np.float32 and speed.shape == (4,)


# ------------------------------------------------------------------ split warnings

def _results(tmp_path: Path, animal: str, sorted_by_class: bool) -> Path:
    """results/sessions and results/splits of one session made by the ingest and split
    steps: sorted by class (split stratified, as the split step advises for such files)
    or interleaved (split by blocks)."""
    n = 800
    arm = np.repeat(np.arange(4), n // 4) if sorted_by_class else np.arange(n) % 4
    position = (arm + np.linspace(0, 0.99, n) % 1.0 if sorted_by_class
                else np.abs(np.sin(np.linspace(0, 40 * np.pi, n))))
    data = tmp_path / f"{animal}.npz"
    np.savez(data, neural=np.random.default_rng(0).normal(size=(n, 5)), pos_m=position,
             dir=arm)
    results = tmp_path / "results"
    session = results / "sessions" / animal / "s1.npz"
    assert ingest.cli(["--row", json.dumps({"animal": animal, "session": "s1",
                                            "neural_file": str(data), "neural_key": "neural"}),
                       "--labels", json.dumps(LABELS), "--out", str(session),
                       "--provenance", str(session.with_suffix(".json"))]) == 0
    out = results / "splits" / animal / "s1.npz"
    assert split.cli(["--session", str(session), "--method",
                      "stratified" if sorted_by_class else "blocks", "--out", str(out),
                      "--provenance", str(out.with_suffix(".json"))]) == 0
    return results


def _render_warning_cell(tmp_path: Path, notebook: str, params: dict) -> str:
    """The notebook's split-warning cell rendered to HTML by the report step."""
    from cebra_pipe.pipeline.report import main as report_main

    cells = nbformat.read(REPO / "notebooks" / notebook, as_version=4).cells
    warning_cell = next(c for c in cells if "show_split_warnings" in c.source)
    parameters = nbformat.v4.new_code_cell("\n".join(f"{k} = None" for k in params))
    parameters.metadata["tags"] = ["parameters"]
    setup = nbformat.v4.new_code_cell("from pathlib import Path\n"
                                      "from cebra_pipe.pipeline import reportlib as rl\n"
                                      "R = Path(results)")
    template = tmp_path / notebook
    nbformat.write(nbformat.v4.new_notebook(
        cells=[parameters, setup, nbformat.v4.new_code_cell(warning_cell.source)],
        metadata={"kernelspec": {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}}), template)
    html = tmp_path / f"{notebook}.html"
    report_main(["--notebook", str(template), "--parameters", json.dumps(params),
                 "--out-html", str(html), "--out-notebook", str(tmp_path / "out.ipynb")])
    return html.read_text()


def test_reports_warn_about_a_sorted_by_class_session_and_not_a_good_split(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    _results(tmp_path, "sorted", sorted_by_class=True)
    _results(tmp_path, "good", sorted_by_class=False)
    assert split.read_warnings(tmp_path / "results" / "splits" / "good" / "s1.npz") == []
    assert split.read_warnings(tmp_path / "results" / "splits" / "sorted" / "s1.npz")
    title = "Warning: the train/valid split may not represent the data"
    bad = _render_warning_cell(tmp_path, "animal.ipynb",
                               {"animal": "sorted", "sessions": ["s1"], "results": "results"})
    assert title in bad and "sorted/s1" in bad and "continuous label" in bad
    good = _render_warning_cell(tmp_path, "animal.ipynb",
                                {"animal": "good", "sessions": ["s1"], "results": "results"})
    assert title not in good
    both = _render_warning_cell(tmp_path, "overview.ipynb", {
        "sessions": [["good", "s1"], ["sorted", "s1"]], "results": "results"})
    assert title in both and "in 1 session(s)" in both and "good/s1" not in both


def test_sessions_table_gives_kinds_units_normalisation_and_split_warnings(tmp_path):
    import pandas as pd

    from cebra_pipe.pipeline import aggregate

    results = _results(tmp_path, "sorted", sorted_by_class=True)
    session = results / "sessions" / "sorted" / "s1.npz"
    assert labels.describe_labels(load_session(session)) == (
        "direction (discrete), position (continuous, m)")
    out = tmp_path / "sessions.tsv"
    assert aggregate.cli(["--kind", "sessions", "--inputs", str(session), "--splits",
                          str(results / "splits" / "sorted" / "s1.npz"), "--out", str(out),
                          "--provenance", str(tmp_path / "p.json")]) == 0
    row = pd.read_csv(out, sep="\t").iloc[0]
    assert row["split_warnings"] == 1 and row["labels"].startswith("direction (discrete)")
    from cebra_pipe.pipeline import reportlib

    page = reportlib.session_table(results, "sorted", ["s1"])
    assert page.loc["s1", "labels"] == "direction (discrete), position (continuous, m)"
    spec = {**LABELS, "position": {**LABELS["position"], "normalize": "zscore"}}
    status, normalised, _ = _ingest(tmp_path, {"neural_file": str(_npz(tmp_path / "z.npz"))},
                                    spec)
    assert status == 0
    assert labels.describe_labels(load_session(normalised)) == (
        "direction (discrete), position (continuous, m; normalised: zscore)")


# ------------------------------------------------------------------ end to end

def _write_sheet(workdir: Path, rows: list[dict[str, str]]) -> None:
    columns = ["animal", "session", "neural_file", "neural_key", "group", "label_keys",
               "label_units"]
    lines = ["\t".join(columns)] + ["\t".join(r.get(c, "") for c in columns) for r in rows]
    (workdir / "config" / "sessions.tsv").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_sessions_with_different_label_keys_and_units_run_end_to_end(tmp_path):
    """rat1 stores position in metres under 'pos_m', rat2 in centimetres under
    'tracking_x_cm' (and its direction under 'dir2'): normalised per session, the
    cohort's multi-session model and between-session consistency run, and the
    hypothesis tables give errors in the normalised unit."""
    from cebra_pipe import datasets
    from pipeline_helpers import load_test_config, snakemake, write_workdir

    config = load_test_config()
    config["labels"] = {"position": {"type": "continuous", "key": "pos_m", "unit": "m",
                                     "normalize": "range"},
                        "direction": {"type": "discrete", "key": "dir"}}
    config["label_sets"] = {"position": ["position"]}
    config["models"] = {"behavior": config["models"]["behavior"]}
    config["consistency"]["align_label"] = "position"
    # Only what the label handling touches: one seed, no training nulls or attribution.
    config |= {"seeds": [0], "controls": {"shuffle": False},
               "attribution": {"enabled": False}, "hypotheses": {"num_nulls": 20}}
    workdir = write_workdir(tmp_path, config, [])
    (workdir / "data").mkdir()
    for animal, scale, keys in (("rat1", 1.0, ("pos_m", "dir")),
                                ("rat2", 100.0, ("tracking_x_cm", "dir2"))):
        rec = datasets.init("synthetic-linear-track", animal=animal, seed=1, duration=30)
        np.savez(workdir / "data" / f"{animal}.npz", neural=rec.neural,
                 **{keys[0]: rec.continuous[:, 0] * scale, keys[1]: rec.discrete})
    rows = [{"animal": "rat1", "session": "s1", "neural_file": "data/rat1.npz",
             "neural_key": "neural", "group": "cohort"},
            {"animal": "rat2", "session": "s1", "neural_file": "data/rat2.npz",
             "neural_key": "neural", "group": "cohort",
             "label_keys": "position=tracking_x_cm;direction=dir2",
             "label_units": "position=cm"}]
    _write_sheet(workdir, rows)
    # Up to the steps that combine sessions and show units (no report rendering).
    snakemake(workdir, "--cores", "2", "--until", "consistency_datasets",
              "hypotheses_session", check=True)
    results = next(p.parent for p in workdir.rglob("sessions/rat2/s1.npz")).parent.parent
    rat1, rat2 = (load_session(results / "sessions" / a / "s1.npz") for a in ("rat1", "rat2"))
    for session, unit in ((rat1, "m"), (rat2, "cm")):
        values = session.labels["position"]
        assert values.min() == pytest.approx(0.0, abs=1e-6)
        assert values.max() == pytest.approx(1.0, abs=1e-6)
        assert session.meta["label_normalization"]["position"]["unit"] == unit
    assert rat2.meta["label_normalization"]["position"]["scale"][0] == pytest.approx(
        100 * rat1.meta["label_normalization"]["position"]["scale"][0], rel=0.05)
    assert list(results.rglob("consistency/datasets/multi/cohort/behavior/position.tsv"))
    assert list(results.rglob("consistency/datasets/single/cohort/behavior/position.tsv"))
    import pandas as pd

    tests = pd.read_csv(results / "hypotheses" / "rat2" / "s1.tsv", sep="\t")
    errors = tests[(tests["target"] == "position") & (tests["metric"] == "median_abs_error")]
    assert not errors.empty and set(errors["unit"]) == {"fraction of the session's range"}

    # Without normalisation the sheet's units disagree: the run stops before any job.
    config["labels"]["position"]["normalize"] = "none"
    write_workdir(tmp_path, config, [])
    _write_sheet(workdir, rows)
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    assert ("label 'position' is compared between sessions (consistency or multi-session "
            "models) but its unit differs (m: rat1/s1; cm: rat2/s1)") in (result.stdout
                                                                          + result.stderr)
