"""chand: the client library of chand-guest's local API, for applications
in a VM.

chand-guest, the guest daemon of chand, keeps the records the hypervisor
pushes to the VM, and carries back the records the VM publishes.  Its
local API is JSON-RPC 1.0 on a Unix socket, by default the abstract socket
"@chand-guest" of the VM's network namespace (chand-guest(8)).

    import chand

    with chand.Client() as c:
        print(c.get("color").value)          # a record the host pushed
        c.publish("app/state", {"ready": True})
        for change in c.watch("config/", initial=True):
            print(change.key, change.op, change.value)

Pure Python 3, standard library only.  See doc/python-client.md.
"""

from .client import (DEFAULT_API, DEFAULT_TIMEOUT, AddedObject, Change,
                     Client, ObjectInfo, Published, PublishedRecord, Record,
                     RestoreRequest, Watch, hash_file, object_path)
from .errors import (ChandError, ConnectionLost, InvalidParams, NotFound,
                     NotSupported, OverLimit, ProtocolError, Timeout,
                     UnknownMethod, Unavailable)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_API", "DEFAULT_TIMEOUT", "AddedObject", "Change", "Client",
    "ObjectInfo", "Published", "PublishedRecord", "Record", "RestoreRequest",
    "Watch", "hash_file", "object_path",
    "ChandError", "ConnectionLost", "InvalidParams", "NotFound",
    "NotSupported", "OverLimit", "ProtocolError", "Timeout", "UnknownMethod",
    "Unavailable",
]
