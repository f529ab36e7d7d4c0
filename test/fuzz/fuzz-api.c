/*
 * fuzz-api: the local request sockets, which read bytes from any local
 * process that can connect to them:
 *
 *   - the daemons' control socket (lib/ctl, served by chand-host and
 *     chand-guest, driven by chanctl);
 *   - chand-guest's local API for guest applications (chand-guest/api),
 *     backed by a real datastore (chand-guest/datastore, SQLite) in a
 *     temporary directory.
 *
 * Neither exposes its request handling as a pure function, so this target
 * drives the real servers: both listen on abstract sockets in this process.
 * The ctl server has test commands registered next to the built-in ones:
 * "fuzz/echo" and "fuzz/fail" answer at once, "fuzz/defer" answers later
 * from the loop, "fuzz/hangup" makes the client go away without reading,
 * and "fuzz/big" answers with more than the socket buffers hold, which
 * together reach the replies to connections the server has meanwhile
 * dropped.  The guest API's datastore holds a few
 * records, and one record changes during every input, so that watchers get
 * "update" notifications.  For each input the target connects to the
 * chosen server, sends the rest of the input as the request byte stream (in
 * pieces whose size the first byte gives, with the server running in
 * between, so that the framing scanner resumes mid-message), half-closes,
 * and runs the server until it has dropped the connection.  The same bytes
 * are also parsed as one JSON value and classified with
 * jsonrpc_msg_classify(), as both servers do.
 *
 * Input layout:
 *
 *     byte 0    bit 7: 0 the control socket, 1 the guest API; bits 0-6:
 *               piece size (0: everything at once)
 *     then      the byte stream a client sends
 *
 * Invariants checked besides memory safety: the servers send only valid
 * JSON-RPC (replies, errors, and for the guest API "update"
 * notifications), read raw from the socket and parsed here; a ctl answer's
 * result or error is a string, a guest API error is a string; the stream
 * ends in the middle of a message only when the server had a reason to
 * drop the connection (see client_finish()); neither server wedges (each
 * finishes within a bounded number of loop iterations); the connection
 * count returns to zero.
 */
#include <config.h>
#include "fuzz.h"

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "ctl.h"
#include "datastore.h"
#include "jsonrpc.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

/* Loop iterations allowed per input before a server counts as wedged.  One
 * iteration handles at least one message (or one piece), and an input of
 * N bytes holds at most N / 2 messages ("{}"). */
#define MAX_ITERATIONS(SIZE) (1000 + 4 * (SIZE))

static struct ctl_server *ctl;
static char ctl_name[64];

static struct api *api;
static struct datastore *ds;
static char api_name[64];
static char tmp_dir[PATH_MAX];
static char db_path[PATH_MAX + 16];
static uint64_t ds_seq;

#define HOST_EPOCH 1

/* Calls of "fuzz/defer" waiting for their answer. */
#define MAX_DEFERRED 1024
static struct ctl_conn *deferred[MAX_DEFERRED];
static bool deferred_error[MAX_DEFERRED];
static size_t n_deferred;

/* Set by "fuzz/hangup": the client closes its socket without reading
 * anything more, and deferred calls are answered only a few loop
 * iterations later, so that the server may drop a connection with a call
 * outstanding (and the answer then goes to an orphaned ctl_conn). */
static bool hangup;

/* Largest reply of "fuzz/big", in kB: more than the two socket buffers
 * between server and client hold (about 430 kB here), so that the server
 * keeps a backlog.  All of an input's "fuzz/big" replies together are
 * capped at the same size, to keep inputs fast. */
#define MAX_BIG_KB 600
#define MAX_BIG_TOTAL_KB MAX_BIG_KB
static size_t big_total_kb;

static void
discard_log(const char *line, void *aux)
{
}

/* ctl test commands. */

static void
cmd_echo(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    size_t len = 1;
    for (int i = 1; i < argc; i++) {
        len += strlen(argv[i]) + 1;
    }
    char *s = fuzz_alloc(len);
    for (int i = 1; i < argc; i++) {
        strcat(s, argv[i]);
        strcat(s, i + 1 < argc ? " " : "");
    }
    ctl_command_reply(conn, s);
    free(s);
}

