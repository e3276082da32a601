"""What deploy, plan, destroy and drift print: the tool's own progress lines; terraform's output goes to a log file.

    deploy acme: synth 2.1 s
    deploy acme: apply: 14 added, 0 changed, 0 destroyed in 35.2 s
    deploy acme: done in 41.0 s; log: logs/acme-deploy-20250101T120000Z.log

`Progress.run` is the one way these commands run a tool (terraform; the cdktf CLI would run the same way): its
stdout and stderr stream into the command's log, `<synth output's parent>/logs/<customer>-<command>-<UTC time>.log`
(beside the synth output, as local state is; the log of a private workspace's run goes to the same place), without
ANSI codes and with each line as a terminal would last show it (spinner redraws resolved). The tools are asked for
no colour (terraform's `-no-color` is the caller's; `NO_COLOR=1`, `FORCE_COLOR=0` for the rest) and what they
print anyway is stripped. A step that succeeds prints one line: its result read from terraform's summary (`Apply
complete! Resources: ...`, `Plan: ...`, `No changes.`), and its time. A step that fails prints, on stderr, the
lines of each terraform error (`Error: ...` and its block, without the box-drawing characters; else the output's
last lines), then the log's path. Only when stderr is a terminal, a status line there shows the running step and
terraform's latest line, and a fleet command (`Fleet`) a progress bar; it is redrawn with `\\r` alone, and a pipe
or a CI log gets neither: nothing the tool prints holds a control code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence, TextIO

from dataplane.runtime.toolchain import tool_environment

LOGS = "logs"
"""The log directory's name, beside the synth output."""
NO_COLOUR = {"NO_COLOR": "1", "FORCE_COLOR": "0"}
"""What asks the cdktf CLI and other Node tools for plain output (terraform takes `-no-color`)."""
ERROR_LINES = 40
"""At most this many error lines are printed; the log has them all."""
TAIL_LINES = 10
"""Printed of a failed run's output when it names no `Error:`."""

REDRAW = re.compile(r"(\r|\x1b\[[012]?K|\x1b\[[01]?G)")
"""What starts a line's text over: a carriage return, erasing the line, the cursor to its first column."""
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|\x1b")
"""CSI sequences (colours, cursor moves, erasing), OSC sequences (titles, links), other escapes, a stray ESC."""
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""C0 controls other than tab, newline and carriage return (handled as a redraw), and DEL."""
BOX = re.compile(r"^[│╷╵] ?")
"""terraform's diagnostic box, in front of each line of a coloured error."""
ERROR = re.compile(r"^(?:terraform \w+ failed: )?(Error: .*)")
"""The first line of a terraform error (as terraform prints it, or after `plan`'s one-line prefix)."""
SUMMARIES = (
    (re.compile(r"^(?:Apply|Destroy) complete! Resources: (?P<result>.*?)\.?$"), None),
    (re.compile(r"^Plan: (?P<result>.*?)\.?$"), None),
    (re.compile(r"^No changes\."), "no changes"),
    (re.compile(r"^Changes to Outputs:"), "changes to outputs only"),
)
"""terraform's summary lines, first to last in precedence (an apply's output has its plan's line too), and the
result each gives: a fixed text, else the line's `result`."""


def log_dir(outdir: Path) -> Path:
    """Where the logs of runs on the synth output `outdir` (or a private workspace beside it) go."""
    return outdir.parent / LOGS


def plain(text: str) -> str:
    """`text` without ANSI codes or other controls, each line as a terminal would last show it: a carriage return
    (or the cursor to the first column) writes over the line, erasing it empties it (a spinner's frames leave the
    last one)."""
    lines = []
    for line in text.split("\n"):
        shown = ""
        for part in REDRAW.split(line.rstrip("\r")):
            if part.startswith("\x1b[") and part.endswith("K"):
                shown = ""
            elif not REDRAW.fullmatch(part):
                part = CONTROL.sub("", ANSI.sub("", part))
                shown = part + shown[len(part):]
        lines.append(shown)
    return "\n".join(lines)


def error_lines(output: str) -> list[str]:
    """The lines that say why a run failed: each terraform error, its first line (`Error: ...`) and its block (to the
    box's end, the next error or warning, or the end), without the box; else the last lines of `output`."""
    found: list[str] = []
    inside = False
    for raw in plain(output).splitlines():
        line = BOX.sub("", raw.rstrip())
        if raw.strip() == "╵" or line.startswith("Warning: "):
            inside = False
        elif match := ERROR.match(line):
            while found and not found[-1]:
                found.pop()
            found += [""] if found else []
            found.append(match[1])
            inside = True
        elif inside and (line or found[-1]):
            found.append(line)
    if not found:
        found = [line for line in plain(output).splitlines() if line.strip()][-TAIL_LINES:]
    while found and not found[-1]:
        found.pop()
    if len(found) > ERROR_LINES:
        found = found[:ERROR_LINES] + ["… (more in the log)"]
    return found


def summary(output: str) -> str | None:
    """The result terraform's output ends with (`14 added, 0 changed, 0 destroyed`, `no changes`), if it says."""
    found: dict[int, str] = {}
    for line in plain(output).splitlines():
        for rank, (pattern, fixed) in enumerate(SUMMARIES):
            if match := pattern.match(line):
                found[rank] = fixed or match["result"]
    return found[min(found)] if found else None


def warnings(output: str) -> int:
    return sum(line.startswith("Warning: ") for line in plain(output).splitlines())


@dataclass(frozen=True)
class Run:
    """A finished tool run: its exit status, seconds, and output without ANSI codes."""

    status: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0


