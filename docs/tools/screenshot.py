"""Take the README's picture of the asset graph from the real Dagster UI (`make screenshot`).

Starts ``dagster-webserver`` on the code location (the one ``make ui`` serves) on a
free local port, with a throwaway DAGSTER_HOME holding a copy of ``dagster.yaml``;
opens the global asset lineage page (``/asset-groups``) in headless Chromium with every
group expanded; waits until every group and asset is drawn; and writes a PNG.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``,
standard library only) rather than with ``--screenshot``, so the script waits for the
graph itself instead of guessing a time budget, and can set the layout (vertical, left
navigation collapsed) the UI keeps in the browser's localStorage. Not part of the
package: run it from the project root with the project's virtualenv.
"""

import argparse
import base64
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from pipelines.webserver import graphql, running_webserver

ROOT = Path(__file__).resolve().parents[2]
LOG = logging.getLogger("screenshot")

#: The layers, in the order data flows; each is a Dagster asset group.
GROUPS = ["landing", "pseudonymised", "reference", "linked", "costing", "exports"]

#: What the UI keeps in localStorage (values are JSON): a vertical graph, no left nav.
LOCAL_STORAGE = {"asset-graph-direction": "vertical", "dagster-nav-collapsed": True}

#: What is not drawn yet: group boxes and asset nodes missing, or a loading spinner. A
#: node too small for its whole name shows it shortened in the middle ("primary_ca…_events").
NOT_DRAWN = """
(() => {
  const lines = (document.body ? document.body.innerText : '').split('\\n').map((l) => l.trim());
  const shown = (name) => lines.some((line) => {
    if (line === name) { return true; }
    const [head, tail] = line.split('\u2026');
    return tail !== undefined && head.length > 0 && name.startsWith(head) && name.endsWith(tail);
  });
  const missing = %s.filter((name) => !shown(name));
  if (document.querySelector('[role="progressbar"], .bp5-spinner, .bp4-spinner')) {
    missing.push('(a loading spinner is showing)');
  }
  return missing;
})()
"""

#: Click the asset graph's "Hide sidebar" button; true if there was one.
HIDE_SIDEBAR = """
(() => {
  const icon = document.querySelector('[aria-label="panel_show_right"]');
  const button = icon && icon.closest('button');
  if (button) { button.click(); }
  return !!button;
})()
"""

#: Double-click the graph's background (the UI's own "fit the graph to the view"), then
#: zoom out 8% with ctrl+wheel at the centre, so the zoom buttons do not cover a node.
FIT_GRAPH = """
(async () => {
  const svgs = Array.from(document.querySelectorAll('svg'));
  const svg = svgs.find((s) => s.querySelector('foreignObject'));
  if (!svg) { return false; }
  svg.dispatchEvent(new MouseEvent('dblclick', {bubbles: true, cancelable: true}));
  await new Promise((done) => setTimeout(done, 1500));
  const box = svg.parentElement.getBoundingClientRect();
  svg.dispatchEvent(new WheelEvent('wheel', {
    bubbles: true, cancelable: true, ctrlKey: true, deltaY: 40,
    clientX: box.left + box.width / 2, clientY: box.top + box.height / 2,
  }));
  return true;
})()
"""


def _asset_names(base_url: str) -> list[str]:
    nodes = graphql(base_url, "{ assetNodes { assetKey { path } } }")["assetNodes"]
    return sorted({n["assetKey"]["path"][-1] for n in nodes})


