"""Headless Chromium driven over the Chrome DevTools Protocol: a page to open, type into, read.

Debian's `chromium` package, nothing downloaded: the browser is started with
`--remote-debugging-port=0`, writes the port it chose to `DevToolsActivePort` in its
profile folder, and one tab is driven over its WebSocket. The browser is always
stopped on the way out, and the profile folder removed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = Path("/usr/bin/chromium")

# Headless as root in a container: no sandbox, no GPU, and nothing that calls out to
# the internet on its own (component updates, sync, QUIC probes).
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)

# No name resolves but the loopback address: a page that reaches for anything outside
# this machine (a CDN, a font service) fails as it would on a network without internet.
OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",)

T = TypeVar("T")


class BrowserError(RuntimeError):
    """Chromium would not start, or a DevTools command failed."""


@dataclass
class Page:
    """One tab: DevTools commands by name, and what the page logged."""

    socket: ClientConnection
    problems: list[str] = field(default_factory=list)  # console errors, exceptions, CSP refusals
    requested: list[str] = field(default_factory=list)  # every URL asked for, once Network is enabled
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _waiting: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read(), name="devtools-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self.socket.close()

    async def send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 15.0) -> dict[str, Any]:
        ident = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = answer
        await self.socket.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        try:
            reply = await asyncio.wait_for(answer, timeout)
        finally:
            self._waiting.pop(ident, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def goto(self, url: str, *, timeout: float = 15.0) -> None:
        navigated = await self.send("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise BrowserError(f"{url}: {navigated['errorText']}")
        await self.wait_for("document.readyState === 'complete'", timeout=timeout)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        found = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in found:
            details = found["exceptionDetails"]
            raise BrowserError(f"{expression}: {details.get('exception', {}).get('description') or details.get('text')}")
        return found.get("result", {}).get("value")

    async def type_into(self, selector: str, text: str) -> None:
        """Focus the field and type, as a person's keyboard would."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", {"text": text})

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    async def text(self, selector: str) -> str | None:
        found = await self.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? null")
        return None if found is None else " ".join(str(found).split())

    async def wait_for(self, expression: str, *, timeout: float = 15.0) -> Any:
        """Poll until the expression is truthy; its value. Raises TimeoutError with the last value."""
        return await self.poll(lambda: self.evaluate(expression), bool, timeout=timeout, what=expression)

    async def poll(
        self, read: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout: float = 15.0, what: str = ""
    ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = await read()
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {timeout} s: {what or read}; last seen {value!r}")
            await asyncio.sleep(0.1)

    async def fonts_of(self, selector: str) -> list[dict[str, Any]]:
        """The fonts the browser drew the element's own text with: familyName, isCustomFont
        (a web font the page loaded, not one of the machine's) and glyphCount."""
        await self.send("DOM.enable")
        await self.send("CSS.enable")
        root = (await self.send("DOM.getDocument", {"depth": 0}))["root"]["nodeId"]
        node = (await self.send("DOM.querySelector", {"nodeId": root, "selector": selector}))["nodeId"]
        if not node:
            raise BrowserError(f"no element {selector}")
        return list((await self.send("CSS.getPlatformFontsForNode", {"nodeId": node}))["fonts"])

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def _read(self) -> None:
        async for raw in self.socket:
            message = json.loads(raw)
            if "id" in message:
                waiter = self._waiting.get(message["id"])
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
            else:
                self._note(message.get("method", ""), message.get("params", {}))

    def _note(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requested.append(str(params.get("request", {}).get("url", "")))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.problems.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            self.problems.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.problems.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())


@contextlib.asynccontextmanager
async def open_page(*, startup_seconds: float = 20.0, offline: bool = False) -> AsyncIterator[Page]:
    """A blank tab of a fresh headless Chromium; the browser is killed when the block ends.

    `offline`: nothing but 127.0.0.1 can be reached, and every URL the tab asks for is kept
    in `Page.requested`."""
    if not CHROMIUM.exists():
        raise BrowserError(f"{CHROMIUM} is missing: apt-get install chromium")
    profile = Path(tempfile.mkdtemp(prefix="quanyi-chromium-"))
    log = profile.parent / f"{profile.name}.log"
    process = _start(profile, log, OFFLINE if offline else ())
    page: Page | None = None
    try:
        port = await _devtools_port(profile, process, log, startup_seconds)
        page = Page(await connect(await _tab_socket_url(port), max_size=64 * 1024 * 1024, ping_interval=None))
        page.start()
        for domain in ("Page", "Runtime", "Log", *(("Network",) if offline else ())):
            await page.send(f"{domain}.enable")
        yield page
    finally:
        if page is not None:
            with contextlib.suppress(Exception):
                await page.close()
        _stop(process)
        shutil.rmtree(profile, ignore_errors=True)
        log.unlink(missing_ok=True)


def _start(profile: Path, log: Path, extra: tuple[str, ...]) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(CHROMIUM), *FLAGS, *extra, f"--user-data-dir={profile}", "about:blank"],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: renderers and helpers go with it
        )


async def _devtools_port(profile: Path, process: subprocess.Popen[bytes], log: Path, within: float) -> int:
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + within
    while True:
        if active.exists():
            first = active.read_text().splitlines()[:1]
            if first and first[0].strip().isdigit():
                return int(first[0])
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        if time.monotonic() > deadline:
            raise BrowserError(f"chromium did not open DevTools within {within} s:\n{log.read_text(errors='replace')[-4000:]}")
        await asyncio.sleep(0.05)


async def _tab_socket_url(port: int) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
        targets = (await client.get("/json/list")).json()
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            pages = [(await client.put("/json/new?about:blank")).json()]
    return str(pages[0]["webSocketDebuggerUrl"])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the browser's process group (the browser and its helpers), then kill it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            continue
    # Helpers may outlive the browser by a moment; none may outlive the test.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
