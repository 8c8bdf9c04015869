"""The file-system cmdlets (Microsoft.PowerShell.Management) over a host's FileSystem.

Errors carry Windows PowerShell's text, category and error id, e.g. a missing path is
"Cannot find path 'E:\\x' because it does not exist." (ObjectNotFound, PathNotFound); a
locked file gives the sharing-violation text of :mod:`dr.lab.ps.fs` — ``Copy-Item`` and
``Get-Content`` as is, ``Remove-Item`` after "Cannot remove item <path>: ", ``Move-Item``
without the path, as Windows words it for a failed rename.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import PureWindowsPath
from typing import Any

from dr.lab.ps.commands import Call
from dr.lab.ps.core import CORE, _interp, _p, _switch
from dr.lab.ps.fs import FileSystem, FsError, LockedError, has_wildcard, wildcard_match
from dr.lab.ps.values import PSObject, PSRuntimeError, enumerate_value, format_output, to_str

__all__ = ["item_object"]


def _fs(call: Call) -> FileSystem:
    return call.host.fs  # type: ignore[no-any-return]


def _cwd(call: Call) -> str:
    return _interp(call).cwd  # type: ignore[no-any-return]


def item_object(fs: FileSystem, full: str) -> PSObject:
    """A FileInfo / DirectoryInfo with the properties scripts read."""
    stat = fs.stat(full)
    win = PureWindowsPath(stat.path)
    name = win.name or stat.path
    kind = "System.IO.DirectoryInfo" if stat.is_dir else "System.IO.FileInfo"
    obj = PSObject.of(
        kind,
        Name=name,
        FullName=stat.path,
        LastWriteTime=stat.mtime,
        PSIsContainer=stat.is_dir,
        Extension=win.suffix,
        BaseName=win.stem if not stat.is_dir else name,
        Mode="d-----" if stat.is_dir else "-a----",
    )
    if not stat.is_dir:
        obj.set("Length", stat.size)
        obj.set("DirectoryName", str(win.parent))
    obj.text = stat.path
    return obj


def _not_found(call: Call, path: str) -> None:
    call.error(
        f"Cannot find path '{path}' because it does not exist.",
        category="ObjectNotFound",
        target=path,
    )


def _paths(call: Call, *, must_exist: bool = True) -> list[str]:
    """The full paths a -Path (wildcards) / -LiteralPath (none) / piped item names."""
    fs, cwd = _fs(call), _cwd(call)
    literal = _p(call, "LiteralPath")
    found: list[str] = []
    if literal is not None:
        for raw in (to_str(p) for p in enumerate_value(literal)):
            full = fs.full(raw, cwd)
            if fs.exists(full) or not must_exist:
                found.append(full)
            else:
                _not_found(call, full)
        return found
    raw_paths = [to_str(p) for p in enumerate_value(_p(call, "Path"))]
    raw_paths += [_piped_path(v) for v in call.input if _piped_path(v)]
    for raw in raw_paths or ([cwd] if must_exist else []):
        found.extend(_expand(call, raw, must_exist))
    return found


def _piped_path(value: Any) -> str:
    if isinstance(value, PSObject):
        return to_str(value.get("FullName") or value.get("Path") or "")
    return to_str(value)


def _expand(call: Call, raw: str, must_exist: bool) -> list[str]:
    fs, cwd = _fs(call), _cwd(call)
    if has_wildcard(raw):
        return fs.glob(fs.full(raw, cwd) if not has_wildcard(raw[:2]) else raw, cwd)
    full = fs.full(raw, cwd)
    if fs.exists(full) or not must_exist:
        return [full]
    _not_found(call, full)
    return []


def _what_if(call: Call, operation: str, target: str) -> bool:
    if _switch(call, "WhatIf"):
        _interp(call).write(
            "stdout", f'What if: Performing the operation "{operation}" on target "{target}".\r\n'
        )
        return True
    return False


def _fs_error(call: Call, exc: FsError, verb: str, path: str) -> None:
    if isinstance(exc, LockedError):
        texts = {
            "remove": (f"Cannot remove item {path}: {exc.message}", "WriteError"),
            "move": (
                "The process cannot access the file because it is being used by another process.",
                "WriteError",
            ),
            "read": (exc.message, "ReadError"),
        }
        message, category = texts.get(verb, (exc.message, "NotSpecified"))
        call.error(message, category=category, target=path)
        return
    call.error(exc.message, category="WriteError" if verb != "read" else "ReadError", target=path)


# --- queries ------------------------------------------------------------------------------


def test_path(call: Call) -> Iterator[Any]:
    fs, cwd = _fs(call), _cwd(call)
    kind = to_str(_p(call, "PathType", "Any")).lower()
    literal = _p(call, "LiteralPath")
    raws = enumerate_value(literal if literal is not None else _p(call, "Path"))
    for raw in (to_str(r) for r in raws):
        try:
            if literal is None and has_wildcard(raw):
                matches = fs.glob(fs.full(raw, cwd), cwd)
            else:
                full = fs.full(raw, cwd)
                matches = [full] if fs.exists(full) else []
        except FsError:
            matches = []
        if kind == "container":
            matches = [m for m in matches if fs.is_dir(m)]
        elif kind == "leaf":
            matches = [m for m in matches if not fs.is_dir(m)]
        yield bool(matches)


def get_item(call: Call) -> Iterator[Any]:
    for path in _paths(call):
        yield item_object(_fs(call), path)


def get_child_item(call: Call) -> Iterator[Any]:
    fs = _fs(call)
    recurse = _switch(call, "Recurse")
    filt, include = _p(call, "Filter"), enumerate_value(_p(call, "Include"))
    exclude = enumerate_value(_p(call, "Exclude"))
    for path in _paths(call):
        children = _children(fs, path, recurse)
        for child in children:
            name = child.rsplit("\\", 1)[1]
            if filt is not None and not wildcard_match(to_str(filt), name):
                continue
            if include and not any(wildcard_match(to_str(i), name) for i in include):
                continue
            if any(wildcard_match(to_str(e), name) for e in exclude):
                continue
            is_dir = fs.is_dir(child)
            if (_switch(call, "File") and is_dir) or (_switch(call, "Directory") and not is_dir):
                continue
            yield name if _switch(call, "Name") else item_object(fs, child)


def _children(fs: FileSystem, path: str, recurse: bool) -> list[str]:
    if not fs.is_dir(path):
        return [path]
    return fs.walk(path) if recurse else fs.listdir(path)


def _decode(data: bytes) -> str:
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", "replace")
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", "replace")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def get_content(call: Call) -> Iterator[Any]:
    fs = _fs(call)
    for path in _paths(call):
        try:
            text = _decode(fs.read_bytes(path))
        except FsError as exc:
            _fs_error(call, exc, "read", path)
            continue
        if _switch(call, "Raw"):
            yield text
            continue
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        count = _p(call, "TotalCount")
        yield from lines[: int(count)] if count is not None and int(count) >= 0 else lines


# --- writers ------------------------------------------------------------------------------

_ENCODINGS = {
    "ascii": ("ascii", b""),
    "utf8": ("utf-8", b"\xef\xbb\xbf"),
    "utf8bom": ("utf-8", b"\xef\xbb\xbf"),
    "utf8nobom": ("utf-8", b""),
    "unicode": ("utf-16-le", b"\xff\xfe"),
    "bigendianunicode": ("utf-16-be", b"\xfe\xff"),
    "utf32": ("utf-32-le", b"\xff\xfe\x00\x00"),
    "default": ("cp1252", b""),
    "oem": ("cp437", b""),
    "string": ("utf-16-le", b"\xff\xfe"),
}


def _encode(call: Call, text: str, default: str, append: bool) -> bytes:
    name = to_str(_p(call, "Encoding", default)).lower().replace("-", "")
    codec, bom = _ENCODINGS.get(name, ("utf-8", b""))
    return (b"" if append else bom) + text.encode(codec, "replace")


def _content_text(call: Call, values: list[Any]) -> str:
    if _switch(call, "NoNewline"):
        return "".join(to_str(v) for v in values)
    return "".join(to_str(v) + "\r\n" for v in values)


def _write_content(call: Call, append: bool) -> Iterator[Any]:
    fs = _fs(call)
    values = enumerate_value(_p(call, "Value")) if _p(call, "Value") is not None else call.input
    default = "Default" if _legacy(call) else "utf8NoBOM"
    for path in _paths(call, must_exist=False):
        if _what_if(call, "Set Content" if not append else "Add Content", f"Path: {path}"):
            continue
        add = append and fs.exists(path)
        try:
            fs.write_bytes(
                path, _encode(call, _content_text(call, values), default, add), append=add
            )
        except FsError as exc:
            _fs_error(call, exc, "write", path)
    yield from ()


def _legacy(call: Call) -> bool:
    return int((call.host.ps_version or "5.1").split(".")[0]) < 6


def set_content(call: Call) -> Iterator[Any]:
    return _write_content(call, append=False)


def add_content(call: Call) -> Iterator[Any]:
    return _write_content(call, append=True)


def out_file(call: Call) -> Iterator[Any]:
    fs = _fs(call)
    path = fs.full(to_str(_p(call, "FilePath") or _p(call, "LiteralPath")), _cwd(call))
    values = list(call.input) or enumerate_value(_p(call, "InputObject"))
    text = "".join(format_output(v) for v in values)
    append = _switch(call, "Append") and fs.exists(path)
    default = "Unicode" if _legacy(call) else "utf8NoBOM"
    try:
        fs.write_bytes(path, _encode(call, text, default, append), append=append)
    except FsError as exc:
        _fs_error(call, exc, "write", path)
    yield from ()


def new_item(call: Call) -> Iterator[Any]:
    fs, cwd = _fs(call), _cwd(call)
    kind = to_str(_p(call, "ItemType", "File")).lower()
    name = _p(call, "Name")
    bases = [to_str(p) for p in enumerate_value(_p(call, "Path"))] or [cwd]
    for base in bases:
        full = fs.full(base + ("\\" + to_str(name) if name is not None else ""), cwd)
        if _what_if(call, "Create " + ("Directory" if kind == "directory" else "File"), full):
            continue
        if fs.exists(full) and not _switch(call, "Force"):
            call.error(
                f"An item with the specified name {full} already exists.",
                category="ResourceExists",
                target=full,
            )
            continue
        try:
            yield _create(call, fs, full, kind)
        except FsError as exc:
            _fs_error(call, exc, "write", full)


def _create(call: Call, fs: FileSystem, full: str, kind: str) -> PSObject:
    if kind == "directory":
        fs.mkdir(full)
    elif kind == "file":
        if _switch(call, "Force"):
            fs.mkdir(str(PureWindowsPath(full).parent))
        fs.write_bytes(full, _encode(call, to_str(_p(call, "Value", "")), "Default", False))
    else:
        raise PSRuntimeError(
            f"dr lab: New-Item -ItemType {kind} is not supported", fqid="DrLabUnsupported"
        )
    return item_object(fs, full)


# --- copy, move, remove, rename -----------------------------------------------------------


def copy_item(call: Call) -> Iterator[Any]:
    fs, cwd = _fs(call), _cwd(call)
    dest = fs.full(to_str(_p(call, "Destination") or cwd), cwd)
    for source in _paths(call):
        target = _into(fs, source, dest)
        if _what_if(call, "Copy File", f"Item: {source} Destination: {target}"):
            continue
        try:
            _copy(call, fs, source, target)
        except FsError as exc:
            _fs_error(call, exc, "copy", source)
    yield from ()


def _into(fs: FileSystem, source: str, dest: str) -> str:
    """Copying or moving into an existing directory keeps the source's name."""
    if fs.is_dir(dest):
        return dest.rstrip("\\") + "\\" + source.rsplit("\\", 1)[1]
    return dest


