/*
 * calls: requests to VMs through the Chan DB (doc/adapters.md §1), for
 * chand-qga.
 *
 * A call writes the Record row "call/<id>" for one VM (<id> 32 random hex
 * digits) and waits for the VM's Guest_Record "result/call/<id>", exactly
 * as `chanctl call` does, but without blocking: the Chan DB replica
 * (ovsdb-replica.h) monitors, with a condition, only the Guest_Record and
 * Record rows of the calls outstanding, and calls_run() looks at them.
 * Each call ends exactly once, through its callback:
 *
 *   - the response's "result", or its "error" class and desc;
 *   - "Timeout" when no response came within its timeout plus
 *     CALLS_GRACE_MS;
 *   - "GenericError" when the request could not be written, or chand-host
 *     says it cannot deliver it (the Record's "error" column, or the key's
 *     entry in the VM's Channel.errors).
 *
 * Whatever the outcome, the request's Record row is then deleted (which
 * withdraws the response, and kills an exec still running); deletions
 * that fail are tried again every second until they succeed.  Requests
 * carry external_ids:chand-qga=OWNER; once connected, before writing any,
 * calls deletes those a previous run with the same OWNER left behind (it
 * stopped while they were outstanding).
 *
 * The replica belongs to the caller, which declares the tables with
 * calls_declare() before connecting it and drives it; calls only reads
 * it, sets the two tables' conditions and sends transactions on it.
 */
#ifndef CALLS_H
#define CALLS_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct ovsdb_replica;
struct calls;
struct call;

#define CALLS_GRACE_MS 2000     /* Added to a call's timeout for the trip
                                 * back. */

/* A call's end: 'result' (borrowed) on success, else 'class' and 'desc'
 * (borrowed).  The call is freed after the callback returns. */
typedef void calls_cb(void *aux, const json_t *result, const char *class,
                      const char *desc);

/* Declares the tables and columns calls needs in 'replica'. */
void calls_declare(struct ovsdb_replica *replica);

/* Creates the call set on 'replica' (borrowed; must outlive it), marking
 * its requests with 'owner' (copied). */
struct calls *calls_create(struct ovsdb_replica *replica,
                           const char *owner);
/* Destroys 'calls' without calling back; the requests are left in the
 * Chan DB.  NULL is ignored. */
void calls_destroy(struct calls *);

/* Sends 'command' with 'args' (stolen; NULL means {}) to 'vm' with a
 * timeout of 'timeout_ms', calling 'cb' with 'aux' once when it ends
 * (never from here).  Returns the call, owned by 'calls', valid until
 * its callback returns or calls_cancel(). */
struct call *calls_start(struct calls *, const char *vm,
                         const char *command, json_t *args,
                         int64_t timeout_ms, calls_cb *cb, void *aux);

/* Ends 'call' without calling back and deletes its request. */
void calls_cancel(struct calls *, struct call *);

void calls_run(struct calls *);
void calls_wait(struct calls *);

/* Counters. */
struct calls_stats {
    uint64_t started;
    uint64_t ok;                /* Answered with a result. */
    uint64_t errors;            /* Answered with an error. */
    uint64_t timeouts;          /* No response in time. */
    uint64_t undeliverable;     /* chand-host cannot deliver them. */
    uint64_t write_failures;    /* The request could not be written. */
    uint64_t bad_responses;     /* Responses that were not JSON objects of
                                 * the right shape. */
    uint64_t cancelled;
    uint64_t outstanding;
    uint64_t deletes_pending;
};
void calls_get_stats(const struct calls *, struct calls_stats *);

#endif /* calls.h */
