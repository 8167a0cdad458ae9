"""The model file of :meth:`CEBRA.save <cebra_pipe.CEBRA.save>` and :meth:`CEBRA.load`.

One ``.pt`` file of plain tensors and JSON strings, read back with
``torch.load(weights_only=True)``: nothing in it is unpickled.

========  ==================================================================
field     content
========  ==================================================================
meta      JSON: ``format`` (:data:`FORMAT`), estimator ``params``, library
          ``versions``
fitted    JSON: the fitted attributes (:data:`FITTED_FIELDS`, and optional
          ``num_negatives_``); absent for an unfitted estimator
state     the solver's state: weights, optimiser, loss history and log
(more)    optional extra fields a fitted model carries (e.g. ``cohort``)
========  ==================================================================

Files written by the reference ``cebra`` 0.6.1 are read through
:mod:`cebra_pipe.compat.cebra_files` into the same fields. This module knows the
file, not the estimator: :meth:`CEBRA.save` / :meth:`CEBRA.load` turn it into one.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch

import cebra_pipe
from cebra_pipe.compat import cebra_files
from cebra_pipe.io import jsonable, save_torch

__all__ = ["FITTED_FIELDS", "FORMAT", "ModelFile", "read_model", "write_model"]

FORMAT = "cebra_pipe.CEBRA/1"
#: Fitted attributes every fitted model file holds.
FITTED_FIELDS = ("n_features_in_", "num_sessions_", "label_kind_", "label_dims_", "offset_",
                 "fit_calls")


@dataclass
class ModelFile:
    """What a model file holds, checked: ``fitted`` and ``state`` are ``None`` for an
    unfitted estimator; ``extra`` holds any further fields by name."""

    params: dict[str, Any]
    fitted: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def write_model(path: str | os.PathLike, model_file: ModelFile) -> None:
    """Write ``model_file`` to ``path`` (atomically; the same content gives the same
    bytes). A TypeError names a parameter value that cannot be stored as JSON."""
    meta = {"format": FORMAT, "params": jsonable(model_file.params),
            "versions": {"cebra_pipe": cebra_pipe.__version__, "torch": torch.__version__,
                         "numpy": np.__version__, "sklearn": sklearn.__version__,
                         "python": platform.python_version()}}
    payload: dict = {"meta": json.dumps(meta)}
    if model_file.fitted is not None:
        payload["fitted"] = json.dumps(model_file.fitted)
        payload["state"] = _to_cpu(model_file.state)
        payload.update(model_file.extra)
    save_torch(payload, path)


def read_model(path: str | os.PathLike, known_params: set[str]) -> ModelFile:
    """Read and check a model file written by :func:`write_model` or by ``cebra`` 0.6.1.

    Parameters
    ----------
    path
        The file.
    known_params
        The estimator's parameter names; the file may hold no others.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Empty, corrupt or pickled files, another format, unknown parameters, missing
        fitted fields or non-finite weights; the message names the file and field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    if path.stat().st_size == 0:
        raise ValueError(f"Refusing to load {path}: the file is empty.")
    if cebra_files.is_cebra_file(path):  # saved by the reference cebra 0.6.1
        payload = cebra_files.read_cebra_file(path, FORMAT, known_params)
    else:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any failure means "not a model file"
            raise ValueError(f"Refusing to load {path}: it is not a cebra_pipe model file "
                             f"of plain tensors (it may be corrupt, truncated, or carry "
                             f"pickled objects that would run code). Detail: "
                             f"{(str(error).splitlines() or [type(error).__name__])[0][:300]}"
                             ) from None
    if not isinstance(payload, dict) or "meta" not in payload:
        raise ValueError(f"{path} is not a cebra_pipe model file (no metadata).")
    meta = _json_field(payload, "meta", path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')!r}, expected {FORMAT!r}.")
    model_file = ModelFile(params=_saved_params(meta, known_params, path))
    if "fitted" in payload:
        fitted = _json_field(payload, "fitted", path)
        missing = sorted(set(FITTED_FIELDS) - set(fitted))
        if missing:
            raise ValueError(f"Refusing to load {path}: field 'fitted' lacks {missing}.")
        state = payload.get("state")
        _check_finite_state(state, path)
        model_file.fitted, model_file.state = fitted, state
        model_file.extra = {k: v for k, v in payload.items()
                            if k not in ("meta", "fitted", "state")}
    return model_file


def _json_field(payload: dict, name: str, path: Path) -> dict:
    """``payload[name]`` parsed as a JSON object, or a ValueError naming file and field."""
    text = payload.get(name)
    try:
        value = json.loads(text) if isinstance(text, (str, bytes)) else None
    except json.JSONDecodeError as err:
        raise ValueError(f"Refusing to load {path}: field '{name}' is not valid JSON "
                         f"({err}).") from None
    if not isinstance(value, dict):
        raise ValueError(f"Refusing to load {path}: field '{name}' must be a JSON object, got "
                         f"{type(text).__name__}.")
    return value


def _saved_params(meta: dict, known: set, path: Path) -> dict:
    """The estimator parameters stored in a model file's ``meta``, checked by name."""
    params = meta.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"Refusing to load {path}: field 'meta.params' is missing or not an "
                         "object.")
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"Refusing to load {path}: field 'meta.params' has unknown "
                         f"parameter(s) {unknown}.")
    params = dict(params)
    if "optimizer_kwargs" in params:
        params["optimizer_kwargs"] = _tuple_pairs(params["optimizer_kwargs"])
    return params


def _check_finite_state(state: Any, path: Path, prefix: str = "state") -> None:
    """Every floating tensor in ``state`` (nested dicts/lists) must be finite; a model
    file with NaN or infinite weights is refused, naming the tensor."""
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and not bool(torch.isfinite(state).all()):
            raise ValueError(f"Refusing to load {path}: field '{prefix}' holds NaN or "
                             "infinite values (was it saved from a diverged fit?).")
    elif isinstance(state, dict):
        for key, value in state.items():
            if prefix == "state" and key in ("loss", "log", "valid"):
                continue  # training records, not weights
            _check_finite_state(value, path, f"{prefix}.{key}")
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            _check_finite_state(value, path, f"{prefix}.{i}")


def _tuple_pairs(value: Any) -> Any:
    """JSON lists back to the tuples (of pairs) ``optimizer_kwargs`` holds."""
    if isinstance(value, dict):
        return tuple((k, _tuple_pairs(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_tuple_pairs(v) for v in value)
    return value


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value
