/* ctl: see ctl.h. */

#include <config.h>
#include "ctl.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "jsonrpc.h"
#include "poll-loop.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(ctl);

/* Connections accepted per ctl_server_run(). */
#define MAX_ACCEPTS_PER_RUN 16

/* Requests handled per connection per ctl_server_run(). */
#define MAX_REQUESTS_PER_RUN 16

/* A connection stops reading requests while more than this many reply
 * bytes are queued for it (a client that does not read its replies cannot
 * make the daemon buffer without limit). */
#define MAX_CONN_BACKLOG CTL_MAX_MSG

struct ctl_command {
    char *name;
    char *usage;
    int min_args, max_args;
    ctl_cb_func *cb;
    void *aux;
};

static struct ctl_command *commands;
static size_t n_commands, allocated_commands;
static char *version_string;

struct ctl_conn {
    struct ctl_server *server;  /* NULL once orphaned. */
    struct jsonrpc *rpc;        /* NULL once orphaned. */
    json_t *request_id;         /* Outstanding call's id, if 'busy'. */
    bool busy;                  /* A call awaits its reply. */
};

struct ctl_server {
    struct pstream *listener;
    struct ctl_conn *conns[CTL_MAX_CONNS];
    size_t n_conns;
    struct ctl_server_stats stats;
};

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

static void ensure_builtins(void);

/* Command registry. */

