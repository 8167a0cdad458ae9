"""Behave well on shared machines: passive OpenMP waiting and the job's CPU allocation.

torch's OpenMP runtime spin-waits for work between parallel regions by default. On a
machine where another process uses the cores, the spinning threads compete with it
and a fit runs several times slower. ``OMP_WAIT_POLICY=PASSIVE`` makes idle threads
sleep instead; the runtime reads it once, when torch loads it, so
:func:`apply_shared_machine_defaults` runs from ``cebra_pipe/__init__.py`` before
anything in cebra_pipe imports torch. A value the user set is never replaced.

The number of CPUs a job may use is the smallest of SLURM's ``SLURM_CPUS_PER_TASK``,
the process's CPU affinity (cgroups, ``taskset``) and the machine's CPU count.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

#: Environment variable SLURM sets to the CPUs granted to each task.
SLURM_CPUS = "SLURM_CPUS_PER_TASK"


def allocated_cpus(environ: MutableMapping[str, str] | None = None) -> int:
    """CPUs this process may use: SLURM allocation, CPU affinity and CPU count (the least).

    Raises ``ValueError`` when ``SLURM_CPUS_PER_TASK`` is set but not a positive integer.
    """
    environ = os.environ if environ is None else environ
    counts = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):  # not on macOS/Windows
        counts.append(len(os.sched_getaffinity(0)))
    slurm = environ.get(SLURM_CPUS, "").strip()
    if slurm:
        if not slurm.isdigit() or int(slurm) < 1:
            raise ValueError(f"environment variable {SLURM_CPUS}={slurm!r} is not a positive "
                             "integer; unset it or set it to the CPUs of the job.")
        counts.append(int(slurm))
    return max(1, min(counts))


def apply_shared_machine_defaults(environ: MutableMapping[str, str] | None = None
                                  ) -> dict[str, str]:
    """Set passive OpenMP waiting and the allocated thread count, unless the user chose.

    Only acts while torch is not yet imported (the OpenMP runtime reads these variables
    when it loads). ``OMP_NUM_THREADS`` is set only when the allocation is smaller than
    the machine, so that torch, MKL and OpenBLAS do not start a thread per machine core.

    Returns
    -------
    dict
        The variables that were set, ``{name: value}`` (empty when none).
    """
    environ = os.environ if environ is None else environ
    if "torch" in sys.modules:
        return {}
    chosen: dict[str, str] = {}
    if "OMP_WAIT_POLICY" not in environ:
        chosen["OMP_WAIT_POLICY"] = "PASSIVE"
    if "OMP_NUM_THREADS" not in environ:
        try:
            cpus = allocated_cpus(environ)
        except ValueError:
            cpus = None  # reported by the pipeline's set_torch_threads, where it matters
        if cpus is not None and cpus < (os.cpu_count() or 1):
            chosen["OMP_NUM_THREADS"] = str(cpus)
    environ.update(chosen)
    return chosen


def set_torch_threads(threads: int | None = None) -> int:
    """Use ``threads`` torch CPU threads, by default the job's allocation; returns the count.

    Raises ``ValueError`` when ``threads`` is below 1.
    """
    import torch

    if threads is None:
        threads = allocated_cpus()
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}.")
    torch.set_num_threads(threads)
    return threads
