"""Helpers -> write queue -> the simulated THOR, in a real AppDaemon, driven over REST."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.adharness import AppDaemon
from tests.conftest import controls_apps
from tests.e2e.test_standalone import P, sim_for, wait_state
from tests.helpers import async_wait_for

NS = "default"
SPACING = 1.0


@pytest.fixture
def ad(tmp_path: Path, ocpp_port: int):
    ad = AppDaemon(tmp_path, controls_apps(ocpp_port, chargers={
        "XGJ00003214700CA": {"max_current": 16}}))
    ad.start()
    yield ad
    ad.stop()


async def service(ad: AppDaemon, name: str, **data: Any) -> None:
    await asyncio.to_thread(ad.call_service, NS, name, **data)


async def press(ad: AppDaemon, button: str) -> None:
    await service(ad, "input_button/press", entity_id=f"input_button.growatt_thor_{button}")


def changes(sim) -> list[tuple[str, str]]:
    return [(c["key"], c["value"]) for c in sim.calls("ChangeConfiguration")]


async def wait_calls(sim, action: str, n: int, timeout: float = 20) -> list[dict]:
    await async_wait_for(lambda: len(sim.calls(action)) >= n, timeout=timeout,
                         what=f"{n} x {action}; got {sim.calls(action)}")
    return sim.calls(action)


async def test_every_helper_reaches_the_wire_and_helpers_follow_the_charger(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        # after connecting, the helpers show the charger's configuration
        await wait_state(ad, "input_number.growatt_thor_max_current", 15.0)
        await wait_state(ad, "input_select.growatt_thor_charger_mode", "HA + RFID (app)")
        await wait_state(ad, "input_boolean.growatt_thor_load_balancing", "on")
        await wait_state(ad, "input_datetime.growatt_thor_schedule_start", "23:00:00")
        await wait_state(ad, "input_datetime.growatt_thor_schedule_stop", "05:59:00")
        await wait_state(ad, "input_number.growatt_thor_load_balancing_limit", 11.0)
        assert changes(sim) == []  # that sync was not taken for a request

        steps = [
            ("input_number/set_value", "input_number.growatt_thor_max_current", {"value": 10},
             ("G_MaxCurrent", "10")),
            ("input_number/set_value", "input_number.growatt_thor_load_balancing_limit",
             {"value": 9.5}, ("G_ExternalLimitPower", "9.5")),
            # the THOR never reports the display setting: the helper starts "off"
            ("input_boolean/turn_on", "input_boolean.growatt_thor_display", {},
             ("G_LCDCloseEnable", "Disable")),
            ("input_boolean/turn_off", "input_boolean.growatt_thor_display", {},
             ("G_LCDCloseEnable", "Enable")),
            ("input_boolean/turn_off", "input_boolean.growatt_thor_load_balancing", {},
             ("G_ExternalLimitPowerEnable", "0")),
        ]
        for n, (svc, eid, data, wire) in enumerate(steps, start=1):
            await service(ad, svc, entity_id=eid, **data)
            await wait_calls(sim, "ChangeConfiguration", n)
            assert changes(sim)[-1] == wire
        assert sim.config["G_MaxCurrent"] == "10"

        # the schedule: times are staged, "apply schedule" writes both at once
        await service(ad, "input_datetime/set_datetime",
                      entity_id="input_datetime.growatt_thor_schedule_start", time="22:30:00")
        await service(ad, "input_datetime/set_datetime",
                      entity_id="input_datetime.growatt_thor_schedule_stop", time="06:15:00")
        await press(ad, "apply_schedule")
        await wait_calls(sim, "ChangeConfiguration", 6)
        assert changes(sim)[-1] == ("G_AutoChargeTime", "22:30-06:15")

        # start and stop charging
        await sim.plug_in()
        await press(ad, "start_charging")
        start = (await wait_calls(sim, "RemoteStartTransaction", 1))[0]
        assert start == {"connectorId": 1, "idTag": "HomeAssistant"}
        await async_wait_for(lambda: sim.session is not None, timeout=10, what="session")
        tx = sim.session.transaction_id
        await wait_state(ad, f"sensor.{P}_transaction_id", str(tx))
        await press(ad, "stop_charging")
        stop = (await wait_calls(sim, "RemoteStopTransaction", 1))[0]
        assert stop == {"transactionId": tx}
        await wait_state(ad, f"sensor.{P}_status", "Available")

        # access-point mode needs a second press within the window
        await press(ad, "access_point_mode")
        await asyncio.to_thread(ad.wait_state, "admin", "app.growatt_thor_helpers", "idle")
        assert not [c for c in sim.calls("DataTransfer") if c.get("messageId") == "appconfigmode"]
        await press(ad, "access_point_mode")
        await async_wait_for(lambda: any(c.get("messageId") == "appconfigmode"
                                         for c in sim.calls("DataTransfer")),
                             timeout=10, what="appconfigmode")
        ap = [c for c in sim.calls("DataTransfer") if c.get("messageId") == "appconfigmode"]
        assert ap == [{"vendorId": "Growatt", "messageId": "appconfigmode"}]

        # the charger mode needs a reboot: written, RebootRequired, the THOR reboots
        boots = sim.boots
        await service(ad, "input_select/select_option",
                      entity_id="input_select.growatt_thor_charger_mode", option="Plug & Charge")
        await wait_calls(sim, "ChangeConfiguration", 7)
        assert changes(sim)[-1] == ("G_ChargerMode", "1")
        await async_wait_for(lambda: sim.boots > boots and sim.connected.is_set(), timeout=20,
                             what="reboot after G_ChargerMode")
        await wait_state(ad, "input_select.growatt_thor_charger_mode", "Plug & Charge")
        queue = await wait_state(ad, f"sensor.{P}_write_queue", "0")
        assert "RebootRequired" in queue["attributes"]["last_result"]

        # two configuration writes were never closer than the spacing
        times = sim.call_times("ChangeConfiguration")
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= SPACING - 0.05, gaps
    logs = ad.logs(tail=3000)
    assert "queued G_MaxCurrent=10 from helper input_number.growatt_thor_max_current" in logs
    assert "G_MaxCurrent=10 answered Accepted (waited" in logs


async def test_ten_rapid_changes_make_one_write_of_the_last_value(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        await wait_state(ad, "input_number.growatt_thor_max_current", 15.0)
        for amps in range(7, 17):
            await service(ad, "input_number/set_value",
                          entity_id="input_number.growatt_thor_max_current", value=amps)
        await wait_calls(sim, "ChangeConfiguration", 1)
        await wait_state(ad, f"sensor.{P}_write_queue", "0")
        # the queue is empty and its spacing has passed: nothing else is coming
        await asyncio.to_thread(ad.wait_state, NS, "input_number.growatt_thor_max_current", 16.0)
        assert changes(sim) == [("G_MaxCurrent", "16")]


async def test_installation_limit_holds_for_helpers_and_events(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        await wait_state(ad, "input_number.growatt_thor_max_current", 15.0)
        await service(ad, "input_number/set_value",
                      entity_id="input_number.growatt_thor_max_current", value=32)
        await wait_calls(sim, "ChangeConfiguration", 1)
        # the helper shows what the charger now has: the limit, not the request
        await wait_state(ad, "input_number.growatt_thor_max_current", 16.0)
        await asyncio.to_thread(ad.fire_event, "growatt_thor", "growatt_thor_command",
                                command="set_max_current", value=3)
        await wait_calls(sim, "ChangeConfiguration", 2)
        await asyncio.to_thread(ad.fire_event, NS, "growatt_thor_command",
                                command="set_max_current", value="99")
        await wait_calls(sim, "ChangeConfiguration", 3)
        await asyncio.to_thread(ad.fire_event, NS, "growatt_thor_command",
                                command="set_max_current", value="lots")
        await async_wait_for(lambda: "'lots' is not a number" in ad.logs(tail=3000),
                             timeout=10, what="the refusal in the log")
        assert changes(sim) == [("G_MaxCurrent", "16"), ("G_MaxCurrent", "6"),
                                ("G_MaxCurrent", "16")]
    assert "32 A is above the installation limit; clamped to 16 A" in ad.logs(tail=3000)


async def test_a_rejected_write_puts_the_helper_back(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        sim.reject_keys = {"G_ExternalLimitPower"}
        await sim.wait_connected()
        await wait_state(ad, "input_number.growatt_thor_load_balancing_limit", 11.0)
        await service(ad, "input_number/set_value",
                      entity_id="input_number.growatt_thor_load_balancing_limit", value=20)
        await wait_state(ad, "input_number.growatt_thor_load_balancing_limit", 20.0)
        await wait_calls(sim, "ChangeConfiguration", 1)
        await wait_state(ad, "input_number.growatt_thor_load_balancing_limit", 11.0)
        assert changes(sim) == [("G_ExternalLimitPower", "20")]  # put back, not rewritten
    assert "write refused, helper put back: G_ExternalLimitPower=20: Rejected" in \
        ad.logs(tail=3000)


async def test_writes_made_offline_go_after_the_reconnect(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        await wait_state(ad, "input_number.growatt_thor_max_current", 15.0)
    await wait_state(ad, f"binary_sensor.{P}_connected", "off")
    for amps in (8, 9, 12):
        await service(ad, "input_number/set_value",
                      entity_id="input_number.growatt_thor_max_current", value=amps)
    queue = await wait_state(ad, f"sensor.{P}_write_queue", "1")
    assert queue["attributes"]["pending"] == "G_MaxCurrent=12"
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        await wait_calls(sim, "ChangeConfiguration", 1)
        assert changes(sim) == [("G_MaxCurrent", "12")]
        await wait_state(ad, "input_number.growatt_thor_max_current", 12.0)


async def test_grid_meter_is_polled_only_while_load_balancing_is_on(ad, ocpp_port):
    def polls(sim) -> int:
        return sum(1 for c in sim.calls("DataTransfer")
                   if c.get("messageId") == "get_external_meterval")

    async with sim_for(ocpp_port) as sim:
        sim.grid.wiring = 3
        await sim.wait_connected()
        await wait_state(ad, f"sensor.{P}_grid_wiring", "3-phase")
        first = polls(sim)
        sim.grid.power = -1234  # exporting
        await wait_state(ad, f"sensor.{P}_grid_power", "-1234", timeout=20)
        assert polls(sim) > first
        await service(ad, "input_boolean/turn_off",
                      entity_id="input_boolean.growatt_thor_load_balancing")
        await wait_calls(sim, "ChangeConfiguration", 1)
        await async_wait_for(lambda: sim.config["G_ExternalLimitPowerEnable"] == "0",
                             timeout=10, what="load balancing off")
        stopped_at = polls(sim)
        # one poll interval (5 s) and a margin later, no poll has been made
        await asyncio.sleep(7)
        assert polls(sim) == stopped_at


async def test_a_synchronous_app_uses_the_hub_api_from_its_thread(tmp_path, ocpp_port):
    apps = controls_apps(ocpp_port)
    apps["sync_probe"] = {"module": "sync_probe", "class": "SyncProbe",
                          "dependencies": ["growatt_thor_hub"]}
    ad = AppDaemon(tmp_path, apps, extra_modules=(Path(__file__).with_name("sync_probe.py"),))
    await asyncio.to_thread(ad.start)
    try:
        async with sim_for(ocpp_port) as sim:
            await sim.wait_connected()
            await wait_state(ad, "input_number.growatt_thor_max_current", 15.0)
            await asyncio.to_thread(ad.fire_event, NS, "sync_probe_go", amps=7)
            await wait_state(ad, "sensor.sync_probe", "queued")
            await wait_calls(sim, "ChangeConfiguration", 1)
            assert changes(sim) == [("G_MaxCurrent", "7")]
            await asyncio.to_thread(ad.fire_event, NS, "sync_probe_go", amps="x")
            await wait_state(ad, "sensor.sync_probe",
                             "refused: charging current: 'x' is not a number")
    finally:
        await asyncio.to_thread(ad.stop)


async def test_a_staged_schedule_time_survives_other_writes_until_applied(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        await wait_state(ad, "input_datetime.growatt_thor_schedule_start", "23:00:00")
        await service(ad, "input_datetime/set_datetime",
                      entity_id="input_datetime.growatt_thor_schedule_start", time="21:15:00")
        # another write, read back from the charger: the helpers follow the charger again,
        # but the staged start is the user's until "apply schedule"
        await service(ad, "input_number/set_value",
                      entity_id="input_number.growatt_thor_max_current", value=10)
        await async_wait_for(
            lambda: any(c.get("key") == ["G_MaxCurrent"] for c in sim.calls("GetConfiguration")),
            timeout=20, what="the read-back of G_MaxCurrent")
        await wait_state(ad, "input_number.growatt_thor_max_current", 10.0)
        await press(ad, "apply_schedule")
        await wait_calls(sim, "ChangeConfiguration", 2)
        assert changes(sim) == [("G_MaxCurrent", "10"), ("G_AutoChargeTime", "21:15-05:59")]
        await wait_state(ad, "input_datetime.growatt_thor_schedule_start", "21:15:00")
