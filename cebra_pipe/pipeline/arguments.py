"""Checks of the arguments the workflow's rules pass to the steps.

``--seeds``, ``--model`` and ``--labels`` reach several steps (training, decoding,
consistency, figures, hypotheses, attribution); each is parsed and checked here
once, so every step accepts and refuses the same values with the same message.
"""

from __future__ import annotations

import math
from typing import Any

from cebra_pipe.pipeline.common import PipelineError

__all__ = ["check_label_spec", "check_model_params", "parse_seeds"]


_ESTIMATOR_KEYS = ("model_architecture", "conditional", "time_offsets", "batch_size",
                   "max_iterations", "output_dimension", "num_hidden_units", "learning_rate",
                   "temperature", "delta", "hybrid", "jacobian_regularization")


def check_model_params(params: Any) -> dict[str, Any]:
    """The estimator keyword arguments from ``--model``; errors name the field."""
    if not isinstance(params, dict):
        raise PipelineError(f"--model must be a JSON object, got {type(params).__name__}.")
    unknown = sorted(set(params) - set(_ESTIMATOR_KEYS) - {"checkpoint_every"})
    if unknown:
        raise PipelineError(f"--model: unknown field(s) {unknown}; allowed: "
                            f"{sorted(_ESTIMATOR_KEYS + ('checkpoint_every',))}.")
    for key in ("time_offsets", "batch_size", "max_iterations", "output_dimension",
                "num_hidden_units", "checkpoint_every"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise PipelineError(f"--model field '{key}' must be a positive integer, got "
                                f"{value!r}.")
    for key in ("learning_rate", "temperature", "delta"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or not value > 0):
            raise PipelineError(f"--model field '{key}' must be a finite positive number, got "
                                f"{value!r}.")
    name = params.get("model_architecture")
    if name is not None:
        from cebra_pipe import CEBRA

        available = CEBRA.supported_model_architectures()
        if name not in available:
            raise PipelineError(f"--model field 'model_architecture': unknown model {name!r}; "
                                f"available: {sorted(available)}.")
    return {k: params[k] for k in _ESTIMATOR_KEYS if params.get(k) is not None}


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; empty, negative, duplicate or non-integer is an error."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise PipelineError("--seeds is empty: give at least one seed, e.g. --seeds 0.")
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise PipelineError(f"--seeds must be comma-separated integers, got {text!r}.") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise PipelineError(f"--seeds must be distinct non-negative integers, got {seeds}.")
    return seeds


def check_label_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("names", []), list):
        raise PipelineError('--labels must be a JSON object like {"names": ["position"]}.')
    checked = {"names": list(spec.get("names", [])), "shuffle": bool(spec.get("shuffle", False)),
               "shuffle_seed": int(spec.get("shuffle_seed", 0))}
    if checked["shuffle"]:
        # How labels are nulled has its defaults in the config schema (controls.kind,
        # hypotheses.min_shift, hypotheses.within_trials), not here.
        missing = [k for k in ("null_kind", "min_shift", "within_trials") if k not in spec]
        if missing:
            raise PipelineError(f"--labels: a training null (shuffle: true) needs field(s) "
                                f"{missing}; the workflow fills them from the config.")
        checked |= {"null_kind": str(spec["null_kind"]),
                    "null_index": int(spec.get("null_index", 0)),
                    "min_shift": spec["min_shift"], "bin_size": spec.get("bin_size"),
                    "within_trials": bool(spec["within_trials"])}
    return checked
