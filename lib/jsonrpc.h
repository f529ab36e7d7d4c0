/*
 * jsonrpc: JSON-RPC 1.0 over a stream, after Open vSwitch's lib/jsonrpc.
 *
 * Messages are jansson json_t objects; on the wire they are simply
 * concatenated JSON texts (no length prefix, no separator required), as
 * OVSDB and ovs-appctl use.  Each message must be a JSON object and must
 * not exceed JSONRPC_MAX_MSG bytes on the wire; anything else is a protocol
 * error (EPROTO, or EMSGSIZE for oversized input) that poisons the
 * connection.
 *
 * struct jsonrpc wraps one connected (or connecting) stream: jsonrpc_send()
 * queues, jsonrpc_run() flushes, jsonrpc_recv() parses.  Once an error
 * happens it sticks: jsonrpc_get_status() reports it and further sends and
 * receives fail with it.
 *
 * struct jsonrpc_session adds reconnection (lib/reconnect), inactivity
 * probes ("echo" requests) and answers the peer's "echo" requests itself.
 *
 * Message shapes (JSON-RPC 1.0 as used by OVSDB):
 *   request: {"method": STRING, "params": ARRAY, "id": ANY-NON-NULL}
 *   notify:  {"method": STRING, "params": ARRAY, "id": null}
 *   reply:   {"result": ANY, "error": null, "id": ANY-NON-NULL}
 *   error:   {"result": null, "error": ANY-NON-NULL, "id": ANY}
 * A missing "id" in a request-like message is treated as a notification,
 * and a missing "error" in a reply is treated as null.
 */
#ifndef JSONRPC_H
#define JSONRPC_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct stream;
struct pstream;

/* Largest message accepted on receive or queued on send (bytes). */
#define JSONRPC_MAX_MSG (160 * 1024 * 1024)

/* Largest amount of queued, unsent output (bytes); a send that would exceed
 * it fails with ENOBUFS and the connection is poisoned. */
#define JSONRPC_MAX_BACKLOG (256 * 1024 * 1024)

/* Message construction.  Each returns a new reference the caller owns. */

/* Creates a request {"method", "params", "id"} with a fresh id (an integer
 * from a process-wide counter).  'params' is stolen; NULL means [].  If
 * 'idp' is nonnull, stores a new reference to the id in '*idp' (caller
 * decrefs). */
json_t *jsonrpc_create_request(const char *method, json_t *params,
                               json_t **idp);
/* Creates a notification (id null).  'params' is stolen; NULL means []. */
json_t *jsonrpc_create_notify(const char *method, json_t *params);
/* Creates a reply.  'result' is stolen (NULL means JSON null); 'id' is
 * borrowed (copied by reference count). */
json_t *jsonrpc_create_reply(json_t *result, const json_t *id);
/* Creates an error reply.  'error' is stolen (NULL becomes the string
 * "error"); 'id' is borrowed (NULL means JSON null). */
json_t *jsonrpc_create_error(json_t *error, const json_t *id);

enum jsonrpc_msg_type {
    JSONRPC_INVALID,
    JSONRPC_REQUEST,
    JSONRPC_NOTIFY,
    JSONRPC_REPLY,
    JSONRPC_ERROR
};

/* Classifies 'msg' (borrowed) strictly: it must be an object with only the
 * members allowed for its type (see above), a string "method", an array
 * "params".  Anything else is JSONRPC_INVALID. */
enum jsonrpc_msg_type jsonrpc_msg_type(const json_t *msg);

/* Like jsonrpc_msg_type(), but on JSONRPC_INVALID stores a static string
 * describing why in '*whyp' (if nonnull). */
enum jsonrpc_msg_type jsonrpc_msg_classify(const json_t *msg,
                                           const char **whyp);

/* "request", "notify", "reply", "error", "invalid". */
const char *jsonrpc_msg_type_name(enum jsonrpc_msg_type);

/* Borrowed accessors; NULL when absent. */
const char *jsonrpc_msg_method(const json_t *msg);
json_t *jsonrpc_msg_params(const json_t *msg);
json_t *jsonrpc_msg_id(const json_t *msg);
json_t *jsonrpc_msg_result(const json_t *msg);
json_t *jsonrpc_msg_error(const json_t *msg);

