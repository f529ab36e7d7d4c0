/* jsonrpc: see jsonrpc.h. */

#include <config.h>
#include "jsonrpc.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poll-loop.h"
#include "reconnect.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(jsonrpc);

/* Bytes read from the stream per recv call. */
#define RX_CHUNK 65536

/* Messages handled by one jsonrpc_session_recv() call before it returns
 * NULL to let the caller's loop run (echoes are consumed internally). */
#define SESSION_MAX_ECHOES 50

/* Framing scanner: finds where one top-level JSON object ends without
 * parsing it, so that a message arriving in pieces is scanned once (linear
 * time) and only complete messages are handed to jansson. */
enum scan_state {
    SCAN_IDLE,                  /* Between messages (skipping whitespace). */
    SCAN_VALUE,                 /* Inside an object, outside strings. */
    SCAN_STRING,                /* Inside a string. */
    SCAN_ESCAPE                 /* After a backslash inside a string. */
};

struct jsonrpc {
    struct stream *stream;
    char *name;
    int status;                 /* Sticky error: 0, EOF or errno. */
    size_t max_msg;

    /* Input.  Bytes rx[rx_start, rx_end) are unparsed; rx[rx_start,
     * scan_pos) have been scanned as part of the current message. */
    char *rx;
    size_t rx_start, rx_end, rx_alloc;
    size_t scan_pos;
    enum scan_state scan;
    size_t depth;
    unsigned long long int n_rx_bytes;

    /* Output.  Bytes tx[tx_start, tx_end) are queued. */
    char *tx;
    size_t tx_start, tx_end, tx_alloc;
};

/* Message construction. */

static json_t *
params_or_empty(json_t *params)
{
    return params ? params : json_array();
}

json_t *
jsonrpc_create_request(const char *method, json_t *params, json_t **idp)
{
    static json_int_t next_id;
    json_t *id = json_integer(next_id++);

    if (idp) {
        *idp = json_incref(id);
    }
    return json_pack("{s:s, s:o, s:o}", "method", method,
                     "params", params_or_empty(params), "id", id);
}

json_t *
jsonrpc_create_notify(const char *method, json_t *params)
{
    return json_pack("{s:s, s:o, s:n}", "method", method,
                     "params", params_or_empty(params), "id");
}

json_t *
jsonrpc_create_reply(json_t *result, const json_t *id)
{
    return json_pack("{s:o, s:n, s:O}",
                     "result", result ? result : json_null(),
                     "error",
                     "id", id ? id : json_null());
}

json_t *
jsonrpc_create_error(json_t *error, const json_t *id)
{
    return json_pack("{s:n, s:o, s:O}",
                     "result",
                     "error", error ? error : json_string("error"),
                     "id", id ? id : json_null());
}

/* Message classification. */

static bool
is_null_or_absent(const json_t *value)
{
    return !value || json_is_null(value);
}

enum jsonrpc_msg_type
jsonrpc_msg_classify(const json_t *msg, const char **whyp)
{
    const char *why_dummy;
    const char **why = whyp ? whyp : &why_dummy;

    *why = NULL;
    if (!json_is_object(msg)) {
        *why = "message is not a JSON object";
        return JSONRPC_INVALID;
    }

    json_t *method = json_object_get(msg, "method");
    json_t *params = json_object_get(msg, "params");
    json_t *result = json_object_get(msg, "result");
    json_t *error = json_object_get(msg, "error");
    json_t *id = json_object_get(msg, "id");
    size_t n_members = (!!method + !!params + !!result + !!error + !!id);

    if (json_object_size(msg) != n_members) {
        *why = "message has unknown members";
        return JSONRPC_INVALID;
    }

    if (method) {
        if (!json_is_string(method)) {
            *why = "\"method\" is not a string";
            return JSONRPC_INVALID;
        }
        if (!params) {
            *why = "request lacks \"params\"";
            return JSONRPC_INVALID;
        }
        if (!json_is_array(params)) {
            *why = "\"params\" is not an array";
            return JSONRPC_INVALID;
        }
        if (result || error) {
            *why = "request has \"result\" or \"error\"";
            return JSONRPC_INVALID;
        }
        return is_null_or_absent(id) ? JSONRPC_NOTIFY : JSONRPC_REQUEST;
    }

    if (params) {
        *why = "reply has \"params\"";
        return JSONRPC_INVALID;
    }
    if (!id) {
        *why = "reply lacks \"id\"";
        return JSONRPC_INVALID;
    }
    if (!is_null_or_absent(error)) {
        if (!is_null_or_absent(result)) {
            *why = "error reply has non-null \"result\"";
            return JSONRPC_INVALID;
        }
        return JSONRPC_ERROR;
    }
    if (!result) {
        *why = "reply lacks \"result\"";
        return JSONRPC_INVALID;
    }
    if (json_is_null(id)) {
        *why = "reply has null \"id\"";
        return JSONRPC_INVALID;
    }
    return JSONRPC_REPLY;
}

