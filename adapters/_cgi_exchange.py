"""One CGI request: the body to the program's stdin, its stdout to the client, its stderr to the log.

Rules:
- stdin is fed from the request body as it arrives, waiting (drain) while
  the program is not reading; a program that stops reading (closes stdin,
  exits) gets no more, and the rest of the body is read and dropped. Once the
  body is in, the same task waits for the client to leave (http.disconnect)
  and, if it does before the response is done, ends the program's group.
- stdout: the head is read with CgiHeadReader (§6.2); a bad head is a
  ScriptError (502) before anything was sent. The body is relayed in pieces
  of at most CHUNK as they come, and the core's send() waits for slow
  clients while the pipe fills and the program blocks: memory stays bounded
  at both ends. The first piece is held for at most HOLD seconds to see
  whether the output ends with it (a short response then gets a
  Content-Length instead of chunked framing); after that, output is sent as
  soon as it is read, so a program printing a line a second is seen line by
  line. Output past the program's own Content-Length is dropped and logged;
  output short of it is a 502 when it ended within the first piece, else the
  connection is cut (the client must not take the short body as whole).
- A local redirect (§6.2.2) sends nothing: the rest of stdout is discarded
  and the head returned, for the caller to serve the new path once the
  program has ended and its process slot is free.
- stderr is read concurrently into _stderr_log.py's bounded log lines;
  beyond its limits it is read and dropped, so a flood costs neither
  memory nor log.
- `timeout` covers the program from start to exit, less the time its output
  waited for a slow client (the program was blocked on a full pipe, not
  running late). Past it the group is
  ended and: before the response started, ScriptTimeout (504); after,
  ResponseAborted (the core closes the connection); after the response
  ended, a log line only. The core cancelling us (its request_timeout, a
  shutdown) ends the group the same way, in the finally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from adapters._cgi_process import ProcessGroup, Program
from adapters._cgi_response import CgiHead, CgiHeadReader, CgiResponseError
from adapters._request_body import ClientGone
from adapters._stderr_log import StderrLog
from gateway.errors import ResponseAborted
from gateway.types import Receive, Send

logger = logging.getLogger("gateway.adapters.cgi")
CHUNK = 64 * 1024
HOLD = 0.05
WAIT_NOTED = 0.001  # a send that waited longer for the client moves the script's deadline on
EXIT_STATUS_WAIT = 0.5  # how long a failed program's exit status is waited for, for the log line


class ScriptError(Exception):
    """The program failed before its response started (the caller answers 502); the message says why."""


class ScriptTimeout(Exception):
    """The program ran past its timeout before its response started (the caller answers 504)."""


class ClientLeft(Exception):
    """The client went away; nothing is left to answer."""


class Exchange:
    """The state of one program's run for one request."""

    def __init__(self, group: ProcessGroup, label: str, receive: Receive, send: Send, time_limit: float) -> None:
        self.group = group
        self.time_limit = time_limit  # the route's `timeout`
        self.label = label  # the script's file name, for log lines
        self.receive = receive
        self.send = send
        self.started = False  # http.response.start went out
        self.done = False  # the last body message went out
        self.gone = False  # the client left before the response was done
        self.overflowed = False  # output past the program's Content-Length was dropped
        self.deadline: asyncio.Timeout | None = None  # `timeout`, moved on by the time sends wait for the client

    async def run(self, process: Program, body: AsyncIterator[bytes], nph: bool) -> CgiHead | None:
        """Relay the program's response; the head of a local redirect is returned instead of sent."""
        assert process.stdout is not None and process.stderr is not None
        stderr = asyncio.ensure_future(read_stderr(StderrLog(self.label, logger), process.stderr))
        feeder = asyncio.ensure_future(self.feed(process.stdin, body))
        try:
            async with asyncio.timeout(self.time_limit) as self.deadline:
                head = await self.relay(process, CgiHeadReader(nph=nph))
                await asyncio.shield(self.group.exited)
            return head
        except TimeoutError:
            self.timed_out(self.time_limit)
            return None
        finally:
            feeder.cancel()
            await self.group.end()
            await _settle(stderr, 1.0)
            await _settle(feeder, 0.0)

    def timed_out(self, timeout: float) -> None:
        if self.done:
            logger.error("%s: still running %g s after it started (its output had ended); ended", self.label, timeout)
            return
        logger.error("%s: ran past its timeout of %g s; ended", self.label, timeout)
        if self.started:
            raise ResponseAborted(f"{self.label} ran past its timeout")
        raise ScriptTimeout(f"ran past its timeout of {timeout:g} s")

    # stdin and the client ---------------------------------------------------------

    async def feed(self, stdin: asyncio.StreamWriter | None, body: AsyncIterator[bytes]) -> None:
        """The body to stdin, then wait for the client to leave."""
        try:
            if stdin is not None:
                await self.write_body(stdin, body)
            while (await self.receive())["type"] != "http.disconnect":
                pass
        except ClientGone:
            pass
        if not self.done:
            self.gone = True
            self.group.terminate()

    @staticmethod
    async def write_body(stdin: asyncio.StreamWriter, body: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in body:
                if stdin.is_closing():  # uvloop raises RuntimeError on a write to a closed pipe
                    raise BrokenPipeError
                stdin.write(chunk)
                await stdin.drain()
            stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            async for _ in body:  # the program stopped reading: the rest of the body is dropped
                pass

    # stdout ------------------------------------------------------------------

    async def relay(self, process: Program, reader: CgiHeadReader) -> CgiHead | None:
        stdout = process.stdout
        assert stdout is not None
        head = await self.read_head(process, stdout, reader)
        if head.local_redirect:
            while await stdout.read(CHUNK):
                pass
            return head
        limit = head.length
        data, more = await self.first_piece(stdout, reader.body)
        if not more and limit is not None and len(data) < limit:
            raise ScriptError(f"{head.short_of(len(data))}{await self.exit_status(process)}")
        self.started = True
        await self.send({"type": "http.response.start", "status": head.status, "headers": head.headers})
        if not more:
            await self.finish(data, limit)
            return None
        room = limit
        while True:  # the first message goes out even when empty: it carries the head
            if room is not None:
                if len(data) > room:
                    self.overflow(limit)
                    data = data[:room]
                room -= len(data)
            await self.send_body(data)
            data = await stdout.read(CHUNK)
            while room == 0 and data:  # past its Content-Length: read on (the program must finish), send nothing
                self.overflow(limit)
                data = await stdout.read(CHUNK)
            if not data:
                break
        if limit is not None and room:  # the client was promised more: only a cut connection tells it
            logger.error("%s: %s; the connection was cut", self.label, head.short_of(limit - room))
            raise ResponseAborted(f"{self.label} wrote less than its Content-Length")
        await self.finish(b"", None)
        return None

    async def send_body(self, data: bytes) -> None:
        """A piece of the body; the time it waits for a slow client moves the deadline on.

        A script blocked on a full pipe is not running late (Apache's CGI timeout
        is the wait for output, nginx's the time between two reads).
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        await self.send({"type": "http.response.body", "body": data, "more_body": True})
        waited = loop.time() - began
        deadline = self.deadline
        if waited > WAIT_NOTED and deadline is not None and (when := deadline.when()) is not None:
            deadline.reschedule(when + waited)

    def overflow(self, limit: int | None) -> None:
        if not self.overflowed:
            self.overflowed = True
            logger.error("%s: wrote more than its Content-Length of %s; the rest was dropped", self.label, limit)

    async def finish(self, data: bytes, limit: int | None) -> None:
        if self.gone:
            raise ClientLeft
        if limit is not None and len(data) > limit:
            self.overflow(limit)
            data = data[:limit]
        self.done = True
        await self.send({"type": "http.response.body", "body": data, "more_body": False})

    async def read_head(self, process: Program, stdout: asyncio.StreamReader, reader: CgiHeadReader) -> CgiHead:
        try:
            while True:
                data = await stdout.read(CHUNK)
                if not data:
                    reader.eof()
                head = reader.feed(data)
                if head is not None:
                    return head
        except CgiResponseError as exc:
            if self.gone:
                raise ClientLeft from None
            raise ScriptError(f"{exc}{await self.exit_status(process)}") from None

    async def exit_status(self, process: Program) -> str:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.group.exited), EXIT_STATUS_WAIT)
        code = process.returncode
        if code is None:
            return ""
        return f" (exit status {code})" if code >= 0 else f" (killed by signal {-code})"

    @staticmethod
    async def first_piece(stdout: asyncio.StreamReader, data: bytes) -> tuple[bytes, bool]:
        """What follows the head within HOLD seconds (up to CHUNK), and whether more may come."""
        try:
            async with asyncio.timeout(HOLD):
                while len(data) < CHUNK:
                    piece = await stdout.read(CHUNK)
                    if not piece:
                        return data, False
                    data += piece
        except TimeoutError:
            pass
        return data, True


async def read_stderr(log: StderrLog, stream: asyncio.StreamReader) -> None:
    """The script's stderr into the log until it closes (bytes beyond the line limit are read and dropped)."""
    while data := await stream.read(CHUNK):
        if not log.full:
            log.feed(data)
    log.flush()


async def _settle(task: asyncio.Task[None], wait: float) -> None:
    """Let a helper task finish (at most wait seconds), then cancel it; its failure is logged, not raised."""
    if not task.done() and wait > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), wait)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    if not task.cancelled() and task.exception() is not None:
        logger.error("CGI helper task failed", exc_info=task.exception())
