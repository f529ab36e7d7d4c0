/* Tests for lib/jsonrpc over real Unix sockets. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "poll-loop.h"
#include "stream.h"
#include "vlog.h"

/* Unique abstract socket names per test. */
static void
make_names(char *pname, char *aname, size_t size, const char *tag)
{
    snprintf(pname, size, "punix:@chand-test-jsonrpc-%ld-%s",
             (long) getpid(), tag);
    snprintf(aname, size, "unix:@chand-test-jsonrpc-%ld-%s",
             (long) getpid(), tag);
}

/* Makes a connected pair: '*rawp' is the client's bare stream, '*rpcp' the
 * server side wrapped in a jsonrpc. */
static void
make_pair(const char *tag, struct stream **rawp, struct jsonrpc **rpcp)
{
    char pname[128], aname[128];
    struct pstream *p;
    struct stream *s;
    int error;

    make_names(pname, aname, sizeof pname, tag);
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);
    CU_ASSERT_EQUAL_FATAL(stream_open_block(aname, rawp), 0);
    alarm(30);
    while ((error = pstream_accept(p, &s)) == EAGAIN) {
        pstream_wait(p);
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL_FATAL(error, 0);
    pstream_close(p);
    *rpcp = jsonrpc_open(s);
}

/* Makes two connected jsonrpcs. */
static void
make_rpc_pair(const char *tag, struct jsonrpc **ap, struct jsonrpc **bp)
{
    struct stream *raw;

    make_pair(tag, &raw, bp);
    *ap = jsonrpc_open(raw);
}

static void
raw_send(struct stream *s, const char *buf, size_t n)
{
    alarm(60);
    while (n > 0) {
        ssize_t r = stream_send(s, buf, n);
        if (r == -EAGAIN) {
            stream_send_wait(s);
            poll_block();
            continue;
        }
        CU_ASSERT_FATAL(r > 0);
        buf += r;
        n -= r;
    }
    alarm(0);
}

/* Receives on 'rpc', blocking (bounded by an alarm). */
static int
recv_wait(struct jsonrpc *rpc, json_t **msgp)
{
    int error;

    alarm(30);
    error = jsonrpc_recv_block(rpc, msgp);
    alarm(0);
    return error;
}

/* Message construction and classification. */

static void
test_create(void)
{
    json_t *id, *id2;
    json_t *req = jsonrpc_create_request("transact", json_pack("[s]", "db"),
                                         &id);
    json_t *req2 = jsonrpc_create_request("echo", NULL, &id2);

    CU_ASSERT_EQUAL(jsonrpc_msg_type(req), JSONRPC_REQUEST);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(req), "transact");
    CU_ASSERT(json_is_integer(id));
    CU_ASSERT(jsonrpc_id_equal(jsonrpc_msg_id(req), id));
    CU_ASSERT_FALSE(jsonrpc_id_equal(id, id2));     /* Fresh ids. */
    CU_ASSERT_EQUAL(json_array_size(jsonrpc_msg_params(req2)), 0);
    CU_ASSERT(json_is_array(jsonrpc_msg_params(req2)));

    json_t *reply = jsonrpc_create_reply(json_string("ok"), id);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(reply), JSONRPC_REPLY);
    CU_ASSERT_STRING_EQUAL(json_string_value(jsonrpc_msg_result(reply)),
                           "ok");
    CU_ASSERT(json_is_null(jsonrpc_msg_error(reply)));
    CU_ASSERT(jsonrpc_id_equal(jsonrpc_msg_id(reply), id));

    json_t *null_reply = jsonrpc_create_reply(NULL, id);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(null_reply), JSONRPC_REPLY);

    json_t *err = jsonrpc_create_error(json_string("bad"), id2);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(err), JSONRPC_ERROR);
    CU_ASSERT_STRING_EQUAL(json_string_value(jsonrpc_msg_error(err)), "bad");
    json_t *err2 = jsonrpc_create_error(NULL, NULL);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(err2), JSONRPC_ERROR);
    CU_ASSERT(json_is_null(jsonrpc_msg_id(err2)));

    json_t *note = jsonrpc_create_notify("update", json_pack("[i]", 1));
    CU_ASSERT_EQUAL(jsonrpc_msg_type(note), JSONRPC_NOTIFY);
    CU_ASSERT(json_is_null(jsonrpc_msg_id(note)));

    /* Accessors on non-objects. */
    CU_ASSERT_PTR_NULL(jsonrpc_msg_method(NULL));
    CU_ASSERT_PTR_NULL(jsonrpc_msg_id(id));
    CU_ASSERT_FALSE(jsonrpc_id_equal(NULL, id));

    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_type_name(JSONRPC_REQUEST),
                           "request");
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_type_name(JSONRPC_INVALID),
                           "invalid");

    json_decref(req);
    json_decref(req2);
    json_decref(reply);
    json_decref(null_reply);
    json_decref(err);
    json_decref(err2);
    json_decref(note);
    json_decref(id);
    json_decref(id2);
}

