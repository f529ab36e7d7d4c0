/*
 * guest-metrics: what chand-guest's metrics are made of (lib/metrics.h):
 * the rules that name, type and describe the members of guest/status.
 * guest.c renders the result for guest/metrics.
 *
 * chand-guest knows its channel by id, not the VM's name nor the chassis
 * (those are the host's); its series carry label "chan_id", which
 * chand_channel_info on the host maps to "vm" and "chassis".
 */
#ifndef GUEST_METRICS_H
#define GUEST_METRICS_H 1

#include <jansson.h>

struct ctl_server;
struct metrics;

/* Adds guest/status's object 'status' (borrowed) and the counters of
 * control socket 'ctl' as chand_guest_* series. */
void guest_metrics_add_status(struct metrics *, const json_t *status,
                              const struct ctl_server *ctl);

#endif /* guest-metrics.h */
