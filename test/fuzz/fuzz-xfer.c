/*
 * fuzz-xfer: the file transfer lane's pure parts (lib/xfer): the XFER
 * message codec, which sees every XFER payload a peer sends, and the
 * receiver's engine (struct xfer_rx) driven by a script of chunk arrivals,
 * GETs, time, resumption, storage failures and restarts.
 *
 * Input layout:
 *
 *     byte 0    mode: bit 0 (FUZZ_XFER_ENGINE) clear: the rest is an
 *               XFER payload; set: the rest is an engine script (below)
 *
 * Payload mode: the rest of the input goes to xfer_msg_parse().  When it
 * parses:
 *   - the message is well formed: op GET, FAIL or DONE; digest 64 lowercase
 *     hex digits; for GET, chunk_size 1..CHAN_WIRE_MAX_PAYLOAD, size below
 *     2^63, at most XFER_MAX_CHUNKS chunks, 1..XFER_MAX_RANGES ranges, each
 *     of count >= 1 and inside the object's xfer_n_chunks(), at most
 *     XFER_MAX_GET_CHUNKS chunks in all; for FAIL, an error name of 1..32
 *     bytes of [a-z0-9_] and a reason that is NUL-terminated, at most
 *     XFER_REASON_MAX bytes and valid UTF-8; members of other ops empty;
 *   - it says what the JSON says: the payload is an object with exactly
 *     the op's members, of the parsed values (the reason being the JSON
 *     string cut at its first U+0000 and shortened, if at all, by less
 *     than one character below XFER_REASON_MAX bytes);
 *   - xfer_msg_to_json() of it, dumped compactly, parses again to an equal
 *     struct, and dumps again to the same text.
 *
 * Engine mode:
 *
 *     bytes 1-2   window: big-endian % 1025 (0: the default)
 *     byte 3      rto_min, ms (0: the default)
 *     byte 4      rto_max / 8 (0: the default)
 *     byte 5      rto_initial / 4 (0: the default)
 *     bytes 6-7   chunk_size (0 or above CHAN_WIRE_MAX_PAYLOAD: creation
 *                 must fail)
 *     bytes 8-15  size, big-endian (an object of more than XFER_MAX_CHUNKS
 *                 chunks: creation must fail; otherwise the size is
 *                 reduced to at most MAX_FUZZ_CHUNKS chunks)
 *     then        steps, up to MAX_STEPS: one byte, the step in the low 3
 *                 bits and an argument 'a' (0..31) above them
 *                 (FUZZ_XFER_STEP() in fuzz.h), then the step's bytes:
 *
 *   0 CHUNK     a chunk arrives (xfer_rx_chunk()); a & 3 says which:
 *               0: the requested chunk at position (1 byte) of the queue
 *               of chunks asked for and not yet delivered (removed from
 *               it); 1: index (4 bytes, may be past the end); 2: a chunk
 *               accepted earlier (1 byte picks it); 3: the last chunk
 *               minus (1 byte).  (a >> 2) & 3 says its length: 0, 1: the
 *               right one; 2: the right one plus a signed byte; 3: 2 bytes
 *   1 GET       xfer_rx_next_get(); if a & 1, again until it returns 0
 *   2 TIME      if a & 16, time goes back (1 byte) ms; else it advances
 *               (1 byte) << (a & 15) ms
 *   3 WAKEUP    time advances to xfer_rx_next_wakeup(), if later
 *   4 HAVE      resumption, honoured only before the first GET (as
 *               xfer.h requires): a & 1: xfer_rx_load_bitmap() of (1 byte)
 *               % 64 bytes of the input; else xfer_rx_set_have() of index
 *               (4 bytes), modulo n_chunks + 1 if a & 2
 *   5 LOST      xfer_rx_lost() of a chunk accepted earlier (1 byte picks
 *               it), if it is still held
 *   6 RESTART   xfer_rx_restart(); the queue of chunks asked for is
 *               forgotten (a new sender) unless a & 1
 *   7 DELIVER   the sender answers in order: a + 1 chunks from the front
 *               of the queue, each (1 byte) ms after the previous one,
 *               dropped where the loss mask (1 byte) has a bit set
 *
 * After every step the engine's invariants hold: its bitmap equals a model
 * of the chunks held (chunks accepted as NEW or resumed, minus the ones
 * lost), and so do xfer_rx_has() and 'have' (= had_at_start + received -
 * losses); have <= n_chunks; outstanding <= window; is_complete iff have
 * == n_chunks; rto within rto_min..rto_max; the counters never decrease.
 * A chunk's verdict is exactly the one its index, length and the model
 * give (a chunk reported NEW was not held before and is held after).  A
 * GET names 1..XFER_MAX_RANGES ranges of count >= 1 inside the object, at
 * most XFER_MAX_GET_CHUNKS and 'window' chunks, no chunk twice and no held
 * chunk, and encodes as an XFER GET that parses back to the same ranges;
 * xfer_rx_next_get() returns nothing when xfer_rx_next_wakeup() is later;
 * an incomplete transfer with nothing outstanding always has something to
 * ask for (it never stalls); after a restart the first GET starts at the
 * lowest missing chunk.
 */
