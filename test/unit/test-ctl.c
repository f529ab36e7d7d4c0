/* Tests for lib/ctl: an in-process server, driven by the poll loop, with
 * clients that are forked children (ctl_client_transact), in-process raw
 * streams (hostile input), or in-process non-blocking calls (ctl_call). */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "jsonrpc.h"
#include "poll-loop.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(test_ctl);

static char abstract_path[64];

static const char *
server_path(void)
{
    snprintf(abstract_path, sizeof abstract_path, "@chand-test-ctl-%ld",
             (long) getpid());
    return abstract_path;
}

/* Result of one client call made by a child process. */
struct call {
    int error;                  /* ctl_client_transact() return value. */
    char *result;
    char *errmsg;
};

static void
call_free(struct call *c)
{
    free(c->result);
    free(c->errmsg);
}

/* Writes 's' (may be NULL) as a length-prefixed string. */
static void
put_string(int fd, const char *s)
{
    int len = s ? (int) strlen(s) : -1;
    if (write(fd, &len, sizeof len) != sizeof len
        || (len > 0 && write(fd, s, len) != len)) {
        _exit(99);
    }
}

/* Parses what the child wrote. */
static void
parse_call(const char *buf, size_t n, struct call *c)
{
    memset(c, 0, sizeof *c);
    c->error = -1;
    if (n < sizeof(int)) {
        return;
    }
    memcpy(&c->error, buf, sizeof(int));
    size_t ofs = sizeof(int);
    char **fields[2] = { &c->result, &c->errmsg };
    for (int i = 0; i < 2; i++) {
        int len;
        if (n - ofs < sizeof len) {
            c->error = -2;
            return;
        }
        memcpy(&len, buf + ofs, sizeof len);
        ofs += sizeof len;
        if (len >= 0) {
            if (n - ofs < (size_t) len) {
                c->error = -3;
                return;
            }
            *fields[i] = strndup(buf + ofs, len);
            ofs += len;
        }
    }
}

/* Hook called on every loop iteration while a call is in progress. */
typedef void step_func(void *aux);

/* Runs "command argv..." against 'server' from a forked child, serving the
 * server in this process until the child is done.  'step', if nonnull, is
 * called each iteration. */
