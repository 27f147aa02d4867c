"""The THOR's writable settings: helper value <-> wire value, with validation and safety.

Pure Python. Every value that goes to the charger is made here, so this is
where the installation limit is enforced: :func:`current_to_wire` never returns
a current above the limit or below 6 A, and :func:`check_outgoing` is the last
guard right before a frame is sent.

Wire formats are the ones the Growatt app wrote (``shared/thor/README.md``):
``G_MaxCurrent`` "16", ``G_ExternalLimitPower`` "10" (kW),
``G_ExternalLimitPowerEnable`` "1"/"0", ``G_ChargerMode`` "1"/"2"/"3",
``G_AutoChargeTime`` "23:01-05:59", ``G_LCDCloseEnable`` "Enable"/"Disable";
the charger's own solar ("PV linkage") settings ``G_SolarMode`` "1&0"/"1&1"/"1&2",
``G_SolarLimitPower`` "1.4" (kW), ``G_SolarBoost`` "1&Disable"/"1&ManualBoost"/
"1&SmartBoost", ``G_PeriodTime`` "1&time1=13:00-15:00", ``G_OffPeakEnable``
"1&Enable"/"1&Disable", ``G_ExternalSamplingCurWring`` "0"/"1"/"2", and the smart
boost's DataTransfer ``solar_target_data``. ``G_PowerMeterAddr`` (1..247),
``G_PowerMeterType`` (codes) and ``G_FullContinueChargeEnable`` are the peer's.
``G_TimeSharingPrice`` "time1=00:00-23:59&price1=0.23" is the format of the integration
users migrate from (not in our captures); ``G_ChargerRate`` "1.00" is only ever seen read.
docs/controls.md lists the source and confidence of each.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from .config import MAX_CURRENT, MIN_CURRENT

MAX_CURRENT_KEY = "G_MaxCurrent"
LB_LIMIT_KEY = "G_ExternalLimitPower"
LB_ENABLE_KEY = "G_ExternalLimitPowerEnable"
MODE_KEY = "G_ChargerMode"
SCHEDULE_KEY = "G_AutoChargeTime"
DISPLAY_KEY = "G_LCDCloseEnable"
PV_MODE_KEY = "G_SolarMode"
PV_LIMIT_KEY = "G_SolarLimitPower"
PV_BOOST_KEY = "G_SolarBoost"
PV_WINDOW_KEY = "G_PeriodTime"
OFF_PEAK_KEY = "G_OffPeakEnable"
SAMPLING_KEY = "G_ExternalSamplingCurWring"
METER_ADDRESS_KEY = "G_PowerMeterAddr"
METER_TYPE_KEY = "G_PowerMeterType"
WARM_UP_KEY = "G_FullContinueChargeEnable"
TARIFF_KEY = "G_TimeSharingPrice"
RATE_KEY = "G_ChargerRate"
SMART_BOOST_TARGET = "solar_target_data"  # a DataTransfer, not a key: no read-back

# G_ChargerMode numbers, in the order of the Growatt app (to be confirmed on a charger).
CHARGER_MODES = {"1": "Plug & Charge", "2": "RFID only", "3": "HA + RFID (app)"}

LB_LIMIT_RANGE = (1.0, 100.0)  # kW at the grid connection
PV_LIMIT_RANGE = (0.0, 22.0)  # kW of grid import the PV mode may use (a THOR is 22 kW at most)
BOOST_ENERGY_RANGE = (0.1, 200.0)  # kWh, in 0.1 steps
TARIFF_RANGE = (-2.0, 2.0)  # per kWh, in 0.01 steps (the peer's range)
RATE_RANGE = (0.0, 100.0)

# The THOR's own solar mode: "1&" is the connector. 1 and 2 are the Growatt app's two PV
# modes, named as the integration users migrate from names them.
PV_MODES = {"1&0": "Off", "1&1": "PV linkage", "1&2": "PV linkage plus"}
PV_BOOSTS = {"1&Disable": "Off", "1&ManualBoost": "Manual", "1&SmartBoost": "Smart"}
# How the charger measures the grid connection. Our brief read the key as the meter's
# wiring (1 or 3 phases); the peer's newer code reads it as the sampling method, which fits
# the capture (an Eastron SDM630 three-phase meter, three voltages, value "1"). See
# docs/controls.md.
SAMPLINGS = {"0": "CT 2000:1", "1": "Power meter", "2": "CT 3000:1"}
# G_PowerMeterType as the peer writes it (the capture reads back a name: "Eastron SDM630")
METER_TYPES = {"0": "none", "1": "Acrel DDS1352", "2": "Acrel DTSD1352 (3-phase)",
               "3": "Eastron SDM230", "4": "Eastron SDM630 (3-phase)",
               "5": "Eastron SDM120 MID", "6": "Eastron SDM72D MID (3-phase)",
               "7": "DIN rail DTSU666 MID (3-phase)", "10": "CHINT DTSU666 MID (3-phase)",
               "11": "CHINT DDSU666"}

# Keys read back after a write with GetConfiguration by name. The THOR never
# lists G_LCDCloseEnable, so its helper keeps what was written.
READABLE_AFTER_WRITE = frozenset({
    MAX_CURRENT_KEY, LB_LIMIT_KEY, LB_ENABLE_KEY, SCHEDULE_KEY, PV_MODE_KEY, PV_LIMIT_KEY,
    PV_BOOST_KEY, PV_WINDOW_KEY, OFF_PEAK_KEY, SAMPLING_KEY, TARIFF_KEY, RATE_KEY,
    METER_ADDRESS_KEY, METER_TYPE_KEY})


# ChangeConfiguration answers that mean the charger took the value (it may reboot for it)
WRITE_OK = ("Accepted", "RebootRequired")


class BadValue(ValueError):
    """A value that can't be sent; the message says why, for a log line or notification."""


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise BadValue(f"{what}: {value!r} is not a number")
    try:
        v = float(str(value).strip())
    except (TypeError, ValueError):
        raise BadValue(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise BadValue(f"{what}: {value!r} is not a number")
    return v


def current_to_wire(value: Any, limit: int) -> tuple[str, str]:
    """A charging current for ``G_MaxCurrent``: whole amperes in [6, limit].

    Returns ``(wire value, note)``; the note says what was clamped (else "").
    Fractions are rounded down, so rounding never exceeds what was asked.
    """
    limit = int(min(max(limit, MIN_CURRENT), MAX_CURRENT))
    amps = _number(value, "charging current")
    whole = math.floor(amps)
    if whole > limit:
        return str(limit), (f"{amps:g} A is above the installation limit; "
                            f"clamped to {limit} A")
    if whole < MIN_CURRENT:
        return str(MIN_CURRENT), (f"{amps:g} A is below the {MIN_CURRENT} A minimum; "
                                  f"clamped to {MIN_CURRENT} A")
    return str(whole), ""


def lb_limit_to_wire(value: Any) -> tuple[str, str]:
    kw = _number(value, "load-balancing limit")
    lo, hi = LB_LIMIT_RANGE
    if not lo <= kw <= hi:
        raise BadValue(f"load-balancing limit: {kw:g} kW is outside {lo:g}..{hi:g} kW")
    return f"{round(kw, 1):g}", ""


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes", "enable", "enabled"):
        return True
    if text in ("off", "false", "0", "no", "disable", "disabled"):
        return False
    raise BadValue(f"{value!r} is not on/off")


def lb_enable_to_wire(value: Any) -> tuple[str, str]:
    return ("1" if as_bool(value) else "0"), ""


def display_to_wire(value: Any) -> tuple[str, str]:
    """Display on means "do not switch the LCD off": ``G_LCDCloseEnable`` Disable."""
    return ("Disable" if as_bool(value) else "Enable"), ""


def mode_to_wire(value: Any) -> tuple[str, str]:
    text = str(value).strip()
    if text in CHARGER_MODES:
        return text, ""
    for number, label in CHARGER_MODES.items():
        if text.lower() == label.lower():
            return number, ""
    raise BadValue(f"charger mode: {value!r} is not one of {', '.join(CHARGER_MODES.values())}")


_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def hhmm(value: Any) -> str:
    m = _TIME.match(str(value))
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise BadValue(f"{value!r} is not a time (HH:MM)")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def schedule_to_wire(value: Any) -> tuple[str, str]:
    """``(start, stop)`` or ``"HH:MM-HH:MM"`` -> ``"HH:MM-HH:MM"``."""
    if isinstance(value, str) and "-" in value:
        start, _, stop = value.partition("-")
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        start, stop = value
    else:
        raise BadValue(f"auto-charge time: {value!r} is not start and stop times")
    return f"{hhmm(start)}-{hhmm(stop)}", ""


def _choice(table: dict[str, str], what: str, value: Any) -> str:
    """A wire value of ``table`` from itself or its label (any case)."""
    text = str(value).strip()
    if text in table:
        return text
    for wire, label in table.items():
        if text.lower() == label.lower():
            return wire
    raise BadValue(f"{what}: {value!r} is not one of {', '.join(table.values())}")


def _in_range(value: Any, what: str, lo: float, hi: float, unit: str, step: float) -> float:
    v = _number(value, what)
    if not lo <= v <= hi:
        raise BadValue(f"{what}: {v:g} {unit} is outside {lo:g}..{hi:g} {unit}")
    q = round(v / step) * step
    if abs(q - v) > 1e-6:
        raise BadValue(f"{what}: {v:g} {unit} is not in steps of {step:g} {unit}")
    return round(q, 6)


def pv_mode_to_wire(value: Any) -> tuple[str, str]:
    return _choice(PV_MODES, "THOR solar mode", value), ""


def pv_limit_to_wire(value: Any) -> tuple[str, str]:
    kw = _in_range(value, "THOR solar grid import", *PV_LIMIT_RANGE, "kW", 0.01)
    return f"{kw:.2f}".rstrip("0").rstrip("."), ""


def pv_boost_to_wire(value: Any) -> tuple[str, str]:
    return _choice(PV_BOOSTS, "THOR solar boost", value), ""


def pv_window_to_wire(value: Any) -> tuple[str, str]:
    """The manual boost's window: ``(start, stop)`` or ``"HH:MM-HH:MM"``."""
    window, _ = schedule_to_wire(value)
    return f"1&time1={window}", ""


def off_peak_to_wire(value: Any) -> tuple[str, str]:
    return ("1&Enable" if as_bool(value) else "1&Disable"), ""


def sampling_to_wire(value: Any) -> tuple[str, str]:
    text = str(value).strip()
    if text in ("0.0", "1.0", "2.0"):
        text = text[0]
    return _choice(SAMPLINGS, "external sampling", text), ""


def meter_address_to_wire(value: Any) -> tuple[str, str]:
    return f"{int(_in_range(value, 'power meter address', 1, 247, '(Modbus id)', 1))}", ""


def meter_type_to_wire(value: Any) -> tuple[str, str]:
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return _choice(METER_TYPES, "power meter type", text), ""


def warm_up_to_wire(value: Any) -> tuple[str, str]:
    return ("Enable" if as_bool(value) else "Disable"), ""


def tariff_to_wire(value: Any) -> tuple[str, str]:
    price = _in_range(value, "charger tariff", *TARIFF_RANGE, "per kWh", 0.01)
    return f"time1=00:00-23:59&price1={price:.2f}", ""


def rate_to_wire(value: Any) -> tuple[str, str]:
    rate = _in_range(value, "charger rate", *RATE_RANGE, "per kWh", 0.01)
    return f"{rate:.2f}", ""


def _boost_target(value: Any) -> tuple[float, str]:
    """``(kWh, "YYYY-MM-DD HH:MM")`` of a smart boost's target, checked."""
    if isinstance(value, str):
        value = dict(p.split("=", 1) for p in value.split("&") if "=" in p)
        value = {"energy": value.get("energy"), "by": value.get("contime")}
    if not isinstance(value, dict):
        raise BadValue(f"smart boost: {value!r} is not an energy and a time")
    kwh = _in_range(value.get("energy"), "smart boost energy", *BOOST_ENERGY_RANGE,
                    "kWh", 0.1)
    by = value.get("by")
    by = by.strftime("%Y-%m-%d %H:%M") if hasattr(by, "strftime") else str(by or "").strip()
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}:\d{2})(?::\d{2})?$", by)
    if not m:
        raise BadValue(f"smart boost: {by!r} is not a date and time (YYYY-MM-DD HH:MM)")
    y, mo, d = (int(x) for x in m.groups()[:3])
    if not (1 <= mo <= 12 and 1 <= d <= 31 and 2000 <= y <= 2099):
        raise BadValue(f"smart boost: {by!r} is not a date")
    return kwh, f"{m.group(1)}-{m.group(2)}-{m.group(3)} {hhmm(m.group(4))}"


