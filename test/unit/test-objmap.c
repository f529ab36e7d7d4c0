/* Unit tests for chand-host/objmap (parsing object records, and the OVSDB
 * operations that keep Object and Object_Ref in step with them) and
 * chand-host/objaction (the verdicts and notices wanted per VM, the answers
 * to restore requests and the objects to fetch for them, the parsing of
 * those requests, and the allowlist records). */

#include <config.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objaction.h"
#include "objmap.h"
#include "ovsdb-replica.h"
#include "unit.h"
#include "util.h"

#define N_ELEMS(a) (sizeof (a) / sizeof (a)[0])

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define U_OBJ "36b7e6a8-0000-4000-8000-000000000001"
#define U_REF "36b7e6a8-0000-4000-8000-000000000002"

static const char good[] =
    "{\"size\":10,\"paths\":[\"/srv/a\",\"/srv/b\"],\"flags\":[\"clean\"],"
    "\"params\":{\"kind\":\"binary\"}}";

static const char *
parse(const char *key, const char *text)
{
    struct objmap_entry e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    const char *error = objmap_parse(key, v, &e);
    if (!error) {
        CU_ASSERT_STRING_EQUAL(e.digest, key + 4);
        CU_ASSERT(json_is_array(e.paths));
    }
    json_decref(v);
    return error;
}

static void
test_parse(void)
{
    CU_ASSERT_PTR_NULL(parse("obj/" D1, good));
    CU_ASSERT_PTR_NULL(parse("obj/" D1, "{\"size\":0,\"paths\":[\"/x\"],"
                             "\"flags\":[],\"params\":{}}"));

    static const struct {
        const char *key, *value;
    } bad[] = {
        { "obj/" D1 "0", good },
        { "obj/1111", good },
        { "obj/AAAA111111111111111111111111111111111111111111111111111111111111",
          good },
        { "pub/" D1, good },
        { "obj/" D1, "[]" },
        { "obj/" D1, "{\"size\":-1,\"paths\":[\"/x\"],\"flags\":[],"
          "\"params\":{}}" },
        { "obj/" D1, "{\"size\":1.5,\"paths\":[\"/x\"],\"flags\":[],"
          "\"params\":{}}" },
        { "obj/" D1, "{\"size\":1,\"paths\":[],\"flags\":[],\"params\":{}}" },
        { "obj/" D1, "{\"size\":1,\"paths\":[\"x\"],\"flags\":[],"
          "\"params\":{}}" },
        { "obj/" D1, "{\"size\":1,\"paths\":[7],\"flags\":[],\"params\":{}}" },
        { "obj/" D1, "{\"size\":1,\"paths\":[\"/x\"],\"flags\":[\"Bad\"],"
          "\"params\":{}}" },
        { "obj/" D1, "{\"size\":1,\"paths\":[\"/x\"],\"flags\":[],"
          "\"params\":{\"k\":1}}" },
        { "obj/" D1, "{\"size\":1,\"paths\":[\"/x\"],\"flags\":[]}" },
        { "obj/" D1, "{\"size\":1,\"paths\":[\"/x\"],\"flags\":[],"
          "\"params\":{},\"extra\":1}" },
        { "obj/" D1, "{\"size\":1,\"paths\":[\"/a\\u0000b\"],\"flags\":[],"
          "\"params\":{}}" },
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        const char *error = parse(bad[i].key, bad[i].value);
        CU_ASSERT_PTR_NOT_NULL(error);
        if (!error) {
            fprintf(stderr, "accepted: %s %s\n", bad[i].key, bad[i].value);
        }
    }

    /* 65 paths are too many. */
    json_t *v = json_pack("{si so so so}", "size", 1, "paths", json_array(),
                          "flags", json_array(), "params", json_object());
    for (int i = 0; i < 65; i++) {
        char path[16];
        snprintf(path, sizeof path, "/p%d", i);
        json_array_append_new(json_object_get(v, "paths"), json_string(path));
    }
    struct objmap_entry e;
    CU_ASSERT_PTR_NOT_NULL(objmap_parse("obj/" D1, v, &e));
    json_decref(v);
}

