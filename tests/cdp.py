"""Headless Chromium driven over the Chrome DevTools Protocol, for Home Assistant's frontend.

Just what the Lovelace test needs, on the websockets client the pack already depends on:
start Chromium with a DevTools port, open a page, evaluate JavaScript (also through the
frontend's shadow DOM), click where an element is, take a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

# All the text of the page, through every shadow root (HA's frontend is web components).
DEEP_TEXT = """(() => { const out = []; const walk = (n) => {
  if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of n.childNodes) {
    if (c.nodeType === 3) out.push(c.textContent);
    else if (c.nodeType === 1 || c.nodeType === 11) walk(c); } };
  walk(document.body); return out.join(' ').replace(/\\s+/g, ' '); })()"""

# Elements by tag name, through every shadow root: [{tag, text, x, y, w, h}]
DEEP_FIND = """((tags) => { const out = []; const walk = (n) => {
  if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of n.children || []) {
    if (tags.includes(c.tagName.toLowerCase())) { const r = c.getBoundingClientRect();
      out.push({tag: c.tagName.toLowerCase(), text: (c.innerText || c.textContent || '')
        .trim() + ' ' + (c.shadowRoot ? c.shadowRoot.textContent : ''),
        x: r.x + r.width / 2, y: r.y + r.height / 2, w: r.width, h: r.height}); }
    walk(c); } };
  walk(document); return out; })(%s)"""


class Browser:
    def __init__(self, user_dir: Path, width: int = 1280, height: int = 1600) -> None:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        assert exe, "Chromium is not installed (scripts/test installs it on Debian)"
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={user_dir}",
             f"--window-size={width},{height}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        browser_url = None
        while time.monotonic() < deadline and browser_url is None:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            browser_url = m.group(1) if m else None
        assert browser_url, "Chromium did not open its DevTools port"
        port = re.search(r":(\d+)/", browser_url).group(1)
        self._ids = itertools.count(1)
        with connect(browser_url, open_timeout=10) as ws:
            target = self._send(ws, "Target.createTarget", {"url": "about:blank"})["targetId"]
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(
            f"ws://127.0.0.1:{port}/devtools/page/{target}", open_timeout=10, max_size=2**26))
        self.call("Page.enable")
        self.call("Runtime.enable")

    def _send(self, ws: Any, method: str, params: dict[str, Any] | None = None) -> Any:
        mid = next(self._ids)
        ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(ws.recv(timeout=30))
            if msg.get("id") == mid:
                assert "error" not in msg, msg
                return msg.get("result", {})

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self._send(self.ws, method, params)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def js(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True})
        assert "exceptionDetails" not in res, res
        return res["result"].get("value")

    def text(self) -> str:
        return self.js(DEEP_TEXT) or ""

    def find(self, *tags: str) -> list[dict[str, Any]]:
        return self.js(DEEP_FIND % json.dumps(list(tags))) or []

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left", "clickCount": 1})

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
