/* ovsdb-replica: a minimal OVSDB IDL.  See ovsdb-replica.h. */

#include <config.h>
#include "ovsdb-replica.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hmap.h"
#include "jsonrpc.h"
#include "list.h"
#include "poll-loop.h"
#include "reconnect.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(ovsdb_replica);

/* Most messages handled in one ovsdb_replica_run(), so that a busy server
 * cannot starve the rest of the poll loop. */
#define MAX_MSGS_PER_RUN 100

struct ovsdb_replica_column {
    char *name;
    struct ovsdb_type type;
    bool in_schema;             /* Server has it (true until known). */
    bool warned;                /* Logged that the server lacks it. */
};

struct ovsdb_replica_row {
    struct hmap_node hmap_node; /* In table->by_uuid. */
    struct list node;          /* In table->rows, unless deleted. */
    struct list track_node;    /* In table->track, if tracked. */
    struct ovsdb_replica_table *table;
    char uuid[OVSDB_UUID_LEN + 1];
    json_t *columns;            /* Current columns; NULL if deleted. */
    json_t *orig;               /* If tracked: columns at last clear, NULL
                                 * if the row did not exist then. */
    bool tracked;
    bool deleted;
    unsigned int generation;    /* Snapshot that last contained it. */
};

struct ovsdb_replica_table {
    struct ovsdb_replica *replica;
    char *name;
    struct ovsdb_replica_column *columns;
    size_t n_columns;
    bool in_schema;
    bool warned;                /* Logged that the server lacks it. */

    struct hmap by_uuid;        /* All rows, deleted included. */
    size_t n_live;              /* Rows in 'rows'. */
    struct list rows;
    struct list track;
};

enum replica_state {
    RS_IDLE,                    /* Not connected, or about to (re)sync. */
    RS_SCHEMA,                  /* get_schema sent. */
    RS_MONITOR,                 /* monitor sent. */
    RS_SYNCED,                  /* Snapshot applied, following updates. */
    RS_RETRY                    /* Refused; retrying at 'retry_at'. */
};

struct replica_txn {
    struct list node;
    uint64_t id;
    json_t *request_id;         /* Sent: JSON-RPC id.  NULL if failed. */
    size_t n_ops;
    char *fail;                 /* Failure to report on the next run. */
    ovsdb_replica_txn_cb *cb;
    void *aux;
};

struct ovsdb_replica {
    char *db_name;
    struct ovsdb_replica_table **tables;
    size_t n_tables;
    uint64_t seqno;
    unsigned int generation;
    struct ovsdb_replica_stats stats;

    /* Session. */
    struct jsonrpc_session *session;
    unsigned int session_seqno;
    int min_backoff, max_backoff;
    enum replica_state state;
    json_t *request_id;         /* Outstanding get_schema or monitor. */
    json_t *monitor_id;         /* Current monitor's id, or NULL. */
    unsigned int monitor_serial;
    json_t *schema;             /* Last get_schema reply, or NULL. */
    long long int retry_at;
    int retry_backoff;          /* Next wait after a refusal (ms). */
    bool more_msgs;             /* run() stopped at MAX_MSGS_PER_RUN. */

    struct list txns;
    uint64_t next_txn_id;
};

static struct vlog_rate_limit bad_row_rl = VLOG_RATE_LIMIT_INIT(5, 10);
static struct vlog_rate_limit proto_rl = VLOG_RATE_LIMIT_INIT(5, 10);
static struct vlog_rate_limit conn_rl = VLOG_RATE_LIMIT_INIT(10, 10);
static struct vlog_rate_limit retry_rl = VLOG_RATE_LIMIT_INIT(10, 10);

/* ----------------------------------------------------------------------
 * Set-up.
 */

struct ovsdb_replica *
ovsdb_replica_create(const char *db_name)
{
    struct ovsdb_replica *r = xzalloc(sizeof *r);
    r->db_name = xstrdup(db_name);
    r->seqno = 1;
    r->min_backoff = RECONNECT_DEFAULT_MIN_BACKOFF;
    r->max_backoff = RECONNECT_DEFAULT_MAX_BACKOFF;
    r->retry_backoff = r->min_backoff;
    list_init(&r->txns);
    return r;
}

static void
row_free(struct ovsdb_replica_row *row)
{
    json_decref(row->columns);
    json_decref(row->orig);
    free(row);
}

static void
table_destroy(struct ovsdb_replica_table *t)
{
    struct ovsdb_replica_row *row;
    HMAP_FOR_EACH_SAFE (row, hmap_node, &t->by_uuid) {
        row_free(row);
    }
    hmap_destroy(&t->by_uuid);
    for (size_t i = 0; i < t->n_columns; i++) {
        free(t->columns[i].name);
    }
    free(t->columns);
    free(t->name);
    free(t);
}

