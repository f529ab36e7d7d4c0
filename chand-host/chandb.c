/* Copyright (c) 2026 The chand authors.  See chandb.h. */

#include <config.h>
#include "chandb.h"
#include "claim.h"
#include "objaction.h"
#include "objmap.h"
#include "relay.h"
#include "upstream.h"

#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan-wire.h"
#include "hmap.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "poll-loop.h"
#include "chan-endpoint.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(chandb);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

#define CHANNEL_RETRY_MS 1000   /* A refused Channel write waits this. */
#define MIN_LL(A, B) ((A) < (B) ? (A) : (B))

/* Per-VM write state for the Channel table. */
struct chandb_writer {
    json_t *wanted;             /* Row contents to write (object). */
    json_t *written;            /* Last row contents written (object). */
    uint64_t txn;               /* Transaction in flight, 0 if none. */
    long long retry_at;         /* After a failed write, not before. */
    uint64_t wanted_mark;       /* chandb_channel_state.ack_mark of... */
    uint64_t txn_mark;          /* ...'wanted' and of the txn in flight. */

    /* Channel.applied is kept out of 'wanted' and 'written', which would
     * otherwise copy and compare it whole at every write: */
    json_t *applied;            /* key -> version: the map wanted. */
    json_t *pending;            /* key -> true: keys not written since... */
    bool pending_all;           /* ...or all of them (a whole write). */
};

struct chandb {
    struct ovsdb_replica *replica;
    char *remote;
    bool monitor_all;           /* All rows, or only this chassis's VMs. */
    char *chassis;              /* This chand-host's chassis, or NULL. */
    json_t *vms;                /* vm -> true: the VMs monitored (own). */
    uint64_t claims_seqno;      /* Changes with Channel rows. */
    bool cond_was_pending;
    long long retry_at;         /* Earliest writer retry, LLONG_MAX: none. */
    uint64_t replica_seqno;     /* Replica seqno the index was built at. */
    uint64_t seqno;             /* Our desired-state seqno. */
    uint64_t keys_seqno;        /* Changes with Channel_Key rows. */
    uint64_t limits_seqno;      /* Changes with the guest limits. */

    json_t *global;             /* key -> desired entry (all VMs). */
    json_t *per_vm;             /* vm -> (key -> desired entry). */
    json_t *merged;             /* vm -> merged desired state (cache). */
    json_t *record_rows;        /* Record uuid -> [vm or "", key] of the
                                 * entry it gives (valid rows only). */
    json_t *bad_rows;           /* Record uuid -> true: invalid rows. */
    json_t *changed;            /* vm or "" -> (key -> true): changed since
                                 * chandb_desired_changes_clear(). */
    bool changed_all;           /* Any key of any VM may have changed. */
    bool index_ambiguous;       /* Two rows give one (vm, key): vm [] and
                                 * "", or a Record_Set and another row.
                                 * Every change then rebuilds. */
    bool rebuilding;            /* In rebuild_index(). */
    json_t *set_errors;         /* Record_Set uuid -> its invalid records
                                 * (string), for write_set_errors(). */

    json_t *record_errors;      /* Record uuid -> error written (string). */
    json_t *writers_by_vm;      /* vm -> json integer (struct pointer). */
    json_t *writers_pending;    /* vm -> true: writers whose row may still
                                 * need a write (chandb_run() tries them). */
    json_t *committed;          /* vm -> ack mark of a Channel row write
                                 * committed since chandb_take_committed(). */
    struct hmap priors;         /* struct prior_read, by VM name. */
    long long prior_retry_at;   /* Earliest such retry, LLONG_MAX: none. */
    bool was_synced;
    struct chandb_stats stats;

    /* Relay (relay.h). */
    bool relay_dirty;           /* Relayed records may need writing. */
    bool objaction_dirty;       /* Object action records may need it. */
    uint64_t objaction_txn;     /* Transaction in flight, 0 if none. */
    uint64_t relay_txn;         /* Transaction in flight, 0 if none. */
    json_t *relay_counts;       /* vm -> {"relayed": n, "refused": n}:
                                 * running totals. */
    chandb_content_func *content_func;
    void *content_aux;
    json_t *restore_needs;      /* objaction_restore()'s 'needs'. */
    uint64_t needs_seqno;
    json_t *relay_refused;      /* "vm/version/key" -> true: refusals
                                 * already counted. */
};

static const struct ovsdb_replica_row *find_channel_row(const struct chandb *,
                                                      const char *vm);
static void writer_free(struct chandb_writer *);
static void writer_set_applied(struct chandb_writer *,
                               const struct chandb_channel_state *);
static bool records_changed_under(const struct chandb *,
                                  const char *const *prefixes);
static bool relay_inputs_changed(const struct chandb *);
static void relay_run(struct chandb *);
static void objaction_run(struct chandb *);
static void send_conditions(struct chandb *);
static bool objaction_inputs_changed(const struct chandb *);
static void sweep_priors(struct chandb *, long long now);
/* A read of a VM's Channel rows, of every chassis, for chandb_get_prior():
 * under way, its rows (kept CHANDB_PRIOR_MAX_AGE_MS for the channel that
 * asked), or a failure (read again at 'retry_at'). */
struct prior_read {
    struct hmap_node node;      /* In chandb's 'priors'. */
    char *vm;
    enum { PRIOR_READING, PRIOR_READ, PRIOR_FAILED } state;
    long long at;               /* PRIOR_READ: when the rows came. */
    long long retry_at;         /* PRIOR_FAILED: when to read again. */
    json_t *rows;               /* PRIOR_READ: the Channel rows. */
};

static void prior_read_del(struct chandb *, struct prior_read *);
static bool get_uint(const struct ovsdb_replica_row *, const char *column,
                     uint64_t max, uint64_t *value);

struct txn_ctx {
    struct chandb *db;
    char *vm;
};

/* True if every remote in the comma-separated list 'remote' is local
 * (unix:). */
static bool
remote_is_local(const char *remote)
{
    char *copy = xstrdup(remote);
    char *save = NULL;
    bool local = true;
    for (char *r = strtok_r(copy, ", ", &save); r;
         r = strtok_r(NULL, ", ", &save)) {
        local &= !strncmp(r, "unix:", 5);
    }
    free(copy);
    return local;
}

struct chandb *
chandb_create(const char *remote, enum chandb_monitor monitor)
{
    struct chandb *db = calloc(1, sizeof *db);
    db->replica = ovsdb_replica_create(CHANDB_NAME);
    db->remote = xstrdup(remote);
    db->monitor_all = (monitor == CHANDB_MONITOR_ALL
                       || (monitor == CHANDB_MONITOR_AUTO
                           && remote_is_local(remote)));
    db->vms = json_object();
    db->retry_at = LLONG_MAX;
    if (!remote_is_local(remote)) {
        /* As Open vSwitch does for tcp: and ssl: remotes. */
        ovsdb_replica_set_probe_interval(db->replica, 5000);
    }

    struct ovsdb_replica_table *t = ovsdb_replica_add_table(db->replica,
                                                            "Record");
    static const char *record_cols[] = { "key", "vm", "value", "version",
                                         "error", "external_ids" };
    for (size_t i = 0; i < sizeof record_cols / sizeof *record_cols; i++) {
        ovsdb_replica_add_column(t, record_cols[i], NULL);
    }
    t = ovsdb_replica_add_table(db->replica, "Record_Set");
    static const char *set_cols[] = { "name", "vm", "records", "version",
                                      "error" };
    for (size_t i = 0; i < sizeof set_cols / sizeof *set_cols; i++) {
        ovsdb_replica_add_column(t, set_cols[i], NULL);
    }
    t = ovsdb_replica_add_table(db->replica, "Channel");
    /* Not "applied" and "sent", which may hold many keys and change with
     * every write this chand-host makes: they are read only when a channel
     * starts (chandb_get_prior()), with a "select". */
    static const char *channel_cols[] = { "vm", "chassis", "claim",
                                          "migrations", "state",
                                          "host_epoch", "guest_epoch",
                                          "applied_seq", "applied_digest",
                                          "sent_seq",
                                          "up_epoch", "up_position",
                                          "chan_id" };
    for (size_t i = 0; i < sizeof channel_cols / sizeof *channel_cols; i++) {
        ovsdb_replica_add_column(t, channel_cols[i], NULL);
    }
    ovsdb_replica_add_index(t, "vm");

    t = ovsdb_replica_add_table(db->replica, "Guest_Record");
    static const char *guest_cols[] = { "vm", "key", "value", "version" };
    for (size_t i = 0; i < sizeof guest_cols / sizeof *guest_cols; i++) {
        ovsdb_replica_add_column(t, guest_cols[i], NULL);
    }
    ovsdb_replica_add_index(t, "vm");

    t = ovsdb_replica_add_table(db->replica, "Chan_Global");
    ovsdb_replica_add_column(t, "guest_limits", NULL);
    t = ovsdb_replica_add_table(db->replica, "Guest_Limits");
    ovsdb_replica_add_column(t, "vm", NULL);
    ovsdb_replica_add_column(t, "limits", NULL);
    ovsdb_replica_add_index(t, "vm");

    t = ovsdb_replica_add_table(db->replica, "Relay");
    static const char *relay_cols[] = { "source", "prefix", "to", "vms" };
    for (size_t i = 0; i < sizeof relay_cols / sizeof *relay_cols; i++) {
        ovsdb_replica_add_column(t, relay_cols[i], NULL);
    }

    t = ovsdb_replica_add_table(db->replica, "Channel_Key");
    static const char *key_cols[] = { "vm", "generation", "key" };
    for (size_t i = 0; i < sizeof key_cols / sizeof *key_cols; i++) {
        ovsdb_replica_add_column(t, key_cols[i], NULL);
    }
    ovsdb_replica_add_index(t, "vm");

    objmap_add_columns(db->replica);
    t = ovsdb_replica_add_table(db->replica, "Allowlist");
    ovsdb_replica_add_column(t, "digest", NULL);
    ovsdb_replica_add_column(t, "name", NULL);
    db->restore_needs = json_object();

    db->global = json_object();
    db->per_vm = json_object();
    db->merged = json_object();
    db->record_rows = json_object();
    db->bad_rows = json_object();
    db->set_errors = json_object();
    db->changed = json_object();
    db->record_errors = json_object();
    db->writers_by_vm = json_object();
    db->writers_pending = json_object();
    db->committed = json_object();
    hmap_init(&db->priors);
    db->prior_retry_at = LLONG_MAX;
    db->relay_counts = json_object();
    db->relay_refused = json_object();
    if (!db->monitor_all) {
        /* No VM yet. */
        send_conditions(db);
    }
    ovsdb_replica_connect(db->replica, remote);
    VLOG_INFO("Chan DB %s: monitoring %s", remote,
              db->monitor_all ? "all rows" : "this chassis's VMs only");
    return db;
}

static struct chandb_writer *
writer_get(const struct chandb *db, const char *vm)
{
    json_t *p = json_object_get(db->writers_by_vm, vm);
    return p ? (struct chandb_writer *) (uintptr_t) json_integer_value(p)
             : NULL;
}

void
chandb_destroy(struct chandb *db)
{
    if (!db) {
        return;
    }
    const char *vm;
    json_t *p;
    json_object_foreach (db->writers_by_vm, vm, p) {
        writer_free(writer_get(db, vm));
    }
    ovsdb_replica_destroy(db->replica);
    json_decref(db->global);
    json_decref(db->per_vm);
    json_decref(db->merged);
    json_decref(db->record_rows);
    json_decref(db->bad_rows);
    json_decref(db->set_errors);
    json_decref(db->changed);
    json_decref(db->record_errors);
    json_decref(db->writers_by_vm);
    json_decref(db->writers_pending);
    struct prior_read *pr;
    HMAP_FOR_EACH_SAFE (pr, node, &db->priors) {
        prior_read_del(db, pr);
    }
    hmap_destroy(&db->priors);
    json_decref(db->committed);
    json_decref(db->restore_needs);
    json_decref(db->relay_counts);
    json_decref(db->relay_refused);
    json_decref(db->vms);
    free(db->chassis);
    free(db->remote);
    free(db);
}

/* Validates one Record row.  On success returns NULL and stores the key
 * (borrowed), target VM (borrowed, NULL for all) and a new desired entry in
 * '*entryp'; on failure returns a malloc'd reason. */
