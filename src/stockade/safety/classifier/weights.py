"""Reading a model's shipped weights (an ``.npz`` of named arrays): what cannot be read, or does
not fit this version, raises ``ClassifierUnavailable`` saying how to rebuild it."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stockade.safety.classifier.errors import ClassifierUnavailable


@dataclass(frozen=True, slots=True)
class WeightsFile:
    path: Path
    whose: str  # as a message names the model, possessive: "the prompt shields'"
    rebuild: str  # the command that writes the file again

    def read(self, names: Sequence[str]) -> dict[str, npt.NDArray[np.generic]]:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                return {name: data[name] for name in names}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ClassifierUnavailable(
                f"{self.whose} weights at {self.path} are missing or unreadable ({exc}); reinstall "
                f"stockade, or rebuild them with `{self.rebuild}`"
            ) from exc

    def misfit(self) -> ClassifierUnavailable:
        return ClassifierUnavailable(
            f"{self.whose} weights at {self.path} do not fit this version of stockade; rebuild them "
            f"with `{self.rebuild}`"
        )
