/* Unit tests for lib/ovsdb-replica: the pure core (updates applied
 * directly) and the session glue against a real ovsdb-server. */

#include <config.h>
#include "ovsdb-replica.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "poll-loop.h"
#include "stream.h"
#include "unit.h"
#include "util.h"
#include "vlog.h"

/* Parses 'text', with ' standing for ", into a new JSON value. */
static json_t *
jl(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    json_error_t err;
    json_t *json = json_loads(s, JSON_DECODE_ANY, &err);
    if (!json) {
        fprintf(stderr, "bad test JSON %s: %s\n", s, err.text);
        CU_FAIL("test JSON does not parse");
        json = json_null();
    }
    free(s);
    return json;
}

/* Applies the JSON text 'text' as updates; returns the error. */
static int
apply(struct ovsdb_replica *r, const char *text, bool initial)
{
    json_t *u = jl(text);
    int error = ovsdb_replica_apply_updates(r, u, initial);
    json_decref(u);
    return error;
}

/* Asserts that 'value' (borrowed) equals the JSON text 'expected' ("null"
 * meaning a NULL pointer). */
static void
check_value_(const json_t *value, const char *expected, int line)
{
    bool ok;
    if (!strcmp(expected, "null")) {
        ok = value == NULL;
    } else {
        json_t *e = jl(expected);
        ok = value && json_equal((json_t *) value, e);
        json_decref(e);
    }
    if (!ok) {
        char *a = value ? json_dumps(value, JSON_ENCODE_ANY) : NULL;
        fprintf(stderr, "line %d: expected %s, got %s\n", line, expected,
                a ? a : "NULL");
        free(a);
    }
    CU_ASSERT(ok);
}
#define check_value(V, E) check_value_(V, E, __LINE__)

#define U1 "11111111-1111-1111-1111-111111111111"
#define U2 "22222222-2222-2222-2222-222222222222"
#define U3 "33333333-3333-3333-3333-333333333333"
#define U4 "44444444-4444-4444-4444-444444444444"

static struct ovsdb_replica *
make_replica(void)
{
    static const struct ovsdb_type t_name = OVSDB_TYPE_SCALAR(STRING);
    static const struct ovsdb_type t_ids = OVSDB_TYPE_MAP(STRING, STRING);
    static const struct ovsdb_type t_ofport = OVSDB_TYPE_OPTIONAL(INTEGER);
    static const struct ovsdb_type t_ports = OVSDB_TYPE_SET(UUID);

    struct ovsdb_replica *r = ovsdb_replica_create("Open_vSwitch");
    struct ovsdb_replica_table *t = ovsdb_replica_add_table(r, "Interface");
    ovsdb_replica_add_column(t, "name", &t_name);
    ovsdb_replica_add_column(t, "external_ids", &t_ids);
    ovsdb_replica_add_column(t, "ofport", &t_ofport);
    t = ovsdb_replica_add_table(r, "Bridge");
    ovsdb_replica_add_column(t, "name", &t_name);
    ovsdb_replica_add_column(t, "ports", &t_ports);
    ovsdb_replica_add_column(t, "other", NULL);
    return r;
}

/* Returns the tracked changes of 'table' as "uuid-prefix:change ..."
 * sorted by uuid, in a static buffer. */
static const char *
tracked(const struct ovsdb_replica *r, const char *table)
{
    static char buf[1024];
    const struct ovsdb_replica_table *t = ovsdb_replica_get_table(r, table);
    const struct ovsdb_replica_row *row;
    char items[32][32];
    size_t n = 0;

    OVSDB_REPLICA_FOR_EACH_TRACKED (row, t) {
        if (n < 32) {
            snprintf(items[n++], sizeof items[0], "%.2s:%s",
                     ovsdb_replica_row_uuid(row),
                     ovsdb_replica_change_name(
                         ovsdb_replica_row_change(row)));
        }
    }
    qsort(items, n, sizeof items[0],
          (int (*)(const void *, const void *)) strcmp);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(buf, i ? " " : "");
        strcat(buf, items[i]);
    }
    return buf;
}

static const struct ovsdb_replica_row *
find(const struct ovsdb_replica *r, const char *table, const char *uuid)
{
    return ovsdb_replica_find(ovsdb_replica_get_table(r, table), uuid);
}

/* ---------------------------------------------------------------------- */

static void
test_declare(void)
{
    struct ovsdb_replica *r = make_replica();
    struct ovsdb_replica_table *t = ovsdb_replica_get_table(r, "Interface");

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_PTR_EQUAL(ovsdb_replica_add_table(r, "Interface"), t);
    CU_ASSERT_PTR_NULL(ovsdb_replica_get_table(r, "Port"));
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_table_name(t), "Interface");
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_get_db_name(r), "Open_vSwitch");
    CU_ASSERT_TRUE(ovsdb_replica_has_column(t, "name"));
    CU_ASSERT_TRUE(ovsdb_replica_has_column(t, NULL));
    CU_ASSERT_FALSE(ovsdb_replica_has_column(t, "mtu"));
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(t), 0);
    CU_ASSERT_PTR_NULL(ovsdb_replica_first(t));
    CU_ASSERT_PTR_NULL(ovsdb_replica_track_first(t));
    CU_ASSERT_FALSE(ovsdb_replica_is_connected(r));
    CU_ASSERT_FALSE(ovsdb_replica_is_synced(r));
    CU_ASSERT_FALSE(ovsdb_replica_has_changes(r));
    /* Re-declaring a column replaces its type. */
    static const struct ovsdb_type t_int = OVSDB_TYPE_SCALAR(INTEGER);
    ovsdb_replica_add_column(t, "name", &t_int);
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{'" U1 "':{'new':{'name':5}}}}",
                          false), 0);
    check_value(ovsdb_replica_row_get(find(r, "Interface", U1), "name"),
                "5");
    ovsdb_replica_destroy(r);
    ovsdb_replica_destroy(NULL);
}

static void
test_insert_modify_delete(void)
{
    struct ovsdb_replica *r = make_replica();
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(r, "Interface");
    uint64_t seqno = ovsdb_replica_get_seqno(r);

    /* Insert. */
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{'" U1 "':{'new':{'name':'vif1',"
                          "'external_ids':['map',[['chand-id','7']]],"
                          "'ofport':['set',[]],'mtu':1500}}}}", false), 0);
    CU_ASSERT_NOT_EQUAL(ovsdb_replica_get_seqno(r), seqno);
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(t), 1);
    const struct ovsdb_replica_row *row = find(r, "Interface", U1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_row_uuid(row), U1);
    CU_ASSERT_PTR_EQUAL(ovsdb_replica_row_table(row), t);
    check_value(ovsdb_replica_row_get(row, "name"), "'vif1'");
    check_value(ovsdb_replica_row_get(row, "ofport"), "['set',[]]");
    check_value(ovsdb_replica_row_get(row, "mtu"), "null");  /* Undeclared */
    check_value(ovsdb_replica_row_get_old(row, "name"), "null");
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(row), OVSDB_REPLICA_INSERTED);
    CU_ASSERT_TRUE(ovsdb_replica_row_column_changed(row, "name"));
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"), "11:inserted");
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "");
    CU_ASSERT_TRUE(ovsdb_replica_has_changes(r));

    ovsdb_replica_track_clear(r);
    CU_ASSERT_FALSE(ovsdb_replica_has_changes(r));
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"), "");
    row = find(r, "Interface", U1);
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(row), OVSDB_REPLICA_UNCHANGED);
    CU_ASSERT_FALSE(ovsdb_replica_row_column_changed(row, "name"));
    check_value(ovsdb_replica_row_get_old(row, "name"), "'vif1'");

    /* Modify: "old" has the changed columns, "new" all of them. */
    seqno = ovsdb_replica_get_seqno(r);
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{'" U1 "':{"
                          "'old':{'ofport':['set',[]]},"
                          "'new':{'name':'vif1','ofport':3,"
                          "'external_ids':['map',[['chand-id','7']]]}}}}",
                          false), 0);
    CU_ASSERT_NOT_EQUAL(ovsdb_replica_get_seqno(r), seqno);
    row = find(r, "Interface", U1);
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(row), OVSDB_REPLICA_MODIFIED);
    check_value(ovsdb_replica_row_get(row, "ofport"), "3");
    check_value(ovsdb_replica_row_get_old(row, "ofport"), "['set',[]]");
    CU_ASSERT_TRUE(ovsdb_replica_row_column_changed(row, "ofport"));
    CU_ASSERT_FALSE(ovsdb_replica_row_column_changed(row, "name"));
    CU_ASSERT_FALSE(ovsdb_replica_row_column_changed(row, "external_ids"));

    /* A partial "new" is layered over the current row. */
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{'" U1 "':{'old':{'name':'vif1'},"
                          "'new':{'name':'vif2'}}}}", false), 0);
    row = find(r, "Interface", U1);
    check_value(ovsdb_replica_row_get(row, "name"), "'vif2'");
    check_value(ovsdb_replica_row_get(row, "ofport"), "3");
    check_value(ovsdb_replica_row_get(row, "external_ids"),
                "['map',[['chand-id','7']]]");
    ovsdb_replica_track_clear(r);

    /* Delete: the row stays readable, with its last contents, until the
     * next clear, but is no longer found or iterated. */
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{'" U1 "':{'old':{'name':'vif2',"
                          "'ofport':3}}}}", false), 0);
    CU_ASSERT_PTR_NULL(find(r, "Interface", U1));
    CU_ASSERT_PTR_NULL(ovsdb_replica_first(t));
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(t), 0);
    row = ovsdb_replica_track_first(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(row), OVSDB_REPLICA_DELETED);
    check_value(ovsdb_replica_row_get(row, "name"), "'vif2'");
    check_value(ovsdb_replica_row_get_old(row, "ofport"), "3");
    CU_ASSERT_TRUE(ovsdb_replica_row_column_changed(row, "name"));
    CU_ASSERT_PTR_NULL(ovsdb_replica_track_next(row));
    ovsdb_replica_track_clear(r);
    CU_ASSERT_PTR_NULL(ovsdb_replica_track_first(t));

    ovsdb_replica_destroy(r);
}

/* Changes within one tracking period coalesce into the difference between
 * the state at the last clear and now. */
static void
test_tracking_coalesce(void)
{
    struct ovsdb_replica *r = make_replica();

    /* Insert + modify = inserted. */
    apply(r, "{'Bridge':{'" U1 "':{'new':{'name':'a'}}}}", false);
    apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'a'},'new':{'name':'b'}}}}",
          false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:inserted");
    check_value(ovsdb_replica_row_get(find(r, "Bridge", U1), "name"), "'b'");

    /* Insert + delete = nothing at all. */
    uint64_t seqno = ovsdb_replica_get_seqno(r);
    apply(r, "{'Bridge':{'" U2 "':{'new':{'name':'x'}}}}", false);
    apply(r, "{'Bridge':{'" U2 "':{'old':{'name':'x'}}}}", false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:inserted");
    CU_ASSERT_PTR_NULL(find(r, "Bridge", U2));
    CU_ASSERT_NOT_EQUAL(ovsdb_replica_get_seqno(r), seqno);
    ovsdb_replica_track_clear(r);

    /* Modify + modify back = nothing. */
    apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'b'},'new':{'name':'c'}}}}",
          false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:modified");
    apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'c'},'new':{'name':'d'}}}}",
          false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:modified");
    check_value(ovsdb_replica_row_get_old(find(r, "Bridge", U1), "name"),
                "'b'");
    apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'d'},'new':{'name':'b'}}}}",
          false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "");

    /* Modify + delete = deleted, showing the contents at the last clear. */
    apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'b'},'new':{'name':'e'}}}}",
          false);
    apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'e'}}}}", false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:deleted");
    check_value(ovsdb_replica_row_get(
                    ovsdb_replica_track_first(
                        ovsdb_replica_get_table(r, "Bridge")), "name"),
                "'b'");

    /* Delete + re-insert of the same uuid = modified, or nothing if the
     * contents are back to what they were. */
    apply(r, "{'Bridge':{'" U1 "':{'new':{'name':'f'}}}}", false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:modified");
    CU_ASSERT_PTR_NOT_NULL(find(r, "Bridge", U1));
    apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'f'}}}}", false);
    apply(r, "{'Bridge':{'" U1 "':{'new':{'name':'b'}}}}", false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "");
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(
                        ovsdb_replica_get_table(r, "Bridge")), 1);

    /* An identical update changes nothing, not even the seqno. */
    seqno = ovsdb_replica_get_seqno(r);
    apply(r, "{'Bridge':{'" U1 "':{'old':{},'new':{'name':'b'}}}}", false);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "");
    CU_ASSERT_EQUAL(ovsdb_replica_get_seqno(r), seqno);

    ovsdb_replica_destroy(r);
}

/* An initial snapshot replaces everything, reporting only real changes. */
static void
test_initial_replace(void)
{
    struct ovsdb_replica *r = make_replica();

    CU_ASSERT_EQUAL(apply(r, "{'Interface':{"
                          "'" U1 "':{'new':{'name':'a','ofport':1}},"
                          "'" U2 "':{'new':{'name':'b','ofport':2}},"
                          "'" U3 "':{'new':{'name':'c','ofport':3}}},"
                          "'Bridge':{'" U4 "':{'new':{'name':'br0'}}}}",
                          true), 0);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"),
                           "11:inserted 22:inserted 33:inserted");
    ovsdb_replica_track_clear(r);

    /* Reconnect: same 1, changed 2, gone 3, new 4; Bridge table empty. */
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{"
                          "'" U1 "':{'new':{'name':'a','ofport':1}},"
                          "'" U2 "':{'new':{'name':'b','ofport':20}},"
                          "'" U4 "':{'new':{'name':'d','ofport':4}}}}",
                          true), 0);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"),
                           "22:modified 33:deleted 44:inserted");
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "44:deleted");
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(r, "Interface");
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(t), 3);
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(find(r, "Interface", U1)),
                    OVSDB_REPLICA_UNCHANGED);
    ovsdb_replica_track_clear(r);

    /* The same snapshot again: no change at all, same seqno. */
    uint64_t seqno = ovsdb_replica_get_seqno(r);
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{"
                          "'" U4 "':{'new':{'name':'d','ofport':4}},"
                          "'" U1 "':{'new':{'name':'a','ofport':1}},"
                          "'" U2 "':{'new':{'name':'b','ofport':20}}}}",
                          true), 0);
    CU_ASSERT_FALSE(ovsdb_replica_has_changes(r));
    CU_ASSERT_EQUAL(ovsdb_replica_get_seqno(r), seqno);

    /* A snapshot replaces columns wholesale: a column missing from it is
     * gone afterwards. */
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{"
                          "'" U4 "':{'new':{'name':'d','ofport':4}},"
                          "'" U1 "':{'new':{'name':'a'}},"
                          "'" U2 "':{'new':{'name':'b','ofport':20}}}}",
                          true), 0);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"), "11:modified");
    check_value(ovsdb_replica_row_get(find(r, "Interface", U1), "ofport"),
                "null");

    /* Empty snapshot: everything goes. */
    CU_ASSERT_EQUAL(apply(r, "{}", true), 0);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"),
                           "11:deleted 22:deleted 44:deleted");
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(t), 0);
    ovsdb_replica_track_clear(r);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"), "");

    ovsdb_replica_destroy(r);
}

