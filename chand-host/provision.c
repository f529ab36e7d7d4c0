/* Copyright (c) 2026 The chand authors.  See provision.h. */

#include <config.h>
#include "provision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoid.h"
#include "chan-mtu.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "util.h"

/* Returns a new JSON object whose keys are the uuids of the interfaces on
 * 'bridge'. */
static json_t *
bridge_interfaces(const struct ovsdb_replica *ovs, const char *bridge)
{
    json_t *ifaces = json_object();
    const struct ovsdb_replica_table *bridges
        = ovsdb_replica_get_table(ovs, "Bridge");
    const struct ovsdb_replica_table *ports
        = ovsdb_replica_get_table(ovs, "Port");
    const struct ovsdb_replica_row *br;

    OVSDB_REPLICA_FOR_EACH (br, bridges) {
        const char *name;
        json_t *port_uuids;
        if (ovsdb_datum_get_string(ovsdb_replica_row_get(br, "name"), &name)
            || !name || strcmp(name, bridge)
            || ovsdb_datum_get_uuid_set(ovsdb_replica_row_get(br, "ports"),
                                        &port_uuids)) {
            continue;
        }
        size_t i;
        json_t *pu;
        json_array_foreach (port_uuids, i, pu) {
            const struct ovsdb_replica_row *port
                = ovsdb_replica_find(ports, json_string_value(pu));
            json_t *iface_uuids;
            if (port && !ovsdb_datum_get_uuid_set(
                    ovsdb_replica_row_get(port, "interfaces"), &iface_uuids)) {
                size_t k;
                json_t *iu;
                json_array_foreach (iface_uuids, k, iu) {
                    json_object_set(ifaces, json_string_value(iu),
                                    json_true());
                }
                json_decref(iface_uuids);
            }
        }
        json_decref(port_uuids);
    }
    return ifaces;
}

static const char *
map_get(const json_t *map, const char *key)
{
    return json_string_value(json_object_get(map, key));
}

/* Validates one interface's keys into 'pc'.  Without a chand-id, the other
 * keys are checked as they would be with chan-id 1, and 'pc' needs an id.
 * 'vm_name' says which keys a missing VM name is about. */
static void
validate(struct prov_channel *pc, const json_t *ids, bool on_bridge,
         const char *bridge, enum provision_vm_name vm_name)
{
    const char *id = map_get(ids, "chand-id");
    const char *mtu = map_get(ids, "chand-mtu");
    const char *mtu_error = NULL;
    enum chan_ep_error e;

    if (!pc->vm) {
        pc->error = xstrdup(vm_name == PROVISION_VM_NAME_IFACE_ID
                            ? "missing chand-vm and iface-id"
                            : "missing chand-vm");
    } else if (!chan_vm_name_is_valid(pc->vm)) {
        pc->error = xasprintf("%s: must be 1 to 64 characters from "
                              "A-Z a-z 0-9 . _ -",
                              map_get(ids, "chand-vm") ? "chand-vm"
                                                       : "iface-id");
    } else if ((e = chan_config_from_strings(id ? id : "1",
                                             map_get(ids, "chand-vid"),
                                             map_get(ids, "chand-guest-ip"),
                                             map_get(ids, "chand-guest-mac"),
                                             &pc->cfg))) {
        pc->error = xstrdup(chan_ep_strerror(e));
    } else if (mtu && (mtu_error = chan_mtu_parse(mtu, &pc->mtu))) {
        pc->error = xasprintf("chand-mtu: %s", mtu_error);
    } else if (!on_bridge) {
        pc->error = xasprintf("interface %s is not on bridge %s",
                              pc->iface, bridge);
    } else {
        pc->needs_id = !id;
        pc->auto_id = id && autoid_is_auto(ids);
    }
}

static int
compare_by_name(const void *a_, const void *b_)
{
    const struct prov_channel *a = a_, *b = b_;
    return strcmp(a->iface, b->iface);
}

/* Settles channel 'i' of 'set' against the chand-ids and VM names already
 * taken ('taken': "id:N" or "vm:NAME" -> index of the channel that has it):
 * it takes them, or gets the error that names who has them. */
