/* chand-guest's bridge on the guest's Open vSwitch: see bridge.h. */

#include <config.h>
#include "bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan-flows.h"
#include "flow-counters.h"
#include "ofctrl.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "packets.h"
#include "poll-loop.h"
#include "reconnect.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(bridge);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 10);

/* What the bridge is doing. */
enum bridge_step {
    STEP_IDLE,                  /* Nothing: ready, or waiting to retry. */

    /* A setup. */
    STEP_OVSDB,                 /* Waiting for the database, then for the
                                 * transaction adding the bridge and its
                                 * ports. */
    STEP_OFPORTS,               /* Waiting for both ports' OpenFlow port
                                 * numbers to appear in the database. */
    STEP_OPENFLOW,              /* Waiting for the OpenFlow connection. */
    STEP_FLOWS,                 /* Installing the flows (a sync). */

    /* A check. */
    STEP_CHECK,                 /* A forced sync: re-adds missing flows,
                                 * removes unwanted ones, reads counts. */
};

struct bridge {
    struct bridge_config cfg;   /* Strings owned (copies); timing with the
                                 * defaults filled in. */
    char *target;               /* "unix:RUNDIR/BRIDGE.mgmt". */
    struct flow_template *template;
    struct ovsdb_replica *ovs;  /* The guest's Open_vSwitch database. */
    struct ofctrl *ofctrl;      /* Flows, once the bridge exists. */

    bool ready;
    unsigned int seqno;
    struct reconnect *retry;    /* Setup attempts and their backoff. */
    long long next_check;       /* While ready: when to check next. */

    /* The setup or check in progress. */
    enum bridge_step step;
    long long started;
    long long deadline;         /* Fails if not done by then. */
    uint64_t txn_id;            /* The setup's OVSDB transaction, or 0. */
    long long now;              /* Time of the bridge_run() in progress. */

    /* As of the last successful setup. */
    int64_t vnic_ofport;
    int64_t chand_ofport;
    unsigned int ifindex;
    unsigned int of_seqno;      /* The OpenFlow connection's seqno. */
    struct flow_template_flows flows;   /* Wanted flows (counters). */
    struct flow_counters counters;      /* Counted flows' packets. */

    /* Counters. */
    uint64_t n_setups;
    uint64_t n_setup_failures;
    uint64_t n_checks;
    uint64_t n_check_failures;
    char last_error[256];
};

bool
bridge_name_is_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;

    if (!len || len >= IFNAMSIZ || name[0] == '-' || !strcmp(name, ".")
        || !strcmp(name, "..")) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'
              || *p == '-')) {
            return false;
        }
    }
    return true;
}

/* Declares the tables and columns of the Open_vSwitch database the bridge
 * reads. */
static void
add_ovs_columns(struct ovsdb_replica *ovs)
{
    static const char *const columns[][4] = {
        { "Open_vSwitch", "bridges", NULL },
        { "Bridge", "name", "ports", NULL },
        { "Port", "name", "interfaces", NULL },
        { "Interface", "name", "ofport", "error" },
    };

    for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++) {
        struct ovsdb_replica_table *t = ovsdb_replica_add_table(
            ovs, columns[i][0]);
        for (size_t j = 1; j < 4 && columns[i][j]; j++) {
            ovsdb_replica_add_column(t, columns[i][j], NULL);
        }
    }
}

/* Returns 'ms' if it is positive, else 'def'. */
static int
default_ms(int ms, int def)
{
    return ms > 0 ? ms : def;
}

/* bridge_create()'s work: returns 0 or a positive errno, with the reason
 * logged. */
