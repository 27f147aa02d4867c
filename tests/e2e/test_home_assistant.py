"""The pack with a real Home Assistant: entities in HA, zeros kept, HA restarts survived."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.adharness import AppDaemon
from growatt_thor.standalone import PACKAGE
from tests.conftest import controls_apps
from tests.hass import HomeAssistant
from tests.helpers import async_wait_for, free_port
from growatt_thor.simulator import ThorSimulator
from tests.e2e.test_standalone import sim_for

pytestmark = pytest.mark.ha
P = "growatt_thor_ev_charger"


@pytest.fixture
def home_assistant(tmp_path: Path):
    # the pack's helper package, as a user adds it to HA
    ha = HomeAssistant(tmp_path, extra_config=PACKAGE.read_text()).start()
    ha.onboard()
    yield ha
    ha.stop()


async def ha_state(ha: HomeAssistant, eid: str, expected: str, timeout: float = 30) -> dict:
    async def check():
        st = (await asyncio.to_thread(ha.states)).get(eid)
        return st if st and st["state"] == expected else None
    try:
        return await async_wait_for(check, timeout=timeout, interval=0.3, what=f"{eid}={expected}")
    except AssertionError:
        now = (await asyncio.to_thread(ha.states)).get(eid)
        raise AssertionError(f"{eid}: expected {expected!r}, HA has {now!r}") from None


def pack_with_ha(tmp_path: Path, ha: HomeAssistant) -> tuple[AppDaemon, ThorSimulator]:
    """The hub and the helpers node against ``ha``, running; and a simulated THOR for it."""
    ocpp_port = free_port()
    ad = AppDaemon(tmp_path / "ad", controls_apps(ocpp_port, standalone=False),
                   plugins={"HASS": {"type": "hass", "ha_url": ha.url, "token": ha.token}})
    return ad.start(), sim_for(ocpp_port)


async def test_entities_in_home_assistant_and_ha_restart(tmp_path: Path, home_assistant):
    ha = home_assistant
    ad, sim = await asyncio.to_thread(pack_with_ha, tmp_path, ha)
    try:
        await sim.start()
        await sim.wait_connected()
        await ha_state(ha, f"binary_sensor.{P}_connected", "on")
        await ha_state(ha, f"sensor.{P}_status", "Available")
        # zero values survive the trip through AppDaemon's HA plugin
        zero = await ha_state(ha, f"sensor.{P}_grid_current_l3", "0.00")
        assert zero["attributes"]["unit_of_measurement"] == "A"
        await sim.charge()
        await sim.send_meter_values(360)
        expected_wh = int(sum(sim.power_w()) * 360 / 3600)
        power = await ha_state(ha, f"sensor.{P}_power", str(sum(sim.power_w())))
        assert power["attributes"]["device_class"] == "power"
        assert power["attributes"]["state_class"] == "measurement"
        energy = await ha_state(ha, f"sensor.{P}_energy", f"{expected_wh / 1000:.3f}")
        assert energy["attributes"]["state_class"] == "total_increasing"
        await sim.finish()
        await ha_state(ha, f"sensor.{P}_power", "0")
        await ha_state(ha, f"sensor.{P}_status", "Available")

        # the helpers in HA follow the charger, and a change in HA is one write
        await ha_state(ha, "input_number.growatt_thor_max_current", "15.0")
        await ha_state(ha, "input_select.growatt_thor_charger_mode", "HA + RFID (app)")
        assert sim.calls("ChangeConfiguration") == []
        await asyncio.to_thread(ha.api, "POST", "/api/services/input_number/set_value",
                                {"entity_id": "input_number.growatt_thor_max_current",
                                 "value": 10})
        await async_wait_for(lambda: sim.calls("ChangeConfiguration"), timeout=20,
                             what="ChangeConfiguration from HA")
        await ha_state(ha, f"sensor.{P}_write_queue", "0")
        await ha_state(ha, "input_number.growatt_thor_max_current", "10.0")
        assert sim.calls("ChangeConfiguration") == [{"key": "G_MaxCurrent", "value": "10"}]

        # a value the charger rejects: the helper in HA goes back, and HA says why
        sim.reject_keys = {"G_ExternalLimitPower"}
        await asyncio.to_thread(ha.api, "POST", "/api/services/input_number/set_value",
                                {"entity_id": "input_number.growatt_thor_load_balancing_limit",
                                 "value": 20})
        await async_wait_for(lambda: len(sim.calls("ChangeConfiguration")) == 2, timeout=20,
                             what="the rejected write")
        await ha_state(ha, "input_number.growatt_thor_load_balancing_limit", "11.0")

        def rejected() -> list[dict]:
            return [n for n in ha.notifications()
                    if "G_ExternalLimitPower=20: Rejected" in n.get("message", "")]
        note = await async_wait_for(lambda: asyncio.to_thread(rejected), timeout=20,
                                    what="a persistent notification in HA")
        assert note[0]["title"] == "Growatt THOR: setting not changed"

        # Home Assistant restarts: it forgets our entities; the charger stays connected.
        boots, connections = sim.boots, len(sim.replies)
        await asyncio.to_thread(ha.stop)
        await asyncio.to_thread(ha.start)
        await ha_state(ha, f"sensor.{P}_status", "Available", timeout=90)
        await ha_state(ha, f"sensor.{P}_power", "0")
        await ha_state(ha, f"sensor.{P}_energy", f"{expected_wh / 1000:.3f}")
        assert sim.connected.is_set() and sim.boots == boots, "charger was disconnected"
        await sim.call("Heartbeat", {})  # the same OCPP connection still answers
        assert len(sim.replies) > connections
        assert ad.state("admin", "app.growatt_thor_hub").get("state") == "idle"
    finally:
        await sim.stop()
        await asyncio.to_thread(ad.stop)


async def test_a_fault_is_an_entity_and_a_notification_in_home_assistant(tmp_path: Path,
                                                                         home_assistant):
    ha = home_assistant
    ad, sim = await asyncio.to_thread(pack_with_ha, tmp_path, ha)
    try:
        await sim.start()
        await sim.wait_connected()
        await ha_state(ha, f"sensor.{P}_fault", "none")
        await sim.fault("12", "485fault")
        fault = await ha_state(ha, f"sensor.{P}_fault", "external meter failure")
        assert fault["attributes"]["errcode"] == "12"

        def noted() -> list[dict]:
            return [n for n in ha.notifications() if n.get("title") == "Growatt THOR: fault"
                    and "external meter failure" in n.get("message", "")]
        await async_wait_for(lambda: asyncio.to_thread(noted), timeout=20,
                             what="the fault's persistent notification in HA")
        await sim.clear_fault()
        await ha_state(ha, f"sensor.{P}_fault", "none")
    finally:
        await sim.stop()
        await asyncio.to_thread(ad.stop)
