"""The Growatt THOR's OCPP 1.6J dialect, as plain data and functions.

Everything here is pure Python: no sockets, no asyncio, no AppDaemon. It is what
`shared/thor/README.md` documents, turned into code that tests can drive alone.

- Vendor strings: the THOR packs session records and meter readings into
  ``key=value&key=value`` strings whose values may contain spaces and colons
  but are not URL-encoded (``plugtime=2025-12-18 18:48:54``).
- Time: the THOR's timestamps carry no zone; they are the charger's local time.
- Secrets: some configuration keys must never be logged or published.
"""

from __future__ import annotations

import re
from typing import Any
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo, UTC

VENDOR_ID = "Growatt"

# DataTransfer messageIds seen in the captures.
MSG_CURRENT_RECORD = "currentrecord"  # charger -> server, right after StopTransaction
MSG_FROZEN_RECORD = "frozenrecord"  # charger -> server, stored records after (re)connect
MSG_EXTERNAL_METER = "get_external_meterval"  # server -> charger, grid meter reading
MSG_FAULT = "faultmessage"  # charger -> server, a fault's codes
MSG_APP_CONFIG_MODE = "appconfigmode"  # server -> charger, opens the set-up access point

# Configuration keys whose values are secrets: never logged, never published.
SECRET_KEYS = frozenset(
    {
        "G_Authentication",
        "G_CardPin",
        "G_WifiPassword",
        "G_WifiSSID",
        "G_4GUserName",
        "G_4GPassword",
        "AuthorizationKey",
    }
)
REDACTED = "***"


def redact_config(config: dict[str, str]) -> dict[str, str]:
    """Return a copy of ``config`` with every secret value replaced by ``***``."""
    return {k: (REDACTED if k in SECRET_KEYS else v) for k, v in config.items()}


def parse_vendor_string(data: str) -> dict[str, str]:
    """Split a THOR vendor string ``a=1&b=x y`` into a dict of strings.

    Values are taken literally (no URL decoding: the THOR does not encode).
    A part without ``=`` is kept with an empty value; empty parts are skipped.
    Raises ``ValueError`` if ``data`` is not a string.
    """
    if not isinstance(data, str):
        raise ValueError(f"vendor data must be a string, got {type(data).__name__}")
    out: dict[str, str] = {}
    for part in data.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def format_vendor_string(values: dict[str, object]) -> str:
    """The inverse of :func:`parse_vendor_string`, keeping the order given."""
    return "&".join(f"{k}={v}" for k, v in values.items())


