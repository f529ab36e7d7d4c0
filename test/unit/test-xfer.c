/* Unit tests for lib/xfer: the XFER message codec against hostile payloads,
 * chunk arithmetic, and the receiver engine driven over a simulated link
 * (loss in both directions, fixed delay, a sender of limited rate that
 * answers GETs in order) and step by step for its timers and limits. */

#include <config.h>
#include "unit.h"
#include "xfer.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan-wire.h"
#include "util.h"

#define N_ELEMS(ARRAY) (sizeof (ARRAY) / sizeof (ARRAY)[0])

#define D64 "0123456789abcdef0123456789abcdef" \
            "0123456789abcdef0123456789abcdef"

static const char *
parse_text(const char *text, struct xfer_msg *msg)
{
    return xfer_msg_parse((const uint8_t *) text, strlen(text), msg);
}

/* Encodes 'msg' as the wire does and parses it again into 'out'. */
static const char *
round_trip(const struct xfer_msg *msg, struct xfer_msg *out)
{
    json_t *obj = xfer_msg_to_json(msg);
    char *text;
    size_t len;

    CU_ASSERT_PTR_NOT_NULL_FATAL(obj);
    CU_ASSERT_EQUAL_FATAL(chan_payload_encode_object(obj, NULL, &text, &len),
                          0);
    json_decref(obj);
    const char *error = xfer_msg_parse((const uint8_t *) text, len, out);
    free(text);
    return error;
}

/* Codec. */

/* True if 'error' (possibly NULL) is 'expected'. */
static bool
error_is(const char *error, const char *expected)
{
    return error && !strcmp(error, expected);
}

static void
test_round_trip(void)
{
    struct xfer_msg get, fail, done, out;

    memset(&get, 0, sizeof get);
    get.op = XFER_OP_GET;
    strcpy(get.digest, D64);
    get.size = (UINT64_C(1) << 32) * 1000 - 1;
    get.chunk_size = 1000;
    get.n_ranges = 3;
    get.ranges[0] = (struct xfer_range) { 7, 100 };
    get.ranges[1] = (struct xfer_range) { 0, 1 };
    get.ranges[2] = (struct xfer_range) { (UINT64_C(1) << 32) - 155, 155 };
    CU_ASSERT_PTR_NULL(round_trip(&get, &out));
    CU_ASSERT_EQUAL(memcmp(&get, &out, sizeof get), 0);

    memset(&fail, 0, sizeof fail);
    fail.op = XFER_OP_FAIL;
    strcpy(fail.digest, D64);
    strcpy(fail.error, XFER_ERR_NOT_ENTITLED);
    strcpy(fail.reason, "not yours: \"x\" \xc3\xa9");
    CU_ASSERT_PTR_NULL(round_trip(&fail, &out));
    CU_ASSERT_EQUAL(memcmp(&fail, &out, sizeof fail), 0);

    memset(&done, 0, sizeof done);
    done.op = XFER_OP_DONE;
    strcpy(done.digest, D64);
    CU_ASSERT_PTR_NULL(round_trip(&done, &out));
    CU_ASSERT_EQUAL(memcmp(&done, &out, sizeof done), 0);

    /* The largest size and chunk size, an empty object, an empty reason. */
    get.size = 0;
    get.chunk_size = CHAN_WIRE_MAX_PAYLOAD;
    get.n_ranges = 1;
    get.ranges[0] = (struct xfer_range) { 0, 1 };
    memset(&get.ranges[1], 0, sizeof get.ranges[1] * 2);
    CU_ASSERT_PTR_NULL(round_trip(&get, &out));
    CU_ASSERT_EQUAL(memcmp(&get, &out, sizeof get), 0);
    /* The largest object: 2^32 chunks of the largest size. */
    CU_ASSERT_PTR_NULL(parse_text("{\"op\":\"get\",\"digest\":\"" D64 "\","
                                  "\"size\":281127084359680,"
                                  "\"chunk_size\":65455,"
                                  "\"ranges\":[[4294967295,1]]}",
                                  &out));
    CU_ASSERT_EQUAL(out.size, XFER_MAX_CHUNKS * 65455);
    CU_ASSERT_EQUAL(out.ranges[0].first, XFER_MAX_CHUNKS - 1);
    CU_ASSERT_TRUE(error_is(parse_text("{\"op\":\"get\",\"digest\":\""
                                       D64 "\",\"size\":281127084359681,"
                                       "\"chunk_size\":65455,"
                                       "\"ranges\":[[0,1]]}", &out),
                            "GET object has more than 2^32 chunks"));
    fail.reason[0] = '\0';
    CU_ASSERT_PTR_NULL(round_trip(&fail, &out));
    CU_ASSERT_STRING_EQUAL(out.reason, "");

    /* Member order does not matter. */
    CU_ASSERT_PTR_NULL(parse_text("{\"digest\":\"" D64 "\",\"op\":\"done\"}",
                                  &out));
    CU_ASSERT_EQUAL(out.op, XFER_OP_DONE);
}

struct refusal {
    const char *payload;
    const char *error;
};

#define GET_HDR "{\"op\":\"get\",\"digest\":\"" D64 "\","
#define GET_OK(RANGES) GET_HDR "\"size\":10000,\"chunk_size\":100," \
    "\"ranges\":" RANGES "}"
#define GET_BIG(RANGES) GET_HDR "\"size\":100000,\"chunk_size\":100," \
    "\"ranges\":" RANGES "}"
#define FAIL_HDR "{\"op\":\"fail\",\"digest\":\"" D64 "\","

