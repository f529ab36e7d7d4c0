/* Copyright (c) 2026 The chand authors.  See host.h. */

#include <config.h>
#include "host.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan-endpoint.h"
#include "chan-mtu.h"
#include "chandb.h"
#include "claim.h"
#include "channel.h"
#include "ctl.h"
#include "flow-template.h"
#include "flowmgr.h"
#include "hmap.h"
#include "host-metrics.h"
#include "inject.h"
#include "metrics.h"
#include "metrics-http.h"
#include "ofconn.h"
#include "ovsdb-msg.h"
#include "ovsdb-replica.h"
#include "packets.h"
#include "poll-loop.h"
#include "provision.h"
#include "autoid.h"
#include "transfer.h"
#include "upstream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(host);

#define DB_WRITE_MS 200         /* Channel rows written at most this often,
                                 * or sooner once a channel caught up
                                 * (channel_db_prompt_due()). */
#define CLAIM_WAIT_MS 10000     /* How long a chassis that takes a VM over
                                 * waits for the previous one to release
                                 * it (one that died never does). */

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
    struct autoid *autoid;      /* chand-ids being allocated. */
    uint64_t autoid_seqno;

    /* The channels.  'due' and 'refs' are parallel to 'channels': when each
     * next needs channel_run() (0: on the next turn; a frame for it or a
     * change to its inputs sets that), and its entry in the lookups by
     * chan-id and VM name.  So a turn of the loop that a few frames woke
     * runs those few channels, not all of them. */
    struct channel **channels;
    long long *due;
    bool *ran;                  /* Ran since write_channel_rows() looked at
                                 * it: its row may need writing. */
    struct chan_ref **refs;
    size_t n_channels;
    struct hmap by_chan_id;     /* Of struct chan_ref, by 'by_chan_id'. */
    struct hmap by_vm;          /* Of struct chan_ref, by 'by_vm'. */
    json_t *down;               /* vm -> true: deprovisioned, written down. */
    struct hmap claims;         /* Of struct vm_claim, by VM name. */
    uint64_t claims_seqno;
    long long next_claim_check; /* A takeover's deadline. */

    uint64_t ovs_seqno;
    uint64_t db_seqno;
    uint64_t keys_seqno;
    uint64_t limits_seqno;
    unsigned int of_seqno;
    bool reprovision;           /* Provisioning must be recomputed. */
    struct inject *inj;         /* How frames meet the bridge. */
    int64_t inject_ofport;      /* What the flows are rendered with. */
    unsigned int inject_mtu;    /* inject_max_mtu() the MTUs were set
                                 * with. */
    bool flows_ok;
    bool flows_resync;          /* OpenFlow reconnected: sync in full. */
    bool provisioned;           /* The channels were computed once: until
                                 * then the wanted flows are not known. */
    long long next_flow_check;
    long long next_db_write;
    json_t *status_wanted;      /* iface uuid -> status string or null. */
    json_t *status_pending;     /* iface uuid -> status being written. */
    bool statuses_dirty;        /* 'status_wanted' or 'status_pending'
                                 * changed since write_statuses() ran. */
    bool installed_dirty;       /* The channels' flows_installed must be
                                 * worked out again: channels or installed
                                 * flows changed. */
    bool installed_of_ready;    /* ofconn_is_ready() and 'flows_ok' when */
    bool installed_flows_ok;    /* they were last worked out. */

    json_t *counters;           /* Host-level drops. */
    struct metrics_http *http;  /* --metrics, or NULL. */
    int vlan_limit;             /* Open_vSwitch other_config:vlan-limit,
                                 * -1 until known. */
    char *fail_mode;            /* The bridge's fail_mode, NULL until
                                 * known. */
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

/* This chassis's claim state of one VM (claim.h), in 'claims' while any
 * of it is set: its claim on the VM, whether it yielded the VM, the other
 * chassis last decided about. */
struct vm_claim {
    struct hmap_node node;      /* In 'claims', by hash_string_nocase(vm). */
    char *vm;                   /* Owned. */
    bool claimed;               /* 'claim' and 'migrations' are ours. */
    int64_t claim;              /* 0 unless 'claimed'. */
    int64_t migrations;         /* 0 unless 'claimed'. */
    long long deadline;         /* While taking the VM over, when the
                                 * previous holder's release stops being
                                 * waited for; 0 otherwise. */
    bool yielded;               /* Yielded, the vNIC still here. */
    char *holder;               /* Owned; the other chassis last decided
                                 * about, NULL if none. */
};

/* Returns VM 'vm''s claim state (owned by 'h'), or NULL if it has none. */
static struct vm_claim *
vm_claim_find(const struct host *h, const char *vm)
{
    struct vm_claim *c;
    HMAP_FOR_EACH_WITH_HASH (c, node, hash_string_nocase(vm), &h->claims) {
        if (!strcmp(c->vm, vm)) {
            return c;
        }
    }
    return NULL;
}

/* Returns VM 'vm''s claim state (owned by 'h'), empty if it had none: the
 * caller sets some of it, or calls vm_claim_prune(). */
static struct vm_claim *
vm_claim_get(struct host *h, const char *vm)
{
    struct vm_claim *c = vm_claim_find(h, vm);
    if (!c) {
        c = xzalloc(sizeof *c);
        c->vm = xstrdup(vm);
        hmap_insert(&h->claims, &c->node, hash_string_nocase(vm));
    }
    return c;
}

/* Frees 'c' (and takes it out of 'h') if nothing of it is set any more. */
static void
vm_claim_prune(struct host *h, struct vm_claim *c)
{
    if (!c->claimed && !c->yielded && !c->holder) {
        hmap_remove(&h->claims, &c->node);
        free(c->vm);
        free(c);
    }
}

/* Forgets this chassis's claim on 'c''s VM (which may free 'c'). */
static void
vm_claim_unclaim(struct host *h, struct vm_claim *c)
{
    c->claimed = false;
    c->claim = 0;
    c->migrations = 0;
    c->deadline = 0;
    vm_claim_prune(h, c);
}

/* Where a channel is in 'channels': found by chan-id or VM name. */
struct chan_ref {
    struct hmap_node by_chan_id;
    struct hmap_node by_vm;
    size_t idx;                 /* Index in 'channels', 'due', 'refs'. */
};

