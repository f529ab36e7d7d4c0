/* Tests for lib/vlog. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(test_vlog);

/* A second module, defined by hand the way the macro would. */
static struct vlog_module other_module = { "test_other", VLL_INFO, NULL };
static struct vlog_module third_module = { "test_third", VLL_INFO, NULL };

/* Captured log lines. */
#define MAX_LINES 64
static char *lines[MAX_LINES];
static int n_lines;

static void
capture(const char *line, void *aux)
{
    int *calls = aux;

    (*calls)++;
    if (n_lines < MAX_LINES) {
        lines[n_lines++] = strdup(line);
    }
}

static int hook_calls;

static void
start_capture(void)
{
    for (int i = 0; i < n_lines; i++) {
        free(lines[i]);
    }
    n_lines = 0;
    hook_calls = 0;
    vlog_set_hook(capture, &hook_calls);
}

static void
stop_capture(void)
{
    vlog_set_hook(NULL, NULL);
}

/* Returns the part of a log line after the timestamp and sequence number,
 * i.e. "module|LEVEL|message". */
static const char *
after_seq(const char *line)
{
    const char *p = strchr(line, '|');
    p = p ? strchr(p + 1, '|') : NULL;
    return p ? p + 1 : "";
}

static void
reset_levels(void)
{
    CU_ASSERT_EQUAL(vlog_set_levels_from_string("ANY:info"), 0);
}

static void
test_level_names(void)
{
    static const char *names[] = { "off", "err", "warn", "info", "dbg" };

    for (int i = 0; i < VLL_N_LEVELS; i++) {
        CU_ASSERT_STRING_EQUAL(vlog_get_level_name(i), names[i]);
        CU_ASSERT_EQUAL(vlog_get_level_val(names[i]), i);
    }
    CU_ASSERT_EQUAL(vlog_get_level_val("DBG"), VLL_DBG);
    CU_ASSERT_EQUAL(vlog_get_level_val("debug"), VLL_DBG);
    CU_ASSERT_EQUAL(vlog_get_level_val("emer"), VLL_ERR);
    CU_ASSERT_EQUAL(vlog_get_level_val("verbose"), -1);
    CU_ASSERT_EQUAL(vlog_get_level_val(""), -1);
    CU_ASSERT_EQUAL(vlog_get_level_val(NULL), -1);
    CU_ASSERT_PTR_NULL(vlog_get_level_name(VLL_N_LEVELS));
    CU_ASSERT_PTR_NULL(vlog_get_level_name((enum vlog_level) -1));
}

static void
test_set_levels(void)
{
    vlog_insert_module(&other_module);
    vlog_insert_module(&other_module);     /* Twice is harmless. */
    vlog_insert_module(&third_module);
    CU_ASSERT_PTR_EQUAL(vlog_module_from_name("test_vlog"), this_module);
    CU_ASSERT_PTR_EQUAL(vlog_module_from_name("test_other"), &other_module);
    CU_ASSERT_PTR_NULL(vlog_module_from_name("nonexistent"));

    CU_ASSERT_EQUAL(vlog_set_levels_from_string("ANY:dbg"), 0);
    CU_ASSERT_EQUAL(this_module->level, VLL_DBG);
    CU_ASSERT_EQUAL(other_module.level, VLL_DBG);

    CU_ASSERT_EQUAL(vlog_set_levels_from_string("test_vlog:off"), 0);
    CU_ASSERT_EQUAL(this_module->level, VLL_OFF);
    CU_ASSERT_EQUAL(other_module.level, VLL_DBG);

    CU_ASSERT_EQUAL(vlog_set_levels_from_string("warn"), 0);
    CU_ASSERT_EQUAL(this_module->level, VLL_WARN);
    CU_ASSERT_EQUAL(other_module.level, VLL_WARN);

    /* Several items, comma or space separated, applied in order. */
    CU_ASSERT_EQUAL(vlog_set_levels_from_string(
                        "ANY:err, test_other:dbg test_vlog:INFO"), 0);
    CU_ASSERT_EQUAL(this_module->level, VLL_INFO);
    CU_ASSERT_EQUAL(other_module.level, VLL_DBG);
    CU_ASSERT_EQUAL(third_module.level, VLL_ERR);

    /* Errors change nothing at all. */
    static const char *bad[] = {
        "", " ", ",", "ANY", "ANY:", ":dbg", "nonexistent:dbg",
        "test_vlog:loud", "test_vlog:dbg:extra", "ANY:dbg nonexistent:off",
        "test_vlog:dbg,bogus", "::",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(vlog_set_levels_from_string(bad[i]), EINVAL);
        CU_ASSERT_EQUAL(this_module->level, VLL_INFO);
        CU_ASSERT_EQUAL(other_module.level, VLL_DBG);
    }
    CU_ASSERT_EQUAL(vlog_set_levels_from_string(NULL), EINVAL);

    /* "ANY" also sets the level of modules registered later. */
    static struct vlog_module late = { "test_late", VLL_INFO, NULL };
    CU_ASSERT_EQUAL(vlog_set_levels_from_string("ANY:warn"), 0);
    vlog_insert_module(&late);
    CU_ASSERT_EQUAL(late.level, VLL_WARN);
    reset_levels();
}

