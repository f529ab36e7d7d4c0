/* Tests for lib/poll-loop. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include "poll-loop.h"

static void
test_clock_monotonic(void)
{
    long long int a = time_msec();
    long long int ua = time_usec();
    long long int b = time_msec();
    long long int ub = time_usec();

    CU_ASSERT(a > 0);
    CU_ASSERT(b >= a);
    CU_ASSERT(ub >= ua);
    /* usec and msec come from the same clock. */
    CU_ASSERT(ua / 1000 >= a - 1);
    CU_ASSERT(ua / 1000 <= b + 1);
    /* Wall clock is after 2020-01-01. */
    CU_ASSERT(time_wall_msec() > 1577836800000LL);
}

/* Upper bound, in ms, on how long poll_block() may take past the timeout
 * it was given.  Very loose on purpose: it only tells "woke because of that
 * timer" from "woke because of something else, or much later", so that a
 * slow or loaded machine does not make the tests flaky. */
#define SLACK_MSEC 5000

static void
test_timer_wakes(void)
{
    long long int start = time_msec();
    long long int elapsed;

    poll_timer_wait(20);
    poll_block();
    /* It must not wake early, nor long after the timeout. */
    elapsed = time_msec() - start;
    CU_ASSERT(elapsed >= 20);
    CU_ASSERT(elapsed < 20 + SLACK_MSEC);

    start = time_msec();
    poll_timer_wait_until(start + 15);
    poll_timer_wait_until(start + 100000); /* Later ones don't matter. */
    poll_block();
    elapsed = time_msec() - start;
    CU_ASSERT(elapsed >= 15);
    CU_ASSERT(elapsed < 15 + SLACK_MSEC);
}

/* Adds to what the caller registered (since 'start') a wait on 'fd', which
 * must never be readable, and a timer of twice SLACK_MSEC, then blocks and
 * asserts that the caller's registration woke poll_block() at once: not the
 * fd, and well before the fallback timer.  If the caller's wait were
 * ignored, poll_block() would return after the fallback timer and an
 * assertion fail (rather than the test hang). */
static void
assert_wakes_at_once(int fd, long long int start)
{
    poll_fd_wait(fd, POLLIN);
    poll_timer_wait(2 * SLACK_MSEC);
    poll_block();

    long long int elapsed = time_msec() - start;
    CU_ASSERT(elapsed >= 0);
    CU_ASSERT(elapsed < SLACK_MSEC);
    CU_ASSERT_EQUAL(poll_fd_revents(fd), 0);
}

static void
test_timer_past_and_zero(void)
{
    long long int start;
    int fds[2];

    /* Deadlines in the past and zero or negative timeouts wake at once.
     * The alarm bounds the whole case should poll_block() never return. */
    CU_ASSERT_FATAL(pipe(fds) == 0);
    alarm(60);

    start = time_msec();
    poll_timer_wait_until(start - 1000);
    assert_wakes_at_once(fds[0], start);

    start = time_msec();
    poll_timer_wait_until(LLONG_MIN);
    assert_wakes_at_once(fds[0], start);

    start = time_msec();
    poll_timer_wait(0);
    assert_wakes_at_once(fds[0], start);

    start = time_msec();
    poll_timer_wait(-5);
    assert_wakes_at_once(fds[0], start);

    alarm(0);
    close(fds[0]);
    close(fds[1]);
}

static void
test_immediate_wake(void)
{
    int fds[2];

    CU_ASSERT_FATAL(pipe(fds) == 0);
    alarm(30);
    poll_fd_wait(fds[0], POLLIN);   /* Never readable. */
    poll_timer_wait(1000000);
    poll_immediate_wake();
    poll_block();
    alarm(0);
    CU_ASSERT_EQUAL(poll_fd_revents(fds[0]), 0);
    close(fds[0]);
    close(fds[1]);
}