static void
cmd_fail(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    ctl_command_reply_error(conn, argc > 1 ? argv[1] : NULL);
}

static void
cmd_defer(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    if (n_deferred >= MAX_DEFERRED) {
        ctl_command_reply_error(conn, "too many deferred calls");
        return;
    }
    deferred_error[n_deferred] = argc > 1;
    deferred[n_deferred++] = conn;
}

static void
cmd_hangup(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    hangup = true;
    ctl_command_reply(conn, "bye");
}

/* "fuzz/big N": a reply of N kB, to fill the socket and the backlog. */
static void
cmd_big(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    size_t kb = strtoul(argv[1], NULL, 10);
    kb = kb > MAX_BIG_KB ? MAX_BIG_KB : kb;
    kb = kb > MAX_BIG_TOTAL_KB - big_total_kb
         ? MAX_BIG_TOTAL_KB - big_total_kb : kb;
    big_total_kb += kb;
    char *s = fuzz_alloc(kb * 1024 + 1);
    memset(s, 'x', kb * 1024);
    ctl_command_reply(conn, s);
    free(s);
}

static void
answer_deferred(void)
{
    for (size_t i = 0; i < n_deferred; i++) {
        if (deferred_error[i]) {
            ctl_command_reply_error(deferred[i], "deferred error");
        } else {
            ctl_command_reply(deferred[i], "deferred");
        }
    }
    n_deferred = 0;
}

/* Guest API set-up. */

static json_t *
guest_status(void *aux)
{
    return json_pack("{s:s, s:i}", "state", "fuzzing", "position",
                     (int) ds_seq);
}

static void
guest_change(void *aux, const struct ds_change *change)
{
    api_notify(api, change);
}

/* Commits frame 'ds_seq + 1' with 'n' records to the datastore (whose
 * change callback notifies the API's watchers). */
static void
ds_commit(const struct ds_record *recs, size_t n)
{
    bool applied;
    FUZZ_CHECK(!datastore_begin(ds));
    FUZZ_CHECK(!datastore_apply(ds, HOST_EPOCH, ++ds_seq, recs, n,
                                &applied));
    FUZZ_CHECK(applied);
    FUZZ_CHECK(!datastore_commit(ds));
}

static void
remove_tmp(void)
{
    api_destroy(api);
    datastore_close(ds);
    if (tmp_dir[0]) {
        static const char *const suffixes[] = { "", "-wal", "-shm",
                                                "-journal" };
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            char path[PATH_MAX + 32];
            snprintf(path, sizeof path, "%s%s", db_path, suffixes[i]);
            unlink(path);
        }
        rmdir(tmp_dir);
    }
}

static void
setup_guest_api(void)
{
    /* test/fuzz/run points TMPDIR into the fuzz build directory, so that
     * what a crashed run leaves behind stays there. */
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(tmp_dir, sizeof tmp_dir, "%s/chand-fuzz-XXXXXX",
                     tmp && *tmp ? tmp : "/tmp");
    FUZZ_CHECK(n > 0 && (size_t) n < sizeof tmp_dir);
    FUZZ_CHECK(mkdtemp(tmp_dir));
    snprintf(db_path, sizeof db_path, "%s/guest.db", tmp_dir);
    atexit(remove_tmp);

    struct datastore_options opts = { .sync = DS_SYNC_NORMAL };
    int error = datastore_open_opts(db_path, &opts, &ds);
    if (error) {
        fprintf(stderr, "datastore_open(%s): %s (%s)\n", db_path,
                strerror(error), datastore_last_error());
        abort();
    }

    static const struct ds_record recs[] = {
        { DS_PUT, "motd", "{\"text\":\"hello\"}", 3 },
        { DS_PUT, "cfg/a", "1", 4 },
        { DS_PUT, "cfg/b", "[true,null,\"\\u00e9\"]", 5 },
        { DS_PUT, "cfg/\xc3\xa9t\xc3\xa9", "\"summer\"", 6 },
    };
    FUZZ_CHECK(!datastore_begin(ds));
    FUZZ_CHECK(!datastore_snapshot_begin(ds, HOST_EPOCH, 0));
    FUZZ_CHECK(!datastore_commit(ds));
    ds_commit(recs, sizeof recs / sizeof recs[0]);

    snprintf(api_name, sizeof api_name, "@chand-fuzz-guest-api-%ld",
             (long) getpid());
    api = api_create(api_name, ds, guest_status, NULL);
    if (!api) {
        fprintf(stderr, "api_create(%s): %s\n", api_name, strerror(errno));
        abort();
    }
    datastore_set_change_cb(ds, guest_change, NULL);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vlog_set_hook(discard_log, NULL);
    vlog_init("fuzz-api");      /* The vlog/ control commands. */

    ctl_command_register("fuzz/echo", "[ARG...]", 0, INT_MAX, cmd_echo,
                         NULL);
    ctl_command_register("fuzz/fail", "MSG [X]", 1, 2, cmd_fail, NULL);
    ctl_command_register("fuzz/defer", "[ERROR]", 0, 1, cmd_defer, NULL);
    ctl_command_register("fuzz/hangup", "", 0, 0, cmd_hangup, NULL);
    ctl_command_register("fuzz/big", "KB", 1, 1, cmd_big, NULL);

    snprintf(ctl_name, sizeof ctl_name, "@chand-fuzz-ctl-%ld",
             (long) getpid());
    ctl = ctl_server_create(ctl_name);
    if (!ctl) {
        fprintf(stderr, "ctl_server_create(%s): %s\n", ctl_name,
                strerror(errno));
        abort();
    }

    setup_guest_api();
    return 0;
}

