/* Tests for chand-guest/call: the request/response codec, base64, the
 * in-loop commands (file-export with a registry standing in for the
 * transfer lane), and the runner with requests in a real datastore
 * (exactly once, deletion, timeouts, exec). */

#include <config.h>
#include "unit.h"
#include "call.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "base64.h"
#include "datastore.h"
#include "guest-fixture.h"
#include "poll-loop.h"
#include "util.h"

/* A scratch directory with the datastore and the runner. */
struct cfix {
    struct scratch sc;
    char allow[160];            /* The exec allowlist file. */
    char out[160];              /* A file the commands write. */
    char export_dir[160];       /* file-export's directory. */
    json_t *exports;            /* What file-export registered: path ->
                                 * {"digest", "size"}. */
    struct datastore *ds;
    struct call *c;
    uint64_t seq;
};

static void
changed(void *f_, const struct ds_change *change)
{
    struct cfix *f = f_;

    if (f->c) {
        call_record_changed(f->c, change);
    }
}

static void
open_store(struct cfix *f)
{
    f->ds = open_ds(f->sc.path);
    datastore_set_change_cb(f->ds, changed, f);
}

#define TEST_MAX_EXPORT 64

static void
export_add(void *f_, const char *digest, uint64_t size, const char *path)
{
    struct cfix *f = f_;

    CU_ASSERT_PTR_NULL(json_object_get(f->exports, path));
    json_object_set_new(f->exports, path,
                        json_pack("{ss sI}", "digest", digest,
                                  "size", (json_int_t) size));
}

static void
export_remove(void *f_, const char *digest, const char *path)
{
    struct cfix *f = f_;
    json_t *e = json_object_get(f->exports, path);

    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "digest")),
                           digest);
    json_object_del(f->exports, path);
}

static void
start(struct cfix *f, bool exec)
{
    struct call_config cc = {
        .exec_allow = exec ? f->allow : NULL,
        .export_dir = f->export_dir,
        .max_export = TEST_MAX_EXPORT,
        .export_add = export_add,
        .export_remove = export_remove,
        .export_aux = f,
    };

    f->c = call_create(&cc, f->ds);
}

static void
cfix_init(struct cfix *f, bool exec)
{
    FILE *file;

    memset(f, 0, sizeof *f);
    scratch_init(&f->sc, "call");
    scratch_file(&f->sc, "allow", f->allow, sizeof f->allow);
    scratch_file(&f->sc, "out", f->out, sizeof f->out);
    scratch_file(&f->sc, "export", f->export_dir, sizeof f->export_dir);
    f->exports = json_object();
    file = fopen(f->allow, "w");
    CU_ASSERT_FATAL(file != NULL);
    fputs("# comment\n  /bin/sh  \n/bin/echo\n", file);
    fclose(file);
    open_store(f);
    CU_ASSERT_FATAL(datastore_begin(f->ds) == 0);
    CU_ASSERT_FATAL(datastore_rebase(f->ds, 1, 0) == 0);
    CU_ASSERT_FATAL(datastore_commit(f->ds) == 0);
    start(f, exec);
}

static void
cfix_destroy(struct cfix *f)
{
    char *cmd = xasprintf("rm -rf %s", f->sc.dir);

    call_destroy(f->c);
    CU_ASSERT_EQUAL(json_object_size(f->exports), 0);
    json_decref(f->exports);
    datastore_close(f->ds);
    CU_ASSERT(system(cmd) == 0);
    free(cmd);
}

/* Delivers 'key' = 'value' at 'version' (NULL 'value': deletes it). */
static void
deliver(struct cfix *f, const char *key, const char *value, int64_t version)
{
    deliver_record(f->ds, &f->seq, key, value, version);
}

/* Runs the runner until it is idle (at most 'max_ms'). */
static void
run_idle(struct cfix *f, long long max_ms)
{
    long long end = time_msec() + max_ms;

    call_run(f->c);
    while (!call_is_idle(f->c) && time_msec() < end) {
        call_wait(f->c);
        poll_timer_wait_until(end);
        poll_block();
        call_run(f->c);
    }
    CU_ASSERT(call_is_idle(f->c));
}