static void
txn_free(struct replica_txn *txn)
{
    json_decref(txn->request_id);
    free(txn->fail);
    free(txn);
}

void
ovsdb_replica_destroy(struct ovsdb_replica *r)
{
    if (!r) {
        return;
    }
    jsonrpc_session_close(r->session);
    while (!list_is_empty(&r->txns)) {
        struct replica_txn *txn = LIST_ELEM(list_front(&r->txns),
                                            struct replica_txn, node);
        list_remove(&txn->node);
        txn_free(txn);
    }
    for (size_t i = 0; i < r->n_tables; i++) {
        table_destroy(r->tables[i]);
    }
    free(r->tables);
    json_decref(r->request_id);
    json_decref(r->monitor_id);
    json_decref(r->schema);
    free(r->db_name);
    free(r);
}

struct ovsdb_replica_table *
ovsdb_replica_get_table(const struct ovsdb_replica *r, const char *name)
{
    for (size_t i = 0; i < r->n_tables; i++) {
        if (!strcmp(r->tables[i]->name, name)) {
            return r->tables[i];
        }
    }
    return NULL;
}

struct ovsdb_replica_table *
ovsdb_replica_add_table(struct ovsdb_replica *r, const char *name)
{
    struct ovsdb_replica_table *t = ovsdb_replica_get_table(r, name);
    if (t) {
        return t;
    }
    t = xzalloc(sizeof *t);
    t->replica = r;
    t->name = xstrdup(name);
    t->in_schema = true;
    hmap_init(&t->by_uuid);
    list_init(&t->rows);
    list_init(&t->track);

    r->tables = xrealloc(r->tables, (r->n_tables + 1) * sizeof *r->tables);
    r->tables[r->n_tables++] = t;
    return t;
}

static struct ovsdb_replica_column *
table_find_column(const struct ovsdb_replica_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_columns; i++) {
        if (!strcmp(t->columns[i].name, name)) {
            return &t->columns[i];
        }
    }
    return NULL;
}

void
ovsdb_replica_add_column(struct ovsdb_replica_table *t, const char *name,
                         const struct ovsdb_type *type)
{
    static const struct ovsdb_type any = OVSDB_TYPE_ANY;
    struct ovsdb_replica_column *c = table_find_column(t, name);
    if (!c) {
        t->columns = xrealloc(t->columns,
                              (t->n_columns + 1) * sizeof *t->columns);
        c = &t->columns[t->n_columns++];
        memset(c, 0, sizeof *c);
        c->name = xstrdup(name);
        c->in_schema = true;
    }
    c->type = type ? *type : any;
}

const char *
ovsdb_replica_get_db_name(const struct ovsdb_replica *r)
{
    return r->db_name;
}

const char *
ovsdb_replica_table_name(const struct ovsdb_replica_table *t)
{
    return t->name;
}

bool
ovsdb_replica_has_column(const struct ovsdb_replica_table *t,
                         const char *column)
{
    if (!column) {
        return t->in_schema;
    }
    const struct ovsdb_replica_column *c = table_find_column(t, column);
    return c && t->in_schema && c->in_schema;
}

/* ----------------------------------------------------------------------
 * Rows.
 */

/* Finds the row with 'uuid' (validated), deleted or not.  Borrowed. */
static struct ovsdb_replica_row *
table_lookup(const struct ovsdb_replica_table *t, const char *uuid)
{
    struct ovsdb_replica_row *row;

    HMAP_FOR_EACH_WITH_HASH (row, hmap_node, hash_string_nocase(uuid),
                             &t->by_uuid) {
        if (!strcasecmp(row->uuid, uuid)) {
            return row;
        }
    }
    return NULL;
}

/* Removes 'row' (still owned by the caller) from the rows of 't' by
 * UUID. */
static void
table_unhash(struct ovsdb_replica_table *t, struct ovsdb_replica_row *row)
{
    hmap_remove(&t->by_uuid, &row->hmap_node);
}

size_t
ovsdb_replica_table_count(const struct ovsdb_replica_table *t)
{
    return t->n_live;
}

const struct ovsdb_replica_row *
ovsdb_replica_find(const struct ovsdb_replica_table *t, const char *uuid)
{
    if (!uuid || !ovsdb_uuid_is_valid(uuid)) {
        return NULL;
    }
    const struct ovsdb_replica_row *row = table_lookup(t, uuid);
    return row && !row->deleted ? row : NULL;
}

const struct ovsdb_replica_row *
ovsdb_replica_first(const struct ovsdb_replica_table *t)
{
    return (list_is_empty(&t->rows) ? NULL
            : LIST_ELEM(t->rows.next, struct ovsdb_replica_row, node));
}