enum jsonrpc_msg_type
jsonrpc_msg_type(const json_t *msg)
{
    return jsonrpc_msg_classify(msg, NULL);
}

const char *
jsonrpc_msg_type_name(enum jsonrpc_msg_type type)
{
    switch (type) {
    case JSONRPC_REQUEST:
        return "request";
    case JSONRPC_NOTIFY:
        return "notify";
    case JSONRPC_REPLY:
        return "reply";
    case JSONRPC_ERROR:
        return "error";
    case JSONRPC_INVALID:
        return "invalid";
    }
    return "invalid";
}

static json_t *
get_member(const json_t *msg, const char *name)
{
    return json_is_object(msg) ? json_object_get(msg, name) : NULL;
}

const char *
jsonrpc_msg_method(const json_t *msg)
{
    return json_string_value(get_member(msg, "method"));
}

json_t *
jsonrpc_msg_params(const json_t *msg)
{
    return get_member(msg, "params");
}

json_t *
jsonrpc_msg_id(const json_t *msg)
{
    return get_member(msg, "id");
}

json_t *
jsonrpc_msg_result(const json_t *msg)
{
    return get_member(msg, "result");
}

json_t *
jsonrpc_msg_error(const json_t *msg)
{
    return get_member(msg, "error");
}

bool
jsonrpc_id_equal(const json_t *a, const json_t *b)
{
    return a && b && json_equal((json_t *) a, (json_t *) b);
}

/* Connections. */

struct jsonrpc *
jsonrpc_open(struct stream *stream)
{
    struct jsonrpc *rpc = xzalloc(sizeof *rpc);

    rpc->name = xstrdup(stream_get_name(stream));
    rpc->stream = stream;
    rpc->max_msg = JSONRPC_MAX_MSG;
    rpc->scan = SCAN_IDLE;
    return rpc;
}

void
jsonrpc_close(struct jsonrpc *rpc)
{
    if (rpc) {
        stream_close(rpc->stream);
        free(rpc->rx);
        free(rpc->tx);
        free(rpc->name);
        free(rpc);
    }
}

void
jsonrpc_set_max_msg(struct jsonrpc *rpc, size_t max_msg)
{
    rpc->max_msg = (max_msg && max_msg < JSONRPC_MAX_MSG
                    ? max_msg : JSONRPC_MAX_MSG);
}

/* Records 'error' as the connection's status.  EOF (the peer closed its
 * side for writing) keeps the output queue, so that a server still sends
 * what it owes to a client that half-closed after its requests; any other
 * error discards it. */
static void
jsonrpc_error(struct jsonrpc *rpc, int error)
{
    if (error == EOF) {
        if (!rpc->status) {
            rpc->status = EOF;
        }
    } else if (!rpc->status || rpc->status == EOF) {
        rpc->status = error;
        rpc->tx_start = rpc->tx_end = 0;
    }
}

