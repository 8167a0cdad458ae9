"""``python -m cebra_pipe aggregate``: cohort tables from the per-session results.

``--kind``:

* ``sessions``: one row per session (size, labels, split) from session and split files;
* ``decoding`` / ``controls``: the per-session TSVs stacked;
* ``consistency``: the between-runs and between-sessions TSVs stacked, with the
  scope, model and label set read from their paths
  (``consistency/runs/<animal>/<session>/<model>/<labels>.tsv``,
  ``consistency/datasets/<single|multi>/<group>/<model>/<labels>.tsv``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, load_session,
                                        load_split, run, write_provenance, write_tsv)
from cebra_pipe.pipeline.labels import describe_labels
from cebra_pipe.pipeline.split import read_warnings

STEP = "aggregate"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["sessions", "decoding", "controls", "consistency"],
                        required=True)
    parser.add_argument("--inputs", nargs="*", default=[],
                        help="TSVs to stack (sessions: session files)")
    parser.add_argument("--splits", nargs="*", default=[], help="sessions: split files")
    parser.add_argument("--out", required=True)
    parser.add_argument("--provenance", required=True)
    return parser


def _read(path: str):
    import pandas as pd

    try:
        return pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, pd.errors.ParserError) as err:
        raise PipelineError(f"table '{path}' is missing or unreadable: {err}") from None


def consistency_scope(path: str) -> dict[str, str]:
    """Scope, model and label set of a consistency TSV, from its path."""
    parts = Path(path).with_suffix("").parts
    if "runs" in parts:
        i = parts.index("runs")
        animal, session, model, labels = parts[i + 1:i + 5]
        return {"between": "runs", "kind": "single", "group": "", "animal": animal,
                "session": session, "model": model, "labels": labels}
    if "datasets" in parts:
        i = parts.index("datasets")
        kind, group, model, labels = parts[i + 1:i + 5]
        return {"between": "sessions", "kind": kind, "group": group, "animal": "",
                "session": "", "model": model, "labels": labels}
    raise PipelineError(f"'{path}' is not a consistency table path (no runs/ or datasets/).")


def main(argv: Sequence[str] | None = None) -> None:
    import pandas as pd

    args = _parser().parse_args(argv)
    if args.kind == "sessions":
        if len(args.splits) != len(args.inputs):
            raise PipelineError("give one --splits file per session file.")
        rows = []
        for path, split_path in zip(args.inputs, args.splits):
            session = load_session(path)
            split = load_split(split_path, len(session.neural))
            meta = session.meta
            rows.append({"animal": meta["animal"], "session": meta["session"],
                         "group": meta.get("group", ""), "time_steps": meta["num_timesteps"],
                         "neurons": meta["num_neurons"],
                         "labels": describe_labels(session),
                         "trials": meta.get("has_trial", False),
                         "train_steps": len(split["train"]), "valid_steps": len(split["valid"]),
                         "split_warnings": len(read_warnings(split_path))})
        frame = pd.DataFrame(rows)
    elif args.kind == "consistency":
        frames = []
        for path in args.inputs:
            table = _read(path)
            for key, value in reversed(list(consistency_scope(path).items())):
                if key not in table:
                    table.insert(0, key, value)
            frames.append(table)
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["between", "kind", "group", "animal", "session", "model", "labels",
                     "seed", "source", "target", "score"])
    else:
        frames = [_read(p) for p in args.inputs]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    with all_or_nothing([args.out, args.provenance]):
        write_tsv(args.out, frame)
        write_provenance(args.provenance, STEP, params={"kind": args.kind},
                         inputs=list(args.inputs) + list(args.splits))
    print(f"aggregate {args.kind}: {len(frame)} rows from {len(args.inputs)} files -> {args.out}")


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
