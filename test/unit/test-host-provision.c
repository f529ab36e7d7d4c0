/* CUnit suite for chand-host's provisioning (chand-host/provision.c): the
 * Interface/Port/Bridge rows of a replica, filled through its pure core,
 * turned into channels or precise errors. */

#include <config.h>
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "ovsdb-replica.h"
#include "provision.h"

#define BR_UUID "00000000-0000-0000-0000-0000000000b0"

static struct ovsdb_replica *
make_replica(void)
{
    struct ovsdb_replica *r = ovsdb_replica_create("Open_vSwitch");
    provision_add_columns(r);
    return r;
}

/* Interface 'n' (uuid ...0n, port ...1n) named 'name' with external_ids
 * given as a JSON map text, on bridge br-int if 'on_bridge'. */
struct iface {
    const char *name;
    const char *ids;            /* e.g. [["chand-vm","vm1"]] */
    int ofport;
    bool on_bridge;
};

static void
load(struct ovsdb_replica *r, const struct iface *ifaces, size_t n)
{
    json_t *ifs = json_object(), *ports = json_object();
    json_t *br_ports = json_array();
    for (size_t i = 0; i < n; i++) {
        char iu[40], pu[40];
        snprintf(iu, sizeof iu, "00000000-0000-0000-0000-0000000000%02zx",
                 i + 1);
        snprintf(pu, sizeof pu, "00000000-0000-0000-0000-0000000001%02zx",
                 i + 1);
        json_t *ids = json_loads(ifaces[i].ids, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
        json_object_set_new(ifs, iu, json_pack(
            "{s{sssos[s[]]}}", "new", "name", ifaces[i].name,
            "external_ids", json_pack("[so]", "map", ids),
            "ofport", "set"));
        if (ifaces[i].ofport > 0) {
            json_object_set_new(json_object_get(json_object_get(ifs, iu),
                                                "new"),
                                "ofport", json_integer(ifaces[i].ofport));
        }
        json_object_set_new(ports, pu, json_pack(
            "{s{sss[ss]}}", "new", "name", ifaces[i].name,
            "interfaces", "uuid", iu));
        if (ifaces[i].on_bridge) {
            json_array_append_new(br_ports, json_pack("[ss]", "uuid", pu));
        }
    }
    json_t *updates = json_pack(
        "{soso s{s{s{sss[so]}}}}", "Interface", ifs, "Port", ports,
        "Bridge", BR_UUID, "new", "name", "br-int", "ports", "set",
        br_ports);
    CU_ASSERT_EQUAL_FATAL(ovsdb_replica_apply_updates(r, updates, true), 0);
    json_decref(updates);
}

static const struct prov_channel *
find(const struct prov_set *set, const char *iface)
{
    for (size_t i = 0; i < set->n; i++) {
        if (!strcmp(set->channels[i].iface, iface)) {
            return &set->channels[i];
        }
    }
    return NULL;
}

/* True if 'pc' has an error that contains 'needle' (false, not a crash, if
 * it has none). */
static bool
error_contains(const struct prov_channel *pc, const char *needle)
{
    return pc->error && strstr(pc->error, needle);
}

static const char *active_uuid;

static bool
is_active(const char *uuid, void *aux)
{
    return active_uuid && !strcmp(uuid, active_uuid);
}

static void
test_valid_and_invalid(void)
{
    static const struct iface ifaces[] = {
        { "vnet1", "[[\"chand-vm\",\"vm1\"],[\"chand-id\",\"7\"]]", 1, true },
        { "vnet2", "[[\"chand-vm\",\"vm2\"],[\"chand-id\",\"8\"],"
                   "[\"chand-vid\",\"100\"]]", 2, true },
        { "bad-vid0", "[[\"chand-vm\",\"b1\"],[\"chand-id\",\"9\"],"
                      "[\"chand-vid\",\"0\"]]", 3, true },
        { "bad-vid", "[[\"chand-vm\",\"b2\"],[\"chand-id\",\"10\"],"
                     "[\"chand-vid\",\"5000\"]]", 4, true },
        { "bad-id", "[[\"chand-vm\",\"b3\"],[\"chand-id\",\"abc\"]]", 5,
          true },
        { "no-vm", "[[\"chand-id\",\"11\"]]", 6, true },
        { "bad-vm", "[[\"chand-vm\",\"a b\"],[\"chand-id\",\"12\"]]", 7,
          true },
        { "elsewhere", "[[\"chand-vm\",\"b4\"],[\"chand-id\",\"13\"]]", 8,
          false },
        { "plain", "[[\"iface-id\",\"x\"]]", 9, true },
        { "stale", "[[\"chand-status\",\"ready\"]]", 10, true },
        { "noport", "[[\"chand-vm\",\"vm3\"],[\"chand-id\",\"14\"]]", -1,
          true },
        { "jumbo", "[[\"chand-vm\",\"vm4\"],[\"chand-id\",\"15\"],"
                   "[\"chand-mtu\",\"9000\"]]", 11, true },
        { "mtu-auto", "[[\"chand-vm\",\"vm5\"],[\"chand-id\",\"16\"],"
                      "[\"chand-mtu\",\"auto\"]]", 12, true },
        { "bad-mtu", "[[\"chand-vm\",\"b5\"],[\"chand-id\",\"17\"],"
                     "[\"chand-mtu\",\"100\"]]", 13, true },
    };
    struct ovsdb_replica *r = make_replica();
    const struct prov_channel *pc;
    struct prov_set set;
    load(r, ifaces, sizeof ifaces / sizeof *ifaces);
    provision_compute(r, "br-int", PROVISION_VM_NAME_CHAND_VM,
                      NULL, NULL, &set);

    CU_ASSERT_EQUAL(set.n, 13);
    CU_ASSERT_PTR_NULL(find(&set, "plain"));    /* Not chand's. */

    pc = find(&set, "jumbo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_EQUAL(pc->mtu, 9000);
    pc = find(&set, "mtu-auto");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_EQUAL(pc->mtu, 0);
    pc = find(&set, "bad-mtu");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "chand-mtu: out of range"));

    pc = find(&set, "vnet1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_EQUAL(pc->cfg.chan_id, 7);
    CU_ASSERT_EQUAL(pc->cfg.vid, 4094);
    CU_ASSERT_EQUAL(pc->ofport, 1);

    pc = find(&set, "vnet2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_EQUAL(pc->cfg.vid, 100);

    pc = find(&set, "bad-vid0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "vid"));

    pc = find(&set, "bad-vid");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "vid"));

    pc = find(&set, "bad-id");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "chand-id"));

    pc = find(&set, "no-vm");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc->error);
    CU_ASSERT_STRING_EQUAL(pc->error, "missing chand-vm");

    pc = find(&set, "bad-vm");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "chand-vm"));

    pc = find(&set, "elsewhere");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "not on bridge br-int"));

    pc = find(&set, "stale");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->vm);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc->status);
    CU_ASSERT_STRING_EQUAL(pc->status, "ready");

    pc = find(&set, "noport");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_EQUAL(pc->ofport, -1);

    provision_set_destroy(&set);
    ovsdb_replica_destroy(r);
}

