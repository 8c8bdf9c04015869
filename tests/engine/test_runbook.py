"""The step library: every planner kind exists, renders on both families, uses only its params."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import jinja2.meta
import pytest

from engine.errors import LibraryError
from engine.plan import Step
from engine.render import render_step
from engine.runbook import Library, Verify, check_output, match_score

ROOT = Path(__file__).resolve().parents[2]
LEGACY = {"exchange": "2003", "windows": "2003"}
MODERN = {"exchange": "2016", "windows": "2016"}
# Kinds that exist for one family only (docs/runbooks.md, "Built-in kinds").
LEGACY_ONLY = {"hard-recovery", "restore-srs-database", "restore-kms-database"}
MODERN_ONLY = {
    "copy-database-files",
    "create-recovery-database",
    "reimport-certificates",
    "mailbox-restore-request",
    "remove-recovery-database",
    "remove-recovery-database-files",
}


def contract() -> dict[str, list[str]]:
    """docs/step-kinds.md's table: kind → params."""
    table: dict[str, list[str]] = {}
    for line in (ROOT / "docs" / "step-kinds.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            kind = cells[0].strip("`")
            table[kind] = re.findall(r"`([a-z_]+)`", cells[1])
    return table


def sample_value(param: str, kind: str) -> object:
    if param in ("chain", "versions", "paths", "objects", "services", "folders", "files",
                 "exclude", "edbs"):  # fmt: skip
        return ["one", "two"]
    if param == "mailboxes":
        return {"5de5f198-c699-5f01-a113-6645d09efa9d": "Alice"}
    if param == "names":
        return {"Alice": "Alice Doe", "Bob": "Bob Roe"}
    if param in ("first_gen", "last_gen", "after_gen"):
        return 42
    if param in ("authoritative", "last_restore_set", "alone", "forest_roles"):
        return True
    if param in ("increase", "round"):
        return 1
    if param == "expected":
        return {"Alice": 12, "Bob": 3}
    if param == "prefix":
        return "E01"
    return f"{kind}-{param}"


@pytest.fixture(scope="module")
def library() -> Library:
    return Library.load()


def test_contract_table_parses() -> None:
    table = contract()
    assert len(table) >= 40
    assert table["restore-log-backup"] == [
        "sg",
        "version",
        "prefix",
        "first_gen",
        "last_gen",
        "temp_folder",
        "last_restore_set",
        "staged",
        "bkf",
    ]


@pytest.mark.parametrize("kind", sorted(contract()))
def test_every_planner_kind_renders_where_it_applies(library: Library, kind: str) -> None:
    params = {p: sample_value(p, kind) for p in contract()[kind]}
    for family, platform in (("legacy", LEGACY), ("modern", MODERN)):
        step = Step(id=f"s.{family}", kind=kind, host="H1", params=params, platform=platform)
        applies = not (kind in LEGACY_ONLY and family == "modern") and not (
            kind in MODERN_ONLY and family == "legacy"
        )
        if not applies:
            with pytest.raises(LibraryError, match=kind):
                library.variant(step)
            continue
        rendered = render_step(library.variant(step), step, library.kind(kind))
        assert rendered.command is not None or rendered.instructions, (kind, family)
        assert "{{" not in (rendered.command.script if rendered.command else rendered.instructions)


@pytest.mark.parametrize("kind", sorted(contract()))
def test_templates_use_only_contract_params(library: Library, kind: str) -> None:
    allowed = set(contract()[kind]) | {"secret"}
    env = jinja2.Environment()
    env.filters.update(
        {name: str for name in ("bullets", "hex", "logprefix", "raw", "q", "winjoin", "native_arg")}
    )
    for variant in library.kind(kind).variants:
        texts = [variant.command or "", variant.instructions, variant.approvers or ""]
        texts += variant.resources + variant.record
        for check in (variant.verify, variant.idempotency):
            if check is not None:
                texts += [check.command, *check.patterns, *check.absent]
        texts.append(library.kind(kind).description)
        for text in texts:
            used = jinja2.meta.find_undeclared_variables(env.parse(text))
            assert used <= allowed, (kind, variant.when, used - allowed)
        assert variant.reboot is None or variant.reboot.services_param in (None, *allowed)


def test_library_params_match_the_contract(library: Library) -> None:
    for kind, params in contract().items():
        assert library.kind(kind).params == params, kind


def test_destructive_kinds_are_marked(library: Library) -> None:
    destructive = {k for k in library.kinds() if library.kind(k).destructive}
    assert {
        "remove-database-files",
        "authoritative-restore",
        "repair-database",
        "soft-recovery-accept-loss",
    } <= destructive
    assert "mount-database" not in destructive
    repair = library.kind("repair-database").variants[-1]
    assert "/p" in (repair.command or "")


def test_legacy_and_modern_commands_are_the_real_ones(library: Library) -> None:
    def command(kind: str, platform: dict[str, str], **params: object) -> str:
        step = Step(id="x", kind=kind, host="H", params=params, platform=platform)
        rendered = render_step(library.variant(step), step)
        return rendered.command.script if rendered.command else rendered.instructions

    assert (
        command(
            "hard-recovery",
            LEGACY,
            temp_folder="D:\\t",
            log_path="L:\\",
            play_forward=True,
            edbs=["E:\\priv1.edb"],
            install_path="D:\\Exchsrvr",
        )
        .rstrip()
        .endswith('"D:\\Exchsrvr\\bin\\eseutil.exe" /cc "D:\\t"')
    )
    assert 'eseutil.exe" /cc "D:\\t" /t' in command(
        "hard-recovery",
        LEGACY,
        temp_folder="D:\\t",
        log_path="L:\\",
        play_forward=False,
        edbs=["E:\\priv1.edb"],
        install_path="D:\\Exchsrvr",
    )
    # a good /cc removes restore.env: its check reads each restored database's header
    step = Step(id="x", kind="hard-recovery", host="H", platform=LEGACY, params={
        "temp_folder": "T:\\t", "log_path": "L:\\", "play_forward": False,
        "edbs": ["E:\\priv1.edb", "E:\\pub1.edb"], "install_path": "D:\\Exchsrvr"})  # fmt: skip
    check = render_step(library.variant(step), step).verify
    assert check is not None and "/cm" not in check.script
    assert check.script.count('eseutil.exe" /mh ') == 2 and '"E:\\pub1.edb"' in check.script
    soft = command(
        "soft-recovery", MODERN, prefix="E01", log_path="L:\\x", system_path="S", db_path="D"
    )
    assert "/r 'E01' /l 'L:\\x' /s 'S' /d 'D'" in soft
    assert "Dismount-Database -Identity 'DB 1'" in command(
        "dismount-database", MODERN, server="EX", sg="SG", db="DB 1"
    )
    assert "Dismount Store" in command("dismount-database", LEGACY, server="EX", sg="SG", db="D")
    assert "/Mode:RecoverServer" in command(
        "exchange-recover-server",
        MODERN,
        server="EX",
        install_path="C:\\X",
        components=[],
        version="2016",
    )
    assert "setup.exe /disasterrecovery" in command(
        "exchange-recover-server",
        LEGACY,
        server="EX",
        install_path="C:\\X",
        components=["a"],
        version="2003",
    )
    assert "iisback.vbs /restore" in command(
        "restore-iis-metabase", LEGACY, server="EX", version="v", backup_name="b1"
    )
    assert "appcmd.exe restore backup" in command(
        "restore-iis-metabase", MODERN, server="EX", version="v", backup_name="b1"
    )


def test_most_specific_variant_wins() -> None:
    assert match_score({}, LEGACY) == 0
    assert match_score({"exchange": ["2003"]}, LEGACY) == 2
    assert match_score({"exchange": "<2007"}, LEGACY) == 1
    assert match_score({"exchange": ">=2007"}, LEGACY) is None
    assert match_score({"windows": ">=2008"}, {"windows": "2008R2"}) == 1
    assert match_score({"windows": ["2008"]}, {"windows": "2008R2"}) is None
    assert match_score({"exchange": ["2003"]}, {}) is None


def test_variant_chosen_by_windows_version(library: Library) -> None:
    step = Step(
        id="r",
        kind="reboot-host",
        host="H",
        params={"server": "H", "services": []},
        platform={"windows": "2003"},
    )
    assert library.variant(step).action == "cmd"
    modern = step.model_copy(update={"platform": {"windows": "2019"}})
    assert library.variant(modern).action == "powershell"


def _write(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "lib"
    directory.mkdir(exist_ok=True)
    (directory / "mine.yaml").write_text(text, encoding="utf-8")
    return directory


def test_user_directory_adds_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _write(
        tmp_path,
        """
kinds:
  mount-database:
    title: Our own mount
    params: [server, sg, db]
    variants:
      - action: manual
        instructions: ask the on-call Exchange admin to mount {{ db }}
  ping:
    title: Ping
    variants:
      - action: check
        command: Test-Connection -Count 1 {{ host_name }}
""",
    )
    monkeypatch.setenv("DR_RUNBOOKS", str(directory))
    lib = Library.load()
    assert lib.kind("mount-database").title == "Our own mount"
    assert "ping" in lib.kinds()


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        (
            "kinds:\n  k:\n    title: T\n    variants:\n      - action: shell\n",
            ":5:17",
            "variants[0].action",
        ),
        (
            "kinds:\n  k:\n    title: T\n    variants:\n      - action: cmd\n",
            ":5:9",
            "needs a `command`",
        ),
        (
            "kinds:\n  k:\n    title: T\n    variants:\n      - action: cmd\n        command: x\n"
            "        when: {exchange: newest}\n",
            ":7:15",
            "not a version",
        ),
        (
            "kinds:\n  k:\n    title: T\n    variants:\n      - action: cmd\n"
            "        command: '{{ x'\n",
            ":6:18",
            "template",
        ),
        ("kinds:\n  k:\n    title: T\n    title: U\n", ":4:5", "duplicate key"),
        ("kinds:\n  k: [\n", ":3:1", ""),
        (
            "kinds:\n  k:\n    title: T\n    defaults: {retries: -1}\n    variants:\n"
            "      - action: cmd\n        command: x\n",
            ":4:25",
            "defaults.retries",
        ),
    ],
)
def test_library_errors_name_file_line_column_and_field(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    directory = _write(tmp_path, text)
    with pytest.raises(LibraryError) as caught:
        Library.load([directory])
    message = caught.value.message
    assert f"mine.yaml{where}" in message, message
    assert what in message
    assert caught.value.exit_code == 2


def test_a_library_read_for_its_flags_skips_the_templates_and_nothing_else(
    tmp_path: Path,
) -> None:
    """What the planner loads (``templates=False``): a broken template is not compiled, but
    a checked load of the same unchanged file still reports it (the per-process cache keeps
    the two apart), and every other check stays."""
    broken = "kinds:\n  k:\n    title: T\n    variants:\n      - action: cmd\n"
    directory = _write(tmp_path, broken + "        command: '{{ x'\n")
    assert Library.load([directory], templates=False).kind("k").title == "T"
    with pytest.raises(LibraryError, match="template"):
        Library.load([directory])
    _write(tmp_path, broken + "        retries: -1\n        command: x\n")
    with pytest.raises(LibraryError, match="retries"):
        Library.load([directory], templates=False)


def test_no_variant_for_platform_names_kind_and_platform(library: Library) -> None:
    step = Step(
        id="x", kind="create-recovery-database", host="EX", params={}, platform={"exchange": "2003"}
    )
    with pytest.raises(LibraryError, match=r"create-recovery-database.*exchange=2003"):
        library.variant(step)


def test_unknown_kind_is_a_library_error(library: Library) -> None:
    with pytest.raises(LibraryError, match="no-such-kind"):
        library.kind("no-such-kind")


HEADER_CLEAN = """
            State: Clean Shutdown
     Log Required: 0-0 (0x0-0x0)
Operation completed successfully in 0.172 seconds.
"""
HEADER_DIRTY = HEADER_CLEAN.replace("Clean", "Dirty").replace("0-0 (0x0-0x0)", "1-5 (0x1-0x5)")


def test_regex_verification_reads_eseutil_headers() -> None:
    check = Verify(
        command="eseutil /mh x",
        parser="regex",
        patterns=[r"State:\s*(?P<state>.+?)\s*$", r"Log Required:\s*(?P<lo>\d+)-(?P<hi>\d+)"],
        expect={"state": "Clean Shutdown", "lo": "0", "hi": "0"},
    )
    assert check_output(check, 0, HEADER_CLEAN).ok
    verdict = check_output(check, 0, HEADER_DIRTY)
    assert not verdict.ok and "Dirty Shutdown" in verdict.reason
    assert not check_output(check, -1018, HEADER_CLEAN).ok


def test_a_failed_check_says_what_its_failure_means_after_the_reason() -> None:
    check = Verify(command="dsquery computer -name X", parser="regex", patterns=['^"CN=X,'],
                   failure="the account X was deleted: restore it first")  # fmt: skip
    verdict = check_output(check, 0, "")
    assert not verdict.ok
    assert (
        verdict.reason == "no line matches '^\"CN=X,' — the account X was deleted: restore it first"
    )
    assert check_output(check, 0, '"CN=X,CN=Computers,DC=corp"').reason == "output as expected"


def test_a_check_failure_text_is_rendered_with_the_steps_values() -> None:
    library = Library.load()
    step = Step(id="v", kind="verify-computer-account", host="DC1",
                params={"server": "EX2016", "domain": "corp.contoso.com"},
                platform={"windows": "2003"})  # fmt: skip
    rendered = render_step(library.variant(step), step, library.kind(step.kind))
    assert rendered.verify_check is not None
    said = rendered.verify_check.failure
    assert "the computer account EX2016 is not in corp.contoso.com" in said


def test_json_and_exit_code_and_absent_verification() -> None:
    js = Verify(command="x", parser="json", expect={"Mounted": False, "Db.Name": "DB1"})
    assert check_output(js, 0, '{"Mounted": false, "Db": {"Name": "DB1"}}').ok
    assert not check_output(js, 0, '{"Mounted": true, "Db": {"Name": "DB1"}}').ok
    assert not check_output(js, 0, "not json").ok
    codes = Verify(command="x", expect=[0, 1, 2])
    assert check_output(codes, 2, "").ok and not check_output(codes, 8, "").ok
    absent = Verify(
        command="x", parser="regex", patterns=["No damaged log files"], absent=["Missing log file"]
    )
    assert check_output(absent, 0, "No damaged log files were found.").ok
    assert not check_output(absent, 0, "Missing log file: E0000002C.log\nNo damaged log files").ok


# --- what a variant needs from its host (issue 16) ---------------------------------------

NEEDS_LIBRARY = """
kinds:
  hash-file:
    title: Compare a file
    params: [path]
    variants:
      - when: {windows: ">=2008"}
        action: powershell
        needs: {powershell: ">=4.0"}
        command: (Get-FileHash -LiteralPath {{ path }}).Hash
      - when: {windows: ">=2008"}
        action: powershell
        command: (Get-Item -LiteralPath {{ path }}).Length
      - when: {windows: ["2000"]}
        action: manual
        instructions: Compare {{ path }} by hand.
  only-new:
    title: Needs PowerShell 3.0
    params: [path]
    variants:
      - action: powershell
        needs: {powershell: ">=3.0", tools: [wbadmin]}
        command: Get-CimInstance Win32_OperatingSystem
"""


@pytest.fixture
def needs_library(tmp_path: Path) -> Library:
    from engine.runbook import load_directory

    return Library(load_directory(_write(tmp_path, NEEDS_LIBRARY)))


def _on(kind: str, **platform: str) -> Step:
    return Step(id=f"{kind}.H1", kind=kind, host="H1", params={"path": "C:\\f"}, platform=platform)


def test_the_variant_chosen_is_one_the_hosts_powershell_can_run(needs_library: Library) -> None:
    hashed = needs_library.variant(_on("hash-file", windows="2016", powershell="5.1"))
    assert hashed.needs.powershell == ">=4.0"
    sized = needs_library.variant(_on("hash-file", windows="2012", powershell="3.0"))
    assert sized.needs.powershell is None and "Length" in (sized.command or "")
    # A platform that does not say its PowerShell proves no `needs`: the safe variant.
    assert needs_library.variant(_on("hash-file", windows="2016")) is sized
    # No PowerShell at all: the kind's manual variant, not a script.
    manual = needs_library.variant(_on("hash-file", windows="2000", powershell="none"))
    assert manual.action == "manual"


def test_a_variant_the_host_cannot_run_is_refused_naming_step_host_and_need(
    needs_library: Library,
) -> None:
    with pytest.raises(LibraryError) as caught:
        needs_library.variant(_on("only-new", windows="2008R2", powershell="2.0"))
    message = caught.value.message
    assert message.startswith("step only-new.H1 on host H1: ")
    assert "needs PowerShell >=3.0 and the host has 2.0" in message
    with pytest.raises(LibraryError, match="sends PowerShell and the host has none"):
        needs_library.variant(_on("only-new", windows="2003", powershell="none"))
    # Tools and snap-ins are checked where the platform lists them.
    with pytest.raises(LibraryError, match="needs wbadmin"):
        needs_library.variant(_on("only-new", windows="2016", powershell="5.1", tools="robocopy"))
    assert needs_library.variant(_on("only-new", windows="2016", powershell="5.1", tools="wbadmin"))


def test_the_renderer_refuses_a_variant_the_host_cannot_run(needs_library: Library) -> None:
    from engine.errors import RenderError

    kind = needs_library.kind("only-new")
    with pytest.raises(RenderError, match=r"step only-new.H1 \(kind only-new, host H1\).*3\.0"):
        render_step(kind.variants[0], _on("only-new", windows="2008R2", powershell="2.0"), kind)
    rendered = render_step(kind.variants[0], _on("only-new", windows="2016", powershell="5.1"))
    assert rendered.command is not None


def test_a_needs_range_that_is_no_version_is_a_library_error(tmp_path: Path) -> None:
    from engine.runbook import load_directory

    bad = NEEDS_LIBRARY.replace('powershell: ">=3.0"', 'powershell: "new"')
    with pytest.raises(LibraryError, match=r"kinds\.only-new\.variants\[0\]\.needs\.powershell"):
        load_directory(_write(tmp_path, bad))


def test_the_planner_gives_each_host_its_powershell() -> None:
    from dr.model.inventory import Server
    from dr.planner.builder import platform_of

    def server(windows: str, **extra: object) -> Server:
        return Server.model_validate(
            {"name": "H", "domain": "corp.example.com", "windows_version": windows, **extra}
        )

    assert platform_of(server("2016"))["powershell"] == "5.1"
    assert platform_of(server("2008R2"))["powershell"] == "2.0"
    assert platform_of(server("2000"))["powershell"] == "none"
    assert platform_of(server("2003"))["powershell"] == "none"
    assert platform_of(server("2003", powershell="2.0"))["powershell"] == "2.0"


def test_the_shipped_library_gives_powershell_2_and_no_powershell_hosts_a_variant(
    library: Library,
) -> None:
    from engine.runbook import Variant, select_variant

    def variant(kind: str, **platform: str) -> Variant:
        return select_variant(library.kind(kind), platform)

    ps2 = {"exchange": "2010", "windows": "2008R2", "powershell": "2.0"}
    assert "Restart-Computer" in (variant("join-domain", **ps2).command or "")
    placed = variant("restore-database-backup", **{**ps2, "exchange": "2013"})
    assert placed.needs.powershell is None
    assert "Get-FileHash" not in str(placed.verify)
    w2k = {"exchange": "2000", "windows": "2000", "powershell": "none"}
    for kind in ("reboot-host", "kms-export", "system-state-backup", "collect-backup-files"):
        assert not variant(kind, **w2k).uses_powershell, kind


def test_when_can_name_a_host_without_powershell(library: Library) -> None:
    from engine.runbook import select_variant

    assert match_score({"powershell": "none"}, {"powershell": "none"}) == 2
    assert match_score({"powershell": "none"}, {"powershell": "2.0"}) is None
    assert match_score({"powershell": "none"}, {}) is None  # unknown is not "none"
    assert match_score({"powershell": ">=3.0"}, {"powershell": "5.1"}) == 1
    # A rebuilt Windows 2003 server has no PowerShell until WMF is installed again: the
    # steps the planner sends it have a variant it can run.
    rebuilt = {"exchange": "2003", "windows": "2003", "powershell": "none"}
    for kind in (
        "reboot-host",
        "prepare-temp-folder",
        "restore-log-backup",
        "copy-live-logs",
        "verify-item-counts",
        "verify-recovery-forest",
    ):
        assert not select_variant(library.kind(kind), rebuilt).uses_powershell, kind
    with_wmf = {**rebuilt, "powershell": "2.0"}
    assert select_variant(library.kind("copy-live-logs"), with_wmf).action == "powershell"


def test_a_user_kind_may_not_change_a_built_in_kinds_parameters(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "kinds:\n  mount-database:\n    title: Mount\n    params: [db]\n    variants:\n"
        "      - action: manual\n        instructions: mount {{ db }}\n",
        encoding="utf-8",
    )
    with pytest.raises(LibraryError, match="overrides the built-in"):
        Library.load([tmp_path])
