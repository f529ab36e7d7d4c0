/* Copyright (c) 2026 The chand authors.
 *
 * Unit tests for lib/flow-counters: adding up counted flows from
 * `ovs-ofctl dump-flows` output, and running totals that never go down. */

#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow-counters.h"
#include "flow-template.h"
#include "unit.h"

#define N_ELEMS(a) (sizeof (a) / sizeof (a)[0])

static const char template[] =
    "[bridge]\n"
    "%counter isolation_drops\n"
    "priority=40030,dl_dst=0a:c4:00:00:00:00/ff:ff:00:00:00:00,"
    "actions=drop\n"
    "priority=1,actions=drop\n"
    "[channel]\n"
    "%counter isolation_drops\n"
    "priority=40040,in_port=${P},dl_src=${MAC},actions=drop\n"
    "%counter isolation_drops\n"
    "priority=40040,in_port=${P},ip,nw_src=169.254.0.1,actions=drop\n"
    "%counter probe_drops\n"
    "priority=40035,dl_dst=${MAC},actions=drop\n"
    "priority=40100,in_port=${P},actions=drop\n";

/* Renders 'template' for the bridge and channels 7 (port 1) and 8 (port
 * 2) into 'flows'; returns the template. */
static struct flow_template *
render(struct flow_template_flows *flows)
{
    const struct flow_template_var v7[] = {
        { "P", "1" }, { "MAC", "0a:c4:00:00:00:07" },
    };
    const struct flow_template_var v8[] = {
        { "P", "2" }, { "MAC", "0a:c4:00:00:00:08" },
    };
    struct flow_template *ft = NULL;

    CU_ASSERT_EQUAL_FATAL(flow_template_parse(template, strlen(template),
                                              &ft, NULL), 0);
    flow_template_flows_init(flows);
    CU_ASSERT_EQUAL_FATAL(flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0,
                                               NULL, 0, flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 7,
                                               v7, 2, flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 8,
                                               v8, 2, flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flows->n, 2 + 4 + 4);
    return ft;
}

/* Appends a dump-flows line for 'f' with 'packets' to 'buf'. */
static void
dump_line(char *buf, size_t size, const struct flow_template_flow *f,
          uint64_t packets)
{
    size_t len = strlen(buf);
    snprintf(buf + len, size - len,
             " cookie=0x%"PRIx64", duration=1.5s, table=0, n_packets=%"PRIu64
             ", n_bytes=%"PRIu64", %s\n", f->cookie, packets, packets * 60,
             f->text);
}

static const struct flow_count *
find(const struct flow_count *c, size_t n, uint32_t chan_id, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].chan_id == chan_id && !strcmp(c[i].name, name)) {
            return &c[i];
        }
    }
    return NULL;
}

static void
test_sum(void)
{
    struct flow_template_flows flows;
    struct flow_template *ft = render(&flows);
    char dump[8192] = "OFPST_FLOW reply (OF1.3) (xid=0x2):\n";

    /* Every flow on the bridge with packets 100 * (index + 1), plus a
     * foreign flow and garbage lines. */
    for (size_t i = 0; i < flows.n; i++) {
        dump_line(dump, sizeof dump, &flows.flows[i], 100 * (i + 1));
    }
    strcat(dump, " cookie=0x1, table=0, n_packets=99999, priority=150,"
           "actions=NORMAL\n");
    strcat(dump, "cookie=0xzz n_packets=5\nn_packets=7\n\n cookie=0x43\n");

    struct flow_count *c;
    size_t n = flow_counters_sum(&flows, dump, &c);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    /* Sorted by chan-id, then name. */
    for (size_t i = 1; i < n; i++) {
        CU_ASSERT(c[i - 1].chan_id < c[i].chan_id
                  || (c[i - 1].chan_id == c[i].chan_id
                      && strcmp(c[i - 1].name, c[i].name) < 0));
    }
    /* Flow indexes: bridge 0 (counted), 1; channel 7: 2, 3 (isolation),
     * 4 (probe), 5; channel 8: 6, 7, 8, 9. */
    const struct flow_count *x = find(c, n, 0, "isolation_drops");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->packets, 100);
    x = find(c, n, 7, "isolation_drops");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->packets, 300 + 400);
    x = find(c, n, 7, "probe_drops");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->packets, 500);
    x = find(c, n, 8, "isolation_drops");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->packets, 700 + 800);
    x = find(c, n, 8, "probe_drops");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->packets, 900);
    free(c);

    /* Flows missing from the dump count 0; an empty dump too. */
    n = flow_counters_sum(&flows, "", &c);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(c[i].packets, 0);
    }
    free(c);

    flow_template_flows_destroy(&flows);
    flow_template_destroy(ft);
}

static void
test_no_counters(void)
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_count *c = (struct flow_count *) 1;

    CU_ASSERT_EQUAL(flow_counters_sum(&flows, "n_packets=1\n", &c), 0);
    CU_ASSERT_PTR_NULL(c);
}

static void
test_totals(void)
{
    struct flow_counters fc;
    struct flow_count r1[] = {
        { 0, "isolation_drops", 5 }, { 7, "isolation_drops", 10 },
        { 7, "probe_drops", 1 },
    };
    struct flow_count r2[] = {
        { 0, "isolation_drops", 8 }, { 7, "isolation_drops", 3 },
        { 7, "probe_drops", 1 },
    };
    struct flow_count r3[] = {
        { 7, "isolation_drops", 4 },
    };

    flow_counters_init(&fc);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "isolation_drops"), 0);
    CU_ASSERT_EQUAL(flow_counters_update(&fc, r1, N_ELEMS(r1)), 0);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 0, "isolation_drops"), 5);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "isolation_drops"), 10);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "probe_drops"), 1);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "nosuch"), 0);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 8, "isolation_drops"), 0);

    /* Channel 7's flows were re-added (10 -> 3): the 10 are kept. */
    CU_ASSERT_EQUAL(flow_counters_update(&fc, r2, N_ELEMS(r2)), 0);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 0, "isolation_drops"), 8);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "isolation_drops"), 13);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "probe_drops"), 1);

    /* Growing again adds to the base; counters not read are forgotten. */
    CU_ASSERT_EQUAL(flow_counters_update(&fc, r3, N_ELEMS(r3)), 0);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "isolation_drops"), 14);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 0, "isolation_drops"), 0);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "probe_drops"), 0);

    /* The names were copied: the readings may go away. */
    r3[0].name = "changed";
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "isolation_drops"), 14);

    CU_ASSERT_EQUAL(flow_counters_update(&fc, NULL, 0), 0);
    CU_ASSERT_EQUAL(flow_counters_get(&fc, 7, "isolation_drops"), 0);
    flow_counters_destroy(&fc);
    flow_counters_destroy(&fc);
}

static const struct unit_test tests[] = {
    { "sum", test_sum },
    { "no counters", test_no_counters },
    { "totals", test_totals },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("flow-counters", tests);
}
