"""Server-sent events framing on bytes (the WHATWG event-stream rules), for the API stream.

Only the ``data`` of each event matters to the API path: the event name repeats the ``type``
inside the JSON. Working on bytes skips the text decoding and per-line objects of a general
SSE client, and hands msgspec the UTF-8 bytes it decodes directly.
"""

from __future__ import annotations

__all__ = ["SseFramer"]

_BOM = b"\xef\xbb\xbf"


class SseFramer:
    """Feed it the chunks of an event stream; it returns the ``data`` of each complete event.

    Lines end with CRLF, LF or CR (also when a chunk boundary falls between CR and LF); lines
    starting with ``:`` are comments; ``data`` lines are joined with LF; a blank line ends an
    event, which is dispatched only when it has data. Every other field is ignored, and an event
    cut off by the end of the stream is never dispatched. Cost is linear in the bytes fed.
    """

    __slots__ = ("_cr", "_data", "_rest", "_started")

    def __init__(self) -> None:
        self._rest: list[bytes] = []  # the start of an unfinished line
        self._data: list[bytes] = []  # data lines of the event being read
        self._cr = False  # the last chunk ended with CR: an LF starting the next one is its pair
        self._started = False

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if not self._started:
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if self._cr:
            self._cr = False
            if chunk.startswith(b"\n"):  # the LF of a CRLF already taken as a line end
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\r" in chunk:
            self._cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            self._rest.append(chunk)
            return []
        if self._rest:
            self._rest.append(chunk[:end])
            lines = b"".join(self._rest).split(b"\n")
            self._rest = []
        else:
            lines = chunk[:end].split(b"\n")
        if end + 1 < len(chunk):
            self._rest.append(chunk[end + 1 :])
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data = self._data = []
            elif line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b" ", 5) else line[5:])
            elif line == b"data":
                data.append(b"")
        return out