static void
test_duplicates_favour_active(void)
{
    static const struct iface ifaces[] = {
        { "b-new", "[[\"chand-vm\",\"x\"],[\"chand-id\",\"7\"]]", 2, true },
        { "a-new", "[[\"chand-vm\",\"vm1\"],[\"chand-id\",\"9\"]]", 3, true },
        { "z-old", "[[\"chand-vm\",\"vm1\"],[\"chand-id\",\"7\"]]", 1, true },
    };
    struct ovsdb_replica *r = make_replica();
    const struct prov_channel *a, *b, *z;
    struct prov_set set;
    load(r, ifaces, 3);

    /* Nobody active: the first interface by name wins each conflict. */
    active_uuid = NULL;
    provision_compute(r, "br-int", PROVISION_VM_NAME_CHAND_VM,
                      is_active, NULL, &set);
    a = find(&set, "a-new");
    b = find(&set, "b-new");
    z = find(&set, "z-old");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    CU_ASSERT_PTR_NULL(a->error);
    CU_ASSERT_PTR_NULL(b->error);
    CU_ASSERT(error_contains(z, "duplicate"));
    provision_set_destroy(&set);

    /* z-old is the working channel: it keeps both its id and its name. */
    active_uuid = "00000000-0000-0000-0000-000000000003";
    provision_compute(r, "br-int", PROVISION_VM_NAME_CHAND_VM,
                      is_active, NULL, &set);
    a = find(&set, "a-new");
    b = find(&set, "b-new");
    z = find(&set, "z-old");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    CU_ASSERT_PTR_NULL(z->error);
    CU_ASSERT(error_contains(a, "duplicate chand-vm vm1"));
    CU_ASSERT(error_contains(b, "duplicate chand-id 7"));
    provision_set_destroy(&set);
    active_uuid = NULL;
    ovsdb_replica_destroy(r);
}

