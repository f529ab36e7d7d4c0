/*
 * chan-sender: the sending half of a channel's reliable delivery, as a pure
 * state machine (no I/O, time passed in), in the shape of OVS's reconnect.
 *
 * chand-host keeps one sender per channel.  The caller queues DATA messages;
 * the sender gives each a range of frame sequence numbers (one per chunk),
 * keeps at most 'window' frames unacknowledged (fewer after losses, see
 * chan_sender_cwnd()), hands frames to the caller's 'emit' function when
 * they are due, retransmits from the oldest unacknowledged frame when the
 * retransmission timer expires (go-back-N,
 * exponential backoff with jitter) or when a duplicate ack shows a gap (fast
 * retransmit), and reports each message back to the caller, through its
 * cookie, once a cumulative ack covers its last frame.
 *
 * An epoch names one run of sequence numbers.  chan_sender_reset() starts a
 * new epoch at seq 1 and discards everything queued; the receiver persists
 * its position in the current epoch with its data, so that a message is
 * applied exactly once.
 *
 * Frames are built with chan-wire; the caller wraps them in Ethernet/IPv4/UDP
 * and injects them.
 */
#ifndef CHAN_SENDER_H
#define CHAN_SENDER_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAN_SENDER_DEFAULT_WINDOW 256      /* Frames in flight. */
#define CHAN_SENDER_DEFAULT_RTO_MS 200
#define CHAN_SENDER_DEFAULT_RTO_MAX_MS 4000
#define CHAN_SENDER_MIN_CWND 16             /* Congestion window floor. */

struct chan_sender_params {
    uint16_t vid;               /* Channel vid, 1..4094. */
    unsigned int mtu;           /* IP MTU of the path; 0: 1500. */
    unsigned int window;        /* Frames in flight; 0: default. */
    size_t window_bytes;        /* Payload bytes in flight at most (in
                                 * whole frames, at least one frame); 0: no
                                 * limit but 'window'. */
    unsigned int rto_ms;        /* First retransmission timeout; 0: dflt. */
    unsigned int rto_max_ms;    /* Backoff ceiling; 0: default. */
    uint64_t seed;              /* Jitter PRNG seed. */
};

struct chan_sender_stats {
    uint64_t frames_sent;       /* First transmissions. */
    uint64_t frames_resent;     /* Retransmissions. */
    uint64_t frames_acked;
    uint64_t msgs_queued;
    uint64_t msgs_acked;
    uint64_t timeouts;          /* Retransmission timer expiries. */
    uint64_t fast_retransmits;  /* Go-backs on a duplicate ack. */
    uint64_t bad_acks;          /* Acks beyond what was sent. */
    uint64_t max_frame;         /* Bytes of the largest frame emitted. */
};

/* Called with each frame (a complete chan-wire frame, borrowed for the
 * duration of the call) that is due for transmission. */
typedef void chan_sender_emit_func(const uint8_t *frame, size_t len,
                                   void *aux);

/* Called for each message once acknowledged ('acked' true) or discarded by
 * chan_sender_reset()/chan_sender_destroy() ('acked' false).  'cookie' is
 * the one passed to chan_sender_queue(); ownership returns to the caller. */
typedef void chan_sender_done_func(void *cookie, bool acked, void *aux);

/* Called once per message, when its first frame is transmitted for the
 * first time, with the message's cookie (still owned by the caller) and
 * the 'aux' given to chan_sender_create(). */
typedef void chan_sender_first_tx_func(void *cookie, void *aux);

/* Creates a sender in epoch 'epoch' (nonzero).  'key' (may be NULL if
 * 'key_len' is 0) is copied.  'done' is called as described above with
 * 'aux'.  The caller owns the result; free it with chan_sender_destroy(). */
struct chan_sender *chan_sender_create(const struct chan_sender_params *,
                                       uint32_t epoch,
                                       const void *key, size_t key_len,
                                       chan_sender_done_func *done,
                                       void *aux);

/* Discards every message (calling 'done' with acked = false) and frees the
 * sender. */
void chan_sender_destroy(struct chan_sender *);

/* Sets (or with NULL clears) the callback for first transmissions. */
void chan_sender_set_first_tx(struct chan_sender *,
                              chan_sender_first_tx_func *);

/* Starts epoch 'epoch' (nonzero) at seq 1, discarding every queued and
 * in-flight message as chan_sender_destroy() does. */
void chan_sender_reset(struct chan_sender *, uint32_t epoch);

/* Like chan_sender_reset(), but the first seq of epoch 'epoch' is
 * 'first_seq' (>= 1): used to go on with an epoch whose frames up to
 * first_seq - 1 the receiver is known to have applied. */
void chan_sender_reset_at(struct chan_sender *, uint32_t epoch,
                          uint64_t first_seq);

