"""Client IP minimisation at ingest: keep, truncate (IPv4 /24, IPv6 /48) or drop."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from bond.config import IpPolicy


@lru_cache(maxsize=4096)
def apply_policy(ip: str | None, policy: IpPolicy) -> str | None:
    if ip is None or policy == "drop":
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if policy == "keep":
        return str(address)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