static void
test_get_levels(void)
{
    CU_ASSERT_EQUAL(vlog_set_levels_from_string("ANY:info test_vlog:dbg "
                                                "test_other:off"), 0);
    char *s = vlog_get_levels();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    /* Each line is "module level"; sorted by name. */
    char *save = NULL;
    char prev[64] = "";
    bool saw_self = false, saw_other = false, saw_third = false;
    for (char *line = strtok_r(s, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char module[64], level[16];
        CU_ASSERT_EQUAL_FATAL(sscanf(line, "%63s %15s", module, level), 2);
        CU_ASSERT(strcmp(prev, module) < 0);
        snprintf(prev, sizeof prev, "%s", module);
        if (!strcmp(module, "test_vlog")) {
            CU_ASSERT_STRING_EQUAL(level, "dbg");
            saw_self = true;
        } else if (!strcmp(module, "test_other")) {
            CU_ASSERT_STRING_EQUAL(level, "off");
            saw_other = true;
        } else if (!strcmp(module, "test_third")) {
            CU_ASSERT_STRING_EQUAL(level, "info");
            saw_third = true;
        }
    }
    CU_ASSERT(saw_self && saw_other && saw_third);
    free(s);
    reset_levels();
}

static void
test_format_line(void)
{
    char buf[256];
    /* 2026-11-22T00:00:00.123Z */
    long long int t = 1795305600123LL;
    int n = vlog_format_line(buf, sizeof buf, t, 42, "mod", VLL_INFO,
                             "hello world");
    CU_ASSERT_STRING_EQUAL(buf,
                           "2026-11-22T00:00:00.123Z|00042|mod|INFO|"
                           "hello world");
    CU_ASSERT_EQUAL(n, (int) strlen(buf));

    vlog_format_line(buf, sizeof buf, 0, 1, "m", VLL_ERR, "x");
    CU_ASSERT_STRING_EQUAL(buf, "1970-01-01T00:00:00.000Z|00001|m|ERR|x");
    vlog_format_line(buf, sizeof buf, 999, 123456, "m", VLL_WARN, "");
    CU_ASSERT_STRING_EQUAL(buf, "1970-01-01T00:00:00.999Z|123456|m|WARN|");
    vlog_format_line(buf, sizeof buf, 86400001, 7, "m", VLL_DBG, "%s");
    CU_ASSERT_STRING_EQUAL(buf, "1970-01-02T00:00:00.001Z|00007|m|DBG|%s");

    /* Truncation behaves like snprintf. */
    char small[10];
    n = vlog_format_line(small, sizeof small, t, 42, "mod", VLL_INFO, "hi");
    CU_ASSERT_EQUAL(n, (int) strlen("2026-11-22T00:00:00.123Z|00042|mod|"
                                    "INFO|hi"));
    CU_ASSERT_STRING_EQUAL(small, "2026-11-2");
}

static void
test_logging_filters(void)
{
    reset_levels();
    start_capture();
    VLOG_ERR("e %d", 1);
    VLOG_WARN("w %s", "2");
    VLOG_INFO("i");
    VLOG_DBG("d");          /* Below info: dropped. */
    stop_capture();
    CU_ASSERT_EQUAL_FATAL(n_lines, 3);
    CU_ASSERT_STRING_EQUAL(after_seq(lines[0]), "test_vlog|ERR|e 1");
    CU_ASSERT_STRING_EQUAL(after_seq(lines[1]), "test_vlog|WARN|w 2");
    CU_ASSERT_STRING_EQUAL(after_seq(lines[2]), "test_vlog|INFO|i");

    /* Sequence numbers increase by one per line. */
    unsigned int s0, s1;
    CU_ASSERT_EQUAL(sscanf(strchr(lines[0], '|') + 1, "%u", &s0), 1);
    CU_ASSERT_EQUAL(sscanf(strchr(lines[1], '|') + 1, "%u", &s1), 1);
    CU_ASSERT_EQUAL(s1, s0 + 1);
    /* Timestamp shape. */
    CU_ASSERT_EQUAL(strlen(lines[0]) > 25 && lines[0][10] == 'T'
                    && lines[0][23] == 'Z' && lines[0][24] == '|', 1);

    CU_ASSERT_EQUAL(vlog_set_levels_from_string("test_vlog:dbg"), 0);
    CU_ASSERT_TRUE(VLOG_IS_DBG_ENABLED());
    start_capture();
    VLOG_DBG("d");
    stop_capture();
    CU_ASSERT_EQUAL_FATAL(n_lines, 1);
    CU_ASSERT_STRING_EQUAL(after_seq(lines[0]), "test_vlog|DBG|d");

    CU_ASSERT_EQUAL(vlog_set_levels_from_string("test_vlog:off"), 0);
    start_capture();
    VLOG_ERR("nothing");
    vlog(this_module, VLL_OFF, "never at level off");
    stop_capture();
    CU_ASSERT_EQUAL(n_lines, 0);
    CU_ASSERT_FALSE(vlog_is_enabled(this_module, VLL_ERR));

    /* A long message is not truncated. */
    reset_levels();
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    start_capture();
    VLOG_INFO("%s", big);
    stop_capture();
    CU_ASSERT_EQUAL_FATAL(n_lines, 1);
    CU_ASSERT_EQUAL(strlen(after_seq(lines[0])),
                    strlen("test_vlog|INFO|") + 4999);
    free(big);
}

static void
test_rate_limit_arithmetic(void)
{
    /* 6 per minute, burst 3: one token every 10 s. */
    struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(6, 3);
    long long int t = 1000000;

    /* A fresh bucket is full. */
    CU_ASSERT_FALSE(vlog_should_drop_at(&rl, t));
    CU_ASSERT_FALSE(vlog_should_drop_at(&rl, t));
    CU_ASSERT_FALSE(vlog_should_drop_at(&rl, t));
    CU_ASSERT_TRUE(vlog_should_drop_at(&rl, t));
    CU_ASSERT_TRUE(vlog_should_drop_at(&rl, t + 5000));
    CU_ASSERT_EQUAL(vlog_rate_limit_dropped(&rl), 2);

    /* 9.999 s after the first drain: still nothing. */
    CU_ASSERT_TRUE(vlog_should_drop_at(&rl, t + 9999));
    /* 10 s: exactly one token. */
    CU_ASSERT_FALSE(vlog_should_drop_at(&rl, t + 10000));
    CU_ASSERT_TRUE(vlog_should_drop_at(&rl, t + 10000));

    /* A long quiet period refills only up to the burst. */
    t += 3600 * 1000;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FALSE(vlog_should_drop_at(&rl, t));
    }
    CU_ASSERT_TRUE(vlog_should_drop_at(&rl, t));

    /* Time going backwards does not add tokens. */
    CU_ASSERT_TRUE(vlog_should_drop_at(&rl, t - 100000));
    CU_ASSERT_TRUE(vlog_should_drop_at(&rl, t));

    /* Burst 0 is treated as 1; rate 0 never refills. */
    struct vlog_rate_limit once = VLOG_RATE_LIMIT_INIT(0, 0);
    CU_ASSERT_FALSE(vlog_should_drop_at(&once, 5));
    CU_ASSERT_TRUE(vlog_should_drop_at(&once, 5));
    CU_ASSERT_TRUE(vlog_should_drop_at(&once, LLONG_MAX / 2));

    /* Huge rates and bursts saturate instead of overflowing. */
    struct vlog_rate_limit huge = VLOG_RATE_LIMIT_INIT(UINT_MAX, UINT_MAX);
    CU_ASSERT_FALSE(vlog_should_drop_at(&huge, 0));
    CU_ASSERT_FALSE(vlog_should_drop_at(&huge, LLONG_MAX));
    CU_ASSERT_FALSE(vlog_should_drop_at(&huge, LLONG_MAX));

    /* Random steady state: over a long run the pass count approaches
     * burst + rate * minutes and never exceeds it. */
    uint64_t seed = 12345;
    struct vlog_rate_limit r2 = VLOG_RATE_LIMIT_INIT(60, 5);
    long long int now = 0;
    unsigned int passed = 0;
    for (int i = 0; i < 100000; i++) {
        now += unit_random(&seed) % 50;
        passed += !vlog_should_drop_at(&r2, now);
    }
    unsigned int limit = 5 + (unsigned int) (now / 1000);
    CU_ASSERT(passed <= limit);
    CU_ASSERT(passed + 2 >= limit);
}

