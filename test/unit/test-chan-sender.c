/* CUnit suite for lib/chan-sender: a lossy fake link and a strict in-order
 * receiver check that every message is acknowledged exactly once, in order,
 * whatever is lost. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chan-sender.h"
#include "chan-wire.h"

#define MAX_MSGS 4096

static const char key[] = "k";

struct link {
    /* Receiver state. */
    uint32_t epoch;
    uint64_t position;          /* Last in-order seq received. */
    unsigned int frames_seen;
    unsigned int dups;
    struct chan_reasm *reasm;
    unsigned int delivered;     /* Messages reassembled in order. */
    size_t delivered_bytes;

    /* Loss model. */
    uint64_t rng;
    unsigned int loss_pct;
    uint64_t drop_seq;          /* Drop this seq... */
    unsigned int drop_times;    /* ...this many times. */

    /* Sender callbacks. */
    int done_order[MAX_MSGS];
    unsigned int n_done;
    unsigned int n_discarded;
    bool bad_frame;
};

static void
done_cb(void *cookie, bool acked, void *aux)
{
    struct link *l = aux;
    if (acked) {
        l->done_order[l->n_done++] = (int) (intptr_t) cookie;
    } else {
        l->n_discarded++;
    }
}

static void
emit_cb(const uint8_t *frame, size_t len, void *aux)
{
    struct link *l = aux;
    if (l->loss_pct && unit_random(&l->rng) % 100 < l->loss_pct) {
        return;
    }
    struct chan_wire_header h;
    const uint8_t *payload;
    if (chan_wire_decode(frame, len, key, strlen(key), &h, &payload)
        || h.type != CHAN_WIRE_DATA || h.epoch != l->epoch) {
        l->bad_frame = true;
        return;
    }
    if (h.seq == l->drop_seq && l->drop_times) {
        l->drop_times--;
        return;
    }
    l->frames_seen++;
    if (h.seq != l->position + 1) {
        l->dups += h.seq <= l->position;
        return;
    }
    struct chan_msg msg;
    bool complete;
    if (chan_reasm_feed(l->reasm, &h, payload, &msg, &complete)) {
        l->bad_frame = true;
        return;
    }
    l->position = h.seq;
    if (complete) {
        l->delivered++;
        l->delivered_bytes += msg.len;
    }
}

static struct chan_sender *
make_sender(struct link *l, unsigned int window, uint32_t epoch)
{
    memset(l, 0, sizeof *l);
    l->epoch = epoch;
    l->rng = 42;
    l->reasm = chan_reasm_create(0);
    struct chan_sender_params p = { .vid = 4094, .window = window,
                                    .rto_ms = 100, .rto_max_ms = 800,
                                    .seed = 7 };
    return chan_sender_create(&p, epoch, key, strlen(key), done_cb, l);
}

/* Drives sender and link until idle or 'limit' steps; the receiver acks
 * its position after every step, as chand-guest does after each group
 * commit. */
static void
drive(struct chan_sender *s, struct link *l, long long *now, int limit)
{
    for (int i = 0; i < limit && !chan_sender_is_idle(s); i++) {
        chan_sender_run(s, *now, emit_cb, l);
        if (!l->loss_pct || unit_random(&l->rng) % 100 >= l->loss_pct) {
            CU_ASSERT_EQUAL(chan_sender_ack(s, l->position, *now), 0);
        }
        long long next = chan_sender_next_deadline(s, *now);
        *now = next > *now && next != LLONG_MAX ? next : *now + 1;
    }
}

static void
test_lossless_in_order(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 16, 5);
    long long now = 1000;
    for (int i = 0; i < 100; i++) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "{\"n\":%d}", i);
        CU_ASSERT_EQUAL(chan_sender_queue(s, 0, buf, n,
                                          (void *) (intptr_t) i, NULL), 0);
    }
    CU_ASSERT_EQUAL(chan_sender_last_seq(s), 100);
    CU_ASSERT(chan_sender_queued_bytes(s) > 100 * 7);
    drive(s, &l, &now, 1000);
    CU_ASSERT_EQUAL(chan_sender_queued_bytes(s), 0);
    CU_ASSERT_TRUE(chan_sender_is_idle(s));
    CU_ASSERT_EQUAL(l.n_done, 100);
    for (unsigned int i = 0; i < l.n_done; i++) {
        CU_ASSERT_EQUAL(l.done_order[i], (int) i);
    }
    struct chan_sender_stats st;
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.frames_sent, 100);
    CU_ASSERT_EQUAL(st.frames_resent, 0);
    CU_ASSERT_FALSE(l.bad_frame);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static void