/* Returns the response to request 'id' (parsed; the caller decrefs it),
 * or NULL if there is none. */
static json_t *
response(struct cfix *f, const char *id)
{
    char *rkey = xasprintf("result/call/%s", id);
    char *value = NULL;
    bool deleted = true;
    json_t *j = NULL;

    if (!datastore_get_published(f->ds, rkey, &value, NULL, NULL, &deleted)
        && !deleted) {
        j = json_loads(value, 0, NULL);
    }
    free(value);
    free(rkey);
    return j;
}

/* Sends request 'id' (version 1) with 'value', runs until idle and
 * returns the response (the caller decrefs it). */
static json_t *
call(struct cfix *f, const char *id, const char *value)
{
    char *key = xasprintf("call/%s", id);
    json_t *r;

    deliver(f, key, value, 1);
    run_idle(f, 5000);
    r = response(f, id);
    CU_ASSERT_PTR_NOT_NULL(r);
    free(key);
    return r;
}

/* Returns the error class of response 'r', or NULL. */
static const char *
error_class(const json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "error"),
                                             "class"));
}

static struct call_stats
stats(const struct cfix *f)
{
    struct call_stats s;

    call_get_stats(f->c, &s);
    return s;
}

/* The codec. */

static void
test_ids(void)
{
    char long_id[CALL_ID_MAX + 16];

    CU_ASSERT_STRING_EQUAL(call_id_of("call/a-1.B_2"), "a-1.B_2");
    CU_ASSERT_PTR_NULL(call_id_of("call/"));
    CU_ASSERT_PTR_NULL(call_id_of("calls/x"));
    CU_ASSERT_PTR_NULL(call_id_of("call/a/b"));
    CU_ASSERT_PTR_NULL(call_id_of("call/a b"));
    snprintf(long_id, sizeof long_id, "call/%0*d", CALL_ID_MAX, 0);
    CU_ASSERT_PTR_NOT_NULL(call_id_of(long_id));
    snprintf(long_id, sizeof long_id, "call/%0*d", CALL_ID_MAX + 1, 0);
    CU_ASSERT_PTR_NULL(call_id_of(long_id));
}

static void
test_parse(void)
{
    struct call_request req;
    char *desc;

    CU_ASSERT_TRUE_FATAL(call_parse_request(
        "call/x", "{\"command\":\"ping\"}", &req, &desc));
    CU_ASSERT_STRING_EQUAL(req.id, "x");
    CU_ASSERT_STRING_EQUAL(req.command, "ping");
    CU_ASSERT(json_is_object(req.args) && !json_object_size(req.args));
    CU_ASSERT_EQUAL(req.timeout_ms, CALL_DEFAULT_TIMEOUT_MS);
    CU_ASSERT_EQUAL(req.at, 0);
    call_request_destroy(&req);

    CU_ASSERT_TRUE_FATAL(call_parse_request(
        "call/y", "{\"command\":\"file-read\",\"args\":{\"handle\":3},"
        "\"timeout_ms\":500,\"at\":1700000000000}", &req, &desc));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(req.args, "handle")),
                    3);
    CU_ASSERT_EQUAL(req.timeout_ms, 500);
    CU_ASSERT_EQUAL(req.at, 1700000000000LL);
    call_request_destroy(&req);

    static const char *const bad[][2] = {
        { "call/x", "not json" },
        { "call/x", "[1]" },
        { "call/x", "{}" },
        { "call/x", "{\"command\":\"\"}" },
        { "call/x", "{\"command\":7}" },
        { "call/x", "{\"command\":\"ping\",\"args\":[]}" },
        { "call/x", "{\"command\":\"ping\",\"timeout_ms\":0}" },
        { "call/x", "{\"command\":\"ping\",\"timeout_ms\":\"1\"}" },
        { "call/x", "{\"command\":\"ping\",\"at\":-1}" },
        { "call/x", "{\"command\":\"ping\",\"extra\":1}" },
        { "call/x", "{\"command\":\"a\",\"command\":\"b\"}" },
        { "call/", "{\"command\":\"ping\"}" },
        { "other/x", "{\"command\":\"ping\"}" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_FALSE(call_parse_request(bad[i][0], bad[i][1], &req,
                                           &desc));
        CU_ASSERT(desc && *desc);
        CU_ASSERT_PTR_NULL(req.command);
        free(desc);
    }
}

