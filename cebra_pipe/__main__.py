"""``python -m cebra_pipe <step> [options]``: run one workflow step (see ``--help``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to ``cebra_pipe.pipeline.<step>``; returns the exit status."""
    from cebra_pipe.pipeline import STEPS

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m cebra_pipe <step> [options]\n\nsteps:\n  "
              + "\n  ".join(STEPS) + "\n\nRun `python -m cebra_pipe <step> --help` for a step's "
              "options.")
        return 0 if argv else 2
    step = argv[0].replace("_", "-")
    if step not in STEPS:
        print(f"cebra_pipe: error: unknown step {argv[0]!r}; choose one of {list(STEPS)}.",
              file=sys.stderr)
        return 2
    module = importlib.import_module(STEPS[step])
    if hasattr(module, "cli_for"):
        return module.cli_for(step, argv[1:])
    return module.cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
