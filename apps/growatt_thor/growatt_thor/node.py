"""The base class for nodes: your own Python logic wired to a charger in apps.yaml.

A node is one AppDaemon app. Subclass :class:`ThorNode`, declare its
``apps.yaml`` arguments as a pydantic model (a :class:`NodeConfig` subclass),
and override what you need::

    class MyConfig(NodeConfig):
        price_sensor: str
        hours: int = Field(4, ge=1, le=24)

    class CheapHours(ThorNode):
        Config = MyConfig

        async def on_start(self):
            await self.listen_state(self.decide, self.cfg.price_sensor,
                                    namespace=self.ha_namespace)

        async def on_update(self, charger):   # every change of the charger's state
            ...
            self.start_charging()            # through the charger's write queue

Guarantees:
- Arguments are validated before anything else; a bad or missing key stops
  the app with one line per problem (and an HA notification). Never half-way.
- ``on_update`` gets the charger's snapshot (see docs/nodes.md "Events") right after
  ``on_start`` if the charger is known (a node that starts late needs no
  event to get going), and again after every change.
- Every request (``set_current``, ``start_charging``, ``stop_charging``,
  ``set_load_balancing_limit``) goes through the charger's one write queue and
  its installation limit; none of them can write around it.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from appdaemon.adapi import ADAPI
from pydantic import Field

from .adapter import connect_to_hub, notify_ha, publish_state, to_float
from .hub import EVENT
from .thor.arbiter import SOLAR
from .thor.config import _Strict

# charger status values (OCPP 1.6) that mean "a car is connected"
PLUGGED = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"})


class NodeConfig(_Strict):
    """The arguments every node has. Subclass it for your own."""

    hub: str = Field("growatt_thor_hub", description="the hub app's name")
    charger_id: str | None = Field(None, description="needed when the hub has several chargers")


class ThorNode(ADAPI):
    Config: ClassVar[type[NodeConfig]] = NodeConfig

    async def initialize(self) -> None:
        self.hub, self.cfg = await connect_to_hub(self, self.Config)
        self.ha_namespace: str = self.hub.cfg.ha_namespace
        self._node_lock = asyncio.Lock()
        self._published: dict[str, tuple[str, dict[str, Any]]] = {}
        # Home Assistant forgets our entities when it restarts: publish them afresh
        await self.listen_event(self._on_ha_started, "plugin_started",
                                namespace=self.ha_namespace)
        await self.listen_event(self._on_hub_event, EVENT, namespace=self.hub.cfg.namespace)
        await self.on_start()
        snapshot = self.charger
        if snapshot is not None:
            async with self._node_lock:
                await self.on_update(snapshot)

    # --- override these ---------------------------------------------------------------

    async def on_start(self) -> None:
        """Set up listeners and timers. ``self.cfg`` holds the validated arguments."""

    async def on_update(self, charger: dict[str, Any]) -> None:
        """The charger's state changed (``charger`` is its snapshot)."""

    async def on_topic(self, topic: str, payload: dict[str, Any]) -> None:
        """Every event of this charger (``meter``, ``status``, ``write``, ...)."""

    # --- what a node can read -------------------------------------------------------

    @property
    def charger_id(self) -> str | None:
        return self.cfg.charger_id or self.hub.only_charger()

    @property
    def charger(self) -> dict[str, Any] | None:
        """The last known snapshot: status, meter, config, grid, transaction_id."""
        cid = self.charger_id
        return None if cid is None else self.hub.charger_snapshot(cid)

    @property
    def installation_limit(self) -> int:
        return self.hub.installation_limit(self.charger_id)

    @staticmethod
    def plugged(charger: dict[str, Any]) -> bool:
        return charger.get("status") in PLUGGED

    @staticmethod
    def charging(charger: dict[str, Any]) -> bool:
        return charger.get("transaction_id") is not None

    @staticmethod
    def setpoint(charger: dict[str, Any]) -> float | None:
        """The current the THOR was last told to offer (``G_MaxCurrent``), A."""
        return to_float((charger.get("config") or {}).get("G_MaxCurrent"))

    # --- what a node can ask for (all through the write queue) ------------------------

    def demand(self, charge: bool | None = None, current: float | None = None,
               priority: int = SOLAR, reason: str = "") -> dict[str, Any]:
        """What this node wants of the charger; the hub's arbiter decides among all
        nodes' demands (docs/nodes.md "Who decides"). Returns the decision."""
        return self.hub.demand(self.name, self.charger_id, charge=charge, current=current,
                               priority=priority, reason=reason)

    def withdraw(self) -> dict[str, Any]:
        """This node no longer wants anything of the charger."""
        return self.hub.withdraw(self.name, self.charger_id)

    def set_current(self, amps: Any) -> dict[str, Any]:
        return self.hub.set_max_current(amps, self.charger_id, source=f"node {self.name}")

    def start_charging(self) -> dict[str, Any]:
        return self.hub.start_charging(self.charger_id, source=f"node {self.name}")

    def stop_charging(self) -> dict[str, Any]:
        return self.hub.stop_charging(self.charger_id, source=f"node {self.name}")

    def set_load_balancing_limit(self, kw: Any) -> dict[str, Any]:
        return self.hub.set_load_balancing_limit(kw, self.charger_id, source=f"node {self.name}")

    async def publish(self, key: str, state: Any, **attributes: Any) -> None:
        """``sensor.<charger prefix>_<key>`` in HA (states and attributes as strings)."""
        cid = self.charger_id
        prefix = self.hub.entity_prefix(cid) if cid else "growatt_thor"
        attrs = {k: (v if isinstance(v, (list, dict)) else str(v))
                 for k, v in attributes.items()}
        eid = f"sensor.{prefix}_{key}"
        if self._published.get(eid) == (str(state), attrs):
            return  # unchanged: nodes decide often, HA needs to hear only changes
        if await publish_state(self, eid, str(state), attrs, self.ha_namespace):
            self._published[eid] = (str(state), attrs)

    async def notify(self, title: str, message: str) -> None:
        await notify_ha(self, self.ha_namespace, title, message)

    # --- plumbing -----------------------------------------------------------------------

    async def _on_ha_started(self, event: str, data: dict[str, Any], kwargs: Any) -> None:
        self._published.clear()

    async def _on_hub_event(self, event: str, data: dict[str, Any], kwargs: Any) -> None:
        if data.get("charger_id") != self.charger_id:
            return
        topic = data.get("topic", "")
        async with self._node_lock:
            await self.on_topic(topic, data.get("payload") or {})
            if topic == "state":
                snapshot = self.charger
                if snapshot is not None:
                    await self.on_update(snapshot)
