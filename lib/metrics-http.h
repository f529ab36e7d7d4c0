/*
 * metrics-http: serves a daemon's metrics (metrics.h) over HTTP, for
 * Prometheus to scrape: "GET /metrics" answers 200 with the exposition
 * text; any other path 404, any other method 405, a request that is not
 * HTTP 400, a request head over METRICS_HTTP_MAX_REQUEST bytes 431.  Every
 * answer closes the connection.
 *
 * Nonblocking, in the daemon's poll loop: at most METRICS_HTTP_MAX_CONNS
 * connections at once (further ones wait in the listen backlog), each
 * closed if it has not been answered and its answer sent within
 * METRICS_HTTP_TIMEOUT_MS of being accepted, so slow or silent clients
 * cost a slot for a bounded time and never block the daemon.
 *
 * Bad requests are logged (rate-limited) with the client's address and
 * counted (metrics_http_status_json()).
 */
#ifndef METRICS_HTTP_H
#define METRICS_HTTP_H 1

#include <jansson.h>
#include <stdbool.h>

#define METRICS_HTTP_MAX_REQUEST 8192
#define METRICS_HTTP_MAX_CONNS 64
#define METRICS_HTTP_TIMEOUT_MS 10000

struct metrics_http;

/* Returns the text to serve, a new string owned by the caller. */
typedef char *metrics_http_render_func(void *aux);

/* Returns true if 'addr' is a well-formed ADDR:PORT for
 * metrics_http_create(): an IPv4 address, or an IPv6 one in brackets, and a
 * port 0..65535 (0: the kernel chooses). */
bool metrics_http_verify_addr(const char *addr);

/* Starts listening on 'addr' (ADDR:PORT) for scrapes served with 'render'
 * and 'aux'.  Returns 0 and stores a new server in '*httpp' (the caller
 * destroys it), or a positive errno after storing a message (malloc'd,
 * owned by the caller) in '*errorp' and NULL in '*httpp'. */
int metrics_http_create(const char *addr, metrics_http_render_func *render,
                        void *aux, struct metrics_http **httpp,
                        char **errorp);
void metrics_http_destroy(struct metrics_http *);

/* Accepts, reads, answers and times out connections; never blocks. */
void metrics_http_run(struct metrics_http *);
void metrics_http_wait(struct metrics_http *);

/* The port it listens on (the kernel's choice for port 0). */
int metrics_http_port(const struct metrics_http *);

/* A new JSON object with the server's counters: "connections" (accepted),
 * "active", "responses" (by status code: {"200": n, "404": n...}),
 * "bad_requests" (every 4xx answer) and "timeouts". */
json_t *metrics_http_status_json(const struct metrics_http *);

#endif /* metrics-http.h */