static void
test_render(void)
{
    json_t *result = json_pack("{s:i}", "handle", 5);
    char *text;

    text = call_render_response("x", 3, 1000, result, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(text, "{\"at\":1000,\"id\":\"x\","
                           "\"result\":{\"handle\":5},\"version\":3}");
    free(text);
    text = call_render_response("x", 3, 1000, NULL, CALL_E_NOT_FOUND,
                                "no \"foo\"");
    CU_ASSERT_STRING_EQUAL(text, "{\"at\":1000,\"error\":{\"class\":"
                           "\"CommandNotFound\",\"desc\":\"no \\\"foo\\\"\"},"
                           "\"id\":\"x\",\"version\":3}");
    free(text);
    json_decref(result);
}

static void
test_base64(void)
{
    static const char *const cases[][2] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *enc = base64_encode(cases[i][0], strlen(cases[i][0]));
        void *dec;
        size_t len;

        CU_ASSERT_STRING_EQUAL(enc, cases[i][1]);
        CU_ASSERT_TRUE_FATAL(base64_decode(enc, &dec, &len));
        CU_ASSERT_EQUAL(len, strlen(cases[i][0]));
        CU_ASSERT(!memcmp(dec, cases[i][0], len));
        free(enc);
        free(dec);
    }
    static const char *const bad[] = { "Zg=", "Z===", "Zg=a", "Zm9v!A==",
                                       "=Zm9", "Zm==Zm9v" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *dec = NULL;
        size_t len;

        CU_ASSERT_FALSE(base64_decode(bad[i], &dec, &len));
        CU_ASSERT_PTR_NULL(dec);
    }
}

/* Dispatch. */

/* Runs 'command' with 'args' (JSON text) through call_dispatch(); returns
 * the result, or NULL with the class in '*classp'. */
static json_t *
dispatch(struct cfix *f, const char *command, const char *args,
         const char **classp)
{
    struct call_request req = {
        .id = (char *) "t",
        .command = (char *) command,
        .args = json_loads(args, 0, NULL),
        .timeout_ms = 1000,
    };
    char *desc = NULL;
    json_t *r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(req.args);
    r = call_dispatch(f->c, &req, classp, &desc);
    CU_ASSERT((r != NULL) == (*classp == NULL));
    CU_ASSERT((desc != NULL) == (*classp != NULL));
    free(desc);
    json_decref(req.args);
    return r;
}

