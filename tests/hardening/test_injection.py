"""Every step kind of the library, every parameter, hostile values: refused or inert.

For each kind and variant, a step is rendered with benign values (the baseline), then once
per (parameter, hostile value) with that one parameter made hostile. A case is *inert* when
rendering refuses it (RenderError, one clear line) or when every interpreter reads the same
structure as with the benign value: the PowerShell / cmd / sh script, and the ``.cmd`` and
diskshadow files the VSS steps write. Anything else (another exception, a changed shape) is
an injection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from engine.errors import RenderError
from engine.plan import SecretRef, Step
from engine.render import RenderedStep, render_step
from engine.runbook import Library, StepKind, Variant
from tests.hardening import lexers

BENIGN: dict[str, Any] = {
    "administrative_group": "First Administrative Group",
    "after_gen": 5,
    "alone": True,
    "current_gen": 17,
    "authoritative": False,
    "backup_name": "dr-web",
    "backup_path": "C:\\dr-temp\\ca",
    "backup_type": "full",
    "chain": ["v-1", "v-2"],
    "components": ["Mailbox"],
    "database": "EX1/SG1/DB1",
    "db": "DB1",
    "db_path": "E:\\DB",
    "deleted_at": "2024-03-01T10:00:00",
    "dest": "C:\\dr-temp\\full",
    "dest_dir": "E:\\Restore",
    "domain": "corp.example",
    "domain_dn": "DC=corp,DC=example",
    "fqdn": "DC1.corp.example",
    "forest_roles": True,
    "increase": 100000,
    "host": "EX1",
    "display_name": "Jan Smith",
    "edb": "E:\\DB\\db1.edb",
    "expect_state": "Clean Shutdown",
    "expected": {"items": 10},
    "first_gen": 1,
    "forest": "recovery",
    "install_path": "C:\\Program Files\\Exchsrvr",
    "instructions": "Check the cabling",
    "items": ["Inbox"],
    "kms_path": "C:\\Program Files\\Exchsrvr\\KMSDATA",
    "last_gen": 16,
    "last_restore_set": True,
    "legacy_exchange_dn": "/o=Org/ou=First Administrative Group",
    "log_path": "F:\\Logs",
    "mailbox": "alice",
    "mailboxes": {"4052e44a-5198-55f1-9100-3366779e5a6f": "Alice"},
    "names": {"items": "Items"},
    "folders": ["E:\\DRStaging\\DB1", "E:\\DRTemp\\DB1"],
    "name": "RDB1",
    "objects": ["CN=alice,DC=corp,DC=example"],
    "organization": "Org",
    "path": "C:\\dr-temp\\SG1",
    "play_forward": True,
    "files": ["E:\\DB\\db1.edb", "E:\\DB\\db1.stm"],
    "staged": "T:\\DRStaging\\DB01",
    "bkf": "T:\\DRStaging\\SG\\run-1\\SG\\backup.bkf",
    "exclude": ["E00.log"],
    "edbs": ["E:\\DB\\db1.edb", "E:\\DB\\db2.edb"],
    "paths": ["E:\\DB\\db1.edb"],
    "prefix": "E00",
    "reason": "restore of SG1",
    "removed": "DC2",
    "removed_fqdn": "DC2.corp.example",
    "record": ["time"],
    "recovery_db": "RDB1",
    "requirements": ["4 GB"],
    "role": "exchange-admin",
    "round": 1,
    "server": "EX1",
    "service_pack": "SP2",
    "services": ["MSExchangeIS"],
    "sg": "SG1",
    "source": "C:\\dr-temp\\in",
    "source_server": "EX1",
    "stm": "E:\\DB\\db1.stm",
    "system_path": "F:\\System",
    "target_folder": "Recovered",
    "temp_folder": "C:\\dr-temp",
    "user": "alice",
    "version": "v-1",
    "versions": ["v-1"],
    "volumes": ["E", "F"],
    "windows_version": "2008",
}

# Appended to a benign text (so a path still looks like a path), or used alone.
PAYLOADS = [
    '" & calc.exe & rem "',
    "%COMSPEC%",
    "!PATH!",
    "'; Remove-Item C:\\ -Recurse #",
    "$(Remove-Item C:\\ -Recurse)",
    "`$env:PATH",
    "\u2018; calc.exe; \u2019",
    "\nexec C:\\evil.cmd",
    "\r\ncalc.exe",
    " & calc.exe | more ^ > x < y",
    '"; calc.exe; "',
    "\x00",
    "$(calc)`n; calc",
]


@dataclass
class Case:
    kind: str
    variant: int
    param: str
    value: Any


def hostile(benign: Any, payload: str) -> Any:
    """``payload`` appended to the benign text; a number or flag becomes the text ``1...``."""
    if isinstance(benign, str):
        return benign + payload
    if isinstance(benign, list) and benign and isinstance(benign[0], str):
        return [*benign[:-1], benign[-1] + payload]
    if isinstance(benign, dict):
        return {k: hostile(str(v), payload) for k, v in benign.items()}
    return "1" + payload


def _platform(variant: Variant) -> dict[str, str] | None:
    """A platform the variant's ``when:`` accepts (built from the conditions themselves)."""
    from engine.runbook import match_score

    platform = {key: _satisfying(value) for key, value in variant.when.items()}
    return platform if match_score(variant.when, platform) is not None else None


