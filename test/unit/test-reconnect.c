/* Tests for lib/reconnect: a pure state machine driven with fake time. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <limits.h>

#include "reconnect.h"

/* Asserts that nothing happens just before 'when' and that 'action'
 * happens at 'when'. */
static void
expect_at(struct reconnect *r, long long int when,
          enum reconnect_action action)
{
    CU_ASSERT_EQUAL(reconnect_wait(r, when - 1), when);
    CU_ASSERT_EQUAL(reconnect_run(r, when - 1), RECONNECT_NONE);
    CU_ASSERT_EQUAL(reconnect_run(r, when), action);
}

static void
test_defaults(void)
{
    struct reconnect *r = reconnect_create(1000);

    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_VOID);
    CU_ASSERT_FALSE(reconnect_is_enabled(r));
    CU_ASSERT_FALSE(reconnect_is_connected(r));
    CU_ASSERT_EQUAL(reconnect_get_min_backoff(r), 1000);
    CU_ASSERT_EQUAL(reconnect_get_max_backoff(r), 8000);
    CU_ASSERT_EQUAL(reconnect_get_probe_interval(r), 5000);
    CU_ASSERT_STRING_EQUAL(reconnect_get_name(r), "void");
    reconnect_set_name(r, "unix:/x");
    CU_ASSERT_STRING_EQUAL(reconnect_get_name(r), "unix:/x");
    reconnect_set_name(r, NULL);
    CU_ASSERT_STRING_EQUAL(reconnect_get_name(r), "void");

    /* VOID does nothing, ever. */
    CU_ASSERT_EQUAL(reconnect_wait(r, 1000), LLONG_MAX);
    CU_ASSERT_EQUAL(reconnect_run(r, 1000000), RECONNECT_NONE);
    /* Events in VOID/BACKOFF that make no sense are ignored. */
    reconnect_disconnected(r, 1000, EIO);
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_VOID);

    /* Setting validation. */
    reconnect_set_backoff(r, 0, -5);
    CU_ASSERT_EQUAL(reconnect_get_min_backoff(r), 1);
    CU_ASSERT_EQUAL(reconnect_get_max_backoff(r), 1);
    reconnect_set_backoff(r, 500, 100);
    CU_ASSERT_EQUAL(reconnect_get_min_backoff(r), 500);
    CU_ASSERT_EQUAL(reconnect_get_max_backoff(r), 500);
    reconnect_set_probe_interval(r, 10);
    CU_ASSERT_EQUAL(reconnect_get_probe_interval(r), 1000);
    reconnect_set_probe_interval(r, -1);
    CU_ASSERT_EQUAL(reconnect_get_probe_interval(r), 0);

    CU_ASSERT_STRING_EQUAL(reconnect_state_name(RECONNECT_S_IDLE), "IDLE");
    CU_ASSERT_STRING_EQUAL(reconnect_state_name(RECONNECT_S_BACKOFF),
                           "BACKOFF");
    reconnect_destroy(r);
    reconnect_destroy(NULL);
}

