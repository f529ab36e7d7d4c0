/* Copyright (c) 2026 The chand authors.  See host.h. */

#include <config.h>
#include "host.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan-endpoint.h"
#include "chandb.h"
#include "channel.h"
#include "ctl.h"
#include "flow-template.h"
#include "flowmgr.h"
#include "inject.h"
#include "ofconn.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "packets.h"
#include "poll-loop.h"
#include "provision.h"
#include "transfer.h"
#include "upstream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(host);

#define DB_WRITE_MS 200         /* Channel rows written at most this often. */

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

struct host {
    struct host_options opts;
    char *target;               /* unix:<rundir>/<bridge>.mgmt */
    struct ovsdb_replica *ovs;
    struct chandb *db;
    struct ofconn *of;
    struct flowmgr *fm;
    struct ctl_server *ctl;
    struct transfer *transfer;

    struct channel **channels;
    size_t n_channels;
    json_t *down;               /* vm -> true: deprovisioned, written down. */

    uint64_t ovs_seqno;
    uint64_t db_seqno;
    uint64_t keys_seqno;
    uint64_t limits_seqno;
    unsigned int of_seqno;
    bool reprovision;           /* Provisioning must be recomputed. */
    struct inject *inj;         /* How frames meet the bridge. */
    int64_t inject_ofport;      /* What the flows are rendered with. */
    bool flows_ok;
    bool flows_resync;          /* OpenFlow reconnected: sync in full. */
    bool provisioned;           /* The channels were computed once: until
                                 * then the wanted flows are not known. */
    long long next_flow_check;
    long long next_db_write;
    json_t *status_wanted;      /* iface uuid -> status string or null. */
    json_t *status_pending;     /* iface uuid -> status being written. */

    json_t *counters;           /* Host-level drops. */
    int vlan_limit;             /* Open_vSwitch other_config:vlan-limit,
                                 * -1 until known. */
    char *chassis;              /* --chassis, system-id or host name; NULL
                                 * until known. */
    bool exiting;
};

static void
count(struct host *h, const char *name)
{
    json_t *n = json_object_get(h->counters, name);
    json_object_set_new(h->counters, name,
                        json_integer(n ? json_integer_value(n) + 1 : 1));
}

static struct channel *
find_by_vm(const struct host *h, const char *vm)
{
    for (size_t i = 0; i < h->n_channels; i++) {
        if (!strcmp(channel_vm(h->channels[i]), vm)) {
            return h->channels[i];
        }
    }
    return NULL;
}

static struct channel *
find_by_chan_id(const struct host *h, uint32_t chan_id)
{
    for (size_t i = 0; i < h->n_channels; i++) {
        if (channel_config(h->channels[i])->chan_id == chan_id) {
            return h->channels[i];
        }
    }
    return NULL;
}

/* Packet path. */

static int
transmit(uint32_t chan_id, const uint8_t *frame, size_t len, void *h_)
{
    struct host *h = h_;
    return inject_send(h->inj, h->of, chan_id, frame, len);
}

/* Checks a frame that the bridge handed to chand-host for channel 'ch' and
 * passes its payload to the channel. */
static void
deliver(struct channel *ch, const uint8_t *frame, size_t len)
{
    struct pkt_udp pkt;
    enum pkt_error error = pkt_udp_parse(frame, len, 0, &pkt);
    if (error) {
        channel_count_drop(ch, pkt_error_name(error));
        return;
    }
    const struct chan_config *cfg = channel_config(ch);
    if (pkt.vlan
        || !eth_addr_equals(&pkt.eth_src, &cfg->guest.mac)
        || !eth_addr_equals(&pkt.eth_dst, &cfg->host.mac)
        || pkt.ip_src != cfg->guest.ip || pkt.ip_dst != cfg->host.ip
        || pkt.udp_src != cfg->guest.port
        || pkt.udp_dst != cfg->host.port) {
        channel_count_drop(ch, "addresses");
        return;
    }
    channel_receive(ch, pkt.payload, pkt.payload_len, time_msec());
}

/* A frame from the chand port.  Only the flows' guest-to-host rule outputs
 * to the port, after matching the guest's vNIC and setting the mark, so
 * the mark is the channel. */
