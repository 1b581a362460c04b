"""Headless Chromium driven over the DevTools protocol (tornado's websocket client, already a
Dask dependency): open a page, wait until its rendered text says what we expect, screenshot it.

Bokeh draws a server page client-side, over a websocket, inside shadow roots: `--dump-dom`
sees neither (it serialises the light DOM once the load event fired), so the page's text is
read with a script that walks the shadow roots too, until it appears or time runs out.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import WebSocketClientConnection, websocket_connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
# every text node, shadow roots included
DEEP_TEXT = """(() => {
  const out = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) out.push(child.textContent);
      else if (child.nodeName !== 'SCRIPT' && child.nodeName !== 'STYLE') walk(child);
    }
  };
  walk(document.body);
  return out.join(' ').replace(/\\s+/g, ' ');
})()"""


def available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def render(
    url: str,
    ready: Callable[[str], bool],
    *,
    profile: Path,
    screenshot: Path | None = None,
    timeout: float = 60.0,
) -> str:
    """The page's rendered text once `ready(text)` holds (or at `timeout`, whatever it is);
    a PNG of the page then, if asked."""
    binary = CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))
    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _devtools_port(proc, deadline=time.monotonic() + timeout)
        return asyncio.run(_drive(port, url, ready, screenshot, timeout))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _devtools_port(proc: subprocess.Popen[str], deadline: float) -> int:
    assert proc.stderr is not None
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if match:
            return int(match.group(1))
    raise RuntimeError("chromium did not start its DevTools endpoint:\n" + "".join(seen[-20:]))


async def _drive(
    port: int, url: str, ready: Callable[[str], bool], screenshot: Path | None, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    targets = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/json/list")
    page = next(t for t in json.loads(targets.body) if t["type"] == "page")
    ws = await websocket_connect(page["webSocketDebuggerUrl"], max_message_size=64 << 20)
    ids = count(1)

    async def call(method: str, **params: Any) -> dict[str, Any]:
        n = next(ids)
        await ws.write_message(json.dumps({"id": n, "method": method, "params": params}))
        return await _answer(ws, n, deadline)

    try:
        await call("Page.enable")
        await call("Page.navigate", url=url)
        text = ""
        while time.monotonic() < deadline:
            answer = await call("Runtime.evaluate", expression=DEEP_TEXT, returnByValue=True)
            text = str(answer.get("result", {}).get("value") or "")
            if ready(text):
                break
            await asyncio.sleep(0.25)
        if screenshot is not None:
            await asyncio.sleep(0.5)  # let the last refresh paint
            shot = await call("Page.captureScreenshot", format="png")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return text
    finally:
        ws.close()


async def _answer(ws: WebSocketClientConnection, n: int, deadline: float) -> dict[str, Any]:
    while True:
        left = deadline + 10 - time.monotonic()
        message = await asyncio.wait_for(ws.read_message(), timeout=max(left, 1))
        if message is None:
            raise RuntimeError("chromium closed the DevTools connection")
        data = json.loads(message)
        if data.get("id") == n:
            if "error" in data:
                raise RuntimeError(f"DevTools: {data['error']}")
            return dict(data.get("result", {}))
