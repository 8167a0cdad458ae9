"""Tests of ``cebra_pipe.grid_search.GridSearch``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cebra_pipe import CEBRA
from cebra_pipe.grid_search import RESULTS_FILE, GridSearch
from cebra_pipe.sklearn.metrics import goodness_of_fit_score, infonce_loss

FIXED = {"max_iterations": 15, "batch_size": 64, "device": "cpu", "random_state": 0,
         "verbose": False}
PARAMS = {"output_dimension": [2, 4], "learning_rate": [1e-3, 1e-2], **FIXED}


def _place_cells(n: int = 500, neurons: int = 10, seed: int = 0):
    """Place cells on a track run back and forth: ``(n, neurons)`` and position ``(n, 1)``."""
    rng = np.random.default_rng(seed)
    position = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / 200)
    centers = rng.uniform(0, 1, neurons)
    rates = np.exp(-(position[:, None] - centers) ** 2 / (2 * 0.1 ** 2))
    neural = rates + 0.2 * rng.normal(size=rates.shape)
    return neural.astype(np.float32), position[:, None].astype(np.float32)


@pytest.fixture(scope="module")
def data() -> dict:
    neural, position = _place_cells()
    noise = np.random.default_rng(1).normal(size=(500, 10)).astype(np.float32)
    return {"place": (neural, position), "noise": noise}


@pytest.fixture(scope="module")
def search(data, tmp_path_factory) -> GridSearch:
    models_dir = tmp_path_factory.mktemp("grid")
    return GridSearch(num_batches=5, verbose=False).fit_models(data, PARAMS, models_dir)


@pytest.fixture(scope="module")
def results(search) -> pd.DataFrame:
    return search.get_df_results()


# --------------------------------------------------------------------------------------
# Fitting and the results table
# --------------------------------------------------------------------------------------

def test_one_model_file_per_dataset_and_combination(search):
    files = sorted(p.name for p in search.models_dir.iterdir())
    expected = sorted(f"{dataset}__output_dimension-{dim}_learning_rate-{lr}.pt"
                      for dataset in ("place", "noise") for dim in (2, 4)
                      for lr in (0.001, 0.01))
    assert files == sorted(expected + [RESULTS_FILE])  # no temporary files left over


def test_results_table_columns_and_values(results, search):
    assert len(results) == 8
    assert list(results.columns[:2]) == ["dataset", "name"]
    for column in ("output_dimension", "learning_rate", "max_iterations", "batch_size",
                   "train_loss", "valid_infonce", "valid_goodness_of_fit", "model_file"):
        assert column in results.columns
    assert set(results["dataset"]) == {"place", "noise"}
    assert sorted(set(results["output_dimension"])) == [2, 4]
    assert sorted(set(results["learning_rate"])) == [0.001, 0.01]
    assert set(results["max_iterations"]) == {15}
    # Last 20% of time held out.
    assert set(results["num_train"]) == {400} and set(results["num_valid"]) == {100}
    for column in ("train_loss", "valid_infonce", "valid_goodness_of_fit"):
        assert results[column].dtype == float and results[column].notna().all()
    for model_file in results["model_file"]:
        assert (search.models_dir / model_file).is_file()
    assert list(results["name"] + ".pt") == list(results["model_file"])


def test_models_train_on_the_first_part_and_are_scored_on_the_last(search, results, data):
    neural, position = data["place"]
    row = results[results["name"] == "place__output_dimension-4_learning_rate-0.01"].iloc[0]
    loaded = CEBRA.load(search.models_dir / row["model_file"])
    assert loaded.output_dimension == 4 and loaded.learning_rate == 0.01
    # Same parameters and seed on the first 80%: the same training run.
    refit = CEBRA(output_dimension=4, learning_rate=0.01, **FIXED).fit(neural[:400],
                                                                       position[:400])
    np.testing.assert_allclose(loaded.state_dict_["loss"], refit.state_dict_["loss"],
                               rtol=1e-5)
    assert row["train_loss"] == pytest.approx(float(loaded.state_dict_["loss"][-1]))
    # Held-out scores: the metrics on the last 20%, seeded like the grid search.
    valid = (neural[400:], position[400:])
    assert row["valid_infonce"] == pytest.approx(
        infonce_loss(loaded, *valid, num_batches=5, seed=0), abs=1e-5)
    assert row["valid_goodness_of_fit"] == pytest.approx(
        goodness_of_fit_score(loaded, *valid, num_batches=5, seed=0), abs=1e-5)


def test_held_out_fit_separates_signal_from_noise(results):
    best = results.groupby("dataset")["valid_goodness_of_fit"].max()
    assert best["place"] > 0.1
    assert abs(best["noise"]) < 0.1
    assert best["place"] > best["noise"] + 0.1


def test_results_file_is_json_with_one_row_per_model(search):
    payload = json.loads((search.models_dir / RESULTS_FILE).read_text())
    assert payload["format"] == "cebra_pipe.GridSearch/1"
    assert payload["settings"] == {"valid_fraction": 0.2, "num_batches": 5, "seed": 0}
    assert len(payload["results"]) == 8
    assert payload["results"][0]["swept"] == ["output_dimension", "learning_rate"]


def test_load_restores_results_and_settings(search, results):
    loaded = GridSearch.load(search.models_dir)
    pd.testing.assert_frame_equal(loaded.get_df_results(), results)
    assert (loaded.valid_fraction, loaded.num_batches, loaded.seed) == (0.2, 5, 0)
    pd.testing.assert_frame_equal(GridSearch().get_df_results(search.models_dir), results)


def test_load_unpacks_as_the_reference_models_and_parameters(search, results):
    """``models, parameters = GridSearch.load(dir)`` as with the reference."""
    models, parameters = GridSearch.load(search.models_dir)
    assert list(models) == results["name"].tolist() and len(parameters) == len(models)
    assert parameters[0] == GridSearch.load(search.models_dir).load_models()[1][0]
    name, params = results["name"][3], parameters[3]
    assert models[name].output_dimension == params["output_dimension"]
    assert models[name].learning_rate == params["learning_rate"]
    X = np.random.default_rng(0).normal(size=(30, models[name].n_features_in_))
    best, best_name = GridSearch.load(search.models_dir).get_best_model()
    np.testing.assert_array_equal(models[best_name].transform(X), best.transform(X))


# --------------------------------------------------------------------------------------
# Best model
# --------------------------------------------------------------------------------------

def test_best_model_by_held_out_goodness_of_fit(search, results):
    model, name = search.get_best_model()
    assert name == results.loc[results["valid_goodness_of_fit"].idxmax(), "name"]
    assert isinstance(model, CEBRA) and hasattr(model, "solver_")
    assert name.startswith("place__")


@pytest.mark.parametrize("scoring, column, pick", [
    ("goodness_of_fit", "valid_goodness_of_fit", "idxmax"),
    ("infonce", "valid_infonce", "idxmin"),
    ("train_loss", "train_loss", "idxmin"),
])
@pytest.mark.parametrize("dataset", ["place", "noise"])
def test_best_model_per_dataset(search, results, scoring, column, pick, dataset):
    _, name = search.get_best_model(scoring=scoring, dataset_name=dataset)
    subset = results[results["dataset"] == dataset]
    assert name == subset.loc[getattr(subset[column], pick)(), "name"]


def test_best_model_does_not_rank_by_training_loss(search, tmp_path):
    """A model that fits its training data best but generalises worse is not picked
    unless scoring="train_loss" is asked for."""
    rows = json.loads((search.models_dir / RESULTS_FILE).read_text())
    a, b = (dict(row) for row in rows["results"][:2])
    a.update(name="d__overfit", train_loss=1.0, valid_infonce=4.0, valid_goodness_of_fit=0.1,
             model_file="d__overfit.pt", dataset="d")
    b.update(name="d__general", train_loss=3.0, valid_infonce=3.5, valid_goodness_of_fit=0.5,
             model_file="d__general.pt", dataset="d")
    for row, source in ((a, rows["results"][0]), (b, rows["results"][1])):
        shutil.copy(search.models_dir / source["model_file"], tmp_path / row["model_file"])
    rows["results"] = [a, b]
    (tmp_path / RESULTS_FILE).write_text(json.dumps(rows))
    fake = GridSearch.load(tmp_path)
    assert fake.get_best_model()[1] == "d__general"
    assert fake.get_best_model("infonce")[1] == "d__general"
    assert fake.get_best_model("train_loss")[1] == "d__overfit"
    # NaN scores (a diverged model) are never picked.
    rows["results"][1]["valid_goodness_of_fit"] = float("nan")
    (tmp_path / RESULTS_FILE).write_text(json.dumps(rows))
    assert GridSearch.load(tmp_path).get_best_model()[1] == "d__overfit"


def test_best_model_errors(search):
    with pytest.raises(ValueError, match=r"scoring must be one of \['goodness_of_fit', "
                                         r"'infonce', 'train_loss'\], got 'accuracy'"):
        search.get_best_model(scoring="accuracy")
    with pytest.raises(ValueError, match="ambiguous"):
        search.get_best_model(scoring="infonce_loss")
    with pytest.raises(ValueError, match=r"dataset_name 'rat9' not found.*\['noise', 'place'\]"):
        search.get_best_model(dataset_name="rat9")


def test_no_results_yet(tmp_path):
    with pytest.raises(ValueError, match="call fit_models"):
        GridSearch().get_df_results()
    with pytest.raises(ValueError, match="call fit_models"):
        GridSearch().get_best_model()
    with pytest.raises(FileNotFoundError, match="No grid search results"):
        GridSearch.load(tmp_path)
    (tmp_path / RESULTS_FILE).write_text('{"something": "else"}')
    with pytest.raises(ValueError, match="not a grid search results file"):
        GridSearch.load(tmp_path)


# --------------------------------------------------------------------------------------
# More ways to call it
# --------------------------------------------------------------------------------------

def test_rerun_adds_and_replaces_rows(data, tmp_path):
    neural, position = data["place"]
    small = {"max_iterations": 3, "batch_size": 32, "device": "cpu", "random_state": 0}
    search = GridSearch(num_batches=2, verbose=False)
    search.fit_models({"a": (neural, position)}, {"output_dimension": [2, 3], **small},
                      tmp_path)
    # Another search in the same directory keeps the rows and replaces re-fitted ones.
    GridSearch(num_batches=2, verbose=False).fit_models(
        {"a": (neural, position), "b": neural}, {"output_dimension": [3], **small}, tmp_path)
    frame = GridSearch.load(tmp_path).get_df_results()
    assert sorted(frame["name"]) == ["a__output_dimension-2", "a__output_dimension-3",
                                     "b__output_dimension-3"]
    assert len(list(tmp_path.glob("*.pt"))) == 3


def test_fixed_params_only_and_progress_bar(data, tmp_path, capsys):
    neural, position = data["place"]
    search = GridSearch(num_batches=2, valid_fraction=0.3).fit_models(
        {"track": (neural, position)},
        {"max_iterations": 3, "batch_size": 32, "device": "cpu"}, tmp_path)
    frame = search.get_df_results()
    assert list(frame["name"]) == ["track__fixed"]
    assert frame.loc[0, "num_valid"] == 150  # valid_fraction=0.3 of 500
    assert "grid search" in capsys.readouterr().err  # tqdm bar on stderr


def test_multi_session_dataset(tmp_path):
    rng = np.random.default_rng(2)
    X = [rng.normal(size=(300, 6)), rng.normal(size=(250, 4))]
    y = [rng.uniform(size=(300, 2)), rng.uniform(size=(250, 2))]
    search = GridSearch(num_batches=2, verbose=False).fit_models(
        {"two": (X, y)}, {"output_dimension": [3], "max_iterations": 3, "batch_size": 32,
                          "device": "cpu"}, tmp_path)
    row = search.get_df_results().iloc[0]
    assert row["num_train"] == (240, 200) and row["num_valid"] == (60, 50)
    model, _ = search.get_best_model()
    assert model.num_sessions_ == 2


def test_discrete_labels_and_tensor_input(tmp_path):
    import torch

    rng = np.random.default_rng(3)
    X = torch.from_numpy(rng.normal(size=(300, 5)).astype(np.float32))
    labels = rng.integers(0, 3, 300)
    search = GridSearch(num_batches=2, verbose=False).fit_models(
        {"d": (X, labels)}, {"temperature": [0.5, 1.0], "max_iterations": 3,
                             "batch_size": 32, "device": "cpu"}, tmp_path)
    frame = search.get_df_results()
    assert list(frame["temperature"]) == [0.5, 1.0]
    model, _ = search.get_best_model(scoring="infonce")
    assert model.label_kind_ == "discrete"


def test_failure_keeps_finished_models(data, tmp_path):
    neural, position = data["place"]
    broken = neural.copy()
    broken[10, 0] = np.nan
    with pytest.raises(ValueError, match="NaN") as info:
        GridSearch(num_batches=2, verbose=False).fit_models(
            {"good": (neural, position), "bad": (broken, position)},
            {"max_iterations": 3, "batch_size": 32, "device": "cpu"}, tmp_path)
    assert any("dataset 'bad'" in note for note in info.value.__notes__)
    frame = GridSearch.load(tmp_path).get_df_results()
    assert list(frame["dataset"]) == ["good"]


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("params, error, match", [
    ({}, ValueError, "params is empty"),
    ([("output_dimension", 3)], TypeError, "params must be a dict"),
    ({"output_dim": [3, 8]}, ValueError,
     r"Unknown CEBRA parameter\(s\) \['output_dim'\].*did you mean 'output_dimension'.*"
     r"Valid parameters: \[.*'max_iterations'.*\]"),
    ({"output_dimension": []}, ValueError, r"params\['output_dimension'\] is an empty list"),
    ({"output_dimension": [3, 3]}, ValueError, "same value twice"),
    ({"batch_size": [32, 0], "max_iterations": 2}, ValueError,
     r"Invalid parameter combination \{batch_size=0, max_iterations=2\}: batch_size"),
    ({"distance": ["cosine", "manhattan"]}, ValueError, "distance must be one of"),
    ({"output_dimension": 3, "device": object()}, TypeError, "JSON-like"),
])
def test_bad_params(data, tmp_path, params, error, match):
    with pytest.raises(error, match=match):
        GridSearch(verbose=False).fit_models(data, params, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


@pytest.mark.parametrize("datasets, error, match", [
    ({}, ValueError, "datasets is empty"),
    ([np.zeros((10, 2))], TypeError, "datasets must be a dict"),
    ({"a__b": np.zeros((500, 3))}, ValueError, "not usable in file names"),
    ({"a/b": np.zeros((500, 3))}, ValueError, "not usable in file names"),
    ({"a": ()}, ValueError, "empty tuple"),
    ({"a": np.zeros(500)}, ValueError, r"X must be 2-D \(time, neurons\)"),
    ({"a": (np.zeros((500, 3)), np.zeros(499))}, ValueError,
     r"datasets\['a'\]: label 0 has 499 samples but X has 500"),
    ({"a": ([np.zeros((50, 3)), np.zeros((40, 3))], np.zeros(50))}, ValueError,
     "one array per session"),
])
def test_bad_datasets(tmp_path, datasets, error, match):
    with pytest.raises(error, match=match):
        GridSearch(verbose=False).fit_models(datasets, {"max_iterations": 2}, tmp_path / "out")


def test_dataset_too_short_to_split(tmp_path):
    neural = np.random.default_rng(0).normal(size=(40, 3))
    params = {"model_architecture": "offset10-model", "time_offsets": 10, "max_iterations": 2}
    with pytest.raises(ValueError, match=r"dataset 'short' is too short to split: 40 samples "
                                         r"with valid_fraction=0.2 leave 32 to train and 8 to "
                                         r"validate; each part needs at least 20"):
        GridSearch(verbose=False).fit_models({"short": neural}, params, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # With a larger held-out part both halves are long enough.
    GridSearch(valid_fraction=0.5, num_batches=1, verbose=False).fit_models(
        {"short": neural}, {**params, "batch_size": 8, "device": "cpu"}, tmp_path / "ok")


@pytest.mark.parametrize("kwargs, match", [
    ({"valid_fraction": 0.0}, "valid_fraction"),
    ({"valid_fraction": 1.0}, "valid_fraction"),
    ({"valid_fraction": "0.2"}, "valid_fraction"),
    ({"num_batches": 0}, "num_batches"),
    ({"num_batches": 2.5}, "num_batches"),
    ({"seed": None}, "seed"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GridSearch(**kwargs)