void
jsonrpc_run(struct jsonrpc *rpc)
{
    if (rpc->status && rpc->status != EOF) {
        return;
    }
    stream_run(rpc->stream);
    while (rpc->tx_start < rpc->tx_end) {
        ssize_t n = stream_send(rpc->stream, rpc->tx + rpc->tx_start,
                                rpc->tx_end - rpc->tx_start);
        if (n > 0) {
            rpc->tx_start += n;
        } else if (n == -EAGAIN || n == 0) {
            break;
        } else {
            VLOG_DBG("%s: send error (%s)", rpc->name, strerror(-n));
            jsonrpc_error(rpc, -n);
            return;
        }
    }
    if (rpc->tx_start == rpc->tx_end) {
        rpc->tx_start = rpc->tx_end = 0;
        if (rpc->tx_alloc > 4 * RX_CHUNK) {
            free(rpc->tx);
            rpc->tx = NULL;
            rpc->tx_alloc = 0;
        }
    }
}

void
jsonrpc_wait(struct jsonrpc *rpc)
{
    if (!rpc->status || rpc->status == EOF) {
        stream_run_wait(rpc->stream);
        if (rpc->tx_start < rpc->tx_end) {
            stream_send_wait(rpc->stream);
        }
    }
}

void
jsonrpc_recv_wait(struct jsonrpc *rpc)
{
    if (rpc->status || rpc->scan_pos < rpc->rx_end) {
        poll_immediate_wake();
    } else {
        stream_recv_wait(rpc->stream);
    }
}

size_t
jsonrpc_get_backlog(const struct jsonrpc *rpc)
{
    return rpc->tx_end - rpc->tx_start;
}

unsigned long long int
jsonrpc_get_received_bytes(const struct jsonrpc *rpc)
{
    return rpc->n_rx_bytes;
}

int
jsonrpc_get_status(const struct jsonrpc *rpc)
{
    return rpc->status;
}

const char *
jsonrpc_get_name(const struct jsonrpc *rpc)
{
    return rpc->name;
}

static int
append_output(struct jsonrpc *rpc, const char *s, size_t n)
{
    size_t backlog = rpc->tx_end - rpc->tx_start;

    if (n > JSONRPC_MAX_BACKLOG - backlog) {
        return ENOBUFS;
    }
    if (rpc->tx_start > 0 && rpc->tx_end + n > rpc->tx_alloc) {
        memmove(rpc->tx, rpc->tx + rpc->tx_start, backlog);
        rpc->tx_start = 0;
        rpc->tx_end = backlog;
    }
    if (rpc->tx_end + n > rpc->tx_alloc) {
        size_t alloc = rpc->tx_alloc ? rpc->tx_alloc : 4096;
        while (alloc < rpc->tx_end + n) {
            alloc *= 2;
        }
        char *tx = realloc(rpc->tx, alloc);
        if (!tx) {
            return ENOMEM;
        }
        rpc->tx = tx;
        rpc->tx_alloc = alloc;
    }
    memcpy(rpc->tx + rpc->tx_end, s, n);
    rpc->tx_end += n;
    return 0;
}

int
jsonrpc_send(struct jsonrpc *rpc, json_t *msg)
{
    int error;

    if (rpc->status && rpc->status != EOF) {
        json_decref(msg);
        return rpc->status;
    }
    if (!json_is_object(msg)) {
        json_decref(msg);
        return EINVAL;
    }

    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!s) {
        return EINVAL;
    }

    size_t n = strlen(s);
    if (n > JSONRPC_MAX_MSG) {
        VLOG_WARN("%s: not sending %zu-byte message (limit %d)",
                  rpc->name, n, JSONRPC_MAX_MSG);
        free(s);
        return EMSGSIZE;
    }
    error = append_output(rpc, s, n);
    free(s);
    if (error) {
        VLOG_WARN("%s: output backlog overflow (%zu bytes queued)",
                  rpc->name, jsonrpc_get_backlog(rpc));
        jsonrpc_error(rpc, error);
        return error;
    }
    jsonrpc_run(rpc);
    return rpc->status == EOF ? 0 : rpc->status;
}

