/*
 * flow-counters: packet counts of chand's counted flows, added up per
 * channel and counter name.
 *
 * A flow template rule preceded by "%counter NAME" (flows/README.md) is a
 * counted flow: every packet it matches counts towards NAME of its
 * channel (its cookie's chan_id; 0 for the bridge's shared rules), e.g.
 * "isolation_drops" of the VM whose vNIC sent the frame.
 * flow_counters_sum() reads `ovs-ofctl dump-flows` output, and
 * flow_counters_sum_packets() OpenFlow flow statistics, and add up the
 * packets of every counted flow of a rendered flow list.
 *
 * Open vSwitch forgets a flow's counts when the flow is removed and added
 * again (an ovs-vswitchd restart, a re-rendered rule), so a struct
 * flow_counters keeps running totals that never go down: when a sum is
 * lower than the one before, the one before is kept as a base.  (Counts of
 * one rule may then be missed when only some of a counter's rules are
 * re-added between two readings.)
 *
 * Pure: no I/O, no logging.
 */
#ifndef FLOW_COUNTERS_H
#define FLOW_COUNTERS_H 1

#include <stddef.h>
#include <stdint.h>

#include "flow-template.h"

/* One counter of one channel. */
struct flow_count {
    uint32_t chan_id;           /* 0: the bridge's shared rules. */
    const char *name;           /* Counter name; borrowed (see below). */
    uint64_t packets;
};

/* Adds up, for every counted flow in 'flows', the n_packets that the
 * `ovs-ofctl dump-flows` output 'dump' (null-terminated) gives for its
 * cookie (a flow absent from 'dump' counts 0).  Stores in '*countsp' a
 * malloc'd array (caller frees) with one entry per distinct (chan_id,
 * name) among the counted flows, sorted by chan_id then name, and returns
 * its length.  The names are borrowed from 'flows' (and so from its
 * template).  Returns 0 with NULL if there is no counted flow or memory
 * runs out. */
size_t flow_counters_sum(const struct flow_template_flows *flows,
                         const char *dump, struct flow_count **countsp);

/* The packet count of the flow with 'cookie'. */
struct flow_packets {
    uint64_t cookie;
    uint64_t packets;
};

/* Like flow_counters_sum(), with the flows' packet counts given as the
 * 'n_packets' pairs in 'packets' (e.g. from OpenFlow flow statistics)
 * instead of dump-flows text. */
size_t flow_counters_sum_packets(const struct flow_template_flows *flows,
                                 const struct flow_packets *packets,
                                 size_t n_packets,
                                 struct flow_count **countsp);

/* Running totals.  Initialize with flow_counters_init(), free with
 * flow_counters_destroy(). */
struct flow_counters {
    struct flow_counter_total *totals;  /* Sorted by chan_id, name. */
    size_t n;
};

void flow_counters_init(struct flow_counters *);
void flow_counters_destroy(struct flow_counters *);

/* Takes a new reading: the 'n' sums in 'counts' (as flow_counters_sum()
 * makes them, sorted; borrowed).  A total not in 'counts' is forgotten (its
 * channel is gone).  Returns 0 or ENOMEM (then 'fc' is unchanged). */
int flow_counters_update(struct flow_counters *, const struct flow_count *,
                         size_t n);

/* Returns the running total of counter 'name' of channel 'chan_id', or 0
 * if there is none. */
uint64_t flow_counters_get(const struct flow_counters *, uint32_t chan_id,
                           const char *name);

#endif /* flow-counters.h */
