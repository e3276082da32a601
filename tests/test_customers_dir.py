"""The customers directory: only regular `<name>.toml` files and README files, each refusal on one line."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dataplane.config.customer import load_customer, load_customers
from dataplane.config.errors import ConfigError
from tests.test_customer_loader import BASE, CONTROL_PLANE, write


def refusals(directory: Path, timeout: float = 10) -> list[tuple[str, str, str]]:
    """(entry, field, message) of every problem `load_customers` finds; fails if it blocks."""
    outcome = []

    def load():
        try:
            load_customers(directory, CONTROL_PLANE)
            outcome.append([])
        except ConfigError as e:
            outcome.append([(Path(p.file).name, p.field, p.message) for p in e.problems])

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout)
    assert outcome, f"load_customers did not return within {timeout} s"
    return outcome[0]


@pytest.fixture
def directory(tmp_path) -> Path:
    """A customers directory with one good customer."""
    customers = tmp_path / "customers"
    customers.mkdir()
    write(customers, "acme", BASE)
    return customers


@pytest.mark.parametrize("name", ["x.TOML", "x.tml", "x.toml.bak", "x.toml~", "notes.txt", "Makefile", ".gitkeep",
                                  "readme.md"])
def test_files_not_named_name_toml_are_refused(directory, name):
    (directory / name).write_text(BASE.replace("123456789012", "223456789012"))
    [(entry, field, message)] = refusals(directory)
    assert (entry, field) == (name, "(file name)")
    assert "is not named <customer>.toml" in message and "README" in message


def test_hidden_toml_files_are_not_exempt(directory):
    (directory / ".old.toml").write_text(BASE.replace("123456789012", "223456789012"))
    [(entry, field, message)] = refusals(directory)
    assert (entry, field) == (".old.toml", "(file name)") and "customer name '.old'" in message


@pytest.mark.parametrize("name", ["README", "README.md", "README-operations.txt"])
def test_readme_files_are_allowed(directory, name):
    (directory / name).write_text("# not a customer\n")
    assert [c.name for c in load_customers(directory, CONTROL_PLANE)] == ["acme"]


@pytest.mark.parametrize("name", ["x.toml", "sub"])
def test_directories_are_refused(directory, name):
    (directory / name).mkdir()
    (directory / name / "inner.toml").write_text(BASE.replace("123456789012", "223456789012"))
    problems = refusals(directory)
    assert (name, "(file)", "a directory, not a regular file; the customers directory holds only customer files "
                            "(<customer>.toml) and README files") in problems
    assert {entry for entry, _, _ in problems} == {name}


@pytest.mark.parametrize("name", ["x.toml", "README"])
def test_a_fifo_is_refused_without_blocking(directory, name):
    os.mkfifo(directory / name)
    assert refusals(directory) == [(name, "(file)", "a named pipe (FIFO), not a regular file; the customers directory "
                                                    "holds only customer files (<customer>.toml) and README files")]


def test_load_customer_never_blocks_on_a_fifo(tmp_path):
    """Even when the entry became a FIFO after the directory was checked, it is opened without blocking."""
    os.mkfifo(tmp_path / "acme.toml")
    outcome = []

    def load():
        try:
            load_customer(tmp_path / "acme.toml", CONTROL_PLANE)
        except ConfigError as e:
            outcome.append([str(p) for p in e.problems])

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10)
    assert outcome == [[f"{tmp_path}/acme.toml: (file): a named pipe (FIFO), not a regular file"]]


def test_symbolic_links_are_refused(directory, tmp_path):
    outside = write(tmp_path, "elsewhere", BASE.replace("123456789012", "323456789012"))
    (directory / "outside.toml").symlink_to(outside)
    (directory / "broken.toml").symlink_to(directory / "missing.toml")
    (directory / "loop-a.toml").symlink_to(directory / "loop-b.toml")
    (directory / "loop-b.toml").symlink_to(directory / "loop-a.toml")
    (directory / "inside.toml").symlink_to(directory / "acme.toml")
    (directory / "README.md").symlink_to(outside)
    problems = refusals(directory)
    assert {(entry, field) for entry, field, _ in problems} == {
        (name, "(file)") for name in ("outside.toml", "broken.toml", "loop-a.toml", "loop-b.toml", "inside.toml",
                                      "README.md")}
    assert all(message.startswith("a symbolic link, not a regular file") for _, _, message in problems)


def test_a_file_too_large_is_refused_unparsed(directory):
    (directory / "huge.toml").write_text("x = [" + "1," * 1_000_000 + "]\n")
    assert refusals(directory) == [("huge.toml", "(file)",
                                    "file is 2000007 bytes; a customer file is at most 65536")]


def test_an_unprintable_name_stays_on_one_line(directory):
    (directory / "bad\nname.toml").write_text(BASE.replace("123456789012", "223456789012"))
    with pytest.raises(ConfigError) as caught:
        load_customers(directory, CONTROL_PLANE)
    [problem] = caught.value.problems
    assert "\n" not in str(problem) and problem.field == "(file name)"
