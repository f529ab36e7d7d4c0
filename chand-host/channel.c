/* Copyright (c) 2026 The chand authors.  See channel.h. */

#include <config.h>
#include "channel.h"
#include "upstream.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "chan-mtu.h"
#include "chan-sender.h"
#include "chan-wire.h"
#include "chandb.h"
#include "packets.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(channel);

#define HEARTBEAT_MS 1000       /* Idle interval between heartbeats. */
#define TIMER_SLACK_MS 250      /* Heartbeats and SYNC repeats are due on
                                 * this grid, so that many channels' timers
                                 * share one wakeup. */
#define SYNC_RETRY_MS 1000      /* SYNC repeated until acknowledged. */
#define DEAD_MS 5000            /* Silence after which a channel is
                                 * degraded. */
#define DEGRADED_TIMEOUTS 5     /* Retransmission timeouts in a row. */

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(20, 40);

enum session {
    SESSION_NONE,               /* No HELLO seen in this epoch. */
    SESSION_SYNCING,            /* SYNC sent, not yet acknowledged. */
    SESSION_ACTIVE,
};

#define CHANNEL_MAX_KEYS 8
#define CHANNEL_KEY_LEN 32

struct channel_key {
    uint32_t generation;
    uint8_t key[CHANNEL_KEY_LEN];
};

/* What a queued message carries, for bookkeeping once it is acked. */
/* One record of a message, as it is once acknowledged. */
struct cookie_rec {
    char *key;                  /* Owned. */
    json_t *entry;              /* The desired entry [version, text, ...]
                                 * it puts (a reference), NULL for a
                                 * delete. */
};

struct msg_cookie {
    struct cookie_rec *recs;    /* Owned; none for a snapshot message. */
    size_t n_recs;
    bool snapshot_end;
    long long seen_us;          /* When its change was seen, 0 if unknown. */
    long long sent_us;          /* First transmission, 0 before. */
};

/* An acknowledged message, until a Channel row that shows it is
 * committed. */
struct ack_stamp {
    uint64_t mark;              /* channel's 'ack_mark' for it. */
    long long seen_us;          /* 0 if unknown. */
    long long acked_us;
};

/* Acknowledged messages waiting for their Channel row, at most (older ones
 * are then not measured). */
#define CHANNEL_MAX_ACK_STAMPS 65536
#define CHANNEL_MIN_ACK_STAMPS 16     /* A power of 2 below the max. */

struct channel {
    char *vm;
    char *iface;
    struct chan_config cfg;
    int64_t ofport;
    channel_transmit_func *transmit;
    void *aux;
    channel_xfer_func *xfer;    /* The transfer lane, or NULL. */
    void *xfer_aux;
    struct channel_limits limits;
    bool flows_installed;

    uint32_t epoch;
    uint32_t guest_epoch;
    bool epoch_used;            /* Frames of 'epoch' may exist somewhere. */
    uint64_t resume_seq;        /* Prior run's exact applied seq, or 0. */
    uint64_t db_hash;           /* channel_db_hash() when last written. */
    bool db_written;            /* Written at least once... */
    long long db_written_at;    /* ...last at this time. */
    long long db_stats_due;     /* When its counters are looked at next. */
    long long db_keepalive_due; /* When they are written even if only the
                                 * keepalive counters changed. */
    json_t *db_stats_active;    /* The counters last written, without the
                                 * keepalive ones. */
    uint64_t resume_sent_seq;   /* Prior run's last sent seq, or 0... */
    json_t *resume_sent;        /* ...and the state after it. */
    bool resume_migrated;       /* The prior run was another chassis's. */
    char resume_digest[17];     /* The prior run's applied_digest, until
                                 * the desired texts matched it or the
                                 * session started; "" if none. */
    enum session session;
    struct chan_sender *sender;
    uint64_t snapshot_end;
    json_t *snapshot;           /* Snapshot being delivered, or NULL. */

    json_t *sent;               /* key -> [version, text, ...]: after
                                 * queue (the desired entry, shared)... */
    json_t *applied;            /* ...and acknowledged.  After a restart,
                                 * [version, null]. */
    json_t *errors;             /* key -> reason. */
    size_t desired_count;
    bool synced;                /* 'applied' equals the desired state. */
    json_t *last_desired;       /* The desired state (a reference). */
    json_t *unsynced;           /* key -> true: desired and applied differ
                                 * (as of the last update_synced())... */
    json_t *recheck;            /* ...except for these keys (-> true)... */
    bool recheck_all;           /* ...or for any key. */
    json_t *applied_dirty;      /* key -> true: 'applied' keys changed
                                 * since channel_get_db_state()... */
    bool applied_dirty_all;     /* ...or any of them. */
    json_t *applied_given;      /* What it gave out last (or NULL). */
    uint64_t digest_x;          /* XOR of entry_hash() over 'applied'... */
    size_t digest_unknown;      /* ...and its entries without a text. */

    long long last_rx;          /* Last valid frame from the guest. */
    long long last_tx;          /* Last frame sent. */
    long long last_sync;
    long long now;              /* Time of the current channel_run(). */

    struct channel_key keys[CHANNEL_MAX_KEYS];  /* Newest first. */
    size_t n_keys;
    json_t *guest_keys;         /* Generations the guest reports, or NULL. */
    uint32_t rx_generation;     /* Key of the last valid guest frame. */
    uint32_t tx_generation;     /* Key we send with (0: empty key). */

    json_t *counters;           /* name -> integer. */
    json_t *db_stats;           /* Last statistics handed out. */
    unsigned int local_mtu;     /* This side's MTU (channel_set_mtu()). */
    unsigned int guest_mtu;     /* The guest's advertised MTU; 0: none. */

    struct upstream *up;        /* The records the guest publishes. */

    struct latency_hist latency[CHANNEL_N_LATENCY];
    long long queue_seen_us;    /* For messages queued now, 0: unknown. */
    uint64_t ack_mark;          /* Messages acknowledged so far. */
    struct ack_stamp *stamps;   /* Ring of acked messages not yet shown */
    size_t stamps_head;         /* in a committed Channel row: */
    size_t n_stamps;            /* 'n_stamps' from 'stamps_head', of */
    size_t stamps_alloc;        /* 'stamps_alloc' (0: none allocated). */
};

const char *
channel_state_name(enum channel_state state)
{
    switch (state) {
    case CHANNEL_DOWN: return "down";
    case CHANNEL_CONNECTING: return "connecting";
    case CHANNEL_READY: return "ready";
    case CHANNEL_DEGRADED: return "degraded";
    }
    return "?";
}

static void
count(struct channel *ch, const char *name)
{
    json_t *n = json_object_get(ch->counters, name);
    json_object_set_new(ch->counters, name,
                        json_integer(n ? json_integer_value(n) + 1 : 1));
}

void
channel_set_counter(struct channel *ch, const char *name, uint64_t value)
{
    json_object_set_new(ch->counters, name, json_integer(value));
}

void
channel_count_drop(struct channel *ch, const char *reason)
{
    char name[96];
    snprintf(name, sizeof name, "rx_drop_%s", reason);
    count(ch, name);
}

/* Returns the key with 'generation', or NULL. */
static const struct channel_key *
find_key(const struct channel *ch, uint32_t generation)
{
    for (size_t i = 0; i < ch->n_keys; i++) {
        if (ch->keys[i].generation == generation) {
            return &ch->keys[i];
        }
    }
    return NULL;
}

static bool
guest_has(const struct channel *ch, uint32_t generation)
{
    size_t i;
    json_t *g;
    json_array_foreach (ch->guest_keys, i, g) {
        if (json_integer_value(g) == generation) {
            return true;
        }
    }
    return generation && generation == ch->rx_generation;
}

/* Picks the sending key: the newest generation both sides hold; before the
 * guest has said anything, our newest. */
