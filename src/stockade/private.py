"""Files only the service's own user may read: what Stockade creates in its data directory
(the store, the secret key, the TLS key) is created owner-only, whatever the umask."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path


def private_directory(path: Path) -> Path:
    """``path`` as a directory, created mode 0700 if missing (its parents as the umask says)."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another process made it just now
            path.mkdir(mode=0o700)
    return path


def private_file(path: Path) -> Path:
    """``path``, created empty and mode 0600 if missing; an existing file is left as it is."""
    private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def write_private_file(path: Path, text: str) -> Path:
    """``path`` replaced by a new owner-only file holding ``text``: an existing file, whose mode
    may be wider, is replaced, not written into."""
    private_directory(path.parent)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        draft.unlink()  # left by a process of the same id that died before the replace
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(draft, path)
    return path


def private_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in ``path``, which is created owner-only holding ``make()`` on first use;
    several processes starting on one data directory at once all read the one that won."""
    if not path.exists():
        private_directory(path.parent)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it just now: let it finish writing
            time.sleep(0.1)
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(make())
    return path.read_text().strip()
