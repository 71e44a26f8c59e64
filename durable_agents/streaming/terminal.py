"""``TerminalView``: a streamed run's model text printed as it is generated.

On a terminal, text of a discarded attempt is erased (the cursor goes back over the lines it
took) and a one-line note says why; on a pipe or file, where nothing can be taken back, the
note says which text above is void, and the next attempt's text starts on a fresh line. A reply
that differs from what was shown is printed whole after a note.
"""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from durable_agents.streaming.events import ContinuedAsNew, RunEnded, StepStarted

MODEL_PREFIX = "  model: "


class TerminalView:
    """Prints steps and live model text; ``break_line`` lets other output in cleanly.

    Args:
        out: Where to print.
        tty: Erase discarded text with ANSI escapes; default: whether ``out`` is a terminal.
    """

    def __init__(self, out: TextIO | None = None, tty: bool | None = None) -> None:
        self._out = out if out is not None else sys.stdout
        self._tty = self._out.isatty() if tty is None else tty
        self._open: str | None = None
        """The call whose text is on the current line, not yet ended by a newline."""
        self._shown = ""
        """What has been printed of that call's current attempt (prefix included)."""

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def break_line(self) -> None:
        """End a line of live text, so whatever is printed next starts on its own line."""
        if self._open is not None:
            self._write("\n")
            self._open, self._shown = None, ""

    def step(self, event: StepStarted) -> None:
        self.break_line()
        who = f"[{event.scope}] " if event.scope else ""
        total = f"/{event.max_steps}" if event.max_steps else ""
        self._write(f"{who}step {event.step}{total}\n")

    def text(self, call: str, delta: str) -> None:
        if self._open != call:
            self.break_line()
            self._open, self._shown = call, MODEL_PREFIX
            self._write(MODEL_PREFIX)
        indented = delta.replace("\n", "\n" + " " * len(MODEL_PREFIX))
        self._shown += indented
        self._write(indented)

    def discard(self, call: str, attempt: int, text: str, reason: str) -> None:
        if not text:
            return
        if self._tty and self._open == call:
            self._erase(self._shown)
            self._open, self._shown = None, ""
            self._write(f"  ({reason}; its text was discarded)\n")
            return
        self.break_line()
        self._write(f"  [{reason}: the text of attempt {attempt} above is void]\n")

    def reply(self, call: str, text: str, corrected: bool) -> None:
        if corrected and text:
            self.break_line()
            self._write("  [the reply as recorded:]\n" + MODEL_PREFIX)
            self._write(text.replace("\n", "\n" + " " * len(MODEL_PREFIX)))
            self._write("\n")
            return
        if self._open == call:
            self.break_line()

    def continued(self, event: ContinuedAsNew) -> None:
        self.break_line()
        self._write(f"  (continued as new: run {event.runs}, after step {event.steps})\n")

    def ended(self, event: RunEnded) -> None:
        self.break_line()

    def _erase(self, shown: str) -> None:
        """Move the cursor back to where ``shown`` began and clear from there down."""
        width = max(1, shutil.get_terminal_size().columns)
        lines = shown.split("\n")
        rows = sum(max(1, -(-len(line) // width)) for line in lines)
        # \r: column 0; \x1b[nA: n rows up; \x1b[J: clear to the end of the screen.
        self._write("\r" + (f"\x1b[{rows - 1}A" if rows > 1 else "") + "\x1b[J")
