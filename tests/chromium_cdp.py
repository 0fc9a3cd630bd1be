"""A small Chrome DevTools Protocol client for the browser tests (headless Chromium).

Starts the system Chromium with ``--remote-debugging-port=0`` (the port is read from the
profile's ``DevToolsActivePort``), talks to its first page over a WebSocket
(``websocket-client``), records every request the page makes (``Network.requestWillBeSent``),
evaluates JavaScript and types real key events. No browser is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--window-size=1280,1000",
         # no DNS: a page that needed the network would visibly break
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
# what a test of the browser explorers waits for: the page's first explorer has mounted (or failed)
EXPLORER_MOUNTED = ("document.querySelector('.fw-explorer') && "
                    "document.querySelector('.fw-explorer').dataset.fwState")


def find_chromium() -> str | None:
    for candidate in (os.environ.get("FWBOOK_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome", "google-chrome-stable"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def require_chromium() -> str:
    """The Chromium to test with. Without one the test is skipped, except in CI, where
    ``.ci/book_setup.sh`` installs it: there a missing browser is a failure."""
    import pytest

    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing in CI: .ci/book_setup.sh should have installed it")
        pytest.skip("Chromium is not installed (locally: apt-get install -y chromium, or "
                    "bash .ci/book_setup.sh)")
    return chromium


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page. Use as a context manager."""

    def __init__(self, chromium: str, profile_dir: Path, timeout: float = 60.0):
        import websocket  # websocket-client

        profile_dir = Path(profile_dir)
        profile_dir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.process = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-port=0",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        active = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (active.is_file() and active.read_text().strip()):
            if self.process.poll() is not None:
                raise CDPError("chromium exited: " + self.process.stderr.read().decode()[-2000:])
            if time.monotonic() > deadline:
                self.close()
                raise CDPError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as reply:
            pages = [target for target in json.load(reply) if target["type"] == "page"]
        self.socket = websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                                  timeout=timeout, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict] = []
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Network.enable")
        self.send("Log.enable")  # the browser's own errors (a script or file that failed to load)

    # protocol ---------------------------------------------------------------------------

    def send(self, method: str, **params) -> dict:
        self._next_id += 1
        ident = self._next_id
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, since: int = 0, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for event in self.events[since:]:
                if event.get("method") == method:
                    return event
            if time.monotonic() > deadline:
                raise CDPError(f"no {method} event")
            self.events.append(json.loads(self.socket.recv()))

    # page -------------------------------------------------------------------------------

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        since = len(self.events)
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired", since)

    def open(self, url: str, until: str | None = None) -> None:
        """Forget the events so far, load ``url``, then wait until ``until`` (JavaScript) is
        truthy."""
        self.events.clear()
        self.navigate(url)
        if until:
            self.wait_until(until)

    def evaluate(self, expression: str, await_promise: bool = False):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise CDPError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 30.0):
        """Evaluate ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def type_into(self, selector: str, text: str, replace: bool = True) -> None:
        """Focus ``selector`` and type ``text`` as real key events (one per character)."""
        self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                      f"e.focus(); {'e.select();' if replace else ''} }})()")
        if replace:
            self.press("Backspace")
        for character in text:
            self.send("Input.dispatchKeyEvent", type="keyDown", text=character, key=character,
                      unmodifiedText=character)
            self.send("Input.dispatchKeyEvent", type="keyUp", key=character)

    def press(self, key: str) -> None:
        codes = {"Backspace": 8, "Enter": 13}
        self.send("Input.dispatchKeyEvent", type="rawKeyDown", key=key, code=key,
                  windowsVirtualKeyCode=codes[key])
        self.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=key,
                  windowsVirtualKeyCode=codes[key])

    def requested_urls(self) -> list[str]:
        return [event["params"]["request"]["url"] for event in self.events
                if event.get("method") == "Network.requestWillBeSent"]

    def console_errors(self) -> list[str]:
        """What the console shows as errors: uncaught exceptions (a script that does not even
        parse included), ``console.error`` calls and the browser's own error entries (a file
        that failed to load; the favicon, which no page asks for, left out)."""
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                description = details.get("exception", {}).get("description", details.get("text"))
                errors.append(f"{description} (at {details.get('url', '?')}:"
                              f"{details.get('lineNumber', '?')})")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append("console.error: " + " ".join(
                    str(argument.get("value", argument.get("description", "")))
                    for argument in params.get("args", [])))
            elif (method == "Log.entryAdded" and params["entry"].get("level") == "error"
                  and not params["entry"].get("url", "").endswith("/favicon.ico")):
                entry = params["entry"]
                errors.append(f"{entry.get('text')} ({entry.get('url', '?')})")
        return errors

    def close(self) -> None:
        try:
            if getattr(self, "socket", None) is not None:
                self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
