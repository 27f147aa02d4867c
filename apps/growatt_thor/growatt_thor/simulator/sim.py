"""A simulated Growatt THOR 22AS that speaks the dialect captured from a real one.

It shares nothing with the pack but the documented dialect (``shared/thor/``):
frames are written by hand, not by the `ocpp` library, so that it sends exactly
what the THOR sends: message ids as small decimal strings restarting at "100"
after every boot, naive local timestamps, ``info`` in StatusNotification, values
as strings in MeterValues, Growatt DataTransfer session records.

Use it from tests (``async with ThorSimulator(...)``, then ``plug_in()``,
``charge()``...) or from the command line (``python -m growatt_thor.simulator``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo, UTC
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

log = logging.getLogger("thor_simulator")

SERIAL = "XGJ00003214700CA"
FIRMWARE = "THOR_22AS-V2.2.16-20240902"
ID_TAG = "freevenIdTag"

# What GetConfiguration {} answers (34 keys, in this order), then the keys the
# THOR only answers by name. Values as captured, with secrets replaced.
BASIC_CONFIG = {
    "G_ChargerID": SERIAL, "G_ChargerRate": "1.00", "G_ChargerLanguage": "English",
    "G_MaxCurrent": "15.00", "G_ChargerMode": "3", "G_CardPin": "REDACTED",
    "G_Authentication": "12345678", "G_ChargerNetIP": "192.168.1.5", "G_MaxTemperature": "80",
    "G_ExternalLimitPower": "11", "G_ExternalLimitPowerEnable": "1",
    "G_ExternalSamplingCurWring": "1", "G_SolarMode": "1&0", "G_SolarLimitPower": "1.32",
    "G_PeakValleyEnable": "0", "G_AutoChargeTime": "23:00-05:59", "G_RCDProtection": "6",
    "G_PowerMeterAddr": "2", "G_PowerMeterType": "Eastron SDM630", "G_TimeZone": "UTC+1",
    "G_ServerURL": "ws://192.168.1.100:9000/ocpp/ws", "G_RandDelayChargeTime": "0",
    "G_WebSocketPingInterval": "120", "HeartbeatInterval": "60",
    "MeterValueSampleInterval": "120", "ConnectionTimeOut": "90",
    "LocalAuthorizeOffline": "false", "AuthorizationCacheEnabled": "false",
    "LocalPreAuthorize": "false", "LocalAuthListEnabled": "false",
    "AuthorizeRemoteTxRequests": "false", "WebSocketPingInterval": "120",
    "AllowOfflineTxForUnknownId": "false",
    "MeterValuesSampledData": "Energy.Active.Import.Register",
}
NAMED_ONLY_CONFIG = {
    "G_PeriodTime": "1&time1=13:00-15:00", "G_ChargerNetDNS": "8.8.8.8",
    "G_ChargerNetMask": "255.255.255.0", "G_ChargerNetMac": "50:88:86:3A:4A:1A",
    "G_ChargerNetGateway": "192.168.1.1", "G_MeterValueInterval": "120",
    "UnlockConnectorOnEVSideDisconnect": "true", "G_WifiSSID": "REDACTED",
    "G_WifiPassword": "REDACTED", "G_LowPowerReserveEnable": "Disable",
    "G_NetworkMode": "DHCP", "G_DaylightSavingTime": "03-31&10-27",
    "G_OffPeakTime": "13:00-15:00=0&1", "G_OffPeakEnable": "1&Disable", "G_OffPeakCurr": "",
    "G_4GUserName": "", "G_4GPassword": "", "G_4GAPN": "Default", "G_SolarBoost": "1&Disable",
    "G_SolarThresholdCurr": "0", "G_WorkingMode": "Power Distribution",
    # written by the Growatt app, never listed by GetConfiguration:
    "G_LCDCloseEnable": "Disable",
    # not in the captures: the format of the integration users migrate from
    "G_TimeSharingPrice": "time1=00:00-23:59&price1=0.25",
}
# Keys whose change makes the THOR answer RebootRequired and reboot.
REBOOT_KEYS = {"G_ChargerMode"}


@dataclass
class SimSettings:
    url: str = "ws://127.0.0.1:9000/ocpp/ws"
    serial: str = SERIAL
    password: str = "12345678"
    tz: tzinfo = timezone(timedelta(hours=1))  # G_TimeZone UTC+1
    heartbeat_interval: float = 60.0
    meter_interval: float = 120.0
    reconnect_delay: tuple[float, float] = (20.0, 70.0)  # what the THOR does
    call_timeout: float = 15.0
    phases: int = 3
    reboot_delay: float = 1.0
    ssl: Any = None  # an ssl.SSLContext for a wss:// url (None: the default for wss)


@dataclass
class Session:
    transaction_id: int
    start: datetime
    plug: datetime
    energy_wh: float = 0.0
    last_reading: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class GridMeter:
    wiring: int = 1
    voltage: tuple[int, int, int] = (226, 229, 227)
    current: tuple[int, int, int] = (1, 2, 0)
    power: int = 826

    def data(self, charging_w: float = 0.0) -> str:
        """The reply; ``power`` is the house (``self.power``) plus what the car draws."""
        v, c = self.voltage, self.current
        return (f"used=1&wring={self.wiring}&u-voltage={v[0]}&v-voltage={v[1]}&w-voltage={v[2]}"
                f"&u-current={c[0]}&v-current={c[1]}&w-current={c[2]}"
                f"&power={int(self.power + charging_w)}")


class ThorSimulator:
    """One simulated THOR. ``await start()`` keeps it connected until ``stop()``."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.s = settings or SimSettings()
        self.config: dict[str, str] = {**BASIC_CONFIG, **NAMED_ONLY_CONFIG,
                                       "G_ChargerID": self.s.serial}
        self.grid = GridMeter()
        self.status = "Available"
        self.info = ""
        self.session: Session | None = None
        self.current_a = float(self.config["G_MaxCurrent"])
        self.record_id = 785
        self.received: list[list[Any]] = []  # every CALL the server sent us
        self.received_at: list[float] = []  # loop time of each, same order
        self.answered_at: list[float | None] = []  # when we sent each reply (None: never)
        self.connected_at: list[float] = []  # loop time of each WebSocket open
        self.replies: dict[str, Any] = {}  # our CALLs' replies, by message id
        self.connected = asyncio.Event()
        self.boots = 0
        self.reject_keys: set[str] = set()  # ChangeConfiguration answers Rejected
        self.reject_messages: set[str] = set()  # DataTransfer messageIds answered Rejected
        self.boost_target: dict[str, str] | None = None  # the last solar_target_data
        self.id_tag_status: str | None = None  # the server's answer to our last start
        # a flaky THOR: the next N calls of an action get a CALLERROR / no answer at all
        self.fail_next: dict[str, int] = {}
        self.ignore_next: dict[str, int] = {}
        self._ids = itertools.count(100)
        self._ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._runner: asyncio.Task | None = None
        self._send_lock = asyncio.Lock()
        self._stop = False
        self._reboot = asyncio.Event()
        self._rebooted_mid_session = False  # a reboot while charging: PowerLoss stop
        self._ahead = timedelta(0)  # how far the charger's clock is ahead (fast-forward)

    # --- control ----------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stop = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner

    async def __aenter__(self) -> ThorSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_connected(self, timeout: float = 15) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout)

    def calls(self, action: str) -> list[dict[str, Any]]:
        """The payloads of every CALL of ``action`` the server sent us, in order."""
        return [f[3] for f in self.received if f[2] == action]

    def call_times(self, action: str) -> list[float]:
        """When each CALL of ``action`` arrived (event-loop time), in order."""
        return [t for t, f in zip(self.received_at, self.received) if f[2] == action]

    async def disconnect(self) -> None:
        """Drop the connection as a Wi-Fi outage would (the THOR then reconnects)."""
        if self._ws is not None:
            await self._ws.close()

    # --- the charger's behaviour ------------------------------------------------------

    def now(self) -> datetime:
        """The charger's clock: real time, moved on when a test fast-forwards a session
        (``send_meter_values(1800)`` at once), so its timestamps fit its energy."""
        return datetime.now(UTC) + self._ahead

    def local(self, moment: datetime | None = None, sep: str = "T") -> str:
        moment = moment or self.now()
        return moment.astimezone(self.s.tz).strftime(f"%Y-%m-%d{sep}%H:%M:%S")

    async def plug_in(self) -> None:
        self.status, self.info = "Preparing", "ChargeWait"
        await self.send_status()

    async def charge(self, id_tag: str = ID_TAG) -> int:
        """Start a session (plug & charge, or with a card's ``id_tag``); returns the
        server's transaction id. The server's answer is in ``self.id_tag_status``."""
        if self.status != "Preparing":
            await self.plug_in()
        now = self.now()
        reply = await self.call("StartTransaction", {
            "connectorId": 1, "idTag": id_tag, "meterStart": 0, "reservationId": 0,
            "timestamp": self.local(now)})
        tx = int(reply["transactionId"])
        self.id_tag_status = (reply.get("idTagInfo") or {}).get("status")
        self.session = Session(tx, now, now, last_reading=now)
        self.status, self.info = "Charging", ""
        await self.send_status()
        await self.send_meter_values(0, drawing=False)  # the THOR's first, before the car draws
        return tx

    def charging_power(self) -> float:
        return float(sum(self.power_w())) if self.session is not None else 0.0

    def power_w(self) -> list[float]:
        volts = [223.4, 222.2, 222.4][: self.s.phases]
        return [round(v * self.current_a) for v in volts]

    async def send_meter_values(self, seconds: float | None = None,
                                drawing: bool = True) -> None:
        """One MeterValues as the THOR sends it; energy advances as if ``seconds`` passed.

        ``drawing=False``: the car draws nothing yet, as in the reading the THOR sends
        half a second after each StartTransaction (0 A, 0 W in the captures)."""
        if self.session is None:
            return
        seconds = self.s.meter_interval if seconds is None else seconds
        powers = self.power_w() if drawing else [0.0] * self.s.phases
        self.session.energy_wh += sum(powers) * seconds / 3600.0
        # ``seconds`` of charging have passed since the last reading, on the charger's clock
        due = self.session.last_reading + timedelta(seconds=seconds)
        if due > self.now():
            self._ahead += due - self.now()
        self.session.last_reading = self.now()
        volts = ["223.4", "222.2", "222.4"]
        amps = [f"{self.current_a if drawing else 0:.2f}" if i < self.s.phases else "0.00"
                for i in range(3)]
        watts = [str(int(p)) for p in powers] + ["0"] * (3 - len(powers))

        def sv(value: str, measurand: str, unit: str, phase: str | None = None) -> dict:
            d = {"value": value, "context": "Sample.Periodic", "format": "Raw",
                 "measurand": measurand}
            if phase:
                d["phase"] = phase
            d["unit"] = unit
            return d

        sampled = [sv(str(int(self.session.energy_wh)), "Energy.Active.Import.Register", "Wh")]
        sampled += [sv(amps[i], "Current.Import", "A", f"L{i+1}") for i in range(3)]
        sampled += [sv(volts[i], "Voltage", "V", f"L{i+1}") for i in range(3)]
        sampled += [sv(watts[i], "Power.Active.Import", "W", f"L{i+1}") for i in range(3)]
        sampled.append(sv("15.0", "Temperature", "Celsius"))
        await self.call("MeterValues", {"connectorId": 1,
                                        "transactionId": self.session.transaction_id,
                                        "meterValue": [{"timestamp": self.local(),
                                                        "sampledValue": sampled}]})

    async def finish(self, reason: str = "EVDisconnected", send_record: bool = True) -> None:
        """End the session: Finishing, StopTransaction, Available, then ``currentrecord``."""
        if self.session is None:
            return
        sess, self.session = self.session, None
        end = self.now()
        energy = int(sess.energy_wh)
        self.status, self.info = "Finishing", ""
        await self.send_status()
        await self.call("StopTransaction", {
            "idTag": ID_TAG, "meterStop": energy, "timestamp": self.local(end),
            "transactionId": sess.transaction_id, "reason": reason})
        self.status = "Available"
        await self.send_status()
        if send_record:
            await self.send_record("currentrecord", sess, end)

    async def send_record(self, kind: str, sess: Session, end: datetime,
                          record_id: int | None = None) -> None:
        if record_id is None:
            self.record_id += 1
            record_id = self.record_id
        energy = int(sess.energy_wh)
        data = (f"id={record_id}&connectorId=1&chargemode={self.config['G_ChargerMode']}"
                f"&plugtime={self.local(sess.plug, ' ')}&unplugtime={self.local(end, ' ')}"
                f"&starttime={self.local(sess.start, ' ')}&endtime={self.local(end, ' ')}"
                f"&costenergy={energy}&costmoney={energy * 25 // 1000}"
                f"&transactionId={sess.transaction_id}&workmode=7")
        await self.call("DataTransfer", {"vendorId": "Growatt", "messageId": kind, "data": data})

    async def fault(self, errcode: str = "100", info: str = "emergency stop") -> None:
        """A fault as the THOR reports one: DataTransfer faultmessage, then Faulted."""
        now = self.now().astimezone(self.s.tz)
        stamp = now.strftime("%Y-%m-%d %H:%M:%S") + now.strftime("%z")[:3] + ":" + \
            now.strftime("%z")[3:]  # "+01:00", not URL-encoded, as the THOR sends it
        await self.call("DataTransfer", {"vendorId": "Growatt", "messageId": "faultmessage",
                                         "data": f"connectorId=1&errcode={errcode}&info={info}"
                                                 f"&time={stamp}"})
        self.status, self.info = "Faulted", info
        await self.call("StatusNotification", {"connectorId": 1, "errorCode": "OtherError",
                                               "info": info, "status": "Faulted",
                                               "vendorErrorCode": errcode})

    async def clear_fault(self) -> None:
        self.status, self.info = "Available", ""
        await self.send_status()

    async def send_status(self) -> None:
        await self.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                               "info": self.info, "status": self.status})

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        """Send a CALL as the THOR does and wait for its reply (the result payload)."""
        if self._ws is None:
            raise ConnectionError("not connected")
        uid = str(next(self._ids))
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[uid] = fut
        async with self._send_lock:
            await self._ws.send(json.dumps([2, uid, action, payload]))
        try:
            reply = await asyncio.wait_for(fut, self.s.call_timeout)
        finally:
            self._pending.pop(uid, None)
        self.replies[uid] = reply
        return reply

    # --- connection -------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stop:
            try:
                await self._connect_once()
            except (TimeoutError, OSError, ConnectionClosed, InvalidHandshake) as err:
                log.info("connection ended: %s", err or type(err).__name__)
            except Exception:
                log.exception("simulator error")
            self.connected.clear()
            self._ws = None
            if self._stop:
                break
            if self._reboot.is_set():
                self._reboot.clear()
                await asyncio.sleep(self.s.reboot_delay)
            else:
                await asyncio.sleep(random.uniform(*self.s.reconnect_delay))

    async def _connect_once(self) -> None:
        token = base64.b64encode(f"{self.s.serial}:{self.s.password}".encode()).decode()
        url = f"{self.s.url.rstrip('/')}/{self.s.serial}"
        async with connect(url, subprotocols=["ocpp1.6"],
                           additional_headers={"Authorization": f"Basic {token}"},
                           user_agent_header=None, open_timeout=10, ping_interval=None,
                           close_timeout=5, **({"ssl": self.s.ssl} if self.s.ssl else {})
                           ) as ws:
            self._ws = ws
            self.connected_at.append(asyncio.get_running_loop().time())
            self._ids = itertools.count(100)  # ids restart at "100" after every boot
            reader = asyncio.ensure_future(self._read(ws))
            heartbeats: asyncio.Future | None = None
            try:
                await self._boot()
                self.connected.set()
                heartbeats = asyncio.ensure_future(self._heartbeats())
                await asyncio.wait([reader, heartbeats], return_when=asyncio.FIRST_COMPLETED)
            finally:
                reader.cancel()
                if heartbeats is not None:
                    heartbeats.cancel()
                for fut in self._pending.values():
                    fut.cancel()

    async def _boot(self) -> None:
        self.boots += 1
        await self.call("BootNotification", {
            "chargePointVendor": "Growatt", "chargePointModel": "THOR_22AS",
            "chargePointSerialNumber": self.s.serial, "firmwareVersion": FIRMWARE})
        if self.session is not None and self.boots > 1 and self._rebooted_mid_session:
            # After a reboot mid-session the THOR stops the old transaction: PowerLoss, 0.
            sess, self.session = self.session, None
            await self.call("StopTransaction", {
                "idTag": ID_TAG, "meterStop": 0, "timestamp": self.local(sess.start),
                "transactionId": sess.transaction_id, "reason": "PowerLoss"})
            self.status = "Preparing"
        self._rebooted_mid_session = False
        await self.send_status()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.s.heartbeat_interval)
            await self.call("Heartbeat", {})

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                frame = json.loads(raw)
            except ValueError:
                continue
            if frame[0] in (3, 4):
                fut = self._pending.get(frame[1])
                if fut is not None and not fut.done():
                    if frame[0] == 3:
                        fut.set_result(frame[2])
                    else:
                        fut.set_exception(RuntimeError(f"CALLERROR {frame[2]}: {frame[3]}"))
                continue
            self.received.append(frame)
            self.received_at.append(asyncio.get_running_loop().time())
            self.answered_at.append(None)
            asyncio.ensure_future(self._answer(ws, frame, len(self.received) - 1))

    async def _answer(self, ws: ClientConnection, frame: list[Any], index: int) -> None:
        _, uid, action, payload = frame
        after = None
        handler = getattr(self, f"_on_{action}", None)
        if self.ignore_next.get(action, 0) > 0:
            self.ignore_next[action] -= 1
            return
        if self.fail_next.get(action, 0) > 0:
            self.fail_next[action] -= 1
            reply: list[Any] = [4, uid, "InternalError", "busy", {}]
        elif handler is None:
            reply: list[Any] = [4, uid, "NotImplemented", f"{action} not supported", {}]
        else:
            result, after = handler(payload)
            reply = [3, uid, result]
        async with self._send_lock:
            await ws.send(json.dumps(reply))
        self.answered_at[index] = asyncio.get_running_loop().time()
        if after is not None:
            await after

    # --- replies to the server's calls (each returns (result, follow-up or None)) -----

    def _on_GetConfiguration(self, p: dict) -> tuple[dict, None]:
        keys = p.get("key")
        if not keys:
            items = [(k, self.config[k]) for k in BASIC_CONFIG]
            unknown: list[str] = []
        else:
            items = [(k, self.config[k]) for k in keys if k in self.config]
            unknown = [k for k in keys if k not in self.config]
        return ({"configurationKey": [{"key": k, "value": v, "readonly": False}
                                      for k, v in items], "unknownKey": unknown}, None)

    def _on_ChangeConfiguration(self, p: dict) -> tuple[dict, Any]:
        key, value = p["key"], p["value"]
        if key in self.reject_keys:
            return {"status": "Rejected"}, None
        if key not in self.config:
            return {"status": "NotSupported"}, None
        self.config[key] = value
        if key == "G_MaxCurrent":
            self.current_a = float(value)
        if key in REBOOT_KEYS:
            return {"status": "RebootRequired"}, self._reboot_soon()
        return {"status": "Accepted"}, None

    async def _reboot_soon(self) -> None:
        await asyncio.sleep(0.2)
        self._reboot.set()
        self._rebooted_mid_session = self.session is not None
        if self._ws is not None:
            await self._ws.close()

    def _on_TriggerMessage(self, p: dict) -> tuple[dict, Any]:
        what = p.get("requestedMessage")
        if what == "StatusNotification":
            return {"status": "Accepted"}, self.send_status()
        if what == "BootNotification":
            return {"status": "Accepted"}, self._boot()
        if what == "Heartbeat":
            return {"status": "Accepted"}, self.call("Heartbeat", {})
        if what == "MeterValues":
            return {"status": "Accepted"}, self.send_meter_values(0)
        return {"status": "NotImplemented"}, None

    def _on_DataTransfer(self, p: dict) -> tuple[dict, Any]:
        mid = p.get("messageId")
        if mid == "get_external_meterval":
            return {"status": "Accepted", "data": self.grid.data(self.charging_power())}, None
        if mid in self.reject_messages:
            return {"status": "Rejected"}, None
        if mid == "appconfigmode":
            return {"status": "Accepted"}, None
        if mid == "solar_target_data":  # the smart boost's target (no read-back)
            self.boost_target = dict(part.split("=", 1) for part in
                                     str(p.get("data", "")).split("&") if "=" in part)
            return {"status": "Accepted"}, None
        return {"status": "UnknownMessageId"}, None

    def _on_RemoteStartTransaction(self, p: dict) -> tuple[dict, Any]:
        if self.session is not None or self.status not in ("Preparing", "SuspendedEV"):
            return {"status": "Rejected"}, None
        return {"status": "Accepted"}, self.charge()

    def _on_RemoteStopTransaction(self, p: dict) -> tuple[dict, Any]:
        if self.session is None or self.session.transaction_id != p.get("transactionId"):
            return {"status": "Rejected"}, None
        return {"status": "Accepted"}, self.finish("Remote")

    def _on_Reset(self, p: dict) -> tuple[dict, Any]:
        return {"status": "Accepted"}, self._reboot_soon()


async def demo(settings: SimSettings, session_minutes: float, pause_minutes: float) -> None:
    """Run forever: idle, plug in, charge with meter values, stop, repeat."""
    sim = ThorSimulator(settings)
    await sim.start()
    try:
        while True:
            await sim.wait_connected(timeout=3600)
            await asyncio.sleep(min(5.0, pause_minutes * 60))
            try:
                await sim.plug_in()
                await sim.charge()
                end = asyncio.get_running_loop().time() + session_minutes * 60
                while asyncio.get_running_loop().time() < end:
                    await sim.send_meter_values(settings.meter_interval)
                    await asyncio.sleep(settings.meter_interval)
                await sim.finish()
            except (TimeoutError, ConnectionError, ConnectionClosed, RuntimeError) as e:
                log.info("demo session interrupted: %s", e)
            await asyncio.sleep(pause_minutes * 60)
    finally:
        await sim.stop()
