/* Tests for lib/subprocess: real programs (sh, cat, printf, sleep), run
 * with and without a timeout. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "poll-loop.h"
#include "subprocess.h"

/* Runs 'argv' with 'opts' and returns its result; its output goes to
 * '*outp' (never NULL afterwards: "" if there was none). */
static int
run(char *const argv[], const struct subprocess_options *opts, char **outp)
{
    int status = subprocess_run(argv, opts, outp);

    if (!*outp) {
        *outp = strdup("");
    }
    return status;
}

static void
test_output_and_status(void)
{
    char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    char *out;

    CU_ASSERT_EQUAL(run(argv, NULL, &out), 3);
    CU_ASSERT_STRING_EQUAL(out, "out\nerr\n");
    free(out);

    char *ok[] = { "true", NULL };
    CU_ASSERT_EQUAL(subprocess_run(ok, NULL, NULL), 0);
}

/* Arguments reach the program as they are: no shell in between. */
static void
test_no_shell(void)
{
    char *argv[] = { "printf", "%s|", "a b", "$HOME", "*", ";", NULL };
    char *out;

    CU_ASSERT_EQUAL(run(argv, NULL, &out), 0);
    CU_ASSERT_STRING_EQUAL(out, "a b|$HOME|*|;|");
    free(out);
}

static void
test_not_found(void)
{
    char *argv[] = { "chand-no-such-program", NULL };
    char *out;

    CU_ASSERT_EQUAL(run(argv, NULL, &out), 127);
    CU_ASSERT(strstr(out, "cannot run chand-no-such-program") != NULL);
    free(out);
}

static void
test_signal(void)
{
    char *argv[] = { "sh", "-c", "kill -TERM $$", NULL };
    char *out;

    CU_ASSERT_EQUAL(run(argv, NULL, &out), 128 + SIGTERM);
    free(out);
}

static void
test_input(void)
{
    char template[] = "/tmp/chand-test-subprocess.XXXXXX";
    int fd = mkstemp(template);
    char *argv[] = { "cat", NULL };
    char *out;

    CU_ASSERT_FATAL(fd >= 0);
    unlink(template);
    CU_ASSERT_EQUAL(write(fd, "line 1\nline 2\n", 14), 14);
    CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_SET), 0);

    struct subprocess_options opts = { .input = fd };
    CU_ASSERT_EQUAL(run(argv, &opts, &out), 0);
    CU_ASSERT_STRING_EQUAL(out, "line 1\nline 2\n");
    free(out);
    CU_ASSERT_EQUAL(close(fd), 0);  /* Left open by subprocess_run(). */

    /* Without one, standard input is /dev/null: cat ends at once. */
    opts.input = -1;
    CU_ASSERT_EQUAL(run(argv, &opts, &out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
}

/* Output over the limit is read (the program does not block) and
 * dropped. */
static void
test_max_output(void)
{
    char *argv[] = { "sh", "-c", "i=0; while [ $i -lt 2000 ]; do "
                     "echo 0123456789; i=$((i + 1)); done; echo done >&2",
                     NULL };
    struct subprocess_options opts = { .input = -1, .max_output = 100 };
    char *out;

    CU_ASSERT_EQUAL(run(argv, &opts, &out), 0);
    CU_ASSERT_EQUAL(strlen(out), 100);
    CU_ASSERT(!strncmp(out, "0123456789\n0123456789\n", 22));
    free(out);

    /* The default keeps SUBPROCESS_MAX_OUTPUT bytes. */
    char *big[] = { "sh", "-c", "head -c 1100000 /dev/zero | tr '\\0' x",
                    NULL };
    CU_ASSERT_EQUAL(run(big, NULL, &out), 0);
    CU_ASSERT_EQUAL(strlen(out), SUBPROCESS_MAX_OUTPUT);
    free(out);
}

/* Returns true if process 'pid' is gone, or a zombie, within a second. */
static bool
process_ends(pid_t pid)
{
    for (int i = 0; i < 100; i++) {
        char path[64], stat[256];
        FILE *f;

        if (kill(pid, 0) && errno == ESRCH) {
            return true;
        }
        snprintf(path, sizeof path, "/proc/%ld/stat", (long) pid);
        f = fopen(path, "r");
        if (f) {
            bool zombie = (fgets(stat, sizeof stat, f)
                           && strstr(stat, ") Z "));
            fclose(f);
            if (zombie) {
                return true;
            }
        }
        usleep(10000);
    }
    return false;
}

/* At the timeout the program and what it started are killed, even when
 * they no longer write. */
static void
test_timeout(void)
{
    char *argv[] = { "sh", "-c", "sleep 30 & echo $!; sleep 30", NULL };
    struct subprocess_options opts = { .input = -1, .timeout_ms = 300 };
    long long start = time_msec();
    char *out;
    long pid;

    CU_ASSERT_EQUAL(run(argv, &opts, &out), SUBPROCESS_TIMEOUT);
    CU_ASSERT(time_msec() - start >= 300);
    CU_ASSERT(time_msec() - start < 5000);
    CU_ASSERT_EQUAL_FATAL(sscanf(out, "%ld", &pid), 1);
    CU_ASSERT(process_ends(pid));   /* The background sleep too. */
    free(out);

    /* Output closed early: the timeout still applies to the process. */
    char *quiet[] = { "sh", "-c", "exec >/dev/null 2>&1; sleep 30", NULL };
    start = time_msec();
    CU_ASSERT_EQUAL(run(quiet, &opts, &out), SUBPROCESS_TIMEOUT);
    CU_ASSERT(time_msec() - start < 5000);
    free(out);

    /* A program done in time is not affected. */
    char *quick[] = { "sh", "-c", "echo hi; exit 4", NULL };
    opts.timeout_ms = 10000;
    CU_ASSERT_EQUAL(run(quick, &opts, &out), 4);
    CU_ASSERT_STRING_EQUAL(out, "hi\n");
    free(out);
}

/* Process groups: its own with a timeout, the caller's without. */
static void
test_process_group(void)
{
    /* Field 5 of /proc/PID/stat is the process group. */
    char *argv[] = { "sh", "-c", "cut -d' ' -f5 /proc/$$/stat", NULL };
    struct subprocess_options opts = { .input = -1 };
    char *out;
    long pgid;

    CU_ASSERT_EQUAL(run(argv, &opts, &out), 0);
    CU_ASSERT_EQUAL(sscanf(out, "%ld", &pgid), 1);
    CU_ASSERT_EQUAL(pgid, (long) getpgrp());
    free(out);

    opts.timeout_ms = 10000;
    CU_ASSERT_EQUAL(run(argv, &opts, &out), 0);
    CU_ASSERT_EQUAL(sscanf(out, "%ld", &pgid), 1);
    CU_ASSERT_NOT_EQUAL(pgid, (long) getpgrp());
    free(out);
}

static const struct unit_test tests[] = {
    { "output and exit status", test_output_and_status },
    { "no shell", test_no_shell },
    { "program not found", test_not_found },
    { "killed by a signal", test_signal },
    { "standard input", test_input },
    { "output limit", test_max_output },
    { "timeout kills the process group", test_timeout },
    { "process group", test_process_group },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("subprocess", tests);
}
