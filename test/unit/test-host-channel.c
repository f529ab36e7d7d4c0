/* CUnit suite for chand-host's channel (chand-host/channel.c): the host end
 * of a session driven with a scripted guest and a fake clock. */

#include <config.h>
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "chan-endpoint.h"
#include "chan-wire.h"
#include "chandb.h"
#include "channel.h"
#include "packets.h"
#include "poll-loop.h"
#include "vlog.h"

#define MAX_FRAMES 4096

/* Frames chand-host transmitted, decoded. */
struct sent {
    struct chan_wire_header h;
    uint8_t payload[9216];
    size_t len;
};

static struct sent sent[MAX_FRAMES];
static size_t n_sent;
static uint8_t key[32];
static size_t key_len;          /* 0: unauthenticated. */

static int
capture(uint32_t chan_id, const uint8_t *frame, size_t len, void *aux)
{
    struct pkt_udp pkt;
    CU_ASSERT_EQUAL_FATAL(pkt_udp_parse(frame, len, 0, &pkt), 0);
    CU_ASSERT_EQUAL(chan_id, 7);
    CU_ASSERT_FALSE(pkt.vlan);  /* The flows add the tag. */
    CU_ASSERT_EQUAL(pkt.ip_dst, chan_endpoint_guest_ip(7));
    CU_ASSERT_EQUAL(pkt.ip_src, CHAN_HOST_IP);
    CU_ASSERT_FATAL(n_sent < MAX_FRAMES);
    struct sent *s = &sent[n_sent++];
    const uint8_t *body;
    CU_ASSERT_EQUAL_FATAL(chan_wire_decode(pkt.payload, pkt.payload_len,
                                           key, key_len, &s->h, &body), 0);
    memcpy(s->payload, body, s->h.payload_len);
    s->len = s->h.payload_len;
    return 0;
}

static struct channel *
make_channel(const struct chandb_prior *prior)
{
    struct chan_config cfg;
    struct channel_limits limits = CHANNEL_LIMITS_DEFAULT;
    chan_config_default(7, &cfg);
    n_sent = 0;
    struct channel *ch = channel_create("vm1", &cfg, "vnet0", 3, prior,
                                        NULL, &limits, capture, NULL, 0);
    channel_set_flows_installed(ch, true);
    return ch;
}

/* Sends a guest frame of 'type' to the channel. */
static void
guest_send(struct channel *ch, uint8_t type, uint32_t epoch, uint64_t ack,
           const char *payload, long long now)
{
    struct chan_wire_header h = {
        .type = type, .flags = CHAN_WIRE_F_ACK_VALID, .vid = 4094,
        .epoch = epoch, .ack = ack, .chunk_count = 1,
    };
    uint8_t buf[2048];
    size_t len;
    CU_ASSERT_EQUAL_FATAL(chan_wire_encode(&h, payload,
                                           payload ? strlen(payload) : 0,
                                           key, key_len, buf, sizeof buf,
                                           &len), 0);
    channel_receive(ch, buf, len, now);
}

static const struct sent *
last_of_type(uint8_t type)
{
    for (size_t i = n_sent; i-- > 0; ) {
        if (sent[i].h.type == type) {
            return &sent[i];
        }
    }
    return NULL;
}

static json_t *
desired(int n, int version)
{
    json_t *d = json_object();
    for (int i = 0; i < n; i++) {
        char k[16], v[32];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "\"v%d.%d\"", i, version);
        json_object_set_new(d, k, json_pack("[Iss]", (json_int_t) version,
                                            v, v));
        json_array_set_new(json_object_get(d, k), 2,
                           json_loads(v, JSON_DECODE_ANY, NULL));
    }
    return d;
}

/* Plays an in-order guest: applies every DATA frame of 'epoch' after
 * 'position' and acks.  Returns the new position and counts records. */
static uint64_t
guest_apply(struct channel *ch, uint32_t epoch, uint64_t position,
            size_t *n_records, long long now)
{
    for (size_t i = 0; i < n_sent; i++) {
        const struct sent *s = &sent[i];
        if (s->h.type == CHAN_WIRE_DATA && s->h.epoch == epoch
            && s->h.seq == position + 1) {
            struct chan_batch b;
            chan_batch_init(&b);
            CU_ASSERT_EQUAL(chan_batch_decode(s->payload, s->len, NULL, &b),
                            0);
            *n_records += b.n;
            chan_batch_destroy(&b);
            position = s->h.seq;
        }
    }
    guest_send(ch, CHAN_WIRE_ACK, epoch, position, NULL, now);
    return position;
}