static void
call_ex(struct ctl_server *server, const char *path, const char *command,
        int argc, char *argv[], struct call *c, step_func *step, void *aux)
{
    int fds[2];

    CU_ASSERT_FATAL(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (!pid) {
        char *result, *errmsg;

        vlog_set_levels_from_string("ANY:off");

        close(fds[0]);
        alarm(60);
        int error = ctl_client_transact(path, command, argc, argv, &result,
                                        &errmsg);
        if (write(fds[1], &error, sizeof error) != sizeof error) {
            _exit(98);
        }
        put_string(fds[1], result);
        put_string(fds[1], errmsg);
        _exit(0);
    }
    close(fds[1]);
    /* The parent serves while waiting: never block in read(). */
    CU_ASSERT_FATAL(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);

    char *buf = NULL;
    size_t n = 0, alloc = 0;
    alarm(60);
    for (;;) {
        if (server) {
            ctl_server_run(server);
        }
        if (step) {
            step(aux);
        }
        if (alloc - n < 4096) {
            alloc = alloc ? alloc * 2 : 65536;
            buf = xrealloc(buf, alloc);
        }
        ssize_t r = read(fds[0], buf + n, alloc - n);
        if (r == 0) {
            break;
        } else if (r > 0) {
            n += r;
            continue;
        }
        CU_ASSERT_FATAL(errno == EAGAIN);
        if (server) {
            ctl_server_wait(server);
        }
        poll_fd_wait(fds[0], POLLIN);
        poll_block();
    }
    alarm(0);
    close(fds[0]);

    int status;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    parse_call(buf, n, c);
    free(buf);
}

static void
call(struct ctl_server *server, const char *command, int argc,
     char *argv[], struct call *c)
{
    call_ex(server, abstract_path, command, argc, argv, c, NULL, NULL);
}

/* Commands under test. */

static int echo_aux;

static void
cmd_echo(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    char buf[1024] = "";

    CU_ASSERT_PTR_EQUAL(aux, &echo_aux);
    CU_ASSERT(!strncmp(argv[0], "test/", 5));
    for (int i = 1; i < argc; i++) {
        if (i > 1) {
            strncat(buf, " ", sizeof buf - strlen(buf) - 1);
        }
        strncat(buf, argv[i], sizeof buf - strlen(buf) - 1);
    }
    ctl_command_reply(conn, buf);
}

static void
cmd_fail(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    ctl_command_reply_error(conn, "it failed");
}

static void
cmd_binary(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    ctl_command_reply(conn, "caf\xc3\xa9 \xff\xfe end");
}

/* Deferred replies. */
static struct ctl_conn *deferred_conn;
static int deferred_calls;

static void
cmd_defer(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    CU_ASSERT_PTR_NULL(deferred_conn);
    deferred_conn = conn;
    deferred_calls++;
}

/* Replies to the deferred call after a few loop iterations. */
static void
step_reply_deferred(void *aux)
{
    int *countdown = aux;

    if (deferred_conn) {
        if (--*countdown <= 0) {
            ctl_command_reply(deferred_conn, "later");
            deferred_conn = NULL;
        } else {
            /* Nothing else would wake the loop meanwhile. */
            poll_immediate_wake();
        }
    }
}

static void
register_test_commands(void)
{
    ctl_command_register("test/echo", "[ARG...]", 0, INT_MAX, cmd_echo,
                         &echo_aux);
    ctl_command_register("test/fail", "", 0, 0, cmd_fail, NULL);
    ctl_command_register("test/two", "A B", 2, 2, cmd_echo, &echo_aux);
    ctl_command_register("test/range", "A [B [C]]", 1, 3, cmd_echo,
                         &echo_aux);
    ctl_command_register("test/binary", "", 0, 0, cmd_binary, NULL);
    ctl_command_register("test/defer", "", 0, 0, cmd_defer, NULL);
}

/* ctl_server_create(), returning 0 or the errno it failed with. */
static int
create_server(const char *path, struct ctl_server **serverp)
{
    errno = 0;
    *serverp = ctl_server_create(path);
    return *serverp ? 0 : errno;
}

static struct ctl_server *
make_server(void)
{
    struct ctl_server *server;

    register_test_commands();
    CU_ASSERT_EQUAL_FATAL(create_server(server_path(), &server), 0);
    return server;
}

static void
test_create_errors(void)
{
    struct ctl_server *server = (struct ctl_server *) 1;

    vlog_set_levels_from_string("ctl:off");
    CU_ASSERT_EQUAL(create_server(NULL, &server), EINVAL);
    CU_ASSERT_PTR_NULL(server);
    CU_ASSERT_EQUAL(create_server("", &server), EINVAL);
    CU_ASSERT_EQUAL(create_server("/nonexistent-dir/a/b.ctl", &server),
                    ENOENT);

    /* The same abstract name twice. */
    struct ctl_server *s1, *s2;
    CU_ASSERT_EQUAL_FATAL(create_server(server_path(), &s1), 0);
    CU_ASSERT_EQUAL(create_server(server_path(), &s2), EADDRINUSE);
    ctl_server_destroy(s1);
    ctl_server_destroy(NULL);
    vlog_set_levels_from_string("ctl:info");

    /* Client errors. */
    char *result = (char *) 1, *error = (char *) 1;
    CU_ASSERT_EQUAL(ctl_client_transact(server_path(), "version", 0, NULL,
                                        &result, &error), ECONNREFUSED);
    CU_ASSERT_PTR_NULL(result);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_EQUAL(ctl_client_transact("/nonexistent/x.ctl", "version", 0,
                                        NULL, &result, &error), ENOENT);
    CU_ASSERT_EQUAL(ctl_client_transact(NULL, "version", 0, NULL,
                                        &result, &error), EINVAL);
    CU_ASSERT_EQUAL(ctl_client_transact(server_path(), NULL, 0, NULL,
                                        &result, &error), EINVAL);
    char *bad_args[] = { "\xff" };
    CU_ASSERT_EQUAL(ctl_client_transact(server_path(), "x", 1, bad_args,
                                        &result, &error), EINVAL);
}

static void
test_commands(void)
{
    struct ctl_server *server = make_server();
    struct call c;

    char expected_name[128];
    snprintf(expected_name, sizeof expected_name, "punix:%s", abstract_path);
    CU_ASSERT_STRING_EQUAL(ctl_server_get_name(server), expected_name);

    char *args[] = { "a", "b c", "" };
    call(server, "test/echo", 3, args, &c);
    CU_ASSERT_EQUAL(c.error, 0);
    CU_ASSERT_STRING_EQUAL(c.result, "a b c ");
    CU_ASSERT_PTR_NULL(c.errmsg);
    call_free(&c);

    call(server, "test/echo", 0, NULL, &c);
    CU_ASSERT_EQUAL(c.error, 0);
    CU_ASSERT_STRING_EQUAL(c.result, "");
    call_free(&c);

    call(server, "test/fail", 0, NULL, &c);
    CU_ASSERT_EQUAL(c.error, 0);
    CU_ASSERT_PTR_NULL(c.result);
    CU_ASSERT_STRING_EQUAL(c.errmsg, "it failed");
    call_free(&c);

    /* Invalid UTF-8 in a reply is replaced, not dropped. */
    call(server, "test/binary", 0, NULL, &c);
    CU_ASSERT_EQUAL(c.error, 0);
    CU_ASSERT_PTR_NOT_NULL(c.result);
    if (c.result) {
        CU_ASSERT(strncmp(c.result, "caf", 3) == 0);
        CU_ASSERT(strstr(c.result, " end") != NULL);
    }
    call_free(&c);

    /* Built-ins. */
    call(server, "list-commands", 0, NULL, &c);
    CU_ASSERT_EQUAL(c.error, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.result);
    CU_ASSERT(strstr(c.result, "The available commands are:") != NULL);
    CU_ASSERT(strstr(c.result, "vlog/set") != NULL);
    CU_ASSERT(strstr(c.result, "test/range") != NULL);
    CU_ASSERT(strstr(c.result, "A [B [C]]") != NULL);
    CU_ASSERT(strstr(c.result, "ctl/stats") != NULL);
    call_free(&c);

    call(server, "version", 0, NULL, &c);
    CU_ASSERT_STRING_EQUAL(c.result, PACKAGE_STRING);
    call_free(&c);
    ctl_set_version("chand-test 9.9");
    call(server, "version", 0, NULL, &c);
    CU_ASSERT_STRING_EQUAL(c.result, "chand-test 9.9");
    call_free(&c);
    ctl_set_version(NULL);

    /* vlog/set changes this (the server's) process. */
    char *spec[] = { "test_ctl:dbg", "ctl:warn" };
    call(server, "vlog/set", 2, spec, &c);
    CU_ASSERT_EQUAL(c.error, 0);
    CU_ASSERT_STRING_EQUAL(c.result, "");
    CU_ASSERT_TRUE(VLOG_IS_DBG_ENABLED());
    call_free(&c);

    call(server, "vlog/list", 0, NULL, &c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.result);
    CU_ASSERT(strstr(c.result, "test_ctl") != NULL);
    call_free(&c);

    char *bad_spec[] = { "test_ctl:info", "nonexistent:dbg" };
    call(server, "vlog/set", 2, bad_spec, &c);
    CU_ASSERT_PTR_NULL(c.result);
    CU_ASSERT_PTR_NOT_NULL(c.errmsg);
    CU_ASSERT(c.errmsg && strstr(c.errmsg, "nonexistent:dbg") != NULL);
    call_free(&c);
    CU_ASSERT_EQUAL(vlog_set_levels_from_string("ANY:info"), 0);

    call(server, "vlog/reopen", 0, NULL, &c);
    CU_ASSERT_STRING_EQUAL(c.result, "");
    call_free(&c);

    /* Argument counts. */
    char *one[] = { "x" }, *four[] = { "1", "2", "3", "4" };
    call(server, "test/two", 1, one, &c);
    CU_ASSERT_STRING_EQUAL(c.errmsg, "\"test/two\" command takes 2 "
                           "arguments");
    call_free(&c);
    call(server, "test/range", 0, NULL, &c);
    CU_ASSERT_STRING_EQUAL(c.errmsg, "\"test/range\" command requires at "
                           "least 1 argument");
    call_free(&c);
    call(server, "test/range", 4, four, &c);
    CU_ASSERT_STRING_EQUAL(c.errmsg, "\"test/range\" command takes at most "
                           "3 arguments");
    call_free(&c);
    call(server, "test/range", 3, four, &c);
    CU_ASSERT_STRING_EQUAL(c.result, "1 2 3");
    call_free(&c);
    call(server, "version", 1, one, &c);
    CU_ASSERT_PTR_NOT_NULL(c.errmsg);
    call_free(&c);

    /* Unknown commands. */
    call(server, "no/such", 0, NULL, &c);
    CU_ASSERT_EQUAL(c.error, 0);
    CU_ASSERT(c.errmsg && strstr(c.errmsg, "is not a valid command"));
    call_free(&c);

    ctl_command_unregister("test/fail");
    ctl_command_unregister("test/fail");
    call(server, "test/fail", 0, NULL, &c);
    CU_ASSERT(c.errmsg && strstr(c.errmsg, "is not a valid command"));
    call_free(&c);

    struct ctl_server_stats st;
    ctl_server_get_stats(server, &st);
    CU_ASSERT_EQUAL(st.n_unknown_commands, 2);
    CU_ASSERT_EQUAL(st.n_bad_arg_counts, 4);
    CU_ASSERT_EQUAL(st.n_bad_requests, 0);
    CU_ASSERT_EQUAL(st.n_bad_json, 0);
    CU_ASSERT_EQUAL(st.n_conns_accepted, 18);
    CU_ASSERT_EQUAL(st.n_errors_replied, 2 + 4 + 1 + 1);

    call(server, "ctl/stats", 0, NULL, &c);
    CU_ASSERT(c.result && strstr(c.result, "unknown_commands: 2\n"));
    CU_ASSERT(c.result && strstr(c.result, "bad_arg_counts: 4\n"));
    call_free(&c);

    ctl_server_destroy(server);
}

static void
test_file_path(void)
{
    char dir[] = "/tmp/test-ctl-XXXXXX";
    char path[128];
    struct ctl_server *server;
    struct call c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/run/chand-test.ctl", dir);
    register_test_commands();
    CU_ASSERT_EQUAL_FATAL(create_server(path, &server), 0);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);

    char *args[] = { "via-file" };
    call_ex(server, path, "test/echo", 1, args, &c, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(c.result, "via-file");
    call_free(&c);

    /* "unix:" and "punix:" prefixes are accepted by the client. */
    char upath[160];
    snprintf(upath, sizeof upath, "unix:%s", path);
    call_ex(server, upath, "test/echo", 1, args, &c, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(c.result, "via-file");
    call_free(&c);

    ctl_server_destroy(server);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);

    /* A live listener on the path is not stolen. */
    struct pstream *p;
    char pname[160];
    snprintf(pname, sizeof pname, "punix:%s", path);
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);
    vlog_set_levels_from_string("ctl:off");
    CU_ASSERT_EQUAL(create_server(path, &server), EADDRINUSE);
    vlog_set_levels_from_string("ctl:info");
    pstream_close(p);
    CU_ASSERT_EQUAL_FATAL(create_server(path, &server), 0);
    ctl_server_destroy(server);

    snprintf(pname, sizeof pname, "%s/run", dir);
    rmdir(pname);
    rmdir(dir);
}