static struct ctl_command *
find_command(const char *name)
{
    for (size_t i = 0; i < n_commands; i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}

static void
register_command(const char *name, const char *usage, int min_args,
                 int max_args, ctl_cb_func *cb, void *aux)
{
    struct ctl_command *c = find_command(name);

    if (c) {
        free(c->name);
        free(c->usage);
    } else {
        if (n_commands >= allocated_commands) {
            size_t n = allocated_commands ? allocated_commands * 2 : 16;
            commands = xrealloc(commands, n * sizeof *commands);
            allocated_commands = n;
        }
        c = &commands[n_commands++];
    }
    c->name = xstrdup(name);
    c->usage = xstrdup(usage ? usage : "");
    c->min_args = min_args < 0 ? 0 : min_args;
    c->max_args = max_args < c->min_args ? c->min_args : max_args;
    c->cb = cb;
    c->aux = aux;
}

void
ctl_command_register(const char *name, const char *usage, int min_args,
                     int max_args, ctl_cb_func *cb, void *aux)
{
    ensure_builtins();
    register_command(name, usage, min_args, max_args, cb, aux);
}

void
ctl_command_unregister(const char *name)
{
    struct ctl_command *c = find_command(name);

    if (c) {
        free(c->name);
        free(c->usage);
        *c = commands[--n_commands];
    }
}

void
ctl_set_version(const char *version)
{
    free(version_string);
    version_string = version ? strdup(version) : NULL;
}

/* Replies. */

/* Returns a JSON string for 's', replacing bytes that are not valid UTF-8
 * with '?' so that any C string can be sent. */
static json_t *
string_to_json(const char *s)
{
    json_t *json = json_string(s ? s : "");
    if (json) {
        return json;
    }

    char *copy = strdup(s);
    if (!copy) {
        return json_string("(out of memory)");
    }
    for (char *p = copy; *p; p++) {
        if ((unsigned char) *p >= 0x80) {
            *p = '?';
        }
    }
    json = json_string(copy);
    free(copy);
    return json ? json : json_string("");
}

static void
conn_free(struct ctl_conn *conn)
{
    jsonrpc_close(conn->rpc);
    json_decref(conn->request_id);
    free(conn);
}

/* Sends an error reply for a request that never reached a command. */
static void
send_error(struct ctl_conn *conn, const json_t *id, const char *text)
{
    conn->server->stats.n_errors_replied++;
    jsonrpc_send(conn->rpc, jsonrpc_create_error(string_to_json(text), id));
}

static void
conn_reply(struct ctl_conn *conn, const char *body, bool success)
{
    if (!conn->busy) {
        VLOG_WARN_RL(&rl, "reply to a control connection with no call "
                     "outstanding (ignored)");
        return;
    }

    if (conn->rpc) {
        json_t *json = string_to_json(body);
        json_t *msg = (success
                       ? jsonrpc_create_reply(json, conn->request_id)
                       : jsonrpc_create_error(json, conn->request_id));
        jsonrpc_send(conn->rpc, msg);
        if (!success && conn->server) {
            conn->server->stats.n_errors_replied++;
        }
    }
    json_decref(conn->request_id);
    conn->request_id = NULL;
    conn->busy = false;

    if (!conn->server) {
        /* Orphaned: the client or the server went away meanwhile. */
        conn_free(conn);
    }
}

void
ctl_command_reply(struct ctl_conn *conn, const char *body)
{
    conn_reply(conn, body, true);
}

void
ctl_command_reply_error(struct ctl_conn *conn, const char *body)
{
    conn_reply(conn, body, false);
}

/* Built-in commands. */

static int
compare_commands(const void *a_, const void *b_)
{
    const struct ctl_command *const *a = a_;
    const struct ctl_command *const *b = b_;
    return strcmp((*a)->name, (*b)->name);
}

static void
ctl_list_commands(struct ctl_conn *conn, int argc, const char *argv[],
                  void *aux)
{
    struct ctl_command **sorted = calloc(n_commands + 1, sizeof *sorted);
    char *buf = NULL;
    size_t size = 0;
    FILE *s = open_memstream(&buf, &size);

    if (!sorted || !s) {
        free(sorted);
        if (s) {
            fclose(s);
        }
        free(buf);
        ctl_command_reply_error(conn, "out of memory");
        return;
    }
    for (size_t i = 0; i < n_commands; i++) {
        sorted[i] = &commands[i];
    }
    qsort(sorted, n_commands, sizeof *sorted, compare_commands);

    fputs("The available commands are:\n", s);
    for (size_t i = 0; i < n_commands; i++) {
        fprintf(s, "  %-23s %s\n", sorted[i]->name, sorted[i]->usage);
    }
    fclose(s);
    free(sorted);
    ctl_command_reply(conn, buf);
    free(buf);
}

static void
ctl_version(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    ctl_command_reply(conn, version_string ? version_string : PACKAGE_STRING);
}

static void
ctl_stats(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    struct ctl_server_stats st;
    char *s;

    if (!conn->server) {
        ctl_command_reply_error(conn, "server is gone");
        return;
    }
    ctl_server_get_stats(conn->server, &st);
    if (asprintf(&s,
                 "conns: %u\n"
                 "conns_accepted: %llu\n"
                 "conns_refused: %llu\n"
                 "conns_unauthorized: %llu\n"
                 "requests: %llu\n"
                 "bad_json: %llu\n"
                 "oversized: %llu\n"
                 "bad_requests: %llu\n"
                 "unknown_commands: %llu\n"
                 "bad_arg_counts: %llu\n"
                 "errors_replied: %llu\n",
                 st.n_conns,
                 (unsigned long long int) st.n_conns_accepted,
                 (unsigned long long int) st.n_conns_refused,
                 (unsigned long long int) st.n_conns_unauthorized,
                 (unsigned long long int) st.n_requests,
                 (unsigned long long int) st.n_bad_json,
                 (unsigned long long int) st.n_oversized,
                 (unsigned long long int) st.n_bad_requests,
                 (unsigned long long int) st.n_unknown_commands,
                 (unsigned long long int) st.n_bad_arg_counts,
                 (unsigned long long int) st.n_errors_replied) < 0) {
        ctl_command_reply_error(conn, "out of memory");
        return;
    }
    ctl_command_reply(conn, s);
    free(s);
}

static void
ensure_builtins(void)
{
    static bool done;

    if (!done) {
        done = true;
        register_command("list-commands", "", 0, 0, ctl_list_commands, NULL);
        register_command("version", "", 0, 0, ctl_version, NULL);
        register_command("ctl/stats", "", 0, 0, ctl_stats, NULL);
    }
}

/* Server. */

struct ctl_server *
ctl_server_create(const char *path)
{
    if (!path || !*path) {
        VLOG_ERR("no path for the control socket");
        errno = EINVAL;
        return NULL;
    }
    ensure_builtins();

    char *name;
    if (!strncmp(path, "punix:", 6)) {
        name = strdup(path);
    } else if (asprintf(&name, "punix:%s", path) < 0) {
        name = NULL;
    }
    if (!name) {
        VLOG_ERR("%s: out of memory", path);
        errno = ENOMEM;
        return NULL;
    }

    struct pstream *listener;
    int error = pstream_open(name, &listener);
    if (error) {
        VLOG_ERR("%s: could not listen for control connections (%s)",
                 name, strerror(error));
        free(name);
        errno = error;
        return NULL;
    }
    free(name);

    struct ctl_server *server = calloc(1, sizeof *server);
    if (!server) {
        VLOG_ERR("%s: out of memory", path);
        pstream_close(listener);
        errno = ENOMEM;
        return NULL;
    }
    server->listener = listener;
    return server;
}

const char *
ctl_server_get_name(const struct ctl_server *server)
{
    return pstream_get_name(server->listener);
}

void
ctl_server_get_stats(const struct ctl_server *server,
                     struct ctl_server_stats *stats)
{
    *stats = server->stats;
    stats->n_conns = server->n_conns;
}

/* Handles one received message 'msg' (borrowed) on 'conn'. */
static void
process_request(struct ctl_conn *conn, const json_t *msg)
{
    struct ctl_server_stats *stats = &conn->server->stats;
    const char *why;
    enum jsonrpc_msg_type type = jsonrpc_msg_classify(msg, &why);
    const json_t *id = jsonrpc_msg_id(msg);
    char *text = NULL;

    if (type != JSONRPC_REQUEST) {
        stats->n_bad_requests++;
        VLOG_WARN_RL(&rl, "%s: bad control request (%s)",
                     jsonrpc_get_name(conn->rpc),
                     type == JSONRPC_INVALID ? why : "not a request");
        if (asprintf(&text, "bad request: %s",
                     type == JSONRPC_INVALID ? why : "not a request") < 0) {
            text = NULL;
        }
        send_error(conn, id, text ? text : "bad request");
        free(text);
        return;
    }

    const char *method = jsonrpc_msg_method(msg);
    const json_t *params = jsonrpc_msg_params(msg);
    size_t n_params = json_array_size(params);
    if (n_params > CTL_MAX_ARGS) {
        stats->n_bad_requests++;
        send_error(conn, id, "bad request: too many arguments");
        return;
    }
    for (size_t i = 0; i < n_params; i++) {
        if (!json_is_string(json_array_get(params, i))) {
            stats->n_bad_requests++;
            VLOG_WARN_RL(&rl, "%s: control request argument is not a "
                         "string", jsonrpc_get_name(conn->rpc));
            send_error(conn, id, "bad request: arguments must be strings");
            return;
        }
    }

    const struct ctl_command *c = find_command(method);
    if (!c) {
        stats->n_unknown_commands++;
        VLOG_DBG("%s: unknown command \"%s\"", jsonrpc_get_name(conn->rpc),
                 method);
        if (asprintf(&text, "\"%s\" is not a valid command (use "
                     "\"list-commands\" to see a list of valid commands)",
                     method) < 0) {
            text = NULL;
        }
        send_error(conn, id, text ? text : "unknown command");
        free(text);
        return;
    }
    if (n_params < (size_t) c->min_args || n_params > (size_t) c->max_args) {
        stats->n_bad_arg_counts++;
        int r;
        if (c->min_args == c->max_args) {
            r = asprintf(&text, "\"%s\" command takes %d argument%s",
                         method, c->min_args, c->min_args == 1 ? "" : "s");
        } else if (n_params < (size_t) c->min_args) {
            r = asprintf(&text, "\"%s\" command requires at least %d "
                         "argument%s", method, c->min_args,
                         c->min_args == 1 ? "" : "s");
        } else {
            r = asprintf(&text, "\"%s\" command takes at most %d "
                         "argument%s", method, c->max_args,
                         c->max_args == 1 ? "" : "s");
        }
        if (r < 0) {
            text = NULL;
        }
        send_error(conn, id, text ? text : "wrong number of arguments");
        free(text);
        return;
    }

    const char **argv = calloc(n_params + 2, sizeof *argv);
    if (!argv) {
        send_error(conn, id, "out of memory");
        return;
    }
    argv[0] = method;
    for (size_t i = 0; i < n_params; i++) {
        argv[i + 1] = json_string_value(json_array_get(params, i));
    }

    /* Copy what we need: the callback may (un)register commands. */
    ctl_cb_func *cb = c->cb;
    void *aux = c->aux;

    stats->n_requests++;
    conn->busy = true;
    conn->request_id = json_incref((json_t *) id);
    cb(conn, n_params + 1, argv, aux);
    free(argv);
}

/* Returns 'conn''s status for run_conn(): a client that closed its side
 * after its requests (EOF) is kept until its answers are out. */
static int
conn_status(const struct ctl_conn *conn)
{
    int status = jsonrpc_get_status(conn->rpc);
    if (status == EOF && (conn->busy || jsonrpc_get_backlog(conn->rpc))) {
        return 0;
    }
    return status;
}

/* Runs 'conn'.  Returns 0 to keep it, otherwise the connection's error
 * (EOF included) and the caller drops it. */
static int
run_conn(struct ctl_conn *conn)
{
    struct ctl_server_stats *stats = &conn->server->stats;

    jsonrpc_run(conn->rpc);
    for (int i = 0; i < MAX_REQUESTS_PER_RUN; i++) {
        if (conn->busy || jsonrpc_get_backlog(conn->rpc) > MAX_CONN_BACKLOG) {
            break;
        }

        json_t *msg;
        int error = jsonrpc_recv(conn->rpc, &msg);
        if (error == EAGAIN || error == EOF) {
            break;
        } else if (error) {
            if (error == EMSGSIZE) {
                stats->n_oversized++;
            } else if (error == EPROTO) {
                stats->n_bad_json++;
            }
            return error;
        }
        process_request(conn, msg);
        json_decref(msg);
        /* The callback may have replied already: flush. */
        jsonrpc_run(conn->rpc);
    }
    return conn_status(conn);
}

/* Removes 'server->conns[i]' from 'server', closing its connection, and
 * frees it unless a call on it is outstanding (then it is orphaned and the
 * eventual reply frees it). */
static void
drop_conn(struct ctl_server *server, size_t i)
{
    struct ctl_conn *conn = server->conns[i];

    server->conns[i] = server->conns[--server->n_conns];
    jsonrpc_close(conn->rpc);
    conn->rpc = NULL;
    conn->server = NULL;
    if (!conn->busy) {
        conn_free(conn);
    }
}

/* Only root and the daemon's own user may use the control socket.  File
 * sockets are usually protected by their permissions too, but abstract
 * sockets have no permissions at all. */
static bool
peer_is_authorized(const struct stream *stream)
{
    struct ucred cred;
    socklen_t len = sizeof cred;

    if (getsockopt(stream_get_fd(stream), SOL_SOCKET, SO_PEERCRED, &cred,
                   &len) || len != sizeof cred) {
        return false;
    }
    return cred.uid == 0 || cred.uid == geteuid();
}

void
ctl_server_run(struct ctl_server *server)
{
    for (int i = 0; i < MAX_ACCEPTS_PER_RUN; i++) {
        struct stream *stream;
        int error = pstream_accept(server->listener, &stream);
        if (error) {
            if (error != EAGAIN) {
                VLOG_WARN_RL(&rl, "%s: accept failed (%s)",
                             pstream_get_name(server->listener),
                             strerror(error));
            }
            break;
        }
        if (!peer_is_authorized(stream)) {
            server->stats.n_conns_unauthorized++;
            VLOG_WARN_RL(&rl, "%s: refusing control connection from "
                         "another user", pstream_get_name(server->listener));
            stream_close(stream);
            continue;
        }
        if (server->n_conns >= CTL_MAX_CONNS) {
            server->stats.n_conns_refused++;
            VLOG_WARN_RL(&rl, "%s: too many control connections (%d), "
                         "refusing a new one",
                         pstream_get_name(server->listener), CTL_MAX_CONNS);
            stream_close(stream);
            continue;
        }

        struct ctl_conn *conn = calloc(1, sizeof *conn);
        if (!conn) {
            stream_close(stream);
            continue;
        }
        conn->server = server;
        conn->rpc = jsonrpc_open(stream);
        jsonrpc_set_max_msg(conn->rpc, CTL_MAX_MSG);
        server->conns[server->n_conns++] = conn;
        server->stats.n_conns_accepted++;
    }

    for (size_t i = 0; i < server->n_conns; ) {
        int error = run_conn(server->conns[i]);
        if (error) {
            if (error != EOF) {
                VLOG_WARN_RL(&rl, "%s: dropping control connection (%s)",
                             jsonrpc_get_name(server->conns[i]->rpc),
                             strerror(error));
            }
            drop_conn(server, i);
        } else {
            i++;
        }
    }
}

void
ctl_server_wait(struct ctl_server *server)
{
    pstream_wait(server->listener);
    for (size_t i = 0; i < server->n_conns; i++) {
        struct ctl_conn *conn = server->conns[i];

        jsonrpc_wait(conn->rpc);
        if (!conn->busy && !jsonrpc_get_status(conn->rpc)
            && jsonrpc_get_backlog(conn->rpc) <= MAX_CONN_BACKLOG) {
            jsonrpc_recv_wait(conn->rpc);
        }
    }
}

void
ctl_server_destroy(struct ctl_server *server)
{
    if (server) {
        while (server->n_conns > 0) {
            drop_conn(server, server->n_conns - 1);
        }
        pstream_close(server->listener);
        free(server);
    }
}

/* Client. */

/* Makes the request for 'command' with the 'argc' strings in 'argv'
 * (borrowed) as params, storing its id in '*idp' if 'idp' is nonnull.
 * Returns NULL for a bad argument. */
static json_t *
client_request(const char *command, int argc, char *argv[], json_t **idp)
{
    if (!command || argc < 0) {
        return NULL;
    }
    json_t *params = json_array();
    for (int i = 0; i < argc; i++) {
        json_t *arg = argv[i] ? json_string(argv[i]) : NULL;
        if (!arg) {
            json_decref(params);
            return NULL;
        }
        json_array_append_new(params, arg);
    }
    return jsonrpc_create_request(command, params, idp);
}

/* Opens a stream to the control socket at 'path' ("unix:", "punix:" or no
 * prefix), connecting in the background unless 'block'.  Returns 0 or an
 * errno. */
static int
client_open(const char *path, bool block, struct stream **streamp)
{
    char *name;

    *streamp = NULL;
    if (!path || !*path) {
        return EINVAL;
    }
    if (!strncmp(path, "unix:", 5)) {
        name = strdup(path);
    } else if (asprintf(&name, "unix:%s",
                        (!strncmp(path, "punix:", 6) ? path + 6 : path)) < 0) {
        name = NULL;
    }
    if (!name) {
        return ENOMEM;
    }
    int error = (block ? stream_open_block : stream_open)(name, streamp);
    free(name);
    return error;
}

/* Reads 'reply' (borrowed) as ctl_client_transact() says. */
static int
client_reply(const json_t *reply, char **resultp, char **errorp)
{
    switch (jsonrpc_msg_type(reply)) {
    case JSONRPC_REPLY: {
        const char *s = json_string_value(jsonrpc_msg_result(reply));
        if (!s) {
            return EPROTO;
        }
        *resultp = strdup(s);
        return *resultp ? 0 : ENOMEM;
    }

    case JSONRPC_ERROR: {
        json_t *e = jsonrpc_msg_error(reply);
        if (json_is_string(e)) {
            *errorp = strdup(json_string_value(e));
        } else {
            *errorp = json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT);
        }
        return *errorp ? 0 : ENOMEM;
    }

    case JSONRPC_INVALID:
    case JSONRPC_REQUEST:
    case JSONRPC_NOTIFY:
    default:
        return EPROTO;
    }
}

