/* Tests for chand-guest/datastore: real SQLite files in a mkdtemp()
 * directory, crash simulation with fork() + _exit()/SIGKILL. */

#include <config.h>
#include "unit.h"
#include "datastore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest-fixture.h"
#include "util.h"

static void
remove_db(const char *path)
{
    char file[256];

    unlink(path);
    snprintf(file, sizeof file, "%s-wal", path);
    unlink(file);
    snprintf(file, sizeof file, "%s-shm", path);
    unlink(file);
}

static void
write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, data, len) == (ssize_t) len);
    close(fd);
}

/* Returns a malloc'd copy of the file at 'path' (the caller frees it) and
 * its size; fails the test if it cannot be read. */
static char *
must_read_file(const char *path, size_t *lenp)
{
    char *buf = read_file(path, lenp);

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    return buf;
}

/* Raw SQLite access, as a guest app (or an attacker) would have. */

static int64_t
raw_int(const char *path, const char *sql, const char *param)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t value = -1;

    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL)
                    == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK);
    if (param) {
        sqlite3_bind_text(s, 1, param, -1, SQLITE_STATIC);
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
        value = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return value;
}

static char *
raw_text(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    char *text = NULL;

    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL)
                    == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW) {
        text = strdup((const char *) sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return text;
}

static void
raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    char *err = NULL;

    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, (SQLITE_OPEN_READWRITE
                                                | SQLITE_OPEN_CREATE), NULL)
                    == SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "raw_exec(%s): %s\n", sql, err);
        sqlite3_free(err);
        CU_FAIL_FATAL("raw_exec failed");
    }
    sqlite3_close(db);
}

static int64_t
apply_count(const char *path, const char *key)
{
    return raw_int(path, "SELECT apply_count FROM records WHERE key = ?1",
                   key);
}

/* Datastore helpers. */

static struct ds_record
put(const char *key, const char *value, int64_t version)
{
    return (struct ds_record) { .op = DS_PUT, .key = key, .value = value,
                                .version = version };
}

static struct ds_record
del(const char *key)
{
    return (struct ds_record) { .op = DS_DELETE, .key = key };
}

/* Applies one frame, asserting no error; returns whether it applied. */
static bool
apply(struct datastore *ds, uint32_t epoch, uint64_t seq,
      const struct ds_record *recs, size_t n)
{
    bool applied = true;
    int error = datastore_apply(ds, epoch, seq, recs, n, &applied);

    if (error) {
        fprintf(stderr, "datastore_apply: %s\n", datastore_last_error());
    }
    CU_ASSERT_FATAL(error == 0);
    return applied;
}

static uint64_t
count(struct datastore *ds)
{
    uint64_t n = 12345;

    CU_ASSERT_FATAL(datastore_count(ds, &n) == 0);
    return n;
}

static struct ds_state
get_state(const struct datastore *ds)
{
    struct ds_state st;

    datastore_get_state(ds, &st);
    return st;
}

static bool
state_equal(const struct ds_state *a, const struct ds_state *b)
{
    return (a->guest_epoch == b->guest_epoch
            && a->host_epoch == b->host_epoch
            && a->position == b->position
            && a->snapshot == b->snapshot
            && a->snapshot_gen == b->snapshot_gen
            && a->snapshot_end == b->snapshot_end
            && a->frames_applied == b->frames_applied
            && a->ops_applied == b->ops_applied
            && a->chan_id == b->chan_id
            && a->clones == b->clones
            && a->clone_of == b->clone_of);
}

/* Begins a snapshot in a transaction of its own. */
static void
snapshot_begin_commit(struct datastore *ds, uint32_t epoch)
{
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_FATAL(datastore_snapshot_begin(ds, epoch, 0) == 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
}

/* Change notifications collected by a callback. */

struct change_log {
    size_t n;
    char *keys[256];
    enum ds_op ops[256];
    int64_t versions[256];
};

static void
change_log_cb(void *log_, const struct ds_change *c)
{
    struct change_log *log = log_;

    CU_ASSERT_FATAL(log->n < 256);
    log->keys[log->n] = strdup(c->key);
    log->ops[log->n] = c->op;
    log->versions[log->n] = c->version;
    log->n++;
}

static void
change_log_clear(struct change_log *log)
{
    for (size_t i = 0; i < log->n; i++) {
        free(log->keys[i]);
    }
    log->n = 0;
}

static bool
change_log_has(const struct change_log *log, const char *key, enum ds_op op,
               int64_t version)
{
    for (size_t i = 0; i < log->n; i++) {
        if (!strcmp(log->keys[i], key) && log->ops[i] == op
            && log->versions[i] == version) {
            return true;
        }
    }
    return false;
}

/* Open, create, reopen. */

static void
test_open_create_reopen(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_state st, st2;
    char *mode;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    st = get_state(ds);
    CU_ASSERT(st.guest_epoch != 0);
    CU_ASSERT_EQUAL(st.host_epoch, 0);
    CU_ASSERT_EQUAL(st.position, 0);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_NONE);
    CU_ASSERT_EQUAL(st.snapshot_gen, 0);
    CU_ASSERT_EQUAL(st.frames_applied, 0);
    CU_ASSERT_EQUAL(st.ops_applied, 0);
    CU_ASSERT_EQUAL(count(ds), 0);
    CU_ASSERT_FALSE(datastore_in_transaction(ds));
    CU_ASSERT_EQUAL(datastore_check(ds), 0);

    /* What an app sees with sqlite3, while the daemon has it open. */
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT schema_version FROM meta",
                            NULL), DS_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(raw_int(sc.path, "PRAGMA application_id", NULL),
                    DS_APPLICATION_ID);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT guest_epoch FROM channel",
                            NULL), st.guest_epoch);
    mode = raw_text(sc.path, "PRAGMA journal_mode");
    CU_ASSERT_STRING_EQUAL(mode, "wal");
    free(mode);
    mode = raw_text(sc.path, "SELECT snapshot_state FROM channel");
    CU_ASSERT_STRING_EQUAL(mode, "none");
    free(mode);
    mode = raw_text(sc.path, "SELECT created_by FROM meta");
    CU_ASSERT_STRING_EQUAL(mode, PACKAGE_STRING);
    free(mode);
    datastore_close(ds);

    ds = open_ds(sc.path);
    st2 = get_state(ds);
    CU_ASSERT(state_equal(&st, &st2));
    datastore_close(ds);
    datastore_close(NULL);

    /* An empty file (e.g. from touch) is a new datastore. */
    remove_db(sc.path);
    write_file(sc.path, "", 0);
    ds = open_ds(sc.path);
    CU_ASSERT(get_state(ds).guest_epoch != 0);
    datastore_close(ds);

    scratch_destroy(&sc);
}

static void
test_guest_epoch_per_file(void)
{
    struct scratch sc;
    char other[256];
    struct datastore *a, *b;
    uint32_t ea, eb, ec;

    scratch_init(&sc, "ds");
    scratch_file(&sc, "other.db", other, sizeof other);
    a = open_ds(sc.path);
    b = open_ds(other);
    ea = get_state(a).guest_epoch;
    eb = get_state(b).guest_epoch;
    CU_ASSERT(ea != 0 && eb != 0);
    CU_ASSERT(ea != eb);
    datastore_close(a);
    datastore_close(b);

    /* Wiping the store gives a new guest epoch, so the host can tell. */
    remove_db(sc.path);
    a = open_ds(sc.path);
    ec = get_state(a).guest_epoch;
    CU_ASSERT(ec != 0 && ec != ea);
    datastore_close(a);

    /* A chosen guest epoch (replay of a capture) applies to a file the
     * open creates, and only to it. */
    struct datastore_options opts = { .guest_epoch = 0xfedcba98 };
    CU_ASSERT_EQUAL_FATAL(datastore_open_opts(sc.path, &opts, &a), 0);
    CU_ASSERT_EQUAL(get_state(a).guest_epoch, ec);
    datastore_close(a);
    remove_db(sc.path);
    CU_ASSERT_EQUAL_FATAL(datastore_open_opts(sc.path, &opts, &a), 0);
    CU_ASSERT_EQUAL(get_state(a).guest_epoch, 0xfedcba98);
    datastore_close(a);
    a = open_ds(sc.path);
    CU_ASSERT_EQUAL(get_state(a).guest_epoch, 0xfedcba98);
    datastore_close(a);
    scratch_destroy(&sc);
}

/* Refusals at open.  Each must leave the file exactly as it was. */

static void
assert_open_fails(const char *path, int expected, const char *msg_part)
{
    struct datastore *ds = (struct datastore *) 1;
    int error = datastore_open(path, &ds);

    CU_ASSERT_EQUAL(error, expected);
    CU_ASSERT_PTR_NULL(ds);
    if (error != expected) {
        fprintf(stderr, "open %s: got %d (%s), expected %d\n", path,
                error, datastore_last_error(), expected);
    }
    if (msg_part && !strstr(datastore_last_error(), msg_part)) {
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n",
                datastore_last_error(), msg_part);
        CU_FAIL("error message");
    }
    if (error) {
        CU_ASSERT(strstr(datastore_last_error(), path) != NULL);
    }
    ds = NULL;
    datastore_close(ds);
}

static void
assert_open_refused_unchanged(const char *path, int expected,
                              const char *msg_part)
{
    size_t len0, len1;
    char *before = must_read_file(path, &len0);
    char *after;

    assert_open_fails(path, expected, msg_part);
    after = must_read_file(path, &len1);
    CU_ASSERT(len0 == len1 && !memcmp(before, after, len0));
    free(before);
    free(after);
}

static void
test_open_errors(void)
{
    struct scratch sc;
    struct datastore *ds;
    char path[256], missing[256];
    char text[8192];

    scratch_init(&sc, "ds");

    assert_open_fails("", EINVAL, NULL);
    CU_ASSERT_EQUAL(datastore_open(NULL, &ds), EINVAL);
    CU_ASSERT_PTR_NULL(ds);
    struct datastore_options bad = { .sync = 7 };
    CU_ASSERT_EQUAL(datastore_open_opts(sc.path, &bad, &ds), EINVAL);
    CU_ASSERT_PTR_NULL(ds);

    /* Missing parent directory: the caller creates it, not us. */
    scratch_file(&sc, "nope/guest.db", missing, sizeof missing);
    assert_open_fails(missing, ENOENT, "cannot open");

    /* A text file, big and small. */
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = "this is not a database\n"[i % 23];
    }
    scratch_file(&sc, "text.db", path, sizeof path);
    write_file(path, text, sizeof text);
    assert_open_refused_unchanged(path, EBADMSG, "not an SQLite database");
    write_file(path, text, 10);
    assert_open_refused_unchanged(path, EBADMSG, "not an SQLite database");

    /* Someone else's SQLite database. */
    scratch_file(&sc, "foreign.db", path, sizeof path);
    raw_exec(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    assert_open_refused_unchanged(path, EBADMSG, "not a chand datastore");
    raw_exec(path, "PRAGMA application_id = 42;");
    assert_open_refused_unchanged(path, EBADMSG, "0x0000002a");
    /* Even an empty one with a foreign application_id. */
    scratch_file(&sc, "foreign2.db", path, sizeof path);
    raw_exec(path, "PRAGMA application_id = 42; CREATE TABLE t (x);"
             "DROP TABLE t;");
    assert_open_refused_unchanged(path, EBADMSG, "not a chand datastore");

    scratch_destroy(&sc);
}

/* Makes a datastore at 'path' holding one record, and closes it. */
static void
make_store(const char *path)
{
    struct datastore *ds = open_ds(path);
    struct ds_record r = put("k", "1", 1);

    snapshot_begin_commit(ds, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, &r, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);
}

static void
test_schema_version(void)
{
    struct scratch sc;
    struct datastore *ds;

    scratch_init(&sc, "ds");
    make_store(sc.path);

    raw_exec(sc.path, "UPDATE meta SET schema_version = 6");
    assert_open_refused_unchanged(sc.path, ENOTSUP, "schema version 6");
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT schema_version FROM meta",
                            NULL), 6);

    raw_exec(sc.path, "UPDATE meta SET schema_version = 0");
    assert_open_refused_unchanged(sc.path, EBADMSG, "schema version 0");

    raw_exec(sc.path, "UPDATE meta SET schema_version = 'one'");
    assert_open_refused_unchanged(sc.path, EBADMSG, "schema version");

    raw_exec(sc.path, "DELETE FROM meta");
    assert_open_refused_unchanged(sc.path, EBADMSG, "schema version");

    raw_exec(sc.path, "DROP TABLE meta");
    assert_open_refused_unchanged(sc.path, EBADMSG, "meta");

    /* Back to a good meta; then damage the other tables. */
    raw_exec(sc.path, "CREATE TABLE meta (id INTEGER PRIMARY KEY,"
             " schema_version INTEGER NOT NULL, created_at INTEGER NOT NULL,"
             " created_by TEXT NOT NULL);"
             "INSERT INTO meta VALUES (1, 5, 0, 'test');");
    ds = open_ds(sc.path);
    assert_record(ds, "k", "1", 1);
    datastore_close(ds);

    raw_exec(sc.path, "PRAGMA ignore_check_constraints = ON;"
             "UPDATE channel SET snapshot_state = 'bogus'");
    assert_open_fails(sc.path, EBADMSG, "channel row");
    raw_exec(sc.path, "PRAGMA ignore_check_constraints = ON;"
             "UPDATE channel SET snapshot_state = 'complete',"
             " guest_epoch = 0");
    assert_open_fails(sc.path, EBADMSG, "channel row");
    raw_exec(sc.path, "DELETE FROM channel");
    assert_open_fails(sc.path, EBADMSG, "channel row is missing");
    raw_exec(sc.path, "ALTER TABLE records RENAME TO old_records");
    assert_open_fails(sc.path, EBADMSG, "schema does not match");

    scratch_destroy(&sc);
}

static void
test_corrupt_file(void)
{
    struct scratch sc;
    struct datastore *ds;
    char value[1024];
    size_t len;
    char *data;
    int error;

    scratch_init(&sc, "ds");

    /* Enough records for many pages. */
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    memset(value, 'v', sizeof value - 3);
    value[0] = '"';
    value[sizeof value - 2] = '"';
    value[sizeof value - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%03d", i);
        struct ds_record r = put(key, value, i);
        CU_ASSERT(apply(ds, 1, i + 1, &r, 1));
    }
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(datastore_check(ds), 0);
    datastore_close(ds);

    /* Garbage over the second half of the file (record pages). */
    data = must_read_file(sc.path, &len);
    CU_ASSERT_FATAL(len > 16 * 4096);
    memset(data + len / 2, 0x5a, len - len / 2);
    write_file(sc.path, data, len);
    error = datastore_open(sc.path, &ds);
    if (!error) {
        error = datastore_check(ds);
        CU_ASSERT_EQUAL(error, EBADMSG);
        CU_ASSERT(strstr(datastore_last_error(), "integrity check failed")
                  != NULL);
        datastore_close(ds);
    } else {
        CU_ASSERT_EQUAL(error, EBADMSG);
    }

    /* A damaged file header. */
    memset(data, 'x', 16);
    write_file(sc.path, data, len);
    assert_open_refused_unchanged(sc.path, EBADMSG, "not an SQLite database");
    free(data);

    scratch_destroy(&sc);
}

/* Applying. */

