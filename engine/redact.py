"""Redaction at the engine's output boundary: secrets never reach the journal, a log or a screen.

Two sources of secrets are covered:

* values the run knows (fetched from the environment for the steps that name them), replaced
  wherever they appear, longest first so that a secret containing another is hidden whole;
* shapes that carry a secret whatever its value: ``password=...``, ``-Password ...``,
  ``ConvertTo-SecureString '...'``. These catch secrets the run was never told about, e.g. a
  password a tool echoes back.

Everything the engine stores or shows (command output, messages, rendered commands) passes
through a :class:`Redactor` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MARK = "[redacted]"

_QUOTED_OR_WORD = r"""('(?:[^']|'')*'|"[^"]*"|[^\s;,&|]+)"""

_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?i)(\b(?:password|passwd|pwd|secret|passphrase)\s*[=:]\s*)" + _QUOTED_OR_WORD),
    re.compile(r"(?i)((?<![\w-])-\w*password\w*\s+)" + _QUOTED_OR_WORD),
    re.compile(
        r"(?i)(ConvertTo-SecureString\s+(?:-String\s+)?)" + _QUOTED_OR_WORD,
    ),
)


class Redactor:
    """Replaces known secret values and secret-shaped text with ``[redacted]``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = sorted({v for v in values if v}, key=len, reverse=True)

    def with_values(self, values: Iterable[str]) -> Redactor:
        """A redactor that also hides ``values`` (the run's secrets grow as steps fetch them)."""
        return Redactor([*self._values, *values])

    def text(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MARK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MARK, text)
        return text

    def data(self, data: bytes) -> bytes:
        """Redact bytes as text; undecodable bytes survive unchanged (surrogateescape)."""
        if not data:
            return data
        text = data.decode("utf-8", errors="surrogateescape")
        return self.text(text).encode("utf-8", errors="surrogateescape")
