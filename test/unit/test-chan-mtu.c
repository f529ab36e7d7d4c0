/* CUnit suite for lib/chan-mtu: parsing, a side's own MTU, what a peer
 * advertises, the MTU both sides send with, and the batch budget. */

#include <config.h>
#include "unit.h"
#include "chan-mtu.h"

#include "chan-wire.h"

static void
test_parse(void)
{
    unsigned int mtu = 1;

    CU_ASSERT_PTR_NULL(chan_mtu_parse("auto", &mtu));
    CU_ASSERT_EQUAL(mtu, 0);
    CU_ASSERT_PTR_NULL(chan_mtu_parse("9000", &mtu));
    CU_ASSERT_EQUAL(mtu, 9000);
    CU_ASSERT_PTR_NULL(chan_mtu_parse("576", &mtu));
    CU_ASSERT_EQUAL(mtu, 576);
    CU_ASSERT_PTR_NULL(chan_mtu_parse("65535", &mtu));
    CU_ASSERT_EQUAL(mtu, 65535);

    static const char *bad[] = {
        "", "575", "0", "65536", "4294967296", "09000", "-1500", "+1500",
        "1500 ", " 1500", "1500k", "Auto", "9e3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mtu = 1234;
        CU_ASSERT_PTR_NOT_NULL(chan_mtu_parse(bad[i], &mtu));
        CU_ASSERT_EQUAL(mtu, 1234);
    }
    CU_ASSERT_PTR_NOT_NULL(chan_mtu_parse(NULL, &mtu));
}

static void
test_local(void)
{
    /* Auto: what is detected, else the default. */
    CU_ASSERT_EQUAL(chan_mtu_local(0, 0, 0), 1500);
    CU_ASSERT_EQUAL(chan_mtu_local(0, 9000, 0), 9000);
    CU_ASSERT_EQUAL(chan_mtu_local(0, 1400, 0), 1400);
    /* Configured: capped at what the interface carries. */
    CU_ASSERT_EQUAL(chan_mtu_local(9000, 1500, 0), 1500);
    CU_ASSERT_EQUAL(chan_mtu_local(1400, 9000, 0), 1400);
    CU_ASSERT_EQUAL(chan_mtu_local(9000, 0, 0), 9000);
    /* And at the path's limit. */
    CU_ASSERT_EQUAL(chan_mtu_local(0, 9000, 9244), 9000);
    CU_ASSERT_EQUAL(chan_mtu_local(0, 65535, 9244), 9244);
    CU_ASSERT_EQUAL(chan_mtu_local(9000, 0, 1500), 1500);
    /* Never below the minimum, whatever an interface says. */
    CU_ASSERT_EQUAL(chan_mtu_local(0, 68, 0), CHAN_WIRE_MIN_MTU);
    CU_ASSERT_EQUAL(chan_mtu_local(0, 9000, 100), CHAN_WIRE_MIN_MTU);
}

static unsigned int
from_text(const char *text)
{
    json_t *obj = json_loads(text, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(obj);
    unsigned int mtu = chan_mtu_from_json(obj);
    json_decref(obj);
    return mtu;
}

static void
test_from_json(void)
{
    CU_ASSERT_EQUAL(chan_mtu_from_json(NULL), 1500);
    CU_ASSERT_EQUAL(from_text("{}"), 1500);    /* An older peer. */
    CU_ASSERT_EQUAL(from_text("{\"guest_epoch\":3}"), 1500);
    CU_ASSERT_EQUAL(from_text("{\"mtu\":9000}"), 9000);
    CU_ASSERT_EQUAL(from_text("{\"mtu\":576}"), 576);
    CU_ASSERT_EQUAL(from_text("{\"mtu\":575}"), 1500);
    CU_ASSERT_EQUAL(from_text("{\"mtu\":-9000}"), 1500);
    CU_ASSERT_EQUAL(from_text("{\"mtu\":\"9000\"}"), 1500);
    CU_ASSERT_EQUAL(from_text("{\"mtu\":9000.0}"), 1500);
    CU_ASSERT_EQUAL(from_text("{\"mtu\":100000}"), 65535);

    json_t *obj = json_object();
    chan_mtu_to_json(obj, 9000);
    CU_ASSERT_EQUAL(chan_mtu_from_json(obj), 9000);
    json_decref(obj);
}

static void
test_effective(void)
{
    /* Each side sends with the smaller of its MTU and the peer's. */
    CU_ASSERT_EQUAL(chan_mtu_effective(9000, 9000), 9000);
    CU_ASSERT_EQUAL(chan_mtu_effective(9000, 1500), 1500);
    CU_ASSERT_EQUAL(chan_mtu_effective(1500, 9000), 1500);
    CU_ASSERT_EQUAL(chan_mtu_effective(8000, 9000), 8000);
    /* A peer not heard from yet, or an older one, is 1500. */
    CU_ASSERT_EQUAL(chan_mtu_effective(9000, 0), 1500);
    CU_ASSERT_EQUAL(chan_mtu_effective(1400, 0), 1400);
    CU_ASSERT_EQUAL(chan_mtu_effective(0, 9000), 1500);
    /* Symmetric: both sides arrive at the same value. */
    for (unsigned int a = 576; a <= 65535; a += 977) {
        for (unsigned int b = 576; b <= 65535; b += 1231) {
            CU_ASSERT_EQUAL(chan_mtu_effective(a, b),
                            chan_mtu_effective(b, a));
        }
    }
}

static void
test_budget(void)
{
    CU_ASSERT_EQUAL(chan_mtu_batch_budget(1500), 1380);
    CU_ASSERT_EQUAL(chan_mtu_batch_budget(9000), 8880);
    CU_ASSERT_EQUAL(chan_mtu_batch_budget(576), 456);
    CU_ASSERT_EQUAL(chan_mtu_batch_budget(65535), 65415);
    for (unsigned int mtu = 576; mtu <= 65535; mtu += 101) {
        CU_ASSERT(chan_mtu_batch_budget(mtu) < chan_wire_max_payload(mtu));
    }
}

static const struct unit_test tests[] = {
    { "parse", test_parse },
    { "own MTU", test_local },
    { "advertised MTU", test_from_json },
    { "effective MTU", test_effective },
    { "batch budget", test_budget },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("chan-mtu", tests);
}