/* Returns the parsed form of a record's value text 'text' (a new
 * reference) for a desired entry, or NULL and why not in '*reasonp'
 * (malloc'd).  A plain string literal is not parsed: its entry holds null
 * and the channel sends the text as it is (a value of tens of megabytes
 * would otherwise be parsed here and rendered again for every message). */
static json_t *
parse_value(const char *text, char **reasonp)
{
    *reasonp = NULL;
    if (chan_json_string_is_simple(text, strlen(text))) {
        return json_null();
    }
    json_error_t error;
    json_t *parsed = json_loads(text, JSON_DECODE_ANY
                                | JSON_REJECT_DUPLICATES, &error);
    if (!parsed) {
        *reasonp = xasprintf("value is not valid JSON: %s", error.text);
    }
    return parsed;
}

static char *
parse_record(const struct ovsdb_replica_row *row, const char **keyp,
             const char **vmp, json_t **entryp)
{
    const char *key, *vm, *value;
    int64_t version;
    bool present;

    if (ovsdb_datum_get_string(ovsdb_replica_row_get(row, "key"), &key)
        || ovsdb_datum_get_string(ovsdb_replica_row_get(row, "vm"), &vm)
        || ovsdb_datum_get_string(ovsdb_replica_row_get(row, "value"),
                                  &value)
        || ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "version"),
                                   &version, &present)
        || !key || !value) {
        return strdup("malformed row");
    }
    size_t key_len = strlen(key);
    if (!key_len || key_len > CHAN_WIRE_MAX_KEY_LEN) {
        return strdup("key must be 1 to 256 bytes");
    }
    if (vm && *vm && !chan_vm_name_is_valid(vm)) {
        return strdup("vm must be 1 to 64 characters from A-Z a-z 0-9 . _ -");
    }
    char *reason;
    json_t *parsed = parse_value(value, &reason);
    if (!parsed) {
        return reason;
    }
    *keyp = key;
    *vmp = vm && *vm ? vm : NULL;
    /* The text as the row holds it, shared rather than copied (a value may
     * be tens of megabytes). */
    const json_t *text = ovsdb_replica_row_get(row, "value");
    *entryp = json_pack("[Ioo]", (json_int_t) (present ? version : 0),
                        json_is_string(text) ? json_incref((json_t *) text)
                                             : json_string(value),
                        parsed);
    return NULL;
}

static void
record_error_done(const json_t *result, const char *error, void *aux)
{
    struct txn_ctx *ctx = aux;
    if (error) {
        ctx->db->stats.txn_errors++;
        VLOG_WARN_RL(&rl, "writing a Record or Record_Set error failed: %s",
                     error);
    }
    free(ctx->vm);
    free(ctx);
}

/* Writes the error column of Record or Record_Set row 'row' of 'table'
 * ('reason' NULL clears it) unless it already says so. */
static void
set_row_error(struct chandb *db, const char *table,
              const struct ovsdb_replica_row *row, const char *reason)
{
    const char *current = NULL;
    ovsdb_datum_get_string(ovsdb_replica_row_get(row, "error"), &current);
    if ((!current && !reason) || (current && reason
                                  && !strcmp(current, reason))) {
        return;
    }
    const char *uuid = ovsdb_replica_row_uuid(row);
    const char *last = json_string_value(json_object_get(db->record_errors,
                                                         uuid));
    if (last && reason && !strcmp(last, reason)) {
        return;                 /* Already asked for. */
    }
    json_object_set_new(db->record_errors, uuid,
                        json_string(reason ? reason : ""));
    json_t *row_json = json_pack("{so}", "error",
                                 reason ? json_string(reason)
                                        : json_pack("[s[]]", "set"));
    json_t *ops = json_pack("[o]", ovsdb_op_update(table,
                                                   ovsdb_where_uuid(uuid),
                                                   row_json));
    struct txn_ctx *ctx = calloc(1, sizeof *ctx);
    ctx->db = db;
    ovsdb_replica_transact(db->replica, ops, record_error_done, ctx);
}

/* The desired-state map of 'vm' ("" for the records of every VM), created
 * if 'create'; NULL if it does not exist. */
static json_t *
vm_map(struct chandb *db, const char *vm, bool create)
{
    if (!*vm) {
        return db->global;
    }
    json_t *map = json_object_get(db->per_vm, vm);
    if (!map && create) {
        map = json_object();
        json_object_set_new(db->per_vm, vm, map);
    }
    return map;
}

/* Brings the cached merged state of VM 'vm' (of every cached VM if 'vm' is
 * "") up to date for 'key'. */
static void
refresh_merged(struct chandb *db, const char *vm, const char *key)
{
    const char *name;
    json_t *merged;
    json_object_foreach (db->merged, name, merged) {
        if (*vm && strcmp(vm, name)) {
            continue;
        }
        json_t *own = json_object_get(db->per_vm, name);
        json_t *entry = json_object_get(own, key);
        if (!entry) {
            entry = json_object_get(db->global, key);
        }
        if (entry) {
            json_object_set(merged, key, entry);
        } else {
            json_object_del(merged, key);
        }
        if (*vm) {
            break;
        }
    }
}

/* Notes that 'key' of 'vm' ("": of every VM) may have changed. */
static void
note_changed(struct chandb *db, const char *vm, const char *key)
{
    json_t *keys = json_object_get(db->changed, vm);
    if (!keys) {
        keys = json_object();
        json_object_set_new(db->changed, vm, keys);
    }
    json_object_set_new(keys, key, json_true());
    refresh_merged(db, vm, key);
}

/* Takes out the entries that Record or Record_Set row 'uuid' gave, if
 * any. */
static void
index_remove(struct chandb *db, const char *uuid)
{
    json_object_del(db->bad_rows, uuid);
    json_t *ref = json_object_get(db->record_rows, uuid);
    if (!ref) {
        return;
    }
    const char *vm = json_string_value(json_array_get(ref, 0));
    json_t *map = vm_map(db, vm, false);
    for (size_t i = 1; i < json_array_size(ref); i++) {
        const char *key = json_string_value(json_array_get(ref, i));
        json_t *entry = json_object_get(map, key);
        if (entry && !strcmp(json_string_value(json_array_get(entry, 3)),
                             uuid)) {
            json_object_del(map, key);
        } else {
            db->index_ambiguous = true;
        }
        note_changed(db, vm, key);
    }
    if (*vm && map && !json_object_size(map)) {
        json_object_del(db->per_vm, vm);
    }
    json_object_del(db->record_rows, uuid);
}

/* Puts desired entry 'entry' (stolen; [version, text, value]) of 'key'
 * for 'vm' ("": every VM) in place, from row 'uuid'.  Returns false if
 * another row already gave that key (then the index is ambiguous, and
 * rebuild_index() settles which row wins). */
static bool
index_put(struct chandb *db, const char *vm, const char *key,
          json_t *entry, const char *uuid)
{
    json_array_append_new(entry, json_string(uuid));
    json_t *map = vm_map(db, vm, true);
    json_t *old = json_object_get(map, key);
    bool unique = true;
    if (old && strcmp(json_string_value(json_array_get(old, 3)), uuid)) {
        db->index_ambiguous = true;
        unique = false;
    }
    json_object_set_new(map, key, entry);
    note_changed(db, vm, key);
    return unique;
}

/* Adds the entry of Record row 'row', or notes (and writes back) why it
 * is invalid. */
static void
index_add(struct chandb *db, const struct ovsdb_replica_row *row)
{
    const char *uuid = ovsdb_replica_row_uuid(row);
    const char *key = NULL, *vm = NULL;
    json_t *entry = NULL;
    char *reason = parse_record(row, &key, &vm, &entry);
    set_row_error(db, "Record", row, reason);
    if (reason) {
        VLOG_WARN_RL(&rl, "Record %s: %s", uuid, reason);
        json_object_set_new(db->bad_rows, uuid, json_true());
        free(reason);
        return;
    }
    vm = vm ? vm : "";
    json_object_set_new(db->record_rows, uuid, json_pack("[ss]", vm, key));
    index_put(db, vm, key, entry, uuid);
}

/* Checks one record of a Record_Set: 'key' -> JSON text 'value' at
 * 'version'.  Returns NULL and the desired entry in '*entryp', or why it
 * is invalid (malloc'd). */
static char *
parse_set_record(const char *key, const char *value, int64_t version,
                 json_t **entryp)
{
    size_t key_len = strlen(key);
    if (!key_len || key_len > CHAN_WIRE_MAX_KEY_LEN) {
        return strdup("key must be 1 to 256 bytes");
    }
    char *reason;
    json_t *parsed = parse_value(value, &reason);
    if (!parsed) {
        return reason;
    }
    *entryp = json_pack("[Iso]", (json_int_t) version, value, parsed);
    return NULL;
}

/* Adds the entries of Record_Set row 'row': each of its records as if it
 * were a Record row with the set's vm and version.  Invalid records are
 * left out; the set's error column says how many and the first reason. */
static void
index_add_set(struct chandb *db, const struct ovsdb_replica_row *row)
{
    const char *uuid = ovsdb_replica_row_uuid(row);
    const char *name, *vm;
    int64_t version;
    bool present;
    json_t *records;
    if (ovsdb_datum_get_string(ovsdb_replica_row_get(row, "name"), &name)
        || ovsdb_datum_get_string(ovsdb_replica_row_get(row, "vm"), &vm)
        || ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "version"),
                                   &version, &present)
        || ovsdb_datum_get_string_map(ovsdb_replica_row_get(row, "records"),
                                      &records)) {
        set_row_error(db, "Record_Set", row, "malformed row");
        json_object_set_new(db->bad_rows, uuid, json_true());
        return;
    }
    if (vm && *vm && !chan_vm_name_is_valid(vm)) {
        set_row_error(db, "Record_Set", row, "vm must be 1 to 64 characters "
                      "from A-Z a-z 0-9 . _ -");
        json_object_set_new(db->bad_rows, uuid, json_true());
        json_decref(records);
        return;
    }
    vm = vm && *vm ? vm : "";
    json_t *ref = json_pack("[s]", vm);
    json_object_set_new(db->record_rows, uuid, ref);
    size_t n_bad = 0, n_shadowed = 0;
    char *first_bad = NULL;
    const char *key, *first_shadowed = NULL;
    json_t *value;
    json_object_foreach (records, key, value) {
        json_t *entry = NULL;
        char *reason = parse_set_record(key, json_string_value(value),
                                        present ? version : 0, &entry);
        if (reason) {
            if (!n_bad++) {
                first_bad = xasprintf("%s: %s", key, reason);
            }
            free(reason);
            continue;
        }
        json_array_append_new(ref, json_string(key));
        if (!index_put(db, vm, key, entry, uuid) && !n_shadowed++) {
            first_shadowed = key;
        }
    }
    char *error = NULL;
    if (n_bad) {
        error = xasprintf("%zu of %zu records invalid, left out (%s)", n_bad,
                          json_object_size(records), first_bad);
        VLOG_WARN_RL(&rl, "Record_Set %s (%s): %s", uuid, name, error);
        json_object_set_new(db->set_errors, uuid, json_string(error));
    } else {
        json_object_del(db->set_errors, uuid);
    }
    if (!db->rebuilding) {
        /* A key given twice makes the index ambiguous, and the rebuild
         * that follows writes the error with what it found. */
        set_row_error(db, "Record_Set", row, error);
    }
    if (n_shadowed) {
        VLOG_DBG("Record_Set %s: %zu keys also given by another row (%s)",
                 name, n_shadowed, first_shadowed);
    }
    free(error);
    free(first_bad);
    json_decref(records);
}

/* After rebuild_index(): writes each Record_Set's error: its invalid
 * records, and the keys another row gives too (a Record row, or a set
 * whose name sorts first), which win. */
