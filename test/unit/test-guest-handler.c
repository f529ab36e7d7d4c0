/* Tests for chand-guest/handler: the pure parts (kinds, outcomes), and the
 * runner with real handler scripts in a scratch directory and records in
 * a real datastore. */

#include <config.h>
#include "unit.h"
#include "handler.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datastore.h"
#include "guest-fixture.h"
#include "poll-loop.h"
#include "util.h"

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"

/* A scratch directory with the datastore, the handlers directory "h" and
 * a directory "out" the handlers write to. */
struct hfix {
    struct scratch sc;
    char dir[160];
    char out[160];
    struct datastore *ds;
    struct handler *h;
    uint64_t seq;
    unsigned int max_running;   /* Seen at once. */
};

static void
changed(void *f_, const struct ds_change *change)
{
    struct hfix *f = f_;

    if (f->h) {
        handler_record_changed(f->h, change);
    }
}

static void
open_store(struct hfix *f)
{
    f->ds = open_ds(f->sc.path);
    datastore_set_change_cb(f->ds, changed, f);
}

static void
hfix_init(struct hfix *f)
{
    memset(f, 0, sizeof *f);
    scratch_init(&f->sc, "handler");
    scratch_file(&f->sc, "h", f->dir, sizeof f->dir);
    scratch_file(&f->sc, "out", f->out, sizeof f->out);
    CU_ASSERT_FATAL(mkdir(f->dir, 0755) == 0);
    CU_ASSERT_FATAL(mkdir(f->out, 0700) == 0);
    open_store(f);
    CU_ASSERT_FATAL(datastore_begin(f->ds) == 0);
    CU_ASSERT_FATAL(datastore_rebase(f->ds, 1, 0) == 0);
    CU_ASSERT_FATAL(datastore_commit(f->ds) == 0);
}

static void
start(struct hfix *f, unsigned int timeout, unsigned int max_running)
{
    struct handler_config c = {
        .dir = f->dir,
        .timeout = timeout,
        .max_running = max_running,
        .quarantine_dir = "/q",
    };

    f->h = handler_create(&c, f->ds);
    CU_ASSERT_FATAL(f->h != NULL);
}

static void
hfix_destroy(struct hfix *f)
{
    char *cmd = xasprintf("rm -rf %s", f->sc.dir);

    handler_destroy(f->h);
    datastore_close(f->ds);
    CU_ASSERT(system(cmd) == 0);
    free(cmd);
}

/* Writes handler 'kind' as a shell script running 'body' (a printf
 * format: "%1$s" is the "out" directory), mode 'mode'. */
static void
write_handler(const struct hfix *f, const char *kind, mode_t mode,
              const char *body)
{
    char *path = xasprintf("%s/%s", f->dir, kind);
    char *text = xasprintf("#!/bin/sh\nOUT=%s\n%s\n", f->out, body);
    FILE *file;

    unlink(path);
    file = fopen(path, "w");
    CU_ASSERT_FATAL(file != NULL);
    fputs(text, file);
    fclose(file);
    CU_ASSERT(chmod(path, mode) == 0);
    free(text);
    free(path);
}

/* Delivers 'key' = 'value' at 'version' (NULL 'value': deletes it). */
static void
deliver(struct hfix *f, const char *key, const char *value, int64_t version)
{
    deliver_record(f->ds, &f->seq, key, value, version);
}

/* Runs the runner until it is idle (at most 'max_ms'); returns the ms it
 * took. */
static long long
run_idle(struct hfix *f, long long max_ms)
{
    long long start_ms = time_msec(), end = start_ms + max_ms;

    handler_run(f->h);
    while (!handler_is_idle(f->h) && time_msec() < end) {
        json_t *st = handler_status_json(f->h);
        unsigned int n = json_array_size(json_object_get(st, "running"));

        f->max_running = n > f->max_running ? n : f->max_running;
        json_decref(st);
        handler_wait(f->h);
        poll_timer_wait_until(end);
        poll_block();
        handler_run(f->h);
    }
    CU_ASSERT(handler_is_idle(f->h));
    return time_msec() - start_ms;
}

/* Returns the result record of 'key' (parsed; the caller decrefs it), or
 * NULL if there is none. */
