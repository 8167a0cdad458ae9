# Configuration, sessions sheet and target lists. Everything here runs when the
# workflow is parsed, so a bad config or sheet stops before any job starts.

import json
import os
import shlex

import yaml
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cebra_pipe.pipeline import config as cp_config
from cebra_pipe.pipeline import layout as cp_layout
from cebra_pipe.pipeline import report as cp_report
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

# Recorded in every provenance file through the environment (not a job parameter:
# editing one model must not rerun the others).
CONFIG_SHA256 = sha256_json(config)
shell.prefix(f"set -euo pipefail; export CEBRA_PIPE_CONFIG_SHA256={CONFIG_SHA256}; ")

# ------------------------------------------------------------- sessions sheet
try:
    _SHEET = cp_config.read_sheet(config["sessions"])
except cp_config.ConfigError as err:
    _stop(str(err))


def _sheet_error(err):
    where = f"Invalid sessions sheet '{config['sessions']}'"
    return cp_config.describe_sheet_error(err, where) or str(err)


try:
    _SHEET_SCHEMA = yaml.safe_load(
        Path(workflow.basedir, "workflow", "schemas", "sessions.schema.yaml").read_text()
    )
    cp_config.check_columns(_SHEET.columns, _SHEET_SCHEMA["properties"],
                            _SHEET_SCHEMA["required"], f"sessions sheet '{config['sessions']}'")
except cp_config.ConfigError as err:
    _stop(str(err))
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


def label_units(animal=None, session=None):
    """Unit of each label's values in these sessions (all by default): the normalised
    unit, else the sheet's label_units, else the config's unit."""
    return cp_config.label_units(config, [r for r in ROWS if animal in (None, r["animal"])
                                          and session in (None, r["session"])])
# Every output path comes from LAYOUT (cebra_pipe/pipeline/layout.py); the analysis
# folder is named by the config (field `analysis`, else the last config file's name).
try:
    LAYOUT = cp_layout.Layout(cp_layout.analysis_dir(
        config, workflow.configfiles[-1] if workflow.configfiles else None))
except ValueError as err:
    _stop(f"Invalid config: {err}")
# Conda environment of every rule (used with --software-deployment-method conda).
CONDA_ENV = os.path.relpath(os.path.join(workflow.basedir, "environment.yml"), os.path.join(workflow.basedir, "workflow", "rules"))


def sessions_of(animal):
    return [s for (a, s) in ROW if a == animal]


# ------------------------------------------------------------------- paths
def seed_outputs(folder, name):
    """``name`` in every seed's folder of a trained configuration's ``folder``."""
    return [LAYOUT.seed_file(folder, s, name) for s in SEEDS]


def single_outputs(animal, session, model, labels, name):
    return seed_outputs(LAYOUT.single_dir(animal, session, model, labels), name)


def multi_outputs(group, model, labels, name):
    return seed_outputs(LAYOUT.multi_dir(group, model, labels), name)


def variant(model, labels):
    return cp_config.Variant(model, labels)


