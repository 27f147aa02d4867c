"""The solar surplus decision on hand-made situations (time in seconds)."""

from __future__ import annotations

from growatt_thor.cheap_hours import cheapest_hours
from growatt_thor.thor.solar import SolarController, SolarInput, SolarSettings


def ctl(**kw) -> SolarController:
    base = dict(mode="pv", phases=1, enable_delay_s=60, disable_delay_s=180, smoothing_s=0,
                disable_import_wh=None, enable_backoff=False, enable_threshold_w=0,
                budget_memory_s=None, slow_disable_delay_s=None, calm_enable_delay_s=None)
    return SolarController(SolarSettings(**{**base, **kw}))


def idle(grid: float, **kw) -> SolarInput:
    return SolarInput(grid_power_w=grid, ev_power_w=0, charging=False, plugged=True, **kw)


def charging(grid: float, ev: float, **kw) -> SolarInput:
    return SolarInput(grid_power_w=grid, ev_power_w=ev, charging=True, plugged=True, **kw)


def test_starts_only_after_the_surplus_held_for_the_enable_delay():
    c = ctl()
    d = c.step(idle(-1500), 0)  # 1.5 kW export > 6 A * 230 V = 1.38 kW
    assert (d.charge, d.current) == (None, None)
    assert d.reason == "surplus above 1.38 kW for 0 s of 60 s"
    assert c.step(idle(-1500), 59).charge is None
    d = c.step(idle(-1500), 60)
    assert (d.charge, d.current) == (True, 6)


def test_a_dip_below_the_threshold_restarts_the_wait():
    c = ctl(enable_threshold_w=200)
    c.step(idle(-1700), 0)
    d = c.step(idle(-1500), 30)  # 1.5 kW < 1.38 + 0.2 kW
    assert d.charge is None and "below 1.58 kW" in d.reason
    c.step(idle(-1700), 40)
    assert c.step(idle(-1700), 99).charge is None
    assert c.step(idle(-1700), 100).charge is True


def test_current_follows_the_surplus_in_whole_amperes_within_limits():
    c = ctl(max_current=16)
    # car draws 6 A (1380 W) and 1000 W still go to the grid: 2380 W -> 10 A
    assert c.step(charging(-1000, 1380), 0).current == 10
    assert c.step(charging(-9000, 1380), 10).current == 16
    assert c.step(charging(-1000, 1380, battery_power_w=0, battery_soc=50), 20).current == 10


def test_smoothing_uses_the_lowest_surplus_of_the_window():
    c = ctl(smoothing_s=20)
    assert c.step(charging(-1000, 1380), 0).current == 10
    assert c.step(charging(-3000, 1380), 10).current == 10  # the dip at t=0 still counts
    assert c.step(charging(-3000, 1380), 31).current == 16  # max current


def test_stops_after_the_disable_delay_and_hysteresis_keeps_it_running_meanwhile():
    c = ctl()
    d = c.step(charging(500, 1380), 0)  # importing 500 W at minimum current
    assert (d.charge, d.current) == (None, 6)
    assert "below 1.38 kW for 0 s of 180 s" in d.reason
    assert c.step(charging(-100, 1380), 100).charge is None  # surplus back: timer reset
    c.step(charging(500, 1380), 110)
    assert c.step(charging(500, 1380), 289).charge is None
    assert c.step(charging(500, 1380), 290).charge is False


def test_the_import_budget_stops_a_short_fresh_session_early():
    c = ctl(disable_import_wh=5, max_import_share=0.02)
    c.step(charging(1500, 1380), 0)
    d = c.step(charging(1500, 1380), 10)  # 1380 W from the grid for 10 s: 3.8 Wh
    assert d.charge is None and "4 of 5 Wh imported" in d.reason
    d = c.step(charging(1500, 1380), 20)
    assert d.charge is False and "imported 8 Wh" in d.reason


def test_the_import_budget_counts_grid_import_while_the_car_power_is_not_yet_known():
    # The THOR's first MeterValues of a session can come before the car draws: the
    # estimate says 0 W. Import up to what the setpoint allows is still the car's.
    blind = ctl(disable_import_wh=5, max_import_share=0.0)
    for t in (0, 10):
        d = blind.step(charging(1000, 0, setpoint_a=6), t)
    assert d.charge is None and "3 of 5 Wh imported" in d.reason
    d = blind.step(charging(1000, 0, setpoint_a=6), 20)
    assert d.charge is False and "imported 6 Wh" in d.reason
    unknown = ctl(disable_import_wh=5, max_import_share=0.0)  # no setpoint: nothing counted
    for t in (0, 10, 20):
        d = unknown.step(charging(1000, 0), t)
    assert d.charge is None and "0 of 5 Wh imported" in d.reason