static json_t *
result(struct hfix *f, const char *key)
{
    char *rkey = xasprintf("result/%s", key);
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

/* Asserts that the result of 'key' has 'status', 'version' and, if
 * nonnull, 'reason' (a prefix of it) and 'detail'. */
static void
assert_result(struct hfix *f, const char *key, const char *status,
              int64_t version, const char *reason, const char *detail)
{
    json_t *r = result(f, key);
    const char *got_reason = json_string_value(json_object_get(r, "reason"));
    const char *got_detail = json_string_value(json_object_get(r, "detail"));

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "status")),
                           status);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "key")),
                           key);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "version")),
                    version);
    CU_ASSERT(json_integer_value(json_object_get(r, "at")) > 0);
    if (reason) {
        CU_ASSERT_PTR_NOT_NULL(got_reason);
        if (got_reason && strncmp(got_reason, reason, strlen(reason))) {
            fprintf(stderr, "reason: %s\n", got_reason);
            CU_FAIL("reason");
        }
    } else {
        CU_ASSERT_PTR_NULL(got_reason);
    }
    if (detail) {
        CU_ASSERT_PTR_NOT_NULL(got_detail);
        CU_ASSERT(got_detail && !strcmp(got_detail, detail));
    }
    json_decref(r);
}

static struct handler_stats
stats(const struct hfix *f)
{
    struct handler_stats s;

    handler_get_stats(f->h, &s);
    return s;
}

static char *
read_out(const struct hfix *f, const char *name)
{
    char *path = xasprintf("%s/%s", f->out, name);
    char *text = read_file(path, NULL);

    free(path);
    return text;
}

/* The pure parts. */

static void
test_kinds(void)
{
    CU_ASSERT_STRING_EQUAL(handler_kind_of("verdict/x"), "verdict");
    CU_ASSERT_STRING_EQUAL(handler_kind_of("notice/x"), "notice");
    CU_ASSERT_STRING_EQUAL(handler_kind_of("install/"), "install");
    CU_ASSERT_STRING_EQUAL(handler_kind_of("restore/a/b"), "restore");
    CU_ASSERT_PTR_NULL(handler_kind_of("verdict"));
    CU_ASSERT_PTR_NULL(handler_kind_of("verdicts/x"));
    CU_ASSERT_PTR_NULL(handler_kind_of("../verdict/x"));
    CU_ASSERT_PTR_NULL(handler_kind_of("result/verdict/x"));
    CU_ASSERT_PTR_NULL(handler_kind_of("net/dns"));
}

/* Evaluates and returns the outcome's class, with its reason in 'reason'
 * ("" if none). */
static enum handler_class
eval(int status, bool timed_out, const char *out, const char *err,
     char reason[512])
{
    struct handler_outcome o;
    enum handler_class c;

    handler_evaluate(status, timed_out, 7, out, strlen(out), err,
                     strlen(err), &o);
    snprintf(reason, 512, "%s", o.reason ? o.reason : "");
    c = o.class;
    handler_outcome_destroy(&o);
    return c;
}

static void
test_evaluate(void)
{
    char reason[512], big[600];
    struct handler_outcome o;

    CU_ASSERT_EQUAL(eval(0, false, "", "", reason), HANDLER_OK);
    CU_ASSERT_EQUAL(eval(0, false, " \n", "noise", reason), HANDLER_OK);
    CU_ASSERT_EQUAL(eval(0, true, "", "", reason), HANDLER_TIMEOUT);
    CU_ASSERT_STRING_EQUAL(reason, "timed out after 7 s");
    CU_ASSERT_EQUAL(eval(SIGSEGV, false, "", "", reason), HANDLER_CRASH);
    CU_ASSERT_STRING_EQUAL(reason, "crashed: signal 11");
    CU_ASSERT_EQUAL(eval(3 << 8, false, "", "one\ntwo\n\n", reason),
                    HANDLER_FAILED);
    CU_ASSERT_STRING_EQUAL(reason, "exit status 3: two");
    CU_ASSERT_EQUAL(eval(1 << 8, false, "{}", "", reason), HANDLER_FAILED);
    CU_ASSERT_STRING_EQUAL(reason, "exit status 1");
    CU_ASSERT_EQUAL(eval(2 << 8, false, "", "bad\x01\xff byte", reason),
                    HANDLER_FAILED);
    CU_ASSERT_STRING_EQUAL(reason, "exit status 2: bad?? byte");
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    eval(1 << 8, false, "", big, reason);
    CU_ASSERT_EQUAL(strlen(reason), strlen("exit status 1: ") + 256);

    CU_ASSERT_EQUAL(eval(0, false, "hello", "", reason), HANDLER_BAD_OUTPUT);
    CU_ASSERT_STRING_EQUAL(reason, "unreadable output");
    CU_ASSERT_EQUAL(eval(0, false, "{} {}", "", reason), HANDLER_BAD_OUTPUT);
    CU_ASSERT_EQUAL(eval(0, false, "[1]", "", reason), HANDLER_BAD_OUTPUT);
    CU_ASSERT_EQUAL(eval(0, false, "{\"detail\": 1}", "", reason),
                    HANDLER_BAD_OUTPUT);
    CU_ASSERT_EQUAL(eval(0, false, "{\"object_flags\": [\"Bad\"]}", "",
                         reason), HANDLER_BAD_OUTPUT);
    CU_ASSERT_EQUAL(eval(0, false, "{\"object_flags\": \"x\"}", "", reason),
                    HANDLER_BAD_OUTPUT);

    const char *out = ("{\"detail\":\"done\",\"object_flags\":"
                       "[\"quarantined\"],\"other\":1}\n");
    handler_evaluate(0, false, 7, out, strlen(out), "", 0, &o);
    CU_ASSERT_EQUAL(o.class, HANDLER_OK);
    CU_ASSERT_STRING_EQUAL(o.detail, "done");
    CU_ASSERT_EQUAL(json_array_size(o.object_flags), 1);
    handler_outcome_destroy(&o);
}

