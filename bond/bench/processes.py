"""Starting Bond's own servers as real processes for benchmarks, and reading what CPU they use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

_PROC = Path("/proc")
_LISTEN = "0A"  # a socket's state in /proc/net/tcp


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used so far; None without Linux's /proc."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name comes second, in parentheses, and may itself hold spaces or ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid`, in order of pid; empty without /proc."""
    found = []
    for entry in _PROC.glob("[0-9]*/stat"):
        try:
            parent = int(entry.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # it exited while we looked
        if parent == pid:
            found.append(int(entry.parent.name))
    return sorted(found)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    args: list[str],
    *,
    ready_url: str | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python -m <args>` until the block ends; first wait until it answers `ready_url`
    itself, with a status below 500 (the collector's /healthz is 503 until it can commit)."""
    with log.open("wb") if log else open(os.devnull, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        if ready_url:
            _wait_ready(proc, ready_url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def listening_ports(pid: int) -> set[int] | None:
    """The TCP ports the process listens on; None without Linux's /proc."""
    if not _PROC.is_dir():
        return None
    try:
        fds = list((_PROC / str(pid) / "fd").iterdir())
    except OSError:
        return set()  # it has exited
    sockets = set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (_PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue  # no IPv6
        for row in rows:
            fields = row.split()
            if fields[3] == _LISTEN and fields[9] in sockets:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 30) -> None:
    """Wait for `proc` to answer `url`. Another program's answer on that port (our server
    then fails to listen there) is not ours, and a 5xx is not ready yet."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    last = "no answer"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before it was ready")
        listening = listening_ports(proc.pid)
        if listening is None or port in listening:
            try:
                status = httpx.get(url, timeout=1).status_code
            except httpx.HTTPError as exc:
                last = f"no answer ({exc})"
            else:
                if status < 500:
                    return
                last = f"status {status}"
        time.sleep(0.05)
    raise RuntimeError(f"{url} was not ready within {timeout_s}s: {last}")