static void
test_deferred(void)
{
    struct ctl_server *server = make_server();
    struct call c;
    int countdown;

    /* Reply a few iterations later. */
    deferred_calls = 0;
    countdown = 3;
    call_ex(server, abstract_path, "test/defer", 0, NULL, &c,
            step_reply_deferred, &countdown);
    CU_ASSERT_EQUAL(deferred_calls, 1);
    CU_ASSERT_STRING_EQUAL(c.result, "later");
    call_free(&c);
    CU_ASSERT_PTR_NULL(deferred_conn);

    /* The client goes away before the reply: the conn stays valid. */
    vlog_set_levels_from_string("ctl:off");
    struct stream *raw;
    char name[128];
    snprintf(name, sizeof name, "unix:%s", abstract_path);
    CU_ASSERT_EQUAL_FATAL(stream_open_block(name, &raw), 0);
    struct jsonrpc *rpc = jsonrpc_open(raw);
    CU_ASSERT_EQUAL(jsonrpc_send(rpc, jsonrpc_create_request("test/defer",
                                                             NULL, NULL)),
                    0);
    alarm(30);
    while (!deferred_conn) {
        ctl_server_run(server);
        if (!deferred_conn) {
            ctl_server_wait(server);
            poll_block();
        }
    }
    alarm(0);
    jsonrpc_close(rpc);
    ctl_command_reply(deferred_conn, "to nobody");
    deferred_conn = NULL;
    struct ctl_server_stats st;
    alarm(30);
    do {
        ctl_server_run(server);
        ctl_server_get_stats(server, &st);
        if (st.n_conns) {
            ctl_server_wait(server);
            poll_block();
        }
    } while (st.n_conns);
    alarm(0);

    /* The server is destroyed before the reply. */
    CU_ASSERT_EQUAL_FATAL(stream_open_block(name, &raw), 0);
    rpc = jsonrpc_open(raw);
    jsonrpc_send(rpc, jsonrpc_create_request("test/defer", NULL, NULL));
    alarm(30);
    while (!deferred_conn) {
        ctl_server_run(server);
        if (!deferred_conn) {
            ctl_server_wait(server);
            poll_block();
        }
    }
    alarm(0);
    ctl_server_destroy(server);
    ctl_command_reply_error(deferred_conn, "too late");
    deferred_conn = NULL;
    json_t *msg;
    alarm(30);
    CU_ASSERT_EQUAL(jsonrpc_recv_block(rpc, &msg), EOF);
    alarm(0);
    jsonrpc_close(rpc);
    vlog_set_levels_from_string("ctl:info");
}

