/* Copyright (c) 2026 The chand authors.  See chan-sender.h. */

#include <config.h>
#include "chan-sender.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chan-wire.h"

struct chan_sender_msg {
    struct chan_sender_msg *next;
    uint64_t first_seq;
    unsigned int n_chunks;
    size_t chunk_size;          /* Payload bytes per chunk but the last. */
    uint8_t flags;
    void *cookie;
    size_t len;
    uint8_t payload[];
};

struct chan_sender {
    struct chan_sender_params p;
    size_t chunk_size;
    uint32_t epoch;
    uint8_t *key;
    size_t key_len;
    chan_sender_done_func *done;
    chan_sender_first_tx_func *first_tx;
    void *aux;

    /* Messages in seq order, oldest (holding 'una') first. */
    struct chan_sender_msg *head, *tail;
    size_t n_msgs;
    size_t n_bytes;             /* Payload bytes of the queued messages. */

    uint64_t una;               /* Oldest unacknowledged seq. */
    uint64_t snd_nxt;           /* Next seq to transmit. */
    uint64_t max_sent;          /* Highest seq ever transmitted. */
    uint64_t next_seq;          /* Next seq to assign. */
    uint64_t fr_una;            /* 'una' at the last fast retransmit. */

    /* Congestion window, in frames: how much of 'p.window' may be in
     * flight.  Halved when a loss shows, grown back as acks come. */
    unsigned int cwnd;
    unsigned int ssthresh;      /* Below it cwnd grows fast. */
    unsigned int cwnd_acked;    /* Frames acked toward the next +1. */

    long long deadline;         /* Retransmission deadline (in flight). */
    unsigned int rto;           /* Current timeout, ms. */
    unsigned int timeouts;      /* Consecutive, without progress. */
    uint64_t rng;

    struct chan_sender_stats stats;
    uint8_t frame[CHAN_WIRE_MAX_FRAME];
};

static unsigned int
default_if_zero(unsigned int value, unsigned int dflt)
{
    return value ? value : dflt;
}

struct chan_sender *
chan_sender_create(const struct chan_sender_params *params, uint32_t epoch,
                   const void *key, size_t key_len,
                   chan_sender_done_func *done, void *aux)
{
    struct chan_sender *s = calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    s->p = *params;
    s->p.mtu = default_if_zero(s->p.mtu, CHAN_WIRE_DEFAULT_MTU);
    s->p.window = default_if_zero(s->p.window, CHAN_SENDER_DEFAULT_WINDOW);
    s->cwnd = s->ssthresh = s->p.window;
    s->p.rto_ms = default_if_zero(s->p.rto_ms, CHAN_SENDER_DEFAULT_RTO_MS);
    s->p.rto_max_ms = default_if_zero(s->p.rto_max_ms,
                                      CHAN_SENDER_DEFAULT_RTO_MAX_MS);
    if (s->p.rto_max_ms < s->p.rto_ms) {
        s->p.rto_max_ms = s->p.rto_ms;
    }
    s->chunk_size = chan_wire_max_payload(s->p.mtu);
    if (!s->chunk_size) {
        free(s);
        return NULL;
    }
    s->done = done;
    s->aux = aux;
    s->rng = params->seed ? params->seed : 0x2545f4914f6cdd1dULL;
    chan_sender_set_key(s, key, key_len);
    chan_sender_reset(s, epoch);
    return s;
}

static void
discard_all(struct chan_sender *s)
{
    while (s->head) {
        struct chan_sender_msg *m = s->head;
        s->head = m->next;
        if (s->done) {
            s->done(m->cookie, false, s->aux);
        }
        free(m);
    }
    s->tail = NULL;
    s->n_msgs = 0;
    s->n_bytes = 0;
}

void
chan_sender_destroy(struct chan_sender *s)
{
    if (s) {
        discard_all(s);
        free(s->key);
        free(s);
    }
}

void
chan_sender_set_first_tx(struct chan_sender *s,
                         chan_sender_first_tx_func *first_tx)
{
    s->first_tx = first_tx;
}