def test_a_start_first_brings_the_current_down_to_the_start_current():
    c = ctl()
    c.step(idle(-1500, setpoint_a=16), 0)
    d = c.step(idle(-1500, setpoint_a=16), 60)  # a car at 16 A would import 2.2 kW
    assert (d.charge, d.current) == (None, 6) and d.reason == "setting 6 A before starting"
    d = c.step(idle(-1500, setpoint_a=6), 75)  # the write went through: start, no new wait
    assert (d.charge, d.current) == (True, 6)


def test_a_deficit_that_came_slowly_stops_at_once_a_sudden_one_waits():
    slow = ctl(slow_disable_delay_s=0, sudden_drop_w=500, drop_window_s=300)
    for t in range(0, 530, 10):  # sunset: the surplus falls 1 W/s from 1.9 kW
        d = slow.step(charging(1380 - 1900 + t, 1380), t)
        assert d.charge is None
    d = slow.step(charging(1380 - 1900 + 530, 1380), 530)  # 1370 W: below 6 A
    assert d.charge is False and d.reason == "stopping: not enough surplus (0 s)"
    sudden = ctl(slow_disable_delay_s=0, sudden_drop_w=500, drop_window_s=300)
    for t in range(0, 300, 10):
        sudden.step(charging(-1000, 1380), t)  # 2.4 kW surplus, then a cloud or a kettle
    d = sudden.step(charging(300, 1380), 300)
    assert d.charge is None and "for 0 s of 180 s" in d.reason
    # still judged by how it began once the 2.4 kW are out of the 300-s window
    assert sudden.step(charging(300, 1380), 470).charge is None
    assert sudden.step(charging(300, 1380), 480).charge is False  # the plain disable delay


def test_a_flat_surplus_dipping_with_the_house_noise_is_not_a_sunset():
    flat = ctl(slow_disable_delay_s=0, sudden_drop_w=500, drop_window_s=300,
               slow_min_decline_w=100)
    for t in range(0, 310, 10):  # 1.45 kW for 5 minutes, 70 W above 6 A
        assert flat.step(charging(1380 - 1450, 1380), t).charge is None
    d = flat.step(charging(1380 - 1370, 1380), 310)  # the fridge starts: 10 W short
    assert d.charge is None and "for 0 s of 180 s" in d.reason
    d = flat.step(charging(1380 - 1370, 1380), 490)
    assert d.charge is False and d.reason == "stopping: not enough surplus (180 s)"


def test_the_budget_memory_lets_a_sunny_stretch_pay_for_a_cloud():
    c = ctl(disable_import_wh=5, max_import_share=0.04, budget_memory_s=1800)
    for t in range(0, 3600, 10):  # an hour at 10 A, all from surplus
        c.step(charging(-920, 1380), t)
    d = c.step(charging(300, 1380), 3600)  # a cloud: 300 W import at 6 A
    for t in range(3610, 3700, 10):
        d = c.step(charging(300, 1380), t)
    assert d.charge is None  # 90 s of 300 W is 7.5 Wh: well inside 5 Wh + 4 % of ~2.3 kWh
    fresh = ctl(disable_import_wh=5, max_import_share=0.04, budget_memory_s=1800)
    for t in range(0, 100, 10):
        d = fresh.step(charging(300, 1380), t)
    assert d.charge is False  # the same cloud right after a start: stop


def test_backoff_doubles_the_enable_delay_after_a_stop():
    c = ctl(enable_backoff=True, disable_delay_s=0)
    assert c.step(charging(500, 1380), 0).charge is False
    c.step(idle(-2000), 10)
    assert c.step(idle(-2000), 129).charge is None
    assert "of 120 s" in c.step(idle(-2000), 100).reason
    assert c.step(idle(-2000), 130).charge is True


def test_battery_keeps_its_surplus_below_the_priority_soc():
    c = ctl(battery_priority_soc=80)
    low = SolarInput(grid_power_w=0, ev_power_w=0, charging=False, plugged=True,
                     battery_power_w=3000, battery_soc=50)
    assert c.available(low) == 0
    high = SolarInput(grid_power_w=0, ev_power_w=0, charging=False, plugged=True,
                      battery_power_w=3000, battery_soc=90)
    assert c.available(high) == 3000
    discharging = SolarInput(grid_power_w=0, ev_power_w=2000, battery_power_w=-2000,
                             battery_soc=90)
    assert c.available(discharging) == 0  # the battery feeding the car is not surplus


