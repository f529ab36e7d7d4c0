/* Copyright (c) 2026 The chand authors.  See autoid.h. */

#include <config.h>
#include "autoid.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(autoid);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

static int
compare_u32(const void *a_, const void *b_)
{
    uint32_t a = *(const uint32_t *) a_, b = *(const uint32_t *) b_;
    return a < b ? -1 : a > b;
}

static bool
in_range(uint32_t id)
{
    return id >= AUTOID_MIN && id <= AUTOID_MAX;
}

int
autoid_pick(const uint32_t *used, size_t n, size_t n_here,
            uint32_t preferred, uint32_t *idp)
{
    uint32_t *sorted = xmalloc((n ? n : 1) * sizeof *sorted);
    bool preferred_used = false;
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        preferred_used |= i < n_here && used[i] == preferred;
        if (in_range(used[i])) {
            sorted[m++] = used[i];
        }
    }
    if (preferred && in_range(preferred) && !preferred_used) {
        free(sorted);
        *idp = preferred;
        return 0;
    }
    qsort(sorted, m, sizeof *sorted, compare_u32);

    /* The lowest id that the sorted, possibly repeating list skips. */
    uint32_t next = AUTOID_MIN;
    for (size_t i = 0; i < m && sorted[i] <= next; i++) {
        if (sorted[i] == next) {
            next++;
        }
    }
    free(sorted);
    if (next > AUTOID_MAX) {
        return ENOSPC;
    }
    *idp = next;
    return 0;
}

bool
autoid_is_auto(const json_t *external_ids)
{
    const char *id = json_string_value(json_object_get(external_ids,
                                                       "chand-id"));
    const char *mark = json_string_value(json_object_get(external_ids,
                                                         "chand-id-auto"));
    return id && mark && !strcmp(id, mark);
}

json_t *
autoid_ops(const char *iface_uuid, const json_t *external_ids, uint32_t id)
{
    char text[16];
    snprintf(text, sizeof text, "%"PRIu32, id);
    json_t *ops = json_array();

    /* 1. The Interface's external_ids are still exactly as read: nobody set
     *    a chand-id (or changed anything else) meanwhile. */
    json_t *as_read = json_deep_copy(external_ids);
    json_array_append_new(ops, ovsdb_op_wait(
        "Interface", ovsdb_where_uuid(iface_uuid),
        json_pack("[s]", "external_ids"), "==",
        json_pack("[{so}]", "external_ids", ovsdb_datum_string_map(as_read)),
        0));
    json_decref(as_read);

    /* 2. No Interface has chand-id=N: neither set by hand nor allocated by
     *    another chand-host since the choice was made. */
    json_t *pair = json_pack("{ss}", "chand-id", text);
    json_array_append_new(ops, ovsdb_op_wait(
        "Interface",
        json_pack("[o]", ovsdb_condition("external_ids", "includes",
                                         ovsdb_datum_string_map(pair))),
        json_pack("[s]", "name"), "==", json_array(), 0));
    json_decref(pair);

    /* 3. Write both keys (a stale chand-id-auto goes first: a map "insert"
     *    leaves a present key alone). */
    const char *mark = "chand-id-auto";
    json_t *map = json_pack("{ssss}", "chand-id", text, mark, text);
    json_t *mutations = json_pack(
        "[oo]",
        ovsdb_mutation("external_ids", "delete",
                       ovsdb_datum_string_set(&mark, 1)),
        ovsdb_mutation("external_ids", "insert",
                       ovsdb_datum_string_map(map)));
    json_decref(map);
    json_array_append_new(ops, ovsdb_op_mutate(
        "Interface", ovsdb_where_uuid(iface_uuid), mutations));
    return ops;
}

/* Per Interface uuid: {"state": "flight" | "written" | "failed",
 * "seqno": N, "id": ID}: in flight, or written or failed when the replica was at
 * seqno N (written: when the reply came; failed: when the id was chosen). */
struct autoid {
    json_t *ifaces;
    uint64_t n_allocated;
    uint64_t n_failed;
    uint64_t seqno;             /* Bumped when a write fails. */
};

struct autoid *
autoid_create(void)
{
    struct autoid *a = xzalloc(sizeof *a);
    a->ifaces = json_object();
    return a;
}

void
autoid_destroy(struct autoid *a)
{
    if (a) {
        json_decref(a->ifaces);
        free(a);
    }
}

