"""What the signed-identity tests share: the site server's signature, and sources to sign for."""

from __future__ import annotations

import hashlib
import hmac


def sign(value: str, secret: str) -> str:
    """What a site's server computes: hex HMAC-SHA256 of the user id or the email."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def sources(signed_key: str, secret: str) -> str:
    """`[[sources]]` for bond.toml: an open source first (it takes BOND_WRITE_KEY), then one
    with `signed_key` that requires identities signed with `secret`."""
    return f"""
[[sources]]
name = "open"
write_key = "replaced-by-BOND_WRITE_KEY"

[[sources]]
name = "signed"
write_key = "{signed_key}"
require_signed_identify = true
signing_secret = "{secret}"
"""
