#!/usr/bin/env python3
"""drop-reply-proxy.py LISTEN TARGET N: a Unix-socket proxy for OVSDB
JSON-RPC that loses one reply, as a cluster failover can.

Listens on the Unix socket LISTEN and forwards every connection to the
Unix socket TARGET (an ovsdb-server).  On the first connection only, when
the server answers the Nth "transact" request the client sent, the proxy
drops that reply and closes both sides: the transaction committed, and the
client cannot know.  Every other message, and every later connection, goes
through untouched.  Writes "ready" to stdout once listening and, on stderr,
one line per lost reply.  Runs until killed.

A test tool (test/system/chanctl.sh): it drives chanctl's "verify after a
lost reply" path on purpose.
"""

import codecs
import json
import os
import selectors
import socket
import sys


def split_messages(buf):
    """Returns (messages, rest): the complete JSON values at the start of
    'buf' (a str) and what follows them."""
    decoder = json.JSONDecoder()
    msgs = []
    pos = 0
    while True:
        while pos < len(buf) and buf[pos].isspace():
            pos += 1
        if pos >= len(buf):
            return msgs, ""
        try:
            msg, end = decoder.raw_decode(buf, pos)
        except ValueError:
            return msgs, buf[pos:]
        msgs.append((msg, buf[pos:end]))
        pos = end


class Pair:
    def __init__(self, client, server, lossy, n):
        self.client = client
        self.server = server
        self.lossy = lossy      # Lose the reply to the nth transact?
        self.n = n
        self.seen = 0
        self.doomed_id = None
        self.bufs = {client: "", server: ""}
        # Incremental: a UTF-8 character may straddle two reads.
        self.utf8 = {x: codecs.getincrementaldecoder("utf-8")()
                     for x in (client, server)}

    def other(self, s):
        return self.server if s is self.client else self.client

    def forward(self, s, data):
        """Handles 'data' read from 's'.  Returns False once the pair is to
        be closed."""
        if not self.lossy:
            self.other(s).sendall(data)
            return True
        self.bufs[s] += self.utf8[s].decode(data)
        msgs, self.bufs[s] = split_messages(self.bufs[s])
        for msg, text in msgs:
            if s is self.client and msg.get("method") == "transact":
                self.seen += 1
                if self.seen == self.n:
                    self.doomed_id = msg.get("id")
            elif (s is self.server and self.doomed_id is not None
                  and "result" in msg and msg.get("id") == self.doomed_id):
                sys.stderr.write("drop-reply-proxy: lost the reply to "
                                 "transact %s\n" % json.dumps(msg["id"]))
                sys.stderr.flush()
                return False
            self.other(s).sendall(text.encode())
        return True


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    listen, target, n = argv[1], argv[2], int(argv[3])
    try:
        os.unlink(listen)
    except FileNotFoundError:
        pass
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(listen)
    lsock.listen(8)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    print("ready", flush=True)
    first = True
    pairs = {}
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is lsock:
                client, _ = lsock.accept()
                server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                server.connect(target)
                pair = Pair(client, server, first, n)
                first = False
                for x in (client, server):
                    pairs[x] = pair
                    sel.register(x, selectors.EVENT_READ)
                continue
            pair = pairs.get(s)
            if pair is None:
                continue
            data = s.recv(65536)
            if data and pair.forward(s, data):
                continue
            for x in (pair.client, pair.server):
                sel.unregister(x)
                pairs.pop(x, None)
                x.close()


if __name__ == "__main__":
    main(sys.argv)
