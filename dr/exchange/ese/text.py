"""Headers printed the way ``eseutil /mh`` and ``/mk`` print them, per Exchange version
(``/ml``: ``logtext``).

Labels, alignment and formats follow the ESE source (``dbdump.cxx`` ErrDUMPHeaderStandard,
``logdump.cxx`` ErrLGDumpCheckpoint / ErrDUMPLog / ErrLGDumpLog, ``eseutil.cxx``) and the
recorded Exchange samples: Exchange 2000 / 2003 print ``Log Required`` in decimal only,
times without milliseconds and the database time as ``high-low``; 2007 and 2010 add the
hex pair; 2016 and later add ``[Min. Req. Pre-Redo: …]`` and ``Log Consistent: … [Pre-Redo:
…]`` (a recorded Exchange 2013 dump, version 15.00, has neither). The text
is what ``dr.exchange.eseutil.parse_mh`` / ``parse_ml`` read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dr.exchange.ese.binary import database_header_bytes
from dr.exchange.ese.model import (
    BackupInfo,
    BackupKind,
    CheckpointHeader,
    DatabaseHeader,
    LgPos,
    LogTime,
    Signature,
    lgpos_text,
    time_text,
)

FAMILIES = (2000, 2003, 2007, 2010, 2013, 2016, 2019)
_BANNERS = {
    2000: ("Microsoft(R) Exchange Server Database Utilities", "6.0"),
    2003: ("Microsoft(R) Exchange Server Database Utilities", "6.5"),
    2007: ("Microsoft(R) Exchange Server Database Utilities", "08.01"),
    2010: ("Extensible Storage Engine Utilities for Microsoft(R) Exchange Server", "14.03"),
    2013: ("Extensible Storage Engine Utilities for Microsoft(R) Exchange Server", "15.00"),
    2016: ("Extensible Storage Engine Utilities for Microsoft(R) Exchange Server", "15.01"),
    2019: ("Extensible Storage Engine Utilities for Microsoft(R) Exchange Server", "15.02"),
}
DONE = "Operation completed successfully in 0.0 seconds."


@dataclass(frozen=True)
class Style:
    """What differs between eseutil builds."""

    family: int

    @property
    def legacy(self) -> bool:  # Exchange 2000 / 2003
        return self.family <= 2003

    @property
    def hex_ranges(self) -> bool:
        return self.family >= 2007

    @property
    def pre_redo(self) -> bool:  # absent from a recorded Exchange 2013 (15.00) dump
        return self.family >= 2016

    @property
    def millis(self) -> bool:
        return self.family >= 2010

    @property
    def log_digits(self) -> int:
        return 5 if self.legacy else 8


def style_for(family: int) -> Style:
    if family not in FAMILIES:
        raise ValueError(f"Exchange version {family} is not one of {FAMILIES}")
    return Style(family)


def banner(style: Style) -> list[str]:
    title, version = _BANNERS[style.family]
    return [
        "",
        title,
        f"Version {version}",
        "Copyright (C) Microsoft Corporation. All Rights Reserved.",
        "",
        "Initiating FILE DUMP mode...",
    ]


def sig_text(sig: Signature | None, style: Style) -> str:
    if sig is None:
        return (
            "Create time:00/00/1900 00:00:00"
            + (".000" if style.millis else "")
            + " Rand:0 Computer:"
        )
    return sig.text(millis=style.millis)


def _range(lo: int, hi: int, style: Style) -> str:
    return f"{lo}-{hi} (0x{lo:x}-0x{hi:x})" if style.hex_ranges else f"{lo}-{hi}"


# --------------------------------------------------------------------------- /mh


def mh_text(path_shown: str, h: DatabaseHeader, *, family: int, checksum: int | None = None) -> str:
    """``eseutil /mh`` output for header ``h`` of the database shown as ``path_shown``.

    ``checksum`` is the one stored in the file; by default, that of the bytes
    ``database_header_bytes(h)`` would write.
    """
    style = style_for(family)
    lines = [*banner(style), f"         Database: {path_shown}"]
    if h.streaming and style.legacy:
        lines.append(f"   Streaming File: {_stm_path(path_shown)}")
    lines.append("")
    if checksum is None:
        checksum = int.from_bytes(database_header_bytes(h)[:4], "little")
    if not style.legacy:
        lines += [
            "DATABASE HEADER:",
            "Checksum Information:",
            f"Expected Checksum: 0x{checksum:08x}",
            f"  Actual Checksum: 0x{checksum:08x}",
            "",
            "Fields:",
        ]
    lines += _mh_fields(h, style, checksum)
    lines += _mh_backups(h, style)
    lines += ["", DONE, ""]
    return "\n".join(lines)


def _stm_path(path: str) -> str:
    return re.sub(r"\.edb$", ".STM", path, flags=re.IGNORECASE)


def _mh_fields(h: DatabaseHeader, style: Style, checksum: int) -> list[str]:
    version = f"0x{h.format_version:x},{h.update_major}"
    lines = ["        File Type: Database"]
    if not style.legacy:
        lines.append(f"         Checksum: 0x{checksum:x}")
    lines += [
        "   Format ulMagic: 0x89abcdef",
        "   Engine ulMagic: 0x89abcdef",
        f" Format ulVersion: {version}",
        f" Engine ulVersion: {version}",
        f"Created ulVersion: 0x{h.create_version:x},{h.create_update}",
        f"     DB Signature: {sig_text(h.db_signature, style)}",
        f"         cbDbPage: {h.page_size}",
        f"           dbtime: {_dbtime(h.dbtime, style)}",
        f"            State: {h.state.text}",
        f"     Log Required: {_log_required(h, style)}",
    ]
    lines += _mh_generations(h, style)
    if style.legacy:
        lines.append(f"   Streaming File: {'Yes' if h.streaming else 'No'}")
    lines += [
        f"         Shadowed: {'Yes' if h.shadowed else 'No'}",
        f"       Last Objid: {h.last_objid}",
        f"     Scrub Dbtime: {_dbtime(0, style)}",
        f"       Scrub Date: {time_text(None, millis=style.millis)}",
        f"     Repair Count: {h.repair_count}",
        f"      Repair Date: {time_text(h.repair_time, millis=style.millis)}",
        _position("  Last Consistent", h.last_consistent, h.consistent_time, style),
        _position("      Last Attach", h.last_attach, h.attach_time, style),
        _position("      Last Detach", h.last_detach, h.detach_time, style),
        f"             Dbid: {h.dbid}",
        f"    Log Signature: {sig_text(h.log_signature, style)}",
        "       OS Version: ({}.{}.{} SP {})".format(*h.os_version),
    ]
    return lines


def _dbtime(value: int, style: Style) -> str:
    if style.legacy:
        return f"{value} ({value >> 32}-{value & 0xFFFFFFFF})"
    return f"{value} (0x{value:x})"


def _log_required(h: DatabaseHeader, style: Style) -> str:
    text = _range(h.gen_min_required, h.gen_max_required, style)
    if style.pre_redo:
        n = h.pre_redo_min_required
        text += f" [Min. Req. Pre-Redo: {n} (0x{n:x})]"
    return text


def _mh_generations(h: DatabaseHeader, style: Style) -> list[str]:
    if style.legacy:
        return []
    millis = style.millis
    lines = []
    if style.pre_redo:
        lines.append(
            f"Gen. Max. Req. Creation Time: {time_text(h.gen_max_required_time, millis=millis)}"
        )
    lines.append(f"    Log Committed: {_range(0, h.gen_max_committed, style)}")
    lines.append(f"   Log Recovering: {h.gen_recovering} (0x{h.gen_recovering:x})")
    if style.pre_redo:
        n, pre = h.gen_min_consistent, h.pre_redo_min_consistent
        lines.append(f"   Log Consistent: {n} (0x{n:x}) [Pre-Redo: {pre} (0x{pre:x})]")
    lines.append(f"  GenMax Creation: {time_text(h.gen_max_committed_time, millis=millis)}")
    return lines


def _position(label: str, pos: LgPos | None, when: LogTime | None, style: Style) -> str:
    return f"{label}: {lgpos_text(pos)}  {time_text(when, millis=style.millis)}"


def _mh_backups(h: DatabaseHeader, style: Style) -> list[str]:
    sections: list[tuple[str, BackupInfo | None]] = [
        ("Previous Full Backup", h.previous_full),
        ("Previous Incremental Backup", h.previous_incremental),
    ]
    if not style.legacy:
        sections += [
            ("Previous Copy Backup", h.previous_copy),
            ("Previous Differential Backup", h.previous_differential),
        ]
    sections += [("Current Full Backup", h.current_full)]
    sections += [("Current Shadow copy backup", h.current_snapshot)]
    lines: list[str] = []
    for title, info in sections:
        lines += ["", f"{title}:", *_backup_lines(info, style)]
    if not style.legacy:
        lines += [
            "",
            "     cpgUpgrade55Format: 0",
            "    cpgUpgradeFreePages: 0",
            "cpgUpgradeSpaceMapPages: 0",
        ]
    return lines


_KIND_SUFFIX = {
    BackupKind.NORMAL: "",
    BackupKind.OS_SNAPSHOT: " - OSSnapshot",
    BackupKind.SNAPSHOT: " - Snapshot",
}


def _backup_lines(info: BackupInfo | None, style: Style) -> list[str]:
    lo, hi = (info.gen_low, info.gen_high) if info else (0, 0)
    suffix = _KIND_SUFFIX[info.kind] if info else ""
    return [
        f"        Log Gen: {lo}-{hi} (0x{lo:x}-0x{hi:x}){suffix}",
        f"           Mark: {lgpos_text(info.mark if info else None)}",
        f"           Mark: {time_text(info.time if info else None, millis=style.millis)}",
    ]


# --------------------------------------------------------------------------- /mk


def mk_text(path_shown: str, h: CheckpointHeader, *, family: int) -> str:
    """``eseutil /mk`` output for checkpoint ``h`` shown as ``path_shown``."""
    style = style_for(family)
    millis = style.millis
    lines = [
        *banner(style),
        f"      Checkpoint file: {path_shown}",
        "",
        f"      LastFullBackupCheckpoint: {lgpos_text(h.last_full_backup_checkpoint)}",
        f"      Checkpoint: {lgpos_text(h.checkpoint)}",
        f"      DbConsistency: {lgpos_text(h.db_consistency)}",
        f"      FullBackup: {lgpos_text(h.full_backup)}",
        f"      FullBackup time: {time_text(h.full_backup_time, millis=millis)}",
        f"      IncBackup: {lgpos_text(h.incremental_backup)}",
        f"      IncBackup time: {time_text(h.incremental_backup_time, millis=millis)}",
        f"      Signature: {sig_text(h.signature, style)}",
        "",
        DONE,
        "",
    ]
    return "\n".join(lines)
