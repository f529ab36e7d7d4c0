/* CUnit suite for lib/qga-proto: the qemu-guest-agent stream parser (one
 * request, several at once, a request split at every byte, 0xFF resets,
 * stray tokens, oversized and too deeply nested requests, its counters),
 * qga_request_parse() with QMP's error texts and the "id" it echoes, and
 * the responses' exact bytes. */

#include <config.h>
#include "unit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qga-proto.h"
#include "util.h"

#define BIG 65536               /* max_msg when the limit is not tested. */
#define MAX_EVENTS 64

struct event {
    enum qga_event type;
    char *text;                 /* Request bytes or error text (owned). */
    size_t len;
};

struct events {
    struct event ev[MAX_EVENTS];
    size_t n;
};

static void
events_clear(struct events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->ev[i].text);
    }
    e->n = 0;
}

/* Takes every event 'p' has into 'e' (the texts copied). */
static void
drain(struct qga_parser *p, struct events *e)
{
    const char *text;
    size_t len;
    enum qga_event type;

    while ((type = qga_parser_next(p, &text, &len)) != QGA_NONE) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT_FATAL(e->n < MAX_EVENTS);
        if (type == QGA_ERROR) {
            len = strlen(text);
        }
        struct event *ev = &e->ev[e->n++];
        ev->type = type;
        ev->text = xmalloc(len + 1);
        memcpy(ev->text, text, len);
        ev->text[len] = '\0';
        ev->len = len;
    }
}

static void
feed(struct qga_parser *p, struct events *e, const char *data, size_t n)
{
    qga_parser_feed(p, data, n);
    drain(p, e);
}

static void
feed_str(struct qga_parser *p, struct events *e, const char *s)
{
    feed(p, e, s, strlen(s));
}

/* Asserts that event 'i' of 'e' is 'type' with text 'text'. */
static void
assert_event(const struct events *e, size_t i, enum qga_event type,
             const char *text)
{
    CU_ASSERT_FATAL(i < e->n);
    CU_ASSERT_EQUAL(e->ev[i].type, type);
    CU_ASSERT_EQUAL(e->ev[i].len, strlen(text));
    if (strcmp(e->ev[i].text, text)) {
        fprintf(stderr, "event %zu: got '%s', want '%s'\n",
                i, e->ev[i].text, text);
        CU_FAIL("event text");
    }
}

static void
assert_request(const struct events *e, size_t i, const char *text)
{
    assert_event(e, i, QGA_REQUEST, text);
}

static void
assert_error(const struct events *e, size_t i, const char *text)
{
    assert_event(e, i, QGA_ERROR, text);
}

static bool
events_equal(const struct events *a, const struct events *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->ev[i].type != b->ev[i].type || a->ev[i].len != b->ev[i].len
            || memcmp(a->ev[i].text, b->ev[i].text, a->ev[i].len)) {
            return false;
        }
    }
    return true;
}

static char *
stray(const char *token)
{
    return xasprintf("JSON parse error, stray '%s' outside a request object",
                     token);
}

static char *
reset_text(size_t dropped)
{
    return xasprintf("JSON parse error, stray '\\xff' (the parser is reset; "
                     "%zu bytes of a partial request before it are dropped)",
                     dropped);
}

static void
assert_stray(const struct events *e, size_t i, const char *token)
{
    char *s = stray(token);
    assert_error(e, i, s);
    free(s);
}

static void
assert_reset(const struct events *e, size_t i, size_t dropped)
{
    char *s = reset_text(dropped);
    assert_error(e, i, s);
    free(s);
}

static void
assert_stats(const struct qga_parser *p, uint64_t requests, uint64_t resets,
             uint64_t bad_json, uint64_t oversized)
{
    struct qga_parser_stats s;

    qga_parser_get_stats(p, &s);
    CU_ASSERT_EQUAL(s.requests, requests);
    CU_ASSERT_EQUAL(s.resets, resets);
    CU_ASSERT_EQUAL(s.bad_json, bad_json);
    CU_ASSERT_EQUAL(s.oversized, oversized);
}

/* ----------------------------------------------------------------------
 * The stream parser.
 */

#define PING "{\"execute\": \"guest-ping\"}"

