/*
 * fuzz-api: the local request sockets, which read bytes from any local
 * process that can connect: the daemons' control socket (lib/ctl, served by
 * chand-host and chand-guest, driven by chanctl) and, through the same
 * lib/jsonrpc framing and message classification, chand-guest's local API
 * for guest applications.
 *
 * The request handling of lib/ctl is not exposed as a pure function, so
 * this target drives the real thing: one ctl_server listening on an
 * abstract socket in this process, with a few test commands registered
 * next to the built-in ones (one of which answers later, from the loop, to
 * cover replies to connections that have meanwhile gone away).  For each
 * input it connects, sends the input as the request byte stream (in pieces
 * of a size taken from the first byte, with the server running in between,
 * so that the framing scanner resumes mid-message), half-closes, and runs
 * the server until it has dropped the connection and every deferred call
 * has been answered.  The same bytes are also parsed as one JSON value and
 * classified with jsonrpc_msg_classify(), as both servers do.
 *
 * Input layout:
 *
 *     byte 0    piece size: 0 sends everything at once, N sends N bytes
 *               at a time
 *     then      the byte stream a client sends
 *
 * Invariants checked besides memory safety: the server answers only with
 * JSON-RPC replies or errors whose result or error is a string; it never
 * wedges (it finishes within a bounded number of loop iterations); its
 * connection count returns to zero.
 */
#include <config.h>
#include "fuzz.h"

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"
#include "jsonrpc.h"
#include "stream.h"
#include "vlog.h"

/* Loop iterations allowed per input before the server counts as wedged.
 * One iteration handles at least one message, and an input of N bytes
 * holds at most N / 2 messages ("{}"). */
#define MAX_ITERATIONS(SIZE) (1000 + 4 * (SIZE))

static struct ctl_server *server;
static char server_name[64];

/* Calls of "fuzz/defer" waiting for their answer. */
#define MAX_DEFERRED 1024
static struct ctl_conn *deferred[MAX_DEFERRED];
static bool deferred_error[MAX_DEFERRED];
static size_t n_deferred;

static void
discard_log(const char *line, void *aux)
{
}

static void
cmd_echo(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    size_t len = 0;
    for (int i = 1; i < argc; i++) {
        len += strlen(argv[i]) + 1;
    }
    char *s = fuzz_strdup("", 0);
    s = realloc(s, len + 1);
    FUZZ_CHECK(s);
    for (int i = 1; i < argc; i++) {
        strcat(s, argv[i]);
        strcat(s, i + 1 < argc ? " " : "");
    }
    ctl_command_reply(conn, s);
    free(s);
}

static void
cmd_fail(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    ctl_command_reply_error(conn, argc > 1 ? argv[1] : NULL);
}

static void
cmd_defer(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    if (n_deferred >= MAX_DEFERRED) {
        ctl_command_reply_error(conn, "too many deferred calls");
        return;
    }
    deferred_error[n_deferred] = argc > 1;
    deferred[n_deferred++] = conn;
}

static void
answer_deferred(void)
{
    for (size_t i = 0; i < n_deferred; i++) {
        if (deferred_error[i]) {
            ctl_command_reply_error(deferred[i], "deferred error");
        } else {
            ctl_command_reply(deferred[i], "deferred");
        }
    }
    n_deferred = 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vlog_set_hook(discard_log, NULL);

    ctl_command_register("fuzz/echo", "[ARG...]", 0, INT_MAX, cmd_echo,
                         NULL);
    ctl_command_register("fuzz/fail", "MSG [X]", 1, 2, cmd_fail, NULL);
    ctl_command_register("fuzz/defer", "[ERROR]", 0, 1, cmd_defer, NULL);

    snprintf(server_name, sizeof server_name, "@chand-fuzz-api-%ld",
             (long) getpid());
    int error = ctl_server_create(server_name, &server);
    if (error) {
        fprintf(stderr, "ctl_server_create(%s): %s\n", server_name,
                strerror(error));
        abort();
    }
    return 0;
}

/* Checks one message the server sent. */
static void
check_reply(const json_t *msg)
{
    enum jsonrpc_msg_type type = jsonrpc_msg_type(msg);
    if (type == JSONRPC_REPLY) {
        FUZZ_CHECK(json_is_string(jsonrpc_msg_result(msg)));
    } else {
        FUZZ_CHECK(type == JSONRPC_ERROR);
        FUZZ_CHECK(json_is_string(jsonrpc_msg_error(msg)));
    }
}

/* Reads whatever the server has sent so far.  Returns false once the
 * server has closed the connection. */
