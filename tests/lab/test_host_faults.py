"""The faults a host suffers as a whole: a full disk, a host gone from the network, backups
expired or lost — each as Windows, WinRM and dr's own catalog and store show it."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from ps_tinyhost import run_on as _run

from dr.errors import LabError
from dr.lab import faults
from dr.lab.estate import LAB_USER, Lab
from dr.lab.exhost import ExchangeHost
from dr.lab.ps.fs import DISK_FULL
from engine.errors import HostUnreachable
from engine.transports.base import Command
from engine.transports.credentials import Credential
from engine.transports.winrm import WinRMSettings, WinRMTransport

ROOT = Path(__file__).resolve().parents[2]
EDB = "E:\\ExchangeDatabases\\DB01\\DB01.edb"
LOGS = "F:\\ExchangeLogs\\DB01"


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    made = Lab.create(tmp_path / "lab", ROOT / "examples" / "estate.yaml", seed=5)
    made.advance(made.now() + timedelta(hours=3))
    return made


def _fresh(lab: Lab, name: str) -> ExchangeHost:
    """The host as another process (`dr lab serve`) sees it: from its files on disk."""
    return Lab.open(lab.directory).host(name)


# --- fill-disk ------------------------------------------------------------------------------


def test_a_full_drive_fails_every_write_as_windows_does(lab: Lab) -> None:
    said = faults.fill_disk(lab, None, None, "DB01")
    assert said.startswith("EX2016: drive E: is full (0 bytes free")
    host = _fresh(lab, "EX2016")  # the quota is the host's state: another process sees it
    code, out, _ = _run(
        host,
        "(Get-PSDrive -Name E).Free\n"
        "(Get-WmiObject -Class Win32_LogicalDisk |"
        " Where-Object { $_.DeviceID -eq 'E:' }).FreeSpace\n"
        "(Get-PSDrive -Name F).Free -gt 0\n",
    )
    assert (code, out.split()) == (0, ["0", "0", "True"])

    for script, cmdlet in (
        (f"Copy-Item -LiteralPath '{LOGS}\\E00.chk' -Destination 'E:\\E00.chk' -ErrorAction Stop",
         "Copy-Item"),
        ("New-Item -ItemType Directory -Path 'E:\\ExchangeDatabases\\DB01.pre-restore'",
         "New-Item"),
        ("Set-Content -LiteralPath 'E:\\note.txt' -Value 'x'", "Set-Content"),
    ):  # fmt: skip
        code, _, err = _run(host, script)
        assert code != 0 and f"{cmdlet} : {DISK_FULL}" in err, (script, err)
    assert not host.path("E:\\E00.chk").exists() and not host.path("E:\\note.txt").exists()
    assert not host.path("E:\\ExchangeDatabases\\DB01.pre-restore").exists()

    code, out, _ = _run(host, f"robocopy {LOGS} E:\\ExchangeDatabases\\DB01 E00.chk", "cmd")
    assert code == 8, out
    assert f"ERROR 112 (0x00000070) Copying File {LOGS}\\E00.chk\r\n{DISK_FULL}" in out
    code, out, _ = _run(host, f"robocopy {LOGS} E:\\aside E00.chk", "cmd")
    assert code == 16 and "ERROR 112 (0x00000070) Creating Destination Directory E:\\aside" in out

    # the other drives are as they were
    code, _, err = _run(
        host, f"Copy-Item -LiteralPath '{LOGS}\\E00.chk' -Destination 'T:\\E00.chk'"
    )
    assert code == 0, err
    entry = lab.state["faults"][-1] if lab.state["faults"] else {}
    recorded = json.loads((lab.directory / "lab.json").read_text())["faults"][-1]
    assert recorded == entry and (recorded["kind"], recorded["host"], recorded["drive"]) == (
        "fill-disk", "EX2016", "E")  # fmt: skip


def test_replay_onto_a_full_drive_fails_with_jet_disk_full(lab: Lab) -> None:
    host = lab.host("EX2016")
    host.crash("DB01")
    host.save()
    before = host.path(EDB).read_bytes()
    replay = (
        "& (Join-Path $env:ExchangeInstallPath 'Bin\\eseutil.exe') /r E00 "
        f"/l {LOGS} /s {LOGS} /d E:\\ExchangeDatabases\\DB01\nexit $LASTEXITCODE"
    )
    faults.fill_disk(lab, "EX2016", "E", None)
    host = _fresh(lab, "EX2016")
    code, out, _ = _run(host, replay)
    assert code == -1808, out
    assert "Operation terminated with error -1808 (JET_errDiskFull, No space left on disk)" in out
    assert host.path(EDB).read_bytes() == before, "nothing was written"

    faults.repair(lab, "fill-disk", "EX2016", "E")
    faults.fill_disk(lab, "EX2016", "F", None)
    code, out, _ = _run(_fresh(lab, "EX2016"), replay)
    assert code == -529 and "(JET_errLogDiskFull, Log disk full)" in out, out

    with pytest.raises(LabError, match="EX2016: drive E: is not full"):
        faults.repair(lab, "fill-disk", None, None, "DB02")  # --db: its .edb's drive, E:
    faults.repair(lab, "fill-disk", "EX2016", "F")
    code, out, _ = _run(_fresh(lab, "EX2016"), replay)
    assert code == 0, out
    assert lab.verify("DB01", lab.now()).equal, "replay after the space came back is complete"
    assert [r["drive"] for r in json.loads((lab.directory / "lab.json").read_text())["repairs"]] \
        == ["E", "F"]  # fmt: skip


def test_deleting_files_on_a_full_drive_frees_their_space(lab: Lab) -> None:
    host = lab.host("EX2016")
    host.path("T:\\dump.bin").write_bytes(b"x" * 100)
    faults.fill_disk(lab, "EX2016", "T", None)
    host = _fresh(lab, "EX2016")
    code, _, err = _run(host, "Set-Content -LiteralPath 'T:\\a.txt' -Value 'hello'")
    assert code != 0 and DISK_FULL in err
    code, _, err = _run(host, "Remove-Item -LiteralPath 'T:\\dump.bin'\n"
                              "Set-Content -LiteralPath 'T:\\a.txt' -Value 'hello'\n"
                              "(Get-PSDrive -Name T).Free")  # fmt: skip
    assert code == 0, err
    assert host.path("T:\\a.txt").exists()


# --- unreachable ----------------------------------------------------------------------------


def _transport(lab: Lab, port: int) -> WinRMTransport:
    settings = WinRMSettings(
        host="127.0.0.1", port=port, scheme="http", auth="basic", allow_plaintext=True,
        operation_timeout=2, read_timeout=10,
    )  # fmt: skip
    return WinRMTransport(settings, Credential(LAB_USER, lab.password))


def _eventually(check, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _answers(transport: WinRMTransport) -> bool:
    try:
        return transport.run(Command(script="'up'"), timeout=20).ok
    except HostUnreachable:
        return False


def test_a_host_drops_off_the_network_after_running_the_command_its_answer_is_lost(
    lab: Lab,
) -> None:
    faults.unreachable(lab, "EX2016", after=1)
    with lab.serving() as ports:
        winrm = _transport(lab, ports["EX2016"])
        first = winrm.run(Command(script="Set-Content -LiteralPath 'T:\\one.txt' -Value 1"), 20)
        assert first.ok
        with pytest.raises(HostUnreachable) as lost:
            winrm.run(Command(script="Set-Content -LiteralPath 'T:\\two.txt' -Value 2"), 20)
        assert lost.value.hint and "is up and its WinRM listener answers" in lost.value.hint
        host = lab.host("EX2016")
        assert host.path("T:\\two.txt").read_text().strip() == "2", "it ran on the host"
        with pytest.raises(HostUnreachable, match="refused"):
            winrm.run(Command(script="Set-Content -LiteralPath 'T:\\three.txt' -Value 3"), 20)
        assert not host.path("T:\\three.txt").exists(), "a refused connection runs nothing"
        other = _transport(lab, ports["EX2003"])
        assert other.run(Command(script="'up'"), 20).ok, "the other hosts still answer"

        state = json.loads((host.root / ".lab" / "network.json").read_text())
        assert state["down"] and "two.txt" in state["during"]
        said = faults.repair(lab, "unreachable", "EX2016")
        assert said == "EX2016 answers WinRM again"
        assert _eventually(lambda: _answers(winrm)), "dr lab serve listens again"
        with pytest.raises(LabError, match="nothing to repair"):
            faults.repair(lab, "unreachable", "EX2016")
    kinds = [f["kind"] for f in json.loads((lab.directory / "lab.json").read_text())["faults"]]
    assert kinds == ["unreachable"]


def test_a_host_drops_during_the_command_that_matches(lab: Lab) -> None:
    with lab.serving() as ports:
        winrm = _transport(lab, ports["EX2016"])
        faults.unreachable(lab, "EX2016", at_command=r"eseutil\S* /mh")  # armed while serving
        assert winrm.run(Command(script="'before'"), 20).ok
        script = f"& (Join-Path $env:ExchangeInstallPath 'Bin\\eseutil.exe') /mh '{EDB}'"
        with pytest.raises(HostUnreachable):
            winrm.run(Command(script=script), 20)
        assert not _answers(winrm)
        faults.unreachable(lab, "EX2016")  # already down: stays down until repaired
        faults.repair(lab, "unreachable", "EX2016")
        assert _eventually(lambda: _answers(winrm))
        faults.unreachable(lab, "EX2016")  # now, with no option: refused within a moment
        assert _eventually(lambda: not _answers(winrm))


def test_a_host_drops_during_the_step_whose_command_it_is_sent(lab: Lab) -> None:
    """--at-step: the step's rendered command, exactly; another command with a part of it
    (as the step's own check may have) does not trip it."""
    step = "Set-Content -LiteralPath 'T:\\step.txt' -Value 'the step'"
    with lab.serving() as ports:
        winrm = _transport(lab, ports["EX2016"])
        said = faults.unreachable(lab, "EX2016", at_step=("write-it.EX2016", step + "\n"))
        assert "during step write-it.EX2016" in said
        assert winrm.run(Command(script="Get-Item -LiteralPath 'T:\\'"), 20).ok
        with pytest.raises(HostUnreachable):
            winrm.run(Command(script=step), 20)
        assert lab.host("EX2016").path("T:\\step.txt").exists()
    entry = json.loads((lab.directory / "lab.json").read_text())["faults"][-1]
    assert entry["at_step"] == "write-it.EX2016"


def test_unreachable_refuses_what_it_cannot_mean(lab: Lab) -> None:
    with pytest.raises(LabError, match="give one of"):
        faults.unreachable(lab, "EX2016", after=1, at_command="x")
    with pytest.raises(LabError, match="not a regular expression"):
        faults.unreachable(lab, "EX2016", at_command="eseutil(")
    assert not (lab.host("EX2016").root / ".lab" / "network.json").exists()


# --- expire-backups -------------------------------------------------------------------------


@pytest.fixture
def backed_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Half a day of the example estate with its backups: a workspace, catalog, repository."""
    from dr.lab.build import build

    monkeypatch.setenv("DR_PASSPHRASE", "lab passphrase for the fault tests")
    monkeypatch.setenv("DR_KDF_PROFILE", "fast")
    monkeypatch.setenv("DR_KEY_DIR", str(tmp_path / "keys"))
    build(tmp_path / "ws", ROOT / "examples" / "estate.yaml", days=0.5, seed=3)
    return tmp_path / "ws"


def _db_artifacts(ws: Path, group: str) -> dict[int, list[bool]]:
    from dr.catalog import Catalog

    with Catalog.open(ws / "catalog.sqlite") as catalog:
        found: dict[int, list[bool]] = {}
        for a in catalog.artifacts(storage_group=group, include_expired=True):
            found.setdefault(a.run_id, []).append(a.expired)
        return found


def test_expired_backups_are_marked_in_the_catalog_as_retention_marks_them(backed_up: Path) -> None:
    from dr.catalog import Catalog

    lab = Lab.open(backed_up / "lab")
    with Catalog.open(backed_up / "catalog.sqlite") as catalog:
        started = {r.id: r.started for r in catalog.runs(host="EX2016")}
    cut = min(started.values()) + timedelta(hours=3)
    repository = backed_up / "repository"
    manifests = sorted(p.name for p in (repository / "manifests").iterdir())

    said = faults.expire_backups(lab, backed_up / "catalog.sqlite", repository, "DB01", cut)

    db01 = _db_artifacts(backed_up, "EX2016/DB01")
    early = {run for run in db01 if started[run] < cut}
    assert early and early != set(db01), "some before the cut, some after"
    assert all(all(db01[run]) for run in early), "every artifact of the early runs expired"
    assert not any(any(db01[run]) for run in set(db01) - early), "the later ones are kept"
    assert not any(any(v) for v in _db_artifacts(backed_up, "EX2016/DB02").values())
    assert said == (f"EX2016: DB01's backups {', '.join(f'run-{r}' for r in sorted(early))} "
                    "are expired in the catalog (retention)")  # fmt: skip
    assert sorted(p.name for p in (repository / "manifests").iterdir()) == manifests
    recorded = json.loads((backed_up / "lab" / "lab.json").read_text())["faults"][-1]
    assert recorded["kind"] == "expire-backups" and not recorded["lost"]
    assert recorded["runs"] == [f"run-{r}" for r in sorted(early)]
    with pytest.raises(LabError, match="no backup of DB01 before"):
        faults.expire_backups(lab, backed_up / "catalog.sqlite", repository, "DB01", cut)


def test_lost_backups_leave_the_catalog_listing_what_the_repository_no_longer_has(
    backed_up: Path,
) -> None:
    lab = Lab.open(backed_up / "lab")
    repository = backed_up / "repository"
    before = {p.name for p in (repository / "manifests").iterdir()}

    said = faults.expire_backups(lab, backed_up / "catalog.sqlite", repository, "DB02", lost=True)

    after = {p.name for p in (repository / "manifests").iterdir()}
    db02 = _db_artifacts(backed_up, "EX2016/DB02")
    assert len(before - after) == len(db02) > 0, "each EX2016 run's version is gone"
    assert after, "the other hosts' versions are kept"
    assert not any(any(v) for v in db02.values()), "the catalog still lists them, live"
    assert said.endswith("the catalog still lists them")
