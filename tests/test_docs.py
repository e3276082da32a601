"""The docs name only what exists: README.md and docs/*.md against the CLI, the Makefile and the files.

In their code spans and code blocks, every `python -m dataplane <command>` must be a command of
`dataplane.ops.cli.parser()` and every `--flag` after it an option of that command; every `make <target>` a rule of
the Makefile and every `VAR=` given to make a variable the Makefile declares (the flags in `ROLLOUT_ARGS` and
`REVIEW_ARGS` options of `rollout` and `review`); a flag named on its own (`--batch i/n`) an option of some command,
or of another tool the docs name (`OTHER_TOOLS_FLAGS`). Every relative link points to a file that exists, and to a
heading of it when it names one. The README stays a newcomer's page: at most 250 lines.
"""

from __future__ import annotations

import argparse
import functools
import re
import shlex
from pathlib import Path

import pytest

from dataplane.ops import cli
from dataplane.project import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = [README, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

OTHER_TOOLS_FLAGS = {
    "--auto-approve": "cdktf deploy and destroy",
    "--skip-synth": "cdktf deploy and destroy",
    "--skip-download": "checkov",
    "--repo-allowlist": "the Atlantis server",
    "--snapshot-update": "pytest (syrupy)",
    "--runs": "bench/activation.py",
}
"""Flags the docs name on their own that belong to another tool, not to `python -m dataplane`."""
NOT_FLAGS = {"--ol-s3", "--x-s3", "--table-s3"}
"""Code spans that start with `--` but name no flag: suffixes S3 reserves for bucket names."""
ARGS_VARIABLES = {"ROLLOUT_ARGS": "rollout", "REVIEW_ARGS": "review"}
"""Make variables whose value is arguments of a `python -m dataplane` command."""

DATAPLANE = re.compile(r"(?<![\w-])python3?\s+-m\s+dataplane(?![\w.-])")
MAKE = re.compile(r"(?<![\w./$-])make(?![\w.-])")
STOP = re.compile(r"\s(?:&&|\|\||;|\||>|2>|#)(?:\s|$)|;")
"""Where one shell command ends and the next (or a comment, or a redirection) begins."""
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```+|~~~+)")
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


# ---------------------------------------------------------------- what the project has


@functools.cache
def commands() -> dict[str, argparse.ArgumentParser]:
    """Every command of the CLI and its parser; the top level as ``""``."""
    top = cli.parser()
    (subparsers,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return {"": top, **subparsers.choices}


def options(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._option_string_actions)


@functools.cache
def makefile() -> tuple[set[str], set[str]]:
    """The Makefile's rule names and the variables it declares, read from its text (no `make -pn`)."""
    targets, variables = set(), set()
    for line in (PROJECT_ROOT / "Makefile").read_text().splitlines():
        if rule := re.match(r"([A-Za-z0-9_][^:=#\t]*?)\s*::?(?!=)", line):
            targets.update(rule[1].split())
        elif variable := re.match(r"(?:override\s+|export\s+)?([A-Z_][A-Z0-9_]*)\s*(?:\?|:|::|\+|!)?=", line):
            variables.add(variable[1])
    return targets, variables


# ---------------------------------------------------------------- what the docs say


def lines_of(text: str) -> tuple[list[tuple[int, str]], list[list[tuple[int, str]]]]:
    """The numbered lines of `text` outside code blocks, and each code block's numbered lines.

    Raises ValueError when a code block is not closed: nothing after its fence would be checked.
    """
    prose: list[tuple[int, str]] = []
    blocks: list[list[tuple[int, str]]] = []
    fence, opened = None, 0
    for number, line in enumerate(text.splitlines(), 1):
        marker = FENCE.match(line)
        if fence is None and marker:
            fence, opened = marker[1], number
            blocks.append([])
        elif fence is not None and marker and marker[1].startswith(fence) and not line.strip()[len(marker[1]):]:
            fence = None
        elif fence is not None:
            blocks[-1].append((number, line))
        else:
            prose.append((number, line))
    if fence is not None:
        raise ValueError(f"the code block opened on line {opened} is not closed")
    return prose, blocks


def code_of(text: str) -> list[tuple[int, str]]:
    """Every code block's lines and every code span, as (line number, code), in the order of the text.

    A block's usage line continued on the next (`[--flag ...]` indented below) is one line; a span that runs over a
    line break is one span, with a space for the break.
    """
    prose, blocks = lines_of(text)
    found = [line for block in blocks for line in _joined(block)]
    for start, paragraph in _paragraphs(prose):
        for span in SPAN.finditer(paragraph):
            found.append((start + paragraph.count("\n", 0, span.start()), " ".join(span[2].split())))
    return sorted(found, key=lambda item: item[0])


def _joined(block: list[tuple[int, str]]) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    for number, line in block:
        if lines and re.match(r"\s+\[", line) and DATAPLANE.search(lines[-1][1]):
            lines[-1] = (lines[-1][0], f"{lines[-1][1]} {line.strip()}")
        else:
            lines.append((number, line))
    return lines


def _paragraphs(prose: list[tuple[int, str]]):
    """(first line number, text) of each run of non-blank lines: a code span does not cross a blank line."""
    start, lines = 0, []
    for number, line in [*prose, (0, "")]:
        if line.strip():
            start = start or number
            lines.append(line)
        elif lines:
            yield start, "\n".join(lines)
            start, lines = 0, []


def prose_of(text: str) -> str:
    """The text outside code blocks and code spans, where links are."""
    return SPAN.sub("", "\n".join(line for _, line in lines_of(text)[0]))


def _commands_in(code: str) -> list[str]:
    """The shell commands of one line or span (a comment is one more), each up to `&&`, `;`, `|`, `>` or `#`."""
    return [part for part in STOP.split(f" {code} ") if part.strip()]


def problems_of(code: str) -> list[str]:
    """What one line of a code block, or one code span, names that the project does not have."""
    parsers, (targets, variables) = commands(), makefile()
    problems: list[str] = []
    for command in _commands_in(code):
        for match in DATAPLANE.finditer(command):
            rest = DATAPLANE.split(command[match.end():])[0].split()
            problems += _dataplane_problems(rest, parsers)
        for match in MAKE.finditer(command):
            problems += _make_problems(command[match.end():], parsers, targets, variables)
    if code.startswith("--") and not DATAPLANE.search(code):  # a flag named on its own, as in `--batch i/n`
        flag = FLAG.match(code)
        every = set().union(*map(options, parsers.values()))
        if flag and flag[0] not in every | OTHER_TOOLS_FLAGS.keys() | NOT_FLAGS:
            problems.append(f"{flag[0]}: no command of python -m dataplane has it (nor OTHER_TOOLS_FLAGS)")
    return problems


def _dataplane_problems(words: list[str], parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    """`words` follow `python -m dataplane`: the command (unless the top level's own option), then its flags."""
    if not words:
        return []
    name, *rest = words
    if name.startswith("-"):
        name, rest = "", words
    elif not re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", name):
        return []  # a placeholder: <command>, COMMAND, ...
    problems = []
    for one in name.split("|"):
        if one not in parsers:
            problems.append(f"python -m dataplane {one}: no such command")
        elif one != "cdktf":  # the cdktf CLI's own arguments follow
            problems += [f"python -m dataplane {one or '(top level)'}: no option {flag}"
                         for flag in FLAG.findall(" ".join(rest)) if flag.split("=")[0] not in options(parsers[one])]
    return problems


def _make_problems(text: str, parsers, targets: set[str], variables: set[str]) -> list[str]:
    text = re.sub(r"<[^<>]*>", "X", text)  # a placeholder, <name>, is one word
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    problems = []
    for word in words:
        word, ended = word.strip("[]"), word[-1:] in ",:;)."  # prose after a command in a comment: check, then stop
        word = word.rstrip(",:;).")
        if assignment := re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", word, re.S):
            if assignment[1] not in variables:
                problems.append(f"make {assignment[1]}=: the Makefile declares no such variable")
            elif command := ARGS_VARIABLES.get(assignment[1]):
                problems += _dataplane_problems([command, *assignment[2].split()], parsers)
        elif word.startswith("-") and len(word) > 1:
            continue  # make's own options: -s
        elif re.fullmatch(r"[a-z][a-z0-9_.-]*", word):
            if word not in targets:
                problems.append(f"make {word}: the Makefile has no such target")
        else:
            break  # a placeholder or the end of the command
        if ended:
            break
    return problems


def links_of(text: str) -> list[str]:
    """Every link's target: inline links and reference definitions."""
    prose = prose_of(text)
    return LINK.findall(prose) + re.findall(r"(?m)^\s*\[[^\]]+\]:\s*(\S+)", prose)


def heading_ids(text: str) -> set[str]:
    """The anchors GitHub gives the headings of `text` (a code span's text is kept, its backticks are not)."""
    ids: set[str] = set()
    for _, line in lines_of(text)[0]:
        if heading := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line):
            title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading[1]).replace("`", "")
            slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
            candidate, n = slug, 0
            while candidate in ids:
                n += 1
                candidate = f"{slug}-{n}"
            ids.add(candidate)
    return ids


