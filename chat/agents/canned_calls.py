"""Agent calls: (to be written)."""
from __future__ import annotations

CANNED_CALLS: dict = {}
