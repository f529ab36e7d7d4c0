/* metrics-http: GET /metrics over HTTP (see metrics-http.h). */

#include <config.h>
#include "metrics-http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "list.h"
#include "metrics.h"
#include "poll-loop.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(metrics_http);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 10);

/* One client connection: it reads the request head into 'in', then sends
 * 'out' and is closed. */
struct http_conn {
    struct list node;       /* In 'conns'. */
    struct stream *stream;
    char peer[64];              /* "ADDR:PORT", for logs. */
    long long deadline;         /* Closed then if not done. */
    char in[METRICS_HTTP_MAX_REQUEST + 1];
    size_t n_in;
    char *out;                  /* The answer, once there is one. */
    size_t n_out, sent;
    bool draining;              /* Answer sent: reading what is left of
                                 * the request until the client closes,
                                 * so that closing does not reset the
                                 * connection before the client read the
                                 * answer. */
};

/* How long a connection drains after its answer at most. */
#define DRAIN_MS 2000

/* Answers by status code, for the counters. */
enum { CODE_200, CODE_400, CODE_404, CODE_405, CODE_431, N_CODES };
static const int codes[N_CODES] = { 200, 400, 404, 405, 431 };

struct metrics_http {
    struct pstream *listener;
    char *addr;                 /* As given, for logs. */
    metrics_http_render_func *render;
    void *aux;
    struct list conns;
    size_t n_conns;
    uint64_t connections;       /* Accepted. */
    uint64_t responses[N_CODES];
    uint64_t timeouts;
};

/* Splits ADDR:PORT into a pstream name "ptcp:PORT:ADDR" (new string), or
 * returns NULL if malformed. */
static char *
pstream_name(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1]
        || colon[1 + strspn(colon + 1, "0123456789")]
        || strlen(colon + 1) > 5 || atoi(colon + 1) > 65535) {
        return NULL;
    }
    char *host = xmemdup(addr, colon - addr + 1);
    host[colon - addr] = '\0';
    unsigned char bin[sizeof(struct in6_addr)];
    bool ok;
    if (host[0] == '[') {
        size_t len = strlen(host);
        ok = len > 2 && host[len - 1] == ']';
        if (ok) {
            host[len - 1] = '\0';
            ok = inet_pton(AF_INET6, host + 1, bin) == 1;
            host[len - 1] = ']';
        }
    } else {
        ok = inet_pton(AF_INET, host, bin) == 1;
    }
    char *name = ok ? xasprintf("ptcp:%s:%s", colon + 1, host) : NULL;
    free(host);
    return name;
}

bool
metrics_http_verify_addr(const char *addr)
{
    char *name = pstream_name(addr);
    free(name);
    return name != NULL;
}

int
metrics_http_create(const char *addr, metrics_http_render_func *render,
                    void *aux, struct metrics_http **httpp, char **errorp)
{
    *httpp = NULL;
    *errorp = NULL;
    char *name = pstream_name(addr);
    if (!name) {
        *errorp = xasprintf("--metrics=%s: not ADDR:PORT (an IPv4 address "
                            "or a bracketed IPv6 one, and a port)", addr);
        return EINVAL;
    }
    struct pstream *listener;
    int error = pstream_open(name, &listener);
    free(name);
    if (error) {
        *errorp = xasprintf("cannot serve metrics on %s: %s", addr,
                            strerror(error));
        return error;
    }
    struct metrics_http *http = xzalloc(sizeof *http);
    http->listener = listener;
    http->addr = xstrdup(addr);
    http->render = render;
    http->aux = aux;
    list_init(&http->conns);
    *httpp = http;
    return 0;
}

static void
conn_close(struct metrics_http *http, struct http_conn *c)
{
    list_remove(&c->node);
    http->n_conns--;
    stream_close(c->stream);
    free(c->out);
    free(c);
}

void
metrics_http_destroy(struct metrics_http *http)
{
    if (!http) {
        return;
    }
    struct http_conn *c;
    LIST_FOR_EACH_SAFE (c, node, &http->conns) {
        conn_close(http, c);
    }
    pstream_close(http->listener);
    free(http->addr);
    free(http);
}

int
metrics_http_port(const struct metrics_http *http)
{
    return pstream_get_bound_port(http->listener);
}