/* Updates that do not fit the replica are counted and handled sanely. */
static void
test_inconsistent(void)
{
    struct ovsdb_replica *r = make_replica();
    struct ovsdb_replica_stats s;

    /* Delete of an unknown uuid: ignored. */
    CU_ASSERT_EQUAL(apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'x'}}}}",
                          false), 0);
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_inconsistent, 1);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "");

    /* Modify of an unknown uuid: becomes an insert. */
    CU_ASSERT_EQUAL(apply(r, "{'Bridge':{'" U1 "':{'old':{'name':'x'},"
                          "'new':{'name':'y'}}}}", false), 0);
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_inconsistent, 2);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:inserted");
    ovsdb_replica_track_clear(r);

    /* Insert of an existing uuid: becomes a (full) modify. */
    CU_ASSERT_EQUAL(apply(r, "{'Bridge':{'" U1 "':{'new':{'name':'z'}}}}",
                          false), 0);
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_inconsistent, 3);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:modified");

    /* Deleting twice: the second is unknown. */
    apply(r, "{'Bridge':{'" U1 "':{'old':{}}}}", false);
    apply(r, "{'Bridge':{'" U1 "':{'old':{}}}}", false);
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_inconsistent, 4);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "11:deleted");

    /* Delete in an initial snapshot makes no sense: ignored. */
    apply(r, "{'Bridge':{'" U2 "':{'old':{}}}}", true);
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_inconsistent, 5);

    /* Unknown tables are ignored, not counted. */
    CU_ASSERT_EQUAL(apply(r, "{'Port':{'" U3 "':{'new':{'name':'p'}}}}",
                          false), 0);
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_inconsistent, 5);
    CU_ASSERT_EQUAL(s.n_bad_rows, 0);
    CU_ASSERT_EQUAL(s.n_bad_updates, 0);

    ovsdb_replica_destroy(r);
}

static void
quiet_hook(const char *line, void *n_)
{
    int *n = n_;
    (*n)++;
    if (getenv("UNIT_VERBOSE")) {
        fprintf(stderr, "%s\n", line);
    }
}

/* A badly typed column is dropped and counted; a malformed message
 * changes nothing. */
static void
test_bad_rows(void)
{
    struct ovsdb_replica *r = make_replica();
    struct ovsdb_replica_stats s;
    int n_logged = 0;

    vlog_set_hook(quiet_hook, &n_logged);
    CU_ASSERT_EQUAL(apply(r, "{'Interface':{'" U1 "':{'new':{'name':'vif1',"
                          "'external_ids':['map',[['a',1]]],"
                          "'ofport':['set',[1,2]]}}}}", false), 0);
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_bad_rows, 1);
    CU_ASSERT(n_logged >= 1);
    const struct ovsdb_replica_row *row = find(r, "Interface", U1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    check_value(ovsdb_replica_row_get(row, "name"), "'vif1'");
    check_value(ovsdb_replica_row_get(row, "external_ids"), "null");
    check_value(ovsdb_replica_row_get(row, "ofport"), "null");

    /* A later good value comes back; a later bad value removes the good
     * one rather than keeping it stale. */
    apply(r, "{'Interface':{'" U1 "':{'old':{},'new':{'name':'vif1',"
          "'ofport':4}}}}", false);
    check_value(ovsdb_replica_row_get(find(r, "Interface", U1), "ofport"),
                "4");
    apply(r, "{'Interface':{'" U1 "':{'old':{},'new':{'name':7,"
          "'ofport':4}}}}", false);
    row = find(r, "Interface", U1);
    check_value(ovsdb_replica_row_get(row, "name"), "null");
    check_value(ovsdb_replica_row_get(row, "ofport"), "4");
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_bad_rows, 2);

    /* Malformed messages: nothing applied, not even the good rows. */
    ovsdb_replica_track_clear(r);
    uint64_t seqno = ovsdb_replica_get_seqno(r);
    static const char *const bad[] = {
        "[]",
        "{'Interface':{'" U2 "':{'new':{'name':'ok'}},"
        "'" U1 "':{'new':{'name':['uuid','nope']}}}}",
        "{'Interface':{'" U2 "':{'new':{'name':'ok'}},'xyz':{'new':{}}}}",
        "{'Interface':{'" U2 "':{'new':{'name':'ok'}}},'Bridge':[]}",
        "{'Interface':{'" U2 "':{'neu':{'name':'ok'}}}}",
        "{'Interface':{'" U2 "':{}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_NOT_EQUAL(apply(r, bad[i], false), 0);
        CU_ASSERT_NOT_EQUAL(apply(r, bad[i], true), 0);
    }
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_bad_updates, 2 * sizeof bad / sizeof bad[0]);
    CU_ASSERT_FALSE(ovsdb_replica_has_changes(r));
    CU_ASSERT_EQUAL(ovsdb_replica_get_seqno(r), seqno);
    CU_ASSERT_PTR_NULL(find(r, "Interface", U2));
    CU_ASSERT_PTR_NOT_NULL(find(r, "Interface", U1));

    vlog_set_hook(NULL, NULL);
    ovsdb_replica_destroy(r);
}

static void
test_find(void)
{
    struct ovsdb_replica *r = make_replica();
    apply(r, "{'Bridge':{'ABCDEF00-1111-2222-3333-444444444444':"
          "{'new':{'name':'x'}}}}", false);
    const struct ovsdb_replica_row *row
        = find(r, "Bridge", "abcdef00-1111-2222-3333-444444444444");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_row_uuid(row),
                           "abcdef00-1111-2222-3333-444444444444");
    CU_ASSERT_PTR_EQUAL(find(r, "Bridge",
                             "ABCDEF00-1111-2222-3333-444444444444"), row);
    CU_ASSERT_PTR_NULL(find(r, "Bridge", "abcdef00"));
    CU_ASSERT_PTR_NULL(find(r, "Bridge", ""));
    CU_ASSERT_PTR_NULL(find(r, "Bridge", NULL));
    CU_ASSERT_PTR_NULL(find(r, "Bridge", U1));
    /* The uppercase delete finds the row too. */
    apply(r, "{'Bridge':{'abcdef00-1111-2222-3333-444444444444':"
          "{'old':{}}}}", false);
    CU_ASSERT_PTR_NULL(find(r, "Bridge",
                            "ABCDEF00-1111-2222-3333-444444444444"));
    ovsdb_replica_destroy(r);
}

/* Rows found by a string column, string values, uuid sets. */
static void
test_find_by_string(void)
{
    struct ovsdb_replica *r = make_replica();
    const struct ovsdb_replica_table *t = ovsdb_replica_get_table(r,
                                                                  "Bridge");
    apply(r, "{'Bridge':{'"U1"':{'new':{'name':'br0','ports':"
          "['set',[['uuid','"U2"'],['uuid','"U3"']]]}},"
          "'"U2"':{'new':{'name':'br1','ports':['uuid','"U1"']}}}}", false);

    const struct ovsdb_replica_row *row;
    row = ovsdb_replica_find_by_string(t, "name", "br1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_row_uuid(row), U2);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_row_get_string(row, "name"), "br1");
    CU_ASSERT_PTR_NULL(ovsdb_replica_row_get_string(row, "ports"));
    CU_ASSERT_PTR_NULL(ovsdb_replica_row_get_string(NULL, "name"));
    CU_ASSERT_PTR_NULL(ovsdb_replica_find_by_string(t, "name", "br2"));
    CU_ASSERT_PTR_NULL(ovsdb_replica_find_by_string(t, "nope", "br1"));

    /* A set of two uuids, and a single uuid. */
    CU_ASSERT(ovsdb_replica_row_refers_to(row, "ports", U1));
    CU_ASSERT_FALSE(ovsdb_replica_row_refers_to(row, "ports", U2));
    row = ovsdb_replica_find_by_string(t, "name", "br0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT(ovsdb_replica_row_refers_to(row, "ports", U2));
    CU_ASSERT(ovsdb_replica_row_refers_to(row, "ports", U3));
    CU_ASSERT_FALSE(ovsdb_replica_row_refers_to(row, "ports", U1));
    CU_ASSERT_FALSE(ovsdb_replica_row_refers_to(row, "name", U2));
    ovsdb_replica_destroy(r);
}

/* Many rows: the hash grows, every row stays findable, iteration sees each
 * row once. */
static void
test_many_rows(void)
{
    struct ovsdb_replica *r = make_replica();
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(r, "Bridge");
    enum { N = 2000 };
    char uuid[64];

    /* "other" is declared without a type. */
    json_t *rows = json_object();
    for (int i = 0; i < N; i++) {
        snprintf(uuid, sizeof uuid, "%08x-0000-0000-0000-000000000000", i);
        json_object_set_new(rows, uuid, json_pack("{s{si}}", "new", "other",
                                                  i));
    }
    json_t *u = json_pack("{so}", "Bridge", rows);
    CU_ASSERT_EQUAL(ovsdb_replica_apply_updates(r, u, true), 0);
    json_decref(u);
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(t), N);

    for (int i = 0; i < N; i++) {
        snprintf(uuid, sizeof uuid, "%08x-0000-0000-0000-000000000000", i);
        const struct ovsdb_replica_row *row = ovsdb_replica_find(t, uuid);
        CU_ASSERT_PTR_NOT_NULL_FATAL(row);
        CU_ASSERT_EQUAL(json_integer_value(ovsdb_replica_row_get(row,
                                                                 "other")),
                        i);
    }
    ovsdb_replica_track_clear(r);

    /* Delete the odd ones. */
    rows = json_object();
    for (int i = 1; i < N; i += 2) {
        snprintf(uuid, sizeof uuid, "%08x-0000-0000-0000-000000000000", i);
        json_object_set_new(rows, uuid, json_pack("{s{}}", "old"));
    }
    u = json_pack("{so}", "Bridge", rows);
    CU_ASSERT_EQUAL(ovsdb_replica_apply_updates(r, u, false), 0);
    json_decref(u);
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(t), N / 2);

    size_t n = 0, n_tracked = 0;
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, t) {
        CU_ASSERT_EQUAL(json_integer_value(ovsdb_replica_row_get(row,
                                                                 "other"))
                        % 2, 0);
        n++;
    }
    OVSDB_REPLICA_FOR_EACH_TRACKED (row, t) {
        CU_ASSERT_EQUAL(ovsdb_replica_row_change(row),
                        OVSDB_REPLICA_DELETED);
        n_tracked++;
    }
    CU_ASSERT_EQUAL(n, N / 2);
    CU_ASSERT_EQUAL(n_tracked, N / 2);
    ovsdb_replica_track_clear(r);
    ovsdb_replica_destroy(r);
}

/* Model-based random test: random incremental updates and full snapshots
 * against a model; after every step the replica's rows equal the model's
 * and its tracked changes equal the difference between the model at the
 * last clear and now. */
enum { MODEL_ROWS = 24 };

struct model {
    bool present[MODEL_ROWS];
    int value[MODEL_ROWS];
    int name[MODEL_ROWS];
};

static void
model_uuid(int i, char *buf, size_t size)
{
    snprintf(buf, size, "%08x-aaaa-bbbb-cccc-%012d", i * 7919, i);
}

static json_t *
model_row(const struct model *m, int i)
{
    char name[16];
    snprintf(name, sizeof name, "n%d", m->name[i]);
    return json_pack("{sssi}", "name", name, "ofport", m->value[i]);
}

static void
check_model(const struct ovsdb_replica *r, const struct model *now,
            const struct model *then)
{
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(r, "Interface");
    size_t n_now = 0, n_changes = 0;
    char uuid[64];

    for (int i = 0; i < MODEL_ROWS; i++) {
        model_uuid(i, uuid, sizeof uuid);
        const struct ovsdb_replica_row *row = ovsdb_replica_find(t, uuid);
        CU_ASSERT_EQUAL_FATAL(row != NULL, now->present[i]);
        if (row) {
            n_now++;
            json_t *expect = model_row(now, i);
            CU_ASSERT(json_equal(json_object_get(expect, "name"),
                                 (json_t *) ovsdb_replica_row_get(row,
                                                                  "name")));
            CU_ASSERT_EQUAL(json_integer_value(
                                ovsdb_replica_row_get(row, "ofport")),
                            now->value[i]);
            json_decref(expect);
        }
        bool changed = (now->present[i] != then->present[i]
                        || (now->present[i]
                            && (now->value[i] != then->value[i]
                                || now->name[i] != then->name[i])));
        n_changes += changed;
        if (row) {
            enum ovsdb_replica_change c = ovsdb_replica_row_change(row);
            CU_ASSERT_EQUAL(c, !changed ? OVSDB_REPLICA_UNCHANGED
                               : then->present[i] ? OVSDB_REPLICA_MODIFIED
                               : OVSDB_REPLICA_INSERTED);
            if (then->present[i]) {
                CU_ASSERT_EQUAL(json_integer_value(
                                    ovsdb_replica_row_get_old(row, "ofport")),
                                then->value[i]);
            }
        }
    }
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(t), n_now);

    /* Tracked rows: exactly the changed ones; deleted ones show their
     * contents at the last clear. */
    size_t n_tracked = 0;
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH_TRACKED (row, t) {
        n_tracked++;
        if (ovsdb_replica_row_change(row) == OVSDB_REPLICA_DELETED) {
            int i;
            for (i = 0; i < MODEL_ROWS; i++) {
                model_uuid(i, uuid, sizeof uuid);
                if (!strcmp(uuid, ovsdb_replica_row_uuid(row))) {
                    break;
                }
            }
            CU_ASSERT_FATAL(i < MODEL_ROWS);
            CU_ASSERT_TRUE(then->present[i] && !now->present[i]);
            CU_ASSERT_EQUAL(json_integer_value(
                                ovsdb_replica_row_get(row, "ofport")),
                            then->value[i]);
        }
    }
    CU_ASSERT_EQUAL(n_tracked, n_changes);
}

/* The index on "name" (if 'indexed', else on the integer "ofport", which
 * groups nothing) visits exactly the present rows of each name. */
static void
check_model_index(const struct ovsdb_replica *r, const struct model *now,
                  bool indexed)
{
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(r, "Interface");
    for (int k = 0; k < 4; k++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", k);
        size_t expect = 0, found = 0;
        for (int i = 0; i < MODEL_ROWS; i++) {
            expect += now->present[i] && now->name[i] == k;
        }
        const struct ovsdb_replica_row *row;
        OVSDB_REPLICA_FOR_EACH_EQ (row, t, name) {
            const char *v = ovsdb_replica_row_get_string(row, "name");
            CU_ASSERT_PTR_NOT_NULL_FATAL(v);
            CU_ASSERT_STRING_EQUAL(v, name);
            found++;
        }
        CU_ASSERT_EQUAL(found, indexed ? expect : 0);
    }
}