static void
port_recv(uint32_t mark, const uint8_t *frame, size_t len, void *h_)
{
    struct host *h = h_;
    struct channel *ch = find_by_chan_id(h, mark);
    if (!ch) {
        count(h, "rx_drop_unknown_mark");
        VLOG_WARN_RL(&rl, "frame from the chand port with unknown pkt_mark "
                     "%"PRIu32, mark);
        return;
    }
    deliver(ch, frame, len);
}

static void
packet_in(uint64_t cookie, uint32_t in_port, bool has_mark, uint32_t mark,
          const uint8_t *frame, size_t len, void *h_)
{
    struct host *h = h_;
    if (!flow_template_is_chand_cookie(cookie)) {
        count(h, "rx_drop_foreign_flow");
        return;
    }
    struct channel *ch = has_mark ? find_by_chan_id(h, mark) : NULL;
    if (!ch) {
        count(h, "rx_drop_unknown_mark");
        VLOG_WARN_RL(&rl, "PACKET_IN from port %u with unknown pkt_mark %u",
                     in_port, mark);
        return;
    }
    if (in_port != channel_ofport(ch)) {
        channel_count_drop(ch, "in_port");
        return;
    }
    deliver(ch, frame, len);
}

/* Provisioning. */

static bool
is_active(const char *iface_uuid, void *h_)
{
    /* A channel is identified by its interface name in 'channels'; the
     * replica maps uuids to names, so compare through the row. */
    struct host *h = h_;
    const struct ovsdb_replica_row *row = ovsdb_replica_find(
        ovsdb_replica_get_table(h->ovs, "Interface"), iface_uuid);
    const char *name = NULL;
    if (row) {
        ovsdb_datum_get_string(ovsdb_replica_row_get(row, "name"), &name);
    }
    for (size_t i = 0; name && i < h->n_channels; i++) {
        if (!strcmp(channel_iface(h->channels[i]), name)) {
            return true;
        }
    }
    return false;
}

static void
set_guest_limits(struct host *h, struct channel *ch)
{
    struct upstream_limits l;
    chandb_guest_limits(h->db, channel_vm(ch), &l);
    upstream_set_limits(channel_upstream(ch), &l);
}

/* Upstream: the records the guests publish, written to the Chan DB one
 * batch per channel at a time (upstream.h). */

struct upstream_write {
    struct host *host;
    char *vm;
    struct channel *ch;         /* Compared, never dereferenced unless it is
                                 * still one of 'host''s channels. */
};

static void
upstream_write_done(bool ok, void *w_)
{
    struct upstream_write *w = w_;
    struct host *h = w->host;
    for (size_t i = 0; i < h->n_channels; i++) {
        if (h->channels[i] == w->ch
            && !strcmp(channel_vm(w->ch), w->vm)) {
            upstream_batch_done(channel_upstream(w->ch), ok, time_msec());
            break;
        }
    }
    free(w->vm);
    free(w);
}

static void
write_upstream(struct host *h, struct channel *ch, long long now)
{
    struct upstream *up = channel_upstream(ch);
    const struct upstream_batch *b = upstream_next_batch(up, now);
    if (!b) {
        return;
    }
    size_t n_rows = json_object_size(upstream_rows(up));
    for (size_t i = 0; i < b->n; i++) {
        if (!b->changes[i].value) {
            n_rows--;
        } else if (b->changes[i].insert) {
            n_rows++;
        }
    }
    struct upstream_write *w = xzalloc(sizeof *w);
    w->host = h;
    w->vm = xstrdup(channel_vm(ch));
    w->ch = ch;
    chandb_write_guest_batch(h->db, channel_vm(ch), b, n_rows,
                             upstream_write_done, w);
}

static void
remove_channel(struct host *h, size_t i, bool deprovisioned, long long now)
{
    struct channel *ch = h->channels[i];
    struct chandb_channel_state st;

    channel_set_flows_installed(ch, false);
    channel_get_db_state(ch, now, &st);
    st.chassis = h->chassis;
    st.state = "down";
    st.reason = "deprovisioned";
    chandb_update_channel(h->db, &st);
    json_object_set_new(h->down, channel_vm(ch), json_true());
    if (deprovisioned) {
        /* The VM's published records go with its channel. */
        chandb_delete_guest_records(h->db, channel_vm(ch));
    }
    VLOG_INFO("%s: channel removed%s", channel_vm(ch),
              deprovisioned ? ", with its published records" : "");
    transfer_detach(h->transfer, ch);
    channel_destroy(ch);
    h->channels[i] = h->channels[--h->n_channels];
}

