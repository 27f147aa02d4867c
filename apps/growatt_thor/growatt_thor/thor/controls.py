"""The THOR's writable settings: helper value <-> wire value, with validation and safety.

Pure Python. Every value that goes to the charger is made here, so this is
where the installation limit is enforced: :func:`current_to_wire` never returns
a current above the limit or below 6 A, and :func:`check_outgoing` is the last
guard right before a frame is sent.

Wire formats are the ones the Growatt app wrote (``shared/thor/README.md``):
``G_MaxCurrent`` "16", ``G_ExternalLimitPower`` "10" (kW),
``G_ExternalLimitPowerEnable`` "1"/"0", ``G_ChargerMode`` "1"/"2"/"3",
``G_AutoChargeTime`` "23:01-05:59", ``G_LCDCloseEnable`` "Enable"/"Disable".
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

# G_ChargerMode numbers, in the order of the Growatt app (to be confirmed on a charger).
CHARGER_MODES = {"1": "Plug & Charge", "2": "RFID only", "3": "HA + RFID (app)"}

LB_LIMIT_RANGE = (1.0, 100.0)  # kW at the grid connection

# Keys read back after a write with GetConfiguration by name. The THOR never
# lists G_LCDCloseEnable, so its helper keeps what was written.
READABLE_AFTER_WRITE = frozenset({MAX_CURRENT_KEY, LB_LIMIT_KEY, LB_ENABLE_KEY, SCHEDULE_KEY})


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
)}


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
    if key in (MAX_CURRENT_KEY, LB_LIMIT_KEY):
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
    if key in (MAX_CURRENT_KEY, LB_LIMIT_KEY):
        return float(wire)
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
    """One control: a helper of ``domain`` named ``<domain>.<prefix>_<name>`` by default."""

    name: str
    domain: str
    key: str | None = None  # the setting it writes directly (None: a button or a staged time)


HELPERS: tuple[Helper, ...] = (
    Helper("max_current", "input_number", MAX_CURRENT_KEY),
    Helper("load_balancing_limit", "input_number", LB_LIMIT_KEY),
    Helper("load_balancing", "input_boolean", LB_ENABLE_KEY),
    Helper("charger_mode", "input_select", MODE_KEY),
    Helper("schedule_start", "input_datetime"),
    Helper("schedule_stop", "input_datetime"),
    Helper("apply_schedule", "input_button"),
    Helper("start_charging", "input_button"),
    Helper("stop_charging", "input_button"),
    Helper("display", "input_boolean", DISPLAY_KEY),
    Helper("access_point_mode", "input_button"),
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
