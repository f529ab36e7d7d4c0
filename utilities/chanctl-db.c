/* chanctl: host commands that talk to the Chan DB (push, delete, status,
 * wait, key-add, key-retire, key-list, object-list, object-show,
 * object-set, allow, disallow, allowlist, install, call, published --vm,
 * set-connection, get-connection, del-connection, rbac-init; the platform
 * ids: id-set, id-retire, id-delete, id-list, id-show and --vm KIND:ID).
 * See chanctl.h and doc/chan-db.md. */

#include <config.h>
#include "chanctl.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chan-endpoint.h"
#include "chan-wire.h"
#include "jsonrpc.h"
#include "ovsdb-msg.h"
#include "stream.h"
#include "util.h"
#include "vm-id.h"

/* How many times push retries when another writer changed the record
 * between its read and its write. */
#define PUSH_MAX_ATTEMPTS 10

/* wait: how often the Channel rows are read again. */
#define WAIT_POLL_MSEC 100

/* At most this many pending keys are named in a message. */
#define MAX_KEYS_SHOWN 5

/* ----------------------------------------------------------------------
 * Connection and transactions.
 */

struct db {
    char *name;                 /* The remote connected to. */
    struct jsonrpc *rpc;
};

/* Returns the stream name for one Chan DB remote 'r': a name with a
 * known prefix as is, a plain path as "unix:PATH"; or NULL if 'r' has
 * another prefix.  malloc()ed. */
static char *
remote_name(const char *r)
{
    const char *colon = strchr(r, ':');
    const char *slash = strchr(r, '/');

    if (stream_verify_name(r)) {
        return xstrdup(r);
    } else if (colon && (!slash || colon < slash)) {
        return NULL;
    }
    return chanctl_unix_name(r);
}

/* Connects 'db' to the Chan DB server named in 'opts': the first of its
 * comma-separated remotes that answers.  Returns 0, or prints why not and
 * returns CHANCTL_FAIL (CHANCTL_USAGE for an unusable remote).  On
 * success the caller calls db_close(). */
static int
db_open(const struct chanctl_options *opts, struct db *db)
{
    char *remotes = xstrdup(opts->chan_db);
    char *save = NULL, *failures = NULL;
    int status = CHANCTL_FAIL;
    bool tls_options = false;   /* The only failures: TLS options lacking. */
    bool other = false;

    db->rpc = NULL;
    db->name = NULL;
    for (char *r = strtok_r(remotes, ",", &save); r;
         r = strtok_r(NULL, ",", &save)) {
        char *name = remote_name(r);
        struct stream *stream;

        if (!name) {
            chanctl_error("unsupported Chan DB remote '%s': use unix:PATH, "
                          "tcp:IP:PORT or ssl:IP:PORT", r);
            status = CHANCTL_USAGE;
            break;
        }
        int error = stream_open_block(name, &stream);
        if (!error) {
            db->name = name;
            db->rpc = jsonrpc_open(stream);
            status = 0;
            break;
        }
        if (error == ENOPROTOOPT) {
            tls_options = true;
        } else {
            other = true;
        }
        char *f = xasprintf("%s%s%s: %s", failures ? failures : "",
                            failures ? "; " : "", name,
                            error == EPROTO ? "TLS handshake failed"
                            : error == ENOPROTOOPT
                            ? "TLS needs --private-key, --certificate and "
                              "--ca-cert" : strerror(error));
        free(failures);
        failures = f;
        free(name);
    }
    if (status == CHANCTL_FAIL && tls_options && !other) {
        chanctl_error("cannot connect to %s", failures);
    } else if (status == CHANCTL_FAIL) {
        chanctl_error("cannot connect to %s (is ovsdb-server "
                      "running? use %s%s%s)", failures ? failures : "",
                      opts->chan_db_option,
                      opts->chan_db_origin == CHANCTL_FROM_ENV
                      ? " or unset " : "",
                      opts->chan_db_origin == CHANCTL_FROM_ENV
                      ? opts->chan_db_env : "");
    }
    free(failures);
    free(remotes);
    return status;
}

static void
db_close(struct db *db)
{
    jsonrpc_close(db->rpc);
    free(db->name);
}

enum txn_status {
    TXN_OK,                     /* Every operation succeeded. */
    TXN_RETRY,                  /* A wait failed or a concurrent write made
                                 * the commit fail: read and try again. */
    TXN_LOST,                   /* The connection went before the reply:
                                 * the transaction may or may not have
                                 * committed (e.g. a cluster failover). */
    TXN_FAILED                  /* Anything else. */
};

/* Describes a JSON-RPC error object from ovsdb-server ({"error": ...,
 * "details": ...}).  Returns a malloc'd string. */
static char *
describe_rpc_error(const struct db *db, const json_t *error)
{
    const char *kind = json_string_value(json_object_get(error, "error"));
    const char *details = json_string_value(json_object_get(error,
                                                            "details"));

    if (kind && !strcmp(kind, "unknown database")) {
        return xasprintf("%s serves no database \"%s\" (create it "
                         "with: ovsdb-tool create FILE "
                         "chan.ovsschema, and serve FILE)",
                         db->name, CHANCTL_DB_NAME);
    }
    if (kind) {
        return xasprintf("%s: %s%s%s", db->name, kind,
                         details ? ": " : "", details ? details : "");
    }
    char *text = json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY);
    char *msg = xasprintf("%s: error %s", db->name,
                          text ? text : "?");
    free(text);
    return msg;
}

/* Runs the operations in 'ops' (stolen, a JSON array) as one transaction
 * on the Chan DB.  On TXN_OK stores the result array (new reference) in
 * '*resultp' and NULL in '*errorp'; otherwise stores NULL in '*resultp'
 * and a malloc'd description in '*errorp' (the caller frees it). */
static enum txn_status
db_transact(struct db *db, json_t *ops, json_t **resultp, char **errorp)
{
    size_t n_ops = json_array_size(ops);
    json_t *params = ovsdb_msg_transact_params(CHANCTL_DB_NAME, ops);
    json_t *request = jsonrpc_create_request("transact", params, NULL);
    json_t *reply;
    enum txn_status status;

    *resultp = NULL;
    *errorp = NULL;
    int error = jsonrpc_transact_block(db->rpc, request, &reply);
    if (error) {
        bool tls = !strncmp(db->name, "ssl:", 4);
        const char *hint = (tls && (error == EOF || error == EPIPE
                                    || error == ECONNRESET
                                    || error == EPROTO)
                            ? " (over TLS this is how a server refuses a "
                              "certificate it does not trust: check that "
                              "--certificate is signed by the CA it "
                              "trusts)" : "");
        *errorp = (error == EOF
                   ? xasprintf("%s: connection closed by the server%s",
                               db->name, hint)
                   : xasprintf("%s: %s%s", db->name,
                               strerror(error), hint));
        return TXN_LOST;
    }

    if (jsonrpc_msg_type(reply) == JSONRPC_ERROR) {
        *errorp = describe_rpc_error(db, jsonrpc_msg_error(reply));
        json_decref(reply);
        return TXN_FAILED;
    } else if (jsonrpc_msg_type(reply) != JSONRPC_REPLY) {
        *errorp = xasprintf("%s: malformed reply", db->name);
        json_decref(reply);
        return TXN_FAILED;
    }

    json_t *result = jsonrpc_msg_result(reply);
    char *msg;
    error = ovsdb_msg_parse_transact_reply(result, n_ops, NULL, &msg);
    if (!error) {
        *resultp = json_incref(result);
        status = TXN_OK;
    } else if (error == OVSDB_MSG_E_TXN_ERROR) {
        /* "timed out" is a failed wait; "constraint violation" at commit is
         * a row someone else inserted meanwhile (the (key, vm) index). */
        status = TXN_FAILED;
        size_t i;
        json_t *elem;
        json_array_foreach (result, i, elem) {
            const char *e = json_string_value(json_object_get(elem,
                                                              "error"));
            if (e && (!strcmp(e, "timed out")
                      || !strcmp(e, "constraint violation"))) {
                status = TXN_RETRY;
            }
        }
        *errorp = xasprintf("%s: transaction failed: %s", db->name,
                            msg);
        free(msg);
    } else {
        *errorp = xasprintf("%s: malformed transaction reply: %s",
                            db->name, msg);
        free(msg);
        status = TXN_FAILED;
    }
    json_decref(reply);
    return status;
}

/* Runs one "select" of 'table' with 'where' (stolen) and 'columns' (stolen,
 * NULL for all).  Returns the rows (a new reference to a JSON array), or
 * NULL after printing the error. */
static json_t *
db_select(struct db *db, const char *table, json_t *where, json_t *columns)
{
    json_t *ops = json_pack("[o]", ovsdb_op_select(table, where, columns));
    json_t *result;
    char *error;

    if (db_transact(db, ops, &result, &error) != TXN_OK) {
        chanctl_error("%s", error);
        free(error);
        return NULL;
    }
    json_t *rows = json_object_get(json_array_get(result, 0), "rows");
    if (!json_is_array(rows)) {
        chanctl_error("%s: malformed select result", db->name);
        json_decref(result);
        return NULL;
    }
    json_incref(rows);
    json_decref(result);
    return rows;
}

/* Opens the Chan DB as 'opts' says, runs one select as db_select() does
 * ('where' and 'columns' stolen) and closes it: what a command that only
 * reads one table needs.  Returns the rows (a new reference), or NULL with
 * the exit status in '*statusp' (the error printed). */
static json_t *
select_rows(const struct chanctl_options *opts, const char *table,
            json_t *where, json_t *columns, int *statusp)
{
    struct db db;
    *statusp = db_open(opts, &db);
    if (*statusp) {
        json_decref(where);
        json_decref(columns);
        return NULL;
    }
    json_t *rows = db_select(&db, table, where, columns);
    db_close(&db);
    *statusp = rows ? CHANCTL_OK : CHANCTL_FAIL;
    return rows;
}

/* ----------------------------------------------------------------------
 * Reading rows.
 */

/* Returns column 'column' of 'row' (borrowed) as an optional string
 * (borrowed), or NULL if absent, empty or not a string. */
static const char *
row_string(const json_t *row, const char *column)
{
    const json_t *datum = json_object_get(row, column);
    const char *s;

    return datum && !ovsdb_datum_get_string(datum, &s) ? s : NULL;
}

/* Returns column 'column' of 'row' as an integer, or 'dflt'. */
static int64_t
row_int(const json_t *row, const char *column, int64_t dflt)
{
    const json_t *datum = json_object_get(row, column);
    int64_t value;
    bool present;

    return (datum && !ovsdb_datum_get_integer(datum, &value, &present)
            && present ? value : dflt);
}

static bool
row_bool(const json_t *row, const char *column)
{
    const json_t *datum = json_object_get(row, column);
    bool value, present;

    return (datum && !ovsdb_datum_get_boolean(datum, &value, &present)
            && present && value);
}

/* Returns the JSON form of 'atom' for display, a new reference owned by the
 * caller: as on the wire, except that a UUID is a bare string. */
static json_t *
atom_to_display_json(const struct ovsdb_atom *atom)
{
    return (atom->type == OVSDB_ATOM_UUID
            || atom->type == OVSDB_ATOM_NAMED_UUID
            ? json_string(atom->u.string)
            : ovsdb_atom_to_json(atom));
}

/* Returns map column 'column' of 'row' as a JSON object (new reference):
 * string keys, values as JSON.  An absent or malformed column gives an
 * empty object. */
static json_t *
row_map(const json_t *row, const char *column)
{
    const json_t *json = json_object_get(row, column);
    json_t *object = json_object();
    struct ovsdb_datum datum;

    if (!json || ovsdb_datum_from_json(&datum, json, false)) {
        return object;
    }
    if (datum.is_map) {
        for (size_t i = 0; i < datum.n; i++) {
            if (datum.keys[i].type == OVSDB_ATOM_STRING) {
                json_object_set_new(object, datum.keys[i].u.string,
                                    atom_to_display_json(&datum.values[i]));
            }
        }
    }
    ovsdb_datum_destroy(&datum);
    return object;
}

/* One Record row, with borrowed strings. */
struct record {
    const char *key;
    const char *vm;             /* NULL: all VMs. */
    const char *value;
    int64_t version;
    const char *error;          /* Record.error, or NULL. */
    bool valid;                 /* Would chand-host accept it? */
};

/* Decodes the Record rows in 'rows' (borrowed, which the strings point
 * into) into a malloc'd array of '*n' records. */
static struct record *
parse_records(const json_t *rows, size_t *n)
{
    struct record *recs = xcalloc(json_array_size(rows) + 1, sizeof *recs);
    size_t i;
    json_t *row;

    *n = 0;
    json_array_foreach (rows, i, row) {
        struct record *r = &recs[*n];

        r->key = row_string(row, "key");
        if (!r->key) {
            continue;
        }
        r->vm = row_string(row, "vm");
        if (r->vm && !*r->vm) {
            r->vm = NULL;       /* chand-host reads "" as all VMs too. */
        }
        r->value = row_string(row, "value");
        r->version = row_int(row, "version", 0);
        r->error = row_string(row, "error");

        /* The same rules chand-host applies. */
        size_t len = strlen(r->key);
        r->valid = (len && len <= CHAN_WIRE_MAX_KEY_LEN && r->value
                    && (!r->vm || chan_vm_name_is_valid(r->vm)));
        if (r->valid) {
            json_t *v = json_loads(r->value, JSON_DECODE_ANY
                                   | JSON_REJECT_DUPLICATES, NULL);
            r->valid = v != NULL;
            json_decref(v);
        }
        (*n)++;
    }
    return recs;
}

/* Returns VM 'vm''s desired state computed from 'recs': a new JSON object
 * key -> version.  Its own records win over the all-VM ones. */
static json_t *
desired_for_vm(const struct record *recs, size_t n, const char *vm)
{
    json_t *desired = json_object();

    for (size_t i = 0; i < n; i++) {
        if (recs[i].valid && !recs[i].vm) {
            json_object_set_new(desired, recs[i].key,
                                json_integer(recs[i].version));
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i].valid && recs[i].vm && !strcmp(recs[i].vm, vm)) {
            json_object_set_new(desired, recs[i].key,
                                json_integer(recs[i].version));
        }
    }
    return desired;
}

/* Compares 'desired' and 'applied' (borrowed objects key -> version) and
 * returns a new JSON array of {"key", "desired_version", "applied_version"}
 * for every key where they differ (null for a side that lacks the key). */
static json_t *
pending_keys(const json_t *desired, const json_t *applied)
{
    json_t *pending = json_array();
    const char *key;
    json_t *v;

    json_object_foreach ((json_t *) desired, key, v) {
        json_t *a = json_object_get(applied, key);
        if (!a || !json_equal(a, v)) {
            json_array_append_new(pending, json_pack(
                "{sssOsO}", "key", key, "desired_version", v,
                "applied_version", a ? a : json_null()));
        }
    }
    json_object_foreach ((json_t *) applied, key, v) {
        if (!json_object_get(desired, key)) {
            json_array_append_new(pending, json_pack(
                "{sssnsO}", "key", key, "desired_version",
                "applied_version", v));
        }
    }
    return pending;
}

/* Returns a new JSON array of {"key", "vm", "error"} for the Records with
 * Record.error set that concern 'vm' (its own and the all-VM ones; NULL:
 * all of them). */
static json_t *
record_errors(const struct record *recs, size_t n, const char *vm)
{
    json_t *errors = json_array();

    for (size_t i = 0; i < n; i++) {
        const struct record *r = &recs[i];
        if (r->error && (!vm || !r->vm || !strcmp(r->vm, vm))) {
            json_array_append_new(errors, json_pack(
                "{ss ss? ss}", "key", r->key, "vm", r->vm, "error", r->error));
        }
    }
    return errors;
}

/* Returns a Channel row as a plain JSON object (new reference), with the
 * desired state from 'recs' compared against what it has applied. */
static json_t *
channel_to_json(const json_t *row, const struct record *recs, size_t n)
{
    const char *vm = row_string(row, "vm");
    const char *reason = row_string(row, "state_reason");
    const char *state = row_string(row, "state");
    const char *iface = row_string(row, "interface");
    json_t *applied = row_map(row, "applied");
    json_t *desired = desired_for_vm(recs, n, vm ? vm : "");
    json_t *pending = pending_keys(desired, applied);

    const char *chassis = row_string(row, "chassis");
    json_t *obj = json_pack(
        "{ss ss ss? sI sI ss sI sI sI sI sb so so so so so so}",
        "vm", vm ? vm : "",
        "state", state ? state : "",
        "state_reason", reason,
        "chan_id", (json_int_t) row_int(row, "chan_id", 0),
        "vid", (json_int_t) row_int(row, "vid", 0),
        "interface", iface ? iface : "",
        "host_epoch", (json_int_t) row_int(row, "host_epoch", 0),
        "guest_epoch", (json_int_t) row_int(row, "guest_epoch", 0),
        "desired_count", (json_int_t) row_int(row, "desired_count", 0),
        "applied_count", (json_int_t) row_int(row, "applied_count", 0),
        "synced", row_bool(row, "synced"),
        "applied", applied,
        "errors", row_map(row, "errors"),
        "statistics", row_map(row, "statistics"),
        "external_ids", row_map(row, "external_ids"),
        "pending", pending,
        "record_errors", record_errors(recs, n, vm ? vm : ""));
    json_object_set_new(obj, "chassis", json_string(chassis ? chassis : ""));
    json_object_set_new(obj, "claim",
                        json_integer(row_int(row, "claim", 0)));
    json_object_set_new(obj, "migrations",
                        json_integer(row_int(row, "migrations", 0)));
    json_decref(desired);
    return obj;
}

