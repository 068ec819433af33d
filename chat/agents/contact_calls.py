"""Agent calls: (to be written)."""
from __future__ import annotations

CONTACT_CALLS: dict = {}