def smart_boost_to_wire(value: Any) -> tuple[str, str]:
    """``{"energy": kWh, "by": "YYYY-MM-DD HH:MM"}`` (charger local time) -> the
    DataTransfer data ``connectorid=1&contime=...&energy=...``."""
    kwh, when = _boost_target(value)
    return f"connectorid=1&contime={when}&energy={kwh:.1f}", ""


def boost_steps(mode: Any, window: Any = None, energy_kwh: Any = None, by: Any = None,
                now_local: Any = None) -> list[tuple[str, Any]]:
    """The steps of the THOR's solar boost, in the order the Growatt app sends them.

    Off: ``G_SolarBoost`` only. Manual: then the window ``G_PeriodTime`` (start, stop).
    Smart: then DataTransfer ``solar_target_data`` (``energy_kwh`` by ``by``, charger
    local time, which must be after ``now_local`` when given). Raises :class:`BadValue`.
    """
    boost, _ = pv_boost_to_wire(mode)
    steps: list[tuple[str, Any]] = [(PV_BOOST_KEY, boost)]
    if boost == "1&ManualBoost":
        if window is None:
            raise BadValue("manual boost: needs its window (start and stop times)")
        pv_window_to_wire(window)
        steps.append((PV_WINDOW_KEY, window))
    elif boost == "1&SmartBoost":
        target = {"energy": energy_kwh, "by": by}
        _, when = _boost_target(target)
        if now_local is not None and when <= now_local.strftime("%Y-%m-%d %H:%M"):
            raise BadValue(f"smart boost: {when} is not in the future "
                           f"(the charger's time is {now_local:%Y-%m-%d %H:%M})")
        steps.append((SMART_BOOST_TARGET, target))
    return steps


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    to_wire: Callable[..., tuple[str, str]]
    needs_limit: bool = False


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting(MAX_CURRENT_KEY, "max charging current", current_to_wire, needs_limit=True),
    Setting(LB_LIMIT_KEY, "load-balancing limit", lb_limit_to_wire),
    Setting(LB_ENABLE_KEY, "load balancing", lb_enable_to_wire),
    Setting(MODE_KEY, "charger mode", mode_to_wire),
    Setting(SCHEDULE_KEY, "auto-charge time", schedule_to_wire),
    Setting(DISPLAY_KEY, "display", display_to_wire),
    Setting(PV_MODE_KEY, "THOR solar mode", pv_mode_to_wire),
    Setting(PV_LIMIT_KEY, "THOR solar grid import", pv_limit_to_wire),
    Setting(PV_BOOST_KEY, "THOR solar boost", pv_boost_to_wire),
    Setting(PV_WINDOW_KEY, "manual boost window", pv_window_to_wire),
    Setting(OFF_PEAK_KEY, "off-peak charging", off_peak_to_wire),
    Setting(SAMPLING_KEY, "external sampling", sampling_to_wire),
    Setting(METER_ADDRESS_KEY, "power meter address", meter_address_to_wire),
    Setting(METER_TYPE_KEY, "power meter type", meter_type_to_wire),
    Setting(WARM_UP_KEY, "warm-up (continue charging when full)", warm_up_to_wire),
    Setting(TARIFF_KEY, "charger tariff", tariff_to_wire),
    Setting(RATE_KEY, "charger rate", rate_to_wire),
    Setting(SMART_BOOST_TARGET, "smart boost target", smart_boost_to_wire),
)}
DATA_TRANSFER_SETTINGS = frozenset({SMART_BOOST_TARGET})  # sent as DataTransfer


