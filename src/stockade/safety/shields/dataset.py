"""The prompt shields' labelled examples (see compose.py for their origin)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stockade.safety.shields.shield import Shield

DATA = Path(__file__).resolve().parent / "data"
Split = Literal["train", "heldout"]
# What each shield is trained and scored on: prompts for jailbreak, documents for indirect attack.
KINDS = {Shield.JAILBREAK: "prompt", Shield.INDIRECT_ATTACK: "document"}


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    kind: str  # "prompt" or "document"
    attack: bool
    origin: str  # "template" or "hand"
    group: str  # the pattern it was filled from, or its own for a hand-written one


def load(split: Split, shield: Shield | None = None) -> list[Example]:
    """The split's examples, only those ``shield`` reads when one is given."""
    with (DATA / f"{split}.jsonl").open(encoding="utf-8") as rows:
        examples = [Example(**json.loads(line)) for line in rows if line.strip()]
    return [e for e in examples if shield is None or e.kind == KINDS[shield]]
