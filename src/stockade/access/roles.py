"""Roles and what they allow, after Azure's built-in Cognitive Services roles."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Permission(enum.Flag):
    INFERENCE = enum.auto()  # chat, completions, embeddings
    READ = enum.auto()  # view models, deployments and quotas, and one's own usage
    USAGE = enum.auto()  # view every caller's usage, and the metrics
    DEPLOYMENTS = enum.auto()  # create, update and delete deployments
    KEYS = enum.auto()  # list, create, regenerate and revoke keys, and set their limits
    QUOTAS = enum.auto()  # set models' quotas
    # Add and remove the user's own model files: the server then reads a file its caller names.
    MODELS = enum.auto()
    ACCESS = enum.auto()  # identities, role assignments, network rules, local auth, signing keys
    AUDIT = enum.auto()  # read the audit log


ADMIN = "admin"
OPENAI_USER = "Cognitive Services OpenAI User"
OPENAI_CONTRIBUTOR = "Cognitive Services OpenAI Contributor"
CONTRIBUTOR = "Cognitive Services Contributor"

ROLE_PERMISSIONS: dict[str, Permission] = {
    # key1/key2: whoever holds a resource key may do everything, as on Azure.
    ADMIN: ~Permission(0),
    # An application key sees its own usage, not its neighbours' (who calls what, and how much).
    OPENAI_USER: Permission.INFERENCE | Permission.READ,
    OPENAI_CONTRIBUTOR: (
        Permission.INFERENCE | Permission.READ | Permission.USAGE | Permission.DEPLOYMENTS
    ),
    # Azure's Cognitive Services Contributor manages the resource but may not call models.
    CONTRIBUTOR: ~Permission.INFERENCE,
}

# Short names accepted on the command line and in the management API.
ROLE_ALIASES = {
    "openai-user": OPENAI_USER,
    "openai-contributor": OPENAI_CONTRIBUTOR,
    "contributor": CONTRIBUTOR,
}


@dataclass(frozen=True, slots=True)
class Grant:
    """A role at a scope: the whole resource (``deployment`` None) or one deployment."""

    role: str
    deployment: str | None = None

    def allows(self, permission: Permission, deployment: str | None = None) -> bool:
        if permission not in ROLE_PERMISSIONS.get(self.role, Permission(0)):
            return False
        # A deployment-scoped grant covers operations on its deployment and nothing resource-wide
        # (usage, metrics, keys); listing models through the inference API needs no role.
        return self.deployment is None or deployment == self.deployment


def role_alias(role: str) -> str:
    """The short name the command line takes for a role (the name itself if it has none)."""
    return next((alias for alias, canonical in ROLE_ALIASES.items() if canonical == role), role)


def resolve_role(name: str) -> str | None:
    """The canonical role name for a name or alias, or None if there is no such role."""
    canonical = ROLE_ALIASES.get(name.lower(), name)
    if canonical in ROLE_PERMISSIONS and canonical != ADMIN:
        return canonical
    return None
