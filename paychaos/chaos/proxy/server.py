"""Running the fault proxy: the control API and every proxied port on ONE event loop.

:class:`ProxyServer` is the async core (used by ``python -m paychaos.chaos.proxy``);
:func:`start_proxy_server` runs one in a background thread for in-process use::

    with start_proxy_server() as server:
        client = ProxyClient(server.url)
        client.create_proxy("db", upstream="127.0.0.1:5432")
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from types import TracebackType

from paychaos.chaos.proxy.api import ControlApi
from paychaos.chaos.proxy.collection import ProxyCollection
from paychaos.chaos.proxy.httpd import HttpServer
from paychaos.chaos.proxy.model import ApiError
from paychaos.chaos.proxy.proxy import EventLog
from paychaos.contracts.errors import InvalidInput, StackError
from paychaos.stack.service import is_loopback


class ProxyServer:
    """The proxies and their control API, served on the running event loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        *,
        allow_non_loopback: bool = False,
        events: EventLog | None = None,
    ) -> None:
        if not allow_non_loopback and not is_loopback(host):
            raise InvalidInput(
                f"--host {host} is not a loopback address; pass --allow-non-loopback to allow it"
            )
        self.host = host
        self.port = port
        self.collection = ProxyCollection(allow_non_loopback=allow_non_loopback, events=events)
        self._http: HttpServer | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def load_config(self, path: Path) -> int:
        """Create the proxies listed in a JSON file (the ``/populate`` format)."""
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"--config {path}: {exc}") from exc
        try:
            return len(await self.collection.populate(body))
        except ApiError as exc:
            raise InvalidInput(f"--config {path}: {exc.message}") from exc

    async def start(self) -> None:
        http = ControlApi(self.collection).server()
        try:
            _host, self.port = await http.start(self.host, self.port)
        except OSError as exc:
            raise StackError(f"fault proxy: cannot listen on {self.url}: {exc}") from exc
        self._http = http

    async def close(self) -> None:
        """Remove every toxic, close every proxy, stop the API."""
        await self.collection.close()
        if self._http is not None:
            await self._http.close()
            self._http = None


class RunningProxyServer:
    """A :class:`ProxyServer` running in a background thread; ``stop()`` ends it."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._stopped = asyncio.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self.server.close()

    def start(self, timeout_s: float = 10.0) -> RunningProxyServer:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise StackError("fault proxy did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout_s)

    def __enter__(self) -> RunningProxyServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_proxy_server(
    host: str = "127.0.0.1", port: int = 0, *, allow_non_loopback: bool = False
) -> RunningProxyServer:
    """Start a fault proxy in a background thread (``port`` 0: any free port)."""
    server = ProxyServer(host, port, allow_non_loopback=allow_non_loopback)
    return RunningProxyServer(server).start()
