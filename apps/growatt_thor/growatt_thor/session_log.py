"""The session log node: one CSV row per finished charging session, exactly once; export.

apps.yaml::

    growatt_thor_sessions:
      module: growatt_thor.session_log
      class: SessionLog
      dependencies: [growatt_thor_hub]
      # path: /config/growatt_thor_sessions.csv
      # price_per_kwh: 0.25        # cost when the charger reports none
      # export_dir: /homeassistant/www

It subscribes to the hub durably (:meth:`GrowattThorHub.subscribe`): the charger
gets its StopTransaction reply only after the journal holds the session, and
messages that arrive while this app reloads are replayed. Accounting is
:class:`thor.sessions.SessionBook`; files are :mod:`thor.csvlog`, always in an
executor.

Export a date range (by session start, inclusive) to
``growatt_thor_export_<from>_<to>.csv`` in ``export_dir``:
- HA event ``growatt_thor_export`` with ``date_from``/``date_to`` (an HA script,
  button or card fires it), or the same event in AppDaemon's ``growatt_thor``
  namespace;
- the AppDaemon service ``growatt_thor/export`` (namespace ``growatt_thor``, also
  over REST);
- the helpers ``input_datetime.growatt_thor_export_from``/``_to`` and the button
  ``input_button.growatt_thor_export_sessions`` (dashboard, HA UI);
- the command line: ``python -m growatt_thor.export``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appdaemon.adapi import ADAPI

from .adapter import NOT_A_VALUE, connect_to_hub, notify_ha, publish_state
from .thor import csvlog
from .thor.config import SessionLogConfig
from .thor.bounds import printable
from .thor.sessions import SessionBook
from .thor.storage import read_json, write_json_atomic

TOPICS = ("transaction_started", "meter", "transaction_stopped", "session_record")
EXPORT_EVENT = "growatt_thor_export"
METER_SAVE_INTERVAL = 60.0  # s between journal saves for a running session's readings


class SessionLog(ADAPI):
    async def initialize(self) -> None:
        self.hub, self.cfg = await connect_to_hub(self, SessionLogConfig)
        self.ha_ns = self.hub.cfg.ha_namespace
        cfg = self.cfg
        config_dir = Path(self.config_dir)
        self.path = Path(cfg.path) if cfg.path else config_dir / "growatt_thor_sessions.csv"
        self.journal_path = Path(cfg.journal) if cfg.journal else \
            self.hub.state_dir / "sessions_journal.json"
        if cfg.export_dir:
            self.export_dir = Path(cfg.export_dir)
        else:  # HA's www folder (/local/) when AppDaemon's config sits in HA's config
            beside = config_dir.parent / "www"
            is_dir = await self.run_in_executor(beside.is_dir)
            self.export_dir = beside if is_dir else config_dir / "www"
        csv_tz = ZoneInfo(cfg.time_zone) if cfg.time_zone else self.hub.charger_tz
        self.book = SessionBook(
            charger_tz=self.hub.charger_tz, csv_tz=csv_tz,
            location={cid: c.location for cid, c in self.hub.cfg.chargers.items()},
            price_per_kwh=cfg.price_per_kwh, record_wait=cfg.record_wait)
        self.book.load_json(await self.run_in_executor(read_json, self.journal_path, {}))
        self._lock = asyncio.Lock()
        self._meter_saved = datetime.min.replace(tzinfo=UTC)
        self._shown: set[str] = set()  # chargers whose session entities are published
        self._wake = asyncio.Event()
        self._failures = 0

        # everything the hub stored for us since our journal's last one, then live
        await self.hub.subscribe(self.name, self._on_message, TOPICS,
                                 since=self.book.inbox_seq)
        # a crash between the CSV append and the journal update: those rows are there
        await self._reconcile()
        self._ticker = await self.create_task(self._tick())
        for ns in dict.fromkeys((self.hub.cfg.namespace, self.ha_ns)):
            await self.listen_event(self._on_export_event, EXPORT_EVENT, namespace=ns)
        self.register_service("growatt_thor/export", self._export_service,
                              namespace=self.hub.cfg.namespace)
        button = f"input_button.{cfg.helper_prefix}_export_sessions"
        await self.listen_state(self._on_export_button, button, namespace=self.ha_ns)
        await self._publish()
        export = f"sensor.{cfg.helper_prefix}_sessions_export"
        if not await self.entity_exists(export, namespace=self.ha_ns):  # before any export
            await publish_state(self, export, "none", {
                "friendly_name": "THOR sessions export", "icon": "mdi:file-export",
                "message": "no export yet"}, self.ha_ns)
        self.log(f"session log {self.path} ({len(self.book.open)} open, "
                 f"{len(self.book.closing)} closing, {len(self.book.outbox)} to write); "
                 f"exports to {self.export_dir}")

    async def terminate(self) -> None:
        hub = getattr(self, "hub", None)
        if hub is not None:
            hub.unsubscribe(self.name)
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.cancel()

    # --- messages from the hub --------------------------------------------------------

    async def _on_message(self, cid: str, topic: str, payload: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        seq = payload.get("inbox_seq")
        async with self._lock:
            if seq is not None and seq <= self.book.inbox_seq:
                return  # read from the hub's inbox already
            if seq is not None:
                self.book.inbox_seq = seq
            save = True
            if topic == "transaction_started":
                self.book.on_started(cid, payload, now)
            elif topic == "meter":
                if payload.get("transaction_id") is None:
                    return
                # Readings are saved at most once a minute (the THOR sends them every 120 s;
                # a flood must not fsync per frame). A crash loses at most a minute of
                # readings, which the stop's meterStop and the charger's record make good.
                self.book.on_meter(cid, payload, now)
                save = (now - self._meter_saved).total_seconds() >= METER_SAVE_INTERVAL
            elif topic == "transaction_stopped":
                self.book.on_stopped(cid, payload, now)
            elif topic == "session_record":
                self.book.on_record(cid, payload["record"], now)
            self.book.ready(now)
            self._log_notes()
            if save:
                await self._save()  # before the charger gets its reply
                if topic == "meter":
                    self._meter_saved = now
        self._wake.set()
        if cid not in self._shown:  # a charger first heard of now: its entities too
            await self._publish()

    def _log_notes(self) -> None:
        for note in self.book.notes:
            self.log(printable(note, 500), level="WARNING")
        self.book.notes.clear()

    async def _tick(self) -> None:
        """Finish sessions whose record did not come, write rows, retry failed writes."""
        while True:
            now = datetime.now(UTC)
            async with self._lock:
                if self.book.ready(now):
                    await self._save()
                self._log_notes()
                wrote = await self._flush()
            if wrote:
                await self._publish()
            deadline = self.book.next_deadline()
            timeout = self.cfg.retry_interval if self.book.outbox else 3600.0
            if deadline is not None:
                timeout = min(timeout, max((deadline - now).total_seconds(), 0.05))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _save(self) -> None:
        await self.run_in_executor(write_json_atomic, self.journal_path, self.book.to_json())

    async def _flush(self) -> bool:
        """Append the outbox to the CSV. On failure keep it and tell the user (once)."""
        entries = list(self.book.outbox)
        if not entries:
            return False
        lines = [csvlog.format_line(e["row"][c] for c in csvlog.COLUMNS) for e in entries]
        try:
            await self.run_in_executor(csvlog.append_lines, self.path, lines)
        except OSError as err:
            # every line differs (attempt number): AppDaemon's duplicate filter would
            # otherwise swallow the first different line after a run of repeats
            self._failures += 1
            msg = (f"could not write {len(entries)} session(s) to {self.path}: {err}. "
                   f"They are kept and written as soon as the file can be written "
                   f"(retry every {self.cfg.retry_interval:.0f} s, attempt {self._failures}).")
            self.log(msg, level="ERROR")
            if self._failures == 1:
                await notify_ha(self, self.ha_ns, "Growatt THOR: session log not written", msg)
            return False
        if self._failures:
            self.log(f"session log writable again after {self._failures} failed attempt(s): "
                     f"{len(entries)} session(s) written")
            self._failures = 0
        for e in entries:
            self.book.written(e["id"])
            self.log(f"session logged: {e['row']['charger_id']} {e['row']['start_time']} - "
                     f"{e['row']['end_time']} {e['row']['energy_kwh']} kWh "
                     f"(transaction {e['row']['transaction_id']})")
        await self._save()
        return True

    async def _reconcile(self) -> None:
        entries = list(self.book.outbox)
        lines = {csvlog.format_line(e["row"][c] for c in csvlog.COLUMNS): e["id"] for e in entries}
        present = await self.run_in_executor(csvlog.lines_present, self.path, list(lines))
        for line in present:
            self.book.written(lines[line])
        if present:
            self.log(f"{len(present)} session(s) were already in the CSV (crash before the "
                     f"journal was updated): not written again")
            await self._save()

    # --- entities ---------------------------------------------------------------------

    async def _publish(self) -> None:
        """The last sessions of every charger; before a charger's first session its
        entities exist too, as ``unknown`` (a dashboard then shows that, not an error)."""
        by_charger: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self.hub.charger_ids()}
        for row in self.book.recent:
            by_charger.setdefault(row["charger_id"], []).append(row)
        self._shown.update(by_charger)
        for cid, rows in by_charger.items():
            prefix = self.hub.entity_prefix(cid)
            name = self.hub.friendly_name(cid)
            last = rows[0] if rows else dict.fromkeys(
                ("energy_kwh", "cost", "start_time", "end_time", "transaction_id"), "")
            sensors = {
                f"sensor.{prefix}_last_session_energy": (last["energy_kwh"] or "unknown", {
                    "friendly_name": f"{name} Last session energy",
                    "unit_of_measurement": "kWh", "device_class": "energy",
                    "icon": "mdi:battery-charging", "start_time": last["start_time"],
                    "end_time": last["end_time"]}),
                f"sensor.{prefix}_last_session_cost": (last["cost"] or "unknown", {
                    "friendly_name": f"{name} Last session cost", "icon": "mdi:cash",
                    "transaction_id": last["transaction_id"]}),
                f"sensor.{prefix}_last_sessions": (last["end_time"] or "unknown", {
                    "friendly_name": f"{name} Last sessions", "icon": "mdi:history",
                    "sessions": rows[:5], "count": str(len(rows[:5])),
                    "csv": str(self.path)}),
            }
            for eid, (state, attrs) in sensors.items():
                await publish_state(self, eid, state, attrs, self.ha_ns)

    # --- export -----------------------------------------------------------------------

    async def export(self, date_from: Any, date_to: Any) -> dict[str, Any]:
        """Export sessions started in [date_from, date_to]; returns path, rows, url.

        Raises ValueError / FileNotFoundError with a message for the user.
        """
        d_from = csvlog.parse_date(date_from, "date_from")
        d_to = csvlog.parse_date(date_to, "date_to")
        path, rows = await self.run_in_executor(csvlog.export_range, self.path,
                                                self.export_dir, d_from, d_to)
        url = f"{self.cfg.export_url.rstrip('/')}/{path.name}"
        self._exports = getattr(self, "_exports", 0) + 1  # distinct lines, see _flush
        self.log(f"export #{self._exports}: {rows} session(s) {d_from}..{d_to} to {path}")
        await notify_ha(self, self.ha_ns, "Growatt THOR: sessions exported",
                        f"{rows} session(s) from {d_from} to {d_to}: [{path.name}]({url})")
        return {"path": str(path), "rows": rows, "url": url}

    async def _export_or_report(self, date_from: Any, date_to: Any, how: str) -> dict[str, Any]:
        """Export and show the outcome in ``sensor.<helper_prefix>_sessions_export``."""
        try:
            result = await self.export(date_from, date_to)
            state, attrs = "ok", {"message": f"{result['rows']} session(s) exported",
                                  "path": result["path"], "url": result["url"]}
        except (ValueError, OSError) as err:
            msg = f"export ({how}) not done: {err}"
            self.log(msg, level="WARNING")
            await notify_ha(self, self.ha_ns, "Growatt THOR: export not done", msg)
            result = {"error": str(err)}
            state, attrs = "error", {"message": msg}
        attrs |= {"friendly_name": "THOR sessions export", "icon": "mdi:file-export",
                  "date_from": str(date_from), "date_to": str(date_to),
                  "at": datetime.now(UTC).isoformat(timespec="seconds")}
        await publish_state(self, f"sensor.{self.cfg.helper_prefix}_sessions_export", state,
                            attrs, self.ha_ns)
        return result

    async def _on_export_event(self, event: str, data: dict[str, Any], kwargs: Any) -> None:
        await self._export_or_report(data.get("date_from"), data.get("date_to"),
                                     f"event {EXPORT_EVENT}")

    async def _export_service(self, namespace: str, domain: str, service: str,
                              data: dict[str, Any]) -> dict[str, Any]:
        return await self._export_or_report(data.get("date_from"), data.get("date_to"),
                                            "service growatt_thor/export")

    async def _on_export_button(self, entity: str, attribute: str, old: Any, new: Any,
                                kwargs: Any) -> None:
        if new in NOT_A_VALUE:
            return
        prefix = self.cfg.helper_prefix
        d_from = await self.get_state(f"input_datetime.{prefix}_export_from", namespace=self.ha_ns)
        d_to = await self.get_state(f"input_datetime.{prefix}_export_to", namespace=self.ha_ns)
        await self._export_or_report(d_from, d_to, f"button {entity}")
