/* chand-guest's durable record store: see datastore.h. */

#include <config.h>
#include "datastore.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "chan-wire.h"
#include "util.h"

/* How long a write waits for another process's lock, in milliseconds.
 * Only chand-guest writes, and readers never block a writer in WAL mode,
 * so this only matters for WAL recovery at open and for a second daemon
 * started by mistake. */
#define DS_BUSY_TIMEOUT_MS 1000

/* Bound on the WAL's size after a checkpoint (a big snapshot can grow it
 * far beyond this while it runs). */
#define DS_JOURNAL_SIZE_LIMIT (16 * 1024 * 1024)

#define DS_STRINGIZE_(X) #X
#define DS_STRINGIZE(X) DS_STRINGIZE_(X)
#define DS_SCHEMA_VERSION_STRING DS_STRINGIZE(DS_SCHEMA_VERSION)

static const char ds_schema_sql[] =
    "CREATE TABLE meta ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " schema_version INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL);"
    "CREATE TABLE channel ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " guest_epoch INTEGER NOT NULL"
    "  CHECK (guest_epoch BETWEEN 1 AND 4294967295),"
    " host_epoch INTEGER NOT NULL"
    "  CHECK (host_epoch BETWEEN 0 AND 4294967295),"
    " position INTEGER NOT NULL CHECK (position >= 0),"
    " snapshot_state TEXT NOT NULL"
    "  CHECK (snapshot_state IN ('none', 'active', 'complete')),"
    " snapshot_gen INTEGER NOT NULL CHECK (snapshot_gen >= 0),"
    " snapshot_end INTEGER NOT NULL DEFAULT 0 CHECK (snapshot_end >= 0),"
    " frames_applied INTEGER NOT NULL,"
    " ops_applied INTEGER NOT NULL);"
    "CREATE TABLE records ("
    " key TEXT PRIMARY KEY NOT NULL,"
    " value TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " apply_count INTEGER NOT NULL,"
    " seen_gen INTEGER NOT NULL);";

/* The tables schema version 2 added: created with a new file, and by the
 * upgrade of a version 1 file. */
static const char ds_schema_v2_sql[] =
    "CREATE TABLE published ("
    " key TEXT PRIMARY KEY NOT NULL,"
    " value TEXT,"
    " version INTEGER NOT NULL CHECK (version >= 1),"
    " deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),"
    " acked_version INTEGER NOT NULL CHECK (acked_version >= 0),"
    " updated_at INTEGER NOT NULL,"
    " CHECK ((deleted = 0) = (value IS NOT NULL)));"
    "CREATE INDEX published_by_version ON published (version);"
    "CREATE TABLE publish_counter ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " last_version INTEGER NOT NULL CHECK (last_version >= 0));"
    "INSERT INTO publish_counter (id, last_version) VALUES (1, 0);";

/* The table schema version 3 added: created with a new file, and by the
 * upgrade of a version 2 file. */
static const char ds_schema_v3_sql[] =
    "CREATE TABLE objects ("
    " path TEXT PRIMARY KEY,"
    " digest TEXT NOT NULL,"
    " size INTEGER NOT NULL CHECK (size >= 0),"
    " flags TEXT NOT NULL,"
    " params TEXT NOT NULL,"
    " added_at INTEGER NOT NULL);"
    "CREATE INDEX objects_by_digest ON objects (digest);";

/* The table schema version 4 added: created with a new file, and by the
 * upgrade of a version 3 file. */
static const char ds_schema_v4_sql[] =
    "CREATE TABLE handled ("
    " key TEXT PRIMARY KEY NOT NULL,"
    " version INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),"
    " handled_at INTEGER NOT NULL);";

/* The identity columns schema version 5 added: created with a new file,
 * and by the upgrade of a version 4 file (chan_id 0: not recorded yet). */
static const char ds_schema_v5_sql[] =
    "ALTER TABLE channel ADD COLUMN chan_id INTEGER NOT NULL DEFAULT 0"
    " CHECK (chan_id BETWEEN 0 AND 4294967295);"
    "ALTER TABLE channel ADD COLUMN clones INTEGER NOT NULL DEFAULT 0"
    " CHECK (clones >= 0);"
    "ALTER TABLE channel ADD COLUMN clone_of INTEGER NOT NULL DEFAULT 0"
    " CHECK (clone_of BETWEEN 0 AND 4294967295);";

/* The tables each version adds, indexed by the version before it. */
static const char *const ds_schema_upgrade_sql[] = {
    [1] = ds_schema_v2_sql,
    [2] = ds_schema_v3_sql,
    [3] = ds_schema_v4_sql,
    [4] = ds_schema_v5_sql,
};

/* What a clone forgets of its parent's state (see datastore_claim_chan_id()),
 * in the open transaction: the tombstones and results the new VM's host
 * never had, the acknowledgements of the parent's host, the handled
 * table, the requests to the parent (never to be run again in the
 * clone). */
static const char ds_clone_reset_sql[] =
    "DELETE FROM published WHERE deleted = 1"
    " OR (key >= '" DS_RESULT_KEY_PREFIX "' AND key < 'result0');"
    "UPDATE published SET acked_version = 0;"
    "DELETE FROM handled;"
    "DELETE FROM records"
    " WHERE key >= '" DS_CALL_KEY_PREFIX "' AND key < 'call0';";

/* Cached statements.  Every piece of data is bound, never spliced. */
enum ds_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_LOAD,
    ST_STORE,
    ST_PROBE,
    ST_INSERT,
    ST_UPDATE,
    ST_MARK,
    ST_DELETE,
    ST_GET,
    ST_LIST,
    ST_COUNT,
    ST_UNSEEN,
    ST_DELETE_UNSEEN,
    ST_PUB_COUNTER_LOAD,
    ST_PUB_COUNTER_STORE,
    ST_PUB_UPSERT,
    ST_PUB_WITHDRAW,
    ST_PUB_GET,
    ST_PUB_LIST,
    ST_PUB_SINCE,
    ST_PUB_ACK,
    ST_PUB_ACK_PURGE,
    ST_PUB_PURGE,
    ST_PUB_PENDING,
    ST_PUB_USAGE,
    ST_PUB_HELD,
    ST_DATA_VERSION,
    ST_OBJ_DIGEST,
    ST_OBJ_UPSERT,
    ST_OBJ_DELETE,
    ST_OBJ_OF_DIGEST,
    ST_OBJ_LIST,
    ST_OBJ_SET_FLAGS,
    ST_HANDLED_GET,
    ST_HANDLED_PUT,
    ST_HANDLED_DELETE,
    ST_HANDLED_LIST,
    ST_IDENTITY_STORE,
    ST_CLONE_CHANNEL,
    N_STMTS
};

static const char *const ds_stmt_sql[N_STMTS] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_SAVEPOINT] = "SAVEPOINT ds_frame",
    [ST_RELEASE] = "RELEASE ds_frame",
    [ST_ROLLBACK_TO] = "ROLLBACK TO ds_frame",
    [ST_LOAD] = "SELECT guest_epoch, host_epoch, position, snapshot_state,"
                " snapshot_gen, frames_applied, ops_applied, snapshot_end,"
                " chan_id, clones, clone_of FROM channel WHERE id = 1",
    [ST_STORE] = "UPDATE channel SET host_epoch = ?1, position = ?2,"
                 " snapshot_state = ?3, snapshot_gen = ?4,"
                 " frames_applied = ?5, ops_applied = ?6,"
                 " snapshot_end = ?7 WHERE id = 1",
    [ST_PROBE] = "SELECT version = ?2 AND value = ?3, seen_gen"
                 " FROM records WHERE key = ?1",
    [ST_INSERT] = "INSERT INTO records (key, value, version, updated_at,"
                  " apply_count, seen_gen) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
    [ST_UPDATE] = "UPDATE records SET value = ?2, version = ?3,"
                  " updated_at = ?4, apply_count = apply_count + 1,"
                  " seen_gen = ?5 WHERE key = ?1",
    [ST_MARK] = "UPDATE records SET seen_gen = ?2 WHERE key = ?1",
    [ST_DELETE] = "DELETE FROM records WHERE key = ?1",
    [ST_GET] = "SELECT value, version FROM records WHERE key = ?1",
    [ST_LIST] = "SELECT key, value, version FROM records"
                " WHERE key >= ?1 AND (?2 IS NULL OR key < ?2)"
                " ORDER BY key",
    [ST_COUNT] = "SELECT count(*) FROM records",
    [ST_UNSEEN] = "SELECT key FROM records WHERE seen_gen <> ?1",
    [ST_DELETE_UNSEEN] = "DELETE FROM records WHERE seen_gen <> ?1",
    [ST_PUB_COUNTER_LOAD] = "SELECT last_version FROM publish_counter"
                            " WHERE id = 1",
    [ST_PUB_COUNTER_STORE] = "UPDATE publish_counter SET last_version = ?1"
                             " WHERE id = 1",
    [ST_PUB_UPSERT] = "INSERT INTO published (key, value, version, deleted,"
                      " acked_version, updated_at)"
                      " VALUES (?1, ?2, ?3, 0, 0, ?4)"
                      " ON CONFLICT (key) DO UPDATE SET"
                      " value = excluded.value, version = excluded.version,"
                      " deleted = 0, updated_at = excluded.updated_at",
    [ST_PUB_WITHDRAW] = "UPDATE published SET value = NULL, version = ?2,"
                        " deleted = 1, updated_at = ?3"
                        " WHERE key = ?1 AND deleted = 0",
    [ST_PUB_GET] = "SELECT value, version, acked_version, deleted"
                   " FROM published WHERE key = ?1",
    [ST_PUB_LIST] = "SELECT key, value, version, acked_version, deleted"
                    " FROM published"
                    " WHERE key >= ?1 AND (?2 IS NULL OR key < ?2)"
                    " ORDER BY key",
    [ST_PUB_SINCE] = "SELECT key, value, version, acked_version, deleted"
                     " FROM published WHERE version > ?1"
                     " ORDER BY version LIMIT ?2",
    [ST_PUB_ACK] = "UPDATE published SET acked_version = ?2"
                   " WHERE key = ?1 AND acked_version < ?2"
                   " AND version >= ?2",
    [ST_PUB_ACK_PURGE] = "DELETE FROM published WHERE key = ?1"
                         " AND deleted = 1 AND acked_version >= version",
    [ST_PUB_PURGE] = "DELETE FROM published WHERE deleted = 1"
                     " AND version <= ?1",
    [ST_PUB_PENDING] = "SELECT count(*) FROM published"
                       " WHERE acked_version < version",
    [ST_PUB_USAGE] = "SELECT count(*), total(length(CAST(key AS BLOB))"
                     " + length(CAST(value AS BLOB)))"
                     " FROM published WHERE deleted = 0",
    [ST_PUB_HELD] = "SELECT length(CAST(value AS BLOB)) FROM published"
                    " WHERE key = ?1 AND deleted = 0",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_OBJ_DIGEST] = "SELECT digest FROM objects WHERE path = ?1",
    [ST_OBJ_UPSERT] = "INSERT INTO objects (path, digest, size, flags,"
                      " params, added_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                      " ON CONFLICT (path) DO UPDATE SET"
                      " added_at = CASE WHEN digest = excluded.digest"
                      " THEN added_at ELSE excluded.added_at END,"
                      " digest = excluded.digest, size = excluded.size,"
                      " flags = excluded.flags, params = excluded.params",
    [ST_OBJ_DELETE] = "DELETE FROM objects WHERE path = ?1",
    [ST_OBJ_OF_DIGEST] = "SELECT path, digest, size, flags, params,"
                         " added_at FROM objects WHERE digest = ?1"
                         " ORDER BY path",
    [ST_OBJ_LIST] = "SELECT path, digest, size, flags, params, added_at"
                    " FROM objects ORDER BY path",
    [ST_OBJ_SET_FLAGS] = "UPDATE objects SET flags = ?2 WHERE path = ?1",
    [ST_HANDLED_GET] = "SELECT version FROM handled WHERE key = ?1",
    [ST_HANDLED_PUT] = "INSERT INTO handled (key, version, status,"
                       " handled_at) VALUES (?1, ?2, ?3, ?4)"
                       " ON CONFLICT (key) DO UPDATE SET"
                       " version = excluded.version,"
                       " status = excluded.status,"
                       " handled_at = excluded.handled_at",
    [ST_HANDLED_DELETE] = "DELETE FROM handled WHERE key = ?1",
    [ST_HANDLED_LIST] = "SELECT key, version, status, handled_at"
                        " FROM handled ORDER BY key",
    [ST_IDENTITY_STORE] = "UPDATE channel SET chan_id = ?1, clones = ?2,"
                          " clone_of = ?3 WHERE id = 1",
    [ST_CLONE_CHANNEL] = "UPDATE channel SET guest_epoch = ?1,"
                         " host_epoch = 0, position = 0 WHERE id = 1",
};

/* A change waiting for the commit that makes it durable. */
struct ds_pending {
    char *key;
    enum ds_op op;
    int64_t version;
};

struct datastore {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[N_STMTS];