static void
test_rate_limited_logging(void)
{
    /* Burst 2, 1 per minute: the test cannot take a minute between
     * calls, so exactly 2 pass. */
    static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(1, 2);

    reset_levels();
    start_capture();
    for (int i = 0; i < 10; i++) {
        VLOG_WARN_RL(&rl, "msg %d", i);
    }
    stop_capture();
    CU_ASSERT_EQUAL_FATAL(n_lines, 2);
    CU_ASSERT_STRING_EQUAL(after_seq(lines[0]), "test_vlog|WARN|msg 0");
    CU_ASSERT_STRING_EQUAL(after_seq(lines[1]), "test_vlog|WARN|msg 1");
    CU_ASSERT_EQUAL(vlog_rate_limit_dropped(&rl), 8);

    /* Disabled levels neither log nor consume tokens nor count drops. */
    static struct vlog_rate_limit rl2 = VLOG_RATE_LIMIT_INIT(1, 1);
    start_capture();
    VLOG_DBG_RL(&rl2, "hidden");
    VLOG_INFO_RL(&rl2, "shown");
    VLOG_INFO_RL(&rl2, "dropped");
    stop_capture();
    CU_ASSERT_EQUAL_FATAL(n_lines, 1);
    CU_ASSERT_STRING_EQUAL(after_seq(lines[0]), "test_vlog|INFO|shown");
    CU_ASSERT_EQUAL(vlog_rate_limit_dropped(&rl2), 1);

    /* When a message gets through after drops, a summary follows it.  Fake
     * a refill by winding the bucket's clock back a minute. */
    rl.last_fill -= 60 * 1000;
    start_capture();
    VLOG_WARN_RL(&rl, "again");
    stop_capture();
    CU_ASSERT_EQUAL_FATAL(n_lines, 2);
    CU_ASSERT_STRING_EQUAL(after_seq(lines[0]), "test_vlog|WARN|again");
    CU_ASSERT(strstr(lines[1], "Dropped 8 log messages") != NULL);
    CU_ASSERT_EQUAL(vlog_rate_limit_dropped(&rl), 0);
}

