/*
 * host-metrics: what chand-host's metrics are made of (lib/metrics.h): the
 * rules that name, type and describe the members of host/status,
 * channel/show and transfer/list, and the channel's latency histograms.
 * host.c renders the result for host/metrics and for --metrics.
 *
 * Every series carries label "chassis"; a channel's also carry "vm".
 */
#ifndef HOST_METRICS_H
#define HOST_METRICS_H 1

#include <jansson.h>

struct latency_hist;
struct metrics;

/* Adds host/status's object 'status' and transfer/list's object
 * 'transfer' (both borrowed; 'transfer' may be NULL) as chand_host_*
 * series labelled 'chassis' (may be NULL while unknown). */
void host_metrics_add_status(struct metrics *, const json_t *status,
                             const json_t *transfer, const char *chassis);

/* Adds channel/show's object 'channel' (borrowed) as chand_channel_*
 * series labelled with its VM and 'chassis', plus its CHANNEL_N_LATENCY
 * histograms 'latency' (see channel.h). */
void host_metrics_add_channel(struct metrics *, const json_t *channel,
                              const char *chassis,
                              const struct latency_hist *latency);

#endif /* host-metrics.h */