static void
test_dispatch(void)
{
    const char *class;
    struct cfix f;
    json_t *r;

    cfix_init(&f, false);
    r = dispatch(&f, "ping", "{}", &class);
    CU_ASSERT(json_is_object(r) && !json_object_size(r));
    json_decref(r);
    CU_ASSERT_PTR_NULL(dispatch(&f, "ping", "{\"x\":1}", &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    CU_ASSERT_PTR_NULL(dispatch(&f, "no-such", "{}", &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_NOT_FOUND);

    r = dispatch(&f, "time", "{}", &class);
    CU_ASSERT(json_integer_value(r) / 1000000 - time_wall_msec() < 5000);
    CU_ASSERT(json_integer_value(r) > 1600000000000000000LL);
    json_decref(r);

    r = dispatch(&f, "info", "{}", &class);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "version")),
                           PACKAGE_VERSION);
    CU_ASSERT(json_array_size(json_object_get(r, "supported_commands"))
              >= 10);
    json_decref(r);

    r = dispatch(&f, "os-info", "{}", &class);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(r, "kernel-release"));
    CU_ASSERT_PTR_NOT_NULL(json_object_get(r, "machine"));
    json_decref(r);

    r = dispatch(&f, "network-interfaces", "{}", &class);
    CU_ASSERT(json_is_array(r));
    size_t i;
    json_t *iface;
    bool lo = false;
    json_array_foreach (r, i, iface) {
        if (!strcmp(json_string_value(json_object_get(iface, "name")), "lo")) {
            lo = json_array_size(json_object_get(iface, "ip-addresses")) > 0;
        }
    }
    CU_ASSERT(lo);
    json_decref(r);

    r = dispatch(&f, "fsfreeze-status", "{}", &class);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "status")),
                           "thawed");
    json_decref(r);
    CU_ASSERT_PTR_NULL(dispatch(&f, "fsfreeze-freeze", "{}", &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);

    CU_ASSERT_PTR_NULL(dispatch(&f, "exec", "{\"path\":\"/bin/sh\"}",
                                &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_DENIED);
    cfix_destroy(&f);
}

/* Opens f->out for reading.  Returns its handle. */
static int64_t
open_for_reading(struct cfix *f)
{
    char *args = xasprintf("{\"path\":\"%s\"}", f->out);
    const char *class;
    json_t *r = dispatch(f, "file-open", args, &class);
    int64_t h = json_integer_value(json_object_get(r, "handle"));

    CU_ASSERT(h > 0);
    json_decref(r);
    free(args);
    return h;
}

static void
test_files(void)
{
    const char *class;
    struct cfix f;
    json_t *r;
    char *args;
    int64_t h;

    cfix_init(&f, false);
    args = xasprintf("{\"path\":\"%s\",\"mode\":\"w+\"}", f.out);
    r = dispatch(&f, "file-open", args, &class);
    free(args);
    h = json_integer_value(json_object_get(r, "handle"));
    CU_ASSERT(h > 0);
    json_decref(r);

    args = xasprintf("{\"handle\":%"PRId64",\"buf-b64\":\"aGVsbG8K\"}", h);
    r = dispatch(&f, "file-write", args, &class);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "count")), 6);
    json_decref(r);
    free(args);
    args = xasprintf("{\"handle\":%"PRId64",\"buf-b64\":\"!!\"}", h);
    CU_ASSERT_PTR_NULL(dispatch(&f, "file-write", args, &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    free(args);
    args = xasprintf("{\"handle\":%"PRId64"}", h);
    r = dispatch(&f, "file-close", args, &class);
    json_decref(r);
    CU_ASSERT_PTR_NULL(dispatch(&f, "file-close", args, &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    free(args);

    h = open_for_reading(&f);
    args = xasprintf("{\"handle\":%"PRId64",\"count\":4}", h);
    r = dispatch(&f, "file-read", args, &class);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "buf-b64")),
                           "aGVsbA==");
    CU_ASSERT(json_is_false(json_object_get(r, "eof")));
    json_decref(r);
    r = dispatch(&f, "file-read", args, &class);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "buf-b64")),
                           "bwo=");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "count")), 2);
    CU_ASSERT(json_is_true(json_object_get(r, "eof")));
    json_decref(r);
    free(args);
    args = xasprintf("{\"handle\":%"PRId64",\"offset\":-2,"
                     "\"whence\":\"end\"}", h);
    r = dispatch(&f, "file-seek", args, &class);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "position")), 4);
    json_decref(r);
    free(args);
    args = xasprintf("{\"handle\":%"PRId64",\"offset\":1,"
                     "\"whence\":\"middle\"}", h);
    CU_ASSERT_PTR_NULL(dispatch(&f, "file-seek", args, &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    free(args);
    args = xasprintf("{\"handle\":%"PRId64",\"count\":%d}", h,
                     CALL_FILE_READ_MAX + 1);
    CU_ASSERT_PTR_NULL(dispatch(&f, "file-read", args, &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    free(args);

    CU_ASSERT_PTR_NULL(dispatch(&f, "file-open", "{\"path\":\"/\"}",
                                &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    CU_ASSERT_PTR_NULL(dispatch(&f, "file-open", "{\"path\":\"rel\"}",
                                &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    CU_ASSERT_PTR_NULL(dispatch(&f, "file-open",
                                "{\"path\":\"/nonexistent/x\"}", &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_FAILED);
    CU_ASSERT_PTR_NULL(dispatch(&f, "file-open",
                                "{\"path\":\"/tmp/x\",\"mode\":\"q\"}",
                                &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    cfix_destroy(&f);
}

/* file-export. */

/* Returns how many files are in directory 'dir'. */
static int
count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((de = readdir(d))) {
        n += de->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* Runs file-export on handle 'h' with 'count' (-1: none) and checks the
 * result: 'n' bytes, sha256 'digest', 'eof', and one export registered
 * whose file holds them.  Returns the file's path (the caller frees it). */
static char *
check_export(struct cfix *f, int64_t h, int count, int n,
             const char *digest, bool eof)
{
    char *args = (count < 0
                  ? xasprintf("{\"handle\":%"PRId64"}", h)
                  : xasprintf("{\"handle\":%"PRId64",\"count\":%d}", h,
                              count));
    const char *class, *path;
    json_t *r = dispatch(f, "file-export", args, &class), *e;
    char *text = NULL, *copy = NULL;
    size_t len = 0;

    free(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "count")), n);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "size")), n);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "digest")),
                           digest);
    CU_ASSERT_EQUAL(json_is_true(json_object_get(r, "eof")), eof);
    CU_ASSERT_EQUAL(json_object_size(f->exports), 1);
    CU_ASSERT_EQUAL(count_files(f->export_dir), 1);
    json_object_foreach (f->exports, path, e) {
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(e, "digest")), digest);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(e, "size")), n);
        text = read_file(path, &len);
        CU_ASSERT_PTR_NOT_NULL(text);
        CU_ASSERT_EQUAL(len, n);
        copy = xstrdup(path);
        free(text);
    }
    json_decref(r);
    return copy;
}

