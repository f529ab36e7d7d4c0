/*
 * chan-wire: the channel wire codec.  A channel frame is the UDP payload of
 * one packet between chand-host and chand-guest (doc/PROTOCOL.md is the
 * byte-level reference):
 *
 *     36-byte header || payload || 16-byte trailer
 *
 * All integers are big-endian.  The trailer is the first 16 bytes of
 * HMAC-SHA256(key, header || payload), where the key is an opaque byte
 * string, possibly empty (HMAC with a zero-length key is well defined; it is
 * used until per-channel keys are distributed).
 *
 * This module provides:
 *
 *   - chan_wire_encode() / chan_wire_decode(): one frame to and from bytes.
 *     The decoder checks, in this order: length >= header + trailer, magic,
 *     version, payload length against the actual length, the HMAC (constant
 *     time), and only then the remaining fields, so that unauthenticated
 *     garbage is counted as CHAN_WIRE_ERR_AUTH and field errors mean that a
 *     key holder sent a bad frame.  The encoder applies the same field
 *     checks, so it never produces a frame the decoder rejects.
 *
 *   - The chunker and the reassembler: a message larger than one frame is
 *     sent as N frames with consecutive seqs, chunk i at seq first + i, all
 *     with chunk count N.  Only DATA messages may have more than one chunk.
 *
 *   - The payload codecs: a DATA message is a JSON batch of records, other
 *     types carry an arbitrary JSON object or nothing.
 *
 * Pure codec: no I/O, no logging.  All functions are thread-compatible.
 */
#ifndef CHAN_WIRE_H
#define CHAN_WIRE_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAN_WIRE_MAGIC 0x4348          /* "CH" */
#define CHAN_WIRE_VERSION 1
#define CHAN_WIRE_HEADER_LEN 36
#define CHAN_WIRE_TRAILER_LEN 16
#define CHAN_WIRE_OVERHEAD (CHAN_WIRE_HEADER_LEN + CHAN_WIRE_TRAILER_LEN)

/* MTU arithmetic.  A frame travels as the payload of one IPv4 (20 bytes,
 * no options) + UDP (8 bytes) packet, so for a given IP MTU the largest
 * frame is mtu - 28 and the largest frame payload mtu - 80 (1420 for the
 * usual 1500).  The 802.1Q tag does not count against the IP MTU. */
#define CHAN_WIRE_IP_UDP_LEN 28
#define CHAN_WIRE_MIN_MTU 576
#define CHAN_WIRE_MAX_MTU 65535
#define CHAN_WIRE_DEFAULT_MTU 1500
#define CHAN_WIRE_MAX_FRAME (CHAN_WIRE_MAX_MTU - CHAN_WIRE_IP_UDP_LEN)
#define CHAN_WIRE_MAX_PAYLOAD (CHAN_WIRE_MAX_FRAME - CHAN_WIRE_OVERHEAD)

/* Default limits. */
#define CHAN_WIRE_DEFAULT_MAX_MSG (80u * 1024 * 1024)   /* Reassembled. */
#define CHAN_WIRE_DEFAULT_MAX_RECORDS 100000
#define CHAN_WIRE_DEFAULT_MAX_DEPTH 32
#define CHAN_WIRE_MAX_KEY_LEN 256

/* Frame types.  chan_wire_type_is_valid() knows which are defined; 0 and
 * everything else are rejected.  Per-type rules (see doc/PROTOCOL.md):
 *
 *   type       flags allowed        chunks  epoch 0  seq 0  ACK_VALID
 *   DATA       ACK_VALID, SNAPSHOT  1..N    no       no     optional
 *   ACK        ACK_VALID            1       no       yes    required
 *   HELLO      ACK_VALID            1       yes      yes    optional
 *   SYNC       ACK_VALID            1       no       yes    optional
 *   HEARTBEAT  ACK_VALID            1       no       yes    optional
 *   CHUNK      none                 1       no       yes    no
 *   XFER       none                 1       no       yes    no
 *
 * CHUNK and XFER make up the file transfer lane (xfer.h): their epoch is a
 * transfer id, a CHUNK's seq is a chunk index and its payload raw bytes.
 *
 * Epoch 0 means "no epoch yet": only a HELLO sent before the sender has
 * ever synchronised may carry it. */