def to_wire(key: str, value: Any, limit: int) -> tuple[str, str]:
    """The wire value for a writable key, or :class:`BadValue` (also for other keys)."""
    setting = SETTINGS.get(key)
    if setting is None:
        raise BadValue(f"{key} is not a setting the pack writes "
                       f"(writable: {', '.join(sorted(SETTINGS))})")
    if setting.needs_limit:
        return setting.to_wire(value, limit)
    return setting.to_wire(value)


def same_value(key: str, a: str | None, b: str | None) -> bool:
    """Whether two wire values mean the same (the THOR reports "16.00" for "16")."""
    if a is None or b is None:
        return a == b
    if key in (MAX_CURRENT_KEY, LB_LIMIT_KEY, PV_LIMIT_KEY, RATE_KEY):
        try:
            return abs(float(a) - float(b)) < 1e-6
        except ValueError:
            return a == b
    return a.strip().lower() == b.strip().lower()


def check_outgoing(key: str, value: str, limit: int) -> None:
    """The last guard before a ChangeConfiguration leaves: refuse anything unsafe."""
    if key not in SETTINGS:
        raise BadValue(f"refusing to write {key}: not a known setting")
    if key == MAX_CURRENT_KEY:
        try:
            amps = float(value)
        except ValueError:
            raise BadValue(f"refusing {key}={value!r}: not a number") from None
        if not (MIN_CURRENT <= amps <= min(limit, MAX_CURRENT)) or amps != int(amps):
            raise BadValue(f"refusing {key}={value!r}: outside {MIN_CURRENT}..{limit} A")


