"""Training progress: a tqdm bar on a terminal, plain lines in log files.

A job log on a cluster is a file: a carriage-return bar there is one unreadable line
of thousands of redraws. :func:`progress` therefore returns tqdm only when the stream
is a terminal, and otherwise a :class:`LineProgress` that writes a line (step, loss,
steps/s, ETA) every ``interval`` seconds or every ``percent`` % of the steps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

from tqdm.auto import tqdm


class LineProgress:
    """Progress lines for non-terminal streams; tqdm's ``update``/``set_postfix``/``close``.

    Parameters
    ----------
    total : int
        Steps of the whole run.
    initial : int
        Steps already done (a resumed run).
    stream : file
        Where lines go (a job's log).
    interval : float
        Seconds between lines at most.
    percent : float
        A line also every this share of ``total``, in %.
    clock : callable
        Seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, total: int, initial: int = 0, *, stream: IO[str], desc: str = "",
                 interval: float = 10.0, percent: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.stream, self.desc = int(total), stream, desc
        self.interval, self.clock = float(interval), clock
        self._every = max(1, round(self.total * percent / 100.0))
        self._postfix: dict[str, Any] = {}
        self.n = initial

    @property
    def n(self) -> int:
        """Steps done."""
        return self._n

    @n.setter
    def n(self, value: int) -> None:
        # A jump (resumed from a checkpoint): rates count from here, as tqdm's do.
        self._n = self._start_n = self._last_n = int(value)
        self._start_t = self._last_t = self.clock()

    def refresh(self) -> None:
        """Nothing to redraw in a log (tqdm interface)."""

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; write a line when one is due."""
        self._n += int(n)
        now = self.clock()
        due = (now - self._last_t >= self.interval
               or self.n // self._every > self._last_n // self._every)
        if due and self.n > self._last_n:
            self._write(now)

    def set_postfix(self, **values: Any) -> None:
        """Values shown at the end of the next line (e.g. ``loss=...``)."""
        self._postfix = values

    def close(self) -> None:
        """Write the final line if the last steps were not reported yet."""
        if self.n > self._last_n:
            self._write(self.clock())

    def _write(self, now: float) -> None:
        elapsed = now - self._start_t
        rate = (self.n - self._start_n) / elapsed if elapsed > 0 else float("nan")
        left = (self.total - self.n) / rate if rate > 0 else float("nan")
        extra = "".join(f", {key}={value}" for key, value in self._postfix.items())
        self.stream.write(f"{self.desc + ': ' if self.desc else ''}step {self.n}/{self.total} "
                          f"({100.0 * self.n / max(self.total, 1):.0f}%){extra}, "
                          f"{rate:.1f} steps/s, elapsed {_duration(elapsed)}, "
                          f"ETA {_duration(left)}\n")
        self.stream.flush()
        self._last_n, self._last_t = self._n, now


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: no rate yet
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def progress(total: int, initial: int = 0, *, enabled: bool, desc: str = "cebra_pipe",
             stream: IO[str] | None = None) -> Any:
    """A tqdm bar on a terminal, :class:`LineProgress` elsewhere, a silent bar when off.

    ``stream`` defaults to ``sys.stderr`` (where tqdm writes and job logs collect).
    """
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if not enabled or (isatty is not None and isatty()):
        return tqdm(total=total, initial=initial, disable=not enabled, desc=desc,
                    dynamic_ncols=True, file=stream)
    return LineProgress(total, initial, stream=stream, desc=desc)