test_window_bounds_in_flight(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 8, 5);
    for (int i = 0; i < 20; i++) {
        chan_sender_queue(s, 0, "{}", 2, NULL, NULL);
    }
    l.loss_pct = 100;           /* Nothing arrives. */
    chan_sender_run(s, 0, emit_cb, &l);
    CU_ASSERT_EQUAL(chan_sender_in_flight(s), 8);
    CU_ASSERT_TRUE(chan_sender_next_deadline(s, 0) > 0);
    CU_ASSERT_TRUE(chan_sender_next_deadline(s, 0) < LLONG_MAX);
    chan_sender_destroy(s);
    CU_ASSERT_EQUAL(l.n_discarded, 20);
    chan_reasm_destroy(l.reasm);
}

static void
test_backoff_grows_and_caps(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 8, 5);
    chan_sender_queue(s, 0, "{}", 2, NULL, NULL);
    l.loss_pct = 100;
    long long now = 0, prev_gap = 0;
    chan_sender_run(s, now, emit_cb, &l);
    for (int i = 0; i < 10; i++) {
        long long next = chan_sender_next_deadline(s, now);
        long long gap = next - now;
        CU_ASSERT_TRUE(gap <= 800 + 200);
        if (i > 0 && i < 3) {
            CU_ASSERT_TRUE(gap > prev_gap);
        }
        prev_gap = gap;
        now = next;
        chan_sender_run(s, now, emit_cb, &l);
    }
    CU_ASSERT_EQUAL(chan_sender_timeouts(s), 10);
    struct chan_sender_stats st;
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.frames_resent, 10);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static void
test_loss_exactly_once(void)
{
    static const unsigned int losses[] = { 5, 20, 50 };
    for (size_t k = 0; k < sizeof losses / sizeof *losses; k++) {
        struct link l;
        struct chan_sender *s = make_sender(&l, 32, 9);
        l.loss_pct = losses[k];
        long long now = 0;
        for (int i = 0; i < 500; i++) {
            char buf[3000];
            size_t n = 2 + unit_random(&l.rng) % 2900;
            memset(buf, 'x', n);
            chan_sender_queue(s, 0, buf, n, (void *) (intptr_t) i, NULL);
        }
        drive(s, &l, &now, 2000000);
        CU_ASSERT_TRUE(chan_sender_is_idle(s));
        CU_ASSERT_EQUAL(l.n_done, 500);
        CU_ASSERT_EQUAL(l.delivered, 500);
        for (unsigned int i = 0; i < l.n_done; i++) {
            CU_ASSERT_EQUAL(l.done_order[i], (int) i);
        }
        CU_ASSERT_FALSE(l.bad_frame);
        chan_sender_destroy(s);
        chan_reasm_destroy(l.reasm);
    }
}

/* A lost frame in the middle of a window: the receiver's repeated ack
 * brings it back before the timer, once per step of progress. */
static void
test_fast_retransmit(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 16, 3);
    struct chan_sender_stats st;

    for (int i = 0; i < 10; i++) {
        chan_sender_queue(s, 0, "{}", 2, (void *) (intptr_t) i, NULL);
    }
    l.drop_seq = 3;
    l.drop_times = 2;
    chan_sender_run(s, 0, emit_cb, &l);
    CU_ASSERT_EQUAL(l.position, 2);             /* 4..10 past the gap. */
    CU_ASSERT_EQUAL(chan_sender_ack(s, 2, 0), 0);   /* Progress. */
    CU_ASSERT_EQUAL(chan_sender_ack(s, 2, 1), 0);   /* Duplicate: gap. */
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.fast_retransmits, 1);
    CU_ASSERT_EQUAL(chan_sender_next_deadline(s, 1), 1);   /* Due now. */
    chan_sender_run(s, 1, emit_cb, &l);         /* 3 is lost again. */
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.frames_resent, 8);
    CU_ASSERT_EQUAL(st.timeouts, 0);

    /* Not again before acks make progress: the timer takes over. */
    CU_ASSERT_EQUAL(chan_sender_ack(s, 2, 2), 0);
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.fast_retransmits, 1);
    long long now = chan_sender_next_deadline(s, 2);
    CU_ASSERT(now >= 100);                      /* rto_ms. */
    drive(s, &l, &now, 100);
    CU_ASSERT_TRUE(chan_sender_is_idle(s));
    CU_ASSERT_EQUAL(l.n_done, 10);
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.timeouts, 1);

    /* Nothing in flight: a repeated ack changes nothing. */
    CU_ASSERT_EQUAL(chan_sender_ack(s, 10, now), 0);
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.fast_retransmits, 1);
    CU_ASSERT_FALSE(l.bad_frame);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

