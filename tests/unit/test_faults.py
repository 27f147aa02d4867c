"""Faults: the THOR's faultmessage and Faulted status, as data."""

from __future__ import annotations

import pytest

from growatt_thor.thor.dialect import (FAULT_EMERGENCY_STOP, FAULT_EXTERNAL_METER, FAULT_NONE,
                                       FAULT_OTHER, FaultMessage, fault_kind)
from growatt_thor.thor.entities import render
from growatt_thor.thor.state import ChargerState

CID = "XGJ00003214700CA"


@pytest.mark.parametrize("errcode, info, kind", [
    ("100", "", FAULT_EMERGENCY_STOP),
    ("7", "Emergency Stop pressed", FAULT_EMERGENCY_STOP),
    ("12", "485fault", FAULT_EXTERNAL_METER),
    ("12", "485 fault", FAULT_EXTERNAL_METER),
    ("3", "overtemperature", FAULT_OTHER),
])
def test_fault_kinds(errcode, info, kind):
    assert fault_kind(errcode, info) == kind


def test_faultmessage_parses_the_wire_format_with_its_plus_offset():
    msg = FaultMessage.parse("connectorId=1&errcode=100&info=emergency stop"
                             "&time=2026-12-01 10:00:00+01:00")
    assert (msg.connector_id, msg.errcode, msg.info, msg.time, msg.kind) == (
        1, "100", "emergency stop", "2026-12-01 10:00:00+01:00", FAULT_EMERGENCY_STOP)
    for bad in ("connectorId=x&errcode=1", "connectorId=1", 42, None):
        with pytest.raises(ValueError):
            FaultMessage.parse(bad)
    long = FaultMessage.parse("errcode=" + "9" * 500 + "&info=" + "x" * 5000)
    assert len(long.errcode) <= 40 and len(long.info) <= 200  # bounded


def test_fault_entity_appears_with_codes_and_clears_on_a_normal_status():
    st = ChargerState(CID)
    fault = render(st)["sensor.growatt_thor_ev_charger_fault"]
    assert fault[0] == FAULT_NONE
    assert st.on_fault(FaultMessage.parse("connectorId=1&errcode=12&info=485fault&time=t")) \
        == {"fault"}
    changed = st.on_status({"connectorId": 1, "status": "Faulted", "errorCode": "OtherError",
                            "info": "485fault", "vendorErrorCode": "12"})
    assert "fault" in changed
    state, attrs = render(st)["sensor.growatt_thor_ev_charger_fault"]
    assert state == FAULT_EXTERNAL_METER
    assert attrs["errcode"] == "12" and attrs["error_code"] == "OtherError"
    assert attrs["time"] == "t" and attrs["vendor_error_code"] == "12"
    assert "fault" in st.on_status({"connectorId": 1, "status": "Available",
                                    "errorCode": "NoError"})
    assert st.fault is None and render(st)["sensor.growatt_thor_ev_charger_fault"][0] == "none"
    # a Faulted status alone (no faultmessage) is a fault too
    st.on_status({"connectorId": 1, "status": "Faulted", "errorCode": "GroundFailure"})
    assert st.fault_kind() == FAULT_OTHER
