/*
 * Shared glue for chand's CUnit suites.
 *
 * Every test program is one test/unit/test-<module>.c file linked with
 * unit-main.c.  The test file defines unit_register(), which adds its
 * suites with CU_add_suite()/CU_add_test() (or the UNIT_SUITE helper).
 * unit-main.c runs them in verbose mode, prints CUnit's run summary, and
 * exits non-zero if any assertion failed.
 */
#ifndef UNIT_H
#define UNIT_H 1

#include <CUnit/CUnit.h>
#include <stddef.h>
#include <stdint.h>

/* Defined by each test program: registers its suites.  Returns 0 on
 * success, otherwise a CUnit error code. */
int unit_register(void);

struct unit_test {
    const char *name;
    CU_TestFunc func;
};

/* Adds a suite called 'name' with the 'n' tests in 'tests'.  Returns 0 or a
 * CUnit error code. */
int unit_add_suite(const char *name, const struct unit_test *tests, size_t n);

#define UNIT_ADD_SUITE(NAME, TESTS) \
    unit_add_suite(NAME, TESTS, sizeof (TESTS) / sizeof (TESTS)[0])

/* A small deterministic PRNG (xorshift64*), so random loops can be
 * replayed from the seed printed on failure. */
uint64_t unit_random(uint64_t *state);

#endif /* unit.h */