static void
test_random_model(void)
{
    struct ovsdb_replica *r = make_replica();
    struct model now, then;
    uint64_t seed = 0xc0ffee;
    char uuid[64];

    memset(&now, 0, sizeof now);
    then = now;
    struct ovsdb_replica_table *iface = ovsdb_replica_get_table(r,
                                                                "Interface");
    ovsdb_replica_add_index(iface, "name");
    bool indexed = true;
    for (int step = 0; step < 3000; step++) {
        uint64_t what = unit_random(&seed) % 10;
        if (step == 1000 || step == 1500) {
            /* Another index, then "name" again over the rows present. */
            indexed = step == 1500;
            ovsdb_replica_add_index(iface, indexed ? "name" : "ofport");
            check_model_index(r, &now, indexed);
        }
        if (what == 0) {
            ovsdb_replica_track_clear(r);
            then = now;
            continue;
        }

        struct model next = now;
        int n_changes = 1 + unit_random(&seed) % 4;
        for (int c = 0; c < n_changes; c++) {
            int i = unit_random(&seed) % MODEL_ROWS;
            switch (unit_random(&seed) % 4) {
            case 0:
                next.present[i] = !next.present[i];
                break;
            case 1:
                next.value[i] = unit_random(&seed) % 4;
                break;
            case 2:
                next.name[i] = unit_random(&seed) % 3;
                break;
            default:
                break;
            }
        }

        json_t *table = json_object();
        bool initial = what == 1;
        for (int i = 0; i < MODEL_ROWS; i++) {
            model_uuid(i, uuid, sizeof uuid);
            if (initial) {
                if (next.present[i]) {
                    json_object_set_new(table, uuid,
                                        json_pack("{so}", "new",
                                                  model_row(&next, i)));
                }
            } else if (next.present[i] && !now.present[i]) {
                json_object_set_new(table, uuid,
                                    json_pack("{so}", "new",
                                              model_row(&next, i)));
            } else if (!next.present[i] && now.present[i]) {
                json_object_set_new(table, uuid,
                                    json_pack("{so}", "old",
                                              model_row(&now, i)));
            } else if (next.present[i]
                       && (next.value[i] != now.value[i]
                           || next.name[i] != now.name[i])) {
                json_t *old = json_object();
                if (next.value[i] != now.value[i]) {
                    json_object_set_new(old, "ofport",
                                        json_integer(now.value[i]));
                }
                json_object_set_new(table, uuid,
                                    json_pack("{soso}", "old", old, "new",
                                              model_row(&next, i)));
            }
        }
        json_t *u = json_pack("{so}", "Interface", table);
        CU_ASSERT_EQUAL_FATAL(ovsdb_replica_apply_updates(r, u, initial), 0);
        json_decref(u);
        now = next;
        check_model(r, &now, &then);
        check_model_index(r, &now, indexed);
    }

    struct ovsdb_replica_stats s;
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_inconsistent, 0);
    CU_ASSERT_EQUAL(s.n_bad_rows, 0);
    ovsdb_replica_destroy(r);
}

/* Transactions while not connected fail from the next run, never from
 * inside ovsdb_replica_transact(). */
/* ----------------------------------------------------------------------
 * Version 2 updates, the _Server check, conditions (pure core).
 */

#define L1 "a1a1a1a1-0000-0000-0000-000000000001"
#define L2 "a1a1a1a1-0000-0000-0000-000000000002"
#define L3 "a1a1a1a1-0000-0000-0000-000000000003"
#define L4 "a1a1a1a1-0000-0000-0000-000000000004"
#define L5 "a1a1a1a1-0000-0000-0000-000000000005"
#define L6 "a1a1a1a1-0000-0000-0000-000000000006"
#define U9 "99999999-9999-9999-9999-999999999999"

static const char ovs_schema2[] =
    "{'name':'Open_vSwitch','tables':{"
    "'Interface':{'columns':{'name':{'type':'string'},"
    "'external_ids':{'type':{'key':'string','value':'string',"
    "'min':0,'max':'unlimited'}},"
    "'ofport':{'type':{'key':'integer','min':0,'max':1}}}},"
    "'Bridge':{'columns':{'name':{'type':'string'},"
    "'ports':{'type':{'key':{'type':'uuid','refTable':'Port'},"
    "'min':0,'max':'unlimited'}},"
    "'other':{'type':{'key':'string','min':0,'max':'unlimited'}}}}}}";

static int
apply2(struct ovsdb_replica *r, const char *text, bool initial)
{
    json_t *u = jl(text);
    int error = ovsdb_replica_apply_updates2(r, u, initial);
    json_decref(u);
    return error;
}

static void
test_update2(void)
{
    struct ovsdb_replica *r = make_replica();
    struct ovsdb_replica_stats s;
    int n_logged = 0;
    json_t *schema = jl(ovs_schema2);
    ovsdb_replica_set_schema(r, schema);
    json_decref(schema);

    /* Initial rows: columns left out take their defaults. */
    CU_ASSERT_EQUAL(apply2(r, "{'Interface':{'" U1 "':{'initial':{"
                           "'name':'vif1','external_ids':['map',[['a','1'],"
                           "['b','2']]]}}},'Bridge':{'" U2 "':{'initial':{"
                           "'name':'br0'}}}}", true), 0);
    const struct ovsdb_replica_row *vif = find(r, "Interface", U1);
    const struct ovsdb_replica_row *br = find(r, "Bridge", U2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vif);
    CU_ASSERT_PTR_NOT_NULL_FATAL(br);
    check_value(ovsdb_replica_row_get(vif, "ofport"), "['set',[]]");
    check_value(ovsdb_replica_row_get(br, "ports"), "['set',[]]");
    check_value(ovsdb_replica_row_get(br, "other"), "['set',[]]");
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"), "11:inserted");
    ovsdb_replica_track_clear(r);

    /* Map diff: a (same value) removed, b replaced, c added; an optional
     * column's diff is its new value. */
    CU_ASSERT_EQUAL(apply2(r, "{'Interface':{'" U1 "':{'modify':{"
                           "'external_ids':['map',[['a','1'],['b','3'],"
                           "['c','4']]],'ofport':5}}}}", false), 0);
    vif = find(r, "Interface", U1);
    check_value(ovsdb_replica_row_get(vif, "external_ids"),
                "['map',[['b','3'],['c','4']]]");
    check_value(ovsdb_replica_row_get(vif, "ofport"), "5");
    check_value(ovsdb_replica_row_get(vif, "name"), "'vif1'");
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"), "11:modified");
    CU_ASSERT_TRUE(ovsdb_replica_row_column_changed(vif, "external_ids"));
    CU_ASSERT_FALSE(ovsdb_replica_row_column_changed(vif, "name"));
    ovsdb_replica_track_clear(r);

    /* Set diffs toggle elements; the result is canonical (sorted, one
     * element as a bare atom). */
    CU_ASSERT_EQUAL(apply2(r, "{'Bridge':{'" U2 "':{'modify':{"
                           "'ports':['set',[['uuid','" U4 "'],['uuid','"
                           U3 "']]],'other':['set',['y','x']]}}}}", false),
                    0);
    br = find(r, "Bridge", U2);
    check_value(ovsdb_replica_row_get(br, "ports"),
                "['set',[['uuid','" U3 "'],['uuid','" U4 "']]]");
    check_value(ovsdb_replica_row_get(br, "other"), "['set',['x','y']]");
    CU_ASSERT_EQUAL(apply2(r, "{'Bridge':{'" U2 "':{'modify':{"
                           "'ports':['uuid','" U3 "'],"
                           "'other':['set',['x','z']]}}}}", false), 0);
    br = find(r, "Bridge", U2);
    check_value(ovsdb_replica_row_get(br, "ports"), "['uuid','" U4 "']");
    check_value(ovsdb_replica_row_get(br, "other"), "['set',['y','z']]");
    /* Clearing an optional column and the last map pairs. */
    CU_ASSERT_EQUAL(apply2(r, "{'Interface':{'" U1 "':{'modify':{"
                           "'ofport':['set',[]],'external_ids':['map',"
                           "[['b','3'],['c','4']]]}}}}", false), 0);
    vif = find(r, "Interface", U1);
    check_value(ovsdb_replica_row_get(vif, "ofport"), "['set',[]]");
    check_value(ovsdb_replica_row_get(vif, "external_ids"), "['map',[]]");

    /* An insert, and a delete. */
    CU_ASSERT_EQUAL(apply2(r, "{'Interface':{'" U3 "':{'insert':{"
                           "'name':'vif3','ofport':3}},'" U1 "':{'delete':"
                           "null}}}", false), 0);
    ovsdb_replica_track_clear(r);
    CU_ASSERT_PTR_NULL(find(r, "Interface", U1));
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(
                        ovsdb_replica_get_table(r, "Interface")), 1);
    check_value(ovsdb_replica_row_get(find(r, "Interface", U3),
                                      "external_ids"), "['map',[]]");
    CU_ASSERT_EQUAL(ovsdb_replica_table_n_row_updates(
                        ovsdb_replica_get_table(r, "Interface")), 5);

    /* Malformed: nothing applied, counted. */
    vlog_set_hook(quiet_hook, &n_logged);
    static const char *const bad[] = {
        "[]",
        "{'Interface':[]}",
        "{'Interface':{'not-a-uuid':{'insert':{}}}}",
        "{'Interface':{'" U3 "':{}}}",
        "{'Interface':{'" U3 "':{'insert':{},'delete':null}}}",
        "{'Interface':{'" U3 "':{'delete':1}}}",
        "{'Interface':{'" U3 "':{'remove':{}}}}",
        "{'Interface':{'" U3 "':{'modify':{'name':['set',[1,1]]}}}}",
        "{'Interface':{'" U4 "':{'insert':{}}},'Bridge':{'" U2 "':"
        "{'modify':[]}}}",
    };
    uint64_t seqno = ovsdb_replica_get_seqno(r);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT(apply2(r, bad[i], false) > 0);
    }
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_bad_updates, sizeof bad / sizeof bad[0]);
    CU_ASSERT_EQUAL(ovsdb_replica_get_seqno(r), seqno);
    CU_ASSERT_PTR_NULL(find(r, "Interface", U4));

    /* Diffs that do not fit: a modify of an unknown row, a map diff on a
     * set: inconsistent (resync needed), the rest applied. */
    CU_ASSERT_EQUAL(apply2(r, "{'Interface':{'" U4 "':{'modify':{"
                           "'ofport':1}},'" U3 "':{'modify':{'ofport':4}}}}",
                           false), OVSDB_REPLICA_E_INCONSISTENT);
    check_value(ovsdb_replica_row_get(find(r, "Interface", U3), "ofport"),
                "4");
    CU_ASSERT_EQUAL(apply2(r, "{'Bridge':{'" U2 "':{'modify':{"
                           "'other':['map',[['k','v']]]}}}}", false),
                    OVSDB_REPLICA_E_INCONSISTENT);
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_inconsistent, 1);
    CU_ASSERT(s.n_bad_rows >= 1);

    /* A full snapshot repairs everything. */
    CU_ASSERT_EQUAL(apply2(r, "{'Bridge':{'" U2 "':{'initial':{"
                           "'name':'br0','other':'q'}}}}", true), 0);
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(
                        ovsdb_replica_get_table(r, "Interface")), 0);
    check_value(ovsdb_replica_row_get(find(r, "Bridge", U2), "other"), "'q'");
    vlog_set_hook(NULL, NULL);
    ovsdb_replica_destroy(r);
}

static void
check_diff_(const char *old, const char *diff, const struct ovsdb_type *type,
            const char *expect, int line)
{
    json_t *o = old ? jl(old) : NULL;
    json_t *d = jl(diff);
    json_t *n;
    int error = ovsdb_datum_apply_diff(o, d, type, &n);
    if (expect) {
        CU_ASSERT_EQUAL(error, 0);
        check_value_(n, expect, line);
    } else {
        CU_ASSERT(error != 0);
        CU_ASSERT_PTR_NULL(n);
    }
    json_decref(n);
    json_decref(o);
    json_decref(d);
}
#define check_diff(O, D, T, E) check_diff_(O, D, T, E, __LINE__)

static void
test_apply_diff(void)
{
    static const struct ovsdb_type any = OVSDB_TYPE_ANY;
    static const struct ovsdb_type str = OVSDB_TYPE_SCALAR(STRING);
    static const struct ovsdb_type opt = OVSDB_TYPE_OPTIONAL(INTEGER);
    static const struct ovsdb_type set = OVSDB_TYPE_SET(INTEGER);
    static const struct ovsdb_type map = OVSDB_TYPE_MAP(STRING, INTEGER);
    static const struct ovsdb_type set12 = { OVSDB_ATOM_INTEGER,
                                             OVSDB_ATOM_NONE, 1, 2 };

    check_diff("'a'", "'b'", &str, "'b'");
    check_diff("'a'", "1", &str, NULL);
    check_diff("['set',[]]", "7", &opt, "7");
    check_diff("7", "['set',[]]", &opt, "['set',[]]");
    check_diff(NULL, "['set',[3,1]]", &set, "['set',[1,3]]");
    check_diff("['set',[1,2,3]]", "['set',[2,4]]", &set, "['set',[1,3,4]]");
    check_diff("['set',[1,2]]", "['set',[1]]", &set, "2");
    check_diff("['set',[1,2]]", "3", &set12, NULL);     /* Too many. */
    check_diff("['map',[['a',1],['b',2]]]",
               "['map',[['a',1],['b',5],['c',0]]]", &map,
               "['map',[['b',5],['c',0]]]");
    check_diff("['map',[['a',1]]]", "['set',[1]]", &map, NULL);
    check_diff("['map',[['a',1]]]", "['map',[['a','x']]]", &map, NULL);
    /* Unknown types: the diff's shape decides. */
    check_diff("['set',['a']]", "['set',['a','b']]", &any, "'b'");
    check_diff("['map',[['k','v']]]", "['map',[['k','w']]]", &any,
               "['map',[['k','w']]]");
    check_diff("'a'", "'b'", &any, "'b'");
    check_diff("['set',['a']]", "['set',[1]]", &any, NULL);   /* Mixed. */
    check_diff("'a'", "['named-uuid','x']", &any, NULL);
}

/* Map diffs against a model: a key the diff names is added if absent,
 * changed if its value differs, and removed if equal; the result is
 * sorted.  The old datum comes in a random order. */
static void
test_apply_diff_random(void)
{
    static const struct ovsdb_type map = OVSDB_TYPE_MAP(STRING, INTEGER);
    uint64_t rng = 0xd1ff;
    for (int round = 0; round < 300; round++) {
        json_t *model = json_object();
        json_t *old_pairs = json_array();
        size_t n_old = unit_random(&rng) % 200;
        for (size_t i = 0; i < n_old; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%03d", (int) (unit_random(&rng) % 300));
            if (json_object_get(model, k)) {
                continue;
            }
            json_int_t v = unit_random(&rng) % 3;
            json_object_set_new(model, k, json_integer(v));
            /* Insert at a random place: not sorted. */
            size_t at = json_array_size(old_pairs)
                        ? unit_random(&rng) % (json_array_size(old_pairs) + 1)
                        : 0;
            json_array_insert_new(old_pairs, at, json_pack("[sI]", k, v));
        }
        json_t *diff_pairs = json_array();
        json_t *named = json_object();
        size_t n_diff = unit_random(&rng) % 40;
        for (size_t i = 0; i < n_diff; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%03d", (int) (unit_random(&rng) % 300));
            if (json_object_get(named, k)) {
                continue;
            }
            json_object_set_new(named, k, json_true());
            json_int_t v = unit_random(&rng) % 3;
            json_array_append_new(diff_pairs, json_pack("[sI]", k, v));
            json_t *have = json_object_get(model, k);
            if (have && json_integer_value(have) == v) {
                json_object_del(model, k);
            } else {
                json_object_set_new(model, k, json_integer(v));
            }
        }
        json_t *old = json_pack("[so]", "map", old_pairs);
        json_t *diff = json_pack("[so]", "map", diff_pairs);
        json_t *result;
        CU_ASSERT_EQUAL_FATAL(ovsdb_datum_apply_diff(old, diff, &map,
                                                     &result), 0);
        /* Compare pair by pair, in order. */
        const json_t *pairs = json_is_array(result)
                              && !strcmp(json_string_value(
                                             json_array_get(result, 0)),
                                         "map")
                              ? json_array_get(result, 1) : NULL;
        CU_ASSERT_PTR_NOT_NULL(pairs);
        size_t n_result = pairs ? json_array_size(pairs) : 0;
        CU_ASSERT_EQUAL(n_result, json_object_size(model));
        const char *prev = "";
        for (size_t i = 0; i < n_result; i++) {
            const json_t *pair = json_array_get(pairs, i);
            const char *k = json_string_value(json_array_get(pair, 0));
            CU_ASSERT(strcmp(prev, k) < 0);
            prev = k;
            CU_ASSERT_EQUAL(json_integer_value(json_array_get(pair, 1)),
                            json_integer_value(json_object_get(model, k)));
        }
        json_decref(result);
        json_decref(old);
        json_decref(diff);
        json_decref(named);
        json_decref(model);
    }
}