static void
choose_tx_key(struct channel *ch)
{
    uint32_t gen = 0;
    for (size_t i = 0; i < ch->n_keys; i++) {
        if (guest_has(ch, ch->keys[i].generation)) {
            gen = ch->keys[i].generation;
            break;
        }
    }
    if (!gen && ch->n_keys) {
        gen = ch->keys[0].generation;
    }
    if (gen != ch->tx_generation) {
        const struct channel_key *k = find_key(ch, gen);
        VLOG_INFO("%s: sending with key generation %u", ch->vm, gen);
        ch->tx_generation = gen;
        chan_sender_set_key(ch->sender, k ? k->key : NULL,
                            k ? CHANNEL_KEY_LEN : 0);
    }
}

static const uint8_t *
tx_key(const struct channel *ch, size_t *lenp)
{
    const struct channel_key *k = find_key(ch, ch->tx_generation);
    *lenp = k ? CHANNEL_KEY_LEN : 0;
    return k ? k->key : NULL;
}

static bool
parse_hex_key(const char *hex, uint8_t key[CHANNEL_KEY_LEN])
{
    if (!hex || strlen(hex) != 2 * CHANNEL_KEY_LEN) {
        return false;
    }
    for (size_t i = 0; i < CHANNEL_KEY_LEN; i++) {
        unsigned int byte;
        if (!isxdigit((unsigned char) hex[2 * i])
            || !isxdigit((unsigned char) hex[2 * i + 1])
            || sscanf(hex + 2 * i, "%2x", &byte) != 1) {
            return false;
        }
        key[i] = byte;
    }
    return true;
}

void
channel_set_keys(struct channel *ch, const json_t *keys)
{
    size_t i;
    json_t *k;
    ch->n_keys = 0;
    json_array_foreach (keys, i, k) {
        struct channel_key *ck = &ch->keys[ch->n_keys];
        if (ch->n_keys < CHANNEL_MAX_KEYS
            && parse_hex_key(json_string_value(json_array_get(k, 1)),
                             ck->key)) {
            ck->generation = json_integer_value(json_array_get(k, 0));
            ch->n_keys++;
        }
    }
    choose_tx_key(ch);
}

/* Records the key generations the guest reports in a HELLO or ACK payload
 * ("keys": [g, ...]). */
static void
note_guest_keys(struct channel *ch, const json_t *obj)
{
    json_t *keys = json_object_get(obj, "keys");
    if (json_is_array(keys)) {
        json_decref(ch->guest_keys);
        ch->guest_keys = json_incref(keys);
        choose_tx_key(ch);
    }
}

static uint32_t
random_epoch(void)
{
    uint32_t epoch = 0;
    while (!epoch) {
        if (getrandom(&epoch, sizeof epoch, 0) != sizeof epoch) {
            epoch = (uint32_t) random();
        }
    }
    return epoch;
}

static void
cookie_recs_free(struct cookie_rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(recs[i].key);
        json_decref(recs[i].entry);
    }
    free(recs);
}

static void
cookie_free(struct msg_cookie *c)
{
    if (c) {
        cookie_recs_free(c->recs, c->n_recs);
        free(c);
    }
}

static void update_synced(struct channel *);
static void digest_entry(struct channel *, const char *key,
                         const json_t *entry, int sign);

/* Notes that 'key' must be looked at again by update_synced(). */
static void
recheck_key(struct channel *ch, const char *key)
{
    if (!ch->recheck_all) {
        json_object_set_new(ch->recheck, key, json_true());
    }
}

/* Notes that applied key 'key' changed, for the Channel row. */
static void
applied_changed(struct channel *ch, const char *key)
{
    recheck_key(ch, key);
    if (!ch->applied_dirty_all) {
        json_object_set_new(ch->applied_dirty, key, json_true());
    }
}

/* Sets applied entry 'key' to 'entry' ([version, text, ...], stolen). */
static void
applied_set(struct channel *ch, const char *key, json_t *entry)
{
    json_t *old = json_object_get(ch->applied, key);
    if (old) {
        digest_entry(ch, key, old, -1);
    }
    digest_entry(ch, key, entry, 1);
    json_object_set_new(ch->applied, key, entry);
    applied_changed(ch, key);
}

/* Takes applied entry 'key' out, if there is one. */
static void
applied_del(struct channel *ch, const char *key)
{
    json_t *old = json_object_get(ch->applied, key);
    if (old) {
        digest_entry(ch, key, old, -1);
        applied_changed(ch, key);
        json_object_del(ch->applied, key);
    }
}

/* Replaces the whole applied state with 'applied' (stolen). */
static void
applied_replace(struct channel *ch, json_t *applied)
{
    json_decref(ch->applied);
    ch->applied = applied;
    ch->digest_x = 0;
    ch->digest_unknown = 0;
    const char *key;
    json_t *entry;
    json_object_foreach (applied, key, entry) {
        digest_entry(ch, key, entry, 1);
    }
    ch->recheck_all = true;
    ch->applied_dirty_all = true;
}

static const char *const latency_names[CHANNEL_N_LATENCY] = {
    [CHANNEL_LAT_SEEN_TO_SENT] = "seen_to_sent",
    [CHANNEL_LAT_SENT_TO_ACKED] = "sent_to_acked",
    [CHANNEL_LAT_ACKED_TO_APPLIED] = "acked_to_applied",
    [CHANNEL_LAT_SEEN_TO_ACKED] = "seen_to_acked",
    [CHANNEL_LAT_SEEN_TO_APPLIED] = "seen_to_applied",
};

const char *
channel_latency_name(enum channel_latency lat)
{
    return lat < CHANNEL_N_LATENCY ? latency_names[lat] : "?";
}

const struct latency_hist *
channel_latency(const struct channel *ch)
{
    return ch->latency;
}

/* chan-sender callback: the first frame of message 'cookie_' leaves. */
static void
message_first_tx(void *cookie_, void *ch_)
{
    struct channel *ch = ch_;
    struct msg_cookie *cookie = cookie_;
    if (cookie && !cookie->sent_us) {
        cookie->sent_us = time_usec();
        if (cookie->seen_us) {
            latency_hist_add(&ch->latency[CHANNEL_LAT_SEEN_TO_SENT],
                             cookie->sent_us - cookie->seen_us);
        }
    }
}

/* Doubles the ring of ack stamps (at least CHANNEL_MIN_ACK_STAMPS), keeping
 * their order. */
static void
stamps_grow(struct channel *ch)
{
    size_t alloc = ch->stamps_alloc ? 2 * ch->stamps_alloc
                                    : CHANNEL_MIN_ACK_STAMPS;
    struct ack_stamp *stamps = xmalloc(alloc * sizeof *stamps);
    for (size_t i = 0; i < ch->n_stamps; i++) {
        stamps[i] = ch->stamps[(ch->stamps_head + i) % ch->stamps_alloc];
    }
    free(ch->stamps);
    ch->stamps = stamps;
    ch->stamps_alloc = alloc;
    ch->stamps_head = 0;
}

/* Records the latencies of acknowledged message 'cookie' and keeps its
 * stamp until a Channel row shows it (channel_db_committed()). */
static void
note_acked(struct channel *ch, const struct msg_cookie *cookie)
{
    long long now_us = time_usec();
    ch->ack_mark++;
    if (!cookie->sent_us) {
        return;                 /* Not a message we measure. */
    }
    latency_hist_add(&ch->latency[CHANNEL_LAT_SENT_TO_ACKED],
                     now_us - cookie->sent_us);
    if (cookie->seen_us) {
        latency_hist_add(&ch->latency[CHANNEL_LAT_SEEN_TO_ACKED],
                         now_us - cookie->seen_us);
    }
    if (ch->n_stamps == ch->stamps_alloc) {
        if (ch->stamps_alloc < CHANNEL_MAX_ACK_STAMPS) {
            stamps_grow(ch);
        } else {
            /* The oldest goes unmeasured. */
            ch->stamps_head = (ch->stamps_head + 1) % ch->stamps_alloc;
            ch->n_stamps--;
        }
    }
    struct ack_stamp *st = &ch->stamps[(ch->stamps_head + ch->n_stamps++)
                                       % ch->stamps_alloc];
    st->mark = ch->ack_mark;
    st->seen_us = cookie->seen_us;
    st->acked_us = now_us;
}

