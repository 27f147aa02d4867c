"""One charger's state, as the OCPP messages it sends change it.

Pure Python: handlers in the OCPP link call these methods with the message
payloads (camelCase dicts as on the wire, or the snake_case kwargs the `ocpp`
library hands over, see :func:`measurements_from_meter_values`). Each method
returns the topics that changed, so the adapter knows what to publish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from collections.abc import Iterable

from .diagnostics import FrameLog
from .dialect import FAULT_NONE, ExternalMeter, FaultMessage, fault_kind, redact_config

# OCPP connector status names (1.6), plus our own for "no connection".
UNAVAILABLE = "Unavailable"

PHASES = ("l1", "l2", "l3")

# measurand -> our key prefix
_MEASURANDS = {
    "Energy.Active.Import.Register": "energy_wh",
    "Current.Import": "current",
    "Voltage": "voltage",
    "Power.Active.Import": "power",
    "Temperature": "temperature",
    "Current.Offered": "current_offered",
    "SoC": "soc",
    "Frequency": "frequency",
}

# What a THOR (22 kW, 3 x 32 A) can physically report, by key prefix, with a wide margin.
# A value outside (or NaN, Infinity) is refused where it enters: never an entity or a row.
PLAUSIBLE = {
    "energy_wh": (0.0, 10_000_000.0),  # the register restarts at 0 every session
    "current": (0.0, 80.0),
    "current_offered": (0.0, 80.0),
    "voltage": (0.0, 500.0),
    "power": (-1_000.0, 30_000.0),  # per phase, or a total
    "temperature": (-60.0, 150.0),
    "soc": (0.0, 100.0),
    "frequency": (40.0, 70.0),
}


def plausible(prefix: str, value: float) -> bool:
    low, high = PLAUSIBLE.get(prefix, (-math.inf, math.inf))
    return math.isfinite(value) and low <= value <= high


# unit -> (canonical unit, factor)
_UNITS = {
    "Wh": ("Wh", 1.0),
    "kWh": ("Wh", 1000.0),
    "W": ("W", 1.0),
    "kW": ("W", 1000.0),
    "A": ("A", 1.0),
    "V": ("V", 1.0),
    "Celsius": ("C", 1.0),
    "Percent": ("%", 1.0),
}


def _get(d: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    return d.get(camel, d.get(snake, default))


def measurements_from_meter_values(meter_value: Iterable[dict[str, Any]],
                                   refused: list[str] | None = None) -> dict[str, float]:
    """Map the ``meterValue`` list of a MeterValues message to flat measurements.

    Keys: ``energy_wh``, ``current_l1..l3``, ``voltage_l1..l3``, ``power_l1..l3``,
    ``temperature`` (and ``power``, the sum of the phases, since the THOR sends
    no total), plus ``current_offered``/``soc``/``frequency`` when present.
    Values are converted to Wh, W, A, V, degrees Celsius. Accepts camelCase (the
    wire) and snake_case (the ``ocpp`` library's kwargs). Unknown measurands and
    unparseable values are skipped, and so are values that are not :func:`plausible`
    (named in ``refused``); the latest sample of a key wins.
    """
    out: dict[str, float] = {}
    for mv in meter_value or []:
        for sv in _get(mv, "sampledValue", "sampled_value", []) or []:
            measurand = sv.get("measurand") or "Energy.Active.Import.Register"
            prefix = _MEASURANDS.get(measurand)
            if prefix is None:
                continue
            try:
                value = float(sv.get("value"))
            except (TypeError, ValueError):
                continue
            unit = sv.get("unit")
            if unit == "Fahrenheit":
                value = (value - 32.0) * 5.0 / 9.0
            elif unit == "K":
                value = value - 273.15
            elif unit in _UNITS:
                value *= _UNITS[unit][1]
            if not plausible(prefix, value):
                if refused is not None:
                    refused.append(f"{measurand}={sv.get('value')!r}")
                continue
            phase = (sv.get("phase") or "").lower()
            phase = phase[:2] if phase[:2] in PHASES else ""
            if prefix in ("energy_wh", "temperature", "soc", "frequency"):
                key = prefix
            elif phase:
                key = f"{prefix}_{phase}"
            else:
                key = prefix  # a total (e.g. Power.Active.Import without phase)
            out[key] = value
    phase_powers = [out[f"power_{p}"] for p in PHASES if f"power_{p}" in out]
    if phase_powers and "power" not in out:
        out["power"] = sum(phase_powers)
    return out


@dataclass
class ChargerState:
    """What the pack knows about one charger. Plain data; snapshot() for others."""

    charger_id: str
    connected: bool = False
    status: str = UNAVAILABLE
    error_code: str = "NoError"
    info: str = ""
    vendor: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    last_boot: datetime | None = None
    last_seen: datetime | None = None
    transaction_id: int | None = None
    id_tag: str | None = None  # the card (or HA, or plug & charge) that started it
    fault: dict[str, str] | None = None  # the active fault's kind and codes; None: no fault
    meter: dict[str, float] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    grid: ExternalMeter | None = None
    firmware_status: str = ""
    diagnostics_status: str = ""
    queue: dict[str, Any] = field(default_factory=dict)  # the write queue's summary
    frames: FrameLog = field(default_factory=FrameLog, repr=False)  # for the diagnostics

    # --- changes from the charger -------------------------------------------------

    def on_connect(self, now: datetime) -> set[str]:
        self.connected = True
        self.last_seen = now
        return {"connection"}

    def on_disconnect(self) -> set[str]:
        self.connected = False
        self.status = UNAVAILABLE
        return {"connection", "status"}

    def on_boot(self, payload: dict[str, Any], now: datetime) -> set[str]:
        self.vendor = _get(payload, "chargePointVendor", "charge_point_vendor", "")
        self.model = _get(payload, "chargePointModel", "charge_point_model", "")
        self.serial = _get(payload, "chargePointSerialNumber", "charge_point_serial_number",
                           "") or ""
        self.firmware = _get(payload, "firmwareVersion", "firmware_version", "") or ""
        self.last_boot = now
        return {"boot"}

    def on_status(self, payload: dict[str, Any]) -> set[str]:
        connector = _get(payload, "connectorId", "connector_id", 1)
        if connector == 0:  # the whole charge point; the THOR has one connector
            return set()
        self.status = payload.get("status", self.status)
        self.error_code = _get(payload, "errorCode", "error_code", "NoError")
        self.info = payload.get("info") or ""
        changed = {"status"}
        if self.status == "Faulted":
            vendor = str(_get(payload, "vendorErrorCode", "vendor_error_code", "") or "")
            known = self.fault or {}
            self.fault = {**known, "error_code": str(self.error_code), "status_info": self.info,
                          "vendor_error_code": vendor,
                          "kind": known.get("kind") or fault_kind(vendor, self.info)}
            changed.add("fault")
        elif self.fault is not None:  # any other status: the fault is over
            self.fault = None
            changed.add("fault")
        # Not charging: no live power. The session energy stays until the next start.
        if self.status not in ("Charging", "SuspendedEV", "SuspendedEVSE") and self._zero_flows():
            changed.add("meter")
        return changed

    def _zero_flows(self) -> bool:
        changed = False
        for key in list(self.meter):
            if key.startswith(("power", "current")) and self.meter[key] != 0.0:
                self.meter[key] = 0.0
                changed = True
        return changed

    def on_start(self, transaction_id: int, id_tag: str | None = None) -> set[str]:
        self.transaction_id = transaction_id
        self.id_tag = id_tag
        # The energy register starts at 0 for each session.
        self.meter = {k: v for k, v in self.meter.items() if k in ("temperature",)}
        self.meter["energy_wh"] = 0.0
        return {"transaction", "meter"}

    def on_stop(self, transaction_id: int, meter_stop: int) -> set[str]:
        if self.transaction_id == transaction_id:
            self.transaction_id = self.id_tag = None
        self._zero_flows()
        if meter_stop and plausible("energy_wh", meter_stop) \
                and meter_stop > self.meter.get("energy_wh", 0.0):
            self.meter["energy_wh"] = float(meter_stop)
        return {"transaction", "meter"}

    def on_meter_values(self, payload: dict[str, Any],
                        refused: list[str] | None = None) -> set[str]:
        """Take the plausible readings of a MeterValues; the others are named in ``refused``."""
        tx = _get(payload, "transactionId", "transaction_id")
        if tx is not None and self.transaction_id is None:
            # A session we did not see start (e.g. after our own restart).
            self.transaction_id = int(tx)
        values = measurements_from_meter_values(_get(payload, "meterValue", "meter_value", []),
                                                refused)
        self.meter.update(values)
        return {"meter", "transaction"} if tx is not None else {"meter"}

    def on_fault(self, message: FaultMessage) -> set[str]:
        """DataTransfer ``faultmessage``: the fault's codes (a Faulted status may follow)."""
        self.fault = {**(self.fault or {}), "kind": message.kind, "errcode": message.errcode,
                      "info": message.info, "time": message.time}
        return {"fault"}

    def fault_kind(self) -> str:
        return FAULT_NONE if self.fault is None else self.fault.get("kind", FAULT_NONE)

    def on_config(self, keys: Iterable[dict[str, Any]]) -> set[str]:
        """Merge a GetConfiguration reply (``configurationKey`` list) into the config."""
        for item in keys or []:
            key = item.get("key")
            if key:
                self.config[key] = "" if item.get("value") is None else str(item.get("value"))
        return {"config"}

    def on_config_written(self, key: str, value: str) -> set[str]:
        self.config[key] = value
        return {"config"}

    def on_grid(self, reading: ExternalMeter) -> set[str]:
        self.grid = reading
        return {"grid"}

    # --- views -------------------------------------------------------------------

    def public_config(self) -> dict[str, str]:
        """The configuration with every secret replaced (safe to log and publish)."""
        return redact_config(self.config)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly copy of the state, secrets redacted."""
        return {
            "charger_id": self.charger_id,
            "connected": self.connected,
            "status": self.status,
            "error_code": self.error_code,
            "info": self.info,
            "vendor": self.vendor,
            "model": self.model,
            "serial": self.serial,
            "firmware": self.firmware,
            "last_boot": self.last_boot.isoformat() if self.last_boot else None,
            "transaction_id": self.transaction_id,
            "id_tag": self.id_tag,
            "meter": dict(self.meter),
            "config": self.public_config(),
            "grid": None
            if self.grid is None
            else {
                "used": self.grid.used,
                "wiring": self.grid.wiring,
                "voltage": list(self.grid.voltage),
                "current": list(self.grid.current),
                "power_w": self.grid.power_w,
            },
        }