static void
test_backoff_doubling(void)
{
    struct reconnect *r = reconnect_create(0);
    long long int now = 10000;

    reconnect_set_backoff(r, 250, 8000);
    reconnect_enable(r, now);
    CU_ASSERT(reconnect_is_enabled(r));

    /* First attempt at once. */
    CU_ASSERT_EQUAL(reconnect_wait(r, now), now);
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
    reconnect_connecting(r, now);
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_CONNECTING);
    reconnect_connect_failed(r, now, ECONNREFUSED);
    CU_ASSERT_EQUAL(reconnect_get_last_error(r), ECONNREFUSED);

    /* Then 250, 500, 1000, ... capped at 8000. */
    static const int expected[] = {
        250, 500, 1000, 2000, 4000, 8000, 8000, 8000
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_BACKOFF);
        CU_ASSERT_EQUAL(reconnect_get_backoff(r), expected[i]);
        expect_at(r, now + expected[i], RECONNECT_CONNECT);
        now += expected[i];
        reconnect_connecting(r, now);
        reconnect_connect_failed(r, now, ENOENT);
    }
    CU_ASSERT_EQUAL(reconnect_get_n_attempts(r), 9);
    CU_ASSERT_EQUAL(reconnect_get_n_successes(r), 0);

    /* connect_failed() without connecting() counts as an attempt too. */
    now += 8000;
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
    reconnect_connect_failed(r, now, ENOENT);
    CU_ASSERT_EQUAL(reconnect_get_n_attempts(r), 10);

    /* A short-lived connection keeps the backoff high. */
    now += 8000;
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
    reconnect_connecting(r, now);
    reconnect_connected(r, now);
    CU_ASSERT(reconnect_is_connected(r));
    CU_ASSERT_EQUAL(reconnect_get_last_error(r), 0);
    CU_ASSERT_EQUAL(reconnect_get_n_successes(r), 1);
    CU_ASSERT_EQUAL(reconnect_get_connection_duration(r, now + 100), 100);
    reconnect_disconnected(r, now + 100, 0);
    CU_ASSERT_EQUAL(reconnect_get_connection_duration(r, now + 200), 0);
    CU_ASSERT_EQUAL(reconnect_get_backoff(r), 8000);
    now += 100;
    expect_at(r, now + 8000, RECONNECT_CONNECT);
    now += 8000;

    /* A long-lived one resets it to the minimum. */
    reconnect_connecting(r, now);
    reconnect_connected(r, now);
    now += 8000;
    reconnect_disconnected(r, now, EPIPE);
    CU_ASSERT_EQUAL(reconnect_get_backoff(r), 250);
    CU_ASSERT_EQUAL(reconnect_get_last_error(r), EPIPE);
    expect_at(r, now + 250, RECONNECT_CONNECT);
    reconnect_destroy(r);
}

static void
test_connect_timeout(void)
{
    struct reconnect *r = reconnect_create(0);
    long long int now = 0;

    reconnect_enable(r, now);
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
    reconnect_connecting(r, now);
    /* Attempts time out after max(1000, backoff). */
    expect_at(r, now + 1000, RECONNECT_DISCONNECT);
    now += 1000;
    reconnect_connect_failed(r, now, ETIMEDOUT);
    CU_ASSERT_EQUAL(reconnect_get_backoff(r), 1000);

    /* Grow the backoff to 4000; then the timeout is 4000 too. */
    for (int i = 0; i < 2; i++) {
        now += reconnect_get_backoff(r);
        CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
        reconnect_connect_failed(r, now, ECONNREFUSED);
    }
    CU_ASSERT_EQUAL(reconnect_get_backoff(r), 4000);
    now += 4000;
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
    reconnect_connecting(r, now);
    reconnect_connecting(r, now + 10);   /* Repeated: no restart. */
    expect_at(r, now + 4000, RECONNECT_DISCONNECT);
    reconnect_destroy(r);
}

static void
test_probe(void)
{
    struct reconnect *r = reconnect_create(0);
    long long int now = 0;

    reconnect_set_probe_interval(r, 5000);
    reconnect_enable(r, now);
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
    reconnect_connecting(r, now);
    now += 3;
    reconnect_connected(r, now);
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_ACTIVE);

    /* Activity postpones the probe. */
    reconnect_activity(r, now + 4000);
    CU_ASSERT_EQUAL(reconnect_run(r, now + 5000), RECONNECT_NONE);
    expect_at(r, now + 9000, RECONNECT_PROBE);
    now += 9000;
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_IDLE);
    /* Probe sent once, not again. */
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_NONE);

    /* An answer brings it back to ACTIVE. */
    reconnect_activity(r, now + 100);
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_ACTIVE);
    now += 100;
    expect_at(r, now + 5000, RECONNECT_PROBE);
    now += 5000;

    /* No answer: disconnect after another interval (2N in total). */
    expect_at(r, now + 5000, RECONNECT_DISCONNECT);
    now += 5000;
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_IDLE);
    reconnect_disconnected(r, now, 0);
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_BACKOFF);
    /* It had been up more than max_backoff: minimum backoff. */
    expect_at(r, now + 1000, RECONNECT_CONNECT);

    /* Probe disabled: a connection can idle forever. */
    reconnect_set_probe_interval(r, 0);
    now += 1000;
    reconnect_connecting(r, now);
    reconnect_connected(r, now);
    CU_ASSERT_EQUAL(reconnect_wait(r, now), LLONG_MAX);
    CU_ASSERT_EQUAL(reconnect_run(r, now + 1000000000LL), RECONNECT_NONE);
    reconnect_destroy(r);
}

