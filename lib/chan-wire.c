/* chan-wire: channel wire codec.  See chan-wire.h and doc/PROTOCOL.md. */

#include <config.h>
#include "chan-wire.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "packets.h"
#include "util.h"

/* Header field offsets. */
#define OFS_MAGIC 0
#define OFS_VERSION 2
#define OFS_TYPE 3
#define OFS_FLAGS 4
#define OFS_RESERVED1 5
#define OFS_VID 6
#define OFS_EPOCH 8
#define OFS_SEQ 12
#define OFS_ACK 20
#define OFS_CHUNK_INDEX 28
#define OFS_CHUNK_COUNT 30
#define OFS_PAYLOAD_LEN 32
#define OFS_RESERVED2 34

#define CHAN_WIRE_F_ALL (CHAN_WIRE_F_ACK_VALID | CHAN_WIRE_F_SNAPSHOT)

/* The table of known frame types and their rules.  To add a type, add a
 * row here (and its payload rules to doc/PROTOCOL.md). */
struct type_info {
    uint8_t type;
    const char *name;
    uint8_t flags;              /* Flags this type may carry. */
    bool multi_chunk;           /* May span more than one frame? */
    bool epoch0;                /* May carry epoch 0? */
    bool seq0;                  /* May carry seq 0? */
    bool ack_required;          /* Must carry ACK_VALID? */
};

static const struct type_info types[] = {
    { CHAN_WIRE_DATA, "DATA", CHAN_WIRE_F_ALL, true, false, false, false },
    { CHAN_WIRE_ACK, "ACK", CHAN_WIRE_F_ACK_VALID,
      false, true, true, true },
    { CHAN_WIRE_HELLO, "HELLO", CHAN_WIRE_F_ACK_VALID,
      false, true, true, false },
    { CHAN_WIRE_SYNC, "SYNC", CHAN_WIRE_F_ACK_VALID,
      false, false, true, false },
    { CHAN_WIRE_HEARTBEAT, "HEARTBEAT", CHAN_WIRE_F_ACK_VALID,
      false, false, true, false },
    { CHAN_WIRE_CHUNK, "CHUNK", 0, false, false, true, false },
    { CHAN_WIRE_XFER, "XFER", 0, false, false, true, false },
};

static const struct type_info *
type_lookup(unsigned int type)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (types[i].type == type) {
            return &types[i];
        }
    }
    return NULL;
}

bool
chan_wire_type_is_valid(unsigned int type)
{
    return type_lookup(type) != NULL;
}

const char *
chan_wire_type_name(unsigned int type)
{
    const struct type_info *ti = type_lookup(type);
    return ti ? ti->name : "unknown";
}

