"""Session accounting: every finished charging session becomes exactly one CSV row.

Pure Python, no files: :class:`SessionBook` is fed the hub's topics
(``transaction_started``, ``meter``, ``transaction_stopped``, ``session_record``)
and decides which rows to write. Its whole state is plain JSON
(:meth:`to_json` / :meth:`from_json`), kept by the caller as a durable journal,
so an AppDaemon restart in the middle of a session loses nothing.

What makes a row (``shared/thor/README.md``):
- A session we saw start ends with StopTransaction. The THOR then sends its own
  record (``currentrecord``), with the cost; the row waits up to
  ``record_wait`` seconds for it (the record may also come first).
- A session that happened while the pack was not reachable reaches us only as a
  ``frozenrecord`` after the reconnect (often ``transactionId`` 0, and ids repeat
  across servers): its row comes from the record alone, identified by the
  record's own id.
- Whatever arrives twice (a repeated StopTransaction, a record sent again after a
  reconnect, a late StopTransaction for a session already logged from its
  record) is recognised and ignored.

Energy comes from the best evidence: ``meterStop - meterStart``, unless that is
0 or less than the last meter reading (after a reboot the THOR stops the old
transaction with reason PowerLoss and meterStop 0), then the largest of the
last meter reading and the charger's record. Evidence the charger could not have
delivered (:func:`max_energy_wh`) is ignored, with a note; with none left the
row's energy is empty (unknown), never absurd.

What a peer can grow is bounded: at most ``MAX_OPEN_PER_CHARGER`` sessions we did
not see start are tracked per charger (MeterValues with made-up transaction ids),
and a StopTransaction that nothing backs (not our transaction id, no meter values,
no record from the charger) makes no row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, tzinfo, UTC
from typing import Any

from .dialect import parse_charger_time

COLUMNS = ("charger_id", "location", "start_time", "end_time", "energy_kwh", "cost",
           "duration_minutes", "transaction_id")
CSV_TIME = "%Y-%m-%d %H:%M:%S"
SAME_SESSION = timedelta(minutes=5)  # a record's end vs a stop's timestamp
KEEP_LOGGED = 1000  # identities remembered for de-duplication (years of sessions)
# The most a THOR can deliver: three phases of its 32 A at 260 V (230 V + 13 %, beyond the
# +10 % of EN 50160). Energy above this, over the session's duration, is not real.
MAX_POWER_W = 3 * 32 * 260
UNTIMED_HOURS = 24 * 7  # the bound for a session whose duration is unknown
SLACK_WH = 100.0  # clocks, rounding
MAX_OPEN_PER_CHARGER = 2  # sessions seen only through MeterValues (one connector)


def max_energy_wh(start: datetime | None, end: datetime | None) -> float:
    """The most energy a THOR could have delivered between ``start`` and ``end``."""
    hours = UNTIMED_HOURS if start is None or end is None else \
        max((end - start).total_seconds(), 0.0) / 3600.0
    return MAX_POWER_W * hours + SLACK_WH


@dataclass
class Row:
    charger_id: str
    location: str
    start_time: str
    end_time: str
    energy_kwh: str
    cost: str
    duration_minutes: str
    transaction_id: str
    id_tag: str = ""  # who started it (card, HomeAssistant, freevenIdTag); not in the CSV

    def values(self) -> list[str]:
        return [getattr(self, c) for c in COLUMNS]


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


class SessionBook:
    def __init__(self, charger_tz: tzinfo, csv_tz: tzinfo, location: dict[str, str] | None = None,
                 price_per_kwh: float | None = None, record_wait: float = 60.0) -> None:
        self.charger_tz = charger_tz
        self.csv_tz = csv_tz
        self.location = location or {}
        self.price_per_kwh = price_per_kwh
        self.record_wait = record_wait
        self.open: dict[str, dict[str, Any]] = {}  # "cid|tx" -> session
        self.closing: dict[str, dict[str, Any]] = {}  # stopped, waiting for the record
        self.orphans: dict[str, dict[str, Any]] = {}  # records of sessions we did not see
        self.outbox: list[dict[str, Any]] = []  # {"id", "row"}: to append to the CSV
        self.logged: dict[str, dict[str, Any]] = {}  # id -> {"cid", "tx", "end"} (ordered)
        self.records_seen: dict[str, None] = {}  # "cid|kind|record_id" (ordered set)
        self.ours: dict[str, None] = {}  # "cid|tx" we handed out (unique: our counter)
        self.recent: list[dict[str, Any]] = []  # the last rows, newest first (for entities)
        self.notes: list[str] = []  # what the caller should log (drained by it)
        self.inbox_seq = 0  # the last of the hub's stored messages applied here

    # --- the charger's messages ------------------------------------------------------

    def on_started(self, cid: str, p: dict[str, Any], now: datetime) -> None:
        tx = int(p["transaction_id"])
        key = f"{cid}|{tx}"
        self.ours[key] = None
        while len(self.ours) > KEEP_LOGGED:
            del self.ours[next(iter(self.ours))]
        self.open.setdefault(key, {
            "cid": cid, "tx": tx, "start": _iso(self._time(p.get("timestamp")) or now),
            "meter_start": float(p.get("meter_start") or 0), "last_energy": None,
            "last_seen": _iso(now), "record": None, "id_tag": p.get("id_tag") or ""})

    def on_meter(self, cid: str, p: dict[str, Any], now: datetime) -> None:
        """Track the energy of a running session (also one we did not see start)."""
        tx = p.get("transaction_id")
        energy = (p.get("values") or {}).get("energy_wh")
        if tx is None or energy is None:
            return
        key = f"{cid}|{int(tx)}"
        sess = self.open.get(key)
        if sess is None:  # a session that started before we were there (or journal lost)
            self._make_room(cid)
            sess = self.open[key] = {"cid": cid, "tx": int(tx), "start": None, "meter_start": 0.0,
                                     "last_energy": None, "last_seen": None, "record": None}
        sess["last_energy"] = max(float(energy), sess["last_energy"] or 0.0)
        sess["last_seen"] = _iso(now)

    def _make_room(self, cid: str) -> None:
        """At most MAX_OPEN_PER_CHARGER sessions of a charger that we did not see start."""
        unseen = [k for k, s in self.open.items() if s["cid"] == cid and k not in self.ours]
        unseen.sort(key=lambda k: self.open[k]["last_seen"] or "")
        for key in unseen[:max(0, len(unseen) - MAX_OPEN_PER_CHARGER + 1)]:
            del self.open[key]
            self.notes.append(f"{cid}: forgot transaction {key.split('|')[1]}, seen only in "
                              f"MeterValues (at most {MAX_OPEN_PER_CHARGER} such are tracked)")

    def on_stopped(self, cid: str, p: dict[str, Any], now: datetime) -> None:
        tx = int(p["transaction_id"])
        key = f"{cid}|{tx}"
        stop = self._time(p.get("timestamp")) or now
        ident = self._stop_identity(cid, tx, p.get("timestamp"))
        if ident in self.logged or ident in self.closing or self._outboxed(ident):
            return  # the same StopTransaction again
        if self._matches_logged(cid, tx, stop, exclude_ours=True):
            return  # a late stop for a session already logged from its record
        sess = self.open.pop(key, None) or {"cid": cid, "tx": tx, "start": None,
                                            "meter_start": 0.0, "last_energy": None,
                                            "last_seen": None, "record": None,
                                            "unbacked": key not in self.ours}
        last = p.get("last_meter_energy_wh")
        if last is not None:
            sess["last_energy"] = max(float(last), sess["last_energy"] or 0.0)
        if not sess.get("id_tag") and p.get("id_tag"):
            sess["id_tag"] = p["id_tag"]
        sess.update(id=ident, stop=_iso(stop), meter_stop=float(p.get("meter_stop") or 0),
                    reason=p.get("reason") or "", deadline=_iso(now + timedelta(
                        seconds=self.record_wait)))
        orphan = self._take_orphan(cid, tx, stop)
        if orphan is not None and sess["record"] is None:
            sess["record"] = orphan
        self.closing[ident] = sess

    def on_record(self, cid: str, record: dict[str, Any], now: datetime) -> None:
        rid = f"{cid}|{record['kind']}|{record['record_id']}"
        if rid in self.records_seen:
            return
        tx = int(record.get("transaction_id") or 0)
        end = self._time(record.get("end_time"))
        # a session we are tracking: attach the record (it brings the cost)
        for sess in self.closing.values():
            if sess["cid"] == cid and sess["tx"] == tx and sess["record"] is None:
                sess["record"] = record
                self._seen(rid)
                return
        sess = self.open.get(f"{cid}|{tx}")
        if sess is not None and f"{cid}|{tx}" in self.ours:
            sess["record"] = record
            self._seen(rid)
            return
        if self._matches_logged(cid, tx, end):
            self._seen(rid)  # sent again after a reconnect
            return
        # a session that happened while we were away: wait a little for its stop
        self.orphans[rid] = {"cid": cid, "record": record,
                             "deadline": _iso(now + timedelta(seconds=self.record_wait))}

    # --- decisions --------------------------------------------------------------------

    def ready(self, now: datetime) -> list[dict[str, Any]]:
        """Finish what has waited long enough or is complete; return the new outbox entries."""
        new = []
        for ident, sess in list(self.closing.items()):
            if sess["record"] is not None or _dt(sess["deadline"]) <= now:
                del self.closing[ident]
                if sess.get("unbacked") and sess["record"] is None \
                        and sess["last_energy"] is None:
                    self.notes.append(
                        f"{sess['cid']}: StopTransaction for transaction {sess['tx']}, which "
                        f"the pack did not start, saw no meter values of and got no record "
                        f"for: no row")
                    continue
                new.append(self._finish(ident, self._row_from_stop(sess), sess["cid"],
                                        sess["tx"], _dt(sess["stop"]), sess["record"]))
        for rid, orphan in list(self.orphans.items()):
            if _dt(orphan["deadline"]) <= now:
                del self.orphans[rid]
                rec = orphan["record"]
                row = self._row_from_record(orphan["cid"], rec)
                if row is None:
                    continue
                new.append(self._finish(f"rec|{rid}", row, orphan["cid"],
                                        int(rec.get("transaction_id") or 0),
                                        self._time(rec.get("end_time")), rec))
        return new

    def next_deadline(self) -> datetime | None:
        times = [_dt(s["deadline"]) for s in self.closing.values()]
        times += [_dt(o["deadline"]) for o in self.orphans.values()]
        return min(times) if times else None

    def written(self, ident: str) -> None:
        """The row of ``ident`` is in the CSV (appended and fsynced)."""
        self.outbox = [e for e in self.outbox if e["id"] != ident]

    # --- rows -------------------------------------------------------------------------

    def _finish(self, ident: str, row: Row, cid: str, tx: int, end: datetime | None,
                record: dict[str, Any] | None) -> dict[str, Any]:
        entry = {"id": ident, "row": asdict(row)}
        self.outbox.append(entry)
        self.logged[ident] = {"cid": cid, "tx": tx, "end": _iso(end)}
        while len(self.logged) > KEEP_LOGGED:
            del self.logged[next(iter(self.logged))]
        if record is not None:
            self._seen(f"{cid}|{record['kind']}|{record['record_id']}")
        self.recent = [asdict(row), *self.recent][:5]
        return entry

    def _row_from_stop(self, s: dict[str, Any]) -> Row:
        rec = s["record"]
        start = _dt(s["start"]) or (self._time(rec.get("start_time")) if rec else None)
        end = _dt(s["stop"])
        if start is not None and end is not None and end <= start:
            # after a reboot the THOR dates the PowerLoss stop at the session's start
            end = (self._time(rec.get("end_time")) if rec else None) or _dt(s["last_seen"]) \
                or end
        meter_start = s["meter_start"] or 0.0
        by_stop = s["meter_stop"] - meter_start if s["meter_stop"] > 0 else None
        by_meter = (s["last_energy"] - meter_start) if s["last_energy"] is not None else None
        by_record = float(rec["energy_wh"]) if rec else None
        by_stop, by_meter, by_record = (
            self._plausible(s["cid"], s["tx"], what, e, start, end) for what, e in
            (("meterStop", by_stop), ("meter values", by_meter), ("record", by_record)))
        energy: float | None
        if by_stop is not None and (by_meter is None or by_stop >= by_meter):
            energy = by_stop
        elif any(e is not None for e in (by_stop, by_meter, by_record)) or s["meter_stop"] == 0:
            energy = max(e for e in (by_stop, by_meter, by_record, 0.0) if e is not None)
        else:
            energy = None  # only implausible evidence: unknown, not absurd
        row = self._row(s["cid"], start, end, energy, rec, str(s["tx"]))
        row.id_tag = s.get("id_tag") or ""
        return row

    def _plausible(self, cid: str, tx: Any, what: str, wh: float | None,
                   start: datetime | None, end: datetime | None) -> float | None:
        if wh is None:
            return None
        limit = max_energy_wh(start, end)
        if wh != wh or not -SLACK_WH <= wh <= limit:  # NaN, negative, more than possible
            self.notes.append(f"{cid}: transaction {tx}: energy by {what} ({wh} Wh) is more "
                              f"than the charger can deliver in that time ({limit:.0f} Wh) "
                              f"or negative: ignored")
            return None
        return wh

    def _row_from_record(self, cid: str, rec: dict[str, Any]) -> Row | None:
        start, end = self._time(rec.get("start_time")), self._time(rec.get("end_time"))
        if start is None or end is None:
            return None
        energy = self._plausible(cid, rec.get("transaction_id"), "record",
                                 float(rec.get("energy_wh") or 0), start, end)
        return self._row(cid, start, end, energy, rec, str(rec.get("transaction_id") or 0))

    def _row(self, cid: str, start: datetime | None, end: datetime | None,
             energy_wh: float | None, rec: dict[str, Any] | None, tx: str) -> Row:
        kwh = None if energy_wh is None else max(energy_wh, 0.0) / 1000.0
        if rec is not None:
            cost = f"{int(rec.get('cost_raw') or 0) / 100:.2f}"  # costmoney: hundredths
        elif self.price_per_kwh is not None and kwh is not None:
            cost = f"{kwh * self.price_per_kwh:.2f}"
        else:
            cost = ""
        minutes = "" if start is None or end is None else \
            f"{max((end - start).total_seconds(), 0) / 60:.1f}"
        return Row(charger_id=cid, location=self.location.get(cid, ""),
                   start_time=self._local(start), end_time=self._local(end),
                   energy_kwh="" if kwh is None else f"{kwh:.3f}", cost=cost,
                   duration_minutes=minutes,
                   transaction_id=tx)

    # --- matching ---------------------------------------------------------------------

    def _stop_identity(self, cid: str, tx: int, timestamp: Any) -> str:
        if f"{cid}|{tx}" in self.ours:
            return f"tx|{cid}|{tx}"  # our ids never repeat
        return f"tx|{cid}|{tx}|{timestamp}"  # someone else's id: may repeat

    def _matches_logged(self, cid: str, tx: int, end: datetime | None,
                        exclude_ours: bool = False) -> bool:
        if not exclude_ours and f"{cid}|{tx}" in self.ours and f"tx|{cid}|{tx}" in self.logged:
            return True
        for entry in reversed(self.logged.values()):
            if entry["cid"] == cid and entry["tx"] == tx and end is not None and entry["end"] \
                    and abs(_dt(entry["end"]) - end) <= SAME_SESSION:
                return True
        return False

    def _take_orphan(self, cid: str, tx: int, stop: datetime) -> dict[str, Any] | None:
        for rid, orphan in list(self.orphans.items()):
            rec = orphan["record"]
            end = self._time(rec.get("end_time"))
            if orphan["cid"] == cid and int(rec.get("transaction_id") or 0) == tx and (
                    f"{cid}|{tx}" in self.ours or (end and abs(end - stop) <= SAME_SESSION)):
                del self.orphans[rid]
                return rec
        return None

    def _outboxed(self, ident: str) -> bool:
        return any(e["id"] == ident for e in self.outbox)

    def _seen(self, rid: str) -> None:
        self.records_seen[rid] = None
        while len(self.records_seen) > KEEP_LOGGED:
            del self.records_seen[next(iter(self.records_seen))]

    def _time(self, text: Any) -> datetime | None:
        try:
            return parse_charger_time(text, self.charger_tz)
        except ValueError:
            return None

    def _local(self, dt: datetime | None) -> str:
        return "" if dt is None else dt.astimezone(self.csv_tz).strftime(CSV_TIME)

    # --- the journal ------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "open": self.open, "closing": self.closing,
                "orphans": self.orphans, "outbox": self.outbox, "logged": self.logged,
                "records_seen": list(self.records_seen), "ours": list(self.ours),
                "recent": self.recent, "inbox_seq": self.inbox_seq}

    def load_json(self, data: dict[str, Any]) -> None:
        if not data:
            return
        if data.get("version") != 1:
            raise ValueError(f"unknown session journal version {data.get('version')!r}")
        self.open, self.closing = data["open"], data["closing"]
        self.orphans, self.outbox, self.logged = data["orphans"], data["outbox"], data["logged"]
        self.records_seen = dict.fromkeys(data["records_seen"])
        self.ours = dict.fromkeys(data["ours"])
        self.recent = data.get("recent", [])
        self.inbox_seq = int(data.get("inbox_seq", 0))
