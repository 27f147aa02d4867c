"""One decision per charger: the nodes' demands turned into the one request the queue gets.

Pure Python. Several nodes may want to drive one charger (the solar node, the charging
plan, a user's tariff node). None of them writes ``G_MaxCurrent`` or starts and stops
the charger itself; each states a :class:`Demand`, and :func:`arbitrate` decides
(docs/nodes.md "Who decides"):

1. **Start or stop**: the demand with the highest ``priority`` that has an opinion
   (``charge`` not None) decides. On equal priority, charging wins over not charging
   (a car that must be ready beats waiting for sun).
2. **The current**: the deciding demand's ``current`` when it has one; else the
   current of the highest-priority demand that names one (equal priority: the larger).
3. The installation limit is above all of it: every current is clamped to
   ``[6 A, limit]`` here, and the write queue checks it once more before the wire.

A demand without any opinion (both None) counts as absent. Priorities the pack uses:
``SOLAR`` 10 (the solar node), ``PLAN`` 50 (the charging plan's grid hours and its
deadline), ``MANUAL`` 100 (for a user's "charge now" node).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

SOLAR = 10
PLAN = 50
MANUAL = 100
MIN_CURRENT = 6


@dataclass(frozen=True)
class Demand:
    owner: str
    priority: int
    charge: bool | None = None  # True: charge, False: do not, None: no opinion
    current: float | None = None  # amperes while charging; None: no opinion
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    charge: bool | None  # None: nobody has an opinion, leave the charger as it is
    current: int | None
    by: str | None  # the owner whose demand decided start/stop
    current_by: str | None
    reason: str

    def describe(self) -> str:
        if self.charge is None and self.current is None:
            return "no demand"
        what = {True: "charge", False: "do not charge", None: "start/stop as is"}[self.charge]
        amps = "" if self.current is None else f" at {self.current} A"
        owners = [o for o in (self.by, self.current_by) if o]
        by = f" ({', '.join(dict.fromkeys(owners))})" if owners else ""
        return f"{what}{amps}{by}: {self.reason}"


def clamp(amps: float, limit: int) -> int:
    """Whole amperes in [6, limit]; fractions round down (never above what was asked)."""
    if not math.isfinite(amps):
        return MIN_CURRENT
    return int(min(max(math.floor(amps), MIN_CURRENT), max(limit, MIN_CURRENT)))


def arbitrate(demands: Iterable[Demand], limit: int) -> Decision:
    """The one request for a charger (the rule in the module docstring)."""
    live = [d for d in demands if d.charge is not None or d.current is not None]
    deciding = max((d for d in live if d.charge is not None),
                   key=lambda d: (d.priority, d.charge is True), default=None)
    if deciding is not None and deciding.current is not None:
        source = deciding
    else:
        source = max((d for d in live if d.current is not None),
                     key=lambda d: (d.priority, d.current), default=None)
    current = None if source is None else clamp(float(source.current), limit)
    reason = (deciding or source).reason if (deciding or source) else ""
    return Decision(charge=None if deciding is None else deciding.charge, current=current,
                    by=None if deciding is None else deciding.owner,
                    current_by=None if source is None else source.owner, reason=reason)
