"""thor/plan.py: hand-made days."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from growatt_thor.thor.plan import (
    FullPower,
    LossGuard,
    Slot,
    Sun,
    TopUp,
    blend_price,
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

TZ = timezone(timedelta(hours=1))
T0 = datetime(2026, 12, 1, 18, 0, tzinfo=TZ)  # plugged in at 18:00
DEPART = T0 + timedelta(hours=13)  # 07:00 next morning
KW = 11.0  # 16 A on 3 phases
TEN = timedelta(minutes=10)  # the margin these days were made with (margin_minutes: 10)


def hourly(prices: list[float], start: datetime = T0) -> list[Slot]:
    return [Slot(start + timedelta(hours=h), start + timedelta(hours=h + 1), p)
            for h, p in enumerate(prices)]


def test_a_sunny_day_needs_no_grid():
    p = make_plan(T0, DEPART, need_kwh=20, power_kw=KW, prices=hourly([0.3] * 13), sun_kwh=25)
    assert (p.grid_kwh, p.sun_kwh, p.charge_now, p.grid_start) == (0.0, 20, False, None)
    assert "no grid needed" in p.reason


def test_a_grey_day_fills_in_the_cheapest_hours():
    # night prices: 18:00 dear, cheapest at 02:00-04:00
    prices = [0.40, 0.38, 0.35, 0.30, 0.25, 0.20, 0.15, 0.10, 0.08, 0.09, 0.12, 0.20, 0.30]
    p = make_plan(T0, DEPART, need_kwh=20, power_kw=KW, prices=hourly(prices), sun_kwh=0)
    assert p.grid_kwh == 20 and not p.charge_now
    assert [s.hour for s, _ in p.slots] == [2, 3]  # 0.08 and 0.09: 22 kWh >= 20
    assert p.grid_start == T0 + timedelta(hours=8)
    assert p.cost == pytest.approx(11 * 0.08 + 9 * 0.09)
    assert "cheapest hours, from 02:00" in p.reason
    # at 02:30 it charges
    now = T0 + timedelta(hours=8, minutes=30)
    assert make_plan(now, DEPART, 15, KW, hourly(prices)).charge_now


def test_equal_prices_go_as_late_as_possible():
    p = make_plan(T0, DEPART, need_kwh=9, power_kw=KW, prices=hourly([0.3] * 13), margin=TEN)
    assert [s.hour for s, _ in p.slots] == [6]  # the last hour before 07:00
    # 10 kWh and the 10-minute margin (1.8 kWh at 11 kW) no longer fit in one hour
    p = make_plan(T0, DEPART, need_kwh=10, power_kw=KW, prices=hourly([0.3] * 13), margin=TEN)
    assert [s.hour for s, _ in p.slots] == [5, 6]
    # the default margin (2 minutes, 0.37 kWh) still fits 10 kWh into 06:00-07:00: 56.6 min
    p = make_plan(T0, DEPART, need_kwh=10, power_kw=KW, prices=hourly([0.3] * 13))
    assert p.slots == ((T0 + timedelta(hours=12, minutes=3), DEPART),)


def test_the_grid_part_starts_when_needed_and_runs_through_the_hour():
    # 25 kWh by 07:00 at one price: 25 kWh and the margin are 2 h 26.4 min at 11 kW. Booking
    # whole hours charged from 04:00, stopped at 04:27 (the rest fit 05:00-07:00) and
    # started again at 05:00: a stop and a start more, for the same price.
    prices = hourly([0.3] * 13)
    p = make_plan(T0, DEPART, need_kwh=25, power_kw=KW, prices=prices, margin=TEN)
    assert p.grid_start == T0 + timedelta(hours=10, minutes=33)  # the whole minute before
    assert p.slots[0] == (T0 + timedelta(hours=10, minutes=33), T0 + timedelta(hours=11))
    assert not make_plan(T0 + timedelta(hours=10, minutes=30), DEPART, 25, KW, prices,
                         margin=TEN).charge_now
    for minutes in (33, 50, 59, 60, 90):  # at full power since 04:33, it never stops
        now = T0 + timedelta(hours=10, minutes=minutes)
        left = 25 - KW * (minutes - 33) / 60
        assert make_plan(now, DEPART, left, KW, prices, margin=TEN).charge_now, minutes
    # the cheapest hour is the one before the dearer ones that the need spills into: the
    # spill is the start of the next hour, right after it
    p = make_plan(T0, DEPART, need_kwh=12, power_kw=KW, prices=hourly([0.3] * 8 + [0.1, 0.2]),
                  margin=TEN)
    two, three = T0 + timedelta(hours=8), T0 + timedelta(hours=9)
    assert p.slots == ((two, three), (three, three + timedelta(minutes=16)))


def test_a_departure_too_soon_for_the_need_says_so_at_once():
    soon = T0 + timedelta(hours=1)
    p = make_plan(T0, soon, need_kwh=30, power_kw=KW, prices=hourly([0.3]))
    assert p.charge_now and p.short_kwh == pytest.approx(19.0)
    assert "departure too soon" in p.reason and "19.0 kWh short" in p.reason
    past = make_plan(T0, T0 - timedelta(minutes=1), need_kwh=5, power_kw=KW)
    assert not past.charge_now and past.short_kwh == 5 and "has passed" in past.reason


def test_no_prices_falls_back_to_as_late_as_possible_and_says_why():
    p = make_plan(T0, DEPART, need_kwh=11, power_kw=KW, prices=None,
                  prices_note="sensor.prices is unavailable", margin=TEN)
    # 11 kWh + the margin: 12.8 kWh, 70 minutes at 11 kW
    assert p.grid_start == DEPART - timedelta(minutes=70) and p.cost is None
    assert "as late as possible (sensor.prices is unavailable)" in p.reason
    # prices that stop at midnight: the unknown hours count as dearer than any price
    p = make_plan(T0, DEPART, need_kwh=8, power_kw=KW, prices=hourly([0.9] * 6), margin=TEN)
    assert [s.hour for s, _ in p.slots] == [23]


def test_target_reached_and_no_departure():
    assert make_plan(T0, DEPART, 0, KW).reason.startswith("target reached")
    assert "no departure time" in make_plan(T0, None, 5, KW).reason


def test_prices_from_a_day_ahead_attribute():
    raw = [{"start": "2026-12-01T18:00:00+01:00", "end": "2026-12-01T19:00:00+01:00",
            "value": 0.31}, {"start": "2026-12-01T19:00:00+01:00",
                             "end": "2026-12-01T20:00:00+01:00", "price": "0.29"}]
    assert [s.price for s in parse_prices(raw)] == [0.31, 0.29]
    for bad in (None, [], [{"start": "x"}], [{"start": "2026-12-01T18:00:00",
                                               "end": "2026-12-01T19:00:00", "value": 1}],
                [{"start": "2026-12-01T19:00:00+01:00", "end": "2026-12-01T18:00:00+01:00",
                  "value": 1}], [{"start": "2026-12-01T18:00:00+01:00",
                                  "end": "2026-12-01T19:00:00+01:00", "value": "nan"}]):
        with pytest.raises(ValueError):
            parse_prices(bad)


def test_need_from_the_cars_state_of_charge():
    assert need_from_soc(40, 80, 60, efficiency=1.0) == pytest.approx(24.0)
    assert need_from_soc(40, 80, 60) == pytest.approx(24 / 0.9)
    assert need_from_soc(90, 80, 60) == 0.0
    with pytest.raises(ValueError):
        need_from_soc(120, 80, 60)


def test_the_marginal_price_is_the_dearest_slot_the_grid_part_needs():
    prices = [0.40, 0.38, 0.35, 0.30, 0.25, 0.20, 0.15, 0.10, 0.08, 0.09, 0.12, 0.20, 0.30]
    p = make_plan(T0, DEPART, need_kwh=20, power_kw=KW, prices=hourly(prices))
    assert p.marginal_price == 0.09  # 02:00 (0.08) and 03:00 (0.09)
    assert make_plan(T0, DEPART, 20, KW, prices=hourly(prices), sun_kwh=25).marginal_price \
        is None  # no grid part
    assert make_plan(T0, DEPART, 20, KW).marginal_price is None  # no prices
    assert price_at(hourly(prices), T0 + timedelta(hours=8, minutes=59)) == 0.08
    assert price_at(hourly(prices), DEPART + timedelta(hours=1)) is None


def test_a_kwh_now_costs_the_surplus_at_its_feed_in_and_the_rest_at_the_import_price():
    # 3 phases at 6 A = 4140 W with 2070 W of sun: half at 0.08, half at 0.30
    assert blend_price(2070, 4140, 0.30, 0.08) == pytest.approx(0.19)
    assert blend_price(9000, 4140, 0.30, 0.08) == pytest.approx(0.08)  # all sun
    assert blend_price(-500, 4140, 0.30, 0.08) == pytest.approx(0.30)  # importing anyway


def test_top_up_runs_while_a_kwh_now_is_cheaper_than_the_plans_and_holds_through_a_cloud():
    t = TopUp(hold_s=600, margin=0.01, min_sun_share=0.5, stop_loss=0.0)
    flat = 0.30  # the plan would buy at 0.30 (a flat tariff)

    def at(now: float, sun_w: float, marginal: float | None = flat, imp: float = 0.30) -> bool:
        return t.step(now, marginal, blend_price(sun_w, 4140, imp, 0.08), min(sun_w / 4140, 1))

    assert at(0, 0) is False  # no sun: nothing gained
    assert at(10, 1000) is False  # a quarter from the sun: the sun may still come
    assert at(20, 2500) is True  # 60 % from the sun at 0.08, the rest at 0.30
    assert at(300, 0) is True  # a cloud: a kWh costs what the plan pays, it holds
    assert at(619, 0) is True
    assert at(620, 0) is False  # 600 s without a gain: stops
    # time of use: day import 0.34 against the plan's night 0.22
    assert at(700, 2070, marginal=0.22, imp=0.34) is False  # 0.21 a kWh: not 0.01 cheaper
    assert at(710, 3000, marginal=0.22, imp=0.34) is True  # 0.15
    assert at(720, 0, marginal=0.22, imp=0.34) is False  # a cloud at 0.34: a loss, stop now
    # no grid part left (the target, or a forecast with enough sun): off at once
    assert at(730, 3000, marginal=0.22, imp=0.34) is True
    assert at(740, 3000, marginal=None) is False


def test_a_top_up_rides_a_dear_cloud_until_it_lost_its_stop_loss():
    # time of use: the plan buys at the night's 0.22, a cloud makes a kWh 0.34 at 6 A on
    # 1 phase (1380 W): 0.12 x 1.38 = 0.166 an hour lost, 0.02 in 7.3 minutes
    t = TopUp(stop_loss=0.02)
    sunny, cloud = blend_price(1200, 1380, 0.34, 0.08), 0.34
    assert t.step(0, 0.22, sunny, 1200 / 1380, power_w=1380)
    assert t.step(10, 0.22, cloud, 0.0, power_w=1380)  # the cloud comes: no loss yet
    assert all(t.step(n, 0.22, cloud, 0.0, power_w=1380) for n in range(20, 440, 10))
    assert not t.step(450, 0.22, cloud, 0.0, power_w=1380)  # 0.0203 lost: stops
    # a cloud that passes sooner is ridden through, and the next one starts from nothing
    t = TopUp(stop_loss=0.02)
    assert t.step(0, 0.22, sunny, 1200 / 1380, power_w=1380)
    assert all(t.step(n, 0.22, cloud, 0.0, power_w=1380) for n in range(10, 400, 10))
    assert t.step(400, 0.22, sunny, 1200 / 1380, power_w=1380)
    assert all(t.step(n, 0.22, cloud, 0.0, power_w=1380) for n in range(410, 800, 10))
    # on 3 phases (4140 W) the same cloud costs 0.02 in 2.4 minutes
    t = TopUp(stop_loss=0.02)
    assert t.step(0, 0.22, blend_price(3600, 4140, 0.34, 0.08), 3600 / 4140, power_w=4140)
    assert all(t.step(n, 0.22, cloud, 0.0, power_w=4140) for n in range(10, 150, 10))
    assert not t.step(160, 0.22, cloud, 0.0, power_w=4140)


def test_the_offer_is_the_surplus_current_within_6_a_and_the_limit():
    three = 230.0 * 3
    o = offer(2500, three, 16, 0.30, 0.08)
    assert (o.amps, round(o.sun_share, 3)) == (6, round(2500 / 4140, 3))
    assert o.blend == pytest.approx(blend_price(2500, 4140, 0.30, 0.08))
    assert offer(20000, three, 16, 0.30, 0.08).amps == 16  # never above the limit
    assert offer(20000, three, 10, 0.30, 0.08).amps == 10
    assert offer(None, three, 16, 0.30, 0.08).blend is None  # surplus unknown: no offer
    assert offer(2500, three, 16, None, 0.08).blend is None  # no price now


def test_with_a_forecast_the_top_up_holds_longer_through_a_cloud_at_the_plans_price():
    # flat 0.30 / 0.08: sun at 6 A, then a cloud in which a kWh costs the plan's 0.30
    sunny, cloud = blend_price(1380, 1380, 0.30, 0.08), blend_price(0, 1380, 0.30, 0.08)
    for forecast, hold in ((False, TopUp.hold_s), (True, TopUp.hold_forecast_s)):
        t = TopUp()
        assert t.step(0, 0.30, sunny, 1.0, forecast=forecast, grid_kwh=5, power_w=1380)
        assert all(t.step(n, 0.30, cloud, 0.0, forecast=forecast, grid_kwh=5, charging=True,
                          power_w=1380) for n in range(10, int(hold), 10))
        assert not t.step(hold, 0.30, cloud, 0.0, forecast=forecast, grid_kwh=5,
                          charging=True, power_w=1380)
    assert TopUp.hold_forecast_s > TopUp.hold_s


def test_the_offer_takes_the_next_ampere_when_its_kwh_is_cheaper_than_the_plans():
    three = 230.0 * 3
    surplus = 10.6 * three  # 10 A, and 0.6 A of sun that would be exported
    assert offer(surplus, three, 16, 0.30, 0.08).amps == 10  # no plan: the surplus alone
    # the plan buys grid at 0.30: a kWh of the 11th ampere is 0.6 sun at 0.08 and 0.4
    # grid at 0.30, 0.168
    o = offer(surplus, three, 16, 0.30, 0.08, marginal_price=0.30)
    assert o.amps == 11
    assert o.blend == pytest.approx(blend_price(surplus, 11 * three, 0.30, 0.08))
    # the plan's dearest kWh is the sun's feed-in (a forecast with sun enough): no grid
    assert offer(surplus, three, 16, 0.30, 0.08, marginal_price=0.08).amps == 10
    # 0.02 A of sun in the next ampere: its kWh is 0.296, not 0.01 below the plan's 0.30
    assert offer(10.02 * three, three, 16, 0.30, 0.08, marginal_price=0.30).amps == 10
    assert offer(surplus, three, 10, 0.30, 0.08, marginal_price=0.30).amps == 10  # the limit
    assert offer(surplus, three, 16, None, 0.08, marginal_price=0.30).amps == 10  # no price


def test_surplus_is_sold_while_its_feed_in_pays_more_than_the_dearest_grid_slot():
    # a dynamic day: 20 kWh in the two cheapest hours, 02:00 and 03:00 (0.08, 0.09)
    prices = [0.40, 0.38, 0.35, 0.30, 0.25, 0.20, 0.15, 0.10, 0.08, 0.09, 0.12, 0.20, 0.30]
    p = make_plan(T0, DEPART, need_kwh=20, power_kw=KW, prices=hourly(prices))
    assert p.sells_surplus(0.14) is True  # a kWh exported earns more than it saves
    assert p.sells_surplus(0.095) is False  # within the margin of 0.09: charge it
    assert p.sells_surplus(0.05) is False  # cheaper than the grid slots: charge it
    assert p.sells_surplus(None) is False  # feed-in unknown
    night = make_plan(T0 + timedelta(hours=8, minutes=30), DEPART, 20, KW, hourly(prices))
    assert night.charge_now and night.sells_surplus(0.14) is False  # the grid part runs
    assert make_plan(T0, DEPART, 20, KW).sells_surplus(0.14) is False  # no prices


def test_the_forecast_sun_is_not_waited_for_when_only_full_power_can_still_make_it():
    # 5.5 kWh left, all of it promised by the forecast: at 11 kW that is 30 minutes
    early = make_plan(DEPART - timedelta(minutes=60), DEPART, 5.5, KW, sun_kwh=5.5, margin=TEN)
    assert (early.charge_now, early.grid_kwh) == (False, 0.0)
    late = make_plan(DEPART - timedelta(minutes=39), DEPART, 5.5, KW, sun_kwh=5.5, margin=TEN)
    assert late.charge_now and late.grid_kwh == 5.5  # 30 min + the 10-min margin
    assert "rather than waiting for the sun" in late.reason
    # without a forecast the grid slots already run to the departure: no change
    assert make_plan(DEPART - timedelta(minutes=39), DEPART, 5.5, KW, margin=TEN).charge_now


def test_a_running_session_is_taken_on_by_the_top_up_for_any_grid_part():
    # 0.1 kWh of grid part left beside the sun: too little for a start (min_grid_kwh), but
    # the plan's slot has just ended with the charger running: no start, so it goes on
    blend = blend_price(2600, 4140, 0.22, 0.08)  # 0.131 a kWh, the plan's dearest 0.17
    assert not TopUp().step(0, 0.17, blend, 2600 / 4140, forecast=True, grid_kwh=0.1)
    assert TopUp().step(0, 0.17, blend, 2600 / 4140, forecast=True, grid_kwh=0.1,
                        charging=True)
    # with no grid part at all the sun alone is enough: no top-up, running or not
    assert not TopUp().step(0, 0.17, blend, 2600 / 4140, forecast=True, grid_kwh=0.0,
                            charging=True)
    # the plan's dearest kWh is that very blend (0.189 at 06:57: the last of the night's
    # sun beside 6 A on 1 phase), and the meter's sun is a little thinner than the half
    # hour's mean: a kWh costs 0.202, within the margin. Running, the session goes on (no
    # start to pay for; it stopped, waited for 07:00's sun and started again at 07:27);
    # not running, it is no reason for a start, and beyond the margin no reason to go on
    dawn = blend_price(300, 1380, 0.22, 0.08)
    assert TopUp().step(0, dawn, dawn + 0.009, 0.13, forecast=True, grid_kwh=0.04,
                        charging=True)
    assert not TopUp().step(0, dawn, dawn + 0.009, 0.13, forecast=True, grid_kwh=0.6)
    assert not TopUp().step(0, dawn, dawn + 0.011, 0.13, forecast=True, grid_kwh=0.04,
                            charging=True)


def test_with_a_forecast_the_top_up_takes_any_share_of_sun():
    t = TopUp(hold_s=600, margin=0.01, min_sun_share=0.5)
    quarter = blend_price(1000, 4140, 0.30, 0.08)  # a quarter sun: 0.247 a kWh
    assert t.step(0, 0.30, quarter, 1000 / 4140) is False  # the sun may still come
    assert t.step(10, 0.30, quarter, 1000 / 4140, forecast=True) is True
    assert t.step(20, 0.30, 0.30, 0.0, forecast=True) is True  # a cloud: it holds
    t2 = TopUp()
    assert t2.step(0, 0.30, 0.20, 0.0, forecast=True) is False  # grid alone is no top-up


def test_an_hourly_forecast_counts_on_the_sun_of_the_hours_where_feed_in_pays_least():
    # a sunny dynamic day from 08:00 to 18:00: feed-in falls to -0.05 at the noon dip
    morning = datetime(2026, 6, 1, 8, 0, tzinfo=TZ)
    leave = morning + timedelta(hours=10)
    feed = [0.14, 0.10, 0.07, 0.02, -0.01, -0.05, -0.02, 0.04, 0.09, 0.11]
    imp = [f + 0.15 for f in feed]
    sun = [Sun(morning + timedelta(hours=h), morning + timedelta(hours=h + 1), 7.0)
           for h in range(10)]
    p = make_plan(morning, leave, 20, KW, hourly(imp, morning), sun_slots=sun,
                  feed_in=hourly(feed, morning))
    # 20 kWh: 7 at 13:00 (-0.05), 7 at 14:00 (-0.02), 6 at 12:00 (-0.01); no grid
    assert (p.sun_kwh, p.grid_kwh, p.charge_now) == (20, 0, False)
    assert p.marginal_price == -0.01
    assert p.sells_surplus(0.14)  # 08:00's sun earns more exported
    assert not p.sells_surplus(-0.01)
    # the same day without feed-in prices: the sun counts first, whenever it comes
    q = make_plan(morning, leave, 20, KW, hourly(imp, morning), sun_slots=sun)
    assert q.sun_kwh == 20 and q.marginal_price is None and not q.sells_surplus(0.14)


def test_an_hourly_forecast_on_a_grey_day_leaves_the_rest_to_the_cheapest_grid_hours():
    prices = [0.40, 0.38, 0.35, 0.30, 0.25, 0.20, 0.15, 0.10, 0.08, 0.09, 0.12, 0.20, 0.30]
    sun = [Sun(T0 + timedelta(hours=12), T0 + timedelta(hours=13), 1.5)]  # 06:00-07:00
    p = make_plan(T0, DEPART, 20, KW, hourly(prices), sun_slots=sun,
                  feed_in=[Slot(T0, DEPART, 0.05)], margin=TEN)
    assert p.sun_kwh == pytest.approx(1.5) and p.grid_kwh == pytest.approx(18.5)
    assert p.marginal_price == 0.09  # 02:00 and 03:00, as without the sun
    # the sun in a grid slot leaves less room for the grid there: 11 kW in all
    full = [Sun(T0 + timedelta(hours=8), T0 + timedelta(hours=9), 11.0)]  # at 02:00
    q = make_plan(T0, DEPART, 20, KW, hourly(prices), sun_slots=full,
                  feed_in=[Slot(T0, DEPART, 0.05)], margin=TEN)
    assert q.sun_kwh == pytest.approx(11) and q.grid_kwh == pytest.approx(9)
    # and the sun fills 02:00 at full power: no room for the grid there (counted twice, the
    # car had 11 kWh less than the plan thought), so the grid part goes to 03:00 (0.09),
    # its end: 10.84 kWh with the 10-minute margin, from 03:00
    assert q.grid_start == T0 + timedelta(hours=9)
    assert q.slots == ((T0 + timedelta(hours=9), T0 + timedelta(hours=10)),)


def test_sun_below_the_minimum_power_is_counted_with_the_grid_beside_it():
    # a grey winter day, flat 0.30 / 0.08, 3 phases: 6 A is 4.14 kW. The morning's 0.5 kWh
    # would need 3.64 kWh of grid beside it; noon's 3 and 2 kWh make the cheapest kWh
    day = datetime(2026, 2, 14, 8, 0, tzinfo=TZ)
    leave = day + timedelta(hours=10)
    sun = [Sun(day + timedelta(hours=h), day + timedelta(hours=h + 1), e)
           for h, e in ((1, 0.5), (4, 3.0), (5, 2.0))]
    flat, feed = hourly([0.30] * 10, day), [Slot(day, leave, 0.08)]
    p = make_plan(day, leave, 5, KW, flat, sun_slots=sun, feed_in=feed, min_power_kw=4.14)
    # 12:00 at 6 A (3 of its 4.14 kWh from the sun), then 0.86 kWh of 13:00 (48 % sun)
    assert p.sun_kwh == pytest.approx(3 + 0.86 * 2 / 4.14, abs=1e-3)
    assert p.grid_kwh == pytest.approx(5 - p.sun_kwh)
    assert p.marginal_price == pytest.approx(blend_price(2, 4.14, 0.30, 0.08))  # 0.194
    assert not p.charge_now and p.slots == () and "beside the sun" in p.reason
    # a top-up waits for those hours: 09:00's blend is dearer than the plan's dearest kWh
    assert blend_price(0.5, 4.14, 0.30, 0.08) > p.marginal_price
    assert blend_price(3.0, 4.14, 0.30, 0.08) < p.marginal_price
    # without the charger's minimum power all the sun counts as if the car took it alone
    q = make_plan(day, leave, 5, KW, flat, sun_slots=sun, feed_in=feed)
    assert q.sun_kwh == pytest.approx(5) and q.grid_kwh == 0
    # a need beyond the three blended hours (12.4 kWh, even 09:00's is cheaper than the
    # grid alone) books grid slots at full power for the rest
    r = make_plan(day, leave, 15, KW, flat, sun_slots=sun, feed_in=feed, min_power_kw=4.14)
    assert r.sun_kwh == pytest.approx(5.5) and r.slots and r.marginal_price == 0.30
    assert "beside the sun" in r.reason


def test_sun_too_thin_for_the_top_up_is_no_blend():
    # 3 phases, time of use (0.22 until 07:00, then 0.34), feed-in 0.08, leaving 07:30 with
    # 25.7 kWh to go at 04:03. Dawn's 0.06 kWh would make 04:03-05:00 at 6 A a kWh at 0.219:
    # not the top-up's margin below the night price, so nobody would charge it. Counted as a
    # blend it pushed the grid part past 05:00 and its end into the day price.
    night = datetime(2026, 6, 2, 4, 0, tzinfo=TZ)
    leave = night + timedelta(hours=3.5)
    sun = [Sun(night + timedelta(hours=h), night + timedelta(hours=h + 1), e)
           for h, e in enumerate((0.06, 0.84, 1.92, 3.02))]
    tou = hourly([0.22, 0.22, 0.22, 0.34], night)
    feed = [Slot(night, night + timedelta(hours=4), 0.08)]
    now = night + timedelta(minutes=3)
    dawn = blend_price(0.06 * 57 / 60, 4.14 * 57 / 60, 0.22, 0.08)
    assert not TopUp().step(0.0, 0.22, dawn, 0.015, forecast=True, grid_kwh=20)
    p = make_plan(now, leave, 25.7, 11.04, tou, sun_slots=sun, feed_in=feed,
                  min_power_kw=4.14, margin=TEN)
    assert "beside the sun" not in p.reason and p.grid_start < night + timedelta(hours=1)
    assert p.marginal_price == 0.22


def test_thin_sun_in_the_last_stretch_costs_the_blend_at_full_power():
    # bench/money.py's 3-phase commuter on time of use, a cloudy morning: 0.86 kWh to go at
    # 07:00, leaving 07:30; 07:00-07:30 forecasts 0.90 kWh (1.8 kW, under 6 A's 4.14 kW).
    # Counted at its feed-in, the plan waited for it at 06:57 and bought the rest at 07:24 at
    # 0.34 beside a sun that did not carry the car; in the last stretch the grid beside it
    # comes at full power, so a kWh of it costs (0.90 * 0.08 + 4.62 * 0.34) / 5.52 = 0.30,
    # dearer than the night's 0.22: the night's last minutes charge it instead.
    night = datetime(2026, 6, 2, 6, 0, tzinfo=TZ)
    leave = night + timedelta(hours=1.5)
    half = timedelta(minutes=30)
    sun = [Sun(night + i * half, night + (i + 1) * half, e)
           for i, e in enumerate((0.51, 0.96, 0.90))]
    tou = hourly([0.22, 0.34], night)
    feed = [Slot(night, leave, 0.08)]
    now = night + timedelta(minutes=54)
    p = make_plan(now, leave, 0.78, 11.04, tou, sun_slots=sun, feed_in=feed,
                  min_power_kw=4.14)
    assert p.charge_now and p.grid_start <= now
    assert p.sun_kwh < 0.3  # 06:54-07:00's at most, not 07:00's
    # on a flat 0.30 that blend (0.26) is cheaper than the grid alone: the plan counts on it
    flat = hourly([0.30, 0.30], night)
    q = make_plan(now, leave, 0.78, 11.04, flat, sun_slots=sun, feed_in=feed, min_power_kw=4.14)
    assert q.sun_kwh > 0.5 and not q.charge_now  # 06:54-07:00 has 0.19 kWh of sun


def test_pv_forecasts_become_surplus_by_the_period():
    solcast = [{"period_start": "2026-06-01T12:00:00+02:00", "pv_estimate": 4.0,
                "pv_estimate10": 2.0},
               {"period_start": "2026-06-01T12:30:00+02:00", "pv_estimate": 0.2}]
    a, b = parse_forecast(solcast, house_w=300)
    assert (a.end - a.start, a.kwh) == (timedelta(minutes=30), pytest.approx(3.7 / 2))
    assert b.kwh == 0.0 and b.end - b.start == timedelta(minutes=30)  # below the house
    watts = {"2026-06-01T12:00:00+02:00": 3000, "2026-06-01T13:00:00+02:00": 1000}
    x, y = parse_forecast(watts, share=0.5)
    assert (x.kwh, y.kwh, y.end - y.start) == (1.5, 0.5, timedelta(hours=1))
    for bad in (None, [], "4.2", [{"period_start": "12:00", "pv_estimate": 1}],
                [{"period_start": "2026-06-01T12:00:00+02:00"}],
                {"2026-06-01T12:00:00+02:00": "nan"}):
        with pytest.raises(ValueError):
            parse_forecast(bad)


def test_the_top_up_does_not_start_for_a_grid_part_smaller_than_its_minimum():
    # an optimistic forecast leaves a grid part of a few Wh that comes and goes: a start
    # for it is stopped a minute later, when the sun has covered it
    t = TopUp(min_grid_kwh=0.5)
    half = blend_price(3000, 4140, 0.30, 0.08)
    assert t.step(0, 0.30, half, 3000 / 4140, forecast=True, grid_kwh=0.04) is False
    assert t.step(10, 0.30, half, 3000 / 4140, forecast=True, grid_kwh=0.6) is True
    assert t.step(20, 0.30, half, 3000 / 4140, forecast=True, grid_kwh=0.3) is True  # goes on
    assert t.step(30, 0.08, half, 3000 / 4140, forecast=True, grid_kwh=0.0) is False


def test_a_kwh_now_from_the_grid_meter():
    # 11 kW charging, 3 kW imported: 8 kW of sun at 0.08, 3 kW at 0.30
    assert import_blend(3000, 11000, 0.30, 0.08) == pytest.approx((8 * 0.08 + 3 * 0.30) / 11)
    assert import_blend(-500, 11000, 0.30, 0.08) == pytest.approx(0.08)  # exporting: all sun
    assert import_blend(20000, 11000, 0.30, 0.08) == pytest.approx(0.30)  # all grid
    assert import_blend(None, 11000, 0.30, 0.08) is None
    assert import_blend(3000, 0, 0.30, 0.08) is None  # not charging
    assert import_blend(3000, 11000, None, 0.08) is None


def test_the_loss_guard_stops_a_ride_once_it_lost_its_allowance_and_holds_the_stop():
    g = LossGuard(max_loss=0.01)
    # a cloud on 3 phases: 4.14 kW at 6 A, 3 kW of it imported: 0.239 a kWh against the
    # plan's 0.08, so 0.66 an hour lost: 0.01 in 55 s
    blend = import_blend(3000, 4140, 0.30, 0.08)
    assert not g.step(0, 0.08, blend, True, 4140)
    assert not g.step(50, 0.08, blend, True, 4140)
    assert g.step(60, 0.08, blend, True, 4140)
    assert g.step(70, 0.08, None, False, 0.0)  # the stop is asked for a minute
    assert not g.step(125, 0.08, None, False, 0.0)  # then the solar node decides
    # a short cloud is ridden: the loss starts again from nothing
    assert not g.step(130, 0.08, blend, True, 4140)
    assert not g.step(170, 0.08, blend, True, 4140)
    assert not g.step(180, 0.08, 0.085, True, 4140)  # within the margin: no loss
    assert not g.step(220, 0.08, blend, True, 4140)
    # 1 phase: 1.38 kW at 6 A, 0.5 kW imported, 0.11 an hour: it rides for 5 minutes
    h = LossGuard(max_loss=0.01)
    small = import_blend(500, 1380, 0.30, 0.08)
    assert not any(h.step(t, 0.08, small, True, 1380) for t in range(0, 320, 10))
    assert h.step(340, 0.08, small, True, 1380)
    # without a plan price or a price now it never stops anything
    assert not LossGuard(0.0).step(0, None, 0.3, True, 4140)
    assert not LossGuard(0.0).step(0, 0.08, None, True, 4140)


def test_with_ample_sun_ahead_the_loss_guard_stops_a_ride_sooner():
    # the same cloud as above (0.66 an hour lost on 3 phases): with three times the need
    # still forecast before departure a ride stops after 0.005 (28 s), else after 0.02 (110 s)
    blend = import_blend(3000, 4140, 0.30, 0.08)
    g = LossGuard(ample_sun=3.0, ample_loss=0.005)
    assert not any(g.step(t, 0.08, blend, True, 4140, sun_ratio=3.0) for t in range(0, 30, 10))
    assert g.step(30, 0.08, blend, True, 4140, sun_ratio=3.0)
    h = LossGuard(max_loss=0.02, ample_sun=3.0, ample_loss=0.005)
    assert not any(h.step(t, 0.08, blend, True, 4140, sun_ratio=2.9) for t in range(0, 110, 10))
    assert h.step(110, 0.08, blend, True, 4140, sun_ratio=2.9)
    # a stop_loss set below the ample one stays the allowance: ample sun never rides longer
    assert LossGuard(0.0005).allowance(12.0) == 0.0005
    raised = LossGuard(max_loss=0.02)
    assert raised.allowance(3.0) == LossGuard.ample_loss < raised.allowance(2.9)
    # the defaults are the same: the ample-sun rule acts only for a stop_loss set higher
    assert LossGuard().allowance(3.0) == LossGuard().allowance(2.9) == LossGuard.max_loss


def test_the_sun_before_departure_counts_the_part_of_each_period_in_it():
    noon = datetime(2026, 6, 1, 12, 0, tzinfo=TZ)
    sun = [Sun(noon + timedelta(hours=h), noon + timedelta(hours=h + 1), 2.0) for h in range(4)]
    assert sun_before(sun, noon, noon + timedelta(hours=4)) == pytest.approx(8.0)
    assert sun_before(sun, noon + timedelta(minutes=30), noon + timedelta(hours=2)) \
        == pytest.approx(3.0)  # half of 12:00, all of 13:00
    assert sun_before(sun, noon, None) == 0.0  # no departure
    assert sun_before(None, noon, noon + timedelta(hours=4)) == 0.0
    assert sun_ratio(8.0, 4.0) == 2.0 and sun_ratio(8.0, 0.0) == 0.0
    assert sun_ratio(None, 4.0) == 0.0


def test_the_full_power_is_what_the_car_takes_at_the_limit():
    full = FullPower(min_kw=1.38)
    assert full.kw(11.04) == 11.04 and not full.measured  # nothing measured yet
    full.observe(7, 16, 6, 4140.0)  # a ride at 6 A is no full-power reading
    assert full.kw(11.04) == 11.04
    full.observe(7, 16, 16, 0.0)  # the car not drawing yet
    assert full.kw(11.04) == 11.04
    full.observe(7, 16, 16, 4140.0)  # the limit written, the reading still from before
    assert full.kw(11.04) == pytest.approx(4.14)  # for now: earlier, never late
    full.observe(7, 16, 16, 8000.0)  # ramping up
    full.observe(7, 16, 16, 10690.0)  # 16 A x 3 at 222-223 V
    full.observe(7, 16, 16, 10500.0)  # the highest reading counts
    assert full.measured and full.kw(11.04) == pytest.approx(10.69)
    assert full.kw(7.0) == 7.0  # never above the nominal
    full.observe(7, 10, 10, 6700.0)  # a new limit starts again
    assert full.kw(6.9) == pytest.approx(6.7)
    full.observe(8, 10, 10, 2300.0)  # a new session: a car on one phase of a 3-phase THOR
    assert full.kw(6.9) == pytest.approx(2.3)
    full.observe(8, 10, 10, float("nan"))  # no number, no reading
    assert full.kw(6.9) == pytest.approx(2.3)
    full.observe(None, 10, 10, 2300.0)
    assert not full.measured and full.kw(6.9) == 6.9


def test_a_car_that_takes_less_than_the_nominal_starts_earlier():
    # 10 kWh by 07:00: at the nominal 11 kW the grid part starts at 06:03; a car measured at
    # 3.6 kW (one phase) needs 2 h 49 min with the margin, so the plan starts at 04:11
    nominal = make_plan(T0, DEPART, 10, KW, hourly([0.3] * 13))
    one_phase = make_plan(T0, DEPART, 10, 3.6, hourly([0.3] * 13))
    assert nominal.grid_start == T0 + timedelta(hours=12, minutes=3)
    assert one_phase.grid_start == T0 + timedelta(hours=10, minutes=11)