static bool
is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Scans buffered input for the end of the current message.  Returns 0 and
 * sets '*endp' (one past the closing brace) if a complete message is
 * buffered, EAGAIN if more input is needed, or EPROTO/EMSGSIZE. */
static int
scan_input(struct jsonrpc *rpc, size_t *endp)
{
    while (rpc->scan_pos < rpc->rx_end) {
        char c = rpc->rx[rpc->scan_pos];

        switch (rpc->scan) {
        case SCAN_IDLE:
            if (is_json_space(c)) {
                rpc->rx_start = ++rpc->scan_pos;
                continue;
            } else if (c != '{') {
                return EPROTO;
            }
            rpc->scan = SCAN_VALUE;
            rpc->depth = 1;
            break;

        case SCAN_VALUE:
            if (c == '"') {
                rpc->scan = SCAN_STRING;
            } else if (c == '{' || c == '[') {
                rpc->depth++;
            } else if (c == '}' || c == ']') {
                if (!--rpc->depth) {
                    rpc->scan_pos++;
                    rpc->scan = SCAN_IDLE;
                    *endp = rpc->scan_pos;
                    return 0;
                }
            }
            break;

        case SCAN_STRING:
            if (c == '\\') {
                rpc->scan = SCAN_ESCAPE;
            } else if (c == '"') {
                rpc->scan = SCAN_VALUE;
            }
            break;

        case SCAN_ESCAPE:
            rpc->scan = SCAN_STRING;
            break;
        }
        rpc->scan_pos++;
        if (rpc->scan_pos - rpc->rx_start > rpc->max_msg) {
            return EMSGSIZE;
        }
    }
    return EAGAIN;
}

/* Makes room for at least RX_CHUNK more bytes of input.  Returns 0 or
 * ENOMEM. */
static int
reserve_input(struct jsonrpc *rpc)
{
    if (rpc->rx_start == rpc->rx_end) {
        rpc->rx_start = rpc->rx_end = rpc->scan_pos = 0;
        if (rpc->rx_alloc > 4 * RX_CHUNK) {
            /* Don't keep a huge buffer after one huge message. */
            free(rpc->rx);
            rpc->rx = NULL;
            rpc->rx_alloc = 0;
        }
    } else if (rpc->rx_start > 0 && rpc->rx_alloc - rpc->rx_end < RX_CHUNK) {
        size_t n = rpc->rx_end - rpc->rx_start;
        memmove(rpc->rx, rpc->rx + rpc->rx_start, n);
        rpc->scan_pos -= rpc->rx_start;
        rpc->rx_end = n;
        rpc->rx_start = 0;
    }
    if (rpc->rx_alloc - rpc->rx_end < RX_CHUNK) {
        size_t alloc = rpc->rx_alloc ? rpc->rx_alloc : RX_CHUNK;
        while (alloc - rpc->rx_end < RX_CHUNK) {
            alloc *= 2;
        }
        char *rx = realloc(rpc->rx, alloc);
        if (!rx) {
            return ENOMEM;
        }
        rpc->rx = rx;
        rpc->rx_alloc = alloc;
    }
    return 0;
}

/* Parses the complete message in rx[rx_start, end). */
static int
parse_message(struct jsonrpc *rpc, size_t end, json_t **msgp)
{
    json_error_t error;
    size_t len = end - rpc->rx_start;
    json_t *msg = json_loadb(rpc->rx + rpc->rx_start, len,
                             JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
                             &error);

    rpc->rx_start = end;
    if (!msg) {
        VLOG_WARN("%s: JSON parse error at byte %d: %s",
                  rpc->name, error.position, error.text);
        return EPROTO;
    }
    if (!json_is_object(msg) || (size_t) error.position != len) {
        VLOG_WARN("%s: malformed JSON-RPC message framing", rpc->name);
        json_decref(msg);
        return EPROTO;
    }
    *msgp = msg;
    return 0;
}

