"""The Dagster UI on the pipeline's code location, started and stopped from Python.

For what must talk to the real webserver: the GraphQL lineage test and
``make screenshot``. It runs on a free local port with a throwaway DAGSTER_HOME holding
a copy of ``dagster.yaml``, and no ``IPC_*`` setting reaches it.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_WORKSPACE = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


class WebserverError(RuntimeError):
    """The webserver did not serve the code location (the message ends with its log)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def graphql(base_url: str, query: str) -> dict[str, Any]:
    """The ``data`` of a GraphQL query to the webserver; WebserverError on errors."""
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    if "errors" in body:
        raise WebserverError(f"GraphQL error: {body['errors']}")
    return dict(body["data"])


def _loaded(base_url: str) -> bool:
    """True once every code location has loaded; WebserverError if one failed to."""
    workspace = graphql(base_url, _WORKSPACE)["workspaceOrError"]
    entries = workspace.get("locationEntries") or []
    for entry in entries:
        location = entry["locationOrLoadError"]
        if location and location["__typename"] == "PythonError":
            raise WebserverError(
                f"code location {entry['name']} failed to load: {location['message']}"
            )
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the webserver and the code server it started (their own process group)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def running_webserver(folder: Path, timeout: float = 60.0) -> Iterator[str]:
    """``dagster-webserver`` on the code location, its home and log under ``folder``;
    yields its URL once the code location has loaded, and stops it afterwards."""
    home = folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPC_")}
    env["DAGSTER_HOME"] = str(home)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("dagster-webserver")),
        *("-m", "pipelines.definitions", "-p", str(port), "-h", "127.0.0.1"),
    ]
    log_path = folder / "webserver.log"

    def failed(why: str) -> WebserverError:
        return WebserverError(f"{why}:\n" + log_path.read_text(errors="replace")[-4000:])

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise failed(f"dagster-webserver exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise failed(f"dagster-webserver did not serve {base_url} in {timeout:.0f} s")
                try:
                    if _loaded(base_url):
                        break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass  # not listening yet
                time.sleep(0.25)
            yield base_url
        finally:
            _stop(process)