static void
test_force_reconnect(void)
{
    struct reconnect *r = reconnect_create(0);
    long long int now = 0;

    reconnect_set_probe_interval(r, 0);
    reconnect_force_reconnect(r, now);      /* VOID: nothing. */
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_VOID);
    reconnect_enable(r, now);
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
    reconnect_connecting(r, now);
    reconnect_connected(r, now);
    CU_ASSERT_EQUAL(reconnect_run(r, now + 100), RECONNECT_NONE);

    /* Forced: disconnect now, then reconnect without waiting. */
    now += 100;
    reconnect_force_reconnect(r, now);
    CU_ASSERT_EQUAL(reconnect_wait(r, now), now);
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_DISCONNECT);
    reconnect_disconnected(r, now, 0);
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_BACKOFF);
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);

    /* Forced while backing off: skip the wait. */
    reconnect_connect_failed(r, now, ECONNREFUSED);
    CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_NONE);
    reconnect_force_reconnect(r, now + 1);
    CU_ASSERT_EQUAL(reconnect_run(r, now + 1), RECONNECT_CONNECT);

    /* Forced while connecting. */
    reconnect_connecting(r, now + 1);
    reconnect_force_reconnect(r, now + 2);
    CU_ASSERT_EQUAL(reconnect_run(r, now + 2), RECONNECT_DISCONNECT);

    /* Disable: back to VOID. */
    reconnect_disable(r, now + 3);
    CU_ASSERT_FALSE(reconnect_is_enabled(r));
    CU_ASSERT_EQUAL(reconnect_run(r, now + 100000), RECONNECT_NONE);
    reconnect_destroy(r);
}

static void
test_no_retry(void)
{
    struct reconnect *r = reconnect_create(0);

    reconnect_set_retry(r, false);
    reconnect_enable(r, 0);
    CU_ASSERT_EQUAL(reconnect_run(r, 0), RECONNECT_CONNECT);
    reconnect_connect_failed(r, 0, ECONNREFUSED);
    CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_VOID);
    CU_ASSERT_FALSE(reconnect_is_enabled(r));
    CU_ASSERT_EQUAL(reconnect_run(r, 1000000), RECONNECT_NONE);

    /* Same after a connection ends. */
    reconnect_enable(r, 10);
    reconnect_connecting(r, 10);
    reconnect_connected(r, 10);
    reconnect_disconnected(r, 20, 0);
    CU_ASSERT_FALSE(reconnect_is_enabled(r));
    reconnect_destroy(r);
}