int
jsonrpc_recv(struct jsonrpc *rpc, json_t **msgp)
{
    *msgp = NULL;
    if (rpc->status) {
        return rpc->status;
    }

    for (;;) {
        size_t end;
        int error = scan_input(rpc, &end);
        if (!error) {
            error = parse_message(rpc, end, msgp);
            if (error) {
                jsonrpc_error(rpc, error);
            }
            return error;
        } else if (error != EAGAIN) {
            VLOG_WARN("%s: %s", rpc->name,
                      (error == EMSGSIZE
                       ? "received message too long"
                       : "received data is not a JSON object"));
            jsonrpc_error(rpc, error);
            return error;
        }

        error = reserve_input(rpc);
        if (error) {
            jsonrpc_error(rpc, error);
            return error;
        }
        ssize_t n = stream_recv(rpc->stream, rpc->rx + rpc->rx_end,
                                rpc->rx_alloc - rpc->rx_end);
        if (n > 0) {
            rpc->rx_end += n;
            rpc->n_rx_bytes += n;
        } else if (n == -EAGAIN) {
            return EAGAIN;
        } else if (n == 0) {
            if (rpc->scan != SCAN_IDLE) {
                VLOG_WARN("%s: unexpected end of stream in the middle of "
                          "a message", rpc->name);
                jsonrpc_error(rpc, EPROTO);
            } else {
                jsonrpc_error(rpc, EOF);
            }
            return rpc->status;
        } else {
            VLOG_DBG("%s: receive error (%s)", rpc->name, strerror(-n));
            jsonrpc_error(rpc, -n);
            return rpc->status;
        }
    }
}

int
jsonrpc_send_block(struct jsonrpc *rpc, json_t *msg)
{
    int error = jsonrpc_send(rpc, msg);
    if (error) {
        return error;
    }
    for (;;) {
        jsonrpc_run(rpc);
        if (rpc->status || !jsonrpc_get_backlog(rpc)) {
            return rpc->status;
        }
        jsonrpc_wait(rpc);
        poll_block();
    }
}

int
jsonrpc_recv_block(struct jsonrpc *rpc, json_t **msgp)
{
    for (;;) {
        int error = jsonrpc_recv(rpc, msgp);
        if (error != EAGAIN) {
            return error;
        }
        jsonrpc_run(rpc);
        jsonrpc_wait(rpc);
        jsonrpc_recv_wait(rpc);
        poll_block();
    }
}

/* Returns true if 'msg' is an "echo" request, and if so answers it. */
static bool
handle_echo_request(struct jsonrpc *rpc, const json_t *msg)
{
    const char *method = jsonrpc_msg_method(msg);

    if (jsonrpc_msg_type(msg) == JSONRPC_REQUEST && !strcmp(method, "echo")) {
        json_t *params = json_incref(jsonrpc_msg_params(msg));
        jsonrpc_send(rpc, jsonrpc_create_reply(params, jsonrpc_msg_id(msg)));
        return true;
    }
    return false;
}

/* Waits for a message other than "echo" and stores it in '*msgp', a new
 * reference the caller owns; see jsonrpc.h. */
int
jsonrpc_recv_block_noecho(struct jsonrpc *rpc, json_t **msgp)
{
    for (;;) {
        int error = jsonrpc_recv_block(rpc, msgp);
        if (error || !handle_echo_request(rpc, *msgp)) {
            return error;
        }
        json_decref(*msgp);
        *msgp = NULL;
    }
}

int
jsonrpc_transact_block(struct jsonrpc *rpc, json_t *request, json_t **replyp)
{
    *replyp = NULL;
    json_t *id = jsonrpc_msg_id(request);
    if (jsonrpc_msg_type(request) != JSONRPC_REQUEST) {
        json_decref(request);
        return EINVAL;
    }
    json_incref(id);

    int error = jsonrpc_send_block(rpc, request);
    while (!error) {
        json_t *msg;
        error = jsonrpc_recv_block_noecho(rpc, &msg);
        if (error) {
            break;
        }
        enum jsonrpc_msg_type type = jsonrpc_msg_type(msg);
        if ((type == JSONRPC_REPLY || type == JSONRPC_ERROR)
            && jsonrpc_id_equal(jsonrpc_msg_id(msg), id)) {
            *replyp = msg;
            break;
        }
        json_decref(msg);
    }
    json_decref(id);
    return error;
}

