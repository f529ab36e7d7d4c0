/*
 * upstream: chand-host's end of a channel's upstream stream, the records
 * the guest publishes (doc/SESSION.md, "Upstream"), as a state machine with
 * time passed in and no I/O of its own.
 *
 * The channel hands it the guest's SYNC and DATA frames (decoded,
 * authenticated, of the channel's vid) and tells it of each HELLO.  It
 * answers with ACKs through the caller's 'ack' function, and turns the
 * records it receives into batches of changes to the VM's Guest_Record
 * rows, which the caller writes to the Chan DB, one batch at a time, and
 * reports back with upstream_batch_done().  A batch also says what to store
 * as the Channel row's up_epoch and up_position, in the same transaction;
 * the stream's position moves, and is acknowledged, only once the batch
 * that holds it has committed.  Messages that arrive while a batch is in
 * flight wait for the next one (group commit).  A batch that fails is
 * forgotten and the position goes back to the last committed one: the
 * guest sends again from there.
 *
 * The upstream keeps its own copy of the VM's rows as committed (key ->
 * version and value), so that it writes a row only when its version or
 * value changes and knows whether a put inserts or updates.  chand-host is
 * the only writer of a VM's Guest_Record rows.
 *
 * Records under the reserved prefix "from/" (relayed records; a VM may not
 * forge another VM's origin) are refused and counted, as are records over
 * the VM's limits (struct upstream_limits); the stream goes on past them
 * and nothing already stored is lost.  The ACKs that answer the guest's
 * HELLO and SYNC carry the limits ({"limits": {...}}), so that chand-guest
 * refuses an application's publication over a limit at once.
 */
#ifndef UPSTREAM_H
#define UPSTREAM_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-wire.h"

#define UPSTREAM_RESERVED_PREFIX "from/"
#define UPSTREAM_ACK_MIN_MS 100     /* Gap and epoch ACKs: 10 a second. */

/* Sends an ACK of the upstream stream to the guest: header epoch 'epoch'
 * (0: no upstream session), ack 'position', ACK_VALID, and 'obj'
 * (borrowed; NULL for none) as its payload. */
typedef void upstream_ack_func(uint32_t epoch, uint64_t position,
                               const json_t *obj, void *aux);

/* What a VM may publish (doc/chan-db.md, "Guest limits").  0 means no
 * limit. */
struct upstream_limits {
    uint64_t max_records;       /* Records held. */
    uint64_t max_value_bytes;   /* Bytes of one value (JSON text). */
    uint64_t max_total_bytes;   /* Bytes of all keys and values. */
    uint64_t max_publish_rate;  /* Publications per second (enforced by
                                 * chand-guest; the host passes it on). */
};

#define UPSTREAM_LIMITS_DEFAULT { 10000, 1u << 20, 64u << 20, 1000 }

/* The limits as the JSON object chand-host sends the guest:
 * {"max_records": N, ...}.  Returns a new reference. */
json_t *upstream_limits_to_json(const struct upstream_limits *);

/* One change to a Guest_Record row.  Strings are owned by the batch. */
struct upstream_change {
    char *key;
    char *value;                /* JSON text; NULL: delete the row. */
    int64_t version;
    bool insert;                /* Put of a key with no row yet. */
};

/* One transaction's worth of changes for the Chan DB.  Owned by the
 * upstream; valid until upstream_batch_done(). */
struct upstream_batch {
    uint64_t id;
    struct upstream_change *changes;
    size_t n, allocated;
    bool set_position;          /* Store up_epoch and up_position? */
    uint32_t epoch;             /* The batch's upstream epoch. */
    uint64_t position;          /* up_position to store. */
};

