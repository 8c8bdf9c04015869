"""Transport overhead: local subprocess vs WinRM against the loopback WinRS endpoint.

Run: .venv/bin/python benchmarks/transports_bench.py
"""

from __future__ import annotations

import logging
import time

from dr.lab.pslite import PowerShellLite
from dr.lab.winrs import WinRSServer
from engine.transports.base import Command
from engine.transports.credentials import Credential
from engine.transports.local import LocalTransport
from engine.transports.winrm import WinRMSettings, WinRMTransport

ROUNDS = 50
OUTPUT_MIB = 10


def per_command_ms(run: object, command: Command) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS):
        run(command, 10)  # type: ignore[operator]
    return (time.perf_counter() - start) / ROUNDS * 1000


def main() -> None:
    logging.disable(logging.WARNING)
    local_ms = per_command_ms(LocalTransport().run, Command("echo x", shell="posix"))
    with WinRSServer(PowerShellLite(), "u", "p") as server:
        settings = WinRMSettings(
            host="127.0.0.1", port=server.port, scheme="http", auth="basic", allow_plaintext=True
        )
        winrm = WinRMTransport(settings, Credential("u", "p"))
        winrm_ms = per_command_ms(winrm.run, Command("Write-Output 'x'"))
        start = time.perf_counter()
        big = Command(f"[Console]::Out.Write('x' * {OUTPUT_MIB * 1024 * 1024})")
        size = len(winrm.run(big, 300).stdout)
        seconds = time.perf_counter() - start
        winrm.close()
    print(f"local  one command : {local_ms:7.1f} ms")
    print(f"winrm  one command : {winrm_ms:7.1f} ms  ({winrm_ms / local_ms:.1f}x local)")
    rate = size / 2**20 / seconds
    print(f"winrm  {size / 2**20:.0f} MiB stdout : {seconds:7.2f} s   ({rate:.1f} MiB/s)")


if __name__ == "__main__":
    main()