static void
test_fd_readiness(void)
{
    int fds[2];

    CU_ASSERT_FATAL(pipe2(fds, O_NONBLOCK) == 0);
    alarm(30);

    /* Writable end is ready for POLLOUT, read end not for POLLIN. */
    poll_fd_wait(fds[0], POLLIN);
    poll_fd_wait(fds[1], POLLOUT);
    poll_block();
    CU_ASSERT(poll_fd_revents(fds[1]) & POLLOUT);
    CU_ASSERT_EQUAL(poll_fd_revents(fds[0]), 0);

    /* After a write, the read end becomes readable. */
    CU_ASSERT_EQUAL(write(fds[1], "x", 1), 1);
    poll_fd_wait(fds[0], POLLIN);
    poll_block();
    CU_ASSERT(poll_fd_revents(fds[0]) & POLLIN);
    CU_ASSERT_EQUAL(poll_fd_revents(fds[1]), 0);   /* Not waited on. */

    /* Waiting twice on the same fd merges the events. */
    poll_fd_wait(fds[0], POLLOUT);
    poll_fd_wait(fds[0], POLLIN);
    poll_block();
    CU_ASSERT(poll_fd_revents(fds[0]) & POLLIN);

    /* Closing the write end gives POLLHUP on the read end once drained. */
    char c;
    CU_ASSERT_EQUAL(read(fds[0], &c, 1), 1);
    close(fds[1]);
    poll_fd_wait(fds[0], POLLIN);
    poll_block();
    CU_ASSERT(poll_fd_revents(fds[0]) & POLLHUP);
    alarm(0);
    close(fds[0]);
}

static void
test_cancel_clears(void)
{
    int fds[2];

    CU_ASSERT_FATAL(pipe(fds) == 0);
    CU_ASSERT_EQUAL(write(fds[1], "x", 1), 1);
    poll_fd_wait(fds[0], POLLIN);
    poll_cancel();

    /* The registration is gone: only the timer wakes this block. */
    poll_timer_wait(1);
    poll_block();
    CU_ASSERT_EQUAL(poll_fd_revents(fds[0]), 0);

    /* poll_block() also clears: a readable fd registered before the
     * previous block is not polled again. */
    poll_fd_wait(fds[0], POLLIN);
    poll_block();
    CU_ASSERT(poll_fd_revents(fds[0]) & POLLIN);
    poll_timer_wait(1);
    poll_block();
    CU_ASSERT_EQUAL(poll_fd_revents(fds[0]), 0);

    /* Negative fds are ignored. */
    poll_fd_wait(-1, POLLIN);
    poll_timer_wait(1);
    poll_block();
    close(fds[0]);
    close(fds[1]);
}

static void
test_many_fds(void)
{
    enum { N = 100 };
    int fds[N][2];

    for (int i = 0; i < N; i++) {
        CU_ASSERT_FATAL(pipe(fds[i]) == 0);
    }
    CU_ASSERT_EQUAL(write(fds[N / 2][1], "x", 1), 1);
    alarm(30);
    for (int i = 0; i < N; i++) {
        poll_fd_wait(fds[i][0], POLLIN);
    }
    poll_block();
    alarm(0);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(!!(poll_fd_revents(fds[i][0]) & POLLIN),
                        i == N / 2);
        close(fds[i][0]);
        close(fds[i][1]);
    }
}

static void
test_fatal_signal(void)
{
    fatal_signal_init();
    fatal_signal_init();        /* Idempotent. */
    CU_ASSERT_FALSE(fatal_signal_received());
    CU_ASSERT_EQUAL(fatal_signal_number(), 0);

    /* A real SIGTERM wakes a poll_block() that waits for nothing else. */
    alarm(30);
    CU_ASSERT_EQUAL(raise(SIGTERM), 0);
    poll_block();
    alarm(0);
    CU_ASSERT_TRUE(fatal_signal_received());
    CU_ASSERT_EQUAL(fatal_signal_number(), SIGTERM);

    /* Once received, poll_block() never sleeps again. */
    alarm(30);
    poll_block();
    poll_block();
    alarm(0);

    /* The first signal is the one reported. */
    fatal_signal_raise(SIGINT);
    CU_ASSERT_EQUAL(fatal_signal_number(), SIGTERM);

    /* SIGPIPE is ignored: writing to a closed pipe gives EPIPE. */
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    close(fds[0]);
    CU_ASSERT_EQUAL(write(fds[1], "x", 1), -1);
    CU_ASSERT_EQUAL(errno, EPIPE);
    close(fds[1]);
}

static const struct unit_test tests[] = {
    { "clock", test_clock_monotonic },
    { "timer wakes", test_timer_wakes },
    { "timer past and zero", test_timer_past_and_zero },
    { "immediate wake", test_immediate_wake },
    { "fd readiness", test_fd_readiness },
    { "cancel clears", test_cancel_clears },
    { "many fds", test_many_fds },
    /* Last: it leaves the fatal-signal state set. */
    { "fatal signal", test_fatal_signal },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("poll-loop", tests);
}
