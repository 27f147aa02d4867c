"""One charger's write queue, run against its live OCPP link; also polls the grid meter.

No AppDaemon here. Every call the pack makes to a charger after start-up goes
through one :class:`ChargerWriter`: configuration writes, remote start/stop,
access-point mode and the grid-meter poll. The decisions (spacing, coalescing,
order, retries, offline) are :class:`thor.writequeue.WriteQueue`'s; this class
sends, interprets the answers, updates :class:`ChargerState` and reports.

Reports go through ``emit(topic, payload)``: topic ``write`` for every answer
or failure (see docs/nodes.md "Events"), and ``state`` when the queue changed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from typing import Any
from collections.abc import Awaitable, Callable

from ocpp.v16 import call

from .link import CallFailed, ChargerLink
from .thor import controls
from .thor.arbiter import Decision, Demand, arbitrate
from .thor.controls import BadValue
from .thor.dialect import VENDOR_ID
from .thor.state import ChargerState
from .thor.writequeue import (
    COMMAND,
    CONFIG,
    GAVE_UP,
    RETRY,
    SUPERSEDED,
    QueueSettings,
    Request,
    WriteQueue,
)

MSG_APP_CONFIG_MODE = "appconfigmode"
TRANSACTION = "transaction"  # the slot start and stop share: the latest intent wins
PLUGGED = frozenset({"Preparing", "SuspendedEV", "SuspendedEVSE"})  # a start can work
UNPLUGGED = frozenset({"", "Available", "Unavailable", "Faulted"})
ACCESS_POINT = "access_point"
HISTORY = 50  # answered writes kept for the queue's state and the diagnostics


@dataclass
class Group:
    """Several steps applied as one setting (boost mode plus its window or target)."""

    id: str
    label: str
    steps: list[tuple[str, str]]  # (key, wire value), in order
    source: str
    done: list[int] = field(default_factory=list)  # steps answered Accepted (or already so)

    def outcome(self, failed_step: int | None = None, status: str = "",
                message: str = "") -> dict[str, Any]:
        if failed_step is None:
            result = "applied"
        else:
            result = "partly_applied" if self.done else "failed"
        out = {"group": self.id, "setting": self.label, "result": result,
               "steps": [f"{k}={v}" for k, v in self.steps],
               "applied_steps": sorted(self.done), "source": self.source}
        if failed_step is not None:
            key = self.steps[failed_step - 1][0]
            out |= {"failed_step": failed_step, "failed_key": key, "status": status,
                    "message": message or f"step {failed_step} ({key}) answered {status}"}
        return out


@dataclass
class WriterSettings:
    queue: QueueSettings = field(default_factory=QueueSettings)
    max_current: int = 16  # the installation limit, A
    remote_id_tag: str = "HomeAssistant"
    grid_poll_interval: float = 30.0


class ChargerWriter:
    def __init__(
        self,
        charger_id: str,
        state: ChargerState,
        get_link: Callable[[], ChargerLink | None],
        emit: Callable[[str, dict[str, Any]], Awaitable[None]],
        settings: WriterSettings,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = charger_id
        self.state = state
        self.get_link = get_link
        self.emit = emit
        self.s = settings
        self.log = logger
        self.clock = clock
        self.queue = WriteQueue(settings.queue)
        self._wake = asyncio.Event()
        self._next_poll = 0.0
        self._link: ChargerLink | None = None  # the connection the queue last saw
        self.last_result: dict[str, Any] | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.groups: dict[str, Group] = {}
        self.last_apply: dict[str, Any] | None = None
        self._group_ids = itertools.count(1)
        # nodes that say they drive this charger (claim): owner -> what it does. With the
        # owners of live demands they are its drivers; while there are any, the charger's
        # own solar mode can't be switched on.
        self.claims: dict[str, str] = {}
        # the nodes' demands and the one decision made of them (thor/arbiter.py)
        self.demands: dict[str, Demand] = {}
        self.decision = Decision(None, None, None, None, "")
        self._applied_current: int | None = None
        self._last_status = ""

    # --- requests (synchronous: they only queue) ---------------------------------------

    def set_config(self, key: str, value: Any, source: str = "api") -> dict[str, Any]:
        """Queue a configuration write. Raises :class:`BadValue` for values it refuses."""
        wire, note = self._wire(key, value, source)
        return self._put(self._config_request(key, wire, source, note), self._current(key, wire))

    def _wire(self, key: str, value: Any, source: str) -> tuple[str, str]:
        wire, note = controls.to_wire(key, value, self.s.max_current)
        drivers = self.drivers() if key == controls.PV_MODE_KEY and wire != "1&0" else {}
        if drivers:
            owner, what = next(iter(drivers.items()))
            raise BadValue(f"the charger's own solar mode stays off while {owner} drives the "
                           f"charger ({what}): switch that off first")
        if note:
            self.log.warning("%s: %s (asked by %s)", self.id, note, source)
        return wire, note

    def _current(self, key: str, wire: str) -> str | None:
        current = self.state.config.get(key)
        if current is not None and controls.same_value(key, current, wire):
            current = wire
        return current

    @staticmethod
    def _config_request(key: str, wire: str, source: str, note: str = "") -> Request:
        action = "DataTransfer" if key in controls.DATA_TRANSFER_SETTINGS else \
            "ChangeConfiguration"
        return Request(slot=key, kind=CONFIG, action=action, value=wire, source=source,
                       note=note)

    def apply(self, label: str, steps: list[tuple[str, Any]],
              source: str = "api") -> dict[str, Any]:
        """Queue several settings as one: in order, each spaced like any write.

        Every value is checked first; one bad value queues nothing (:class:`BadValue`).
        A step the charger refuses cancels the steps after it, and the ``apply`` event
        says ``partly_applied`` (which step) or ``failed``; ``applied`` when all went
        (a step the charger already has counts as applied without a write).
        """
        wires = [(key, *self._wire(key, value, source)) for key, value in steps]
        group = Group(f"{label}#{next(self._group_ids)}", label,
                      [(k, w) for k, w, _ in wires], source)
        for old in list(self.groups.values()):  # a newer request for the same setting
            if old.label == label:
                self.queue.cancel_group(old.id)
                del self.groups[old.id]
        for key, _, _ in wires:
            self.queue.drop(key)
        self.groups[group.id] = group
        queued = 0
        for n, (key, wire, note) in enumerate(wires, 1):
            req = self._config_request(key, wire, source, note)
            req.group, req.step = group.id, n
            if self.queue.put(req, self.clock(), self._current(key, wire)) is None:
                group.done.append(n)  # the charger has it already
            else:
                queued += 1
        self.log.info("%s: %s from %s: %d step(s) queued: %s", self.id, label, source, queued,
                      ", ".join(f"{k}={w}" for k, w, _ in wires))
        if queued == 0:
            self._finish_group(group, None)
        self._changed()
        return {"queued": queued > 0, "group": group.id, "steps": len(wires)}

    def _finish_group(self, group: Group, failed: int | None, status: str = "",
                      message: str = "") -> None:
        self.groups.pop(group.id, None)
        self.last_apply = group.outcome(failed, status, message)
        level = logging.INFO if failed is None else logging.WARNING
        self.log.log(level, "%s: %s %s%s", self.id, group.label, self.last_apply["result"],
                     f": {self.last_apply['message']}" if failed else "")
        self._emit_soon("apply", dict(self.last_apply))

    def _group_step(self, req: Request, status: str, message: str) -> None:
        group = self.groups.get(req.group or "")
        if group is None or status == "retrying":
            return
        if status in controls.WRITE_OK:
            group.done.append(req.step)
            if not any(r.group == group.id for r in self.queue.pending.values()):
                self._finish_group(group, None)
            return
        cancelled = self.queue.cancel_group(group.id)
        if cancelled:
            self.log.warning("%s: %s: step %d answered %s; not sent: %s", self.id,
                             group.label, req.step, status,
                             ", ".join(r.describe() for r in cancelled))
        self._finish_group(group, req.step, status, message)

    def start(self, source: str = "api") -> dict[str, Any]:
        return self._put(Request(slot=TRANSACTION, kind=COMMAND,
                                 action="RemoteStartTransaction", value="start", source=source))

    def stop(self, source: str = "api") -> dict[str, Any]:
        return self._put(Request(slot=TRANSACTION, kind=COMMAND,
                                 action="RemoteStopTransaction", value="stop", source=source))

    def access_point(self, source: str = "api") -> dict[str, Any]:
        return self._put(Request(slot=ACCESS_POINT, kind=COMMAND, action="DataTransfer",
                                 value=MSG_APP_CONFIG_MODE, source=source))

    def _put(self, req: Request, current: str | None = None) -> dict[str, Any]:
        now = self.clock()
        queued = self.queue.put(req, now, current)
        if queued is None:
            self.log.info("%s: %s from %s: nothing to do (already so, or already queued)",
                          self.id, req.describe(), req.source)
        else:
            _, at = self.queue.next_due()
            wait = "offline, sent after reconnect" if not self.queue.online else (
                f"next write in {max(0.0, at - now):.1f} s" if at != float("inf")
                else "after the call in flight")
            self.log.info("%s: queued %s from %s (%d waiting, %s)", self.id, req.describe(),
                          req.source, len(self.queue.pending), wait)
        self._changed()
        return {"queued": queued is not None, "value": req.value, "note": req.note}

    def pending(self, key: str) -> bool:
        return self.queue.is_waiting(key)

    def wake(self) -> None:
        self._wake.set()

    # --- demands: one decision per charger ---------------------------------------------

    def claim(self, owner: str, what: str) -> None:
        """``owner`` says it drives the charger (``what``: for the log and refusals)."""
        if self.claims.get(owner) != what:
            self.claims[owner] = what
            self._changed()

    def release(self, owner: str) -> None:
        if self.claims.pop(owner, None) is not None:
            self._changed()

    def drivers(self) -> dict[str, str]:
        """Who drives the charger: the claims, and the owners of demands with an opinion."""
        live = {d.owner: f"demand, priority {d.priority}" for d in self.demands.values()
                if d.charge is not None or d.current is not None}
        return live | self.claims

    def put_demand(self, demand: Demand) -> dict[str, Any]:
        """A node's demand (replacing its previous one); the decision is applied at once."""
        self.demands[demand.owner] = demand
        return self.arbitrate()

    def withdraw(self, owner: str) -> dict[str, Any]:
        self.demands.pop(owner, None)
        return self.arbitrate()

    def arbitrate(self, source: str = "") -> dict[str, Any]:
        """Turn the demands into requests, on changes only (like a node would):
        the current when the decision's current changes (or the charger reports
        another and nothing is waiting), a start when the decision turns to charge or
        the car is plugged in (from Available) while it says so, a stop when it turns to
        not charging."""
        prev = self.decision
        dec = self.decision = arbitrate(self.demands.values(), self.s.max_current)
        who = dec.by or dec.current_by or "nobody"
        src = f"arbiter ({who}{', ' + source if source else ''})"
        status, tx = self.state.status, self.state.transaction_id
        # a new plug-in (from Available), not Finishing -> Preparing after a stop: a stop
        # pressed by hand stands until the decision changes or the car is plugged in again
        plugged_now = status in PLUGGED and self._last_status in UNPLUGGED
        self._last_status = status
        if dec.current is not None and dec.charge is not False:
            reported = self.state.config.get(controls.MAX_CURRENT_KEY)
            drifted = (reported is not None and self._applied_current is not None
                       and not controls.same_value(controls.MAX_CURRENT_KEY, reported,
                                                   str(self._applied_current))
                       and not self.queue.is_waiting(controls.MAX_CURRENT_KEY))
            if dec.current != self._applied_current or drifted:
                self._applied_current = dec.current
                self.set_config(controls.MAX_CURRENT_KEY, dec.current, src)
        elif dec.current is None:
            self._applied_current = None
        if dec.charge is True and tx is None and status in PLUGGED \
                and (prev.charge is not True or plugged_now):
            self.start(src)
        elif dec.charge is False and prev.charge is not False and tx is not None:
            self.stop(src)
        if dec != prev:
            self.log.info("%s: decision: %s", self.id, dec.describe())
            self._changed()
        return {"charge": dec.charge, "current": dec.current, "by": dec.by,
                "current_by": dec.current_by, "reason": dec.reason}

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the queue for good
                self.log.exception("%s: write queue error", self.id)
                await asyncio.sleep(1)

    async def _step(self) -> None:
        now = self.clock()
        self._track_connection(now)
        for old in self.queue.expire(now):
            await self._report(old, "expired", f"not sent within "
                               f"{self.s.queue.command_ttl:.0f} s (charger offline)",
                               now - old.queued_at)
            self._changed()
        req = self.queue.take(now)
        if req is not None:
            await self._execute(req, now)
            return
        polling = self._polling()
        if polling and now >= self._next_poll and self.queue.poll_allowed(now):
            await self._poll(now)
            return
        _, at = self.queue.next_due()
        if polling:
            at = min(at, max(self._next_poll, now + 0.5))
        timeout = min(max(at - now, 0.01), 5.0)  # also notice connection changes
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    def _track_connection(self, now: float) -> None:
        link = self.get_link()
        online = link is not None and self.state.connected
        if online and self.queue.online and link is not self._link:
            # a new connection the loop never saw go away (a reconnect within one
            # step): the spacing starts again from this connection all the same
            self.queue.on_disconnect()
        if online:
            self._link = link
        if online and not self.queue.online:
            self.queue.on_connect(now)
            self._next_poll = now + self.s.queue.spacing
            if self.queue.pending:
                self.log.info("%s: connected; %d queued write(s) go out from now on",
                              self.id, len(self.queue.pending))
            self._changed()
        elif not online and self.queue.online:
            self.queue.on_disconnect()
            self._changed()

    def _polling(self) -> bool:
        return self.state.config.get(controls.LB_ENABLE_KEY, "").strip() == "1"

    async def _poll(self, now: float) -> None:
        self._next_poll = now + self.s.grid_poll_interval
        link = self.get_link()
        if link is None:
            return
        try:
            await link.read_external_meter()
        except CallFailed as err:
            self.log.info("%s: grid meter poll failed: %s", self.id, err)

    async def _execute(self, req: Request, now: float) -> None:
        waited = now - req.queued_at
        self._changed()
        link = self.get_link()
        if link is None:
            self.queue.finished(req, False, self.clock(), offline=True)
            return
        self.log.info("%s: sending %s (attempt %d, waited %.1f s)", self.id, req.describe(),
                      req.attempts, waited)
        try:
            status, message = await self._send(link, req)
        except BadValue as err:  # the last guard refused it: never sent
            self.queue.finished(req, True, self.clock())
            self.log.error("%s: %s", self.id, err)
            await self._report(req, "refused", str(err), waited)
            return
        except CallFailed as err:
            offline = self.get_link() is not link or link._closed
            outcome = self.queue.finished(req, False, self.clock(), offline=offline)
            if outcome == RETRY and not offline:
                wait = req.not_before - self.clock()
                self.log.warning("%s: %s failed (%s); retrying in %.0f s", self.id,
                                 req.describe(), err, wait)
                await self._report(req, "retrying", str(err), waited)
            elif outcome == GAVE_UP:
                self.log.error("%s: %s failed %d times, giving up: %s", self.id,
                               req.describe(), req.attempts, err)
                await self._report(req, "failed", f"gave up after {req.attempts} attempts: "
                                   f"{err}", waited)
            elif outcome == SUPERSEDED:
                self.log.info("%s: %s failed (%s); a newer value is queued", self.id,
                              req.describe(), err)
            self._changed()
            return
        self.queue.finished(req, True, self.clock())
        level = logging.INFO if status in controls.WRITE_OK else logging.WARNING
        self.log.log(level, "%s: %s answered %s (waited %.1f s)%s", self.id, req.describe(),
                     status, waited, f": {message}" if message else "")
        await self._report(req, status, message, waited)
        self._changed()

    async def _send(self, link: ChargerLink, req: Request) -> tuple[str, str]:
        if req.action == "ChangeConfiguration":
            controls.check_outgoing(req.slot, req.value, self.s.max_current)
            res = await link.request(call.ChangeConfiguration(key=req.slot, value=req.value))
            status = str(res.status)
            if status in controls.WRITE_OK:
                self.state.on_config_written(req.slot, req.value)
                if status == "Accepted" and req.slot in controls.READABLE_AFTER_WRITE:
                    try:  # the helpers show what the charger reports, not what we sent
                        await link.read_configuration([req.slot])
                    except CallFailed as err:
                        self.log.info("%s: reading %s back failed: %s", self.id, req.slot, err)
                else:
                    await self.emit("config", {"config": self.state.public_config()})
                    await self.emit("state", {"changed": ["config"]})
            message = {"RebootRequired": "the charger reboots to apply this",
                       "Rejected": "the charger rejected the value",
                       "NotSupported": "the charger does not know this setting"}.get(status, "")
            return status, message
        if req.action == "RemoteStartTransaction":
            res = await link.request(call.RemoteStartTransaction(
                id_tag=self.s.remote_id_tag, connector_id=1))
            return str(res.status), "" if res.status == "Accepted" else \
                "the charger did not start (is a car plugged in, or a session running?)"
        if req.action == "RemoteStopTransaction":
            tx = self.state.transaction_id
            if tx is None:
                return "Rejected", "no charging session is running"
            res = await link.request(call.RemoteStopTransaction(transaction_id=tx))
            return str(res.status), "" if res.status == "Accepted" else \
                f"the charger did not stop transaction {tx}"
        if req.action == "DataTransfer" and req.kind == CONFIG:  # a setting, with data
            controls.check_outgoing(req.slot, req.value, self.s.max_current)
            res = await link.request(call.DataTransfer(vendor_id=VENDOR_ID,
                                                       message_id=req.slot, data=req.value))
            status = str(res.status)
            return status, "" if status == "Accepted" else \
                f"the charger answered {req.slot} with {status}"
        if req.action == "DataTransfer":
            res = await link.request(call.DataTransfer(vendor_id=VENDOR_ID,
                                                       message_id=req.value))
            return str(res.status), "the charger opens its own Wi-Fi access point and " \
                "leaves the network" if res.status == "Accepted" else ""
        raise BadValue(f"unknown action {req.action}")

    # --- reporting --------------------------------------------------------------------

    async def _report(self, req: Request, status: str, message: str, waited: float) -> None:
        self.last_result = {
            "key": req.slot if req.kind == CONFIG else None, "action": req.action,
            "value": req.value, "status": status, "message": message, "source": req.source,
            "attempt": req.attempts, "waited_s": round(waited, 1), "note": req.note,
            "charger_value": self.state.config.get(req.slot) if req.kind == CONFIG else None,
            "newer_pending": req.slot in self.queue.pending,
            "group": req.group, "step": req.step or None,
        }
        if status != "retrying":
            self.history.append(dict(self.last_result, at=datetime.now(UTC).isoformat(
                timespec="seconds")))
        await self.emit("write", dict(self.last_result))
        if req.group is not None:
            self._group_step(req, status, message)

    def summary(self) -> dict[str, Any]:
        info = self.queue.summary()
        at = info.pop("next_at")
        info["next_write"] = None if at is None else (
            datetime.now(UTC) + timedelta(seconds=max(0.0, at - self.clock()))
        ).isoformat(timespec="seconds")
        info["online"] = self.queue.online
        info["last_result"] = self.last_result
        info["last_apply"] = self.last_apply
        drivers = self.drivers()
        if drivers:
            info["driven_by"] = drivers
        if self.demands:
            info["decision"] = self.decision.describe()
            info["demands"] = {d.owner: {"priority": d.priority, "charge": d.charge,
                                         "current": d.current, "reason": d.reason}
                               for d in self.demands.values()}
        return info

    def _changed(self) -> None:
        self.state.queue = self.summary()
        self._wake.set()
        self._state_dirty()

    def _state_dirty(self) -> None:
        self._emit_soon("state", {"changed": ["queue"]})

    def _emit_soon(self, topic: str, payload: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self.emit(topic, payload))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
