#include <config.h>
#include "unit.h"
#include "reconnect.h"
static void test_placeholder(void) { CU_ASSERT(0); }
static const struct unit_test tests[] = { { "placeholder", test_placeholder } };
int unit_register(void) { return UNIT_ADD_SUITE("reconnect", tests); }