/* An Interface with a VM name and no chand-id is valid and needs an id; the
 * ids in use are collected from every Interface; chand-id-auto marks an
 * allocated id only while it equals chand-id. */
static void
test_needs_id_and_ids(void)
{
    static const struct iface ifaces[] = {
        { "vif1", "[[\"chand-vm\",\"vm1\"]]", 1, true },
        { "vif2", "[[\"chand-vm\",\"vm2\"],[\"chand-id\",\"3\"],"
                  "[\"chand-id-auto\",\"3\"]]", 2, true },
        { "vif3", "[[\"chand-vm\",\"vm3\"],[\"chand-id\",\"5\"],"
                  "[\"chand-id-auto\",\"4\"]]", 3, true },
        { "vif4", "[[\"chand-vm\",\"vm4\"],[\"chand-vid\",\"0\"]]", 4,
          true },
        { "other", "[[\"chand-vm\",\"vm5\"],[\"chand-id\",\"9\"]]", 5,
          false },
        { "vif6", "[[\"chand-vm\",\"vm6\"],[\"chand-id\",\"3\"]]", 6,
          true },
        { "vif7", "[[\"chand-vm\",\"vm1\"]]", 7, true },
    };
    struct ovsdb_replica *r = make_replica();
    const struct prov_channel *pc;
    struct prov_set set;
    load(r, ifaces, sizeof ifaces / sizeof *ifaces);
    provision_compute(r, "br-int", PROVISION_VM_NAME_CHAND_VM, NULL, NULL,
                      &set);

    pc = find(&set, "vif1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_TRUE(pc->needs_id);
    CU_ASSERT_FALSE(pc->auto_id);
    CU_ASSERT_STRING_EQUAL(json_string_value(
        json_object_get(pc->external_ids, "chand-vm")), "vm1");

    pc = find(&set, "vif2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_FALSE(pc->needs_id);
    CU_ASSERT_TRUE(pc->auto_id);

    /* chand-id set by hand over an allocated one. */
    pc = find(&set, "vif3");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_FALSE(pc->auto_id);

    /* The other keys are checked before an id is allocated. */
    pc = find(&set, "vif4");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "chand-vid"));
    CU_ASSERT_FALSE(pc->needs_id);

    /* A hand-set duplicate of an allocated id: loud, and says so. */
    pc = find(&set, "vif6");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "duplicate chand-id 3 (already used by "
                             "vif2, allocated automatically)"));

    /* Two Interfaces with the same VM name and no ids: only one. */
    pc = find(&set, "vif7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "duplicate chand-vm vm1"));

    /* Every valid id of every Interface, on the bridge or not. */
    CU_ASSERT_EQUAL_FATAL(set.n_ids, 4);
    uint32_t sum = 0;
    for (size_t i = 0; i < set.n_ids; i++) {
        sum += set.ids[i];
    }
    CU_ASSERT_EQUAL(sum, 3 + 5 + 9 + 3);
    provision_set_destroy(&set);
    ovsdb_replica_destroy(r);
}

