/*
 * chan-flows: the variables chand's flow templates (flows/host.flows,
 * flows/guest.flows) are rendered with, derived from a channel's
 * configuration, so that chand-host, chand-guest and the test tools render
 * exactly the same rules.
 *
 * Host templates use HOST_MAC HOST_IP PORT CHAN_ID VID VNIC_OFPORT GUEST_MAC
 * GUEST_IP; guest templates use the same minus CHAN_ID, plus CHAND_OFPORT.
 */
#ifndef CHAN_FLOWS_H
#define CHAN_FLOWS_H 1

#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"
#include "flow-template.h"

#define CHAN_FLOWS_MAX_VARS 10

/* Variables for one channel.  The strings live in the struct. */
struct chan_flows_vars {
    struct flow_template_var vars[CHAN_FLOWS_MAX_VARS];
    size_t n;
    char values[CHAN_FLOWS_MAX_VARS][32];
};

/* Fills 'v' for the host bridge: channel 'cfg' whose vNIC is OpenFlow port
 * 'vnic_ofport'.  With 'cfg' NULL, only the bridge-wide variables
 * (HOST_MAC, HOST_IP, PORT). */
void chan_flows_host_vars(const struct chan_config *cfg, int64_t vnic_ofport,
                          struct chan_flows_vars *v);

/* Fills 'v' for the guest bridge: channel 'cfg', vNIC at 'vnic_ofport',
 * chand-guest's port at 'chand_ofport'. */
void chan_flows_guest_vars(const struct chan_config *cfg,
                           int64_t vnic_ofport, int64_t chand_ofport,
                           struct chan_flows_vars *v);

#endif /* chan-flows.h */