static const struct refusal refusals[] = {
    /* JSON rules (chan_payload_decode_object()). */
    { "{", "XFER payload is not valid JSON" },
    { "{\"op\":\"done\",\"op\":\"done\",\"digest\":\"" D64 "\"}",
      "XFER payload is not valid JSON" },
    { "{\"op\":\"done\",\"digest\":\"" D64 "\"} {}",
      "XFER payload is not valid JSON" },
    { "[\"op\",\"done\"]", "XFER payload is not a JSON object" },
    /* Common members. */
    { "", "XFER message has no \"op\"" },
    { "{\"digest\":\"" D64 "\"}", "XFER message has no \"op\"" },
    { "{\"op\":3,\"digest\":\"" D64 "\"}", "XFER \"op\" is not a string" },
    { "{\"op\":\"put\",\"digest\":\"" D64 "\"}",
      "XFER \"op\" is not \"get\", \"fail\" or \"done\"" },
    { "{\"op\":\"GET\",\"digest\":\"" D64 "\"}",
      "XFER \"op\" is not \"get\", \"fail\" or \"done\"" },
    { "{\"op\":\"done\"}", "XFER message has no \"digest\"" },
    { "{\"op\":\"done\",\"digest\":7}",
      "XFER \"digest\" is not 64 lowercase hex digits" },
    { "{\"op\":\"done\",\"digest\":\"" D64 "0\"}",
      "XFER \"digest\" is not 64 lowercase hex digits" },
    { "{\"op\":\"done\",\"digest\":\"123456789abcdef0123456789abcdef"
      "0123456789abcdef0123456789abcdef\"}",
      "XFER \"digest\" is not 64 lowercase hex digits" },
    { "{\"op\":\"done\",\"digest\":\"0123456789ABCDEF0123456789abcdef"
      "0123456789abcdef0123456789abcdef\"}",
      "XFER \"digest\" is not 64 lowercase hex digits" },
    { "{\"op\":\"done\",\"digest\":\"0123456789abcdeg0123456789abcdef"
      "0123456789abcdef0123456789abcdef\"}",
      "XFER \"digest\" is not 64 lowercase hex digits" },
    { "{\"op\":\"done\",\"digest\":\"0123456789abcdef0123456789abcdef"
      "0123456789abcdef0123456789abcde\\u0000\"}",
      "XFER \"digest\" is not 64 lowercase hex digits" },
    /* Members the op does not allow. */
    { "{\"op\":\"done\",\"digest\":\"" D64 "\",\"size\":1}",
      "XFER message has a member its op does not allow" },
    { "{\"op\":\"done\",\"digest\":\"" D64 "\",\"reason\":\"x\"}",
      "XFER message has a member its op does not allow" },
    { GET_HDR "\"size\":1,\"chunk_size\":1,\"ranges\":[[0,1]],\"x\":0}",
      "XFER message has a member its op does not allow" },
    { GET_HDR "\"size\":1,\"chunk_size\":1,\"ranges\":[[0,1]],"
      "\"error\":\"io\"}",
      "XFER message has a member its op does not allow" },
    { FAIL_HDR "\"error\":\"io\",\"reason\":\"\",\"size\":1}",
      "XFER message has a member its op does not allow" },
    /* GET size and chunk size. */
    { GET_HDR "\"chunk_size\":1,\"ranges\":[[0,1]]}",
      "GET has no \"size\"" },
    { GET_HDR "\"size\":1.0,\"chunk_size\":1,\"ranges\":[[0,1]]}",
      "GET \"size\" is not an integer" },
    { GET_HDR "\"size\":\"1\",\"chunk_size\":1,\"ranges\":[[0,1]]}",
      "GET \"size\" is not an integer" },
    { GET_HDR "\"size\":-1,\"chunk_size\":1,\"ranges\":[[0,1]]}",
      "GET \"size\" is negative" },
    { GET_HDR "\"size\":9223372036854775808,\"chunk_size\":1,"
      "\"ranges\":[[0,1]]}",
      "XFER payload is not valid JSON" },
    { GET_HDR "\"size\":1,\"ranges\":[[0,1]]}",
      "GET has no \"chunk_size\"" },
    { GET_HDR "\"size\":1,\"chunk_size\":null,\"ranges\":[[0,1]]}",
      "GET \"chunk_size\" is not an integer" },
    { GET_HDR "\"size\":1,\"chunk_size\":0,\"ranges\":[[0,1]]}",
      "GET \"chunk_size\" is not 1..65455" },
    { GET_HDR "\"size\":1,\"chunk_size\":-1420,\"ranges\":[[0,1]]}",
      "GET \"chunk_size\" is not 1..65455" },
    { GET_HDR "\"size\":1,\"chunk_size\":65456,\"ranges\":[[0,1]]}",
      "GET \"chunk_size\" is not 1..65455" },
    { GET_HDR "\"size\":4294967297,\"chunk_size\":1,\"ranges\":[[0,1]]}",
      "GET object has more than 2^32 chunks" },
    { GET_HDR "\"size\":9223372036854775807,\"chunk_size\":65455,"
      "\"ranges\":[[0,1]]}",
      "GET object has more than 2^32 chunks" },
    /* GET ranges. */
    { GET_HDR "\"size\":1,\"chunk_size\":1}", "GET has no \"ranges\"" },
    { GET_HDR "\"size\":1,\"chunk_size\":1,\"ranges\":{}}",
      "GET \"ranges\" is not an array" },
    { GET_OK("[]"), "GET \"ranges\" is empty" },
    { GET_OK("[[0,1],[1,1],[2,1],[3,1],[4,1],[5,1],[6,1],[7,1],[8,1],[9,1],"
             "[10,1],[11,1],[12,1],[13,1],[14,1],[15,1],[16,1],[17,1],"
             "[18,1],[19,1],[20,1],[21,1],[22,1],[23,1],[24,1],[25,1],"
             "[26,1],[27,1],[28,1],[29,1],[30,1],[31,1],[32,1],[33,1],"
             "[34,1],[35,1],[36,1],[37,1],[38,1],[39,1],[40,1],[41,1],"
             "[42,1],[43,1],[44,1],[45,1],[46,1],[47,1],[48,1],[49,1],"
             "[50,1],[51,1],[52,1],[53,1],[54,1],[55,1],[56,1],[57,1],"
             "[58,1],[59,1],[60,1],[61,1],[62,1],[63,1],[64,1]]"),
      "GET has more than 64 ranges" },
    { GET_OK("[5]"), "GET range is not a [first, count] pair of integers" },
    { GET_OK("[[5]]"), "GET range is not a [first, count] pair of integers" },
    { GET_OK("[[5,1,1]]"),
      "GET range is not a [first, count] pair of integers" },
    { GET_OK("[[\"5\",1]]"),
      "GET range is not a [first, count] pair of integers" },
    { GET_OK("[[5,1.0]]"),
      "GET range is not a [first, count] pair of integers" },
    { GET_OK("[{\"first\":5,\"count\":1}]"),
      "GET range is not a [first, count] pair of integers" },
    { GET_OK("[[-1,1]]"), "GET range has a negative first chunk" },
    { GET_OK("[[0,0]]"), "GET range has a count below 1" },
    { GET_OK("[[0,-5]]"), "GET range has a count below 1" },
    { GET_OK("[[0,257]]"), "GET asks for more than 256 chunks" },
    { GET_OK("[[0,4294967297]]"), "GET asks for more than 256 chunks" },
    { GET_BIG("[[0,200],[300,57]]"), "GET asks for more than 256 chunks" },
    { GET_OK("[[100,1]]"), "GET range starts past the object's last chunk" },
    { GET_OK("[[9223372036854775807,1]]"),
      "GET range starts past the object's last chunk" },
    { GET_OK("[[0,1],[99,2]]"),
      "GET range runs past the object's last chunk" },
    { GET_HDR "\"size\":0,\"chunk_size\":1,\"ranges\":[[0,2]]}",
      "GET range runs past the object's last chunk" },
    /* FAIL. */
    { FAIL_HDR "\"reason\":\"x\"}", "FAIL has no \"error\"" },
    { FAIL_HDR "\"error\":\"\",\"reason\":\"x\"}",
      "FAIL \"error\" is not 1..32 bytes of [a-z0-9_]" },
    { FAIL_HDR "\"error\":\"abcdefghijklmnopqrstuvwxyz0123456\","
      "\"reason\":\"x\"}",
      "FAIL \"error\" is not 1..32 bytes of [a-z0-9_]" },
    { FAIL_HDR "\"error\":\"No_object\",\"reason\":\"x\"}",
      "FAIL \"error\" is not 1..32 bytes of [a-z0-9_]" },
    { FAIL_HDR "\"error\":\"no-object\",\"reason\":\"x\"}",
      "FAIL \"error\" is not 1..32 bytes of [a-z0-9_]" },
    { FAIL_HDR "\"error\":\"io\\u0000\",\"reason\":\"x\"}",
      "FAIL \"error\" is not 1..32 bytes of [a-z0-9_]" },
    { FAIL_HDR "\"error\":[\"io\"],\"reason\":\"x\"}",
      "FAIL \"error\" is not 1..32 bytes of [a-z0-9_]" },
    { FAIL_HDR "\"error\":\"io\"}", "FAIL has no \"reason\"" },
    { FAIL_HDR "\"error\":\"io\",\"reason\":null}",
      "FAIL \"reason\" is not a string" },
};

