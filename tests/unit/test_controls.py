"""Wire values of the writable settings, and the installation limit under random input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growatt_thor.thor import controls
from growatt_thor.thor.controls import BadValue


@pytest.mark.parametrize("key,value,wire", [
    ("G_MaxCurrent", 16, "16"),
    ("G_MaxCurrent", "10.9", "10"),  # rounded down, never up
    ("G_ExternalLimitPower", 10.0, "10"),
    ("G_ExternalLimitPower", "7.25", "7.2"),
    ("G_ExternalLimitPowerEnable", "on", "1"),
    ("G_ExternalLimitPowerEnable", False, "0"),
    ("G_ChargerMode", "Plug & Charge", "1"),
    ("G_ChargerMode", "3", "3"),
    ("G_AutoChargeTime", ("23:01:00", "5:59"), "23:01-05:59"),
    ("G_AutoChargeTime", "23:00-05:59", "23:00-05:59"),
    ("G_LCDCloseEnable", "on", "Disable"),  # display on: never switch it off
    ("G_LCDCloseEnable", "off", "Enable"),
])
def test_wire_values_are_what_the_growatt_app_wrote(key, value, wire):
    assert controls.to_wire(key, value, 16) == (wire, "")


@pytest.mark.parametrize("key,value", [
    ("G_MaxCurrent", "abc"), ("G_MaxCurrent", float("nan")), ("G_MaxCurrent", True),
    ("G_ExternalLimitPower", 0.2), ("G_ExternalLimitPowerEnable", "maybe"),
    ("G_ChargerMode", "Turbo"), ("G_AutoChargeTime", ("25:00", "05:00")),
    ("G_AutoChargeTime", "tonight"), ("G_WifiPassword", "x"),
])
def test_bad_values_are_refused_with_a_message(key, value):
    with pytest.raises(BadValue) as err:
        controls.to_wire(key, value, 16)
    assert str(err.value)


def test_clamping_says_what_it_did():
    assert controls.current_to_wire(40, 16) == (
        "16", "40 A is above the installation limit; clamped to 16 A")
    assert controls.current_to_wire(0, 16)[0] == "6"


anything = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.booleans(), st.none(),
    st.floats(0, 64).map(lambda f: f"{f:.3f}"), st.decimals(allow_nan=True).map(str))


@settings(max_examples=600, deadline=None)
@given(value=anything, limit=st.integers(-5, 100))
def test_no_input_gives_a_current_outside_6_to_the_limit(value, limit):
    effective = min(max(limit, 6), 32)
    try:
        wire, _ = controls.to_wire("G_MaxCurrent", value, limit)
    except BadValue:
        return
    amps = float(wire)
    assert amps == int(amps) and 6 <= amps <= effective
    controls.check_outgoing("G_MaxCurrent", wire, effective)  # the last guard agrees


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=10), limit=st.integers(6, 32))
def test_the_last_guard_refuses_every_unsafe_current(value, limit):
    try:
        controls.check_outgoing("G_MaxCurrent", value, limit)
    except BadValue:
        return
    amps = float(value)
    assert math.isfinite(amps) and 6 <= amps <= limit and amps == int(amps)


def test_helper_values_follow_the_charger():
    assert controls.helper_value("G_MaxCurrent", "15.00") == 15.0
    assert controls.helper_value("G_ExternalLimitPowerEnable", "1") is True
    assert controls.helper_value("G_ChargerMode", "3") == "HA + RFID (app)"
    assert controls.helper_value("G_AutoChargeTime", "23:00-05:59") == ("23:00:00", "05:59:00")
    assert controls.helper_value("G_LCDCloseEnable", "Enable") is False
    assert controls.same_value("G_MaxCurrent", "16.00", "16")
    assert controls.same_helper_value("16.0", 16)
    assert controls.same_helper_value("on", True)


def test_the_package_file_defines_every_default_helper():
    import yaml
    from growatt_thor.standalone import PACKAGE

    package = yaml.safe_load(PACKAGE.read_text())
    defined = {f"{d}.{n}" for d, entries in package.items() for n in entries}
    export = {"input_datetime.growatt_thor_export_from", "input_datetime.growatt_thor_export_to",
              "input_button.growatt_thor_export_sessions"}  # the session log's
    from growatt_thor.solar_node import SETTING_HELPERS
    solar = {f"input_number.growatt_thor_{h}" for h in SETTING_HELPERS.values()}
    solar |= {"input_select.growatt_thor_solar_mode", "input_select.growatt_thor_solar_phases"}
    from growatt_thor.plan_node import helper_ids as plan_ids

    plan = set(plan_ids("growatt_thor").values())
    assert set(controls.helper_ids().values()) | export | solar | plan == defined
    modes = package["input_select"]["growatt_thor_charger_mode"]["options"]
    assert modes == list(controls.CHARGER_MODES.values())
