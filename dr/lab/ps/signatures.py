"""Cmdlet signatures (parameter sets, positions, aliases, pipeline input) for one host's versions.

Built from the data under ``dr/lab/data/cmdlets/``:

- ``core-cmdlets.json`` — Windows PowerShell cmdlets per documented version (PowerShell-Docs
  reference/3.0 … 7.7, and 2.0 syntax from the previous-versions pages). For a host's version the
  newest record at or below it is used; a 2.0 host without a 2.0 record gets the 3.0 record
  minus every parameter the 3.0 page says is new in 3.0.
- ``exchange-cmdlets.json`` — Exchange 2010 … 2019 cmdlets, each parameter filtered by its
  ``applicable`` line.
- ``exchange-2007.json`` — the Exchange 2007 pages that were found (syntax lines).
- ``extra-cmdlets.json`` — cmdlets outside the core data (Get-CimInstance, Get-Service, ...).

Common parameters follow ``common_parameters_by_powershell_version`` (2.0: eight; 4.0 adds
PipelineVariable; 5.0 adds InformationAction / InformationVariable) and about_CommonParameters
for their aliases; ProgressAction arrived in PowerShell 7.4.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from dr.lab.ps.versions import at_least, load, version_key

SWITCH_TYPES = ("SwitchParameter", "System.Management.Automation.SwitchParameter")

# about_CommonParameters: "The following list displays the common parameters. Their aliases
# are listed in parentheses."  (learn.microsoft.com, microsoft.powershell.core/about)
COMMON_ALIASES: dict[str, tuple[str, ...]] = {
    "Debug": ("db",),
    "ErrorAction": ("ea",),
    "ErrorVariable": ("ev",),
    "InformationAction": ("infa",),
    "InformationVariable": ("iv",),
    "OutVariable": ("ov",),
    "OutBuffer": ("ob",),
    "PipelineVariable": ("pv",),
    "ProgressAction": ("proga",),
    "Verbose": ("vb",),
    "WarningAction": ("wa",),
    "WarningVariable": ("wv",),
    "WhatIf": ("wi",),
    "Confirm": ("cf",),
}
_COMMON_TYPES = {
    "Debug": "System.Management.Automation.SwitchParameter",
    "Verbose": "System.Management.Automation.SwitchParameter",
    "OutBuffer": "System.Int32",
    "ErrorAction": "System.Management.Automation.ActionPreference",
    "WarningAction": "System.Management.Automation.ActionPreference",
    "InformationAction": "System.Management.Automation.ActionPreference",
    "ProgressAction": "System.Management.Automation.ActionPreference",
}

# Exchange versions whose management shell is Windows PowerShell based.
EXCHANGE_SHELL_VERSIONS = (2007, 2010, 2013, 2016, 2019)


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool = False
    position: int | None = None
    aliases: tuple[str, ...] = ()
    pipeline: frozenset[str] = frozenset()  # "value", "property"

    @property
    def switch(self) -> bool:
        return self.type in SWITCH_TYPES or self.type.endswith(".SwitchParameter")

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class ParamSet:
    name: str
    params: tuple[Param, ...]
    default: bool = False

    def get(self, name: str) -> Param | None:
        low = name.lower()
        return next((p for p in self.params if p.name.lower() == low), None)


@dataclass(frozen=True)
class Signature:
    """What one cmdlet accepts on one host. ``complete`` False: unknown names are not errors."""

    name: str
    sets: tuple[ParamSet, ...]
    common: tuple[Param, ...]
    exchange: bool = False
    complete: bool = True
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def all_params(self) -> list[Param]:
        seen: dict[str, Param] = {}
        for pset in self.sets:
            for p in pset.params:
                seen.setdefault(p.name.lower(), p)
        for p in self.common:
            seen.setdefault(p.name.lower(), p)
        return list(seen.values())


# --- common parameters -------------------------------------------------------------------


def common_parameters(ps_version: str | None) -> tuple[Param, ...]:
    """The common parameters of ``ps_version`` (None: Windows PowerShell 5.1)."""
    version = ps_version or "5.1"
    table = load("core-cmdlets.json")["common_parameters_by_powershell_version"]
    names = list(table["2.0"]["list"])
    for added_in in ("4.0", "5.0"):
        if at_least(version, added_in):
            names += table[added_in]["added"]
    if at_least(version, "7.4"):
        names.append("ProgressAction")
    return tuple(_common(n) for n in names)


def _common(name: str) -> Param:
    return Param(name, _COMMON_TYPES.get(name, "System.String"), aliases=COMMON_ALIASES[name])


# --- core cmdlets ------------------------------------------------------------------------


@cache
def _core_index() -> dict[str, dict[str, Any]]:
    return {c["name"].lower(): c for c in load("core-cmdlets.json")["cmdlets"]}


def core_min_version(record: dict[str, Any]) -> str:
    """The first version with the cmdlet ("<=2.0" counts as 2.0: 1.0 was not checked)."""
    return str(record["first_appeared"]["version"])


def core_signature(record: dict[str, Any], ps_version: str | None) -> Signature | None:
    version = ps_version or "5.1"
    if not at_least(version, core_min_version(record)):
        return None
    if record.get("windows_powershell_only") and at_least(version, "6"):
        return None
    documented = sorted(record["versions"], key=version_key)
    usable = [v for v in documented if version_key(v) <= version_key(version)]
    chosen = usable[-1] if usable else documented[0]
    sets = _core_sets(record, chosen, version)
    source = _source_text(record["versions"][chosen].get("source", {}))
    return Signature(record["name"], sets, common_parameters(version), source=source)


def _core_sets(record: dict[str, Any], chosen: str, version: str) -> tuple[ParamSet, ...]:
    entry = record["versions"][chosen]
    newer = _introduced_after(record, version)
    reference = _reference_params(record, chosen)
    dynamic = _dynamic_params(entry)
    sets = []
    for raw in entry["parameter_sets"]:
        params = _params_of(raw["parameters"], reference, newer)
        names = {p.name.lower() for p in params}
        params += [p for p in dynamic if p.name.lower() not in names and p.name not in newer]
        sets.append(ParamSet(raw["name"], tuple(params), bool(raw.get("is_default"))))
    return merge_sets(sets)


def merge_sets(sets: list[ParamSet]) -> tuple[ParamSet, ...]:
    """One set per name: pages print a set once per provider (Test-Path's FileSystem and
    Registry forms), and PowerShell has one set; a parameter is mandatory if every form has it
    and says so (a provider's own mandatory parameter, like WSMan's -ConnectionURI, is not).
    Sets left with the same parameters under different names are one set to the binder too."""
    by_name: dict[str, list[ParamSet]] = {}
    for pset in sets:
        by_name.setdefault(pset.name, []).append(pset)
    merged = [_merge(forms) for forms in by_name.values()]
    unique: dict[frozenset[tuple[str, bool, int | None]], ParamSet] = {}
    for pset in merged:
        key = frozenset((p.name.lower(), p.required, p.position) for p in pset.params)
        kept = unique.get(key)
        unique[key] = pset if kept is None else (pset if pset.default else kept)
    return tuple(unique.values())


def _merge(forms: list[ParamSet]) -> ParamSet:
    if len(forms) == 1:
        return forms[0]
    params: dict[str, Param] = {}
    for form in forms:
        for p in form.params:
            have = params.get(p.name.lower())
            if have is None or (have.required and not p.required):
                params[p.name.lower()] = p
    everywhere = set.intersection(*({p.name.lower() for p in f.params} for f in forms))
    merged = tuple(
        p if p.name.lower() in everywhere else replace(p, required=False) for p in params.values()
    )
    return ParamSet(forms[0].name, merged, any(f.default for f in forms))


def _introduced_after(record: dict[str, Any], version: str) -> set[str]:
    """Parameters a page says were introduced in a version newer than ``version``."""
    out = set()
    for name, hist in record.get("parameter_history", {}).items():
        said = hist.get("doc_says_introduced_in") or []
        if said and all(version_key(v) > version_key(version) for v in said):
            out.add(name)
    return out


def _reference_params(record: dict[str, Any], chosen: str) -> dict[str, dict[str, Any]]:
    """Aliases / pipeline facts from the next documented version, for records without them."""
    ordered = sorted(record["versions"], key=version_key)
    later = [v for v in ordered if version_key(v) > version_key(chosen)]
    ref: dict[str, dict[str, Any]] = {}
    for raw in record["versions"][later[0]]["parameter_sets"] if later else []:
        for p in raw["parameters"]:
            ref.setdefault(p["name"].lower(), p)
    return ref


def _dynamic_params(entry: dict[str, Any]) -> list[Param]:
    """Provider parameters (e.g. FileSystem -File) belong to every set."""
    dynamic = set(entry.get("provider_only_parameters", {}))
    found: dict[str, Param] = {}
    for raw in entry["parameter_sets"]:
        for p in raw["parameters"]:
            if p["name"] in dynamic and p["name"] not in found:
                found[p["name"]] = _param(p, {}, None)
    return list(found.values())


def _params_of(
    raw_params: list[dict[str, Any]], reference: dict[str, dict[str, Any]], newer: set[str]
) -> list[Param]:
    out, order = [], 0
    for raw in raw_params:
        if raw["name"] in newer:
            continue
        position = None
        if raw["position"] == "positional (order as in syntax)":
            position, order = order, order + 1
        out.append(_param(raw, reference.get(raw["name"].lower(), {}), position))
    return out


def _param(raw: dict[str, Any], ref: dict[str, Any], position: int | None) -> Param:
    pos = raw.get("position")
    if position is None and isinstance(pos, int):
        position = pos
    aliases = tuple(raw.get("aliases") or ref.get("aliases") or ())
    pipe = raw.get("accepts_pipeline") or ref.get("accepts_pipeline") or "False"
    return Param(
        raw["name"],
        str(raw.get("type") or "System.Object"),
        _required(raw),
        position,
        aliases,
        _pipeline_kinds(str(pipe)),
    )


def _required(raw: dict[str, Any]) -> bool:
    """Mandatory only where the PARAMETERS block and the SYNTAX block agree: a false
    "missing mandatory parameter" would reject a call the real host runs."""
    return bool(raw.get("required")) and raw.get("required_in_syntax_block", True) is not False


def _pipeline_kinds(text: str) -> frozenset[str]:
    low = text.lower()
    if not low.startswith("true"):
        return frozenset()
    kinds = {k for k, word in (("value", "byvalue"), ("property", "bypropertyname")) if word in low}
    return frozenset(kinds or {"value", "property"})


def _source_text(source: dict[str, Any]) -> str:
    if "url" in source:
        return str(source["url"])
    return f"{source.get('repo', '')} {source.get('path', '')}".strip()


# --- Exchange cmdlets --------------------------------------------------------------------


@cache
def _exchange_index() -> dict[str, dict[str, Any]]:
    return {c["name"].lower(): c for c in load("exchange-cmdlets.json")["cmdlets"]}


@cache
def _exchange_2007_index() -> dict[str, dict[str, Any]]:
    return {c["name"].lower(): c for c in load("exchange-2007.json")["cmdlets"]}


def exchange_snapin(exchange_version: int) -> str | None:
    """The Exchange Management Shell snap-in of ``exchange_version`` (see exchange-2007.json)."""
    table = load("exchange-2007.json")["snapins"]["by_version"]
    return table.get(str(exchange_version))


def exchange_signature(
    record: dict[str, Any], exchange_version: int | None, ps_version: str | None
) -> Signature | None:
    if exchange_version is None or exchange_version < 2010:
        return None
    label = f"Exchange Server {exchange_version}"
    if label not in record["applicable_versions"]:
        return None
    earlier = _earlier_blocks(record)
    sets = []
    for raw in record["parameter_sets"]:
        params = [
            _exchange_param(p)
            for p in raw["parameters"]
            if label in p.get("applicable", [])
            or _earlier_has(earlier, p["name"], raw["name"], label)
        ]
        sets.append(ParamSet(raw["name"], tuple(params), bool(raw.get("is_default"))))
    source = f"{record['source']['repo']} {record['source']['path']}"
    return Signature(
        record["name"], merge_sets(sets), common_parameters(ps_version), exchange=True,
        source=source,
    )  # fmt: skip


_EARLIER = re.compile(
    r"^-(\w+): the earlier revision .*? had per-version blocks (\[.*\]); the current"
)


def _earlier_blocks(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per-version blocks of the page's earlier revision (kept in ``source_disagreements``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for note in record.get("source_disagreements", []):
        match = _EARLIER.match(note)
        if match:
            out[match.group(1).lower()] = json.loads(match.group(2))
    return out


def _earlier_has(
    earlier: dict[str, list[dict[str, Any]]], param: str, set_name: str, label: str
) -> bool:
    """The earlier revision put ``param`` in ``set_name`` for this Exchange version."""
    for block in earlier.get(param.lower(), []):
        sets = block.get("parameter_sets", [])
        if label in block.get("applicable", []) and (set_name in sets or "(All)" in sets):
            return True
    return False


def _exchange_param(raw: dict[str, Any]) -> Param:
    pos = raw.get("position")
    return Param(
        raw["name"],
        str(raw.get("type") or "Object"),
        _required(raw),
        pos - 1 if isinstance(pos, int) else None,
        tuple(raw.get("aliases") or ()),
        _pipeline_kinds(str(raw.get("accepts_pipeline", "False"))),
    )


def exchange_2007_signature(record: dict[str, Any], ps_version: str | None) -> Signature:
    pipeline = {k.lower(): v for k, v in record.get("pipeline", {}).items()}
    positions = {k.lower(): v for k, v in record.get("positions", {}).items()}
    sets = []
    for i, line in enumerate(record["syntax"]):
        params = []
        for p in parse_syntax_line(line):
            how = pipeline.get(p.name.lower())
            kinds = _pipeline_kinds(f"True ({how})") if how else frozenset()
            pos = positions.get(p.name.lower())
            params.append(
                Param(
                    p.name,
                    p.type,
                    p.required,
                    pos - 1 if pos else p.position,
                    p.aliases,
                    kinds,
                )
            )
        sets.append(ParamSet(f"(2007 set {i + 1})", tuple(params), i == 0))
    return Signature(
        record["name"], tuple(sets), common_parameters(ps_version), exchange=True,
        source=record["url"],
    )  # fmt: skip


# --- syntax lines ------------------------------------------------------------------------

_SYNTAX_TOKEN = re.compile(
    r"\[\[-(?P<opos>\w+)\]\s*<(?P<opos_t>[^>]+)>\]"  # [[-Name] <T>]
    r"|\[-(?P<rpos>\w+)\]\s*<(?P<rpos_t>[^>]+)>"  # [-Name] <T>
    r"|\[-(?P<opt>\w+)(?:\s+(?P<opt_t>\[?<[^>]+>\]?|\{[^}]*\}))?\]"  # [-Name <T>] / [-Name]
    r"|-(?P<req>\w+)\s+(?P<req_t><[^>]+>|\{[^}]*\})"  # -Name <T>
)


def parse_syntax_line(line: str) -> list[Param]:
    """Parameters of one syntax line as Microsoft's pages print it (positions in order)."""
    params: list[Param] = []
    position = 0
    body = line.split(None, 1)[1] if " " in line.strip() else ""
    for m in _SYNTAX_TOKEN.finditer(body):
        if m.group("opos") or m.group("rpos"):
            name = m.group("opos") or m.group("rpos")
            typ = _syntax_type(m.group("opos_t") or m.group("rpos_t"))
            params.append(Param(name, typ, bool(m.group("rpos")), position))
            position += 1
        elif m.group("opt"):
            params.append(Param(m.group("opt"), _syntax_type(m.group("opt_t"))))
        elif m.group("req") and m.group("req") != "CommonParameters":
            params.append(Param(m.group("req"), _syntax_type(m.group("req_t")), True))
    return params


