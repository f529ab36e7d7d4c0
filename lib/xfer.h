/*
 * xfer: the file transfer lane of a channel (doc/objects.md, "File
 * transfer"; doc/PROTOCOL.md §7.3).
 *
 * An object's content (known by its sha256 digest and size) moves from a
 * sender to a receiver in fixed-size chunks, each one CHUNK frame.  The
 * receiver drives the transfer: it asks for the chunks it lacks with GET
 * messages (XFER frames) and the sender answers each GET with the chunks
 * it names, in the order named, or with one FAIL.  The sender keeps no
 * state a transfer needs; the receiver keeps which chunks it holds durably
 * (content-store.h), so after any break it asks again for exactly the
 * chunks it lacks and never starts again from zero.
 *
 * Both directions use the same lane: chand-host pulls from a guest (a VM's
 * object for the content store) and a guest pulls from chand-host (an
 * object to install or restore).
 *
 * Frames (chan-wire.h, type CHUNK and XFER):
 *
 *   CHUNK  epoch = transfer id, seq = chunk index (0-based), payload = the
 *          chunk's bytes: chunk_size bytes, fewer for the last chunk
 *          (size - index * chunk_size), none for an empty object.
 *   XFER   epoch = transfer id, seq 0, payload = one JSON object:
 *            GET  {"op": "get", "digest": D, "size": S, "chunk_size": C,
 *                  "ranges": [[first, count], ...]}
 *            FAIL {"op": "fail", "digest": D, "error": NAME,
 *                  "reason": TEXT}
 *            DONE {"op": "done", "digest": D}
 *
 * The transfer id is chosen by the receiver (random, nonzero) each time it
 * starts or resumes a transfer, so chunks of a transfer the receiver no
 * longer runs are recognised and dropped.
 *
 * This module has two parts, both pure (no I/O, time passed in, no
 * logging):
 *
 *   - the XFER message codec, which checks everything that came off the
 *     wire (xfer_msg_parse());
 *   - the receiver's engine (struct xfer_rx): which chunks to ask for and
 *     when, loss detection, retransmission timing and counters.
 *
 * Loss detection.  The sender answers GETs in order and sends the chunks
 * of a GET in the order requested, so the engine numbers every request of
 * a chunk with a growing serial.  When a chunk arrives, every chunk still
 * outstanding that was requested more than XFER_REORDER serials earlier is
 * presumed lost and asked for again (a "fast" re-request).  A chunk that is
 * still outstanding 'rto' ms after it was requested is asked for again too
 * (a "timeout" re-request); rto follows the measured round trip (srtt + 4 *
 * rttvar, as TCP does, between rto_min and rto_max) and doubles on each
 * timeout without progress (a new chunk arriving ends the doubling).  Only
 * a chunk requested exactly once gives a round trip (Karn), and a chunk
 * that ever timed out says nothing about the chunks requested before its
 * latest request (the answer may be to an earlier one), so it presumes
 * none of them lost.  At most 'window' chunks are outstanding; a GET names
 * at most XFER_MAX_GET_CHUNKS chunks in at most XFER_MAX_RANGES ranges.
 */
#ifndef XFER_H
#define XFER_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XFER_DIGEST_LEN 64              /* sha256, lowercase hex. */
#define XFER_MAX_RANGES 64              /* Ranges in one GET. */
#define XFER_MAX_GET_CHUNKS 256         /* Chunks in one GET. */
#define XFER_REORDER 3                  /* Serials before a gap is loss. */
#define XFER_MAX_CHUNKS (UINT64_C(1) << 32)     /* Chunks per object. */
#define XFER_REASON_MAX 256             /* Bytes of a FAIL reason kept. */

/* Default engine settings. */
#define XFER_DEFAULT_WINDOW 64          /* Chunks outstanding. */
#define XFER_DEFAULT_RTO_MIN 20         /* ms. */
#define XFER_DEFAULT_RTO_MAX 2000       /* ms. */
#define XFER_DEFAULT_RTO_INITIAL 200    /* ms, before any measurement. */

/* The default largest object a side sends or receives: 1 GiB. */
#define XFER_DEFAULT_MAX_SIZE (UINT64_C(1) << 30)

/* XFER message ops. */
enum xfer_op {
    XFER_OP_GET = 1,
    XFER_OP_FAIL = 2,
    XFER_OP_DONE = 3,
};

