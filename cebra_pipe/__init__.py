"""cebra_pipe: contrastive embeddings of neural data with auxiliary variables (CEBRA).

``import cebra_pipe as cebra`` gives the API of the CEBRA usage guide: the
scikit-learn estimator :class:`CEBRA`, :func:`load_data`, decoders, plots, and the
torch layer (``models``, ``data``, ``solver``). Attributes are imported on first use,
so ``import cebra_pipe`` stays cheap for the workflow entrypoints.
"""

from __future__ import annotations

import importlib
from typing import Any

from cebra_pipe.runtime import apply_shared_machine_defaults

# Before anything here imports torch: its OpenMP runtime reads these once, on load.
apply_shared_machine_defaults()

__version__ = "0.1.0"

_ATTRIBUTES = {
    "CEBRA": "cebra_pipe.sklearn.estimator",
    "fit_seeds": "cebra_pipe.sklearn.ensemble",
    "load_data": "cebra_pipe.data.load",
    "KNNDecoder": "cebra_pipe.decoders",
    "L1LinearRegressor": "cebra_pipe.decoders",
    "plot_embedding": "cebra_pipe.plot",
    "plot_embedding_interactive": "cebra_pipe.plot",
    "plot_loss": "cebra_pipe.plot",
    "plot_temperature": "cebra_pipe.plot",
    "plot_consistency": "cebra_pipe.plot",
    "compare_models": "cebra_pipe.plot",
    "plot_overview": "cebra_pipe.plot",
    "align_embeddings": "cebra_pipe.integrations.sklearn.helpers",
    "ensemble_embeddings": "cebra_pipe.data.helper",
}

_SUBMODULES = {"attribution", "compat", "data", "datasets", "decoders", "grid_search", "integrations",
               "models", "pipeline", "plot", "registry", "runtime", "sklearn", "solver"}

__all__ = sorted(set(_ATTRIBUTES) | _SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"cebra_pipe.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'cebra_pipe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
