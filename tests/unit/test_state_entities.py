import json
from datetime import datetime, UTC
from pathlib import Path

import pytest

from growatt_thor.thor.config import ConfigError, HubConfig, parse_args
from growatt_thor.thor.entities import ENTITIES, render
from growatt_thor.thor.state import ChargerState, measurements_from_meter_values
from growatt_thor.thor.storage import TransactionIds

# A MeterValues payload exactly as captured from the THOR.
CAPTURED = json.loads('''{"connectorId": 1, "transactionId": 1966523, "meterValue": [{"timestamp":
"2025-12-18T23:08:10", "sampledValue": [{"value": "1329", "context": "Sample.Periodic", "format":
"Raw", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}, {"value": "15.09", "context":
"Sample.Periodic", "format": "Raw", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
{"value": "14.91", "context": "Sample.Periodic", "format": "Raw", "measurand": "Current.Import",
"phase": "L2", "unit": "A"}, {"value": "14.87", "context": "Sample.Periodic", "format": "Raw",
"measurand": "Current.Import", "phase": "L3", "unit": "A"}, {"value": "223.4", "context":
"Sample.Periodic", "format": "Raw", "measurand": "Voltage", "phase": "L1", "unit": "V"},
{"value": "222.2", "context": "Sample.Periodic", "format": "Raw", "measurand": "Voltage", "phase":
"L2", "unit": "V"}, {"value": "222.4", "context": "Sample.Periodic", "format": "Raw", "measurand":
"Voltage", "phase": "L3", "unit": "V"}, {"value": "3404", "context": "Sample.Periodic", "format":
"Raw", "measurand": "Power.Active.Import", "phase": "L1", "unit": "W"}, {"value": "3315",
"context": "Sample.Periodic", "format": "Raw", "measurand": "Power.Active.Import", "phase": "L2",
"unit": "W"}, {"value": "3317", "context": "Sample.Periodic", "format": "Raw", "measurand":
"Power.Active.Import", "phase": "L3", "unit": "W"}, {"value": "15.0", "context":
"Sample.Periodic", "format": "Raw", "measurand": "Temperature", "unit": "Celsius"}]}]}''')


def test_meter_values_mapping_of_the_captured_frame():
    m = measurements_from_meter_values(CAPTURED["meterValue"])
    assert m == {"energy_wh": 1329, "current_l1": 15.09, "current_l2": 14.91, "current_l3": 14.87,
                 "voltage_l1": 223.4, "voltage_l2": 222.2, "voltage_l3": 222.4,
                 "power_l1": 3404, "power_l2": 3315, "power_l3": 3317, "temperature": 15.0,
                 "power": 3404 + 3315 + 3317}


def test_units_are_normalised_and_bad_values_skipped():
    m = measurements_from_meter_values([{"sampled_value": [
        {"value": "1.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
        {"value": "2", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "n/a", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
        {"value": "300", "measurand": "Temperature", "unit": "K"}]}])
    assert m["energy_wh"] == 1500 and m["power"] == 2000 and "voltage_l1" not in m
    assert round(m["temperature"], 2) == 26.85


def test_entity_table_renders_strings_with_ha_attributes():
    st = ChargerState("X")
    st.on_connect(datetime.now(UTC))
    st.on_status({"connectorId": 1, "status": "Charging", "errorCode": "NoError", "info": ""})
    st.on_meter_values(CAPTURED)
    ents = render(st)
    assert len(ents) == len(ENTITIES)
    assert ents["sensor.growatt_thor_ev_charger_power"][0] == "10036"
    assert ents["sensor.growatt_thor_ev_charger_energy"][0] == "1.329"
    assert ents["sensor.growatt_thor_ev_charger_transaction_id"][0] == "1966523"
    assert ents["binary_sensor.growatt_thor_ev_charger_connected"][0] == "on"
    for eid, (state, attrs) in ents.items():
        assert isinstance(state, str), eid
        assert attrs["friendly_name"].startswith("Growatt THOR EV charger")
        assert all(v not in (0, False, None) for v in attrs.values()), eid
    energy = ents["sensor.growatt_thor_ev_charger_energy"][1]
    assert energy["state_class"] == "total_increasing" and energy["unit_of_measurement"] == "kWh"


def test_stop_zeroes_flows_and_keeps_energy():
    st = ChargerState("X")
    st.on_start(7)
    st.on_meter_values(CAPTURED)
    st.on_stop(7, 0)  # PowerLoss stop with meterStop 0 keeps the best evidence
    assert st.meter["power"] == 0 and st.meter["energy_wh"] == 1329 and st.transaction_id is None
    st.on_disconnect()
    assert st.status == "Unavailable" and not st.connected


def test_transaction_ids_survive_a_restart(tmp_path: Path):
    a = TransactionIds(tmp_path / "tx.json")
    first = [a.next() for _ in range(3)]
    b = TransactionIds(tmp_path / "tx.json")  # a new process
    assert b.next() > max(first) and len(set(first)) == 3


def test_config_errors_name_every_bad_key():
    with pytest.raises(ConfigError) as err:
        parse_args(HubConfig, "hub", {"module": "m", "class": "c", "port": "x", "prot": 1,
                                      "time_zone": "Mars/Base",
                                      "chargers": {"A": {"max_current": 40}}})
    text = str(err.value)
    assert "port" in text and "prot: unknown key" in text and "Mars/Base" in text
    assert "chargers.A.max_current" in text
    ok = parse_args(HubConfig, "hub", {"module": "m", "class": "c", "chargers": {"A": None}})
    assert ok.port == 9000 and ok.chargers["A"].max_current == 16