enum chan_wire_type {
    CHAN_WIRE_DATA = 1,
    CHAN_WIRE_ACK = 2,
    CHAN_WIRE_HELLO = 3,
    CHAN_WIRE_SYNC = 4,
    CHAN_WIRE_HEARTBEAT = 5,
    CHAN_WIRE_CHUNK = 6,
    CHAN_WIRE_XFER = 7,
};

bool chan_wire_type_is_valid(unsigned int type);

/* Returns "DATA", "ACK", ... or "unknown" for an invalid type. */
const char *chan_wire_type_name(unsigned int type);

/* Header flags.  Undefined bits must be 0. */
#define CHAN_WIRE_F_ACK_VALID 0x01  /* 'ack' is meaningful (else it is 0). */
#define CHAN_WIRE_F_SNAPSHOT 0x02   /* DATA that is part of a snapshot. */

/* A decoded header, in host byte order.  'payload_len' is filled in by the
 * decoder and the chunker and ignored by the encoder (which takes the
 * payload length from its argument). */
struct chan_wire_header {
    uint8_t type;               /* enum chan_wire_type. */
    uint8_t flags;              /* CHAN_WIRE_F_*. */
    uint16_t vid;               /* 1..4094. */
    uint32_t epoch;
    uint64_t seq;
    uint64_t ack;               /* 0 unless CHAN_WIRE_F_ACK_VALID. */
    uint16_t chunk_index;       /* 0-based, < chunk_count. */
    uint16_t chunk_count;       /* >= 1. */
    uint16_t payload_len;
};

/* Every way a frame, a message or a payload can be rejected.  0 is
 * success.  The values are stable within a build only: log the name. */
enum chan_wire_error {
    CHAN_WIRE_OK = 0,

    /* Encoding. */
    CHAN_WIRE_ERR_NOSPACE,      /* Caller buffer too small. */
    CHAN_WIRE_ERR_TOO_BIG,      /* Payload/message cannot be framed. */
    CHAN_WIRE_ERR_MTU,          /* MTU outside MIN_MTU..MAX_MTU. */

    /* Framing, checked before authentication. */
    CHAN_WIRE_ERR_SHORT,        /* Shorter than header + trailer. */
    CHAN_WIRE_ERR_MAGIC,        /* Not "CH". */
    CHAN_WIRE_ERR_VERSION,      /* Not version 1. */
    CHAN_WIRE_ERR_TRUNCATED,    /* Payload length runs past the end. */
    CHAN_WIRE_ERR_TRAILING,     /* Bytes after the trailer. */
    CHAN_WIRE_ERR_AUTH,         /* HMAC mismatch. */

    /* Header fields, checked after authentication (and by the encoder). */
    CHAN_WIRE_ERR_TYPE,         /* Unknown type. */
    CHAN_WIRE_ERR_FLAGS,        /* Undefined flag bit set. */
    CHAN_WIRE_ERR_FLAGS_TYPE,   /* Flag not allowed for this type. */
    CHAN_WIRE_ERR_RESERVED,     /* Reserved byte 5 or bytes 34-35 != 0. */
    CHAN_WIRE_ERR_VID,          /* vid not 1..4094. */
    CHAN_WIRE_ERR_EPOCH,        /* Epoch 0 outside HELLO. */
    CHAN_WIRE_ERR_SEQ,          /* DATA with seq 0 (or seq overflow). */
    CHAN_WIRE_ERR_ACK,          /* Nonzero ack without ACK_VALID. */
    CHAN_WIRE_ERR_ACK_MISSING,  /* ACK frame without ACK_VALID. */
    CHAN_WIRE_ERR_CHUNK_COUNT,  /* Chunk count 0. */
    CHAN_WIRE_ERR_CHUNK_INDEX,  /* Chunk index >= count. */
    CHAN_WIRE_ERR_CHUNK_TYPE,   /* More than one chunk outside DATA. */

