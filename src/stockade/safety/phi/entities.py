"""The identifiers PHI protection looks for: HIPAA Safe Harbor's, as Presidio's entity names
(those it ships) and ours (those its recognizers lack: see ``recognizers``).

On the wire an entity is a ``sub_category`` of ``personally_identifiable_information``, spelled
in lower case (``PERSON`` is ``person``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

# Presidio's own recognizers.
PRESIDIO = (
    "PERSON",  # names (spaCy's named entities)
    "DATE_TIME",  # dates (spaCy's, and Presidio's date patterns)
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "US_SSN",
    "URL",
    "IP_ADDRESS",
    "US_DRIVER_LICENSE",
    "US_PASSPORT",
    "US_BANK_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "LOCATION",  # cities, streets, countries: not in the default list (states are no identifier)
)

# Ours, in ``recognizers``.
CUSTOM = (
    "FAX_NUMBER",
    "MEDICAL_RECORD_NUMBER",
    "HEALTH_PLAN_NUMBER",
    "ACCOUNT_NUMBER",
    "LICENSE_NUMBER",
    "VEHICLE_IDENTIFIER",
    "DEVICE_IDENTIFIER",
    "ZIP_CODE",
    "STREET_ADDRESS",
    "AGE_OVER_89",
)

ENTITIES = PRESIDIO + CUSTOM

# What a policy looks for when it names no entities: every Safe Harbor identifier on the list
# (LOCATION aside, which would also take states and countries, and which ZIP_CODE and
# STREET_ADDRESS cover for an address).
DEFAULT_ENTITIES = tuple(entity for entity in ENTITIES if entity != "LOCATION")

CATEGORY = "personally_identifiable_information"


def sub_category(entity: str) -> str:
    return entity.lower()


def result(
    entities: Collection[str], *, blocks: bool, redacted: Collection[str] = (), redacted_text: str | None = None
) -> dict[str, Any]:
    """Azure's shape for the category, given the entities found: whether any was found and
    (``blocks``: the policy blocks what it finds) filtered, ``redacted_text`` if given, and each
    sub-category, ``redacted`` if it is among those given. Never the text as it came."""
    filtered = bool(entities) and blocks
    shaped: dict[str, Any] = {"filtered": filtered, "detected": bool(entities)}
    if redacted_text is not None:
        shaped["redacted_text"] = redacted_text
    shaped["sub_categories"] = [
        {"sub_category": sub_category(entity), "filtered": filtered, "detected": True,
         "redacted": entity in redacted}
        for entity in sorted(entities)
    ]
    return shaped
