/* ofctrl: a bridge's chand flows and meters, kept right over OpenFlow.  See
 * ofctrl.h. */

#include <config.h>
#include "ofctrl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ofconn.h"
#include "ofp13-flow.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(ofctrl);

/* The connection may queue this much: a whole sync of thousands of flows
 * goes out at once. */
#define OFCTRL_TX_MAX (256u * 1024 * 1024)

/* Bundle ids are per connection; one bundle is open at a time. */
#define OFCTRL_BUNDLE_ID 1

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(20, 50);

enum ofctrl_state {
    S_IDLE,
    S_DUMP,                     /* Waiting for the three dumps. */
    S_BUNDLE,                   /* Bundle filled, waiting for the barrier
                                 * that says whether every message was
                                 * accepted. */
    S_BARRIER,                  /* Commit (or discard) sent, waiting for
                                 * the last barrier. */
};

/* What a message of a sync is about, to explain an error. */
enum source_kind {
    SRC_DUMP,                   /* A statistics request. */
    SRC_METER_ADD,
    SRC_METER_MODIFY,
    SRC_METER_DELETE,
    SRC_BUNDLE,                 /* Bundle open or commit. */
    SRC_FLOW_DELETE,            /* 'index': into 'deletes'. */
    SRC_FLOW_ADD,               /* 'index': into 'wanted'. */
    SRC_BARRIER,
};

struct source {
    enum source_kind kind;
    size_t index;               /* Flow index, or meter id. */
};

/* Dumps a sync waits for. */
#define DUMP_FLOWS 1
#define DUMP_METER_STATS 2
#define DUMP_METER_CONFIG 4

struct meter_seen {
    uint32_t meter_id;
    bool configured;            /* In the meter config dump. */
    uint32_t rate, burst;
    uint16_t flags;
    uint64_t drops;
};

struct ofctrl {
    char *target;
    char *source;
    enum ofctrl_scope scope;
    uint32_t meter_min, meter_max;
    struct ofconn *conn;
    uint64_t n_errors;

    /* The sync in progress. */
    enum ofctrl_state state;
    unsigned int conn_seqno;    /* Connection it runs on. */
    long long deadline;
    struct flow_template_flows wanted;
    struct ofctrl_meter *meters;
    size_t n_meters;
    unsigned int dumps;         /* DUMP_* still expected. */
    uint32_t dump_xid;          /* First of the three dump xids. */
    uint64_t *deletes;          /* Cookies to delete. */
    size_t n_deletes;
    uint32_t xid_base;          /* Xid of 'sources[0]'. */
    struct source *sources;
    size_t n_sources, sources_cap;
    uint32_t barrier_xid;
    size_t sync_errors;
    size_t n_del, n_add;        /* Flow changes sent. */

    /* Result of the last sync, until taken. */
    bool has_result;
    int result;

    /* The last dump. */
    struct flow_packets *stats;
    size_t n_stats, stats_cap;
    struct meter_seen *seen;    /* Meters of the dump in progress. */
    size_t n_seen, seen_cap;
    struct meter_seen *drops;   /* Meters of the last complete dump. */
    size_t n_drops;
};

static void handle_msg(const uint8_t *msg, size_t len, void *ofctrl_);

struct ofctrl *
ofctrl_create(const char *target, const char *source,
              enum ofctrl_scope scope, uint32_t meter_min, uint32_t meter_max)
{
    struct ofctrl *oc = xcalloc(1, sizeof *oc);
    oc->target = xstrdup(target);
    oc->source = xstrdup(source);
    oc->scope = scope;
    oc->meter_min = meter_min;
    oc->meter_max = meter_max;
    oc->conn = ofconn_create(target, handle_msg, oc, OFCTRL_TX_MAX);
    /* No echo requests, as ovn-controller on its br-int connection: a sync
     * of thousands of flows and meters keeps ovs-vswitchd from answering
     * them for longer than a probe interval, and a connection dropped for
     * that throws the sync away, again and again.  A sync has its own
     * deadline (ofctrl_sync()), and a dead ovs-vswitchd closes the
     * socket. */
    ofconn_set_probe_interval(oc->conn, 0);
    flow_template_flows_init(&oc->wanted);
    return oc;
}