static void
test_jitter(void)
{
    /* Jitter stays within [backoff, backoff * (1 + pct/100)] and is
     * reproducible from the seed. */
    long long int waits[2][50];

    for (int run = 0; run < 2; run++) {
        struct reconnect *r = reconnect_create(0);
        long long int now = 0;

        reconnect_set_backoff(r, 1000, 1000);
        reconnect_set_jitter(r, 50, 42);
        reconnect_enable(r, now);
        for (int i = 0; i < 50; i++) {
            CU_ASSERT_EQUAL(reconnect_run(r, now), RECONNECT_CONNECT);
            reconnect_connect_failed(r, now, ECONNREFUSED);
            long long int when = reconnect_wait(r, now);
            waits[run][i] = when - now;
            CU_ASSERT(waits[run][i] >= 1000);
            CU_ASSERT(waits[run][i] <= 1500);
            now = when;
        }
        reconnect_destroy(r);
    }
    bool varied = false;
    for (int i = 0; i < 50; i++) {
        CU_ASSERT_EQUAL(waits[0][i], waits[1][i]);
        varied |= waits[0][i] != waits[0][0];
    }
    CU_ASSERT(varied);

    /* pct is capped at 100. */
    struct reconnect *r = reconnect_create(0);
    reconnect_set_backoff(r, 1000, 1000);
    reconnect_set_jitter(r, 1000, 0);
    reconnect_enable(r, 0);
    long long int now = 0;
    for (int i = 0; i < 100; i++) {
        reconnect_run(r, now);
        reconnect_connect_failed(r, now, ECONNREFUSED);
        long long int w = reconnect_wait(r, now) - now;
        CU_ASSERT(w >= 1000 && w <= 2000);
        now += w;
    }
    reconnect_destroy(r);
}

static void
test_random_walk(void)
{
    /* Random events in random order never break the invariants: wait()
     * is never before the state was entered, run() never returns an action
     * that does not fit the state, and backoff stays within bounds. */
    uint64_t seed = 2024;
    struct reconnect *r = reconnect_create(0);
    long long int now = 0;

    reconnect_set_backoff(r, 100, 3200);
    reconnect_set_probe_interval(r, 1000);
    reconnect_set_jitter(r, 20, 5);
    reconnect_enable(r, now);
    for (int i = 0; i < 20000; i++) {
        now += unit_random(&seed) % 3000;
        enum reconnect_state before = reconnect_get_state(r);
        enum reconnect_action a = reconnect_run(r, now);
        switch (a) {
        case RECONNECT_CONNECT:
            CU_ASSERT_EQUAL(before, RECONNECT_S_BACKOFF);
            reconnect_connecting(r, now);
            break;
        case RECONNECT_DISCONNECT:
            CU_ASSERT(before == RECONNECT_S_CONNECTING
                      || before == RECONNECT_S_IDLE
                      || before == RECONNECT_S_ACTIVE);
            reconnect_disconnected(r, now, 0);
            break;
        case RECONNECT_PROBE:
            CU_ASSERT_EQUAL(before, RECONNECT_S_ACTIVE);
            CU_ASSERT_EQUAL(reconnect_get_state(r), RECONNECT_S_IDLE);
            break;
        case RECONNECT_NONE:
            CU_ASSERT(reconnect_wait(r, now) > now);
            break;
        }
        switch (unit_random(&seed) % 6) {
        case 0:
            reconnect_connected(r, now);
            break;
        case 1:
            reconnect_connect_failed(r, now, ECONNREFUSED);
            break;
        case 2:
            reconnect_disconnected(r, now, EPIPE);
            break;
        case 3:
            reconnect_activity(r, now);
            break;
        case 4:
            if (unit_random(&seed) % 50 == 0) {
                reconnect_force_reconnect(r, now);
            }
            break;
        default:
            break;
        }
        int b = reconnect_get_backoff(r);
        CU_ASSERT(b == 0 || (b >= 100 && b <= 3200));
        CU_ASSERT(reconnect_is_enabled(r));
    }
    reconnect_destroy(r);
}

static const struct unit_test tests[] = {
    { "defaults", test_defaults },
    { "backoff doubling", test_backoff_doubling },
    { "connect timeout", test_connect_timeout },
    { "probe", test_probe },
    { "force reconnect", test_force_reconnect },
    { "no retry", test_no_retry },
    { "jitter", test_jitter },
    { "random walk", test_random_walk },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("reconnect", tests);
}
