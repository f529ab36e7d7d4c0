/*
 * ofctrl: keeps one bridge's chand flows and meters equal to a wanted set,
 * over chand's own OpenFlow connection, in the manner of OVN's ofctrl.
 *
 * A sync (ofctrl_sync_start()) goes through these steps on one
 * lib/ofconn connection, without ever blocking the caller:
 *
 *   1. Dump: one flow statistics request for every flow whose cookie
 *      carries chand's tag (FLOW_TEMPLATE_COOKIE_TAG), or for every flow
 *      of a bridge that belongs to chand entirely (OFCTRL_ALL_FLOWS), one
 *      meter statistics and one meter configuration request (none if the
 *      caller has no meters).  The replies give
 *      the installed cookies with their packet counts, and the installed
 *      meters with their rates and drop counts.
 *   2. Meters: METER_MOD add for each wanted meter that is missing, modify
 *      for each whose rate or burst differs.
 *   3. Flows, as one atomic and ordered bundle (ONF extension 230 in
 *      OpenFlow 1.3): a delete by cookie for each installed cookie nobody
 *      wants, then an add for each wanted flow whose cookie is not
 *      installed.  Flows with other cookies (the bridge's own, OVN's) are
 *      never touched, except on a bridge of OFCTRL_ALL_FLOWS.  The switch
 *      checks each message as it is added to the bundle and rejects a bad
 *      one alone, so a barrier follows: the bundle is committed only if no
 *      message was rejected, and discarded otherwise.  The flows change
 *      all at once or not at all.
 *   4. Meters again: delete each installed meter in the caller's range
 *      that nobody wants, once no flow uses it.
 *   5. A barrier.  The sync is done when its reply arrives.
 *
 * Every message of a sync has its own xid, remembered with its source (the
 * template file and line of a flow, or the meter id), so an ERROR from the
 * switch is logged with the rule that caused it, e.g.
 * "flows/host.flows:12: OFPBAC_BAD_OUT_PORT: priority=40100,...".  A sync
 * with any error fails as a whole (the bundle is atomic: the flows are then
 * as before), and the caller tries again later.
 *
 * The flows are given as rendered flow template text; the module parses
 * them with lib/ofp13-flow.  Callers should check each rendered flow with
 * ofp13_flow_parse() when they render it, so that a rule the parser
 * refuses is reported against its channel rather than failing every
 * sync.
 */
#ifndef OFCTRL_H
#define OFCTRL_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow-counters.h"
#include "flow-template.h"

struct ofctrl;

/* One wanted meter: a single drop band at 'rate' packets per second with a
 * burst of 'burst' packets. */
struct ofctrl_meter {
    uint32_t meter_id;
    uint32_t rate;
    uint32_t burst;
};

/* Which flows of the bridge a controller keeps equal to the wanted ones. */
enum ofctrl_scope {
    OFCTRL_CHAND_FLOWS,         /* Those whose cookie carries chand's tag:
                                 * other flows are never touched. */
    OFCTRL_ALL_FLOWS,           /* Every flow: the bridge belongs to the
                                 * caller, so a flow nobody wants is
                                 * removed whatever its cookie. */
};

/* Creates a controller for the bridge whose management socket is 'target'
 * (copied, e.g. "unix:/var/run/openvswitch/br-int.mgmt").  'source' (copied)
 * names the flow template in error messages.  'scope' says which flows it
 * dumps and removes when unwanted.  Meters with ids in ['meter_min',
 * 'meter_max'] belong to the caller: those nobody wants are deleted; an
 * empty range ('meter_min' > 'meter_max') means the caller has no meters,
 * and syncs then do not read the bridge's meters at all.  The caller owns
 * the result. */
struct ofctrl *ofctrl_create(const char *target, const char *source,
                             enum ofctrl_scope scope,
                             uint32_t meter_min, uint32_t meter_max);
void ofctrl_destroy(struct ofctrl *);

void ofctrl_run(struct ofctrl *, long long now);
void ofctrl_wait(const struct ofctrl *);

/* True while the OpenFlow connection is up. */
bool ofctrl_is_connected(const struct ofctrl *);

/* Changes each time the connection is established or lost. */
unsigned int ofctrl_get_seqno(const struct ofctrl *);

/* Starts a sync toward 'flows' and the 'n_meters' meters in 'meters' (both
 * copied).  It must be over by 'deadline' (time_msec()), or it fails with
 * ETIMEDOUT.  Returns 0, or EBUSY if a sync is running. */
int ofctrl_sync_start(struct ofctrl *, const struct flow_template_flows *flows,
                      const struct ofctrl_meter *meters, size_t n_meters,
                      long long deadline);

/* True while a sync runs. */
bool ofctrl_is_syncing(const struct ofctrl *);

/* If a sync has ended since the last call, returns true and stores 0 or a
 * positive errno in '*errorp' (EPROTO: the switch refused a message, logged
 * with its source; ENOTCONN: the connection was lost; ETIMEDOUT). */
bool ofctrl_sync_result(struct ofctrl *, int *errorp);

/* The flows in the controller's scope (chand's, or all of them) and their
 * packet counts as of the last dump (sorted by cookie), valid until the
 * next sync starts. */
const struct flow_packets *ofctrl_flow_stats(const struct ofctrl *,
                                                 size_t *n);

/* Packets meter 'meter_id' has dropped, as of the last dump, or 0. */
uint64_t ofctrl_meter_drops(const struct ofctrl *, uint32_t meter_id);

/* Number of errors the switch has reported to syncs so far. */
uint64_t ofctrl_n_errors(const struct ofctrl *);

#endif /* ofctrl.h */
