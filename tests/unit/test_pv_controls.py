"""The charger's own solar mode, boost, tariff: every wire value and every refusal."""

from __future__ import annotations

from datetime import datetime

import pytest

from growatt_thor.thor import controls as c
from growatt_thor.thor.controls import BadValue
from growatt_thor.thor.writequeue import CONFIG, Request, WriteQueue


@pytest.mark.parametrize(("key", "value", "wire"), [
    ("G_SolarMode", "Off", "1&0"), ("G_SolarMode", "pv linkage", "1&1"),
    ("G_SolarMode", "PV linkage plus", "1&2"), ("G_SolarMode", "1&2", "1&2"),
    ("G_SolarLimitPower", 1.4, "1.4"), ("G_SolarLimitPower", "1.32", "1.32"),
    ("G_SolarLimitPower", 0, "0"), ("G_SolarLimitPower", 22, "22"),
    ("G_SolarBoost", "Off", "1&Disable"), ("G_SolarBoost", "manual", "1&ManualBoost"),
    ("G_SolarBoost", "Smart", "1&SmartBoost"),
    ("G_PeriodTime", "13:00-15:00", "1&time1=13:00-15:00"),
    ("G_PeriodTime", ("9:05:00", "23:59"), "1&time1=09:05-23:59"),
    ("G_OffPeakEnable", "on", "1&Enable"), ("G_OffPeakEnable", False, "1&Disable"),
    ("G_ExternalSamplingCurWring", "Power meter", "1"), ("G_ExternalSamplingCurWring", 0, "0"),
    ("G_ExternalSamplingCurWring", "ct 3000:1", "2"), ("G_ExternalSamplingCurWring", "2.0", "2"),
    ("G_PowerMeterAddr", 2, "2"), ("G_PowerMeterAddr", "247", "247"),
    ("G_PowerMeterType", "Eastron SDM630 (3-phase)", "4"), ("G_PowerMeterType", 11, "11"),
    ("G_FullContinueChargeEnable", True, "Enable"),
    ("G_FullContinueChargeEnable", "off", "Disable"),
    ("G_TimeSharingPrice", 0.23, "time1=00:00-23:59&price1=0.23"),
    ("G_TimeSharingPrice", "-0.05", "time1=00:00-23:59&price1=-0.05"),
    ("G_ChargerRate", 1, "1.00"),
    ("solar_target_data", {"energy": 12.5, "by": "2026-12-02 07:30"},
     "connectorid=1&contime=2026-12-02 07:30&energy=12.5"),
    ("solar_target_data", {"energy": "200", "by": datetime(2026, 12, 2, 7, 5)},
     "connectorid=1&contime=2026-12-02 07:05&energy=200.0"),
    ("solar_target_data", {"energy": 0.1, "by": "2026-12-02T07:30:00"},
     "connectorid=1&contime=2026-12-02 07:30&energy=0.1"),
])
def test_wire_values(key, value, wire):
    assert c.to_wire(key, value, 16) == (wire, "")
    c.check_outgoing(key, wire, 16)  # and the last guard lets it go