static void
want_status(struct host *h, const char *uuid, const char *current,
            const char *status)
{
    if ((!current && !status) || (current && status
                                  && !strcmp(current, status))) {
        json_object_del(h->status_wanted, uuid);
        return;
    }
    json_object_set_new(h->status_wanted, uuid,
                        status ? json_string(status) : json_null());
}

static void
reprovision(struct host *h, long long now)
{
    struct prov_set set;
    provision_compute(h->ovs, h->opts.bridge, is_active, h, &set);

    /* Drop channels that are gone or changed. */
    for (size_t i = 0; i < h->n_channels; ) {
        struct channel *ch = h->channels[i];
        bool keep = false, provisioned = false;
        for (size_t j = 0; j < set.n; j++) {
            const struct prov_channel *pc = &set.channels[j];
            if (pc->vm && !strcmp(pc->vm, channel_vm(ch))) {
                provisioned |= !pc->error;
                if (!pc->error && pc->ofport > 0
                    && channel_matches(ch, &pc->cfg, pc->iface,
                                       pc->ofport)) {
                    keep = true;
                    break;
                }
            }
        }
        if (keep) {
            i++;
        } else {
            remove_channel(h, i, !provisioned, now);
        }
    }

    /* Add new ones, and rebuild the wanted flows. */
    h->inject_ofport = inject_ofport(h->inj);
    flowmgr_set_inject_ofport(h->fm, h->inject_ofport);
    flowmgr_clear(h->fm);
    json_object_clear(h->status_wanted);
    for (size_t j = 0; j < set.n; j++) {
        struct prov_channel *pc = &set.channels[j];
        const char *status = NULL;
        char *error_status = NULL;

        if (pc->vm && !pc->error && pc->ofport > 0) {
            char *error = flowmgr_add_channel(h->fm, &pc->cfg, pc->ofport);
            if (error) {
                pc->error = error;
            } else {
                if (!find_by_vm(h, pc->vm)) {
                    struct chandb_prior prior;
                    bool has_prior = chandb_get_prior(h->db, pc->vm, &prior);
                    struct chandb_upstream up;
                    chandb_get_upstream(h->db, pc->vm, &up);
                    struct channel *ch = channel_create(
                        pc->vm, &pc->cfg, pc->iface, pc->ofport,
                        has_prior ? &prior : NULL, &up, &h->opts.limits,
                        transmit, h, now);
                    if (has_prior) {
                        json_decref(prior.applied);
                    }
                    json_decref(up.rows);
                    set_guest_limits(h, ch);
                    transfer_attach(h->transfer, ch);
                    h->channels = xrealloc(h->channels, (h->n_channels + 1)
                                           * sizeof *h->channels);
                    h->channels[h->n_channels++] = ch;
                    json_object_del(h->down, pc->vm);
                    json_t *keys = chandb_keys(h->db, pc->vm);
                    channel_set_keys(ch, keys);
                    json_decref(keys);
                    channel_set_desired(ch, chandb_desired(h->db, pc->vm),
                                        now);
                }
                status = "ready";
            }
        } else if (pc->vm && !pc->error) {
            status = "pending: no OpenFlow port yet";
        }
        if (pc->error) {
            error_status = xasprintf("error: %s", pc->error);
            status = error_status;
            VLOG_WARN_RL(&rl, "interface %s: %s", pc->iface, pc->error);
        }
        want_status(h, pc->iface_uuid, pc->status, status);
        free(error_status);
    }
    provision_set_destroy(&set);
}

static void
status_done(const json_t *result, const char *error, void *aux)
{
    char *uuid = aux;
    if (error) {
        VLOG_WARN_RL(&rl, "writing chand-status of %s failed: %s", uuid,
                     error);
    }
    free(uuid);
}