/* Applies _Server "Database" updates given as JSON text. */
static int
apply_server(struct ovsdb_replica *r, const char *text, bool initial)
{
    json_t *u = jl(text);
    int error = ovsdb_replica_apply_server_updates(r, u, initial);
    json_decref(u);
    return error;
}

#define DB_ROW(NAME, MODEL, CONNECTED, LEADER, SCHEMA, INDEX)              \
    "{'Database':{'" U9 "':{'new':{'name':'" NAME "','model':'" MODEL "',"  \
    "'connected':" CONNECTED ",'leader':" LEADER ",'schema':" SCHEMA ","    \
    "'index':" INDEX ",'cid':['set',[]]}}}}"

static void
test_server_check(void)
{
    struct ovsdb_replica *r = ovsdb_replica_create("Chan");

    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_NO_DB);
    CU_ASSERT_EQUAL(apply_server(r, DB_ROW("Other", "standalone", "true",
                                           "true", "'{}'", "['set',[]]"),
                                 true), 0);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_NO_DB);

    /* Standalone: needs only a schema. */
    apply_server(r, DB_ROW("Chan", "standalone", "true", "true", "'{}'",
                           "['set',[]]"), true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_OK);
    apply_server(r, DB_ROW("Chan", "standalone", "true", "true",
                           "['set',[]]", "['set',[]]"), true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_NO_SCHEMA);

    /* Clustered. */
    apply_server(r, DB_ROW("Chan", "clustered", "false", "false",
                           "['set',[]]", "['set',[]]"), true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_NOT_JOINED);
    apply_server(r, DB_ROW("Chan", "clustered", "false", "false", "'{}'",
                           "3"), true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_DISCONNECTED);
    apply_server(r, DB_ROW("Chan", "clustered", "true", "false", "'{}'",
                           "10"), true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_OK);
    ovsdb_replica_set_leader_only(r, true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_NOT_LEADER);
    /* A v1 modify: only the changed column in 'old'. */
    CU_ASSERT_EQUAL(apply_server(r, "{'Database':{'" U9 "':{'old':{"
                                 "'leader':false},'new':{'name':'Chan',"
                                 "'model':'clustered','connected':true,"
                                 "'leader':true,'schema':'{}','index':12}}}}",
                                 false), 0);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_OK);
    /* Another server behind the highest index seen: stale. */
    apply_server(r, DB_ROW("Chan", "clustered", "true", "true", "'{}'",
                           "11"), true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_STALE);
    apply_server(r, DB_ROW("Chan", "clustered", "true", "true", "'{}'",
                           "12"), true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_OK);
    ovsdb_replica_set_leader_only(r, false);
    apply_server(r, DB_ROW("Chan", "clustered", "true", "false", "'{}'",
                           "12"), true);
    CU_ASSERT_EQUAL(ovsdb_replica_check_server(r, true),
                    OVSDB_REPLICA_SERVER_OK);
    CU_ASSERT(apply_server(r, "{'Database':[]}", false) > 0);
    CU_ASSERT_STRING_EQUAL(
        ovsdb_replica_server_status_name(OVSDB_REPLICA_SERVER_NOT_LEADER),
        "clustered database server is not cluster leader");
    ovsdb_replica_destroy(r);
}

static void
test_condition_api(void)
{
    struct ovsdb_replica *r = make_replica();
    struct ovsdb_replica_table *t = ovsdb_replica_get_table(r, "Interface");
    json_t *c = jl("[['name','==','vif1']]");
    json_t *t1 = jl("[true]");
    json_t *bad = jl("{'x':1}");

    CU_ASSERT_FALSE(ovsdb_replica_cond_pending(r));
    CU_ASSERT_EQUAL(ovsdb_replica_set_condition(t, bad), EINVAL);
    CU_ASSERT_FALSE(ovsdb_replica_cond_pending(r));
    /* [true] is the default: no change. */
    CU_ASSERT_EQUAL(ovsdb_replica_set_condition(t, t1), 0);
    CU_ASSERT_EQUAL(ovsdb_replica_set_condition(t, NULL), 0);
    CU_ASSERT_FALSE(ovsdb_replica_cond_pending(r));
    CU_ASSERT_EQUAL(ovsdb_replica_set_condition(t, c), 0);
    CU_ASSERT_TRUE(ovsdb_replica_cond_pending(r));
    CU_ASSERT_EQUAL(ovsdb_replica_set_condition(t, c), 0);
    CU_ASSERT_PTR_NULL(ovsdb_replica_get_last_id(r));
    CU_ASSERT_PTR_NULL(ovsdb_replica_get_remote(r));
    json_decref(c);
    json_decref(t1);
    json_decref(bad);
    ovsdb_replica_destroy(r);
}

struct txn_result {
    int n_calls;
    char *error;
    json_t *result;
};

static void
txn_cb(const json_t *result, const char *error, void *res_)
{
    struct txn_result *res = res_;
    res->n_calls++;
    free(res->error);
    res->error = error ? strdup(error) : NULL;
    json_decref(res->result);
    res->result = result ? json_incref((json_t *) result) : NULL;
}

static void
txn_result_clear(struct txn_result *res)
{
    free(res->error);
    json_decref(res->result);
    memset(res, 0, sizeof *res);
}

static void
test_txn_offline(void)
{
    struct ovsdb_replica *r = make_replica();
    struct txn_result a = { 0 }, b = { 0 }, c = { 0 };

    uint64_t id1 = ovsdb_replica_transact(r, json_array(), txn_cb, &a);
    uint64_t id2 = ovsdb_replica_transact(r, json_object(), txn_cb, &b);
    uint64_t id3 = ovsdb_replica_transact(r, json_array(), txn_cb, &c);
    CU_ASSERT(id1 && id2 && id3 && id1 != id2 && id2 != id3);
    CU_ASSERT_EQUAL(a.n_calls + b.n_calls + c.n_calls, 0);
    CU_ASSERT_EQUAL(ovsdb_replica_n_pending(r), 3);
    ovsdb_replica_transact_cancel(r, id3);
    ovsdb_replica_transact_cancel(r, 9999);
    CU_ASSERT_EQUAL(ovsdb_replica_n_pending(r), 2);

    ovsdb_replica_run(r);
    CU_ASSERT_EQUAL(a.n_calls, 1);
    CU_ASSERT_STRING_EQUAL(a.error, "not connected");
    CU_ASSERT_PTR_NULL(a.result);
    CU_ASSERT_EQUAL(b.n_calls, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.error, "array"));
    CU_ASSERT_EQUAL(c.n_calls, 0);
    CU_ASSERT_EQUAL(ovsdb_replica_n_pending(r), 0);
    ovsdb_replica_run(r);
    CU_ASSERT_EQUAL(a.n_calls, 1);

    struct ovsdb_replica_stats s;
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_txn_failed, 2);
    CU_ASSERT_EQUAL(s.n_txn_sent, 0);

    /* Destroying with a pending transaction calls nothing. */
    ovsdb_replica_transact(r, json_array(), txn_cb, &c);
    ovsdb_replica_destroy(r);
    CU_ASSERT_EQUAL(c.n_calls, 0);
    txn_result_clear(&a);
    txn_result_clear(&b);
    txn_result_clear(&c);
}

/* ----------------------------------------------------------------------
 * Integration with a real ovsdb-server.
 */

struct server {
    char dir[64];
    char db[128];
    char sock[128];
    char remote[160];
    pid_t pid;
};

static const char *
find_program(const char *name, char *buf, size_t size)
{
    static const char *const dirs[] = {
        "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin",
        "/sbin", "/bin",
    };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(buf, size, "%s/%s", dirs[i], name);
        if (!access(buf, X_OK)) {
            return buf;
        }
    }
    return NULL;
}

