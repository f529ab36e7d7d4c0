/* CUnit suite for chand-host's automatic chand-ids (chand-host/autoid.c):
 * which id is chosen, and the conditional transaction that writes it. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoid.h"

static uint32_t
pick(const uint32_t *used, size_t n, uint32_t preferred)
{
    uint32_t id = 0;
    CU_ASSERT_EQUAL_FATAL(autoid_pick(used, n, n, preferred, &id), 0);
    return id;
}

/* The lowest id nobody uses. */
static void
test_free_id(void)
{
    CU_ASSERT_EQUAL(pick(NULL, 0, 0), 1);

    static const uint32_t a[] = { 1, 2, 3 };
    CU_ASSERT_EQUAL(pick(a, 3, 0), 4);

    static const uint32_t gap[] = { 1, 2, 4, 5 };
    CU_ASSERT_EQUAL(pick(gap, 4, 0), 3);

    /* Ids outside the automatic range (hand-set ones may be anywhere)
     * change nothing; repeated ones (an id on an Interface and in the Chan
     * DB) count once. */
    static const uint32_t odd[] = { 100000, 2, 0, 1, 1, 4294967295u, 2 };
    CU_ASSERT_EQUAL(pick(odd, sizeof odd / sizeof *odd, 0), 3);
}

/* Hand-set ids, wherever they are, are never chosen. */
static void
test_hand_set_collisions(void)
{
    static const uint32_t hand[] = { 7, 1, 3, 2 };
    uint32_t id = pick(hand, 4, 0);
    CU_ASSERT_EQUAL(id, 4);
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT_NOT_EQUAL(id, hand[i]);
    }

    /* The VM's previous id is preferred, unless it is taken or outside
     * the range: then the lowest free one. */
    CU_ASSERT_EQUAL(pick(hand, 4, 12), 12);
    CU_ASSERT_EQUAL(pick(hand, 4, 7), 4);
    CU_ASSERT_EQUAL(pick(hand, 4, AUTOID_MAX + 1), 4);
    CU_ASSERT_EQUAL(pick(hand, 4, AUTOID_MAX), AUTOID_MAX);

    /* Ids in use elsewhere only (other VMs' Channel rows, after the first
     * 'n_here'): a fresh id avoids them, the VM's own previous id may be
     * one of them (ids are unique per host). */
    static const uint32_t mixed[] = { 1, 2, 3, 4, 5 };     /* 3 here. */
    CU_ASSERT_EQUAL_FATAL(autoid_pick(mixed, 5, 3, 0, &id), 0);
    CU_ASSERT_EQUAL(id, 6);
    CU_ASSERT_EQUAL_FATAL(autoid_pick(mixed, 5, 3, 4, &id), 0);
    CU_ASSERT_EQUAL(id, 4);
    CU_ASSERT_EQUAL_FATAL(autoid_pick(mixed, 5, 3, 2, &id), 0);
    CU_ASSERT_EQUAL(id, 6);
}

/* Every id of the range in use: ENOSPC, nothing stored. */
static void
test_exhaustion(void)
{
    size_t n = AUTOID_MAX - AUTOID_MIN + 1;
    uint32_t *used = malloc(n * sizeof *used);
    CU_ASSERT_PTR_NOT_NULL_FATAL(used);
    for (size_t i = 0; i < n; i++) {
        used[i] = AUTOID_MAX - i;
    }
    uint32_t id = 12345;
    CU_ASSERT_EQUAL(autoid_pick(used, n, n, 0, &id), ENOSPC);
    CU_ASSERT_EQUAL(autoid_pick(used, n, n, 17, &id), ENOSPC);
    CU_ASSERT_EQUAL(id, 12345);

    /* One freed: that one. */
    used[100] = 0;
    CU_ASSERT_EQUAL(pick(used, n, 0), AUTOID_MAX - 100);
    free(used);
}

/* The same ids in use, in any order, give the same id. */
static void
test_determinism(void)
{
    uint64_t seed = 0x5eed;
    uint32_t used[64];
    for (int round = 0; round < 200; round++) {
        size_t n = unit_random(&seed) % 64;
        for (size_t i = 0; i < n; i++) {
            used[i] = 1 + unit_random(&seed) % 80;
        }
        uint32_t first = pick(used, n, 0);

        /* Shuffle and pick again. */
        for (size_t i = n; i > 1; i--) {
            size_t j = unit_random(&seed) % i;
            uint32_t t = used[i - 1];
            used[i - 1] = used[j];
            used[j] = t;
        }
        CU_ASSERT_EQUAL(pick(used, n, 0), first);

        /* And it is the lowest free one. */
        for (size_t i = 0; i < n; i++) {
            CU_ASSERT_NOT_EQUAL(used[i], first);
        }
        for (uint32_t lower = 1; lower < first; lower++) {
            bool found = false;
            for (size_t i = 0; i < n; i++) {
                found |= used[i] == lower;
            }
            CU_ASSERT_TRUE(found);
        }
    }
}

static void
test_is_auto(void)
{
    json_t *ids = json_pack("{ssss}", "chand-id", "7", "chand-id-auto", "7");
    CU_ASSERT_TRUE(autoid_is_auto(ids));
    json_object_set_new(ids, "chand-id", json_string("8"));
    CU_ASSERT_FALSE(autoid_is_auto(ids));
    json_object_del(ids, "chand-id-auto");
    CU_ASSERT_FALSE(autoid_is_auto(ids));
    json_decref(ids);
}

#define UUID "00000000-0000-0000-0000-000000000001"

/* The transaction: two waits that make it conditional, then the write. */
static void
test_ops(void)
{
    json_t *ids = json_pack("{ssss}", "chand-vm", "vm1", "chand-id-auto",
                            "3");
    json_t *ops = autoid_ops(UUID, ids, 7);
    json_t *expect = json_pack(
        "[{ss ss s[[ss[ss]]] s[s] ss s[{s[s[[ss][ss]]]}] si}"
        " {ss ss s[[ss[s[[ss]]]]] s[s] ss s[] si}"
        " {ss ss s[[ss[ss]]] s[[ss[s[s]]] [ss[s[[ss][ss]]]]]}]",
        /* Unchanged external_ids. */
        "op", "wait", "table", "Interface",
        "where", "_uuid", "==", "uuid", UUID,
        "columns", "external_ids", "until", "==",
        "rows", "external_ids", "map", "chand-id-auto", "3", "chand-vm",
        "vm1", "timeout", 0,
        /* Nobody has chand-id=7. */
        "op", "wait", "table", "Interface",
        "where", "external_ids", "includes", "map", "chand-id", "7",
        "columns", "name", "until", "==", "rows", "timeout", 0,
        /* The write. */
        "op", "mutate", "table", "Interface",
        "where", "_uuid", "==", "uuid", UUID,
        "mutations", "external_ids", "delete", "set", "chand-id-auto",
        "external_ids", "insert", "map", "chand-id", "7", "chand-id-auto",
        "7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(expect);
    if (!json_equal(ops, expect)) {
        char *got = json_dumps(ops, JSON_SORT_KEYS);
        fprintf(stderr, "got: %s\n", got);
        free(got);
        CU_FAIL("autoid_ops()");
    }
    json_decref(expect);
    json_decref(ops);
    json_decref(ids);
}

static const struct unit_test tests[] = {
    { "the lowest free id", test_free_id },
    { "hand-set ids and the preferred id", test_hand_set_collisions },
    { "exhaustion", test_exhaustion },
    { "determinism", test_determinism },
    { "chand-id-auto marks an allocated id", test_is_auto },
    { "the conditional write", test_ops },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("host-autoid", tests);
}
