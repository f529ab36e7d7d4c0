/* chand-guest put together: see guest.h. */

#include <config.h>
#include "guest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "chan-mtu.h"
#include "chan-wire.h"
#include "bridge.h"
#include "ctl.h"
#include "datastore.h"
#include "guest-metrics.h"
#include "call.h"
#include "handler.h"
#include "keyring.h"
#include "kvp.h"
#include "metrics.h"
#include "packets.h"
#include "poll-loop.h"
#include "publisher.h"
#include "receiver.h"
#include "transfer.h"
#include "udp.h"
#include "util.h"
#include "watch.h"
#include "xfer.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(guest);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 10);

struct guest;
static void update_mtu(struct guest *, long long now);

struct guest {
    struct chan_config chan;
    char *db_path;
    char *port;                 /* Interface the socket is tied to. */
    struct datastore *ds;
    struct bridge *bridge;      /* NULL with --no-bridge. */
    unsigned int bridge_seqno;
    struct udp *udp;
    struct keyring_file *keys;
    struct receiver *rx;
    struct publisher *pub;
    struct api *api;
    struct ctl_server *ctl;
    struct watch *watch;        /* NULL without --watch-dir. */
    struct kvp *kvp;            /* NULL without --kvp-prefix. */
    struct handler *handler;
    struct call *call;          /* Requests (call.h). */
    struct transfer *transfer;
    uint32_t clone_of;          /* The parent's chan-id if this start found
                                 * a clone (0: it did not). */
    bool exiting;
    long long now;              /* Time of the current read burst. */
    long long started;          /* time_msec() at creation. */
    long long stats_interval;   /* ms; 0: no statistics record. */
    long long next_stats;       /* When to publish it next. */
    uint64_t stats_errors;      /* Statistics records not published. */
    char *vnic;                 /* The VM's NIC (for its MTU). */
    unsigned int mtu_option;    /* --mtu; 0: auto. */
    unsigned int mtu_sent;      /* What the publisher and lane send with. */
    long long next_mtu_check;   /* When the interfaces' MTUs are read. */
};

/* Records in g->ds that it serves g's channel.  A datastore that served
 * another chan-id was copied from another VM: the datastore forgets the
 * parent's channel (see datastore.h, "Clones") and this says so.  Returns
 * 0 or a positive errno (logged). */
static int
claim_datastore(struct guest *g)
{
    uint32_t prev;
    int error = datastore_claim_chan_id(g->ds, g->chan.chan_id, &prev);

    if (error) {
        VLOG_ERR("cannot record the chan-id in the datastore: %s",
                 datastore_last_error());
    } else if (prev && prev != g->chan.chan_id) {
        g->clone_of = prev;
        VLOG_WARN("datastore was chan-id %"PRIu32", now chan-id %"PRIu32": "
                  "a clone; it takes a new guest epoch, publishes every "
                  "record again and runs its handlers on its own (the "
                  "parent's results are withdrawn)", prev, g->chan.chan_id);
    }
    return error;
}

/* Creates the directories leading to 'path' (the file itself excluded),
 * mode 0755.  Returns 0 or a positive errno. */
static int
make_parent_dirs(const char *path)
{
    char *copy = strdup(path);
    int error = 0;

    if (!copy) {
        return ENOMEM;
    }
    for (char *p = copy + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(copy, 0755) && errno != EEXIST) {
                error = errno;
                break;
            }
            *p = '/';
        }
    }
    free(copy);
    return error;
}

/* Sockets and callbacks. */

static int
send_to_host(const uint8_t *frame, size_t len, void *g_)
{
    struct guest *g = g_;

    return udp_send(g->udp, g->chan.host.ip, g->chan.host.port, frame, len);
}

static void
datagram_received(const uint8_t *data, size_t len, uint32_t src_ip,
                  uint16_t src_port, void *g_)
{
    struct guest *g = g_;

    receiver_input(g->rx, data, len, src_ip, src_port, g->now);
}

/* ACK from the host: for the publisher. */
static void
upstream_ack(const struct chan_wire_header *h, const json_t *obj,
             long long now, void *g_)
{
    struct guest *g = g_;

    if (g->pub) {
        publisher_ack(g->pub, h, obj, now);
    }
}

