/* One VM's qemu-ga socket: see endpoint.h. */

#include <config.h>
#include "endpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "commands.h"
#include "list.h"
#include "poll-loop.h"
#include "qga-proto.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(endpoint);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

#define RECV_SIZE 65536
#define MAX_RECVS_PER_RUN 64

struct conn {
    struct list node;           /* In ep->conns. */
    struct endpoint *ep;
    struct stream *stream;
    struct qga_parser *parser;
    bool running;               /* A request is running. */
    struct qga_job *job;        /* Its job, if it did not end at once. */
    json_t *id;                 /* Its "id", or NULL. */
    char *out;                  /* Responses not sent yet. */
    size_t out_len, out_off;
    bool eof;                   /* The client closed its side. */
    uint64_t resets;            /* 0xFF bytes seen so far. */
    int error;                  /* Send or receive failed. */
};

struct endpoint {
    struct qga_vm *vm;
    char *path;
    struct pstream *listener;
    size_t max_request;
    struct list conns;
    struct endpoint_stats stats;
};

struct endpoint *
endpoint_create(struct qga_vm *vm, const char *path, size_t max_request,
                char **errorp)
{
    char *name = xasprintf("punix:%s", path);
    struct pstream *listener;
    int error = pstream_open(name, &listener);

    free(name);
    if (error) {
        *errorp = xasprintf("%s: cannot listen (%s)", path, strerror(error));
        return NULL;
    }

    struct endpoint *ep = xzalloc(sizeof *ep);
    ep->vm = vm;
    ep->path = xstrdup(path);
    ep->listener = listener;
    ep->max_request = max_request;
    list_init(&ep->conns);
    *errorp = NULL;
    VLOG_INFO("%s: serving qemu-ga clients on %s", qga_vm_name(vm), path);
    return ep;
}

static void
conn_close(struct conn *conn)
{
    struct endpoint *ep = conn->ep;

    struct qga_parser_stats ps;

    if (conn->job) {
        ep->stats.cancelled++;
        qga_job_cancel(conn->job);
    }
    /* Keep the closed connection's counts. */
    qga_parser_get_stats(conn->parser, &ps);
    ep->stats.resets += ps.resets;
    ep->stats.oversized += ps.oversized;
    list_remove(&conn->node);
    stream_close(conn->stream);
    qga_parser_destroy(conn->parser);
    json_decref(conn->id);
    free(conn->out);
    free(conn);
}

void
endpoint_destroy(struct endpoint *ep)
{
    if (!ep) {
        return;
    }
    struct conn *conn;
    LIST_FOR_EACH_SAFE (conn, node, &ep->conns) {
        conn_close(conn);
    }
    pstream_close(ep->listener);
    VLOG_INFO("%s: no longer served on %s", qga_vm_name(ep->vm), ep->path);
    free(ep->path);
    free(ep);
}

const char *
endpoint_path(const struct endpoint *ep)
{
    return ep->path;
}

/* Queues 'len' bytes of 'line' (owned) to send. */
static void
queue_output(struct conn *conn, char *line, size_t len)
{
    if (conn->out_off == conn->out_len) {
        free(conn->out);
        conn->out = line;
        conn->out_len = len;
        conn->out_off = 0;
        return;
    }
    conn->out = xrealloc(conn->out, conn->out_len + len);
    memcpy(conn->out + conn->out_len, line, len);
    conn->out_len += len;
    free(line);
}

static void
respond_error(struct conn *conn, const char *class, const char *desc,
              const json_t *id)
{
    size_t len;
    char *line = qga_response_error(class, desc, id, &len);

    queue_output(conn, line, len);
}

/* A request's end (qga_done_cb). */
static void
request_done(void *conn_, const json_t *ret, const char *class,
             const char *desc, bool sentinel)
{
    struct conn *conn = conn_;
    size_t len;
    char *line = (ret
                  ? qga_response_return(ret, conn->id, sentinel, &len)
                  : qga_response_error(class, desc, conn->id, &len));

    queue_output(conn, line, len);
    conn->ep->stats.requests++;
    conn->running = false;
    conn->job = NULL;
    json_decref(conn->id);
    conn->id = NULL;
    poll_immediate_wake();
}

/* Runs request text 'text' of 'len' bytes. */
static void
start_request(struct conn *conn, const char *text, size_t len)
{
    json_t *req, *id;
    char *error = qga_request_parse(text, len, &req, &id);

    if (error) {
        conn->ep->stats.bad_requests++;
        VLOG_WARN_RL(&rl, "%s: %s", conn->ep->path, error);
        respond_error(conn, QGA_E_GENERIC, error, id);
        json_decref(id);
        free(error);
        return;
    }
    conn->id = json_incref(id);
    conn->running = true;
    struct qga_job *job = qga_execute(
        conn->ep->vm, json_string_value(json_object_get(req, "execute")),
        json_object_get(req, "arguments"), request_done, conn);
    if (conn->running) {
        conn->job = job;
    }
    json_decref(req);
}

/* Handles the parser's events until a request runs or input runs out. */
static void
handle_input(struct conn *conn)
{
    struct endpoint *ep = conn->ep;

    while (!conn->running && conn->out_len - conn->out_off
           < ENDPOINT_MAX_OUTPUT) {
        const char *text;
        size_t len;
        enum qga_event ev = qga_parser_next(conn->parser, &text, &len);

        if (ev == QGA_REQUEST) {
            start_request(conn, text, len);
        } else if (ev == QGA_ERROR) {
            struct qga_parser_stats ps;
            qga_parser_get_stats(conn->parser, &ps);
            ep->stats.bad_requests++;
            if (ps.resets != conn->resets) {
                /* 0xFF: every client's handshake begins with one. */
                conn->resets = ps.resets;
                VLOG_DBG("%s: %s", ep->path, text);
            } else {
                VLOG_WARN_RL(&rl, "%s: %s", ep->path, text);
            }
            respond_error(conn, QGA_E_GENERIC, text, NULL);
        } else {
            break;
        }
    }
}

