/*
 * fuzz-ovsdb: what chand-host does with JSON that comes from an OVSDB
 * server (the local Open_vSwitch database and the Chan DB): JSON-RPC message
 * classification (lib/jsonrpc), the lib/ovsdb-msg parsers (<table-updates>,
 * "update" notification params, "transact" replies, datums and their
 * getters, schema queries) and the pure core of lib/ovsdb-replica,
 * ovsdb_replica_apply_updates(), on replicas declared with the Interface,
 * Port and Bridge columns chand-host reads, untyped (as chand-host
 * declares them) or typed (so that badly typed columns are exercised).
 *
 * The input is JSON text (json_loadb(), any top-level value, duplicate
 * member names rejected as chand's JSON-RPC layer does).  Replicas are
 * untyped, as chand-host declares them, unless the text starts with white
 * space, which selects typed columns.  The input is used as:
 *   - a JSON-RPC message: an "update" notification is split and its
 *     updates applied, a reply's result is taken as a monitor reply and as
 *     a transact result;
 *   - a <table-updates> object: applied as a snapshot, then as an update,
 *     then as a snapshot again, with change tracking walked in between;
 *   - an array: a script of <table-updates> applied in order, with
 *     snapshots and change-tracking clears in between (see
 *     fuzz_replica());
 *   - a datum, and so is every element or member value one and two levels
 *     down.
 *
 * Invariants checked besides memory safety: a datum's canonical JSON
 * decodes to the same canonical JSON; getters' results rebuild with the
 * builders into data the getters read back identically; "any" type checks
 * agree with decoding; a typed replica only stores well-typed columns;
 * row iteration, lookup by uuid and row counts agree; transact reply
 * outputs are set exactly as documented.
 */
#include <config.h>
#include "fuzz.h"

#include "jsonrpc.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "vlog.h"

/* Datums visited per input, to keep the cost linear in the input. */
#define MAX_DATUMS 64

static const struct ovsdb_type types[] = {
    OVSDB_TYPE_ANY,
    OVSDB_TYPE_SCALAR(INTEGER),
    OVSDB_TYPE_SCALAR(REAL),
    OVSDB_TYPE_OPTIONAL(BOOLEAN),
    OVSDB_TYPE_OPTIONAL(STRING),
    OVSDB_TYPE_OPTIONAL(UUID),
    OVSDB_TYPE_SET(UUID),
    OVSDB_TYPE_SET(STRING),
    OVSDB_TYPE_MAP(STRING, STRING),
    OVSDB_TYPE_MAP(INTEGER, UUID),
    { OVSDB_ATOM_INTEGER, OVSDB_ATOM_NONE, 1, 3 },
    { OVSDB_ATOM_NONE, OVSDB_ATOM_NONE, 2, 2 },
};

/* Columns of the typed replica, with Open_vSwitch schema types. */
static const struct ovsdb_type type_string = OVSDB_TYPE_SCALAR(STRING);
static const struct ovsdb_type type_ofport = OVSDB_TYPE_OPTIONAL(INTEGER);
static const struct ovsdb_type type_smap = OVSDB_TYPE_MAP(STRING, STRING);
static const struct ovsdb_type type_uuids = { OVSDB_ATOM_UUID,
                                              OVSDB_ATOM_NONE, 1,
                                              OVSDB_N_UNLIMITED };

struct column_def {
    const char *table;
    const char *column;
    const struct ovsdb_type *type;
};

static const struct column_def columns[] = {
    { "Interface", "name", &type_string },
    { "Interface", "external_ids", &type_smap },
    { "Interface", "ofport", &type_ofport },
    { "Port", "name", &type_string },
    { "Port", "interfaces", &type_uuids },
    { "Bridge", "name", &type_string },
    { "Bridge", "ports", &type_uuids },
};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

static const char *const tables[] = { "Interface", "Port", "Bridge" };
#define N_TABLES (sizeof tables / sizeof tables[0])

static void
discard_log(const char *line, void *aux)
{
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* ovsdb-replica logs bad rows: format them, but write nothing. */
    vlog_set_hook(discard_log, NULL);
    return 0;
}

/* Datums. */