static void
test_one_request(void)
{
    struct qga_parser *p = qga_parser_create(BIG);
    struct events e = { .n = 0 };

    /* Empty feeds, before anything was fed and after. */
    feed(p, &e, "", 0);
    feed(p, &e, NULL, 0);
    CU_ASSERT_EQUAL(e.n, 0);
    feed_str(p, &e, PING);
    feed(p, &e, NULL, 0);
    CU_ASSERT_EQUAL(e.n, 1);
    assert_request(&e, 0, PING);
    CU_ASSERT_EQUAL(qga_parser_pending(p), 0);

    /* Whitespace around it is not part of it; an array is a request too
     * (qga_request_parse() answers it). */
    events_clear(&e);
    feed_str(p, &e, " \t\r\n" PING "\n\n[1, 2]\n");
    CU_ASSERT_EQUAL(e.n, 2);
    assert_request(&e, 0, PING);
    assert_request(&e, 1, "[1, 2]");
    assert_stats(p, 3, 0, 0, 0);

    /* Nothing until the closing bracket. */
    events_clear(&e);
    feed_str(p, &e, "{\"execute\": \"guest-info\"");
    CU_ASSERT_EQUAL(e.n, 0);
    CU_ASSERT_EQUAL(qga_parser_pending(p), strlen("{\"execute\": "
                                                  "\"guest-info\""));
    feed_str(p, &e, "}");
    CU_ASSERT_EQUAL(e.n, 1);
    assert_request(&e, 0, "{\"execute\": \"guest-info\"}");
    CU_ASSERT_EQUAL(qga_parser_pending(p), 0);

    events_clear(&e);
    qga_parser_destroy(p);
}

static void
test_several_requests(void)
{
    static const char *const streams[] = {
        "{\"execute\":\"a\"}{\"execute\":\"b\"}{\"execute\":\"c\"}",
        "{\"execute\":\"a\"} {\"execute\":\"b\"}\n{\"execute\":\"c\"}\n",
        ("\n\n{\"execute\":\"a\"}\r\n\t{\"execute\":\"b\"}  "
         "{\"execute\":\"c\"}   "),
    };

    for (size_t i = 0; i < ARRAY_SIZE(streams); i++) {
        struct qga_parser *p = qga_parser_create(BIG);
        struct events e = { .n = 0 };

        feed_str(p, &e, streams[i]);
        CU_ASSERT_EQUAL(e.n, 3);
        assert_request(&e, 0, "{\"execute\":\"a\"}");
        assert_request(&e, 1, "{\"execute\":\"b\"}");
        assert_request(&e, 2, "{\"execute\":\"c\"}");
        assert_stats(p, 3, 0, 0, 0);
        CU_ASSERT_EQUAL(qga_parser_pending(p), 0);
        events_clear(&e);
        qga_parser_destroy(p);
    }
}

/* A stream with brackets, quotes and backslashes inside strings, stray
 * tokens and 0xFF, and its events. */
#define R1 "{\"execute\": \"guest-exec\", \"arguments\": " \
    "{\"path\": \"a\\\"}b\\\\\", \"arg\": [\"{[\", \"]}\", " \
    "{\"x\": \"\\\\\\\"]\"}], \"n\": [[1], {}]}, \"id\": \"q\\\"{\"}"
#define R2 "{\"execute\":\"b\"}"
#define R3 "[\"}\",\"]\"]"
#define R4 "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":5}}"
static const char split_stream[] =
    " " R1 R2 "\n nonsense " R3 "\"a\\\"b}\"123 " R4
    "{\"execute\": \"dropped\xff" R2 "]\t}" "\xff" "\xff" "\n" R4 "\n";

static void
assert_split_events(const struct events *e)
{
    CU_ASSERT_EQUAL(e->n, 13);
    assert_request(e, 0, R1);
    assert_request(e, 1, R2);
    assert_stray(e, 2, "nonsense");
    assert_request(e, 3, R3);
    assert_stray(e, 4, "\"a\\\"b}\"");
    assert_stray(e, 5, "123");
    assert_request(e, 6, R4);
    assert_reset(e, 7, strlen("{\"execute\": \"dropped"));
    assert_request(e, 8, R2);
    assert_stray(e, 9, "]");
    /* "}" ends at 0xFF: the reset drops it without a word of its own. */
    assert_reset(e, 10, 1);
    assert_reset(e, 11, 0);
    assert_request(e, 12, R4);
}