/* Writes the chand-status values that differ, once flows are in place. */
static void
write_statuses(struct host *h)
{
    if (!h->flows_ok || !ovsdb_replica_is_synced(h->ovs)) {
        return;
    }
    const char *uuid;
    json_t *status;
    json_object_foreach (h->status_wanted, uuid, status) {
        json_t *pending = json_object_get(h->status_pending, uuid);
        if (pending && json_equal(pending, status)) {
            continue;
        }
        json_object_set(h->status_pending, uuid, status);
        json_t *ops = json_pack("[o]", provision_status_op(
                                    uuid, json_string_value(status)));
        ovsdb_replica_transact(h->ovs, ops, status_done, strdup(uuid));
    }
}

/* Flows. */

static void
set_channels_installed(struct host *h)
{
    for (size_t i = 0; i < h->n_channels; i++) {
        struct channel *ch = h->channels[i];
        channel_set_flows_installed(
            ch, h->flows_ok && ofconn_is_ready(h->of)
                && flowmgr_is_installed(h->fm, channel_config(ch)->chan_id));
    }
}

/* Hands the counts the last sync read to the channels and the host:
 * meter drops, and the template's counted flows (flows/host.flows). */
static void
take_flow_counters(struct host *h)
{
    static const char *const names[] = { "isolation_drops", "probe_drops" };

    for (size_t i = 0; i < h->n_channels; i++) {
        struct channel *ch = h->channels[i];
        uint32_t id = channel_config(ch)->chan_id;

        channel_set_counter(ch, "rx_drop_meter",
                            flowmgr_meter_drops(h->fm, id));
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
            channel_set_counter(ch, names[j],
                                flowmgr_counter(h->fm, id, names[j]));
        }
    }
    json_object_set_new(h->counters, "isolation_drops", json_integer(
                            flowmgr_counter(h->fm, 0, "isolation_drops")));
}

/* Open vSwitch matches IPv4 fields behind at most other_config:vlan-limit
 * VLAN tags (default 1, 0 meaning as many as it can, 2): below 2, the
 * isolation rules see a frame with two tags by its MAC addresses only.
 * Says so once per change. */
/* Works out this chand-host's chassis name: --chassis, else the local
 * Open_vSwitch's external_ids:system-id (as OVN's ovn-controller does),
 * else the host name. */
static void
update_chassis(struct host *h)
{
    const struct ovsdb_replica_row *row = ovsdb_replica_first(
        ovsdb_replica_get_table(h->ovs, "Open_vSwitch"));
    char *name = NULL;
    const char *source = "--chassis";

    if (h->opts.chassis) {
        name = xstrdup(h->opts.chassis);
    } else {
        json_t *ids = NULL;
        if (row && !ovsdb_datum_get_string_map(
                ovsdb_replica_row_get(row, "external_ids"), &ids)) {
            const char *id = json_string_value(json_object_get(ids,
                                                               "system-id"));
            name = id && *id ? xstrdup(id) : NULL;
        }
        json_decref(ids);
        source = "external_ids:system-id";
    }
    if (!name) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        name = xstrdup(*host ? host : "unknown");
        source = "the host name (no external_ids:system-id)";
    }
    if (!h->chassis || strcmp(h->chassis, name)) {
        VLOG_INFO("chassis %s (from %s)", name, source);
        free(h->chassis);
        h->chassis = name;
    } else {
        free(name);
    }
}

static void
check_vlan_limit(struct host *h)
{
    const struct ovsdb_replica_row *row = ovsdb_replica_first(
        ovsdb_replica_get_table(h->ovs, "Open_vSwitch"));
    json_t *map = NULL;
    int limit = 1;

    if (!row) {
        return;
    }
    if (!ovsdb_datum_get_string_map(ovsdb_replica_row_get(row,
                                                          "other_config"),
                                    &map)) {
        const char *s = json_string_value(json_object_get(map,
                                                          "vlan-limit"));
        if (s) {
            limit = atoi(s);
        }
    }
    json_decref(map);
    if (limit != h->vlan_limit) {
        h->vlan_limit = limit;
        if (limit == 1) {
            VLOG_WARN("Open_vSwitch other_config:vlan-limit is 1 (the "
                      "default): frames with two VLAN tags are kept out of "
                      "the channel space by their MAC addresses only; set "
                      "it to 2 or 0 to match their IPv4 fields too");
        } else {
            VLOG_INFO("Open_vSwitch other_config:vlan-limit is %d", limit);
        }
    }
}