/* The congestion window: halved on a gap, down to the floor on a timeout,
 * grown back by acks. */
static void
test_congestion_window(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 64, 3);
    long long now = 0;

    CU_ASSERT_EQUAL(chan_sender_cwnd(s), 64);
    for (int i = 0; i < 400; i++) {
        chan_sender_queue(s, 0, "{}", 2, NULL, NULL);
    }
    l.drop_seq = 10;
    l.drop_times = 1;
    chan_sender_run(s, now, emit_cb, &l);
    CU_ASSERT_EQUAL(l.frames_seen, 64 - 1);
    CU_ASSERT_EQUAL(chan_sender_ack(s, 9, now), 0);
    CU_ASSERT_EQUAL(chan_sender_ack(s, 9, now), 0);      /* Gap. */
    CU_ASSERT_EQUAL(chan_sender_cwnd(s), 32);
    unsigned int seen = l.frames_seen;
    chan_sender_run(s, now, emit_cb, &l);
    CU_ASSERT_EQUAL(l.frames_seen - seen, 32);          /* 10..41. */

    /* Nothing acked: the timer fires, the window drops to the floor. */
    l.loss_pct = 100;
    now = chan_sender_next_deadline(s, now);
    chan_sender_run(s, now, emit_cb, &l);
    CU_ASSERT_EQUAL(chan_sender_cwnd(s), CHAN_SENDER_MIN_CWND);

    /* Lossless again: everything delivered, the window grows back, fast
     * to half its old size, then slowly to the whole window. */
    l.loss_pct = 0;
    drive(s, &l, &now, 100000);
    CU_ASSERT_TRUE(chan_sender_is_idle(s));
    CU_ASSERT_EQUAL(l.n_done, 400);
    CU_ASSERT(chan_sender_cwnd(s) > CHAN_SENDER_MIN_CWND);
    CU_ASSERT(chan_sender_cwnd(s) < 64);
    for (int i = 0; i < 3000; i++) {     /* MAX_MSGS in all. */
        chan_sender_queue(s, 0, "{}", 2, NULL, NULL);
    }
    drive(s, &l, &now, 100000);
    CU_ASSERT_EQUAL(l.n_done, 3400);
    CU_ASSERT_EQUAL(chan_sender_cwnd(s), 64);
    CU_ASSERT_FALSE(l.bad_frame);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static void
test_bad_ack_rejected(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 8, 5);
    chan_sender_queue(s, 0, "{}", 2, NULL, NULL);
    CU_ASSERT_EQUAL(chan_sender_ack(s, 1, 0), ERANGE);  /* Not yet sent. */
    chan_sender_run(s, 0, emit_cb, &l);
    CU_ASSERT_EQUAL(chan_sender_ack(s, 2, 0), ERANGE);
    CU_ASSERT_EQUAL(chan_sender_ack(s, 0, 0), 0);       /* Old: ignored. */
    CU_ASSERT_EQUAL(chan_sender_ack(s, 1, 0), 0);
    CU_ASSERT_TRUE(chan_sender_is_idle(s));
    struct chan_sender_stats st;
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.bad_acks, 2);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static void
test_rewind_resends_from_position(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 64, 5);
    for (int i = 0; i < 10; i++) {
        chan_sender_queue(s, 0, "{}", 2, (void *) (intptr_t) i, NULL);
    }
    chan_sender_run(s, 0, emit_cb, &l);
    CU_ASSERT_EQUAL(l.position, 10);
    /* The receiver lost everything after 4 (e.g. a crash before commit). */
    l.position = 4;
    chan_reasm_reset(l.reasm);
    CU_ASSERT_EQUAL(chan_sender_rewind(s, 4, 1), 0);
    CU_ASSERT_EQUAL(l.n_done, 4);
    CU_ASSERT_EQUAL(chan_sender_next_deadline(s, 1), 1);
    chan_sender_run(s, 1, emit_cb, &l);
    CU_ASSERT_EQUAL(l.position, 10);
    CU_ASSERT_EQUAL(chan_sender_ack(s, 10, 2), 0);
    CU_ASSERT_EQUAL(l.n_done, 10);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static void
test_reset_discards_and_restarts(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 8, 5);
    for (int i = 0; i < 3; i++) {
        chan_sender_queue(s, 0, "{}", 2, NULL, NULL);
    }
    chan_sender_reset(s, 6);
    CU_ASSERT_EQUAL(l.n_discarded, 3);
    CU_ASSERT_EQUAL(chan_sender_epoch(s), 6);
    CU_ASSERT_EQUAL(chan_sender_last_seq(s), 0);
    l.epoch = 6;
    chan_sender_queue(s, CHAN_WIRE_F_SNAPSHOT, "{}", 2, NULL, NULL);
    chan_sender_run(s, 0, emit_cb, &l);
    CU_ASSERT_EQUAL(l.position, 1);
    CU_ASSERT_FALSE(l.bad_frame);
    CU_ASSERT_EQUAL(chan_sender_queue(s, 0x80, "{}", 2, NULL, NULL),
                    EMSGSIZE);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static void