static int
bridge_create__(const struct bridge_config *config, struct bridge **brp)
{
    struct flow_template_flows trial = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;
    enum flow_template_error e;
    struct flow_template *ft;
    struct bridge *br;
    size_t len;
    char *text;

    *brp = NULL;
    const char *names[] = { config->bridge, config->vnic, config->port };
    for (size_t i = 0; i < 3; i++) {
        if (!bridge_name_is_valid(names[i])) {
            VLOG_ERR("\"%s\" is not a valid interface name (1 to %d "
                     "characters from A-Z a-z 0-9 _ . -)",
                     names[i] ? names[i] : "", IFNAMSIZ - 1);
            return EINVAL;
        }
    }
    if (!strcmp(config->vnic, config->port)
        || !strcmp(config->bridge, config->port)
        || !strcmp(config->bridge, config->vnic)) {
        VLOG_ERR("the bridge (%s), the vNIC (%s) and chand-guest's port "
                 "(%s) must have three different names", config->bridge,
                 config->vnic, config->port);
        return EINVAL;
    }

    text = read_file(config->flows, &len);
    if (!text) {
        int error = errno ? errno : EIO;
        VLOG_ERR("%s: cannot read the guest flow template (%s)",
                 config->flows, strerror(error));
        return error;
    }
    e = flow_template_parse(text, len, &ft, &diag);
    free(text);
    if (e) {
        VLOG_ERR("%s:%u: %s%s%s", config->flows, diag.line,
                 flow_template_strerror(e), *diag.detail ? ": " : "",
                 diag.detail);
        return EINVAL;
    }
    /* Render once with made-up ports, to find template problems now. */
    e = chan_flows_render_guest(ft, &config->chan, 1, 2, &trial, &diag,
                                NULL);
    flow_template_flows_destroy(&trial);
    if (e) {
        VLOG_ERR("%s:%u: %s%s%s", config->flows, diag.line,
                 flow_template_strerror(e), *diag.detail ? ": " : "",
                 diag.detail);
        flow_template_destroy(ft);
        return EINVAL;
    }

    br = xcalloc(1, sizeof *br);
    br->cfg = *config;
    br->cfg.ovs_db = xstrdup(config->ovs_db);
    br->cfg.ovs_rundir = xstrdup(config->ovs_rundir);
    br->cfg.bridge = xstrdup(config->bridge);
    br->cfg.vnic = xstrdup(config->vnic);
    br->cfg.port = xstrdup(config->port);
    br->cfg.flows = xstrdup(config->flows);
    br->cfg.check_ms = default_ms(config->check_ms, BRIDGE_CHECK_MS);
    br->cfg.setup_timeout_ms = default_ms(config->setup_timeout_ms,
                                          BRIDGE_SETUP_TIMEOUT_MS);
    br->cfg.check_timeout_ms = default_ms(config->check_timeout_ms,
                                          BRIDGE_CHECK_TIMEOUT_MS);
    br->cfg.retry_min_ms = default_ms(config->retry_min_ms,
                                      BRIDGE_RETRY_MIN_MS);
    br->cfg.retry_max_ms = default_ms(config->retry_max_ms,
                                      BRIDGE_RETRY_MAX_MS);
    br->target = xasprintf("unix:%s/%s.mgmt", config->ovs_rundir,
                           config->bridge);
    br->template = ft;
    br->ovs = ovsdb_replica_create("Open_vSwitch");
    add_ovs_columns(br->ovs);
    flow_template_flows_init(&br->flows);
    flow_counters_init(&br->counters);

    /* Enabled, and the database connected, at the first bridge_run(),
     * which has the time. */
    br->retry = reconnect_create(0);
    reconnect_set_name(br->retry, br->cfg.bridge);
    reconnect_set_backoff(br->retry, br->cfg.retry_min_ms,
                          br->cfg.retry_max_ms);
    reconnect_set_probe_interval(br->retry, 0);
    *brp = br;
    return 0;
}

struct bridge *
bridge_create(const struct bridge_config *config)
{
    struct bridge *br;
    int error = bridge_create__(config, &br);

    if (error) {
        errno = error;
        return NULL;
    }
    return br;
}

void
bridge_destroy(struct bridge *br)
{
    if (br) {
        ofctrl_destroy(br->ofctrl);
        ovsdb_replica_destroy(br->ovs);
        free((char *) br->cfg.ovs_db);
        free((char *) br->cfg.ovs_rundir);
        free((char *) br->cfg.bridge);
        free((char *) br->cfg.vnic);
        free((char *) br->cfg.port);
        free((char *) br->cfg.flows);
        free(br->target);
        reconnect_destroy(br->retry);
        flow_template_flows_destroy(&br->flows);
        flow_counters_destroy(&br->counters);
        flow_template_destroy(br->template);
        free(br);
    }
}

/* Returns the name of 'step' (a static string), or NULL for STEP_IDLE. */
static const char *
step_name(enum bridge_step step)
{
    switch (step) {
    case STEP_OVSDB: return "ovsdb";
    case STEP_OFPORTS: return "ofports";
    case STEP_OPENFLOW: return "openflow";
    case STEP_FLOWS: return "flows";
    case STEP_CHECK: return "check";
    case STEP_IDLE:
    default: return NULL;
    }
}

/* The database: the bridge and its ports. */

/* Returns the row of 'table' named 'name', or NULL. */
static const struct ovsdb_replica_row *
find_by_name(const struct bridge *br, const char *table, const char *name)
{
    return ovsdb_replica_find_by_string(ovsdb_replica_get_table(br->ovs,
                                                                table),
                                        "name", name);
}

/* The Interface columns of chand-guest's port: an internal port with the
 * guest endpoint's MAC. */