static void
clear_sync(struct ofctrl *oc)
{
    flow_template_flows_destroy(&oc->wanted);
    free(oc->meters);
    oc->meters = NULL;
    oc->n_meters = 0;
    free(oc->deletes);
    oc->deletes = NULL;
    oc->n_deletes = 0;
    free(oc->sources);
    oc->sources = NULL;
    oc->n_sources = oc->sources_cap = 0;
    oc->state = S_IDLE;
}

void
ofctrl_destroy(struct ofctrl *oc)
{
    if (oc) {
        clear_sync(oc);
        ofconn_destroy(oc->conn);
        free(oc->stats);
        free(oc->seen);
        free(oc->drops);
        free(oc->target);
        free(oc->source);
        free(oc);
    }
}

/* Ends the sync in progress with 'error'. */
static void
finish_sync(struct ofctrl *oc, int error)
{
    clear_sync(oc);
    oc->has_result = true;
    oc->result = error;
}

static int
compare_stat(const void *a_, const void *b_)
{
    const struct flow_packets *a = a_, *b = b_;
    return a->cookie < b->cookie ? -1 : a->cookie > b->cookie;
}

static int
compare_cookie(const void *a_, const void *b_)
{
    const uint64_t *a = a_, *b = b_;
    return *a < *b ? -1 : *a > *b;
}

static bool
cookie_installed(const struct ofctrl *oc, uint64_t cookie)
{
    struct flow_packets key = { .cookie = cookie };
    return oc->n_stats && bsearch(&key, oc->stats, oc->n_stats, sizeof key,
                                  compare_stat);
}

static const struct meter_seen *
find_meter(const struct meter_seen *meters, size_t n, uint32_t meter_id)
{
    for (size_t i = 0; i < n; i++) {
        if (meters[i].meter_id == meter_id) {
            return &meters[i];
        }
    }
    return NULL;
}

static struct meter_seen *
see_meter(struct ofctrl *oc, uint32_t meter_id)
{
    struct meter_seen *m = (struct meter_seen *) find_meter(oc->seen,
                                                            oc->n_seen,
                                                            meter_id);
    if (!m) {
        if (oc->n_seen >= oc->seen_cap) {
            oc->seen_cap = oc->seen_cap ? 2 * oc->seen_cap : 64;
            oc->seen = xrealloc(oc->seen, oc->seen_cap * sizeof *oc->seen);
        }
        m = &oc->seen[oc->n_seen++];
        *m = (struct meter_seen) { .meter_id = meter_id };
    }
    return m;
}

/* Gives the next message of the sync a fresh xid and remembers that it is
 * about 'kind' and 'index'.  Returns the xid.  Only this module takes xids
 * from its connection, so a sync's xids are consecutive from 'xid_base'. */
static uint32_t
add_source(struct ofctrl *oc, enum source_kind kind, size_t index)
{
    if (oc->n_sources >= oc->sources_cap) {
        oc->sources_cap = oc->sources_cap ? 2 * oc->sources_cap : 256;
        oc->sources = xrealloc(oc->sources,
                               oc->sources_cap * sizeof *oc->sources);
    }
    uint32_t xid = ofconn_alloc_xids(oc->conn, 1);
    if (!oc->n_sources) {
        oc->xid_base = xid;
    }
    oc->sources[oc->n_sources++] = (struct source) { kind, index };
    return xid;
}

static int
send_msg(struct ofctrl *oc, const void *msg, size_t len)
{
    int error = ofconn_send(oc->conn, msg, len);
    if (error) {
        VLOG_WARN_RL(&rl, "%s: cannot queue OpenFlow message (%s)",
                     oc->target, strerror(error));
    }
    return error;
}

static int
send_meter_mod(struct ofctrl *oc, enum ofp13_meter_mod_command command,
               uint32_t meter_id, uint32_t rate, uint32_t burst)
{
    static const enum source_kind kinds[] = {
        [OFP13_MC_ADD] = SRC_METER_ADD, [OFP13_MC_MODIFY] = SRC_METER_MODIFY,
        [OFP13_MC_DELETE] = SRC_METER_DELETE,
    };
    uint8_t buf[64];
    size_t len;
    uint32_t xid = add_source(oc, kinds[command], meter_id);
    ofp13_encode_meter_mod(buf, sizeof buf, &len, xid, command, meter_id,
                           rate, burst);
    return send_msg(oc, buf, len);
}

