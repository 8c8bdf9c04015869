"""The JSON manifest: a list of runs, each with its artifacts (see docs/catalog.md).

Python's json module does not say where a value was written, so this reader runs the pure
Python scanner with an object hook that remembers each object's position. Errors can then
name the line of the record, and of the field when it sits on a line of its own.
"""

from __future__ import annotations

import bisect
import json
from json import decoder, scanner
from typing import Any

from dr.catalog.importers.records import RawRecord, RawRun
from dr.errors import ManifestError, Problem


class _Located(dict):  # type: ignore[type-arg]
    start: int = 0
    end: int = 0


class _Lines:
    def __init__(self, text: str) -> None:
        self.text = text
        self.breaks = [i for i, ch in enumerate(text) if ch == "\n"]

    def line(self, index: int) -> int:
        return bisect.bisect_left(self.breaks, index) + 1

    def field_lines(self, obj: _Located) -> dict[str, int]:
        found = {}
        for key in obj:
            at = self.text.find(json.dumps(key), obj.start, obj.end)
            if at >= 0:
                found[key] = self.line(at)
        return found


def _decoder() -> json.JSONDecoder:
    dec = json.JSONDecoder()

    def parse_object(s_and_end: tuple[str, int], *args: Any, **kwargs: Any) -> tuple[Any, int]:
        start = s_and_end[1] - 1
        pairs, end = decoder.JSONObject(s_and_end, *args, **kwargs)
        located = _Located(pairs)
        located.start, located.end = start, end
        return located, end

    dec.parse_object = parse_object  # type: ignore[assignment]
    dec.scan_once = scanner.py_make_scanner(dec)  # type: ignore[attr-defined]
    return dec


def read(text: str, file: str) -> list[RawRun]:
    lines = _Lines(text)
    try:
        data = _decoder().decode(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{file}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})",
            hint="fix the JSON syntax; nothing was imported",
        ) from exc
    runs = data.get("runs") if isinstance(data, dict) else data
    if not isinstance(runs, list):
        problem = Problem("expected a list of runs (or an object with a 'runs' list)", file, 1)
        raise ManifestError(f"{file}: not a dr manifest", problems=[problem])
    return [_run(item, index, lines, file) for index, item in enumerate(runs)]


def _record(obj: Any, lines: _Lines, file: str, what: str) -> RawRecord:
    if not isinstance(obj, _Located):
        line = 1
        raise ManifestError(
            f"{file}: {what} is not an object",
            problems=[Problem(f"{what} must be a JSON object", file, line)],
        )
    data = dict(obj)
    return RawRecord(data=data, line=lines.line(obj.start), field_lines=lines.field_lines(obj))


def _run(obj: Any, index: int, lines: _Lines, file: str) -> RawRun:
    record = _record(obj, lines, file, f"run {index + 1}")
    items = record.data.pop("artifacts", [])
    if not isinstance(items, list):
        line = record.line_of("artifacts")
        raise ManifestError(
            f"{file}:{line}: artifacts must be a list",
            problems=[Problem("must be a list of artifacts", file, line, field="artifacts")],
        )
    artifacts = [_record(a, lines, file, f"artifact {i + 1}") for i, a in enumerate(items)]
    return RawRun(record=record, artifacts=artifacts)