int
ctl_client_transact(const char *path, const char *command, int argc,
                    char *argv[], char **resultp, char **errorp)
{
    *resultp = NULL;
    *errorp = NULL;
    if (!path || !*path) {
        return EINVAL;
    }
    json_t *request = client_request(command, argc, argv, NULL);
    if (!request) {
        return EINVAL;
    }

    struct stream *stream;
    int error = client_open(path, true, &stream);
    if (error) {
        json_decref(request);
        return error;
    }

    struct jsonrpc *rpc = jsonrpc_open(stream);
    json_t *reply;
    error = jsonrpc_transact_block(rpc, request, &reply);
    jsonrpc_close(rpc);
    if (error) {
        return error == EOF ? ECONNRESET : error;
    }
    error = client_reply(reply, resultp, errorp);
    json_decref(reply);
    return error;
}

/* A call in progress: the request sent (or queued) on 'rpc', waiting for
 * the reply whose id is 'id'. */
struct ctl_call {
    struct jsonrpc *rpc;        /* NULL once the call ended. */
    json_t *id;
    long long deadline;
    int error;                  /* Once ended: 0 or an errno. */
    char *result, *err_text;    /* Once ended with 0: exactly one set. */
};

/* Ends 'call' with 'error', closing its connection. */
static void
call_end(struct ctl_call *call, int error)
{
    jsonrpc_close(call->rpc);
    call->rpc = NULL;
    call->error = error;
}