static json_t *
chand_iface_columns(const struct bridge *br)
{
    char mac[ETH_ADDR_STRLEN];

    eth_addr_to_string(&br->cfg.chan.guest.mac, mac);
    return json_pack("{ss ss}", "type", "internal", "mac", mac);
}

/* Adds to 'ops' the insertion of port 'name' with its interface (whose
 * columns are 'iface_columns', stolen, or none for a system interface),
 * named "port<N>" for the transaction, and returns that name's
 * reference. */
static json_t *
insert_port(json_t *ops, const char *name, json_t *iface_columns, int n)
{
    char iface_ref[16], port_ref[16];
    json_t *iface = iface_columns ? iface_columns : json_object();

    snprintf(iface_ref, sizeof iface_ref, "iface%d", n);
    snprintf(port_ref, sizeof port_ref, "port%d", n);
    json_object_set_new(iface, "name", json_string(name));
    json_array_append_new(ops, ovsdb_op_insert("Interface", iface,
                                               iface_ref));
    json_array_append_new(ops, ovsdb_op_insert(
                              "Port", json_pack("{ss so}", "name", name,
                                                "interfaces",
                                                ovsdb_datum_named_uuid(
                                                    iface_ref)),
                              port_ref));
    return ovsdb_datum_named_uuid(port_ref);
}

/* The Bridge columns the guest bridge must have. */
static json_t *
bridge_columns(void)
{
    static const char *const protocols[] = { "OpenFlow13" };

    return json_pack("{ss so ss}", "datapath_type", "netdev",
                     "protocols", ovsdb_datum_string_set(protocols, 1),
                     "fail_mode", "secure");
}

/* Adds to 'ops' what the guest bridge lacks: its ports (the vNIC and
 * chand-guest's), with their references added to 'new_ports'.  'bridge'
 * is the bridge's row, or NULL if it is added in the same transaction.
 * Returns NULL, or why it cannot be done (a static string). */
static const char *
add_port_ops(const struct bridge *br, const struct ovsdb_replica_row *bridge,
             json_t *ops, json_t *new_ports)
{
    const char *names[2] = { br->cfg.vnic, br->cfg.port };

    for (int i = 0; i < 2; i++) {
        const struct ovsdb_replica_row *port;
        bool chand = i == 1;

        port = find_by_name(br, "Port", names[i]);
        if (!port) {
            json_array_append_new(new_ports, insert_port(
                                      ops, names[i],
                                      chand ? chand_iface_columns(br) : NULL,
                                      i));
        } else if (!bridge
                   || !ovsdb_replica_row_refers_to(
                       bridge, "ports", ovsdb_replica_row_uuid(port))) {
            return chand ? "chand-guest's port exists on another bridge"
                         : "the vNIC is a port of another bridge";
        }
    }
    return NULL;
}

/* Adds to 'ops' the insertion of the guest bridge, with its own internal
 * port and the ports in 'new_ports' (stolen). */
static void
insert_bridge_ops(const struct bridge *br, json_t *ops, json_t *new_ports)
{
    json_t *row = bridge_columns();
    json_t *bridges;

    json_array_append_new(new_ports, insert_port(
                              ops, br->cfg.bridge,
                              json_pack("{ss}", "type", "internal"), 2));
    json_object_set_new(row, "name", json_string(br->cfg.bridge));
    json_object_set_new(row, "ports", ovsdb_datum_set(new_ports));
    json_array_append_new(ops, ovsdb_op_insert("Bridge", row, "br"));
    bridges = ovsdb_datum_set(json_pack("[o]",
                                        ovsdb_datum_named_uuid("br")));
    json_array_append_new(ops, ovsdb_op_mutate(
                              "Open_vSwitch", json_array(),
                              json_pack("[o]", ovsdb_mutation(
                                            "bridges", "insert", bridges))));
}

/* Adds to 'ops' the update of the existing guest bridge 'bridge' and the
 * addition of the ports in 'new_ports' (stolen) to it. */
static void
update_bridge_ops(const struct ovsdb_replica_row *bridge, json_t *ops,
                  json_t *new_ports)
{
    const char *uuid = ovsdb_replica_row_uuid(bridge);

    json_array_append_new(ops, ovsdb_op_update(
                              "Bridge", ovsdb_where_uuid(uuid),
                              bridge_columns()));
    if (!json_array_size(new_ports)) {
        json_decref(new_ports);
        return;
    }
    json_array_append_new(ops, ovsdb_op_mutate(
                              "Bridge", ovsdb_where_uuid(uuid),
                              json_pack("[o]", ovsdb_mutation(
                                            "ports", "insert",
                                            ovsdb_datum_set(new_ports)))));
}