/* Keeps the bridge's chand flows right: at once when the wanted set
 * changes, after every OpenFlow reconnection (ovs-vswitchd may have
 * restarted with no flows), and every --flow-check interval in case someone
 * deleted them; failures are retried after a second.  Syncs run in the background
 * (see flowmgr.h); one that was running across a reconnection does not
 * count. */
static void
sync_flows(struct host *h, long long now)
{
    int error;
    if (flowmgr_run(h->fm, now, &error)) {
        take_flow_counters(h);
        h->flows_ok = !error && !h->flows_resync;
        h->next_flow_check = (error ? now + 1000
                              : h->opts.flow_check_ms
                              ? now + h->opts.flow_check_ms : LLONG_MAX);
    }
    if (!flowmgr_is_connected(h->fm)) {
        h->flows_ok = false;
        set_channels_installed(h);
        return;
    }
    unsigned int of_seqno = flowmgr_get_seqno(h->fm);
    if (of_seqno != h->of_seqno) {
        h->of_seqno = of_seqno;
        h->flows_ok = false;
        h->flows_resync = true;
    }
    bool force = h->flows_resync || now >= h->next_flow_check;
    if (!h->provisioned) {
        /* Syncing now would remove every channel's flows until the
         * channels are known. */
        return;
    }
    if (!flowmgr_is_syncing(h->fm)
        && (force || (h->flows_ok && flowmgr_needs_sync(h->fm)))) {
        flowmgr_sync(h->fm, force, now);
        if (flowmgr_is_syncing(h->fm)) {
            h->flows_resync = false;
            h->next_flow_check = LLONG_MAX;     /* Set when it ends. */
        } else {
            h->next_flow_check = now + 1000;
        }
    }
    set_channels_installed(h);
}

/* Chan DB. */

static void
write_channel_rows(struct host *h, long long now)
{
    if (now < h->next_db_write) {
        return;
    }
    h->next_db_write = now + DB_WRITE_MS;
    for (size_t i = 0; i < h->n_channels; i++) {
        struct channel *ch = h->channels[i];
        uint64_t relayed, refused;
        chandb_relay_counts(h->db, channel_vm(ch), &relayed, &refused);
        channel_set_counter(ch, "relayed", relayed);
        channel_set_counter(ch, "objects_refused",
                            chandb_objects_refused(h->db, channel_vm(ch)));
        channel_set_counter(ch, "relay_refused", refused);
        struct chandb_channel_state st;
        channel_get_db_state(h->channels[i], now, &st);
        st.chassis = h->chassis;
        chandb_update_channel(h->db, &st);
    }
}

/* Control socket. */

static void
ctl_channel_list(struct ctl_conn *conn, int argc, const char *argv[],
                 void *h_)
{
    struct host *h = h_;
    long long now = time_msec();
    size_t size = 0;
    char *buf = NULL;
    FILE *s = open_memstream(&buf, &size);
    fprintf(s, "%-16s %-12s %10s %5s %6s %-10s %15s %s\n", "VM", "INTERFACE",
            "CHAN-ID", "VID", "OFPORT", "STATE", "APPLIED/DESIRED",
            "SYNCED");
    for (size_t i = 0; i < h->n_channels; i++) {
        const struct channel *ch = h->channels[i];
        json_t *j = channel_to_json(ch, now);
        char counts[48];
        snprintf(counts, sizeof counts, "%lld/%lld",
                 json_integer_value(json_object_get(j, "applied")),
                 json_integer_value(json_object_get(j, "desired")));
        fprintf(s, "%-16s %-12s %10u %5u %6lld %-10s %15s %s\n",
                channel_vm(ch), channel_iface(ch),
                channel_config(ch)->chan_id, channel_config(ch)->vid,
                (long long) channel_ofport(ch),
                json_string_value(json_object_get(j, "state")), counts,
                json_is_true(json_object_get(j, "synced")) ? "yes" : "no");
        json_decref(j);
    }
    fclose(s);
    ctl_command_reply(conn, buf);
    free(buf);
}

