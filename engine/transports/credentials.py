"""Where a WinRM password comes from: the environment, a keyring, or a person at a prompt.

Never from a YAML file in a repository, and never into a log: :class:`Credential` hides
the password from ``repr`` and ``str`` so an accidental ``log.debug(transport)`` or a
traceback's locals do not print it.

Lookup order for a host, first hit wins:

1. ``DR_WINRM_<HOST>_USER`` / ``DR_WINRM_<HOST>_PASSWORD`` (host upper-cased, every
   character that is not a letter or digit replaced by ``_``: ``ex-2003.corp`` →
   ``DR_WINRM_EX_2003_CORP_PASSWORD``);
2. ``DR_WINRM_USER`` / ``DR_WINRM_PASSWORD``;
3. the ``keyring`` package, if installed (service ``dr-winrm:<host>``, then ``dr-winrm``);
4. an interactive prompt, only when stdin is a terminal.

A user name given in the transport spec is used when the environment names none.
"""

from __future__ import annotations

import getpass
import importlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.errors import AuthenticationError

__all__ = ["Credential", "env_names", "resolve_credential"]

KEYRING_SERVICE = "dr-winrm"


@dataclass(frozen=True)
class Credential:
    """A user name and password; the password never appears in repr or str."""

    username: str
    password: str = field(repr=False)
    source: str = "given"

    def __str__(self) -> str:
        return f"{self.username} (password from {self.source})"


def env_names(host: str) -> tuple[str, str]:
    """The per-host environment variable names for a host's user and password."""
    token = re.sub(r"[^A-Za-z0-9]", "_", host).upper()
    return f"DR_WINRM_{token}_USER", f"DR_WINRM_{token}_PASSWORD"


def resolve_credential(
    host: str,
    *,
    username: str | None = None,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> Credential:
    """Find the credential for ``host`` (see the module docstring for the order)."""
    env = os.environ if env is None else env
    found = _from_env(host, username, env) or _from_keyring(host, _user(host, username, env))
    if found:
        return found
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if interactive:
        return _from_prompt(host, _user(host, username, env), prompt or getpass.getpass)
    user_var, pass_var = env_names(host)
    raise AuthenticationError(
        f"no WinRM credential for host {host}",
        hint=f"set {user_var} and {pass_var} (or DR_WINRM_USER and DR_WINRM_PASSWORD), "
        "store it with `keyring set dr-winrm:<host> <user>`, or run in a terminal to be asked",
        details={"host": host},
    )


def _user(host: str, username: str | None, env: Mapping[str, str]) -> str | None:
    user_var, _ = env_names(host)
    return env.get(user_var) or env.get("DR_WINRM_USER") or username


def _from_env(host: str, username: str | None, env: Mapping[str, str]) -> Credential | None:
    user_var, pass_var = env_names(host)
    for uvar, pvar in ((user_var, pass_var), ("DR_WINRM_USER", "DR_WINRM_PASSWORD")):
        password = env.get(pvar)
        user = env.get(uvar) or username
        if password is not None and user:
            return Credential(user, password, source=f"environment ({pvar})")
    return None


def _from_keyring(host: str, username: str | None) -> Credential | None:
    """Ask the optional ``keyring`` package; any keyring failure means "not found"."""
    try:
        keyring = importlib.import_module("keyring")
    except ImportError:
        return None
    for service in (f"{KEYRING_SERVICE}:{host}", KEYRING_SERVICE):
        try:
            found = keyring.get_credential(service, username)
        except Exception:  # a locked or broken keyring backend is not fatal here
            return None
        if found is not None and found.password is not None:
            return Credential(found.username or username or "", found.password, source="keyring")
    return None


def _from_prompt(host: str, username: str | None, prompt: Callable[[str], str]) -> Credential:
    user = username or input(f"WinRM user for {host}: ").strip()
    password = prompt(f"WinRM password for {user}@{host}: ")
    return Credential(user, password, source="prompt")
