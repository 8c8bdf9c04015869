"""Turn PowerShell's CLIXML stderr into the plain text a person would have seen.

``powershell.exe`` run without a console (as WinRS runs it) serialises its error, warning,
verbose and progress records to stderr as CLIXML: a ``#< CLIXML`` line followed by one or
more ``<Objs>`` documents. Progress records ("Preparing modules for first use.") are noise
that appears even when a command succeeds, so they are dropped; the text of the other
streams is kept, with PowerShell's ``_xHHHH_`` escapes (UTF-16 code units, surrogate pairs
included) decoded. Anything that is not CLIXML passes through unchanged, and a document
that does not parse is kept raw rather than lost: stderr is evidence.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

__all__ = ["decode_clixml", "decode_stderr"]

MARKER = "#< CLIXML"
_OBJS = re.compile(r"<Objs\b.*?</Objs>", re.DOTALL)
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_PREFIX = {"warning": "WARNING: ", "verbose": "VERBOSE: ", "debug": "DEBUG: "}


def decode_stderr(data: bytes) -> bytes:
    """stderr bytes (UTF-8, possibly with a BOM) with every CLIXML block made plain."""
    text = data.decode("utf-8", errors="replace")
    if MARKER not in text:
        return data
    return decode_clixml(text).encode("utf-8")


def decode_clixml(text: str) -> str:
    """Replace each ``#< CLIXML`` block in ``text`` by the text of its records."""
    text = text.removeprefix("\ufeff")
    head, _, rest = text.partition(MARKER)
    parts = [head]
    cursor = 0
    for match in _OBJS.finditer(rest):
        parts.append(rest[cursor : match.start()].strip("\r\n"))
        parts.append(_objs_text(match.group(0)))
        cursor = match.end()
    parts.append(rest[cursor:].strip("\r\n"))
    return "".join(parts)


def _objs_text(document: str) -> str:
    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        return document
    lines = [_record_text(el) for el in root if _local(el.tag) == "S"]
    return "".join(lines)


def _record_text(element: ET.Element) -> str:
    stream = (element.get("S") or "").lower()
    return _PREFIX.get(stream, "") + unescape(element.text or "")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def unescape(value: str) -> str:
    """Decode ``_xHHHH_`` escapes; consecutive units may form a UTF-16 surrogate pair."""
    units = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
    return units.encode("utf-16", "surrogatepass").decode("utf-16", errors="replace")
