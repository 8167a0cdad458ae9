"""The ``attribution`` workflow step: maps, ranked neurons, overlaps, bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cebra_pipe as cebra
from cebra_pipe.pipeline import attribution as step
from cebra_pipe.pipeline.common import EXIT_BAD_INPUT, save_npz

SEEDS = (0, 1)
VARIANTS = [{"model": "behavior", "label_set": "position"}, {"model": "time", "label_set": "none"}]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A session file, its split and two trained seeds of two models."""
    root = tmp_path_factory.mktemp("attribution")
    rec = cebra.datasets.init("synthetic-connectivity", num_timesteps=800, num_neurons=16,
                              neurons_per_latent=4)
    meta = {"animal": "a1", "session": "s1", "label_types": {"position": "continuous"}}
    save_npz(root / "session.npz", {"neural": rec.neural, "label_position": rec.continuous,
                                    "meta": np.array(json.dumps(meta))})
    save_npz(root / "split.npz", {"train": np.arange(600), "valid": np.arange(600, 800)})
    for variant, seed in itertools.product(VARIANTS, SEEDS):
        labels = (rec.continuous[:600],) if variant["label_set"] != "none" else ()
        model = cebra.CEBRA(model_architecture="offset5-model", batch_size=32,
                            max_iterations=15, output_dimension=3, num_hidden_units=8,
                            conditional="time" if not labels else None, device="cpu",
                            random_state=seed).fit(rec.neural[:600], *labels)
        folder = root / "single" / variant["model"] / variant["label_set"] / f"seed{seed}"
        folder.mkdir(parents=True)
        model.save(folder / "model.pt")
    return root


def args(root: Path, out: str, **extra) -> list[str]:
    options = {"--session": root / "session.npz", "--split": root / "split.npz",
               "--dir": root / "single", "--variants": json.dumps(VARIANTS),
               "--seeds": "0,1", "--top-k": "4", "--num-samples": "300",
               "--maps": root / out / "maps.npz", "--ranks": root / out / "ranks.tsv",
               "--summary": root / out / "summary.json",
               "--provenance": root / out / "provenance.json", **extra}
    return [str(x) for pair in options.items() for x in pair]


def test_step_writes_maps_ranks_and_overlaps(workdir):
    assert step.cli(args(workdir, "run1")) == 0
    with np.load(workdir / "run1" / "maps.npz") as maps:
        assert sorted(maps.files) == sorted(f"{v['model']}/{v['label_set']}/seed{s}"
                                            for v in VARIANTS for s in SEEDS)
        assert all(maps[k].shape == (16, 3) and (maps[k] >= 0).all() for k in maps.files)
    ranks = pd.read_csv(workdir / "run1" / "ranks.tsv", sep="\t")
    for _, group in ranks.groupby(["model", "label_set"]):
        assert sorted(group["rank"]) == list(range(1, 17))
        assert sorted(group["neuron"]) == list(range(16))
        assert group["score"].sum() == pytest.approx(1.0)
        assert group.sort_values("rank")["score"].is_monotonic_decreasing
    summary = json.loads((workdir / "run1" / "summary.json").read_text())
    assert summary["top_k"] == 4 and summary["matched_units"] is False
    for record in summary["variants"].values():
        assert 0 <= record["seed_overlap_jaccard"] <= 1
        assert record["chance_jaccard"] == pytest.approx(step.chance_jaccard(4, 16))
        assert len(record["top_k"]["0"]) == 4
    # Seeded: a second run gives the same bytes.
    assert step.cli(args(workdir, "run2")) == 0
    for name in ("maps.npz", "ranks.tsv", "summary.json"):
        assert (workdir / "run1" / name).read_bytes() == (workdir / "run2" / name).read_bytes()


def test_missing_model_and_bad_method_leave_nothing(workdir, capsys):
    bad = json.dumps(VARIANTS + [{"model": "nope", "label_set": "position"}])
    assert step.cli(args(workdir, "bad1", **{"--variants": bad})) == EXIT_BAD_INPUT
    assert "nope/position/seed0/model.pt" in capsys.readouterr().err
    assert step.cli(args(workdir, "bad2", **{"--method": "saliency"})) == EXIT_BAD_INPUT
    assert "jacobian-based" in capsys.readouterr().err
    assert not (workdir / "bad1").exists() and not (workdir / "bad2").exists()


def test_chance_jaccard_is_exact():
    subsets = list(itertools.combinations(range(6), 2))
    brute = np.mean([step.jaccard(a, b) for a in subsets for b in subsets])
    assert step.chance_jaccard(2, 6) == pytest.approx(brute)
    assert step.chance_jaccard(5, 5) == 1.0


def test_session_overlap_needs_matched_units():
    def record(matched, top, neurons=10):
        return {"matched_units": matched, "top_k": 3,
                "variants": {"m/l": {"top_k_consensus": top, "num_neurons": neurons}}}

    summaries = {"s1": record(True, [1, 2, 3]), "s2": record(True, [2, 3, 4])}
    frame = step.session_overlap(summaries, "m/l")
    assert frame.jaccard.tolist() == [0.5]
    assert frame.chance.iloc[0] == pytest.approx(step.chance_jaccard(3, 10))
    assert step.session_overlap({**summaries, "s2": record(False, [2, 3, 4])}, "m/l") is None
    assert step.session_overlap({**summaries, "s2": record(True, [2, 3, 4], 12)}, "m/l") is None