/* Hostile input through raw streams. */

struct raw_client {
    struct stream *stream;
    char *in;
    size_t n_in;
    bool eof;
};

static void
raw_open(struct raw_client *rc)
{
    char name[128];

    memset(rc, 0, sizeof *rc);
    snprintf(name, sizeof name, "unix:%s", abstract_path);
    CU_ASSERT_EQUAL_FATAL(stream_open_block(name, &rc->stream), 0);
}

static void
raw_close(struct raw_client *rc)
{
    stream_close(rc->stream);
    free(rc->in);
}

/* Sends 'n' bytes of 'data' while serving 'server'. */
static void
raw_send(struct ctl_server *server, struct raw_client *rc, const void *data,
         size_t n)
{
    const char *p = data;

    alarm(60);
    while (n > 0) {
        ssize_t r = stream_send(rc->stream, p, n);
        if (r > 0) {
            p += r;
            n -= r;
            continue;
        } else if (r != -EAGAIN) {
            break;              /* Server closed on us: fine. */
        }
        ctl_server_run(server);
        ctl_server_wait(server);
        stream_send_wait(rc->stream);
        poll_block();
    }
    alarm(0);
}

/* Serves until 'rc' has received a complete JSON reply or EOF.  Returns
 * the reply (new reference) or NULL on EOF. */
