/* reconnect: see reconnect.h. */

#include <config.h>
#include "reconnect.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Shortest allowed timeout for a connection attempt (ms). */
#define MIN_CONNECT_TIMEOUT 1000

/* Smallest nonzero probe interval (ms). */
#define MIN_PROBE_INTERVAL 1000

struct reconnect {
    char *name;
    int min_backoff;
    int max_backoff;
    int probe_interval;
    unsigned int jitter_pct;
    uint64_t rng;
    bool retry;

    enum reconnect_state state;
    long long int state_entered;
    int backoff;                /* Current backoff (ms); 0 before the first
                                 * failure. */
    long long int wait;         /* In BACKOFF: ms from state_entered. */
    bool forced;                /* Disconnect requested by
                                 * reconnect_force_reconnect(). */
    long long int last_activity;
    long long int last_connected;
    int last_error;
    unsigned int n_attempts;
    unsigned int n_successes;
};

static void
transition(struct reconnect *r, long long int now,
           enum reconnect_state state)
{
    r->state = state;
    r->state_entered = now;
}

struct reconnect *
reconnect_create(long long int now)
{
    struct reconnect *r = xzalloc(sizeof *r);

    r->min_backoff = RECONNECT_DEFAULT_MIN_BACKOFF;
    r->max_backoff = RECONNECT_DEFAULT_MAX_BACKOFF;
    r->probe_interval = RECONNECT_DEFAULT_PROBE_INTERVAL;
    r->retry = true;
    r->rng = 0x9e3779b97f4a7c15ULL;
    transition(r, now, RECONNECT_S_VOID);
    return r;
}

void
reconnect_destroy(struct reconnect *r)
{
    if (r) {
        free(r->name);
        free(r);
    }
}

void
reconnect_set_name(struct reconnect *r, const char *name)
{
    free(r->name);
    r->name = name ? strdup(name) : NULL;
}

const char *
reconnect_get_name(const struct reconnect *r)
{
    return r->name ? r->name : "void";
}

void
reconnect_set_backoff(struct reconnect *r, int min_backoff, int max_backoff)
{
    r->min_backoff = min_backoff < 1 ? 1 : min_backoff;
    r->max_backoff = max_backoff < r->min_backoff ? r->min_backoff
                                                  : max_backoff;
    if (r->backoff > r->max_backoff) {
        r->backoff = r->max_backoff;
    }
}

int
reconnect_get_min_backoff(const struct reconnect *r)
{
    return r->min_backoff;
}

int
reconnect_get_max_backoff(const struct reconnect *r)
{
    return r->max_backoff;
}

void
reconnect_set_probe_interval(struct reconnect *r, int probe_interval)
{
    if (probe_interval <= 0) {
        r->probe_interval = 0;
    } else {
        r->probe_interval = (probe_interval < MIN_PROBE_INTERVAL
                             ? MIN_PROBE_INTERVAL : probe_interval);
    }
}

int
reconnect_get_probe_interval(const struct reconnect *r)
{
    return r->probe_interval;
}