static const struct {
    const char *name;
    const char *text;
} errors[CHAN_WIRE_N_ERRORS] = {
    [CHAN_WIRE_OK] = { "ok", "success" },
    [CHAN_WIRE_ERR_NOSPACE] = { "nospace", "buffer too small for frame" },
    [CHAN_WIRE_ERR_TOO_BIG] = { "too_big", "payload too large to frame" },
    [CHAN_WIRE_ERR_MTU] = { "mtu", "MTU out of range" },
    [CHAN_WIRE_ERR_SHORT] = { "short", "frame shorter than header+trailer" },
    [CHAN_WIRE_ERR_MAGIC] = { "magic", "bad magic" },
    [CHAN_WIRE_ERR_VERSION] = { "version", "unsupported version" },
    [CHAN_WIRE_ERR_TRUNCATED] = { "truncated",
                                  "payload length exceeds frame" },
    [CHAN_WIRE_ERR_TRAILING] = { "trailing", "bytes after trailer" },
    [CHAN_WIRE_ERR_AUTH] = { "auth", "authentication failed" },
    [CHAN_WIRE_ERR_TYPE] = { "type", "unknown frame type" },
    [CHAN_WIRE_ERR_FLAGS] = { "flags", "undefined flag set" },
    [CHAN_WIRE_ERR_FLAGS_TYPE] = { "flags_type",
                                   "flag not allowed for frame type" },
    [CHAN_WIRE_ERR_RESERVED] = { "reserved", "reserved field not zero" },
    [CHAN_WIRE_ERR_VID] = { "vid", "vid out of range" },
    [CHAN_WIRE_ERR_EPOCH] = { "epoch", "epoch 0 outside HELLO" },
    [CHAN_WIRE_ERR_SEQ] = { "seq", "bad sequence number" },
    [CHAN_WIRE_ERR_ACK] = { "ack", "ack set without ACK_VALID" },
    [CHAN_WIRE_ERR_ACK_MISSING] = { "ack_missing",
                                    "ACK frame without ACK_VALID" },
    [CHAN_WIRE_ERR_CHUNK_COUNT] = { "chunk_count", "chunk count is 0" },
    [CHAN_WIRE_ERR_CHUNK_INDEX] = { "chunk_index",
                                    "chunk index not below count" },
    [CHAN_WIRE_ERR_CHUNK_TYPE] = { "chunk_type",
                                   "frame type may not be chunked" },
    [CHAN_WIRE_ERR_REASM_INDEX] = { "reasm_index",
                                    "unexpected chunk index" },
    [CHAN_WIRE_ERR_REASM_COUNT] = { "reasm_count",
                                    "chunk count changed mid-message" },
    [CHAN_WIRE_ERR_REASM_SEQ] = { "reasm_seq",
                                  "chunk seq not consecutive" },
    [CHAN_WIRE_ERR_REASM_MISMATCH] = { "reasm_mismatch",
                                       "chunk header differs mid-message" },
    [CHAN_WIRE_ERR_REASM_EMPTY] = { "reasm_empty",
                                    "empty chunk in multi-chunk message" },
    [CHAN_WIRE_ERR_MSG_TOO_BIG] = { "msg_too_big", "message too large" },
    [CHAN_WIRE_ERR_NOMEM] = { "nomem", "out of memory" },
    [CHAN_WIRE_ERR_JSON] = { "json", "invalid JSON" },
    [CHAN_WIRE_ERR_JSON_NOT_OBJECT] = { "json_not_object",
                                        "payload is not a JSON object" },
    [CHAN_WIRE_ERR_JSON_TOO_DEEP] = { "json_too_deep",
                                      "JSON nested too deeply" },
    [CHAN_WIRE_ERR_BATCH_MEMBER] = { "batch_member",
                                     "unknown member in batch" },
    [CHAN_WIRE_ERR_BATCH_NO_RECORDS] = { "batch_no_records",
                                         "batch has no \"records\"" },
    [CHAN_WIRE_ERR_BATCH_NOT_ARRAY] = { "batch_not_array",
                                        "\"records\" is not an array" },
    [CHAN_WIRE_ERR_BATCH_TOO_MANY] = { "batch_too_many",
                                       "too many records in batch" },
    [CHAN_WIRE_ERR_RECORD_NOT_OBJECT] = { "record_not_object",
                                          "record is not an object" },
    [CHAN_WIRE_ERR_RECORD_MEMBER] = { "record_member",
                                      "unknown member in record" },
    [CHAN_WIRE_ERR_OP_MISSING] = { "op_missing", "record has no \"op\"" },
    [CHAN_WIRE_ERR_OP_INVALID] = { "op_invalid",
                                   "\"op\" is not \"put\" or \"delete\"" },
    [CHAN_WIRE_ERR_KEY_MISSING] = { "key_missing", "record has no \"key\"" },
    [CHAN_WIRE_ERR_KEY_TYPE] = { "key_type", "\"key\" is not a string" },
    [CHAN_WIRE_ERR_KEY_EMPTY] = { "key_empty", "\"key\" is empty" },
    [CHAN_WIRE_ERR_KEY_TOO_LONG] = { "key_too_long",
                                     "\"key\" longer than 256 bytes" },
    [CHAN_WIRE_ERR_KEY_NUL] = { "key_nul", "\"key\" contains U+0000" },
    [CHAN_WIRE_ERR_KEY_UTF8] = { "key_utf8", "\"key\" is not UTF-8" },
    [CHAN_WIRE_ERR_VERSION_MISSING] = { "version_missing",
                                        "record has no \"version\"" },
    [CHAN_WIRE_ERR_VERSION_TYPE] = { "version_type",
                                     "\"version\" is not an integer" },
    [CHAN_WIRE_ERR_VERSION_NEGATIVE] = { "version_negative",
                                         "\"version\" is negative" },
    [CHAN_WIRE_ERR_VALUE_MISSING] = { "value_missing",
                                      "put record has no \"value\"" },
    [CHAN_WIRE_ERR_VALUE_UNEXPECTED] = { "value_unexpected",
                                         "delete record has a \"value\"" },
};

const char *
chan_wire_strerror(enum chan_wire_error error)
{
    return (unsigned int) error < CHAN_WIRE_N_ERRORS
           ? errors[error].text : "unknown channel wire error";
}

const char *
chan_wire_error_name(enum chan_wire_error error)
{
    return (unsigned int) error < CHAN_WIRE_N_ERRORS
           ? errors[error].name : "unknown";
}

size_t
chan_wire_max_frame(unsigned int mtu)
{
    return (mtu >= CHAN_WIRE_MIN_MTU && mtu <= CHAN_WIRE_MAX_MTU
            ? mtu - CHAN_WIRE_IP_UDP_LEN : 0);
}

size_t
chan_wire_max_payload(unsigned int mtu)
{
    size_t max_frame = chan_wire_max_frame(mtu);
    return max_frame ? max_frame - CHAN_WIRE_OVERHEAD : 0;
}

/* Frames and MAC. */

void
chan_wire_mac(const void *key, size_t key_len, const void *data, size_t len,
              uint8_t mac[CHAN_WIRE_TRAILER_LEN])
{
    static const uint8_t empty_key[1];
    uint8_t hashed_key[SHA256_DIGEST_LENGTH];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len;

    if (!key_len) {
        /* A zero-length key is valid HMAC; give OpenSSL a non-null
         * pointer so that it does not mean "reuse the previous key". */
        key = empty_key;
    } else if (key_len > 64) {
        /* HMAC itself replaces a key longer than the SHA-256 block size
         * by its hash (RFC 2104); doing it here avoids int overflow in
         * HMAC()'s key length. */
        SHA256(key, key_len, hashed_key);
        key = hashed_key;
        key_len = sizeof hashed_key;
    }
    HMAC(EVP_sha256(), key, key_len, data, len, md, &md_len);
    memcpy(mac, md, CHAN_WIRE_TRAILER_LEN);
}

