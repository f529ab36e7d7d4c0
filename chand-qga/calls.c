/* chand-qga's requests through the Chan DB: see calls.h. */

#include <config.h>
#include "calls.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "list.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(calls);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

#define CALLS_ID_BYTES 16
#define CALLS_DELETE_RETRY_MS 1000

struct call {
    struct list node;           /* In calls->calls. */
    struct calls *calls;
    char *vm;
    char *key;                  /* "call/<id>". */
    char *rkey;                 /* "result/call/<id>". */
    char *command;
    long long deadline;         /* time_msec() of the Timeout. */
    int64_t timeout_ms;
    uint64_t txn;               /* Insert in flight, or 0. */
    char *write_error;          /* The insert failed: why. */
    calls_cb *cb;
    void *aux;
};

/* A request to delete. */
struct deletion {
    struct list node;           /* In calls->deletions. */
    char *vm;
    char *key;
    uint64_t txn;               /* In flight, or 0. */
    long long retry_at;
};

struct calls {
    struct ovsdb_replica *replica;
    char *owner;                /* external_ids:chand-qga of our requests. */
    bool swept;                 /* Requests of an earlier run deleted. */
    struct list calls;
    struct list deletions;
    bool cond_dirty;
    struct calls_stats stats;
};

void
calls_declare(struct ovsdb_replica *r)
{
    struct ovsdb_replica_table *t;

    t = ovsdb_replica_add_table(r, "Guest_Record");
    ovsdb_replica_add_column(t, "vm", NULL);
    ovsdb_replica_add_column(t, "key", NULL);
    ovsdb_replica_add_column(t, "value", NULL);
    ovsdb_replica_add_index(t, "key");
    ovsdb_replica_set_condition(t, json_pack("[b]", false));

    t = ovsdb_replica_add_table(r, "Record");
    ovsdb_replica_add_column(t, "vm", NULL);
    ovsdb_replica_add_column(t, "key", NULL);
    ovsdb_replica_add_column(t, "error", NULL);
    ovsdb_replica_add_index(t, "key");
    ovsdb_replica_set_condition(t, json_pack("[b]", false));

    t = ovsdb_replica_add_table(r, "Channel");
    ovsdb_replica_add_column(t, "vm", NULL);
    ovsdb_replica_add_column(t, "errors", NULL);
    ovsdb_replica_add_index(t, "vm");
}

struct calls *
calls_create(struct ovsdb_replica *replica, const char *owner)
{
    struct calls *c = xzalloc(sizeof *c);

    c->replica = replica;
    c->owner = xstrdup(owner);
    list_init(&c->calls);
    list_init(&c->deletions);
    return c;
}

static void
call_free(struct call *call)
{
    list_remove(&call->node);
    free(call->vm);
    free(call->key);
    free(call->rkey);
    free(call->command);
    free(call->write_error);
    free(call);
}

void
calls_destroy(struct calls *c)
{
    if (!c) {
        return;
    }
    struct call *call;
    LIST_FOR_EACH_SAFE (call, node, &c->calls) {
        if (call->txn) {
            ovsdb_replica_transact_cancel(c->replica, call->txn);
        }
        call_free(call);
    }
    struct deletion *d;
    LIST_FOR_EACH_SAFE (d, node, &c->deletions) {
        if (d->txn) {
            ovsdb_replica_transact_cancel(c->replica, d->txn);
        }
        list_remove(&d->node);
        free(d->vm);
        free(d->key);
        free(d);
    }
    free(c->owner);
    free(c);
}

/* Fills 'hex' with 2 * CALLS_ID_BYTES random hex digits and a null. */
static void
random_id(char hex[2 * CALLS_ID_BYTES + 1])
{
    uint8_t b[CALLS_ID_BYTES];
    size_t got = 0;

    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n > 0) {
            got += n;
        } else if (errno != EINTR) {
            /* Cannot happen on Linux >= 3.17; fall back to the clock. */
            long long t = time_usec() ^ (long long) (uintptr_t) hex;
            memcpy(b, &t, sizeof t);
            break;
        }
    }
    for (size_t i = 0; i < sizeof b; i++) {
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    }
}

/* Sets the Guest_Record and Record conditions to the outstanding calls'
 * keys. */
static void
update_conditions(struct calls *c)
{
    json_t *gr = json_array(), *rec = json_array();
    struct call *call;

    LIST_FOR_EACH (call, node, &c->calls) {
        json_array_append_new(gr, json_pack("[sss]", "key", "==",
                                            call->rkey));
        json_array_append_new(rec, json_pack("[sss]", "key", "==",
                                             call->key));
    }
    if (!json_array_size(gr)) {
        json_array_append_new(gr, json_false());
        json_array_append_new(rec, json_false());
    }
    ovsdb_replica_set_condition(
        ovsdb_replica_get_table(c->replica, "Guest_Record"), gr);
    ovsdb_replica_set_condition(
        ovsdb_replica_get_table(c->replica, "Record"), rec);
    json_decref(gr);
    json_decref(rec);
    c->cond_dirty = false;
}

