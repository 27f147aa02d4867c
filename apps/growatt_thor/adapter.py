"""Small pieces the pack's AppDaemon apps share."""

from __future__ import annotations

import asyncio
from typing import Any

from appdaemon.adapi import ADAPI

from .thor.config import ConfigError, parse_args


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