@pytest.mark.parametrize(("key", "value", "why"), [
    ("G_SolarMode", "2", "not one of"), ("G_SolarMode", "solar", "not one of"),
    ("G_SolarLimitPower", 22.1, "outside 0..22"), ("G_SolarLimitPower", -1, "outside"),
    ("G_SolarLimitPower", "nan", "not a number"), ("G_SolarLimitPower", 1.234, "steps"),
    ("G_SolarBoost", "Turbo", "not one of"),
    ("G_PeriodTime", "25:00-26:00", "not a time"), ("G_PeriodTime", "13:00", "start and stop"),
    ("G_OffPeakEnable", "maybe", "on/off"),
    ("G_ExternalSamplingCurWring", 3, "not one of"),
    ("G_PowerMeterAddr", 0, "outside"), ("G_PowerMeterAddr", 248, "outside"),
    ("G_PowerMeterAddr", 2.5, "steps"), ("G_PowerMeterType", "Eastron SDM630", "not one of"),
    ("G_PowerMeterType", 8, "not one of"),
    ("G_TimeSharingPrice", 2.5, "outside"), ("G_TimeSharingPrice", 0.235, "steps"),
    ("solar_target_data", {"energy": 0, "by": "2026-12-02 07:30"}, "outside 0.1..200"),
    ("solar_target_data", {"energy": 200.1, "by": "2026-12-02 07:30"}, "outside"),
    ("solar_target_data", {"energy": 1.25, "by": "2026-12-02 07:30"}, "steps of 0.1"),
    ("solar_target_data", {"energy": 5, "by": "tomorrow"}, "not a date and time"),
    ("solar_target_data", {"energy": 5, "by": "2026-13-02 07:30"}, "not a date"),
    ("solar_target_data", {"energy": 5, "by": "2026-12-02 24:30"}, "not a time"),
    ("solar_target_data", 5, "not an energy and a time"),
    ("G_WifiPassword", "x", "not a setting"),
])
def test_refusals(key, value, why):
    with pytest.raises(BadValue, match=why):
        c.to_wire(key, value, 16)


def test_charger_values_become_helper_values():
    assert c.helper_value("G_SolarMode", "1&2") == "PV linkage plus"
    assert c.helper_value("G_SolarBoost", "1&ManualBoost") == "Manual"
    assert c.helper_value("G_SolarLimitPower", "1.32") == 1.32
    assert c.helper_value("G_PeriodTime", "1&time1=13:00-15:00") == ("13:00:00", "15:00:00")
    assert c.helper_value("G_OffPeakEnable", "1&Enable") is True
    assert c.helper_value("G_OffPeakEnable", "1&Disable") is False
    assert c.helper_value("G_ExternalSamplingCurWring", "1") == "Power meter"
    assert c.helper_value("G_PowerMeterAddr", "2") == 2.0
    assert c.helper_value("G_TimeSharingPrice", "time1=00:00-23:59&price1=0.23") == 0.23
    with pytest.raises(ValueError):
        c.helper_value("G_TimeSharingPrice", "garbage")


def test_boost_steps_in_the_apps_order_and_checked_first():
    now = datetime(2026, 12, 1, 22, 0)
    assert c.boost_steps("Off") == [("G_SolarBoost", "1&Disable")]
    assert c.boost_steps("Manual", ("12:00", "14:30")) == [
        ("G_SolarBoost", "1&ManualBoost"), ("G_PeriodTime", ("12:00", "14:30"))]
    smart = c.boost_steps("Smart", energy_kwh=10, by="2026-12-02 07:30", now_local=now)
    assert [k for k, _ in smart] == ["G_SolarBoost", "solar_target_data"]
    with pytest.raises(BadValue, match="not in the future"):
        c.boost_steps("Smart", energy_kwh=10, by="2026-12-01 21:59", now_local=now)
    with pytest.raises(BadValue, match="window"):
        c.boost_steps("Manual")
    with pytest.raises(BadValue, match="outside"):
        c.boost_steps("Smart", energy_kwh=500, by="2026-12-02 07:30", now_local=now)


def test_a_group_step_keeps_its_group_when_coalesced_and_is_cancelled_with_it():
    q = WriteQueue()
    a = Request("G_SolarBoost", CONFIG, "ChangeConfiguration", "1&ManualBoost",
                group="g", step=1)
    b = Request("G_PeriodTime", CONFIG, "ChangeConfiguration", "1&time1=12:00-13:00",
                group="g", step=2)
    q.put(a, 0.0)
    q.put(b, 0.0)
    newer = q.put(Request("G_PeriodTime", CONFIG, "ChangeConfiguration",
                          "1&time1=12:00-14:00"), 0.5)
    assert (newer.group, newer.step) == ("g", 2)
    assert [r.describe() for r in q.cancel_group("g")] == [
        "G_SolarBoost=1&ManualBoost", "G_PeriodTime=1&time1=12:00-14:00"]
    assert q.pending == {}