def link_problems(path: Path, text: str) -> list[str]:
    problems = []
    for target in links_of(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not a file of the project
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            shown = linked.relative_to(PROJECT_ROOT) if linked.is_relative_to(PROJECT_ROOT) else linked
            problems.append(f"link {target}: {shown} does not exist")
        elif anchor and linked.suffix == ".md" and anchor not in heading_ids(linked.read_text()):
            problems.append(f"link {target}: no heading #{anchor} in {linked.name}")
    return problems


def doc_problems(path: Path, text: str) -> list[str]:
    try:
        code = code_of(text)
    except ValueError as e:
        return [f"{path.name}: {e}"]
    problems = [f"{path.name}:{line}: {problem}" for line, snippet in code for problem in problems_of(snippet)]
    return problems + [f"{path.name}: {problem}" for problem in link_problems(path, text)]


# ---------------------------------------------------------------- the tests


def test_the_readme_is_a_newcomer_s_page_of_at_most_250_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move the reference to docs/"


def test_the_readme_links_every_docs_page():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in links_of(README.read_text())}
    assert [page.name for page in DOCS[1:] if page.resolve() not in linked] == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_command_flag_make_target_and_link_the_docs_name_exists(path):
    assert doc_problems(path, path.read_text()) == []


def test_the_checks_refuse_made_up_commands_flags_targets_variables_and_links(tmp_path):
    page = tmp_path / "page.md"
    made_up = """
Run `python -m dataplane frobnicate` or `.venv/bin/python -m dataplane drift --frobnicate`, then
`make frobnicate` and `make synth FROBNICATE=1`, or `make rollout ROLLOUT_ARGS="--wave 1 --frobnicate"`;
`--frobnicate` on its own. See [the page](nowhere.md) and [its part](#nowhere).

```sh
.venv/bin/python -m dataplane plan-stacks [--jobs N]
                                   [--frobnicate]
make -s review BASE=origin/main REVIEW_ARGS=--frobnicate   # python -m dataplane unfrobnicate
```
"""
    page.write_text(made_up)
    assert doc_problems(page, made_up) == [
        "page.md:2: python -m dataplane frobnicate: no such command",
        "page.md:2: python -m dataplane drift: no option --frobnicate",
        "page.md:3: make frobnicate: the Makefile has no such target",
        "page.md:3: make FROBNICATE=: the Makefile declares no such variable",
        "page.md:3: python -m dataplane rollout: no option --frobnicate",
        "page.md:4: --frobnicate: no command of python -m dataplane has it (nor OTHER_TOOLS_FLAGS)",
        "page.md:7: python -m dataplane plan-stacks: no option --frobnicate",
        "page.md:9: python -m dataplane review: no option --frobnicate",
        "page.md:9: python -m dataplane unfrobnicate: no such command",
        f"page.md: link nowhere.md: {tmp_path / 'nowhere.md'} does not exist",
        "page.md: link #nowhere: no heading #nowhere in page.md",
    ]
    assert doc_problems(page, "```sh\nmake frobnicate\n") == ["page.md: the code block opened on line 1 is not closed"]
    real = """
`python -m dataplane drift --batch i/n --format json`, `make -s review BASE=origin/main > review.md`,
`make destroy CUSTOMER=<name> BASE=<ref>`, `python -m dataplane --help`, `--affected-from`.

## A heading: `python -m dataplane plan-stacks`

[up](#a-heading-python--m-dataplane-plan-stacks)
"""
    page.write_text(real)
    assert doc_problems(page, real) == []