/* The file transfer lane. */

static void
xfer_frame(const struct chan_wire_header *h, const uint8_t *payload,
           long long now, void *g_)
{
    struct guest *g = g_;

    if (g->transfer) {
        transfer_input(g->transfer, h, payload, now);
    }
}

static void
transfer_key(void *g_, const uint8_t **keyp, size_t *lenp)
{
    struct guest *g = g_;
    const struct keyring_key *k = receiver_tx_key(g->rx);

    *keyp = k ? k->key : NULL;
    *lenp = k ? KEYRING_KEY_LEN : 0;
}

static void
transfer_poke(void *g_, const char *key)
{
    struct guest *g = g_;

    if (g->handler) {
        handler_poke(g->handler, key);
    }
}

static int
api_restore(void *g_, const char *digest, const char *path, int64_t *atp,
            char **errorp)
{
    struct guest *g = g_;

    return transfer_request_restore(g->transfer, digest, path, atp, errorp);
}

static const struct transfer_ops transfer_ops = {
    .send = send_to_host,
    .key = transfer_key,
    .poke = transfer_poke,
};

/* Returns the content store's directory: 'dir', or "content" in the
 * datastore's directory.  malloc()ed. */
static char *
content_dir(const char *dir, const char *db)
{
    if (dir) {
        return xstrdup(dir);
    }
    const char *slash = strrchr(db, '/');
    return slash ? xasprintf("%.*s/content", (int) (slash - db), db)
                 : xstrdup("content");
}

static uint32_t
up_epoch(void *g_)
{
    struct guest *g = g_;

    return g->pub ? publisher_up_epoch(g->pub) : 0;
}

/* Gives the publisher the key the receiver sends with. */
static void
update_publisher_key(struct guest *g)
{
    const struct keyring_key *k = receiver_tx_key(g->rx);

    publisher_set_key(g->pub, k ? k->generation : 0, k ? k->key : NULL,
                      k ? KEYRING_KEY_LEN : 0);
}

static void
datastore_changed(void *g_, const struct ds_change *change)
{
    struct guest *g = g_;

    if (g->api) {
        api_notify(g->api, change);
    }
    if (g->handler) {
        handler_record_changed(g->handler, change);
    }
    if (g->kvp) {
        kvp_record_changed(g->kvp, change);
    }
    if (g->call) {
        call_record_changed(g->call, change);
    }
}

static json_t *
api_status(void *g_)
{
    return guest_status_json(g_);
}

/* Ties the socket to chand-guest's port if that interface exists. */
static void
bind_device(struct guest *g)
{
    int error;

    if (!if_nametoindex(g->port)) {
        VLOG_DBG("%s does not exist: channel socket not tied to it",
                 g->port);
        udp_bind_device(g->udp, NULL);
        return;
    }
    error = udp_bind_device(g->udp, g->port);
    if (error) {
        VLOG_WARN_RL(&rl, "cannot tie the channel socket to %s: %s",
                     g->port, strerror(error));
    } else {
        VLOG_INFO("channel socket tied to %s", g->port);
    }
}

/* Returns true if some interface has IPv4 address 'ip' (or if that cannot
 * be told). */
static bool
address_is_configured(uint32_t ip)
{
    struct ifaddrs *ifas, *ifa;
    bool found = false;

    if (getifaddrs(&ifas)) {
        return true;
    }
    for (ifa = ifas; ifa && !found; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *) ifa->ifa_addr;
            found = ntohl(sin->sin_addr.s_addr) == ip;
        }
    }
    freeifaddrs(ifas);
    return found;
}

/* The statistics record. */

/* Returns the bytes the datastore's files take (the database and its
 * WAL). */
static uint64_t
datastore_bytes(const struct guest *g)
{
    uint64_t total = 0;
    struct stat st;
    char wal[4096];

    if (!stat(g->db_path, &st)) {
        total += st.st_size;
    }
    snprintf(wal, sizeof wal, "%s-wal", g->db_path);
    if (!stat(wal, &st)) {
        total += st.st_size;
    }
    return total;
}