static void
test_hello_sync_snapshot(void)
{
    struct channel *ch = make_channel(NULL);
    json_t *d = desired(30, 1);
    channel_set_desired(ch, d, NULL, 0, 0);
    CU_ASSERT_EQUAL(channel_get_state(ch, 0), CHANNEL_CONNECTING);

    /* Without a session the host asks the guest to speak. */
    channel_run(ch, 1000);
    CU_ASSERT_PTR_NOT_NULL(last_of_type(CHAN_WIRE_HELLO));

    guest_send(ch, CHAN_WIRE_HELLO, 0, 0, "{\"guest_epoch\":42}", 1001);
    const struct sent *sync = last_of_type(CHAN_WIRE_SYNC);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sync);
    json_t *obj = json_loadb((const char *) sync->payload, sync->len, 0,
                             NULL);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(obj, "guest_epoch")),
                    42);
    uint64_t end = json_integer_value(json_object_get(obj, "snapshot_end"));
    CU_ASSERT(end >= 1);
    json_decref(obj);
    uint32_t epoch = sync->h.epoch;

    guest_send(ch, CHAN_WIRE_ACK, epoch, 0, NULL, 1002);
    CU_ASSERT_EQUAL(channel_get_state(ch, 1002), CHANNEL_READY);
    channel_run(ch, 1003);
    size_t n_records = 0;
    uint64_t pos = guest_apply(ch, epoch, 0, &n_records, 1004);
    CU_ASSERT_EQUAL(pos, end);
    CU_ASSERT_EQUAL(n_records, 30);
    for (size_t i = 0; i < n_sent; i++) {
        if (sent[i].h.type == CHAN_WIRE_DATA) {
            CU_ASSERT(sent[i].h.flags & CHAN_WIRE_F_SNAPSHOT);
        }
    }

    struct chandb_channel_state st;
    channel_get_db_state(ch, 1005, &st);
    CU_ASSERT_TRUE(st.synced);
    CU_ASSERT_EQUAL(json_object_size(st.applied), 30);
    CU_ASSERT_EQUAL(st.applied_seq, end);
    CU_ASSERT_STRING_EQUAL(st.state, "ready");

    /* An update and a delete travel as ordinary DATA. */
    json_t *d2 = desired(29, 2);
    n_sent = 0;
    channel_set_desired(ch, d2, NULL, 1006, 0);
    channel_get_db_state(ch, 1006, &st);
    CU_ASSERT_FALSE(st.synced);
    channel_run(ch, 1007);
    n_records = 0;
    pos = guest_apply(ch, epoch, pos, &n_records, 1008);
    CU_ASSERT_EQUAL(n_records, 30);     /* 29 puts and one delete. */
    for (size_t i = 0; i < n_sent; i++) {
        if (sent[i].h.type == CHAN_WIRE_DATA) {
            CU_ASSERT_FALSE(sent[i].h.flags & CHAN_WIRE_F_SNAPSHOT);
        }
    }
    channel_get_db_state(ch, 1009, &st);
    CU_ASSERT_TRUE(st.synced);
    CU_ASSERT_EQUAL(json_object_size(st.applied), 29);

    json_decref(d);
    json_decref(d2);
    channel_destroy(ch);
}