/* Stores the peer of 'fd' as "ADDR:PORT" in 'buf'. */
static void
get_peer(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (!getpeername(fd, (struct sockaddr *) &ss, &len)) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
            inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
            port = ntohs(sin6->sin6_port);
        }
    }
    snprintf(buf, size, "%s:%d", ip, port);
}

/* Sets 'c''s answer: status 'code' (index in 'codes'), 'body' (copied),
 * with 'extra' headers ("" or lines ending in CRLF).  The caller counts
 * it. */
static void
conn_answer(struct http_conn *c, int code,
            const char *reason, const char *content_type, const char *extra,
            const char *body)
{
    c->out = xasprintf("HTTP/1.1 %d %s\r\n"
                       "Content-Type: %s\r\n"
                       "Content-Length: %zu\r\n"
                       "Connection: close\r\n"
                       "%s\r\n%s",
                       codes[code], reason, content_type, strlen(body),
                       extra, body);
    c->n_out = strlen(c->out);
    c->sent = 0;
}

/* Answers 'c' with error 'code' and logs 'why'. */
static void
conn_error(struct metrics_http *http, struct http_conn *c, int code,
           const char *reason, const char *extra, const char *why)
{
    VLOG_WARN_RL(&rl, "metrics: %s: %d %s: %s", c->peer, codes[code],
                 reason, why);
    http->responses[code]++;
    char *body = xasprintf("%d %s: %s\n", codes[code], reason, why);
    conn_answer(c, code, reason, "text/plain; charset=utf-8", extra,
                body);
    free(body);
}

/* Returns true if the first 'n' bytes of 's' are printable ASCII. */
static bool
is_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Decides what to answer 'c' given its request line 'line' (of 'len'
 * bytes, without the line end). */
static void
conn_handle_line(struct metrics_http *http, struct http_conn *c,
                 const char *line, size_t len)
{
    char method[16], target[256], version[16], more;
    char *copy = xmemdup(line, len + 1);
    copy[len] = '\0';
    int n = (is_printable(line, len)
             ? sscanf(copy, "%15s %255s %15s %c", method, target, version,
                      &more)
             : 0);
    free(copy);
    if (n != 3 || strncmp(version, "HTTP/1.", 7)
        || (target[0] != '/' && strcmp(target, "*"))) {
        conn_error(http, c, CODE_400, "Bad Request", "",
                   "not an HTTP/1.x request line");
    } else if (strcmp(method, "GET")) {
        conn_error(http, c, CODE_405, "Method Not Allowed", "Allow: GET\r\n",
                   "only GET is served");
    } else if (strcmp(target, "/metrics")
               && strncmp(target, "/metrics?", 9)) {
        conn_error(http, c, CODE_404, "Not Found", "",
                   "only /metrics is served");
    } else {
        http->responses[CODE_200]++;     /* The scrape counts itself. */
        char *text = http->render(http->aux);
        conn_answer(c, CODE_200, "OK", METRICS_CONTENT_TYPE, "", text);
        free(text);
    }
}

/* Returns the end of the request head in 'c->in' (just past the empty
 * line), or NULL if it is not all there. */
static const char *
head_end(const struct http_conn *c)
{
    const char *crlf = strstr(c->in, "\r\n\r\n");
    const char *lf = strstr(c->in, "\n\n");
    if (crlf && (!lf || crlf < lf)) {
        return crlf + 4;
    }
    return lf ? lf + 2 : NULL;
}

/* Reads what 'c' sent; answers once the request head is complete (or
 * bad).  Returns false if 'c' should be closed now. */
static bool
conn_read(struct metrics_http *http, struct http_conn *c)
{
    while (!c->out) {
        size_t room = METRICS_HTTP_MAX_REQUEST - c->n_in;
        if (!room) {
            conn_error(http, c, CODE_431,
                       "Request Header Fields Too Large", "",
                       "request head over 8192 bytes");
            break;
        }
        ssize_t n = stream_recv(c->stream, c->in + c->n_in, room);
        if (n == -EAGAIN) {
            return true;
        } else if (n <= 0) {
            return false;       /* Closed or failed before a request. */
        }
        c->n_in += n;
        c->in[c->n_in] = '\0';

        /* The request line so far, without its CR LF (or a CR that may
         * be one). */
        const char *nl = memchr(c->in, '\n', c->n_in);
        size_t line_len = nl ? nl - c->in : c->n_in;
        if (line_len && c->in[line_len - 1] == '\r') {
            line_len--;
        }
        if (memchr(c->in, '\0', c->n_in)
            || !is_printable(c->in, line_len)) {
            conn_error(http, c, CODE_400, "Bad Request", "",
                       "not an HTTP/1.x request line");
        } else if (nl && head_end(c)) {
            conn_handle_line(http, c, c->in, line_len);
        }
    }
    return true;
}