void
channel_db_committed(struct channel *ch, uint64_t mark, long long now_us)
{
    while (ch->n_stamps) {
        const struct ack_stamp *st = &ch->stamps[ch->stamps_head];
        if (st->mark > mark) {
            break;
        }
        latency_hist_add(&ch->latency[CHANNEL_LAT_ACKED_TO_APPLIED],
                         now_us - st->acked_us);
        if (st->seen_us) {
            latency_hist_add(&ch->latency[CHANNEL_LAT_SEEN_TO_APPLIED],
                             now_us - st->seen_us);
        }
        ch->stamps_head = (ch->stamps_head + 1) % ch->stamps_alloc;
        ch->n_stamps--;
    }
    if (!ch->n_stamps && ch->stamps_alloc > CHANNEL_MIN_ACK_STAMPS) {
        /* After a burst: an idle channel keeps a small ring. */
        free(ch->stamps);
        ch->stamps = NULL;
        ch->stamps_alloc = 0;
        ch->stamps_head = 0;
    }
}

/* chan-sender callback: a message was acked or discarded. */
static void
message_done(void *cookie_, bool acked, void *aux)
{
    struct channel *ch = aux;
    struct msg_cookie *cookie = cookie_;

    if (acked && cookie) {
        note_acked(ch, cookie);
        if (cookie->snapshot_end && ch->snapshot) {
            applied_replace(ch, ch->snapshot);
            ch->snapshot = NULL;
            count(ch, "snapshots_applied");
        }
        for (size_t i = 0; i < cookie->n_recs; i++) {
            const struct cookie_rec *r = &cookie->recs[i];
            if (r->entry) {
                applied_set(ch, r->key, json_incref(r->entry));
            } else {
                applied_del(ch, r->key);
            }
        }
        update_synced(ch);
    }
    cookie_free(cookie);
}

static void send_upstream_ack(uint32_t epoch, uint64_t position,
                              const json_t *obj, void *ch_);

struct channel *
channel_create(const char *vm, const struct chan_config *cfg,
               const char *iface, int64_t ofport,
               const struct chandb_prior *prior,
               const struct chandb_upstream *up_prior,
               const struct channel_limits *limits,
               channel_transmit_func *transmit, void *aux, long long now)
{
    struct channel *ch = calloc(1, sizeof *ch);
    ch->vm = strdup(vm);
    ch->iface = strdup(iface);
    ch->cfg = *cfg;
    ch->ofport = ofport;
    ch->transmit = transmit;
    ch->aux = aux;
    ch->limits = *limits;
    ch->epoch = random_epoch();
    ch->session = SESSION_NONE;
    ch->local_mtu = CHAN_WIRE_DEFAULT_MTU;

    struct chan_sender_params p = { .vid = cfg->vid,
                                    .window = limits->window,
                                    .window_bytes = limits->window_bytes,
                                    .seed = ((uint64_t) ch->epoch << 32)
                                            | cfg->chan_id };
    ch->sender = chan_sender_create(&p, ch->epoch, NULL, 0,
                                    message_done, ch);
    chan_sender_set_first_tx(ch->sender, message_first_tx);
    ch->sent = json_object();
    ch->applied = json_object();
    ch->applied_dirty = json_object();
    ch->applied_dirty_all = true;
    if (prior) {
        ch->epoch = prior->host_epoch;
        ch->guest_epoch = prior->guest_epoch;
        ch->epoch_used = true;
        ch->resume_seq = prior->applied_seq;
        applied_replace(ch, json_copy(prior->applied));
        if (prior->sent_seq && prior->sent) {
            ch->resume_sent_seq = prior->sent_seq;
            ch->resume_sent = json_deep_copy(prior->sent);
        }
        ch->resume_migrated = prior->other_chassis;
        memcpy(ch->resume_digest, prior->applied_digest,
               sizeof ch->resume_digest);
    }
    ch->errors = json_object();
    ch->last_desired = json_object();
    ch->unsynced = json_object();
    ch->recheck = json_object();
    ch->recheck_all = true;
    ch->guest_keys = json_array();
    ch->counters = json_object();
    ch->last_rx = LLONG_MIN / 2;
    ch->last_tx = LLONG_MIN / 2;
    ch->last_sync = LLONG_MIN / 2;
    ch->up = upstream_create(vm, up_prior ? up_prior->epoch : 0,
                             up_prior ? up_prior->position : 0,
                             up_prior ? up_prior->rows : NULL,
                             send_upstream_ack, ch);
    VLOG_INFO("%s: channel created (chan-id %u, vid %u, interface %s, "
              "ofport %lld%s)", vm, cfg->chan_id, cfg->vid, iface,
              (long long) ofport,
              prior ? ", may resume the previous session" : "");
    return ch;
}

void
channel_destroy(struct channel *ch)
{
    if (ch) {
        upstream_destroy(ch->up);
        chan_sender_destroy(ch->sender);
        json_decref(ch->sent);
        json_decref(ch->applied);
        json_decref(ch->errors);
        json_decref(ch->snapshot);
        json_decref(ch->last_desired);
        json_decref(ch->unsynced);
        json_decref(ch->recheck);
        json_decref(ch->applied_dirty);
        json_decref(ch->applied_given);
        json_decref(ch->guest_keys);
        json_decref(ch->resume_sent);
        json_decref(ch->counters);
        json_decref(ch->db_stats);
        json_decref(ch->db_stats_active);
        free(ch->stamps);
        free(ch->vm);
        free(ch->iface);
        free(ch);
    }
}

const char *
channel_vm(const struct channel *ch)
{
    return ch->vm;
}

const char *
channel_iface(const struct channel *ch)
{
    return ch->iface;
}

const struct chan_config *
channel_config(const struct channel *ch)
{
    return &ch->cfg;
}

int64_t
channel_ofport(const struct channel *ch)
{
    return ch->ofport;
}

bool
channel_matches(const struct channel *ch, const struct chan_config *cfg,
                const char *iface, int64_t ofport)
{
    return !memcmp(&ch->cfg, cfg, sizeof *cfg) && !strcmp(ch->iface, iface)
           && ch->ofport == ofport;
}

enum channel_state
channel_get_state(const struct channel *ch, long long now)
{
    if (!ch->flows_installed) {
        return CHANNEL_DOWN;
    } else if (ch->session != SESSION_ACTIVE) {
        return CHANNEL_CONNECTING;
    } else if (now - ch->last_rx > DEAD_MS
               || chan_sender_timeouts(ch->sender) >= DEGRADED_TIMEOUTS) {
        return CHANNEL_DEGRADED;
    }
    return CHANNEL_READY;
}

void
channel_set_flows_installed(struct channel *ch, bool installed)
{
    if (ch->flows_installed != installed) {
        VLOG_INFO("%s: flows %s", ch->vm, installed ? "installed" : "removed");
        ch->flows_installed = installed;
    }
}

/* Transmission. */

/* Wraps chand frame 'payload' in Ethernet/IPv4/UDP and transmits it.
 * Returns 0 or an errno value. */
static int
transmit_frame(struct channel *ch, const uint8_t *payload, size_t len)
{
    struct pkt_udp pkt = {
        .eth_src = ch->cfg.host.mac,
        .eth_dst = ch->cfg.guest.mac,
        .ip_src = ch->cfg.host.ip,
        .ip_dst = ch->cfg.guest.ip,
        .ttl = PKT_DEFAULT_TTL,
        .udp_src = ch->cfg.host.port,
        .udp_dst = ch->cfg.guest.port,
        .payload = payload,
        .payload_len = len,
    };
    static uint8_t frame[ETH_HEADER_LEN + IP_MAX_LEN];
    size_t frame_len;
    if (!ch->flows_installed
        || pkt_udp_build(&pkt, frame, sizeof frame, &frame_len)) {
        count(ch, "tx_dropped");
        return ENETDOWN;
    }
    int error = ch->transmit(ch->cfg.chan_id, frame, frame_len, ch->aux);
    count(ch, error ? "tx_dropped" : "tx_frames");
    return error;
}