/* A replica holding object D1 (size 10) referenced by vm1. */
static struct ovsdb_replica *
make_replica(void)
{
    struct ovsdb_replica *r = ovsdb_replica_create("Chan");
    objmap_add_columns(r);
    json_t *u = json_pack(
        "{s{s{s{ss si}}} s{s{s{ss ss so}}}}",
        "Object", U_OBJ, "new", "digest", D1, "size", 10,
        "Object_Ref", U_REF, "new", "vm", "vm1", "digest", D1, "object",
        json_pack("[ss]", "uuid", U_OBJ));
    CU_ASSERT_EQUAL_FATAL(ovsdb_replica_apply_updates(r, u, true), 0);
    json_decref(u);
    return r;
}

/* Returns the 'i'th op's "op" member. */
static const char *
op_name(const json_t *ops, size_t i)
{
    return json_string_value(json_object_get(json_array_get(ops, i), "op"));
}

static const char *
op_table(const json_t *ops, size_t i)
{
    return json_string_value(json_object_get(json_array_get(ops, i),
                                             "table"));
}

static void
test_ops(void)
{
    struct ovsdb_replica *r = make_replica();
    struct objmap_txn txn;
    json_t *ops;

    /* vm1 already references D1: its row is updated. */
    objmap_txn_init(&txn);
    ops = json_array();
    CU_ASSERT_PTR_NULL(objmap_ops(r, &txn, "vm1", "obj/" D1, good, 5, ops));
    CU_ASSERT_EQUAL(json_array_size(ops), 1);
    CU_ASSERT_STRING_EQUAL(op_name(ops, 0), "update");
    CU_ASSERT_STRING_EQUAL(op_table(ops, 0), "Object_Ref");
    json_t *row = json_object_get(json_array_get(ops, 0), "row");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(row, "last_seen")), 5);
    json_decref(ops);

    /* vm2 references D1 too: a new row, and the object's refs grow. */
    ops = json_array();
    CU_ASSERT_PTR_NULL(objmap_ops(r, &txn, "vm2", "obj/" D1, good, 5, ops));
    CU_ASSERT_EQUAL_FATAL(json_array_size(ops), 2);
    CU_ASSERT_STRING_EQUAL(op_name(ops, 0), "insert");
    CU_ASSERT_STRING_EQUAL(op_table(ops, 0), "Object_Ref");
    row = json_object_get(json_array_get(ops, 0), "row");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                               json_object_get(row, "object"), 1)), U_OBJ);
    CU_ASSERT_STRING_EQUAL(op_name(ops, 1), "mutate");
    CU_ASSERT_STRING_EQUAL(op_table(ops, 1), "Object");
    json_decref(ops);

    /* vm3 claims D1 with another size: refused, and any reference of its
     * own to D1 goes. */
    ops = json_array();
    const char *error = objmap_ops(
        r, &txn, "vm3", "obj/" D1,
        "{\"size\":11,\"paths\":[\"/x\"],\"flags\":[],\"params\":{}}", 5,
        ops);
    CU_ASSERT(error && strstr(error, "size"));
    CU_ASSERT_EQUAL_FATAL(json_array_size(ops), 1);
    CU_ASSERT_STRING_EQUAL(op_name(ops, 0), "delete");
    json_decref(ops);

    /* A malformed record: refused the same way. */
    ops = json_array();
    CU_ASSERT_PTR_NOT_NULL(objmap_ops(r, &txn, "vm3", "obj/" D1, "{}", 5,
                                      ops));
    CU_ASSERT_STRING_EQUAL(op_name(ops, 0), "delete");
    json_decref(ops);

    /* A new object D2 from two VMs in one transaction: one Object row. */
    ops = json_array();
    CU_ASSERT_PTR_NULL(objmap_ops(r, &txn, "vm2", "obj/" D2, good, 5, ops));
    CU_ASSERT_PTR_NULL(objmap_ops(r, &txn, "vm3", "obj/" D2, good, 5, ops));
    size_t n_object_inserts = 0, n_ref_inserts = 0;
    for (size_t i = 0; i < json_array_size(ops); i++) {
        if (!strcmp(op_name(ops, i), "insert")) {
            n_object_inserts += !strcmp(op_table(ops, i), "Object");
            n_ref_inserts += !strcmp(op_table(ops, i), "Object_Ref");
        }
    }
    CU_ASSERT_EQUAL(n_object_inserts, 1);
    CU_ASSERT_EQUAL(n_ref_inserts, 2);
    /* ...and a third with another size is refused against it. */
    CU_ASSERT_PTR_NOT_NULL(objmap_ops(
                               r, &txn, "vm4", "obj/" D2,
                               "{\"size\":3,\"paths\":[\"/x\"],\"flags\":[],"
                               "\"params\":{}}", 5, ops));
    json_decref(ops);

    /* Withdrawn: deleted.  A key outside obj/ never maps anything. */
    ops = json_array();
    CU_ASSERT_PTR_NULL(objmap_ops(r, &txn, "vm1", "obj/" D1, NULL, 5, ops));
    CU_ASSERT_EQUAL(json_array_size(ops), 1);
    CU_ASSERT_STRING_EQUAL(op_name(ops, 0), "delete");
    CU_ASSERT_PTR_NULL(objmap_ops(r, &txn, "vm1", "obj/zz", NULL, 5, ops));
    CU_ASSERT_EQUAL(json_array_size(ops), 1);
    objmap_delete_vm("vm1", ops);
    CU_ASSERT_EQUAL(json_array_size(ops), 2);
    json_decref(ops);

    objmap_txn_destroy(&txn);
    ovsdb_replica_destroy(r);
}

