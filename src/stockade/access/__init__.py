"""Who may call, and from where; knows nothing of HTTP.

- ``keys``: API keys, principals and the key ring; ``roles``: roles and what they allow.
- ``tokens``: bearer tokens (JWTs) validated against trusted issuers.
- ``network``: network rules and the caller's address; ``failures``: failed-attempt limits.
- ``issuer`` and ``signing``: the built-in token service and its signing keys.
- ``control``: ``Access``, which holds all of the above for the request path and manages it.

What other packages use is here; the modules' other names are theirs and their tests'.
"""

from stockade.access.control import Access
from stockade.access.issuer import MANAGED
from stockade.access.keys import (
    ADMIN_KEY_NAMES,
    ENTRA,
    LOCAL_OPERATOR,
    ROUTINES_AGENT,
    Principal,
    new_key,
)
from stockade.access.network import IPAddress
from stockade.access.roles import ADMIN, Permission, resolve_role

__all__ = [
    "ADMIN",
    "ADMIN_KEY_NAMES",
    "ENTRA",
    "LOCAL_OPERATOR",
    "MANAGED",
    "ROUTINES_AGENT",
    "Access",
    "IPAddress",
    "Permission",
    "Principal",
    "new_key",
    "resolve_role",
]
