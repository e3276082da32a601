"""Markdown for GitHub comments and issues that a value from AWS, a plan or a state cannot take over.

`code(value)` shows a value exactly, and inert, as a code span: GitHub reads nothing in one as Markdown or HTML, so no
tag, comment (`<!--`), link, autolink, `@mention` or `#reference` in it takes effect. Its fence is one backtick longer
than the longest run of backticks in the value, so the value cannot close it early; line breaks, which would end the
paragraph and start a block of the value's own, become `⏎`, and other control and bidirectional-override characters,
which could hide or reorder text, become `�`. `cut(line, width)` shortens a rendered line without leaving a code span
open (the rest of its value would be read as Markdown).
"""

from __future__ import annotations

import re
from typing import Iterator

LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
HIDDEN = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
BACKTICKS = re.compile(r"`+")


def code(value: object) -> str:
    """`value` (as text) as an inline code span that nothing in it can end or turn into Markdown."""
    text = HIDDEN.sub("\ufffd", LINE_BREAK.sub("⏎", str(value))) or " "
    fence = "`" * (max(map(len, BACKTICKS.findall(text)), default=0) + 1)
    if "`" in (text[0], text[-1]) or text[0] == text[-1] == " " and text.strip():
        text = f" {text} "  # one space each side, which the span drops: the value keeps its own
    return f"{fence}{text}{fence}"


def spans(line: str) -> Iterator[tuple[int, int]]:
    """Where `line`'s code spans start and end, as CommonMark pairs backtick runs: a run opens a span that the next
    run of the same length closes; a run that none closes is literal."""
    runs = [(m.start(), m.end()) for m in BACKTICKS.finditer(line)]
    index = 0
    while index < len(runs):
        start, end = runs[index]
        closer = next((i for i in range(index + 1, len(runs)) if runs[i][1] - runs[i][0] == end - start), None)
        if closer is None:
            index += 1
        else:
            yield start, runs[closer][1]
            index = closer + 1


def cut(line: str, width: int) -> str:
    """At most `width` characters of `line`, cut before a code span the cut would fall inside."""
    if len(line) <= width:
        return line
    inside = next((start for start, end in spans(line) if start < width < end), width)
    return line[:inside]