static void
test_refusals(void)
{
    for (size_t i = 0; i < N_ELEMS(refusals); i++) {
        struct xfer_msg msg;
        const char *error = parse_text(refusals[i].payload, &msg);
        if (!error || strcmp(error, refusals[i].error)) {
            fprintf(stderr, "refusal %zu: %s\n  got %s, expected %s\n", i,
                    refusals[i].payload, error ? error : "success",
                    refusals[i].error);
        }
        CU_ASSERT_PTR_NOT_NULL(error);
        CU_ASSERT_TRUE(error_is(error, refusals[i].error));
    }

    /* Accepted at the edges of the rules the refusals break. */
    struct xfer_msg msg;
    CU_ASSERT_PTR_NULL(parse_text(GET_BIG("[[0,200],[300,56]]"), &msg));
    CU_ASSERT_EQUAL(msg.n_ranges, 2);
    CU_ASSERT_PTR_NULL(parse_text(GET_OK("[[0,1],[98,2]]"), &msg));
    CU_ASSERT_PTR_NULL(parse_text(GET_BIG("[[0,256]]"), &msg));
    CU_ASSERT_PTR_NULL(parse_text(GET_HDR "\"size\":4294967296,"
                                  "\"chunk_size\":1,"
                                  "\"ranges\":[[4294967295,1]]}", &msg));
    CU_ASSERT_PTR_NULL(parse_text(GET_HDR "\"size\":0,\"chunk_size\":1,"
                                  "\"ranges\":[[0,1]]}", &msg));
    CU_ASSERT_PTR_NULL(parse_text(FAIL_HDR "\"error\":"
                                  "\"abcdefghijklmnopqrstuvwxyz012345\","
                                  "\"reason\":\"x\"}", &msg));
    CU_ASSERT_STRING_EQUAL(msg.error, "abcdefghijklmnopqrstuvwxyz012345");

    /* 64 ranges are fine. */
    char text[2048];
    size_t n = snprintf(text, sizeof text, GET_HDR "\"size\":100000,"
                        "\"chunk_size\":100,\"ranges\":[");
    for (int i = 0; i < XFER_MAX_RANGES; i++) {
        n += snprintf(text + n, sizeof text - n, "%s[%d,1]", i ? "," : "",
                      i * 2);
    }
    snprintf(text + n, sizeof text - n, "]}");
    CU_ASSERT_PTR_NULL(parse_text(text, &msg));
    CU_ASSERT_EQUAL(msg.n_ranges, XFER_MAX_RANGES);
    CU_ASSERT_EQUAL(msg.ranges[63].first, 126);

    /* Nesting beyond the depth limit, in a member that is refused anyway:
     * the JSON rules come first. */
    n = snprintf(text, sizeof text, "{\"op\":\"done\",\"digest\":\"" D64
                 "\",\"x\":");
    for (int i = 0; i < 40; i++) {
        text[n++] = '[';
    }
    for (int i = 0; i < 40; i++) {
        text[n++] = ']';
    }
    snprintf(text + n, sizeof text - n, "}");
    CU_ASSERT_TRUE(error_is(parse_text(text, &msg),
                            "XFER payload nests too deeply"));

}

/* The reason a FAIL keeps from 'reason' (JSON string contents). */
static void
check_reason(const char *reason_json, const char *expected)
{
    char text[2048];
    struct xfer_msg msg, out;

    snprintf(text, sizeof text, FAIL_HDR "\"error\":\"io\",\"reason\":\"%s\"}",
             reason_json);
    CU_ASSERT_PTR_NULL_FATAL(parse_text(text, &msg));
    CU_ASSERT_STRING_EQUAL(msg.reason, expected);
    CU_ASSERT(strlen(msg.reason) <= XFER_REASON_MAX);

    /* What was kept goes round again unchanged. */
    CU_ASSERT_PTR_NULL(round_trip(&msg, &out));
    CU_ASSERT_STRING_EQUAL(out.reason, expected);
}

static void
test_reason_truncation(void)
{
    char a[XFER_REASON_MAX + 64];
    char in[XFER_REASON_MAX + 64], exp[XFER_REASON_MAX + 64];

    memset(a, 'a', sizeof a);

    /* Short, exact, and one byte over. */
    check_reason("it broke", "it broke");
    snprintf(in, sizeof in, "%.*s", XFER_REASON_MAX, a);
    check_reason(in, in);
    snprintf(in, sizeof in, "%.*sb", XFER_REASON_MAX, a);
    snprintf(exp, sizeof exp, "%.*s", XFER_REASON_MAX, a);
    check_reason(in, exp);

    /* A 2-byte character ending exactly at the limit is kept... */
    snprintf(in, sizeof in, "%.*s\xc3\xa9z", XFER_REASON_MAX - 2, a);
    snprintf(exp, sizeof exp, "%.*s\xc3\xa9", XFER_REASON_MAX - 2, a);
    check_reason(in, exp);
    /* ...one that straddles it is dropped whole. */
    snprintf(in, sizeof in, "%.*s\xc3\xa9", XFER_REASON_MAX - 1, a);
    snprintf(exp, sizeof exp, "%.*s", XFER_REASON_MAX - 1, a);
    check_reason(in, exp);
    /* 3 bytes (U+20AC) with 1 or 2 of them inside. */
    snprintf(in, sizeof in, "%.*s\xe2\x82\xac", XFER_REASON_MAX - 1, a);
    snprintf(exp, sizeof exp, "%.*s", XFER_REASON_MAX - 1, a);
    check_reason(in, exp);
    snprintf(in, sizeof in, "%.*s\xe2\x82\xac", XFER_REASON_MAX - 2, a);
    snprintf(exp, sizeof exp, "%.*s", XFER_REASON_MAX - 2, a);
    check_reason(in, exp);
    /* 4 bytes (U+1F600, escaped as a surrogate pair) with 3 inside. */
    snprintf(in, sizeof in, "%.*s\\ud83d\\ude00", XFER_REASON_MAX - 3, a);
    snprintf(exp, sizeof exp, "%.*s", XFER_REASON_MAX - 3, a);
    check_reason(in, exp);
    snprintf(in, sizeof in, "%.*s\\ud83d\\ude00", XFER_REASON_MAX - 4, a);
    snprintf(exp, sizeof exp, "%.*s\xf0\x9f\x98\x80", XFER_REASON_MAX - 4, a);
    check_reason(in, exp);

    /* A U+0000 ends the reason. */
    check_reason("ab\\u0000cd", "ab");
}

