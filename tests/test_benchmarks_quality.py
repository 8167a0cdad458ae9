"""The quality benchmark (benchmarks/quality.py): its scoring and statistics are right,
an interrupted run resumes from its cache, the README table is well formed, and its
quick mode for cebra_pipe decodes a small synthetic track far better than chance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from benchmark_scripts import load_benchmark

quality = load_benchmark("quality", "bench_quality")


def test_consistency_is_one_for_linear_maps_and_low_for_noise():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(500, 3))
    mixed = base @ rng.normal(size=(3, 3)) + 0.5
    assert quality.pairwise_consistency([base, mixed, 2 * base]) == pytest.approx(1.0)
    assert quality.pairwise_consistency([base, rng.normal(size=(500, 3))]) < 0.1
    assert math.isnan(quality.pairwise_consistency([base]))


def test_decoder_beats_shuffled_labels_on_an_informative_embedding():
    # A ring embedding of position (like CEBRA's cosine embeddings): decodable.
    rng = np.random.default_rng(1)
    position = rng.uniform(0, 1.6, 2000)
    angle = position / 1.6 * np.pi
    embedding = np.stack([np.cos(angle), np.sin(angle), 0.05 * rng.normal(size=2000)], 1)
    error = quality.decode_error(embedding[:1600], position[:1600], embedding[1600:],
                                 position[1600:])
    chance = quality.shuffled_error(embedding[:1600], position[:1600], embedding[1600:],
                                    position[1600:])
    assert error < 0.05
    assert chance > 0.3


# -- bootstrap interval of the ratio ---------------------------------------------------------
def test_ratio_interval_excludes_target_when_ours_is_clearly_worse():
    rng = np.random.default_rng(2)
    reference = 10 + rng.normal(0, 0.3, 8)
    ours = 1.3 * (10 + rng.normal(0, 0.3, 8))
    ratio, low, high = quality.ratio_interval(ours, reference)
    assert ratio == pytest.approx(np.median(ours) / np.median(reference))
    assert quality.TARGET_RATIO < low < ratio < high < 1.5
    assert quality.verdict(low, high) == "worse by > 5 %"


def test_ratio_interval_brackets_one_for_the_same_distribution():
    rng = np.random.default_rng(3)
    ours, reference = rng.normal(10, 1, 8), rng.normal(10, 1, 8)
    ratio, low, high = quality.ratio_interval(ours, reference)
    assert low < 1.0 < high
    assert low < ratio < high
    # Swapping the libraries inverts the interval (percentile intervals are equivariant).
    _, low_swapped, high_swapped = quality.ratio_interval(reference, ours)
    assert low_swapped == pytest.approx(1 / high, rel=0.02)
    assert high_swapped == pytest.approx(1 / low, rel=0.02)


def test_ratio_interval_narrows_with_more_seeds_and_is_reproducible():
    rng = np.random.default_rng(4)
    few = quality.ratio_interval(rng.normal(10, 1, 4), rng.normal(10, 1, 4))
    many_ours, many_ref = rng.normal(10, 1, 64), rng.normal(10, 1, 64)
    many = quality.ratio_interval(many_ours, many_ref)
    assert many[2] - many[1] < few[2] - few[1]
    assert quality.ratio_interval(many_ours, many_ref) == many


def test_ratio_interval_needs_two_seeds_per_library():
    with pytest.raises(ValueError, match="1 \\(cebra_pipe\\) and 3 \\(reference\\)"):
        quality.ratio_interval([10.0], [9.0, 10.0, 11.0])


@pytest.mark.parametrize("low, high, expected", [
    (1.06, 1.2, "worse by > 5 %"),
    (1.01, 1.04, "worse, within 5 %"),
    (1.01, 1.10, "worse; 5 % not excluded"),
    (0.90, 0.98, "better"),
    (0.97, 1.04, "no difference; within 5 %"),
    (0.95, 1.12, "no difference seen; > 5 % not excluded"),
    (float("nan"), float("nan"), "too few seeds"),
])
def test_verdict_reads_the_interval(low, high, expected):
    assert quality.verdict(low, high) == expected


# -- summary and table -----------------------------------------------------------------------
def _record(library, mode, dataset, seed, error, key=None):
    return {"key": key or f"{library}-{mode}-{dataset}-{seed}", "library": library,
            "mode": mode, "dataset": dataset, "seed": seed, "error_cm": error,
            "chance_cm": 40.0, "fit_cpu_seconds": 80.0 if library == "cebra_pipe" else 200.0}


def test_summarize_and_markdown_table_on_constructed_records():
    records = [_record("cebra_pipe", "time", "achilles", s, e)
               for s, e in enumerate([10.0, 11.0, 12.0, 10.5])]
    records += [_record("reference", "time", "achilles", s, e)
                for s, e in enumerate([9.0, 10.0, 11.0, 9.5])]
    # Only one seed of behaviour on buddy: medians but no interval.
    records += [_record("cebra_pipe", "behavior", "buddy", 0, 12.0),
                _record("reference", "behavior", "buddy", 0, 12.5)]
    rows = quality.summarize(records)
    time_row, behavior_row = rows
    assert time_row["median_cm_cebra_pipe"] == pytest.approx(10.75)
    assert time_row["median_cm_reference"] == pytest.approx(9.75)
    assert time_row["ratio"] == pytest.approx(10.75 / 9.75)
    assert time_row["ci_low"] < time_row["ratio"] < time_row["ci_high"]
    assert time_row["seeds_reference"] == [0, 1, 2, 3]
    assert behavior_row["ratio"] == pytest.approx(12.0 / 12.5)
    assert math.isnan(behavior_row["ci_low"]) and behavior_row["verdict"] == "too few seeds"

    table = quality.markdown_table(rows).splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:7] == ["mode", "rat", "seeds ours / ref", "cebra_pipe median cm",
                          "reference median cm", "ratio", "95 % CI"]
    assert set(table[1].replace("|", "")) == {"-"}
    assert all(line.count("|") == table[0].count("|") for line in table)
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[:6] == ["time", "achilles", "4 / 4", "10.75", "9.75", "1.103"]
    assert cells[6] == f"{time_row['ci_low']:.3f}-{time_row['ci_high']:.3f}"
    buddy = [c.strip() for c in table[3].strip("|").split("|")]
    assert buddy[2:7] == ["1 / 1", "12.00", "12.50", "0.960", "n/a-n/a"]
    assert buddy[7:10] == ["n/a", "n/a", "too few seeds"]


# -- cache and resume ------------------------------------------------------------------------
@pytest.fixture()
def fake_rat(tmp_path, monkeypatch):
    """A small 'achilles' on disk, and workers replaced by an instant fake fit."""
    root = tmp_path / "real"
    folder = root / "rat_hippocampus_achilles"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    position = np.abs(np.sin(np.linspace(0, 20, 500))) * 1.6
    continuous = np.stack([position, position > 0.8, position <= 0.8], 1)
    np.savez(folder / "rat_hippocampus_achilles.npz",
             neural=rng.poisson(2, (500, 7)).astype(np.float32), continuous=continuous)
    monkeypatch.setattr(quality, "REAL_DATA", root)
    calls = []

    def fake_run_job(job, python, threads, scratch, ours_root=quality.REPO):
        calls.append((job.library, job.mode, job.seed))
        with np.load(job.data_path) as data:
            pos, split = data["continuous"][:, 0], int(data["split"])
        noise = np.random.default_rng(job.seed).normal(0, 0.05, (len(pos), 3))
        embedding = np.stack([np.cos(pos), np.sin(pos), 0 * pos], 1) + noise
        return {"train": embedding[:split], "test": embedding[split:],
                "loss": np.full(200, 5.0), "fit_seconds": np.float64(1.0),
                "fit_cpu_seconds": np.float64(0.5)}

    monkeypatch.setattr(quality, "run_job", fake_run_job)
    return calls


def _run(cache, seeds, **kwargs):
    return quality.run("/no/reference/python", modes=("time",), datasets=("achilles",),
                       seeds=seeds, steps=50, cache=cache, workers=2,
                       log=lambda *a, **k: None, **kwargs)


def test_run_caches_every_fit_and_resumes_without_refitting(tmp_path, fake_rat):
    cache = tmp_path / "out" / "fits.jsonl"
    records = _run(cache, [0, 1])
    assert sorted(fake_rat) == sorted((lib, "time", s) for lib in quality.LIBRARIES
                                      for s in (0, 1))
    assert len(records) == 4 and len(cache.read_text().splitlines()) == 4
    assert all(r["error_cm"] < 0.5 * r["chance_cm"] for r in records)
    assert {r["data"] for r in records} == {records[0]["data"]}  # one data fingerprint

    fake_rat.clear()
    again = _run(cache, [0, 1])
    assert fake_rat == []  # everything came from the cache
    assert [r["key"] for r in again] == [r["key"] for r in records]

    # More seeds add to the same cache; only the new ones are fitted.
    more = _run(cache, [0, 1, 2])
    assert sorted(fake_rat) == [("cebra_pipe", "time", 2), ("reference", "time", 2)]
    assert len(more) == 6
    embeddings = quality.FitCache(cache)
    assert all(embeddings.test_embedding(r["key"]).shape == (100, 3) for r in more)
    rows = quality.summarize(more, embeddings)
    assert rows[0]["consistency_cebra_pipe"] > 0.9


def test_an_interrupted_write_is_skipped_and_that_fit_reruns(tmp_path, fake_rat, capsys):
    cache = tmp_path / "fits.jsonl"
    records = _run(cache, [0])
    lines = cache.read_text().splitlines()
    # The process died while writing the last line.
    cache.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    lost = json.loads(lines[1])
    assert set(quality.FitCache(cache).load()) == {json.loads(lines[0])["key"]}
    assert "skipping an unreadable line" in capsys.readouterr().err
    fake_rat.clear()
    resumed = _run(cache, [0])
    assert fake_rat == [(lost["library"], "time", 0)]
    assert {r["key"] for r in resumed} == {r["key"] for r in records}


def test_cache_keys_separate_settings_and_libraries(tmp_path, fake_rat):
    cache = tmp_path / "fits.jsonl"
    _run(cache, [0])
    fake_rat.clear()
    quality.run(None, modes=("time",), datasets=("achilles",), seeds=[0], steps=60,
                cache=cache, log=lambda *a, **k: None)
    # Other steps: new keys; without a reference interpreter only cebra_pipe is fitted.
    assert fake_rat == [("cebra_pipe", "time", 0)]
    ours = quality.Job("cebra_pipe", "time", "achilles", Path("x"), "f", 0, 50)
    reference = quality.Job("reference", "time", "achilles", Path("x"), "f", 0, 50)
    assert len({ours.key(), reference.key(), ours.key()}) == 2
    assert "ours_revision" in ours.settings() and "ours_revision" not in reference.settings()


def test_jobs_interleave_the_libraries_seed_by_seed():
    prepared = {"achilles": (Path("a"), "fa"), "buddy": (Path("b"), "fb")}
    jobs = quality.plan(("time",), ("achilles", "buddy"), [0, 1], quality.LIBRARIES,
                        prepared, 10)
    assert [(j.seed, j.dataset, j.library) for j in jobs[:4]] == [
        (0, "achilles", "cebra_pipe"), (0, "achilles", "reference"),
        (0, "buddy", "cebra_pipe"), (0, "buddy", "reference")]


def test_bad_arguments_and_missing_recordings_are_named(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown mode.*'speed'"):
        quality.run(None, modes=("speed",), cache=tmp_path / "c.jsonl")
    with pytest.raises(ValueError, match="unknown dataset.*'rat9'"):
        quality.run(None, datasets=("rat9",), cache=tmp_path / "c.jsonl")
    monkeypatch.setattr(quality, "REAL_DATA", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="rat 'buddy'.*nowhere"):
        quality.rat_arrays("buddy")


@pytest.mark.slow
def test_quick_mode_for_cebra_pipe_decodes_far_below_chance(tmp_path):
    records = quality.run(None, modes=quality.MODES, datasets=("synthetic",), seeds=[0, 1],
                          steps=300, synthetic_duration=60.0, cache=tmp_path / "fits.jsonl",
                          log=lambda *a, **k: None)
    assert sorted((r["mode"], r["seed"]) for r in records) == [
        ("behavior", 0), ("behavior", 1), ("time", 0), ("time", 1)]
    assert {r["library"] for r in records} == {"cebra_pipe"}
    behavior = [r for r in records if r["mode"] == "behavior"]
    # A chance-level decoder is off by ~40 cm on a 1.6 m track; trained CEBRA by a few cm.
    assert all(r["error_cm"] < 0.25 * r["chance_cm"] for r in behavior)
    assert all(r["error_cm"] < r["chance_cm"] for r in records)
    assert all(r["fit_seconds"] > 0 for r in records)
    rows = quality.summarize(records, quality.FitCache(tmp_path / "fits.jsonl"))
    assert 0.5 < rows[0]["consistency_cebra_pipe"] <= 1.0
    assert math.isnan(rows[0]["ratio"])
    assert "| behavior | synthetic | 2 / 0 |" in quality.markdown_table(rows)


def test_train_steps_repeat_exactly_and_see_a_changed_criterion():
    import torch

    from cebra_pipe import models
    from cebra_pipe.models.criterions import FixedCosineInfoNCE

    rng = np.random.default_rng(0)
    neural = rng.poisson(2, (300, 7)).astype(np.float32)
    reference = rng.integers(5, 300 - 15, (5, 32))
    batches = np.stack([reference, reference + 10, rng.integers(5, 285, (5, 32))], 1)

    def losses(temperature):
        torch.manual_seed(0)
        model = models.init("offset10-model", num_neurons=7, num_units=8, num_output=3)
        return quality.train_steps(model, FixedCosineInfoNCE(temperature=temperature),
                                   neural, batches, 1e-3)

    first = losses(1.0)
    assert first.shape == (5,) and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, losses(1.0))
    assert np.abs(losses(0.5) - first).max() > 100 * quality.STEP_CHECK_TOLERANCE


def test_plot_draws_one_panel_per_row(tmp_path):
    import matplotlib.image

    records = [_record(lib, "time", "achilles", s, 10.0 + s + (lib == "reference"))
               for lib in quality.LIBRARIES for s in range(3)]
    records.append(_record("cebra_pipe", "behavior", "buddy", 0, 12.0))
    path = tmp_path / "plots" / "quality.png"
    quality.plot_errors(quality.summarize(records), path)
    image = matplotlib.image.imread(path)
    assert image.shape[1] > 1.5 * image.shape[0]  # two panels side by side
    assert image[..., :3].std() > 0.05  # not blank
