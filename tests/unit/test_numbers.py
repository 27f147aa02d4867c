"""Numbers are checked where they enter: no NaN, infinity or impossible energy reaches an
entity or the session CSV, and what a peer can make the session book keep is bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from growatt_thor.thor.dialect import ExternalMeter, SessionRecord
from growatt_thor.thor.sessions import MAX_OPEN_PER_CHARGER, MAX_POWER_W, max_energy_wh
from growatt_thor.thor.state import ChargerState, measurements_from_meter_values
from tests.unit.test_sessions import CID, T0, book, meter, rows, started, stopped


def sampled(value: str, measurand: str = "Energy.Active.Import.Register", **kw) -> list:
    return [{"sampledValue": [{"value": value, "measurand": measurand, **kw}]}]


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-inf", "1e308", "-5"])
def test_implausible_readings_are_refused_and_named(value):
    refused: list[str] = []
    assert measurements_from_meter_values(sampled(value), refused) == {}
    assert refused == [f"Energy.Active.Import.Register={value!r}"]
    st = ChargerState(CID)
    st.on_start(1001)
    st.on_meter_values({"transactionId": 1001, "meterValue": sampled(value)})
    assert st.meter["energy_wh"] == 0.0  # the last plausible value stays


def test_plausible_readings_pass_and_phases_are_bounded_too():
    m = measurements_from_meter_values(
        sampled("230.1", "Voltage", phase="L1") + sampled("9999", "Voltage", phase="L2")
        + sampled("16", "Current.Import", phase="L1"))
    assert m == {"voltage_l1": 230.1, "current_l1": 16.0}


def test_an_absurd_meter_stop_never_becomes_the_energy_entity():
    st = ChargerState(CID)
    st.on_start(1001)
    st.on_stop(1001, 999_999_999)
    assert st.meter["energy_wh"] == 0.0


def test_nan_readings_then_a_power_loss_stop_give_a_sane_row():
    b = book()
    started(b)
    for value in ("NaN", "Infinity", "1e308"):
        b.on_meter(CID, {"transaction_id": 1001, "values": measurements_from_meter_values(
            sampled(value))}, T0)  # what the link hands on: nothing
    stopped(b, 0, reason="PowerLoss")
    (row,) = rows(b, T0 + timedelta(hours=8))
    assert row["energy_kwh"] == "0.000"


def test_energy_beyond_what_the_charger_can_deliver_is_ignored():
    b = book()
    started(b)
    meter(b, 5000)
    stopped(b, 999_999_999, at=T0 + timedelta(hours=1))
    (row,) = rows(b, T0 + timedelta(hours=2))
    assert row["energy_kwh"] == "5.000"  # the meter values, not meterStop
    assert any("more than the charger can deliver" in n for n in b.notes)
    assert max_energy_wh(T0, T0 + timedelta(hours=1)) == MAX_POWER_W + 100

    only_absurd = book()
    started(only_absurd, tx=1002)
    stopped(only_absurd, 10**9, tx=1002, at=T0 + timedelta(minutes=10))
    (row,) = rows(only_absurd, T0 + timedelta(hours=2))
    assert row["energy_kwh"] == "" and row["cost"] == ""  # unknown, never absurd


def test_a_stop_nothing_backs_makes_no_row():
    b = book()
    stopped(b, 5000, tx=424242)  # never started here, no readings, no record
    assert rows(b, T0 + timedelta(hours=9)) == []
    assert any("no row" in n for n in b.notes)


def test_made_up_transaction_ids_in_meter_values_are_bounded():
    b = book()
    started(b)  # the honest session
    for tx in range(5000, 8000):
        meter(b, 100, tx=tx)
    unseen = [k for k in b.open if k != f"{CID}|1001"]
    assert len(unseen) <= MAX_OPEN_PER_CHARGER and f"{CID}|1001" in b.open
    meter(b, 7000)
    stopped(b, 7100)
    (row,) = rows(b, T0 + timedelta(hours=8))
    assert row["energy_kwh"] == "7.100"


@pytest.mark.parametrize("bad", ["inf", "nan", "1e400"])
def test_records_and_grid_readings_with_non_finite_numbers_are_refused(bad):
    with pytest.raises(ValueError):
        SessionRecord.parse("currentrecord", f"id=1&starttime=2025-12-18 23:00:09&"
                                             f"endtime=2025-12-19 05:59:05&costenergy={bad}")
    with pytest.raises(ValueError):
        ExternalMeter.parse(f"used=1&wring=1&u-voltage=226&v-voltage=229&w-voltage=227&"
                            f"u-current=1&v-current=2&w-current=0&power={bad}")