def _syntax_type(text: str | None) -> str:
    if text is None:
        return "System.Management.Automation.SwitchParameter"
    inner = text.strip("[]<> ")
    if inner.startswith("{"):
        return "System.Enum"
    return "System.Management.Automation.SwitchParameter" if "SwitchParameter" in inner else inner


# --- extra cmdlets -----------------------------------------------------------------------


@cache
def _extra_index() -> dict[str, dict[str, Any]]:
    return {c["name"].lower(): c for c in load("extra-cmdlets.json")["cmdlets"]}


def extra_signature(record: dict[str, Any], ps_version: str | None) -> Signature | None:
    version = ps_version or "5.1"
    if not at_least(version, record["first_version"]):
        return None
    recorded = sorted(record.get("syntax", {}), key=version_key)
    if not recorded:
        return Signature(record["name"], (), common_parameters(version), complete=False)
    usable = [v for v in recorded if version_key(v) <= version_key(version)] or recorded[:1]
    chosen = usable[-1]
    pipeline = {k.lower(): v for k, v in record.get("pipeline", {}).items()}
    sets = []
    for i, line in enumerate(record["syntax"][chosen]):
        params = tuple(
            Param(
                p.name, p.type, p.required, p.position, p.aliases,
                _pipeline_kinds(f"True ({pipeline[p.name.lower()]})")
                if p.name.lower() in pipeline else frozenset(),
            )
            for p in parse_syntax_line(line)
        )  # fmt: skip
        sets.append(ParamSet(f"(set {i + 1})", params, i == 0))
    exact = version_key(chosen) == version_key(version)
    return Signature(
        record["name"], tuple(sets), common_parameters(version), complete=exact,
        source=record["basis"],
    )  # fmt: skip


