"""User nodes in a real AppDaemon: the solar surplus node and the README's example node."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.adharness import AppDaemon
from tests.conftest import controls_apps, solar_app
from tests.e2e.test_standalone import P, sim_for, wait_state
from tests.helpers import async_wait_for

NS = "default"


def changes(sim) -> list[tuple[str, str]]:
    return [(c["key"], c["value"]) for c in sim.calls("ChangeConfiguration")]


@pytest.fixture
def solar_ad(tmp_path: Path, ocpp_port: int):
    apps = controls_apps(ocpp_port)
    del apps["growatt_thor_helpers"]  # the node alone drives the charger here
    apps["growatt_thor_solar"] = solar_app(grid_power_sensor="sensor.grid_power", phases=1,
                                           smoothing_s=0)
    ad = AppDaemon(tmp_path, apps)
    ad.start()
    yield ad
    ad.stop()


async def test_grid_power_changes_move_the_charging_current_through_the_queue(solar_ad,
                                                                              ocpp_port):
    ad = solar_ad
    async with sim_for(ocpp_port, phases=1) as sim:
        await sim.wait_connected()
        await sim.charge()
        await sim.send_meter_values(120)  # the car draws 15 A: 3351 W
        await wait_state(ad, f"sensor.{P}_power", "3351")
        await asyncio.to_thread(ad.set_state, NS, "sensor.grid_power", "-1000")
        await asyncio.to_thread(ad.call_service, NS, "input_select/select_option",
                                entity_id="input_select.growatt_thor_solar_mode", option="pv")
        # 3351 W + 1000 W exported = 4351 W = 18 A: the helper's maximum, 16 A
        await async_wait_for(lambda: changes(sim), timeout=20, what="first write")
        assert changes(sim) == [("G_MaxCurrent", "16")]
        await wait_state(ad, f"sensor.{P}_solar_target_current", "16")
        # a cloud: 1500 W import. The car now draws what 16 A allows (3680 W; the THOR's
        # next MeterValues is up to 120 s away): 2180 W available -> 9 A
        t0 = time.monotonic()
        await asyncio.to_thread(ad.set_state, NS, "sensor.grid_power", "1500")
        await async_wait_for(lambda: len(changes(sim)) == 2, timeout=20, what="second write")
        took = time.monotonic() - t0
        assert changes(sim)[-1] == ("G_MaxCurrent", "9")
        # the decision runs every second and writes are 1 s apart (+1 s settle): well
        # within 5 s, while the THOR's own meter would only report every 120 s
        assert took < 5, took
        status = await wait_state(ad, f"sensor.{P}_solar_status",
                                  "charging from surplus at 9 A")
        assert status["state"]
        surplus = await wait_state(ad, f"sensor.{P}_solar_surplus", "2180")
        assert surplus["attributes"]["unit_of_measurement"] == "W"
        # the grid sensor goes away: stop rather than charge from the grid blindly
        await asyncio.to_thread(ad.set_state, NS, "sensor.grid_power", "unavailable")
        await async_wait_for(lambda: sim.calls("RemoteStopTransaction"), timeout=20,
                             what="stop on an unavailable sensor")
        await wait_state(ad, f"sensor.{P}_solar_status",
                         "grid sensor unavailable: not charging from the grid")
    # the grid sensor appeared after the node started: no start-up warning about it
    assert "growatt_thor_solar: Entity sensor.grid_power not found" not in ad.logs(tail=5000)


async def test_the_readme_example_node_charges_in_the_cheapest_hours(tmp_path, ocpp_port):
    apps = controls_apps(ocpp_port, standalone=False)
    del apps["growatt_thor_helpers"]
    apps["cheap_hours"] = {"module": "growatt_thor.cheap_hours", "class": "CheapHours",
                           "dependencies": ["growatt_thor_hub"],
                           "price_sensor": "sensor.prices", "hours": 3}
    apps["bad_node"] = {"module": "growatt_thor.cheap_hours", "class": "CheapHours",
                        "dependencies": ["growatt_thor_hub"], "hours": 30, "colour": "red"}
    ad = AppDaemon(tmp_path, apps)
    await asyncio.to_thread(ad.start, ["growatt_thor_hub", "cheap_hours"])
    try:
        hour = datetime.now(ZoneInfo("Europe/Amsterdam")).hour
        cheap = [0.30] * 24
        cheap[hour] = 0.01
        async with sim_for(ocpp_port) as sim:
            await sim.wait_connected()
            await sim.plug_in()
            await asyncio.to_thread(ad.set_state, NS, "sensor.prices", "0.30",
                                    {"today": cheap})
            await async_wait_for(lambda: sim.calls("RemoteStartTransaction"), timeout=20,
                                 what="start in a cheap hour")
            await async_wait_for(lambda: sim.session is not None, timeout=10, what="session")
            await wait_state(ad, f"sensor.{P}_transaction_id", str(sim.session.transaction_id))
            dear = [0.01] * 24
            dear[hour] = 0.90
            await asyncio.to_thread(ad.set_state, NS, "sensor.prices", "0.90", {"today": dear})
            await async_wait_for(lambda: sim.calls("RemoteStopTransaction"), timeout=20,
                                 what="stop in a dear hour")
            assert len(sim.calls("RemoteStartTransaction")) == 1
        # a node with bad arguments does not start, and says why per key
        logs = ad.logs(tail=3000)
        assert "bad_node: bad arguments in apps.yaml" in logs
        assert "price_sensor: Field required" in logs
        assert "hours: Input should be less than or equal to 24 (got 30)" in logs
        assert "colour: unknown key (misspelt?)" in logs
        assert "error" in str(ad.state("admin", "app.bad_node").get("state"))
    finally:
        await asyncio.to_thread(ad.stop)


async def test_solar_node_from_pv_and_house_sensors(tmp_path, ocpp_port):
    apps = controls_apps(ocpp_port)
    del apps["growatt_thor_helpers"]
    apps["growatt_thor_solar"] = solar_app(pv_power_sensor="sensor.pv",
                                           house_power_sensor="sensor.house")
    ad = AppDaemon(tmp_path, apps)
    await asyncio.to_thread(ad.start)
    try:
        async with sim_for(ocpp_port, phases=1) as sim:
            await sim.wait_connected()
            await sim.charge()
            await sim.send_meter_values(120)  # 3351 W on one phase: phases detected = 1
            await wait_state(ad, f"sensor.{P}_power", "3351")
            await asyncio.to_thread(ad.set_state, NS, "sensor.pv", "6000")
            await asyncio.to_thread(ad.set_state, NS, "sensor.house", "1000")
            await asyncio.to_thread(ad.call_service, NS, "input_select/select_option",
                                    entity_id="input_select.growatt_thor_solar_mode",
                                    option="minpv")
            # grid = house + car - pv = -1649 W; available = 1649 + 3351 = 5000 W = 21 A
            await wait_state(ad, f"sensor.{P}_solar_surplus", "5000")
            await async_wait_for(lambda: changes(sim), timeout=20, what="a write")
            assert changes(sim) == [("G_MaxCurrent", "16")]  # the helper's maximum
            mode = await wait_state(ad, f"sensor.{P}_solar_mode", "minpv")
            assert mode["attributes"]["phases"] == "1"  # node attributes are strings
            # the user says the car charges on three phases: 5000 W / 690 W per A = 7 A
            await asyncio.to_thread(ad.call_service, NS, "input_select/select_option",
                                    entity_id="input_select.growatt_thor_solar_phases",
                                    option="3")
            await async_wait_for(lambda: len(changes(sim)) == 2, timeout=20,
                                 what="a write for three phases")
            assert changes(sim)[-1] == ("G_MaxCurrent", "7")
            async def phases_is(n: int) -> bool:
                got = await asyncio.to_thread(ad.state, NS, f"sensor.{P}_solar_mode")
                return (got.get("attributes") or {}).get("phases") == str(n)

            await async_wait_for(lambda: phases_is(3), timeout=10, what="phases 3 published")
    finally:
        await asyncio.to_thread(ad.stop)