test_reset_at_continues_epoch(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 8, 5);
    chan_sender_reset_at(s, 5, 41);
    l.position = 40;            /* The receiver applied up to 40. */
    CU_ASSERT_EQUAL(chan_sender_acked_seq(s), 40);
    CU_ASSERT_EQUAL(chan_sender_in_flight(s), 0);
    CU_ASSERT_EQUAL(chan_sender_ack(s, 40, 0), 0);      /* Old ack: fine. */
    CU_ASSERT_EQUAL(chan_sender_ack(s, 41, 0), ERANGE); /* Not sent yet. */
    uint64_t last;
    chan_sender_queue(s, 0, "{}", 2, (void *) (intptr_t) 1, &last);
    CU_ASSERT_EQUAL(last, 41);
    chan_sender_run(s, 0, emit_cb, &l);
    CU_ASSERT_EQUAL(l.position, 41);
    CU_ASSERT_EQUAL(chan_sender_ack(s, 41, 1), 0);
    CU_ASSERT_EQUAL(l.n_done, 1);
    CU_ASSERT_FALSE(l.bad_frame);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static void
test_rewind_into_partial_message(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 64, 5);
    char big[5000];
    memset(big, 'z', sizeof big);
    chan_sender_queue(s, 0, "{}", 2, (void *) (intptr_t) 1, NULL);  /* 1 */
    chan_sender_queue(s, 0, big, sizeof big, (void *) (intptr_t) 2,
                      NULL);                                     /* 2..5 */
    chan_sender_run(s, 0, emit_cb, &l);
    /* The receiver acked seq 1 (applied) and chunks 2..3 (received, not
     * applied), then restarted: its durable position is 1. */
    CU_ASSERT_EQUAL(chan_sender_ack(s, 3, 1), 0);
    CU_ASSERT_EQUAL(l.n_done, 1);
    CU_ASSERT_TRUE(chan_sender_can_rewind(s, 1));
    CU_ASSERT_FALSE(chan_sender_can_rewind(s, 0));  /* Message 1 is gone. */
    CU_ASSERT_FALSE(chan_sender_can_rewind(s, 6));  /* Never sent. */
    CU_ASSERT_EQUAL(chan_sender_rewind(s, 0, 2), ERANGE);
    CU_ASSERT_EQUAL(chan_sender_rewind(s, 1, 2), 0);
    l.position = 1;
    chan_reasm_reset(l.reasm);
    chan_sender_run(s, 2, emit_cb, &l);
    CU_ASSERT_EQUAL(l.position, 5);     /* Chunks 2..5 sent again. */
    CU_ASSERT_EQUAL(l.delivered, 3);    /* Message 2 again, complete. */
    CU_ASSERT_EQUAL(chan_sender_ack(s, 5, 3), 0);
    CU_ASSERT_EQUAL(l.n_done, 2);
    CU_ASSERT_TRUE(chan_sender_is_idle(s));
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static void
test_large_message_chunked(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 64, 5);
    size_t n = 1 << 20;
    char *big = malloc(n);
    memset(big, 'y', n);
    uint64_t last;
    CU_ASSERT_EQUAL(chan_sender_queue(s, 0, big, n, NULL, &last), 0);
    CU_ASSERT_EQUAL(last, (n + 1419) / 1420);
    long long now = 0;
    drive(s, &l, &now, 100000);
    CU_ASSERT_EQUAL(l.delivered, 1);
    CU_ASSERT_EQUAL(l.delivered_bytes, n);
    free(big);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static const struct unit_test tests[] = {
    { "lossless in order", test_lossless_in_order },
    { "window bounds in flight", test_window_bounds_in_flight },
    { "backoff grows and caps", test_backoff_grows_and_caps },
    { "loss: exactly once, in order", test_loss_exactly_once },
    { "fast retransmit on a duplicate ack", test_fast_retransmit },
    { "congestion window", test_congestion_window },
    { "bad ack rejected", test_bad_ack_rejected },
    { "rewind resends from position", test_rewind_resends_from_position },
    { "reset discards and restarts", test_reset_discards_and_restarts },
    { "reset_at continues an epoch", test_reset_at_continues_epoch },
    { "rewind into a partial message", test_rewind_into_partial_message },
    { "large message chunked", test_large_message_chunked },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("chan-sender", tests);
}