# --- charger value -> helper value (for the two-way sync) ---------------------------


def helper_value(key: str, wire: str) -> Any:
    """What a helper shows for a charger value: float, bool, option label or times."""
    if key in (MAX_CURRENT_KEY, LB_LIMIT_KEY, PV_LIMIT_KEY, RATE_KEY):
        return float(wire)
    if key == TARIFF_KEY:
        m = re.search(r"price1=(-?\d+(?:\.\d+)?)", wire)
        if not m:
            raise ValueError(f"{wire!r} has no price1")
        return float(m.group(1))
    if key == PV_MODE_KEY:
        return PV_MODES.get(wire.strip(), wire)
    if key == PV_BOOST_KEY:
        return PV_BOOSTS.get(wire.strip(), wire)
    if key == SAMPLING_KEY:
        return SAMPLINGS.get(wire.strip(), wire)
    if key == METER_ADDRESS_KEY:
        return float(wire)
    if key == OFF_PEAK_KEY:
        return wire.strip().lower().endswith("enable")
    if key == PV_WINDOW_KEY:
        m = re.search(r"time1=(\d{1,2}:\d{2})-(\d{1,2}:\d{2})", wire)
        if not m:
            raise ValueError(f"{wire!r} has no time1")
        return f"{hhmm(m.group(1))}:00", f"{hhmm(m.group(2))}:00"
    if key == LB_ENABLE_KEY:
        return wire.strip() == "1"
    if key == DISPLAY_KEY:
        return wire.strip().lower() == "disable"
    if key == MODE_KEY:
        return CHARGER_MODES.get(wire.strip(), wire)
    if key == SCHEDULE_KEY:
        start, _, stop = wire.partition("-")
        return f"{hhmm(start)}:00", f"{hhmm(stop)}:00"
    return wire