static const char *
state_of(const struct autoid *a, const char *uuid, uint64_t *seqnop)
{
    const json_t *e = json_object_get(a->ifaces, uuid);
    json_int_t seqno = json_integer_value(json_object_get(e, "seqno"));
    *seqnop = seqno;
    return json_string_value(json_object_get(e, "state"));
}

bool
autoid_may_start(const struct autoid *a, const char *iface_uuid,
                 uint64_t seqno)
{
    uint64_t at;
    const char *state = state_of(a, iface_uuid, &at);
    return !state || (strcmp(state, "flight") && at != seqno);
}

static void
set_state(struct autoid *a, const char *uuid, const char *state,
          uint64_t seqno, uint32_t id)
{
    json_object_set_new(a->ifaces, uuid,
                        json_pack("{sssIsI}", "state", state, "seqno",
                                  (json_int_t) seqno, "id", (json_int_t) id));
}

size_t
autoid_pending_ids(const struct autoid *a, uint32_t **idsp)
{
    uint32_t *ids = xmalloc((json_object_size(a->ifaces) + 1)
                            * sizeof *ids);
    size_t n = 0;
    const char *uuid;
    json_t *e;
    json_object_foreach (a->ifaces, uuid, e) {
        if (strcmp(json_string_value(json_object_get(e, "state")),
                   "failed")) {
            ids[n++] = json_integer_value(json_object_get(e, "id"));
        }
    }
    *idsp = ids;
    return n;
}

/* One allocation in flight (owned by the transaction's callback). */
struct autoid_txn {
    struct autoid *a;
    struct ovsdb_replica *ovs;
    char *uuid, *iface, *vm;
    uint32_t id;
    uint64_t seqno;
};

/* Turns the server's error for a failed "wait" into what it means. */
static const char *
explain(const char *error)
{
    if (strstr(error, "timed out")) {
        return "the Interface changed, or another Interface took the id, "
               "meanwhile";
    }
    return error;
}

static void
txn_done(const json_t *result, const char *error, void *t_)
{
    struct autoid_txn *t = t_;
    struct autoid *a = t->a;

    if (!error) {
        /* Until the replica changes again: the row with its id may come
         * before or after this reply. */
        a->n_allocated++;
        set_state(a, t->uuid, "written", ovsdb_replica_get_seqno(t->ovs),
                  t->id);
        VLOG_INFO("allocated chand-id %"PRIu32" for %s on %s", t->id, t->vm,
                  t->iface);
    } else {
        a->n_failed++;
        a->seqno++;
        set_state(a, t->uuid, "failed", t->seqno, t->id);
        VLOG_WARN_RL(&rl, "chand-id %"PRIu32" for %s on %s not written (%s): "
                     "choosing again once the database changes", t->id,
                     t->vm, t->iface, explain(error));
    }
    free(t->uuid);
    free(t->iface);
    free(t->vm);
    free(t);
    (void) result;
}

void
autoid_start(struct autoid *a, struct ovsdb_replica *ovs,
             const char *iface_uuid, const char *iface, const char *vm,
             const json_t *external_ids, uint32_t id, uint64_t seqno)
{
    struct autoid_txn *t = xmalloc(sizeof *t);
    *t = (struct autoid_txn) {
        .a = a, .ovs = ovs, .uuid = xstrdup(iface_uuid), .iface = xstrdup(iface),
        .vm = xstrdup(vm), .id = id, .seqno = seqno,
    };
    set_state(a, iface_uuid, "flight", seqno, id);
    VLOG_DBG("%s: writing chand-id %"PRIu32" for %s", iface, id, vm);
    ovsdb_replica_transact(ovs, autoid_ops(iface_uuid, external_ids, id),
                           txn_done, t);
}

void
autoid_retain(struct autoid *a, const json_t *needing)
{
    const char *uuid;
    json_t *e;
    void *tmp;
    json_object_foreach_safe (a->ifaces, tmp, uuid, e) {
        const char *state = json_string_value(json_object_get(e, "state"));
        if (!json_object_get(needing, uuid) && strcmp(state, "flight")) {
            json_object_del(a->ifaces, uuid);
        }
    }
}

uint64_t
autoid_n_allocated(const struct autoid *a)
{
    return a->n_allocated;
}

uint64_t
autoid_n_failed(const struct autoid *a)
{
    return a->n_failed;
}

uint64_t
autoid_get_seqno(const struct autoid *a)
{
    return a->seqno;
}