    /* Reassembly. */
    CHAN_WIRE_ERR_REASM_INDEX,  /* Chunk index is not the next expected. */
    CHAN_WIRE_ERR_REASM_COUNT,  /* Chunk count changed mid-message. */
    CHAN_WIRE_ERR_REASM_SEQ,    /* Seq is not first seq + index. */
    CHAN_WIRE_ERR_REASM_MISMATCH, /* Type/epoch/vid/SNAPSHOT changed. */
    CHAN_WIRE_ERR_REASM_EMPTY,  /* Empty chunk in a multi-chunk message. */
    CHAN_WIRE_ERR_MSG_TOO_BIG,  /* Message exceeds the configured limit. */
    CHAN_WIRE_ERR_NOMEM,        /* Out of memory. */

    /* Payload JSON. */
    CHAN_WIRE_ERR_JSON,         /* Not JSON (syntax, UTF-8, duplicate
                                 * member names, \u0000 in a member name,
                                 * integer beyond 64 bits...). */
    CHAN_WIRE_ERR_JSON_NOT_OBJECT,  /* Top level is not an object. */
    CHAN_WIRE_ERR_JSON_TOO_DEEP,    /* Nesting above the limit. */
    CHAN_WIRE_ERR_BATCH_MEMBER,     /* Top-level member other than
                                     * "records". */
    CHAN_WIRE_ERR_BATCH_NO_RECORDS, /* No "records" member. */
    CHAN_WIRE_ERR_BATCH_NOT_ARRAY,  /* "records" is not an array. */
    CHAN_WIRE_ERR_BATCH_TOO_MANY,   /* More records than the limit. */
    CHAN_WIRE_ERR_RECORD_NOT_OBJECT,
    CHAN_WIRE_ERR_RECORD_MEMBER,    /* Unknown member in a record. */
    CHAN_WIRE_ERR_OP_MISSING,
    CHAN_WIRE_ERR_OP_INVALID,       /* Not "put" or "delete". */
    CHAN_WIRE_ERR_KEY_MISSING,
    CHAN_WIRE_ERR_KEY_TYPE,         /* Not a string. */
    CHAN_WIRE_ERR_KEY_EMPTY,
    CHAN_WIRE_ERR_KEY_TOO_LONG,     /* > 256 bytes of UTF-8. */
    CHAN_WIRE_ERR_KEY_NUL,          /* Contains U+0000. */
    CHAN_WIRE_ERR_KEY_UTF8,         /* Encoder: key is not UTF-8. */
    CHAN_WIRE_ERR_VERSION_MISSING,
    CHAN_WIRE_ERR_VERSION_TYPE,     /* Not a JSON integer. */
    CHAN_WIRE_ERR_VERSION_NEGATIVE,
    CHAN_WIRE_ERR_VALUE_MISSING,    /* "put" without "value". */
    CHAN_WIRE_ERR_VALUE_UNEXPECTED, /* "delete" with "value". */

    CHAN_WIRE_N_ERRORS
};

/* Returns a constant English description ("success" for 0). Never NULL. */
const char *chan_wire_strerror(enum chan_wire_error);

/* Returns a constant identifier for counters and logs, e.g. "auth".  Never
 * NULL. */
const char *chan_wire_error_name(enum chan_wire_error);

/* MTU arithmetic: the largest frame and the largest frame payload for IP
 * MTU 'mtu', or 0 if 'mtu' is outside CHAN_WIRE_MIN_MTU..MAX_MTU. */
