"""The hub's durable inbox: session messages, on disk before the charger gets its reply.

A StopTransaction is acknowledged to the THOR only once its message is fsynced here,
so a session survives whatever happens to its consumer: the session log app not yet
started, failing to start (a bad argument), reloading, or AppDaemon killed. The
consumer keeps the last sequence number it applied (in its own journal) and reads
what came after when it starts (:meth:`Inbox.since`).

One JSON object a line, ``{"seq", "cid", "topic", "payload"}``, appended and fsynced;
a torn last line (a crash mid-append) is cut before the next append and ignored when
read. Bounded: when the file holds twice ``keep`` entries it is rewritten with the
newest ``keep`` (the default, 5000, is years of sessions at a few messages each).

Blocking by nature: callers on an event loop run these in an executor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .storage import append_lines, write_text_atomic


class Inbox:
    def __init__(self, path: Path, keep: int = 5000) -> None:
        self.path = Path(path)
        self.keep = keep
        entries = self._read()
        self._count = len(entries)
        self.last_seq = entries[-1]["seq"] if entries else 0

    def append(self, cid: str, topic: str, payload: dict[str, Any]) -> int:
        """Store one message durably; returns its sequence number."""
        seq = self.last_seq + 1
        line = json.dumps({"seq": seq, "cid": cid, "topic": topic, "payload": payload},
                          separators=(",", ":"), default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_lines(self.path, line)
        self.last_seq = seq
        self._count += 1
        if self._count >= 2 * self.keep:
            self._compact()
        return seq

    def since(self, seq: int) -> list[dict[str, Any]]:
        """Every stored message after ``seq``, oldest first."""
        return [e for e in self._read() if e["seq"] > seq]

    def _read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # torn by a crash mid-append: it was never acknowledged
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def _compact(self) -> None:
        newest = self._read()[-self.keep:]
        write_text_atomic(self.path, "".join(
            json.dumps(e, separators=(",", ":"), default=str) + "\n" for e in newest))
        self._count = len(newest)


__all__ = ["Inbox"]