/* Runs a command line with system(); returns true on exit status 0. */
static bool
run_cmd(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static bool
run_cmd(const char *fmt, ...)
{
    char cmd[2048];
    va_list args;
    va_start(args, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, args);
    va_end(args);
    int status = system(cmd);
    if (status != 0) {
        fprintf(stderr, "command failed (%d): %s\n", status, cmd);
    }
    return status == 0;
}

static bool
server_start(struct server *srv)
{
    char prog[256];
    if (!find_program("ovsdb-server", prog, sizeof prog)) {
        return false;
    }

    unlink(srv->sock);
    pid_t pid = fork();
    if (pid < 0) {
        return false;
    }
    if (!pid) {
        char log[160], ctl[160], remote[160];
        /* Do not outlive a test that dies half-way. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        snprintf(log, sizeof log, "%s/ovsdb-server.log", srv->dir);
        snprintf(ctl, sizeof ctl, "--unixctl=%s/ctl", srv->dir);
        snprintf(remote, sizeof remote, "--remote=punix:%s", srv->sock);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(prog, "ovsdb-server", remote, ctl, "--no-chdir",
              "-vconsole:warn", srv->db, (char *) NULL);
        _exit(127);
    }
    srv->pid = pid;

    /* Wait for the socket to appear (bounded). */
    long long int deadline = time_msec() + 20000;
    while (time_msec() < deadline) {
        struct stat st;
        if (!stat(srv->sock, &st)) {
            return true;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            srv->pid = 0;
            return false;
        }
        usleep(10000);
    }
    return false;
}

static void
server_stop(struct server *srv)
{
    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        waitpid(srv->pid, NULL, 0);
        srv->pid = 0;
    }
}

/* Runs the replica's poll loop until 'done(r, aux)' or the deadline.
 * Returns whether 'done' became true. */
static bool
run_until(struct ovsdb_replica *r,
          bool (*done)(struct ovsdb_replica *, void *), void *aux)
{
    long long int deadline = time_msec() + 30000;
    for (;;) {
        ovsdb_replica_run(r);
        if (done(r, aux)) {
            return true;
        }
        if (time_msec() > deadline) {
            return false;
        }
        ovsdb_replica_wait(r);
        poll_timer_wait(200);
        poll_block();
    }
}

static bool
is_synced(struct ovsdb_replica *r, void *aux)
{
    (void) aux;
    return ovsdb_replica_is_synced(r);
}

static bool
not_synced(struct ovsdb_replica *r, void *aux)
{
    (void) aux;
    return !ovsdb_replica_is_synced(r);
}

static bool
has_changes(struct ovsdb_replica *r, void *aux)
{
    (void) aux;
    return ovsdb_replica_has_changes(r);
}

static bool
monitor_refused(struct ovsdb_replica *r, void *aux)
{
    struct ovsdb_replica_stats s;
    (void) aux;
    ovsdb_replica_get_stats(r, &s);
    return s.n_monitor_errors > 0;
}

static bool
txn_done(struct ovsdb_replica *r, void *res_)
{
    struct txn_result *res = res_;
    (void) r;
    return res->n_calls > 0;
}

struct ext_id_wait {
    const char *iface;
    const char *key;
    const char *value;          /* NULL: wait until the key is absent. */
};

static const struct ovsdb_replica_row *
find_iface(struct ovsdb_replica *r, const char *name)
{
    const struct ovsdb_replica_table *t
        = ovsdb_replica_get_table(r, "Interface");
    const struct ovsdb_replica_row *row;
    OVSDB_REPLICA_FOR_EACH (row, t) {
        const char *n;
        if (!ovsdb_datum_get_string(ovsdb_replica_row_get(row, "name"), &n)
            && n && !strcmp(n, name)) {
            return row;
        }
    }
    return NULL;
}

static bool
ext_id_is(struct ovsdb_replica *r, void *w_)
{
    struct ext_id_wait *w = w_;
    const struct ovsdb_replica_row *row = find_iface(r, w->iface);
    json_t *map;
    if (!row || ovsdb_datum_get_string_map(
                    ovsdb_replica_row_get(row, "external_ids"), &map)) {
        return false;
    }
    const char *v = json_string_value(json_object_get(map, w->key));
    bool ok = w->value ? v && !strcmp(v, w->value) : !v;
    json_decref(map);
    return ok;
}

static bool
iface_gone(struct ovsdb_replica *r, void *name)
{
    return ovsdb_replica_is_synced(r) && !find_iface(r, name);
}

static struct ovsdb_replica *
make_vswitch_replica(void)
{
    static const struct ovsdb_type t_name = OVSDB_TYPE_SCALAR(STRING);
    static const struct ovsdb_type t_ids = OVSDB_TYPE_MAP(STRING, STRING);
    static const struct ovsdb_type t_ofport = OVSDB_TYPE_OPTIONAL(INTEGER);
    static const struct ovsdb_type t_uuids = OVSDB_TYPE_SET(UUID);

    struct ovsdb_replica *r = ovsdb_replica_create("Open_vSwitch");
    struct ovsdb_replica_table *t = ovsdb_replica_add_table(r, "Interface");
    ovsdb_replica_add_column(t, "name", &t_name);
    ovsdb_replica_add_column(t, "external_ids", &t_ids);
    ovsdb_replica_add_column(t, "ofport", &t_ofport);
    ovsdb_replica_add_column(t, "no_such_column", &t_name);
    t = ovsdb_replica_add_table(r, "Port");
    ovsdb_replica_add_column(t, "name", &t_name);
    ovsdb_replica_add_column(t, "interfaces", &t_uuids);
    t = ovsdb_replica_add_table(r, "Bridge");
    ovsdb_replica_add_column(t, "name", &t_name);
    ovsdb_replica_add_column(t, "ports", &t_uuids);
    t = ovsdb_replica_add_table(r, "Open_vSwitch");
    ovsdb_replica_add_column(t, "bridges", &t_uuids);
    ovsdb_replica_add_table(r, "No_Such_Table");
    ovsdb_replica_set_backoff(r, 100, 500);
    return r;
}

/* ops: one bridge br0 with port/interface vif1 (chand external_ids), as
 * ovs-vsctl would create them. */
static json_t *
provision_ops(void)
{
    json_t *ops = json_array();
    json_t *ids = json_pack("{ssss}", "chand-vm", "vm1", "chand-id", "7");
    json_array_append_new(ops, ovsdb_op_insert(
        "Interface",
        json_pack("{ssso}", "name", "vif1", "external_ids",
                  ovsdb_datum_string_map(ids)),
        "iface"));
    json_decref(ids);
    json_array_append_new(ops, ovsdb_op_insert(
        "Port",
        json_pack("{ssso}", "name", "vif1", "interfaces",
                  ovsdb_datum_named_uuid("iface")),
        "port"));
    json_array_append_new(ops, ovsdb_op_insert(
        "Bridge",
        json_pack("{ssso}", "name", "br0", "ports",
                  ovsdb_datum_named_uuid("port")),
        "bridge"));
    json_array_append_new(ops, ovsdb_op_insert(
        "Open_vSwitch",
        json_pack("{so}", "bridges", ovsdb_datum_named_uuid("bridge")),
        NULL));
    json_array_append_new(ops, ovsdb_op_comment("test-ovsdb-replica"));
    return ops;
}

static void
test_real_server(void)
{
    struct server srv;
    char tool[256], vsctl[256];
    struct txn_result res = { 0 };
    struct ovsdb_replica_stats s;

    memset(&srv, 0, sizeof srv);
    if (!find_program("ovsdb-server", tool, sizeof tool)
        || !find_program("ovsdb-tool", tool, sizeof tool)
        || !find_program("ovs-vsctl", vsctl, sizeof vsctl)) {
        CU_FAIL("ovsdb-server, ovsdb-tool or ovs-vsctl not installed");
        return;
    }
    const char *schema = "/usr/share/openvswitch/vswitch.ovsschema";
    if (access(schema, R_OK)) {
        CU_FAIL("vswitch.ovsschema not found");
        return;
    }
    snprintf(srv.dir, sizeof srv.dir, "/tmp/ovsr.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(srv.dir));
    snprintf(srv.db, sizeof srv.db, "%s/conf.db", srv.dir);
    snprintf(srv.sock, sizeof srv.sock, "%s/db.sock", srv.dir);
    snprintf(srv.remote, sizeof srv.remote, "unix:%s", srv.sock);
    CU_ASSERT_FATAL(run_cmd("%s create %s %s", tool, srv.db, schema));
    CU_ASSERT_FATAL(server_start(&srv));

    int n_logged = 0;
    vlog_set_hook(quiet_hook, &n_logged);
    struct ovsdb_replica *r = make_vswitch_replica();
    ovsdb_replica_connect(r, srv.remote);
    CU_ASSERT_TRUE(run_until(r, is_synced, NULL));
    CU_ASSERT_TRUE(ovsdb_replica_is_connected(r));
    const struct ovsdb_replica_table *ifaces
        = ovsdb_replica_get_table(r, "Interface");
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(ifaces), 0);
    CU_ASSERT_TRUE(ovsdb_replica_has_column(ifaces, "external_ids"));
    CU_ASSERT_FALSE(ovsdb_replica_has_column(ifaces, "no_such_column"));
    CU_ASSERT_FALSE(ovsdb_replica_has_column(
                        ovsdb_replica_get_table(r, "No_Such_Table"), NULL));
    ovsdb_replica_track_clear(r);

    /* Provision through our transact API. */
    ovsdb_replica_transact(r, provision_ops(), txn_cb, &res);
    CU_ASSERT_TRUE(run_until(r, txn_done, &res));
    CU_ASSERT_PTR_NULL(res.error);
    json_t *uuids = NULL;
    CU_ASSERT_EQUAL(ovsdb_msg_parse_transact_reply(res.result, 5, &uuids,
                                                   NULL), 0);
    CU_ASSERT_EQUAL(json_array_size(uuids), 5);
    const char *iface_uuid = json_string_value(json_array_get(uuids, 0));
    CU_ASSERT_PTR_NOT_NULL(iface_uuid);
    CU_ASSERT_TRUE(json_is_null(json_array_get(uuids, 4)));

    struct ext_id_wait w = { "vif1", "chand-id", "7" };
    CU_ASSERT_TRUE(run_until(r, ext_id_is, &w));
    const struct ovsdb_replica_row *row = find_iface(r, "vif1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_row_uuid(row), iface_uuid);
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(row), OVSDB_REPLICA_INSERTED);
    int64_t ofport;
    bool present = true;
    CU_ASSERT_EQUAL(ovsdb_datum_get_integer(
                        ovsdb_replica_row_get(row, "ofport"), &ofport,
                        &present), 0);
    CU_ASSERT_FALSE(present);       /* No ovs-vswitchd to assign one. */
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge") + 2, ":inserted");
    CU_ASSERT_STRING_EQUAL(tracked(r, "Port") + 2, ":inserted");
    ovsdb_replica_track_clear(r);
    txn_result_clear(&res);

    /* Modify external_ids with ovs-vsctl. */
    CU_ASSERT(run_cmd("%s --no-wait --timeout=20 --db=%s set Interface vif1 "
                      "external_ids:chand-vid=100", vsctl, srv.remote));
    w = (struct ext_id_wait) { "vif1", "chand-vid", "100" };
    CU_ASSERT_TRUE(run_until(r, ext_id_is, &w));
    row = find_iface(r, "vif1");
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(row), OVSDB_REPLICA_MODIFIED);
    CU_ASSERT_TRUE(ovsdb_replica_row_column_changed(row, "external_ids"));
    CU_ASSERT_FALSE(ovsdb_replica_row_column_changed(row, "name"));
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge"), "");
    ovsdb_replica_track_clear(r);

    /* Write status back with a mutate through our API. */
    json_t *st = json_pack("{ss}", "chand-status", "ready");
    json_t *ops = json_array();
    json_array_append_new(ops, ovsdb_op_mutate(
        "Interface", ovsdb_where_uuid(iface_uuid),
        json_pack("[o]", ovsdb_mutation("external_ids", "insert",
                                        ovsdb_datum_string_map(st)))));
    json_decref(st);
    ovsdb_replica_transact(r, ops, txn_cb, &res);
    w = (struct ext_id_wait) { "vif1", "chand-status", "ready" };
    CU_ASSERT_TRUE(run_until(r, ext_id_is, &w));
    CU_ASSERT_TRUE(run_until(r, txn_done, &res));
    CU_ASSERT_PTR_NULL(res.error);
    check_value(json_object_get(json_array_get(res.result, 0), "count"),
                "1");
    txn_result_clear(&res);

    /* A transaction the server rejects reports the error. */
    ops = json_array();
    json_array_append_new(ops, ovsdb_op_update(
        "Interface", ovsdb_where_uuid(iface_uuid),
        json_pack("{si}", "no_such_column", 1)));
    ovsdb_replica_transact(r, ops, txn_cb, &res);
    CU_ASSERT_TRUE(run_until(r, txn_done, &res));
    CU_ASSERT_PTR_NOT_NULL(res.error);
    if (res.error) {
        CU_ASSERT_PTR_NOT_NULL(strstr(res.error, "operation 0"));
    }
    txn_result_clear(&res);

    /* A replica of a database the server does not have: get_schema is
     * refused (and retried), transactions get the JSON-RPC error. */
    struct ovsdb_replica *nodb = ovsdb_replica_create("No_Such_DB");
    ovsdb_replica_add_table(nodb, "T");
    ovsdb_replica_connect(nodb, srv.remote);
    CU_ASSERT_TRUE(run_until(nodb, monitor_refused, NULL));
    CU_ASSERT_FALSE(ovsdb_replica_is_synced(nodb));
    ops = json_array();
    json_array_append_new(ops, ovsdb_op_comment("x"));
    ovsdb_replica_transact(nodb, ops, txn_cb, &res);
    CU_ASSERT_TRUE(run_until(nodb, txn_done, &res));
    CU_ASSERT_PTR_NOT_NULL(res.error);
    if (res.error) {
        CU_ASSERT_PTR_NOT_NULL(strstr(res.error, "unknown database"));
    }
    CU_ASSERT_PTR_NULL(res.result);
    txn_result_clear(&res);
    ovsdb_replica_destroy(nodb);

    /* A transaction that waits forever is failed when the server dies;
     * the replica then reconnects and converges to the new contents. */
    ovsdb_replica_track_clear(r);
    ops = json_array();
    json_array_append_new(ops, ovsdb_op_wait(
        "Bridge", jl("[['name','==','br0']]"), jl("['name']"), "==",
        jl("[{'name':'never'}]"), -1));
    ovsdb_replica_transact(r, ops, txn_cb, &res);
    /* Let the request reach the server. */
    for (int i = 0; i < 5; i++) {
        ovsdb_replica_run(r);
        ovsdb_replica_wait(r);
        poll_timer_wait(20);
        poll_block();
    }
    CU_ASSERT_EQUAL(res.n_calls, 0);

    server_stop(&srv);
    CU_ASSERT_TRUE(run_until(r, txn_done, &res));
    CU_ASSERT_PTR_NOT_NULL(res.error);
    if (res.error) {
        CU_ASSERT_STRING_EQUAL(res.error, "connection lost");
    }
    txn_result_clear(&res);
    CU_ASSERT_TRUE(run_until(r, not_synced, NULL));

    /* While the server is down: change vif1's external_ids and add vif2
     * (on a new port), offline. */
    CU_ASSERT(run_cmd(
        "%s transact %s '[\"Open_vSwitch\","
        "{\"op\":\"mutate\",\"table\":\"Interface\",\"where\":"
        "[[\"name\",\"==\",\"vif1\"]],\"mutations\":[[\"external_ids\","
        "\"delete\",[\"set\",[\"chand-vid\"]]]]},"
        "{\"op\":\"insert\",\"table\":\"Interface\",\"row\":{\"name\":"
        "\"vif2\"},\"uuid-name\":\"i2\"},"
        "{\"op\":\"insert\",\"table\":\"Port\",\"row\":{\"name\":\"vif2\","
        "\"interfaces\":[\"named-uuid\",\"i2\"]},\"uuid-name\":\"p2\"},"
        "{\"op\":\"mutate\",\"table\":\"Bridge\",\"where\":[],"
        "\"mutations\":[[\"ports\",\"insert\",[\"named-uuid\",\"p2\"]]]}]'"
        " >/dev/null", tool, srv.db));
    ovsdb_replica_track_clear(r);
    uint64_t seqno = ovsdb_replica_get_seqno(r);

    CU_ASSERT_FATAL(server_start(&srv));
    CU_ASSERT_TRUE(run_until(r, is_synced, NULL));
    CU_ASSERT_NOT_EQUAL(ovsdb_replica_get_seqno(r), seqno);
    w = (struct ext_id_wait) { "vif1", "chand-vid", NULL };
    CU_ASSERT_TRUE(ext_id_is(r, &w));
    CU_ASSERT_PTR_NOT_NULL(find_iface(r, "vif2"));
    CU_ASSERT_EQUAL(ovsdb_replica_table_count(ifaces), 2);
    /* vif1 modified, vif2 inserted, the bridge modified (ports), the old
     * port and the root row untouched. */
    row = find_iface(r, "vif1");
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(row), OVSDB_REPLICA_MODIFIED);
    CU_ASSERT_EQUAL(ovsdb_replica_row_change(find_iface(r, "vif2")),
                    OVSDB_REPLICA_INSERTED);
    CU_ASSERT_STRING_EQUAL(tracked(r, "Bridge") + 2, ":modified");
    CU_ASSERT_STRING_EQUAL(tracked(r, "Port") + 2, ":inserted");
    CU_ASSERT_STRING_EQUAL(tracked(r, "Open_vSwitch"), "");
    ovsdb_replica_track_clear(r);

    /* Delete vif2's port with ovs-vsctl: the Interface and Port rows go
     * (garbage collected), the replica reports them deleted. */
    CU_ASSERT(run_cmd("%s --no-wait --timeout=20 --db=%s del-port br0 vif2",
                      vsctl, srv.remote));
    CU_ASSERT_TRUE(run_until(r, iface_gone, "vif2"));
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface") + 2, ":deleted");
    CU_ASSERT_STRING_EQUAL(tracked(r, "Port") + 2, ":deleted");

    /* A forced reconnect resyncs without reporting any change. */
    ovsdb_replica_track_clear(r);
    ovsdb_replica_get_stats(r, &s);
    uint64_t syncs = s.n_syncs;
    ovsdb_replica_force_reconnect(r);
    CU_ASSERT_TRUE(run_until(r, not_synced, NULL));
    CU_ASSERT_TRUE(run_until(r, is_synced, NULL));
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_syncs, syncs + 1);
    CU_ASSERT_FALSE(ovsdb_replica_has_changes(r));

    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_bad_rows, 0);
    CU_ASSERT_EQUAL(s.n_bad_updates, 0);
    CU_ASSERT_EQUAL(s.n_bad_messages, 0);
    CU_ASSERT_EQUAL(s.n_inconsistent, 0);
    CU_ASSERT(s.n_connects >= 3);
    CU_ASSERT(s.n_txn_sent >= 4);

    ovsdb_replica_destroy(r);
    vlog_set_hook(NULL, NULL);
    json_decref(uuids);
    server_stop(&srv);
    run_cmd("rm -rf %s", srv.dir);
}

/* ----------------------------------------------------------------------
 * Session glue against a scripted fake server (in-process, abstract Unix
 * socket), for what a real ovsdb-server never does: malformed updates,
 * bad rows, invalid JSON-RPC, malformed transaction replies.
 */

struct fake {
    struct pstream *listener;
    struct jsonrpc *rpc;
};

/* One iteration of the combined poll loop of the replica and the fake
 * server.  Accepts a pending connection if there is none. */
static void
fake_pump(struct fake *f, struct ovsdb_replica *r)
{
    if (!f->rpc) {
        struct stream *stream;
        if (!pstream_accept(f->listener, &stream)) {
            f->rpc = jsonrpc_open(stream);
        }
    }
    if (f->rpc) {
        jsonrpc_run(f->rpc);
    }
    ovsdb_replica_run(r);
}

static void
fake_wait(struct fake *f, struct ovsdb_replica *r)
{
    ovsdb_replica_wait(r);
    if (f->rpc) {
        jsonrpc_wait(f->rpc);
        jsonrpc_recv_wait(f->rpc);
    } else {
        pstream_wait(f->listener);
    }
    poll_timer_wait(200);
    poll_block();
}

/* Runs both sides until the server receives a message; returns it (new
 * reference) or NULL on the deadline or a connection error. */
static json_t *
fake_recv(struct fake *f, struct ovsdb_replica *r)
{
    long long int deadline = time_msec() + 30000;
    while (time_msec() < deadline) {
        fake_pump(f, r);
        if (f->rpc) {
            json_t *msg;
            int error = jsonrpc_recv(f->rpc, &msg);
            if (!error) {
                return msg;
            } else if (error != EAGAIN) {
                return NULL;
            }
        }
        fake_wait(f, r);
    }
    return NULL;
}

/* Receives a request for 'method' (failing the test otherwise) and
 * returns it (new reference, or NULL). */
static json_t *
fake_expect(struct fake *f, struct ovsdb_replica *r, const char *method)
{
    json_t *msg = fake_recv(f, r);
    CU_ASSERT_PTR_NOT_NULL(msg);
    if (msg) {
        CU_ASSERT_EQUAL(jsonrpc_msg_type(msg), JSONRPC_REQUEST);
        const char *m = jsonrpc_msg_method(msg);
        if (!m || strcmp(m, method)) {
            fprintf(stderr, "expected %s, got %s\n", method, m ? m : "?");
            CU_FAIL("unexpected request");
        }
    }
    return msg;
}

