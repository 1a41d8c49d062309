"""Tables for people: text wraps at word boundaries, an ARN or id is never broken, and output
that is not a terminal has no trailing padding."""

from __future__ import annotations

import io
import re

from rich.console import Console
from rich.table import Table

from provisioner.tables import TrimmedStream, print_table

ARN = "arn:aws:iam::123456789012:role/service-role/a-rather-long-role-name-for-deployments"
SENTENCE = "the principal allocated three addresses from an unexpected source address yesterday"


def _draw(width: int) -> str:
    buffer = io.StringIO()
    console = Console(file=TrimmedStream(buffer), width=width, no_color=True)
    table = Table(title="who allocated addresses")
    table.add_column("principal", overflow="fold")
    table.add_column("why", overflow="fold")
    table.add_row(ARN, SENTENCE)
    print_table(console, table)
    return buffer.getvalue()


def test_an_arn_is_never_broken_and_sentences_wrap_at_words():
    for width in (40, 80, 120):
        text = _draw(width)
        assert ARN in text, text  # whole, on one line
        body = text.splitlines()[1:]  # below the title
        assert body and all(line[-1] in "┓┃┩│┘" for line in body), text  # nothing cropped
        cells = [cell for line in text.splitlines() for cell in re.split(r"[│┃]", line)[1:-1]]
        words = {word for cell in cells for word in cell.split()}
        assert words <= {ARN, "principal", "why", *SENTENCE.split()}, text  # no word cut in two


def test_no_trailing_padding_off_a_terminal():
    text = _draw(120)
    assert text.strip() and not [line for line in text.splitlines() if line != line.rstrip()]


def test_a_terminal_keeps_what_rich_wrote():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    TrimmedStream(tty).write("padded   \nline  ")
    assert tty.getvalue() == "padded   \nline  "