    struct ds_state state;      /* The channel row, as of now. */
    struct ds_state txn_start;  /* The channel row when the txn began. */
    bool state_unstored;        /* 'state' is ahead of the channel row in
                                 * the open transaction: frames applied
                                 * since it was written, which
                                 * datastore_commit() writes. */
    bool in_txn;
    bool listing;               /* Inside datastore_list()'s callback. */
    int64_t txn_now_ms;         /* updated_at for this transaction. */
    int64_t pub_counter;        /* publish_counter.last_version, now. */
    int64_t txn_start_pub_counter;  /* The same when the txn began. */
    struct ds_pub_usage pub_usage;  /* What the published rows hold, now
                                     * (see refresh_pub_usage()). */
    struct ds_pub_usage txn_start_pub_usage;  /* The same when the txn
                                               * began. */
    bool pub_usage_valid;       /* False: count 'pub_usage' from the file in
                                 * the next transaction. */
    int64_t data_version;       /* PRAGMA data_version when 'pub_usage' was
                                 * last known to match the file. */
    struct ds_pub_limits pub_limits;
    double pub_tokens;          /* Publications the rate allows now. */
    long long pub_tokens_ms;    /* When 'pub_tokens' was computed. */

    datastore_change_cb *change_cb;
    void *change_aux;
    struct ds_pending *pending;
    size_t n_pending, allocated_pending;
};

static _Thread_local char ds_errbuf[512];

static int set_error(int error, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Records a message for datastore_last_error() and returns 'error'. */
static int
set_error(int error, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vsnprintf(ds_errbuf, sizeof ds_errbuf, format, args);
    va_end(args);
    return error;
}

static int prepend_error(int error, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Puts "<formatted>: " in front of the current message and returns
 * 'error'. */
static int
prepend_error(int error, const char *format, ...)
{
    char old[sizeof ds_errbuf];
    va_list args;
    size_t len;

    memcpy(old, ds_errbuf, sizeof old);
    va_start(args, format);
    vsnprintf(ds_errbuf, sizeof ds_errbuf, format, args);
    va_end(args);
    /* Append ": <old>", truncating. */
    len = strlen(ds_errbuf);
    for (const char *p = ": "; *p && len < sizeof ds_errbuf - 1; p++) {
        ds_errbuf[len++] = *p;
    }
    size_t n = strnlen(old, sizeof old);
    if (n > sizeof ds_errbuf - 1 - len) {
        n = sizeof ds_errbuf - 1 - len;
    }
    memcpy(ds_errbuf + len, old, n);
    ds_errbuf[len + n] = '\0';
    return error;
}

const char *
datastore_last_error(void)
{
    return ds_errbuf;
}

const char *
ds_snapshot_to_string(enum ds_snapshot s)
{
    switch (s) {
    case DS_SNAPSHOT_NONE:
        return "none";
    case DS_SNAPSHOT_ACTIVE:
        return "active";
    case DS_SNAPSHOT_COMPLETE:
        return "complete";
    }
    return "?";
}

static bool
ds_snapshot_from_string(const char *s, enum ds_snapshot *snapshotp)
{
    static const enum ds_snapshot all[] = {
        DS_SNAPSHOT_NONE, DS_SNAPSHOT_ACTIVE, DS_SNAPSHOT_COMPLETE,
    };

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (s && !strcmp(s, ds_snapshot_to_string(all[i]))) {
            *snapshotp = all[i];
            return true;
        }
    }
    return false;
}

/* Maps an SQLite result code to a positive errno. */
static int
sqlite_to_errno(sqlite3 *db, int rc)
{
    int sys;

    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return EBUSY;
    case SQLITE_READONLY:
        return EROFS;
    case SQLITE_FULL:
        return ENOSPC;
    case SQLITE_TOOBIG:
        return EFBIG;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return EBADMSG;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return EACCES;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
        sys = db ? sqlite3_system_errno(db) : 0;
        return sys > 0 ? sys : EIO;
    default:
        return EIO;
    }
}

/* Records "PATH: WHAT: <sqlite message>" and returns the errno for 'rc'. */
static int
sql_error(const struct datastore *ds, int rc, const char *what)
{
    int error = sqlite_to_errno(ds->db, rc);
    const char *msg = ds->db ? sqlite3_errmsg(ds->db) : sqlite3_errstr(rc);

    if ((rc & 0xff) == SQLITE_NOTADB) {
        return set_error(error, "%s: %s: not an SQLite database (%s)",
                         ds->path, what, msg);
    } else if ((rc & 0xff) == SQLITE_CORRUPT) {
        return set_error(error, "%s: %s: database file is corrupt (%s)",
                         ds->path, what, msg);
    }
    return set_error(error, "%s: %s: %s", ds->path, what, msg);
}

static long long int
wall_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long int) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns true if the 'len' bytes at 's' are well-formed UTF-8 (no
 * overlong forms, surrogates or code points above U+10FFFF). */