/* Sends a reply with 'result' (JSON text, ' for ") to 'request' (stolen). */
static void
fake_reply(struct fake *f, json_t *request, const char *result)
{
    if (request && f->rpc) {
        jsonrpc_send(f->rpc, jsonrpc_create_reply(jl(result),
                                                  jsonrpc_msg_id(request)));
    }
    json_decref(request);
}

static void
fake_send(struct fake *f, const char *text)
{
    if (f->rpc) {
        jsonrpc_send(f->rpc, jl(text));
    }
}

static bool
fake_run_until(struct fake *f, struct ovsdb_replica *r,
               bool (*done)(struct ovsdb_replica *, void *), void *aux)
{
    long long int deadline = time_msec() + 30000;
    for (;;) {
        fake_pump(f, r);
        if (done(r, aux)) {
            return true;
        }
        if (time_msec() > deadline) {
            return false;
        }
        fake_wait(f, r);
    }
}

struct stat_wait {
    size_t offset;              /* Of a uint64_t in the stats. */
    uint64_t value;             /* Wait until it is at least this. */
};

static bool
stat_reaches(struct ovsdb_replica *r, void *w_)
{
    struct stat_wait *w = w_;
    struct ovsdb_replica_stats s;
    ovsdb_replica_get_stats(r, &s);
    uint64_t v;
    memcpy(&v, (char *) &s + w->offset, sizeof v);
    return v >= w->value;
}

#define STAT_WAIT(FIELD, VALUE) \
    ((struct stat_wait) { offsetof(struct ovsdb_replica_stats, FIELD), \
                          (VALUE) })

/* Answers the _Server get_schema of a new connection as a server without
 * _Server does. */
static void
fake_no_server_db(struct fake *f, struct ovsdb_replica *r)
{
    json_t *req = fake_expect(f, r, "get_schema");
    if (req) {
        json_t *expect = jl("['_Server']");
        CU_ASSERT(json_equal(jsonrpc_msg_params(req), expect));
        json_decref(expect);
        jsonrpc_send(f->rpc, jsonrpc_create_error(
                         jl("{'error':'unknown database',"
                            "'details':'_Server'}"),
                         jsonrpc_msg_id(req)));
        json_decref(req);
    }
}

/* Refuses 'method' with "unknown method", as servers that lack it do. */
static void
fake_unknown_method(struct fake *f, struct ovsdb_replica *r,
                    const char *method)
{
    json_t *req = fake_expect(f, r, method);
    if (req) {
        jsonrpc_send(f->rpc, jsonrpc_create_error(
                         json_string("unknown method"),
                         jsonrpc_msg_id(req)));
        json_decref(req);
    }
}

/* Receives the data monitor request of a new connection to a server that
 * only knows "monitor": refuses monitor_cond_since and monitor_cond, then
 * returns the "monitor" request. */
static json_t *
fake_expect_monitor_v1(struct fake *f, struct ovsdb_replica *r)
{
    fake_unknown_method(f, r, "monitor_cond_since");
    fake_unknown_method(f, r, "monitor_cond");
    return fake_expect(f, r, "monitor");
}

static const char fake_schema[] =
    "{'name':'Open_vSwitch','version':'1','tables':{"
    "'Interface':{'columns':{'name':{'type':'string'},"
    "'external_ids':{'type':{'key':'string','value':'string',"
    "'min':0,'max':'unlimited'}},"
    "'ofport':{'type':{'key':'integer','min':0,'max':1}}}},"
    "'Bridge':{'columns':{'name':{'type':'string'}}}}}";

static void
test_fake_server(void)
{
    char name[64];
    struct fake f = { NULL, NULL };
    struct ovsdb_replica_stats s;
    struct txn_result res = { 0 };
    int n_logged = 0;

    snprintf(name, sizeof name, "@chand-test-ovsdb-replica-%ld",
             (long) getpid());
    char pname[80], aname[80];
    snprintf(pname, sizeof pname, "punix:%s", name);
    snprintf(aname, sizeof aname, "unix:%s", name);
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &f.listener), 0);

    vlog_set_hook(quiet_hook, &n_logged);
    struct ovsdb_replica *r = make_vswitch_replica();
    ovsdb_replica_connect(r, aname);

    /* get_schema, then a monitor for the columns the schema has. */
    fake_no_server_db(&f, r);
    json_t *req = fake_expect(&f, r, "get_schema");
    if (req) {
        json_t *expect = jl("['Open_vSwitch']");
        CU_ASSERT(json_equal(jsonrpc_msg_params(req), expect));
        json_decref(expect);
    }
    fake_reply(&f, req, fake_schema);
    req = fake_expect_monitor_v1(&f, r);
    json_t *monitor_id = NULL;
    if (req) {
        json_t *expect = jl("{'Interface':{'columns':['name','external_ids',"
                            "'ofport']},'Bridge':{'columns':['name']}}");
        json_t *params = jsonrpc_msg_params(req);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(params, 0)),
                               "Open_vSwitch");
        CU_ASSERT(json_equal(json_array_get(params, 2), expect));
        monitor_id = json_incref(json_array_get(params, 1));
        json_decref(expect);
    }
    CU_ASSERT_FALSE(ovsdb_replica_is_synced(r));
    CU_ASSERT_FALSE(ovsdb_replica_has_column(
                        ovsdb_replica_get_table(r, "Port"), NULL));
    CU_ASSERT_FALSE(ovsdb_replica_has_column(
                        ovsdb_replica_get_table(r, "Interface"),
                        "no_such_column"));
    /* Initial contents: one good row, one with a badly typed column. */
    fake_reply(&f, req, "{'Interface':{"
               "'" U1 "':{'new':{'name':'vif1','ofport':1}},"
               "'" U2 "':{'new':{'name':'vif2','ofport':'x'}}}}");
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_synced, NULL));
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_bad_rows, 1);
    CU_ASSERT_EQUAL(s.n_syncs, 1);
    check_value(ovsdb_replica_row_get(find(r, "Interface", U2), "ofport"),
                "null");
    check_value(ovsdb_replica_row_get(find(r, "Interface", U2), "name"),
                "'vif2'");
    ovsdb_replica_track_clear(r);

    /* An update for another monitor id is ignored; invalid JSON-RPC is
     * counted; an update for ours applies. */
    fake_send(&f, "{'method':'update','params':[12345,{'Interface':{"
              "'" U3 "':{'new':{'name':'vif3'}}}}],'id':null}");
    fake_send(&f, "{'foo':1}");
    fake_send(&f, "{'method':'update','params':[1],'id':null}");
    json_t *upd = jl("{'method':'update','params':[null,{'Interface':{"
                     "'" U1 "':{'old':{'ofport':1},"
                     "'new':{'name':'vif1','ofport':5}}}}],'id':null}");
    json_array_set(json_object_get(upd, "params"), 0, monitor_id);
    jsonrpc_send(f.rpc, upd);
    struct stat_wait sw = STAT_WAIT(n_bad_messages, 2);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    CU_ASSERT_TRUE(fake_run_until(&f, r, has_changes, NULL));
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"), "11:modified");
    CU_ASSERT_PTR_NULL(find(r, "Interface", U3));
    ovsdb_replica_track_clear(r);

    /* A malformed update: counted, and the replica resyncs on the same
     * connection with a fresh monitor. */
    upd = jl("{'method':'update','params':[null,{'Interface':{"
             "'not-a-uuid':{'new':{}}}}],'id':null}");
    json_array_set(json_object_get(upd, "params"), 0, monitor_id);
    jsonrpc_send(f.rpc, upd);
    req = fake_expect(&f, r, "monitor_cancel");
    if (req) {
        CU_ASSERT(json_equal(json_array_get(jsonrpc_msg_params(req), 0),
                             monitor_id));
    }
    fake_reply(&f, req, "{}");
    req = fake_expect(&f, r, "monitor");
    if (req) {
        json_t *id2 = json_array_get(jsonrpc_msg_params(req), 1);
        CU_ASSERT_FALSE(json_equal(id2, monitor_id));
        json_decref(monitor_id);
        monitor_id = json_incref(id2);
    }
    CU_ASSERT_FALSE(ovsdb_replica_is_synced(r));
    /* The fresh snapshot: vif2 fixed, vif1 gone, vif3 new. */
    fake_reply(&f, req, "{'Interface':{"
               "'" U2 "':{'new':{'name':'vif2','ofport':2}},"
               "'" U3 "':{'new':{'name':'vif3','ofport':3}}}}");
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_synced, NULL));
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"),
                           "11:deleted 22:modified 33:inserted");
    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_bad_updates, 1);
    CU_ASSERT_EQUAL(s.n_syncs, 2);
    ovsdb_replica_track_clear(r);

    /* Transactions: a good reply with an insert uuid. */
    json_t *ops = json_array();
    json_array_append_new(ops, ovsdb_op_insert("Bridge", json_object(),
                                               NULL));
    json_array_append_new(ops, ovsdb_op_comment("c"));
    ovsdb_replica_transact(r, ops, txn_cb, &res);
    req = fake_expect(&f, r, "transact");
    if (req) {
        json_t *params = jsonrpc_msg_params(req);
        CU_ASSERT_EQUAL(json_array_size(params), 3);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(params, 0)),
                               "Open_vSwitch");
    }
    fake_reply(&f, req, "[{'uuid':['uuid','" U4 "']},{}]");
    CU_ASSERT_TRUE(fake_run_until(&f, r, txn_done, &res));
    CU_ASSERT_PTR_NULL(res.error);
    check_value(res.result, "[{'uuid':['uuid','" U4 "']},{}]");
    txn_result_clear(&res);

    /* An operation error: error text and the result. */
    ops = json_array();
    json_array_append_new(ops, ovsdb_op_comment("a"));
    json_array_append_new(ops, ovsdb_op_comment("b"));
    ovsdb_replica_transact(r, ops, txn_cb, &res);
    req = fake_expect(&f, r, "transact");
    fake_reply(&f, req, "[{},{'error':'constraint violation',"
               "'details':'d'}]");
    CU_ASSERT_TRUE(fake_run_until(&f, r, txn_done, &res));
    CU_ASSERT_STRING_EQUAL(res.error,
                           "constraint violation: d (operation 1)");
    CU_ASSERT_PTR_NOT_NULL(res.result);
    txn_result_clear(&res);

    /* A malformed reply (too few results): an error, no result. */
    ops = json_array();
    json_array_append_new(ops, ovsdb_op_comment("a"));
    json_array_append_new(ops, ovsdb_op_comment("b"));
    ovsdb_replica_transact(r, ops, txn_cb, &res);
    req = fake_expect(&f, r, "transact");
    fake_reply(&f, req, "[{}]");
    CU_ASSERT_TRUE(fake_run_until(&f, r, txn_done, &res));
    CU_ASSERT_STRING_EQUAL(res.error, "1 results for 2 operations");
    CU_ASSERT_PTR_NULL(res.result);
    txn_result_clear(&res);

    /* A JSON-RPC error reply. */
    ops = json_array();
    json_array_append_new(ops, ovsdb_op_comment("a"));
    ovsdb_replica_transact(r, ops, txn_cb, &res);
    req = fake_expect(&f, r, "transact");
    if (req) {
        jsonrpc_send(f.rpc, jsonrpc_create_error(
                         jl("{'error':'unknown database','details':'x'}"),
                         jsonrpc_msg_id(req)));
        json_decref(req);
    }
    CU_ASSERT_TRUE(fake_run_until(&f, r, txn_done, &res));
    CU_ASSERT_STRING_EQUAL(res.error, "unknown database: x");
    txn_result_clear(&res);

    /* A cancelled transaction's reply is ignored. */
    ops = json_array();
    json_array_append_new(ops, ovsdb_op_comment("a"));
    uint64_t id = ovsdb_replica_transact(r, ops, txn_cb, &res);
    req = fake_expect(&f, r, "transact");
    ovsdb_replica_transact_cancel(r, id);
    fake_reply(&f, req, "[{}]");

    /* Pending transactions fail when the connection drops. */
    ops = json_array();
    json_array_append_new(ops, ovsdb_op_comment("a"));
    ovsdb_replica_transact(r, ops, txn_cb, &res);
    req = fake_expect(&f, r, "transact");
    json_decref(req);
    jsonrpc_close(f.rpc);
    f.rpc = NULL;
    CU_ASSERT_TRUE(fake_run_until(&f, r, txn_done, &res));
    CU_ASSERT_EQUAL(res.n_calls, 1);
    CU_ASSERT_STRING_EQUAL(res.error, "connection lost");
    txn_result_clear(&res);

    /* After reconnecting, a refused get_schema is retried. */
    fake_no_server_db(&f, r);
    req = fake_expect(&f, r, "get_schema");
    if (req) {
        jsonrpc_send(f.rpc, jsonrpc_create_error(json_string("busy"),
                                                 jsonrpc_msg_id(req)));
        json_decref(req);
    }
    sw = STAT_WAIT(n_monitor_errors, 1);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    CU_ASSERT_FALSE(ovsdb_replica_is_synced(r));
    CU_ASSERT_TRUE(ovsdb_replica_is_connected(r));
    req = fake_expect(&f, r, "get_schema");
    fake_reply(&f, req, fake_schema);
    req = fake_expect_monitor_v1(&f, r);
    /* A malformed initial reply is refused too (and retried). */
    fake_reply(&f, req, "{'Interface':[]}");
    sw = STAT_WAIT(n_monitor_errors, 2);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    req = fake_expect(&f, r, "get_schema");
    fake_reply(&f, req, fake_schema);
    req = fake_expect(&f, r, "monitor");
    fake_reply(&f, req, "{'Interface':{"
               "'" U2 "':{'new':{'name':'vif2','ofport':2}}}}");
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_synced, NULL));
    CU_ASSERT_STRING_EQUAL(tracked(r, "Interface"), "33:deleted");

    ovsdb_replica_get_stats(r, &s);
    CU_ASSERT_EQUAL(s.n_bad_updates, 2);
    CU_ASSERT_EQUAL(s.n_syncs, 3);
    CU_ASSERT_EQUAL(s.n_connects, 2);
    CU_ASSERT_EQUAL(s.n_txn_sent, 6);
    CU_ASSERT_EQUAL(s.n_txn_failed, 4);
    CU_ASSERT(n_logged > 0);

    json_decref(monitor_id);
    ovsdb_replica_destroy(r);
    vlog_set_hook(NULL, NULL);
    jsonrpc_close(f.rpc);
    pstream_close(f.listener);
}

static const char server_schema[] =
    "{'name':'_Server','version':'1','tables':{'Database':{'columns':{"
    "'name':{'type':'string'},'model':{'type':'string'},"
    "'connected':{'type':'boolean'},'leader':{'type':'boolean'},"
    "'schema':{'type':{'key':'string','min':0,'max':1}},"
    "'cid':{'type':{'key':'uuid','min':0,'max':1}},"
    "'index':{'type':{'key':'integer','min':0,'max':1}}}}}}";