/* FAIL error names, the same in logs, counters and the Chan DB.  The
 * sender sends them; xfer_msg_parse() accepts any name of 1..32 bytes of
 * [a-z0-9_] so that a newer peer's names pass through. */
#define XFER_ERR_NOT_ENTITLED "not_entitled"    /* Not this VM's to get. */
#define XFER_ERR_NO_OBJECT "no_object"          /* Sender lacks it. */
#define XFER_ERR_SIZE "size"                    /* Size disagrees. */
#define XFER_ERR_CHUNK_SIZE "chunk_size"        /* Chunks too large. */
#define XFER_ERR_TOO_BIG "too_big"              /* Above the size cap. */
#define XFER_ERR_IO "io"                        /* Sender cannot read it. */

/* One range of chunk indexes: [first, first + count). */
struct xfer_range {
    uint64_t first;
    uint32_t count;             /* >= 1. */
};

/* A parsed XFER message.  Owns nothing: the ranges and the strings are
 * stored in the struct itself. */
struct xfer_msg {
    enum xfer_op op;
    char digest[XFER_DIGEST_LEN + 1];
    /* GET only. */
    uint64_t size;
    uint32_t chunk_size;
    size_t n_ranges;
    struct xfer_range ranges[XFER_MAX_RANGES];
    /* FAIL only. */
    char error[33];
    char reason[XFER_REASON_MAX + 1];
};

/* Parses the XFER payload 'payload' ('len' bytes, from the wire) into
 * '*msg'.  Returns NULL, or a constant English error message naming what
 * is wrong.  Rules: one JSON object (chan_payload_decode_object()); "op"
 * one of "get", "fail", "done"; "digest" 64 lowercase hex digits; for GET
 * "size" an integer 0..2^63-1, "chunk_size" 1..CHAN_WIRE_MAX_PAYLOAD,
 * ranges 1..XFER_MAX_RANGES pairs of integers with count >= 1, every
 * range inside the object's chunks, at most XFER_MAX_GET_CHUNKS chunks in
 * all, the object at most XFER_MAX_CHUNKS chunks; for FAIL "error" as
 * above and "reason" a string (cut at its first U+0000, if any, and
 * truncated to XFER_REASON_MAX bytes at a UTF-8 boundary); every member
 * named here is required and no other member is allowed.  '*msg' is
 * unspecified after an error. */
const char *xfer_msg_parse(const uint8_t *payload, size_t len,
                           struct xfer_msg *msg);

/* Returns a new JSON object for 'msg' (the caller owns it), ready for
 * chan_payload_encode_object() or json_dumps(). */
json_t *xfer_msg_to_json(const struct xfer_msg *msg);

/* Number of chunks of an object of 'size' bytes cut in 'chunk_size' ones:
 * 1 for an empty object (one empty chunk), else ceil(size / chunk_size);
 * 0 if 'chunk_size' is 0. */
uint64_t xfer_n_chunks(uint64_t size, uint32_t chunk_size);

/* Length of chunk 'index' of that object: chunk_size for all but the
 * last; 0 for an index past the last chunk. */
uint32_t xfer_chunk_len(uint64_t size, uint32_t chunk_size, uint64_t index);

/* True if 's' is 64 lowercase hex digits. */
bool xfer_digest_is_valid(const char *s);

/* Receiver engine. */

struct xfer_rx_config {
    unsigned int window;        /* 0: XFER_DEFAULT_WINDOW. */
    unsigned int rto_min;       /* ms; 0: XFER_DEFAULT_RTO_MIN. */
    unsigned int rto_max;       /* ms; 0: XFER_DEFAULT_RTO_MAX. */
    unsigned int rto_initial;   /* ms; 0: XFER_DEFAULT_RTO_INITIAL. */
};

struct xfer_rx_stats {
    uint64_t n_chunks;          /* Of the object. */
    uint64_t have;              /* Chunks held. */
    uint64_t had_at_start;      /* Chunks held when created (resumed). */
    uint64_t requested;         /* Chunk requests sent, first ones. */
    uint64_t rerequested;       /* Chunk requests sent again. */
    uint64_t rerequested_fast;  /* ... of which after a gap. */
    uint64_t timeouts;          /* Timer expiries that re-requested. */
    uint64_t received;          /* CHUNK frames accepted as new. */
    uint64_t duplicates;        /* CHUNK frames for chunks already held. */
    uint64_t unrequested;       /* CHUNK frames for chunks never asked. */
    uint64_t gets;              /* GET messages produced. */
    unsigned int outstanding;   /* Chunks asked for, not yet received. */
    unsigned int rto;           /* Current retransmission timeout, ms. */
    unsigned int srtt;          /* Smoothed round trip, ms (0: none). */
};