def _copy(call: Call, fs: FileSystem, source: str, target: str) -> None:
    if target.lower() == source.lower():
        raise FsError(f"Cannot overwrite the item {source} with itself.")
    if target.lower().startswith(source.lower().rstrip("\\") + "\\"):
        raise FsError("The destination folder is a subfolder of the source folder.")
    if not fs.is_dir(source):
        fs.copy(source, target)
        return
    fs.mkdir(target)
    if not _switch(call, "Recurse"):
        return
    for child in fs.listdir(source):
        _copy(call, fs, child, target.rstrip("\\") + "\\" + child.rsplit("\\", 1)[1])


def move_item(call: Call) -> Iterator[Any]:
    fs, cwd = _fs(call), _cwd(call)
    dest = fs.full(to_str(_p(call, "Destination") or cwd), cwd)
    for source in _paths(call):
        target = _into(fs, source, dest)
        if _what_if(call, "Move File", f"Item: {source} Destination: {target}"):
            continue
        try:
            if _switch(call, "Force") and fs.exists(target) and not fs.is_dir(target):
                fs.remove(target)
            fs.move(source, target)
        except FsError as exc:
            _fs_error(call, exc, "move", source)
    yield from ()


def remove_item(call: Call) -> Iterator[Any]:
    fs = _fs(call)
    for path in _paths(call):
        if _what_if(call, "Remove " + ("Directory" if fs.is_dir(path) else "File"), path):
            continue
        if fs.is_dir(path) and fs.listdir(path) and not _switch(call, "Recurse"):
            call.error(
                "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is "
                "not available.",
                category="InvalidOperation",
                target=path,
            )
            continue
        try:
            fs.remove(path, recursive=True)
        except FsError as exc:
            _fs_error(call, exc, "remove", path)
    yield from ()


