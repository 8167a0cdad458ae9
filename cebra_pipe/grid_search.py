"""Grid search over :class:`cebra_pipe.CEBRA` parameters, scored on held-out data.

Every dataset is split in time: the first ``1 - valid_fraction`` of the samples
train a model, the last ``valid_fraction`` are held out. Each model is scored on
the held-out part with its own InfoNCE loss and the goodness of fit derived from
it (:func:`cebra_pipe.sklearn.metrics.infonce_loss`,
:func:`~cebra_pipe.sklearn.metrics.goodness_of_fit_score`), on seeded batches, so
models are ranked by how well they generalise rather than by their final training
loss (which rewards overfitting and is not comparable across batch sizes).

Example
-------
>>> from cebra_pipe.grid_search import GridSearch
>>> params = {"output_dimension": [3, 8],          # a list: swept
...           "learning_rate": [1e-3, 3e-4],       # swept (2 x 2 = 4 models)
...           "max_iterations": 2000,              # anything else: fixed
...           "batch_size": 512}
>>> datasets = {"rat1": (neural, position),        # (X, *labels)
...             "rat1-time": neural}                # X alone: CEBRA-Time
>>> search = GridSearch().fit_models(datasets, params, models_dir="grid")
>>> search.get_df_results()                         # one row per model
>>> model, name = search.get_best_model(dataset_name="rat1")
>>> GridSearch.load("grid").get_best_model()        # later, from the directory
>>> models, parameters = GridSearch.load("grid")    # the reference's form: all models

Files written to ``models_dir``: one model per dataset and parameter combination,
``<dataset>__<param-string>.pt`` (:meth:`cebra_pipe.CEBRA.save`), and the results
table ``grid_search_results.json``, rewritten atomically after every fit, so an
interrupted search keeps every model finished so far. Re-running a combination
in the same directory replaces its model and row.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cebra_pipe.arrays import to_numpy
from cebra_pipe.data.splits import block_split
from cebra_pipe.io import atomic_write, jsonable

__all__ = ["GridSearch", "RESULTS_FILE"]

#: Name of the results table inside ``models_dir``.
RESULTS_FILE = "grid_search_results.json"
_FORMAT = "cebra_pipe.GridSearch/1"

#: ``scoring`` name -> (results column, higher is better).
_SCORINGS = {
    "goodness_of_fit": ("valid_goodness_of_fit", True),
    "infonce": ("valid_infonce", False),
    "train_loss": ("train_loss", False),
}
_DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*(_[A-Za-z0-9.-]+)*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_MAX_PARAM_STRING = 120


class GridSearch:
    """Fit one CEBRA model per dataset and parameter combination; rank them on held-out data.

    Parameters
    ----------
    valid_fraction
        Fraction of every dataset held out for scoring: the last part of time
        (a contiguous block, so temporally correlated neighbours of validation
        samples are not trained on). In (0, 1).
    num_batches
        Batches of fresh samples to average the held-out InfoNCE over.
    seed
        Seeds the sampling of the evaluation batches (identical for every model,
        so scores are compared on the same draws where data shapes allow).
    verbose
        Show a progress bar over the fits.

    Attributes
    ----------
    models_dir : Path or None
        Directory of the last :meth:`fit_models` or :meth:`load`.
    """

    def __init__(self, valid_fraction: float = 0.2, num_batches: int = 50, seed: int = 0,
                 verbose: bool = True):
        if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, (int, float)) \
                or not 0.0 < float(valid_fraction) < 1.0:
            raise ValueError(f"valid_fraction must be a number in (0, 1), got {valid_fraction!r}.")
        if isinstance(num_batches, bool) or not isinstance(num_batches, (int, np.integer)) \
                or num_batches < 1:
            raise ValueError(f"num_batches must be a positive integer, got {num_batches!r}.")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {seed!r}.")
        self.valid_fraction = float(valid_fraction)
        self.num_batches = int(num_batches)
        self.seed = int(seed)
        self.verbose = bool(verbose)
        self.models_dir: Path | None = None
        self._rows: list[dict] = []

    # -- fitting -------------------------------------------------------------------------
    def fit_models(self, datasets: Mapping[str, Any], params: Mapping[str, Any],
                   models_dir: str | os.PathLike) -> "GridSearch":
        """Fit, score and save a model for every dataset x parameter combination.

        Parameters
        ----------
        datasets
            ``name -> X`` or ``name -> (X, *labels)``, with ``X : (time, neurons)``
            and labels as for :meth:`cebra_pipe.CEBRA.fit` (``(time,)`` int,
            ``(time,)``/``(time, dims)`` float). ``X`` may be a list of recordings
            (multi-session), each label then a list with one array per session.
            Names become file names: letters, digits, ``.``, ``-`` and single
            ``_``.
        params
            CEBRA parameters. A ``list`` value is swept (the combinations are the
            cartesian product of all lists); any other value (including a tuple)
            is passed unchanged to every model.
        models_dir
            Where models and the results table are written (created if needed).
            Results already there are kept; a combination fitted again replaces
            its row and model file.

        Returns
        -------
        self
        """
        from tqdm.auto import tqdm

        prepared = _check_datasets(datasets)
        combinations, swept = _expand_params(params)
        for name, data in prepared.items():
            for combo in combinations:
                _split(name, data, self.valid_fraction, combo)  # fail before any training
        models_dir = Path(models_dir)
        models_dir.mkdir(parents=True, exist_ok=True)
        self.models_dir = models_dir
        self._rows = _read_rows(models_dir)

        todo = [(dataset, combo) for dataset in prepared for combo in combinations]
        with tqdm(todo, desc="grid search", unit="model", disable=not self.verbose) as progress:
            for dataset, combo in progress:
                name = _model_name(dataset, combo, swept)
                progress.set_postfix_str(name, refresh=False)
                try:
                    row = self._fit_one(dataset, prepared[dataset], combo, swept, name)
                except Exception as error:
                    error.add_note(f"GridSearch: while fitting dataset {dataset!r} with "
                                   f"{_describe(combo)}.")
                    raise
                # Re-read first: rows written meanwhile (another search) are kept.
                self._rows = [r for r in _read_rows(models_dir) if r["name"] != name] + [row]
                _write_rows(models_dir, self._rows, self._settings())
        return self

    def _fit_one(self, dataset: str, data: "_Dataset", combo: dict, swept: list[str],
                 name: str) -> dict:
        from cebra_pipe.sklearn import metrics
        from cebra_pipe.sklearn.estimator import CEBRA

        train, valid = _split(dataset, data, self.valid_fraction, combo)
        start = time.perf_counter()
        model = CEBRA(**combo).fit(*train)
        fit_seconds = time.perf_counter() - start
        evaluation = dict(num_batches=self.num_batches, seed=self.seed)
        valid_infonce = metrics.infonce_loss(model, *valid, **evaluation)
        valid_gof = metrics.goodness_of_fit_score(model, *valid, **evaluation)
        history = np.asarray(model.state_dict_["loss"], dtype=float)
        train_gof = metrics.goodness_of_fit_history(model)
        model_file = f"{name}.pt"
        model.save(self.models_dir / model_file)
        row = {
            "dataset": dataset,
            "name": name,
            "params": combo,
            "swept": swept,
            "train_loss": float(history[-1]),
            "train_goodness_of_fit": float(train_gof[-1]),
            "valid_infonce": float(valid_infonce),
            "valid_goodness_of_fit": float(valid_gof),
            "num_train": _num_samples(train[0]),
            "num_valid": _num_samples(valid[0]),
            "valid_fraction": self.valid_fraction,
            "num_batches": self.num_batches,
            "seed": self.seed,
            "fit_seconds": round(fit_seconds, 3),
            "model_file": model_file,
        }
        return json.loads(json.dumps(jsonable(row)))  # exactly what a reload gives

    def _settings(self) -> dict:
        return {"valid_fraction": self.valid_fraction, "num_batches": self.num_batches,
                "seed": self.seed}

    # -- results -------------------------------------------------------------------------
    @classmethod
    def load(cls, models_dir: str | os.PathLike, verbose: bool = True) -> "GridSearch":
        """Restore a grid search from the ``models_dir`` of :meth:`fit_models`.

        The evaluation settings (``valid_fraction``, ``num_batches``, ``seed``) of
        the last search written there are restored too.
        """
        models_dir = Path(models_dir)
        payload = _read_payload(models_dir, required=True)
        settings = payload.get("settings", {})
        search = cls(valid_fraction=settings.get("valid_fraction", 0.2),
                     num_batches=settings.get("num_batches", 50),
                     seed=settings.get("seed", 0), verbose=verbose)
        search.models_dir = models_dir
        search._rows = payload["results"]
        return search

    def load_models(self, models_dir: str | os.PathLike | None = None
                    ) -> tuple[dict[str, Any], list[dict]]:
        """Every fitted model and the parameters it was fitted with, in fit order.

        Parameters
        ----------
        models_dir
            Read this directory's results instead of this search's.

        Returns
        -------
        models : ``{name: CEBRA}``, names as :meth:`get_best_model` gives them
        parameters : one dict of parameters per model
        """
        from cebra_pipe.sklearn.estimator import CEBRA

        rows, directory = self._rows_for(models_dir)
        models = {str(row["name"]): CEBRA.load(directory / row["model_file"]) for row in rows}
        return models, [dict(row["params"]) for row in rows]

    def __iter__(self) -> Iterator[Any]:
        """A grid search unpacks as the reference's ``GridSearch.load(dir)`` result,
        ``models, parameters = GridSearch.load(dir)`` (:meth:`load_models`), while
        ``GridSearch.load(dir)`` stays the restored search."""
        return iter(self.load_models())

    def _rows_for(self, models_dir: str | os.PathLike | None) -> tuple[list[dict], Path]:
        if models_dir is not None:
            models_dir = Path(models_dir)
            return _read_payload(models_dir, required=True)["results"], models_dir
        if self.models_dir is None:
            raise ValueError("No grid search results: call fit_models(...) first, or pass "
                             "models_dir (or use GridSearch.load(models_dir)).")
        return self._rows, self.models_dir

    def get_df_results(self, models_dir: str | os.PathLike | None = None):
        """Results as a pandas DataFrame, one row per fitted model.

        Columns: ``dataset``, ``name``, one column per parameter (swept or fixed;
        empty where a row did not set it), ``train_loss`` (final training loss),
        ``train_goodness_of_fit``, ``valid_infonce``, ``valid_goodness_of_fit``
        (bits, held-out), ``num_train``, ``num_valid``, ``fit_seconds`` and
        ``model_file`` (relative to ``models_dir``).

        Parameters
        ----------
        models_dir
            Read the results table of this directory instead of this search's.
        """
        import pandas as pd

        rows, _ = self._rows_for(models_dir)
        param_names = list(dict.fromkeys(k for row in rows for k in row["params"]))
        overlap = set(param_names) & _RESULT_COLUMNS
        if overlap:  # cannot happen with CEBRA parameter names; guard the layout anyway
            raise ValueError(f"Parameter names {sorted(overlap)} clash with result columns.")
        records = []
        for row in rows:
            record = {"dataset": row["dataset"], "name": row["name"]}
            record.update({k: _hashable(row["params"].get(k)) for k in param_names})
            record.update({k: _hashable(row.get(k)) for k in _RESULT_ORDER})
            records.append(record)
        columns = ["dataset", "name", *param_names, *_RESULT_ORDER]
        frame = pd.DataFrame.from_records(records, columns=columns)
        for column in _SCORE_COLUMNS:
            frame[column] = frame[column].astype(float)
        return frame

    def get_best_model(self, scoring: str = "goodness_of_fit", dataset_name: str | None = None,
                       models_dir: str | os.PathLike | None = None):
        """Load the best model.

        Parameters
        ----------
        scoring
            ``"goodness_of_fit"`` (held-out goodness of fit in bits, higher is
            better; default), ``"infonce"`` (held-out InfoNCE, lower is better) or
            ``"train_loss"`` (final training loss, lower is better; it favours
            overfit models, use it only on purpose).
        dataset_name
            Only consider models of this dataset (default: all).
        models_dir
            Read this directory's results instead of this search's.

        Returns
        -------
        (model, name)
            The loaded :class:`cebra_pipe.CEBRA` and its name
            (``<dataset>__<param-string>``).
        """
        from cebra_pipe.sklearn.estimator import CEBRA

        if scoring not in _SCORINGS:
            hint = (' ("infonce_loss" is ambiguous: "infonce" ranks by held-out InfoNCE, '
                    '"train_loss" by the final training loss)' if scoring == "infonce_loss"
                    else "")
            raise ValueError(f"scoring must be one of {list(_SCORINGS)}, got {scoring!r}{hint}.")
        frame = self.get_df_results(models_dir)
        _, directory = self._rows_for(models_dir)
        if frame.empty:
            raise ValueError(f"No fitted models in the results of {directory}.")
        if dataset_name is not None:
            available = sorted(frame["dataset"].unique())
            if dataset_name not in available:
                raise ValueError(f"dataset_name {dataset_name!r} not found in the grid search "
                                 f"results; available datasets: {available}.")
            frame = frame[frame["dataset"] == dataset_name]
        column, higher_is_better = _SCORINGS[scoring]
        scored = frame[np.isfinite(frame[column].to_numpy(dtype=float))]
        if scored.empty:
            raise ValueError(f"No model has a finite {column} to rank by "
                             f"(all {len(frame)} are NaN or infinite).")
        # Stable sort: ties keep the order in which the models were fitted.
        ranked = scored.sort_values(column, ascending=not higher_is_better, kind="stable")
        best = ranked.iloc[0]
        return CEBRA.load(directory / best["model_file"]), str(best["name"])


_RESULT_ORDER = ["train_loss", "train_goodness_of_fit", "valid_infonce",
                 "valid_goodness_of_fit", "num_train", "num_valid", "fit_seconds", "model_file"]
_RESULT_COLUMNS = {"dataset", "name", *_RESULT_ORDER}
_SCORE_COLUMNS = ["train_loss", "train_goodness_of_fit", "valid_infonce",
                  "valid_goodness_of_fit"]


# --------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------

class _Dataset:
    """One dataset: ``neural`` (array, or list of arrays per session), ``labels`` likewise."""

    def __init__(self, neural: Any, labels: tuple, multi: bool):
        self.neural, self.labels, self.multi = neural, labels, multi


def _num_samples(neural: Any) -> int | list[int]:
    if isinstance(neural, list):
        return [len(x) for x in neural]
    return len(neural)


def _check_datasets(datasets: Any) -> dict[str, _Dataset]:
    from cebra_pipe.sklearn.inputs import is_multisession

    if not isinstance(datasets, Mapping):
        raise TypeError(f"datasets must be a dict name -> X or (X, *labels), got "
                        f"{type(datasets).__name__}.")
    if not datasets:
        raise ValueError("datasets is empty: pass at least one name -> X or (X, *labels).")
    prepared = {}
    for name, value in datasets.items():
        if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name):
            raise ValueError(f"dataset name {name!r} is not usable in file names: use letters, "
                             "digits, '.', '-' and single '_' (no '__', which separates the "
                             "dataset from the parameters), starting with a letter or digit.")
        if isinstance(value, tuple):
            if not value:
                raise ValueError(f"datasets[{name!r}] is an empty tuple; pass X or (X, *labels).")
            neural, labels = value[0], value[1:]
        else:
            neural, labels = value, ()
        multi = is_multisession(neural)
        if multi:
            neural = [to_numpy(x) for x in neural]
            checked_labels = []
            for j, label in enumerate(labels):
                if not isinstance(label, (list, tuple)) or len(label) != len(neural):
                    raise ValueError(f"datasets[{name!r}]: X is a list of {len(neural)} sessions, "
                                     f"so label {j} must be a list with one array per session.")
                checked_labels.append([to_numpy(y) for y in label])
            for i, x in enumerate(neural):
                for j, label in enumerate(checked_labels):
                    if len(label[i]) != len(x):
                        raise ValueError(f"datasets[{name!r}]: label {j} of session {i} has "
                                         f"{len(label[i])} samples but X has {len(x)}.")
            prepared[name] = _Dataset(neural, tuple(checked_labels), True)
            continue
        neural = to_numpy(neural)
        if neural.ndim != 2:
            raise ValueError(f"datasets[{name!r}]: X must be 2-D (time, neurons), got shape "
                             f"{neural.shape}.")
        checked = []
        for j, label in enumerate(labels):
            label = to_numpy(label)
            if label.ndim == 0 or len(label) != len(neural):
                raise ValueError(f"datasets[{name!r}]: label {j} has "
                                 f"{'no' if label.ndim == 0 else len(label)} samples but X has "
                                 f"{len(neural)}; they must have the same length.")
            checked.append(label)
        prepared[name] = _Dataset(neural, tuple(checked), False)
    return prepared


def _split(name: str, data: _Dataset, valid_fraction: float, combo: dict
           ) -> tuple[tuple, tuple]:
    """Contiguous split: ``(X_train, *y_train), (X_valid, *y_valid)``."""
    from cebra_pipe.sklearn.estimator import CEBRA

    estimator = CEBRA(**combo)
    time_offsets = estimator.resolved_time_offset()
    needed = estimator.receptive_field() + time_offsets
    sessions = data.neural if data.multi else [data.neural]
    cuts = []
    for i, neural in enumerate(sessions):
        total = len(neural)
        n_valid = len(block_split(total, valid_fraction)[1])
        n_train = total - n_valid
        if min(n_train, n_valid) < needed:
            where = f"session {i} of dataset {name!r}" if data.multi else f"dataset {name!r}"
            raise ValueError(
                f"{where} is too short to split: {total} samples with valid_fraction="
                f"{valid_fraction} leave {n_train} to train and {n_valid} to validate; each "
                f"part needs at least {needed} (receptive field + time_offsets={time_offsets}"
                f" for {_describe(combo)}). Use more data or another valid_fraction.")
        cuts.append(n_train)
    if not data.multi:
        cut = cuts[0]
        return ((data.neural[:cut], *(y[:cut] for y in data.labels)),
                (data.neural[cut:], *(y[cut:] for y in data.labels)))
    train = ([x[:c] for x, c in zip(data.neural, cuts)],
             *([y[:c] for y, c in zip(label, cuts)] for label in data.labels))
    valid = ([x[c:] for x, c in zip(data.neural, cuts)],
             *([y[c:] for y, c in zip(label, cuts)] for label in data.labels))
    return train, valid


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------

def _expand_params(params: Any) -> tuple[list[dict], list[str]]:
    """Cartesian product of the list-valued params; every combination validated."""
    from cebra_pipe.sklearn.estimator import CEBRA

    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of CEBRA parameters, got {type(params).__name__}.")
    if not params:
        raise ValueError("params is empty: give at least one CEBRA parameter, e.g. "
                         "{'output_dimension': [3, 8], 'max_iterations': 1000}.")
    valid = sorted(CEBRA().get_params())
    unknown = [key for key in params if key not in valid]
    if unknown:
        hints = {k: difflib.get_close_matches(str(k), valid, n=1) for k in unknown}
        hint = "; ".join(f"{k!r} -> did you mean {m[0]!r}?" for k, m in hints.items() if m)
        raise ValueError(f"Unknown CEBRA parameter(s) {unknown}"
                         f"{' (' + hint + ')' if hint else ''}. Valid parameters: {valid}.")
    swept = [key for key, value in params.items() if isinstance(value, list)]
    for key in swept:
        values = params[key]
        if not values:
            raise ValueError(f"params[{key!r}] is an empty list: nothing to sweep.")
        labels = [_format_value(v) for v in values]
        if len(set(labels)) != len(labels):
            raise ValueError(f"params[{key!r}] lists the same value twice: {values}.")
    fixed = {key: value for key, value in params.items() if key not in swept}
    combinations = []
    for values in itertools.product(*(params[key] for key in swept)):
        combo = {key: params[key] if key in fixed else values[swept.index(key)]
                 for key in params}
        try:
            CEBRA(**combo).validate_params()
        except (TypeError, ValueError) as error:
            raise type(error)(f"Invalid parameter combination {_describe(combo)}: "
                              f"{error}") from None
        try:
            jsonable(combo)
        except TypeError as error:
            raise TypeError(f"params must be JSON-like values (numbers, strings, None, "
                            f"lists/tuples of those) to be saved: {error}") from None
        combinations.append(combo)
    return combinations, swept


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(_format_value(v) for v in value)
    if isinstance(value, np.generic):
        return _format_value(value.item())
    return str(value)


def _model_name(dataset: str, combo: dict, swept: list[str]) -> str:
    """``<dataset>__<param-string>``, the param-string listing the swept values."""
    if not swept:
        return f"{dataset}__fixed"
    raw = "_".join(f"{key}-{_format_value(combo[key])}" for key in swept)
    # "__" is reserved for separating the dataset from the parameters.
    safe = re.sub(r"_{2,}", lambda m: "_" + "-" * (len(m.group()) - 1), _UNSAFE.sub("-", raw))
    if safe != raw or len(safe) > _MAX_PARAM_STRING:
        # Keep names unique when characters are replaced or the string is shortened.
        digest = hashlib.sha1(raw.encode()).hexdigest()[:10]
        safe = f"{safe[:_MAX_PARAM_STRING - 11]}-{digest}"
    return f"{dataset}__{safe}"


def _describe(combo: dict) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in combo.items()) + "}"


def _hashable(value: Any) -> Any:
    """JSON lists back to tuples, so parameter columns can be grouped and compared."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


# --------------------------------------------------------------------------------------
# Results file
# --------------------------------------------------------------------------------------

def _read_payload(models_dir: Path, required: bool) -> dict:
    path = models_dir / RESULTS_FILE
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"No grid search results in {models_dir} (expected "
                                    f"{RESULTS_FILE}; run GridSearch().fit_models(..., "
                                    f"models_dir={str(models_dir)!r}) first).")
        return {"results": []}
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable grid search results file: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT \
            or not isinstance(payload.get("results"), list):
        raise ValueError(f"{path} is not a grid search results file (expected format "
                         f"{_FORMAT!r}).")
    return payload


def _read_rows(models_dir: Path) -> list[dict]:
    return _read_payload(models_dir, required=False)["results"]


def _write_rows(models_dir: Path, rows: list[dict], settings: dict) -> None:
    payload = {"format": _FORMAT, "settings": settings, "results": rows}
    text = json.dumps(payload, indent=1, allow_nan=True)
    with atomic_write(models_dir / RESULTS_FILE) as tmp:
        tmp.write_text(text)