# --- lookup ------------------------------------------------------------------------------


def lookup_record(name: str) -> tuple[str, dict[str, Any]] | None:
    """``(kind, record)`` for a cmdlet name in any data file (case-insensitive)."""
    low = name.lower()
    for kind, index in (
        ("core", _core_index()),
        ("exchange", _exchange_index()),
        ("exchange2007", _exchange_2007_index()),
        ("extra", _extra_index()),
    ):
        if low in index:
            return kind, index[low]
    return None


def exchange_cmdlet_names() -> set[str]:
    return {n for n in _exchange_index()} | {n for n in _exchange_2007_index()} | _unverified()


def _unverified() -> set[str]:
    return {u["name"].lower() for u in load("exchange-2007.json")["unverified"]}


def signature(
    name: str, *, ps_version: str | None, exchange_version: int | None
) -> Signature | None:
    """The signature of cmdlet ``name`` on a host, or None if the host has no such cmdlet."""
    low = name.lower()
    if low in _core_index():
        return core_signature(_core_index()[low], ps_version)
    if low in _extra_index():
        return extra_signature(_extra_index()[low], ps_version)
    if exchange_version == 2007:
        record = _exchange_2007_index().get(low)
        return exchange_2007_signature(record, ps_version) if record else None
    if low in _exchange_index():
        return exchange_signature(_exchange_index()[low], exchange_version, ps_version)
    return None
