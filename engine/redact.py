"""Redaction at the engine's output boundary: secrets never reach the journal, a log or a screen.

Three sources of secrets are covered:

* every secret the dr process itself holds in its environment (``DR_PASSPHRASE``,
  ``DR_WINRM_PASSWORD``, ``DR_BACKUP_KEY``, ``DR_SECRET_*``, any variable whose name says
  password, passphrase, secret, token or key): a :class:`Redactor` starts with their values;
* values the run knows (fetched from the environment for the steps that name them), replaced
  wherever they appear, longest first so that a secret containing another is hidden whole;
* shapes that carry a secret whatever its value: ``password=...``, ``-Password ...``,
  ``ConvertTo-SecureString '...'``, ``DR_PASSPHRASE=...``. These catch secrets the run was
  never told about, e.g. a password a tool echoes back. (``PWD=`` is the working directory,
  not a password, and stays.)

Everything the engine stores or shows (command output, messages, rendered commands) passes
through a :class:`Redactor` first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MARK = "[redacted]"

_QUOTED_OR_WORD = r"""('(?:[^']|'')*'|"[^"]*"|[^\s;,&|]+)"""

# A name that holds a secret: ...password, ...passwd, ...passphrase, ...secret, ..._pwd,
# ..._key, ...token (DR_WINRM_PASSWORD, db_pwd, DR_BACKUP_KEY, api_token); not bare PWD.
_SECRET_NAME = r"(?:\w*(?:password|passwd|passphrase|secret|token)|\w+_(?:pwd|key))"
_SECRET_VAR = re.compile(rf"(?i)^(?:DR_SECRET_\w+|{_SECRET_NAME}|\w*_(?:password|secret)_\w*)$")
# Shorter values are too likely to be ordinary text to be replaced everywhere.
_MIN_PROCESS_SECRET = 4

_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"(?i)(\b{_SECRET_NAME}\s*[=:]\s*)" + _QUOTED_OR_WORD),
    re.compile(r"(?i)((?<![\w-])-\w*password\w*\s+)" + _QUOTED_OR_WORD),
    re.compile(
        r"(?i)(ConvertTo-SecureString\s+(?:-String\s+)?)" + _QUOTED_OR_WORD,
    ),
)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    return bool(_SECRET_VAR.match(name))


def process_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secret-named variables of this process's environment."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if is_secret_name(k) and len(v) >= _MIN_PROCESS_SECRET]


class Redactor:
    """Replaces known secret values and secret-shaped text with ``[redacted]``.

    It starts with the secrets of this process's environment (``environ``, by default
    ``os.environ``), so nothing dr itself holds can reach a stored output.
    """

    def __init__(
        self, values: Iterable[str] = (), environ: Mapping[str, str] | None = None
    ) -> None:
        known = [*values, *process_secrets(environ)]
        self._values = sorted({v for v in known if v}, key=len, reverse=True)

    def with_values(self, values: Iterable[str]) -> Redactor:
        """A redactor that also hides ``values`` (the run's secrets grow as steps fetch them)."""
        return Redactor([*self._values, *values], environ={})

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