static void
test_classify(void)
{
    static const struct {
        const char *json;
        enum jsonrpc_msg_type type;
    } cases[] = {
        { "{\"method\":\"m\",\"params\":[],\"id\":1}", JSONRPC_REQUEST },
        { "{\"method\":\"m\",\"params\":[1,2],\"id\":\"x\"}",
          JSONRPC_REQUEST },
        { "{\"method\":\"m\",\"params\":[],\"id\":null}", JSONRPC_NOTIFY },
        { "{\"method\":\"m\",\"params\":[]}", JSONRPC_NOTIFY },
        { "{\"result\":1,\"error\":null,\"id\":1}", JSONRPC_REPLY },
        { "{\"result\":null,\"error\":null,\"id\":1}", JSONRPC_REPLY },
        { "{\"result\":{},\"id\":[1]}", JSONRPC_REPLY },
        { "{\"result\":null,\"error\":\"e\",\"id\":1}", JSONRPC_ERROR },
        { "{\"error\":{\"x\":1},\"id\":null}", JSONRPC_ERROR },

        { "[]", JSONRPC_INVALID },
        { "{}", JSONRPC_INVALID },
        { "{\"method\":1,\"params\":[],\"id\":1}", JSONRPC_INVALID },
        { "{\"method\":\"m\",\"id\":1}", JSONRPC_INVALID },
        { "{\"method\":\"m\",\"params\":{},\"id\":1}", JSONRPC_INVALID },
        { "{\"method\":\"m\",\"params\":\"x\",\"id\":1}", JSONRPC_INVALID },
        { "{\"method\":\"m\",\"params\":[],\"id\":1,\"result\":1}",
          JSONRPC_INVALID },
        { "{\"method\":\"m\",\"params\":[],\"id\":1,\"error\":null}",
          JSONRPC_INVALID },
        { "{\"method\":\"m\",\"params\":[],\"id\":1,\"extra\":1}",
          JSONRPC_INVALID },
        { "{\"result\":1,\"error\":null}", JSONRPC_INVALID },
        { "{\"result\":1,\"error\":null,\"id\":null}", JSONRPC_INVALID },
        { "{\"error\":null,\"id\":1}", JSONRPC_INVALID },
        { "{\"id\":1}", JSONRPC_INVALID },
        { "{\"result\":1,\"error\":\"e\",\"id\":1}", JSONRPC_INVALID },
        { "{\"result\":1,\"params\":[],\"id\":1}", JSONRPC_INVALID },
        { "{\"result\":1,\"id\":1,\"x\":null}", JSONRPC_INVALID },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        const char *why = "unset";
        enum jsonrpc_msg_type t = jsonrpc_msg_classify(j, &why);
        if (t != cases[i].type) {
            fprintf(stderr, "case %zu (%s): got %s\n", i, cases[i].json,
                    jsonrpc_msg_type_name(t));
        }
        CU_ASSERT_EQUAL(t, cases[i].type);
        CU_ASSERT_EQUAL(jsonrpc_msg_type(j), cases[i].type);
        if (t == JSONRPC_INVALID) {
            CU_ASSERT_PTR_NOT_NULL(why);
        } else {
            CU_ASSERT_PTR_NULL(why);
        }
        json_decref(j);
    }
    CU_ASSERT_EQUAL(jsonrpc_msg_type(NULL), JSONRPC_INVALID);
}

/* Framing. */

static void
test_framing_byte_by_byte(void)
{
    static const char input[] =
        "{\"method\":\"a\",\"params\":[\"}{][\\\"\\\\\"],\"id\":1}"
        "{\"method\":\"b\",\"params\":[{\"x\":[[],{}]}],\"id\":null}"
        " \n\t\r {\"result\":\"\\u00e9}\",\"error\":null,\"id\":\"q\"}\n";
    static const size_t ends[] = { 43, 92, 139 };
    struct stream *raw;
    struct jsonrpc *rpc;
    json_t *msg;

    make_pair("bytes", &raw, &rpc);
    CU_ASSERT_EQUAL(jsonrpc_recv(rpc, &msg), EAGAIN);

    size_t n_msgs = 0;
    for (size_t i = 0; i < strlen(input); i++) {
        raw_send(raw, &input[i], 1);
        int error = jsonrpc_recv(rpc, &msg);
        if (n_msgs < 3 && i + 1 == ends[n_msgs]) {
            /* Unix sockets deliver at once: the message is complete
             * exactly at its last byte. */
            CU_ASSERT_EQUAL_FATAL(error, 0);
            n_msgs++;
            if (n_msgs == 1) {
                CU_ASSERT_EQUAL(jsonrpc_msg_type(msg), JSONRPC_REQUEST);
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(
                        json_array_get(jsonrpc_msg_params(msg), 0)),
                    "}{][\"\\");
            } else if (n_msgs == 2) {
                CU_ASSERT_EQUAL(jsonrpc_msg_type(msg), JSONRPC_NOTIFY);
                CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "b");
            } else {
                CU_ASSERT_EQUAL(jsonrpc_msg_type(msg), JSONRPC_REPLY);
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(jsonrpc_msg_result(msg)), "\xc3\xa9}");
            }
            json_decref(msg);
        } else {
            CU_ASSERT_EQUAL(error, EAGAIN);
            CU_ASSERT_PTR_NULL(msg);
        }
    }
    CU_ASSERT_EQUAL(n_msgs, 3);
    CU_ASSERT(jsonrpc_get_received_bytes(rpc) == strlen(input));

    /* All at once: three messages in a row, then EAGAIN. */
    raw_send(raw, input, strlen(input));
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(recv_wait(rpc, &msg), 0);
        CU_ASSERT_NOT_EQUAL(jsonrpc_msg_type(msg), JSONRPC_INVALID);
        json_decref(msg);
    }
    CU_ASSERT_EQUAL(jsonrpc_recv(rpc, &msg), EAGAIN);

    /* Clean EOF between messages (after whitespace). */
    raw_send(raw, "  \n", 3);
    stream_close(raw);
    CU_ASSERT_EQUAL(recv_wait(rpc, &msg), EOF);
    CU_ASSERT_EQUAL(jsonrpc_get_status(rpc), EOF);
    CU_ASSERT_EQUAL(jsonrpc_recv(rpc, &msg), EOF);  /* Sticky. */
    /* After EOF sends are still tried (the peer may only have closed its
     * side); this peer is gone entirely, so the send fails and a real
     * error replaces EOF. */
    int error = jsonrpc_send(rpc, json_object());
    CU_ASSERT(error == 0 || error == EPIPE);
    jsonrpc_run(rpc);
    CU_ASSERT_EQUAL(jsonrpc_get_status(rpc), EPIPE);
    CU_ASSERT_EQUAL(jsonrpc_get_backlog(rpc), 0);
    CU_ASSERT_EQUAL(jsonrpc_send(rpc, json_object()), EPIPE);
    jsonrpc_close(rpc);
}

