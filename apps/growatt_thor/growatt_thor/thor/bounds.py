"""Bounds on what a peer on the network can make the pack spend: rates, retries, log lines.

Pure Python with an injected clock (``now`` in seconds, e.g. ``time.monotonic()``), so a
test can drive every decision without sockets or sleeping. The link, the server and the
hub use these; the numbers themselves are named settings of theirs.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

_ESCAPES = {i: f"\\x{i:02x}" for i in range(32)} | {0x7F: "\\x7f", ord("\\"): "\\\\"}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def printable(value: Any, limit: int = 200) -> str:
    """``value`` as one log-safe line: control characters escaped, at most ``limit`` chars.

    A peer's text in a log line can then never start a line of its own (a forged
    ``INFO ... session logged`` line) nor fill the log with one frame.
    """
    text = str(value)
    shown = text[:limit].translate(_ESCAPES)
    return shown if len(text) <= limit else f"{shown}... ({len(text)} chars)"


@dataclass
class TokenBucket:
    """``rate`` events per second on average, ``burst`` at once."""

    rate: float
    burst: float
    _tokens: float | None = None
    _at: float = 0.0

    def allow(self, now: float) -> bool:
        if self._tokens is None:
            self._tokens, self._at = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class RateLimitedLog:
    """At most ``per_minute`` lines a minute from one noisy source; the rest are counted
    and reported in the next line that gets through."""

    logger: logging.Logger
    per_minute: int = 20
    _bucket: TokenBucket = field(init=False)
    _dropped: int = 0

    def __post_init__(self) -> None:
        self._bucket = TokenBucket(self.per_minute / 60.0, self.per_minute)

    def log(self, now: float, level: int, msg: str, *args: Any) -> bool:
        if not self.logger.isEnabledFor(level):
            return False
        if not self._bucket.allow(now):
            self._dropped += 1
            return False
        if self._dropped:
            msg += f" ({self._dropped} similar lines suppressed)"
            self._dropped = 0
        self.logger.log(level, msg, *args)
        return True


@dataclass
class AuthBackoff:
    """Per source address: after ``free`` failed logins, each further attempt must wait
    ``base`` seconds, doubling per failure up to ``cap``; a success forgets the source.

    At most ``max_sources`` addresses are remembered (the oldest is forgotten first), so a
    flood of addresses costs bounded memory.
    """

    free: int = 3
    base: float = 2.0
    cap: float = 300.0
    max_sources: int = 1024
    _sources: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)

    def retry_after(self, source: str, now: float) -> float:
        """Seconds ``source`` must still wait before its next attempt (0: go ahead)."""
        entry = self._sources.get(source)
        return 0.0 if entry is None else max(0.0, entry[1] - now)

    def failed(self, source: str, now: float) -> float:
        """Count a failure; returns the wait imposed from now on."""
        failures = self._sources.pop(source, (0, 0.0))[0] + 1
        wait = 0.0 if failures <= self.free else min(self.cap,
                                                    self.base * 2 ** (failures - self.free - 1))
        self._sources[source] = (failures, now + wait)
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)
        return wait

    def succeeded(self, source: str) -> None:
        self._sources.pop(source, None)


__all__ = ["AuthBackoff", "RateLimitedLog", "TokenBucket", "printable"]
