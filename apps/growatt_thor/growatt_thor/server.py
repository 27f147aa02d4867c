"""The central system: chargers, their links, and a websockets server in front.

No AppDaemon imports. :class:`CentralSystem` keeps one :class:`ChargerState` per
charger id for as long as it lives (so a charger that reconnects keeps its
entities and state) and runs one :class:`ChargerLink` per open connection.
:meth:`CentralSystem.attach` takes any connection object, so the socket can come
from our own websockets server (:meth:`serve`) or from AppDaemon's web server
(``webroute.py``). Both ask :meth:`CentralSystem.check_handshake` first, so a
charger meets the same checks whichever way it comes in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import re
import ssl as ssl_module
import time
from dataclasses import dataclass
from http import HTTPStatus
from collections.abc import Callable, Mapping

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from .link import ChargerLink, Connection, LinkHooks, LinkSettings
from .thor.bounds import AuthBackoff
from .thor.identity import CHARGER_ID, Verdict, valid_charger_id
from .thor.state import ChargerState

SUBPROTOCOL = "ocpp1.6"
MAX_FRAME = 2**20  # bytes: the largest frame a charger may send (the THOR's are < 4 kB)
OPEN_TIMEOUT = 10.0  # s: a WebSocket handshake that takes longer is dropped

# /ocpp/ws/<id>, /ocpp/<id>, /<id>  (the THOR appends its serial to G_ServerURL)
_PATH = re.compile(rf"^/(?:ocpp/(?:ws/)?)?(?P<id>{CHARGER_ID.pattern})/?$")


def charger_id_from_path(path: str) -> str | None:
    """The charger id in a connection path, exactly as written, or None if the path is
    not one of ours (``/ocpp/ws/`` names no charger: ``ws`` is not an id)."""
    m = _PATH.match(path.split("?", 1)[0])
    return m.group("id") if m and valid_charger_id(m.group("id")) else None


def tls_context(certfile: str, keyfile: str) -> ssl_module.SSLContext:
    """A server context for wss:// (blocking: reads the files). TLS 1.2 or newer, which
    OCPP 1.6 security profile 2 asks for."""
    ctx = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl_module.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


class _NoCredentials(logging.Filter):
    """websockets logs every request header at DEBUG: never the Authorization one."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() in (
                "authorization", "proxy-authorization"):
            record.args = (args[0], "***")
        return True