static size_t
hash_chan_id(uint32_t chan_id)
{
    return chan_id * 2654435761u;
}

/* Appends 'ch' (taken over) to the channels, due at once. */
static void
channels_add(struct host *h, struct channel *ch)
{
    size_t n = h->n_channels + 1;
    h->channels = xrealloc(h->channels, n * sizeof *h->channels);
    h->due = xrealloc(h->due, n * sizeof *h->due);
    h->ran = xrealloc(h->ran, n * sizeof *h->ran);
    h->refs = xrealloc(h->refs, n * sizeof *h->refs);

    struct chan_ref *ref = xzalloc(sizeof *ref);
    ref->idx = h->n_channels;
    hmap_insert(&h->by_chan_id, &ref->by_chan_id,
                hash_chan_id(channel_config(ch)->chan_id));
    hmap_insert(&h->by_vm, &ref->by_vm, hash_string_nocase(channel_vm(ch)));
    h->channels[ref->idx] = ch;
    h->due[ref->idx] = 0;
    h->ran[ref->idx] = true;
    h->refs[ref->idx] = ref;
    h->n_channels = n;
}

/* Takes channel 'i' out of the channels (the caller destroys it); the last
 * one takes its place. */
static void
channels_del(struct host *h, size_t i)
{
    struct chan_ref *ref = h->refs[i];
    hmap_remove(&h->by_chan_id, &ref->by_chan_id);
    hmap_remove(&h->by_vm, &ref->by_vm);
    free(ref);

    size_t last = --h->n_channels;
    h->channels[i] = h->channels[last];
    h->due[i] = h->due[last];
    h->ran[i] = h->ran[last];
    h->refs[i] = h->refs[last];
    if (i < last) {
        h->refs[i]->idx = i;
    }
}

static const struct chan_ref *
ref_by_vm(const struct host *h, const char *vm)
{
    const struct chan_ref *ref;
    HMAP_FOR_EACH_WITH_HASH (ref, by_vm, hash_string_nocase(vm),
                             &h->by_vm) {
        if (!strcmp(channel_vm(h->channels[ref->idx]), vm)) {
            return ref;
        }
    }
    return NULL;
}

static const struct chan_ref *
ref_by_chan_id(const struct host *h, uint32_t chan_id)
{
    const struct chan_ref *ref;
    HMAP_FOR_EACH_WITH_HASH (ref, by_chan_id, hash_chan_id(chan_id),
                             &h->by_chan_id) {
        if (channel_config(h->channels[ref->idx])->chan_id == chan_id) {
            return ref;
        }
    }
    return NULL;
}

static struct channel *
find_by_vm(const struct host *h, const char *vm)
{
    const struct chan_ref *ref = ref_by_vm(h, vm);
    return ref ? h->channels[ref->idx] : NULL;
}