def _satisfying(value: object) -> str:
    if isinstance(value, list):
        return str(value[0])
    text = str(value).replace(" ", "")
    number = text.lstrip("<>=!")
    if text.startswith("<") and not text.startswith("<="):
        return str(int(number.split(".")[0]) - 1) if number.isdigit() else number
    if text.startswith(">") and not text.startswith(">="):
        return str(int(number) + 1) if number.isdigit() else number
    return number


def _step(kind: StepKind, variant: Variant, params: dict[str, Any]) -> Step | None:
    platform = _platform(variant)
    if platform is None:
        return None
    secrets = [SecretRef(name=n, location="vault") for n in variant.secrets]
    return Step(
        id="s1", kind=kind.name, host="EX1", params=params, platform=platform, secrets=secrets
    )


def _shapes(rendered: RenderedStep) -> dict[str, list[Any]]:
    shapes: dict[str, list[Any]] = {}
    for what in ("command", "verify", "idempotency"):
        cmd = getattr(rendered, what)
        if cmd is None:
            continue
        shapes[what] = lexers.shape_of(cmd.script, cmd.shell)
        if cmd.shell == "powershell":
            for name, lines in lexers.generated_files(cmd.script).items():
                reader = lexers.GENERATED[name]
                lex = lexers.cmd_shape if reader == "cmd" else lexers.diskshadow_shape
                shapes[f"{what} {name}"] = [lex(line) for line in lines]
    return shapes


def _variants(library: Library) -> list[tuple[StepKind, int, Variant]]:
    out = []
    for name in library.kinds():
        kind = library.kind(name)
        for i, variant in enumerate(kind.variants):
            if variant.action != "manual" and variant.action != "approval":
                out.append((kind, i, variant))
    return out


def _baseline(kind: StepKind, variant: Variant, step: Step, param: str) -> Any:
    """The shapes with ``param`` holding its benign text (None: even that is refused)."""
    plain = step.model_copy(update={"params": {**step.params, param: hostile(BENIGN[param], "")}})
    try:
        return _shapes(render_step(variant, plain, kind))
    except RenderError:
        return None


def run_cases() -> tuple[int, int, list[str]]:
    """(cases, inert, problems) over the whole built-in library."""
    library = Library.load()
    cases = inert = 0
    problems: list[str] = []
    for kind, index, variant in _variants(library):
        params = {p: BENIGN[p] for p in kind.params}
        step = _step(kind, variant, params)
        if step is None:
            problems.append(f"{kind.name}[{index}]: no test platform matches")
            continue
        for param in kind.params:
            base = _baseline(kind, variant, step, param)
            for payload in PAYLOADS:
                cases += 1
                bad = step.model_copy(
                    update={"params": {**params, param: hostile(BENIGN[param], payload)}}
                )
                try:
                    rendered = render_step(variant, bad, kind)
                except RenderError:
                    inert += 1
                    continue
                got = _shapes(rendered)
                if base is not None and got == base:
                    inert += 1
                else:
                    problems.append(f"{kind.name}[{index}] {param}={payload!r}")
    return cases, inert, problems


