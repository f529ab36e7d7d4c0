/* Copyright (c) 2026 The chand authors.  See chand-bench.h. */

#include <config.h>
#include "chand-bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int bench_stop;

int64_t
bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Returns CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns, to convert kernel
 * packet timestamps (real time) into monotonic time. */
int64_t
bench_realtime_offset(void)
{
    struct timespec rt;
    int64_t m0 = bench_now();
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t m1 = bench_now();
    return (int64_t) rt.tv_sec * 1000000000 + rt.tv_nsec - (m0 + m1) / 2;
}

void
bench_sleep_until(int64_t t)
{
    struct timespec ts = { .tv_sec = t / 1000000000,
                           .tv_nsec = t % 1000000000 };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
           == EINTR && !bench_stop) {
        continue;
    }
}

void
bench_fatal(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("chand-bench: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

void
bench_warn(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("chand-bench: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

/* Prints 'obj' (stolen) compactly on one line of stdout. */
void
bench_print_json(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", text ? text : "{}");
    fflush(stdout);
    free(text);
    json_decref(obj);
}

/* Creates (or truncates) 'path', if nonnull: the "I am ready" signal the
 * harness waits for. */
void
bench_touch(const char *path)
{
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            bench_fatal("%s: %s", path, strerror(errno));
        }
        close(fd);
    }
}

bool
bench_parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || !*s || *s == '-') {
        return false;
    }
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s) {
        return false;
    }
    /* Suffixes K, M, G (binary) for sizes. */
    switch (*end) {
    case 'k': case 'K': x <<= 10; end++; break;
    case 'm': case 'M': x <<= 20; end++; break;
    case 'g': case 'G': x <<= 30; end++; break;
    default: break;
    }
    if (*end) {
        return false;
    }
    *v = x;
    return true;
}

uint64_t
bench_arg_u64(const char *opt, const char *s)
{
    uint64_t v;
    if (!bench_parse_u64(s, &v)) {
        bench_fatal("%s: bad number '%s'", opt, s ? s : "");
    }
    return v;
}

double
bench_arg_double(const char *opt, const char *s)
{
    char *end;
    double d = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || d < 0) {
        bench_fatal("%s: bad number '%s'", opt, s ? s : "");
    }
    return d;
}

/* Parses "A.B.C.D:PORT" into host-order 'ip' and 'port'. */
bool
bench_parse_ipport(const char *s, uint32_t *ip, uint16_t *port)
{
    char buf[64];
    const char *colon = strrchr(s, ':');
    struct in_addr a;
    uint64_t p;
    if (!colon || colon - s >= (ptrdiff_t) sizeof buf) {
        return false;
    }
    memcpy(buf, s, colon - s);
    buf[colon - s] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1 || !bench_parse_u64(colon + 1, &p)
        || p > 65535) {
        return false;
    }
    *ip = ntohl(a.s_addr);
    *port = p;
    return true;
}

/* Fills 'len' bytes at 'buf' with a bench payload: magic, 'tag', 'seq' (big
 * endian), zeros.  'len' must be at least BENCH_HDR_LEN. */
void
bench_payload(uint8_t *buf, size_t len, uint32_t tag, uint64_t seq)
{
    memset(buf, 0, len);
    memcpy(buf, BENCH_MAGIC, 4);
    for (int i = 0; i < 4; i++) {
        buf[4 + i] = tag >> (24 - 8 * i);
    }
    for (int i = 0; i < 8; i++) {
        buf[8 + i] = seq >> (56 - 8 * i);
    }
}

bool
bench_payload_check(const uint8_t *buf, size_t len, uint32_t tag,
                    uint64_t *seq)
{
    if (len < BENCH_HDR_LEN || memcmp(buf, BENCH_MAGIC, 4)) {
        return false;
    }
    uint32_t t = 0;
    for (int i = 0; i < 4; i++) {
        t = (t << 8) | buf[4 + i];
    }
    uint64_t s = 0;
    for (int i = 0; i < 8; i++) {
        s = (s << 8) | buf[8 + i];
    }
    *seq = s;
    return t == tag;
}

static int
cmp_i64(const void *a_, const void *b_)
{
    int64_t a = *(const int64_t *) a_, b = *(const int64_t *) b_;
    return a < b ? -1 : a > b;
}

static double
pct(const int64_t *v, size_t n, double p)
{
    /* Nearest rank. */
    size_t rank = (size_t) (p / 100.0 * n + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return v[rank - 1] / 1e6;
}

/* Sorts the 'n' nanosecond values at 'v' and returns a new JSON object with
 * their count and p50/p90/p99/p99.9/min/max/mean in milliseconds. */
json_t *
bench_percentiles(int64_t *v, size_t n)
{
    if (!n) {
        return json_pack("{sI}", "n", (json_int_t) 0);
    }
    qsort(v, n, sizeof *v, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
    }
    return json_pack("{sI sf sf sf sf sf sf sf}",
                     "n", (json_int_t) n,
                     "min_ms", v[0] / 1e6,
                     "p50_ms", pct(v, n, 50),
                     "p90_ms", pct(v, n, 90),
                     "p99_ms", pct(v, n, 99),
                     "p999_ms", pct(v, n, 99.9),
                     "max_ms", v[n - 1] / 1e6,
                     "mean_ms", sum / n / 1e6);
}

static void
on_signal(int sig)
{
    (void) sig;
    bench_stop = 1;
}

/* SIGINT and SIGTERM set 'bench_stop' (without SA_RESTART, so blocking
 * calls return EINTR); SIGPIPE is ignored. */
void
bench_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

uint64_t
bench_pacer_due(const struct bench_pacer *p, int64_t now)
{
    if (p->rate <= 0) {
        return UINT64_MAX;
    }
    if (now <= p->start) {
        return 1;
    }
    return (uint64_t) ((now - p->start) * p->rate / 1e9) + 1;
}

/* When item 'i' (0-based) is due. */
int64_t
bench_pacer_time_of(const struct bench_pacer *p, uint64_t i)
{
    if (p->rate <= 0) {
        return p->start;
    }
    return p->start + (int64_t) (i * 1e9 / p->rate);
}