const struct ovsdb_replica_row *
ovsdb_replica_next(const struct ovsdb_replica_row *row)
{
    const struct list *next = row->node.next;
    return (next == &row->table->rows ? NULL
            : LIST_ELEM(next, struct ovsdb_replica_row, node));
}

const char *
ovsdb_replica_row_uuid(const struct ovsdb_replica_row *row)
{
    return row->uuid;
}

const struct ovsdb_replica_table *
ovsdb_replica_row_table(const struct ovsdb_replica_row *row)
{
    return row->table;
}

const json_t *
ovsdb_replica_row_get(const struct ovsdb_replica_row *row,
                      const char *column)
{
    return json_object_get(row->deleted ? row->orig : row->columns, column);
}

const char *
ovsdb_replica_row_get_string(const struct ovsdb_replica_row *row,
                             const char *column)
{
    const json_t *datum = row ? ovsdb_replica_row_get(row, column) : NULL;
    const char *s = NULL;

    if (datum && ovsdb_datum_get_string(datum, &s)) {
        s = NULL;
    }
    return s;
}

const struct ovsdb_replica_row *
ovsdb_replica_find_by_string(const struct ovsdb_replica_table *table,
                             const char *column, const char *value)
{
    const struct ovsdb_replica_row *row;

    OVSDB_REPLICA_FOR_EACH (row, table) {
        const char *s = ovsdb_replica_row_get_string(row, column);
        if (s && !strcmp(s, value)) {
            return row;
        }
    }
    return NULL;
}

bool
ovsdb_replica_row_refers_to(const struct ovsdb_replica_row *row,
                            const char *column, const char *uuid)
{
    const json_t *datum = ovsdb_replica_row_get(row, column);
    json_t *uuids, *u;
    bool found = false;
    size_t i;

    if (datum && !ovsdb_datum_get_uuid_set(datum, &uuids)) {
        json_array_foreach (uuids, i, u) {
            found |= !strcmp(json_string_value(u), uuid);
        }
        json_decref(uuids);
    }
    return found;
}

const json_t *
ovsdb_replica_row_get_old(const struct ovsdb_replica_row *row,
                          const char *column)
{
    return json_object_get(row->tracked ? row->orig : row->columns, column);
}

/* ----------------------------------------------------------------------
 * Change tracking.
 */

const char *
ovsdb_replica_change_name(enum ovsdb_replica_change change)
{
    switch (change) {
    case OVSDB_REPLICA_UNCHANGED:
        return "unchanged";
    case OVSDB_REPLICA_INSERTED:
        return "inserted";
    case OVSDB_REPLICA_MODIFIED:
        return "modified";
    case OVSDB_REPLICA_DELETED:
        return "deleted";
    default:
        return "?";
    }
}

enum ovsdb_replica_change
ovsdb_replica_row_change(const struct ovsdb_replica_row *row)
{
    return (!row->tracked ? OVSDB_REPLICA_UNCHANGED
            : row->deleted ? OVSDB_REPLICA_DELETED
            : !row->orig ? OVSDB_REPLICA_INSERTED
            : OVSDB_REPLICA_MODIFIED);
}

static bool
json_equal_or_null(const json_t *a, const json_t *b)
{
    return a && b ? json_equal((json_t *) a, (json_t *) b) : a == b;
}

bool
ovsdb_replica_row_column_changed(const struct ovsdb_replica_row *row,
                                 const char *column)
{
    switch (ovsdb_replica_row_change(row)) {
    case OVSDB_REPLICA_UNCHANGED:
        return false;
    case OVSDB_REPLICA_INSERTED:
    case OVSDB_REPLICA_DELETED:
        return true;
    case OVSDB_REPLICA_MODIFIED:
    default:
        return !json_equal_or_null(json_object_get(row->orig, column),
                                   json_object_get(row->columns, column));
    }
}

const struct ovsdb_replica_row *
ovsdb_replica_track_first(const struct ovsdb_replica_table *t)
{
    return (list_is_empty(&t->track) ? NULL
            : LIST_ELEM(t->track.next, struct ovsdb_replica_row,
                        track_node));
}

const struct ovsdb_replica_row *
ovsdb_replica_track_next(const struct ovsdb_replica_row *row)
{
    const struct list *next = row->track_node.next;
    return (next == &row->table->track ? NULL
            : LIST_ELEM(next, struct ovsdb_replica_row, track_node));
}

bool
ovsdb_replica_has_changes(const struct ovsdb_replica *r)
{
    for (size_t i = 0; i < r->n_tables; i++) {
        if (!list_is_empty(&r->tables[i]->track)) {
            return true;
        }
    }
    return false;
}

