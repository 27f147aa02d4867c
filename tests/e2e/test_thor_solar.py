"""The charger's own solar mode ("PV linkage") and boost, through helpers and the queue.

A real AppDaemon with the hub, the standalone helpers, the helpers node and the solar
node, driven over REST, against the simulated THOR.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.adharness import AppDaemon
from tests.conftest import controls_apps, solar_app
from tests.e2e.test_controls import changes, press, service, wait_calls
from tests.e2e.test_standalone import P, sim_for, wait_state
from tests.helpers import async_wait_for

NS = "default"
H = "growatt_thor"


@pytest.fixture
def ad(tmp_path: Path, ocpp_port: int):
    apps = controls_apps(ocpp_port)
    apps["growatt_thor_solar"] = solar_app(grid_power_sensor="sensor.grid_power", phases=1,
                                           smoothing_s=0)
    ad = AppDaemon(tmp_path, apps)
    ad.start()
    yield ad
    ad.stop()


def timeline(sim) -> list[tuple[str, str]]:
    """The settings the server sent, in order: ChangeConfiguration and DataTransfer."""
    out = []
    for f in sim.received:
        if f[2] == "ChangeConfiguration":
            out.append((f[3]["key"], f[3]["value"]))
        elif f[2] == "DataTransfer" and f[3].get("messageId") == "solar_target_data":
            out.append(("solar_target_data", f[3].get("data")))
    return out


async def select(ad: AppDaemon, name: str, option: str) -> None:
    await service(ad, "input_select/select_option", entity_id=f"input_select.{H}_{name}",
                  option=option)


async def last_apply(ad: AppDaemon, result: str, after: dict | None = None) -> dict[str, Any]:
    """The write queue's last multi-step setting, once it has ``result`` (and is newer
    than ``after``)."""
    def done() -> dict[str, Any] | None:
        st = ad.state(NS, f"sensor.{P}_write_queue")
        apply = ((st or {}).get("attributes") or {}).get("last_apply")
        if not isinstance(apply, dict) or (after and apply["group"] == after["group"]):
            return None
        return apply if apply.get("result") == result else None
    try:
        return await async_wait_for(lambda: asyncio.to_thread(done), timeout=20,
                                    what=f"apply {result}")
    except AssertionError as err:
        raise AssertionError(f"{err}; {ad.state(NS, f'sensor.{P}_write_queue')}") from None


async def boost(ad: AppDaemon, mode: str, **helpers: Any) -> None:
    await select(ad, "pv_boost", mode)
    for name, (svc, data) in helpers.items():
        await service(ad, svc, entity_id=f"{name.split(':')[0]}.{H}_{name.split(':')[1]}",
                      **data)
    await press(ad, "apply_pv_boost")


async def test_pv_settings_and_both_boosts_reach_the_wire_in_order(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        # the helpers show what the charger has
        await wait_state(ad, f"input_select.{H}_pv_mode", "Off")
        await wait_state(ad, f"input_number.{H}_pv_grid_limit", 1.32)
        await wait_state(ad, f"input_select.{H}_pv_boost", "Off")
        await wait_state(ad, f"input_datetime.{H}_pv_boost_start", "13:00:00")
        await wait_state(ad, f"input_datetime.{H}_pv_boost_stop", "15:00:00")
        await wait_state(ad, f"input_boolean.{H}_off_peak", "off")
        await wait_state(ad, f"input_select.{H}_external_sampling", "Power meter")
        await wait_state(ad, f"input_number.{H}_meter_address", 2.0)
        await wait_state(ad, f"input_number.{H}_tariff", 0.25)
        assert changes(sim) == []

        steps = [
            (select(ad, "pv_mode", "PV linkage"), ("G_SolarMode", "1&1")),
            (service(ad, "input_number/set_value", entity_id=f"input_number.{H}_pv_grid_limit",
                     value=1.4), ("G_SolarLimitPower", "1.4")),
            (service(ad, "input_boolean/turn_on", entity_id=f"input_boolean.{H}_off_peak"),
             ("G_OffPeakEnable", "1&Enable")),
            (select(ad, "external_sampling", "CT 2000:1"), ("G_ExternalSamplingCurWring", "0")),
            (service(ad, "input_number/set_value", entity_id=f"input_number.{H}_meter_address",
                     value=3), ("G_PowerMeterAddr", "3")),
            (service(ad, "input_number/set_value", entity_id=f"input_number.{H}_tariff",
                     value=0.31), ("G_TimeSharingPrice", "time1=00:00-23:59&price1=0.31")),
        ]
        for n, (act, wire) in enumerate(steps, start=1):
            await act
            await wait_calls(sim, "ChangeConfiguration", n)
            assert changes(sim)[-1] == wire
        assert sim.config["G_SolarMode"] == "1&1"

        # manual boost: the mode, then its window, as one setting
        await boost(ad, "Manual", **{
            "input_datetime:pv_boost_start": ("input_datetime/set_datetime",
                                              {"time": "12:00:00"}),
            "input_datetime:pv_boost_stop": ("input_datetime/set_datetime",
                                             {"time": "14:30:00"})})
        manual = await last_apply(ad, "applied")
        assert timeline(sim)[-2:] == [("G_SolarBoost", "1&ManualBoost"),
                                      ("G_PeriodTime", "1&time1=12:00-14:30")]
        await wait_state(ad, f"input_select.{H}_pv_boost", "Manual")
        await wait_state(ad, f"input_datetime.{H}_pv_boost_start", "12:00:00")

        # smart boost: the mode, then the energy-by-time DataTransfer
        by = (datetime.now(ZoneInfo("Europe/Amsterdam")) + timedelta(days=1)).replace(
            hour=7, minute=30, second=0, microsecond=0)
        await boost(ad, "Smart", **{
            "input_number:pv_boost_energy": ("input_number/set_value", {"value": 12.5}),
            "input_datetime:pv_boost_by": ("input_datetime/set_datetime",
                                           {"datetime": by.strftime("%Y-%m-%d %H:%M:%S")})})
        applied = await last_apply(ad, "applied", after=manual)
        assert applied["setting"] == "solar boost" and applied["applied_steps"] == [1, 2]
        assert timeline(sim)[-2:] == [
            ("G_SolarBoost", "1&SmartBoost"),
            ("solar_target_data",
             f"connectorid=1&contime={by:%Y-%m-%d} 07:30&energy=12.5")]
        assert sim.boost_target == {"connectorid": "1", "contime": f"{by:%Y-%m-%d} 07:30",
                                    "energy": "12.5"}
        await wait_state(ad, f"input_select.{H}_pv_boost", "Smart")

        # every write of the whole run kept the queue's spacing
        times = [t for t, f in zip(sim.received_at, sim.received)
                 if f[2] == "ChangeConfiguration" or f[3].get("messageId") ==
                 "solar_target_data"]
        assert min(b - a for a, b in zip(times, times[1:])) >= 1.0 - 0.05


async def test_a_refused_step_is_reported_and_the_helpers_show_the_charger(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        sim.reject_keys = {"G_PeriodTime"}
        await sim.wait_connected()
        await wait_state(ad, f"input_datetime.{H}_pv_boost_start", "13:00:00")
        await boost(ad, "Manual", **{
            "input_datetime:pv_boost_start": ("input_datetime/set_datetime",
                                              {"time": "10:00:00"})})
        apply = await last_apply(ad, "partly_applied")
        assert apply["failed_step"] == 2 and apply["failed_key"] == "G_PeriodTime"
        assert apply["applied_steps"] == [1] and apply["status"] == "Rejected"
        # the helpers show what the charger really has: the boost on, the old window
        await wait_state(ad, f"input_select.{H}_pv_boost", "Manual")
        await wait_state(ad, f"input_datetime.{H}_pv_boost_start", "13:00:00")

        # a refused first step sends nothing after it
        sim.reject_keys = {"G_SolarBoost"}
        sent = len(timeline(sim))
        by = (datetime.now(ZoneInfo("Europe/Amsterdam")) + timedelta(days=1))
        await boost(ad, "Smart", **{
            "input_number:pv_boost_energy": ("input_number/set_value", {"value": 5}),
            "input_datetime:pv_boost_by": ("input_datetime/set_datetime",
                                           {"datetime": by.strftime("%Y-%m-%d %H:%M:00")})})
        apply = await last_apply(ad, "failed", after=apply)
        assert apply["failed_step"] == 1
        assert timeline(sim)[sent:] == [("G_SolarBoost", "1&SmartBoost")]
        await wait_state(ad, f"input_select.{H}_pv_boost", "Manual")

        # a target in the past is refused before anything is queued
        sent = len(timeline(sim))
        await boost(ad, "Smart", **{
            "input_datetime:pv_boost_by": ("input_datetime/set_datetime",
                                           {"datetime": "2020-01-01 07:00:00"})})
        await async_wait_for(lambda: "is not in the future" in ad.logs(tail=2000),
                             timeout=10, what="the refusal in the log")
        await wait_state(ad, f"input_select.{H}_pv_boost", "Manual")
        assert timeline(sim)[sent:] == []


async def test_the_solar_node_and_the_chargers_own_mode_never_both_drive(ad, ocpp_port):
    async with sim_for(ocpp_port, phases=1) as sim:
        sim.config["G_SolarMode"] = "1&2"  # the charger's own PV mode is on
        await sim.wait_connected()
        await wait_state(ad, f"input_select.{H}_pv_mode", "PV linkage plus")
        await sim.charge()
        await asyncio.to_thread(ad.set_state, NS, "sensor.grid_power", "-3000")
        await select(ad, "solar_mode", "pv")
        def refused() -> dict[str, Any] | None:
            st = ad.state(NS, f"sensor.{P}_solar_status") or {}
            return st if str(st.get("state", "")).startswith("refused") else None
        st = await async_wait_for(lambda: asyncio.to_thread(refused), timeout=20,
                                  what="the solar node refuses")
        assert "own solar mode is on (PV linkage plus)" in st["state"]
        assert changes(sim) == [] and not sim.calls("RemoteStartTransaction")

        # the charger's own mode off: the solar node takes over and drives the current
        await select(ad, "pv_mode", "Off")
        await async_wait_for(lambda: ("G_SolarMode", "1&0") in changes(sim), timeout=20,
                             what="own mode off")
        await async_wait_for(lambda: any(k == "G_MaxCurrent" for k, _ in changes(sim)),
                             timeout=30, what="the solar node's first write")
        queue = await wait_state(ad, f"sensor.{P}_write_queue", "0", timeout=30)
        assert "growatt_thor_solar" in queue["attributes"]["driven_by"]

        # ... and now the charger's own mode can't be switched on: refused, put back
        await select(ad, "pv_mode", "PV linkage")
        await async_wait_for(lambda: "stays off while growatt_thor_solar drives"
                             in ad.logs(tail=3000), timeout=10, what="the refusal")
        await wait_state(ad, f"input_select.{H}_pv_mode", "Off")
        assert ("G_SolarMode", "1&1") not in changes(sim)