static void
test_chunk_arithmetic(void)
{
    /* An empty object is one empty chunk. */
    CU_ASSERT_EQUAL(xfer_n_chunks(0, 1420), 1);
    CU_ASSERT_EQUAL(xfer_chunk_len(0, 1420, 0), 0);
    CU_ASSERT_EQUAL(xfer_chunk_len(0, 1420, 1), 0);

    CU_ASSERT_EQUAL(xfer_n_chunks(1, 1420), 1);
    CU_ASSERT_EQUAL(xfer_chunk_len(1, 1420, 0), 1);
    CU_ASSERT_EQUAL(xfer_n_chunks(1419, 1420), 1);
    CU_ASSERT_EQUAL(xfer_chunk_len(1419, 1420, 0), 1419);

    /* Exact multiples: no empty last chunk. */
    CU_ASSERT_EQUAL(xfer_n_chunks(1420, 1420), 1);
    CU_ASSERT_EQUAL(xfer_chunk_len(1420, 1420, 0), 1420);
    CU_ASSERT_EQUAL(xfer_n_chunks(2840, 1420), 2);
    CU_ASSERT_EQUAL(xfer_chunk_len(2840, 1420, 1), 1420);
    CU_ASSERT_EQUAL(xfer_chunk_len(2840, 1420, 2), 0);

    /* One byte over. */
    CU_ASSERT_EQUAL(xfer_n_chunks(2841, 1420), 3);
    CU_ASSERT_EQUAL(xfer_chunk_len(2841, 1420, 0), 1420);
    CU_ASSERT_EQUAL(xfer_chunk_len(2841, 1420, 1), 1420);
    CU_ASSERT_EQUAL(xfer_chunk_len(2841, 1420, 2), 1);

    /* 1 GiB, and the largest sizes. */
    CU_ASSERT_EQUAL(xfer_n_chunks(XFER_DEFAULT_MAX_SIZE, 1420), 756157);
    CU_ASSERT_EQUAL(xfer_chunk_len(XFER_DEFAULT_MAX_SIZE, 1420, 756156),
                    XFER_DEFAULT_MAX_SIZE - UINT64_C(756156) * 1420);
    CU_ASSERT_EQUAL(xfer_n_chunks(XFER_MAX_CHUNKS, 1), XFER_MAX_CHUNKS);
    CU_ASSERT_EQUAL(xfer_n_chunks(UINT64_MAX, 1), UINT64_MAX);
    CU_ASSERT_EQUAL(xfer_n_chunks(UINT64_MAX, 65455),
                    UINT64_MAX / 65455 + 1);
    CU_ASSERT_EQUAL(xfer_chunk_len(UINT64_MAX, 65455, UINT64_MAX / 65455),
                    UINT64_MAX % 65455);

    /* The engine refuses what it cannot count. */
    CU_ASSERT_PTR_NULL(xfer_rx_create(XFER_MAX_CHUNKS + 1, 1, NULL));
    CU_ASSERT_PTR_NULL(xfer_rx_create(100, 0, NULL));
    CU_ASSERT_PTR_NULL(xfer_rx_create(100, CHAN_WIRE_MAX_PAYLOAD + 1, NULL));

    CU_ASSERT_TRUE(xfer_digest_is_valid(D64));
    CU_ASSERT_FALSE(xfer_digest_is_valid(""));
    CU_ASSERT_FALSE(xfer_digest_is_valid(D64 "0"));
    CU_ASSERT_FALSE(xfer_digest_is_valid("0123456789abcdef0123456789abcdef"
                                         "0123456789abcdef0123456789abcdeF"));
    CU_ASSERT_FALSE(xfer_digest_is_valid("0123456789abcdef0123456789abcdef"
                                         "0123456789abcdef0123456789abcde"));
}

/* The engine over a simulated link.
 *
 * GETs take 'delay' ms to reach the sender and are lost whole with
 * 'loss_up' percent chance.  The sender answers them in order, 'rate'
 * chunks a ms, and each chunk takes 'delay' ms back and is lost with
 * 'loss_down' percent chance.  The link never reorders. */

struct event {
    long long at;
    uint64_t index;
};

struct fifo {
    struct event *v;
    size_t head, n, cap;
};

static void
fifo_push(struct fifo *f, long long at, uint64_t index)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 256;
        struct event *v = xmalloc(cap * sizeof *v);
        for (size_t i = 0; i < f->n; i++) {
            v[i] = f->v[(f->head + i) % f->cap];
        }
        free(f->v);
        f->v = v;
        f->head = 0;
        f->cap = cap;
    }
    f->v[(f->head + f->n++) % f->cap] = (struct event) { at, index };
}

/* Pops the front event into '*e' if it is due at 'now'. */
static bool
fifo_pop_due(struct fifo *f, long long now, struct event *e)
{
    if (!f->n || f->v[f->head].at > now) {
        return false;
    }
    *e = f->v[f->head];
    f->head = (f->head + 1) % f->cap;
    f->n--;
    return true;
}

struct sim {
    struct xfer_rx *rx;
    uint64_t size;
    uint32_t chunk_size;
    uint64_t n_chunks;
    unsigned int window;

    uint64_t rng;
    unsigned int loss_up, loss_down;    /* Percent. */
    long long delay;
    long long jitter;                   /* Extra delay of chunks, 0..ms. */
    long long last_down;                /* Arrival of the last chunk. */
    unsigned int rate;

    struct fifo up, sender, down;
    long long now;

    /* What the receiver saw. */
    uint8_t *held_at_start;             /* Owned, or NULL. */
    uint32_t *n_requested;              /* Owned: requests of each chunk. */
    uint64_t requested_held;            /* Requests of held chunks. */
    uint64_t requested_at_start;        /* ...of chunks held at start. */
    unsigned int max_outstanding;
    unsigned int max_get_chunks;
    size_t max_get_ranges;
    uint64_t bad_gets;                  /* GETs that did not parse. */
};

static void
sim_init(struct sim *s, uint64_t size, uint32_t chunk_size,
         const struct xfer_rx_config *cfg, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->size = size;
    s->chunk_size = chunk_size;
    s->n_chunks = xfer_n_chunks(size, chunk_size);
    s->window = cfg && cfg->window ? cfg->window : XFER_DEFAULT_WINDOW;
    s->rx = xfer_rx_create(size, chunk_size, cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->rx);
    s->rng = seed;
    s->delay = 5;
    s->rate = 16;
    s->n_requested = xcalloc(s->n_chunks, sizeof *s->n_requested);
}