static void
test_apply_get(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_state st;
    char *value;
    int64_t version;
    long long int before, after;
    struct timespec ts;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);

    /* Nothing can be applied before the first snapshot or rebase. */
    struct ds_record r0 = put("a", "0", 0);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_apply(ds, 7, 1, &r0, 1, NULL), ESTALE);
    CU_ASSERT_EQUAL(datastore_apply(ds, 0, 1, &r0, 1, NULL), ESTALE);
    CU_ASSERT(strstr(datastore_last_error(), "host epoch") != NULL);
    datastore_rollback(ds);

    snapshot_begin_commit(ds, 7);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.host_epoch, 7);
    CU_ASSERT_EQUAL(st.position, 0);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_ACTIVE);
    CU_ASSERT_EQUAL(st.snapshot_gen, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(datastore_snapshot_finish(ds, NULL) == 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    clock_gettime(CLOCK_REALTIME, &ts);
    before = (long long int) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    struct ds_record f1[] = {
        put("a", "{\"x\": 1}", 10),
        put("b", "[1, 2, 3]", 20),
    };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 7, 1, f1, 2));
    /* Reads inside the transaction see its changes. */
    assert_record(ds, "a", "{\"x\": 1}", 10);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    after = (long long int) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    assert_record(ds, "a", "{\"x\": 1}", 10);
    assert_record(ds, "b", "[1, 2, 3]", 20);
    assert_record(ds, "c", NULL, 0);
    CU_ASSERT_EQUAL(count(ds), 2);
    int64_t updated = raw_int(sc.path, "SELECT updated_at FROM records "
                              "WHERE key = ?1", "a");
    CU_ASSERT(updated >= before && updated <= after);

    /* Outputs are optional. */
    CU_ASSERT_EQUAL(datastore_get(ds, "a", NULL, NULL), 0);
    value = NULL;
    CU_ASSERT_EQUAL(datastore_get(ds, "b", &value, NULL), 0);
    CU_ASSERT_STRING_EQUAL(value, "[1, 2, 3]");
    free(value);
    version = 0;
    CU_ASSERT_EQUAL(datastore_get(ds, "b", NULL, &version), 0);
    CU_ASSERT_EQUAL(version, 20);
    CU_ASSERT_EQUAL(datastore_get(ds, "", NULL, NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_get(ds, NULL, NULL, NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_get(ds, "zz", NULL, NULL), ENOENT);
    CU_ASSERT(strstr(datastore_last_error(), "zz") != NULL);

    /* Update, delete, delete of an absent key, in one frame. */
    struct ds_record f2[] = {
        put("a", "{\"x\": 2}", 11),
        del("b"),
        del("c"),
        put("c", "null", -5),
    };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 7, 2, f2, 4));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    assert_record(ds, "a", "{\"x\": 2}", 11);
    assert_record(ds, "b", NULL, 0);
    assert_record(ds, "c", "null", -5);
    CU_ASSERT_EQUAL(count(ds), 2);
    CU_ASSERT_EQUAL(apply_count(sc.path, "a"), 2);
    CU_ASSERT_EQUAL(apply_count(sc.path, "c"), 1);

    st = get_state(ds);
    CU_ASSERT_EQUAL(st.position, 2);
    CU_ASSERT_EQUAL(st.frames_applied, 2);
    CU_ASSERT_EQUAL(st.ops_applied, 6);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_COMPLETE);

    /* An empty frame advances the position. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 7, 3, NULL, 0));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(get_state(ds).position, 3);
    CU_ASSERT_EQUAL(get_state(ds).frames_applied, 3);

    /* A frame from another host epoch is refused and changes nothing. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_apply(ds, 8, 4, f1, 2, NULL), ESTALE);
    CU_ASSERT_EQUAL(datastore_apply(ds, 6, 4, f1, 2, NULL), ESTALE);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    assert_record(ds, "a", "{\"x\": 2}", 11);
    CU_ASSERT_EQUAL(get_state(ds).position, 3);

    datastore_close(ds);
    scratch_destroy(&sc);
}

static void
test_txn_misuse(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_record r = put("k", "1", 1);
    bool applied = true;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);

    CU_ASSERT_EQUAL(datastore_apply(ds, 1, 1, &r, 1, &applied), EINVAL);
    CU_ASSERT_FALSE(applied);
    CU_ASSERT(strstr(datastore_last_error(), "outside a transaction")
              != NULL);
    CU_ASSERT_EQUAL(datastore_commit(ds), EINVAL);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 1, 0), EINVAL);
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_rebase(ds, 1, 0), EINVAL);
    datastore_rollback(ds);     /* Harmless. */

    CU_ASSERT_EQUAL(datastore_begin(ds), 0);
    CU_ASSERT(datastore_in_transaction(ds));
    CU_ASSERT_EQUAL(datastore_begin(ds), EINVAL);
    CU_ASSERT(datastore_in_transaction(ds));
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, NULL), EINVAL);
    CU_ASSERT(strstr(datastore_last_error(), "no snapshot") != NULL);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 1, 0), 0);
    CU_ASSERT_EQUAL(datastore_apply(ds, 1, 1, NULL, 1, NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_apply(ds, 1, (uint64_t) DS_SEQ_MAX + 1, &r, 1,
                                    NULL), EINVAL);
    CU_ASSERT(apply(ds, 1, DS_SEQ_MAX, &r, 1));
    CU_ASSERT_EQUAL(datastore_commit(ds), 0);
    CU_ASSERT_FALSE(datastore_in_transaction(ds));
    CU_ASSERT_EQUAL(get_state(ds).position, (uint64_t) DS_SEQ_MAX);

    /* Closing with a transaction open rolls it back. */
    CU_ASSERT_EQUAL(datastore_begin(ds), 0);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 2, 0), 0);
    datastore_close(ds);
    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(get_state(ds).host_epoch, 1);
    CU_ASSERT_EQUAL(get_state(ds).position, (uint64_t) DS_SEQ_MAX);
    datastore_close(ds);

    scratch_destroy(&sc);
}

/* Exactly-once. */

static void
test_duplicates(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_record f1[] = { put("x", "1", 1), put("y", "\"y\"", 1) };
    struct ds_record f2[] = { put("x", "2", 2) };
    struct ds_record f3[] = { put("x", "3", 3), del("y") };
    struct ds_state st;
    bool applied;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 5);

    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 5, 1, f1, 2));
    CU_ASSERT(apply(ds, 5, 2, f2, 1));
    /* Same seq twice in one transaction. */
    CU_ASSERT_FALSE(apply(ds, 5, 2, f2, 1));
    CU_ASSERT_FALSE(apply(ds, 5, 1, f1, 2));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 5, 3, f3, 2));
    CU_ASSERT_FALSE(apply(ds, 5, 1, f1, 2));
    CU_ASSERT_FALSE(apply(ds, 5, 2, f2, 1));
    CU_ASSERT_FALSE(apply(ds, 5, 3, f3, 2));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);

    /* Retransmissions after a restart. */
    ds = open_ds(sc.path);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_FALSE(apply(ds, 5, 1, f1, 2));
    CU_ASSERT_FALSE(apply(ds, 5, 2, f2, 1));
    CU_ASSERT_FALSE(apply(ds, 5, 3, f3, 2));
    applied = true;
    CU_ASSERT_EQUAL(datastore_apply(ds, 5, 0, NULL, 0, &applied), 0);
    CU_ASSERT_FALSE(applied);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    assert_record(ds, "x", "3", 3);
    assert_record(ds, "y", NULL, 0);
    /* The counters prove nothing ran twice: x changed by 3 frames. */
    CU_ASSERT_EQUAL(apply_count(sc.path, "x"), 3);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.position, 3);
    CU_ASSERT_EQUAL(st.frames_applied, 3);
    CU_ASSERT_EQUAL(st.ops_applied, 5);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT frames_applied FROM channel",
                            NULL), 3);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT ops_applied FROM channel",
                            NULL), 5);

    /* Gaps are allowed (a chunked frame lands at its last chunk's seq);
     * anything at or below the new position is then a duplicate. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 5, 10, f2, 1));
    CU_ASSERT_FALSE(apply(ds, 5, 7, f1, 2));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    assert_record(ds, "x", "2", 2);
    assert_record(ds, "y", NULL, 0);
    CU_ASSERT_EQUAL(get_state(ds).position, 10);
    CU_ASSERT_EQUAL(get_state(ds).frames_applied, 4);
    CU_ASSERT_EQUAL(apply_count(sc.path, "x"), 4);

    datastore_close(ds);
    scratch_destroy(&sc);
}

/* A tiny model of the store for random tests. */

#define N_KEYS 40

struct model {
    char *values[N_KEYS];       /* NULL: absent. */
    int64_t versions[N_KEYS];
    bool seen[N_KEYS];
};

static void
model_key(int i, char *buf, size_t size)
{
    snprintf(buf, size, "k/%02d", i);
}

static void
model_put(struct model *m, int i, const char *value, int64_t version)
{
    free(m->values[i]);
    m->values[i] = strdup(value);
    m->versions[i] = version;
    m->seen[i] = true;
}

static void
model_del(struct model *m, int i)
{
    free(m->values[i]);
    m->values[i] = NULL;
}

static void
model_copy(struct model *dst, const struct model *src)
{
    for (int i = 0; i < N_KEYS; i++) {
        free(dst->values[i]);
        dst->values[i] = src->values[i] ? strdup(src->values[i]) : NULL;
        dst->versions[i] = src->versions[i];
        dst->seen[i] = src->seen[i];
    }
}

static void
model_free(struct model *m)
{
    for (int i = 0; i < N_KEYS; i++) {
        model_del(m, i);
    }
}

struct list_check {
    const struct model *m;
    int next;                   /* Next present key index expected. */
    bool ok;
};

static int
list_check_cb(void *lc_, const char *key, const char *value, int64_t version)
{
    struct list_check *lc = lc_;
    char expected[16];

    while (lc->next < N_KEYS && !lc->m->values[lc->next]) {
        lc->next++;
    }
    if (lc->next >= N_KEYS) {
        lc->ok = false;
        return 0;
    }
    model_key(lc->next, expected, sizeof expected);
    if (strcmp(key, expected) || strcmp(value, lc->m->values[lc->next])
        || version != lc->m->versions[lc->next]) {
        lc->ok = false;
    }
    lc->next++;
    return 0;
}

static void
assert_model(struct datastore *ds, const struct model *m)
{
    struct list_check lc = { .m = m, .next = 0, .ok = true };
    uint64_t n = 0;

    for (int i = 0; i < N_KEYS; i++) {
        n += m->values[i] != NULL;
    }
    CU_ASSERT_EQUAL(count(ds), n);
    CU_ASSERT_EQUAL(datastore_list(ds, NULL, list_check_cb, &lc), 0);
    while (lc.next < N_KEYS && !m->values[lc.next]) {
        lc.next++;
    }
    CU_ASSERT(lc.ok && lc.next == N_KEYS);
}

/* Fills 'recs' (of capacity 8) with a random frame and applies it to 'm'.
 * 'vals' holds the value buffers. */
static size_t
random_frame(uint64_t *rng, struct model *m, struct ds_record *recs,
             char keys[8][16], char vals[8][48])
{
    size_t n = unit_random(rng) % 8;

    for (size_t j = 0; j < n; j++) {
        int i = unit_random(rng) % N_KEYS;
        model_key(i, keys[j], sizeof keys[j]);
        if (unit_random(rng) % 4 == 0) {
            recs[j] = del(keys[j]);
            model_del(m, i);
        } else {
            int64_t version = unit_random(rng) % 4;
            snprintf(vals[j], sizeof vals[j], "{\"v\": %"PRIu64"}",
                     unit_random(rng) % 3);
            recs[j] = put(keys[j], vals[j], version);
            model_put(m, i, vals[j], version);
        }
    }
    return n;
}

static void
test_many_frames_one_txn(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct model m = { { NULL } };
    uint64_t rng = 42, ops = 0;
    const int n_frames = 2000;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 3);

    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    for (int f = 1; f <= n_frames; f++) {
        struct ds_record recs[8];
        char keys[8][16], vals[8][48];
        size_t n = random_frame(&rng, &m, recs, keys, vals);

        CU_ASSERT_FATAL(apply(ds, 3, f, recs, n));
        ops += n;
    }
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    assert_model(ds, &m);
    CU_ASSERT_EQUAL(get_state(ds).position, n_frames);
    CU_ASSERT_EQUAL(get_state(ds).frames_applied, n_frames);
    CU_ASSERT_EQUAL(get_state(ds).ops_applied, ops);
    datastore_close(ds);

    ds = open_ds(sc.path);
    assert_model(ds, &m);
    CU_ASSERT_EQUAL(get_state(ds).position, n_frames);
    CU_ASSERT_EQUAL(get_state(ds).ops_applied, ops);
    datastore_close(ds);

    model_free(&m);
    scratch_destroy(&sc);
}