static void
test_split_stream_whole(void)
{
    struct qga_parser *p = qga_parser_create(BIG);
    struct events e = { .n = 0 };

    feed(p, &e, split_stream, sizeof split_stream - 1);
    assert_split_events(&e);
    assert_stats(p, 6, 3, 4, 0);
    CU_ASSERT_EQUAL(qga_parser_pending(p), 0);
    events_clear(&e);
    qga_parser_destroy(p);
}

/* Returns the events of the whole 'split_stream' fed in one piece. */
static void
whole_events(struct events *e)
{
    struct qga_parser *p = qga_parser_create(BIG);
    feed(p, e, split_stream, sizeof split_stream - 1);
    qga_parser_destroy(p);
}

static void
test_split_every_byte(void)
{
    const size_t n = sizeof split_stream - 1;
    struct events want = { .n = 0 };
    whole_events(&want);

    /* One byte at a time. */
    struct qga_parser *p = qga_parser_create(BIG);
    struct events e = { .n = 0 };
    for (size_t i = 0; i < n; i++) {
        feed(p, &e, split_stream + i, 1);
    }
    CU_ASSERT_TRUE(events_equal(&e, &want));
    assert_stats(p, 6, 3, 4, 0);
    events_clear(&e);
    qga_parser_destroy(p);

    /* In two at every offset. */
    for (size_t k = 0; k <= n; k++) {
        p = qga_parser_create(BIG);
        feed(p, &e, split_stream, k);
        feed(p, &e, split_stream + k, n - k);
        if (!events_equal(&e, &want)) {
            fprintf(stderr, "split at %zu differs\n", k);
            CU_FAIL("split in two");
        }
        events_clear(&e);
        qga_parser_destroy(p);
    }
    events_clear(&want);
}

static void
test_split_random(void)
{
    const size_t n = sizeof split_stream - 1;
    struct events want = { .n = 0 };
    uint64_t seed = 0x71a;
    whole_events(&want);

    for (int round = 0; round < 500; round++) {
        struct qga_parser *p = qga_parser_create(BIG);
        struct events e = { .n = 0 };
        uint64_t round_seed = seed;

        for (size_t off = 0; off < n;) {
            size_t piece = 1 + unit_random(&seed) % 24;

            piece = MIN(piece, n - off);
            feed(p, &e, split_stream + off, piece);
            off += piece;
        }
        if (!events_equal(&e, &want)) {
            fprintf(stderr, "random split with seed %#"PRIx64" differs\n",
                    round_seed);
            CU_FAIL("random split");
        }
        events_clear(&e);
        qga_parser_destroy(p);
    }
    events_clear(&want);
}

static void
test_reset_alone(void)
{
    struct qga_parser *p = qga_parser_create(BIG);
    struct events e = { .n = 0 };

    feed_str(p, &e, "\xff");
    CU_ASSERT_EQUAL(e.n, 1);
    assert_reset(&e, 0, 0);
    assert_stats(p, 0, 1, 0, 0);

    events_clear(&e);
    feed_str(p, &e, "\xff\xff" PING);
    CU_ASSERT_EQUAL(e.n, 3);
    assert_reset(&e, 0, 0);
    assert_reset(&e, 1, 0);
    assert_request(&e, 2, PING);
    assert_stats(p, 1, 3, 0, 0);
    events_clear(&e);
    qga_parser_destroy(p);
}

/* Feeds 'partial', 0xFF and a ping to 'p', and asserts that 0xFF drops
 * 'partial' and the ping is whole. */
static void
assert_reset_drops(struct qga_parser *p, const char *partial)
{
    struct events e = { .n = 0 };
    char *s = xasprintf("%s\xff" PING, partial);

    feed_str(p, &e, s);
    CU_ASSERT_EQUAL(e.n, 2);
    assert_reset(&e, 0, strlen(partial));
    assert_request(&e, 1, PING);
    events_clear(&e);
    free(s);
}

