"""The wait between attempts is the runbook's ``backoff_seconds``, not a doubling of it."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from engine.executor import Executor


class _RecordingEvent(threading.Event):
    """An abort event that records how long each wait asked for instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


def test_every_retry_waits_the_runbook_backoff() -> None:
    event = _RecordingEvent()
    executor = SimpleNamespace(abort=event)
    spec = SimpleNamespace(backoff=120.0)
    for retry in range(3):
        assert Executor._backoff(executor, spec, retry) is False  # type: ignore[arg-type]
    assert event.waits == [120.0, 120.0, 120.0]
