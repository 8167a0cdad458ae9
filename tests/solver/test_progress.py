"""Training progress: plain lines at a bounded rate in files, tqdm on terminals."""

from __future__ import annotations

import io
import re

import numpy as np

import cebra_pipe as cebra
from cebra_pipe.solver.progress import LineProgress, progress

_LINE = re.compile(r"step (\d+)/(\d+) \(\d+%\), loss=[\d.]+, [\d.]+ steps/s, "
                   r"elapsed \d+m\d\ds, ETA (\d+m\d\ds|\?)$")


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_lines_every_ten_percent_and_at_the_end():
    stream, clock = io.StringIO(), _Clock()
    bar = LineProgress(1000, stream=stream, interval=1e9, clock=clock)
    for _ in range(1000):
        clock.t += 0.01  # 100 steps/s
        bar.set_postfix(loss="1.2345")
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert "\r" not in stream.getvalue()
    assert all(_LINE.search(line) for line in lines), lines
    assert "step 100/1000 (10%), loss=1.2345, 100.0 steps/s, elapsed 0m01s, ETA 0m09s" in lines[0]
    assert lines[-1].startswith("step 1000/1000 (100%)")


def test_lines_every_interval_on_long_runs():
    stream, clock = io.StringIO(), _Clock()
    bar = LineProgress(100_000, stream=stream, interval=10.0, clock=clock)
    for _ in range(1600):
        clock.t += 0.125  # 8 steps/s: 10% would take 1250 s
        bar.update(1)
    assert len(stream.getvalue().splitlines()) == 20  # one per 10 s of 200 s


def test_resume_counts_the_rate_from_the_jump():
    stream, clock = io.StringIO(), _Clock()
    bar = LineProgress(100, initial=50, stream=stream, interval=1e9, clock=clock)
    bar.n = 60
    clock.t = 2.0
    bar.update(10)
    assert "step 70/100 (70%), 5.0 steps/s" in stream.getvalue()


def test_terminal_gets_tqdm_and_files_get_lines():
    class _Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not isinstance(progress(10, enabled=True, stream=_Tty()), LineProgress)
    assert isinstance(progress(10, enabled=True, stream=io.StringIO()), LineProgress)
    silent = progress(10, enabled=False, stream=io.StringIO())
    assert not isinstance(silent, LineProgress)


def test_verbose_fit_writes_lines_to_a_non_terminal_stderr(capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 10)).astype("float32")
    cebra.CEBRA(model_architecture="offset1-model", batch_size=32, max_iterations=20,
                output_dimension=2, verbose=True, device="cpu", random_state=0).fit(X)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if "steps/s" in line]
    assert lines and lines[-1].startswith("cebra_pipe: step 20/20 (100%)")
