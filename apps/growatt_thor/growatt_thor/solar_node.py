"""The solar surplus node: charge from what the roof exports (docs/solar.md).

apps.yaml::

    growatt_thor_solar:
      module: growatt_thor.solar_node
      class: SolarSurplus
      dependencies: [growatt_thor_hub]
      grid_power_sensor: sensor.grid_power     # W, import positive (grid_sign: -1 if not)
      # or: pv_power_sensor + house_power_sensor (house without the car)
      # battery_power_sensor: sensor.battery_power   # W, charging positive
      # battery_soc_sensor: sensor.battery_soc       # %
      # phases: 1            # default: what the car draws on, else the grid meter's wiring
      #                      # (the phases helper, when it is not "auto", wins)

The decision is :class:`thor.solar.SolarController` (pure, benchmarked in
``bench/solar.py``); this node feeds it on every sensor change and every 10 s,
and sends what it decides through the charger's write queue: ``G_MaxCurrent``
for the current, RemoteStart/RemoteStop to start and stop. The mode and the
settings are helpers from the pack's HA package (``growatt_thor_solar_*``);
without them the values below are used.

Entities: ``sensor.<prefix>_solar_mode`` (attribute ``phases``: the wiring used),
``_solar_target_current`` (A), ``_solar_surplus`` (W) and ``_solar_status`` (why it
waits).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field, model_validator

from .adapter import to_float
from .node import NodeConfig, ThorNode
from .thor import controls
from .thor.arbiter import SOLAR
from .thor.solar import (
    MODES,
    SolarController,
    SolarInput,
    SolarSettings,
    EvPowerEstimate,
)


_D = SolarSettings()

# setting -> helper name
SETTING_HELPERS = {
    "enable_threshold_w": "solar_enable_threshold",
    "disable_threshold_w": "solar_disable_threshold",
    "enable_delay_s": "solar_enable_delay",
    "disable_delay_s": "solar_disable_delay",
    "min_current": "solar_min_current",
    "max_current": "solar_max_current",
    "battery_priority_soc": "solar_battery_priority_soc",
}


class SolarConfig(NodeConfig):
    grid_power_sensor: str | None = None
    grid_sign: Literal[1, -1] = 1  # -1 when the sensor shows export as positive
    pv_power_sensor: str | None = None
    house_power_sensor: str | None = None
    battery_power_sensor: str | None = None
    battery_sign: Literal[1, -1] = 1  # -1 when discharging is positive
    battery_soc_sensor: str | None = None
    phases: Literal[1, 3] | None = None
    voltage: float = Field(230.0, ge=100, le=260)
    helper_prefix: str = "growatt_thor"
    mode: Literal["off", "now", "minpv", "pv"] = "off"  # when there is no mode helper
    interval: float = Field(10.0, ge=1, le=300)
    # defaults of the settings (the helpers win when they exist); the decision's own
    # defaults, so that the node and bench/solar.py measure the same thing
    enable_threshold_w: float = Field(_D.enable_threshold_w, ge=-10000, le=10000)
    disable_threshold_w: float = Field(_D.disable_threshold_w, ge=-10000, le=10000)
    enable_delay_s: float = Field(_D.enable_delay_s, ge=0, le=3600)
    disable_delay_s: float = Field(_D.disable_delay_s, ge=0, le=3600)
    min_current: int = Field(_D.min_current, ge=6, le=32)
    max_current: int = Field(_D.max_current, ge=6, le=32)
    battery_priority_soc: float = Field(_D.battery_priority_soc, ge=0, le=100)
    disable_import_wh: float | None = Field(_D.disable_import_wh, ge=0)
    max_import_share: float = Field(_D.max_import_share, ge=0, le=1)
    budget_memory_s: float | None = Field(_D.budget_memory_s, ge=0)
    smoothing_s: float = Field(_D.smoothing_s, ge=0, le=600)
    start_headroom_wh: float | None = Field(_D.start_headroom_wh, ge=0)
    calm_enable_delay_s: float | None = Field(_D.calm_enable_delay_s, ge=0, le=3600)
    slow_disable_delay_s: float | None = Field(_D.slow_disable_delay_s, ge=0, le=3600)
    sudden_drop_w: float = Field(_D.sudden_drop_w, ge=0, le=100000)
    slow_min_decline_w: float = Field(_D.slow_min_decline_w, ge=0, le=100000)
    enable_backoff: bool = _D.enable_backoff
    keep_idle_session: bool = _D.keep_idle_session

    @model_validator(mode="after")
    def _one_source(self) -> SolarConfig:
        if self.grid_power_sensor is None and not (self.pv_power_sensor
                                                   and self.house_power_sensor):
            raise ValueError("set grid_power_sensor, or pv_power_sensor and house_power_sensor")
        return self


# the decision's settings that apps.yaml sets (mode and phases are the node's own choice)
PASSED = [k for k in SolarSettings.__dataclass_fields__
          if k in SolarConfig.model_fields and k not in ("mode", "phases")]


class SolarSurplus(ThorNode):
    Config = SolarConfig

    async def on_start(self) -> None:
        cfg: SolarConfig = self.cfg
        self.controller = SolarController(SolarSettings())
        self.ev = EvPowerEstimate()
        self.mode_helper = f"input_select.{cfg.helper_prefix}_solar_mode"
        self.phases_helper = f"input_select.{cfg.helper_prefix}_solar_phases"
        sensors = [cfg.grid_power_sensor, cfg.pv_power_sensor, cfg.house_power_sensor,
                   cfg.battery_power_sensor, cfg.battery_soc_sensor, self.mode_helper,
                   self.phases_helper]
        sensors += [f"input_number.{cfg.helper_prefix}_{h}" for h in SETTING_HELPERS.values()]
        self._unheard = list(filter(None, sensors))
        await self._listen_to_sensors({"tries": 15})
        await self.run_every(self._tick, "now+1", cfg.interval)

    async def _listen_to_sensors(self, kwargs: Any) -> None:
        """Listen to each sensor once it exists. The hub's own (the THOR's grid meter) and
        HA's may appear a moment after this node starts; the tick reads them meanwhile.
        After the last try, listen anyway: AppDaemon's warning then names a real typo."""
        tries = kwargs["tries"]
        for eid in list(self._unheard):
            if tries <= 1 or await self.entity_exists(eid, namespace=self.ha_namespace):
                await self.listen_state(self._changed, eid, namespace=self.ha_namespace)
                self._unheard.remove(eid)
        if self._unheard:
            await self.run_in(self._listen_to_sensors, 2, tries=tries - 1)

    async def on_topic(self, topic: str, payload: dict[str, Any]) -> None:
        if topic == "meter":  # a MeterValues: what the car drew, at which setpoint
            charger = self.charger or {}
            self.ev.report((payload.get("values") or {}).get("power"), self.setpoint(charger))

    async def _changed(self, *args: Any, **kwargs: Any) -> None:
        await self.decide()

    async def _tick(self, kwargs: Any) -> None:
        await self.decide()

    async def _state(self, eid: str | None) -> Any:
        return None if eid is None else await self.get_state(eid, namespace=self.ha_namespace)

    async def settings(self, charger: dict[str, Any]) -> SolarSettings:
        cfg: SolarConfig = self.cfg
        values = {k: getattr(cfg, k) for k in PASSED}
        for key, helper in SETTING_HELPERS.items():
            v = to_float(await self._state(f"input_number.{cfg.helper_prefix}_{helper}"))
            if v is not None:
                values[key] = v
        mode = await self._state(self.mode_helper)
        mode = mode if mode in MODES else cfg.mode
        chosen = await self._state(self.phases_helper)  # "auto", "1" or "3"
        phases = int(chosen) if chosen in ("1", "3") else \
            cfg.phases or self.detected_phases(charger)
        limit = self.installation_limit
        values["min_current"] = int(min(values["min_current"], limit))
        values["max_current"] = int(min(values["max_current"], limit))
        return SolarSettings(mode=mode, phases=phases, **values)

    def detected_phases(self, charger: dict[str, Any]) -> int:
        """Phases the car draws on (MeterValues while charging), else the grid meter's wiring.

        The captured THOR reports wiring 1 for its external meter while charging on
        three phases, so the charger's own per-phase currents come first.
        """
        meter = charger.get("meter") or {}
        if self.charging(charger) and (meter.get("current_l1") or 0) > 1:
            live = sum(1 for p in ("l1", "l2", "l3") if (meter.get(f"current_{p}") or 0) > 1)
            if live in (1, 3):
                self._phases_seen = live
        seen = getattr(self, "_phases_seen", None)
        if seen:
            return seen
        wiring = (charger.get("grid") or {}).get("wiring")
        return wiring if wiring in (1, 3) else 3

    async def measurements(self, charger: dict[str, Any]) -> SolarInput:
        cfg: SolarConfig = self.cfg
        setpoint = self.setpoint(charger)
        self.ev.phases, self.ev.voltage = self.controller.settings.phases, cfg.voltage
        ev = self.ev.power(setpoint, self.charging(charger))
        if cfg.grid_power_sensor:
            g = to_float(await self._state(cfg.grid_power_sensor))
            grid = None if g is None else g * cfg.grid_sign
        else:
            pv = to_float(await self._state(cfg.pv_power_sensor))
            house = to_float(await self._state(cfg.house_power_sensor))
            grid = None if pv is None or house is None else house + ev - pv
        bp = to_float(await self._state(cfg.battery_power_sensor))
        return SolarInput(grid_power_w=grid, ev_power_w=ev, setpoint_a=setpoint,
                          charging=self.charging(charger),
                          plugged=self.plugged(charger),
                          battery_power_w=None if bp is None else bp * cfg.battery_sign,
                          battery_soc=to_float(await self._state(cfg.battery_soc_sensor)))

    async def terminate(self) -> None:
        hub, cid = getattr(self, "hub", None), getattr(self, "charger_id", None)
        if hub is not None and cid is not None:
            try:
                hub.release_control(self.name, cid)
            except Exception as err:  # the hub may be gone first; then so is the claim
                self.log(f"could not release the charger: {err}", level="DEBUG")

    async def decide(self) -> None:
        charger = self.charger
        if charger is None or not charger.get("connected"):
            await self.publish("solar_status", "waiting for the charger")
            return
        self.controller.settings = await self.settings(charger)
        s = self.controller.settings
        own = str((charger.get("config") or {}).get(controls.PV_MODE_KEY, "1&0")).strip()
        if s.mode != "off" and own not in ("1&0", ""):
            # The charger's own PV mode drives it from its external meter: two controllers
            # on one charger would fight, so this node stands back and says why.
            self.hub.release_control(self.name, self.charger_id)
            self.withdraw()
            label = controls.PV_MODES.get(own, own)
            await self.publish("solar_mode", s.mode, friendly_name="THOR solar mode",
                               phases=s.phases)
            await self.publish("solar_status", f"refused: the charger's own solar mode is on "
                               f"({label}); set THOR PV mode to Off to let this node drive "
                               f"the charger, or set this node's mode to off",
                               friendly_name="THOR solar status")
            return
        if s.mode == "off":
            self.hub.release_control(self.name, self.charger_id)
        else:
            self.hub.claim_control(self.name, f"the solar node, mode {s.mode}",
                                   self.charger_id)
        inp = await self.measurements(charger)
        d = self.controller.step(inp, time.monotonic())
        await self.publish("solar_mode", s.mode, friendly_name="THOR solar mode",
                           phases=s.phases)
        await self.publish("solar_status", d.reason[:250], friendly_name="THOR solar status")
        await self.publish("solar_surplus", "unknown" if d.surplus_w is None
                           else round(d.surplus_w), unit_of_measurement="W",
                           device_class="power", friendly_name="THOR solar surplus",
                           grid_power_w=None if inp.grid_power_w is None
                           else round(inp.grid_power_w))
        await self.publish("solar_target_current", "unknown" if d.current is None
                           else d.current, unit_of_measurement="A",
                           friendly_name="THOR solar target current")
        if s.mode == "off":
            self.withdraw()
            return
        # a demand, not a write: the hub's arbiter weighs it against the other nodes'
        # (a charging plan's grid hours win) and sends what it decides through the queue
        try:
            self.demand(charge=d.wants(inp.charging),
                        current=None if d.charge is False else d.current,
                        priority=SOLAR, reason=f"solar {s.mode}: {d.reason}"[:200])
        except ValueError as err:  # e.g. the card policy: no starts from HA
            await self.publish("solar_status", f"refused: {err}"[:250],
                               friendly_name="THOR solar status")
