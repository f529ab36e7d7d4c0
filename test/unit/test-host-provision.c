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
    struct ovsdb_replica_table *t = ovsdb_replica_add_table(r, "Interface");
    ovsdb_replica_add_column(t, "name", NULL);
    ovsdb_replica_add_column(t, "external_ids", NULL);
    ovsdb_replica_add_column(t, "ofport", NULL);
    t = ovsdb_replica_add_table(r, "Port");
    ovsdb_replica_add_column(t, "name", NULL);
    ovsdb_replica_add_column(t, "interfaces", NULL);
    t = ovsdb_replica_add_table(r, "Bridge");
    ovsdb_replica_add_column(t, "name", NULL);
    ovsdb_replica_add_column(t, "ports", NULL);
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
    };
    struct ovsdb_replica *r = make_replica();
    struct prov_set set;
    load(r, ifaces, sizeof ifaces / sizeof *ifaces);
    provision_compute(r, "br-int", NULL, NULL, &set);

    CU_ASSERT_EQUAL(set.n, 10);         /* "plain" is not chand's. */
    const struct prov_channel *pc = find(&set, "vnet1");
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_EQUAL(pc->cfg.chan_id, 7);
    CU_ASSERT_EQUAL(pc->cfg.vid, 4094);
    CU_ASSERT_EQUAL(pc->ofport, 1);
    CU_ASSERT_EQUAL(find(&set, "vnet2")->cfg.vid, 100);
    CU_ASSERT_PTR_NOT_NULL(strstr(find(&set, "bad-vid0")->error, "vid"));
    CU_ASSERT_PTR_NOT_NULL(strstr(find(&set, "bad-vid")->error, "vid"));
    CU_ASSERT_PTR_NOT_NULL(strstr(find(&set, "bad-id")->error, "chand-id"));
    CU_ASSERT_STRING_EQUAL(find(&set, "no-vm")->error, "missing chand-vm");
    CU_ASSERT_PTR_NOT_NULL(strstr(find(&set, "bad-vm")->error, "chand-vm"));
    CU_ASSERT_PTR_NOT_NULL(strstr(find(&set, "elsewhere")->error,
                                  "not on bridge br-int"));
    pc = find(&set, "stale");
    CU_ASSERT_PTR_NULL(pc->vm);
    CU_ASSERT_PTR_NULL(pc->error);
    CU_ASSERT_STRING_EQUAL(pc->status, "ready");
    pc = find(&set, "noport");
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
    struct prov_set set;
    load(r, ifaces, 3);

    /* Nobody active: the first interface by name wins each conflict. */
    active_uuid = NULL;
    provision_compute(r, "br-int", is_active, NULL, &set);
    CU_ASSERT_PTR_NULL(find(&set, "a-new")->error);
    CU_ASSERT_PTR_NULL(find(&set, "b-new")->error);
    CU_ASSERT_PTR_NOT_NULL(strstr(find(&set, "z-old")->error, "duplicate"));
    provision_set_destroy(&set);

    /* z-old is the working channel: it keeps both its id and its name. */
    active_uuid = "00000000-0000-0000-0000-000000000003";
    provision_compute(r, "br-int", is_active, NULL, &set);
    CU_ASSERT_PTR_NULL(find(&set, "z-old")->error);
    CU_ASSERT_PTR_NOT_NULL(strstr(find(&set, "a-new")->error,
                                  "duplicate chand-vm vm1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(find(&set, "b-new")->error,
                                  "duplicate chand-id 7"));
    provision_set_destroy(&set);
    active_uuid = NULL;
    ovsdb_replica_destroy(r);
}

static void
test_status_op(void)
{
    json_t *op = provision_status_op("00000000-0000-0000-0000-000000000001",
                                     "error: x");
    char *s = json_dumps(op, JSON_COMPACT | JSON_SORT_KEYS);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"op\":\"mutate\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "[\"chand-status\",\"error: x\"]"));
    free(s);
    json_decref(op);
    op = provision_status_op("00000000-0000-0000-0000-000000000001", NULL);
    s = json_dumps(op, JSON_COMPACT);
    CU_ASSERT_PTR_NULL(strstr(s, "insert"));
    free(s);
    json_decref(op);
}

static const struct unit_test tests[] = {
    { "valid and invalid provisioning", test_valid_and_invalid },
    { "duplicates favour the active channel", test_duplicates_favour_active },
    { "status operation", test_status_op },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("host-provision", tests);
}
