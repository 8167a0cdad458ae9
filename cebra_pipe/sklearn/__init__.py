"""The scikit-learn layer: what users call on arrays.

What belongs here: the :class:`CEBRA` estimator (:mod:`.estimator`: parameters,
fit/transform, choosing loader and solver for the training mode), checking user
input (:mod:`.inputs`), the model file (:mod:`.persistence`), adding sessions to a
trained model (:mod:`.adapt`), training seeds together (:mod:`.ensemble`:
``fit_seeds``), and metrics on fitted models and embeddings
(:mod:`.goodness_of_fit`, :mod:`.consistency`; both under the reference's path
:mod:`.metrics`). It builds on the core (models, data, solver) through their
public functions; the core never imports it.

Extending: a new metric is a function taking a fitted estimator or embeddings in
its own module, re-exported from :mod:`.metrics` when it mirrors a reference name;
other modules use the estimator's public methods (``check_input``, ``start_fit``,
``make_loader``, ``receptive_field``, ...), never its ``_private`` ones.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name in {"metrics", "estimator", "ensemble", "consistency", "goodness_of_fit",
                "persistence"}:
        return importlib.import_module(f"cebra_pipe.sklearn.{name}")
    if name == "CEBRA":
        return importlib.import_module("cebra_pipe.sklearn.estimator").CEBRA
    if name in {"fit_seeds", "fit_ensemble"}:
        return getattr(importlib.import_module("cebra_pipe.sklearn.ensemble"), name)
    raise AttributeError(f"module 'cebra_pipe.sklearn' has no attribute {name!r}")