def test_modes():
    assert ctl(mode="now").step(idle(2000), 0).current == 16
    assert ctl(mode="now").step(idle(2000), 0).charge is True
    d = ctl(mode="minpv").step(idle(3000), 0)
    assert (d.charge, d.current) == (True, 6)
    assert ctl(mode="minpv").step(charging(-1000, 1380), 0).current == 10
    assert ctl(mode="off").step(charging(5000, 1380), 0).charge is None
    c = ctl()
    c.step(idle(-2000), 0)
    c.settings.mode = "off"  # a mode change resets the timers
    c.step(idle(-2000), 30)
    c.settings.mode = "pv"
    assert c.step(idle(-2000), 70).charge is None


def test_sensor_unavailable_falls_back_safely_and_says_so():
    d = ctl().step(SolarInput(grid_power_w=None, charging=True, ev_power_w=1380), 0)
    assert d.charge is False and "unavailable" in d.reason
    d = ctl(mode="minpv").step(SolarInput(grid_power_w=None, charging=True), 0)
    assert (d.charge, d.current) == (None, 6) and "unavailable" in d.reason
    d = ctl().step(SolarInput(grid_power_w=float("nan"), charging=False), 0)
    assert d.charge is None and "unavailable" in d.reason


def test_no_car_no_start():
    d = ctl(enable_delay_s=0).step(SolarInput(grid_power_w=-5000, plugged=False), 0)
    assert d.charge is None and d.reason == "no car plugged in"


def test_cheapest_hours():
    prices = [0.30] * 24
    prices[3], prices[14], prices[2] = 0.10, 0.05, 0.10
    assert cheapest_hours(prices, 2) == {14, 2}
    assert cheapest_hours(prices, 3) == {14, 2, 3}


def test_ev_power_follows_the_setpoint_unless_the_car_draws_less():
    from growatt_thor.thor.solar import EvPowerEstimate

    e = EvPowerEstimate(phases=1, voltage=230)
    assert e.power(16, charging=False) == 0
    e.report(3680, 16)  # drawing what 16 A allows
    assert e.power(8, charging=True) == 8 * 230  # lowered since: the reading is stale
    assert e.power(16, charging=True) == 16 * 230
    e.report(1000, 16)  # a car that takes 1 kW of 3.7 kW allowed: it limits itself
    assert e.power(16, charging=True) == 1000
    assert e.power(3, charging=True) == 690  # never more than the setpoint allows


def test_after_a_stop_for_the_budget_a_start_waits_until_the_budget_recovers():
    c = ctl(disable_import_wh=5, max_import_share=0.03, budget_memory_s=3600,
            start_headroom_wh=1, disable_delay_s=3600)
    d = None
    for t in range(0, 200, 10):  # 500 W import at 6 A right after a start
        d = c.step(charging(500, 1380), t)
        if d.charge is False:
            break
    assert d.charge is False and "imported" in d.reason
    assert c.budget_left() < 1
    d = c.step(idle(-2000), t + 10)  # the sun is back at once
    for now in range(t + 20, t + 400, 10):
        d = c.step(idle(-2000), now)
        assert d.charge is None
    assert d.reason.startswith("waiting for the import budget: ")
    assert d.reason.endswith("Wh left, 1 Wh needed")
    while d.charge is None:  # the import is forgotten with the 3600-s time constant
        now += 10
        d = c.step(idle(-2000), now)
    assert d.charge is True and c.budget_left() >= 1
    assert now - t < 3600
    without = ctl(disable_import_wh=5, max_import_share=0.03, budget_memory_s=3600,
                  start_headroom_wh=None, disable_delay_s=3600)
    for t2 in range(0, 200, 10):
        if without.step(charging(500, 1380), t2).charge is False:
            break
    for now2 in range(t2 + 10, t2 + 200, 10):
        d = without.step(idle(-2000), now2)
        if d.charge:
            break
    assert d.charge is True and now2 - t2 <= 80  # the plain enable delay


def calm_ctl() -> SolarController:
    return ctl(enable_delay_s=360, calm_enable_delay_s=120, calm_drop_w=500, calm_window_s=600)


def first_start(c: SolarController, surplus) -> tuple[int, str]:
    reason = ""
    for t in range(0, 2000, 10):
        d = c.step(idle(-surplus(t)), t)
        if d.charge:
            return t, reason
        reason = d.reason
    raise AssertionError("never started")