/* Sessions. */

struct jsonrpc_session {
    char *name;                 /* Current remote: one of 'remotes'. */
    char **remotes;             /* All remotes, tried in turn. */
    size_t n_remotes;
    size_t next_remote;         /* Index of the remote to try next. */
    unsigned int free_tries;    /* Attempts left without backoff. */
    unsigned long long int rx_closed; /* Bytes received on closed
                                       * connections. */
    struct reconnect *reconnect;
    struct stream *stream;      /* Connecting, or NULL. */
    struct jsonrpc *rpc;        /* Connected, or NULL. */
    unsigned int seqno;
    unsigned long long int last_rx_bytes;
    int last_error;
};

static struct vlog_rate_limit session_rl = VLOG_RATE_LIMIT_INIT(10, 10);

/* Makes the next remote in turn the current one. */
static void
session_pick_remote(struct jsonrpc_session *s)
{
    s->name = s->remotes[s->next_remote++ % s->n_remotes];
    reconnect_set_name(s->reconnect, s->name);
}

static struct jsonrpc_session *
session_create_multiple(const char *const *names, size_t n)
{
    struct jsonrpc_session *s = xzalloc(sizeof *s);

    if (!n) {
        static const char *const invalid = "invalid:";
        names = &invalid;
        n = 1;
    }
    s->remotes = xmalloc(n * sizeof *s->remotes);
    for (size_t i = 0; i < n; i++) {
        s->remotes[i] = xstrdup(names[i] ? names[i] : "(null)");
    }
    s->n_remotes = n;
    s->reconnect = reconnect_create(time_msec());
    session_pick_remote(s);
    /* Unix sockets report a dead peer at once; probes are opt-in. */
    reconnect_set_probe_interval(s->reconnect, 0);
    return s;
}

static struct jsonrpc_session *
session_create(const char *name)
{
    return session_create_multiple(&name, 1);
}

struct jsonrpc_session *
jsonrpc_session_open(const char *name, bool retry)
{
    return jsonrpc_session_open_multiple(&name, 1, retry);
}

struct jsonrpc_session *
jsonrpc_session_open_multiple(const char *const *names, size_t n, bool retry)
{
    struct jsonrpc_session *s = session_create_multiple(names, n);

    reconnect_set_retry(s->reconnect, retry);
    reconnect_enable(s->reconnect, time_msec());
    s->free_tries = s->n_remotes;
    return s;
}

/* After a failed attempt or a lost connection the reconnect machine is
 * backing off: with more remotes to try without backoff, cut the wait
 * short and move on to the next one. */
static void
session_next_remote(struct jsonrpc_session *s, long long int now)
{
    session_pick_remote(s);
    if (s->free_tries > 1) {
        s->free_tries--;
        reconnect_force_reconnect(s->reconnect, now);
    }
}

struct jsonrpc_session *
jsonrpc_session_open_unreliably(struct jsonrpc *rpc)
{
    struct jsonrpc_session *s = session_create(jsonrpc_get_name(rpc));
    long long int now = time_msec();

    reconnect_set_retry(s->reconnect, false);
    reconnect_enable(s->reconnect, now);
    reconnect_connecting(s->reconnect, now);
    reconnect_connected(s->reconnect, now);
    s->rpc = rpc;
    s->last_rx_bytes = jsonrpc_get_received_bytes(rpc);
    s->seqno = 1;
    return s;
}