static void
test_rollback(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct change_log log = { 0 };
    struct ds_record f1[] = { put("a", "1", 1), put("b", "2", 1) };
    struct ds_record f2[] = { put("a", "9", 9), del("b"), put("c", "3", 1) };
    struct ds_state st, st2;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, f1, 2));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    st = get_state(ds);

    datastore_set_change_cb(ds, change_log_cb, &log);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 2, f2, 3));
    CU_ASSERT(apply(ds, 1, 3, f1, 2));
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 2, 0), 0);
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, NULL), 0);
    CU_ASSERT_EQUAL(count(ds), 0);
    CU_ASSERT_EQUAL(get_state(ds).host_epoch, 2);
    datastore_rollback(ds);
    CU_ASSERT_FALSE(datastore_in_transaction(ds));
    CU_ASSERT_EQUAL(log.n, 0);

    st2 = get_state(ds);
    CU_ASSERT(state_equal(&st, &st2));
    assert_record(ds, "a", "1", 1);
    assert_record(ds, "b", "2", 1);
    assert_record(ds, "c", NULL, 0);
    CU_ASSERT_EQUAL(apply_count(sc.path, "a"), 1);

    /* Nothing of it reached the file, and no notification on commit of
     * an empty transaction. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(log.n, 0);
    datastore_close(ds);
    ds = open_ds(sc.path);
    st2 = get_state(ds);
    CU_ASSERT(state_equal(&st, &st2));
    assert_record(ds, "a", "1", 1);
    assert_record(ds, "c", NULL, 0);
    /* The same frames still apply, once. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 2, f2, 3));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    assert_record(ds, "a", "9", 9);
    CU_ASSERT_EQUAL(apply_count(sc.path, "a"), 2);
    datastore_close(ds);

    change_log_clear(&log);
    scratch_destroy(&sc);
}

/* Invalid records make the whole frame fail, without effect. */
static void
test_invalid_records(void)
{
    static const char *const bad_utf8[] = {
        "\x80", "a\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80",
        "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x80\x80\x80",
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xfe",
        "\xe2\x82", "\xe2\x28\xa1", "\xf0\x9f\x8e", "ok\xc3",
    };
    struct scratch sc;
    struct datastore *ds;
    char *long_key, *max_key;
    struct ds_state st;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 1);

    long_key = malloc(DS_KEY_MAX + 2);
    memset(long_key, 'k', DS_KEY_MAX + 1);
    long_key[DS_KEY_MAX + 1] = '\0';
    max_key = strdup(long_key);
    max_key[DS_KEY_MAX] = '\0';

    struct ds_record bad[64];
    size_t n_bad = 0;
    bad[n_bad++] = put("", "1", 1);
    bad[n_bad++] = put(NULL, "1", 1);
    bad[n_bad++] = del("");
    bad[n_bad++] = del(NULL);
    bad[n_bad++] = put(long_key, "1", 1);
    bad[n_bad++] = del(long_key);
    bad[n_bad++] = put("k", NULL, 1);
    bad[n_bad++] = (struct ds_record) { .op = 7, .key = "k", .value = "1" };
    bad[n_bad++] = (struct ds_record) { .op = -1, .key = "k", .value = "1" };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
        CU_ASSERT_FATAL(n_bad + 2 <= sizeof bad / sizeof *bad);
        bad[n_bad++] = put(bad_utf8[i], "1", 1);
        bad[n_bad++] = put("k", bad_utf8[i], 1);
    }

    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    for (size_t i = 0; i < n_bad; i++) {
        /* A good record first: it must not survive the bad one. */
        struct ds_record frame[2] = { put("good", "1", 1), bad[i] };
        bool applied = true;

        CU_ASSERT_EQUAL(datastore_apply(ds, 1, 1, frame, 2, &applied),
                        EINVAL);
        CU_ASSERT_FALSE(applied);
        CU_ASSERT(strstr(datastore_last_error(), "record 1") != NULL);
        CU_ASSERT(strstr(datastore_last_error(), "frame 1") != NULL);
        CU_ASSERT(datastore_in_transaction(ds));
    }
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.position, 0);
    CU_ASSERT_EQUAL(st.frames_applied, 0);
    CU_ASSERT_EQUAL(count(ds), 0);

    /* Limits that are fine. */
    struct ds_record good[] = {
        put(max_key, "1", 1),
        put("\xf4\x8f\xbf\xbf", "\"\xef\xbf\xbd\"", 1),
        put("\xc2\x80\xdf\xbf\xe0\xa0\x80", "\"\xf0\x90\x80\x80\"", 1),
        del("never-existed"),
    };
    CU_ASSERT(apply(ds, 1, 1, good, 4));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    assert_record(ds, max_key, "1", 1);
    assert_record(ds, "\xf4\x8f\xbf\xbf", "\"\xef\xbf\xbd\"", 1);
    CU_ASSERT_EQUAL(datastore_get(ds, long_key, NULL, NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_get(ds, "\xc0\x80", NULL, NULL), EINVAL);
    CU_ASSERT_EQUAL(count(ds), 3);
    CU_ASSERT_EQUAL(get_state(ds).position, 1);

    free(long_key);
    free(max_key);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* An SQL error in the middle of a frame (here a trigger an app should
 * never have installed) undoes that frame only. */
static void
test_frame_atomic_on_sql_error(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct change_log log = { 0 };
    struct ds_record f1[] = { put("ok1", "1", 1), put("boom", "2", 1) };
    struct ds_record f2[] = { put("ok2", "3", 1) };
    int error;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 1);
    raw_exec(sc.path, "CREATE TRIGGER boom BEFORE INSERT ON records"
             " WHEN NEW.key = 'boom'"
             " BEGIN SELECT RAISE(ABORT, 'boom refused'); END;");
    datastore_set_change_cb(ds, change_log_cb, &log);

    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, f2, 1));
    error = datastore_apply(ds, 1, 2, f1, 2, NULL);
    CU_ASSERT(error != 0);
    CU_ASSERT(strstr(datastore_last_error(), "boom refused") != NULL);
    CU_ASSERT_FATAL(datastore_in_transaction(ds));
    assert_record(ds, "ok1", NULL, 0);
    assert_record(ds, "ok2", "3", 1);
    CU_ASSERT_EQUAL(get_state(ds).position, 1);
    CU_ASSERT_EQUAL(get_state(ds).frames_applied, 1);
    /* The transaction goes on. */
    struct ds_record f3[] = { put("ok3", "4", 1) };
    CU_ASSERT(apply(ds, 1, 2, f3, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    CU_ASSERT_EQUAL(log.n, 2);
    CU_ASSERT(change_log_has(&log, "ok2", DS_PUT, 1));
    CU_ASSERT(change_log_has(&log, "ok3", DS_PUT, 1));
    CU_ASSERT_FALSE(change_log_has(&log, "ok1", DS_PUT, 1));
    assert_record(ds, "ok1", NULL, 0);
    assert_record(ds, "ok3", "4", 1);
    CU_ASSERT_EQUAL(get_state(ds).position, 2);

    change_log_clear(&log);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* Notifications. */

struct reentry {
    struct datastore *ds;
    int calls;
    int error;
};

/* Starts and commits a transaction from inside the change callback. */
static void
reentry_cb(void *r_, const struct ds_change *c)
{
    struct reentry *r = r_;
    struct ds_record rec = put("echo", "1", 1);
    char *value = NULL;

    r->calls++;
    if (strcmp(c->key, "trigger")) {
        return;
    }
    r->error |= datastore_get(r->ds, "trigger", &value, NULL);
    free(value);
    r->error |= datastore_begin(r->ds);
    r->error |= datastore_apply(r->ds, 1, 100, &rec, 1, NULL);
    r->error |= datastore_commit(r->ds);
}

static void
test_notifications(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct change_log log = { 0 };

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    datastore_set_change_cb(ds, change_log_cb, &log);
    snapshot_begin_commit(ds, 1);
    CU_ASSERT_EQUAL(log.n, 0);

    struct ds_record f1[] = { put("a", "1", 1), put("b", "2", 2) };
    struct ds_record f2[] = {
        put("b", "2", 2),       /* Unchanged: no notification. */
        del("a"),
        del("zz"),              /* Absent: no notification. */
        put("b", "2", 3),       /* Version change only. */
    };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, f1, 2));
    CU_ASSERT(apply(ds, 1, 2, f2, 4));
    CU_ASSERT_EQUAL(log.n, 0);  /* Not before commit. */
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL_FATAL(log.n, 4);
    CU_ASSERT_STRING_EQUAL(log.keys[0], "a");
    CU_ASSERT_EQUAL(log.ops[0], DS_PUT);
    CU_ASSERT_EQUAL(log.versions[0], 1);
    CU_ASSERT_STRING_EQUAL(log.keys[1], "b");
    CU_ASSERT_EQUAL(log.versions[1], 2);
    CU_ASSERT_STRING_EQUAL(log.keys[2], "a");
    CU_ASSERT_EQUAL(log.ops[2], DS_DELETE);
    CU_ASSERT_EQUAL(log.versions[2], 0);
    CU_ASSERT_STRING_EQUAL(log.keys[3], "b");
    CU_ASSERT_EQUAL(log.ops[3], DS_PUT);
    CU_ASSERT_EQUAL(log.versions[3], 3);
    change_log_clear(&log);

    /* Rolled back work never notifies. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 3, f1, 2));
    datastore_rollback(ds);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(log.n, 0);

    /* The callback may read and even write. */
    struct reentry r = { .ds = ds };
    datastore_set_change_cb(ds, reentry_cb, &r);
    struct ds_record f3[] = { put("trigger", "1", 1), put("other", "1", 1) };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 3, f3, 2));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(r.error, 0);
    CU_ASSERT_EQUAL(r.calls, 3);    /* trigger, echo (nested), other. */
    assert_record(ds, "echo", "1", 1);
    CU_ASSERT_EQUAL(get_state(ds).position, 100);

    /* No callback, no notifications, even for an open transaction. */
    datastore_set_change_cb(ds, change_log_cb, &log);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 101, f1, 2));
    datastore_set_change_cb(ds, NULL, NULL);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(log.n, 0);

    datastore_close(ds);
    scratch_destroy(&sc);
}

/* Crash safety: a child process does the work and dies without
 * committing; the parent reopens the file. */

/* Exit codes of a child that failed before its planned death. */
#define CHILD_FAILED 99

static int
run_child(void (*fn)(const char *path), const char *path)
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (!pid) {
        fn(path);
        _exit(CHILD_FAILED);
    }
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    return status;
}

/* A value of 'len' bytes of JSON string text, varying with 'seed'. */
static char *
big_value(size_t len, unsigned int seed)
{
    char *v = malloc(len + 1);

    v[0] = '"';
    for (size_t i = 1; i < len - 1; i++) {
        v[i] = 'a' + (i * 7 + seed) % 26;
    }
    v[len - 1] = '"';
    v[len] = '\0';
    return v;
}

static void
child_die(bool kill9)
{
    if (kill9) {
        kill(getpid(), SIGKILL);
    }
    _exit(0);
}

/* Applies frames 4..7 with 2 MiB values (more than SQLite's page cache,
 * so uncommitted pages spill into the WAL) and a snapshot, then dies. */
static void
child_big_uncommitted(const char *path, bool kill9)
{
    struct datastore *ds;

    if (datastore_open(path, &ds) || datastore_begin(ds)) {
        _exit(CHILD_FAILED);
    }
    for (int f = 4; f <= 7; f++) {
        char *v = big_value(2 * 1024 * 1024, f);
        struct ds_record recs[] = { put("a", v, f), del("b"),
                                    put("new", v, f) };
        bool applied;

        if (datastore_apply(ds, 5, f, recs, 3, &applied) || !applied) {
            _exit(CHILD_FAILED);
        }
        free(v);
    }
    if (datastore_snapshot_begin(ds, 6, 0)
        || datastore_snapshot_finish(ds, NULL)) {
        _exit(CHILD_FAILED);
    }
    child_die(kill9);
}

static void
child_exit(const char *path)
{
    child_big_uncommitted(path, false);
}

static void
child_kill(const char *path)
{
    child_big_uncommitted(path, true);
}

/* Commits frame 4, then dies in the middle of frame 5's transaction. */
static void
child_commit_then_kill(const char *path)
{
    struct datastore *ds;
    struct ds_record r4[] = { put("c", "4", 4) };
    struct ds_record r5[] = { put("c", "5", 5), put("d", "5", 5) };
    bool applied;

    if (datastore_open(path, &ds)
        || datastore_begin(ds)
        || datastore_apply(ds, 5, 4, r4, 1, &applied) || !applied
        || datastore_commit(ds)
        || datastore_begin(ds)
        || datastore_apply(ds, 5, 5, r5, 2, &applied) || !applied) {
        _exit(CHILD_FAILED);
    }
    child_die(true);
}

/* Builds epoch 5, position 3, records a and b. */
static void
crash_setup(const char *path, struct ds_state *st)
{
    struct datastore *ds = open_ds(path);
    struct ds_record f[] = { put("a", "1", 1), put("b", "2", 2) };

    snapshot_begin_commit(ds, 5);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 5, 1, f, 2));
    CU_ASSERT(apply(ds, 5, 2, f, 1));
    CU_ASSERT(apply(ds, 5, 3, NULL, 0));
    CU_ASSERT_FATAL(datastore_snapshot_finish(ds, NULL) == 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    *st = get_state(ds);
    datastore_close(ds);
}

static void
assert_crash_setup_state(const char *path, const struct ds_state *st0)
{
    struct datastore *ds = open_ds(path);
    struct ds_state st = get_state(ds);

    CU_ASSERT(state_equal(&st, st0));
    CU_ASSERT_EQUAL(st.position, 3);
    CU_ASSERT_EQUAL(st.host_epoch, 5);
    assert_record(ds, "a", "1", 1);
    assert_record(ds, "b", "2", 2);
    assert_record(ds, "new", NULL, 0);
    CU_ASSERT_EQUAL(count(ds), 2);
    CU_ASSERT_EQUAL(datastore_check(ds), 0);
    CU_ASSERT_EQUAL(apply_count(path, "a"), 1);

    /* Frame 4 was never applied, so it applies now, once. */
    struct ds_record r = put("a", "4", 4);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 5, 4, &r, 1));
    CU_ASSERT_FALSE(apply(ds, 5, 4, &r, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(apply_count(path, "a"), 2);
    datastore_close(ds);
}

static void
test_crash_exit_uncommitted(void)
{
    struct scratch sc;
    struct ds_state st0;
    int status;

    scratch_init(&sc, "ds");
    crash_setup(sc.path, &st0);
    status = run_child(child_exit, sc.path);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_crash_setup_state(sc.path, &st0);
    scratch_destroy(&sc);
}

static void
test_crash_kill_uncommitted(void)
{
    struct scratch sc;
    struct ds_state st0;
    int status;

    scratch_init(&sc, "ds");
    crash_setup(sc.path, &st0);
    status = run_child(child_kill, sc.path);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_crash_setup_state(sc.path, &st0);
    scratch_destroy(&sc);
}

static void
test_crash_after_commit(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_state st0, st;
    int status;

    scratch_init(&sc, "ds");
    crash_setup(sc.path, &st0);
    status = run_child(child_commit_then_kill, sc.path);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    ds = open_ds(sc.path);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.position, 4);
    CU_ASSERT_EQUAL(st.frames_applied, st0.frames_applied + 1);
    CU_ASSERT_EQUAL(st.ops_applied, st0.ops_applied + 1);
    assert_record(ds, "c", "4", 4);
    assert_record(ds, "d", NULL, 0);
    CU_ASSERT_EQUAL(count(ds), 3);

    /* The host retransmits 4 and 5: only 5 applies. */
    struct ds_record r4[] = { put("c", "4", 4) };
    struct ds_record r5[] = { put("c", "5", 5), put("d", "5", 5) };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_FALSE(apply(ds, 5, 4, r4, 1));
    CU_ASSERT(apply(ds, 5, 5, r5, 2));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(apply_count(sc.path, "c"), 2);
    CU_ASSERT_EQUAL(apply_count(sc.path, "d"), 1);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* Snapshots. */

/* Builds records a..e (versions 1) in host epoch 1. */
static struct datastore *
snapshot_setup(const char *path)
{
    struct datastore *ds = open_ds(path);
    struct ds_record f[] = {
        put("a", "\"a\"", 1), put("b", "\"b\"", 1), put("c", "\"c\"", 1),
        put("d", "\"d\"", 1), put("e", "\"e\"", 1),
    };

    snapshot_begin_commit(ds, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, f, 5));
    CU_ASSERT_FATAL(datastore_snapshot_finish(ds, NULL) == 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    return ds;
}

static void
test_snapshot_reconcile(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct change_log log = { 0 };
    struct ds_state st;
    uint64_t n_deleted = 99;
    char *state;

    scratch_init(&sc, "ds");
    ds = snapshot_setup(sc.path);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_COMPLETE);
    CU_ASSERT_EQUAL(st.snapshot_gen, 1);
    datastore_set_change_cb(ds, change_log_cb, &log);

    /* A new host epoch: b unchanged, c changed, f new, e unchanged. */
    struct ds_record s1[] = {
        put("b", "\"b\"", 1), put("c", "\"C\"", 2), put("f", "\"f\"", 1),
    };
    struct ds_record s2[] = { put("e", "\"e\"", 1) };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 2, 0), 0);
    CU_ASSERT(apply(ds, 2, 1, s1, 3));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    state = raw_text(sc.path, "SELECT snapshot_state FROM channel");
    CU_ASSERT_STRING_EQUAL(state, "active");
    free(state);
    CU_ASSERT_EQUAL(count(ds), 6);    /* Nothing deleted yet. */

    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 2, 2, s2, 1));
    /* Frames of the old epoch are stale now. */
    CU_ASSERT_EQUAL(datastore_apply(ds, 1, 2, s2, 1, NULL), ESTALE);
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, &n_deleted), 0);
    CU_ASSERT_EQUAL(n_deleted, 2);
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, NULL), EINVAL);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    assert_record(ds, "a", NULL, 0);
    assert_record(ds, "b", "\"b\"", 1);
    assert_record(ds, "c", "\"C\"", 2);
    assert_record(ds, "d", NULL, 0);
    assert_record(ds, "e", "\"e\"", 1);
    assert_record(ds, "f", "\"f\"", 1);
    CU_ASSERT_EQUAL(count(ds), 4);
    CU_ASSERT_EQUAL(apply_count(sc.path, "b"), 1);   /* Not rewritten. */
    CU_ASSERT_EQUAL(apply_count(sc.path, "c"), 2);

    st = get_state(ds);
    CU_ASSERT_EQUAL(st.host_epoch, 2);
    CU_ASSERT_EQUAL(st.position, 2);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_COMPLETE);
    CU_ASSERT_EQUAL(st.snapshot_gen, 2);
    state = raw_text(sc.path, "SELECT snapshot_state FROM channel");
    CU_ASSERT_STRING_EQUAL(state, "complete");
    free(state);

    /* c and f changed; a and d were deleted by the reconcile. */
    CU_ASSERT_EQUAL(log.n, 4);
    CU_ASSERT(change_log_has(&log, "c", DS_PUT, 2));
    CU_ASSERT(change_log_has(&log, "f", DS_PUT, 1));
    CU_ASSERT(change_log_has(&log, "a", DS_DELETE, 0));
    CU_ASSERT(change_log_has(&log, "d", DS_DELETE, 0));
    change_log_clear(&log);

    /* Deltas after the snapshot do not disturb it; a later snapshot that
     * sends nothing deletes everything. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 2, 3, s1, 3));
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 3, 0), 0);
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, &n_deleted), 0);
    CU_ASSERT_EQUAL(n_deleted, 4);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(count(ds), 0);
    CU_ASSERT_EQUAL(log.n, 4);
    change_log_clear(&log);

    datastore_close(ds);
    scratch_destroy(&sc);
}

static void
test_snapshot_interrupted(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_state st;
    uint64_t n_deleted;

    scratch_init(&sc, "ds");
    ds = snapshot_setup(sc.path);

    /* First attempt: sees a, b, x; interrupted (closed) before finish. */
    struct ds_record s1[] = {
        put("a", "\"a\"", 1), put("b", "\"b2\"", 2), put("x", "1", 1),
    };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 2, 0), 0);
    CU_ASSERT(apply(ds, 2, 1, s1, 3));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);

    ds = open_ds(sc.path);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_ACTIVE);
    CU_ASSERT_EQUAL(st.host_epoch, 2);
    CU_ASSERT_EQUAL(st.position, 1);
    CU_ASSERT_EQUAL(st.snapshot_gen, 2);
    CU_ASSERT_EQUAL(count(ds), 6);    /* Old records kept meanwhile. */
    assert_record(ds, "b", "\"b2\"", 2);

    /* The host starts over in a new epoch; this time only b and c. */
    struct ds_record s2[] = { put("b", "\"b2\"", 2), put("c", "\"c\"", 1) };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 3, 0), 0);
    CU_ASSERT(apply(ds, 3, 1, s2, 2));
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, &n_deleted), 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    /* a and x were seen by the abandoned attempt only. */
    CU_ASSERT_EQUAL(n_deleted, 4);
    assert_record(ds, "a", NULL, 0);
    assert_record(ds, "x", NULL, 0);
    assert_record(ds, "b", "\"b2\"", 2);
    assert_record(ds, "c", "\"c\"", 1);
    CU_ASSERT_EQUAL(count(ds), 2);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_COMPLETE);
    CU_ASSERT_EQUAL(st.snapshot_gen, 3);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* Snapshot batch 1 committed, then killed in the middle of batch 2. */
