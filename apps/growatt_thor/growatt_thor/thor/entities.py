"""The charger's Home Assistant entities, described as one table.

Adding a sensor is one row in :data:`ENTITIES`. :func:`render` turns a
:class:`ChargerState` into ``{entity_id: (state, attributes)}`` with every state
as a string: through Home Assistant, AppDaemon drops ``0`` and ``False`` from
request bodies, and strings survive (see ``shared/appdaemon-notes.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from .state import ChargerState

DEFAULT_PREFIX = "growatt_thor_ev_charger"
DEFAULT_NAME = "Growatt THOR EV charger"


@dataclass(frozen=True)
class EntityDescription:
    """One entity: ``<domain>.<prefix>_<key>``."""

    key: str
    name: str
    value: Callable[[ChargerState], Any]
    domain: str = "sensor"
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None
    precision: int | None = None
    diagnostic: bool = False
    attributes: Callable[[ChargerState], dict[str, Any]] | None = None


def _meter(key: str, scale: float = 1.0) -> Callable[[ChargerState], float | None]:
    def read(s: ChargerState) -> float | None:
        v = s.meter.get(key)
        return None if v is None else v * scale

    return read


def _config(key: str) -> Callable[[ChargerState], str | None]:
    return lambda s: s.config.get(key)


def _grid(attr: str, index: int | None = None) -> Callable[[ChargerState], Any]:
    def read(s: ChargerState) -> Any:
        if s.grid is None:
            return None
        v = getattr(s.grid, attr)
        return v if index is None else v[index]

    return read


def _phase_rows() -> list[EntityDescription]:
    rows = []
    for i, p in enumerate(("l1", "l2", "l3")):
        n = p.upper()
        rows += [
            EntityDescription(f"current_{p}", f"Current {n}", _meter(f"current_{p}"), unit="A",
                              device_class="current", state_class="measurement", precision=2),
            EntityDescription(f"voltage_{p}", f"Voltage {n}", _meter(f"voltage_{p}"), unit="V",
                              device_class="voltage", state_class="measurement", precision=1),
            EntityDescription(f"power_{p}", f"Power {n}", _meter(f"power_{p}"), unit="W",
                              device_class="power", state_class="measurement", precision=0),
            EntityDescription(f"grid_current_{p}", f"Grid current {n}", _grid("current", i),
                              unit="A", device_class="current", state_class="measurement",
                              precision=2),
            EntityDescription(f"grid_voltage_{p}", f"Grid voltage {n}", _grid("voltage", i),
                              unit="V", device_class="voltage", state_class="measurement",
                              precision=1),
        ]
    return rows


def _queue_attributes(s: ChargerState) -> dict[str, Any]:
    q = s.queue
    last = q.get("last_result") or {}
    return {
        "next_write": q.get("next_write") or "none",
        "next": q.get("next") or "none",
        "pending": ", ".join(q.get("pending") or []) or "none",
        "in_flight": q.get("in_flight") or "none",
        "last_result": (f"{last.get('action')} {last.get('key') or ''}={last.get('value')}: "
                        f"{last.get('status')}" if last else "none"),
        "last_message": last.get("message") or "none",
        # the last setting of several steps (the solar boost): applied, failed, or
        # partly applied (which step), never silently half-done
        "last_apply": q.get("last_apply") or "none",
        "driven_by": q.get("driven_by") or "none",
        # the arbiter's decision among the nodes' demands (thor/arbiter.py)
        "decision": q.get("decision") or "none",
        "demands": q.get("demands") or "none",
    }


ENTITIES: tuple[EntityDescription, ...] = (
    EntityDescription("status", "Status", lambda s: s.status, icon="mdi:ev-station",
                      attributes=lambda s: {"error_code": s.error_code, "info": s.info}),
    EntityDescription("connected", "Connected", lambda s: s.connected, domain="binary_sensor",
                      device_class="connectivity", diagnostic=True),
    EntityDescription("fault", "Fault", lambda s: s.fault_kind(), icon="mdi:alert-octagon",
                      attributes=lambda s: {k: v for k, v in (s.fault or {}).items()
                                            if k != "kind" and v}),
    EntityDescription("power", "Power", _meter("power"), unit="W", device_class="power",
                      state_class="measurement", precision=0),
    EntityDescription("energy", "Session energy", _meter("energy_wh", 0.001), unit="kWh",
                      device_class="energy", state_class="total_increasing", precision=3),
    EntityDescription("temperature", "Temperature", _meter("temperature"), unit="°C",
                      device_class="temperature", state_class="measurement", precision=1),
    EntityDescription("transaction_id", "Transaction ID", lambda s: s.transaction_id,
                      icon="mdi:identifier"),
    *_phase_rows(),
    EntityDescription("grid_power", "Grid power", _grid("power_w"), unit="W",
                      device_class="power", state_class="measurement", precision=0),
    EntityDescription("grid_wiring", "Grid meter wiring",
                      lambda s: None if s.grid is None else f"{s.grid.wiring}-phase",
                      icon="mdi:transmission-tower", diagnostic=True,
                      attributes=lambda s: {"meter_present": "yes" if s.grid and s.grid.used
                                            else "no"}),
    EntityDescription("max_current", "Max current (charger)", _config("G_MaxCurrent"), unit="A",
                      device_class="current", icon="mdi:current-ac", diagnostic=True),
    EntityDescription("charger_mode", "Charger mode (charger)", _config("G_ChargerMode"),
                      icon="mdi:cog", diagnostic=True),
    EntityDescription("auto_charge_time", "Auto-charge time (charger)",
                      _config("G_AutoChargeTime"), icon="mdi:clock-outline", diagnostic=True),
    EntityDescription("external_limit_power", "Load-balancing limit (charger)",
                      _config("G_ExternalLimitPower"), unit="kW", icon="mdi:transmission-tower",
                      diagnostic=True),
    EntityDescription("write_queue", "Write queue", lambda s: s.queue.get("length", 0),
                      icon="mdi:tray-full", diagnostic=True, attributes=_queue_attributes),
    EntityDescription("vendor", "Vendor", lambda s: s.vendor or None, icon="mdi:factory",
                      diagnostic=True),
    EntityDescription("model", "Model", lambda s: s.model or None, icon="mdi:ev-station",
                      diagnostic=True),
    EntityDescription("firmware", "Firmware", lambda s: s.firmware or None, icon="mdi:chip",
                      diagnostic=True),
    EntityDescription("serial", "Serial number", lambda s: s.serial or None,
                      icon="mdi:barcode", diagnostic=True),
)


def entity_id(desc: EntityDescription, prefix: str) -> str:
    return f"{desc.domain}.{prefix}_{desc.key}"


def format_state(desc: EntityDescription, value: Any) -> str:
    """The entity state as a string, the way HA shows it."""
    if value is None:
        return "unknown"
    if desc.domain == "binary_sensor":
        return "on" if value else "off"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and desc.precision is not None:
        if desc.precision == 0:
            return str(int(round(value)))
        return f"{value:.{desc.precision}f}"
    return str(value)


def render(
    state: ChargerState, prefix: str = DEFAULT_PREFIX, name: str = DEFAULT_NAME
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every entity of one charger: ``{entity_id: (state, attributes)}``.

    Attribute values are strings or non-empty containers only (never ``0`` or
    ``False``, which AppDaemon's HA plugin would drop).
    """
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for desc in ENTITIES:
        attrs: dict[str, Any] = {"friendly_name": f"{name} {desc.name}",
                                 "charger_id": state.charger_id}
        if desc.unit:
            attrs["unit_of_measurement"] = desc.unit
        if desc.device_class:
            attrs["device_class"] = desc.device_class
        if desc.state_class:
            attrs["state_class"] = desc.state_class
        if desc.icon:
            attrs["icon"] = desc.icon
        if desc.diagnostic:
            attrs["entity_category"] = "diagnostic"
        if desc.attributes:
            # text, except structured data (a dict: the last multi-step setting)
            attrs.update({k: v if isinstance(v, dict) else str(v)
                          for k, v in desc.attributes(state).items()})
        out[entity_id(desc, prefix)] = (format_state(desc, desc.value(state)), attrs)
    return out
