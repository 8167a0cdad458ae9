"""Registered datasets, generated on the fly from a seed (no downloads).

``init(name, **kwargs)`` builds a dataset; ``get_options(pattern)`` lists names;
``@register(name)`` adds your own factory (any callable returning a
:class:`Recording` or :class:`RecordingSet`).

- ``demo-continuous``, ``demo-discrete``, ``demo-mixed``: a few thousand steps of a
  random nonlinear mixing of known latents (:mod:`cebra_pipe.datasets.demo`);
- ``demo-continuous-multisession``, ``demo-discrete-multisession``: several such
  sessions with different neuron counts; ``demo-continuous-unified``: the continuous
  ones, to sample as one "pseudo-animal" (``cebra_pipe.distributions.UnifiedSampler``);
- ``synthetic-linear-track`` (and ``synthetic-linear-track-rat1`` .. ``-rat4``): place
  cells of a rat running laps on a 1.6 m track, CEBRA rat label layout;
  ``synthetic-linear-track-cohort``: all four rats (:mod:`cebra_pipe.datasets.linear_track`);
- ``synthetic-connectivity``: latents driving known groups of neurons, with the true
  ``(neurons, latents)`` connectivity for scoring attribution maps
  (:mod:`cebra_pipe.datasets.connectivity`).

:mod:`cebra_pipe.datasets.poisson` turns rates into Poisson spike counts with a
refractory period.
"""

from __future__ import annotations

import os

from cebra_pipe.datasets.base import REGISTRY, Recording, RecordingSet
from cebra_pipe.datasets import connectivity, demo, linear_track  # noqa: F401  (registers)

#: Environment variable naming the folder that :func:`get_datapath` resolves against.
DATADIR_VARIABLE = "CEBRA_DATADIR"


def get_datapath(path: str | os.PathLike | None = None) -> str:
    """``path`` under the data folder (``$CEBRA_DATADIR``, else ``data``), as in the reference.

    The registered datasets here are generated and read no files; this resolves the
    paths of a user's own data the way scripts written for the reference expect.
    """
    root = os.environ.get(DATADIR_VARIABLE, "data")
    return root if path is None else os.path.join(root, os.fspath(path))


register = REGISTRY.register
parametrize = REGISTRY.parametrize
init = REGISTRY.init
get_options = REGISTRY.get_options
is_registered = REGISTRY.is_registered
get = REGISTRY.get

__all__ = ["Recording", "RecordingSet", "register", "parametrize", "init", "get_options",
           "is_registered", "get", "REGISTRY", "get_datapath"]