enum chan_wire_error
chan_wire_check_header(const struct chan_wire_header *hdr)
{
    const struct type_info *ti = type_lookup(hdr->type);

    if (!ti) {
        return CHAN_WIRE_ERR_TYPE;
    } else if (hdr->flags & ~CHAN_WIRE_F_ALL) {
        return CHAN_WIRE_ERR_FLAGS;
    } else if (hdr->flags & ~ti->flags) {
        return CHAN_WIRE_ERR_FLAGS_TYPE;
    } else if (hdr->vid < 1 || hdr->vid > 4094) {
        return CHAN_WIRE_ERR_VID;
    } else if (!hdr->epoch && !ti->epoch0) {
        return CHAN_WIRE_ERR_EPOCH;
    } else if (hdr->ack && !(hdr->flags & CHAN_WIRE_F_ACK_VALID)) {
        return CHAN_WIRE_ERR_ACK;
    } else if (ti->ack_required && !(hdr->flags & CHAN_WIRE_F_ACK_VALID)) {
        return CHAN_WIRE_ERR_ACK_MISSING;
    } else if (!hdr->chunk_count) {
        return CHAN_WIRE_ERR_CHUNK_COUNT;
    } else if (hdr->chunk_index >= hdr->chunk_count) {
        return CHAN_WIRE_ERR_CHUNK_INDEX;
    } else if (hdr->chunk_count > 1 && !ti->multi_chunk) {
        return CHAN_WIRE_ERR_CHUNK_TYPE;
    }

    /* The message's first chunk has seq 'seq - chunk_index' and its last
     * 'seq + (chunk_count - 1 - chunk_index)': both must be representable
     * and, where seq 0 is not allowed, nonzero. */
    uint64_t before = hdr->chunk_index;
    uint64_t after = hdr->chunk_count - 1 - hdr->chunk_index;
    if ((ti->seq0 ? hdr->seq < before : hdr->seq <= before)
        || hdr->seq > UINT64_MAX - after) {
        return CHAN_WIRE_ERR_SEQ;
    }
    return CHAN_WIRE_OK;
}

enum chan_wire_error
chan_wire_encode(const struct chan_wire_header *hdr,
                 const void *payload, size_t payload_len,
                 const void *key, size_t key_len,
                 uint8_t *buf, size_t size, size_t *lenp)
{
    enum chan_wire_error error = chan_wire_check_header(hdr);
    if (error) {
        return error;
    } else if (payload_len > CHAN_WIRE_MAX_PAYLOAD) {
        return CHAN_WIRE_ERR_TOO_BIG;
    } else if (size < CHAN_WIRE_OVERHEAD + payload_len) {
        return CHAN_WIRE_ERR_NOSPACE;
    }

    pkt_put_be16(buf + OFS_MAGIC, CHAN_WIRE_MAGIC);
    buf[OFS_VERSION] = CHAN_WIRE_VERSION;
    buf[OFS_TYPE] = hdr->type;
    buf[OFS_FLAGS] = hdr->flags;
    buf[OFS_RESERVED1] = 0;
    pkt_put_be16(buf + OFS_VID, hdr->vid);
    pkt_put_be32(buf + OFS_EPOCH, hdr->epoch);
    pkt_put_be64(buf + OFS_SEQ, hdr->seq);
    pkt_put_be64(buf + OFS_ACK, hdr->ack);
    pkt_put_be16(buf + OFS_CHUNK_INDEX, hdr->chunk_index);
    pkt_put_be16(buf + OFS_CHUNK_COUNT, hdr->chunk_count);
    pkt_put_be16(buf + OFS_PAYLOAD_LEN, payload_len);
    pkt_put_be16(buf + OFS_RESERVED2, 0);
    if (payload_len) {
        memcpy(buf + CHAN_WIRE_HEADER_LEN, payload, payload_len);
    }
    chan_wire_mac(key, key_len, buf, CHAN_WIRE_HEADER_LEN + payload_len,
                  buf + CHAN_WIRE_HEADER_LEN + payload_len);
    *lenp = CHAN_WIRE_OVERHEAD + payload_len;
    return CHAN_WIRE_OK;
}

enum chan_wire_error
chan_wire_decode(const void *frame_, size_t len,
                 const void *key, size_t key_len,
                 struct chan_wire_header *hdr, const uint8_t **payloadp)
{
    const uint8_t *frame = frame_;

    /* Framing: enough to find the trailer. */
    if (len < CHAN_WIRE_OVERHEAD) {
        return CHAN_WIRE_ERR_SHORT;
    } else if (pkt_get_be16(frame + OFS_MAGIC) != CHAN_WIRE_MAGIC) {
        return CHAN_WIRE_ERR_MAGIC;
    } else if (frame[OFS_VERSION] != CHAN_WIRE_VERSION) {
        return CHAN_WIRE_ERR_VERSION;
    }
    size_t payload_len = pkt_get_be16(frame + OFS_PAYLOAD_LEN);
    if (len - CHAN_WIRE_OVERHEAD < payload_len) {
        return CHAN_WIRE_ERR_TRUNCATED;
    } else if (len - CHAN_WIRE_OVERHEAD > payload_len) {
        return CHAN_WIRE_ERR_TRAILING;
    }

