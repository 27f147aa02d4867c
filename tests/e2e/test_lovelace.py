"""The pack's Lovelace dashboard in a real Home Assistant, in headless Chromium.

HA (with its frontend) loads ``growatt_thor_dashboard.yaml`` as a YAML-mode dashboard; the
browser is logged in with a token the fixture made (no person), while the simulated THOR
charges. The live values must appear in the page (read from its DOM, through the shadow
roots), no card may report a missing entity or a configuration error, and a tap on "Stop
charging" must reach the charger as a RemoteStopTransaction. The screenshot is kept in
test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from growatt_thor.standalone import PACKAGE
from tests.adharness import REPO, AppDaemon
from tests.cdp import Browser
from tests.conftest import controls_apps
from tests.e2e.test_home_assistant import ha_state
from tests.e2e.test_standalone import sim_for
from tests.hass import HomeAssistant
from tests.helpers import async_wait_for, free_port

pytestmark = [pytest.mark.ha, pytest.mark.browser]
P = "growatt_thor_ev_charger"
DASHBOARD = PACKAGE.parent / "growatt_thor_dashboard.yaml"
ARTIFACTS = REPO / "test-artifacts"
LOVELACE = """
frontend:
recorder:
history:
lovelace:
  mode: storage
  dashboards:
    growatt-thor:
      mode: yaml
      title: Growatt THOR
      icon: mdi:ev-station
      filename: growatt_thor_dashboard.yaml
"""
# what a card shows when it cannot do its job
CARD_PROBLEMS = ("hui-error-card", "hui-warning")


async def test_lovelace_dashboard_live_and_its_controls_reach_the_charger(tmp_path: Path):
    ha = HomeAssistant(tmp_path, extra_config=PACKAGE.read_text() + LOVELACE)
    shutil.copy(DASHBOARD, ha.config_dir / DASHBOARD.name)
    await asyncio.to_thread(ha.start)
    await asyncio.to_thread(ha.onboard)
    await asyncio.to_thread(ha.finish_onboarding)
    port = free_port()
    apps = controls_apps(port, standalone=False)
    apps["growatt_thor_sessions"] = {"module": "growatt_thor.session_log",
                                     "class": "SessionLog", "dependencies": ["growatt_thor_hub"]}
    apps["growatt_thor_solar"] = {"module": "growatt_thor.solar_node", "class": "SolarSurplus",
                                  "dependencies": ["growatt_thor_hub"],
                                  "grid_power_sensor": f"sensor.{P}_grid_power"}
    apps["growatt_thor_plan"] = {"module": "growatt_thor.plan_node", "class": "ChargingPlan",
                                 "dependencies": ["growatt_thor_hub"]}
    ad = AppDaemon(tmp_path / "ad", apps,
                   plugins={"HASS": {"type": "hass", "ha_url": ha.url, "token": ha.token}})
    sim = sim_for(port)
    browser = None
    try:
        await asyncio.to_thread(ad.start)
        await sim.start()
        await sim.wait_connected()
        tx = await sim.charge()
        await sim.send_meter_values(600)
        await ha_state(ha, f"sensor.{P}_status", "Charging")
        browser = await asyncio.to_thread(Browser, tmp_path / "chromium")
        tokens = {"access_token": ha.token, "token_type": "Bearer", "expires_in": 86400,
                  "hassUrl": ha.url, "clientId": f"{ha.url}/", "refresh_token": "",
                  "expires": int(time.time() * 1000) + 86_400_000}
        await asyncio.to_thread(browser.goto, f"{ha.url}/manifest.json")
        await async_wait_for(lambda: asyncio.to_thread(
            browser.js, "document.readyState === 'complete'"), timeout=20, what="HA origin")
        await asyncio.to_thread(browser.js, f"localStorage.setItem('hassTokens', "
                                            f"{json.dumps(json.dumps(tokens))})")
        await asyncio.to_thread(browser.goto, f"{ha.url}/growatt-thor/charger")
        energy = f"{int(sim.session.energy_wh) / 1000:.3f}"
        expected = ("Charging", "Stop charging", "Max current", "HA + RFID (app)",
                    "Auto-charge from", "Solar charging", "Grid meter", "Last sessions",
                    "Charging plan")

        async def shown() -> bool:
            try:
                text = await asyncio.to_thread(browser.text)
            except AssertionError:  # evaluated while the app (re)loads: not there yet
                return False
            return all(v in text for v in expected) and energy.rstrip("0") in text
        try:
            await async_wait_for(shown, timeout=90, interval=0.5, what="the live dashboard")
        except AssertionError:
            text = await asyncio.to_thread(browser.text)
            raise AssertionError(f"missing {[v for v in expected if v not in text]}, "
                                 f"energy {energy}: {text[:3000]}") from None
        ARTIFACTS.mkdir(exist_ok=True)
        await asyncio.to_thread(browser.screenshot, ARTIFACTS / "lovelace.png")
        problems = await asyncio.to_thread(browser.find, *CARD_PROBLEMS)
        assert problems == [], problems
        text = await asyncio.to_thread(browser.text)
        for sign in ("Entity not available", "Entity not found", "Configuration error"):
            assert sign not in text, sign

        # a tap on "Stop charging" reaches the THOR as a RemoteStopTransaction
        buttons = [b for b in await asyncio.to_thread(browser.find, "hui-button-card")
                   if "Stop charging" in b["text"]]
        assert len(buttons) == 1 and buttons[0]["w"] > 0, buttons
        await asyncio.to_thread(browser.click, buttons[0]["x"], buttons[0]["y"])
        await async_wait_for(lambda: sim.calls("RemoteStopTransaction"), timeout=30,
                             what="RemoteStopTransaction from the dashboard")
        assert sim.calls("RemoteStopTransaction") == [{"transactionId": tx}]
    finally:
        if browser is not None:
            await asyncio.to_thread(browser.close)
        await sim.stop()
        await asyncio.to_thread(ad.stop)
        await asyncio.to_thread(ha.stop)
