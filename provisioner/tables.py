"""Printing rich tables so that they stay readable: text wraps at word boundaries, and a single
word (an ARN, a resource id, a file path) is never cut or folded in the middle."""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segment, Segments
from rich.table import Table


def print_table(console: Console, table: Table) -> None:
    """Draw the table at the console's width, or wider when its longest words need it.

    rich narrows a table to the console by wrapping cells at spaces first; only a word longer
    than its column is folded or cut. The table's minimum width is the sum of its columns'
    longest words, so drawing at least that wide means no identifier is ever broken (a terminal
    then wraps the long line as a whole, which copy-paste survives)."""
    # Measured without the console's limit (a measurement is clamped to the width it is given).
    unlimited = console.options.update_width(10_000)
    for column in table.columns:
        sizes = [Measurement.get(console, unlimited, cell) for cell in (column.header, *column.cells)]
        if all(size.minimum == size.maximum for size in sizes):
            # Single words only (ids, ARNs, paths): rich narrows the widest columns first,
            # whatever their words, unless a column is marked as one not to wrap.
            column.no_wrap = True
        else:
            # Text: it may wrap at spaces, down to its longest word.
            column.min_width = max(column.min_width or 0, max(size.minimum for size in sizes))
    needed = Measurement.get(console, unlimited, table).minimum
    if needed <= console.width:
        console.print(table)
        return
    # console.print() clamps any width to the console's: render the lines at the width needed
    # and print them as they are (soft_wrap: rich adds no line breaks of its own).
    lines = console.render_lines(table, console.options.update_width(needed), pad=False)
    console.print(Segments(segment for line in lines for segment in (*line, Segment.line())),
                  soft_wrap=True, crop=False, end="")


class TrimmedStream:
    """A console's file: sys.stdout/sys.stderr as they are at each write (a test runner swaps
    them), or a file. When it is not a terminal, rich's padding at the end of lines (tables and
    titles are padded to the full width) is dropped, so piped and saved reports have no
    trailing blanks. rich writes a whole print() in one write(), so lines arrive whole."""

    def __init__(self, target: str | object) -> None:
        self._target = target

    @property
    def _stream(self):
        import sys

        return getattr(sys, self._target) if isinstance(self._target, str) else self._target

    def write(self, text: str) -> int:
        if not self.isatty():
            text = "\n".join(line.rstrip(" ") for line in text.split("\n"))
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        isatty = getattr(self._stream, "isatty", None)
        return bool(isatty and isatty())

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"