    /* Authenticate before interpreting anything else. */
    uint8_t mac[CHAN_WIRE_TRAILER_LEN];
    size_t signed_len = CHAN_WIRE_HEADER_LEN + payload_len;
    chan_wire_mac(key, key_len, frame, signed_len, mac);
    if (CRYPTO_memcmp(mac, frame + signed_len, sizeof mac)) {
        return CHAN_WIRE_ERR_AUTH;
    }

    /* Fields. */
    hdr->type = frame[OFS_TYPE];
    hdr->flags = frame[OFS_FLAGS];
    hdr->vid = pkt_get_be16(frame + OFS_VID);
    hdr->epoch = pkt_get_be32(frame + OFS_EPOCH);
    hdr->seq = pkt_get_be64(frame + OFS_SEQ);
    hdr->ack = pkt_get_be64(frame + OFS_ACK);
    hdr->chunk_index = pkt_get_be16(frame + OFS_CHUNK_INDEX);
    hdr->chunk_count = pkt_get_be16(frame + OFS_CHUNK_COUNT);
    hdr->payload_len = payload_len;
    if (frame[OFS_RESERVED1] || pkt_get_be16(frame + OFS_RESERVED2)) {
        return CHAN_WIRE_ERR_RESERVED;
    }
    enum chan_wire_error error = chan_wire_check_header(hdr);
    if (error) {
        return error;
    }
    if (payloadp) {
        *payloadp = frame + CHAN_WIRE_HEADER_LEN;
    }
    return CHAN_WIRE_OK;
}

/* Chunker. */

enum chan_wire_error
chan_chunker_init(struct chan_chunker *c, const struct chan_wire_header *tmpl,
                  const void *msg, size_t len, unsigned int mtu)
{
    size_t chunk_size = chan_wire_max_payload(mtu);
    if (!chunk_size) {
        return CHAN_WIRE_ERR_MTU;
    }
    size_t count = len ? (len - 1) / chunk_size + 1 : 1;
    if (count > UINT16_MAX) {
        return CHAN_WIRE_ERR_TOO_BIG;
    }

    /* Checking the first chunk's header also checks that the whole seq
     * range fits and that the type may be chunked. */
    struct chan_wire_header first = *tmpl;
    first.chunk_index = 0;
    first.chunk_count = count;
    enum chan_wire_error error = chan_wire_check_header(&first);
    if (error) {
        return error;
    }

    c->tmpl = first;
    c->msg = msg;
    c->len = len;
    c->chunk_size = chunk_size;
    c->count = count;
    c->next = 0;
    return CHAN_WIRE_OK;
}

unsigned int
chan_chunker_count(const struct chan_chunker *c)
{
    return c->count;
}

bool
chan_chunker_next(struct chan_chunker *c, struct chan_wire_header *hdr,
                  const uint8_t **payloadp, size_t *lenp)
{
    if (c->next >= c->count) {
        return false;
    }

    size_t ofs = (size_t) c->next * c->chunk_size;
    size_t n = c->len - ofs < c->chunk_size ? c->len - ofs : c->chunk_size;

    *hdr = c->tmpl;
    hdr->seq = c->tmpl.seq + c->next;
    hdr->chunk_index = c->next;
    hdr->payload_len = n;
    *payloadp = c->msg ? c->msg + ofs : NULL;
    *lenp = n;
    c->next++;
    return true;
}

/* Reassembler. */

/* A reassembly buffer larger than this is freed between messages, so that
 * one large message does not pin its memory for the channel's lifetime. */
#define REASM_KEEP (1024 * 1024)

struct chan_reasm {
    size_t max_msg;             /* Limit on a message's length. */

    /* The buffer, owned: 'len' bytes used of 'allocated'.  After a message
     * completes it still holds that message (chan_msg points into it)
     * until the next feed or reset. */
    uint8_t *buf;
    size_t len;
    size_t allocated;

    /* The message in progress, if 'active'. */
    bool active;
    struct chan_wire_header first; /* First chunk's header. */
    unsigned int next_index;
};

struct chan_reasm *
chan_reasm_create(size_t max_msg)
{
    struct chan_reasm *r = calloc(1, sizeof *r);
    if (r) {
        r->max_msg = max_msg ? max_msg : CHAN_WIRE_DEFAULT_MAX_MSG;
    }
    return r;
}

void
chan_reasm_destroy(struct chan_reasm *r)
{
    if (r) {
        free(r->buf);
        free(r);
    }
}

static void
reasm_release_big(struct chan_reasm *r)
{
    if (r->allocated > REASM_KEEP) {
        free(r->buf);
        r->buf = NULL;
        r->allocated = 0;
    }
}

void
chan_reasm_reset(struct chan_reasm *r)
{
    r->active = false;
    r->len = 0;
    r->next_index = 0;
    reasm_release_big(r);
}

bool
chan_reasm_in_progress(const struct chan_reasm *r)
{
    return r->active;
}

static enum chan_wire_error
reasm_fail(struct chan_reasm *r, enum chan_wire_error error)
{
    chan_reasm_reset(r);
    return error;
}

/* Appends 'n' bytes at 'data' to the buffer, growing it geometrically (so
 * a lying chunk count cannot make us allocate up front). */