def json_arg(value):
    """Parameters travel to entrypoints as JSON, quoted with {params.x:q}."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def json_param(value):
    """json_arg(value) as a params function: Snakemake fills wildcards into string params,
    so user text such as a report title 'Lab {x}' would stop the workflow; the result of
    a function is used as it is."""
    text = json_arg(value)
    return lambda wildcards: text


def text_param(value):
    """A free-text config value as a params function (see json_param)."""
    return lambda wildcards: value


# ------------------------------------------------------------------ targets
def runs_consistency_targets(animal, session, ext="tsv"):
    if len(SEEDS) < 2:
        return []
    return [LAYOUT.consistency_runs_file(animal, session, v.model, v.labels, ext)
            for v in SINGLE if not v.shuffled]


def runs_consistency_outputs():
    """Outputs of consistency-runs added to rule decode (none with fewer than 2 seeds)."""
    if len(SEEDS) < 2:
        return {}
    return {
        "runs_table": LAYOUT.consistency_runs_file("{animal}", "{session}", "{model}", "{labels}"),
        "runs_figure": report(
            LAYOUT.consistency_runs_file("{animal}", "{session}", "{model}", "{labels}", "png"),
            caption="../report/consistency_runs.rst",
            category="Consistency",
            subcategory="Between seeds",
            labels={"animal": "{animal}", "session": "{session}", "model": "{model}",
                    "labels": "{labels}"},
        ),
        "runs_provenance": LAYOUT.consistency_runs_file(
            "{animal}", "{session}", "{model}", "{labels}", "provenance.json"
        ),
    }


def runs_consistency_step(wildcards, output):
    """The chained consistency-runs step of a decode job ("" without its outputs)."""
    if "runs_table" not in output.keys():
        return ""
    split = config["consistency"]["split"]
    args = ["--then", "consistency-runs", "--embeddings",
            *single_outputs(wildcards.animal, wildcards.session, wildcards.model,
                            wildcards.labels, f"embedding_{split}.npy"),
            "--seeds", ",".join(map(str, SEEDS)),
            "--title", f"{wildcards.animal}/{wildcards.session} {wildcards.model}/"
                       f"{wildcards.labels}: between seeds",
            "--out", output.runs_table, "--figure", output.runs_figure,
            "--provenance", output.runs_provenance]
    return " ".join(shlex.quote(a) for a in args)


def datasets_consistency_targets(ext="tsv"):
    if ALIGN_LABEL is None:
        return []
    out = []
    for group, members in GROUPS.items():
        if len(members) < 2:
            continue
        out += [LAYOUT.consistency_datasets_file("single", group, v.model, v.labels, ext)
                for v in SINGLE if not v.shuffled]
        out += [LAYOUT.consistency_datasets_file("multi", group, v.model, v.labels, ext)
                for v in MULTI]
    return out


def decode_targets(animal, session):
    return [LAYOUT.decode_file(animal, session, v.model, v.labels) for v in SINGLE]


def multi_decode_targets():
    return [LAYOUT.multi_decode_file(group, v.model, v.labels)
            for group in GROUPS for v in MULTI]


def animal_report_inputs(animal):
    """Everything the per-animal notebook reads."""
    files = []
    for session in sessions_of(animal):
        files += [LAYOUT.session_file(animal, session), LAYOUT.split_file(animal, session),
                  LAYOUT.controls_file(animal, session),
                  LAYOUT.figure_file(animal, session, "loss.png"),
                  LAYOUT.figure_file(animal, session, "embeddings.png")]
        files += decode_targets(animal, session)
        files += runs_consistency_targets(animal, session, "png")
        files += hypothesis_session_files(animal, session)
        files += attribution_session_files(animal, session)
        files += joined_outputs(animal, session)  # cohort.smk
    # The loss and embedding files the notebook also reads are inputs of the figures
    # rule; listing them again here would only slow down building the DAG.
    return files


def hypothesis_variants():
    """The single-session label-set models tested by evaluation nulls (controls and
    CEBRA-Time models have no label hypothesis)."""
    return [{"model": v.model, "label_set": v.labels,
             "names": list(config["label_sets"][v.labels])}
            for v in SINGLE if not v.shuffled and v.label_set is not None]


def hypothesis_model_files(animal, session):
    return [p for v in hypothesis_variants() for name in
            ("model.pt", "embedding_train.npy", "embedding_valid.npy")
            for p in single_outputs(animal, session, v["model"], v["label_set"], name)]


def hypothesis_session_files(animal, session):
    if not hypothesis_variants():
        return []
    return [LAYOUT.hypotheses_file(animal, session, ext) for ext in ("tsv", "png")]


def hypothesis_tables():
    if not hypothesis_variants():
        return []
    return [LAYOUT.table_file(f"hypotheses{name}") for name in ("", "_cohort", "_groups")]


def cohort_tables():
    return [LAYOUT.table_file(name)
            for name in ("sessions", "decoding", "controls", "consistency")] + hypothesis_tables()


def animal_reports():
    return [LAYOUT.report_file(animal) for animal in ANIMALS]


# The overview summarises the animal pages: removed by each new animal page (rule
# report_animal) and, at the start of a run, when they are not the ones it summarised,
# so a failed run never leaves it beside pages it does not describe.
OVERVIEW_FILES = [LAYOUT.report_file(cp_layout.OVERVIEW), LAYOUT.report_notebook(cp_layout.OVERVIEW),
                  LAYOUT.report_notebook(cp_layout.OVERVIEW, "provenance.json")]


onstart:
    if cp_report.is_stale(OVERVIEW_FILES[-1], animal_reports()):
        for path in cp_report.invalidate(OVERVIEW_FILES):
            print(f"removed '{path}': out of date with the per-animal reports")


def all_targets():
    targets = [LAYOUT.report_file(cp_layout.OVERVIEW)] + animal_reports()
    targets += cohort_tables()
    targets += [p for a, s in ROW for p in attribution_session_files(a, s)]
    return targets


def attribution_variants():
    """The single-session models explained by attribution maps (not the shuffled
    controls): every label set's behaviour models and CEBRA-Time."""
    if not config["attribution"]["enabled"]:
        return []
    return [{"model": v.model, "label_set": v.labels} for v in SINGLE if not v.shuffled]