size_t chan_wire_max_frame(unsigned int mtu);
size_t chan_wire_max_payload(unsigned int mtu);

/* Stores in 'mac' the first 16 bytes of HMAC-SHA256('key', 'data').  'key'
 * may be NULL if 'key_len' is 0.  Exposed for tests and tools. */
void chan_wire_mac(const void *key, size_t key_len,
                   const void *data, size_t len,
                   uint8_t mac[CHAN_WIRE_TRAILER_LEN]);

/* Checks the fields of 'hdr' (type, flags, vid, epoch, seq, ack, chunk
 * fields) against the per-type rules.  Returns 0 or the first error. */
enum chan_wire_error chan_wire_check_header(const struct chan_wire_header *);

/* Writes a frame with header 'hdr' (hdr->payload_len is ignored), the
 * 'payload_len' bytes at 'payload' and the trailer computed with 'key' into
 * 'buf' (of 'size' bytes), and stores its length in '*lenp'.  All inputs
 * are borrowed; 'payload' must not overlap 'buf'.  Returns 0, a header
 * field error, CHAN_WIRE_ERR_TOO_BIG if 'payload_len' exceeds
 * CHAN_WIRE_MAX_PAYLOAD, or CHAN_WIRE_ERR_NOSPACE. */
enum chan_wire_error chan_wire_encode(const struct chan_wire_header *hdr,
                                      const void *payload,
                                      size_t payload_len,
                                      const void *key, size_t key_len,
                                      uint8_t *buf, size_t size,
                                      size_t *lenp);

/* Decodes and authenticates the 'len'-byte frame at 'frame' (a whole UDP
 * payload) with 'key'.  On success fills '*hdr', points '*payloadp' (if
 * nonnull) at the hdr->payload_len payload bytes inside 'frame' (borrowed
 * from the caller) and returns 0.  On failure returns the first error
 * found; '*hdr' and '*payloadp' are then unspecified.  Never reads outside
 * the frame. */
enum chan_wire_error chan_wire_decode(const void *frame, size_t len,
                                      const void *key, size_t key_len,
                                      struct chan_wire_header *hdr,
                                      const uint8_t **payloadp);

/* Chunker: splits one message into frames for a given MTU.
 *
 *     struct chan_chunker c;
 *     error = chan_chunker_init(&c, &tmpl, msg, msg_len, mtu);
 *     while (!error && chan_chunker_next(&c, &hdr, &p, &n)) {
 *         error = chan_wire_encode(&hdr, p, n, key, key_len, ...);
 *     }
 *
 * The template supplies type, flags, vid, epoch, ack and the first seq;
 * chunk i gets seq tmpl->seq + i, index i and count N.  Every chunk but the
 * last is chan_wire_max_payload(mtu) bytes; a 0-byte message is one empty
 * frame.  The members are private; the struct is public only so that it can
 * live on the stack.  'msg' is borrowed and must outlive the iteration. */
struct chan_chunker {
    struct chan_wire_header tmpl;
    const uint8_t *msg;
    size_t len;
    size_t chunk_size;
    unsigned int count;
    unsigned int next;
};

/* Returns 0, CHAN_WIRE_ERR_MTU, CHAN_WIRE_ERR_TOO_BIG (more than 65535
 * chunks), CHAN_WIRE_ERR_CHUNK_TYPE (non-DATA needing more than one chunk),
 * CHAN_WIRE_ERR_SEQ (seq range would wrap) or a template field error. */
enum chan_wire_error chan_chunker_init(struct chan_chunker *,
                                       const struct chan_wire_header *tmpl,
                                       const void *msg, size_t len,
                                       unsigned int mtu);

/* Number of frames the message takes. */
unsigned int chan_chunker_count(const struct chan_chunker *);

/* Produces the next chunk's header and payload slice (borrowed from the
 * message) and returns true, or returns false when all chunks are done. */
