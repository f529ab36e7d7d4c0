/*
 * flowmgr: keeps chand's OpenFlow rules on the host bridge equal to what
 * the provisioned channels want, in the manner of OVN's ofctrl: the wanted
 * flows are rendered from flows/host.flows (one [bridge] set, one [vid] set
 * per distinct vid, one [channel] set per channel), the installed chand
 * flows are read back by cookie, and the difference is pushed as one
 * atomic OpenFlow bundle (deletes then adds).  Each rule's cookie carries
 * the chan-id of the channel it belongs to and a hash of its text, so a
 * changed rule gets a new cookie, leftovers are found by cookie, and flows
 * with other cookies (the bridge's own) are never touched.
 *
 * Each channel also has an OpenFlow meter (id chan_flows_meter_id()) that
 * rate-limits its guest-to-host frames; meters are created before the
 * flows that use them and removed after.
 *
 * The bridge is programmed with ovs-ofctl through the bridge's management
 * socket, from a child process (one sync at a time), so that a switch that
 * does not answer never stalls the caller's loop.
 */
#ifndef FLOWMGR_H
#define FLOWMGR_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"

struct flowmgr;

/* Loads the template at 'template_path'.  'target' is what ovs-ofctl is
 * given as the switch (e.g. "unix:/var/run/openvswitch/br-int.mgmt").
 * Returns 0 and stores the manager in '*fmp', or an errno with a message
 * logged. */
int flowmgr_create(const char *template_path, const char *target,
                   struct flowmgr **fmp);
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
 * 0, or an error message (malloc'd, caller frees) if its rules cannot be
 * rendered (the channel is then left out). */
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