def rename_item(call: Call) -> Iterator[Any]:
    fs = _fs(call)
    new_name = to_str(_p(call, "NewName"))
    for path in _paths(call):
        target = str(PureWindowsPath(path).parent / new_name)
        try:
            fs.move(path, target)
        except FsError as exc:
            _fs_error(call, exc, "move", path)
    yield from ()


# --- paths --------------------------------------------------------------------------------


def join_path(call: Call) -> Iterator[Any]:
    children = [to_str(c) for c in enumerate_value(_p(call, "ChildPath"))]
    children += [to_str(c) for c in enumerate_value(_p(call, "AdditionalChildPath"))]
    for base in enumerate_value(_p(call, "Path")):
        result = to_str(base)
        for child in children:
            result = result.rstrip("\\/") + "\\" + child.lstrip("\\/") if child else result
        yield result


def split_path(call: Call) -> Iterator[Any]:
    for raw in (to_str(p) for p in enumerate_value(_p(call, "Path") or _p(call, "LiteralPath"))):
        win = PureWindowsPath(raw)
        if _switch(call, "Leaf"):
            yield win.name
        elif _switch(call, "Qualifier"):
            yield win.drive
        elif _switch(call, "NoQualifier"):
            yield raw[len(win.drive) :]
        else:
            parent = str(win.parent)
            yield "" if parent == raw else parent


