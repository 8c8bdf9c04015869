"""load_inventory: every kind of problem is reported at its file, line, column and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dr.errors import InventoryError, Problem
from dr.model.inventory import Inventory, load_inventory

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "estate.yaml"
TEXT = EXAMPLE.read_text(encoding="utf-8")


@dataclass
class Broken:
    path: Path
    text: str

    def at(self, needle: str) -> tuple[int, int]:
        """1-based line and column of the first occurrence of ``needle``."""
        index = self.text.index(needle)
        line = self.text.count("\n", 0, index) + 1
        column = index - (self.text.rfind("\n", 0, index) + 1) + 1
        return line, column


def broken(tmp_path: Path, old: str, new: str, nth: int = 1) -> Broken:
    """The example estate with the ``nth`` occurrence of ``old`` replaced by ``new``."""
    start = -1
    for _ in range(nth):
        start = TEXT.index(old, start + 1)
    text = TEXT[:start] + new + TEXT[start + len(old) :]
    path = tmp_path / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    return Broken(path, text)


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.problems, "an InventoryError always lists its problems"
    return info.value.problems


def only(problems: list[Problem], field: str) -> Problem:
    found = [p for p in problems if p.field == field]
    assert len(found) == 1, [p.render() for p in problems]
    return found[0]


def assert_at(b: Broken, field: str, needle: str, *words: str) -> Problem:
    problem = only(problems_of(b.path), field)
    assert problem.file == str(b.path)
    assert (problem.line, problem.column) == b.at(needle), problem.render()
    for word in words:
        assert word in problem.message, problem.message
    return problem


def test_example_estate_loads() -> None:
    inv = load_inventory(EXAMPLE)
    assert isinstance(inv, Inventory)
    names = [s.name for s in inv.servers]
    assert {"DC1", "EX2003", "EX2016"} <= set(names)
    ex2003 = inv.server("EX2003")
    assert [sg.log_prefix for sg in ex2003.storage_groups] == ["E00", "E01"]
    assert ex2003.storage_groups[0].databases[0].stm is not None
    assert all(len(sg.databases) == 1 for sg in inv.server("EX2016").storage_groups)
    assert inv.sla.default.rpo == 3600 and inv.sla.default.rto == 4 * 3600
    assert inv.retention.deleted_mailboxes == 30 * 86400
    assert len(inv.mailboxes) == 10
    assert inv.recovery_forests[0].organization == inv.organization.name


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    b = broken(tmp_path, "  name: Contoso\n", "  name: Contoso\n   bad: [unclosed\n")
    (problem,) = problems_of(b.path)
    assert problem.file == str(b.path)
    assert problem.line is not None and problem.column is not None
    assert problem.line >= b.at("bad: [unclosed")[0]
    assert "YAML syntax" in problem.message


def test_duplicate_key(tmp_path: Path) -> None:
    b = broken(
        tmp_path, "        netbios: CORP\n", "        netbios: CORP\n        netbios: CORP2\n"
    )
    (problem,) = problems_of(b.path)
    assert (problem.line, problem.column) == b.at("netbios: CORP2")
    assert problem.field == "forests[0].domains[0].netbios"
    assert "twice" in problem.message


def test_field_rule_error_located_at_value(tmp_path: Path) -> None:
    b = broken(tmp_path, "log_prefix: E01", "log_prefix: X01")
    assert_at(b, "servers[2].storage_groups[1].log_prefix", "X01", "not a log prefix")


def test_missing_required_field_located_at_its_parent(tmp_path: Path) -> None:
    b = broken(tmp_path, "        log_prefix: E01\n", "")
    problem = only(problems_of(b.path), "servers[2].storage_groups[1].log_prefix")
    assert "missing required field 'log_prefix'" in problem.message
    assert problem.line == b.at("name: Second Storage Group")[0]


def test_unknown_field(tmp_path: Path) -> None:
    b = broken(tmp_path, "        netbios: CORP\n", "        netbois: CORP\n")
    assert_at(b, "forests[0].domains[0].netbois", "CORP", "unknown field")


def test_literal_error_shows_what_was_written(tmp_path: Path) -> None:
    b = broken(tmp_path, 'windows_version: "2016"', "windows_version: 2017")
    assert_at(b, "servers[1].windows_version", "2017", "'2017'", "'2016'")


def test_unknown_server_for_a_backup_set(tmp_path: Path) -> None:
    b = broken(tmp_path, "    host: KMS1\n    type: kms", "    host: KMS9\n    type: kms")
    field = "backup_sets[10].host"
    assert_at(b, field, "KMS9", "unknown server 'KMS9'")


def test_unknown_domain(tmp_path: Path) -> None:
    b = broken(tmp_path, "domain: corp.contoso.com", "domain: corp.contoso.net", nth=3)
    assert_at(b, "servers[2].domain", "corp.contoso.net", "unknown domain")


def test_unknown_administrative_group(tmp_path: Path) -> None:
    old = "administrative_group: First Administrative Group"
    b = broken(tmp_path, old, "administrative_group: Fist Administrative Group")
    assert_at(b, "servers[2].administrative_group", "Fist", "unknown administrative group")


def test_unknown_storage_group_in_covers(tmp_path: Path) -> None:
    old = "covers: [First Storage Group, Second Storage Group]"
    b = broken(tmp_path, old, "covers: [First Storage Group, Third Storage Group]")
    assert_at(b, "backup_sets[6].covers[1]", "Third Storage Group", "EX2003 has no storage group")


def test_unknown_mailbox_database(tmp_path: Path) -> None:
    b = broken(tmp_path, "database: Sales Store,", "database: Sales Stor,")
    assert_at(b, "mailboxes[3].database", "Sales Stor,", "unknown database 'Sales Stor'")


def test_mailbox_on_a_public_store(tmp_path: Path) -> None:
    old = "database: First Storage Group/Mailbox Store (EX2003),"
    b = broken(tmp_path, old, "database: First Storage Group/Public Folder Store (EX2003),")
    assert_at(b, "mailboxes[1].database", "First Storage Group/Public", "public folder store")


def test_unknown_secret(tmp_path: Path) -> None:
    b = broken(tmp_path, "encryption: {key_ref: backup-key}", "encryption: {key_ref: backup-kee}")
    assert_at(b, "backup_sets[0].encryption.key_ref", "backup-kee", "unknown secret")


def test_duplicate_server(tmp_path: Path) -> None:
    b = broken(tmp_path, "  - name: KMS1\n", "  - name: EX2003\n")
    problems = problems_of(b.path)
    problem = only(problems, "servers[3].name")
    assert (problem.line, problem.column) == b.at(
        'EX2003\n    domain: corp.contoso.com\n    windows_version: "2000"'
    )
    assert "duplicate server 'EX2003'" in problem.message


def test_duplicate_storage_group_and_database(tmp_path: Path) -> None:
    b = broken(tmp_path, "- name: Second Storage Group", "- name: first storage group")
    assert_at(b, "servers[2].storage_groups[1].name", "first storage group", "duplicate storage")


def test_duplicate_mailbox_and_set(tmp_path: Path) -> None:
    b = broken(tmp_path, "alias: helpdesk", "alias: finance")
    assert_at(b, "mailboxes[9].alias", "finance, display_name: Helpdesk", "duplicate mailbox")
    b = broken(tmp_path, "name: kms1-kms", "name: dc1-ca")
    assert_at(b, "backup_sets[10].name", "dc1-ca\n    host: KMS1", "duplicate backup set")


def test_two_storage_groups_with_one_log_prefix(tmp_path: Path) -> None:
    b = broken(tmp_path, "log_prefix: E01", "log_prefix: E00 ")
    problem = assert_at(
        b, "servers[2].storage_groups[1].log_prefix", "E00 ", "duplicate log prefix"
    )
    assert "line 73" in problem.message


def test_database_on_a_missing_drive(tmp_path: Path) -> None:
    b = broken(tmp_path, r"edb: E:\ExchangeDatabases\DB02\DB02.edb", r"edb: G:\DB02.edb")
    assert_at(b, "servers[4].storage_groups[1].databases[0].edb", r"G:\DB02", "drive G:")


def test_log_path_on_a_missing_drive(tmp_path: Path) -> None:
    old = r"log_path: F:\ExchangeLogs\DB01"
    b = broken(tmp_path, old, r"log_path: L:\ExchangeLogs\DB01")
    assert_at(b, "servers[4].storage_groups[0].log_path", r"L:\Exch", "EX2016 does not have")


def test_stm_on_a_2016_server(tmp_path: Path) -> None:
    old = "            edb: E:\\ExchangeDatabases\\DB01\\DB01.edb\n"
    new = old + "            stm: E:\\ExchangeDatabases\\DB01\\DB01.stm\n"
    b = broken(tmp_path, old, new)
    assert_at(
        b,
        "servers[4].storage_groups[0].databases[0].stm",
        r"E:\ExchangeDatabases\DB01\DB01.stm",
        ".stm",
    )


def test_modern_storage_group_with_two_databases(tmp_path: Path) -> None:
    old = "            page_size_kib: 32\n      - name: DB02\n"
    new = (
        "            page_size_kib: 32\n"
        "          - name: DB01B\n"
        "            edb: E:\\ExchangeDatabases\\DB01B\\DB01B.edb\n"
        "      - name: DB02\n"
    )
    b = broken(tmp_path, old, new)
    assert_at(b, "servers[4].storage_groups[0].databases[1]", "name: DB01B", "one database per log")


def test_exchange_server_without_administrative_group(tmp_path: Path) -> None:
    old = "    administrative_group: Exchange Administrative Group (FYDIBOHF23SPDLT)\n"
    b = broken(tmp_path, old, "")
    assert_at(b, "servers[4].name", "EX2016\n", "no administrative_group")


def test_domain_controller_of_another_domain(tmp_path: Path) -> None:
    b = broken(tmp_path, "domain_controllers: [DC1, DC2016]", "domain_controllers: [DC1, EX2016]")
    # EX2016 is in the domain, so that is fine; a server of no listed domain is not
    assert load_inventory(b.path)
    old = "        netbios: CORP\n        domain_controllers: [DC1, DC2016]\n"
    new = old + "      - name: emea.contoso.com\n        domain_controllers: [DC1]\n"
    b = broken(tmp_path, old, new)
    assert_at(b, "forests[0].domains[1].domain_controllers[0]", "DC1]\n\nservers", "not of 'emea")


def test_domain_controller_that_is_not_a_server(tmp_path: Path) -> None:
    b = broken(tmp_path, "domain_controllers: [DC1, DC2016]", "domain_controllers: [DC1, DC3]")
    assert_at(b, "forests[0].domains[0].domain_controllers[1]", "DC3", "unknown server 'DC3'")


def test_set_for_a_feature_the_host_lacks(tmp_path: Path) -> None:
    b = broken(
        tmp_path,
        "    host: EX2003\n    type: iis-metabase",
        "    host: EX2016\n    type: iis-metabase",
    )
    assert_at(b, "backup_sets[8].host", "EX2016\n    type: iis", "no IIS metabase")


def test_mail_level_set_for_a_mailbox_on_another_server(tmp_path: Path) -> None:
    b = broken(tmp_path, "covers: [finance, abakker]", "covers: [finance, jsmith]")
    assert_at(b, "backup_sets[14].covers[1]", "jsmith]", "EX2016 holds no mailbox 'jsmith'")


def test_incremental_with_circular_logging(tmp_path: Path) -> None:
    b = broken(tmp_path, "circular_logging: false", "circular_logging: true")
    problems = problems_of(b.path)
    inc = only(problems, "backup_sets[6].schedules[1].backup_type")
    assert (inc.line, inc.column) == b.at(
        'incremental}\n      - {every: week, weekday: wed, at: "12:00"'
    )
    assert "circular logging" in inc.message
    diff = only(problems, "backup_sets[6].schedules[2].backup_type")
    assert "differential" in diff.message
    assert not [p for p in problems if p.field == "backup_sets[6].schedules[0].backup_type"]


def test_temp_folder_on_a_critical_volume(tmp_path: Path) -> None:
    old = (
        "    type: system-state\n    schedules:\n"
        '      - {every: day, at: "01:00", backup_type: full}\n    temp_folder: D:\\DRTemp'
    )
    b = broken(tmp_path, old, old.replace("D:\\DRTemp", "C:\\DRTemp"))
    assert_at(b, "backup_sets[0].temp_folder", "C:\\DRTemp", "critical volume C:")


@pytest.mark.parametrize(
    ("old", "new", "field", "needle"),
    [
        (
            '    location: "Safe 2 (server room B), envelope 21"\n',
            '    location: "Safe 2 (server room B), envelope 21"\n    value: Tr0ub4dor&3\n',
            "secrets[2].value",
            "Tr0ub4dor&3",
        ),
        (
            "        netbios: CORP\n",
            "        netbios: CORP\n        admin_password: Tr0ub4dor&3\n",
            "forests[0].domains[0].admin_password",
            "Tr0ub4dor&3",
        ),
        (
            "  default_mb_s: 60\n",
            "  default_mb_s: 60\n  passphrase: Tr0ub4dor&3\n",
            "throughput.passphrase",
            "Tr0ub4dor&3",
        ),
    ],
)
def test_secret_value_refused(tmp_path: Path, old: str, new: str, field: str, needle: str) -> None:
    b = broken(tmp_path, old, new)
    problems = problems_of(b.path)
    problem = assert_at(b, field, needle, "where it is kept")
    assert all("Tr0ub4dor" not in p.render() for p in problems)
    assert len([p for p in problems if p.field == field]) == 1  # not also "unknown field"
    assert problem.message.startswith("a secret value does not belong")


def test_recovery_forest_legacy_dn_must_match(tmp_path: Path) -> None:
    old = "legacy_exchange_dn: /o=Contoso/ou=First Administrative Group"
    b = broken(
        tmp_path, old, "legacy_exchange_dn: /o=Contoso Lab/ou=First Administrative Group", nth=7
    )
    assert_at(
        b,
        "recovery_forests[0].administrative_groups[0].legacy_exchange_dn",
        "/o=Contoso Lab",
        "not mount",
    )


def test_schedule_shape_and_time(tmp_path: Path) -> None:
    b = broken(
        tmp_path, '{every: day, at: "01:00", backup_type: full}', "{every: day, backup_type: full}"
    )
    assert_at(b, "backup_sets[0].schedules[0].every", "day, backup_type", "needs at")
    b = broken(tmp_path, 'at: "01:00"', 'at: "25:00"')
    assert_at(b, "backup_sets[0].schedules[0].at", '"25:00"', "not a time of day")


def test_unquoted_clock_time_is_read_as_written(tmp_path: Path) -> None:
    b = broken(tmp_path, 'at: "22:00", backup_type: full', "at: 22:00, backup_type: full")
    inv = load_inventory(b.path)
    assert inv.backup_sets[6].schedules[0].at == "22:00"


def test_bad_timezone(tmp_path: Path) -> None:
    b = broken(tmp_path, "timezone: Europe/Amsterdam", "timezone: Europe/Amsterdamm")
    assert_at(b, "timezone", "Europe/Amsterdamm", "not a time zone")


def test_every_problem_is_reported_in_file_order(tmp_path: Path) -> None:
    text = TEXT.replace("domain_controllers: [DC1, DC2016]", "domain_controllers: [DC1, DC3]")
    text = text.replace("encryption: {key_ref: backup-key}", "encryption: {key_ref: nokey}")
    text = text.replace("alias: helpdesk", "alias: finance")
    path = tmp_path / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    problems = info.value.problems
    assert len(problems) == 1 + 1 + 15  # the DC, the mailbox, every set's key
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)
    assert "17 problems" in info.value.message
    assert all(line.startswith("E2100 ") for line in info.value.lines())


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "nope.yaml")
    assert "no such file" in problem.message
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    (problem,) = problems_of(path)
    assert (problem.line, problem.column) == (1, 1)
    assert "mapping" in problem.message
