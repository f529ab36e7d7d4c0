/* Copyright (c) 2026 The chand authors.  See inject.h. */

#include <config.h>
#include "inject.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ofconn.h"
#include "ofp13.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(inject);

#define TXN_RETRY_MS 5000       /* After a failed port transaction. */

struct inject {
    enum inject_mode mode;
    char *bridge;
    char *port_name;
    char *ovs_rundir;
    chan_port_recv_func *recv_cb;
    void *aux;

    int64_t ofport;             /* chand port's ofport in use, 0: OpenFlow. */
    char *reason;               /* Why OpenFlow (NULL while on the port). */
    bool decided;               /* A decision has been logged. */
    struct chan_port *port;     /* Connection to the port's socket. */

    unsigned int want_mtu;      /* MTU the channels would like; 0: any. */
    unsigned int port_mtu;      /* The chand port's MTU; 0: unknown. */

    bool txn_pending;           /* Creating or fixing the port. */
    long long next_txn;         /* No new transaction before. */
};

bool
inject_mode_from_string(const char *s, enum inject_mode *mode)
{
    if (!strcmp(s, "auto")) {
        *mode = INJECT_AUTO;
    } else if (!strcmp(s, "port")) {
        *mode = INJECT_PORT;
    } else if (!strcmp(s, "openflow")) {
        *mode = INJECT_OPENFLOW;
    } else {
        return false;
    }
    return true;
}

const char *
inject_mode_to_string(enum inject_mode mode)
{
    return (mode == INJECT_PORT ? "port"
            : mode == INJECT_OPENFLOW ? "openflow" : "auto");
}

void
inject_add_columns(struct ovsdb_replica *ovs)
{
    struct ovsdb_replica_table *t;

    /* Names, ports, interfaces and ofports are replicated for provisioning
     * already (host.c); these are the extra columns. */
    t = ovsdb_replica_add_table(ovs, "Open_vSwitch");
    ovsdb_replica_add_column(t, "iface_types", NULL);
    t = ovsdb_replica_add_table(ovs, "Interface");
    ovsdb_replica_add_column(t, "type", NULL);
    ovsdb_replica_add_column(t, "error", NULL);
    ovsdb_replica_add_column(t, "status", NULL);
    ovsdb_replica_add_column(t, "mtu", NULL);
    ovsdb_replica_add_column(t, "mtu_request", NULL);
    t = ovsdb_replica_add_table(ovs, "Port");
    ovsdb_replica_add_column(t, "tag", NULL);
}

struct inject *
inject_create(enum inject_mode mode, const char *bridge,
              const char *port_name, const char *ovs_rundir,
              chan_port_recv_func *recv_cb, void *aux)
{
    struct inject *inj = calloc(1, sizeof *inj);
    inj->mode = mode;
    inj->bridge = strdup(bridge);
    inj->port_name = strdup(port_name);
    inj->ovs_rundir = strdup(ovs_rundir);
    inj->recv_cb = recv_cb;
    inj->aux = aux;
    inj->reason = strdup("database not read yet");
    return inj;
}

void
inject_destroy(struct inject *inj)
{
    if (inj) {
        chan_port_destroy(inj->port);
        free(inj->bridge);
        free(inj->port_name);
        free(inj->ovs_rundir);
        free(inj->reason);
        free(inj);
    }
}

/* Database. */

/* True if the set of strings 'datum' (a string or ["set", [...]]) holds
 * 's'. */
static bool
string_set_has(const json_t *datum, const char *s)
{
    if (json_is_string(datum)) {
        return !strcmp(json_string_value(datum), s);
    }
    const json_t *atoms = json_array_get(datum, 1);
    size_t i;
    json_t *atom;
    json_array_foreach (atoms, i, atom) {
        if (json_is_string(atom) && !strcmp(json_string_value(atom), s)) {
            return true;
        }
    }
    return false;
}

static bool
vswitchd_has_chand_type(const struct ovsdb_replica *ovs)
{
    const struct ovsdb_replica_row *row = ovsdb_replica_first(
        ovsdb_replica_get_table(ovs, "Open_vSwitch"));
    return row && string_set_has(ovsdb_replica_row_get(row, "iface_types"),
                                 "chand");
}

