/* CUnit suite for chand-host's relay policy (chand-host/relay.c). */

#include <config.h>
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define N_ELEMS(a) (sizeof (a) / sizeof (a)[0])

static json_t *
load(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

static const char published_text[] =
    "{\"vm1\": {\"obj/a\": [3, \"1\"], \"to/vm2/hi\": [4, \"\\\"hi\\\"\"],"
    "           \"to/vm3/hi\": [5, \"\\\"no\\\"\"], \"from/vm9/x\": [1, \"1\"],"
    "           \"stats/chand-guest\": [6, \"{}\"]},"
    " \"vm2\": {\"obj/a\": [1, \"2\"], \"obj/b\": [2, \"3\"]},"
    " \"vm3\": {}}";

static long long
count(const json_t *counts, const char *vm, const char *what)
{
    return json_integer_value(json_object_get(json_object_get(counts, vm),
                                              what));
}

/* With no rule nothing is relayed, and nothing counts as refused but the
 * messages ("to/vm/...") that asked to be. */
static void
test_no_rules(void)
{
    json_t *published = load(published_text);
    json_t *vms = load("[\"vm1\", \"vm2\", \"vm3\"]");
    json_t *counts = json_object();
    json_t *wanted = relay_compute(NULL, 0, published, vms, counts);
    CU_ASSERT_EQUAL(json_object_size(wanted), 0);
    CU_ASSERT_EQUAL(count(counts, "vm1", "refused"), 2);
    CU_ASSERT_EQUAL(count(counts, "vm1", "relayed"), 0);
    CU_ASSERT_EQUAL(count(counts, "vm2", "refused"), 0);
    json_decref(wanted);
    json_decref(counts);
    json_decref(vms);
    json_decref(published);
}

static void
test_rules(void)
{
    json_t *published = load(published_text);
    json_t *vms = load("[\"vm1\", \"vm2\", \"vm3\"]");
    static const char *const to_vm2[] = { "vm2" };
    const struct relay_rule rules[] = {
        /* vm1's "obj/" records to every VM. */
        { "vm1", "obj/", RELAY_TO_ALL, NULL, 0 },
        /* Anyone's "obj/" records to the VMs holding the same key. */
        { NULL, "obj/", RELAY_TO_SAME_KEY, NULL, 0 },
        /* vm1 may message vm2 (not vm3). */
        { "vm1", "to/", RELAY_TO_VMS, to_vm2, 1 },
    };
    json_t *counts = json_object();
    json_t *wanted = relay_compute(rules, N_ELEMS(rules), published, vms,
                                   counts);
    json_t *expect = load(
        "{\"vm2\": {\"from/vm1/obj/a\": [3, \"1\"],"
        "           \"from/vm1/to/vm2/hi\": [4, \"\\\"hi\\\"\"]},"
        " \"vm3\": {\"from/vm1/obj/a\": [3, \"1\"]},"
        " \"vm1\": {\"from/vm2/obj/a\": [1, \"2\"]}}");
    if (!json_equal(wanted, expect)) {
        char *t = json_dumps(wanted, JSON_SORT_KEYS);
        fprintf(stderr, "relayed: %s\n", t);
        free(t);
    }
    CU_ASSERT_TRUE(json_equal(wanted, expect));
    /* No record comes back to its source; nothing under "from/" is
     * relayed again. */
    CU_ASSERT_PTR_NULL(json_object_get(json_object_get(wanted, "vm1"),
                                       "from/vm1/obj/a"));
    CU_ASSERT_EQUAL(count(counts, "vm1", "relayed"), 3);
    CU_ASSERT_EQUAL(count(counts, "vm1", "refused"), 1);
    CU_ASSERT_EQUAL(count(counts, "vm2", "relayed"), 1);
    json_decref(expect);
    json_decref(wanted);
    json_decref(counts);
    json_decref(vms);
    json_decref(published);
}

/* A relayed key longer than a key may be is refused. */
static void
test_long_key(void)
{
    char key[300];
    memset(key, 'k', 250);
    key[250] = '\0';
    json_t *published = json_pack("{s{s[is]}}", "vm1", key, 1, "1");
    json_t *vms = load("[\"vm1\", \"vm2\"]");
    const struct relay_rule rule = { NULL, "", RELAY_TO_ALL, NULL, 0 };
    json_t *counts = json_object();
    json_t *wanted = relay_compute(&rule, 1, published, vms, counts);
    CU_ASSERT_EQUAL(json_object_size(wanted), 0);
    CU_ASSERT_EQUAL(count(counts, "vm1", "refused"), 1);
    json_decref(wanted);
    json_decref(counts);
    json_decref(vms);
    json_decref(published);
}

static void
test_to_from_string(void)
{
    enum relay_to to;
    CU_ASSERT_TRUE(relay_to_from_string("vms", &to));
    CU_ASSERT_EQUAL(to, RELAY_TO_VMS);
    CU_ASSERT_TRUE(relay_to_from_string("all", &to));
    CU_ASSERT_EQUAL(to, RELAY_TO_ALL);
    CU_ASSERT_TRUE(relay_to_from_string("same-key", &to));
    CU_ASSERT_EQUAL(to, RELAY_TO_SAME_KEY);
    CU_ASSERT_FALSE(relay_to_from_string("some", &to));
    CU_ASSERT_FALSE(relay_to_from_string(NULL, &to));
}

/* relay_allows(): source and prefix, whatever the targets. */
static void
test_allows(void)
{
    static const char *const vms[] = { "vm2" };
    const struct relay_rule rules[] = {
        { "vm1", "verdict/", RELAY_TO_VMS, vms, 1 },
        { NULL, "any/", RELAY_TO_ALL, NULL, 0 },
    };
    CU_ASSERT_TRUE(relay_allows(rules, 2, "vm1", "verdict/abc"));
    CU_ASSERT_FALSE(relay_allows(rules, 2, "vm2", "verdict/abc"));
    CU_ASSERT_FALSE(relay_allows(rules, 2, "vm1", "verdicts"));
    CU_ASSERT_TRUE(relay_allows(rules, 2, "vm9", "any/x"));
    CU_ASSERT_FALSE(relay_allows(rules, 0, "vm1", "verdict/abc"));
}

static const struct unit_test tests[] = {
    { "allows", test_allows },
    { "no rules", test_no_rules },
    { "rules", test_rules },
    { "long key", test_long_key },
    { "to from string", test_to_from_string },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("relay", tests);
}