MULTI = [{"group": "g1", "model": "behavior", "label_set": "position"}]


@pytest.fixture(scope="module")
def multidir(workdir) -> Path:
    """Two seeds of a multi-session model over sessions a1/s2 (12 neurons) and a1/s1
    (16 neurons, encoder 1), stored as train-multi stores them."""
    other = cebra.datasets.init("synthetic-connectivity", num_timesteps=600, num_neurons=12,
                                neurons_per_latent=3)
    with np.load(workdir / "session.npz") as data:
        neural, position = data["neural"][:600], data["label_position"][:600]
    root = workdir / "multi"
    for seed in SEEDS:
        model = cebra.CEBRA(model_architecture="offset5-model", batch_size=32,
                            max_iterations=15, output_dimension=3, num_hidden_units=8,
                            device="cpu", random_state=seed)
        model.fit([other.neural, neural], [other.continuous, position])
        folder = root / "g1" / "behavior" / "position" / f"seed{seed}"
        folder.mkdir(parents=True)
        model.save(folder / "model.pt")
        save_npz(folder / "embeddings.npz", {"sessions": np.array(["a1/s2", "a1/s1"])})
    return root


def test_step_explains_this_sessions_encoder_of_multi_session_models(workdir, multidir):
    extra = {"--multi-dir": multidir, "--multi-variants": json.dumps(MULTI)}
    assert step.cli(args(workdir, "multi1", **extra)) == 0
    name = "multi/g1/behavior/position"
    with np.load(workdir / "multi1" / "maps.npz") as maps:
        assert {f"{name}/seed{s}" for s in SEEDS} <= set(maps.files)
        assert len(maps.files) == (len(VARIANTS) + 1) * len(SEEDS)
        model = cebra.CEBRA.load(multidir / "g1" / "behavior" / "position" / "seed1" / "model.pt")
        with np.load(workdir / "session.npz") as data:
            expected = step.neuron_map(model, data["neural"][:600], "jacobian-based", 300, 0,
                                       session_id=1)
        np.testing.assert_array_equal(maps[f"{name}/seed1"], expected)
    ranks = pd.read_csv(workdir / "multi1" / "ranks.tsv", sep="\t")
    rows = ranks[ranks.variant == name]
    assert (rows.group == "g1").all() and sorted(rows.neuron) == list(range(16))
    assert rows.score.sum() == pytest.approx(1.0)
    assert ranks[ranks.variant == "behavior/position"].group.isna().all()
    record = json.loads((workdir / "multi1" / "summary.json").read_text())["variants"][name]
    assert record["session_id"] == 1 and record["group"] == "g1"
    assert 0 <= record["seed_overlap_jaccard"] <= 1 and len(record["top_k"]) == len(SEEDS)
    with np.load(workdir / "multi1" / "maps.npz") as maps:
        figure = step.plot_maps({k: maps[k] for k in maps.files}, ranks, "a1 / s1")
    assert any(ax.get_title().startswith(name) for ax in figure.axes)
    # Multi-session models alone are enough.
    assert step.cli(args(workdir, "multi2", **extra, **{"--variants": "[]"})) == 0
    with np.load(workdir / "multi2" / "maps.npz") as maps:
        assert sorted(maps.files) == [f"{name}/seed{s}" for s in SEEDS]


def test_multi_session_bad_input_leaves_nothing(workdir, multidir, tmp_path, capsys):
    session = tmp_path / "s3.npz"
    with np.load(workdir / "session.npz") as data:
        meta = {**json.loads(str(data["meta"])), "session": "s3"}
        save_npz(session, {**{k: data[k] for k in data.files}, "meta": np.array(json.dumps(meta))})
    extra = {"--multi-dir": multidir, "--multi-variants": json.dumps(MULTI)}
    assert step.cli(args(workdir, "mbad1", **extra, **{"--session": session})) == EXIT_BAD_INPUT
    assert "a1/s3 is not among the sessions" in capsys.readouterr().err
    wrong = json.dumps([{**MULTI[0], "group": "g9"}])
    assert step.cli(args(workdir, "mbad2", **{**extra, "--multi-variants": wrong})) == \
        EXIT_BAD_INPUT
    assert "g9/behavior/position/seed0/embeddings.npz" in capsys.readouterr().err
    assert step.cli(args(workdir, "mbad3", **{"--multi-variants": json.dumps(MULTI)})) == \
        EXIT_BAD_INPUT
    assert "--multi-dir" in capsys.readouterr().err
    assert step.cli(args(workdir, "mbad4", **{"--variants": "[]"})) == EXIT_BAD_INPUT
    assert "both empty" in capsys.readouterr().err
    assert not any((workdir / f"mbad{i}").exists() for i in range(1, 5))
