"""The client of chand-guest's local API (chand-guest/api.h).

One Client is one connection to chand-guest, used by one thread at a time.
Calls are synchronous: each sends one request and reads until its reply.
The "update" notifications of watches that arrive meanwhile are queued
for their Watch, never dropped.
"""

import collections
import dataclasses
import errno
import hashlib
import os
import socket
import stat
import time
import typing

from . import jsonrpc
from .errors import (ChandError, ConnectionLost, InvalidParams, ProtocolError,
                     Timeout, Unavailable, error_from_reply)

DEFAULT_API = "@chand-guest"
"""The API socket chand-guest listens on by default: the Linux abstract
socket "chand-guest", private to the VM's network namespace."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a call waits for its reply by default."""

_HASH_CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Record:
    """A record the host pushed: 'key', 'value' (any JSON value, parsed)
    and 'version' (the host's version of the key)."""
    key: str
    value: typing.Any
    version: int

    @classmethod
    def from_json(cls, j):
        return cls(j["key"], j.get("value"), j.get("version"))


@dataclasses.dataclass(frozen=True)
class Change:
    """One change to a watched record.

    'op' is "put" (the record was created or updated: 'value' is its value
    when chand-guest sent the change, 'version' its version) or "delete"
    ('value' and 'version' are None).  'initial' is true for the records a
    watch with initial=True yields first, as "put"s, from the state when
    the watch started."""
    key: str
    op: str
    value: typing.Any = None
    version: typing.Optional[int] = None
    initial: bool = False

    @property
    def deleted(self):
        """True for a deletion."""
        return self.op == "delete"

    @classmethod
    def from_json(cls, j):
        return cls(j["key"], j["op"], j.get("value"), j.get("version"))


@dataclasses.dataclass(frozen=True)
class PublishedRecord:
    """A record this VM published (or withdrew, while the host does not
    have the withdrawal yet: 'deleted' true and 'value' None).  'state' is
    "pending" until the host acknowledged 'version' ('acked_version' is the
    highest version it acknowledged), then "delivered"."""
    key: str
    value: typing.Any
    version: int
    acked_version: int
    deleted: bool
    state: str

    @property
    def pending(self):
        """True until the host has this version."""
        return self.state == "pending"

    @classmethod
    def from_json(cls, j):
        return cls(j["key"], j.get("value"), j.get("version"),
                   j.get("acked_version"), bool(j.get("deleted")),
                   j.get("state"))


@dataclasses.dataclass(frozen=True)
class Published:
    """The answer of Client.published(): 'records' (PublishedRecord, in
    ascending bytewise key order, pending withdrawals included), 'count'
    (the records not withdrawn), 'withdrawn' (pending withdrawals) and
    'pending' (records of either kind the host has not acknowledged)."""
    records: typing.List[PublishedRecord]
    count: int
    withdrawn: int
    pending: int

    def values(self):
        """Returns {key: value} of the records not withdrawn."""
        return {r.key: r.value for r in self.records if not r.deleted}


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """A registered object path: 'path', 'digest' (sha256, lowercase hex),
    'size' in bytes, 'flags' (list of str), 'params' ({str: str}) and
    'added_at' (when it was registered, as chand-guest keeps it)."""
    path: str
    digest: str
    size: int
    flags: typing.List[str]
    params: typing.Dict[str, str]
    added_at: int

    @classmethod
    def from_json(cls, j):
        return cls(j["path"], j["digest"], j.get("size"),
                   j.get("flags") or [], j.get("params") or {},
                   j.get("added_at"))


@dataclasses.dataclass(frozen=True)
class AddedObject:
    """The answer of Client.object_add(): the 'path' as registered
    (absolute, normalized), its 'digest' and 'size'.  The host sees the
    object as the published record 'key' ("obj/DIGEST")."""
    path: str
    digest: str
    size: int

    @property
    def key(self):
        return "obj/" + self.digest