static bool
utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (len - i - 1 < n) {
            return false;
        }
        for (size_t j = 1; j <= n; j++) {
            if ((s[i + j] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

/* Checks 'key' and stores its length in '*lenp'.  Returns 0 or EINVAL with
 * a message. */
static int
check_key(const char *key, size_t *lenp)
{
    size_t len;

    if (!key) {
        return set_error(EINVAL, "key is NULL");
    }
    len = strlen(key);
    if (!len) {
        return set_error(EINVAL, "key is empty");
    } else if (len > DS_KEY_MAX) {
        return set_error(EINVAL, "key is %zu bytes long (maximum %d)",
                         len, DS_KEY_MAX);
    } else if (!utf8_valid((const unsigned char *) key, len)) {
        return set_error(EINVAL, "key is not valid UTF-8");
    }
    *lenp = len;
    return 0;
}

/* Checks record 'i' of a frame. */
static int
check_record(const struct ds_record *rec, size_t i)
{
    size_t len;
    int error;

    if (rec->op != DS_PUT && rec->op != DS_DELETE) {
        return set_error(EINVAL, "record %zu: unknown operation %d",
                         i, (int) rec->op);
    }
    error = check_key(rec->key, &len);
    if (error) {
        return prepend_error(error, "record %zu", i);
    }
    if (rec->op == DS_PUT) {
        if (!rec->value) {
            return set_error(EINVAL, "record %zu: put without a value", i);
        }
        if (!utf8_valid((const unsigned char *) rec->value,
                        strlen(rec->value))) {
            return set_error(EINVAL, "record %zu: value is not valid UTF-8",
                             i);
        }
    }
    return 0;
}

/* Statement helpers. */

static sqlite3_stmt *
stmt(struct datastore *ds, enum ds_stmt which)
{
    return ds->stmts[which];
}

/* Resets 's' and drops its bindings (which may point into caller memory). */
static void
stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Runs statement 'which', which returns no rows.  Returns 0 or an errno
 * with a message mentioning 'what'. */
static int
run(struct datastore *ds, enum ds_stmt which, const char *what)
{
    sqlite3_stmt *s = stmt(ds, which);
    int rc = sqlite3_step(s);
    int error = 0;

    if (rc != SQLITE_DONE) {
        error = sql_error(ds, rc, what);
    }
    stmt_done(s);
    return error;
}

static int
bind_text(sqlite3_stmt *s, int idx, const char *text, size_t len)
{
    return sqlite3_bind_text64(s, idx, text, len, SQLITE_STATIC,
                               SQLITE_UTF8);
}

/* Loads the channel row into '*state'. */
static int
load_state(struct datastore *ds, struct ds_state *state)
{
    sqlite3_stmt *s = stmt(ds, ST_LOAD);
    int rc = sqlite3_step(s);
    int error = 0;

    if (rc == SQLITE_ROW) {
        int64_t guest_epoch = sqlite3_column_int64(s, 0);
        int64_t host_epoch = sqlite3_column_int64(s, 1);
        int64_t position = sqlite3_column_int64(s, 2);
        const char *snap = (const char *) sqlite3_column_text(s, 3);
        int64_t gen = sqlite3_column_int64(s, 4);
        int64_t frames = sqlite3_column_int64(s, 5);
        int64_t ops = sqlite3_column_int64(s, 6);
        int64_t end = sqlite3_column_int64(s, 7);
        int64_t chan_id = sqlite3_column_int64(s, 8);
        int64_t clones = sqlite3_column_int64(s, 9);
        int64_t clone_of = sqlite3_column_int64(s, 10);

        if (guest_epoch < 1 || guest_epoch > UINT32_MAX
            || host_epoch < 0 || host_epoch > UINT32_MAX
            || position < 0 || gen < 0 || frames < 0 || ops < 0
            || end < 0 || chan_id < 0 || chan_id > UINT32_MAX
            || clones < 0 || clone_of < 0 || clone_of > UINT32_MAX
            || !ds_snapshot_from_string(snap, &state->snapshot)) {
            error = set_error(EBADMSG, "%s: channel row holds invalid "
                              "values", ds->path);
        } else {
            state->guest_epoch = guest_epoch;
            state->host_epoch = host_epoch;
            state->position = position;
            state->snapshot_gen = gen;
            state->frames_applied = frames;
            state->ops_applied = ops;
            state->snapshot_end = end;
            state->chan_id = chan_id;
            state->clones = clones;
            state->clone_of = clone_of;
        }
    } else if (rc == SQLITE_DONE) {
        error = set_error(EBADMSG, "%s: channel row is missing", ds->path);
    } else {
        error = sql_error(ds, rc, "reading channel state");
    }
    stmt_done(s);
    return error;
}

/* Writes '*state' to the channel row (guest_epoch and the identity
 * columns excepted: see datastore_claim_chan_id()). */
static int
store_state(struct datastore *ds, const struct ds_state *state)
{
    sqlite3_stmt *s = stmt(ds, ST_STORE);
    const char *snap = ds_snapshot_to_string(state->snapshot);

    sqlite3_bind_int64(s, 1, state->host_epoch);
    sqlite3_bind_int64(s, 2, state->position);
    sqlite3_bind_text(s, 3, snap, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, state->snapshot_gen);
    sqlite3_bind_int64(s, 5, state->frames_applied);
    sqlite3_bind_int64(s, 6, state->ops_applied);
    sqlite3_bind_int64(s, 7, state->snapshot_end);
    return run(ds, ST_STORE, "writing channel state");
}

/* Loads publish_counter.last_version into '*counterp'. */
static int
load_pub_counter(struct datastore *ds, int64_t *counterp)
{
    sqlite3_stmt *s = stmt(ds, ST_PUB_COUNTER_LOAD);
    int rc = sqlite3_step(s);
    int error = 0;

    if (rc == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(s, 0);
        if (v < 0) {
            error = set_error(EBADMSG, "%s: publish counter holds an "
                              "invalid value", ds->path);
        } else {
            *counterp = v;
        }
    } else if (rc == SQLITE_DONE) {
        error = set_error(EBADMSG, "%s: publish counter row is missing",
                          ds->path);
    } else {
        error = sql_error(ds, rc, "reading publish counter");
    }
    stmt_done(s);
    return error;
}

/* Counts what the published rows hold into '*usage': a scan of the
 * table, for refresh_pub_usage() and after a clone's reset. */
static int
count_pub_usage(struct datastore *ds, struct ds_pub_usage *usage)
{
    sqlite3_stmt *s = stmt(ds, ST_PUB_USAGE);
    int rc = sqlite3_step(s);
    int error = 0;

    if (rc == SQLITE_ROW) {
        usage->n_records = sqlite3_column_int64(s, 0);
        usage->total_bytes = sqlite3_column_double(s, 1);
    } else {
        error = sql_error(ds, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc,
                          "counting published records");
    }
    stmt_done(s);
    return error;
}

/* Reads PRAGMA data_version into '*versionp': it changes when another
 * connection commits to the file, not when this one does. */
static int
load_data_version(struct datastore *ds, int64_t *versionp)
{
    sqlite3_stmt *s = stmt(ds, ST_DATA_VERSION);
    int rc = sqlite3_step(s);
    int error = 0;

    if (rc == SQLITE_ROW) {
        *versionp = sqlite3_column_int64(s, 0);
    } else {
        error = sql_error(ds, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc,
                          "reading the data version");
    }
    stmt_done(s);
    return error;
}

/* Brings ds->pub_usage up to date at the start of a transaction (the
 * caller holds the write lock).  The figures are kept in memory by every
 * write to the published table (pub_put(), pub_withdraw(), clone_reset();
 * acknowledgements and purges only remove tombstones, which hold
 * nothing) and put back with the rest of the state on a rollback, so they
 * are counted from the file only the first time and when another
 * connection changed it since they were last known to match. */
static int
refresh_pub_usage(struct datastore *ds)
{
    int64_t version = 0;
    int error;

    error = load_data_version(ds, &version);
    if (!error && (!ds->pub_usage_valid || version != ds->data_version)) {
        ds->pub_usage_valid = false;
        error = count_pub_usage(ds, &ds->pub_usage);
        if (!error) {
            ds->pub_usage_valid = true;
            ds->data_version = version;
        }
    }
    return error;
}

/* Pending notifications. */

static void
pending_truncate(struct datastore *ds, size_t n)
{
    while (ds->n_pending > n) {
        free(ds->pending[--ds->n_pending].key);
    }
}

static void
pending_clear(struct datastore *ds)
{
    pending_truncate(ds, 0);
    free(ds->pending);
    ds->pending = NULL;
    ds->allocated_pending = 0;
}

/* Queues a notification if a callback is registered. */
static int
pending_add(struct datastore *ds, const char *key, size_t key_len,
            enum ds_op op, int64_t version)
{
    struct ds_pending *p;

    if (!ds->change_cb) {
        return 0;
    }
    if (ds->n_pending >= ds->allocated_pending) {
        size_t n = ds->allocated_pending ? 2 * ds->allocated_pending : 16;
        struct ds_pending *q = realloc(ds->pending, n * sizeof *q);

        if (!q) {
            return set_error(ENOMEM, "out of memory queueing notification");
        }
        ds->pending = q;
        ds->allocated_pending = n;
    }
    p = &ds->pending[ds->n_pending];
    p->key = malloc(key_len + 1);
    if (!p->key) {
        return set_error(ENOMEM, "out of memory queueing notification");
    }
    memcpy(p->key, key, key_len);
    p->key[key_len] = '\0';
    p->op = op;
    p->version = op == DS_PUT ? version : 0;
    ds->n_pending++;
    return 0;
}

/* Delivers and frees the queued notifications.  The queue is detached
 * first, so the callback may start and commit another transaction. */
static void
pending_deliver(struct datastore *ds)
{
    struct ds_pending *list = ds->pending;
    size_t n = ds->n_pending;

    ds->pending = NULL;
    ds->n_pending = ds->allocated_pending = 0;
    for (size_t i = 0; i < n; i++) {
        if (ds->change_cb) {
            struct ds_change change = {
                .key = list[i].key,
                .op = list[i].op,
                .version = list[i].version,
            };
            ds->change_cb(ds->change_aux, &change);
        }
        free(list[i].key);
    }
    free(list);
}

/* Transaction state. */

/* Rolls back the transaction, if SQLite has not already done so, keeping
 * the current error message. */
static void
rollback_quietly(struct datastore *ds)
{
    if (!sqlite3_get_autocommit(ds->db)) {
        char saved[sizeof ds_errbuf];

        memcpy(saved, ds_errbuf, sizeof saved);
        sqlite3_exec(ds->db, "ROLLBACK", NULL, NULL, NULL);
        memcpy(ds_errbuf, saved, sizeof saved);
    }
}

/* Forgets the open transaction after SQLite or we rolled it back. */
static void
txn_forget(struct datastore *ds)
{
    ds->in_txn = false;
    ds->state = ds->txn_start;
    ds->state_unstored = false;
    ds->pub_counter = ds->txn_start_pub_counter;
    ds->pub_usage = ds->txn_start_pub_usage;
    pending_clear(ds);
}

/* Checks that a write may happen now. */
static int
check_writable(const struct datastore *ds, const char *what)
{
    if (ds->listing) {
        return set_error(EBUSY, "%s: %s inside a datastore_list() callback",
                         ds->path, what);
    } else if (!ds->in_txn) {
        return set_error(EINVAL, "%s: %s outside a transaction",
                         ds->path, what);
    }
    return 0;
}

/* Opens a savepoint inside the transaction, so that one operation can be
 * undone on error without losing the rest of the transaction. */
static int
sp_begin(struct datastore *ds)
{
    return run(ds, ST_SAVEPOINT, "opening savepoint");
}

/* Closes the savepoint: keeps its work if 'error' is 0, otherwise undoes
 * it.  Returns 'error' or an error from closing it.  If SQLite aborted the
 * whole transaction, forgets it. */
static int
sp_end(struct datastore *ds, int error)
{
    if (sqlite3_get_autocommit(ds->db)) {
        /* SQLite rolled back the whole transaction (I/O error, disk
         * full, ...).  'error' already describes why. */
        txn_forget(ds);
        return error ? error : set_error(EIO, "%s: transaction aborted",
                                         ds->path);
    }
    if (!error) {
        error = run(ds, ST_RELEASE, "releasing savepoint");
        if (!error) {
            return 0;
        }
    }
    /* Undo the partial work, keeping the message of the original error. */
    char saved[sizeof ds_errbuf];
    memcpy(saved, ds_errbuf, sizeof saved);
    if (run(ds, ST_ROLLBACK_TO, "rolling back savepoint")
        || run(ds, ST_RELEASE, "releasing savepoint")) {
        /* Cannot: abandon the whole transaction. */
        rollback_quietly(ds);
        txn_forget(ds);
    }
    memcpy(ds_errbuf, saved, sizeof saved);
    return error;
}

/* Opening. */

static void
random_guest_epoch(uint32_t *epochp)
{
    uint32_t epoch = 0;

    while (!epoch) {
        if (getrandom(&epoch, sizeof epoch, 0) != sizeof epoch) {
            sqlite3_randomness(sizeof epoch, &epoch);
        }
    }
    *epochp = epoch;
}

/* Runs 'sql' (constant text, no data) on 'ds'. */
static int
exec_sql(struct datastore *ds, const char *sql, const char *what)
{
    int rc = sqlite3_exec(ds->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : sql_error(ds, rc, what);
}

/* Runs 'sql' (constant text), which yields one row, and stores its first
 * column as an integer in '*valuep' and, if 'textp' is nonnull, a copy of
 * it as text (of at most 'text_size' bytes) in 'textp'. */
static int
query_one(struct datastore *ds, const char *sql, const char *what,
          int64_t *valuep, char *textp, size_t text_size)
{
    sqlite3_stmt *s;
    int rc, error = 0;

    rc = sqlite3_prepare_v2(ds->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) {
        return sql_error(ds, rc, what);
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (valuep) {
            *valuep = sqlite3_column_int64(s, 0);
        }
        if (textp) {
            const char *text = (const char *) sqlite3_column_text(s, 0);
            snprintf(textp, text_size, "%s", text ? text : "");
        }
    } else if (rc == SQLITE_DONE) {
        error = set_error(EBADMSG, "%s: %s: no result", ds->path, what);
    } else {
        error = sql_error(ds, rc, what);
    }
    sqlite3_finalize(s);
    return error;
}

/* Checks that the file is empty or a chand datastore of a version we
 * support.  Stores in '*emptyp' whether it is empty and, if it is not, its
 * schema version in '*versionp'. */
static int
check_identity(struct datastore *ds, bool *emptyp, int64_t *versionp)
{
    int64_t app_id, n_objects, version;
    sqlite3_stmt *s;
    int rc, error;

    error = query_one(ds, "PRAGMA application_id", "reading file header",
                      &app_id, NULL, 0);
    if (error) {
        return error;
    }
    error = query_one(ds, "SELECT count(*) FROM sqlite_master",
                      "reading schema", &n_objects, NULL, 0);
    if (error) {
        return error;
    }
    app_id &= 0xffffffff;
    if (!n_objects && (!app_id || app_id == DS_APPLICATION_ID)) {
        *emptyp = true;
        return 0;
    } else if (app_id != DS_APPLICATION_ID) {
        return set_error(EBADMSG, "%s: not a chand datastore (an SQLite "
                         "database with application_id 0x%08"PRIx64" and "
                         "%"PRId64" schema objects)",
                         ds->path, app_id, n_objects);
    }
    *emptyp = false;

    rc = sqlite3_prepare_v2(ds->db, "SELECT schema_version FROM meta",
                            -1, &s, NULL);
    if (rc != SQLITE_OK) {
        error = sql_error(ds, rc, "reading schema version");
        return error == EIO ? EBADMSG : error;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_INTEGER) {
        version = sqlite3_column_int64(s, 0);
        if (version > DS_SCHEMA_VERSION) {
            error = set_error(ENOTSUP, "%s: datastore schema version "
                              "%"PRId64" is newer than this chand supports "
                              "(%d); refusing to open it", ds->path,
                              version, DS_SCHEMA_VERSION);
        } else if (version < 1) {
            error = set_error(EBADMSG, "%s: invalid datastore schema version "
                              "%"PRId64, ds->path, version);
        } else {
            *versionp = version;    /* Older versions: see upgrade(). */
        }
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        error = set_error(EBADMSG, "%s: datastore meta table holds no valid "
                          "schema version", ds->path);
    } else {
        error = sql_error(ds, rc, "reading schema version");
    }
    sqlite3_finalize(s);
    return error;
}

/* Creates the schema in the (empty) file with guest epoch 'guest_epoch'
 * (0: random); the caller holds a write transaction. */
static int
create_schema(struct datastore *ds, uint32_t guest_epoch)
{
    static const char meta_sql[] =
        "INSERT INTO meta (id, schema_version, created_at, created_by)"
        " VALUES (1, ?1, ?2, ?3)";
    static const char channel_sql[] =
        "INSERT INTO channel (id, guest_epoch, host_epoch, position,"
        " snapshot_state, snapshot_gen, frames_applied, ops_applied)"
        " VALUES (1, ?1, 0, 0, 'none', 0, 0, 0)";
    sqlite3_stmt *s;
    int rc, error;

    error = exec_sql(ds, ds_schema_sql, "creating schema");
    if (!error) {
        error = exec_sql(ds, ds_schema_v2_sql, "creating schema");
    }
    if (!error) {
        error = exec_sql(ds, ds_schema_v3_sql, "creating schema");
    }
    if (!error) {
        error = exec_sql(ds, ds_schema_v4_sql, "creating schema");
    }
    if (!error) {
        error = exec_sql(ds, ds_schema_v5_sql, "creating schema");
    }
    if (!error) {
        /* A constant, not data. */
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d",
                 DS_APPLICATION_ID);
        error = exec_sql(ds, sql, "setting application_id");
    }
    if (error) {
        return error;
    }

    rc = sqlite3_prepare_v2(ds->db, meta_sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(s, 1, DS_SCHEMA_VERSION);
        sqlite3_bind_int64(s, 2, wall_msec());
        sqlite3_bind_text(s, 3, PACKAGE_STRING, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);
    }
    if (rc != SQLITE_DONE) {
        return sql_error(ds, rc, "writing meta row");
    }

    if (!guest_epoch) {
        random_guest_epoch(&guest_epoch);
    }
    rc = sqlite3_prepare_v2(ds->db, channel_sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, guest_epoch);
        rc = sqlite3_step(s);
        sqlite3_finalize(s);
    }
    if (rc != SQLITE_DONE) {
        return sql_error(ds, rc, "writing channel row");
    }
    return 0;
}

/* Upgrades a file of schema 'version' to the next version, in the open
 * transaction: version 1 lacks the published tables, version 2 the
 * objects table, version 3 the handled table, version 4 the identity
 * columns. */
static int
upgrade_step(struct datastore *ds, int64_t version)
{
    const char *sql = ds_schema_upgrade_sql[version];
    char what[64], update[64];
    int error;

    snprintf(what, sizeof what, "upgrading schema to version %"PRId64,
             version + 1);
    snprintf(update, sizeof update,
             "UPDATE meta SET schema_version = %"PRId64, version + 1);
    error = exec_sql(ds, sql, what);
    return error ? error : exec_sql(ds, update, what);
}

/* Upgrades an older file to DS_SCHEMA_VERSION in place, in one
 * transaction (see upgrade_step()). */
static int
upgrade(struct datastore *ds)
{
    int64_t version = 0;
    bool empty;
    int error;

    error = exec_sql(ds, "BEGIN IMMEDIATE", "upgrading schema");
    if (error) {
        return error;
    }
    /* Another process may have upgraded it meanwhile. */
    error = check_identity(ds, &empty, &version);
    while (!error && !empty && version < DS_SCHEMA_VERSION) {
        error = upgrade_step(ds, version++);
    }
    if (!error) {
        error = exec_sql(ds, "COMMIT", "committing schema upgrade");
    }
    if (error) {
        rollback_quietly(ds);
    }
    return error;
}

static int
prepare_all(struct datastore *ds)
{
    for (int i = 0; i < N_STMTS; i++) {
        int rc = sqlite3_prepare_v3(ds->db, ds_stmt_sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT,
                                    &ds->stmts[i], NULL);
        if (rc != SQLITE_OK) {
            int error = sql_error(ds, rc, "schema does not match version "
                                  DS_SCHEMA_VERSION_STRING);
            return error == EIO ? EBADMSG : error;
        }
    }
    return 0;
}

static void
ds_free(struct datastore *ds)
{
    if (ds) {
        for (int i = 0; i < N_STMTS; i++) {
            sqlite3_finalize(ds->stmts[i]);
        }
        sqlite3_close(ds->db);
        pending_clear(ds);
        free(ds->path);
        free(ds);
    }
}

static int
do_open(struct datastore *ds, const struct datastore_options *options)
{
    char mode[16];
    int64_t version = 0;
    bool empty;
    int rc, error;

    rc = sqlite3_open_v2(ds->path, &ds->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        return sql_error(ds, rc, "cannot open");
    }
    sqlite3_busy_timeout(ds->db, DS_BUSY_TIMEOUT_MS);

    /* Look before touching anything: a foreign or newer file must be left
     * exactly as it is. */
    error = check_identity(ds, &empty, &version);
    if (error) {
        return error;
    }

    error = query_one(ds, "PRAGMA journal_mode = WAL",
                      "enabling WAL journal mode", NULL, mode, sizeof mode);
    if (error) {
        return error;
    }
    if (strcmp(mode, "wal")) {
        return set_error(ENOTSUP, "%s: cannot use WAL journal mode (got "
                         "\"%s\")", ds->path, mode);
    }
    error = exec_sql(ds, (options->sync == DS_SYNC_NORMAL
                          ? "PRAGMA synchronous = NORMAL"
                          : "PRAGMA synchronous = FULL"),
                     "setting synchronous mode");
    if (!error) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA journal_size_limit = %d",
                 DS_JOURNAL_SIZE_LIMIT);
        error = exec_sql(ds, sql, "setting journal size limit");
    }
    if (error) {
        return error;
    }

    if (empty) {
        error = exec_sql(ds, "BEGIN IMMEDIATE", "creating schema");
        if (error) {
            return error;
        }
        /* Another process may have created it meanwhile. */
        error = check_identity(ds, &empty, &version);
        if (!error && empty) {
            error = create_schema(ds, options->guest_epoch);
        }
        if (!error) {
            error = exec_sql(ds, "COMMIT", "committing schema");
        }
        if (error) {
            rollback_quietly(ds);
            return error;
        }
    } else if (version < DS_SCHEMA_VERSION) {
        error = upgrade(ds);
        if (error) {
            return error;
        }
    }

    error = prepare_all(ds);
    if (!error) {
        error = load_state(ds, &ds->state);
    }
    if (!error) {
        error = load_pub_counter(ds, &ds->pub_counter);
    }
    return error;
}

