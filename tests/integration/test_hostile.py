"""A hostile device on the network, against the OCPP core over real sockets on 127.0.0.1.

Each test re-runs a finding of the security review (issue "Trust on a hostile network")
as it was reproduced, and checks that it is refused or harmless now.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from growatt_thor.link import LinkSettings
from growatt_thor.server import CentralSystem, charger_id_from_path
from growatt_thor.thor.config import slug
from growatt_thor.thor.identity import Admission
from tests.helpers import async_wait_for
from tests.integration.test_link import Hooks, sim_for

CID = "XGJ00003214700CA"
PASSWORD = "12345678"


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def log():
    logger = logging.getLogger("test.hostile")
    logger.setLevel(logging.DEBUG)
    handler = Captured()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


async def central(logger: logging.Logger, configured: dict[str, str | None],
                  accept_unknown: bool | None = None, **settings: Any) -> CentralSystem:
    admission = Admission.create(configured, slug, accept_unknown, None)
    cs = CentralSystem(Hooks(), LinkSettings(call_timeout=5, startup_delay=0.05, **settings),
                       logger, passwords={k: v for k, v in configured.items() if v},
                       accept=admission.decide)
    await cs.serve("127.0.0.1", 0)
    return cs


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def refused(cs: CentralSystem, path: str, headers: dict[str, str] | None = None) -> int:
    with pytest.raises(websockets.exceptions.InvalidStatus) as err:
        async with connect(f"ws://127.0.0.1:{cs.port}{path}", subprotocols=["ocpp1.6"],
                           additional_headers=headers or {}, open_timeout=5):
            pass
    return err.value.response.status_code


async def call(ws: ClientConnection, frame: Any, raw: str | bytes | None = None) -> list[Any]:
    """Send one frame; the first frame back that is not a CALL of the server's."""
    await ws.send(raw if raw is not None else json.dumps(frame))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if reply[0] != 2:
            return reply


# --- 1. identity and Basic auth -------------------------------------------------------

async def test_look_alike_ids_get_nothing_of_the_configured_charger(log):
    logger, _ = log
    cs = await central(logger, {CID: PASSWORD})
    try:
        for look_alike in (CID.lower(), CID + ".", CID + "_", CID + "%2E", "0" + CID):
            status = await refused(cs, f"/ocpp/ws/{look_alike}", auth(look_alike, PASSWORD))
            assert status in (403, 404), look_alike
        assert await refused(cs, f"/ocpp/ws/{CID}", auth("anybody", PASSWORD)) == 401
        assert await refused(cs, f"/ocpp/ws/{CID}") == 401
        assert list(cs.states) == []  # nothing was created for any of them
    finally:
        await cs.close()


def test_paths_name_a_charger_exactly_or_not_at_all():
    assert charger_id_from_path(f"/ocpp/ws/{CID}") == CID
    assert charger_id_from_path(f"/ocpp/ws/{CID.lower()}") == CID.lower()  # never folded
    for path in ("/ocpp/ws/", "/ocpp/", "/ocpp/ws/XGJ.CA", "/ocpp/ws/" + "A" * 49,
                 "/ocpp/ws/a:b", "/ocpp/ws/-x"):
        assert charger_id_from_path(path) is None, path


async def test_first_contact_pins_the_first_charger(log):
    logger, _ = log
    cs = await central(logger, {})
    try:
        async with sim_for(cs) as sim:
            await sim.wait_connected()
        assert await refused(cs, "/ocpp/ws/XGJ00000000000XX") == 403
        assert await refused(cs, f"/ocpp/ws/{CID.lower()}") == 403  # its entity prefix
        assert list(cs.states) == [CID]
        async with sim_for(cs) as sim:  # the pinned one comes back
            await sim.wait_connected()
    finally:
        await cs.close()


async def test_failed_logins_back_off_per_source_and_no_credential_is_logged(log):
    logger, captured = log
    cs = await central(logger, {CID: PASSWORD})
    try:
        statuses = [await refused(cs, f"/ocpp/ws/{CID}", auth(CID, f"guess{i}"))
                    for i in range(8)]
        assert statuses[:3] == [401] * 3  # three free tries, then wait
        assert 429 in statuses[3:]
        # the right password, too soon after the guesses, waits as well
        assert await refused(cs, f"/ocpp/ws/{CID}", auth(CID, PASSWORD)) == 429
        cs.backoff.succeeded("127.0.0.1")  # (the wait is over)
        async with sim_for(cs, password=PASSWORD) as sim:
            await sim.wait_connected()
    finally:
        await cs.close()
    secret = base64.b64encode(f"{CID}:{PASSWORD}".encode()).decode()
    text = "\n".join(captured.lines())
    assert "guess" not in text and secret not in text and PASSWORD not in text
    assert any("authorization" in ln.lower() and "***" in ln for ln in captured.lines()), \
        "websockets' DEBUG header lines are there, redacted"


