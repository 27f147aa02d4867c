"""The hub node: the AppDaemon app that owns the OCPP central system.

A thin adapter. It validates its arguments, runs :class:`CentralSystem` in a
task on AppDaemon's loop, turns the core's changes into entities (``set_state``)
and events, and offers the chargers to other nodes (``get_app``).

apps.yaml::

    growatt_thor_hub:
      module: growatt_thor.hub
      class: GrowattThorHub
      port: 9000

It lives in its own namespace (``growatt_thor``) so that a Home Assistant
restart, which stops the apps of HA's namespace, never stops the OCPP server:
the charger stays connected and the entities are republished when HA is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appdaemon.adapi import ADAPI

from .link import LinkSettings
from .server import CentralSystem
from .thor.config import ChargerConfig, ConfigError, HubConfig, parse_args, slug
from .thor.entities import DEFAULT_NAME, DEFAULT_PREFIX, render
from .thor.storage import TransactionIds

EVENT = "growatt_thor"  # every event of the pack: data = {topic, charger_id, payload, ts}


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


class GrowattThorHub(ADAPI):
    """Runs the OCPP server and publishes every charger. See README "Hub API"."""

    # --- lifecycle --------------------------------------------------------------------

    async def initialize(self) -> None:
        try:
            self.cfg: HubConfig = parse_args(HubConfig, self.name, self.args)
        except ConfigError as err:
            self.error(str(err), level="ERROR")
            await self._notify_ha("Growatt THOR: bad configuration", str(err))
            raise
        cfg = self.cfg
        if not await self.namespace_exists(cfg.namespace):
            await self.add_namespace(cfg.namespace, persist=False)
        self.set_namespace(cfg.namespace)

        self.state_dir = Path(cfg.state_dir or Path(self.config_dir) / "growatt_thor")
        await self.run_in_executor(self.state_dir.mkdir, parents=True, exist_ok=True)
        self.txids = TransactionIds(self.state_dir / "transactions.json")
        self.charger_tz = ZoneInfo(cfg.time_zone or str(self.get_timezone()))

        self.system = CentralSystem(
            hooks=self,
            settings=LinkSettings(
                heartbeat_interval=cfg.heartbeat_interval,
                call_timeout=cfg.call_timeout,
                idle_timeout=cfg.idle_timeout,
                charger_tz=self.charger_tz,
                id_tags=frozenset(cfg.id_tags) if cfg.id_tags is not None else None,
                log_frames=cfg.log_frames,
            ),
            logger=self.logger,
            passwords={cid: c.password for cid, c in cfg.chargers.items() if c.password},
            accept=lambda cid: cfg.accept_unknown_chargers or cid in cfg.chargers,
        )
        self._published: dict[str, tuple[str, dict[str, Any]]] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._prefixes: dict[str, str] = {}

        # Configured chargers are visible (as Unavailable) before they first connect.
        for cid in cfg.chargers:
            self.system.state(cid)
            self._dirty.add(cid)

        await self.system.serve(cfg.host, cfg.port)
        self._publisher = await self.create_task(self._publish_loop())
        self._wake.set()
        await self.listen_event(self._on_plugin_started, "plugin_started",
                                namespace=cfg.ha_namespace)
        self.log(f"Growatt THOR hub ready on port {self.system.port}")

    async def terminate(self) -> None:
        """Close the server so that a reload never meets 'address already in use'."""
        system = getattr(self, "system", None)
        if system is not None:
            await system.close()
        publisher = getattr(self, "_publisher", None)
        if publisher is not None:
            publisher.cancel()

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

    # --- LinkHooks: called by the core ------------------------------------------------

    async def allocate_transaction_id(self, charger_id: str) -> int:
        return await self.run_in_executor(self.txids.next)

    async def emit(self, charger_id: str, topic: str, payload: dict[str, Any]) -> None:
        if topic == "state":
            self._dirty.add(charger_id)
            self._wake.set()
        envelope = {
            "topic": topic,
            "charger_id": charger_id,
            "payload": jsonable(payload),
            "ts": datetime.now(timezone.utc).isoformat(),
        }
        try:
            await self.fire_event(EVENT, namespace=self.cfg.namespace, **envelope)
        except Exception as err:  # an event listener's problem must not reach the charger
            self.logger.warning("Could not fire %s/%s: %s", EVENT, topic, err)

    # --- publishing -------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        """Publish changed entities, apart from the OCPP handlers (HA may be slow or down)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for cid in sorted(dirty):
                st = self.system.states.get(cid)
                if st is None:
                    continue
                entities = render(st, self.entity_prefix(cid), self.friendly_name(cid))
                ok = await self._publish(entities)
                if not ok:
                    self._dirty.add(cid)
            if self._dirty:
                await asyncio.sleep(5)  # HA unreachable: retry a little later
                self._wake.set()

    async def _publish(self, entities: dict[str, tuple[str, dict[str, Any]]]) -> bool:
        for eid, (state, attrs) in entities.items():
            if self._published.get(eid) == (state, attrs):
                continue
            try:
                await asyncio.wait_for(
                    self.set_state(eid, state=state, attributes=attrs,
                                   namespace=self.cfg.ha_namespace, replace=True,
                                   check_existence=False), 10)
            except Exception as err:
                self.logger.warning("Could not publish %s: %s", eid, err or type(err).__name__)
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
        """A persistent notification in HA when HA is there; the log line is already out."""
        ns = self.args.get("ha_namespace", "default")
        try:
            await asyncio.wait_for(self.call_service(
                "persistent_notification/create", title=title, message=message,
                namespace=ns), 10)
        except Exception:
            pass  # standalone AppDaemon has no such service