static void
test_log_file(void)
{
    char dir[] = "/tmp/test-vlog-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));

    char path[256], moved[256];
    snprintf(path, sizeof path, "%s/x.log", dir);
    snprintf(moved, sizeof moved, "%s/x.log.1", dir);

    reset_levels();
    vlog_init("test-vlog");
    CU_ASSERT_STRING_EQUAL(vlog_get_program_name(), "test-vlog");
    vlog_set_stderr(false);
    CU_ASSERT_EQUAL(vlog_set_log_file(path), 0);
    VLOG_INFO("first");
    CU_ASSERT_EQUAL(rename(path, moved), 0);
    CU_ASSERT_EQUAL(vlog_reopen_log_file(), 0);
    VLOG_WARN("second");
    VLOG_DBG("not logged");

    /* A bad path fails and keeps the current file.  (A missing directory
     * would be created: use one under a regular file.) */
    char plain[256], bad[300];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    snprintf(bad, sizeof bad, "%s/x.log", plain);
    FILE *pf = fopen(plain, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pf);
    fclose(pf);
    CU_ASSERT_EQUAL(vlog_set_log_file(bad), ENOTDIR);
    VLOG_ERR("third");
    CU_ASSERT_EQUAL(vlog_set_log_file(NULL), 0);
    CU_ASSERT_EQUAL(vlog_reopen_log_file(), 0);     /* No file: no-op. */
    VLOG_ERR("to nowhere");
    vlog_set_stderr(true);

    char buf[1024];
    FILE *f = fopen(moved, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof buf, f));
    CU_ASSERT_STRING_EQUAL(after_seq(buf), "test_vlog|INFO|first\n");
    CU_ASSERT_PTR_NULL(fgets(buf, sizeof buf, f));
    fclose(f);

    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof buf, f));
    CU_ASSERT_STRING_EQUAL(after_seq(buf), "test_vlog|WARN|second\n");
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof buf, f));
    CU_ASSERT_STRING_EQUAL(after_seq(buf), "test_vlog|ERR|third\n");
    CU_ASSERT_PTR_NULL(fgets(buf, sizeof buf, f));
    fclose(f);

    unlink(path);
    unlink(moved);
    unlink(plain);
    rmdir(dir);
}

static void
cleanup_lines(void)
{
    start_capture();
    stop_capture();
}

static void
test_cleanup(void)
{
    cleanup_lines();
    CU_ASSERT_EQUAL(n_lines, 0);
}

static const struct unit_test tests[] = {
    { "level names", test_level_names },
    { "set levels", test_set_levels },
    { "get levels", test_get_levels },
    { "format line", test_format_line },
    { "logging filters", test_logging_filters },
    { "rate limit arithmetic", test_rate_limit_arithmetic },
    { "rate limited logging", test_rate_limited_logging },
    { "log file", test_log_file },
    { "cleanup", test_cleanup },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("vlog", tests);
}