static void
sim_destroy(struct sim *s)
{
    xfer_rx_destroy(s->rx);
    free(s->up.v);
    free(s->sender.v);
    free(s->down.v);
    free(s->held_at_start);
    free(s->n_requested);
}

static bool
sim_lose(struct sim *s, unsigned int pct)
{
    return unit_random(&s->rng) % 100 < pct;
}

/* Sends the GET for 'ranges' through the codec, as the wire would, and
 * onto the link. */
static void
sim_send_get(struct sim *s, const struct xfer_range *ranges, size_t n)
{
    struct xfer_msg get, parsed;

    memset(&get, 0, sizeof get);
    get.op = XFER_OP_GET;
    strcpy(get.digest, D64);
    get.size = s->size;
    get.chunk_size = s->chunk_size;
    get.n_ranges = n;
    memcpy(get.ranges, ranges, n * sizeof *ranges);
    if (round_trip(&get, &parsed) || parsed.n_ranges != n) {
        s->bad_gets++;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (parsed.ranges[i].first != ranges[i].first
            || parsed.ranges[i].count != ranges[i].count) {
            s->bad_gets++;
            return;
        }
    }

    unsigned int n_chunks = 0;
    for (size_t i = 0; i < n; i++) {
        n_chunks += ranges[i].count;
        for (uint64_t c = ranges[i].first;
             c < ranges[i].first + ranges[i].count; c++) {
            if (s->n_requested[c]++ == 0 && s->held_at_start
                && (s->held_at_start[c / 8] >> (c % 8)) & 1) {
                s->requested_at_start++;
            }
            if (xfer_rx_has(s->rx, c)) {
                s->requested_held++;
            }
        }
    }
    if (n_chunks > s->max_get_chunks) {
        s->max_get_chunks = n_chunks;
    }
    if (n > s->max_get_ranges) {
        s->max_get_ranges = n;
    }

    if (!sim_lose(s, s->loss_up)) {
        for (size_t i = 0; i < n; i++) {
            for (uint64_t c = ranges[i].first;
                 c < ranges[i].first + ranges[i].count; c++) {
                fifo_push(&s->up, s->now + s->delay, c);
            }
        }
    }
}

/* One ms of the link, then the receiver asks for what it wants. */
static void
sim_step(struct sim *s)
{
    struct event e;

    while (fifo_pop_due(&s->up, s->now, &e)) {
        fifo_push(&s->sender, s->now, e.index);
    }
    for (unsigned int i = 0; i < s->rate
             && fifo_pop_due(&s->sender, s->now, &e); i++) {
        if (!sim_lose(s, s->loss_down)) {
            /* Jitter, but never passing the chunk ahead. */
            long long at = s->now + s->delay;
            if (s->jitter) {
                at += unit_random(&s->rng) % (s->jitter + 1);
            }
            s->last_down = at = at > s->last_down ? at : s->last_down;
            fifo_push(&s->down, at, e.index);
        }
    }
    while (fifo_pop_due(&s->down, s->now, &e)) {
        size_t len = xfer_chunk_len(s->size, s->chunk_size, e.index);
        enum xfer_rx_verdict v = xfer_rx_chunk(s->rx, e.index, len, s->now);
        CU_ASSERT(v == XFER_RX_NEW || v == XFER_RX_DUPLICATE);
    }

    struct xfer_range ranges[XFER_MAX_RANGES];
    size_t n;
    while ((n = xfer_rx_next_get(s->rx, s->now, ranges)) > 0) {
        sim_send_get(s, ranges, n);
    }

    struct xfer_rx_stats st;
    xfer_rx_get_stats(s->rx, &st);
    if (st.outstanding > s->max_outstanding) {
        s->max_outstanding = st.outstanding;
    }

    /* Having asked for all it can, the engine sleeps until a timeout. */
    long long wakeup = xfer_rx_next_wakeup(s->rx, s->now);
    CU_ASSERT(wakeup > s->now);
    CU_ASSERT((wakeup == LLONG_MAX) == (st.outstanding == 0));
    s->now++;
}

/* Runs until the engine holds 'have' chunks or 'limit' ms pass.  Returns
 * true if it got there. */
static bool
sim_run(struct sim *s, uint64_t have, long long limit)
{
    struct xfer_rx_stats st;
    for (;;) {
        xfer_rx_get_stats(s->rx, &st);
        if (st.have >= have) {
            return true;
        } else if (s->now >= limit) {
            return false;
        }
        sim_step(s);
    }
}

static void
sim_report(const char *name, const struct sim *s)
{
    struct xfer_rx_stats st;
    xfer_rx_get_stats(s->rx, &st);
    printf("\n    %s: %"PRIu64" chunks in %lld ms: requested %"PRIu64
           ", rerequested %"PRIu64" (fast %"PRIu64"), timeouts %"PRIu64
           ", duplicates %"PRIu64", gets %"PRIu64", srtt %u, rto %u",
           name, st.n_chunks, s->now, st.requested, st.rerequested,
           st.rerequested_fast, st.timeouts, st.duplicates, st.gets,
           st.srtt, st.rto);
}

/* Checks what every run must show. */
static void
sim_check_common(const struct sim *s)
{
    struct xfer_rx_stats st;
    xfer_rx_get_stats(s->rx, &st);
    CU_ASSERT_TRUE(xfer_rx_is_complete(s->rx));
    CU_ASSERT_EQUAL(st.have, s->n_chunks);
    CU_ASSERT_EQUAL(st.received + st.had_at_start, s->n_chunks);
    CU_ASSERT_EQUAL(st.requested + st.had_at_start, s->n_chunks);
    CU_ASSERT_EQUAL(st.unrequested, 0);
    CU_ASSERT_EQUAL(st.outstanding, 0);
    CU_ASSERT_EQUAL(s->requested_held, 0);
    CU_ASSERT_EQUAL(s->bad_gets, 0);
    CU_ASSERT(s->max_outstanding <= s->window);
    CU_ASSERT(s->max_get_chunks <= XFER_MAX_GET_CHUNKS);
    CU_ASSERT(s->max_get_ranges <= XFER_MAX_RANGES);
    CU_ASSERT_EQUAL(xfer_rx_next_wakeup(s->rx, s->now), LLONG_MAX);

    /* Every chunk was asked for, and the stats add up. */
    uint64_t total = 0;
    for (uint64_t i = 0; i < s->n_chunks; i++) {
        total += s->n_requested[i];
    }
    CU_ASSERT_EQUAL(total, st.requested + st.rerequested);
}

#define SIM_CHUNKS 20000
#define SIM_SIZE ((uint64_t) SIM_CHUNKS * 1420 - 300)