/* Returns VM 'vm''s record 'key' in 'wanted', parsed, or NULL. */
static json_t *
wanted_value(const json_t *wanted, const char *vm, const char *key)
{
    const char *text = json_string_value(json_object_get(
                                             json_object_get(wanted, vm),
                                             key));
    return text ? json_loads(text, 0, NULL) : NULL;
}

static void
test_actions(void)
{
    json_t *objects = json_pack(
        "{s{si s[s] s{ss}} s{si s[] s{ss}} s{si s[] s{}}}",
        D1, "size", 10, "flags", "infected", "params", "action", "delete",
        D2, "size", 20, "flags", "params", "superseded_by",
        "3333333333333333333333333333333333333333333333333333333333333333",
        "3333333333333333333333333333333333333333333333333333333333333333",
        "size", 30, "flags", "params");
    json_t *refs = json_pack("{s{s[s]s[s]} s{s[ss]} s{}}",
                             "vm1", D1, "/a", D2, "/b",
                             "vm2", D1, "/c", "/d",
                             "vm3");
    json_t *wanted = objaction_compute(objects, refs, NULL);

    /* The verdict reaches vm1 and vm2, each with its own paths. */
    json_t *v = wanted_value(wanted, "vm1", "verdict/" D1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "action")),
                           "delete");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "verdict")),
                           "infected");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                               json_object_get(v, "paths"), 0)), "/a");
    json_decref(v);
    v = wanted_value(wanted, "vm2", "verdict/" D1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(v, "paths")), 2);
    json_decref(v);
    /* vm3 holds nothing: no record at all. */
    CU_ASSERT_PTR_NULL(json_object_get(wanted, "vm3"));

    /* The notice: only vm1 holds D2; the new size comes from the new
     * object's row. */
    v = wanted_value(wanted, "vm1", "notice/" D2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "size")), 30);
    json_decref(v);
    CU_ASSERT_PTR_NULL(json_object_get(json_object_get(wanted, "vm2"),
                                       "notice/" D2));
    CU_ASSERT_EQUAL(json_object_size(json_object_get(wanted, "vm1")), 2);
    CU_ASSERT_EQUAL(json_object_size(json_object_get(wanted, "vm2")), 1);
    json_decref(wanted);

    /* Unknown superseding size, no action: no notice; an action other than
     * delete means quarantine. */
    json_object_del(objects, "3333333333333333333333333333333333333333333333333333333333333333");
    json_object_set_new(json_object_get(json_object_get(objects, D1),
                                        "params"),
                        "action", json_string("shred"));
    wanted = objaction_compute(objects, refs, NULL);
    CU_ASSERT_PTR_NULL(json_object_get(json_object_get(wanted, "vm1"),
                                       "notice/" D2));
    v = wanted_value(wanted, "vm1", "verdict/" D1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "action")),
                           "quarantine");
    json_decref(v);
    json_decref(wanted);

    /* ...and params:new_size stands in for a missing row. */
    json_object_set_new(json_object_get(json_object_get(objects, D2),
                                        "params"),
                        "new_size", json_string("77"));
    wanted = objaction_compute(objects, refs, NULL);
    v = wanted_value(wanted, "vm1", "notice/" D2);
    CU_ASSERT_PTR_NOT_NULL(v);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "size")), 77);
    json_decref(v);
    json_decref(wanted);

    /* A scanner's verdict: G is not flagged, vm3 scanned it; vm1 holds it
     * and gets a verdict naming the source.  A digest nobody holds makes
     * nothing.  The control plane's verdict wins (no source). */
    json_t *scanned = json_pack("{ss ss ss}", D2, "vm3", D1, "vm3",
                                "4444444444444444444444444444444444444444444444444444444444444444",
                                "vm3");
    wanted = objaction_compute(objects, refs, scanned);
    v = wanted_value(wanted, "vm1", "verdict/" D2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "source")),
                           "vm3");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "action")),
                           "quarantine");
    json_decref(v);
    v = wanted_value(wanted, "vm1", "verdict/" D1);
    CU_ASSERT_PTR_NULL(json_object_get(v, "source"));
    json_decref(v);
    CU_ASSERT_PTR_NULL(json_object_get(wanted, "vm3"));
    json_decref(wanted);
    json_decref(scanned);

    /* What counts as a scanner verdict. */
    CU_ASSERT_PTR_NOT_NULL(objaction_parse_scan("verdict/" D1,
                                                "{\"verdict\":\"infected\"}"));
    CU_ASSERT_PTR_NULL(objaction_parse_scan("verdict/" D1,
                                            "{\"verdict\":\"clean\"}"));
    CU_ASSERT_PTR_NULL(objaction_parse_scan("verdict/" D1, "[1"));
    CU_ASSERT_PTR_NULL(objaction_parse_scan("verdict/" D1, NULL));
    CU_ASSERT_PTR_NULL(objaction_parse_scan("verdict/abc",
                                            "{\"verdict\":\"infected\"}"));
    CU_ASSERT_PTR_NULL(objaction_parse_scan("verdicts/" D1,
                                            "{\"verdict\":\"infected\"}"));
    json_decref(objects);
    json_decref(refs);
}

