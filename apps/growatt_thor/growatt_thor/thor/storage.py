"""Small durable files: written whole, atomically, and fsynced.

Blocking by nature: callers on an event loop run these in an executor.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON; a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_json(path: Path, default: Any) -> Any:
    """The JSON in ``path``, or ``default`` when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


class TransactionIds:
    """Transaction ids that stay unique across restarts.

    The last id handed out is stored before it is returned, so a crash can skip
    an id but never repeat one. Ids start above ``start`` (default 1000, so they
    are easy to tell from the THOR's offline ids 0, 1, 2, ...).
    """

    def __init__(self, path: Path, start: int = 1000) -> None:
        self.path = Path(path)
        self.start = start

    def next(self) -> int:
        data = read_json(self.path, {})
        last = int(data.get("last_transaction_id", self.start))
        new = max(last, self.start) + 1
        write_json_atomic(self.path, {**data, "last_transaction_id": new})
        return new
