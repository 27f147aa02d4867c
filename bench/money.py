"""Benchmark: solar charging judged by the money it saves a driver with a need and a deadline.

    .venv/bin/python -m bench.money [--per-kind 2] [--first-day 2] [--phases 1,3]
        [--scenarios ...] [--tariffs ...] [--set KEY=VALUE] [--topup KEY=VALUE]
        [--no-topup] [--no-sell] [--forecast none|noisy|perfect] [--by-period]
        [--period 30|60] [--stop-loss LOSS] [--guard KEY=VALUE] [--bound] [--markdown]
        [--json out.json]

Each scenario-day replays the synthetic days of ``bench/solar.py`` (PV and house at 10 s,
the THOR model with the pack's write queue decisions) for a car that arrives with a state
of charge and must reach a target by its departure:

- ``home``: at home all day, 08:00-18:00, 60 kWh battery, 50 -> 80 %;
- ``commuter``: plugged in 18:00 to 07:30 the next morning, 40 -> 80 %;
- ``weekly``: plugged in Saturday 09:00 to Monday 07:00 (46 h), 20 -> 80 %.

Tariffs (per kWh; hourly):
- ``flat``: import 0.30, feed-in 0.08;
- ``tou``: import 0.22 from 23:00 to 07:00 and 0.34 otherwise, feed-in 0.08;
- ``dynamic``: a day-ahead spot price, synthetic and seeded: a night plateau, a morning
  ramp, a dip at the solar noon (deeper on sunnier days: more sun in the market), the
  evening peak at 19:00, and ±0.02 hourly noise; import = spot + 0.15 (taxes, grid fee),
  feed-in = spot (so it can pay to take power at noon);
- ``nofeedin``: import 0.30, feed-in 0.

The car's energy is costed as a driver pays for it: grid energy at the import price,
surplus that went into the car at the feed-in price it did not earn. The reference is
"plug in and charge": full power from arrival until the need is met, all from the grid at
the import price (what a charger without any control costs). Savings = reference - cost; a
shortfall at departure is charged at 0.60/kWh (a public fast charger) so that not charging
is never a saving.

Controllers (each drives the THOR model through the write queue, like the pack):
- **ideal**: knows the day (surplus and prices), no write limits, whole amperes from 6 A
  (or off) in every 10-s step, meets the target at the lowest cost (an upper bound, up to
  the choice of currents each step may take: see :func:`ideal`);
- **baseline**: evcc's defaults in pv mode (30 s loop, 60 s enable, 180 s disable delay,
  0 W thresholds, 6..16 A) plus its planner: full power in the cheapest slots needed for
  what is still missing, as late as possible on equal prices, re-planned as energy comes;
- **pack**: the solar node's controller with its defaults and the charging plan node's
  rules (``thor/plan.py``: the plan without a forecast, as the node's defaults are, and its
  top-up with cheaper grid energy), decided by the arbiter (``thor/arbiter.py``) exactly
  as the hub does. ``--forecast noisy`` gives the plan a forecast of the surplus left
  before departure with a seeded daily error (log-normal, sigma 0.3); ``--by-period`` gives
  it by the half hour, as the node reads Solcast's ``detailedForecast`` (``--period 60``:
  by the hour, as ``detailedHourly`` or Open-Meteo).
- **THOR bound** (``--bound``): not a controller, a bound: what knowing the day saves with
  the THOR's 15-s write spacing and 20-s start (:func:`thor_bound`).

Per scenario-day it prints cost, savings, solar kWh in the car, grid kWh (night 0-7,
day 7-17, evening 17-24), kWh short, starts+stops and writes, and totals per scenario
and tariff, a total, and every day the pack saves less than the baseline with its cause.
The defaults are tuned on days 0-1 of each kind and checked on days 2-3 (docs/plan.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import random
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "apps" / "growatt_thor")]

from bench.solar import (  # noqa: E402
    METER,
    V,
    Thor,
    baseline_settings,
    pack_settings,
    parse_overrides,
    profiles,
    variant,
)
from growatt_thor.thor.arbiter import MIN_CURRENT, PLAN, SOLAR, Demand, arbitrate  # noqa: E402
from growatt_thor.thor.plan import (  # noqa: E402
    LossGuard,
    Slot,
    Sun,
    TopUp,
    import_blend,
    make_plan,
    offer,
    sun_before,
    sun_ratio,
)
from growatt_thor.thor.solar import (  # noqa: E402
    EvPowerEstimate,
    SolarController,
    SolarInput,
)
from growatt_thor.thor.writequeue import (  # noqa: E402
    COMMAND,
    CONFIG,
    QueueSettings,
    Request,
    WriteQueue,
)

STEP = 10.0  # s
TZ = timezone(timedelta(hours=1))
FAST_CHARGER = 0.60  # per kWh: what a shortfall costs the driver
LIMIT_A = 16
REPLAN = 60.0  # s between re-plans (the node re-plans every 10 s; the plan moves slowly)


@dataclass(frozen=True)
class Scenario:
    name: str
    arrive_h: float  # hours after the first day's midnight
    depart_h: float
    battery_kwh: float
    soc_from: float
    soc_to: float
    efficiency: float = 0.9

    @property
    def need_kwh(self) -> float:
        return (self.soc_to - self.soc_from) / 100 * self.battery_kwh / self.efficiency


SCENARIOS = {
    "home": Scenario("home", 8.0, 18.0, 60, 50, 80),
    "commuter": Scenario("commuter", 18.0, 24 + 7.5, 60, 40, 80),
    "weekly": Scenario("weekly", 9.0, 48 + 7.0, 60, 20, 80),
}
TARIFFS = ("flat", "tou", "dynamic", "nofeedin")


def spot_prices(seed: int, days: int, sunny: list[float]) -> list[float]:
    """Hourly day-ahead spot prices (per kWh) for ``days`` days; ``sunny`` 0..1 per day."""
    rng = random.Random(seed * 31 + 7)
    out = []
    for d in range(days):
        for h in range(24):
            night = 0.09
            morning = 0.05 * math.exp(-((h - 8) / 1.5) ** 2)
            evening = 0.12 * math.exp(-((h - 19) / 1.8) ** 2)
            noon = -(0.04 + 0.10 * sunny[d]) * math.exp(-((h - 13) / 2.2) ** 2)
            out.append(round(night + morning + evening + noon + rng.uniform(-0.02, 0.02), 4))
    return out


def tariff(name: str, hours: int, spot: list[float]) -> tuple[list[float], list[float]]:
    """(import, feed-in) per hour."""
    if name == "flat":
        return [0.30] * hours, [0.08] * hours
    if name == "nofeedin":
        return [0.30] * hours, [0.0] * hours
    if name == "tou":
        return [0.22 if (h % 24) >= 23 or (h % 24) < 7 else 0.34 for h in range(hours)], \
            [0.08] * hours
    if name == "dynamic":
        return [round(s + 0.15, 4) for s in spot[:hours]], list(spot[:hours])
    raise ValueError(name)


@dataclass
class Outcome:
    cost: float = 0.0
    reference: float = 0.0
    solar_kwh: float = 0.0
    grid_kwh: dict[str, float] = field(default_factory=lambda: {"night": 0.0, "day": 0.0,
                                                                 "evening": 0.0})
    short_kwh: float = 0.0
    switches: int = 0
    writes: int = 0

    @property
    def savings(self) -> float:
        return self.reference - self.cost

    def add(self, other: Outcome) -> None:
        self.cost += other.cost
        self.reference += other.reference
        self.solar_kwh += other.solar_kwh
        for k in self.grid_kwh:
            self.grid_kwh[k] += other.grid_kwh[k]
        self.short_kwh += other.short_kwh
        self.switches += other.switches
        self.writes += other.writes


def part(hour: float) -> str:
    h = hour % 24
    return "night" if h < 7 else "day" if h < 17 else "evening"


def reference_cost(sc: Scenario, imp: list[float], pmax: float) -> float:
    """Full power from arrival until the need is met, all at the import price."""
    need, t, cost = sc.need_kwh, sc.arrive_h * 3600, 0.0
    while need > 1e-9 and t < sc.depart_h * 3600:
        e = min(need, pmax * STEP / 3.6e6)
        cost += e * imp[int(t // 3600)]
        need -= e
        t += STEP
    return cost + need * FAST_CHARGER


def ideal(sc: Scenario, surplus: list[float], imp: list[float], exp: list[float],
          pmax: float, phases: int = 1) -> Outcome:
    """The cheapest way to the need knowing the whole day, in whole amperes from 6 A (or
    off) every 10-s step, with no write limits: the issue's upper bound.

    Each step's cost is convex in the current (surplus at the feed-in price up to the
    surplus, grid at the import price beyond), so for a price ``lam`` per kWh each step's
    best current is one of 0, 6, 16 and the two whole amperes around the surplus; ``lam``
    is bisected until the chosen energy reaches the need, and the dearest kWh beyond it
    are dropped.
    """
    i0, i1 = int(sc.arrive_h * 3600 / STEP), int(sc.depart_h * 3600 / STEP)
    per_amp = V * phases * STEP / 3.6e6  # kWh per ampere and step
    top = int(round(pmax / (V * phases)))
    steps = []
    for i in range(i0, i1):
        h = int(i * STEP / 3600)
        sun = surplus[i] * STEP / 3.6e6
        kink = sun / per_amp
        amps = {0, 6, top} | {min(max(int(math.floor(kink)) + d, 6), top) for d in (0, 1)}
        opts = []
        for a in sorted(amps):
            e = a * per_amp
            opts.append((e, min(e, sun) * exp[h] + max(e - sun, 0.0) * imp[h],
                         min(e, sun), i))
        steps.append(opts)

    def pick(lam: float) -> list[tuple[float, float, float, int]]:
        return [min(opts, key=lambda o: (o[1] - lam * o[0], o[0])) for opts in steps]

    need = sc.need_kwh
    lo, hi = -1.0, 5.0
    out = Outcome()
    if sum(o[0] for o in pick(hi)) < need:  # even full power all the time is short
        base, top = pick(hi), []
        left = need - sum(o[0] for o in base)
    else:
        for _ in range(40):
            mid = (lo + hi) / 2
            if sum(o[0] for o in pick(mid)) >= need:
                hi = mid
            else:
                lo = mid
        # below the price lam = lo the steps deliver less than the need, at hi at least
        # the need: every step's lo choice, then the cheapest upgrades to its hi choice
        # (per extra kWh) until the need is met. Steps tie at lam (every grid kWh at a
        # flat price), so this, not a cut of the hi choices, is the cheapest way there.
        base, top = pick(lo), pick(hi)
        left = need - sum(o[0] for o in base)
    upgrade: dict[int, tuple[tuple[float, float, float, int], float]] = {}
    for _, b, t in sorted(((t[1] - b[1]) / (t[0] - b[0]), b, t) for b, t in zip(base, top)
                          if t[0] > b[0] + 1e-12):
        if left <= 1e-9:
            break
        f = min(1.0, left / (t[0] - b[0]))
        upgrade[b[3]] = (t, f)
        left -= (t[0] - b[0]) * f
    for b in base:
        t, f = upgrade.get(b[3], (b, 0.0))
        e = b[0] + (t[0] - b[0]) * f
        sun_e = b[2] + (t[2] - b[2]) * f
        out.cost += b[1] + (t[1] - b[1]) * f
        out.solar_kwh += sun_e
        out.grid_kwh[part(b[3] * STEP / 3600)] += e - sun_e
    out.short_kwh = max(left, 0.0)
    out.cost += out.short_kwh * FAST_CHARGER
    return out


START_STEPS = 2  # a remote start: the car draws 20 s (2 steps) later (the THOR model)
HOLD_STEPS = 1  # G_MaxCurrent writes 15 s apart: after a change, the next step keeps it


def thor_bound(sc: Scenario, surplus: list[float], imp: list[float], exp: list[float],
               pmax: float, phases: int = 1, start_steps: int = START_STEPS,
               hold_steps: int = HOLD_STEPS, start_cost: float = 0.0) -> float:
    """A lower bound on the cost of any controller that drives the bench's THOR, knowing
    the whole day: whole amperes from 6 A or off, a current kept at least ``hold_steps``
    steps after each change (the queue's 15-s spacing on the 10-s grid), and no energy
    for ``start_steps`` steps after each start (the car draws 20 s after a remote start).

    The ideal (:func:`ideal`) has neither rule, so it can follow every 2-minute cloud; no
    controller on a THOR can. This is the Lagrangian dual of "the need at the lowest
    cost": for a price ``lam`` of a kWh, a dynamic programme over the charger's states
    (off, starting, on at a current that may or may not change yet) finds the schedule
    minimising cost - lam * energy. Any ``lam`` up to the shortfall price gives a lower
    bound (weak duality: a shortfall costs 0.60 a kWh, and the car takes no more than its
    need); the best of a grid of prices, refined, is returned. With ``start_steps=0,
    hold_steps=0`` it is the ideal's cost.
    """
    import numpy as np  # only the bound needs it (the test extra installs it)

    i0, i1 = int(sc.arrive_h * 3600 / STEP), int(sc.depart_h * 3600 / STEP)
    per_amp = V * phases * STEP / 3.6e6
    top = int(round(pmax / (V * phases)))
    amps = np.arange(MIN_CURRENT, top + 1, dtype=float)
    e = amps * per_amp  # kWh per step at each current
    sun = np.array(surplus[i0:i1]) * STEP / 3.6e6
    hour = (np.arange(i0, i1) * STEP / 3600).astype(int)
    taken = np.minimum(e[None, :], sun[:, None])
    cost = taken * np.array(exp)[hour][:, None] + (e[None, :] - taken) * \
        np.array(imp)[hour][:, None]  # (steps, currents)
    need = sc.need_kwh

    def dual(lams: np.ndarray) -> np.ndarray:
        n = len(lams)
        inf = np.full(n, np.inf)
        off = np.zeros(n)
        starting = [inf.copy() for _ in range(start_steps)]  # starting[j]: j steps in
        fresh = [np.full((n, len(amps)), np.inf) for _ in range(hold_steps)]  # changed
        free = np.full((n, len(amps)), np.inf)  # may change now
        for k in range(len(sun)):
            step = cost[k][None, :] - lams[:, None] * e[None, :]
            on_min = free.min(axis=1)
            for f in fresh:
                on_min = np.minimum(on_min, f.min(axis=1))
            ready = starting[-1] if starting else off  # a start done: draws this step
            change_from = free.min(axis=1)  # a new current needs a free state
            if not start_steps:
                change_from = np.minimum(change_from, off + start_cost)
            new_free = np.minimum(free, ready[:, None]) if start_steps else free
            if fresh:
                new_free = np.minimum(new_free, fresh[-1])
                fresh = [change_from[:, None] + step] + [f + step for f in fresh[:-1]]
            else:
                new_free = np.minimum(new_free, change_from[:, None])
            free = new_free + step
            if start_steps:
                starting = [off + start_cost] + starting[:-1]
            off = np.minimum(off, on_min)
        end = np.minimum(off, free.min(axis=1))
        for s in starting:
            end = np.minimum(end, s)
        for f in fresh:
            end = np.minimum(end, f.min(axis=1))
        return end + lams * need

    lo, hi = -0.5, FAST_CHARGER
    best = -np.inf
    for _ in range(3):  # a grid of prices, then twice a finer grid around the best
        lams = np.linspace(lo, hi, 33)
        vals = dual(lams)
        j = int(np.argmax(vals))
        best = max(best, float(vals[j]))
        lo, hi = lams[max(j - 1, 0)], lams[min(j + 1, len(lams) - 1)]
    return best


FORECAST_ERROR = 0.3  # sigma of the log of a day's forecast error ("noisy")


def forecast(surplus: list[float], pmax: float, depart_i: int, how: str,
             seed: int) -> list[float] | None:
    """Per 10-s step: the surplus energy (kWh, at most the charger's power) expected from
    then until departure, as a solar forecast sensor would tell the plan (None for
    "none": no forecast sensor; "perfect": the day's own; "noisy": the day's own times a
    seeded per-day factor, log-normal with sigma 0.3, like a day-ahead PV forecast's
    error)."""
    if how == "none":
        return None
    factor = forecast_factor(how, seed)
    left, acc = [0.0] * (depart_i + 1), 0.0
    for i in range(depart_i - 1, -1, -1):
        acc += min(surplus[i], pmax) * STEP / 3.6e6
        left[i] = acc * factor
    return left


def forecast_factor(how: str, seed: int) -> float:
    """The day's forecast error: 1 for "perfect", seeded log-normal for "noisy"."""
    if how == "perfect":
        return 1.0
    if how == "noisy":
        return math.exp(random.Random(seed).gauss(0.0, FORECAST_ERROR))
    raise ValueError(how)


def by_period(surplus: list[float], pmax: float, how: str, seed: int,
              minutes: int = 60) -> list[float] | None:
    """The same forecast as :func:`forecast`, as kWh per period of ``minutes`` (what
    Solcast's ``detailedForecast``, in half hours, or ``detailedHourly`` give the plan
    node, less the house)."""
    if how == "none":
        return None
    factor = forecast_factor(how, seed)
    per = int(minutes * 60 / STEP)
    return [factor * sum(min(x, pmax) for x in surplus[h * per:(h + 1) * per]) * STEP / 3.6e6
            for h in range(len(surplus) // per)]


def simulate(sc: Scenario, pv: list[float], house: list[float], imp: list[float],
             exp: list[float], phases: int, who: str,
             overrides: dict[str, object] | None = None,
             topup: dict[str, float] | None = None,
             sun_left: list[float] | None = None, sell: bool = True,
             sun_periods: list[float] | None = None,
             guard: dict[str, float] | None = None, period_min: int = 60) -> Outcome:
    """The baseline or the pack, through the THOR model and the write queue. The pack's
    plan tops up with cheaper grid energy (``thor/plan.TopUp`` with the ``topup``
    settings; None: no top-up), sells the surplus while feed-in pays more than its dearest
    grid slot (``sell``, ``Plan.sells_surplus``), and counts on ``sun_left`` (a forecast
    per step; none by default) or ``sun_periods`` (kWh per period of ``period_min``, valued
    at the feed-in)."""
    settings = baseline_settings(phases) if who == "baseline" else \
        pack_settings(phases, **(overrides or {}))
    interval = 30.0 if who == "baseline" else METER
    pmax = LIMIT_A * V * phases
    t0 = datetime(2026, 6, 1, tzinfo=TZ)  # only for the plan's clock
    slots = [Slot(t0 + timedelta(hours=h), t0 + timedelta(hours=h + 1), imp[h])
             for h in range(len(imp))]
    departure = t0 + timedelta(hours=sc.depart_h)
    sun_slots = feed_in = None
    if sun_periods is not None:
        p = timedelta(minutes=period_min)
        sun_slots = [Sun(t0 + h * p, t0 + (h + 1) * p, e) for h, e in enumerate(sun_periods)]
        feed_in = [Slot(t0 + timedelta(hours=h), t0 + timedelta(hours=h + 1), exp[h])
                   for h in range(len(exp))]
    forecast_given = sun_left is not None or sun_periods is not None
    q = WriteQueue(QueueSettings(spacing=15.0, settle=1.0, command_spacing=2.0))
    q.on_connect(-100.0)
    thor = Thor(setpoint=LIMIT_A, felt=LIMIT_A)
    ctl = SolarController(settings)
    est = EvPowerEstimate(phases=phases, voltage=V)
    out = Outcome(reference=reference_cost(sc, imp, pmax))
    delivered = 0.0
    measured = 0.0
    next_meter = next_decision = next_plan = 0.0
    next_report = math.inf
    plan_demand = Demand("plan", PLAN)
    plan = None
    top = TopUp(**topup) if who == "pack" and topup is not None else None
    guard = LossGuard(**guard) if who == "pack" and guard is not None else None
    decided = None
    ahead = 0.0  # the forecast sun before departure (kWh)
    t = sc.arrive_h * 3600
    end = sc.depart_h * 3600
    while t < end:
        i = int(t // STEP)
        hour = t / 3600
        thor.advance(t)
        ev = thor.amps(t) * V * phases
        left = sc.need_kwh - delivered
        if left <= 0:
            ev = 0.0  # the car is full: it takes nothing
        sur = max(pv[i] - house[i], 0.0)
        sun = min(ev, sur)
        e_sun, e_grid = sun * STEP / 3.6e6, (ev - sun) * STEP / 3.6e6
        delivered += e_sun + e_grid
        out.solar_kwh += e_sun
        out.grid_kwh[part(hour)] += e_grid
        out.cost += e_sun * exp[int(hour)] + e_grid * imp[int(hour)]
        if t >= next_meter:
            measured = house[i] + ev - pv[i]
            next_meter = t + METER
        if thor.session and t >= next_report:
            est.report(ev, thor.felt)
            next_report = t + 120.0
        if t >= next_plan:
            next_plan = t + REPLAN
            sun = sun_left[i] if sun_left is not None and i < len(sun_left) else 0.0
            plan = make_plan(t0 + timedelta(seconds=t), departure, left, pmax / 1000, slots,
                             sun_kwh=sun, sun_slots=sun_slots, feed_in=feed_in,
                             min_power_kw=MIN_CURRENT * V * phases / 1000)
            ahead = sun if sun_slots is None else \
                sun_before(sun_slots, t0 + timedelta(seconds=t), departure)
            plan_demand = Demand("plan", PLAN, charge=True, current=LIMIT_A) \
                if plan.charge_now else Demand("plan", 5, charge=False) \
                if plan.need_kwh <= 0 else Demand("plan", PLAN)
        if t >= next_decision:
            next_decision = t + interval
            d = ctl.step(SolarInput(grid_power_w=measured,
                                    ev_power_w=est.power(thor.setpoint, thor.session),
                                    setpoint_a=thor.setpoint, charging=thor.session), t)
            solar = Demand("solar", SOLAR, charge=d.wants(thor.session),
                           current=None if d.charge is False else d.current)
            demand = plan_demand
            if top is not None and plan is not None and not plan.charge_now:
                o = offer(d.surplus_w, V * phases, LIMIT_A, imp[int(hour)], exp[int(hour)],
                          plan.marginal_price if forecast_given else None)
                if top.step(t, plan.marginal_price, o.blend, o.sun_share,
                            forecast=forecast_given, grid_kwh=plan.grid_kwh,
                            charging=thor.session,
                            power_w=(thor.setpoint if thor.session else o.amps) * V * phases):
                    demand = Demand("plan", PLAN, charge=True, current=o.amps)
            if who == "pack" and sell and demand is plan_demand and plan is not None \
                    and plan.sells_surplus(exp[int(hour)]):
                demand = Demand("plan", PLAN, charge=False)
            if guard is not None and plan is not None:  # asked every decision, as the node
                free = demand is plan_demand and not plan.charge_now
                power = thor.setpoint * V * phases
                if guard.step(t, plan.marginal_price,
                              import_blend(measured, power, imp[int(hour)], exp[int(hour)]),
                              thor.session and free, power, sun_ratio(ahead, left)) and free:
                    demand = Demand("plan", PLAN, charge=False)
            dec = arbitrate([solar, demand], LIMIT_A)
            if dec.current is not None and dec.charge is not False:
                q.put(Request("G_MaxCurrent", CONFIG, "ChangeConfiguration", str(dec.current)),
                      t, current=str(thor.setpoint))
            if dec.charge is True and (decided is not True) and not thor.session:
                q.put(Request("transaction", COMMAND, "RemoteStartTransaction", "start"), t)
            elif dec.charge is False and decided is not False and thor.session:
                q.put(Request("transaction", COMMAND, "RemoteStopTransaction", "stop"), t)
            decided = dec.charge
        if thor.serve(q, t, out, within=STEP - 1e-6) == "start":
            next_report = t + 1.0
        t += STEP
    out.short_kwh = max(sc.need_kwh - delivered, 0.0)
    out.cost += out.short_kwh * FAST_CHARGER
    return out


@functools.lru_cache
def clear_day_energy(phases: int) -> float:
    return sum(profiles(variant("clear", 0), phases)[0])


def days_for(kind: str, k: int, sc: Scenario, phases: int) -> tuple[list[float], list[float],
                                                                      list[float]]:
    """PV and house for as many days as the scenario spans, and each day's sunniness."""
    n = int(math.ceil(sc.depart_h / 24))
    pv, house, sunny = [], [], []
    for d in range(n):
        p, h = profiles(variant(kind, k * 3 + d), phases)
        pv += p
        house += h
        sunny.append(min(1.0, sum(p) / max(clear_day_energy(phases), 1.0)))
    return pv, house, sunny


def settings_of(cls: type, items: list[str], flag: str,
                ap: argparse.ArgumentParser) -> dict[str, float]:
    """``KEY=NUMBER`` items as settings of the dataclass ``cls`` (its public fields)."""
    fields = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")} - {"on"}
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or key not in fields:
                raise ValueError
            out[key] = float(value)
        except ValueError:
            ap.error(f"{flag} {item!r}: expected KEY=NUMBER with KEY one of "
                     f"{', '.join(sorted(fields))}")
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="clear,cloudy,broken,winter")
    ap.add_argument("--per-kind", type=int, default=2)
    ap.add_argument("--phases", default="1,3")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--tariffs", default=",".join(TARIFFS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a solar node setting for the pack, as in apps.yaml (bench/solar.py)")
    ap.add_argument("--first-day", type=int, default=0,
                    help="the first seed of each kind (tuning days 0-1, held out from 2)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--forecast", choices=("none", "noisy", "perfect"), default="none",
                    help="the pack's plan counts on a solar forecast (default: none)")
    ap.add_argument("--by-period", "--by-hour", dest="by_period", action="store_true",
                    help="the forecast by the period, each period's sun valued at its "
                         "feed-in (default: the kWh left before departure)")
    ap.add_argument("--period", type=int, choices=(30, 60), default=30, metavar="MIN",
                    help="with --by-period: the forecast's period in minutes (default "
                         "%(default)s, as Solcast's detailedForecast; 60: detailedHourly)")
    ap.add_argument("--no-sell", action="store_true",
                    help="the pack's plan never sells the surplus (Plan.sells_surplus)")
    ap.add_argument("--stop-loss", type=lambda v: None if v == "off" else float(v),
                    default=LossGuard.max_loss, metavar="LOSS|off",
                    help="the plan stops a ride that lost LOSS (currency) against its "
                         "dearest kWh (thor.plan.LossGuard; the node's stop_loss, default "
                         "%(default)s)")
    ap.add_argument("--no-topup", action="store_true",
                    help="the pack's plan without its top-up with cheaper grid energy")
    ap.add_argument("--bound", action="store_true",
                    help="also the THOR bound: what knowing the day saves on a THOR, with its "
                         "write spacing and start delay (thor_bound; needs numpy)")
    ap.add_argument("--markdown", action="store_true",
                    help="also print the groups as the table in docs/plan.md")
    ap.add_argument("--topup", action="append", default=[], metavar="KEY=VALUE",
                    help="a thor.plan.TopUp setting (hold_s, margin, min_sun_share, "
                         "min_grid_kwh, stop_loss)")
    ap.add_argument("--guard", action="append", default=[], metavar="KEY=VALUE",
                    help="a thor.plan.LossGuard setting (ample_sun, ample_loss, settle_s; "
                         "max_loss is --stop-loss)")
    a = ap.parse_args(argv)
    topup = settings_of(TopUp, a.topup, "--topup", ap)
    guard = None if a.stop_loss is None else \
        {**settings_of(LossGuard, a.guard, "--guard", ap), "max_loss": a.stop_loss}
    try:
        overrides = parse_overrides(a.set)
    except ValueError as err:
        ap.error(str(err))
    rows: list[dict] = []
    grand = {w: Outcome() for w in ("ideal", "baseline", "pack")}
    losses: list[str] = []
    n_days = n_at_least = n_missed = groups = groups_above = 0
    for phases in (int(x) for x in a.phases.split(",")):
        pmax = LIMIT_A * V * phases
        for name in a.scenarios.split(","):
            sc = SCENARIOS[name]
            for tname in a.tariffs.split(","):
                totals = {w: Outcome() for w in ("ideal", "baseline", "pack")}
                bound = 0.0
                days = at_least = met_miss = 0
                for kind in a.kinds.split(","):
                    for k in range(a.first_day, a.first_day + a.per_kind):
                        pv, house, sunny = days_for(kind, k, sc, phases)
                        imp, exp = tariff(tname, len(pv) // 360, spot_prices(
                            k * 13 + len(kind), len(pv) // 8640, sunny))
                        surplus = [max(p - h, 0.0) for p, h in zip(pv, house)]
                        best = ideal(sc, surplus, imp, exp, pmax, phases)
                        best.reference = reference_cost(sc, imp, pmax)
                        seed = k * 101 + len(kind)
                        sun_left = None if a.by_period else forecast(
                            surplus, pmax, int(sc.depart_h * 3600 / STEP), a.forecast, seed)
                        periods = by_period(surplus, pmax, a.forecast, seed, a.period) \
                            if a.by_period else None
                        res = {"ideal": best,
                               "baseline": simulate(sc, pv, house, imp, exp, phases, "baseline"),
                               "pack": simulate(sc, pv, house, imp, exp, phases, "pack",
                                                overrides,
                                                topup=None if a.no_topup else topup,
                                                sun_left=sun_left, sell=not a.no_sell,
                                                sun_periods=periods, guard=guard,
                                                period_min=a.period)}
                        days += 1
                        day = variant(kind, k)
                        if a.bound:
                            b = best.reference - thor_bound(sc, surplus, imp, exp, pmax, phases)
                            bound += b
                            rows.append({"phases": phases, "scenario": name, "tariff": tname,
                                         "day": day, "controller": "bound",
                                         "savings": round(b, 3)})
                        if saves_at_least(res["pack"].savings, res["baseline"].savings):
                            at_least += 1
                        else:
                            losses.append(f"{phases}ph {name} {tname} {day}: "
                                          + why_lost(res["pack"], res["baseline"],
                                                     a.forecast != "none"))
                        met_miss += best.short_kwh < 0.01 and res["pack"].short_kwh >= 0.01
                        for w, r in res.items():
                            totals[w].add(r)
                            rows.append({"phases": phases, "scenario": name, "tariff": tname,
                                         "day": day, "controller": w,
                                         **asdict(r), "savings": round(r.savings, 3)})
                share = 100 * totals["pack"].savings / max(totals["ideal"].savings, 1e-9)
                base = 100 * totals["baseline"].savings / max(totals["ideal"].savings, 1e-9)
                bound_share = 100 * bound / max(totals["ideal"].savings, 1e-9)
                print(f"{phases}ph {name:8s} {tname:8s} " + " | ".join(
                    f"{w}: save {o.savings:6.2f} sun {o.solar_kwh:5.1f} short "
                    f"{o.short_kwh:4.1f} sw {o.switches:3d} wr {o.writes:4d}"
                    for w, o in totals.items())
                    + f" | of ideal: pack {share:5.1f} %, baseline {base:5.1f} % | pack >= "
                      f"baseline on {at_least}/{days} days | target missed {met_miss}"
                    + (f" | THOR bound {bound:6.2f} ({bound_share:5.1f} % of ideal)"
                       if a.bound else ""))
                for w in grand:
                    grand[w].add(totals[w])
                n_days += days
                n_at_least += at_least
                n_missed += met_miss
                groups += 1
                groups_above += totals["pack"].savings > totals["baseline"].savings
    ideal_sum = max(grand["ideal"].savings, 1e-9)
    if a.bound:
        total_bound = sum(r["savings"] for r in rows if r["controller"] == "bound")
        print(f"THOR bound (knowing the day, on a THOR): {total_bound:.2f} "
              f"({100 * total_bound / ideal_sum:.1f} % of the ideal)")
    print(f"Total: ideal {grand['ideal'].savings:.2f}, baseline {grand['baseline'].savings:.2f} "
          f"({100 * grand['baseline'].savings / ideal_sum:.1f} %), pack "
          f"{grand['pack'].savings:.2f} ({100 * grand['pack'].savings / ideal_sum:.1f} %); "
          f"pack at least the baseline on {n_at_least}/{n_days} scenario-days, above it in "
          f"{groups_above}/{groups} scenario-tariff groups; starts+stops pack/baseline "
          f"{grand['pack'].switches}/{grand['baseline'].switches}; targets the ideal met "
          f"and the pack missed: {n_missed}")
    if losses:
        print("Days the pack saves less than the baseline:")
        for line in losses:
            print("  " + line)
    if a.markdown:
        print(markdown(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return rows


def markdown(rows: list[dict]) -> str:
    """The per-group table of docs/plan.md from the rows ``main`` returns."""
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in rows:
        groups.setdefault((r["phases"], r["scenario"], r["tariff"]), {}).setdefault(
            r["controller"], []).append(r)
    bound = any(r["controller"] == "bound" for r in rows)
    out = ["| phases | scenario | tariff | ideal saves | "
           + ("THOR bound (of ideal) | " if bound else "") + "baseline saves (of ideal) | pack "
           "saves (of ideal) | pack >= baseline, days | starts+stops pack / baseline | "
           "pack short, kWh |", "|---|---|---|---|---|---|---|---|---|" + "---|" * bound]
    for (phases, scenario, tname), by in groups.items():
        save = {w: sum(r["savings"] for r in rs) for w, rs in by.items()}
        days = sum(saves_at_least(p["savings"], b["savings"])
                   for p, b in zip(by["pack"], by["baseline"]))
        sw = {w: sum(r["switches"] for r in by[w]) for w in ("pack", "baseline")}
        short = sum(r["short_kwh"] for r in by["pack"])
        pct = {w: 100 * v / max(save["ideal"], 1e-9) for w, v in save.items()}
        out.append(f"| {phases} | {scenario} | {tname} | {save['ideal']:.2f} | "
                   + (f"{save['bound']:.2f} ({pct['bound']:.0f} %) | " if bound else "")
                   + f"{save['baseline']:.2f} ({pct['baseline']:.0f} %) | {save['pack']:.2f} "
                   f"({pct['pack']:.0f} %) | {days}/{len(by['pack'])} | {sw['pack']} / "
                   f"{sw['baseline']} | {short:.2f} |")
    return "\n".join(out)


def saves_at_least(pack_savings: float, base_savings: float) -> bool:
    """A day the pack saved at least what the baseline did (to half a cent)."""
    return pack_savings >= base_savings - 0.005


def why_lost(pack: Outcome, base: Outcome, forecast: bool = False) -> str:
    """A day the pack saved less than the baseline, and where the difference came from."""
    diff = pack.savings - base.savings
    grid_p, grid_b = sum(pack.grid_kwh.values()), sum(base.grid_kwh.values())
    grids = ("grid " + "/".join(f"{v:.1f}" for v in pack.grid_kwh.values()) + " against "
             + "/".join(f"{v:.1f}" for v in base.grid_kwh.values()) + " kWh night/day/evening")
    if pack.short_kwh > base.short_kwh + 0.01:
        why = f"{pack.short_kwh - base.short_kwh:.2f} kWh short at departure"
    elif diff > -0.02:
        why = "a start or a cloud a few steps apart (under 0.02)"
    elif pack.solar_kwh < base.solar_kwh - 0.05 and grid_p > grid_b:
        why = (f"{grid_p - grid_b:.1f} kWh more from the grid, "
               f"{base.solar_kwh - pack.solar_kwh:.1f}"
               f" kWh less sun: grid energy taken (a top-up or a cloud ridden) that later sun "
               f"would have given; "
               + ("the day's forecast was off" if forecast
                  else "the plan has no forecast"))
    else:
        why = ("the same energy at dearer hours: surplus taken while feed-in paid more, or "
               "grid at a dearer hour")
    return f"{diff:+.2f}: {why} ({grids})"



if __name__ == "__main__":
    main()