/* Returns the operations (a new JSON array, owned by the caller) that make
 * the guest bridge and its ports what they must be (what "ovs-vsctl
 * --may-exist add-br BRIDGE -- set Bridge BRIDGE datapath_type=netdev
 * protocols=OpenFlow13 fail_mode=secure -- --may-exist add-port BRIDGE
 * VNIC -- --may-exist add-port BRIDGE PORT -- set Interface PORT
 * type=internal mac=MAC" does), or NULL with the reason in the bridge's
 * last error. */
static json_t *
setup_ops(struct bridge *br)
{
    const struct ovsdb_replica_row *bridge, *iface;
    json_t *ops = json_array();
    json_t *new_ports = json_array();
    const char *error;

    bridge = find_by_name(br, "Bridge", br->cfg.bridge);
    error = add_port_ops(br, bridge, ops, new_ports);
    if (error) {
        snprintf(br->last_error, sizeof br->last_error, "%s", error);
        json_decref(new_ports);
        json_decref(ops);
        return NULL;
    }
    if (!bridge) {
        insert_bridge_ops(br, ops, new_ports);
    } else {
        update_bridge_ops(bridge, ops, new_ports);
    }
    iface = find_by_name(br, "Interface", br->cfg.port);
    if (iface) {
        json_array_append_new(ops, ovsdb_op_update(
                                  "Interface",
                                  ovsdb_where_uuid(
                                      ovsdb_replica_row_uuid(iface)),
                                  chand_iface_columns(br)));
    }
    json_array_append_new(ops, ovsdb_op_comment("chand-guest: guest bridge "
                                                "setup"));
    return ops;
}

static void setup_failed(struct bridge *, long long now);

/* The setup's transaction ended. */
static void
setup_txn_done(const json_t *result, const char *error,
               void *br_)
{
    struct bridge *br = br_;

    (void) result;
    br->txn_id = 0;
    if (br->step != STEP_OVSDB) {
        return;
    }
    if (error) {
        snprintf(br->last_error, sizeof br->last_error,
                 "Open vSwitch database transaction failed: %s", error);
        setup_failed(br, br->now);
    } else {
        br->step = STEP_OFPORTS;
    }
}

/* Reads the OpenFlow port number of interface 'name': > 0 once assigned, 0
 * while not yet, -1 if Open vSwitch could not add it (with the reason in
 * the bridge's last error). */
static int64_t
get_ofport(struct bridge *br, const char *name)
{
    const struct ovsdb_replica_row *iface;
    const json_t *datum;
    int64_t ofport;
    bool has;

    iface = find_by_name(br, "Interface", name);
    datum = iface ? ovsdb_replica_row_get(iface, "ofport") : NULL;
    if (!datum || ovsdb_datum_get_integer(datum, &ofport, &has) || !has) {
        return 0;
    }
    if (ofport < 0) {
        const char *error = ovsdb_replica_row_get_string(iface, "error");
        snprintf(br->last_error, sizeof br->last_error,
                 "Open vSwitch cannot add %s%s%s", name,
                 error && *error ? ": " : "", error ? error : "");
        return -1;
    }
    return ofport;
}

/* chand0, configured in-process: non-blocking ioctls. */

/* Returns true if 'ifname' has IPv4 address 'ip'. */
static bool
has_address(const char *ifname, uint32_t ip)
{
    struct ifaddrs *ifas, *ifa;
    bool found = false;

    if (getifaddrs(&ifas)) {
        return true;            /* Cannot tell: assume so. */
    }
    for (ifa = ifas; ifa && !found; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET
            && !strcmp(ifa->ifa_name, ifname)) {
            const struct sockaddr_in *sin = (const void *) ifa->ifa_addr;
            found = ntohl(sin->sin_addr.s_addr) == ip;
        }
    }
    freeifaddrs(ifas);
    return found;
}

/* Stores IPv4 address 'ip' (host byte order) as a sockaddr_in in the
 * caller's '*sa'. */
static void
set_sin(struct sockaddr *sa, uint32_t ip)
{
    struct sockaddr_in sin = {
        .sin_family = AF_INET,
        .sin_addr.s_addr = htonl(ip),
    };

    memcpy(sa, &sin, sizeof sin);
}

/* Does ioctl 'request' on 'arg' with socket 'fd'.  On failure records
 * 'what' and the error as the bridge's last error and returns false. */
static bool
do_ioctl(struct bridge *br, int fd, unsigned long request, void *arg,
         const char *what)
{
    if (ioctl(fd, request, arg) && errno != EEXIST) {
        snprintf(br->last_error, sizeof br->last_error, "%s: %s %s: %s",
                 br->cfg.port, "cannot", what, strerror(errno));
        return false;
    }
    return true;
}