static void
insert_done(const json_t *result, const char *error, void *call_)
{
    struct call *call = call_;

    (void) result;
    call->txn = 0;
    if (error) {
        call->write_error = xstrdup(error);
        poll_immediate_wake();
    }
}

struct call *
calls_start(struct calls *c, const char *vm, const char *command,
            json_t *args, int64_t timeout_ms, calls_cb *cb, void *aux)
{
    char id[2 * CALLS_ID_BYTES + 1];
    struct call *call = xzalloc(sizeof *call);

    random_id(id);
    call->calls = c;
    call->vm = xstrdup(vm);
    call->key = xasprintf("call/%s", id);
    call->rkey = xasprintf("result/%s", call->key);
    call->command = xstrdup(command);
    call->deadline = time_msec() + timeout_ms + CALLS_GRACE_MS;
    call->timeout_ms = timeout_ms;
    call->cb = cb;
    call->aux = aux;
    list_push_back(&c->calls, &call->node);
    c->stats.started++;

    json_t *req = json_pack("{s:o, s:I, s:s, s:I}",
                            "args", args ? args : json_object(),
                            "at", (json_int_t) time_wall_msec(),
                            "command", command,
                            "timeout_ms", (json_int_t) timeout_ms);
    char *value = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *row = json_pack("{ss ss ss sI s[s[[ss]]]}", "key", call->key,
                            "vm", vm, "value", value,
                            "version", (json_int_t) 1, "external_ids", "map",
                            "chand-qga", c->owner);
    char *comment = xasprintf("chand-qga: %s to %s", command, vm);
    json_t *ops = json_pack("[oo]", ovsdb_op_insert("Record", row, NULL),
                            ovsdb_op_comment(comment));

    call->txn = ovsdb_replica_transact(c->replica, ops, insert_done, call);
    free(comment);
    free(value);
    json_decref(req);
    c->cond_dirty = true;
    return call;
}

static void
delete_done(const json_t *result, const char *error, void *d_)
{
    struct deletion *d = d_;

    (void) result;
    d->txn = 0;
    if (error) {
        VLOG_WARN_RL(&rl, "cannot delete the request %s of %s (tried again "
                     "in a second): %s", d->key, d->vm, error);
        d->retry_at = time_msec() + CALLS_DELETE_RETRY_MS;
    } else {
        list_remove(&d->node);
        free(d->vm);
        free(d->key);
        free(d);
    }
}

static void
send_deletion(struct calls *c, struct deletion *d)
{
    json_t *where = json_pack("[[sss] [sss]]", "key", "==", d->key,
                              "vm", "==", d->vm);
    json_t *ops = json_pack("[oo]", ovsdb_op_delete("Record", where),
                            ovsdb_op_comment("chand-qga: call done"));
    d->txn = ovsdb_replica_transact(c->replica, ops, delete_done, d);
}

/* Ends 'call': queues the deletion of its request and frees it. */
static void
finish(struct calls *c, struct call *call)
{
    struct deletion *d = xzalloc(sizeof *d);

    if (call->txn) {
        /* The insert's outcome no longer matters; the deletion follows it
         * on the same session. */
        ovsdb_replica_transact_cancel(c->replica, call->txn);
    }
    d->vm = call->vm;
    d->key = call->key;
    call->vm = call->key = NULL;
    list_push_back(&c->deletions, &d->node);
    send_deletion(c, d);
    call_free(call);
    c->cond_dirty = true;
}

void
calls_cancel(struct calls *c, struct call *call)
{
    c->stats.cancelled++;
    finish(c, call);
}

static void
end(struct calls *c, struct call *call, const json_t *result,
    const char *class, const char *desc)
{
    call->cb(call->aux, result, class, desc);
    finish(c, call);
}

/* Returns the row of 'table' with 'key' for 'vm', or NULL. */
static const struct ovsdb_replica_row *
find_row(const struct calls *c, const char *table, const char *key,
         const char *vm)
{
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(c->replica, table);
    const struct ovsdb_replica_row *row;

    OVSDB_REPLICA_FOR_EACH_EQ (row, t, key) {
        const char *v = ovsdb_replica_row_get_string(row, "vm");
        if (v && !strcmp(v, vm)) {
            return row;
        }
    }
    return NULL;
}

