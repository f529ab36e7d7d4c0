/* Shared main() for chand's CUnit test programs: see unit.h. */

#include <config.h>
#include "unit.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

int
unit_add_suite(const char *name, const struct unit_test *tests, size_t n)
{
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);
    if (!suite) {
        return CU_get_error();
    }
    for (size_t i = 0; i < n; i++) {
        if (!CU_add_test(suite, tests[i].name, tests[i].func)) {
            return CU_get_error();
        }
    }
    return 0;
}

uint64_t
unit_random(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

int
main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return EXIT_FAILURE;
    }
    if (unit_register()) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return EXIT_FAILURE;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    printf("\n");

    unsigned int failures = CU_get_number_of_failures();
    unsigned int failed_suites = CU_get_number_of_suites_failed();
    unsigned int ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();

    /* CU_basic_run_tests() already printed the run summary. */
    if (!ran) {
        fprintf(stderr, "no tests ran\n");
        return EXIT_FAILURE;
    }
    return failures || failed_suites ? EXIT_FAILURE : EXIT_SUCCESS;
}
