"""bench/money.py's pieces: the ideal, the reference, the tariffs (and a tiny run)."""

from __future__ import annotations

import pytest

from bench.money import (STEP, Scenario, ideal, main, reference_cost, spot_prices, tariff,
                         thor_bound)

PMAX = 3680.0  # 16 A, 1 phase


def test_the_ideal_takes_surplus_first_then_the_cheapest_grid():
    sc = Scenario("t", 0.0, 2.0, battery_kwh=10, soc_from=0, soc_to=50, efficiency=1.0)  # 5 kWh
    n = int(2 * 3600 / STEP)
    surplus = [2070.0 if i < n // 2 else 0.0 for i in range(n)]  # 9 A of sun in hour one
    imp, exp = [0.40, 0.20], [0.08, 0.08]
    out = ideal(sc, surplus, imp, exp, PMAX)
    assert out.solar_kwh == pytest.approx(2.07, abs=0.01) and out.short_kwh == 0
    # the other 2.93 kWh: the second hour's 0.20 (3.68 kWh fit), never the 0.40 hour
    assert out.grid_kwh["night"] == pytest.approx(2.93, abs=0.01)
    assert out.cost == pytest.approx(2.07 * 0.08 + 2.93 * 0.20, abs=0.005)


def test_the_ideal_keeps_to_whole_amperes_from_6_a():
    # 3 A of sun (690 W) only: 6 A takes 3 A from the grid; 10 kWh need, one hour each
    sc = Scenario("t", 0.0, 4.0, battery_kwh=10, soc_from=0, soc_to=20, efficiency=1.0)
    n = int(4 * 3600 / STEP)
    out = ideal(sc, [690.0] * n, [0.30] * 4, [0.08] * 4, PMAX)
    # at 6 A (1.38 kW) half of it is sun: the 2 kWh come half from the sun, at 0.19 a kWh
    assert out.solar_kwh == pytest.approx(1.0, abs=0.01)
    assert out.cost == pytest.approx(1.0 * 0.08 + 1.0 * 0.30, abs=0.005)


def test_the_reference_charges_at_once_from_the_grid_and_a_shortfall_costs():
    sc = Scenario("t", 0.0, 1.0, battery_kwh=10, soc_from=0, soc_to=50, efficiency=1.0)
    cost = reference_cost(sc, [0.30], PMAX)  # 3.68 kWh fit, 1.32 short at 0.60
    assert cost == pytest.approx(3.68 * 0.30 + 1.32 * 0.60, rel=1e-3)


def test_tariff_shapes():
    imp, exp = tariff("tou", 24, [])
    assert imp[2] == 0.22 and imp[12] == 0.34 and imp[23] == 0.22 and exp[5] == 0.08
    spot = spot_prices(1, 1, [1.0])
    assert spot[19] > spot[2] > spot[13]  # evening peak, night plateau, sunny-noon dip
    imp, exp = tariff("dynamic", 24, spot)
    assert imp[13] == pytest.approx(spot[13] + 0.15) and exp == spot
    assert tariff("nofeedin", 3, [])[1] == [0.0] * 3


def test_a_tiny_run_gives_every_controller_a_row():
    rows = main(["--kinds", "clear", "--per-kind", "1", "--phases", "1", "--scenarios", "home",
                 "--tariffs", "flat"])
    assert {r["controller"] for r in rows} == {"ideal", "baseline", "pack"}
    by = {r["controller"]: r for r in rows}
    assert by["ideal"]["savings"] >= by["pack"]["savings"] - 1e-6
    assert by["ideal"]["savings"] >= by["baseline"]["savings"] - 1e-6
    assert all(r["short_kwh"] < 0.01 for r in rows)  # a sunny day at home: target met


def test_the_thor_bound_is_the_ideal_without_the_thors_rules():
    sc = Scenario("t", 0.0, 2.0, battery_kwh=10, soc_from=0, soc_to=50, efficiency=1.0)
    n = int(2 * 3600 / STEP)
    surplus = [2070.0 if i < n // 2 else 0.0 for i in range(n)]
    imp, exp = [0.40, 0.20], [0.08, 0.08]
    free = thor_bound(sc, surplus, imp, exp, PMAX, start_steps=0, hold_steps=0)
    assert free == pytest.approx(ideal(sc, surplus, imp, exp, PMAX).cost, abs=0.005)
    # one start (20 s of nothing) and the 15-s spacing cost next to nothing on a calm day
    assert thor_bound(sc, surplus, imp, exp, PMAX) == pytest.approx(free, abs=0.01)


def test_the_thor_bound_cannot_follow_a_10_s_flicker():
    # sun of 16 A every other step, 3.68 kWh in all: the ideal takes the 3 kWh of need from
    # it. A THOR can't: a current held 20 s takes the grid half the time, and a start takes
    # 20 s, so stopping for each dark step leaves 3 of 4 steps without charging
    sc = Scenario("t", 0.0, 2.0, battery_kwh=10, soc_from=0, soc_to=30, efficiency=1.0)
    n = int(2 * 3600 / STEP)
    surplus = [PMAX if i % 2 else 0.0 for i in range(n)]
    imp, exp = [0.30, 0.30], [0.08, 0.08]
    best = ideal(sc, surplus, imp, exp, PMAX).cost
    assert best == pytest.approx(3 * 0.08, abs=0.005)
    bound = thor_bound(sc, surplus, imp, exp, PMAX)
    assert best + 0.15 < bound < 3 * 0.30  # at least 0.7 kWh more from the grid
    # a price per start only raises the bound
    assert thor_bound(sc, surplus, imp, exp, PMAX, start_cost=0.05) >= bound - 1e-9


def test_no_controller_saves_more_than_the_thor_bound():
    rows = main(["--kinds", "cloudy", "--per-kind", "1", "--phases", "1", "--scenarios",
                 "home", "--tariffs", "flat", "--bound"])
    by = {r["controller"]: r["savings"] for r in rows}
    assert by["bound"] <= by["ideal"] + 0.01
    assert by["pack"] <= by["bound"] + 1e-6 and by["baseline"] <= by["bound"] + 1e-6


def test_the_thor_model_takes_a_write_when_it_is_due_not_at_the_next_step():
    """The pack's writer sleeps until the queue's due time. On the bench's 10-s grid a
    write put at t (settle 1 s) used to wait for the next step, where the next decision
    put a newer value and restarted the settle: a rising surplus held the old current
    for 30 s."""
    from bench.solar import Thor
    from growatt_thor.thor.writequeue import (CONFIG, QueueSettings, Request, WriteQueue)

    class Tally:
        writes = switches = 0

    q = WriteQueue(QueueSettings(spacing=15.0, settle=1.0, command_spacing=2.0))
    q.on_connect(-100.0)
    thor, tally = Thor(setpoint=6, felt=6), Tally()
    for t, amps in ((0.0, 9), (STEP, 12), (2 * STEP, 16)):
        q.put(Request("G_MaxCurrent", CONFIG, "ChangeConfiguration", str(amps)), t,
              current=str(thor.setpoint))
        thor.serve(q, t, tally, within=STEP - 1e-6)
        if t == 0.0:
            assert thor.setpoint == 9  # at 1 s, within the step it was asked in
    # 9 at 1 s; 12 at 16.5 s (15 s after the first answer), not held back by the next
    # decision; 16 then waits for the spacing
    assert tally.writes == 2
    assert thor.setpoint == 12
    assert thor.pending[-1] == (21.5, 12)  # the car follows 5 s after the write
    thor2, q2 = Thor(setpoint=6, felt=6), WriteQueue(QueueSettings(settle=1.0))
    q2.on_connect(-100.0)
    q2.put(Request("G_MaxCurrent", CONFIG, "ChangeConfiguration", "9"), 0.0, current="6")
    assert thor2.serve(q2, 0.0, Tally()) is None  # without ``within``: not yet due
