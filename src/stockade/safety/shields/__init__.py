"""Prompt shields: a local detector of jailbreaks in prompts and of indirect attacks (instructions
planted for the model) in documents and tool results, trained in this repository on a dataset
the team wrote. See docs/safety.md, "Prompt shields"."""

from stockade.safety.shields.model import Detector, shared_detector
from stockade.safety.shields.parts import parts
from stockade.safety.shields.shield import Shield

__all__ = ["Detector", "Shield", "parts", "shared_detector"]
