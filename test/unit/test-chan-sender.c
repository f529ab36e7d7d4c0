/* CUnit suite for lib/chan-sender: a fake link that loses, duplicates and
 * reorders frames, and a receiver that, as chand-guest does, takes only the
 * next frame in sequence, check that every message is applied and
 * acknowledged exactly once, in order, whatever the link does. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chan-sender.h"
#include "chan-wire.h"

#define MAX_MSGS 4096

/* Frames the link can hold back at once, and their largest size (the
 * sender's default MTU). */
#define HELD_MAX 8
#define HELD_FRAME_MAX (CHAN_WIRE_DEFAULT_MTU - CHAN_WIRE_IP_UDP_LEN)

static const char key[] = "k";

struct held_frame {
    uint8_t data[HELD_FRAME_MAX];
    size_t len;
};

struct link {
    /* Receiver state. */
    uint32_t epoch;
    uint64_t position;          /* Last in-order seq received. */
    unsigned int frames_seen;
    unsigned int dups;          /* Frames at or before 'position'. */
    unsigned int gaps;          /* Frames past 'position' + 1. */
    struct chan_reasm *reasm;
    unsigned int delivered;     /* Messages reassembled in order. */
    size_t delivered_bytes;

    /* Numbered messages ("#<n>:...") applied: how many times each one, how
     * many in all, and how many were not the next number expected. */
    unsigned int applied[MAX_MSGS];
    unsigned int n_applied;
    unsigned int misordered;