/* Sends what is left of 'c''s answer.  Returns false once it is all sent
 * (then 'c' drains) or the client is gone; 'c->draining' tells which. */
static bool
conn_write(struct http_conn *c, long long now)
{
    stream_run(c->stream);
    while (c->sent < c->n_out) {
        ssize_t n = stream_send(c->stream, c->out + c->sent,
                                c->n_out - c->sent);
        if (n == -EAGAIN) {
            return true;
        } else if (n < 0) {
            return false;
        }
        c->sent += n;
    }
    shutdown(stream_get_fd(c->stream), SHUT_WR);
    c->draining = true;
    c->deadline = now + DRAIN_MS;
    return false;
}

/* Reads and drops what 'c' sends after its answer.  Returns false once the
 * client closed. */
static bool
conn_drain(struct http_conn *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = stream_recv(c->stream, buf, sizeof buf);
        if (n == -EAGAIN) {
            return true;
        } else if (n <= 0) {
            return false;
        }
    }
}

static void
accept_conns(struct metrics_http *http, long long now)
{
    while (http->n_conns < METRICS_HTTP_MAX_CONNS) {
        struct stream *stream;
        int error = pstream_accept(http->listener, &stream);
        if (error) {
            if (error != EAGAIN) {
                VLOG_WARN_RL(&rl, "metrics: accept on %s: %s", http->addr,
                             strerror(error));
            }
            return;
        }
        struct http_conn *c = xzalloc(sizeof *c);
        c->stream = stream;
        c->deadline = now + METRICS_HTTP_TIMEOUT_MS;
        get_peer(stream_get_fd(stream), c->peer, sizeof c->peer);
        list_push_back(&http->conns, &c->node);
        http->n_conns++;
        http->connections++;
    }
}

void
metrics_http_run(struct metrics_http *http)
{
    long long now = time_msec();
    accept_conns(http, now);

    struct http_conn *c;
    LIST_FOR_EACH_SAFE (c, node, &http->conns) {
        bool keep;
        if (c->draining) {
            keep = conn_drain(c) && now < c->deadline;
        } else {
            keep = c->out || conn_read(http, c);
            if (keep && c->out && !conn_write(c, now)) {
                keep = c->draining && conn_drain(c);
            }
        }
        if (keep && !c->draining && now >= c->deadline) {
            http->timeouts++;
            VLOG_WARN_RL(&rl, "metrics: %s: no complete request and answer "
                         "within %d ms, closing", c->peer,
                         METRICS_HTTP_TIMEOUT_MS);
            keep = false;
        }
        if (!keep) {
            conn_close(http, c);
        }
    }
}

void
metrics_http_wait(struct metrics_http *http)
{
    if (http->n_conns < METRICS_HTTP_MAX_CONNS) {
        pstream_wait(http->listener);
    }
    struct http_conn *c;
    LIST_FOR_EACH (c, node, &http->conns) {
        if (c->out && !c->draining) {
            stream_run_wait(c->stream);
            stream_send_wait(c->stream);
        } else {
            stream_recv_wait(c->stream);
        }
        poll_timer_wait_until(c->deadline);
    }
}

json_t *
metrics_http_status_json(const struct metrics_http *http)
{
    json_t *responses = json_object();
    uint64_t bad = 0;
    for (int i = 0; i < N_CODES; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", codes[i]);
        json_object_set_new(responses, code,
                            json_integer(http->responses[i]));
        if (codes[i] >= 400) {
            bad += http->responses[i];
        }
    }
    return json_pack("{sI sI so sI sI}",
                     "connections", (json_int_t) http->connections,
                     "active", (json_int_t) http->n_conns,
                     "responses", responses,
                     "bad_requests", (json_int_t) bad,
                     "timeouts", (json_int_t) http->timeouts);
}
