/*
 * flowmgr: keeps chand's OpenFlow rules and meters on the host bridge equal
 * to what the provisioned channels want.
 *
 * The wanted flows are rendered from flows/host.flows (one [bridge] set,
 * one [vid] set per distinct vid, one [channel] set per channel, and the
 * [port] set when frames go through the chand port).  Each rule's cookie
 * carries the chand-id of the channel it belongs to and a hash of its text
 * (lib/flow-template), so a changed rule gets a new cookie and leftovers are
 * found by cookie.  Each channel also has an OpenFlow meter (id
 * chan_flows_meter_id()) that rate-limits its guest-to-host frames.
 *
 * The caller rebuilds the wanted set whenever provisioning changes
 * (flowmgr_clear(), then flowmgr_add_channel() for each channel).  A
 * channel's rules are rendered and checked once and kept while its
 * variables stay the same, so a rebuild of a thousand channels copies
 * their rules instead of rendering them again; and a rebuild that changes
 * nothing (same rules, meters and rate) needs no sync.
 *
 * The bridge is programmed by lib/ofctrl over chand-host's own OpenFlow
 * connection to the bridge's management socket (apart from the packet
 * path's): the installed chand flows are read back by cookie, the
 * difference is pushed as one atomic bundle, and a rule the switch refuses
 * is logged with its template file and line.  A sync never blocks the
 * caller's loop.
 */
#ifndef FLOWMGR_H
#define FLOWMGR_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"

struct flowmgr;

/* Loads the template at 'template_path' and starts connecting to the
 * bridge's management socket 'target' (e.g.
 * "unix:/var/run/openvswitch/br-int.mgmt").  Returns the manager, which the
 * caller owns, or NULL with a message logged. */
struct flowmgr *flowmgr_create(const char *template_path, const char *target);
void flowmgr_destroy(struct flowmgr *);

/* Sets the rate limit of each channel's guest-to-host meter: 'pps' packets
 * per second with a burst of 'burst' packets.  Takes effect at the next
 * sync. */
void flowmgr_set_meter_rate(struct flowmgr *, unsigned int pps,
                            unsigned int burst);

/* Returns the number of packets channel 'chan_id''s meter has dropped, as
 * of the last sync, or 0. */
uint64_t flowmgr_meter_drops(const struct flowmgr *, uint32_t chan_id);

/* Returns the running total of counter 'name' (a "%counter" of the
 * template, e.g. "isolation_drops") of channel 'chan_id' (0: the bridge's
 * shared rules), as of the last sync that read the flows, or 0. */
uint64_t flowmgr_counter(const struct flowmgr *, uint32_t chan_id,
                         const char *name);

/* Makes the channels added from now on exchange frames with chand-host
 * through the chand port at 'ofport' (and adds the template's [port] rules
 * at the next flowmgr_clear()), or through OpenFlow (PACKET_OUT and
 * PACKET_IN) if 'ofport' is not positive.  Call flowmgr_clear() and add
 * the channels again after a change. */
void flowmgr_set_inject_ofport(struct flowmgr *, int64_t ofport);

/* Starts describing the wanted channels. */
void flowmgr_clear(struct flowmgr *);

/* Adds channel 'cfg' at OpenFlow port 'ofport' to the wanted set.  Returns
 * NULL, or an error message (malloc'd, caller frees) naming the template
 * line if its rules cannot be rendered or encoded (the channel is then left
 * out). */
char *flowmgr_add_channel(struct flowmgr *, const struct chan_config *cfg,
                          int64_t ofport);

/* Starts making the bridge hold exactly the wanted chand flows, if they may
 * differ (wanted set changed since the last success, or 'force') and no
 * sync is running.  The sync works on a copy of the wanted set as of now;
 * flowmgr_run() reports its end.  'now' is the current time_msec(). */
void flowmgr_sync(struct flowmgr *, bool force, long long now);

/* Finishes a running sync that is done (or has run too long: it is then
 * stopped).  Returns false if none finished; otherwise true, with 0 or an
 * errno in '*errorp' (on error the bridge may hold part of the change; try
 * again later). */
bool flowmgr_run(struct flowmgr *, long long now, int *errorp);
void flowmgr_wait(const struct flowmgr *);

/* True while the flow programming connection is up. */
bool flowmgr_is_connected(const struct flowmgr *);

/* Changes each time the flow programming connection is made or lost
 * (ovs-vswitchd may have restarted with no flows). */
unsigned int flowmgr_get_seqno(const struct flowmgr *);

/* Number of errors the switch has reported to syncs so far. */
uint64_t flowmgr_n_errors(const struct flowmgr *);

/* True while a sync runs. */
bool flowmgr_is_syncing(const struct flowmgr *);

/* True if the wanted set changed since it was last installed. */
bool flowmgr_needs_sync(const struct flowmgr *);

/* True if the wanted flows for 'chan_id' are on the bridge as of the last
 * successful sync. */
bool flowmgr_is_installed(const struct flowmgr *, uint32_t chan_id);

/* Number of chand flows on the bridge at the last successful sync. */
size_t flowmgr_n_installed(const struct flowmgr *);

#endif /* flowmgr.h */