/* By VM name, then newest claim first. */
static int
compare_channels(const void *a_, const void *b_)
{
    const json_t *const *a = a_;
    const json_t *const *b = b_;
    int cmp = strcmp(json_string_value(json_object_get(*a, "vm")),
                     json_string_value(json_object_get(*b, "vm")));
    if (cmp) {
        return cmp;
    }
    json_int_t ca = json_integer_value(json_object_get(*a, "claim"));
    json_int_t cb = json_integer_value(json_object_get(*b, "claim"));
    return ca < cb ? 1 : ca > cb ? -1
           : strcmp(json_string_value(json_object_get(*b, "chassis")),
                    json_string_value(json_object_get(*a, "chassis")));
}

static json_t *row_string_map(const json_t *row, const char *column);

static int
compare_set_rows_desc(const void *a_, const void *b_)
{
    const json_t *const *a = a_, *const *b = b_;
    const char *na = row_string(*a, "name"), *nb = row_string(*b, "name");
    return -strcmp(na ? na : "", nb ? nb : "");
}

/* Returns a new JSON array: each entry of each Record_Set row of
 * 'set_rows' as a Record row (key, vm, value, version), then the Record
 * rows of 'rec_rows', so that where two give a key the later wins as in
 * chand-host: a Record row over a set, and of two sets the one whose name
 * sorts first. */
static json_t *
records_with_sets(const json_t *rec_rows, const json_t *set_rows)
{
    size_t n_sets = json_array_size(set_rows);
    const json_t **sets = xcalloc(n_sets + 1, sizeof *sets);
    for (size_t i = 0; i < n_sets; i++) {
        sets[i] = json_array_get(set_rows, i);
    }
    qsort(sets, n_sets, sizeof *sets, compare_set_rows_desc);
    json_t *all = json_array();
    for (size_t i = 0; i < n_sets; i++) {
        json_t *records = row_string_map(sets[i], "records");
        json_t *vm = json_object_get(sets[i], "vm");
        json_t *version = json_object_get(sets[i], "version");
        const char *key;
        json_t *value;
        json_object_foreach (records, key, value) {
            json_t *row = json_pack("{sssO}", "key", key, "value", value);
            if (vm) {
                json_object_set(row, "vm", vm);
            }
            if (version) {
                json_object_set(row, "version", version);
            }
            json_array_append_new(all, row);
        }
        json_decref(records);
    }
    free(sets);
    json_array_extend(all, (json_t *) rec_rows);
    return all;
}

/* Reads every Channel row (or only VM 'vm''s, if nonnull), every Record
 * row and every Record_Set row, and returns a new JSON array of channel_to_json() objects sorted by
 * VM name, one per VM (the newest claim's row); stores the Record rows (new reference) in '*record_rowsp' if it
 * is nonnull.  Returns NULL after printing an error. */
static json_t *
read_channels(struct db *db, const char *vm, json_t **record_rowsp)
{
    json_t *where = json_array();
    if (vm) {
        json_array_append_new(where, ovsdb_condition("vm", "==",
                                                     json_string(vm)));
    }
    json_t *ops = json_pack(
        "[ooo]", ovsdb_op_select("Channel", where, NULL),
        ovsdb_op_select("Record", json_array(),
                        json_pack("[sssss]", "key", "vm", "value", "version",
                                  "error")),
        ovsdb_op_select("Record_Set", json_array(),
                        json_pack("[ssss]", "name", "vm", "records",
                                  "version")));
    json_t *result;
    char *error;

    if (db_transact(db, ops, &result, &error) != TXN_OK) {
        chanctl_error("%s", error);
        free(error);
        return NULL;
    }
    json_t *chan_rows = json_object_get(json_array_get(result, 0), "rows");
    json_t *rec_rows = json_object_get(json_array_get(result, 1), "rows");
    json_t *set_rows = json_object_get(json_array_get(result, 2), "rows");
    if (!json_is_array(chan_rows) || !json_is_array(rec_rows)
        || !json_is_array(set_rows)) {
        chanctl_error("%s: malformed select result", db->name);
        json_decref(result);
        return NULL;
    }
    rec_rows = records_with_sets(rec_rows, set_rows);

    size_t n_recs;
    struct record *recs = parse_records(rec_rows, &n_recs);
    size_t n = json_array_size(chan_rows);
    json_t **objs = xcalloc(n + 1, sizeof *objs);
    for (size_t i = 0; i < n; i++) {
        objs[i] = channel_to_json(json_array_get(chan_rows, i), recs,
                                  n_recs);
    }
    qsort(objs, n, sizeof *objs, compare_channels);
    json_t *channels = json_array();
    for (size_t i = 0; i < n; i++) {
        /* Several chassis may have a row of a VM (during and after a
         * migration): the newest claim is the one that serves it. */
        if (i && !strcmp(json_string_value(json_object_get(objs[i], "vm")),
                         json_string_value(json_object_get(objs[i - 1],
                                                           "vm")))) {
            json_decref(objs[i]);
            continue;
        }
        json_array_append_new(channels, objs[i]);
    }
    free(objs);
    free(recs);
    if (record_rowsp) {
        *record_rowsp = json_incref(rec_rows);
    }
    json_decref(rec_rows);
    json_decref(result);
    return channels;
}

/* ----------------------------------------------------------------------
 * push and delete.
 */

/* Returns a new condition matching rows for 'vm' (NULL: for all VMs, whose
 * vm is the empty set). */
static json_t *
vm_condition(const char *vm)
{
    return ovsdb_condition("vm", "==", vm ? json_string(vm)
                                          : json_pack("[s[]]", "set"));
}

/* Returns a new where clause matching the Record of 'key' for 'vm' (NULL:
 * the all-VMs record, whose vm is the empty set). */
static json_t *
record_where(const char *key, const char *vm)
{
    return json_pack("[oo]",
                     ovsdb_condition("key", "==", json_string(key)),
                     vm_condition(vm));
}

static const char *
target_name(const char *vm)
{
    return vm ? vm : "all VMs";
}

/* As target_name(), for messages to the caller: the VM as the caller named
 * it (KIND:ID and its name, after --vm KIND:ID). */
static const char *
target_label(const struct chanctl_options *opts)
{
    return opts->vm ? chanctl_vm_label(opts) : "all VMs";
}

/* Checks KEY; returns 0 or a usage error. */
static int
check_key(const char *key)
{
    size_t len = strlen(key);

    if (!len || len > CHAN_WIRE_MAX_KEY_LEN) {
        return chanctl_usage_error("KEY must be 1 to %d bytes (got %zu)",
                                   CHAN_WIRE_MAX_KEY_LEN, len);
    }
    json_t *s = json_string(key);
    if (!s) {
        return chanctl_usage_error("KEY is not valid UTF-8");
    }
    json_decref(s);
    return 0;
}

/* One push attempt.  Returns TXN_OK and the new version in '*versionp',
 * TXN_RETRY if the record changed under us, or TXN_FAILED with the error
 * in '*errorp'.  On TXN_OK with 'vm' nonnull, also stores in
 * '*has_channelp' whether the Chan DB had a Channel row for 'vm' when the
 * record was written (read in the same transaction). */
static enum txn_status
push_once(struct db *db, const char *key, const char *vm, const char *value,
          int64_t tried, int64_t *versionp, bool *has_channelp,
          char **errorp)
{
    json_t *rows = NULL;
    json_t *ops = json_pack("[o]", ovsdb_op_select(
                                "Record", record_where(key, vm),
                                json_pack("[sss]", "_uuid", "version",
                                          "value")));
    json_t *result;
    enum txn_status status = db_transact(db, ops, &result, errorp);

    if (status != TXN_OK) {
        return status == TXN_RETRY ? TXN_FAILED : status;
    }
    rows = json_object_get(json_array_get(result, 0), "rows");
    size_t n_rows = json_array_size(rows);
    if (tried && n_rows == 1) {
        /* The previous attempt's outcome was unknown (its connection went,
         * or its wait failed, which the server's own retry after a cluster
         * failover also causes): if the row holds exactly what it wrote,
         * it committed, and writing again would apply it twice. */
        const json_t *r = json_array_get(rows, 0);
        const char *v = row_string(r, "value");
        if (row_int(r, "version", 0) == tried && v && !strcmp(v, value)) {
            *versionp = tried;
            *has_channelp = true;
            json_decref(result);
            return TXN_OK;
        }
    }
    char *comment = xasprintf("chanctl: push %s to %s", key,
                              target_name(vm));

    if (n_rows == 0) {
        /* Insert, provided nobody inserted it meanwhile. */
        json_t *row = json_pack("{ss ss sI}", "key", key, "value", value,
                                "version", (json_int_t) 1);
        json_object_set_new(row, "vm", vm ? json_string(vm)
                                          : json_pack("[s[]]", "set"));
        ops = json_pack("[ooo]",
                        ovsdb_op_wait("Record", record_where(key, vm),
                                      json_pack("[s]", "version"), "==",
                                      json_array(), 0),
                        ovsdb_op_insert("Record", row, NULL),
                        ovsdb_op_comment(comment));
        *versionp = 1;
    } else if (n_rows == 1) {
        /* Update, provided the version is still the one we read. */
        json_t *r = json_array_get(rows, 0);
        const char *uuid;
        if (ovsdb_datum_get_uuid(json_object_get(r, "_uuid"), &uuid)
            || !uuid) {
            *errorp = xasprintf("%s: malformed Record row",
                                db->name);
            free(comment);
            json_decref(result);
            return TXN_FAILED;
        }
        int64_t old = row_int(r, "version", 0);
        if (old >= INT64_MAX) {
            *errorp = xasprintf("record %s for %s: version cannot "
                                "grow past %"PRId64, key,
                                target_name(vm), old);
            free(comment);
            json_decref(result);
            return TXN_FAILED;
        }
        ops = json_pack(
            "[ooo]",
            ovsdb_op_wait("Record", ovsdb_where_uuid(uuid),
                          json_pack("[s]", "version"), "==",
                          json_pack("[{sI}]", "version", (json_int_t) old),
                          0),
            ovsdb_op_update("Record", ovsdb_where_uuid(uuid),
                            json_pack("{sssI}", "value", value, "version",
                                      (json_int_t) (old + 1))),
            ovsdb_op_comment(comment));
        *versionp = old + 1;
    } else {
        *errorp = xasprintf("%s: %zu Record rows for key %s and %s "
                            "(the (key, vm) index should prevent "
                            "this)", db->name, n_rows, key,
                            target_name(vm));
        free(comment);
        json_decref(result);
        return TXN_FAILED;
    }
    free(comment);
    json_decref(result);

    if (vm) {
        /* Does the VM have a channel yet?  Its Channel row, if any, is the
         * operation after the comment. */
        json_array_append_new(ops, ovsdb_op_select(
                                  "Channel",
                                  json_pack("[o]", ovsdb_condition(
                                                "vm", "==", json_string(vm))),
                                  json_pack("[s]", "_uuid")));
    }
    status = db_transact(db, ops, &result, errorp);
    if (status == TXN_OK && vm) {
        json_t *chan_rows = json_object_get(json_array_get(result, 3),
                                            "rows");
        *has_channelp = json_array_size(chan_rows) > 0;
    }
    json_decref(result);
    return status;
}

/* Sets record 'key' to the JSON text 'value' (both checked already) for
 * opts->vm (NULL: all VMs) on 'db', retrying while other writers change
 * it, and reports as push does.  Returns an exit status. */
static int
push_record(const struct chanctl_options *opts, struct db *db,
            const char *key, const char *value)
{
    char *msg = NULL;
    int64_t version = 0, tried = 0;
    bool has_channel = true;
    enum txn_status status = TXN_RETRY;
    for (int attempt = 0; attempt < PUSH_MAX_ATTEMPTS; attempt++) {
        free(msg);
        msg = NULL;
        status = push_once(db, key, opts->vm, value, tried, &version,
                           &has_channel, &msg);
        if (status == TXN_LOST) {
            /* Reconnect (to the next remote that answers: after a cluster
             * failover, another member) and find out what happened. */
            chanctl_sleep_msec((attempt + 1) * 100);
            db_close(db);
            if (db_open(opts, db)) {
                db->rpc = NULL;
                db->name = NULL;
                break;
            }
            tried = version;
            status = TXN_RETRY;
            continue;
        }
        if (status != TXN_RETRY) {
            break;
        }
        tried = version;
        /* Someone else wrote the record: back off a little, then read it
         * again. */
        chanctl_sleep_msec((attempt + 1) * 10);
    }

    if (status == TXN_RETRY) {
        chanctl_error("push %s to %s: gave up after %d attempts, the record "
                      "keeps changing (last error: %s)", key,
                      target_label(opts), PUSH_MAX_ATTEMPTS, msg);
        free(msg);
        return CHANCTL_FAIL;
    } else if (status == TXN_FAILED || status == TXN_LOST) {
        chanctl_error("push %s to %s: %s", key, target_label(opts), msg);
        free(msg);
        return CHANCTL_FAIL;
    }
    if (opts->verbose) {
        printf("pushed %s version %"PRId64" to %s\n", key, version,
               target_label(opts));
    }
    if (!has_channel) {
        /* Desired state may precede the VM: keep the record, but say so, in
         * case the name is a typo. */
        chanctl_error("warning: no channel for VM '%s' yet; the record is "
                      "kept and will be delivered when its channel comes up",
                      chanctl_vm_label(opts));
    }
    return CHANCTL_OK;
}

/* The Record_Set that a push of several records writes to, per target. */
#define PUSH_SET_NAME "chanctl"

/* Returns a new where clause matching Record_Set 'name' of 'vm' (NULL: the
 * all-VMs set). */
static json_t *
set_where(const char *name, const char *vm)
{
    return json_pack("[oo]",
                     ovsdb_condition("name", "==", json_string(name)),
                     vm_condition(vm));
}

/* One attempt at writing 'pairs' (key -> JSON text, all checked) into
 * opts->vm's Record_Set PUSH_SET_NAME, in one transaction that also
 * deletes the target's Record rows of the same keys (a Record row would
 * win over the set).  Returns TXN_OK, TXN_RETRY (the set came or went
 * meanwhile) or TXN_FAILED/TXN_LOST with '*errorp'. */
static enum txn_status
push_set_once(struct db *db, const char *vm, const json_t *pairs,
              char **errorp)
{
    json_t *ops = json_pack(
        "[oo]",
        ovsdb_op_select("Record_Set", set_where(PUSH_SET_NAME, vm),
                        json_pack("[s]", "_uuid")),
        ovsdb_op_select("Record",
                        json_pack("[o]", vm_condition(vm)),
                        json_pack("[ss]", "_uuid", "key")));
    json_t *result;
    enum txn_status status = db_transact(db, ops, &result, errorp);
    if (status != TXN_OK) {
        return status == TXN_RETRY ? TXN_FAILED : status;
    }
    json_t *sets = json_object_get(json_array_get(result, 0), "rows");
    json_t *records = json_object_get(json_array_get(result, 1), "rows");

    json_t *map = json_array();
    json_t *keys = json_array();
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) pairs, key, value) {
        json_array_append_new(map, json_pack("[sO]", key, value));
        json_array_append_new(keys, json_string(key));
    }
    char *comment = xasprintf("chanctl: push %zu records to %s",
                              json_object_size(pairs), target_name(vm));
    ops = json_array();
    const char *uuid = NULL;
    if (json_array_size(sets) == 1) {
        ovsdb_datum_get_uuid(json_object_get(json_array_get(sets, 0),
                                             "_uuid"), &uuid);
    }
    if (uuid) {
        json_t *mutations = json_pack(
            "[oo]",
            ovsdb_mutation("records", "delete", json_pack("[so]", "set",
                                                           keys)),
            ovsdb_mutation("records", "insert", json_pack("[so]", "map",
                                                           map)));
        json_array_append_new(ops, ovsdb_op_mutate("Record_Set",
                                                   ovsdb_where_uuid(uuid),
                                                   mutations));
    } else {
        json_t *row = json_pack("{ss so sI}", "name", PUSH_SET_NAME,
                                "records", json_pack("[so]", "map", map),
                                "version", (json_int_t) 1);
        json_object_set_new(row, "vm", vm ? json_string(vm)
                                          : json_pack("[s[]]", "set"));
        json_array_append_new(ops, ovsdb_op_wait(
                                  "Record_Set", set_where(PUSH_SET_NAME, vm),
                                  json_pack("[s]", "version"), "==",
                                  json_array(), 0));
        json_array_append_new(ops, ovsdb_op_insert("Record_Set", row, NULL));
        json_decref(keys);
    }
    size_t i;
    json_t *r;
    json_array_foreach (records, i, r) {
        const char *k = row_string(r, "key");
        const char *ruuid;
        if (k && json_object_get(pairs, k)
            && !ovsdb_datum_get_uuid(json_object_get(r, "_uuid"), &ruuid)
            && ruuid) {
            json_array_append_new(ops, ovsdb_op_delete(
                                      "Record", ovsdb_where_uuid(ruuid)));
        }
    }
    json_array_append_new(ops, ovsdb_op_comment(comment));
    free(comment);
    json_decref(result);

    status = db_transact(db, ops, &result, errorp);
    if (status == TXN_OK && uuid
        && json_integer_value(json_object_get(json_array_get(result, 0),
                                              "count")) != 1) {
        status = TXN_RETRY;     /* The set went meanwhile. */
    }
    json_decref(result);
    return status;
}

