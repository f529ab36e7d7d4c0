/* Copyright (c) 2026 The chand authors.  See xfer.h. */

#include <config.h>
#include "xfer.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chan-wire.h"
#include "hmap.h"
#include "list.h"
#include "util.h"

/* The XFER message codec. */

#define XFER_ERROR_MAX 32       /* Bytes of a FAIL error name. */

uint64_t
xfer_n_chunks(uint64_t size, uint32_t chunk_size)
{
    if (!chunk_size) {
        return 0;
    }
    return size ? (size - 1) / chunk_size + 1 : 1;
}

uint32_t
xfer_chunk_len(uint64_t size, uint32_t chunk_size, uint64_t index)
{
    uint64_t n = xfer_n_chunks(size, chunk_size);
    if (index >= n) {
        return 0;
    } else if (index < n - 1) {
        return chunk_size;
    } else {
        return size - index * chunk_size;
    }
}

bool
xfer_digest_is_valid(const char *s)
{
    for (size_t i = 0; i < XFER_DIGEST_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[XFER_DIGEST_LEN] == '\0';
}

/* True if the 'len' bytes at 's' are a FAIL error name: 1..32 bytes of
 * [a-z0-9_]. */
static bool
error_name_is_valid(const char *s, size_t len)
{
    if (!len || len > XFER_ERROR_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_')) {
            return false;
        }
    }
    return true;
}

/* Copies at most 'max' bytes of the 'len' bytes of UTF-8 at 's' into 'dst'
 * (room for 'max' + 1), stopping before a U+0000 and never cutting a
 * character in two, and NUL-terminates it.  's' is valid UTF-8 (jansson
 * checked it). */
