/*
 * latency-hist: a fixed-size histogram of latencies in microseconds, for
 * percentiles that cost a few hundred counters and no allocation.
 *
 * Buckets are log-linear: values 0..15 us have a bucket each; above that,
 * every power of two is split into 8 equal buckets, up to 2^32 us (about 72
 * minutes; larger values count in the last bucket).  A bucket's upper bound
 * is at most 12.5 % above any value it holds, so a percentile read from the
 * histogram is never below the true one and at most 12.5 % above it (and
 * never above the largest value added).
 *
 * The module does no I/O and never reads the clock: callers add durations
 * they measured.  Histograms add up (latency_hist_merge()), and the buckets
 * are exported so that a reader can subtract two snapshots and get the
 * percentiles of what happened in between (doc/bench.md).
 */
#ifndef LATENCY_HIST_H
#define LATENCY_HIST_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define LATENCY_HIST_LINEAR 16          /* 0..15 us, one bucket each. */
#define LATENCY_HIST_SUB 8              /* Buckets per power of two. */
#define LATENCY_HIST_MAX_LOG2 32        /* Values >= 2^32 us: last bucket. */
#define LATENCY_HIST_N_BUCKETS \
    (LATENCY_HIST_LINEAR + (LATENCY_HIST_MAX_LOG2 - 4) * LATENCY_HIST_SUB)

struct latency_hist {
    uint64_t count;
    uint64_t sum_us;
    uint64_t max_us;
    uint64_t buckets[LATENCY_HIST_N_BUCKETS];
};

/* Empties 'h' (a zeroed struct is an empty histogram too). */
void latency_hist_init(struct latency_hist *h);

/* Adds one latency of 'us' microseconds (negative counts as 0). */
void latency_hist_add(struct latency_hist *h, int64_t us);

/* Adds every value of 'src' to 'dst'. */
void latency_hist_merge(struct latency_hist *dst,
                        const struct latency_hist *src);

/* The bucket that holds 'us', and the largest value bucket 'i' holds. */
unsigned int latency_hist_bucket(uint64_t us);
uint64_t latency_hist_bucket_max(unsigned int i);

/* Returns the 'pct' percentile (0 < pct <= 100) in microseconds: the upper
 * bound of the bucket that holds it, capped at the largest value added; 0
 * for an empty histogram. */
uint64_t latency_hist_percentile(const struct latency_hist *h, double pct);

/* Returns a new JSON object: {"count", "p50_us", "p90_us", "p99_us",
 * "p999_us", "max_us", "mean_us"} and, if 'with_buckets', "buckets": an
 * array of [upper bound in us, count] for the nonempty buckets.  The
 * caller owns the result. */
json_t *latency_hist_to_json(const struct latency_hist *h,
                             bool with_buckets);

#endif /* latency-hist.h */
