/*
 * bridge: chand-guest's bridge on the guest's own Open vSwitch.
 *
 * The guest bridge (default br-chan, datapath_type=netdev, OpenFlow13,
 * fail_mode=secure) holds the VM's vNIC (default eth0: the userspace
 * datapath reads it with AF_PACKET, so the guest kernel keeps seeing every
 * frame and the VM's own networking is unaffected) and chand-guest's
 * internal port (default chand0) carrying the guest endpoint's MAC and IP.
 * The bridge belongs to chand entirely: its flows are exactly those
 * rendered from flows/guest.flows, installed with `ovs-ofctl --bundle
 * replace-flows`, which move channel frames between the two ports (untag
 * towards chand0, tag towards the vNIC) and drop everything else.
 *
 * bridge_run() sets the bridge up (idempotently: ovs-vsctl --may-exist),
 * reads the two OpenFlow port numbers back, configures chand0 with `ip`,
 * and installs the flows; on failure it retries with backoff.  Once set
 * up, it checks every BRIDGE_CHECK_MS that chand0 is the same interface
 * with its address and that the bridge holds exactly the expected flows
 * (an ovs-vswitchd restart loses the flows and recreates chand0); if not,
 * it logs why and sets everything up again.
 *
 * The programs (ovs-vsctl, ovs-ofctl, ip) run synchronously with
 * timeouts, so a wedged ovs-vswitchd can stall the caller's loop for at
 * most a few seconds per attempt.  bridge_render() is pure.
 */
#ifndef BRIDGE_H
#define BRIDGE_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "chan-endpoint.h"
#include "flow-template.h"

#define BRIDGE_CHECK_MS 5000        /* Period of the health check. */
#define BRIDGE_RETRY_MIN_MS 1000    /* First retry after a failed setup. */
#define BRIDGE_RETRY_MAX_MS 10000   /* Retry backoff ceiling. */
#define BRIDGE_OFPORT_WAIT_MS 10000 /* How long to wait for ofports. */

struct bridge_config {
    const char *ovs_db;         /* OVSDB remote, e.g. "unix:/var/run/
                                 * openvswitch/db.sock". */
    const char *ovs_rundir;     /* Where BRIDGE.mgmt is. */
    const char *bridge;         /* Bridge name, e.g. "br-chan". */
    const char *vnic;           /* The VM's NIC, e.g. "eth0". */
    const char *port;           /* chand-guest's port, e.g. "chand0". */
    const char *flows;          /* Template file (flows/guest.flows). */
    struct chan_config chan;    /* The channel (its chan_id is used for
                                 * the flows' cookies). */
};

struct bridge;

/* Returns true if 'name' is usable as a Linux interface or OVS bridge name
 * (1..15 bytes of [A-Za-z0-9_.-], not starting with '-', not "." or
 * ".."). */
bool bridge_name_is_valid(const char *name);

/* Checks 'config' (copied) and loads and checks the template.  Does not
 * touch Open vSwitch yet.  Returns 0 and stores the bridge in '*brp' (the
 * caller frees it with bridge_destroy()), or a positive errno with the
 * reason logged, and stores NULL. */
int bridge_create(const struct bridge_config *config, struct bridge **brp);
void bridge_destroy(struct bridge *);

/* Sets up or checks the bridge if it is time to. */
void bridge_run(struct bridge *, long long now);

/* When bridge_run() next has something to do. */
long long bridge_next_wakeup(const struct bridge *, long long now);

/* True if the last setup succeeded and no check has failed since. */
bool bridge_is_ready(const struct bridge *);

/* A number that changes after every successful setup: chand0 may be a new
 * interface, so a socket bound to it must be bound again. */
unsigned int bridge_get_seqno(const struct bridge *);

/* Returns a new JSON object describing the bridge and its counters. */
json_t *bridge_status_json(const struct bridge *, long long now);

/* Renders every section of 'ft' for channel 'chan' with the given ofports
 * into 'flows' (initialized by the caller).  Returns 0, or a flow-template
 * error with the line and detail in '*diag' (if nonnull). */
enum flow_template_error bridge_render(const struct flow_template *ft,
                                       const struct chan_config *chan,
                                       int64_t vnic_ofport,
                                       int64_t chand_ofport,
                                       struct flow_template_flows *flows,
                                       struct flow_template_diag *diag);

#endif /* bridge.h */
