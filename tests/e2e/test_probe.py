"""`dr inventory probe`: each lab host is asked over WinRM which PowerShell it has; the
answer is recorded and from then on decides which step variants plans get."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.e2e.conftest import ROOT, LabWorkspace


def _probe(env: dict[str, str], *hosts: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        [sys.executable, "-m", "dr", "inventory", "probe", *hosts, "--json"],
        capture_output=True, text=True, env=env, check=False, stdin=subprocess.DEVNULL,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return {row["host"]: row for row in json.loads(out.stdout)["hosts"]}


def _powershell(plan: dict, host: str) -> set[str]:  # type: ignore[type-arg]
    return {s["platform"].get("powershell") for s in plan["steps"]
            if s.get("host") == host and s.get("platform")}  # fmt: skip


def test_probe_records_what_each_host_answers(lab_ws: LabWorkspace) -> None:
    """The inventory forgot that WMF 2.0 is on EX2003: the host's answer is recorded and
    is what the workspace's inventory (and so the planner) says from then on."""
    estate = lab_ws.root / "estate.yaml"
    text = (ROOT / "examples" / "estate.yaml").read_text(encoding="utf-8")
    # the lab's RX2003 as a Windows 2003 server without WMF (the example gives it WMF 2.0)
    bare = re.sub(r'(- name: RX2003\n(?:.*\n)*?)\s+powershell: "2\.0".*\n', r"\1", text,
                  count=1)  # fmt: skip
    assert bare != text
    (lab_ws.root / "lab-estate.yaml").write_text(bare, encoding="utf-8")
    state = json.loads((lab_ws.ws / "lab" / "lab.json").read_text(encoding="utf-8"))
    state["inventory"] = str(lab_ws.root / "lab-estate.yaml")
    (lab_ws.ws / "lab" / "lab.json").write_text(json.dumps(state), encoding="utf-8")
    forgot = re.sub(r'\n\s+powershell: "2\.0".*', "", bare, count=1)
    assert forgot != bare
    estate.write_text(forgot, encoding="utf-8")
    lab_ws.dr("inventory", "use", str(estate))

    with lab_ws.serving() as env:
        rows = _probe(env, "EX2016", "EX2003", "RX2003")
    assert rows["EX2016"]["powershell"] == "5.1" == rows["EX2016"]["inventory_implies"]
    assert rows["EX2003"] == {
        "host": "EX2003", "powershell": "2.0", "inventory_implies": "none", "error": None,
    }  # fmt: skip
    assert rows["RX2003"]["powershell"] == "none"  # Windows 2003 without WMF: cmd answers
    recorded = json.loads((lab_ws.ws / "host-facts.json").read_text(encoding="utf-8"))
    assert {h["host"]: h["powershell"] for h in recorded["hosts"]} == {
        "EX2016": "5.1", "EX2003": "2.0", "RX2003": "none",
    }  # fmt: skip
    shown = json.loads(lab_ws.dr("inventory", "show", "--json").stdout)
    ex2003 = next(s for s in shown["servers"] if s["name"] == "EX2003")
    assert ex2003["powershell"] == "2.0"  # what the planner reads from now on


def test_a_recorded_answer_changes_the_variant_plans_get(lab_ws: LabWorkspace) -> None:
    """A host recorded as PowerShell 2.0 is planned as one: every step on it carries 2.0 in
    its platform, which is what the step library selects variants by (tests/lab/test_check.py
    holds each variant to the cmdlets of the PowerShell it names)."""
    at = str(lab_ws.lab().state["now"])
    before = lab_ws.plan("database", "--db", "DB01", "--at", at)
    facts = {"format": "dr-host-facts/1", "hosts": [
        {"host": "EX2016", "powershell": "2.0", "probed_at": "2026-12-01T00:00:00Z"},
    ]}  # fmt: skip
    (lab_ws.ws / "host-facts.json").write_text(json.dumps(facts), encoding="utf-8")
    after = lab_ws.plan("database", "--db", "DB01", "--at", at)
    assert _powershell(before, "EX2016") == {"5.1"}
    assert _powershell(after, "EX2016") == {"2.0"}
    assert before["digest"] != after["digest"]


def test_probe_of_an_unknown_server_is_one_clear_line(lab_ws: LabWorkspace) -> None:
    out = lab_ws.dr("inventory", "probe", "NOSUCH", check=False)
    assert out.returncode != 0
    assert "'NOSUCH' is not a server of the inventory" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