#define D3 "3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "4444444444444444444444444444444444444444444444444444444444444444"
#define D5 "5555555555555555555555555555555555555555555555555555555555555555"
#define D6 "6666666666666666666666666666666666666666666666666666666666666666"
#define D7 "7777777777777777777777777777777777777777777777777777777777777777"
#define D8 "8888888888888888888888888888888888888888888888888888888888888888"
#define DU "A111111111111111111111111111111111111111111111111111111111111111"

/* The "error" of VM 'vm''s restore answer for 'digest', or NULL (also if
 * there is no answer: see restore_answered()). */
static char *
restore_error(const json_t *wanted, const char *vm, const char *digest)
{
    char *key = xasprintf("restore/%s", digest);
    json_t *v = wanted_value(wanted, vm, key);
    const char *e = json_string_value(json_object_get(v, "error"));
    char *error = e ? xstrdup(e) : NULL;
    json_decref(v);
    free(key);
    return error;
}

static bool
restore_answered(const json_t *wanted, const char *vm, const char *digest)
{
    char *key = xasprintf("restore/%s", digest);
    bool answered = json_object_get(json_object_get(wanted, vm), key);
    free(key);
    return answered;
}

/* Checks that 'vm''s answer for 'digest' is an error starting with
 * 'prefix', for request 'at', and has no size. */
