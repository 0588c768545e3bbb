"""What the local classifier raises when it cannot rate: callers fail closed."""

from __future__ import annotations


class ClassifierUnavailable(RuntimeError):
    """A classifier cannot rate texts (its weights or model files are missing or unreadable, its
    guard deployment does not exist); the message says what to do, and quotes no text."""
