"""File modes of written files: what a plain ``open()`` would give, whatever the temporary file had.

``tempfile.mkstemp`` creates files readable by their owner only (0600); an atomic write that renames such a
file into place would publish checkpoints and vocabs nobody else can read, ignoring the user's umask.
:func:`publish_mode` gives the temporary file ``0o666 & ~umask`` before the rename.
"""

from __future__ import annotations

import functools
import os


@functools.cache
def umask() -> int:
    """The process umask, read once (reading it means setting it, so it is set to 0o077 and restored at once)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def publish_mode(path: str | os.PathLike[str]) -> None:
    """chmod ``path`` (a ``mkstemp`` file about to be renamed into place) to ``0o666 & ~umask``."""
    os.chmod(path, 0o666 & ~umask())
