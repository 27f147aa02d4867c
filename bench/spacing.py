"""Did the server keep to the write queue's spacing with one charger? (pure; for bench/load.py)

The input is what one simulated charger saw after a moment ``since``: the calls the
server sent it (action, payload, when it arrived, when the charger answered it) and
when its WebSocket connections opened. The queue's rules (docs/controls.md,
``thor/writequeue.py``) as they can be seen from the charger's side:

- one call at a time: no call arrives before the previous one was answered;
- after each connection the start-up sequence (TriggerMessage, GetConfiguration
  twice, the grid-meter read) is not the queue's; every later call is;
- a configuration write arrives at least ``spacing`` after the end of the previous
  write or the connection (a command: ``command_spacing``); the GetConfiguration
  that reads a written key back belongs to its write;
- a grid-meter poll arrives at least ``poll_pause`` after the end of the previous
  write or the connection, and ``grid_poll_interval`` after the previous poll
  (less ``jitter``: poll to poll is counted from send to send, and the charger
  sees arrivals).

"End" is the charger's answer; the queue counts from the answer's arrival, which is
later, so a gap measured here is never longer than the queue's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

METER = "get_external_meterval"
STARTUP = ("TriggerMessage", "GetConfiguration:all", "GetConfiguration:keys", METER)


@dataclass(frozen=True)
class Rules:
    spacing: float
    command_spacing: float
    poll_pause: float
    grid_poll_interval: float
    jitter: float = 0.25
    # the simulator notes a connection or an answer when its loop gets to it, which on a
    # busy machine is a few milliseconds after the pack saw it: gaps this much short pass
    skew: float = 0.05


@dataclass
class Call:
    action: str
    payload: dict[str, Any]
    arrived: float
    answered: float | None


@dataclass
class SpacingReport:
    calls: int = 0
    queue_calls: int = 0
    overlaps: int = 0
    violations: list[str] = field(default_factory=list)
    min_write_gap_s: float | None = None  # the smallest gap before a write

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "queue_calls": self.queue_calls,
                "overlaps": self.overlaps, "violations": len(self.violations),
                "min_write_gap_s": None if self.min_write_gap_s is None
                else round(self.min_write_gap_s, 2)}


def _kind(c: Call) -> str:
    if c.action == "GetConfiguration":
        return "GetConfiguration:keys" if c.payload.get("key") else "GetConfiguration:all"
    if c.action == "DataTransfer" and c.payload.get("messageId") == METER:
        return METER
    return c.action


def check(calls: list[Call], connects: list[float], rules: Rules) -> SpacingReport:
    """The report for one charger: ``calls`` and ``connects`` in time order."""
    rep = SpacingReport(calls=len(calls))
    events = sorted([(t, 0, None) for t in connects]
                    + [(c.arrived, 1, c) for c in calls], key=lambda e: (e[0], e[1]))
    startup_left: list[str] = []
    last_end: float | None = None  # end of the last write, or the connection
    last_poll: float | None = None
    prev: Call | None = None
    for t, is_call, c in events:
        if not is_call:
            startup_left, last_end, last_poll, prev = list(STARTUP), t, None, None
            continue
        assert c is not None
        if prev is not None and (prev.answered is None or c.arrived < prev.answered):
            rep.overlaps += 1
        kind = _kind(c)
        if startup_left and kind == startup_left[0]:  # the start-up steps, in their order
            startup_left.pop(0)
            prev = c
            continue
        if kind == "GetConfiguration:keys" and prev is not None \
                and prev.action == "ChangeConfiguration":
            last_end = c.answered if c.answered is not None else c.arrived
            prev = c
            continue  # the read-back of the write just before
        rep.queue_calls += 1
        if kind == METER:
            if last_end is not None and t - last_end < rules.poll_pause - rules.skew:
                rep.violations.append(f"poll {t - last_end:.2f} s after a write "
                                      f"(poll_pause {rules.poll_pause:g} s)")
            if last_poll is not None and t - last_poll < rules.grid_poll_interval - rules.jitter:
                rep.violations.append(f"poll {t - last_poll:.2f} s after a poll "
                                      f"(interval {rules.grid_poll_interval:g} s)")
            last_poll = t
        else:
            gap = rules.spacing if kind == "ChangeConfiguration" else rules.command_spacing
            if last_end is not None:
                if rep.min_write_gap_s is None or t - last_end < rep.min_write_gap_s:
                    rep.min_write_gap_s = t - last_end
                if t - last_end < gap - rules.skew:
                    rep.violations.append(f"{c.action} {t - last_end:.2f} s after the "
                                          f"previous write or the connection ({gap:g} s)")
            last_end = c.answered if c.answered is not None else c.arrived
        prev = c
    return rep
