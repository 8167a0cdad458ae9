"""Decoders of embeddings (``cebra.integrations.sklearn.decoder``)."""

from cebra_pipe.decoders import Decoder, KNNDecoder, L1LinearRegressor

__all__ = ["Decoder", "KNNDecoder", "L1LinearRegressor"]