static json_t *
raw_reply(struct ctl_server *server, struct raw_client *rc)
{
    alarm(60);
    for (;;) {
        json_error_t err;
        if (rc->n_in) {
            json_t *j = json_loadb(rc->in, rc->n_in, JSON_DISABLE_EOF_CHECK,
                                   &err);
            if (j) {
                size_t used = err.position;
                memmove(rc->in, rc->in + used, rc->n_in - used);
                rc->n_in -= used;
                alarm(0);
                return j;
            }
        }
        if (rc->eof) {
            alarm(0);
            return NULL;
        }

        ctl_server_run(server);
        char buf[4096];
        ssize_t r = stream_recv(rc->stream, buf, sizeof buf);
        if (r > 0) {
            rc->in = xrealloc(rc->in, rc->n_in + r);
            memcpy(rc->in + rc->n_in, buf, r);
            rc->n_in += r;
            continue;
        } else if (r != -EAGAIN) {
            rc->eof = true;
            continue;
        }
        ctl_server_wait(server);
        stream_recv_wait(rc->stream);
        poll_block();
    }
}

static void
expect_error_reply(struct ctl_server *server, struct raw_client *rc,
                   const char *id_json, const char *substring)
{
    json_t *reply = raw_reply(server, rc);

    CU_ASSERT_PTR_NOT_NULL_FATAL(reply);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(reply), JSONRPC_ERROR);
    const char *e = json_string_value(jsonrpc_msg_error(reply));
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e && !strstr(e, substring)) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", e, substring);
        CU_FAIL("wrong error text");
    }
    json_t *id = json_loads(id_json, JSON_DECODE_ANY, NULL);
    CU_ASSERT(json_equal(id, jsonrpc_msg_id(reply)));
    json_decref(id);
    json_decref(reply);
}

static void
send_str(struct ctl_server *server, struct raw_client *rc, const char *s)
{
    raw_send(server, rc, s, strlen(s));
}

