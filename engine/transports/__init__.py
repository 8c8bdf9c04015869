"""Transports: how the engine reaches a host. ``open_transport(spec)`` picks one by kind.

Specs are plain dicts (from the run's host table or the lab), never holding a password::

    {"kind": "local"}
    {"kind": "winrm", "host": "ex2003.corp.example", "auth": "ntlm", ...}
    {"kind": "dry-run", "host": "EX2003", "recorder": Recorder()}

Each backend is imported only when asked for, so ``dr --help`` does not load pywinrm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import TransportConfigError
from engine.transports.base import Command, Result, Transport

__all__ = ["KINDS", "Command", "Result", "Transport", "open_transport"]

KINDS = ("local", "winrm", "dry-run")


def open_transport(
    spec: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> Transport:
    """A transport for ``spec``; ``env`` and ``prompt`` feed the credential lookup."""
    kind = spec.get("kind")
    rest = {k: v for k, v in spec.items() if k != "kind"}
    if kind == "local":
        return _local(rest)
    if kind == "winrm":
        return _winrm(rest, env, prompt)
    if kind == "dry-run":
        from engine.transports.dryrun import DryRunTransport

        return DryRunTransport.from_spec(dict(spec))
    raise TransportConfigError(
        f"unknown transport kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}"
    )


def _local(rest: Mapping[str, Any]) -> Transport:
    from engine.transports.local import LocalTransport

    unknown = sorted(set(rest) - {"host"})
    if unknown:
        raise TransportConfigError(f"local transport: unknown field {unknown[0]!r}")
    return LocalTransport()


def _winrm(
    rest: Mapping[str, Any],
    env: Mapping[str, str] | None,
    prompt: Callable[[str], str] | None,
) -> Transport:
    from engine.transports.credentials import resolve_credential
    from engine.transports.winrm import WinRMSettings, WinRMTransport

    settings = WinRMSettings.from_spec(dict(rest))
    credential = None
    if settings.needs_password:
        credential = resolve_credential(
            settings.host, username=settings.username, env=env, prompt=prompt
        )
    return WinRMTransport(settings, credential)
