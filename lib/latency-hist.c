/* latency-hist: log-linear latency histograms (see latency-hist.h). */

#include <config.h>
#include "latency-hist.h"

#include <stdbool.h>
#include <string.h>

void
latency_hist_init(struct latency_hist *h)
{
    memset(h, 0, sizeof *h);
}

static unsigned int
log2_floor(uint64_t x)
{
    return 63 - __builtin_clzll(x);
}

unsigned int
latency_hist_bucket(uint64_t us)
{
    if (us < LATENCY_HIST_LINEAR) {
        return us;
    }
    unsigned int msb = log2_floor(us);
    if (msb >= LATENCY_HIST_MAX_LOG2) {
        return LATENCY_HIST_N_BUCKETS - 1;
    }
    unsigned int sub = (us >> (msb - 3)) & (LATENCY_HIST_SUB - 1);
    return LATENCY_HIST_LINEAR + (msb - 4) * LATENCY_HIST_SUB + sub;
}

uint64_t
latency_hist_bucket_max(unsigned int i)
{
    if (i < LATENCY_HIST_LINEAR) {
        return i;
    }
    if (i >= LATENCY_HIST_N_BUCKETS - 1) {
        return UINT64_MAX;
    }
    unsigned int msb = (i - LATENCY_HIST_LINEAR) / LATENCY_HIST_SUB + 4;
    unsigned int sub = (i - LATENCY_HIST_LINEAR) % LATENCY_HIST_SUB;
    uint64_t width = 1ULL << (msb - 3);
    return (1ULL << msb) + (sub + 1) * width - 1;
}

void
latency_hist_add(struct latency_hist *h, int64_t us)
{
    uint64_t v = us < 0 ? 0 : us;
    h->buckets[latency_hist_bucket(v)]++;
    h->count++;
    h->sum_us += v;
    if (v > h->max_us) {
        h->max_us = v;
    }
}

void
latency_hist_merge(struct latency_hist *dst, const struct latency_hist *src)
{
    for (unsigned int i = 0; i < LATENCY_HIST_N_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us) {
        dst->max_us = src->max_us;
    }
}

uint64_t
latency_hist_percentile(const struct latency_hist *h, double pct)
{
    if (!h->count) {
        return 0;
    }
    /* The rank of the percentile, 1-based: the smallest value with at
     * least pct % of the values at or below it. */
    double want = pct / 100.0 * h->count;
    uint64_t rank = want;
    if (rank < want || !rank) {
        rank++;
    }
    if (rank > h->count) {
        rank = h->count;
    }
    uint64_t seen = 0;
    for (unsigned int i = 0; i < LATENCY_HIST_N_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t bound = latency_hist_bucket_max(i);
            return bound < h->max_us ? bound : h->max_us;
        }
    }
    return h->max_us;
}

json_t *
latency_hist_to_json(const struct latency_hist *h, bool with_buckets)
{
    json_t *obj = json_pack(
        "{sI sI sI sI sI sI sI}",
        "count", (json_int_t) h->count,
        "p50_us", (json_int_t) latency_hist_percentile(h, 50),
        "p90_us", (json_int_t) latency_hist_percentile(h, 90),
        "p99_us", (json_int_t) latency_hist_percentile(h, 99),
        "p999_us", (json_int_t) latency_hist_percentile(h, 99.9),
        "max_us", (json_int_t) h->max_us,
        "mean_us", (json_int_t) (h->count ? h->sum_us / h->count : 0));
    if (with_buckets) {
        json_t *buckets = json_array();
        for (unsigned int i = 0; i < LATENCY_HIST_N_BUCKETS; i++) {
            if (h->buckets[i]) {
                uint64_t bound = latency_hist_bucket_max(i);
                json_array_append_new(
                    buckets, json_pack("[II]",
                                       (json_int_t) (bound > INT64_MAX
                                                     ? INT64_MAX : bound),
                                       (json_int_t) h->buckets[i]));
            }
        }
        json_object_set_new(obj, "buckets", buckets);
    }
    return obj;
}