static void
test_bad_requests(void)
{
    struct ctl_server *server = make_server();
    struct raw_client rc;
    struct ctl_server_stats st;

    vlog_set_levels_from_string("ctl:off jsonrpc:off");
    raw_open(&rc);

    /* Well-formed JSON, bad requests: an error each, connection kept. */
    send_str(server, &rc, "{\"method\":\"version\",\"params\":[],"
             "\"id\":null}");
    expect_error_reply(server, &rc, "null", "not a request");
    send_str(server, &rc, "{\"method\":\"test/echo\",\"params\":[1],"
             "\"id\":7}");
    expect_error_reply(server, &rc, "7", "arguments must be strings");
    send_str(server, &rc, "{\"method\":\"test/echo\",\"params\":[\"a\","
             "null],\"id\":\"s\"}");
    expect_error_reply(server, &rc, "\"s\"", "arguments must be strings");
    send_str(server, &rc, "{\"method\":\"test/echo\",\"params\":{},"
             "\"id\":8}");
    expect_error_reply(server, &rc, "8", "\"params\" is not an array");
    send_str(server, &rc, "{\"method\":5,\"params\":[],\"id\":9}");
    expect_error_reply(server, &rc, "9", "\"method\" is not a string");
    send_str(server, &rc, "{\"result\":\"x\",\"error\":null,\"id\":10}");
    expect_error_reply(server, &rc, "10", "not a request");
    send_str(server, &rc, "{\"method\":\"version\",\"params\":[],\"id\":11,"
             "\"extra\":true}");
    expect_error_reply(server, &rc, "11", "unknown members");
    send_str(server, &rc, "{}");
    expect_error_reply(server, &rc, "null", "bad request");

    /* Too many arguments. */
    {
        json_t *params = json_array();
        for (int i = 0; i < CTL_MAX_ARGS + 1; i++) {
            json_array_append_new(params, json_string("a"));
        }
        json_t *req = json_pack("{s:s, s:o, s:i}", "method", "test/echo",
                                "params", params, "id", 12);
        char *s = json_dumps(req, JSON_COMPACT);
        send_str(server, &rc, s);
        free(s);
        json_decref(req);
        expect_error_reply(server, &rc, "12", "too many arguments");
    }
    /* CTL_MAX_ARGS exactly is fine. */
    {
        json_t *params = json_array();
        for (int i = 0; i < CTL_MAX_ARGS; i++) {
            json_array_append_new(params, json_string("a"));
        }
        json_t *req = json_pack("{s:s, s:o, s:i}", "method", "test/echo",
                                "params", params, "id", 13);
        char *s = json_dumps(req, JSON_COMPACT);
        send_str(server, &rc, s);
        free(s);
        json_decref(req);
        json_t *reply = raw_reply(server, &rc);
        CU_ASSERT_EQUAL(jsonrpc_msg_type(reply), JSONRPC_REPLY);
        CU_ASSERT_EQUAL(strlen(json_string_value(jsonrpc_msg_result(reply))),
                        2 * CTL_MAX_ARGS - 1);
        json_decref(reply);
    }

    /* Several requests in one write are all answered, in order. */
    send_str(server, &rc,
             "{\"method\":\"test/echo\",\"params\":[\"1\"],\"id\":1}"
             "{\"method\":\"no/such\",\"params\":[],\"id\":2}"
             "{\"method\":\"test/echo\",\"params\":[\"3\"],\"id\":3}");
    for (int i = 1; i <= 3; i++) {
        json_t *reply = raw_reply(server, &rc);
        CU_ASSERT_PTR_NOT_NULL_FATAL(reply);
        CU_ASSERT_EQUAL(json_integer_value(jsonrpc_msg_id(reply)), i);
        CU_ASSERT_EQUAL(jsonrpc_msg_type(reply),
                        i == 2 ? JSONRPC_ERROR : JSONRPC_REPLY);
        json_decref(reply);
    }

    ctl_server_get_stats(server, &st);
    CU_ASSERT_EQUAL(st.n_bad_requests, 9);
    CU_ASSERT_EQUAL(st.n_unknown_commands, 1);
    CU_ASSERT_EQUAL(st.n_errors_replied, 10);
    CU_ASSERT_EQUAL(st.n_conns, 1);

    /* Not JSON: the connection is closed. */
    send_str(server, &rc, "hello\n");
    CU_ASSERT_PTR_NULL(raw_reply(server, &rc));
    raw_close(&rc);

    raw_open(&rc);
    send_str(server, &rc, "[\"an array\"]");
    CU_ASSERT_PTR_NULL(raw_reply(server, &rc));
    raw_close(&rc);

    raw_open(&rc);
    send_str(server, &rc, "{\"method\":\"version\",,}");
    CU_ASSERT_PTR_NULL(raw_reply(server, &rc));
    raw_close(&rc);

    /* Oversized: closed once the limit is passed, before the end. */
    raw_open(&rc);
    size_t big = CTL_MAX_MSG + 100;
    char *s = malloc(big);
    memset(s, 'x', big);
    memcpy(s, "{\"method\":\"test/echo\",\"params\":[\"", 33);
    raw_send(server, &rc, s, big);
    free(s);
    CU_ASSERT_PTR_NULL(raw_reply(server, &rc));
    raw_close(&rc);

    ctl_server_get_stats(server, &st);
    CU_ASSERT_EQUAL(st.n_bad_json, 3);
    CU_ASSERT_EQUAL(st.n_oversized, 1);

    /* Random garbage never crashes the server. */
    uint64_t seed = 77;
    for (int i = 0; i < 200; i++) {
        char junk[64];
        size_t n = 1 + unit_random(&seed) % sizeof junk;
        static const char alphabet[] = "{}[]\":,\\ ax1nul\xff";
        for (size_t j = 0; j < n; j++) {
            junk[j] = alphabet[unit_random(&seed) % (sizeof alphabet - 1)];
        }
        raw_open(&rc);
        raw_send(server, &rc, junk, n);
        stream_close(rc.stream);
        rc.stream = NULL;
        raw_close(&rc);
        ctl_server_run(server);
    }

    /* And it still serves. */
    struct call c;
    call(server, "version", 0, NULL, &c);
    CU_ASSERT_STRING_EQUAL(c.result, PACKAGE_STRING);
    call_free(&c);

    ctl_server_destroy(server);
    vlog_set_levels_from_string("ctl:info jsonrpc:info");
}

static void
test_conn_limit(void)
{
    struct ctl_server *server = make_server();
    struct raw_client rcs[CTL_MAX_CONNS + 1];
    struct ctl_server_stats st;

    vlog_set_levels_from_string("ctl:off");
    for (int i = 0; i < CTL_MAX_CONNS; i++) {
        raw_open(&rcs[i]);
    }
    alarm(60);
    do {
        ctl_server_run(server);
        ctl_server_get_stats(server, &st);
        if (st.n_conns < CTL_MAX_CONNS) {
            ctl_server_wait(server);
            poll_block();
        }
    } while (st.n_conns < CTL_MAX_CONNS);
    alarm(0);
    CU_ASSERT_EQUAL(st.n_conns_refused, 0);

    /* One more is closed at once. */
    raw_open(&rcs[CTL_MAX_CONNS]);
    CU_ASSERT_PTR_NULL(raw_reply(server, &rcs[CTL_MAX_CONNS]));
    ctl_server_get_stats(server, &st);
    CU_ASSERT_EQUAL(st.n_conns_refused, 1);
    CU_ASSERT_EQUAL(st.n_conns, CTL_MAX_CONNS);
    raw_close(&rcs[CTL_MAX_CONNS]);

    /* The existing ones still work. */
    send_str(server, &rcs[5], "{\"method\":\"test/echo\",\"params\":[\"x\"],"
             "\"id\":1}");
    json_t *reply = raw_reply(server, &rcs[5]);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(reply), JSONRPC_REPLY);
    json_decref(reply);

    /* Closing one frees a slot. */
    raw_close(&rcs[0]);
    alarm(60);
    do {
        ctl_server_run(server);
        ctl_server_get_stats(server, &st);
        if (st.n_conns == CTL_MAX_CONNS) {
            ctl_server_wait(server);
            poll_block();
        }
    } while (st.n_conns == CTL_MAX_CONNS);
    alarm(0);
    struct call c;
    call(server, "version", 0, NULL, &c);
    CU_ASSERT_STRING_EQUAL(c.result, PACKAGE_STRING);
    call_free(&c);

    for (int i = 1; i < CTL_MAX_CONNS; i++) {
        raw_close(&rcs[i]);
    }
    ctl_server_destroy(server);
    vlog_set_levels_from_string("ctl:info");
}