static void
check_canonical(const json_t *json, bool allow_named)
{
    struct ovsdb_datum d;
    int error = ovsdb_datum_from_json(&d, json, allow_named);

    /* "Any type" checking is syntax checking. */
    FUZZ_CHECK(!error == !ovsdb_datum_check(json, NULL, allow_named));
    FUZZ_CHECK(!error == !ovsdb_datum_check(json, &types[0], allow_named));
    if (error) {
        FUZZ_CHECK(error > 0 && error < OVSDB_MSG_N_ERRORS);
        FUZZ_CHECK(ovsdb_msg_strerror(error) != NULL);
        return;
    }
    FUZZ_CHECK(d.is_map == (d.values != NULL) || d.n == 0);

    json_t *canon = ovsdb_datum_to_json(&d);
    FUZZ_CHECK(canon);
    struct ovsdb_datum d2;
    FUZZ_CHECK(!ovsdb_datum_from_json(&d2, canon, allow_named));
    FUZZ_CHECK(d2.n == d.n && d2.is_map == d.is_map);
    json_t *canon2 = ovsdb_datum_to_json(&d2);
    FUZZ_CHECK(json_equal(canon, canon2));

    json_decref(canon2);
    ovsdb_datum_destroy(&d2);
    json_decref(canon);
    ovsdb_datum_destroy(&d);
}

static void
check_getters(const json_t *json)
{
    int64_t integer;
    bool boolean, present;
    const char *s;
    json_t *j;

    ovsdb_datum_get_integer(json, &integer, &present);
    ovsdb_datum_get_boolean(json, &boolean, &present);
    if (!ovsdb_datum_get_string(json, &s) && s) {
        FUZZ_CHECK(json_is_string(json) || json_is_array(json));
    }
    if (!ovsdb_datum_get_uuid(json, &s) && s) {
        FUZZ_CHECK(ovsdb_uuid_is_valid(s));
    }

    if (!ovsdb_datum_get_uuid_set(json, &j)) {
        FUZZ_CHECK(json_is_array(j));
        json_t *rebuilt = ovsdb_datum_uuid_set(j);
        FUZZ_CHECK(rebuilt);
        json_t *again;
        FUZZ_CHECK(!ovsdb_datum_get_uuid_set(rebuilt, &again));
        FUZZ_CHECK(json_equal(j, again));
        json_decref(again);
        json_decref(rebuilt);
        json_decref(j);
    }

    if (!ovsdb_datum_get_string_map(json, &j)) {
        FUZZ_CHECK(json_is_object(j));
        json_t *rebuilt = ovsdb_datum_string_map(j);
        FUZZ_CHECK(rebuilt);
        json_t *again;
        FUZZ_CHECK(!ovsdb_datum_get_string_map(rebuilt, &again));
        FUZZ_CHECK(json_equal(j, again));
        json_decref(again);
        json_decref(rebuilt);
        json_decref(j);
    }
}

static void
fuzz_datum(const json_t *json, int *budget)
{
    if (*budget <= 0) {
        return;
    }
    --*budget;

    check_canonical(json, false);
    check_canonical(json, true);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int error = ovsdb_datum_check(json, &types[i], i & 1);
        FUZZ_CHECK(error >= 0 && error < OVSDB_MSG_N_ERRORS);
    }
    check_getters(json);
}

/* Visits 'json' and its elements or member values down to 'depth' more
 * levels as datums. */
static void
fuzz_datums(const json_t *json, int depth, int *budget)
{
    fuzz_datum(json, budget);
    if (depth <= 0) {
        return;
    }
    if (json_is_array(json)) {
        size_t i;
        json_t *elem;
        json_array_foreach (json, i, elem) {
            fuzz_datums(elem, depth - 1, budget);
        }
    } else if (json_is_object(json)) {
        const char *name;
        json_t *value;
        json_object_foreach ((json_t *) json, name, value) {
            fuzz_datums(value, depth - 1, budget);
        }
    }
}

/* Table updates. */

struct update_ctx {
    size_t n_calls;
};

static void
row_cb(const char *table, const char *uuid, const json_t *old,
       const json_t *new, void *aux)
{
    struct update_ctx *ctx = aux;

    ctx->n_calls++;
    FUZZ_CHECK(table && uuid);
    FUZZ_CHECK(ovsdb_uuid_is_valid(uuid));
    FUZZ_CHECK(old || new);
    FUZZ_CHECK(!old || json_is_object(old));
    FUZZ_CHECK(!new || json_is_object(new));
}