static void
write_set_errors(struct chandb *db)
{
    const struct ovsdb_replica_table *sets
        = ovsdb_replica_get_table(db->replica, "Record_Set");
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, sets) {
        const char *uuid = ovsdb_replica_row_uuid(row);
        json_t *ref = json_object_get(db->record_rows, uuid);
        if (!ref) {
            continue;           /* Malformed: already written. */
        }
        const char *vm = json_string_value(json_array_get(ref, 0));
        json_t *map = vm_map(db, vm, false);
        size_t n_shadowed = 0;
        const char *first = NULL;
        for (size_t i = 1; i < json_array_size(ref); i++) {
            const char *key = json_string_value(json_array_get(ref, i));
            json_t *entry = json_object_get(map, key);
            if (!entry || strcmp(json_string_value(json_array_get(entry, 3)),
                                 uuid)) {
                first = first ? first : key;
                n_shadowed++;
            }
        }
        const char *invalid = json_string_value(json_object_get(
                                                    db->set_errors, uuid));
        char *error = NULL;
        if (n_shadowed) {
            error = xasprintf("%s%s%zu keys also given by a Record row or by "
                              "a Record_Set whose name sorts first, which "
                              "wins (%s)", invalid ? invalid : "",
                              invalid ? "; " : "", n_shadowed, first);
        } else if (invalid) {
            error = strdup(invalid);
        }
        set_row_error(db, "Record_Set", row, error);
        free(error);
    }
}

static int
compare_set_names_desc(const void *a_, const void *b_)
{
    const struct ovsdb_replica_row *const *a = a_, *const *b = b_;
    const char *na = ovsdb_replica_row_get_string(*a, "name");
    const char *nb = ovsdb_replica_row_get_string(*b, "name");
    return -strcmp(na ? na : "", nb ? nb : "");
}

/* Builds the desired states from every Record and Record_Set row.  Where
 * two rows give the same key to a VM, a Record row wins over a set, and
 * of two sets the one whose name sorts first: the sets go in in reverse
 * order of name, then the Record rows. */
static void
rebuild_index(struct chandb *db)
{
    const struct ovsdb_replica_table *records
        = ovsdb_replica_get_table(db->replica, "Record");
    const struct ovsdb_replica_table *sets
        = ovsdb_replica_get_table(db->replica, "Record_Set");
    const struct ovsdb_replica_row *row;

    json_object_clear(db->global);
    json_object_clear(db->per_vm);
    json_object_clear(db->merged);
    json_object_clear(db->record_rows);
    json_object_clear(db->bad_rows);
    json_object_clear(db->set_errors);
    db->index_ambiguous = false;
    db->rebuilding = true;

    size_t n_sets = 0, i = 0;
    OVSDB_REPLICA_FOR_EACH (row, sets) {
        n_sets++;
    }
    const struct ovsdb_replica_row **by_name = xmalloc((n_sets + 1)
                                                       * sizeof *by_name);
    OVSDB_REPLICA_FOR_EACH (row, sets) {
        by_name[i++] = row;
    }
    qsort(by_name, n_sets, sizeof *by_name, compare_set_names_desc);
    for (i = 0; i < n_sets; i++) {
        index_add_set(db, by_name[i]);
    }
    free(by_name);
    OVSDB_REPLICA_FOR_EACH (row, records) {
        index_add(db, row);
    }
    db->rebuilding = false;
    write_set_errors(db);
    json_object_clear(db->changed);
    db->changed_all = true;
    db->stats.bad_records = json_object_size(db->bad_rows);
    db->seqno++;
}

/* True if Record or Record_Set row 'row' changed only in columns that do
 * not make its entries (its error, written back by chand-host, or its
 * external_ids). */
static bool
record_entry_unchanged(const struct ovsdb_replica_row *row)
{
    static const char *columns[] = { "key", "vm", "value", "version",
                                     "name", "records" };
    if (ovsdb_replica_row_change(row) != OVSDB_REPLICA_MODIFIED) {
        return false;
    }
    for (size_t i = 0; i < sizeof columns / sizeof *columns; i++) {
        if (ovsdb_replica_row_column_changed(row, columns[i])) {
            return false;
        }
    }
    return true;
}

/* Updates the desired states with the tracked rows of 'table' (Record or
 * Record_Set).  Returns true if any entry may have changed. */
static bool
update_index_table(struct chandb *db, const char *table)
{
    const struct ovsdb_replica_row *row;
    bool changed = false;
    OVSDB_REPLICA_FOR_EACH_TRACKED (row, ovsdb_replica_get_table(db->replica,
                                                                table)) {
        if (record_entry_unchanged(row)) {
            continue;
        }
        const char *uuid = ovsdb_replica_row_uuid(row);
        index_remove(db, uuid);
        if (ovsdb_replica_row_change(row) == OVSDB_REPLICA_DELETED) {
            json_object_del(db->record_errors, uuid);
            json_object_del(db->set_errors, uuid);
        } else if (!strcmp(table, "Record")) {
            index_add(db, row);
        } else {
            index_add_set(db, row);
        }
        changed = true;
    }
    return changed;
}

/* True if a tracked row of 'table' changed in a column that makes its
 * entries. */
static bool
table_entries_changed(const struct chandb *db, const char *table)
{
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_TRACKED (row, ovsdb_replica_get_table(db->replica,
                                                                table)) {
        if (!record_entry_unchanged(row)) {
            return true;
        }
    }
    return false;
}

/* Updates the desired states with the Record and Record_Set rows that
 * changed since the last track clear: only their keys are parsed and
 * compared again.  While two rows give one key to a VM, a change rebuilds
 * instead, which settles the winner. */
static void
update_index(struct chandb *db)
{
    if (db->index_ambiguous) {
        if (table_entries_changed(db, "Record_Set")
            || table_entries_changed(db, "Record")) {
            rebuild_index(db);
        }
        return;
    }
    bool changed = update_index_table(db, "Record_Set");
    changed = update_index_table(db, "Record") || changed;
    if (db->index_ambiguous) {
        rebuild_index(db);
    } else if (changed) {
        db->stats.bad_records = json_object_size(db->bad_rows);
        db->seqno++;
    }
}

static void write_channel(struct chandb *, const char *vm,
                          struct chandb_writer *);

/* After a (re)connection the database may have lost our rows (a fresh
 * ovsdb-server): forget what was written and write everything again. */
static void
rewrite_all(struct chandb *db)
{
    const char *vm;
    json_t *p;
    json_object_foreach (db->writers_by_vm, vm, p) {
        struct chandb_writer *w = writer_get(db, vm);
        json_decref(w->written);
        w->written = NULL;
        w->pending_all = true;
        json_object_set_new(db->writers_pending, vm, json_true());
    }
    json_object_clear(db->record_errors);
}

/* True if a Channel row came, went, or changed its chassis, claim or
 * state since the last track clear (not its counters, written all the
 * time). */
static bool
claims_changed(const struct chandb *db)
{
    const struct ovsdb_replica_row *row;
    for (row = ovsdb_replica_track_first(ovsdb_replica_get_table(
                                             db->replica, "Channel"));
         row; row = ovsdb_replica_track_next(row)) {
        if (ovsdb_replica_row_change(row) != OVSDB_REPLICA_MODIFIED
            || ovsdb_replica_row_column_changed(row, "chassis")
            || ovsdb_replica_row_column_changed(row, "claim")
            || ovsdb_replica_row_column_changed(row, "state")) {
            return true;
        }
    }
    return false;
}

void
chandb_run(struct chandb *db)
{
    ovsdb_replica_run(db->replica);
    bool synced = ovsdb_replica_is_synced(db->replica);
    if (synced && !db->was_synced) {
        rewrite_all(db);
    }
    db->was_synced = synced;
    uint64_t seqno = ovsdb_replica_get_seqno(db->replica);
    if (seqno != db->replica_seqno && ovsdb_replica_is_synced(db->replica)) {
        const struct ovsdb_replica_table *records
            = ovsdb_replica_get_table(db->replica, "Record");
        const struct ovsdb_replica_table *keys
            = ovsdb_replica_get_table(db->replica, "Channel_Key");
        if (!db->replica_seqno) {
            rebuild_index(db);
        } else if (ovsdb_replica_track_first(records)
                   || ovsdb_replica_track_first(ovsdb_replica_get_table(
                                                    db->replica,
                                                    "Record_Set"))) {
            update_index(db);
        }
        if (!db->replica_seqno || ovsdb_replica_track_first(keys)) {
            db->keys_seqno++;
        }
        if (!db->replica_seqno
            || ovsdb_replica_track_first(ovsdb_replica_get_table(
                                             db->replica, "Chan_Global"))
            || ovsdb_replica_track_first(ovsdb_replica_get_table(
                                             db->replica, "Guest_Limits"))) {
            db->limits_seqno++;
        }
        if (!db->replica_seqno || claims_changed(db)) {
            db->claims_seqno++;
        }
        if (!db->replica_seqno || relay_inputs_changed(db)) {
            db->relay_dirty = true;
        }
        if (!db->replica_seqno || objaction_inputs_changed(db)) {
            db->objaction_dirty = true;
        }
        db->replica_seqno = seqno;
        ovsdb_replica_track_clear(db->replica);
    }

    bool pending = ovsdb_replica_cond_pending(db->replica);
    if (db->cond_was_pending && !pending) {
        db->claims_seqno++;
    }
    if (hmap_count(&db->priors)) {
        sweep_priors(db, time_msec());
    }
    db->cond_was_pending = pending;

    const char *vm;
    json_t *p;
    void *tmp;
    db->retry_at = LLONG_MAX;
    json_object_foreach_safe (db->writers_pending, tmp, vm, p) {
        write_channel(db, vm, writer_get(db, vm));
    }
    if (synced && db->monitor_all) {
        /* Relayed records and object actions are derived from every VM's
         * rows: only a chand-host that sees them all computes them. */
        relay_run(db);
        objaction_run(db);
    }
}

void
chandb_wait(struct chandb *db)
{
    ovsdb_replica_wait(db->replica);
    if (db->retry_at != LLONG_MAX) {
        poll_timer_wait_until(db->retry_at);
    }
    if (db->prior_retry_at != LLONG_MAX) {
        poll_timer_wait_until(db->prior_retry_at);
    }
}

bool
chandb_is_connected(const struct chandb *db)
{
    return ovsdb_replica_is_synced(db->replica);
}

uint64_t
chandb_get_seqno(const struct chandb *db)
{
    return db->seqno;
}

uint64_t
chandb_get_keys_seqno(const struct chandb *db)
{
    return db->keys_seqno;
}

static bool
is_hex_key(const char *s)
{
    if (!s || strlen(s) != 64) {
        return false;
    }
    for (; *s; s++) {
        if (!strchr("0123456789abcdefABCDEF", *s)) {
            return false;
        }
    }
    return true;
}

static int
compare_generation_desc(const void *a_, const void *b_)
{
    const json_t *const *a = a_, *const *b = b_;
    json_int_t ga = json_integer_value(json_array_get(*a, 0));
    json_int_t gb = json_integer_value(json_array_get(*b, 0));
    return ga < gb ? 1 : ga > gb ? -1 : 0;
}

json_t *
chandb_keys(const struct chandb *db, const char *vm)
{
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(db->replica, "Channel_Key");
    const struct ovsdb_replica_row *row;
    json_t **keys = NULL;
    size_t n = 0;

    OVSDB_REPLICA_FOR_EACH_EQ (row, t, vm) {
        const char *key;
        uint64_t gen;
        if (ovsdb_datum_get_string(ovsdb_replica_row_get(row, "key"), &key)
            || !is_hex_key(key)
            || !get_uint(row, "generation", INT32_MAX, &gen) || !gen) {
            VLOG_WARN_RL(&rl, "Channel_Key %s for %s: key must be 64 hex "
                         "digits with a generation >= 1",
                         ovsdb_replica_row_uuid(row), vm);
            continue;
        }
        keys = xrealloc(keys, (n + 1) * sizeof *keys);
        keys[n++] = json_pack("[Is]", (json_int_t) gen, key);
    }
    if (n) {
        qsort(keys, n, sizeof *keys, compare_generation_desc);
    }
    json_t *array = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(array, keys[i]);
    }
    free(keys);
    return array;
}

bool
chandb_desired_changed_all(const struct chandb *db)
{
    return db->changed_all;
}

const json_t *
chandb_desired_changes(const struct chandb *db)
{
    return db->changed;
}

void
chandb_desired_changes_clear(struct chandb *db)
{
    json_object_clear(db->changed);
    db->changed_all = false;
}

const json_t *
chandb_desired(struct chandb *db, const char *vm)
{
    json_t *merged = json_object_get(db->merged, vm);
    if (!merged) {
        merged = json_copy(db->global);
        json_object_update(merged, json_object_get(db->per_vm, vm));
        json_object_set_new(db->merged, vm, merged);
    }
    return merged;
}

