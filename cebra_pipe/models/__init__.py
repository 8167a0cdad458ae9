"""Encoders and contrastive criteria: the torch modules that are trained.

What belongs here: networks that map windows of neural data ``(batch, neurons,
window)`` to embeddings ``(batch, output_dimension)`` (:mod:`.model`, built from the
layers in :mod:`.layers`), and the InfoNCE criteria that score reference, positive
and negative embeddings (:mod:`.criterions`). No data loading, no training loop.

Extending: decorate an ``nn.Module`` subclass with ``@register("my-model")`` (or
``@parametrize("my-model-{n}", n=[...])`` for a family); its ``__init__`` takes
``num_neurons, num_units, num_output`` and its ``get_offset()`` returns the
:class:`~cebra_pipe.data.datatypes.Offset` (receptive field) of one output. It is then
a ``CEBRA(model_architecture="my-model")``. ``get_options(pattern)`` lists names,
``init(name, ...)`` builds one. Criteria are registered the same way in
:mod:`.criterions` (``criterions.get_options()``).
"""

from cebra_pipe.models import criterions
from cebra_pipe.models.criterions import (FixedCosineInfoNCE, FixedEuclideanInfoNCE, InfoMSE,
                                          InfoNCE, LearnableCosineInfoNCE,
                                          LearnableEuclideanInfoNCE)
from cebra_pipe.models.model import (ClassifierModel, ConvolutionalModelMixin,
                                     HasFeatureEncoder, Model, ResampleModelMixin,
                                     get, get_options, init, is_registered, parametrize,
                                     register)
from cebra_pipe.models.multiobjective import MultiobjectiveModel

__all__ = ["ClassifierModel", "ConvolutionalModelMixin", "FixedCosineInfoNCE",
           "FixedEuclideanInfoNCE", "HasFeatureEncoder", "InfoMSE", "ResampleModelMixin",
           "InfoNCE", "LearnableCosineInfoNCE", "LearnableEuclideanInfoNCE", "Model",
           "MultiobjectiveModel",
           "criterions", "get", "get_options", "init", "is_registered", "parametrize", "register"]