/* Returns true if JSON values 'a' and 'b' (borrowed) are equal ids. */
bool jsonrpc_id_equal(const json_t *a, const json_t *b);

/* A JSON-RPC connection. */

/* Creates a connection over 'stream', which is stolen (closed by
 * jsonrpc_close()).  The stream may still be connecting. */
struct jsonrpc *jsonrpc_open(struct stream *stream);

/* Lowers the largest message 'rpc' accepts on receive to 'max_msg' bytes
 * (0 or anything above JSONRPC_MAX_MSG means JSONRPC_MAX_MSG); sending is
 * always capped at JSONRPC_MAX_MSG. */
void jsonrpc_set_max_msg(struct jsonrpc *rpc, size_t max_msg);

/* Closes 'rpc' and its stream, discarding unsent output.  NULL is
 * allowed. */
void jsonrpc_close(struct jsonrpc *rpc);

/* Flushes queued output as far as the stream accepts it. */
void jsonrpc_run(struct jsonrpc *rpc);
/* Waits until output can progress (if any is queued). */
void jsonrpc_wait(struct jsonrpc *rpc);
/* Waits until input may be available (or at once if a complete message is
 * already buffered or the connection has failed). */
void jsonrpc_recv_wait(struct jsonrpc *rpc);

/* Queues 'msg' (stolen, always: freed even on failure) for sending and
 * tries to send it at once.  Returns 0, or the connection's sticky error,
 * or EMSGSIZE if the serialized message exceeds JSONRPC_MAX_MSG (not
 * sticky), or ENOBUFS if the backlog limit would be exceeded (sticky). */
int jsonrpc_send(struct jsonrpc *rpc, json_t *msg);

/* Tries to receive one message.  Returns 0 and stores a new reference in
 * '*msgp' (caller decrefs); or EAGAIN if no complete message is available
 * yet; or EOF at a clean end of stream; or a positive errno: EPROTO for bad
 * JSON or a non-object message, EMSGSIZE for an oversized one, or a socket
 * error.  Everything but EAGAIN is sticky.  '*msgp' is NULL unless 0 is
 * returned.  The message is not validated beyond being an object: use
 * jsonrpc_msg_type(). */
int jsonrpc_recv(struct jsonrpc *rpc, json_t **msgp);

/* Sends 'msg' (stolen) and waits until it is fully sent.  0 or errno. */
int jsonrpc_send_block(struct jsonrpc *rpc, json_t *msg);

/* Waits for the next message.  0 (with a new reference in '*msgp'), EOF or
 * errno. */
int jsonrpc_recv_block(struct jsonrpc *rpc, json_t **msgp);

/* Like jsonrpc_recv_block(), but answers "echo" requests itself (and drops
 * them) while it waits for any other message. */
int jsonrpc_recv_block_noecho(struct jsonrpc *rpc, json_t **msgp);

/* Sends 'request' (stolen; must be a request with an id) and waits for the
 * reply or error with the same id, answering "echo" requests and discarding
 * other messages meanwhile.  Returns 0 and stores the reply or error
 * message (new reference) in '*replyp', or an errno (EINVAL if 'request'
 * has no id) and stores NULL.  For command-line tools: blocks in poll(2). */
int jsonrpc_transact_block(struct jsonrpc *rpc, json_t *request,
                           json_t **replyp);

/* Bytes queued but not yet sent. */
size_t jsonrpc_get_backlog(const struct jsonrpc *rpc);
/* Total bytes received on 'rpc' so far (a counter for activity
 * detection). */
unsigned long long int jsonrpc_get_received_bytes(const struct jsonrpc *rpc);
/* 0 if the connection is healthy, else its sticky error (EOF at end of
 * stream, or a positive errno).  After EOF the peer can still read:
 * jsonrpc_send() and jsonrpc_run() go on sending, so a server can finish
 * answering a client that half-closed after its requests; a send error then
 * replaces EOF and discards the queue. */
int jsonrpc_get_status(const struct jsonrpc *rpc);
/* The stream's name.  Owned by 'rpc'. */
const char *jsonrpc_get_name(const struct jsonrpc *rpc);