static const char chan_schema[] =
    "{\\'name\\':\\'Chan\\',\\'version\\':\\'1\\',\\'tables\\':{"
    "\\'VM\\':{\\'columns\\':{\\'name\\':{\\'type\\':\\'string\\'},"
    "\\'host\\':{\\'type\\':\\'string\\'},"
    "\\'tags\\':{\\'type\\':{\\'key\\':\\'string\\',\\'min\\':0,"
    "\\'max\\':\\'unlimited\\'}}}}}}";

/* The _Server "Database" row of a clustered "Chan" (v2 <table-updates2>,
 * the reply to "monitor_cond"). */
static char *
chan_db_row(bool leader, int index)
{
    char *s = xasprintf("{'Database':{'" U9 "':{'initial':{'name':'Chan',"
                        "'model':'clustered','connected':true,"
                        "'leader':%s,'schema':'%s','index':%d}}}}",
                        leader ? "true" : "false", chan_schema, index);
    /* chan_schema's \' become \" (quotes inside the string) in jl(). */
    return s;
}

/* Handles the _Server handshake of a new connection: get_schema, then
 * the monitor of Database, answered with 'row'. */
static void
fake_server_db(struct fake *f, struct ovsdb_replica *r, bool leader,
               int index)
{
    json_t *req = fake_expect(f, r, "get_schema");
    if (req) {
        json_t *expect = jl("['_Server']");
        CU_ASSERT(json_equal(jsonrpc_msg_params(req), expect));
        json_decref(expect);
    }
    fake_reply(f, req, server_schema);
    req = fake_expect(f, r, "monitor_cond");
    if (req) {
        json_t *expect = jl("['_Server','_Server',{'Database':{'columns':["
                            "'name','model','connected','leader','schema',"
                            "'cid','index']}}]");
        CU_ASSERT(json_equal(jsonrpc_msg_params(req), expect));
        json_decref(expect);
        char *row = chan_db_row(leader, index);
        jsonrpc_send(f->rpc, jsonrpc_create_reply(jl(row),
                                                  jsonrpc_msg_id(req)));
        free(row);
        json_decref(req);
    }
}

/* Waits until the replica closes its connection (the server side sees
 * the end of the stream) and forgets it. */
static void
fake_wait_closed(struct fake *f, struct ovsdb_replica *r)
{
    long long int deadline = time_msec() + 30000;
    while (f->rpc && time_msec() < deadline) {
        fake_pump(f, r);
        json_t *msg;
        int error = jsonrpc_recv(f->rpc, &msg);
        if (!error) {
            json_decref(msg);
            continue;
        } else if (error != EAGAIN) {
            jsonrpc_close(f->rpc);
            f->rpc = NULL;
            break;
        }
        fake_wait(f, r);
    }
    CU_ASSERT_PTR_NULL(f->rpc);
}

/* Sends notification 'method' with params 'text' whose first element is
 * replaced by 'id'. */
static void
fake_notify(struct fake *f, const char *method, const json_t *id,
            const char *text)
{
    json_t *params = jl(text);
    json_array_set(params, 0, (json_t *) id);
    if (f->rpc) {
        jsonrpc_send(f->rpc, jsonrpc_create_notify(method, params));
    } else {
        json_decref(params);
    }
}

static uint64_t
stat_of(struct ovsdb_replica *r, size_t offset)
{
    struct ovsdb_replica_stats s;
    uint64_t v;
    ovsdb_replica_get_stats(r, &s);
    memcpy(&v, (char *) &s + offset, sizeof v);
    return v;
}
#define STAT(R, FIELD) \
    stat_of(R, offsetof(struct ovsdb_replica_stats, FIELD))

static bool
not_connected(struct ovsdb_replica *r, void *aux)
{
    (void) aux;
    return !ovsdb_replica_is_connected(r);
}

static bool
is_connected(struct ovsdb_replica *r, void *aux)
{
    (void) aux;
    return ovsdb_replica_is_connected(r);
}

static void
test_multiple_remotes(void)
{
    char name[64], pname[80], aname[80], remotes[256];
    struct fake f = { NULL, NULL };
    int n_logged = 0;

    snprintf(name, sizeof name, "@chand-test-ovsdb-multi-%ld",
             (long) getpid());
    snprintf(pname, sizeof pname, "punix:%s", name);
    snprintf(aname, sizeof aname, "unix:%s", name);
    snprintf(remotes, sizeof remotes,
             "unix:@chand-no-such-1-%ld, unix:@chand-no-such-2-%ld ,%s",
             (long) getpid(), (long) getpid(), aname);
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &f.listener), 0);
    vlog_set_hook(quiet_hook, &n_logged);

    /* The first round over the remotes goes without backoff: the third
     * remote is reached long before the 1 s minimum backoff. */
    struct ovsdb_replica *r = make_replica();
    ovsdb_replica_set_shuffle_remotes(r, false);
    ovsdb_replica_set_backoff(r, 1000, 2000);
    long long int start = time_msec();
    ovsdb_replica_connect(r, remotes);
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_connected, NULL));
    CU_ASSERT(time_msec() - start < 900);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_get_remote(r), aname);
    CU_ASSERT_EQUAL(STAT(r, n_connects), 1);

    /* Dropped: the next remotes in turn (failing), then back to ours. */
    ovsdb_replica_set_backoff(r, 50, 100);
    json_decref(fake_expect(&f, r, "get_schema"));
    jsonrpc_close(f.rpc);
    f.rpc = NULL;
    CU_ASSERT_TRUE(fake_run_until(&f, r, not_connected, NULL));
    CU_ASSERT_STRING_NOT_EQUAL(ovsdb_replica_get_remote(r), aname);
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_connected, NULL));
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_get_remote(r), aname);
    CU_ASSERT_EQUAL(STAT(r, n_connects), 2);
    CU_ASSERT_EQUAL(STAT(r, n_remote_moves), 0);

    ovsdb_replica_destroy(r);
    vlog_set_hook(NULL, NULL);
    jsonrpc_close(f.rpc);
    pstream_close(f.listener);
}

static void
test_fake_cluster(void)
{
    char name[64], pname[80], aname[80];
    struct fake f = { NULL, NULL };
    int n_logged = 0;
    static const struct ovsdb_type t_str = OVSDB_TYPE_SCALAR(STRING);
    static const struct ovsdb_type t_tags = OVSDB_TYPE_SET(STRING);

    snprintf(name, sizeof name, "@chand-test-ovsdb-cluster-%ld",
             (long) getpid());
    snprintf(pname, sizeof pname, "punix:%s", name);
    snprintf(aname, sizeof aname, "unix:%s", name);
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &f.listener), 0);
    vlog_set_hook(quiet_hook, &n_logged);

    struct ovsdb_replica *r = ovsdb_replica_create("Chan");
    struct ovsdb_replica_table *vm = ovsdb_replica_add_table(r, "VM");
    ovsdb_replica_add_column(vm, "name", &t_str);
    ovsdb_replica_add_column(vm, "host", &t_str);
    ovsdb_replica_add_column(vm, "tags", &t_tags);
    ovsdb_replica_set_backoff(r, 100, 500);
    json_t *cond = jl("[['host','==','h1']]");
    CU_ASSERT_EQUAL(ovsdb_replica_set_condition(vm, cond), 0);
    json_decref(cond);
    ovsdb_replica_connect(r, aname);

    /* _Server first, then monitor_cond_since with the condition and no
     * last transaction id. */
    fake_server_db(&f, r, false, 5);
    json_t *req = fake_expect(&f, r, "monitor_cond_since");
    json_t *mid = NULL;
    if (req) {
        json_t *params = jsonrpc_msg_params(req);
        json_t *expect = jl("{'VM':[{'columns':['name','host','tags'],"
                            "'where':[['host','==','h1']]}]}");
        CU_ASSERT_EQUAL(json_array_size(params), 4);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(params, 0)),
                               "Chan");
        CU_ASSERT(json_equal(json_array_get(params, 2), expect));
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(params, 3)),
                               OVSDB_UUID_ZERO);
        mid = json_incref(json_array_get(params, 1));
        json_decref(expect);
    }
    /* found=false: a full snapshot. */
    fake_reply(&f, req, "[false,'" L1 "',{'VM':{'" U1 "':{'initial':{"
               "'name':'vm1','host':'h1'}}}}]");
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_synced, NULL));
    CU_ASSERT_FALSE(ovsdb_replica_cond_pending(r));
    CU_ASSERT_EQUAL(STAT(r, monitor_version), 3);
    CU_ASSERT_EQUAL(STAT(r, n_syncs), 1);
    CU_ASSERT_EQUAL(STAT(r, n_resumes), 0);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_get_last_id(r), L1);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_get_remote(r), aname);
    check_value(ovsdb_replica_row_get(find(r, "VM", U1), "tags"),
                "['set',[]]");

    /* update3: applied, last id kept. */
    fake_notify(&f, "update3", mid, "[0,'" L2 "',{'VM':{'" U1 "':{"
                "'modify':{'tags':['set',['b','a']]}}}}]");
    struct stat_wait sw = STAT_WAIT(n_update_msgs, 1);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    check_value(ovsdb_replica_row_get(find(r, "VM", U1), "tags"),
                "['set',['a','b']]");
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_get_last_id(r), L2);

    /* A condition change: monitor_cond_change with a new monitor id; the
     * server then deletes the rows that no longer match. */
    cond = jl("[['host','==','h2']]");
    ovsdb_replica_set_condition(vm, cond);
    json_decref(cond);
    CU_ASSERT_TRUE(ovsdb_replica_cond_pending(r));
    req = fake_expect(&f, r, "monitor_cond_change");
    json_t *mid2 = NULL;
    if (req) {
        json_t *params = jsonrpc_msg_params(req);
        json_t *expect = jl("{'VM':[{'where':[['host','==','h2']]}]}");
        CU_ASSERT(json_equal(json_array_get(params, 0), mid));
        mid2 = json_incref(json_array_get(params, 1));
        CU_ASSERT_FALSE(json_equal(mid2, mid));
        CU_ASSERT(json_equal(json_array_get(params, 2), expect));
        json_decref(expect);
    }
    fake_reply(&f, req, "{}");
    fake_notify(&f, "update3", mid2, "[0,'" L3 "',{'VM':{"
                "'" U1 "':{'delete':null},"
                "'" U2 "':{'insert':{'name':'vm2','host':'h2'}}}}]");
    sw = STAT_WAIT(n_update_msgs, 2);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    CU_ASSERT_FALSE(ovsdb_replica_cond_pending(r));
    CU_ASSERT_EQUAL(STAT(r, n_cond_changes), 1);
    CU_ASSERT_PTR_NULL(find(r, "VM", U1));
    CU_ASSERT_PTR_NOT_NULL(find(r, "VM", U2));
    json_decref(mid);
    mid = mid2;

    /* A malformed update3 (bad last id): counted, and a resync on the
     * same connection: monitor_cancel, then monitor_cond_since from
     * scratch with the current condition. */
    fake_notify(&f, "update3", mid, "[0,'nope',{}]");
    req = fake_expect(&f, r, "monitor_cancel");
    fake_reply(&f, req, "{}");
    req = fake_expect(&f, r, "monitor_cond_since");
    if (req) {
        json_t *params = jsonrpc_msg_params(req);
        json_t *expect = jl("{'VM':[{'columns':['name','host','tags'],"
                            "'where':[['host','==','h2']]}]}");
        CU_ASSERT(json_equal(json_array_get(params, 2), expect));
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(params, 3)),
                               OVSDB_UUID_ZERO);
        json_decref(mid);
        mid = json_incref(json_array_get(params, 1));
        json_decref(expect);
    }
    fake_reply(&f, req, "[false,'" L4 "',{'VM':{'" U2 "':{'initial':{"
               "'name':'vm2','host':'h2'}}}}]");
    sw = STAT_WAIT(n_syncs, 2);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    CU_ASSERT_EQUAL(STAT(r, n_bad_updates), 1);
    CU_ASSERT_STRING_EQUAL(ovsdb_replica_get_last_id(r), L4);

    /* Connection lost: on reconnection the replica resumes from L4 and
     * the server sends only what was missed (found=true). */
    ovsdb_replica_track_clear(r);
    jsonrpc_close(f.rpc);
    f.rpc = NULL;
    fake_server_db(&f, r, false, 6);
    req = fake_expect(&f, r, "monitor_cond_since");
    if (req) {
        json_t *params = jsonrpc_msg_params(req);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(params, 3)),
                               L4);
        json_decref(mid);
        mid = json_incref(json_array_get(params, 1));
    }
    fake_reply(&f, req, "[true,'" L5 "',{'VM':{'" U3 "':{'insert':{"
               "'name':'vm3','host':'h2'}}}}]");
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_synced, NULL));
    CU_ASSERT_EQUAL(STAT(r, n_resumes), 1);
    CU_ASSERT_EQUAL(STAT(r, n_syncs), 2);
    CU_ASSERT_PTR_NOT_NULL(find(r, "VM", U2));
    CU_ASSERT_PTR_NOT_NULL(find(r, "VM", U3));
    CU_ASSERT_STRING_EQUAL(tracked(r, "VM"), "33:inserted");

    /* Leader only: the server loses leadership, the replica leaves it. */
    ovsdb_replica_set_leader_only(r, true);
    CU_ASSERT_EQUAL(STAT(r, n_not_leader), 1);
    fake_wait_closed(&f, r);
    /* It comes back (single remote) and finds a leader this time; a
     * leadership loss reported by an update moves it away again. */
    fake_server_db(&f, r, true, 7);
    req = fake_expect(&f, r, "monitor_cond_since");
    if (req) {
        json_decref(mid);
        mid = json_incref(json_array_get(jsonrpc_msg_params(req), 1));
    }
    fake_reply(&f, req, "[true,'" L5 "',{}]");
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_synced, NULL));
    CU_ASSERT_EQUAL(STAT(r, n_resumes), 2);
    json_t *sid = json_string("_Server");
    fake_notify(&f, "update2", sid, "[0,{'Database':{'" U9 "':{"
                "'modify':{'leader':false,'index':8}}}}]");
    json_decref(sid);
    sw = STAT_WAIT(n_not_leader, 2);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    CU_ASSERT_EQUAL(STAT(r, n_leader_changes), 1);
    fake_wait_closed(&f, r);
    ovsdb_replica_set_leader_only(r, false);

    /* A server without monitor_cond_since: monitor_cond and update2. */
    fake_server_db(&f, r, false, 9);
    fake_unknown_method(&f, r, "monitor_cond_since");
    req = fake_expect(&f, r, "monitor_cond");
    if (req) {
        json_t *params = jsonrpc_msg_params(req);
        CU_ASSERT_EQUAL(json_array_size(params), 3);
        json_decref(mid);
        mid = json_incref(json_array_get(params, 1));
    }
    fake_reply(&f, req, "{'VM':{'" U2 "':{'initial':{'name':'vm2',"
               "'host':'h2','tags':'x'}}}}");
    CU_ASSERT_TRUE(fake_run_until(&f, r, is_synced, NULL));
    CU_ASSERT_EQUAL(STAT(r, monitor_version), 2);
    CU_ASSERT_EQUAL(STAT(r, n_monitor_fallbacks), 1);
    CU_ASSERT_EQUAL(STAT(r, n_syncs), 3);
    CU_ASSERT_PTR_NULL(find(r, "VM", U3));
    fake_notify(&f, "update2", mid, "[0,{'VM':{'" U2 "':{'modify':{"
                "'tags':['set',['x','y']]}}}}]");
    sw = STAT_WAIT(n_update_msgs, 3);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    check_value(ovsdb_replica_row_get(find(r, "VM", U2), "tags"), "'y'");
    CU_ASSERT(STAT(r, n_bytes_received) > 0);
    CU_ASSERT(STAT(r, n_connects) >= 4);

    /* The server cancels the data monitor: the replica cancels the
     * _Server one and starts over on the same connection. */
    fake_notify(&f, "monitor_canceled", mid, "[0]");
    req = fake_expect(&f, r, "monitor_cancel");
    if (req) {
        check_value(jsonrpc_msg_params(req), "['_Server']");
    }
    fake_reply(&f, req, "{}");
    fake_server_db(&f, r, false, 9);
    req = fake_expect(&f, r, "monitor_cond");
    fake_reply(&f, req, "{'VM':{'" U2 "':{'initial':{'name':'vm2',"
               "'host':'h2','tags':'y'}}}}");
    sw = STAT_WAIT(n_syncs, 4);
    CU_ASSERT_TRUE(fake_run_until(&f, r, stat_reaches, &sw));
    CU_ASSERT_TRUE(ovsdb_replica_is_synced(r));

    jsonrpc_close(f.rpc);
    f.rpc = NULL;
    CU_ASSERT_TRUE(fake_run_until(&f, r, not_connected, NULL));
    json_decref(mid);
    ovsdb_replica_destroy(r);
    vlog_set_hook(NULL, NULL);
    pstream_close(f.listener);
}