static void
test_reset_partial(void)
{
    static const char partial[] = "{\"execute\": \"guest-info\", \"id\": [";
    struct qga_parser *p = qga_parser_create(BIG);
    struct events e = { .n = 0 };

    /* The partial request is held, then dropped by 0xFF: the request after
     * it is whole, not glued to it. */
    feed_str(p, &e, partial);
    CU_ASSERT_EQUAL(e.n, 0);
    CU_ASSERT_EQUAL(qga_parser_pending(p), strlen(partial));
    feed_str(p, &e, "\xff");
    CU_ASSERT_EQUAL(qga_parser_pending(p), 0);
    feed_str(p, &e, PING);
    CU_ASSERT_EQUAL(e.n, 2);
    assert_reset(&e, 0, strlen(partial));
    assert_request(&e, 1, PING);
    assert_stats(p, 1, 1, 0, 0);

    /* 0xFF inside a string of a request (never valid JSON text), inside
     * an escape, inside a stray string (the token goes without an error
     * of its own). */
    assert_reset_drops(p, "{\"execute\": \"guest-");
    assert_reset_drops(p, "{\"execute\": \"\\");
    assert_reset_drops(p, "\"abc");
    assert_stats(p, 4, 4, 0, 0);
    events_clear(&e);
    qga_parser_destroy(p);
}

/* Asserts that 'e' is the error of stray 'token' and a ping. */
static void
assert_stray_ping(const struct events *e, const char *token)
{
    CU_ASSERT_EQUAL(e->n, 2);
    assert_stray(e, 0, token);
    assert_request(e, 1, PING);
}

static void
test_stray_tokens(void)
{
    struct qga_parser *p = qga_parser_create(BIG);
    struct events e = { .n = 0 };

    feed_str(p, &e, "nonsense" PING);
    assert_stray_ping(&e, "nonsense");

    /* A token ends at whitespace, '{', '[' or '"': until then it waits. */
    events_clear(&e);
    feed_str(p, &e, "123");
    CU_ASSERT_EQUAL(e.n, 0);
    feed_str(p, &e, "45\n");
    CU_ASSERT_EQUAL(e.n, 1);
    assert_stray(&e, 0, "12345");

    events_clear(&e);
    feed_str(p, &e, "\"str\"" PING);
    assert_stray_ping(&e, "\"str\"");

    /* A string with an escaped quote, over three feeds. */
    events_clear(&e);
    feed_str(p, &e, "\"a\\");
    feed_str(p, &e, "\"");
    CU_ASSERT_EQUAL(e.n, 0);
    feed_str(p, &e, "b\"" PING);
    assert_stray_ping(&e, "\"a\\\"b\"");

    /* Closing brackets alone; then "[" of a request ends "true". */
    events_clear(&e);
    feed_str(p, &e, "}" PING "] ]]true[\"x\"]");
    CU_ASSERT_EQUAL(e.n, 5);
    assert_stray(&e, 0, "}");
    assert_request(&e, 1, PING);
    assert_stray(&e, 2, "]");
    assert_stray(&e, 3, "]]true");
    assert_request(&e, 4, "[\"x\"]");

    /* A long token is shown cut, control bytes as '?'. */
    events_clear(&e);
    feed_str(p, &e, "abcdefghijklmnopqrstuvwxyz0123456789\x01 "
             "a\x01z ");
    CU_ASSERT_EQUAL(e.n, 2);
    assert_stray(&e, 0, "abcdefghijklmnopqrstuvwxyz012345...");
    assert_stray(&e, 1, "a?z");
    CU_ASSERT_EQUAL(qga_parser_pending(p), 0);
    assert_stats(p, 5, 0, 9, 0);
    events_clear(&e);
    qga_parser_destroy(p);
}

/* Returns 'head', 'n_a' bytes 'a', 'n_b' bytes 'b' and 'tail' as one
 * null-terminated string (malloc()ed). */