/* A client that half-closes after its request still gets the whole
 * answer. */
static void
test_half_close(void)
{
    struct stream *raw;
    struct jsonrpc *rpc;
    json_t *msg;

    make_pair("half", &raw, &rpc);
    static const char request[] = "{\"method\":\"m\",\"params\":[],\"id\":1}";
    raw_send(raw, request, strlen(request));
    shutdown(stream_get_fd(raw), SHUT_WR);
    CU_ASSERT_EQUAL(recv_wait(rpc, &msg), 0);
    json_decref(msg);
    CU_ASSERT_EQUAL(recv_wait(rpc, &msg), EOF);

    /* A reply far larger than a socket buffer. */
    json_t *big = json_string_nocheck("");
    char *text = malloc(1 << 20);
    memset(text, 'x', (1 << 20) - 1);
    text[(1 << 20) - 1] = '\0';
    json_string_set_nocheck(big, text);
    free(text);
    json_t *id = json_integer(1);
    json_t *reply = jsonrpc_create_reply(big, id);
    char *reply_text = json_dumps(reply, JSON_COMPACT);
    size_t want = strlen(reply_text);
    free(reply_text);
    CU_ASSERT_EQUAL(jsonrpc_send(rpc, reply), 0);
    json_decref(id);

    size_t got = 0;
    char buf[65536];
    alarm(60);
    while (got < want) {
        jsonrpc_run(rpc);
        ssize_t n = stream_recv(raw, buf, sizeof buf);
        if (n > 0) {
            got += n;
        } else if (n == 0) {
            break;
        }
    }
    alarm(0);
    CU_ASSERT_EQUAL(got, want);
    CU_ASSERT_EQUAL(jsonrpc_get_backlog(rpc), 0);
    CU_ASSERT_EQUAL(jsonrpc_get_status(rpc), EOF);
    jsonrpc_close(rpc);
    stream_close(raw);
}

static void
test_framing_random_splits(void)
{
    /* Many messages, sent in random-sized pieces; all arrive intact. */
    struct stream *raw;
    struct jsonrpc *rpc;
    uint64_t seed = 99;
    enum { N = 300 };

    make_pair("split", &raw, &rpc);

    char *all = NULL;
    size_t all_len = 0;
    FILE *f = open_memstream(&all, &all_len);
    for (int i = 0; i < N; i++) {
        json_t *m = jsonrpc_create_notify(
            "n", json_pack("[i, s, {s:[i]}]", i, "a\"}{\\", "k", i * 7));
        char *s = json_dumps(m, i % 2 ? JSON_INDENT(2) : JSON_COMPACT);
        fputs(s, f);
        if (i % 3 == 0) {
            fputs("\n", f);
        }
        free(s);
        json_decref(m);
    }
    fclose(f);

    size_t sent = 0;
    int got = 0;
    alarm(60);
    while (got < N) {
        if (sent < all_len) {
            size_t n = 1 + unit_random(&seed) % 97;
            if (n > all_len - sent) {
                n = all_len - sent;
            }
            raw_send(raw, all + sent, n);
            sent += n;
        }
        json_t *msg;
        int error;
        while (!(error = jsonrpc_recv(rpc, &msg))) {
            json_t *params = jsonrpc_msg_params(msg);
            CU_ASSERT_EQUAL(json_integer_value(json_array_get(params, 0)),
                            got);
            CU_ASSERT_STRING_EQUAL(
                json_string_value(json_array_get(params, 1)), "a\"}{\\");
            got++;
            json_decref(msg);
        }
        CU_ASSERT_EQUAL_FATAL(error, EAGAIN);
        if (sent >= all_len && got < N) {
            jsonrpc_recv_wait(rpc);
            poll_block();
        }
    }
    alarm(0);
    CU_ASSERT_EQUAL(got, N);
    free(all);
    stream_close(raw);
    jsonrpc_close(rpc);
}

