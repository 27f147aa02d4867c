"""Small pieces the pack's AppDaemon apps share."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from appdaemon.adapi import ADAPI

from .thor.config import ConfigError, parse_args

# helper and sensor states that carry no value
NOT_A_VALUE = (None, "unknown", "unavailable", "")


def to_float(value: Any) -> float | None:
    """A state or attribute as a finite number (None: not a value)."""
    if value in NOT_A_VALUE:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


_pending: set[asyncio.Task] = set()


async def notify_ha(app: ADAPI, namespace: str, title: str, message: str) -> None:
    """A persistent notification in HA when HA is there (the log line is already out).

    Sent from a task of its own: a slow or absent HA never holds up the caller
    (AppDaemon runs an app's callbacks one after another).
    """
    async def send() -> None:
        try:
            await asyncio.wait_for(app.call_service(
                "persistent_notification/create", title=title, message=message,
                namespace=namespace), 10)
        except Exception:
            pass  # standalone AppDaemon has no such service

    task = asyncio.ensure_future(send())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def load_config(app: ADAPI, model: Any, ha_namespace: str) -> Any:
    """The app's validated arguments; on errors a log line, a notification, and raise."""
    try:
        return parse_args(model, app.name, app.args)
    except ConfigError as err:
        app.error(str(err), level="ERROR")
        await notify_ha(app, ha_namespace, "Growatt THOR: bad configuration", str(err))
        raise


async def connect_to_hub(app: ADAPI, model: Any) -> tuple[Any, Any]:
    """``(hub, cfg)`` for a node: the hub app named by its ``hub`` argument, and its
    validated arguments. Raises (after a log line and notification) if either is bad."""
    hub_name = app.args.get("hub", "growatt_thor_hub")
    hub = await app.get_app(hub_name)
    cfg = await load_config(app, model, hub.cfg.ha_namespace if hub is not None else "default")
    if hub is None:
        raise RuntimeError(f"{app.name}: hub app {hub_name!r} is not running "
                           f"(add it to dependencies)")
    return hub, cfg


async def publish_state(app: ADAPI, entity_id: str, state: str, attributes: dict[str, Any],
                        namespace: str) -> bool:
    """``set_state`` with a timeout (HA may be slow or restarting); False and a log line
    when it did not go through."""
    try:
        await asyncio.wait_for(app.set_state(entity_id, state=state, attributes=attributes,
                                             namespace=namespace, replace=True,
                                             check_existence=False), 10)
        return True
    except Exception as err:
        app.logger.warning("Could not publish %s: %s", entity_id, err or type(err).__name__)
        return False