void
channel_set_xfer(struct channel *ch, channel_xfer_func *func, void *aux)
{
    ch->xfer = func;
    ch->xfer_aux = aux;
}

int
channel_send_xfer(struct channel *ch, const uint8_t *frame, size_t len)
{
    return transmit_frame(ch, frame, len);
}

void
channel_tx_key(const struct channel *ch, const uint8_t **keyp,
               size_t *lenp)
{
    *keyp = tx_key(ch, lenp);
}

/* Transmits a frame of the downstream session: it also stands for a
 * heartbeat. */
static void
transmit_payload(struct channel *ch, const uint8_t *payload, size_t len,
                 long long now)
{
    transmit_frame(ch, payload, len);
    ch->last_tx = now;
}

static void
emit_frame(const uint8_t *frame, size_t len, void *ch_)
{
    struct channel *ch = ch_;
    transmit_payload(ch, frame, len, ch->now);
}

/* Sends a control frame ('type' SYNC or HEARTBEAT) with payload 'obj'
 * (stolen, may be NULL). */
static void
send_control(struct channel *ch, uint8_t type, json_t *obj, long long now)
{
    char *text = NULL;
    size_t text_len = 0;
    uint8_t buf[CHAN_WIRE_MAX_FRAME];
    size_t len;
    struct chan_wire_header h = {
        .type = type,
        .vid = ch->cfg.vid,
        .epoch = ch->epoch,
        .chunk_count = 1,
    };

    if (!obj) {
        obj = json_object();
    }
    chan_mtu_to_json(obj, ch->local_mtu);
    chan_payload_encode_object(obj, NULL, &text, &text_len);
    json_decref(obj);
    size_t key_len;
    const uint8_t *key = tx_key(ch, &key_len);
    if (!chan_wire_encode(&h, text, text_len, key, key_len, buf, sizeof buf,
                          &len)) {
        transmit_payload(ch, buf, len, now);
    }
    free(text);
}

/* Sends an ACK of the upstream stream (doc/SESSION.md, "Upstream"). */
static void
send_upstream_ack(uint32_t epoch, uint64_t position, const json_t *obj,
                  void *ch_)
{
    struct channel *ch = ch_;
    uint8_t buf[CHAN_WIRE_MAX_FRAME];
    char *text = NULL;
    size_t text_len = 0;
    size_t len;
    struct chan_wire_header h = {
        .type = CHAN_WIRE_ACK,
        .flags = CHAN_WIRE_F_ACK_VALID,
        .vid = ch->cfg.vid,
        .epoch = epoch,
        .ack = position,
        .chunk_count = 1,
    };
    size_t key_len;
    const uint8_t *key = tx_key(ch, &key_len);
    if (obj) {
        /* The ACKs that answer a HELLO or SYNC: tell the MTU too. */
        json_t *copy = json_copy((json_t *) obj);
        chan_mtu_to_json(copy, ch->local_mtu);
        chan_payload_encode_object(copy, NULL, &text, &text_len);
        json_decref(copy);
    }
    /* Not transmit_payload(): the guest needs the downstream session's
     * heartbeats whatever the upstream ACKs. */
    if (ch->flows_installed
        && !chan_wire_encode(&h, text, text_len, key, key_len, buf,
                             sizeof buf, &len)) {
        transmit_frame(ch, buf, len);
    }
    free(text);
}

static void
send_sync(struct channel *ch, long long now)
{
    send_control(ch, CHAN_WIRE_SYNC,
                 json_pack("{sIsI}", "guest_epoch",
                           (json_int_t) ch->guest_epoch, "snapshot_end",
                           (json_int_t) ch->snapshot_end), now);
    ch->last_sync = now;
    count(ch, "tx_sync");
}

/* Batching. */

struct batcher {
    struct channel *ch;
    uint8_t flags;
    struct chan_batch batch;
    struct cookie_rec *recs;    /* For the cookie (not for a snapshot). */
    size_t n_recs, allocated_recs;
    size_t size;
};

static void
batcher_init(struct batcher *b, struct channel *ch, uint8_t flags)
{
    b->ch = ch;
    b->flags = flags;
    chan_batch_init(&b->batch);
    b->recs = NULL;
    b->n_recs = b->allocated_recs = 0;
    b->size = 0;
}

/* Queues what 'b' holds as one message.  'snapshot_end' marks the last
 * message of a snapshot (which may be empty of records). */
static void
batcher_flush(struct batcher *b, bool snapshot_end)
{
    struct channel *ch = b->ch;
    if (!b->batch.n && !snapshot_end) {
        return;
    }
    char *text;
    size_t len;
    enum chan_wire_error error = chan_batch_encode(&b->batch, NULL, &text,
                                                   &len);
    if (error) {
        /* Cannot happen for records that passed batcher_add(). */
        VLOG_ERR_RL(&rl, "%s: cannot encode batch (%s)", ch->vm,
                    chan_wire_strerror(error));
        text = strdup("{\"records\":[]}");
        len = strlen(text);
    }
    struct msg_cookie *cookie = calloc(1, sizeof *cookie);
    cookie->recs = b->recs;
    cookie->n_recs = b->n_recs;
    b->recs = NULL;
    b->n_recs = b->allocated_recs = 0;
    cookie->snapshot_end = snapshot_end;
    cookie->seen_us = ch->queue_seen_us;
    uint64_t last_seq;
    if (chan_sender_queue(ch->sender, b->flags, text, len, cookie,
                          &last_seq)) {
        VLOG_ERR_RL(&rl, "%s: message of %zu bytes too large", ch->vm, len);
        cookie_free(cookie);
    } else if (snapshot_end) {
        ch->snapshot_end = last_seq;
    }
    free(text);
    chan_batch_destroy(&b->batch);
    chan_batch_init(&b->batch);
    b->size = 0;
}

/* Checks that a single record encodes; returns NULL or a static reason. */
static const char *
record_check(const char *key, json_t *value, int64_t version)
{
    enum chan_wire_error error = chan_record_check(key, value, version);
    return error ? chan_wire_strerror(error) : NULL;
}

/* Adds a put ('value' non-null) or delete of 'key' to 'b'.  'entry' is
 * the desired entry the put is for (borrowed), NULL for a delete.  Returns
 * false (and records the error) if the record cannot be sent. */
static bool
batcher_add(struct batcher *b, const char *key, int64_t version,
            json_t *text_json, json_t *value, json_t *entry)
{
    struct channel *ch = b->ch;
    const char *text = json_string_value(text_json);
    size_t text_len = text ? json_string_length(text_json) : 0;
    if (text_len > ch->limits.max_record) {
        char reason[128];
        snprintf(reason, sizeof reason, "value of %zu bytes exceeds the "
                 "limit of %zu bytes", text_len, ch->limits.max_record);
        json_object_set_new(ch->errors, key, json_string(reason));
        count(ch, "records_too_large");
        return false;
    }
    const char *reason = record_check(key, value, version);
    if (reason) {
        json_object_set_new(ch->errors, key, json_string(reason));
        return false;
    }
    json_object_del(ch->errors, key);

    size_t size = strlen(key) + text_len + 48;
    size_t budget = chan_mtu_batch_budget(chan_sender_mtu(ch->sender));
    if (b->batch.n && (b->size + size > budget
                       || b->batch.n >= ch->limits.max_batch_records)) {
        batcher_flush(b, false);
    }
    if (value && json_is_null(value) && text && text[0] == '"') {
        /* A string literal left unparsed (chandb.c, parse_value()). */
        chan_batch_add_put_raw(&b->batch, key, text_json, version);
    } else if (value) {
        chan_batch_add_put(&b->batch, key, value, version);
    } else {
        chan_batch_add_delete(&b->batch, key, version);
    }
    if (!b->flags) {
        if (b->n_recs == b->allocated_recs) {
            b->allocated_recs = b->allocated_recs ? 2 * b->allocated_recs
                                                  : 16;
            b->recs = xrealloc(b->recs,
                               b->allocated_recs * sizeof *b->recs);
        }
        struct cookie_rec *r = &b->recs[b->n_recs++];
        r->key = xstrdup(key);
        r->entry = value ? json_incref(entry) : NULL;
    }
    b->size += size;
    return true;
}

