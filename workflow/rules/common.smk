# Configuration, sessions sheet and target lists. Everything here runs when the
# workflow is parsed, so a bad config or sheet stops before any job starts.

import json
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cebra_pipe.pipeline import config as cp_config
from cebra_pipe.pipeline.common import sha256_json


def _stop(message):
    """Abort parsing with one clear message (snakemake exits non-zero)."""
    raise WorkflowError(message)


def _validate(data, schema, where):
    try:
        validate(data, schema)
    except WorkflowError as err:
        found = cp_config.find_schema_error(err)
        if found is None:
            raise
        _stop(cp_config.describe_schema_error(found, where))


# ------------------------------------------------------------------- config
if not config:
    _stop("No configuration: run from the repository root (config/config.yaml) or pass "
          "--configfile.")
_validate(config, "../schemas/config.schema.yaml", "Invalid config")
try:
    cp_config.check_config(config)
    if workflow.is_main_process:
        cp_config.check_model_architectures(config)
except cp_config.ConfigError as err:
    _stop(str(err))

# Recorded in every provenance file (not a job parameter: editing one model must not
# rerun the others).
os.environ["CEBRA_PIPE_CONFIG_SHA256"] = sha256_json(config)

# ------------------------------------------------------------- sessions sheet
try:
    _SHEET = cp_config.read_sheet(config["sessions"])
except cp_config.ConfigError as err:
    _stop(str(err))


def _sheet_error(err):
    found = cp_config.find_schema_error(err)
    if found is None:
        return str(err)
    row = next((a for a in err.args if isinstance(a, str) and "row" in a), "")
    number = "".join(ch for ch in row if ch.isdigit())
    where = f"Invalid sessions sheet '{config['sessions']}'"
    if number:
        where += f", row {int(number) + 1}"
    return cp_config.describe_schema_error(found, where)


try:
    validate(_SHEET, "../schemas/sessions.schema.yaml")
except WorkflowError as err:
    _stop(_sheet_error(err))
try:
    ROWS = cp_config.check_sheet(_SHEET.to_dict("records"), config,
                                 f"sessions sheet '{config['sessions']}'")
except cp_config.ConfigError as err:
    _stop(str(err))

ROW = {(r["animal"], r["session"]): r for r in ROWS}
ANIMALS = list(dict.fromkeys(r["animal"] for r in ROWS))
GROUPS = {}
for _row in ROWS:
    GROUPS.setdefault(_row.get("group", "cohort"), []).append((_row["animal"], _row["session"]))
SEEDS = [int(s) for s in config["seeds"]]
SINGLE = cp_config.single_variants(config)
MULTI = cp_config.multi_variants(config)
ALIGN_LABEL = cp_config.align_label(config)
RESULTS = "results"


def sessions_of(animal):
    return [s for (a, s) in ROW if a == animal]


# ------------------------------------------------------------------- paths
def session_file(animal, session):
    return f"{RESULTS}/sessions/{animal}/{session}.npz"


def split_file(animal, session):
    return f"{RESULTS}/splits/{animal}/{session}.npz"


def single_dir(animal, session, model, labels):
    return f"{RESULTS}/single/{animal}/{session}/{model}/{labels}"


def single_outputs(animal, session, model, labels, name):
    return [f"{single_dir(animal, session, model, labels)}/seed{s}/{name}" for s in SEEDS]


def multi_dir(group, model, labels):
    return f"{RESULTS}/multi/{group}/{model}/{labels}"


def decode_file(animal, session, model, labels):
    return f"{RESULTS}/decoding/single/{animal}/{session}/{model}/{labels}.tsv"


def consistency_runs_file(animal, session, model, labels, ext="tsv"):
    return f"{RESULTS}/consistency/runs/{animal}/{session}/{model}/{labels}.{ext}"


def consistency_datasets_file(kind, group, model, labels, ext="tsv"):
    return f"{RESULTS}/consistency/datasets/{kind}/{group}/{model}/{labels}.{ext}"


def variant(model, labels):
    return cp_config.Variant(model, labels)


def json_arg(value):
    """Parameters travel to entrypoints as JSON, quoted with {params.x:q}."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------ targets
def runs_consistency_targets(animal, session, ext="tsv"):
    if len(SEEDS) < 2:
        return []
    return [consistency_runs_file(animal, session, v.model, v.labels, ext)
            for v in SINGLE if not v.shuffled]


def datasets_consistency_targets(ext="tsv"):
    if ALIGN_LABEL is None:
        return []
    out = []
    for group, members in GROUPS.items():
        if len(members) < 2:
            continue
        out += [consistency_datasets_file("single", group, v.model, v.labels, ext)
                for v in SINGLE if not v.shuffled]
        out += [consistency_datasets_file("multi", group, v.model, v.labels, ext)
                for v in MULTI]
    return out


def decode_targets(animal, session):
    return [decode_file(animal, session, v.model, v.labels) for v in SINGLE]


def multi_decode_targets():
    return [f"{RESULTS}/decoding/multi/{group}/{v.model}/{v.labels}.tsv"
            for group in GROUPS for v in MULTI]


def animal_report_inputs(animal):
    """Everything the per-animal notebook reads."""
    files = []
    for session in sessions_of(animal):
        files += [session_file(animal, session), split_file(animal, session),
                  f"{RESULTS}/controls/{animal}/{session}.tsv",
                  f"{RESULTS}/figures/{animal}/{session}/loss.png",
                  f"{RESULTS}/figures/{animal}/{session}/embeddings.png"]
        files += decode_targets(animal, session)
        files += runs_consistency_targets(animal, session)
        for v in SINGLE:
            files += single_outputs(animal, session, v.model, v.labels, "loss.tsv")
            files += single_outputs(animal, session, v.model, v.labels, "embedding_valid.npy")
    return files


def cohort_tables():
    return [f"{RESULTS}/tables/{name}.tsv"
            for name in ("sessions", "decoding", "controls", "consistency")]


def all_targets():
    targets = [f"{RESULTS}/report/overview.html"]
    targets += [f"{RESULTS}/report/{animal}.html" for animal in ANIMALS]
    targets += cohort_tables()
    return targets
