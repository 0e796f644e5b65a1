"""The chaos tool's TCP proxy (devstack/tcp_proxy.py) does what each network fault says, on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from devstack.tcp_proxy import TcpProxy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(100):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[1]
    found = TcpProxy(0, target)
    await found.start()
    try:
        yield found
    finally:
        await found.stop()
        server.close()


async def connect(proxy: TcpProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.listen_port)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bytes | None:
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(100), timeout=1)
    except TimeoutError:
        return None


async def test_it_forwards_and_adds_latency_both_ways(proxy: TcpProxy) -> None:
    reader, writer = await connect(proxy)
    assert await answer(reader, writer, b"hello") == b"hello"
    proxy.latency(0.2)
    started = time.monotonic()
    assert await answer(reader, writer, b"late") == b"late"
    assert time.monotonic() - started >= 0.4  # there and back
    writer.close()


async def test_a_hang_passes_nothing_until_healed_and_keeps_the_connection(proxy: TcpProxy) -> None:
    reader, writer = await connect(proxy)
    proxy.hang()
    assert await answer(reader, writer, b"held") is None
    proxy.heal()
    assert await asyncio.wait_for(reader.read(100), timeout=1) == b"held"
    writer.close()


async def test_half_open_connections_hear_nothing_while_new_ones_work(proxy: TcpProxy) -> None:
    reader, writer = await connect(proxy)
    assert await answer(reader, writer, b"before") == b"before"
    proxy.half_open()
    assert await answer(reader, writer, b"lost") is None
    assert not reader.at_eof()  # no FIN, no reset: only a timeout tells the client
    fresh_reader, fresh_writer = await connect(proxy)
    assert await answer(fresh_reader, fresh_writer, b"fresh") == b"fresh"
    writer.close()
    fresh_writer.close()


async def test_a_reset_ends_every_open_connection_with_an_error(proxy: TcpProxy) -> None:
    reader, writer = await connect(proxy)
    assert await answer(reader, writer, b"x") == b"x"
    proxy.reset()
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), timeout=1)
    assert proxy.connections == 0