void
chan_sender_reset(struct chan_sender *s, uint32_t epoch)
{
    discard_all(s);
    s->epoch = epoch;
    s->una = s->snd_nxt = s->next_seq = 1;
    s->max_sent = 0;
    s->fr_una = 0;
    s->deadline = LLONG_MAX;
    s->rto = s->p.rto_ms;
    s->timeouts = 0;
}

void
chan_sender_reset_at(struct chan_sender *s, uint32_t epoch,
                     uint64_t first_seq)
{
    chan_sender_reset(s, epoch);
    s->una = s->snd_nxt = s->next_seq = first_seq ? first_seq : 1;
    s->max_sent = s->una - 1;
    s->fr_una = 0;
}

void
chan_sender_set_key(struct chan_sender *s, const void *key, size_t key_len)
{
    free(s->key);
    s->key = NULL;
    s->key_len = 0;
    if (key_len) {
        s->key = malloc(key_len);
        if (s->key) {
            memcpy(s->key, key, key_len);
            s->key_len = key_len;
        }
    }
}

int
chan_sender_set_mtu(struct chan_sender *s, unsigned int mtu)
{
    size_t chunk_size = chan_wire_max_payload(mtu);
    if (!chunk_size) {
        return EINVAL;
    }
    s->p.mtu = mtu;
    s->chunk_size = chunk_size;
    return 0;
}

unsigned int
chan_sender_mtu(const struct chan_sender *s)
{
    return s->p.mtu;
}

size_t
chan_sender_max_queued_chunk(const struct chan_sender *s)
{
    size_t max = 0;
    for (const struct chan_sender_msg *m = s->head; m; m = m->next) {
        size_t chunk = m->len < m->chunk_size ? m->len : m->chunk_size;
        if (chunk > max) {
            max = chunk;
        }
    }
    return max;
}

uint32_t
chan_sender_epoch(const struct chan_sender *s)
{
    return s->epoch;
}

int
chan_sender_queue(struct chan_sender *s, uint8_t flags, const void *payload,
                  size_t len, void *cookie, uint64_t *last_seqp)
{
    size_t n_chunks = len ? (len + s->chunk_size - 1) / s->chunk_size : 1;
    if (n_chunks > UINT16_MAX || flags & ~CHAN_WIRE_F_SNAPSHOT) {
        return EMSGSIZE;
    }

    struct chan_sender_msg *m = malloc(sizeof *m + len);
    if (!m) {
        return ENOMEM;
    }
    m->next = NULL;
    m->first_seq = s->next_seq;
    m->n_chunks = n_chunks;
    m->chunk_size = s->chunk_size;
    m->flags = flags;
    m->cookie = cookie;
    m->len = len;
    if (len) {
        memcpy(m->payload, payload, len);
    }
    if (s->tail) {
        s->tail->next = m;
    } else {
        s->head = m;
    }
    s->tail = m;
    s->n_msgs++;
    s->n_bytes += len;
    s->next_seq += n_chunks;
    s->stats.msgs_queued++;
    if (last_seqp) {
        *last_seqp = s->next_seq - 1;
    }
    return 0;
}

static uint64_t
msg_last_seq(const struct chan_sender_msg *m)
{
    return m->first_seq + m->n_chunks - 1;
}

/* Randomizes 'ms' by up to +-25%. */
static long long
jitter(struct chan_sender *s, unsigned int ms)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    unsigned int span = ms / 2 + 1;
    return (long long) ms - ms / 4 + (long long) ((x * 0x2545f4914f6cdd1dULL)
                                                  >> 33) % span;
}

static void
arm_timer(struct chan_sender *s, long long now)
{
    s->deadline = s->max_sent >= s->una ? now + jitter(s, s->rto) : LLONG_MAX;
}

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static unsigned int
min_cwnd(const struct chan_sender *s)
{
    return min_u64(CHAN_SENDER_MIN_CWND, s->p.window);
}

/* Frames that may be in flight now, if the next to send carries
 * 'frame_len' payload bytes: the congestion window, capped by the window
 * in bytes at that frame size.  A receiver's socket buffer holds bytes,
 * not frames: 256 jumbo frames overflow what holds 256 standard ones,
 * while small frames (one small record each) need no cap but the window. */
