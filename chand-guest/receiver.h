/*
 * receiver: chand-guest's end of a channel session (doc/SESSION.md), as a
 * state machine with time passed in.  It does no network I/O of its own:
 * the caller feeds it each UDP payload received, with its source address,
 * through receiver_input() (from a socket, or later from a capture file),
 * ends each read burst with receiver_flush(), and transmits the frames the
 * receiver hands to its send function to the host endpoint.  The receiver
 * applies what it gets to a datastore (borrowed), which is its only state
 * that survives a restart.
 *
 * What it does with each frame, in order of the checks:
 *
 *   - A datagram not from the host endpoint (IP and port) is dropped.
 *   - keyring_decode_first(): chan_wire_decode() with each channel key,
 *     the rx generation's first, then newest generation first (the empty
 *     key if there are none); every rejection
 *     is counted under its chan_wire_error_name(), a frame no key verifies
 *     under "auth".  A frame for another vid is dropped.  The generation
 *     that verified the last valid frame is the "rx generation".
 *   - SYNC: if its guest_epoch is not ours, it was meant for an earlier
 *     store: HELLO is sent (rate-limited).  If its epoch is the stored
 *     host epoch it is a repeat: ACK again.  Otherwise the session starts:
 *     datastore_snapshot_begin(epoch, 0) and the snapshot's end seq are
 *     recorded (and an empty snapshot, snapshot_end 0, is finished) in the
 *     burst's transaction, acknowledged with ACK ack 0 after the commit.
 *   - DATA of the stored host epoch: seq == next expected is fed to the
 *     reassembler; a complete message is decoded and applied at its last
 *     seq; the message whose last seq reaches the stored snapshot_end also
 *     finishes the snapshot, in the same transaction.  seq below the next
 *     expected is a duplicate (not applied again; ACK again); seq above it
 *     is a gap (dropped, go-back-N; ACK at most 10 times a second).
 *   - HEARTBEAT of the stored host epoch: ACK.
 *   - DATA or HEARTBEAT of any other epoch: HELLO at once (at most 10 per
 *     second), and the receiver is no longer in session.
 *   - HELLO from the host (it has no session with us, e.g. it restarted):
 *     HELLO at once (same limit), and no longer in session.
 *   - ACK from the host belongs to the other direction, the upstream
 *     stream of records the guest publishes (doc/SESSION.md, "Upstream"),
 *     which the receiver does not follow: once its payload checks out (an
 *     object or nothing), its decoded header and payload object go to the
 *     config's upstream_ack callback (chand-guest's publisher), whatever
 *     its epoch (0 included: the host has no upstream session).  Without a
 *     callback it is dropped (drop_type).
 *
 * Every message of one burst is applied in ONE transaction (group
 * commit), committed by receiver_flush(), which then sends ONE ACK
 * (epoch = host epoch, ack = position, ACK_VALID) if anything asked for
 * one.  If the transaction fails, nothing of the burst is acknowledged and
 * the receiver goes back to the committed position: the host retransmits.
 *
 * A message that authenticates but cannot be used (a batch that does not
 * decode, records the datastore refuses, a chunk sequence the reassembler
 * rejects, a message over the size limit) can only come from a buggy or
 * compromised host.  It is counted, logged and skipped: the position
 * advances over its seqs as if it held no records, and it is acknowledged
 * like any other message, so that the channel does not wedge on it (the
 * host would otherwise resend it forever).  The host learns of it only
 * through the guest's counters.
 *
 * The receiver sends HELLO every second until it is in session: in
 * session means it has seen a SYNC, DATA or HEARTBEAT of its stored host
 * epoch in the last RECEIVER_LIVENESS_MS.
 *
 * Every HELLO carries "up_epoch", the upstream epoch the config's
 * up_epoch callback returns (0 before the publisher's first SYNC), so that
 * the host can tell whether it still has the guest's upstream session; the
 * host answers each HELLO with an upstream ACK.  Without a callback the
 * member is left out.
 *
 * Keys (doc/SESSION.md, "Keys and rotation").  Every frame the receiver
 * sends is authenticated with the key of the rx generation if that key is
 * still loaded, else with the newest key loaded, else with the empty key
 * (the "tx generation", 0 for the empty key; receiver_tx_key() gives it to
 * the publisher, which sends with it too).  Every HELLO and every ACK
 * carries "keys": the generations loaded, ascending, so that the host can
 * switch to the newest generation both sides have; the receiver then
 * follows it.
 */
