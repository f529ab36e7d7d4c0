/* Tests for utilities/handler-actions, the work of chand-handler: input
 * parsing, and quarantine, delete and release on real files. */

#include <config.h>
#include "unit.h"
#include "handler-actions.h"

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

static const struct unit_test tests[] = {
    { "digests and paths", test_valid },
    { "input", test_parse },
    { "quarantine and release", test_quarantine_release },
    { "delete", test_delete },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("chand-handler", tests);
}