/* Clears the caller's '*ifr' and names chand0 in it. */
static void
init_ifreq(const struct bridge *br, struct ifreq *ifr)
{
    memset(ifr, 0, sizeof *ifr);
    snprintf(ifr->ifr_name, sizeof ifr->ifr_name, "%s", br->cfg.port);
}

/* Gives chand0 the guest endpoint's MAC, unless it has it. */
static bool
set_port_mac(struct bridge *br, int fd)
{
    const struct eth_addr *mac = &br->cfg.chan.guest.mac;
    struct ifreq ifr;

    init_ifreq(br, &ifr);
    if (!ioctl(fd, SIOCGIFHWADDR, &ifr)
        && !memcmp(ifr.ifr_hwaddr.sa_data, mac->ea, ETH_ADDR_LEN)) {
        return true;
    }
    init_ifreq(br, &ifr);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac->ea, ETH_ADDR_LEN);
    return do_ioctl(br, fd, SIOCSIFHWADDR, &ifr, "set the MAC address");
}

/* Gives chand0 the guest endpoint's address as a /32, unless it has it:
 * no prefix route, so chand0 never captures the rest of the address's
 * network (for a link-local address, 169.254.0.0/16, which the VM may
 * reach through its own NIC: cloud metadata services at 169.254.169.254,
 * for one).  The address comes before the link is up, so that the kernel
 * never adds the route of the address's class in between. */
static bool
set_port_address(struct bridge *br, int fd)
{
    struct ifreq ifr;

    if (has_address(br->cfg.port, br->cfg.chan.guest.ip)) {
        return true;
    }
    init_ifreq(br, &ifr);
    set_sin(&ifr.ifr_addr, br->cfg.chan.guest.ip);
    if (!do_ioctl(br, fd, SIOCSIFADDR, &ifr, "set the address")) {
        return false;
    }
    init_ifreq(br, &ifr);
    set_sin(&ifr.ifr_netmask, UINT32_MAX);
    return do_ioctl(br, fd, SIOCSIFNETMASK, &ifr, "set the netmask");
}

/* Brings chand0 up, unless it is. */
static bool
set_port_up(struct bridge *br, int fd)
{
    struct ifreq ifr;

    init_ifreq(br, &ifr);
    if (!do_ioctl(br, fd, SIOCGIFFLAGS, &ifr, "read the flags")) {
        return false;
    }
    if (ifr.ifr_flags & IFF_UP) {
        return true;
    }
    ifr.ifr_flags |= IFF_UP;
    return do_ioctl(br, fd, SIOCSIFFLAGS, &ifr, "bring the link up");
}

/* Adds a host route to the host endpoint through chand0 (scope link; an
 * existing one is kept). */
static bool
add_host_route(struct bridge *br, int fd)
{
    struct rtentry rt;

    memset(&rt, 0, sizeof rt);
    set_sin(&rt.rt_dst, br->cfg.chan.host.ip);
    set_sin(&rt.rt_genmask, UINT32_MAX);
    rt.rt_flags = RTF_UP | RTF_HOST;
    rt.rt_dev = (char *) br->cfg.port;
    return do_ioctl(br, fd, SIOCADDRT, &rt, "add the route to the host "
                    "endpoint");
}

/* Adds a permanent neighbour entry for the host endpoint.  Not needed (the
 * guest flows answer ARP for it): a failure is only logged. */
static void
add_host_neighbour(struct bridge *br, int fd)
{
    struct arpreq arp;

    memset(&arp, 0, sizeof arp);
    set_sin(&arp.arp_pa, br->cfg.chan.host.ip);
    arp.arp_ha.sa_family = ARPHRD_ETHER;
    memcpy(arp.arp_ha.sa_data, br->cfg.chan.host.mac.ea, ETH_ADDR_LEN);
    arp.arp_flags = ATF_PERM | ATF_COM;
    snprintf(arp.arp_dev, sizeof arp.arp_dev, "%s", br->cfg.port);
    if (ioctl(fd, SIOCSARP, &arp)) {
        VLOG_DBG("%s: could not add a neighbour entry for the host "
                 "endpoint: %s", br->cfg.port, strerror(errno));
    }
}

/* Configures chand0: MAC, the guest endpoint address, up, a host route to
 * the host endpoint, and its neighbour entry.  Each step is one ioctl that
 * the kernel does at once.  Stores chand0's index in the bridge. */
static bool
configure_port(struct bridge *br)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0) {
        snprintf(br->last_error, sizeof br->last_error,
                 "cannot create a socket: %s", strerror(errno));
        return false;
    }
    ok = (set_port_mac(br, fd) && set_port_address(br, fd)
          && set_port_up(br, fd) && add_host_route(br, fd));
    if (ok) {
        add_host_neighbour(br, fd);
        br->ifindex = if_nametoindex(br->cfg.port);
    }
    close(fd);
    return ok;
}