void
ovsdb_replica_track_clear(struct ovsdb_replica *r)
{
    for (size_t i = 0; i < r->n_tables; i++) {
        struct ovsdb_replica_table *t = r->tables[i];
        while (!list_is_empty(&t->track)) {
            struct ovsdb_replica_row *row
                = LIST_ELEM(list_front(&t->track), struct ovsdb_replica_row,
                            track_node);
            list_remove(&row->track_node);
            row->tracked = false;
            json_decref(row->orig);
            row->orig = NULL;
            if (row->deleted) {
                table_unhash(t, row);
                row_free(row);
            }
        }
    }
}

uint64_t
ovsdb_replica_get_seqno(const struct ovsdb_replica *r)
{
    return r->seqno;
}

void
ovsdb_replica_get_stats(const struct ovsdb_replica *r,
                        struct ovsdb_replica_stats *stats)
{
    *stats = r->stats;
}

/* ----------------------------------------------------------------------
 * Pure core: applying updates.
 */

/* Starts tracking 'row', whose reference state is 'orig' (reference
 * taken over; NULL for a row that did not exist). */
static void
row_track(struct ovsdb_replica_row *row, json_t *orig)
{
    row->tracked = true;
    row->orig = orig;
    list_push_back(&row->table->track, &row->track_node);
}

static void
row_untrack(struct ovsdb_replica_row *row)
{
    row->tracked = false;
    json_decref(row->orig);
    row->orig = NULL;
    list_remove(&row->track_node);
}

/* Makes 'cols' (reference taken over) the contents of the row 'uuid' in
 * 't'.  'row' is its existing row (live or deleted) or NULL. */
static struct ovsdb_replica_row *
row_set(struct ovsdb_replica_table *t, struct ovsdb_replica_row *row,
        const char *uuid, json_t *cols)
{
    struct ovsdb_replica *r = t->replica;

    if (!row) {
        row = xzalloc(sizeof *row);
        row->table = t;
        for (size_t i = 0; i <= OVSDB_UUID_LEN; i++) {
            row->uuid[i] = tolower((unsigned char) uuid[i]);
        }
        hmap_insert(&t->by_uuid, &row->hmap_node,
                    hash_string_nocase(row->uuid));
        list_push_back(&t->rows, &row->node);
        t->n_live++;
        row->columns = cols;
        row_track(row, NULL);
    } else if (row->deleted) {
        /* Deleted and back since the last clear: compare with then. */
        row->deleted = false;
        list_push_back(&t->rows, &row->node);
        t->n_live++;
        row->columns = cols;
        if (json_equal(row->orig, cols)) {
            row_untrack(row);
        }
    } else if (json_equal(row->columns, cols)) {
        json_decref(cols);
        return row;
    } else {
        if (!row->tracked) {
            row_track(row, row->columns);
        } else {
            json_decref(row->columns);
        }
        row->columns = cols;
        if (row->orig && json_equal(row->orig, cols)) {
            row_untrack(row);
        }
    }
    r->seqno++;
    return row;
}

static void
row_delete(struct ovsdb_replica_row *row)
{
    struct ovsdb_replica_table *t = row->table;

    list_remove(&row->node);
    t->n_live--;
    t->replica->seqno++;
    if (!row->tracked) {
        row_track(row, row->columns);
        row->columns = NULL;
        row->deleted = true;
    } else if (!row->orig) {
        /* Inserted since the last clear: the caller never knew it. */
        list_remove(&row->track_node);
        table_unhash(t, row);
        row_free(row);
    } else {
        json_decref(row->columns);
        row->columns = NULL;
        row->deleted = true;
    }
}

/* Returns the declared columns of 'new' layered over 'base' (borrowed, may
 * be NULL) as a new object.  Columns of the wrong type are left out and
 * counted. */
static json_t *
filter_columns(struct ovsdb_replica_table *t, const char *uuid,
               const json_t *new, const json_t *base)
{
    struct ovsdb_replica *r = t->replica;
    json_t *cols = base ? json_copy((json_t *) base) : json_object();
    bool bad = false;

    for (size_t i = 0; i < t->n_columns; i++) {
        const struct ovsdb_replica_column *c = &t->columns[i];
        json_t *value = json_object_get(new, c->name);
        if (!value) {
            continue;
        }
        int error = ovsdb_datum_check(value, &c->type, false);
        if (error) {
            VLOG_WARN_RL(&bad_row_rl, "%s: %s row %s column %s: %s",
                         r->db_name, t->name, uuid, c->name,
                         ovsdb_msg_strerror(error));
            json_object_del(cols, c->name);
            bad = true;
        } else {
            json_object_set(cols, c->name, value);
        }
    }
    if (bad) {
        r->stats.n_bad_rows++;
    }
    return cols;
}