#ifndef RECEIVER_H
#define RECEIVER_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-wire.h"
#include "keyring.h"

struct datastore;

#define RECEIVER_HELLO_INTERVAL_MS 1000 /* First HELLO period while not
                                         * in session... */
#define RECEIVER_HELLO_MAX_MS 8000      /* ...doubling up to this. */
#define RECEIVER_HELLO_MIN_MS 100       /* At most 10 HELLOs a second. */
#define RECEIVER_GAP_ACK_MIN_MS 100     /* At most 10 gap ACKs a second. */
#define RECEIVER_LIVENESS_MS 5000       /* Silence that ends a session. */

/* Called with the header and the payload object (an empty object for an
 * empty payload), both borrowed for the call, of each valid ACK the host
 * sends: an acknowledgement of the upstream stream. */
typedef void receiver_upstream_ack_func(const struct chan_wire_header *h,
                                        const json_t *obj, long long now,
                                        void *aux);

/* Returns the upstream epoch to put in HELLO (0: none yet). */
typedef uint32_t receiver_up_epoch_func(void *aux);

struct receiver_config {
    uint16_t vid;               /* Channel vid, 1..4094. */
    uint32_t host_ip;           /* Host endpoint address, host order. */
    uint16_t host_port;         /* Host endpoint port, host order. */
    const struct keyring *keys; /* Channel keys (copied); NULL: none. */
    size_t max_msg;             /* Reassembly limit; 0: default. */
    unsigned int mtu;           /* Our MTU, advertised to the host (see
                                 * receiver_set_mtu()); 0: 1500. */

    /* The upstream direction (see above); NULL: none. */
    receiver_upstream_ack_func *upstream_ack;
    receiver_up_epoch_func *up_epoch;
    void *upstream_aux;         /* For both. */

    /* The file transfer lane: called with each valid CHUNK or XFER frame
     * (header and payload borrowed for the call), in or out of a session;
     * NULL: such frames are dropped (drop_type). */
    void (*xfer)(const struct chan_wire_header *h, const uint8_t *payload,
                 long long now, void *aux);
    void *xfer_aux;
};

/* Transmits 'frame' (a chan-wire frame, borrowed for the call) as the
 * payload of one UDP datagram to the host endpoint.  Returns 0 or an
 * errno (the frame is then lost and counted). */
typedef int receiver_send_func(const uint8_t *frame, size_t len, void *aux);

/* Counters.  Every datagram fed in is counted once in rx_datagrams and,
 * unless it was processed, once under exactly one drop reason. */
struct receiver_stats {
    uint64_t rx_datagrams;      /* Everything fed to receiver_input(). */
    uint64_t rx_data;           /* Valid DATA of our epoch (incl. dups). */
    uint64_t rx_sync;           /* Valid SYNC. */
    uint64_t rx_heartbeat;      /* HEARTBEAT of our epoch. */
    uint64_t rx_hello;          /* HELLO from the host. */
    uint64_t rx_duplicate;      /* DATA already applied or absorbed. */
    uint64_t rx_generation_changes; /* The rx generation changed. */
    uint64_t rx_sync_repeat;    /* SYNC of the stored epoch again. */
    uint64_t rx_upstream_ack;   /* ACK from the host, handed upstream. */
    uint64_t rx_xfer;           /* CHUNK and XFER, handed to the lane. */
    uint64_t rx_max_frame;      /* Bytes of the largest datagram. */

    /* Drops. */
    uint64_t drop_source;       /* Not from the host endpoint. */
    uint64_t drop_wire[CHAN_WIRE_N_ERRORS]; /* By chan_wire_error; also
                                             * counts the cause of each
                                             * skipped message. */
    uint64_t drop_vid;          /* Another channel's vid. */
    uint64_t drop_type;         /* ACK from the host, with no upstream
                                 * callback. */
    uint64_t drop_epoch;        /* DATA/HEARTBEAT of another epoch. */
    uint64_t drop_gap;          /* DATA beyond the next expected seq. */
    uint64_t drop_sync_payload; /* SYNC without valid guest_epoch or
                                 * snapshot_end. */
    uint64_t drop_sync_guest;   /* SYNC for another guest epoch. */
    uint64_t drop_txn;          /* Dropped because the datastore failed. */

