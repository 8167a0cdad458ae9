"""``python -m cebra_pipe <step> [options] [--then <step> [options] ...]``: run workflow steps.

Steps chained with ``--then`` run one after the other in one process, so a workflow job
that produces several small outputs pays Python's and the libraries' start-up once.
Each step still writes its own outputs all-or-nothing; the first failing step stops the
chain and its exit status is returned.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence


THEN = "--then"


def split_chain(argv: Sequence[str]) -> list[list[str]]:
    """``[step, *options]`` of every step in ``argv``, split at :data:`THEN`."""
    chain: list[list[str]] = [[]]
    for arg in argv:
        if arg == THEN:
            chain.append([])
        else:
            chain[-1].append(arg)
    return chain


def run_step(argv: Sequence[str]) -> int:
    """Run ``[step, *options]`` (a known step) in ``cebra_pipe.pipeline``; the exit status."""
    from cebra_pipe.pipeline import STEPS

    step = argv[0].replace("_", "-")
    module = importlib.import_module(STEPS[step])
    if hasattr(module, "cli_for"):
        return module.cli_for(step, list(argv[1:]))
    return module.cli(list(argv[1:]))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the step(s) in ``argv``; returns the exit status of the first failing one."""
    from cebra_pipe.pipeline import STEPS

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m cebra_pipe <step> [options] [--then <step> [options] ...]"
              "\n\nsteps:\n  " + "\n  ".join(STEPS) + "\n\nRun `python -m cebra_pipe <step> "
              "--help` for a step's options.")
        return 0 if argv else 2
    chain = split_chain(argv)
    if any(not part for part in chain):
        print(f"cebra_pipe: error: {THEN} must separate two steps, each with its name.",
              file=sys.stderr)
        return 2
    unknown = [part[0] for part in chain if part[0].replace("_", "-") not in STEPS]
    if unknown:
        print(f"cebra_pipe: error: unknown step {unknown[0]!r}; choose one of {list(STEPS)}.",
              file=sys.stderr)
        return 2
    for part in chain:
        status = run_step(part)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