static void
test_resume_and_new_session(void)
{
    struct channel *ch = make_channel(NULL);
    json_t *d = desired(10, 1);
    channel_set_desired(ch, d, NULL, 0, 0);
    guest_send(ch, CHAN_WIRE_HELLO, 0, 0, "{\"guest_epoch\":5}", 1);
    uint32_t epoch = last_of_type(CHAN_WIRE_SYNC)->h.epoch;
    guest_send(ch, CHAN_WIRE_ACK, epoch, 0, NULL, 2);
    channel_run(ch, 3);
    size_t n = 0;
    uint64_t pos = guest_apply(ch, epoch, 0, &n, 4);

    /* Guest restarts with its store intact: resume, no new SYNC. */
    size_t before = n_sent;
    char hello[64];
    snprintf(hello, sizeof hello, "{\"guest_epoch\":5}");
    guest_send(ch, CHAN_WIRE_HELLO, epoch, pos, hello, 5);
    for (size_t i = before; i < n_sent; i++) {
        CU_ASSERT(sent[i].h.type != CHAN_WIRE_SYNC);
    }

    /* A wiped store (new guest epoch, epoch 0): new epoch and snapshot. */
    guest_send(ch, CHAN_WIRE_HELLO, 0, 0, "{\"guest_epoch\":6}", 6);
    const struct sent *sync = last_of_type(CHAN_WIRE_SYNC);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sync);
    CU_ASSERT(sync->h.epoch != epoch);

    /* An ack of the old epoch is stale and changes nothing. */
    guest_send(ch, CHAN_WIRE_ACK, epoch, 1, NULL, 7);
    CU_ASSERT_EQUAL(channel_get_state(ch, 7), CHANNEL_CONNECTING);
    json_decref(d);
    channel_destroy(ch);
}

static void
test_resume_after_host_restart(void)
{
    json_t *d = desired(5, 1);
    struct chandb_prior prior = {
        .host_epoch = 77, .guest_epoch = 9, .applied_seq = 3,
        .applied = json_object(),
    };
    /* The previous run left k0..k3 applied at version 1, and k9 which is
     * no longer desired. */
    for (int i = 0; i < 4; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(prior.applied, k, json_pack("[In]", 1));
    }
    json_object_set_new(prior.applied, "k9", json_pack("[In]", 1));
    struct channel *ch = make_channel(&prior);
    json_decref(prior.applied);
    channel_set_desired(ch, d, NULL, 0, 0);

    guest_send(ch, CHAN_WIRE_HELLO, 77, 3, "{\"guest_epoch\":9}", 1);
    CU_ASSERT_PTR_NULL(last_of_type(CHAN_WIRE_SYNC));
    channel_run(ch, 2);
    const struct sent *data = last_of_type(CHAN_WIRE_DATA);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_EQUAL(data->h.epoch, 77);
    CU_ASSERT_EQUAL(data->h.seq, 4);
    struct chan_batch b;
    chan_batch_init(&b);
    CU_ASSERT_EQUAL(chan_batch_decode(data->payload, data->len, NULL, &b), 0);
    /* No snapshot: the same epoch goes on.  Every desired record is sent
     * again (the Chan DB knows versions, not values), and k9, applied
     * before but no longer desired, is deleted. */
    CU_ASSERT_EQUAL(b.n, 6);
    chan_batch_destroy(&b);
    guest_send(ch, CHAN_WIRE_ACK, 77, 4, NULL, 3);
    struct chandb_channel_state st;
    channel_get_db_state(ch, 4, &st);
    CU_ASSERT_TRUE(st.synced);
    CU_ASSERT_EQUAL(strlen(st.applied_digest), 16);

    /* The next run, with the digest of that applied state, resumes and
     * sends nothing: the desired texts are vouched for.  With another
     * digest (a Record deleted and pushed again to the same version, say)
     * it sends them all again. */
    for (int good = 1; good >= 0; good--) {
        struct chandb_prior p = {
            .host_epoch = 77, .guest_epoch = 9, .applied_seq = 4,
            .applied = json_object(),
        };
        memcpy(p.applied_digest, good ? st.applied_digest
                                      : "0123456789abcdef", 17);
        for (int i = 0; i < 5; i++) {
            char k[8];
            snprintf(k, sizeof k, "k%d", i);
            json_object_set_new(p.applied, k, json_pack("[In]", 1));
        }
        struct channel *chd = make_channel(&p);
        json_decref(p.applied);
        channel_set_desired(chd, d, NULL, 0, 0);
        guest_send(chd, CHAN_WIRE_HELLO, 77, 4, "{\"guest_epoch\":9}", 1);
        channel_run(chd, 2);
        CU_ASSERT_PTR_NULL(last_of_type(CHAN_WIRE_SYNC));
        json_t *j = channel_to_json(chd, 2);
        json_t *c = json_object_get(j, "counters");
        if (good) {
            CU_ASSERT_PTR_NULL(last_of_type(CHAN_WIRE_DATA));
            CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                                c, "resume_digest_matches")), 1);
            CU_ASSERT_TRUE(json_is_true(json_object_get(j, "synced")));
        } else {
            data = last_of_type(CHAN_WIRE_DATA);
            CU_ASSERT_PTR_NOT_NULL_FATAL(data);
            chan_batch_init(&b);
            CU_ASSERT_EQUAL(chan_batch_decode(data->payload, data->len,
                                              NULL, &b), 0);
            CU_ASSERT_EQUAL(b.n, 5);
            chan_batch_destroy(&b);
            CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                                c, "resume_digest_mismatches")), 1);
        }
        json_decref(j);
        channel_destroy(chd);
    }

    /* A guest somewhere else gets a new session instead. */
    struct chandb_prior prior2 = {
        .host_epoch = 77, .guest_epoch = 9, .applied_seq = 3,
        .applied = json_object(),
    };
    struct channel *ch2 = make_channel(&prior2);
    json_decref(prior2.applied);
    channel_set_desired(ch2, d, NULL, 0, 0);
    guest_send(ch2, CHAN_WIRE_HELLO, 77, 2, "{\"guest_epoch\":9}", 1);
    CU_ASSERT_PTR_NOT_NULL(last_of_type(CHAN_WIRE_SYNC));
    CU_ASSERT(last_of_type(CHAN_WIRE_SYNC)->h.epoch != 77);
    json_decref(d);
    channel_destroy(ch);
    channel_destroy(ch2);
}

