"""``eseutil`` and ``robocopy`` on a lab Exchange host, over its real files.

eseutil answers in its own output format (research notes §1.4–§1.6; the ESE source's
``eseutil.cxx`` / ``dbdump.cxx``) and exits with the JET error number, as ``wmain`` does:

* ``/mh FILE`` — the database header from the bytes (:func:`dr.exchange.ese.mh_text`);
* ``/mk FILE`` — the checkpoint; ``/ml PREFIX|FILE`` — the log stream in the current folder
  (or one log): every file, missing generations and foreign signatures;
* ``/k FILE`` — page checksums (``N pages seen``, ``N bad checksums``);
* ``/r PREFIX /l LOGS /s SYSTEM /d DBDIR`` — soft recovery (:func:`dr.lab.exhost.recover`);
* ``/cc PATH [/t]`` — hard recovery; ``/cm PATH`` — ``restore.env`` shown (:mod:`dr.lab.legacy`).

robocopy copies through the host's file system, so a file a mounted store holds open is a
sharing violation ("ERROR 32 … being used by another process") and exit code 8, as on
Windows (robocopy's exit codes: 0 nothing copied, 1 copied, 8 and above failures); a file
that does not fit on a full destination drive is ``ERROR 112 (0x00000070)`` "There is not
enough space on the disk." (ERROR_DISK_FULL, learn.microsoft.com/windows/win32/debug/
system-error-codes--0-499-), exit code 8; a destination folder that cannot be created at
all is 16, nothing copied (learn.microsoft.com/windows-server/administration/
windows-commands/robocopy, exit codes).
"""

from __future__ import annotations

import fnmatch
import re
import time
from typing import TYPE_CHECKING, Any

from dr.exchange import ese
from dr.lab import exstore
from dr.lab.hostsim import _BANNER
from dr.lab.ps.fs import DISK_FULL, FsError, LockedError
from dr.lab.ps.fs import NotFoundError as FsNotFound

if TYPE_CHECKING:
    from dr.lab.exhost import ExchangeHost

__all__ = ["NATIVES"]


def _result(stdout: str, code: int) -> Any:
    from dr.lab.ps import NativeResult

    return NativeResult(stdout=stdout, exit_code=code)


def _cwd(host: ExchangeHost) -> str | None:
    return getattr(host, "native_cwd", None)


def _done(started: float) -> str:
    return f"Operation completed successfully in {time.monotonic() - started:.3f} seconds."


def _fail(err: exstore.RecoveryError, started: float) -> str:
    return f"{err.status_line} after {time.monotonic() - started:.3f} seconds."


def eseutil(argv: list[str], host: ExchangeHost, stdin: bytes = b"") -> Any:
    started = time.monotonic()
    if not argv:
        return _result(_BANNER + "\r\nUsage Error: No mode specified.\r\n", -1)
    mode, rest = argv[0].lower(), argv[1:]
    if mode not in _MODES:
        return _result(f"{_BANNER}\r\nUsage Error: Invalid mode ({argv[0]}).\r\n", -1)
    try:
        text = _MODES[mode](host, rest)
    except exstore.RecoveryError as err:
        return _result(f"{_BANNER}\r\n{_fail(err, started)}\r\n", err.code)
    except FileNotFoundError:
        return _result(f"{_BANNER}\r\nOperation terminated with error -1811 (JET_errFileNotFound, "
                       "File not found) after 0.02 seconds.\r\n", -1811)  # fmt: skip
    except LockedError:  # a mounted store holds the file open
        return _result(f"{_BANNER}\r\nOperation terminated with error -1032 "
                       "(JET_errFileAccessDenied, Cannot access file, the file is locked or in "
                       "use) after 0.02 seconds.\r\n", -1032)  # fmt: skip
    if mode in _COMPOSED:
        text = f"{text}\r\n{_done(started)}\r\n"
    failed = re.search(r"Operation terminated with error (-\d+)", text)
    return _result(text.replace("\r\n", "\n").replace("\n", "\r\n"),
                   int(failed.group(1)) if failed else 0)  # fmt: skip


def _path(host: ExchangeHost, text: str) -> Any:
    path = host.fs.host_path(text, _cwd(host))
    if not path.exists():
        raise FileNotFoundError(text)
    return path


def _mh(host: ExchangeHost, rest: list[str]) -> str:
    path = _path(host, rest[0])
    host.fs.check_unlocked(rest[0]) if hasattr(host.fs, "check_unlocked") else None
    header = exstore.read_db_header(path)
    return ese.mh_text(rest[0], header, family=host.version)


def _mk(host: ExchangeHost, rest: list[str]) -> str:
    header = ese.read_header(_path(host, rest[0]).read_bytes())
    assert isinstance(header, ese.CheckpointHeader)
    return ese.mk_text(rest[0], header, family=host.version)


