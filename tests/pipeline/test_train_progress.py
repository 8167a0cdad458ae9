"""A training job logs progress lines (no carriage returns) and its thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.pipeline.test_train_segments import MODEL, _session


def test_train_single_logs_progress_lines_to_a_log_file(tmp_path):
    session, split_file, _ = _session(tmp_path, "s", 1)
    log = tmp_path / "train.log"
    env = {**os.environ, "SLURM_CPUS_PER_TASK": "1"}
    with open(log, "w") as handle:
        rc = subprocess.run(
            [sys.executable, "-m", "cebra_pipe", "train-single", "--session", str(session),
             "--split", str(split_file), "--model", json.dumps(MODEL), "--labels",
             json.dumps({"names": ["position"]}), "--seeds", "0", "--device", "cpu",
             "--ensemble", "off", "--outdir", str(tmp_path / "out"), "--checkpoints",
             str(tmp_path / "ck")], stdout=handle, stderr=subprocess.STDOUT, env=env,
            timeout=300).returncode
    text = log.read_text()
    assert rc == 0, text
    assert "\r" not in text
    lines = [line for line in text.splitlines() if "steps/s" in line]
    assert lines and "step 6/6 (100%), loss=" in lines[-1] and "ETA" in lines[-1]
    provenance = json.loads((tmp_path / "out" / "seed0" / "provenance.json").read_text())
    assert json.dumps(provenance).count('"threads": 1') == 1