static void
check_restore_error(const json_t *wanted, const char *vm, const char *digest,
                    json_int_t at, const char *prefix)
{
    char *key = xasprintf("restore/%s", digest);
    json_t *v = wanted_value(wanted, vm, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "digest")),
                           digest);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "request")), at);
    CU_ASSERT_PTR_NULL(json_object_get(v, "size"));
    const char *error = json_string_value(json_object_get(v, "error"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_EQUAL(strncmp(error, prefix, strlen(prefix)), 0);
    if (strncmp(error, prefix, strlen(prefix))) {
        fprintf(stderr, "%s %s: error \"%s\", expected \"%s...\"\n", vm,
                digest, error, prefix);
    }
    json_decref(v);
    free(key);
}

/* True if the array of strings 'a' is exactly the 'n' names 'names'. */
static bool
names_are(const json_t *a, const char *const *names, size_t n)
{
    if (json_array_size(a) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || strcmp(s, names[i])) {
            return false;
        }
    }
    return true;
}


/* An update notice entitles its VM to the superseding object, which it
 * never held; another VM without the notice stays refused. */
static void
test_restore_noticed(void)
{
    json_t *objects = json_pack("{s{si s[] s{} s[s]} s{si s[] s{} s[]}}",
                                D1, "size", 10, "flags", "params",
                                "held_by", "vm1",
                                D4, "size", 40, "flags", "params",
                                "held_by");
    CU_ASSERT_PTR_NOT_NULL_FATAL(objects);
    json_t *refs = json_pack("{s{s[]}}", "vm1", D1);
    json_t *requests = json_pack("{s{si} s{si}}", "vm1", D4, 11,
                                 "vm2", D4, 21);
    json_t *content = json_pack("{ss}", D4, "present");
    json_t *wanted = json_pack(
        "{s{ss}}", "vm1", "notice/" D1,
        "{\"digest\":\"" D1 "\",\"paths\":[\"/a\"],\"size\":40,"
        "\"superseded_by\":\"" D4 "\"}");
    json_t *needs = json_object();

    CU_ASSERT_EQUAL(objaction_restore(objects, refs, requests, content,
                                      wanted, needs), 1);
    json_t *v = wanted_value(wanted, "vm1", "restore/" D4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "size")), 40);
    CU_ASSERT_PTR_NULL(json_object_get(v, "error"));
    json_decref(v);
    check_restore_error(wanted, "vm2", D4, 21, "not entitled");

    json_decref(objects);
    json_decref(refs);
    json_decref(requests);
    json_decref(content);
    json_decref(wanted);
    json_decref(needs);
}

