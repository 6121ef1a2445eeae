"""Framed messages over pipes between the processes of a run.

Not ``multiprocessing.connection``: it reads a large message in pipe-buffer-sized chunks,
each into a fresh bytes object of the whole remaining size, then copies them all once
more; a 2 MB page cost about 60 allocations and three copies. Here a message is read
straight into one buffer of its size (``readv``), and the pipes are widened to 1 MiB so
that a page crosses in a couple of wake-ups rather than thirty.

A message is one or two frames (a header, and for pages the body as it came off the
wire): ``<u32 header length><u32 body length>`` then both. A closed pipe reads as
``EOFError``: the other process is gone, or said all it had to say.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct

_LENGTHS = struct.Struct("<II")
#: F_SETPIPE_SZ (Linux): the pipe's capacity in bytes
_F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


def _iov_max() -> int:
    try:
        return max(16, os.sysconf("SC_IOV_MAX"))
    except (AttributeError, ValueError, OSError):
        return 16  # POSIX's least


#: the most buffers one writev takes
_IOV_MAX = _iov_max()


def pipe() -> tuple[int, int]:
    """A pipe (read end, write end), widened where the system allows it."""
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # not Linux, or over the system's limit
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, PIPE_SIZE)
    return read_fd, write_fd


class Sender:
    """The writing end of a pipe. Not thread-safe: one thread sends on a pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, header: bytes, *body: bytes | memoryview) -> None:
        """One message: a header and a body, the body given in one or more chunks (as many
        as it came in: a page off a slow link may be thousands)."""
        size = sum(len(chunk) for chunk in body)
        buffers: list[bytes | memoryview] = [_LENGTHS.pack(len(header), size), header, *body]
        while buffers:
            # writev takes IOV_MAX buffers at most (EINVAL beyond); a signal or a full pipe
            # may cut a write short: what is left goes in the next one
            batch = buffers[:_IOV_MAX]
            written = os.writev(self.fd, batch)
            buffers = _skip(batch, written) + buffers[_IOV_MAX:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _skip(buffers: list[bytes | memoryview], n: int) -> list[bytes | memoryview]:
    out: list[bytes | memoryview] = []
    for buf in buffers:
        if n >= len(buf):
            n -= len(buf)
        else:
            out.append(memoryview(buf)[n:])
            n = 0
    return out


class Receiver:
    """The reading end of a pipe.

    Messages are read into one buffer, reused: what :meth:`recv` returns is valid until
    the next call (every reader decodes a message before it reads the next). A fresh
    buffer per message would cost its zeroing and a page fault per 4 KiB: at 2 GB of
    pages per million Plex episodes, about a second of CPU.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray(64 * 1024)

    def fileno(self) -> int:
        return self.fd

    def recv(self) -> tuple[memoryview, memoryview]:
        """The next message's header and body (empty when it had none), valid until the
        next call."""
        header_size, body_size = _LENGTHS.unpack(self._exactly(8))
        data = self._exactly(header_size + body_size)
        return data[:header_size], data[header_size:]

    def _exactly(self, size: int) -> memoryview:
        if size > len(self._buffer):
            self._buffer = bytearray(max(size, 2 * len(self._buffer)))
        buf = memoryview(self._buffer)[:size]
        at = 0
        while at < size:
            n = os.readv(self.fd, [buf[at:]])
            if n == 0:
                raise EOFError("the pipe was closed")
            at += n
        return buf

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