def attribution_multi_variants(animal, session):
    """The multi-session models whose groups contain the session: its attribution job
    explains that session's encoder of each."""
    if not (config["attribution"]["enabled"] and config["attribution"]["multi_session"]):
        return []
    return [{"group": group, "model": v.model, "label_set": v.labels}
            for group, members in GROUPS.items() if (animal, session) in members
            for v in MULTI]


def attribution_model_files(animal, session):
    files = [p for v in attribution_variants()
             for p in single_outputs(animal, session, v["model"], v["label_set"], "model.pt")]
    # embeddings.npz names the group's sessions in encoder order.
    files += [p for v in attribution_multi_variants(animal, session)
              for name in ("model.pt", "embeddings.npz")
              for p in multi_outputs(v["group"], v["model"], v["label_set"], name)]
    return files


def attribution_session_files(animal, session):
    if not config["attribution"]["enabled"]:
        return []
    return [LAYOUT.attribution_file(animal, session, ext) for ext in ("npz", "tsv", "json")]


# ------------------------------------------------------- input functions
def ingest_inputs(wildcards):
    """The data files a row reads (none for synthetic sources), for rerun tracking."""
    row = ROW[(wildcards.animal, wildcards.session)]
    files = {}
    for field in ("neural_file", "label_file", "trials_file"):
        value = row.get(field)
        if value and not value.startswith(cp_config.SYNTHETIC_PREFIX):
            files[field] = value
    return files


def group_files(kind):
    def files(wildcards):
        members = GROUPS[wildcards.group]
        if kind == "session":
            return [LAYOUT.session_file(a, s) for a, s in members]
        return [LAYOUT.split_file(a, s) for a, s in members]

    return files


def consistency_datasets_inputs(wildcards):
    members = GROUPS[wildcards.group]
    split = config["consistency"]["split"]
    files = {
        "sessions": [LAYOUT.session_file(a, s) for a, s in members],
        "splits": [LAYOUT.split_file(a, s) for a, s in members],
    }
    if wildcards.kind == "single":
        files["embeddings"] = [
            path
            for a, s in members
            for path in single_outputs(a, s, wildcards.model, wildcards.labels, f"embedding_{split}.npy")
        ]
    else:
        files["embeddings"] = multi_outputs(wildcards.group, wildcards.model, wildcards.labels,
                                            "embeddings.npz")
    return files


def table_inputs(wildcards):
    name = wildcards.table
    if name == "sessions":
        return {"inputs": [LAYOUT.session_file(a, s) for a, s in ROW],
                "splits": [LAYOUT.split_file(a, s) for a, s in ROW]}
    if name == "decoding":
        files = [p for a, s in ROW for p in decode_targets(a, s)] + multi_decode_targets()
    elif name == "controls":
        files = [LAYOUT.controls_file(a, s) for a, s in ROW]
    else:
        files = [p for a, s in ROW for p in runs_consistency_targets(a, s)]
        files += datasets_consistency_targets()
    return {"inputs": files, "splits": []}


NOTEBOOKS = os.path.relpath(os.path.join(workflow.basedir, "notebooks"))


# ------------------------------------------------- hypotheses and cohorts
def loao_tables():
    """Leave-one-animal-out tables of every multi-session model of every group with at
    least two animals, when hypotheses.leave_one_out is set."""
    if not config["hypotheses"]["leave_one_out"]:
        return []
    return [LAYOUT.loao_file(group, v.model, v.labels) for group, members in GROUPS.items()
            if len({animal for animal, _ in members}) >= 2 for v in MULTI]


from cebra_pipe.pipeline import cohort as cp_cohort

try:
    JOINS = cp_cohort.check_joins(ROWS, config, f"sessions sheet '{config['sessions']}'")
except cp_config.ConfigError as err:
    _stop(str(err))


def joined_outputs(animal, session):
    """The join_cohort outputs of a session ([] when its row joins no cohort model)."""
    cohort = JOINS.get((animal, session))
    if cohort is None:
        return []
    return [LAYOUT.joined_dir(cohort, animal, session, name) for name in cp_cohort.OUTPUTS]


def joined_cohorts(animal):
    """Session -> the cohort model it joins, for the animal's report."""
    return {s: JOINS[(animal, s)] for s in sessions_of(animal) if (animal, s) in JOINS}


def _cohort_model(wildcards):
    return config["cohort_models"][wildcards.cohort]