static void
test_malformed(void)
{
    vlog_set_levels_from_string("jsonrpc:off");
    static const struct {
        const char *input;
        int error;
    } cases[] = {
        { "[1,2]", EPROTO },
        { "1", EPROTO },
        { "\"str\"", EPROTO },
        { "null", EPROTO },
        { "}", EPROTO },
        { "{\"a\":}", EPROTO },
        { "{\"a\" 1}", EPROTO },
        { "{\"a\":1,}", EPROTO },
        { "{\"a\":1]", EPROTO },
        { "{\"a\":[1}", EPROTO },           /* Balanced count, wrong kind. */
        { "{\"a\":1,\"a\":2}", EPROTO },    /* Duplicate key. */
        { "{\"a\":\"\xff\"}", EPROTO },     /* Invalid UTF-8. */
        { "{\"a\":\"\\u0000\"}", EPROTO },  /* NUL in a string. */
        { "{\"a\":\"x\ny\"}", EPROTO },     /* Control character. */
        { "{\"a\":1e999999}", EPROTO },     /* Real overflow. */
        { "{\"a\":tru}", EPROTO },
        { "\x00{}", EPROTO },
        { "{\"a\":1", EPROTO },             /* EOF in the middle. */
        { "{\"a\":\"", EPROTO },
        { "", EOF },
        { " \n ", EOF },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct stream *raw;
        struct jsonrpc *rpc;
        json_t *msg;
        size_t len = strlen(cases[i].input);

        if (i == 16) {
            len = 3;                        /* The embedded NUL case. */
        }
        make_pair("bad", &raw, &rpc);
        /* A good message first: errors do not affect earlier ones. */
        raw_send(raw, "{\"result\":1,\"id\":1}", 19);
        raw_send(raw, cases[i].input, len);
        stream_close(raw);

        CU_ASSERT_EQUAL(recv_wait(rpc, &msg), 0);
        json_decref(msg);
        int error = recv_wait(rpc, &msg);
        if (error != cases[i].error) {
            fprintf(stderr, "case %zu: got %d\n", i, error);
        }
        CU_ASSERT_EQUAL(error, cases[i].error);
        CU_ASSERT_PTR_NULL(msg);
        /* Sticky. */
        CU_ASSERT_EQUAL(jsonrpc_recv(rpc, &msg), cases[i].error);
        CU_ASSERT_EQUAL(jsonrpc_get_status(rpc), cases[i].error);
        jsonrpc_close(rpc);
    }
    vlog_set_levels_from_string("jsonrpc:info");
}

static void
test_oversize(void)
{
    struct stream *raw;
    struct jsonrpc *rpc;
    json_t *msg;
    char buf[1100];

    vlog_set_levels_from_string("jsonrpc:off");
    /* A lowered limit: exactly at the limit passes, one more fails. */
    make_pair("size", &raw, &rpc);
    jsonrpc_set_max_msg(rpc, 1000);
    memset(buf, 'x', sizeof buf);
    memcpy(buf, "{\"a\":\"", 6);
    memcpy(buf + 1000 - 2, "\"}", 2);
    raw_send(raw, buf, 1000);
    CU_ASSERT_EQUAL(recv_wait(rpc, &msg), 0);
    json_decref(msg);
    memcpy(buf + 1000 - 2, "xx\"}", 4);
    raw_send(raw, buf, 1001 + 1);
    CU_ASSERT_EQUAL(recv_wait(rpc, &msg), EMSGSIZE);
    CU_ASSERT_EQUAL(jsonrpc_get_status(rpc), EMSGSIZE);
    /* Leading whitespace does not count. */
    stream_close(raw);
    jsonrpc_close(rpc);

    make_pair("size2", &raw, &rpc);
    jsonrpc_set_max_msg(rpc, 1000);
    memset(buf, ' ', 100);
    raw_send(raw, buf, 100);
    memset(buf, 'x', sizeof buf);
    memcpy(buf, "{\"a\":\"", 6);
    memcpy(buf + 1000 - 2, "\"}", 2);
    raw_send(raw, buf, 1000);
    CU_ASSERT_EQUAL(recv_wait(rpc, &msg), 0);
    json_decref(msg);
    stream_close(raw);
    jsonrpc_close(rpc);

    /* The default limit, JSONRPC_MAX_MSG, with a peer that never closes
     * its string: detected without waiting for the end. */
    make_pair("size3", &raw, &rpc);
    size_t chunk = 1024 * 1024;
    char *big = malloc(chunk);
    memset(big, 'y', chunk);
    memcpy(big, "{\"a\":\"", 6);
    size_t sent = 0;
    int error = EAGAIN;
    alarm(120);
    while (error == EAGAIN) {
        CU_ASSERT_FATAL(sent <= (size_t) JSONRPC_MAX_MSG + 2 * chunk);
        ssize_t n = stream_send(raw, big + (sent ? 6 : 0),
                                chunk - (sent ? 6 : 0));
        if (n > 0) {
            sent += n;
        }
        error = jsonrpc_recv(rpc, &msg);
        if (error == EAGAIN) {
            jsonrpc_recv_wait(rpc);
            stream_send_wait(raw);
            poll_block();
        }
    }
    alarm(0);
    CU_ASSERT_EQUAL(error, EMSGSIZE);
    CU_ASSERT(sent > (size_t) JSONRPC_MAX_MSG);
    free(big);
    stream_close(raw);
    jsonrpc_close(rpc);

    /* Sending: too big is refused without poisoning the connection. */
    struct jsonrpc *a, *b;
    make_rpc_pair("size4", &a, &b);
    char *s = malloc(JSONRPC_MAX_MSG + 1);
    memset(s, 'z', JSONRPC_MAX_MSG);
    s[JSONRPC_MAX_MSG] = '\0';
    CU_ASSERT_EQUAL(jsonrpc_send(a, jsonrpc_create_notify(
                                     "n", json_pack("[s]", s))), EMSGSIZE);
    free(s);
    CU_ASSERT_EQUAL(jsonrpc_get_status(a), 0);
    CU_ASSERT_EQUAL(jsonrpc_get_backlog(a), 0);
    CU_ASSERT_EQUAL(jsonrpc_send(a, jsonrpc_create_notify("ok", NULL)), 0);
    CU_ASSERT_EQUAL(recv_wait(b, &msg), 0);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "ok");
    json_decref(msg);
    /* Non-objects are refused too. */
    CU_ASSERT_EQUAL(jsonrpc_send(a, json_array()), EINVAL);
    CU_ASSERT_EQUAL(jsonrpc_send(a, NULL), EINVAL);
    jsonrpc_close(a);
    jsonrpc_close(b);
    vlog_set_levels_from_string("jsonrpc:info");
}