/* Returns [1, 5, 15 minute load averages] from /proc/loadavg, or null. */
static json_t *
load_average(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double l1, l5, l15;
    int n;

    if (!f) {
        return json_null();
    }
    n = fscanf(f, "%lf %lf %lf", &l1, &l5, &l15);
    fclose(f);
    return n == 3 ? json_pack("[f, f, f]", l1, l5, l15) : json_null();
}

/* Returns the system's uptime in seconds from /proc/uptime, or null. */
static json_t *
system_uptime(void)
{
    FILE *f = fopen("/proc/uptime", "r");
    double up;
    int n;

    if (!f) {
        return json_null();
    }
    n = fscanf(f, "%lf", &up);
    fclose(f);
    return n == 1 ? json_integer((json_int_t) up) : json_null();
}

/* Returns the statistics record's value. */
static json_t *
stats_json(const struct guest *g, long long now)
{
    json_t *rx = receiver_status_json(g->rx, now);
    json_t *pub = publisher_status_json(g->pub, now);
    struct ds_pub_counts pc = { 0, 0, 0 };
    uint64_t records = 0;

    if (datastore_count(g->ds, &records)) {
        records = 0;
    }
    datastore_list_published(g->ds, NULL, false, NULL, NULL, &pc);
    json_t *value = json_pack(
        "{s:s, s:O, s:O, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
        "version", PACKAGE_VERSION,
        "receiver", json_object_get(rx, "counters"),
        "publisher", json_object_get(pub, "counters"),
        "datastore_bytes", (json_int_t) datastore_bytes(g),
        "records", (json_int_t) records,
        "published", (json_int_t) pc.records,
        "pending", (json_int_t) pc.pending,
        "uptime", (json_int_t) ((now - g->started) / 1000),
        "system_uptime", system_uptime(),
        "loadavg", load_average());
    if (g->kvp) {
        json_object_set_new(value, "kvp", kvp_counters_json(g->kvp));
    }
    json_decref(rx);
    json_decref(pub);
    return value;
}

/* Publishes the statistics record if it is due. */
static void
maybe_publish_stats(struct guest *g)
{
    long long now = time_msec();

    if (!g->stats_interval || now < g->next_stats) {
        return;
    }
    g->next_stats = now + g->stats_interval;

    json_t *value = stats_json(g, now);
    char *text = value ? json_dumps(value, JSON_COMPACT) : NULL;
    int error = text ? datastore_publish(g->ds, GUEST_STATS_KEY, text, NULL)
                     : ENOMEM;
    if (error) {
        g->stats_errors++;
        VLOG_WARN_RL(&rl, "cannot publish %s: %s", GUEST_STATS_KEY,
                     error == ENOMEM ? "out of memory"
                     : datastore_last_error());
    }
    free(text);
    json_decref(value);
}

/* Runs the first bridge setup to its end (or its deadline), so that a
 * daemon that reports itself ready has its bridge set up if Open vSwitch
 * is up.  Only at start: afterwards the setups and checks run while the
 * loop goes on.  A fatal signal cuts the wait short. */
static void
bridge_first_setup(struct bridge *br)
{
    bridge_run(br, time_msec());
    while (bridge_is_busy(br) && !fatal_signal_received()) {
        bridge_wait(br, time_msec());
        poll_block();
        bridge_run(br, time_msec());
    }
}

/* Control commands. */

static void
ctl_status(struct ctl_conn *conn, int argc, const char *argv[], void *g_)
{
    json_t *status = guest_status_json(g_);
    char *text = json_dumps(status, JSON_INDENT(2) | JSON_SORT_KEYS);

    (void) argc;
    (void) argv;
    if (text) {
        ctl_command_reply(conn, text);
    } else {
        ctl_command_reply_error(conn, "out of memory");
    }
    free(text);
    json_decref(status);
}

/* guest/metrics: every counter and gauge of guest/status and ctl/stats,
 * as Prometheus text. */