struct apply_ctx {
    struct ovsdb_replica *r;
    bool initial;
};

static void
apply_row(const char *table, const char *uuid, const json_t *old,
          const json_t *new, void *ctx_)
{
    struct apply_ctx *ctx = ctx_;
    struct ovsdb_replica *r = ctx->r;
    struct ovsdb_replica_table *t = ovsdb_replica_get_table(r, table);

    if (!t) {
        return;
    }
    struct ovsdb_replica_row *row = table_lookup(t, uuid);
    bool live = row && !row->deleted;

    if (new) {
        const json_t *base = NULL;
        if (!ctx->initial) {
            if (old && live) {
                base = row->columns;    /* Modify: layer onto current. */
            } else if (old != NULL || live) {
                r->stats.n_inconsistent++;  /* Modify unknown, or
                                             * insert existing. */
            }
        }
        row = row_set(t, row, uuid, filter_columns(t, uuid, new, base));
        row->generation = r->generation;
    } else if (ctx->initial || !live) {
        r->stats.n_inconsistent++;
    } else {
        row_delete(row);
    }
}

int
ovsdb_replica_apply_updates(struct ovsdb_replica *r, const json_t *updates,
                            bool initial)
{
    struct apply_ctx ctx = { .r = r, .initial = initial };

    r->generation++;
    int error = ovsdb_msg_parse_table_updates(updates, apply_row, &ctx);
    if (error) {
        r->stats.n_bad_updates++;
        return error;
    }
    if (initial) {
        for (size_t i = 0; i < r->n_tables; i++) {
            struct ovsdb_replica_table *t = r->tables[i];
            struct ovsdb_replica_row *row;
            LIST_FOR_EACH_SAFE (row, node, &t->rows) {
                if (row->generation != r->generation) {
                    row_delete(row);
                }
            }
        }
    }
    return 0;
}

/* ----------------------------------------------------------------------
 * Transactions.
 */

static void
txn_complete(struct replica_txn *txn, const json_t *result,
             const char *error)
{
    if (txn->cb) {
        txn->cb(result, error, txn->aux);
    }
    txn_free(txn);
}

/* Fails every transaction that was sent and awaits a reply, with 'why'.
 * They are reported on the next run. */
static void
fail_sent_txns(struct ovsdb_replica *r, const char *why)
{
    struct replica_txn *txn;
    LIST_FOR_EACH (txn, node, &r->txns) {
        if (txn->request_id) {
            json_decref(txn->request_id);
            txn->request_id = NULL;
            txn->fail = xstrdup(why);
        }
    }
}

/* Reports queued failures.  A callback may start or cancel transactions,
 * so the queue is detached first. */
static void
report_failures(struct ovsdb_replica *r)
{
    struct replica_txn *txn;
    struct list failed;

    list_init(&failed);
    LIST_FOR_EACH_SAFE (txn, node, &r->txns) {
        if (txn->fail) {
            list_remove(&txn->node);
            list_push_back(&failed, &txn->node);
        }
    }
    while (!list_is_empty(&failed)) {
        txn = LIST_ELEM(list_front(&failed), struct replica_txn, node);
        list_remove(&txn->node);
        r->stats.n_txn_failed++;
        txn_complete(txn, NULL, txn->fail);
    }
}

uint64_t
ovsdb_replica_transact(struct ovsdb_replica *r, json_t *ops,
                       ovsdb_replica_txn_cb *cb, void *aux)
{
    struct replica_txn *txn = xzalloc(sizeof *txn);
    txn->id = ++r->next_txn_id;
    txn->cb = cb;
    txn->aux = aux;
    list_push_back(&r->txns, &txn->node);

    if (!json_is_array(ops)) {
        txn->fail = xstrdup("invalid transaction: operations must be an "
                            "array");
        json_decref(ops);
    } else if (!ovsdb_replica_is_connected(r)) {
        txn->fail = xstrdup("not connected");
        json_decref(ops);
    } else {
        txn->n_ops = json_array_size(ops);
        json_t *request = jsonrpc_create_request(
            "transact", ovsdb_msg_transact_params(r->db_name, ops),
            &txn->request_id);
        int error = jsonrpc_session_send(r->session, request);
        if (error) {
            json_decref(txn->request_id);
            txn->request_id = NULL;
            txn->fail = xstrdup(error == ENOTCONN ? "not connected"
                                : strerror(error));
        } else {
            r->stats.n_txn_sent++;
        }
    }
    return txn->id;
}

