/*
 * endpoint: one VM's qemu-ga socket in chand-qga.
 *
 * An endpoint listens on a Unix socket and serves any number of clients
 * (up to ENDPOINT_MAX_CONNS) speaking the qemu-ga wire protocol
 * (qga-proto.h).  Each connection runs its requests one at a time, in
 * order, through commands.h, and writes each response as it ends; while a
 * request runs, the connection reads no further input (so a client that
 * sends faster than the VM answers is held back, not buffered without
 * bound).  Only root and chand-qga's own user may connect (SO_PEERCRED).
 *
 * Hostile input is answered, never fatal: bad JSON, a request over
 * 'max_request' bytes (skipped to its end, stream kept in step), a 0xFF
 * reset, an unknown command or bad arguments each get an error response
 * and a counter.  A client that goes away mid-request has its request's
 * call cancelled (deleted from the Chan DB).
 */
#ifndef ENDPOINT_H
#define ENDPOINT_H 1

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct qga_vm;
struct endpoint;

#define ENDPOINT_MAX_CONNS 16
#define ENDPOINT_MAX_OUTPUT (1024 * 1024) /* Buffered response bytes above
                                           * which no request is read. */

/* Starts serving 'vm' (borrowed; must outlive the endpoint) on the Unix
 * socket 'path' (copied; a stale socket there is replaced).  Returns the
 * endpoint, or NULL with '*errorp' (malloc()ed). */
struct endpoint *endpoint_create(struct qga_vm *vm, const char *path,
                                 size_t max_request, char **errorp);
/* Closes every connection (cancelling their requests), removes the socket
 * and frees 'ep'.  NULL is ignored. */
void endpoint_destroy(struct endpoint *ep);

void endpoint_run(struct endpoint *);
void endpoint_wait(struct endpoint *);

const char *endpoint_path(const struct endpoint *);

struct endpoint_stats {
    uint64_t conns_accepted;
    uint64_t conns_refused;     /* Too many, or another user. */
    uint64_t requests;          /* Requests answered. */
    uint64_t bad_requests;      /* Bad JSON, resets, oversized, not a
                                 * request object (each answered with an
                                 * error; resets are logged at debug level
                                 * only, as every client's handshake sends
                                 * one). */
    uint64_t resets;            /* ...of which: 0xFF bytes. */
    uint64_t oversized;         /* ...of which: over max_request. */
    uint64_t cancelled;         /* Requests whose client went away. */
    uint64_t conns;             /* Connected now. */
};
void endpoint_get_stats(const struct endpoint *, struct endpoint_stats *);

/* The endpoint's state as JSON (a new reference), for qga/list. */
json_t *endpoint_to_json(const struct endpoint *);

#endif /* endpoint.h */
