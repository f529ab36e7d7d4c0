/*
 * chan-flows: the variables chand's flow templates (flows/host.flows,
 * flows/guest.flows) are rendered with, derived from a channel's
 * configuration, so that chand-host, chand-guest and the test tools render
 * exactly the same rules.
 *
 * Host templates use HOST_MAC HOST_IP PORT CHAN_ID VID VNIC_OFPORT GUEST_MAC
 * GUEST_IP METER_ID INJECT_PORT TO_HOST; guest templates use the same minus
 * CHAN_ID, METER_ID, INJECT_PORT and TO_HOST, plus CHAND_OFPORT.
 *
 * METER_ID is the OpenFlow meter that rate-limits a channel's guest-to-host
 * frames on the host bridge (chan_flows_meter_id()).  INJECT_PORT and
 * TO_HOST say how chand-host meets the host bridge: with OpenFlow
 * PACKET_OUT/PACKET_IN, "CONTROLLER" and "controller(id=17224)"; through a
 * chand port (doc/ovs-port.md) at ofport N, "N" and "output:N".
 */
#ifndef CHAN_FLOWS_H
#define CHAN_FLOWS_H 1

#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"
#include "flow-template.h"

#define CHAN_FLOWS_MAX_VARS 12

/* The controller id chand-host sets on its OpenFlow connection, so that the
 * flows' PACKET_INs go to it alone. */
#define CHAN_FLOWS_CONTROLLER_ID 17224

/* Variables for one channel.  The strings live in the struct. */
struct chan_flows_vars {
    struct flow_template_var vars[CHAN_FLOWS_MAX_VARS];
    size_t n;
    char values[CHAN_FLOWS_MAX_VARS][32];
};

/* Meter ids: Open vSwitch's userspace datapath has meters 0..262143. */
#define CHAN_FLOWS_MAX_METER 262143
#define CHAN_FLOWS_METER_DIRECT 200000

/* Returns the meter id of channel 'chan_id': the chan-id itself up to
 * CHAN_FLOWS_METER_DIRECT, above that a folded value that two large
 * chan-ids may share (the flow manager refuses the second one). */
uint32_t chan_flows_meter_id(uint32_t chan_id);

/* Fills 'v' for the host bridge: channel 'cfg' whose vNIC is OpenFlow port
 * 'vnic_ofport', with chand-host's frames entering and leaving through the
 * chand port at 'inject_ofport', or through OpenFlow if it is 0.  With
 * 'cfg' NULL, only the bridge-wide variables (HOST_MAC, HOST_IP, PORT,
 * INJECT_PORT, TO_HOST), for [bridge] and [port]. */
void chan_flows_host_vars(const struct chan_config *cfg, int64_t vnic_ofport,
                          int64_t inject_ofport, struct chan_flows_vars *v);

/* Fills 'v' for the guest bridge: channel 'cfg', vNIC at 'vnic_ofport',
 * chand-guest's port at 'chand_ofport'. */
void chan_flows_guest_vars(const struct chan_config *cfg,
                           int64_t vnic_ofport, int64_t chand_ofport,
                           struct chan_flows_vars *v);

/* Renders the guest bridge's flows from the guest template 'ft' for
 * channel 'chan', its vNIC at 'vnic_ofport' and chand-guest's port at
 * 'chand_ofport': the [bridge], [vid] and [channel] sections, in that
 * order, appended to 'flows' (initialized by the caller), exactly as
 * chand-guest installs them.  Returns 0, or the error of the first section
 * that fails, with its line and detail in '*diag' and the section in
 * '*sectionp' (each if nonnull). */
enum flow_template_error chan_flows_render_guest(
    const struct flow_template *ft, const struct chan_config *chan,
    int64_t vnic_ofport, int64_t chand_ofport,
    struct flow_template_flows *flows, struct flow_template_diag *diag,
    enum flow_template_section *sectionp);

#endif /* chan-flows.h */