static void
settle_one(struct prov_set *set, size_t i, json_t *taken)
{
    struct prov_channel *a = &set->channels[i];
    char id_key[24];
    snprintf(id_key, sizeof id_key, "id:%u", a->cfg.chan_id);
    char *vm_key = xasprintf("vm:%s", a->vm);
    json_t *by_id = json_object_get(taken, id_key);
    json_t *by_vm = json_object_get(taken, vm_key);

    if (a->needs_id) {
        by_id = NULL;           /* No id yet: only the name can clash. */
    }
    if (by_id) {
        const struct prov_channel *b
            = &set->channels[json_integer_value(by_id)];
        a->error = xasprintf("duplicate chand-id %u (already used by %s%s)",
                             a->cfg.chan_id, b->iface,
                             b->auto_id ? ", allocated automatically" : "");
    } else if (by_vm) {
        a->error = xasprintf("duplicate chand-vm %s (already used by %s)",
                             a->vm,
                             set->channels[json_integer_value(by_vm)].iface);
    } else {
        if (!a->needs_id) {
            json_object_set_new(taken, id_key, json_integer(i));
        }
        json_object_set_new(taken, vm_key, json_integer(i));
    }
    free(vm_key);
}

/* Marks the losers of duplicate chand-ids and VM names.  'set' is sorted by
 * interface name; winners are the active ones, then the first by name. */
static void
settle_duplicates(struct prov_set *set, provision_is_active_func *is_active,
                  void *aux)
{
    json_t *taken = json_object();
    bool *active = xcalloc(set->n ? set->n : 1, sizeof *active);

    for (size_t i = 0; i < set->n; i++) {
        const struct prov_channel *a = &set->channels[i];
        active[i] = is_active && is_active(a->iface_uuid, aux);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < set->n; i++) {
            const struct prov_channel *a = &set->channels[i];
            if (!a->error && a->vm && active[i] == (pass == 0)) {
                settle_one(set, i, taken);
            }
        }
    }
    free(active);
    json_decref(taken);
}

/* Adds the columns provisioning reads to 'ovs' (borrowed). */
void
provision_add_columns(struct ovsdb_replica *ovs)
{
    struct ovsdb_replica_table *t = ovsdb_replica_add_table(ovs, "Interface");
    ovsdb_replica_add_column(t, "name", NULL);
    ovsdb_replica_add_column(t, "external_ids", NULL);
    ovsdb_replica_add_column(t, "ofport", NULL);
    ovsdb_replica_add_column(t, "mtu", NULL);
    t = ovsdb_replica_add_table(ovs, "Port");
    ovsdb_replica_add_column(t, "name", NULL);
    ovsdb_replica_add_column(t, "interfaces", NULL);
    t = ovsdb_replica_add_table(ovs, "Bridge");
    ovsdb_replica_add_column(t, "name", NULL);
    ovsdb_replica_add_column(t, "ports", NULL);
    ovsdb_replica_add_column(t, "fail_mode", NULL);
}

const char *
provision_fail_mode(const struct ovsdb_replica *ovs, const char *bridge)
{
    const struct ovsdb_replica_row *br;
    OVSDB_REPLICA_FOR_EACH (br, ovsdb_replica_get_table(ovs, "Bridge")) {
        const char *name = NULL, *mode = NULL;
        if (!ovsdb_datum_get_string(ovsdb_replica_row_get(br, "name"), &name)
            && name && !strcmp(name, bridge)) {
            /* An empty set (no fail_mode) is standalone. */
            ovsdb_datum_get_string(ovsdb_replica_row_get(br, "fail_mode"),
                                   &mode);
            return mode ? mode : "standalone";
        }
    }
    return NULL;
}

/* Returns the VM name 'ids' (an Interface's external_ids) give with
 * 'vm_name', or NULL (borrowed from 'ids'). */
static const char *
vm_name_of(const json_t *ids, enum provision_vm_name vm_name)
{
    const char *vm = map_get(ids, "chand-vm");
    if (!vm && vm_name == PROVISION_VM_NAME_IFACE_ID) {
        vm = map_get(ids, "iface-id");
    }
    return vm;
}

/* Adds the chand-id of 'ids' (an Interface's external_ids), if valid, to
 * 'set''s ids. */
static void
note_id(struct prov_set *set, const json_t *ids, size_t *allocated)
{
    uint32_t id;
    if (chan_parse_id(map_get(ids, "chand-id"), &id)) {
        return;
    }
    if (set->n_ids >= *allocated) {
        *allocated = *allocated ? 2 * *allocated : 8;
        set->ids = xrealloc(set->ids, *allocated * sizeof *set->ids);
    }
    set->ids[set->n_ids++] = id;
}

/* Adds a channel for Interface 'row', whose external_ids are 'ids' (a new
 * reference, which the channel takes), to 'set'. */