struct upstream_stats {
    uint64_t rx_sync;           /* SYNC frames. */
    uint64_t rx_data;           /* DATA frames of the current epoch. */
    uint64_t rx_duplicate;      /* DATA at or below the position. */
    uint64_t drop_gap;          /* DATA beyond the next expected seq. */
    uint64_t drop_epoch;        /* DATA of another epoch. */
    uint64_t drop_payload;      /* SYNC without a valid snapshot_end. */
    uint64_t msgs;              /* Messages received whole. */
    uint64_t msgs_bad;          /* Of those, not a usable batch. */
    uint64_t records;           /* Records in usable messages. */
    uint64_t refused_reserved;  /* Records under "from/". */
    uint64_t refused_value_size;    /* Value over max_value_bytes. */
    uint64_t refused_records;   /* New key over max_records. */
    uint64_t refused_total_bytes;   /* Over max_total_bytes. */
    uint64_t sessions;          /* Upstream sessions started. */
    uint64_t drops;             /* Sessions dropped by upstream_drop(). */
    uint64_t snapshots;         /* Snapshots completed. */
    uint64_t batches;           /* Batches committed. */
    uint64_t batch_errors;      /* Batches that failed. */
    uint64_t rows_written;      /* Row inserts, updates and deletes. */
    uint64_t tx_ack;
};

/* Creates the upstream end for VM 'vm' (copied) in epoch 'epoch' at
 * position 'position' (0 and 0: no session yet), with 'rows' (borrowed; an
 * object key -> [version, value_text], may be NULL) the VM's Guest_Record
 * rows as the Chan DB holds them.  ACKs go out through 'ack' with 'aux'.
 * The caller owns the result. */
struct upstream *upstream_create(const char *vm, uint32_t epoch,
                                 uint64_t position, const json_t *rows,
                                 upstream_ack_func *ack, void *aux);
void upstream_destroy(struct upstream *);

/* Sets the limits (copied).  Records already stored stay; new ones over
 * a limit are refused and counted.  The guest learns of them with the next
 * ACK that answers its HELLO or SYNC. */
void upstream_set_limits(struct upstream *, const struct upstream_limits *);

/* The guest sent SYNC with header 'h' and payload object 'obj' (both
 * borrowed). */
void upstream_receive_sync(struct upstream *, const struct chan_wire_header *h,
                           const json_t *obj, long long now);

/* The guest sent DATA: header 'h' and its h->payload_len payload bytes at
 * 'body' (borrowed). */
void upstream_receive_data(struct upstream *, const struct chan_wire_header *h,
                           const uint8_t *body, long long now);

/* The guest sent HELLO: answers with where the host stands. */
void upstream_receive_hello(struct upstream *, long long now);

/* Forgets the session and the VM's rows, for a caller that deletes the
 * VM's Guest_Record rows (after any batch in flight, whose rows are then
 * not noted) and wants them rebuilt from what the guest holds now: the
 * epoch becomes 0 and an ACK of epoch 0 tells the guest at once, which
 * then starts a new session whose snapshot carries every record it
 * publishes. */
void upstream_drop(struct upstream *);

/* Returns the next batch to write, or NULL if there is nothing to write or
 * a batch is already in flight.  The batch is then in flight until
 * upstream_batch_done(). */
const struct upstream_batch *upstream_next_batch(struct upstream *,
                                                 long long now);

/* Reports how the batch in flight ended: 'ok' if its transaction
 * committed. */
void upstream_batch_done(struct upstream *, bool ok, long long now);

/* True if a batch is in flight. */
bool upstream_is_writing(const struct upstream *);

uint32_t upstream_epoch(const struct upstream *);
uint64_t upstream_position(const struct upstream *);

/* The VM's rows as committed: key -> [version, value_text] (borrowed). */
const json_t *upstream_rows(const struct upstream *);

void upstream_get_stats(const struct upstream *, struct upstream_stats *);

/* Returns a new JSON object: epoch, position, snapshot state, rows, a
 * batch in flight, and the counters. */
json_t *upstream_status_json(const struct upstream *);

/* Adds the nonzero counters to 'counters' (an object) as "up_<name>". */
void upstream_add_counters(const struct upstream *, json_t *counters);

#endif /* upstream.h */
