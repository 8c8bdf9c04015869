"""``eseutil /ml`` output: one log's header (``/ml <file>``) or a whole stream (``/ml Enn``).

The walk follows ``logdump.cxx`` ErrDUMPLog / ErrLGDumpLog in basic verbosity: numbered logs
in generation order, then the current log; each ``Log file:`` line ends ``- OK`` or is
followed by the ESE error line; gaps are ``Missing log file(s)``; the first error is the
exit status. JET error numbers are those of ``jethdr.w``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dr.exchange.ese.model import LogHeader, lgpos_text, time_text
from dr.exchange.ese.text import DONE, Style, banner, sig_text, style_for

NO_DAMAGE = "No damaged log files were found."

_ERR_PREFIX = "                "  # logdump.cxx: "\n                ERROR: …" in basic verbosity
_JET = {
    -501: "JET_errLogFileCorrupt, Log file is corrupt",
    -513: "JET_errLogGenerationMismatch, Name of logfile does not match internal generation number",
    -528: "JET_errMissingLogFile, Current log file missing",
    -530: "JET_errBadLogSignature, Bad signature for a log file",
}


def log_text(path_shown: str, h: LogHeader, *, family: int, base_name: str = "E00") -> str:
    """``eseutil /ml <file>`` for one log: its header fields and the integrity line."""
    style = style_for(family)
    millis = style.millis
    major, minor, update = h.version
    lines = [
        *banner(style),
        f"      Base name: {base_name}",
        f"      Log file: {path_shown}",
        f"      lGeneration: {h.generation} (0x{h.generation:X})",
        f"      creation time: {time_text(h.created, millis=millis)}",
        f"      prev gen time: {time_text(h.previous_created, millis=millis)}",
        f"      Format LGVersion: ({major}.{minor}.{update}.{h.update_minor})",
        f"      Signature: {sig_text(h.signature, style)}",
        f"      Env Log Sec size: {h.sector_size}",
        f"      Using Reserved Log File: {'true' if h.reserve_log_in_use else 'false'}",
        f"      Circular Logging Flag (current file): {_on(h.circular_logging)}",
        f"      Circular Logging Flag (past files): {_on(h.circular_logging_history)}",
        f"      Checkpoint at log creation time: {lgpos_text(h.checkpoint)}",
        "",
        f"Integrity check passed for log file: {path_shown}",
        "",
        DONE,
        "",
    ]
    return "\n".join(lines)


def _on(flag: bool) -> str:
    return "on" if flag else "off"


@dataclass
class _Stream:
    """Walking a log stream as ErrDUMPLog does: what was printed and the first error."""

    folder: str
    prefix: str
    digits: int
    style: Style
    lines: list[str]
    error: int = 0
    previous: LogHeader | None = None  # the last header read with nothing wrong (adjacent)

    def fail(self, code: int) -> None:
        self.error = self.error or code
        self.previous = None

    def path(self, name: str) -> str:
        return f"{self.folder.rstrip(chr(92))}\\{name}" if self.folder else name

    def name(self, generation: int) -> str:
        return f"{generation:0{self.digits}X}"


def ml_text(
    log_folder: str, prefix: str, logs: list[tuple[str, LogHeader | None]], *, family: int
) -> str:
    """``eseutil /ml <prefix>`` run in ``log_folder`` over the files ``logs``.

    ``logs`` are (file name, header) pairs; a header of None is a file whose header cannot be
    read (reported as damaged, -501). Numbered logs are walked in generation order and the
    current log (``<prefix>.log``) last, as ESE does: a generation missing between two files
    is ``Missing log file(s)`` (-528), a numbered log whose header carries another generation
    is a mismatch (-513), a log whose signature differs from the one before it is a bad
    signature (-530), and a current log that does not follow the last numbered one is
    reported under it (-528).
    """
    style = style_for(family)
    numbered, current = _split_stream(prefix, logs)
    digits = _digits(numbered, style)
    out = [*banner(style), "", "Verifying log files...", f"     Base name: {prefix}", ""]
    stream = _Stream(log_folder, prefix, digits, style, out)
    for index, (generation, name, header) in enumerate(numbered):
        _numbered_log(stream, generation, name, header)
        following = numbered[index + 1][0] if index + 1 < len(numbered) else None
        if following is not None and following != generation + 1:
            _missing(stream, generation + 1, following - 1)
    if current is not None:
        _current_log(stream, *current)
    out += ["", _status(stream.error), ""] if stream.error else ["", NO_DAMAGE, "", DONE, ""]
    return "\n".join(out)


def _split_stream(
    prefix: str, logs: list[tuple[str, LogHeader | None]]
) -> tuple[list[tuple[int, str, LogHeader | None]], tuple[str, LogHeader | None] | None]:
    pattern = re.compile(
        rf"^{re.escape(prefix)}(?P<gen>[0-9A-Fa-f]{{5}}|[0-9A-Fa-f]{{8}})?\.log$", re.I
    )
    numbered: list[tuple[int, str, LogHeader | None]] = []
    current = None
    for name, header in logs:
        match = pattern.match(name)
        if not match:
            raise ValueError(f"{name!r} is not a log file of the stream {prefix!r}")
        if match["gen"] is None:
            current = (name, header)
        else:
            numbered.append((int(match["gen"], 16), name, header))
    return sorted(numbered, key=lambda item: item[0]), current


def _digits(numbered: list[tuple[int, str, LogHeader | None]], style: Style) -> int:
    for _gen, name, _header in numbered:
        return len(name.rsplit(".", 1)[0]) - 3
    return style.log_digits


def _numbered_log(stream: _Stream, generation: int, name: str, header: LogHeader | None) -> None:
    line = f"      Log file: {stream.path(name)}"
    if header is None:
        stream.lines += [line, f"{_ERR_PREFIX}ERROR: Cannot read log file header. Error -501."]
        stream.fail(-501)
        return
    if _bad_signature(stream, line, header):
        return
    if header.generation != generation:
        g, e = header.generation, generation
        stream.lines += [
            line,
            f"{_ERR_PREFIX}ERROR: Mismatched log generation {g} (0x{g:X}) with log file name. "
            f"Expected generation {e} (0x{e:X}).",
        ]
        stream.fail(-513)
        return
    stream.lines.append(line + " - OK")
    stream.previous = header


def _bad_signature(stream: _Stream, line: str, header: LogHeader) -> bool:
    expected = stream.previous
    if expected is None or expected.signature == header.signature:
        return False
    stream.lines += [
        line,
        f"{_ERR_PREFIX}ERROR: Invalid log signature: {sig_text(header.signature, stream.style)}",
        f"{' ' * 26}Expected signature: {sig_text(expected.signature, stream.style)}",
    ]
    stream.fail(-530)
    return True


def _missing(stream: _Stream, first: int, last: int) -> None:
    if first == last:
        stream.lines.append(f"      Missing log file: {stream.prefix}{stream.name(first)}.log")
    else:
        first_name, last_name = stream.name(first), stream.name(last)
        stream.lines.append(
            f"      Missing log files: {stream.prefix}{{{first_name} - {last_name}}}.log"
        )
    stream.fail(-528)


def _current_log(stream: _Stream, name: str, header: LogHeader | None) -> None:
    line = f"      Log file: {stream.path(name)}"
    previous = stream.previous
    if header is None:
        stream.lines += [line, f"{_ERR_PREFIX}ERROR: Cannot read log file header. Error -501."]
        stream.fail(-501)
        return
    if previous is not None and header.generation != previous.generation + 1:
        g, e = header.generation, previous.generation + 1
        stream.lines += [
            line,
            f"{_ERR_PREFIX}ERROR: Missing log file(s). Log file is generation {g} (0x{g:X}), "
            f"but expected generation is {e} (0x{e:X}).",
        ]
        stream.fail(-528)
        return
    if _bad_signature(stream, line, header):
        return
    stream.lines.append(line + " - OK")


def _status(error: int) -> str:
    return f"Operation terminated with error {error} ({_JET[error]}) after 0.0 seconds."