/* Writes 'pairs' (stolen) into the target's Record_Set, retrying while
 * other writers change it.  Returns an exit status. */
static int
push_set(const struct chanctl_options *opts, struct db *db, json_t *pairs)
{
    char *msg = NULL;
    enum txn_status status = TXN_RETRY;
    for (int attempt = 0; attempt < PUSH_MAX_ATTEMPTS; attempt++) {
        free(msg);
        msg = NULL;
        status = push_set_once(db, opts->vm, pairs, &msg);
        if (status != TXN_RETRY) {
            break;
        }
        chanctl_sleep_msec((attempt + 1) * 10);
    }
    int error = CHANCTL_OK;
    if (status != TXN_OK) {
        chanctl_error("push %zu records to %s: %s",
                      json_object_size(pairs), target_label(opts),
                      msg ? msg : "the record set keeps changing");
        error = CHANCTL_FAIL;
    } else if (opts->verbose) {
        printf("pushed %zu records to %s (Record_Set %s)\n",
               json_object_size(pairs), target_label(opts),
               PUSH_SET_NAME);
    }
    free(msg);
    json_decref(pairs);
    return error;
}

int
chanctl_cmd_push(const struct chanctl_options *opts, int argc, char *argv[])
{
    json_error_t jerror;
    struct db db;
    int error;

    if (argc % 2) {
        return chanctl_usage_error("push takes KEY JSON pairs (%d "
                                   "arguments given)", argc);
    }
    if (opts->vm && !chan_vm_name_is_valid(opts->vm)) {
        return chanctl_usage_error("--vm: '%s' is not a valid VM name (1 to "
                                   "%d characters from A-Z a-z 0-9 . _ -)",
                                   opts->vm, CHAN_VM_NAME_MAX);
    }
    json_t *pairs = json_object();
    for (int i = 0; i < argc; i += 2) {
        const char *key = argv[i];
        const char *value = argv[i + 1];
        if ((error = check_key(key))) {
            json_decref(pairs);
            return error;
        }
        json_t *parsed = json_loads(value, JSON_DECODE_ANY
                                    | JSON_REJECT_DUPLICATES, &jerror);
        if (!parsed) {
            json_decref(pairs);
            return chanctl_usage_error("value for %s is not valid JSON: %s "
                                       "(line %d, column %d)", key,
                                       jerror.text, jerror.line,
                                       jerror.column);
        }
        json_decref(parsed);
        if (json_object_get(pairs, key)) {
            json_decref(pairs);
            return chanctl_usage_error("key %s given twice", key);
        }
        json_object_set_new(pairs, key, json_string(value));
    }

    if ((error = db_open(opts, &db))) {
        json_decref(pairs);
        return error;
    }
    if (argc == 2) {
        error = push_record(opts, &db, argv[0], argv[1]);
        json_decref(pairs);
    } else {
        error = push_set(opts, &db, pairs);
    }
    db_close(&db);
    return error;
}

/* Returns a new JSON array of the _uuids of 'vm''s Record_Set rows (NULL:
 * the all-VMs sets) that hold 'key'. */
static json_t *
sets_with_key(struct db *db, const char *key, const char *vm)
{
    json_t *uuids = json_array();
    json_t *rows = db_select(db, "Record_Set",
                             json_pack("[o]", vm_condition(vm)),
                             json_pack("[ss]", "_uuid", "records"));
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row) {
        json_t *records = row_string_map(row, "records");
        const char *uuid;
        if (json_object_get(records, key)
            && !ovsdb_datum_get_uuid(json_object_get(row, "_uuid"), &uuid)
            && uuid) {
            json_array_append_new(uuids, json_string(uuid));
        }
        json_decref(records);
    }
    json_decref(rows);
    return uuids;
}

/* After a failed delete: if KEY has records for other targets, names them
 * as a hint. */
static void
hint_other_targets(struct db *db, const char *key)
{
    json_t *rows = db_select(db, "Record",
                             json_pack("[o]", ovsdb_condition(
                                           "key", "==", json_string(key))),
                             json_pack("[s]", "vm"));
    size_t i;
    json_t *row;

    if (!rows || !json_array_size(rows)) {
        json_decref(rows);
        return;
    }
    fprintf(stderr, "chanctl: %s has records for:", key);
    json_array_foreach (rows, i, row) {
        const char *vm = row_string(row, "vm");
        fprintf(stderr, "%s %s", i ? "," : "",
                vm && *vm ? vm : "all VMs (without --vm)");
    }
    fprintf(stderr, "\n");
    json_decref(rows);
}

int
chanctl_cmd_delete(const struct chanctl_options *opts, int argc,
                   char *argv[])
{
    const char *key = argv[0];
    struct db db;
    int error;

    (void) argc;
    if ((error = check_key(key))) {
        return error;
    }
    if ((error = db_open(opts, &db))) {
        return error;
    }

    char *comment = xasprintf("chanctl: delete %s from %s", key,
                              target_label(opts));
    json_t *sets = sets_with_key(&db, key, opts->vm);
    json_t *ops = json_pack("[o]", ovsdb_op_delete(
                                "Record", record_where(key, opts->vm)));
    size_t i;
    json_t *uuid;
    json_array_foreach (sets, i, uuid) {
        json_array_append_new(ops, ovsdb_op_mutate(
                                  "Record_Set",
                                  ovsdb_where_uuid(json_string_value(uuid)),
                                  json_pack("[o]", ovsdb_mutation(
                                                "records", "delete",
                                                json_pack("[s[s]]", "set",
                                                          key)))));
    }
    json_array_append_new(ops, ovsdb_op_comment(comment));
    size_t n_sets = json_array_size(sets);
    json_decref(sets);
    free(comment);
    json_t *result;
    char *msg;
    if (db_transact(&db, ops, &result, &msg) != TXN_OK) {
        chanctl_error("delete %s from %s: %s", key, target_label(opts),
                      msg);
        free(msg);
        db_close(&db);
        return CHANCTL_FAIL;
    }
    json_int_t count = json_integer_value(
        json_object_get(json_array_get(result, 0), "count"));
    json_decref(result);
    if (!count && !n_sets) {
        chanctl_error("delete: no record %s for %s", key,
                      target_label(opts));
        hint_other_targets(&db, key);
        db_close(&db);
        return CHANCTL_FAIL;
    }
    db_close(&db);
    if (opts->verbose) {
        printf("deleted %s from %s\n", key, target_label(opts));
    }
    return CHANCTL_OK;
}

/* ----------------------------------------------------------------------
 * status.
 */

static const char *
yes_no(bool b)
{
    return b ? "yes" : "no";
}

/* Prints 'pending' (an array from pending_keys()) as "k1 (version 3,
 * applied 2), k2 (...)", at most 'max' of them, on 'stream'. */
static void
print_pending(FILE *stream, const json_t *pending, size_t max)
{
    size_t i;
    json_t *p;

    json_array_foreach (pending, i, p) {
        if (i >= max) {
            fprintf(stream, " and %zu more", json_array_size(pending) - max);
            break;
        }
        const json_t *d = json_object_get(p, "desired_version");
        const json_t *a = json_object_get(p, "applied_version");
        fprintf(stream, "%s%s (", i ? ", " : "",
                json_string_value(json_object_get(p, "key")));
        if (json_is_null(d)) {
            fprintf(stream, "to delete");
        } else if (json_is_null(a)) {
            fprintf(stream, "version %"JSON_INTEGER_FORMAT", not applied",
                    json_integer_value(d));
        } else {
            fprintf(stream, "version %"JSON_INTEGER_FORMAT", applied %"
                    JSON_INTEGER_FORMAT, json_integer_value(d),
                    json_integer_value(a));
        }
        fputc(')', stream);
    }
}

static void
print_string_map(const char *title, const json_t *map)
{
    const char *key;
    json_t *v;

    if (!json_object_size(map)) {
        printf("%-15s none\n", title);
        return;
    }
    printf("%s\n", title);
    json_object_foreach ((json_t *) map, key, v) {
        if (json_is_string(v)) {
            printf("  %s: %s\n", key, json_string_value(v));
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("  %s: %s\n", key, text ? text : "?");
            free(text);
        }
    }
}

static void
print_record_errors(const json_t *errors, const char *indent)
{
    size_t i;
    json_t *e;

    json_array_foreach (errors, i, e) {
        const char *vm = json_string_value(json_object_get(e, "vm"));
        printf("%s%s (%s%s): %s\n", indent,
               json_string_value(json_object_get(e, "key")),
               vm ? "vm " : "", vm ? vm : "all VMs",
               json_string_value(json_object_get(e, "error")));
    }
}

/* After --vm KIND:ID: records in channel 'ch' (a channel_to_json() object)
 * the id by which the caller named the VM, so that it is reported with
 * it. */
static void
tag_channel_id(json_t *ch, const struct chanctl_options *opts)
{
    if (ch && opts->vm_id) {
        json_object_set_new(ch, "id", json_string(opts->vm_id));
        json_object_set_new(ch, "id_status",
                            json_string(opts->vm_id_status));
    }
}

/* Prints how the caller named channel 'ch': "KIND:ID (NAME)" if tagged by
 * tag_channel_id(), else its VM name. */
static void
print_channel_name(FILE *stream, const json_t *ch)
{
    const char *vm = json_string_value(json_object_get(ch, "vm"));
    const char *id = json_string_value(json_object_get(ch, "id"));

    if (id) {
        fprintf(stream, "%s (%s)", id, vm);
    } else {
        fputs(vm, stream);
    }
}

/* Prints the detailed view of one channel. */
static void
print_channel_detail(const json_t *ch, bool verbose)
{
    const char *reason = json_string_value(json_object_get(ch,
                                                           "state_reason"));
    const json_t *applied = json_object_get(ch, "applied");
    const json_t *pending = json_object_get(ch, "pending");
    const json_t *rec_errors = json_object_get(ch, "record_errors");

#define GET_INT(NAME) json_integer_value(json_object_get(ch, NAME))
    printf("%-15s %s\n", "vm:", json_string_value(json_object_get(ch, "vm")));
    if (json_object_get(ch, "id")) {
        printf("%-15s %s (%s)\n", "id:",
               json_string_value(json_object_get(ch, "id")),
               json_string_value(json_object_get(ch, "id_status")));
    }
    printf("%-15s %s%s%s%s\n", "state:",
           json_string_value(json_object_get(ch, "state")),
           reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
    printf("%-15s %"JSON_INTEGER_FORMAT"\n", "chan_id:", GET_INT("chan_id"));
    printf("%-15s %"JSON_INTEGER_FORMAT"\n", "vid:", GET_INT("vid"));
    printf("%-15s %s\n", "interface:",
           json_string_value(json_object_get(ch, "interface")));
    printf("%-15s %s (claim %"JSON_INTEGER_FORMAT", %"JSON_INTEGER_FORMAT
           " migrations)\n", "chassis:",
           json_string_value(json_object_get(ch, "chassis")),
           GET_INT("claim"), GET_INT("migrations"));
    printf("%-15s %"JSON_INTEGER_FORMAT"\n", "host_epoch:",
           GET_INT("host_epoch"));
    printf("%-15s %"JSON_INTEGER_FORMAT"\n", "guest_epoch:",
           GET_INT("guest_epoch"));
    printf("%-15s %"JSON_INTEGER_FORMAT"\n", "applied_count:",
           GET_INT("applied_count"));
    printf("%-15s %"JSON_INTEGER_FORMAT"\n", "desired_count:",
           GET_INT("desired_count"));
    printf("%-15s %zu keys\n", "applied map:", json_object_size(applied));
    printf("%-15s %s\n", "synced:",
           yes_no(json_is_true(json_object_get(ch, "synced"))));
#undef GET_INT
    printf("%-15s ", "pending:");
    if (json_array_size(pending)) {
        printf("%zu: ", json_array_size(pending));
        print_pending(stdout, pending, verbose ? SIZE_MAX : MAX_KEYS_SHOWN);
        printf("\n");
    } else {
        printf("none\n");
    }
    print_string_map("errors:", json_object_get(ch, "errors"));
    if (json_array_size(rec_errors)) {
        printf("record errors:\n");
        print_record_errors(rec_errors, "  ");
    } else {
        printf("%-15s none\n", "record errors:");
    }
    print_string_map("statistics:", json_object_get(ch, "statistics"));
    if (json_object_size(json_object_get(ch, "external_ids"))) {
        print_string_map("external_ids:", json_object_get(ch,
                                                          "external_ids"));
    }
    if (verbose) {
        print_string_map("applied:", applied);
    }
}

/* Prints the one-line-per-channel table. */
static void
print_channel_table(const json_t *channels, const json_t *all_rec_errors)
{
    size_t vm_width = 2, state_width = 5;
    size_t i;
    json_t *ch;

    json_array_foreach (channels, i, ch) {
        size_t w = strlen(json_string_value(json_object_get(ch, "vm")));
        vm_width = w > vm_width ? w : vm_width;
        w = strlen(json_string_value(json_object_get(ch, "state")));
        state_width = w > state_width ? w : state_width;
    }

    if (!json_array_size(channels)) {
        printf("no channels\n");
    } else {
        printf("%-*s  %-*s  %-15s  %-6s  %-10s  %s\n", (int) vm_width, "VM",
               (int) state_width, "STATE", "APPLIED/DESIRED", "SYNCED",
               "HOST_EPOCH", "CHASSIS");
    }
    json_array_foreach (channels, i, ch) {
        char counts[64];
        snprintf(counts, sizeof counts,
                 "%"JSON_INTEGER_FORMAT"/%"JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(ch, "applied_count")),
                 json_integer_value(json_object_get(ch, "desired_count")));
        printf("%-*s  %-*s  %-15s  %-6s  %-10"JSON_INTEGER_FORMAT"  %s\n",
               (int) vm_width, json_string_value(json_object_get(ch, "vm")),
               (int) state_width,
               json_string_value(json_object_get(ch, "state")), counts,
               yes_no(json_is_true(json_object_get(ch, "synced"))),
               json_integer_value(json_object_get(ch, "host_epoch")),
               json_string_value(json_object_get(ch, "chassis")));

        const char *reason = json_string_value(json_object_get(
                                                   ch, "state_reason"));
        if (reason) {
            printf("    reason: %s\n", reason);
        }
        const char *key;
        json_t *v;
        json_object_foreach (json_object_get(ch, "errors"), key, v) {
            printf("    error: %s: %s\n", key,
                   json_is_string(v) ? json_string_value(v) : "?");
        }
    }
    if (json_array_size(all_rec_errors)) {
        printf("Record errors:\n");
        print_record_errors(all_rec_errors, "  ");
    }
}

static void
print_json(const json_t *json)
{
    char *text = json_dumps(json, JSON_INDENT(2) | JSON_ENCODE_ANY);

    if (text) {
        printf("%s\n", text);
        free(text);
    }
}

int
chanctl_cmd_status(const struct chanctl_options *opts, int argc,
                   char *argv[])
{
    struct db db;
    int error;

    (void) argc;
    (void) argv;
    if ((error = db_open(opts, &db))) {
        return error;
    }
    json_t *rec_rows;
    json_t *channels = read_channels(&db, opts->vm, &rec_rows);
    db_close(&db);
    if (!channels) {
        return CHANCTL_FAIL;
    }

    if (opts->vm) {
        json_t *ch = json_array_get(channels, 0);
        tag_channel_id(ch, opts);
        if (!ch) {
            chanctl_error("no channel for VM %s in the Chan DB (is chand-host "
                          "running and the VM provisioned?)",
                          chanctl_vm_label(opts));
            error = CHANCTL_FAIL;
        } else if (opts->json) {
            print_json(ch);
        } else {
            print_channel_detail(ch, opts->verbose);
        }
    } else if (opts->json) {
        print_json(channels);
    } else {
        size_t n_recs;
        struct record *recs = parse_records(rec_rows, &n_recs);
        json_t *errors = record_errors(recs, n_recs, NULL);
        print_channel_table(channels, errors);
        json_decref(errors);
        free(recs);
    }
    json_decref(rec_rows);
    json_decref(channels);
    return error;
}

/* ----------------------------------------------------------------------
 * wait.
 */

/* Returns true if channel 'ch' (a channel_to_json() object) is ready and in
 * sync with the Record rows; otherwise, if 'why' is nonnull, prints what is
 * missing on it. */
static bool
channel_is_done(const json_t *ch, FILE *why)
{
    const char *state = json_string_value(json_object_get(ch, "state"));
    const char *reason = json_string_value(json_object_get(ch,
                                                           "state_reason"));
    bool synced = json_is_true(json_object_get(ch, "synced"));
    const json_t *pending = json_object_get(ch, "pending");
    bool ready = state && !strcmp(state, "ready");

    if (ready && synced && !json_array_size(pending)) {
        return true;
    }
    if (why) {
        const char *sep = "";
        fputs("  ", why);
        print_channel_name(why, ch);
        fputs(": ", why);
        if (!ready) {
            fprintf(why, "state is %s%s%s%s", state, reason ? " (" : "",
                    reason ? reason : "", reason ? ")" : "");
            sep = "; ";
        }
        if (!synced) {
            fprintf(why, "%snot synced (applied %"JSON_INTEGER_FORMAT
                    "/%"JSON_INTEGER_FORMAT")", sep,
                    json_integer_value(json_object_get(ch, "applied_count")),
                    json_integer_value(json_object_get(ch,
                                                       "desired_count")));
            sep = "; ";
        }
        if (json_array_size(pending)) {
            fprintf(why, "%spending: ", sep);
            print_pending(why, pending, MAX_KEYS_SHOWN);
        }
        fputc('\n', why);

        const char *key;
        json_t *v;
        json_object_foreach (json_object_get(ch, "errors"), key, v) {
            fprintf(why, "    error: %s: %s\n", key,
                    json_is_string(v) ? json_string_value(v) : "?");
        }
    }
    return false;
}