/* Flows. */

/* Renders the flows for the ports found into the wanted ones. */
static bool
render_flows(struct bridge *br, int64_t vnic_ofport, int64_t chand_ofport)
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;
    enum flow_template_error e;

    e = chan_flows_render_guest(br->template, &br->cfg.chan, vnic_ofport,
                                chand_ofport, &flows, &diag, NULL);
    if (e) {
        snprintf(br->last_error, sizeof br->last_error, "%s:%u: %s",
                 br->cfg.flows, diag.line, flow_template_strerror(e));
        flow_template_flows_destroy(&flows);
        return false;
    }
    flow_template_flows_destroy(&br->flows);
    br->flows = flows;
    br->vnic_ofport = vnic_ofport;
    br->chand_ofport = chand_ofport;
    return true;
}

/* Adds up the counted flows' packets from the last sync's flow
 * statistics. */
static void
take_counters(struct bridge *br)
{
    size_t n_stats;
    const struct flow_packets *stats = ofctrl_flow_stats(br->ofctrl,
                                                         &n_stats);
    struct flow_count *counts;
    size_t n = flow_counters_sum_packets(&br->flows, stats, n_stats,
                                         &counts);

    if (n) {
        flow_counters_update(&br->counters, counts, n);
    }
    free(counts);
}

/* Starts a sync of the wanted flows, to be over by the deadline of the
 * current step.  Returns 0 or an errno. */
static int
start_sync(struct bridge *br)
{
    return ofctrl_sync_start(br->ofctrl, &br->flows, NULL, 0, br->deadline);
}

/* Describes a sync's error 'error' in the bridge's last error. */
static void
set_sync_error(struct bridge *br, const char *what, int error)
{
    snprintf(br->last_error, sizeof br->last_error, "%s: %s", what,
             error == EPROTO ? "the switch refused flows (logged)"
             : error == ENOTCONN ? "the OpenFlow connection was lost"
             : error == ETIMEDOUT ? "no answer from ovs-vswitchd in time"
             : strerror(error));
}


/* Setups and checks. */

/* Starts step 'step' of a setup or check (at 'now', ending by
 * 'timeout_ms' later). */
static void
start_step(struct bridge *br, enum bridge_step step, long long now,
           int timeout_ms)
{
    br->step = step;
    br->started = now;
    br->deadline = now + timeout_ms;
}

/* Ends the setup or check in progress. */
static void
end_step(struct bridge *br)
{
    if (br->txn_id) {
        ovsdb_replica_transact_cancel(br->ovs, br->txn_id);
        br->txn_id = 0;
    }
    br->step = STEP_IDLE;
}

/* The setup failed: the bridge's last error says why.  Retried after the
 * backoff. */
static void
setup_failed(struct bridge *br, long long now)
{
    end_step(br);
    br->n_setup_failures++;
    reconnect_connect_failed(br->retry, now, EAGAIN);
    VLOG_ERR_RL(&rl, "guest bridge %s setup failed: %s; retrying in %lld "
                "ms", br->cfg.bridge, br->last_error,
                reconnect_wait(br->retry, now) - now);
}

/* Starts a setup: its first step waits for the database. */
static void
start_setup(struct bridge *br, long long now)
{
    reconnect_connecting(br->retry, now);
    start_step(br, STEP_OVSDB, now, br->cfg.setup_timeout_ms);
}

/* The setup succeeded. */
static void
setup_done(struct bridge *br, long long now)
{
    end_step(br);
    take_counters(br);
    br->ready = true;
    br->seqno++;
    br->n_setups++;
    br->next_check = now + br->cfg.check_ms;
    br->last_error[0] = '\0';
    reconnect_connected(br->retry, now);
    VLOG_INFO("guest bridge %s ready: %s is OpenFlow port %"PRId64", %s "
              "is OpenFlow port %"PRId64", %zu flows installed",
              br->cfg.bridge, br->cfg.vnic, br->vnic_ofport, br->cfg.port,
              br->chand_ofport, br->flows.n);
}

/* The bridge is not as set up: 'reason' says why.  Sets it up again at
 * once (the backoff grows if it was ready for a short while only). */
static void
check_failed(struct bridge *br, const char *reason, long long now)
{
    if (reason != br->last_error) {
        snprintf(br->last_error, sizeof br->last_error, "%s", reason);
    }
    end_step(br);
    br->n_check_failures++;
    br->ready = false;
    VLOG_WARN("guest bridge %s: %s; setting it up again", br->cfg.bridge,
              br->last_error);
    reconnect_force_reconnect(br->retry, now);
    reconnect_disconnected(br->retry, now, EAGAIN);
}