/* The runner. */

static void
test_ok_stdin_env(void)
{
    struct hfix f;

    hfix_init(&f);
    write_handler(&f, "notice", 0755,
                  "cat > $OUT/stdin; env | sort > $OUT/env; pwd > $OUT/pwd\n"
                  "echo '{\"detail\": \"read it\"}'");
    start(&f, 5, 2);
    deliver(&f, "notice/" D1, "{\"digest\":\"" D1 "\",\"size\":3}", 4);
    deliver(&f, "net/dns", "{}", 1);
    run_idle(&f, 5000);
    assert_result(&f, "notice/" D1, "ok", 4, NULL, "read it");
    CU_ASSERT_PTR_NULL(result(&f, "net/dns"));

    char *in = read_out(&f, "stdin");
    CU_ASSERT_STRING_EQUAL(in, "{\"key\":\"notice/" D1 "\",\"kind\":\"notice\","
                           "\"value\":{\"digest\":\"" D1 "\",\"size\":3},"
                           "\"version\":4}");
    free(in);
    char *env = read_out(&f, "env");
    CU_ASSERT_PTR_NOT_NULL(strstr(env, "CHAND_HANDLER_KIND=notice\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(env, "CHAND_QUARANTINE_DIR=/q\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(env, "LANG=C\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(env, "PATH=" HANDLER_PATH "\n"));
    CU_ASSERT_PTR_NULL(strstr(env, "HOME="));
    free(env);
    char *pwd = read_out(&f, "pwd");
    CU_ASSERT_STRING_EQUAL(pwd, "/\n");
    free(pwd);

    int64_t version = 0;
    CU_ASSERT_EQUAL(datastore_get_handled(f.ds, "notice/" D1, &version), 0);
    CU_ASSERT_EQUAL(version, 4);
    CU_ASSERT_EQUAL(stats(&f).runs, 1);
    CU_ASSERT_EQUAL(stats(&f).ok, 1);

    /* The same version again changes nothing; a new one runs. */
    deliver(&f, "notice/" D1, "{\"digest\":\"" D1 "\",\"size\":3}", 4);
    run_idle(&f, 5000);
    CU_ASSERT_EQUAL(stats(&f).runs, 1);
    deliver(&f, "notice/" D1, "{\"digest\":\"" D1 "\",\"size\":4}", 5);
    run_idle(&f, 5000);
    CU_ASSERT_EQUAL(stats(&f).runs, 2);
    assert_result(&f, "notice/" D1, "ok", 5, NULL, "read it");

    /* Deleted: the result is withdrawn. */
    deliver(&f, "notice/" D1, NULL, 0);
    run_idle(&f, 5000);
    CU_ASSERT_PTR_NULL(result(&f, "notice/" D1));
    CU_ASSERT_EQUAL(datastore_get_handled(f.ds, "notice/" D1, &version),
                    ENOENT);
    hfix_destroy(&f);
}

static void
test_failures(void)
{
    struct hfix f;

    hfix_init(&f);
    write_handler(&f, "notice", 0755, "echo first >&2; echo 'it broke' >&2\n"
                  "exit 3");
    write_handler(&f, "restore", 0755, "kill -SEGV $$");
    write_handler(&f, "install", 0755, "echo garbage");
    start(&f, 5, 4);
    deliver(&f, "notice/a", "1", 1);
    deliver(&f, "restore/a", "1", 1);
    deliver(&f, "install/a", "1", 1);
    run_idle(&f, 5000);
    assert_result(&f, "notice/a", "failed", 1, "exit status 3: it broke",
                  NULL);
    assert_result(&f, "restore/a", "failed", 1, "crashed: signal 11", NULL);
    assert_result(&f, "install/a", "failed", 1, "unreadable output", NULL);
    struct handler_stats s = stats(&f);
    CU_ASSERT_EQUAL(s.runs, 3);
    CU_ASSERT_EQUAL(s.failed, 3);
    CU_ASSERT_EQUAL(s.crashes, 1);
    CU_ASSERT_EQUAL(s.bad_output, 1);
    hfix_destroy(&f);
}

/* True if 'pid' exists and is not a zombie. */
static bool
is_alive(pid_t pid)
{
    char path[64], *stat;
    bool alive;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long) pid);
    stat = read_file(path, NULL);
    alive = stat && strchr(stat, ')') && strchr(stat, ')')[2] != 'Z';
    free(stat);
    return alive;
}

static void
test_timeout(void)
{
    struct hfix f;
    long long ms;

    hfix_init(&f);
    /* A child of the handler in its process group goes too. */
    write_handler(&f, "verdict", 0755,
                  "sleep 60 & echo $! > $OUT/child; sleep 60");
    start(&f, 1, 2);
    deliver(&f, "verdict/" D1, "{}", 1);
    ms = run_idle(&f, 10000);
    CU_ASSERT(ms >= 900 && ms < 5000);
    assert_result(&f, "verdict/" D1, "failed", 1, "timed out after 1 s",
                  NULL);
    CU_ASSERT_EQUAL(stats(&f).timeouts, 1);

    char *child = read_out(&f, "child");
    CU_ASSERT_PTR_NOT_NULL_FATAL(child);
    pid_t pid = atoi(child);
    free(child);
    usleep(100 * 1000);
    CU_ASSERT(pid > 0 && !is_alive(pid));
    hfix_destroy(&f);
}

static void
test_concurrency(void)
{
    struct hfix f;
    long long ms;

    hfix_init(&f);
    write_handler(&f, "notice", 0755, "sleep 0.4");
    start(&f, 10, 2);
    for (int i = 0; i < 5; i++) {
        char key[32];

        snprintf(key, sizeof key, "notice/%d", i);
        deliver(&f, key, "1", 1);
    }
    ms = run_idle(&f, 10000);
    CU_ASSERT_EQUAL(f.max_running, 2);
    CU_ASSERT(ms >= 1100);      /* Three rounds of 0.4 s. */
    CU_ASSERT_EQUAL(stats(&f).ok, 5);
    hfix_destroy(&f);
}

static void
test_newer_version_waits(void)
{
    struct hfix f;

    hfix_init(&f);
    write_handler(&f, "notice", 0755, "cat >> $OUT/seen; echo >> $OUT/seen;"
                  " sleep 0.3");
    start(&f, 10, 2);
    deliver(&f, "notice/a", "1", 1);
    handler_run(f.h);           /* Starts version 1. */
    deliver(&f, "notice/a", "2", 2);
    run_idle(&f, 5000);
    CU_ASSERT_EQUAL(stats(&f).runs, 2);
    assert_result(&f, "notice/a", "ok", 2, NULL, NULL);
    char *seen = read_out(&f, "seen");
    CU_ASSERT_PTR_NOT_NULL(strstr(seen, "\"version\":1}\n{"));
    CU_ASSERT_PTR_NOT_NULL(strstr(seen, "\"version\":2}\n"));
    free(seen);
    hfix_destroy(&f);
}

static void
test_persisted(void)
{
    struct hfix f;

    hfix_init(&f);
    write_handler(&f, "notice", 0755, "echo run >> $OUT/runs");
    start(&f, 5, 2);
    deliver(&f, "notice/a", "1", 1);
    deliver(&f, "notice/b", "1", 1);
    run_idle(&f, 5000);
    CU_ASSERT_EQUAL(stats(&f).runs, 2);

    /* Reopened: nothing runs again; a record deleted meanwhile loses its
     * result; a version delivered meanwhile runs. */
    handler_destroy(f.h);
    f.h = NULL;
    deliver(&f, "notice/b", NULL, 0);
    deliver(&f, "notice/c", "1", 1);
    datastore_close(f.ds);
    open_store(&f);
    start(&f, 5, 2);
    run_idle(&f, 5000);
    CU_ASSERT_EQUAL(stats(&f).runs, 1);
    assert_result(&f, "notice/a", "ok", 1, NULL, NULL);
    CU_ASSERT_PTR_NULL(result(&f, "notice/b"));
    assert_result(&f, "notice/c", "ok", 1, NULL, NULL);

    /* A run cut short by a stop runs again at the next start. */
    write_handler(&f, "notice", 0755, "echo run >> $OUT/runs; sleep 60");
    deliver(&f, "notice/d", "1", 1);
    handler_run(f.h);
    CU_ASSERT_FALSE(handler_is_idle(f.h));
    handler_destroy(f.h);
    f.h = NULL;
    write_handler(&f, "notice", 0755, "echo run >> $OUT/runs");
    start(&f, 5, 2);
    run_idle(&f, 5000);
    CU_ASSERT_EQUAL(stats(&f).runs, 1);
    assert_result(&f, "notice/d", "ok", 1, NULL, NULL);
    hfix_destroy(&f);
}

static void
test_unsafe(void)
{
    struct hfix f;
    char reason[512], *path, *target;

    hfix_init(&f);
    start(&f, 5, 2);

    /* Missing. */
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "notice", reason,
                                       sizeof reason), ENOENT);
    deliver(&f, "notice/a", "1", 1);
    run_idle(&f, 5000);
    assert_result(&f, "notice/a", "failed", 1, "no handler: ", NULL);

    /* A symbolic link to a good handler. */
    write_handler(&f, "install", 0755, "exit 0");
    path = xasprintf("%s/notice", f.dir);
    target = xasprintf("%s/install", f.dir);
    CU_ASSERT(symlink(target, path) == 0);
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "notice", reason,
                                       sizeof reason), ELOOP);
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "install", reason,
                                       sizeof reason), 0);
    deliver(&f, "notice/a", "2", 2);
    run_idle(&f, 5000);
    assert_result(&f, "notice/a", "failed", 2, "unsafe handler: ", NULL);
    unlink(path);

    /* Writable by others, not executable, a directory. */
    write_handler(&f, "notice", 0757, "exit 0");
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "notice", reason,
                                       sizeof reason), EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "writable by group or others"));
    write_handler(&f, "notice", 0644, "exit 0");
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "notice", reason,
                                       sizeof reason), EACCES);
    unlink(path);
    CU_ASSERT(mkdir(path, 0755) == 0);
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "notice", reason,
                                       sizeof reason), EINVAL);
    rmdir(path);

    /* A directory writable by others; kinds that would leave it. */
    CU_ASSERT(chmod(f.dir, 0777) == 0);
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "install", reason,
                                       sizeof reason), EPERM);
    CU_ASSERT(chmod(f.dir, 0755) == 0);
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "../install", reason,
                                       sizeof reason), EINVAL);
    CU_ASSERT_EQUAL(handler_check_file(f.dir, "..", reason,
                                       sizeof reason), EINVAL);
    CU_ASSERT_EQUAL(stats(&f).refused, 2);
    free(path);
    free(target);
    hfix_destroy(&f);
}