static char *
request_of(const char *head, char a, size_t n_a, char b, size_t n_b,
           const char *tail)
{
    size_t head_len = strlen(head);
    size_t tail_len = strlen(tail);
    char *s = xmalloc(head_len + n_a + n_b + tail_len + 1);

    memcpy(s, head, head_len);
    memset(s + head_len, a, n_a);
    memset(s + head_len + n_a, b, n_b);
    memcpy(s + head_len + n_a + n_b, tail, tail_len + 1);
    return s;
}

/* Returns a request of exactly 'size' bytes (at least 40), with an
 * argument padded with 'a's (malloc()ed). */
static char *
padded_request(size_t size)
{
    static const char head[] = ("{\"execute\": \"x\", \"arguments\": "
                                "{\"p\": \"");
    size_t pad = size - (sizeof head - 1) - 3;
    char *s = request_of(head, 'a', pad, 'a', 0, "\"}}");

    CU_ASSERT_EQUAL(strlen(s), size);
    return s;
}

static void
test_oversized(void)
{
    struct qga_parser *p = qga_parser_create(100);
    struct events e = { .n = 0 };
    char *exact = padded_request(100);
    char *over = padded_request(101);
    char *big = padded_request(1000);

    feed_str(p, &e, exact);
    feed_str(p, &e, over);
    feed_str(p, &e, big);
    feed_str(p, &e, PING);
    CU_ASSERT_EQUAL(e.n, 4);
    assert_request(&e, 0, exact);
    assert_error(&e, 1,
                 "request of 101 bytes is over the limit of 100 bytes");
    assert_error(&e, 2,
                 "request of 1000 bytes is over the limit of 100 bytes");
    assert_request(&e, 3, PING);
    assert_stats(p, 2, 0, 0, 2);

    /* Byte by byte, nothing past the limit is kept. */
    events_clear(&e);
    for (size_t i = 0; i < 1000; i++) {
        feed(p, &e, big + i, 1);
        CU_ASSERT(qga_parser_pending(p) <= 100);
    }
    CU_ASSERT_EQUAL(e.n, 1);
    assert_error(&e, 0,
                 "request of 1000 bytes is over the limit of 100 bytes");
    events_clear(&e);
    free(exact);
    free(over);
    free(big);
    qga_parser_destroy(p);
}

static void
test_oversized_stream(void)
{
    enum { PIECE = 4096, TOTAL = 10 * 1024 * 1024 };
    struct qga_parser *p = qga_parser_create(100);
    struct events e = { .n = 0 };
    char piece[PIECE];
    size_t fed = 0;
    size_t most = 0;

    /* 10 MB of one request, with brackets and quotes in it: the parser
     * holds no more than the limit and a piece. */
    feed_str(p, &e, "{\"execute\": \"x\", \"arguments\": {\"p\": [");
    for (size_t i = 0; i < PIECE; i += 8) {
        memcpy(piece + i, "\"{\\\"]\",[", 8);
    }
    while (fed < TOTAL) {
        feed(p, &e, piece, PIECE);
        fed += PIECE;
        most = MAX(most, qga_parser_pending(p));
    }
    CU_ASSERT(most <= 100 + PIECE);
    CU_ASSERT_EQUAL(e.n, 0);

    /* Close the PIECE / 8 * (TOTAL / PIECE) arrays, then the rest. */
    for (size_t i = 0; i < PIECE; i++) {
        piece[i] = ']';
    }
    for (size_t closed = 0; closed < TOTAL / 8; closed += PIECE) {
        feed(p, &e, piece, PIECE);
        most = MAX(most, qga_parser_pending(p));
    }
    CU_ASSERT(most <= 100 + PIECE);
    feed_str(p, &e, "]}}" PING);
    CU_ASSERT_EQUAL(e.n, 2);
    CU_ASSERT_EQUAL(e.ev[0].type, QGA_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.ev[0].text, "over the limit of 100 "
                                  "bytes"));
    assert_request(&e, 1, PING);
    assert_stats(p, 1, 0, 0, 1);
    events_clear(&e);
    qga_parser_destroy(p);
}

/* Returns {"execute": "x", "arguments": {"a": [[...]]}} nested 'depth'
 * deep in all (malloc()ed). */
static char *
nested_request(int depth)
{
    return request_of("{\"execute\": \"x\", \"arguments\": {\"a\": ",
                      '[', depth - 2, ']', depth - 2, "}}");
}