class DevTools:
    """The DevTools protocol over Chromium's pipe: NUL-terminated JSON messages."""

    def __init__(self, chromium: str, width: int, height: int, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            "--headless",
            "--no-sandbox",  # Chromium will not start as root without it
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        shell = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.process = subprocess.Popen(
            ["sh", "-c", shell, chromium, *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        return result.get("result", {}).get("value")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)


def _wait_until_drawn(tools: DevTools, names: list[str], timeout: float, settle: float) -> None:
    """Until every name is on the page and its text has not changed for ``settle`` s."""
    deadline = time.monotonic() + timeout
    last, stable_since = None, time.monotonic()
    missing: list[str] = []
    while time.monotonic() < deadline:
        text = tools.evaluate("document.body ? document.body.innerText : ''")
        if text != last:
            last, stable_since = text, time.monotonic()
        missing = tools.evaluate(NOT_DRAWN % json.dumps(names))
        if not missing and time.monotonic() - stable_since >= settle:
            return
        time.sleep(0.25)
    failed = Path(tempfile.gettempdir()) / "asset-graph.failed.png"
    failed.write_bytes(base64.b64decode(tools.send("Page.captureScreenshot")["data"]))
    raise RuntimeError(
        f"the asset graph was not drawn within {timeout:.0f} s (missing: {', '.join(missing)}); "
        f"the page as it was is in {failed}"
    )


def _capture(
    tools: DevTools,
    base_url: str,
    size: tuple[int, int, float],
    timeout: float,
    settle: float,
) -> bytes:
    width, height, pixel_ratio = size
    # The "join the community" dialog would cover the graph.
    graphql(base_url, "mutation { setNuxSeen }")
    names = GROUPS + _asset_names(base_url)
    tools.open_page()
    metrics = {"width": width, "height": height, "deviceScaleFactor": pixel_ratio, "mobile": False}
    tools.send("Emulation.setDeviceMetricsOverride", metrics)
    tools.send("Page.enable")
    # Any page of the webserver's origin, to set the UI's localStorage before it loads.
    tools.send("Page.navigate", {"url": f"{base_url}/server_info"})
    time.sleep(0.5)
    for key, value in LOCAL_STORAGE.items():
        tools.evaluate(f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(value))})")
    expanded = ",".join(f"global@global:{g}" for g in GROUPS)
    query = urllib.parse.urlencode({"expanded": expanded})
    tools.send("Page.navigate", {"url": f"{base_url}/asset-groups?{query}"})
    _wait_until_drawn(tools, names, timeout, settle)
    # The group tree beside the graph repeats the group names: hide it, then fit the
    # graph to the space it leaves.
    tools.evaluate(HIDE_SIDEBAR)
    time.sleep(0.5)
    if not tools.evaluate(FIT_GRAPH):
        raise RuntimeError("no asset graph on the page to fit")
    _wait_until_drawn(tools, names, timeout, settle)
    return base64.b64decode(tools.send("Page.captureScreenshot", {"format": "png"})["data"])


def screenshot(
    output: Path,
    chromium: str,
    size: tuple[int, int, float],
    timeout: float,
    settle: float,
) -> None:
    """Write a PNG of the asset graph page, ``size`` = (width, height, pixel ratio)."""
    with tempfile.TemporaryDirectory(prefix="ipc-screenshot-") as tmp:
        folder = Path(tmp)
        with running_webserver(folder, timeout) as base_url:
            LOG.info("webserver up at %s", base_url)
            tools = DevTools(chromium, size[0], size[1], folder / "profile")
            try:
                png = _capture(tools, base_url, size, timeout, settle)
            finally:
                tools.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(png)
    LOG.info("wrote %s (%d KB)", output, len(png) // 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=ROOT / "docs/images/asset-graph.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=720)
    # Twice the pixels, so the names stay sharp when the README's picture is opened full size.
    parser.add_argument("--pixel-ratio", type=float, default=2.0, help="device pixels per px")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds, per wait")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds the page is still")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="screenshot: %(message)s")
    if not shutil.which(args.chromium):
        LOG.error("no Chromium at %r: `make screenshot` installs it (apt-get)", args.chromium)
        return 1
    size = (args.width, args.height, args.pixel_ratio)
    screenshot(args.output, args.chromium, size, args.timeout, args.settle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
