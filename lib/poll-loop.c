/* poll-loop: see poll-loop.h. */

#include <config.h>
#include "poll-loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Registered waits for the next poll_block(). */
static struct pollfd *pollfds;
static size_t n_pollfds, allocated_pollfds;
static long long int timeout_when = LLONG_MAX;

/* What the last poll_block() saw, for poll_fd_revents(). */
static struct pollfd *last_pollfds;
static size_t n_last_pollfds, allocated_last_pollfds;

/* Fatal signal state. */
static int signal_fds[2] = { -1, -1 };
static volatile sig_atomic_t stored_sig_nr;

static long long int
clock_read(clockid_t id, long long int div)
{
    struct timespec ts;

    if (clock_gettime(id, &ts)) {
        /* Cannot happen with a valid clock id; fall back to something
         * monotonic enough rather than aborting. */
        return 0;
    }
    return (long long int) ts.tv_sec * (1000000000LL / div)
           + ts.tv_nsec / div;
}

long long int
time_msec(void)
{
    return clock_read(CLOCK_MONOTONIC, 1000000);
}

long long int
time_usec(void)
{
    return clock_read(CLOCK_MONOTONIC, 1000);
}

long long int
time_wall_msec(void)
{
    return clock_read(CLOCK_REALTIME, 1000000);
}

static void *
grow_array(void *p, size_t *allocated, size_t elem_size)
{
    size_t n = *allocated ? *allocated * 2 : 16;
    void *q = xrealloc(p, n * elem_size);

    *allocated = n;
    return q;
}

void
poll_fd_wait(int fd, short events)
{
    if (fd < 0) {
        return;
    }
    for (size_t i = 0; i < n_pollfds; i++) {
        if (pollfds[i].fd == fd) {
            pollfds[i].events |= events;
            return;
        }
    }
    if (n_pollfds >= allocated_pollfds) {
        pollfds = grow_array(pollfds, &allocated_pollfds, sizeof *pollfds);
    }
    pollfds[n_pollfds].fd = fd;
    pollfds[n_pollfds].events = events;
    pollfds[n_pollfds].revents = 0;
    n_pollfds++;
}

void
poll_timer_wait_until(long long int when)
{
    if (when < timeout_when) {
        timeout_when = when;
    }
}

void
poll_timer_wait(long long int msec)
{
    long long int now = time_msec();

    if (msec <= 0) {
        poll_timer_wait_until(LLONG_MIN);
    } else if (msec > LLONG_MAX - now) {
        /* Practically forever. */
    } else {
        poll_timer_wait_until(now + msec);
    }
}

void
poll_immediate_wake(void)
{
    poll_timer_wait_until(LLONG_MIN);
}

void
poll_cancel(void)
{
    n_pollfds = 0;
    timeout_when = LLONG_MAX;
}

static int
compute_timeout(void)
{
    if (timeout_when == LLONG_MAX) {
        return -1;
    }
    long long int now = time_msec();
    if (timeout_when <= now) {
        return 0;
    }
    long long int delta = timeout_when - now;
    return delta > INT_MAX ? INT_MAX : (int) delta;
}

static void
drain_signal_pipe(void)
{
    char buf[64];

    while (read(signal_fds[0], buf, sizeof buf) > 0) {
        continue;
    }
}

void
poll_block(void)
{
    if (signal_fds[0] >= 0) {
        poll_fd_wait(signal_fds[0], POLLIN);
    }
    if (stored_sig_nr) {
        /* A fatal signal is pending: never sleep, let the caller see it. */
        poll_immediate_wake();
    }

    int timeout = compute_timeout();
    int retval = poll(pollfds, n_pollfds, timeout);
    if (retval < 0 && errno != EINTR) {
        fprintf(stderr, "poll-loop: poll failed (%s)\n", strerror(errno));
    }

    /* Remember the results for poll_fd_revents(). */
    while (allocated_last_pollfds < n_pollfds) {
        last_pollfds = grow_array(last_pollfds, &allocated_last_pollfds,
                                  sizeof *last_pollfds);
    }
    if (n_pollfds) {
        memcpy(last_pollfds, pollfds, n_pollfds * sizeof *pollfds);
    }
    n_last_pollfds = n_pollfds;
    if (retval <= 0) {
        for (size_t i = 0; i < n_last_pollfds; i++) {
            last_pollfds[i].revents = 0;
        }
    }

    if (signal_fds[0] >= 0) {
        drain_signal_pipe();
    }
    poll_cancel();
}

short
poll_fd_revents(int fd)
{
    for (size_t i = 0; i < n_last_pollfds; i++) {
        if (last_pollfds[i].fd == fd) {
            return last_pollfds[i].revents;
        }
    }
    return 0;
}

static void
wake_signal_pipe(void)
{
    if (signal_fds[1] >= 0) {
        int save_errno = errno;
        char c = 0;
        ssize_t n = write(signal_fds[1], &c, 1);
        (void) n;               /* A full pipe is already awake. */
        errno = save_errno;
    }
}

static void
fatal_signal_handler(int sig)
{
    if (!stored_sig_nr) {
        stored_sig_nr = sig;
    }
    wake_signal_pipe();
}

void
fatal_signal_init(void)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };

    if (signal_fds[0] >= 0) {
        return;
    }
    if (pipe2(signal_fds, O_NONBLOCK | O_CLOEXEC)) {
        fprintf(stderr, "poll-loop: pipe failed (%s)\n", strerror(errno));
        abort();
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fatal_signal_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaction(sigs[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
}

bool
fatal_signal_received(void)
{
    return stored_sig_nr != 0;
}

int
fatal_signal_number(void)
{
    return stored_sig_nr;
}

void
fatal_signal_raise(int sig)
{
    if (!stored_sig_nr) {
        stored_sig_nr = sig;
    }
    wake_signal_pipe();
}
