"""The two prompt shields, spelled as their keys in Azure's ``prompt_filter_results``."""

from __future__ import annotations

import enum


class Shield(enum.StrEnum):
    JAILBREAK = "jailbreak"  # in what users and system messages say
    INDIRECT_ATTACK = "indirect_attack"  # planted in documents and tool results the model reads
