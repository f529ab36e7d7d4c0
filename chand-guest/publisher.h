/*
 * publisher: chand-guest's sending end of the upstream stream, the records
 * guest applications publish for the host (doc/SESSION.md, "Upstream"), as
 * a state machine with time passed in.  It does no I/O of its own: it
 * reads the datastore's published table (borrowed), hands each frame it
 * wants sent to the caller's send function, and is told of each ACK the
 * host sends (the receiver passes them on).  It owns a chan_sender
 * (lib/chan-sender.h) for the DATA messages.
 *
 * Sessions.  At creation, and whenever an ACK shows that the host lost the
 * upstream session (another epoch, or 0, while established; an ack below
 * what the host already acknowledged that the sender cannot go back to),
 * the publisher picks a new random nonzero up_epoch, resets the sender at
 * seq 1 and queues a snapshot: every published record that is not
 * withdrawn, as put records with their stored versions, in DATA messages
 * with flag SNAPSHOT.  N, the snapshot's last seq (0: nothing published),
 * goes in SYNC {"snapshot_end": N} (header epoch up_epoch, seq 0), sent at
 * once and every PUBLISHER_SYNC_INTERVAL_MS while 'syncing'.  While
 * syncing no DATA is sent and ACKs of other epochs are ignored; an ACK of
 * up_epoch makes the session 'established' and the sender starts.
 *
 * Established.  Each ACK of up_epoch goes to the sender as a cumulative
 * ack (a repeated one is a fast retransmit); an ack below the last one
 * acknowledged (a host that lost uncommitted work) rewinds the sender to
 * it if the sender still holds what follows, else starts a new session.
 * When the sender has room (fewer than max_queued_msgs messages queued or
 * in flight), the publisher reads the records changed since what it last
 * queued (datastore_published_since(): the version counter only grows, so
 * "version above the cursor" is the set of dirty keys, each read with its
 * current value at send time, so a key republished many times meanwhile
 * crosses the channel once) and queues them, in version order, as put or
 * delete records in messages of at most max_msg_records records and about
 * max_msg_bytes bytes.
 *
 * Acknowledgement.  Each queued message carries the (key, version) pairs
 * it holds; once an ack covers it, they are recorded in the datastore
 * (datastore_ack_published(): acked_version, acknowledged tombstones
 * removed) in one transaction, at the next publisher_run() with no
 * datastore transaction open (never inside the receiver's burst, whose
 * transaction may be rolled back).  Once a session's snapshot is fully
 * acknowledged, the tombstones it covered (versions up to the counter when
 * it was taken) are removed in that transaction too.  A datastore failure
 * is logged, counted and retried a second later.
 *
 * Refresh and limits.  While established, the publisher repeats its SYNC
 * every refresh_ms (PUBLISHER_REFRESH_MS).  The host answers a SYNC of its
 * current epoch with ACK(E, position) and {"limits": {...}}: what the VM
 * may publish (doc/chan-db.md, "Guest_Limits"), which the publisher hands
 * to the datastore (datastore_set_publish_limits()) so that a publication
 * over a limit is refused at once.  A host that lost the session (a Chan
 * DB restored from an older copy, a channel provisioned anew) takes the
 * repeat for the start of session E at position 0 and answers ACK(E, 0):
 * below what it acknowledged before, so the publisher starts a new session
 * within refresh_ms even when nothing is being published (if the repeat
 * says snapshot_end 0, the host empties the VM's rows meanwhile; the new
 * snapshot fills them again).  An ACK with "limits" (the answer to a SYNC
 * or a HELLO) that repeats the last ack is not taken for a duplicate ack
 * (no fast retransmit).
 *
 * Keys.  Frames are authenticated with the key the caller sets with
 * publisher_set_key(): chand-guest gives it the receiver's tx key
 * (receiver_tx_key()), so both directions use the same generation.
 */
#ifndef PUBLISHER_H
#define PUBLISHER_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-wire.h"

struct datastore;

#define PUBLISHER_SYNC_INTERVAL_MS 1000 /* SYNC period while syncing. */
#define PUBLISHER_RETRY_MS 1000         /* After a datastore failure. */
#define PUBLISHER_MSG_MAX_BYTES (64 * 1024)
#define PUBLISHER_MSG_MAX_RECORDS 256
#define PUBLISHER_MAX_QUEUED_MSGS 4     /* "Room" in the sender. */
#define PUBLISHER_REFRESH_MS 1000       /* SYNC repeat while established. */

struct publisher_config {
    uint16_t vid;               /* Channel vid, 1..4094. */
    unsigned int mtu;           /* IP MTU; 0: CHAN_WIRE_DEFAULT_MTU. */
    unsigned int window;        /* Sender window, frames; 0: default. */
    unsigned int rto_ms;        /* Sender timeouts; 0: defaults. */
    unsigned int rto_max_ms;
    uint64_t seed;              /* Epochs and jitter; 0: random.  Tests
                                 * set it to be repeatable. */
    size_t max_msg_bytes;       /* 0: PUBLISHER_MSG_MAX_BYTES. */
    size_t max_msg_records;     /* 0: PUBLISHER_MSG_MAX_RECORDS. */
    size_t max_queued_msgs;     /* 0: PUBLISHER_MAX_QUEUED_MSGS. */
    long long refresh_ms;       /* SYNC repeat period while established;
                                 * 0: PUBLISHER_REFRESH_MS; < 0: none. */
};