    /* Application. */
    uint64_t msgs_applied;      /* Messages applied (incl. skipped). */
    uint64_t records_applied;   /* Record operations in them. */
    uint64_t msgs_skipped;      /* Unusable messages skipped. */
    uint64_t msgs_refused;      /* Of those, refused by the datastore
                                 * (the others count under drop_wire). */
    uint64_t commits;
    uint64_t commit_errors;     /* Failed begin/apply/commit. */
    uint64_t snapshots_begun;
    uint64_t snapshots_finished;
    uint64_t sessions_lost;     /* Liveness timeouts. */

    /* Transmission. */
    uint64_t tx_ack;
    uint64_t tx_hello;
    uint64_t tx_errors;
};

/* Creates a receiver for 'config' (copied) that applies to 'ds' (borrowed;
 * it must outlive the receiver and must not have a transaction open
 * between bursts) and transmits through 'send' with 'aux'.  Returns NULL
 * only if out of memory.  The caller frees it with receiver_destroy(). */
struct receiver *receiver_create(const struct receiver_config *config,
                                 struct datastore *ds,
                                 receiver_send_func *send, void *aux,
                                 long long now);

/* Rolls back an unflushed burst, if any, and frees 'rx'.  NULL is a
 * no-op. */
void receiver_destroy(struct receiver *rx);

/* Replaces the channel keys with 'keys' (copied; NULL: none).  The
 * per-generation counters of generations still loaded are kept. */
void receiver_set_keys(struct receiver *rx, const struct keyring *keys);

/* Sets our MTU (chan-mtu.h), which the receiver advertises to the host in
 * its HELLOs and ACKs ("mtu").  receiver_mtu() is what the guest sends
 * with: the smaller of it and the host's advertised MTU (1500 until the
 * host says, or if it never does). */
void receiver_set_mtu(struct receiver *rx, unsigned int mtu);
unsigned int receiver_mtu(const struct receiver *rx);

/* The generation of the key that verified the last valid frame from the
 * host (0: none yet, or the empty key). */
uint32_t receiver_rx_generation(const struct receiver *rx);

/* The generation of the key the receiver sends with now (0: the empty
 * key). */
uint32_t receiver_tx_generation(const struct receiver *rx);

/* The key the receiver sends with now (borrowed: valid until the keys
 * change or another frame is received), or NULL for the empty key. */
const struct keyring_key *receiver_tx_key(const struct receiver *rx);

/* Processes one received datagram: its UDP payload ('len' bytes at
 * 'payload', borrowed) and its source address and port (host order).
 * Never fails: anything wrong is counted.  Changes go into the burst's
 * transaction; nothing is committed or acknowledged until
 * receiver_flush(). */
void receiver_input(struct receiver *rx, const uint8_t *payload, size_t len,
                    uint32_t src_ip, uint16_t src_port, long long now);

/* Ends a burst: commits its transaction (change notifications are
 * delivered by the datastore from inside this call), then sends at most
 * one ACK and at most one HELLO, as the burst asked for.  Cheap when the
 * burst did nothing. */
void receiver_flush(struct receiver *rx, long long now);

/* Does timed work: the periodic HELLO while not in session, the liveness
 * timeout, and a rate-limited HELLO or ACK that had to wait.  Call it
 * outside bursts. */
void receiver_run(struct receiver *rx, long long now);

/* Returns the time at which receiver_run() next has something to do. */
long long receiver_next_wakeup(const struct receiver *rx, long long now);

/* True if the receiver is in a session (see above). */
bool receiver_in_session(const struct receiver *rx);

/* The seq the receiver expects next (position + 1 + frames of a partial
 * message already absorbed). */
uint64_t receiver_next_seq(const struct receiver *rx);

void receiver_get_stats(const struct receiver *rx,
                        struct receiver_stats *stats);

/* Returns a new JSON object (owned by the caller) with the session state
 * (host_epoch, guest_epoch, position, snapshot, snapshot_end, in_session,
 * next_seq, last_rx_ms_ago, frames_applied, ops_applied), a "keys" object
 * ("generations": the generations loaded, ascending; "rx_generation" and
 * "tx_generation", null for none or the empty key; "auth_failures": frames
 * no key verified; "verified": generation -> frames it verified, for the
 * generations loaded) and a "counters" object holding every nonzero
 * counter by name ("drop_<error name>" for drop_wire). */
json_t *receiver_status_json(const struct receiver *rx, long long now);

#endif /* receiver.h */