/* Channel rows. */

static void
writer_free(struct chandb_writer *w)
{
    if (w) {
        json_decref(w->wanted);
        json_decref(w->written);
        json_decref(w->applied);
        json_decref(w->pending);
        free(w);
    }
}

/* Returns Channel row contents for 'st' without 'applied' (a new JSON
 * object), which the writer keeps apart. */
static json_t *
channel_row(const struct chandb_channel_state *st)
{
    const char *key;
    json_t *entry;
    json_t *stats_map = json_array();
    if (st->statistics) {
        json_object_foreach ((json_t *) st->statistics, key, entry) {
            json_array_append_new(stats_map, json_pack("[sO]", key, entry));
        }
    }
    json_t *errors_map = json_array();
    if (st->errors) {
        json_object_foreach ((json_t *) st->errors, key, entry) {
            json_array_append_new(errors_map, json_pack("[sO]", key, entry));
        }
    }
    json_t *row = json_pack(
        "{ss sI sI ss ss sI sI sI sI sb s[so] s[so]}",
        "vm", st->vm,
        "chan_id", (json_int_t) st->chan_id,
        "vid", (json_int_t) st->vid,
        "interface", st->iface ? st->iface : "",
        "state", st->state,
        "host_epoch", (json_int_t) st->host_epoch,
        "guest_epoch", (json_int_t) st->guest_epoch,
        "desired_count", (json_int_t) st->desired_count,
        "applied_count", (json_int_t) json_object_size(st->applied),
        "synced", st->synced,
        "statistics", "map", stats_map,
        "errors", "map", errors_map);
    json_object_set_new(row, "applied_seq",
                        json_integer((json_int_t) st->applied_seq));
    json_object_set_new(row, "chassis",
                        json_string(st->chassis ? st->chassis : ""));
    json_object_set_new(row, "state_reason",
                        st->reason ? json_string(st->reason)
                                   : json_pack("[s[]]", "set"));
    json_object_set_new(row, "claim", json_integer(st->claim));
    json_object_set_new(row, "migrations", json_integer(st->migrations));
    json_t *sent_map = json_array();
    if (st->sent_seq && st->sent) {
        json_object_foreach ((json_t *) st->sent, key, entry) {
            json_array_append_new(sent_map, json_pack(
                                      "[sO]", key, json_array_get(entry,
                                                                  0)));
        }
    }
    json_object_set_new(row, "sent_seq",
                        json_integer(st->sent ? (json_int_t) st->sent_seq
                                              : 0));
    json_object_set_new(row, "sent", json_pack("[so]", "map", sent_map));
    json_object_set_new(row, "applied_digest",
                        json_string(st->applied_digest));
    return row;
}

/* Notes that VM 'vm''s Channel row in the Chan DB shows its channel as it
 * was at ack mark 'mark' (chandb_take_committed()). */
static void
note_committed(struct chandb *db, const char *vm, uint64_t mark)
{
    json_t *old = json_object_get(db->committed, vm);
    if (mark && (!old || (uint64_t) json_integer_value(old) < mark)) {
        json_object_set_new(db->committed, vm, json_integer(mark));
    }
}

static void
channel_write_done(const json_t *result, const char *error, void *aux)
{
    struct txn_ctx *ctx = aux;
    struct chandb_writer *w = writer_get(ctx->db, ctx->vm);
    if (w) {
        w->txn = 0;
        if (!error) {
            note_committed(ctx->db, ctx->vm, w->txn_mark);
        }
        /* The row may have changed while this was in flight. */
        json_object_set_new(ctx->db->writers_pending, ctx->vm, json_true());
        if (error) {
            ctx->db->stats.txn_errors++;
            VLOG_WARN_RL(&rl, "writing Channel %s failed: %s", ctx->vm,
                         error);
            json_decref(w->written);
            w->written = NULL;  /* Write it again, in a while. */
            w->pending_all = true;
            w->retry_at = time_msec() + CHANNEL_RETRY_MS;
        }
    }
    free(ctx->vm);
    free(ctx);
}

/* Returns the whole 'applied' map that writer 'w' wants, as an OVSDB
 * datum (a new reference). */
static json_t *
applied_map(const struct chandb_writer *w)
{
    json_t *pairs = json_array();
    const char *key;
    json_t *version;
    json_object_foreach (w->applied, key, version) {
        json_array_append_new(pairs, json_pack("[sO]", key, version));
    }
    return json_pack("[so]", "map", pairs);
}

/* Returns the mutations that bring 'applied' from what writer 'w' last
 * wrote to what it wants: its pending keys deleted, then those it still
 * has inserted with their versions ("insert" leaves a key that is there
 * alone, so the delete goes first).  A new JSON array, empty if nothing
 * is pending. */
static json_t *
applied_mutations(const struct chandb_writer *w)
{
    json_t *del = json_array();
    json_t *ins = json_array();
    const char *key;
    json_t *v;
    json_object_foreach (w->pending, key, v) {
        json_array_append_new(del, json_string(key));
        json_t *version = json_object_get(w->applied, key);
        if (version) {
            json_array_append_new(ins, json_pack("[sO]", key, version));
        }
    }
    json_t *mutations = json_array();
    if (json_array_size(del)) {
        json_array_append_new(mutations, ovsdb_mutation(
                                  "applied", "delete",
                                  json_pack("[so]", "set", del)));
    } else {
        json_decref(del);
    }
    if (json_array_size(ins)) {
        json_array_append_new(mutations, ovsdb_mutation(
                                  "applied", "insert",
                                  json_pack("[so]", "map", ins)));
    } else {
        json_decref(ins);
    }
    return mutations;
}

/* Writes VM 'vm''s Channel row (writer 'w', NULL if it has none) if it
 * differs from what was written, and keeps 'vm' in 'writers_pending' while
 * it is not written yet and no write is in flight. */
static void
write_channel(struct chandb *db, const char *vm, struct chandb_writer *w)
{
    if (!w || w->txn
        || (w->written && !w->pending_all && !json_object_size(w->pending)
            && json_equal(w->written, w->wanted))) {
        if (w && !w->txn && w->written) {
            /* The row already says what the channel had at this mark. */
            note_committed(db, vm, w->wanted_mark);
        }
        json_object_del(db->writers_pending, vm);
        return;
    }
    json_object_set_new(db->writers_pending, vm, json_true());
    if (!ovsdb_replica_is_synced(db->replica)) {
        return;
    }
    if (time_msec() < w->retry_at) {
        db->retry_at = MIN_LL(db->retry_at, w->retry_at);
        return;
    }
    const struct ovsdb_replica_row *found = find_channel_row(db, vm);
    json_t *ops = json_array();
    bool whole = !found || !w->written || w->pending_all;
    json_t *row = json_copy(w->wanted);
    if (whole) {
        json_object_set_new(row, "applied", applied_map(w));
    }
    if (found) {
        /* The row's identity (vm, chassis) stays as inserted: a host's
         * role may update its rows but not rename them (RBAC). */
        const char *uuid = ovsdb_replica_row_uuid(found);
        json_object_del(row, "vm");
        json_object_del(row, "chassis");
        json_array_append_new(ops, ovsdb_op_update("Channel",
                                                   ovsdb_where_uuid(uuid),
                                                   row));
        if (!whole && json_object_size(w->pending)) {
            /* Only what changed in 'applied', which may hold many keys. */
            json_array_append_new(ops, ovsdb_op_mutate(
                                      "Channel", ovsdb_where_uuid(uuid),
                                      applied_mutations(w)));
        }
    } else {
        json_array_append_new(ops, ovsdb_op_insert("Channel", row, NULL));
    }
    json_decref(w->pending);
    w->pending = json_object();
    w->pending_all = false;
    struct txn_ctx *ctx = calloc(1, sizeof *ctx);
    ctx->db = db;
    ctx->vm = strdup(vm);
    w->txn = ovsdb_replica_transact(db->replica, ops, channel_write_done,
                                    ctx);
    w->txn_mark = w->wanted_mark;
    json_decref(w->written);
    w->written = json_incref(w->wanted);
    json_object_del(db->writers_pending, vm);
}

/* True if Channel row 'row' is VM 'vm''s.  With 'chassis', also that
 * chassis's. */
static bool
channel_row_is(const struct ovsdb_replica_row *row, const char *vm,
               const char *chassis)
{
    const char *name = ovsdb_replica_row_get_string(row, "vm");
    const char *owner = ovsdb_replica_row_get_string(row, "chassis");
    return name && !strcmp(name, vm)
           && (!chassis || (owner && !strcmp(owner, chassis)));
}

/* This chassis's Channel row of VM 'vm', or NULL. */
static const struct ovsdb_replica_row *
find_channel_row(const struct chandb *db, const char *vm)
{
    const struct ovsdb_replica_table *channels
        = ovsdb_replica_get_table(db->replica, "Channel");
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_EQ (row, channels, vm) {
        if (channel_row_is(row, vm, db->chassis ? db->chassis : "")) {
            return row;
        }
    }
    return NULL;
}

/* The condition that selects this chassis's Channel row of VM 'vm'. */
static json_t *
where_own_channel(const struct chandb *db, const char *vm)
{
    return json_pack("[oo]", ovsdb_condition("vm", "==", json_string(vm)),
                     ovsdb_condition("chassis", "==",
                                     json_string(db->chassis
                                                 ? db->chassis : "")));
}

static bool
get_uint(const struct ovsdb_replica_row *row, const char *column,
         uint64_t max, uint64_t *value)
{
    int64_t v;
    bool present;
    if (ovsdb_datum_get_integer(ovsdb_replica_row_get(row, column), &v,
                                &present) || !present || v < 0
        || (uint64_t) v > max) {
        return false;
    }
    *value = v;
    return true;
}

/* Reads a map string -> integer column value 'column' (borrowed, may be
 * NULL) into a new JSON object key -> [integer, null]; NULL if it is not
 * one. */
static json_t *
get_version_map(const json_t *column)
{
    struct ovsdb_datum d;
    if (!column || ovsdb_datum_from_json(&d, column, false)) {
        return NULL;
    }
    json_t *map = json_object();
    bool ok = d.is_map || d.n == 0;
    for (size_t i = 0; ok && i < d.n; i++) {
        if (d.keys[i].type != OVSDB_ATOM_STRING
            || d.values[i].type != OVSDB_ATOM_INTEGER) {
            ok = false;
            break;
        }
        json_object_set_new(map, d.keys[i].u.string,
                            json_pack("[In]",
                                      (json_int_t) d.values[i].u.integer));
    }
    ovsdb_datum_destroy(&d);
    if (!ok) {
        json_decref(map);
        map = NULL;
    }
    return map;
}

/* Reads integer column value 'column' (borrowed, may be NULL), if it is
 * 0..'max', into '*value'. */
static bool
get_uint_value(const json_t *column, uint64_t max, uint64_t *value)
{
    int64_t v;
    bool present;
    if (!column || ovsdb_datum_get_integer(column, &v, &present)
        || !present || v < 0 || (uint64_t) v > max) {
        return false;
    }
    *value = v;
    return true;
}

static int64_t
row_claim(const struct ovsdb_replica_row *row)
{
    uint64_t claim;
    return get_uint(row, "claim", INT64_MAX, &claim) ? (int64_t) claim : 0;
}

/* Fills 'prior' from 'row', a Channel row as a "select" returns it
 * (borrowed), if it holds an exact position. */
static bool
prior_from_row(const struct chandb *db, const json_t *row,
               struct chandb_prior *prior)
{
    uint64_t epoch, guest_epoch, seq, sent_seq;

    if (!get_uint_value(json_object_get(row, "host_epoch"), UINT32_MAX,
                        &epoch) || !epoch
        || !get_uint_value(json_object_get(row, "guest_epoch"), UINT32_MAX,
                           &guest_epoch)
        || !get_uint_value(json_object_get(row, "applied_seq"), INT64_MAX,
                           &seq) || !seq) {
        return false;
    }
    json_t *applied = get_version_map(json_object_get(row, "applied"));
    if (!applied) {
        return false;
    }
    memset(prior, 0, sizeof *prior);
    prior->host_epoch = epoch;
    prior->guest_epoch = guest_epoch;
    prior->applied_seq = seq;
    prior->applied = applied;
    const char *digest = json_string_value(json_object_get(row,
                                                           "applied_digest"));
    if (digest && strlen(digest) == 16) {
        memcpy(prior->applied_digest, digest, 17);
    }
    if (get_uint_value(json_object_get(row, "sent_seq"), INT64_MAX,
                       &sent_seq) && sent_seq > seq) {
        prior->sent = get_version_map(json_object_get(row, "sent"));
        prior->sent_seq = prior->sent ? sent_seq : 0;
    }
    const char *chassis = json_string_value(json_object_get(row, "chassis"));
    prior->other_chassis = (chassis && db->chassis
                            && strcmp(chassis, db->chassis));
    return true;
}