static uint64_t
flight_limit(const struct chan_sender *s, size_t frame_len)
{
    uint64_t limit = s->cwnd;
    if (s->p.window_bytes) {
        uint64_t frames = s->p.window_bytes / (frame_len ? frame_len : 1);
        limit = min_u64(limit, frames ? frames : 1);
    }
    return limit;
}

/* A loss showed: halve the congestion window ('timeout': and start again
 * from the minimum, growing fast up to half the old window). */
static void
cwnd_loss(struct chan_sender *s, bool timeout)
{
    s->ssthresh = s->cwnd / 2 > min_cwnd(s) ? s->cwnd / 2 : min_cwnd(s);
    s->cwnd = timeout ? min_cwnd(s) : s->ssthresh;
    s->cwnd_acked = 0;
}

/* 'n' more frames were acknowledged: below 'ssthresh' the window grows by
 * as much (doubling per round trip), above it by one frame per window's
 * worth of acks, up to 'p.window'. */
static void
cwnd_acked(struct chan_sender *s, uint64_t n)
{
    if (s->cwnd < s->ssthresh) {
        s->cwnd = min_u64(s->cwnd + n, s->ssthresh);
        return;
    }
    s->cwnd_acked += min_u64(n, s->p.window);
    while (s->cwnd_acked >= s->cwnd && s->cwnd < s->p.window) {
        s->cwnd_acked -= s->cwnd;
        s->cwnd++;
    }
}

static int
ack_up_to(struct chan_sender *s, uint64_t ack, long long now)
{
    if (ack > s->max_sent) {
        s->stats.bad_acks++;
        return ERANGE;
    }
    if (ack < s->una) {
        return 0;               /* Old or duplicate ack. */
    }
    s->stats.frames_acked += ack - s->una + 1;
    cwnd_acked(s, ack - s->una + 1);
    s->una = ack + 1;
    if (s->snd_nxt < s->una) {
        s->snd_nxt = s->una;
    }
    while (s->head && msg_last_seq(s->head) <= ack) {
        struct chan_sender_msg *m = s->head;
        s->head = m->next;
        if (!s->head) {
            s->tail = NULL;
        }
        s->n_msgs--;
        s->n_bytes -= m->len;
        s->stats.msgs_acked++;
        if (s->done) {
            s->done(m->cookie, true, s->aux);
        }
        free(m);
    }
    s->timeouts = 0;
    s->rto = s->p.rto_ms;
    arm_timer(s, now);
    return 0;
}

int
chan_sender_ack(struct chan_sender *s, uint64_t ack, long long now)
{
    if (ack + 1 == s->una && s->max_sent >= s->una && s->una > s->fr_una) {
        /* A duplicate ack with frames in flight: the receiver got a frame
         * past a gap (or a duplicate) and holds nothing beyond 'ack' (it
         * drops frames past a gap).  Go back to the oldest unacknowledged
         * frame now instead of at the timer; not again before acks make
         * progress, since until then a duplicate ack may predate the
         * frames just sent again. */
        s->fr_una = s->una;
        s->snd_nxt = s->una;
        s->stats.fast_retransmits++;
        cwnd_loss(s, false);
        return 0;
    }
    return ack_up_to(s, ack, now);
}

bool
chan_sender_can_rewind(const struct chan_sender *s, uint64_t position)
{
    uint64_t oldest = s->head ? s->head->first_seq : s->una;
    return position <= s->max_sent && position + 1 >= oldest;
}

int
chan_sender_rewind(struct chan_sender *s, uint64_t position, long long now)
{
    if (!chan_sender_can_rewind(s, position)) {
        s->stats.bad_acks++;
        return ERANGE;
    }
    int error = ack_up_to(s, position, now);
    if (!error) {
        if (position + 1 < s->una) {
            s->una = position + 1;      /* Back into a partial message. */
        }
        s->snd_nxt = position + 1;
        s->deadline = LLONG_MAX;
    }
    return error;
}

/* Returns the message that holds 'seq', which must be queued. */
static const struct chan_sender_msg *
find_msg(const struct chan_sender *s, uint64_t seq)
{
    const struct chan_sender_msg *m = s->head;
    while (m && msg_last_seq(m) < seq) {
        m = m->next;
    }
    return m;
}