def _ml(host: ExchangeHost, rest: list[str]) -> str:
    target = rest[0]
    folder = _cwd(host) or "C:\\"
    if target.lower().endswith(".log"):
        header = _log_header(_path(host, target))
        if header is None:
            raise exstore.corrupt_log(target)
        return ese.log_text(target, header, family=host.version, base_name=target[:3])
    base = host.fs.host_path(folder)
    logs = []
    for path in sorted(base.iterdir()):
        if path.name.lower().startswith(target.lower()) and path.suffix.lower() == ".log":
            logs.append((path.name, _log_header(path)))
    return ese.ml_text(folder, target, logs, family=host.version)


def _log_header(path: Any) -> ese.LogHeader | None:
    try:
        return exstore.read_log(path).header
    except exstore.RecoveryError:
        return None


def _k(host: ExchangeHost, rest: list[str]) -> str:
    seen, bad = exstore.check_pages(_path(host, rest[0]))
    lines = [_BANNER, "Initiating CHECKSUM mode...", f"        Database: {rest[0]}", "",
             f"{seen} pages seen", f"{len(bad)} bad checksums", "0 correctable checksums",
             "0 uninitialized pages", "0 wrong page numbers"]  # fmt: skip
    if bad:
        raise exstore.page_checksum(bad[0])
    return "\r\n".join(lines)


def _switches(rest: list[str]) -> tuple[list[str], dict[str, str]]:
    """eseutil's ``/l PATH`` or ``/lPATH`` forms; a bare switch maps to ''."""
    plain, found, i = [], {}, 0
    while i < len(rest):
        arg = rest[i]
        if arg.startswith("/") and len(arg) >= 2:
            key, value = arg[1].lower(), arg[2:]
            if not value and key in "lsd" and i + 1 < len(rest) and not rest[i + 1].startswith("/"):
                value, i = rest[i + 1], i + 1
            found[key] = value
        else:
            plain.append(arg)
        i += 1
    return plain, found


def _r(host: ExchangeHost, rest: list[str]) -> str:
    from dr.lab.exhost import recover

    plain, sw = _switches(rest)
    prefix = plain[0] if plain else ""
    cwd = _cwd(host) or "C:\\"
    logs, system, dbdir = sw.get("l") or cwd, sw.get("s") or cwd, sw.get("d") or cwd
    if "a" in sw:
        raise exstore.RecoveryError(-1, "JET_errInvalidParameter", "/a is not modelled by the lab")
    done = recover(host, prefix, logs, system, dbdir)
    return "\r\n".join([
        _BANNER, "Initiating RECOVERY mode...", f"    Logfile base name: {prefix}",
        f"            Log files: {logs}", f"         System files: {system}",
        f"   Database Directory: {dbdir}", "", "Performing soft recovery...",
        f"                      Restore Status (% complete)  {done or 'nothing to recover'}", "",
    ])  # fmt: skip


def _cc(host: ExchangeHost, rest: list[str]) -> str:
    """``/cc PATH [/t]`` (2000/2003 hard recovery, :func:`dr.lab.legacy.hard_recovery`)."""
    from dr.lab.legacy import hard_recovery

    plain, sw = _switches(rest)
    if host.version > 2003 or not plain:
        raise exstore.RecoveryError(-1, "JET_errInvalidParameter", "Invalid parameter",
                                    "/cc needs the restore folder (2000/2003)")  # fmt: skip
    forward = "t" not in sw
    done = hard_recovery(host, plain[0], play_forward=forward)
    return "\r\n".join([
        _BANNER, "Initiating RESTORE mode...", f"    Restore log file: {plain[0]}",
        f"    Play forward logs: {'yes' if forward else 'no (/t)'}", "",
        f"                      Restore Status (% complete)  {done or 'nothing to restore'}", "",
    ])  # fmt: skip


def _cm(host: ExchangeHost, rest: list[str]) -> str:
    """``/cm PATH``: what ``restore.env`` in the restore folder says (2000/2003), in
    eseutil 6.5's layout; no restore.env there is -1811, as after a hard recovery ended."""
    from dr.lab.legacy import describe_restore_env

    plain, _ = _switches(rest)
    if host.version > 2003:
        raise exstore.RecoveryError(-1, "JET_errInvalidParameter", "Invalid parameter",
                                    "/cm reads a 2000/2003 restore folder")  # fmt: skip
    folder = plain[0] if plain else (_cwd(host) or "C:\\")
    return "\r\n".join([_BANNER, *describe_restore_env(host, folder), ""])


