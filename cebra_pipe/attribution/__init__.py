"""Attribution maps: which input neurons drive each embedding dimension.

``init(name, model=..., input_data=..., output_dimension=...)`` builds a method and
``compute_attribution_map()`` returns CEBRA's result dictionary (see
:mod:`cebra_pipe.attribution.base` for keys and shapes)::

    method = cebra_pipe.attribution.init("jacobian-based", model=fitted_cebra,
                                         input_data=neural)
    result = method.compute_attribution_map()
    neurons_by_dim = np.abs(result["jf-inv-svd"]).mean(0).T            # (neurons, dims)

Against a known connectivity ``truth (neurons, latents)``, ``latent_map`` expresses the
map in latent coordinates and ``attribution_roc_auc`` scores it (chance 0.5)::

    per_latent = np.abs(latent_map(result["jf-inv-svd"], embedding, latents)).mean(0)
    auc = attribution_roc_auc(per_latent, truth)

Methods (``get_options()``): ``jacobian-based`` (the encoder's Jacobian and its
pseudo-inverse, xCEBRA: Schneider, Gonzalez Laiz, Filippova, Frey & Mathis, AISTATS
2025), ``neuron-gradient``, ``feature-ablation``, ``integrated-gradients``, each also
as ``<name>-batched``. ``@register(name)`` adds your own :class:`AttributionMap`.
"""

from __future__ import annotations

from cebra_pipe.attribution import methods  # noqa: F401  (registers the methods)
from cebra_pipe.attribution.base import (REGISTRY, AttributionMap, attribution_roc_auc,
                                         encoder_of, latent_map, pseudo_inverse)

register = REGISTRY.register
init = REGISTRY.init
get_options = REGISTRY.get_options
is_registered = REGISTRY.is_registered

__all__ = ["AttributionMap", "attribution_roc_auc", "encoder_of", "get_options", "init",
           "is_registered", "latent_map", "pseudo_inverse", "register"]