static void
child_snapshot_kill(const char *path)
{
    struct datastore *ds;
    struct ds_record b1[] = { put("b", "\"B\"", 2), put("y", "1", 1) };
    struct ds_record b2[] = { put("c", "\"c\"", 1) };
    bool applied;

    if (datastore_open(path, &ds)
        || datastore_begin(ds)
        || datastore_snapshot_begin(ds, 9, 0)
        || datastore_apply(ds, 9, 1, b1, 2, &applied) || !applied
        || datastore_commit(ds)
        || datastore_begin(ds)
        || datastore_apply(ds, 9, 2, b2, 1, &applied) || !applied
        || datastore_snapshot_finish(ds, NULL)) {
        _exit(CHILD_FAILED);
    }
    child_die(true);
}

static void
test_snapshot_crash_resume(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_state st;
    uint64_t n_deleted;
    int status;

    scratch_init(&sc, "ds");
    ds = snapshot_setup(sc.path);
    datastore_close(ds);

    status = run_child(child_snapshot_kill, sc.path);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* Never 'complete': still active at batch 1, nothing deleted. */
    ds = open_ds(sc.path);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_ACTIVE);
    CU_ASSERT_EQUAL(st.host_epoch, 9);
    CU_ASSERT_EQUAL(st.position, 1);
    CU_ASSERT_EQUAL(count(ds), 6);
    assert_record(ds, "b", "\"B\"", 2);
    assert_record(ds, "y", "1", 1);

    /* The host resumes from position 1: batch 1 again is a duplicate. */
    struct ds_record b1[] = { put("b", "\"B\"", 2), put("y", "1", 1) };
    struct ds_record b2[] = { put("c", "\"c\"", 1) };
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_FALSE(apply(ds, 9, 1, b1, 2));
    CU_ASSERT(apply(ds, 9, 2, b2, 1));
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, &n_deleted), 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(n_deleted, 3);    /* a, d, e. */
    assert_record(ds, "b", "\"B\"", 2);
    assert_record(ds, "c", "\"c\"", 1);
    assert_record(ds, "y", "1", 1);
    CU_ASSERT_EQUAL(count(ds), 3);
    CU_ASSERT_EQUAL(get_state(ds).snapshot, DS_SNAPSHOT_COMPLETE);
    datastore_close(ds);
    scratch_destroy(&sc);
}

static void
test_snapshot_rules_and_rebase(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_state st;
    struct ds_record r = put("k", "1", 1);

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 0, 0), EINVAL);
    CU_ASSERT_EQUAL(datastore_rebase(ds, 0, 0), EINVAL);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 1, (uint64_t) DS_SEQ_MAX
                                             + 1), EINVAL);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 4, 10), 0);
    CU_ASSERT_FALSE(apply(ds, 4, 10, &r, 1));
    CU_ASSERT(apply(ds, 4, 11, &r, 1));
    /* The position never goes back within one host epoch. */
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 4, 5), EINVAL);
    CU_ASSERT(strstr(datastore_last_error(), "behind") != NULL);
    CU_ASSERT_EQUAL(datastore_rebase(ds, 4, 10), EINVAL);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 4, 11), 0);
    CU_ASSERT_EQUAL(get_state(ds).snapshot_gen, 2);
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, NULL), 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    assert_record(ds, "k", NULL, 0);    /* Not re-sent in snapshot 2. */

    /* Rebase: new epoch, position as told, records untouched. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 4, 12, &r, 1));
    CU_ASSERT_EQUAL(datastore_rebase(ds, 8, 100), 0);
    CU_ASSERT_EQUAL(datastore_apply(ds, 4, 13, &r, 1, NULL), ESTALE);
    CU_ASSERT_FALSE(apply(ds, 8, 100, &r, 1));
    struct ds_record r2 = put("k", "2", 2);
    CU_ASSERT(apply(ds, 8, 101, &r2, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.host_epoch, 8);
    CU_ASSERT_EQUAL(st.position, 101);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_COMPLETE);
    assert_record(ds, "k", "2", 2);

    /* Rebase to the same epoch, forward: fine. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_rebase(ds, 8, 200), 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(get_state(ds).position, 200);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* The snapshot's end seq is kept in the channel row. */
static void
test_snapshot_end(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_record r = put("k", "1", 1);

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(get_state(ds).snapshot_end, 0);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT snapshot_end FROM channel",
                            NULL), 0);

    /* Outside a transaction, or with no active snapshot: refused. */
    CU_ASSERT_EQUAL(datastore_set_snapshot_end(ds, 5), EINVAL);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_set_snapshot_end(ds, 5), EINVAL);
    CU_ASSERT(strstr(datastore_last_error(), "no snapshot") != NULL);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 3, 0), 0);
    CU_ASSERT_EQUAL(datastore_set_snapshot_end(ds, (uint64_t) DS_SEQ_MAX
                                               + 1), EINVAL);
    CU_ASSERT_EQUAL(get_state(ds).snapshot_end, 0);
    CU_ASSERT_EQUAL(datastore_set_snapshot_end(ds, 7), 0);
    CU_ASSERT_EQUAL(get_state(ds).snapshot_end, 7);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    /* Durable, and it survives a reopen. */
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT snapshot_end FROM channel",
                            NULL), 7);
    datastore_close(ds);
    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(get_state(ds).snapshot_end, 7);
    CU_ASSERT_EQUAL(get_state(ds).snapshot, DS_SNAPSHOT_ACTIVE);

    /* A rolled back change does not stick. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_set_snapshot_end(ds, 9), 0);
    datastore_rollback(ds);
    CU_ASSERT_EQUAL(get_state(ds).snapshot_end, 7);

    /* Applying keeps it; finishing keeps it; a new snapshot resets it. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 3, 7, &r, 1));
    CU_ASSERT_EQUAL(get_state(ds).snapshot_end, 7);
    CU_ASSERT_EQUAL(datastore_snapshot_finish(ds, NULL), 0);
    CU_ASSERT_EQUAL(get_state(ds).snapshot_end, 7);
    CU_ASSERT_EQUAL(datastore_set_snapshot_end(ds, 8), EINVAL);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_snapshot_begin(ds, 4, 0), 0);
    CU_ASSERT_EQUAL(get_state(ds).snapshot_end, 0);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);

    /* A negative value in the file is refused at open. */
    raw_exec(sc.path, "PRAGMA ignore_check_constraints = ON;"
             "UPDATE channel SET snapshot_end = -1");
    CU_ASSERT_EQUAL(datastore_open(sc.path, &ds), EBADMSG);
    CU_ASSERT_PTR_NULL(ds);
    scratch_destroy(&sc);
}

/* Odd keys and values; listing. */

struct collect {
    size_t n;
    char *keys[64];
    int stop_at;                /* Return 42 after this many (0: never). */
};

static int
collect_cb(void *c_, const char *key, const char *value, int64_t version)
{
    struct collect *c = c_;

    if (c->n < 64) {
        c->keys[c->n++] = strdup(key);
    }
    return c->stop_at && (int) c->n >= c->stop_at ? 42 : 0;
}

static void
collect_clear(struct collect *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->keys[i]);
    }
    c->n = 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
test_odd_keys(void)
{
    static const char *const keys[] = {
        "it's", "\"quoted\"", "'; DROP TABLE records; --", "%", "_", "a%b",
        "axb", "a_b", "back\\slash",
        "na\xc3\xafve/\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87",
        "\xe9\x94\xae", "\xe9\x94\xae/2", "\xf0\x9f\x8e\x89",
        "tab\there", "new\nline", " ", "app/1", "app/2", "app0", "ap",
        "\x7f", "\x01",
    };
    enum { N = sizeof keys / sizeof keys[0] };
    struct scratch sc;
    struct datastore *ds;
    struct ds_record recs[N];
    char values[N][64];
    struct collect c = { 0 };
    const char *sorted[N];

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 1);
    for (size_t i = 0; i < N; i++) {
        snprintf(values[i], sizeof values[i],
                 "{\"i\": %zu, \"s\": \"\xc3\xa9\\\"'\"}", i);
        recs[i] = put(keys[i], values[i], i);
    }
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, recs, N));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);

    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(count(ds), N);
    for (size_t i = 0; i < N; i++) {
        assert_record(ds, keys[i], values[i], i);
    }
    /* Apps query by key with ordinary SQL. */
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT version FROM records "
                            "WHERE key = ?1", "'; DROP TABLE records; --"),
                    2);

    /* Listing everything comes in bytewise order. */
    memcpy(sorted, keys, sizeof sorted);
    qsort(sorted, N, sizeof *sorted, cmp_str);
    CU_ASSERT_EQUAL(datastore_list(ds, NULL, collect_cb, &c), 0);
    CU_ASSERT_EQUAL_FATAL(c.n, N);
    for (size_t i = 0; i < N; i++) {
        CU_ASSERT_STRING_EQUAL(c.keys[i], sorted[i]);
    }
    collect_clear(&c);
    CU_ASSERT_EQUAL(datastore_list(ds, "", collect_cb, &c), 0);
    CU_ASSERT_EQUAL(c.n, N);
    collect_clear(&c);

    /* Prefixes are literal: no LIKE wildcards. */
    CU_ASSERT_EQUAL(datastore_list(ds, "app/", collect_cb, &c), 0);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT_STRING_EQUAL(c.keys[0], "app/1");
    CU_ASSERT_STRING_EQUAL(c.keys[1], "app/2");
    collect_clear(&c);
    CU_ASSERT_EQUAL(datastore_list(ds, "a%", collect_cb, &c), 0);
    CU_ASSERT_EQUAL_FATAL(c.n, 1);
    CU_ASSERT_STRING_EQUAL(c.keys[0], "a%b");
    collect_clear(&c);
    CU_ASSERT_EQUAL(datastore_list(ds, "_", collect_cb, &c), 0);
    CU_ASSERT_EQUAL(c.n, 1);
    collect_clear(&c);
    CU_ASSERT_EQUAL(datastore_list(ds, "ap", collect_cb, &c), 0);
    CU_ASSERT_EQUAL(c.n, 4);    /* ap, app/1, app/2, app0. */
    collect_clear(&c);
    CU_ASSERT_EQUAL(datastore_list(ds, "\xe9\x94\xae", collect_cb, &c), 0);
    CU_ASSERT_EQUAL(c.n, 2);
    collect_clear(&c);
    CU_ASSERT_EQUAL(datastore_list(ds, "\xf0\x9f", collect_cb, &c), 0);
    CU_ASSERT_EQUAL(c.n, 1);
    collect_clear(&c);
    CU_ASSERT_EQUAL(datastore_list(ds, "\xff\xff", collect_cb, &c), 0);
    CU_ASSERT_EQUAL(c.n, 0);
    CU_ASSERT_EQUAL(datastore_list(ds, "zzz", collect_cb, &c), 0);
    CU_ASSERT_EQUAL(c.n, 0);

    /* A callback can stop the listing. */
    c.stop_at = 3;
    CU_ASSERT_EQUAL(datastore_list(ds, NULL, collect_cb, &c), 42);
    CU_ASSERT_EQUAL(c.n, 3);
    collect_clear(&c);

    datastore_close(ds);
    scratch_destroy(&sc);
}

struct nested {
    struct datastore *ds;
    int list_error, begin_error, get_error;
};

static int
nested_cb(void *n_, const char *key, const char *value, int64_t version)
{
    struct nested *n = n_;
    struct collect c = { 0 };

    n->list_error = datastore_list(n->ds, NULL, collect_cb, &c);
    n->begin_error = datastore_begin(n->ds);
    n->get_error = datastore_get(n->ds, key, NULL, NULL);
    collect_clear(&c);
    return 0;
}

