"""Fixtures for taking backups over the loopback WinRS endpoint with the host simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dr.backup.run import BackupContext
from dr.catalog import Catalog
from dr.lab.hostsim import HostSim
from dr.lab.winrs import WinRSServer
from dr.model.inventory import Inventory, load_inventory
from dr.store.repository import Repository, init_repository, open_repository
from engine.journal import Journal
from engine.transports import open_transport
from engine.transports.base import Transport

ROOT = Path(__file__).resolve().parents[2]
USER = "lab\\backup"
PASSWORD = "s3cret;'$(x) pass"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="session")
def estate() -> Inventory:
    return load_inventory(ROOT / "examples" / "estate.yaml")


@pytest.fixture(autouse=True)
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_KDF_PROFILE", "fast")
    monkeypatch.setenv("DR_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("DR_PASSPHRASE", PASSPHRASE)


@dataclass
class Lab:
    """One simulated Exchange host behind a loopback WinRS endpoint, and dr's state."""

    sim: HostSim
    server: WinRSServer
    catalog: Catalog
    repo: Repository
    journal: Journal
    inventory: Inventory
    password: str = PASSWORD
    _last: datetime | None = None

    def spec(self) -> dict[str, object]:
        return {
            "kind": "winrm", "host": "127.0.0.1", "port": self.server.port, "scheme": "http",
            "auth": "basic", "allow_plaintext": True, "operation_timeout": 2,
            "read_timeout": 10, "username": USER,
        }  # fmt: skip

    def factory(self) -> Callable[[str], Transport]:
        env = {"DR_WINRM_PASSWORD": self.password, "DR_WINRM_USER": USER}
        return lambda host: open_transport(self.spec(), env=env)

    def context(self, inventory: Inventory | None = None) -> BackupContext:
        return BackupContext(
            inventory=inventory or self.inventory, catalog=self.catalog, repo=self.repo,
            journal=self.journal, transports=self.factory(), environ={}, clock=self.clock,
        )  # fmt: skip

    def clock(self) -> datetime:
        """The wall clock, but a second later than any time it gave before: the catalog
        names a run by its start to the second, and on a fast machine two backups of one
        set can start within the same second (which a real schedule never does)."""
        now = datetime.now(UTC).replace(microsecond=0)
        self._last = max(now, self._last + timedelta(seconds=1)) if self._last else now
        return self._last

    def commands(self) -> int:
        return len(self.server.commands)


@pytest.fixture
def make_lab(tmp_path: Path, estate: Inventory) -> Iterator[Callable[..., Lab]]:
    opened: list[Lab] = []

    def make(host: str, inventory: Inventory | None = None) -> Lab:
        inv = inventory or estate
        sim = HostSim(tmp_path / f"host-{host}", inv.server(host))
        server = WinRSServer(sim, USER, PASSWORD).start()
        created, _ = init_repository(tmp_path / f"repo-{host}", PASSPHRASE, pack_size=1 << 20)
        created.close()
        catalog = Catalog.open(tmp_path / f"catalog-{host}.sqlite")
        catalog.sync_sets(inv.backup_sets)
        lab = Lab(
            sim, server, catalog, open_repository(tmp_path / f"repo-{host}", PASSPHRASE),
            Journal.open(tmp_path / f"journal-{host}.sqlite"), inv,
        )  # fmt: skip
        opened.append(lab)
        return lab

    yield make
    for lab in opened:
        lab.journal.close()
        lab.catalog.close()
        lab.repo.close()
        lab.server.__exit__(None, None, None)
