"""The charging plan: what the car needs by when, from the sun first, the grid for the rest.

Pure Python, with the time passed in. The plan node (``growatt_thor.plan_node``) asks
:func:`make_plan` again on every change and every few seconds; what was delivered in
the meantime (by the sun or the grid) is simply no longer needed, so surplus used
before the grid hours makes the grid part smaller.

Rules (docs/plan.md):
- ``need_kwh`` left, ``sun_kwh`` of it expected from surplus before departure (a
  forecast; 0 without one). The grid part is ``need - sun``, at the charger's full
  power ``power_kw`` (the installation limit).
- With prices (slots of any length, e.g. a day-ahead sensor's hours), the grid part
  goes into the cheapest slots between now and departure; equal prices: the later
  slot (the sun may still come). Time without a price counts as dearer than any price.
- A slot's room for the grid part is its full-power energy less what the forecast sun
  (or the grid beside it at the minimum current) is counted on to give in it: the car
  takes that sun at full power too. Counted twice, the night's last slot ran at full power
  through the dawn's sun, and the car reached the departure's dearer hour with that sun's
  energy still to come.
- The last slot the grid part needs is booked only for the part of it that is needed (its
  end, or its start when only the booked slot before it joins on), as evcc's planner does:
  the grid part then runs without a stop at the hour.
- Without prices (none given, or unusable), as late as possible before departure, and
  the reason says so.
- The grid slots hold ``margin`` (2 minutes by default) of full power more than the grid
  part, for the THOR's start-up and the queue's spacing. ``power_kw`` is what the car
  really takes at the limit once it has drawn there (:class:`FullPower`), so the margin
  need not cover a grid below 230 V or a car that takes fewer phases.
- When even charging at full power from now on can't deliver the need, it says so at
  once (``short_kwh``) and charges now.
- The forecast sun is never waited for when only full power from now on (plus the
  margin) can still deliver the whole need: the plan then charges now.
- Surplus now is sold rather than charged when its feed-in pays more than the plan's
  dearest kWh costs (:meth:`Plan.sells_surplus`).
- With a forecast by the period (``sun_slots``, :func:`parse_forecast`) each period's sun
  costs its feed-in (what exporting it would earn) and competes with the grid slots: the
  plan counts only on the cheapest sun, so on a dynamic tariff it waits for the noon dip
  and sells the morning's sun.
- With such a forecast and the charger's minimum power (``min_power_kw``), a period whose
  sun is below the minimum counts as the minimum power at the blend of its feed-in and
  import prices: a grey day's need goes first to its sunniest hours at 6 A (the top-up
  charges them), before the last stretch at full power. Not when that blend is less than
  ``PRICE_MARGIN`` below the import price (a dawn hour's few Wh): the top-up would not
  take it, and the plan would wait for energy that nobody charges.
- In the last stretch (from when only full power still meets the need) such thin sun reaches
  the car only beside the grid at full power, and costs that blend
  (:func:`blend_price` at full power): on a cloudy morning the night's cheaper grid charges
  it, rather than the day's dearer one beside a sun too weak to carry the car.
- The plan only asks for the grid hours; outside them it has no opinion and the solar
  node (or nobody) decides (see ``thor/arbiter.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .arbiter import clamp

FALLBACK_STEP = timedelta(minutes=15)  # how time without prices is cut into slots
# The grid part is booked with this much full-power time to spare: a start takes the THOR
# about 20 s before the car draws, a new current 5 s, and the queue spaces writes 15 s.
# (10 minutes until 2026-12-02, when it also covered a power below the nominal, which
# FullPower now measures: each minute of it finished the morning's charge a minute before
# the departure, in the morning sun. bench/money.py, docs/plan.md.)
MARGIN = timedelta(minutes=2)
# A kWh now must be this much cheaper than the plan's to be worth a start (the top-up), and
# this much dearer to be a loss (the loss guard, selling the surplus); per kWh.
PRICE_MARGIN = 0.01


def kwh(x: float) -> str:
    """An energy for a reason text: 0.1 kWh steps, finer below 1 kWh."""
    return f"{x:.1f}" if abs(x) >= 1 else f"{x:.2f}"


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    price: float | None  # None: no price known for this time


@dataclass(frozen=True)
class Plan:
    charge_now: bool  # the grid part runs now: charge at full power
    need_kwh: float
    sun_kwh: float  # of the need, expected from surplus
    grid_kwh: float  # of the need, planned from the grid
    short_kwh: float  # what can't be delivered by departure even at full power
    grid_start: datetime | None  # when the first planned grid slot starts
    slots: tuple[tuple[datetime, datetime], ...] = field(default=())  # planned grid slots
    cost: float | None = None  # of the grid part, at the slots' prices (None: unknown)
    reason: str = ""
    # the dearest price the plan pays for a kWh (its last grid slot, or with a forecast by
    # the period the dearest sun's feed-in it counts on): energy now at a lower price is
    # energy the plan would otherwise buy dearer (None: no grid part or no prices)
    marginal_price: float | None = None

    def sells_surplus(self, feed_in_price: float | None, margin: float = PRICE_MARGIN) -> bool:
        """Whether surplus now earns more exported than it saves in the car.

        A kWh of sun in the car now is a kWh the plan no longer buys at its dearest
        (``marginal_price``); exported, it earns ``feed_in_price``. On a dynamic tariff the
        feed-in of a morning hour can pay more than the cheapest grid hours at noon or at
        night: then the sun is sold and the plan's grid slots charge the car (docs/plan.md).
        Never while the grid part runs, without prices or a grid part, or within
        ``margin`` per kWh.
        """
        return (not self.charge_now and self.marginal_price is not None
                and feed_in_price is not None
                and feed_in_price > self.marginal_price + margin)


class FullPower:
    """The plan's full power: what the car takes at the installation limit, as measured.

    Until the car has drawn at the limit it is the nominal power (limit x phases x
    230 V). Then it is the highest power measured at the limit in this session, never
    above the nominal: a THOR's grid at 223 V gives 3 % less (five minutes late after
    three hours at full power), and a car that charges on one phase of a 3-phase THOR
    takes a third. The highest, because after a start the car ramps up, and the reading
    just after the limit was written may still be one at the current before: the next
    reading at the limit replaces it. A reading below ``min_kw`` (the THOR's first after a
    start, 0 W) is no reading. A new session (another car, perhaps) or a new limit starts
    again from the nominal.
    """

    def __init__(self, min_kw: float) -> None:
        self.min_kw = min_kw
        self._key: tuple[object, float] | None = None  # session, limit
        self._kw: float | None = None

    def observe(self, session: object, limit_a: float, offered_a: float | None,
                power_w: float | None) -> None:
        """What the charger shows: the ``session`` (None: none), the limit, the current
        the THOR was told to offer and the power it measured (W)."""
        key = (session, limit_a)
        if key != self._key:
            self._key, self._kw = key, None
        if session is None or offered_a is None or offered_a < limit_a or power_w is None \
                or not math.isfinite(power_w) or power_w / 1000 < self.min_kw:
            return
        self._kw = max(self._kw or 0.0, power_w / 1000)

    def kw(self, nominal_kw: float) -> float:
        """The full power to plan with."""
        return nominal_kw if self._kw is None else min(nominal_kw, self._kw)

    @property
    def measured(self) -> bool:
        return self._kw is not None


def _share(a: datetime, b: datetime, slot: Slot) -> float:
    """The part of [a, b) that falls into ``slot``."""
    return max(0.0, (min(b, slot.end) - max(a, slot.start)) / (b - a))


def _window_slots(prices: list[Slot] | None, now: datetime, end: datetime) -> list[Slot]:
    """Slots covering [now, end): the priced ones clipped to it, the gaps without price."""
    out: list[Slot] = []
    for s in sorted(prices or [], key=lambda s: s.start):
        a, b = max(s.start, now), min(s.end, end)
        if b > a and s.price is not None and math.isfinite(s.price):
            if out and a < out[-1].end:  # overlapping data: keep the first
                a = out[-1].end
                if b <= a:
                    continue
            out.append(Slot(a, b, s.price))
    gaps: list[Slot] = []
    t = now
    for s in out + [Slot(end, end, None)]:
        while t < s.start:
            step = min(t + FALLBACK_STEP, s.start)
            gaps.append(Slot(t, step, None))
            t = step
        t = max(t, s.end)
    return sorted(out + gaps, key=lambda s: s.start)


@dataclass(frozen=True)
class Sun:
    """Surplus expected in [start, end) (kWh), from an hourly or half-hourly forecast."""
    start: datetime
    end: datetime
    kwh: float


@dataclass(frozen=True)
class SunSplit:
    """What :func:`_sun_split` makes of a forecast by the period."""
    sun_kwh: float = 0.0  # of the need, from the sun
    blend_kwh: float = 0.0  # of the need, from the grid at the minimum current with sun
    blend_cost: float = 0.0  # of that grid energy, at the import prices
    price: float | None = None  # the dearest kWh counted on that is not a grid slot's
    covered: tuple[tuple[datetime, datetime, float], ...] = ()  # kWh counted per period


def _sun_split(sun: list[Sun], feed_in: list[Slot] | None, slots: list[Slot],
               now: datetime, departure: datetime, need: float,
               power_kw: float, min_power_kw: float | None = None,
               blend_until: datetime | None = None) -> SunSplit:
    """How much of the need the forecast sun should give, and the dearest price of it.

    Each piece of sun costs its hour's feed-in (what exporting it would earn; unknown: it
    comes first), each grid slot its import price for the charger's power less the sun
    in it; the need takes the cheapest of them. Sun that pays more exported than the
    grid or other sun would cost is not counted on (it is sold, :meth:`Plan.sells_surplus`).

    Sun below the charger's minimum power (``min_power_kw``, 6 A) reaches the car only
    with grid energy beside it: such a period is one piece of the minimum power at the
    blend of the two prices (:func:`blend_price`). The need then takes the sunniest
    hours of a grey day at the minimum current before any grid slot at full power, as
    the ideal does, and the plan's dearest kWh is that blend: a top-up waits for them.
    Only before ``blend_until`` (the plan's last stretch at full power): later, the
    grid beside the sun would come at full power, at that hour's price, and a kWh of
    such sun costs the blend at full power.
    """
    pieces: list[tuple[datetime, datetime, float, float]] = []  # start, end, sun, covered
    # price, kind (0 sun, 1 sun with grid at the minimum power, 2 grid), -start, kWh, the
    # sun's part of it, the import price, start, end
    units: list[tuple[float, int, float, float, float, float, datetime, datetime]] = []
    for s in sorted(sun, key=lambda s: s.start):
        a, b = max(s.start, now), min(s.end, departure)
        if b <= a or s.end <= s.start or not math.isfinite(s.kwh) or s.kwh <= 0:
            continue
        hours = (b - a).total_seconds() / 3600
        e = min(s.kwh * (b - a) / (s.end - s.start), power_kw * hours)
        f = price_at(feed_in, a) if feed_in else None
        imp = price_at(slots, a)
        base = (min_power_kw or 0.0) * hours  # the minimum power, its sun at the feed-in
        price = math.inf if imp is None else blend_price(e, base, imp, f or 0.0)
        # only where the top-up takes it: a kWh at least its margin below the import price
        if e < base and (blend_until is None or b <= blend_until) \
                and imp is not None and price <= imp - PRICE_MARGIN:
            units.append((price, 1, -a.timestamp(), base, e / base, imp, a, b))
            pieces.append((a, b, e, base))
        else:
            cost = -math.inf if f is None else f
            if e < base and blend_until is not None and b > blend_until and imp is not None:
                # in the last stretch this sun reaches the car only beside the grid at full
                # power: a kWh of it costs that blend, not the feed-in alone
                cost = blend_price(e, power_kw * hours, imp, f or 0.0)
            units.append((cost, 0, -a.timestamp(), e, 1.0, 0.0, a, b))
            pieces.append((a, b, e, e))
    j = 0
    for g in slots:
        if g.price is None:
            continue
        while j < len(pieces) and pieces[j][1] <= g.start:
            j += 1
        overlap, k = 0.0, j
        while k < len(pieces) and pieces[k][0] < g.end:  # the sun (or blend) in this slot
            a, b, _, covered = pieces[k]
            overlap += covered * _share(a, b, g)
            k += 1
        cap = power_kw * (g.end - g.start).total_seconds() / 3600 - overlap
        if cap > 1e-9:
            units.append((g.price, 2, -g.start.timestamp(), cap, 0.0, g.price, g.start, g.end))
    taken = blend = blend_cost = 0.0
    price, left = None, need
    covered = []
    for p, kind, _, e, sun_part, imp, a, b in sorted(units):
        if left <= 1e-9:
            break
        use = min(e, left)
        left -= use
        if kind < 2:
            taken += use * sun_part
            blend += use * (1 - sun_part)
            blend_cost += use * (1 - sun_part) * imp
            price = p if math.isfinite(p) else price
            covered.append((a, b, use))
    return SunSplit(taken, blend, blend_cost, price, tuple(covered))


def make_plan(now: datetime, departure: datetime | None, need_kwh: float, power_kw: float,
              prices: list[Slot] | None = None, sun_kwh: float = 0.0,
              prices_note: str = "", margin: timedelta = MARGIN,
              sun_slots: list[Sun] | None = None,
              feed_in: list[Slot] | None = None,
              min_power_kw: float | None = None) -> Plan:
    """The plan for the time from ``now`` to ``departure`` (see the module docstring).

    ``prices_note``: why there are no prices (e.g. "the price sensor is unavailable"),
    said in the reason when falling back to "as late as possible". ``sun_slots``: a forecast
    by the hour (instead of ``sun_kwh``, the surplus expected before departure), with
    ``feed_in`` its prices: the plan then counts only on the sun that is cheaper in the
    car than the grid or other sun, and its marginal price may be that sun's feed-in.
    ``min_power_kw`` (the charger's minimum power): with such a forecast, sun below it is
    counted with the grid energy the minimum current takes beside it (:func:`_sun_split`);
    that grid energy is the top-up's, not the grid slots'.
    """
    need = max(0.0, need_kwh)
    if need <= 0.005:
        return Plan(False, 0.0, 0.0, 0.0, 0.0, None, reason="target reached: nothing to charge")
    if departure is None:
        return Plan(False, need, 0.0, 0.0, 0.0, None,
                    reason="no departure time set: the plan waits (the sun may still charge)")
    if power_kw <= 0:
        return Plan(False, need, 0.0, 0.0, need, None, reason="the charger can deliver no power")
    if departure <= now:
        return Plan(False, need, 0.0, 0.0, need, None,
                    reason=f"the departure ({departure:%Y-%m-%d %H:%M}) has passed: "
                           f"{kwh(need)} kWh short")
    hours_left = (departure - now).total_seconds() / 3600
    possible = power_kw * hours_left
    slots = _window_slots(prices, now, departure)
    priced = any(s.price is not None for s in slots)
    # from here on only full power can still deliver the whole need
    last_stretch = departure - timedelta(hours=need / power_kw) - margin
    split = SunSplit()
    if sun_slots is not None:
        split = _sun_split(sun_slots, feed_in, slots, now, departure, need, power_kw,
                           min_power_kw, last_stretch)
        sun_kwh = split.sun_kwh
    sun_price = split.price
    sun = min(max(0.0, sun_kwh), need)
    grid = need - sun
    blend = min(split.blend_kwh, grid)  # of the grid part: beside the sun, at 6 A
    if possible + 1e-9 < need:
        short = need - possible
        return Plan(True, need, 0.0, possible, short, now, ((now, departure),),
                    cost=_cost(slots, power_kw) if priced else None,
                    reason=f"departure too soon: {kwh(possible)} of {kwh(need)} kWh fit at "
                           f"{power_kw:.1f} kW by {departure:%H:%M}, {kwh(short)} kWh short; "
                           f"charging now")
    if sun > 0 and now >= last_stretch:
        # the sun the forecast promises may not come, or come below the charger's minimum
        return Plan(True, need, 0.0, need, 0.0, now, ((now, departure),),
                    cost=_cost(slots, power_kw, need) if priced else None,
                    reason=f"{kwh(need)} kWh left and only the time for it at full power: "
                           f"charging now rather than waiting for the sun")
    if grid <= 0.005:
        return Plan(False, need, sun, 0.0, 0.0, None,
                    reason=f"{kwh(sun)} kWh expected from the sun: no grid needed",
                    marginal_price=sun_price)
    sun_note = f"; {kwh(sun)} kWh expected from the sun" if sun else ""
    beside = (f"{kwh(blend)} kWh beside the sun at the minimum current (a kWh at up to "
              f"{sun_price:.3f})") if blend > 0.005 and sun_price is not None else ""
    slot_grid = grid - blend if beside else grid
    if slot_grid <= 0.005:
        return Plan(False, need, sun, grid, 0.0, None, cost=split.blend_cost,
                    reason=f"{kwh(grid)} kWh from the grid: {beside}{sun_note}",
                    marginal_price=sun_price)
    # cheapest first; equal prices (and no price at all): the later slot first
    order = sorted(slots, key=lambda s: (math.inf if s.price is None else s.price,
                                         -s.start.timestamp()))
    chosen: list[Slot] = []
    got = 0.0
    booked = slot_grid + power_kw * margin.total_seconds() / 3600
    part: timedelta | None = None  # of the last slot booked, the time needed
    for s in order:
        if got >= booked - 1e-9:
            break
        cap = power_kw * (s.end - s.start).total_seconds() / 3600
        # less what the sun (or the grid beside it) is counted on to give in it: the car
        # takes that at full power too, so it is no room for the grid part
        cap -= sum(e * _share(a, b, s) for a, b, e in split.covered)
        if cap <= 1e-9:
            continue
        if cap > booked - got:
            part = (s.end - s.start) * ((booked - got) / cap)
        chosen.append(s)
        got += cap
    if part is not None:
        chosen[-1] = _shorten(chosen[-1], part, chosen)
    chosen.sort(key=lambda s: s.start)
    charge_now = any(s.start <= now < s.end for s in chosen)
    start = chosen[0].start if chosen else None
    cost = marginal = None
    if chosen and all(s.price is not None for s in chosen):
        cost = _cost(chosen, power_kw, limit_kwh=slot_grid)
        if cost is not None and beside:
            cost += split.blend_cost
        marginal = max([s.price for s in chosen if s.price is not None]
                       + ([sun_price] if sun_price is not None else []))
    if priced:
        how = "in the cheapest hours"
    else:
        how = "as late as possible" + (f" ({prices_note})" if prices_note else
                                       " (no prices)")
    return Plan(charge_now, need, sun, grid, 0.0, start,
                tuple((s.start, s.end) for s in chosen), cost,
                reason=f"{kwh(slot_grid)} kWh from the grid {how}, from {start:%H:%M}"
                       + (f"; {beside}" if beside else "") + sun_note,
                marginal_price=marginal)


def _shorten(s: Slot, part: timedelta, chosen: list[Slot]) -> Slot:
    """The last slot booked, cut to the ``part`` of it that is needed, as evcc's planner
    does: its end, so that it runs on into the booked slot after it (or, alone, as late
    as possible), unless only a booked slot before it joins on: then its start. Whole
    minutes, so that a start does not creep by seconds with every re-plan."""
    if any(c.start == s.end for c in chosen) or not any(c.end == s.start for c in chosen):
        start = (s.end - part).replace(second=0, microsecond=0)
        return Slot(max(s.start, start), s.end, s.price)
    end = s.start + part + timedelta(minutes=1)
    return Slot(s.start, min(s.end, end.replace(second=0, microsecond=0)), s.price)


def price_at(slots: list[Slot] | None, when: datetime) -> float | None:
    """The price of the slot that holds ``when`` (None: no price known then)."""
    for s in slots or ():
        if s.start <= when < s.end and s.price is not None and math.isfinite(s.price):
            return s.price
    return None


def blend_price(sun_w: float, power_w: float, import_price: float,
                feed_in_price: float) -> float:
    """What a kWh into the car costs now at ``power_w`` with ``sun_w`` of surplus: the
    surplus part at the feed-in it does not earn, the rest at the import price."""
    if power_w <= 0:
        return import_price
    sun = min(max(sun_w, 0.0), power_w)
    return (sun * feed_in_price + (power_w - sun) * import_price) / power_w


def import_blend(grid_w: float | None, charger_w: float, import_price: float | None,
                 feed_in_price: float | None) -> float | None:
    """What a kWh into the car costs now, from the grid meter: while the charger draws
    ``charger_w``, an import of ``grid_w`` (positive) is the part the sun does not cover
    (None: unknown)."""
    if grid_w is None or import_price is None or feed_in_price is None or charger_w <= 0:
        return None
    return blend_price(charger_w - min(max(grid_w, 0.0), charger_w), charger_w, import_price,
                       feed_in_price)


@dataclass(frozen=True)
class Offer:
    """What charging now would be: the current, a kWh's price, the part from the sun."""
    amps: int
    blend: float | None
    sun_share: float


def offer(surplus_w: float | None, volts_x_phases: float, limit: int,
          import_price: float | None, feed_in_price: float | None,
          marginal_price: float | None = None, margin: float = PRICE_MARGIN) -> Offer:
    """Charging now at the surplus's current (whole amperes, 6 A..``limit``).

    The surplus's current is rounded down: 10.6 A of surplus is 10 A, and 0.6 A of sun
    is exported. With the plan's ``marginal_price`` (it still buys grid energy) the offer
    takes the next ampere when a kWh of that ampere costs at least ``margin`` less: its
    0.6 A of sun at the feed-in, 0.4 A of grid at the import price now, 0.17 a kWh on a
    flat 0.30 / 0.08 tariff against the plan's 0.30. Never above ``limit``. Give it only
    with a solar forecast: without one the plan counts on no sun, its marginal price is a
    grid slot's, and the grid half of that kWh is often one the sun would give later (on
    bench/money.py without a forecast, 11 less saved of 818).
    """
    amps = clamp((surplus_w or 0.0) / volts_x_phases, limit)
    if marginal_price is not None and surplus_w is not None and import_price is not None \
            and feed_in_price is not None and amps < limit \
            and surplus_w > amps * volts_x_phases:
        sun = min(1.0, surplus_w / volts_x_phases - amps)  # of the next ampere
        if sun * feed_in_price + (1 - sun) * import_price <= marginal_price - margin:
            amps += 1
    power = amps * volts_x_phases
    blend = None if surplus_w is None or import_price is None or feed_in_price is None \
        else blend_price(surplus_w, power, import_price, feed_in_price)
    return Offer(amps, blend, min(max(surplus_w or 0.0, 0.0) / power, 1.0))


def loss_over(blend: float, marginal_price: float, power_w: float, seconds: float) -> float:
    """What charging at ``power_w`` for ``seconds`` at a kWh's price ``blend`` loses
    against the plan's ``marginal_price`` (currency; negative: a gain)."""
    return (blend - marginal_price) * power_w / 1000 * seconds / 3600


@dataclass
class TopUp:
    """Grid energy now that is cheaper than the plan's: charge at the surplus's current (at
    least the minimum) while a kWh now costs less than the plan's marginal price.

    The plan buys its grid part at up to ``Plan.marginal_price``. When the car can charge
    now at a lower price per kWh (the surplus at the feed-in it forgoes, the rest at the
    import price now), every kWh taken now is one the plan no longer buys dearer: e.g.
    with a flat tariff, 2.1 kW of sun and a 4.1 kW minimum (3 phases, 6 A) make half the
    energy nearly free, where a pure surplus rule waits for 4.1 kW of sun.

    - It starts when a kWh now is at least ``margin`` cheaper than the plan's and at
      least ``min_sun_share`` of it comes from the sun: without a forecast the plan
      counts on no sun, and grid energy bought at dawn at the night price may be energy
      the sun would have given later (tuned on ``bench/money.py``, docs/plan.md). When
      the plan counted a forecast, its grid part is what the sun will not give: any
      share of sun then makes a kWh now cheaper, as the ideal takes it.
    - A session that already charges needs no start (the plan's grid slot has just
      ended, or the solar node rides): it takes it on for any grid part; ``min_grid_kwh``
      is for starts. At the end of a commuter's night the plan's slot ended at 06:57 with
      the rest expected from the sun, the charger stopped, and started again for the sun
      a few minutes later: a stop and a start for the same energy. It takes it on while
      a kWh costs no more than the plan's plus ``margin`` (as it holds), not less by it:
      the plan's dearest kWh is often that very blend at 6 A, and the meter's sun at dawn
      a little thinner than its half hour's mean.
    - It holds through a cloud while a kWh costs no more than the plan's (``margin``),
      for at most ``hold_s`` since it last paid (``hold_forecast_s`` when the plan
      counted a forecast: its grid part is then energy the sun will not give, so a kWh
      at the plan's price now is no loss, and each hold that ends early is a stop and a
      start). A cloud that makes a kWh dearer than the
      plan's stops it once it has lost ``stop_loss`` (currency) against the plan's price,
      as :class:`LossGuard` stops a ride: a stop and a start for every cloud on 1 phase
      cost more than the few Wh of dear grid they save (0, the default: at once).
      It stops at once when the plan has no grid part left (the forecast sun is enough,
      or the need is met).
    """
    hold_s: float = 600.0
    # with a forecast. On bench/money.py 1800 cuts the 1-phase days' starts and stops by
    # 83 / 66 (tuning / held out) for the same money (no limit: the same); without a
    # forecast a longer hold takes grid that later sun would give (1800: -3.8 / -7.0)
    hold_forecast_s: float = 1800.0
    margin: float = PRICE_MARGIN
    min_sun_share: float = 0.5
    # a grid part smaller than this does not start it: a slightly optimistic forecast
    # leaves a few Wh that come and go with every re-plan, and each would be a start
    min_grid_kwh: float = 0.5
    # currency lost in a cloud before it stops. On bench/money.py 0.02 halves the 1-phase
    # weekly top-up's starts and stops on a flat tariff but loses 5-8 of the savings on 3
    # phases (docs/plan.md): off (0) by default
    stop_loss: float = 0.0
    on: bool = False
    _last_good: float | None = None
    _loss: float = 0.0
    _last_dear: float | None = None  # the last decision in the cloud

    def step(self, now: float, marginal_price: float | None, blend: float | None,
             sun_share: float, forecast: bool = False, grid_kwh: float = math.inf,
             charging: bool = False, power_w: float = 0.0) -> bool:
        """Whether to charge now; ``blend`` from :func:`blend_price`, ``sun_share`` the
        part of the power that the surplus covers (0..1). ``forecast``: the plan counted
        a solar forecast, so its grid part is what the sun is not expected to give, and
        grid energy now does not take the place of later sun: any share of sun will do.
        ``grid_kwh``: the plan's grid part; it starts only from ``min_grid_kwh``, unless
        ``charging`` (the session charges already: no start). ``power_w``: what the
        charger draws (or would draw) now, for the loss in a cloud."""
        share = 0.0 if forecast else self.min_sun_share
        dearer = marginal_price is not None and blend is not None \
            and blend > marginal_price + self.margin
        last, self._last_dear = self._last_dear, None
        if marginal_price is None or blend is None:
            self.on, self._last_good = False, None
        elif sun_share > 0 and sun_share >= share and (
                (blend <= marginal_price - self.margin
                 and (self.on or grid_kwh >= self.min_grid_kwh))
                or (charging and grid_kwh > 0.005 and blend <= marginal_price + self.margin)):
            self.on, self._last_good = True, now
        elif self.on and (self._last_good is None or now - self._last_good
                          >= (self.hold_forecast_s if forecast else self.hold_s)):
            self.on = False
        elif self.on and dearer:
            if last is not None:
                self._loss += loss_over(blend, marginal_price, power_w, now - last)
            # no grid part left: a loss for nothing
            self.on = self._loss < self.stop_loss and grid_kwh > 0.005
            self._last_dear = now if self.on else None
        if self._last_dear is None:
            self._loss = 0.0
        return self.on


@dataclass
class LossGuard:
    """A session that charges at a loss against the plan is stopped.

    While the solar node rides a cloud at the minimum current, the grid beside the sun
    makes a kWh cost :func:`import_blend`. When the plan expects every kWh it still needs
    cheaper (its ``marginal_price``: with a forecast, often the sun's feed-in alone),
    each such kWh is one the sun or a cheaper hour would have given, and costs the
    difference. Once a ride has lost ``max_loss`` (currency) the plan asks "do not
    charge" for ``settle_s`` (the stop's way to the charger); then the solar node starts
    again when its surplus rule says so (holding the stop for 300 s was tried: more
    starts and stops, not fewer). On 3 phases a cloud costs that in under a minute (6 A
    is 4.1 kW); on 1 phase the small import may ride for minutes, where a stop and start
    would cost more than it saves. Ask it on every decision, with ``charging`` False
    while the plan itself charges (its grid slots, the top-up): that is no ride.

    When the forecast gives at least ``ample_sun`` times the need before departure
    (``sun_ratio``, :func:`sun_before`), a ride stops after ``ample_loss``: with that much
    sun still to come, a kWh beside the cloud is one the sun would give anyway, and the
    starts and stops are few (the need is soon met). On a grey day the sun is short, a
    stop may not be followed by a start, and a ride rides longer.
    """
    # currency per ride. Tuned on bench/money.py (docs/plan.md), forecast by the half hour:
    # 0.0125 saves 0.7 / 1.2 more than 0.015 on the tuning / held-out days (all of it on 3
    # phases: on 1 phase a ride hardly loses that much), and stays under evcc's starts and
    # stops once the top-up holds longer with a forecast (TopUp.hold_forecast_s), not before.
    # With it, ample_loss below acts only when max_loss is set higher
    max_loss: float = 0.0125
    # the forecast sun left, in needs, that makes it ample (inf: off). Tuned on
    # bench/money.py with the forecast by the half hour (docs/plan.md): 3 and 0.0125 save
    # 1.9 / 1.1 more on the tuning / held-out days (with max_loss 0.02 of the time), all of
    # it on 3 phases, and stay under evcc's starts and stops (3,830 / 3,951); 0.01 saves 2.8
    # but starts and stops more often than evcc does on the tuning days, which the issue's
    # goal forbids
    ample_sun: float = 3.0
    ample_loss: float = 0.0125  # currency per ride while it is
    margin: float = PRICE_MARGIN
    settle_s: float = 60.0  # the stop's way to the charger: asked this long
    _loss: float = 0.0
    _last: float | None = None
    _stopped_at: float | None = None

    def allowance(self, sun_ratio: float = 0.0) -> float:
        """The loss a ride may run up with the forecast sun before departure at
        ``sun_ratio`` needs."""
        # never more than max_loss: with ample sun a ride stops sooner, not later
        return min(self.ample_loss, self.max_loss) if sun_ratio >= self.ample_sun \
            else self.max_loss

    def step(self, now: float, marginal_price: float | None, blend: float | None,
             charging: bool, power_w: float = 0.0, sun_ratio: float = 0.0) -> bool:
        """Whether to ask "do not charge" now; ``blend`` is a kWh's price now (None:
        unknown, e.g. not charging), ``power_w`` what the charger draws and
        ``sun_ratio`` the forecast sun before departure over the need (0: none)."""
        allowance = self.allowance(sun_ratio)
        last, self._last = self._last, now
        if self._stopped_at is not None:
            if now - self._stopped_at < self.settle_s:
                return True  # the stop is on its way
            self._stopped_at = None
        if not charging or marginal_price is None or blend is None \
                or blend <= marginal_price + self.margin:
            self._loss = 0.0
        elif last is not None:
            self._loss += loss_over(blend, marginal_price, power_w, now - last)
            if self._loss >= allowance:
                self._loss, self._stopped_at = 0.0, now
                return True
        return False


def sun_before(sun: list[Sun] | None, now: datetime, departure: datetime | None) -> float:
    """The surplus a forecast by the period expects in [now, departure) (kWh), a period
    counted by the part of it in that time."""
    if not sun or departure is None or departure <= now:
        return 0.0
    return sum(max(s.kwh, 0.0) * _share(s.start, s.end, Slot(now, departure, None))
               for s in sun if s.end > s.start and math.isfinite(s.kwh))


def sun_ratio(sun_kwh: float | None, need_kwh: float) -> float:
    """The forecast sun before departure in needs (0: no forecast or no need)."""
    return 0.0 if not sun_kwh or need_kwh <= 0 else sun_kwh / need_kwh


def _cost(slots: list[Slot], power_kw: float, limit_kwh: float | None = None) -> float | None:
    total, energy = 0.0, 0.0
    for s in slots:
        if s.price is None:
            return None
        e = power_kw * (s.end - s.start).total_seconds() / 3600
        if limit_kwh is not None:
            e = min(e, max(0.0, limit_kwh - energy))
        total += e * s.price
        energy += e
    return round(total, 4)


def parse_prices(raw: object) -> list[Slot]:
    """Slots from a price sensor's attribute: ``[{"start", "end", "value"|"price"}, ...]``
    (ISO times with a zone, as day-ahead integrations publish them). Raises ValueError."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("no list of prices")
    out = []
    for item in raw[:1000]:
        if not isinstance(item, dict):
            raise ValueError(f"{item!r} is not a price slot")
        try:
            start = datetime.fromisoformat(str(item["start"]))
            end = datetime.fromisoformat(str(item["end"]))
            price = float(item.get("value", item.get("price")))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{item!r} is not a price slot: {err}") from None
        if start.tzinfo is None or end.tzinfo is None or end <= start or not math.isfinite(price):
            raise ValueError(f"{item!r} is not a price slot (times need a zone, end > start)")
        out.append(Slot(start, end, price))
    return out


def parse_forecast(raw: object, house_w: float = 0.0, share: float = 1.0) -> list[Sun]:
    """The surplus expected by the period from a PV forecast sensor's attribute, less the
    house's ``house_w`` and times ``share``. Raises ValueError.

    - a list of ``{"period_start", "pv_estimate"}`` (kW, the period's mean), as Solcast's
      ``detailedForecast`` and ``detailedHourly``; a period lasts until the next one
      starts (the last as long as the one before it, or 30 minutes);
    - a mapping ``{time: W}``, as the ``watts`` of Open-Meteo and Forecast.Solar's API.
    """
    points: list[tuple[datetime, float]] = []
    try:
        if isinstance(raw, dict):
            items = [(k, float(v) / 1000) for k, v in raw.items()]
        elif isinstance(raw, list):
            items = [(i["period_start"], float(i["pv_estimate"])) for i in raw]
        else:
            raise ValueError("neither a list of periods nor a mapping of times")
        for when, kw in items[:1000]:
            t = when if isinstance(when, datetime) else datetime.fromisoformat(str(when))
            if t.tzinfo is None or not math.isfinite(kw):
                raise ValueError(f"{when!r}: {kw!r} (times need a zone)")
            points.append((t, kw))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"not a forecast: {err}"[:200]) from None
    if not points:
        raise ValueError("no forecast periods")
    points.sort(key=lambda p: p[0])
    out: list[Sun] = []
    step = timedelta(minutes=30)
    for n, (t, kw) in enumerate(points):
        if n + 1 < len(points):
            step = points[n + 1][0] - t
        if step <= timedelta(0):
            continue
        surplus = max(0.0, kw - house_w / 1000) * max(0.0, share)
        out.append(Sun(t, t + step, surplus * step.total_seconds() / 3600))
    return out


def need_from_soc(soc: float, target: float, battery_kwh: float,
                  efficiency: float = 0.9) -> float:
    """kWh to charge (at the charger) to bring the car from ``soc`` to ``target`` %."""
    if not (0 <= soc <= 100 and 0 <= target <= 100 and battery_kwh > 0 and 0 < efficiency <= 1):
        raise ValueError(f"state of charge {soc} -> {target} % of {battery_kwh} kWh: "
                         f"out of range")
    return max(0.0, (target - soc) / 100 * battery_kwh / efficiency)