static const struct ovsdb_replica_row *
find_by_name(const struct ovsdb_replica *ovs, const char *table,
             const char *name)
{
    return ovsdb_replica_find_by_string(ovsdb_replica_get_table(ovs, table),
                                        "name", name);
}

static void
txn_done(const json_t *result, const char *error, void *inj_)
{
    struct inject *inj = inj_;
    inj->txn_pending = false;
    if (error) {
        VLOG_WARN("bridge %s: creating or fixing chand port %s failed: %s",
                  inj->bridge, inj->port_name, error);
    }
}

static void
transact(struct inject *inj, struct ovsdb_replica *ovs, json_t *ops,
         long long now)
{
    inj->txn_pending = true;
    inj->next_txn = now + TXN_RETRY_MS;
    ovsdb_replica_transact(ovs, ops, txn_done, inj);
}

/* Adds the chand port to 'bridge' (what "ovs-vsctl add-port BRIDGE NAME
 * tag=4095 -- set Interface NAME type=chand" does). */
static void
create_port(struct inject *inj, struct ovsdb_replica *ovs,
            const struct ovsdb_replica_row *bridge, long long now)
{
    json_t *owner = json_pack("{ss}", "chand-owner", "chand-host");
    json_t *iface = json_pack("{ss ss so}", "name", inj->port_name,
                              "type", "chand", "external_ids",
                              ovsdb_datum_string_map(owner));
    json_decref(owner);
    json_t *port = json_pack("{ss so si}", "name", inj->port_name,
                             "interfaces", ovsdb_datum_named_uuid("iface"),
                             "tag", INJECT_PORT_VLAN);
    json_t *ports = ovsdb_datum_set(json_pack(
                                        "[o]",
                                        ovsdb_datum_named_uuid("port")));
    json_t *ops = json_pack(
        "[o o o]",
        ovsdb_op_insert("Interface", iface, "iface"),
        ovsdb_op_insert("Port", port, "port"),
        ovsdb_op_mutate("Bridge",
                        ovsdb_where_uuid(ovsdb_replica_row_uuid(bridge)),
                        json_pack("[o]", ovsdb_mutation("ports", "insert",
                                                        ports))));
    VLOG_INFO("bridge %s: creating chand port %s", inj->bridge,
              inj->port_name);
    transact(inj, ovs, ops, now);
}

/* Makes 'port' an access port of INJECT_PORT_VLAN. */
static void
set_port_vlan(struct inject *inj, struct ovsdb_replica *ovs,
              const struct ovsdb_replica_row *port, long long now)
{
    json_t *row = json_pack("{si}", "tag", INJECT_PORT_VLAN);
    json_t *ops = json_pack("[o]", ovsdb_op_update(
                                "Port",
                                ovsdb_where_uuid(ovsdb_replica_row_uuid(port)),
                                row));
    VLOG_INFO("bridge %s: setting chand port %s's VLAN to %d so that "
              "floods do not reach it", inj->bridge, inj->port_name,
              INJECT_PORT_VLAN);
    transact(inj, ovs, ops, now);
}

/* Asks for MTU 'mtu' on the chand port 'iface' (a chand port drops the
 * frames we send that are longer than its MTU). */
static void
set_port_mtu(struct inject *inj, struct ovsdb_replica *ovs,
             const struct ovsdb_replica_row *iface, unsigned int mtu,
             long long now)
{
    json_t *row = json_pack("{sI}", "mtu_request", (json_int_t) mtu);
    json_t *ops = json_pack("[o]", ovsdb_op_update(
                                "Interface",
                                ovsdb_where_uuid(ovsdb_replica_row_uuid(
                                                     iface)),
                                row));
    VLOG_INFO("bridge %s: asking for MTU %u on chand port %s, for the "
              "channels' frames", inj->bridge, mtu, inj->port_name);
    transact(inj, ovs, ops, now);
}

/* Looks at the chand port in 'ovs'.  Returns its ofport if it can carry
 * frames, otherwise 0 with a reason (malloc'd) in '*reason'; creates or
 * fixes the port when needed.  '*socket' gets the port's socket path
 * (malloc'd) if ovs-vswitchd reports it, else NULL. */
