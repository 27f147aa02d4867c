"""Shared test helpers: waiting for a condition with a deadline, free ports."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any
from collections.abc import Awaitable, Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
             what: str = "condition", fail_fast: bool = False) -> Any:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout`` seconds.

    With ``fail_fast``, an AssertionError raised by ``cond`` ends the wait at once."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = cond()
            if value:
                return value
        except AssertionError:
            if fail_fast:
                raise
            last_exc = None
        except Exception as exc:  # not ready yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


async def async_wait_for(cond: Callable[[], Any], timeout: float = 20.0,
                         interval: float = 0.02, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_process_group(proc: Any, timeout: float) -> None:
    """SIGTERM a process started with ``start_new_session``, SIGKILL it after ``timeout``."""
    import os
    import signal
    import subprocess

    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