static void
test_roundtrip_backlog(void)
{
    /* Large messages queue up (backlog) and drain through run/wait. */
    struct jsonrpc *a, *b;
    enum { N = 20 };

    make_rpc_pair("backlog", &a, &b);
    char *s = malloc(256 * 1024 + 1);
    memset(s, 'q', 256 * 1024);
    s[256 * 1024] = '\0';
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(jsonrpc_send(a, jsonrpc_create_notify(
                                         "big", json_pack("[i,s]", i, s))),
                        0);
    }
    /* 5 MiB cannot all fit in the socket buffers. */
    CU_ASSERT(jsonrpc_get_backlog(a) > 0);

    int got = 0;
    alarm(60);
    while (got < N) {
        json_t *msg;
        jsonrpc_run(a);
        int error = jsonrpc_recv(b, &msg);
        if (!error) {
            json_t *params = jsonrpc_msg_params(msg);
            CU_ASSERT_EQUAL(json_integer_value(json_array_get(params, 0)),
                            got);
            CU_ASSERT_EQUAL(strlen(json_string_value(
                                       json_array_get(params, 1))),
                            256 * 1024);
            got++;
            json_decref(msg);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(error, EAGAIN);
        jsonrpc_wait(a);
        jsonrpc_recv_wait(b);
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL(jsonrpc_get_backlog(a), 0);
    CU_ASSERT_STRING_EQUAL(jsonrpc_get_name(a), jsonrpc_get_name(b));
    free(s);

    /* Peer gone: sending eventually fails with a sticky error. */
    jsonrpc_close(b);
    alarm(30);
    int error = 0;
    while (!error) {
        error = jsonrpc_send(a, jsonrpc_create_notify("x", NULL));
    }
    alarm(0);
    CU_ASSERT(error == EPIPE || error == ECONNRESET);
    CU_ASSERT_EQUAL(jsonrpc_get_status(a), error);
    CU_ASSERT_EQUAL(jsonrpc_get_backlog(a), 0);
    jsonrpc_close(a);
    jsonrpc_close(NULL);
}

/* A child process that serves one transaction on 'pname' in an unhelpful
 * order: an echo request first, then noise, then the reply. */
static int
transact_child(const char *pname)
{
    struct pstream *p;
    struct stream *s;
    json_t *msg;

    if (pstream_open(pname, &p)) {
        return 1;
    }
    while (pstream_accept(p, &s) == EAGAIN) {
        pstream_wait(p);
        poll_block();
    }
    struct jsonrpc *rpc = jsonrpc_open(s);
    if (jsonrpc_recv_block(rpc, &msg) || jsonrpc_msg_type(msg)
        != JSONRPC_REQUEST) {
        return 3;
    }
    json_t *id = json_incref(jsonrpc_msg_id(msg));
    json_decref(msg);

    json_t *echo_id;
    jsonrpc_send(rpc, jsonrpc_create_request("echo", json_pack("[s]", "hi"),
                                             &echo_id));
    if (jsonrpc_recv_block(rpc, &msg)
        || jsonrpc_msg_type(msg) != JSONRPC_REPLY
        || !jsonrpc_id_equal(jsonrpc_msg_id(msg), echo_id)
        || strcmp(json_string_value(
                      json_array_get(jsonrpc_msg_result(msg), 0)), "hi")) {
        return 4;
    }
    json_decref(msg);
    json_decref(echo_id);

    json_t *other = json_string("not-yours");
    jsonrpc_send(rpc, jsonrpc_create_reply(json_string("wrong"), other));
    jsonrpc_send(rpc, jsonrpc_create_notify("noise", NULL));
    jsonrpc_send(rpc, jsonrpc_create_reply(json_string("right"), id));
    json_decref(other);
    json_decref(id);
    jsonrpc_send_block(rpc, jsonrpc_create_notify("after", NULL));
    jsonrpc_close(rpc);
    pstream_close(p);
    return 0;
}

static void
test_transact_block(void)
{
    char pname[128], aname[128];

    make_names(pname, aname, sizeof pname, "transact");
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (!pid) {
        vlog_set_levels_from_string("ANY:off");
        alarm(60);
        _exit(transact_child(pname));
    }

    /* Wait until the child listens: retry the connection. */
    struct stream *s = NULL;
    alarm(30);
    while (stream_open_block(aname, &s)) {
        poll_timer_wait(10);
        poll_block();
    }
    alarm(0);

    struct jsonrpc *rpc = jsonrpc_open(s);
    json_t *reply;
    alarm(30);
    int error = jsonrpc_transact_block(
        rpc, jsonrpc_create_request("get", NULL, NULL), &reply);
    alarm(0);
    CU_ASSERT_EQUAL_FATAL(error, 0);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(reply), JSONRPC_REPLY);
    CU_ASSERT_STRING_EQUAL(json_string_value(jsonrpc_msg_result(reply)),
                           "right");
    json_decref(reply);

    /* The messages after the reply are still there. */
    json_t *msg;
    CU_ASSERT_EQUAL(recv_wait(rpc, &msg), 0);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "after");
    json_decref(msg);
    CU_ASSERT_EQUAL(recv_wait(rpc, &msg), EOF);

    /* Transacting a non-request or on a dead connection fails. */
    CU_ASSERT_EQUAL(jsonrpc_transact_block(
                        rpc, jsonrpc_create_notify("x", NULL), &reply),
                    EINVAL);
    CU_ASSERT_PTR_NULL(reply);
    CU_ASSERT_EQUAL(jsonrpc_transact_block(
                        rpc, jsonrpc_create_request("x", NULL, NULL),
                        &reply), EPIPE);
    jsonrpc_close(rpc);

    int status;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
}