static void
test_export(void)
{
    static const char *const bad[] = {
        "{\"handle\":1}", "{\"handle\":\"x\"}", "{\"count\":1}",
        "{\"handle\":H,\"count\":0}", "{\"handle\":H,\"count\":-1}",
        "{\"handle\":H,\"count\":65}", "{\"handle\":H,\"count\":1.5}",
        "{\"handle\":H,\"offset\":0}",
    };
    const char *class;
    struct cfix f;
    char *args, *first, *path;
    int64_t h;
    json_t *r;
    FILE *file;

    cfix_init(&f, false);
    file = fopen(f.out, "w");
    CU_ASSERT_FATAL(file != NULL);
    fputs("hello world\n", file);
    fclose(file);
    h = open_for_reading(&f);

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char hs[32];
        const char *at = strchr(bad[i], 'H');

        snprintf(hs, sizeof hs, "%"PRId64, h);
        args = (at ? xasprintf("%.*s%s%s", (int) (at - bad[i]), bad[i], hs,
                               at + 1)
                   : xstrdup(bad[i]));
        CU_ASSERT_PTR_NULL(dispatch(&f, "file-export", args, &class));
        CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
        free(args);
    }
    CU_ASSERT_EQUAL(json_object_size(f.exports), 0);

    /* 5 bytes, then a file-read goes on after them. */
    first = check_export(&f, h, 5, 5, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e"
                         "5c1fa7425e73043362938b9824", false);
    args = xasprintf("{\"handle\":%"PRId64",\"count\":3}", h);
    r = dispatch(&f, "file-read", args, &class);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "buf-b64")),
                           "IHdv");
    json_decref(r);
    free(args);

    /* To the end: replaces the first export. */
    path = check_export(&f, h, -1, 4, "9413f219292fc7d0f60fcaea2a3ab7a7b73d"
                        "89a938e5b9e9be040a9b7984f98e", true);
    CU_ASSERT(access(first, F_OK) && errno == ENOENT);
    CU_ASSERT_STRING_NOT_EQUAL(first, path);
    free(first);
    free(path);

    /* At the end: nothing, the empty content. */
    free(check_export(&f, h, 10, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae4"
                      "1e4649b934ca495991b7852b855", true));

    /* Exactly the rest: eof too. */
    args = xasprintf("{\"handle\":%"PRId64",\"offset\":0,"
                     "\"whence\":\"set\"}", h);
    json_decref(dispatch(&f, "file-seek", args, &class));
    free(args);
    free(check_export(&f, h, 12, 12, "a948904f2f0f479b8f8197694b30184b0d2e"
                      "d1c1cd2a1ec0fb85d299a192a447", true));
    CU_ASSERT_EQUAL(stats(&f).exports, 4);
    CU_ASSERT_EQUAL(stats(&f).exported_bytes, 21);

    /* file-close ends it. */
    args = xasprintf("{\"handle\":%"PRId64"}", h);
    json_decref(dispatch(&f, "file-close", args, &class));
    CU_ASSERT_EQUAL(json_object_size(f.exports), 0);
    CU_ASSERT_EQUAL(count_files(f.export_dir), 0);
    CU_ASSERT_PTR_NULL(dispatch(&f, "file-export", args, &class));
    CU_ASSERT_STRING_EQUAL(class, CALL_E_BAD_ARGS);
    free(args);

    /* A start empties the directory. */
    call_destroy(f.c);
    path = xasprintf("%s/stale", f.export_dir);
    file = fopen(path, "w");
    CU_ASSERT_FATAL(file != NULL);
    fclose(file);
    free(path);
    start(&f, false);
    CU_ASSERT_EQUAL(count_files(f.export_dir), 0);

    /* An export left open ends with the runner (cfix_destroy() checks). */
    h = open_for_reading(&f);
    free(check_export(&f, h, 12, 12, "a948904f2f0f479b8f8197694b30184b0d2e"
                      "d1c1cd2a1ec0fb85d299a192a447", true));
    cfix_destroy(&f);
}

