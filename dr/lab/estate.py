"""The lab estate: every Exchange server of an inventory as a folder tree, mail on a
simulated clock, backups through dr's real backup path, and the ground truth.

``Lab.create(directory, inventory_path)`` lays out ``directory``::

    lab.json            the lab's state: inventory, clock, seed, endpoint ports, faults
    hosts/<SERVER>/     one tree per Exchange server: its drives as folders (C, E, F, T …)
    truth/<SERVER>.jsonl every transaction the store applied: the ground truth

:meth:`Lab.advance` moves the clock, delivering, moving and deleting mail in every mounted
database (seeded, so the same lab is built twice alike) and calling ``on_backup`` when a
backup is due on the lab's schedule (a full every day at 22:00 UTC, incrementals every
``incremental_hours``). :meth:`Lab.truth` replays the ground truth to any instant;
:meth:`Lab.verify` compares a database file on a host with it, message by message.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dr.errors import NotFoundError, ParameterError
from dr.lab import exstore
from dr.lab.exhost import ExchangeHost
from dr.lab.exstore import Message, Txn
from dr.model.inventory import Inventory, RecoveryServer, Server

__all__ = ["LAB_USER", "Lab", "Verdict"]

LAB_USER = "lab\\operator"
STATE = "lab.json"
START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
FOLDERS = ("Inbox", "Archive", "Projects", "Sent Items")
Backup = Callable[[str, str, datetime], None]  # (server, backup type, at)


@dataclass(frozen=True)
class Verdict:
    """A database compared with the ground truth at one instant."""

    database: str
    at: datetime
    expected: int
    found: int
    missing: tuple[Message, ...] = ()
    extra: tuple[Message, ...] = ()
    moved: tuple[tuple[Message, Message], ...] = ()  # (truth, found)

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.moved)

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database, "at": self.at.isoformat(), "equal": self.equal,
            "expected": self.expected, "found": self.found,
            "missing": [m.row() for m in self.missing], "extra": [m.row() for m in self.extra],
            "moved": [[a.row(), b.row()] for a, b in self.moved],
        }  # fmt: skip


@dataclass
class Lab:
    directory: Path
    inventory: Inventory
    state: dict[str, Any] = field(default_factory=dict)
    _hosts: dict[str, ExchangeHost] = field(default_factory=dict)
    _homes: dict[str, dict[str, str]] = field(default_factory=dict)
    _dcs: dict[str, Any] = field(default_factory=dict)

    # -- making and opening -------------------------------------------------------------------

    @classmethod
    def create(
        cls, directory: Path, inventory_path: Path, *, seed: int = 2026, start: datetime = START
    ) -> Lab:
        from dr.model.inventory import load_inventory

        if (directory / STATE).exists():
            raise ParameterError(
                f"{directory} already holds a lab",
                hint="`dr lab down` removes it, or pass another --dir",
            )
        inv = load_inventory(inventory_path)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "inventory": str(inventory_path.resolve()), "seed": seed, "start": start.isoformat(),
            "now": start.isoformat(), "password": secrets.token_urlsafe(18), "ports": {},
            "faults": [],
        }  # fmt: skip
        lab = cls(directory, inv, state)
        lab.save()
        for server in lab.all_servers():
            lab.host(server.name)
        for dc in lab.domain_controllers():
            lab.dsrm_password(dc.name)
        return lab

    @classmethod
    def open(cls, directory: Path) -> Lab:
        from dr.model.inventory import load_inventory

        path = directory / STATE
        if not path.exists():
            raise NotFoundError(f"no lab in {directory}", hint="create one with `dr lab up`")
        state = json.loads(path.read_text(encoding="utf-8"))
        return cls(directory, load_inventory(Path(state["inventory"])), state)

    def save(self) -> None:
        tmp = self.directory / (STATE + ".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.directory / STATE)

    # -- the clock and the hosts --------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromisoformat(self.state["now"])

    def set_now(self, at: datetime) -> None:
        self.state["now"] = at.isoformat()
        self.save()

    @property
    def password(self) -> str:
        return str(self.state["password"])

    def exchange_servers(self) -> list[Server]:
        """The production Exchange servers: they carry mail and are backed up."""
        return [s for s in self.inventory.servers if s.exchange_version and s.storage_groups]

    def recovery_servers(self) -> list[RecoveryServer]:
        """The recovery forests' servers: empty stores of the same names, no mail of their own."""
        return [s for f in self.inventory.recovery_forests for s in f.servers if s.storage_groups]

    def all_servers(self) -> list[Server | RecoveryServer]:
        return [*self.exchange_servers(), *self.recovery_servers()]

    def server(self, name: str) -> Server | RecoveryServer:
        for server in self.all_servers():
            if server.name.lower() == name.lower():
                return server
        raise NotFoundError(
            f"no Exchange server {name!r} in the lab",
            hint="the lab has: " + ", ".join(s.name for s in self.all_servers()),
        )

    def host(self, name: str) -> ExchangeHost:
        server = self.server(name)
        if server.name not in self._hosts:
            seed = self.state["seed"] + sum(map(ord, server.name))
            self._hosts[server.name] = ExchangeHost(
                self.directory / "hosts" / server.name,
                server,  # type: ignore[arg-type]  # a recovery server has what the host reads
                clock=self.now,
                truth_dir=self.directory / "truth",
                seed=seed,
                directory=self.directory_of(server),
                domain=self.domain_of(server),
                display_names={
                    m.alias: m.display_name or m.alias for m in self.inventory.mailboxes
                },
                mailbox_dbs=self._mailbox_dbs(server),
                directory_store=self.directory_store,
            )
        return self._hosts[server.name]

    @property
    def directory_store(self) -> Any:
        """The production forest's directory (computer accounts, Exchange server objects)."""
        from dr.lab.directory import Directory

        return Directory(self.directory / "directory.json", self.inventory)

    def domain_controllers(self) -> list[Server]:
        """The production forest's domain controllers: they answer for the directory."""
        return [s for s in self.inventory.servers if "domain-controller" in s.roles]

    def endpoint(self, name: str) -> Any:
        """What answers at ``name``'s address: its Exchange host or its domain controller."""
        dc = next((s for s in self.domain_controllers() if s.name.lower() == name.lower()), None)
        if dc is None or any(s.name.lower() == name.lower() for s in self.all_servers()):
            return self.host(name)
        if dc.name not in self._dcs:
            from dr.lab.dchost import DomainControllerHost

            peers = [self.directory / "hosts" / s.name for s in self.domain_controllers()
                     if s.domain.lower() == dc.domain.lower() and s.name != dc.name]  # fmt: skip
            self._dcs[dc.name] = DomainControllerHost(
                self.directory / "hosts" / dc.name, dc, directory=self.directory_store,
                clock=self.now, dsrm_password=self.dsrm_password(dc.name), peers=peers,
            )  # fmt: skip
        return self._dcs[dc.name]

    def dsrm_password(self, name: str) -> str:
        """The DSRM administrator password of domain controller ``name`` (the lab's stand-in
        for the envelope in the safe that the inventory's ``dsrm-password`` secret names)."""
        known = self.state.setdefault("dsrm", {})
        if name not in known:
            known[name] = secrets.token_urlsafe(12)
            self.save()
        return str(known[name])

    def dc(self, name: str) -> Any:
        """The domain controller ``name`` (a NotFoundError naming the lab's DCs if none)."""
        for server in self.domain_controllers():
            if server.name.lower() == name.lower():
                return self.endpoint(server.name)
        raise NotFoundError(
            f"no domain controller {name!r} in the lab",
            hint="the lab has: " + ", ".join(s.name for s in self.domain_controllers()),
        )

    def endpoint_names(self) -> list[str]:
        """Every host the lab serves: the Exchange servers, then the domain controllers."""
        names = [s.name for s in self.all_servers()]
        return names + [s.name for s in self.domain_controllers() if s.name not in names]

    def _mailbox_dbs(self, server: Server | RecoveryServer) -> dict[str, str]:
        """alias → database name, for the mailboxes homed on ``server`` (resolved once)."""
        from dr.model.refs import resolve_database

        if server.name not in self._homes:
            found = {}
            for mailbox in self.inventory.mailboxes:
                ref = resolve_database(self.inventory, mailbox.database)
                if ref.server.name == server.name:
                    found[mailbox.alias] = ref.database.name
            self._homes[server.name] = found
        return self._homes[server.name]

    def domain_of(self, server: Server | RecoveryServer) -> str:
        """The DNS domain ``server`` is joined to: its recovery forest's, else its own."""
        forest = next((f for f in self.inventory.recovery_forests if server in f.servers), None)
        if forest is not None:
            return forest.domain
        return getattr(server, "domain", "") or "corp.local"

    def directory_of(self, server: Server | RecoveryServer) -> dict[str, dict[str, Any]]:
        """The directory objects a host's forest answers ``[ADSI]`` with: RootDSE and each
        administrative group of its Exchange organization (its legacyExchangeDN)."""
        forest = next((f for f in self.inventory.recovery_forests if server in f.servers), None)
        if forest is not None:
            domain, org, groups = forest.domain, forest.organization, forest.administrative_groups
        else:
            domain = getattr(server, "domain", "") or "corp.local"
            org = self.inventory.organization.name
            groups = self.inventory.organization.administrative_groups
        config = "CN=Configuration," + ",".join(f"DC={part}" for part in domain.split("."))
        found: dict[str, dict[str, Any]] = {"RootDSE": {"configurationNamingContext": config}}
        for group in groups:
            dn = (f"CN={_rdn(group.name)},CN=Administrative Groups,CN={_rdn(org)},"
                  f"CN=Microsoft Exchange,CN=Services,{config}")  # fmt: skip
            found[dn] = {"legacyExchangeDN": group.legacy_exchange_dn, "name": group.name}
        return found

    def reload(self) -> None:
        """Forget the hosts held in memory (another process changed them)."""
        self._hosts.clear()
        self._dcs.clear()

    # -- mail and backups ---------------------------------------------------------------------

    def mailboxes(self, server: Server, db_name: str) -> list[str]:
        """The aliases homed on ``db_name`` of ``server`` (the workload's recipients)."""
        found = [a for a, db in self._mailbox_dbs(server).items() if db == db_name]
        return found or ["administrator"]

    def advance(
        self,
        until: datetime,
        *,
        on_backup: Backup | None = None,
        step: timedelta = timedelta(minutes=30),
        incremental_hours: int = 4,
        progress: Callable[[datetime], None] | None = None,
    ) -> int:
        """Mail until ``until``; backups when due. Returns the transactions applied."""
        rng = random.Random(f"{self.state['seed']}:{self.now().isoformat()}")
        applied = 0
        at = self.now()
        while at < until:
            at = min(at + step, until)
            self.set_now(at)
            applied += self._mail_tick(rng)
            kind = _due(at, step, incremental_hours)
            if kind and on_backup:
                for server in self.exchange_servers():
                    on_backup(server.name, kind, at)
            if progress:
                progress(at)
        return applied

    def _mail_tick(self, rng: random.Random) -> int:
        count = 0
        for server in self.exchange_servers():
            host = self.host(server.name)
            for sg in server.storage_groups:
                for db in sg.databases:
                    if db.kind == "public":
                        continue
                    count += self._mail(host, rng, server, db.name)
            host.save()
        return count

    def _mail(self, host: ExchangeHost, rng: random.Random, server: Server, db: str) -> int:
        boxes = self.mailboxes(server, db)
        done = 0
        for _ in range(rng.randint(1, 3)):
            box = rng.choice(boxes)
            subject = f"{rng.choice(['Quarterly', 'Re:', 'Invoice', 'Meeting', 'Fwd:'])} " \
                      f"{rng.randrange(1000, 9999)}"  # fmt: skip
            done += host.deliver(db, box, subject) is not None
        held = self._held(host, db)
        if held and rng.random() < 0.5:
            done += host.move(db, rng.choice(held), rng.choice(FOLDERS[1:])) is not None
        if held and rng.random() < 0.3:
            done += host.delete(db, rng.choice(held)) is not None
        return done

    def _held(self, host: ExchangeHost, db: str) -> list[Message]:
        sg, database = host.find_db(db)
        if not host.dbs[host.db_key(sg, database)].mounted:
            return []
        return sorted(exstore.contents(host.path(database.edb)).values(), key=lambda m: m.key)

    # -- the ground truth ---------------------------------------------------------------------

    def transactions(self, server: str) -> Iterator[Txn]:
        path = self.directory / "truth" / f"{server}.jsonl"
        if not path.exists():
            return
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                yield Txn.from_record(json.loads(line))

    def truth(self, db: str, at: datetime, server: str | None = None) -> dict[str, Message]:
        """The messages of database ``db`` as they were at ``at``."""
        host_name, db_name = self._locate(db, server)
        held: dict[str, Message] = {}
        for txn in self.transactions(host_name):
            if txn.db != db_name or txn.at > at:
                continue
            if txn.op == "delete":
                held.pop(txn.message.key, None)
            else:
                held[txn.message.key] = txn.message
        return held

    def _locate(self, db: str, server: str | None) -> tuple[str, str]:
        for candidate in self.exchange_servers():
            if server and candidate.name.lower() != server.lower():
                continue
            for sg in candidate.storage_groups:
                for database in sg.databases:
                    names = {
                        database.name.lower(),
                        f"{candidate.name}/{sg.name}/{database.name}".lower(),
                    }
                    if db.lower() in names:
                        return candidate.name, database.name
        raise NotFoundError(f"no database {db!r} in the lab", hint="`dr lab status` lists them")

    def verify(
        self, db: str, at: datetime, host: str | None = None, restored_as: str | None = None
    ) -> Verdict:
        """The database file on its host (or ``host``, under the name ``restored_as``: a
        recovery database) against the truth of ``db`` at ``at``."""
        server_name, db_name = self._locate(db, None)
        target = self.host(host or server_name)
        _, database = target.find_db(restored_as or db_name)
        found = exstore.contents(target.path(database.edb))
        return _compare(db_name, at, self.truth(db_name, at, server_name), found)

    def verify_mailbox(
        self, alias: str, at: datetime, folder: str, deleted_by: datetime | None = None
    ) -> Verdict:
        """A mailbox restore: the copies under ``folder`` in the live mailbox against the
        mailbox as the truth held it at ``at`` (same messages, same folders beneath).

        With ``deleted_by`` (a message restore, B1): only the messages the mailbox held at
        ``at`` and no longer held at ``deleted_by`` — those deleted in between — each of
        which must be back under ``folder``, in its folder; the other copies are not judged."""
        ref = self._mailbox_ref(alias)
        host = self.host(ref.server.name)
        live = exstore.contents(host.path(ref.database.edb)).values()
        prefix = folder.rstrip("/") + "/"
        found = {
            m.id.removesuffix("-r"): Message(alias, m.id.removesuffix("-r"),
                                             m.folder.removeprefix(prefix), m.subject)
            for m in live if m.mailbox == alias and m.folder.startswith(prefix)
        }  # fmt: skip
        truth = self._mailbox_truth(ref, alias, at)
        if deleted_by is None:
            return _compare(f"mailbox {alias} ({folder})", at, truth, found)
        if deleted_by < at:
            raise ParameterError("--deleted-by is before --at: nothing can be deleted in between")
        left = self._mailbox_truth(ref, alias, deleted_by)
        deleted = {k: m for k, m in truth.items() if k not in left}
        back = {k: m for k, m in found.items() if k in deleted}
        return _compare(f"messages of {alias} deleted by {deleted_by:%Y-%m-%d %H:%M}Z "
                        f"({folder})", at, deleted, back)  # fmt: skip

    def _mailbox_ref(self, alias: str) -> Any:
        from dr.model.refs import resolve_database

        mailbox = next((m for m in self.inventory.mailboxes if m.alias == alias), None)
        if mailbox is None:
            raise NotFoundError(f"no mailbox {alias!r} in the inventory")
        return resolve_database(self.inventory, mailbox.database)

    def _mailbox_truth(self, ref: Any, alias: str, at: datetime) -> dict[str, Message]:
        """The messages of ``alias`` at ``at``, by id (a restore's copy carries the id)."""
        held = self.truth(ref.database.name, at, ref.server.name).values()
        return {m.id: m for m in held if m.mailbox == alias}

    # -- endpoints ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def serving(self, ports: dict[str, int] | None = None) -> Iterator[dict[str, int]]:
        """A loopback WinRS endpoint per Exchange host, for as long as the block runs.

        Each answers only while its host is reachable (``dr lab break unreachable``): a
        watcher takes the host off the network, and puts it back, as ``network.json`` says."""
        from dr.lab.network import Reachability
        from dr.lab.winrs import WinRSServer

        servers = {}
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_network, args=(servers, stop), daemon=True)
        try:
            for name in self.endpoint_names():
                port = (ports or {}).get(name, 0)
                endpoint = self.endpoint(name)
                servers[name] = WinRSServer(
                    endpoint,
                    LAB_USER,
                    self.password,
                    port=port,
                    network=Reachability(endpoint.root),
                ).start()
            _sync_network(servers)
            watcher.start()
            yield {name: srv.port for name, srv in servers.items()}
        finally:
            stop.set()
            if watcher.is_alive():
                watcher.join(timeout=5)
            for srv in servers.values():
                srv.kill()

    def transport_specs(self, ports: dict[str, int]) -> dict[str, dict[str, Any]]:
        return {
            name: {"kind": "winrm", "host": "127.0.0.1", "port": port, "scheme": "http",
                   "auth": "basic", "allow_plaintext": True, "operation_timeout": 2,
                   "read_timeout": 15, "username": LAB_USER}
            for name, port in ports.items()
        }  # fmt: skip


