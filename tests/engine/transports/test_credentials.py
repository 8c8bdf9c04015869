"""Credential sources: environment (per host, then global), keyring, prompt; never shown."""

from __future__ import annotations

import sys
import types

import pytest

from engine.errors import AuthenticationError
from engine.transports.credentials import Credential, env_names, resolve_credential


def test_per_host_variables_win_over_global_ones() -> None:
    env = {
        "DR_WINRM_EX_2003_CORP_USER": "corp\\dr",
        "DR_WINRM_EX_2003_CORP_PASSWORD": "host-pw",
        "DR_WINRM_USER": "other",
        "DR_WINRM_PASSWORD": "global-pw",
    }
    cred = resolve_credential("ex-2003.corp", env=env, interactive=False)
    assert (cred.username, cred.password) == ("corp\\dr", "host-pw")
    assert env_names("ex-2003.corp") == (
        "DR_WINRM_EX_2003_CORP_USER",
        "DR_WINRM_EX_2003_CORP_PASSWORD",
    )


def test_global_password_with_the_spec_user() -> None:
    cred = resolve_credential(
        "ex1", username="corp\\dr", env={"DR_WINRM_PASSWORD": "pw"}, interactive=False
    )
    assert (cred.username, cred.password, cred.source) == (
        "corp\\dr",
        "pw",
        "environment (DR_WINRM_PASSWORD)",
    )


def test_keyring_is_asked_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str | None]] = []

    def get_credential(service: str, user: str | None) -> object | None:
        asked.append((service, user))
        if service == "dr-winrm:ex1":
            return types.SimpleNamespace(username="corp\\dr", password="from-keyring")
        return None

    monkeypatch.setitem(
        sys.modules, "keyring", types.SimpleNamespace(get_credential=get_credential)
    )
    cred = resolve_credential("ex1", username="corp\\dr", env={}, interactive=False)
    assert (cred.password, cred.source) == ("from-keyring", "keyring")
    assert asked == [("dr-winrm:ex1", "corp\\dr")]


def test_prompt_only_when_interactive() -> None:
    cred = resolve_credential(
        "ex1", username="corp\\dr", env={}, interactive=True, prompt=lambda _: "typed"
    )
    assert (cred.password, cred.source) == ("typed", "prompt")


def test_nothing_found_names_the_variables_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)  # not installed
    with pytest.raises(AuthenticationError) as caught:
        resolve_credential("ex1", env={}, interactive=False)
    assert "DR_WINRM_EX1_PASSWORD" in (caught.value.hint or "")


def test_the_password_never_shows() -> None:
    cred = Credential("corp\\dr", "s3cr3t!")
    assert "s3cr3t!" not in repr(cred)
    assert "s3cr3t!" not in str(cred)
    assert "s3cr3t!" not in f"{cred!r} {cred}"
