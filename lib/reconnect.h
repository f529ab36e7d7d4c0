/*
 * reconnect: when to connect, back off, probe and give up on a connection,
 * after Open vSwitch's lib/reconnect but much smaller.
 *
 * This is a pure state machine: it does no I/O and never reads the clock.
 * Every call takes 'now' (milliseconds, normally time_msec()).  The owner
 * tells it what happened (reconnect_connected(), reconnect_connect_failed(),
 * reconnect_disconnected(), reconnect_activity()), asks reconnect_run() what
 * to do next, and reconnect_wait() when to ask again.
 *
 * States: VOID (disabled), BACKOFF (waiting before the next attempt),
 * CONNECTING, ACTIVE (connected, traffic seen recently), IDLE (connected,
 * probe sent, waiting for any traffic).
 *
 * Backoff: after a failure or a disconnection the machine waits 'backoff'
 * ms before the next attempt.  The first wait is min_backoff (default 1000
 * ms); each further consecutive failure doubles it, capped at max_backoff
 * (default 8000 ms).  A connection that stayed up for at least max_backoff
 * ms resets the backoff to min on the next disconnection; a shorter one keeps
 * doubling.  An optional jitter adds up to 'jitter_pct' percent of the
 * backoff, drawn from a deterministic PRNG seeded by the caller.
 *
 * Inactivity probe: if 'probe_interval' (ms) is nonzero, a connection that
 * has seen no activity for probe_interval ms gets RECONNECT_PROBE (the owner
 * sends an echo request) and moves to IDLE; if a further probe_interval
 * passes with no activity, RECONNECT_DISCONNECT.  So a dead peer is detected
 * after 2 * probe_interval at most.
 *
 * Connection attempts time out too: CONNECTING lasts at most
 * max(1000, backoff) ms before RECONNECT_DISCONNECT.
 */
#ifndef RECONNECT_H
#define RECONNECT_H 1

#include <stdbool.h>

struct reconnect;

#define RECONNECT_DEFAULT_MIN_BACKOFF 1000
#define RECONNECT_DEFAULT_MAX_BACKOFF 8000
#define RECONNECT_DEFAULT_PROBE_INTERVAL 5000

enum reconnect_action {
    RECONNECT_NONE = 0,         /* Nothing to do now. */
    RECONNECT_CONNECT,          /* Start a connection attempt; then call
                                 * reconnect_connecting(). */
    RECONNECT_DISCONNECT,       /* Drop the connection (or the attempt);
                                 * then call reconnect_disconnected(). */
    RECONNECT_PROBE             /* Send an inactivity probe (echo). */
};

enum reconnect_state {
    RECONNECT_S_VOID,
    RECONNECT_S_BACKOFF,
    RECONNECT_S_CONNECTING,
    RECONNECT_S_ACTIVE,
    RECONNECT_S_IDLE
};

/* Creates a new machine in VOID state with default settings (min 1000 ms,
 * max 8000 ms, probe 5000 ms, no jitter, retrying).  The caller frees it
 * with reconnect_destroy(). */
struct reconnect *reconnect_create(long long int now);
void reconnect_destroy(struct reconnect *);

/* Sets the name used in log messages ('name' is copied; NULL → "void"). */
void reconnect_set_name(struct reconnect *, const char *name);
const char *reconnect_get_name(const struct reconnect *);

/* Sets the backoff range.  'min' < 1 becomes 1; 'max' < min becomes min. */
void reconnect_set_backoff(struct reconnect *, int min_backoff,
                           int max_backoff);
int reconnect_get_min_backoff(const struct reconnect *);
int reconnect_get_max_backoff(const struct reconnect *);

/* Sets the inactivity probe interval in ms (0 disables probing; nonzero
 * values below 1000 become 1000). */
void reconnect_set_probe_interval(struct reconnect *, int probe_interval);
int reconnect_get_probe_interval(const struct reconnect *);

/* Adds a random 0..jitter_pct percent to each backoff (0 disables; capped
 * at 100), from a PRNG seeded with 'seed'. */
void reconnect_set_jitter(struct reconnect *, unsigned int jitter_pct,
                          unsigned long long int seed);

/* If 'retry' is false, the first failure or disconnection moves the
 * machine to VOID for good instead of backing off (one-shot connections,
 * e.g. accepted ones). */
void reconnect_set_retry(struct reconnect *, bool retry);

/* Starts trying to connect (VOID → BACKOFF with no wait, so the next
 * reconnect_run() says RECONNECT_CONNECT).  No-op if already enabled. */
void reconnect_enable(struct reconnect *, long long int now);
/* Stops trying (any state → VOID). */
void reconnect_disable(struct reconnect *, long long int now);
bool reconnect_is_enabled(const struct reconnect *);

/* Makes the next reconnect_run() return RECONNECT_DISCONNECT if connected
 * or connecting, and then reconnect immediately (no backoff wait).  In
 * BACKOFF, cuts the wait short. */
void reconnect_force_reconnect(struct reconnect *, long long int now);

/* Event notifications. */
void reconnect_connecting(struct reconnect *, long long int now);
void reconnect_connected(struct reconnect *, long long int now);
/* 'error' is a positive errno (for logging and reconnect_get_last_error). */
void reconnect_connect_failed(struct reconnect *, long long int now,
                              int error);
/* 'error' is 0 for a clean EOF, otherwise a positive errno. */
void reconnect_disconnected(struct reconnect *, long long int now,
                            int error);
/* Something was received on the connection. */
void reconnect_activity(struct reconnect *, long long int now);

/* What to do now. */
enum reconnect_action reconnect_run(struct reconnect *, long long int now);

/* The time at which reconnect_run() next has something to do, or LLONG_MAX
 * if never (VOID, or connected with no probe interval).  Pass it to
 * poll_timer_wait_until(). */
long long int reconnect_wait(const struct reconnect *, long long int now);

/* Queries. */
enum reconnect_state reconnect_get_state(const struct reconnect *);
const char *reconnect_state_name(enum reconnect_state);
bool reconnect_is_connected(const struct reconnect *);
/* The current backoff in ms (0 before the first failure): the wait before
 * the next attempt, before jitter, while in BACKOFF. */
int reconnect_get_backoff(const struct reconnect *);
/* Milliseconds connected, or 0 if not connected. */
long long int reconnect_get_connection_duration(const struct reconnect *,
                                                long long int now);
int reconnect_get_last_error(const struct reconnect *);
unsigned int reconnect_get_n_attempts(const struct reconnect *);
unsigned int reconnect_get_n_successes(const struct reconnect *);

#endif /* reconnect.h */