static void
ctl_metrics(struct ctl_conn *conn, int argc, const char *argv[], void *g_)
{
    struct guest *g = g_;
    struct metrics *m = metrics_create();
    json_t *status = guest_status_json(g);
    guest_metrics_add_status(m, status, g->ctl);
    json_decref(status);
    char *text = metrics_render(m);
    metrics_destroy(m);

    (void) argc;
    (void) argv;
    ctl_command_reply(conn, text);
    free(text);
}

static void
ctl_reload_keys(struct ctl_conn *conn, int argc, const char *argv[],
                void *g_)
{
    struct guest *g = g_;
    char error[KEYRING_ERROR_LEN];
    char gens[128], reply[KEYRING_ERROR_LEN + 160];
    bool changed;

    (void) argc;
    (void) argv;
    if (keyring_file_reload(g->keys, &changed, error, sizeof error)) {
        keyring_format(keyring_file_get(g->keys), gens, sizeof gens);
        snprintf(reply, sizeof reply, "%s; keeping key generations %s",
                 error, gens);
        ctl_command_reply_error(conn, reply);
        return;
    }
    if (changed) {
        receiver_set_keys(g->rx, keyring_file_get(g->keys));
    }
    keyring_format(keyring_file_get(g->keys), gens, sizeof gens);
    snprintf(reply, sizeof reply, "key generations %s%s", gens,
             changed ? "" : " (unchanged)");
    ctl_command_reply(conn, reply);
}

static void
ctl_exit(struct ctl_conn *conn, int argc, const char *argv[], void *g_)
{
    struct guest *g = g_;

    (void) argc;
    (void) argv;
    g->exiting = true;
    ctl_command_reply(conn, NULL);
}

/* Life cycle. */