static void
test_restore(void)
{
    /* D1: vm1 and vm2 reference it (vm1 quarantined its copy).
     * D2: vm1 held it once (held_by) and no longer references it; vmz,
     *     vmb and vma hold it clean, vmx infected, vmq quarantined.
     * D3: flagged infected; vm1 holds it, vm2 holds it clean.
     * D4: present in the content store.
     * D5: fetching it failed for good.
     * D6: held by vm1, and by others only infected or quarantined.
     * D7: held by vm1 only.
     * D8: no Object row. */
    json_t *objects = json_pack(
        "{s{si s[] s{} s[ss]}"
        " s{si s[] s{} s[ssssss]}"
        " s{si s[s] s{} s[ss]}"
        " s{si s[] s{} s[ss]}"
        " s{si s[] s{} s[ss]}"
        " s{si s[] s{} s[sss]}"
        " s{si s[] s{} s[s]}}",
        D1, "size", 10, "flags", "params", "held_by", "vm1", "vm2",
        D2, "size", 20, "flags", "params", "held_by", "vm1", "vmz", "vmb",
        "vma", "vmx", "vmq",
        D3, "size", 30, "flags", "infected", "params", "held_by", "vm1",
        "vm2",
        D4, "size", 40, "flags", "params", "held_by", "vm1", "vm2",
        D5, "size", 50, "flags", "params", "held_by", "vm1", "vm2",
        D6, "size", 60, "flags", "params", "held_by", "vm1", "vm2", "vm3",
        D7, "size", 70, "flags", "params", "held_by", "vm1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(objects);
    json_t *refs = json_pack(
        "{s{s[s] s[] s[] s[] s[] s[]}"
        " s{s[] s[] s[] s[] s[s]}"
        " s{s[s]}"
        " s{s[]} s{s[]} s{s[]} s{s[s]} s{s[ss]}}",
        "vm1", D1, "quarantined", D3, D4, D5, D6, D7,
        "vm2", D1, D3, D4, D5, D6, "infected",
        "vm3", D6, "quarantined",
        "vmz", D2, "vmb", D2, "vma", D2, "vmx", D2, "infected",
        "vmq", D2, "quarantined", "infected");
    CU_ASSERT_PTR_NOT_NULL_FATAL(refs);
    json_t *requests = json_pack(
        "{s{si si si si si si si si} s{si si} s{si}}",
        "vm1", D1, 101, D2, 102, D3, 103, D4, 104, D5, 105, D6, 106,
        D7, 107, D8, 108,
        "vm5", D1, 501, D4, 504,
        "vm2", D1, 201);
    CU_ASSERT_PTR_NOT_NULL_FATAL(requests);
    /* D5 failed from its one clean holder; D2 failed from vma only, and
     * vmb and vmz hold clean copies too. */
    json_t *content = json_pack("{ss ss s{ss s[s]} s{ss s[s]}}",
                                D4, "present", D3, "present",
                                D5, "error", "all sources failed: io",
                                "tried", "vm2",
                                D2, "error", "vma failed", "tried", "vma");
    CU_ASSERT_PTR_NOT_NULL_FATAL(content);
    json_t *wanted = json_object();
    json_t *needs = json_object();

    unsigned int refused = objaction_restore(objects, refs, requests,
                                             content, wanted, needs);

    /* Not entitled: vm5 never held D1 or D4 (even though D4 is present),
     * and nobody is entitled to an object without a row. */
    CU_ASSERT_EQUAL(refused, 3);
    check_restore_error(wanted, "vm5", D1, 501, "not entitled");
    check_restore_error(wanted, "vm5", D4, 504, "not entitled");
    check_restore_error(wanted, "vm1", D8, 108, "not entitled");

    /* Entitled by a current reference (a quarantined one): D1 is on its
     * way, no answer yet, and vm2 is the one candidate. */
    CU_ASSERT_FALSE(restore_answered(wanted, "vm1", D1));
    json_t *need = json_object_get(needs, D1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(need);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(need, "size")), 10);
    static const char *const d1_candidates[] = { "vm2" };
    CU_ASSERT_TRUE(names_are(json_object_get(need, "candidates"),
                             d1_candidates, 1));
    /* vm2 asked for D1 too, but it holds the only clean copy: vm1's is
     * quarantined, so vm2 has nobody to get it from. */
    check_restore_error(wanted, "vm2", D1, 201,
                        "no other VM holds a clean copy");

    /* Entitled by held_by alone (the reference was withdrawn): D2 is
     * needed from the clean holders, sorted by name, without vmx
     * (infected) and vmq (quarantined and infected). */
    CU_ASSERT_FALSE(restore_answered(wanted, "vm1", D2));
    need = json_object_get(needs, D2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(need);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(need, "size")), 20);
    static const char *const d2_candidates[] = { "vma", "vmb", "vmz" };
    CU_ASSERT_TRUE(names_are(json_object_get(need, "candidates"),
                             d2_candidates, 3));

    /* Flagged infected: refused even though the content is present. */
    check_restore_error(wanted, "vm1", D3, 103,
                        "object " "333333333333" " is flagged infected");
    CU_ASSERT_PTR_NULL(json_object_get(needs, D3));

    /* Present: the answer has the size and the request, no error. */
    json_t *v = wanted_value(wanted, "vm1", "restore/" D4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "digest")),
                           D4);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "request")), 104);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "size")), 40);
    CU_ASSERT_PTR_NULL(json_object_get(v, "error"));
    CU_ASSERT_EQUAL(json_object_size(v), 3);
    json_decref(v);
    CU_ASSERT_PTR_NULL(json_object_get(needs, D4));

    /* Fetching failed: that error. */
    char *error = restore_error(wanted, "vm1", D5);
    CU_ASSERT_PTR_NOT_NULL(error);
    CU_ASSERT_STRING_EQUAL(error ? error : "", "all sources failed: io");
    free(error);
    check_restore_error(wanted, "vm1", D5, 105, "all sources failed: io");
    CU_ASSERT_PTR_NULL(json_object_get(needs, D5));

    /* Fetching failed, but from some clean holders only: no answer, the
     * object is needed again. */
    CU_ASSERT_PTR_NULL(wanted_value(wanted, "vm1", "restore/" D2));
    CU_ASSERT_PTR_NOT_NULL(json_object_get(needs, D2));

    /* No clean copy elsewhere: only infected or quarantined holders, or
     * only the requester. */
    check_restore_error(wanted, "vm1", D6, 106,
                        "no other VM holds a clean copy");
    check_restore_error(wanted, "vm1", D7, 107,
                        "no other VM holds a clean copy");
    CU_ASSERT_PTR_NULL(json_object_get(needs, D6));
    CU_ASSERT_PTR_NULL(json_object_get(needs, D7));

    /* Nothing else: D1 and D2 are the only needs; vm1 has answers for
     * D3..D8, vm5 two, vm2 one. */
    CU_ASSERT_EQUAL(json_object_size(needs), 2);
    CU_ASSERT_EQUAL(json_object_size(json_object_get(wanted, "vm1")), 6);
    CU_ASSERT_EQUAL(json_object_size(json_object_get(wanted, "vm5")), 2);
    CU_ASSERT_EQUAL(json_object_size(json_object_get(wanted, "vm2")), 1);
    CU_ASSERT_EQUAL(json_object_size(wanted), 3);

    /* Once D2 is present, vm1 gets its answer and D2 is no longer
     * needed. */
    json_object_set_new(content, D2, json_string("present"));
    json_decref(wanted);
    json_decref(needs);
    wanted = json_object();
    needs = json_object();
    objaction_restore(objects, refs, requests, content, wanted, needs);
    v = wanted_value(wanted, "vm1", "restore/" D2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "size")), 20);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "request")), 102);
    json_decref(v);
    CU_ASSERT_PTR_NULL(json_object_get(needs, D2));
    CU_ASSERT_EQUAL(json_object_size(needs), 1);

    json_decref(wanted);
    json_decref(needs);
    json_decref(objects);
    json_decref(refs);
    json_decref(requests);
    json_decref(content);
}