/* Step 2: creates missing meters and corrects the rate of others. */
static int
send_meter_changes(struct ofctrl *oc)
{
    int error = 0;
    for (size_t i = 0; i < oc->n_meters && !error; i++) {
        const struct ofctrl_meter *m = &oc->meters[i];
        const struct meter_seen *s = find_meter(oc->seen, oc->n_seen,
                                                m->meter_id);
        if (!s || !s->configured) {
            error = send_meter_mod(oc, OFP13_MC_ADD, m->meter_id, m->rate,
                                   m->burst);
        } else if (s->rate != m->rate || s->burst != m->burst
                   || s->flags != (OFP13_MF_PKTPS | OFP13_MF_BURST
                                   | OFP13_MF_STATS)) {
            error = send_meter_mod(oc, OFP13_MC_MODIFY, m->meter_id, m->rate,
                                   m->burst);
        }
    }
    return error;
}

static bool
meter_wanted(const struct ofctrl *oc, uint32_t meter_id)
{
    for (size_t i = 0; i < oc->n_meters; i++) {
        if (oc->meters[i].meter_id == meter_id) {
            return true;
        }
    }
    return false;
}

/* Step 4: deletes the caller's meters nobody wants. */
static int
send_meter_deletes(struct ofctrl *oc)
{
    int error = 0;
    for (size_t i = 0; i < oc->n_seen && !error; i++) {
        uint32_t id = oc->seen[i].meter_id;
        if (id >= oc->meter_min && id <= oc->meter_max
            && !meter_wanted(oc, id)) {
            error = send_meter_mod(oc, OFP13_MC_DELETE, id, 0, 0);
        }
    }
    return error;
}

static int
send_bundle_ctrl(struct ofctrl *oc, enum ofp13_bundle_ctrl_type type)
{
    uint8_t buf[32];
    size_t len;
    uint32_t xid = add_source(oc, SRC_BUNDLE, type);
    ofp13_encode_bundle_ctrl(buf, sizeof buf, &len, xid, OFCTRL_BUNDLE_ID,
                             type, OFP13_BF_ATOMIC | OFP13_BF_ORDERED);
    return send_msg(oc, buf, len);
}

/* Wraps the FLOW_MOD 'inner' ('inner_len' bytes, xid 'xid') in a bundle
 * add and sends it. */
static int
send_bundled(struct ofctrl *oc, uint32_t xid, const uint8_t *inner,
             size_t inner_len)
{
    uint8_t buf[OFP13_MAX_MSG_LEN];
    size_t len;
    int error = ofp13_encode_bundle_add(buf, sizeof buf, &len, xid,
                                        OFCTRL_BUNDLE_ID,
                                        OFP13_BF_ATOMIC | OFP13_BF_ORDERED,
                                        inner, inner_len);
    return error ? EMSGSIZE : send_msg(oc, buf, len);
}

static int
send_flow_delete(struct ofctrl *oc, size_t i)
{
    uint8_t buf[128];
    size_t len;
    uint32_t xid = add_source(oc, SRC_FLOW_DELETE, i);
    ofp13_encode_flow_delete(buf, sizeof buf, &len, xid, oc->deletes[i],
                             UINT64_MAX);
    return send_bundled(oc, xid, buf, len);
}

static int
send_flow_add(struct ofctrl *oc, size_t i)
{
    const struct flow_template_flow *f = &oc->wanted.flows[i];
    struct ofp13_flow flow;
    char err[128];
    uint8_t buf[1024];
    size_t len;

    if (ofp13_flow_parse(f->text, &flow, err, sizeof err)) {
        VLOG_WARN_RL(&rl, "%s:%u: %s: %s", oc->source, f->line, err,
                     f->text);
        oc->sync_errors++;
        return EINVAL;
    }
    uint32_t xid = add_source(oc, SRC_FLOW_ADD, i);
    if (ofp13_encode_flow_add(buf, sizeof buf, &len, xid, f->cookie,
                              &flow)) {
        return EMSGSIZE;
    }
    return send_bundled(oc, xid, buf, len);
}

