/* Unit tests for lib/ovsdb-msg. */

#include <config.h>
#include "ovsdb-msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* Parses 'text', with ' standing for ", into a new JSON value (any type).
 * Fails the test (and returns JSON null) if it does not parse. */
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

/* Asserts that 'actual' (stolen) equals the JSON 'expected' text. */
static void
check_json_(json_t *actual, const char *expected, int line)
{
    json_t *e = jl(expected);
    bool ok = actual && json_equal(actual, e);
    if (!ok) {
        char *a = actual ? json_dumps(actual, JSON_ENCODE_ANY | JSON_SORT_KEYS)
                         : strdup("(null)");
        char *x = json_dumps(e, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        fprintf(stderr, "line %d:\n  expected %s\n  actual   %s\n", line, x,
                a);
        free(a);
        free(x);
    }
    CU_ASSERT(ok);
    json_decref(actual);
    json_decref(e);
}
#define check_json(ACTUAL, EXPECTED) check_json_(ACTUAL, EXPECTED, __LINE__)

#define UUID1 "550e8400-e29b-41d4-a716-446655440000"
#define UUID2 "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define UUID3 "00000000-0000-0000-0000-000000000003"

/* ---------------------------------------------------------------------- */

static void
test_strerror(void)
{
    for (int i = 0; i <= OVSDB_MSG_N_ERRORS; i++) {
        const char *s = ovsdb_msg_strerror(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT(strlen(s) > 0);
        /* Each real error has its own text. */
        for (int j = 1; j < i && i < OVSDB_MSG_N_ERRORS; j++) {
            CU_ASSERT(strcmp(s, ovsdb_msg_strerror(j)));
        }
    }
    CU_ASSERT_STRING_EQUAL(ovsdb_msg_strerror(-5), "unknown ovsdb-msg error");
    CU_ASSERT_STRING_EQUAL(ovsdb_msg_strerror(9999),
                           "unknown ovsdb-msg error");
}

static void
test_uuid_syntax(void)
{
    static const struct {
        const char *s;
        bool valid;
    } cases[] = {
        { UUID1, true },
        { "550E8400-E29B-41D4-A716-446655440000", true },
        { "00000000-0000-0000-0000-000000000000", true },
        { "", false },
        { "550e8400", false },
        { "550e8400-e29b-41d4-a716-44665544000", false },    /* short */
        { "550e8400-e29b-41d4-a716-4466554400000", false },  /* long */
        { "550e8400-e29b-41d4-a716_446655440000", false },
        { "550e8400e-29b-41d4-a716-446655440000", false },
        { "g50e8400-e29b-41d4-a716-446655440000", false },
        { "550e8400-e29b-41d4-a716-44665544000g", false },
        { " 50e8400-e29b-41d4-a716-446655440000", false },
        { "550e8400-e29b-41d4-a716-446655440000 ", false },
        { "{50e8400-e29b-41d4-a716-446655440000}", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL(ovsdb_uuid_is_valid(cases[i].s), cases[i].valid);
    }

    /* Truncation at every length of a valid UUID is invalid. */
    char buf[OVSDB_UUID_LEN + 1];
    for (size_t n = 0; n < OVSDB_UUID_LEN; n++) {
        memcpy(buf, UUID1, n);
        buf[n] = '\0';
        CU_ASSERT_FALSE(ovsdb_uuid_is_valid(buf));
    }

    static const struct {
        const char *s;
        bool valid;
    } names[] = {
        { "row", true }, { "_x", true }, { "a1_B2", true }, { "A", true },
        { "", false }, { "1abc", false }, { "a-b", false }, { "a b", false },
        { "é", false },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CU_ASSERT_EQUAL(ovsdb_name_is_valid(names[i].s), names[i].valid);
    }
}

/* Sets of strings as arrays; anything else as an empty one. */
static void
test_string_array(void)
{
    json_t *d;

    d = jl("[\"set\", [\"a\", \"b\"]]");
    check_json(ovsdb_datum_string_array(d), "[\"a\", \"b\"]");
    json_decref(d);
    d = jl("\"only\"");
    check_json(ovsdb_datum_string_array(d), "[\"only\"]");
    json_decref(d);
    d = jl("[\"set\", []]");
    check_json(ovsdb_datum_string_array(d), "[]");
    json_decref(d);
    d = jl("[\"set\", [1, 2]]");
    check_json(ovsdb_datum_string_array(d), "[]");
    json_decref(d);
    d = jl("[\"map\", [[\"k\", \"v\"]]]");
    check_json(ovsdb_datum_string_array(d), "[]");
    json_decref(d);
    check_json(ovsdb_datum_string_array(NULL), "[]");
}

/* Each kind of atom in its wire form. */
static void
test_atom_to_json(void)
{
    struct ovsdb_atom a;

    a.type = OVSDB_ATOM_INTEGER;
    a.u.integer = -7;
    check_json(ovsdb_atom_to_json(&a), "-7");
    a.type = OVSDB_ATOM_REAL;
    a.u.real = 1.5;
    check_json(ovsdb_atom_to_json(&a), "1.5");
    a.type = OVSDB_ATOM_BOOLEAN;
    a.u.boolean = true;
    check_json(ovsdb_atom_to_json(&a), "true");
    a.type = OVSDB_ATOM_STRING;
    a.u.string = "s";
    check_json(ovsdb_atom_to_json(&a), "\"s\"");
    a.type = OVSDB_ATOM_UUID;
    a.u.string = UUID1;
    check_json(ovsdb_atom_to_json(&a), "[\"uuid\", \"" UUID1 "\"]");
    a.type = OVSDB_ATOM_NAMED_UUID;
    a.u.string = "row";
    check_json(ovsdb_atom_to_json(&a), "[\"named-uuid\", \"row\"]");
    a.type = OVSDB_ATOM_NONE;
    check_json(ovsdb_atom_to_json(&a), "null");
}

/* Canonical datums: decode, re-encode, compare. */
static void
test_datum_round_trip(void)
{
    static const char *const canonical[] = {
        "0", "-1", "9223372036854775807", "-9223372036854775808",
        "1.5", "-2.25e+100", "true", "false", "''", "'abc'",
        "'\\u00e9\\u4e2d'",
        "['uuid','" UUID1 "']",
        "['set',[]]",
        "['set',[1,2,3]]",
        "['set',['a','b']]",
        "['set',[['uuid','" UUID1 "'],['uuid','" UUID2 "']]]",
        "['set',[true,false]]",
        "['set',[1.5,2.5]]",
        "['map',[]]",
        "['map',[['a','1']]]",
        "['map',[['k1','v1'],['k2','v2']]]",
        "['map',[[1,'one'],[2,'two']]]",
        "['map',[['p',['uuid','" UUID1 "']]]]",
        "['map',[['x',1],['y',1]]]",        /* Equal values are fine. */
    };
    for (size_t i = 0; i < sizeof canonical / sizeof canonical[0]; i++) {
        json_t *json = jl(canonical[i]);
        struct ovsdb_datum d;
        int error = ovsdb_datum_from_json(&d, json, false);
        CU_ASSERT_EQUAL(error, 0);
        if (!error) {
            json_t *out = ovsdb_datum_to_json(&d);
            CU_ASSERT(json_equal(out, json));
            json_decref(out);
            ovsdb_datum_destroy(&d);
        }
        json_decref(json);
    }

    /* Non-canonical forms re-encode canonically. */
    static const struct {
        const char *in, *out;
    } forms[] = {
        { "['set',[1]]", "1" },
        { "['set',['x']]", "'x'" },
        { "['set',[['uuid','" UUID1 "']]]", "['uuid','" UUID1 "']" },
        { "['set',[1,2.5]]", "['set',[1.0,2.5]]" },   /* int -> real */
        { "['map',[['a',1],['b',2.5]]]", "['map',[['a',1.0],['b',2.5]]]" },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        json_t *json = jl(forms[i].in);
        struct ovsdb_datum d;
        CU_ASSERT_EQUAL_FATAL(ovsdb_datum_from_json(&d, json, false), 0);
        check_json(ovsdb_datum_to_json(&d), forms[i].out);
        ovsdb_datum_destroy(&d);
        json_decref(json);
    }

    /* Decoded contents. */
    json_t *json = jl("['map',[['k','v'],['k2',['uuid','" UUID2 "']]]]");
    struct ovsdb_datum d;
    CU_ASSERT_EQUAL(ovsdb_datum_from_json(&d, json, false),
                    OVSDB_MSG_E_MIXED_TYPES);
    json_decref(json);

    json = jl("['map',[['k',7],['j',8]]]");
    CU_ASSERT_EQUAL_FATAL(ovsdb_datum_from_json(&d, json, false), 0);
    json_decref(json);              /* The datum keeps its own reference. */
    CU_ASSERT_TRUE(d.is_map);
    CU_ASSERT_EQUAL(d.n, 2);
    CU_ASSERT_EQUAL(d.keys[0].type, OVSDB_ATOM_STRING);
    CU_ASSERT_STRING_EQUAL(d.keys[0].u.string, "k");
    CU_ASSERT_EQUAL(d.values[1].type, OVSDB_ATOM_INTEGER);
    CU_ASSERT_EQUAL(d.values[1].u.integer, 8);
    ovsdb_datum_destroy(&d);
    ovsdb_datum_destroy(&d);        /* Idempotent. */
    ovsdb_datum_destroy(NULL);

    /* named-uuid round trip when allowed. */
    json = jl("['set',[['named-uuid','row1'],['named-uuid','row2']]]");
    CU_ASSERT_EQUAL_FATAL(ovsdb_datum_from_json(&d, json, true), 0);
    CU_ASSERT_EQUAL(d.keys[0].type, OVSDB_ATOM_NAMED_UUID);
    json_t *out = ovsdb_datum_to_json(&d);
    CU_ASSERT(json_equal(out, json));
    json_decref(out);
    ovsdb_datum_destroy(&d);
    json_decref(json);
}

/* Every malformation has its own error. */
static void
test_datum_reject(void)
{
    static const struct {
        const char *json;
        bool allow_named;
        int error;
    } cases[] = {
        { "null", false, OVSDB_MSG_E_BAD_ATOM },
        { "{}", false, OVSDB_MSG_E_BAD_ATOM },
        { "{'a':1}", false, OVSDB_MSG_E_BAD_ATOM },
        { "[]", false, OVSDB_MSG_E_BAD_ATOM },
        { "[1,2]", false, OVSDB_MSG_E_BAD_ATOM },
        { "[['uuid','" UUID1 "']]", false, OVSDB_MSG_E_BAD_ATOM },
        { "['sets',[]]", false, OVSDB_MSG_E_BAD_TAG },
        { "['SET',[]]", false, OVSDB_MSG_E_BAD_TAG },
        { "['uuid2','" UUID1 "']", false, OVSDB_MSG_E_BAD_TAG },
        { "['set',[['set',[]]]]", false, OVSDB_MSG_E_BAD_TAG },
        { "['set',[['map',[]]]]", false, OVSDB_MSG_E_BAD_TAG },
        { "['map',[['a',['set',[]]]]]", false, OVSDB_MSG_E_BAD_TAG },
        { "['set']", false, OVSDB_MSG_E_BAD_ARITY },
        { "['set',[],[]]", false, OVSDB_MSG_E_BAD_ARITY },
        { "['map']", false, OVSDB_MSG_E_BAD_ARITY },
        { "['uuid']", false, OVSDB_MSG_E_BAD_ARITY },
        { "['uuid','" UUID1 "','x']", false, OVSDB_MSG_E_BAD_ARITY },
        { "['named-uuid']", true, OVSDB_MSG_E_BAD_ARITY },
        { "['set',{}]", false, OVSDB_MSG_E_NOT_ARRAY },
        { "['set',1]", false, OVSDB_MSG_E_NOT_ARRAY },
        { "['set','a']", false, OVSDB_MSG_E_NOT_ARRAY },
        { "['map',{'a':'b'}]", false, OVSDB_MSG_E_NOT_ARRAY },
        { "['map',null]", false, OVSDB_MSG_E_NOT_ARRAY },
        { "['map',['a']]", false, OVSDB_MSG_E_BAD_PAIR },
        { "['map',[['a']]]", false, OVSDB_MSG_E_BAD_PAIR },
        { "['map',[['a','b','c']]]", false, OVSDB_MSG_E_BAD_PAIR },
        { "['map',[{'a':'b'}]]", false, OVSDB_MSG_E_BAD_PAIR },
        { "['uuid','not-a-uuid']", false, OVSDB_MSG_E_BAD_UUID },
        { "['uuid',1]", false, OVSDB_MSG_E_BAD_UUID },
        { "['uuid','" UUID1 "x']", false, OVSDB_MSG_E_BAD_UUID },
        { "['uuid','']", false, OVSDB_MSG_E_BAD_UUID },
        { "['set',[['uuid','zz']]]", false, OVSDB_MSG_E_BAD_UUID },
        { "['named-uuid','1x']", true, OVSDB_MSG_E_BAD_NAME },
        { "['named-uuid','']", true, OVSDB_MSG_E_BAD_NAME },
        { "['named-uuid',5]", true, OVSDB_MSG_E_BAD_NAME },
        { "['named-uuid','row']", false, OVSDB_MSG_E_NAMED_UUID },
        { "['set',[['named-uuid','row']]]", false, OVSDB_MSG_E_NAMED_UUID },
        { "['set',[1,'a']]", false, OVSDB_MSG_E_MIXED_TYPES },
        { "['set',[true,1]]", false, OVSDB_MSG_E_MIXED_TYPES },
        { "['set',['a',['uuid','" UUID1 "']]]", false,
          OVSDB_MSG_E_MIXED_TYPES },
        { "['set',[['uuid','" UUID1 "'],['named-uuid','x']]]", true,
          OVSDB_MSG_E_MIXED_TYPES },
        { "['map',[['a','1'],[2,'2']]]", false, OVSDB_MSG_E_MIXED_TYPES },
        { "['map',[['a','1'],['b',2]]]", false, OVSDB_MSG_E_MIXED_TYPES },
        { "['set',[1,1]]", false, OVSDB_MSG_E_DUP_ELEMENT },
        { "['set',[1,2,3,2]]", false, OVSDB_MSG_E_DUP_ELEMENT },
        { "['set',['a','b','a']]", false, OVSDB_MSG_E_DUP_ELEMENT },
        { "['set',[1,1.0]]", false, OVSDB_MSG_E_DUP_ELEMENT },
        { "['set',[true,true]]", false, OVSDB_MSG_E_DUP_ELEMENT },
        { "['set',[['uuid','" UUID1 "'],['uuid','"
          "550E8400-E29B-41D4-A716-446655440000']]]", false,
          OVSDB_MSG_E_DUP_ELEMENT },
        { "['map',[['a','1'],['a','2']]]", false, OVSDB_MSG_E_DUP_KEY },
        { "['map',[['a','1'],['b','1'],['a','1']]]", false,
          OVSDB_MSG_E_DUP_KEY },
        { "['map',[[1,'x'],[1,'y']]]", false, OVSDB_MSG_E_DUP_KEY },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *json = jl(cases[i].json);
        struct ovsdb_datum d;
        int error = ovsdb_datum_from_json(&d, json, cases[i].allow_named);
        if (error != cases[i].error) {
            fprintf(stderr, "%s: got %d (%s), want %d (%s)\n", cases[i].json,
                    error, ovsdb_msg_strerror(error), cases[i].error,
                    ovsdb_msg_strerror(cases[i].error));
        }
        CU_ASSERT_EQUAL(error, cases[i].error);
        CU_ASSERT_EQUAL(ovsdb_datum_check(json, NULL, cases[i].allow_named),
                        cases[i].error);
        if (!error) {
            ovsdb_datum_destroy(&d);
        }
        json_decref(json);
    }

    /* A string with an embedded NUL (only possible through the API or with
     * JSON_ALLOW_NUL) is rejected, as an atom and inside a uuid. */
    json_t *nul = json_stringn("a\0b", 3);
    CU_ASSERT_EQUAL(ovsdb_datum_check(nul, NULL, false),
                    OVSDB_MSG_E_BAD_STRING);
    json_t *set = json_pack("[s[O]]", "set", nul);
    CU_ASSERT_EQUAL(ovsdb_datum_check(set, NULL, false),
                    OVSDB_MSG_E_BAD_STRING);
    json_decref(set);
    json_decref(nul);
    json_t *uuid = json_pack("[so]", "uuid",
                             json_stringn(UUID1 "\0", OVSDB_UUID_LEN + 1));
    CU_ASSERT_EQUAL(ovsdb_datum_check(uuid, NULL, false),
                    OVSDB_MSG_E_BAD_UUID);
    json_decref(uuid);
    /* A tag with a NUL is no tag, even if it starts like one. */
    json_t *tagged = json_pack("[o[]]", json_stringn("set\0x", 5));
    CU_ASSERT_EQUAL(ovsdb_datum_check(tagged, NULL, false),
                    OVSDB_MSG_E_BAD_TAG);
    json_decref(tagged);
    tagged = json_pack("[os]", json_stringn("uuid\0", 5), UUID1);
    CU_ASSERT_EQUAL(ovsdb_datum_check(tagged, NULL, false),
                    OVSDB_MSG_E_BAD_TAG);
    json_decref(tagged);
}

static void
test_datum_types(void)
{
    static const struct ovsdb_type t_string = OVSDB_TYPE_SCALAR(STRING);
    static const struct ovsdb_type t_opt_int = OVSDB_TYPE_OPTIONAL(INTEGER);
    static const struct ovsdb_type t_real = OVSDB_TYPE_SCALAR(REAL);
    static const struct ovsdb_type t_uuids = OVSDB_TYPE_SET(UUID);
    static const struct ovsdb_type t_smap = OVSDB_TYPE_MAP(STRING, STRING);
    static const struct ovsdb_type t_any = OVSDB_TYPE_ANY;
    static const struct ovsdb_type t_set12 = { OVSDB_ATOM_INTEGER,
                                               OVSDB_ATOM_NONE, 1, 2 };
    static const struct {
        const char *json;
        const struct ovsdb_type *type;
        bool allow_named;
        int error;
    } cases[] = {
        { "'eth0'", &t_string, false, 0 },
        { "['set',['eth0']]", &t_string, false, 0 },
        { "1", &t_string, false, OVSDB_MSG_E_WRONG_TYPE },
        { "['set',[]]", &t_string, false, OVSDB_MSG_E_WRONG_SIZE },
        { "['set',['a','b']]", &t_string, false, OVSDB_MSG_E_WRONG_SIZE },
        { "['map',[['a','b']]]", &t_string, false, OVSDB_MSG_E_WRONG_TYPE },
        { "['map',[]]", &t_string, false, OVSDB_MSG_E_WRONG_TYPE },
        { "5", &t_opt_int, false, 0 },
        { "['set',[]]", &t_opt_int, false, 0 },
        { "['set',[1,2]]", &t_opt_int, false, OVSDB_MSG_E_WRONG_SIZE },
        { "1.5", &t_opt_int, false, OVSDB_MSG_E_WRONG_TYPE },
        { "'5'", &t_opt_int, false, OVSDB_MSG_E_WRONG_TYPE },
        { "true", &t_opt_int, false, OVSDB_MSG_E_WRONG_TYPE },
        { "1.5", &t_real, false, 0 },
        { "2", &t_real, false, 0 },     /* An integral real. */
        { "'2'", &t_real, false, OVSDB_MSG_E_WRONG_TYPE },
        { "['set',[]]", &t_uuids, false, 0 },
        { "['uuid','" UUID1 "']", &t_uuids, false, 0 },
        { "['set',[['uuid','" UUID1 "'],['uuid','" UUID2 "']]]", &t_uuids,
          false, 0 },
        { "['named-uuid','x']", &t_uuids, true, 0 },
        { "['named-uuid','x']", &t_uuids, false, OVSDB_MSG_E_NAMED_UUID },
        { "'" UUID1 "'", &t_uuids, false, OVSDB_MSG_E_WRONG_TYPE },
        { "['map',[]]", &t_smap, false, 0 },
        { "['set',[]]", &t_smap, false, 0 },
        { "['map',[['a','b']]]", &t_smap, false, 0 },
        { "['map',[['a',1]]]", &t_smap, false, OVSDB_MSG_E_WRONG_TYPE },
        { "['map',[[1,'a']]]", &t_smap, false, OVSDB_MSG_E_WRONG_TYPE },
        { "['set',['a']]", &t_smap, false, OVSDB_MSG_E_WRONG_TYPE },
        { "'a'", &t_smap, false, OVSDB_MSG_E_WRONG_TYPE },
        { "['map',[['a',1]]]", &t_any, false, 0 },
        { "['map',[['a',1]]]", NULL, false, 0 },
        { "['map',[['a',1],['a',2]]]", NULL, false, OVSDB_MSG_E_DUP_KEY },
        { "['set',[]]", &t_set12, false, OVSDB_MSG_E_WRONG_SIZE },
        { "['set',[1,2]]", &t_set12, false, 0 },
        { "['set',[1,2,3]]", &t_set12, false, OVSDB_MSG_E_WRONG_SIZE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *json = jl(cases[i].json);
        int error = ovsdb_datum_check(json, cases[i].type,
                                      cases[i].allow_named);
        if (error != cases[i].error) {
            fprintf(stderr, "case %zu %s: got %s, want %s\n", i,
                    cases[i].json, ovsdb_msg_strerror(error),
                    ovsdb_msg_strerror(cases[i].error));
        }
        CU_ASSERT_EQUAL(error, cases[i].error);
        json_decref(json);
    }

    CU_ASSERT_STRING_EQUAL(ovsdb_atom_type_name(OVSDB_ATOM_INTEGER),
                           "integer");
    CU_ASSERT_STRING_EQUAL(ovsdb_atom_type_name(OVSDB_ATOM_NAMED_UUID),
                           "named-uuid");
    CU_ASSERT_STRING_EQUAL(ovsdb_atom_type_name(OVSDB_ATOM_NONE), "none");
}

static void
test_getters(void)
{
    json_t *json;
    int64_t i64 = 42;
    bool present = true, b = false;
    const char *s = "unchanged";

    /* Integers. */
    json = jl("7");
    CU_ASSERT_EQUAL(ovsdb_datum_get_integer(json, &i64, &present), 0);
    CU_ASSERT_TRUE(present);
    CU_ASSERT_EQUAL(i64, 7);
    json_decref(json);
    json = jl("['set',[-3]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_integer(json, &i64, &present), 0);
    CU_ASSERT_EQUAL(i64, -3);
    json_decref(json);
    json = jl("['set',[]]");
    i64 = 99;
    CU_ASSERT_EQUAL(ovsdb_datum_get_integer(json, &i64, &present), 0);
    CU_ASSERT_FALSE(present);
    CU_ASSERT_EQUAL(i64, 99);       /* Untouched. */
    json_decref(json);
    json = jl("['set',[1,2]]");
    present = true;
    CU_ASSERT_EQUAL(ovsdb_datum_get_integer(json, &i64, &present),
                    OVSDB_MSG_E_WRONG_SIZE);
    json_decref(json);
    json = jl("'1'");
    CU_ASSERT_EQUAL(ovsdb_datum_get_integer(json, &i64, &present),
                    OVSDB_MSG_E_WRONG_TYPE);
    json_decref(json);
    json = jl("['map',[[1,2]]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_integer(json, &i64, &present),
                    OVSDB_MSG_E_WRONG_TYPE);
    json_decref(json);
    json = jl("['set',1]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_integer(json, &i64, &present),
                    OVSDB_MSG_E_NOT_ARRAY);
    json_decref(json);

    /* Booleans. */
    json = jl("true");
    CU_ASSERT_EQUAL(ovsdb_datum_get_boolean(json, &b, &present), 0);
    CU_ASSERT_TRUE(b && present);
    json_decref(json);
    json = jl("['set',[]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_boolean(json, &b, &present), 0);
    CU_ASSERT_FALSE(present);
    json_decref(json);
    json = jl("0");
    CU_ASSERT_EQUAL(ovsdb_datum_get_boolean(json, &b, &present),
                    OVSDB_MSG_E_WRONG_TYPE);
    json_decref(json);

    /* Strings. */
    json = jl("'br-int'");
    CU_ASSERT_EQUAL(ovsdb_datum_get_string(json, &s), 0);
    CU_ASSERT_STRING_EQUAL(s, "br-int");
    json_decref(json);
    json = jl("['set',[]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_string(json, &s), 0);
    CU_ASSERT_PTR_NULL(s);
    json_decref(json);
    s = "unchanged";
    json = jl("['uuid','" UUID1 "']");
    CU_ASSERT_EQUAL(ovsdb_datum_get_string(json, &s),
                    OVSDB_MSG_E_WRONG_TYPE);
    CU_ASSERT_STRING_EQUAL(s, "unchanged");
    json_decref(json);

    /* UUIDs. */
    json = jl("['uuid','" UUID1 "']");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid(json, &s), 0);
    CU_ASSERT_STRING_EQUAL(s, UUID1);
    json_decref(json);
    json = jl("['set',[['uuid','" UUID2 "']]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid(json, &s), 0);
    CU_ASSERT_STRING_EQUAL(s, UUID2);
    json_decref(json);
    json = jl("['set',[]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid(json, &s), 0);
    CU_ASSERT_PTR_NULL(s);
    json_decref(json);
    json = jl("'" UUID1 "'");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid(json, &s), OVSDB_MSG_E_WRONG_TYPE);
    json_decref(json);
    json = jl("['named-uuid','x']");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid(json, &s), OVSDB_MSG_E_NAMED_UUID);
    json_decref(json);

    /* UUID sets. */
    json_t *uuids = NULL;
    json = jl("['set',[['uuid','" UUID1 "'],['uuid','" UUID2 "']]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid_set(json, &uuids), 0);
    check_json(uuids, "['" UUID1 "','" UUID2 "']");
    json_decref(json);
    json = jl("['uuid','" UUID3 "']");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid_set(json, &uuids), 0);
    check_json(uuids, "['" UUID3 "']");
    json_decref(json);
    json = jl("['set',[]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid_set(json, &uuids), 0);
    check_json(uuids, "[]");
    json_decref(json);
    uuids = NULL;
    json = jl("['set',['a']]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid_set(json, &uuids),
                    OVSDB_MSG_E_WRONG_TYPE);
    CU_ASSERT_PTR_NULL(uuids);
    json_decref(json);
    json = jl("['set',[['uuid','" UUID1 "'],['uuid','" UUID1 "']]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_uuid_set(json, &uuids),
                    OVSDB_MSG_E_DUP_ELEMENT);
    json_decref(json);

    /* String maps. */
    json_t *map = NULL;
    json = jl("['map',[['chand-id','7'],['chand-vm','vm1']]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_string_map(json, &map), 0);
    check_json(map, "{'chand-id':'7','chand-vm':'vm1'}");
    json_decref(json);
    json = jl("['map',[]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_string_map(json, &map), 0);
    check_json(map, "{}");
    json_decref(json);
    json = jl("['set',[]]");
    CU_ASSERT_EQUAL(ovsdb_datum_get_string_map(json, &map), 0);
    check_json(map, "{}");
    json_decref(json);
    map = NULL;
    static const struct {
        const char *json;
        int error;
    } bad_maps[] = {
        { "['map',[['a','1'],['a','2']]]", OVSDB_MSG_E_DUP_KEY },
        { "['map',[['a',1]]]", OVSDB_MSG_E_WRONG_TYPE },
        { "['map',[[1,'a']]]", OVSDB_MSG_E_WRONG_TYPE },
        { "['set',['a']]", OVSDB_MSG_E_WRONG_TYPE },
        { "'a'", OVSDB_MSG_E_WRONG_TYPE },
        { "{'a':'b'}", OVSDB_MSG_E_BAD_ATOM },
        { "['map',{'a':'b'}]", OVSDB_MSG_E_NOT_ARRAY },
        { "['map',[['a','b','c']]]", OVSDB_MSG_E_BAD_PAIR },
        { "['mapp',[]]", OVSDB_MSG_E_BAD_TAG },
    };
    for (size_t i = 0; i < sizeof bad_maps / sizeof bad_maps[0]; i++) {
        json = jl(bad_maps[i].json);
        CU_ASSERT_EQUAL(ovsdb_datum_get_string_map(json, &map),
                        bad_maps[i].error);
        CU_ASSERT_PTR_NULL(map);
        json_decref(json);
    }
}

static void
test_builders(void)
{
    check_json(ovsdb_datum_uuid(UUID1), "['uuid','" UUID1 "']");
    check_json(ovsdb_datum_named_uuid("new_iface"),
               "['named-uuid','new_iface']");
    check_json(ovsdb_datum_set(jl("[1,2]")), "['set',[1,2]]");
    check_json(ovsdb_datum_set(json_array()), "['set',[]]");

    json_t *uuids = jl("['" UUID1 "','" UUID2 "']");
    check_json(ovsdb_datum_uuid_set(uuids),
               "['set',[['uuid','" UUID1 "'],['uuid','" UUID2 "']]]");
    json_decref(uuids);
    uuids = jl("['" UUID1 "',5]");
    CU_ASSERT_PTR_NULL(ovsdb_datum_uuid_set(uuids));
    json_decref(uuids);

    static const char *const strs[] = { "a", "b" };
    check_json(ovsdb_datum_string_set(strs, 2), "['set',['a','b']]");
    check_json(ovsdb_datum_string_set(NULL, 0), "['set',[]]");

    /* String maps come out sorted and decode back to the same object. */
    json_t *obj = jl("{'z':'26','a':'1','m':''}");
    json_t *datum = ovsdb_datum_string_map(obj);
    CU_ASSERT_PTR_NOT_NULL_FATAL(datum);
    json_t *expect = jl("['map',[['a','1'],['m',''],['z','26']]]");
    CU_ASSERT(json_equal(datum, expect));
    json_decref(expect);
    json_t *back = NULL;
    CU_ASSERT_EQUAL(ovsdb_datum_get_string_map(datum, &back), 0);
    CU_ASSERT(json_equal(back, obj));
    json_decref(back);
    json_decref(datum);
    json_decref(obj);

    obj = jl("{}");
    check_json(ovsdb_datum_string_map(obj), "['map',[]]");
    json_decref(obj);
    obj = jl("{'a':1}");
    CU_ASSERT_PTR_NULL(ovsdb_datum_string_map(obj));
    json_decref(obj);
    obj = jl("['a']");
    CU_ASSERT_PTR_NULL(ovsdb_datum_string_map(obj));
    json_decref(obj);
}

static void
test_requests(void)
{
    check_json(ovsdb_where_uuid(UUID1),
               "[['_uuid','==',['uuid','" UUID1 "']]]");
    check_json(ovsdb_condition("name", "==", json_string("eth0")),
               "['name','==','eth0']");

    json_t *m = jl("{'chand-status':'ready'}");
    check_json(ovsdb_mutation("external_ids", "insert",
                              ovsdb_datum_string_map(m)),
               "['external_ids','insert',['map',[['chand-status',"
               "'ready']]]]");
    json_decref(m);
    static const char *const keys[] = { "chand-status" };
    check_json(ovsdb_mutation("external_ids", "delete",
                              ovsdb_datum_string_set(keys, 1)),
               "['external_ids','delete',['set',['chand-status']]]");

    check_json(ovsdb_op_insert("Interface", jl("{'name':'vif1'}"), "if1"),
               "{'op':'insert','table':'Interface','row':{'name':'vif1'},"
               "'uuid-name':'if1'}");
    check_json(ovsdb_op_insert("Interface", json_object(), NULL),
               "{'op':'insert','table':'Interface','row':{}}");
    check_json(ovsdb_op_select("Bridge", json_array(), NULL),
               "{'op':'select','table':'Bridge','where':[]}");
    check_json(ovsdb_op_select("Bridge", ovsdb_where_uuid(UUID2),
                               jl("['name']")),
               "{'op':'select','table':'Bridge','where':[['_uuid','==',"
               "['uuid','" UUID2 "']]],'columns':['name']}");
    check_json(ovsdb_op_update("Interface", ovsdb_where_uuid(UUID1),
                               jl("{'ofport_request':5}")),
               "{'op':'update','table':'Interface','where':[['_uuid','==',"
               "['uuid','" UUID1 "']]],'row':{'ofport_request':5}}");
    check_json(ovsdb_op_delete("Port", ovsdb_where_uuid(UUID3)),
               "{'op':'delete','table':'Port','where':[['_uuid','==',"
               "['uuid','" UUID3 "']]]}");
    m = jl("{'k':'v'}");
    json_t *muts = json_array();
    json_array_append_new(muts, ovsdb_mutation("external_ids", "insert",
                                               ovsdb_datum_string_map(m)));
    json_decref(m);
    check_json(ovsdb_op_mutate("Interface", ovsdb_where_uuid(UUID1), muts),
               "{'op':'mutate','table':'Interface','where':[['_uuid','==',"
               "['uuid','" UUID1 "']]],'mutations':[['external_ids',"
               "'insert',['map',[['k','v']]]]]}");
    check_json(ovsdb_op_wait("Bridge", jl("[['name','==','br0']]"),
                             jl("['name']"), "==", jl("[{'name':'br0'}]"),
                             0),
               "{'op':'wait','table':'Bridge','where':[['name','==','br0']],"
               "'columns':['name'],'until':'==','rows':[{'name':'br0'}],"
               "'timeout':0}");
    check_json(ovsdb_op_wait("Bridge", json_array(), json_array(), "!=",
                             json_array(), -1),
               "{'op':'wait','table':'Bridge','where':[],'columns':[],"
               "'until':'!=','rows':[]}");
    check_json(ovsdb_op_comment("chand-host: provisioning"),
               "{'op':'comment','comment':'chand-host: provisioning'}");

    json_t *ops = json_array();
    json_array_append_new(ops, ovsdb_op_comment("c"));
    json_array_append_new(ops, ovsdb_op_delete("T", json_array()));
    check_json(ovsdb_msg_transact_params("Open_vSwitch", ops),
               "['Open_vSwitch',{'op':'comment','comment':'c'},"
               "{'op':'delete','table':'T','where':[]}]");
    check_json(ovsdb_msg_transact_params("Chan", json_array()), "['Chan']");

    json_t *reqs = json_object();
    static const char *const icols[] = { "name", "external_ids", "ofport" };
    static const char *const bcols[] = { "name", "ports" };
    CU_ASSERT_EQUAL(ovsdb_msg_monitor_requests_add(reqs, "Interface", icols,
                                                   3), 0);
    CU_ASSERT_EQUAL(ovsdb_msg_monitor_requests_add(reqs, "Bridge", bcols, 2),
                    0);
    CU_ASSERT_EQUAL(ovsdb_msg_monitor_requests_add(reqs, "Port", NULL, 0),
                    0);
    json_t *notobj = json_array();
    CU_ASSERT_EQUAL(ovsdb_msg_monitor_requests_add(notobj, "X", NULL, 0),
                    OVSDB_MSG_E_NOT_OBJECT);
    json_decref(notobj);
    check_json(ovsdb_msg_monitor_params("Open_vSwitch", json_integer(3),
                                        reqs),
               "['Open_vSwitch',3,{'Interface':{'columns':['name',"
               "'external_ids','ofport']},'Bridge':{'columns':['name',"
               "'ports']},'Port':{}}]");
    check_json(ovsdb_msg_monitor_params("Chan", json_null(), json_object()),
               "['Chan',null,{}]");
    check_json(ovsdb_msg_monitor_cancel_params(json_integer(3)), "[3]");
    check_json(ovsdb_msg_get_schema_params("Chan"), "['Chan']");
    check_json(ovsdb_msg_list_dbs_params(), "[]");
}

/* ---------------------------------------------------------------------- */

struct update_log {
    int n;
    char text[4096];
};

static void
log_row(const char *table, const char *uuid, const json_t *old,
        const json_t *new, void *log_)
{
    struct update_log *log = log_;
    size_t len = strlen(log->text);
    char *o = old ? json_dumps(old, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    char *n = new ? json_dumps(new, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    snprintf(log->text + len, sizeof log->text - len,
             "%s %.8s old=%s new=%s\n", table, uuid, o ? o : "-",
             n ? n : "-");
    free(o);
    free(n);
    log->n++;
}

static void
test_parse_updates(void)
{
    struct update_log log = { 0, "" };
    json_t *u = jl("{'Interface':{"
                   "'" UUID1 "':{'new':{'name':'a','ofport':['set',[]]}}},"
                   "'Bridge':{"
                   "'" UUID2 "':{'old':{'name':'x'},'new':{'name':'y'}},"
                   "'" UUID3 "':{'old':{'name':'z'}}}}");
    CU_ASSERT_EQUAL(ovsdb_msg_parse_table_updates(u, log_row, &log), 0);
    CU_ASSERT_EQUAL(log.n, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(log.text,
        "Interface 550e8400 old=- new={\"name\":\"a\",\"ofport\":"
        "[\"set\",[]]}\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log.text,
        "Bridge 6ba7b810 old={\"name\":\"x\"} new={\"name\":\"y\"}\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log.text,
        "Bridge 00000000 old={\"name\":\"z\"} new=-\n"));
    json_decref(u);

    /* Empty updates are fine. */
    log.n = 0;
    u = jl("{}");
    CU_ASSERT_EQUAL(ovsdb_msg_parse_table_updates(u, log_row, &log), 0);
    json_decref(u);
    u = jl("{'T':{}}");
    CU_ASSERT_EQUAL(ovsdb_msg_parse_table_updates(u, log_row, &log), 0);
    json_decref(u);
    CU_ASSERT_EQUAL(log.n, 0);

    /* Malformed: the callback is never called, even for the good rows
     * before the bad one. */
    static const struct {
        const char *json;
        int error;
    } bad[] = {
        { "[]", OVSDB_MSG_E_NOT_OBJECT },
        { "null", OVSDB_MSG_E_NOT_OBJECT },
        { "'x'", OVSDB_MSG_E_NOT_OBJECT },
        { "{'T':[]}", OVSDB_MSG_E_NOT_OBJECT },
        { "{'T':{'" UUID1 "':{'new':{}}},'U':5}", OVSDB_MSG_E_NOT_OBJECT },
        { "{'T':{'" UUID1 "':{'new':{}},'not-a-uuid':{'new':{}}}}",
          OVSDB_MSG_E_BAD_UUID },
        { "{'T':{'':{'new':{}}}}", OVSDB_MSG_E_BAD_UUID },
        { "{'T':{'" UUID1 "x':{'new':{}}}}", OVSDB_MSG_E_BAD_UUID },
        { "{'T':{'" UUID1 "':[]}}", OVSDB_MSG_E_NOT_OBJECT },
        { "{'T':{'" UUID1 "':null}}", OVSDB_MSG_E_NOT_OBJECT },
        { "{'T':{'" UUID1 "':{}}}", OVSDB_MSG_E_EMPTY_UPDATE },
        { "{'T':{'" UUID1 "':{'old':{},'new':{},'x':{}}}}",
          OVSDB_MSG_E_BAD_MEMBER },
        { "{'T':{'" UUID1 "':{'new':{},'initial':{}}}}",
          OVSDB_MSG_E_BAD_MEMBER },
        { "{'T':{'" UUID1 "':{'new':[]}}}", OVSDB_MSG_E_NOT_OBJECT },
        { "{'T':{'" UUID1 "':{'old':'x'}}}", OVSDB_MSG_E_NOT_OBJECT },
        { "{'T':{'" UUID1 "':{'new':null}}}", OVSDB_MSG_E_NOT_OBJECT },
        { "{'T':{'" UUID1 "':{'new':{'c':null}}}}", OVSDB_MSG_E_BAD_ATOM },
        { "{'T':{'" UUID1 "':{'new':{'c':['uuid','x']}}}}",
          OVSDB_MSG_E_BAD_UUID },
        { "{'T':{'" UUID1 "':{'new':{'c':['named-uuid','x']}}}}",
          OVSDB_MSG_E_NAMED_UUID },
        { "{'T':{'" UUID1 "':{'old':{'c':['map',[['a',1],['a',2]]]}}}}",
          OVSDB_MSG_E_DUP_KEY },
        { "{'T':{'" UUID1 "':{'new':{'c':['set',[1,'a']]}}}}",
          OVSDB_MSG_E_MIXED_TYPES },
        { "{'T':{'" UUID1 "':{'new':{'c':['foo',1]}}}}",
          OVSDB_MSG_E_BAD_TAG },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        log.n = 0;
        u = jl(bad[i].json);
        int error = ovsdb_msg_parse_table_updates(u, log_row, &log);
        if (error != bad[i].error) {
            fprintf(stderr, "%s: got %s\n", bad[i].json,
                    ovsdb_msg_strerror(error));
        }
        CU_ASSERT_EQUAL(error, bad[i].error);
        CU_ASSERT_EQUAL(log.n, 0);
        json_decref(u);
    }
}

static void
test_update_params(void)
{
    const json_t *id = NULL, *updates = NULL;
    json_t *p = jl("[7,{'T':{}}]");
    CU_ASSERT_EQUAL(ovsdb_msg_parse_update_params(p, &id, &updates), 0);
    CU_ASSERT_EQUAL(json_integer_value(id), 7);
    CU_ASSERT_TRUE(json_is_object(updates));
    json_decref(p);

    static const char *const bad[] = {
        "[]", "[1]", "[1,{},2]", "{}", "null", "'update'",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = jl(bad[i]);
        CU_ASSERT_EQUAL(ovsdb_msg_parse_update_params(p, &id, &updates),
                        OVSDB_MSG_E_BAD_PARAMS);
        json_decref(p);
    }
    CU_ASSERT_EQUAL(ovsdb_msg_parse_update_params(NULL, &id, &updates),
                    OVSDB_MSG_E_BAD_PARAMS);
}

static void
test_transact_reply(void)
{
    json_t *uuids = NULL;
    char *error = NULL;
    json_t *r;

    /* Success, with inserts at two positions. */
    r = jl("[{'uuid':['uuid','" UUID1 "']},{},{'count':1},"
           "{'uuid':['uuid','" UUID2 "']},{'rows':[]}]");
    CU_ASSERT_EQUAL(ovsdb_msg_parse_transact_reply(r, 5, &uuids, &error), 0);
    CU_ASSERT_PTR_NULL(error);
    check_json(uuids, "['" UUID1 "',null,null,'" UUID2 "',null]");
    json_decref(r);

    /* No operations at all. */
    r = jl("[]");
    CU_ASSERT_EQUAL(ovsdb_msg_parse_transact_reply(r, 0, &uuids, &error), 0);
    check_json(uuids, "[]");
    json_decref(r);

    /* Outputs are optional. */
    r = jl("[{}]");
    CU_ASSERT_EQUAL(ovsdb_msg_parse_transact_reply(r, 1, NULL, NULL), 0);
    json_decref(r);

    static const struct {
        const char *json;
        size_t n_ops;
        int error;
        const char *msg;
    } cases[] = {
        /* Server-reported errors at every position. */
        { "[{'error':'constraint violation','details':'dup name'},null,null]",
          3, OVSDB_MSG_E_TXN_ERROR,
          "constraint violation: dup name (operation 0)" },
        { "[{},{'error':'referential integrity violation'},null]",
          3, OVSDB_MSG_E_TXN_ERROR,
          "referential integrity violation (operation 1)" },
        { "[{},{},{'error':'timed out','details':''}]", 3,
          OVSDB_MSG_E_TXN_ERROR, "timed out (operation 2)" },
        { "[{},{},{'error':'aborted','details':'x','syntax':'y'}]", 3,
          OVSDB_MSG_E_TXN_ERROR, "aborted: x (operation 2)" },
        /* Commit error: one extra element. */
        { "[{},{},{'error':'constraint violation','details':'c'}]", 2,
          OVSDB_MSG_E_TXN_ERROR, "constraint violation: c (commit)" },
        /* Error with an extra null or an extra error after it. */
        { "[{'error':'e'},null]", 1, OVSDB_MSG_E_RESULT_COUNT, NULL },
        { "[{'error':'e'},{'error':'f'}]", 1, OVSDB_MSG_E_RESULT_COUNT,
          NULL },
        /* Counts. */
        { "[{}]", 2, OVSDB_MSG_E_RESULT_COUNT, "1 results for 2 operations" },
        { "[]", 1, OVSDB_MSG_E_RESULT_COUNT, NULL },
        { "[{},{},{}]", 1, OVSDB_MSG_E_RESULT_COUNT, NULL },
        { "[{},{}]", 1, OVSDB_MSG_E_RESULT_COUNT, NULL },  /* Extra ok. */
        { "[{},null]", 1, OVSDB_MSG_E_RESULT_COUNT, NULL },
        /* Malformed elements. */
        { "{}", 0, OVSDB_MSG_E_BAD_RESULT, "result is not an array" },
        { "null", 0, OVSDB_MSG_E_BAD_RESULT, NULL },
        { "[1]", 1, OVSDB_MSG_E_BAD_RESULT, NULL },
        { "[null]", 1, OVSDB_MSG_E_BAD_RESULT, NULL },
        { "[{},'x']", 2, OVSDB_MSG_E_BAD_RESULT, NULL },
        { "[{'error':'e'},{}]", 2, OVSDB_MSG_E_BAD_RESULT,
          "result 1 follows an error" },
        { "[{'error':'e'},null,{}]", 3, OVSDB_MSG_E_BAD_RESULT, NULL },
        { "[{'error':5}]", 1, OVSDB_MSG_E_BAD_RESULT, NULL },
        { "[{'error':null}]", 1, OVSDB_MSG_E_BAD_RESULT, NULL },
        { "[{'error':'e','details':7}]", 1, OVSDB_MSG_E_BAD_RESULT, NULL },
        { "[{'uuid':'" UUID1 "'}]", 1, OVSDB_MSG_E_BAD_UUID, NULL },
        { "[{'uuid':['uuid','zz']}]", 1, OVSDB_MSG_E_BAD_UUID, NULL },
        { "[{'uuid':['set',[]]}]", 1, OVSDB_MSG_E_BAD_UUID, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = jl(cases[i].json);
        uuids = json_true();    /* Must be reset to NULL. */
        error = NULL;
        int e = ovsdb_msg_parse_transact_reply(r, cases[i].n_ops, &uuids,
                                               &error);
        if (e != cases[i].error) {
            fprintf(stderr, "%s/%zu: got %s (%s)\n", cases[i].json,
                    cases[i].n_ops, ovsdb_msg_strerror(e),
                    error ? error : "");
        }
        CU_ASSERT_EQUAL(e, cases[i].error);
        CU_ASSERT_PTR_NULL(uuids);
        CU_ASSERT_PTR_NOT_NULL(error);
        if (cases[i].msg && error) {
            CU_ASSERT_STRING_EQUAL(error, cases[i].msg);
        }
        free(error);
        /* Same verdict with no outputs. */
        CU_ASSERT_EQUAL(ovsdb_msg_parse_transact_reply(r, cases[i].n_ops,
                                                       NULL, NULL),
                        cases[i].error);
        json_decref(r);
    }
}

static void
test_schema(void)
{
    json_t *s = jl("{'name':'Chan','version':'1.0.0','tables':{"
                   "'Record':{'columns':{'key':{'type':'string'}}},"
                   "'Empty':{'columns':{}}}}");
    CU_ASSERT_TRUE(ovsdb_msg_schema_has_column(s, "Record", NULL));
    CU_ASSERT_TRUE(ovsdb_msg_schema_has_column(s, "Record", "key"));
    CU_ASSERT_TRUE(ovsdb_msg_schema_has_column(s, "Record", "_uuid"));
    CU_ASSERT_TRUE(ovsdb_msg_schema_has_column(s, "Empty", "_version"));
    CU_ASSERT_FALSE(ovsdb_msg_schema_has_column(s, "Record", "value"));
    CU_ASSERT_FALSE(ovsdb_msg_schema_has_column(s, "Nope", NULL));
    CU_ASSERT_FALSE(ovsdb_msg_schema_has_column(s, "Nope", "_uuid"));
    json_decref(s);
    s = jl("{'tables':{'T':5}}");
    CU_ASSERT_FALSE(ovsdb_msg_schema_has_column(s, "T", NULL));
    json_decref(s);
    CU_ASSERT_FALSE(ovsdb_msg_schema_has_column(NULL, "T", NULL));
}

/* ---------------------------------------------------------------------- */

static void
null_row_cb(const char *table, const char *uuid, const json_t *old,
            const json_t *new, void *n_)
{
    int *n = n_;
    CU_ASSERT_PTR_NOT_NULL(table);
    CU_ASSERT_TRUE(ovsdb_uuid_is_valid(uuid));
    CU_ASSERT_TRUE(old || new);
    (*n)++;
}

/* Every prefix of a serialized message that still parses as JSON (there
 * are few) and every byte-flipped variant goes through the parsers without
 * crashing; the parsers' verdicts are consistent. */
static void
test_truncation_and_corruption(void)
{
    static const char *const texts[] = {
        "{\"Interface\":{\"" UUID1 "\":{\"new\":{\"name\":\"vif1\","
        "\"external_ids\":[\"map\",[[\"chand-id\",\"7\"]]],"
        "\"ofport\":[\"set\",[]]}}},\"Bridge\":{\"" UUID2 "\":{\"old\":"
        "{\"ports\":[\"set\",[[\"uuid\",\"" UUID3 "\"]]]}}}}",
        "[{\"uuid\":[\"uuid\",\"" UUID1 "\"]},{\"count\":1},"
        "{\"error\":\"x\",\"details\":\"y\"}]",
    };
    uint64_t seed = 0x5eed;

    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        const char *text = texts[t];
        size_t len = strlen(text);
        char *buf = malloc(len + 1);

        for (size_t n = 0; n <= len; n++) {
            memcpy(buf, text, n);
            buf[n] = '\0';
            json_t *j = json_loads(buf, JSON_DECODE_ANY, NULL);
            if (j) {
                /* No proper prefix of these texts is JSON; the whole
                 * text parses cleanly. */
                int calls = 0;
                int e1 = ovsdb_msg_parse_table_updates(j, null_row_cb,
                                                       &calls);
                int e2 = ovsdb_msg_parse_transact_reply(j, 3, NULL, NULL);
                ovsdb_datum_check(j, NULL, true);
                if (n == len) {
                    CU_ASSERT(t == 0 ? !e1 && calls == 2
                                     : e2 == OVSDB_MSG_E_TXN_ERROR);
                } else if (e1) {
                    CU_ASSERT_EQUAL(calls, 0);
                }
                json_decref(j);
            } else {
                CU_ASSERT(n < len);
            }
        }

        for (int iter = 0; iter < 2000; iter++) {
            memcpy(buf, text, len + 1);
            int flips = 1 + unit_random(&seed) % 3;
            for (int f = 0; f < flips; f++) {
                size_t pos = unit_random(&seed) % len;
                static const char alphabet[] = "[]{}\",:0123456789abcdef-"
                                               "setmapuidnl ";
                buf[pos] = alphabet[unit_random(&seed)
                                    % (sizeof alphabet - 1)];
            }
            json_t *j = json_loads(buf, JSON_DECODE_ANY, NULL);
            if (j) {
                int calls = 0;
                int e = ovsdb_msg_parse_table_updates(j, null_row_cb,
                                                      &calls);
                if (e) {
                    CU_ASSERT_EQUAL(calls, 0);
                }
                json_t *uuids = NULL;
                char *err = NULL;
                e = ovsdb_msg_parse_transact_reply(j, 3, &uuids, &err);
                CU_ASSERT_EQUAL(!e, uuids != NULL);
                CU_ASSERT_EQUAL(!e, err == NULL);
                json_decref(uuids);
                free(err);
                json_decref(j);
            }
        }
        free(buf);
    }
}

/* Generates a random atom of 'type' into a new JSON value. */
static json_t *
random_atom(uint64_t *seed, enum ovsdb_atom_type type)
{
    char buf[64];
    uint64_t r = unit_random(seed);
    switch (type) {
    case OVSDB_ATOM_INTEGER:
        return json_integer((json_int_t) (r % 200) - 100);
    case OVSDB_ATOM_REAL:
        return json_real((double) (r % 1000) / 8.0 + 0.125);
    case OVSDB_ATOM_BOOLEAN:
        return json_boolean(r & 1);
    case OVSDB_ATOM_STRING:
        snprintf(buf, sizeof buf, "s%u", (unsigned) (r % 50));
        return json_string(buf);
    case OVSDB_ATOM_UUID:
        snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012x",
                 (unsigned) (r % 40), (unsigned) (r >> 40));
        return ovsdb_datum_uuid(buf);
    case OVSDB_ATOM_NAMED_UUID:
        snprintf(buf, sizeof buf, "row%u", (unsigned) (r % 40));
        return ovsdb_datum_named_uuid(buf);
    case OVSDB_ATOM_NONE:
    default:
        return json_null();
    }
}

/* Random sets and maps: to JSON and back; duplicates are detected exactly
 * when the generator produced them. */
static void
test_random_datums(void)
{
    uint64_t seed = 12345;

    for (int iter = 0; iter < 3000; iter++) {
        enum ovsdb_atom_type kt = 1 + unit_random(&seed) % 6;
        enum ovsdb_atom_type vt = 1 + unit_random(&seed) % 6;
        bool is_map = unit_random(&seed) & 1;
        size_t n = unit_random(&seed) % 6;
        json_t *body = json_array();
        json_t *seen = json_array();
        bool dup = false;

        for (size_t i = 0; i < n; i++) {
            json_t *k = random_atom(&seed, kt);
            size_t j;
            json_t *s;
            json_array_foreach (seen, j, s) {
                dup |= json_equal(s, k);
            }
            json_array_append(seen, k);
            if (is_map) {
                json_array_append_new(body, json_pack("[oo]", k,
                                      random_atom(&seed, vt)));
            } else {
                json_array_append_new(body, k);
            }
        }
        json_decref(seen);
        json_t *json = json_pack("[so]", is_map ? "map" : "set", body);

        struct ovsdb_datum d;
        int error = ovsdb_datum_from_json(&d, json, true);
        if (dup) {
            CU_ASSERT_EQUAL(error, is_map ? OVSDB_MSG_E_DUP_KEY
                                          : OVSDB_MSG_E_DUP_ELEMENT);
        } else {
            CU_ASSERT_EQUAL_FATAL(error, 0);
            CU_ASSERT_EQUAL(d.n, n);
            CU_ASSERT_EQUAL(d.is_map, is_map);
            json_t *out = ovsdb_datum_to_json(&d);
            struct ovsdb_datum d2;
            CU_ASSERT_EQUAL_FATAL(ovsdb_datum_from_json(&d2, out, true), 0);
            json_t *out2 = ovsdb_datum_to_json(&d2);
            CU_ASSERT(json_equal(out, out2));
            if (is_map || n != 1) {
                CU_ASSERT(json_equal(out, json));
            } else {
                CU_ASSERT(json_equal(out, json_array_get(body, 0)));
            }
            /* Typed check against the generated type. */
            struct ovsdb_type type = { kt, is_map ? vt : OVSDB_ATOM_NONE, 0,
                                       OVSDB_N_UNLIMITED };
            CU_ASSERT_EQUAL(ovsdb_datum_check(json, &type, true), 0);
            ovsdb_datum_destroy(&d2);
            json_decref(out);
            json_decref(out2);
            ovsdb_datum_destroy(&d);
        }
        json_decref(json);
    }
}

int
unit_register(void)
{
    static const struct unit_test tests[] = {
        { "strerror", test_strerror },
        { "uuid syntax", test_uuid_syntax },
        { "atom to json", test_atom_to_json },
    { "string array", test_string_array },
        { "datum round trip", test_datum_round_trip },
        { "datum rejection table", test_datum_reject },
        { "datum types", test_datum_types },
        { "getters", test_getters },
        { "builders", test_builders },
        { "request builders", test_requests },
        { "table-updates parsing", test_parse_updates },
        { "update params", test_update_params },
        { "transact reply", test_transact_reply },
        { "schema", test_schema },
        { "truncation and corruption", test_truncation_and_corruption },
        { "random datums", test_random_datums },
    };
    return UNIT_ADD_SUITE("ovsdb-msg", tests);
}