/* The runner. */

static void
test_requests(void)
{
    struct cfix f;
    json_t *r;

    cfix_init(&f, false);
    r = call(&f, "a", "{\"command\":\"ping\"}");
    CU_ASSERT(json_is_object(json_object_get(r, "result")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "id")), "a");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "version")), 1);
    json_decref(r);

    r = call(&f, "b", "{\"command\":\"frobnicate\"}");
    CU_ASSERT_STRING_EQUAL(error_class(r), CALL_E_NOT_FOUND);
    json_decref(r);

    r = call(&f, "c", "{\"command\":");
    CU_ASSERT_STRING_EQUAL(error_class(r), CALL_E_BAD_REQUEST);
    json_decref(r);

    r = call(&f, "d", "{\"command\":\"ping\",\"timeout_ms\":1000,"
             "\"at\":1000}");
    CU_ASSERT_STRING_EQUAL(error_class(r), CALL_E_TIMEOUT);
    json_decref(r);

    CU_ASSERT_EQUAL(stats(&f).requests, 4);
    CU_ASSERT_EQUAL(stats(&f).ok, 1);
    CU_ASSERT_EQUAL(stats(&f).not_found, 1);
    CU_ASSERT_EQUAL(stats(&f).bad_requests, 1);
    CU_ASSERT_EQUAL(stats(&f).timeouts, 1);

    /* The same version again is not answered again; deleting withdraws the
     * response. */
    deliver(&f, "call/a", "{\"command\":\"ping\"}", 1);
    run_idle(&f, 5000);
    CU_ASSERT_EQUAL(stats(&f).requests, 4);
    deliver(&f, "call/a", NULL, 0);
    run_idle(&f, 5000);
    CU_ASSERT_PTR_NULL(response(&f, "a"));
    cfix_destroy(&f);
}

/* Returns the number of lines of 'path' (0 if it is missing). */
static int
count_lines(const char *path)
{
    char *text = read_file(path, NULL);
    int n = 0;

    for (const char *p = text; p && *p; p++) {
        n += *p == '\n';
    }
    free(text);
    return n;
}

