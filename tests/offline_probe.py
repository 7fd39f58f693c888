"""Ingest and search while an audit hook records every socket the process tries to open."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

attempts: list[str] = []


def _is_loopback(host: object) -> bool:
    if isinstance(host, str) and host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            attempts.append(f"connect {address}")
    elif event == "socket.getaddrinfo":
        if not _is_loopback(args[0]):
            attempts.append(f"getaddrinfo {args[0]}")


sys.addaudithook(_audit)

from archivist.cli import main  # noqa: E402

data, corpus = Path(sys.argv[1]), Path(sys.argv[2])
assert main(["--data-dir", str(data), "ingest", "-q", str(corpus)]) == 0
assert main(["--data-dir", str(data), "search", "lighthouse"]) == 0
print("ATTEMPTS", len(attempts))
for attempt in attempts:
    print(attempt)
