"""``python -m cebra_pipe controls``: each label set against its training nulls.

CEBRA-Behavior trained on labels that the neural data do not encode collapses; models
retrained on null labels (``controls.count`` of them per label set, circularly shifted
in time by default, see ``controls.kind``) are the reference. For every model and label
set of one session this step compares the valid-split goodness of fit and decoding
scores of the real-label models with those of the training nulls (mean and standard
deviation over seeds and nulls), says whether the real labels win, and gives the
training-null p-value ``(1 + #{null models at least as good}) / (1 + #null models)``
(each model's score averaged over seeds). With one training null that p is at least
0.5: the evaluation nulls of ``hypotheses-session`` are the cheap, well-powered test.

Output: a TSV with ``model, label_set, target, metric, real_mean, real_std,
shuffled_mean, shuffled_std, difference, real_better, num_nulls, p_value`` and a
provenance JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cebra_pipe.hypothesis.stats import permutation_p_value
from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, run, write_provenance,
                                        write_tsv)
from cebra_pipe.pipeline.decode import METRICS_HIGHER_IS_BETTER

STEP = "controls"
COLUMNS = ["animal", "session", "model", "label_set", "target", "metric", "real_mean",
           "real_std", "shuffled_mean", "shuffled_std", "difference", "real_better",
           "num_nulls", "p_value"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoding", nargs="+", required=True,
                        help="decoding TSVs of one session (real and shuffled label sets)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--provenance", required=True)
    return parser


REQUIRED = {"animal", "session", "model", "labels", "label_set", "control", "target", "metric",
            "value"}


def compare(frame, where: str = "decoding table"):
    """Real vs shuffled summary of a decoding table (see the module docstring)."""
    import pandas as pd

    missing = REQUIRED - set(frame.columns)
    if missing:
        raise PipelineError(f"{where} lack(s) column(s) {sorted(missing)}; is it a table "
                            "written by `python -m cebra_pipe decode`?")
    keys = ["animal", "session", "model", "label_set", "target", "metric"]
    stats = (frame.groupby(keys + ["control"], sort=True)["value"]
             .agg(["mean", "std"]).unstack("control"))
    # one score per training null (its mean over seeds), for the p-value
    nulls = (frame[frame["control"] == "shuffled"].groupby(keys + ["labels"])["value"].mean()
             .groupby(keys).apply(list))
    rows = []
    for key, row in stats.iterrows():
        if ("mean", "real") not in row.index or ("mean", "shuffled") not in row.index:
            continue
        real, shuffled = row[("mean", "real")], row[("mean", "shuffled")]
        if pd.isna(real) or pd.isna(shuffled):
            continue
        higher = METRICS_HIGHER_IS_BETTER.get(key[-1], True)
        null = nulls.get(key, [])
        rows.append(dict(zip(keys, key)) | {
            "num_nulls": len(null),
            "p_value": permutation_p_value(real, null, higher) if null else float("nan"),
            "real_mean": real, "real_std": row[("std", "real")],
            "shuffled_mean": shuffled, "shuffled_std": row[("std", "shuffled")],
            "difference": real - shuffled,
            "real_better": bool(real > shuffled if higher else real < shuffled)})
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: Sequence[str] | None = None) -> None:
    import pandas as pd

    args = _parser().parse_args(argv)
    frames = []
    for path in args.decoding:
        try:
            frames.append(pd.read_csv(path, sep="\t"))
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise PipelineError(f"decoding table '{path}' is missing or unreadable: "
                                f"{err}") from None
    where = "decoding table(s) " + ", ".join(f"'{p}'" for p in args.decoding)
    table = compare(pd.concat(frames, ignore_index=True), where)
    with all_or_nothing([args.out, args.provenance]):
        write_tsv(args.out, table)
        write_provenance(args.provenance, STEP, params={}, inputs=args.decoding)
    wins = table[table["metric"] == "gof_bits"]
    print(f"controls: {int(wins['real_better'].sum())}/{len(wins)} label sets beat their "
          "shuffled control on valid goodness of fit")


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
