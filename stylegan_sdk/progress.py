"""Long work says how far it is: one line now and then, with the rate and an estimate of the time left.

    progress = Progress("fid5k_full: generated images", total=5000)
    for batch in ...:
        ...
        progress.advance(len(batch))     # prints at most every `every_s` seconds, and at the end
    progress.close()                     # the last line, with the time taken (if not printed yet)

Lines go to stderr (results on stdout stay clean for pipes), one per report so that logs keep them:
`fid5k_full: generated images 1,216/5,000 (24%), 41 img/s, 30 s so far, about 1 min 32 s left`.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '2 h 07 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Counts work done out of `total` and reports it; silent when `stream` is None."""

    def __init__(
        self,
        what: str,                          # what is counted, e.g. "fid5k_full: generated images"
        total: int,                         # how many there will be
        unit: str = "img",                  # for the rate: img/s
        every_s: float = 10.0,              # at most one line per this many seconds
        stream: TextIO | None = sys.stderr,
        clock=time.monotonic,
    ) -> None:
        self.what, self.total, self.unit, self.every_s, self.stream = what, max(0, int(total)), unit, every_s, stream
        self.clock = clock
        self.done = 0
        self.start = self.last = clock()
        self.closed = False

    def line(self) -> str:
        elapsed = self.clock() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.what} {self.done:,}/{self.total:,}"
        if self.total:
            text += f" ({100 * self.done // self.total}%)"
        text += f", {rate:.3g} {self.unit}/s, {duration(elapsed)} so far"
        if 0 < self.done < self.total and rate > 0:
            text += f", about {duration((self.total - self.done) / rate)} left"
        return text

    def advance(self, n: int) -> None:
        self.done += int(n)
        now = self.clock()
        if self.done >= self.total:
            self.close()
        elif now - self.last >= self.every_s:
            self.last = now
            self._print(self.line())

    def close(self) -> None:
        """The last line (once): the count and the time it took."""
        if not self.closed:
            self.closed = True
            self._print(self.line())

    def _print(self, text: str) -> None:
        if self.stream is not None:
            print(text, file=self.stream, flush=True)