/* Makes every channel due on the next turn (its inputs changed). */
static void
kick_all(struct host *h)
{
    for (size_t i = 0; i < h->n_channels; i++) {
        h->due[i] = 0;
    }
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
deliver(struct host *h, const struct chan_ref *ref, const uint8_t *frame,
        size_t len)
{
    struct channel *ch = h->channels[ref->idx];

    h->due[ref->idx] = 0;
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
    const struct chan_ref *ref = ref_by_chan_id(h, mark);
    if (!ref) {
        count(h, "rx_drop_unknown_mark");
        VLOG_WARN_RL(&rl, "frame from the chand port with unknown pkt_mark "
                     "%"PRIu32, mark);
        return;
    }
    deliver(h, ref, frame, len);
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
    const struct chan_ref *ref = has_mark ? ref_by_chan_id(h, mark) : NULL;
    if (!ref) {
        count(h, "rx_drop_unknown_mark");
        VLOG_WARN_RL(&rl, "PACKET_IN from port %u with unknown pkt_mark %u",
                     in_port, mark);
        return;
    }
    struct channel *ch = h->channels[ref->idx];
    if (in_port != channel_ofport(ch)) {
        channel_count_drop(ch, "in_port");
        return;
    }
    deliver(h, ref, frame, len);
}

/* Provisioning. */

/* What is_active() looks at. */
struct active_ctx {
    const struct host *h;
    json_t *ifaces;             /* Interface name -> true: the channels'. */
};

static bool
is_active(const char *iface_uuid, void *ctx_)
{
    /* A channel is identified by its interface name; the replica maps
     * uuids to names, so compare through the row. */
    const struct active_ctx *ctx = ctx_;
    const json_t *ifaces = ctx->ifaces;
    const struct ovsdb_replica_row *row = ovsdb_replica_find(
        ovsdb_replica_get_table(ctx->h->ovs, "Interface"), iface_uuid);
    const char *name = NULL;
    if (row) {
        ovsdb_datum_get_string(ovsdb_replica_row_get(row, "name"), &name);
    }
    return name && json_object_get(ifaces, name);
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
    const struct chan_ref *ref = ref_by_vm(h, w->vm);
    if (ref && h->channels[ref->idx] == w->ch) {
        upstream_batch_done(channel_upstream(w->ch), ok, time_msec());
        h->due[ref->idx] = 0;
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

/* Why a channel goes (remove_channel()). */
enum removal {
    REMOVE_CHANGED,             /* Its provisioning changed: made again. */
    REMOVE_DEPROVISIONED,       /* chand-vm left the Interface. */
    REMOVE_RELEASED,            /* The vNIC left this chassis. */
    REMOVE_YIELDED,             /* Another chassis claimed the VM. */
};

/* Records this chassis's claim on VM 'vm': 'claim' and 'migrations', and
 * while it takes the VM over 'deadline' (0 if it does not). */
static void
claim_set(struct host *h, const char *vm, int64_t claim, int64_t migrations,
          long long deadline)
{
    struct vm_claim *c = vm_claim_get(h, vm);
    c->claimed = true;
    c->claim = claim;
    c->migrations = migrations;
    c->deadline = deadline;
}

/* Returns the deadline of this chassis's takeover of VM 'vm', 0 if it is
 * not taking it over. */
static long long
claim_deadline(const struct host *h, const char *vm)
{
    const struct vm_claim *c = vm_claim_find(h, vm);
    return c ? c->deadline : 0;
}

/* Sets the chassis, claim and migrations of 'st', a Channel row of VM 'vm'
 * of this chassis (0 and 0 without a claim). */
static void
claim_fill_row(const struct host *h, const char *vm,
               struct chandb_channel_state *st)
{
    const struct vm_claim *c = vm_claim_find(h, vm);
    st->chassis = h->chassis;
    st->claim = c ? c->claim : 0;
    st->migrations = c ? c->migrations : 0;
}

static void
remove_channel(struct host *h, size_t i, enum removal why,
               const char *other, long long now)
{
    struct channel *ch = h->channels[i];
    const char *vm = channel_vm(ch);
    struct chandb_channel_state st;
    char *reason = NULL;

    channel_set_flows_installed(ch, false);
    channel_get_db_state(ch, now, &st);
    claim_fill_row(h, vm, &st);
    switch (why) {
    case REMOVE_CHANGED:
    case REMOVE_DEPROVISIONED:
        st.state = "down";
        st.reason = "deprovisioned";
        break;
    case REMOVE_RELEASED:
    case REMOVE_YIELDED:
        /* The next chassis resumes from what this row says. */
        st.state = "released";
        reason = (why == REMOVE_RELEASED
                  ? xasprintf("the vNIC left chassis %s", h->chassis)
                  : xasprintf("claimed by chassis %s", other));
        st.reason = reason;
        channel_get_sent(ch, &st.sent_seq, &st.sent);
        break;
    }
    chandb_update_channel(h->db, &st);
    free(reason);
    json_object_set_new(h->down, vm, json_true());
    if (why == REMOVE_DEPROVISIONED) {
        /* The VM's published records go with its channel. */
        chandb_delete_guest_records(h->db, vm);
    }
    VLOG_INFO("%s: channel removed (%s)%s", vm,
              why == REMOVE_CHANGED ? "provisioning changed"
              : why == REMOVE_DEPROVISIONED ? "deprovisioned"
              : why == REMOVE_RELEASED ? "vNIC left this chassis"
              : "claimed by another chassis",
              why == REMOVE_DEPROVISIONED ? ", with its published records"
              : "");
    transfer_detach(h->transfer, ch);
    channel_destroy(ch);
    channels_del(h, i);
}

static void
want_status(struct host *h, const char *uuid, const char *current,
            const char *status)
{
    if ((!current && !status) || (current && status
                                  && !strcmp(current, status))) {
        if (json_object_get(h->status_wanted, uuid)) {
            json_object_del(h->status_wanted, uuid);
            h->statuses_dirty = true;
        }
        return;
    }
    json_t *old = json_object_get(h->status_wanted, uuid);
    json_t *new = status ? json_string(status) : json_null();
    if (!old || !json_equal(old, new)) {
        h->statuses_dirty = true;
    }
    json_object_set_new(h->status_wanted, uuid, new);
}

/* The VMs whose Chan DB rows this chassis wants: those provisioned on its
 * bridge and those it still has a Channel row of. */
static void
set_monitored_vms(struct host *h, const struct prov_set *set)
{
    json_t *vms = chandb_own_rows(h->db);
    for (size_t j = 0; j < set->n; j++) {
        const struct prov_channel *pc = &set->channels[j];
        if (pc->vm && !pc->error) {
            json_object_set_new(vms, pc->vm, json_true());
        }
    }
    chandb_set_vms(h->db, vms);
    json_decref(vms);
}

static void
claim_check_at(struct host *h, long long when)
{
    if (when < h->next_claim_check) {
        h->next_claim_check = when;
    }
}

/* Decides about VM 'vm' (claim.h) into 'd' and returns its action; the
 * other chassis concerned, if any, is then holder_of(h, vm). */
static enum claim_action
decide_claim(struct host *h, const char *vm, bool serving, long long now,
             struct claim_decision *d)
{
    struct claim_row *rows;
    size_t n = chandb_get_claims(h->db, vm, &rows);
    struct vm_claim *c = vm_claim_find(h, vm);
    long long deadline = c ? c->deadline : 0;
    bool waiting = deadline && now < deadline;
    claim_decide(h->chassis, rows, n, serving, c && c->yielded, waiting, d);
    if (d->holder) {
        /* Copy what outlives 'rows'. */
        c = vm_claim_get(h, vm);
        free(c->holder);
        c->holder = xstrdup(d->holder->chassis ? d->holder->chassis : "");
    } else if (c) {
        free(c->holder);
        c->holder = NULL;
        vm_claim_prune(h, c);
    }
    d->holder = NULL;
    free(rows);
    if (waiting) {
        claim_check_at(h, deadline);
    }
    return d->action;
}

static const char *
holder_of(const struct host *h, const char *vm)
{
    const struct vm_claim *c = vm_claim_find(h, vm);
    return c && c->holder && *c->holder ? c->holder : "(unnamed)";
}

/* Writes this chassis's claim on VM 'vm' (provisioned as 'pc') before it
 * serves it: the previous holder sees it and releases the VM. */
static void
write_claim(struct host *h, const struct prov_channel *pc, const char *from)
{
    char *reason = xasprintf("taking over from chassis %s", from);
    struct chandb_channel_state st = {
        .vm = pc->vm,
        .chan_id = pc->cfg.chan_id,
        .vid = pc->cfg.vid,
        .iface = pc->iface,
        .state = "connecting",
        .reason = reason,
    };
    claim_fill_row(h, pc->vm, &st);
    chandb_update_channel(h->db, &st);
    free(reason);
}

/* Starts the channel of VM 'pc', resuming from 'prior' (borrowed; NULL if
 * no previous run left an exact state). */
static struct channel *
add_channel(struct host *h, const struct prov_channel *pc,
            const struct chandb_prior *prior, long long now)
{
    struct chandb_upstream up;
    chandb_get_upstream(h->db, pc->vm, &up);
    struct channel *ch = channel_create(
        pc->vm, &pc->cfg, pc->iface, pc->ofport, prior, &up,
        &h->opts.limits, transmit, h, now);
    json_decref(up.rows);
    set_guest_limits(h, ch);
    transfer_attach(h->transfer, ch);
    channels_add(h, ch);
    json_object_del(h->down, pc->vm);
    json_t *keys = chandb_keys(h->db, pc->vm);
    channel_set_keys(ch, keys);
    json_decref(keys);
    channel_set_desired(ch, chandb_desired(h->db, pc->vm), NULL, now,
                        time_usec());
    return ch;
}

/* For a provisioned VM without a channel here: serves it, takes it over,
 * or waits.  Returns the Interface's chand-status (malloc'd). */
static char *
start_channel(struct host *h, const struct prov_channel *pc, long long now)
{
    if (!chandb_is_ready(h->db) || !h->chassis) {
        return xstrdup("pending: waiting for the Chan DB");
    }
    struct claim_decision d;
    const char *vm = pc->vm;
    struct chandb_prior prior;
    enum chandb_prior_status ps;
    switch (decide_claim(h, vm, false, now, &d)) {
    case CLAIM_SERVE:
        ps = chandb_get_prior(h->db, vm, &prior);
        if (ps == CHANDB_PRIOR_PENDING) {
            return xstrdup("pending: reading its Channel rows");
        }
        bool has_prior = ps == CHANDB_PRIOR_FOUND;
        if (claim_deadline(h, vm)) {
            VLOG_INFO("%s: serving it, taken over from chassis %s", vm,
                      holder_of(h, vm));
        }
        claim_set(h, vm, d.claim, d.migrations, 0);
        vm_claim_get(h, vm)->yielded = false;
        add_channel(h, pc, has_prior ? &prior : NULL, now);
        if (ps == CHANDB_PRIOR_FOUND) {
            chandb_prior_destroy(&prior);
        }
        return xstrdup("ready");
    case CLAIM_TAKE:
        if (claim_deadline(h, vm)
            && vm_claim_find(h, vm)->claim == d.claim) {
            /* Claimed already; the row is on its way. */
            return xasprintf("pending: taking over from chassis %s",
                             holder_of(h, vm));
        }
        VLOG_INFO("%s: vNIC here, chassis %s holds claim %"PRId64": "
                  "claiming it (claim %"PRId64")", vm, holder_of(h, vm),
                  d.claim - 1, d.claim);
        claim_set(h, vm, d.claim, d.migrations, now + CLAIM_WAIT_MS);
        claim_check_at(h, now + CLAIM_WAIT_MS);
        write_claim(h, pc, holder_of(h, vm));
        count(h, "claims");
        return xasprintf("pending: taking over from chassis %s",
                         holder_of(h, vm));
    case CLAIM_WAIT:
        return xasprintf("pending: waiting for chassis %s to release it",
                         holder_of(h, vm));
    case CLAIM_YIELD:
    default:
        return xasprintf("standby: served by chassis %s", holder_of(h, vm));
    }
}

/* Deletes this chassis's Channel rows of VMs that another chassis now
 * serves (its row is newer and ready). */
static void
clean_released_rows(struct host *h)
{
    json_t *own = chandb_own_rows(h->db);
    const char *vm;
    json_t *v;
    json_object_foreach (own, vm, v) {
        const struct vm_claim *c = vm_claim_find(h, vm);
        if (find_by_vm(h, vm) || (c && c->claimed)) {
            continue;
        }
        struct claim_row *rows;
        size_t n = chandb_get_claims(h->db, vm, &rows);
        const struct claim_row *mine = NULL, *newest = NULL;
        for (size_t i = 0; i < n; i++) {
            if (rows[i].chassis && !strcmp(rows[i].chassis, h->chassis)) {
                mine = &rows[i];
            } else if (!newest || rows[i].claim > newest->claim) {
                newest = &rows[i];
            }
        }
        if (mine && newest && newest->claim > mine->claim
            && newest->state && !strcmp(newest->state, "ready")) {
            VLOG_INFO("%s: chassis %s serves it now: deleting this "
                      "chassis's Channel row", vm, newest->chassis);
            chandb_delete_channel(h->db, vm);
        }
        free(rows);
    }
    json_decref(own);
}

/* Sets each channel's MTU (chan-mtu.h): its vNIC's external_ids:chand-mtu,
 * else --mtu, else auto; capped at the vNIC's MTU and at what the packet
 * path takes.  Asks the path for the largest one the channels want. */
static void
set_mtus(struct host *h, const struct prov_set *set)
{
    unsigned int want = 0;
    for (size_t j = 0; j < set->n; j++) {
        const struct prov_channel *pc = &set->channels[j];
        if (!pc->vm || pc->error || pc->needs_id) {
            continue;
        }
        unsigned int configured = pc->mtu ? pc->mtu : h->opts.mtu;
        unsigned int mtu = chan_mtu_local(configured, pc->iface_mtu, 0);
        want = mtu > want ? mtu : want;
        struct channel *ch = find_by_vm(h, pc->vm);
        if (ch && !strcmp(channel_iface(ch), pc->iface)) {
            channel_set_mtu(ch, chan_mtu_local(configured, pc->iface_mtu,
                                               h->inject_mtu));
        }
    }
    inject_set_mtu(h->inj, want);
}

/* For provisioned VM 'pc' without a chand-id: chooses one (autoid.h) and
 * writes it, unless a write is under way.  Sets 'pc->error' if no id is
 * free.  Returns the Interface's chand-status (malloc'd). */
static char *
allocate_id(struct host *h, struct prov_channel *pc,
            const struct prov_set *set)
{
    uint64_t seqno = ovsdb_replica_get_seqno(h->ovs);
    if (!chandb_is_ready(h->db) || !h->chassis) {
        /* The VM's Channel row, if any, says which id its guest has. */
        return xstrdup("pending: waiting for the Chan DB");
    }
    if (!autoid_may_start(h->autoid, pc->iface_uuid, seqno)) {
        return xstrdup("pending: allocating a chand-id");
    }

    /* In use here: every Interface's id, and those being written (for
     * other Interfaces, in this pass too); elsewhere: the Chan DB's other
     * VMs' ids. */
    uint32_t *pending, *elsewhere, vm_id, id;
    size_t n_pending = autoid_pending_ids(h->autoid, &pending);
    size_t n_elsewhere = chandb_chan_ids(h->db, pc->vm, &elsewhere, &vm_id);
    size_t n_here = set->n_ids + n_pending;
    uint32_t *used = xmalloc((n_here + n_elsewhere + 1) * sizeof *used);
    memcpy(used, set->ids, set->n_ids * sizeof *used);
    memcpy(&used[set->n_ids], pending, n_pending * sizeof *used);
    memcpy(&used[n_here], elsewhere, n_elsewhere * sizeof *used);
    free(pending);
    free(elsewhere);
    int error = autoid_pick(used, n_here + n_elsewhere, n_here, vm_id, &id);
    free(used);
    if (error) {
        pc->error = xasprintf("no free chand-id to allocate (%d..%d all in "
                              "use)", AUTOID_MIN, AUTOID_MAX);
        return NULL;
    }
    if (vm_id && vm_id != id) {
        VLOG_WARN("%s: its Channel row in the Chan DB has chan-id %"PRIu32
                  ", in use here or out of the automatic range: allocating "
                  "another; its guest needs the new one", pc->vm, vm_id);
    }
    autoid_start(h->autoid, h->ovs, pc->iface_uuid, pc->iface, pc->vm,
                 pc->external_ids, id, seqno);
    return xstrdup("pending: allocating a chand-id");
}

static void
reprovision(struct host *h, long long now)
{
    struct prov_set set;
    struct active_ctx active = { h, json_object() };
    for (size_t i = 0; i < h->n_channels; i++) {
        json_object_set_new(active.ifaces, channel_iface(h->channels[i]),
                            json_true());
    }
    provision_compute(h->ovs, h->opts.bridge, h->opts.vm_name, is_active,
                      &active, &set);
    json_decref(active.ifaces);
    set_monitored_vms(h, &set);
    h->next_claim_check = LLONG_MAX;

    /* Drop channels that are gone, changed, or claimed elsewhere.  The
     * provisioned interfaces by name, and by VM name the indexes of those
     * that name one (several, when names clash). */
    json_t *set_ifaces = json_object(), *set_vms = json_object();
    for (size_t j = 0; j < set.n; j++) {
        const struct prov_channel *pc = &set.channels[j];
        json_object_set_new(set_ifaces, pc->iface, json_true());
        if (pc->vm) {
            json_t *list = json_object_get(set_vms, pc->vm);
            if (!list) {
                list = json_array();
                json_object_set_new(set_vms, pc->vm, list);
            }
            json_array_append_new(list, json_integer(j));
        }
    }
    for (size_t i = 0; i < h->n_channels; ) {
        struct channel *ch = h->channels[i];
        bool keep = false, provisioned = false;
        bool iface_here = json_object_get(set_ifaces,
                                          channel_iface(ch)) != NULL;
        size_t k;
        json_t *jj;
        json_array_foreach (json_object_get(set_vms, channel_vm(ch)), k,
                            jj) {
            const struct prov_channel *pc
                = &set.channels[json_integer_value(jj)];
            provisioned |= !pc->error;
            if (!pc->error && !pc->needs_id && pc->ofport > 0
                && channel_matches(ch, &pc->cfg, pc->iface, pc->ofport)) {
                keep = true;
                break;
            }
        }
        struct claim_decision d;
        const char *vm = channel_vm(ch);
        if (keep && chandb_is_ready(h->db)
            && decide_claim(h, vm, true, now, &d) == CLAIM_YIELD) {
            VLOG_WARN("%s: chassis %s claimed it after this chassis: "
                      "yielding (the vNIC is still here)", vm,
                      holder_of(h, vm));
            /* 'vm' goes with the channel; 'c' stays (yielded). */
            struct vm_claim *c = vm_claim_get(h, vm);
            c->yielded = true;
            remove_channel(h, i, REMOVE_YIELDED, holder_of(h, vm), now);
            vm_claim_unclaim(h, c);
            count(h, "yields");
        } else if (keep) {
            i++;
        } else {
            enum removal why = (provisioned ? REMOVE_CHANGED
                                : iface_here ? REMOVE_DEPROVISIONED
                                : REMOVE_RELEASED);
            /* 'vm' goes with the channel, 'c' stays until unclaimed. */
            struct vm_claim *c = (why != REMOVE_CHANGED
                                  ? vm_claim_find(h, vm) : NULL);
            remove_channel(h, i, why, NULL, now);
            if (c) {
                vm_claim_unclaim(h, c);
            }
        }
    }

    json_decref(set_ifaces);
    json_decref(set_vms);

    /* Add new ones, and rebuild the wanted flows. */
    h->inject_ofport = inject_ofport(h->inj);
    h->inject_mtu = inject_max_mtu(h->inj);
    flowmgr_set_inject_ofport(h->fm, h->inject_ofport);
    flowmgr_clear(h->fm);
    json_object_clear(h->status_wanted);
    json_t *here = json_object(), *needing = json_object();
    for (size_t j = 0; j < set.n; j++) {
        struct prov_channel *pc = &set.channels[j];
        char *status = NULL;

        if (pc->vm && !pc->error && pc->needs_id) {
            json_object_set_new(needing, pc->iface_uuid, json_true());
            status = allocate_id(h, pc, &set);
        } else if (pc->vm && !pc->error && pc->ofport > 0) {
            char *error = flowmgr_add_channel(h->fm, &pc->cfg, pc->ofport);
            if (error) {
                pc->error = error;
            } else {
                json_object_set_new(here, pc->vm, json_true());
                status = (find_by_vm(h, pc->vm) ? xstrdup("ready")
                          : start_channel(h, pc, now));
            }
        } else if (pc->vm && !pc->error) {
            status = xstrdup("pending: no OpenFlow port yet");
        }
        if (pc->error) {
            free(status);
            status = xasprintf("error: %s", pc->error);
            VLOG_WARN_RL(&rl, "interface %s: %s", pc->iface, pc->error);
        }
        want_status(h, pc->iface_uuid, pc->status, status);
        free(status);
    }
    set_mtus(h, &set);
    autoid_retain(h->autoid, needing);
    json_decref(needing);

    /* A VM whose vNIC left is no longer yielded nor being claimed. */
    struct vm_claim *c;
    HMAP_FOR_EACH_SAFE (c, node, &h->claims) {
        if (!json_object_get(here, c->vm)) {
            c->yielded = false;
            if (!find_by_vm(h, c->vm)) {
                vm_claim_unclaim(h, c);
            } else {
                vm_claim_prune(h, c);
            }
        }
    }
    json_decref(here);
    if (chandb_is_ready(h->db)) {
        clean_released_rows(h);
    }
    provision_set_destroy(&set);
    kick_all(h);
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

/* Writes the chand-status values that differ, once flows are in place
 * (and only after a change: nothing to do on most turns of the loop). */
static void
write_statuses(struct host *h)
{
    if (!h->statuses_dirty || !h->flows_ok
        || !ovsdb_replica_is_synced(h->ovs)) {
        return;
    }
    h->statuses_dirty = false;
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

/* Tells each channel whether its flows are in place, when that may have
 * changed. */
static void
set_channels_installed(struct host *h)
{
    bool of_ready = ofconn_is_ready(h->of);
    if (!h->installed_dirty && of_ready == h->installed_of_ready
        && h->flows_ok == h->installed_flows_ok) {
        return;
    }
    h->installed_dirty = false;
    h->installed_of_ready = of_ready;
    h->installed_flows_ok = h->flows_ok;
    for (size_t i = 0; i < h->n_channels; i++) {
        struct channel *ch = h->channels[i];
        h->due[i] = 0;
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

/* Open vSwitch matches IPv4 fields behind at most other_config:vlan-limit
 * VLAN tags (default 1, 0 meaning as many as it can, 2): below 2, the
 * isolation rules see a frame with two tags by its MAC addresses only.
 * Says so once per change. */
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

/* On a bridge in fail_mode standalone (Open vSwitch's default), a
 * restarted ovs-vswitchd switches everything with its own NORMAL flow until
 * chand-host's flows are back: every guest's channel frames are flooded to
 * every port, and with hundreds of vNICs that flood can keep ovs-vswitchd
 * too busy to take the flows at all.  fail_mode=secure (as OVN sets on
 * br-int) drops what no flow matches instead.  Says so once per change. */
static void
check_fail_mode(struct host *h)
{
    const char *mode = provision_fail_mode(h->ovs, h->opts.bridge);
    if (!mode || (h->fail_mode && !strcmp(mode, h->fail_mode))) {
        return;
    }
    free(h->fail_mode);
    h->fail_mode = xstrdup(mode);
    if (strcmp(mode, "secure")) {
        VLOG_WARN("bridge %s is fail_mode=%s: after an ovs-vswitchd restart "
                  "it floods the guests' channel frames to every port until "
                  "chand-host's flows are back, which with many vNICs can "
                  "keep ovs-vswitchd from taking them; set fail_mode=secure "
                  "(doc/operations.md, \"The hypervisor bridge\")",
                  h->opts.bridge, mode);
    } else {
        VLOG_INFO("bridge %s is fail_mode=secure", h->opts.bridge);
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
        h->installed_dirty = true;
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
    bool cadence = now >= h->next_db_write;
    if (cadence) {
        h->next_db_write = now + DB_WRITE_MS;
    }
    for (size_t i = 0; i < h->n_channels; i++) {
        /* A channel's row changes only with what it does, and it runs at
         * least once a heartbeat while its flows are in place; one that
         * did not run since the last look has nothing new. */
        if (!h->ran[i]) {
            continue;
        }
        struct channel *ch = h->channels[i];
        bool prompt = now >= channel_db_prompt_due(ch);
        if (!cadence && !prompt) {
            continue;
        }
        h->ran[i] = false;
        if (!prompt && !channel_db_write_due(ch, now)) {
            /* Nothing but counters changed, and they were written less
             * than a few seconds ago (a minute for an idle channel). */
            continue;
        }
        uint64_t relayed, refused;
        chandb_relay_counts(h->db, channel_vm(ch), &relayed, &refused);
        channel_set_counter(ch, "relayed", relayed);
        channel_set_counter(ch, "objects_refused",
                            chandb_objects_refused(h->db, channel_vm(ch)));
        channel_set_counter(ch, "relay_refused", refused);
        struct chandb_channel_state st;
        channel_get_db_state(h->channels[i], now, &st);
        claim_fill_row(h, channel_vm(ch), &st);
        chandb_update_channel(h->db, &st);
        channel_db_written(ch, now);
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
    h->due[ref_by_vm(h, argv[1])->idx] = 0;
    VLOG_WARN("%s: delinked: published records and object references "
              "dropped, asking the guest for all of them again",
              channel_vm(ch));
    char *reply = xasprintf("%s: delinked; its published records and "
                            "object references are rebuilt from the guest",
                            channel_vm(ch));
    ctl_command_reply(conn, reply);
    free(reply);
}

/* Parses 'text', a decimal byte count, into '*sizep'.  Returns true, or
 * false with '*errorp' set (the caller frees it). */
static bool
parse_fetch_size(const char *text, int64_t *sizep, char **errorp)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!isdigit((unsigned char) text[0]) || *end || errno
        || v > INT64_MAX) {
        *errorp = xasprintf("SIZE \"%.40s\" is not a decimal number of "
                            "bytes", text);
        return false;
    }
    *sizep = v;
    return true;
}

/* object/fetch VM DIGEST [SIZE]: fetches an object from a VM into the
 * content store; with SIZE, even one that has no Object row. */
static void
ctl_object_fetch(struct ctl_conn *conn, int argc, const char *argv[],
                 void *h_)
{
    struct host *h = h_;
    char *error = NULL;
    int64_t size = -1;

    if (!find_by_vm(h, argv[1])) {
        char *msg = xasprintf("no channel for VM %.64s", argv[1]);
        ctl_command_reply_error(conn, msg);
        free(msg);
    } else if ((argc > 3 && !parse_fetch_size(argv[3], &size, &error))
               || transfer_fetch(h->transfer, argv[1], argv[2], size,
                                 &error)) {
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

/* object/fetch-status DIGEST: where the content of DIGEST stands, one
 * compact JSON object (transfer_fetch_status()). */
static void
ctl_object_fetch_status(struct ctl_conn *conn, int argc, const char *argv[],
                        void *h_)
{
    struct host *h = h_;
    char *error = NULL;
    json_t *j = transfer_fetch_status(h->transfer, argv[1], &error);

    (void) argc;
    if (!j) {
        ctl_command_reply_error(conn, error);
    } else {
        char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        ctl_command_reply(conn, text);
        free(text);
        json_decref(j);
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

/* host/status's "latency": every channel's histograms added up. */
static json_t *
latency_status(const struct host *h)
{
    struct latency_hist all[CHANNEL_N_LATENCY];
    memset(all, 0, sizeof all);
    for (size_t i = 0; i < h->n_channels; i++) {
        const struct latency_hist *lat = channel_latency(h->channels[i]);
        for (int k = 0; k < CHANNEL_N_LATENCY; k++) {
            latency_hist_merge(&all[k], &lat[k]);
        }
    }
    return channel_latency_json(all, true);
}

/* host/status's object: a new JSON object owned by the caller. */
static json_t *
host_status_json(const struct host *h)
{
    struct ofconn_stats of;
    ofconn_get_stats(h->of, &of);
    json_t *j = json_pack(
        "{ss ss? ss? sb sb sb sb sb sI sI sI sI sI sI sO so}",
        "bridge", h->opts.bridge,
        "bridge_fail_mode", h->fail_mode,
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
    json_object_set_new(json_object_get(j, "counters"), "ids_allocated",
                        json_integer(autoid_n_allocated(h->autoid)));
    json_object_set_new(json_object_get(j, "counters"), "id_writes_failed",
                        json_integer(autoid_n_failed(h->autoid)));
    json_object_set_new(j, "chan_db", chandb_status_json(h->db));
    json_object_set_new(j, "latency", latency_status(h));
    if (h->http) {
        json_object_set_new(j, "metrics_http",
                            metrics_http_status_json(h->http));
    }
    return j;
}

static void
ctl_host_status(struct ctl_conn *conn, int argc, const char *argv[],
                void *h_)
{
    struct host *h = h_;
    json_t *j = host_status_json(h);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    ctl_command_reply(conn, text);
    free(text);
    json_decref(j);
}

/* Renders every counter and gauge of host/status, transfer/list, ctl/stats
 * and each channel's channel/show as Prometheus text (a new string owned by the caller), for
 * host/metrics and --metrics. */
static char *
render_metrics(void *h_)
{
    struct host *h = h_;
    long long now = time_msec();
    struct metrics *m = metrics_create();
    json_t *status = host_status_json(h);
    json_t *transfer = transfer_status_json(h->transfer, now);
    host_metrics_add_status(m, status, transfer, h->chassis);
    json_decref(transfer);
    json_decref(status);
    struct metrics_labels labels = { 0 };
    metrics_labels_add(&labels, "chassis", h->chassis);
    metrics_add_ctl(m, "chand_host", h->ctl, &labels);
    for (size_t i = 0; i < h->n_channels; i++) {
        const struct channel *ch = h->channels[i];
        json_t *j = channel_to_json(ch, now);
        json_t *lane = transfer_lane_json(h->transfer, channel_vm(ch), now);
        json_object_set_new(j, "transfer", lane ? lane : json_null());
        host_metrics_add_channel(m, j, h->chassis, channel_latency(ch));
        json_decref(j);
    }
    char *text = metrics_render(m);
    metrics_destroy(m);
    return text;
}

static void
ctl_host_metrics(struct ctl_conn *conn, int argc, const char *argv[],
                 void *h_)
{
    char *text = render_metrics(h_);

    (void) argc;
    (void) argv;
    ctl_command_reply(conn, text);
    free(text);
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
    ctl_command_register("host/metrics", "", 0, 0, ctl_host_metrics, h);
    ctl_command_register("object/delink", "VM", 1, 1, ctl_object_delink, h);
    ctl_command_register("object/fetch", "VM DIGEST [SIZE]", 2, 3,
                         ctl_object_fetch, h);
    ctl_command_register("object/fetch-status", "DIGEST", 1, 1,
                         ctl_object_fetch_status, h);
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
    h->db = chandb_create(opts->chan_db, opts->monitor);
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
    h->autoid = autoid_create();
    h->of = ofconn_create_packet(h->target, packet_in, h);
    h->inj = inject_create(opts->inject, opts->bridge, opts->chand_port,
                           opts->ovs_rundir, port_recv, h);
    h->down = json_object();
    hmap_init(&h->claims);
    h->next_claim_check = LLONG_MAX;
    h->status_wanted = json_object();
    h->status_pending = json_object();
    h->counters = json_object();
    h->vlan_limit = -1;
    hmap_init(&h->by_chan_id);
    hmap_init(&h->by_vm);
    if (opts->metrics) {
        char *error;
        if (metrics_http_create(opts->metrics, render_metrics, h, &h->http,
                                &error)) {
            VLOG_ERR("%s", error);
            free(error);
            host_destroy(h);
            return NULL;
        }
        VLOG_INFO("serving metrics on http://%s/metrics", opts->metrics);
    }
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
        free(h->refs[i]);
    }
    free(h->channels);
    free(h->due);
    free(h->ran);
    free(h->refs);
    hmap_destroy(&h->by_chan_id);
    hmap_destroy(&h->by_vm);
    transfer_destroy(h->transfer);
    metrics_http_destroy(h->http);
    ctl_server_destroy(h->ctl);
    inject_destroy(h->inj);
    ofconn_destroy(h->of);
    chandb_destroy(h->db);
    ovsdb_replica_destroy(h->ovs);
    autoid_destroy(h->autoid);
    flowmgr_destroy(h->fm);
    json_decref(h->down);
    struct vm_claim *c;
    HMAP_FOR_EACH_SAFE (c, node, &h->claims) {
        hmap_remove(&h->claims, &c->node);
        free(c->vm);
        free(c->holder);
        free(c);
    }
    hmap_destroy(&h->claims);
    json_decref(h->status_wanted);
    json_decref(h->status_pending);
    json_decref(h->counters);
    free(h->chassis);
    free(h->fail_mode);
    free(h->target);
    free(h);
}

/* Gives channel 'i' the keys of its VM's desired state that changed:
 * 'all' (may be NULL) those of every VM, 'own' (may be NULL) its own. */
static void
pass_channel_changes(struct host *h, size_t i, const json_t *all,
                     const json_t *own, long long now, long long seen_us)
{
    struct channel *ch = h->channels[i];
    const json_t *desired = chandb_desired(h->db, channel_vm(ch));
    if (all && own) {
        json_t *both = json_copy((json_t *) all);
        json_object_update(both, (json_t *) own);
        channel_set_desired(ch, desired, both, now, seen_us);
        json_decref(both);
    } else {
        channel_set_desired(ch, desired, all ? all : own, now, seen_us);
    }
    h->due[i] = 0;
}

/* Passes the Chan DB's desired-state changes on to the channels concerned:
 * all of them for a record of every VM, otherwise only those of the VMs
 * whose records changed. */
static void
pass_desired_changes(struct host *h, long long now, long long seen_us)
{
    if (chandb_desired_changed_all(h->db)) {
        for (size_t i = 0; i < h->n_channels; i++) {
            struct channel *ch = h->channels[i];
            channel_set_desired(ch, chandb_desired(h->db, channel_vm(ch)),
                                NULL, now, seen_us);
            h->due[i] = 0;
        }
    } else {
        const json_t *changes = chandb_desired_changes(h->db);
        const json_t *all = json_object_get(changes, "");
        if (all) {
            for (size_t i = 0; i < h->n_channels; i++) {
                const char *vm = channel_vm(h->channels[i]);
                pass_channel_changes(h, i, all, json_object_get(changes, vm),
                                     now, seen_us);
            }
        } else {
            const char *vm;
            json_t *keys;
            json_object_foreach ((json_t *) changes, vm, keys) {
                const struct chan_ref *ref = ref_by_vm(h, vm);
                if (ref) {
                    pass_channel_changes(h, ref->idx, NULL, keys, now,
                                         seen_us);
                }
            }
        }
    }
    chandb_desired_changes_clear(h->db);
}

/* Passes on to the channels which of their Channel rows are committed in
 * the Chan DB (the last stage of their latency histograms). */
static void
note_rows_committed(struct host *h)
{
    json_t *committed = chandb_take_committed(h->db);
    if (committed) {
        long long now_us = time_usec();
        const char *vm;
        json_t *mark;
        json_object_foreach (committed, vm, mark) {
            struct channel *ch = find_by_vm(h, vm);
            if (ch) {
                channel_db_committed(ch, json_integer_value(mark), now_us);
            }
        }
        json_decref(committed);
    }
}

void
host_run(struct host *h)
{
    long long now = time_msec();
    long long seen_us = time_usec();    /* Changes read in this turn. */

    ovsdb_replica_run(h->ovs);
    chandb_run(h->db);
    note_rows_committed(h);
    ofconn_run(h->of);
    ctl_server_run(h->ctl);
    if (h->http) {
        metrics_http_run(h->http);
    }
    inject_run(h->inj, h->ovs, now);

    /* Channels are (re)computed once both databases are in sync: a new
     * channel needs the Chan DB for its desired state and for what a
     * previous run left there. */
    uint64_t ovs_seqno = ovsdb_replica_get_seqno(h->ovs);
    uint64_t claims_seqno = chandb_get_claims_seqno(h->db);
    uint64_t autoid_seqno = autoid_get_seqno(h->autoid);
    if ((ovs_seqno != h->ovs_seqno
         || claims_seqno != h->claims_seqno
         || autoid_seqno != h->autoid_seqno
         || now >= h->next_claim_check
         || inject_ofport(h->inj) != h->inject_ofport
         || inject_max_mtu(h->inj) != h->inject_mtu)
        && ovsdb_replica_is_synced(h->ovs)
        && chandb_is_connected(h->db)) {
        h->ovs_seqno = ovs_seqno;
        h->claims_seqno = claims_seqno;
        h->autoid_seqno = autoid_seqno;
        ovsdb_replica_track_clear(h->ovs);
        check_vlan_limit(h);
        check_fail_mode(h);
        update_chassis(h);
        chandb_set_chassis(h->db, h->chassis);
        reprovision(h, now);
        h->provisioned = true;
        h->installed_dirty = true;
        json_object_clear(h->status_pending);
        h->statuses_dirty = true;
    }
    sync_flows(h, now);
    write_statuses(h);

    uint64_t db_seqno = chandb_get_seqno(h->db);
    if (db_seqno != h->db_seqno) {
        h->db_seqno = db_seqno;
        pass_desired_changes(h, now, seen_us);
    }
    uint64_t limits_seqno = chandb_get_limits_seqno(h->db);
    if (limits_seqno != h->limits_seqno) {
        h->limits_seqno = limits_seqno;
        for (size_t i = 0; i < h->n_channels; i++) {
            set_guest_limits(h, h->channels[i]);
            h->due[i] = 0;
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
            h->due[i] = 0;
        }
    }
    for (size_t i = 0; i < h->n_channels; i++) {
        if (now >= h->due[i]) {
            struct channel *ch = h->channels[i];
            channel_run(ch, now);
            write_upstream(h, ch, now);
            h->due[i] = channel_next_deadline(ch, now);
            h->ran[i] = true;
        }
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
    if (h->http) {
        metrics_http_wait(h->http);
    }
    flowmgr_wait(h->fm);
    transfer_wait(h->transfer, now);
    if (flowmgr_is_connected(h->fm)) {
        poll_timer_wait_until(h->next_flow_check);
    }
    if (h->n_channels) {
        poll_timer_wait_until(h->next_db_write);
    }
    poll_timer_wait_until(h->next_claim_check);
    long long due = LLONG_MAX;
    for (size_t i = 0; i < h->n_channels; i++) {
        due = h->due[i] < due ? h->due[i] : due;
        if (h->ran[i]) {
            long long prompt = channel_db_prompt_due(h->channels[i]);
            due = prompt < due ? prompt : due;
        }
    }
    poll_timer_wait_until(due);
}

bool
host_exiting(const struct host *h)
{
    return h->exiting;
}