@dataclasses.dataclass(frozen=True)
class RestoreRequest:
    """The answer of Client.object_restore(): the outcome will be published
    as "result/" + 'key' ("result/restore/DIGEST") with an "at" of 'at' or
    later."""
    key: str
    at: int

    @property
    def result_key(self):
        return "result/" + self.key


def socket_address(path):
    """Returns the address for socket.connect() of API socket 'path': "@NAME"
    is the abstract socket NAME; "unix:PATH" and anything else is a file
    path."""
    if path.startswith("unix:"):
        path = path[len("unix:"):]
    if path.startswith("@"):
        return "\0" + path[1:]
    return path


def object_path(path):
    """Returns 'path' as chand-guest registers it: absolute, the canonical
    path of its directory (symbolic links resolved) and its last component
    as it is (not resolved: a symbolic link there is refused).  Raises
    InvalidParams if the last component is not a file name, OSError if the
    directory does not exist."""
    path = os.fspath(path)
    head, base = os.path.split(path)
    if base in ("", ".", ".."):
        raise InvalidParams("invalid params: bad path: %s: not a file name"
                            % path)
    head = head or "."
    if not os.path.isdir(head):
        raise FileNotFoundError(2, "no such directory", head)
    return os.path.join(os.path.realpath(head), base)