static void
test_list_reentry(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct nested n = { 0 };
    struct ds_record r = put("k", "1", 1);

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, &r, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    n.ds = ds;
    CU_ASSERT_EQUAL(datastore_list(ds, NULL, nested_cb, &n), 0);
    CU_ASSERT_EQUAL(n.list_error, EBUSY);
    CU_ASSERT_EQUAL(n.begin_error, EBUSY);
    CU_ASSERT_EQUAL(n.get_error, 0);
    CU_ASSERT_FALSE(datastore_in_transaction(ds));

    /* And writes inside a listing within a transaction. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_list(ds, NULL, nested_cb, &n), 0);
    CU_ASSERT_EQUAL(n.begin_error, EBUSY);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);
    scratch_destroy(&sc);
}

static void
test_large_value(void)
{
    const size_t len = 8 * 1024 * 1024;
    struct scratch sc;
    struct datastore *ds;
    char *v1 = big_value(len, 1);
    char *v2 = big_value(len, 2);
    char *got = NULL;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 1);
    struct ds_record r1 = put("big", v1, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, &r1, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);

    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL_FATAL(datastore_get(ds, "big", &got, NULL), 0);
    CU_ASSERT_EQUAL(strlen(got), len);
    CU_ASSERT(!strcmp(got, v1));
    free(got);

    /* Same value again: not rewritten.  A different one: rewritten. */
    struct ds_record r2 = put("big", v2, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 2, &r1, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(apply_count(sc.path, "big"), 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 3, &r2, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(apply_count(sc.path, "big"), 2);
    got = NULL;
    CU_ASSERT_EQUAL_FATAL(datastore_get(ds, "big", &got, NULL), 0);
    CU_ASSERT(!strcmp(got, v2));
    free(got);
    CU_ASSERT_EQUAL(datastore_check(ds), 0);
    datastore_close(ds);

    free(v1);
    free(v2);
    scratch_destroy(&sc);
}

static void
test_sync_normal(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct datastore_options opts = { .sync = DS_SYNC_NORMAL };
    struct ds_record r = put("k", "1", 1);

    scratch_init(&sc, "ds");
    CU_ASSERT_FATAL(datastore_open_opts(sc.path, &opts, &ds) == 0);
    snapshot_begin_commit(ds, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, &r, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);

    ds = open_ds(sc.path);
    assert_record(ds, "k", "1", 1);
    CU_ASSERT_EQUAL(get_state(ds).position, 1);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* A guest app reading with plain SQLite, holding a read transaction,
 * does not block the daemon and sees consistent snapshots (WAL). */
static void
test_concurrent_reader(void)
{
    struct scratch sc;
    struct datastore *ds;
    sqlite3 *app;
    sqlite3_stmt *s;
    struct ds_record r1 = put("k", "1", 1), r2 = put("k", "2", 2);

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 1, &r1, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    CU_ASSERT_FATAL(sqlite3_open_v2(sc.path, &app, SQLITE_OPEN_READONLY,
                                    NULL) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(app, "BEGIN", NULL, NULL, NULL)
                    == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_prepare_v2(app, "SELECT value FROM records "
                                       "WHERE key = 'k'", -1, &s, NULL)
                    == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_step(s) == SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *) sqlite3_column_text(s, 0), "1");
    sqlite3_reset(s);

    /* The daemon commits while the app's read transaction is open. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 1, 2, &r2, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);

    CU_ASSERT_FATAL(sqlite3_step(s) == SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *) sqlite3_column_text(s, 0), "1");
    sqlite3_reset(s);
    CU_ASSERT_FATAL(sqlite3_exec(app, "COMMIT", NULL, NULL, NULL)
                    == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_step(s) == SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *) sqlite3_column_text(s, 0), "2");
    sqlite3_finalize(s);
    sqlite3_close(app);

    datastore_close(ds);
    scratch_destroy(&sc);
}

/* A second writer gets EBUSY instead of corrupting anything. */
static void
test_second_writer_busy(void)
{
    struct scratch sc;
    struct datastore *a, *b;
    struct ds_record r = put("k", "1", 1);

    scratch_init(&sc, "ds");
    a = open_ds(sc.path);
    b = open_ds(sc.path);
    snapshot_begin_commit(a, 1);
    CU_ASSERT_FATAL(datastore_begin(a) == 0);
    CU_ASSERT_EQUAL(datastore_begin(b), EBUSY);
    CU_ASSERT(strstr(datastore_last_error(), "beginning transaction")
              != NULL);
    CU_ASSERT_FALSE(datastore_in_transaction(b));
    CU_ASSERT(apply(a, 1, 1, &r, 1));
    CU_ASSERT_FATAL(datastore_commit(a) == 0);

    /* b reloads the channel row at begin, so it sees a's position. */
    CU_ASSERT_FATAL(datastore_begin(b) == 0);
    CU_ASSERT_EQUAL(get_state(b).position, 1);
    CU_ASSERT_FALSE(apply(b, 1, 1, &r, 1));
    datastore_rollback(b);
    datastore_close(a);
    datastore_close(b);
    scratch_destroy(&sc);
}

/* Random operations against the model: transactions committed or rolled
 * back, duplicates, stale epochs, snapshots, reopens. */
static void
test_random_model(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct model m = { { NULL } }, committed = { { NULL } };
    uint64_t rng = 0x5eed;
    uint32_t epoch = 1;
    uint64_t seq = 0, committed_seq = 0;
    uint32_t committed_epoch = 1;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    snapshot_begin_commit(ds, epoch);

    for (int round = 0; round < 300; round++) {
        bool snapshot = unit_random(&rng) % 10 == 0;

        CU_ASSERT_FATAL(datastore_begin(ds) == 0);
        if (snapshot) {
            epoch++;
            seq = 0;
            CU_ASSERT_FATAL(datastore_snapshot_begin(ds, epoch, 0) == 0);
            for (int i = 0; i < N_KEYS; i++) {
                m.seen[i] = false;
            }
        }
        int n_frames = unit_random(&rng) % 5;
        for (int f = 0; f < n_frames; f++) {
            struct ds_record recs[8];
            char keys[8][16], vals[8][48];
            size_t n = random_frame(&rng, &m, recs, keys, vals);

            CU_ASSERT_FATAL(apply(ds, epoch, ++seq, recs, n));
            /* Duplicates and stale frames change nothing. */
            if (unit_random(&rng) % 3 == 0) {
                CU_ASSERT_FATAL(!apply(ds, epoch, seq - unit_random(&rng)
                                       % (seq + 1), recs, n));
            }
            if (epoch > 1 && unit_random(&rng) % 5 == 0) {
                CU_ASSERT_FATAL(datastore_apply(ds, epoch - 1, seq + 1, recs,
                                                n, NULL) == ESTALE);
            }
        }
        if (snapshot) {
            for (int i = 0; i < N_KEYS; i++) {
                if (!m.seen[i]) {
                    model_del(&m, i);
                }
            }
            CU_ASSERT_FATAL(datastore_snapshot_finish(ds, NULL) == 0);
        }
        assert_model(ds, &m);

        if (unit_random(&rng) % 4 == 0) {
            datastore_rollback(ds);
            model_copy(&m, &committed);
            seq = committed_seq;
            epoch = committed_epoch;
        } else {
            CU_ASSERT_FATAL(datastore_commit(ds) == 0);
            model_copy(&committed, &m);
            committed_seq = seq;
            committed_epoch = epoch;
        }
        if (unit_random(&rng) % 20 == 0) {
            datastore_close(ds);
            ds = open_ds(sc.path);
        }
        assert_model(ds, &m);
        CU_ASSERT_EQUAL(get_state(ds).position, seq);
        CU_ASSERT_EQUAL(get_state(ds).host_epoch, epoch);
    }
    datastore_close(ds);
    model_free(&m);
    model_free(&committed);
    scratch_destroy(&sc);
}

/* Published records (the upstream direction). */

/* Publishes 'value' as 'key', asserting success; returns the version. */
static int64_t
publish_ok(struct datastore *ds, const char *key, const char *value)
{
    int64_t version = -1;
    int error = datastore_publish(ds, key, value, &version);

    if (error) {
        fprintf(stderr, "datastore_publish: %s\n", datastore_last_error());
    }
    CU_ASSERT_FATAL(error == 0);
    CU_ASSERT_FATAL(version >= 1);
    return version;
}

static int64_t
unpublish_ok(struct datastore *ds, const char *key)
{
    int64_t version = -1;
    int error = datastore_unpublish(ds, key, &version);

    if (error) {
        fprintf(stderr, "datastore_unpublish: %s\n",
                datastore_last_error());
    }
    CU_ASSERT_FATAL(error == 0);
    return version;
}

/* Asserts that published 'key' holds 'value' (NULL: a tombstone) at
 * 'version' with 'acked'. */
static void
assert_published(struct datastore *ds, const char *key, const char *value,
                 int64_t version, int64_t acked)
{
    char *got = (char *) "untouched";
    int64_t got_version = -1, got_acked = -1;
    bool deleted = !value;
    int error = datastore_get_published(ds, key, &got, &got_version,
                                        &got_acked, &deleted);

    CU_ASSERT_EQUAL_FATAL(error, 0);
    if (value) {
        CU_ASSERT_FALSE(deleted);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_STRING_EQUAL(got, value);
    } else {
        CU_ASSERT_TRUE(deleted);
        CU_ASSERT_PTR_NULL(got);
    }
    CU_ASSERT_EQUAL(got_version, version);
    CU_ASSERT_EQUAL(got_acked, acked);
    free(got);
}

static void
assert_no_published(struct datastore *ds, const char *key)
{
    int64_t version = -1;

    CU_ASSERT_EQUAL(datastore_get_published(ds, key, NULL, &version, NULL,
                                            NULL), ENOENT);
    CU_ASSERT_EQUAL(version, -1);
}

static struct ds_pub_counts
pub_counts(struct datastore *ds, const char *prefix)
{
    struct ds_pub_counts c = { 99, 99, 99 };

    CU_ASSERT_FATAL(datastore_list_published(ds, prefix, true, NULL, NULL,
                                             &c) == 0);
    return c;
}

static uint64_t
pending(struct datastore *ds)
{
    uint64_t n = 12345;

    CU_ASSERT_FATAL(datastore_count_pending(ds, &n) == 0);
    return n;
}

/* Collects what a published listing passes to its callback, as
 * "key=value@version/acked" lines ("key=-@..." for a tombstone). */
struct pub_log {
    char text[8192];
    size_t n;
    int stop_after;             /* Return 77 after this many (0: never). */
};

static int
pub_log_cb(void *log_, const struct ds_published *p)
{
    struct pub_log *log = log_;
    size_t len = strlen(log->text);

    snprintf(log->text + len, sizeof log->text - len,
             "%s=%s@%"PRId64"/%"PRId64"\n", p->key,
             p->value ? p->value : "-", p->version, p->acked_version);
    CU_ASSERT(p->deleted == !p->value);
    log->n++;
    return log->stop_after && (int) log->n >= log->stop_after ? 77 : 0;
}

static void
test_published_basic(void)
{
    struct change_log log = { 0 };
    struct pub_log pl;
    struct scratch sc;
    struct datastore *ds;
    uint64_t removed;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    datastore_set_change_cb(ds, change_log_cb, &log);
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 0);
    CU_ASSERT_EQUAL(pending(ds), 0);

    /* Versions come from one counter that only grows. */
    CU_ASSERT_EQUAL(publish_ok(ds, "app/a", "1"), 1);
    CU_ASSERT_EQUAL(publish_ok(ds, "app/b", "{\"x\": [1, 2]}"), 2);
    CU_ASSERT_EQUAL(publish_ok(ds, "app/a", "\"again\""), 3);
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 3);
    assert_published(ds, "app/a", "\"again\"", 3, 0);
    assert_published(ds, "app/b", "{\"x\":[1,2]}", 2, 0);  /* Compact. */
    CU_ASSERT_EQUAL(pending(ds), 2);

    /* Withdrawal: a tombstone with a new version. */
    CU_ASSERT_EQUAL(unpublish_ok(ds, "app/b"), 4);
    assert_published(ds, "app/b", NULL, 4, 0);
    CU_ASSERT_EQUAL(datastore_unpublish(ds, "app/b", NULL), ENOENT);
    CU_ASSERT_EQUAL(datastore_unpublish(ds, "nope", NULL), ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "nope"));
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 4);
    struct ds_pub_counts c = pub_counts(ds, NULL);
    CU_ASSERT_EQUAL(c.records, 1);
    CU_ASSERT_EQUAL(c.withdrawn, 1);
    CU_ASSERT_EQUAL(c.pending, 2);

    /* Listing: key order, tombstones on request, prefix, stop. */
    memset(&pl, 0, sizeof pl);
    CU_ASSERT_EQUAL(datastore_list_published(ds, NULL, true, pub_log_cb,
                                             &pl, NULL), 0);
    CU_ASSERT_STRING_EQUAL(pl.text, "app/a=\"again\"@3/0\napp/b=-@4/0\n");
    memset(&pl, 0, sizeof pl);
    CU_ASSERT_EQUAL(datastore_list_published(ds, "app/", false, pub_log_cb,
                                             &pl, &c), 0);
    CU_ASSERT_STRING_EQUAL(pl.text, "app/a=\"again\"@3/0\n");
    CU_ASSERT_EQUAL(c.records, 1);
    CU_ASSERT_EQUAL(c.withdrawn, 1);
    memset(&pl, 0, sizeof pl);
    CU_ASSERT_EQUAL(datastore_list_published(ds, "zzz", true, pub_log_cb,
                                             &pl, &c), 0);
    CU_ASSERT_EQUAL(pl.n, 0);
    CU_ASSERT_EQUAL(c.records + c.withdrawn + c.pending, 0);
    memset(&pl, 0, sizeof pl);
    pl.stop_after = 1;
    CU_ASSERT_EQUAL(datastore_list_published(ds, NULL, true, pub_log_cb,
                                             &pl, NULL), 77);

    /* Changed since a version, in version order. */
    memset(&pl, 0, sizeof pl);
    CU_ASSERT_EQUAL(datastore_published_since(ds, 0, 0, pub_log_cb, &pl),
                    0);
    CU_ASSERT_STRING_EQUAL(pl.text, "app/a=\"again\"@3/0\napp/b=-@4/0\n");
    memset(&pl, 0, sizeof pl);
    CU_ASSERT_EQUAL(datastore_published_since(ds, 3, 0, pub_log_cb, &pl),
                    0);
    CU_ASSERT_STRING_EQUAL(pl.text, "app/b=-@4/0\n");
    memset(&pl, 0, sizeof pl);
    CU_ASSERT_EQUAL(datastore_published_since(ds, 0, 1, pub_log_cb, &pl),
                    0);
    CU_ASSERT_EQUAL(pl.n, 1);

    /* Acknowledgements: an old version marks what it can, never lowers. */
    struct ds_pub_ack a1 = { "app/a", 1 };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &a1, 1, &removed), 0);
    assert_published(ds, "app/a", "\"again\"", 3, 1);
    struct ds_pub_ack a3 = { "app/a", 3 };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &a3, 1, &removed), 0);
    assert_published(ds, "app/a", "\"again\"", 3, 3);
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &a1, 1, &removed), 0);
    assert_published(ds, "app/a", "\"again\"", 3, 3);
    CU_ASSERT_EQUAL(removed, 0);
    CU_ASSERT_EQUAL(pending(ds), 1);
    /* A version beyond the row's is not taken. */
    struct ds_pub_ack a9 = { "app/a", 9 };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &a9, 1, NULL), 0);
    assert_published(ds, "app/a", "\"again\"", 3, 3);
    /* An unknown key is no error. */
    struct ds_pub_ack ax = { "gone", 2 };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &ax, 1, NULL), 0);
    /* The put of b (version 2) is acked after its withdrawal: the
     * tombstone stays, pending. */
    struct ds_pub_ack b2 = { "app/b", 2 };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &b2, 1, &removed), 0);
    CU_ASSERT_EQUAL(removed, 0);
    assert_published(ds, "app/b", NULL, 4, 2);
    /* Acking the tombstone removes it. */
    struct ds_pub_ack b4[] = { { "app/b", 4 }, { "app/a", 3 } };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, b4, 2, &removed), 0);
    CU_ASSERT_EQUAL(removed, 1);
    assert_no_published(ds, "app/b");
    CU_ASSERT_EQUAL(pending(ds), 0);
    /* Bad acks change nothing. */
    struct ds_pub_ack bad = { "app/a", 0 };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &bad, 1, NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_ack_published(ds, NULL, 1, NULL), EINVAL);

    /* A republication after a withdrawal gets a higher version still,
     * and is pending again even if it was delivered before. */
    CU_ASSERT_EQUAL(unpublish_ok(ds, "app/a"), 5);
    CU_ASSERT_EQUAL(publish_ok(ds, "app/a", "[]"), 6);
    assert_published(ds, "app/a", "[]", 6, 3);
    CU_ASSERT_EQUAL(pending(ds), 1);

    /* Purge: tombstones up to a version only. */
    CU_ASSERT_EQUAL(publish_ok(ds, "t1", "1"), 7);
    CU_ASSERT_EQUAL(publish_ok(ds, "t2", "2"), 8);
    CU_ASSERT_EQUAL(unpublish_ok(ds, "t1"), 9);
    CU_ASSERT_EQUAL(unpublish_ok(ds, "t2"), 10);
    CU_ASSERT_EQUAL(datastore_purge_published(ds, 9, &removed), 0);
    CU_ASSERT_EQUAL(removed, 1);
    assert_no_published(ds, "t1");
    assert_published(ds, "t2", NULL, 10, 0);
    assert_published(ds, "app/a", "[]", 6, 3);  /* Live: never purged. */
    CU_ASSERT_EQUAL(datastore_purge_published(ds, 100, &removed), 0);
    CU_ASSERT_EQUAL(removed, 1);
    assert_no_published(ds, "t2");

    /* The records table and its notifications are untouched. */
    CU_ASSERT_EQUAL(count(ds), 0);
    CU_ASSERT_EQUAL(log.n, 0);
    assert_record(ds, "app/a", NULL, 0);

    datastore_close(ds);
    change_log_clear(&log);
    scratch_destroy(&sc);
}