def _sync_network(servers: dict[str, Any]) -> None:
    for srv in servers.values():
        if srv.network.is_down() and not srv.down:
            srv.go_down()
        elif not srv.network.is_down() and srv.down:
            srv.come_up()


def _watch_network(servers: dict[str, Any], stop: threading.Event) -> None:
    while not stop.wait(0.25):
        _sync_network(servers)


def _compare(what: str, at: datetime, truth: dict[str, Message],
             found: dict[str, Message]) -> Verdict:  # fmt: skip
    missing = tuple(truth[k] for k in sorted(truth.keys() - found.keys()))
    extra = tuple(found[k] for k in sorted(found.keys() - truth.keys()))
    moved = tuple((truth[k], found[k]) for k in sorted(truth.keys() & found.keys())
                  if truth[k] != found[k])  # fmt: skip
    return Verdict(what, at, len(truth), len(found), missing, extra, moved)


def _rdn(value: str) -> str:
    """An RDN value escaped as the step library's Escape-Rdn escapes it (RFC 4514)."""
    return re.sub(r'([,\\#+<>;"=])', r"\\\1", value)


def _due(at: datetime, step: timedelta, incremental_hours: int) -> str | None:
    """A full at 22:00 UTC each day, an incremental every ``incremental_hours`` otherwise."""
    minutes = at.hour * 60 + at.minute
    if minutes == 22 * 60:
        return "full"
    if at.minute == 0 and at.hour % incremental_hours == 0 and at.hour != 0:
        return "incremental"
    return None