struct xfer_rx;

/* Creates the engine for an object of 'size' bytes in chunks of
 * 'chunk_size' bytes (1..CHAN_WIRE_MAX_PAYLOAD) that holds no chunk yet.
 * Returns NULL if 'chunk_size' is outside that range, the object has more
 * than XFER_MAX_CHUNKS chunks or memory for its bitmap runs out.  'cfg' may be NULL for the defaults.  The caller owns the
 * result and frees it with xfer_rx_destroy(). */
struct xfer_rx *xfer_rx_create(uint64_t size, uint32_t chunk_size,
                               const struct xfer_rx_config *cfg);
void xfer_rx_destroy(struct xfer_rx *);

/* Marks chunk 'index' held without it having arrived (resuming from a
 * durable bitmap).  Call before the first xfer_rx_next_get(). */
void xfer_rx_set_have(struct xfer_rx *, uint64_t index);

/* Marks the chunks whose bits are set in 'bitmap' (bit i of byte i / 8,
 * least significant first, 'n_bytes' bytes) held, as xfer_rx_set_have(). */
void xfer_rx_load_bitmap(struct xfer_rx *, const uint8_t *bitmap,
                         size_t n_bytes);

/* The held-chunk bitmap, in the layout xfer_rx_load_bitmap() reads;
 * '*n_bytes' is set to (n_chunks + 7) / 8.  Borrowed, valid until the next
 * call on the engine. */
const uint8_t *xfer_rx_bitmap(const struct xfer_rx *, size_t *n_bytes);

bool xfer_rx_has(const struct xfer_rx *, uint64_t index);

/* What a CHUNK frame means to the engine. */
enum xfer_rx_verdict {
    XFER_RX_NEW,                /* Store it: a chunk that was missing. */
    XFER_RX_DUPLICATE,          /* Already held; drop it. */
    XFER_RX_OUT_OF_RANGE,       /* Index past the last chunk; drop it. */
    XFER_RX_BAD_LENGTH,         /* Wrong payload length; drop it. */
};

/* Tells the engine that the CHUNK for 'index' with 'len' payload bytes
 * arrived at 'now'.  On XFER_RX_NEW the engine counts the chunk as held:
 * the caller stores the bytes (and if it cannot, calls xfer_rx_lost()).  A
 * missing chunk that was not asked for is XFER_RX_NEW too (and counted in
 * 'unrequested'). */
enum xfer_rx_verdict xfer_rx_chunk(struct xfer_rx *, uint64_t index,
                                   size_t len, long long now);

/* Tells the engine that chunk 'index', which xfer_rx_chunk() accepted,
 * could not be stored after all: it is asked for again. */
void xfer_rx_lost(struct xfer_rx *, uint64_t index);

/* True when every chunk is held. */
bool xfer_rx_is_complete(const struct xfer_rx *);

/* Fills 'ranges' (room for XFER_MAX_RANGES) with the chunks to ask for at
 * 'now' (lost and timed-out ones first, then new ones, within the window)
 * and returns how many ranges; 0 means nothing to ask for now.  The chunks
 * returned count as requested at 'now': the caller sends them in one GET.
 * Call until it returns 0. */
size_t xfer_rx_next_get(struct xfer_rx *, long long now,
                        struct xfer_range ranges[XFER_MAX_RANGES]);

/* When xfer_rx_next_get() may next have something to ask for without a
 * chunk arriving first: 'now' if it has something already (it was not
 * called until it returned 0), else the earliest timeout, or LLONG_MAX if
 * nothing is outstanding. */
long long xfer_rx_next_wakeup(const struct xfer_rx *, long long now);

/* Forgets every outstanding request, so that the next xfer_rx_next_get()
 * asks for all missing chunks again from the lowest one (after the sender
 * was replaced or the transfer id changed).  The round-trip estimate is
 * kept; the timeout doubling ends. */
void xfer_rx_restart(struct xfer_rx *);

void xfer_rx_get_stats(const struct xfer_rx *, struct xfer_rx_stats *);

#endif /* xfer.h */