static void
test_unread_replies(void)
{
    /* A client that sends many requests and never reads: the server stops
     * reading from it once the backlog is large, and stays responsive to
     * others. */
    struct ctl_server *server = make_server();
    struct raw_client rc;
    char *arg = malloc(64 * 1024);
    memset(arg, 'r', 64 * 1024 - 1);
    arg[64 * 1024 - 1] = '\0';

    raw_open(&rc);
    char *req;
    CU_ASSERT(asprintf(&req, "{\"method\":\"test/echo\",\"params\":[\"%s\"],"
                       "\"id\":0}", arg) > 0);
    /* Queue requests until the socket itself pushes back.  The server
     * reads at most 16 requests per run, so if it never stopped reading,
     * the client would never see EAGAIN. */
    size_t len = strlen(req), ofs = 0;
    int n_sent = 0;
    for (;;) {
        ssize_t r = stream_send(rc.stream, req + ofs, len - ofs);
        ctl_server_run(server);
        if (r == -EAGAIN) {
            break;
        }
        CU_ASSERT_FATAL(r > 0);
        ofs += r;
        if (ofs == len) {
            ofs = 0;
            n_sent++;
        }
        CU_ASSERT_FATAL(n_sent < 10000);
    }
    CU_ASSERT(n_sent > 0);

    struct call c;
    call(server, "version", 0, NULL, &c);
    CU_ASSERT_STRING_EQUAL(c.result, PACKAGE_STRING);
    call_free(&c);

    free(req);
    free(arg);
    raw_close(&rc);
    ctl_server_destroy(server);
}

