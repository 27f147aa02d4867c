"""The hub node: the AppDaemon app that owns the OCPP central system.

A thin adapter. It validates its arguments, runs :class:`CentralSystem` in a
task on AppDaemon's loop, turns the core's changes into entities (``set_state``)
and events, and offers the chargers to other nodes (``get_app``).

apps.yaml::

    growatt_thor_hub:
      module: growatt_thor.hub
      class: GrowattThorHub
      port: 9000        # null: only AppDaemon's web server (the HA add-on)

A THOR connects to the pack's own port (``ws://<host>:9000/ocpp/ws/<serial>``)
or, for each charger listed under ``chargers:``, to AppDaemon's web server
(``ws://<host>:5050/app/<serial>``): both run through the same central system.

It lives in its own namespace (``growatt_thor``) so that a Home Assistant
restart, which stops the apps of HA's namespace, never stops the OCPP server:
the charger stays connected and the entities are republished when HA is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appdaemon.adapi import ADAPI

from . import __version__
from .adapter import load_config, notify_ha, publish_state
from .link import LinkSettings
from .server import CentralSystem, tls_context
from .thor import arbiter, controls, diagnostics
from .thor.controls import BadValue
from .thor.config import ChargerConfig, HubConfig, slug
from .thor.dialect import zone_mismatch
from .thor.entities import DEFAULT_NAME, DEFAULT_PREFIX, render
from .thor.bounds import printable
from .thor.identity import Admission, CardPolicy, Verdict
from .thor.inbox import Inbox
from .thor.storage import TransactionIds, read_json, write_json_atomic, write_text_atomic
from .thor.writequeue import QueueSettings
from .webroute import accept_charger
from .writer import ChargerWriter, WriterSettings

EVENT = "growatt_thor"  # every event of the pack: data = {topic, charger_id, payload, ts}
# Kept on disk (thor/inbox.py) before the charger's reply, for subscribers that read them
# later: what a session row is made of. (Meter readings are not: the stop carries the last.)
INBOX_TOPICS = frozenset({"transaction_started", "transaction_stopped", "session_record"})
COMMAND_EVENT = "growatt_thor_command"  # data = {command, value, charger_id?, key?, confirm?}
DIAGNOSTICS_EVENT = "growatt_thor_diagnostics"  # writes the diagnostics file
DIAGNOSTICS_KEEP = 5  # files kept in <state_dir>/diagnostics


def jsonable(value: Any) -> Any:
    """Event payloads as plain JSON data (dataclasses become dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _address(host: str) -> str:
    """A host to show in a URL: a wildcard bind address is no address to connect to."""
    return "<this machine's address>" if host in ("", "0.0.0.0", "::") else host


class GrowattThorHub(ADAPI):
    """Runs the OCPP server and publishes every charger.

    See docs/nodes.md, "Events and the hub API"."""

    # --- lifecycle --------------------------------------------------------------------

    async def initialize(self) -> None:
        self.cfg: HubConfig = await load_config(self, HubConfig,
                                                self.args.get("ha_namespace", "default"))
        cfg = self.cfg
        if not await self.namespace_exists(cfg.namespace):
            await self.add_namespace(cfg.namespace, persist=False)
        self.set_namespace(cfg.namespace)
        self._warnings = diagnostics.RecentWarnings()
        self.logger.addHandler(self._warnings)

        self.state_dir = Path(cfg.state_dir or Path(self.config_dir) / "growatt_thor")
        await self.run_in_executor(self.state_dir.mkdir, parents=True, exist_ok=True)
        self.txids = TransactionIds(self.state_dir / "transactions.json")
        self.inbox = await self.run_in_executor(Inbox, self.state_dir / "session_inbox.jsonl")
        self._inbox_lock = asyncio.Lock()
        self._first_charger_file = self.state_dir / "first_charger.json"
        pinned = None
        if not cfg.chargers and cfg.accept_unknown_chargers is None:
            pinned = (await self.run_in_executor(read_json, self._first_charger_file,
                                                 {})).get("charger_id")
            if pinned:
                self.log(f"Serving charger {pinned}, the first one that connected (no "
                         f"chargers: in apps.yaml); others are refused. To change, list "
                         f"your chargers or delete {self._first_charger_file}.")
        self.admission = Admission.create(cfg.chargers, slug, cfg.accept_unknown_chargers,
                                          pinned)
        self.charger_tz = ZoneInfo(cfg.time_zone or str(self.get_timezone()))
        self.cards = CardPolicy.create(cfg.rfid_policy, cfg.id_tags, cfg.allow_ha_start,
                                       cfg.remote_id_tag)

        self.system = CentralSystem(
            hooks=self,
            settings=LinkSettings(
                heartbeat_interval=cfg.heartbeat_interval,
                call_timeout=cfg.call_timeout,
                idle_timeout=cfg.idle_timeout,
                charger_tz=self.charger_tz,
                cards=self.cards,
                log_frames=cfg.log_frames,
                calls_per_second=cfg.calls_per_second,
                call_burst=cfg.calls_per_second * 5,
            ),
            logger=self.logger,
            passwords={cid: c.password for cid, c in cfg.chargers.items() if c.password},
            accept=self._admit,
        )
        self._published: dict[str, tuple[str, dict[str, Any]]] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._prefixes: dict[str, str] = {}
        self.writers: dict[str, ChargerWriter] = {}
        self._zone_checked: set[str] = set()
        self._subscribers: dict[str, tuple[Any, frozenset[str]]] = {}
        # name -> (topics, messages) for subscribers that are away
        self._backlogs: dict[str, tuple[frozenset[str], list[tuple[str, str, Any]]]] = {}
        self._sub_locks: dict[str, asyncio.Lock] = {}
        self._writer_tasks: list[asyncio.Task] = []
        self._route_tasks: set[asyncio.Task] = set()
        self._background: set[asyncio.Task] = set()
        self.loop = asyncio.get_running_loop()

        # Configured chargers are visible (as Unavailable) before they first connect.
        for cid in [*cfg.chargers, *([pinned] if pinned else [])]:
            self.system.state(cid)
            self._writer(cid)
            self._dirty.add(cid)

        urls = []
        if cfg.port is not None:
            tls = None
            if cfg.tls_certfile and cfg.tls_keyfile:
                try:
                    tls = await self.run_in_executor(tls_context, cfg.tls_certfile,
                                                     cfg.tls_keyfile)
                except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
                    problem = (f"tls_certfile/tls_keyfile: {err}: the own port stays closed "
                               f"(a plain ws:// port instead would expose the password)")
                    self.log(problem, level="ERROR")
                    await self._notify_ha("Growatt THOR: TLS certificate", problem)
            if tls is not None or not cfg.tls_certfile:
                await self.system.serve(cfg.host, cfg.port, ssl=tls)
                scheme = "wss" if tls is not None else "ws"
                urls.append(f"{scheme}://{_address(cfg.host)}:{self.system.port}/ocpp/ws")
        urls += await self._register_routes()
        self._publisher = await self.create_task(self._publish_loop())
        self._wake.set()
        await self.listen_event(self._on_plugin_started, "plugin_started",
                                namespace=cfg.ha_namespace)
        for ns in dict.fromkeys((cfg.namespace, cfg.ha_namespace)):
            await self.listen_event(self._on_command_event, COMMAND_EVENT, namespace=ns)
            await self.listen_event(self._on_diagnostics_event, DIAGNOSTICS_EVENT, namespace=ns)
        self.register_service("growatt_thor/diagnostics", self._diagnostics_service,
                              namespace=cfg.namespace)
        if urls:
            self.log("Growatt THOR hub ready. Set the THOR's server URL to "
                     + " or ".join(urls) + " (it appends its serial number itself)")
        else:
            self.log("Growatt THOR hub ready, but no charger can connect: see the lines above",
                     level="ERROR")

    async def _register_routes(self) -> list[str]:
        """One AppDaemon web route per configured charger: ``/app/<serial>``.

        Returns the URL a THOR can use, or nothing (with a log line saying why).
        """
        http = getattr(self.AD, "http", None)
        if http is None:
            if self.cfg.port is None:
                self.log("port is null and AppDaemon has no http: section, so no charger can "
                         "connect: add http: {url: http://0.0.0.0:5050} to appdaemon.yaml",
                         level="ERROR")
            return []
        if not self.cfg.chargers:
            return []  # routes are per serial; with no serial known, only the own port
        # AppDaemon lets /app/ routes through unless http: has a password *and* a token
        # list (route_secure); then it wants a cookie or ?token=, which a THOR cannot send.
        if getattr(http, "password", None) is not None and getattr(http, "valid_tokens", None):
            problem = ("AppDaemon's http: has a password and tokens, and then refuses /app/ "
                       "routes without its token, which a THOR cannot send. Remove tokens: "
                       "from http: in appdaemon.yaml (the password still protects the admin "
                       "UI and the API), or use the pack's own port.")
            self.log(problem, level="ERROR")
            await self._notify_ha("Growatt THOR: AppDaemon refuses the charger", problem)
            return []
        for cid in self.cfg.chargers:
            await self.register_route(self._on_route, cid)
        return [f"ws://{_address(str(http.host))}:{http.port}/app"]

    def _admit(self, charger_id: str) -> Verdict:
        """May ``charger_id`` connect (thor/identity.py)? First contact is remembered."""
        verdict = self.admission.decide(charger_id)
        if verdict.first_contact:
            message = (f"Charger {charger_id} is the first to connect and now the only one "
                       f"the pack accepts (remembered in {self._first_charger_file}). To make "
                       f"that explicit, with its installation limit and password, add to the "
                       f"hub in apps.yaml: chargers: {{{charger_id}: {{max_current: 16, "
                       f"password: '<G_Authentication>'}}}}")
            self.log(message, level="WARNING")
            self._keep(self.run_in_executor(write_json_atomic, self._first_charger_file,
                                            {"charger_id": charger_id}))
            self._keep(self._notify_ha("Growatt THOR: charger accepted", message))
        return verdict

    def _keep(self, awaitable: Any) -> None:
        """Run ``awaitable`` in the background (from a sync callback), logging a failure."""
        task = asyncio.ensure_future(awaitable)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("background step failed: %r", task.exception())

    async def _on_route(self, request: Any, kwargs: Any) -> Any:
        """AppDaemon's web server: a charger asking for ``/app/<serial>``."""
        task = asyncio.current_task()
        self._route_tasks.add(task)
        try:
            return await accept_charger(self.system, request, request.match_info["route"])
        finally:
            self._route_tasks.discard(task)

    async def terminate(self) -> None:
        """Close the server so that a reload never meets 'address already in use'."""
        if getattr(self, "_warnings", None) is not None:
            self.logger.removeHandler(self._warnings)
        system = getattr(self, "system", None)
        if system is not None:
            await system.close()
        tasks = [t for t in (getattr(self, "_publisher", None),
                             *getattr(self, "_writer_tasks", [])) if t is not None]
        for task in tasks:
            task.cancel()
        # Wait for them, and for the web routes' handlers to return their socket:
        # AppDaemon cancels an app's route tasks once terminate() returns.
        pending = [*tasks, *getattr(self, "_route_tasks", ())]
        if pending:  # briefly: AppDaemon gives all apps' terminate() 3 s in total
            await asyncio.wait(pending, timeout=1)

    # --- the API for other nodes ------------------------------------------------------

    def charger_ids(self) -> list[str]:
        """Every charger known to the hub (configured or seen)."""
        return sorted(self.system.states)

    def charger_snapshot(self, charger_id: str) -> dict[str, Any] | None:
        """The last known state of one charger (secrets redacted), or None."""
        st = self.system.states.get(charger_id)
        return None if st is None else jsonable(st.snapshot())

    def charger_config(self, charger_id: str) -> ChargerConfig:
        """The apps.yaml settings of a charger (defaults for chargers not listed)."""
        return self.cfg.chargers.get(charger_id) or ChargerConfig()

    def entity_prefix(self, charger_id: str) -> str:
        """``sensor.<prefix>_power`` etc. The single default charger keeps the ids of the
        Home Assistant integration users migrate from."""
        if charger_id not in self._prefixes:
            c = self.cfg.chargers.get(charger_id)
            if c is not None and c.prefix:
                prefix = c.prefix
            elif (len(self.cfg.chargers) <= 1 and (not self.cfg.chargers
                                                   or charger_id in self.cfg.chargers)
                  and DEFAULT_PREFIX not in self._prefixes.values()):
                prefix = DEFAULT_PREFIX
            else:
                prefix = f"growatt_thor_{slug(charger_id)}"
            self._prefixes[charger_id] = prefix
        return self._prefixes[charger_id]

    def friendly_name(self, charger_id: str) -> str:
        c = self.cfg.chargers.get(charger_id)
        if c is not None and c.name:
            return c.name
        return DEFAULT_NAME if self.entity_prefix(charger_id) == DEFAULT_PREFIX else \
            f"Growatt THOR {charger_id}"

    def link(self, charger_id: str):
        """The live OCPP link of a charger, or None when it is not connected."""
        return self.system.link(charger_id)

    # --- durable subscribers (nodes that must not miss a message) ---------------------

    async def subscribe(self, name: str, callback: Any, topics: Any,
                        since: int | None = None) -> None:
        """Deliver ``topics`` to ``await callback(charger_id, topic, payload)``.

        Unlike the ``growatt_thor`` event, delivery is awaited before the charger
        gets its reply (so a StopTransaction is only acknowledged once the
        subscriber has it safe), and messages that arrive while the subscriber
        is away (reloading) are kept and replayed, in order, when it subscribes
        again under the same name.

        The session topics (``INBOX_TOPICS``) are also on disk before the reply, with
        a sequence number (``payload["inbox_seq"]``). A subscriber that keeps the
        last one it applied passes it as ``since`` and gets every later one first,
        also those from before a restart or sent while it had never started.
        """
        lock = self._sub_locks.setdefault(name, asyncio.Lock())
        async with lock:
            topics = frozenset(topics)
            self._subscribers[name] = (callback, topics)
            _, backlog = self._backlogs.pop(name, ((), []))
            if since is not None:
                stored = await self.run_in_executor(self.inbox.since, since)
                stored = [e for e in stored if e["topic"] in topics]
                if stored:
                    self.log(f"{name}: {len(stored)} stored session message(s) to read")
                for e in stored:
                    await self._deliver(name, callback, e["cid"], e["topic"],
                                        {**e["payload"], "inbox_seq": e["seq"]})
                backlog = [m for m in backlog if m[1] not in INBOX_TOPICS]  # read just now
            if backlog:
                self.log(f"replaying {len(backlog)} message(s) {name} missed")
            for cid, topic, payload in backlog:
                await self._deliver(name, callback, cid, topic, payload)

    def unsubscribe(self, name: str) -> None:
        """Stop delivering to ``name`` (keep a backlog until it subscribes again)."""
        sub = self._subscribers.pop(name, None)
        if sub is not None:
            self._backlogs.setdefault(name, (sub[1], []))

    async def _deliver_all(self, cid: str, topic: str, payload: dict[str, Any]) -> None:
        for name, (callback, topics) in list(self._subscribers.items()):
            if topic in topics:
                async with self._sub_locks[name]:
                    await self._deliver(name, callback, cid, topic, payload)
        for topics, backlog in self._backlogs.values():
            if topic in topics:
                backlog.append((cid, topic, payload))
                del backlog[:-10000]

    async def _deliver(self, name: str, callback: Any, cid: str, topic: str,
                       payload: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(callback(cid, topic, payload), 30)
        except Exception as err:  # a subscriber's bug must not reach the charger
            self.logger.error("subscriber %s failed on %s: %r", name, topic, err,
                              exc_info=err)

    # --- controls: everything goes through the charger's write queue ------------------
    #
    # Each method queues and returns at once: {"queued": bool, "value": wire value,
    # "note": what was clamped}. The answer of the charger comes later as event
    # topic "write". Bad values raise ValueError with a message for the user.
    # Safe to call from sync apps (threads) and async apps alike.

    def set_max_current(self, amps: Any, charger_id: str | None = None,
                        source: str = "api") -> dict[str, Any]:
        """Max charging current, clamped to [6 A, the charger's ``max_current``]."""
        return self.set_config(controls.MAX_CURRENT_KEY, amps, charger_id, source)

    def set_load_balancing(self, enabled: Any, charger_id: str | None = None,
                           source: str = "api") -> dict[str, Any]:
        return self.set_config(controls.LB_ENABLE_KEY, enabled, charger_id, source)

    def set_load_balancing_limit(self, kw: Any, charger_id: str | None = None,
                                 source: str = "api") -> dict[str, Any]:
        """The grid import limit of the charger's own load balancing, kW."""
        return self.set_config(controls.LB_LIMIT_KEY, kw, charger_id, source)

    def set_charger_mode(self, mode: Any, charger_id: str | None = None,
                         source: str = "api") -> dict[str, Any]:
        """ "Plug & Charge", "RFID only", "HA + RFID (app)" (or 1/2/3). The THOR reboots."""
        return self.set_config(controls.MODE_KEY, mode, charger_id, source)

    def set_schedule(self, start: Any, stop: Any, charger_id: str | None = None,
                     source: str = "api") -> dict[str, Any]:
        """The daily auto-charge window, times as HH:MM."""
        return self.set_config(controls.SCHEDULE_KEY, (start, stop), charger_id, source)

    def set_display(self, on: Any, charger_id: str | None = None,
                    source: str = "api") -> dict[str, Any]:
        return self.set_config(controls.DISPLAY_KEY, on, charger_id, source)

    # the charger's own solar ("PV linkage") mode, driven by its external meter

    def set_pv_mode(self, mode: Any, charger_id: str | None = None,
                    source: str = "api") -> dict[str, Any]:
        """ "Off", "PV linkage", "PV linkage plus" (or the wire values 1&0, 1&1, 1&2).

        Refused while a node of the pack drives the charger (see ``claim_control``)."""
        return self.set_config(controls.PV_MODE_KEY, mode, charger_id, source)

    def set_pv_grid_limit(self, kw: Any, charger_id: str | None = None,
                          source: str = "api") -> dict[str, Any]:
        """The grid import the charger's PV mode may use, kW (0..22)."""
        return self.set_config(controls.PV_LIMIT_KEY, kw, charger_id, source)

    def set_pv_boost(self, mode: Any, start: Any = None, stop: Any = None,
                     energy_kwh: Any = None, by: Any = None, charger_id: str | None = None,
                     source: str = "api") -> dict[str, Any]:
        """The PV mode's boost as one setting: "Off"; "Manual" with a daily window
        (``start``, ``stop`` as HH:MM); "Smart" with ``energy_kwh`` (0.1..200, 0.1 steps)
        by ``by`` (``YYYY-MM-DD HH:MM``, charger local time, in the future). The steps go
        in order; the ``apply`` event says applied, failed, or partly applied."""
        window = None if start is None and stop is None else (start, stop)
        now = datetime.now(self.charger_tz)
        steps = controls.boost_steps(mode, window, energy_kwh, by, now)
        return self._on_loop(lambda w: w.apply("solar boost", steps, source), charger_id)

    def set_off_peak(self, on: Any, charger_id: str | None = None,
                     source: str = "api") -> dict[str, Any]:
        return self.set_config(controls.OFF_PEAK_KEY, on, charger_id, source)

    def set_external_sampling(self, method: Any, charger_id: str | None = None,
                              source: str = "api") -> dict[str, Any]:
        """How the charger measures the grid: "CT 2000:1", "Power meter", "CT 3000:1"."""
        return self.set_config(controls.SAMPLING_KEY, method, charger_id, source)

    def set_tariff(self, price: Any, charger_id: str | None = None,
                   source: str = "api") -> dict[str, Any]:
        """The price per kWh the charger uses all day (``G_TimeSharingPrice``)."""
        return self.set_config(controls.TARIFF_KEY, price, charger_id, source)

    def set_charger_rate(self, rate: Any, charger_id: str | None = None,
                         source: str = "api") -> dict[str, Any]:
        """``G_ChargerRate`` (only ever seen read; its unit is unconfirmed)."""
        return self.set_config(controls.RATE_KEY, rate, charger_id, source)

    # one decision per charger: nodes state demands, the arbiter decides (thor/arbiter.py)

    def demand(self, owner: str, charger_id: str | None = None, charge: bool | None = None,
               current: float | None = None, priority: int = arbiter.SOLAR,
               reason: str = "") -> dict[str, Any]:
        """``owner`` (a node's name) wants the charger charging (``charge`` True), not
        charging (False) or has no opinion (None), at ``current`` A. Replaces the owner's
        previous demand; returns the decision (docs/nodes.md "Who decides")."""
        d = arbiter.Demand(str(owner), int(priority), charge,
                           None if current is None else float(current), str(reason)[:200])
        return self._on_loop(lambda w: w.put_demand(d), charger_id)

    def withdraw(self, owner: str, charger_id: str | None = None) -> dict[str, Any]:
        """The owner no longer has a demand."""
        return self._on_loop(lambda w: w.withdraw(str(owner)), charger_id)

    def decision(self, charger_id: str | None = None) -> dict[str, Any]:
        return self._on_loop(lambda w: {"decision": w.decision.describe(),
                                        "charge": w.decision.charge,
                                        "current": w.decision.current,
                                        "by": w.decision.by}, charger_id)

    def claim_control(self, owner: str, what: str, charger_id: str | None = None) -> None:
        """A node says it drives the charger (``what``: for the log and the refusal).

        While any node does (or has a demand with an opinion), the charger's own solar
        mode can't be switched on; the queue's state shows ``driven_by``."""
        self._on_loop(lambda w: w.claim(str(owner), str(what)), charger_id)

    def release_control(self, owner: str, charger_id: str | None = None) -> None:
        self._on_loop(lambda w: w.release(str(owner)), charger_id)

    def set_config(self, key: str, value: Any, charger_id: str | None = None,
                   source: str = "api") -> dict[str, Any]:
        """Any writable key (see ``thor.controls.SETTINGS``), validated and queued."""
        return self._on_loop(lambda w: w.set_config(key, value, source), charger_id)

    def start_charging(self, charger_id: str | None = None,
                       source: str = "api") -> dict[str, Any]:
        """RemoteStartTransaction with ``remote_id_tag``; refused when the card policy
        does not allow starts from Home Assistant (``allow_ha_start: false``)."""
        if not self.cards.allow_ha_start:
            raise BadValue("starts from Home Assistant are off (allow_ha_start: false in "
                           "the hub's apps.yaml)")
        return self._on_loop(lambda w: w.start(source), charger_id)

    def stop_charging(self, charger_id: str | None = None,
                      source: str = "api") -> dict[str, Any]:
        return self._on_loop(lambda w: w.stop(source), charger_id)

    def access_point_mode(self, confirm: bool = False, charger_id: str | None = None,
                          source: str = "api") -> dict[str, Any]:
        """Open the charger's own Wi-Fi access point: it leaves the network. Needs confirm."""
        if confirm is not True:
            raise BadValue("access-point mode takes the charger off the network; "
                           "call again with confirm=True")
        return self._on_loop(lambda w: w.access_point(source), charger_id)

    def queue_status(self, charger_id: str | None = None) -> dict[str, Any]:
        return jsonable(self._on_loop(lambda w: w.summary(), charger_id))

    def write_pending(self, key: str, charger_id: str | None = None) -> bool:
        """Whether a write of ``key`` is waiting or being sent."""
        return self._on_loop(lambda w: w.pending(key), charger_id)

    def installation_limit(self, charger_id: str | None = None) -> int:
        return self.charger_config(self._resolve(charger_id)).max_current

    def only_charger(self) -> str | None:
        """The charger when the hub knows exactly one, else None."""
        ids = self.charger_ids()
        return ids[0] if len(ids) == 1 else None

    def _resolve(self, charger_id: str | None) -> str:
        if charger_id is None:
            only = self.only_charger()
            if only is None:
                ids = self.charger_ids()
                raise BadValue(f"say which charger (known: {', '.join(ids) or 'none yet'})")
            return only
        if charger_id not in self.system.states:
            raise BadValue(f"unknown charger {charger_id!r}")
        return charger_id

    def _on_loop(self, fn: Any, charger_id: str | None) -> Any:
        """Run ``fn(writer)`` on AppDaemon's loop, also when called from an app's thread."""
        def run() -> Any:
            return fn(self._writer(self._resolve(charger_id)))
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            return run()

        async def run_async() -> Any:
            return run()
        return asyncio.run_coroutine_threadsafe(run_async(), self.loop).result(30)

    def _writer(self, charger_id: str) -> ChargerWriter:
        writer = self.writers.get(charger_id)
        if writer is None:
            cfg = self.cfg
            writer = ChargerWriter(
                charger_id, self.system.state(charger_id),
                get_link=lambda: self.system.link(charger_id),
                emit=lambda topic, payload: self.emit(charger_id, topic, payload),
                settings=WriterSettings(
                    queue=QueueSettings(spacing=cfg.write_spacing, poll_pause=cfg.poll_pause,
                                        command_spacing=cfg.command_spacing,
                                        retries=cfg.write_retries, backoff=cfg.retry_backoff,
                                        command_ttl=cfg.command_ttl,
                                        settle=cfg.write_settle),
                    max_current=self.charger_config(charger_id).max_current,
                    remote_id_tag=cfg.remote_id_tag,
                    grid_poll_interval=cfg.grid_poll_interval),
                logger=self.logger)
            self.writers[charger_id] = writer
            self._writer_tasks.append(asyncio.ensure_future(writer.run()))
        return writer

    async def _on_command_event(self, event: str, data: dict[str, Any], kwargs: Any) -> None:
        """``growatt_thor_command`` from HA (a script, a button) or AppDaemon."""
        command = str(data.get("command", ""))
        cid = data.get("charger_id") or None
        value = data.get("value")
        source = f"event {COMMAND_EVENT}"
        handlers = {
            "set_max_current": lambda: self.set_max_current(value, cid, source),
            "set_load_balancing": lambda: self.set_load_balancing(value, cid, source),
            "set_load_balancing_limit": lambda: self.set_load_balancing_limit(value, cid,
                                                                              source),
            "set_charger_mode": lambda: self.set_charger_mode(value, cid, source),
            "set_schedule": lambda: self.set_schedule(data.get("start"), data.get("stop"),
                                                      cid, source),
            "set_display": lambda: self.set_display(value, cid, source),
            "set_pv_mode": lambda: self.set_pv_mode(value, cid, source),
            "set_pv_grid_limit": lambda: self.set_pv_grid_limit(value, cid, source),
            "set_pv_boost": lambda: self.set_pv_boost(
                value, data.get("start"), data.get("stop"), data.get("energy_kwh"),
                data.get("by"), cid, source),
            "set_off_peak": lambda: self.set_off_peak(value, cid, source),
            "set_external_sampling": lambda: self.set_external_sampling(value, cid, source),
            "set_tariff": lambda: self.set_tariff(value, cid, source),
            "set_charger_rate": lambda: self.set_charger_rate(value, cid, source),
            "set_config": lambda: self.set_config(str(data.get("key")), value, cid, source),
            "start": lambda: self.start_charging(cid, source),
            "stop": lambda: self.stop_charging(cid, source),
            "access_point_mode": lambda: self.access_point_mode(
                data.get("confirm") in (True, "true", "yes", 1), cid, source),
        }
        handler = handlers.get(command)
        try:
            if handler is None:
                raise BadValue(f"unknown command {command!r} (known: {', '.join(handlers)})")
            handler()
        except ValueError as err:
            self.log(f"{COMMAND_EVENT} {command}: {err}", level="WARNING")
            await self._notify_ha("Growatt THOR: command refused", f"{command}: {err}")

    # --- diagnostics ------------------------------------------------------------------

    async def write_diagnostics(self) -> Path:
        """Write the diagnostics file (docs/diagnostics.md) and return its path.

        The pack's version and settings, each charger's boot data and full
        configuration, its last frames each way, its write queue and history, the last
        sessions and the recent warnings; secrets redacted, card ids hashed."""
        chargers = []
        sessions: dict[str, Any] = {}
        for cid in self.charger_ids():
            state = self.system.states[cid]
            writer = self.writers.get(cid)
            chargers.append({"snapshot": state.snapshot(), "config": dict(state.config),
                             "frames": state.frames,
                             "queue": writer.summary() if writer else {},
                             "history": list(writer.history) if writer else []})
            eid = f"sensor.{self.entity_prefix(cid)}_last_sessions"
            try:
                sessions[cid] = await self.get_state(eid, attribute="all",
                                                     namespace=self.cfg.ha_namespace)
            except Exception as err:  # no session log node, or HA away
                sessions[cid] = f"not available: {err}"
        now = datetime.now(UTC)
        doc = diagnostics.build(version=__version__, created=now,
                                settings=self.cfg.model_dump(mode="json"), chargers=chargers,
                                warnings=list(self._warnings.lines), sessions=sessions)
        folder = self.state_dir / "diagnostics"
        path = folder / f"growatt_thor_diagnostics_{now:%Y%m%dT%H%M%SZ}.json"
        text = json.dumps(doc, indent=1, sort_keys=False)
        await self.run_in_executor(self._write_diagnostics_file, folder, path, text)
        self.log(f"diagnostics written to {path} (attach it to a bug report: no secrets, "
                 f"card ids hashed)")
        await self._notify_ha("Growatt THOR: diagnostics written", f"{path}")
        return path

    @staticmethod
    def _write_diagnostics_file(folder: Path, path: Path, text: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
        old = sorted(folder.glob("growatt_thor_diagnostics_*.json"))[:-DIAGNOSTICS_KEEP]
        for f in old:  # bounded: the newest few only
            f.unlink(missing_ok=True)

    async def _diagnostics_service(self, namespace: str, domain: str, service: str,
                                   data: dict[str, Any]) -> dict[str, Any]:
        return {"path": str(await self.write_diagnostics())}

    async def _on_diagnostics_event(self, event: str, data: dict[str, Any],
                                    kwargs: Any) -> None:
        try:
            await self.write_diagnostics()
        except Exception as err:  # a full disk: say so, keep running
            self.log(f"could not write the diagnostics: {err}", level="WARNING")
            await self._notify_ha("Growatt THOR: diagnostics not written", str(err))

    # --- LinkHooks: called by the core ------------------------------------------------

    async def allocate_transaction_id(self, charger_id: str) -> int:
        return await self.run_in_executor(self.txids.next)

    async def emit(self, charger_id: str, topic: str, payload: dict[str, Any]) -> None:
        writer = self._writer(charger_id)  # a new charger gets its queue
        writer.wake()  # connection changes
        if topic == "state":
            self._dirty.add(charger_id)
            self._wake.set()
        elif topic in ("status", "transaction_started", "transaction_stopped") \
                and writer.demands:
            writer.arbitrate(topic)  # a plug-in may let a start go
        data = jsonable(payload)
        if topic == "config":
            await self._check_zone(charger_id)
        elif topic == "fault":
            await self._report_fault(charger_id, data)
        if topic in INBOX_TOPICS:
            async with self._inbox_lock:
                seq = await self.run_in_executor(self.inbox.append, charger_id, topic, data)
            await self._deliver_all(charger_id, topic, {**data, "inbox_seq": seq})
        else:
            await self._deliver_all(charger_id, topic, data)
        envelope = {
            "topic": topic,
            "charger_id": charger_id,
            "payload": data,
            "ts": datetime.now(UTC).isoformat(),
        }
        try:
            await self.fire_event(EVENT, namespace=self.cfg.namespace, **envelope)
        except Exception as err:  # an event listener's problem must not reach the charger
            self.logger.warning("Could not fire %s/%s: %s", EVENT, topic, err)

    async def _report_fault(self, charger_id: str, fault: dict[str, Any]) -> None:
        """A fault: a log line and an HA notification; its end: a log line."""
        if not fault.get("active"):
            self.log(f"{charger_id}: fault cleared")
            return
        codes = ", ".join(f"{k} {printable(v, 80)}" for k, v in fault.items()
                          if k not in ("active", "kind") and v)
        message = f"{charger_id}: {fault.get('kind')} ({codes or 'no codes'})"
        self.log(f"fault: {message}", level="WARNING")
        await self._notify_ha("Growatt THOR: fault", message)

    async def _check_zone(self, charger_id: str) -> None:
        """Once per charger: its G_TimeZone against the zone its times are read in."""
        value = self.system.state(charger_id).config.get("G_TimeZone")
        if not value or charger_id in self._zone_checked:
            return
        self._zone_checked.add(charger_id)
        problem = zone_mismatch(value, self.charger_tz, datetime.now(UTC))
        if problem:
            self.log(f"{charger_id}: {problem}", level="WARNING")
            await self._notify_ha("Growatt THOR: time zone", f"{charger_id}: {problem}")

    # --- publishing -------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        """Publish changed entities, apart from the OCPP handlers (HA may be slow or down)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            failed = set()
            for cid in sorted(dirty):
                st = self.system.states.get(cid)
                if st is None:
                    continue
                entities = render(st, self.entity_prefix(cid), self.friendly_name(cid))
                if not await self._publish(entities):
                    failed.add(cid)
            # Changes that came in during this pass have set _wake: the next pass starts
            # at once. Only a failed set_state (HA unreachable) waits before the retry.
            if failed:
                self._dirty |= failed
                await asyncio.sleep(5)
                self._wake.set()

    async def _publish(self, entities: dict[str, tuple[str, dict[str, Any]]]) -> bool:
        for eid, (state, attrs) in entities.items():
            if self._published.get(eid) == (state, attrs):
                continue
            if not await publish_state(self, eid, state, attrs, self.cfg.ha_namespace):
                return False
            self._published[eid] = (state, attrs)
        return True

    async def _on_plugin_started(self, event: str, data: dict[str, Any], kwargs: Any) -> None:
        """Home Assistant came back: it forgot our entities, so send them all again."""
        self.log("Home Assistant (re)started: republishing every charger entity")
        self._published.clear()
        self._dirty.update(self.system.states)
        self._wake.set()

    # --- notifications ----------------------------------------------------------------

    async def _notify_ha(self, title: str, message: str) -> None:
        await notify_ha(self, self.cfg.ha_namespace, title, message)