/* Fills 'prior' from the newest claim among 'rows' (VM 'vm''s Channel rows
 * as a "select" returns them, borrowed) that holds an exact position: the
 * host that served the guest last (a row just claimed has none yet). */
static bool
prior_from_rows(const struct chandb *db, const char *vm, const json_t *rows,
                struct chandb_prior *prior)
{
    const json_t *best = NULL;
    uint64_t best_claim = 0;
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row) {
        const char *name = json_string_value(json_object_get(row, "vm"));
        uint64_t claim;
        if (!get_uint_value(json_object_get(row, "claim"), INT64_MAX,
                            &claim)) {
            claim = 0;
        }
        struct chandb_prior tmp;
        if (name && !strcmp(name, vm) && (!best || claim > best_claim)
            && prior_from_row(db, row, &tmp)) {
            chandb_prior_destroy(&tmp);
            best = row;
            best_claim = claim;
        }
    }
    return best && prior_from_row(db, best, prior);
}

static struct prior_read *
prior_read_find(const struct chandb *db, const char *vm)
{
    struct prior_read *pr;
    HMAP_FOR_EACH_WITH_HASH (pr, node, hash_string_nocase(vm), &db->priors) {
        if (!strcmp(pr->vm, vm)) {
            return pr;
        }
    }
    return NULL;
}

static void
prior_read_del(struct chandb *db, struct prior_read *pr)
{
    hmap_remove(&db->priors, &pr->node);
    json_decref(pr->rows);
    free(pr->vm);
    free(pr);
}

/* What the Chan DB's answer to a read needs to find its prior_read: the
 * VM's name rather than a pointer, so that an answer never reaches a
 * prior_read freed meanwhile. */
struct prior_ctx {
    struct chandb *db;
    char *vm;
};

/* Forgets replies no channel used in time, and failures whose retry is
 * due: chandb_get_prior() reads those again when asked. */
static void
sweep_priors(struct chandb *db, long long now)
{
    struct prior_read *pr;
    HMAP_FOR_EACH_SAFE (pr, node, &db->priors) {
        if ((pr->state == PRIOR_READ
             && now - pr->at > CHANDB_PRIOR_MAX_AGE_MS)
            || (pr->state == PRIOR_FAILED && now >= pr->retry_at)) {
            prior_read_del(db, pr);
        }
    }
    if (now >= db->prior_retry_at) {
        db->prior_retry_at = LLONG_MAX;
        db->claims_seqno++;     /* Channels waiting for a retry. */
    }
}

static void
prior_fetched(const json_t *result, const char *error, void *aux)
{
    struct prior_ctx *ctx = aux;
    struct chandb *db = ctx->db;
    struct prior_read *pr = prior_read_find(db, ctx->vm);
    const json_t *rows = (error ? NULL
                          : json_object_get(json_array_get(result, 0),
                                            "rows"));
    long long now = time_msec();

    if (!pr || pr->state != PRIOR_READING) {
        /* Not asked for any more. */
    } else if (json_is_array(rows)) {
        pr->state = PRIOR_READ;
        pr->at = now;
        pr->rows = json_incref((json_t *) rows);
        db->claims_seqno++;     /* chand-host looks at the VM again. */
    } else {
        db->stats.txn_errors++;
        VLOG_WARN_RL(&rl, "%s: reading its Channel rows failed: %s",
                     ctx->vm, error ? error : "no rows in the reply");
        pr->state = PRIOR_FAILED;
        pr->retry_at = now + CHANNEL_RETRY_MS;
        db->prior_retry_at = MIN_LL(db->prior_retry_at, pr->retry_at);
    }
    free(ctx->vm);
    free(ctx);
}

/* Reads VM 'vm''s Channel rows, of every chassis, from the Chan DB into
 * 'pr': the columns prior_from_row() needs. */
static void
fetch_prior(struct chandb *db, struct prior_read *pr)
{
    json_decref(pr->rows);
    pr->rows = NULL;
    pr->state = PRIOR_READING;

    struct prior_ctx *ctx = xmalloc(sizeof *ctx);
    ctx->db = db;
    ctx->vm = xstrdup(pr->vm);
    json_t *columns = json_pack("[ssssssssss]", "vm", "chassis", "claim",
                                "host_epoch", "guest_epoch", "applied_seq",
                                "applied", "applied_digest", "sent_seq",
                                "sent");
    json_t *where = json_pack("[o]", ovsdb_condition("vm", "==",
                                                     json_string(pr->vm)));
    ovsdb_replica_transact(db->replica,
                           json_pack("[o]", ovsdb_op_select("Channel", where,
                                                            columns)),
                           prior_fetched, ctx);
}

enum chandb_prior_status
chandb_get_prior(struct chandb *db, const char *vm,
                 struct chandb_prior *prior)
{
    struct prior_read *pr = prior_read_find(db, vm);
    long long now = time_msec();

    if (!pr) {
        pr = xzalloc(sizeof *pr);
        pr->vm = xstrdup(vm);
        hmap_insert(&db->priors, &pr->node, hash_string_nocase(vm));
    } else if (pr->state == PRIOR_READING) {
        return CHANDB_PRIOR_PENDING;
    } else if (pr->state == PRIOR_READ
               && now - pr->at <= CHANDB_PRIOR_MAX_AGE_MS) {
        bool found = prior_from_rows(db, vm, pr->rows, prior);
        prior_read_del(db, pr);
        return found ? CHANDB_PRIOR_FOUND : CHANDB_PRIOR_NONE;
    } else if (pr->state == PRIOR_FAILED && now < pr->retry_at) {
        return CHANDB_PRIOR_PENDING;
    }
    /* Never read, read too long ago, or failed and due: read (again). */
    fetch_prior(db, pr);
    return CHANDB_PRIOR_PENDING;
}

void
chandb_prior_destroy(struct chandb_prior *prior)
{
    json_decref(prior->applied);
    json_decref(prior->sent);
}

size_t
chandb_get_claims(const struct chandb *db, const char *vm,
                  struct claim_row **rowsp)
{
    struct claim_row *rows = NULL;
    size_t n = 0;
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_EQ (row, ovsdb_replica_get_table(db->replica,
                                                           "Channel"), vm) {
        if (channel_row_is(row, vm, NULL)) {
            uint64_t migrations;
            rows = xrealloc(rows, (n + 1) * sizeof *rows);
            rows[n++] = (struct claim_row) {
                .chassis = ovsdb_replica_row_get_string(row, "chassis"),
                .claim = row_claim(row),
                .migrations = (get_uint(row, "migrations", INT64_MAX,
                                        &migrations) ? migrations : 0),
                .state = ovsdb_replica_row_get_string(row, "state"),
            };
        }
    }
    *rowsp = rows;
    return n;
}

uint64_t
chandb_get_claims_seqno(const struct chandb *db)
{
    return db->claims_seqno;
}

json_t *
chandb_own_rows(const struct chandb *db)
{
    json_t *vms = json_object();
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Channel")) {
        const char *vm = ovsdb_replica_row_get_string(row, "vm");
        const char *chassis = ovsdb_replica_row_get_string(row, "chassis");
        if (vm && chassis && db->chassis && !strcmp(chassis, db->chassis)) {
            json_object_set_new(vms, vm, json_true());
        }
    }
    return vms;
}

size_t
chandb_chan_ids(const struct chandb *db, const char *vm, uint32_t **idsp,
                uint32_t *vm_idp)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    int64_t newest = -1;
    const struct ovsdb_replica_row *row;

    *vm_idp = 0;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Channel")) {
        const char *name = ovsdb_replica_row_get_string(row, "vm");
        uint64_t id;
        if (!name || !get_uint(row, "chan_id", UINT32_MAX, &id) || !id) {
            continue;
        }
        if (!strcmp(name, vm)) {
            if (row_claim(row) > newest) {
                newest = row_claim(row);
                *vm_idp = id;
            }
            continue;
        }
        ids = xrealloc(ids, (n + 1) * sizeof *ids);
        ids[n++] = id;
    }
    *idsp = ids;
    return n;
}

static void
delete_channel_done(const json_t *result, const char *error, void *aux)
{
    struct txn_ctx *ctx = aux;
    if (error) {
        ctx->db->stats.txn_errors++;
        VLOG_WARN_RL(&rl, "deleting Channel %s failed: %s", ctx->vm, error);
    }
    free(ctx->vm);
    free(ctx);
    (void) result;
}

void
chandb_delete_channel(struct chandb *db, const char *vm)
{
    struct chandb_writer *w = writer_get(db, vm);
    if (w) {
        if (w->txn) {
            return;             /* Once the write in flight ends. */
        }
        writer_free(w);
        json_object_del(db->writers_by_vm, vm);
        json_object_del(db->writers_pending, vm);
    }
    if (!find_channel_row(db, vm) || !ovsdb_replica_is_synced(db->replica)) {
        return;
    }
    struct txn_ctx *ctx = xzalloc(sizeof *ctx);
    ctx->db = db;
    ctx->vm = xstrdup(vm);
    ovsdb_replica_transact(db->replica,
                           json_pack("[o]", ovsdb_op_delete(
                                         "Channel",
                                         where_own_channel(db, vm))),
                           delete_channel_done, ctx);
}

void
chandb_set_chassis(struct chandb *db, const char *chassis)
{
    if (!db->chassis || strcmp(db->chassis, chassis)) {
        free(db->chassis);
        db->chassis = xstrdup(chassis);
        if (!db->monitor_all) {
            send_conditions(db);
        }
    }
}

/* Sets the condition of 'table' to 'base' (clauses, stolen) plus one
 * "vm == V" clause per monitored VM. */
static void
set_vm_condition(struct chandb *db, const char *table, json_t *base)
{
    const char *vm;
    json_t *v;
    json_object_foreach (db->vms, vm, v) {
        json_array_append_new(base, json_pack("[sss]", "vm", "==", vm));
    }
    if (!json_array_size(base)) {
        json_array_append_new(base, json_false());
    }
    ovsdb_replica_set_condition(ovsdb_replica_get_table(db->replica, table),
                                base);
    json_decref(base);
}

/* Sets the condition of every monitored table from 'db->vms' and
 * 'db->chassis' (a chand-host that does not monitor everything): the
 * conditions are sent to the server, and chandb_is_ready() is false until
 * it applied them.  Called whenever either changes. */
static void
send_conditions(struct chandb *db)
{
    /* Records for all VMs; this chassis's own Channel rows (of VMs it
     * released too); the monitored VMs' rows. */
    set_vm_condition(db, "Record",
                     json_pack("[[ss[s[]]] [sss]]", "vm", "==", "set",
                               "vm", "==", ""));
    set_vm_condition(db, "Record_Set",
                     json_pack("[[ss[s[]]] [sss]]", "vm", "==", "set",
                               "vm", "==", ""));
    set_vm_condition(db, "Channel",
                     db->chassis ? json_pack("[[sss]]", "chassis", "==",
                                             db->chassis)
                                 : json_array());
    static const char *const per_vm[] = { "Guest_Record", "Channel_Key",
                                          "Guest_Limits", "Object_Ref" };
    for (size_t i = 0; i < sizeof per_vm / sizeof *per_vm; i++) {
        set_vm_condition(db, per_vm[i], json_array());
    }
}

void
chandb_set_vms(struct chandb *db, const json_t *vms)
{
    if (db->monitor_all) {
        return;
    }
    /* Kept even when equal: the next conditions sent list the VMs in the
     * order of the latest set. */
    json_t *set = json_deep_copy(vms);
    bool same = json_equal(set, db->vms);
    json_decref(db->vms);
    db->vms = set;
    if (!same) {
        send_conditions(db);
    }
}

bool
chandb_monitors_all(const struct chandb *db)
{
    return db->monitor_all;
}

