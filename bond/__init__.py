"""Bond: real-time identity resolution for websites."""

from __future__ import annotations

__version__ = "0.1.0"