static void
ctl_channel_show(struct ctl_conn *conn, int argc, const char *argv[],
                 void *h_)
{
    struct host *h = h_;
    struct channel *ch = find_by_vm(h, argv[1]);
    if (!ch) {
        char msg[128];
        snprintf(msg, sizeof msg, "no channel for VM %.64s", argv[1]);
        ctl_command_reply_error(conn, msg);
        return;
    }
    json_t *j = channel_to_json(ch, time_msec());
    json_t *lane = transfer_lane_json(h->transfer, argv[1], time_msec());
    json_object_set_new(j, "transfer", lane ? lane : json_null());
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    ctl_command_reply(conn, text);
    free(text);
    json_decref(j);
}

/* object/delink VM: drops what chand-host holds of VM's published records
 * (its Guest_Record and Object_Ref rows, its upstream session) and makes
 * the guest send them all again, so that they are rebuilt from what the
 * guest holds now. */
static void
ctl_object_delink(struct ctl_conn *conn, int argc, const char *argv[],
                  void *h_)
{
    struct host *h = h_;
    struct channel *ch = find_by_vm(h, argv[1]);

    (void) argc;
    if (!ch) {
        char msg[128];
        snprintf(msg, sizeof msg, "no channel for VM %.64s", argv[1]);
        ctl_command_reply_error(conn, msg);
        return;
    }
    chandb_delete_guest_records(h->db, channel_vm(ch));
    upstream_drop(channel_upstream(ch));
    VLOG_WARN("%s: delinked: published records and object references "
              "dropped, asking the guest for all of them again",
              channel_vm(ch));
    char *reply = xasprintf("%s: delinked; its published records and "
                            "object references are rebuilt from the guest",
                            channel_vm(ch));
    ctl_command_reply(conn, reply);
    free(reply);
}

/* object/fetch VM DIGEST: fetches an object from a VM into the content
 * store. */
static void
ctl_object_fetch(struct ctl_conn *conn, int argc, const char *argv[],
                 void *h_)
{
    struct host *h = h_;
    char *error = NULL;

    (void) argc;
    if (!find_by_vm(h, argv[1])) {
        char *msg = xasprintf("no channel for VM %.64s", argv[1]);
        ctl_command_reply_error(conn, msg);
        free(msg);
    } else if (transfer_fetch(h->transfer, argv[1], argv[2], &error)) {
        ctl_command_reply_error(conn, error);
    } else {
        char *reply = xasprintf("fetching %.12s from %s", argv[2], argv[1]);
        ctl_command_reply(conn, reply);
        free(reply);
    }
    free(error);
}

/* object/store PATH: copies a file into the content store. */
static void
ctl_object_store(struct ctl_conn *conn, int argc, const char *argv[],
                 void *h_)
{
    struct host *h = h_;
    char digest[65], *error = NULL;
    uint64_t size;

    (void) argc;
    if (argv[1][0] != '/') {
        ctl_command_reply_error(conn, "the path must be absolute (chand-host "
                                "reads it from its own working directory)");
    } else if (transfer_store_file(h->transfer, argv[1], digest, &size,
                                   &error)) {
        ctl_command_reply_error(conn, error);
    } else {
        char *reply = xasprintf("%s %"PRIu64, digest, size);
        ctl_command_reply(conn, reply);
        free(reply);
    }
    free(error);
}

/* transfer/list: the content store, fetches and every lane. */
static void
ctl_transfer_list(struct ctl_conn *conn, int argc, const char *argv[],
                  void *h_)
{
    struct host *h = h_;
    json_t *j = transfer_status_json(h->transfer, time_msec());
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

    (void) argc;
    (void) argv;
    ctl_command_reply(conn, text);
    free(text);
    json_decref(j);
}