int
chanctl_cmd_wait(const struct chanctl_options *opts, int argc, char *argv[])
{
    long long int deadline = (opts->timeout > 0
                              ? chanctl_time_msec()
                                + (long long int) (opts->timeout * 1000)
                              : 0);
    struct db db;
    int error;

    (void) argc;
    (void) argv;
    if ((error = db_open(opts, &db))) {
        return error;
    }
    for (;;) {
        json_t *channels = read_channels(&db, opts->vm, NULL);
        if (!channels) {
            db_close(&db);
            return CHANCTL_FAIL;
        }

        bool done = !opts->vm || json_array_size(channels);
        size_t i;
        json_t *ch;
        tag_channel_id(json_array_get(channels, 0), opts);
        json_array_foreach (channels, i, ch) {
            done = done && channel_is_done(ch, NULL);
        }
        if (done) {
            json_decref(channels);
            db_close(&db);
            return CHANCTL_OK;
        }

        long long int now = chanctl_time_msec();
        if (deadline && now >= deadline) {
            chanctl_error("wait: timed out after %g seconds; still waiting "
                          "for:", opts->timeout);
            if (opts->vm && !json_array_size(channels)) {
                fprintf(stderr, "  %s: no Channel row (is chand-host running "
                        "and the VM provisioned?)\n",
                        chanctl_vm_label(opts));
            }
            json_array_foreach (channels, i, ch) {
                channel_is_done(ch, stderr);
            }
            json_decref(channels);
            db_close(&db);
            return CHANCTL_FAIL;
        }
        json_decref(channels);

        long long int sleep_ms = WAIT_POLL_MSEC;
        if (deadline && deadline - now < sleep_ms) {
            sleep_ms = deadline - now;
        }
        struct timespec ts = { sleep_ms / 1000, (sleep_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* ----------------------------------------------------------------------
 * Message authentication keys (Channel_Key).
 */

#define KEY_BYTES 32

static bool
is_hex_key(const char *s)
{
    if (strlen(s) != 2 * KEY_BYTES) {
        return false;
    }
    for (; *s; s++) {
        if (!isxdigit((unsigned char) *s)) {
            return false;
        }
    }
    return true;
}

/* Stores 64 lowercase hex digits of fresh random bytes in 'hex'. */
static int
random_hex_key(char hex[2 * KEY_BYTES + 1])
{
    uint8_t key[KEY_BYTES];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(key, 1, sizeof key, f) != sizeof key) {
        chanctl_error("cannot read /dev/urandom");
        if (f) {
            fclose(f);
        }
        return CHANCTL_FAIL;
    }
    fclose(f);
    for (size_t i = 0; i < KEY_BYTES; i++) {
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    }
    return 0;
}

static json_t *
key_where(const char *vm)
{
    return json_pack("[o]", ovsdb_condition("vm", "==", json_string(vm)));
}

/* chanctl key-add --vm VM [HEXKEY]: adds the next generation of VM's key
 * (random unless given) and prints "GENERATION HEXKEY", the line to put in
 * the guest's key file. */
int
chanctl_cmd_key_add(const struct chanctl_options *opts, int argc,
                    char *argv[])
{
    char hex[2 * KEY_BYTES + 1];
    struct db db;

    if (!opts->vm) {
        return chanctl_usage_error("key-add needs --vm NAME");
    }
    if (!chan_vm_name_is_valid(opts->vm)) {
        return chanctl_usage_error("invalid VM name '%s'", opts->vm);
    }
    if (argc) {
        if (!is_hex_key(argv[0])) {
            return chanctl_usage_error("a key is %d hex digits", 2 * KEY_BYTES);
        }
        snprintf(hex, sizeof hex, "%s", argv[0]);
    } else if (random_hex_key(hex)) {
        return CHANCTL_FAIL;
    }

    int status = db_open(opts, &db);
    if (status) {
        return status;
    }
    for (int attempt = 0; attempt < PUSH_MAX_ATTEMPTS; attempt++) {
        json_t *rows = db_select(&db, "Channel_Key", key_where(opts->vm),
                                 json_pack("[s]", "generation"));
        if (!rows) {
            db_close(&db);
            return CHANCTL_FAIL;
        }
        int64_t next = 1;
        size_t i;
        json_t *row;
        json_array_foreach (rows, i, row) {
            int64_t gen = row_int(row, "generation", 0);
            if (gen >= next) {
                next = gen + 1;
            }
        }
        json_decref(rows);

        json_t *where = json_pack("[oo]",
                                  ovsdb_condition("vm", "==",
                                                  json_string(opts->vm)),
                                  ovsdb_condition("generation", "==",
                                                  json_integer(next)));
        json_t *ops = json_pack(
            "[ooo]",
            ovsdb_op_wait("Channel_Key", where, json_pack("[s]", "vm"),
                          "==", json_array(), 0),
            ovsdb_op_insert("Channel_Key",
                            json_pack("{sssIss}", "vm", opts->vm,
                                      "generation", (json_int_t) next,
                                      "key", hex), NULL),
            ovsdb_op_comment("chanctl key-add"));
        json_t *result;
        char *error;
        enum txn_status txn = db_transact(&db, ops, &result, &error);
        if (txn == TXN_OK) {
            json_decref(result);
            db_close(&db);
            printf("%"PRId64" %s\n", next, hex);
            return CHANCTL_OK;
        }
        if (txn == TXN_FAILED || txn == TXN_LOST) {
            chanctl_error("%s", error);
            free(error);
            break;
        }
        free(error);
    }
    db_close(&db);
    return CHANCTL_FAIL;
}

/* chanctl key-retire --vm VM GENERATION. */
int
chanctl_cmd_key_retire(const struct chanctl_options *opts, int argc,
                       char *argv[])
{
    char *end;
    long long gen = strtoll(argv[0], &end, 10);
    struct db db;

    if (!opts->vm) {
        return chanctl_usage_error("key-retire needs --vm NAME");
    }
    if (*end || gen < 1 || gen > INT32_MAX) {
        return chanctl_usage_error("invalid generation '%s'", argv[0]);
    }
    int status = db_open(opts, &db);
    if (status) {
        return status;
    }
    json_t *where = json_pack("[oo]",
                              ovsdb_condition("vm", "==",
                                              json_string(opts->vm)),
                              ovsdb_condition("generation", "==",
                                              json_integer(gen)));
    json_t *result;
    char *error;
    enum txn_status txn = db_transact(
        &db, json_pack("[o]", ovsdb_op_delete("Channel_Key", where)),
        &result, &error);
    db_close(&db);
    if (txn != TXN_OK) {
        chanctl_error("%s", error);
        free(error);
        return CHANCTL_FAIL;
    }
    int64_t count = row_int(json_array_get(result, 0), "count", 0);
    json_decref(result);
    if (!count) {
        chanctl_error("%s has no key generation %lld",
                      chanctl_vm_label(opts), gen);
        return CHANCTL_FAIL;
    }
    return CHANCTL_OK;
}

/* chanctl key-list [--vm VM]: VM and generations (never the keys). */
int
chanctl_cmd_key_list(const struct chanctl_options *opts, int argc,
                     char *argv[])
{
    int status;
    json_t *rows = select_rows(opts, "Channel_Key",
                               opts->vm ? key_where(opts->vm) : json_array(),
                               json_pack("[ss]", "vm", "generation"),
                               &status);
    if (!rows) {
        return status;
    }
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row) {
        printf("%s %"PRId64"\n", row_string(row, "vm"),
               row_int(row, "generation", 0));
    }
    json_decref(rows);
    return CHANCTL_OK;
}

/* ----------------------------------------------------------------------
 * published --vm NAME [PREFIX]: what a VM published (Guest_Record).
 */

static int
compare_rows_by_key(const void *a_, const void *b_)
{
    const json_t *a = *(const json_t *const *) a_;
    const json_t *b = *(const json_t *const *) b_;
    return strcmp(json_string_value(json_object_get(a, "key")),
                  json_string_value(json_object_get(b, "key")));
}

int
chanctl_cmd_published_vm(const struct chanctl_options *opts, int argc,
                         char *argv[])
{
    const char *prefix = argc > 0 ? argv[0] : "";
    int error;

    if (!opts->vm) {
        chanctl_error("published on the host needs --vm NAME");
        return CHANCTL_USAGE;
    }
    json_t *rows = select_rows(opts, "Guest_Record",
                               json_pack("[o]", ovsdb_condition(
                                             "vm", "==",
                                             json_string(opts->vm))),
                               json_pack("[ssss]", "key", "value", "version",
                                         "updated"),
                               &error);
    if (!rows) {
        return error;
    }

    /* Keep the prefix's rows, sorted by key. */
    size_t n = 0;
    json_t **sorted = calloc(json_array_size(rows) + 1, sizeof *sorted);
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row) {
        const char *key = json_string_value(json_object_get(row, "key"));
        if (key && !strncmp(key, prefix, strlen(prefix))) {
            sorted[n++] = row;
        }
    }
    qsort(sorted, n, sizeof *sorted, compare_rows_by_key);
    if (opts->json) {
        json_t *out = json_array();
        for (i = 0; i < n; i++) {
            json_t *value = json_loads(json_string_value(
                                           json_object_get(sorted[i],
                                                           "value")),
                                       JSON_DECODE_ANY, NULL);
            json_array_append_new(out, json_pack(
                                      "{sO so* sO sO}",
                                      "key", json_object_get(sorted[i], "key"),
                                      "value", value,
                                      "version", json_object_get(sorted[i],
                                                                 "version"),
                                      "updated", json_object_get(sorted[i],
                                                                 "updated")));
        }
        print_json(out);
        json_decref(out);
    } else {
        for (i = 0; i < n; i++) {
            printf("%s = %s (version %"JSON_INTEGER_FORMAT")\n",
                   json_string_value(json_object_get(sorted[i], "key")),
                   json_string_value(json_object_get(sorted[i], "value")),
                   json_integer_value(json_object_get(sorted[i],
                                                      "version")));
        }
        printf("%zu records published by %s\n", n, chanctl_vm_label(opts));
    }
    free(sorted);
    json_decref(rows);
    return 0;
}

/* ----------------------------------------------------------------------
 * object-list [DIGEST-PREFIX], object-show DIGEST: the object mapping
 * (Object, Object_Ref; doc/objects.md).
 */

/* Returns column 'column' of 'row', a map of strings, as a new JSON
 * object ({} if it is not one). */
static json_t *
row_string_map(const json_t *row, const char *column)
{
    json_t *map;
    return (ovsdb_datum_get_string_map(json_object_get(row, column), &map)
            ? json_object() : map);
}

/* Number of references in an Object row's 'refs' (a set of uuids). */
static size_t
object_n_refs(const json_t *row)
{
    json_t *uuids;
    size_t n = 0;
    if (!ovsdb_datum_get_uuid_set(json_object_get(row, "refs"), &uuids)) {
        n = json_array_size(uuids);
        json_decref(uuids);
    }
    return n;
}

/* Returns the strings of 'array' joined by ',' (malloc'd; "-" if none). */
static char *
join_strings(const json_t *array)
{
    size_t i;
    json_t *s;
    char *joined = NULL;

    json_array_foreach (array, i, s) {
        char *next = xasprintf("%s%s%s", joined ? joined : "",
                               joined ? "," : "", json_string_value(s));
        free(joined);
        joined = next;
    }
    return joined ? joined : xstrdup("-");
}

static json_t *
object_json(const json_t *row)
{
    return json_pack("{ss sI so so sI}",
                     "digest", row_string(row, "digest"),
                     "size", (json_int_t) row_int(row, "size", 0),
                     "flags", ovsdb_datum_string_array(
                         json_object_get(row, "flags")),
                     "params", row_string_map(row, "params"),
                     "n_refs", (json_int_t) object_n_refs(row));
}

static int
compare_rows_by_column(const json_t *a, const json_t *b, const char *column)
{
    const char *x = row_string(a, column), *y = row_string(b, column);
    return strcmp(x ? x : "", y ? y : "");
}

static int
compare_rows_by_digest(const void *a_, const void *b_)
{
    return compare_rows_by_column(*(const json_t *const *) a_,
                                  *(const json_t *const *) b_, "digest");
}

static int
compare_rows_by_vm(const void *a_, const void *b_)
{
    return compare_rows_by_column(*(const json_t *const *) a_,
                                  *(const json_t *const *) b_, "vm");
}

/* Returns the rows of 'rows' (borrowed) whose 'column' starts with
 * 'prefix', sorted with 'compare', as a malloc'd array; '*np' gets its
 * length. */
static const json_t **
sorted_rows(const json_t *rows, const char *column, const char *prefix,
            int (*compare)(const void *, const void *), size_t *np)
{
    const json_t **out = xcalloc(json_array_size(rows) + 1, sizeof *out);
    size_t i, n = 0;
    json_t *row;
    json_array_foreach (rows, i, row) {
        const char *s = row_string(row, column);
        if (s && !strncmp(s, prefix, strlen(prefix))) {
            out[n++] = row;
        }
    }
    qsort(out, n, sizeof *out, compare);
    *np = n;
    return out;
}

int
chanctl_cmd_object_list(const struct chanctl_options *opts, int argc,
                        char *argv[])
{
    const char *prefix = argc > 0 ? argv[0] : "";
    int error;

    json_t *rows = select_rows(opts, "Object", json_array(), NULL, &error);
    if (!rows) {
        return error;
    }
    size_t n;
    const json_t **sorted = sorted_rows(rows, "digest", prefix,
                                        compare_rows_by_digest, &n);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(out, object_json(sorted[i]));
    }
    if (opts->json) {
        print_json(out);
    } else {
        size_t i;
        json_t *o;
        json_array_foreach (out, i, o) {
            char *flags = join_strings(json_object_get(o, "flags"));
            printf("%s size %"JSON_INTEGER_FORMAT" refs %"
                   JSON_INTEGER_FORMAT" flags %s\n",
                   json_string_value(json_object_get(o, "digest")),
                   json_integer_value(json_object_get(o, "size")),
                   json_integer_value(json_object_get(o, "n_refs")), flags);
            free(flags);
        }
        printf("%zu objects\n", n);
    }
    json_decref(out);
    free(sorted);
    json_decref(rows);
    return 0;
}

static json_t *
ref_json(const json_t *row)
{
    return json_pack("{ss so so so sI}",
                     "vm", row_string(row, "vm"),
                     "paths", ovsdb_datum_string_array(
                         json_object_get(row, "paths")),
                     "flags", ovsdb_datum_string_array(
                         json_object_get(row, "flags")),
                     "params", row_string_map(row, "params"),
                     "last_seen", (json_int_t) row_int(row, "last_seen", 0));
}

static void
print_object(const json_t *o)
{
    char *flags = join_strings(json_object_get(o, "flags"));
    printf("object %s\n  size %"JSON_INTEGER_FORMAT", flags %s, "
           "referenced by %"JSON_INTEGER_FORMAT" VMs\n",
           json_string_value(json_object_get(o, "digest")),
           json_integer_value(json_object_get(o, "size")), flags,
           json_integer_value(json_object_get(o, "n_refs")));
    free(flags);

    size_t i;
    json_t *r;
    json_array_foreach (json_object_get(o, "refs"), i, r) {
        char *paths = join_strings(json_object_get(r, "paths"));
        char *rflags = join_strings(json_object_get(r, "flags"));
        printf("  %s: %s (flags %s)\n",
               json_string_value(json_object_get(r, "vm")), paths, rflags);
        free(paths);
        free(rflags);

        const char *kind;
        json_t *res;
        json_object_foreach (json_object_get(r, "results"), kind, res) {
            const char *why = json_string_value(json_object_get(res,
                                                                "reason"));
            const char *detail = json_string_value(json_object_get(res,
                                                                   "detail"));
            printf("    %s: %s%s%s\n", kind,
                   json_string_value(json_object_get(res, "status")),
                   why || detail ? ": " : "", why ? why : detail ? detail : "");
        }
    }
}

/* The rows of 'table' whose key is 'key' (a new reference), or NULL after
 * printing the error. */
static json_t *
select_by_key(struct db *db, const char *table, const char *key)
{
    return db_select(db, table, json_pack("[o]", ovsdb_condition(
                                              "key", "==", json_string(key))),
                     NULL);
}

/* Adds to each VM's entry of 'refs' (an array of ref_json()) a "results"
 * object: kind -> the VM's published result of its record <kind>/DIGEST
 * (doc/objects.md, "Handlers"), from the Guest_Record 'rows'. */
static void
add_results(json_t *refs, const json_t *rows)
{
    size_t i, j;
    json_t *r, *row;
    json_array_foreach (refs, i, r) {
        json_t *results = json_object();
        const char *vm = json_string_value(json_object_get(r, "vm"));
        json_array_foreach (rows, j, row) {
            const char *rvm = row_string(row, "vm");
            const char *key = row_string(row, "key");
            const char *value = row_string(row, "value");
            json_t *v = value ? json_loads(value, 0, NULL) : NULL;
            if (v && rvm && key && !strcmp(rvm, vm)) {
                /* "result/<kind>/<digest>". */
                char *kind = xasprintf("%.*s", (int) strcspn(key + 7, "/"),
                                       key + 7);
                json_object_set_new(results, kind, v);
                free(kind);
            } else {
                json_decref(v);
            }
        }
        json_object_set_new(r, "results", results);
    }
}

