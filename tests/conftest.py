"""Shared test set-up."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread():
    """One intra-op thread: tiny test models run faster without thread hand-offs, and
    the suite does not oversubscribe the 2 CI cores when pipeline subprocesses run."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
