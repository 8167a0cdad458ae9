"""Training steps respect the session's seams (trials, dropped bins) and the split's gaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cebra_pipe import CEBRA
from cebra_pipe.pipeline import decode, train
from cebra_pipe.pipeline.common import PipelineError, Session, load_session, save_npz

MODEL = {"model_architecture": "offset10-model", "conditional": "time_delta",
         "time_offsets": 3, "batch_size": 32, "max_iterations": 6, "output_dimension": 3,
         "checkpoint_every": 3}


def _session(tmp_path: Path, name: str, seed: int, neurons: int = 6,
             with_segment: bool = True) -> tuple[Path, Path, np.ndarray]:
    """A session of 6 trials of 50 bins; ``segment`` also splits trial 1 (dropped bins).

    Returns the session file, a split holding out trial 3 and the segment ids."""
    rng = np.random.default_rng(seed)
    trial = np.repeat(np.arange(6), 50)
    segment = trial * 2 + (np.arange(300) >= 75)  # a new segment inside trial 1
    position = np.cumsum(rng.normal(size=(300, 1)), 0).astype(np.float32) * 0.05
    meta = {"animal": "a", "session": name, "label_types": {"position": "continuous"}}
    arrays = {"neural": rng.normal(size=(300, neurons)).astype(np.float32),
              "label_position": position, "trial": trial,
              "meta": np.array(json.dumps(meta))}
    if with_segment:
        arrays["segment"] = segment
    path = tmp_path / f"{name}.npz"
    save_npz(path, arrays)
    split_file = tmp_path / f"{name}.split.npz"
    save_npz(split_file, {"train": np.flatnonzero(trial != 3),
                          "valid": np.flatnonzero(trial == 3)})
    return path, split_file, segment


def _runs(ids: np.ndarray) -> list[int]:
    return np.diff(np.flatnonzero(np.diff(np.concatenate([[-1], ids, [-1]])) != 0)).tolist()


def test_segments_at_adds_the_gaps_of_the_index():
    trial = np.repeat([0, 1, 2], 4)
    session = Session(np.zeros((12, 2), np.float32), {}, trial, {})
    assert session.segments_at(np.arange(4)) is None
    assert _runs(session.segments_at(np.arange(12))) == [4, 4, 4]
    # a gap inside trial 0 and a trial change: three segments
    assert _runs(session.segments_at(np.array([0, 1, 3, 4, 5]))) == [2, 1, 2]
    plain = Session(np.zeros((12, 2), np.float32), {}, None, {})
    assert plain.segments_at(np.arange(12)) is None
    assert _runs(plain.segments_at(np.array([0, 1, 2, 7, 8]))) == [3, 2]
    dropped = Session(np.zeros((12, 2), np.float32), {}, trial, {},
                      segment=np.repeat([5, 6, 7], [2, 6, 4]))
    assert _runs(dropped.segments_at(np.arange(12))) == [2, 6, 4]


def test_load_session_reads_and_checks_segment(tmp_path):
    path, _, segment = _session(tmp_path, "s", 0)
    assert np.array_equal(load_session(path).segment, segment)
    plain, _, _ = _session(tmp_path, "p", 0, with_segment=False)
    assert np.array_equal(load_session(plain).segment, np.repeat(np.arange(6), 50))
    bad = tmp_path / "bad.npz"
    meta = {"animal": "a", "session": "b", "label_types": {}}
    save_npz(bad, {"neural": np.zeros((10, 2), np.float32), "segment": np.zeros(10),
                   "meta": np.array(json.dumps(meta))})
    with pytest.raises(PipelineError, match="bad.npz': 'segment' must be 10 integer ids"):
        load_session(bad)


def _record_fit(monkeypatch) -> list:
    """Keep the ``segments`` every ``CEBRA.fit`` call gets."""
    calls = []
    fit = CEBRA.fit

    def recording_fit(self, X, *y, segments=None, **kwargs):
        calls.append(segments)
        return fit(self, X, *y, segments=segments, **kwargs)

    monkeypatch.setattr(CEBRA, "fit", recording_fit)
    return calls


def test_train_single_passes_seams_and_embeds_segments_apart(tmp_path, monkeypatch):
    session, split_file, _ = _session(tmp_path, "s", 1)
    calls = _record_fit(monkeypatch)
    outdir = tmp_path / "train"
    assert train.cli(["--session", str(session), "--split", str(split_file), "--model",
                      json.dumps(MODEL), "--labels", json.dumps({"names": ["position"]}),
                      "--seeds", "0", "--device", "cpu", "--ensemble", "off", "--outdir",
                      str(outdir), "--checkpoints", str(tmp_path / "ck")]) == 0
    # train = trials 0, 1, 2, 4, 5: trial 1 is cut in two by `segment`, and trials 2
    # and 4 are not neighbours (trial 3 is held out)
    (segments,) = calls
    assert _runs(segments) == [50, 25, 25, 50, 50, 50]
    model = CEBRA.load(outdir / "seed0" / "model.pt")
    X = load_session(session).neural
    train_idx = np.flatnonzero(np.repeat(np.arange(6), 50) != 3)
    bounds = np.cumsum([50, 25, 25, 50, 50])
    expected = np.concatenate([model.transform(part)
                               for part in np.split(X[train_idx], bounds)])
    np.testing.assert_allclose(np.load(outdir / "seed0" / "embedding_train.npy"), expected,
                               rtol=1e-6, atol=1e-6)
    # decoding scores the held-out trial with windows inside it
    table = tmp_path / "decode.tsv"
    assert decode.cli(["--sessions", str(session), "--splits", str(split_file), "--dir",
                       str(outdir), "--seeds", "0", "--model-name", "m", "--labels-name",
                       "position", "--labels", json.dumps({"names": ["position"]}),
                       "--targets", '["position"]', "--gof-batches", "2", "--out", str(table),
                       "--provenance", f"{table}.json"]) == 0
    assert "gof_bits" in table.read_text()


def test_train_multi_passes_seams_per_session(tmp_path, monkeypatch):
    first, first_split, _ = _session(tmp_path, "s1", 2)
    second, second_split, _ = _session(tmp_path, "s2", 3, neurons=4, with_segment=False)
    calls = _record_fit(monkeypatch)
    outdir = tmp_path / "multi"
    assert train.cli_for("train-multi", [
        "--sessions", str(first), str(second), "--splits", str(first_split),
        str(second_split), "--model", json.dumps(MODEL), "--labels",
        json.dumps({"names": ["position"]}), "--seeds", "0", "--device", "cpu",
        "--ensemble", "off", "--outdir", str(outdir), "--checkpoints",
        str(tmp_path / "ck")]) == 0
    (segments,) = calls
    assert _runs(segments[0]) == [50, 25, 25, 50, 50, 50]
    assert _runs(segments[1]) == [50] * 5  # trials of the session without `segment`