static void
copy_utf8_truncated(char *dst, const char *s, size_t len, size_t max)
{
    const char *nul = memchr(s, '\0', len);
    if (nul) {
        len = nul - s;
    }
    if (len > max) {
        len = max;
        /* Back off over continuation bytes (10xxxxxx) to the start of the
         * character that would be cut, and drop it. */
        while (len > 0 && ((unsigned char) s[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* Members each op allows. */
static bool
member_is_allowed(enum xfer_op op, const char *name)
{
    if (!strcmp(name, "op") || !strcmp(name, "digest")) {
        return true;
    }
    switch (op) {
    case XFER_OP_GET:
        return (!strcmp(name, "size") || !strcmp(name, "chunk_size")
                || !strcmp(name, "ranges"));
    case XFER_OP_FAIL:
        return !strcmp(name, "error") || !strcmp(name, "reason");
    case XFER_OP_DONE:
        return false;
    }
    return false;
}

/* Parses the "ranges" of a GET into 'msg', whose 'size' and 'chunk_size'
 * are already valid. */
static const char *
parse_ranges(const json_t *ranges, struct xfer_msg *msg)
{
    uint64_t n_chunks = xfer_n_chunks(msg->size, msg->chunk_size);
    uint64_t total = 0;

    if (!ranges) {
        return "GET has no \"ranges\"";
    } else if (!json_is_array(ranges)) {
        return "GET \"ranges\" is not an array";
    } else if (!json_array_size(ranges)) {
        return "GET \"ranges\" is empty";
    } else if (json_array_size(ranges) > XFER_MAX_RANGES) {
        return "GET has more than 64 ranges";
    }

    msg->n_ranges = json_array_size(ranges);
    for (size_t i = 0; i < msg->n_ranges; i++) {
        const json_t *pair = json_array_get(ranges, i);
        const json_t *jfirst = json_array_get(pair, 0);
        const json_t *jcount = json_array_get(pair, 1);
        if (!json_is_array(pair) || json_array_size(pair) != 2
            || !json_is_integer(jfirst) || !json_is_integer(jcount)) {
            return "GET range is not a [first, count] pair of integers";
        }

        json_int_t first = json_integer_value(jfirst);
        json_int_t count = json_integer_value(jcount);
        if (first < 0) {
            return "GET range has a negative first chunk";
        } else if (count < 1) {
            return "GET range has a count below 1";
        } else if (count > XFER_MAX_GET_CHUNKS) {
            return "GET asks for more than 256 chunks";
        } else if ((uint64_t) first >= n_chunks) {
            return "GET range starts past the object's last chunk";
        } else if ((uint64_t) count > n_chunks - first) {
            return "GET range runs past the object's last chunk";
        }
        total += count;
        if (total > XFER_MAX_GET_CHUNKS) {
            return "GET asks for more than 256 chunks";
        }
        msg->ranges[i].first = first;
        msg->ranges[i].count = count;
    }
    return NULL;
}

static const char *
parse_get(const json_t *obj, struct xfer_msg *msg)
{
    const json_t *size = json_object_get(obj, "size");
    const json_t *chunk_size = json_object_get(obj, "chunk_size");

    if (!size) {
        return "GET has no \"size\"";
    } else if (!json_is_integer(size)) {
        return "GET \"size\" is not an integer";
    } else if (json_integer_value(size) < 0) {
        return "GET \"size\" is negative";
    } else if (!chunk_size) {
        return "GET has no \"chunk_size\"";
    } else if (!json_is_integer(chunk_size)) {
        return "GET \"chunk_size\" is not an integer";
    } else if (json_integer_value(chunk_size) < 1
               || json_integer_value(chunk_size) > CHAN_WIRE_MAX_PAYLOAD) {
        return "GET \"chunk_size\" is not 1..65455";
    }
    msg->size = json_integer_value(size);
    msg->chunk_size = json_integer_value(chunk_size);
    if (xfer_n_chunks(msg->size, msg->chunk_size) > XFER_MAX_CHUNKS) {
        return "GET object has more than 2^32 chunks";
    }
    return parse_ranges(json_object_get(obj, "ranges"), msg);
}

static const char *
parse_fail(const json_t *obj, struct xfer_msg *msg)
{
    const json_t *error = json_object_get(obj, "error");
    const json_t *reason = json_object_get(obj, "reason");

    if (!error) {
        return "FAIL has no \"error\"";
    } else if (!json_is_string(error)
               || !error_name_is_valid(json_string_value(error),
                                       json_string_length(error))) {
        return "FAIL \"error\" is not 1..32 bytes of [a-z0-9_]";
    } else if (!reason) {
        return "FAIL has no \"reason\"";
    } else if (!json_is_string(reason)) {
        return "FAIL \"reason\" is not a string";
    }
    memcpy(msg->error, json_string_value(error), json_string_length(error));
    msg->error[json_string_length(error)] = '\0';
    copy_utf8_truncated(msg->reason, json_string_value(reason),
                        json_string_length(reason), XFER_REASON_MAX);
    return NULL;
}

/* Parses the members every op has, and checks that 'obj' has no member
 * its op does not allow. */
static const char *
parse_common(const json_t *obj, struct xfer_msg *msg)
{
    const json_t *op = json_object_get(obj, "op");
    const json_t *digest = json_object_get(obj, "digest");

    if (!op) {
        return "XFER message has no \"op\"";
    } else if (!json_is_string(op)) {
        return "XFER \"op\" is not a string";
    } else if (!strcmp(json_string_value(op), "get")) {
        msg->op = XFER_OP_GET;
    } else if (!strcmp(json_string_value(op), "fail")) {
        msg->op = XFER_OP_FAIL;
    } else if (!strcmp(json_string_value(op), "done")) {
        msg->op = XFER_OP_DONE;
    } else {
        return "XFER \"op\" is not \"get\", \"fail\" or \"done\"";
    }

    if (!digest) {
        return "XFER message has no \"digest\"";
    } else if (!json_is_string(digest)
               || json_string_length(digest) != XFER_DIGEST_LEN
               || !xfer_digest_is_valid(json_string_value(digest))) {
        return "XFER \"digest\" is not 64 lowercase hex digits";
    }
    memcpy(msg->digest, json_string_value(digest), XFER_DIGEST_LEN + 1);

    const char *name;
    json_t *value;
    json_object_foreach ((json_t *) obj, name, value) {
        if (!member_is_allowed(msg->op, name)) {
            return "XFER message has a member its op does not allow";
        }
    }
    return NULL;
}

static const char *
decode_error(enum chan_wire_error error)
{
    return (error == CHAN_WIRE_ERR_JSON_NOT_OBJECT
            ? "XFER payload is not a JSON object"
            : error == CHAN_WIRE_ERR_JSON_TOO_DEEP
            ? "XFER payload nests too deeply"
            : error == CHAN_WIRE_ERR_NOMEM
            ? "out of memory"
            : "XFER payload is not valid JSON");
}

const char *
xfer_msg_parse(const uint8_t *payload, size_t len, struct xfer_msg *msg)
{
    json_t *obj;
    enum chan_wire_error werror = chan_payload_decode_object(payload, len,
                                                             NULL, &obj);
    memset(msg, 0, sizeof *msg);
    if (werror) {
        return decode_error(werror);
    }

    const char *error = parse_common(obj, msg);
    if (!error) {
        switch (msg->op) {
        case XFER_OP_GET:
            error = parse_get(obj, msg);
            break;
        case XFER_OP_FAIL:
            error = parse_fail(obj, msg);
            break;
        case XFER_OP_DONE:
            break;
        }
    }
    json_decref(obj);
    return error;
}

json_t *
xfer_msg_to_json(const struct xfer_msg *msg)
{
    json_t *ranges;

    switch (msg->op) {
    case XFER_OP_GET:
        ranges = json_array();
        for (size_t i = 0; i < msg->n_ranges; i++) {
            json_array_append_new(
                ranges, json_pack("[II]", (json_int_t) msg->ranges[i].first,
                                  (json_int_t) msg->ranges[i].count));
        }
        return json_pack("{s:s, s:s, s:I, s:I, s:o}",
                         "op", "get", "digest", msg->digest,
                         "size", (json_int_t) msg->size,
                         "chunk_size", (json_int_t) msg->chunk_size,
                         "ranges", ranges);
    case XFER_OP_FAIL:
        return json_pack("{s:s, s:s, s:s, s:s}",
                         "op", "fail", "digest", msg->digest,
                         "error", msg->error, "reason", msg->reason);
    case XFER_OP_DONE:
        return json_pack("{s:s, s:s}", "op", "done", "digest", msg->digest);
    }
    return NULL;
}

/* The receiver engine.
 *
 * Which chunks are held is a bitmap of the whole object.  Every chunk the
 * engine has asked for and not received has a slot, from a pool of
 * 'window' slots found by index through 'slots_by_index'.  A slot is on
 * exactly one of two lists:
 *
 *   'outstanding': chunks whose latest request may still be answered, in
 *   the order of that request's serial (and so of its time).  The front is
 *   the oldest request: the first to time out, and the first that a gap
 *   behind an arriving chunk presumes lost.
 *
 *   'lost': chunks presumed lost, to be asked for again before any new
 *   chunk, in the order they were presumed lost.
 *
 * A slot moves from 'outstanding' to 'lost' when presumed lost and back
 * when asked for again, so at most 'window' chunks ever have a slot and
 * the engine's memory beyond the bitmap is bounded by the window.
 *
 * New chunks are found by scanning the bitmap from 'cursor'; every chunk
 * below 'cursor' is held or has a slot, so each index is scanned about
 * once in the whole transfer. */

struct xfer_slot {
    struct hmap_node hmap_node; /* In 'slots_by_index'. */
    struct list list_node;      /* In 'outstanding', 'lost' or 'free'. */
    uint64_t index;             /* Chunk index. */
    uint64_t serial;            /* Of the latest request. */
    long long sent_at;          /* Time of the latest request. */
    unsigned int n_requests;    /* Requests of this chunk, 1 or more. */
    bool lost;                  /* On 'lost' (else on 'outstanding'). */
    bool fast;                  /* Presumed lost after a gap. */
    bool timed_out;             /* Some request of it timed out. */
};

struct xfer_rx {
    uint64_t size;
    uint32_t chunk_size;
    uint64_t n_chunks;

    uint8_t *bitmap;            /* Owned; (n_chunks + 7) / 8 bytes. */
    size_t bitmap_len;
    uint64_t first_missing;     /* No chunk below it is missing. */
    uint64_t cursor;            /* Every chunk below is held or slotted. */

    struct xfer_slot *pool;     /* Owned; 'window' slots. */
    unsigned int window;
    struct hmap slots_by_index; /* Slots in use. */
    struct list outstanding;    /* Slots asked for, by serial. */
    struct list lost;           /* Slots to ask for again. */
    struct list free;           /* Unused slots. */
    unsigned int n_outstanding;
    unsigned int n_lost;
    uint64_t next_serial;

    /* Retransmission timing, in ms.  'srtt8' is 8 times the smoothed
     * round trip and 'rttvar4' 4 times its variation, as in TCP. */
    unsigned int rto_min, rto_max, rto_initial;
    bool have_rtt;
    uint64_t srtt8;
    uint64_t rttvar4;
    unsigned int rto_base;      /* From the measurements, clamped. */
    unsigned int backoff;       /* Doublings since the last progress. */

    struct xfer_rx_stats stats;
};

static unsigned int
clamp_rto(const struct xfer_rx *rx, uint64_t rto)
{
    return (rto < rx->rto_min ? rx->rto_min
            : rto > rx->rto_max ? rx->rto_max
            : rto);
}

/* The current retransmission timeout: the measured one, doubled for each
 * timeout since the last progress, at most rto_max. */
static unsigned int
current_rto(const struct xfer_rx *rx)
{
    uint64_t rto = rx->rto_base;
    for (unsigned int i = 0; i < rx->backoff && rto < rx->rto_max; i++) {
        rto *= 2;
    }
    return clamp_rto(rx, rto);
}

/* Takes the round trip 'rtt' (ms) of a chunk requested once into the
 * estimate (RFC 6298). */
static void
rtt_sample(struct xfer_rx *rx, uint64_t rtt)
{
    if (!rx->have_rtt) {
        rx->have_rtt = true;
        rx->srtt8 = rtt * 8;
        rx->rttvar4 = rtt * 2;
    } else {
        uint64_t srtt = rx->srtt8 / 8;
        uint64_t delta = srtt > rtt ? srtt - rtt : rtt - srtt;
        rx->rttvar4 = rx->rttvar4 - rx->rttvar4 / 4 + delta;
        rx->srtt8 = rx->srtt8 - rx->srtt8 / 8 + rtt;
    }
    rx->rto_base = clamp_rto(rx, rx->srtt8 / 8 + rx->rttvar4);
}

static size_t
index_hash(uint64_t index)
{
    uint64_t h = index * UINT64_C(0x9e3779b97f4a7c15);
    return h ^ (h >> 32);
}

static struct xfer_slot *
slot_find(const struct xfer_rx *rx, uint64_t index)
{
    struct xfer_slot *slot;
    HMAP_FOR_EACH_WITH_HASH (slot, hmap_node, index_hash(index),
                             &rx->slots_by_index) {
        if (slot->index == index) {
            return slot;
        }
    }
    return NULL;
}

/* Takes a free slot (there must be one) for chunk 'index'. */
static struct xfer_slot *
slot_alloc(struct xfer_rx *rx, uint64_t index)
{
    struct xfer_slot *slot = CONTAINER_OF(list_front(&rx->free),
                                          struct xfer_slot, list_node);
    list_remove(&slot->list_node);
    memset(slot, 0, sizeof *slot);
    slot->index = index;
    hmap_insert(&rx->slots_by_index, &slot->hmap_node, index_hash(index));
    return slot;
}

/* Frees 'slot', whichever list it is on. */
static void
slot_release(struct xfer_rx *rx, struct xfer_slot *slot)
{
    if (slot->lost) {
        rx->n_lost--;
    } else {
        rx->n_outstanding--;
    }
    list_remove(&slot->list_node);
    hmap_remove(&rx->slots_by_index, &slot->hmap_node);
    list_push_back(&rx->free, &slot->list_node);
}

/* Moves outstanding 'slot' to the back of the lost list. */
static void
slot_presume_lost(struct xfer_rx *rx, struct xfer_slot *slot, bool fast)
{
    list_remove(&slot->list_node);
    list_push_back(&rx->lost, &slot->list_node);
    slot->lost = true;
    slot->fast = fast;
    if (!fast) {
        slot->timed_out = true;
    }
    rx->n_outstanding--;
    rx->n_lost++;
}

/* Records a request of 'slot' (new, or lost) at 'now'. */
static void
slot_request(struct xfer_rx *rx, struct xfer_slot *slot, long long now)
{
    if (slot->n_requests++) {
        rx->stats.rerequested++;
        if (slot->fast) {
            rx->stats.rerequested_fast++;
        }
        rx->n_lost--;
        list_remove(&slot->list_node);
    } else {
        rx->stats.requested++;
    }
    slot->lost = false;
    slot->fast = false;
    slot->serial = rx->next_serial++;
    slot->sent_at = now;
    list_push_back(&rx->outstanding, &slot->list_node);
    rx->n_outstanding++;
}

static struct xfer_slot *
outstanding_front(const struct xfer_rx *rx)
{
    return (list_is_empty(&rx->outstanding) ? NULL
            : CONTAINER_OF(list_front(&rx->outstanding), struct xfer_slot,
                           list_node));
}

static bool
bit_is_set(const struct xfer_rx *rx, uint64_t index)
{
    return (rx->bitmap[index / 8] >> (index % 8)) & 1;
}

/* Sets the bit of chunk 'index'.  Returns false if it was set already. */
static bool
bit_set(struct xfer_rx *rx, uint64_t index)
{
    uint8_t bit = 1u << (index % 8);
    if (rx->bitmap[index / 8] & bit) {
        return false;
    }
    rx->bitmap[index / 8] |= bit;
    rx->stats.have++;
    return true;
}

/* Returns the first index at or after 'index' whose bit is clear, or
 * n_chunks. */
static uint64_t
next_clear_bit(const struct xfer_rx *rx, uint64_t index)
{
    while (index < rx->n_chunks) {
        if (index % 8 == 0 && rx->bitmap[index / 8] == 0xff) {
            index += 8;
        } else if (!bit_is_set(rx, index)) {
            return index;
        } else {
            index++;
        }
    }
    return rx->n_chunks;
}

struct xfer_rx *
xfer_rx_create(uint64_t size, uint32_t chunk_size,
               const struct xfer_rx_config *cfg)
{
    if (!chunk_size || chunk_size > CHAN_WIRE_MAX_PAYLOAD) {
        return NULL;
    }
    uint64_t n_chunks = xfer_n_chunks(size, chunk_size);
    if (n_chunks > XFER_MAX_CHUNKS) {
        return NULL;
    }

    struct xfer_rx *rx = calloc(1, sizeof *rx);
    if (!rx) {
        return NULL;
    }
    rx->size = size;
    rx->chunk_size = chunk_size;
    rx->n_chunks = n_chunks;
    rx->bitmap_len = (n_chunks + 7) / 8;
    rx->bitmap = calloc(rx->bitmap_len, 1);

    unsigned int window = cfg && cfg->window ? cfg->window
                          : XFER_DEFAULT_WINDOW;
    rx->window = window < n_chunks ? window : n_chunks;
    rx->pool = calloc(rx->window, sizeof *rx->pool);
    if (!rx->bitmap || !rx->pool) {
        free(rx->bitmap);
        free(rx->pool);
        free(rx);
        return NULL;
    }

    hmap_init(&rx->slots_by_index);
    list_init(&rx->outstanding);
    list_init(&rx->lost);
    list_init(&rx->free);
    for (unsigned int i = 0; i < rx->window; i++) {
        list_push_back(&rx->free, &rx->pool[i].list_node);
    }

    rx->rto_min = cfg && cfg->rto_min ? cfg->rto_min : XFER_DEFAULT_RTO_MIN;
    rx->rto_max = cfg && cfg->rto_max ? cfg->rto_max : XFER_DEFAULT_RTO_MAX;
    if (rx->rto_max < rx->rto_min) {
        rx->rto_max = rx->rto_min;
    }
    rx->rto_initial = clamp_rto(rx, (cfg && cfg->rto_initial
                                     ? cfg->rto_initial
                                     : XFER_DEFAULT_RTO_INITIAL));
    rx->rto_base = rx->rto_initial;
    rx->next_serial = 1;        /* 0 means "no serial" in xfer_rx_chunk(). */
    rx->stats.n_chunks = n_chunks;
    return rx;
}

void
xfer_rx_destroy(struct xfer_rx *rx)
{
    if (rx) {
        hmap_destroy(&rx->slots_by_index);
        free(rx->pool);
        free(rx->bitmap);
        free(rx);
    }
}

void
xfer_rx_set_have(struct xfer_rx *rx, uint64_t index)
{
    if (index < rx->n_chunks && bit_set(rx, index)) {
        struct xfer_slot *slot = slot_find(rx, index);
        if (slot) {
            slot_release(rx, slot);
        }
        rx->stats.had_at_start++;
    }
}

void
xfer_rx_load_bitmap(struct xfer_rx *rx, const uint8_t *bitmap,
                    size_t n_bytes)
{
    size_t n = n_bytes < rx->bitmap_len ? n_bytes : rx->bitmap_len;
    for (size_t i = 0; i < n; i++) {
        for (unsigned int b = 0; bitmap[i] >> b; b++) {
            if ((bitmap[i] >> b) & 1) {
                xfer_rx_set_have(rx, (uint64_t) i * 8 + b);
            }
        }
    }
}

const uint8_t *
xfer_rx_bitmap(const struct xfer_rx *rx, size_t *n_bytes)
{
    *n_bytes = rx->bitmap_len;
    return rx->bitmap;
}

bool
xfer_rx_has(const struct xfer_rx *rx, uint64_t index)
{
    return index < rx->n_chunks && bit_is_set(rx, index);
}

/* A chunk arrived in answer to its request with 'serial': every chunk
 * requested more than XFER_REORDER serials before it and still outstanding
 * is presumed lost, since the sender answers in order. */
static void
detect_gaps(struct xfer_rx *rx, uint64_t serial)
{
    struct xfer_slot *front;
    while ((front = outstanding_front(rx))
           && front->serial + XFER_REORDER < serial) {
        slot_presume_lost(rx, front, true);
    }
}

enum xfer_rx_verdict
xfer_rx_chunk(struct xfer_rx *rx, uint64_t index, size_t len,
              long long now)
{
    if (index >= rx->n_chunks) {
        return XFER_RX_OUT_OF_RANGE;
    } else if (len != xfer_chunk_len(rx->size, rx->chunk_size, index)) {
        return XFER_RX_BAD_LENGTH;
    } else if (!bit_set(rx, index)) {
        rx->stats.duplicates++;
        return XFER_RX_DUPLICATE;
    }
    rx->stats.received++;

    struct xfer_slot *slot = slot_find(rx, index);
    if (!slot) {
        rx->stats.unrequested++;
        return XFER_RX_NEW;
    }

    /* Progress: the backoff ends. */
    rx->backoff = 0;
    if (!slot->lost) {
        /* Karn: only a chunk asked for once gives a round trip. */
        if (slot->n_requests == 1 && now >= slot->sent_at) {
            rtt_sample(rx, now - slot->sent_at);
        }
        /* After a timeout an earlier request may be the one answered, so
         * the arrival says nothing about the chunks asked for since. */
        uint64_t serial = slot->timed_out ? 0 : slot->serial;
        slot_release(rx, slot);
        if (serial) {
            detect_gaps(rx, serial);
        }
    } else {
        slot_release(rx, slot);
    }
    return XFER_RX_NEW;
}

void
xfer_rx_lost(struct xfer_rx *rx, uint64_t index)
{
    if (xfer_rx_has(rx, index)) {
        rx->bitmap[index / 8] &= ~(1u << (index % 8));
        rx->stats.have--;
        if (index < rx->cursor) {
            rx->cursor = index;
        }
        if (index < rx->first_missing) {
            rx->first_missing = index;
        }
    }
}

bool
xfer_rx_is_complete(const struct xfer_rx *rx)
{
    return rx->stats.have == rx->n_chunks;
}

/* Presumes lost every outstanding request older than the current rto at
 * 'now'.  If any, doubles the rto (until progress). */
static void
expire_requests(struct xfer_rx *rx, long long now)
{
    long long rto = current_rto(rx);
    bool expired = false;
    struct xfer_slot *front;

    while ((front = outstanding_front(rx)) && now - front->sent_at >= rto) {
        slot_presume_lost(rx, front, false);
        expired = true;
    }
    if (expired) {
        rx->stats.timeouts++;
        if (current_rto(rx) < rx->rto_max) {
            rx->backoff++;
        }
    }
}

/* Returns the next chunk that is neither held nor asked for, at or after
 * the cursor, and moves the cursor to it; n_chunks if none. */
static uint64_t
next_new_chunk(struct xfer_rx *rx)
{
    for (;;) {
        rx->cursor = next_clear_bit(rx, rx->cursor);
        if (rx->cursor >= rx->n_chunks || !slot_find(rx, rx->cursor)) {
            return rx->cursor;
        }
        rx->cursor++;
    }
}

/* Adds chunk 'index' to the 'n' ranges in 'ranges', extending the last one
 * if 'index' follows it.  Returns false, adding nothing, if that takes a
 * range more than XFER_MAX_RANGES. */
static bool
add_to_ranges(struct xfer_range ranges[XFER_MAX_RANGES], size_t *n,
              uint64_t index)
{
    struct xfer_range *last = *n ? &ranges[*n - 1] : NULL;
    if (last && index == last->first + last->count) {
        last->count++;
    } else if (*n < XFER_MAX_RANGES) {
        ranges[(*n)++] = (struct xfer_range) { .first = index, .count = 1 };
    } else {
        return false;
    }
    return true;
}

size_t
xfer_rx_next_get(struct xfer_rx *rx, long long now,
                 struct xfer_range ranges[XFER_MAX_RANGES])
{
    size_t n_ranges = 0;
    unsigned int n_chunks = 0;

    expire_requests(rx, now);

    /* Lost chunks first, oldest loss first. */
    while (n_chunks < XFER_MAX_GET_CHUNKS && !list_is_empty(&rx->lost)) {
        struct xfer_slot *slot = CONTAINER_OF(list_front(&rx->lost),
                                              struct xfer_slot, list_node);
        if (!add_to_ranges(ranges, &n_ranges, slot->index)) {
            break;
        }
        slot_request(rx, slot, now);
        n_chunks++;
    }

    /* Then new ones, in index order, while a slot is free. */
    while (n_chunks < XFER_MAX_GET_CHUNKS && !list_is_empty(&rx->free)) {
        uint64_t index = next_new_chunk(rx);
        if (index >= rx->n_chunks
            || !add_to_ranges(ranges, &n_ranges, index)) {
            break;
        }
        slot_request(rx, slot_alloc(rx, index), now);
        rx->cursor++;
        n_chunks++;
    }

    if (n_ranges) {
        rx->stats.gets++;
    }
    return n_ranges;
}

long long
xfer_rx_next_wakeup(const struct xfer_rx *rx, long long now)
{
    if (!list_is_empty(&rx->lost)
        || (!list_is_empty(&rx->free) && rx->cursor < rx->n_chunks)) {
        /* Something to ask for already (xfer_rx_next_get() was not called
         * until it returned 0, or xfer_rx_lost() was). */
        return now;
    }

    const struct xfer_slot *front = outstanding_front(rx);
    if (!front) {
        return LLONG_MAX;
    }
    return front->sent_at + current_rto(rx);
}

void
xfer_rx_restart(struct xfer_rx *rx)
{
    struct xfer_slot *slot;
    HMAP_FOR_EACH_SAFE (slot, hmap_node, &rx->slots_by_index) {
        slot_release(rx, slot);
    }
    rx->first_missing = next_clear_bit(rx, rx->first_missing);
    rx->cursor = rx->first_missing;
    rx->backoff = 0;
}

void
xfer_rx_get_stats(const struct xfer_rx *rx, struct xfer_rx_stats *stats)
{
    *stats = rx->stats;
    stats->outstanding = rx->n_outstanding;
    stats->rto = current_rto(rx);
    stats->srtt = (!rx->have_rtt ? 0
                   : rx->srtt8 < 8 ? 1
                   : rx->srtt8 / 8);
}
