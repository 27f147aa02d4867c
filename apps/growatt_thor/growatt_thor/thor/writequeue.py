"""The decisions of one charger's write queue: what goes to the THOR next, and when.

Pure Python with an injected clock (seconds, monotonic), so every decision is
testable without sockets or waiting. :class:`growatt_thor.writer.ChargerWriter`
runs it against a live link.

Rules (see docs/controls.md):
- One call at a time. Configuration writes are at least ``spacing`` seconds
  apart from the previous write of any kind; commands (remote start/stop,
  access-point mode) go before waiting configuration writes and only keep
  ``command_spacing`` from the previous write.
- Requests for the same slot (a configuration key, or the transaction for
  start/stop) are coalesced: the latest value wins and keeps its place in line.
  A request for the value the charger already has, with nothing waiting for
  that slot, is dropped (de-duplication). A configuration change waits
  ``settle`` seconds for a newer one (a slider being dragged) before it goes.
- A failed call (timeout, CALLERROR) is retried with exponential backoff up to
  ``retries`` times, then given up and reported.
- While the charger is offline nothing is sent; requests wait (coalesced) and
  go after it reconnects, with ``spacing`` counted from the connection so that
  the THOR settles first. Commands older than ``command_ttl`` are dropped:
  pressing "start" should not start a session hours later.
- Polling (the grid meter) is allowed only when nothing is in flight, nothing
  is due, and ``poll_pause`` has passed since the last write.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

CONFIG = "config"
COMMAND = "command"

# Outcomes of finished()
DONE = "done"
RETRY = "retry"
GAVE_UP = "gave_up"
SUPERSEDED = "superseded"


@dataclass
class Request:
    """One thing to send. ``slot`` is what coalesces (a key, or ``transaction``)."""

    slot: str
    kind: str  # CONFIG or COMMAND
    action: str  # ChangeConfiguration, RemoteStartTransaction, RemoteStopTransaction, DataTransfer
    value: str
    source: str = "api"
    queued_at: float = 0.0
    attempts: int = 0
    not_before: float = 0.0
    seq: int = 0
    note: str = ""  # e.g. "clamped from 40 A to the installation limit 16 A"
    group: str | None = None  # one logical setting made of several steps (see apply)
    step: int = 0  # its place in the group, from 1

    def describe(self) -> str:
        if self.action == "ChangeConfiguration":
            return f"{self.slot}={self.value}"
        return self.value


@dataclass
class QueueSettings:
    spacing: float = 15.0
    poll_pause: float = 20.0
    command_spacing: float = 2.0
    retries: int = 3
    backoff: float = 10.0
    command_ttl: float = 120.0
    settle: float = 1.0  # a configuration change waits this long for a newer one


class WriteQueue:
    def __init__(self, settings: QueueSettings | None = None) -> None:
        self.s = settings or QueueSettings()
        self.pending: dict[str, Request] = {}
        self.in_flight: Request | None = None
        self.online = False
        self.last_write_end: float | None = None  # end of the last write (or the connection)
        self._seq = itertools.count()

    # --- requests ---------------------------------------------------------------------

    def put(self, req: Request, now: float, current: str | None = None) -> Request | None:
        """Queue ``req``; return it if queued, or None when it changes nothing.

        ``current`` is what the charger reports for the slot now; a request for
        that value is dropped when nothing is waiting or being sent for the slot,
        and cancels a waiting request otherwise (the user changed their mind).
        """
        waiting = self.pending.get(req.slot)
        in_flight = self.in_flight is not None and self.in_flight.slot == req.slot
        if current is not None and req.value == current and not in_flight:
            if waiting is not None:
                del self.pending[req.slot]
            return None
        if waiting is not None:
            if waiting.value == req.value and waiting.action == req.action:
                return None  # nothing new
            req.seq = waiting.seq  # coalesce: keep the place in line
            req.queued_at = waiting.queued_at
            if req.group is None:  # ... and the place in its group
                req.group, req.step = waiting.group, waiting.step
        else:
            req.seq = next(self._seq)
            req.queued_at = now
        if req.kind == CONFIG:
            req.not_before = max(req.not_before, now + self.s.settle)
        self.pending[req.slot] = req
        return req

    # --- connection -------------------------------------------------------------------

    def on_connect(self, now: float) -> None:
        self.online = True
        self.last_write_end = now

    def on_disconnect(self) -> None:
        self.online = False

    # --- decisions --------------------------------------------------------------------

    def expire(self, now: float) -> list[Request]:
        """Drop commands older than ``command_ttl``; return them (to report)."""
        old = [r for r in self.pending.values()
               if r.kind == COMMAND and now - r.queued_at > self.s.command_ttl]
        for r in old:
            del self.pending[r.slot]
        return old

    def _order(self) -> list[Request]:
        return sorted(self.pending.values(), key=lambda r: (r.kind != COMMAND, r.seq))

    def next_due(self) -> tuple[Request | None, float]:
        """The request that goes next and the earliest time it may go.

        ``(None, inf)`` when nothing can go (empty, offline, or a call in flight).
        """
        if self.in_flight is not None or not self.online or not self.pending:
            return None, math.inf
        best: tuple[Request | None, float] = (None, math.inf)
        for req in self._order():
            gap = self.s.command_spacing if req.kind == COMMAND else self.s.spacing
            spaced = -math.inf if self.last_write_end is None else self.last_write_end + gap
            at = max(req.not_before, spaced)
            if at < best[1]:
                best = (req, at)
            if req.kind == CONFIG and req.not_before <= spaced:
                # configuration writes go strictly in order: a later one never
                # overtakes an earlier one that is only waiting for the spacing
                break
        return best

    def cancel_group(self, group: str) -> list[Request]:
        """Drop the waiting steps of ``group``; return them, in order."""
        gone = sorted((r for r in self.pending.values() if r.group == group),
                      key=lambda r: r.step)
        for r in gone:
            del self.pending[r.slot]
        return gone

    def drop(self, slot: str) -> None:
        """Forget what waits for ``slot`` (a new group replaces it, in its own order)."""
        self.pending.pop(slot, None)

    def take(self, now: float) -> Request | None:
        """Pop the next request if it is due now; it is then in flight."""
        req, at = self.next_due()
        if req is None or at > now:
            return None
        del self.pending[req.slot]
        req.attempts += 1
        self.in_flight = req
        return req

    def finished(self, req: Request, ok: bool, now: float, offline: bool = False) -> str:
        """Record the end of the call in flight. Returns DONE, RETRY, GAVE_UP or SUPERSEDED.

        ``ok`` means the charger answered (Accepted, Rejected... all are answers);
        ``offline`` means the link went away: the request waits for the reconnect
        without using up an attempt.
        """
        if self.in_flight is req:
            self.in_flight = None
        self.last_write_end = now
        if ok:
            return DONE
        if req.slot in self.pending:
            return SUPERSEDED  # a newer value for the slot is already waiting
        if offline:
            req.attempts -= 1
            req.not_before = 0.0
            self.pending[req.slot] = req
            return RETRY
        if req.attempts > self.s.retries:
            return GAVE_UP
        req.not_before = now + self.s.backoff * 2 ** (req.attempts - 1)
        self.pending[req.slot] = req
        return RETRY

    def poll_allowed(self, now: float) -> bool:
        if not self.online or self.in_flight is not None:
            return False
        if self.last_write_end is not None and now - self.last_write_end < self.s.poll_pause:
            return False
        _, at = self.next_due()
        return at > now

    # --- views ------------------------------------------------------------------------

    def is_waiting(self, slot: str) -> bool:
        return slot in self.pending or (self.in_flight is not None and self.in_flight.slot == slot)

    def summary(self) -> dict[str, Any]:
        """Queue length, what waits, and when the next write may go (monotonic, or None)."""
        req, at = self.next_due()
        return {
            "length": len(self.pending) + (1 if self.in_flight else 0),
            "pending": [r.describe() for r in self._order()],
            "in_flight": self.in_flight.describe() if self.in_flight else None,
            "next_at": None if req is None else at,
            "next": None if req is None else req.describe(),
        }