struct guest *
guest_create(const struct guest_options *opts)
{
    char ip[IP_STRLEN], mac[ETH_ADDR_STRLEN];
    struct guest *g;
    int error;

    g = calloc(1, sizeof *g);
    if (!g) {
        VLOG_ERR("out of memory");
        return NULL;
    }
    g->chan = opts->chan;
    g->db_path = strdup(opts->db);
    g->port = strdup(opts->port);
    g->vnic = strdup(opts->vnic ? opts->vnic : "");
    g->mtu_option = opts->mtu;
    if (!g->db_path || !g->port || !g->vnic) {
        goto enomem;
    }
    g->now = time_msec();

    ip_to_string(g->chan.guest.ip, ip);
    eth_addr_to_string(&g->chan.guest.mac, mac);
    VLOG_INFO("chand-guest %s starting: chan-id %u, vid %u, guest endpoint "
              "%s:%u (%s)", PACKAGE_VERSION, g->chan.chan_id, g->chan.vid,
              ip, g->chan.guest.port, mac);

    /* The channel keys: an invalid key file stops us before anything
     * is touched. */
    char key_error[KEYRING_ERROR_LEN];
    error = keyring_file_open(opts->key_file ? opts->key_file
                              : KEYRING_DEFAULT_FILE, time_msec(), &g->keys,
                              key_error, sizeof key_error);
    if (error) {
        VLOG_ERR("cannot load the channel keys: %s", key_error);
        goto error;
    }

    /* The datastore. */
    error = make_parent_dirs(opts->db);
    if (error) {
        VLOG_ERR("%s: cannot create its directory: %s", opts->db,
                 strerror(error));
        goto error;
    }
    error = datastore_open(opts->db, &g->ds);
    if (error) {
        VLOG_ERR("cannot open the datastore: %s", datastore_last_error());
        goto error;
    }
    error = claim_datastore(g);
    if (error) {
        goto error;
    }
    datastore_set_change_cb(g->ds, datastore_changed, g);

    /* The guest bridge: first attempt now. */
    if (!opts->no_bridge) {
        struct bridge_config bc = {
            .ovs_db = opts->ovs_db,
            .ovs_rundir = opts->ovs_rundir,
            .bridge = opts->bridge,
            .vnic = opts->vnic,
            .port = opts->port,
            .flows = opts->flows,
            .chan = opts->chan,
        };
        g->bridge = bridge_create(&bc);
        if (!g->bridge) {
            goto error;
        }
        bridge_first_setup(g->bridge);
    }

    /* The channel socket and the receiver. */
    error = udp_open(g->chan.guest.ip, g->chan.guest.port, &g->udp);
    if (error) {
        VLOG_ERR("cannot bind the channel socket to %s:%u: %s", ip,
                 g->chan.guest.port, strerror(error));
        goto error;
    }
    bind_device(g);
    if (g->bridge) {
        g->bridge_seqno = bridge_get_seqno(g->bridge);
    } else if (!address_is_configured(g->chan.guest.ip)) {
        VLOG_WARN("no interface has address %s yet: nothing will arrive "
                  "until one does (--no-bridge: configure it yourself)",
                  ip);
    }
    struct receiver_config rc = {
        .vid = g->chan.vid,
        .host_ip = g->chan.host.ip,
        .host_port = g->chan.host.port,
        .keys = keyring_file_get(g->keys),
        .upstream_ack = upstream_ack,
        .up_epoch = up_epoch,
        .upstream_aux = g,
        .xfer = xfer_frame,
        .xfer_aux = g,
    };
    g->rx = receiver_create(&rc, g->ds, send_to_host, g, time_msec());
    if (!g->rx) {
        goto enomem;
    }

    /* The publisher: the upstream stream, with the receiver's key. */
    struct publisher_config pc = {
        .vid = g->chan.vid,
    };
    g->pub = publisher_create(&pc, g->ds, send_to_host, g, time_msec());
    if (!g->pub) {
        goto enomem;
    }
    update_publisher_key(g);
    g->stats_interval = (long long) opts->stats_interval * 1000;
    g->started = g->next_stats = time_msec();

    /* Local sockets. */
    g->api = api_create(opts->api, g->ds, api_status, g);
    if (!g->api) {
        goto error;
    }
    g->ctl = ctl_server_create(opts->ctl);
    if (!g->ctl) {
        goto error;
    }
    if (opts->watch_dir) {
        g->watch = watch_create(opts->watch_dir, g->ds);
        if (!g->watch) {
            goto error;
        }
    }
    if (opts->kvp_prefix) {
        struct kvp_config kc = {
            .dir = opts->kvp_dir,
            .prefix = opts->kvp_prefix,
        };
        g->kvp = kvp_create(&kc, g->ds);
        if (!g->kvp) {
            goto error;
        }
    }
    char *cdir = content_dir(opts->content_dir, opts->db);
    struct transfer_config tc = {
        .content_dir = cdir,
        .max_size = opts->max_transfer,
        .mtu = CHAN_WIRE_DEFAULT_MTU,
        .vid = g->chan.vid,
        .install_dir = opts->install_dir,
    };
    g->transfer = transfer_create(&tc, &transfer_ops, g, g->ds);
    free(cdir);
    if (!g->transfer) {
        goto error;
    }
    api_set_restore(g->api, api_restore, g);
    update_mtu(g, time_msec());
    struct handler_config hc = {
        .dir = opts->handlers_dir ? opts->handlers_dir : HANDLER_DEFAULT_DIR,
        .user = opts->handler_user,
        .timeout = opts->handler_timeout,
        .max_running = opts->handlers_max,
        .quarantine_dir = opts->quarantine_dir,
        .prepare = transfer_prepare,
        .prepare_aux = g->transfer,
    };
    g->handler = handler_create(&hc, g->ds);
    if (!g->handler) {
        goto error;
    }
    cdir = content_dir(opts->content_dir, opts->db);
    char *export_dir = xasprintf("%s/export", cdir);
    free(cdir);
    struct call_config cc = {
        .exec_allow = opts->exec_allow,
        .export_dir = export_dir,
        .max_export = (opts->max_transfer ? opts->max_transfer
                                          : XFER_DEFAULT_MAX_SIZE),
        .export_add = transfer_export_add,
        .export_remove = transfer_export_remove,
        .export_aux = g->transfer,
    };
    g->call = call_create(&cc, g->ds);
    free(export_dir);
    ctl_command_register("guest/status", "", 0, 0, ctl_status, g);
    ctl_command_register("guest/metrics", "", 0, 0, ctl_metrics, g);
    ctl_command_register("guest/reload-keys", "", 0, 0, ctl_reload_keys, g);
    ctl_command_register("exit", "", 0, 0, ctl_exit, g);
    VLOG_INFO("local API on %s, control socket on %s", api_get_name(g->api),
              ctl_server_get_name(g->ctl));

    return g;

enomem:
    VLOG_ERR("out of memory");
error:
    guest_destroy(g);
    return NULL;
}