static enum chan_wire_error
reasm_append(struct chan_reasm *r, const uint8_t *data, size_t n)
{
    if (n > r->max_msg - r->len) {
        return CHAN_WIRE_ERR_MSG_TOO_BIG;
    }
    size_t need = r->len + n;
    if (need > r->allocated) {
        size_t new_size = r->allocated ? r->allocated : 4096;
        while (new_size < need) {
            new_size = new_size > SIZE_MAX / 2 ? need : new_size * 2;
        }
        if (new_size > r->max_msg) {
            new_size = r->max_msg;
        }
        uint8_t *p = realloc(r->buf, new_size);
        if (!p) {
            return CHAN_WIRE_ERR_NOMEM;
        }
        r->buf = p;
        r->allocated = new_size;
    }
    if (n) {
        memcpy(r->buf + r->len, data, n);
        r->len += n;
    }
    return CHAN_WIRE_OK;
}

enum chan_wire_error
chan_reasm_feed(struct chan_reasm *r, const struct chan_wire_header *hdr,
                const uint8_t *payload, struct chan_msg *msg,
                bool *completep)
{
    *completep = false;

    if (!r->active) {
        /* Start of a message.  The previous complete message, if any, is
         * forgotten now. */
        chan_reasm_reset(r);
        if (hdr->chunk_index != 0) {
            return reasm_fail(r, CHAN_WIRE_ERR_REASM_INDEX);
        } else if (hdr->chunk_count > 1 && !hdr->payload_len) {
            return reasm_fail(r, CHAN_WIRE_ERR_REASM_EMPTY);
        }
        r->first = *hdr;
    } else {
        const struct chan_wire_header *first = &r->first;
        if (hdr->chunk_count != first->chunk_count) {
            return reasm_fail(r, CHAN_WIRE_ERR_REASM_COUNT);
        } else if (hdr->chunk_index != r->next_index) {
            return reasm_fail(r, CHAN_WIRE_ERR_REASM_INDEX);
        } else if (hdr->seq != first->seq + hdr->chunk_index) {
            return reasm_fail(r, CHAN_WIRE_ERR_REASM_SEQ);
        } else if (hdr->type != first->type || hdr->vid != first->vid
                   || hdr->epoch != first->epoch
                   || ((hdr->flags ^ first->flags) & CHAN_WIRE_F_SNAPSHOT)) {
            return reasm_fail(r, CHAN_WIRE_ERR_REASM_MISMATCH);
        } else if (!hdr->payload_len) {
            return reasm_fail(r, CHAN_WIRE_ERR_REASM_EMPTY);
        }
    }

    enum chan_wire_error error = reasm_append(r, payload, hdr->payload_len);
    if (error) {
        return reasm_fail(r, error);
    }

    if (hdr->chunk_index + 1 < hdr->chunk_count) {
        r->active = true;
        r->next_index = hdr->chunk_index + 1;
        return CHAN_WIRE_OK;
    }

    /* Last chunk: the message is complete.  Keep 'buf' and 'len' for the
     * caller until the next feed or reset. */
    r->active = false;
    r->next_index = 0;
    msg->type = r->first.type;
    msg->flags = ((r->first.flags & CHAN_WIRE_F_SNAPSHOT)
                  | (hdr->flags & CHAN_WIRE_F_ACK_VALID));
    msg->vid = r->first.vid;
    msg->epoch = r->first.epoch;
    msg->first_seq = r->first.seq;
    msg->last_seq = hdr->seq;
    msg->ack = hdr->ack;
    msg->n_chunks = hdr->chunk_count;
    msg->data = r->buf;
    msg->len = r->len;
    *completep = true;
    return CHAN_WIRE_OK;
}

/* JSON payloads. */

/* Flags for every json_loadb() here: any top-level value (so that we can
 * say "not an object" ourselves), no duplicate member names, \u0000
 * allowed in string values (jansson still rejects it in member names). */
#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static size_t
limit_records(const struct chan_wire_limits *limits)
{
    return (limits && limits->max_records
            ? limits->max_records : CHAN_WIRE_DEFAULT_MAX_RECORDS);
}

static size_t
limit_depth(const struct chan_wire_limits *limits)
{
    return (limits && limits->max_depth
            ? limits->max_depth : CHAN_WIRE_DEFAULT_MAX_DEPTH);
}

/* Checks that 'json' (borrowed) nests no deeper than 'max' (a scalar has
 * depth 0) and, for values built in memory, that no member name contains
 * U+0000 (which the decoder cannot accept).  Recursion is bounded by
 * 'max' + 1. */
static enum chan_wire_error
check_json(const json_t *json, size_t max)
{
    if (json_is_array(json)) {
        if (!max) {
            return CHAN_WIRE_ERR_JSON_TOO_DEEP;
        }
        for (size_t i = 0; i < json_array_size(json); i++) {
            enum chan_wire_error error = check_json(json_array_get(json, i),
                                                    max - 1);
            if (error) {
                return error;
            }
        }
    } else if (json_is_object(json)) {
        if (!max) {
            return CHAN_WIRE_ERR_JSON_TOO_DEEP;
        }
        /* The iteration functions take a non-const object but do not
         * modify it. */
        json_t *obj = (json_t *) json;
        const char *name;
        json_t *value;
        void *iter;
        for (iter = json_object_iter(obj); iter;
             iter = json_object_iter_next(obj, iter)) {
            name = json_object_iter_key(iter);
            value = json_object_iter_value(iter);
#if JANSSON_VERSION_HEX >= 0x020e00
            if (strlen(name) != json_object_iter_key_len(iter)) {
                return CHAN_WIRE_ERR_JSON;
            }
#endif
            enum chan_wire_error error = check_json(value, max - 1);
            if (error) {
                return error;
            }
        }
    }
    return CHAN_WIRE_OK;
}

