"""OVSDB's JSON-RPC for the system tests' Python tools (fault-tool.py,
cluster-tool.py): a blocking client for ovsdb-server's Chan DB and for
chand-host's control socket, which speak the same wire format (JSON values
back to back on a stream, echo requests answered).

Imported by scripts in this directory; they are run as
`python3 test/system/TOOL.py`, from any directory.

Remotes: unix:PATH, tcp:HOST:PORT, ssl:HOST:PORT (HOST may be in [];
TLS: the environment gives the client's files, CL_KEY, CL_CERT and
CL_CACERT; CL_CERT empty: no client certificate).

Errors: a connection that cannot be made, breaks or is closed raises
OSError (ssl.SSLError is one); an error answer raises RpcError (a
RuntimeError); an unknown kind of remote raises ValueError.
"""
import codecs
import json
import os
import socket
import ssl
import time


class RpcError(RuntimeError):
    """The peer answered a request with an error."""


class Conn:
    """A blocking JSON-RPC connection to one remote."""

    def __init__(self, remote, timeout=10):
        kind, _, rest = remote.partition(":")
        if kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(rest)
        elif kind in ("tcp", "ssl"):
            host, _, port = rest.rpartition(":")
            host = host.strip("[]")
            s = socket.create_connection((host, int(port)), timeout=timeout)
            if kind == "ssl":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(os.environ["CL_CACERT"])
                if os.environ.get("CL_CERT"):
                    ctx.load_cert_chain(os.environ["CL_CERT"],
                                        os.environ["CL_KEY"])
                s = ctx.wrap_socket(s)
        else:
            raise ValueError("unknown remote %s" % remote)
        self.sock = s
        self.remote = remote
        self.buf = ""
        self.decoder = json.JSONDecoder()
        # Incremental: a UTF-8 character may straddle two reads.
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.next_id = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self):
        while True:
            text = self.buf.lstrip()
            if text:
                try:
                    msg, end = self.decoder.raw_decode(text)
                    self.buf = text[end:]
                    return msg
                except ValueError:
                    pass
            data = self.sock.recv(1 << 16)
            if not data:
                raise OSError("connection closed by %s" % self.remote)
            self.buf += self.utf8.decode(data)

    def call(self, method, params):
        """Sends one request and returns its result, answering the peer's
        echo requests and passing over anything else meanwhile."""
        self.next_id += 1
        req = {"method": method, "params": params, "id": self.next_id}
        self.sock.sendall(json.dumps(req).encode())
        while True:
            msg = self._recv()
            if msg.get("method") == "echo":
                self.sock.sendall(json.dumps(
                    {"result": msg["params"], "id": msg["id"]}).encode())
                continue
            if msg.get("id") != self.next_id:
                continue
            if msg.get("error"):
                raise RpcError("%s: %s" % (method, json.dumps(msg["error"])))
            return msg["result"]

    def transact(self, ops):
        """One transaction of 'ops' on the Chan DB; returns its result."""
        return self.call("transact", ["Chan"] + ops)


def connect(remotes, deadline, start=0, timeout=10):
    """Connects to the first of 'remotes' (comma-separated), from index
    'start' on and round again, that answers a transaction; keeps trying
    until 'deadline' (time.time()), then raises RuntimeError.  Returns
    the connection and the index of its remote."""
    remotes = remotes.split(",")
    i = start
    while True:
        r = remotes[i % len(remotes)]
        try:
            c = Conn(r, timeout=timeout)
            c.transact([])
            return c, i % len(remotes)
        except (OSError, RpcError, ValueError) as e:
            if time.time() > deadline:
                raise RuntimeError("no Chan DB member answers: %s" % e)
            i += 1
            time.sleep(0.2)