/* The candidates exclude the requester, wherever its name sorts. */
static void
test_restore_candidates(void)
{
    json_t *objects = json_pack("{s{si s[] s{} s[ssss]}}", D1, "size", 5,
                                "flags", "params", "held_by",
                                "c", "b", "d", "a");
    json_t *refs = json_pack("{s{s[]} s{s[]} s{s[]} s{s[]}}",
                             "d", D1, "b", D1, "c", D1, "a", D1);
    json_t *requests = json_pack("{s{si}}", "b", D1, 7);
    json_t *content = json_object();
    json_t *wanted = json_object();
    json_t *needs = json_object();

    CU_ASSERT_EQUAL(objaction_restore(objects, refs, requests, content,
                                      wanted, needs), 0);
    CU_ASSERT_EQUAL(json_object_size(wanted), 0);
    static const char *const expected[] = { "a", "c", "d" };
    CU_ASSERT_TRUE(names_are(json_object_get(json_object_get(needs, D1),
                                             "candidates"), expected, 3));

    json_decref(objects);
    json_decref(refs);
    json_decref(requests);
    json_decref(content);
    json_decref(wanted);
    json_decref(needs);
}

static void
test_parse_restore(void)
{
    json_int_t at = -1;
    const char *key = "restore/" D1;

    const char *d = objaction_parse_restore(
        key, "{\"digest\":\"" D1 "\",\"path\":\"/srv/a\",\"at\":42}", &at);
    CU_ASSERT_PTR_EQUAL(d, key + strlen("restore/"));
    CU_ASSERT_EQUAL(at, 42);

    static const struct {
        const char *key, *value;
    } bad[] = {
        /* The value's digest is not the key's. */
        { "restore/" D1,
          "{\"digest\":\"" D2 "\",\"path\":\"/srv/a\",\"at\":1}" },
        { "restore/" D1, "{\"path\":\"/srv/a\",\"at\":1}" },
        /* No path, or not a string. */
        { "restore/" D1, "{\"digest\":\"" D1 "\",\"at\":1}" },
        { "restore/" D1, "{\"digest\":\"" D1 "\",\"path\":7,\"at\":1}" },
        /* "at" missing or not an integer. */
        { "restore/" D1, "{\"digest\":\"" D1 "\",\"path\":\"/a\"}" },
        { "restore/" D1,
          "{\"digest\":\"" D1 "\",\"path\":\"/a\",\"at\":\"1\"}" },
        { "restore/" D1,
          "{\"digest\":\"" D1 "\",\"path\":\"/a\",\"at\":1.5}" },
        { "restore/" D1,
          "{\"digest\":\"" D1 "\",\"path\":\"/a\",\"at\":null}" },
        /* Not JSON, not an object, no value. */
        { "restore/" D1, "{\"digest\":" },
        { "restore/" D1, "[1]" },
        { "restore/" D1, NULL },
        /* Keys that are not restore requests. */
        { "restores/" D1,
          "{\"digest\":\"" D1 "\",\"path\":\"/a\",\"at\":1}" },
        { "restore/" D1 "1",
          "{\"digest\":\"" D1 "1\",\"path\":\"/a\",\"at\":1}" },
        { "restore/1111",
          "{\"digest\":\"1111\",\"path\":\"/a\",\"at\":1}" },
        { "restore/" DU, "{\"digest\":\"" DU "\",\"path\":\"/a\",\"at\":1}" },
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        at = -1;
        d = objaction_parse_restore(bad[i].key, bad[i].value, &at);
        CU_ASSERT_PTR_NULL(d);
        if (d) {
            fprintf(stderr, "accepted: %s %s\n", bad[i].key,
                    bad[i].value ? bad[i].value : "(null)");
        }
    }
}