static void
test_bad_frames_counted(void)
{
    struct channel *ch = make_channel(NULL);
    uint8_t junk[100];
    memset(junk, 0xab, sizeof junk);
    channel_receive(ch, junk, sizeof junk, 0);
    channel_receive(ch, junk, 3, 0);
    guest_send(ch, CHAN_WIRE_HEARTBEAT, 1, 0, NULL, 0);
    guest_send(ch, CHAN_WIRE_HELLO, 0, 0, "{\"guest_epoch\":\"x\"}", 0);
    json_t *j = channel_to_json(ch, 0);
    json_t *c = json_object_get(j, "counters");
    CU_ASSERT(json_integer_value(json_object_get(c, "rx_drop_magic")) == 1);
    CU_ASSERT(json_integer_value(json_object_get(c, "rx_drop_short")) == 1);
    CU_ASSERT(json_integer_value(json_object_get(c,
                                                 "rx_drop_unexpected_type"))
              == 1);
    CU_ASSERT(json_integer_value(json_object_get(c, "rx_bad_hello")) == 1);
    CU_ASSERT_PTR_NULL(last_of_type(CHAN_WIRE_SYNC));
    json_decref(j);
    channel_destroy(ch);
}

static void
test_keys_and_rotation(void)
{
    struct channel *ch = make_channel(NULL);
    json_t *keys = json_pack("[[is][is]]",
        2, "2222222222222222222222222222222222222222222222222222222222222222",
        1, "1111111111111111111111111111111111111111111111111111111111111111");
    channel_set_keys(ch, keys);
    json_decref(keys);

    /* The guest holds generation 1 only: unauthenticated frames are
     * dropped, generation 1 frames accepted, and the host then sends with
     * generation 1. */
    key_len = 0;
    guest_send(ch, CHAN_WIRE_HELLO, 0, 0, "{\"guest_epoch\":1}", 0);
    CU_ASSERT_PTR_NULL(last_of_type(CHAN_WIRE_SYNC));
    memset(key, 0x11, sizeof key);
    key_len = sizeof key;
    guest_send(ch, CHAN_WIRE_HELLO, 0, 0,
               "{\"guest_epoch\":1,\"keys\":[1]}", 1);
    CU_ASSERT_PTR_NOT_NULL(last_of_type(CHAN_WIRE_SYNC));   /* Under 1. */

    /* The guest reports it now also has generation 2: the host switches. */
    uint32_t epoch = last_of_type(CHAN_WIRE_SYNC)->h.epoch;
    guest_send(ch, CHAN_WIRE_ACK, epoch, 0, "{\"keys\":[1,2]}", 2);
    memset(key, 0x22, sizeof key);
    n_sent = 0;
    channel_run(ch, 5000);      /* Heartbeat, decoded under key 2. */
    CU_ASSERT_PTR_NOT_NULL(last_of_type(CHAN_WIRE_HEARTBEAT));

    json_t *j = channel_to_json(ch, 5000);
    json_t *c = json_object_get(j, "counters");
    CU_ASSERT(json_integer_value(json_object_get(c, "rx_drop_auth")) == 1);
    CU_ASSERT(json_integer_value(json_object_get(c, "tx_key_generation"))
              == 2);
    json_decref(j);
    key_len = 0;
    channel_destroy(ch);
}