_MODES = {"/mh": _mh, "/mk": _mk, "/ml": _ml, "/k": _k, "/r": _r, "/cc": _cc, "/cm": _cm}
_COMPOSED = {"/k", "/r", "/cc", "/cm"}  # the others print their own closing line


# -- robocopy ---------------------------------------------------------------------------------


def robocopy(argv: list[str], host: ExchangeHost, stdin: bytes = b"") -> Any:
    """``robocopy SOURCE DEST [FILE...] [options]``: the names after ``/XF`` and ``/XD`` are
    the option's values (files and folders left out), never file patterns to copy."""
    plain = _positional(argv)
    opts = [a.upper() for a in argv if a.startswith("/")]
    if len(plain) < 2:
        return _result("ERROR : Invalid Parameter #1 : source and destination required\r\n", 16)
    source, dest, patterns = plain[0], plain[1], plain[2:] or ["*.*"]
    excluded = _option_values(argv, "/XD")
    skipped = [name.lower() for name in _option_values(argv, "/XF")]
    listing = "/L" in opts
    lines, copied, failed = [], 0, 0
    if not listing and host.fs.exists(source):
        try:
            host.fs.mkdir(dest)  # robocopy creates the destination tree
        except FsError as exc:
            folder = dest.rstrip("\\")
            return _result(f"ERROR {_win32(exc)} Creating Destination Directory {folder}\\\r\n"
                           f"{exc.message}\r\n", 16)  # fmt: skip
    for rel in _candidates(host, source, patterns, "/E" in opts or "/S" in opts, excluded):
        if any(fnmatch.fnmatch(rel.rsplit(chr(92), 1)[-1].lower(), x) for x in skipped):
            continue
        src, dst = f"{source.rstrip(chr(92))}\\{rel}", f"{dest.rstrip(chr(92))}\\{rel}"
        if host.fs.exists(dst) and {"/XO", "/XN", "/XC"} & set(opts) >= {"/XO", "/XN", "/XC"}:
            continue
        if listing:
            lines.append(f"\t    New File  \t\t{host.fs.stat(src).size}\t{src}")
            continue
        try:
            folder = dst.rsplit("\\", 1)[0]
            if not host.fs.exists(folder):
                host.fs.mkdir(folder)  # /E and /S recreate the source's folders
            host.fs.copy(src, dst)
            copied += 1
        except Exception as exc:
            failed += 1
            lines.append(f"ERROR {_win32(exc)} Copying File {src}\r\n{exc}")
    code = (8 if failed else 0) | (1 if copied else 0)
    return _result("\r\n".join(lines) + ("\r\n" if lines else ""), code)


def _win32(exc: Exception) -> str:
    """The Win32 error robocopy names for a failed copy (ERROR_DISK_FULL 112,
    ERROR_PATH_NOT_FOUND 3, ERROR_FILE_NOT_FOUND 2, else ERROR_SHARING_VIOLATION 32)."""
    if isinstance(exc, FsError) and exc.message == DISK_FULL:
        return "112 (0x00000070)"
    if isinstance(exc, FsNotFound):
        return "3 (0x00000003)" if exc.kind == "DirectoryNotFoundException" else "2 (0x00000002)"
    return "32 (0x00000020)"


_LISTS = ("/XD", "/XF")  # options whose values are the words that follow them


def _positional(argv: list[str]) -> list[str]:
    """SOURCE, DEST and the file patterns: the words before any option taking a list."""
    out, taking = [], False
    for arg in argv:
        if arg.startswith("/"):
            taking = arg.upper() in _LISTS
        elif not taking:
            out.append(arg)
    return out


def _option_values(argv: list[str], option: str) -> list[str]:
    """The words after ``option`` up to the next option (``/XD DIR DIR``, ``/XF FILE``)."""
    out, taking = [], False
    for arg in argv:
        if arg.upper() == option:
            taking = True
        elif arg.startswith("/"):
            taking = False
        elif taking:
            out.append(arg.rstrip("\\").lower() if option == "/XD" else arg)
    return out


def _candidates(host: ExchangeHost, source: str, patterns: list[str], recurse: bool,
                excluded: list[str]) -> list[str]:  # fmt: skip
    base = host.fs.host_path(source)
    found = []
    for path in sorted(base.rglob("*") if recurse else base.glob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(base)
        windows = f"{source.rstrip(chr(92))}\\{chr(92).join(rel.parts)}".lower()
        if any(windows.startswith(x + "\\") for x in excluded):
            continue
        if any(fnmatch.fnmatch(path.name.lower(), p.lower().replace("*.*", "*")) for p in patterns):
            found.append("\\".join(rel.parts))
    return [f for f in found if not f.startswith(".lab")]


NATIVES = {"eseutil": eseutil, "robocopy": robocopy}
