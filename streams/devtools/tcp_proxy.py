"""A loopback TCP proxy that can cut or stall every connection to a broker: a broker outage or a
hung broker without losing the broker (the tests' outages, the soak's stalls).

The embedded broker keeps its log in memory, so stopping it loses everything; instead it advertises
this proxy's address, every client reaches it through here, and `cut()` closes every connection and
refuses new ones (the listening socket is closed: a connect is refused at once, as with a broker that
is down), while the broker and its log live on. `restore()` listens on the same port again.
`stall()` keeps every connection open but carries no byte either way (new ones are accepted and held
too), as a broker stuck in a long pause or a network that drops everything: clients see timeouts, not
refusals, and the broker sees no heartbeats. `resume()` delivers what was held and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from streams.engine.broker import free_port


class TcpProxy:
    """127.0.0.1:`port` -> `target_host`:`target_port`, served by an event loop in a thread."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", port: int | None = None) -> None:
        self.port = port or free_port()
        self.target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None  # made in the proxy's loop, set unless stalled

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def cut(self) -> None:
        """Refuse new connections and close every open one, both ways."""
        self._call(self._cut())

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._call(self._listen())

    def stall(self) -> None:
        """Carry no byte on any connection, old or new, until `resume()`."""
        self._call(self._set_flowing(False))

    def resume(self) -> None:
        self._call(self._set_flowing(True))

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._cut())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flow().set()
        else:
            self._flow().clear()

    def _flow(self) -> asyncio.Event:
        if self._flowing is None:
            self._flowing = asyncio.Event()
            self._flowing.set()
        return self._flowing

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # at once, unflushed: as a network that stopped carrying them
        self._writers.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        pair = {client_writer, broker_writer}
        self._writers |= pair
        try:
            await asyncio.gather(
                _pump(client_reader, broker_writer, self._flow()),
                _pump(broker_reader, client_writer, self._flow()),
                return_exceptions=True,
            )
        finally:
            for writer in pair:
                writer.transport.abort()
            self._writers -= pair

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
    try:
        while data := await reader.read(64 * 1024):
            await flowing.wait()  # stalled: held here, and TCP's windows hold the rest
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()  # one side closed: so does the other, as a broker connection would
