/*
 * poll-loop: chand's single-threaded event loop, after Open vSwitch's.
 *
 * A program's main loop calls each module's foo_run() to do work, then each
 * module's foo_wait() to say what it waits for (poll_fd_wait(),
 * poll_timer_wait(), ...), then poll_block(), which sleeps in poll(2) until
 * one of those events happens and then forgets all the registered waits.
 * The state is global and not thread-safe: use it from one thread only.
 *
 * Time comes from CLOCK_MONOTONIC in milliseconds (time_msec()); modules
 * that are pure state machines take 'now' as a parameter instead of calling
 * time_msec() themselves, so that tests can drive them with a fake clock.
 *
 * fatal_signal_init() installs SIGTERM/SIGINT/SIGHUP handlers that record
 * the signal and wake poll_block() through a self-pipe, so that a daemon's
 * loop can check fatal_signal_received() and exit cleanly.
 */
#ifndef POLL_LOOP_H
#define POLL_LOOP_H 1

#include <poll.h>
#include <stdbool.h>

/* Current time on the monotonic clock, in milliseconds / microseconds. */
long long int time_msec(void);
long long int time_usec(void);

/* Current wall-clock time in milliseconds since the Unix epoch (for log
 * timestamps and anything shown to people; never for timeouts). */
long long int time_wall_msec(void);

/* Makes the next poll_block() wake when 'fd' is ready for 'events' (POLLIN
 * and/or POLLOUT; POLLERR/POLLHUP always wake it).  Waiting on the same fd
 * twice merges the event masks.  'fd' is borrowed: the caller keeps it open
 * until poll_block() returns. */
void poll_fd_wait(int fd, short events);

/* Makes the next poll_block() wake after at most 'msec' milliseconds from
 * now (0 or negative: immediately). */
void poll_timer_wait(long long int msec);

/* Makes the next poll_block() wake no later than 'when' (an absolute
 * time_msec() value; a value in the past wakes immediately; LLONG_MAX means
 * no timeout). */
void poll_timer_wait_until(long long int when);

/* Makes the next poll_block() return immediately. */
void poll_immediate_wake(void);

/* Sleeps until one of the registered events happens (or forever if nothing
 * was registered, unless a fatal signal arrives after fatal_signal_init()),
 * then clears all registrations.  EINTR is not an error. */
void poll_block(void);

/* Clears all registered waits without sleeping (tests use this). */
void poll_cancel(void);

/* Revents seen for 'fd' by the most recent poll_block(), or 0 if 'fd' was
 * not waited on or not ready (tests and diagnostics). */
short poll_fd_revents(int fd);

/* Installs handlers for SIGTERM, SIGINT and SIGHUP that record the signal
 * and wake poll_block(); also ignores SIGPIPE.  Idempotent. */
void fatal_signal_init(void);

/* True once a fatal signal has been received after fatal_signal_init(). */
bool fatal_signal_received(void);

/* The number of the first fatal signal received, or 0. */
int fatal_signal_number(void);

/* Simulates receipt of 'sig' (tests; also lets a program request its own
 * orderly shutdown, e.g. from an "exit" control command). */
void fatal_signal_raise(int sig);

#endif /* poll-loop.h */