static void
test_depth(void)
{
    struct qga_parser *p = qga_parser_create(BIG);
    struct events e = { .n = 0 };
    char *ok = nested_request(QGA_MAX_DEPTH);
    char *deep = nested_request(QGA_MAX_DEPTH + 1);
    char *deeper = nested_request(3 * QGA_MAX_DEPTH);

    feed_str(p, &e, ok);
    feed_str(p, &e, deep);
    feed_str(p, &e, PING);
    feed_str(p, &e, deeper);
    feed_str(p, &e, PING);
    CU_ASSERT_EQUAL(e.n, 5);
    assert_request(&e, 0, ok);
    assert_error(&e, 1, "JSON nesting of the request is deeper than 1024");
    assert_request(&e, 2, PING);
    assert_error(&e, 3, "JSON nesting of the request is deeper than 1024");
    assert_request(&e, 4, PING);
    assert_stats(p, 3, 0, 0, 2);

    /* The deepest accepted request is also one qga_request_parse()
     * takes. */
    json_t *req, *id;
    char *error = qga_request_parse(ok, strlen(ok), &req, &id);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_PTR_NOT_NULL(req);
    free(error);
    json_decref(req);

    events_clear(&e);
    free(ok);
    free(deep);
    free(deeper);
    qga_parser_destroy(p);
}

/* ----------------------------------------------------------------------
 * qga_request_parse().
 */

/* Parses 's' and asserts that it fails with 'want' (or, if 'prefix', an
 * error that begins with 'want'), and that its "id" is 'want_id' (JSON
 * text) or NULL. */
