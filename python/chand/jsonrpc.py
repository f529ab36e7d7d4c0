"""JSON-RPC 1.0 framing as chand's lib/jsonrpc speaks it.

On the stream, messages are JSON objects written one after the other, with
no length prefix and no separator (whitespace between them is allowed), as
OVSDB does.  A message ends at the brace that closes its first one: the
reader scans for it, outside strings, without parsing, and then parses the
complete message.  Anything between messages other than whitespace, or a
message over MAX_MSG bytes, is a protocol error.
"""

import json
import re

from .errors import InvalidParams, ProtocolError

# lib/jsonrpc.h, JSONRPC_MAX_MSG.
MAX_MSG = 160 * 1024 * 1024

_STRUCTURAL = re.compile(rb'[{}\[\]"]')
_SPACE = b" \t\r\n"


def encode(msg):
    """Returns the bytes of message 'msg' (a dict) on the wire: compact
    UTF-8 JSON.  Raises InvalidParams if it cannot be sent as JSON: a NaN
    or infinite number, a string that is not valid Unicode (a lone
    surrogate), a value of a type JSON has no form for."""
    try:
        text = json.dumps(msg, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
        return text.encode("utf-8")
    except (TypeError, ValueError) as e:
        # UnicodeEncodeError is a ValueError.
        raise InvalidParams("invalid params: not sendable as JSON: %s" % e,
                            msg.get("method")) from None


class Reader:
    """Splits a byte stream into JSON-RPC messages.

    feed() appends received bytes; next_message() returns the next
    complete message (a dict) or None if more bytes are needed.  Scanning
    resumes where it stopped, so a large message arriving in many pieces
    costs time in proportion to its size."""

    def __init__(self, max_msg=MAX_MSG):
        self._buf = bytearray()
        self._max_msg = max_msg
        self._start = 0         # Where the current message starts.
        self._pos = 0           # Where scanning resumes.
        self._depth = 0         # 0: between messages.
        self._in_string = False

    def feed(self, data):
        """Appends 'data' (bytes) to the input."""
        self._buf += data

    def next_message(self):
        """Returns the next complete message, or None.  Raises
        ProtocolError on input that is not a stream of JSON objects."""
        end = self._scan()
        if end is None:
            return None
        data = bytes(self._buf[self._start:end])
        self._start = self._pos = end
        self._compact()
        try:
            msg = json.loads(data)
        except ValueError as e:
            raise ProtocolError("malformed JSON from chand-guest: %s" % e)
        if not isinstance(msg, dict):
            raise ProtocolError("a message from chand-guest is not a JSON "
                                "object")
        return msg

    def _compact(self):
        """Drops the consumed input once it is most of the buffer."""
        if self._start > 65536 and self._start * 2 > len(self._buf):
            del self._buf[:self._start]
            self._pos -= self._start
            self._start = 0

    def _scan(self):
        """Advances the scan; returns the end (one past the closing brace)
        of the message that starts at self._start, or None."""
        buf, pos, n = self._buf, self._pos, len(self._buf)
        try:
            while pos < n:
                if self._depth == 0:
                    c = buf[pos]
                    if c in _SPACE:
                        pos += 1
                        self._start = pos
                        continue
                    if c != ord("{"):
                        raise ProtocolError("data from chand-guest is not "
                                            "a JSON object")
                    self._depth = 1
                    pos += 1
                elif self._in_string:
                    q = buf.find(b'"', pos)
                    if q < 0:
                        pos = n
                        break
                    pos = q + 1
                    if not _escaped(buf, q):
                        self._in_string = False
                else:
                    m = _STRUCTURAL.search(buf, pos)
                    if not m:
                        pos = n
                        break
                    pos = m.end()
                    c = buf[m.start()]
                    if c == ord('"'):
                        self._in_string = True
                    elif c in b"{[":
                        self._depth += 1
                    else:
                        self._depth -= 1
                        if self._depth == 0:
                            return pos
            return None
        finally:
            self._pos = pos
            if self._depth and pos - self._start > self._max_msg:
                raise ProtocolError("a message from chand-guest is longer "
                                    "than %d bytes" % self._max_msg)


def _escaped(buf, q):
    """Returns true if the quote at 'q' in 'buf' is escaped: preceded by an
    odd number of backslashes."""
    k = q
    while k > 0 and buf[k - 1] == 0x5c:
        k -= 1
    return (q - k) % 2 == 1