static int64_t
examine_port(struct inject *inj, struct ovsdb_replica *ovs, long long now,
             char **reason, char **socket)
{
    const struct ovsdb_replica_row *bridge, *port, *iface;
    bool can_txn = !inj->txn_pending && now >= inj->next_txn;

    *socket = NULL;
    bridge = find_by_name(ovs, "Bridge", inj->bridge);
    port = find_by_name(ovs, "Port", inj->port_name);
    iface = find_by_name(ovs, "Interface", inj->port_name);
    if (!bridge) {
        *reason = strdup("no such bridge");
        return 0;
    }
    if (!port || !iface) {
        if (port || iface) {
            *reason = strdup("a port or interface of that name exists "
                             "without the other");
            return 0;
        }
        if (can_txn) {
            create_port(inj, ovs, bridge, now);
        }
        *reason = strdup("creating the chand port");
        return 0;
    }
    if (!ovsdb_replica_row_refers_to(bridge, "ports",
                                     ovsdb_replica_row_uuid(port))
        || !ovsdb_replica_row_refers_to(port, "interfaces",
                                        ovsdb_replica_row_uuid(iface))) {
        *reason = strdup("a port of that name exists on another bridge");
        return 0;
    }
    const char *type = ovsdb_replica_row_get_string(iface, "type");
    if (!type || strcmp(type, "chand")) {
        *reason = xasprintf("interface %s has type \"%s\", not chand",
                            inj->port_name, type ? type : "");
        return 0;
    }
    const char *error = ovsdb_replica_row_get_string(iface, "error");
    if (error && *error) {
        *reason = xasprintf("port %s: %s", inj->port_name, error);
        return 0;
    }
    int64_t tag;
    bool has_tag;
    if (can_txn
        && !ovsdb_datum_get_integer(ovsdb_replica_row_get(port, "tag"),
                                    &tag, &has_tag)
        && (!has_tag || tag != INJECT_PORT_VLAN)) {
        set_port_vlan(inj, ovs, port, now);
    }
    int64_t mtu, mtu_request;
    bool has_mtu, has_request;
    inj->port_mtu = 0;
    if (!ovsdb_datum_get_integer(ovsdb_replica_row_get(iface, "mtu"),
                                 &mtu, &has_mtu) && has_mtu && mtu > 0) {
        inj->port_mtu = mtu;
    }
    if (can_txn && inj->want_mtu > (inj->port_mtu ? inj->port_mtu : 1500)
        && !ovsdb_datum_get_integer(ovsdb_replica_row_get(iface,
                                                          "mtu_request"),
                                    &mtu_request, &has_request)
        && (!has_request || mtu_request < inj->want_mtu)) {
        set_port_mtu(inj, ovs, iface, inj->want_mtu, now);
    }
    int64_t ofport;
    bool has_ofport;
    if (ovsdb_datum_get_integer(ovsdb_replica_row_get(iface, "ofport"),
                                &ofport, &has_ofport)
        || !has_ofport || ofport <= 0) {
        *reason = strdup("waiting for the chand port's OpenFlow port "
                         "number");
        return 0;
    }
    json_t *status;
    if (!ovsdb_datum_get_string_map(ovsdb_replica_row_get(iface, "status"),
                                    &status)) {
        const char *path = json_string_value(json_object_get(status,
                                                             "socket"));
        *socket = path ? strdup(path) : NULL;
        json_decref(status);
    }
    return ofport;
}

/* Points the connection at 'path' (or the default socket of the port). */
static void
connect_port(struct inject *inj, const char *path)
{
    char *dflt = NULL;
    if (!path) {
        dflt = xasprintf("%s/%s.chand", inj->ovs_rundir, inj->port_name);
        path = dflt;
    }
    if (!inj->port || strcmp(chan_port_get_name(inj->port), path)) {
        chan_port_destroy(inj->port);
        inj->port = chan_port_create(path, inj->recv_cb, inj->aux);
    }
    free(dflt);
}