/* Returns why chand-host cannot deliver 'call' (a new string), or NULL. */
static char *
undeliverable(const struct calls *c, const struct call *call)
{
    const struct ovsdb_replica_row *row = find_row(c, "Record", call->key,
                                                   call->vm);
    const char *error = ovsdb_replica_row_get_string(row, "error");

    if (error && *error) {
        return xstrdup(error);
    }

    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(c->replica, "Channel");
    OVSDB_REPLICA_FOR_EACH_EQ (row, t, call->vm) {
        json_t *errors = NULL;
        const json_t *datum = ovsdb_replica_row_get(row, "errors");
        if (datum && !ovsdb_datum_get_string_map(datum, &errors)) {
            const char *why = json_string_value(json_object_get(errors,
                                                                call->key));
            char *copy = why ? xstrdup(why) : NULL;
            json_decref(errors);
            if (copy) {
                return copy;
            }
        }
    }
    return NULL;
}

/* Looks at 'call'; returns true if it ended. */
static bool
look_at(struct calls *c, struct call *call, long long now)
{
    const struct ovsdb_replica_row *row = find_row(c, "Guest_Record",
                                                   call->rkey, call->vm);
    const char *value = ovsdb_replica_row_get_string(row, "value");

    if (value) {
        json_t *resp = json_loads(value, 0, NULL);
        const json_t *result = json_object_get(resp, "result");
        const json_t *error = json_object_get(resp, "error");
        const char *class = json_string_value(json_object_get(error,
                                                              "class"));
        const char *desc = json_string_value(json_object_get(error, "desc"));

        if (result) {
            c->stats.ok++;
            end(c, call, result, NULL, NULL);
        } else if (class && desc) {
            c->stats.errors++;
            end(c, call, NULL, class, desc);
        } else {
            c->stats.bad_responses++;
            VLOG_WARN_RL(&rl, "%s: the response to %s (%s) is malformed",
                         call->vm, call->key, call->command);
            end(c, call, NULL, "GenericError",
                "the VM's response is malformed");
        }
        json_decref(resp);
        return true;
    }

    char *why = call->write_error
                ? xasprintf("cannot write the request to the Chan DB: %s",
                            call->write_error)
                : NULL;
    if (why) {
        c->stats.write_failures++;
    } else if ((why = undeliverable(c, call)) != NULL) {
        char *full = xasprintf("chand-host cannot deliver the request: %s",
                               why);
        free(why);
        why = full;
        c->stats.undeliverable++;
    }
    if (why) {
        end(c, call, NULL, "GenericError", why);
        free(why);
        return true;
    }
    if (now >= call->deadline) {
        char *desc = xasprintf("no response from %s within %"PRId64" ms",
                               call->vm, call->timeout_ms);
        c->stats.timeouts++;
        end(c, call, NULL, "Timeout", desc);
        free(desc);
        return true;
    }
    return false;
}

static void
sweep_done(const json_t *result, const char *error, void *c_)
{
    struct calls *c = c_;
    int64_t count = json_integer_value(json_object_get(
                                           json_array_get(result, 0),
                                           "count"));
    if (error) {
        VLOG_WARN_RL(&rl, "cannot delete the requests of an earlier run "
                     "(tried again at the next connection): %s", error);
        c->swept = false;
    } else if (count) {
        VLOG_INFO("deleted %"PRId64" requests of an earlier run", count);
    }
}

/* Deletes the requests an earlier run of this chand-qga left (it stopped
 * before they ended), before any request of this run is written. */
static void
sweep(struct calls *c)
{
    json_t *where = json_pack("[[ss[s[[ss]]]]]", "external_ids", "includes",
                              "map", "chand-qga", c->owner);
    json_t *ops = json_pack("[oo]", ovsdb_op_delete("Record", where),
                            ovsdb_op_comment("chand-qga: earlier run"));
    ovsdb_replica_transact(c->replica, ops, sweep_done, c);
    c->swept = true;
}

void
calls_run(struct calls *c)
{
    long long now = time_msec();
    struct call *call;

    if (!c->swept && ovsdb_replica_is_connected(c->replica)) {
        sweep(c);
    }

    LIST_FOR_EACH_SAFE (call, node, &c->calls) {
        look_at(c, call, now);
    }

    struct deletion *d;
    LIST_FOR_EACH (d, node, &c->deletions) {
        if (!d->txn && now >= d->retry_at
            && ovsdb_replica_is_connected(c->replica)) {
            send_deletion(c, d);
        }
    }
    if (c->cond_dirty) {
        update_conditions(c);
    }
}

void
calls_wait(struct calls *c)
{
    long long next = LLONG_MAX;
    struct call *call;

    LIST_FOR_EACH (call, node, &c->calls) {
        next = MIN(next, call->deadline);
    }
    struct deletion *d;
    LIST_FOR_EACH (d, node, &c->deletions) {
        if (!d->txn) {
            next = MIN(next, d->retry_at);
        }
    }
    if (next != LLONG_MAX) {
        poll_timer_wait_until(next);
    }
    if (c->cond_dirty) {
        poll_immediate_wake();
    }
}

void
calls_get_stats(const struct calls *c, struct calls_stats *stats)
{
    *stats = c->stats;
    stats->outstanding = list_size(&c->calls);
    stats->deletes_pending = list_size(&c->deletions);
}
