/* CUnit suite for the claims that decide which chassis serves a VM
 * (chand-host/claim.c). */

#include <config.h>
#include "unit.h"

#include <string.h>

#include "claim.h"

#define N_ELEMS(a) (sizeof (a) / sizeof (a)[0])

static enum claim_action
decide(const char *me, const struct claim_row *rows, size_t n, bool serving,
       bool yielded, bool waiting, struct claim_decision *d)
{
    claim_decide(me, rows, n, serving, yielded, waiting, d);
    return d->action;
}

/* No row yet: the first claim. */
static void
test_first(void)
{
    struct claim_decision d;
    CU_ASSERT_EQUAL(decide("hv-a", NULL, 0, false, false, false, &d),
                    CLAIM_SERVE);
    CU_ASSERT_EQUAL(d.claim, 1);
    CU_ASSERT_EQUAL(d.migrations, 0);
    CU_ASSERT_PTR_NULL(d.holder);
}

/* Our own row, nobody newer: a restart goes on with the same claim. */
static void
test_restart(void)
{
    struct claim_row rows[] = {
        { "hv-b", 3, 2, "released" },
        { "hv-a", 4, 3, "ready" },
    };
    struct claim_decision d;
    CU_ASSERT_EQUAL(decide("hv-a", rows, 2, false, false, false, &d),
                    CLAIM_SERVE);
    CU_ASSERT_EQUAL(d.claim, 4);
    CU_ASSERT_EQUAL(d.migrations, 3);
    CU_ASSERT_EQUAL(decide("hv-a", rows, 2, true, false, false, &d),
                    CLAIM_SERVE);
}

/* The vNIC arrives while another chassis holds the newest claim: take it
 * over with the next claim, one more migration; then wait for the holder
 * to release it, unless the deadline passed. */
static void
test_take_and_wait(void)
{
    struct claim_row rows[] = {
        { "hv-a", 4, 1, "ready" },
    };
    struct claim_decision d;
    CU_ASSERT_EQUAL(decide("hv-b", rows, 1, false, false, false, &d),
                    CLAIM_TAKE);
    CU_ASSERT_EQUAL(d.claim, 5);
    CU_ASSERT_EQUAL(d.migrations, 2);
    CU_ASSERT_PTR_NOT_NULL(d.holder);

    struct claim_row after[] = {
        { "hv-a", 4, 1, "ready" },
        { "hv-b", 5, 2, "connecting" },
    };
    CU_ASSERT_EQUAL(decide("hv-b", after, 2, false, false, true, &d),
                    CLAIM_WAIT);
    CU_ASSERT_EQUAL(decide("hv-b", after, 2, false, false, false, &d),
                    CLAIM_SERVE);       /* Deadline passed. */
    CU_ASSERT_EQUAL(d.claim, 5);

    after[0].state = "released";
    CU_ASSERT_EQUAL(decide("hv-b", after, 2, false, false, true, &d),
                    CLAIM_SERVE);

    /* hv-a, still serving, sees hv-b's newer claim. */
    after[0].state = "ready";
    CU_ASSERT_EQUAL(decide("hv-a", after, 2, true, false, false, &d),
                    CLAIM_YIELD);
}

/* A chassis that yielded does not take the VM back while its vNIC stays,
 * unless the newest holder released it. */
static void
test_yielded(void)
{
    struct claim_row rows[] = {
        { "hv-a", 4, 1, "released" },
        { "hv-b", 5, 2, "ready" },
    };
    struct claim_decision d;
    CU_ASSERT_EQUAL(decide("hv-a", rows, 2, false, true, false, &d),
                    CLAIM_YIELD);
    /* Its vNIC left and came back (a migration back): claim again. */
    CU_ASSERT_EQUAL(decide("hv-a", rows, 2, false, false, false, &d),
                    CLAIM_TAKE);
    CU_ASSERT_EQUAL(d.claim, 6);
    CU_ASSERT_EQUAL(d.migrations, 3);
    rows[1].state = "released";
    CU_ASSERT_EQUAL(decide("hv-a", rows, 2, false, true, false, &d),
                    CLAIM_TAKE);
}

/* Two chassis that take the VM at once with the same claim: the greater
 * chassis name wins on both sides, and the loser does not claim again. */
static void
test_tie(void)
{
    struct claim_row rows[] = {
        { "hv-a", 7, 1, "connecting" },
        { "hv-b", 7, 1, "connecting" },
    };
    struct claim_decision d;
    CU_ASSERT_EQUAL(decide("hv-b", rows, 2, false, false, true, &d),
                    CLAIM_SERVE);
    CU_ASSERT_EQUAL(decide("hv-a", rows, 2, false, false, true, &d),
                    CLAIM_YIELD);
    CU_ASSERT_EQUAL(decide("hv-a", rows, 2, true, false, false, &d),
                    CLAIM_YIELD);
}

/* Rows without a chassis (older writers) never release: they count as
 * released, so nobody waits for them. */
static void
test_unnamed(void)
{
    struct claim_row rows[] = {
        { "", 2, 0, "ready" },
        { "hv-a", 3, 1, "connecting" },
    };
    struct claim_decision d;
    CU_ASSERT_TRUE(claim_row_released(&rows[0]));
    CU_ASSERT_EQUAL(decide("hv-a", rows, 2, false, false, true, &d),
                    CLAIM_SERVE);
    CU_ASSERT_EQUAL(decide("hv-b", rows, 1, false, false, false, &d),
                    CLAIM_TAKE);
    CU_ASSERT_EQUAL(d.claim, 3);
}

/* A row claim 0 (written before claims existed) serves as claim 1. */
static void
test_legacy_zero(void)
{
    struct claim_row rows[] = { { "hv-a", 0, 0, "ready" } };
    struct claim_decision d;
    CU_ASSERT_EQUAL(decide("hv-a", rows, 1, false, false, false, &d),
                    CLAIM_SERVE);
    CU_ASSERT_EQUAL(d.claim, 1);
    CU_ASSERT_STRING_EQUAL(claim_action_name(CLAIM_WAIT), "wait");
}

static const struct unit_test tests[] = {
    { "first", test_first },
    { "restart", test_restart },
    { "take and wait", test_take_and_wait },
    { "yielded", test_yielded },
    { "tie", test_tie },
    { "unnamed", test_unnamed },
    { "legacy zero", test_legacy_zero },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("claim", tests);
}
