"""Which charger ids may connect: the pack's admission rule, as plain data.

A charger id is exactly what the URL says (``/ocpp/ws/<id>``, ``/app/<id>``): letters,
digits, ``-`` and ``_``, 1 to 48 characters, starting with a letter or digit (a THOR's
serial is 16 capital letters and digits). Ids are never folded to one case or trimmed,
and two ids that would share one entity prefix (``XGJ...CA`` and ``xgj...ca``) are never
both admitted.

Who is admitted (``accept_unknown``):
- ``None`` (the default): with ``chargers:`` configured, only those; with none
  configured (the demo, first contact), the first charger that connects, which is then
  *pinned* (remembered across restarts) until the user lists chargers;
- ``False``: only the configured chargers;
- ``True``: any valid id as well (up to ``max_unknown``), for a user who opts in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

CHARGER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,47}")
RESERVED_IDS = frozenset({"ocpp", "ws", "app"})  # path segments, not chargers


def valid_charger_id(cid: str) -> bool:
    return CHARGER_ID.fullmatch(cid) is not None and cid.lower() not in RESERVED_IDS


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    reason: str = ""  # why not, or what happened (first contact)
    first_contact: bool = False  # this id was just pinned: persist it, tell the user


@dataclass
class Admission:
    configured: frozenset[str]
    slug: Callable[[str], str]
    accept_unknown: bool | None = None
    pinned: str | None = None
    max_unknown: int = 16
    admitted: set[str] = field(default_factory=set)  # unknown ids admitted so far

    @classmethod
    def create(cls, configured: Iterable[str], slug: Callable[[str], str],
               accept_unknown: bool | None, pinned: str | None) -> Admission:
        return cls(frozenset(configured), slug, accept_unknown, pinned)

    def decide(self, cid: str) -> Verdict:
        if not valid_charger_id(cid):
            return Verdict(False, "not a valid charger id (letters, digits, - and _)")
        if cid in self.configured:
            return Verdict(True)
        twin = self._twin(cid)
        if twin is not None:
            return Verdict(False, f"its entities would be those of charger {twin}")
        if cid in self.admitted or cid == self.pinned:
            return Verdict(True)
        if self.accept_unknown is True:
            if len(self.admitted) >= self.max_unknown:
                return Verdict(False, f"already {self.max_unknown} unlisted chargers")
            self.admitted.add(cid)
            return Verdict(True)
        if self.accept_unknown is False or self.configured:
            return Verdict(False, "not in the configured chargers")
        if self.pinned is None:  # first contact: this one, and from now on only this one
            self.pinned = cid
            return Verdict(True, "first charger to connect", first_contact=True)
        return Verdict(False, f"the pack serves charger {self.pinned} (the first to "
                              "connect); list your chargers under chargers: to change that")

    def _twin(self, cid: str) -> str | None:
        mine = self.slug(cid)
        for other in (*self.configured, *self.admitted, *([self.pinned] if self.pinned else [])):
            if other != cid and self.slug(other) == mine:
                return other
        return None


__all__ = ["CHARGER_ID", "RESERVED_IDS", "Admission", "Verdict", "valid_charger_id"]


PLUG_AND_CHARGE_TAG = "freevenIdTag"  # what the THOR sends when no card started it


@dataclass(frozen=True)
class CardPolicy:
    """Which id tags start a session (Authorize and StartTransaction; docs/configuration.md).

    ``any``: every tag. ``listed``: only ``tags`` (add ``freevenIdTag`` to allow the
    THOR's plug & charge). ``allow_ha_start``: starts from Home Assistant (the hub's
    RemoteStartTransaction with ``ha_tag``) are allowed; with ``listed`` they are
    accepted without being listed.
    """

    policy: str = "any"
    tags: frozenset[str] = frozenset()
    allow_ha_start: bool = True
    ha_tag: str = "HomeAssistant"

    @classmethod
    def create(cls, policy: str | None, tags: list[str] | None, allow_ha_start: bool,
               ha_tag: str) -> CardPolicy:
        chosen = policy or ("listed" if tags is not None else "any")
        return cls(chosen, frozenset(tags or ()), allow_ha_start, ha_tag)

    def status(self, id_tag: str) -> str:
        """The ``idTagInfo.status`` for ``id_tag``: Accepted, Blocked or Invalid."""
        if id_tag == self.ha_tag:
            return "Accepted" if self.allow_ha_start else "Blocked"
        if self.policy == "any" or id_tag in self.tags:
            return "Accepted"
        return "Invalid"

    def describe(self) -> str:
        cards = "any card" if self.policy == "any" else \
            f"only the {len(self.tags)} listed card(s)"
        return f"{cards}; starts from Home Assistant {'on' if self.allow_ha_start else 'off'}"
