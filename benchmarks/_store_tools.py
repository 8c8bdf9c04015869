"""The backup tools under test, each driven as a subprocess and measured the same way.

restic and borg are external programs; dr is driven through its own CLI (``dr store init``,
``dr backup run``, ``dr store restore``, ``dr store verify --read-data``) so that its figures
include what a user pays: interpreter start-up, key derivation, locking and the manifest
commit, just as restic's and borg's include theirs.

Every command runs under GNU ``/usr/bin/time -f %M`` for the peak resident set: reading
``ru_maxrss`` of a child directly would report the driver's own high-water mark, which a
forked child inherits across exec. CPU time (user + sys) comes from ``os.wait4`` on the
child, which covers the whole process tree it reaped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GNU_TIME = "/usr/bin/time"
INSTALL_HINT = {
    "restic": "apt-get install -y restic (Debian/Ubuntu) or https://restic.net",
    "borg": "apt-get install -y borgbackup (Debian/Ubuntu) or https://borgbackup.org",
    "time": "apt-get install -y time (GNU time, for peak memory)",
}
BENCH_PASSWORD = "store-bench-not-a-secret"


class ToolFailed(RuntimeError):
    """A tool exited non-zero: the benchmark stops and shows the tool's own message."""


@dataclass
class Measured:
    wall: float
    cpu: float
    rss_mib: float | None
    stdout: str