def basic_auth_password(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an HTTP Basic ``Authorization`` header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def offers_subprotocol(header: str | None) -> bool:
    """Whether a ``Sec-WebSocket-Protocol`` request header offers ``ocpp1.6``."""
    return SUBPROTOCOL in (p.strip() for p in (header or "").split(","))


@dataclass(frozen=True)
class Refusal:
    """Why a connection is refused before the upgrade: the HTTP answer to send."""

    status: HTTPStatus
    body: str
    headers: tuple[tuple[str, str], ...] = ()


class CentralSystem:
    """All chargers of one pack instance."""

    def __init__(
        self,
        hooks: LinkHooks,
        settings: LinkSettings,
        logger: logging.Logger,
        *,
        passwords: dict[str, str] | None = None,
        accept: Callable[[str], Verdict] = lambda charger_id: Verdict(True),
        backoff: AuthBackoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hooks = hooks
        self.settings = settings
        self.logger = logger
        self.passwords = passwords or {}
        self.accept = accept
        self.backoff = backoff or AuthBackoff()
        self.clock = clock
        self.states: dict[str, ChargerState] = {}
        self.links: dict[str, ChargerLink] = {}
        self._server: Server | None = None

    # --- chargers ---------------------------------------------------------------------

    def state(self, charger_id: str) -> ChargerState:
        if charger_id not in self.states:
            self.states[charger_id] = ChargerState(charger_id)
        return self.states[charger_id]

    def link(self, charger_id: str) -> ChargerLink | None:
        return self.links.get(charger_id)

    async def attach(self, charger_id: str, connection: Connection) -> None:
        """Run a charger's link over ``connection`` until it closes.

        A second connection for the same id replaces the first (the THOR may
        reconnect before we noticed that the old socket died).
        """
        old = self.links.get(charger_id)
        if old is not None:
            self.logger.info("%s: new connection replaces the old one", charger_id)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old._connection.close(), 5)
        state = self.state(charger_id)
        link = ChargerLink(charger_id, connection, state, self.hooks, self.settings,
                           self.logger.getChild(charger_id))
        self.links[charger_id] = link
        self.logger.info("%s: connected", charger_id)
        try:
            await link.run()
        except Exception as err:  # connection closed or broken: normal life of a charger
            self.logger.info("%s: connection ended: %s", charger_id, err or type(err).__name__)
        finally:
            if self.links.get(charger_id) is link:
                del self.links[charger_id]
                changed = state.on_disconnect()
                self.logger.info("%s: disconnected", charger_id)
                with contextlib.suppress(Exception):
                    await self.hooks.emit(charger_id, "disconnected", {})
                    await self.hooks.emit(charger_id, "state", {"changed": sorted(changed)})

    # --- our own websockets server ----------------------------------------------------

    async def serve(self, host: str, port: int, ssl: ssl_module.SSLContext | None = None
                    ) -> Server:
        """Listen for chargers on ``ws://host:port/ocpp/ws/<id>`` (``wss://`` with ``ssl``)."""
        self._server = await serve(
            self._handle,
            host,
            port,
            subprotocols=[SUBPROTOCOL],
            process_request=self._check_request,
            ping_interval=None,  # the THOR pings us every 120 s; it need not answer ours
            open_timeout=OPEN_TIMEOUT,
            close_timeout=5,
            max_size=MAX_FRAME,
            logger=self._websockets_logger(),
            ssl=ssl,
        )
        self.logger.info("OCPP 1.6J central system listening on %s://%s:%s/ocpp/ws/<id>",
                         "wss" if ssl else "ws", host, port)
        return self._server

    @property
    def port(self) -> int | None:
        if self._server is None:
            return None
        for sock in self._server.sockets:
            return sock.getsockname()[1]
        return None

    async def close(self) -> None:
        """Stop listening and close every charger connection (code 1001: going away)."""
        if self._server is not None:
            self._server.close(close_connections=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 10)
            self._server = None
        for link in list(self.links.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link._connection.close(1001, "server going away"), 5)

    def _websockets_logger(self) -> logging.Logger:
        logger = self.logger.getChild("websockets")
        if not any(isinstance(f, _NoCredentials) for f in logger.filters):
            logger.addFilter(_NoCredentials())
        return logger

    def check_handshake(self, charger_id: str, headers: Mapping[str, str],
                        source: str | None) -> Refusal | None:
        """None when ``charger_id`` may connect with these request headers, else why not.

        The same checks for every transport, in this order: a source that failed to
        log in too often waits (HTTP 429); the ``ocpp1.6`` subprotocol is offered
        (400); the id is admitted (403, see ``thor/identity.py``); when the charger
        has a password, HTTP Basic auth with the charger id as user name (OCPP 1.6
        security profile 1), compared in constant time (401, and the source's
        back-off grows).
        """
        source = source or "?"
        now = self.clock()
        wait = self.backoff.retry_after(source, now)
        if wait > 0:
            return Refusal(HTTPStatus.TOO_MANY_REQUESTS, "Too many failed logins\n",
                           (("Retry-After", str(int(wait) + 1)),))
        if not offers_subprotocol(headers.get("Sec-WebSocket-Protocol")):
            self.logger.warning("Refused charger %s: it did not offer subprotocol %s",
                                charger_id, SUBPROTOCOL)
            return Refusal(HTTPStatus.BAD_REQUEST, f"Offer subprotocol {SUBPROTOCOL}\n")
        verdict = self.accept(charger_id)
        if not verdict.admitted:
            self.logger.warning("Refused charger %s from %s: %s", charger_id, source,
                                verdict.reason)
            return Refusal(HTTPStatus.FORBIDDEN, "Unknown charger\n")
        expected = self.passwords.get(charger_id)
        if expected is not None:
            creds = basic_auth_password(headers.get("Authorization"))
            user_ok = creds is not None and hmac.compare_digest(creds[0].encode(),
                                                                charger_id.encode())
            password_ok = creds is not None and hmac.compare_digest(creds[1].encode(),
                                                                    expected.encode())
            if not (user_ok and password_ok):
                wait = self.backoff.failed(source, now)
                self.logger.warning("Refused charger %s from %s: wrong or missing credentials"
                                    "%s", charger_id, source,
                                    f" (next try in {wait:.0f} s)" if wait else "")
                return Refusal(HTTPStatus.UNAUTHORIZED, "Wrong credentials\n",
                               (("WWW-Authenticate", 'Basic realm="OCPP"'),))
            self.backoff.succeeded(source)
        return None

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        charger_id = charger_id_from_path(request.path)
        if charger_id is None:
            self.logger.warning("Refused a connection to %s: not /ocpp/ws/<charger id>",
                                request.path)
            return connection.respond(HTTPStatus.NOT_FOUND, "Use /ocpp/ws/<charger id>\n")
        remote = connection.remote_address
        refusal = self.check_handshake(charger_id, request.headers,
                                       str(remote[0]) if remote else None)
        if refusal is None:
            return None
        response = connection.respond(refusal.status, refusal.body)
        for name, value in refusal.headers:
            response.headers[name] = value
        return response

    async def _handle(self, connection: ServerConnection) -> None:
        charger_id = charger_id_from_path(connection.request.path)
        assert charger_id is not None  # _check_request refused the others
        await self.attach(charger_id, connection)