/* The payload bytes of frame 'seq' of message 'm'. */
static size_t
frame_len(const struct chan_sender_msg *m, uint64_t seq)
{
    size_t offset = (size_t) (seq - m->first_seq) * m->chunk_size;
    return m->len - offset < m->chunk_size ? m->len - offset
                                           : m->chunk_size;
}

static void
emit_frame(struct chan_sender *s, const struct chan_sender_msg *m,
           uint64_t seq, chan_sender_emit_func *emit, void *aux)
{
    unsigned int index = seq - m->first_seq;
    size_t offset = (size_t) index * m->chunk_size;
    size_t n = m->len - offset < m->chunk_size ? m->len - offset
                                                : m->chunk_size;
    struct chan_wire_header h = {
        .type = CHAN_WIRE_DATA,
        .flags = m->flags,
        .vid = s->p.vid,
        .epoch = s->epoch,
        .seq = seq,
        .chunk_index = index,
        .chunk_count = m->n_chunks,
    };
    size_t len;
    if (!chan_wire_encode(&h, m->payload + offset, n, s->key, s->key_len,
                          s->frame, sizeof s->frame, &len)) {
        emit(s->frame, len, aux);
        if (len > s->stats.max_frame) {
            s->stats.max_frame = len;
        }
    }
    if (seq > s->max_sent) {
        s->max_sent = seq;
        s->stats.frames_sent++;
        if (seq == m->first_seq && s->first_tx) {
            s->first_tx(m->cookie, s->aux);
        }
    } else {
        s->stats.frames_resent++;
    }
}

void
chan_sender_run(struct chan_sender *s, long long now,
                chan_sender_emit_func *emit, void *aux)
{
    if (s->max_sent >= s->una && now >= s->deadline) {
        /* Go back N: everything from the oldest unacknowledged frame. */
        s->snd_nxt = s->una;
        s->stats.timeouts++;
        s->timeouts++;
        cwnd_loss(s, true);
        s->rto = s->rto * 2 > s->p.rto_max_ms ? s->p.rto_max_ms : s->rto * 2;
    }

    const struct chan_sender_msg *m = NULL;
    bool sent = false;
    while (s->snd_nxt < s->next_seq) {
        if (!m || msg_last_seq(m) < s->snd_nxt) {
            m = m ? m->next : find_msg(s, s->snd_nxt);
        }
        if (s->snd_nxt >= s->una + flight_limit(s, frame_len(m,
                                                             s->snd_nxt))) {
            break;
        }
        emit_frame(s, m, s->snd_nxt++, emit, aux);
        sent = true;
    }
    if ((sent && s->deadline == LLONG_MAX) || now >= s->deadline) {
        arm_timer(s, now);
    }
}

long long
chan_sender_next_deadline(const struct chan_sender *s, long long now)
{
    if (s->snd_nxt < s->next_seq
        && s->snd_nxt < s->una
                        + flight_limit(s, frame_len(find_msg(s, s->snd_nxt),
                                                    s->snd_nxt))) {
        return now;
    }
    return s->deadline;
}

bool
chan_sender_is_idle(const struct chan_sender *s)
{
    return !s->head;
}

unsigned int
chan_sender_timeouts(const struct chan_sender *s)
{
    return s->timeouts;
}

uint64_t
chan_sender_last_seq(const struct chan_sender *s)
{
    return s->next_seq - 1;
}

uint64_t
chan_sender_acked_seq(const struct chan_sender *s)
{
    return s->una - 1;
}

unsigned int
chan_sender_cwnd(const struct chan_sender *s)
{
    return s->cwnd;
}

size_t
chan_sender_in_flight(const struct chan_sender *s)
{
    return s->max_sent >= s->una ? s->max_sent - s->una + 1 : 0;
}

size_t
chan_sender_queued_msgs(const struct chan_sender *s)
{
    return s->n_msgs;
}

size_t
chan_sender_queued_bytes(const struct chan_sender *s)
{
    return s->n_bytes;
}

void
chan_sender_get_stats(const struct chan_sender *s,
                      struct chan_sender_stats *stats)
{
    *stats = s->stats;
}
