"""Plots under the reference's module name (``cebra.integrations.matplotlib``)."""

from cebra_pipe.plot import (compare_models, plot, plot_consistency, plot_embedding,
                             plot_loss, plot_overview, plot_temperature)

__all__ = ["compare_models", "plot", "plot_consistency", "plot_embedding", "plot_loss",
           "plot_overview", "plot_temperature"]
