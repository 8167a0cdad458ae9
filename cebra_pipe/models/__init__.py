"""Encoders (``init``, ``register``, ``get_options``, ``parametrize``) and criteria."""

from cebra_pipe.models import criterions
from cebra_pipe.models.criterions import (FixedCosineInfoNCE, FixedEuclideanInfoNCE, InfoMSE,
                                          InfoNCE, LearnableCosineInfoNCE,
                                          LearnableEuclideanInfoNCE)
from cebra_pipe.models.model import (ClassifierModel, ConvolutionalModelMixin,
                                     HasFeatureEncoder, Model, ResampleModelMixin,
                                     get, get_options, init, is_registered, parametrize,
                                     register)

__all__ = ["ClassifierModel", "ConvolutionalModelMixin", "FixedCosineInfoNCE",
           "FixedEuclideanInfoNCE", "HasFeatureEncoder", "InfoMSE", "ResampleModelMixin",
           "InfoNCE", "LearnableCosineInfoNCE", "LearnableEuclideanInfoNCE", "Model",
           "criterions", "get", "get_options", "init", "is_registered", "parametrize", "register"]