/* Sessions. */

/* The server side of the session tests: a listener that can come and go
 * and at most one connection.  Received messages queue in 'inbox'. */
struct server {
    char pname[128];
    struct pstream *p;
    struct jsonrpc *rpc;
    int n_accepted;
    json_t *inbox;
};

static void
server_run(struct server *srv)
{
    struct stream *s;

    if (srv->p && !pstream_accept(srv->p, &s)) {
        jsonrpc_close(srv->rpc);
        srv->rpc = jsonrpc_open(s);
        srv->n_accepted++;
    }
    if (srv->rpc) {
        json_t *msg;
        int error;

        jsonrpc_run(srv->rpc);
        while (!(error = jsonrpc_recv(srv->rpc, &msg))) {
            if (!srv->inbox) {
                srv->inbox = json_array();
            }
            json_array_append_new(srv->inbox, msg);
        }
        if (error != EAGAIN) {
            jsonrpc_close(srv->rpc);
            srv->rpc = NULL;
        }
    }
}

static void
server_wait(struct server *srv)
{
    if (srv->p) {
        pstream_wait(srv->p);
    }
    if (srv->rpc) {
        jsonrpc_wait(srv->rpc);
        jsonrpc_recv_wait(srv->rpc);
    }
}

/* Pops the oldest message 'json_array' (new reference), or NULL. */
static json_t *
pop(json_t *array)
{
    json_t *msg = json_incref(json_array_get(array, 0));
    if (msg) {
        json_array_remove(array, 0);
    }
    return msg;
}

static json_t *
server_pop(struct server *srv)
{
    return pop(srv->inbox);
}

static void
server_destroy(struct server *srv)
{
    jsonrpc_close(srv->rpc);
    srv->rpc = NULL;
    pstream_close(srv->p);
    srv->p = NULL;
    json_decref(srv->inbox);
    srv->inbox = NULL;
}

/* Messages the session received. */
static json_t *session_inbox;

static void
session_run(struct jsonrpc_session *s)
{
    json_t *msg;

    jsonrpc_session_run(s);
    while ((msg = jsonrpc_session_recv(s)) != NULL) {
        if (!session_inbox) {
            session_inbox = json_array();
        }
        json_array_append_new(session_inbox, msg);
    }
}

static json_t *
session_pop(void)
{
    return pop(session_inbox);
}

/* Runs the session and the server until 'COND' holds (bounded by an
 * alarm: a hang is a failure, not a timing expectation). */
#define RUN_UNTIL(S, SRV, COND)                         \
    do {                                                \
        alarm(60);                                      \
        for (;;) {                                      \
            session_run(S);                             \
            server_run(SRV);                            \
            if (COND) {                                 \
                break;                                  \
            }                                           \
            jsonrpc_session_wait(S);                    \
            jsonrpc_session_recv_wait(S);               \
            server_wait(SRV);                           \
            poll_block();                               \
        }                                               \
        alarm(0);                                       \
    } while (0)

