"""Config and sessions-sheet validation: bad input stops before any job, naming the field.

Also: lint, the dry-run, DAG scale, and config values that could reach a shell. Tests
that start snakemake are marked slow (they still run in CI).
"""

from __future__ import annotations

import copy
import resource
import time
from pathlib import Path

import pytest
import yaml

from cebra_pipe.pipeline import config as cp_config
from pipeline_helpers import (REAL, REPO, layout_of, load_test_config, planned_jobs, snakemake,
                              synthetic_row, write_workdir)

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _rows():
    return [synthetic_row("rat1"), synthetic_row("rat2")]


def _set(config: dict, dotted: str, value) -> dict:
    config = copy.deepcopy(config)
    node = config
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return config


def assert_stops_before_jobs(workdir: Path, *fragments: str) -> str:
    """``snakemake --cores 1`` fails at parse time; no results are created."""
    result = snakemake(workdir, "--cores", "1", timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode != 0, text[-3000:]
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text[-3000:]}"
    assert not (workdir / "results").exists(), "a job ran despite the bad config"
    return text


BAD_CONFIGS = [
    ("models.time.max_iterations", 0, "field 'models.time.max_iterations'"),
    ("models.behavior.max_iterations", -10, "field 'models.behavior.max_iterations'"),
    ("models.time.batch_size", 0, "field 'models.time.batch_size'"),
    ("models.behavior.batch_size", -1, "field 'models.behavior.batch_size'"),
    ("models.time.output_dimension", 0, "field 'models.time.output_dimension'"),
    ("seeds", [], "field 'seeds'"),
    ("models.time.model_architecture", "offset10-modle", "unknown model 'offset10-modle'"),
    ("models.behavior.label_sets", ["speed"], "unknown label set 'speed'"),
    ("models.time.max_iteration", 5, "'max_iteration' was unexpected"),
    ("split.valid_fraction", 1.5, "field 'split.valid_fraction'"),
]


@pytest.mark.slow
@pytest.mark.parametrize("field, value, message", BAD_CONFIGS,
                         ids=[c[0] + "=" + str(c[1]) for c in BAD_CONFIGS])
def test_bad_config_stops_before_any_job(tmp_path, field, value, message):
    config = _set(load_test_config(), field, value)
    assert_stops_before_jobs(write_workdir(tmp_path, config, _rows()), message)


def test_schema_and_checks_in_process():
    """The same checks, fast, on many more cases (snakemake's validate + check_config)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    good = load_test_config()
    validate(copy.deepcopy(good), str(SCHEMA))
    cases = [("models.time.learning_rate", 0), ("models.time.temperature", -1),
             ("models.time.time_offsets", 0), ("seeds", [-1]), ("seeds", [0, 0]),
             ("device", "gpu; rm -rf /"), ("labels.position.type", "categorical"),
             ("split.method", "random"), ("models.time.conditional", "space")]
    for field, value in cases:
        with pytest.raises(WorkflowError) as info:
            validate(_set(good, field, value), str(SCHEMA))
        error = cp_config.find_schema_error(info.value)
        assert error is not None
        assert field.split(".")[-1] in cp_config.describe_schema_error(error, "config") or \
            field.split(".")[0] in cp_config.describe_schema_error(error, "config")
    filled = copy.deepcopy(good)
    validate(filled, str(SCHEMA))
    assert filled["models"]["time"]["temperature"] == 1.0  # default from the schema
    assert filled["controls"]["shuffle"] is True
    for field, value, message in [
        ("label_sets.position", ["speed"], "unknown label 'speed'"),
        ("multi_session", {"nomodel": ["position"]}, "unknown model 'nomodel'"),
        ("models.time.label_sets", ["position"], "'time' (CEBRA-Time) uses no labels"),
        ("consistency.align_label", "speed", "unknown label 'speed'"),
    ]:
        config = _set(filled, field, value)
        with pytest.raises(cp_config.ConfigError, match=message.replace("(", r"\(")
                           .replace(")", r"\)")):
            cp_config.check_config(config)


def test_null_count_that_cannot_reach_alpha_is_refused():
    """1 / (1 + num_nulls) must fall below alpha, or nothing could be called encoded."""
    from snakemake.utils import validate

    filled = copy.deepcopy(load_test_config())
    validate(filled, str(SCHEMA))
    for nulls, alpha in [(19, 0.05), (99, 0.01), (32, 0.03)]:
        config = _set(_set(filled, "hypotheses.num_nulls", nulls), "hypotheses.alpha", alpha)
        with pytest.raises(cp_config.ConfigError, match=r"hypotheses\.num_nulls.*"
                           r"smallest attainable p-value of"):
            cp_config.check_config(config)
    for nulls, alpha in [(20, 0.05), (100, 0.01), (33, 0.03), (200, 0.05)]:
        cp_config.check_config(_set(_set(filled, "hypotheses.num_nulls", nulls),
                                    "hypotheses.alpha", alpha))


@pytest.mark.parametrize("animal", ["overview", "Snakemake"])
def test_animal_named_like_another_report_is_refused(animal):
    """report/<animal>.html must not replace the overview or Snakemake's own report."""
    rows = _rows()
    rows[0]["animal"] = animal
    with pytest.raises(cp_config.ConfigError, match=rf"row 1 \({animal}/s1\): field 'animal': "
                       f"'{animal}' is reserved"):
        cp_config.check_sheet(rows, load_test_config())
    rows[0]["animal"] = "overview2"
    assert [row["animal"] for row in cp_config.check_sheet(rows, load_test_config())][0] == \
        "overview2"