def measured(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> Measured:
    """Run ``cmd`` to completion; its wall time, user+sys CPU and peak RSS."""
    time_file = log.with_suffix(".rss")
    prefix = [GNU_TIME, "-f", "%M", "-o", str(time_file)] if Path(GNU_TIME).exists() else []
    with open(log.with_suffix(".out"), "wb") as out, open(log.with_suffix(".err"), "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            prefix + cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.with_suffix(".err").read_text(errors="replace")[-2000:]
        raise ToolFailed(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{tail}")
    rss = _read_rss(time_file) if prefix else None
    stdout = log.with_suffix(".out").read_text(errors="replace")
    return Measured(wall, usage.ru_utime + usage.ru_stime, rss, stdout)


def _read_rss(path: Path) -> float | None:
    try:
        return int(path.read_text().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        return None


def du_bytes(path: Path) -> int:
    """Bytes the repository occupies, as ``du -sb`` counts them (apparent sizes)."""
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            p = Path(dirpath) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def capture(cmd: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"unavailable ({exc})"
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""


class Tool:
    """One repository of one tool for one workload."""

    name = "tool"
    program = ""
    verify_command = ""

    def __init__(self, work: Path, workload: str, env: dict[str, str]) -> None:
        self.work = work
        self.repo = work / "repos" / workload / self.name
        self.logs = work / "logs" / workload
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.versions: dict[int, str] = {}  # round -> snapshot / archive / version id
        self.reported: dict[int, int | None] = {}  # round -> bytes the tool says it added

    def run(self, args: list[str], tag: str, cwd: Path | None = None) -> Measured:
        return measured(args, self.env, cwd or self.work, self.logs / f"{self.name}-{tag}")

    def init(self) -> str:
        raise NotImplementedError

    def backup(self, rnd: int, source: Path) -> Measured:
        raise NotImplementedError

    def restore(self, rnd: int, target: Path) -> Measured:
        raise NotImplementedError

    def restored_root(self, target: Path, source: Path) -> Path:
        """Where the restored copy of ``source`` lands under ``target``."""
        return target

    def verify(self) -> Measured:
        raise NotImplementedError

    @classmethod
    def version(cls, env: dict[str, str]) -> str:
        return capture([cls.program, "--version"], env)


class Restic(Tool):
    name = "restic"
    program = "restic"
    verify_command = "restic check --read-data"

    def base(self) -> list[str]:
        return ["restic", "-r", str(self.repo), "--cache-dir", str(self.work / "cache" / "restic")]

    def init(self) -> str:
        self.run([*self.base(), "init"], "init")
        return "restic init defaults: repository v2, compression auto (zstd), CDC ~1 MiB"

    def backup(self, rnd: int, source: Path) -> Measured:
        args = [*self.base(), "backup", "--json", "--host", "bench", str(source)]
        m = self.run(args, f"backup{rnd:02d}")
        summary = [json.loads(x) for x in m.stdout.splitlines() if '"summary"' in x][-1]
        self.versions[rnd] = summary["snapshot_id"]
        self.reported[rnd] = summary.get("data_added")
        return m

    def restore(self, rnd: int, target: Path) -> Measured:
        args = [*self.base(), "restore", self.versions[rnd], "--target", str(target)]
        return self.run(args, f"restore{rnd:02d}")

    def restored_root(self, target: Path, source: Path) -> Path:
        return target / source.relative_to(source.anchor)

    def verify(self) -> Measured:
        return self.run([*self.base(), "check", "--read-data"], "verify")

    @classmethod
    def version(cls, env: dict[str, str]) -> str:
        return capture(["restic", "version"], env)


class Borg(Tool):
    name = "borg"
    program = "borg"
    verify_command = "borg check --verify-data"
    chunker: tuple[str, ...] = ()

    def init(self) -> str:
        self.run(["borg", "init", "--encryption=repokey-blake2", str(self.repo)], "init")
        chunks = self.chunker[1] if self.chunker else "default buzhash 19,23,21,4095 (~2 MiB)"
        return f"repokey-blake2, --compression zstd,3, chunker {chunks}"

    def backup(self, rnd: int, source: Path) -> Measured:
        name = f"round{rnd:02d}"
        args = ["borg", "create", "--json", "--compression", "zstd,3", *self.chunker]
        # a relative path, so `borg extract` recreates <target>/<source name>
        m = self.run(
            [*args, f"{self.repo}::{name}", source.name], f"backup{rnd:02d}", source.parent
        )
        self.versions[rnd] = name
        self.reported[rnd] = json.loads(m.stdout)["archive"]["stats"].get("deduplicated_size")
        return m

    def restore(self, rnd: int, target: Path) -> Measured:
        args = ["borg", "extract", f"{self.repo}::{self.versions[rnd]}"]
        return self.run(args, f"restore{rnd:02d}", cwd=target)

    def restored_root(self, target: Path, source: Path) -> Path:
        return target / source.name

    def verify(self) -> Measured:
        return self.run(["borg", "check", "--verify-data", str(self.repo)], "verify")


class BorgFixed(Borg):
    name = "borg-fixed"
    chunker = ("--chunker-params", "fixed,65536")


class Dr(Tool):
    name = "dr"
    program = "dr"
    verify_command = "dr store verify --read-data"

    def base(self) -> list[str]:
        return dr_command(self.env)

    def init(self) -> str:
        self.run([*self.base(), "store", "init", str(self.repo), "--json"], "init")
        desc = "dr store init defaults: AES-256-GCM, Argon2id key file, zstd 3 (normal)"
        if self.env.get("DR_KDF_PROFILE") == "fast":
            desc += "; DR_KDF_PROFILE=fast (test-only cheap key derivation)"
        return desc

    def backup(self, rnd: int, source: Path) -> Measured:
        args = [*self.base(), "backup", "run", "bench", "--from", str(source)]
        m = self.run([*args, "--repo", str(self.repo), "--json"], f"backup{rnd:02d}")
        summary = json.loads(m.stdout)
        self.versions[rnd] = summary["version"]
        self.reported[rnd] = summary.get("stored")
        return m

    def restore(self, rnd: int, target: Path) -> Measured:
        args = [*self.base(), "store", "restore", self.versions[rnd], "--to", str(target)]
        return self.run([*args, "--repo", str(self.repo), "--json"], f"restore{rnd:02d}")

    def verify(self) -> Measured:
        args = [*self.base(), "store", "verify", "--read-data", "--repo", str(self.repo)]
        return self.run([*args, "--json"], "verify")

    @classmethod
    def version(cls, env: dict[str, str]) -> str:
        return capture([*dr_command(env), "--version"], env) or "dr (version unknown)"


DR_SNAPSHOT_ENV = "STORE_BENCH_DR_SRC"


def dr_command(env: dict[str, str]) -> list[str]:
    """How to run dr: from the run's source snapshot if there is one, else the installed CLI."""
    if env.get(DR_SNAPSHOT_ENV):
        return [sys.executable, "-m", "dr"]
    script = Path(sys.executable).with_name("dr")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dr"]


def snapshot_dr(work: Path, env: dict[str, str]) -> str:
    """Copy dr's source as it is now and run that copy for the whole benchmark.

    dr is developed in the same tree the benchmark runs from; without a snapshot an edit
    made during a 20-minute run would mix two versions of the store in one report. Returns
    a description naming the commit and a digest of the copied ``dr/store`` tree.
    """
    import dr

    src = Path(dr.__file__).resolve().parent.parent
    dest = work / "dr-src"
    for package in ("dr", "engine"):
        if (src / package).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(src / package, dest / package, ignore=ignore)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(dest), env.get("PYTHONPATH")]))
    env[DR_SNAPSHOT_ENV] = str(dest)
    return _source_description(src, dest)


def _source_description(src: Path, dest: Path) -> str:
    commit = capture(["git", "-C", str(src), "rev-parse", "--short", "HEAD"])
    dirty = capture(["git", "-C", str(src), "status", "--porcelain", "--", "dr/store"])
    h = hashlib.sha256()
    for path in sorted((dest / "dr" / "store").rglob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    state = "with uncommitted changes in dr/store" if dirty else "dr/store as committed"
    return f"source snapshot taken at start: commit {commit}, {state}; dr/store digest " + (
        f"{h.hexdigest()[:16]}"
    )


TOOLS: dict[str, type[Tool]] = {
    "restic": Restic,
    "borg": Borg,
    "borg-fixed": BorgFixed,
    "dr": Dr,
}


def missing_programs(names: list[str]) -> list[str]:
    """One line per requested tool that is not installed, saying how to install it."""
    programs = dict.fromkeys(TOOLS[name].program for name in names)  # borg once for both
    return [
        f"{program} not found: {INSTALL_HINT[program]}"
        for program in programs
        if program != "dr" and shutil.which(program) is None
    ]


def tool_env(work: Path) -> dict[str, str]:
    """Everything the tools write (caches, keys, config) stays inside the work dir."""
    env = dict(os.environ)
    home = work / "home"
    env.update(
        {
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "TMPDIR": str(work / "tmp"),
            "RESTIC_PASSWORD": BENCH_PASSWORD,
            "BORG_PASSPHRASE": BENCH_PASSWORD,
            "BORG_BASE_DIR": str(work / "borg-base"),
            "BORG_DISPLAY_PASSPHRASE": "no",
            "DR_PASSPHRASE": BENCH_PASSWORD,
            "DR_KEY_DIR": str(work / "dr-keys"),
            "DR_WORKSPACE": str(work / "dr-workspace"),
        }
    )
    env.pop("DR_REPOSITORY", None)
    for d in ("home", "tmp", "borg-base", "dr-keys", "cache"):
        (work / d).mkdir(parents=True, exist_ok=True)
    return env


def describe(m: Measured | None) -> dict[str, Any]:
    """The figures of one command (all None when it failed)."""
    if m is None:
        return {"wall": None, "cpu": None, "rss_mib": None}
    return {"wall": m.wall, "cpu": m.cpu, "rss_mib": m.rss_mib}