#include <config.h>
#include "fuzz.h"

#include <limits.h>

#include "chan-wire.h"
#include "xfer.h"

#define MAX_FUZZ_CHUNKS 16384   /* Chunks of an engine's object. */
#define MAX_STEPS 4096
#define QUEUE_SIZE 8192         /* Chunks asked for, not yet delivered. */
#define ACCEPTED_SIZE 256       /* Chunks accepted, latest ones. */

/* ---------------------------------------------------------------------
 * Messages.
 */

/* True if the 'len' bytes at 's' are UTF-8 as RFC 3629 defines it (no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static bool
utf8_is_valid(const char *s_, size_t len)
{
    const unsigned char *s = (const unsigned char *) s_;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n) {
            return false;
        }
        for (size_t j = 1; j <= n; j++) {
            if ((s[i + j] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
            || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

static bool
is_error_name(const char *s)
{
    size_t len = strlen(s);
    if (len < 1 || len > 32) {
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

/* Checks that 'msg', which xfer_msg_parse() accepted, is well formed. */
static void
check_msg(const struct xfer_msg *msg)
{
    FUZZ_CHECK(msg->op == XFER_OP_GET || msg->op == XFER_OP_FAIL
               || msg->op == XFER_OP_DONE);

    FUZZ_CHECK(xfer_digest_is_valid(msg->digest));
    FUZZ_CHECK(msg->digest[XFER_DIGEST_LEN] == '\0');
    for (size_t i = 0; i < XFER_DIGEST_LEN; i++) {
        char c = msg->digest[i];
        FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    }

    if (msg->op == XFER_OP_GET) {
        FUZZ_CHECK(msg->chunk_size >= 1
                   && msg->chunk_size <= CHAN_WIRE_MAX_PAYLOAD);
        FUZZ_CHECK(msg->size <= INT64_MAX);
        uint64_t n_chunks = xfer_n_chunks(msg->size, msg->chunk_size);
        FUZZ_CHECK(n_chunks >= 1 && n_chunks <= XFER_MAX_CHUNKS);
        FUZZ_CHECK(msg->n_ranges >= 1 && msg->n_ranges <= XFER_MAX_RANGES);

        uint64_t total = 0;
        for (size_t i = 0; i < msg->n_ranges; i++) {
            const struct xfer_range *r = &msg->ranges[i];
            FUZZ_CHECK(r->count >= 1);
            FUZZ_CHECK(r->first < n_chunks);
            FUZZ_CHECK(r->count <= n_chunks - r->first);
            total += r->count;
        }
        FUZZ_CHECK(total <= XFER_MAX_GET_CHUNKS);

        /* Chunk arithmetic of the object. */
        uint32_t last = xfer_chunk_len(msg->size, msg->chunk_size,
                                       n_chunks - 1);
        FUZZ_CHECK(msg->size ? last >= 1 && last <= msg->chunk_size
                   : last == 0);
        FUZZ_CHECK((n_chunks - 1) * msg->chunk_size + last == msg->size);
        FUZZ_CHECK(n_chunks == 1
                   || xfer_chunk_len(msg->size, msg->chunk_size, 0)
                      == msg->chunk_size);
        FUZZ_CHECK(xfer_chunk_len(msg->size, msg->chunk_size, n_chunks)
                   == 0);
    } else {
        FUZZ_CHECK(msg->n_ranges == 0);
        FUZZ_CHECK(msg->size == 0 && msg->chunk_size == 0);
    }

    if (msg->op == XFER_OP_FAIL) {
        FUZZ_CHECK(memchr(msg->error, '\0', sizeof msg->error));
        FUZZ_CHECK(is_error_name(msg->error));
        FUZZ_CHECK(memchr(msg->reason, '\0', sizeof msg->reason));
        size_t len = strlen(msg->reason);
        FUZZ_CHECK(len <= XFER_REASON_MAX);
        FUZZ_CHECK(utf8_is_valid(msg->reason, len));
    } else {
        FUZZ_CHECK(msg->error[0] == '\0' && msg->reason[0] == '\0');
    }
}

