"""The pipeline on the two real rats (achilles, buddy): behaviour models must decode
position on held-out trials better than their shuffled-label controls."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml

from pipeline_helpers import REPO, SHARED, results_dir, snakemake

pytestmark = pytest.mark.slow

RATS = REPO / "config" / "rats"


@pytest.mark.skipif(not os.environ.get("CI")
                    and not (SHARED / "data" / "real" / "rat_hippocampus_buddy").is_dir(),
                    reason="needs ../shared/data/real beside the repository")
def test_real_rats_beat_shuffled_controls(tmp_path):
    # The shipped config/rats files, with ../shared reachable from the working directory.
    workdir = tmp_path / "work"
    (workdir / "config" / "rats").mkdir(parents=True)
    os.symlink(SHARED, tmp_path / "shared")
    config = yaml.safe_load((RATS / "config.yaml").read_text())
    config["models"] = {"behavior": {**config["models"]["behavior"], "max_iterations": 400}}
    (workdir / "config" / "rats" / "config.yaml").write_text(yaml.safe_dump(config))
    (workdir / "config" / "rats" / "sessions.tsv").write_text((RATS / "sessions.tsv").read_text())
    snakemake(workdir, "--cores", "2", "--configfile", "config/rats/config.yaml", check=True)

    results = results_dir(workdir, "config/rats/config.yaml")
    decoding = pd.read_csv(results / "tables" / "decoding.tsv", sep="\t")
    position = decoding[(decoding["target"] == "position") & (decoding["model"] == "behavior")]
    r2 = position[position["metric"] == "r2"].groupby(["animal", "control"])["value"].mean()
    error = position[position["metric"] == "median_abs_error"].groupby(
        ["animal", "control"])["value"].mean()
    gof = decoding[decoding["metric"] == "gof_bits"].groupby(["animal", "control"])["value"].mean()
    print(f"position R2:\n{r2}\nmedian abs error (m):\n{error}\nvalid GoF (bits):\n{gof}")
    for rat in ("achilles", "buddy"):
        assert r2[(rat, "real")] > r2[(rat, "shuffled")] + 0.2
        assert r2[(rat, "real")] > 0.4
        assert error[(rat, "real")] < error[(rat, "shuffled")]
        assert gof[(rat, "real")] > gof[(rat, "shuffled")]
    controls = pd.read_csv(results / "tables" / "controls.tsv", sep="\t")
    wins = controls[(controls["target"] == "position") & (controls["metric"] == "r2")]
    assert wins["real_better"].all() and len(wins) == 2
    splits = pd.read_csv(results / "tables" / "sessions.tsv", sep="\t")
    assert set(splits["animal"]) == {"achilles", "buddy"} and splits["trials"].all()
    assert (results / "report" / "overview.html").is_file()