static void
flush_output(struct conn *conn)
{
    while (!conn->error && conn->out_off < conn->out_len) {
        ssize_t n = stream_send(conn->stream, conn->out + conn->out_off,
                                conn->out_len - conn->out_off);
        if (n > 0) {
            conn->out_off += n;
        } else if (n != -EAGAIN) {
            conn->error = n < 0 ? -n : EPIPE;
        } else {
            break;
        }
    }
    if (conn->out_off && conn->out_off == conn->out_len) {
        free(conn->out);
        conn->out = NULL;
        conn->out_len = conn->out_off = 0;
    }
}

/* Reads what the client sent, while no request runs. */
static void
read_input(struct conn *conn)
{
    for (int i = 0; i < MAX_RECVS_PER_RUN && !conn->eof && !conn->error
                    && !conn->running
                    && conn->out_len - conn->out_off < ENDPOINT_MAX_OUTPUT;
         i++) {
        char buf[RECV_SIZE];
        ssize_t n = stream_recv(conn->stream, buf, sizeof buf);
        if (n > 0) {
            qga_parser_feed(conn->parser, buf, n);
            handle_input(conn);
        } else if (n == 0) {
            conn->eof = true;
        } else if (n != -EAGAIN) {
            conn->error = -n;
        } else {
            break;
        }
    }
}

/* Returns false if 'conn' is done with. */
static bool
run_conn(struct conn *conn)
{
    stream_run(conn->stream);
    handle_input(conn);
    flush_output(conn);
    read_input(conn);
    flush_output(conn);
    if (conn->error) {
        VLOG_DBG("%s: connection dropped (%s)", conn->ep->path,
                 strerror(conn->error));
        return false;
    }
    /* A client that closed its side gets the responses to what it sent. */
    return !(conn->eof && !conn->running
             && conn->out_off == conn->out_len);
}

static bool
peer_is_authorized(struct stream *stream)
{
    struct ucred cred;
    socklen_t len = sizeof cred;

    if (getsockopt(stream_get_fd(stream), SOL_SOCKET, SO_PEERCRED, &cred,
                   &len)) {
        return false;
    }
    return cred.uid == 0 || cred.uid == geteuid();
}

static void
accept_conns(struct endpoint *ep)
{
    for (int i = 0; i < ENDPOINT_MAX_CONNS; i++) {
        struct stream *stream;
        int error = pstream_accept(ep->listener, &stream);
        if (error) {
            if (error != EAGAIN) {
                VLOG_WARN_RL(&rl, "%s: accept failed (%s)", ep->path,
                             strerror(error));
            }
            return;
        }
        if (!peer_is_authorized(stream)) {
            ep->stats.conns_refused++;
            VLOG_WARN_RL(&rl, "%s: refusing a client of another user",
                         ep->path);
            stream_close(stream);
            continue;
        }
        if (list_size(&ep->conns) >= ENDPOINT_MAX_CONNS) {
            ep->stats.conns_refused++;
            VLOG_WARN_RL(&rl, "%s: %d clients already, refusing another",
                         ep->path, ENDPOINT_MAX_CONNS);
            stream_close(stream);
            continue;
        }

        struct conn *conn = xzalloc(sizeof *conn);
        conn->ep = ep;
        conn->stream = stream;
        conn->parser = qga_parser_create(ep->max_request);
        list_push_back(&ep->conns, &conn->node);
        ep->stats.conns_accepted++;
    }
}

void
endpoint_run(struct endpoint *ep)
{
    accept_conns(ep);

    struct conn *conn;
    LIST_FOR_EACH_SAFE (conn, node, &ep->conns) {
        if (!run_conn(conn)) {
            conn_close(conn);
        }
    }
}

void
endpoint_wait(struct endpoint *ep)
{
    struct conn *conn;

    pstream_wait(ep->listener);
    LIST_FOR_EACH (conn, node, &ep->conns) {
        stream_run_wait(conn->stream);
        if (conn->out_off < conn->out_len) {
            stream_send_wait(conn->stream);
        }
        if (!conn->running && !conn->eof
            && conn->out_len - conn->out_off < ENDPOINT_MAX_OUTPUT) {
            stream_recv_wait(conn->stream);
        }
    }
}

void
endpoint_get_stats(const struct endpoint *ep, struct endpoint_stats *s)
{
    struct conn *conn;

    *s = ep->stats;
    LIST_FOR_EACH (conn, node, &ep->conns) {
        struct qga_parser_stats ps;
        qga_parser_get_stats(conn->parser, &ps);
        s->resets += ps.resets;
        s->oversized += ps.oversized;
    }
    s->conns = list_size(&ep->conns);
}

json_t *
endpoint_to_json(const struct endpoint *ep)
{
    struct endpoint_stats s;

    endpoint_get_stats(ep, &s);
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "vm", qga_vm_name(ep->vm), "socket", ep->path,
                     "clients", (json_int_t) s.conns,
                     "accepted", (json_int_t) s.conns_accepted,
                     "refused", (json_int_t) s.conns_refused,
                     "requests", (json_int_t) s.requests,
                     "bad_requests", (json_int_t) s.bad_requests,
                     "resets", (json_int_t) s.resets,
                     "oversized", (json_int_t) s.oversized,
                     "cancelled", (json_int_t) s.cancelled);
}