/* The two servers behind one interface. */

struct server {
    const char *name;           /* Socket name without "unix:". */
    void (*run)(void);
    uint64_t (*n_accepted)(void);
    bool (*idle)(void);         /* No connection, nothing outstanding. */
    uint64_t (*n_broken)(void); /* Connections dropped for bad input. */
    void (*check)(const json_t *msg);   /* Checks a message it sent. */
};

static int since_hangup;

static void
ctl_run(void)
{
    ctl_server_run(ctl);
    if (!hangup || ++since_hangup > 2) {
        answer_deferred();
    }
}

static uint64_t
ctl_n_accepted(void)
{
    struct ctl_server_stats stats;
    ctl_server_get_stats(ctl, &stats);
    return stats.n_conns_accepted;
}

static bool
ctl_idle(void)
{
    struct ctl_server_stats stats;
    ctl_server_get_stats(ctl, &stats);
    return !stats.n_conns && !n_deferred;
}

static uint64_t
ctl_n_broken(void)
{
    struct ctl_server_stats stats;
    ctl_server_get_stats(ctl, &stats);
    return stats.n_bad_json + stats.n_oversized;
}

static void
ctl_check(const json_t *msg)
{
    enum jsonrpc_msg_type type = jsonrpc_msg_type(msg);
    if (type == JSONRPC_REPLY) {
        FUZZ_CHECK(json_is_string(jsonrpc_msg_result(msg)));
    } else {
        FUZZ_CHECK(type == JSONRPC_ERROR);
        FUZZ_CHECK(json_is_string(jsonrpc_msg_error(msg)));
    }
}

static void
api_run_(void)
{
    api_run(api);
}

static uint64_t
api_n_accepted(void)
{
    struct api_stats stats;
    api_get_stats(api, &stats);
    return stats.conns_accepted;
}

static bool
api_idle(void)
{
    json_t *stats = api_stats_json(api);
    json_int_t n = json_integer_value(json_object_get(stats,
                                                      "connections"));
    FUZZ_CHECK(json_is_integer(json_object_get(stats, "connections")));
    json_decref(stats);
    return n == 0;
}

static uint64_t
api_n_broken(void)
{
    struct api_stats stats;
    api_get_stats(api, &stats);
    return stats.conns_broken;
}

static void
api_check(const json_t *msg)
{
    enum jsonrpc_msg_type type = jsonrpc_msg_type(msg);
    if (type == JSONRPC_NOTIFY) {
        const json_t *params = jsonrpc_msg_params(msg);
        FUZZ_CHECK(!strcmp(jsonrpc_msg_method(msg), "update"));
        FUZZ_CHECK(json_array_size(params) == 1);
        FUZZ_CHECK(json_is_object(json_array_get(params, 0)));
    } else if (type == JSONRPC_ERROR) {
        FUZZ_CHECK(json_is_string(jsonrpc_msg_error(msg)));
    } else {
        FUZZ_CHECK(type == JSONRPC_REPLY);
    }
}