static void
test_published_validation(void)
{
    struct scratch sc;
    struct datastore *ds;
    char key[300];
    char *compact;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);

    /* Keys: the wire's rules. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "", "1", NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_publish(ds, NULL, "1", NULL), EINVAL);
    memset(key, 'k', sizeof key);
    key[257] = '\0';
    CU_ASSERT_EQUAL(datastore_publish(ds, key, "1", NULL), EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "257"));
    key[256] = '\0';
    CU_ASSERT_EQUAL(publish_ok(ds, key, "1"), 1);
    CU_ASSERT_EQUAL(datastore_publish(ds, "bad\xff", "1", NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_publish(ds, "\xc0\xaf", "1", NULL), EINVAL);
    CU_ASSERT_EQUAL(publish_ok(ds, "caf\xc3\xa9", "1"), 2);

    /* The reserved prefix: a distinct error, for publish and unpublish. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "from/vm2/x", "1", NULL), EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "reserved"));
    CU_ASSERT_EQUAL(datastore_publish(ds, "from/", "1", NULL), EPERM);
    CU_ASSERT_EQUAL(datastore_unpublish(ds, "from/x", NULL), EPERM);
    CU_ASSERT_EQUAL(datastore_check_published_key("from/a"), EPERM);
    CU_ASSERT_EQUAL(datastore_check_published_key("from"), 0);
    CU_ASSERT_EQUAL(datastore_check_published_key("fromage"), 0);
    CU_ASSERT_EQUAL(datastore_check_published_key("x/from/y"), 0);
    CU_ASSERT_EQUAL(datastore_check_published_key("stats/chand-guest"), 0);
    CU_ASSERT_EQUAL(datastore_publish(ds, "obj/x", "1", NULL), EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "\"obj/\""));
    CU_ASSERT_EQUAL(datastore_unpublish(ds, "obj/x", NULL), EPERM);
    CU_ASSERT_EQUAL(datastore_check_published_key("obj"), 0);
    CU_ASSERT_EQUAL(datastore_check_published_key("objx/y"), 0);

    /* Values: JSON the wire accepts. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", "", NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", NULL, NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", "{", NULL), EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "not valid JSON"));
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", "1 2", NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", "{\"a\":1,\"a\":2}", NULL),
                    EINVAL);
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", "123456789012345678901234",
                                      NULL), EINVAL);
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", "\"\xff\"", NULL), EINVAL);
    /* Nesting: 32 levels pass, 33 do not. */
    char deep[80];
    memset(deep, '[', 33);
    memset(deep + 33, ']', 33);
    deep[66] = '\0';
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", deep, NULL), EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "32"));
    deep[65] = '\0';
    CU_ASSERT_EQUAL(publish_ok(ds, "v", deep + 1), 3);  /* 32 levels. */
    /* Scalars, null, a NUL inside a string are fine; compact form. */
    CU_ASSERT_EQUAL(publish_ok(ds, "n", "null"), 4);
    assert_published(ds, "n", "null", 4, 0);
    CU_ASSERT_EQUAL(publish_ok(ds, "s", " \"a\\u0000b\" "), 5);
    assert_published(ds, "s", "\"a\\u0000b\"", 5, 0);
    CU_ASSERT_EQUAL(datastore_check_published_value(" { \"a\" : [ 1 , "
                                                    "true ] } ", &compact),
                    0);
    CU_ASSERT_STRING_EQUAL(compact, "{\"a\":[1,true]}");
    free(compact);
    /* Size, in compact form. */
    size_t big_len = DS_PUB_VALUE_MAX + 16;
    char *big = malloc(big_len + 1);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'x', big_len);
    big[0] = '"';
    big[DS_PUB_VALUE_MAX + 1] = '"';      /* DS_PUB_VALUE_MAX + 2 bytes. */
    big[DS_PUB_VALUE_MAX + 2] = '\0';
    CU_ASSERT_EQUAL(datastore_publish(ds, "big", big, NULL), EINVAL);
    big[DS_PUB_VALUE_MAX - 1] = '"';      /* Exactly the maximum. */
    big[DS_PUB_VALUE_MAX] = '\0';
    CU_ASSERT_EQUAL(publish_ok(ds, "big", big), 6);
    free(big);

    /* Nothing refused left a trace. */
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 6);
    struct ds_pub_counts c = pub_counts(ds, NULL);
    CU_ASSERT_EQUAL(c.records, 6);
    CU_ASSERT_EQUAL(c.withdrawn, 0);
    assert_no_published(ds, "from/vm2/x");
    CU_ASSERT_EQUAL(datastore_get_published(ds, "", NULL, NULL, NULL,
                                            NULL), EINVAL);

    datastore_close(ds);
    scratch_destroy(&sc);
}

static void
test_published_reopen_and_txn(void)
{
    struct scratch sc;
    struct datastore *ds;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(publish_ok(ds, "a", "1"), 1);
    CU_ASSERT_EQUAL(publish_ok(ds, "b", "2"), 2);
    CU_ASSERT_EQUAL(unpublish_ok(ds, "b"), 3);
    struct ds_pub_ack ack = { "a", 1 };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &ack, 1, NULL), 0);
    datastore_close(ds);

    /* Durable on return, without any commit by the caller. */
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT last_version FROM "
                            "publish_counter", NULL), 3);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT acked_version FROM published "
                            "WHERE key = ?1", "a"), 1);

    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 3);
    assert_published(ds, "a", "1", 1, 1);
    assert_published(ds, "b", NULL, 3, 0);
    CU_ASSERT_EQUAL(publish_ok(ds, "c", "3"), 4);

    /* Inside an open transaction: part of it. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(publish_ok(ds, "d", "4"), 5);
    CU_ASSERT_EQUAL(unpublish_ok(ds, "a"), 6);
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 6);
    /* A failing call leaves the transaction as it was. */
    CU_ASSERT_EQUAL(datastore_unpublish(ds, "zz", NULL), ENOENT);
    CU_ASSERT_TRUE(datastore_in_transaction(ds));
    datastore_rollback(ds);
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 4);
    assert_no_published(ds, "d");
    assert_published(ds, "a", "1", 1, 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(publish_ok(ds, "d", "4"), 5);
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);

    ds = open_ds(sc.path);
    assert_published(ds, "d", "4", 5, 0);
    CU_ASSERT_EQUAL(publish_ok(ds, "e", "5"), 6);
    CU_ASSERT_EQUAL(datastore_check(ds), 0);
    datastore_close(ds);
    scratch_destroy(&sc);
}

static void
test_published_limits(void)
{
    struct ds_pub_limits l = { .max_records = 2 }, got;
    struct scratch sc;
    struct datastore *ds;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    datastore_get_publish_limits(ds, &got);
    CU_ASSERT_EQUAL(got.max_records + got.max_value_bytes
                    + got.max_total_bytes + got.max_publish_rate, 0);

    /* Records held. */
    datastore_set_publish_limits(ds, &l);
    publish_ok(ds, "a", "1");
    publish_ok(ds, "b", "2");
    CU_ASSERT_EQUAL(datastore_publish(ds, "c", "3", NULL), EDQUOT);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "at most 2"));
    assert_no_published(ds, "c");
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 2);
    publish_ok(ds, "a", "11");                  /* Updates are fine. */
    unpublish_ok(ds, "b");                      /* Withdrawing makes room. */
    CU_ASSERT_EQUAL(publish_ok(ds, "c", "3"), 5);
    CU_ASSERT_EQUAL(datastore_publish(ds, "b", "2", NULL), EDQUOT);

    /* One value's bytes, compact. */
    l = (struct ds_pub_limits) { .max_value_bytes = 5 };
    datastore_set_publish_limits(ds, &l);
    publish_ok(ds, "v", "[ 1 ,  2 ]");          /* [1,2]: 5 bytes. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "v", "[1,2,3]", NULL), EDQUOT);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "7 bytes"));
    assert_published(ds, "v", "[1,2]", 6, 0);

    /* Keys and values held, in bytes: a(1)+11(2), c(1)+3(1), v(1)+5 = 11;
     * replacing a value counts the difference. */
    l = (struct ds_pub_limits) { .max_total_bytes = 14 };
    datastore_set_publish_limits(ds, &l);
    publish_ok(ds, "xy", "1");                  /* 14. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "z", "1", NULL), EDQUOT);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "16 bytes"));
    publish_ok(ds, "a", "9");                   /* 13. */
    publish_ok(ds, "xy", "12");                 /* 14. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "xy", "123", NULL), EDQUOT);
    /* UTF-8 counts in bytes. */
    unpublish_ok(ds, "xy");                     /* 10. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "\xc3\xa9", "123", NULL), EDQUOT);
    CU_ASSERT_EQUAL(datastore_publish(ds, "\xc3\xa9", "12", NULL), 0);
    /* 14. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "q", "1", NULL), EDQUOT);

    /* Publications a second: a bucket of that many. */
    struct timespec t0, t1;
    l = (struct ds_pub_limits) { .max_publish_rate = 4 };
    datastore_set_publish_limits(ds, &l);
    int ok = 0, refused = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 8; i++) {
        int error = datastore_publish(ds, "r", "1", NULL);
        ok += !error;
        refused += error == EDQUOT;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* 4 at once, and 4 more a second (normally none in time). */
    long long ms = ((t1.tv_sec - t0.tv_sec) * 1000
                    + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    CU_ASSERT(ok >= 4 && ok <= 4 + 4 * ms / 1000 + 1);
    CU_ASSERT_EQUAL(ok + refused, 8);
    CU_ASSERT(refused >= 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "a second"));
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    CU_ASSERT_EQUAL(datastore_publish(ds, "r", "2", NULL), 0);
    /* Withdrawals are not limited. */
    unpublish_ok(ds, "r");

    /* No limits any more. */
    datastore_set_publish_limits(ds, NULL);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "n%d", i);
        publish_ok(ds, key, "[1,2,3,4,5,6,7,8,9]");
    }
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* The version 1 schema, exactly as chand 0.1.0 created it. */
static const char v1_schema[] =
    "PRAGMA application_id = 1128808782;"
    "PRAGMA journal_mode = WAL;"
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
    " seen_gen INTEGER NOT NULL);"
    "INSERT INTO meta VALUES (1, 1, 0, 'chand 0.1.0');"
    "INSERT INTO channel (id, guest_epoch, host_epoch, position,"
    " snapshot_state, snapshot_gen, frames_applied, ops_applied)"
    " VALUES (1, 4242, 7, 3, 'complete', 1, 3, 3);"
    "INSERT INTO records VALUES ('net/dns', '{\"s\":[]}', 5, 0, 1, 1);";

static void
test_published_upgrade(void)
{
    struct scratch sc;
    struct datastore *ds;

    scratch_init(&sc, "ds");
    raw_exec(sc.path, v1_schema);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT count(*) FROM sqlite_master "
                            "WHERE name = 'published'", NULL), 0);

    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT schema_version FROM meta",
                            NULL), DS_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT count(*) FROM sqlite_master "
                            "WHERE name IN ('published', 'publish_counter',"
                            " 'published_by_version', 'objects',"
                            " 'objects_by_digest')", NULL), 5);
    /* The downstream side is as it was. */
    struct ds_state st = get_state(ds);
    CU_ASSERT_EQUAL(st.guest_epoch, 4242);
    CU_ASSERT_EQUAL(st.host_epoch, 7);
    CU_ASSERT_EQUAL(st.position, 3);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_COMPLETE);
    assert_record(ds, "net/dns", "{\"s\":[]}", 5);
    /* And the upstream side works. */
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 0);
    CU_ASSERT_EQUAL(publish_ok(ds, "app/x", "true"), 1);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    struct ds_record r = put("k", "1", 1);
    CU_ASSERT(apply(ds, 7, 4, &r, 1));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    datastore_close(ds);

    /* Opening it again changes nothing more. */
    ds = open_ds(sc.path);
    assert_published(ds, "app/x", "true", 1, 0);
    assert_record(ds, "k", "1", 1);
    CU_ASSERT_EQUAL(get_state(ds).position, 4);
    CU_ASSERT_EQUAL(datastore_check(ds), 0);
    datastore_close(ds);

    /* A version 1 file that cannot be upgraded (it already has a table of
     * that name) is refused and left as it was. */
    remove_db(sc.path);
    raw_exec(sc.path, v1_schema);
    raw_exec(sc.path, "CREATE TABLE published (x)");
    CU_ASSERT_NOT_EQUAL(datastore_open(sc.path, &ds), 0);
    CU_ASSERT_PTR_NULL(ds);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT schema_version FROM meta",
                            NULL), 1);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT count(*) FROM sqlite_master "
                            "WHERE name = 'publish_counter'", NULL), 0);
    scratch_destroy(&sc);
}

static void
test_misc_strings(void)
{
    CU_ASSERT_STRING_EQUAL(ds_snapshot_to_string(DS_SNAPSHOT_NONE), "none");
    CU_ASSERT_STRING_EQUAL(ds_snapshot_to_string(DS_SNAPSHOT_ACTIVE),
                           "active");
    CU_ASSERT_STRING_EQUAL(ds_snapshot_to_string(DS_SNAPSHOT_COMPLETE),
                           "complete");
    CU_ASSERT_STRING_EQUAL(ds_snapshot_to_string(17), "?");
}

/* Objects. */

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

static void
object_add_ok(struct datastore *ds, const char *path, const char *digest,
              int64_t size, const char *flags, const char *params)
{
    int error = datastore_object_add(ds, path, digest, size, flags, params);

    if (error) {
        fprintf(stderr, "datastore_object_add: %s\n",
                datastore_last_error());
    }
    CU_ASSERT_FATAL(error == 0);
}

static int
count_objects_cb(void *n_, const struct ds_object *o)
{
    size_t *n = n_;

    CU_ASSERT_EQUAL(strlen(o->digest), 64);
    (*n)++;
    return 0;
}

static size_t
count_objects(struct datastore *ds, const char *digest)
{
    size_t n = 0;

    CU_ASSERT_EQUAL(datastore_list_objects(ds, digest, count_objects_cb, &n),
                    0);
    return n;
}

/* Asserts, reading the file as another process would, that the objects
 * table and the "obj/" records agree: every digest with rows has a record
 * whose paths and size are those rows', and every record has rows. */