def set_location(call: Call) -> Iterator[Any]:
    fs, interp = _fs(call), _interp(call)
    raw = to_str(_p(call, "LiteralPath") or _p(call, "Path") or fs.home)
    full = fs.full(raw, interp.cwd)
    if not fs.is_dir(full):
        _not_found(call, full)
    else:
        interp.cwd = full
    yield from ()


def get_location(call: Call) -> Iterator[Any]:
    yield PSObject.of("System.Management.Automation.PathInfo", Path=_cwd(call))


def get_file_hash(call: Call) -> Iterator[Any]:
    fs = _fs(call)
    algorithm = to_str(_p(call, "Algorithm", "SHA256")).upper()
    for path in _paths(call):
        try:
            data = fs.read_bytes(path)
        except FsError as exc:
            _fs_error(call, exc, "read", path)
            continue
        digest = hashlib.new(algorithm.replace("SHA", "sha").replace("MD5", "md5"), data)
        yield PSObject.of(
            "Microsoft.Powershell.Utility.FileHash",
            Algorithm=algorithm,
            Hash=digest.hexdigest().upper(),
            Path=path,
        )


for _name, _fn in {
    "Test-Path": test_path,
    "Get-Item": get_item,
    "Get-ChildItem": get_child_item,
    "Get-Content": get_content,
    "Set-Content": set_content,
    "Add-Content": add_content,
    "Out-File": out_file,
    "New-Item": new_item,
    "Copy-Item": copy_item,
    "Move-Item": move_item,
    "Remove-Item": remove_item,
    "Rename-Item": rename_item,
    "Join-Path": join_path,
    "Split-Path": split_path,
    "Set-Location": set_location,
    "Get-Location": get_location,
    "Get-FileHash": get_file_hash,
}.items():
    CORE[_name.lower()] = _fn


def drive_space(fs: Any) -> Iterator[tuple[str, int, int]]:
    """(letter, used, free) of each drive: free is the quota's rest, or a large disk."""
    for top in sorted(p for p in fs.root.iterdir() if p.is_dir() and len(p.name) == 1):
        letter = top.name.upper()
        free = fs.free(letter)
        yield letter, fs.used(letter), free if free is not None else _UNLIMITED


def get_psdrive(call: Call) -> Iterator[Any]:
    """The host's drives (FileSystem provider): Name, Root, Used, Free (quota or a large disk)."""
    fs = _fs(call)
    provider = to_str(_p(call, "PSProvider", "FileSystem")).lower()
    wanted = [to_str(n).upper() for n in enumerate_value(_p(call, "Name"))]
    if provider != "filesystem":
        return
    for letter, used, free in drive_space(fs):
        if wanted and letter not in wanted:
            continue
        yield PSObject.of(
            "System.Management.Automation.PSDriveInfo",
            Name=letter,
            Root=f"{letter}:\\",
            Used=used,
            Free=free,
            Provider="Microsoft.PowerShell.Core\\FileSystem",
        )


_UNLIMITED = 1 << 40  # a drive without a quota reports 1 TiB free

CORE["get-psdrive"] = get_psdrive
