"""The lab's directory built from the example inventory."""

from pathlib import Path

from dr.lab.directory import build_directory, domain_dn
from dr.model.load import load_inventory

ESTATE = Path(__file__).resolve().parents[2] / "examples" / "estate.yaml"


def test_directory_holds_computers_servers_groups_and_mailboxes() -> None:
    inv = load_inventory(ESTATE)
    found = build_directory(inv, "corp.contoso.com")
    classes = {o["objectClass"] for o in found.values()}
    assert classes == {"computer", "msExchExchangeServer", "msExchAdminGroup", "user"}
    dc = found["cn=dc1,cn=computers," + domain_dn("corp.contoso.com").lower()]
    assert dc["accountState"] == "present"
    users = [o for o in found.values() if o["objectClass"] == "user"]
    assert {u["mailNickname"] for u in users} == {m.alias for m in inv.mailboxes}


def test_directory_is_the_same_twice() -> None:
    inv = load_inventory(ESTATE)
    assert build_directory(inv, "corp.contoso.com") == build_directory(inv, "corp.contoso.com")