bool chan_chunker_next(struct chan_chunker *, struct chan_wire_header *hdr,
                       const uint8_t **payloadp, size_t *lenp);

/* Reassembler: turns the frames of one channel direction, fed in seq order
 * (after chan_wire_decode(); duplicates and gaps are the caller's business),
 * back into messages.  It owns its buffer. */
struct chan_reasm;

/* A complete message.  'data' is owned by the reassembler and stays valid
 * until the next chan_reasm_feed(), chan_reasm_reset() or
 * chan_reasm_destroy() on it. */
struct chan_msg {
    uint8_t type;
    uint8_t flags;              /* Of the last chunk (for ACK_VALID). */
    uint16_t vid;
    uint32_t epoch;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t ack;               /* Of the last chunk. */
    unsigned int n_chunks;
    const uint8_t *data;
    size_t len;
};

/* Creates a reassembler that refuses messages longer than 'max_msg' bytes
 * (0: CHAN_WIRE_DEFAULT_MAX_MSG).  Returns NULL only if out of memory.  The
 * caller owns the result and frees it with chan_reasm_destroy(). */
struct chan_reasm *chan_reasm_create(size_t max_msg);
void chan_reasm_destroy(struct chan_reasm *);

/* Discards any partial message (e.g. on epoch change). */
void chan_reasm_reset(struct chan_reasm *);

/* True if some chunks of a message have been fed but not the last one. */
bool chan_reasm_in_progress(const struct chan_reasm *);

/* Feeds one decoded frame ('hdr' and its hdr->payload_len payload bytes,
 * both borrowed and copied as needed).  Returns 0 and sets '*completep' to
 * true and fills '*msg' when this frame completes a message; returns 0 with
 * '*completep' false when the chunk was absorbed.  On error the partial
 * message is discarded (the reassembler is reset) and the offending frame
 * is not absorbed: a caller that wants to start over with it (for example
 * a chunk 0 that interrupted a message) may feed it again. */
enum chan_wire_error chan_reasm_feed(struct chan_reasm *,
                                     const struct chan_wire_header *hdr,
                                     const uint8_t *payload,
                                     struct chan_msg *msg, bool *completep);

/* Record batches: the payload of a DATA message.
 *
 *   {"records":[{"op":"put","key":K,"value":V,"version":N},
 *               {"op":"delete","key":K,"version":N}, ...]}
 *
 * K is a non-empty string of at most 256 bytes of UTF-8 without U+0000; V
 * is any JSON value (strings in it may contain \u0000, member names may
 * not); N is an integer 0..2^63-1.  "value" is required for put and
 * forbidden for delete.  No other members are allowed in the skeleton;
 * member names may not repeat within an object. */
enum chan_record_op {
    CHAN_OP_PUT = 1,
    CHAN_OP_DELETE = 2,
};

struct chan_record {
    enum chan_record_op op;
    char *key;                  /* Owned by the batch (malloc). */
    json_t *value;              /* Reference owned by the batch; NULL for
                                 * delete. */
    json_t *raw;                /* Encoding only: a put whose value is given
                                 * as its JSON text (a string reference owned
                                 * by the batch), or NULL. */
    int64_t version;            /* >= 0. */
};

struct chan_batch {
    struct chan_record *records;
    size_t n;
    size_t allocated;
};

/* Limits for decoding (and encoding) a batch or an object payload.  A
 * member that is 0 means its default.  'max_depth' bounds the nesting of
 * each record's value (a scalar has depth 0, [] or {} depth 1, [[1]] depth
 * 2), or of a whole object payload ({} has depth 1). */
struct chan_wire_limits {
    size_t max_records;         /* Default CHAN_WIRE_DEFAULT_MAX_RECORDS. */
    size_t max_depth;           /* Default CHAN_WIRE_DEFAULT_MAX_DEPTH. */
};

void chan_batch_init(struct chan_batch *);

/* Frees every record (keys, value references) and the array, leaving
 * 'batch' empty and initialized. */