    /* Link model. */
    uint64_t rng;
    unsigned int loss_pct;
    unsigned int dup_pct;       /* Frames sent twice. */
    unsigned int hold_pct;      /* Frames held back, to arrive later. */
    struct held_frame held[HELD_MAX];
    size_t n_held;
    unsigned int link_dups;     /* Frames the link duplicated... */
    unsigned int link_held;     /* ...and held back. */
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

/* Returns the number n of a message that starts with "#<n>:", or -1. */
static int
msg_number(const struct chan_msg *msg)
{
    int n = 0;
    size_t i;

    if (msg->len < 3 || msg->data[0] != '#') {
        return -1;
    }
    for (i = 1; i < msg->len && msg->data[i] >= '0' && msg->data[i] <= '9';
         i++) {
        n = n * 10 + (msg->data[i] - '0');
        if (n >= MAX_MSGS) {
            return -1;
        }
    }
    return i > 1 && i < msg->len && msg->data[i] == ':' ? n : -1;
}

/* Applies a complete message, as chand-guest commits it to its datastore. */
static void
apply_msg(struct link *l, const struct chan_msg *msg)
{
    int n = msg_number(msg);

    l->delivered++;
    l->delivered_bytes += msg->len;
    if (n >= 0) {
        l->applied[n]++;
        l->misordered += n != (int) l->n_applied;
        l->n_applied++;
    }
}

/* The receiver: as chand-guest's handle_data(), it takes a frame only if it
 * is the next in sequence after 'position'.  An older one is a duplicate and
 * a newer one is past a gap (the sender fills it); both are dropped.  So a
 * message is applied at most once, whatever the link duplicates or
 * reorders. */
static void
receive_frame(struct link *l, const uint8_t *frame, size_t len)
{
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
    if (h.seq <= l->position) {
        l->dups++;
        return;
    } else if (h.seq > l->position + 1) {
        l->gaps++;
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
        apply_msg(l, &msg);
    }
}

/* The link: loses a frame with probability 'loss_pct', otherwise passes it
 * on, twice with probability 'dup_pct'; each copy is held back (see
 * link_release()) with probability 'hold_pct'. */
static void
emit_cb(const uint8_t *frame, size_t len, void *aux)
{
    struct link *l = aux;
    int copies = 1;

    if (l->loss_pct && unit_random(&l->rng) % 100 < l->loss_pct) {
        return;
    }
    if (l->dup_pct && unit_random(&l->rng) % 100 < l->dup_pct) {
        copies = 2;
        l->link_dups++;
    }
    for (int i = 0; i < copies; i++) {
        if (l->hold_pct && l->n_held < HELD_MAX && len <= HELD_FRAME_MAX
            && unit_random(&l->rng) % 100 < l->hold_pct) {
            struct held_frame *hf = &l->held[l->n_held++];
            memcpy(hf->data, frame, len);
            hf->len = len;
            l->link_held++;
        } else {
            receive_frame(l, frame, len);
        }
    }
}

/* Delivers about half of the frames the link holds back, newest first, so
 * that they arrive after frames sent later and out of order among
 * themselves; the rest stay held for a later call. */
static void
link_release(struct link *l)
{
    size_t n_kept = 0;

    for (size_t i = l->n_held; i-- > 0; ) {
        if (unit_random(&l->rng) % 2) {
            receive_frame(l, l->held[i].data, l->held[i].len);
            l->held[i].len = 0;
        }
    }
    for (size_t i = 0; i < l->n_held; i++) {
        if (l->held[i].len) {
            l->held[n_kept++] = l->held[i];
        }
    }
    l->n_held = n_kept;
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

/* Drives sender and link until idle or 'limit' steps; frames the link held
 * back may arrive after each step's new ones, and the receiver acks its
 * position after every step, as chand-guest does after each group
 * commit. */
static void
drive(struct chan_sender *s, struct link *l, long long *now, int limit)
{
    for (int i = 0; i < limit && !chan_sender_is_idle(s); i++) {
        chan_sender_run(s, *now, emit_cb, l);
        if (l->n_held) {
            link_release(l);
        }
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

/* The window in bytes caps the frames in flight at the frame size (the
 * default MTU's 1,420-byte chunks here): 10,000 bytes are 7 frames, and a
 * window smaller than one frame still lets one through. */
static void
test_window_bytes_bounds_in_flight(void)
{
    static const size_t bytes[] = { 10000, 100, 0 };
    static const size_t expect[] = { 7, 1, 32 };
    for (size_t k = 0; k < sizeof bytes / sizeof *bytes; k++) {
        struct link l;
        memset(&l, 0, sizeof l);
        l.reasm = chan_reasm_create(0);
        struct chan_sender_params p = { .vid = 4094, .window = 32,
                                        .window_bytes = bytes[k],
                                        .rto_ms = 100, .rto_max_ms = 800,
                                        .seed = 7 };
        struct chan_sender *s = chan_sender_create(&p, 5, key, strlen(key),
                                                   done_cb, &l);
        char big[20000];
        memset(big, ' ', sizeof big);
        big[0] = '[';
        big[sizeof big - 1] = ']';
        for (int i = 0; i < 3; i++) {       /* 3 x 15 frames. */
            chan_sender_queue(s, 0, big, sizeof big, NULL, NULL);
        }
        l.loss_pct = 100;
        chan_sender_run(s, 0, emit_cb, &l);
        CU_ASSERT_EQUAL(chan_sender_in_flight(s), expect[k]);
        chan_sender_destroy(s);
        chan_reasm_destroy(l.reasm);
    }

    /* Small frames (one small record each) are held by the frame window
     * only. */
    struct link l;
    memset(&l, 0, sizeof l);
    l.reasm = chan_reasm_create(0);
    struct chan_sender_params p = { .vid = 4094, .window = 32,
                                    .window_bytes = 10000, .rto_ms = 100,
                                    .rto_max_ms = 800, .seed = 7 };
    struct chan_sender *s = chan_sender_create(&p, 5, key, strlen(key),
                                               done_cb, &l);
    for (int i = 0; i < 50; i++) {
        chan_sender_queue(s, 0, "{}", 2, NULL, NULL);
    }
    l.loss_pct = 100;
    chan_sender_run(s, 0, emit_cb, &l);
    CU_ASSERT_EQUAL(chan_sender_in_flight(s), 32);
    chan_sender_destroy(s);
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

/* Under loss, duplication and reordering, each message is applied exactly
 * once, in order, and acknowledged exactly once, in order.  The receiver's
 * sequence check is what keeps the duplicates the link delivers from being
 * applied again; the test checks that there were some. */
static void
test_loss_exactly_once(void)
{
    enum { N_MSGS = 500 };
    static const struct {
        unsigned int loss_pct, dup_pct, hold_pct;
    } links[] = {
        { 0, 20, 20 },
        { 5, 10, 10 },
        { 20, 10, 10 },
        { 50, 10, 10 },
    };
    for (size_t k = 0; k < sizeof links / sizeof *links; k++) {
        struct link l;
        struct chan_sender *s = make_sender(&l, 32, 9);
        l.loss_pct = links[k].loss_pct;
        l.dup_pct = links[k].dup_pct;
        l.hold_pct = links[k].hold_pct;
        long long now = 0;
        for (int i = 0; i < N_MSGS; i++) {
            char buf[3000];
            size_t n = 8 + unit_random(&l.rng) % 2900;
            int prefix = snprintf(buf, sizeof buf, "#%d:", i);
            memset(buf + prefix, 'x', n - prefix);
            chan_sender_queue(s, 0, buf, n, (void *) (intptr_t) i, NULL);
        }
        drive(s, &l, &now, 2000000);
        CU_ASSERT_TRUE(chan_sender_is_idle(s));
        CU_ASSERT_EQUAL(l.n_done, N_MSGS);
        CU_ASSERT_EQUAL(l.delivered, N_MSGS);
        for (unsigned int i = 0; i < l.n_done; i++) {
            CU_ASSERT_EQUAL(l.done_order[i], (int) i);
        }
        CU_ASSERT_EQUAL(l.n_applied, N_MSGS);
        CU_ASSERT_EQUAL(l.misordered, 0);
        for (int i = 0; i < N_MSGS; i++) {
            CU_ASSERT_EQUAL(l.applied[i], 1);
        }

        /* The link did duplicate and reorder, and the receiver did see
         * duplicates and frames past a gap. */
        CU_ASSERT(l.link_dups > 0);
        CU_ASSERT(l.link_held > 0);
        CU_ASSERT(l.dups > 0);
        CU_ASSERT(l.gaps > 0);
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

/* A link that carries jumbo frames: held frames are not used. */
static void
test_mtu_change(void)
{
    struct link l;
    struct chan_sender *s = make_sender(&l, 64, 6);
    size_t n = 100000;
    char *big = malloc(n);
    memset(big, 'z', n);
    uint64_t last;

    CU_ASSERT_EQUAL(chan_sender_mtu(s), 1500);
    CU_ASSERT_EQUAL(chan_sender_set_mtu(s, 575), EINVAL);
    CU_ASSERT_EQUAL(chan_sender_set_mtu(s, 65536), EINVAL);
    CU_ASSERT_EQUAL(chan_sender_mtu(s), 1500);
    CU_ASSERT_EQUAL(chan_sender_max_queued_chunk(s), 0);

    /* Queued at 1500: 1420-byte chunks. */
    CU_ASSERT_EQUAL(chan_sender_queue(s, 0, big, n, NULL, &last), 0);
    CU_ASSERT_EQUAL(last, (n + 1419) / 1420);
    CU_ASSERT_EQUAL(chan_sender_max_queued_chunk(s), 1420);

    /* Queued at 9000: 8920-byte chunks; the first message keeps its own. */
    CU_ASSERT_EQUAL(chan_sender_set_mtu(s, 9000), 0);
    CU_ASSERT_EQUAL(chan_sender_mtu(s), 9000);
    uint64_t last2;
    CU_ASSERT_EQUAL(chan_sender_queue(s, 0, big, n, NULL, &last2), 0);
    CU_ASSERT_EQUAL(last2 - last, (n + 8919) / 8920);
    CU_ASSERT_EQUAL(chan_sender_max_queued_chunk(s), 8920);

    /* Down to 1500 again: the jumbo message is still queued. */
    CU_ASSERT_EQUAL(chan_sender_set_mtu(s, 1500), 0);
    uint64_t last3;
    CU_ASSERT_EQUAL(chan_sender_queue(s, 0, "#0:x", 4, NULL, &last3), 0);
    CU_ASSERT_EQUAL(last3, last2 + 1);
    CU_ASSERT_EQUAL(chan_sender_max_queued_chunk(s), 8920);

    long long now = 0;
    drive(s, &l, &now, 100000);
    CU_ASSERT_FALSE(l.bad_frame);
    CU_ASSERT_EQUAL(l.delivered, 3);
    CU_ASSERT_EQUAL(l.delivered_bytes, 2 * n + 4);
    CU_ASSERT_EQUAL(l.position, last3);

    struct chan_sender_stats st;
    chan_sender_get_stats(s, &st);
    CU_ASSERT_EQUAL(st.max_frame, 8920 + CHAN_WIRE_OVERHEAD);
    CU_ASSERT_EQUAL(chan_sender_max_queued_chunk(s), 0);

    /* A reset keeps the MTU. */
    chan_sender_reset(s, 7);
    CU_ASSERT_EQUAL(chan_sender_mtu(s), 1500);
    free(big);
    chan_sender_destroy(s);
    chan_reasm_destroy(l.reasm);
}

static const struct unit_test tests[] = {
    { "lossless in order", test_lossless_in_order },
    { "window bounds in flight", test_window_bounds_in_flight },
    { "window in bytes bounds in flight",
      test_window_bytes_bounds_in_flight },
    { "backoff grows and caps", test_backoff_grows_and_caps },
    { "loss, duplicates, reordering: exactly once, in order",
      test_loss_exactly_once },
    { "fast retransmit on a duplicate ack", test_fast_retransmit },
    { "congestion window", test_congestion_window },
    { "bad ack rejected", test_bad_ack_rejected },
    { "rewind resends from position", test_rewind_resends_from_position },
    { "reset discards and restarts", test_reset_discards_and_restarts },
    { "reset_at continues an epoch", test_reset_at_continues_epoch },
    { "rewind into a partial message", test_rewind_into_partial_message },
    { "large message chunked", test_large_message_chunked },
    { "MTU change", test_mtu_change },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("chan-sender", tests);
}
