/* Unit tests for chand-host/objmap (parsing object records, and the OVSDB
 * operations that keep Object and Object_Ref in step with them) and
 * chand-host/objaction (the verdicts and notices wanted per VM). */

#include <config.h>

#include <jansson.h>
#include <string.h>

#include "objaction.h"
#include "objmap.h"
#include "ovsdb-replica.h"
#include "unit.h"

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

static const struct unit_test tests[] = {
    { "parse", test_parse },
    { "ops", test_ops },
};

static const struct unit_test action_tests[] = {
    { "verdicts and notices", test_actions },
};

int
unit_register(void)
{
    int error = UNIT_ADD_SUITE("objmap", tests);
    return error ? error : UNIT_ADD_SUITE("objaction", action_tests);
}
