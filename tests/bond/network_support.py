"""What the machine's network offers, for tests that need more than IPv4 loopback."""

from __future__ import annotations

import socket


def ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (containers often have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