static const struct server servers[2] = {
    { ctl_name, ctl_run, ctl_n_accepted, ctl_idle, ctl_n_broken,
      ctl_check },
    { api_name, api_run_, api_n_accepted, api_idle, api_n_broken,
      api_check },
};

/* The client's view of what the server sent: every byte, read straight
 * from the socket (not through lib/jsonrpc, which is under test), parsed
 * into messages here. */
struct client {
    int fd;
    char *buf;
    size_t len, allocated;
    size_t ofs;                 /* Bytes of 'buf' already parsed. */
};

/* Parses and checks the complete messages in 'c''s buffer. */
static void
client_parse(const struct server *s, struct client *c)
{
    /* Every message ends in '}': until one arrives, the buffer can only
     * hold part of a message, and parsing it again would be wasted. */
    size_t end = c->len;
    while (end > c->ofs && memchr(" \t\r\n", c->buf[end - 1], 4)) {
        end--;
    }
    if (end == c->ofs || c->buf[end - 1] != '}') {
        return;
    }

    for (;;) {
        while (c->ofs < c->len && memchr(" \t\r\n", c->buf[c->ofs], 4)) {
            c->ofs++;
        }
        if (c->ofs >= c->len) {
            return;
        }

        json_error_t error;
        json_t *msg = json_loadb(c->buf + c->ofs, c->len - c->ofs,
                                 JSON_DISABLE_EOF_CHECK, &error);
        if (!msg) {
            /* Only an incomplete message may fail to parse. */
            if (json_error_code(&error) != json_error_premature_end_of_input) {
                fprintf(stderr, "server sent bad JSON: %s\n", error.text);
            }
            FUZZ_CHECK(json_error_code(&error)
                       == json_error_premature_end_of_input);
            return;
        }
        c->ofs += error.position;
        FUZZ_CHECK(json_is_object(msg));
        s->check(msg);
        json_decref(msg);
    }
}

/* Reads and checks whatever the server has sent so far.  Returns false
 * once the server has closed the connection. */
static bool
client_read(const struct server *s, struct client *c)
{
    for (;;) {
        if (c->allocated - c->len < 65536) {
            c->allocated = 2 * c->allocated + 65536;
            c->buf = xrealloc(c->buf, c->allocated);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->allocated - c->len,
                         MSG_DONTWAIT);
        int error = n < 0 ? errno : 0;
        if (n > 0) {
            c->len += n;
            continue;
        }
        client_parse(s, c);
        if (n < 0 && (error == EAGAIN || error == EWOULDBLOCK)) {
            return true;
        }
        if (n < 0 && error != ECONNRESET && error != EPIPE) {
            fprintf(stderr, "client recv: %s\n", strerror(error));
        }
        FUZZ_CHECK(n == 0 || error == ECONNRESET || error == EPIPE);
        return false;
    }
}

/* At the end of the stream, only an incomplete last message may remain,
 * and only if the server had a reason to drop the connection without
 * flushing its output: bad input ('n_broken' went up).  A client that
 * half-closed its side ('shut') still gets every reply in full: both
 * servers keep a connection that reached end of stream until its queued
 * replies are out (test/fuzz/crashes-found/eof-truncation is the
 * regression input). */
static void
client_finish(const struct client *c, uint64_t n_broken_before,
              uint64_t n_broken_after, bool shut)
{
    if (c->ofs < c->len) {
        bool ok = n_broken_after > n_broken_before;
        if (!ok) {
            fprintf(stderr, "server closed the connection in the middle "
                    "of a message (%zu of %zu bytes unparsed)\n",
                    c->len - c->ofs, c->len);
        }
        FUZZ_CHECK(ok);
    }
}