static void
log_decision(const struct inject *inj, const char *socket)
{
    if (inj->ofport) {
        VLOG_INFO("bridge %s: frames go through chand port %s (ofport "
                  "%"PRId64", socket %s)", inj->bridge, inj->port_name,
                  inj->ofport, socket);
    } else if (inj->mode == INJECT_PORT) {
        VLOG_ERR("bridge %s: --inject=port, but %s: frames go through "
                 "OpenFlow PACKET_OUT/PACKET_IN", inj->bridge, inj->reason);
    } else {
        VLOG_INFO("bridge %s: frames go through OpenFlow PACKET_OUT/"
                  "PACKET_IN (%s)", inj->bridge, inj->reason);
    }
}

void
inject_run(struct inject *inj, struct ovsdb_replica *ovs, long long now)
{
    if (inj->port) {
        chan_port_run(inj->port);
    }
    if (!ovsdb_replica_is_synced(ovs)) {
        return;
    }

    char *reason = NULL;
    char *socket = NULL;
    int64_t ofport = 0;
    if (inj->mode == INJECT_OPENFLOW) {
        reason = strdup("--inject=openflow");
    } else if (!vswitchd_has_chand_type(ovs)) {
        reason = strdup("ovs-vswitchd has no chand port type");
    } else {
        ofport = examine_port(inj, ovs, now, &reason, &socket);
    }

    if (ofport) {
        connect_port(inj, socket);
        free(socket);
    } else if (inj->port) {
        chan_port_destroy(inj->port);
        inj->port = NULL;
    }
    bool changed = (ofport != inj->ofport || !inj->decided
                    || (!reason != !inj->reason)
                    || (reason && strcmp(reason, inj->reason)));
    free(inj->reason);
    inj->reason = reason;
    inj->ofport = ofport;
    if (changed) {
        inj->decided = true;
        log_decision(inj, inj->port ? chan_port_get_name(inj->port) : "");
    }
}

void
inject_wait(struct inject *inj)
{
    if (inj->port) {
        chan_port_wait(inj->port);
    }
}

void
inject_set_mtu(struct inject *inj, unsigned int mtu)
{
    inj->want_mtu = mtu;
}

unsigned int
inject_max_mtu(const struct inject *inj)
{
    if (!inj->ofport) {
        return 0;               /* PACKET_OUT carries any frame. */
    }
    return inj->port_mtu ? inj->port_mtu : 1500;
}

int64_t
inject_ofport(const struct inject *inj)
{
    return inj->ofport;
}

int
inject_send(struct inject *inj, struct ofconn *of, uint32_t pkt_mark,
            const uint8_t *frame, size_t len)
{
    if (inj->ofport && inj->port && chan_port_is_connected(inj->port)) {
        int error = chan_port_send(inj->port, pkt_mark, frame, len);
        return error == EINVAL ? EMSGSIZE : error;
    }
    return ofconn_send_frame(of, inj->ofport ? inj->ofport
                             : OFP13_PORT_CONTROLLER, pkt_mark, frame, len);
}

void
inject_flush(struct inject *inj)
{
    if (inj->port) {
        chan_port_flush(inj->port);
    }
}

json_t *
inject_status(const struct inject *inj)
{
    json_t *j = json_pack("{ss ss}", "path", inj->ofport ? "port"
                          : "openflow", "mode",
                          inject_mode_to_string(inj->mode));
    if (inj->reason) {
        json_object_set_new(j, "reason", json_string(inj->reason));
    }
    if (inj->ofport && inj->port) {
        struct chan_port_stats s;
        chan_port_get_stats(inj->port, &s);
        json_object_set_new(j, "port", json_pack(
            "{ss sI ss sb sI sI sI sI sI sI sI sI sI}",
            "name", inj->port_name, "ofport", (json_int_t) inj->ofport,
            "socket", chan_port_get_name(inj->port),
            "connected", chan_port_is_connected(inj->port),
            "tx_frames", (json_int_t) s.tx_frames,
            "tx_batches", (json_int_t) s.tx_batches,
            "tx_dropped", (json_int_t) s.tx_dropped,
            "tx_errors", (json_int_t) s.tx_errors,
            "rx_frames", (json_int_t) s.rx_frames,
            "rx_batches", (json_int_t) s.rx_batches,
            "rx_bad", (json_int_t) s.rx_bad,
            "connects", (json_int_t) s.connects,
            "disconnects", (json_int_t) s.disconnects));
    }
    return j;
}
