"""Roles and what they allow, after Azure's built-in Cognitive Services roles."""

from __future__ import annotations

import enum


class Permission(enum.Flag):
    INFERENCE = enum.auto()  # chat, completions, embeddings
    READ = enum.auto()  # view models, deployments and usage
    DEPLOYMENTS = enum.auto()  # create, update and delete deployments
    KEYS = enum.auto()  # list, create, regenerate and revoke keys, and set their limits
    QUOTAS = enum.auto()  # set models' quotas


ADMIN = "admin"
OPENAI_USER = "Cognitive Services OpenAI User"
OPENAI_CONTRIBUTOR = "Cognitive Services OpenAI Contributor"
CONTRIBUTOR = "Cognitive Services Contributor"

ROLE_PERMISSIONS: dict[str, Permission] = {
    # key1/key2: whoever holds a resource key may do everything, as on Azure.
    ADMIN: Permission.INFERENCE | Permission.READ | Permission.DEPLOYMENTS | Permission.KEYS
    | Permission.QUOTAS,
    OPENAI_USER: Permission.INFERENCE | Permission.READ,
    OPENAI_CONTRIBUTOR: Permission.INFERENCE | Permission.READ | Permission.DEPLOYMENTS,
    # Azure's Cognitive Services Contributor manages the resource but may not call models.
    CONTRIBUTOR: Permission.READ | Permission.DEPLOYMENTS | Permission.KEYS | Permission.QUOTAS,
}

# Short names accepted on the command line and in the management API.
ROLE_ALIASES = {
    "openai-user": OPENAI_USER,
    "openai-contributor": OPENAI_CONTRIBUTOR,
    "contributor": CONTRIBUTOR,
}


def resolve_role(name: str) -> str | None:
    """The canonical role name for a name or alias, or None if there is no such role."""
    canonical = ROLE_ALIASES.get(name.lower(), name)
    if canonical in ROLE_PERMISSIONS and canonical != ADMIN:
        return canonical
    return None