static void
test_other_user(void)
{
    /* A client running as another user is refused.  Needs root to switch
     * users in the child. */
    if (geteuid() != 0) {
        fprintf(stderr, "(skipped: needs root) ");
        return;
    }

    struct ctl_server *server = make_server();
    int fds[2];

    vlog_set_levels_from_string("ctl:off");
    CU_ASSERT_FATAL(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (!pid) {
        char *result, *errmsg;

        close(fds[0]);
        alarm(60);
        if (setgid(65534) || setuid(65534)) {
            _exit(97);
        }
        int error = ctl_client_transact(abstract_path, "version", 0, NULL,
                                        &result, &errmsg);
        _exit(error == ECONNRESET || error == EPIPE ? 0 : 1);
    }
    close(fds[1]);

    /* The child closes the pipe when it exits. */
    CU_ASSERT_FATAL(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
    alarm(60);
    for (;;) {
        char c;
        ctl_server_run(server);
        if (!read(fds[0], &c, 1)) {
            break;
        }
        ctl_server_wait(server);
        poll_fd_wait(fds[0], POLLIN);
        poll_block();
    }
    alarm(0);
    close(fds[0]);

    int status;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);

    struct ctl_server_stats st;
    ctl_server_get_stats(server, &st);
    CU_ASSERT_EQUAL(st.n_conns_unauthorized, 1);
    CU_ASSERT_EQUAL(st.n_requests, 0);
    ctl_server_destroy(server);
    vlog_set_levels_from_string("ctl:info");
}

/* One non-blocking call's outcome (ctl_call_run()). */
struct async_outcome {
    bool ended;
    int error;
    char *result, *err_text;
};

/* Runs the server (if any) and the 'n' calls in one poll loop, the way a
 * daemon would, until every call ended; a call ended by ctl_call_run() is
 * not run again. */
static void
run_calls(struct ctl_server *server, struct ctl_call **calls,
          struct async_outcome *out, size_t n)
{
    alarm(60);
    for (;;) {
        size_t n_ended = 0;

        if (server) {
            ctl_server_run(server);
        }
        for (size_t i = 0; i < n; i++) {
            if (!out[i].ended) {
                out[i].error = ctl_call_run(calls[i], &out[i].result,
                                            &out[i].err_text);
                out[i].ended = out[i].error != EAGAIN;
            }
            n_ended += out[i].ended;
        }
        if (n_ended == n) {
            break;
        }
        if (server) {
            ctl_server_wait(server);
        }
        for (size_t i = 0; i < n; i++) {
            if (!out[i].ended) {
                ctl_call_wait(calls[i]);
            }
        }
        poll_block();
    }
    alarm(0);
}

static void
async_outcome_free(struct async_outcome *o)
{
    free(o->result);
    free(o->err_text);
    memset(o, 0, sizeof *o);
}

/* Non-blocking calls, served by a server in the same poll loop: answers
 * and error answers come back while another call stays unanswered; that
 * one ends with ETIMEDOUT at its deadline; a call that cannot connect ends
 * at once; a server that goes away ends the call with ECONNRESET; and a
 * call freed before its answer leaks nothing (ASan). */
static void
test_async_calls(void)
{
    struct ctl_server *server = make_server();
    long long now = time_msec();
    char *two[] = { "a", "b" };
    struct ctl_call *calls[4];
    struct async_outcome out[4];

    memset(out, 0, sizeof out);
    deferred_conn = NULL;
    calls[0] = ctl_call_start(server_path(), "test/defer", 0, NULL,
                              now + 300);
    calls[1] = ctl_call_start(server_path(), "test/two", 2, two,
                              now + 30000);
    calls[2] = ctl_call_start(server_path(), "test/fail", 0, NULL,
                              now + 30000);
    calls[3] = ctl_call_start(server_path(), "version", 0, NULL,
                              now + 30000);
    run_calls(server, &calls[1], &out[1], 3);

    /* The deferred call has not ended, the others have their answers. */
    CU_ASSERT_PTR_NOT_NULL(deferred_conn);
    CU_ASSERT_EQUAL(ctl_call_run(calls[0], &out[0].result, &out[0].err_text),
                    EAGAIN);
    CU_ASSERT_EQUAL(out[1].error, 0);
    CU_ASSERT_STRING_EQUAL(out[1].result, "a b");
    CU_ASSERT_PTR_NULL(out[1].err_text);
    CU_ASSERT_EQUAL(out[2].error, 0);
    CU_ASSERT_PTR_NULL(out[2].result);
    CU_ASSERT_STRING_EQUAL(out[2].err_text, "it failed");
    CU_ASSERT_EQUAL(out[3].error, 0);
    CU_ASSERT_PTR_NOT_NULL(out[3].result);

    /* The deferred one times out at its deadline, not before. */
    run_calls(server, calls, out, 1);
    CU_ASSERT_EQUAL(out[0].error, ETIMEDOUT);
    CU_ASSERT(time_msec() >= now + 300);
    CU_ASSERT_PTR_NULL(out[0].result);
    CU_ASSERT_PTR_NULL(out[0].err_text);
    ctl_command_reply(deferred_conn, "too late");
    deferred_conn = NULL;
    for (size_t i = 0; i < 4; i++) {
        ctl_call_destroy(calls[i]);
        async_outcome_free(&out[i]);
    }

    /* No server at that path; bad arguments. */
    char *bad_args[] = { "\xff" };
    calls[0] = ctl_call_start("/nonexistent/x.ctl", "version", 0, NULL,
                              now + 30000);
    calls[1] = ctl_call_start(server_path(), "x", 1, bad_args, now + 30000);
    calls[2] = ctl_call_start(NULL, "version", 0, NULL, now + 30000);
    run_calls(NULL, calls, out, 3);
    CU_ASSERT_EQUAL(out[0].error, ENOENT);
    CU_ASSERT_EQUAL(out[1].error, EINVAL);
    CU_ASSERT_EQUAL(out[2].error, EINVAL);
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_PTR_NULL(out[i].result);
        CU_ASSERT_PTR_NULL(out[i].err_text);
        ctl_call_destroy(calls[i]);
        async_outcome_free(&out[i]);
    }

    /* The server goes away while a call waits; a call freed unanswered. */
    calls[0] = ctl_call_start(server_path(), "test/defer", 0, NULL,
                              time_msec() + 30000);
    calls[1] = ctl_call_start(server_path(), "version", 0, NULL,
                              time_msec() + 30000);
    while (!deferred_conn) {
        ctl_server_run(server);
        ctl_call_run(calls[0], &out[0].result, &out[0].err_text);
        ctl_server_wait(server);
        ctl_call_wait(calls[0]);
        poll_block();
    }
    ctl_call_destroy(calls[1]);
    ctl_server_destroy(server);
    run_calls(NULL, calls, out, 1);
    CU_ASSERT_EQUAL(out[0].error, ECONNRESET);
    ctl_command_reply(deferred_conn, "to nobody");
    deferred_conn = NULL;
    ctl_call_destroy(calls[0]);
    async_outcome_free(&out[0]);
    ctl_call_destroy(NULL);
}

static const struct unit_test tests[] = {
    { "create errors", test_create_errors },
    { "commands", test_commands },
    { "file path", test_file_path },
    { "deferred", test_deferred },
    { "bad requests", test_bad_requests },
    { "connection limit", test_conn_limit },
    { "unread replies", test_unread_replies },
    { "other user", test_other_user },
    { "non-blocking calls", test_async_calls },
};

int
unit_register(void)
{
    /* vlog/set, vlog/list and vlog/reopen are vlog's, registered by
     * vlog_init() as in the daemons. */
    vlog_init("test-ctl");
    return UNIT_ADD_SUITE("ctl", tests);
}
