/* Copyright (c) 2026 The chand authors.  See flow-counters.h. */

#include <config.h>
#include "flow-counters.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct flow_counter_total {
    uint32_t chan_id;
    char *name;
    uint64_t base;              /* Added up from readings that went down. */
    uint64_t last;              /* Last reading. */
};

/* A counted flow: its cookie and where its packets go. */
struct counted {
    uint64_t cookie;
    size_t slot;                /* Index into the result. */
};

static int
compare_count(const void *a_, const void *b_)
{
    const struct flow_count *a = a_, *b = b_;

    if (a->chan_id != b->chan_id) {
        return a->chan_id < b->chan_id ? -1 : 1;
    }
    return strcmp(a->name, b->name);
}

static int
compare_counted(const void *a_, const void *b_)
{
    const struct counted *a = a_, *b = b_;

    return a->cookie < b->cookie ? -1 : a->cookie > b->cookie;
}

/* Finds 'key' in the 'n' sorted counts at 'counts'. */
static struct flow_count *
find_count(struct flow_count *counts, size_t n, const struct flow_count *key)
{
    return bsearch(key, counts, n, sizeof *counts, compare_count);
}

/* Reads "n_packets=N" from the dump line that starts at 'line' and ends
 * before 'end'.  Returns N, or 0 if there is none. */
static uint64_t
line_packets(const char *line, const char *end)
{
    static const char key[] = "n_packets=";

    for (const char *p = line; p + sizeof key - 1 < end; p++) {
        if (!memcmp(p, key, sizeof key - 1)) {
            return strtoull(p + sizeof key - 1, NULL, 10);
        }
    }
    return 0;
}

/* Fills 'counts' with one zero entry per distinct (chan_id, counter) of
 * 'flows' and 'counted' with one entry per counted flow, both sorted.
 * Returns the number of counts. */
static size_t
collect(const struct flow_template_flows *flows, struct flow_count *counts,
        struct counted *counted, size_t *n_countedp)
{
    size_t n = 0, n_counted = 0;

    for (size_t i = 0; i < flows->n; i++) {
        const struct flow_template_flow *f = &flows->flows[i];
        if (f->counter) {
            counts[n++] = (struct flow_count) {
                .chan_id = f->chan_id, .name = f->counter,
            };
        }
    }
    qsort(counts, n, sizeof *counts, compare_count);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!k || compare_count(&counts[k - 1], &counts[i])) {
            counts[k++] = counts[i];
        }
    }
    for (size_t i = 0; i < flows->n; i++) {
        const struct flow_template_flow *f = &flows->flows[i];
        if (f->counter) {
            struct flow_count key = { .chan_id = f->chan_id,
                                      .name = f->counter };
            counted[n_counted++] = (struct counted) {
                .cookie = f->cookie,
                .slot = find_count(counts, k, &key) - counts,
            };
        }
    }
    qsort(counted, n_counted, sizeof *counted, compare_counted);
    *n_countedp = n_counted;
    return k;
}

size_t
flow_counters_sum_packets(const struct flow_template_flows *flows,
                          const struct flow_packets *packets, size_t n_packets,
                          struct flow_count **countsp)
{
    size_t n_flows = flows->n ? flows->n : 1;
    struct flow_count *counts = calloc(n_flows, sizeof *counts);
    struct counted *counted = calloc(n_flows, sizeof *counted);
    size_t n_counted;
    size_t n = 0;

    *countsp = NULL;
    if (!counts || !counted) {
        goto out;
    }
    n = collect(flows, counts, counted, &n_counted);
    if (!n) {
        goto out;
    }
    for (size_t i = 0; i < n_packets; i++) {
        struct counted key = { .cookie = packets[i].cookie };
        struct counted *hit = bsearch(&key, counted, n_counted,
                                      sizeof *counted, compare_counted);
        if (hit) {
            counts[hit->slot].packets += packets[i].packets;
        }
    }
    *countsp = counts;
    counts = NULL;

out:
    free(counts);
    free(counted);
    return *countsp ? n : 0;
}

/* Reads every "cookie=0x... n_packets=N" line of the dump-flows output
 * 'dump' into a malloc'd array (caller frees) and stores its length in
 * '*np'.  Returns NULL if memory runs out. */
static struct flow_packets *
parse_dump(const char *dump, size_t *np)
{
    size_t n = 0, cap = 16;
    struct flow_packets *packets = malloc(cap * sizeof *packets);

    for (const char *line = dump; packets && line && *line; ) {
        const char *end = strchr(line, '\n');
        if (!end) {
            end = line + strlen(line);
        }
        const char *c = strstr(line, "cookie=0x");
        if (c && c < end) {
            if (n >= cap) {
                struct flow_packets *bigger;
                cap *= 2;
                bigger = realloc(packets, cap * sizeof *packets);
                if (!bigger) {
                    free(packets);
                    return NULL;
                }
                packets = bigger;
            }
            packets[n++] = (struct flow_packets) {
                .cookie = strtoull(c + 9, NULL, 16),
                .packets = line_packets(line, end),
            };
        }
        line = *end ? end + 1 : end;
    }
    *np = n;
    return packets;
}

size_t
flow_counters_sum(const struct flow_template_flows *flows, const char *dump,
                  struct flow_count **countsp)
{
    size_t n_packets;
    struct flow_packets *packets = parse_dump(dump, &n_packets);

    *countsp = NULL;
    if (!packets) {
        return 0;
    }
    size_t n = flow_counters_sum_packets(flows, packets, n_packets, countsp);
    free(packets);
    return n;
}

void
flow_counters_init(struct flow_counters *fc)
{
    fc->totals = NULL;
    fc->n = 0;
}

static void
free_totals(struct flow_counter_total *totals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(totals[i].name);
    }
    free(totals);
}

void
flow_counters_destroy(struct flow_counters *fc)
{
    free_totals(fc->totals, fc->n);
    flow_counters_init(fc);
}

static int
compare_total(uint32_t chan_id, const char *name,
              const struct flow_counter_total *t)
{
    if (chan_id != t->chan_id) {
        return chan_id < t->chan_id ? -1 : 1;
    }
    return strcmp(name, t->name);
}

static const struct flow_counter_total *
find_total(const struct flow_counters *fc, uint32_t chan_id,
           const char *name)
{
    size_t lo = 0, hi = fc->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = compare_total(chan_id, name, &fc->totals[mid]);
        if (!cmp) {
            return &fc->totals[mid];
        } else if (cmp < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

int
flow_counters_update(struct flow_counters *fc, const struct flow_count *counts,
                     size_t n)
{
    struct flow_counter_total *totals = calloc(n ? n : 1, sizeof *totals);

    if (!totals) {
        return ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct flow_count *c = &counts[i];
        const struct flow_counter_total *old = find_total(fc, c->chan_id,
                                                          c->name);
        struct flow_counter_total *t = &totals[i];

        t->chan_id = c->chan_id;
        t->name = strdup(c->name);
        if (!t->name) {
            free_totals(totals, i);
            return ENOMEM;
        }
        t->base = old ? old->base : 0;
        if (old && c->packets < old->last) {
            t->base += old->last;
        }
        t->last = c->packets;
    }
    free_totals(fc->totals, fc->n);
    fc->totals = totals;
    fc->n = n;
    return 0;
}

uint64_t
flow_counters_get(const struct flow_counters *fc, uint32_t chan_id,
                  const char *name)
{
    const struct flow_counter_total *t = find_total(fc, chan_id, name);

    return t ? t->base + t->last : 0;
}