/* Replaces the authentication key ('key' copied).  Frames not yet emitted,
 * and retransmissions, use the new key. */
void chan_sender_set_key(struct chan_sender *, const void *key,
                         size_t key_len);

uint32_t chan_sender_epoch(const struct chan_sender *);

/* Queues a DATA message of 'len' bytes at 'payload' (copied) with header
 * flags 'flags' (0 or CHAN_WIRE_F_SNAPSHOT).  On success stores the seq of
 * its last frame in '*last_seqp' (if nonnull) and returns 0; 'cookie' comes
 * back through 'done'.  Returns EMSGSIZE if the message cannot be framed,
 * ENOMEM on allocation failure. */
int chan_sender_queue(struct chan_sender *, uint8_t flags,
                      const void *payload, size_t len, void *cookie,
                      uint64_t *last_seqp);

/* Processes cumulative ack 'ack' of the current epoch: every frame with seq
 * <= 'ack' has been applied.  Calls 'done' for each message it completes,
 * in order.  An ack that repeats the last one while later frames are in
 * flight means the receiver saw a gap: the sender goes back to the oldest
 * unacknowledged frame at once (fast retransmit), and not again before acks
 * make progress.  Returns 0, or ERANGE (counted in
 * bad_acks, nothing changed) if 'ack' is beyond the last frame emitted. */
int chan_sender_ack(struct chan_sender *, uint64_t ack, long long now);

/* The receiver reports that it holds everything up to 'position' and
 * nothing after it (e.g. it restarted and lost frames it had received but
 * not applied): acks up to 'position' and transmits again from
 * position + 1 at once.  'position' may lie before frames already acked,
 * as long as it is not before the first frame of the oldest message not
 * yet fully acked (chunks of a message in reassembly are acked, but a
 * receiver that restarts loses them).  Returns 0, or ERANGE (counted in
 * bad_acks, nothing changed) if 'position' is beyond the last frame
 * emitted or before what can be sent again. */
int chan_sender_rewind(struct chan_sender *, uint64_t position,
                       long long now);

/* Sets the IP MTU of the path (CHAN_WIRE_MIN_MTU..MAX_MTU) for the
 * messages queued from now on; those already queued keep the chunk size
 * they were given (their seqs are assigned), and go on being sent and
 * sent again with it.  Returns 0, or EINVAL (nothing changed) if 'mtu' is
 * out of range. */
int chan_sender_set_mtu(struct chan_sender *, unsigned int mtu);
unsigned int chan_sender_mtu(const struct chan_sender *);

/* The payload bytes of the largest frame a queued message still has (0 if
 * none is queued): after lowering the MTU, the caller starts over
 * (chan_sender_reset()) if that no longer fits. */
size_t chan_sender_max_queued_chunk(const struct chan_sender *);

/* True if chan_sender_rewind() to 'position' would succeed. */
bool chan_sender_can_rewind(const struct chan_sender *, uint64_t position);

/* Emits, through 'emit', every frame that is due at time 'now': first
 * transmissions within the window and, if the retransmission timer has
 * expired, retransmissions from the oldest unacknowledged frame. */
void chan_sender_run(struct chan_sender *, long long now,
                     chan_sender_emit_func *emit, void *aux);

/* Returns the time at which chan_sender_run() next has something to do:
 * 'now' if frames can be sent at once, the retransmission deadline if
 * frames are in flight, otherwise LLONG_MAX. */
long long chan_sender_next_deadline(const struct chan_sender *,
                                    long long now);

/* True if nothing is queued or in flight. */
bool chan_sender_is_idle(const struct chan_sender *);

/* Consecutive retransmission timeouts without progress (0 after any ack
 * that advances).  The caller uses it to call a channel degraded. */
unsigned int chan_sender_timeouts(const struct chan_sender *);

/* Highest seq assigned so far (0 if none) and the last acked seq. */
uint64_t chan_sender_last_seq(const struct chan_sender *);
uint64_t chan_sender_acked_seq(const struct chan_sender *);
size_t chan_sender_in_flight(const struct chan_sender *);

/* The congestion window: how many frames may be in flight now (at most the
 * 'window' parameter).  It starts at 'window', is halved when a duplicate
 * ack shows a loss, drops to CHAN_SENDER_MIN_CWND on a timeout, and grows
 * back as frames are acknowledged: fast up to half the window it had, then
 * by one frame per window's worth of acks. */
unsigned int chan_sender_cwnd(const struct chan_sender *);
size_t chan_sender_queued_msgs(const struct chan_sender *);
size_t chan_sender_queued_bytes(const struct chan_sender *);

void chan_sender_get_stats(const struct chan_sender *,
                           struct chan_sender_stats *);

#endif /* chan-sender.h */