int
chanctl_cmd_object_show(const struct chanctl_options *opts, int argc,
                        char *argv[])
{
    const char *digest = argv[0];
    struct db db;
    int error;

    if (argc != 1) {
        return chanctl_usage_error("object-show needs one DIGEST");
    }
    if ((error = db_open(opts, &db))) {
        return error;
    }
    json_t *where = json_pack("[o]", ovsdb_condition("digest", "==",
                                                     json_string(digest)));
    json_t *objects = db_select(&db, "Object", json_incref(where), NULL);
    json_t *refs = objects ? db_select(&db, "Object_Ref", json_incref(where),
                                       NULL)
                           : NULL;
    char *verdict = xasprintf("result/verdict/%s", digest);
    char *notice = xasprintf("result/notice/%s", digest);
    json_t *results = refs ? select_by_key(&db, "Guest_Record", verdict)
                           : NULL;
    json_t *notices = results ? select_by_key(&db, "Guest_Record", notice)
                              : NULL;
    if (notices) {
        json_array_extend(results, notices);
        json_decref(notices);
    } else {
        json_decref(results);
        results = NULL;
    }
    free(verdict);
    free(notice);
    json_decref(where);
    db_close(&db);
    if (!objects || !refs || !results) {
        json_decref(objects);
        json_decref(refs);
        return CHANCTL_FAIL;
    }
    if (!json_array_size(objects)) {
        chanctl_error("no object %s in the Chan DB", digest);
        json_decref(objects);
        json_decref(refs);
        json_decref(results);
        return CHANCTL_FAIL;
    }

    json_t *o = object_json(json_array_get(objects, 0));
    size_t n;
    const json_t **sorted = sorted_rows(refs, "vm", "", compare_rows_by_vm,
                                        &n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, ref_json(sorted[i]));
    }
    add_results(list, results);
    json_object_set_new(o, "refs", list);
    if (opts->json) {
        print_json(o);
    } else {
        print_object(o);
    }
    json_decref(o);
    free(sorted);
    json_decref(objects);
    json_decref(refs);
    json_decref(results);
    return 0;
}

/* Parses object-set's changes ('argc' words at 'argv': flags=F1,F2,...
 * or NAME=VALUE or NAME=) into operations on the Object rows selected by
 * 'where' (borrowed).  Returns them (a new JSON array), or NULL after
 * printing the error. */
static json_t *
object_set_ops(int argc, char *argv[], const json_t *where)
{
    json_t *flags = NULL, *set = json_object(), *unset = json_array();
    json_t *ops = NULL;

    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        const char *eq = strchr(w, '=');
        if (!eq || eq == w) {
            chanctl_usage_error("object-set: \"%s\" is not flags=F,... or "
                                "NAME=VALUE", w);
            goto out;
        }
        char *name = xasprintf("%.*s", (int) (eq - w), w);
        if (!strcmp(name, "flags")) {
            json_decref(flags);
            flags = json_array();
            char *list = xstrdup(eq + 1), *save = NULL;
            for (char *f = strtok_r(list, ",", &save); f;
                 f = strtok_r(NULL, ",", &save)) {
                json_array_append_new(flags, json_string(f));
            }
            free(list);
        } else {
            json_array_append_new(unset, json_string(name));
            if (eq[1]) {
                json_object_set_new(set, name, json_string(eq + 1));
            }
        }
        free(name);
    }
    ops = json_array();
    json_t *mutations = json_array();
    if (json_array_size(unset)) {
        /* A map insert keeps an existing key: delete it first. */
        json_array_append_new(mutations, ovsdb_mutation(
                                  "params", "delete",
                                  ovsdb_datum_set(json_incref(unset))));
    }
    if (json_object_size(set)) {
        json_array_append_new(mutations, ovsdb_mutation(
                                  "params", "insert",
                                  ovsdb_datum_string_map(set)));
    }
    /* The first operation always counts the rows: a mutate, empty or not. */
    json_array_append_new(ops, ovsdb_op_mutate("Object",
                                               json_deep_copy(where),
                                               mutations));
    if (flags) {
        json_array_append_new(ops, ovsdb_op_update(
                                  "Object", json_deep_copy(where),
                                  json_pack("{so}", "flags",
                                            ovsdb_datum_set(
                                                json_incref(flags)))));
    }
out:
    json_decref(flags);
    json_decref(set);
    json_decref(unset);
    return ops;
}

/* chanctl object-set DIGEST [+FLAG|-FLAG|NAME=VALUE|NAME=]...: the control
 * plane's flags and parameters of an object (doc/objects.md). */
int
chanctl_cmd_object_set(const struct chanctl_options *opts, int argc,
                       char *argv[])
{
    json_t *where = json_pack("[o]", ovsdb_condition("digest", "==",
                                                     json_string(argv[0])));
    json_t *ops = object_set_ops(argc - 1, argv + 1, where);
    json_decref(where);
    if (!ops) {
        return CHANCTL_USAGE;
    }
    struct db db;
    int status = db_open(opts, &db);
    if (status) {
        json_decref(ops);
        return status;
    }
    json_t *result;
    char *error;
    enum txn_status txn = db_transact(&db, ops, &result, &error);
    db_close(&db);
    if (txn != TXN_OK) {
        chanctl_error("%s", error);
        free(error);
        return CHANCTL_FAIL;
    }
    int64_t count = row_int(json_array_get(result, 0), "count", 0);
    json_decref(result);
    if (!count) {
        chanctl_error("no object %s in the Chan DB", argv[0]);
        return CHANCTL_FAIL;
    }
    return CHANCTL_OK;
}

/* ----------------------------------------------------------------------
 * allow, disallow, allowlist: the objects VMs may install (Allowlist).
 */

static json_t *
digest_where(const char *digest)
{
    return json_pack("[o]", ovsdb_condition("digest", "==",
                                            json_string(digest)));
}

/* One allow attempt: inserts the Allowlist row of 'digest' with 'name'
 * (NULL: "") or, if there is one, sets its name to 'name' (NULL: leaves
 * it).  Returns TXN_OK, TXN_RETRY if a row was inserted meanwhile, or
 * TXN_FAILED with the error in '*errorp'. */
static enum txn_status
allow_once(struct db *db, const char *digest, const char *name,
           char **errorp)
{
    json_t *ops = json_pack("[o]", ovsdb_op_select(
                                "Allowlist", digest_where(digest),
                                json_pack("[s]", "_uuid")));
    json_t *result;
    enum txn_status status = db_transact(db, ops, &result, errorp);

    if (status != TXN_OK) {
        return status == TXN_RETRY ? TXN_FAILED : status;
    }
    size_t n_rows = json_array_size(json_object_get(json_array_get(result, 0),
                                                    "rows"));
    json_decref(result);
    if (n_rows && !name) {
        return TXN_OK;
    }

    char *comment = xasprintf("chanctl: allow %s", digest);
    json_t *op = (n_rows
                  ? ovsdb_op_update("Allowlist", digest_where(digest),
                                    json_pack("{ss}", "name", name))
                  : ovsdb_op_insert("Allowlist",
                                    json_pack("{ss ss}", "digest", digest,
                                              "name", name ? name : ""),
                                    NULL));
    ops = json_pack("[oo]", op, ovsdb_op_comment(comment));
    free(comment);
    status = db_transact(db, ops, &result, errorp);
    json_decref(result);
    return status;
}

/* chanctl allow DIGEST [NAME]: puts DIGEST on the allowlist with NAME, or
 * renames its entry. */
int
chanctl_cmd_allow(const struct chanctl_options *opts, int argc,
                  char *argv[])
{
    const char *digest = argv[0];
    const char *name = argc > 1 ? argv[1] : NULL;
    struct db db;
    int error;

    if ((error = chanctl_check_digest(digest))) {
        return error;
    }
    if (name) {
        json_t *s = json_string(name);
        if (!s) {
            return chanctl_usage_error("NAME is not valid UTF-8");
        }
        json_decref(s);
    }
    if ((error = db_open(opts, &db))) {
        return error;
    }
    enum txn_status status = TXN_RETRY;
    char *msg = NULL;
    for (int attempt = 0; attempt < PUSH_MAX_ATTEMPTS; attempt++) {
        free(msg);
        msg = NULL;
        status = allow_once(&db, digest, name, &msg);
        if (status != TXN_RETRY) {
            break;
        }
        chanctl_sleep_msec((attempt + 1) * 10);
    }
    db_close(&db);
    if (status != TXN_OK) {
        chanctl_error("allow %s: %s", digest, msg);
        free(msg);
        return CHANCTL_FAIL;
    }
    if (opts->verbose) {
        printf("allowed %s%s%s\n", digest, name ? " as " : "",
               name ? name : "");
    }
    return CHANCTL_OK;
}

/* chanctl disallow DIGEST. */
int
chanctl_cmd_disallow(const struct chanctl_options *opts, int argc,
                     char *argv[])
{
    const char *digest = argv[0];
    struct db db;
    int error;

    (void) argc;
    if ((error = chanctl_check_digest(digest))) {
        return error;
    }
    if ((error = db_open(opts, &db))) {
        return error;
    }
    char *comment = xasprintf("chanctl: disallow %s", digest);
    json_t *ops = json_pack("[oo]",
                            ovsdb_op_delete("Allowlist",
                                            digest_where(digest)),
                            ovsdb_op_comment(comment));
    free(comment);
    json_t *result;
    char *msg;
    enum txn_status txn = db_transact(&db, ops, &result, &msg);
    db_close(&db);
    if (txn != TXN_OK) {
        chanctl_error("disallow %s: %s", digest, msg);
        free(msg);
        return CHANCTL_FAIL;
    }
    int64_t count = row_int(json_array_get(result, 0), "count", 0);
    json_decref(result);
    if (!count) {
        chanctl_error("no allowlist entry for %s", digest);
        return CHANCTL_FAIL;
    }
    if (opts->verbose) {
        printf("disallowed %s\n", digest);
    }
    return CHANCTL_OK;
}

/* chanctl allowlist [--json]: "DIGEST NAME" per entry, by digest. */
int
chanctl_cmd_allowlist(const struct chanctl_options *opts, int argc,
                      char *argv[])
{
    int error;

    (void) argc;
    (void) argv;
    json_t *rows = select_rows(opts, "Allowlist", json_array(),
                               json_pack("[ss]", "digest", "name"), &error);
    if (!rows) {
        return error;
    }
    size_t n;
    const json_t **sorted = sorted_rows(rows, "digest", "",
                                        compare_rows_by_digest, &n);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *name = row_string(sorted[i], "name");
        json_array_append_new(out, json_pack(
                                  "{ss ss}", "digest",
                                  row_string(sorted[i], "digest"),
                                  "name", name ? name : ""));
    }
    if (opts->json) {
        print_json(out);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach (out, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            printf("%s %s\n",
                   json_string_value(json_object_get(e, "digest")),
                   *name ? name : "-");
        }
    }
    json_decref(out);
    free(sorted);
    json_decref(rows);
    return CHANCTL_OK;
}

/* ----------------------------------------------------------------------
 * install --vm NAME DIGEST PATH [--mode MODE]: the record install/DIGEST.
 */

/* Checks an install mode: 3 or 4 octal digits, without the setuid, setgid
 * and sticky bits.  Returns 0 or a usage error. */
static int
check_mode(const char *mode)
{
    size_t len = strlen(mode);

    if (len < 3 || len > 4 || strspn(mode, "01234567") != len) {
        return chanctl_usage_error("--mode: '%s' is not an octal mode of 3 "
                                   "or 4 digits, such as 0755", mode);
    } else if (strtol(mode, NULL, 8) & 07000) {
        return chanctl_usage_error("--mode: '%s' has setuid, setgid or "
                                   "sticky bits, which install refuses",
                                   mode);
    }
    return 0;
}

/* Reads the size of object 'digest' from its Object row into '*sizep'.
 * Returns an exit status after printing why if there is none. */
static int
object_size(struct db *db, const char *digest, int64_t *sizep)
{
    json_t *rows = db_select(db, "Object", digest_where(digest),
                             json_pack("[s]", "size"));

    if (!rows) {
        return CHANCTL_FAIL;
    } else if (!json_array_size(rows)) {
        chanctl_error("no object %s in the Chan DB: store it with chanctl "
                      "object-store FILE first", digest);
        json_decref(rows);
        return CHANCTL_FAIL;
    }
    *sizep = row_int(json_array_get(rows, 0), "size", 0);
    json_decref(rows);
    return CHANCTL_OK;
}

/* chanctl install --vm VM DIGEST PATH [--mode MODE]: asks VM to install
 * object DIGEST at PATH, by pushing the record install/DIGEST for it. */
int
chanctl_cmd_install(const struct chanctl_options *opts, int argc,
                    char *argv[])
{
    const char *digest = argv[0];
    const char *path = argv[1];
    const char *mode = opts->mode ? opts->mode : "0755";
    json_t *jpath = json_string(path);
    bool path_is_utf8 = jpath != NULL;
    struct db db;
    int error;

    (void) argc;
    json_decref(jpath);
    if ((error = chanctl_check_vm_required(opts, "install"))
        || (error = chanctl_check_digest(digest))
        || (error = check_mode(mode))) {
        return error;
    } else if (path[0] != '/') {
        return chanctl_usage_error("PATH '%s' is not absolute (it is a path "
                                   "in the VM)", path);
    } else if (!path_is_utf8) {
        return chanctl_usage_error("PATH is not valid UTF-8");
    }

    if ((error = db_open(opts, &db))) {
        return error;
    }
    int64_t size;
    error = object_size(&db, digest, &size);
    if (!error) {
        char *key = xasprintf("install/%s", digest);
        json_t *v = json_pack("{ss ss ss sI}", "digest", digest,
                              "mode", mode, "path", path,
                              "size", (json_int_t) size);
        char *value = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

        error = push_record(opts, &db, key, value);
        free(value);
        json_decref(v);
        free(key);
    }
    db_close(&db);
    return error;
}

/* ----------------------------------------------------------------------
 * call: a request to a VM and its response (doc/adapters.md).
 */

/* Reads, in one transaction, the response to request 'key' of 'vm'
 * (Guest_Record result/'key') and why chand-host cannot deliver the
 * request, if it cannot (the Record's error, or the key's entry in the
 * VM's Channel.errors).  Returns the response (a new reference), or NULL
 * with '*whyp' set (malloc()ed) if the request is undeliverable, or NULL
 * alone if there is no response yet.  On failure to read, prints the
 * error and sets '*failedp'. */
static json_t *
read_response(struct db *db, const char *vm, const char *key, char **whyp,
              bool *failedp)
{
    char *rkey = xasprintf("result/%s", key);
    json_t *ops = json_pack(
        "[ooo]",
        ovsdb_op_select("Guest_Record",
                        json_pack("[oo]",
                                  ovsdb_condition("vm", "==",
                                                  json_string(vm)),
                                  ovsdb_condition("key", "==",
                                                  json_string(rkey))),
                        json_pack("[s]", "value")),
        ovsdb_op_select("Record", record_where(key, vm),
                        json_pack("[s]", "error")),
        ovsdb_op_select("Channel",
                        json_pack("[o]", ovsdb_condition("vm", "==",
                                                         json_string(vm))),
                        json_pack("[s]", "errors")));
    json_t *result, *response = NULL;
    char *msg;

    free(rkey);
    if (db_transact(db, ops, &result, &msg) != TXN_OK) {
        chanctl_error("%s", msg);
        free(msg);
        *failedp = true;
        return NULL;
    }
#define ROW(I) json_array_get(json_object_get(json_array_get(result, I), \
                                              "rows"), 0)
    const char *value = row_string(ROW(0), "value");
    const char *error = row_string(ROW(1), "error");
    json_t *errors = row_map(ROW(2), "errors");
#undef ROW
    const char *reason = json_string_value(json_object_get(errors, key));

    if (value) {
        response = json_loads(value, 0, NULL);
    } else if (error || reason) {
        *whyp = xstrdup(error ? error : reason);
    }
    json_decref(errors);
    json_decref(result);
    return response;
}

/* Deletes request 'key' of 'vm' (which withdraws its response). */
static void
delete_request(struct db *db, const char *vm, const char *key)
{
    json_t *ops = json_pack("[oo]",
                            ovsdb_op_delete("Record", record_where(key, vm)),
                            ovsdb_op_comment("chanctl: call done"));
    json_t *result;
    char *msg;

    if (db_transact(db, ops, &result, &msg) != TXN_OK) {
        chanctl_error("warning: cannot delete the request %s of %s: %s",
                      key, vm, msg);
        free(msg);
    }
    json_decref(result);
}

/* Prints 'response' (borrowed) for 'command'; returns the exit status. */
static int
print_response(const struct chanctl_options *opts, const char *command,
               const json_t *response)
{
    const json_t *error = json_object_get(response, "error");

    if (opts->json) {
        print_json(response);
    } else if (!error) {
        char *text = json_dumps(json_object_get(response, "result"),
                                JSON_ENCODE_ANY | JSON_COMPACT
                                | JSON_SORT_KEYS);
        printf("%s\n", text ? text : "null");
        free(text);
    }
    if (error) {
        chanctl_error("call %s: %s: %s", command,
                      json_string_value(json_object_get(error, "class")),
                      json_string_value(json_object_get(error, "desc")));
        return CHANCTL_FAIL;
    }
    return CHANCTL_OK;
}

