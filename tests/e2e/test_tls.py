"""OCPP security profile 2: wss:// on the pack's own port, checked by real TLS clients."""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from growatt_thor.link import LinkSettings
from growatt_thor.server import CentralSystem, tls_context
from growatt_thor.simulator import SimSettings, ThorSimulator
from tests.adharness import AppDaemon
from tests.conftest import hub_app
from tests.helpers import free_port
from tests.integration.test_link import Hooks


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as the README tells users to make one."""
    cert, key = folder / "thor-server.crt", folder / "thor-server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def certificate(tmp_path):
    return make_certificate(tmp_path)


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))  # verifies chain and 127.0.0.1


@pytest.fixture
async def tls_system(certificate):
    cert, key = certificate
    cs = CentralSystem(Hooks(), LinkSettings(call_timeout=5, startup_delay=0.05),
                       logging.getLogger("test.tls"))
    await cs.serve("127.0.0.1", 0, ssl=tls_context(str(cert), str(key)))
    yield cs, cert
    await cs.close()


async def test_a_verified_wss_session(tls_system):
    cs, cert = tls_system
    sim = ThorSimulator(SimSettings(url=f"wss://127.0.0.1:{cs.port}/ocpp/ws", ssl=trusting(cert),
                                    reconnect_delay=(0.1, 0.2), call_timeout=5))
    async with sim:
        await sim.wait_connected()
        assert (await sim.call("Heartbeat", {}))["currentTime"]
        await sim.charge()
    assert cs.state(sim.s.serial).vendor == "Growatt"


async def test_plain_ws_and_untrusting_clients_are_refused(tls_system):
    cs, _ = tls_system
    with pytest.raises((websockets.exceptions.InvalidMessage, ConnectionError, OSError,
                        asyncio.TimeoutError)):
        async with connect(f"ws://127.0.0.1:{cs.port}/ocpp/ws/XGJ00003214700CA",
                           subprotocols=["ocpp1.6"], open_timeout=5):
            pass
    with pytest.raises(ssl.SSLCertVerificationError):  # verification is real
        async with connect(f"wss://127.0.0.1:{cs.port}/ocpp/ws/XGJ00003214700CA",
                           subprotocols=["ocpp1.6"], open_timeout=5,
                           ssl=ssl.create_default_context()):
            pass
    assert list(cs.states) == []


async def test_the_hub_serves_wss_from_apps_yaml(tmp_path, certificate):
    cert, key = certificate
    port = free_port()
    ad = AppDaemon(tmp_path / "ad", {"growatt_thor_hub": hub_app(
        port, tls_certfile=str(cert), tls_keyfile=str(key))})
    await asyncio.to_thread(ad.start)
    try:
        (ready,) = [ln for ln in ad.logs(tail=3000).splitlines() if "hub ready" in ln]
        assert f"wss://127.0.0.1:{port}/ocpp/ws" in ready
        sim = ThorSimulator(SimSettings(url=f"wss://127.0.0.1:{port}/ocpp/ws",
                                        ssl=trusting(cert), call_timeout=5))
        async with sim:
            await sim.wait_connected()
            await asyncio.to_thread(ad.wait_state, "default",
                                    "sensor.growatt_thor_ev_charger_vendor", "Growatt")
    finally:
        await asyncio.to_thread(ad.stop)