bool
chandb_is_ready(const struct chandb *db)
{
    return ovsdb_replica_is_synced(db->replica)
           && !ovsdb_replica_cond_pending(db->replica);
}

json_t *
chandb_status_json(const struct chandb *db)
{
    struct ovsdb_replica_stats st;
    ovsdb_replica_get_stats(db->replica, &st);
    json_t *updates = json_object();
    static const char *const tables[] = { "Record", "Record_Set",
                                          "Channel", "Guest_Record", "Channel_Key",
                                          "Guest_Limits", "Object_Ref",
                                          "Object", "Relay", "Allowlist",
                                          "Chan_Global" };
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        const struct ovsdb_replica_table *t
            = ovsdb_replica_get_table(db->replica, tables[i]);
        if (t) {
            json_object_set_new(updates, tables[i], json_integer(
                                    ovsdb_replica_table_n_row_updates(t)));
        }
    }
    const char *remote = ovsdb_replica_get_remote(db->replica);
    const char *last_id = ovsdb_replica_get_last_id(db->replica);
    return json_pack("{ss ss? ss sI sb sI sI sI sI sI sI sI sI sI so ss?}",
                     "remotes", db->remote,
                     "remote", remote,
                     "monitor", db->monitor_all ? "all" : "own",
                     "vms_monitored", (json_int_t) json_object_size(db->vms),
                     "conditions_pending",
                     ovsdb_replica_cond_pending(db->replica),
                     "connects", (json_int_t) st.n_connects,
                     "full_syncs", (json_int_t) st.n_syncs,
                     "resumes", (json_int_t) st.n_resumes,
                     "monitor_version", (json_int_t) st.monitor_version,
                     "leader_changes", (json_int_t) st.n_leader_changes,
                     "remote_moves", (json_int_t) st.n_remote_moves,
                     "server_rejects", (json_int_t) st.n_server_rejects,
                     "cond_changes", (json_int_t) st.n_cond_changes,
                     "bytes_received", (json_int_t) st.n_bytes_received,
                     "row_updates", updates,
                     "last_txn_id", last_id);
}

void
chandb_update_channel(struct chandb *db,
                      const struct chandb_channel_state *st)
{
    struct chandb_writer *w = writer_get(db, st->vm);
    if (!w) {
        w = calloc(1, sizeof *w);
        json_object_set_new(db->writers_by_vm, st->vm,
                            json_integer((json_int_t) (uintptr_t) w));
    }
    json_decref(w->wanted);
    w->wanted = channel_row(st);
    w->wanted_mark = st->ack_mark;
    writer_set_applied(w, st);
    write_channel(db, st->vm, w);
}

/* Brings writer 'w''s wanted 'applied' map up to 'st', noting the keys to
 * write. */
static void
writer_set_applied(struct chandb_writer *w,
                   const struct chandb_channel_state *st)
{
    const char *key;
    json_t *entry;
    if (!w->pending) {
        w->pending = json_object();
    }
    if (!st->applied_changed || !w->applied) {
        json_decref(w->applied);
        w->applied = json_object();
        if (st->applied) {
            json_object_foreach ((json_t *) st->applied, key, entry) {
                json_object_set(w->applied, key, json_array_get(entry, 0));
            }
        }
        json_object_clear(w->pending);
        w->pending_all = true;
        return;
    }
    json_t *v;
    json_object_foreach ((json_t *) st->applied_changed, key, v) {
        entry = json_object_get(st->applied, key);
        if (entry) {
            json_object_set(w->applied, key, json_array_get(entry, 0));
        } else {
            json_object_del(w->applied, key);
        }
        if (!w->pending_all) {
            json_object_set_new(w->pending, key, json_true());
        }
    }
}

json_t *
chandb_take_committed(struct chandb *db)
{
    if (!json_object_size(db->committed)) {
        return NULL;
    }
    json_t *committed = db->committed;
    db->committed = json_object();
    return committed;
}

/* Upstream. */

void
chandb_get_upstream(const struct chandb *db, const char *vm,
                    struct chandb_upstream *up)
{
    const struct ovsdb_replica_row *row, *best = NULL;
    uint64_t epoch, position;

    /* The newest claim that stored a position: after a migration, the
     * previous chassis's row. */
    up->epoch = 0;
    up->position = 0;
    OVSDB_REPLICA_FOR_EACH_EQ (row, ovsdb_replica_get_table(db->replica,
                                                           "Channel"), vm) {
        if (channel_row_is(row, vm, NULL)
            && get_uint(row, "up_epoch", UINT32_MAX, &epoch) && epoch
            && get_uint(row, "up_position", INT64_MAX, &position)
            && (!best || row_claim(row) > row_claim(best))) {
            best = row;
            up->epoch = epoch;
            up->position = position;
        }
    }
    up->rows = json_object();
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(db->replica, "Guest_Record");
    OVSDB_REPLICA_FOR_EACH_EQ (row, t, vm) {
        const char *key, *value;
        int64_t version;
        bool present;
        if (!ovsdb_datum_get_string(ovsdb_replica_row_get(row, "key"),
                                    &key) && key
            && !ovsdb_datum_get_string(ovsdb_replica_row_get(row, "value"),
                                       &value) && value
            && !ovsdb_datum_get_integer(ovsdb_replica_row_get(row,
                                                              "version"),
                                        &version, &present) && present) {
            json_object_set_new(up->rows, key,
                                json_pack("[Is]", (json_int_t) version,
                                          value));
        }
    }
}

struct write_ctx {
    struct chandb *db;
    chandb_done_func *done;
    void *aux;
    char *vm;                   /* For counting, or NULL. */
    json_int_t objects_refused; /* Object records mapping nothing. */
};

static void relay_count(struct chandb *, const char *vm, const char *what,
                        json_int_t n);

static void
guest_batch_done(const json_t *result, const char *error, void *aux)
{
    struct write_ctx *ctx = aux;
    if (error) {
        ctx->db->stats.txn_errors++;
        VLOG_WARN_RL(&rl, "writing Guest_Record rows failed: %s", error);
    } else if (ctx->vm && ctx->objects_refused) {
        relay_count(ctx->db, ctx->vm, "objects_refused",
                    ctx->objects_refused);
    }
    if (ctx->done) {
        ctx->done(!error, ctx->aux);
    }
    free(ctx->vm);
    free(ctx);
    (void) result;
}

static json_t *
where_vm(const char *vm)
{
    return json_pack("[o]", ovsdb_condition("vm", "==", json_string(vm)));
}

static json_t *
where_vm_key(const char *vm, const char *key)
{
    return json_pack("[oo]", ovsdb_condition("vm", "==", json_string(vm)),
                     ovsdb_condition("key", "==", json_string(key)));
}

/* Returns the keys of VM 'vm''s Guest_Record rows in the replica, as a new
 * JSON object (key -> true). */
static json_t *
guest_record_keys(const struct chandb *db, const char *vm)
{
    json_t *keys = json_object();
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(db->replica, "Guest_Record");
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_EQ (row, t, vm) {
        const char *key;
        if (!ovsdb_datum_get_string(ovsdb_replica_row_get(row, "key"),
                                    &key) && key) {
            json_object_set_new(keys, key, json_true());
        }
    }
    return keys;
}

void
chandb_write_guest_batch(struct chandb *db, const char *vm,
                         const struct upstream_batch *b, size_t n_rows,
                         chandb_done_func *done, void *aux)
{
    json_t *ops = json_array();
    json_int_t now_ms = time_wall_msec();
    struct write_ctx *ctx = xzalloc(sizeof *ctx);
    struct objmap_txn otxn;

    objmap_txn_init(&otxn);
    if (b->set_position) {
        /* The Channel row must exist, or the position would be lost. */
        json_array_append_new(ops, ovsdb_op_wait("Channel",
                                                 where_own_channel(db, vm),
                                                 json_array(), "!=",
                                                 json_array(), 0));
    }
    /* Whether a put inserts or updates follows the rows as the Chan DB has
     * them, not 'c->insert': a transaction cut off by a lost connection may
     * have committed all the same. */
    json_t *existing = guest_record_keys(db, vm);
    for (size_t i = 0; i < b->n; i++) {
        const struct upstream_change *c = &b->changes[i];
        bool exists = json_object_get(existing, c->key) != NULL;
        json_t *op;
        if (!c->value) {
            op = ovsdb_op_delete("Guest_Record", where_vm_key(vm, c->key));
            json_object_del(existing, c->key);
        } else if (!exists) {
            json_object_set_new(existing, c->key, json_true());
            op = ovsdb_op_insert("Guest_Record", json_pack(
                                     "{ss ss ss sI sI}", "vm", vm,
                                     "key", c->key, "value", c->value,
                                     "version", (json_int_t) c->version,
                                     "updated", now_ms), NULL);
        } else {
            op = ovsdb_op_update("Guest_Record", where_vm_key(vm, c->key),
                                 json_pack("{ss sI sI}", "value", c->value,
                                           "version",
                                           (json_int_t) c->version,
                                           "updated", now_ms));
        }
        json_array_append_new(ops, op);
        if (objmap_is_object_key(c->key)) {
            const char *refused = objmap_ops(db->replica, &otxn, vm, c->key,
                                             c->value, now_ms, ops);
            if (refused) {
                VLOG_WARN_RL(&rl, "%s: object record %s maps nothing: %s",
                             vm, c->key, refused);
                ctx->objects_refused++;
            }
        }
    }
    objmap_txn_destroy(&otxn);
    json_decref(existing);
    if (b->set_position) {
        json_array_append_new(ops, ovsdb_op_update(
                                  "Channel", where_own_channel(db, vm),
                                  json_pack("{sI sI sI}",
                                            "up_epoch",
                                            (json_int_t) b->epoch,
                                            "up_position",
                                            (json_int_t) b->position,
                                            "published_count",
                                            (json_int_t) n_rows)));
    }
    ctx->db = db;
    ctx->done = done;
    ctx->aux = aux;
    ctx->vm = xstrdup(vm);
    if (!json_array_size(ops)) {
        json_decref(ops);
        guest_batch_done(NULL, NULL, ctx);
        return;
    }
    ovsdb_replica_transact(db->replica, ops, guest_batch_done, ctx);
}

void
chandb_delete_guest_records(struct chandb *db, const char *vm)
{
    json_t *ops = json_pack(
        "[oo]", ovsdb_op_delete("Guest_Record", where_vm(vm)),
        ovsdb_op_update("Channel", where_own_channel(db, vm),
                        json_pack("{sI sI sI}", "up_epoch", (json_int_t) 0,
                                  "up_position", (json_int_t) 0,
                                  "published_count", (json_int_t) 0)));
    objmap_delete_vm(vm, ops);
    struct write_ctx *ctx = xzalloc(sizeof *ctx);
    ctx->db = db;
    ovsdb_replica_transact(db->replica, ops, guest_batch_done, ctx);
}

/* True if, since the last track clear, any of the NULL-terminated 'tables'
 * changed, a Record row under one of the NULL-terminated key 'prefixes'
 * did, or a Channel row came or went: what a computation over those tables
 * needs to run again for. */
static bool
inputs_changed(const struct chandb *db, const char *const tables[],
               const char *const prefixes[])
{
    if (records_changed_under(db, prefixes)) {
        return true;
    }
    for (size_t i = 0; tables[i]; i++) {
        if (ovsdb_replica_track_first(ovsdb_replica_get_table(db->replica,
                                                              tables[i]))) {
            return true;
        }
    }
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_TRACKED (row, ovsdb_replica_get_table(db->replica,
                                                               "Channel")) {
        if (ovsdb_replica_row_change(row) != OVSDB_REPLICA_MODIFIED) {
            return true;
        }
    }
    return false;
}

/* Relay. */

/* True if a table relay_compute() reads changed since the last track
 * clear: Guest_Record, Relay, Record (relayed rows someone changed), or the
 * set of Channel rows. */
static bool
relay_inputs_changed(const struct chandb *db)
{
    static const char *const tables[] = { "Guest_Record", "Relay", NULL };
    static const char *const prefixes[] = { RELAY_FROM_PREFIX, NULL };

    return inputs_changed(db, tables, prefixes);
}