void
guest_destroy(struct guest *g)
{
    if (g) {
        ctl_command_unregister("guest/status");
        ctl_command_unregister("guest/metrics");
        ctl_command_unregister("guest/reload-keys");
        ctl_command_unregister("exit");
        ctl_server_destroy(g->ctl);
        if (g->ds) {
            datastore_set_change_cb(g->ds, NULL, NULL);
        }
        watch_destroy(g->watch);
        kvp_destroy(g->kvp);
        handler_destroy(g->handler);
        call_destroy(g->call);
        transfer_destroy(g->transfer);
        g->transfer = NULL;
        api_destroy(g->api);
        publisher_destroy(g->pub);
        g->pub = NULL;
        receiver_destroy(g->rx);
        keyring_file_destroy(g->keys);
        udp_close(g->udp);
        bridge_destroy(g->bridge);
        datastore_close(g->ds);
        free(g->db_path);
        free(g->port);
        free(g->vnic);
        free(g);
    }
}

#define MTU_CHECK_MS 1000

/* Our MTU (chan-mtu.h): --mtu, capped at (or with auto, equal to) the
 * smaller of the vNIC's and chand0's MTUs, and at the largest datagram the
 * socket receives whole.  Upstream frames and transfer chunks take the
 * smaller of it and the host's. */
static void
update_mtu(struct guest *g, long long now)
{
    if (now >= g->next_mtu_check) {
        unsigned int vnic = g->bridge ? udp_if_mtu(g->udp, g->vnic) : 0;
        unsigned int port = udp_if_mtu(g->udp, g->port);
        unsigned int detected = (vnic && port ? (vnic < port ? vnic : port)
                                 : vnic ? vnic : port);
        receiver_set_mtu(g->rx, chan_mtu_local(g->mtu_option, detected,
                                               UDP_MAX_DATAGRAM
                                               + CHAN_WIRE_IP_UDP_LEN));
        g->next_mtu_check = now + MTU_CHECK_MS;
    }
    unsigned int mtu = receiver_mtu(g->rx);
    if (mtu != g->mtu_sent) {
        g->mtu_sent = mtu;
        publisher_set_mtu(g->pub, mtu, now);
        transfer_set_mtu(g->transfer, mtu);
    }
}

void
guest_run(struct guest *g)
{
    size_t n = 0;
    int error;

    if (g->bridge) {
        bridge_run(g->bridge, time_msec());
        if (bridge_get_seqno(g->bridge) != g->bridge_seqno) {
            g->bridge_seqno = bridge_get_seqno(g->bridge);
            bind_device(g);
        }
    }

    if (keyring_file_run(g->keys, time_msec())) {
        receiver_set_keys(g->rx, keyring_file_get(g->keys));
    }

    /* One read burst, applied in one transaction. */
    g->now = time_msec();
    error = udp_receive(g->udp, datagram_received, g, &n);
    if (error) {
        VLOG_WARN_RL(&rl, "receiving on the channel socket: %s",
                     strerror(error));
    }
    receiver_flush(g->rx, g->now);
    if (n == UDP_BATCH) {
        poll_immediate_wake();  /* Probably more queued. */
    }
    receiver_run(g->rx, time_msec());

    api_run(g->api);
    if (g->watch) {
        watch_run(g->watch);
    }
    if (g->kvp) {
        kvp_run(g->kvp, time_msec());
    }
    update_mtu(g, time_msec());
    transfer_run(g->transfer, time_msec());
    handler_run(g->handler);
    call_run(g->call);
    maybe_publish_stats(g);
    update_publisher_key(g);
    publisher_run(g->pub, time_msec());
    ctl_server_run(g->ctl);
}

