"""Files only the bot may read: the SQLite database (approvals, encrypted codes), its
write-ahead log and shared memory, and the key that decrypts the codes.

They are created 0600. One found readable or writable by others (copied, restored from
a backup, made by an earlier version) is tightened at start, with a warning; where that
is not possible the bot refuses to start rather than run on an exposed file.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

from bot.config import SettingsError

log = logging.getLogger(__name__)

_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def loose(path: Path) -> int | None:
    """The file's mode if others may read or write it, else None (or if it is absent)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    return mode if mode & _OTHERS else None


def tighten(path: Path) -> None:
    """Take group and other permissions off ``path``, if it exists and has any."""
    mode = loose(path)
    if mode is None:
        return
    try:
        os.chmod(path, mode & ~_OTHERS)
    except OSError as error:
        raise SettingsError(
            f"{path} is open to other users (mode {mode:04o}) and could not be made private "
            f"({type(error).__name__}); run: chmod 600 {path}"
        ) from None
    log.warning("file_mode_tightened path=%s was=%04o now=%04o", path, mode, mode & ~_OTHERS)


def sqlite_files(database: Path) -> tuple[Path, ...]:
    """The database file and the side files SQLite keeps beside it in WAL mode."""
    return (database, Path(f"{database}-wal"), Path(f"{database}-shm"))


def write_new(path: Path, content: bytes) -> bool:
    """Create ``path`` with ``content``, mode 0600, atomically: another process sees no
    file or the whole file, never an empty one. False if ``path`` existed already."""
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)  # fails if path exists: the first one written wins
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True