static bool
key_has_prefix(const json_t *datum, const char *const *prefixes)
{
    const char *key = NULL;
    if (!datum || ovsdb_datum_get_string(datum, &key) || !key) {
        return false;
    }
    for (const char *const *p = prefixes; *p; p++) {
        if (!strncmp(key, *p, strlen(*p))) {
            return true;
        }
    }
    return false;
}

/* True if a Record row whose key is (or was) under one of 'prefixes' (a
 * NULL-terminated array) changed since the last track clear.  The relayed
 * and object-action records live under their own prefixes, and only
 * records there (derived ones, or the control plane's, which take
 * precedence) change what chand-host derives: a push of any other record
 * does not make it compute them all again. */
static bool
records_changed_under(const struct chandb *db, const char *const *prefixes)
{
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_TRACKED (row, ovsdb_replica_get_table(db->replica,
                                                               "Record")) {
        if (key_has_prefix(ovsdb_replica_row_get(row, "key"), prefixes)
            || key_has_prefix(ovsdb_replica_row_get_old(row, "key"),
                              prefixes)) {
            return true;
        }
    }
    return false;
}

static const char *
row_string(const struct ovsdb_replica_row *row, const char *column)
{
    const char *s = NULL;
    ovsdb_datum_get_string(ovsdb_replica_row_get(row, column), &s);
    return s;
}

/* Every VM's Guest_Record rows: vm -> (key -> [version, value_text]). */
static json_t *
relay_published(const struct chandb *db)
{
    json_t *published = json_object();
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Guest_Record")) {
        const char *vm = row_string(row, "vm");
        const char *key = row_string(row, "key");
        const char *value = row_string(row, "value");
        int64_t version;
        bool present;
        if (!vm || !key || !value
            || ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "version"),
                                       &version, &present) || !present) {
            continue;
        }
        json_t *records = json_object_get(published, vm);
        if (!records) {
            records = json_object();
            json_object_set_new(published, vm, records);
        }
        json_object_set_new(records, key,
                            json_pack("[Is]", (json_int_t) version, value));
    }
    return published;
}

/* The Relay rules.  Fills '*rulesp' (free it and its 'vms' arrays); the
 * strings are borrowed from the replica. */
static size_t
relay_rules(const struct chandb *db, struct relay_rule **rulesp,
            struct ovsdb_datum **datumsp)
{
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(db->replica, "Relay");
    size_t n_rows = ovsdb_replica_table_count(t), n = 0;
    struct relay_rule *rules = xcalloc(n_rows + 1, sizeof *rules);
    struct ovsdb_datum *datums = xcalloc(n_rows + 1, sizeof *datums);
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, t) {
        struct relay_rule *r = &rules[n];
        const char *source = row_string(row, "source");
        r->source = source && *source ? source : NULL;
        r->prefix = row_string(row, "prefix");
        if (!r->prefix || !relay_to_from_string(row_string(row, "to"),
                                                &r->to)
            || ovsdb_datum_from_json(&datums[n],
                                     ovsdb_replica_row_get(row, "vms"),
                                     false)) {
            VLOG_WARN_RL(&rl, "Relay row %s is invalid: ignored",
                         ovsdb_replica_row_uuid(row));
            continue;
        }
        const char **vms = xcalloc(datums[n].n + 1, sizeof *vms);
        for (size_t i = 0; i < datums[n].n; i++) {
            if (datums[n].keys[i].type == OVSDB_ATOM_STRING) {
                vms[r->n_vms++] = datums[n].keys[i].u.string;
            }
        }
        r->vms = vms;
        n++;
    }
    *rulesp = rules;
    *datumsp = datums;
    return n;
}

/* Frees what relay_rules() returned. */
static void
relay_rules_destroy(struct relay_rule *rules, struct ovsdb_datum *datums,
                    size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((void *) rules[i].vms);
        ovsdb_datum_destroy(&datums[i]);
    }
    free(rules);
    free(datums);
}

/* Adds 'n' to counter 'what' of VM 'vm''s running relay totals. */
static void
relay_count(struct chandb *db, const char *vm, const char *what,
            json_int_t n)
{
    json_t *c = json_object_get(db->relay_counts, vm);
    if (!c) {
        c = json_object();
        json_object_set_new(db->relay_counts, vm, c);
    }
    json_object_set_new(c, what, json_integer(
                            json_integer_value(json_object_get(c, what))
                            + n));
}

/* Counts the refusals in 'counts' (from relay_compute()) that were not
 * counted before: each published version is refused once.  Only the
 * refusals that still stand are remembered, so the set never outgrows the
 * published records. */
static void
relay_count_refusals(struct chandb *db, const json_t *counts)
{
    json_t *now = json_object();
    const char *vm;
    const json_t *c;
    json_object_foreach ((json_t *) counts, vm, c) {
        const char *key;
        json_t *version;
        json_object_foreach (json_object_get(c, "refused_keys"), key,
                             version) {
            char *id = xasprintf("%s/%"JSON_INTEGER_FORMAT"/%s", vm,
                                 json_integer_value(version), key);
            if (!json_object_get(db->relay_refused, id)) {
                relay_count(db, vm, "refused", 1);
            }
            json_object_set_new(now, id, json_true());
            free(id);
        }
    }
    json_decref(db->relay_refused);
    db->relay_refused = now;
}

/* Counts a relayed record written for key 'relayed' ("from/<vm>/..."). */
static void
relay_count_write(struct chandb *db, const char *relayed)
{
    const char *vm = relayed + strlen(RELAY_FROM_PREFIX);
    const char *slash = strchr(vm, '/');
    char *name = slash ? strndup(vm, slash - vm) : NULL;
    if (name) {
        relay_count(db, name, "relayed", 1);
        free(name);
    }
}

/* True if Record row 'row' carries external_ids:'marker'=true: a record
 * chand-host derives (relayed records, object actions). */
static bool
record_is_derived(const struct ovsdb_replica_row *row, const char *marker)
{
    json_t *ids = NULL;
    bool derived = false;
    if (!ovsdb_datum_get_string_map(ovsdb_replica_row_get(row,
                                                          "external_ids"),
                                    &ids)) {
        const char *v = json_string_value(json_object_get(ids, marker));
        derived = v && !strcmp(v, "true");
    }
    json_decref(ids);
    return derived;
}

/* The version a derived record gets: 'want''s own if it has one, else the
 * row's plus one (1 for a new row). */
static json_t *
derived_version(const json_t *want, int64_t current)
{
    const json_t *v = json_array_get(want, 0);
    return json_is_integer(v) ? json_incref((json_t *) v)
                              : json_integer(current + 1);
}

/* Returns operations that make the Record rows marked 'marker' (see
 * record_is_derived()) equal to 'wanted' (vm -> (key -> [version or null,
 * value_text]); modified: entries already right are removed).  A row of
 * anyone else with the same VM and key wins: that entry is not written.  A
 * null version stands for the row's version plus one, used only when the
 * value changes.  Calls 'on_write' (may be NULL) with each key written. */
static json_t *
derived_record_ops(struct chandb *db, const char *marker, json_t *wanted,
                   void (*on_write)(struct chandb *, const char *key))
{
    json_t *ops = json_array();
    const struct ovsdb_replica_row *row;

    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Record")) {
        const char *vm = row_string(row, "vm");
        const char *key = row_string(row, "key");
        json_t *target = vm ? json_object_get(wanted, vm) : NULL;
        json_t *want = target && key ? json_object_get(target, key) : NULL;
        if (!record_is_derived(row, marker)) {
            if (want) {
                json_object_del(target, key);
            }
            continue;
        }
        if (!want) {
            json_array_append_new(ops, ovsdb_op_delete(
                                      "Record", ovsdb_where_uuid(
                                          ovsdb_replica_row_uuid(row))));
            continue;
        }
        int64_t version = 0;
        bool present = false;
        const char *value = row_string(row, "value");
        ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "version"),
                                &version, &present);
        const json_t *wv = json_array_get(want, 0);
        bool same_value = value && !strcmp(value, json_string_value(
                                               json_array_get(want, 1)));
        bool same_version = json_is_integer(wv)
                            ? present && version == json_integer_value(wv)
                            : present;
        if (!same_value || !same_version) {
            json_array_append_new(ops, ovsdb_op_update(
                                      "Record", ovsdb_where_uuid(
                                          ovsdb_replica_row_uuid(row)),
                                      json_pack("{so sO}",
                                                "version",
                                                derived_version(want,
                                                                version),
                                                "value",
                                                json_array_get(want, 1))));
            if (on_write) {
                on_write(db, key);
            }
        }
        json_object_del(target, key);
    }
    const char *vm;
    json_t *target;
    json_object_foreach (wanted, vm, target) {
        const char *key;
        json_t *want;
        json_object_foreach (target, key, want) {
            json_array_append_new(ops, ovsdb_op_insert(
                                      "Record", json_pack(
                                          "{ss ss sO so s[s[[ss]]]}",
                                          "vm", vm, "key", key,
                                          "value", json_array_get(want, 1),
                                          "version",
                                          derived_version(want, 0),
                                          "external_ids", "map",
                                          marker, "true"),
                                      NULL));
            if (on_write) {
                on_write(db, key);
            }
        }
    }
    return ops;
}

static void
relay_done(const json_t *result, const char *error, void *db_)
{
    struct chandb *db = db_;
    db->relay_txn = 0;
    if (error) {
        db->stats.txn_errors++;
        db->relay_dirty = true;
        VLOG_WARN_RL(&rl, "writing relayed records failed: %s", error);
    }
    (void) result;
}

/* Makes the relayed Record rows (external_ids:chand-relay=true) equal to
 * what relay_compute() wants, in one transaction. */
static void
relay_run(struct chandb *db)
{
    if (!db->relay_dirty || db->relay_txn) {
        return;
    }
    db->relay_dirty = false;

    json_t *published = relay_published(db);
    json_t *vms = json_array();
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Channel")) {
        const char *vm = row_string(row, "vm");
        if (vm) {
            json_array_append_new(vms, json_string(vm));
        }
    }
    struct relay_rule *rules;
    struct ovsdb_datum *datums;
    size_t n_rules = relay_rules(db, &rules, &datums);
    json_t *counts = json_object();
    json_t *wanted = relay_compute(rules, n_rules, published, vms, counts);
    relay_rules_destroy(rules, datums, n_rules);

    json_t *ops = derived_record_ops(db, "chand-relay", wanted,
                                     relay_count_write);
    relay_count_refusals(db, counts);
    json_decref(counts);
    json_decref(wanted);
    json_decref(published);
    json_decref(vms);
    if (json_array_size(ops)) {
        db->relay_txn = ovsdb_replica_transact(db->replica, ops, relay_done,
                                               db);
    } else {
        json_decref(ops);
    }
}

/* Object actions (objaction.h): verdicts and update notices. */

/* True if a table objaction_compute() reads changed since the last track
 * clear: the object tables, Guest_Record, Relay, Allowlist, the Record rows
 * of the actions, or the set of Channel rows (a VM that comes or goes gets
 * or loses the allowlist). */
static bool
objaction_inputs_changed(const struct chandb *db)
{
    static const char *const tables[] = { "Object", "Object_Ref",
                                          "Guest_Record", "Relay",
                                          "Allowlist", NULL };
    static const char *const prefixes[] = {
        OBJACTION_VERDICT_PREFIX, OBJACTION_NOTICE_PREFIX,
        OBJACTION_RESTORE_PREFIX, OBJACTION_ALLOW_PREFIX,
        OBJACTION_INSTALL_PREFIX, NULL
    };

    return inputs_changed(db, tables, prefixes);
}

/* digest -> {"size", "flags", "params"} for every Object row. */
static json_t *
objaction_objects(const struct chandb *db)
{
    json_t *objects = json_object();
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Object")) {
        const char *digest = row_string(row, "digest");
        int64_t size = 0;
        bool present = false;
        json_t *params;
        if (!digest) {
            continue;
        }
        ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "size"), &size,
                                &present);
        if (ovsdb_datum_get_string_map(ovsdb_replica_row_get(row, "params"),
                                       &params)) {
            params = json_object();
        }
        json_object_set_new(objects, digest, json_pack(
                                "{sI so so so}", "size", (json_int_t) size,
                                "flags", ovsdb_datum_string_array(
                                    ovsdb_replica_row_get(row, "flags")),
                                "params", params,
                                "held_by", ovsdb_datum_string_array(
                                    ovsdb_replica_row_get(row,
                                                          "held_by"))));
    }
    return objects;
}