/* ----------------------------------------------------------------------
 * A real 3-member Raft cluster of ovsdb-server processes.
 */

static const char cluster_schema[] =
    "{\"name\":\"Clu\",\"version\":\"1.0.0\",\"tables\":{\"VM\":{"
    "\"columns\":{\"name\":{\"type\":\"string\"},"
    "\"host\":{\"type\":\"string\"}}}}}";

#define N_MEMBERS 3

struct cluster {
    char dir[32];
    struct server members[N_MEMBERS];
    struct ovsdb_replica *replicas[2];
    size_t n_replicas;
};

/* Returns a TCP port on 127.0.0.1 that was free a moment ago. */
static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int port = 0;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && !bind(fd, (struct sockaddr *) &sin, sizeof sin)
        && !getsockname(fd, (struct sockaddr *) &sin, &len)) {
        port = ntohs(sin.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

/* Runs every replica of 'c' until 'done(c, aux)' or 60 s. */
static bool
cluster_run_until(struct cluster *c,
                  bool (*done)(struct cluster *, void *), void *aux)
{
    long long int deadline = time_msec() + 60000;
    for (;;) {
        for (size_t i = 0; i < c->n_replicas; i++) {
            ovsdb_replica_run(c->replicas[i]);
        }
        if (done(c, aux)) {
            return true;
        }
        if (time_msec() > deadline) {
            return false;
        }
        for (size_t i = 0; i < c->n_replicas; i++) {
            ovsdb_replica_wait(c->replicas[i]);
        }
        poll_timer_wait(100);
        poll_block();
    }
}

static bool
all_synced(struct cluster *c, void *aux)
{
    (void) aux;
    for (size_t i = 0; i < c->n_replicas; i++) {
        if (!ovsdb_replica_is_synced(c->replicas[i])) {
            return false;
        }
    }
    return true;
}

/* Index of the member whose socket 'r' is connected to, or -1. */
static int
member_of(const struct cluster *c, const struct ovsdb_replica *r)
{
    const char *remote = ovsdb_replica_get_remote(r);
    for (int i = 0; remote && i < N_MEMBERS; i++) {
        if (!strcmp(remote, c->members[i].remote)) {
            return i;
        }
    }
    return -1;
}

struct vm_wait {
    const char *name;
    bool present;
};

static const struct ovsdb_replica_row *
find_vm(struct ovsdb_replica *r, const char *name)
{
    return ovsdb_replica_find_by_string(ovsdb_replica_get_table(r, "VM"),
                                        "name", name);
}

/* All replicas synced and have (or lack) VM 'name' ('aux' a vm_wait;
 * replicas[0] only sees host h1). */
static bool
vm_seen(struct cluster *c, void *w_)
{
    struct vm_wait *w = w_;
    for (size_t i = 0; i < c->n_replicas; i++) {
        if (!ovsdb_replica_is_synced(c->replicas[i])
            || !find_vm(c->replicas[i], w->name) != !w->present) {
            return false;
        }
    }
    return true;
}

struct moved_wait {
    int killed;
};

static bool
moved_and_synced(struct cluster *c, void *w_)
{
    struct moved_wait *w = w_;
    for (size_t i = 0; i < c->n_replicas; i++) {
        if (!ovsdb_replica_is_synced(c->replicas[i])
            || member_of(c, c->replicas[i]) == w->killed) {
            return false;
        }
    }
    return true;
}

static bool
cluster_txn_done(struct cluster *c, void *res_)
{
    struct txn_result *res = res_;
    (void) c;
    return res->n_calls > 0;
}

static json_t *
insert_vm_ops(const char *name, const char *host)
{
    json_t *ops = json_array();
    json_array_append_new(ops, ovsdb_op_insert(
        "VM", json_pack("{ssss}", "name", name, "host", host), NULL));
    return ops;
}

static void
test_real_cluster(void)
{
    struct cluster c;
    char tool[256], server[256], client[256];
    struct txn_result res = { 0 };
    int ports[N_MEMBERS];
    int n_logged = 0;

    memset(&c, 0, sizeof c);
    if (!find_program("ovsdb-server", server, sizeof server)
        || !find_program("ovsdb-tool", tool, sizeof tool)
        || !find_program("ovsdb-client", client, sizeof client)) {
        CU_FAIL("ovsdb-server, ovsdb-tool or ovsdb-client not installed");
        return;
    }
    snprintf(c.dir, sizeof c.dir, "/tmp/ovsrc.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(c.dir));
    char schema[128];
    snprintf(schema, sizeof schema, "%s/clu.ovsschema", c.dir);
    FILE *file = fopen(schema, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(cluster_schema, file);
    fclose(file);

    /* Three members: create the cluster, two join it. */
    for (int i = 0; i < N_MEMBERS; i++) {
        struct server *m = &c.members[i];
        snprintf(m->dir, sizeof m->dir, "%s/m%d", c.dir, i);
        CU_ASSERT_EQUAL_FATAL(mkdir(m->dir, 0700), 0);
        snprintf(m->db, sizeof m->db, "%s/clu.db", m->dir);
        snprintf(m->sock, sizeof m->sock, "%s/db.sock", m->dir);
        snprintf(m->remote, sizeof m->remote, "unix:%s", m->sock);
        ports[i] = free_port();
        CU_ASSERT_FATAL(ports[i] > 0);
    }
    CU_ASSERT_FATAL(run_cmd("%s create-cluster %s %s tcp:127.0.0.1:%d",
                            tool, c.members[0].db, schema, ports[0]));
    for (int i = 1; i < N_MEMBERS; i++) {
        CU_ASSERT_FATAL(run_cmd("%s join-cluster %s Clu tcp:127.0.0.1:%d "
                                "tcp:127.0.0.1:%d", tool, c.members[i].db,
                                ports[i], ports[0]));
    }
    for (int i = 0; i < N_MEMBERS; i++) {
        CU_ASSERT_FATAL(server_start(&c.members[i]));
    }

    char remotes[512];
    snprintf(remotes, sizeof remotes, "%s,%s,%s", c.members[0].remote,
             c.members[1].remote, c.members[2].remote);

    /* A leader-only replica of everything. */
    vlog_set_hook(quiet_hook, &n_logged);
    struct ovsdb_replica *lead = ovsdb_replica_create("Clu");
    struct ovsdb_replica_table *t = ovsdb_replica_add_table(lead, "VM");
    ovsdb_replica_add_column(t, "name", NULL);
    ovsdb_replica_add_column(t, "host", NULL);
    ovsdb_replica_set_backoff(lead, 100, 500);
    ovsdb_replica_set_leader_only(lead, true);
    ovsdb_replica_connect(lead, remotes);
    c.replicas[c.n_replicas++] = lead;
    CU_ASSERT_TRUE_FATAL(cluster_run_until(&c, all_synced, NULL));
    int leader = member_of(&c, lead);
    CU_ASSERT_FATAL(leader >= 0);
    struct ovsdb_replica_stats s;
    ovsdb_replica_get_stats(lead, &s);
    CU_ASSERT_EQUAL(s.monitor_version, 3);
    CU_ASSERT_EQUAL(s.n_syncs, 1);

    /* A replica of host h1's VMs, any member, connected to the leader
     * first (remotes in order). */
    struct ovsdb_replica *h1 = ovsdb_replica_create("Clu");
    t = ovsdb_replica_add_table(h1, "VM");
    ovsdb_replica_add_column(t, "name", NULL);
    ovsdb_replica_add_column(t, "host", NULL);
    json_t *cond = jl("[['host','==','h1']]");
    CU_ASSERT_EQUAL(ovsdb_replica_set_condition(t, cond), 0);
    json_decref(cond);
    ovsdb_replica_set_backoff(h1, 100, 500);
    ovsdb_replica_set_shuffle_remotes(h1, false);
    snprintf(remotes, sizeof remotes, "%s,%s,%s",
             c.members[leader].remote,
             c.members[(leader + 1) % N_MEMBERS].remote,
             c.members[(leader + 2) % N_MEMBERS].remote);
    ovsdb_replica_connect(h1, remotes);
    c.replicas[c.n_replicas++] = h1;
    CU_ASSERT_TRUE_FATAL(cluster_run_until(&c, all_synced, NULL));
    CU_ASSERT_EQUAL(member_of(&c, h1), leader);

    /* Writes through the leader-only replica; h1 sees only its VM. */
    ovsdb_replica_transact(lead, insert_vm_ops("vm1", "h1"), txn_cb, &res);
    CU_ASSERT_TRUE(cluster_run_until(&c, cluster_txn_done, &res));
    CU_ASSERT_PTR_NULL(res.error);
    txn_result_clear(&res);
    ovsdb_replica_transact(lead, insert_vm_ops("vm2", "h2"), txn_cb, &res);
    CU_ASSERT_TRUE(cluster_run_until(&c, cluster_txn_done, &res));
    CU_ASSERT_PTR_NULL(res.error);
    txn_result_clear(&res);
    struct vm_wait w = { "vm1", true };
    CU_ASSERT_TRUE(cluster_run_until(&c, vm_seen, &w));
    long long int until = time_msec() + 500;
    while (time_msec() < until) {
        for (size_t i = 0; i < c.n_replicas; i++) {
            ovsdb_replica_run(c.replicas[i]);
            ovsdb_replica_wait(c.replicas[i]);
        }
        poll_timer_wait_until(until);
        poll_block();
    }
    CU_ASSERT_PTR_NOT_NULL(find_vm(lead, "vm2"));
    CU_ASSERT_PTR_NULL(find_vm(h1, "vm2"));
    CU_ASSERT_EQUAL(ovsdb_replica_table_n_row_updates(
                        ovsdb_replica_get_table(h1, "VM")), 1);
    CU_ASSERT_EQUAL(ovsdb_replica_table_n_row_updates(
                        ovsdb_replica_get_table(lead, "VM")), 2);
    CU_ASSERT_PTR_NOT_NULL(ovsdb_replica_get_last_id(lead));

    /* Kill the leader.  While nobody is connected, a change is made
     * through a surviving member. */
    server_stop(&c.members[leader]);
    int other = (leader + 1) % N_MEMBERS;
    CU_ASSERT(run_cmd("for i in $(seq 100); do timeout 10 %s transact %s "
                      "'[\"Clu\",{\"op\":\"insert\",\"table\":\"VM\","
                      "\"row\":{\"name\":\"vm3\",\"host\":\"h1\"}}]' "
                      ">/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1",
                      client, c.members[other].remote));

    /* Both move to another member and resume there: no full resync. */
    struct moved_wait mw = { leader };
    CU_ASSERT_TRUE(cluster_run_until(&c, moved_and_synced, &mw));
    w = (struct vm_wait) { "vm3", true };
    CU_ASSERT_TRUE(cluster_run_until(&c, vm_seen, &w));
    for (size_t i = 0; i < c.n_replicas; i++) {
        ovsdb_replica_get_stats(c.replicas[i], &s);
        fprintf(stderr, "replica %zu: member %d->%d syncs %"PRIu64
                " resumes %"PRIu64" not-leader %"PRIu64" rejects %"PRIu64
                " moves %"PRIu64" connects %"PRIu64" rows %"PRIu64
                " bytes %"PRIu64"\n", i, leader,
                member_of(&c, c.replicas[i]), s.n_syncs, s.n_resumes,
                s.n_not_leader, s.n_server_rejects, s.n_remote_moves,
                s.n_connects, s.n_row_updates, s.n_bytes_received);
        CU_ASSERT_EQUAL(s.monitor_version, 3);
        CU_ASSERT_EQUAL(s.n_syncs, 1);
        CU_ASSERT(s.n_resumes >= 1);
        CU_ASSERT(s.n_remote_moves >= 1);
        CU_ASSERT_EQUAL(s.n_bad_updates, 0);
    }
    CU_ASSERT_PTR_NULL(find_vm(h1, "vm2"));
    CU_ASSERT_PTR_NOT_NULL(find_vm(lead, "vm1"));

    /* The leader-only replica still writes (to the new leader). */
    ovsdb_replica_transact(lead, insert_vm_ops("vm4", "h1"), txn_cb, &res);
    CU_ASSERT_TRUE(cluster_run_until(&c, cluster_txn_done, &res));
    CU_ASSERT_PTR_NULL(res.error);
    txn_result_clear(&res);
    w = (struct vm_wait) { "vm4", true };
    CU_ASSERT_TRUE(cluster_run_until(&c, vm_seen, &w));

    for (size_t i = 0; i < c.n_replicas; i++) {
        ovsdb_replica_destroy(c.replicas[i]);
    }
    vlog_set_hook(NULL, NULL);
    for (int i = 0; i < N_MEMBERS; i++) {
        server_stop(&c.members[i]);
    }
    run_cmd("rm -rf %s", c.dir);
}

int
unit_register(void)
{
    static const struct unit_test tests[] = {
        { "declare", test_declare },
        { "insert modify delete", test_insert_modify_delete },
        { "tracking coalesces", test_tracking_coalesce },
        { "initial replaces", test_initial_replace },
        { "inconsistent updates", test_inconsistent },
        { "bad rows", test_bad_rows },
        { "find", test_find },
        { "find by a string column", test_find_by_string },
        { "many rows", test_many_rows },
        { "random model", test_random_model },
        { "transactions offline", test_txn_offline },
        { "update2 and diffs", test_update2 },
        { "datum diffs", test_apply_diff },
        { "map diffs against a model", test_apply_diff_random },
        { "_Server check", test_server_check },
        { "condition API", test_condition_api },
        { "fake server", test_fake_server },
        { "fake cluster server", test_fake_cluster },
        { "multiple remotes", test_multiple_remotes },
        { "real ovsdb-server", test_real_server },
        { "real Raft cluster", test_real_cluster },
    };
    return UNIT_ADD_SUITE("ovsdb-replica", tests);
}