_LOCAL_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def parse_charger_time(value: str, charger_tz: tzinfo) -> datetime:
    """Parse a THOR timestamp into an aware UTC datetime.

    The THOR sends naive local times (``2025-12-18T23:00:09`` in StartTransaction,
    ``2025-12-18 23:00:09`` in session records). Those are read in ``charger_tz``.
    Timestamps that do carry a zone (``...Z`` or ``+01:00``), as a standard
    charger would send, are honoured. Raises ``ValueError`` on anything else.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
        for fmt in _LOCAL_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if parsed is None:
            raise ValueError(f"not a timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=charger_tz)
    return parsed.astimezone(UTC)


def utc_now_iso(now: datetime) -> str:
    """OCPP ``currentTime``: always UTC with a ``Z`` (keeps the THOR's clock in sync)."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SessionRecord:
    """A session record from DataTransfer ``currentrecord`` / ``frozenrecord``.

    ``record_id`` is the charger's own record number; ``currentrecord`` and
    ``frozenrecord`` are numbered separately, so ``(kind, record_id)`` is the key.
    Times are naive charger-local strings as sent; convert with
    :func:`parse_charger_time`.
    """

    kind: str
    record_id: int
    connector_id: int
    charge_mode: str
    plug_time: str
    unplug_time: str
    start_time: str
    end_time: str
    energy_wh: int
    cost_raw: int
    transaction_id: int
    work_mode: str

    @classmethod
    def parse(cls, kind: str, data: str) -> SessionRecord:
        """Parse the ``data`` of a session record; ``ValueError`` if it is not one."""
        v = parse_vendor_string(data)
        try:
            return cls(
                kind=kind,
                record_id=int(v["id"]),
                connector_id=int(v.get("connectorId", "1") or 1),
                charge_mode=v.get("chargemode", ""),
                plug_time=v.get("plugtime", ""),
                unplug_time=v.get("unplugtime", ""),
                start_time=v["starttime"],
                end_time=v["endtime"],
                energy_wh=int(_finite(v.get("costenergy", "0") or 0)),
                cost_raw=int(_finite(v.get("costmoney", "0") or 0)),
                transaction_id=int(v.get("transactionId", "0") or 0),
                work_mode=v.get("workmode", ""),
            )
        except (KeyError, ValueError, OverflowError) as err:
            raise ValueError(f"not a THOR session record ({err}): {data[:300]!r}") from None

    def to_vendor_string(self) -> str:
        return format_vendor_string(
            {
                "id": self.record_id,
                "connectorId": self.connector_id,
                "chargemode": self.charge_mode,
                "plugtime": self.plug_time,
                "unplugtime": self.unplug_time,
                "starttime": self.start_time,
                "endtime": self.end_time,
                "costenergy": self.energy_wh,
                "costmoney": self.cost_raw,
                "transactionId": self.transaction_id,
                "workmode": self.work_mode,
            }
        )


def _finite(text: object, low: float = 0.0, high: float = 1e9) -> float:
    """A number of the charger's, finite and within [low, high]; ValueError otherwise."""
    value = float(text)  # type: ignore[arg-type]
    if not low <= value <= high:  # also NaN and the infinities
        raise ValueError(f"{text!r} is not a plausible value")
    return value


# What a fault is, for people: the THOR's codes as its app and the integration users migrate
# from read them (shared/thor/README.md, "Faults"): errcode 100 or an info containing
# "emergency stop" is the emergency stop, info "485fault" a failed RS-485 (external) meter.
FAULT_NONE = "none"
FAULT_EMERGENCY_STOP = "emergency stop"
FAULT_EXTERNAL_METER = "external meter failure"
FAULT_OTHER = "other"


def fault_kind(errcode: str = "", info: str = "", error_code: str = "") -> str:
    """One of the FAULT_* names for a fault's codes."""
    text = (info or "").lower()
    if str(errcode).strip() == "100" or "emergency stop" in text:
        return FAULT_EMERGENCY_STOP
    if "485fault" in text.replace(" ", ""):
        return FAULT_EXTERNAL_METER
    return FAULT_OTHER


@dataclass(frozen=True)
class FaultMessage:
    """DataTransfer ``faultmessage``: ``connectorId``, ``errcode``, ``info``, ``time``."""

    connector_id: int
    errcode: str
    info: str
    time: str  # the charger's local time, its "+" offset not URL-encoded

    @property
    def kind(self) -> str:
        return fault_kind(self.errcode, self.info)

    @classmethod
    def parse(cls, data: Any) -> FaultMessage:
        v = parse_vendor_string(data)
        try:
            connector = int(v.get("connectorId", "1") or 1)
        except ValueError as err:
            raise ValueError(f"not a THOR fault message ({err}): {str(data)[:300]!r}") from None
        if "errcode" not in v and "info" not in v:
            raise ValueError(f"not a THOR fault message (no errcode, no info): "
                             f"{str(data)[:300]!r}")
        return cls(connector, v.get("errcode", "")[:40], v.get("info", "")[:200],
                   v.get("time", "")[:40])


@dataclass(frozen=True)
class ExternalMeter:
    """The reply to DataTransfer ``get_external_meterval``: the grid connection.

    ``power_w`` is positive for import and negative for export.
    """

    used: bool
    wiring: int
    voltage: tuple[float, float, float]
    current: tuple[float, float, float]
    power_w: float

    @classmethod
    def parse(cls, data: str) -> ExternalMeter:
        v = parse_vendor_string(data)
        try:
            return cls(
                used=v.get("used", "0") == "1",
                wiring=int(v.get("wring", "1") or 1),
                voltage=tuple(_finite(v[f"{p}-voltage"], 0, 500)  # type: ignore[arg-type]
                              for p in "uvw"),
                current=tuple(_finite(v[f"{p}-current"], -500, 500)  # type: ignore[arg-type]
                              for p in "uvw"),
                power_w=_finite(v["power"], -500_000, 500_000),
            )
        except (KeyError, ValueError) as err:
            raise ValueError(f"not a THOR meter reading ({err}): {data[:300]!r}") from None

    def to_vendor_string(self) -> str:
        def num(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else str(x)

        parts: dict[str, object] = {"used": int(self.used), "wring": self.wiring}
        for p, x in zip("uvw", self.voltage):
            parts[f"{p}-voltage"] = num(x)
        for p, x in zip("uvw", self.current):
            parts[f"{p}-current"] = num(x)
        parts["power"] = num(self.power_w)
        return format_vendor_string(parts)


_UTC_OFFSET = re.compile(r"^UTC([+-])(\d{1,2})(?::?(\d{2}))?$")


def parse_thor_timezone(value: str) -> tzinfo | None:
    """``G_TimeZone`` (``UTC+1``) as a fixed-offset tzinfo, or None if unreadable.

    The THOR applies daylight saving itself (``G_DaylightSavingTime``); a fixed
    offset is only a fallback when no IANA zone is configured.
    """
    m = _UTC_OFFSET.match(value.strip()) if isinstance(value, str) else None
    if not m:
        return None
    sign = 1 if m.group(1) == "+" else -1
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    return timezone(sign * timedelta(minutes=minutes))


def zone_mismatch(g_timezone: str, zone: tzinfo, now: datetime) -> str | None:
    """Why the configured zone disagrees with the charger's ``G_TimeZone``, or None.

    The THOR stamps everything in its own local time; the pack reads those stamps
    in the configured zone. Compared on the standard (winter) offset, since the
    THOR applies daylight saving itself.
    """
    charger = parse_thor_timezone(g_timezone)
    if charger is None:
        return None
    offset = zone.utcoffset(now)
    dst = zone.dst(now)
    if offset is None:
        return None
    standard = offset - (dst or timedelta(0))
    if standard == charger.utcoffset(None):
        return None
    hours = standard.total_seconds() / 3600
    return (f"the charger's G_TimeZone is {g_timezone}, but the pack reads its times in "
            f"{zone} (UTC{hours:+g} standard): session times would be off; set time_zone "
            f"in the hub's arguments to the charger's zone")


# GetConfiguration {} answers only these 34 keys (in this order) ...
BASIC_CONFIG_KEYS = (
    "G_ChargerID", "G_ChargerRate", "G_ChargerLanguage", "G_MaxCurrent", "G_ChargerMode",
    "G_CardPin", "G_Authentication", "G_ChargerNetIP", "G_MaxTemperature",
    "G_ExternalLimitPower", "G_ExternalLimitPowerEnable", "G_ExternalSamplingCurWring",
    "G_SolarMode", "G_SolarLimitPower", "G_PeakValleyEnable", "G_AutoChargeTime",
    "G_RCDProtection", "G_PowerMeterAddr", "G_PowerMeterType", "G_TimeZone", "G_ServerURL",
    "G_RandDelayChargeTime", "G_WebSocketPingInterval", "HeartbeatInterval",
    "MeterValueSampleInterval", "ConnectionTimeOut", "LocalAuthorizeOffline",
    "AuthorizationCacheEnabled", "LocalPreAuthorize", "LocalAuthListEnabled",
    "AuthorizeRemoteTxRequests", "WebSocketPingInterval", "AllowOfflineTxForUnknownId",
    "MeterValuesSampledData",
)
# ... the others only when asked for by name; the Growatt cloud asks for these
# right after (the last three are unknown to firmware 2.2.16).
EXTRA_CONFIG_KEYS = (
    "G_ChargerNetDNS", "G_ChargerNetMask", "G_ChargerNetMac", "G_ChargerNetGateway",
    "G_MeterValueInterval", "G_PowerMeterType", "G_PowerMeterAddr",
    "UnlockConnectorOnEVSideDisconnect", "G_WifiSSID", "G_WifiPassword",
    "G_LowPowerReserveEnable", "G_NetworkMode", "G_TimeZone", "G_DaylightSavingTime",
    "G_PeriodTime", "G_OffPeakTime", "G_OffPeakEnable", "G_OffPeakCurr", "G_4GUserName",
    "G_4GPassword", "G_4GAPN", "G_SolarBoost", "G_SolarThresholdCurr", "G_WorkingMode",
    "LightIntensity", "G_DRM3Percentage", "G_DRM4Percentage", "G_TimeSharingPrice",
)