static void
fuzz_table_updates(const json_t *updates)
{
    struct update_ctx ctx = { 0 };
    int error = ovsdb_msg_parse_table_updates(updates, row_cb, &ctx);
    FUZZ_CHECK(error >= 0 && error < OVSDB_MSG_N_ERRORS);
    FUZZ_CHECK(!error || ctx.n_calls == 0);
}

static struct ovsdb_replica *
make_replica(bool typed)
{
    struct ovsdb_replica *r = ovsdb_replica_create("Open_vSwitch");
    for (size_t i = 0; i < N_COLUMNS; i++) {
        struct ovsdb_replica_table *t = ovsdb_replica_add_table(
            r, columns[i].table);
        ovsdb_replica_add_column(t, columns[i].column,
                                 typed ? columns[i].type : NULL);
    }
    return r;
}

/* Reads every row as chand-host does, checking that iteration, lookup and
 * counts agree and (for a typed replica) that stored columns are well
 * typed.  With 'full', also runs every getter on every stored column (the
 * expensive part, so only once per replica). */
static void
walk_replica(const struct ovsdb_replica *r, bool typed, bool full)
{
    for (size_t t = 0; t < N_TABLES; t++) {
        const struct ovsdb_replica_table *table
            = ovsdb_replica_get_table(r, tables[t]);
        const struct ovsdb_replica_row *row;
        size_t n = 0;

        FUZZ_CHECK(table);
        OVSDB_REPLICA_FOR_EACH (row, table) {
            const char *uuid = ovsdb_replica_row_uuid(row);
            n++;
            FUZZ_CHECK(ovsdb_uuid_is_valid(uuid));
            FUZZ_CHECK(ovsdb_replica_find(table, uuid) == row);
            FUZZ_CHECK(ovsdb_replica_row_table(row) == table);
            FUZZ_CHECK(ovsdb_replica_row_change(row)
                       != OVSDB_REPLICA_DELETED);

            for (size_t c = 0; c < N_COLUMNS; c++) {
                if (strcmp(columns[c].table, tables[t])) {
                    continue;
                }
                const json_t *value = ovsdb_replica_row_get(
                    row, columns[c].column);
                if (value) {
                    FUZZ_CHECK(!ovsdb_datum_check(
                                   value, typed ? columns[c].type : NULL,
                                   false));
                    if (full) {
                        check_getters(value);
                    }
                }
                ovsdb_replica_row_column_changed(row, columns[c].column);
                ovsdb_replica_row_get_old(row, columns[c].column);
            }
            FUZZ_CHECK(!ovsdb_replica_row_get(row, "no_such_column"));
        }
        FUZZ_CHECK(n == ovsdb_replica_table_count(table));

        OVSDB_REPLICA_FOR_EACH_TRACKED (row, table) {
            enum ovsdb_replica_change change = ovsdb_replica_row_change(row);
            FUZZ_CHECK(change != OVSDB_REPLICA_UNCHANGED);
            FUZZ_CHECK(ovsdb_replica_change_name(change) != NULL);
            const struct ovsdb_replica_row *found = ovsdb_replica_find(
                table, ovsdb_replica_row_uuid(row));
            FUZZ_CHECK(change == OVSDB_REPLICA_DELETED ? !found
                       : found == row);
            for (size_t c = 0; c < N_COLUMNS; c++) {
                if (!strcmp(columns[c].table, tables[t])) {
                    ovsdb_replica_row_get(row, columns[c].column);
                    ovsdb_replica_row_get_old(row, columns[c].column);
                }
            }
        }
    }
}

static void
apply(struct ovsdb_replica *r, bool typed, const json_t *updates,
      bool initial)
{
    struct ovsdb_replica_stats before, after;
    ovsdb_replica_get_stats(r, &before);
    uint64_t seqno = ovsdb_replica_get_seqno(r);

    int error = ovsdb_replica_apply_updates(r, updates, initial);
    FUZZ_CHECK(error >= 0 && error < OVSDB_MSG_N_ERRORS);
    ovsdb_replica_get_stats(r, &after);
    if (error) {
        FUZZ_CHECK(after.n_bad_updates == before.n_bad_updates + 1);
        FUZZ_CHECK(ovsdb_replica_get_seqno(r) == seqno);
    }
    if (!typed) {
        FUZZ_CHECK(after.n_bad_rows == 0);
    }
    walk_replica(r, typed, false);
}

