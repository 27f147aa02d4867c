"""The card policy in a real AppDaemon: Authorize, StartTransaction, starts from HA."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.adharness import AppDaemon
from tests.conftest import hub_app
from tests.e2e.test_standalone import P, sim_for, wait_state
from tests.helpers import async_wait_for

NS = "default"


@pytest.fixture
def ad(tmp_path: Path, ocpp_port: int):
    apps = {
        "growatt_thor_hub": hub_app(ocpp_port, rfid_policy="listed", id_tags=["CARD1"],
                                    allow_ha_start=False),
        "growatt_thor_sessions": {"module": "growatt_thor.session_log", "class": "SessionLog",
                                  "dependencies": ["growatt_thor_hub"],
                                  "path": str(tmp_path / "sessions.csv"), "record_wait": 0},
    }
    ad = AppDaemon(tmp_path / "ad", apps)
    ad.start()
    yield ad
    ad.stop()


async def test_only_listed_cards_start_and_ha_starts_are_off(ad, ocpp_port):
    async with sim_for(ocpp_port) as sim:
        await sim.wait_connected()
        answers = {tag: (await sim.call("Authorize", {"idTag": tag}))["idTagInfo"]["status"]
                   for tag in ("CARD1", "CARD2", "freevenIdTag", "HomeAssistant")}
        assert answers == {"CARD1": "Accepted", "CARD2": "Invalid",
                           "freevenIdTag": "Invalid", "HomeAssistant": "Blocked"}
        # StartTransaction is checked the same way (plug & charge is not a listed card)
        tx = await sim.charge()
        assert sim.id_tag_status == "Invalid"
        await sim.finish()

        # a start from HA (a command event, as a script or button sends) is refused
        await asyncio.to_thread(ad.fire_event, NS, "growatt_thor_command", command="start")
        await async_wait_for(lambda: "starts from Home Assistant are off" in ad.logs(tail=2000),
                             timeout=10, what="the refusal")
        assert sim.calls("RemoteStartTransaction") == []

        # a session started with a listed card: the card is in the session's entity
        tx = await sim.charge("CARD1")
        assert sim.id_tag_status == "Accepted"
        await sim.send_meter_values(600)
        await sim.finish()
        st = await wait_state(ad, f"sensor.{P}_last_sessions",
                              lambda s: s not in ("unknown", None))
        last = st["attributes"]["sessions"][0]
        assert last["transaction_id"] == str(tx) and last["id_tag"] == "CARD1"
        assert float(last["energy_kwh"]) > 0
    log = ad.logs(tail=3000)
    assert "id tag CARD2: Invalid (only the 1 listed card(s); starts from Home Assistant off)" \
        in log