static void
test_exec(void)
{
    struct cfix f;
    json_t *r;
    char *req;

    cfix_init(&f, true);
    r = call(&f, "e1", "{\"command\":\"exec\",\"args\":{\"path\":\"/bin/sh\","
             "\"arg\":[\"-c\",\"cat; echo err >&2; exit 3\"],"
             "\"input-data\":\"aGk=\"}}");
    json_t *res = json_object_get(r, "result");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "exitcode")), 3);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(res,
                                                             "out-data")),
                           "aGk=");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(res,
                                                             "err-data")),
                           "ZXJyCg==");
    json_decref(r);

    r = call(&f, "e2",
             "{\"command\":\"exec\",\"args\":{\"path\":\"/bin/ls\"}}");
    CU_ASSERT_STRING_EQUAL(error_class(r), CALL_E_DENIED);
    json_decref(r);

    long long t0 = time_msec();
    r = call(&f, "e3", "{\"command\":\"exec\",\"timeout_ms\":300,"
             "\"args\":{\"path\":\"/bin/sh\",\"arg\":[\"-c\",\"sleep 30\"]}}");
    CU_ASSERT_STRING_EQUAL(error_class(r), CALL_E_TIMEOUT);
    CU_ASSERT(time_msec() - t0 < 5000);
    json_decref(r);

    /* Answered once: a restart does not run it again. */
    req = xasprintf("{\"command\":\"exec\",\"args\":{\"path\":\"/bin/sh\","
                    "\"arg\":[\"-c\",\"echo x >> %s\"]}}", f.out);
    r = call(&f, "once", req);
    json_decref(r);
    call_destroy(f.c);
    datastore_close(f.ds);
    open_store(&f);
    start(&f, true);
    run_idle(&f, 5000);
    CU_ASSERT_EQUAL(count_lines(f.out), 1);
    r = response(&f, "once");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(r, "result"), "exitcode")), 0);
    json_decref(r);

    /* Cut short by a stop: answered Interrupted, not run again. */
    deliver(&f, "call/cut", "{\"command\":\"exec\",\"args\":{\"path\":"
            "\"/bin/sh\",\"arg\":[\"-c\",\"sleep 30\"]}}", 1);
    call_run(f.c);
    CU_ASSERT_FALSE(call_is_idle(f.c));
    call_destroy(f.c);
    start(&f, true);
    run_idle(&f, 5000);
    r = response(&f, "cut");
    CU_ASSERT_STRING_EQUAL(error_class(r), CALL_E_INTERRUPTED);
    json_decref(r);
    free(req);
    cfix_destroy(&f);
}

static void
test_too_large(void)
{
    struct ds_pub_limits limits = { .max_value_bytes = 300 };
    struct cfix f;
    json_t *r;

    cfix_init(&f, false);
    datastore_set_publish_limits(f.ds, &limits);
    r = call(&f, "big", "{\"command\":\"info\"}");
    CU_ASSERT_STRING_EQUAL(error_class(r), CALL_E_TOO_LARGE);
    CU_ASSERT_EQUAL(stats(&f).too_large, 1);
    json_decref(r);

    /* Over the publication rate: stored again, later, as it is. */
    limits.max_value_bytes = 0;
    limits.max_publish_rate = 1;
    datastore_set_publish_limits(f.ds, &limits);
    deliver(&f, "call/p1", "{\"command\":\"ping\"}", 1);
    deliver(&f, "call/p2", "{\"command\":\"ping\"}", 1);
    deliver(&f, "call/p3", "{\"command\":\"ping\"}", 1);
    run_idle(&f, 5000);
    for (int i = 1; i <= 3; i++) {
        char id[8];

        snprintf(id, sizeof id, "p%d", i);
        r = response(&f, id);
        CU_ASSERT(json_is_object(json_object_get(r, "result")));
        json_decref(r);
    }
    CU_ASSERT(stats(&f).store_errors >= 1);
    CU_ASSERT_EQUAL(stats(&f).too_large, 1);
    cfix_destroy(&f);
}

static const struct unit_test tests[] = {
    { "request ids", test_ids },
    { "parsing requests", test_parse },
    { "rendering responses", test_render },
    { "base64", test_base64 },
    { "dispatch of in-loop commands", test_dispatch },
    { "file handles", test_files },
    { "file-export", test_export },
    { "requests through the datastore", test_requests },
    { "exec: output, allowlist, timeout, exactly once", test_exec },
    { "a response over the limits", test_too_large },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("guest-call", tests);
}