/* Step 3: opens a bundle and fills it with the flow changes (nothing if
 * nothing changes).  Stores the number of deletes and adds in '*n_delp' and
 * '*n_addp'.  The switch checks each message as it is added and rejects a
 * bad one alone, so the caller commits only after a barrier shows that none
 * was rejected. */
static int
send_flow_changes(struct ofctrl *oc, size_t *n_delp, size_t *n_addp)
{
    uint64_t *wanted = xmalloc((oc->wanted.n + 1) * sizeof *wanted);
    for (size_t i = 0; i < oc->wanted.n; i++) {
        wanted[i] = oc->wanted.flows[i].cookie;
    }
    qsort(wanted, oc->wanted.n, sizeof *wanted, compare_cookie);

    oc->deletes = xmalloc((oc->n_stats + 1) * sizeof *oc->deletes);
    for (size_t i = 0; i < oc->n_stats; i++) {
        uint64_t c = oc->stats[i].cookie;
        if (!bsearch(&c, wanted, oc->wanted.n, sizeof c, compare_cookie)
            && (!oc->n_deletes || oc->deletes[oc->n_deletes - 1] != c)) {
            oc->deletes[oc->n_deletes++] = c;
        }
    }
    free(wanted);

    size_t n_add = 0;
    for (size_t i = 0; i < oc->wanted.n; i++) {
        n_add += !cookie_installed(oc, oc->wanted.flows[i].cookie);
    }
    *n_delp = oc->n_deletes;
    *n_addp = n_add;
    if (!oc->n_deletes && !n_add) {
        return 0;
    }

    int error = send_bundle_ctrl(oc, OFP13_BCT_OPEN_REQUEST);
    for (size_t i = 0; i < oc->n_deletes && !error; i++) {
        error = send_flow_delete(oc, i);
    }
    for (size_t i = 0; i < oc->wanted.n && !error; i++) {
        if (!cookie_installed(oc, oc->wanted.flows[i].cookie)) {
            error = send_flow_add(oc, i);
        }
    }
    return error;
}

static int
send_barrier(struct ofctrl *oc)
{
    uint8_t buf[16];
    size_t len;
    oc->barrier_xid = add_source(oc, SRC_BARRIER, 0);
    ofp13_encode_simple(buf, sizeof buf, &len, OFP13_BARRIER_REQUEST,
                        oc->barrier_xid);
    return send_msg(oc, buf, len);
}

/* Sends the end of the sync: the meters nobody wants (step 4) and the
 * last barrier (step 5). */
static void
send_finish(struct ofctrl *oc)
{
    int error = send_meter_deletes(oc);
    if (!error) {
        error = send_barrier(oc);
    }
    if (error) {
        finish_sync(oc, error);
        return;
    }
    oc->state = S_BARRIER;
}

/* The dumps are complete: sends steps 2 and 3, then a barrier; if there is
 * a bundle, the commit waits for that barrier (see bundle_checked()). */
static void
send_changes(struct ofctrl *oc)
{
    size_t n_del = 0, n_add = 0;

    if (oc->n_stats) {          /* qsort() wants a non-null array. */
        qsort(oc->stats, oc->n_stats, sizeof *oc->stats, compare_stat);
    }
    free(oc->drops);
    oc->drops = xmalloc((oc->n_seen + 1) * sizeof *oc->drops);
    if (oc->n_seen) {           /* memcpy() wants a non-null source. */
        memcpy(oc->drops, oc->seen, oc->n_seen * sizeof *oc->seen);
    }
    oc->n_drops = oc->n_seen;

    int error = send_meter_changes(oc);
    if (!error) {
        error = send_flow_changes(oc, &n_del, &n_add);
    }
    if (error) {
        finish_sync(oc, error == EINVAL ? EPROTO : error);
        return;
    }
    oc->n_del = n_del;
    oc->n_add = n_add;
    if (!n_del && !n_add) {
        send_finish(oc);
    } else if (send_barrier(oc)) {
        finish_sync(oc, ENOBUFS);
    } else {
        oc->state = S_BUNDLE;
    }
}

/* The barrier after the bundle's messages came back: commits the bundle if
 * the switch accepted every message so far, otherwise discards it, so the
 * flows change all at once or not at all. */