# --- 2, 5, 7, 8: frames -----------------------------------------------------------------

@pytest.fixture
async def open_link(log):
    logger, captured = log
    cs = await central(logger, {CID: None, "FUZZ0001": None}, calls_per_second=20,
                       call_burst=40)
    ws = await connect(f"ws://127.0.0.1:{cs.port}/ocpp/ws/FUZZ0001", subprotocols=["ocpp1.6"],
                       max_size=2**21)
    yield cs, ws, captured
    await ws.close()
    await cs.close()


async def test_replies_nobody_asked_for_are_dropped_not_queued(open_link):
    cs, ws, captured = open_link
    big = "x" * 100_000
    for i in range(300):
        await ws.send(json.dumps([3, f"stale{i}", {"data": big}]))
    reply = await call(ws, [2, "1", "Heartbeat", {}])  # still served, in order
    assert reply[:2] == [3, "1"]
    link = cs.link("FUZZ0001")
    assert link._response_queue.qsize() == 0
    dropped = [ln for ln in captured.lines() if "reply to no call" in ln]
    assert 1 <= len(dropped) <= 21  # rate-limited, not one line per frame
    assert all(len(r.getMessage()) < 400 for r in captured.records
               if r.levelno >= logging.INFO)  # DEBUG frame lines are capped at 2,000


@pytest.mark.parametrize("raw, code", [
    ("[" * 100_000, "FormationViolation"),
    ('[2,"9","Heartbeat",{"n":' + "9" * 5000 + "}]", "FormationViolation"),
    ("not json at all", "FormationViolation"),
])
async def test_frames_that_used_to_drop_the_connection_get_a_callerror(open_link, raw, code):
    cs, ws, _ = open_link
    reply = await call(ws, None, raw)
    assert reply[0] == 4 and reply[2] == code
    assert (await call(ws, [2, "2", "Heartbeat", {}]))[:2] == [3, "2"]  # the link is alive


async def test_binary_frames_long_ids_and_bad_values_are_refused_per_ocpp_16(open_link):
    cs, ws, _ = open_link
    reply = await call(ws, None, json.dumps([2, "b1", "Heartbeat", {}]).encode())
    assert reply[:3] == [4, "b1", "FormationViolation"]
    long_id = "L" * 100
    reply = await call(ws, [2, long_id, "Heartbeat", {}])
    assert reply[0] == 4 and reply[1] == long_id[:36] and reply[2] == "ProtocolError"
    reply = await call(ws, [2, "e1", "StatusNotification",
                            {"connectorId": 1, "errorCode": "NoError", "status": "Bogus"}])
    assert reply[:3] == [4, "e1", "PropertyConstraintViolation"]


async def test_a_forged_log_line_stays_inside_its_own(open_link):
    cs, ws, captured = open_link
    forged = "\n2026-12-01 10:00:00.000000 INFO growatt_thor_sessions: session logged: X"
    await call(ws, None, '[2,"f1","Heartbeat",{}' + forged)  # malformed: logged
    lines = [ln for ln in captured.lines() if "session logged" in ln]
    assert lines and all("\n" not in ln and "\\n2026" in ln for ln in lines)


async def test_a_flooding_charger_is_slowed_and_the_other_never_notices(open_link):
    cs, ws, _ = open_link
    async with sim_for(cs) as honest:
        await honest.wait_connected()
        for i in range(200):
            await ws.send(json.dumps([2, f"h{i}", "Heartbeat", {}]))
        replies = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(200)]
        replies = [r for r in replies if r[0] != 2]
        busy = [r for r in replies if r[0] == 4]
        assert busy and all(r[2] == "GenericError" for r in busy)
        assert len(replies) - len(busy) >= 40  # the burst was served
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await honest.call("Heartbeat", {})
        assert loop.time() - t0 < 1.0
    await async_wait_for(lambda: cs.link("FUZZ0001") is not None, what="flooder still linked")


async def test_a_connection_closing_during_a_reply_ends_quietly(log):
    logger, captured = log
    cs = await central(logger, {CID: None})
    try:
        for _ in range(5):
            ws = await connect(f"ws://127.0.0.1:{cs.port}/ocpp/ws/{CID}",
                               subprotocols=["ocpp1.6"])
            await ws.send(json.dumps([2, "b", "BootNotification", {
                "chargePointVendor": "Growatt", "chargePointModel": "THOR_22AS"}]))
            ws.transport.abort()  # gone before the reply (and the start-up calls) go out
            await async_wait_for(lambda: cs.link(CID) is None, what="the link ended")
    finally:
        await cs.close()
    assert [r.getMessage() for r in captured.records if r.levelno >= logging.ERROR] == []
    assert not any(r.exc_info for r in captured.records)