/* Renders 'json' (borrowed) compactly into a malloc()ed NUL-terminated
 * string owned by the caller. */
static enum chan_wire_error
dump_json(const json_t *json, char **textp, size_t *lenp)
{
    /* One pass: the output of a large value is not rendered twice to learn
     * its size.  Control characters, NUL included, are escaped in JSON
     * text, so its length is strlen(). */
    char *text = json_dumps(json, JSON_COMPACT);
    if (!text) {
        return CHAN_WIRE_ERR_NOMEM;
    }
    *textp = text;
    *lenp = strlen(text);
    return CHAN_WIRE_OK;
}

void
chan_batch_init(struct chan_batch *batch)
{
    batch->records = NULL;
    batch->n = 0;
    batch->allocated = 0;
}

void
chan_batch_destroy(struct chan_batch *batch)
{
    for (size_t i = 0; i < batch->n; i++) {
        free(batch->records[i].key);
        json_decref(batch->records[i].value);
        json_decref(batch->records[i].raw);
    }
    free(batch->records);
    chan_batch_init(batch);
}

static struct chan_record *
batch_append(struct chan_batch *batch, const char *key)
{
    if (batch->n >= batch->allocated) {
        batch->allocated = batch->allocated ? 2 * batch->allocated : 16;
        batch->records = xrealloc(
            batch->records, batch->allocated * sizeof *batch->records);
    }

    struct chan_record *rec = &batch->records[batch->n++];
    size_t key_len = strlen(key);
    rec->key = xrealloc(NULL, key_len + 1);
    memcpy(rec->key, key, key_len + 1);
    rec->value = NULL;
    rec->raw = NULL;
    return rec;
}

void
chan_batch_add_put(struct chan_batch *batch, const char *key, json_t *value,
                   int64_t version)
{
    struct chan_record *rec = batch_append(batch, key);
    rec->op = CHAN_OP_PUT;
    rec->value = json_incref(value);
    rec->version = version;
}

void
chan_batch_add_delete(struct chan_batch *batch, const char *key,
                      int64_t version)
{
    struct chan_record *rec = batch_append(batch, key);
    rec->op = CHAN_OP_DELETE;
    rec->version = version;
}

void
chan_batch_add_put_raw(struct chan_batch *batch, const char *key,
                       json_t *text, int64_t version)
{
    struct chan_record *rec = batch_append(batch, key);
    rec->op = CHAN_OP_PUT;
    rec->raw = json_incref(text);
    rec->version = version;
}

static int
hex_value(unsigned char c)
{
    return (c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
            : -1);
}

bool
chan_json_string_is_simple(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *) text;
    if (len < 2 || p[0] != '"' || p[len - 1] != '"') {
        return false;
    }
    const unsigned char *end = p + len - 1;
    for (p++; p < end; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            continue;
        } else if (c != '\\' || p + 1 >= end) {
            return false;
        }
        c = *++p;
        if (c == 'u') {
            if (end - p < 5) {
                return false;
            }
            unsigned int u = 0;
            for (int i = 1; i <= 4; i++) {
                int h = hex_value(p[i]);
                if (h < 0) {
                    return false;
                }
                u = u << 4 | h;
            }
            if (!u || (u >= 0xd800 && u <= 0xdfff)) {
                return false;
            }
            p += 4;
        } else if (!strchr("\"\\/bfnrt", c) || !c) {
            return false;
        }
    }
    return true;
}

static const char *
op_name(enum chan_record_op op)
{
    return op == CHAN_OP_PUT ? "put" : op == CHAN_OP_DELETE ? "delete" : NULL;
}

/* Validates 'rec' as the encoder must and, on success, stores a new
 * reference to its JSON form in '*jsonp'. */
static enum chan_wire_error
record_to_json(const struct chan_record *rec, size_t max_depth,
               json_t **jsonp)
{
    const char *op = op_name(rec->op);
    size_t key_len = strlen(rec->key);

    if (!op) {
        return CHAN_WIRE_ERR_OP_INVALID;
    } else if (!key_len) {
        return CHAN_WIRE_ERR_KEY_EMPTY;
    } else if (key_len > CHAN_WIRE_MAX_KEY_LEN) {
        return CHAN_WIRE_ERR_KEY_TOO_LONG;
    } else if (rec->version < 0) {
        return CHAN_WIRE_ERR_VERSION_NEGATIVE;
    } else if (rec->op == CHAN_OP_PUT && !rec->value) {
        return CHAN_WIRE_ERR_VALUE_MISSING;
    } else if (rec->op == CHAN_OP_DELETE && rec->value) {
        return CHAN_WIRE_ERR_VALUE_UNEXPECTED;
    }
    if (rec->value) {
        enum chan_wire_error error = check_json(rec->value, max_depth);
        if (error) {
            return error;
        }
    }

    json_t *key = json_string(rec->key);
    if (!key) {
        return CHAN_WIRE_ERR_KEY_UTF8;
    }
    json_t *json = json_object();
    json_object_set_new(json, "op", json_string(op));
    json_object_set_new(json, "key", key);
    if (rec->value) {
        json_object_set(json, "value", rec->value);
    }
    json_object_set_new(json, "version", json_integer(rec->version));
    *jsonp = json;
    return CHAN_WIRE_OK;
}

