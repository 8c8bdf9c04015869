"""The root command: help that teaches, version, errors as one line with their exit code."""

from __future__ import annotations

import subprocess
import sys

from dr import __version__


def run_dr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, check=False
    )


def test_help_lists_every_noun() -> None:
    out = run_dr("--help")
    assert out.returncode == 0
    for noun in ("inventory", "catalog", "plan", "runbook", "run", "store", "demo"):
        assert noun in out.stdout


def test_version() -> None:
    out = run_dr("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"dr {__version__}"


def test_missing_workspace_is_one_line_and_exit_5(tmp_path) -> None:
    import os

    env = dict(os.environ, DR_WORKSPACE=str(tmp_path / "none"))
    out = run_dr("inventory", "show", env=env)
    assert out.returncode == 5, out.stderr
    assert "Traceback" not in out.stderr
    assert "no dr workspace" in out.stderr
    assert "dr init" in out.stderr


def test_shell_completion_completes_commands_and_subcommands() -> None:
    """The CLI library's own completion is on (`dr --install-completion`): the bash protocol
    answers with the commands that match what was typed."""
    import os
    import subprocess
    import sys

    def complete(words: str) -> list[str]:
        cword = len(words.split(" ")) - 1  # the word being completed, maybe still empty
        env = {**os.environ, "_DR_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(cword)}  # fmt: skip
        out = subprocess.run([sys.executable, "-m", "dr"], env=env, capture_output=True,
                             text=True, check=False)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert complete("dr dri") == ["drill"]
    assert set(complete("dr drill ")) >= {"due", "run", "tick", "history"}
    assert complete("dr report a") == ["audit"]