int
datastore_open_opts(const char *path, const struct datastore_options *options,
                    struct datastore **dsp)
{
    static const struct datastore_options default_options;
    struct datastore *ds;
    int error;

    *dsp = NULL;
    if (!path || !*path) {
        return set_error(EINVAL, "datastore path is empty");
    }
    if (!options) {
        options = &default_options;
    }
    if (options->sync != DS_SYNC_FULL && options->sync != DS_SYNC_NORMAL) {
        return set_error(EINVAL, "%s: invalid sync mode %d", path,
                         (int) options->sync);
    }

    ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        return set_error(ENOMEM, "%s: out of memory", path);
    }
    error = do_open(ds, options);
    if (error) {
        ds_free(ds);
        return error;
    }
    *dsp = ds;
    return 0;
}

int
datastore_open(const char *path, struct datastore **dsp)
{
    return datastore_open_opts(path, NULL, dsp);
}

void
datastore_close(struct datastore *ds)
{
    if (ds) {
        datastore_rollback(ds);
        ds_free(ds);
    }
}

/* Identity and clones. */

/* Writes the identity columns of the channel row, in the open
 * transaction, and notes them in ds->state. */
static int
identity_store(struct datastore *ds, uint32_t chan_id, uint64_t clones,
               uint32_t clone_of)
{
    sqlite3_stmt *s = stmt(ds, ST_IDENTITY_STORE);
    int error;

    sqlite3_bind_int64(s, 1, chan_id);
    sqlite3_bind_int64(s, 2, clones);
    sqlite3_bind_int64(s, 3, clone_of);
    error = run(ds, ST_IDENTITY_STORE, "writing identity");
    if (!error) {
        ds->state.chan_id = chan_id;
        ds->state.clones = clones;
        ds->state.clone_of = clone_of;
    }
    return error;
}

/* Makes a cloned file forget its parent's channel, in the open transaction
 * (see "Clones" in datastore.h): a new guest epoch, no host epoch or
 * position, no acknowledgement, tombstone, result or handled row. */
static int
clone_reset(struct datastore *ds)
{
    sqlite3_stmt *s = stmt(ds, ST_CLONE_CHANNEL);
    uint32_t epoch;
    int error;

    do {
        random_guest_epoch(&epoch);
    } while (epoch == ds->state.guest_epoch);
    sqlite3_bind_int64(s, 1, epoch);
    error = run(ds, ST_CLONE_CHANNEL, "resetting channel of a clone");
    if (!error) {
        error = exec_sql(ds, ds_clone_reset_sql, "resetting clone state");
    }
    if (!error) {
        /* It removed result records: count again (rare). */
        error = count_pub_usage(ds, &ds->pub_usage);
    }
    if (!error) {
        ds->state.guest_epoch = epoch;
        ds->state.host_epoch = 0;
        ds->state.position = 0;
    }
    return error;
}

int
datastore_claim_chan_id(struct datastore *ds, uint32_t chan_id,
                        uint32_t *prevp)
{
    uint32_t prev;
    int error;

    *prevp = 0;
    if (!chan_id) {
        return set_error(EINVAL, "%s: chan-id 0 is invalid", ds->path);
    }
    error = datastore_begin(ds);
    if (error) {
        return error;
    }
    prev = ds->state.chan_id;
    if (prev == chan_id) {
        datastore_rollback(ds);
        *prevp = prev;
        return 0;
    }
    if (prev) {
        error = clone_reset(ds);
    }
    if (!error) {
        error = identity_store(ds, chan_id, ds->state.clones + !!prev,
                               prev ? prev : ds->state.clone_of);
    }
    if (!error) {
        error = datastore_commit(ds);
    } else {
        datastore_rollback(ds);
    }
    if (!error) {
        *prevp = prev;
    }
    return error ? prepend_error(error, "%s: claim chan-id %"PRIu32,
                                 ds->path, chan_id) : 0;
}

void
datastore_set_change_cb(struct datastore *ds, datastore_change_cb *cb,
                        void *aux)
{
    ds->change_cb = cb;
    ds->change_aux = aux;
    if (!cb) {
        pending_clear(ds);
    }
}

/* Transactions. */

int
datastore_begin(struct datastore *ds)
{
    int error;

    if (ds->listing) {
        return set_error(EBUSY, "%s: begin inside a datastore_list() "
                         "callback", ds->path);
    } else if (ds->in_txn) {
        return set_error(EINVAL, "%s: a transaction is already open",
                         ds->path);
    }
    error = run(ds, ST_BEGIN, "beginning transaction");
    if (error) {
        return error;
    }
    /* The file is the truth: reload what it says now. */
    error = load_state(ds, &ds->state);
    if (!error) {
        error = load_pub_counter(ds, &ds->pub_counter);
    }
    if (!error) {
        error = refresh_pub_usage(ds);
    }
    if (error) {
        rollback_quietly(ds);
        return error;
    }
    ds->txn_start = ds->state;
    ds->state_unstored = false;
    ds->txn_start_pub_counter = ds->pub_counter;
    ds->txn_start_pub_usage = ds->pub_usage;
    ds->txn_now_ms = wall_msec();
    ds->in_txn = true;
    pending_clear(ds);
    return 0;
}

int
datastore_commit(struct datastore *ds)
{
    int error;

    error = check_writable(ds, "commit");
    if (error) {
        return error;
    }
    if (ds->state_unstored) {
        /* The position and counters of the frames applied since the
         * channel row was last written: once per transaction, not once a
         * frame (see datastore_apply()). */
        error = store_state(ds, &ds->state);
        if (error) {
            rollback_quietly(ds);
            txn_forget(ds);
            return error;
        }
        ds->state_unstored = false;
    }
    error = run(ds, ST_COMMIT, "committing");
    if (error) {
        rollback_quietly(ds);
        txn_forget(ds);
        return error;
    }
    ds->in_txn = false;
    pending_deliver(ds);
    return 0;
}

void
datastore_rollback(struct datastore *ds)
{
    if (ds->in_txn) {
        rollback_quietly(ds);
        txn_forget(ds);
    }
}

bool
datastore_in_transaction(const struct datastore *ds)
{
    return ds->in_txn;
}

/* Applying frames. */

/* Applies one put; 'state' is the frame's new channel state. */
static int
apply_put(struct datastore *ds, const struct ds_record *rec,
          const struct ds_state *state)
{
    size_t key_len = strlen(rec->key);
    size_t value_len = strlen(rec->value);
    bool active = state->snapshot == DS_SNAPSHOT_ACTIVE;
    int64_t gen = state->snapshot_gen;
    sqlite3_stmt *s;
    bool exists, same = false;
    int64_t seen_gen = 0;
    int rc;

    s = stmt(ds, ST_PROBE);
    bind_text(s, 1, rec->key, key_len);
    sqlite3_bind_int64(s, 2, rec->version);
    bind_text(s, 3, rec->value, value_len);
    rc = sqlite3_step(s);
    exists = rc == SQLITE_ROW;
    if (exists) {
        same = sqlite3_column_int(s, 0) != 0;
        seen_gen = sqlite3_column_int64(s, 1);
    }
    stmt_done(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return sql_error(ds, rc, "reading record");
    }

    if (same) {
        /* Nothing changes; a snapshot still has to see it. */
        if (active && seen_gen != gen) {
            s = stmt(ds, ST_MARK);
            bind_text(s, 1, rec->key, key_len);
            sqlite3_bind_int64(s, 2, gen);
            return run(ds, ST_MARK, "marking record");
        }
        return 0;
    }

    enum ds_stmt which = exists ? ST_UPDATE : ST_INSERT;
    s = stmt(ds, which);
    bind_text(s, 1, rec->key, key_len);
    bind_text(s, 2, rec->value, value_len);
    sqlite3_bind_int64(s, 3, rec->version);
    sqlite3_bind_int64(s, 4, ds->txn_now_ms);
    sqlite3_bind_int64(s, 5, gen);
    int error = run(ds, which, "writing record");
    return (error ? error
            : pending_add(ds, rec->key, key_len, DS_PUT, rec->version));
}

static int
apply_delete(struct datastore *ds, const struct ds_record *rec)
{
    size_t key_len = strlen(rec->key);
    sqlite3_stmt *s = stmt(ds, ST_DELETE);
    int error;

    bind_text(s, 1, rec->key, key_len);
    error = run(ds, ST_DELETE, "deleting record");
    if (!error && sqlite3_changes(ds->db) > 0) {
        error = pending_add(ds, rec->key, key_len, DS_DELETE, 0);
    }
    return error;
}

int
datastore_apply(struct datastore *ds, uint32_t host_epoch, uint64_t seq,
                const struct ds_record *recs, size_t n, bool *appliedp)
{
    struct ds_state state;
    size_t mark;
    int error;

    if (appliedp) {
        *appliedp = false;
    }
    error = check_writable(ds, "apply");
    if (error) {
        return error;
    }
    if (n && !recs) {
        return set_error(EINVAL, "%s: apply: %zu records but no array",
                         ds->path, n);
    } else if (seq > DS_SEQ_MAX) {
        return set_error(EINVAL, "%s: apply: seq %"PRIu64" out of range",
                         ds->path, seq);
    } else if (!host_epoch || host_epoch != ds->state.host_epoch) {
        return set_error(ESTALE, "%s: frame of host epoch %"PRIu32" but the "
                         "datastore is at host epoch %"PRIu32" (a snapshot "
                         "or rebase must come first)", ds->path, host_epoch,
                         ds->state.host_epoch);
    } else if (seq <= ds->state.position) {
        return 0;               /* Already applied. */
    }
    for (size_t i = 0; i < n; i++) {
        error = check_record(&recs[i], i);
        if (error) {
            return prepend_error(error, "%s: frame %"PRIu64, ds->path,
                                 seq);
        }
    }

    state = ds->state;
    state.position = seq;
    state.frames_applied++;
    state.ops_applied += n;

    mark = ds->n_pending;
    error = sp_begin(ds);
    if (error) {
        return error;
    }
    for (size_t i = 0; !error && i < n; i++) {
        error = (recs[i].op == DS_PUT
                 ? apply_put(ds, &recs[i], &state)
                 : apply_delete(ds, &recs[i]));
    }
    error = sp_end(ds, error);
    if (error) {
        if (ds->in_txn) {
            pending_truncate(ds, mark);
        }
        return error;
    }
    /* The channel row is written by datastore_commit() (or by the next
     * write of the whole state), in the same transaction: a burst of
     * frames writes it once. */
    ds->state = state;
    ds->state_unstored = true;
    if (appliedp) {
        *appliedp = true;
    }
    return 0;
}

/* Snapshots. */

/* Checks a new (host_epoch, position) for snapshot_begin/rebase. */
static int
check_new_epoch(const struct datastore *ds, const char *what,
                uint32_t host_epoch, uint64_t position)
{
    if (!host_epoch) {
        return set_error(EINVAL, "%s: %s: host epoch 0 is invalid",
                         ds->path, what);
    } else if (position > DS_SEQ_MAX) {
        return set_error(EINVAL, "%s: %s: position %"PRIu64" out of range",
                         ds->path, what, position);
    } else if (host_epoch == ds->state.host_epoch
               && position < ds->state.position) {
        return set_error(EINVAL, "%s: %s: position %"PRIu64" is behind "
                         "stored position %"PRIu64" in the same host epoch "
                         "%"PRIu32, ds->path, what, position,
                         ds->state.position, host_epoch);
    }
    return 0;
}

/* Writes 'state' as the new channel state, atomically. */
static int
set_state(struct datastore *ds, const struct ds_state *state)
{
    int error = sp_begin(ds);

    if (!error) {
        error = sp_end(ds, store_state(ds, state));
        if (!error) {
            ds->state = *state;
            ds->state_unstored = false;
        }
    }
    return error;
}

int
datastore_snapshot_begin(struct datastore *ds, uint32_t host_epoch,
                         uint64_t base_seq)
{
    struct ds_state state;
    int error;

    error = check_writable(ds, "snapshot begin");
    if (!error) {
        error = check_new_epoch(ds, "snapshot begin", host_epoch, base_seq);
    }
    if (error) {
        return error;
    }
    state = ds->state;
    state.host_epoch = host_epoch;
    state.position = base_seq;
    state.snapshot = DS_SNAPSHOT_ACTIVE;
    state.snapshot_gen++;
    state.snapshot_end = 0;
    return set_state(ds, &state);
}

int
datastore_set_snapshot_end(struct datastore *ds, uint64_t snapshot_end)
{
    struct ds_state state;
    int error;

    error = check_writable(ds, "set snapshot end");
    if (error) {
        return error;
    } else if (ds->state.snapshot != DS_SNAPSHOT_ACTIVE) {
        return set_error(EINVAL, "%s: set snapshot end: no snapshot is "
                         "active", ds->path);
    } else if (snapshot_end > DS_SEQ_MAX) {
        return set_error(EINVAL, "%s: set snapshot end: seq %"PRIu64" out "
                         "of range", ds->path, snapshot_end);
    }
    state = ds->state;
    state.snapshot_end = snapshot_end;
    return set_state(ds, &state);
}