/* Appends 'len' bytes at 'data' to the malloc()ed buffer '*bufp' of
 * '*lenp' bytes, '*allocp' allocated. */
static void
buf_put(char **bufp, size_t *lenp, size_t *allocp, const char *data,
        size_t len)
{
    if (*lenp + len + 1 > *allocp) {
        size_t alloc = *allocp ? *allocp : 256;
        while (alloc < *lenp + len + 1) {
            alloc *= 2;
        }
        *bufp = xrealloc(*bufp, alloc);
        *allocp = alloc;
    }
    memcpy(*bufp + *lenp, data, len);
    *lenp += len;
    (*bufp)[*lenp] = '\0';
}

/* Renders 'batch', some of whose puts carry their value as JSON text, the
 * way chan_batch_encode() renders a batch without any: each record as
 * record_to_json() makes it, compact, with the text in place of the value
 * for those. */
static enum chan_wire_error
encode_with_raw(const struct chan_batch *batch, size_t max_depth,
                char **textp, size_t *lenp)
{
    char *buf = NULL;
    size_t len = 0, alloc = 0;
    buf_put(&buf, &len, &alloc, "{\"records\":[", 12);
    for (size_t i = 0; i < batch->n; i++) {
        const struct chan_record *rec = &batch->records[i];
        struct chan_record check = *rec;
        if (rec->raw) {
            /* Checked as a put of null: the key, the version. */
            check.value = json_null();
        }
        json_t *json;
        enum chan_wire_error error = record_to_json(&check, max_depth, &json);
        if (error) {
            free(buf);
            return error;
        }
        char *text;
        size_t text_len;
        error = dump_json(json, &text, &text_len);
        json_decref(json);
        if (error) {
            free(buf);
            return error;
        }
        if (i) {
            buf_put(&buf, &len, &alloc, ",", 1);
        }
        if (rec->raw) {
            /* {"op":"put","key":K,"value":null,"version":V}: the text
             * replaces the null. */
            char *null = strstr(text, ",\"value\":null,\"version\":");
            size_t head = null - text + 9;
            buf_put(&buf, &len, &alloc, text, head);
            buf_put(&buf, &len, &alloc, json_string_value(rec->raw),
                    json_string_length(rec->raw));
            buf_put(&buf, &len, &alloc, text + head + 4,
                    text_len - head - 4);
        } else {
            buf_put(&buf, &len, &alloc, text, text_len);
        }
        free(text);
    }
    buf_put(&buf, &len, &alloc, "]}", 2);
    *textp = buf;
    *lenp = len;
    return CHAN_WIRE_OK;
}

enum chan_wire_error
chan_batch_encode(const struct chan_batch *batch,
                  const struct chan_wire_limits *limits,
                  char **textp, size_t *lenp)
{
    size_t max_depth = limit_depth(limits);
    enum chan_wire_error error = CHAN_WIRE_OK;

    *textp = NULL;
    *lenp = 0;
    if (batch->n > limit_records(limits)) {
        return CHAN_WIRE_ERR_BATCH_TOO_MANY;
    }

    for (size_t i = 0; i < batch->n; i++) {
        if (batch->records[i].raw) {
            return encode_with_raw(batch, max_depth, textp, lenp);
        }
    }

    json_t *records = json_array();
    for (size_t i = 0; i < batch->n; i++) {
        json_t *rec;
        error = record_to_json(&batch->records[i], max_depth, &rec);
        if (error) {
            json_decref(records);
            return error;
        }
        json_array_append_new(records, rec);
    }

    json_t *root = json_object();
    json_object_set_new(root, "records", records);
    error = dump_json(root, textp, lenp);
    json_decref(root);
    return error;
}

enum chan_wire_error
chan_record_check(const char *key, const json_t *value, int64_t version)
{
    struct chan_record rec = {
        .op = value ? CHAN_OP_PUT : CHAN_OP_DELETE,
        .key = (char *) key,
        .value = (json_t *) value,
        .version = version,
    };
    json_t *json;
    enum chan_wire_error error = record_to_json(&rec, limit_depth(NULL),
                                                &json);
    if (!error) {
        json_decref(json);
    }
    return error;
}

/* Parses one record object 'json' (borrowed) into 'rec'.  On success 'rec'
 * owns a malloc()ed key and a new reference to the value. */