int
chanctl_cmd_call(const struct chanctl_options *opts, int argc, char *argv[])
{
    const char *command = argv[0];
    double timeout = opts->timeout > 0 ? opts->timeout : CHANCTL_CALL_TIMEOUT;
    json_t *args = argc > 1 ? json_loads(argv[1], 0, NULL) : json_object();
    char id[2 * KEY_BYTES + 1];
    struct db db;
    int error;

    if ((error = chanctl_check_vm_required(opts, "call"))) {
        json_decref(args);
        return error;
    } else if (!json_is_object(args)) {
        json_decref(args);
        return chanctl_usage_error("JSON-ARGS must be a JSON object");
    } else if (!*command || strlen(command) > CHAN_WIRE_MAX_KEY_LEN) {
        json_decref(args);
        return chanctl_usage_error("COMMAND must be 1 to %d bytes",
                                   CHAN_WIRE_MAX_KEY_LEN);
    } else if ((error = random_hex_key(id))) {
        json_decref(args);
        return error;
    }
    id[CHANCTL_CALL_ID_LEN] = '\0';

    char *key = xasprintf("call/%s", id);
    json_t *req = json_pack("{s:o, s:I, s:s, s:I}", "args", args,
                            "at", (json_int_t) chanctl_wall_msec(),
                            "command", command,
                            "timeout_ms", (json_int_t) (timeout * 1000 + 0.5));
    char *value = req ? json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(req);
    if (!value) {
        free(key);
        return chanctl_usage_error("COMMAND is not valid UTF-8");
    }
    if ((error = db_open(opts, &db))) {
        goto out;
    }
    error = push_record(opts, &db, key, value);
    if (error) {
        goto out_close;
    }

    /* The guest answers a request it could not run in time with a Timeout
     * error; the grace covers the trip back. */
    long long deadline = chanctl_deadline(timeout
                                          + CHANCTL_CALL_GRACE_MSEC / 1000.0);
    bool failed = false;
    json_t *response = NULL;
    char *why = NULL;
    while (!failed) {
        response = read_response(&db, opts->vm, key, &why, &failed);
        if (response || why || failed
            || chanctl_time_msec() >= deadline) {
            break;
        }
        chanctl_poll_sleep(deadline);
    }
    if (response) {
        error = print_response(opts, command, response);
        json_decref(response);
    } else if (why) {
        chanctl_error("call %s: chand-host cannot deliver the request: %s",
                      command, why);
        free(why);
        error = CHANCTL_FAIL;
    } else if (!failed) {
        chanctl_error("call %s: Timeout: no response from %s within %g s",
                      command, opts->vm, timeout);
        error = CHANCTL_FAIL;
    } else {
        error = CHANCTL_FAIL;
    }
    delete_request(&db, opts->vm, key);

out_close:
    db_close(&db);
out:
    free(value);
    free(key);
    return error;
}

/* ----------------------------------------------------------------------
 * set-connection, get-connection, del-connection: the Chan DB server's own
 * remotes, the Connection rows of Chan_Global.connections, which
 * ovsdb-server serves with --remote=db:Chan,Chan_Global,connections.
 */

/* Returns true if 'target' is a remote ovsdb-server can serve or connect
 * to: ptcp:PORT[:IP], pssl:PORT[:IP], punix:PATH, tcp:IP:PORT,
 * ssl:IP:PORT or unix:PATH, with something after the prefix. */
static bool
connection_target_is_valid(const char *target)
{
    static const char *const prefixes[] = {
        "ptcp:", "pssl:", "punix:", "tcp:", "ssl:", "unix:"
    };

    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t len = strlen(prefixes[i]);
        if (!strncmp(target, prefixes[i], len) && target[len]) {
            if (prefixes[i][0] == 'p' && prefixes[i][1] != 'u') {
                /* ptcp:, pssl:: PORT is 0 to 65535. */
                char *end;
                errno = 0;
                long port = strtol(target + len, &end, 10);
                return (!errno && end != target + len
                        && (*end == '\0' || *end == ':')
                        && port >= 0 && port <= 65535);
            }
            return true;
        }
    }
    return false;
}

/* Reads the _uuid of the Chan_Global row into '*uuidp' (malloc'd; NULL if
 * there is none).  Returns TXN_OK, or TXN_FAILED with '*errorp'. */
static enum txn_status
read_chan_global(struct db *db, char **uuidp, char **errorp)
{
    json_t *ops = json_pack("[o]", ovsdb_op_select(
                                "Chan_Global", json_array(),
                                json_pack("[s]", "_uuid")));
    json_t *result;
    enum txn_status status = db_transact(db, ops, &result, errorp);
    const char *uuid = NULL;

    *uuidp = NULL;
    if (status != TXN_OK) {
        return TXN_FAILED;
    }
    json_t *rows = json_object_get(json_array_get(result, 0), "rows");
    if (json_array_size(rows)) {
        ovsdb_datum_get_uuid(json_object_get(json_array_get(rows, 0),
                                             "_uuid"), &uuid);
    }
    *uuidp = uuid ? xstrdup(uuid) : NULL;
    json_decref(result);
    return TXN_OK;
}

/* One attempt to make Chan_Global.connections 'n' new Connection rows, one
 * per target in 'targets', with 'opts''s --role, --read-only and
 * --inactivity-probe (n == 0: no connections).  The Connection rows no
 * longer referenced go with the commit (Connection is not a root table).
 * Returns TXN_OK, TXN_RETRY if the Chan_Global row came or went meanwhile,
 * or TXN_FAILED with '*errorp'. */
static enum txn_status
set_connections_once(struct db *db, const struct chanctl_options *opts,
                     char *targets[], size_t n, const char *comment,
                     char **errorp)
{
    char *global;
    enum txn_status status = read_chan_global(db, &global, errorp);

    if (status != TXN_OK) {
        return status;
    }
    if (!global && !n) {
        return TXN_OK;          /* No Chan_Global row: no connections. */
    }

    json_t *ops = json_array();
    json_t *refs = json_array();
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "conn%zu", i);
        json_t *row = json_pack("{ss ss sb}", "target", targets[i],
                                "role", opts->role ? opts->role : "",
                                "read_only", opts->read_only);
        if (opts->inactivity_probe >= 0) {
            json_object_set_new(row, "inactivity_probe",
                                json_integer(opts->inactivity_probe));
        }
        json_array_append_new(ops, ovsdb_op_insert("Connection", row, name));
        json_array_append_new(refs, ovsdb_datum_named_uuid(name));
    }
    json_t *row = json_pack("{so}", "connections", ovsdb_datum_set(refs));
    if (global) {
        json_array_append_new(ops, ovsdb_op_update(
                                  "Chan_Global", ovsdb_where_uuid(global),
                                  row));
    } else {
        json_array_append_new(ops, ovsdb_op_insert("Chan_Global", row,
                                                   NULL));
    }
    json_array_append_new(ops, ovsdb_op_comment(comment));
    size_t global_op = n;

    json_t *result;
    status = db_transact(db, ops, &result, errorp);
    if (status == TXN_OK && global
        && !row_int(json_array_get(result, global_op), "count", 0)) {
        status = TXN_RETRY;     /* The row went away meanwhile. */
        *errorp = xasprintf("%s: the Chan_Global row keeps changing",
                            db->name);
    }
    json_decref(result);
    free(global);
    return status;
}

/* Runs set_connections_once() until it succeeds or fails for good.
 * Returns 0, or prints the error and returns CHANCTL_FAIL. */
static int
set_connections(struct db *db, const struct chanctl_options *opts,
                char *targets[], size_t n, const char *what)
{
    enum txn_status status = TXN_RETRY;
    char *msg = NULL;
    char *comment = xasprintf("chanctl: %s", what);

    for (int attempt = 0; attempt < PUSH_MAX_ATTEMPTS; attempt++) {
        free(msg);
        msg = NULL;
        status = set_connections_once(db, opts, targets, n, comment, &msg);
        if (status != TXN_RETRY) {
            break;
        }
        chanctl_sleep_msec((attempt + 1) * 10);
    }
    free(comment);
    if (status != TXN_OK) {
        chanctl_error("%s: %s", what, msg);
        free(msg);
        return CHANCTL_FAIL;
    }
    return 0;
}

/* Returns true if the Chan DB has an RBAC_Role row named 'role'.  (False
 * also if it cannot tell; the caller only warns.) */
static bool
role_exists(struct db *db, const char *role)
{
    json_t *ops = json_pack("[o]", ovsdb_op_select(
                                "RBAC_Role",
                                json_pack("[o]", ovsdb_condition(
                                              "name", "==",
                                              json_string(role))),
                                json_pack("[s]", "_uuid")));
    json_t *result;
    char *error;

    if (db_transact(db, ops, &result, &error) != TXN_OK) {
        free(error);
        return false;
    }
    bool exists = json_array_size(json_object_get(json_array_get(result, 0),
                                                  "rows")) > 0;
    json_decref(result);
    return exists;
}

/* chanctl set-connection [--role ROLE] [--read-only]
 * [--inactivity-probe MSEC] TARGET... */
int
chanctl_cmd_set_connection(const struct chanctl_options *opts, int argc,
                           char *argv[])
{
    struct db db;
    int error;

    for (int i = 0; i < argc; i++) {
        if (!connection_target_is_valid(argv[i])) {
            return chanctl_usage_error("'%s' is not a TARGET: use "
                                       "pssl:PORT[:IP], ptcp:PORT[:IP], "
                                       "punix:PATH, ssl:IP:PORT, "
                                       "tcp:IP:PORT or unix:PATH", argv[i]);
        }
        for (int j = 0; j < i; j++) {
            if (!strcmp(argv[i], argv[j])) {
                return chanctl_usage_error("TARGET '%s' is given twice",
                                           argv[i]);
            }
        }
    }
    if ((error = db_open(opts, &db))) {
        return error;
    }
    error = set_connections(&db, opts, argv, argc, "set-connection");
    bool warn = !error && opts->role && !role_exists(&db, opts->role);
    db_close(&db);
    if (error) {
        return error;
    }
    if (warn) {
        chanctl_error("note: there is no RBAC role '%s' yet, so clients on "
                      "these remotes can write nothing (create it with: "
                      "chanctl rbac-init --role %s)", opts->role,
                      opts->role);
    }
    if (opts->verbose) {
        for (int i = 0; i < argc; i++) {
            printf("connection %s%s%s%s\n", argv[i],
                   opts->role ? " role " : "",
                   opts->role ? opts->role : "",
                   opts->read_only ? " read-only" : "");
        }
    }
    return CHANCTL_OK;
}

static int
compare_rows_by_target(const void *a_, const void *b_)
{
    return compare_rows_by_column(*(const json_t *const *) a_,
                                  *(const json_t *const *) b_, "target");
}

/* chanctl get-connection [--json]: the Connection rows, by target. */
int
chanctl_cmd_get_connection(const struct chanctl_options *opts, int argc,
                           char *argv[])
{
    int error;

    (void) argc;
    (void) argv;
    /* Connection is not a root table: every row is one that
     * Chan_Global.connections references. */
    json_t *rows = select_rows(opts, "Connection", json_array(), NULL,
                               &error);
    if (!rows) {
        return error;
    }
    size_t n;
    const json_t **sorted = sorted_rows(rows, "target", "",
                                        compare_rows_by_target, &n);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const json_t *row = sorted[i];
        const char *role = row_string(row, "role");
        int64_t probe = row_int(row, "inactivity_probe", -1);
        json_array_append_new(out, json_pack(
                                  "{ss ss sb so sb so}",
                                  "target", row_string(row, "target"),
                                  "role", role ? role : "",
                                  "read_only", row_bool(row, "read_only"),
                                  "inactivity_probe",
                                  probe >= 0 ? json_integer(probe)
                                             : json_null(),
                                  "is_connected",
                                  row_bool(row, "is_connected"),
                                  "status", row_map(row, "status")));
    }
    if (opts->json) {
        print_json(out);
    } else {
        size_t i;
        json_t *c;
        json_array_foreach (out, i, c) {
            const char *role = json_string_value(json_object_get(c,
                                                                 "role"));
            const json_t *probe = json_object_get(c, "inactivity_probe");
            if (json_is_true(json_object_get(c, "read_only"))) {
                printf("read-only ");
            }
            if (*role) {
                printf("role=\"%s\" ", role);
            }
            if (json_is_integer(probe)) {
                printf("inactivity-probe=%" JSON_INTEGER_FORMAT " ",
                       json_integer_value(probe));
            }
            printf("%s\n", json_string_value(json_object_get(c, "target")));
        }
    }
    json_decref(out);
    free(sorted);
    json_decref(rows);
    return CHANCTL_OK;
}

/* chanctl del-connection: no remotes in Chan_Global.connections. */
int
chanctl_cmd_del_connection(const struct chanctl_options *opts, int argc,
                           char *argv[])
{
    struct db db;
    int error;

    (void) argc;
    (void) argv;
    if ((error = db_open(opts, &db))) {
        return error;
    }
    json_t *rows = db_select(&db, "Connection", json_array(),
                             json_pack("[s]", "target"));
    if (!rows) {
        db_close(&db);
        return CHANCTL_FAIL;
    }
    error = set_connections(&db, opts, NULL, 0, "del-connection");
    db_close(&db);
    if (!error && opts->verbose) {
        size_t n;
        const json_t **sorted = sorted_rows(rows, "target", "",
                                            compare_rows_by_target, &n);
        for (size_t i = 0; i < n; i++) {
            printf("deleted connection %s\n",
                   row_string(sorted[i], "target"));
        }
        free(sorted);
    }
    json_decref(rows);
    return error;
}

/* ----------------------------------------------------------------------
 * rbac-init: the RBAC role chand-host connects with.
 *
 * ovsdb-server (ovsdb/rbac.c) gives a client on a remote whose Connection
 * has a nonempty role, identified by the common name (CN) of its TLS
 * certificate, these rights per table, from the RBAC_Permission row that
 * RBAC_Role.permissions maps the table to (no row: no writes at all):
 *
 *   - insert: only if 'insert_delete' and the new row is "authorized":
 *     one of the 'authorization' columns of the row holds the client's id
 *     ("" authorizes every row).  Which columns are set does not matter.
 *   - delete: only if 'insert_delete' and every row the where clause
 *     matches is authorized.
 *   - update, mutate: only if every row the where clause matches is
 *     authorized (as it is before the change) and every column set or
 *     mutated is in 'update'.
 *
 * Reads are never restricted.
 */

/* The permissions of one table. */
struct rbac_perm {
    const char *table;
    const char *authorization;  /* One column, or "" for every row. */
    bool insert_delete;
    const char *const *update;  /* NULL-terminated. */
};

/* Channel: a host writes only the rows that name it in 'chassis', and
 * every column chand-host writes but 'chassis' (so that a row never moves
 * to another chassis) and 'vm'. */
static const char *const channel_update[] = {
    "chan_id", "vid", "interface", "claim", "migrations", "state",
    "state_reason", "host_epoch", "guest_epoch", "applied_seq", "sent_seq",
    "sent", "up_epoch", "up_position", "published_count", "applied",
    "applied_digest", "desired_count", "applied_count", "synced", "errors", "statistics",
    NULL
};
/* Record: Record.error, and the relayed and object-action records that
 * chand-host derives. */
static const char *const record_update[] = {
    "error", "value", "version", NULL
};
/* Record_Set: its error column. */
static const char *const record_set_update[] = {
    "error", NULL
};
static const char *const guest_record_update[] = {
    "value", "version", "updated", NULL
};
/* Object and Object_Ref: what chand-host/objmap.c updates and mutates. */
static const char *const object_update[] = {
    "refs", "held_by", NULL
};
static const char *const object_ref_update[] = {
    "paths", "flags", "params", "last_seen", NULL
};

static const struct rbac_perm rbac_perms[] = {
    { "Channel", "chassis", true, channel_update },
    { "Guest_Record", "", true, guest_record_update },
    { "Object", "", true, object_update },
    { "Object_Ref", "", true, object_ref_update },
    { "Record", "", true, record_update },
    { "Record_Set", "", false, record_set_update },
};

#define N_RBAC_PERMS (sizeof rbac_perms / sizeof *rbac_perms)

static int
compare_strings(const void *a_, const void *b_)
{
    return strcmp(*(const char *const *) a_, *(const char *const *) b_);
}

/* Returns 'strings' (NULL-terminated) as a sorted JSON array. */
static json_t *
sorted_string_array(const char *const *strings)
{
    json_t *array = json_array();
    size_t n = 0;

    while (strings[n]) {
        n++;
    }
    const char **copy = xmalloc((n + 1) * sizeof *copy);
    memcpy(copy, strings, n * sizeof *copy);
    qsort(copy, n, sizeof *copy, compare_strings);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(array, json_string(copy[i]));
    }
    free(copy);
    return array;
}

/* Returns the strings of set column 'column' of 'row' as a sorted JSON
 * array (new reference). */
static json_t *
row_sorted_strings(const json_t *row, const char *column)
{
    json_t *array = ovsdb_datum_string_array(json_object_get(row, column));
    size_t n = json_array_size(array);
    const char **strings = xmalloc((n + 1) * sizeof *strings);

    for (size_t i = 0; i < n; i++) {
        strings[i] = json_string_value(json_array_get(array, i));
    }
    strings[n] = NULL;
    json_t *sorted = sorted_string_array(strings);
    free(strings);
    json_decref(array);
    return sorted;
}