static void
bundle_checked(struct ofctrl *oc)
{
    if (oc->sync_errors) {
        if (send_bundle_ctrl(oc, OFP13_BCT_DISCARD_REQUEST)
            || send_barrier(oc)) {
            finish_sync(oc, ENOBUFS);
        } else {
            oc->state = S_BARRIER;
        }
    } else if (send_bundle_ctrl(oc, OFP13_BCT_COMMIT_REQUEST)) {
        finish_sync(oc, ENOBUFS);
    } else {
        send_finish(oc);
    }
}

/* True if the caller has meters: syncs then read and fix the bridge's. */
static bool
has_meters(const struct ofctrl *oc)
{
    return oc->meter_min <= oc->meter_max;
}

/* Sends the request for the meter statistics or configuration ('type'),
 * with xid 'xid'. */
static int
send_meter_dump(struct ofctrl *oc, uint16_t type,
                uint32_t xid)
{
    uint8_t buf[64];
    size_t len;

    ofp13_encode_meter_request(buf, sizeof buf, &len, xid, type,
                               OFP13_METER_ALL);
    return send_msg(oc, buf, len);
}

/* Step 1. */
static int
send_dumps(struct ofctrl *oc)
{
    bool all = oc->scope == OFCTRL_ALL_FLOWS;
    uint8_t buf[128];
    size_t len;
    int error;

    oc->dump_xid = add_source(oc, SRC_DUMP, DUMP_FLOWS);
    add_source(oc, SRC_DUMP, DUMP_METER_STATS);
    add_source(oc, SRC_DUMP, DUMP_METER_CONFIG);
    ofp13_encode_flow_stats_request(buf, sizeof buf, &len, oc->dump_xid,
                                    all ? 0 : FLOW_TEMPLATE_COOKIE_TAG,
                                    all ? 0 : FLOW_TEMPLATE_COOKIE_MASK);
    error = send_msg(oc, buf, len);
    oc->dumps = DUMP_FLOWS;
    if (has_meters(oc)) {
        if (!error) {
            error = send_meter_dump(oc, OFP13_MP_METER, oc->dump_xid + 1);
        }
        if (!error) {
            error = send_meter_dump(oc, OFP13_MP_METER_CONFIG,
                                    oc->dump_xid + 2);
        }
        oc->dumps |= DUMP_METER_STATS | DUMP_METER_CONFIG;
    }
    oc->n_stats = 0;
    oc->n_seen = 0;
    return error;
}

int
ofctrl_sync_start(struct ofctrl *oc, const struct flow_template_flows *flows,
                  const struct ofctrl_meter *meters, size_t n_meters,
                  long long deadline)
{
    if (oc->state != S_IDLE) {
        return EBUSY;
    }
    oc->has_result = false;
    if (!ofconn_is_ready(oc->conn)) {
        finish_sync(oc, ENOTCONN);
        return 0;
    }
    for (size_t i = 0; i < flows->n; i++) {
        const struct flow_template_flow *f = &flows->flows[i];
        if (oc->wanted.n >= oc->wanted.allocated) {
            oc->wanted.allocated = oc->wanted.allocated
                                   ? 2 * oc->wanted.allocated : 64;
            oc->wanted.flows = xrealloc(oc->wanted.flows,
                                        oc->wanted.allocated
                                        * sizeof *oc->wanted.flows);
        }
        oc->wanted.flows[oc->wanted.n] = *f;
        oc->wanted.flows[oc->wanted.n++].text = xstrdup(f->text);
    }
    oc->meters = xmalloc((n_meters + 1) * sizeof *oc->meters);
    if (n_meters) {
        memcpy(oc->meters, meters, n_meters * sizeof *meters);
    }
    oc->n_meters = n_meters;
    oc->deadline = deadline;
    oc->conn_seqno = ofconn_get_seqno(oc->conn);
    oc->sync_errors = 0;
    oc->state = S_DUMP;
    int error = send_dumps(oc);
    if (error) {
        finish_sync(oc, error);
    }
    return 0;
}