@pytest.mark.parametrize("case, message", [
    ("duplicate", "duplicate session id 'rat1/s1'"),
    ("missing_file", "does not exist"),
    ("space_in_id", "field 'session'"),
    ("quote_in_id", "field 'animal'"),
    ("semicolon_in_id", "field 'animal'"),
    ("unknown_column", "unknown column(s) 'nueral_key' (did you mean 'neural_key'?)"),
    ("empty_sheet", "has no rows"),
])
@pytest.mark.slow
def test_bad_sheet_stops_before_any_job(tmp_path, case, message):
    rows = _rows()
    if case == "duplicate":
        rows.append(synthetic_row("rat1", seed=2))
    elif case == "missing_file":
        rows.append({"animal": "rat9", "session": "s1", "neural_file": "data/none.npz"})
    elif case == "space_in_id":
        rows[0]["session"] = "s 1"
    elif case == "quote_in_id":
        rows[0]["animal"] = "rat'1"
    elif case == "semicolon_in_id":
        rows[0]["animal"] = "rat1;touch INJECTED"
    elif case == "empty_sheet":
        rows = []
    workdir = write_workdir(tmp_path, load_test_config(), rows)
    if case == "unknown_column":
        sheet = workdir / "config" / "sessions.tsv"
        sheet.write_text(sheet.read_text().replace("neural_key", "nueral_key"))
    assert_stops_before_jobs(workdir, message)
    assert not (workdir / "INJECTED").exists()


@pytest.mark.slow
def test_paths_with_spaces_quotes_and_semicolons_are_safe(tmp_path):
    """A data path full of shell syntax reaches the entrypoint unchanged, runs nothing."""
    import shutil

    folder = tmp_path / "data dir; touch INJECTED"
    folder.mkdir()
    data = folder / "it's \"rat\" $(touch INJECTED2) `touch INJECTED3`.npz"
    shutil.copy(REAL / "rat_hippocampus_buddy" / "rat_hippocampus_buddy.npz", data)
    rows = [{"animal": "buddy", "session": "s1", "neural_file": str(data.relative_to(tmp_path)),
             "neural_key": "neural", "group": "rats"}]
    config = load_test_config()
    config["multi_session"] = {}
    workdir = write_workdir(tmp_path, config, rows)
    layout = layout_of(workdir)
    targets = [layout.session_file("buddy", "s1"), layout.split_file("buddy", "s1")]
    result = snakemake(workdir, "--cores", "1", *[str(Path(t).relative_to(workdir))
                                                   for t in targets])
    assert result.returncode == 0, result.stderr[-3000:]
    assert Path(targets[0]).is_file()
    assert not list(tmp_path.rglob("INJECTED*")), "a config value reached the shell"
    assert not list(Path.cwd().glob("INJECTED*"))


@pytest.mark.slow
def test_lint_is_clean(tmp_path):
    workdir = write_workdir(tmp_path, load_test_config(), _rows())
    result = snakemake(workdir, "--lint", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.mark.slow
def test_dry_run_plans_the_demo(tmp_path):
    workdir = write_workdir(tmp_path, load_test_config(), _rows())
    result = snakemake(workdir, "-n", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout + result.stderr)
    # 2 sessions x (time, behaviour/position, its shuffled control) trained in one job each
    # (training nulls in rule train_null, the same step grouped for clusters)
    assert jobs["train_single"] == 4 and jobs["train_null"] == 2 and jobs["train_multi"] == 1
    assert jobs["ingest"] == 2 and jobs["report_animal"] == 2 and jobs["report_overview"] == 1


@pytest.mark.slow
def test_dag_scales_to_50_animals(tmp_path):
    """50 animals x 5 seeds x 3 label sets: the DAG builds in under 15 s (CPU time)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["seeds"] = [0, 1, 2, 3, 4]
    config["models"]["behavior"]["label_sets"] = ["position", "direction",
                                                  "position+direction"]
    rows = [synthetic_row(f"rat{i:02d}", seed=i) for i in range(50)]
    for i, row in enumerate(rows):  # four simulated animals, 50 sessions
        row["neural_file"] = row["neural_file"].replace(f"animal=rat{i:02d}",
                                                        f"animal=rat{1 + i % 4}")
    workdir = write_workdir(tmp_path, config, rows)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = snakemake(workdir, "-n", timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout + result.stderr)
    # seeds share a job: 7 configurations per animal, 3 of them training nulls
    assert jobs["train_single"] == 50 * 4 and jobs["train_null"] == 50 * 3
    print(f"DAG of {sum(jobs.values())} jobs: {wall:.1f} s wall, {cpu:.1f} s CPU")
    # Wall time on a shared CI machine is noisy; the CPU time is what the DAG costs.
    assert cpu < 15, f"dry run took {cpu:.1f} s CPU ({wall:.1f} s wall)"