void
reconnect_set_jitter(struct reconnect *r, unsigned int jitter_pct,
                     unsigned long long int seed)
{
    r->jitter_pct = jitter_pct > 100 ? 100 : jitter_pct;
    r->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

void
reconnect_set_retry(struct reconnect *r, bool retry)
{
    r->retry = retry;
}

/* xorshift64*: deterministic for a given seed. */
static uint64_t
next_random(struct reconnect *r)
{
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static long long int
jittered(struct reconnect *r, int backoff)
{
    if (!r->jitter_pct || backoff <= 0) {
        return backoff;
    }
    uint64_t pct = next_random(r) % (r->jitter_pct + 1);
    return backoff + (long long int) backoff * pct / 100;
}

void
reconnect_enable(struct reconnect *r, long long int now)
{
    if (r->state == RECONNECT_S_VOID) {
        r->backoff = 0;
        r->wait = 0;
        r->forced = false;
        transition(r, now, RECONNECT_S_BACKOFF);
    }
}

void
reconnect_disable(struct reconnect *r, long long int now)
{
    r->forced = false;
    transition(r, now, RECONNECT_S_VOID);
}

bool
reconnect_is_enabled(const struct reconnect *r)
{
    return r->state != RECONNECT_S_VOID;
}

void
reconnect_force_reconnect(struct reconnect *r, long long int now)
{
    switch (r->state) {
    case RECONNECT_S_VOID:
        break;
    case RECONNECT_S_BACKOFF:
        r->wait = 0;
        r->state_entered = now;
        break;
    case RECONNECT_S_CONNECTING:
    case RECONNECT_S_ACTIVE:
    case RECONNECT_S_IDLE:
        r->forced = true;
        break;
    }
}

void
reconnect_connecting(struct reconnect *r, long long int now)
{
    if (r->state != RECONNECT_S_CONNECTING) {
        r->n_attempts++;
        transition(r, now, RECONNECT_S_CONNECTING);
    }
}

bool
reconnect_is_connected(const struct reconnect *r)
{
    return r->state == RECONNECT_S_ACTIVE || r->state == RECONNECT_S_IDLE;
}

void
reconnect_connected(struct reconnect *r, long long int now)
{
    if (!reconnect_is_connected(r)) {
        r->n_successes++;
        r->last_connected = now;
        r->last_activity = now;
        r->last_error = 0;
        transition(r, now, RECONNECT_S_ACTIVE);
    }
}

void
reconnect_disconnected(struct reconnect *r, long long int now, int error)
{
    if (r->state == RECONNECT_S_VOID || r->state == RECONNECT_S_BACKOFF) {
        return;
    }

    bool was_connected = reconnect_is_connected(r);
    bool forced = r->forced;

    r->last_error = error;
    r->forced = false;
    if (!r->retry) {
        transition(r, now, RECONNECT_S_VOID);
        return;
    }

    if (was_connected && now - r->last_connected >= r->max_backoff) {
        /* The connection was good for a while: start over. */
        r->backoff = r->min_backoff;
    } else if (r->backoff < r->min_backoff) {
        r->backoff = r->min_backoff;
    } else if (r->backoff <= r->max_backoff / 2) {
        r->backoff *= 2;
    } else {
        r->backoff = r->max_backoff;
    }
    r->wait = forced ? 0 : jittered(r, r->backoff);
    transition(r, now, RECONNECT_S_BACKOFF);
}

void
reconnect_connect_failed(struct reconnect *r, long long int now, int error)
{
    reconnect_connecting(r, now);
    reconnect_disconnected(r, now, error);
}

void
reconnect_activity(struct reconnect *r, long long int now)
{
    if (r->state == RECONNECT_S_IDLE) {
        transition(r, now, RECONNECT_S_ACTIVE);
    }
    r->last_activity = now;
}

static long long int
connect_timeout(const struct reconnect *r)
{
    return r->backoff > MIN_CONNECT_TIMEOUT ? r->backoff
                                            : MIN_CONNECT_TIMEOUT;
}

static long long int
add_sat(long long int a, long long int b)
{
    return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

long long int
reconnect_wait(const struct reconnect *r, long long int now)
{
    switch (r->state) {
    case RECONNECT_S_VOID:
        return LLONG_MAX;

    case RECONNECT_S_BACKOFF:
        return add_sat(r->state_entered, r->wait);

    case RECONNECT_S_CONNECTING:
        return r->forced ? now : add_sat(r->state_entered,
                                         connect_timeout(r));

    case RECONNECT_S_ACTIVE:
        if (r->forced) {
            return now;
        } else if (!r->probe_interval) {
            return LLONG_MAX;
        } else {
            long long int base = (r->last_activity > r->state_entered
                                  ? r->last_activity : r->state_entered);
            return add_sat(base, r->probe_interval);
        }

    case RECONNECT_S_IDLE:
        if (r->forced) {
            return now;
        }
        return (r->probe_interval
                ? add_sat(r->state_entered, r->probe_interval)
                : LLONG_MAX);
    }
    return LLONG_MAX;
}

enum reconnect_action
reconnect_run(struct reconnect *r, long long int now)
{
    if (now < reconnect_wait(r, now)) {
        return RECONNECT_NONE;
    }

    switch (r->state) {
    case RECONNECT_S_VOID:
        return RECONNECT_NONE;

    case RECONNECT_S_BACKOFF:
        return RECONNECT_CONNECT;

    case RECONNECT_S_CONNECTING:
    case RECONNECT_S_IDLE:
        return RECONNECT_DISCONNECT;

    case RECONNECT_S_ACTIVE:
        if (r->forced) {
            return RECONNECT_DISCONNECT;
        }
        transition(r, now, RECONNECT_S_IDLE);
        return RECONNECT_PROBE;
    }
    return RECONNECT_NONE;
}

enum reconnect_state
reconnect_get_state(const struct reconnect *r)
{
    return r->state;
}

const char *
reconnect_state_name(enum reconnect_state state)
{
    switch (state) {
    case RECONNECT_S_VOID:
        return "VOID";
    case RECONNECT_S_BACKOFF:
        return "BACKOFF";
    case RECONNECT_S_CONNECTING:
        return "CONNECTING";
    case RECONNECT_S_ACTIVE:
        return "ACTIVE";
    case RECONNECT_S_IDLE:
        return "IDLE";
    }
    return "UNKNOWN";
}

int
reconnect_get_backoff(const struct reconnect *r)
{
    return r->backoff;
}

long long int
reconnect_get_connection_duration(const struct reconnect *r,
                                  long long int now)
{
    return reconnect_is_connected(r) ? now - r->last_connected : 0;
}

int
reconnect_get_last_error(const struct reconnect *r)
{
    return r->last_error;
}

unsigned int
reconnect_get_n_attempts(const struct reconnect *r)
{
    return r->n_attempts;
}

unsigned int
reconnect_get_n_successes(const struct reconnect *r)
{
    return r->n_successes;
}
