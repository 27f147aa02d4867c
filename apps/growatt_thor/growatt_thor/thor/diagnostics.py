"""The diagnostics a user attaches to a bug report: what the pack knows, no secret in it.

Pure Python. :class:`FrameLog` keeps the last frames of one charger in each direction
(bounded in count and size; stored as received, redacted only when dumped, so the
per-frame cost is one append). :func:`build` turns what the hub gathers into one
JSON-ready dict; :func:`redact_frame`, :func:`redact_settings` and the id-tag
redaction are the rules that keep secrets out (docs/diagnostics.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from datetime import datetime
from typing import Any

from .dialect import REDACTED, SECRET_KEYS, redact_config

FRAMES = 200  # per direction and charger ...
FRAME_BUDGET = 64_000  # ... or as many of the last as fit in this many characters
FRAME_CHARS = 4000  # a longer frame is kept cut, with its length
WARNINGS = 100
# apps.yaml settings whose values are secrets wherever they appear
SECRET_SETTINGS = ("password", "token", "secret", "keyfile")


class FrameLog:
    """The last ``FRAMES`` frames received and sent, ``(time, text)``, at most
    ``FRAME_BUDGET`` characters each way: a THOR at home (a MeterValues every 120 s)
    keeps 200; a site at one message a second the last minute or so."""

    def __init__(self, size: int = FRAMES, budget: int = FRAME_BUDGET) -> None:
        self.received: deque[tuple[datetime, str]] = deque(maxlen=size)
        self.sent: deque[tuple[datetime, str]] = deque(maxlen=size)
        self.budget = budget
        self._chars = {"received": 0, "sent": 0}

    @staticmethod
    def _cut(text: str) -> str:
        if len(text) <= FRAME_CHARS:
            return text
        return f"{text[:FRAME_CHARS]}... ({len(text)} characters)"

    def _add(self, name: str, frames: deque[tuple[datetime, str]], when: datetime,
             text: str) -> None:
        text = self._cut(text)
        if len(frames) == frames.maxlen:
            self._chars[name] -= len(frames[0][1])
        frames.append((when, text))
        self._chars[name] += len(text)
        while self._chars[name] > self.budget and len(frames) > 1:
            self._chars[name] -= len(frames.popleft()[1])

    def inbound(self, when: datetime, text: str) -> None:
        self._add("received", self.received, when, text)

    def outbound(self, when: datetime, text: str) -> None:
        self._add("sent", self.sent, when, text)

    def dump(self) -> dict[str, list[dict[str, str]]]:
        return {name: [{"at": t.isoformat(), "frame": redact_frame(f, id_tags=True)}
                       for t, f in frames]
                for name, frames in (("received", self.received), ("sent", self.sent))}


def tag_hash(tag: str) -> str:
    """A card's id as a short stable hash: sessions can be matched, the card not copied."""
    return "tag:" + hashlib.sha256(tag.encode()).hexdigest()[:8]


def _walk(node: Any, id_tags: bool) -> Any:
    if isinstance(node, dict):
        key = node.get("key")
        if isinstance(key, str) and key in SECRET_KEYS and "value" in node:
            return {**node, "value": REDACTED}
        return {k: (tag_hash(v) if id_tags and k in ("idTag", "id_tag") and isinstance(v, str)
                    else _walk(v, id_tags)) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, id_tags) for v in node]
    return node


def redact_frame(text: str, id_tags: bool = False) -> str:
    """An OCPP frame with the values of secret configuration keys replaced (and, with
    ``id_tags``, card ids hashed). A frame that can't be read but names a secret key
    is not shown at all."""
    if not id_tags and not any(k in text for k in SECRET_KEYS):
        return text
    try:
        return json.dumps(_walk(json.loads(text), id_tags), separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        if any(k in text for k in SECRET_KEYS) or (id_tags and "idTag" in text):
            return "<frame with secrets, not shown>"
        return text


def redact_settings(value: Any) -> Any:
    """apps.yaml settings with every password, token and key file replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if any(s in str(k).lower() for s in SECRET_SETTINGS)
                    and v not in (None, "") else redact_settings(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_settings(v) for v in value]
    return value


class RecentWarnings(logging.Handler):
    """Keeps the last ``WARNINGS`` warning and error lines of a logger."""

    def __init__(self, size: int = WARNINGS) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: deque[str] = deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string: keep what there is
            msg = str(record.msg)
        when = datetime.fromtimestamp(record.created).isoformat(timespec="seconds")
        self.lines.append(f"{when} {record.levelname} {msg[:1000]}")


def build(*, version: str, created: datetime, settings: dict[str, Any],
          chargers: list[dict[str, Any]], warnings: list[str],
          sessions: dict[str, Any]) -> dict[str, Any]:
    """The diagnostics document. ``chargers``: per charger ``snapshot`` (the state),
    ``config`` (everything it reported), ``frames`` (a FrameLog), ``queue`` and
    ``history`` (the write queue)."""
    out_chargers = []
    for c in chargers:
        snap = dict(c.get("snapshot") or {})
        snap.pop("config", None)  # in full below
        out_chargers.append({
            "charger_id": snap.get("charger_id"),
            "state": snap,
            "configuration": redact_config(dict(c.get("config") or {})),
            "write_queue": c.get("queue") or {},
            "write_history": list(c.get("history") or []),
            "frames": c["frames"].dump() if c.get("frames") is not None else {},
        })
    doc = {
        "pack": "growatt_thor", "version": version, "created": created.isoformat(),
        "settings": redact_settings(settings), "chargers": out_chargers,
        "recent_warnings": list(warnings), "last_sessions": sessions,
    }
    # plain JSON all the way down; card ids hashed wherever they are (sessions, history)
    return _walk(json.loads(json.dumps(doc, default=str)), id_tags=True)