static bool
drain_client(struct jsonrpc *client)
{
    for (;;) {
        json_t *msg;
        int error = jsonrpc_recv(client, &msg);
        if (error == EAGAIN) {
            return true;
        } else if (error) {
            /* EOF, or ECONNRESET if the server closed with our bytes
             * unread.  Anything else means it sent bad JSON. */
            FUZZ_CHECK(error == EOF || error == ECONNRESET
                       || error == EPIPE);
            return false;
        }
        check_reply(msg);
        json_decref(msg);
    }
}

static void
fuzz_server(const uint8_t *data, size_t size, size_t piece)
{
    struct ctl_server_stats stats;
    struct stream *stream;
    char name[80];

    snprintf(name, sizeof name, "unix:%s", server_name);
    FUZZ_CHECK(!stream_open(name, &stream));
    int fd = stream_get_fd(stream);
    struct jsonrpc *client = jsonrpc_open(stream);

    ctl_server_get_stats(server, &stats);
    uint64_t accepted = stats.n_conns_accepted;

    size_t ofs = 0;
    bool shut = false, open = true;
    long int limit = MAX_ITERATIONS(size);
    for (long int i = 0; ; i++) {
        if (i > limit) {
            fprintf(stderr, "ctl server still busy after %ld iterations\n",
                    i);
            FUZZ_CHECK(i <= limit);
        }

        /* Send the next piece, as far as the socket takes it. */
        if (ofs < size) {
            size_t n = piece && piece < size - ofs ? piece : size - ofs;
            ssize_t sent = stream_send(stream, data + ofs, n);
            if (sent > 0) {
                ofs += sent;
            } else if (sent != -EAGAIN) {
                /* The server closed the connection early. */
                ofs = size;
            }
        }
        if (ofs >= size && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }

        ctl_server_run(server);
        answer_deferred();
        if (open) {
            open = drain_client(client);
        }

        ctl_server_get_stats(server, &stats);
        if (shut && !open && !stats.n_conns && !n_deferred
            && stats.n_conns_accepted > accepted) {
            break;
        }
    }
    jsonrpc_close(client);
}

/* The pure part: the bytes as one JSON value, classified. */
static void
fuzz_classify(const uint8_t *data, size_t size)
{
    json_error_t jerror;
    json_t *msg = json_loadb((const char *) data, size,
                             JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
                             &jerror);
    if (!msg) {
        return;
    }

    const char *why = NULL;
    enum jsonrpc_msg_type type = jsonrpc_msg_classify(msg, &why);
    FUZZ_CHECK(type == jsonrpc_msg_type(msg));
    FUZZ_CHECK(jsonrpc_msg_type_name(type) != NULL);
    switch (type) {
    case JSONRPC_REQUEST:
        FUZZ_CHECK(jsonrpc_msg_method(msg));
        FUZZ_CHECK(json_is_array(jsonrpc_msg_params(msg)));
        FUZZ_CHECK(jsonrpc_msg_id(msg)
                   && !json_is_null(jsonrpc_msg_id(msg)));
        break;
    case JSONRPC_NOTIFY:
        FUZZ_CHECK(jsonrpc_msg_method(msg));
        FUZZ_CHECK(json_is_array(jsonrpc_msg_params(msg)));
        break;
    case JSONRPC_REPLY:
        FUZZ_CHECK(jsonrpc_msg_id(msg));
        break;
    case JSONRPC_ERROR:
        FUZZ_CHECK(jsonrpc_msg_error(msg)
                   && !json_is_null(jsonrpc_msg_error(msg)));
        break;
    case JSONRPC_INVALID:
        FUZZ_CHECK(why != NULL);
        break;
    }

    /* Replies built for whatever id came in are valid replies. */
    const json_t *id = jsonrpc_msg_id(msg);
    json_t *reply = jsonrpc_create_reply(json_string("x"), id);
    json_t *error = jsonrpc_create_error(json_string("x"), id);
    if (id && !json_is_null(id)) {
        FUZZ_CHECK(jsonrpc_msg_type(reply) == JSONRPC_REPLY);
        FUZZ_CHECK(jsonrpc_id_equal(jsonrpc_msg_id(reply), id));
    }
    FUZZ_CHECK(jsonrpc_msg_type(error) == JSONRPC_ERROR);
    json_decref(reply);
    json_decref(error);
    json_decref(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    size_t piece = fuzz_u8(&in);

    fuzz_classify(in.data, in.size);
    fuzz_server(in.data, in.size, piece);

    /* "vlog/set" may have changed levels: back to the default. */
    vlog_set_level(NULL, VLL_INFO);
    return 0;
}
