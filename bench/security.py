"""The team server under attack, in figures.

1. The policy table, the attacking requests and the fuzzing (``tests/test_security.py``,
   ``tests/test_fuzz.py`` with ``--examples`` fuzzed requests): calls x identities tried, fuzzed
   requests sent, attacking requests sent, and the failures among them (leaks, 500s, hangs).
2. Memory: a real ``archivist-server serve`` process, its resident memory at rest, and its
   peak while 16 clients at once send the largest request it accepts (a search naming 10,000
   paths with a 20,000-character query, about 1 MB) and while 16 send a 100 MB body (refused
   after the first megabyte), with the time each took.

    python bench/security.py [--examples 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.calls import MAX_ITEMS, MAX_TEXT  # noqa: E402
from rag.service import codec  # noqa: E402


def run_tests(examples: int) -> dict[str, str]:
    """Part 1: the security and fuzz tests, their figures as they print them."""
    env = {**os.environ, "ARCHIVIST_FUZZ_EXAMPLES": str(examples), "QT_QPA_PLATFORM": "offscreen"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider",
                           "tests/test_security.py", "tests/test_fuzz.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    figures = {"tests": done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)",
               "seconds": f"{time.monotonic() - started:.0f}"}
    for pattern, name in ((r"policy table: (.*)", "table"), (r"attacking requests sent: (\d+)", "attacks"),
                          (r"fuzzed requests sent: (.*)", "fuzz")):
        found = re.search(pattern, done.stdout)
        figures[name] = found.group(1) if found else "(not printed)"
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
    return figures


class Sampler:
    """The peak resident memory of a process (children included), sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in [self.process, *self.process.children(recursive=True)])

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def memory() -> dict[str, str]:
    """Part 2: a real server process under the largest accepted request, and a huge refused one."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        home, offered = root / "home", root / "offered"
        offered.mkdir(parents=True)
        (offered / "team.txt").write_text("Team handbook. The canteen opens at eight.")
        home.mkdir()
        (home / "server.toml").write_text(f'[server]\nfolders = ["{offered}"]\n')
        server = [sys.executable, "-m", "server.cli", "--home", str(home)]
        token = subprocess.run([*server, "add-user", "ada", "--admin"], capture_output=True, text=True,
                               check=True).stdout.splitlines()[-1]
        port = _free_port()
        log = (root / "server.log").open("wb")
        process = subprocess.Popen([*server, "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            _wait(url, process)
            call = {"id": "0", "call": "ingest", "args": codec.encode({"paths": [offered], "collection": "Team"})}
            httpx.post(url + "/v1/call", content=json.dumps(call), headers=headers, timeout=300).raise_for_status()
            paths = [offered / f"folder-{i:05d}" / "a-document-with-a-long-name.txt" for i in range(MAX_ITEMS)]
            largest = json.dumps({"id": "1", "call": "search", "args": codec.encode(
                {"query": "canteen " * (MAX_TEXT // 8), "collection": "Team", "paths": paths})})
            figures = {"at rest": f"{Sampler(process.pid).rss() / 2**20:.0f} MB",
                       "largest accepted": f"{len(largest) / 2**20:.2f} MB"}
            for name, body in (("accepted", largest.encode()), ("refused", b'{"id":"2","call":"search","args":{"query":"'
                                                                        + b"x" * (100 * 2**20) + b'"}}')):
                with Sampler(process.pid) as sampler, ThreadPoolExecutor(16) as pool:
                    started = time.monotonic()
                    statuses = list(pool.map(lambda _: httpx.post(url + "/v1/call", content=body, headers=headers,
                                                                  timeout=300).status_code, range(16)))
                    took = time.monotonic() - started
                figures[name] = (f"16 at once: statuses {sorted(set(statuses))}, peak {sampler.peak / 2**20:.0f} MB, "
                                 f"{took:.1f} s")
            return figures
        finally:
            process.terminate()
            process.wait(30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="fuzzed requests (default 2000)")
    args = parser.parse_args()
    tests = run_tests(args.examples)
    print(f"tests ({tests['seconds']} s): {tests['tests']}")
    print(f"policy table: {tests['table']}")
    print(f"attacking requests sent: {tests['attacks']}")
    print(f"fuzzed requests: {tests['fuzz']}")
    for name, value in memory().items():
        print(f"server memory, {name}: {value}")


if __name__ == "__main__":
    main()