/* Starts a check: chand0 is checked here, then a forced sync puts back
 * missing flows, removes unwanted ones and reads the counts. */
static void
start_check(struct bridge *br, long long now)
{
    char why[256];

    br->n_checks++;
    if (if_nametoindex(br->cfg.port) != br->ifindex) {
        snprintf(why, sizeof why, "%s was removed or recreated "
                 "(ovs-vswitchd restarted?)", br->cfg.port);
    } else if (!has_address(br->cfg.port, br->cfg.chan.guest.ip)) {
        snprintf(why, sizeof why, "%s lost its address", br->cfg.port);
    } else {
        int error;

        start_step(br, STEP_CHECK, now, br->cfg.check_timeout_ms);
        error = start_sync(br);
        if (error) {
            set_sync_error(br, "cannot check the flows", error);
            check_failed(br, br->last_error, now);
        }
        return;
    }
    check_failed(br, why, now);
}

/* STEP_OVSDB: once the database is read, sends the transaction. */
static void
run_ovsdb(struct bridge *br, long long now)
{
    json_t *ops;

    if (br->txn_id) {
        return;
    } else if (!ovsdb_replica_is_synced(br->ovs)) {
        if (!ovsdb_replica_is_connected(br->ovs)
            && now - br->started >= BRIDGE_OVSDB_WAIT_MS) {
            snprintf(br->last_error, sizeof br->last_error,
                     "no connection to the Open vSwitch database %s",
                     br->cfg.ovs_db);
            setup_failed(br, now);
        }
        return;
    }
    ops = setup_ops(br);
    if (!ops) {
        setup_failed(br, now);
        return;
    }
    br->txn_id = ovsdb_replica_transact(br->ovs, ops, setup_txn_done, br);
}

/* STEP_OFPORTS: once both ports have OpenFlow port numbers, configures
 * chand0 and renders the flows. */
static void
run_ofports(struct bridge *br, long long now)
{
    int64_t vnic = get_ofport(br, br->cfg.vnic);
    int64_t chand = vnic < 0 ? 0 : get_ofport(br, br->cfg.port);

    if (vnic < 0 || chand < 0) {
        setup_failed(br, now);
    } else if (vnic && chand) {
        if (!configure_port(br) || !render_flows(br, vnic, chand)) {
            setup_failed(br, now);
            return;
        }
        if (!br->ofctrl) {
            br->ofctrl = ofctrl_create(br->target, br->cfg.flows,
                                       OFCTRL_ALL_FLOWS, 1, 0);
        }
        br->step = STEP_OPENFLOW;
    }
}

/* STEP_OPENFLOW: once connected, starts installing the flows. */
static void
run_openflow(struct bridge *br, long long now)
{
    int error;

    if (!ofctrl_is_connected(br->ofctrl)) {
        return;
    }
    br->of_seqno = ofctrl_get_seqno(br->ofctrl);
    br->step = STEP_FLOWS;
    error = start_sync(br);
    if (error) {
        set_sync_error(br, "cannot install the flows", error);
        setup_failed(br, now);
    }
}

/* STEP_FLOWS and STEP_CHECK: the sync's outcome. */
static void
run_sync(struct bridge *br, long long now)
{
    bool setup = br->step == STEP_FLOWS;
    int error;

    if (!ofctrl_sync_result(br->ofctrl, &error)) {
        return;
    }
    if (error) {
        set_sync_error(br, setup ? "cannot install the flows"
                       : "cannot check the flows", error);
        if (setup) {
            setup_failed(br, now);
        } else {
            check_failed(br, br->last_error, now);
        }
    } else if (setup) {
        setup_done(br, now);
    } else {
        end_step(br);
        take_counters(br);
        br->next_check = now + br->cfg.check_ms;
    }
}

/* Moves the setup or check in progress on as far as it can go now. */
static void
run_step(struct bridge *br, long long now)
{
    enum bridge_step step;

    do {
        step = br->step;
        switch (step) {
        case STEP_OVSDB: run_ovsdb(br, now); break;
        case STEP_OFPORTS: run_ofports(br, now); break;
        case STEP_OPENFLOW: run_openflow(br, now); break;
        case STEP_FLOWS:
        case STEP_CHECK: run_sync(br, now); break;
        case STEP_IDLE:
        default: break;
        }
    } while (br->step != step && br->step != STEP_IDLE);

    if (br->step != STEP_IDLE && now >= br->deadline) {
        bool setup = br->step != STEP_CHECK;
        const char *name = step_name(br->step);

        snprintf(br->last_error, sizeof br->last_error,
                 "the %s took longer than %lld ms at step \"%s\" (Open "
                 "vSwitch does not answer?), stopped",
                 setup ? "setup" : "check", br->deadline - br->started,
                 name ? name : "");
        if (setup) {
            setup_failed(br, now);
        } else {
            check_failed(br, br->last_error, now);
        }
    }
}