static void
session_disconnect(struct jsonrpc_session *s)
{
    if (s->rpc) {
        s->rx_closed += jsonrpc_get_received_bytes(s->rpc);
        jsonrpc_close(s->rpc);
        s->rpc = NULL;
        s->seqno++;
    } else if (s->stream) {
        stream_close(s->stream);
        s->stream = NULL;
    }
}

void
jsonrpc_session_close(struct jsonrpc_session *s)
{
    if (s) {
        session_disconnect(s);
        reconnect_destroy(s->reconnect);
        for (size_t i = 0; i < s->n_remotes; i++) {
            free(s->remotes[i]);
        }
        free(s->remotes);
        free(s);
    }
}

static void
session_connected(struct jsonrpc_session *s, long long int now)
{
    s->rpc = jsonrpc_open(s->stream);
    s->stream = NULL;
    s->last_rx_bytes = 0;
    s->seqno++;
    s->last_error = 0;
    reconnect_connected(s->reconnect, now);
    VLOG_INFO_RL(&session_rl, "%s: connected", s->name);
}

static void
session_connect_failed(struct jsonrpc_session *s, long long int now,
                       int error)
{
    stream_close(s->stream);
    s->stream = NULL;
    s->last_error = error;
    reconnect_connect_failed(s->reconnect, now, error);
    VLOG_WARN_RL(&session_rl, "%s: connection attempt failed (%s)",
                 s->name, strerror(error));
    session_next_remote(s, now);
}

static void
session_dropped(struct jsonrpc_session *s, long long int now, int error)
{
    s->last_error = error;
    session_disconnect(s);
    reconnect_disconnected(s->reconnect, now, error == EOF ? 0 : error);
    if (error == EOF) {
        VLOG_INFO_RL(&session_rl, "%s: connection closed by peer", s->name);
    } else {
        VLOG_WARN_RL(&session_rl, "%s: connection dropped (%s)",
                     s->name, strerror(error));
    }
    session_next_remote(s, now);
}

static void
session_start_connect(struct jsonrpc_session *s, long long int now)
{
    int error = stream_open(s->name, &s->stream);

    if (error) {
        s->stream = NULL;
        reconnect_connecting(s->reconnect, now);
        session_connect_failed(s, now, error);
        return;
    }
    reconnect_connecting(s->reconnect, now);
    error = stream_connect(s->stream);
    if (!error) {
        session_connected(s, now);
    } else if (error != EAGAIN) {
        session_connect_failed(s, now, error);
    }
}

void
jsonrpc_session_run(struct jsonrpc_session *s)
{
    long long int now = time_msec();

    if (s->stream) {
        stream_run(s->stream);
        int error = stream_connect(s->stream);
        if (!error) {
            session_connected(s, now);
        } else if (error != EAGAIN) {
            session_connect_failed(s, now, error);
        }
    }

    if (s->rpc) {
        jsonrpc_run(s->rpc);
        unsigned long long int rx = jsonrpc_get_received_bytes(s->rpc);
        if (rx != s->last_rx_bytes) {
            s->last_rx_bytes = rx;
            reconnect_activity(s->reconnect, now);
        }
        int error = jsonrpc_get_status(s->rpc);
        if (error) {
            session_dropped(s, now, error);
        }
    }

    switch (reconnect_run(s->reconnect, now)) {
    case RECONNECT_CONNECT:
        session_start_connect(s, now);
        break;

    case RECONNECT_DISCONNECT:
        if (s->rpc) {
            bool timed_out = (reconnect_get_state(s->reconnect)
                              == RECONNECT_S_IDLE);
            VLOG_INFO_RL(&session_rl, "%s: disconnecting (%s)", s->name,
                         timed_out ? "inactivity probe timed out"
                                   : "reconnect requested");
            s->last_error = timed_out ? ETIMEDOUT : 0;
            session_disconnect(s);
            reconnect_disconnected(s->reconnect, now, s->last_error);
            session_next_remote(s, now);
        } else {
            session_connect_failed(s, now, ETIMEDOUT);
        }
        break;

    case RECONNECT_PROBE:
        if (s->rpc) {
            json_t *echo = json_pack("{s:s, s:[], s:s}", "method", "echo",
                                     "params", "id", "echo");
            jsonrpc_send(s->rpc, echo);
        }
        break;

    case RECONNECT_NONE:
    default:
        break;
    }
}