void
ovsdb_replica_transact_cancel(struct ovsdb_replica *r, uint64_t id)
{
    struct replica_txn *txn;
    LIST_FOR_EACH (txn, node, &r->txns) {
        if (txn->id == id) {
            list_remove(&txn->node);
            txn_free(txn);
            return;
        }
    }
}

size_t
ovsdb_replica_n_pending(const struct ovsdb_replica *r)
{
    return list_size(&r->txns);
}

static struct replica_txn *
find_sent_txn(struct ovsdb_replica *r, const json_t *id)
{
    struct replica_txn *txn;
    LIST_FOR_EACH (txn, node, &r->txns) {
        if (txn->request_id && jsonrpc_id_equal(txn->request_id, id)) {
            return txn;
        }
    }
    return NULL;
}

/* Returns a malloc'd description of the JSON-RPC "error" member 'error'. */
static char *
describe_rpc_error(const json_t *error)
{
    const char *s = json_string_value(error);
    if (s) {
        return xstrdup(s);
    }
    const char *e = json_string_value(json_object_get(error, "error"));
    const char *d = json_string_value(json_object_get(error, "details"));
    if (e) {
        return xasprintf("%s%s%s", e, d ? ": " : "", d ? d : "");
    }
    char *dump = json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY);
    return dump ? dump : xstrdup("error");
}

static void
handle_txn_reply(struct ovsdb_replica *r, struct replica_txn *txn,
                 const json_t *msg, enum jsonrpc_msg_type type)
{
    list_remove(&txn->node);
    if (type == JSONRPC_ERROR) {
        char *why = describe_rpc_error(jsonrpc_msg_error(msg));
        r->stats.n_txn_failed++;
        txn_complete(txn, NULL, why);
        free(why);
        return;
    }

    const json_t *result = jsonrpc_msg_result(msg);
    char *why;
    int error = ovsdb_msg_parse_transact_reply(result, txn->n_ops, NULL,
                                               &why);
    if (!error) {
        txn_complete(txn, result, NULL);
    } else {
        r->stats.n_txn_failed++;
        if (error != OVSDB_MSG_E_TXN_ERROR) {
            r->stats.n_bad_messages++;
            VLOG_WARN_RL(&proto_rl, "%s: malformed transact reply: %s",
                         r->db_name, why);
        }
        txn_complete(txn, error == OVSDB_MSG_E_TXN_ERROR ? result : NULL,
                     why);
    }
    free(why);
}

/* ----------------------------------------------------------------------
 * Session.
 */

static void
set_state(struct ovsdb_replica *r, enum replica_state state)
{
    if ((r->state == RS_SYNCED) != (state == RS_SYNCED)) {
        r->seqno++;
    }
    r->state = state;
}

static void
reset_requests(struct ovsdb_replica *r)
{
    json_decref(r->request_id);
    r->request_id = NULL;
    json_decref(r->monitor_id);
    r->monitor_id = NULL;
}

/* Sends 'method' with 'params' (stolen) as the replica's one outstanding
 * sync request and moves to 'state'.  On a send failure goes back to
 * RS_IDLE (the next run starts over if still connected). */
static void
send_sync_request(struct ovsdb_replica *r, const char *method,
                  json_t *params, enum replica_state state)
{
    json_decref(r->request_id);
    json_t *request = jsonrpc_create_request(method, params, &r->request_id);
    int error = jsonrpc_session_send(r->session, request);
    if (error) {
        VLOG_WARN_RL(&conn_rl, "%s: sending %s failed: %s", r->db_name,
                     method, strerror(error));
        reset_requests(r);
        set_state(r, RS_IDLE);
    } else {
        set_state(r, state);
    }
}

static void
start_sync(struct ovsdb_replica *r)
{
    reset_requests(r);
    send_sync_request(r, "get_schema",
                      ovsdb_msg_get_schema_params(r->db_name), RS_SCHEMA);
}

static void
schedule_retry(struct ovsdb_replica *r, const char *what, const char *why)
{
    VLOG_WARN_RL(&retry_rl, "%s: %s failed (%s), retrying in %d ms",
                 r->db_name, what, why, r->retry_backoff);
    r->stats.n_monitor_errors++;
    reset_requests(r);
    set_state(r, RS_RETRY);
    r->retry_at = time_msec() + r->retry_backoff;
    r->retry_backoff = (r->retry_backoff >= r->max_backoff / 2
                        ? r->max_backoff : r->retry_backoff * 2);
}

/* Marks which declared tables and columns the schema 'schema' has and
 * sends the monitor request for those. */