static const char *
op_name(enum xfer_op op)
{
    return (op == XFER_OP_GET ? "get"
            : op == XFER_OP_FAIL ? "fail"
            : "done");
}

static bool
json_int_is(const json_t *j, uint64_t x)
{
    return (json_is_integer(j) && json_integer_value(j) >= 0
            && (uint64_t) json_integer_value(j) == x);
}

/* Checks that 'msg', parsed from 'payload', says what the JSON says. */
static void
check_msg_matches_json(const struct xfer_msg *msg, const uint8_t *payload,
                       size_t len)
{
    json_t *obj;
    FUZZ_CHECK(chan_payload_decode_object(payload, len, NULL, &obj)
               == CHAN_WIRE_OK);
    FUZZ_CHECK(json_is_object(obj));

    size_t n_members = (msg->op == XFER_OP_GET ? 5
                        : msg->op == XFER_OP_FAIL ? 4
                        : 2);
    FUZZ_CHECK(json_object_size(obj) == n_members);

    const json_t *op = json_object_get(obj, "op");
    FUZZ_CHECK(json_is_string(op)
               && !strcmp(json_string_value(op), op_name(msg->op)));
    const json_t *digest = json_object_get(obj, "digest");
    FUZZ_CHECK(json_is_string(digest)
               && json_string_length(digest) == XFER_DIGEST_LEN
               && !memcmp(json_string_value(digest), msg->digest,
                          XFER_DIGEST_LEN));

    if (msg->op == XFER_OP_GET) {
        FUZZ_CHECK(json_int_is(json_object_get(obj, "size"), msg->size));
        FUZZ_CHECK(json_int_is(json_object_get(obj, "chunk_size"),
                               msg->chunk_size));
        const json_t *ranges = json_object_get(obj, "ranges");
        FUZZ_CHECK(json_is_array(ranges)
                   && json_array_size(ranges) == msg->n_ranges);
        for (size_t i = 0; i < msg->n_ranges; i++) {
            const json_t *pair = json_array_get(ranges, i);
            FUZZ_CHECK(json_is_array(pair) && json_array_size(pair) == 2);
            FUZZ_CHECK(json_int_is(json_array_get(pair, 0),
                                   msg->ranges[i].first));
            FUZZ_CHECK(json_int_is(json_array_get(pair, 1),
                                   msg->ranges[i].count));
        }
    } else if (msg->op == XFER_OP_FAIL) {
        const json_t *error = json_object_get(obj, "error");
        FUZZ_CHECK(json_is_string(error)
                   && json_string_length(error) == strlen(msg->error)
                   && !strcmp(json_string_value(error), msg->error));

        const json_t *reason = json_object_get(obj, "reason");
        FUZZ_CHECK(json_is_string(reason));
        const char *s = json_string_value(reason);
        size_t s_len = json_string_length(reason);
        const char *nul = memchr(s, '\0', s_len);
        if (nul) {
            s_len = nul - s;
        }
        size_t r_len = strlen(msg->reason);
        FUZZ_CHECK(r_len <= s_len && !memcmp(msg->reason, s, r_len));
        if (s_len <= XFER_REASON_MAX) {
            FUZZ_CHECK(r_len == s_len);
        } else {
            /* Cut before the character that would not fit whole. */
            FUZZ_CHECK(r_len > XFER_REASON_MAX - 4);
            FUZZ_CHECK(((unsigned char) s[r_len] & 0xc0) != 0x80);
        }
    }
    json_decref(obj);
}

