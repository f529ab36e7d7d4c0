/*
 * bridge: chand-guest's bridge on the guest's own Open vSwitch.
 *
 * The guest bridge (default br-chan, datapath_type=netdev, OpenFlow13,
 * fail_mode=secure) holds the VM's vNIC (default eth0: the userspace
 * datapath reads it with AF_PACKET, so the guest kernel keeps seeing every
 * frame and the VM's own networking is unaffected) and chand-guest's
 * internal port (default chand0) carrying the guest endpoint's MAC and IP.
 * The bridge belongs to chand entirely: its flows are exactly those
 * rendered from flows/guest.flows, which move channel frames between the
 * two ports (untag towards chand0, tag towards the vNIC) and drop
 * everything else.
 *
 * Everything happens in chand-guest's process, without ever waiting:
 *
 *   - The bridge and its ports are added (idempotently, like ovs-vsctl
 *     --may-exist) by one OVSDB transaction on a lib/ovsdb-replica of the
 *     guest's Open_vSwitch database (--ovs-db).  The replica also gives
 *     the two OpenFlow port numbers (Interface.ofport) as ovs-vswitchd
 *     assigns them.
 *   - chand0 gets its MAC, its address (a /32: no prefix route), its link
 *     up, a host route to the host endpoint and a neighbour entry for it
 *     from ioctls, which the kernel does at once.
 *   - The flows go over chand's own OpenFlow connection to the bridge's
 *     management socket (RUNDIR/BRIDGE.mgmt) with lib/ofctrl, in the scope
 *     OFCTRL_ALL_FLOWS: one atomic bundle adds the missing flows and
 *     removes every flow nobody wants, whatever its cookie.  A flow the
 *     switch refuses is logged with its template line.
 *
 * A setup goes through these steps (shown as "step" in the status): the
 * database ("ovsdb": connected and read, then the transaction), the port
 * numbers ("ofports"; then chand0 is configured), the OpenFlow connection
 * ("openflow") and the flows ("flows").  It fails if it is not over within
 * its timeout (BRIDGE_SETUP_TIMEOUT_MS), or at once if the database cannot
 * be reached within BRIDGE_OVSDB_WAIT_MS.
 *
 * Once set up, every check interval (BRIDGE_CHECK_MS) the bridge is
 * checked: chand0 must be the same interface with its address (looked up
 * in-process), and a forced flow sync puts back missing flows, removes
 * unwanted ones and reads the flows' packet counts (the counted flows'
 * totals, e.g. "isolation_drops").  A check fails if chand0 changed, or if
 * the sync fails or is not over within BRIDGE_CHECK_TIMEOUT_MS.  An
 * ovs-vswitchd restart loses the flows and recreates chand0: the OpenFlow
 * connection drops (its seqno changes) and chand0's ifindex changes.
 * Either way the check fails, which is logged, and the bridge is set up
 * again at once.
 *
 * bridge_run() and bridge_wait() drive it from the caller's poll loop, and
 * bridge_run() returns at once: a wedged or stopped ovs-vswitchd or
 * ovsdb-server delays only the bridge, and the caller's loop (acks, the
 * local API) keeps running.  No child process is ever started.
 *
 * Failed setups are retried with lib/reconnect's backoff: the first retry
 * after BRIDGE_RETRY_MIN_MS, each further one doubling, up to
 * BRIDGE_RETRY_MAX_MS.  After a failed check the setup starts at once; the
 * backoff starts over if the bridge had been ready for BRIDGE_RETRY_MAX_MS.
 *
 * The flows are rendered by chan_flows_render_guest() (lib/chan-flows.h).
 */
#ifndef BRIDGE_H
#define BRIDGE_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"
#include "flow-template.h"

/* Defaults of the timing in struct bridge_config, in ms. */
#define BRIDGE_CHECK_MS 5000            /* Period of the check. */
#define BRIDGE_SETUP_TIMEOUT_MS 30000   /* A setup is stopped after this. */
#define BRIDGE_CHECK_TIMEOUT_MS 15000   /* A check is stopped after this. */
#define BRIDGE_RETRY_MIN_MS 1000        /* First retry after a failed setup. */
#define BRIDGE_RETRY_MAX_MS 10000       /* Retry backoff ceiling. */

#define BRIDGE_OVSDB_WAIT_MS 2000       /* A setup fails if the database
                                         * is not reachable by then. */

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

    /* Timing in ms; 0 means the default (BRIDGE_*).  Tests shorten it. */
    int check_ms;               /* Check period. */
    int setup_timeout_ms;       /* A setup fails if not over by then. */
    int check_timeout_ms;       /* A check fails if not over by then. */
    int retry_min_ms;           /* Setup retry backoff, first... */
    int retry_max_ms;           /* ...and largest. */
};

struct bridge;

/* Returns true if 'name' is usable as a Linux interface or OVS bridge name
 * (1..15 bytes of [A-Za-z0-9_.-], not starting with '-', not "." or
 * ".."). */
bool bridge_name_is_valid(const char *name);

/* Checks 'config' (copied) and loads and checks the template.  Does not
 * touch Open vSwitch yet.  Returns the new bridge (the caller frees it
 * with bridge_destroy()), or NULL with the reason logged and errno set. */
struct bridge *bridge_create(const struct bridge_config *config);

/* Frees the bridge, abandoning a setup or check in progress.  The guest
 * bridge itself is left as it is. */
void bridge_destroy(struct bridge *);

/* Takes what the database and the OpenFlow connection sent, moves a setup
 * or check on (or fails one past its deadline), and starts a setup or a
 * check if it is time to.  Never waits for Open vSwitch. */
void bridge_run(struct bridge *, long long now);

/* Makes the next poll_block() wake when bridge_run() has something to do:
 * the database or the OpenFlow connection has something to read, the
 * deadline of a setup or check in progress, or the next setup or check. */
void bridge_wait(const struct bridge *, long long now);

/* When bridge_run() next has something to do by the clock (the deadline
 * of a setup or check in progress; at least 'now'). */
long long bridge_next_wakeup(const struct bridge *, long long now);

/* True while a setup or check is in progress. */
bool bridge_is_busy(const struct bridge *);

/* True if the last setup succeeded and no check has failed since. */
bool bridge_is_ready(const struct bridge *);

/* A number that changes after every successful setup: chand0 may be a new
 * interface, so a socket bound to it must be bound again. */
unsigned int bridge_get_seqno(const struct bridge *);

/* Returns a new JSON object describing the bridge and its counters:
 * "bridge", "ready", "vnic", "vnic_ofport", "port", "port_ofport",
 * "flows" (how many are wanted), "flow_template", "setups",
 * "setup_failures", "checks", "check_failures", "last_error" (why the last
 * setup or check failed; "" after a successful setup), "isolation_drops",
 * "syncing" ("setup" or "check" while one is in progress, else null),
 * "step" (its step: "ovsdb", "ofports", "openflow", "flows" or "check"; or
 * null), "sync_ms" (how long it has run), "ovsdb_connected" and
 * "openflow_connected" (the two connections to Open vSwitch),
 * "backoff_ms" (the current retry backoff) and "next_run_ms" (time to the
 * next setup or check; 0 while one runs). */
json_t *bridge_status_json(const struct bridge *, long long now);

#endif /* bridge.h */