static void
send_monitor(struct ovsdb_replica *r)
{
    json_t *requests = json_object();

    for (size_t i = 0; i < r->n_tables; i++) {
        struct ovsdb_replica_table *t = r->tables[i];
        const char **names = xmalloc(t->n_columns * sizeof *names);
        size_t n = 0;

        t->in_schema = ovsdb_msg_schema_has_column(r->schema, t->name, NULL);
        if (!t->in_schema && !t->warned) {
            VLOG_WARN("%s: server has no table %s", r->db_name, t->name);
        }
        t->warned = !t->in_schema;
        for (size_t j = 0; j < t->n_columns; j++) {
            struct ovsdb_replica_column *c = &t->columns[j];
            c->in_schema = ovsdb_msg_schema_has_column(r->schema, t->name,
                                                       c->name);
            if (c->in_schema) {
                names[n++] = c->name;
            } else if (t->in_schema && !c->warned) {
                VLOG_WARN("%s: server has no column %s.%s", r->db_name,
                          t->name, c->name);
            }
            c->warned = t->in_schema && !c->in_schema;
        }
        if (t->in_schema) {
            /* With no usable column this asks for all columns: the rows
             * appear, without columns (filter_columns() drops the rest). */
            ovsdb_msg_monitor_requests_add(requests, t->name, names, n);
        }
        free(names);
    }

    json_decref(r->monitor_id);
    r->monitor_id = json_integer(++r->monitor_serial);
    send_sync_request(r, "monitor",
                      ovsdb_msg_monitor_params(r->db_name,
                                               json_incref(r->monitor_id),
                                               requests),
                      RS_MONITOR);
}

/* Replaces the current monitor with a fresh one, for a full resync on the
 * same connection. */
static void
resync(struct ovsdb_replica *r)
{
    if (r->monitor_id) {
        json_t *cancel = jsonrpc_create_request(
            "monitor_cancel",
            ovsdb_msg_monitor_cancel_params(json_incref(r->monitor_id)),
            NULL);
        jsonrpc_session_send(r->session, cancel);
    }
    send_monitor(r);
}

static void
handle_update(struct ovsdb_replica *r, const json_t *msg)
{
    const json_t *monitor_id, *updates;

    if (ovsdb_msg_parse_update_params(jsonrpc_msg_params(msg), &monitor_id,
                                      &updates)) {
        r->stats.n_bad_messages++;
        VLOG_WARN_RL(&proto_rl, "%s: malformed \"update\" params",
                     r->db_name);
        return;
    }
    if (r->state != RS_SYNCED || !r->monitor_id
        || !json_equal((json_t *) monitor_id, r->monitor_id)) {
        return;                 /* From a monitor we replaced. */
    }
    int error = ovsdb_replica_apply_updates(r, updates, false);
    if (error) {
        VLOG_WARN_RL(&proto_rl, "%s: malformed update (%s), resyncing",
                     r->db_name, ovsdb_msg_strerror(error));
        resync(r);
    }
}

static void
handle_sync_reply(struct ovsdb_replica *r, const json_t *msg,
                  enum jsonrpc_msg_type type)
{
    json_decref(r->request_id);
    r->request_id = NULL;

    const char *what = r->state == RS_SCHEMA ? "get_schema" : "monitor";
    if (type == JSONRPC_ERROR) {
        char *why = describe_rpc_error(jsonrpc_msg_error(msg));
        schedule_retry(r, what, why);
        free(why);
        return;
    }

    const json_t *result = jsonrpc_msg_result(msg);
    if (r->state == RS_SCHEMA) {
        if (!json_is_object(result)
            || !json_is_object(json_object_get(result, "tables"))) {
            r->stats.n_bad_messages++;
            schedule_retry(r, what, "malformed schema");
            return;
        }
        json_decref(r->schema);
        r->schema = json_incref((json_t *) result);
        send_monitor(r);
    } else {
        int error = ovsdb_replica_apply_updates(r, result, true);
        if (error) {
            schedule_retry(r, what, ovsdb_msg_strerror(error));
            return;
        }
        r->stats.n_syncs++;
        r->retry_backoff = r->min_backoff;
        set_state(r, RS_SYNCED);
        VLOG_INFO("%s: synced with %s", r->db_name,
                  jsonrpc_session_get_name(r->session));
    }
}