def test_every_kind_renders_with_benign_values() -> None:
    library = Library.load()
    for kind, _index, variant in _variants(library):
        step = _step(kind, variant, {p: BENIGN[p] for p in kind.params})
        assert step is not None, kind.name
        render_step(variant, step, kind)


def test_hostile_values_are_refused_or_inert_in_every_interpreter() -> None:
    cases, inert, problems = run_cases()
    print(f"\ninjection cases {cases} / inert {inert}")
    assert cases > 1000
    assert problems == []
    assert inert == cases


@pytest.mark.parametrize(
    ("kind", "param", "value"),
    [
        ("vss-backup", "log_path", 'F:\\Logs" & calc.exe & rem "'),
        ("vss-backup", "log_path", "F:\\%COMSPEC%"),
        ("vss-backup", "edb", 'E:\\DB\\x" & calc.exe & rem ".edb'),
        ("vss-backup", "dest", "C:\\dr-temp\\a\nexec C:\\evil.cmd"),
        ("vss-backup", "volumes", ["E", "F: alias x\nexec C:\\evil.cmd\nadd volume G"]),
        ("vss-backup", "backup_type", "full\nexec C:\\evil.cmd"),
        ("log-backup", "log_path", 'F:\\Logs" & calc.exe & rem "'),
        ("log-backup", "prefix", "E00 & calc.exe & rem"),
        ("log-backup", "dest", "C:\\dr-temp\\%TEMP%"),
        ("ntbackup-online", "sg", "SG1\r\nJET EX1\\Other"),
        ("dump-database-header", "edb", 'E:\\DB\\x.edb" /p "'),
    ],
)
def test_the_reported_backup_injections_are_refused(kind: str, param: str, value: Any) -> None:
    library = Library.load()
    step_kind = library.kind(kind)
    variant = step_kind.variants[0]
    params = {p: BENIGN[p] for p in step_kind.params}
    step = _step(step_kind, variant, {**params, param: value})
    assert step is not None
    with pytest.raises(RenderError) as info:
        render_step(variant, step, step_kind)
    assert "\n" not in str(info.value).strip()


def test_generated_cmd_file_quotes_each_path_for_cmd() -> None:
    library = Library.load()
    kind = library.kind("vss-backup")
    params = {p: BENIGN[p] for p in kind.params}
    params["log_path"] = "F:\\Exchange Logs & more (x86)"
    step = _step(kind, kind.variants[0], params)
    assert step is not None
    script = render_step(kind.variants[0], step, kind).command.script  # type: ignore[union-attr]
    copy = lexers.generated_files(script)["$copy"]
    assert copy[1].startswith('robocopy "Q:\\Exchange Logs & more (x86)" "C:\\dr-temp\\full" ')
    assert lexers.cmd_shape(copy[1])[:6] == ["word", "quote", "text", "quote", "quote", "text"]


def test_a_quote_in_a_dn_cannot_reach_ntdsutil() -> None:
    library = Library.load()
    kind = library.kind("authoritative-restore")
    variant = kind.variants[0]
    params = {"server": "DC1", "objects": ['CN=a" "quit" "activate instance evil']}
    step = _step(kind, variant, params)
    assert step is not None
    with pytest.raises(RenderError):
        render_step(variant, step, kind)


def test_native_arg_maps_over_a_list() -> None:
    """What the fix above relies on: jinja's map applies the filter to each item."""
    variant = Variant.model_validate(
        {"action": "powershell", "command": "$x = {{ objects | map('native_arg') | list }}"}
    )
    ok = Step(id="s", kind="k", host="h", params={"objects": ["CN=a,DC=b", "CN=c"]})
    assert render_step(variant, ok).command.script == "$x = @('CN=a,DC=b','CN=c')"  # type: ignore[union-attr]
    bad = Step(id="s", kind="k", host="h", params={"objects": ['CN=a" "quit']})
    with pytest.raises(RenderError):
        render_step(variant, bad)
