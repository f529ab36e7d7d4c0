/*
 * stream: nonblocking byte streams over Unix domain sockets, TCP and TLS,
 * after Open vSwitch's lib/stream, with OVS's names:
 *
 *   unix:PATH        punix:PATH          Unix domain socket.
 *   tcp:HOST:PORT    ptcp:PORT[:HOST]    TCP.
 *   ssl:HOST:PORT    pssl:PORT[:HOST]    TLS over TCP (see stream-ssl.h).
 *
 * A PATH that starts with '@' names a Linux abstract socket
 * ("unix:@chand-ctl" connects to the abstract name "chand-ctl"), which
 * needs no file system and vanishes with its last user.  PATH must fit in
 * sun_path (107 bytes for a file path or an abstract name); longer paths
 * are rejected with ENAMETOOLONG rather than truncated.
 *
 * HOST is an IPv4 address, an IPv6 address in brackets ("tcp:[::1]:6641",
 * "ptcp:6641:[::1]"; a scope such as "[fe80::1%eth0]" is allowed) or a host
 * name, which stream_open() and pstream_open() resolve with getaddrinfo()
 * (blocking; the first address is used).  PORT is required, 1 to 65535 (a
 * passive PORT of 0 lets the kernel choose, see pstream_get_bound_port()).
 * Without HOST, a passive stream listens on every IPv4 address (as OVS
 * does; "ptcp:PORT:[::]" listens on IPv6 too).  TCP sockets have
 * TCP_NODELAY set; listening ones have SO_REUSEADDR.
 *
 * Every call is nonblocking except stream_open_block().  Errors are positive
 * errno values, except the ssize_t returns of stream_recv()/stream_send(),
 * which are negative errno values.  All sockets are close-on-exec, and
 * sending never raises SIGPIPE (MSG_NOSIGNAL, also under TLS).
 *
 * A TLS stream connects in two steps, both driven by stream_connect() (and
 * by stream_recv()/stream_send(), which call it): the TCP connection, then
 * the TLS handshake, which verifies the peer's certificate.  A stream
 * accepted by a "pssl:" listener starts in the handshake.  A handshake that
 * fails reports EPROTO (the reason is logged).  On a TLS stream,
 * stream_send() may accept bytes that it could not pass to the socket yet;
 * stream_run() (also stream_send() and stream_recv()) sends them, and
 * stream_run_wait() waits until that can progress, so a caller that sends
 * must call both, as jsonrpc does.  Whatever the kind, waiting with
 * stream_wait() accounts for TLS reads that need the socket to be writable
 * and writes that need it readable.
 */
#ifndef STREAM_H
#define STREAM_H 1

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct stream;
struct pstream;

enum stream_wait_type {
    STREAM_CONNECT,
    STREAM_RECV,
    STREAM_SEND
};

/* Returns true if 'name' has a known active-stream prefix and a plausible
 * rest: a nonempty path for "unix:" (not checked further), a well-formed
 * HOST:PORT for "tcp:" and "ssl:" (host names are not resolved). */
bool stream_verify_name(const char *name);

/* Starts connecting to 'name' ("unix:PATH", "unix:@ABSTRACT", "tcp:HOST:PORT"
 * or "ssl:HOST:PORT").  On success returns 0 and stores a new stream in
 * '*streamp' (the caller closes it with stream_close()); the connection may
 * still be in progress (see stream_connect()).  On failure returns a
 * positive errno and stores NULL: EAFNOSUPPORT for an unknown prefix, EINVAL
 * for an empty path or a malformed HOST:PORT (missing port, port out of
 * range, unbalanced brackets, an IPv6 address without brackets...),
 * EADDRNOTAVAIL for a host name that does not resolve, ENAMETOOLONG, a
 * socket error such as ENOENT or ECONNREFUSED, or for "ssl:" ENOPROTOOPT if
 * SSL is not configured (stream-ssl.h). */
int stream_open(const char *name, struct stream **streamp);

/* Like stream_open(), then waits (in poll(2), nothing else runs) until the
 * connection completes or fails.  Returns 0 or a positive errno; on failure
 * '*streamp' is NULL.  For command-line tools. */
int stream_open_block(const char *name, struct stream **streamp);

/* Advances a connection in progress (and a TLS handshake).  Returns 0 once
 * connected, EAGAIN while still in progress, or a positive errno if it
 * failed, e.g. ECONNREFUSED, or EPROTO for a failed TLS handshake (the
 * failure sticks: later calls return the same value). */