static void
test_allow(void)
{
    json_t *allow = json_pack("{ss ss}", D1, "nginx", D2, "sshd");
    json_t *vms = json_pack("[sss]", "vm1", "vm2", "vm3");
    json_t *wanted = json_pack("{s{ss}}", "vm1", "restore/" D3, "{}");

    objaction_allow(allow, vms, wanted);
    CU_ASSERT_EQUAL(json_object_size(wanted), 3);
    static const char *const names[] = { "vm1", "vm2", "vm3" };
    for (size_t i = 0; i < N_ELEMS(names); i++) {
        json_t *v = wanted_value(wanted, names[i], "allow/" D1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                                     v, "digest")), D1);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                                     v, "name")), "nginx");
        CU_ASSERT_EQUAL(json_object_size(v), 2);
        json_decref(v);
        v = wanted_value(wanted, names[i], "allow/" D2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                                     v, "name")), "sshd");
        json_decref(v);
    }
    /* vm1's other record stays. */
    CU_ASSERT_EQUAL(json_object_size(json_object_get(wanted, "vm1")), 3);
    CU_ASSERT_EQUAL(json_object_size(json_object_get(wanted, "vm2")), 2);
    /* Sorted members, compact: the same text on every run. */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               json_object_get(wanted, "vm2"),
                               "allow/" D1)),
                           "{\"digest\":\"" D1 "\",\"name\":\"nginx\"}");
    json_decref(wanted);

    /* No VMs, or an empty allowlist: nothing. */
    wanted = json_object();
    json_t *none = json_array();
    objaction_allow(allow, none, wanted);
    CU_ASSERT_EQUAL(json_object_size(wanted), 0);
    json_t *empty = json_object();
    objaction_allow(empty, vms, wanted);
    CU_ASSERT_EQUAL(json_object_size(wanted), 0);

    json_decref(none);
    json_decref(empty);
    json_decref(wanted);
    json_decref(allow);
    json_decref(vms);
}

static const struct unit_test tests[] = {
    { "parse", test_parse },
    { "ops", test_ops },
};

static const struct unit_test action_tests[] = {
    { "verdicts and notices", test_actions },
    { "restore answers and needs", test_restore },
    { "restore of a notice's new object", test_restore_noticed },
    { "restore candidates", test_restore_candidates },
    { "parse restore requests", test_parse_restore },
    { "allowlist", test_allow },
};

int
unit_register(void)
{
    int error = UNIT_ADD_SUITE("objmap", tests);
    return error ? error : UNIT_ADD_SUITE("objaction", action_tests);
}