static void
ctl_host_status(struct ctl_conn *conn, int argc, const char *argv[],
                void *h_)
{
    struct host *h = h_;
    struct ofconn_stats of;
    ofconn_get_stats(h->of, &of);
    json_t *j = json_pack(
        "{ss ss? sb sb sb sb sb sI sI sI sI sI sI sO so}",
        "bridge", h->opts.bridge,
        "chassis", h->chassis,
        "ovs_db_connected", ovsdb_replica_is_synced(h->ovs),
        "chan_db_connected", chandb_is_connected(h->db),
        "openflow_connected", ofconn_is_ready(h->of),
        "flow_connection", flowmgr_is_connected(h->fm),
        "flows_installed", h->flows_ok,
        "chand_flows", (json_int_t) flowmgr_n_installed(h->fm),
        "flow_errors", (json_int_t) flowmgr_n_errors(h->fm),
        "channels", (json_int_t) h->n_channels,
        "packet_outs", (json_int_t) of.packet_outs,
        "packet_ins", (json_int_t) of.packet_ins,
        "packet_out_drops", (json_int_t) of.tx_dropped,
        "counters", h->counters,
        "inject", inject_status(h->inj));
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    ctl_command_reply(conn, text);
    free(text);
    json_decref(j);
}

static void
ctl_exit(struct ctl_conn *conn, int argc, const char *argv[], void *h_)
{
    struct host *h = h_;
    h->exiting = true;
    ctl_command_reply(conn, NULL);
}

static void
register_commands(struct host *h)
{
    ctl_command_register("channel/list", "", 0, 0, ctl_channel_list, h);
    ctl_command_register("channel/show", "VM", 1, 1, ctl_channel_show, h);
    ctl_command_register("host/status", "", 0, 0, ctl_host_status, h);
    ctl_command_register("object/delink", "VM", 1, 1, ctl_object_delink, h);
    ctl_command_register("object/fetch", "VM DIGEST", 2, 2,
                         ctl_object_fetch, h);
    ctl_command_register("object/store", "PATH", 1, 1, ctl_object_store, h);
    ctl_command_register("transfer/list", "", 0, 0, ctl_transfer_list, h);
    ctl_command_register("exit", "", 0, 0, ctl_exit, h);
}

/* Life cycle. */

static struct ovsdb_replica *
create_ovs_replica(const char *remote)
{
    struct ovsdb_replica *r = ovsdb_replica_create("Open_vSwitch");
    provision_add_columns(r);
    struct ovsdb_replica_table *t = ovsdb_replica_add_table(r,
                                                            "Open_vSwitch");
    ovsdb_replica_add_column(t, "other_config", NULL);
    ovsdb_replica_add_column(t, "external_ids", NULL);
    inject_add_columns(r);
    ovsdb_replica_connect(r, remote);
    return r;
}

struct host *
host_create(const struct host_options *opts)
{
    struct host *h = xzalloc(sizeof *h);
    h->opts = *opts;
    h->target = xasprintf("unix:%s/%s.mgmt", opts->ovs_rundir, opts->bridge);
    h->fm = flowmgr_create(opts->flows, h->target);
    if (!h->fm) {
        free(h->target);
        free(h);
        return NULL;
    }
    flowmgr_set_meter_rate(h->fm, opts->guest_pps, opts->guest_burst);
    h->ctl = ctl_server_create(opts->ctl);
    if (!h->ctl) {
        flowmgr_destroy(h->fm);
        free(h->target);
        free(h);
        return NULL;
    }
    h->ovs = create_ovs_replica(opts->ovs_db);
    h->db = chandb_create(opts->chan_db);
    struct transfer_config tc = {
        .content_dir = opts->content_dir,
        .cap = opts->content_cap,
        .max_size = opts->max_transfer,
        /* Stay under the meter on the VM's frames, leaving room for the
         * rest of the channel. */
        .guest_rate = opts->guest_pps - opts->guest_pps / 5,
    };
    h->transfer = transfer_create(&tc, h->db);
    if (!h->transfer) {
        chandb_destroy(h->db);
        ovsdb_replica_destroy(h->ovs);
        ctl_server_destroy(h->ctl);
        flowmgr_destroy(h->fm);
        free(h->target);
        free(h);
        return NULL;
    }
    h->of = ofconn_create_packet(h->target, packet_in, h);
    h->inj = inject_create(opts->inject, opts->bridge, opts->chand_port,
                           opts->ovs_rundir, port_recv, h);
    h->down = json_object();
    h->status_wanted = json_object();
    h->status_pending = json_object();
    h->counters = json_object();
    h->vlan_limit = -1;
    register_commands(h);
    VLOG_INFO("chand-host starting: bridge %s (%s), Open_vSwitch DB %s, "
              "Chan DB %s", opts->bridge, h->target, opts->ovs_db,
              opts->chan_db);
    return h;
}

