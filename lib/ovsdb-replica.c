/* ovsdb-replica: a minimal OVSDB IDL.  See ovsdb-replica.h. */

#include <config.h>
#include "ovsdb-replica.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <unistd.h>

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
    struct ovsdb_type stype;    /* Type for defaults and diffs: the
                                 * schema's, else 'type'. */
};

struct ovsdb_replica_row {
    struct hmap_node hmap_node; /* In table->by_uuid. */
    struct list node;          /* In table->rows, unless deleted. */
    struct list track_node;    /* In table->track, if tracked. */
    struct hmap_node index_node; /* In table->by_index, if 'index_key'. */
    char *index_key;            /* Value of the table's index column, NULL
                                 * if not indexed (deleted, no index, or a
                                 * value that is not one string). */
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
    char *index_column;         /* Column of 'by_index', or NULL. */
    struct hmap by_index;       /* Live rows by 'index_column' value. */
    size_t n_live;              /* Rows in 'rows'. */
    struct list rows;
    struct list track;

    /* Conditions (NULL means [true]), as ovsdb-cs: 'cond_ack' is what the
     * server applies, 'cond_req' was sent in a monitor_cond_change not yet
     * acknowledged, 'cond_new' is yet to be sent ('cond_new_set' tells a
     * pending NULL from none). */
    json_t *cond_ack;
    json_t *cond_req;
    json_t *cond_new;
    bool cond_req_set;
    bool cond_new_set;
    uint64_t n_row_updates;
};

enum replica_state {
    RS_IDLE,                    /* Not connected, or about to (re)sync. */
    RS_SERVER_SCHEMA,           /* get_schema of _Server sent. */
    RS_SERVER_MONITOR,          /* monitor of _Server sent. */
    RS_SCHEMA,                  /* get_schema sent. */
    RS_MONITOR,                 /* monitor (any version) sent. */
    RS_SYNCED,                  /* Snapshot applied, following updates. */
    RS_RETRY,                   /* Refused; retrying at 'retry_at'. */
    RS_REJECTED                 /* Server unsuitable: moving to the next
                                 * remote at 'retry_at'. */
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

    /* Clustering (see ovsdb-cs). */
    bool leader_only;
    bool shuffle;
    int probe_interval;
    struct ovsdb_replica *server; /* Copy of _Server's Database table. */
    json_t *server_monitor_id;  /* While monitoring _Server. */
    bool no_server_db;          /* This connection has no usable _Server. */
    int max_version;            /* Highest monitor version to try on this
                                 * connection. */
    int sent_version;           /* Version of the monitor request sent. */
    int monitor_version;        /* Version of the current monitor. */
    char last_id[OVSDB_UUID_LEN + 1]; /* Last txn id seen, or "". */
    uint64_t min_index;         /* Highest Raft index accepted. */
    bool leader_known;          /* 'leader' valid for this connection. */
    bool leader;
    unsigned int n_rejects;     /* Servers rejected since last synced. */
    char *prev_remote;          /* Remote of the previous connection. */
    json_t *old_monitor_id;     /* Id before a pending cond change. */
    bool cond_change_sent;      /* 'request_id' is a monitor_cond_change. */

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
    r->shuffle = true;
    r->max_version = 3;
    list_init(&r->txns);
    return r;
}

/* Takes 'row' out of its table's index. */
static void
row_unindex(struct ovsdb_replica_row *row)
{
    if (row->index_key) {
        hmap_remove(&row->table->by_index, &row->index_node);
        free(row->index_key);
        row->index_key = NULL;
    }
}

/* Puts live 'row' in its table's index under its index column's current
 * value, or takes it out (the value is not one string). */
static void
row_index(struct ovsdb_replica_row *row)
{
    struct ovsdb_replica_table *t = row->table;
    const char *key = NULL;

    if (!t->index_column) {
        return;
    }
    if (row->columns
        && ovsdb_datum_get_string(json_object_get(row->columns,
                                                  t->index_column), &key)) {
        key = NULL;
    }
    if (key && row->index_key && !strcmp(key, row->index_key)) {
        return;
    }
    row_unindex(row);
    if (key) {
        row->index_key = xstrdup(key);
        hmap_insert(&t->by_index, &row->index_node,
                    hash_string_nocase(key));
    }
}