static void
test_object_flags(void)
{
    struct hfix f;
    char *value = NULL;

    hfix_init(&f);
    CU_ASSERT_FATAL(datastore_object_add(f.ds, "/srv/a", D1, 3, NULL, NULL)
                    == 0);
    write_handler(&f, "verdict", 0755,
                  "echo '{\"object_flags\":[\"quarantined\"],"
                  "\"detail\":\"moved 1\"}'");
    start(&f, 5, 2);
    deliver(&f, "verdict/" D1, "{\"action\":\"quarantine\"}", 1);
    run_idle(&f, 5000);
    assert_result(&f, "verdict/" D1, "ok", 1, NULL, "moved 1");
    CU_ASSERT_EQUAL(datastore_get_published(f.ds, "obj/" D1, &value, NULL,
                                            NULL, NULL), 0);
    CU_ASSERT_STRING_EQUAL(value, "{\"size\":3,\"paths\":[\"/srv/a\"],"
                           "\"flags\":[\"quarantined\"],\"params\":{}}");
    free(value);
    hfix_destroy(&f);
}

static const struct unit_test tests[] = {
    { "kinds", test_kinds },
    { "outcomes", test_evaluate },
    { "ok: stdin, environment, versions, deletion", test_ok_stdin_env },
    { "exit status, crash, garbage", test_failures },
    { "timeout kills the process group", test_timeout },
    { "concurrency limit", test_concurrency },
    { "a newer version waits for the run", test_newer_version_waits },
    { "handled versions persist", test_persisted },
    { "unsafe handlers refused", test_unsafe },
    { "verdict object flags", test_object_flags },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("guest-handler", tests);
}
