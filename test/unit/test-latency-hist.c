/* CUnit suite for lib/latency-hist: bucket bounds, and percentiles checked
 * against the exact ones of random samples. */

#include <config.h>
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "latency-hist.h"

static int
compare_u64(const void *a_, const void *b_)
{
    uint64_t a = *(const uint64_t *) a_, b = *(const uint64_t *) b_;
    return a < b ? -1 : a > b;
}

/* Every value lands in a bucket whose bounds hold it, buckets are in
 * order, and an upper bound is within 12.5 % of every value it holds. */
static void
test_buckets(void)
{
    uint64_t prev_max = 0;
    for (unsigned int i = 0; i < LATENCY_HIST_N_BUCKETS - 1; i++) {
        uint64_t max = latency_hist_bucket_max(i);
        CU_ASSERT(i == 0 || max > prev_max);
        CU_ASSERT_EQUAL(latency_hist_bucket(max), i);
        CU_ASSERT_EQUAL(latency_hist_bucket(max + 1), i + 1);
        uint64_t min = i ? prev_max + 1 : 0;
        CU_ASSERT(max - min <= min / 8);
        prev_max = max;
    }
    CU_ASSERT_EQUAL(latency_hist_bucket(UINT64_MAX),
                    LATENCY_HIST_N_BUCKETS - 1);
    CU_ASSERT_EQUAL(latency_hist_bucket(1ULL << 40),
                    LATENCY_HIST_N_BUCKETS - 1);
}

static void
check_percentiles(uint64_t *values, size_t n, const struct latency_hist *h)
{
    qsort(values, n, sizeof *values, compare_u64);
    static const double pcts[] = { 1, 50, 90, 99, 99.9, 100 };
    for (size_t i = 0; i < sizeof pcts / sizeof *pcts; i++) {
        size_t rank = (size_t) (pcts[i] / 100.0 * n + 0.999999999);
        if (!rank) {
            rank = 1;
        }
        uint64_t exact = values[rank - 1];
        uint64_t got = latency_hist_percentile(h, pcts[i]);
        if (got < exact || got > exact + exact / 8 || got > values[n - 1]) {
            printf("p%g: exact %llu, histogram %llu\n", pcts[i],
                   (unsigned long long) exact, (unsigned long long) got);
        }
        CU_ASSERT(got >= exact);
        CU_ASSERT(got <= exact + exact / 8);
        CU_ASSERT(got <= values[n - 1]);
    }
}

static void
test_random(void)
{
    uint64_t state = 0x5eed1a7e;
    for (int round = 0; round < 50; round++) {
        size_t n = 1 + unit_random(&state) % 5000;
        uint64_t *values = malloc(n * sizeof *values);
        struct latency_hist h;
        latency_hist_init(&h);
        /* Log-uniform over 1 us .. about 2^(8 + round % 20) us. */
        for (size_t i = 0; i < n; i++) {
            unsigned int bits = 1 + unit_random(&state) % (8 + round % 20);
            values[i] = unit_random(&state) % (1ULL << bits);
            latency_hist_add(&h, values[i]);
        }
        CU_ASSERT_EQUAL(h.count, n);
        check_percentiles(values, n, &h);
        free(values);
    }
}

static void
test_merge_and_json(void)
{
    struct latency_hist a, b, all;
    latency_hist_init(&a);
    latency_hist_init(&b);
    latency_hist_init(&all);
    CU_ASSERT_EQUAL(latency_hist_percentile(&a, 99), 0);
    for (int i = 1; i <= 100; i++) {
        latency_hist_add(i % 2 ? &a : &b, i * 100);
        latency_hist_add(&all, i * 100);
    }
    latency_hist_add(&a, -5);           /* Counts as 0. */
    latency_hist_add(&all, 0);
    latency_hist_merge(&a, &b);
    CU_ASSERT_EQUAL(a.count, 101);
    CU_ASSERT_EQUAL(a.max_us, 10000);
    for (unsigned int i = 0; i < LATENCY_HIST_N_BUCKETS; i++) {
        CU_ASSERT_EQUAL(a.buckets[i], all.buckets[i]);
    }
    json_t *j = latency_hist_to_json(&a, true);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "count")), 101);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "max_us")), 10000);
    json_int_t p50 = json_integer_value(json_object_get(j, "p50_us"));
    CU_ASSERT(p50 >= 5000 && p50 <= 5000 + 5000 / 8);
    json_t *buckets = json_object_get(j, "buckets");
    json_int_t total = 0;
    size_t i;
    json_t *bucket;
    json_array_foreach (buckets, i, bucket) {
        total += json_integer_value(json_array_get(bucket, 1));
    }
    CU_ASSERT_EQUAL(total, 101);
    json_decref(j);
}

static const struct unit_test tests[] = {
    { "bucket bounds", test_buckets },
    { "percentiles of random samples", test_random },
    { "merge and JSON", test_merge_and_json },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("latency-hist", tests);
}
