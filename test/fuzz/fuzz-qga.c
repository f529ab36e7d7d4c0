/*
 * fuzz-qga: the qemu-guest-agent wire codec of chand-qga (lib/qga-proto):
 * a qga_parser fed a client's byte stream whole and, separately, in pieces
 * of fuzzed sizes; qga_request_parse() of every request; the responses
 * rendered for every request and error.
 *
 * Input layout:
 *
 *     byte 0    max_msg = 32 + 16 * byte (32..4112)
 *     byte 1    piece sizes: 0 feeds the stream one byte at a time,
 *               otherwise it seeds the sizes (1..byte) of the pieces
 *     then      the client's byte stream
 *
 * Invariants checked besides memory safety:
 *   - the events (type and text) do not depend on how the stream is split;
 *   - a request is at most max_msg bytes of the input, begins with '{' or
 *     '[', ends with the matching bracket and holds no 0xFF;
 *   - the counters: requests = QGA_REQUEST events, resets = 0xFF bytes,
 *     resets + bad_json + oversized = QGA_ERROR events;
 *   - after the events are drained, the parser holds at most max_msg
 *     bytes;
 *   - qga_request_parse() either gives an object whose "execute" is a
 *     string, whose "arguments" is absent or an object and whose "id" is
 *     its own, and nothing else; or an error text and no request;
 *   - every response is one line of valid JSON (0xFF before it only when
 *     asked), echoes the request's "id" when there is one, and an error's
 *     text comes back unchanged (the parser's texts are always valid
 *     UTF-8; one of qga_request_parse() that is not is replaced by the
 *     note that says so);
 *   - whatever came before, 0xFF then a ping gives exactly a reset error
 *     and that ping: the stream is back in step.
 */
#include <config.h>
#include "fuzz.h"

#include "qga-proto.h"

#define PING "{\"execute\": \"guest-ping\"}"

struct event {
    enum qga_event type;
    char *text;
    size_t len;
};

struct events {
    struct event *ev;
    size_t n, allocated;
};

static void
events_add(struct events *e, enum qga_event type, const char *text,
           size_t len)
{
    if (e->n == e->allocated) {
        e->allocated = 2 * e->allocated + 8;
        e->ev = realloc(e->ev, e->allocated * sizeof *e->ev);
        FUZZ_CHECK(e->ev);
    }
    struct event *ev = &e->ev[e->n++];
    ev->type = type;
    ev->text = malloc(len + 1);
    FUZZ_CHECK(ev->text);
    memcpy(ev->text, text, len);
    ev->text[len] = '\0';
    ev->len = len;
}

static void
events_destroy(struct events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->ev[i].text);
    }
    free(e->ev);
}

/* Takes every event of 'p' into 'e', then checks what 'p' holds. */
static void
drain(struct qga_parser *p, size_t max_msg, struct events *e)
{
    const char *text;
    size_t len;
    enum qga_event type;

    while ((type = qga_parser_next(p, &text, &len)) != QGA_NONE) {
        FUZZ_CHECK(type == QGA_REQUEST || type == QGA_ERROR);
        FUZZ_CHECK(text);
        if (type == QGA_ERROR) {
            len = strlen(text);
            FUZZ_CHECK(len > 0);
        }
        events_add(e, type, text, len);
    }
    FUZZ_CHECK(qga_parser_pending(p) <= max_msg);
}

/* Checks the request text 'r' ('len' bytes) of 'max_msg'-limited input. */
static void
check_request_text(const char *r, size_t len, size_t max_msg)
{
    FUZZ_CHECK(len >= 2 && len <= max_msg);
    FUZZ_CHECK(r[0] == '{' || r[0] == '[');
    FUZZ_CHECK(r[len - 1] == '}' || r[len - 1] == ']');
    FUZZ_CHECK(!memchr(r, QGA_SENTINEL, len));
}

/* Checks that 'line' ('len' bytes, owned) is one line of JSON, 0xFF first
 * if 'sentinel', with 'id' (or no "id" if NULL), and returns it parsed. */
static json_t *
check_line(char *line, size_t len, bool sentinel, const json_t *id)
{
    FUZZ_CHECK(line && len >= 3);
    FUZZ_CHECK(((unsigned char) line[0] == QGA_SENTINEL) == sentinel);
    FUZZ_CHECK(line[len - 1] == '\n' && line[len] == '\0');
    FUZZ_CHECK(memchr(line, '\n', len) == line + len - 1);
    FUZZ_CHECK(!memchr(line + sentinel, QGA_SENTINEL, len - sentinel));

    json_t *j = json_loadb(line + sentinel, len - sentinel, 0, NULL);
    FUZZ_CHECK(json_is_object(j));
    json_t *jid = json_object_get(j, "id");
    FUZZ_CHECK(id ? jid && json_equal(jid, id) : !jid);
    FUZZ_CHECK(json_object_size(j) == 1 + (id != NULL));
    free(line);
    return j;
}

/* Checks the error response with text 'desc' and 'id'.  'desc' must come
 * back unchanged if 'utf8' (it is known to be valid UTF-8); otherwise it
 * may be replaced by the note that says it is not. */
