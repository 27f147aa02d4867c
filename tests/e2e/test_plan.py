"""The charging plan in a real AppDaemon: a price sensor set over REST, a short day.

The price slots are seconds long, so a whole "day" passes in under a minute: the plan
must start the charger in the cheapest slot (not before), beside a solar node that
wants it stopped (the documented rule: the plan's grid hours win), and stop at the target.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.adharness import AppDaemon
from tests.conftest import controls_apps, solar_app
from tests.e2e.test_standalone import P, sim_for, wait_state
from tests.helpers import async_wait_for

NS = "default"
TZ = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def ad(tmp_path: Path, ocpp_port: int):
    apps = controls_apps(ocpp_port)
    del apps["growatt_thor_helpers"]
    deps = ["growatt_thor_hub", "growatt_thor_standalone_helpers"]
    apps["growatt_thor_solar"] = solar_app(grid_power_sensor="sensor.grid_power", phases=3,
                                           smoothing_s=0)
    apps["growatt_thor_plan"] = {
        "module": "growatt_thor.plan_node", "class": "ChargingPlan", "dependencies": deps,
        "price_sensor": "sensor.prices", "interval": 0.5,
        "margin_minutes": 0}  # slots of seconds: no 10 minutes to spare
    ad = AppDaemon(tmp_path, apps)
    ad.start()
    yield ad
    ad.stop()


async def rest(ad: AppDaemon, fn, *args, **kw):
    return await asyncio.to_thread(getattr(ad, fn), *args, **kw)


async def test_the_plan_charges_in_the_cheapest_slot_and_stops_at_the_target(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        await sim.plug_in()
        await wait_state(ad, f"sensor.{P}_status", "Preparing")
        # the solar node, in pv mode with 2 kW imported, wants the charger stopped
        await rest(ad, "set_state", NS, "sensor.grid_power", "2000")
        await rest(ad, "call_service", NS, "input_select/select_option",
                   entity_id="input_select.growatt_thor_solar_mode", option="pv")
        # a short day: dear now, cheapest from +8 s to +14 s, then middling
        now = datetime.now(TZ).replace(microsecond=0)
        cheap_from, cheap_to = now + timedelta(seconds=8), now + timedelta(seconds=14)
        slots = [(now - timedelta(seconds=1), cheap_from, 0.30), (cheap_from, cheap_to, 0.10),
                 (cheap_to, now + timedelta(seconds=60), 0.25)]
        await rest(ad, "set_state", NS, "sensor.prices", "0.30", attributes={"raw_today": [
            {"start": a.isoformat(), "end": b.isoformat(), "value": v} for a, b, v in slots]})
        departure = now + timedelta(seconds=60)
        await rest(ad, "call_service", NS, "input_number/set_value",
                   entity_id="input_number.growatt_thor_plan_energy", value=0.01)
        await rest(ad, "call_service", NS, "input_datetime/set_datetime",
                   entity_id="input_datetime.growatt_thor_plan_departure",
                   datetime=departure.strftime("%Y-%m-%d %H:%M:%S"))
        loop = asyncio.get_running_loop()
        offset = time.time() - loop.time()  # the simulator's times are the loop's
        await rest(ad, "call_service", NS, "input_boolean/turn_on",
                   entity_id="input_boolean.growatt_thor_plan")

        st = await wait_state(ad, f"sensor.{P}_plan_status",
                              lambda s: s and "cheapest hours" in s)
        assert "0.01 kWh from the grid in the cheapest hours" in st["state"]
        start = await wait_state(ad, f"sensor.{P}_plan_grid_start",
                                 cheap_from.isoformat(timespec="seconds"))
        assert start
        await async_wait_for(lambda: sim.calls("RemoteStartTransaction"), timeout=30,
                             what="the plan's start")
        started = sim.call_times("RemoteStartTransaction")[0] + offset
        assert started >= cheap_from.timestamp() - 0.5, \
            f"started {cheap_from.timestamp() - started:.1f} s before the cheapest slot"
        assert started < cheap_to.timestamp()
        await async_wait_for(lambda: sim.session is not None, timeout=10, what="session")
        queue = await wait_state(ad, f"sensor.{P}_write_queue",
                                 lambda s: s is not None)
        assert "growatt_thor_plan" in str(queue["attributes"].get("decision")), queue

        # the car takes the energy: at the target the plan asks to stop
        await sim.send_meter_values(300)  # 5 minutes at 16 A x 3: about 0.9 kWh
        await async_wait_for(lambda: sim.calls("RemoteStopTransaction"), timeout=20,
                             what="stop at the target")
        await wait_state(ad, f"sensor.{P}_plan_status",
                         lambda s: s and s.startswith("target reached"))
    log = ad.logs(tail=5000)
    assert "decision: charge at 16 A (growatt_thor_plan)" in log