/* Returns true if RBAC_Permission row 'row' grants exactly 'p'. */
static bool
perm_row_matches(const json_t *row, const struct rbac_perm *p)
{
    const char *table = row_string(row, "table");
    const char *const auth[] = { p->authorization, NULL };
    json_t *want_auth = sorted_string_array(auth);
    json_t *want_update = sorted_string_array(p->update);
    json_t *have_auth = row_sorted_strings(row, "authorization");
    json_t *have_update = row_sorted_strings(row, "update");
    bool insdel, present;

    bool match = (table && !strcmp(table, p->table)
                  && !ovsdb_datum_get_boolean(json_object_get(
                                                  row, "insert_delete"),
                                              &insdel, &present)
                  && present && insdel == p->insert_delete
                  && json_equal(want_auth, have_auth)
                  && json_equal(want_update, have_update));
    json_decref(want_auth);
    json_decref(want_update);
    json_decref(have_auth);
    json_decref(have_update);
    return match;
}

/* Returns the RBAC_Permission row of 'rows' (borrowed) whose _uuid is
 * 'uuid', or NULL. */
static const json_t *
find_row_by_uuid(const json_t *rows, const char *uuid)
{
    size_t i;
    const json_t *row;

    json_array_foreach (rows, i, row) {
        const char *u;
        if (!ovsdb_datum_get_uuid(json_object_get(row, "_uuid"), &u)
            && u && !strcmp(u, uuid)) {
            return row;
        }
    }
    return NULL;
}

/* Decodes RBAC_Role.permissions of 'role' into a new JSON object
 * table -> permission uuid. */
static json_t *
role_permissions(const json_t *role)
{
    const json_t *json = json_object_get(role, "permissions");
    json_t *object = json_object();
    struct ovsdb_datum datum;

    if (!json || ovsdb_datum_from_json(&datum, json, false)) {
        return object;
    }
    for (size_t i = 0; datum.is_map && i < datum.n; i++) {
        if (datum.keys[i].type == OVSDB_ATOM_STRING
            && datum.values[i].type == OVSDB_ATOM_UUID) {
            json_object_set_new(object, datum.keys[i].u.string,
                                json_string(datum.values[i].u.string));
        }
    }
    ovsdb_datum_destroy(&datum);
    return object;
}

/* Returns true if 'perms' (table -> uuid, from role_permissions()) maps
 * exactly the tables of rbac_perms[] to RBAC_Permission rows of 'perm_rows'
 * that grant what rbac_perms[] says. */
static bool
role_is_as_wanted(const json_t *perms, const json_t *perm_rows)
{
    if (json_object_size(perms) != N_RBAC_PERMS) {
        return false;
    }
    for (size_t i = 0; i < N_RBAC_PERMS; i++) {
        const char *uuid = json_string_value(
            json_object_get(perms, rbac_perms[i].table));
        const json_t *row = uuid ? find_row_by_uuid(perm_rows, uuid) : NULL;
        if (!row || !perm_row_matches(row, &rbac_perms[i])) {
            return false;
        }
    }
    return true;
}

/* What rbac_init_once() did. */
enum rbac_outcome {
    RBAC_UNCHANGED,
    RBAC_CREATED,
    RBAC_REPLACED
};

/* One attempt to make role 'role' grant rbac_perms[].  Reads the roles and
 * permissions; if the role is as wanted, changes nothing.  Otherwise, in
 * one transaction that first checks that the role's row is still as read:
 * inserts the RBAC_Permission rows, points the role (inserted if missing)
 * at them, and deletes the permission rows it pointed at before that no
 * other role uses.  Returns TXN_OK and '*outcome', TXN_RETRY if another
 * writer got in between, or TXN_FAILED with '*errorp'. */
static enum txn_status
rbac_init_once(struct db *db, const char *role, enum rbac_outcome *outcome,
               char **errorp)
{
    json_t *ops = json_pack("[oo]",
                            ovsdb_op_select("RBAC_Role", json_array(),
                                            NULL),
                            ovsdb_op_select("RBAC_Permission", json_array(),
                                            NULL));
    json_t *result;
    enum txn_status status = db_transact(db, ops, &result, errorp);

    if (status != TXN_OK) {
        return TXN_FAILED;
    }
    const json_t *roles = json_object_get(json_array_get(result, 0), "rows");
    const json_t *perm_rows = json_object_get(json_array_get(result, 1),
                                              "rows");

    /* This role, and the permission rows other roles use. */
    const json_t *mine = NULL;
    json_t *others_use = json_object();
    size_t i;
    const json_t *r;
    json_array_foreach (roles, i, r) {
        const char *name = row_string(r, "name");
        if (name && !strcmp(name, role)) {
            mine = r;
            continue;
        }
        json_t *perms = role_permissions(r);
        const char *table;
        json_t *uuid;
        json_object_foreach (perms, table, uuid) {
            json_object_set_new(others_use, json_string_value(uuid),
                                json_true());
        }
        json_decref(perms);
    }
    json_t *old = mine ? role_permissions(mine) : json_object();

    if (mine && role_is_as_wanted(old, perm_rows)) {
        *outcome = RBAC_UNCHANGED;
        json_decref(old);
        json_decref(others_use);
        json_decref(result);
        return TXN_OK;
    }

    json_t *where_role = json_pack("[o]", ovsdb_condition(
                                       "name", "==", json_string(role)));
    ops = json_array();
    /* The role is as read: the same permissions, or still missing. */
    json_t *expect = json_array();
    if (mine) {
        json_array_append_new(expect, json_pack(
                                  "{sO}", "permissions",
                                  json_object_get(mine, "permissions")));
    }
    json_array_append_new(ops, ovsdb_op_wait(
                              "RBAC_Role", json_deep_copy(where_role),
                              json_pack("[s]", "permissions"), "==",
                              expect, 0));

    json_t *map = json_array();
    for (size_t k = 0; k < N_RBAC_PERMS; k++) {
        const struct rbac_perm *p = &rbac_perms[k];
        const char *const auth[] = { p->authorization, NULL };
        size_t n_update = 0;
        char name[32];

        while (p->update[n_update]) {
            n_update++;
        }
        snprintf(name, sizeof name, "perm%zu", k);
        json_array_append_new(ops, ovsdb_op_insert(
                                  "RBAC_Permission",
                                  json_pack("{ss so sb so}",
                                            "table", p->table,
                                            "authorization",
                                            ovsdb_datum_string_set(auth, 1),
                                            "insert_delete",
                                            p->insert_delete,
                                            "update",
                                            ovsdb_datum_string_set(
                                                p->update, n_update)),
                                  name));
        json_array_append_new(map, json_pack("[so]", p->table,
                                             ovsdb_datum_named_uuid(name)));
    }
    json_t *permissions = json_pack("[so]", "map", map);
    if (mine) {
        json_array_append_new(ops, ovsdb_op_update(
                                  "RBAC_Role", where_role,
                                  json_pack("{so}", "permissions",
                                            permissions)));
    } else {
        json_array_append_new(ops, ovsdb_op_insert(
                                  "RBAC_Role",
                                  json_pack("{ss so}", "name", role,
                                            "permissions", permissions),
                                  NULL));
        json_decref(where_role);
    }
    /* RBAC_Permission is a root table: the rows the role no longer uses
     * stay unless deleted. */
    const char *table;
    json_t *uuid;
    json_object_foreach (old, table, uuid) {
        const char *u = json_string_value(uuid);
        if (!json_object_get(others_use, u)) {
            json_array_append_new(ops, ovsdb_op_delete(
                                      "RBAC_Permission",
                                      ovsdb_where_uuid(u)));
        }
    }
    char *comment = xasprintf("chanctl: rbac-init --role %s", role);
    json_array_append_new(ops, ovsdb_op_comment(comment));
    free(comment);

    *outcome = mine ? RBAC_REPLACED : RBAC_CREATED;
    json_decref(old);
    json_decref(others_use);
    json_decref(result);

    status = db_transact(db, ops, &result, errorp);
    json_decref(result);
    return status;
}

/* chanctl rbac-init [--role ROLE]. */
int
chanctl_cmd_rbac_init(const struct chanctl_options *opts, int argc,
                      char *argv[])
{
    const char *role = opts->role ? opts->role : CHANCTL_DEFAULT_ROLE;
    enum rbac_outcome outcome = RBAC_UNCHANGED;
    enum txn_status status = TXN_RETRY;
    char *msg = NULL;
    struct db db;
    int error;

    (void) argc;
    (void) argv;
    if ((error = db_open(opts, &db))) {
        return error;
    }
    for (int attempt = 0; attempt < PUSH_MAX_ATTEMPTS; attempt++) {
        free(msg);
        msg = NULL;
        status = rbac_init_once(&db, role, &outcome, &msg);
        if (status != TXN_RETRY) {
            break;
        }
        chanctl_sleep_msec((attempt + 1) * 10);
    }
    db_close(&db);
    if (status != TXN_OK) {
        chanctl_error("rbac-init: %s", msg);
        free(msg);
        return CHANCTL_FAIL;
    }

    if (outcome == RBAC_UNCHANGED) {
        printf("role %s is already set up: nothing changed\n", role);
    } else {
        printf("%s role %s: writes ", (outcome == RBAC_CREATED
                                        ? "created" : "replaced the "
                                        "permissions of"), role);
        for (size_t i = 0; i < N_RBAC_PERMS; i++) {
            printf("%s%s", i ? ", " : "", rbac_perms[i].table);
        }
        printf(" (Channel: only rows whose chassis is the client's "
               "certificate CN)\n");
    }
    return CHANCTL_OK;
}

/* ----------------------------------------------------------------------
 * Platform ids (VM_Id): --vm KIND:ID, id-set, id-retire, id-delete,
 * id-list, id-show.  The syntax and the resolution are lib/vm-id's.
 */

/* id-set and id-retire: how many times they read again when another
 * writer changed the VM's ids meanwhile. */
#define ID_MAX_ATTEMPTS 10

/* Milliseconds since 1970. */
static int64_t
realtime_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Formats 'msec' (since 1970) as "2026-12-07T17:01:02Z" in 'buf', or "-"
 * for 0. */
static const char *
format_msec(int64_t msec, char buf[32])
{
    time_t t = msec / 1000;
    struct tm tm;

    if (!msec || !gmtime_r(&t, &tm)
        || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        snprintf(buf, 32, "-");
    }
    return buf;
}

/* Prints transaction error 'msg' for 'what', with a hint if the server's
 * Chan DB predates the VM_Id table. */
static void
id_error(const char *what, const char *msg)
{
    bool old = strstr(msg, "No table named " VM_ID_TABLE) != NULL;
    chanctl_error("%s: %s%s", what, msg,
                  old ? " (the Chan DB has no VM_Id table: its schema is "
                        "older than 1.7.0; convert it with ovsdb-client "
                        "convert, doc/chan-db.md)" : "");
}

/* Runs the lookup of 'spec' on 'db'.  Returns the rows of the id (a new
 * JSON array), or NULL after printing an error for 'what'. */
static json_t *
id_lookup(struct db *db, const char *what, const struct vm_id_spec *spec)
{
    json_t *ops = vm_id_spec_lookup_ops(spec);
    size_t n_ops = json_array_size(ops);
    json_t *result;
    char *error;

    if (db_transact(db, ops, &result, &error) != TXN_OK) {
        id_error(what, error);
        free(error);
        return NULL;
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < n_ops; i++) {
        json_t *r = json_object_get(json_array_get(result, i), "rows");
        if (json_is_array(r)) {
            json_array_extend(rows, r);
        }
    }
    json_decref(result);
    return rows;
}

/* Returns a new where clause: VM 'vm''s ids of kind 'kind'. */
static json_t *
vm_kind_where(const char *vm, enum vm_id_kind kind)
{
    return json_pack("[oo]",
                     ovsdb_condition("vm", "==", json_string(vm)),
                     ovsdb_condition("kind", "==",
                                     json_string(vm_id_kind_name(kind))));
}

/* Returns a new where clause: the rows of id 'id' of kind 'kind'. */
static json_t *
kind_id_where(enum vm_id_kind kind, const char *id)
{
    return json_pack("[oo]",
                     ovsdb_condition("kind", "==",
                                     json_string(vm_id_kind_name(kind))),
                     ovsdb_condition("id", "==", json_string(id)));
}

/* Prints the note that 'text' resolved through a retired id ('m'),
 * with the VM's current id of that kind if it has one. */
static void
note_retired(struct db *db, const char *text, const struct vm_id_match *m)
{
    json_t *rows = db_select(db, VM_ID_TABLE, vm_kind_where(m->vm, m->kind),
                             NULL);
    const char *now = rows ? vm_id_find_current(rows, m->vm, m->kind) : NULL;
    char when[32];

    chanctl_error("note: %s is a retired id of %s (retired %s; %s %s%s%s)",
                  text, m->vm, format_msec(m->retired, when),
                  now ? "its current" : "it has no current",
                  vm_id_kind_name(m->kind), now ? " is " : "",
                  now ? now : "");
    json_decref(rows);
}

/* Resolves 'spec' on 'db' into 'm' and reports as chanctl_resolve_vm()
 * says.  Returns an exit status. */
static int
resolve_on(struct db *db, const char *what, const struct vm_id_spec *spec,
           struct vm_id_match *m)
{
    json_t *rows = id_lookup(db, what, spec);

    memset(m, 0, sizeof *m);
    if (!rows) {
        return CHANCTL_FAIL;
    }
    vm_id_resolve(spec, rows, m);
    json_decref(rows);
    switch (m->status) {
    case VM_ID_UNKNOWN:
        chanctl_error("%s: no VM has the id %s (chanctl id-list lists the "
                      "ids)", what, spec->text);
        return CHANCTL_FAIL;
    case VM_ID_AMBIGUOUS:
        chanctl_error("%s: %s is ambiguous, the id of %s: give its kind "
                      "instead of any", what, spec->text, m->candidates);
        return CHANCTL_FAIL;
    case VM_ID_RETIRED:
        note_retired(db, spec->text, m);
        return CHANCTL_OK;
    case VM_ID_CURRENT:
    default:
        return CHANCTL_OK;
    }
}

/* Parses 'text' as a KIND:ID given to 'what'; returns 0 or a usage
 * error. */
static int
parse_spec(const char *what, const char *text, struct vm_id_spec *spec)
{
    char *msg = vm_id_spec_parse(text, spec);

    if (msg) {
        int error = chanctl_usage_error("%s: %s", what, msg);
        free(msg);
        return error;
    }
    return 0;
}

int
chanctl_resolve_vm(const struct chanctl_options *opts, const char *what,
                   const char *text, struct chanctl_vm_ref *ref)
{
    struct vm_id_spec spec;
    struct vm_id_match m;
    struct db db;
    int error;

    memset(ref, 0, sizeof *ref);
    if ((error = parse_spec(what, text, &spec))) {
        return error;
    }
    if ((error = db_open(opts, &db))) {
        vm_id_spec_destroy(&spec);
        return error;
    }
    error = resolve_on(&db, what, &spec, &m);
    db_close(&db);
    if (!error) {
        ref->vm = xstrdup(m.vm);
        ref->label = xasprintf("%s (%s)", text, m.vm);
        ref->status = vm_id_status_name(m.status);
    }
    vm_id_match_destroy(&m);
    vm_id_spec_destroy(&spec);
    return error;
}

/* Parses the KIND:ID arguments of 'command' into 'specs' (as many as
 * 'argc'); every KIND must be a real one, not "any", and with 'one_per_kind'
 * no kind may come twice.  Returns 0 (the caller destroys the specs) or a
 * usage error (nothing to destroy). */
static int
parse_specs(const char *command, int argc, char *argv[],
            struct vm_id_spec *specs, bool one_per_kind)
{
    for (int i = 0; i < argc; i++) {
        int error = parse_spec(command, argv[i], &specs[i]);
        if (!error && specs[i].kind == VM_ID_ANY) {
            error = chanctl_usage_error("%s: %s: give the id's kind (%s), "
                                        "not any", command, argv[i],
                                        vm_id_kind_list());
            vm_id_spec_destroy(&specs[i]);
        }
        for (int j = 0; !error && one_per_kind && j < i; j++) {
            if (specs[j].kind == specs[i].kind) {
                error = chanctl_usage_error("%s: two ids of kind %s: a VM "
                                            "has one of each kind", command,
                                            vm_id_kind_name(specs[i].kind));
                vm_id_spec_destroy(&specs[i]);
            }
        }
        if (error) {
            while (i-- > 0) {
                vm_id_spec_destroy(&specs[i]);
            }
            return error;
        }
    }
    return 0;
}

static void
destroy_specs(struct vm_id_spec *specs, int n)
{
    for (int i = 0; i < n; i++) {
        vm_id_spec_destroy(&specs[i]);
    }
    free(specs);
}

/* The prologue of the id-* commands that take KIND:ID... arguments: parses
 * 'argv' (as parse_specs() does) into '*specsp' and opens 'db'.  Returns 0,
 * with '*specsp' owned by the caller (destroy_specs()) and 'db' open
 * (db_close()), or an error with nothing to free. */
static int
specs_open(const struct chanctl_options *opts, const char *command,
           int argc, char *argv[], bool one_per_kind,
           struct vm_id_spec **specsp, struct db *db)
{
    struct vm_id_spec *specs = xcalloc(argc, sizeof *specs);
    int error = parse_specs(command, argc, argv, specs, one_per_kind);
    if (error) {
        free(specs);
        return error;
    }
    if ((error = db_open(opts, db))) {
        destroy_specs(specs, argc);
        return error;
    }
    *specsp = specs;
    return 0;
}