/* Brings a channel to an active session with desired state 'd' applied;
 * returns the epoch and sets '*pos'. */
static uint32_t
activate(struct channel *ch, json_t *d, uint64_t *pos)
{
    channel_set_desired(ch, d, NULL, 0, 0);
    guest_send(ch, CHAN_WIRE_HELLO, 0, 0, "{\"guest_epoch\":5}", 1);
    uint32_t epoch = last_of_type(CHAN_WIRE_SYNC)->h.epoch;
    guest_send(ch, CHAN_WIRE_ACK, epoch, 0, NULL, 2);
    channel_run(ch, 3);
    size_t n = 0;
    *pos = guest_apply(ch, epoch, 0, &n, 4);
    return epoch;
}

/* The desired state changed in place, a few keys at a time, with the keys
 * named: only they are sent, and the applied state, 'synced' and the
 * digest come out as with whole updates. */
static void
test_changes_by_key(void)
{
    uint64_t rng = 0xc4a9;
    struct channel *ch = make_channel(NULL);
    json_t *d = desired(50, 1);
    uint64_t pos;
    uint32_t epoch = activate(ch, d, &pos);
    long long now = 10;

    for (int round = 0; round < 40; round++) {
        json_t *changed = json_object();
        int n_ops = 1 + unit_random(&rng) % 5;
        for (int i = 0; i < n_ops; i++) {
            char k[16], v[48];
            snprintf(k, sizeof k, "k%d", (int) (unit_random(&rng) % 70));
            json_object_set_new(changed, k, json_true());
            if (unit_random(&rng) % 4 == 0) {
                json_object_del(d, k);
            } else {
                snprintf(v, sizeof v, "\"r%d.%d\"", round, i);
                json_object_set_new(d, k, json_pack("[Isf]",
                                                    (json_int_t) round, v,
                                                    0.0));
                json_array_set_new(json_object_get(d, k), 2,
                                   json_loads(v, JSON_DECODE_ANY, NULL));
            }
        }
        n_sent = 0;
        channel_set_desired(ch, d, changed, now, time_usec());
        struct chandb_channel_state st;
        channel_get_db_state(ch, now, &st);
        channel_run(ch, ++now);
        size_t n_records = 0;
        pos = guest_apply(ch, epoch, pos, &n_records, ++now);
        CU_ASSERT(n_records <= json_object_size(changed));
        json_decref(changed);

        channel_get_db_state(ch, ++now, &st);
        CU_ASSERT_TRUE(st.synced);
        CU_ASSERT_EQUAL(json_object_size(st.applied), json_object_size(d));
        const char *name;
        json_t *want;
        json_object_foreach (d, name, want) {
            json_t *have = json_object_get(st.applied, name);
            CU_ASSERT_PTR_NOT_NULL_FATAL(have);
            CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(have, 1)),
                                   json_string_value(json_array_get(want,
                                                                    1)));
        }
    }

    /* The running digest is the one of a channel given it all at once. */
    struct chandb_channel_state st, st2;
    channel_get_db_state(ch, now, &st);
    char digest[17];
    memcpy(digest, st.applied_digest, sizeof digest);
    json_t *copy = json_deep_copy(d);
    struct channel *ch2 = make_channel(NULL);
    uint64_t pos2;
    activate(ch2, copy, &pos2);
    channel_get_db_state(ch2, now, &st2);
    CU_ASSERT_TRUE(st2.synced);
    CU_ASSERT_EQUAL(strlen(digest), 16);
    CU_ASSERT_STRING_EQUAL(digest, st2.applied_digest);

    /* Latency: every change was seen, sent and acked; a committed row
     * completes the stages. */
    const struct latency_hist *lat = channel_latency(ch);
    CU_ASSERT(lat[CHANNEL_LAT_SEEN_TO_ACKED].count > 0);
    CU_ASSERT_EQUAL(lat[CHANNEL_LAT_SEEN_TO_SENT].count,
                    lat[CHANNEL_LAT_SEEN_TO_ACKED].count);
    CU_ASSERT_EQUAL(lat[CHANNEL_LAT_ACKED_TO_APPLIED].count, 0);
    channel_db_committed(ch, st.ack_mark, time_usec());
    CU_ASSERT_EQUAL(lat[CHANNEL_LAT_SEEN_TO_APPLIED].count,
                    lat[CHANNEL_LAT_SEEN_TO_ACKED].count);
    CU_ASSERT(lat[CHANNEL_LAT_ACKED_TO_APPLIED].count
              >= lat[CHANNEL_LAT_SEEN_TO_ACKED].count);
    json_t *j = channel_to_json(ch, now);
    json_t *shown = json_object_get(json_object_get(j, "latency"),
                                    "seen_to_applied");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(shown, "count")),
                    lat[CHANNEL_LAT_SEEN_TO_APPLIED].count);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(json_object_get(j, "counters"),
                                           "latency_seen_to_acked_p99_us"));
    json_decref(j);

    json_decref(copy);
    json_decref(d);
    channel_destroy(ch2);
    channel_destroy(ch);
}