static void
row_free(struct ovsdb_replica_row *row)
{
    free(row->index_key);
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
    hmap_destroy(&t->by_index);
    free(t->index_column);
    for (size_t i = 0; i < t->n_columns; i++) {
        free(t->columns[i].name);
    }
    free(t->columns);
    free(t->name);
    json_decref(t->cond_ack);
    json_decref(t->cond_req);
    json_decref(t->cond_new);
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
    json_decref(r->server_monitor_id);
    json_decref(r->old_monitor_id);
    ovsdb_replica_destroy(r->server);
    free(r->prev_remote);
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
    hmap_init(&t->by_index);
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
    c->stype = c->type;
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

void
ovsdb_replica_add_index(struct ovsdb_replica_table *t, const char *column)
{
    struct ovsdb_replica_row *row;

    if (t->index_column && !strcmp(t->index_column, column)) {
        return;
    }
    HMAP_FOR_EACH_SAFE (row, hmap_node, &t->by_uuid) {
        row_unindex(row);
    }
    free(t->index_column);
    t->index_column = xstrdup(column);
    HMAP_FOR_EACH_SAFE (row, hmap_node, &t->by_uuid) {
        if (!row->deleted) {
            row_index(row);
        }
    }
}

/* Returns the first row at or after 'node' in 'by_index' whose key is
 * 'key', or NULL. */
static const struct ovsdb_replica_row *
index_scan(const struct hmap_node *node, const char *key)
{
    for (; node; node = hmap_next_with_hash(node)) {
        const struct ovsdb_replica_row *row
            = HMAP_ELEM(node, struct ovsdb_replica_row, index_node);
        if (!strcmp(row->index_key, key)) {
            return row;
        }
    }
    return NULL;
}

const struct ovsdb_replica_row *
ovsdb_replica_index_first(const struct ovsdb_replica_table *t,
                          const char *value)
{
    if (!t || !t->index_column || !value) {
        return NULL;
    }
    return index_scan(hmap_first_with_hash(&t->by_index,
                                           hash_string_nocase(value)),
                      value);
}

const struct ovsdb_replica_row *
ovsdb_replica_index_next(const struct ovsdb_replica_row *row)
{
    return index_scan(hmap_next_with_hash(&row->index_node), row->index_key);
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
    stats->monitor_version = (r->state == RS_SYNCED ? r->monitor_version
                              : 0);
    stats->n_bytes_received = (r->session
                               ? jsonrpc_session_get_received_bytes(
                                   r->session)
                               : 0);
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
    row_index(row);
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
    row_unindex(row);
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
filter_columns__(struct ovsdb_replica_table *t, const char *uuid,
                 const json_t *new, const json_t *base, bool defaults)
{
    struct ovsdb_replica *r = t->replica;
    json_t *cols = base ? json_copy((json_t *) base) : json_object();
    bool bad = false;

    for (size_t i = 0; i < t->n_columns; i++) {
        const struct ovsdb_replica_column *c = &t->columns[i];
        json_t *value = json_object_get(new, c->name);
        if (!value) {
            /* Version 2 leaves out columns with default values. */
            json_t *dflt = (defaults && c->in_schema
                            ? ovsdb_datum_default(&c->stype) : NULL);
            if (dflt) {
                json_object_set_new(cols, c->name, dflt);
            }
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

static json_t *
filter_columns(struct ovsdb_replica_table *t, const char *uuid,
               const json_t *new, const json_t *base)
{
    return filter_columns__(t, uuid, new, base, false);
}

static void delete_unseen(struct ovsdb_replica *);

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
    t->n_row_updates++;
    r->stats.n_row_updates++;
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
        delete_unseen(r);
    }
    return 0;
}

/* Deletes the rows of every table that the snapshot just applied (of
 * generation r->generation) did not contain. */
static void
delete_unseen(struct ovsdb_replica *r)
{
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

struct apply2_ctx {
    struct ovsdb_replica *r;
    bool initial;
    bool inconsistent;          /* Information was lost: resync. */
};

/* Applies the column diffs 'diff' to 'row' (live) and returns the new
 * columns (a new reference). */
static json_t *
apply_diffs(struct apply2_ctx *ctx, struct ovsdb_replica_row *row,
            const json_t *diff)
{
    struct ovsdb_replica_table *t = row->table;
    struct ovsdb_replica *r = ctx->r;
    json_t *cols = json_copy(row->columns);
    bool bad = false;

    for (size_t i = 0; i < t->n_columns; i++) {
        const struct ovsdb_replica_column *c = &t->columns[i];
        const json_t *d = json_object_get(diff, c->name);
        if (!d) {
            continue;
        }
        json_t *new;
        int error = ovsdb_datum_apply_diff(json_object_get(cols, c->name), d,
                                           &c->stype, &new);
        if (!error) {
            error = ovsdb_datum_check(new, &c->type, false);
            if (error) {
                json_decref(new);
            }
        } else {
            /* The diff does not fit what we have: we lost track. */
            ctx->inconsistent = true;
        }
        if (error) {
            VLOG_WARN_RL(&bad_row_rl, "%s: %s row %s column %s: %s",
                         r->db_name, t->name, row->uuid, c->name,
                         ovsdb_msg_strerror(error));
            json_object_del(cols, c->name);
            bad = true;
        } else {
            json_object_set_new(cols, c->name, new);
        }
    }
    if (bad) {
        r->stats.n_bad_rows++;
    }
    return cols;
}

static void
apply_row2(const char *table, const char *uuid,
           enum ovsdb_row_update2_kind kind, const json_t *new, void *ctx_)
{
    struct apply2_ctx *ctx = ctx_;
    struct ovsdb_replica *r = ctx->r;
    struct ovsdb_replica_table *t = ovsdb_replica_get_table(r, table);

    if (!t) {
        return;
    }
    t->n_row_updates++;
    r->stats.n_row_updates++;
    struct ovsdb_replica_row *row = table_lookup(t, uuid);
    bool live = row && !row->deleted;

    switch (kind) {
    case OVSDB_RU2_INITIAL:
    case OVSDB_RU2_INSERT:
        if (kind == OVSDB_RU2_INSERT && live) {
            r->stats.n_inconsistent++;      /* Insert existing. */
        }
        row = row_set(t, row, uuid, filter_columns__(t, uuid, new, NULL,
                                                     true));
        row->generation = r->generation;
        break;

    case OVSDB_RU2_DELETE:
        if (!live || ctx->initial) {
            r->stats.n_inconsistent++;
        } else {
            row_delete(row);
        }
        break;

    case OVSDB_RU2_MODIFY:
    default:
        if (!live || ctx->initial) {
            /* The diff cannot be applied to a row we do not have. */
            r->stats.n_inconsistent++;
            ctx->inconsistent = true;
            break;
        }
        row = row_set(t, row, uuid, apply_diffs(ctx, row, new));
        row->generation = r->generation;
        break;
    }
}

int
ovsdb_replica_apply_updates2(struct ovsdb_replica *r, const json_t *updates,
                             bool initial)
{
    struct apply2_ctx ctx = { .r = r, .initial = initial };

    r->generation++;
    int error = ovsdb_msg_parse_table_updates2(updates, apply_row2, &ctx);
    if (error) {
        r->stats.n_bad_updates++;
        return error;
    }
    if (initial) {
        delete_unseen(r);
    }
    return ctx.inconsistent ? OVSDB_REPLICA_E_INCONSISTENT : 0;
}

void
ovsdb_replica_set_schema(struct ovsdb_replica *r, const json_t *schema)
{
    if (schema != r->schema) {
        json_decref(r->schema);
        r->schema = json_incref((json_t *) schema);
    }
    for (size_t i = 0; i < r->n_tables; i++) {
        struct ovsdb_replica_table *t = r->tables[i];

        t->in_schema = ovsdb_msg_schema_has_column(r->schema, t->name, NULL);
        if (!t->in_schema && !t->warned) {
            VLOG_WARN("%s: server has no table %s", r->db_name, t->name);
        }
        t->warned = !t->in_schema;
        for (size_t j = 0; j < t->n_columns; j++) {
            struct ovsdb_replica_column *c = &t->columns[j];
            c->in_schema = ovsdb_msg_schema_has_column(r->schema, t->name,
                                                       c->name);
            if (!c->in_schema && t->in_schema && !c->warned) {
                VLOG_WARN("%s: server has no column %s.%s", r->db_name,
                          t->name, c->name);
            }
            c->warned = t->in_schema && !c->in_schema;
            if (!ovsdb_msg_schema_column_type(r->schema, t->name, c->name,
                                              &c->stype)) {
                c->stype = c->type;
            }
        }
    }
}

/* ----------------------------------------------------------------------
 * The _Server database.
 */

static const char *const server_columns[] = {
    "name", "model", "connected", "leader", "schema", "cid", "index",
};
#define N_SERVER_COLUMNS (sizeof server_columns / sizeof server_columns[0])

static struct ovsdb_replica *
server_replica(struct ovsdb_replica *r)
{
    if (!r->server) {
        r->server = ovsdb_replica_create("_Server");
        struct ovsdb_replica_table *t
            = ovsdb_replica_add_table(r->server, "Database");
        for (size_t i = 0; i < N_SERVER_COLUMNS; i++) {
            ovsdb_replica_add_column(t, server_columns[i], NULL);
        }
    }
    return r->server;
}

int
ovsdb_replica_apply_server_updates(struct ovsdb_replica *r,
                                   const json_t *updates, bool initial)
{
    struct ovsdb_replica *server = server_replica(r);
    int error = ovsdb_replica_apply_updates(server, updates, initial);
    ovsdb_replica_track_clear(server);
    return error;
}

/* The same for version 2 <table-updates2>: the session monitors _Server
 * with "monitor_cond", as Open vSwitch's ovsdb-cs does, so that a commit,
 * which changes the row's "index", sends that column only, not the whole
 * row with the database's schema in it. */
static int
apply_server_updates2(struct ovsdb_replica *r, const json_t *updates,
                      bool initial)
{
    struct ovsdb_replica *server = server_replica(r);
    int error = ovsdb_replica_apply_updates2(server, updates, initial);
    ovsdb_replica_track_clear(server);
    return error;
}

const char *
ovsdb_replica_server_status_name(enum ovsdb_replica_server_status status)
{
    switch (status) {
    case OVSDB_REPLICA_SERVER_OK:
        return "ok";
    case OVSDB_REPLICA_SERVER_NO_DB:
        return "server does not have the database";
    case OVSDB_REPLICA_SERVER_NOT_JOINED:
        return "clustered database server has not yet joined cluster";
    case OVSDB_REPLICA_SERVER_DISCONNECTED:
        return "clustered database server is disconnected from cluster";
    case OVSDB_REPLICA_SERVER_NOT_LEADER:
        return "clustered database server is not cluster leader";
    case OVSDB_REPLICA_SERVER_STALE:
        return "clustered database server has stale data";
    case OVSDB_REPLICA_SERVER_NO_SCHEMA:
        return "missing database schema";
    default:
        return "?";
    }
}

static const struct ovsdb_replica_row *
server_row(const struct ovsdb_replica *r)
{
    if (!r->server) {
        return NULL;
    }
    return ovsdb_replica_find_by_string(
        ovsdb_replica_get_table(r->server, "Database"), "name", r->db_name);
}

static bool
server_bool(const struct ovsdb_replica_row *row, const char *column,
            bool dflt)
{
    bool value, present;
    const json_t *datum = ovsdb_replica_row_get(row, column);
    if (!datum || ovsdb_datum_get_boolean(datum, &value, &present)
        || !present) {
        return dflt;
    }
    return value;
}

enum ovsdb_replica_server_status
ovsdb_replica_check_server(struct ovsdb_replica *r, bool accept)
{
    const struct ovsdb_replica_row *row = server_row(r);
    if (!row) {
        return OVSDB_REPLICA_SERVER_NO_DB;
    }
    const char *model = ovsdb_replica_row_get_string(row, "model");
    const char *schema = ovsdb_replica_row_get_string(row, "schema");
    bool connected = server_bool(row, "connected", false);

    if (model && !strcmp(model, "clustered")) {
        bool leader = server_bool(row, "leader", false);
        int64_t index = 0;
        bool present;
        const json_t *datum = ovsdb_replica_row_get(row, "index");
        if (!datum || ovsdb_datum_get_integer(datum, &index, &present)
            || !present || index < 0) {
            index = 0;
        }
        if (!schema || !*schema) {
            return OVSDB_REPLICA_SERVER_NOT_JOINED;
        } else if (!connected) {
            return OVSDB_REPLICA_SERVER_DISCONNECTED;
        } else if (r->leader_only && !leader) {
            return OVSDB_REPLICA_SERVER_NOT_LEADER;
        } else if ((uint64_t) index < r->min_index) {
            return OVSDB_REPLICA_SERVER_STALE;
        }
        if (accept) {
            r->min_index = index;
        }
        return OVSDB_REPLICA_SERVER_OK;
    } else if (!schema || !*schema) {
        return OVSDB_REPLICA_SERVER_NO_SCHEMA;
    }
    return OVSDB_REPLICA_SERVER_OK;
}

/* ----------------------------------------------------------------------
 * Conditions.
 */

/* Returns true if 'cond' (NULL: [true]) selects all rows. */
static bool
cond_is_true(const json_t *cond)
{
    if (!cond) {
        return true;
    }
    size_t i;
    json_t *clause;
    json_array_foreach (cond, i, clause) {
        if (!json_is_true(clause)) {
            return false;
        }
    }
    return true;
}

static bool
cond_equal(const json_t *a, const json_t *b)
{
    if (cond_is_true(a) || cond_is_true(b)) {
        return cond_is_true(a) && cond_is_true(b);
    }
    return json_equal((json_t *) a, (json_t *) b);
}

/* The latest condition asked for 't' (NULL: [true]). */
static const json_t *
cond_latest(const struct ovsdb_replica_table *t)
{
    return (t->cond_new_set ? t->cond_new
            : t->cond_req_set ? t->cond_req
            : t->cond_ack);
}

int
ovsdb_replica_set_condition(struct ovsdb_replica_table *t,
                            const json_t *cond)
{
    if (cond && !json_is_array(cond)) {
        return EINVAL;
    }
    if (cond_equal(cond, cond_latest(t))) {
        return 0;
    }
    json_decref(t->cond_new);
    t->cond_new = cond_is_true(cond) ? NULL : json_deep_copy(cond);
    t->cond_new_set = true;
    return 0;
}

bool
ovsdb_replica_cond_pending(const struct ovsdb_replica *r)
{
    for (size_t i = 0; i < r->n_tables; i++) {
        if (r->tables[i]->cond_new_set || r->tables[i]->cond_req_set) {
            return true;
        }
    }
    return false;
}

uint64_t
ovsdb_replica_table_n_row_updates(const struct ovsdb_replica_table *t)
{
    return t->n_row_updates;
}

const char *
ovsdb_replica_get_last_id(const struct ovsdb_replica *r)
{
    return r->last_id[0] ? r->last_id : NULL;
}

/* Moves 'from' (with its "set" flag) into 'to'. */
static void
cond_move(json_t **to, bool *to_set, json_t **from, bool *from_set)
{
    json_decref(*to);
    *to = *from;
    *to_set = true;
    *from = NULL;
    *from_set = false;
}

/* On a monitor restart, as ovsdb_cs_db_sync_condition(): without a last
 * transaction id the new monitor may use the latest conditions; with one,
 * it must use the acknowledged ones (what the replica's rows reflect) and
 * a cond change follows.  A cond change in flight makes the replica's
 * contents uncertain: forget the last id. */
static void
cond_sync(struct ovsdb_replica *r)
{
    bool ack_all = !r->last_id[0];
    for (size_t i = 0; i < r->n_tables; i++) {
        struct ovsdb_replica_table *t = r->tables[i];
        if (ack_all) {
            bool dummy = false;
            if (t->cond_new_set) {
                cond_move(&t->cond_req, &t->cond_req_set, &t->cond_new,
                          &t->cond_new_set);
            }
            if (t->cond_req_set) {
                cond_move(&t->cond_ack, &dummy, &t->cond_req,
                          &t->cond_req_set);
            }
        } else if (t->cond_req_set) {
            if (t->cond_new_set) {
                json_decref(t->cond_req);
                t->cond_req = NULL;
                t->cond_req_set = false;
            } else {
                cond_move(&t->cond_new, &t->cond_new_set, &t->cond_req,
                          &t->cond_req_set);
            }
            r->last_id[0] = '\0';
        }
    }
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
    json_decref(r->old_monitor_id);
    r->old_monitor_id = NULL;
    json_decref(r->server_monitor_id);
    r->server_monitor_id = NULL;
    r->cond_change_sent = false;
    r->monitor_version = 0;
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
        const char *remote = jsonrpc_session_get_name(r->session);
        VLOG_WARN_RL(&conn_rl, "%s: sending %s failed: %s%s", r->db_name,
                     method, strerror(error),
                     remote && !strncmp(remote, "ssl:", 4)
                     && (error == EPIPE || error == ECONNRESET
                         || error == EPROTO)
                     ? " (the server may have refused this TLS "
                       "certificate: is it signed by the CA the server "
                       "trusts?)" : "");
        reset_requests(r);
        set_state(r, RS_IDLE);
    } else {
        set_state(r, state);
    }
}

static void
send_get_schema(struct ovsdb_replica *r)
{
    send_sync_request(r, "get_schema",
                      ovsdb_msg_get_schema_params(r->db_name), RS_SCHEMA);
}

static void
start_sync(struct ovsdb_replica *r)
{
    reset_requests(r);
    if (r->no_server_db) {
        send_get_schema(r);
    } else {
        send_sync_request(r, "get_schema",
                          ovsdb_msg_get_schema_params("_Server"),
                          RS_SERVER_SCHEMA);
    }
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

/* Drops the connection to an unsuitable server ('status') so that the
 * session tries the next remote: at once if the replica was synced (as
 * ovsdb-cs, it must find a good server quickly) or other remotes have not
 * been tried yet, otherwise after the retry backoff. */
static void
reject_server(struct ovsdb_replica *r,
              enum ovsdb_replica_server_status status)
{
    bool was_synced = r->state == RS_SYNCED;
    size_t n_remotes = jsonrpc_session_get_n_remotes(r->session);

    VLOG_INFO("%s: %s: %s; trying another server", r->db_name,
              jsonrpc_session_get_name(r->session),
              ovsdb_replica_server_status_name(status));
    r->stats.n_server_rejects++;
    if (status == OVSDB_REPLICA_SERVER_NOT_LEADER) {
        r->stats.n_not_leader++;
    } else if (status == OVSDB_REPLICA_SERVER_NO_DB) {
        /* As a refused get_schema on servers without _Server. */
        r->stats.n_monitor_errors++;
    }
    reset_requests(r);
    set_state(r, RS_REJECTED);
    if (was_synced || ++r->n_rejects < n_remotes) {
        if (was_synced) {
            r->n_rejects = 0;
            jsonrpc_session_reset_backoff(r->session);
        }
        r->retry_at = time_msec();
    } else {
        r->retry_at = time_msec() + r->retry_backoff;
        r->retry_backoff = (r->retry_backoff >= r->max_backoff / 2
                            ? r->max_backoff : r->retry_backoff * 2);
    }
}

/* Builds the monitor requests for the declared tables that the schema has,
 * for a monitor of 'version'. */
static json_t *
monitor_requests(struct ovsdb_replica *r, int version)
{
    json_t *requests = json_object();

    ovsdb_replica_set_schema(r, r->schema);
    for (size_t i = 0; i < r->n_tables; i++) {
        struct ovsdb_replica_table *t = r->tables[i];
        const char **names = xmalloc((t->n_columns + 1) * sizeof *names);
        size_t n = 0;

        for (size_t j = 0; j < t->n_columns; j++) {
            if (t->columns[j].in_schema) {
                names[n++] = t->columns[j].name;
            }
        }
        if (t->in_schema) {
            /* With no usable column this asks for all columns: the rows
             * appear, without columns (filter_columns() drops the rest). */
            if (version == 1) {
                ovsdb_msg_monitor_requests_add(requests, t->name, names, n);
            } else {
                json_t *where = (cond_is_true(t->cond_ack) ? NULL
                                 : json_deep_copy(t->cond_ack));
                ovsdb_msg_monitor_cond_requests_add(requests, t->name, names,
                                                    n, where);
            }
        }
        free(names);
    }
    return requests;
}

/* Sends the monitor request for the data, of the highest version the
 * connection may support. */
static void
send_monitor(struct ovsdb_replica *r)
{
    int version = r->max_version;
    json_t *requests = monitor_requests(r, version);
    const char *method;
    json_t *params;

    json_decref(r->monitor_id);
    r->monitor_id = json_integer(++r->monitor_serial);
    if (version == 1) {
        method = "monitor";
        params = ovsdb_msg_monitor_params(r->db_name,
                                          json_incref(r->monitor_id),
                                          requests);
    } else {
        method = version == 2 ? "monitor_cond" : "monitor_cond_since";
        params = ovsdb_msg_monitor_cond_params(
            r->db_name, json_incref(r->monitor_id), requests,
            version == 3 ? (r->last_id[0] ? r->last_id : OVSDB_UUID_ZERO)
                         : NULL);
    }
    r->sent_version = version;
    send_sync_request(r, method, params, RS_MONITOR);
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
    json_decref(r->request_id);
    r->request_id = NULL;
    json_decref(r->old_monitor_id);
    r->old_monitor_id = NULL;
    r->cond_change_sent = false;
    r->last_id[0] = '\0';
    cond_sync(r);
    if (r->monitor_version) {
        r->max_version = r->monitor_version;
    }
    r->monitor_version = 0;
    send_monitor(r);
}

/* Checks the _Server row of our database; on success, if the data
 * monitor is still to be set up, takes the schema from the row and sends
 * it.  Returns false if the server was rejected. */
static bool
check_server(struct ovsdb_replica *r)
{
    enum ovsdb_replica_server_status status
        = ovsdb_replica_check_server(r, true);
    const struct ovsdb_replica_row *row = server_row(r);
    if (row) {
        bool leader = server_bool(row, "leader", false);
        if (r->leader_known && leader != r->leader) {
            r->stats.n_leader_changes++;
        }
        r->leader_known = true;
        r->leader = leader;
    }
    if (status != OVSDB_REPLICA_SERVER_OK) {
        reject_server(r, status);
        return false;
    }

    if (r->state == RS_SERVER_MONITOR) {
        const char *text = ovsdb_replica_row_get_string(row, "schema");
        json_t *schema = text ? json_loads(text, 0, NULL) : NULL;
        if (json_is_object(schema)
            && json_is_object(json_object_get(schema, "tables"))) {
            ovsdb_replica_set_schema(r, schema);
            send_monitor(r);
        } else {
            send_get_schema(r);
        }
        json_decref(schema);
    }
    return true;
}

/* Sends a monitor_cond_change if conditions changed and the monitor can
 * take it (as ovsdb_cs_send_cond_change()). */
static void
send_cond_change(struct ovsdb_replica *r)
{
    if (r->state != RS_SYNCED || r->monitor_version < 2 || r->request_id
        || !ovsdb_replica_is_connected(r)) {
        return;
    }
    json_t *changes = NULL;
    for (size_t i = 0; i < r->n_tables; i++) {
        struct ovsdb_replica_table *t = r->tables[i];
        if (!t->cond_new_set) {
            continue;
        }
        if (t->in_schema) {
            if (!changes) {
                changes = json_object();
            }
            json_t *where = t->cond_new ? json_incref(t->cond_new)
                                        : json_pack("[b]", true);
            json_object_set_new(changes, t->name,
                                json_pack("[{so}]", "where", where));
        }
        cond_move(&t->cond_req, &t->cond_req_set, &t->cond_new,
                  &t->cond_new_set);
    }
    if (!changes) {
        /* Only tables the server lacks: nothing to ask. */
        for (size_t i = 0; i < r->n_tables; i++) {
            struct ovsdb_replica_table *t = r->tables[i];
            if (t->cond_req_set) {
                bool dummy;
                cond_move(&t->cond_ack, &dummy, &t->cond_req,
                          &t->cond_req_set);
            }
        }
        return;
    }

    json_t *new_id = json_integer(++r->monitor_serial);
    json_t *params = ovsdb_msg_monitor_cond_change_params(
        json_incref(r->monitor_id), json_incref(new_id), changes);
    json_t *request = jsonrpc_create_request("monitor_cond_change", params,
                                             &r->request_id);
    json_decref(r->old_monitor_id);
    r->old_monitor_id = r->monitor_id;
    r->monitor_id = new_id;
    r->cond_change_sent = true;
    if (jsonrpc_session_send(r->session, request)) {
        /* The connection is gone: check_connection() restarts. */
        json_decref(r->request_id);
        r->request_id = NULL;
    }
}

/* Applies 'updates' of monitor 'version' (1, 2 or 3); 'initial' for a
 * snapshot.  Returns 0, or an error: malformed (nothing applied) or
 * OVSDB_REPLICA_E_INCONSISTENT. */
static int
apply_version(struct ovsdb_replica *r, const json_t *updates, int version,
              bool initial)
{
    return (version == 1
            ? ovsdb_replica_apply_updates(r, updates, initial)
            : ovsdb_replica_apply_updates2(r, updates, initial));
}

static const char *
apply_error_name(int error)
{
    return (error == OVSDB_REPLICA_E_INCONSISTENT ? "inconsistent"
            : ovsdb_msg_strerror(error));
}

static void
handle_server_update(struct ovsdb_replica *r, const json_t *updates,
                     int version)
{
    int error = (version == 1
                 ? ovsdb_replica_apply_server_updates(r, updates, false)
                 : apply_server_updates2(r, updates, false));
    if (error) {
        r->stats.n_bad_messages++;
        VLOG_WARN_RL(&proto_rl, "%s: malformed _Server update (%s)",
                     r->db_name, ovsdb_msg_strerror(error));
        /* The check below still uses the last good contents. */
    }
    check_server(r);
}

static void
handle_update(struct ovsdb_replica *r, const json_t *msg, int version)
{
    const json_t *params = jsonrpc_msg_params(msg);
    const json_t *monitor_id, *updates;
    const char *last_id = NULL;
    int error;

    if (version == 1) {
        error = ovsdb_msg_parse_update_params(params, &monitor_id, &updates);
    } else {
        error = ovsdb_msg_parse_update3_params(params, version == 3,
                                               &monitor_id, &last_id,
                                               &updates);
    }
    if (error == OVSDB_MSG_E_BAD_PARAMS) {
        r->stats.n_bad_messages++;
        VLOG_WARN_RL(&proto_rl, "%s: malformed \"%s\" params", r->db_name,
                     jsonrpc_msg_method(msg));
        return;
    }

    if (r->server_monitor_id
        && json_equal((json_t *) monitor_id, r->server_monitor_id)) {
        if (!error) {
            handle_server_update(r, updates, version);
        } else {
            r->stats.n_bad_messages++;
        }
        return;
    }
    if (r->state != RS_SYNCED
        || !((r->monitor_id
              && json_equal((json_t *) monitor_id, r->monitor_id))
             || (r->old_monitor_id
                 && json_equal((json_t *) monitor_id, r->old_monitor_id)))) {
        return;                 /* From a monitor we replaced. */
    }
    if (!error) {
        error = apply_version(r, updates, version, false);
    } else {
        r->stats.n_bad_updates++;
    }
    if (error) {
        VLOG_WARN_RL(&proto_rl, "%s: %s update (%s), resyncing",
                     r->db_name,
                     error == OVSDB_REPLICA_E_INCONSISTENT ? "inconsistent"
                                                           : "malformed",
                     apply_error_name(error));
        resync(r);
        return;
    }
    r->stats.n_update_msgs++;
    if (last_id) {
        snprintf(r->last_id, sizeof r->last_id, "%s", last_id);
    }
}

/* The server cancelled one of our monitors (e.g. the database was
 * converted or removed): as ovsdb-cs, cancel the other one and start over
 * on the same connection. */
static void
handle_monitor_canceled(struct ovsdb_replica *r, const json_t *msg)
{
    const json_t *params = jsonrpc_msg_params(msg);
    const json_t *id = json_array_size(params) == 1
                       ? json_array_get(params, 0) : NULL;
    bool data = id && r->monitor_id && json_equal((json_t *) id,
                                                  r->monitor_id);
    bool server = id && r->server_monitor_id
                  && json_equal((json_t *) id, r->server_monitor_id);
    if (!data && !server) {
        return;
    }
    json_t *other = data ? r->server_monitor_id : r->monitor_id;
    if (other) {
        jsonrpc_session_send(r->session, jsonrpc_create_request(
                                 "monitor_cancel",
                                 ovsdb_msg_monitor_cancel_params(
                                     json_incref(other)), NULL));
    }
    VLOG_INFO("%s: %s monitor cancelled by the server, restarting",
              r->db_name, data ? "data" : "_Server");
    cond_sync(r);
    start_sync(r);
}

static bool
is_unknown_method(const json_t *error)
{
    const char *s = json_string_value(error);
    if (!s) {
        s = json_string_value(json_object_get(error, "error"));
    }
    return s && !strcmp(s, "unknown method");
}

/* The reply to the data monitor request. */
static void
handle_monitor_reply(struct ovsdb_replica *r, const json_t *msg,
                     enum jsonrpc_msg_type type)
{
    int version = r->sent_version;

    if (type == JSONRPC_ERROR) {
        if (version > 1 && is_unknown_method(jsonrpc_msg_error(msg))) {
            VLOG_INFO("%s: %s does not support %s, trying %s", r->db_name,
                      jsonrpc_session_get_name(r->session),
                      version == 3 ? "monitor_cond_since" : "monitor_cond",
                      version == 3 ? "monitor_cond" : "monitor");
            r->stats.n_monitor_fallbacks++;
            r->max_version = version - 1;
            send_monitor(r);
        } else {
            char *why = describe_rpc_error(jsonrpc_msg_error(msg));
            schedule_retry(r, "monitor", why);
            free(why);
        }
        return;
    }

    const json_t *result = jsonrpc_msg_result(msg);
    const json_t *updates = result;
    const char *last_id = NULL;
    bool found = false;
    if (version == 3) {
        int error = ovsdb_msg_parse_monitor_cond_since_reply(result, &found,
                                                             &last_id,
                                                             &updates);
        if (error) {
            r->stats.n_bad_messages++;
            r->last_id[0] = '\0';
            schedule_retry(r, "monitor_cond_since", "malformed reply");
            return;
        }
    }
    int error = apply_version(r, updates, version, !found);
    if (error == OVSDB_REPLICA_E_INCONSISTENT) {
        /* Resumed onto rows that do not fit: start from scratch. */
        r->monitor_version = version;
        set_state(r, RS_SYNCED);
        VLOG_WARN_RL(&proto_rl, "%s: inconsistent resume, resyncing",
                     r->db_name);
        resync(r);
        return;
    } else if (error) {
        r->last_id[0] = '\0';
        schedule_retry(r, "monitor", ovsdb_msg_strerror(error));
        return;
    }
    if (last_id) {
        snprintf(r->last_id, sizeof r->last_id, "%s", last_id);
    }
    if (found) {
        r->stats.n_resumes++;
    } else {
        r->stats.n_syncs++;
    }
    r->monitor_version = version;
    r->retry_backoff = r->min_backoff;
    r->n_rejects = 0;
    set_state(r, RS_SYNCED);
    VLOG_INFO("%s: %s with %s (%s)", r->db_name,
              found ? "resumed" : "synced",
              jsonrpc_session_get_name(r->session),
              version == 3 ? "monitor_cond_since"
              : version == 2 ? "monitor_cond" : "monitor");
}

static void
handle_cond_change_reply(struct ovsdb_replica *r, const json_t *msg,
                         enum jsonrpc_msg_type type)
{
    r->cond_change_sent = false;
    json_decref(r->old_monitor_id);
    r->old_monitor_id = NULL;
    if (type == JSONRPC_ERROR) {
        char *why = describe_rpc_error(jsonrpc_msg_error(msg));
        VLOG_WARN_RL(&proto_rl, "%s: monitor_cond_change failed (%s), "
                     "resyncing", r->db_name, why);
        free(why);
        r->stats.n_monitor_errors++;
        resync(r);
        return;
    }
    for (size_t i = 0; i < r->n_tables; i++) {
        struct ovsdb_replica_table *t = r->tables[i];
        if (t->cond_req_set) {
            bool dummy;
            cond_move(&t->cond_ack, &dummy, &t->cond_req, &t->cond_req_set);
        }
    }
    r->stats.n_cond_changes++;
    r->seqno++;
}

static void
handle_sync_reply(struct ovsdb_replica *r, const json_t *msg,
                  enum jsonrpc_msg_type type)
{
    json_decref(r->request_id);
    r->request_id = NULL;

    if (r->cond_change_sent) {
        handle_cond_change_reply(r, msg, type);
        return;
    }

    const json_t *result = jsonrpc_msg_result(msg);
    switch (r->state) {
    case RS_SERVER_SCHEMA:
        if (type == JSONRPC_ERROR
            || !ovsdb_msg_schema_has_column(result, "Database", NULL)) {
            /* No _Server (old server): skip the check. */
            r->no_server_db = true;
            send_get_schema(r);
        } else {
            const char *names[N_SERVER_COLUMNS];
            size_t n = 0;
            for (size_t i = 0; i < N_SERVER_COLUMNS; i++) {
                if (ovsdb_msg_schema_has_column(result, "Database",
                                                server_columns[i])) {
                    names[n++] = server_columns[i];
                }
            }
            json_t *requests = json_object();
            ovsdb_msg_monitor_requests_add(requests, "Database", names, n);
            json_decref(r->server_monitor_id);
            r->server_monitor_id = json_string("_Server");
            ovsdb_replica_set_schema(server_replica(r), result);
            send_sync_request(r, "monitor_cond",
                              ovsdb_msg_monitor_params(
                                  "_Server",
                                  json_incref(r->server_monitor_id),
                                  requests),
                              RS_SERVER_MONITOR);
        }
        break;

    case RS_SERVER_MONITOR:
        if (type == JSONRPC_ERROR) {
            json_decref(r->server_monitor_id);
            r->server_monitor_id = NULL;
            r->no_server_db = true;
            send_get_schema(r);
        } else {
            int error = apply_server_updates2(r, result, true);
            if (error) {
                r->stats.n_bad_messages++;
                schedule_retry(r, "_Server monitor",
                               ovsdb_msg_strerror(error));
            } else {
                check_server(r);
            }
        }
        break;

    case RS_SCHEMA:
        if (type == JSONRPC_ERROR) {
            char *why = describe_rpc_error(jsonrpc_msg_error(msg));
            schedule_retry(r, "get_schema", why);
            free(why);
        } else if (!json_is_object(result)
                   || !json_is_object(json_object_get(result, "tables"))) {
            r->stats.n_bad_messages++;
            schedule_retry(r, "get_schema", "malformed schema");
        } else {
            ovsdb_replica_set_schema(r, result);
            send_monitor(r);
        }
        break;

    case RS_MONITOR:
        handle_monitor_reply(r, msg, type);
        break;

    case RS_IDLE:
    case RS_SYNCED:
    case RS_RETRY:
    case RS_REJECTED:
    default:
        break;
    }
}

static void
handle_msg(struct ovsdb_replica *r, const json_t *msg)
{
    const char *why = NULL;
    enum jsonrpc_msg_type type = jsonrpc_msg_classify(msg, &why);

    switch (type) {
    case JSONRPC_NOTIFY: {
        const char *method = jsonrpc_msg_method(msg);
        int version = (!strcmp(method, "update") ? 1
                       : !strcmp(method, "update2") ? 2
                       : !strcmp(method, "update3") ? 3 : 0);
        if (version) {
            handle_update(r, msg, version);
        } else if (!strcmp(method, "monitor_canceled")) {
            handle_monitor_canceled(r, msg);
        }
        /* Other notifications (e.g. "locked") are not ours. */
        break;
    }

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

/* Splits 'remote' at commas into a new array of '*n' strings (empty items
 * and surrounding blanks are dropped), shuffled if 'shuffle'. */
static char **
split_remotes(const char *remote, size_t *n, bool shuffle)
{
    char *copy = xstrdup(remote);
    char **names = NULL;
    char *save = NULL;

    *n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char) *tok)) {
            tok++;
        }
        size_t len = strlen(tok);
        while (len && isspace((unsigned char) tok[len - 1])) {
            tok[--len] = '\0';
        }
        if (len) {
            names = xrealloc(names, (*n + 1) * sizeof *names);
            names[(*n)++] = xstrdup(tok);
        }
    }
    free(copy);
    if (shuffle) {
        static unsigned int seed;
        if (!seed) {
            seed = (unsigned int) time_msec() ^ (unsigned int) getpid();
        }
        for (size_t i = *n; i > 1; i--) {
            size_t j = rand_r(&seed) % i;
            char *tmp = names[i - 1];
            names[i - 1] = names[j];
            names[j] = tmp;
        }
    }
    return names;
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

    size_t n;
    char **names = split_remotes(remote, &n, r->shuffle);
    r->session = jsonrpc_session_open_multiple((const char *const *) names,
                                               n, true);
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    jsonrpc_session_set_backoff(r->session, r->min_backoff, r->max_backoff);
    jsonrpc_session_set_probe_interval(r->session, r->probe_interval);
    r->session_seqno = jsonrpc_session_get_seqno(r->session);
    r->n_rejects = 0;
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
ovsdb_replica_set_probe_interval(struct ovsdb_replica *r, int interval)
{
    r->probe_interval = interval > 0 ? interval : 0;
    if (r->session) {
        jsonrpc_session_set_probe_interval(r->session, r->probe_interval);
    }
}

void
ovsdb_replica_set_shuffle_remotes(struct ovsdb_replica *r, bool shuffle)
{
    r->shuffle = shuffle;
}

void
ovsdb_replica_set_leader_only(struct ovsdb_replica *r, bool leader_only)
{
    r->leader_only = leader_only;
    if (leader_only && r->server_monitor_id && r->state == RS_SYNCED
        && ovsdb_replica_is_connected(r)) {
        check_server(r);
    }
}

const char *
ovsdb_replica_get_remote(const struct ovsdb_replica *r)
{
    return r->session ? jsonrpc_session_get_name(r->session) : NULL;
}

void
ovsdb_replica_force_reconnect(struct ovsdb_replica *r)
{
    if (r->session) {
        if (r->state == RS_SYNCED) {
            jsonrpc_session_reset_backoff(r->session);
        }
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
 * check: transactions in flight fail and a new connection resyncs (or
 * resumes). */
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
    r->no_server_db = false;
    r->max_version = 3;
    r->leader_known = false;
    cond_sync(r);
    if (jsonrpc_session_is_connected(r->session)) {
        const char *name = jsonrpc_session_get_name(r->session);
        r->stats.n_connects++;
        if (r->prev_remote && strcmp(r->prev_remote, name)) {
            r->stats.n_remote_moves++;
        }
        free(r->prev_remote);
        r->prev_remote = xstrdup(name);
        VLOG_INFO("%s: connected to %s", r->db_name, name);
    } else {
        /* The session already points to the next remote. */
        VLOG_INFO_RL(&conn_rl, "%s: disconnected from %s", r->db_name,
                     r->prev_remote ? r->prev_remote : "?");
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
            if (r->state == RS_REJECTED && time_msec() >= r->retry_at) {
                /* Once: the disconnection resets the state. */
                r->retry_at = LLONG_MAX;
                jsonrpc_session_force_reconnect(r->session);
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
            send_cond_change(r);
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
        if (r->state == RS_RETRY || r->state == RS_REJECTED) {
            poll_timer_wait_until(r->retry_at);
        }
        if (r->state == RS_SYNCED && r->monitor_version >= 2
            && !r->request_id) {
            for (size_t i = 0; i < r->n_tables; i++) {
                if (r->tables[i]->cond_new_set) {
                    poll_immediate_wake();
                    break;
                }
            }
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