void chan_batch_destroy(struct chan_batch *);

/* Appends a put of 'value' (reference borrowed: the batch takes its own)
 * or a delete.  'key' is copied.  Nothing is validated here; the encoder
 * validates.  Aborts if out of memory, like xmalloc(). */
void chan_batch_add_put(struct chan_batch *, const char *key,
                        json_t *value, int64_t version);
void chan_batch_add_delete(struct chan_batch *, const char *key,
                           int64_t version);

/* Appends a put whose value is the JSON string literal 'text' (a JSON
 * string holding it, reference borrowed: the batch takes its own), which
 * chan_json_string_is_simple() must accept: the encoder puts it in the
 * message as it is, without parsing and rendering it again.  For large
 * values. */
void chan_batch_add_put_raw(struct chan_batch *, const char *key,
                            json_t *text, int64_t version);

/* True if the 'len' bytes at 'text' are a JSON string literal of printable
 * ASCII and simple escapes only: '"', then bytes 0x20..0x7e other than '"'
 * and '\', or the escapes \" \\ \/ \b \f \n \r \t and \uXXXX (neither
 * 0000 nor a surrogate), then '"', nothing around it.  Every conforming
 * decoder, jansson included, reads such text as a string; anything else
 * (other bytes, surrogate pairs, whitespace around it) needs a parser. */
bool chan_json_string_is_simple(const char *text, size_t len);

/* Renders 'batch' as compact JSON text.  On success stores a malloc()ed,
 * NUL-terminated string (owned by the caller, free() it) in '*textp', its
 * length without the NUL in '*lenp', and returns 0.  Applies the same
 * checks as the decoder with 'limits' (NULL: defaults), so the text always
 * decodes again; on error stores NULL. */
enum chan_wire_error chan_batch_encode(const struct chan_batch *,
                                       const struct chan_wire_limits *,
                                       char **textp, size_t *lenp);

/* Applies to one record (a put of 'value', or a delete if 'value' is NULL)
 * the checks chan_batch_encode() applies with default limits, without
 * rendering anything: 0 if a batch of it encodes, else why not. */
enum chan_wire_error chan_record_check(const char *key, const json_t *value,
                                       int64_t version);

/* Strictly decodes the 'len' bytes of JSON at 'data' into 'batch', which
 * must be initialized and empty.  On success returns 0 and the batch owns
 * its records (free with chan_batch_destroy()).  On error returns the
 * first problem found and leaves 'batch' empty: nothing leaks. */
enum chan_wire_error chan_batch_decode(const void *data, size_t len,
                                       const struct chan_wire_limits *,
                                       struct chan_batch *batch);

/* Decodes the payload of a HELLO, SYNC, HEARTBEAT or ACK: a single JSON
 * object, or nothing.  On success stores a new reference (owned by the
 * caller: json_decref() it) in '*objp' (an empty object for an empty
 * payload) and returns 0; on error stores NULL.  Member names may not
 * repeat or contain \u0000; string values may contain \u0000. */
enum chan_wire_error chan_payload_decode_object(
    const void *data, size_t len, const struct chan_wire_limits *,
    json_t **objp);

/* Renders object 'obj' (borrowed; NULL or an empty object gives an empty
 * payload) as compact JSON.  On success stores a malloc()ed NUL-terminated
 * string, owned by the caller, in '*textp' (NULL for an empty payload) and
 * its length in '*lenp'.  Returns CHAN_WIRE_ERR_JSON_NOT_OBJECT or
 * CHAN_WIRE_ERR_JSON_TOO_DEEP or CHAN_WIRE_ERR_JSON (a member name
 * containing U+0000) for objects the decoder would reject. */
enum chan_wire_error chan_payload_encode_object(
    const json_t *obj, const struct chan_wire_limits *,
    char **textp, size_t *lenp);

#endif /* chan-wire.h */