int
datastore_rebase(struct datastore *ds, uint32_t host_epoch,
                 uint64_t position)
{
    struct ds_state state;
    int error;

    error = check_writable(ds, "rebase");
    if (!error) {
        error = check_new_epoch(ds, "rebase", host_epoch, position);
    }
    if (error) {
        return error;
    }
    state = ds->state;
    state.host_epoch = host_epoch;
    state.position = position;
    return set_state(ds, &state);
}

/* Queues a delete notification for every record the snapshot did not
 * see. */
static int
queue_unseen(struct datastore *ds, int64_t gen)
{
    sqlite3_stmt *s = stmt(ds, ST_UNSEEN);
    int rc, error = 0;

    sqlite3_bind_int64(s, 1, gen);
    while (!error && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *) sqlite3_column_text(s, 0);
        size_t len = sqlite3_column_bytes(s, 0);
        error = pending_add(ds, key ? key : "", len, DS_DELETE, 0);
    }
    if (!error && rc != SQLITE_DONE) {
        error = sql_error(ds, rc, "listing unseen records");
    }
    stmt_done(s);
    return error;
}

int
datastore_snapshot_finish(struct datastore *ds, uint64_t *n_deletedp)
{
    struct ds_state state;
    uint64_t n_deleted = 0;
    size_t mark;
    int error;

    if (n_deletedp) {
        *n_deletedp = 0;
    }
    error = check_writable(ds, "snapshot finish");
    if (error) {
        return error;
    } else if (ds->state.snapshot != DS_SNAPSHOT_ACTIVE) {
        return set_error(EINVAL, "%s: snapshot finish: no snapshot is "
                         "active", ds->path);
    }
    state = ds->state;
    state.snapshot = DS_SNAPSHOT_COMPLETE;

    mark = ds->n_pending;
    error = sp_begin(ds);
    if (error) {
        return error;
    }
    if (ds->change_cb) {
        error = queue_unseen(ds, state.snapshot_gen);
    }
    if (!error) {
        sqlite3_stmt *s = stmt(ds, ST_DELETE_UNSEEN);
        sqlite3_bind_int64(s, 1, state.snapshot_gen);
        error = run(ds, ST_DELETE_UNSEEN, "deleting unseen records");
        if (!error) {
            n_deleted = sqlite3_changes(ds->db);
        }
    }
    if (!error) {
        error = store_state(ds, &state);
    }
    error = sp_end(ds, error);
    if (error) {
        if (ds->in_txn) {
            pending_truncate(ds, mark);
        }
        return error;
    }
    ds->state = state;
    if (n_deletedp) {
        *n_deletedp = n_deleted;
    }
    return 0;
}

/* Reads. */

void
datastore_get_state(const struct datastore *ds, struct ds_state *state)
{
    *state = ds->state;
}

int
datastore_get(struct datastore *ds, const char *key, char **valuep,
              int64_t *versionp)
{
    sqlite3_stmt *s = stmt(ds, ST_GET);
    size_t key_len;
    int rc, error;

    error = check_key(key, &key_len);
    if (error) {
        return prepend_error(error, "%s: get", ds->path);
    }
    bind_text(s, 1, key, key_len);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (valuep) {
            const char *text = (const char *) sqlite3_column_text(s, 0);
            size_t len = sqlite3_column_bytes(s, 0);
            char *copy;

            if (!text) {
                error = sql_error(ds, SQLITE_NOMEM, "reading record");
            } else if (!(copy = malloc(len + 1))) {
                error = set_error(ENOMEM, "%s: get: out of memory",
                                  ds->path);
            } else {
                memcpy(copy, text, len);
                copy[len] = '\0';
                *valuep = copy;
            }
        }
        if (!error && versionp) {
            *versionp = sqlite3_column_int64(s, 1);
        }
    } else if (rc == SQLITE_DONE) {
        error = set_error(ENOENT, "%s: no record with key \"%s\"",
                          ds->path, key);
    } else {
        error = sql_error(ds, rc, "reading record");
    }
    stmt_done(s);
    return error;
}

/* Computes the smallest string greater than every string that starts with
 * the 'len' bytes of 'prefix', into 'buf' (of 'len' bytes).  Returns its
 * length, or 0 if there is none (every byte is 0xff). */
static size_t
prefix_successor(const char *prefix, size_t len, char *buf)
{
    memcpy(buf, prefix, len);
    while (len > 0) {
        unsigned char c = buf[len - 1];
        if (c != 0xff) {
            buf[len - 1] = c + 1;
            return len;
        }
        len--;
    }
    return 0;
}

int
datastore_list(struct datastore *ds, const char *prefix,
               datastore_list_cb *cb, void *aux)
{
    sqlite3_stmt *s = stmt(ds, ST_LIST);
    size_t prefix_len = prefix ? strlen(prefix) : 0;
    char *upper = NULL;
    int rc, error = 0;

    if (ds->listing) {
        return set_error(EBUSY, "%s: list inside a datastore_list() "
                         "callback", ds->path);
    }
    if (prefix_len) {
        size_t upper_len;

        upper = malloc(prefix_len);
        if (!upper) {
            return set_error(ENOMEM, "%s: list: out of memory", ds->path);
        }
        upper_len = prefix_successor(prefix, prefix_len, upper);
        bind_text(s, 1, prefix, prefix_len);
        if (upper_len) {
            bind_text(s, 2, upper, upper_len);
        }
    } else {
        sqlite3_bind_text(s, 1, "", 0, SQLITE_STATIC);
    }

    ds->listing = true;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *) sqlite3_column_text(s, 0);
        const char *value = (const char *) sqlite3_column_text(s, 1);

        if (!key || !value) {
            rc = sqlite3_errcode(ds->db);
            break;
        }
        error = cb(aux, key, value, sqlite3_column_int64(s, 2));
        if (error) {
            break;
        }
    }
    ds->listing = false;
    if (!error && rc != SQLITE_DONE) {
        error = sql_error(ds, rc == SQLITE_ROW ? SQLITE_NOMEM : rc,
                          "listing records");
    }
    stmt_done(s);
    free(upper);
    return error;
}

/* Runs 'which', a "SELECT count(*)" statement without parameters, and
 * stores its result in '*countp'.  Returns 0 or an errno, after logging a
 * failure to do 'what'. */
static int
count_rows(struct datastore *ds, enum ds_stmt which, const char *what,
           uint64_t *countp)
{
    sqlite3_stmt *s = stmt(ds, which);
    int rc = sqlite3_step(s);
    int error = 0;

    if (rc == SQLITE_ROW) {
        *countp = sqlite3_column_int64(s, 0);
    } else {
        error = sql_error(ds, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    }
    stmt_done(s);
    return error;
}

int
datastore_count(struct datastore *ds, uint64_t *countp)
{
    return count_rows(ds, ST_COUNT, "counting records", countp);
}

int
datastore_check(struct datastore *ds)
{
    char result[256];
    int error;

    error = query_one(ds, "PRAGMA quick_check", "checking integrity",
                      NULL, result, sizeof result);
    if (!error && strcmp(result, "ok")) {
        error = set_error(EBADMSG, "%s: integrity check failed: %s",
                          ds->path, result);
    }
    return error;
}

/* Published records. */

/* Returns EPERM with a message if 'key' is under one of the reserved
 * prefixes, else 0. */
static int
check_reserved_key(const char *key)
{
    static const char *const prefixes[] = DS_PUB_RESERVED_PREFIXES;
    static const char *const owners[] = {
        "records chand-host relays", "object records (use object-add)",
        "handler results",
    };
    _Static_assert(sizeof prefixes == sizeof owners, "one owner a prefix");

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (!strncmp(key, prefixes[i], strlen(prefixes[i]))) {
            return set_error(EPERM, "keys starting with \"%s\" are "
                             "reserved for %s and cannot be published",
                             prefixes[i], owners[i]);
        }
    }
    return 0;
}

int
datastore_check_published_key(const char *key)
{
    size_t len;

    if (!key) {
        return set_error(EINVAL, "key is NULL");
    }
    len = strlen(key);
    if (!len) {
        return set_error(EINVAL, "key is empty");
    } else if (len > DS_PUB_KEY_MAX) {
        return set_error(EINVAL, "key is %zu bytes long (maximum %d)",
                         len, DS_PUB_KEY_MAX);
    } else if (!utf8_valid((const unsigned char *) key, len)) {
        return set_error(EINVAL, "key is not valid UTF-8");
    }
    return check_reserved_key(key);
}

int
datastore_check_published_json(const json_t *v, char **compactp)
{
    const struct chan_wire_limits limits = {
        .max_depth = DS_PUB_MAX_DEPTH,
    };
    enum chan_wire_error werr;
    struct chan_batch batch;
    char *text = NULL;
    size_t len;

    if (compactp) {
        *compactp = NULL;
    }
    if (!v) {
        return set_error(EINVAL, "value is NULL");
    }

    /* The wire's own rules, exactly: the record must encode. */
    chan_batch_init(&batch);
    chan_batch_add_put(&batch, "k", (json_t *) v, 1);
    werr = chan_batch_encode(&batch, &limits, &text, &len);
    chan_batch_destroy(&batch);
    free(text);
    if (werr) {
        if (werr == CHAN_WIRE_ERR_JSON_TOO_DEEP) {
            return set_error(EINVAL, "value is nested more than %d levels "
                             "deep", DS_PUB_MAX_DEPTH);
        }
        return set_error(EINVAL, "value cannot be sent: %s",
                         chan_wire_strerror(werr));
    }

    text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        return set_error(ENOMEM, "out of memory rendering a value");
    }
    len = strlen(text);
    if (len > DS_PUB_VALUE_MAX) {
        free(text);
        return set_error(EINVAL, "value is %zu bytes long in compact form "
                         "(maximum %d)", len, DS_PUB_VALUE_MAX);
    }
    if (compactp) {
        *compactp = text;
    } else {
        free(text);
    }
    return 0;
}

int
datastore_check_published_value(const char *value, char **compactp)
{
    json_error_t jerror;
    json_t *v;
    int error;

    if (compactp) {
        *compactp = NULL;
    }
    if (!value) {
        return set_error(EINVAL, "value is NULL");
    }
    v = json_loads(value, (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES
                           | JSON_ALLOW_NUL), &jerror);
    if (!v) {
        return set_error(EINVAL, "value is not valid JSON: %s (line %d, "
                         "column %d)", jerror.text, jerror.line,
                         jerror.column);
    }
    error = datastore_check_published_json(v, compactp);
    json_decref(v);
    return error;
}

/* Opens what a published write needs: a transaction of its own if none is
 * open (then '*ownp' is true), and a savepoint in it. */
static int
pub_write_begin(struct datastore *ds, const char *what, bool *ownp)
{
    int error;

    *ownp = false;
    if (ds->listing) {
        return set_error(EBUSY, "%s: %s inside a listing callback",
                         ds->path, what);
    }
    if (!ds->in_txn) {
        error = datastore_begin(ds);
        if (error) {
            return error;
        }
        *ownp = true;
    }
    error = sp_begin(ds);
    if (error && *ownp) {
        datastore_rollback(ds);
    }
    return error;
}

/* Commits ('error' 0) or rolls back a transaction pub_write_begin()
 * opened, after the caller closed the savepoint with sp_end().  Returns
 * 'error' or the commit's error. */
static int
pub_write_finish(struct datastore *ds, int error, bool own)
{
    if (own) {
        if (!error) {
            error = datastore_commit(ds);
        } else {
            datastore_rollback(ds);
        }
    }
    return error;
}

static long long
mono_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
datastore_set_publish_limits(struct datastore *ds,
                             const struct ds_pub_limits *limits)
{
    static const struct ds_pub_limits none;
    const struct ds_pub_limits *l = limits ? limits : &none;

    if (l->max_publish_rate != ds->pub_limits.max_publish_rate) {
        ds->pub_tokens = l->max_publish_rate;   /* A full bucket. */
        ds->pub_tokens_ms = mono_msec();
    }
    ds->pub_limits = *l;
}

void
datastore_get_publish_limits(const struct datastore *ds,
                             struct ds_pub_limits *limits)
{
    *limits = ds->pub_limits;
}

/* Refills the rate bucket and returns how many publications it allows. */
static double
pub_tokens(struct datastore *ds)
{
    double rate = ds->pub_limits.max_publish_rate;
    long long now = mono_msec();

    double tokens = ds->pub_tokens + (now - ds->pub_tokens_ms) * rate / 1000;

    ds->pub_tokens = tokens < rate ? tokens : rate;
    ds->pub_tokens_ms = now;
    return ds->pub_tokens;
}

/* Looks up what published 'key' ('key_len' bytes) holds now: stores in
 * '*heldp' the bytes of its key and value if it is published (not
 * withdrawn), else 0 (with '*existsp' false).  One lookup by key. */
static int
pub_held(struct datastore *ds, const char *key, size_t key_len,
         bool *existsp, uint64_t *heldp)
{
    sqlite3_stmt *s = stmt(ds, ST_PUB_HELD);
    int rc;

    *existsp = false;
    *heldp = 0;
    bind_text(s, 1, key, key_len);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *existsp = true;
        *heldp = key_len + sqlite3_column_int64(s, 0);
    }
    stmt_done(s);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE
            ? 0 : sql_error(ds, rc, "reading published record"));
}