static void
test_session_reconnect(void)
{
    char aname[128];
    struct server srv = { .p = NULL };
    json_t *msg = NULL;

    make_names(srv.pname, aname, sizeof aname, "session");
    vlog_set_levels_from_string("jsonrpc:off");

    struct jsonrpc_session *s = jsonrpc_session_open(aname, true);
    jsonrpc_session_set_backoff(s, 20, 40);
    CU_ASSERT_STRING_EQUAL(jsonrpc_session_get_name(s), aname);
    CU_ASSERT_FALSE(jsonrpc_session_is_connected(s));
    CU_ASSERT_TRUE(jsonrpc_session_is_alive(s));
    unsigned int seqno = jsonrpc_session_get_seqno(s);

    /* No listener: attempts fail, the session stays alive. */
    RUN_UNTIL(s, &srv,
              jsonrpc_session_get_last_error(s) == ECONNREFUSED);
    CU_ASSERT_FALSE(jsonrpc_session_is_connected(s));
    CU_ASSERT_TRUE(jsonrpc_session_is_alive(s));
    CU_ASSERT_EQUAL(jsonrpc_session_get_seqno(s), seqno);
    CU_ASSERT_EQUAL(jsonrpc_session_send(s, json_object()), ENOTCONN);
    CU_ASSERT_PTR_NULL(jsonrpc_session_recv(s));

    /* The listener appears: the session connects. */
    CU_ASSERT_EQUAL_FATAL(pstream_open(srv.pname, &srv.p), 0);
    RUN_UNTIL(s, &srv, jsonrpc_session_is_connected(s) && srv.rpc);
    CU_ASSERT_NOT_EQUAL(jsonrpc_session_get_seqno(s), seqno);
    seqno = jsonrpc_session_get_seqno(s);
    CU_ASSERT_EQUAL(jsonrpc_session_get_last_error(s), 0);

    /* Requests both ways; echo requests are answered by the session. */
    json_t *echo_id;
    jsonrpc_send(srv.rpc, jsonrpc_create_request(
                     "echo", json_pack("[i]", 5), &echo_id));
    jsonrpc_send(srv.rpc, jsonrpc_create_notify("hello", NULL));
    RUN_UNTIL(s, &srv, (msg = session_pop()) != NULL);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "hello");
    json_decref(msg);
    RUN_UNTIL(s, &srv, (msg = server_pop(&srv)) != NULL);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(msg), JSONRPC_REPLY);
    CU_ASSERT(jsonrpc_id_equal(jsonrpc_msg_id(msg), echo_id));
    CU_ASSERT_EQUAL(json_integer_value(
                        json_array_get(jsonrpc_msg_result(msg), 0)), 5);
    json_decref(msg);
    json_decref(echo_id);

    CU_ASSERT_EQUAL(jsonrpc_session_send(
                        s, jsonrpc_create_request("q", NULL, NULL)), 0);
    CU_ASSERT(jsonrpc_session_get_backlog(s) < 100);
    RUN_UNTIL(s, &srv, (msg = server_pop(&srv)) != NULL);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "q");
    jsonrpc_send(srv.rpc, jsonrpc_create_reply(json_true(),
                                               jsonrpc_msg_id(msg)));
    json_decref(msg);
    RUN_UNTIL(s, &srv, (msg = session_pop()) != NULL);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(msg), JSONRPC_REPLY);
    json_decref(msg);

    /* The server goes away entirely: the session notices and retries. */
    jsonrpc_close(srv.rpc);
    srv.rpc = NULL;
    pstream_close(srv.p);
    srv.p = NULL;
    RUN_UNTIL(s, &srv, !jsonrpc_session_is_connected(s));
    CU_ASSERT_NOT_EQUAL(jsonrpc_session_get_seqno(s), seqno);
    seqno = jsonrpc_session_get_seqno(s);
    CU_ASSERT_EQUAL(jsonrpc_session_get_last_error(s), EOF);
    RUN_UNTIL(s, &srv,
              jsonrpc_session_get_last_error(s) == ECONNREFUSED);

    /* It comes back. */
    CU_ASSERT_EQUAL_FATAL(pstream_open(srv.pname, &srv.p), 0);
    RUN_UNTIL(s, &srv, jsonrpc_session_is_connected(s) && srv.rpc);
    CU_ASSERT_NOT_EQUAL(jsonrpc_session_get_seqno(s), seqno);
    seqno = jsonrpc_session_get_seqno(s);

    /* Forced reconnect: the server sees a second connection. */
    int n_accepted = srv.n_accepted;
    jsonrpc_session_force_reconnect(s);
    RUN_UNTIL(s, &srv, srv.n_accepted > n_accepted
              && jsonrpc_session_is_connected(s));
    CU_ASSERT_EQUAL(jsonrpc_session_get_seqno(s), seqno + 2);
    seqno = jsonrpc_session_get_seqno(s);

    jsonrpc_session_close(s);
    server_destroy(&srv);
    json_decref(session_inbox);
    session_inbox = NULL;
    vlog_set_levels_from_string("jsonrpc:info");
}

static void
test_session_probe(void)
{
    char aname[128];
    struct server srv = { .p = NULL };
    json_t *msg = NULL;

    make_names(srv.pname, aname, sizeof aname, "probe");
    vlog_set_levels_from_string("jsonrpc:off");
    CU_ASSERT_EQUAL_FATAL(pstream_open(srv.pname, &srv.p), 0);

    struct jsonrpc_session *s = jsonrpc_session_open(aname, true);
    jsonrpc_session_set_probe_interval(s, 1000);
    RUN_UNTIL(s, &srv, jsonrpc_session_is_connected(s) && srv.rpc);
    unsigned int seqno = jsonrpc_session_get_seqno(s);

    /* Idle: the session sends an echo request. */
    RUN_UNTIL(s, &srv, (msg = server_pop(&srv)) != NULL);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(msg), JSONRPC_REQUEST);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "echo");
    /* Answer it: the reply is consumed by the session. */
    jsonrpc_send(srv.rpc, jsonrpc_create_reply(
                     json_incref(jsonrpc_msg_params(msg)),
                     jsonrpc_msg_id(msg)));
    json_decref(msg);
    jsonrpc_send(srv.rpc, jsonrpc_create_notify("marker", NULL));
    RUN_UNTIL(s, &srv, (msg = session_pop()) != NULL);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "marker");
    json_decref(msg);
    CU_ASSERT_EQUAL(jsonrpc_session_get_seqno(s), seqno);

    /* Another probe; this time no answer: the session disconnects. */
    RUN_UNTIL(s, &srv, (msg = server_pop(&srv)) != NULL);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "echo");
    json_decref(msg);
    RUN_UNTIL(s, &srv, !jsonrpc_session_is_connected(s));
    CU_ASSERT_NOT_EQUAL(jsonrpc_session_get_seqno(s), seqno);
    CU_ASSERT_EQUAL(jsonrpc_session_get_last_error(s), ETIMEDOUT);

    jsonrpc_session_close(s);
    server_destroy(&srv);
    json_decref(session_inbox);
    session_inbox = NULL;
    vlog_set_levels_from_string("jsonrpc:info");
}