static void
batcher_destroy(struct batcher *b)
{
    chan_batch_destroy(&b->batch);
    cookie_recs_free(b->recs, b->n_recs);
}

/* Compares two [version, text] entries.  An entry learned from the Chan DB
 * after a restart has no text (null): its value is unknown (versions are
 * per Record row, so a version alone does not identify a value), so it is
 * never equal and the record is sent again; the guest's datastore takes an
 * identical put as a no-op. */
static bool
entry_equal(const json_t *a, const json_t *b)
{
    const char *ta = json_string_value(json_array_get(a, 1));
    const char *tb = json_string_value(json_array_get(b, 1));
    return json_integer_value(json_array_get(a, 0))
           == json_integer_value(json_array_get(b, 0))
           && ta && tb && !strcmp(ta, tb);
}

/* True if applied entry 'key' is what the desired state says. */
static bool
key_synced(const struct channel *ch, const char *key)
{
    json_t *want = json_object_get(ch->last_desired, key);
    json_t *have = json_object_get(ch->applied, key);
    return want ? have && entry_equal(have, want) : !have;
}

/* Brings 'unsynced' and 'synced' up to date: only the keys noted since the
 * last call are compared again, unless anything may have changed. */
static void
update_synced(struct channel *ch)
{
    const char *key;
    json_t *value;
    if (ch->recheck_all) {
        json_object_clear(ch->unsynced);
        json_object_foreach (ch->last_desired, key, value) {
            if (!key_synced(ch, key)) {
                json_object_set_new(ch->unsynced, key, json_true());
            }
        }
        json_object_foreach (ch->applied, key, value) {
            if (!json_object_get(ch->last_desired, key)) {
                json_object_set_new(ch->unsynced, key, json_true());
            }
        }
        ch->recheck_all = false;
    } else {
        json_object_foreach (ch->recheck, key, value) {
            if (key_synced(ch, key)) {
                json_object_del(ch->unsynced, key);
            } else {
                json_object_set_new(ch->unsynced, key, json_true());
            }
        }
    }
    if (json_object_size(ch->recheck) > 64) {
        /* Clearing costs the table's size, which a burst grew: start
         * small again. */
        json_decref(ch->recheck);
        ch->recheck = json_object();
    } else if (json_object_size(ch->recheck)) {
        json_object_clear(ch->recheck);
    }
    ch->synced = !ch->snapshot && !json_object_size(ch->unsynced);
}

/* Starts a new session for guest store 'guest_epoch': a new epoch, and a
 * snapshot of the desired state. */
static void
start_session(struct channel *ch, uint32_t guest_epoch, long long now)
{
    if (ch->epoch_used || chan_sender_last_seq(ch->sender)
        || ch->session != SESSION_NONE) {
        ch->epoch = random_epoch();
    }
    ch->epoch_used = true;
    ch->resume_seq = 0;
    ch->resume_sent_seq = 0;
    chan_sender_reset(ch->sender, ch->epoch);
    ch->guest_epoch = guest_epoch;
    ch->session = SESSION_SYNCING;
    json_decref(ch->snapshot);
    ch->snapshot = json_object();
    json_object_clear(ch->sent);
    json_object_clear(ch->errors);

    struct batcher b;
    batcher_init(&b, ch, CHAN_WIRE_F_SNAPSHOT);
    const char *key;
    json_t *entry;
    json_object_foreach (ch->last_desired, key, entry) {
        int64_t version = json_integer_value(json_array_get(entry, 0));
        json_t *text = json_array_get(entry, 1);
        if (batcher_add(&b, key, version, text, json_array_get(entry, 2),
                        entry)) {
            json_object_set(ch->sent, key, entry);
            json_object_set(ch->snapshot, key, entry);
        }
    }
    ch->snapshot_end = 0;
    if (json_object_size(ch->snapshot)) {
        batcher_flush(&b, true);
    }
    batcher_destroy(&b);
    count(ch, "sessions");
    VLOG_INFO("%s: new session, epoch %u, guest epoch %u, snapshot of %zu "
              "records (seqs 1..%llu)", ch->vm, ch->epoch, guest_epoch,
              json_object_size(ch->snapshot),
              (unsigned long long) ch->snapshot_end);
    send_sync(ch, now);
}

/* Adds to 'b' what key 'key' needs for the guest to get the desired
 * state: a put if 'sent' lacks it or has another version or text, a delete
 * if it is no longer desired. */
static void
queue_key(struct channel *ch, struct batcher *b, const char *key)
{
    json_t *entry = json_object_get(ch->last_desired, key);
    json_t *have = json_object_get(ch->sent, key);
    if (entry) {
        if (have && entry_equal(have, entry)) {
            return;
        }
        int64_t version = json_integer_value(json_array_get(entry, 0));
        json_t *text = json_array_get(entry, 1);
        if (batcher_add(b, key, version, text, json_array_get(entry, 2),
                        entry)) {
            json_object_set(ch->sent, key, entry);
        }
    } else if (have) {
        int64_t version = json_integer_value(json_array_get(have, 0));
        if (batcher_add(b, key, version, NULL, NULL, NULL)) {
            json_object_del(ch->sent, key);
        }
    }
}

/* Drops the queue and the session: the guest's next HELLO starts a new
 * epoch with a snapshot, which carries each key's latest state once. */
static void
drop_session(struct channel *ch)
{
    ch->epoch = random_epoch();
    chan_sender_reset(ch->sender, ch->epoch);
    json_object_clear(ch->sent);
    ch->session = SESSION_NONE;
    ch->resume_seq = 0;
    ch->resume_sent_seq = 0;
}

/* If the guest is far behind, rather than queue without bound, drops the
 * queue and resyncs from a snapshot, which carries each key's latest state
 * once. */
static void
check_queue_limit(struct channel *ch)
{
    if (chan_sender_queued_bytes(ch->sender) > ch->limits.max_queued) {
        VLOG_WARN("%s: %zu bytes queued for the guest exceed the limit of "
                  "%zu; will resync with a snapshot", ch->vm,
                  chan_sender_queued_bytes(ch->sender), ch->limits.max_queued);
        count(ch, "queue_overflows");
        drop_session(ch);
    }
}

/* Queues the difference between the desired state and 'sent': for the keys
 * named in 'keys' (an object), or for every key if 'keys' is NULL. */
static void
queue_changes(struct channel *ch, const json_t *keys)
{
    struct batcher b;
    batcher_init(&b, ch, 0);

    const char *key;
    json_t *value;
    if (keys) {
        json_object_foreach ((json_t *) keys, key, value) {
            queue_key(ch, &b, key);
        }
    } else {
        json_object_foreach (ch->last_desired, key, value) {
            queue_key(ch, &b, key);
        }
        void *tmp;
        json_object_foreach_safe (ch->sent, tmp, key, value) {
            if (!json_object_get(ch->last_desired, key)) {
                queue_key(ch, &b, key);
            }
        }
    }
    batcher_flush(&b, false);
    batcher_destroy(&b);
    check_queue_limit(ch);
}

/* The digest of one applied entry (key -> [version, text, ...]) as
 * Channel.applied_digest combines them: a 64-bit FNV-1a hash of key,
 * version and text.  The entry must have a text. */
static uint64_t
entry_hash(const char *key, const json_t *entry)
{
    char version[24];
    snprintf(version, sizeof version, "%"PRId64,
             (int64_t) json_integer_value(json_array_get(entry, 0)));
    const char *text = json_string_value(json_array_get(entry, 1));
    uint64_t h = 1469598103934665603ULL;
    const char *parts[] = { key, version, text };
    for (size_t i = 0; i < 3; i++) {
        for (const char *p = parts[i]; ; p++) {
            h = (h ^ (unsigned char) *p) * 1099511628211ULL;
            if (!*p) {
                break;
            }
        }
    }
    return h;
}