struct ctl_call *
ctl_call_start(const char *path, const char *command, int argc,
               char *argv[], long long deadline)
{
    struct ctl_call *call = xzalloc(sizeof *call);
    struct stream *stream;

    call->deadline = deadline;
    json_t *request = client_request(command, argc, argv, &call->id);
    if (!request) {
        call->error = EINVAL;
        return call;
    }
    call->error = client_open(path, false, &stream);
    if (call->error) {
        json_decref(request);
        return call;
    }
    call->rpc = jsonrpc_open(stream);
    int error = jsonrpc_send(call->rpc, request);
    if (error && error != EAGAIN) {
        call_end(call, error == EOF ? ECONNRESET : error);
    }
    return call;
}

int
ctl_call_run(struct ctl_call *call, char **resultp, char **errorp)
{
    *resultp = *errorp = NULL;
    while (call->rpc) {
        json_t *msg;

        jsonrpc_run(call->rpc);
        int error = jsonrpc_recv(call->rpc, &msg);
        if (error == EAGAIN) {
            if (time_msec() >= call->deadline) {
                call_end(call, ETIMEDOUT);
            }
            break;
        } else if (error) {
            call_end(call, error == EOF ? ECONNRESET : error);
        } else if (jsonrpc_id_equal(jsonrpc_msg_id(msg), call->id)) {
            call_end(call, client_reply(msg, &call->result, &call->err_text));
        }
        json_decref(msg);     /* Anything else (a notification) is not ours. */
    }
    if (call->rpc) {
        return EAGAIN;
    }
    *resultp = call->result;
    *errorp = call->err_text;
    call->result = call->err_text = NULL;
    return call->error;
}

void
ctl_call_wait(const struct ctl_call *call)
{
    if (call->rpc) {
        jsonrpc_wait(call->rpc);
        jsonrpc_recv_wait(call->rpc);
        poll_timer_wait_until(call->deadline);
    } else {
        poll_immediate_wake();
    }
}

void
ctl_call_destroy(struct ctl_call *call)
{
    if (call) {
        jsonrpc_close(call->rpc);
        json_decref(call->id);
        free(call->result);
        free(call->err_text);
        free(call);
    }
}
