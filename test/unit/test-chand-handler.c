/* Tests for utilities/handler-actions, the work of chand-handler: input
 * parsing, and quarantine, delete, release, install and restore on real
 * files. */

#include <config.h>
#include "unit.h"
#include "handler-actions.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* sha256 of "hello\n" and of "abc". */
#define SHA_HELLO \
    "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define SHA_ABC \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void
test_valid(void)
{
    CU_ASSERT(ha_valid_digest(SHA_HELLO));
    CU_ASSERT_FALSE(ha_valid_digest("5891B5"));
    CU_ASSERT_FALSE(ha_valid_digest(NULL));
    CU_ASSERT(ha_valid_path("/a/b"));
    CU_ASSERT(ha_valid_path("/a/.b/..c"));
    CU_ASSERT_FALSE(ha_valid_path("a/b"));
    CU_ASSERT_FALSE(ha_valid_path("/a/../etc/passwd"));
    CU_ASSERT_FALSE(ha_valid_path("/a/./b"));
    CU_ASSERT_FALSE(ha_valid_path("/a//b"));
    CU_ASSERT_FALSE(ha_valid_path("/a/"));
    CU_ASSERT_FALSE(ha_valid_path("/.."));
    CU_ASSERT_FALSE(ha_valid_path(NULL));
}

/* Parses 'text'; returns the error (freed here) == NULL. */
static bool
parses(const char *text, struct ha_input *in)
{
    char *error = ha_parse_input(text, strlen(text), in);
    bool ok = !error;

    free(error);
    return ok;
}

static void
test_parse(void)
{
    struct ha_input in;
    struct ha_result res;

    CU_ASSERT_FATAL(parses("{\"key\":\"verdict/" SHA_HELLO "\",\"kind\":"
                           "\"verdict\",\"version\":3,\"value\":{\"action\":"
                           "\"delete\",\"digest\":\"" SHA_HELLO "\",\"paths\""
                           ":[\"/a\",\"/b\"],\"verdict\":\"infected\"}}",
                           &in));
    CU_ASSERT_STRING_EQUAL(in.kind, "verdict");
    CU_ASSERT_STRING_EQUAL(in.action, "delete");
    CU_ASSERT_STRING_EQUAL(in.digest, SHA_HELLO);
    CU_ASSERT_EQUAL(in.n_paths, 2);
    CU_ASSERT_STRING_EQUAL(in.paths[1], "/b");
    ha_input_destroy(&in);

    /* The default action. */
    CU_ASSERT(parses("{\"kind\":\"verdict\",\"value\":{\"digest\":\""
                     SHA_HELLO "\",\"paths\":[]}}", &in));
    CU_ASSERT_STRING_EQUAL(in.action, "quarantine");
    ha_input_destroy(&in);

    CU_ASSERT_FATAL(parses("{\"kind\":\"notice\",\"value\":{\"digest\":\""
                           SHA_HELLO "\",\"paths\":[\"/a\"],\"size\":3,"
                           "\"superseded_by\":\"" SHA_ABC "\"}}", &in));
    ha_notice(&in, &res);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(res.output, "{\"detail\":\"superseded by "
                           SHA_ABC " (3 bytes); not fetched\"}");
    free(res.output);
    ha_input_destroy(&in);

    /* Refused. */
    CU_ASSERT_FALSE(parses("garbage", &in));
    CU_ASSERT_FALSE(parses("{\"kind\":\"install\",\"value\":{}}", &in));
    CU_ASSERT_FALSE(parses("{\"kind\":\"verdict\",\"value\":{\"digest\":"
                           "\"x\",\"paths\":[]}}", &in));
    CU_ASSERT_FALSE(parses("{\"kind\":\"verdict\",\"value\":{\"action\":"
                           "\"burn\",\"digest\":\"" SHA_HELLO "\","
                           "\"paths\":[]}}", &in));
    CU_ASSERT_FALSE(parses("{\"kind\":\"verdict\",\"value\":{\"digest\":\""
                           SHA_HELLO "\",\"paths\":[\"/a/../b\"]}}", &in));
    CU_ASSERT_FALSE(parses("{\"kind\":\"verdict\",\"value\":{\"digest\":\""
                           SHA_HELLO "\",\"paths\":[1]}}", &in));
    CU_ASSERT_FALSE(parses("{\"kind\":\"notice\",\"value\":{\"digest\":\""
                           SHA_HELLO "\",\"paths\":[]}}", &in));
}

