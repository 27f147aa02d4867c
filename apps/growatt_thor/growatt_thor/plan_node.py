"""The charging plan node: the car ready by departure, sun first, cheapest grid hours after.

apps.yaml::

    growatt_thor_plan:
      module: growatt_thor.plan_node
      class: ChargingPlan
      dependencies: [growatt_thor_hub]
      # price_sensor: sensor.nordpool_kwh_nl_eur   # day-ahead prices (optional)
      # price_attributes: [raw_today, raw_tomorrow] # lists of {start, end, value}
      # soc_sensor: sensor.car_battery             # the car's state of charge, %
      # battery_kwh: 60                             # with soc_sensor: target in %
      # solar_forecast_sensor: sensor.solar_surplus_forecast_kwh   # expected surplus
      # solar_forecast_detail:  # or a PV forecast by the period (better, see docs/plan.md)
      #   [sensor.solcast_pv_forecast_forecast_today, sensor.solcast_pv_forecast_forecast_tomorrow]
      # solar_forecast_attribute: detailedForecast   # Solcast's; Open-Meteo's: watts
      # house_load_w: 300       # what the house takes meanwhile, less from the forecast
      # phases: 3             # full power: limit x phases x 230 V, then as measured
      # margin_minutes: 2     # full-power time booked beyond the need
      # import_price: 0.30      # without a price sensor: a flat import price (per kWh)
      # feed_in_price: 0.08     # what exported surplus earns: a number or a sensor
      # surplus_sensor: sensor.growatt_thor_solar_surplus   # W (the solar node's)
      # topup: true             # take grid energy now when it is cheaper than the plan's
      # topup_min_sun_share: 0.5   # ... and at least this share of it is sun
      # topup_hold_s: 600          # ... holding through clouds that cost no more
      # topup_hold_forecast_s: 1800   # ... that long when a forecast was counted
      # topup_min_grid_kwh: 0.5    # ... starting only for a grid part of this much
      # topup_stop_loss: 0         # ... riding a dearer cloud until it lost this much
      # sell_surplus: true      # no charging while feed-in pays more than the grid slots
      # stop_loss: 0.0125       # stop a cloud ride that lost this much against the plan
      # stop_loss_ample: 0.0125 # ... this much while the forecast sun before departure
      # ample_sun: 3            #     is at least this many times the need (null: off)

The helpers (the pack's HA package): ``input_boolean.<prefix>_plan`` (on/off),
``input_number.<prefix>_plan_energy`` (kWh the car needs) or, with ``soc_sensor``,
``input_number.<prefix>_plan_target_soc`` (%), and ``input_datetime.<prefix>_plan_departure``.

Every ``interval`` seconds and on every change it asks :func:`thor.plan.make_plan` and
states a demand to the hub's arbiter: charge at the installation limit (priority 50)
while a planned grid slot runs or the departure is too close; at the target, not
charging (priority 5: a solar node may still top up from surplus); while a kWh now costs
less than the plan's dearest grid slot (some surplus, the rest from the grid:
:class:`thor.plan.TopUp`), charge at the surplus's current, at least 6 A (priority 50);
while the feed-in now pays more than that slot costs (:meth:`thor.plan.Plan.sells_surplus`),
not charging (priority 50: the surplus is sold); with ``stop_loss``, once a session
charging with grid beside the sun has lost that much against the plan's dearest kWh
(:class:`thor.plan.LossGuard`, the grid import from the solar node's surplus sensor;
``stop_loss_ample`` while the forecast sun before departure is at least ``ample_sun``
times the need), not charging for a minute (priority 50); else nothing (the solar node, or nobody,
decides). Entities:
``sensor.<charger prefix>_plan_status`` (why; ``full_power_kw``: what the plan counts a
full-power hour as, the measured power at the limit once the car drew there,
:class:`thor.plan.FullPower`), ``_plan_need_kwh``, ``_plan_sun_kwh``,
``_plan_grid_kwh``, ``_plan_grid_start``.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, model_validator

from .adapter import NOT_A_VALUE, to_float
from .node import NodeConfig, ThorNode
from .thor.arbiter import MIN_CURRENT, PLAN
from .thor.plan import (
    FALLBACK_STEP,
    FullPower,
    MARGIN,
    LossGuard,
    Plan,
    Slot,
    Sun,
    TopUp,
    import_blend,
    make_plan,
    need_from_soc,
    offer,
    parse_forecast,
    parse_prices,
    price_at,
    sun_before,
    sun_ratio,
)

AT_TARGET = 5  # the plan's "stop" at the target: below the solar node's 10
VOLTS = 230.0


class PlanConfig(NodeConfig):
    helper_prefix: str = "growatt_thor"
    price_sensor: str | None = None
    price_attributes: list[str] = Field(default_factory=lambda: ["raw_today", "raw_tomorrow"])
    soc_sensor: str | None = None
    battery_kwh: float | None = Field(None, gt=0, le=300)
    efficiency: float = Field(0.9, gt=0.3, le=1.0)
    solar_forecast_sensor: str | None = None
    solar_forecast_detail: list[str] = Field(
        default_factory=list, description="PV forecast sensors with periods (e.g. Solcast's "
        "today and tomorrow): the sun is then valued by the hour at its feed-in")
    solar_forecast_attribute: str = "detailedForecast"
    house_load_w: float = Field(300.0, ge=0, le=50000,
                                description="subtracted from the PV forecast per period")
    solar_share: float = Field(1.0, ge=0, le=1,
                               description="of the forecast surplus, how much to count on")
    phases: int = Field(3, ge=1, le=3)
    interval: float = Field(10.0, ge=0.5, le=600)
    margin_minutes: float = Field(MARGIN.total_seconds() / 60, ge=0, le=120,
                                  description="full-power time booked beyond the need")
    import_price: float | None = Field(None, ge=-10, le=10,
                                       description="flat import price without a price sensor")
    feed_in_price: float | str = Field(0.0, description="per kWh exported: number or sensor")
    surplus_sensor: str | None = Field(None, description="W of surplus; default: the solar "
                                       "node's sensor.<prefix>_solar_surplus")
    topup: bool = True
    topup_hold_s: float = Field(TopUp.hold_s, ge=0, le=7200)
    topup_hold_forecast_s: float = Field(TopUp.hold_forecast_s, ge=0, le=7200,
                                         description="topup_hold_s when a forecast was "
                                         "counted")
    topup_min_sun_share: float = Field(0.5, ge=0, le=1)
    topup_min_grid_kwh: float = Field(0.5, ge=0, le=100)
    topup_stop_loss: float = Field(TopUp.stop_loss, ge=0, le=10,
                                   description="a top-up in a cloud dearer than the plan "
                                   "stops once it lost this much (currency); 0: at once")
    sell_surplus: bool = Field(True, description="keep the charger stopped while feed-in "
                               "pays more than the plan's dearest kWh")
    stop_loss: float | None = Field(LossGuard.max_loss, ge=0, le=10,
                                    description="stop a session once it lost this much "
                                    "(currency) charging dearer than the plan's dearest kWh "
                                    "(None: off)")
    ample_sun: float | None = Field(LossGuard.ample_sun, ge=0, le=100,
                                    description="forecast sun before departure, in needs, "
                                    "from which a ride stops after stop_loss_ample instead "
                                    "(None: off)")
    stop_loss_ample: float = Field(LossGuard.ample_loss, ge=0, le=10)

    @model_validator(mode="after")
    def _battery_with_soc(self) -> PlanConfig:
        if self.soc_sensor and not self.battery_kwh:
            raise ValueError("soc_sensor needs battery_kwh (the car's usable battery, kWh)")
        return self


def flat_slots(now: datetime, departure: datetime, price: float) -> list[Slot]:
    """A flat import price as quarter hours up to the departure (on equal prices the
    plan takes the latest)."""
    out, t = [], now
    while t < departure and len(out) < 4 * 24 * 14:
        end = min(t + FALLBACK_STEP, departure)
        out.append(Slot(t, end, price))
        t = end
    return out


def helper_ids(prefix: str) -> dict[str, str]:
    """The plan's helpers (in the pack's HA package with the default prefix)."""
    return {"on": f"input_boolean.{prefix}_plan", "energy": f"input_number.{prefix}_plan_energy",
            "target_soc": f"input_number.{prefix}_plan_target_soc",
            "departure": f"input_datetime.{prefix}_plan_departure"}


def as_datetime(value: Any, tz: Any) -> datetime | None:
    """An input_datetime's state ("2026-12-02 07:30:00") in the charger's zone."""
    if value in NOT_A_VALUE or value is None:
        return None
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt


class ChargingPlan(ThorNode):
    Config = PlanConfig

    async def on_start(self) -> None:
        self.ids = helper_ids(self.cfg.helper_prefix)
        self._key: tuple[Any, ...] | None = None  # what the user asked; a change restarts
        self._base_wh = 0.0  # energy delivered when the plan started
        self._closed_wh = 0.0  # energy of the sessions that ended since the node started
        self._tx: int | None = None
        self._tx_wh = 0.0
        self._last: str | None = None
        self._seen: tuple[Any, ...] | None = None  # status, transaction, energy last planned on
        self._bad_forecast: str | None = None  # the sensor last warned about
        self._topup = TopUp(hold_s=self.cfg.topup_hold_s,
                            hold_forecast_s=self.cfg.topup_hold_forecast_s,
                            min_sun_share=self.cfg.topup_min_sun_share,
                            min_grid_kwh=self.cfg.topup_min_grid_kwh,
                            stop_loss=self.cfg.topup_stop_loss)
        self._guard = None if self.cfg.stop_loss is None else LossGuard(
            self.cfg.stop_loss, ample_loss=self.cfg.stop_loss_ample,
            ample_sun=math.inf if self.cfg.ample_sun is None else self.cfg.ample_sun)
        self._loss_reason: str | None = None  # why the loss guard's last stop came
        self._full = FullPower(min_kw=MIN_CURRENT * VOLTS / 1000)  # 6 A on one phase
        for eid in [*self.ids.values(), self.cfg.price_sensor, self.cfg.soc_sensor,
                    self.cfg.solar_forecast_sensor]:
            if eid:
                await self.listen_state(self._changed, eid, namespace=self.ha_namespace)
                if eid == self.cfg.price_sensor:
                    for attr in self.cfg.price_attributes:
                        await self.listen_state(self._changed, eid, attribute=attr,
                                                namespace=self.ha_namespace)
        await self.run_every(self._tick, "now+1", self.cfg.interval)

    async def _changed(self, *args: Any, **kwargs: Any) -> None:
        await self.decide()

    async def _tick(self, kwargs: Any) -> None:
        await self.decide()

    async def on_update(self, charger: dict[str, Any]) -> None:
        # every change of the charger's state comes here (the write queue's too): plan
        # again only when what the plan depends on changed, else the next tick will do.
        # Every change may be a reading for the full power (thor.plan.FullPower)
        meter = charger.get("meter") or {}
        self._full.observe(charger.get("transaction_id"), self.installation_limit,
                           self.setpoint(charger), to_float(meter.get("power")))
        seen = (charger.get("status"), charger.get("transaction_id"), meter.get("energy_wh"))
        if seen != self._seen:
            self._seen = seen
            await self.decide()

    def _track_energy(self, charger: dict[str, Any]) -> None:
        tx = charger.get("transaction_id")
        wh = float((charger.get("meter") or {}).get("energy_wh") or 0.0)
        if tx != self._tx:
            self._closed_wh += self._tx_wh  # the previous session's energy stays counted
            self._tx, self._tx_wh = tx, 0.0
        if tx is not None:
            self._tx_wh = max(self._tx_wh, wh)

    def delivered_wh(self) -> float:
        return self._closed_wh + self._tx_wh

    async def _state(self, eid: str | None, **kw: Any) -> Any:
        return None if not eid else await self.get_state(eid, namespace=self.ha_namespace, **kw)

    async def _prices(self, now: datetime, departure: datetime | None
                      ) -> tuple[list | None, str]:
        sensor = self.cfg.price_sensor
        if not sensor and self.cfg.import_price is not None and departure is not None:
            return flat_slots(now, departure, self.cfg.import_price), ""
        if not sensor:
            return None, "no price sensor"
        return await self._slots_of(sensor)

    async def _slots_of(self, sensor: str) -> tuple[list | None, str]:
        """The price slots in a sensor's ``price_attributes``, or None and why not."""
        if await self._state(sensor) in NOT_A_VALUE:
            return None, f"{sensor} is unavailable"
        slots = []
        for attr in self.cfg.price_attributes:
            raw = await self._state(sensor, attribute=attr)
            if raw in (None, [], ""):
                continue  # tomorrow's prices come in the afternoon
            try:
                slots += parse_prices(raw)
            except ValueError as err:
                return None, f"{sensor}.{attr} has no usable prices ({err})"[:200]
        return (slots, "") if slots else (None, f"{sensor} has no prices")

    async def decide(self) -> None:
        charger = self.charger
        if charger is None:
            return
        self._track_energy(charger)
        on = str(await self._state(self.ids["on"])).lower() == "on"
        tz = self.hub.charger_tz
        now = (await self.get_now()).astimezone(tz)
        departure = as_datetime(await self._state(self.ids["departure"]), tz)
        if not on:
            self.withdraw()
            await self._publish(None, "off")
            return
        try:
            need, key = await self._need()
        except ValueError as err:
            self.withdraw()
            await self._publish(None, f"no plan: {err}")
            return
        key = (key, departure)
        if key != self._key:  # a new plan: count what is delivered from now on
            self._key, self._base_wh = key, self.delivered_wh()
        left = need - (self.delivered_wh() - self._base_wh) / 1000 \
            if self.cfg.soc_sensor is None else need
        limit = self.installation_limit
        nominal_kw = limit * self.cfg.phases * VOLTS / 1000
        power_kw = self._full.kw(nominal_kw)
        prices, note = await self._prices(now, departure)
        feed_in = self.cfg.feed_in_price if isinstance(self.cfg.feed_in_price, float) \
            else await self._number(self.cfg.feed_in_price)
        sun, sun_slots, feed_slots = await self._forecast(now, feed_in)
        counted = sun is not None or sun_slots is not None  # a forecast was read
        ahead = sun_before(sun_slots, now, departure) if sun_slots is not None else sun
        plan = make_plan(now, departure, left, power_kw, prices, sun or 0.0, prices_note=note,
                         margin=timedelta(minutes=self.cfg.margin_minutes),
                         sun_slots=sun_slots, feed_in=feed_slots,
                         min_power_kw=power_kw * MIN_CURRENT / limit)  # 6 A of it
        topup = await self._topup_current(plan, charger, prices, now, limit, feed_in,
                                          counted)
        loss = await self._loss(plan, charger, prices, now, feed_in,
                                own=plan.charge_now or topup is not None,
                                ratio=sun_ratio(ahead, plan.need_kwh))
        try:
            if plan.charge_now:
                self.demand(charge=True, current=limit, priority=PLAN, reason=plan.reason)
            elif topup is not None:
                plan = replace(plan, reason=f"{plan.reason}; now cheaper: charging at {topup} A "
                               f"with the surplus (top-up)")
                self.demand(charge=True, current=topup, priority=PLAN, reason=plan.reason)
            elif self.cfg.sell_surplus and plan.sells_surplus(feed_in):
                plan = replace(plan, reason=f"{plan.reason}; feed-in pays {feed_in:.3f} now, "
                               f"more than the plan's dearest kWh ({plan.marginal_price:.3f}): "
                               f"the surplus is sold, not charged")
                self.demand(charge=False, priority=PLAN, reason=plan.reason)
            elif loss is not None:
                plan = replace(plan, reason=f"{plan.reason}; {loss}")
                self.demand(charge=False, priority=PLAN, reason=plan.reason)
            elif plan.need_kwh <= 0:
                self.demand(charge=False, priority=AT_TARGET, reason=plan.reason)
            else:
                self.withdraw()
        except ValueError as err:  # e.g. the card policy: no starts from HA
            await self._publish(plan, f"refused: {err}")
            return
        await self._publish(plan, plan.reason, power_kw, ahead)

    async def _loss(self, plan: Plan, charger: dict[str, Any], prices: list | None,
                    now: datetime, feed_in: float | None, own: bool,
                    ratio: float) -> str | None:
        """Why the session is stopped for charging at a loss (``LossGuard``), or None.
        Asked on every decision; ``own``: the plan itself charges now (its grid slots or
        the top-up), which is no ride to count; ``ratio``: the forecast sun before
        departure over the need (:func:`thor.plan.sun_ratio`)."""
        if self._guard is None:
            return None
        charging = self.charging(charger) and not own
        setpoint = self.setpoint(charger)
        power = (setpoint or 0.0) * self.cfg.phases * VOLTS if charging else 0.0
        grid = to_float(await self._state(self._surplus_sensor(), attribute="grid_power_w"))
        blend = import_blend(grid, power, price_at(prices, now), feed_in)
        if not self._guard.step(time.monotonic(), plan.marginal_price, blend, charging,
                                power, ratio) or own:
            return None
        if charging and blend is not None and plan.marginal_price is not None:
            # the stop itself: said until the stop has settled, when the session (and
            # with it the price of a kWh now) is gone
            self._loss_reason = (
                f"a kWh now costs {blend:.3f} with the grid beside the sun, more than the "
                f"plan's dearest ({plan.marginal_price:.3f}): stopped after a loss of "
                f"{self._guard.allowance(ratio):g}")
        return self._loss_reason or "stopped at a loss"

    def _surplus_sensor(self) -> str:
        return self.cfg.surplus_sensor \
            or f"sensor.{self.hub.entity_prefix(self.charger_id)}_solar_surplus"

    async def _topup_current(self, plan: Plan, charger: dict[str, Any], prices: list | None,
                             now: datetime, limit: int, feed_in: float | None,
                             forecast: bool) -> int | None:
        """The current for a top-up with cheaper grid energy now, or None (``TopUp``)."""
        if not self.cfg.topup or plan.charge_now:
            self._topup.step(time.monotonic(), None, None, 0.0)
            return None
        surplus = await self._number(self._surplus_sensor())
        # the next ampere only with a forecast: without one the plan's marginal price is a grid
        # slot's, and that kWh may be one the sun would give later (docs/plan.md)
        o = offer(surplus, VOLTS * self.cfg.phases, limit, price_at(prices, now), feed_in,
                  plan.marginal_price if forecast else None)
        charging = self.charging(charger)
        amps = (self.setpoint(charger) or o.amps) if charging else o.amps
        on = self._topup.step(time.monotonic(), plan.marginal_price, o.blend, o.sun_share,
                              forecast=forecast, grid_kwh=plan.grid_kwh, charging=charging,
                              power_w=amps * VOLTS * self.cfg.phases)
        return o.amps if on else None

    async def _forecast(self, now: datetime, feed_in: float | None
                        ) -> tuple[float | None, list[Sun] | None, list[Slot] | None]:
        """The sun the plan may count on: the kWh of ``solar_forecast_sensor`` (None:
        none read), the periods of ``solar_forecast_detail`` (None: none read) and their
        feed-in prices (the feed-in sensor's by the hour, else its price now for all)."""
        sun = None
        value = await self._state(self.cfg.solar_forecast_sensor)
        try:
            if value is not None:
                sun = max(0.0, float(value)) * self.cfg.solar_share
        except (TypeError, ValueError):
            sun = None
        slots, feed = await self._forecast_slots(), None
        if slots is not None:
            if isinstance(self.cfg.feed_in_price, str):
                feed = (await self._slots_of(self.cfg.feed_in_price))[0]
            if feed is None and feed_in is not None:
                feed = [Slot(now, now + timedelta(days=7), feed_in)]
        return sun, slots, feed

    async def _forecast_slots(self) -> list[Sun] | None:
        """The surplus expected by the period from ``solar_forecast_detail``, or None
        (none configured, or none readable: the plan then counts on no sun)."""
        if not self.cfg.solar_forecast_detail:
            return None
        out: list[Sun] = []
        for sensor in self.cfg.solar_forecast_detail:
            raw = await self._state(sensor, attribute=self.cfg.solar_forecast_attribute)
            if raw in (None, [], {}, ""):
                continue  # e.g. tomorrow's forecast not there yet
            try:
                out += parse_forecast(raw, self.cfg.house_load_w, self.cfg.solar_share)
            except ValueError as err:
                if self._bad_forecast != sensor:
                    self._bad_forecast = sensor
                    self.log(f"{sensor}.{self.cfg.solar_forecast_attribute}: {err}; the plan "
                             f"counts on no sun from it", level="WARNING")
        return out or None

    async def _number(self, eid: str) -> float | None:
        return to_float(await self._state(eid))

    async def _need(self) -> tuple[float, Any]:
        """kWh still to charge, and what the user asked (a change starts a new plan)."""
        if self.cfg.soc_sensor:
            soc = await self._state(self.cfg.soc_sensor)
            target = await self._state(self.ids["target_soc"])
            try:
                return need_from_soc(float(soc), float(target), float(self.cfg.battery_kwh),
                                     self.cfg.efficiency), ("soc", target)
            except (TypeError, ValueError):
                raise ValueError(f"the car's state of charge ({self.cfg.soc_sensor} = {soc!r}) "
                                 f"or the target ({target!r}) is not a number") from None
        energy = await self._state(self.ids["energy"])
        try:
            kwh = float(energy)
        except (TypeError, ValueError):
            raise ValueError(f"{self.ids['energy']} = {energy!r} is not a number") from None
        if not 0 <= kwh <= 300:
            raise ValueError(f"{kwh:g} kWh is outside 0..300 kWh")
        return kwh, ("energy", kwh)

    async def _publish(self, plan: Plan | None, status: str,
                       power_kw: float | None = None, sun_ahead: float | None = None) -> None:
        if status != self._last:
            self._last = status
            self.log(f"plan: {status}")
        await self.publish("plan_status", status[:250], friendly_name="THOR plan",
                           charge_now=bool(plan and plan.charge_now),
                           full_power_kw=round(power_kw, 2) if power_kw else "unknown",
                           full_power_measured=self._full.measured,
                           sun_ahead_kwh="unknown" if sun_ahead is None
                           else round(sun_ahead, 2),
                           short_kwh=round(plan.short_kwh, 2) if plan else 0,
                           cost=plan.cost if plan and plan.cost is not None else "unknown",
                           slots=", ".join(f"{a:%H:%M:%S}-{b:%H:%M:%S}"
                                           for a, b in (plan.slots if plan else ())) or "none")
        for key, value, name in (("plan_need_kwh", plan and plan.need_kwh, "THOR plan need"),
                                 ("plan_sun_kwh", plan and plan.sun_kwh, "THOR plan from sun"),
                                 ("plan_grid_kwh", plan and plan.grid_kwh,
                                  "THOR plan from grid")):
            await self.publish(key, "unknown" if value is None else round(value, 2),
                               unit_of_measurement="kWh", friendly_name=name)
        start = plan.grid_start.isoformat(timespec="seconds") if plan and plan.grid_start \
            else "none"
        extra = {"device_class": "timestamp"} if start != "none" else {}
        await self.publish("plan_grid_start", start, friendly_name="THOR plan grid from",
                           **extra)