int stream_connect(struct stream *);

/* Receives up to 'n' bytes into 'buffer'.  Returns the number of bytes
 * received (> 0), 0 at end of stream, or a negative errno: -EAGAIN if
 * nothing is available yet (including while still connecting). */
ssize_t stream_recv(struct stream *, void *buffer, size_t n);

/* Sends up to 'n' bytes from 'buffer'.  Returns the number of bytes sent
 * (> 0; possibly fewer than 'n'), or a negative errno: -EAGAIN if the socket
 * buffer is full or the connection is still in progress.  Sending 0 bytes
 * returns 0. */
ssize_t stream_send(struct stream *, const void *buffer, size_t n);

/* Does periodic work: for TLS, sends the bytes stream_send() queued (see
 * above); nothing for other kinds.  stream_run_wait() arranges for
 * poll_block() to wake when stream_run() can progress. */
void stream_run(struct stream *);
void stream_run_wait(struct stream *);

/* Arranges for poll_block() to wake when 'stream' can make progress of the
 * given kind. */
void stream_wait(struct stream *, enum stream_wait_type);
void stream_connect_wait(struct stream *);
void stream_recv_wait(struct stream *);
void stream_send_wait(struct stream *);

/* Closes 'stream' and frees it.  NULL is allowed. */
void stream_close(struct stream *);

/* The name 'stream' was opened with (e.g. "unix:/run/chand/x.ctl"); for an
 * accepted Unix stream, the listener's name with "punix:" replaced by
 * "unix:"; for an accepted TCP or TLS stream, the peer's address as
 * "tcp:ADDR:PORT" or "ssl:ADDR:PORT" (an IPv6 ADDR in brackets).  Owned by
 * the stream. */
const char *stream_get_name(const struct stream *);

/* The socket file descriptor, owned by the stream (for poll and
 * credentials checks such as SO_PEERCRED; do not close it). */
int stream_get_fd(const struct stream *);

/* For a connected TLS stream, the common name (CN) of the peer's verified
 * certificate, otherwise NULL.  Owned by the stream. */
const char *stream_get_peer_id(const struct stream *);

/* Returns true if 'name' has a known passive prefix and a plausible rest: a
 * nonempty path for "punix:", a well-formed PORT[:HOST] for "ptcp:" and
 * "pssl:". */
bool pstream_verify_name(const char *name);

/* Starts listening on 'name' ("punix:PATH", "punix:@ABSTRACT",
 * "ptcp:PORT[:HOST]" or "pssl:PORT[:HOST]").  For a file path, removes a stale socket file left by an earlier process (but
 * fails with EADDRINUSE if something is still listening on it, and never
 * removes anything that is not a socket) and creates the parent directory
 * with mode 0755 if it is missing (one level).  Returns 0 and stores a new
 * pstream in '*pstreamp', or a positive errno and stores NULL (errors as for
 * stream_open(), and bind() errors such as EADDRINUSE).  A "pssl:" listener
 * needs no SSL configuration until it accepts. */
int pstream_open(const char *name, struct pstream **pstreamp);

/* Accepts one pending connection: returns 0 and stores a new, connected
 * stream in '*streamp' (the caller closes it; a TLS stream still has its
 * handshake to do, see stream_connect()), or EAGAIN if none is pending, or
 * another positive errno, e.g. ENOPROTOOPT for "pssl:" if SSL is not
 * configured (then the connection is closed and '*streamp' is NULL). */
int pstream_accept(struct pstream *, struct stream **streamp);

/* Arranges for poll_block() to wake when a connection is pending. */
void pstream_wait(struct pstream *);

/* Closes the listener; for a file path, unlinks the socket file.  NULL is
 * allowed. */
void pstream_close(struct pstream *);

/* The name the pstream was opened with; for "ptcp:" and "pssl:", the name
 * of the bound address as OVS gives it, "ptcp:PORT:ADDR" (e.g.
 * "ptcp:6641:0.0.0.0", "pssl:40123:[::1]").  Owned by the pstream. */
const char *pstream_get_name(const struct pstream *);

/* The port a "ptcp:" or "pssl:" listener is bound to (the kernel's choice
 * for port 0), or 0 for "punix:". */
int pstream_get_bound_port(const struct pstream *);

#endif /* stream.h */
