"""OCPP over AppDaemon's own web server: an aiohttp WebSocket as a charger connection.

No AppDaemon imports: :func:`accept_charger` takes the aiohttp request that
AppDaemon hands an app route (``/app/<charger id>``) and runs the charger
through the same :class:`CentralSystem` as the pack's own port, with the same
handshake checks (:meth:`CentralSystem.check_handshake`), frame limit and
handshake timeout. This is how a THOR reaches the pack inside the Home
Assistant add-on, which publishes only AppDaemon's port 5050.
"""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from .server import MAX_FRAME, OPEN_TIMEOUT, SUBPROTOCOL, CentralSystem

CLOSE_TIMEOUT = 2.0  # s


class WebSocketClosed(ConnectionError):
    """The charger's aiohttp WebSocket is closed (or broke)."""


class AiohttpConnection:
    """``recv``/``send``/``close`` (what :class:`ChargerLink` needs) over an aiohttp socket.

    Pings are answered by aiohttp itself (``autoping``); the THOR pings every 120 s.
    """

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def recv(self) -> str | bytes:
        msg = await self._ws.receive()
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return msg.data
        if msg.type == WSMsgType.ERROR:
            raise WebSocketClosed(f"WebSocket error: {self._ws.exception()}")
        raise WebSocketClosed(f"closed (code {self._ws.close_code})")

    async def send(self, message: str) -> None:
        if self._ws.closed:
            raise WebSocketClosed("closed")
        await self._ws.send_str(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code=code, message=reason.encode())


async def accept_charger(system: CentralSystem, request: web.Request,
                         charger_id: str) -> web.StreamResponse:
    """Answer one upgrade request for ``charger_id``; returns when the connection ends."""
    refusal = system.check_handshake(charger_id, request.headers, request.remote)
    if refusal is not None:
        return web.Response(status=refusal.status, text=refusal.body,
                            headers=dict(refusal.headers))
    # timeout: how long close() waits for the charger's close frame (a dead peer never
    # sends one, and AppDaemon gives an app's terminate() only a few seconds)
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=MAX_FRAME,
                               autoping=True, heartbeat=None, timeout=CLOSE_TIMEOUT)
    if not ws.can_prepare(request).ok:
        system.logger.warning("Refused a plain HTTP request to the OCPP route of %s",
                              charger_id)
        return web.Response(status=400, text="This is an OCPP 1.6J WebSocket endpoint\n")
    await asyncio.wait_for(ws.prepare(request), OPEN_TIMEOUT)
    await system.attach(charger_id, AiohttpConnection(ws))
    return ws


__all__ = ["AiohttpConnection", "WebSocketClosed", "accept_charger"]