# --- the Home Assistant helpers that drive the settings --------------------------------


@dataclass(frozen=True)
class Helper:
    """One control: a helper of ``domain`` named ``<domain>.<prefix>_<name>`` by default.

    ``key``: the setting it writes at once. ``reads``: the setting it shows (default
    ``key``). ``staged``: the user's value waits for an "apply" button, which writes
    the staged helpers together (the schedule's two times; the solar boost).
    """

    name: str
    domain: str
    key: str | None = None
    reads: str | None = None
    staged: bool = False

    @property
    def shows(self) -> str | None:
        return self.reads or self.key


HELPERS: tuple[Helper, ...] = (
    Helper("max_current", "input_number", MAX_CURRENT_KEY),
    Helper("load_balancing_limit", "input_number", LB_LIMIT_KEY),
    Helper("load_balancing", "input_boolean", LB_ENABLE_KEY),
    Helper("charger_mode", "input_select", MODE_KEY),
    Helper("schedule_start", "input_datetime", reads=SCHEDULE_KEY, staged=True),
    Helper("schedule_stop", "input_datetime", reads=SCHEDULE_KEY, staged=True),
    Helper("apply_schedule", "input_button"),
    Helper("start_charging", "input_button"),
    Helper("stop_charging", "input_button"),
    Helper("display", "input_boolean", DISPLAY_KEY),
    Helper("access_point_mode", "input_button"),
    # the charger's own solar mode ("PV linkage", driven by its external meter)
    Helper("pv_mode", "input_select", PV_MODE_KEY),
    Helper("pv_grid_limit", "input_number", PV_LIMIT_KEY),
    Helper("pv_boost", "input_select", reads=PV_BOOST_KEY, staged=True),
    Helper("pv_boost_start", "input_datetime", reads=PV_WINDOW_KEY, staged=True),
    Helper("pv_boost_stop", "input_datetime", reads=PV_WINDOW_KEY, staged=True),
    Helper("pv_boost_energy", "input_number", staged=True),  # the charger has no read-back
    Helper("pv_boost_by", "input_datetime", staged=True),
    Helper("apply_pv_boost", "input_button"),
    Helper("off_peak", "input_boolean", OFF_PEAK_KEY),
    Helper("external_sampling", "input_select", SAMPLING_KEY),
    Helper("meter_address", "input_number", METER_ADDRESS_KEY),
    Helper("tariff", "input_number", TARIFF_KEY),
)
HELPER_NAMES = frozenset(h.name for h in HELPERS)
DEFAULT_HELPER_PREFIX = "growatt_thor"


def helper_ids(prefix: str = DEFAULT_HELPER_PREFIX,
               overrides: dict[str, str] | None = None) -> dict[str, str]:
    """``{control name: entity id}`` with the defaults and the user's overrides."""
    ids = {h.name: f"{h.domain}.{prefix}_{h.name}" for h in HELPERS}
    ids.update(overrides or {})
    return ids


def same_helper_value(a: Any, b: Any) -> bool:
    """Whether two helper states mean the same (HA sends "16.0", standalone 16)."""
    if a is None or b is None:
        return a is b
    try:
        return abs(float(a) - float(b)) < 1e-6
    except (TypeError, ValueError):
        pass
    try:
        return as_bool(a) == as_bool(b)
    except BadValue:
        return str(a).strip() == str(b).strip()
