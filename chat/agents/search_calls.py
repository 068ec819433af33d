"""Agent calls: (to be written)."""
from __future__ import annotations

SEARCH_CALLS: dict = {}