class StatusLine:
    """One line at the bottom of a terminal (stderr only when it is one: never in a pipe), redrawn with `\\r` and
    padding, no control code."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.width = 0

    def show(self, text: str) -> None:
        if not self.live:
            return
        text = text[:max(10, shutil.get_terminal_size().columns - 1)]
        self.stream.write("\r" + text + " " * max(0, self.width - len(text)))
        self.stream.flush()
        self.width = len(text)

    def clear(self) -> None:
        if self.live and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


class Progress:
    """One command's run for one customer: the lines it prints (`<command> <customer>: ...`) and the log that keeps
    its tools' output, made at its first tool run."""

    def __init__(self, command: str, customer: str, outdir: Path, out: TextIO | None = None,
                 err: TextIO | None = None):
        self.command, self.customer, self.outdir = command, customer, outdir
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.started = time.monotonic()
        self.log: Path | None = None

    def say(self, text: str, err: bool = False) -> None:
        print(f"{self.command} {self.customer}: {text}", file=self.err if err else self.out, flush=True)

    def run(self, step: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None,
            quiet: bool = False, report: bool = True) -> Run:
        """Run `argv` in `cwd` (environment: `env`, else the tools'), its output into the log; on success one line
        (unless `quiet`), on failure its errors then the log's path (unless not `report`: then the caller's
        `failure` to say, or not)."""
        log = self._log()
        env = {**(tool_environment() if env is None else env), **NO_COLOUR}
        status = StatusLine(self.err)
        started = time.monotonic()
        with open(log, "a", encoding="utf-8") as sink:
            sink.write(f"== {step}: {' '.join(argv)} (in {cwd}, {_utc()})\n")
            sink.flush()
            code, output = self._stream(step, argv, cwd, env, sink, status, started)
            seconds = time.monotonic() - started
            sink.write(f"== {step}: exit status {code} in {seconds:.1f} s\n")
        status.clear()
        run = Run(code, seconds, output)
        if not run.ok and report:
            self.failure(step, run)
        elif run.ok and not quiet:
            self.say(self.result(step, run))
        return run

    def failure(self, step: str, run: Run) -> None:
        """A failed step's lines: what failed, terraform's errors, the log's path."""
        self.failed(f"{step} FAILED (exit status {run.status}) in {run.seconds:.1f} s", error_lines(run.output))

    def _stream(self, step: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str], sink: TextIO,
                status: StatusLine, started: float) -> tuple[int, str]:
        """Run `argv`, its stdout and stderr (in the order written) into `sink` line by line; (status, output)."""
        lines: list[str] = []

        def take(raw: bytes) -> None:
            line = plain(raw.decode(errors="replace").rstrip("\n"))
            lines.append(line)
            sink.write(line + "\n")
            sink.flush()
            if line.strip():
                status.show(f"{self.command} {self.customer}: {step} {time.monotonic() - started:.0f} s: "
                            f"{line.strip()}")

        process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        try:
            for raw in process.stdout:
                take(raw)
        except KeyboardInterrupt:  # Ctrl-C reached the tool too: it stops as it does, its last words still logged
            for raw in process.stdout:
                take(raw)
            process.wait()
            raise
        finally:
            process.stdout.close()
        return process.wait(), "\n".join(lines)

    def result(self, step: str, run: Run) -> str:
        """A step's line: `apply: 14 added, 0 changed, 0 destroyed in 35.2 s`, or `init 2.3 s`."""
        said, count = summary(run.output), warnings(run.output)
        line = f"{step}: {said} in {run.seconds:.1f} s" if said else f"{step} {run.seconds:.1f} s"
        return line + (f" ({count} warning{'' if count == 1 else 's'}: see the log)" if count else "")

    def failed(self, what: str, lines: Sequence[str]) -> None:
        """On stderr: what failed, the lines that say why (indented), then the log's path."""
        self.say(what + (":" if lines else ""), err=True)
        for line in lines:
            print(f"    {line}" if line else "", file=self.err)
        self.say(f"full output in {self._log()}", err=True)

    def done(self, what: str) -> None:
        """The last line of a successful run: what it did, its time, its log."""
        log = f"; log: {self.log}" if self.log else ""
        self.say(f"{what} in {time.monotonic() - self.started:.1f} s{log}")

    def _log(self) -> Path:
        if self.log is None:
            self.log = new_log(self.outdir, self.customer, self.command)
        return self.log


def new_log(outdir: Path, customer: str, command: str, text: str = "") -> Path:
    """A new log file `<customer>-<command>-<UTC time>.log` in `log_dir(outdir)` (never one another run has), holding
    `text` without ANSI codes."""
    directory = log_dir(outdir)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{customer}-{command}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    for attempt in range(1, 1000):
        path = directory / (f"{stem}.log" if attempt == 1 else f"{stem}-{attempt}.log")
        try:
            with open(path, "x", encoding="utf-8") as log:
                log.write(f"# python -m dataplane {command} {customer}, {_utc()}\n{plain(text)}")
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: no free log name for {stem}")


class Fleet:
    """Progress of a command over many stacks: each finished one's line counted (`[3/18] acme: ...`), and on a
    terminal a bar below them."""

    def __init__(self, say: Callable[[str], None], total: int, stream: TextIO | None = None):
        self._say, self.total, self.count = say, total, 0
        self.status = StatusLine(stream)
        self._draw()

    def done(self, line: str) -> None:
        self.count += 1
        self.status.clear()
        self._say(f"[{self.count}/{self.total}] {line}")
        self._draw()

    def close(self) -> None:
        self.status.clear()

    def _draw(self) -> None:
        if self.total:
            filled = 30 * self.count // self.total
            self.status.show(f"[{'#' * filled}{'.' * (30 - filled)}] {self.count}/{self.total}")


def _utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