/* Transmits 'frame' (a chan-wire frame, borrowed for the call) to the host
 * endpoint.  Returns 0 or an errno (the frame is then lost and counted). */
typedef int publisher_send_func(const uint8_t *frame, size_t len, void *aux);

enum publisher_state {
    PUBLISHER_SYNCING,          /* SYNC sent, waiting for its ACK. */
    PUBLISHER_ESTABLISHED,      /* Sending DATA. */
};

/* "syncing", "established". */
const char *publisher_state_to_string(enum publisher_state);

struct publisher_stats {
    uint64_t sessions;          /* Sessions started (the first included). */
    uint64_t sessions_lost;     /* Of those, because the host's ACK showed
                                 * it lost ours (epoch, or a low ack). */
    uint64_t tx_sync;
    uint64_t tx_errors;         /* Frames the send function refused. */
    uint64_t rx_ack;            /* ACKs handed in. */
    uint64_t acks_ignored;      /* ACKs of another epoch while syncing. */
    uint64_t bad_acks;          /* Acks beyond what was sent. */
    uint64_t rewinds;           /* Acks below the acked seq, rewound. */
    uint64_t msgs_queued;       /* DATA messages, snapshots included. */
    uint64_t records_queued;    /* Records in them. */
    uint64_t snapshot_records;  /* Of those, in snapshots. */
    uint64_t msgs_acked;
    uint64_t records_acked;     /* Records in acknowledged messages. */
    uint64_t snapshots_acked;   /* Snapshots acknowledged in full. */
    uint64_t tombstones_removed;
    uint64_t ds_errors;         /* Datastore failures (each retried). */
    uint64_t bad_records;       /* Rows that would not encode: skipped. */
    uint64_t limits_updates;    /* The host's limits changed. */
    uint64_t bad_limits;        /* "limits" that did not parse. */
};

/* Creates a publisher for 'config' (copied) that reads and updates 'ds'
 * (borrowed; it must outlive the publisher) and transmits through 'send'
 * with 'aux'.  It starts with the empty key and a session to start (at
 * the first publisher_run()).  Returns NULL only if out of memory.  The
 * caller owns the result and frees it with publisher_destroy(). */
struct publisher *publisher_create(const struct publisher_config *config,
                                   struct datastore *ds,
                                   publisher_send_func *send, void *aux,
                                   long long now);

/* Frees 'pub' and everything queued (acknowledgements not yet written are
 * lost; the records stay pending and go out again in the next process's
 * snapshot).  NULL is a no-op. */
void publisher_destroy(struct publisher *pub);

/* Sets the key to authenticate frames with: 'key_len' bytes at 'key'
 * (copied; NULL and 0: the empty key) of generation 'generation' (0: the
 * empty key), if they differ from the current ones.  Frames not yet sent,
 * and retransmissions, use the new key. */
void publisher_set_key(struct publisher *pub, uint32_t generation,
                       const void *key, size_t key_len);

/* Sets the IP MTU of upstream frames for the messages queued from now on
 * (chand-guest: the smaller of its MTU and the host's).  If messages
 * already queued have frames that no longer fit, the upstream session
 * starts over. */
void publisher_set_mtu(struct publisher *pub, unsigned int mtu,
                       long long now);

/* Processes an ACK from the host: 'h' (borrowed) is its decoded header,
 * 'obj' (borrowed; NULL: none) its payload object.  Never fails: anything
 * unexpected is counted.  May be called inside the receiver's burst; it
 * writes nothing to the datastore (limits go to its memory only). */
void publisher_ack(struct publisher *pub, const struct chan_wire_header *h,
                   const json_t *obj, long long now);

/* Does what is due at 'now': starts a session, writes acknowledgements,
 * sends SYNC, queues pending records and transmits DATA.  Call it with no
 * datastore transaction open (acknowledgements then wait). */
void publisher_run(struct publisher *pub, long long now);

/* Returns the time at which publisher_run() next has something to do. */
long long publisher_next_wakeup(const struct publisher *pub, long long now);

/* The upstream epoch for the guest's HELLO: the current up_epoch, or 0
 * before the first SYNC was sent. */
uint32_t publisher_up_epoch(const struct publisher *pub);

enum publisher_state publisher_get_state(const struct publisher *pub);

/* True if established with nothing queued or in flight and every
 * acknowledgement written. */
bool publisher_is_idle(const struct publisher *pub);

void publisher_get_stats(const struct publisher *pub,
                         struct publisher_stats *stats);

/* Returns a new JSON object (owned by the caller): "state" ("syncing",
 * "established", or "starting" while a session waits to start), "up_epoch",
 * "snapshot_end", "snapshot_version", "snapshot_acked", "pending" (rows of
 * the published table not yet acknowledged; null if it cannot be read),
 * "queued_msgs", "in_flight" (frames), "last_seq", "acked_seq", "cwnd",
 * "key_generation" (null: the empty key), "sender" (chan_sender_stats),
 * "limits" (the host's, as struct ds_pub_limits members; null before the
 * host told them) and "counters" (struct publisher_stats by name). */
json_t *publisher_status_json(const struct publisher *pub, long long now);

#endif /* publisher.h */