static void
assert_objects_agree(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *s;

    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL)
                    == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_prepare_v2(
        db, "SELECT 'obj/' || digest, json_group_array(path), max(size),"
        " min(size), p.value FROM (SELECT * FROM objects ORDER BY path)"
        " LEFT JOIN published p ON p.key = 'obj/' || digest"
        " AND p.deleted = 0 GROUP BY digest", -1, &s, NULL) == SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *key = (const char *) sqlite3_column_text(s, 0);
        const char *paths = (const char *) sqlite3_column_text(s, 1);
        const char *value = (const char *) sqlite3_column_text(s, 4);
        json_t *v = value ? json_loads(value, 0, NULL) : NULL;
        json_t *want = json_loads(paths, 0, NULL);

        CU_ASSERT_EQUAL(sqlite3_column_int64(s, 2),
                        sqlite3_column_int64(s, 3));
        if (!v) {
            fprintf(stderr, "%s: no record\n", key);
        }
        CU_ASSERT_FATAL(v != NULL);
        CU_ASSERT(json_equal(json_object_get(v, "paths"), want));
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "size")),
                        sqlite3_column_int64(s, 2));
        json_decref(v);
        json_decref(want);
    }
    sqlite3_finalize(s);
    CU_ASSERT_FATAL(sqlite3_prepare_v2(
        db, "SELECT count(*) FROM published WHERE key LIKE 'obj/%'"
        " AND deleted = 0 AND substr(key, 5) NOT IN"
        " (SELECT digest FROM objects)", -1, &s, NULL) == SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(s), SQLITE_ROW);
    CU_ASSERT_EQUAL(sqlite3_column_int64(s, 0), 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void
test_objects_records(void)
{
    struct scratch sc;
    struct datastore *ds;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);

    /* Two paths with one content, one with another. */
    object_add_ok(ds, "/srv/b", D1, 10, "[\"x\",\"clean\",\"x\"]",
                  "{\"src\":\"b\"}");
    assert_published(ds, "obj/" D1, "{\"size\":10,\"paths\":[\"/srv/b\"],"
                     "\"flags\":[\"clean\",\"x\"],\"params\":{\"src\":\"b\"}}",
                     1, 0);
    object_add_ok(ds, "/srv/a", D1, 10, NULL, "{\"src\":\"a\",\"z\":\"1\"}");
    assert_published(ds, "obj/" D1, "{\"size\":10,\"paths\":[\"/srv/a\","
                     "\"/srv/b\"],\"flags\":[\"clean\",\"x\"],\"params\":"
                     "{\"src\":\"a\",\"z\":\"1\"}}", 2, 0);
    object_add_ok(ds, "/srv/c", D2, 0, "[]", "{}");
    assert_published(ds, "obj/" D2, "{\"size\":0,\"paths\":[\"/srv/c\"],"
                     "\"flags\":[],\"params\":{}}", 3, 0);
    CU_ASSERT_EQUAL(count_objects(ds, NULL), 3);
    CU_ASSERT_EQUAL(count_objects(ds, D1), 2);
    CU_ASSERT_EQUAL(count_objects(ds, D3), 0);
    assert_objects_agree(sc.path);

    /* The same again changes nothing, not even the version. */
    object_add_ok(ds, "/srv/c", D2, 0, NULL, NULL);
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 3);

    /* A path whose content changed: both records follow. */
    object_add_ok(ds, "/srv/b", D2, 0, NULL, NULL);
    assert_published(ds, "obj/" D2, "{\"size\":0,\"paths\":[\"/srv/b\","
                     "\"/srv/c\"],\"flags\":[],\"params\":{}}", 4, 0);
    assert_published(ds, "obj/" D1, "{\"size\":10,\"paths\":[\"/srv/a\"],"
                     "\"flags\":[],\"params\":{\"src\":\"a\",\"z\":\"1\"}}",
                     5, 0);
    assert_objects_agree(sc.path);

    /* Removing a path; removing the last withdraws the record. */
    CU_ASSERT_EQUAL(datastore_object_remove(ds, "/srv/b"), 0);
    assert_published(ds, "obj/" D2, "{\"size\":0,\"paths\":[\"/srv/c\"],"
                     "\"flags\":[],\"params\":{}}", 6, 0);
    CU_ASSERT_EQUAL(datastore_object_remove(ds, "/srv/a"), 0);
    assert_published(ds, "obj/" D1, NULL, 7, 0);
    CU_ASSERT_EQUAL(datastore_object_remove(ds, "/srv/a"), ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "/srv/a"));
    CU_ASSERT_EQUAL(count_objects(ds, D1), 0);
    assert_objects_agree(sc.path);

    /* Back again, and durable across a reopen. */
    object_add_ok(ds, "/srv/a", D1, 10, NULL, NULL);
    datastore_close(ds);
    ds = open_ds(sc.path);
    assert_published(ds, "obj/" D1, "{\"size\":10,\"paths\":[\"/srv/a\"],"
                     "\"flags\":[],\"params\":{}}", 8, 0);
    CU_ASSERT_EQUAL(count_objects(ds, NULL), 2);
    assert_objects_agree(sc.path);
    datastore_close(ds);
    scratch_destroy(&sc);
}

static void
assert_object_refused(struct datastore *ds, const char *path,
                      const char *digest, int64_t size, const char *flags,
                      const char *params, int error, const char *message)
{
    int64_t counter = datastore_published_counter(ds);

    CU_ASSERT_EQUAL(datastore_object_add(ds, path, digest, size, flags,
                                         params), error);
    if (!strstr(datastore_last_error(), message)) {
        fprintf(stderr, "\"%s\" lacks \"%s\"\n", datastore_last_error(),
                message);
        CU_FAIL("message");
    }
    CU_ASSERT_EQUAL(datastore_published_counter(ds), counter);
}

static void
test_objects_validation(void)
{
    char long_path[DS_OBJ_PATH_MAX + 2];
    struct scratch sc;
    struct datastore *ds;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);

    /* Digests. */
    assert_object_refused(ds, "/a", "abc", 1, NULL, NULL, EINVAL, "64");
    assert_object_refused(ds, "/a", D1 "1", 1, NULL, NULL, EINVAL, "65");
    char upper[] = D3;
    upper[3] = 'D';
    assert_object_refused(ds, "/a", upper, 1, NULL, NULL, EINVAL, "'D' at 3");
    assert_object_refused(ds, "/a", NULL, 1, NULL, NULL, EINVAL, "NULL");
    CU_ASSERT_EQUAL(datastore_list_objects(ds, "x", count_objects_cb, NULL),
                    EINVAL);

    /* Paths. */
    assert_object_refused(ds, "a/b", D1, 1, NULL, NULL, EINVAL,
                          "not absolute");
    assert_object_refused(ds, "", D1, 1, NULL, NULL, EINVAL, "absolute");
    assert_object_refused(ds, "/", D1, 1, NULL, NULL, EINVAL, "empty");
    assert_object_refused(ds, "/a//b", D1, 1, NULL, NULL, EINVAL, "empty");
    assert_object_refused(ds, "/a/", D1, 1, NULL, NULL, EINVAL, "trailing");
    assert_object_refused(ds, "/a/./b", D1, 1, NULL, NULL, EINVAL,
                          "\".\"");
    assert_object_refused(ds, "/a/../etc/passwd", D1, 1, NULL, NULL, EINVAL,
                          "\"..\"");
    assert_object_refused(ds, "/..", D1, 1, NULL, NULL, EINVAL, "\"..\"");
    assert_object_refused(ds, "/a\xff", D1, 1, NULL, NULL, EINVAL, "UTF-8");
    memset(long_path, 'x', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    assert_object_refused(ds, long_path, D1, 1, NULL, NULL, EINVAL, "4097");
    long_path[DS_OBJ_PATH_MAX] = '\0';
    object_add_ok(ds, long_path, D3, 1, NULL, NULL);
    object_add_ok(ds, "/a/.b/..c/...", D3, 1, NULL, NULL);

    /* Size, flags, params. */
    assert_object_refused(ds, "/a", D1, -1, NULL, NULL, EINVAL, "negative");
    assert_object_refused(ds, "/a", D3, 2, NULL, NULL, EINVAL, "size 1");
    assert_object_refused(ds, "/a", D1, 1, "{}", NULL, EINVAL, "array");
    assert_object_refused(ds, "/a", D1, 1, "[1]", NULL, EINVAL, "string");
    assert_object_refused(ds, "/a", D1, 1, "[\"Bad\"]", NULL, EINVAL,
                          "a-z");
    assert_object_refused(ds, "/a", D1, 1, "[\"\"]", NULL, EINVAL, "1 to 32");
    assert_object_refused(ds, "/a", D1, 1,
                          "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]", NULL,
                          EINVAL, "1 to 32");
    assert_object_refused(ds, "/a", D1, 1, "[\"a\",\"b\",\"c\",\"d\",\"e\","
                          "\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\","
                          "\"n\",\"o\",\"p\",\"q\"]", NULL, EINVAL, "17");
    assert_object_refused(ds, "/a", D1, 1, "[", NULL, EINVAL, "array");
    assert_object_refused(ds, "/a", D1, 1, NULL, "[]", EINVAL, "object");
    assert_object_refused(ds, "/a", D1, 1, NULL, "{\"a\":\"1\",\"a\":\"2\"}",
                          EINVAL, "object");
    assert_object_refused(ds, "/a", D1, 1, NULL, "{\"a\":1}", EINVAL,
                          "not a string");
    assert_object_refused(ds, "/a", D1, 1, NULL, "{\"A\":\"1\"}", EINVAL,
                          "a-z");
    char *big = xasprintf("{\"a\":\"%0257d\"}", 0);
    assert_object_refused(ds, "/a", D1, 1, NULL, big, EINVAL, "257 bytes");
    free(big);
    object_add_ok(ds, "/a", D1, 1, "[\"a-b_9\"]", "{\"k\":\"\"}");
    CU_ASSERT_EQUAL(datastore_object_remove(ds, "a"), EINVAL);

    /* At most 64 paths a digest. */
    for (int i = 0; i < DS_OBJ_MAX_PATHS; i++) {
        char path[32];
        snprintf(path, sizeof path, "/many/%02d", i);
        object_add_ok(ds, path, D2, 5, NULL, NULL);
    }
    assert_object_refused(ds, "/many/64", D2, 5, NULL, NULL, EDQUOT,
                          "64 paths");
    object_add_ok(ds, "/many/00", D2, 5, "[\"again\"]", NULL);
    CU_ASSERT_EQUAL(count_objects(ds, D2), DS_OBJ_MAX_PATHS);
    assert_objects_agree(sc.path);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* A random sequence of adds, moves and removes, some refused by a limit
 * on records held, some inside transactions that are rolled back: after
 * every call the rows and the records agree. */
static void
test_objects_atomic(void)
{
    static const char *const digests[] = { D1, D2, D3 };
    struct ds_pub_limits l = { .max_records = 2 };
    uint64_t seed = 0x0b1ec75, state = seed;
    unsigned int failures = CU_get_number_of_failures();
    struct scratch sc;
    struct datastore *ds;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    datastore_set_publish_limits(ds, &l);
    for (int i = 0; i < 300; i++) {
        uint64_t r = unit_random(&state);
        char path[16];
        int error;

        snprintf(path, sizeof path, "/f/%d", (int) (r % 7));
        r /= 7;
        if (r % 4 == 0) {
            error = datastore_object_remove(ds, path);
            CU_ASSERT(!error || error == ENOENT);
        } else if (r % 4 == 1) {
            /* Inside a transaction that is rolled back. */
            CU_ASSERT_FATAL(datastore_begin(ds) == 0);
            datastore_object_add(ds, path, digests[r / 4 % 3], 3, NULL,
                                 NULL);
            datastore_rollback(ds);
        } else {
            error = datastore_object_add(ds, path, digests[r / 4 % 3], 3,
                                         NULL, NULL);
            CU_ASSERT(!error || error == EDQUOT);
            if (error == EDQUOT) {
                CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(),
                                              "at most 2"));
            }
        }
        assert_objects_agree(sc.path);
        if (CU_get_number_of_failures() != failures) {
            fprintf(stderr, "seed %#"PRIx64", step %d\n", seed, i);
            break;
        }
    }
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* Turns today's channel table into that of version 4. */
#define DROP_IDENTITY_SQL                           \
    "ALTER TABLE channel DROP COLUMN chan_id;"      \
    "ALTER TABLE channel DROP COLUMN clones;"       \
    "ALTER TABLE channel DROP COLUMN clone_of;"

static void
test_objects_upgrade(void)
{
    struct scratch sc;
    struct datastore *ds;

    /* A version 2 file: today's file without the objects table. */
    scratch_init(&sc, "ds");
    make_store(sc.path);
    ds = open_ds(sc.path);
    publish_ok(ds, "app/x", "1");
    datastore_close(ds);
    raw_exec(sc.path, "DROP TABLE objects; DROP TABLE handled;"
             DROP_IDENTITY_SQL "UPDATE meta SET schema_version = 2");
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT count(*) FROM sqlite_master "
                            "WHERE name LIKE 'objects%'", NULL), 0);

    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT schema_version FROM meta",
                            NULL), DS_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT count(*) FROM sqlite_master "
                            "WHERE name = 'handled'", NULL), 1);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT count(*) FROM sqlite_master "
                            "WHERE name IN ('objects', 'objects_by_digest')",
                            NULL), 2);
    assert_record(ds, "k", "1", 1);
    assert_published(ds, "app/x", "1", 1, 0);
    object_add_ok(ds, "/x", D1, 1, NULL, NULL);
    assert_published(ds, "obj/" D1, "{\"size\":1,\"paths\":[\"/x\"],"
                     "\"flags\":[],\"params\":{}}", 2, 0);
    CU_ASSERT_EQUAL(datastore_check(ds), 0);
    datastore_close(ds);

    /* A version 2 file that cannot be upgraded is left as it was. */
    raw_exec(sc.path, "DROP TABLE objects; DROP TABLE handled;"
             DROP_IDENTITY_SQL "UPDATE meta SET schema_version = 2;"
             "CREATE TABLE objects (x)");
    CU_ASSERT_NOT_EQUAL(datastore_open(sc.path, &ds), 0);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT schema_version FROM meta",
                            NULL), 2);
    scratch_destroy(&sc);
}

static int
count_handled_cb(void *n_, const char *key, int64_t version, bool ok,
                 int64_t handled_at)
{
    size_t *n = n_;

    (void) key;
    (void) version;
    (void) ok;
    (void) handled_at;
    (*n)++;
    return 0;
}