static void
handle_msg(struct ovsdb_replica *r, const json_t *msg)
{
    const char *why = NULL;
    enum jsonrpc_msg_type type = jsonrpc_msg_classify(msg, &why);

    switch (type) {
    case JSONRPC_NOTIFY:
        if (!strcmp(jsonrpc_msg_method(msg), "update")) {
            handle_update(r, msg);
        }
        /* Other notifications (e.g. "update2", "locked") are not ours. */
        break;

    case JSONRPC_REPLY:
    case JSONRPC_ERROR: {
        const json_t *id = jsonrpc_msg_id(msg);
        if (r->request_id && jsonrpc_id_equal(r->request_id, id)) {
            handle_sync_reply(r, msg, type);
        } else {
            struct replica_txn *txn = find_sent_txn(r, id);
            if (txn) {
                handle_txn_reply(r, txn, msg, type);
            }
            /* Else: e.g. the reply to a monitor_cancel, or to a cancelled
             * transaction. */
        }
        break;
    }

    case JSONRPC_REQUEST:
        /* ovsdb-server sends no requests but "echo", which the session
         * answers. */
        VLOG_DBG("%s: ignoring request \"%s\"", r->db_name,
                 jsonrpc_msg_method(msg));
        break;

    case JSONRPC_INVALID:
    default:
        r->stats.n_bad_messages++;
        VLOG_WARN_RL(&proto_rl, "%s: invalid JSON-RPC message: %s",
                     r->db_name, why ? why : "?");
        break;
    }
}

void
ovsdb_replica_connect(struct ovsdb_replica *r, const char *remote)
{
    if (r->session) {
        jsonrpc_session_close(r->session);
        fail_sent_txns(r, "connection closed");
    }
    reset_requests(r);
    set_state(r, RS_IDLE);
    r->session = jsonrpc_session_open(remote, true);
    jsonrpc_session_set_backoff(r->session, r->min_backoff, r->max_backoff);
    r->session_seqno = jsonrpc_session_get_seqno(r->session);
}

void
ovsdb_replica_set_backoff(struct ovsdb_replica *r, int min_backoff,
                          int max_backoff)
{
    r->min_backoff = min_backoff > 0 ? min_backoff : 1;
    r->max_backoff = max_backoff > r->min_backoff ? max_backoff
                                                  : r->min_backoff;
    r->retry_backoff = r->min_backoff;
    if (r->session) {
        jsonrpc_session_set_backoff(r->session, min_backoff, max_backoff);
    }
}

void
ovsdb_replica_force_reconnect(struct ovsdb_replica *r)
{
    if (r->session) {
        jsonrpc_session_force_reconnect(r->session);
    }
}

bool
ovsdb_replica_is_connected(const struct ovsdb_replica *r)
{
    return r->session && jsonrpc_session_is_connected(r->session);
}

bool
ovsdb_replica_is_synced(const struct ovsdb_replica *r)
{
    return r->state == RS_SYNCED && ovsdb_replica_is_connected(r);
}

/* Notices a connection or disconnection of the session since the last
 * check: transactions in flight fail and a new connection resyncs. */
static void
check_connection(struct ovsdb_replica *r)
{
    unsigned int seqno = jsonrpc_session_get_seqno(r->session);
    if (seqno == r->session_seqno) {
        return;
    }
    r->session_seqno = seqno;
    fail_sent_txns(r, "connection lost");
    reset_requests(r);
    set_state(r, RS_IDLE);
    r->retry_backoff = r->min_backoff;
    if (jsonrpc_session_is_connected(r->session)) {
        r->stats.n_connects++;
        VLOG_INFO("%s: connected to %s", r->db_name,
                  jsonrpc_session_get_name(r->session));
    } else {
        VLOG_INFO_RL(&conn_rl, "%s: disconnected from %s", r->db_name,
                     jsonrpc_session_get_name(r->session));
    }
}

void
ovsdb_replica_run(struct ovsdb_replica *r)
{
    r->more_msgs = false;
    if (r->session) {
        jsonrpc_session_run(r->session);
        check_connection(r);

        if (jsonrpc_session_is_connected(r->session)) {
            if (r->state == RS_RETRY && time_msec() >= r->retry_at) {
                set_state(r, RS_IDLE);
            }
            if (r->state == RS_IDLE) {
                start_sync(r);
            }
            for (int i = 0; i < MAX_MSGS_PER_RUN; i++) {
                json_t *msg = jsonrpc_session_recv(r->session);
                if (!msg) {
                    break;
                }
                handle_msg(r, msg);
                json_decref(msg);
                if (i == MAX_MSGS_PER_RUN - 1) {
                    r->more_msgs = true;
                }
            }
            /* Receiving or sending may have found the connection gone. */
            check_connection(r);
        }
    }
    report_failures(r);
}

void
ovsdb_replica_wait(struct ovsdb_replica *r)
{
    if (r->session) {
        jsonrpc_session_wait(r->session);
        jsonrpc_session_recv_wait(r->session);
        if (r->state == RS_RETRY) {
            poll_timer_wait_until(r->retry_at);
        }
    }
    if (r->more_msgs) {
        poll_immediate_wake();
    }

    const struct replica_txn *txn;
    LIST_FOR_EACH (txn, node, &r->txns) {
        if (txn->fail) {
            poll_immediate_wake();
            break;
        }
    }
}