def hash_file(path):
    """Returns (sha256 in lowercase hex, size) of the regular file 'path',
    read to its end without following a final symbolic link.  Raises
    InvalidParams for a symbolic link or anything but a regular file,
    OSError if it cannot be read."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer.
    flags = (os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
             | os.O_NONBLOCK)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:      # The last component is a link.
            raise InvalidParams("invalid params: bad file: %s: a symbolic "
                                "link (give the file itself)" % path)
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidParams("invalid params: bad file: %s: not a regular "
                            "file" % path)
    with os.fdopen(fd, "rb") as f:
        h = hashlib.sha256()
        size = 0
        while True:
            chunk = f.read(_HASH_CHUNK)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _prefix_params(prefix):
    return [] if prefix is None else [prefix]


class Watch:
    """The changes to records under a prefix, from Client.watch().

    Iterate over it for Change objects, as they happen: iteration blocks
    until the next change, and raises ConnectionLost if the connection
    breaks (chand-guest stopped): it never ends by itself.  get() waits
    at most a given time.  'prefix' is the prefix watched ("" for every
    key), 'position' the datastore's position when the watch started, and
    'snapshot' the records of the start (list of Record) for a watch with
    initial=True, else None.

    chand-guest keeps watching until the connection closes; close() only
    stops this object from queueing changes."""

    def __init__(self, client, prefix, position):
        self.client = client
        self.prefix = prefix
        self.position = position
        self.snapshot = None
        self._queue = collections.deque()
        self._closed = False

    def __iter__(self):
        return self

    def __next__(self):
        return self.get(timeout=None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def get(self, timeout=None):
        """Returns the next Change, waiting at most 'timeout' seconds for it
        (None: as long as it takes); returns None if none came in time."""
        if self._closed:
            raise ChandError("the watch on %r is closed" % self.prefix,
                             "watch")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._queue:
            try:
                self.client._dispatch(self.client._read_message(
                    deadline, "watch"))
            except Timeout:
                return None
        return self._queue.popleft()

    def pending(self):
        """Returns the number of changes already received and not yet
        returned."""
        return len(self._queue)

    def close(self):
        """Stops queueing changes for this watch."""
        if not self._closed:
            self._closed = True
            self._queue.clear()
            self.client._watches.remove(self)

    def _matches(self, key):
        return key.startswith(self.prefix)

    def _push(self, change):
        self._queue.append(change)


class Client:
    """A connection to chand-guest's local API.

    'path' is the API socket: "@NAME" for an abstract socket, or a file
    path; by default the environment's CHAND_GUEST_API (as for chanctl),
    else "@chand-guest".  'timeout' is how long, in seconds, a call waits
    for its reply (None: forever).  The constructor connects, and raises
    Unavailable if it cannot.

    Use it as a context manager, or call close().  Not thread-safe: use
    one Client per thread."""

    def __init__(self, path=None, timeout=DEFAULT_TIMEOUT):
        self.path = path or os.environ.get("CHAND_GUEST_API") or DEFAULT_API
        self.timeout = timeout
        self._reader = jsonrpc.Reader()
        self._next_id = 0
        self._watches = []
        self._sock = None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(socket_address(self.path))
        except OSError as e:
            sock.close()
            raise Unavailable("chand-guest is not running or its API socket "
                              "%s is not reachable: %s"
                              % (self.path, e.strerror or e)) from None
        self._sock = sock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<chand.Client %s%s>" % (self.path,
                                        "" if self._sock else " closed")

    def close(self):
        """Closes the connection (and so every watch on it)."""
        if self._sock:
            self._sock.close()
            self._sock = None

    @property
    def closed(self):
        return self._sock is None

    # -- the API ---------------------------------------------------------

    def get(self, key):
        """Returns the Record of 'key'; raises NotFound if there is none."""
        return Record.from_json(self.call("get", key))

    def list(self, prefix=None):
        """Returns the records whose keys start with 'prefix' (every record
        if None), a list of Record in ascending bytewise key order."""
        return [Record.from_json(r)
                for r in self.call("list", *_prefix_params(prefix))]

    def watch(self, prefix=None, initial=False):
        """Starts watching the keys that start with 'prefix' (every key if
        None) and returns a Watch: an iterator of the Change of every
        change committed afterwards.

        With initial=True, the records under 'prefix' when the watch
        starts come first, as Change(op="put", initial=True), and then
        every change after that state, so that nothing is missed: the
        watch is made first, then the records are listed, and the changes
        received before the list (already in it) are dropped."""
        result = self.call("watch", *_prefix_params(prefix))
        w = Watch(self, result.get("prefix", prefix or ""),
                  result.get("position"))
        self._watches.append(w)
        if initial:
            records = self.list(prefix)
            # Every change received until now is in the list.
            w._queue.clear()
            w.snapshot = records
            w._queue.extend(Change(r.key, "put", r.value, r.version, True)
                            for r in records)
        return w

    def publish(self, key, value):
        """Publishes 'key' (1..256 bytes of UTF-8, not under "from/",
        "obj/" or "result/") with 'value' (anything json.dumps() takes) for
        the host, durably before it returns; returns its new version.
        Raises InvalidParams for a bad or reserved key or value, OverLimit
        over a limit the host set for the VM."""
        return self.call("publish", key, value)["version"]

    def unpublish(self, key):
        """Withdraws published 'key'; returns the withdrawal's version.
        Raises NotFound if it is unknown or already withdrawn."""
        return self.call("unpublish", key)["version"]

    def published(self, prefix=None):
        """Returns what this VM publishes under 'prefix' (everything if
        None), withdrawals the host does not have yet included: a
        Published."""
        r = self.call("published", *_prefix_params(prefix))
        return Published([PublishedRecord.from_json(j)
                          for j in r.get("records", [])],
                         r.get("count"), r.get("withdrawn"), r.get("pending"))

    def status(self):
        """Returns chand-guest's status (a dict, as "chanctl guest-status
        --json" prints it)."""
        return self.call("status")

    def echo(self, *params):
        """Returns 'params' as chand-guest sends them back (a list)."""
        return self.call("echo", *params)

    def object_add(self, path, flags=(), params=None):
        """Registers the regular file 'path' as an object: computes its
        sha256 and size, and has chand-guest register it with 'flags'
        (strings) and 'params' ({str: str}) and publish "obj/DIGEST".
        Returns an AddedObject.  Raises InvalidParams for a symbolic link,
        something that is not a regular file, or a file that changed size
        meanwhile; OSError if it cannot be read."""
        path = object_path(path)
        digest, size = hash_file(path)
        o = {"path": path, "digest": digest, "size": size,
             "flags": list(flags)}
        if params is not None:
            o["params"] = dict(params)
        r = self.call("object-add", o)
        return AddedObject(r.get("path", path), r.get("digest", digest), size)

    def object_remove(self, path):
        """Unregisters object path 'path' (made absolute as object_add()
        does); returns the path removed.  Raises NotFound if it is not
        registered."""
        return self.call("object-remove", {"path": object_path(path)})["path"]

    def objects(self, digest=None):
        """Returns the registered paths (of object 'digest' only, if given):
        a list of ObjectInfo in ascending bytewise path order."""
        params = [] if digest is None else [{"digest": digest}]
        return [ObjectInfo.from_json(j) for j in self.call("objects", *params)]

    def object_restore(self, digest, path):
        """Asks the host for object 'digest', to be written to 'path'
        (absolute, normalized, in an existing directory) by the restore
        handler.  Returns a RestoreRequest; the outcome is published later
        as its result_key.  Raises NotSupported without a transfer lane."""
        r = self.call("object-restore", {"digest": digest, "path": path})
        return RestoreRequest(r["key"], r.get("at"))

    # -- JSON-RPC --------------------------------------------------------

    def call(self, method, *params):
        """Calls API method 'method' with 'params'; returns the reply's
        result, or raises the ChandError of an error reply.  Notifications
        received while waiting are queued for their watches."""
        self._check_open(method)
        self._next_id += 1
        rid = self._next_id
        self._send({"method": method, "params": list(params), "id": rid},
                   method)
        deadline = (None if self.timeout is None
                    else time.monotonic() + self.timeout)
        while True:
            msg = self._read_message(deadline, method)
            if "method" not in msg and msg.get("id") == rid:
                error = msg.get("error")
                if error is not None:
                    raise error_from_reply(error, method)
                return msg.get("result")
            self._dispatch(msg)

    def _check_open(self, method):
        if not self._sock:
            raise ConnectionLost("the connection to chand-guest (%s) is "
                                 "closed" % self.path, method)

    def _lost(self, why, method):
        """Closes the connection and returns the exception saying so."""
        self.close()
        return ConnectionLost("connection to chand-guest (%s) lost: %s"
                              % (self.path, why), method)

    def _send(self, msg, method):
        data = jsonrpc.encode(msg)
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(data)
        except socket.timeout:
            # Part of the request may be out: the stream is unusable.
            raise self._lost("timed out sending", method) from None
        except OSError as e:
            raise self._lost(e.strerror or e, method) from None

    def _read_message(self, deadline, method):
        """Returns the next message, reading until 'deadline' (a
        time.monotonic() value, or None for no limit).  Raises Timeout at
        the deadline (the connection stays usable), ConnectionLost if the
        connection breaks, ProtocolError (and closes) on bad data."""
        self._check_open(method)
        while True:
            try:
                msg = self._reader.next_message()
            except ProtocolError as e:
                self.close()
                e.method = method
                raise
            if msg is not None:
                return msg
            # Past the deadline, one more read that does not wait.
            self._sock.settimeout(None if deadline is None
                                  else max(deadline - time.monotonic(), 0))
            try:
                data = self._sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                raise self._timeout(method) from None
            except OSError as e:
                raise self._lost(e.strerror or e, method) from None
            if not data:
                raise self._lost("closed by chand-guest", method)
            self._reader.feed(data)

    def _timeout(self, method):
        return Timeout("no answer from chand-guest (%s) to %s within %g s"
                       % (self.path, method, self.timeout or 0), method)

    def _dispatch(self, msg):
        """Queues the changes of an "update" notification for the watches
        they concern; ignores anything else (a late reply to a call that
        timed out)."""
        if msg.get("method") != "update" or msg.get("id") is not None:
            return
        for j in msg.get("params") or []:
            try:
                change = Change.from_json(j)
            except (KeyError, TypeError):
                continue
            for w in self._watches:
                if w._matches(change.key):
                    w._push(change)