/* Describes message 'xid' of the sync for an error message. */
static void
log_error(struct ofctrl *oc, uint32_t xid, const char *error)
{
    size_t i = xid - oc->xid_base;
    if (xid < oc->xid_base || i >= oc->n_sources) {
        VLOG_WARN_RL(&rl, "%s: switch reports error %s (xid %"PRIu32")",
                     oc->target, error, xid);
        return;
    }
    const struct source *s = &oc->sources[i];
    const struct flow_template_flow *f;
    switch (s->kind) {
    case SRC_FLOW_ADD:
        f = &oc->wanted.flows[s->index];
        VLOG_WARN_RL(&rl, "%s:%u: %s: switch refused flow: %s", oc->source,
                     f->line, error, f->text);
        break;
    case SRC_FLOW_DELETE:
        VLOG_WARN_RL(&rl, "%s: %s: switch refused to delete flows with "
                     "cookie %#"PRIx64, oc->target, error,
                     oc->deletes[s->index]);
        break;
    case SRC_METER_ADD:
    case SRC_METER_MODIFY:
    case SRC_METER_DELETE:
        VLOG_WARN_RL(&rl, "%s: %s: switch refused to %s meter %zu",
                     oc->target, error,
                     s->kind == SRC_METER_ADD ? "add"
                     : s->kind == SRC_METER_MODIFY ? "modify" : "delete",
                     s->index);
        break;
    case SRC_BUNDLE:
        VLOG_WARN_RL(&rl, "%s: %s: bundle %s failed; the flows are left as "
                     "they were", oc->target, error,
                     s->index == OFP13_BCT_OPEN_REQUEST ? "open"
                     : s->index == OFP13_BCT_DISCARD_REQUEST ? "discard"
                     : "commit");
        break;
    case SRC_DUMP:
    case SRC_BARRIER:
    default:
        VLOG_WARN_RL(&rl, "%s: %s: switch refused a request", oc->target,
                     error);
        break;
    }
}

static void
handle_error(struct ofctrl *oc, const uint8_t *msg, size_t len)
{
    struct ofp13_error_msg err;
    if (ofp13_decode_error(msg, len, &err)) {
        VLOG_WARN_RL(&rl, "%s: undecodable ERROR message", oc->target);
        return;
    }
    oc->n_errors++;
    char name[96];
    if (err.type == 0xffff) {
        snprintf(name, sizeof name, "experimenter %#"PRIx32" error %u",
                 err.experimenter, err.code);
    } else {
        snprintf(name, sizeof name, "%s",
                 ofp13_error_string(err.type, err.code));
    }
    log_error(oc, err.xid, name);
    if (oc->state != S_IDLE) {
        size_t i = err.xid - oc->xid_base;
        if (err.xid >= oc->xid_base && i < oc->n_sources) {
            oc->sync_errors++;
            if (oc->sources[i].kind == SRC_DUMP) {
                finish_sync(oc, EPROTO);
            }
        }
    }
}

/* Takes one part of a dump. */
static void
handle_multipart(struct ofctrl *oc, const uint8_t *msg, size_t len)
{
    struct ofp13_multipart mp;
    size_t ofs = 0;
    int error;

    if (oc->state != S_DUMP || ofp13_decode_multipart_reply(msg, len, &mp)
        || mp.xid < oc->dump_xid || mp.xid > oc->dump_xid + 2) {
        return;
    }
    unsigned int which = 1u << (mp.xid - oc->dump_xid);
    if (mp.type == OFP13_MP_FLOW) {
        struct ofp13_flow_stats fs;
        while (!(error = ofp13_next_flow_stats(&mp, &ofs, &fs))) {
            if (oc->n_stats >= oc->stats_cap) {
                oc->stats_cap = oc->stats_cap ? 2 * oc->stats_cap : 256;
                oc->stats = xrealloc(oc->stats,
                                     oc->stats_cap * sizeof *oc->stats);
            }
            oc->stats[oc->n_stats++] = (struct flow_packets) {
                fs.cookie, fs.packets };
        }
    } else if (mp.type == OFP13_MP_METER) {
        struct ofp13_meter_stats ms;
        while (!(error = ofp13_next_meter_stats(&mp, &ofs, &ms))) {
            see_meter(oc, ms.meter_id)->drops = ms.band_packets;
        }
    } else if (mp.type == OFP13_MP_METER_CONFIG) {
        struct ofp13_meter_config mc;
        while (!(error = ofp13_next_meter_config(&mp, &ofs, &mc))) {
            struct meter_seen *m = see_meter(oc, mc.meter_id);
            m->configured = true;
            m->flags = mc.flags;
            m->rate = mc.n_bands == 1 && mc.band_type == OFP13_MBT_DROP
                      ? mc.rate : 0;
            m->burst = mc.burst;
        }
    } else {
        error = OFP13_E_BAD_TYPE;
    }
    if (error > 0) {
        VLOG_WARN_RL(&rl, "%s: bad statistics reply (%s)", oc->target,
                     ofp13_strerror(error));
        finish_sync(oc, EPROTO);
        return;
    }
    if (!mp.more) {
        oc->dumps &= ~which;
        if (!oc->dumps) {
            send_changes(oc);
        }
    }
}

