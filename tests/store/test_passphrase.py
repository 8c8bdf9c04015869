"""Where the repository passphrase comes from, in order: --password-file, $DR_PASSPHRASE,
$DR_PASSWORD_FILE, $DR_PASSWORD_COMMAND, a prompt at a terminal (and nowhere else)."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dr.errors import ParameterError
from dr.store import passphrase
from dr.store.passphrase import find_passphrase, obtain_passphrase, use_password_file

VARS = (
    "DR_PASSPHRASE",
    "DR_SECRET_REPOSITORY_PASSPHRASE",
    "DR_PASSWORD_FILE",
    "DR_PASSWORD_COMMAND",
)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    use_password_file(None)
    yield
    use_password_file(None)


def written(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def script(tmp_path: Path, body: str) -> str:
    """A command line running ``body`` with this Python (no shell involved)."""
    path = written(tmp_path, "cmd.py", body)
    return f"{sys.executable} {path}"


def test_each_source_outranks_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "command-ran"
    monkeypatch.setenv(
        "DR_PASSWORD_COMMAND",
        script(tmp_path, f"open({str(marker)!r}, 'w').close(); print('from-command')"),
    )
    monkeypatch.setenv("DR_PASSWORD_FILE", str(written(tmp_path, "env-file", "from-env-file\n")))
    monkeypatch.setenv("DR_PASSPHRASE", "from-env")
    use_password_file(written(tmp_path, "flag-file", "from-flag\n"))
    assert find_passphrase().origin.startswith("--password-file")
    assert obtain_passphrase() == "from-flag"
    use_password_file(None)
    assert obtain_passphrase() == "from-env"
    monkeypatch.delenv("DR_PASSPHRASE")
    assert obtain_passphrase() == "from-env-file"
    assert not marker.exists()  # a command is run only when nothing before it gave one
    monkeypatch.delenv("DR_PASSWORD_FILE")
    assert obtain_passphrase() == "from-command" and marker.exists()


def test_a_run_step_uses_its_declared_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_SECRET_REPOSITORY_PASSPHRASE", "from-step")
    assert obtain_passphrase() == "from-step"


def test_a_file_gives_its_first_line_without_the_line_ending(tmp_path: Path) -> None:
    use_password_file(written(tmp_path, "pw", "  spaces kept \r\nsecond line\n"))
    assert obtain_passphrase() == "  spaces kept "


@pytest.mark.parametrize("text", ["", "\n", "\nsecond line\n"])
def test_an_empty_first_line_is_refused(tmp_path: Path, text: str) -> None:
    use_password_file(written(tmp_path, "pw", text))
    with pytest.raises(ParameterError, match="first line is empty"):
        obtain_passphrase()


def test_an_unreadable_file_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ParameterError) as caught:
        obtain_passphrase()
    assert "$DR_PASSWORD_FILE" in caught.value.message and "missing" in caught.value.message


def test_a_command_is_split_not_given_to_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`;` and `$(...)` are plain arguments: nothing but the one program runs."""
    body = "import sys; print(' '.join(sys.argv[1:])); print('second line')"
    monkeypatch.setenv("DR_PASSWORD_COMMAND", script(tmp_path, body) + " 'a b' ; $(touch x)")
    monkeypatch.chdir(tmp_path)
    assert obtain_passphrase() == "a b ; $(touch x)"
    assert not (tmp_path / "x").exists()


def test_a_failing_command_is_named_and_its_output_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "print('hunter2-leaked'); raise SystemExit(3)"
    monkeypatch.setenv("DR_PASSWORD_COMMAND", script(tmp_path, body))
    with pytest.raises(ParameterError) as caught:
        obtain_passphrase()
    text = " ".join(caught.value.lines())
    assert "$DR_PASSWORD_COMMAND" in text and "exit status 3" in text
    assert sys.executable in text  # the program is named
    assert "hunter2-leaked" not in text + repr(caught.value.details)


def test_a_command_that_cannot_run_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_PASSWORD_COMMAND", "/nonexistent/pass-helper show dr")
    with pytest.raises(ParameterError, match=r"pass-helper.*cannot run it"):
        obtain_passphrase()


def test_without_a_terminal_there_is_no_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(passphrase.getpass, "getpass", lambda prompt: asked.append(prompt) or "x")
    monkeypatch.setattr(sys, "stdin", io.StringIO("piped-passphrase\n"))
    with pytest.raises(ParameterError) as caught:
        obtain_passphrase()
    assert "no repository passphrase was given" in caught.value.message
    hint = caught.value.hint or ""
    assert all(name in hint for name in ("DR_PASSPHRASE", "DR_PASSWORD_FILE", "--password-file"))
    assert asked == []  # neither asked nor read from the pipe


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_it_asks_twice_when_creating(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["typed", "typed"])
    monkeypatch.setattr(passphrase.getpass, "getpass", lambda prompt: next(answers))
    monkeypatch.setattr(sys, "stdin", _Terminal())
    found = find_passphrase(confirm=True)
    assert found.value == "typed" and found.origin == "the prompt"
    assert "typed" not in repr(found)
