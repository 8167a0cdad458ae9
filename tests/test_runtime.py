"""Shared-machine defaults: passive OpenMP waiting and thread counts from the allocation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cebra_pipe.runtime import allocated_cpus, apply_shared_machine_defaults

# What the OpenMP runtime sees is the C environment when torch loads it, not os.environ.
_PROBE = """
import ctypes, ctypes.util, sys
import cebra_pipe
import torch
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.getenv.restype = ctypes.c_char_p
value = libc.getenv(b"OMP_WAIT_POLICY")
print(value.decode() if value else "<unset>")
print(torch.get_num_threads())
"""


def _probe(env_updates: dict[str, str | None]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in env_updates}
    env.update({k: v for k, v in env_updates.items() if v is not None})
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    return out.stdout.split()


def test_import_sets_passive_wait_before_torch_loads():
    policy, _ = _probe({"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": "1"})
    assert policy == "PASSIVE"


def test_user_choice_is_kept():
    policy, _ = _probe({"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "1"})
    assert policy == "ACTIVE"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs CPU affinity")
def test_slurm_allocation_sets_torch_threads():
    _, threads = _probe({"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None,
                         "SLURM_CPUS_PER_TASK": "1"})
    assert threads == "1"


def test_no_change_once_torch_is_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    environ: dict[str, str] = {}
    assert apply_shared_machine_defaults(environ) == {}
    assert environ == {}


def test_defaults_into_a_given_environment(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    environ = {"SLURM_CPUS_PER_TASK": "1"}
    chosen = apply_shared_machine_defaults(environ)
    assert chosen["OMP_WAIT_POLICY"] == "PASSIVE"
    if (os.cpu_count() or 1) > 1:
        assert chosen["OMP_NUM_THREADS"] == "1"
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_allocated_cpus_is_the_least_of_slurm_and_affinity():
    assert allocated_cpus({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert allocated_cpus({"SLURM_CPUS_PER_TASK": "100000"}) == allocated_cpus({})
    assert 1 <= allocated_cpus({}) <= (os.cpu_count() or 1)


@pytest.mark.parametrize("value", ["zero", "0", "-2"])
def test_bad_slurm_value_names_the_variable(value):
    with pytest.raises(ValueError, match="SLURM_CPUS_PER_TASK"):
        allocated_cpus({"SLURM_CPUS_PER_TASK": value})
