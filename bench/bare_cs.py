"""A bare OCPP 1.6 central system that only acknowledges: the yardstick of bench/load.py.

    python -m bench.bare_cs --port 9100

The `ocpp` library's ChargePoint over a websockets server, one handler per action the
simulated THOR sends, each returning the smallest valid reply. Schema validation as the
pack has it (the library's, not in a thread: ``ASYNC_VALIDATION = False``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

import ocpp.messages
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, DataTransferStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection, serve

ocpp.messages.ASYNC_VALIDATION = False
_tx = itertools.count(1)


def now() -> str:
    return datetime.now(UTC).isoformat()


class Bare(ChargePoint):
    @on(Action.boot_notification)
    async def boot(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(current_time=now(), interval=60,
                                            status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    async def heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now())

    @on(Action.status_notification)
    async def status(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.meter_values)
    async def meter(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.start_transaction)
    async def start_tx(self, **_: Any) -> call_result.StartTransaction:
        return call_result.StartTransaction(transaction_id=next(_tx),
                                            id_tag_info={"status": "Accepted"})

    @on(Action.stop_transaction)
    async def stop_tx(self, **_: Any) -> call_result.StopTransaction:
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @on(Action.data_transfer)
    async def data(self, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status=DataTransferStatus.accepted)


async def handler(ws: ServerConnection) -> None:
    cp = Bare(ws.request.path.rstrip("/").rsplit("/", 1)[-1], ws)
    try:
        await cp.start()
    except Exception:  # noqa: BLE001  (a charger going away)
        pass


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, subprotocols=["ocpp1.6"],
                     ping_interval=None, max_size=2**20):
        print(f"bare central system on ws://127.0.0.1:{port}/ocpp/ws", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    asyncio.run(main(p.parse_args().port))
