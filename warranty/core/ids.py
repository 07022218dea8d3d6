"""Public identifiers."""

from __future__ import annotations

import secrets


def public_id(prefix: str) -> str:
    """A random, unguessable public identifier such as ``ct_3f9a...``."""
    return f"{prefix}_{secrets.token_hex(10)}"