/* Writes to 'digest' the digest of an applied state with XOR 'x' of its
 * entries' hashes and 'n_unknown' entries without a text, as
 * Channel.applied_digest stores it: 16 hex digits, or "" if any entry's
 * text is unknown.  The Channel row keeps only versions, and a version
 * alone does not tell a value (a Record deleted and pushed again starts
 * over), so a chand-host that resumes from the row checks the desired
 * texts against this before it takes them for what the guest holds
 * (resume_verify()). */
static void
format_digest(uint64_t x, size_t n_unknown, char digest[17])
{
    if (n_unknown) {
        *digest = '\0';
    } else {
        snprintf(digest, 17, "%016"PRIx64, x);
    }
}

/* Adds ('sign' 1) or takes out ('sign' -1) applied entry 'key' -> 'entry'
 * to or from the channel's running digest. */
static void
digest_entry(struct channel *ch, const char *key, const json_t *entry,
             int sign)
{
    if (!json_is_string(json_array_get(entry, 1))) {
        ch->digest_unknown += sign;
    } else {
        ch->digest_x ^= entry_hash(key, entry);
    }
}

/* Digest of a whole applied state 'applied' (borrowed). */
static void
applied_digest(const json_t *applied, char digest[17])
{
    uint64_t x = 0;
    size_t n_unknown = 0;
    const char *key;
    json_t *entry;
    json_object_foreach ((json_t *) applied, key, entry) {
        if (!json_is_string(json_array_get(entry, 1))) {
            n_unknown++;
        } else {
            x ^= entry_hash(key, entry);
        }
    }
    format_digest(x, n_unknown, digest);
}

/* A resumed applied state knows only versions (the Channel row's).  If the
 * desired state has the same version of every applied key and its texts
 * give the digest the previous run wrote, those texts are what the guest
 * holds: take them, so that resuming sends nothing the guest has.
 * Otherwise the keys are sent again (identical puts are no-ops in the
 * guest's store). */
static void
resume_verify(struct channel *ch)
{
    if (!ch->resume_digest[0] || ch->session != SESSION_NONE) {
        return;
    }
    json_t *check = json_object();
    const char *key;
    json_t *have;
    json_object_foreach (ch->applied, key, have) {
        json_t *want = json_object_get(ch->last_desired, key);
        if (!want || !json_is_string(json_array_get(want, 1))
            || json_integer_value(json_array_get(want, 0))
               != json_integer_value(json_array_get(have, 0))) {
            json_decref(check);
            return;             /* Changed since: the digest cannot tell. */
        }
        json_object_set_new(check, key,
                            json_pack("[OO]", json_array_get(want, 0),
                                      json_array_get(want, 1)));
    }
    char digest[17];
    applied_digest(check, digest);
    if (!strcmp(digest, ch->resume_digest)) {
        applied_replace(ch, check);
        count(ch, "resume_digest_matches");
    } else {
        json_decref(check);
        count(ch, "resume_digest_mismatches");
    }
    ch->resume_digest[0] = '\0';
}

void
channel_set_desired(struct channel *ch, const json_t *desired,
                    const json_t *changed, long long now, long long seen_us)
{
    if (desired != ch->last_desired) {
        json_decref(ch->last_desired);
        ch->last_desired = json_incref((json_t *) desired);
        changed = NULL;
    }
    ch->desired_count = json_object_size(desired);
    if (changed) {
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) changed, key, value) {
            recheck_key(ch, key);
        }
    } else {
        ch->recheck_all = true;
    }
    resume_verify(ch);
    if (ch->session != SESSION_NONE) {
        ch->queue_seen_us = seen_us;
        queue_changes(ch, changed);
        ch->queue_seen_us = 0;
    }
    update_synced(ch);
}

/* MTU (doc/PROTOCOL.md §4.1). */

/* Sends with the smaller of our MTU and the guest's.  Messages already
 * queued keep their chunk size: if some no longer fit, the guest could
 * never receive them, so the channel starts over (new epoch, then HELLO
 * and a snapshot), as after a queue overflow. */
static void
apply_mtu(struct channel *ch)
{
    unsigned int mtu = chan_mtu_effective(ch->local_mtu, ch->guest_mtu);
    unsigned int old = chan_sender_mtu(ch->sender);
    if (mtu == old || chan_sender_set_mtu(ch->sender, mtu)) {
        return;
    }
    VLOG_INFO("%s: sending frames of up to MTU %u (was %u; ours %u, the "
              "guest's %u)", ch->vm, mtu, old, ch->local_mtu,
              ch->guest_mtu ? ch->guest_mtu : CHAN_WIRE_DEFAULT_MTU);
    count(ch, "mtu_changes");
    if (chan_sender_max_queued_chunk(ch->sender)
        > chan_wire_max_payload(mtu)) {
        VLOG_WARN("%s: queued frames do not fit MTU %u; will resync with a "
                  "snapshot", ch->vm, mtu);
        drop_session(ch);
    }
}

void
channel_set_mtu(struct channel *ch, unsigned int mtu)
{
    if (mtu != ch->local_mtu) {
        ch->local_mtu = mtu;
        apply_mtu(ch);
    }
}

unsigned int
channel_mtu(const struct channel *ch)
{
    return chan_sender_mtu(ch->sender);
}

/* Records the MTU the guest advertises in a HELLO ('hello': no "mtu"
 * member means an older guest, 1500) or an ACK (no member: not
 * reported). */
static void
note_guest_mtu(struct channel *ch, const json_t *obj, bool hello)
{
    if (hello || json_object_get(obj, CHAN_MTU_MEMBER)) {
        ch->guest_mtu = chan_mtu_from_json(obj);
        apply_mtu(ch);
    }
}

/* Reception. */

static void
handle_hello(struct channel *ch, const struct chan_wire_header *h,
             const json_t *obj, long long now)
{
    json_t *ge = json_object_get(obj, "guest_epoch");
    if (!json_is_integer(ge) || json_integer_value(ge) < 0
        || json_integer_value(ge) > UINT32_MAX) {
        count(ch, "rx_bad_hello");
        return;
    }
    uint32_t guest_epoch = json_integer_value(ge);
    uint64_t position = h->flags & CHAN_WIRE_F_ACK_VALID ? h->ack : 0;
    count(ch, "rx_hello");

    if (ch->session == SESSION_NONE && ch->resume_seq
        && h->epoch == ch->epoch && guest_epoch == ch->guest_epoch
        && (position == ch->resume_seq
            || (ch->resume_sent_seq && position == ch->resume_sent_seq))) {
        /* A previous chand-host (here, or on the chassis the VM came from)
         * left the guest exactly here: at the position it knew acked, or
         * at the last one it sent.  Go on with its epoch and send only the
         * difference. */
        if (position != ch->resume_seq) {
            applied_replace(ch, json_deep_copy(ch->resume_sent));
        }
        chan_sender_reset_at(ch->sender, ch->epoch, position + 1);
        json_decref(ch->sent);
        ch->sent = json_deep_copy(ch->applied);
        ch->session = SESSION_ACTIVE;
        ch->resume_seq = 0;
        ch->resume_sent_seq = 0;
        queue_changes(ch, NULL);
        update_synced(ch);
        count(ch, ch->resume_migrated ? "resumes_after_migration"
                                      : "resumes_after_restart");
        VLOG_INFO("%s: guest is where the previous chand-host%s left it "
                  "(epoch %u, seq %llu): sending only what it lacks", ch->vm,
                  ch->resume_migrated ? " (another chassis)" : "",
                  ch->epoch, (unsigned long long) position);
    } else if (ch->session != SESSION_NONE && h->epoch == ch->epoch
        && guest_epoch == ch->guest_epoch
        && chan_sender_can_rewind(ch->sender, position)
        && !chan_sender_rewind(ch->sender, position, now)) {
        if (ch->session == SESSION_SYNCING && ch->snapshot_end == 0
            && ch->snapshot) {
            applied_replace(ch, ch->snapshot);
            ch->snapshot = NULL;
        }
        ch->session = SESSION_ACTIVE;
        count(ch, "resumes");
        VLOG_INFO("%s: guest resumes epoch %u at seq %llu", ch->vm,
                  ch->epoch, (unsigned long long) position);
    } else if (ch->session == SESSION_SYNCING && h->epoch != ch->epoch
               && guest_epoch == ch->guest_epoch) {
        send_sync(ch, now);     /* Our SYNC was lost. */
    } else {
        start_session(ch, guest_epoch, now);
    }
}