/* Checks a publication of a 'key_len'-byte key with a 'value_len'-byte
 * value against the limits, given whether the key is published now
 * ('exists') and the bytes it holds ('held').  What the published records
 * hold comes from ds->pub_usage: no scan.  Returns 0 or EDQUOT with a
 * message. */
static int
check_pub_limits(struct datastore *ds, size_t key_len, size_t value_len,
                 bool exists, uint64_t held)
{
    const struct ds_pub_limits *l = &ds->pub_limits;
    const struct ds_pub_usage *u = &ds->pub_usage;

    if (l->max_value_bytes && value_len > l->max_value_bytes) {
        return set_error(EDQUOT, "the value is %zu bytes, over this VM's "
                         "limit of %"PRIu64" bytes for one value", value_len,
                         l->max_value_bytes);
    }
    if (l->max_publish_rate && pub_tokens(ds) < 1) {
        return set_error(EDQUOT, "over this VM's limit of %"PRIu64
                         " publications a second", l->max_publish_rate);
    }
    if (!exists && l->max_records && u->n_records >= l->max_records) {
        return set_error(EDQUOT, "this VM may hold at most %"PRIu64
                         " published records (withdraw one first)",
                         l->max_records);
    }
    uint64_t new_total = u->total_bytes - held + key_len + value_len;
    if (l->max_total_bytes && new_total > l->max_total_bytes) {
        return set_error(EDQUOT, "the records published would take %"PRIu64
                         " bytes, over this VM's limit of %"PRIu64" bytes",
                         new_total, l->max_total_bytes);
    }
    return 0;
}

static int
store_pub_counter(struct datastore *ds, int64_t counter)
{
    sqlite3_stmt *s = stmt(ds, ST_PUB_COUNTER_STORE);

    sqlite3_bind_int64(s, 1, counter);
    return run(ds, ST_PUB_COUNTER_STORE, "writing publish counter");
}

/* Publishes 'compact' (compact JSON text, checked, borrowed) as 'key'
 * (checked, borrowed) with the next version, inside the open savepoint:
 * checks the limits, takes a rate token, advances the counter.  Returns 0
 * or an errno; on failure the caller rolls the savepoint back and
 * restores ds->pub_counter. */
static int
pub_put(struct datastore *ds, const char *key, const char *compact)
{
    int64_t version = ds->pub_counter + 1;
    size_t key_len = strlen(key);
    size_t value_len = strlen(compact);
    uint64_t held;
    bool exists;
    int error;

    error = pub_held(ds, key, key_len, &exists, &held);
    if (!error) {
        error = check_pub_limits(ds, key_len, value_len, exists, held);
    }
    if (!error) {
        error = store_pub_counter(ds, version);
    }
    if (!error) {
        sqlite3_stmt *s = stmt(ds, ST_PUB_UPSERT);

        bind_text(s, 1, key, key_len);
        bind_text(s, 2, compact, value_len);
        sqlite3_bind_int64(s, 3, version);
        sqlite3_bind_int64(s, 4, ds->txn_now_ms);
        error = run(ds, ST_PUB_UPSERT, "publishing record");
    }
    if (!error) {
        ds->pub_counter = version;
        ds->pub_usage.n_records += !exists;
        ds->pub_usage.total_bytes += key_len + value_len - held;
        if (ds->pub_limits.max_publish_rate) {
            ds->pub_tokens--;
        }
    }
    return error;
}

/* Withdraws 'key' (borrowed) with the next version, inside the open
 * savepoint.  Returns 0, ENOENT (no such record, or already withdrawn) or
 * an errno; on failure the caller rolls the savepoint back and restores
 * what pub_save() saved. */
static int
pub_withdraw(struct datastore *ds, const char *key)
{
    int64_t version = ds->pub_counter + 1;
    size_t key_len = strlen(key);
    uint64_t held;
    bool exists;
    int error;

    error = pub_held(ds, key, key_len, &exists, &held);
    if (!error && !exists) {
        return set_error(ENOENT, "%s: no published record with key \"%s\"",
                         ds->path, key);
    }
    if (!error) {
        sqlite3_stmt *s = stmt(ds, ST_PUB_WITHDRAW);

        bind_text(s, 1, key, key_len);
        sqlite3_bind_int64(s, 2, version);
        sqlite3_bind_int64(s, 3, ds->txn_now_ms);
        error = run(ds, ST_PUB_WITHDRAW, "withdrawing record");
    }
    if (!error && sqlite3_changes(ds->db) == 0) {
        error = set_error(ENOENT, "%s: no published record with key \"%s\"",
                          ds->path, key);
    }
    if (!error) {
        error = store_pub_counter(ds, version);
    }
    if (!error) {
        ds->pub_counter = version;
        ds->pub_usage.n_records--;
        ds->pub_usage.total_bytes -= held;
    }
    return error;
}

/* What a published write changes in memory, saved before it so that a
 * failure can put it back. */
struct pub_saved {
    int64_t counter;
    struct ds_pub_usage usage;
};

static struct pub_saved
pub_save(const struct datastore *ds)
{
    return (struct pub_saved) { ds->pub_counter, ds->pub_usage };
}

/* Closes the savepoint of a published write that began in state 'saved'
 * (see sp_end()), putting the counter and usage back on failure, then
 * commits or rolls back as pub_write_finish() does.  Returns 'error' or
 * the error of closing. */
static int
pub_write_end(struct datastore *ds, int error, bool own,
              const struct pub_saved *saved)
{
    error = sp_end(ds, error);
    if (error && ds->in_txn) {
        ds->pub_counter = saved->counter;
        ds->pub_usage = saved->usage;
    }
    return pub_write_finish(ds, error, own);
}

int
datastore_publish(struct datastore *ds, const char *key, const char *value,
                  int64_t *versionp)
{
    char *compact = NULL;
    int error;

    error = datastore_check_published_key(key);
    if (!error) {
        error = datastore_check_published_value(value, &compact);
    }
    if (error) {
        return prepend_error(error, "%s: publish", ds->path);
    }
    error = datastore_publish_checked(ds, key, compact, versionp);
    free(compact);
    return error;
}

int
datastore_publish_checked(struct datastore *ds, const char *key,
                          const char *compact, int64_t *versionp)
{
    struct pub_saved saved;
    bool own;
    int error;

    error = pub_write_begin(ds, "publish", &own);
    if (error) {
        return error;
    }
    saved = pub_save(ds);
    error = pub_put(ds, key, compact);
    error = pub_write_end(ds, error, own, &saved);
    if (!error && versionp) {
        *versionp = ds->pub_counter;
    }
    return error;
}

int
datastore_unpublish(struct datastore *ds, const char *key,
                    int64_t *versionp)
{
    struct pub_saved saved;
    bool own;
    int error;

    error = datastore_check_published_key(key);
    if (error) {
        return prepend_error(error, "%s: unpublish", ds->path);
    }
    error = pub_write_begin(ds, "unpublish", &own);
    if (error) {
        return error;
    }
    saved = pub_save(ds);
    error = pub_withdraw(ds, key);
    error = pub_write_end(ds, error, own, &saved);
    if (!error && versionp) {
        *versionp = ds->pub_counter;
    }
    return error;
}

/* Fills '*p' from a row of ST_PUB_LIST or ST_PUB_SINCE (key, value,
 * version, acked_version, deleted).  Returns false if SQLite could not
 * produce the text (out of memory). */
static bool
pub_from_row(sqlite3_stmt *s, struct ds_published *p)
{
    p->key = (const char *) sqlite3_column_text(s, 0);
    p->value = (const char *) sqlite3_column_text(s, 1);
    p->version = sqlite3_column_int64(s, 2);
    p->acked_version = sqlite3_column_int64(s, 3);
    p->deleted = sqlite3_column_int(s, 4) != 0;
    return p->key && (p->deleted || p->value);
}

int
datastore_get_published(struct datastore *ds, const char *key,
                        char **valuep, int64_t *versionp,
                        int64_t *acked_versionp, bool *deletedp)
{
    sqlite3_stmt *s = stmt(ds, ST_PUB_GET);
    int rc, error = 0;

    if (!key || !*key) {
        return set_error(EINVAL, "%s: get published: key is empty",
                         ds->path);
    }
    bind_text(s, 1, key, strlen(key));
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *text = (const char *) sqlite3_column_text(s, 0);
        bool deleted = sqlite3_column_int(s, 3) != 0;

        if (valuep) {
            *valuep = NULL;
            if (text && !deleted && !(*valuep = strdup(text))) {
                error = set_error(ENOMEM, "%s: get published: out of "
                                  "memory", ds->path);
            }
        }
        if (versionp) {
            *versionp = sqlite3_column_int64(s, 1);
        }
        if (acked_versionp) {
            *acked_versionp = sqlite3_column_int64(s, 2);
        }
        if (deletedp) {
            *deletedp = deleted;
        }
    } else if (rc == SQLITE_DONE) {
        error = set_error(ENOENT, "%s: no published record with key \"%s\"",
                          ds->path, key);
    } else {
        error = sql_error(ds, rc, "reading published record");
    }
    stmt_done(s);
    return error;
}

int
datastore_list_published(struct datastore *ds, const char *prefix,
                         bool withdrawn, datastore_published_cb *cb,
                         void *aux, struct ds_pub_counts *countsp)
{
    sqlite3_stmt *s = stmt(ds, ST_PUB_LIST);
    size_t prefix_len = prefix ? strlen(prefix) : 0;
    struct ds_pub_counts counts = { 0, 0, 0 };
    char *upper = NULL;
    int rc, error = 0;

    if (countsp) {
        *countsp = counts;
    }
    if (ds->listing) {
        return set_error(EBUSY, "%s: list inside a listing callback",
                         ds->path);
    }
    if (prefix_len) {
        size_t upper_len;

        upper = malloc(prefix_len);
        if (!upper) {
            return set_error(ENOMEM, "%s: list published: out of memory",
                             ds->path);
        }
        upper_len = prefix_successor(prefix, prefix_len, upper);
        bind_text(s, 1, prefix, prefix_len);
        if (upper_len) {
            bind_text(s, 2, upper, upper_len);
        }
    } else {
        sqlite3_bind_text(s, 1, "", 0, SQLITE_STATIC);
    }

    ds->listing = true;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct ds_published p;

        if (!pub_from_row(s, &p)) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (p.deleted) {
            counts.withdrawn++;
        } else {
            counts.records++;
        }
        if (ds_published_pending(&p)) {
            counts.pending++;
        }
        if (cb && (withdrawn || !p.deleted)) {
            error = cb(aux, &p);
            if (error) {
                break;
            }
        }
    }
    ds->listing = false;
    if (!error && rc != SQLITE_DONE) {
        error = sql_error(ds, rc == SQLITE_ROW ? SQLITE_NOMEM : rc,
                          "listing published records");
    }
    stmt_done(s);
    free(upper);
    if (!error && countsp) {
        *countsp = counts;
    }
    return error;
}

int
datastore_published_since(struct datastore *ds, int64_t after, size_t limit,
                          datastore_published_cb *cb, void *aux)
{
    sqlite3_stmt *s = stmt(ds, ST_PUB_SINCE);
    int rc, error = 0;

    if (ds->listing) {
        return set_error(EBUSY, "%s: list inside a listing callback",
                         ds->path);
    }
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, (limit && limit <= INT64_MAX
                              ? (int64_t) limit : -1));
    ds->listing = true;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct ds_published p;

        if (!pub_from_row(s, &p)) {
            rc = SQLITE_NOMEM;
            break;
        }
        error = cb(aux, &p);
        if (error) {
            break;
        }
    }
    ds->listing = false;
    if (!error && rc != SQLITE_DONE) {
        error = sql_error(ds, rc == SQLITE_ROW ? SQLITE_NOMEM : rc,
                          "listing changed published records");
    }
    stmt_done(s);
    return error;
}

int64_t
datastore_published_counter(const struct datastore *ds)
{
    return ds->pub_counter;
}

