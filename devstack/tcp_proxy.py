"""A TCP proxy on loopback that the chaos tool puts between the services and a server, to inject network
faults: latency, a reset of every connection, a silent hang, and half-open connections.

- `latency(seconds)`: every chunk, either way, waits that long before it is passed on.
- `reset()`: every open connection is closed with a TCP reset (SO_LINGER 0) on both sides; new ones work.
- `hang()`: nothing is passed on, either way, for open or new connections; sockets stay open. `heal()`
  passes on what waited, as a network that comes back would.
- `half_open()`: every open connection loses its server side (the server sees it closed) while the
  client's side stays open and silently swallows what the client sends: only a client-side timeout finds
  out. New connections work.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field


@dataclass(eq=False)  # kept in a set, by identity
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    half_open: bool = False


class TcpProxy:
    """Listens on 127.0.0.1:`listen_port` (0: any free one) and forwards to 127.0.0.1:`target_port`."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._latency = 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.listen_port, reuse_address=True
        )
        self.listen_port = self._server.sockets[0].getsockname()[1]  # the port taken, when 0 was asked

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.reset()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @property
    def connections(self) -> int:
        return len(self._links)

    def latency(self, seconds: float) -> None:
        self._latency = seconds

    def hang(self) -> None:
        self._flowing.clear()

    def heal(self) -> None:
        self._latency = 0.0
        self._flowing.set()

    def reset(self) -> None:
        for link in list(self._links):
            _abort(link.client)
            _abort(link.server)
            for task in link.tasks:
                task.cancel()
        self._links.clear()

    def half_open(self) -> None:
        for link in list(self._links):
            link.half_open = True
            link.server.close()  # an orderly close towards the server; the client hears nothing

    async def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            server_reader, server = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _abort(client)
            return
        link = _Link(client, server)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pipe(link, client_reader, server, towards_server=True)),
            asyncio.create_task(self._pipe(link, server_reader, client, towards_server=False)),
        ]
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        except asyncio.CancelledError:
            # The loop's end cancels a connection's handler; on Python 3.11 asyncio's stream callback then
            # read the cancelled task's exception and logged "Exception in callback ... CancelledError" (an
            # ERROR that tests reading asyncio's log would count). A handler has nothing to hand on: it ends.
            for task in link.tasks:
                task.cancel()
        finally:
            self._links.discard(link)
            for writer in (client, server):
                with contextlib.suppress(OSError):
                    writer.close()

    async def _pipe(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, towards_server: bool
    ) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                await self._flowing.wait()
                if self._latency:
                    await asyncio.sleep(self._latency)
                if link.half_open:
                    if towards_server:
                        continue  # swallowed: the client's side of a half-open connection hears nothing
                    return
                writer.write(chunk)
                await writer.drain()
        if not link.half_open:
            with contextlib.suppress(OSError):
                writer.close()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
