"""The exceptions of the chand client library.

Every exception the library raises for chand's sake is a ChandError:

  ChandError                 base; str() is the message
    NotFound                 "not found ..." (get, unpublish, object-remove)
    InvalidParams            "invalid params: ..." (a bad key, value, path,
                             digest, ...); also raised before sending for a
                             key or value that cannot be sent as JSON
    OverLimit                "over limit: ..." (a limit the host set for
                             the VM, or 64 paths for one digest)
    NotSupported             "not supported: ..." (object-restore without
                             a transfer lane)
    UnknownMethod            "unknown method: M" (a chand-guest older than
                             the call)
    ProtocolError            chand-guest sent something that is not
                             JSON-RPC
    Unavailable              also a ConnectionError: cannot connect to the
                             API socket (chand-guest is not running, or
                             the socket name is wrong)
      ConnectionLost         the connection broke or was closed
    Timeout                  also a TimeoutError: no reply in time
"""


class ChandError(Exception):
    """An error from chand-guest or about talking to it.

    'message' is the text: for an error reply, chand-guest's own message
    (e.g. "invalid params: bad key: ...").  'method' is the API method of
    the call that failed, or None."""

    def __init__(self, message, method=None):
        super().__init__(message)
        self.message = message
        self.method = method

    def __str__(self):
        return self.message


class NotFound(ChandError):
    """The key, published key or object path does not exist."""


class InvalidParams(ChandError):
    """chand-guest refused the request's parameters."""


class OverLimit(ChandError):
    """A publication or registration over a limit."""


class NotSupported(ChandError):
    """chand-guest cannot do this here (e.g. no transfer lane)."""


class UnknownMethod(ChandError):
    """chand-guest does not know the method (an older version)."""


class ProtocolError(ChandError):
    """chand-guest sent data that is not a JSON-RPC message."""


class Unavailable(ChandError, ConnectionError):
    """chand-guest's API socket cannot be reached."""


class ConnectionLost(Unavailable):
    """The connection to chand-guest broke, or the client was closed."""


class Timeout(ChandError, TimeoutError):
    """chand-guest did not answer within the client's timeout."""


# The prefixes of chand-guest's error strings (chand-guest/api.h) and the
# exception each one maps to; anything else ("internal error: ...",
# "invalid request: ...") is a plain ChandError.
_PREFIXES = (
    ("not found", NotFound),
    ("invalid params", InvalidParams),
    ("over limit", OverLimit),
    ("not supported", NotSupported),
    ("unknown method", UnknownMethod),
)


def error_from_reply(error, method=None):
    """Returns the exception for the "error" member 'error' of an error
    reply to 'method': a string as chand-guest sends, or any JSON value."""
    if isinstance(error, str):
        text = error
    elif isinstance(error, dict) and isinstance(error.get("error"), str):
        text = error["error"]
        if isinstance(error.get("details"), str):
            text += ": " + error["details"]
    else:
        text = repr(error)
    for prefix, cls in _PREFIXES:
        if text.startswith(prefix):
            return cls(text, method)
    return ChandError(text, method)