static void
test_handled(void)
{
    struct scratch sc;
    struct datastore *ds;
    int64_t version = -1, pv;
    bool deleted;
    size_t n = 0;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(datastore_get_handled(ds, "verdict/" D1, &version),
                    ENOENT);
    CU_ASSERT_EQUAL(datastore_set_handled(ds, "verdict/" D1, 3, true,
                                          "{ \"status\": \"ok\" }"), 0);
    CU_ASSERT_EQUAL(datastore_get_handled(ds, "verdict/" D1, &version), 0);
    CU_ASSERT_EQUAL(version, 3);
    assert_published(ds, "result/verdict/" D1, "{\"status\":\"ok\"}", 1, 0);

    /* Applications cannot publish under result/. */
    CU_ASSERT_EQUAL(datastore_publish(ds, "result/x", "1", NULL), EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(datastore_last_error(), "handler results"));

    /* Without a result: only the row. */
    CU_ASSERT_EQUAL(datastore_set_handled(ds, "notice/" D2, 1, false, NULL),
                    0);
    CU_ASSERT_EQUAL(datastore_list_handled(ds, count_handled_cb, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    datastore_close(ds);

    /* Persisted; forgetting withdraws the result. */
    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(datastore_get_handled(ds, "verdict/" D1, &version), 0);
    CU_ASSERT_EQUAL(version, 3);
    CU_ASSERT_EQUAL(datastore_forget_handled(ds, "verdict/" D1), 0);
    CU_ASSERT_EQUAL(datastore_get_handled(ds, "verdict/" D1, &version),
                    ENOENT);
    CU_ASSERT_EQUAL(datastore_get_published(ds, "result/verdict/" D1, NULL,
                                            &pv, NULL, &deleted), 0);
    CU_ASSERT(deleted);
    CU_ASSERT_EQUAL(datastore_forget_handled(ds, "notice/" D2), 0);
    CU_ASSERT_EQUAL(datastore_forget_handled(ds, "notice/" D2), 0);
    n = 0;
    CU_ASSERT_EQUAL(datastore_list_handled(ds, count_handled_cb, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    datastore_close(ds);
    scratch_destroy(&sc);
}

static void
test_object_add_flags(void)
{
    struct scratch sc;
    struct datastore *ds;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    object_add_ok(ds, "/a", D1, 1, "[\"x\"]", NULL);
    object_add_ok(ds, "/b", D1, 1, NULL, NULL);
    CU_ASSERT_EQUAL(datastore_object_add_flags(ds, D1, "[\"quarantined\"]"),
                    0);
    assert_published(ds, "obj/" D1, "{\"size\":1,\"paths\":[\"/a\",\"/b\"],"
                     "\"flags\":[\"quarantined\",\"x\"],\"params\":{}}", 3, 0);
    /* Again: nothing changes, nothing is republished. */
    CU_ASSERT_EQUAL(datastore_object_add_flags(ds, D1, "[\"quarantined\"]"),
                    0);
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 3);
    CU_ASSERT_EQUAL(datastore_object_add_flags(ds, D2, "[\"deleted\"]"),
                    ENOENT);
    CU_ASSERT_EQUAL(datastore_object_add_flags(ds, D1, "[\"Bad\"]"), EINVAL);
    CU_ASSERT_EQUAL(datastore_object_add_flags(ds, "x", "[]"), EINVAL);
    datastore_close(ds);
    scratch_destroy(&sc);
}


/* Identity and clones. */

static uint32_t
claim_ok(struct datastore *ds, uint32_t chan_id)
{
    uint32_t prev = 12345;
    int error = datastore_claim_chan_id(ds, chan_id, &prev);

    if (error) {
        fprintf(stderr, "datastore_claim_chan_id: %s\n",
                datastore_last_error());
    }
    CU_ASSERT_FATAL(error == 0);
    return prev;
}

static void
test_identity_upgrade(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_state st0, st;

    /* A version 4 file: today's file without the identity columns. */
    scratch_init(&sc, "ds");
    make_store(sc.path);
    ds = open_ds(sc.path);
    publish_ok(ds, "app/x", "1");
    CU_ASSERT_EQUAL(datastore_set_handled(ds, "verdict/" D1, 2, true,
                                          "{}"), 0);
    datastore_close(ds);
    raw_exec(sc.path, DROP_IDENTITY_SQL "UPDATE meta SET schema_version = 4");

    /* Upgraded in place; the first claim records the chan-id and resets
     * nothing. */
    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT schema_version FROM meta",
                            NULL), DS_SCHEMA_VERSION);
    st0 = get_state(ds);
    CU_ASSERT_EQUAL(st0.chan_id, 0);
    CU_ASSERT_EQUAL(claim_ok(ds, 31), 0);
    st = get_state(ds);
    CU_ASSERT_EQUAL(st.chan_id, 31);
    CU_ASSERT_EQUAL(st.clones, 0);
    CU_ASSERT_EQUAL(st.clone_of, 0);
    st.chan_id = 0;
    CU_ASSERT(state_equal(&st, &st0));
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT count(*) FROM handled", NULL),
                    1);
    assert_published(ds, "app/x", "1", 1, 0);
    CU_ASSERT_EQUAL(datastore_check(ds), 0);
    datastore_close(ds);
    CU_ASSERT_EQUAL(raw_int(sc.path, "SELECT chan_id FROM channel", NULL),
                    31);

    /* Bad arguments. */
    ds = open_ds(sc.path);
    uint32_t prev = 7;
    CU_ASSERT_EQUAL(datastore_claim_chan_id(ds, 0, &prev), EINVAL);
    CU_ASSERT_EQUAL(prev, 0);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT_EQUAL(datastore_claim_chan_id(ds, 41, &prev), EINVAL);
    datastore_rollback(ds);
    CU_ASSERT_EQUAL(get_state(ds).chan_id, 31);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* Builds a store that served chan-id 31: records from host epoch 9, a
 * published record the host acknowledged, a tombstone, an object and a
 * handled verdict with its result. */
static void
clone_setup(const char *path)
{
    struct datastore *ds = open_ds(path);
    struct ds_record r[3] = { put("verdict/" D1, "{\"flags\":[\"x\"]}", 4),
                              put("net/dns", "1", 2),
                              put("call/x", "{\"command\":\"ping\"}", 1) };
    struct ds_pub_ack ack = { "app/x", 1 };

    CU_ASSERT_EQUAL(claim_ok(ds, 31), 0);
    snapshot_begin_commit(ds, 9);
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    CU_ASSERT(apply(ds, 9, 1, r, 3));
    CU_ASSERT_FATAL(datastore_commit(ds) == 0);
    CU_ASSERT_EQUAL(publish_ok(ds, "app/x", "true"), 1);
    CU_ASSERT_EQUAL(publish_ok(ds, "app/gone", "1"), 2);
    CU_ASSERT_EQUAL(unpublish_ok(ds, "app/gone"), 3);
    object_add_ok(ds, "/srv/f", D1, 5, NULL, NULL);                 /* 4 */
    CU_ASSERT_EQUAL(datastore_set_handled(ds, "verdict/" D1, 4, true,
                                          "{\"status\":\"ok\"}"), 0);  /* 5 */
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &ack, 1, NULL), 0);
    datastore_close(ds);
}

static int
count_objects_of_cb(void *n_, const struct ds_object *o)
{
    size_t *n = n_;

    (void) o;
    (*n)++;
    return 0;
}

static void
test_clone_detected(void)
{
    struct scratch sc;
    struct datastore *ds;
    struct ds_state st0, st;
    int64_t version;
    size_t n = 0;

    scratch_init(&sc, "ds");
    clone_setup(sc.path);

    /* The same channel again: nothing changes. */
    ds = open_ds(sc.path);
    st0 = get_state(ds);
    CU_ASSERT_EQUAL(claim_ok(ds, 31), 31);
    st = get_state(ds);
    CU_ASSERT(state_equal(&st, &st0));
    CU_ASSERT_EQUAL(datastore_get_handled(ds, "verdict/" D1, &version), 0);
    assert_record(ds, "call/x", "{\"command\":\"ping\"}", 1);
    datastore_close(ds);

    /* Another channel: a clone. */
    ds = open_ds(sc.path);
    CU_ASSERT_EQUAL(claim_ok(ds, 41), 31);
    st = get_state(ds);
    CU_ASSERT_NOT_EQUAL(st.guest_epoch, st0.guest_epoch);
    CU_ASSERT_NOT_EQUAL(st.guest_epoch, 0);
    CU_ASSERT_EQUAL(st.host_epoch, 0);
    CU_ASSERT_EQUAL(st.position, 0);
    CU_ASSERT_EQUAL(st.chan_id, 41);
    CU_ASSERT_EQUAL(st.clones, 1);
    CU_ASSERT_EQUAL(st.clone_of, 31);
    CU_ASSERT_EQUAL(st.frames_applied, st0.frames_applied);
    datastore_close(ds);

    /* Durable; what it kept and what it forgot. */
    ds = open_ds(sc.path);
    st0 = get_state(ds);
    CU_ASSERT(state_equal(&st, &st0));
    assert_record(ds, "verdict/" D1, "{\"flags\":[\"x\"]}", 4);
    assert_record(ds, "net/dns", "1", 2);
    assert_record(ds, "call/x", NULL, 0);
    CU_ASSERT_EQUAL(datastore_list_objects(ds, D1, count_objects_of_cb, &n),
                    0);
    CU_ASSERT_EQUAL(n, 1);
    assert_published(ds, "app/x", "true", 1, 0);
    assert_published(ds, "obj/" D1, "{\"size\":5,\"paths\":[\"/srv/f\"],"
                     "\"flags\":[],\"params\":{}}", 4, 0);
    assert_no_published(ds, "app/gone");
    assert_no_published(ds, "result/verdict/" D1);
    CU_ASSERT_EQUAL(datastore_get_handled(ds, "verdict/" D1, &version),
                    ENOENT);
    CU_ASSERT_EQUAL(datastore_published_counter(ds), 5);
    CU_ASSERT_EQUAL(pending(ds), 2);

    /* The new host epoch is adopted by the host's snapshot as usual. */
    snapshot_begin_commit(ds, 9);
    CU_ASSERT_EQUAL(get_state(ds).host_epoch, 9);

    /* Claiming the clone's own chan-id again changes nothing; a clone of
     * the clone counts again. */
    CU_ASSERT_EQUAL(claim_ok(ds, 41), 41);
    CU_ASSERT_EQUAL(get_state(ds).clones, 1);
    CU_ASSERT_EQUAL(claim_ok(ds, 51), 41);
    CU_ASSERT_EQUAL(get_state(ds).clones, 2);
    CU_ASSERT_EQUAL(get_state(ds).clone_of, 41);
    CU_ASSERT_EQUAL(datastore_check(ds), 0);
    datastore_close(ds);
    scratch_destroy(&sc);
}

/* Asserts that the usage the datastore keeps in memory is what a scan of
 * the file says: 'n' records of 'bytes' bytes. */
static void
assert_pub_usage(struct datastore *ds, const char *path, uint64_t n,
                 uint64_t bytes)
{
    struct ds_pub_usage u;

    CU_ASSERT_FATAL(datastore_get_pub_usage(ds, &u) == 0);
    CU_ASSERT_EQUAL(u.n_records, n);
    CU_ASSERT_EQUAL(u.total_bytes, bytes);
    CU_ASSERT_EQUAL(raw_int(path, "SELECT count(*) FROM published"
                            " WHERE deleted = 0", NULL), (int64_t) n);
    CU_ASSERT_EQUAL(raw_int(path, "SELECT total(length(CAST(key AS BLOB))"
                            " + length(CAST(value AS BLOB))) FROM published"
                            " WHERE deleted = 0", NULL), (int64_t) bytes);
}

static void
test_published_usage(void)
{
    struct ds_pub_limits l = { 0 };
    struct ds_pub_ack ack;
    struct scratch sc;
    struct datastore *ds;
    struct ds_pub_usage u;
    uint32_t prev;

    scratch_init(&sc, "ds");
    ds = open_ds(sc.path);
    assert_pub_usage(ds, sc.path, 0, 0);

    /* Inserts, updates (larger and smaller), withdrawals, re-publication
     * of a withdrawn key. */
    publish_ok(ds, "a", "1");
    assert_pub_usage(ds, sc.path, 1, 2);
    publish_ok(ds, "a", "[1,2]");
    assert_pub_usage(ds, sc.path, 1, 6);
    publish_ok(ds, "\xc3\xa9", "\"x\"");
    assert_pub_usage(ds, sc.path, 2, 11);
    publish_ok(ds, "a", "7");
    assert_pub_usage(ds, sc.path, 2, 7);
    unpublish_ok(ds, "a");
    assert_pub_usage(ds, sc.path, 1, 5);
    CU_ASSERT_EQUAL(datastore_unpublish(ds, "a", NULL), ENOENT);
    assert_pub_usage(ds, sc.path, 1, 5);
    publish_ok(ds, "a", "12");
    assert_pub_usage(ds, sc.path, 2, 8);

    /* Acknowledging removes the tombstones only. */
    unpublish_ok(ds, "a");
    ack = (struct ds_pub_ack) { "a", datastore_published_counter(ds) };
    CU_ASSERT_EQUAL(datastore_ack_published(ds, &ack, 1, NULL), 0);
    assert_pub_usage(ds, sc.path, 1, 5);

    /* A rolled-back transaction and a refused publication leave it. */
    CU_ASSERT_FATAL(datastore_begin(ds) == 0);
    publish_ok(ds, "b", "true");
    unpublish_ok(ds, "\xc3\xa9");
    CU_ASSERT_FATAL(datastore_get_pub_usage(ds, &u) == 0);
    CU_ASSERT_EQUAL(u.n_records, 1);
    CU_ASSERT_EQUAL(u.total_bytes, 5);
    datastore_rollback(ds);
    assert_pub_usage(ds, sc.path, 1, 5);
    l.max_total_bytes = 8;
    datastore_set_publish_limits(ds, &l);
    CU_ASSERT_EQUAL(datastore_publish(ds, "bb", "1234", NULL), EDQUOT);
    assert_pub_usage(ds, sc.path, 1, 5);
    publish_ok(ds, "b", "12");                  /* 5 + 3 = 8: fits. */
    assert_pub_usage(ds, sc.path, 2, 8);

    /* Another connection changes the file: counted again, and the limits
     * follow. */
    raw_exec(sc.path, "DELETE FROM published WHERE key = 'b'");
    assert_pub_usage(ds, sc.path, 1, 5);
    publish_ok(ds, "c", "12");
    assert_pub_usage(ds, sc.path, 2, 8);
    l = (struct ds_pub_limits) { .max_records = 2 };
    datastore_set_publish_limits(ds, &l);
    CU_ASSERT_EQUAL(datastore_publish(ds, "d", "1", NULL), EDQUOT);
    raw_exec(sc.path, "UPDATE published SET deleted = 1, value = NULL"
             " WHERE key = 'c'");
    publish_ok(ds, "d", "1");
    assert_pub_usage(ds, sc.path, 2, 7);
    datastore_set_publish_limits(ds, NULL);

    /* Handler results publish through the same path. */
    CU_ASSERT_EQUAL(datastore_set_handled(ds, "k", 1, true, "{\"a\":1}"),
                    0);
    assert_pub_usage(ds, sc.path, 3, 22);       /* result/k {"a":1} */
    CU_ASSERT_EQUAL(datastore_forget_handled(ds, "k"), 0);
    assert_pub_usage(ds, sc.path, 2, 7);
    CU_ASSERT_EQUAL(datastore_set_handled(ds, "k", 2, true, "1"), 0);
    assert_pub_usage(ds, sc.path, 3, 16);

    /* Reopened: counted from the file. */
    datastore_close(ds);
    ds = open_ds(sc.path);
    assert_pub_usage(ds, sc.path, 3, 16);

    /* A clone forgets the results. */
    CU_ASSERT_EQUAL(datastore_claim_chan_id(ds, 7, &prev), 0);
    CU_ASSERT_EQUAL(datastore_claim_chan_id(ds, 8, &prev), 0);
    CU_ASSERT_EQUAL(prev, 7);
    assert_pub_usage(ds, sc.path, 2, 7);
    datastore_close(ds);
    scratch_destroy(&sc);
}

static const struct unit_test tests[] = {
    { "open, create, reopen", test_open_create_reopen },
    { "guest epoch per file", test_guest_epoch_per_file },
    { "open errors", test_open_errors },
    { "schema version and damaged schema", test_schema_version },
    { "corrupt file", test_corrupt_file },
    { "apply and get", test_apply_get },
    { "transaction misuse", test_txn_misuse },
    { "duplicates not applied twice", test_duplicates },
    { "many frames in one transaction", test_many_frames_one_txn },
    { "rollback leaves nothing", test_rollback },
    { "invalid records", test_invalid_records },
    { "frame atomic on SQL error", test_frame_atomic_on_sql_error },
    { "notifications", test_notifications },
    { "crash: exit without commit", test_crash_exit_uncommitted },
    { "crash: SIGKILL without commit", test_crash_kill_uncommitted },
    { "crash: after a commit", test_crash_after_commit },
    { "snapshot reconcile", test_snapshot_reconcile },
    { "snapshot interrupted, reopened", test_snapshot_interrupted },
    { "snapshot crash and resume", test_snapshot_crash_resume },
    { "snapshot rules and rebase", test_snapshot_rules_and_rebase },
    { "snapshot end", test_snapshot_end },
    { "odd keys and listing", test_odd_keys },
    { "list re-entry", test_list_reentry },
    { "large value", test_large_value },
    { "synchronous=NORMAL", test_sync_normal },
    { "concurrent reader", test_concurrent_reader },
    { "second writer busy", test_second_writer_busy },
    { "random model", test_random_model },
    { "strings", test_misc_strings },
    { "published: versions, tombstones, acks", test_published_basic },
    { "published: keys and values", test_published_validation },
    { "published: reopen, transactions", test_published_reopen_and_txn },
    { "published: upgrade of a version 1 file", test_published_upgrade },
    { "published: limits", test_published_limits },
    { "published: usage kept in memory", test_published_usage },
    { "objects: records follow the paths", test_objects_records },
    { "objects: validation", test_objects_validation },
    { "objects: row and record agree", test_objects_atomic },
    { "objects: upgrade of a version 2 file", test_objects_upgrade },
    { "handled records and results", test_handled },
    { "objects: flags added by a handler", test_object_add_flags },
    { "identity: upgrade of a version 4 file", test_identity_upgrade },
    { "identity: a clone forgets its parent's channel",
      test_clone_detected },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("datastore", tests);
}