def test_a_calm_rising_sky_starts_after_the_short_delay():
    # a morning: the surplus rises 1 W/s and crosses 1.38 kW at t=380
    t, before = first_start(calm_ctl(), lambda t: 1000 + t)
    assert t == 600  # once 600 s of calm are seen; 120 s after the crossing had passed
    assert before == "surplus above 1.38 kW for 210 s of 360 s"


def test_a_cloud_or_a_falling_surplus_keeps_the_full_delay():
    def cloudy(t):
        return 1000 + t - (600 if 200 <= t < 260 else 0)  # a cloud took 600 W for a minute

    t, before = first_start(calm_ctl(), cloudy)
    assert t == 740 and before == "surplus above 1.38 kW for 350 s of 360 s"
    t, _ = first_start(calm_ctl(), lambda t: 3000 - 0.5 * t)  # evening: falls 300 W in 600 s
    assert t == 360
    t, before = first_start(calm_ctl(), lambda t: 700 + t)  # crosses 1.38 kW at 680 s
    assert t == 800 and before == "surplus above 1.38 kW for 110 s of 120 s (calm sky)"


def test_the_node_takes_its_defaults_from_the_decision():
    from growatt_thor.solar_node import SolarConfig

    cfg = SolarConfig(grid_power_sensor="sensor.grid")
    shared = set(SolarConfig.model_fields) & set(SolarSettings.__dataclass_fields__)
    assert {"calm_enable_delay_s", "start_headroom_wh", "smoothing_s", "budget_memory_s",
            "disable_delay_s", "enable_threshold_w"} <= shared
    d = SolarSettings()
    for key in shared - {"mode", "phases"}:  # the node starts "off" and detects phases
        assert getattr(cfg, key) == getattr(d, key), key
    from growatt_thor.solar_node import PASSED

    assert set(PASSED) == shared - {"mode", "phases"}  # every one reaches the decision


def test_the_ha_package_starts_its_helpers_at_the_decisions_defaults():
    from pathlib import Path

    import yaml

    from growatt_thor.solar_node import SETTING_HELPERS

    package = Path(__file__).resolve().parents[2] / "apps/growatt_thor/growatt_thor/homeassistant" \
        / "growatt_thor_package.yaml"
    numbers = yaml.safe_load(package.read_text())["input_number"]
    d = SolarSettings()
    for key, helper in SETTING_HELPERS.items():
        assert numbers[f"growatt_thor_{helper}"]["initial"] == getattr(d, key), key


def test_a_sensor_outage_forgets_the_calm_sky():
    c = calm_ctl()
    for t in range(0, 700, 10):
        c.step(idle(-1000), t)  # ten calm minutes below the start level
    c.step(SolarInput(grid_power_w=None, charging=False), 700)
    t0 = 710
    for t in range(t0, t0 + 400, 10):  # back, well above it: the full delay again
        d = c.step(idle(-2000), t)
        if d.charge:
            break
    assert t - t0 == 360


def test_a_running_session_it_lets_go_on_is_a_demand_to_keep_charging():
    """While charging, "no change" is "keep charging" for the arbiter: the plan's stop at
    its target (priority 5) must not win every step after a solar start."""
    from growatt_thor.thor.arbiter import SOLAR, Demand, arbitrate
    c = ctl()
    d = c.step(charging(-1000, 1380), 0)
    assert d.charge is None and d.wants(charging=True) is True
    at_target = Demand("plan", 5, charge=False)
    solar = Demand("solar", SOLAR, charge=d.wants(True), current=d.current)
    assert arbitrate([solar, at_target], 16).charge is True
    # not charging and not starting: no opinion, the plan's "do not charge" stands
    idle_d = ctl().step(idle(-1500), 0)
    assert idle_d.wants(charging=False) is None
    # a stop is a stop
    c2 = ctl(disable_delay_s=0)
    c2.step(charging(500, 1380), 0)
    assert c2.step(charging(500, 1380), 10).wants(charging=True) is False


def test_a_full_car_that_imports_nothing_is_not_stopped_for_lack_of_surplus():
    # the car takes 0 W (full) and 400 W go out: 400 W is less than 6 A, but nothing is
    # imported, so a stop would only be undone by the next start
    c = ctl()
    for t in range(0, 600, 10):
        d = c.step(charging(-400, 0), t)
        assert d.charge is None, d
    assert "nothing imported" in d.reason
    # once the car draws again and the grid imports, the stop rule is back
    c.step(charging(500, 1380), 600)
    assert c.step(charging(500, 1380), 790).charge is False
    # evcc (the baseline's settings) stops the full car like any other
    e = ctl(keep_idle_session=False)
    assert any(e.step(charging(-400, 0), t).charge is False for t in range(0, 600, 10))
