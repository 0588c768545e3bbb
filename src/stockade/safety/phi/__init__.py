"""PHI protection: HIPAA Safe Harbor identifiers found in prompts with Microsoft Presidio, and
annotated, blocked, redacted or pseudonymized as a content filter policy says (docs/safety.md).

Importing this package loads nothing heavy: Presidio and spaCy load when an analyzer first runs."""
