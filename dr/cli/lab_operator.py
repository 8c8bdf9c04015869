"""``dr lab operator``: what a person does at a lab host's console for a runbook's manual step.

On Exchange 2000/2003 a restore is partly a person's work: Exchange System Manager dismounts
and mounts stores and ticks "This database can be overwritten by a restore", and NTBackup
restores the backup sets (it has no command-line restore). On the lab each of those actions
is a command, so a run can be taken to its end the way a responder would: `dr run start`
waits at the manual step, the person does what its instructions say, then `dr run ack` and
`dr run resume`.

dr lab operator dismount-store --host EX2003 --store "Mailbox Store (EX2003)"
dr lab operator allow-restore --host EX2003 --store "Mailbox Store (EX2003)"
dr lab operator ntbackup-restore --host EX2003 --bkf 'T:\\...\\backup.bkf' --temp 'T:\\DRTemp\\SG'
dr lab operator mount-store --host EX2003 --store "Mailbox Store (EX2003)"
dr lab operator open-mailbox --host EX2003 --store "Mailbox Store (EX2003)"

Rebuilding a lost server (`dr plan server`): the directory and the new machine.

dr lab operator reset-computer-account --host EX2016
dr lab operator install-windows --host EX2016
dr lab operator mount-media --host EX2016 --drive D

Restoring a domain controller (`dr plan forest`): at its console in DSRM.

dr lab operator open-envelope --host DC2016
DR_LAB_DSRM_PASSWORD=... dr lab operator dsrm-sign-in --host DC2016
dr lab exec DC2016 --cmd "wbadmin get versions -backupTarget:D: -machine:DC2016"

Recovering a domain with no DC left: the lost DC's metadata removed.

dr lab operator delete-dc --host DC2016 --dc DC1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from dr.cli.common import console

app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown")

HostOpt = typer.Option(..., "--host", help="The lab host, e.g. EX2003.")
StoreOpt = typer.Option(
    ..., "--store", help="The store as Exchange System Manager names it: 'Mailbox Store (EX2003)'."
)


def _host(name: str) -> Any:
    from dr.cli.lab import _lab

    return _lab().host(name)


def _act(action: Callable[[], str | list[str]], what: str) -> None:
    """Run one console action; what the lab host refuses is a LabError with its message."""
    from dr.errors import LabError
    from dr.lab.hostsim import _ToolError

    try:
        said = action()
    except _ToolError as exc:
        raise LabError(f"{what}: {exc}", hint="read the step's instructions again") from None
    for line in [said] if isinstance(said, str) else said:
        console.print(line, highlight=False)


@app.command("ntbackup-restore")
def ntbackup_restore(
    host: str = HostOpt,
    bkf: str = typer.Option(..., "--bkf", help="The NTBackup media file on the host (.bkf)."),
    temp: str = typer.Option(
        ..., "--temp", help="Temporary location for log and patch files (one per storage group)."
    ),
    last_restore_set: bool = typer.Option(
        False, "--last-restore-set", help="Tick Last Restore Set: hard recovery runs at the end."
    ),
    backup_set: str = typer.Option("Set 1", "--set", help="The backup set's name, as listed."),
    stores: list[str] = typer.Option(
        None, "--store", help="Tick only this store of the set (repeatable; default: all)."
    ),
) -> None:
    """NTBackup → Restore and Manage Media: restore a set of BKF to its original location.

    The database files go to their place and the set's logs with `restore.env` to --temp.
    Refused, as NTBackup's restore fails, while a store of the set is mounted or is not
    marked "This database can be overwritten by a restore", or when --temp holds another
    storage group's `restore.env`. With --last-restore-set the hard recovery runs when the
    restore ends (as `eseutil /cc` does); without it the databases wait for it.

    Example: `dr lab operator ntbackup-restore --host EX2003 --bkf 'T:\\DRStaging\\First
    Storage Group\\run-11\\First-Storage-Group\\backup.bkf' --temp 'T:\\DRTemp\\First Storage
    Group' --store 'Mailbox Store (EX2003)'`
    """
    from dr.lab.legacy import ntbackup_restore as restore

    target = _host(host)
    chosen = list(stores) if stores else None
    _act(
        lambda: restore(
            target, bkf, backup_set, temp, last_restore_set=last_restore_set, databases=chosen
        ),
        "the restore failed",
    )


@app.command("dismount-store")
def dismount_store(host: str = HostOpt, store: str = StoreOpt) -> None:
    """Exchange System Manager → the store → Dismount Store (the other stores stay mounted).

    Example: `dr lab operator dismount-store --host EX2003 --store 'Mailbox Store (EX2003)'`
    """
    from dr.lab.legacy import esm_dismount

    target = _host(host)
    _act(lambda: esm_dismount(target, store), "dismount")


@app.command("allow-restore")
def allow_restore(host: str = HostOpt, store: str = StoreOpt) -> None:
    """The store's Properties → Database → tick "This database can be overwritten by a restore".

    Example: `dr lab operator allow-restore --host EX2003 --store 'Mailbox Store (EX2003)'`
    """
    from dr.lab.legacy import esm_allow_restore

    target = _host(host)
    _act(lambda: esm_allow_restore(target, store), "allow-restore")


@app.command("mount-store")
def mount_store(host: str = HostOpt, store: str = StoreOpt) -> None:
    """Exchange System Manager → the store → Mount Store; refused for an inconsistent database.

    Example: `dr lab operator mount-store --host EX2003 --store 'Mailbox Store (EX2003)'`
    """
    from dr.lab.legacy import esm_mount

    target = _host(host)
    _act(lambda: esm_mount(target, store), "mount")


@app.command("open-mailbox")
def open_mailbox(host: str = HostOpt, store: str = StoreOpt) -> None:
    """Open a mailbox of the store, as Outlook would, and show a message of it.

    Example: `dr lab operator open-mailbox --host EX2003 --store 'Mailbox Store (EX2003)'`
    """
    from dr.lab.legacy import open_mailbox as open_one

    target = _host(host)
    _act(lambda: open_one(target, store), "open-mailbox")


# -- rebuilding a lost server (dr plan server) ------------------------------------------------


@app.command("reset-computer-account")
def reset_computer_account(host: str = HostOpt) -> None:
    """Active Directory Users and Computers → the computer → Reset Account (not Delete).

    The account keeps its identity, so the server's Exchange objects still belong to it, and
    a machine of that name can join the domain with it again.

    Example: `dr lab operator reset-computer-account --host EX2016`
    """
    from dr.cli.lab import _lab
    from dr.errors import LabError

    lab = _lab()
    name = lab.server(host).name
    try:
        lab.directory_store.reset_account(name)
    except KeyError:
        raise LabError(
            f"there is no computer account {name} in the directory (it was deleted)",
            hint="a deleted account is restored from the Recycle Bin or a backup, not reset",
        ) from None
    console.print(f"the computer account {name} is reset", highlight=False)


@app.command("install-windows")
def install_windows(
    host: str = HostOpt,
    name: str | None = typer.Option(
        None, "--name", help="The computer name given at setup (default: the old name)."
    ),
) -> None:
    """Install Windows on the replacement machine of a lost server: its drives, empty, in a
    workgroup, named --name (the old name, as the step says, unless you give another).

    Example: `dr lab operator install-windows --host EX2016`
    """
    target = _host(host)

    def install() -> str:
        target.install_windows(name or target.server.name)
        target.save()
        drives = ", ".join(f"{d.letter}:" for d in target.server.drives)
        return f"{target.name}: Windows {target.windows} installed, drives {drives}, in a workgroup"

    _act(install, "install-windows")


@app.command("mount-media")
def mount_media(
    host: str = HostOpt,
    drive: str = typer.Option("D", "--drive", help="The letter the DVD / ISO gets."),
    media: str | None = typer.Option(
        None, "--media", help="What the media installs, e.g. '2016 CU23' (default: the server's)."
    ),
) -> None:
    """Mount Exchange's setup media (the ISO of the version and update the server ran) as a
    drive of the replacement machine; `Setup.exe /Mode:RecoverServer` runs from it.

    Example: `dr lab operator mount-media --host EX2016 --drive D`
    """
    target = _host(host)
    label = media or f"{target.version} {target.server.service_pack or ''}".strip()

    def mount() -> str:
        said = target.mount_media(drive, label)
        target.save()
        return said

    _act(mount, "mount-media")


@app.command("open-envelope")
def open_envelope(host: str = HostOpt) -> None:
    """Take a domain controller's DSRM password from where the inventory says it is kept
    (on the lab: printed here; on a real estate: the safe, the vault).

    Example: `dr lab operator open-envelope --host DC2016`
    """
    from dr.cli.lab import _lab

    lab = _lab()
    dc = lab.dc(host)
    console.print(lab.dsrm_password(dc.name), highlight=False)


@app.command("dsrm-sign-in")
def dsrm_sign_in(
    host: str = HostOpt,
    user: str = typer.Option(
        "Administrator", "--user", help="Who signs in at the console (the DSRM administrator)."
    ),
    password_env: str = typer.Option(
        "DR_LAB_DSRM_PASSWORD",
        "--password-env",
        help="The environment variable holding the password typed at the console.",
    ),
) -> None:
    """Sign in at the console of a domain controller in Directory Services Restore Mode.

    In DSRM the directory does not run and sign-in is checked against the local SAM only:
    a domain account fails; the local Administrator with the DSRM password works. Then
    `dr lab exec HOST --cmd "..."` types at that console.

    Example: `DR_LAB_DSRM_PASSWORD=... dr lab operator dsrm-sign-in --host DC2016`
    """
    import os

    from dr.cli.lab import _lab
    from dr.errors import LabError
    from dr.lab.dchost import is_dsrm_admin

    dc = _lab().dc(host)
    state = dc.load()
    if state.mode != "dsrm":
        raise LabError(f"{dc.name} is not in Directory Services Restore Mode",
                       hint="its boot-dsrm step restarts it into DSRM")  # fmt: skip
    if not is_dsrm_admin(dc, user) or os.environ.get(password_env, "") != dc.dsrm_password:
        raise LabError(
            f"{dc.name}: the user name or password is incorrect (in DSRM only the local "
            "Administrator with the DSRM password can sign in; domain accounts cannot)",
            hint=f"sign in as {dc.name}\\Administrator with the DSRM password in ${password_env}",
        )
    state.console = f"{dc.name}\\Administrator"
    dc.save()
    console.print(f"{dc.name}: signed in at the console as {state.console} (DSRM)",
                  highlight=False)  # fmt: skip


@app.command("delete-dc")
def delete_dc(
    host: str = HostOpt,
    dc_name: str = typer.Option(..., "--dc", help="The lost domain controller to remove."),
) -> None:
    """At a domain controller: Active Directory Users and Computers → Domain Controllers →
    delete a lost one, ticking "This Domain Controller is permanently offline" (the metadata
    cleanup of a forest recovery: its server, NTDS Settings and computer objects go).

    Example: `dr lab operator delete-dc --host DC2016 --dc DC1`
    """
    from dr.cli.lab import _lab
    from dr.errors import LabError
    from dr.lab.fsmo import forest_of

    lab = _lab()
    dc = lab.dc(host)
    state = dc.load()
    if state.mode != "normal" or state.ntds != "ok":
        raise LabError(f"{dc.name} does not run its directory: Active Directory Users and "
                       "Computers cannot connect", hint="start it normally first")  # fmt: skip
    names = {n.lower() for f in lab.inventory.forests for d in f.domains
             for n in d.domain_controllers if d.name.lower() == dc.domain.lower()}  # fmt: skip
    if dc_name.lower() not in names or dc_name.lower() == dc.name.lower():
        raise LabError(f"{dc_name} is not another domain controller of {dc.domain}",
                       hint=f"name one of {sorted(names - {dc.name.lower()})}")  # fmt: skip
    forest = forest_of(dc)
    data = forest.load()
    if dc_name.upper() not in data["removed"]:
        data["removed"].append(dc_name.upper())
    forest.save(data)
    console.print(f"{dc.name}: {dc_name} deleted from Domain Controllers (permanently offline)",
                  highlight=False)  # fmt: skip