static enum chan_wire_error
record_from_json(json_t *json, size_t max_depth, struct chan_record *rec)
{
    json_t *op = NULL, *key = NULL, *value = NULL, *version = NULL;
    const char *name;
    json_t *member;

    if (!json_is_object(json)) {
        return CHAN_WIRE_ERR_RECORD_NOT_OBJECT;
    }
    json_object_foreach (json, name, member) {
        if (!strcmp(name, "op")) {
            op = member;
        } else if (!strcmp(name, "key")) {
            key = member;
        } else if (!strcmp(name, "value")) {
            value = member;
        } else if (!strcmp(name, "version")) {
            version = member;
        } else {
            return CHAN_WIRE_ERR_RECORD_MEMBER;
        }
    }

    if (!op) {
        return CHAN_WIRE_ERR_OP_MISSING;
    } else if (!json_is_string(op)) {
        return CHAN_WIRE_ERR_OP_INVALID;
    }
    const char *op_s = json_string_value(op);
    size_t op_len = json_string_length(op);
    if (op_len == 3 && !memcmp(op_s, "put", 3)) {
        rec->op = CHAN_OP_PUT;
    } else if (op_len == 6 && !memcmp(op_s, "delete", 6)) {
        rec->op = CHAN_OP_DELETE;
    } else {
        return CHAN_WIRE_ERR_OP_INVALID;
    }

    if (!key) {
        return CHAN_WIRE_ERR_KEY_MISSING;
    } else if (!json_is_string(key)) {
        return CHAN_WIRE_ERR_KEY_TYPE;
    }
    size_t key_len = json_string_length(key);
    const char *key_s = json_string_value(key);
    if (!key_len) {
        return CHAN_WIRE_ERR_KEY_EMPTY;
    } else if (key_len > CHAN_WIRE_MAX_KEY_LEN) {
        return CHAN_WIRE_ERR_KEY_TOO_LONG;
    } else if (memchr(key_s, '\0', key_len)) {
        return CHAN_WIRE_ERR_KEY_NUL;
    }

    if (!version) {
        return CHAN_WIRE_ERR_VERSION_MISSING;
    } else if (!json_is_integer(version)) {
        return CHAN_WIRE_ERR_VERSION_TYPE;
    } else if (json_integer_value(version) < 0) {
        return CHAN_WIRE_ERR_VERSION_NEGATIVE;
    }

    if (rec->op == CHAN_OP_PUT && !value) {
        return CHAN_WIRE_ERR_VALUE_MISSING;
    } else if (rec->op == CHAN_OP_DELETE && value) {
        return CHAN_WIRE_ERR_VALUE_UNEXPECTED;
    }
    if (value) {
        enum chan_wire_error error = check_json(value, max_depth);
        if (error) {
            return error;
        }
    }

    rec->key = xrealloc(NULL, key_len + 1);
    memcpy(rec->key, key_s, key_len + 1);
    rec->value = json_incref(value);
    rec->version = json_integer_value(version);
    return CHAN_WIRE_OK;
}

enum chan_wire_error
chan_batch_decode(const void *data, size_t len,
                  const struct chan_wire_limits *limits,
                  struct chan_batch *batch)
{
    size_t max_depth = limit_depth(limits);
    enum chan_wire_error error;
    json_error_t jerror;

    json_t *root = json_loadb(data, len, LOAD_FLAGS, &jerror);
    if (!root) {
        return CHAN_WIRE_ERR_JSON;
    }

    /* 'root' is ours; every exit below goes through 'out'. */
    json_t *records = NULL;
    if (!json_is_object(root)) {
        error = CHAN_WIRE_ERR_JSON_NOT_OBJECT;
        goto out;
    }
    const char *name;
    json_t *member;
    json_object_foreach (root, name, member) {
        if (strcmp(name, "records")) {
            error = CHAN_WIRE_ERR_BATCH_MEMBER;
            goto out;
        }
        records = member;
    }
    if (!records) {
        error = CHAN_WIRE_ERR_BATCH_NO_RECORDS;
        goto out;
    } else if (!json_is_array(records)) {
        error = CHAN_WIRE_ERR_BATCH_NOT_ARRAY;
        goto out;
    }
    size_t n = json_array_size(records);
    if (n > limit_records(limits)) {
        error = CHAN_WIRE_ERR_BATCH_TOO_MANY;
        goto out;
    }

    batch->records = xcalloc(n ? n : 1, sizeof *batch->records);
    batch->allocated = n;
    batch->n = 0;
    for (size_t i = 0; i < n; i++) {
        error = record_from_json(json_array_get(records, i), max_depth,
                                 &batch->records[i]);
        if (error) {
            goto out;
        }
        batch->n++;
    }
    error = CHAN_WIRE_OK;

out:
    if (error) {
        chan_batch_destroy(batch);
    }
    json_decref(root);
    return error;
}

enum chan_wire_error
chan_payload_decode_object(const void *data, size_t len,
                           const struct chan_wire_limits *limits,
                           json_t **objp)
{
    json_error_t jerror;
    json_t *obj;

    *objp = NULL;
    if (!len) {
        obj = json_object();
        if (!obj) {
            return CHAN_WIRE_ERR_NOMEM;
        }
        *objp = obj;
        return CHAN_WIRE_OK;
    }

    obj = json_loadb(data, len, LOAD_FLAGS, &jerror);
    if (!obj) {
        return CHAN_WIRE_ERR_JSON;
    }
    enum chan_wire_error error = (!json_is_object(obj)
                                  ? CHAN_WIRE_ERR_JSON_NOT_OBJECT
                                  : check_json(obj, limit_depth(limits)));
    if (error) {
        json_decref(obj);
        return error;
    }
    *objp = obj;
    return CHAN_WIRE_OK;
}

enum chan_wire_error
chan_payload_encode_object(const json_t *obj,
                           const struct chan_wire_limits *limits,
                           char **textp, size_t *lenp)
{
    *textp = NULL;
    *lenp = 0;
    if (!obj) {
        return CHAN_WIRE_OK;
    } else if (!json_is_object(obj)) {
        return CHAN_WIRE_ERR_JSON_NOT_OBJECT;
    } else if (!json_object_size(obj)) {
        return CHAN_WIRE_OK;
    }

    enum chan_wire_error error = check_json(obj, limit_depth(limits));
    return error ? error : dump_json(obj, textp, lenp);
}