void
jsonrpc_session_wait(struct jsonrpc_session *s)
{
    if (s->rpc) {
        jsonrpc_wait(s->rpc);
    } else if (s->stream) {
        stream_connect_wait(s->stream);
    }
    poll_timer_wait_until(reconnect_wait(s->reconnect, time_msec()));
}

void
jsonrpc_session_recv_wait(struct jsonrpc_session *s)
{
    if (s->rpc) {
        jsonrpc_recv_wait(s->rpc);
    }
}

json_t *
jsonrpc_session_recv(struct jsonrpc_session *s)
{
    for (int i = 0; i < SESSION_MAX_ECHOES && s->rpc; i++) {
        json_t *msg;
        int error = jsonrpc_recv(s->rpc, &msg);

        if (error) {
            if (error != EAGAIN) {
                session_dropped(s, time_msec(), error);
            }
            return NULL;
        }
        reconnect_activity(s->reconnect, time_msec());
        s->last_rx_bytes = jsonrpc_get_received_bytes(s->rpc);

        if (handle_echo_request(s->rpc, msg)) {
            json_decref(msg);
            continue;
        }
        json_t *id = jsonrpc_msg_id(msg);
        if (jsonrpc_msg_type(msg) == JSONRPC_REPLY && json_is_string(id)
            && !strcmp(json_string_value(id), "echo")) {
            json_decref(msg);
            continue;
        }
        return msg;
    }
    if (s->rpc) {
        /* More may be buffered: come back soon. */
        poll_immediate_wake();
    }
    return NULL;
}

int
jsonrpc_session_send(struct jsonrpc_session *s, json_t *msg)
{
    if (!s->rpc) {
        json_decref(msg);
        return ENOTCONN;
    }
    return jsonrpc_send(s->rpc, msg);
}

bool
jsonrpc_session_is_connected(const struct jsonrpc_session *s)
{
    return s->rpc != NULL;
}

bool
jsonrpc_session_is_alive(const struct jsonrpc_session *s)
{
    return s->rpc || s->stream || reconnect_is_enabled(s->reconnect);
}

unsigned int
jsonrpc_session_get_seqno(const struct jsonrpc_session *s)
{
    return s->seqno;
}

void
jsonrpc_session_force_reconnect(struct jsonrpc_session *s)
{
    reconnect_force_reconnect(s->reconnect, time_msec());
}

void
jsonrpc_session_reset_backoff(struct jsonrpc_session *s)
{
    /* The extra try goes to dropping the current connection. */
    s->free_tries = s->n_remotes + (s->rpc != NULL);
}

unsigned long long int
jsonrpc_session_get_received_bytes(const struct jsonrpc_session *s)
{
    return s->rx_closed + (s->rpc ? jsonrpc_get_received_bytes(s->rpc) : 0);
}

size_t
jsonrpc_session_get_n_remotes(const struct jsonrpc_session *s)
{
    return s->n_remotes;
}

void
jsonrpc_session_set_backoff(struct jsonrpc_session *s, int min_backoff,
                            int max_backoff)
{
    reconnect_set_backoff(s->reconnect, min_backoff, max_backoff);
}

void
jsonrpc_session_set_probe_interval(struct jsonrpc_session *s,
                                   int probe_interval)
{
    reconnect_set_probe_interval(s->reconnect, probe_interval);
}

const char *
jsonrpc_session_get_name(const struct jsonrpc_session *s)
{
    return s->name;
}

size_t
jsonrpc_session_get_backlog(const struct jsonrpc_session *s)
{
    return s->rpc ? jsonrpc_get_backlog(s->rpc) : 0;
}

int
jsonrpc_session_get_last_error(const struct jsonrpc_session *s)
{
    return s->last_error;
}