/* Checks that replicas 'a' and 'b' hold the same rows with the same
 * column values. */
static void
check_same_contents(const struct ovsdb_replica *a,
                    const struct ovsdb_replica *b)
{
    for (size_t t = 0; t < N_TABLES; t++) {
        const struct ovsdb_replica_table *ta, *tb;
        const struct ovsdb_replica_row *row;

        ta = ovsdb_replica_get_table(a, tables[t]);
        tb = ovsdb_replica_get_table(b, tables[t]);
        FUZZ_CHECK(ovsdb_replica_table_count(ta)
                   == ovsdb_replica_table_count(tb));
        OVSDB_REPLICA_FOR_EACH (row, ta) {
            const struct ovsdb_replica_row *other = ovsdb_replica_find(
                tb, ovsdb_replica_row_uuid(row));
            FUZZ_CHECK(other);
            for (size_t c = 0; c < N_COLUMNS; c++) {
                if (strcmp(columns[c].table, tables[t])) {
                    continue;
                }
                const json_t *x = ovsdb_replica_row_get(row,
                                                        columns[c].column);
                const json_t *y = ovsdb_replica_row_get(other,
                                                        columns[c].column);
                FUZZ_CHECK(x && y ? json_equal(x, y) : x == y);
            }
        }
    }
}

/* A full resync converges: whatever 'r' went through, applying snapshot
 * 'snapshot' leaves it with the same contents as a fresh replica that got
 * only that snapshot. */
static void
check_resync(struct ovsdb_replica *r, bool typed, const json_t *snapshot)
{
    struct ovsdb_replica *fresh = make_replica(typed);
    int error = ovsdb_replica_apply_updates(fresh, snapshot, true);
    if (!error) {
        FUZZ_CHECK(!ovsdb_replica_apply_updates(r, snapshot, true));
        check_same_contents(r, fresh);
        walk_replica(r, typed, false);
    }
    ovsdb_replica_destroy(fresh);
}

/* Applies 'updates' to a fresh replica.  An object is one <table-updates>,
 * applied as a snapshot, again as a snapshot, then as an update, then as a
 * snapshot again.  An array is a script, one step per element: an object
 * is applied as an update (as a snapshot if it is the first element),
 * [object] as a snapshot, and null clears change tracking. */
static void
fuzz_replica(const json_t *updates, bool typed)
{
    struct ovsdb_replica *r = make_replica(typed);

    if (json_is_array(updates)) {
        size_t i;
        json_t *elem;
        json_array_foreach (updates, i, elem) {
            if (json_is_null(elem)) {
                ovsdb_replica_track_clear(r);
                FUZZ_CHECK(!ovsdb_replica_has_changes(r));
                walk_replica(r, typed, false);
            } else if (json_is_array(elem) && json_array_size(elem) == 1) {
                apply(r, typed, json_array_get(elem, 0), true);
            } else {
                apply(r, typed, elem, i == 0);
            }
        }
        json_array_foreach (updates, i, elem) {
            if (json_is_object(elem)) {
                check_resync(r, typed, elem);
                break;
            }
        }
    } else {
        /* A snapshot applied twice changes nothing the second time. */
        struct ovsdb_replica_stats stats;
        apply(r, typed, updates, true);
        ovsdb_replica_get_stats(r, &stats);
        ovsdb_replica_track_clear(r);
        apply(r, typed, updates, true);
        if (!stats.n_bad_updates) {
            FUZZ_CHECK(!ovsdb_replica_has_changes(r));
        }
        apply(r, typed, updates, false);
        ovsdb_replica_track_clear(r);
        FUZZ_CHECK(!ovsdb_replica_has_changes(r));
        apply(r, typed, updates, true);
        check_resync(r, typed, updates);
    }
    walk_replica(r, typed, true);
    ovsdb_replica_destroy(r);
}

/* Transact replies. */