static void
test_session_garbage(void)
{
    char aname[128];
    struct server srv = { .p = NULL };

    make_names(srv.pname, aname, sizeof aname, "garbage");
    vlog_set_levels_from_string("jsonrpc:off");
    CU_ASSERT_EQUAL_FATAL(pstream_open(srv.pname, &srv.p), 0);

    struct jsonrpc_session *s = jsonrpc_session_open(aname, true);
    jsonrpc_session_set_backoff(s, 10, 20);
    RUN_UNTIL(s, &srv, jsonrpc_session_is_connected(s) && srv.rpc);
    unsigned int seqno = jsonrpc_session_get_seqno(s);

    /* The server's side is a plain jsonrpc; to send bytes that are not
     * JSON, accept the next connection as a raw stream instead. */
    jsonrpc_close(srv.rpc);
    srv.rpc = NULL;
    pstream_close(srv.p);
    srv.p = NULL;
    RUN_UNTIL(s, &srv, !jsonrpc_session_is_connected(s));

    struct pstream *p;
    CU_ASSERT_EQUAL_FATAL(pstream_open(srv.pname, &p), 0);
    struct stream *raw = NULL;
    alarm(60);
    while (!jsonrpc_session_is_connected(s) || !raw) {
        jsonrpc_session_run(s);
        if (!raw && !pstream_accept(p, &raw)) {
            continue;
        }
        jsonrpc_session_wait(s);
        pstream_wait(p);
        poll_block();
    }
    alarm(0);
    CU_ASSERT(jsonrpc_session_get_seqno(s) != seqno);
    seqno = jsonrpc_session_get_seqno(s);
    raw_send(raw, "[\"not an object\"]", 17);

    /* Receiving the garbage drops the connection with EPROTO. */
    alarm(60);
    while (jsonrpc_session_is_connected(s)) {
        jsonrpc_session_run(s);
        CU_ASSERT_PTR_NULL(jsonrpc_session_recv(s));
        jsonrpc_session_wait(s);
        jsonrpc_session_recv_wait(s);
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL(jsonrpc_session_get_last_error(s), EPROTO);
    CU_ASSERT_NOT_EQUAL(jsonrpc_session_get_seqno(s), seqno);
    CU_ASSERT_TRUE(jsonrpc_session_is_alive(s));

    stream_close(raw);
    pstream_close(p);
    jsonrpc_session_close(s);
    vlog_set_levels_from_string("jsonrpc:info");
}

static void
test_session_no_retry(void)
{
    char pname[128], aname[128];
    struct server srv = { .p = NULL };

    vlog_set_levels_from_string("jsonrpc:off");

    /* Bad name: fails, then gives up. */
    struct jsonrpc_session *s = jsonrpc_session_open("sctp:1.2.3.4:5", false);
    RUN_UNTIL(s, &srv, !jsonrpc_session_is_alive(s));
    CU_ASSERT_EQUAL(jsonrpc_session_get_last_error(s), EAFNOSUPPORT);
    jsonrpc_session_close(s);

    /* Connects once; after the peer leaves it does not come back. */
    make_names(pname, aname, sizeof pname, "noretry");
    snprintf(srv.pname, sizeof srv.pname, "%s", pname);
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &srv.p), 0);
    s = jsonrpc_session_open(aname, false);
    RUN_UNTIL(s, &srv, jsonrpc_session_is_connected(s) && srv.rpc);
    jsonrpc_close(srv.rpc);
    srv.rpc = NULL;
    RUN_UNTIL(s, &srv, !jsonrpc_session_is_alive(s));
    CU_ASSERT_FALSE(jsonrpc_session_is_connected(s));
    jsonrpc_session_close(s);

    /* open_unreliably wraps an existing connection. */
    struct stream *c;
    CU_ASSERT_EQUAL_FATAL(stream_open_block(aname, &c), 0);
    alarm(60);
    while (!srv.rpc) {
        server_run(&srv);
        if (!srv.rpc) {
            server_wait(&srv);
            poll_block();
        }
    }
    alarm(0);
    s = jsonrpc_session_open_unreliably(jsonrpc_open(c));
    CU_ASSERT_TRUE(jsonrpc_session_is_connected(s));
    CU_ASSERT_TRUE(jsonrpc_session_is_alive(s));
    jsonrpc_send(srv.rpc, jsonrpc_create_notify("n", NULL));
    json_t *msg;
    RUN_UNTIL(s, &srv, (msg = session_pop()) != NULL);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(msg), "n");
    json_decref(msg);
    jsonrpc_close(srv.rpc);
    srv.rpc = NULL;
    RUN_UNTIL(s, &srv, !jsonrpc_session_is_alive(s));
    jsonrpc_session_close(s);
    jsonrpc_session_close(NULL);

    server_destroy(&srv);
    json_decref(session_inbox);
    session_inbox = NULL;
    vlog_set_levels_from_string("jsonrpc:info");
}

static const struct unit_test tests[] = {
    { "create", test_create },
    { "classify", test_classify },
    { "framing byte by byte", test_framing_byte_by_byte },
    { "half-closed client gets its answer", test_half_close },
    { "framing random splits", test_framing_random_splits },
    { "malformed", test_malformed },
    { "oversize", test_oversize },
    { "roundtrip and backlog", test_roundtrip_backlog },
    { "transact block", test_transact_block },
    { "session reconnect", test_session_reconnect },
    { "session probe", test_session_probe },
    { "session garbage", test_session_garbage },
    { "session no retry", test_session_no_retry },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("jsonrpc", tests);
}
