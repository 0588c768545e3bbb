"""The labelled examples shipped with the local classifier (see compose.py for their origin)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from stockade.safety.base import Category, Severity

DATA = Path(__file__).resolve().parent / "data"
Split = Literal["train", "heldout", "heldout2", "heldout3", "heldout4"]


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    labels: dict[Category, Severity]
    origin: str  # "template" or "hand"
    group: str  # the pattern it was filled from, or its own for a hand-written one


def load(split: Split) -> list[Example]:
    with (DATA / f"{split}.jsonl").open(encoding="utf-8") as rows:
        return [_example(json.loads(line)) for line in rows if line.strip()]


def severities(rated: list[dict[Category, Severity]]) -> npt.NDArray[np.int64]:
    """(examples, categories) severities, categories in their declared order."""
    return np.array([[int(r[c]) for c in Category] for r in rated], dtype=np.int64).reshape(-1, len(Category))


def _example(row: dict[str, str]) -> Example:
    labels = {category: Severity[row[category.value].upper()] for category in Category}
    return Example(text=row["text"], labels=labels, origin=row["origin"], group=row["group"])