static void
handle_ack(struct channel *ch, const struct chan_wire_header *h,
           long long now)
{
    if (h->epoch != ch->epoch || ch->session == SESSION_NONE) {
        count(ch, "rx_stale_epoch");
        return;
    }
    if (ch->session == SESSION_SYNCING) {
        ch->session = SESSION_ACTIVE;
        if (ch->snapshot_end == 0 && ch->snapshot) {
            applied_replace(ch, ch->snapshot);
            ch->snapshot = NULL;
            update_synced(ch);
        }
        VLOG_INFO("%s: guest in session, epoch %u", ch->vm, ch->epoch);
    }
    if (chan_sender_ack(ch->sender, h->ack, now)) {
        count(ch, "rx_bad_ack");
        VLOG_WARN_RL(&rl, "%s: ack %llu beyond last sent seq %llu", ch->vm,
                     (unsigned long long) h->ack,
                     (unsigned long long) chan_sender_last_seq(ch->sender));
    } else {
        count(ch, "rx_ack");
    }
}

void
channel_receive(struct channel *ch, const uint8_t *payload, size_t len,
                long long now)
{
    struct chan_wire_header h;
    const uint8_t *body;
    enum chan_wire_error error;
    uint32_t generation = 0;
    if (!ch->n_keys) {
        error = chan_wire_decode(payload, len, NULL, 0, &h, &body);
    } else {
        error = CHAN_WIRE_ERR_AUTH;
        for (size_t i = 0; i < ch->n_keys && error == CHAN_WIRE_ERR_AUTH;
             i++) {
            error = chan_wire_decode(payload, len, ch->keys[i].key,
                                     CHANNEL_KEY_LEN, &h, &body);
            generation = ch->keys[i].generation;
        }
    }
    if (!error && generation != ch->rx_generation) {
        ch->rx_generation = generation;
        choose_tx_key(ch);
    }
    if (!error && h.vid != ch->cfg.vid) {
        error = CHAN_WIRE_ERR_VID;
    }
    if (error) {
        channel_count_drop(ch, chan_wire_error_name(error));
        VLOG_WARN_RL(&rl, "%s: dropped frame from guest: %s", ch->vm,
                     chan_wire_strerror(error));
        return;
    }

    json_t *obj = NULL;
    switch (h.type) {
    case CHAN_WIRE_HELLO:
        error = chan_payload_decode_object(body, h.payload_len, NULL, &obj);
        if (error) {
            channel_count_drop(ch, chan_wire_error_name(error));
            return;
        }
        ch->last_rx = now;
        note_guest_keys(ch, obj);
        note_guest_mtu(ch, obj, true);
        handle_hello(ch, &h, obj, now);
        json_decref(obj);
        ch->now = now;
        upstream_receive_hello(ch->up, now);
        break;
    case CHAN_WIRE_ACK:
        error = chan_payload_decode_object(body, h.payload_len, NULL, &obj);
        if (error) {
            channel_count_drop(ch, chan_wire_error_name(error));
            return;
        }
        ch->last_rx = now;
        note_guest_keys(ch, obj);
        note_guest_mtu(ch, obj, false);
        json_decref(obj);
        handle_ack(ch, &h, now);
        break;
    case CHAN_WIRE_SYNC:
        error = chan_payload_decode_object(body, h.payload_len, NULL, &obj);
        if (error) {
            channel_count_drop(ch, chan_wire_error_name(error));
            return;
        }
        ch->last_rx = now;
        ch->now = now;
        upstream_receive_sync(ch->up, &h, obj, now);
        json_decref(obj);
        break;
    case CHAN_WIRE_DATA:
        ch->last_rx = now;
        ch->now = now;
        upstream_receive_data(ch->up, &h, body, now);
        break;
    case CHAN_WIRE_CHUNK:
    case CHAN_WIRE_XFER:
        if (ch->xfer) {
            ch->last_rx = now;
            ch->xfer(ch, &h, body, now, ch->xfer_aux);
            break;
        }
        /* fall through */
    case CHAN_WIRE_HEARTBEAT:
    default:
        channel_count_drop(ch, "unexpected_type");
        break;
    }
}

struct upstream *
channel_upstream(struct channel *ch)
{
    return ch->up;
}

void
channel_run(struct channel *ch, long long now)
{
    if (!ch->flows_installed) {
        return;
    }
    if (ch->session == SESSION_SYNCING && now - ch->last_sync
        >= SYNC_RETRY_MS) {
        send_sync(ch, now);
    }
    if (ch->session == SESSION_ACTIVE) {
        ch->now = now;
        chan_sender_run(ch->sender, now, emit_frame, ch);
    }
    if (now - ch->last_tx >= HEARTBEAT_MS) {
        if (ch->session == SESSION_NONE) {
            /* Ask the guest where it stands; it answers with HELLO. */
            send_control(ch, CHAN_WIRE_HELLO, NULL, now);
            count(ch, "tx_hello");
        } else {
            send_control(ch, CHAN_WIRE_HEARTBEAT, NULL, now);
            count(ch, "tx_heartbeat");
        }
    }
}

long long
channel_next_deadline(const struct channel *ch, long long now)
{
    if (!ch->flows_installed) {
        return LLONG_MAX;
    }
    long long next = ch->last_tx + HEARTBEAT_MS;
    if (ch->session == SESSION_SYNCING
        && ch->last_sync + SYNC_RETRY_MS < next) {
        next = ch->last_sync + SYNC_RETRY_MS;
    }
    if (next > 0) {
        /* Up to the next multiple of the slack: nothing here is latency
         * bound, and 1,000 idle channels then cost at most 4 timer wakeups a
         * second instead of 1,000. */
        next += TIMER_SLACK_MS - 1 - (next - 1) % TIMER_SLACK_MS;
    }
    if (ch->session == SESSION_ACTIVE) {
        long long d = chan_sender_next_deadline(ch->sender, now);
        if (d < next) {
            next = d;
        }
    }
    return next;
}

static json_t *
stats_json(const struct channel *ch)
{
    struct chan_sender_stats s;
    chan_sender_get_stats(ch->sender, &s);
    json_t *stats = json_deep_copy(ch->counters);
    upstream_add_counters(ch->up, stats);
    json_object_set_new(stats, "frames_sent", json_integer(s.frames_sent));
    json_object_set_new(stats, "frames_resent",
                        json_integer(s.frames_resent));
    json_object_set_new(stats, "frames_acked", json_integer(s.frames_acked));
    json_object_set_new(stats, "msgs_acked", json_integer(s.msgs_acked));
    json_object_set_new(stats, "timeouts", json_integer(s.timeouts));
    json_object_set_new(stats, "fast_retransmits",
                        json_integer(s.fast_retransmits));
    json_object_set_new(stats, "cwnd",
                        json_integer(chan_sender_cwnd(ch->sender)));
    json_object_set_new(stats, "in_flight",
                        json_integer(chan_sender_in_flight(ch->sender)));
    json_object_set_new(stats, "tx_key_generation",
                        json_integer(ch->tx_generation));
    json_object_set_new(stats, "rx_key_generation",
                        json_integer(ch->rx_generation));
    json_object_set_new(stats, "queued_msgs",
                        json_integer(chan_sender_queued_msgs(ch->sender)));
    for (int i = 0; i < CHANNEL_N_LATENCY; i++) {
        const struct latency_hist *h = &ch->latency[i];
        if (h->count) {
            char name[64];
            snprintf(name, sizeof name, "latency_%s_p50_us",
                     latency_names[i]);
            json_object_set_new(stats, name,
                                json_integer(latency_hist_percentile(h, 50)));
            snprintf(name, sizeof name, "latency_%s_p99_us",
                     latency_names[i]);
            json_object_set_new(stats, name,
                                json_integer(latency_hist_percentile(h, 99)));
        }
    }
    json_object_set_new(stats, "max_frame_sent", json_integer(s.max_frame));
    return stats;
}