static void
test_lossless(void)
{
    struct sim s;
    struct xfer_rx_stats st;

    sim_init(&s, SIM_SIZE, 1420, NULL, 1);
    CU_ASSERT_TRUE(sim_run(&s, SIM_CHUNKS, 60000));
    sim_report("lossless", &s);
    sim_check_common(&s);
    xfer_rx_get_stats(s.rx, &st);
    CU_ASSERT_EQUAL(st.rerequested, 0);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    CU_ASSERT_EQUAL(st.duplicates, 0);
    CU_ASSERT_EQUAL(st.requested, SIM_CHUNKS);
    CU_ASSERT_EQUAL(s.max_outstanding, XFER_DEFAULT_WINDOW);
    /* The round trip is 2 * 5 ms plus up to 64 / 16 ms queued. */
    CU_ASSERT(st.srtt >= 10 && st.srtt <= 15);
    sim_destroy(&s);
}

/* 20% loss each way.  A GET lost takes all its chunks with it, so a
 * request is answered with chance 0.8 * 0.8 and a chunk needs 1 / 0.64 =
 * 1.5625 requests on average: 56% of the chunks asked for again is the
 * least any receiver can do.  The engine must stay near that, and must
 * rarely ask for a chunk whose answer was still coming, even when chunks
 * take up to 3 times the round trip to come back (jitter, no
 * reordering). */
static void
test_lossy_both_ways(void)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct sim s;
        struct xfer_rx_stats st;

        sim_init(&s, SIM_SIZE, 1420, NULL, seed);
        s.loss_up = s.loss_down = 20;
        s.jitter = seed % 2 ? 0 : 20;
        CU_ASSERT_TRUE(sim_run(&s, SIM_CHUNKS, 600000));
        sim_report(s.jitter ? "20% loss both ways, jitter"
                   : "20% loss both ways", &s);
        sim_check_common(&s);
        xfer_rx_get_stats(s.rx, &st);
        CU_ASSERT(st.rerequested > SIM_CHUNKS / 2);
        CU_ASSERT(st.rerequested < SIM_CHUNKS * 62 / 100);
        CU_ASSERT(st.duplicates < SIM_CHUNKS * 5 / 100);
        CU_ASSERT(st.rerequested_fast > st.rerequested / 2);
        sim_destroy(&s);
    }
}

/* 20% of the chunks lost, GETs not: 25% asked for again is the least. */
static void
test_lossy_chunks(void)
{
    struct sim s;
    struct xfer_rx_stats st;

    sim_init(&s, SIM_SIZE, 1420, NULL, 7);
    s.loss_down = 20;
    CU_ASSERT_TRUE(sim_run(&s, SIM_CHUNKS, 600000));
    sim_report("20% chunk loss", &s);
    sim_check_common(&s);
    xfer_rx_get_stats(s.rx, &st);
    CU_ASSERT(st.rerequested < SIM_CHUNKS * 40 / 100);
    CU_ASSERT(st.duplicates < SIM_CHUNKS * 5 / 100);
    sim_destroy(&s);
}

static void
test_resume(void)
{
    struct sim s;
    struct xfer_rx_stats st;
    const uint8_t *bitmap;
    size_t n_bytes;

    /* Half the object, over a lossy link. */
    sim_init(&s, SIM_SIZE, 1420, NULL, 11);
    s.loss_up = s.loss_down = 20;
    CU_ASSERT_TRUE(sim_run(&s, SIM_CHUNKS / 2, 600000));
    bitmap = xfer_rx_bitmap(s.rx, &n_bytes);
    CU_ASSERT_EQUAL(n_bytes, (SIM_CHUNKS + 7) / 8);
    uint8_t *saved = xmemdup(bitmap, n_bytes);
    xfer_rx_get_stats(s.rx, &st);
    uint64_t had = st.have;
    CU_ASSERT(had >= SIM_CHUNKS / 2 && had < SIM_CHUNKS);
    sim_destroy(&s);

    /* A new engine (and transfer id: what was in flight is gone). */
    sim_init(&s, SIM_SIZE, 1420, NULL, 12);
    s.loss_up = s.loss_down = 20;
    xfer_rx_load_bitmap(s.rx, saved, n_bytes);
    s.held_at_start = saved;
    xfer_rx_get_stats(s.rx, &st);
    CU_ASSERT_EQUAL(st.had_at_start, had);
    CU_ASSERT_EQUAL(st.have, had);
    bitmap = xfer_rx_bitmap(s.rx, &n_bytes);
    CU_ASSERT_EQUAL(memcmp(bitmap, saved, n_bytes), 0);

    CU_ASSERT_TRUE(sim_run(&s, SIM_CHUNKS, 600000));
    sim_report("resumed", &s);
    sim_check_common(&s);
    xfer_rx_get_stats(s.rx, &st);
    CU_ASSERT_EQUAL(s.requested_at_start, 0);
    CU_ASSERT_EQUAL(st.requested, SIM_CHUNKS - had);
    CU_ASSERT_EQUAL(st.had_at_start, had);
    sim_destroy(&s);
}

/* Requests and deliveries by hand. */

static size_t
get_chunks(const struct xfer_range *ranges, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += ranges[i].count;
    }
    return total;
}

static void
test_timeouts_back_off(void)
{
    struct xfer_rx_config cfg = {
        .window = 64, .rto_min = 20, .rto_max = 1000, .rto_initial = 100,
    };
    struct xfer_rx *rx = xfer_rx_create(1000 * 100, 100, &cfg);
    struct xfer_range r[XFER_MAX_RANGES];
    struct xfer_rx_stats st;

    /* Nothing asked yet: something to ask now. */
    CU_ASSERT_EQUAL(xfer_rx_next_wakeup(rx, 0), 0);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 1);
    CU_ASSERT_EQUAL(r[0].first, 0);
    CU_ASSERT_EQUAL(r[0].count, 64);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 0);     /* Window full. */
    CU_ASSERT_EQUAL(xfer_rx_next_wakeup(rx, 0), 100);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 99, r), 0);

    /* Every chunk is lost: each timeout asks for the same chunks again and
     * doubles the rto, up to rto_max. */
    long long t = 100;
    unsigned int expect_rto[] = { 200, 400, 800, 1000, 1000, 1000 };
    for (size_t i = 0; i < N_ELEMS(expect_rto); i++) {
        CU_ASSERT_EQUAL(xfer_rx_next_get(rx, t, r), 1);
        CU_ASSERT_EQUAL(r[0].first, 0);
        CU_ASSERT_EQUAL(r[0].count, 64);
        CU_ASSERT_EQUAL(xfer_rx_next_get(rx, t, r), 0);
        xfer_rx_get_stats(rx, &st);
        CU_ASSERT_EQUAL(st.timeouts, i + 1);
        CU_ASSERT_EQUAL(st.rerequested, 64 * (i + 1));
        CU_ASSERT_EQUAL(st.rerequested_fast, 0);
        CU_ASSERT_EQUAL(st.requested, 64);
        CU_ASSERT_EQUAL(st.outstanding, 64);
        CU_ASSERT_EQUAL(st.rto, expect_rto[i]);
        CU_ASSERT_EQUAL(xfer_rx_next_wakeup(rx, t), t + expect_rto[i]);
        CU_ASSERT_EQUAL(xfer_rx_next_get(rx, t + expect_rto[i] - 1, r), 0);
        t += expect_rto[i];
    }

    /* Progress ends the backoff; a chunk asked for more than once gives no
     * round trip (Karn). */
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 5, 100, t - 1), XFER_RX_NEW);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.rto, 100);
    CU_ASSERT_EQUAL(st.srtt, 0);
    CU_ASSERT_EQUAL(st.outstanding, 63);

    /* The chunks still outstanding were asked for 999 ms ago, far past
     * the rto progress brought back: they time out at once, ahead of the
     * new chunk that takes chunk 5's slot, and the rto doubles again. */
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, t - 1, r), 2);
    CU_ASSERT_EQUAL(r[0].first, 0);
    CU_ASSERT_EQUAL(r[0].count, 5);
    CU_ASSERT_EQUAL(r[1].first, 6);
    CU_ASSERT_EQUAL(r[1].count, 59);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.rto, 200);
    CU_ASSERT_EQUAL(st.outstanding, 64);
    CU_ASSERT_EQUAL(st.requested, 65);
    xfer_rx_destroy(rx);
}