/* A desired state of 'n' records whose values are strings of 'size'
 * bytes. */
static json_t *
desired_big(int n, size_t size)
{
    json_t *d = json_object();
    char *text = malloc(size + 3);
    text[0] = '"';
    memset(text + 1, 'm', size);
    text[size + 1] = '"';
    text[size + 2] = '\0';
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "big%d", i);
        json_object_set_new(d, k, json_pack("[Iso]", (json_int_t) 1, text,
                                            json_loads(text, JSON_DECODE_ANY,
                                                       NULL)));
    }
    free(text);
    return d;
}

/* The largest DATA payload sent so far, and how many DATA frames. */
static size_t
max_data_payload(size_t *n_data)
{
    size_t max = 0;
    *n_data = 0;
    for (size_t i = 0; i < n_sent; i++) {
        if (sent[i].h.type == CHAN_WIRE_DATA) {
            (*n_data)++;
            max = sent[i].len > max ? sent[i].len : max;
        }
    }
    return max;
}

static json_int_t
payload_mtu(const struct sent *s)
{
    json_t *obj = json_loadb((const char *) s->payload, s->len, 0, NULL);
    json_int_t mtu = json_integer_value(json_object_get(obj, "mtu"));
    json_decref(obj);
    return mtu;
}

/* Starts a session with a guest whose HELLO payload is 'hello'; returns
 * the epoch. */
static uint32_t
mtu_session(struct channel *ch, const char *hello)
{
    channel_run(ch, 1000);
    const struct sent *h = last_of_type(CHAN_WIRE_HELLO);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(payload_mtu(h), 9000);     /* Ours, advertised. */
    guest_send(ch, CHAN_WIRE_HELLO, 0, 0, hello, 1001);
    const struct sent *sync = last_of_type(CHAN_WIRE_SYNC);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sync);
    CU_ASSERT_EQUAL(payload_mtu(sync), 9000);
    guest_send(ch, CHAN_WIRE_ACK, sync->h.epoch, 0, NULL, 1002);
    return sync->h.epoch;
}