void
host_destroy(struct host *h)
{
    if (!h) {
        return;
    }
    for (size_t i = 0; i < h->n_channels; i++) {
        transfer_detach(h->transfer, h->channels[i]);
        channel_destroy(h->channels[i]);
    }
    free(h->channels);
    transfer_destroy(h->transfer);
    ctl_server_destroy(h->ctl);
    inject_destroy(h->inj);
    ofconn_destroy(h->of);
    chandb_destroy(h->db);
    ovsdb_replica_destroy(h->ovs);
    flowmgr_destroy(h->fm);
    json_decref(h->down);
    json_decref(h->status_wanted);
    json_decref(h->status_pending);
    json_decref(h->counters);
    free(h->chassis);
    free(h->target);
    free(h);
}

void
host_run(struct host *h)
{
    long long now = time_msec();

    ovsdb_replica_run(h->ovs);
    chandb_run(h->db);
    ofconn_run(h->of);
    ctl_server_run(h->ctl);
    inject_run(h->inj, h->ovs, now);

    /* Channels are (re)computed once both databases are in sync: a new
     * channel needs the Chan DB for its desired state and for what a
     * previous run left there. */
    uint64_t ovs_seqno = ovsdb_replica_get_seqno(h->ovs);
    if ((ovs_seqno != h->ovs_seqno
         || inject_ofport(h->inj) != h->inject_ofport)
        && ovsdb_replica_is_synced(h->ovs)
        && chandb_is_connected(h->db)) {
        h->ovs_seqno = ovs_seqno;
        ovsdb_replica_track_clear(h->ovs);
        check_vlan_limit(h);
        update_chassis(h);
        reprovision(h, now);
        h->provisioned = true;
        json_object_clear(h->status_pending);
    }
    sync_flows(h, now);
    write_statuses(h);

    uint64_t db_seqno = chandb_get_seqno(h->db);
    if (db_seqno != h->db_seqno) {
        h->db_seqno = db_seqno;
        for (size_t i = 0; i < h->n_channels; i++) {
            struct channel *ch = h->channels[i];
            channel_set_desired(ch, chandb_desired(h->db, channel_vm(ch)),
                                now);
        }
    }
    uint64_t limits_seqno = chandb_get_limits_seqno(h->db);
    if (limits_seqno != h->limits_seqno) {
        h->limits_seqno = limits_seqno;
        for (size_t i = 0; i < h->n_channels; i++) {
            set_guest_limits(h, h->channels[i]);
        }
    }
    uint64_t keys_seqno = chandb_get_keys_seqno(h->db);
    if (keys_seqno != h->keys_seqno) {
        h->keys_seqno = keys_seqno;
        for (size_t i = 0; i < h->n_channels; i++) {
            struct channel *ch = h->channels[i];
            json_t *keys = chandb_keys(h->db, channel_vm(ch));
            channel_set_keys(ch, keys);
            json_decref(keys);
        }
    }
    for (size_t i = 0; i < h->n_channels; i++) {
        channel_run(h->channels[i], now);
        write_upstream(h, h->channels[i], now);
    }
    transfer_run(h->transfer, now);
    ofconn_run(h->of);          /* Flush what the channels queued. */
    inject_flush(h->inj);
    write_channel_rows(h, now);
}

void
host_wait(struct host *h)
{
    long long now = time_msec();
    ovsdb_replica_wait(h->ovs);
    chandb_wait(h->db);
    ofconn_wait(h->of);
    inject_wait(h->inj);
    ctl_server_wait(h->ctl);
    flowmgr_wait(h->fm);
    transfer_wait(h->transfer, now);
    if (flowmgr_is_connected(h->fm)) {
        poll_timer_wait_until(h->next_flow_check);
    }
    if (h->n_channels) {
        poll_timer_wait_until(h->next_db_write);
    }
    for (size_t i = 0; i < h->n_channels; i++) {
        poll_timer_wait_until(channel_next_deadline(h->channels[i], now));
    }
}

bool
host_exiting(const struct host *h)
{
    return h->exiting;
}
