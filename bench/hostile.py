"""Benchmark (not a test): the security review's findings, re-run as they were written.

    .venv/bin/python -m bench.hostile [--json out.json]

Against the pack in a real AppDaemon on 127.0.0.1, with an honest simulated THOR charging:
1,000 password guesses; 500 replies nobody asked for, 1 MB each; 3,000 MeterValues with
made-up transaction ids, then the honest charger's StopTransaction; 100 unknown charger
ids. Prints what each cost (time, AppDaemon's memory and log growth, entities) and what
the peer got back.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "apps" / "growatt_thor")]

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402

from bench.stats import rss_mb  # noqa: E402
from growatt_thor.simulator import SimSettings, ThorSimulator  # noqa: E402
from growatt_thor.simulator.sim import ID_TAG  # noqa: E402
from tests.adharness import AppDaemon  # noqa: E402
from tests.conftest import hub_app  # noqa: E402
from tests.helpers import free_port  # noqa: E402

CID, PASSWORD, FLOODER = "XGJ00003214700CA", "12345678", "FLOOD0001"


def log_bytes(ad: AppDaemon) -> int:
    return sum(p.stat().st_size for p in ad.root.glob("*.log"))


async def attempt(port: int, cid: str, user: str, password: str) -> int:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        async with connect(f"ws://127.0.0.1:{port}/ocpp/ws/{cid}", subprotocols=["ocpp1.6"],
                           additional_headers={"Authorization": f"Basic {token}"},
                           open_timeout=5):
            return 101
    except InvalidStatus as err:
        return err.response.status_code


async def run() -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        ad = AppDaemon(Path(tmp), {"growatt_thor_hub": hub_app(port, chargers={
            CID: {"password": PASSWORD}, FLOODER: {}})})
        await asyncio.to_thread(ad.start)
        sim = ThorSimulator(SimSettings(url=f"ws://127.0.0.1:{port}/ocpp/ws", password=PASSWORD,
                                        reconnect_delay=(0.2, 0.5), call_timeout=10))
        try:
            await sim.start()
            await sim.wait_connected()
            tx = await sim.charge()
            await sim.send_meter_values(600)
            pid = ad.proc.pid

            # 2. 500 unsolicited 1 MB CALLRESULTs
            rss0, log0 = rss_mb(pid), log_bytes(ad)
            big = json.dumps([3, "stale", {"data": "x" * 1_000_000}])
            t0 = time.monotonic()
            async with connect(f"ws://127.0.0.1:{port}/ocpp/ws/{FLOODER}",
                               subprotocols=["ocpp1.6"], max_size=2**21) as ws:
                for _ in range(500):
                    await ws.send(big)
                await ws.send('[2,"after","Heartbeat",{}]')
                while (reply := json.loads(await ws.recv()))[1] != "after":
                    pass
            out["stale_replies"] = {"seconds": round(time.monotonic() - t0, 2),
                                    "rss_mb_before": round(rss0, 1),
                                    "rss_mb_after": round(rss_mb(pid), 1),
                                    "log_bytes_added": log_bytes(ad) - log0,
                                    "heartbeat_after": reply[0] == 3}

            # 3. 3,000 MeterValues with made-up transaction ids, then the honest stop
            async with connect(f"ws://127.0.0.1:{port}/ocpp/ws/{FLOODER}",
                               subprotocols=["ocpp1.6"]) as ws:
                t0 = time.monotonic()
                for i in range(3000):
                    await ws.send(json.dumps([2, f"m{i}", "MeterValues", {
                        "connectorId": 1, "transactionId": 500000 + i, "meterValue": [{
                            "timestamp": "2026-12-01T10:00:00Z", "sampledValue": [
                                {"value": "100", "measurand": "Energy.Active.Import.Register"}
                            ]}]}]))
                kinds: Counter = Counter()
                while sum(kinds.values()) < 3000:
                    msg = json.loads(await ws.recv())
                    if msg[0] != 2:
                        kinds["handled" if msg[0] == 3 else f"refused ({msg[2]})"] += 1
                flood_s = time.monotonic() - t0
            t0 = time.monotonic()
            await sim.call("StopTransaction", {"idTag": ID_TAG, "meterStop": 5000,
                                               "timestamp": sim.local(),
                                               "transactionId": tx, "reason": "Local"})
            out["made_up_transactions"] = {"flood_seconds": round(flood_s, 2),
                                           "replies": dict(kinds),
                                           "honest_stop_reply_ms":
                                               round((time.monotonic() - t0) * 1000, 1)}

            # 3b. unknown ids: refused, and no entities for them
            before = len(ad.states("default"))
            statuses = Counter([await attempt(port, f"NOPE{i:04d}", f"NOPE{i:04d}", "")
                                for i in range(100)])
            out["unknown_ids"] = {"statuses": dict(statuses),
                                  "entities_added": len(ad.states("default")) - before}
            # 4. password guesses (last: the back-off is per source address, and all of this
            # comes from 127.0.0.1), then look-alike ids without credentials
            out["look_alikes"] = {cid: await attempt(port, cid, "anybody", "")
                                  for cid in (CID.lower(), CID + ".")}
            t0 = time.monotonic()
            statuses = Counter([await attempt(port, CID, CID, f"guess{i}") for i in range(1000)])
            out["guesses"] = {"seconds": round(time.monotonic() - t0, 2),
                              "statuses": dict(statuses)}

            out["tracebacks_in_log"] = ad.logs(tail=100000).count("Traceback")
        finally:
            await sim.stop()
            await asyncio.to_thread(ad.stop)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args()
    out = asyncio.run(run())
    for key, value in out.items():
        print(f"{key:22} {value}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