static void
check_error_response(const char *desc, const json_t *id, bool utf8)
{
    size_t len;
    char *line = qga_response_error(QGA_E_GENERIC, desc, id, &len);
    json_t *j = check_line(line, len, false, id);
    json_t *err = json_object_get(j, "error");

    FUZZ_CHECK(json_is_object(err) && json_object_size(err) == 2);
    FUZZ_CHECK(!strcmp(json_string_value(json_object_get(err, "class")),
                       QGA_E_GENERIC));

    const char *got = json_string_value(json_object_get(err, "desc"));
    json_t *valid = json_string(desc);
    FUZZ_CHECK(valid || !utf8);
    FUZZ_CHECK(!strcmp(got, valid ? desc
                       : "(the error's text is not valid UTF-8)"));
    json_decref(valid);
    json_decref(j);
}

static void
check_return_response(const json_t *value, const json_t *id, bool sentinel)
{
    size_t len;
    char *line = qga_response_return(value, id, sentinel, &len);
    json_t *j = check_line(line, len, sentinel, id);

    FUZZ_CHECK(json_equal(json_object_get(j, "return"), value));
    json_decref(j);
}

/* qga_request_parse() of request text 'r' ('len' bytes). */
static void
check_request(const char *r, size_t len)
{
    json_t *req, *id;
    char *error = qga_request_parse(r, len, &req, &id);

    if (error) {
        FUZZ_CHECK(!req && *error);
        check_error_response(error, id, false);
        json_decref(id);
        free(error);
        return;
    }

    FUZZ_CHECK(json_is_object(req));
    FUZZ_CHECK(json_is_string(json_object_get(req, "execute")));
    json_t *args = json_object_get(req, "arguments");
    FUZZ_CHECK(!args || json_is_object(args));
    FUZZ_CHECK(id == json_object_get(req, "id"));
    FUZZ_CHECK(json_object_size(req) == 1 + (args != NULL) + (id != NULL));

    json_t *empty = json_object();
    check_return_response(args ? args : empty, id, len & 1);
    json_decref(empty);
    json_decref(req);
}

/* Feeds 'data' to a new parser in pieces whose sizes 'split' picks (see
 * the layout), adding its events to 'e' and checking its counters. */
static void
run_stream(const uint8_t *data, size_t size, size_t max_msg, uint8_t split,
           bool whole, struct events *e)
{
    struct qga_parser *p = qga_parser_create(max_msg);
    uint32_t x = split * 2654435761u + 1;

    for (size_t off = 0; off < size;) {
        size_t piece = size - off;
        if (!whole) {
            x = x * 1103515245u + 12345;
            piece = split ? 1 + (x >> 16) % split : 1;
            piece = piece < size - off ? piece : size - off;
        }
        qga_parser_feed(p, data + off, piece);
        off += piece;
        drain(p, max_msg, e);
    }

    struct qga_parser_stats s;
    size_t requests = 0, resets = 0;
    qga_parser_get_stats(p, &s);
    for (size_t i = 0; i < e->n; i++) {
        requests += e->ev[i].type == QGA_REQUEST;
    }
    for (size_t i = 0; i < size; i++) {
        resets += data[i] == QGA_SENTINEL;
    }
    FUZZ_CHECK(s.requests == requests);
    FUZZ_CHECK(s.resets == resets);
    FUZZ_CHECK(s.resets + s.bad_json + s.oversized == e->n - requests);

    /* Back in step. */
    size_t n = e->n;
    qga_parser_feed(p, "\xff" PING, 1 + strlen(PING));
    drain(p, max_msg, e);
    FUZZ_CHECK(e->n == n + 2);
    FUZZ_CHECK(e->ev[n].type == QGA_ERROR);
    FUZZ_CHECK(!strncmp(e->ev[n].text, "JSON parse error, stray '\\xff'",
                        strlen("JSON parse error, stray '\\xff'")));
    FUZZ_CHECK(e->ev[n + 1].type == QGA_REQUEST);
    FUZZ_CHECK(e->ev[n + 1].len == strlen(PING));
    FUZZ_CHECK(!memcmp(e->ev[n + 1].text, PING, strlen(PING)));
    FUZZ_CHECK(qga_parser_pending(p) == 0);
    qga_parser_destroy(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    size_t max_msg = 32 + 16 * (size_t) fuzz_u8(&in);
    uint8_t split = fuzz_u8(&in);
    struct events whole = { NULL, 0, 0 };
    struct events pieces = { NULL, 0, 0 };

    run_stream(in.data, in.size, max_msg, split, true, &whole);
    run_stream(in.data, in.size, max_msg, split, false, &pieces);

    FUZZ_CHECK(whole.n == pieces.n);
    for (size_t i = 0; i < whole.n; i++) {
        const struct event *a = &whole.ev[i];
        const struct event *b = &pieces.ev[i];
        FUZZ_CHECK(a->type == b->type && a->len == b->len);
        FUZZ_CHECK(!memcmp(a->text, b->text, a->len));
        if (a->type == QGA_REQUEST) {
            check_request_text(a->text, a->len, max_msg);
            check_request(a->text, a->len);
        } else {
            check_error_response(a->text, NULL, true);
        }
    }
    events_destroy(&whole);
    events_destroy(&pieces);
    return 0;
}