static void
add_candidate(struct prov_set *set, size_t *allocated,
              const struct ovsdb_replica_row *row, json_t *ids,
              const json_t *on_bridge, const char *bridge,
              enum provision_vm_name vm_name)
{
    if (set->n >= *allocated) {
        *allocated = *allocated ? 2 * *allocated : 8;
        set->channels = xrealloc(set->channels,
                                 *allocated * sizeof *set->channels);
    }
    struct prov_channel *pc = &set->channels[set->n++];
    const char *name = NULL;
    const char *vm = vm_name_of(ids, vm_name);

    memset(pc, 0, sizeof *pc);
    pc->iface_uuid = xstrdup(ovsdb_replica_row_uuid(row));
    ovsdb_datum_get_string(ovsdb_replica_row_get(row, "name"), &name);
    pc->iface = xstrdup(name ? name : "?");
    pc->vm = vm ? xstrdup(vm) : NULL;
    pc->status = map_get(ids, "chand-status")
                 ? xstrdup(map_get(ids, "chand-status")) : NULL;
    pc->external_ids = ids;

    int64_t ofport;
    bool present;
    pc->ofport = -1;
    if (!ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "ofport"),
                                 &ofport, &present)
        && present && ofport > 0 && ofport < 0xff00) {
        pc->ofport = ofport;
    }
    int64_t mtu;
    if (!ovsdb_datum_get_integer(ovsdb_replica_row_get(row, "mtu"),
                                 &mtu, &present)
        && present && mtu > 0 && mtu <= UINT16_MAX) {
        pc->iface_mtu = mtu;
    }
    if (vm || map_get(ids, "chand-id")) {
        validate(pc, ids,
                 json_object_get(on_bridge, pc->iface_uuid) != NULL,
                 bridge, vm_name);
    } else {
        /* Only a stale chand-status: not a channel any more. */
        pc->error = NULL;
    }
}

void
provision_compute(const struct ovsdb_replica *ovs, const char *bridge,
                  enum provision_vm_name vm_name,
                  provision_is_active_func *is_active, void *aux,
                  struct prov_set *set)
{
    const struct ovsdb_replica_table *ifaces
        = ovsdb_replica_get_table(ovs, "Interface");
    json_t *on_bridge = bridge_interfaces(ovs, bridge);
    const struct ovsdb_replica_row *row;
    size_t allocated = 0, ids_allocated = 0;

    memset(set, 0, sizeof *set);
    OVSDB_REPLICA_FOR_EACH (row, ifaces) {
        json_t *ids;
        if (ovsdb_datum_get_string_map(ovsdb_replica_row_get(row,
                                                             "external_ids"),
                                       &ids)) {
            continue;
        }
        note_id(set, ids, &ids_allocated);
        if (!vm_name_of(ids, vm_name) && !map_get(ids, "chand-id")
            && !map_get(ids, "chand-status")) {
            json_decref(ids);
            continue;
        }
        add_candidate(set, &allocated, row, ids, on_bridge, bridge,
                      vm_name);
    }
    json_decref(on_bridge);

    if (set->n) {
        qsort(set->channels, set->n, sizeof *set->channels, compare_by_name);
    }
    settle_duplicates(set, is_active, aux);
}

bool
provision_vm_name_from_string(const char *s, enum provision_vm_name *from)
{
    if (!strcmp(s, "chand-vm")) {
        *from = PROVISION_VM_NAME_CHAND_VM;
    } else if (!strcmp(s, "iface-id")) {
        *from = PROVISION_VM_NAME_IFACE_ID;
    } else {
        return false;
    }
    return true;
}

void
provision_set_destroy(struct prov_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        struct prov_channel *pc = &set->channels[i];
        free(pc->iface_uuid);
        free(pc->iface);
        free(pc->vm);
        free(pc->error);
        free(pc->status);
        json_decref(pc->external_ids);
    }
    free(set->channels);
    free(set->ids);
    memset(set, 0, sizeof *set);
}

json_t *
provision_status_op(const char *iface_uuid, const char *status)
{
    json_t *mutations = json_array();
    const char *key = "chand-status";
    json_array_append_new(mutations,
                          ovsdb_mutation("external_ids", "delete",
                                         ovsdb_datum_string_set(&key, 1)));
    if (status) {
        json_t *map = json_pack("{ss}", key, status);
        json_array_append_new(mutations,
                              ovsdb_mutation("external_ids", "insert",
                                             ovsdb_datum_string_map(map)));
        json_decref(map);
    }
    return ovsdb_op_mutate("Interface", ovsdb_where_uuid(iface_uuid),
                           mutations);
}
