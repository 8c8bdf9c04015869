"""The JSON manifest, read one run at a time (see docs/catalog.md for the format).

A manifest is a list of runs, or ``{"format": ..., "runs": [...]}``. The reader walks the
top level itself and hands each run object to the C JSON decoder (``raw_decode``), so a
file of any size is read in bounded memory at the decoder's speed. Each run knows the line
it starts on. Only when a run has a problem is it decoded again by the pure-Python scanner
with an object hook that remembers positions, so the error can name the line of the very
field (and artifact) that is wrong.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from functools import partial
from json import decoder, scanner
from typing import Any

from dr.catalog.importers.records import RawRecord, RawRun
from dr.catalog.importers.source import Source
from dr.errors import ManifestError, Problem

_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()
#: A run object larger than this is not a run: stop reading and report the syntax error.
_MAX_RECORD = 16 << 20


def read(source: Source, file: str) -> Iterator[RawRun]:
    """Every run of the manifest, in file order."""
    scan = _Scanner(source, file)
    first = scan.peek()
    if first == "[":
        yield from _items(scan)
    elif first == "{":
        yield from _wrapped(scan)
    else:
        problem = Problem("expected a list of runs (or an object with a 'runs' list)", file, 1)
        raise ManifestError(f"{file}: not a dr manifest", problems=[problem])
    if scan.peek():
        raise scan.error("unexpected text after the end of the manifest")


class _Scanner:
    """The top level of the document: a buffer, a position in it, and the line there."""

    def __init__(self, source: Source, file: str) -> None:
        self.chunks = source.chunks()
        self.file = file
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False

    def more(self) -> bool:
        chunk = next(self.chunks, None)
        if chunk is None:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def peek(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            self.advance(_WS.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos : self.pos + 1]

    def expect(self, allowed: str, what: str) -> str:
        found = self.peek()
        if not found or found not in allowed:
            raise self.error(f"expected {what}")
        self.advance(self.pos + 1)
        return found

    def value(self) -> tuple[Any, int]:
        """The JSON value at the position and where it ends (the position is not moved)."""
        while True:
            try:
                found, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:
                    return found, end
            except json.JSONDecodeError as exc:
                if self.eof or len(self.buf) - self.pos > _MAX_RECORD:
                    raise self.error(f"not valid JSON ({exc.msg})", exc.pos) from exc
            except RecursionError:
                raise self.error("JSON nested too deeply to be a manifest") from None
            self.more()

    def error(self, message: str, at: int | None = None) -> ManifestError:
        at = self.pos if at is None else at
        line = self.line + self.buf.count("\n", self.pos, at)
        return ManifestError(
            f"{self.file}:{line}: {message}", hint="fix the JSON syntax; nothing was imported"
        )


def _items(scan: _Scanner) -> Iterator[RawRun]:
    scan.expect("[", "'['")
    if scan.peek() == "]":
        scan.advance(scan.pos + 1)
        return
    index = 0
    while True:
        scan.peek()
        found, end = scan.value()  # may refill the buffer: read the span after it
        span = _Span(scan.buf, scan.pos, end, scan.line)
        scan.advance(end)
        yield _run(found, index, span, scan.file)
        index += 1
        if scan.expect(",]", "',' or ']' after a run") == "]":
            return


def _wrapped(scan: _Scanner) -> Iterator[RawRun]:
    scan.expect("{", "'{'")
    found_runs = False
    while scan.peek() != "}":
        key, end = scan.value()
        if not isinstance(key, str):
            raise scan.error("expected a field name")
        scan.advance(end)
        scan.expect(":", "':'")
        if key == "runs" and scan.peek() == "[":
            found_runs = True
            yield from _items(scan)
        else:
            scan.peek()
            scan.advance(scan.value()[1])
        if scan.expect(",}", "',' or '}'") == "}":
            break
    else:
        scan.advance(scan.pos + 1)
    if not found_runs:
        problem = Problem("expected an object with a 'runs' list", scan.file, 1, field="runs")
        raise ManifestError(f"{scan.file}: not a dr manifest", problems=[problem])


class _Span:
    """Where a run's text is: enough to locate its fields later, without copying it now."""

    __slots__ = ("buf", "end", "line", "start")

    def __init__(self, buf: str, start: int, end: int, line: int) -> None:
        self.buf, self.start, self.end, self.line = buf, start, end, line


def _run(found: Any, index: int, span: _Span, file: str) -> RawRun:
    if not isinstance(found, dict):
        problem = Problem(f"run {index + 1} must be a JSON object", file, span.line)
        raise ManifestError(
            f"{file}:{span.line}: run {index + 1} is not an object", problems=[problem]
        )
    items = found.pop("artifacts", [])
    if not isinstance(items, list) or not all(isinstance(a, dict) for a in items):
        line = _field_line(span, "artifacts")
        problem = Problem("must be a list of artifact objects", file, line, field="artifacts")
        raise ManifestError(f"{file}:{line}: artifacts must be a list", problems=[problem])
    artifacts = [RawRecord(data=item, line=span.line) for item in items]
    return RawRun(RawRecord(data=found, line=span.line), artifacts, partial(_locate, span))


def _field_line(span: _Span, name: str) -> int:
    at = span.buf.find(json.dumps(name), span.start, span.end)
    return span.line + span.buf.count("\n", span.start, at) if at >= 0 else span.line


# -- locating fields, for error messages only ---------------------------------------------


class _Located(dict):  # type: ignore[type-arg]
    start: int = 0
    end: int = 0


def _located_decoder() -> json.JSONDecoder:
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


class _Lines:
    def __init__(self, text: str, first_line: int) -> None:
        self.text = text
        self.first_line = first_line
        self.breaks = [i for i, ch in enumerate(text) if ch == "\n"]

    def line(self, index: int) -> int:
        return self.first_line + bisect.bisect_left(self.breaks, index)

    def field_lines(self, obj: _Located) -> dict[str, int]:
        found = {}
        for key in obj:
            at = self.text.find(json.dumps(key), obj.start, obj.end)
            if at >= 0:
                found[key] = self.line(at)
        return found


def _locate(span: _Span, raw: RawRun) -> None:
    """Fill in the line of the run's fields and of each artifact and its fields."""
    text = span.buf[span.start : span.end]
    located = _located_decoder().decode(text)
    lines = _Lines(text, span.line)
    raw.record.field_lines = lines.field_lines(located)
    for record, item in zip(raw.artifacts, located.get("artifacts", []), strict=False):
        if isinstance(item, _Located):
            record.line = lines.line(item.start)
            record.field_lines = lines.field_lines(item)