static void
test_mtu_negotiation(void)
{
    json_t *d = desired_big(40, 1000);
    size_t n_data, n_records;

    /* An older guest (no "mtu" in its HELLO): 1500 both ways. */
    struct channel *ch = make_channel(NULL);
    channel_set_mtu(ch, 9000);
    channel_set_desired(ch, d, NULL, 0, 0);
    uint32_t epoch = mtu_session(ch, "{\"guest_epoch\":1}");
    CU_ASSERT_EQUAL(channel_mtu(ch), 1500);
    channel_run(ch, 1003);
    CU_ASSERT(max_data_payload(&n_data) <= 1420);
    CU_ASSERT(n_data >= 30);
    n_records = 0;
    guest_apply(ch, epoch, 0, &n_records, 1004);
    CU_ASSERT_EQUAL(n_records, 40);
    channel_destroy(ch);

    /* A 9000 guest: batches and frames up to 9000. */
    ch = make_channel(NULL);
    channel_set_mtu(ch, 9000);
    channel_set_desired(ch, d, NULL, 0, 0);
    epoch = mtu_session(ch, "{\"guest_epoch\":1,\"mtu\":9000}");
    CU_ASSERT_EQUAL(channel_mtu(ch), 9000);
    channel_run(ch, 1003);
    size_t max = max_data_payload(&n_data);
    CU_ASSERT(max > 1420 && max <= 8920);
    CU_ASSERT(n_data <= 6);
    n_records = 0;
    uint64_t pos = guest_apply(ch, epoch, 0, &n_records, 1004);
    CU_ASSERT_EQUAL(n_records, 40);
    json_t *j = channel_to_json(ch, 1005);
    json_t *m = json_object_get(j, "mtu");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "local")), 9000);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "guest")), 9000);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "effective")),
                    9000);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(j, "counters"), "max_frame_sent")),
                    max + CHAN_WIRE_OVERHEAD);
    json_decref(j);

    /* Heartbeats carry our MTU too. */
    n_sent = 0;
    channel_run(ch, 3000);
    const struct sent *hb = last_of_type(CHAN_WIRE_HEARTBEAT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hb);
    CU_ASSERT_EQUAL(payload_mtu(hb), 9000);

    /* The guest's MTU drops while jumbo frames are queued: they could
     * never arrive, so the channel starts over, at 1500. */
    json_t *d2 = desired_big(40, 1001);
    n_sent = 0;
    channel_set_desired(ch, d2, NULL, 3001, 0);
    guest_send(ch, CHAN_WIRE_ACK, epoch, pos, "{\"mtu\":1500}", 3002);
    CU_ASSERT_EQUAL(channel_mtu(ch), 1500);
    CU_ASSERT_EQUAL(channel_get_state(ch, 3002), CHANNEL_CONNECTING);
    n_sent = 0;
    channel_run(ch, 5000);
    CU_ASSERT_PTR_NOT_NULL(last_of_type(CHAN_WIRE_HELLO));
    guest_send(ch, CHAN_WIRE_HELLO, epoch, pos,
               "{\"guest_epoch\":1,\"mtu\":1500}", 5001);
    const struct sent *sync = last_of_type(CHAN_WIRE_SYNC);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sync);
    CU_ASSERT_NOT_EQUAL(sync->h.epoch, epoch);
    guest_send(ch, CHAN_WIRE_ACK, sync->h.epoch, 0, NULL, 5002);
    channel_run(ch, 5003);
    CU_ASSERT(max_data_payload(&n_data) <= 1420);
    n_records = 0;
    guest_apply(ch, sync->h.epoch, 0, &n_records, 5004);
    CU_ASSERT_EQUAL(n_records, 40);
    struct chandb_channel_state st;
    channel_get_db_state(ch, 5005, &st);
    CU_ASSERT_TRUE(st.synced);
    channel_destroy(ch);

    /* Our MTU is the limit: a 9000 guest gets 1500 from a 1500 host, and
     * an ACK without "mtu" changes nothing. */
    ch = make_channel(NULL);
    channel_set_desired(ch, d, NULL, 0, 0);
    channel_set_mtu(ch, 1500);
    channel_run(ch, 1000);
    guest_send(ch, CHAN_WIRE_HELLO, 0, 0,
               "{\"guest_epoch\":1,\"mtu\":9000}", 1001);
    CU_ASSERT_EQUAL(channel_mtu(ch), 1500);
    channel_set_mtu(ch, 9000);
    CU_ASSERT_EQUAL(channel_mtu(ch), 9000);
    guest_send(ch, CHAN_WIRE_ACK, last_of_type(CHAN_WIRE_SYNC)->h.epoch, 0,
               "{\"keys\":[]}", 1002);
    CU_ASSERT_EQUAL(channel_mtu(ch), 9000);
    channel_destroy(ch);

    json_decref(d);
    json_decref(d2);
}

static const struct unit_test tests[] = {
    { "changes named by key", test_changes_by_key },
    { "HELLO, SYNC, snapshot, updates", test_hello_sync_snapshot },
    { "resume and new session", test_resume_and_new_session },
    { "resume after host restart", test_resume_after_host_restart },
    { "bad frames counted", test_bad_frames_counted },
    { "keys and rotation", test_keys_and_rotation },
    { "MTU negotiation", test_mtu_negotiation },
};

int
unit_register(void)
{
    vlog_set_levels_from_string("ANY:off");
    return UNIT_ADD_SUITE("host-channel", tests);
}