static void
fuzz_transact_reply(const json_t *result, size_t n_ops)
{
    json_t *uuids = NULL;
    char *error_text = NULL;
    int error = ovsdb_msg_parse_transact_reply(result, n_ops, &uuids,
                                               &error_text);
    FUZZ_CHECK(error >= 0 && error < OVSDB_MSG_N_ERRORS);
    if (!error) {
        FUZZ_CHECK(json_is_array(uuids));
        FUZZ_CHECK(json_array_size(uuids) == n_ops);
        FUZZ_CHECK(!error_text);
        size_t i;
        json_t *u;
        json_array_foreach (uuids, i, u) {
            FUZZ_CHECK(json_is_null(u)
                       || ovsdb_uuid_is_valid(json_string_value(u)));
        }
    } else {
        FUZZ_CHECK(!uuids);
        FUZZ_CHECK(error_text);
    }
    json_decref(uuids);
    free(error_text);

    /* Without the optional outputs. */
    FUZZ_CHECK(ovsdb_msg_parse_transact_reply(result, n_ops, NULL, NULL)
               == error);
}

static void
fuzz_transact_replies(const json_t *result)
{
    size_t n = json_array_size(result);
    fuzz_transact_reply(result, n);
    fuzz_transact_reply(result, n ? n - 1 : 0);
    fuzz_transact_reply(result, n + 1);
    fuzz_transact_reply(result, 1);
}

/* JSON-RPC messages. */

static void
fuzz_jsonrpc(const json_t *msg, bool typed)
{
    const char *why = NULL;
    enum jsonrpc_msg_type type = jsonrpc_msg_classify(msg, &why);

    FUZZ_CHECK(type == jsonrpc_msg_type(msg));
    FUZZ_CHECK(jsonrpc_msg_type_name(type) != NULL);
    FUZZ_CHECK(type != JSONRPC_INVALID || why);

    switch (type) {
    case JSONRPC_NOTIFY: {
        const json_t *params = jsonrpc_msg_params(msg);
        const json_t *monitor_id, *updates;
        FUZZ_CHECK(json_is_array(params));
        FUZZ_CHECK(jsonrpc_msg_method(msg) != NULL);
        if (!strcmp(jsonrpc_msg_method(msg), "update")
            && !ovsdb_msg_parse_update_params(params, &monitor_id,
                                              &updates)) {
            FUZZ_CHECK(monitor_id && updates);
            fuzz_table_updates(updates);
            fuzz_replica(updates, typed);
        }
        break;
    }
    case JSONRPC_REPLY: {
        const json_t *result = jsonrpc_msg_result(msg);
        const json_t *id = jsonrpc_msg_id(msg);
        FUZZ_CHECK(id && jsonrpc_id_equal(id, id));
        fuzz_table_updates(result);
        fuzz_replica(result, typed);
        fuzz_transact_replies(result);
        ovsdb_msg_schema_has_column(result, "Interface", "external_ids");
        break;
    }
    case JSONRPC_REQUEST:
        FUZZ_CHECK(jsonrpc_msg_method(msg) && jsonrpc_msg_id(msg));
        FUZZ_CHECK(json_is_array(jsonrpc_msg_params(msg)));
        break;
    case JSONRPC_ERROR:
        FUZZ_CHECK(jsonrpc_msg_error(msg));
        break;
    case JSONRPC_INVALID:
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerror;
    json_t *json = json_loadb((const char *) data, size,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                              &jerror);
    if (!json) {
        return 0;
    }

    /* Leading white space selects the typed replica. */
    bool typed = size && memchr(" \t\r\n", data[0], 4);

    int budget = MAX_DATUMS;
    fuzz_datums(json, 2, &budget);

    if (json_is_object(json)) {
        fuzz_jsonrpc(json, typed);
        fuzz_table_updates(json);
        fuzz_replica(json, typed);
        FUZZ_CHECK(!ovsdb_msg_schema_has_column(json, "Interface", NULL)
                   || ovsdb_msg_schema_has_column(json, "Interface",
                                                  "_uuid"));
    } else if (json_is_array(json)) {
        fuzz_replica(json, typed);
        fuzz_transact_replies(json);
    }
    json_decref(json);
    return 0;
}
