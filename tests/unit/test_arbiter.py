"""thor/arbiter.py: the one rule for several nodes on one charger."""

from __future__ import annotations

from growatt_thor.thor.arbiter import MANUAL, PLAN, SOLAR, Demand, arbitrate


def test_the_highest_priority_with_an_opinion_decides_start_and_stop():
    solar = Demand("solar", SOLAR, charge=False, current=6, reason="no surplus")
    plan = Demand("plan", PLAN, charge=True, current=16, reason="cheapest hour")
    d = arbitrate([solar, plan], limit=16)
    assert (d.charge, d.current, d.by, d.current_by) == (True, 16, "plan", "plan")
    assert d.reason == "cheapest hour"
    # outside the grid hours the plan has no opinion: the solar node decides
    idle_plan = Demand("plan", PLAN, reason="waits for 02:00")
    d = arbitrate([solar, idle_plan], 16)
    assert (d.charge, d.by) == (False, "solar")


def test_equal_priority_charging_wins_and_the_larger_current():
    a = Demand("a", SOLAR, charge=False)
    b = Demand("b", SOLAR, charge=True, current=8)
    assert arbitrate([a, b], 16).charge is True
    c = Demand("c", SOLAR, current=10)
    d = Demand("d", SOLAR, current=12)
    assert arbitrate([c, d], 16).current == 12


def test_the_current_comes_from_another_demand_when_the_decider_names_none():
    plan = Demand("plan", PLAN, charge=True)
    solar = Demand("solar", SOLAR, charge=True, current=9)
    d = arbitrate([plan, solar], 16)
    assert (d.charge, d.current, d.by, d.current_by) == (True, 9, "plan", "solar")


def test_the_installation_limit_is_above_every_demand():
    wild = Demand("user", MANUAL, charge=True, current=63)
    assert arbitrate([wild], limit=13).current == 13
    assert arbitrate([Demand("x", 1, current=2.9)], 16).current == 6
    assert arbitrate([Demand("x", 1, current=float("nan"))], 16).current == 6


def test_no_demand_leaves_the_charger_as_it_is():
    d = arbitrate([Demand("quiet", PLAN)], 16)
    assert (d.charge, d.current, d.by) == (None, None, None)
    assert d.describe() == "no demand"
