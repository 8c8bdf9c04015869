"""ConvertTo-Json / ConvertFrom-Json as Windows PowerShell writes and reads JSON.

Windows PowerShell (3.0-5.1) serialises with JavaScriptSerializer: ``'``, ``<``, ``>`` and
``&`` are escaped as ``\\u0027``..., dates as ``"\\/Date(ms)\\/"``, and the indented form
uses four spaces and two spaces after the colon. PowerShell 6+ escapes only what JSON
needs and writes ISO dates. Objects deeper than ``-Depth`` become their string form.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from dr.lab.ps.values import Hashtable, PSObject, to_str

__all__ = ["from_json", "to_json"]

_EPOCH = datetime(1970, 1, 1)


def to_json(value: Any, depth: int, compress: bool, legacy: bool) -> str:
    tree = _plain(value, depth, legacy)
    if compress:
        text = json.dumps(tree, separators=(",", ":"), ensure_ascii=False)
    else:
        text = _indented(tree, 0, legacy)
    return _legacy_escape(text) if legacy else text


def _plain(value: Any, depth: int, legacy: bool) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        if legacy:
            return f"/Date({int((value - _EPOCH).total_seconds() * 1000)})/"
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        if depth < 0:
            return " ".join(to_str(v) for v in value)
        return [_plain(v, depth - 1, legacy) for v in value]
    if isinstance(value, PSObject | Hashtable):
        if depth < 0:
            return to_str(value)
        items = value.properties.items() if isinstance(value, PSObject) else value.items()
        return {to_str(k): _plain(v, depth - 1, legacy) for k, v in items}
    return to_str(value)


def _legacy_escape(text: str) -> str:
    out = text.replace("/Date(", "\\/Date(").replace(")/", ")\\/")
    for ch, code in (("'", "\\u0027"), ("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        out = out.replace(ch, code)
    return out


def _indented(value: Any, level: int, legacy: bool) -> str:
    pad = "    " * (level + 1)
    sep = ":  " if legacy else ": "
    if isinstance(value, dict):
        if not value:
            return "{\r\n\r\n" + "    " * level + "}" if legacy else "{}"
        rows = [f"{pad}{json.dumps(k, ensure_ascii=False)}{sep}{_indented(v, level + 1, legacy)}"
                for k, v in value.items()]  # fmt: skip
        return "{\r\n" + ",\r\n".join(rows) + "\r\n" + "    " * level + "}"
    if isinstance(value, list):
        if not value:
            return "[\r\n\r\n" + "    " * level + "]" if legacy else "[]"
        rows = [pad + _indented(v, level + 1, legacy) for v in value]
        return "[\r\n" + ",\r\n".join(rows) + "\r\n" + "    " * level + "]"
    return json.dumps(value, ensure_ascii=False)


def from_json(text: str) -> Any:
    return _ps(json.loads(text))


def _ps(value: Any) -> Any:
    if isinstance(value, dict):
        obj = PSObject()
        for key, item in value.items():
            obj.set(key, _ps(item))
        return obj
    if isinstance(value, list):
        return [_ps(v) for v in value]
    return value
