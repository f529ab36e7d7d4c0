/* Tests for lib/vlog: the log file's directories are created when missing
 * (a --log-file under /var/log/chand on a fresh install).  A program of its
 * own, apart from test-vlog, because it changes the umask and the working
 * directory. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(test_vlog_dir);

/* A fresh temporary directory for each test, removed with its contents by
 * cleanup(). */
static char tmpdir[64];

static void
setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test-vlog-dir-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
    vlog_set_stderr(false);
    vlog_set_level(NULL, VLL_INFO);
}

static int
remove_one(const char *path, const struct stat *st, int flag,
           struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

static void
cleanup(void)
{
    CU_ASSERT_EQUAL(vlog_set_log_file(NULL), 0);
    vlog_set_stderr(true);
    CU_ASSERT_EQUAL(nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Returns the permission bits of 'path', or -1 if it is not a directory. */
static int
dir_mode(const char *path)
{
    struct stat st;

    if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
        return -1;
    }
    return st.st_mode & 07777;
}

/* Returns true if the file at 'path' holds one line that ends in
 * "|test_vlog_dir|INFO|" 'msg'. */
static bool
file_has_line(const char *path, const char *msg)
{
    char buf[512], want[256];
    FILE *f = fopen(path, "r");
    bool found = false;

    if (!f) {
        return false;
    }
    snprintf(want, sizeof want, "|test_vlog_dir|INFO|%s\n", msg);
    if (fgets(buf, sizeof buf, f)) {
        size_t n = strlen(buf), m = strlen(want);
        found = n >= m && !strcmp(buf + n - m, want);
    }
    fclose(f);
    return found;
}

static void
test_creates_missing_dirs(void)
{
    char a[128], b[128], path[160];

    setup();
    snprintf(a, sizeof a, "%s/log", tmpdir);
    snprintf(b, sizeof b, "%s/log/chand", tmpdir);
    snprintf(path, sizeof path, "%s/log/chand/chand-host.log", tmpdir);

    /* 0750 whatever the umask. */
    mode_t old_umask = umask(077);
    CU_ASSERT_EQUAL(vlog_set_log_file(path), 0);
    umask(old_umask);

    CU_ASSERT_EQUAL(dir_mode(a), VLOG_DIR_MODE);
    CU_ASSERT_EQUAL(dir_mode(b), VLOG_DIR_MODE);
    VLOG_INFO("hello");
    CU_ASSERT(file_has_line(path, "hello"));
    cleanup();
}

static void
test_keeps_existing_dirs(void)
{
    char keep[128], made[128], path[160];

    setup();
    snprintf(keep, sizeof keep, "%s/keep", tmpdir);
    snprintf(made, sizeof made, "%s/keep/new", tmpdir);
    snprintf(path, sizeof path, "%s/keep//new/x.log", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(keep, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(chmod(keep, 0755), 0);

    CU_ASSERT_EQUAL(vlog_set_log_file(path), 0);
    CU_ASSERT_EQUAL(dir_mode(keep), 0755);      /* Not changed. */
    CU_ASSERT_EQUAL(dir_mode(made), VLOG_DIR_MODE);
    VLOG_INFO("repeated slashes");
    CU_ASSERT(file_has_line(path, "repeated slashes"));
    cleanup();
}

static void
test_relative_path(void)
{
    char cwd[PATH_MAX], dir[128], path[160];

    setup();
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    CU_ASSERT_EQUAL_FATAL(chdir(tmpdir), 0);
    CU_ASSERT_EQUAL(vlog_set_log_file("rel/x.log"), 0);
    CU_ASSERT_EQUAL(vlog_set_log_file("plain.log"), 0);   /* No dir. */
    CU_ASSERT_EQUAL_FATAL(chdir(cwd), 0);

    snprintf(dir, sizeof dir, "%s/rel", tmpdir);
    snprintf(path, sizeof path, "%s/rel/x.log", tmpdir);
    CU_ASSERT_EQUAL(dir_mode(dir), VLOG_DIR_MODE);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    cleanup();
}

static void
test_reopen_recreates(void)
{
    char dir[128], path[160];

    setup();
    snprintf(dir, sizeof dir, "%s/rotated", tmpdir);
    snprintf(path, sizeof path, "%s/rotated/x.log", tmpdir);
    CU_ASSERT_EQUAL(vlog_set_log_file(path), 0);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(rmdir(dir), 0);

    CU_ASSERT_EQUAL(vlog_reopen_log_file(), 0);
    CU_ASSERT_EQUAL(dir_mode(dir), VLOG_DIR_MODE);
    VLOG_INFO("after reopen");
    CU_ASSERT(file_has_line(path, "after reopen"));
    cleanup();
}

static void
test_failure_keeps_old_file(void)
{
    char path[160], plain[128], bad[192], under[128];

    setup();
    snprintf(path, sizeof path, "%s/old.log", tmpdir);
    snprintf(plain, sizeof plain, "%s/plain", tmpdir);
    snprintf(under, sizeof under, "%s/plain/sub", tmpdir);
    snprintf(bad, sizeof bad, "%s/plain/sub/x.log", tmpdir);
    FILE *f = fopen(plain, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);

    CU_ASSERT_EQUAL(vlog_set_log_file(path), 0);
    CU_ASSERT_EQUAL(vlog_set_log_file(bad), ENOTDIR);  /* A file in the way. */
    CU_ASSERT_EQUAL(dir_mode(under), -1);
    VLOG_INFO("still here");
    CU_ASSERT(file_has_line(path, "still here"));
    cleanup();
}

static const struct unit_test tests[] = {
    { "creates missing directories", test_creates_missing_dirs },
    { "keeps existing directories", test_keeps_existing_dirs },
    { "relative path", test_relative_path },
    { "reopen recreates the directory", test_reopen_recreates },
    { "failure keeps the old file", test_failure_keeps_old_file },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("vlog log directory", tests);
}
