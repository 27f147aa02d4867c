"""HA's Energy dashboard takes the charger's energy sensor as individual device consumption.

Checked with HA's own validation, the websocket command the Energy configuration page
sends (``energy/validate``), through a session, its end and the next session, which
resets the sensor to 0 (``total_increasing``: HA counts a drop as a new cycle).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from growatt_thor.standalone import PACKAGE
from tests.adharness import AppDaemon
from tests.conftest import controls_apps
from tests.e2e.test_home_assistant import ha_state
from tests.e2e.test_standalone import sim_for
from tests.hass import HomeAssistant
from tests.helpers import free_port

pytestmark = pytest.mark.ha
P = "growatt_thor_ev_charger"
ENERGY = f"sensor.{P}_energy"
# the Energy dashboard needs the recorder (statistics); neither reaches the internet
EXTRA = "recorder:\n  commit_interval: 1\nenergy:\n"


# What HA reports for any new sensor until the recorder's first statistics compile (every
# 5 minutes, on the clock): not a problem of the sensor. Measured once by hand (see
# docs/entities.md): after the first compile the validation has no issue at all.
FIRST_COMPILE = {"statistics_not_defined"}


def device_issues(ha: HomeAssistant) -> list[str]:
    """The Energy page's issues for the one configured device, as issue types."""
    result = ha.ws_command({"type": "energy/validate"})
    (issues,) = result["device_consumption"]
    return sorted({i["type"] for i in issues} - FIRST_COMPILE)


def statistics_issues(ha: HomeAssistant) -> dict:
    """The recorder's own check of units, state class and device class per statistic."""
    return ha.ws_command({"type": "recorder/validate_statistics"})


async def test_energy_sensor_is_valid_device_consumption_across_a_reset(tmp_path: Path):
    ha = HomeAssistant(tmp_path, extra_config=PACKAGE.read_text() + EXTRA).start()
    ha.onboard()
    port = free_port()
    ad = AppDaemon(tmp_path / "ad", controls_apps(port, standalone=False),
                   plugins={"HASS": {"type": "hass", "ha_url": ha.url, "token": ha.token}})
    sim = sim_for(port)
    try:
        await asyncio.to_thread(ad.start)
        await sim.start()
        await sim.wait_connected()
        # what the user does on the Energy configuration page
        await asyncio.to_thread(ha.ws_command, {"type": "energy/save_prefs",
                                               "device_consumption": [
                                                   {"stat_consumption": ENERGY}]})
        await sim.charge()
        await sim.send_meter_values(1800)
        first = f"{int(sim.session.energy_wh) / 1000:.3f}"
        await ha_state(ha, ENERGY, first)
        assert await asyncio.to_thread(device_issues, ha) == []
        assert await asyncio.to_thread(statistics_issues, ha) == {}
        await sim.finish()
        await ha_state(ha, f"sensor.{P}_status", "Available")
        assert await asyncio.to_thread(device_issues, ha) == []
        # the next session resets the register: still valid, and HA sees a new cycle
        await sim.charge()
        await ha_state(ha, ENERGY, "0.000")
        await sim.send_meter_values(600)
        await ha_state(ha, ENERGY, f"{int(sim.session.energy_wh) / 1000:.3f}")
        assert await asyncio.to_thread(device_issues, ha) == []
        assert await asyncio.to_thread(statistics_issues, ha) == {}
    finally:
        await sim.stop()
        await asyncio.to_thread(ad.stop)
        ha.stop()
