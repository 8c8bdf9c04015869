"""A small step library of posix commands, and plans built from it, for engine tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

LIBRARY = """
kinds:
  append-line:
    title: Append a line to a file
    params: [file, line]
    variants:
      - action: check
        shell: posix
        command: "echo {{ line }} >> {{ file }}"
        idempotency:
          command: "grep -qxF {{ line }} {{ file }}"
        timeout_seconds: 20
  echo:
    title: Print a text
    params: [text]
    variants:
      - action: check
        shell: posix
        command: "echo {{ text }}"
        timeout_seconds: 20
  flaky:
    title: Fails before it works
    params: [text]
    variants:
      - action: check
        shell: posix
        command: "flaky {{ text }}"
        retries: 2
        backoff_seconds: 0
        on_failure: pause
  fragile:
    title: Fails and stops the run
    variants:
      - action: check
        shell: posix
        command: "false"
        on_failure: abort
  verified:
    title: Checked afterwards
    params: [text]
    variants:
      - action: check
        shell: posix
        command: "echo {{ text }}"
        verify:
          command: "status-of {{ text }}"
          parser: regex
          patterns: ["State: (?P<state>.+)"]
          expect: {state: Clean Shutdown}
        on_failure: continue
  slow:
    title: Takes too long
    params: [seconds]
    variants:
      - action: check
        shell: posix
        command: "sleep {{ seconds }}"
        timeout_seconds: 0.3
        on_failure: continue
  with-secret:
    title: Uses a secret
    variants:
      - action: check
        shell: posix
        secrets: [dsrm-password]
        command: "echo the password is {{ secret('dsrm-password') }}"
  restart:
    title: Restart a host
    variants:
      - action: check
        shell: posix
        command: "reboot-now"
        reboot:
          services: [WinRM, NTDS]
          deadline_seconds: 1.5
  person:
    title: A person looks
    variants:
      - action: manual
        instructions: "Open the console and note what it says."
  wipe:
    title: Delete the files
    params: [file]
    variants:
      - action: check
        shell: posix
        destructive: true
        command: "rm -f {{ file }}"
"""


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "test.yaml").write_text(LIBRARY, encoding="utf-8")
    return lib


def make_plan(steps: list[dict[str, Any]]) -> Any:
    from engine.plan import Plan, Step, Target

    return Plan(
        scenario="test",
        target=Target(what="a test"),
        created_from="0" * 64,
        steps=[Step(**s) for s in steps],
    ).sealed()