static void
assert_bad_request(const char *s, const char *want, bool prefix,
                   const char *want_id)
{
    json_t *req = (json_t *) 1, *id = (json_t *) 1;
    char *error = qga_request_parse(s, strlen(s), &req, &id);

    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    if (prefix ? strncmp(error, want, strlen(want)) : strcmp(error, want)) {
        fprintf(stderr, "%s: got '%s', want '%s'\n", s, error, want);
        CU_FAIL("request error text");
    }
    CU_ASSERT_PTR_NULL(req);
    if (want_id) {
        json_t *w = json_loads(want_id, JSON_DECODE_ANY, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(id);
        CU_ASSERT_TRUE(json_equal(id, w));
        json_decref(w);
    } else {
        CU_ASSERT_PTR_NULL(id);
    }
    json_decref(id);
    free(error);
}

static void
test_request_errors(void)
{
    assert_bad_request("[1]", "QMP input must be a JSON object", false,
                       NULL);
    assert_bad_request("{\"id\": 5}", "QMP input lacks member 'execute'",
                       false, "5");
    assert_bad_request("{\"arguments\": {}}",
                       "QMP input lacks member 'execute'", false, NULL);
    assert_bad_request("{\"execute\": 1, \"id\": \"a\"}",
                       "QMP input member 'execute' must be a string",
                       false, "\"a\"");
    assert_bad_request("{\"execute\": null}",
                       "QMP input member 'execute' must be a string",
                       false, NULL);
    assert_bad_request("{\"execute\": \"x\", \"arguments\": [], "
                       "\"id\": [1, {\"b\": 2}]}",
                       "QMP input member 'arguments' must be an object",
                       false, "[1, {\"b\": 2}]");
    assert_bad_request("{\"execute\": \"x\", \"arguments\": \"s\"}",
                       "QMP input member 'arguments' must be an object",
                       false, NULL);
    assert_bad_request("{\"execute\": \"x\", \"foo\": 1, \"id\": null}",
                       "QMP input member 'foo' is unexpected", false,
                       "null");
    assert_bad_request("{\"exec-oob\": \"x\", \"id\": 2.5}",
                       "QMP input member 'exec-oob' is unexpected", false,
                       "2.5");

    /* Unreadable JSON: no "id". */
    assert_bad_request("{\"execute\": , \"id\": 1}", "JSON parse error, ",
                       true, NULL);
    assert_bad_request("{\"execute\": \"x\"", "JSON parse error, ", true,
                       NULL);
    assert_bad_request("{\"execute\": \"x\"} {}", "JSON parse error, ",
                       true, NULL);
    assert_bad_request("{\"execute\": \"\xc3\x28\"}", "JSON parse error, ",
                       true, NULL);
    assert_bad_request("{\"execute\": \"a\", \"execute\": \"b\", \"id\": 1}",
                       "JSON parse error, duplicate object key", true,
                       NULL);
    assert_bad_request("{\"execute\": \"a\", \"id\": 1, \"id\": 2}",
                       "JSON parse error, duplicate object key", true,
                       NULL);
}

static void
test_request_ok(void)
{
    static const char *const ids[] = {
        "\"s\"", "0", "-7", "1.5", "true", "false", "null", "[]",
        "[1, \"two\"]", "{\"a\": {\"b\": [null]}}",
    };

    json_t *empty = json_object();

    for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
        char *s = xasprintf("{\"execute\": \"guest-ping\", \"arguments\": "
                            "{\"k\": 1}, \"id\": %s}", ids[i]);
        json_t *req, *id;
        char *error = qga_request_parse(s, strlen(s), &req, &id);

        CU_ASSERT_PTR_NULL(error);
        CU_ASSERT_PTR_NOT_NULL_FATAL(req);
        CU_ASSERT_PTR_NOT_NULL_FATAL(id);
        CU_ASSERT_PTR_EQUAL(id, json_object_get(req, "id"));
        json_t *w = json_loads(ids[i], JSON_DECODE_ANY, NULL);
        CU_ASSERT_TRUE(json_equal(id, w));
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                                     req, "execute")),
                               "guest-ping");
        CU_ASSERT_TRUE(json_is_object(json_object_get(req, "arguments")));

        /* Echoed as it came, in an error too. */
        size_t len;
        char *resp = qga_response_return(empty, id, false, &len);
        char *want = xasprintf("{\"return\": {}, \"id\": %s}\n", ids[i]);
        CU_ASSERT_STRING_EQUAL(resp, want);
        free(resp);
        free(want);

        json_decref(w);
        json_decref(req);
        free(error);
        free(s);
    }
    json_decref(empty);

    /* Neither "arguments" nor "id"; the text need not be null-terminated
     * ('len' bytes are read). */
    static const char s[] = "{\"execute\": \"guest-info\"}garbage";
    json_t *req, *id = (json_t *) 1;
    char *error = qga_request_parse(s, strlen("{\"execute\": "
                                              "\"guest-info\"}"), &req, &id);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_PTR_NOT_NULL(req);
    CU_ASSERT_PTR_NULL(id);
    CU_ASSERT_PTR_NULL(json_object_get(req, "arguments"));
    json_decref(req);
}

/* ----------------------------------------------------------------------
 * Responses.
 */

static void
assert_bytes(char *got, size_t len, const char *want, size_t want_len)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(len, want_len);
    if (len != want_len || memcmp(got, want, len)) {
        fprintf(stderr, "got '%s', want '%s'\n", got, want);
        CU_FAIL("response bytes");
    }
    CU_ASSERT_EQUAL(got[len], '\0');
    free(got);
}

/* CALL stores the length in 'len' (read after the call). */
#define ASSERT_BYTES(CALL, WANT)                        \
    do {                                                \
        char *got_ = CALL;                              \
        assert_bytes(got_, len, WANT, sizeof WANT - 1); \
    } while (0)

static void
test_response_return(void)
{
    json_t *empty = json_object();
    json_t *seven = json_integer(7);
    json_t *x = json_string("x");
    json_t *obj = json_pack("{s:i, s:[i, s], s:{}}", "b", 1, "a", 2,
                            "q\"\n\\\xc3\xa9", "c");
    size_t len;

    ASSERT_BYTES(qga_response_return(empty, NULL, false, &len),
                 "{\"return\": {}}\n");
    ASSERT_BYTES(qga_response_return(seven, x, false, &len),
                 "{\"return\": 7, \"id\": \"x\"}\n");
    ASSERT_BYTES(qga_response_return(seven, NULL, true, &len),
                 "\xff{\"return\": 7}\n");
    ASSERT_BYTES(qga_response_return(empty, seven, true, &len),
                 "\xff{\"return\": {}, \"id\": 7}\n");
    /* Members in the order they were set, strings escaped as JSON,
     * UTF-8 as it is. */
    ASSERT_BYTES(qga_response_return(obj, NULL, false, &len),
                 "{\"return\": {\"b\": 1, \"a\": "
                 "[2, \"q\\\"\\n\\\\\xc3\xa9\"], \"c\": {}}}\n");
    /* The arguments are borrowed. */
    CU_ASSERT_EQUAL(empty->refcount, 1);
    CU_ASSERT_EQUAL(seven->refcount, 1);
    CU_ASSERT_EQUAL(x->refcount, 1);
    json_decref(empty);
    json_decref(seven);
    json_decref(x);
    json_decref(obj);
}

