"""Where the repository passphrase comes from: a flag, the environment, a file, a command,
or a person at a terminal — in that order, the first that gives one (docs/store.md).

Kept apart from :mod:`dr.store.keyfile` (which needs ``cryptography``) so that the entry
point can record ``--password-file`` on every command without loading it.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from dr.errors import ParameterError

PASSPHRASE_ENV = "DR_PASSPHRASE"
PASSWORD_FILE_ENV = "DR_PASSWORD_FILE"
PASSWORD_COMMAND_ENV = "DR_PASSWORD_COMMAND"
# What a run step that declares the secret `repository-passphrase` receives (engine.render).
STEP_PASSPHRASE_ENV = "DR_SECRET_REPOSITORY_PASSPHRASE"

_flag_file: Path | None = None


@dataclass(frozen=True)
class Passphrase:
    """A passphrase and where it came from (named in a wrong-passphrase error); the value
    stays out of ``repr``, so a log line or a traceback cannot show it."""

    value: str = field(repr=False)
    origin: str


def use_password_file(path: Path | None) -> None:
    """Record ``dr --password-file PATH``: the first place the passphrase is read from.

    A process-wide setting, like the environment variables it outranks: the entry point
    sets it once, and every repository the command opens (directly, or through a backup, a
    drill or the lab) reads the same passphrase."""
    global _flag_file
    _flag_file = path


def obtain_passphrase(*, confirm: bool = False) -> str:
    """The repository passphrase (:func:`find_passphrase` says from where)."""
    return find_passphrase(confirm=confirm).value


def find_passphrase(*, confirm: bool = False) -> Passphrase:
    """The repository passphrase, from the first of these that gives one:

    1. ``dr --password-file PATH``;
    2. ``$DR_PASSPHRASE`` (inside a run step, which gets no ``DR_PASSPHRASE`` unless it
       declares the secret: the declared ``repository-passphrase``,
       ``$DR_SECRET_REPOSITORY_PASSPHRASE``);
    3. ``$DR_PASSWORD_FILE``: a file's first line;
    4. ``$DR_PASSWORD_COMMAND``: the first line a command prints (split like a shell
       would, run without one);
    5. a prompt, only when standard input is a terminal (twice when creating a key).

    The value is never printed, logged or put in an error message.
    """
    if _flag_file is not None:
        where = f"--password-file {_flag_file}"
        return Passphrase(_from_file(_flag_file, where), where)
    for name in (PASSPHRASE_ENV, STEP_PASSPHRASE_ENV):
        if os.environ.get(name):
            return Passphrase(os.environ[name], f"${name}")
    if os.environ.get(PASSWORD_FILE_ENV):
        where = f"${PASSWORD_FILE_ENV} {os.environ[PASSWORD_FILE_ENV]}"
        return Passphrase(_from_file(Path(os.environ[PASSWORD_FILE_ENV]), where), where)
    if os.environ.get(PASSWORD_COMMAND_ENV):
        return _from_command(os.environ[PASSWORD_COMMAND_ENV])
    return Passphrase(_from_prompt(confirm), "the prompt")


_SOURCES_HINT = (
    f"set ${PASSPHRASE_ENV}, ${PASSWORD_FILE_ENV} (a file) or ${PASSWORD_COMMAND_ENV} "
    "(a command that prints it), or pass `dr --password-file PATH ...` (docs/store.md)"
)


def _first_line(text: str, where: str) -> str:
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise ParameterError(
            f"{where}: the first line is empty, so it gives no passphrase",
            hint="put the passphrase on the first line",
        )
    return lines[0]


def _from_file(path: Path, where: str) -> str:
    """The first line of ``path``, without its line ending."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(
            f"{where}: cannot read the passphrase file ({exc.strerror or exc})",
            hint="check the path and that this user may read it",
        ) from None
    except UnicodeDecodeError:
        raise ParameterError(f"{where}: not a text file (UTF-8)") from None
    return _first_line(text, where)


def _from_command(command: str) -> Passphrase:
    """The first line ``command`` prints on stdout. Its stderr reaches the terminal (a
    password manager may ask there); its stdout is never shown, even when it fails."""
    import shlex
    import subprocess

    try:
        args = shlex.split(command)
    except ValueError as exc:
        raise ParameterError(f"${PASSWORD_COMMAND_ENV}: cannot split the command ({exc})") from None
    if not args:
        raise ParameterError(f"${PASSWORD_COMMAND_ENV} is blank", hint=_SOURCES_HINT)
    where = f"${PASSWORD_COMMAND_ENV} ({args[0]})"
    try:
        done = subprocess.run(args, stdout=subprocess.PIPE, check=False)
    except OSError as exc:
        raise ParameterError(
            f"{where}: cannot run it ({exc.strerror or exc})",
            hint="give the program's full path, or put it on PATH",
        ) from None
    if done.returncode != 0:
        raise ParameterError(
            f"{where} failed with exit status {done.returncode}; nothing it printed is shown",
            hint="run the command yourself to see why",
        )
    return Passphrase(_first_line(done.stdout.decode("utf-8", errors="replace"), where), where)


def _from_prompt(confirm: bool) -> str:
    """Ask at the terminal; with no terminal to ask at, say where a passphrase can come from
    (a script that forgot one must not hang, nor read a passphrase from its input)."""
    import sys

    if sys.stdin is None or not sys.stdin.isatty():
        raise ParameterError(
            "no repository passphrase was given, and standard input is not a terminal to ask at",
            hint=_SOURCES_HINT,
        )
    first = getpass.getpass("Repository passphrase: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise ParameterError("the two passphrases differ; nothing was created")
    if not first:
        raise ParameterError("an empty passphrase is not allowed", hint=_SOURCES_HINT)
    return first


def export_for_steps() -> bool:
    """Set ``$DR_PASSPHRASE`` in this process from ``--password-file``,
    ``$DR_PASSWORD_FILE`` or ``$DR_PASSWORD_COMMAND`` when it is not set; True if it did.

    A run's store steps (fetch, check-chain) get the passphrase as the secret
    ``repository-passphrase``, which the engine reads from ``$DR_PASSPHRASE`` and hands only
    to the steps that declare it; its redactor hides the value of that variable in every
    output it keeps. Never a prompt here: without a configured source the run's check
    reports the missing secret as before."""
    configured = _flag_file is not None or any(
        os.environ.get(name) for name in (PASSWORD_FILE_ENV, PASSWORD_COMMAND_ENV)
    )
    if os.environ.get(PASSPHRASE_ENV) or not configured:
        return False
    os.environ[PASSPHRASE_ENV] = find_passphrase().value
    return True
