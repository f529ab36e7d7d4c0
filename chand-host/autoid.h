/*
 * autoid: automatic chand-ids (doc/operations.md, "Automatic channel ids").
 *
 * An Interface provisioned with a VM name (external_ids:chand-vm, or
 * iface-id with --vm-name-from=iface-id) but no chand-id gets one from
 * chand-host, written back to its external_ids as
 *
 *     chand-id=N  chand-id-auto=N
 *
 * in one transaction of the local Open_vSwitch DB.  chand-id-auto marks the
 * id as allocated: it counts only while it equals chand-id, so an operator
 * who later sets chand-id by hand makes it a hand-set id again.  The id is
 * stored in the Interface row: a restarted chand-host reads it back.
 *
 * The choice (autoid_pick(), pure): the id the VM's Channel row in the Chan
 * DB already has, if any (a VM whose vNIC was re-created, or that migrated
 * here, keeps the id its guest runs with), unless an Interface here has
 * it (chan-ids are unique per host, not across hosts); else
 * the lowest id in AUTOID_MIN..AUTOID_MAX that is in use nowhere the caller
 * knows of: no Interface's chand-id (hand-set or automatic) and no other
 * VM's Channel row.  Deterministic: the same ids in use give the same id.
 *
 * The write (autoid_ops(), pure) is conditional, so that an operator or a
 * second chand-host racing it never makes a silent duplicate: it commits
 * only if the Interface's external_ids are still exactly what chand-host
 * read (no chand-id appeared meanwhile) and no Interface has chand-id=N.
 * Otherwise nothing is written and chand-host decides again from what the
 * database then holds.
 *
 * struct autoid remembers the allocations in flight, so that each Interface
 * has at most one, and those that failed, so that one is not tried again
 * before the database changed.
 */
#ifndef AUTOID_H
#define AUTOID_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The range of automatic ids: below 254 * 256 every chan-id has its own
 * default guest IP (chan-endpoint.h), which keeps captures readable. */
#define AUTOID_MIN 1
#define AUTOID_MAX 65023

/* Chooses an id, given the 'n' ids of 'used' (borrowed, any order,
 * duplicates and ids outside the range allowed), of which the first
 * 'n_here' are in use on this host (Interfaces, writes under way) and the
 * others elsewhere (other VMs' Channel rows): 'preferred' (0: none) if it
 * lies in the range and is not in use here, else the lowest id of the
 * range in use nowhere.  Returns 0 and stores it in '*idp', or ENOSPC if
 * every id is used. */
int autoid_pick(const uint32_t *used, size_t n, size_t n_here,
                uint32_t preferred, uint32_t *idp);

/* Returns a new reference to the operations of the transaction that writes
 * chand-id=N and chand-id-auto=N into Interface 'iface_uuid', whose
 * external_ids were read as 'external_ids' (borrowed, a JSON object of
 * strings), if they still are and no Interface has chand-id=N. */
json_t *autoid_ops(const char *iface_uuid, const json_t *external_ids,
                   uint32_t id);

/* True if an Interface's external_ids say its chand-id was allocated
 * automatically: chand-id-auto equals chand-id ('external_ids' borrowed). */
bool autoid_is_auto(const json_t *external_ids);

struct ovsdb_replica;

/* Allocations in flight and failed, per Interface uuid. */
struct autoid *autoid_create(void);
void autoid_destroy(struct autoid *);

/* True if an allocation for Interface 'iface_uuid' may be sent now, the
 * replica's contents being at 'seqno' (ovsdb_replica_get_seqno()): none is
 * in flight, and the replica changed since the last one was written or
 * failed. */
bool autoid_may_start(const struct autoid *, const char *iface_uuid,
                      uint64_t seqno);

/* Sends the transaction that writes 'id' into Interface 'iface_uuid' (named
 * 'iface', of VM 'vm'; all borrowed) through 'ovs', whose external_ids were
 * read as 'external_ids', and logs the outcome: "allocated chand-id 7 for
 * vm1 on vif1", or why it was not written.  'seqno' is the replica's seqno
 * the decision was made at. */
void autoid_start(struct autoid *, struct ovsdb_replica *ovs,
                  const char *iface_uuid, const char *iface, const char *vm,
                  const json_t *external_ids, uint32_t id, uint64_t seqno);

/* Stores in '*idsp' (the caller frees it) the ids being written, or
 * written and not read back yet, and returns how many: not to be chosen
 * for another Interface meanwhile. */
size_t autoid_pending_ids(const struct autoid *, uint32_t **idsp);

/* Forgets every Interface not in 'needing' (borrowed, an object whose keys
 * are the uuids of the Interfaces that still need an id), except those in
 * flight. */
void autoid_retain(struct autoid *, const json_t *needing);

/* Counts: allocations written, and those that were not. */
uint64_t autoid_n_allocated(const struct autoid *);
uint64_t autoid_n_failed(const struct autoid *);

/* Changes when a write fails: the caller decides again (the database may
 * have changed while the write was in flight, and the change that made it
 * fail may already have been seen). */
uint64_t autoid_get_seqno(const struct autoid *);

#endif /* autoid.h */
