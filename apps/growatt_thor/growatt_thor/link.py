"""The OCPP link to one THOR: `ocpp` handlers that translate messages into the core.

No AppDaemon here, and no sockets either: a :class:`ChargerLink` runs over any
object with ``async recv() -> str``, ``async send(str)`` and ``async close()``
(a ``websockets`` connection, or later a socket carried by AppDaemon's own web
server). What happens with the data is the business of a :class:`LinkHooks`
implementation: the hub node in AppDaemon, or a test.

Contract
- Every CALL from the charger gets exactly one reply: a CALLRESULT, or a
  CALLERROR with a 1.6 error code (also for frames that are not OCPP at all,
  which the `ocpp` library would otherwise drop silently).
- Calls to the charger go out one at a time (the THOR crashes under concurrent
  commands) from tasks of their own, never from inside a handler, and each has
  a timeout.
- Secret configuration values never reach a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, tzinfo, UTC
from typing import Any, Protocol
from collections.abc import Awaitable, Callable

import ocpp.messages
from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from websockets.exceptions import ConnectionClosed

from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    DataTransferStatus,
    MessageTrigger,
    RegistrationStatus,
)


from .thor.dialect import (
    EXTRA_CONFIG_KEYS,
    MSG_CURRENT_RECORD,
    MSG_EXTERNAL_METER,
    MSG_FAULT,
    MSG_FROZEN_RECORD,
    VENDOR_ID,
    ExternalMeter,
    FaultMessage,
    SessionRecord,
    parse_charger_time,
    utc_now_iso,
)
from .thor.bounds import RateLimitedLog, TokenBucket, printable
from .thor.diagnostics import redact_frame
from .thor.identity import CardPolicy
from .thor.state import ChargerState

# Schema validation of a handful of small messages is cheap; running it in a
# thread per message (the library's default) costs more in latency than it saves.
ocpp.messages.ASYNC_VALIDATION = False

# The `ocpp` library raises 2.0-style codes; OCPP 1.6 spells two of them differently.
_CODES_16 = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    "MessageTypeNotSupported": "NotSupported",
    "RpcFrameworkError": "ProtocolError",
}


# What a connection raises once it is closed: the link then ends (no CALLERROR, no ERROR).
CONNECTION_CLOSED = (ConnectionError, ConnectionClosed)

# jsonschema rules that a well-formed payload breaks with a bad *value*: in 1.6 that is a
# PropertyConstraintViolation, which the library reports as a FormatViolation.
_VALUE_RULES = frozenset({"enum", "const", "minimum", "maximum", "exclusiveMinimum",
                          "exclusiveMaximum", "multipleOf", "pattern", "format", "minLength"})


def _code_16(err: OCPPError) -> str:
    code = _CODES_16.get(err.code, err.code)
    if code == "FormationViolation" and getattr(err.__context__, "validator", None) \
            in _VALUE_RULES:
        return "PropertyConstraintViolation"
    return code


class Connection(Protocol):
    async def recv(self) -> str | bytes: ...
    async def send(self, message: str) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class LinkHooks(Protocol):
    """What the link asks of whoever owns it (the hub node, or a test)."""

    async def allocate_transaction_id(self, charger_id: str) -> int:
        """A transaction id never handed out before, also across restarts."""

    async def emit(self, charger_id: str, topic: str, payload: dict[str, Any]) -> None:
        """Something changed (see docs/nodes.md "Events" for topics and payloads)."""


@dataclass
class LinkSettings:
    heartbeat_interval: int = 60
    call_timeout: float = 15.0
    idle_timeout: float = 330.0  # the THOR heartbeats every 60 s and pings every 120 s
    charger_tz: tzinfo = UTC
    startup_delay: float = 0.5
    cards: CardPolicy = field(default_factory=CardPolicy)  # which id tags are accepted
    log_frames: bool = False  # every frame (secrets redacted) at INFO instead of DEBUG
    max_unique_id: int = 36  # OCPP-J: a unique id is at most 36 characters
    calls_per_second: float = 20.0  # per connection (the THOR sends a few a minute)
    call_burst: float = 100.0  # e.g. a stack of frozenrecords after a reconnect
    peer_log_per_minute: int = 20  # lines about a charger's bad frames


class CallFailed(Exception):
    """A call to the charger timed out, got a CALLERROR, or the link is down."""


class ChargerLink(ChargePoint):
    """One connected THOR. Create, then ``await run()`` until it disconnects."""

    def __init__(
        self,
        charger_id: str,
        connection: Connection,
        state: ChargerState,
        hooks: LinkHooks,
        settings: LinkSettings,
        logger: logging.Logger,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(charger_id, connection, response_timeout=settings.call_timeout,
                         logger=logger)
        self.state = state
        self.hooks = hooks
        self.settings = settings
        self.clock = clock
        self._frame_level = logging.INFO if settings.log_frames else logging.DEBUG
        self._tasks: set[asyncio.Task] = set()
        self._booted = asyncio.Event()
        self._closed = False
        self._awaiting: str | None = None  # unique id of our call in flight
        self._request_lock = asyncio.Lock()
        self._calls = TokenBucket(settings.calls_per_second, settings.call_burst)
        self._noisy = RateLimitedLog(logger, settings.peer_log_per_minute)

    # --- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        """Receive and handle frames until the connection ends or goes silent."""
        await self._emit_changed(self.state.on_connect(self.clock()))
        self.spawn(self._startup_if_no_boot())
        try:
            while True:
                raw = await asyncio.wait_for(self._connection.recv(), self.settings.idle_timeout)
                self.state.last_seen = now = self.clock()
                if isinstance(raw, bytes):  # OCPP-J is text frames only
                    text = raw.decode("utf-8", errors="replace")
                    self._peer_log("binary frame of %d bytes refused", len(raw))
                    await self._send_call_error(_guess_unique_id(text), "FormationViolation",
                                                "OCPP-J frames are text frames", {})
                    continue
                if self.logger.isEnabledFor(self._frame_level):
                    self.logger.log(self._frame_level, "<- %s", printable(redact_frame(raw),
                                                                          2000))
                self.state.frames.inbound(now, raw)
                await self.route_message(raw)
        except TimeoutError:
            self.logger.warning("%s: nothing received for %.0f s, closing the connection",
                                self.id, self.settings.idle_timeout)
        finally:
            self._closed = True
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._connection.close(), 5)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        """Run a coroutine beside the receive loop; cancelled when the link ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("%s: background task failed: %r", self.id, task.exception(),
                              exc_info=task.exception())

    async def _send(self, message: str) -> None:
        if self.logger.isEnabledFor(self._frame_level):
            self.logger.log(self._frame_level, "-> %s", printable(redact_frame(message), 2000))
        self.state.frames.outbound(self.clock(), message)
        await asyncio.wait_for(self._connection.send(message), self.settings.call_timeout)

    def _peer_log(self, msg: str, *args: Any, level: int = logging.WARNING) -> None:
        """A line about what the charger sent: rate-limited, its text made printable."""
        self._noisy.log(asyncio.get_running_loop().time(), level, f"%s: {msg}", self.id,
                        *(printable(a) if isinstance(a, str) else a for a in args))

    # --- incoming frames -------------------------------------------------------------

    async def route_message(self, raw_msg: str) -> None:
        """Route one frame; every CALL gets a reply, whatever is wrong with it.

        Bounded: a reply nobody asked for is dropped (never queued), a unique id is
        echoed at most ``max_unique_id`` characters long, and calls beyond
        ``calls_per_second`` (bursts of ``call_burst``) get a CALLERROR unhandled.
        """
        try:
            msg = unpack(raw_msg)
        except OCPPError as err:
            self._peer_log("malformed frame (%s): %s", err.code, raw_msg)
            await self._send_call_error(_guess_unique_id(raw_msg), err.code, err.description,
                                        _cause(err))
            return
        except (ValueError, RecursionError) as err:  # e.g. 5,000 digits, "[" * 100000
            self._peer_log("malformed frame (%s): %s", type(err).__name__, raw_msg)
            await self._send_call_error(_guess_unique_id(raw_msg), "FormationViolation",
                                        "not a JSON text the pack can read", {})
            return
        if msg.message_type_id != MessageType.Call:
            if msg.unique_id is not None and msg.unique_id == self._awaiting \
                    and self._response_queue.empty():
                self._response_queue.put_nowait(msg)
            else:
                self._peer_log("dropped a reply to no call of ours (id %s)", msg.unique_id)
            return
        if not isinstance(msg.unique_id, str) or not isinstance(msg.action, str):
            await self._send_call_error(str(msg.unique_id), "ProtocolError",
                                        "uniqueId and action must be strings", {})
            return
        if len(msg.unique_id) > self.settings.max_unique_id:
            await self._send_call_error(msg.unique_id, "ProtocolError",
                                        f"uniqueId longer than {self.settings.max_unique_id}",
                                        {})
            return
        if not self._calls.allow(asyncio.get_running_loop().time()):
            self._peer_log("more than %.0f calls a second: %s refused", self._calls.rate,
                           msg.action)
            await self._send_call_error(msg.unique_id, "GenericError",
                                        "too many calls: slow down", {})
            return
        if not isinstance(msg.payload, dict):
            await self._send_call_error(msg.unique_id, "FormationViolation",
                                        "payload must be a JSON object", {})
            return
        if msg.action not in self.route_map:
            known = msg.action in {a.value for a in Action}
            await self._send_call_error(
                msg.unique_id, "NotSupported" if known else "NotImplemented",
                f"{msg.action} is {'not supported' if known else 'not a known action'}", {})
            return
        try:
            await self._handle_call(msg)
        except CONNECTION_CLOSED:
            raise  # the connection ended while we answered: the link ends, quietly
        except OCPPError as err:
            code = _code_16(err)
            self._peer_log("rejected %s (%s): %s", msg.action, code,
                           _cause(err).get("cause", err.description))
            await self._send_call_error(msg.unique_id, code, err.description, _cause(err))
        except Exception as err:  # a bug of ours must not end the connection
            self.logger.exception("%s: error handling %s", self.id, printable(msg.action))
            await self._send_call_error(msg.unique_id, "InternalError", str(err)[:200], {})

    async def _send_call_error(self, unique_id: str, code: str, description: str,
                               details: dict[str, Any]) -> None:
        unique_id = unique_id[:self.settings.max_unique_id]
        frame = [MessageType.CallError, unique_id, _CODES_16.get(code, code), description,
                 details]
        await self._send(json.dumps(frame, separators=(",", ":"), default=str))

    # --- handlers: each translates a message into the core and back --------------------

    @on(Action.boot_notification)
    async def on_boot_notification(self, **payload: Any) -> call_result.BootNotification:
        await self._emit_changed(self.state.on_boot(payload, self.clock()), "boot",
                                 self.state.snapshot())
        return call_result.BootNotification(
            current_time=utc_now_iso(self.clock()),
            interval=self.settings.heartbeat_interval,
            status=RegistrationStatus.accepted,
        )

    @after(Action.boot_notification)
    async def after_boot_notification(self, **_: Any) -> None:
        first = not self._booted.is_set()
        self._booted.set()
        if first:
            self.spawn(self.startup_sequence())

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=utc_now_iso(self.clock()))

    @on(Action.status_notification)
    async def on_status_notification(self, **payload: Any) -> call_result.StatusNotification:
        changed = self.state.on_status(payload)
        await self._emit_changed(changed, "status", {
            "connector_id": payload.get("connector_id"), "status": payload.get("status"),
            "error_code": payload.get("error_code"), "info": payload.get("info") or ""})
        if "fault" in changed:
            await self._emit_fault()
        return call_result.StatusNotification()

    async def _emit_fault(self) -> None:
        """Topic ``fault``: ``{"active", "kind", and the codes}`` (active False: cleared)."""
        await self.hooks.emit(self.id, "fault", {"active": self.state.fault is not None,
                                                 "kind": self.state.fault_kind(),
                                                 **(self.state.fault or {})})

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": self._authorize(id_tag)})

    def _authorize(self, id_tag: str) -> str:
        status = self.settings.cards.status(id_tag)
        if status != "Accepted":
            self._peer_log("id tag %s: %s (%s)", id_tag, status,
                           self.settings.cards.describe(), level=logging.INFO)
        return status

    @on(Action.start_transaction)
    async def on_start_transaction(self, connector_id: int, id_tag: str, meter_start: int,
                                   timestamp: str, **extra: Any) -> call_result.StartTransaction:
        tx = await self.hooks.allocate_transaction_id(self.id)
        status = self._authorize(id_tag)
        await self._emit_changed(self.state.on_start(tx, id_tag), "transaction_started", {
            "transaction_id": tx, "connector_id": connector_id, "id_tag": id_tag,
            "id_tag_status": status,
            "meter_start": meter_start, "timestamp": timestamp,
            "start_utc": self._utc(timestamp), "reservation_id": extra.get("reservation_id")})
        return call_result.StartTransaction(transaction_id=tx, id_tag_info={"status": status})

    @on(Action.stop_transaction)
    async def on_stop_transaction(self, meter_stop: int, timestamp: str, transaction_id: int,
                                  **extra: Any) -> call_result.StopTransaction:
        last_energy = self.state.meter.get("energy_wh")
        started_by = self.state.id_tag if self.state.transaction_id == transaction_id else None
        await self._emit_changed(self.state.on_stop(transaction_id, meter_stop),
                                 "transaction_stopped", {
            "transaction_id": transaction_id, "meter_stop": meter_stop, "timestamp": timestamp,
            "stop_utc": self._utc(timestamp), "reason": extra.get("reason") or "Local",
            "id_tag": extra.get("id_tag") or started_by, "last_meter_energy_wh": last_energy})
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.meter_values)
    async def on_meter_values(self, **payload: Any) -> call_result.MeterValues:
        refused: list[str] = []
        changed = self.state.on_meter_values(payload, refused)
        if refused:
            self._peer_log("MeterValues: implausible values ignored: %s", ", ".join(refused))
        await self._emit_changed(changed, "meter", {
            "transaction_id": payload.get("transaction_id"), "values": dict(self.state.meter)})
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, message_id: str | None = None,
                               data: Any = None) -> call_result.DataTransfer:
        if vendor_id != VENDOR_ID:
            return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)
        if message_id == MSG_FAULT:
            try:
                fault = FaultMessage.parse(data)
            except ValueError as err:
                self._peer_log("%s", str(err))
                return call_result.DataTransfer(status=DataTransferStatus.rejected)
            await self._emit_changed(self.state.on_fault(fault))
            await self._emit_fault()
            return call_result.DataTransfer(status=DataTransferStatus.accepted)
        if message_id in (MSG_CURRENT_RECORD, MSG_FROZEN_RECORD):
            try:
                record = SessionRecord.parse(message_id, data)
            except ValueError as err:
                self.logger.warning("%s: %s", self.id, err)
                return call_result.DataTransfer(status=DataTransferStatus.rejected)
            await self.hooks.emit(self.id, "session_record", {"record": record})
            return call_result.DataTransfer(status=DataTransferStatus.accepted)
        self.logger.info("%s: DataTransfer %s not known, answered UnknownMessageId", self.id,
                         message_id)
        await self.hooks.emit(self.id, "data_transfer", {"message_id": message_id, "data": data})
        return call_result.DataTransfer(status=DataTransferStatus.unknown_message_id)

    @on(Action.firmware_status_notification)
    async def on_firmware_status(self, status: str) -> call_result.FirmwareStatusNotification:
        self.state.firmware_status = status
        await self.hooks.emit(self.id, "firmware_status", {"status": status})
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status(self, status: str
                                    ) -> call_result.DiagnosticsStatusNotification:
        self.state.diagnostics_status = status
        await self.hooks.emit(self.id, "diagnostics_status", {"status": status})
        return call_result.DiagnosticsStatusNotification()

    # --- calls to the charger ---------------------------------------------------------

    async def request(self, payload: Any) -> Any:
        """Send one call and return the typed result; :class:`CallFailed` otherwise.

        Calls are serialised by the library's lock: one at a time per charger.
        """
        if self._closed:
            raise CallFailed(f"{self.id} is not connected")
        try:
            async with self._request_lock:
                # Only the reply to this id may enter the library's response queue.
                self._awaiting = str(uuid.uuid4())
                try:
                    return await asyncio.wait_for(
                        self.call(payload, suppress=False, unique_id=self._awaiting),
                        self.settings.call_timeout + 1)
                finally:
                    self._awaiting = None
        except TimeoutError:
            raise CallFailed(f"{type(payload).__name__}: no answer within "
                             f"{self.settings.call_timeout:.0f} s") from None
        except OCPPError as err:
            raise CallFailed(f"{type(payload).__name__}: charger answered {err.code}: "
                             f"{err.description}") from None
        except (ConnectionError, OSError) as err:
            raise CallFailed(f"{type(payload).__name__}: {err}") from None

    async def startup_sequence(self) -> None:
        """What the THOR needs after (re)connecting before it sends live data."""
        await asyncio.sleep(self.settings.startup_delay)  # let the boot reply go out first
        steps = (self.trigger_status, self.read_configuration, self.read_extra_configuration,
                 self.read_external_meter)
        for step in steps:
            try:
                await step()
            except CallFailed as err:
                self.logger.warning("%s: start-up step %s failed: %s", self.id, step.__name__,
                                    err)

    async def _startup_if_no_boot(self) -> None:
        """A charger that does not boot after connecting still gets the start-up sequence."""
        try:
            await asyncio.wait_for(self._booted.wait(), 10)
        except TimeoutError:
            self._booted.set()
            await self.startup_sequence()

    async def trigger_status(self) -> None:
        res = await self.request(call.TriggerMessage(
            requested_message=MessageTrigger.status_notification, connector_id=1))
        if res.status != "Accepted":
            self.logger.info("%s: TriggerMessage StatusNotification: %s", self.id, res.status)

    async def read_configuration(self, keys: list[str] | None = None) -> dict[str, str]:
        res = await self.request(call.GetConfiguration(key=keys))
        changed = self.state.on_config(res.configuration_key or [])
        await self._emit_changed(changed, "config", {"config": self.state.public_config()})
        return {k["key"]: k.get("value") for k in res.configuration_key or []}

    async def read_extra_configuration(self) -> dict[str, str]:
        """The keys GetConfiguration {} leaves out (the THOR answers them by name only)."""
        return await self.read_configuration(list(EXTRA_CONFIG_KEYS))

    async def read_external_meter(self) -> ExternalMeter | None:
        res = await self.request(call.DataTransfer(vendor_id=VENDOR_ID,
                                                   message_id=MSG_EXTERNAL_METER))
        if res.status != DataTransferStatus.accepted or not res.data:
            self.logger.info("%s: get_external_meterval answered %s", self.id, res.status)
            return None
        try:
            reading = ExternalMeter.parse(res.data)
        except ValueError as err:
            self.logger.warning("%s: %s", self.id, err)
            return None
        await self._emit_changed(self.state.on_grid(reading), "grid", {
            "power_w": reading.power_w, "voltage": list(reading.voltage),
            "current": list(reading.current), "wiring": reading.wiring, "used": reading.used})
        return reading

    # --- helpers ----------------------------------------------------------------------

    async def _emit_changed(self, changed: set[str], topic: str | None = None,
                            payload: dict[str, Any] | None = None) -> None:
        if topic is not None:
            await self.hooks.emit(self.id, topic, payload or {})
        if changed:
            await self.hooks.emit(self.id, "state", {"changed": sorted(changed)})

    def _utc(self, timestamp: str) -> str | None:
        try:
            return parse_charger_time(timestamp, self.settings.charger_tz).isoformat()
        except ValueError:
            return None


def _guess_unique_id(raw: str) -> str:
    """The unique id of a frame we could not parse, if it has one; else ``"-1"``."""
    try:
        value = json.loads(raw)
        if isinstance(value, list) and len(value) > 1 and isinstance(value[1], str):
            return value[1]
    except (ValueError, TypeError, RecursionError):
        pass
    return "-1"


def _cause(err: OCPPError) -> dict[str, Any]:
    details = err.details if isinstance(err.details, dict) else {}
    return {"cause": str(details["cause"])[:300]} if "cause" in details else {}


__all__ = ["CallFailed", "ChargerLink", "Connection", "LinkHooks", "LinkSettings"]
