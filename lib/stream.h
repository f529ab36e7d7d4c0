/*
 * stream: nonblocking byte streams over Unix domain sockets, after Open
 * vSwitch's lib/stream.
 *
 * An active stream is named "unix:PATH"; a passive listener ("pstream") is
 * named "punix:PATH".  A PATH that starts with '@' names a Linux abstract
 * socket ("unix:@chand-ctl" connects to the abstract name "chand-ctl"), which
 * needs no file system and vanishes with its last user.  PATH must fit in
 * sun_path (107 bytes for a file path or an abstract name); longer
 * paths are rejected with ENAMETOOLONG rather than truncated.
 *
 * Every call is nonblocking except stream_open_block().  Errors are positive
 * errno values, except the ssize_t returns of stream_recv()/stream_send(),
 * which are negative errno values.  All sockets are close-on-exec, and
 * sending never raises SIGPIPE (MSG_NOSIGNAL).
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

/* Returns true if 'name' has a known active-stream prefix ("unix:") and a
 * nonempty path; the path is not checked further. */
bool stream_verify_name(const char *name);

/* Starts connecting to 'name' ("unix:PATH" or "unix:@ABSTRACT").  On success
 * returns 0 and stores a new stream in '*streamp' (the caller closes it with
 * stream_close()); the connection may still be in progress (see
 * stream_connect()).  On failure returns a positive errno (EAFNOSUPPORT for
 * an unknown prefix, EINVAL for an empty path, ENAMETOOLONG, or a socket
 * error such as ENOENT or ECONNREFUSED) and stores NULL. */
int stream_open(const char *name, struct stream **streamp);

/* Like stream_open(), then waits (in poll(2), nothing else runs) until the
 * connection completes or fails.  Returns 0 or a positive errno; on failure
 * '*streamp' is NULL.  For command-line tools. */
int stream_open_block(const char *name, struct stream **streamp);

/* Advances a connection in progress.  Returns 0 once connected, EAGAIN while
 * still in progress, or a positive errno if it failed (the failure sticks:
 * later calls return the same value). */
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

/* Does periodic work (nothing for Unix sockets; kept for API shape). */
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
 * accepted stream, the listener's name with "punix:" replaced by "unix:".
 * Owned by the stream. */
const char *stream_get_name(const struct stream *);

/* The socket file descriptor, owned by the stream (for poll and
 * credentials checks such as SO_PEERCRED; do not close it). */
int stream_get_fd(const struct stream *);

/* Returns true if 'name' has a known passive prefix ("punix:") and a
 * nonempty path. */
bool pstream_verify_name(const char *name);

/* Starts listening on 'name' ("punix:PATH" or "punix:@ABSTRACT").  For a
 * file path, removes a stale socket file left by an earlier process (but
 * fails with EADDRINUSE if something is still listening on it, and never
 * removes anything that is not a socket) and creates the parent directory
 * with mode 0755 if it is missing (one level).  Returns 0 and stores a new
 * pstream in '*pstreamp', or a positive errno and stores NULL. */
int pstream_open(const char *name, struct pstream **pstreamp);

/* Accepts one pending connection: returns 0 and stores a new, connected
 * stream in '*streamp' (the caller closes it), or EAGAIN if none is
 * pending, or another positive errno (then '*streamp' is NULL). */
int pstream_accept(struct pstream *, struct stream **streamp);

/* Arranges for poll_block() to wake when a connection is pending. */
void pstream_wait(struct pstream *);

/* Closes the listener; for a file path, unlinks the socket file.  NULL is
 * allowed. */
void pstream_close(struct pstream *);

/* The name the pstream was opened with.  Owned by the pstream. */
const char *pstream_get_name(const struct pstream *);

#endif /* stream.h */