void
channel_get_db_state(struct channel *ch, long long now,
                     struct chandb_channel_state *st)
{
    json_decref(ch->db_stats);
    ch->db_stats = stats_json(ch);

    enum channel_state state = channel_get_state(ch, now);
    memset(st, 0, sizeof *st);
    st->vm = ch->vm;
    st->chan_id = ch->cfg.chan_id;
    st->vid = ch->cfg.vid;
    st->iface = ch->iface;
    st->state = channel_state_name(state);
    st->reason = (state == CHANNEL_DEGRADED ? "guest not answering"
                  : state == CHANNEL_DOWN ? "flows not installed" : NULL);
    st->host_epoch = ch->epoch;
    st->guest_epoch = ch->guest_epoch;
    st->applied = ch->applied;
    json_decref(ch->applied_given);
    ch->applied_given = (ch->applied_dirty_all ? NULL
                         : json_incref(ch->applied_dirty));
    json_decref(ch->applied_dirty);
    ch->applied_dirty = json_object();
    ch->applied_dirty_all = false;
    st->applied_changed = ch->applied_given;
    format_digest(ch->digest_x, ch->digest_unknown, st->applied_digest);
    st->desired_count = ch->desired_count;
    st->synced = ch->synced;
    st->statistics = ch->db_stats;
    st->errors = ch->errors;
    st->ack_mark = ch->ack_mark;
    st->applied_seq = (ch->snapshot ? 0
                       : ch->session == SESSION_ACTIVE
                       ? chan_sender_acked_seq(ch->sender) : ch->resume_seq);
}

/* A digest of what the Channel row says but the counters: the state, the
 * epochs, the acknowledged position and sizes of the applied and desired
 * states, the errors. */
static uint64_t
channel_db_hash(const struct channel *ch, long long now)
{
    uint64_t v[] = {
        channel_get_state(ch, now), ch->epoch, ch->guest_epoch,
        ch->session, ch->snapshot != NULL,
        ch->session == SESSION_ACTIVE ? chan_sender_acked_seq(ch->sender)
                                      : ch->resume_seq,
        json_object_size(ch->applied), ch->desired_count, ch->synced,
        json_object_size(ch->errors),
    };
    uint64_t h = 1469598103934665603ULL;        /* FNV-1a. */
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        for (int b = 0; b < 8; b++) {
            h = (h ^ ((v[i] >> (8 * b)) & 0xff)) * 1099511628211ULL;
        }
    }
    return h;
}

/* Returns the channel's counters without those that an idle channel's
 * heartbeats move (a new object). */
static json_t *
active_stats(const struct channel *ch)
{
    static const char *keepalive[] = { "tx_heartbeat", "rx_ack",
                                       "tx_frames" };
    json_t *stats = stats_json(ch);
    for (size_t i = 0; i < sizeof keepalive / sizeof *keepalive; i++) {
        json_object_del(stats, keepalive[i]);
    }
    return stats;
}

/* The first time after 'now', at most 'period' ms later, in the channel's
 * own phase of 'period': channels that all started at once (a chand-host
 * restart) still write their counters spread over the whole period, not
 * in one burst. */
static long long
next_in_phase(const struct channel *ch, long long now, long long period)
{
    long long phase = (ch->cfg.chan_id * 7919LL) % period;
    long long next = now + period;
    return next - (next - phase) % period;
}

bool
channel_db_write_due(struct channel *ch, long long now)
{
    if (!ch->db_written || channel_db_hash(ch, now) != ch->db_hash) {
        return true;
    }
    if (now < ch->db_stats_due) {
        return false;
    }
    if (now >= ch->db_keepalive_due) {
        return true;
    }
    json_t *active = active_stats(ch);
    bool changed = !json_equal(active, ch->db_stats_active);
    json_decref(active);
    if (!changed) {
        /* Only heartbeats: look again in a while. */
        ch->db_stats_due = next_in_phase(ch, now, CHANNEL_STATS_WRITE_MS);
    }
    return changed;
}

long long
channel_db_prompt_due(const struct channel *ch)
{
    if (!ch->db_written) {
        return 0;               /* A new channel's row, at once. */
    } else if (!ch->synced
        || (!ch->applied_dirty_all && !json_object_size(ch->applied_dirty))) {
        return LLONG_MAX;
    }
    return ch->db_written_at + CHANNEL_PROMPT_WRITE_MS;
}

void
channel_db_written(struct channel *ch, long long now)
{
    ch->db_written = true;
    ch->db_written_at = now;
    ch->db_hash = channel_db_hash(ch, now);
    json_decref(ch->db_stats_active);
    ch->db_stats_active = active_stats(ch);
    /* Counters every few seconds; an idle channel's every minute. */
    ch->db_stats_due = next_in_phase(ch, now, CHANNEL_STATS_WRITE_MS);
    ch->db_keepalive_due = next_in_phase(ch, now,
                                         CHANNEL_STATS_IDLE_WRITE_MS);
}

void
channel_get_sent(const struct channel *ch, uint64_t *seq,
                 const json_t **sent)
{
    if (ch->session == SESSION_ACTIVE && !ch->snapshot) {
        *seq = chan_sender_last_seq(ch->sender);
        *sent = ch->sent;
    } else if (ch->session == SESSION_NONE && ch->resume_sent_seq) {
        /* Never heard the guest: pass on what the previous run knew. */
        *seq = ch->resume_sent_seq;
        *sent = ch->resume_sent;
    } else {
        *seq = 0;
        *sent = NULL;
    }
}

json_t *
channel_to_json(const struct channel *ch, long long now)
{
    char gmac[ETH_ADDR_STRLEN], gip[IP_STRLEN];
    eth_addr_to_string(&ch->cfg.guest.mac, gmac);
    ip_to_string(ch->cfg.guest.ip, gip);
    json_t *j = json_pack("{ss ss sI sI sI ss ss ss sI sI sI sI sb so so so so}",
                     "vm", ch->vm,
                     "interface", ch->iface,
                     "chan_id", (json_int_t) ch->cfg.chan_id,
                     "vid", (json_int_t) ch->cfg.vid,
                     "ofport", (json_int_t) ch->ofport,
                     "state", channel_state_name(channel_get_state(ch, now)),
                     "guest_mac", gmac,
                     "guest_ip", gip,
                     "host_epoch", (json_int_t) ch->epoch,
                     "guest_epoch", (json_int_t) ch->guest_epoch,
                     "desired", (json_int_t) ch->desired_count,
                     "applied", (json_int_t) json_object_size(ch->applied),
                     "synced", ch->synced,
                     "errors", json_deep_copy(ch->errors),
                     "counters", stats_json(ch),
                     "upstream", upstream_status_json(ch->up),
                     "latency", channel_latency_json(ch->latency, true));
    json_object_set_new(j, "mtu", json_pack(
                            "{sI so sI}",
                            "local", (json_int_t) ch->local_mtu,
                            "guest", (ch->guest_mtu
                                      ? json_integer(ch->guest_mtu)
                                      : json_null()),
                            "effective", (json_int_t) channel_mtu(ch)));
    return j;
}

json_t *
channel_latency_json(const struct latency_hist *hists, bool with_buckets)
{
    json_t *obj = json_object();
    for (int i = 0; i < CHANNEL_N_LATENCY; i++) {
        json_object_set_new(obj, latency_names[i],
                            latency_hist_to_json(&hists[i], with_buckets));
    }
    return obj;
}