/* A scratch directory. */
static char *
make_dir(void)
{
    char tmpl[] = "/tmp/chand-ha-XXXXXX";

    CU_ASSERT_FATAL(mkdtemp(tmpl) != NULL);
    return xstrdup(tmpl);
}

static void
remove_dir(char *dir)
{
    char *cmd = xasprintf("rm -rf %s", dir);

    CU_ASSERT(system(cmd) == 0);
    free(cmd);
    free(dir);
}

static char *
write_file(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");

    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    return path;
}

static void
verdict(const char *action, char **paths, size_t n, const char *qdir,
        struct ha_result *res)
{
    struct ha_input in = {
        .kind = (char *) "verdict",
        .digest = (char *) SHA_HELLO,
        .action = (char *) action,
        .paths = paths,
        .n_paths = n,
    };

    ha_verdict(&in, qdir, 1234, res);
}

static void
test_quarantine_release(void)
{
    char *dir = make_dir();
    char *q = xasprintf("%s/q", dir);
    char *paths[4];
    char hex[65], *error, *meta;
    struct ha_result res;
    struct stat st;
    size_t n;

    paths[0] = write_file(dir, "a", "hello\n");
    paths[1] = write_file(dir, "b", "hello\n");
    paths[2] = write_file(dir, "c", "changed\n");
    paths[3] = xasprintf("%s/missing", dir);
    CU_ASSERT(chmod(paths[0], 0751) == 0);
    CU_ASSERT_EQUAL(ha_sha256_file(paths[0], hex), 0);
    CU_ASSERT_STRING_EQUAL(hex, SHA_HELLO);

    verdict("quarantine", paths, 4, q, &res);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_PTR_NULL(res.error);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.output, "\"object_flags\":"
                                  "[\"quarantined\"]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(res.output, "quarantined 2 of 4 paths"));
    CU_ASSERT_PTR_NOT_NULL(strstr(res.output, "/c (content changed)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(res.output, "/missing (missing)"));
    free(res.output);
    CU_ASSERT(lstat(paths[0], &st) < 0 && errno == ENOENT);
    CU_ASSERT(lstat(paths[1], &st) < 0 && errno == ENOENT);
    CU_ASSERT(lstat(paths[2], &st) == 0);

    char *qfile = xasprintf("%s/" SHA_HELLO "/1", q);
    char *qjson = xasprintf("%s/" SHA_HELLO "/1.json", q);
    CU_ASSERT(stat(qfile, &st) == 0 && (st.st_mode & 07777) == 0400);
    meta = read_file(qjson, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
    CU_ASSERT_PTR_NOT_NULL(strstr(meta, "\"mode\":489"));    /* 0751 */
    CU_ASSERT_PTR_NOT_NULL(strstr(meta, "\"quarantined_at\":1234"));
    CU_ASSERT_PTR_NOT_NULL(strstr(meta, "\"path\":\""));
    free(meta);

    /* Release refuses to overwrite, puts back the rest. */
    free(write_file(dir, "b", "new b\n"));
    error = ha_release(q, SHA_HELLO, &n);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_PTR_NOT_NULL(error);
    CU_ASSERT(error && strstr(error, "cannot put it back"));
    free(error);
    CU_ASSERT(stat(paths[0], &st) == 0 && (st.st_mode & 07777) == 0751);
    CU_ASSERT_EQUAL(ha_sha256_file(paths[0], hex), 0);
    CU_ASSERT_STRING_EQUAL(hex, SHA_HELLO);

    CU_ASSERT(unlink(paths[1]) == 0);
    error = ha_release(q, SHA_HELLO, &n);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(ha_sha256_file(paths[1], hex), 0);
    CU_ASSERT(stat(qfile, &st) < 0);

    /* Nothing left to release. */
    error = ha_release(q, SHA_HELLO, &n);
    CU_ASSERT_PTR_NOT_NULL(error);
    CU_ASSERT_EQUAL(n, 0);
    free(error);
    error = ha_release(q, "../x", &n);
    CU_ASSERT_PTR_NOT_NULL(error);
    free(error);

    free(qfile);
    free(qjson);
    for (int i = 0; i < 4; i++) {
        free(paths[i]);
    }
    free(q);
    remove_dir(dir);
}

static void
test_delete(void)
{
    char *dir = make_dir();
    char *paths[2];
    struct ha_result res;
    struct stat st;

    paths[0] = write_file(dir, "a", "hello\n");
    paths[1] = xasprintf("%s/link", dir);
    CU_ASSERT(symlink(paths[0], paths[1]) == 0);
    verdict("delete", paths, 2, "/nonexistent", &res);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.output, "[\"deleted\"]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(res.output, "a symbolic link"));
    free(res.output);
    CU_ASSERT(lstat(paths[0], &st) < 0);
    CU_ASSERT(lstat(paths[1], &st) == 0);

    /* Nothing acted on: no flags. */
    verdict("delete", paths, 1, "/nonexistent", &res);
    CU_ASSERT_PTR_NULL(strstr(res.output, "object_flags"));
    free(res.output);
    free(paths[0]);
    free(paths[1]);
    remove_dir(dir);
}

/* An install or restore record of 'kind' for SHA_HELLO, with 'extra'
 * (members after "path"). */
#define CONTENT_RECORD(KIND, EXTRA) \
    "{\"key\":\"" KIND "/" SHA_HELLO "\",\"kind\":\"" KIND "\"," \
    "\"version\":2,\"value\":{\"digest\":\"" SHA_HELLO "\",\"path\":" \
    "\"/srv/app\",\"size\":6},\"content\":\"/var/lib/chand/content/x\"," \
    "\"path\":\"/srv/app\"" EXTRA "}"

static void
test_parse_content(void)
{
    struct ha_input in;

    CU_ASSERT_FATAL(parses(CONTENT_RECORD("install", ",\"mode\":\"0750\""),
                           &in));
    CU_ASSERT_STRING_EQUAL(in.kind, "install");
    CU_ASSERT_STRING_EQUAL(in.digest, SHA_HELLO);
    CU_ASSERT_STRING_EQUAL(in.content, "/var/lib/chand/content/x");
    CU_ASSERT_STRING_EQUAL(in.path, "/srv/app");
    CU_ASSERT_EQUAL(in.mode, 0750);
    CU_ASSERT_EQUAL(in.size, 6);
    ha_input_destroy(&in);

    CU_ASSERT_FATAL(parses(CONTENT_RECORD("install", ""), &in));
    CU_ASSERT_EQUAL(in.mode, 0755);
    ha_input_destroy(&in);
    CU_ASSERT_FATAL(parses(CONTENT_RECORD("restore", ""), &in));
    CU_ASSERT_STRING_EQUAL(in.kind, "restore");
    CU_ASSERT_STRING_EQUAL(in.path, "/srv/app");
    ha_input_destroy(&in);

    /* The value's digest is optional. */
    CU_ASSERT(parses("{\"key\":\"install/" SHA_HELLO "\",\"kind\":"
                     "\"install\",\"value\":{},\"content\":\"/c\","
                     "\"path\":\"/p\"}", &in));
    ha_input_destroy(&in);

    /* Refused. */
    CU_ASSERT_FALSE(parses(CONTENT_RECORD("install", ",\"mode\":\"4755\""),
                           &in));
    CU_ASSERT_FALSE(parses(CONTENT_RECORD("install", ",\"mode\":\"1777\""),
                           &in));
    CU_ASSERT_FALSE(parses(CONTENT_RECORD("install", ",\"mode\":\"0758\""),
                           &in));
    CU_ASSERT_FALSE(parses(CONTENT_RECORD("install", ",\"mode\":\"\""),
                           &in));
    CU_ASSERT_FALSE(parses(CONTENT_RECORD("install", ",\"mode\":493"), &in));
    CU_ASSERT_FALSE(parses("{\"key\":\"install/" SHA_HELLO "\",\"kind\":"
                           "\"install\",\"value\":{},\"content\":\"/c\","
                           "\"path\":\"/srv/../etc/passwd\"}", &in));
    CU_ASSERT_FALSE(parses("{\"key\":\"install/" SHA_HELLO "\",\"kind\":"
                           "\"install\",\"value\":{},\"path\":\"/p\"}",
                           &in));
    CU_ASSERT_FALSE(parses("{\"key\":\"install/" SHA_HELLO "\",\"kind\":"
                           "\"install\",\"value\":{\"digest\":\"" SHA_ABC
                           "\"},\"content\":\"/c\",\"path\":\"/p\"}",
                           &in));
    CU_ASSERT_FALSE(parses("{\"key\":\"restore/" SHA_HELLO "\",\"kind\":"
                           "\"install\",\"value\":{},\"content\":\"/c\","
                           "\"path\":\"/p\"}", &in));
    CU_ASSERT_FALSE(parses("{\"key\":\"install/x\",\"kind\":\"install\","
                           "\"value\":{},\"content\":\"/c\",\"path\":"
                           "\"/p\"}", &in));
    CU_ASSERT_FALSE(parses("{\"kind\":\"restore\",\"value\":{},"
                           "\"content\":\"/c\",\"path\":\"/p\"}", &in));
}

/* Runs 'kind' ("install" or "restore") of SHA_HELLO from 'content' to
 * 'path' with 'mode' into 'res'. */
static void
place(const char *kind, const char *content, const char *path,
      unsigned int mode, struct ha_result *res)
{
    struct ha_input in = {
        .kind = (char *) kind,
        .digest = (char *) SHA_HELLO,
        .content = (char *) content,
        .path = (char *) path,
        .mode = mode,
        .size = -1,
    };

    if (!strcmp(kind, "install")) {
        ha_install(&in, res);
    } else {
        ha_restore(&in, res);
    }
}

/* True if 'res' failed with a reason that contains 'reason'; frees it. */
static bool
refused(struct ha_result *res, const char *reason)
{
    bool ok = (res->exit_code == 1 && !res->output && res->error
               && strstr(res->error, reason));

    if (!ok) {
        fprintf(stderr, "expected \"%s\", got exit %d, \"%s\", \"%s\"\n",
                reason, res->exit_code, res->output ? res->output : "",
                res->error ? res->error : "");
    }
    free(res->output);
    free(res->error);
    return ok;
}

/* True if 'res' succeeded with detail 'detail'; frees it. */
static bool
succeeded(struct ha_result *res, const char *detail)
{
    char *want = xasprintf("{\"detail\":\"%s\"}", detail);
    bool ok = (res->exit_code == 0 && !res->error && res->output
               && !strcmp(res->output, want));

    if (!ok) {
        fprintf(stderr, "expected %s, got exit %d, \"%s\", \"%s\"\n", want,
                res->exit_code, res->output ? res->output : "",
                res->error ? res->error : "");
    }
    free(want);
    free(res->output);
    free(res->error);
    return ok;
}

/* True if 'path' is a regular file holding exactly 'text' with 'mode'. */
static bool
holds(const char *path, const char *text, unsigned int mode)
{
    size_t len = 0;
    char *data = read_file(path, &len);
    struct stat st;
    bool ok = (data && len == strlen(text) && !memcmp(data, text, len)
               && !lstat(path, &st) && S_ISREG(st.st_mode)
               && (st.st_mode & 07777) == mode);

    free(data);
    return ok;
}

/* Number of entries of 'dir' besides "." and "..". */
static int
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    CU_ASSERT_FATAL(d != NULL);
    while ((de = readdir(d))) {
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    }
    closedir(d);
    return n;
}

static void
test_install(void)
{
    char *dir = make_dir();
    char *content = write_file(dir, "content", "hello\n");
    char *other = write_file(dir, "other", "abc");
    char *victim = write_file(dir, "victim", "victim\n");
    char *t = xasprintf("%s/t", dir);
    char *app = xasprintf("%s/app", t);
    char *link = xasprintf("%s/link", t);
    char *sub = xasprintf("%s/sub", t);
    char *missing = xasprintf("%s/nope/app", t);
    char *dotdot = xasprintf("%s/sub/../app", t);
    char *detail = xasprintf("installed 5891b5b522d5 at %s (mode 0750)", app);
    struct ha_result res;
    struct stat st;

    CU_ASSERT_FATAL(mkdir(t, 0755) == 0);
    place("install", content, app, 0750, &res);
    CU_ASSERT(succeeded(&res, detail));
    CU_ASSERT(holds(app, "hello\n", 0750));
    CU_ASSERT_EQUAL(count_entries(t), 1);

    /* Over a regular file: replaced, with the record's mode. */
    CU_ASSERT(chmod(app, 0600) == 0);
    CU_ASSERT(truncate(app, 2) == 0);
    place("install", content, app, 0750, &res);
    CU_ASSERT(succeeded(&res, detail));
    CU_ASSERT(holds(app, "hello\n", 0750));

    /* Content that is not the digest: the target is untouched. */
    place("install", other, app, 0755, &res);
    CU_ASSERT(refused(&res, "content does not match its digest"));
    CU_ASSERT(holds(app, "hello\n", 0750));
    CU_ASSERT_EQUAL(count_entries(t), 1);

    /* A symbolic link at the target: refused, its target untouched. */
    CU_ASSERT_FATAL(stat(victim, &st) == 0);
    CU_ASSERT_FATAL(symlink(victim, link) == 0);
    place("install", content, link, 0755, &res);
    CU_ASSERT(refused(&res, "is a symbolic link"));
    CU_ASSERT(holds(victim, "victim\n", st.st_mode & 07777));
    CU_ASSERT(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));

    /* A directory at the target. */
    CU_ASSERT_FATAL(mkdir(sub, 0755) == 0);
    place("install", content, sub, 0755, &res);
    CU_ASSERT(refused(&res, "is a directory"));
    CU_ASSERT(lstat(sub, &st) == 0 && S_ISDIR(st.st_mode));

    /* No directory is created. */
    char *reason = xasprintf("directory %s/nope does not exist", t);
    place("install", content, missing, 0755, &res);
    CU_ASSERT(refused(&res, reason));
    free(reason);

    /* Bad paths and modes; missing content. */
    place("install", content, dotdot, 0755, &res);
    CU_ASSERT(refused(&res, "not an absolute, normalized path"));
    place("install", content, "relative", 0755, &res);
    CU_ASSERT(refused(&res, "not an absolute, normalized path"));
    place("install", content, app, 04755, &res);
    CU_ASSERT(refused(&res, "over 0777"));
    place("install", victim, app, 0755, &res);
    CU_ASSERT(refused(&res, "does not match"));
    place("install", link, app, 0755, &res);
    CU_ASSERT(refused(&res, "a symbolic link"));
    CU_ASSERT(holds(app, "hello\n", 0750));
    CU_ASSERT_EQUAL(count_entries(t), 3);       /* app, link, sub. */

    free(content);
    free(other);
    free(victim);
    free(t);
    free(app);
    free(link);
    free(sub);
    free(missing);
    free(dotdot);
    free(detail);
    remove_dir(dir);
}

static void
test_restore(void)
{
    char *dir = make_dir();
    char *content = write_file(dir, "content", "hello\n");
    char *old = write_file(dir, "old", "old contents\n");
    char *fresh = xasprintf("%s/fresh", dir);
    char *link = xasprintf("%s/link", dir);
    char *detail = xasprintf("restored 5891b5b522d5 to %s", old);
    char *already = xasprintf("%s already holds 5891b5b522d5", old);
    struct ha_result res;
    struct stat before, after;

    /* An existing file keeps its mode. */
    CU_ASSERT(chmod(old, 0640) == 0);
    place("restore", content, old, 0, &res);
    CU_ASSERT(succeeded(&res, detail));
    CU_ASSERT(holds(old, "hello\n", 0640));

    /* Identical content: nothing is written, even without the content. */
    CU_ASSERT_FATAL(stat(old, &before) == 0);
    place("restore", "/nonexistent", old, 0, &res);
    CU_ASSERT(succeeded(&res, already));
    CU_ASSERT_FATAL(stat(old, &after) == 0);
    CU_ASSERT_EQUAL(before.st_ino, after.st_ino);
    CU_ASSERT_EQUAL(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);

    /* A new file: 0644. */
    free(detail);
    detail = xasprintf("restored 5891b5b522d5 to %s", fresh);
    place("restore", content, fresh, 0, &res);
    CU_ASSERT(succeeded(&res, detail));
    CU_ASSERT(holds(fresh, "hello\n", 0644));

    /* Same rules as install. */
    CU_ASSERT_FATAL(symlink(old, link) == 0);
    place("restore", content, link, 0, &res);
    CU_ASSERT(refused(&res, "is a symbolic link"));
    CU_ASSERT(lstat(link, &after) == 0 && S_ISLNK(after.st_mode));
    place("restore", content, dir, 0, &res);
    CU_ASSERT(refused(&res, "is a directory"));
    CU_ASSERT(unlink(fresh) == 0);
    place("restore", old, fresh, 0, &res);     /* old holds "hello\n". */
    CU_ASSERT(succeeded(&res, detail));
    CU_ASSERT(truncate(fresh, 3) == 0);
    place("restore", link, fresh, 0, &res);
    CU_ASSERT(refused(&res, "a symbolic link"));
    CU_ASSERT(truncate(content, 5) == 0);
    place("restore", content, fresh, 0, &res);
    CU_ASSERT(refused(&res, "content does not match its digest"));
    CU_ASSERT(holds(fresh, "hel", 0644));
    CU_ASSERT_EQUAL(count_entries(dir), 4);     /* content, old, fresh,
                                                 * link: no temporary
                                                 * file left. */

    free(content);
    free(old);
    free(fresh);
    free(link);
    free(detail);
    free(already);
    remove_dir(dir);
}

static const struct unit_test tests[] = {
    { "digests and paths", test_valid },
    { "input", test_parse },
    { "install and restore input", test_parse_content },
    { "quarantine and release", test_quarantine_release },
    { "delete", test_delete },
    { "install", test_install },
    { "restore", test_restore },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("chand-handler", tests);
}