static void
handle_barrier_reply(struct ofctrl *oc, const uint8_t *msg, size_t len)
{
    uint32_t xid;
    if (ofp13_decode_simple(msg, len, OFP13_BARRIER_REPLY, &xid)
        || xid != oc->barrier_xid) {
        return;
    }
    if (oc->state == S_BUNDLE) {
        bundle_checked(oc);
    } else if (oc->state == S_BARRIER) {
        if (!oc->sync_errors && (oc->n_del || oc->n_add)) {
            VLOG_INFO("%s: flows synced: %zu removed, %zu added, %zu chand "
                      "flows in all", oc->target, oc->n_del, oc->n_add,
                      oc->wanted.n);
        } else if (oc->sync_errors) {
            VLOG_WARN("%s: flow sync failed: the switch refused %zu "
                      "message(s), logged above", oc->target,
                      oc->sync_errors);
        }
        finish_sync(oc, oc->sync_errors ? EPROTO : 0);
    }
}

static void
handle_msg(const uint8_t *msg, size_t len, void *ofctrl_)
{
    struct ofctrl *oc = ofctrl_;
    struct ofp13_header h;

    ofp13_decode_header(msg, len, &h);
    switch (h.type) {
    case OFP13_ERROR:
        handle_error(oc, msg, len);
        break;
    case OFP13_MULTIPART_REPLY:
        handle_multipart(oc, msg, len);
        break;
    case OFP13_BARRIER_REPLY:
        handle_barrier_reply(oc, msg, len);
        break;
    default:
        /* Bundle replies (a failed commit also sends an ERROR), port
         * status: nothing to do. */
        break;
    }
}

void
ofctrl_run(struct ofctrl *oc, long long now)
{
    ofconn_run(oc->conn);
    if (oc->state == S_IDLE) {
        return;
    }
    if (ofconn_get_seqno(oc->conn) != oc->conn_seqno) {
        VLOG_WARN_RL(&rl, "%s: connection lost during a flow sync",
                     oc->target);
        finish_sync(oc, ENOTCONN);
    } else if (now >= oc->deadline) {
        VLOG_WARN("%s: flow sync took too long, stopped", oc->target);
        finish_sync(oc, ETIMEDOUT);
    }
}

void
ofctrl_wait(const struct ofctrl *oc)
{
    ofconn_wait(oc->conn);
    if (oc->state != S_IDLE) {
        poll_timer_wait_until(oc->deadline);
    }
    if (oc->has_result) {
        poll_immediate_wake();
    }
}

bool
ofctrl_is_connected(const struct ofctrl *oc)
{
    return ofconn_is_ready(oc->conn);
}

unsigned int
ofctrl_get_seqno(const struct ofctrl *oc)
{
    return ofconn_get_seqno(oc->conn);
}

bool
ofctrl_is_syncing(const struct ofctrl *oc)
{
    return oc->state != S_IDLE;
}

bool
ofctrl_sync_result(struct ofctrl *oc, int *errorp)
{
    if (!oc->has_result) {
        return false;
    }
    oc->has_result = false;
    *errorp = oc->result;
    return true;
}

const struct flow_packets *
ofctrl_flow_stats(const struct ofctrl *oc, size_t *n)
{
    *n = oc->n_stats;
    return oc->stats;
}

uint64_t
ofctrl_meter_drops(const struct ofctrl *oc, uint32_t meter_id)
{
    const struct meter_seen *m = find_meter(oc->drops, oc->n_drops,
                                            meter_id);
    return m ? m->drops : 0;
}

uint64_t
ofctrl_n_errors(const struct ofctrl *oc)
{
    return oc->n_errors;
}