/* Returns the _uuid of 'row' (borrowed), or NULL. */
static const char *
row_uuid(const json_t *row)
{
    const char *uuid;

    return (!ovsdb_datum_get_uuid(json_object_get(row, "_uuid"), &uuid)
            ? uuid : NULL);
}

/* Returns when to retire an id of the VM whose ids of that kind are 'rows':
 * now, or later than any of them was retired (VM_Id's index (vm, kind,
 * retired) needs a time of its own per retirement). */
static int64_t
retire_time(const json_t *rows, int64_t now)
{
    int64_t t = now;
    size_t i;
    json_t *row;

    json_array_foreach (rows, i, row) {
        int64_t r = row_int(row, "retired", 0);
        if (r >= t) {
            t = r + 1;
        }
    }
    return t;
}

/* Returns a new "update" operation that retires VM_Id row 'uuid' at
 * 'when', if it is still current. */
static json_t *
retire_op(const char *uuid, int64_t when)
{
    json_t *where = json_pack("[oo]", ovsdb_condition(
                                  "_uuid", "==", ovsdb_datum_uuid(uuid)),
                              ovsdb_condition("retired", "==",
                                              json_integer(0)));
    return ovsdb_op_update(VM_ID_TABLE, where,
                           json_pack("{sI}", "retired", (json_int_t) when));
}

/* Describes the row 'row' of an id that another VM holds, for id-set's
 * refusal: "vm2's current id" or "vm2's retired id (retired T; id-delete
 * forgets it)".  Returns a malloc'd string. */
static char *
describe_holder(const json_t *row)
{
    int64_t retired = row_int(row, "retired", 0);
    const char *vm = row_string(row, "vm");
    char when[32];

    if (!retired) {
        return xasprintf("%s's current id", vm ? vm : "?");
    }
    return xasprintf("%s's retired id (retired %s; chanctl id-delete "
                     "forgets it)", vm ? vm : "?",
                     format_msec(retired, when));
}

/* Adds to 'ops' what makes 'spec' current for 'vm', given 'owner' (the
 * rows of the id: none, or one) and 'mine' (vm's rows of its kind).  Returns
 * NULL, or a malloc'd reason why it cannot be (another VM holds the id).
 * Appends what it retires to 'done' for -v. */
static char *
id_set_ops(const char *vm, const struct vm_id_spec *spec, const json_t *owner,
           const json_t *mine, int64_t now, json_t *ops, json_t *done)
{
    const char *id = spec->ids[spec->kind];
    const json_t *row = json_array_get(owner, 0);
    const char *holder = row ? row_string(row, "vm") : NULL;

    if (row && (!holder || strcmp(holder, vm))) {
        char *who = describe_holder(row);
        char *msg = xasprintf("%s is %s", spec->text, who);
        free(who);
        return msg;
    }
    if (row && !row_int(row, "retired", 0)) {
        json_array_append_new(done, json_sprintf("%s:%s is already %s's",
                                                 vm_id_kind_name(spec->kind),
                                                 id, vm));
        return NULL;
    }

    /* Retire the current one, then reinstate or insert. */
    int64_t when = retire_time(mine, now);
    size_t i;
    json_t *m;
    json_array_foreach (mine, i, m) {
        if (!row_int(m, "retired", 0) && row_uuid(m)) {
            json_array_append_new(ops, retire_op(row_uuid(m), when));
            json_array_append_new(done, json_sprintf(
                                      "retired %s:%s of %s",
                                      vm_id_kind_name(spec->kind),
                                      row_string(m, "id"), vm));
        }
    }
    json_t *new = json_pack("{sI sI}", "retired", (json_int_t) 0,
                            "since", (json_int_t) now);
    if (row) {
        json_array_append_new(ops, ovsdb_op_update(
                                  VM_ID_TABLE,
                                  ovsdb_where_uuid(row_uuid(row)), new));
    } else {
        json_object_set_new(new, "vm", json_string(vm));
        json_object_set_new(new, "kind",
                            json_string(vm_id_kind_name(spec->kind)));
        json_object_set_new(new, "id", json_string(id));
        json_array_append_new(ops, ovsdb_op_insert(VM_ID_TABLE, new, NULL));
    }
    json_array_append_new(done, json_sprintf("%s:%s is %s's",
                                             vm_id_kind_name(spec->kind),
                                             id, vm));
    return NULL;
}

/* Prints the strings of 'done' when -v. */
static void
print_done(const struct chanctl_options *opts, const json_t *done)
{
    size_t i;
    json_t *s;

    if (opts->verbose) {
        json_array_foreach (done, i, s) {
            printf("%s\n", json_string_value(s));
        }
    }
}

/* One attempt at a change of ids: reads, then writes.  Returns TXN_OK,
 * TXN_RETRY (a concurrent writer: read again) or TXN_FAILED/TXN_LOST with
 * '*errorp'; appends what it did to 'done' (cleared first). */
typedef enum txn_status id_once_func(struct db *, const void *aux,
                                     json_t *done, char **errorp);

/* Runs 'once' with 'aux' until it does not ask to retry, at most
 * ID_MAX_ATTEMPTS times, then prints what it did (-v) or why it failed
 * ('command' names it).  Returns an exit status. */
static int
id_retry(const struct chanctl_options *opts, const char *command,
         struct db *db, id_once_func *once, const void *aux)
{
    enum txn_status status = TXN_RETRY;
    json_t *done = json_array();
    char *msg = NULL;

    for (int attempt = 0; attempt < ID_MAX_ATTEMPTS; attempt++) {
        free(msg);
        msg = NULL;
        json_array_clear(done);
        status = once(db, aux, done, &msg);
        if (status != TXN_RETRY) {
            break;
        }
        chanctl_sleep_msec((attempt + 1) * 10);
    }
    int error = CHANCTL_OK;
    if (status != TXN_OK) {
        id_error(command, msg ? msg : "the ids keep changing");
        error = CHANCTL_FAIL;
    } else {
        print_done(opts, done);
    }
    free(msg);
    json_decref(done);
    return error;
}

/* id-set's arguments. */
struct id_set_args {
    const char *vm;
    const struct vm_id_spec *specs;
    int n;
};

/* One attempt at id-set (an id_once_func, 'args_' a struct id_set_args):
 * reads the ids concerned, then writes them in one transaction. */
static enum txn_status
id_set_once(struct db *db, const void *args_, json_t *done, char **errorp)
{
    const struct id_set_args *args = args_;
    const char *vm = args->vm;
    const struct vm_id_spec *specs = args->specs;
    int n = args->n;
    json_t *ops = json_array();
    for (int i = 0; i < n; i++) {
        enum vm_id_kind k = specs[i].kind;
        json_array_append_new(ops, ovsdb_op_select(
                                  VM_ID_TABLE,
                                  kind_id_where(k, specs[i].ids[k]), NULL));
        json_array_append_new(ops, ovsdb_op_select(
                                  VM_ID_TABLE, vm_kind_where(vm, k), NULL));
    }
    json_t *result;
    enum txn_status status = db_transact(db, ops, &result, errorp);
    if (status != TXN_OK) {
        return status == TXN_RETRY ? TXN_FAILED : status;
    }

    int64_t now = realtime_msec();
    ops = json_array();
    for (int i = 0; i < n && !*errorp; i++) {
        *errorp = id_set_ops(
            vm, &specs[i],
            json_object_get(json_array_get(result, 2 * i), "rows"),
            json_object_get(json_array_get(result, 2 * i + 1), "rows"),
            now, ops, done);
    }
    json_decref(result);
    if (*errorp) {
        json_decref(ops);
        return TXN_FAILED;
    }
    if (!json_array_size(ops)) {
        json_decref(ops);
        return TXN_OK;
    }
    char *comment = xasprintf("chanctl: id-set --vm %s", vm);
    json_array_append_new(ops, ovsdb_op_comment(comment));
    free(comment);
    status = db_transact(db, ops, &result, errorp);
    json_decref(result);
    return status;
}

/* chanctl id-set --vm VM KIND:ID...: makes each id VM's current id of its
 * kind, retiring the one it had; an id another VM holds (current or
 * retired) is refused. */
int
chanctl_cmd_id_set(const struct chanctl_options *opts, int argc,
                   char *argv[])
{
    int error = chanctl_check_vm_required(opts, "id-set");
    if (error) {
        return error;
    }
    struct vm_id_spec *specs;
    struct db db;
    if ((error = specs_open(opts, "id-set", argc, argv, true, &specs, &db))) {
        return error;
    }
    struct id_set_args args = { opts->vm, specs, argc };
    error = id_retry(opts, "id-set", &db, id_set_once, &args);
    db_close(&db);
    destroy_specs(specs, argc);
    return error;
}

/* One attempt at retiring 'spec'.  Returns TXN_OK, TXN_RETRY or TXN_FAILED
 * with '*errorp'. */
static enum txn_status
id_retire_once(struct db *db, const void *spec_, json_t *done, char **errorp)
{
    const struct vm_id_spec *spec = spec_;
    enum vm_id_kind k = spec->kind;
    json_t *rows = db_select(db, VM_ID_TABLE,
                             kind_id_where(k, spec->ids[k]), NULL);
    const json_t *row = json_array_get(rows, 0);
    const char *vm = row ? row_string(row, "vm") : NULL;
    const char *uuid = row ? row_uuid(row) : NULL;
    char when[32];

    if (!rows) {
        *errorp = xstrdup("cannot read VM_Id");
        return TXN_FAILED;
    } else if (!vm || !uuid) {
        *errorp = xasprintf("no VM has the id %s", spec->text);
        json_decref(rows);
        return TXN_FAILED;
    } else if (row_int(row, "retired", 0)) {
        *errorp = xasprintf("%s is already retired (%s, retired %s)",
                            spec->text, vm,
                            format_msec(row_int(row, "retired", 0), when));
        json_decref(rows);
        return TXN_FAILED;
    }
    json_t *mine = db_select(db, VM_ID_TABLE, vm_kind_where(vm, k), NULL);
    int64_t t = retire_time(mine, realtime_msec());
    json_t *ops = json_pack("[oo]", retire_op(uuid, t),
                            ovsdb_op_comment("chanctl: id-retire"));
    json_decref(mine);
    json_t *result;
    enum txn_status status = db_transact(db, ops, &result, errorp);
    if (status == TXN_OK
        && row_int(json_array_get(result, 0), "count", 0) != 1) {
        status = TXN_RETRY;     /* Retired or gone meanwhile. */
    } else if (status == TXN_OK) {
        json_array_append_new(done, json_sprintf("retired %s:%s of %s",
                                                 vm_id_kind_name(k),
                                                 spec->ids[k], vm));
    }
    json_decref(result);
    json_decref(rows);
    return status;
}

/* chanctl id-retire KIND:ID...: the ids stay in VM_Id, retired: they still
 * resolve, and are reported as retired. */
int
chanctl_cmd_id_retire(const struct chanctl_options *opts, int argc,
                      char *argv[])
{
    struct vm_id_spec *specs;
    struct db db;
    int error = specs_open(opts, "id-retire", argc, argv, false, &specs, &db);
    if (error) {
        return error;
    }
    for (int i = 0; i < argc; i++) {
        if (id_retry(opts, "id-retire", &db, id_retire_once, &specs[i])) {
            error = CHANCTL_FAIL;
        }
    }
    db_close(&db);
    destroy_specs(specs, argc);
    return error;
}

/* chanctl id-delete KIND:ID...: forgets the ids, in one transaction. */
int
chanctl_cmd_id_delete(const struct chanctl_options *opts, int argc,
                      char *argv[])
{
    struct vm_id_spec *specs;
    struct db db;
    int error = specs_open(opts, "id-delete", argc, argv, false, &specs, &db);
    if (error) {
        return error;
    }
    json_t *ops = json_array();
    for (int i = 0; i < argc; i++) {
        enum vm_id_kind k = specs[i].kind;
        json_array_append_new(ops, ovsdb_op_delete(
                                  VM_ID_TABLE,
                                  kind_id_where(k, specs[i].ids[k])));
    }
    json_array_append_new(ops, ovsdb_op_comment("chanctl: id-delete"));
    json_t *result;
    char *msg;
    if (db_transact(&db, ops, &result, &msg) != TXN_OK) {
        id_error("id-delete", msg);
        free(msg);
        error = CHANCTL_FAIL;
    } else {
        for (int i = 0; i < argc; i++) {
            if (!row_int(json_array_get(result, i), "count", 0)) {
                chanctl_error("id-delete: no VM has the id %s",
                              specs[i].text);
                error = CHANCTL_FAIL;
            } else if (opts->verbose) {
                printf("deleted %s\n", specs[i].text);
            }
        }
        json_decref(result);
    }
    db_close(&db);
    destroy_specs(specs, argc);
    return error;
}

/* By VM, kind, then current first, then the latest retired first. */
static int
compare_id_rows(const void *a_, const void *b_)
{
    const json_t *a = *(const json_t *const *) a_;
    const json_t *b = *(const json_t *const *) b_;
    int cmp = compare_rows_by_column(a, b, "vm");
    if (!cmp) {
        cmp = compare_rows_by_column(a, b, "kind");
    }
    if (!cmp) {
        int64_t ra = row_int(a, "retired", 0), rb = row_int(b, "retired", 0);
        cmp = (!ra != !rb ? (ra ? 1 : -1) : ra < rb ? 1 : ra > rb ? -1 : 0);
    }
    return cmp ? cmp : compare_rows_by_column(a, b, "id");
}

/* Returns VM_Id row 'row' as a plain JSON object (new reference). */
static json_t *
id_row_json(const json_t *row)
{
    const char *vm, *id;
    enum vm_id_kind kind;
    int64_t since, retired;
    bool valid = vm_id_row_parse(row, &vm, &kind, &id, &since, &retired);
    const char *kind_name = row_string(row, "kind");

    return json_pack("{ss ss ss sI sI sb sb}",
                     "vm", row_string(row, "vm") ? row_string(row, "vm") : "",
                     "kind", kind_name ? kind_name : "",
                     "id", row_string(row, "id") ? row_string(row, "id") : "",
                     "since", (json_int_t) row_int(row, "since", 0),
                     "retired", (json_int_t) row_int(row, "retired", 0),
                     "current", !row_int(row, "retired", 0),
                     "valid", valid);
}

/* chanctl id-list [--vm VM] [--json]. */
int
chanctl_cmd_id_list(const struct chanctl_options *opts, int argc,
                    char *argv[])
{
    int status;

    (void) argc;
    (void) argv;
    json_t *where = json_array();
    if (opts->vm) {
        json_array_append_new(where, ovsdb_condition(
                                  "vm", "==", json_string(opts->vm)));
    }
    json_t *rows = select_rows(opts, VM_ID_TABLE, where, NULL, &status);
    if (!rows) {
        return status;
    }
    size_t n = json_array_size(rows);
    const json_t **sorted = xcalloc(n + 1, sizeof *sorted);
    for (size_t i = 0; i < n; i++) {
        sorted[i] = json_array_get(rows, i);
    }
    qsort(sorted, n, sizeof *sorted, compare_id_rows);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(out, id_row_json(sorted[i]));
    }
    free(sorted);
    json_decref(rows);

    if (opts->json) {
        print_json(out);
    } else if (!n) {
        printf("no ids%s%s\n", opts->vm ? " for " : "",
               opts->vm ? chanctl_vm_label(opts) : "");
    } else {
        size_t i;
        json_t *r;
        printf("%-16s %-12s %-36s %-20s %s\n", "VM", "KIND", "ID", "SINCE",
               "RETIRED");
        json_array_foreach (out, i, r) {
            char since[32], retired[32];
            printf("%-16s %-12s %-36s %-20s %s%s\n",
                   json_string_value(json_object_get(r, "vm")),
                   json_string_value(json_object_get(r, "kind")),
                   json_string_value(json_object_get(r, "id")),
                   format_msec(json_integer_value(json_object_get(r, "since")),
                               since),
                   format_msec(json_integer_value(json_object_get(r,
                                                                  "retired")),
                               retired),
                   json_is_true(json_object_get(r, "valid"))
                   ? "" : "  (malformed row: never resolves)");
        }
    }
    json_decref(out);
    return CHANCTL_OK;
}

/* chanctl id-show KIND:ID [--json]: prints the VM's name (with --json, the
 * whole resolution). */
int
chanctl_cmd_id_show(const struct chanctl_options *opts, int argc,
                    char *argv[])
{
    struct vm_id_spec spec;
    struct vm_id_match m;
    struct db db;
    int error;

    (void) argc;
    if ((error = parse_spec("id-show", argv[0], &spec))) {
        return error;
    }
    if ((error = db_open(opts, &db))) {
        vm_id_spec_destroy(&spec);
        return error;
    }
    error = resolve_on(&db, "id-show", &spec, &m);
    db_close(&db);
    if (!error && opts->json) {
        json_t *j = json_pack("{ss ss ss ss ss sI sI}",
                              "id", spec.text, "vm", m.vm,
                              "status", vm_id_status_name(m.status),
                              "kind", vm_id_kind_name(m.kind),
                              "matched", m.id,
                              "since", (json_int_t) m.since,
                              "retired", (json_int_t) m.retired);
        print_json(j);
        json_decref(j);
    } else if (!error) {
        printf("%s\n", m.vm);
    }
    vm_id_match_destroy(&m);
    vm_id_spec_destroy(&spec);
    return error;
}