static void
fuzz_server(const struct server *s, const uint8_t *data, size_t size,
            size_t piece)
{
    struct stream *stream;
    char name[80];

    snprintf(name, sizeof name, "unix:%s", s->name);
    FUZZ_CHECK(!stream_open(name, &stream));
    struct client c = { .fd = stream_get_fd(stream) };
    uint64_t accepted = s->n_accepted();
    uint64_t n_broken = s->n_broken();

    size_t ofs = 0;
    bool shut = false, open = true;
    long int limit = MAX_ITERATIONS(size);
    for (long int i = 0; ; i++) {
        if (i > limit) {
            fprintf(stderr, "server %s still busy after %ld iterations\n",
                    s->name, i);
            FUZZ_CHECK(i <= limit);
        }

        /* Send the next piece, as far as the socket takes it. */
        if (ofs < size) {
            size_t n = piece && piece < size - ofs ? piece : size - ofs;
            ssize_t sent = stream_send(stream, data + ofs, n);
            if (sent > 0) {
                ofs += sent;
            } else if (sent != -EAGAIN) {
                /* The server closed the connection early. */
                ofs = size;
            }
        } else if (!shut) {
            if (s == &servers[1]) {
                /* A change for the watchers the requests may have set. */
                struct ds_record rec = { DS_PUT, "cfg/a", "{\"n\":1}",
                                         (int64_t) ds_seq };
                ds_commit(&rec, 1);
            }
            shutdown(c.fd, SHUT_WR);
            shut = true;
        }

        s->run();
        if (hangup && stream) {
            /* "fuzz/hangup": go away without reading the rest. */
            stream_close(stream);
            stream = NULL;
            open = false;
            ofs = size;
            shut = true;
        }
        if (open) {
            open = client_read(s, &c);
            if (!open) {
                client_finish(&c, n_broken, s->n_broken(), shut);
            }
        }
        if (shut && !open && s->n_accepted() > accepted && s->idle()) {
            break;
        }
    }
    stream_close(stream);
    free(c.buf);
    hangup = false;
    since_hangup = 0;
    big_total_kb = 0;
}

/* The pure part: the bytes as one JSON value, classified. */
static void
fuzz_classify(const uint8_t *data, size_t size)
{
    json_error_t jerror;
    json_t *msg = json_loadb((const char *) data, size,
                             JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
                             &jerror);
    if (!msg) {
        return;
    }

    const char *why = NULL;
    enum jsonrpc_msg_type type = jsonrpc_msg_classify(msg, &why);
    FUZZ_CHECK(type == jsonrpc_msg_type(msg));
    FUZZ_CHECK(jsonrpc_msg_type_name(type) != NULL);
    switch (type) {
    case JSONRPC_REQUEST:
        FUZZ_CHECK(jsonrpc_msg_method(msg));
        FUZZ_CHECK(json_is_array(jsonrpc_msg_params(msg)));
        FUZZ_CHECK(jsonrpc_msg_id(msg)
                   && !json_is_null(jsonrpc_msg_id(msg)));
        break;
    case JSONRPC_NOTIFY:
        FUZZ_CHECK(jsonrpc_msg_method(msg));
        FUZZ_CHECK(json_is_array(jsonrpc_msg_params(msg)));
        break;
    case JSONRPC_REPLY:
        FUZZ_CHECK(jsonrpc_msg_id(msg));
        break;
    case JSONRPC_ERROR:
        FUZZ_CHECK(jsonrpc_msg_error(msg)
                   && !json_is_null(jsonrpc_msg_error(msg)));
        break;
    case JSONRPC_INVALID:
        FUZZ_CHECK(why != NULL);
        break;
    }

    /* Replies built for whatever id came in are valid replies. */
    const json_t *id = jsonrpc_msg_id(msg);
    if (id && !json_is_null(id)) {
        json_t *reply = jsonrpc_create_reply(json_string("x"), id);
        FUZZ_CHECK(jsonrpc_msg_type(reply) == JSONRPC_REPLY);
        FUZZ_CHECK(jsonrpc_id_equal(jsonrpc_msg_id(reply), id));
        json_decref(reply);
    }
    json_t *error = jsonrpc_create_error(json_string("x"), id);
    FUZZ_CHECK(jsonrpc_msg_type(error) == JSONRPC_ERROR);
    json_decref(error);
    json_decref(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    uint8_t mode = fuzz_u8(&in);

    fuzz_classify(in.data, in.size);
    fuzz_server(&servers[mode >> 7], in.data, in.size, mode & 0x7f);

    /* "vlog/set" may have changed levels: back to the default. */
    vlog_set_level(NULL, VLL_INFO);
    return 0;
}