/* A reconnecting JSON-RPC session. */

/* Creates a session that connects to 'name' (an active stream name such as
 * "unix:/run/openvswitch/db.sock").  If 'retry' is true it reconnects with
 * backoff after failures; otherwise it gives up after the first failure or
 * disconnection (jsonrpc_session_is_alive() turns false).  The first
 * attempt happens at the first jsonrpc_session_run().  Defaults: backoff
 * 1000..8000 ms, inactivity probe off (Unix sockets report a dead peer at
 * once; turn probes on with jsonrpc_session_set_probe_interval() to detect a
 * hung one).  Never fails: a
 * bad name shows up as repeated connection failures.  The caller frees it
 * with jsonrpc_session_close(). */
struct jsonrpc_session *jsonrpc_session_open(const char *name, bool retry);

/* Like jsonrpc_session_open(), with 'n' remotes ('names' copied), as
 * Open vSwitch's jsonrpc_session_open_multiple(): the session connects to
 * one remote at a time, in the given order, and moves on to the next one
 * (wrapping around) whenever an attempt fails or a connection is lost or
 * dropped (jsonrpc_session_force_reconnect()).  The first round over the
 * remotes goes without backoff waits; after that the usual backoff applies
 * between attempts.  jsonrpc_session_get_name() is the current remote.
 * 'n' == 0 gives a session that never connects ("invalid:"). */
struct jsonrpc_session *jsonrpc_session_open_multiple(
    const char *const *names, size_t n, bool retry);

/* Allows one more round over all remotes without backoff (plus the drop of
 * the current connection, if any), for callers that drop a connection on
 * purpose and want the next remote at once (e.g. the server is not the
 * cluster leader). */
void jsonrpc_session_reset_backoff(struct jsonrpc_session *);

/* Total bytes received over all the session's connections. */
unsigned long long int jsonrpc_session_get_received_bytes(
    const struct jsonrpc_session *);

/* Number of remotes of the session. */
size_t jsonrpc_session_get_n_remotes(const struct jsonrpc_session *);

/* Creates a session around an already connected 'rpc' (stolen), e.g. one
 * accepted from a pstream; it does not reconnect. */
struct jsonrpc_session *jsonrpc_session_open_unreliably(struct jsonrpc *rpc);

void jsonrpc_session_close(struct jsonrpc_session *);

void jsonrpc_session_run(struct jsonrpc_session *);
void jsonrpc_session_wait(struct jsonrpc_session *);
void jsonrpc_session_recv_wait(struct jsonrpc_session *);

/* Receives one message: a new reference (caller decrefs), or NULL if none.
 * "echo" requests are answered and echo replies consumed here; neither is
 * returned.  Any message received counts as activity for the probe. */
json_t *jsonrpc_session_recv(struct jsonrpc_session *);

/* Sends 'msg' (stolen, always).  Returns 0, or ENOTCONN if not connected
 * (the message is dropped), or the connection's error. */
int jsonrpc_session_send(struct jsonrpc_session *, json_t *msg);

bool jsonrpc_session_is_connected(const struct jsonrpc_session *);
/* False once a non-retrying session has failed or been disconnected. */
bool jsonrpc_session_is_alive(const struct jsonrpc_session *);
/* Changes every time the session connects or disconnects, so a caller can
 * notice a reconnection it did not see happen (and resend state). */
unsigned int jsonrpc_session_get_seqno(const struct jsonrpc_session *);
/* Drops the current connection (if any) and reconnects at once. */
void jsonrpc_session_force_reconnect(struct jsonrpc_session *);
/* Backoff and probe settings (see reconnect.h). */
void jsonrpc_session_set_backoff(struct jsonrpc_session *, int min_backoff,
                                 int max_backoff);
void jsonrpc_session_set_probe_interval(struct jsonrpc_session *,
                                        int probe_interval);
const char *jsonrpc_session_get_name(const struct jsonrpc_session *);
/* Bytes queued on the current connection, or 0. */
size_t jsonrpc_session_get_backlog(const struct jsonrpc_session *);
/* Last connection error (positive errno, EOF, or 0). */
int jsonrpc_session_get_last_error(const struct jsonrpc_session *);

#endif /* jsonrpc.h */