/* vm -> (digest -> [paths], or [flags] if 'flags') for every Object_Ref
 * row. */
static json_t *
objaction_refs(const struct chandb *db, bool flags)
{
    json_t *refs = json_object();
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Object_Ref")) {
        const char *vm = row_string(row, "vm");
        const char *digest = row_string(row, "digest");
        if (!vm || !digest) {
            continue;
        }
        json_t *held = json_object_get(refs, vm);
        if (!held) {
            held = json_object();
            json_object_set_new(refs, vm, held);
        }
        json_object_set_new(held, digest, ovsdb_datum_string_array(
                                ovsdb_replica_row_get(row, flags ? "flags"
                                                           : "paths")));
    }
    return refs;
}

static void
objaction_done(const json_t *result, const char *error, void *db_)
{
    struct chandb *db = db_;
    db->objaction_txn = 0;
    if (error) {
        db->stats.txn_errors++;
        db->objaction_dirty = true;
        VLOG_WARN_RL(&rl, "writing object action records failed: %s",
                     error);
    }
    (void) result;
}

/* digest -> scanning VM, for every VM's published "verdict/<digest>"
 * {"verdict": "infected"} that a Relay rule matches (its source and
 * prefix).  VMs are taken in Guest_Record order; the first one names the
 * verdict. */
static json_t *
objaction_scanned(const struct chandb *db)
{
    json_t *scanned = json_object();
    struct relay_rule *rules;
    struct ovsdb_datum *datums;
    size_t n_rules = relay_rules(db, &rules, &datums);
    const struct ovsdb_replica_row *row;

    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Guest_Record")) {
        const char *vm = row_string(row, "vm");
        const char *key = row_string(row, "key");
        const char *digest = vm && key
                             ? objaction_parse_scan(key,
                                                    row_string(row, "value"))
                             : NULL;
        if (digest && !json_object_get(scanned, digest)
            && relay_allows(rules, n_rules, vm, key)) {
            json_object_set_new(scanned, digest, json_string(vm));
        }
    }
    relay_rules_destroy(rules, datums, n_rules);
    return scanned;
}

/* vm -> (digest -> at) for every VM's well-formed restore request. */
static json_t *
objaction_requests(const struct chandb *db)
{
    json_t *requests = json_object();
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Guest_Record")) {
        const char *vm = row_string(row, "vm");
        const char *key = row_string(row, "key");
        json_int_t at;
        const char *digest = vm && key
                             ? objaction_parse_restore(
                                 key, row_string(row, "value"), &at)
                             : NULL;
        if (digest) {
            json_t *asked = json_object_get(requests, vm);
            if (!asked) {
                asked = json_object();
                json_object_set_new(requests, vm, asked);
            }
            json_object_set_new(asked, digest, json_integer(at));
        }
    }
    return requests;
}

/* Adds the answers to the VMs' restore requests to 'computed' and
 * recomputes the fetches they need. */
static void
objaction_add_restores(struct chandb *db, const json_t *objects,
                       json_t *computed)
{
    json_t *requests = objaction_requests(db);
    json_t *digests = json_object();
    const char *vm;
    json_t *asked;
    json_object_foreach (requests, vm, asked) {
        json_object_update(digests, asked);
    }
    json_t *content = (db->content_func && json_object_size(digests)
                       ? db->content_func(digests, db->content_aux)
                       : json_object());
    json_t *ref_flags = objaction_refs(db, true);
    json_t *needs = json_object();
    db->stats.restores_refused = objaction_restore(objects, ref_flags,
                                                   requests, content,
                                                   computed, needs);
    if (!json_equal(needs, db->restore_needs)) {
        json_decref(db->restore_needs);
        db->restore_needs = json_incref(needs);
        db->needs_seqno++;
    }
    json_decref(needs);
    json_decref(ref_flags);
    json_decref(content);
    json_decref(digests);
    json_decref(requests);
}

/* Adds the allowlist records for every VM with a Channel row. */
static void
objaction_add_allowlist(struct chandb *db, json_t *computed)
{
    json_t *allow = json_object();
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Allowlist")) {
        const char *digest = row_string(row, "digest");
        const char *name = row_string(row, "name");
        if (digest && strlen(digest) == 64
            && strspn(digest, "0123456789abcdef") == 64) {
            json_object_set_new(allow, digest, json_string(name ? name
                                                                 : ""));
        }
    }
    if (json_object_size(allow)) {
        json_t *vms = json_array();
        OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                            "Channel")) {
            const char *vm = row_string(row, "vm");
            if (vm) {
                json_array_append_new(vms, json_string(vm));
            }
        }
        objaction_allow(allow, vms, computed);
        json_decref(vms);
    }
    json_decref(allow);
}

void
chandb_set_content_source(struct chandb *db, chandb_content_func *func,
                          void *aux)
{
    db->content_func = func;
    db->content_aux = aux;
    db->objaction_dirty = true;
}

void
chandb_content_changed(struct chandb *db)
{
    db->objaction_dirty = true;
}

const json_t *
chandb_restore_needs(const struct chandb *db)
{
    return db->restore_needs;
}

uint64_t
chandb_get_needs_seqno(const struct chandb *db)
{
    return db->needs_seqno;
}

/* Returns the digest that notice record 'value' names as superseding, or
 * NULL. */
static const char *
notice_target(const json_t *value)
{
    return json_string_value(json_object_get(value, "superseded_by"));
}

bool
chandb_vm_entitled(struct chandb *db, const char *vm, const char *digest,
                   int64_t *sizep)
{
    const json_t *desired = chandb_desired(db, vm);
    static const char *const prefixes[] = { OBJACTION_INSTALL_PREFIX,
                                            OBJACTION_RESTORE_PREFIX };
    *sizep = -1;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        char *key = xasprintf("%s%s", prefixes[i], digest);
        const json_t *rec = json_object_get(desired, key);
        free(key);
        const json_t *value = json_array_get(rec, 2);
        const json_t *size = json_object_get(value, "size");
        if (json_is_integer(size)) {
            *sizep = json_integer_value(size);
            return true;
        }
    }
    const char *key;
    const json_t *rec;
    json_object_foreach ((json_t *) desired, key, rec) {
        const json_t *value = json_array_get(rec, 2);
        const char *target = notice_target(value);
        if (!strncmp(key, OBJACTION_NOTICE_PREFIX,
                     strlen(OBJACTION_NOTICE_PREFIX))
            && target && !strcmp(target, digest)) {
            const json_t *size = json_object_get(value, "size");
            *sizep = json_is_integer(size) ? json_integer_value(size) : -1;
            return true;
        }
    }
    return false;
}

static const struct ovsdb_replica_row *
find_by_digest(const struct chandb *db, const char *table,
               const char *digest)
{
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        table)) {
        const char *d = row_string(row, "digest");
        if (d && !strcmp(d, digest)) {
            return row;
        }
    }
    return NULL;
}

bool
chandb_object_size(const struct chandb *db, const char *digest,
                   int64_t *sizep)
{
    const struct ovsdb_replica_row *row = find_by_digest(db, "Object",
                                                         digest);
    bool present = false;
    if (row) {
        ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "size"), sizep,
                                &present);
    }
    return present;
}

bool
chandb_content_in_use(const struct chandb *db, const char *digest)
{
    if (find_by_digest(db, "Allowlist", digest)) {
        return true;
    }
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, ovsdb_replica_get_table(db->replica,
                                                        "Object_Ref")) {
        const char *d = row_string(row, "digest");
        if (d && !strcmp(d, digest)) {
            return true;
        }
    }
    return false;
}

static void
ensure_object_done(const json_t *result, const char *error, void *db_)
{
    struct chandb *db = db_;
    if (error) {
        db->stats.txn_errors++;
        VLOG_WARN_RL(&rl, "inserting an Object row failed: %s", error);
    }
    (void) result;
}

void
chandb_ensure_object(struct chandb *db, const char *digest, int64_t size)
{
    if (find_by_digest(db, "Object", digest)) {
        return;
    }
    json_t *ops = json_pack("[o]", ovsdb_op_insert(
                                "Object", json_pack("{ss sI}", "digest",
                                                    digest, "size",
                                                    (json_int_t) size),
                                NULL));
    ovsdb_replica_transact(db->replica, ops, ensure_object_done, db);
}

/* Keeps the Record rows marked chand-object equal to what
 * objaction_compute() makes of the object mapping. */
static void
objaction_run(struct chandb *db)
{
    if (!db->objaction_dirty || db->objaction_txn) {
        return;
    }
    db->objaction_dirty = false;

    json_t *objects = objaction_objects(db);
    json_t *refs = objaction_refs(db, false);
    json_t *scanned = objaction_scanned(db);
    json_t *computed = objaction_compute(objects, refs, scanned);
    json_decref(scanned);
    objaction_add_restores(db, objects, computed);
    objaction_add_allowlist(db, computed);
    json_t *wanted = json_object();
    const char *vm;
    json_t *records;
    json_object_foreach (computed, vm, records) {
        json_t *target = json_object();
        const char *key;
        json_t *text;
        json_object_foreach (records, key, text) {
            json_object_set_new(target, key, json_pack("[nO]", text));
        }
        json_object_set_new(wanted, vm, target);
    }
    json_t *ops = derived_record_ops(db, "chand-object", wanted, NULL);
    json_decref(wanted);
    json_decref(computed);
    json_decref(refs);
    json_decref(objects);
    if (json_array_size(ops)) {
        db->objaction_txn = ovsdb_replica_transact(db->replica, ops,
                                                   objaction_done, db);
    } else {
        json_decref(ops);
    }
}

/* Guest limits. */

uint64_t
chandb_get_limits_seqno(const struct chandb *db)
{
    return db->limits_seqno;
}

/* Applies the limits in map column 'column' of 'row' to 'l'. */
static void
apply_limits(const struct ovsdb_replica_row *row, const char *column,
             struct upstream_limits *l)
{
    static const struct {
        const char *name;
        size_t offset;
    } fields[] = {
        { "max_records", offsetof(struct upstream_limits, max_records) },
        { "max_value_bytes",
          offsetof(struct upstream_limits, max_value_bytes) },
        { "max_total_bytes",
          offsetof(struct upstream_limits, max_total_bytes) },
        { "max_publish_rate",
          offsetof(struct upstream_limits, max_publish_rate) },
    };
    struct ovsdb_datum d;
    if (!row || ovsdb_datum_from_json(&d, ovsdb_replica_row_get(row, column),
                                      false)) {
        return;
    }
    for (size_t i = 0; d.is_map && i < d.n; i++) {
        if (d.keys[i].type != OVSDB_ATOM_STRING
            || d.values[i].type != OVSDB_ATOM_INTEGER
            || d.values[i].u.integer < 0) {
            continue;
        }
        for (size_t j = 0; j < sizeof fields / sizeof fields[0]; j++) {
            if (!strcmp(d.keys[i].u.string, fields[j].name)) {
                *(uint64_t *) ((char *) l + fields[j].offset)
                    = d.values[i].u.integer;
            }
        }
    }
    ovsdb_datum_destroy(&d);
}

void
chandb_guest_limits(const struct chandb *db, const char *vm,
                    struct upstream_limits *l)
{
    *l = (struct upstream_limits) UPSTREAM_LIMITS_DEFAULT;
    apply_limits(ovsdb_replica_first(ovsdb_replica_get_table(db->replica,
                                                             "Chan_Global")),
                 "guest_limits", l);
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_EQ (row, ovsdb_replica_get_table(db->replica,
                                                           "Guest_Limits"),
                               vm) {
        apply_limits(row, "limits", l);
    }
}

void
chandb_relay_counts(const struct chandb *db, const char *vm,
                    uint64_t *relayed, uint64_t *refused)
{
    const json_t *c = json_object_get(db->relay_counts, vm);
    *relayed = json_integer_value(json_object_get(c, "relayed"));
    *refused = json_integer_value(json_object_get(c, "refused"));
}

uint64_t
chandb_objects_refused(const struct chandb *db, const char *vm)
{
    const json_t *c = json_object_get(db->relay_counts, vm);
    return json_integer_value(json_object_get(c, "objects_refused"));
}

void
chandb_get_stats(const struct chandb *db, struct chandb_stats *stats)
{
    *stats = db->stats;
}