static void
test_rtt_measurement(void)
{
    struct xfer_rx_config cfg = {
        .window = 4, .rto_min = 20, .rto_max = 1000, .rto_initial = 500,
    };
    struct xfer_rx *rx = xfer_rx_create(100 * 10, 10, &cfg);
    struct xfer_range r[XFER_MAX_RANGES];
    struct xfer_rx_stats st;

    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 1000, r), 1);
    CU_ASSERT_EQUAL(get_chunks(r, 1), 4);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.rto, 500);
    CU_ASSERT_EQUAL(st.srtt, 0);

    /* First sample: srtt = 40, rttvar = 20, rto = 40 + 4 * 20. */
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 0, 10, 1040), XFER_RX_NEW);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.srtt, 40);
    CU_ASSERT_EQUAL(st.rto, 120);
    CU_ASSERT_EQUAL(xfer_rx_next_wakeup(rx, 1040), 1040);   /* Room. */
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 1040, r), 1);
    CU_ASSERT_EQUAL(r[0].first, 4);
    CU_ASSERT_EQUAL(xfer_rx_next_wakeup(rx, 1040), 1000 + 120);

    /* Fast round trips bring the rto down to rto_min, no further. */
    long long t = 1041;
    for (uint64_t i = 1; i < 60; i++) {
        CU_ASSERT_EQUAL(xfer_rx_chunk(rx, i, 10, t), XFER_RX_NEW);
        CU_ASSERT(xfer_rx_next_get(rx, t, r) <= 1);
        t += 1;
    }
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.rto, 20);
    CU_ASSERT(st.srtt >= 1 && st.srtt <= 5);
    CU_ASSERT_EQUAL(st.rerequested, 0);
    xfer_rx_destroy(rx);
}

/* A gap of more than XFER_REORDER serials means loss. */
static void
test_fast_rerequest(void)
{
    struct xfer_rx_config cfg = { .window = 10 };
    struct xfer_rx *rx = xfer_rx_create(100 * 10, 10, &cfg);
    struct xfer_range r[XFER_MAX_RANGES];
    struct xfer_rx_stats st;

    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 1);
    CU_ASSERT_EQUAL(r[0].count, 10);

    /* Chunk 3 is 3 requests after chunk 0: not yet a loss. */
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 3, 10, 5), XFER_RX_NEW);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 5, r), 1);
    CU_ASSERT_EQUAL(r[0].first, 10);
    CU_ASSERT_EQUAL(r[0].count, 1);

    /* Chunk 5 is 5 requests after chunk 0 and 4 after chunk 1: both
     * lost.  They are asked for first, then a new chunk fills the slot
     * chunk 5 freed. */
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 5, 10, 6), XFER_RX_NEW);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.outstanding, 7);
    CU_ASSERT_EQUAL(xfer_rx_next_wakeup(rx, 6), 6);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 6, r), 2);
    CU_ASSERT_EQUAL(r[0].first, 0);
    CU_ASSERT_EQUAL(r[0].count, 2);
    CU_ASSERT_EQUAL(r[1].first, 11);
    CU_ASSERT_EQUAL(r[1].count, 1);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.rerequested, 2);
    CU_ASSERT_EQUAL(st.rerequested_fast, 2);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    CU_ASSERT_EQUAL(st.outstanding, 10);

    /* The late answer to the first request of chunk 0 is new; the answer
     * to the second one is a duplicate. */
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 0, 10, 7), XFER_RX_NEW);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 0, 10, 8), XFER_RX_DUPLICATE);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.duplicates, 1);
    xfer_rx_destroy(rx);
}

/* A GET never names more than XFER_MAX_GET_CHUNKS chunks in
 * XFER_MAX_RANGES ranges, and never a chunk already held. */
static void
test_get_limits(void)
{
    struct xfer_rx_config cfg = { .window = 10000 };
    struct xfer_rx *rx = xfer_rx_create(5000 * 10, 10, &cfg);
    struct xfer_range r[XFER_MAX_RANGES];
    struct xfer_rx_stats st;

    /* Contiguous: 256 chunks in one range. */
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 1);
    CU_ASSERT_EQUAL(r[0].first, 0);
    CU_ASSERT_EQUAL(r[0].count, XFER_MAX_GET_CHUNKS);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 1);
    CU_ASSERT_EQUAL(r[0].first, XFER_MAX_GET_CHUNKS);
    CU_ASSERT_EQUAL(r[0].count, XFER_MAX_GET_CHUNKS);
    xfer_rx_destroy(rx);

    /* Every other chunk held: 64 ranges of one chunk. */
    rx = xfer_rx_create(5000 * 10, 10, &cfg);
    uint8_t bitmap[(5000 + 7) / 8];
    memset(bitmap, 0x55, sizeof bitmap);
    xfer_rx_load_bitmap(rx, bitmap, sizeof bitmap);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.had_at_start, 2500);

    uint64_t expect = 1, total = 0;
    size_t n;
    bool ok = true;
    while ((n = xfer_rx_next_get(rx, 0, r)) > 0) {
        ok = ok && n <= XFER_MAX_RANGES && get_chunks(r, n) == n;
        for (size_t i = 0; i < n; i++) {
            ok = ok && r[i].first == expect && r[i].count == 1;
            expect += 2;
        }
        total += n;
        if (total == 64) {
            ok = ok && n == XFER_MAX_RANGES;
        }
    }
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(total, 2500);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.outstanding, 2500);
    CU_ASSERT_EQUAL(st.gets, (2500 + 63) / 64);
    xfer_rx_destroy(rx);
}

