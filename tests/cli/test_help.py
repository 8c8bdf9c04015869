"""`--help` teaches: every command has an example; parameters are named as a command line
names them (no `<bool>` beside a flag, no `<list[str]>`, no `{plan_file}`); no feature codes."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from dr.cli import app


def _commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(get_command(app), [])
    return found


COMMANDS = _commands()


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_helps_with_an_example_and_plain_metavars(path: list[str]) -> None:
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"}, prog_name="dr")
    assert shown.exit_code == 0, shown.output
    text = shown.output
    example = re.search(r"Example[^:\n]*:[^\n]*\bdr\b", text)
    assert example, f"dr {' '.join(path)} --help shows no example"
    for wrong in ("<bool>", "<list[", "<str>", "<path>", "<int>"):
        assert wrong not in text, f"{wrong} in dr {' '.join(path)} --help"
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage
    assert not re.search(r"\((?:A|B|C|D|E)\d+\)", text), "a feature code in the help"


def test_a_group_speaks_of_what_it_does_not_of_feature_codes() -> None:
    shown = CliRunner().invoke(app, ["plan", "--help"], env={"COLUMNS": "120"}, prog_name="dr")
    assert shown.exit_code == 0
    assert "Recover deleted messages:" in shown.output
    assert not re.search(r"\b[A-E]\d\b", shown.output)
