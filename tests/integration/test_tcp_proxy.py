"""The proxy the outage tests and the soak put in front of the broker: a stall carries no byte on
connections old or new, and `resume` delivers what was held."""

from __future__ import annotations

import asyncio
import socket

import pytest

from streams.devtools.tcp_proxy import TcpProxy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_a_stalled_proxy_holds_every_byte_until_it_resumes() -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with TcpProxy(port) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"before")
            assert await asyncio.wait_for(reader.readexactly(6), 5) == b"before"

            proxy.stall()
            writer.write(b"held")
            late_reader, late_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            late_writer.write(b"late")  # a connection made during the stall is held as well
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.readexactly(4), 1)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(late_reader.readexactly(4), 0.2)

            proxy.resume()
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
            assert await asyncio.wait_for(late_reader.readexactly(4), 5) == b"late"
            for open_writer in (writer, late_writer):
                open_writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_a_cut_proxy_refuses_connections_until_restored() -> None:
    with TcpProxy(9) as proxy:  # nothing behind it is needed to be refused
        proxy.cut()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        proxy.restore()
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