int
datastore_ack_published(struct datastore *ds, const struct ds_pub_ack *acks,
                        size_t n, uint64_t *n_removedp)
{
    uint64_t n_removed = 0;
    bool own;
    int error;

    if (n_removedp) {
        *n_removedp = 0;
    }
    if (n && !acks) {
        return set_error(EINVAL, "%s: ack published: %zu acks but no array",
                         ds->path, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (!acks[i].key || acks[i].version < 1) {
            return set_error(EINVAL, "%s: ack published: ack %zu is "
                             "invalid", ds->path, i);
        }
    }
    error = pub_write_begin(ds, "ack published", &own);
    if (error) {
        return error;
    }
    for (size_t i = 0; !error && i < n; i++) {
        size_t key_len = strlen(acks[i].key);
        sqlite3_stmt *s = stmt(ds, ST_PUB_ACK);

        bind_text(s, 1, acks[i].key, key_len);
        sqlite3_bind_int64(s, 2, acks[i].version);
        error = run(ds, ST_PUB_ACK, "acknowledging published record");
        if (!error && sqlite3_changes(ds->db) > 0) {
            s = stmt(ds, ST_PUB_ACK_PURGE);
            bind_text(s, 1, acks[i].key, key_len);
            error = run(ds, ST_PUB_ACK_PURGE, "removing a tombstone");
            if (!error) {
                n_removed += sqlite3_changes(ds->db);
            }
        }
    }
    error = sp_end(ds, error);
    error = pub_write_finish(ds, error, own);
    if (!error && n_removedp) {
        *n_removedp = n_removed;
    }
    return error;
}

int
datastore_purge_published(struct datastore *ds, int64_t version,
                          uint64_t *n_removedp)
{
    uint64_t n_removed = 0;
    bool own;
    int error;

    if (n_removedp) {
        *n_removedp = 0;
    }
    error = pub_write_begin(ds, "purge published", &own);
    if (error) {
        return error;
    }
    sqlite3_stmt *s = stmt(ds, ST_PUB_PURGE);
    sqlite3_bind_int64(s, 1, version);
    error = run(ds, ST_PUB_PURGE, "removing tombstones");
    if (!error) {
        n_removed = sqlite3_changes(ds->db);
    }
    error = sp_end(ds, error);
    error = pub_write_finish(ds, error, own);
    if (!error && n_removedp) {
        *n_removedp = n_removed;
    }
    return error;
}

int
datastore_count_pending(struct datastore *ds, uint64_t *np)
{
    return count_rows(ds, ST_PUB_PENDING,
                      "counting pending published records", np);
}

int
datastore_get_pub_usage(struct datastore *ds, struct ds_pub_usage *usage)
{
    int error = 0;

    if (!ds->in_txn) {
        error = datastore_begin(ds);
        if (error) {
            return error;
        }
        *usage = ds->pub_usage;
        datastore_rollback(ds);
    } else {
        *usage = ds->pub_usage;
    }
    return error;
}

/* Objects. */

static bool
is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '_' || c == '-';
}

/* Checks 'name', a flag or a param name ('what' says which, for the
 * message): 1..DS_OBJ_NAME_MAX bytes of [a-z0-9_-].  0 or EINVAL. */
static int
check_obj_name(const char *what, const char *name)
{
    size_t len = strlen(name);

    if (!len || len > DS_OBJ_NAME_MAX) {
        return set_error(EINVAL, "%s \"%.64s\" must be 1 to %d bytes long",
                         what, name, DS_OBJ_NAME_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_name_char(name[i])) {
            return set_error(EINVAL, "%s \"%.64s\" may hold only a-z, 0-9, "
                             "\"_\" and \"-\"", what, name);
        }
    }
    return 0;
}

int
datastore_check_object_digest(const char *digest)
{
    if (!digest) {
        return set_error(EINVAL, "digest is NULL");
    }
    size_t len = strlen(digest);
    if (len != DS_OBJ_DIGEST_LEN) {
        return set_error(EINVAL, "digest is %zu characters long (a sha256 "
                         "digest is %d lowercase hex digits)", len,
                         DS_OBJ_DIGEST_LEN);
    }
    for (size_t i = 0; i < len; i++) {
        char c = digest[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return set_error(EINVAL, "digest holds '%c' at %zu (a sha256 "
                             "digest is %d lowercase hex digits)",
                             c, i, DS_OBJ_DIGEST_LEN);
        }
    }
    return 0;
}

/* Checks the path component of 'len' bytes at 'c'. */
static int
check_path_component(const char *c, size_t len)
{
    if (!len) {
        return set_error(EINVAL, "path has an empty component (\"//\" or "
                         "a trailing \"/\")");
    } else if ((len == 1 && c[0] == '.')
               || (len == 2 && c[0] == '.' && c[1] == '.')) {
        return set_error(EINVAL, "path has a \"%.*s\" component (give it "
                         "normalized)", (int) len, c);
    }
    return 0;
}

int
datastore_check_object_path(const char *path)
{
    if (!path) {
        return set_error(EINVAL, "path is NULL");
    }
    size_t len = strlen(path);
    if (path[0] != '/') {
        return set_error(EINVAL, "path \"%.64s\" is not absolute", path);
    } else if (len > DS_OBJ_PATH_MAX) {
        return set_error(EINVAL, "path is %zu bytes long (maximum %d)", len,
                         DS_OBJ_PATH_MAX);
    } else if (!utf8_valid((const unsigned char *) path, len)) {
        return set_error(EINVAL, "path is not valid UTF-8");
    }
    for (const char *p = path + 1; ; ) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t) (slash - p) : strlen(p);
        int error = check_path_component(p, n);

        if (error) {
            return error;
        } else if (!slash) {
            return 0;
        }
        p = slash + 1;
    }
}

static int
cmp_strings(const void *a_, const void *b_)
{
    const char *const *a = a_;
    const char *const *b = b_;

    return strcmp(*a, *b);
}

/* Returns the compact JSON text (malloc()ed, owned by the caller) of an
 * array of the keys of 'set' (a JSON object, borrowed), sorted. */
static char *
sorted_keys_json(const json_t *set)
{
    size_t n = json_object_size(set), i = 0;
    const char **keys = xcalloc(n ? n : 1, sizeof *keys);
    const char *key;
    json_t *value, *array = json_array();

    json_object_foreach ((json_t *) set, key, value) {
        keys[i++] = key;
    }
    qsort(keys, n, sizeof *keys, cmp_strings);
    for (i = 0; i < n; i++) {
        json_array_append_new(array, json_string(keys[i]));
    }
    free(keys);
    char *text = json_dumps(array, JSON_COMPACT);
    json_decref(array);
    if (!text) {
        out_of_memory();
    }
    return text;
}

/* Parses 'text' (NULL: "[]"), an array of flags, into '*textp': the
 * sorted array without duplicates, as compact JSON (malloc()ed, owned by
 * the caller).  0 or EINVAL with a message. */
static int
normalize_flags(const char *text, char **textp)
{
    json_t *flags = json_loads(text ? text : "[]", 0, NULL);
    json_t *set = json_object(), *flag;
    size_t i;
    int error = 0;

    *textp = NULL;
    if (!json_is_array(flags)) {
        error = set_error(EINVAL, "flags are not a JSON array");
    } else if (json_array_size(flags) > DS_OBJ_MAX_FLAGS) {
        error = set_error(EINVAL, "%zu flags (maximum %d)",
                          json_array_size(flags), DS_OBJ_MAX_FLAGS);
    }
    json_array_foreach (flags, i, flag) {
        if (error) {
            break;
        } else if (!json_is_string(flag)
                   || strlen(json_string_value(flag))
                      != json_string_length(flag)) {
            error = set_error(EINVAL, "flag %zu is not a string", i);
        } else {
            error = check_obj_name("flag", json_string_value(flag));
            json_object_set(set, json_string_value(flag), json_true());
        }
    }
    if (!error) {
        *textp = sorted_keys_json(set);
    }
    json_decref(set);
    json_decref(flags);
    return error;
}

/* Checks one param 'name' = 'value' (borrowed). */
static int
check_param(const char *name, const json_t *value)
{
    int error = check_obj_name("param", name);

    if (error) {
        return error;
    } else if (!json_is_string(value)
               || strlen(json_string_value(value))
                  != json_string_length(value)) {
        return set_error(EINVAL, "param \"%s\" is not a string without "
                         "U+0000", name);
    } else if (json_string_length(value) > DS_OBJ_PARAM_VALUE_MAX) {
        return set_error(EINVAL, "param \"%s\" is %zu bytes long (maximum "
                         "%d)", name, json_string_length(value),
                         DS_OBJ_PARAM_VALUE_MAX);
    }
    return 0;
}

/* Parses 'text' (NULL: "{}"), an object of params, into '*textp': compact
 * JSON with sorted names (malloc()ed, owned by the caller).  0 or EINVAL
 * with a message. */
static int
normalize_params(const char *text, char **textp)
{
    json_t *params = json_loads(text ? text : "{}", JSON_REJECT_DUPLICATES,
                                NULL);
    const char *name;
    json_t *value;
    int error = 0;

    *textp = NULL;
    if (!json_is_object(params)) {
        error = set_error(EINVAL, "params are not a JSON object (with "
                          "distinct names)");
    } else if (json_object_size(params) > DS_OBJ_MAX_PARAMS) {
        error = set_error(EINVAL, "%zu params (maximum %d)",
                          json_object_size(params), DS_OBJ_MAX_PARAMS);
    }
    json_object_foreach (params, name, value) {
        if (error) {
            break;
        }
        error = check_param(name, value);
    }
    if (!error) {
        *textp = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
        if (!*textp) {
            out_of_memory();
        }
    }
    json_decref(params);
    return error;
}

/* Fills '*o' from a row of ST_OBJ_OF_DIGEST or ST_OBJ_LIST.  Returns false
 * if SQLite could not produce the text (out of memory). */
static bool
obj_from_row(sqlite3_stmt *s, struct ds_object *o)
{
    o->path = (const char *) sqlite3_column_text(s, 0);
    o->digest = (const char *) sqlite3_column_text(s, 1);
    o->size = sqlite3_column_int64(s, 2);
    o->flags = (const char *) sqlite3_column_text(s, 3);
    o->params = (const char *) sqlite3_column_text(s, 4);
    o->added_at = sqlite3_column_int64(s, 5);
    return o->path && o->digest && o->flags && o->params;
}

/* Calls 'cb' with 'aux' for every row of 'digest' (borrowed; NULL: every
 * row), internally (no listing flag).  Returns 0, the callback's result or
 * an error. */
static int
obj_foreach(struct datastore *ds, const char *digest,
            datastore_object_cb *cb, void *aux)
{
    enum ds_stmt which = digest ? ST_OBJ_OF_DIGEST : ST_OBJ_LIST;
    sqlite3_stmt *s = stmt(ds, which);
    int rc, error = 0;

    if (digest) {
        bind_text(s, 1, digest, strlen(digest));
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct ds_object o;

        if (!obj_from_row(s, &o)) {
            rc = SQLITE_NOMEM;
            break;
        }
        error = cb(aux, &o);
        if (error) {
            break;
        }
    }
    if (!error && rc != SQLITE_DONE) {
        error = sql_error(ds, rc == SQLITE_ROW ? SQLITE_NOMEM : rc,
                          "listing objects");
    }
    stmt_done(s);
    return error;
}

/* What the rows of one digest add up to, for its record. */
struct obj_record {
    int64_t size;
    json_t *paths;              /* Array, in path order. */
    json_t *flags;              /* Object used as a set. */
    json_t *params;             /* Merged: the first path's value wins. */
};

static int
obj_record_cb(void *rec_, const struct ds_object *o)
{
    struct obj_record *rec = rec_;
    json_t *flags = json_loads(o->flags, 0, NULL);
    json_t *params = json_loads(o->params, 0, NULL);
    json_t *value;
    const char *name;
    size_t i;

    rec->size = o->size;
    json_array_append_new(rec->paths, json_string(o->path));
    json_array_foreach (flags, i, value) {
        if (json_is_string(value)) {
            json_object_set(rec->flags, json_string_value(value),
                            json_true());
        }
    }
    json_object_foreach (params, name, value) {
        if (!json_object_get(rec->params, name)) {
            json_object_set(rec->params, name, value);
        }
    }
    json_decref(flags);
    json_decref(params);
    return 0;
}

/* Computes the value of the record of 'digest' (borrowed) from its rows
 * into '*valuep' (compact JSON, malloc()ed and owned by the caller; NULL
 * if the digest has no rows).  Returns 0 or an error. */
static int
obj_record_value(struct datastore *ds, const char *digest, char **valuep)
{
    struct obj_record rec = {
        .paths = json_array(),
        .flags = json_object(),
        .params = json_object(),
    };
    int error = obj_foreach(ds, digest, obj_record_cb, &rec);

    *valuep = NULL;
    if (!error && json_array_size(rec.paths)) {
        char *paths = json_dumps(rec.paths, JSON_COMPACT);
        char *flags = sorted_keys_json(rec.flags);
        char *params = json_dumps(rec.params, JSON_COMPACT | JSON_SORT_KEYS);

        if (!paths || !params) {
            out_of_memory();
        }
        *valuep = xasprintf("{\"size\":%"PRId64",\"paths\":%s,\"flags\":%s,"
                            "\"params\":%s}", rec.size, paths, flags,
                            params);
        free(paths);
        free(flags);
        free(params);
    }
    json_decref(rec.paths);
    json_decref(rec.flags);
    json_decref(rec.params);
    return error;
}

/* Stores in '*samep' whether published 'key' holds exactly 'value' (and
 * is not withdrawn). */
static int
pub_holds(struct datastore *ds, const char *key, const char *value,
          bool *samep)
{
    sqlite3_stmt *s = stmt(ds, ST_PUB_GET);
    int rc;

    *samep = false;
    bind_text(s, 1, key, strlen(key));
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *text = (const char *) sqlite3_column_text(s, 0);
        *samep = (!sqlite3_column_int(s, 3) && text
                  && !strcmp(text, value));
    }
    stmt_done(s);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE
            ? 0 : sql_error(ds, rc, "reading published record"));
}

/* Brings the record of 'digest' (borrowed) in line with its rows, inside
 * the open savepoint: publishes the new value if it changed, withdraws the
 * record if no row is left. */
static int
obj_republish(struct datastore *ds, const char *digest)
{
    char *key = xasprintf("%s%s", DS_OBJ_KEY_PREFIX, digest);
    char *value;
    bool same;
    int error;

    error = obj_record_value(ds, digest, &value);
    if (!error && !value) {
        error = pub_withdraw(ds, key);
        if (error == ENOENT) {
            error = 0;          /* Nothing was published. */
        }
    } else if (!error) {
        error = pub_holds(ds, key, value, &same);
        if (!error && !same) {
            error = pub_put(ds, key, value);
        }
    }
    free(value);
    free(key);
    return error;
}