static void
test_bad_chunks(void)
{
    struct xfer_rx *rx = xfer_rx_create(2841, 1420, NULL);
    struct xfer_range r[XFER_MAX_RANGES];
    struct xfer_rx_stats st;

    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 1);
    CU_ASSERT_EQUAL(r[0].count, 3);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 3, 1, 1), XFER_RX_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, UINT64_MAX, 1, 1),
                    XFER_RX_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 0, 1419, 1), XFER_RX_BAD_LENGTH);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 0, 1421, 1), XFER_RX_BAD_LENGTH);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 2, 1420, 1), XFER_RX_BAD_LENGTH);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 2, 0, 1), XFER_RX_BAD_LENGTH);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.have, 0);
    CU_ASSERT_EQUAL(st.received, 0);
    CU_ASSERT_EQUAL(st.duplicates, 0);
    CU_ASSERT_EQUAL(st.outstanding, 3);
    CU_ASSERT_FALSE(xfer_rx_has(rx, 0));
    CU_ASSERT_FALSE(xfer_rx_has(rx, 3));

    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 2, 1, 1), XFER_RX_NEW);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 2, 1, 1), XFER_RX_DUPLICATE);
    CU_ASSERT_TRUE(xfer_rx_has(rx, 2));
    xfer_rx_destroy(rx);

    /* An empty object: one empty chunk. */
    rx = xfer_rx_create(0, 1420, NULL);
    CU_ASSERT_FALSE(xfer_rx_is_complete(rx));
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 1);
    CU_ASSERT_EQUAL(r[0].first, 0);
    CU_ASSERT_EQUAL(r[0].count, 1);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 0);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 0, 1, 1), XFER_RX_BAD_LENGTH);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 1, 0, 1), XFER_RX_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 0, 0, 1), XFER_RX_NEW);
    CU_ASSERT_TRUE(xfer_rx_is_complete(rx));
    size_t n_bytes;
    const uint8_t *bitmap = xfer_rx_bitmap(rx, &n_bytes);
    CU_ASSERT_EQUAL(n_bytes, 1);
    CU_ASSERT_EQUAL(bitmap[0], 1);
    CU_ASSERT_EQUAL(xfer_rx_next_wakeup(rx, 1), LLONG_MAX);
    xfer_rx_destroy(rx);
}

/* A chunk nobody asked for, a chunk that could not be stored, and a
 * restart. */
static void
test_lost_unrequested_restart(void)
{
    struct xfer_rx_config cfg = { .window = 8 };
    struct xfer_rx *rx = xfer_rx_create(100 * 10, 10, &cfg);
    struct xfer_range r[XFER_MAX_RANGES];
    struct xfer_rx_stats st;

    CU_ASSERT_EQUAL(xfer_rx_chunk(rx, 50, 10, 0), XFER_RX_NEW);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.unrequested, 1);
    CU_ASSERT_EQUAL(st.received, 1);

    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 0, r), 1);
    CU_ASSERT_EQUAL(r[0].first, 0);
    CU_ASSERT_EQUAL(r[0].count, 8);
    for (uint64_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(xfer_rx_chunk(rx, i, 10, 1), XFER_RX_NEW);
    }

    /* Chunk 2 could not be stored: it is asked for again. */
    xfer_rx_lost(rx, 2);
    CU_ASSERT_FALSE(xfer_rx_has(rx, 2));
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.have, 4);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 1, r), 2);
    CU_ASSERT_EQUAL(r[0].first, 2);
    CU_ASSERT_EQUAL(r[0].count, 1);
    CU_ASSERT_EQUAL(r[1].first, 8);
    CU_ASSERT_EQUAL(r[1].count, 3);

    /* Restart: outstanding requests are forgotten and the missing chunks
     * asked for again from the lowest, skipping held chunk 50. */
    xfer_rx_restart(rx);
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.outstanding, 0);
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 2, r), 2);
    CU_ASSERT_EQUAL(r[0].first, 2);
    CU_ASSERT_EQUAL(r[0].count, 1);
    CU_ASSERT_EQUAL(r[1].first, 4);
    CU_ASSERT_EQUAL(r[1].count, 7);
    for (uint64_t i = 0; i < 100; i++) {
        if (!xfer_rx_has(rx, i)) {
            xfer_rx_chunk(rx, i, 10, 3);
        }
    }
    CU_ASSERT_TRUE(xfer_rx_is_complete(rx));
    CU_ASSERT_EQUAL(xfer_rx_next_get(rx, 3, r), 0);
    CU_ASSERT_EQUAL(xfer_rx_next_wakeup(rx, 3), LLONG_MAX);
    xfer_rx_destroy(rx);
}

/* A 1 GiB object, answered at once: the engine's work per chunk must not
 * grow with the object, or this takes minutes. */
static void
test_large_object(void)
{
    uint64_t size = XFER_DEFAULT_MAX_SIZE;
    struct xfer_rx *rx = xfer_rx_create(size, 1420, NULL);
    struct xfer_range r[XFER_MAX_RANGES];
    struct xfer_rx_stats st;
    uint64_t n_chunks = xfer_n_chunks(size, 1420);
    uint64_t rng = 5;
    long long now = 0;
    bool ok = true;

    /* Hold a random tenth first. */
    for (uint64_t i = 0; i < n_chunks / 10; i++) {
        xfer_rx_set_have(rx, unit_random(&rng) % n_chunks);
    }
    xfer_rx_get_stats(rx, &st);
    uint64_t had = st.had_at_start;
    CU_ASSERT(had > n_chunks / 11);

    while (!xfer_rx_is_complete(rx) && now < 10000000) {
        size_t n;
        while ((n = xfer_rx_next_get(rx, now, r)) > 0) {
            for (size_t i = 0; i < n; i++) {
                for (uint64_t c = r[i].first; c < r[i].first + r[i].count;
                     c++) {
                    ok = ok && xfer_rx_chunk(rx, c,
                                             xfer_chunk_len(size, 1420, c),
                                             now) == XFER_RX_NEW;
                }
            }
        }
        now++;
    }
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_TRUE(xfer_rx_is_complete(rx));
    xfer_rx_get_stats(rx, &st);
    CU_ASSERT_EQUAL(st.requested, n_chunks - had);
    CU_ASSERT_EQUAL(st.rerequested, 0);
    xfer_rx_destroy(rx);
}

static const struct unit_test tests[] = {
    { "codec round trips", test_round_trip },
    { "codec refusals", test_refusals },
    { "FAIL reason truncated at a UTF-8 boundary", test_reason_truncation },
    { "chunk arithmetic", test_chunk_arithmetic },
    { "lossless link: no re-requests, no duplicates", test_lossless },
    { "20% loss both ways", test_lossy_both_ways },
    { "20% chunk loss", test_lossy_chunks },
    { "resume from a bitmap", test_resume },
    { "timeouts back off to rto_max", test_timeouts_back_off },
    { "round-trip measurement", test_rtt_measurement },
    { "fast re-request after a gap", test_fast_rerequest },
    { "GET limits", test_get_limits },
    { "bad chunks refused", test_bad_chunks },
    { "lost, unrequested, restart", test_lost_unrequested_restart },
    { "1 GiB object", test_large_object },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("xfer", tests);
}
