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
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``; a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
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


def append_lines(path: Path, text: str, header: str = "") -> None:
    """Append whole lines to ``path`` (``header`` first if the file is new), then fsync.

    An append-only file of lines: if its last line has no newline (a crash tore the
    previous append), that fragment is cut off first; whoever wrote it still has it
    and writes it again whole. Raises ``OSError`` (missing folder, permissions, disk
    full) with nothing written that could be mistaken for a line.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size > 0:
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                _cut_torn_tail(fd, size)
                size = os.fstat(fd).st_size
        view = memoryview((("" if size > 0 else header) + text).encode("utf-8"))
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(fd: int, size: int) -> None:
    """Truncate after the last whole line."""
    chunk = 4096
    pos = size
    while pos > 0:
        start = max(0, pos - chunk)
        os.lseek(fd, start, os.SEEK_SET)
        block = os.read(fd, pos - start)
        nl = block.rfind(b"\n")
        if nl >= 0:
            os.ftruncate(fd, start + nl + 1)
            return
        pos = start
    os.ftruncate(fd, 0)


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
