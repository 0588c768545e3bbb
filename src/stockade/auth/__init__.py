"""Authentication and authorisation: API keys, principals and roles."""

from stockade.auth.keys import (
    ADMIN_KEY_NAMES,
    LOCAL_OPERATOR,
    ROUTINES_AGENT,
    KeyRing,
    Principal,
    new_key,
)
from stockade.auth.roles import Permission, resolve_role

__all__ = [
    "ADMIN_KEY_NAMES",
    "LOCAL_OPERATOR",
    "ROUTINES_AGENT",
    "KeyRing",
    "Permission",
    "Principal",
    "new_key",
    "resolve_role",
]