void
guest_wait(struct guest *g)
{
    long long now = time_msec();
    long long next = receiver_next_wakeup(g->rx, now);
    long long k = keyring_file_next_check(g->keys);
    long long p = publisher_next_wakeup(g->pub, now);

    next = k < next ? k : next;
    next = p < next ? p : next;
    if (g->stats_interval && g->next_stats < next) {
        next = g->next_stats;
    }
    if (g->bridge) {
        bridge_wait(g->bridge, now);
    }
    poll_timer_wait_until(next);
    udp_wait(g->udp);
    api_wait(g->api);
    if (g->watch) {
        watch_wait(g->watch);
    }
    if (g->kvp) {
        kvp_wait(g->kvp, now);
    }
    handler_wait(g->handler);
    call_wait(g->call);
    transfer_wait(g->transfer, now);
    ctl_server_wait(g->ctl);
}

bool
guest_exiting(const struct guest *g)
{
    return g->exiting;
}

/* The datastore's identity, for guest/status: a new JSON object owned by
 * the caller. */
static json_t *
identity_status_json(const struct guest *g)
{
    struct ds_state st;

    datastore_get_state(g->ds, &st);
    return json_pack("{s:I, s:I, s:I, s:b}",
                     "chan_id", (json_int_t) st.chan_id,
                     "clones", (json_int_t) st.clones,
                     "clone_of", (json_int_t) st.clone_of,
                     "clone_detected", g->clone_of != 0);
}

json_t *
guest_status_json(const struct guest *g)
{
    long long now = time_msec();
    char ip[IP_STRLEN], mac[ETH_ADDR_STRLEN], host_ip[IP_STRLEN];
    json_t *status = receiver_status_json(g->rx, now);
    struct udp_stats us;
    uint64_t records = 0;

    ip_to_string(g->chan.guest.ip, ip);
    ip_to_string(g->chan.host.ip, host_ip);
    eth_addr_to_string(&g->chan.guest.mac, mac);
    udp_get_stats(g->udp, &us);
    if (datastore_count(g->ds, &records)) {
        records = 0;
    }
    json_t *more = json_pack(
        "{s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:s, s:I,"
        " s:o, s:o, s:o, s:o}",
        "version", PACKAGE_VERSION,
        "chan_id", (json_int_t) g->chan.chan_id,
        "vid", (json_int_t) g->chan.vid,
        "guest_ip", ip,
        "guest_mac", mac,
        "host_ip", host_ip,
        "udp_port", (json_int_t) g->chan.guest.port,
        "datastore", g->db_path,
        "records", (json_int_t) records,
        "bridge", g->bridge ? bridge_status_json(g->bridge, now)
                            : json_null(),
        "api", api_stats_json(g->api),
        "socket", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                            "rx_datagrams", (json_int_t) us.rx_datagrams,
                            "rx_bursts", (json_int_t) us.rx_bursts,
                            "rx_truncated", (json_int_t) us.rx_truncated,
                            "rx_errors", (json_int_t) us.rx_errors,
                            "tx_datagrams", (json_int_t) us.tx_datagrams,
                            "tx_errors", (json_int_t) us.tx_errors),
        "key_file", keyring_file_status_json(g->keys));
    json_object_update(status, more);
    json_decref(more);
    json_object_set_new(status, "publisher",
                        publisher_status_json(g->pub, now));
    json_object_set_new(status, "watch", (g->watch
                                          ? watch_status_json(g->watch)
                                          : json_null()));
    json_object_set_new(status, "handlers",
                        handler_status_json(g->handler));
    json_object_set_new(status, "kvp", (g->kvp ? kvp_status_json(g->kvp)
                                        : json_null()));
    json_object_set_new(status, "calls", call_status_json(g->call));
    json_object_set_new(status, "identity", identity_status_json(g));
    json_object_set_new(status, "transfer",
                        transfer_status_json(g->transfer, now));
    json_object_set_new(status, "stats_record", json_pack(
                            "{s:s, s:I, s:I}", "key", GUEST_STATS_KEY,
                            "interval", (json_int_t) g->stats_interval / 1000,
                            "errors", (json_int_t) g->stats_errors));
    return status;
}