/* Encodes 'msg' with xfer_msg_to_json() as compact text (a new string,
 * the caller frees it). */
static char *
msg_to_text(const struct xfer_msg *msg)
{
    json_t *json = xfer_msg_to_json(msg);
    FUZZ_CHECK(json != NULL);
    char *text = json_dumps(json, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    json_decref(json);
    return text;
}

/* Checks that 'a' and 'b' are the same message, member by member (the
 * ranges' padding may differ). */
static void
check_msg_equal(const struct xfer_msg *a, const struct xfer_msg *b)
{
    FUZZ_CHECK(a->op == b->op);
    FUZZ_CHECK(!memcmp(a->digest, b->digest, sizeof a->digest));
    FUZZ_CHECK(a->size == b->size);
    FUZZ_CHECK(a->chunk_size == b->chunk_size);
    FUZZ_CHECK(a->n_ranges == b->n_ranges);
    for (size_t i = 0; i < a->n_ranges; i++) {
        FUZZ_CHECK(a->ranges[i].first == b->ranges[i].first);
        FUZZ_CHECK(a->ranges[i].count == b->ranges[i].count);
    }
    FUZZ_CHECK(!memcmp(a->error, b->error, sizeof a->error));
    FUZZ_CHECK(!memcmp(a->reason, b->reason, sizeof a->reason));
}

/* Checks that 'msg' encodes and parses back to an equal struct, and that
 * the text is a fixed point. */
static void
check_round_trip(const struct xfer_msg *msg)
{
    char *text = msg_to_text(msg);
    size_t len = strlen(text);
    uint8_t *copy = fuzz_dup(text, len);
    struct xfer_msg again;
    const char *error = xfer_msg_parse(copy, len, &again);
    if (error) {
        fprintf(stderr, "round trip of %s: %s\n", text, error);
    }
    FUZZ_CHECK(!error);

    check_msg_equal(&again, msg);

    char *text2 = msg_to_text(&again);
    FUZZ_CHECK(!strcmp(text, text2));
    free(text2);
    free(copy);
    free(text);
}

static void
fuzz_msg(const uint8_t *data, size_t size)
{
    /* The payload in a buffer of its own, so that a read past it is
     * caught. */
    uint8_t *payload = fuzz_dup(data, size);
    struct xfer_msg msg;
    const char *error = xfer_msg_parse(payload, size, &msg);
    if (error) {
        FUZZ_CHECK(*error != '\0');
    } else {
        check_msg(&msg);
        check_msg_matches_json(&msg, payload, size);
        check_round_trip(&msg);
    }
    free(payload);
}

/* ---------------------------------------------------------------------
 * The receiver engine.
 */

/* The harness's view of one engine. */
struct harness {
    struct xfer_rx *rx;
    uint64_t size;
    uint32_t chunk_size;
    uint64_t n_chunks;
    unsigned int window;            /* Effective: at most n_chunks. */
    unsigned int rto_min, rto_max;  /* Effective. */
    long long now;

    /* Model of the chunks held, in xfer_rx_bitmap()'s layout. */
    uint8_t *held;
    size_t held_len;
    uint64_t n_held;
    uint64_t n_losses;              /* xfer_rx_lost() of a held chunk. */

    /* Chunks asked for and not yet delivered, oldest first (a ring). */
    uint64_t queue[QUEUE_SIZE];
    size_t q_head, q_len;

    /* Chunks accepted as NEW, latest ones (a ring). */
    uint64_t accepted[ACCEPTED_SIZE];
    size_t n_accepted;

    /* Marks of the chunks named in the current GET. */
    uint32_t *mark;
    uint32_t mark_gen;

    bool got_get;                   /* xfer_rx_next_get() called. */
    bool restarted;                 /* Restarted since the last GET. */
    struct xfer_rx_stats last;      /* Stats after the previous step. */
};

static bool
model_has(const struct harness *h, uint64_t index)
{
    return index < h->n_chunks && (h->held[index / 8] >> (index % 8)) & 1;
}

static void
model_set(struct harness *h, uint64_t index, bool held)
{
    uint8_t bit = 1u << (index % 8);
    if (held && !(h->held[index / 8] & bit)) {
        h->held[index / 8] |= bit;
        h->n_held++;
    } else if (!held && h->held[index / 8] & bit) {
        h->held[index / 8] &= ~bit;
        h->n_held--;
    }
}

static uint64_t
model_lowest_missing(const struct harness *h)
{
    for (uint64_t i = 0; i < h->n_chunks; i++) {
        if (!model_has(h, i)) {
            return i;
        }
    }
    return h->n_chunks;
}

static void
queue_push(struct harness *h, uint64_t index)
{
    if (h->q_len == QUEUE_SIZE) {
        h->q_head = (h->q_head + 1) % QUEUE_SIZE;
        h->q_len--;
    }
    h->queue[(h->q_head + h->q_len++) % QUEUE_SIZE] = index;
}

/* Removes and returns the queued chunk at position 'pos' (modulo the
 * queue's length; callers pass at most 255, so the shift is short).  The
 * queue must not be empty. */
static uint64_t
queue_take(struct harness *h, size_t pos)
{
    pos %= h->q_len;
    uint64_t index = h->queue[(h->q_head + pos) % QUEUE_SIZE];
    for (size_t i = pos; i > 0; i--) {
        h->queue[(h->q_head + i) % QUEUE_SIZE]
            = h->queue[(h->q_head + i - 1) % QUEUE_SIZE];
    }
    h->q_head = (h->q_head + 1) % QUEUE_SIZE;
    h->q_len--;
    return index;
}

/* Checks the engine against the model and its own promises. */
static void
check_engine(struct harness *h)
{
    struct xfer_rx_stats s;
    xfer_rx_get_stats(h->rx, &s);

    FUZZ_CHECK(s.n_chunks == h->n_chunks);
    FUZZ_CHECK(s.have == h->n_held);
    FUZZ_CHECK(s.have <= s.n_chunks);
    FUZZ_CHECK(s.have == s.had_at_start + s.received - h->n_losses);
    FUZZ_CHECK(s.outstanding <= h->window);
    FUZZ_CHECK(xfer_rx_is_complete(h->rx) == (s.have == s.n_chunks));
    FUZZ_CHECK(s.rto >= h->rto_min && s.rto <= h->rto_max);
    FUZZ_CHECK(s.unrequested <= s.received);
    FUZZ_CHECK(s.rerequested_fast <= s.rerequested);

    /* Counters never go back. */
    FUZZ_CHECK(s.requested >= h->last.requested);
    FUZZ_CHECK(s.rerequested >= h->last.rerequested);
    FUZZ_CHECK(s.rerequested_fast >= h->last.rerequested_fast);
    FUZZ_CHECK(s.timeouts >= h->last.timeouts);
    FUZZ_CHECK(s.received >= h->last.received);
    FUZZ_CHECK(s.duplicates >= h->last.duplicates);
    FUZZ_CHECK(s.unrequested >= h->last.unrequested);
    FUZZ_CHECK(s.gets >= h->last.gets);
    FUZZ_CHECK(s.had_at_start >= h->last.had_at_start);

    size_t n_bytes;
    const uint8_t *bitmap = xfer_rx_bitmap(h->rx, &n_bytes);
    FUZZ_CHECK(n_bytes == h->held_len);
    FUZZ_CHECK(!memcmp(bitmap, h->held, n_bytes));
    FUZZ_CHECK(!xfer_rx_has(h->rx, h->n_chunks));
    FUZZ_CHECK(!xfer_rx_has(h->rx, UINT64_MAX));

    h->last = s;
}

/* Checks that the GET 'ranges' of 'n' ranges, from the engine, goes on the
 * wire as an XFER GET that parses back to the same ranges. */
static void
check_get_encodes(const struct harness *h,
                  const struct xfer_range ranges[XFER_MAX_RANGES], size_t n)
{
    struct xfer_msg msg, again;

    memset(&msg, 0, sizeof msg);
    msg.op = XFER_OP_GET;
    memset(msg.digest, 'a', XFER_DIGEST_LEN);
    msg.size = h->size;
    msg.chunk_size = h->chunk_size;
    msg.n_ranges = n;
    memcpy(msg.ranges, ranges, n * sizeof *ranges);

    char *text = msg_to_text(&msg);
    const char *error = xfer_msg_parse((const uint8_t *) text, strlen(text),
                                       &again);
    if (error) {
        fprintf(stderr, "engine's GET %s: %s\n", text, error);
    }
    FUZZ_CHECK(!error);
    check_msg_equal(&again, &msg);
    free(text);
}

/* One xfer_rx_next_get().  Returns the number of ranges. */
static size_t
do_get(struct harness *h)
{
    struct xfer_range ranges[XFER_MAX_RANGES];
    struct xfer_rx_stats before, after;

    xfer_rx_get_stats(h->rx, &before);
    long long wakeup = xfer_rx_next_wakeup(h->rx, h->now);
    uint64_t lowest_missing = (h->restarted ? model_lowest_missing(h)
                               : h->n_chunks);
    size_t n = xfer_rx_next_get(h->rx, h->now, ranges);
    xfer_rx_get_stats(h->rx, &after);
    bool restarted = h->restarted;
    h->got_get = true;
    h->restarted = false;

    FUZZ_CHECK(n <= XFER_MAX_RANGES);
    FUZZ_CHECK(after.gets == before.gets + (n > 0));
    if (wakeup > h->now) {
        /* Nothing to ask for before the wakeup time. */
        FUZZ_CHECK(n == 0);
    }
    if (!n) {
        /* An incomplete transfer never stalls. */
        FUZZ_CHECK(xfer_rx_is_complete(h->rx) || after.outstanding > 0);
        return 0;
    }

    if (restarted) {
        /* After a restart, from the lowest missing chunk. */
        FUZZ_CHECK(ranges[0].first == lowest_missing);
    }

    uint64_t total = 0;
    if (++h->mark_gen == 0) {
        memset(h->mark, 0, h->n_chunks * sizeof *h->mark);
        h->mark_gen = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct xfer_range *r = &ranges[i];
        FUZZ_CHECK(r->count >= 1);
        FUZZ_CHECK(r->first < h->n_chunks);
        FUZZ_CHECK(r->count <= h->n_chunks - r->first);
        total += r->count;
        FUZZ_CHECK(total <= XFER_MAX_GET_CHUNKS);
        for (uint64_t j = r->first; j < r->first + r->count; j++) {
            /* No held chunk, none twice. */
            FUZZ_CHECK(!model_has(h, j));
            FUZZ_CHECK(!xfer_rx_has(h->rx, j));
            FUZZ_CHECK(h->mark[j] != h->mark_gen);
            h->mark[j] = h->mark_gen;
            queue_push(h, j);
        }
    }
    FUZZ_CHECK(total <= h->window);
    FUZZ_CHECK(after.outstanding <= h->window);
    FUZZ_CHECK((after.requested - before.requested)
               + (after.rerequested - before.rerequested) == total);
    check_get_encodes(h, ranges, n);
    return n;
}

/* A chunk arrives. */
static void
do_chunk(struct harness *h, uint64_t index, size_t len)
{
    struct xfer_rx_stats before, after;
    bool was_held = model_has(h, index);
    enum xfer_rx_verdict expected
        = (index >= h->n_chunks ? XFER_RX_OUT_OF_RANGE
           : len != xfer_chunk_len(h->size, h->chunk_size, index)
           ? XFER_RX_BAD_LENGTH
           : was_held ? XFER_RX_DUPLICATE
           : XFER_RX_NEW);

    xfer_rx_get_stats(h->rx, &before);
    enum xfer_rx_verdict v = xfer_rx_chunk(h->rx, index, len, h->now);
    xfer_rx_get_stats(h->rx, &after);

    FUZZ_CHECK(v == expected);
    FUZZ_CHECK(after.received == before.received + (v == XFER_RX_NEW));
    FUZZ_CHECK(after.duplicates
               == before.duplicates + (v == XFER_RX_DUPLICATE));
    if (v == XFER_RX_NEW) {
        FUZZ_CHECK(!was_held);
        FUZZ_CHECK(xfer_rx_has(h->rx, index));
        model_set(h, index, true);
        h->accepted[h->n_accepted++ % ACCEPTED_SIZE] = index;
    } else if (index < h->n_chunks) {
        FUZZ_CHECK(xfer_rx_has(h->rx, index) == was_held);
    }
}

static bool
pick_accepted(struct harness *h, uint8_t pick, uint64_t *index)
{
    size_t n = h->n_accepted < ACCEPTED_SIZE ? h->n_accepted : ACCEPTED_SIZE;
    if (!n) {
        return false;
    }
    *index = h->accepted[pick % n];
    return true;
}

static void
step_chunk(struct harness *h, struct fuzz_input *in, unsigned int a)
{
    uint64_t index;

    switch (a & 3) {
    case 0: {
        uint8_t pos = fuzz_u8(in);
        if (!h->q_len) {
            return;
        }
        index = queue_take(h, pos);
        break;
    }
    case 1:
        index = fuzz_be32(in);
        break;
    case 2:
        if (!pick_accepted(h, fuzz_u8(in), &index)) {
            return;
        }
        break;
    default:
        index = h->n_chunks - 1 - fuzz_u8(in);
        break;
    }

    size_t right = xfer_chunk_len(h->size, h->chunk_size, index);
    size_t len;
    switch ((a >> 2) & 3) {
    case 2: {
        int delta = (int8_t) fuzz_u8(in);
        len = (delta >= 0 ? right + delta
               : right >= (size_t) -delta ? right - (size_t) -delta
               : 0);
        break;
    }
    case 3:
        len = fuzz_be16(in);
        break;
    default:
        len = right;
        break;
    }
    do_chunk(h, index, len);
}

static void
step_have(struct harness *h, struct fuzz_input *in, unsigned int a)
{
    if (a & 1) {
        const uint8_t *p;
        size_t n = fuzz_take(in, fuzz_u8(in) % 64, &p);
        if (h->got_get) {
            return;
        }
        uint8_t *bitmap = fuzz_dup(p, n);
        xfer_rx_load_bitmap(h->rx, bitmap, n);
        for (size_t i = 0; i < n && i < h->held_len; i++) {
            for (int b = 0; b < 8; b++) {
                uint64_t index = (uint64_t) i * 8 + b;
                if (bitmap[i] >> b & 1 && index < h->n_chunks) {
                    model_set(h, index, true);
                }
            }
        }
        free(bitmap);
    } else {
        uint64_t index = fuzz_be32(in);
        if (a & 2) {
            index %= h->n_chunks + 1;
        }
        if (h->got_get) {
            return;
        }
        xfer_rx_set_have(h->rx, index);
        if (index < h->n_chunks) {
            model_set(h, index, true);
        }
    }
}

static void
step_lost(struct harness *h, struct fuzz_input *in)
{
    uint64_t index;
    if (pick_accepted(h, fuzz_u8(in), &index) && model_has(h, index)) {
        xfer_rx_lost(h->rx, index);
        model_set(h, index, false);
        h->n_losses++;
        FUZZ_CHECK(!xfer_rx_has(h->rx, index));
        FUZZ_CHECK(!xfer_rx_is_complete(h->rx));
    }
}

static void
step_restart(struct harness *h, unsigned int a)
{
    xfer_rx_restart(h->rx);
    if (!(a & 1)) {
        h->q_head = h->q_len = 0;
    }
    h->restarted = true;

    struct xfer_rx_stats s;
    xfer_rx_get_stats(h->rx, &s);
    FUZZ_CHECK(s.outstanding == 0);
    FUZZ_CHECK(xfer_rx_next_wakeup(h->rx, h->now)
               == (xfer_rx_is_complete(h->rx) ? LLONG_MAX : h->now));
}

static void
step_deliver(struct harness *h, struct fuzz_input *in, unsigned int a)
{
    uint8_t delay = fuzz_u8(in);
    uint8_t loss = fuzz_u8(in);

    for (unsigned int i = 0; i <= a && h->q_len; i++) {
        uint64_t index = queue_take(h, 0);
        h->now += delay;
        if (!(loss >> (i % 8) & 1)) {
            do_chunk(h, index,
                     xfer_chunk_len(h->size, h->chunk_size, index));
        }
    }
}

static void
fuzz_engine(struct fuzz_input *in)
{
    struct xfer_rx_config cfg = {
        .window = fuzz_be16(in) % 1025,
        .rto_min = fuzz_u8(in),
        .rto_max = fuzz_u8(in) * 8,
        .rto_initial = fuzz_u8(in) * 4,
    };
    uint32_t chunk_size = fuzz_be16(in);
    uint64_t size = (uint64_t) fuzz_be32(in) << 32;
    size |= fuzz_be32(in);

    uint64_t n_chunks = xfer_n_chunks(size, chunk_size);
    if (!chunk_size || chunk_size > CHAN_WIRE_MAX_PAYLOAD
        || n_chunks > XFER_MAX_CHUNKS) {
        FUZZ_CHECK(!xfer_rx_create(size, chunk_size, &cfg));
        return;
    }
    if (n_chunks > MAX_FUZZ_CHUNKS) {
        size %= (uint64_t) MAX_FUZZ_CHUNKS * chunk_size + 1;
        n_chunks = xfer_n_chunks(size, chunk_size);
    }
    FUZZ_CHECK(n_chunks >= 1 && n_chunks <= MAX_FUZZ_CHUNKS);

    struct harness *h = fuzz_alloc(sizeof *h);
    h->rx = xfer_rx_create(size, chunk_size, &cfg);
    FUZZ_CHECK(h->rx);
    h->size = size;
    h->chunk_size = chunk_size;
    h->n_chunks = n_chunks;
    unsigned int window = cfg.window ? cfg.window : XFER_DEFAULT_WINDOW;
    h->window = window < n_chunks ? window : n_chunks;
    h->rto_min = cfg.rto_min ? cfg.rto_min : XFER_DEFAULT_RTO_MIN;
    h->rto_max = cfg.rto_max ? cfg.rto_max : XFER_DEFAULT_RTO_MAX;
    if (h->rto_max < h->rto_min) {
        h->rto_max = h->rto_min;
    }
    h->now = 1000000;
    h->held_len = (n_chunks + 7) / 8;
    h->held = fuzz_alloc(h->held_len);
    h->mark = fuzz_alloc(n_chunks * sizeof *h->mark);

    FUZZ_CHECK(xfer_chunk_len(size, chunk_size, n_chunks) == 0);
    check_engine(h);

    for (int i = 0; i < MAX_STEPS && in->size; i++) {
        uint8_t step = fuzz_u8(in);
        unsigned int a = step >> 3;

        switch (step & 7) {
        case FUZZ_XFER_CHUNK:
            step_chunk(h, in, a);
            break;
        case FUZZ_XFER_GET:
            for (int j = 0; j < 1 + (a & 1) * 64 && do_get(h); j++) {
                continue;
            }
            break;
        case FUZZ_XFER_TIME:
            if (a & 16) {
                h->now -= fuzz_u8(in);
            } else {
                h->now += (long long) fuzz_u8(in) << (a & 15);
            }
            break;
        case FUZZ_XFER_WAKEUP: {
            long long wakeup = xfer_rx_next_wakeup(h->rx, h->now);
            if (wakeup != LLONG_MAX && wakeup > h->now) {
                h->now = wakeup;
            }
            break;
        }
        case FUZZ_XFER_HAVE:
            step_have(h, in, a);
            break;
        case FUZZ_XFER_LOST:
            step_lost(h, in);
            break;
        case FUZZ_XFER_RESTART:
            step_restart(h, a);
            break;
        case FUZZ_XFER_DELIVER:
        default:
            step_deliver(h, in, a);
            break;
        }
        check_engine(h);
    }

    xfer_rx_destroy(h->rx);
    free(h->mark);
    free(h->held);
    free(h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    uint8_t mode = fuzz_u8(&in);

    if (mode & FUZZ_XFER_ENGINE) {
        fuzz_engine(&in);
    } else {
        fuzz_msg(in.data, in.size);
    }
    return 0;
}
