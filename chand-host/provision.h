/*
 * provision: reads channel provisioning from the local Open_vSwitch
 * database.
 *
 * A channel exists for every Interface whose external_ids carry
 * chand-vm=<name> and chand-id=<chan-id> (optional chand-vid,
 * chand-guest-ip, chand-guest-mac, chand-mtu), on a port of chand-host's bridge.
 * With PROVISION_VM_NAME_IFACE_ID, an Interface without chand-vm takes its
 * external_ids:iface-id (OVN's, Nova's) as the VM name.  An Interface with
 * a VM name but no chand-id is valid and 'needs_id': chand-host allocates
 * one (autoid.h).
 * provision_compute() turns the replica's Interface/Port/Bridge rows into a
 * list of candidate channels, each either valid or with the reason it is not
 * ("duplicate chand-id 7 (also on vnet1)", "chand-vid: ...").  When two
 * interfaces claim the same chand-id or VM name, the one that was already
 * active keeps it, so a misprovisioned newcomer never disturbs a working
 * channel; among newcomers the interface name decides.
 *
 * provision_status_op() builds the transaction operation that writes
 * external_ids:chand-status back.
 */
#ifndef PROVISION_H
#define PROVISION_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "chan-endpoint.h"

struct ovsdb_replica;

struct prov_channel {
    char *iface_uuid;           /* Interface row. */
    char *iface;                /* Interface name. */
    char *vm;                   /* chand-vm, NULL if absent. */
    struct chan_config cfg;     /* Valid only if !error. */
    int64_t ofport;             /* -1 if not assigned yet. */
    unsigned int mtu;           /* external_ids:chand-mtu; 0: none or
                                 * "auto". */
    unsigned int iface_mtu;     /* The Interface's "mtu" column (what
                                 * ovs-vswitchd reports); 0: unknown. */
    char *error;                /* NULL if valid, else the reason. */
                                /* A row with only a stale chand-status has
                                 * 'vm' and 'error' both NULL: not a channel. */
    char *status;               /* Current chand-status value or NULL. */
    bool needs_id;              /* Valid, but no chand-id yet: 'cfg' holds
                                 * the defaults of chan-id 1 and the
                                 * Interface's other keys, checked. */
    bool auto_id;               /* chand-id was allocated (autoid.h). */
    json_t *external_ids;       /* The Interface's, as read (owned). */
};

struct prov_set {
    struct prov_channel *channels;
    size_t n;
    uint32_t *ids;              /* Every valid chand-id of every Interface */
    size_t n_ids;               /* of the database, on any bridge. */
};

/* Where the VM name of an Interface comes from (--vm-name-from). */
enum provision_vm_name {
    PROVISION_VM_NAME_CHAND_VM,     /* external_ids:chand-vm. */
    PROVISION_VM_NAME_IFACE_ID,     /* chand-vm, else iface-id. */
};

/* Parses "chand-vm" or "iface-id" into '*from'; false if 's' is neither. */
bool provision_vm_name_from_string(const char *s,
                                   enum provision_vm_name *from);

/* Adds to 'ovs' (an Open_vSwitch replica, not yet connected) the tables
 * and columns provision_compute() reads: Interface name, external_ids,
 * ofport and mtu; Port name and interfaces; Bridge name, ports and fail_mode. */
void provision_add_columns(struct ovsdb_replica *ovs);

/* Returns bridge 'bridge''s fail_mode in 'ovs' ("secure" or "standalone",
 * which is also what no fail_mode means), or NULL if there is no such
 * bridge.  The string belongs to 'ovs' and lasts until its next change. */
const char *provision_fail_mode(const struct ovsdb_replica *ovs,
                                const char *bridge);

/* Callback that tells whether interface 'iface_uuid' has an active channel
 * now (to settle duplicates in its favour). */
typedef bool provision_is_active_func(const char *iface_uuid, void *aux);

/* Fills 'set' (which the caller frees with provision_set_destroy()) from
 * 'ovs', for bridge 'bridge', with VM names from 'vm_name'.  Only
 * interfaces that carry some chand-* key (chand-vm, chand-id, or a stale
 * chand-status), or an iface-id that names a VM, are listed. */
void provision_compute(const struct ovsdb_replica *ovs, const char *bridge,
                       enum provision_vm_name vm_name,
                       provision_is_active_func *, void *aux,
                       struct prov_set *set);
void provision_set_destroy(struct prov_set *);

/* Returns a new reference to an Open_vSwitch "mutate" operation that sets
 * external_ids:chand-status of Interface 'iface_uuid' to 'status', or
 * removes the key if 'status' is NULL. */
json_t *provision_status_op(const char *iface_uuid, const char *status);

#endif /* provision.h */