/* While ready and idle: a lost OpenFlow connection means ovs-vswitchd
 * restarted (or went away), and the flows may be gone with it. */
static void
run_ready(struct bridge *br, long long now)
{
    if (ofctrl_get_seqno(br->ofctrl) != br->of_seqno) {
        check_failed(br, "the OpenFlow connection was lost or made again "
                     "(ovs-vswitchd restarted?)", now);
    } else if (now >= br->next_check) {
        start_check(br, now);
    }
}

void
bridge_run(struct bridge *br, long long now)
{
    br->now = now;
    if (!reconnect_is_enabled(br->retry)) {
        reconnect_enable(br->retry, now);
        ovsdb_replica_connect(br->ovs, br->cfg.ovs_db);
    }
    ovsdb_replica_run(br->ovs);         /* May end the transaction. */
    if (br->ofctrl) {
        ofctrl_run(br->ofctrl, now);
    }
    if (br->step != STEP_IDLE) {
        run_step(br, now);
    } else if (br->ready) {
        run_ready(br, now);
    }
    if (br->step == STEP_IDLE && !br->ready
        && reconnect_run(br->retry, now) == RECONNECT_CONNECT) {
        start_setup(br, now);
        run_step(br, now);
    }
}

long long
bridge_next_wakeup(const struct bridge *br, long long now)
{
    long long next;

    if (br->step != STEP_IDLE) {
        next = br->deadline;
        if (br->step == STEP_OVSDB && !ovsdb_replica_is_synced(br->ovs)
            && br->started + BRIDGE_OVSDB_WAIT_MS < next) {
            next = br->started + BRIDGE_OVSDB_WAIT_MS;
        }
    } else if (br->ready) {
        next = br->next_check;
    } else if (!reconnect_is_enabled(br->retry)) {
        next = now;
    } else {
        next = reconnect_wait(br->retry, now);
    }
    return next < now ? now : next;
}

void
bridge_wait(const struct bridge *br, long long now)
{
    ovsdb_replica_wait(br->ovs);
    if (br->ofctrl) {
        ofctrl_wait(br->ofctrl);
    }
    poll_timer_wait_until(bridge_next_wakeup(br, now));
}

bool
bridge_is_busy(const struct bridge *br)
{
    return br->step != STEP_IDLE;
}

bool
bridge_is_ready(const struct bridge *br)
{
    return br->ready;
}

unsigned int
bridge_get_seqno(const struct bridge *br)
{
    return br->seqno;
}

json_t *
bridge_status_json(const struct bridge *br, long long now)
{
    bool busy = br->step != STEP_IDLE;
    long long next = bridge_next_wakeup(br, now);

    return json_pack("{s:s, s:b, s:s, s:I, s:s, s:I, s:I, s:s, s:I, s:I, "
                     "s:I, s:I, s:s, s:I, s:s?, s:s?, s:I, s:b, s:b, s:I, "
                     "s:I}",
                     "bridge", br->cfg.bridge,
                     "ready", br->ready,
                     "vnic", br->cfg.vnic,
                     "vnic_ofport", (json_int_t) br->vnic_ofport,
                     "port", br->cfg.port,
                     "port_ofport", (json_int_t) br->chand_ofport,
                     "flows", (json_int_t) br->flows.n,
                     "flow_template", br->cfg.flows,
                     "setups", (json_int_t) br->n_setups,
                     "setup_failures", (json_int_t) br->n_setup_failures,
                     "checks", (json_int_t) br->n_checks,
                     "check_failures", (json_int_t) br->n_check_failures,
                     "last_error", br->last_error,
                     "isolation_drops", (json_int_t) flow_counters_get(
                         &br->counters, br->cfg.chan.chan_id,
                         "isolation_drops") + (json_int_t) flow_counters_get(
                         &br->counters, 0, "isolation_drops"),
                     "syncing", (!busy ? NULL
                                 : br->step == STEP_CHECK ? "check"
                                 : "setup"),
                     "step", step_name(br->step),
                     "sync_ms", (json_int_t) (busy ? now - br->started : 0),
                     "ovsdb_connected", ovsdb_replica_is_connected(br->ovs),
                     "openflow_connected",
                     br->ofctrl && ofctrl_is_connected(br->ofctrl),
                     "backoff_ms",
                     (json_int_t) reconnect_get_backoff(br->retry),
                     "next_run_ms", (json_int_t) (busy ? 0 : next - now));
}