/* --vm-name-from=iface-id: iface-id names the VM when chand-vm is absent;
 * chand-vm wins when both are set. */
static void
test_vm_name_from_iface_id(void)
{
    static const struct iface ifaces[] = {
        { "tap1", "[[\"iface-id\",\"5b1c7e1a-0c1d-4e1f-9a2b-3c4d5e6f7a8b\"]]",
          1, true },
        { "tap2", "[[\"iface-id\",\"lsp2\"],[\"chand-vm\",\"vm2\"]]", 2,
          true },
        { "tap3", "[[\"iface-id\",\"not a name\"]]", 3, true },
        { "tap4", "[[\"chand-id\",\"4\"]]", 4, true },
    };
    struct ovsdb_replica *r = make_replica();
    const struct prov_channel *pc;
    struct prov_set set;
    load(r, ifaces, sizeof ifaces / sizeof *ifaces);

    /* The default ignores iface-id. */
    provision_compute(r, "br-int", PROVISION_VM_NAME_CHAND_VM, NULL, NULL,
                      &set);
    CU_ASSERT_PTR_NULL(find(&set, "tap1"));
    CU_ASSERT_PTR_NULL(find(&set, "tap3"));
    pc = find(&set, "tap2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_STRING_EQUAL(pc->vm, "vm2");
    provision_set_destroy(&set);

    provision_compute(r, "br-int", PROVISION_VM_NAME_IFACE_ID, NULL, NULL,
                      &set);
    pc = find(&set, "tap1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_STRING_EQUAL(pc->vm, "5b1c7e1a-0c1d-4e1f-9a2b-3c4d5e6f7a8b");
    CU_ASSERT_TRUE(pc->needs_id);
    pc = find(&set, "tap2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_STRING_EQUAL(pc->vm, "vm2");
    pc = find(&set, "tap3");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "iface-id: must be"));
    pc = find(&set, "tap4");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT(error_contains(pc, "missing chand-vm and iface-id"));
    provision_set_destroy(&set);
    ovsdb_replica_destroy(r);

    enum provision_vm_name from;
    CU_ASSERT_TRUE(provision_vm_name_from_string("iface-id", &from));
    CU_ASSERT_EQUAL(from, PROVISION_VM_NAME_IFACE_ID);
    CU_ASSERT_TRUE(provision_vm_name_from_string("chand-vm", &from));
    CU_ASSERT_EQUAL(from, PROVISION_VM_NAME_CHAND_VM);
    CU_ASSERT_FALSE(provision_vm_name_from_string("iface_id", &from));
    CU_ASSERT_FALSE(provision_vm_name_from_string("", &from));
}

/* The bridge's fail_mode: none is standalone; an unknown bridge has
 * none. */
static void
test_fail_mode(void)
{
    static const struct iface ifaces[] = {
        { "vnet0", "[[\"chand-vm\",\"vm1\"],[\"chand-id\",\"7\"]]", 2, true },
    };
    struct ovsdb_replica *r = make_replica();
    load(r, ifaces, 1);

    CU_ASSERT_STRING_EQUAL(provision_fail_mode(r, "br-int"), "standalone");
    CU_ASSERT_PTR_NULL(provision_fail_mode(r, "br-ex"));

    json_t *updates = json_pack(
        "{s{s{s{ssss}}}}", "Bridge", BR_UUID, "new", "name", "br-int",
        "fail_mode", "secure");
    CU_ASSERT_EQUAL_FATAL(ovsdb_replica_apply_updates(r, updates, false), 0);
    json_decref(updates);
    CU_ASSERT_STRING_EQUAL(provision_fail_mode(r, "br-int"), "secure");
    ovsdb_replica_destroy(r);
}

#define IFACE1_UUID "00000000-0000-0000-0000-000000000001"

/* True if 'json' is the string 's'. */
static bool
json_is_str(const json_t *json, const char *s)
{
    return json_is_string(json) && !strcmp(json_string_value(json), s);
}

/* True if 'mutation' is ["external_ids", "delete", <set of keys>] and the
 * set holds exactly the key "chand-status" (as a bare atom or as
 * ["set", ["chand-status"]], both valid OVSDB for a 1-element set).  A
 * "delete" with a map would only remove the key with that exact value. */
static bool
is_status_key_delete(const json_t *mutation)
{
    const json_t *keys;

    if (!json_is_array(mutation) || json_array_size(mutation) != 3
        || !json_is_str(json_array_get(mutation, 0), "external_ids")
        || !json_is_str(json_array_get(mutation, 1), "delete")) {
        return false;
    }
    keys = json_array_get(mutation, 2);
    if (json_is_string(keys)) {
        return json_is_str(keys, "chand-status");
    }
    if (!json_is_array(keys) || json_array_size(keys) != 2
        || !json_is_str(json_array_get(keys, 0), "set")) {
        return false;
    }
    keys = json_array_get(keys, 1);
    return (json_is_array(keys) && json_array_size(keys) == 1
            && json_is_str(json_array_get(keys, 0), "chand-status"));
}

/* Checks that 'op' is a "mutate" of Interface IFACE1_UUID and returns its
 * "mutations" array (borrowed), or NULL if it has none. */
static const json_t *
status_op_mutations(const json_t *op)
{
    json_t *where = json_loads("[[\"_uuid\",\"==\",[\"uuid\",\""
                               IFACE1_UUID "\"]]]", 0, NULL);
    const json_t *mutations = json_object_get(op, "mutations");

    CU_ASSERT_PTR_NOT_NULL_FATAL(where);
    CU_ASSERT_TRUE(json_is_str(json_object_get(op, "op"), "mutate"));
    CU_ASSERT_TRUE(json_is_str(json_object_get(op, "table"), "Interface"));
    CU_ASSERT_TRUE(json_equal(json_object_get(op, "where"), where));
    json_decref(where);
    return json_is_array(mutations) ? mutations : NULL;
}

static void
test_status_op(void)
{
    const json_t *mutations;
    json_t *op, *insert;

    /* Setting a status: an OVSDB map "insert" leaves an existing key (and
     * its old value) alone, so the old chand-status must be deleted first,
     * in the same operation, before the new one is inserted. */
    op = provision_status_op(IFACE1_UUID, "error: x");
    mutations = status_op_mutations(op);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mutations);
    CU_ASSERT_EQUAL(json_array_size(mutations), 2);
    CU_ASSERT_TRUE(is_status_key_delete(json_array_get(mutations, 0)));
    insert = json_loads("[\"external_ids\",\"insert\","
                        "[\"map\",[[\"chand-status\",\"error: x\"]]]]",
                        0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(insert);
    CU_ASSERT_TRUE(json_equal(json_array_get(mutations, 1), insert));
    json_decref(insert);
    json_decref(op);

    /* Clearing it: the delete alone. */
    op = provision_status_op(IFACE1_UUID, NULL);
    mutations = status_op_mutations(op);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mutations);
    CU_ASSERT_EQUAL(json_array_size(mutations), 1);
    CU_ASSERT_TRUE(is_status_key_delete(json_array_get(mutations, 0)));
    json_decref(op);
}

static const struct unit_test tests[] = {
    { "valid and invalid provisioning", test_valid_and_invalid },
    { "duplicates favour the active channel", test_duplicates_favour_active },
    { "the bridge's fail_mode", test_fail_mode },
    { "no chand-id: an id is needed", test_needs_id_and_ids },
    { "VM names from iface-id", test_vm_name_from_iface_id },
    { "status operation", test_status_op },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("host-provision", tests);
}
