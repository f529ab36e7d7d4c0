/* CUnit suite for lib/daemon's common option parsing: the options every
 * chand daemon takes, parsed through a getopt_long() loop like a daemon's
 * main(), and the "Daemon:" paragraph of their --help. */

#include <config.h>
#include "unit.h"
#include "daemon.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vlog.h"

static int usage_calls;

static void
count_usage(void)
{
    usage_calls++;
}

enum { OPT_OWN = 256 };

/* The own option's argument from the last parse(), or NULL. */
static const char *own_arg;

/* Parses 'argv' (NULL-terminated) as a daemon with one option of its own,
 * --own=ARG, would, into 'dopts'.  Returns what main() would return right
 * away (0 or 2), or -1 if it would go on to run the daemon. */
static int
parse(struct daemon_options *dopts, char *argv[])
{
    static const struct option long_options[] = {
        { "own", required_argument, NULL, OPT_OWN },
        DAEMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    int argc = 0;
    int c, status;

    while (argv[argc]) {
        argc++;
    }
    *dopts = (struct daemon_options) DAEMON_OPTIONS_INIT("test-daemon",
                                                         count_usage);
    own_arg = NULL;
    usage_calls = 0;
    optind = 0;                 /* Restarts glibc's getopt from scratch. */
    opterr = 0;                 /* Keeps the test's output quiet. */
    while ((c = getopt_long(argc, argv, DAEMON_SHORT_OPTIONS, long_options,
                            NULL)) != -1) {
        switch (c) {
        case OPT_OWN:
            own_arg = optarg;
            break;
        default:
            status = daemon_parse_option(dopts, c, optarg);
            if (status >= 0) {
                return status;
            }
            break;
        }
    }
    return daemon_parse_end(dopts, argc, argv) ? 2 : -1;
}

/* What capture_end() captured of standard output and error. */
static char out_text[1024], err_text[256];

/* Standard output and error, sent to temporary files between
 * capture_start() and capture_end(). */
struct capture {
    FILE *out, *err;
    int saved_out, saved_err;
};

/* Reads what was written to 'f' since it was rewound, into 'buf'. */
static void
read_back(FILE *f, char *buf, size_t size)
{
    size_t n;

    rewind(f);
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void
capture_start(struct capture *cap)
{
    cap->out = tmpfile();
    cap->err = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cap->out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cap->err);
    fflush(stdout);
    fflush(stderr);
    cap->saved_out = dup(STDOUT_FILENO);
    cap->saved_err = dup(STDERR_FILENO);
    dup2(fileno(cap->out), STDOUT_FILENO);
    dup2(fileno(cap->err), STDERR_FILENO);
}

/* Puts standard output and error back, and what was written to them since
 * capture_start() into 'out_text' and 'err_text'. */
static void
capture_end(struct capture *cap)
{
    fflush(stdout);
    fflush(stderr);
    dup2(cap->saved_out, STDOUT_FILENO);
    dup2(cap->saved_err, STDERR_FILENO);
    close(cap->saved_out);
    close(cap->saved_err);
    read_back(cap->out, out_text, sizeof out_text);
    read_back(cap->err, err_text, sizeof err_text);
}

/* As parse(), and also captures what it writes to standard output and
 * error into 'out_text' and 'err_text'. */
static int
parse_output(struct daemon_options *dopts, char *argv[])
{
    struct capture cap;
    int status;

    capture_start(&cap);
    status = parse(dopts, argv);
    capture_end(&cap);
    return status;
}

static void
test_defaults(void)
{
    struct daemon_options dopts;
    char *argv[] = { "test-daemon", NULL };

    CU_ASSERT_EQUAL(parse(&dopts, argv), -1);
    CU_ASSERT_STRING_EQUAL(dopts.program, "test-daemon");
    CU_ASSERT_PTR_NULL(dopts.log_file);
    CU_ASSERT_PTR_NULL(dopts.pidfile);
    CU_ASSERT_FALSE(dopts.detach);
    CU_ASSERT_EQUAL(usage_calls, 0);
}

static void
test_common(void)
{
    struct daemon_options dopts;
    char *argv[] = {
        "test-daemon", "--log-file=/tmp/x.log", "--own=1", "--pidfile",
        "/tmp/x.pid", "--detach", "--vlog=ANY:info", NULL,
    };

    CU_ASSERT_EQUAL(parse(&dopts, argv), -1);
    CU_ASSERT_STRING_EQUAL(dopts.log_file, "/tmp/x.log");
    CU_ASSERT_STRING_EQUAL(dopts.pidfile, "/tmp/x.pid");
    CU_ASSERT_TRUE(dopts.detach);
    CU_ASSERT_STRING_EQUAL(own_arg, "1");
}

static void
test_vlog(void)
{
    struct vlog_module *m = vlog_module_from_name("daemon");
    struct daemon_options dopts;
    char *verbose[] = { "test-daemon", "-v", NULL };
    char *vlog[] = { "test-daemon", "--vlog=daemon:warn", NULL };
    char *bad[] = { "test-daemon", "--vlog=ANY:loud", "--own=1", NULL };

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(parse(&dopts, verbose), -1);
    CU_ASSERT_EQUAL(m->level, VLL_DBG);
    CU_ASSERT_EQUAL(parse(&dopts, vlog), -1);
    CU_ASSERT_EQUAL(m->level, VLL_WARN);

    /* A bad --vlog stops parsing there. */
    CU_ASSERT_EQUAL(parse_output(&dopts, bad), 2);
    CU_ASSERT_STRING_EQUAL(err_text, "test-daemon: bad --vlog 'ANY:loud'\n");
    CU_ASSERT_STRING_EQUAL(out_text, "");
    CU_ASSERT_PTR_NULL(own_arg);
    vlog_set_levels_from_string("ANY:info");
}

static void
test_help_version(void)
{
    struct daemon_options dopts;
    char *help[] = { "test-daemon", "--help", "--bogus", NULL };
    char *h[] = { "test-daemon", "--own=1", "-h", NULL };
    char *version[] = { "test-daemon", "-V", "extra", NULL };

    CU_ASSERT_EQUAL(parse(&dopts, help), 0);
    CU_ASSERT_EQUAL(usage_calls, 1);
    CU_ASSERT_EQUAL(parse(&dopts, h), 0);
    CU_ASSERT_EQUAL(usage_calls, 1);
    CU_ASSERT_EQUAL(parse_output(&dopts, version), 0);
    CU_ASSERT_EQUAL(usage_calls, 0);
    CU_ASSERT_STRING_EQUAL(out_text, "test-daemon " PACKAGE_VERSION "\n");
    CU_ASSERT_STRING_EQUAL(err_text, "");
}

static void
test_errors(void)
{
    struct daemon_options dopts;
    char *unknown[] = { "test-daemon", "--bogus", NULL };
    char *short_opt[] = { "test-daemon", "-x", NULL };
    char *missing[] = { "test-daemon", "--pidfile", NULL };
    char *extra_arg[] = { "test-daemon", "--detach=yes", NULL };
    char *ambiguous[] = { "test-daemon", "--ver", NULL };
    char *argument[] = { "test-daemon", "--detach", "extra", NULL };

    char **hinted[] = { unknown, short_opt, missing, extra_arg, ambiguous };

    /* getopt_long() complains (not here: opterr is 0), the daemon points
     * to --help. */
    for (size_t i = 0; i < sizeof hinted / sizeof *hinted; i++) {
        CU_ASSERT_EQUAL(parse_output(&dopts, hinted[i]), 2);
        CU_ASSERT_STRING_EQUAL(err_text, "Try 'test-daemon --help'.\n");
        CU_ASSERT_STRING_EQUAL(out_text, "");
    }
    CU_ASSERT_EQUAL(parse_output(&dopts, argument), 2);
    CU_ASSERT_STRING_EQUAL(err_text,
                           "test-daemon: unexpected argument 'extra'\n");
    CU_ASSERT_EQUAL(usage_calls, 0);
}

/* daemon_usage() has a line for each common option, in the form --help
 * gives an option: "  -v, --verbose" for one with a short form, "  --vlog=SPEC"
 * for one that takes a value; and names the daemon's log module. */
static void
test_usage(void)
{
    static const struct option common[] = {
        DAEMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    struct capture cap;

    capture_start(&cap);
    daemon_usage("mymodule");
    capture_end(&cap);

    CU_ASSERT_EQUAL(strncmp(out_text, "Daemon:\n", 8), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "ANY:info or mymodule:dbg\n"));
    CU_ASSERT_STRING_EQUAL(err_text, "");
    for (const struct option *o = common; o->name; o++) {
        char want[64];

        if (o->val < 256 && isalpha(o->val)) {
            snprintf(want, sizeof want, "\n  -%c, --%s ", o->val, o->name);
        } else {
            snprintf(want, sizeof want, "\n  --%s%s", o->name,
                     o->has_arg == required_argument ? "=" : " ");
        }
        if (!strstr(out_text, want)) {
            CU_FAIL("daemon_usage() misses a common option");
            fprintf(stderr, "no '%s' in:\n%s", want + 1, out_text);
        }
    }
}

static const struct unit_test tests[] = {
    { "defaults", test_defaults },
    { "common options", test_common },
    { "-v and --vlog", test_vlog },
    { "--help and --version", test_help_version },
    { "errors", test_errors },
    { "usage", test_usage },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("daemon", tests);
}