/* Stores in '*digestp' the digest registered for 'path' (malloc()ed, owned
 * by the caller), or NULL if there is none. */
static int
obj_get_digest(struct datastore *ds, const char *path, char **digestp)
{
    sqlite3_stmt *s = stmt(ds, ST_OBJ_DIGEST);
    int rc;

    *digestp = NULL;
    bind_text(s, 1, path, strlen(path));
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *digest = (const char *) sqlite3_column_text(s, 0);
        *digestp = xstrdup(digest ? digest : "");
    }
    stmt_done(s);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE
            ? 0 : sql_error(ds, rc, "reading object"));
}

/* Counts the rows of one digest other than 'path', checking their size. */
struct obj_room {
    const char *path;
    int64_t size;
    size_t n_others;
    int64_t other_size;         /* -1: none differs. */
};

static int
obj_room_cb(void *room_, const struct ds_object *o)
{
    struct obj_room *room = room_;

    if (strcmp(o->path, room->path)) {
        room->n_others++;
        if (o->size != room->size) {
            room->other_size = o->size;
        }
    }
    return 0;
}

/* Checks that 'path' may be added to 'digest' with 'size': the digest's
 * other paths have that size and there are fewer than DS_OBJ_MAX_PATHS. */
static int
obj_check_room(struct datastore *ds, const char *digest, const char *path,
               int64_t size)
{
    struct obj_room room = { path, size, 0, -1 };
    int error = obj_foreach(ds, digest, obj_room_cb, &room);

    if (error) {
        return error;
    } else if (room.other_size >= 0) {
        return set_error(EINVAL, "object %s is registered with size %"PRId64
                         ", not %"PRId64, digest, room.other_size, size);
    } else if (room.n_others >= DS_OBJ_MAX_PATHS) {
        return set_error(EDQUOT, "object %s already has %d paths (the "
                         "maximum)", digest, DS_OBJ_MAX_PATHS);
    }
    return 0;
}

/* The work of datastore_object_add() with checked, normalized arguments,
 * inside the open savepoint. */
static int
obj_add(struct datastore *ds, const char *path, const char *digest,
        int64_t size, const char *flags, const char *params)
{
    char *old;
    int error;

    error = obj_get_digest(ds, path, &old);
    if (!error) {
        error = obj_check_room(ds, digest, path, size);
    }
    if (!error) {
        sqlite3_stmt *s = stmt(ds, ST_OBJ_UPSERT);

        bind_text(s, 1, path, strlen(path));
        bind_text(s, 2, digest, strlen(digest));
        sqlite3_bind_int64(s, 3, size);
        bind_text(s, 4, flags, strlen(flags));
        bind_text(s, 5, params, strlen(params));
        sqlite3_bind_int64(s, 6, ds->txn_now_ms);
        error = run(ds, ST_OBJ_UPSERT, "writing object");
    }
    if (!error) {
        error = obj_republish(ds, digest);
    }
    if (!error && old && strcmp(old, digest)) {
        error = obj_republish(ds, old);
    }
    free(old);
    return error;
}

/* Checks and normalizes the arguments of datastore_object_add(). */
static int
obj_check_args(const char *path, const char *digest, int64_t size,
               const char *flags_json, const char *params_json,
               char **flagsp, char **paramsp)
{
    int error = datastore_check_object_path(path);

    *flagsp = *paramsp = NULL;
    if (!error) {
        error = datastore_check_object_digest(digest);
    }
    if (!error && size < 0) {
        error = set_error(EINVAL, "size %"PRId64" is negative", size);
    }
    if (!error) {
        error = normalize_flags(flags_json, flagsp);
    }
    if (!error) {
        error = normalize_params(params_json, paramsp);
    }
    return error;
}

int
datastore_object_add(struct datastore *ds, const char *path,
                     const char *digest, int64_t size,
                     const char *flags_json, const char *params_json)
{
    char *flags, *params;
    struct pub_saved saved;
    bool own;
    int error;

    error = obj_check_args(path, digest, size, flags_json, params_json,
                           &flags, &params);
    if (!error) {
        error = pub_write_begin(ds, "object add", &own);
    }
    if (!error) {
        saved = pub_save(ds);
        error = obj_add(ds, path, digest, size, flags, params);
        error = pub_write_end(ds, error, own, &saved);
    }
    free(flags);
    free(params);
    return error ? prepend_error(error, "%s: object add", ds->path) : 0;
}

int
datastore_object_remove(struct datastore *ds, const char *path)
{
    char *digest = NULL;
    struct pub_saved saved;
    bool own;
    int error;

    error = datastore_check_object_path(path);
    if (!error) {
        error = pub_write_begin(ds, "object remove", &own);
    }
    if (error) {
        return prepend_error(error, "%s: object remove", ds->path);
    }
    saved = pub_save(ds);
    error = obj_get_digest(ds, path, &digest);
    if (!error && !digest) {
        error = set_error(ENOENT, "no object is registered at %s", path);
    }
    if (!error) {
        sqlite3_stmt *s = stmt(ds, ST_OBJ_DELETE);

        bind_text(s, 1, path, strlen(path));
        error = run(ds, ST_OBJ_DELETE, "removing object");
    }
    if (!error) {
        error = obj_republish(ds, digest);
    }
    free(digest);
    error = pub_write_end(ds, error, own, &saved);
    return error ? prepend_error(error, "%s: object remove", ds->path) : 0;
}

int
datastore_list_objects(struct datastore *ds, const char *digest,
                       datastore_object_cb *cb, void *aux)
{
    int error;

    if (digest && datastore_check_object_digest(digest)) {
        return prepend_error(EINVAL, "%s: list objects", ds->path);
    } else if (ds->listing) {
        return set_error(EBUSY, "%s: list inside a listing callback",
                         ds->path);
    }
    ds->listing = true;
    error = obj_foreach(ds, digest, cb, aux);
    ds->listing = false;
    return error;
}

/* Object flags set by a handler. */

/* One row of a digest whose flags are to grow. */
struct obj_flags_row {
    char *path;                 /* Owned. */
    char *flags;                /* The new flags, compact JSON, owned. */
};

/* Collects the rows of one digest with their flags and 'add' merged. */
struct obj_flags {
    const json_t *add;          /* Array of flags, borrowed. */
    struct obj_flags_row *rows;
    size_t n;
    int error;
};

static int
obj_flags_cb(void *of_, const struct ds_object *o)
{
    struct obj_flags *of = of_;
    json_t *flags = json_loads(o->flags, 0, NULL);
    char *merged = NULL;
    char *text;

    if (!json_is_array(flags)) {
        json_decref(flags);
        flags = json_array();
    }
    json_array_extend(flags, (json_t *) of->add);
    text = json_dumps(flags, JSON_COMPACT);
    json_decref(flags);
    if (!text) {
        out_of_memory();
    }
    of->error = normalize_flags(text, &merged);
    free(text);
    if (of->error) {
        return of->error;
    }
    of->rows = xrealloc(of->rows, (of->n + 1) * sizeof *of->rows);
    of->rows[of->n].path = xstrdup(o->path);
    of->rows[of->n].flags = merged;
    of->n++;
    return 0;
}

/* The work of datastore_object_add_flags() inside the open savepoint. */
static int
obj_add_flags(struct datastore *ds, const char *digest, const json_t *add)
{
    struct obj_flags of = { .add = add };
    int error = obj_foreach(ds, digest, obj_flags_cb, &of);

    if (!error && !of.n) {
        error = set_error(ENOENT, "no path holds object %s", digest);
    }
    for (size_t i = 0; i < of.n; i++) {
        if (!error) {
            sqlite3_stmt *s = stmt(ds, ST_OBJ_SET_FLAGS);

            bind_text(s, 1, of.rows[i].path, strlen(of.rows[i].path));
            bind_text(s, 2, of.rows[i].flags, strlen(of.rows[i].flags));
            error = run(ds, ST_OBJ_SET_FLAGS, "writing object flags");
        }
        free(of.rows[i].path);
        free(of.rows[i].flags);
    }
    free(of.rows);
    return error ? error : obj_republish(ds, digest);
}

int
datastore_object_add_flags(struct datastore *ds, const char *digest,
                           const char *flags_json)
{
    char *flags = NULL;
    json_t *add = NULL;
    struct pub_saved saved;
    bool own;
    int error;

    error = datastore_check_object_digest(digest);
    if (!error) {
        error = normalize_flags(flags_json, &flags);
    }
    if (!error) {
        add = json_loads(flags, 0, NULL);
        error = pub_write_begin(ds, "object flags", &own);
    }
    if (!error) {
        saved = pub_save(ds);
        error = obj_add_flags(ds, digest, add);
        error = pub_write_end(ds, error, own, &saved);
    }
    json_decref(add);
    free(flags);
    return error ? prepend_error(error, "%s: object flags", ds->path) : 0;
}

/* Handled records. */

/* Returns the key of the result record of 'key' (malloc()ed, owned by the
 * caller). */
static char *
result_key(const char *key)
{
    return xasprintf("%s%s", DS_RESULT_KEY_PREFIX, key);
}

int
datastore_get_handled(struct datastore *ds, const char *key,
                      int64_t *versionp)
{
    sqlite3_stmt *s = stmt(ds, ST_HANDLED_GET);
    int rc, error = 0;

    bind_text(s, 1, key, strlen(key));
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *versionp = sqlite3_column_int64(s, 0);
    } else if (rc == SQLITE_DONE) {
        error = ENOENT;
    } else {
        error = sql_error(ds, rc, "reading handled record");
    }
    stmt_done(s);
    return error;
}

/* The work of datastore_set_handled() inside the open savepoint. */
static int
handled_put(struct datastore *ds, const char *key, int64_t version, bool ok,
            const char *compact)
{
    sqlite3_stmt *s = stmt(ds, ST_HANDLED_PUT);
    const char *status = ok ? "ok" : "failed";
    int error;

    bind_text(s, 1, key, strlen(key));
    sqlite3_bind_int64(s, 2, version);
    bind_text(s, 3, status, strlen(status));
    sqlite3_bind_int64(s, 4, ds->txn_now_ms);
    error = run(ds, ST_HANDLED_PUT, "writing handled record");
    if (!error && compact) {
        char *rkey = result_key(key);

        error = pub_put(ds, rkey, compact);
        free(rkey);
    }
    return error;
}

int
datastore_set_handled(struct datastore *ds, const char *key,
                      int64_t version, bool ok, const char *result_json)
{
    char *compact = NULL, *rkey = NULL;
    struct pub_saved saved;
    bool own;
    int error = 0;

    if (!key || !*key || strlen(key) > DS_KEY_MAX) {
        error = set_error(EINVAL, "bad key");
    } else if (result_json) {
        rkey = result_key(key);
        error = datastore_check_published_value(result_json, &compact);
        if (!error && strlen(rkey) > DS_PUB_KEY_MAX) {
            error = set_error(EINVAL, "result key is longer than %d bytes",
                              DS_PUB_KEY_MAX);
        }
        free(rkey);
    }
    if (!error) {
        error = pub_write_begin(ds, "handled", &own);
    }
    if (!error) {
        saved = pub_save(ds);
        error = handled_put(ds, key, version, ok, compact);
        error = pub_write_end(ds, error, own, &saved);
    }
    free(compact);
    return error ? prepend_error(error, "%s: handled", ds->path) : 0;
}

/* The work of datastore_forget_handled() inside the open savepoint. */
static int
handled_forget(struct datastore *ds, const char *key)
{
    sqlite3_stmt *s = stmt(ds, ST_HANDLED_DELETE);
    char *rkey = result_key(key);
    int error;

    bind_text(s, 1, key, strlen(key));
    error = run(ds, ST_HANDLED_DELETE, "forgetting handled record");
    if (!error) {
        error = pub_withdraw(ds, rkey);
        if (error == ENOENT) {
            error = 0;
        }
    }
    free(rkey);
    return error;
}

int
datastore_forget_handled(struct datastore *ds, const char *key)
{
    struct pub_saved saved;
    bool own;
    int error;

    if (!key || !*key) {
        return set_error(EINVAL, "bad key");
    }
    error = pub_write_begin(ds, "forget handled", &own);
    if (!error) {
        saved = pub_save(ds);
        error = handled_forget(ds, key);
        error = pub_write_end(ds, error, own, &saved);
    }
    return error ? prepend_error(error, "%s: forget handled", ds->path) : 0;
}

int
datastore_list_handled(struct datastore *ds, datastore_handled_cb *cb,
                       void *aux)
{
    sqlite3_stmt *s = stmt(ds, ST_HANDLED_LIST);
    int rc, error = 0;

    if (ds->listing) {
        return set_error(EBUSY, "%s: list inside a listing callback",
                         ds->path);
    }
    ds->listing = true;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *) sqlite3_column_text(s, 0);
        const char *status = (const char *) sqlite3_column_text(s, 2);

        if (!key || !status) {
            rc = SQLITE_NOMEM;
            break;
        }
        error = cb(aux, key, sqlite3_column_int64(s, 1),
                   !strcmp(status, "ok"), sqlite3_column_int64(s, 3));
        if (error) {
            break;
        }
    }
    if (!error && rc != SQLITE_DONE) {
        error = sql_error(ds, rc == SQLITE_ROW ? SQLITE_NOMEM : rc,
                          "listing handled records");
    }
    stmt_done(s);
    ds->listing = false;
    return error;
}