static void
test_response_error(void)
{
    json_t *id = json_pack("[i, s]", 1, "z");
    size_t len;

    ASSERT_BYTES(qga_response_error(QGA_E_GENERIC, "boom", NULL, &len),
                 "{\"error\": {\"class\": \"GenericError\", "
                 "\"desc\": \"boom\"}}\n");
    ASSERT_BYTES(qga_response_error(QGA_E_NOT_FOUND,
                                    "The command guest-x has not been "
                                    "found", id, &len),
                 "{\"error\": {\"class\": \"CommandNotFound\", "
                 "\"desc\": \"The command guest-x has not been found\"}, "
                 "\"id\": [1, \"z\"]}\n");
    ASSERT_BYTES(qga_response_error(QGA_E_GENERIC, "a \"b\"\tc\xc3\xa9",
                                    NULL, &len),
                 "{\"error\": {\"class\": \"GenericError\", "
                 "\"desc\": \"a \\\"b\\\"\\tc\xc3\xa9\"}}\n");
    /* Invalid UTF-8 (a cut sequence, a lone continuation byte, 0xFF) is
     * replaced: the line stays valid JSON, and never holds 0xFF. */
    static const char *const bad[] = { "ab\xc3", "\x80", "x\xff" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        ASSERT_BYTES(qga_response_error(QGA_E_GENERIC, bad[i], NULL, &len),
                     "{\"error\": {\"class\": \"GenericError\", "
                     "\"desc\": \"(the error's text is not valid "
                     "UTF-8)\"}}\n");
    }
    CU_ASSERT_EQUAL(id->refcount, 1);
    json_decref(id);
}

/* Each error the parser hands out makes a valid response line. */
static void
test_parser_errors_render(void)
{
    struct qga_parser *p = qga_parser_create(10);
    struct events e = { .n = 0 };

    feed_str(p, &e, "\xff \"\x01\x7f\xfe\" " PING);
    for (size_t i = 0; i < e.n; i++) {
        size_t len;
        char *line = qga_response_error(QGA_E_GENERIC, e.ev[i].text, NULL,
                                        &len);
        json_t *j = json_loadb(line, len, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL(j);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_object_get(j, "error"), "desc")),
                               e.ev[i].text);
        json_decref(j);
        free(line);
    }
    CU_ASSERT_EQUAL(e.n, 3);
    events_clear(&e);
    qga_parser_destroy(p);
}

int
unit_register(void)
{
    static const struct unit_test parser[] = {
        { "one request", test_one_request },
        { "several requests", test_several_requests },
        { "a stream in one piece", test_split_stream_whole },
        { "split at every byte", test_split_every_byte },
        { "split at random", test_split_random },
        { "0xFF alone", test_reset_alone },
        { "0xFF in a partial request", test_reset_partial },
        { "stray tokens", test_stray_tokens },
        { "oversized request", test_oversized },
        { "10 MB request", test_oversized_stream },
        { "nesting depth", test_depth },
        { "errors render", test_parser_errors_render },
    };
    static const struct unit_test request[] = {
        { "QMP errors and id", test_request_errors },
        { "valid requests and any id", test_request_ok },
    };
    static const struct unit_test response[] = {
        { "return", test_response_return },
        { "error", test_response_error },
    };

    return (UNIT_ADD_SUITE("qga parser", parser)
            || UNIT_ADD_SUITE("qga request", request)
            || UNIT_ADD_SUITE("qga response", response));
}
