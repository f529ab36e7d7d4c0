/* CUnit suite for chand-guest/receiver: the guest end of the session
 * (doc/SESSION.md) with a real datastore in a mkdtemp() directory, a fake
 * clock, and frames built here or by lib/chan-sender acting as the host. */

#include <config.h>
#include "unit.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "bridge.h"
#include "chan-endpoint.h"
#include "chan-flows.h"
#include "chan-sender.h"
#include "chan-wire.h"
#include "datastore.h"
#include "guest-fixture.h"
#include "jsonrpc.h"
#include "keyring.h"
#include "poll-loop.h"
#include "receiver.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

#define VID 4094
#define HOST_IP CHAN_HOST_IP
#define HOST_PORT CHAN_UDP_PORT

/* The channel key of generation 1 in most tests: 32 bytes, so that it
 * can be used both as a keyring key and as a string. */
static const char key[] = "test-key-0123456789abcdef-012345";

/* More keys, for the rotation tests. */
static const char key2[] = "second-key-0123456789abcdef-0123";
static const char key3[] = "third-key-0123456789abcdef-01234";

static struct ds_state
state(struct datastore *ds)
{
    struct ds_state st;

    datastore_get_state(ds, &st);
    return st;
}

/* Frames the receiver sent, decoded. */

#define MAX_SENT 64

struct sent {
    struct chan_wire_header h;
    json_t *obj;                /* Payload object (maybe empty). */
    uint32_t gen;               /* Key generation it was sent with (0: the
                                 * empty key). */
};

struct capture {
    size_t n;
    struct sent f[MAX_SENT];
    bool bad;                   /* The receiver sent a frame that does not
                                 * decode. */
    int fail;                   /* Error to return from send. */
    bool unauthenticated;       /* Decode with the empty key, not with
                                 * 'keys'. */
    struct keyring keys;        /* Every key the test uses (gen 1..3). */
};

static void
capture_init(struct capture *cap)
{
    memset(cap, 0, sizeof *cap);
    keyring_init(&cap->keys);
    CU_ASSERT_FATAL(!keyring_add(&cap->keys, 1, key));
    CU_ASSERT_FATAL(!keyring_add(&cap->keys, 2, key2));
    CU_ASSERT_FATAL(!keyring_add(&cap->keys, 3, key3));
}

static int
capture_send(const uint8_t *frame, size_t len, void *cap_)
{
    static const struct keyring none;
    struct capture *cap = cap_;
    struct chan_wire_header h;
    const uint8_t *payload;
    uint32_t gen;
    json_t *obj;

    if (cap->fail) {
        return cap->fail;
    }
    if (keyring_decode(cap->unauthenticated ? &none : &cap->keys, frame, len,
                       &h, &payload, &gen)
        || chan_payload_decode_object(payload, h.payload_len, NULL, &obj)
        || cap->n >= MAX_SENT) {
        cap->bad = true;
        return 0;
    }
    cap->f[cap->n].h = h;
    cap->f[cap->n].obj = obj;
    cap->f[cap->n].gen = gen;
    cap->n++;
    return 0;
}

/* Asserts that 'obj' has member "keys" holding exactly the 'n' generations
 * in 'gens' (ascending). */
static void
assert_keys_member(const json_t *obj, const uint32_t *gens, size_t n)
{
    json_t *keys = json_object_get(obj, "keys");

    CU_ASSERT_FATAL(json_is_array(keys));
    CU_ASSERT_EQUAL_FATAL(json_array_size(keys), n);
    for (size_t i = 0; i < n; i++) {
        json_t *g = json_array_get(keys, i);
        CU_ASSERT(json_is_integer(g));
        CU_ASSERT_EQUAL(json_integer_value(g), gens[i]);
    }
}

static void
capture_clear(struct capture *cap)
{
    for (size_t i = 0; i < cap->n; i++) {
        json_decref(cap->f[i].obj);
    }
    cap->n = 0;
    CU_ASSERT_FALSE(cap->bad);
}

/* Asserts that exactly one frame was sent, an ACK of 'epoch' with ack
 * 'ack' and payload {"keys": [1]} under key generation 1 (the fixture's
 * default keys), and clears the capture. */
static void
expect_ack(struct capture *cap, uint32_t epoch, uint64_t ack)
{
    static const uint32_t gen1[] = { 1 };

    CU_ASSERT_EQUAL_FATAL(cap->n, 1);
    CU_ASSERT_EQUAL(cap->f[0].h.type, CHAN_WIRE_ACK);
    CU_ASSERT_EQUAL(cap->f[0].h.flags, CHAN_WIRE_F_ACK_VALID);
    CU_ASSERT_EQUAL(cap->f[0].h.vid, VID);
    CU_ASSERT_EQUAL(cap->f[0].h.epoch, epoch);
    CU_ASSERT_EQUAL(cap->f[0].h.seq, 0);
    CU_ASSERT_EQUAL(cap->f[0].h.ack, ack);
    CU_ASSERT_EQUAL(cap->f[0].gen, 1);
    assert_keys_member(cap->f[0].obj, gen1, 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(cap->f[0].obj,
                                                       "mtu")), 1500);
    CU_ASSERT_EQUAL(json_object_size(cap->f[0].obj), 2);
    capture_clear(cap);
}

/* Asserts that exactly one frame was sent, a HELLO of 'epoch' with ack
 * 'ack', guest_epoch 'ge', 'snapshot_end' (-1: absent) and "keys": [1]
 * under key generation 1. */
static void
expect_hello(struct capture *cap, uint32_t epoch, uint64_t ack, uint32_t ge,
             int64_t snapshot_end)
{
    static const uint32_t gen1[] = { 1 };

    CU_ASSERT_EQUAL_FATAL(cap->n, 1);
    CU_ASSERT_EQUAL(cap->f[0].gen, 1);
    assert_keys_member(cap->f[0].obj, gen1, 1);
    CU_ASSERT_EQUAL(cap->f[0].h.type, CHAN_WIRE_HELLO);
    CU_ASSERT_EQUAL(cap->f[0].h.flags, CHAN_WIRE_F_ACK_VALID);
    CU_ASSERT_EQUAL(cap->f[0].h.epoch, epoch);
    CU_ASSERT_EQUAL(cap->f[0].h.ack, ack);
    CU_ASSERT_EQUAL(cap->f[0].h.seq, 0);
    json_t *o = cap->f[0].obj;
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "guest_epoch")),
                    ge);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "mtu")), 1500);
    if (snapshot_end < 0) {
        CU_ASSERT_PTR_NULL(json_object_get(o, "snapshot_end"));
        CU_ASSERT_EQUAL(json_object_size(o), 3);
    } else {
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(o,
                                                           "snapshot_end")),
                        snapshot_end);
        CU_ASSERT_EQUAL(json_object_size(o), 4);
    }
    capture_clear(cap);
}

/* The fixture: a store, a receiver, a capture. */

struct fix {
    struct scratch sc;
    struct datastore *ds;
    struct receiver *rx;
    struct capture cap;
    struct keyring keys;        /* The receiver's keys: generation 1. */
    long long now;
};

static struct receiver *
make_rx(struct fix *f)
{
    struct receiver_config cfg = {
        .vid = VID,
        .host_ip = HOST_IP,
        .host_port = HOST_PORT,
        .keys = &f->keys,
    };
    struct receiver *rx = receiver_create(&cfg, f->ds, capture_send,
                                          &f->cap, f->now);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    return rx;
}

static void
fix_init(struct fix *f)
{
    memset(f, 0, sizeof *f);
    capture_init(&f->cap);
    keyring_init(&f->keys);
    CU_ASSERT_FATAL(!keyring_add(&f->keys, 1, key));
    f->now = 100000;
    scratch_init(&f->sc, "rx");
    f->ds = open_ds(f->sc.path);
    f->rx = make_rx(f);
}

/* Simulates a crash and restart: the receiver goes away without flushing
 * (its open transaction is rolled back, as a dying process's would be), the
 * store is reopened. */
static void
fix_restart(struct fix *f)
{
    receiver_destroy(f->rx);
    datastore_close(f->ds);
    capture_clear(&f->cap);
    f->ds = open_ds(f->sc.path);
    f->rx = make_rx(f);
}

static void
fix_destroy(struct fix *f)
{
    receiver_destroy(f->rx);
    datastore_close(f->ds);
    capture_clear(&f->cap);
    scratch_destroy(&f->sc);
}

static struct receiver_stats
stats(const struct fix *f)
{
    struct receiver_stats s;

    receiver_get_stats(f->rx, &s);
    return s;
}

/* Frame building (the host's side). */

static size_t
build(uint8_t *buf, size_t size, uint8_t type, uint8_t flags, uint16_t vid,
      uint32_t epoch, uint64_t seq, uint16_t index, uint16_t count,
      const char *payload, const char *k)
{
    struct chan_wire_header h = {
        .type = type, .flags = flags, .vid = vid, .epoch = epoch,
        .seq = seq, .chunk_index = index, .chunk_count = count,
    };
    size_t len = 0;
    enum chan_wire_error e = chan_wire_encode(&h, payload,
                                              payload ? strlen(payload) : 0,
                                              k, strlen(k), buf, size, &len);
    CU_ASSERT_EQUAL_FATAL(e, 0);
    return len;
}

static void
feed_raw(struct fix *f, uint8_t type, uint8_t flags, uint16_t vid,
         uint32_t epoch, uint64_t seq, uint16_t index, uint16_t count,
         const char *payload)
{
    uint8_t buf[4096];
    size_t len = build(buf, sizeof buf, type, flags, vid, epoch, seq, index,
                       count, payload, key);
    receiver_input(f->rx, buf, len, HOST_IP, HOST_PORT, f->now);
}

static void
feed_sync(struct fix *f, uint32_t epoch, uint32_t guest_epoch,
          uint64_t snapshot_end)
{
    char payload[128];

    snprintf(payload, sizeof payload,
             "{\"guest_epoch\":%"PRIu32",\"snapshot_end\":%"PRIu64"}",
             guest_epoch, snapshot_end);
    feed_raw(f, CHAN_WIRE_SYNC, 0, VID, epoch, 0, 0, 1, payload);
}

static void
feed_data(struct fix *f, uint32_t epoch, uint64_t seq, const char *batch)
{
    feed_raw(f, CHAN_WIRE_DATA, 0, VID, epoch, seq, 0, 1, batch);
}

static void
feed_heartbeat(struct fix *f, uint32_t epoch)
{
    feed_raw(f, CHAN_WIRE_HEARTBEAT, 0, VID, epoch, 0, 0, 1, NULL);
}

/* A batch putting 'k' = 'v' (JSON text) at version 'ver'. */
static const char *
put1(const char *k, const char *v, int ver)
{
    static char buf[8][256];
    static int i;
    char *b = buf[i++ % 8];

    snprintf(b, 256, "{\"records\":[{\"op\":\"put\",\"key\":\"%s\","
             "\"value\":%s,\"version\":%d}]}", k, v, ver);
    return b;
}

static const char *
del1(const char *k, int ver)
{
    static char buf[4][256];
    static int i;
    char *b = buf[i++ % 4];

    snprintf(b, 256, "{\"records\":[{\"op\":\"delete\",\"key\":\"%s\","
             "\"version\":%d}]}", k, ver);
    return b;
}

/* Puts the fixture in session 'epoch' with keys a=1 and b=2 applied at
 * seqs 1 and 2 (a snapshot ending at 2). */
static void
start_session(struct fix *f, uint32_t epoch)
{
    uint32_t ge = state(f->ds).guest_epoch;

    feed_sync(f, epoch, ge, 2);
    receiver_flush(f->rx, f->now);
    expect_ack(&f->cap, epoch, 0);
    feed_data(f, epoch, 1, put1("a", "1", 1));
    feed_data(f, epoch, 2, put1("b", "2", 1));
    receiver_flush(f->rx, f->now);
    expect_ack(&f->cap, epoch, 2);
    CU_ASSERT_EQUAL(state(f->ds).snapshot, DS_SNAPSHOT_COMPLETE);
}

/* Tests. */

static void
test_hello_until_session(void)
{
    struct fix f;
    uint32_t ge;

    fix_init(&f);
    ge = state(f.ds).guest_epoch;
    CU_ASSERT_FALSE(receiver_in_session(f.rx));
    CU_ASSERT_EQUAL(receiver_next_wakeup(f.rx, f.now), LLONG_MIN / 2
                    + RECEIVER_HELLO_INTERVAL_MS);

    /* A fresh store says epoch 0, ack 0, and no snapshot_end. */
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 0, 0, ge, -1);
    CU_ASSERT_EQUAL(receiver_next_wakeup(f.rx, f.now),
                    f.now + RECEIVER_HELLO_INTERVAL_MS);
    f.now += 999;
    receiver_run(f.rx, f.now);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    f.now += 1;
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 0, 0, ge, -1);
    CU_ASSERT_EQUAL(stats(&f).tx_hello, 2);

    /* Unanswered: then after 2, 4 and every RECEIVER_HELLO_MAX_MS. */
    for (long long wait = 2000; wait <= 3 * RECEIVER_HELLO_MAX_MS;
         wait = wait * 2 > RECEIVER_HELLO_MAX_MS ? RECEIVER_HELLO_MAX_MS
                                                 : wait * 2) {
        CU_ASSERT_EQUAL(receiver_next_wakeup(f.rx, f.now), f.now + wait);
        f.now += wait - 1;
        receiver_run(f.rx, f.now);
        CU_ASSERT_EQUAL(f.cap.n, 0);
        f.now += 1;
        receiver_run(f.rx, f.now);
        expect_hello(&f.cap, 0, 0, ge, -1);
        if (wait == RECEIVER_HELLO_MAX_MS) {
            break;
        }
    }
    CU_ASSERT_EQUAL(stats(&f).tx_hello, 5);

    /* A flush with nothing in it sends nothing before its time. */
    receiver_flush(f.rx, f.now + 10);
    CU_ASSERT_EQUAL(f.cap.n, 0);

    /* In session: no more HELLOs while the host is heard. */
    start_session(&f, 77);
    CU_ASSERT(receiver_in_session(f.rx));
    for (int i = 0; i < 4; i++) {
        f.now += 1000;
        feed_heartbeat(&f, 77);
        receiver_flush(f.rx, f.now);
        expect_ack(&f.cap, 77, 2);
        receiver_run(f.rx, f.now);
        CU_ASSERT_EQUAL(f.cap.n, 0);
    }
    CU_ASSERT_EQUAL(stats(&f).rx_heartbeat, 4);

    /* Silence: out of session after RECEIVER_LIVENESS_MS, HELLO at once,
     * then every second. */
    CU_ASSERT_EQUAL(receiver_next_wakeup(f.rx, f.now),
                    f.now + RECEIVER_LIVENESS_MS);
    f.now += RECEIVER_LIVENESS_MS - 1;
    receiver_run(f.rx, f.now);
    CU_ASSERT(receiver_in_session(f.rx));
    CU_ASSERT_EQUAL(f.cap.n, 0);
    f.now += 1;
    receiver_run(f.rx, f.now);
    CU_ASSERT_FALSE(receiver_in_session(f.rx));
    expect_hello(&f.cap, 77, 2, ge, -1);
    CU_ASSERT_EQUAL(stats(&f).sessions_lost, 1);
    f.now += RECEIVER_HELLO_INTERVAL_MS;
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 77, 2, ge, -1);

    /* A heartbeat of our epoch puts it back in session (the host
     * resumed). */
    feed_heartbeat(&f, 77);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 77, 2);
    CU_ASSERT(receiver_in_session(f.rx));
    fix_destroy(&f);
}

static void
test_sync_and_snapshot(void)
{
    struct fix f;
    uint32_t ge;
    struct ds_state st;

    fix_init(&f);
    ge = state(f.ds).guest_epoch;
    start_session(&f, 5);
    assert_record(f.ds, "a", "1", 1);
    assert_record(f.ds, "b", "2", 1);

    /* A new session (host restarted): the snapshot carries a and c only;
     * b must be gone when it completes, and not before. */
    feed_sync(&f, 6, ge, 3);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 6, 0);
    st = state(f.ds);
    CU_ASSERT_EQUAL(st.host_epoch, 6);
    CU_ASSERT_EQUAL(st.position, 0);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_ACTIVE);
    CU_ASSERT_EQUAL(st.snapshot_end, 3);
    CU_ASSERT_EQUAL(receiver_next_seq(f.rx), 1);

    feed_raw(&f, CHAN_WIRE_DATA, CHAN_WIRE_F_SNAPSHOT, VID, 6, 1, 0, 1,
             put1("a", "1", 1));
    feed_raw(&f, CHAN_WIRE_DATA, CHAN_WIRE_F_SNAPSHOT, VID, 6, 2, 0, 1,
             put1("c", "[3]", 4));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 6, 2);
    CU_ASSERT_EQUAL(state(f.ds).snapshot, DS_SNAPSHOT_ACTIVE);
    assert_record(f.ds, "b", "2", 1);

    /* The last snapshot message, then a delta in the same burst. */
    feed_raw(&f, CHAN_WIRE_DATA, CHAN_WIRE_F_SNAPSHOT, VID, 6, 3, 0, 1,
             "{\"records\":[]}");
    feed_data(&f, 6, 4, put1("d", "{\"x\":true}", 9));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 6, 4);
    st = state(f.ds);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_COMPLETE);
    CU_ASSERT_EQUAL(st.position, 4);
    assert_record(f.ds, "a", "1", 1);
    assert_record(f.ds, "b", NULL, 0);
    assert_record(f.ds, "c", "[3]", 4);
    assert_record(f.ds, "d", "{\"x\":true}", 9);
    CU_ASSERT_EQUAL(stats(&f).snapshots_begun, 2);
    CU_ASSERT_EQUAL(stats(&f).snapshots_finished, 2);

    /* An empty snapshot (N = 0) is finished by the SYNC itself. */
    feed_sync(&f, 7, ge, 0);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 7, 0);
    st = state(f.ds);
    CU_ASSERT_EQUAL(st.snapshot, DS_SNAPSHOT_COMPLETE);
    CU_ASSERT_EQUAL(st.host_epoch, 7);
    uint64_t n = 99;
    CU_ASSERT_EQUAL(datastore_count(f.ds, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    fix_destroy(&f);
}

static void
test_sync_repeat_and_other_guest(void)
{
    struct fix f;
    uint32_t ge;

    fix_init(&f);
    ge = state(f.ds).guest_epoch;
    start_session(&f, 5);

    /* The same SYNC again (our ACK was lost, or a duplicate): ACK with the
     * current position, nothing reset. */
    feed_sync(&f, 5, ge, 2);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 2);
    CU_ASSERT_EQUAL(state(f.ds).position, 2);
    CU_ASSERT_EQUAL(state(f.ds).snapshot_gen, 1);
    CU_ASSERT_EQUAL(stats(&f).rx_sync_repeat, 1);
    assert_record(f.ds, "a", "1", 1);

    /* A SYNC for another guest store: ignored, HELLO at once. */
    feed_sync(&f, 9, ge + 1, 0);
    receiver_flush(f.rx, f.now);
    expect_hello(&f.cap, 5, 2, ge, -1);
    CU_ASSERT_EQUAL(state(f.ds).host_epoch, 5);
    CU_ASSERT_EQUAL(stats(&f).drop_sync_guest, 1);

    /* SYNC payloads that do not say both things: dropped. */
    static const char *const bad[] = {
        "{}",
        "{\"guest_epoch\":1}",
        "{\"snapshot_end\":1}",
        "{\"guest_epoch\":-1,\"snapshot_end\":0}",
        "{\"guest_epoch\":4294967296,\"snapshot_end\":0}",
        "{\"guest_epoch\":\"1\",\"snapshot_end\":0}",
        "{\"guest_epoch\":1,\"snapshot_end\":-5}",
        "{\"guest_epoch\":1,\"snapshot_end\":1.5}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        feed_raw(&f, CHAN_WIRE_SYNC, 0, VID, 9, 0, 0, 1, bad[i]);
    }
    CU_ASSERT_EQUAL(stats(&f).drop_sync_payload,
                    sizeof bad / sizeof bad[0]);
    feed_raw(&f, CHAN_WIRE_SYNC, 0, VID, 9, 0, 0, 1, "[1]");
    feed_raw(&f, CHAN_WIRE_SYNC, 0, VID, 9, 0, 0, 1, "{bad");
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_JSON_NOT_OBJECT], 1);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_JSON], 1);
    receiver_flush(f.rx, f.now + 1000);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    CU_ASSERT_EQUAL(state(f.ds).host_epoch, 5);
    fix_destroy(&f);
}

static void
test_duplicates_and_gaps(void)
{
    struct fix f;
    struct ds_state st;

    fix_init(&f);
    start_session(&f, 5);
    st = state(f.ds);

    /* Duplicates: not applied again, acknowledged again. */
    feed_data(&f, 5, 1, put1("a", "100", 100));
    feed_data(&f, 5, 2, put1("b", "200", 200));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 2);
    assert_record(f.ds, "a", "1", 1);
    assert_record(f.ds, "b", "2", 1);
    CU_ASSERT_EQUAL(state(f.ds).frames_applied, st.frames_applied);
    CU_ASSERT_EQUAL(stats(&f).rx_duplicate, 2);

    /* A gap: dropped, acknowledged (rate-limited). */
    feed_data(&f, 5, 4, put1("x", "1", 1));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 2);
    assert_record(f.ds, "x", NULL, 0);
    f.now += 50;
    feed_data(&f, 5, 5, put1("x", "1", 1));
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL(f.cap.n, 0);     /* Too soon. */
    CU_ASSERT_EQUAL(receiver_next_wakeup(f.rx, f.now),
                    f.now - 50 + RECEIVER_GAP_ACK_MIN_MS);
    f.now += 50;
    receiver_run(f.rx, f.now);
    expect_ack(&f.cap, 5, 2);
    CU_ASSERT_EQUAL(stats(&f).drop_gap, 2);

    /* Go-back-N: the host resends from 3. */
    feed_data(&f, 5, 3, put1("c", "3", 1));
    feed_data(&f, 5, 4, put1("x", "4", 1));
    feed_data(&f, 5, 5, del1("a", 2));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 5);
    assert_record(f.ds, "c", "3", 1);
    assert_record(f.ds, "x", "4", 1);
    assert_record(f.ds, "a", NULL, 0);
    fix_destroy(&f);
}

static void
test_other_epoch(void)
{
    struct fix f;
    uint32_t ge;

    fix_init(&f);
    ge = state(f.ds).guest_epoch;

    /* Before any session: a heartbeat of the host's epoch is "another
     * epoch" (we have none): HELLO at once. */
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 0, 0, ge, -1);
    f.now += RECEIVER_HELLO_MIN_MS;
    feed_heartbeat(&f, 42);
    receiver_flush(f.rx, f.now);
    expect_hello(&f.cap, 0, 0, ge, -1);
    CU_ASSERT_EQUAL(stats(&f).drop_epoch, 1);

    start_session(&f, 5);
    f.now += RECEIVER_HELLO_MIN_MS;
    feed_data(&f, 6, 3, put1("z", "1", 1));
    receiver_flush(f.rx, f.now);
    expect_hello(&f.cap, 5, 2, ge, -1);
    CU_ASSERT_FALSE(receiver_in_session(f.rx));
    assert_record(f.ds, "z", NULL, 0);

    /* More of them: at most one HELLO per RECEIVER_HELLO_MIN_MS. */
    f.now += 10;
    feed_heartbeat(&f, 6);
    feed_data(&f, 6, 4, put1("z", "1", 1));
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    CU_ASSERT_EQUAL(receiver_next_wakeup(f.rx, f.now),
                    f.now - 10 + RECEIVER_HELLO_MIN_MS);
    f.now += RECEIVER_HELLO_MIN_MS - 10;
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 5, 2, ge, -1);
    CU_ASSERT_EQUAL(stats(&f).drop_epoch, 4);

    /* The host resumes epoch 5: in session again. */
    feed_data(&f, 5, 3, put1("y", "1", 1));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 3);
    CU_ASSERT(receiver_in_session(f.rx));
    fix_destroy(&f);
}

/* HELLO from the host (doc/SESSION.md, handshake step 0). */
static void
test_host_hello(void)
{
    struct fix f;
    uint32_t ge;

    fix_init(&f);
    ge = state(f.ds).guest_epoch;
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 0, 0, ge, -1);

    /* Before any session: answered at once (after the rate limit). */
    f.now += RECEIVER_HELLO_MIN_MS;
    feed_raw(&f, CHAN_WIRE_HELLO, 0, VID, 0, 0, 0, 1, NULL);
    receiver_flush(f.rx, f.now);
    expect_hello(&f.cap, 0, 0, ge, -1);
    CU_ASSERT_EQUAL(stats(&f).rx_hello, 1);

    /* In session: a restarted host says HELLO with the epoch it found in
     * the Chan DB; we answer with where we are, and are out of session
     * until it sends something of our epoch. */
    start_session(&f, 5);
    CU_ASSERT(receiver_in_session(f.rx));
    f.now += 1000;
    feed_raw(&f, CHAN_WIRE_HELLO, 0, VID, 5, 0, 0, 1, NULL);
    receiver_flush(f.rx, f.now);
    expect_hello(&f.cap, 5, 2, ge, -1);
    CU_ASSERT_FALSE(receiver_in_session(f.rx));

    /* Many at once: at most one answer per RECEIVER_HELLO_MIN_MS. */
    f.now += 10;
    for (int i = 0; i < 5; i++) {
        feed_raw(&f, CHAN_WIRE_HELLO, 0, VID, 5, 0, 0, 1, "{}");
    }
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    f.now += RECEIVER_HELLO_MIN_MS;
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 5, 2, ge, -1);

    /* The host resumes from 2: DATA of our epoch, in session again. */
    feed_data(&f, 5, 3, put1("c", "3", 1));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 3);
    CU_ASSERT(receiver_in_session(f.rx));
    fix_destroy(&f);
}

static void
test_rejections(void)
{
    struct fix f;
    uint8_t buf[512];
    size_t len;
    uint64_t frames;

    fix_init(&f);
    start_session(&f, 5);
    frames = state(f.ds).frames_applied;

    len = build(buf, sizeof buf, CHAN_WIRE_DATA, 0, VID, 5, 3, 0, 1,
                put1("x", "1", 1), key);
    /* Wrong source address or port. */
    receiver_input(f.rx, buf, len, HOST_IP + 1, HOST_PORT, f.now);
    receiver_input(f.rx, buf, len, HOST_IP, HOST_PORT + 1, f.now);
    CU_ASSERT_EQUAL(stats(&f).drop_source, 2);
    /* Wrong key. */
    len = build(buf, sizeof buf, CHAN_WIRE_DATA, 0, VID, 5, 3, 0, 1,
                put1("x", "1", 1), "other");
    receiver_input(f.rx, buf, len, HOST_IP, HOST_PORT, f.now);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_AUTH], 1);
    /* Truncated at every length. */
    len = build(buf, sizeof buf, CHAN_WIRE_DATA, 0, VID, 5, 3, 0, 1,
                put1("x", "1", 1), key);
    for (size_t i = 0; i < len; i++) {
        receiver_input(f.rx, buf, i, HOST_IP, HOST_PORT, f.now);
    }
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_SHORT],
                    CHAN_WIRE_OVERHEAD);
    /* Every single-bit flip is rejected. */
    for (size_t i = 0; i < len * 8; i++) {
        buf[i / 8] ^= 1u << (i % 8);
        receiver_input(f.rx, buf, len, HOST_IP, HOST_PORT, f.now);
        buf[i / 8] ^= 1u << (i % 8);
    }
    /* Another vid. */
    feed_raw(&f, CHAN_WIRE_DATA, 0, 12, 5, 3, 0, 1, put1("x", "1", 1));
    CU_ASSERT_EQUAL(stats(&f).drop_vid, 1);
    /* A type the host never sends. */
    feed_raw(&f, CHAN_WIRE_ACK, CHAN_WIRE_F_ACK_VALID, VID, 5, 0, 0, 1,
             NULL);
    feed_raw(&f, CHAN_WIRE_ACK, CHAN_WIRE_F_ACK_VALID, VID, 5, 0, 0, 1,
             "{}");
    CU_ASSERT_EQUAL(stats(&f).drop_type, 2);
    /* A HELLO whose payload is not an object. */
    feed_raw(&f, CHAN_WIRE_HELLO, 0, VID, 5, 0, 0, 1, "[]");
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_JSON_NOT_OBJECT], 1);
    CU_ASSERT_EQUAL(stats(&f).rx_hello, 0);

    receiver_flush(f.rx, f.now + 5000);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    CU_ASSERT_EQUAL(state(f.ds).frames_applied, frames);
    assert_record(f.ds, "x", NULL, 0);

    /* Garbage from random bytes never gets anywhere. */
    uint64_t rng = 0x1234;
    for (int i = 0; i < 2000; i++) {
        size_t n = unit_random(&rng) % sizeof buf;
        for (size_t j = 0; j < n; j++) {
            buf[j] = unit_random(&rng);
        }
        if (n >= 2 && i % 2) {
            buf[0] = 0x43;      /* Magic and version, to go deeper. */
            buf[1] = 0x48;
            if (n >= 3) {
                buf[2] = 1;
            }
        }
        receiver_input(f.rx, buf, n, HOST_IP, HOST_PORT, f.now);
    }
    receiver_flush(f.rx, f.now + 5000);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    CU_ASSERT_EQUAL(state(f.ds).frames_applied, frames);

    /* Every datagram was counted once, processed or dropped. */
    struct receiver_stats s = stats(&f);
    uint64_t drops = s.drop_source + s.drop_vid + s.drop_type
                     + s.drop_epoch + s.drop_gap + s.drop_sync_payload
                     + s.drop_sync_guest + s.drop_txn + s.msgs_refused;
    for (int i = 0; i < CHAN_WIRE_N_ERRORS; i++) {
        drops += s.drop_wire[i];
    }
    CU_ASSERT_EQUAL(s.rx_datagrams,
                    drops + s.rx_data + s.rx_sync + s.rx_heartbeat
                    + s.rx_hello);
    fix_destroy(&f);
}

static void
test_unusable_messages_skipped(void)
{
    struct fix f;

    fix_init(&f);
    start_session(&f, 5);

    /* A batch that does not decode: skipped, position advances, ACKed. */
    feed_data(&f, 5, 3, "{\"records\":[{\"op\":\"frob\",\"key\":\"k\"}]}");
    feed_data(&f, 5, 4, "not json");
    feed_data(&f, 5, 5, put1("ok", "1", 1));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 5);
    CU_ASSERT_EQUAL(state(f.ds).position, 5);
    CU_ASSERT_EQUAL(stats(&f).msgs_skipped, 2);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_OP_INVALID], 1);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_JSON], 1);
    assert_record(f.ds, "ok", "1", 1);

    /* A chunk sequence that cannot be reassembled: a chunk 1 of 2 with no
     * chunk 0 before it is skipped, and so is the next. */
    feed_raw(&f, CHAN_WIRE_DATA, 0, VID, 5, 6, 1, 3, "xx");
    feed_raw(&f, CHAN_WIRE_DATA, 0, VID, 5, 7, 2, 3, "yy");
    feed_data(&f, 5, 8, put1("ok2", "2", 1));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 8);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_REASM_INDEX], 2);
    assert_record(f.ds, "ok2", "2", 1);

    /* A chunk count that changes mid-message. */
    feed_raw(&f, CHAN_WIRE_DATA, 0, VID, 5, 9, 0, 2, "{\"records\":");
    feed_raw(&f, CHAN_WIRE_DATA, 0, VID, 5, 10, 1, 3, "[]}");
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 10);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_REASM_COUNT], 1);

    /* A record the datastore refuses (wire keys are at most 256 bytes, so
     * this cannot happen today; a NUL inside a key is refused by the
     * codec first). */
    feed_data(&f, 5, 11, "{\"records\":[{\"op\":\"put\",\"key\":\"a\\u0000b\","
              "\"value\":1,\"version\":1}]}");
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 11);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_KEY_NUL], 1);
    CU_ASSERT_EQUAL(stats(&f).msgs_skipped, 6);
    fix_destroy(&f);
}

static void
test_chunked_message(void)
{
    struct fix f;
    char text[6000];
    struct chan_chunker ck;
    struct chan_wire_header tmpl = {
        .type = CHAN_WIRE_DATA, .vid = VID, .epoch = 5, .seq = 3,
        .chunk_count = 1,
    };
    struct chan_wire_header h;
    const uint8_t *p;
    size_t n, len;
    uint8_t frames[8][1600];
    size_t lens[8];
    unsigned int nf = 0;

    fix_init(&f);
    start_session(&f, 5);

    /* One value of ~5000 bytes: 4 chunks at MTU 1500. */
    len = snprintf(text, sizeof text, "{\"records\":[{\"op\":\"put\","
                   "\"key\":\"big\",\"value\":\"");
    memset(text + len, 'x', 5000);
    len += 5000;
    len += snprintf(text + len, sizeof text - len, "\",\"version\":3}]}");
    CU_ASSERT_EQUAL_FATAL(chan_chunker_init(&ck, &tmpl, text, len, 1500), 0);
    CU_ASSERT_EQUAL_FATAL(chan_chunker_count(&ck), 4);
    while (chan_chunker_next(&ck, &h, &p, &n)) {
        CU_ASSERT_EQUAL_FATAL(chan_wire_encode(&h, p, n, key, strlen(key),
                                               frames[nf], sizeof frames[nf],
                                               &lens[nf]), 0);
        nf++;
    }

    /* Burst 1: chunks 0 and 1.  Nothing complete: position stays 2, but
     * the chunks are acknowledged (ack 4) so that the host's window moves
     * on; the message is not applied until its last chunk. */
    for (unsigned int i = 0; i < 2; i++) {
        receiver_input(f.rx, frames[i], lens[i], HOST_IP, HOST_PORT, f.now);
    }
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 4);
    CU_ASSERT_EQUAL(state(f.ds).position, 2);
    CU_ASSERT_EQUAL(receiver_next_seq(f.rx), 5);

    /* Go-back-N resends chunk 0 and 1 (duplicates), then 2 and 3. */
    for (unsigned int i = 0; i < 4; i++) {
        receiver_input(f.rx, frames[i], lens[i], HOST_IP, HOST_PORT, f.now);
    }
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 6);
    char *v = NULL;
    CU_ASSERT_EQUAL_FATAL(datastore_get(f.ds, "big", &v, NULL), 0);
    CU_ASSERT_EQUAL(strlen(v), 5002);
    free(v);

    /* A restart in the middle of a message: the partial message is gone,
     * the host resends from the position. */
    tmpl.seq = 7;
    CU_ASSERT_EQUAL_FATAL(chan_chunker_init(&ck, &tmpl, text, len, 1500), 0);
    nf = 0;
    while (chan_chunker_next(&ck, &h, &p, &n)) {
        CU_ASSERT_EQUAL_FATAL(chan_wire_encode(&h, p, n, key, strlen(key),
                                               frames[nf], sizeof frames[nf],
                                               &lens[nf]), 0);
        nf++;
    }
    receiver_input(f.rx, frames[0], lens[0], HOST_IP, HOST_PORT, f.now);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 7);   /* The chunk, not yet durable. */
    fix_restart(&f);
    CU_ASSERT_EQUAL(receiver_next_seq(f.rx), 7);
    receiver_input(f.rx, frames[1], lens[1], HOST_IP, HOST_PORT, f.now);
    CU_ASSERT_EQUAL(stats(&f).drop_gap, 1);
    for (unsigned int i = 0; i < 4; i++) {
        receiver_input(f.rx, frames[i], lens[i], HOST_IP, HOST_PORT, f.now);
    }
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 10);
    fix_destroy(&f);
}

static void
test_group_commit(void)
{
    struct fix f;
    uint64_t commits;
    char k[16];

    fix_init(&f);
    start_session(&f, 5);
    commits = stats(&f).commits;

    /* 200 messages in one burst: one commit, one ACK. */
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        feed_data(&f, 5, 3 + i, put1(k, "7", i));
    }
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 202);
    CU_ASSERT_EQUAL(stats(&f).commits, commits + 1);
    CU_ASSERT_EQUAL(stats(&f).msgs_applied, 202);
    assert_record(f.ds, "k199", "7", 199);

    /* A burst that is never flushed (the daemon died) leaves nothing: the
     * host resends and everything is applied once. */
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "n%d", i);
        feed_data(&f, 5, 203 + i, put1(k, "1", 1));
    }
    fix_restart(&f);
    CU_ASSERT_EQUAL(state(f.ds).position, 202);
    assert_record(f.ds, "n0", NULL, 0);
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 5, 202, state(f.ds).guest_epoch, -1);
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "n%d", i);
        feed_data(&f, 5, 203 + i, put1(k, "1", 1));
    }
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 212);
    assert_record(f.ds, "n9", "1", 1);
    fix_destroy(&f);
}

static void
test_resume_mid_snapshot(void)
{
    struct fix f;
    uint32_t ge;

    fix_init(&f);
    ge = state(f.ds).guest_epoch;
    start_session(&f, 5);

    feed_sync(&f, 8, ge, 3);
    feed_data(&f, 8, 1, put1("a", "1", 1));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 8, 1);

    /* Crash and restart: HELLO shows where the snapshot ends. */
    fix_restart(&f);
    CU_ASSERT_EQUAL(state(f.ds).snapshot, DS_SNAPSHOT_ACTIVE);
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 8, 1, ge, 3);
    CU_ASSERT_FALSE(receiver_in_session(f.rx));

    /* The host resumes: 1 is a duplicate, 2 and 3 finish the snapshot,
     * and b (not in it) is deleted. */
    feed_data(&f, 8, 1, put1("a", "1", 1));
    feed_data(&f, 8, 2, put1("c", "3", 1));
    feed_data(&f, 8, 3, del1("zz", 1));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 8, 3);
    CU_ASSERT(receiver_in_session(f.rx));
    CU_ASSERT_EQUAL(state(f.ds).snapshot, DS_SNAPSHOT_COMPLETE);
    assert_record(f.ds, "a", "1", 1);
    assert_record(f.ds, "b", NULL, 0);
    assert_record(f.ds, "c", "3", 1);

    /* After a restart with the snapshot complete, no snapshot_end. */
    fix_restart(&f);
    receiver_run(f.rx, f.now);
    expect_hello(&f.cap, 8, 3, ge, -1);
    fix_destroy(&f);
}

/* Notifications come after the commit, one per change. */
struct notes {
    int n;
    char keys[16][16];
    enum ds_op ops[16];
    bool in_txn[16];
    struct datastore *ds;
};

static void
note_cb(void *aux, const struct ds_change *c)
{
    struct notes *no = aux;

    if (no->n < 16) {
        snprintf(no->keys[no->n], sizeof no->keys[no->n], "%s", c->key);
        no->ops[no->n] = c->op;
        no->in_txn[no->n] = datastore_in_transaction(no->ds);
        no->n++;
    }
}

static void
test_notifications(void)
{
    struct fix f;
    struct notes no = { .n = 0 };

    fix_init(&f);
    no.ds = f.ds;
    datastore_set_change_cb(f.ds, note_cb, &no);
    start_session(&f, 5);
    CU_ASSERT_EQUAL(no.n, 2);
    no.n = 0;

    feed_data(&f, 5, 3, put1("a", "9", 2));
    feed_data(&f, 5, 4, del1("b", 2));
    CU_ASSERT_EQUAL(no.n, 0);       /* Not before the commit. */
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL_FATAL(no.n, 2);
    CU_ASSERT_STRING_EQUAL(no.keys[0], "a");
    CU_ASSERT_EQUAL(no.ops[0], DS_PUT);
    CU_ASSERT_STRING_EQUAL(no.keys[1], "b");
    CU_ASSERT_EQUAL(no.ops[1], DS_DELETE);
    CU_ASSERT_FALSE(no.in_txn[0]);
    expect_ack(&f.cap, 5, 4);
    fix_destroy(&f);
}

static void
test_send_failure_and_status(void)
{
    struct fix f;
    json_t *st;

    fix_init(&f);
    start_session(&f, 5);
    f.cap.fail = ENOBUFS;
    feed_heartbeat(&f, 5);
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL(stats(&f).tx_errors, 1);
    f.cap.fail = 0;

    st = receiver_status_json(f.rx, f.now + 10);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "host_epoch")),
                    5);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "position")), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(st,
                                                             "snapshot")),
                           "complete");
    CU_ASSERT(json_is_true(json_object_get(st, "in_session")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(st,
                                                       "last_rx_ms_ago")),
                    10);
    json_t *c = json_object_get(st, "counters");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(c, "tx_errors")), 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(c, "rx_heartbeat")),
                    1);
    CU_ASSERT_PTR_NULL(json_object_get(c, "drop_gap"));  /* Zero. */
    json_decref(st);

    /* A wire drop shows up by name. */
    feed_raw(&f, CHAN_WIRE_DATA, 0, VID, 5, 3, 0, 1, "nope");
    receiver_flush(f.rx, f.now);
    capture_clear(&f.cap);
    st = receiver_status_json(f.rx, f.now);
    c = json_object_get(st, "counters");
    char name[64];
    snprintf(name, sizeof name, "drop_%s",
             chan_wire_error_name(CHAN_WIRE_ERR_JSON));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(c, name)), 1);
    json_decref(st);
    fix_destroy(&f);
}

/* The datastore fails (another process holds the write lock): the burst
 * is dropped, not acknowledged, and applied once the host resends. */
static void
test_datastore_failure(void)
{
    struct fix f;
    sqlite3 *db;

    fix_init(&f);
    start_session(&f, 5);

    CU_ASSERT_FATAL(sqlite3_open(f.sc.path, &db) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)
                    == SQLITE_OK);
    feed_data(&f, 5, 3, put1("x", "1", 1));
    feed_data(&f, 5, 4, put1("y", "1", 1));
    feed_sync(&f, 6, state(f.ds).guest_epoch, 0);
    receiver_flush(f.rx, f.now);
    /* 3 is dropped with the burst, which makes 4 a gap; the SYNC is
     * dropped too.  The gap is acknowledged with the committed
     * position. */
    expect_ack(&f.cap, 5, 2);
    CU_ASSERT_EQUAL(stats(&f).commit_errors, 1);
    CU_ASSERT_EQUAL(stats(&f).drop_txn, 2);
    CU_ASSERT_EQUAL(stats(&f).drop_gap, 1);
    CU_ASSERT_EQUAL(state(f.ds).host_epoch, 5);
    CU_ASSERT_EQUAL(receiver_next_seq(f.rx), 3);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);

    feed_data(&f, 5, 3, put1("x", "1", 1));
    feed_data(&f, 5, 4, put1("y", "1", 1));
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 4);
    assert_record(f.ds, "x", "1", 1);
    assert_record(f.ds, "y", "1", 1);
    fix_destroy(&f);
}

/* The real host sender against the receiver over a lossy, duplicating
 * link, with crashes: the store ends up equal to what the host sent, and
 * every message is acknowledged exactly once. */

#define RAND_KEYS 16

struct link {
    struct fix *f;
    uint64_t rng;
    unsigned int loss_pct;
    unsigned int dup_pct;
    uint8_t held[64][1600];     /* Frames delayed to the next burst. */
    size_t held_len[64];
    size_t n_held;
    unsigned int n_acked;
    unsigned int n_discarded;
};

static void
link_emit(const uint8_t *frame, size_t len, void *l_)
{
    struct link *l = l_;
    unsigned int r = unit_random(&l->rng) % 100;

    if (r < l->loss_pct) {
        return;
    }
    receiver_input(l->f->rx, frame, len, HOST_IP, HOST_PORT, l->f->now);
    if (r >= 100 - l->dup_pct && l->n_held < 64 && len <= 1600) {
        memcpy(l->held[l->n_held], frame, len);
        l->held_len[l->n_held++] = len;
    }
}

static void
link_done(void *cookie, bool acked, void *l_)
{
    struct link *l = l_;

    (void) cookie;
    if (acked) {
        l->n_acked++;
    } else {
        l->n_discarded++;
    }
}

static void
test_random_with_sender(void)
{
    struct fix f;
    struct link l = { .f = &f, .rng = 0x5eed, .loss_pct = 15,
                      .dup_pct = 10 };
    struct chan_sender_params p = { .vid = VID, .window = 32,
                                    .seed = 1 };
    struct chan_sender *s;
    int model[RAND_KEYS];       /* Version held by the host; 0: absent. */
    unsigned int queued = 0;
    uint32_t epoch = 1000;
    uint64_t gaps = 0, dups = 0;    /* Counted by receivers before a crash. */
    uint32_t ge;

    fix_init(&f);
    ge = state(f.ds).guest_epoch;
    memset(model, 0, sizeof model);
    s = chan_sender_create(&p, epoch, key, strlen(key), link_done, &l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    /* Session setup by hand: SYNC with an empty snapshot. */
    feed_sync(&f, epoch, ge, 0);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, epoch, 0);

    for (int round = 0; round < 3000; round++) {
        unsigned int r = unit_random(&l.rng) % 100;

        if (r < 30 && chan_sender_queued_msgs(s) < 200) {
            /* Queue a message of 1..3 random ops. */
            struct chan_batch b;
            char *text;
            size_t len;
            int n = 1 + unit_random(&l.rng) % 3;

            chan_batch_init(&b);
            for (int i = 0; i < n; i++) {
                int k = unit_random(&l.rng) % RAND_KEYS;
                char name[16];

                snprintf(name, sizeof name, "k%d", k);
                if (unit_random(&l.rng) % 4) {
                    json_t *v = json_integer(round);
                    model[k] = round + 1;
                    chan_batch_add_put(&b, name, v, round + 1);
                    json_decref(v);
                } else {
                    model[k] = 0;
                    chan_batch_add_delete(&b, name, round + 1);
                }
            }
            CU_ASSERT_EQUAL_FATAL(chan_batch_encode(&b, NULL, &text, &len),
                                  0);
            CU_ASSERT_EQUAL_FATAL(chan_sender_queue(s, 0, text, len, NULL,
                                                    NULL), 0);
            queued++;
            free(text);
            chan_batch_destroy(&b);
        } else if (r < 33) {
            /* Crash: whatever was not flushed is lost (and the receiver's
             * counters start again). */
            gaps += stats(&f).drop_gap;
            dups += stats(&f).rx_duplicate;
            fix_restart(&f);
            receiver_run(f.rx, f.now);
            CU_ASSERT_EQUAL_FATAL(f.cap.n, 1);
            CU_ASSERT_EQUAL(f.cap.f[0].h.type, CHAN_WIRE_HELLO);
            CU_ASSERT_EQUAL(f.cap.f[0].h.epoch, epoch);
            /* The host resumes from what the guest says it has. */
            CU_ASSERT_EQUAL(chan_sender_rewind(s, f.cap.f[0].h.ack, f.now),
                            0);
            capture_clear(&f.cap);
        }

        /* One burst: what the sender emits, plus delayed duplicates. */
        size_t n_held = l.n_held;
        for (size_t i = 0; i < n_held; i++) {
            receiver_input(f.rx, l.held[i], l.held_len[i], HOST_IP,
                           HOST_PORT, f.now);
        }
        l.n_held = 0;
        chan_sender_run(s, f.now, link_emit, &l);
        receiver_flush(f.rx, f.now);
        receiver_run(f.rx, f.now);
        for (size_t i = 0; i < f.cap.n; i++) {
            const struct chan_wire_header *h = &f.cap.f[i].h;
            if (h->type == CHAN_WIRE_ACK
                && unit_random(&l.rng) % 100 >= l.loss_pct) {
                CU_ASSERT_EQUAL(h->epoch, epoch);
                CU_ASSERT_EQUAL_FATAL(chan_sender_ack(s, h->ack, f.now), 0);
            }
        }
        capture_clear(&f.cap);
        f.now += 50;
    }

    /* Drain without loss. */
    l.loss_pct = 0;
    l.dup_pct = 0;
    for (int i = 0; i < 200 && !chan_sender_is_idle(s); i++) {
        chan_sender_run(s, f.now, link_emit, &l);
        receiver_flush(f.rx, f.now);
        for (size_t j = 0; j < f.cap.n; j++) {
            if (f.cap.f[j].h.type == CHAN_WIRE_ACK) {
                chan_sender_ack(s, f.cap.f[j].h.ack, f.now);
            }
        }
        capture_clear(&f.cap);
        f.now += 5000;
    }
    CU_ASSERT(chan_sender_is_idle(s));
    CU_ASSERT_EQUAL(l.n_acked, queued);
    CU_ASSERT_EQUAL(state(f.ds).position, chan_sender_last_seq(s));
    CU_ASSERT_EQUAL(state(f.ds).frames_applied, queued);
    for (int k = 0; k < RAND_KEYS; k++) {
        char name[16];
        int64_t version = -1;
        int error;

        snprintf(name, sizeof name, "k%d", k);
        error = datastore_get(f.ds, name, NULL, &version);
        if (model[k]) {
            CU_ASSERT_EQUAL(error, 0);
            CU_ASSERT_EQUAL(version, model[k]);
        } else {
            CU_ASSERT_EQUAL(error, ENOENT);
        }
    }
    /* The run went through duplicates and gaps. */
    CU_ASSERT(dups + stats(&f).rx_duplicate > 0);
    CU_ASSERT(gaps + stats(&f).drop_gap > 0);
    CU_ASSERT_EQUAL(stats(&f).msgs_skipped, 0);
    chan_sender_destroy(s);
    fix_destroy(&f);
}

/* Channel keys (keyring.h) and the receiver with them. */

/* Writes the 64 hex digits of the 32-byte key 'k' into 'hex' (lowercase,
 * or uppercase if 'upper'). */
static char *
key_hex(const char *k, bool upper, char hex[2 * KEYRING_KEY_LEN + 1])
{
    for (int i = 0; i < KEYRING_KEY_LEN; i++) {
        snprintf(hex + 2 * i, 3, upper ? "%02X" : "%02x",
                 (unsigned char) k[i]);
    }
    return hex;
}

static void
test_keyring_parse(void)
{
    char h1[65], h2[65], h3[65], H1[65];
    char text[4096];
    char error[KEYRING_ERROR_LEN];
    struct keyring ring;

    key_hex(key, false, h1);
    key_hex(key2, false, h2);
    key_hex(key3, false, h3);
    key_hex(key, true, H1);

    /* Comments, blank lines, tabs, CRLF, either case, any order, no final
     * newline. */
    snprintf(text, sizeof text,
             "# chand channel keys\n"
             "\n"
             "   \t\n"
             "  2\t%s  # the new one\r\n"
             "1 %s\n"
             "#3 %s\n"
             "2147483647 %s", h2, H1, h3, h3);
    CU_ASSERT_EQUAL_FATAL(keyring_parse(text, strlen(text), &ring, error,
                                        sizeof error), 0);
    CU_ASSERT_EQUAL_FATAL(ring.n, 3);
    CU_ASSERT_EQUAL(ring.keys[0].generation, KEYRING_GEN_MAX);
    CU_ASSERT_EQUAL(ring.keys[1].generation, 2);
    CU_ASSERT_EQUAL(ring.keys[2].generation, 1);
    CU_ASSERT(!memcmp(ring.keys[1].key, key2, KEYRING_KEY_LEN));
    CU_ASSERT(!memcmp(ring.keys[2].key, key, KEYRING_KEY_LEN));
    CU_ASSERT(!memcmp(ring.keys[0].key, key3, KEYRING_KEY_LEN));
    CU_ASSERT_PTR_EQUAL(keyring_newest(&ring), &ring.keys[0]);
    CU_ASSERT_PTR_EQUAL(keyring_find(&ring, 2), &ring.keys[1]);
    CU_ASSERT_PTR_NULL(keyring_find(&ring, 3));
    CU_ASSERT_PTR_NULL(keyring_find(&ring, 0));

    char buf[64];
    CU_ASSERT_STRING_EQUAL(keyring_format(&ring, buf, sizeof buf),
                           "1, 2, 2147483647");
    json_t *gens = keyring_generations_json(&ring);
    char *s = json_dumps(gens, JSON_COMPACT);
    CU_ASSERT_STRING_EQUAL(s, "[1,2,2147483647]");
    free(s);
    json_decref(gens);

    /* Nothing at all, or only comments: no keys. */
    CU_ASSERT_EQUAL(keyring_parse("", 0, &ring, error, sizeof error), 0);
    CU_ASSERT_EQUAL(ring.n, 0);
    CU_ASSERT_EQUAL(keyring_parse("# none\n\n", 8, &ring, error,
                                  sizeof error), 0);
    CU_ASSERT_EQUAL(ring.n, 0);
    CU_ASSERT_STRING_EQUAL(keyring_format(&ring, buf, sizeof buf), "none");
    CU_ASSERT_PTR_NULL(keyring_newest(&ring));
    gens = keyring_generations_json(&ring);
    CU_ASSERT_EQUAL(json_array_size(gens), 0);
    json_decref(gens);

    /* Every rejection names its line; none quotes the key. */
    char h1_63[65], h1_65[66], h1_g[65], h1_0x[65];
    snprintf(h1_63, sizeof h1_63, "%.63s", h1);
    snprintf(h1_65, sizeof h1_65, "%s0", h1);
    snprintf(h1_g, sizeof h1_g, "%s", h1);
    h1_g[10] = 'g';
    snprintf(h1_0x, sizeof h1_0x, "0x%.62s", h1);
    struct {
        const char *fmt;        /* %s is h1, %2$s is h2. */
        const char *error;
    } bad[] = {
        { "1\n", "line 1: expected \"GENERATION HEXKEY\", found one field" },
        { "# x\n\n%s\n", "line 3: expected \"GENERATION HEXKEY\", found "
          "one field" },
        { "1 %s extra\n", "line 1: expected \"GENERATION HEXKEY\", found 3 "
          "fields" },
        { "\n\n0 %s\n", "line 3: generation 0 is out of range "
          "(1..2147483647)" },
        { "2147483648 %s", "line 1: generation 2147483648 is out of range" },
        { "99999999999999999999999 %s", "line 1: generation "
          "99999999999999999999999 is out of range" },
        { "01 %s", "line 1: generation \"01\" has leading zeros" },
        { "00 %s", "line 1: generation \"00\" has leading zeros" },
        { "-1 %s", "line 1: generation \"-1\" is not a decimal number" },
        { "+1 %s", "line 1: generation \"+1\" is not a decimal number" },
        { "1x %s", "line 1: generation \"1x\" is not a decimal number" },
        { "%s 1", "line 1: generation \"" },
        { "1 %s\n2 %s\n1 %s\n", "line 3: generation 1 appears again (first "
          "on line 1)" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, bad[i].fmt, h1, h2, h3);
        error[0] = '\0';
        CU_ASSERT_EQUAL(keyring_parse(text, strlen(text), &ring, error,
                                      sizeof error), EINVAL);
        if (strncmp(error, bad[i].error, strlen(bad[i].error))) {
            fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, error,
                    bad[i].error);
            CU_FAIL("wrong error");
        }
    }
    struct {
        const char *k;
        const char *error;
    } bad_keys[] = {
        { h1_63, "line 1: key is 63 characters long, not 64 hex digits" },
        { h1_65, "line 1: key is 65 characters long, not 64 hex digits" },
        { "", "line 1: expected \"GENERATION HEXKEY\", found one field" },
        { h1_g, "line 1: key has a character that is not a hex digit at "
          "position 11" },
        { h1_0x, "line 1: key has a character that is not a hex digit at "
          "position 2" },
    };
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        snprintf(text, sizeof text, "1 %s\n", bad_keys[i].k);
        CU_ASSERT_EQUAL(keyring_parse(text, strlen(text), &ring, error,
                                      sizeof error), EINVAL);
        CU_ASSERT_STRING_EQUAL(error, bad_keys[i].error);
        CU_ASSERT(!*bad_keys[i].k || !strstr(error, bad_keys[i].k));
    }

    /* A NUL byte. */
    snprintf(text, sizeof text, "1 %s\n2 x", h1);
    size_t len = strlen(text);
    text[len - 1] = '\0';
    CU_ASSERT_EQUAL(keyring_parse(text, len, &ring, error, sizeof error),
                    EINVAL);
    CU_ASSERT_STRING_EQUAL(error, "line 2: contains a NUL byte");

    /* At most KEYRING_MAX keys. */
    len = 0;
    for (int i = 1; i <= KEYRING_MAX + 1; i++) {
        len += snprintf(text + len, sizeof text - len, "%d %s\n", i, h1);
    }
    CU_ASSERT_EQUAL(keyring_parse(text, len, &ring, error, sizeof error),
                    EINVAL);
    CU_ASSERT_STRING_EQUAL(error, "line 17: more than 16 keys");
    /* Exactly KEYRING_MAX is fine. */
    len = 0;
    for (int i = 1; i <= KEYRING_MAX; i++) {
        len += snprintf(text + len, sizeof text - len, "%d %s\n", i, h1);
    }
    CU_ASSERT_EQUAL(keyring_parse(text, len, &ring, error, sizeof error), 0);
    CU_ASSERT_EQUAL(ring.n, KEYRING_MAX);

    /* A truncated file fails at every length that cuts a key (and parses
     * where it does not). */
    snprintf(text, sizeof text, "12 %s\n", h1);
    len = strlen(text);
    for (size_t i = 0; i <= len; i++) {
        int error_ = keyring_parse(text, i, &ring, error, sizeof error);
        if (i == 0 || i >= len - 1) {
            CU_ASSERT_EQUAL(error_, 0);
            CU_ASSERT_EQUAL(ring.n, i ? 1 : 0);
        } else {
            CU_ASSERT_EQUAL(error_, EINVAL);
        }
    }

    /* keyring_add(). */
    keyring_init(&ring);
    CU_ASSERT_EQUAL(keyring_add(&ring, 0, key), EINVAL);
    CU_ASSERT_EQUAL(keyring_add(&ring, KEYRING_GEN_MAX + 1, key), EINVAL);
    CU_ASSERT_EQUAL(keyring_add(&ring, 5, key), 0);
    CU_ASSERT_EQUAL(keyring_add(&ring, 5, key2), EEXIST);
    CU_ASSERT_EQUAL(keyring_add(&ring, 7, key2), 0);
    CU_ASSERT_EQUAL(keyring_add(&ring, 6, key3), 0);
    CU_ASSERT_STRING_EQUAL(keyring_format(&ring, buf, sizeof buf),
                           "5, 6, 7");
    CU_ASSERT_EQUAL(keyring_newest(&ring)->generation, 7);
    for (uint32_t g = 100; g < 100 + KEYRING_MAX - 3; g++) {
        CU_ASSERT_EQUAL(keyring_add(&ring, g, key), 0);
    }
    CU_ASSERT_EQUAL(keyring_add(&ring, 1, key), ENOSPC);
    CU_ASSERT_STRING_EQUAL(keyring_format(&ring, buf, 8), "5, 6, 7");

    /* keyring_equal(). */
    struct keyring a, b;
    keyring_init(&a);
    keyring_init(&b);
    CU_ASSERT(keyring_equal(&a, &b));
    keyring_add(&a, 1, key);
    CU_ASSERT_FALSE(keyring_equal(&a, &b));
    keyring_add(&b, 1, key2);
    CU_ASSERT_FALSE(keyring_equal(&a, &b));
    keyring_init(&b);
    keyring_add(&b, 1, key);
    CU_ASSERT(keyring_equal(&a, &b));
    keyring_add(&b, 2, key);
    CU_ASSERT_FALSE(keyring_equal(&a, &b));
}

static void
test_keyring_decode(void)
{
    struct keyring none, ring1, ring12, ring123;
    struct chan_wire_header h;
    const uint8_t *payload;
    uint8_t buf[512];
    uint32_t gen = 99;
    size_t len;

    keyring_init(&none);
    keyring_init(&ring1);
    keyring_add(&ring1, 1, key);
    ring12 = ring1;
    keyring_add(&ring12, 2, key2);
    ring123 = ring12;
    keyring_add(&ring123, 3, key3);

    /* Under key 2. */
    len = build(buf, sizeof buf, CHAN_WIRE_HEARTBEAT, 0, VID, 5, 0, 0, 1,
                "{}", key2);
    CU_ASSERT_EQUAL(keyring_decode(&ring123, buf, len, &h, &payload, &gen),
                    0);
    CU_ASSERT_EQUAL(gen, 2);
    CU_ASSERT_EQUAL(h.type, CHAN_WIRE_HEARTBEAT);
    CU_ASSERT_EQUAL(h.payload_len, 2);
    CU_ASSERT(!memcmp(payload, "{}", 2));
    CU_ASSERT_EQUAL(keyring_decode(&ring12, buf, len, &h, &payload, &gen),
                    0);
    CU_ASSERT_EQUAL(gen, 2);
    CU_ASSERT_EQUAL(keyring_decode(&ring1, buf, len, &h, &payload, &gen),
                    CHAN_WIRE_ERR_AUTH);
    CU_ASSERT_EQUAL(keyring_decode(&none, buf, len, &h, &payload, &gen),
                    CHAN_WIRE_ERR_AUTH);

    /* Under the empty key: only without keys. */
    len = build(buf, sizeof buf, CHAN_WIRE_HEARTBEAT, 0, VID, 5, 0, 0, 1,
                NULL, "");
    gen = 99;
    CU_ASSERT_EQUAL(keyring_decode(&none, buf, len, &h, &payload, &gen), 0);
    CU_ASSERT_EQUAL(gen, 0);
    CU_ASSERT_EQUAL(keyring_decode(&ring123, buf, len, &h, &payload, &gen),
                    CHAN_WIRE_ERR_AUTH);

    /* Errors before authentication are the same for every key. */
    CU_ASSERT_EQUAL(keyring_decode(&ring123, buf, 10, &h, &payload, &gen),
                    CHAN_WIRE_ERR_SHORT);
    buf[0] ^= 1;
    CU_ASSERT_EQUAL(keyring_decode(&ring123, buf, len, &h, &payload, &gen),
                    CHAN_WIRE_ERR_MAGIC);
    buf[0] ^= 1;

    /* A field error under an older key, after the newer ones fail: the
     * field error, not "auth". */
    len = build(buf, sizeof buf, CHAN_WIRE_HEARTBEAT, 0, VID, 5, 0, 0, 1,
                NULL, key);
    buf[5] = 1;                 /* Reserved. */
    chan_wire_mac(key, strlen(key), buf, len - CHAN_WIRE_TRAILER_LEN,
                  buf + len - CHAN_WIRE_TRAILER_LEN);
    CU_ASSERT_EQUAL(keyring_decode(&ring123, buf, len, &h, &payload, &gen),
                    CHAN_WIRE_ERR_RESERVED);

    /* A generation tried first: the same results, whichever it is. */
    len = build(buf, sizeof buf, CHAN_WIRE_HEARTBEAT, 0, VID, 5, 0, 0, 1,
                "{}", key2);
    for (uint32_t first = 0; first <= 4; first++) {
        gen = 99;
        CU_ASSERT_EQUAL(keyring_decode_first(&ring123, first, buf, len, &h,
                                             &payload, &gen), 0);
        CU_ASSERT_EQUAL(gen, 2);
        CU_ASSERT_EQUAL(h.payload_len, 2);
        CU_ASSERT_EQUAL(keyring_decode_first(&ring1, first, buf, len, &h,
                                             &payload, &gen),
                        CHAN_WIRE_ERR_AUTH);
        CU_ASSERT_EQUAL(keyring_decode_first(&none, first, buf, len, &h,
                                             &payload, &gen),
                        CHAN_WIRE_ERR_AUTH);
        CU_ASSERT_EQUAL(keyring_decode_first(&ring123, first, buf, 10, &h,
                                             &payload, &gen),
                        CHAN_WIRE_ERR_SHORT);
    }
    len = build(buf, sizeof buf, CHAN_WIRE_HEARTBEAT, 0, VID, 5, 0, 0, 1,
                "{}", key);
    CU_ASSERT_EQUAL(keyring_decode_first(&ring123, 1, buf, len, &h,
                                         &payload, &gen), 0);
    CU_ASSERT_EQUAL(gen, 1);
    CU_ASSERT_EQUAL(keyring_decode_first(&ring123, 3, buf, len, &h,
                                         &payload, &gen), 0);
    CU_ASSERT_EQUAL(gen, 1);
}

/* Feeds a frame under key 'k' ("" for the empty key). */
static void
feed_keyed(struct fix *f, const char *k, uint8_t type, uint32_t epoch,
           uint64_t seq, const char *payload)
{
    uint8_t buf[4096];
    size_t len = build(buf, sizeof buf, type, 0, VID, epoch, seq, 0, 1,
                       payload, k);
    receiver_input(f->rx, buf, len, HOST_IP, HOST_PORT, f->now);
}

/* Asserts that exactly one frame was sent, of 'type', under key generation
 * 'gen', with "keys" = the 'n' generations 'gens', and clears the
 * capture. */
static void
expect_sent(struct capture *cap, uint8_t type, uint32_t gen,
            const uint32_t *gens, size_t n)
{
    CU_ASSERT_EQUAL_FATAL(cap->n, 1);
    CU_ASSERT_EQUAL(cap->f[0].h.type, type);
    CU_ASSERT_EQUAL(cap->f[0].gen, gen);
    assert_keys_member(cap->f[0].obj, gens, n);
    capture_clear(cap);
}

static json_t *
status_keys(struct fix *f)
{
    json_t *st = receiver_status_json(f->rx, f->now);
    json_t *keys = json_incref(json_object_get(st, "keys"));

    json_decref(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(keys);
    return keys;
}

static void
set_keys(struct fix *f, const char *const *ks, const uint32_t *gens,
         size_t n)
{
    keyring_init(&f->keys);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_FATAL(!keyring_add(&f->keys, gens[i], ks[i]));
    }
    receiver_set_keys(f->rx, &f->keys);
}

static void
test_keys_accept_reject(void)
{
    static const uint32_t g1[] = { 1 };
    struct fix f;
    json_t *k;

    fix_init(&f);
    start_session(&f, 5);
    CU_ASSERT_EQUAL(receiver_rx_generation(f.rx), 1);
    CU_ASSERT_EQUAL(receiver_tx_generation(f.rx), 1);

    /* Right key: applied. */
    feed_keyed(&f, key, CHAN_WIRE_DATA, 5, 3, put1("x", "1", 1));
    /* Keys the guest does not have, and the empty key: dropped, counted
     * under "auth", nothing applied. */
    feed_keyed(&f, key2, CHAN_WIRE_DATA, 5, 4, put1("y", "1", 1));
    feed_keyed(&f, "", CHAN_WIRE_DATA, 5, 4, put1("y", "1", 1));
    feed_keyed(&f, "test-key", CHAN_WIRE_HEARTBEAT, 5, 0, NULL);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 3);
    assert_record(f.ds, "x", "1", 1);
    assert_record(f.ds, "y", NULL, 0);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_AUTH], 3);
    CU_ASSERT_EQUAL(state(f.ds).position, 3);

    k = status_keys(&f);
    json_t *o = json_pack("{sO}", "keys", json_object_get(k, "generations"));
    assert_keys_member(o, g1, 1);
    json_decref(o);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(k, "rx_generation")),
                    1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(k, "tx_generation")),
                    1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(k, "auth_failures")),
                    3);
    /* SYNC, 2 DATA of the session, 1 DATA now. */
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(k, "verified"), "1")), 4);
    json_decref(k);
    fix_destroy(&f);
}

static void
test_keys_rotation(void)
{
    static const char *const k12[] = { key, key2 };
    static const char *const k2[] = { key2 };
    static const char *const k3[] = { key3 };
    static const uint32_t g12[] = { 1, 2 }, g2[] = { 2 }, g3[] = { 3 };
    struct fix f;
    json_t *k;

    fix_init(&f);
    start_session(&f, 5);

    /* Step 1: generation 2 is added to the guest's key file.  The guest
     * keeps answering with 1 (what the host uses) and reports both. */
    set_keys(&f, k12, g12, 2);
    CU_ASSERT_EQUAL(receiver_tx_generation(f.rx), 1);
    feed_keyed(&f, key, CHAN_WIRE_HEARTBEAT, 5, 0, NULL);
    receiver_flush(f.rx, f.now);
    expect_sent(&f.cap, CHAN_WIRE_ACK, 1, g12, 2);

    /* Step 2: the host, seeing both sides have 2, switches to it; the
     * guest follows. */
    feed_keyed(&f, key2, CHAN_WIRE_DATA, 5, 3, put1("c", "3", 1));
    receiver_flush(f.rx, f.now);
    expect_sent(&f.cap, CHAN_WIRE_ACK, 2, g12, 2);
    CU_ASSERT_EQUAL(state(f.ds).position, 3);
    CU_ASSERT_EQUAL(receiver_rx_generation(f.rx), 2);
    CU_ASSERT_EQUAL(receiver_tx_generation(f.rx), 2);
    CU_ASSERT_EQUAL(stats(&f).rx_generation_changes, 2);  /* 0->1, 1->2 */

    /* A frame still under 1 (sent before the switch) is accepted, and the
     * guest answers in kind: the host still has 1 too. */
    feed_keyed(&f, key, CHAN_WIRE_DATA, 5, 3, put1("c", "3", 1));
    receiver_flush(f.rx, f.now);
    expect_sent(&f.cap, CHAN_WIRE_ACK, 1, g12, 2);
    CU_ASSERT_EQUAL(stats(&f).rx_duplicate, 1);
    feed_keyed(&f, key2, CHAN_WIRE_HEARTBEAT, 5, 0, NULL);
    receiver_flush(f.rx, f.now);
    expect_sent(&f.cap, CHAN_WIRE_ACK, 2, g12, 2);

    /* Step 3: generation 1 is retired.  Frames under it are dropped. */
    set_keys(&f, k2, g2, 1);
    feed_keyed(&f, key, CHAN_WIRE_DATA, 5, 4, put1("d", "4", 1));
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_AUTH], 1);
    feed_keyed(&f, key2, CHAN_WIRE_DATA, 5, 4, put1("d", "4", 1));
    receiver_flush(f.rx, f.now);
    expect_sent(&f.cap, CHAN_WIRE_ACK, 2, g2, 1);
    assert_record(f.ds, "d", "4", 1);

    /* The rx generation is retired before the host moved on (a file
     * replaced wholesale): the guest sends with its newest key, and HELLO
     * carries it too. */
    set_keys(&f, k3, g3, 1);
    CU_ASSERT_EQUAL(receiver_rx_generation(f.rx), 2);
    CU_ASSERT_EQUAL(receiver_tx_generation(f.rx), 3);
    feed_keyed(&f, key2, CHAN_WIRE_HEARTBEAT, 5, 0, NULL);
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    f.now += RECEIVER_LIVENESS_MS;
    receiver_run(f.rx, f.now);      /* Session lost: HELLO. */
    CU_ASSERT_EQUAL_FATAL(f.cap.n, 1);
    CU_ASSERT_EQUAL(f.cap.f[0].h.type, CHAN_WIRE_HELLO);
    CU_ASSERT_EQUAL(f.cap.f[0].gen, 3);
    assert_keys_member(f.cap.f[0].obj, g3, 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(f.cap.f[0].obj,
                                                       "guest_epoch")),
                    state(f.ds).guest_epoch);
    capture_clear(&f.cap);

    /* The host follows to 3: in session again. */
    feed_keyed(&f, key3, CHAN_WIRE_HEARTBEAT, 5, 0, NULL);
    receiver_flush(f.rx, f.now);
    expect_sent(&f.cap, CHAN_WIRE_ACK, 3, g3, 1);
    CU_ASSERT(receiver_in_session(f.rx));

    /* Counters per generation survive a reload that keeps it. */
    k = status_keys(&f);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(k, "verified"), "3")), 1);
    json_decref(k);
    set_keys(&f, k3, g3, 1);
    k = status_keys(&f);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(k, "verified"), "3")), 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(k, "rx_generation")),
                    3);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(k, "auth_failures")),
                    2);
    json_decref(k);

    /* As many keys as a file may hold: the HELLO still fits, and the
     * guest answers with the newest generation holding the key the host
     * used. */
    static const char *const many[] = {
        key, key2, key3, key, key2, key3, key, key2, key3, key, key2, key3,
        key, key2, key3, key,
    };
    uint32_t many_gens[KEYRING_MAX];
    for (int i = 0; i < KEYRING_MAX; i++) {
        many_gens[i] = KEYRING_GEN_MAX - KEYRING_MAX + 1 + i;
    }
    set_keys(&f, many, many_gens, KEYRING_MAX);
    f.cap.keys = f.keys;
    feed_keyed(&f, "", CHAN_WIRE_HELLO, 0, 0, NULL);   /* auth */
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_AUTH], 3);
    f.now += RECEIVER_HELLO_MIN_MS;
    feed_keyed(&f, key, CHAN_WIRE_HELLO, 0, 0, NULL);
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL_FATAL(f.cap.n, 1);
    CU_ASSERT_EQUAL(f.cap.f[0].gen, KEYRING_GEN_MAX);
    assert_keys_member(f.cap.f[0].obj, many_gens, KEYRING_MAX);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(f.cap.f[0].obj, "guest_epoch"));
    capture_clear(&f.cap);
    CU_ASSERT_EQUAL(stats(&f).tx_errors, 0);

    fix_destroy(&f);
}

static void
test_keys_unauthenticated(void)
{
    struct fix f;
    json_t *k;
    uint32_t ge;

    fix_init(&f);
    receiver_destroy(f.rx);
    keyring_init(&f.keys);
    f.rx = make_rx(&f);
    f.cap.unauthenticated = true;
    ge = state(f.ds).guest_epoch;
    CU_ASSERT_EQUAL(receiver_tx_generation(f.rx), 0);

    /* HELLO under the empty key, "keys": []. */
    receiver_run(f.rx, f.now);
    expect_sent(&f.cap, CHAN_WIRE_HELLO, 0, NULL, 0);

    /* A keyed frame is not accepted; an unauthenticated one is. */
    char sync[128];
    snprintf(sync, sizeof sync, "{\"guest_epoch\":%"PRIu32","
             "\"snapshot_end\":0}", ge);
    feed_keyed(&f, key, CHAN_WIRE_SYNC, 9, 0, sync);
    CU_ASSERT_EQUAL(stats(&f).drop_wire[CHAN_WIRE_ERR_AUTH], 1);
    feed_keyed(&f, "", CHAN_WIRE_SYNC, 9, 0, sync);
    feed_keyed(&f, "", CHAN_WIRE_DATA, 9, 1, put1("u", "1", 1));
    receiver_flush(f.rx, f.now);
    expect_sent(&f.cap, CHAN_WIRE_ACK, 0, NULL, 0);
    assert_record(f.ds, "u", "1", 1);
    CU_ASSERT_EQUAL(receiver_rx_generation(f.rx), 0);

    k = status_keys(&f);
    CU_ASSERT(json_is_null(json_object_get(k, "rx_generation")));
    CU_ASSERT(json_is_null(json_object_get(k, "tx_generation")));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(k, "generations")), 0);
    CU_ASSERT_EQUAL(json_object_size(json_object_get(k, "verified")), 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(k, "auth_failures")),
                    1);
    json_decref(k);

    /* Keys arrive (a key file appeared): the empty key is no longer
     * accepted, and the guest sends with its newest key. */
    keyring_add(&f.keys, 1, key);
    receiver_set_keys(f.rx, &f.keys);
    f.cap.unauthenticated = false;
    CU_ASSERT_EQUAL(receiver_tx_generation(f.rx), 1);
    feed_keyed(&f, "", CHAN_WIRE_HEARTBEAT, 9, 0, NULL);
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL(f.cap.n, 0);
    feed_keyed(&f, key, CHAN_WIRE_HEARTBEAT, 9, 0, NULL);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 9, 1);
    fix_destroy(&f);
}

/* Replaces 'path' with 'text' atomically (a new inode, as editors and
 * configuration tools do). */
static void
replace_file(const char *path, const char *text)
{
    char tmp[256];
    FILE *file;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    file = fopen(tmp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fputs(text, file);
    CU_ASSERT_FATAL(fclose(file) == 0);
    CU_ASSERT_FATAL(rename(tmp, path) == 0);
}

static json_t *
file_status(struct keyring_file *kf)
{
    return keyring_file_status_json(kf);
}

static int64_t
file_status_int(struct keyring_file *kf, const char *name)
{
    json_t *st = file_status(kf);
    int64_t v = json_integer_value(json_object_get(st, name));

    json_decref(st);
    return v;
}

static void
test_key_file(void)
{
    char h1[65], h2[65], h3[65];
    char path[256], text[1024], error[KEYRING_ERROR_LEN], buf[64];
    struct keyring_file *kf;
    long long now = 5000;
    struct fix f;
    json_t *st;

    fix_init(&f);
    key_hex(key, false, h1);
    key_hex(key2, false, h2);
    key_hex(key3, false, h3);
    snprintf(path, sizeof path, "%s/channel.key", f.sc.dir);

    /* Missing: no keys, not an error. */
    CU_ASSERT_EQUAL_FATAL(keyring_file_open(path, now, &kf, error,
                                            sizeof error), 0);
    CU_ASSERT_EQUAL(keyring_file_get(kf)->n, 0);
    CU_ASSERT_STRING_EQUAL(keyring_file_path(kf), path);
    st = file_status(kf);
    CU_ASSERT(json_is_false(json_object_get(st, "present")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(st, "path")),
                           path);
    json_decref(st);
    CU_ASSERT_EQUAL(keyring_file_next_check(kf), now + KEYRING_CHECK_MS);

    /* It appears: loaded at the next check, not before. */
    snprintf(text, sizeof text, "1 %s\n", h1);
    replace_file(path, text);
    CU_ASSERT_FALSE(keyring_file_run(kf, now + KEYRING_CHECK_MS - 1));
    CU_ASSERT_EQUAL(keyring_file_get(kf)->n, 0);
    now += KEYRING_CHECK_MS;
    CU_ASSERT(keyring_file_run(kf, now));
    CU_ASSERT_STRING_EQUAL(keyring_format(keyring_file_get(kf), buf,
                                          sizeof buf), "1");
    CU_ASSERT_EQUAL(file_status_int(kf, "loads"), 2);

    /* The receiver gets them. */
    receiver_set_keys(f.rx, keyring_file_get(kf));
    start_session(&f, 5);

    /* Unchanged: not read again. */
    now += KEYRING_CHECK_MS;
    CU_ASSERT_FALSE(keyring_file_run(kf, now));
    CU_ASSERT_EQUAL(file_status_int(kf, "loads"), 2);

    /* Rotation: 2 added. */
    snprintf(text, sizeof text, "1 %s\n2 %s\n", h1, h2);
    replace_file(path, text);
    now += KEYRING_CHECK_MS;
    CU_ASSERT(keyring_file_run(kf, now));
    CU_ASSERT_STRING_EQUAL(keyring_format(keyring_file_get(kf), buf,
                                          sizeof buf), "1, 2");

    /* A bad file: the keys stay, the error is counted once and kept. */
    snprintf(text, sizeof text, "1 %s\n2 %.60s\n", h1, h2);
    replace_file(path, text);
    now += KEYRING_CHECK_MS;
    CU_ASSERT_FALSE(keyring_file_run(kf, now));
    CU_ASSERT_STRING_EQUAL(keyring_format(keyring_file_get(kf), buf,
                                          sizeof buf), "1, 2");
    CU_ASSERT_EQUAL(file_status_int(kf, "load_errors"), 1);
    st = file_status(kf);
    const char *last = json_string_value(json_object_get(st, "last_error"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(last);
    CU_ASSERT(strstr(last, path) == last);
    CU_ASSERT(strstr(last, ": line 2: key is 60 characters long") != NULL);
    CU_ASSERT(json_is_true(json_object_get(st, "present")));
    json_decref(st);
    now += KEYRING_CHECK_MS;
    CU_ASSERT_FALSE(keyring_file_run(kf, now));
    CU_ASSERT_EQUAL(file_status_int(kf, "load_errors"), 1);
    /* The receiver still has its keys: nothing changed for it. */
    feed_keyed(&f, key, CHAN_WIRE_HEARTBEAT, 5, 0, NULL);
    receiver_flush(f.rx, f.now);
    expect_ack(&f.cap, 5, 2);

    /* A forced reload of the bad file: same. */
    bool changed = true;
    error[0] = '\0';
    CU_ASSERT_EQUAL(keyring_file_reload(kf, &changed, error, sizeof error),
                    EINVAL);
    CU_ASSERT_FALSE(changed);
    CU_ASSERT(strstr(error, "line 2") != NULL);
    CU_ASSERT_EQUAL(file_status_int(kf, "load_errors"), 2);
    CU_ASSERT_EQUAL(keyring_file_get(kf)->n, 2);

    /* Fixed, and 1 retired. */
    snprintf(text, sizeof text, "# rotated\n2 %s\n3 %s\n", h2, h3);
    replace_file(path, text);
    now += KEYRING_CHECK_MS;
    CU_ASSERT(keyring_file_run(kf, now));
    CU_ASSERT_STRING_EQUAL(keyring_format(keyring_file_get(kf), buf,
                                          sizeof buf), "2, 3");
    CU_ASSERT_EQUAL(keyring_file_reload(kf, &changed, error, sizeof error),
                    0);
    CU_ASSERT_FALSE(changed);

    /* Rewritten in place with other contents of another size. */
    FILE *file = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fprintf(file, "3 %s\n", h3);
    fclose(file);
    now += KEYRING_CHECK_MS;
    CU_ASSERT(keyring_file_run(kf, now));
    CU_ASSERT_STRING_EQUAL(keyring_format(keyring_file_get(kf), buf,
                                          sizeof buf), "3");

    /* Removed: no keys. */
    CU_ASSERT_FATAL(unlink(path) == 0);
    now += KEYRING_CHECK_MS;
    CU_ASSERT(keyring_file_run(kf, now));
    CU_ASSERT_EQUAL(keyring_file_get(kf)->n, 0);
    st = file_status(kf);
    CU_ASSERT(json_is_false(json_object_get(st, "present")));
    json_decref(st);
    now += KEYRING_CHECK_MS;
    CU_ASSERT_FALSE(keyring_file_run(kf, now));
    keyring_file_destroy(kf);

    /* Invalid at open: an error naming the file and the line. */
    snprintf(text, sizeof text, "\n1 %s\n1 %s\n", h1, h2);
    replace_file(path, text);
    kf = (void *) 1;
    CU_ASSERT_EQUAL(keyring_file_open(path, now, &kf, error, sizeof error),
                    EINVAL);
    CU_ASSERT_PTR_NULL(kf);
    snprintf(text, sizeof text, "%s: line 3: generation 1 appears again "
             "(first on line 2)", path);
    CU_ASSERT_STRING_EQUAL(error, text);

    /* Not a regular file; too large; unreadable directory path. */
    CU_ASSERT_EQUAL(keyring_file_open(f.sc.dir, now, &kf, error,
                                      sizeof error), EINVAL);
    CU_ASSERT(strstr(error, "not a regular file") != NULL);
    file = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    for (int i = 0; i <= KEYRING_FILE_MAX / 64; i++) {
        fprintf(file, "%063d\n", 0);
    }
    fclose(file);
    CU_ASSERT_EQUAL(keyring_file_open(path, now, &kf, error, sizeof error),
                    EFBIG);
    CU_ASSERT(strstr(error, "larger than 65536 bytes") != NULL);
    unlink(path);
    snprintf(text, sizeof text, "%s/guest.db/x", f.sc.dir);
    CU_ASSERT_EQUAL(keyring_file_open(text, now, &kf, error, sizeof error),
                    ENOTDIR);
    CU_ASSERT(strstr(error, "cannot open") != NULL);
    fix_destroy(&f);
}

/* The guest bridge's pure parts. */

static void
test_bridge_names(void)
{
    static const char *const good[] = {
        "eth0", "br-chan", "chand0", "a", "A.b_c-9", "123456789012345",
    };
    static const char *const bad[] = {
        "", "1234567890123456", "-eth0", ".", "..", "eth 0", "eth/0",
        "eth0;rm", "br\tx", "\xc3\xa9",
    };

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CU_ASSERT(bridge_name_is_valid(good[i]));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_FALSE(bridge_name_is_valid(bad[i]));
    }
    CU_ASSERT_FALSE(bridge_name_is_valid(NULL));
}

static char *
slurp(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "r");
    char *buf = malloc(1 << 16);
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = '\0';
    *lenp = n;
    return buf;
}

static void
test_bridge_render(void)
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;
    struct flow_template *ft;
    struct chan_config cfg;
    size_t len, n_channel = 0, n_shared = 0;
    char *text = slurp(FLOWS_DIR "/guest.flows", &len);

    CU_ASSERT_EQUAL_FATAL(flow_template_parse(text, len, &ft, &diag), 0);
    free(text);
    CU_ASSERT_EQUAL_FATAL(chan_config_from_strings("300", "100", NULL, NULL,
                                                   &cfg), 0);
    CU_ASSERT_EQUAL_FATAL(chan_flows_render_guest(ft, &cfg, 7, 9, &flows,
                                                  &diag, NULL), 0);
    CU_ASSERT(flows.n >= 3);
    for (size_t i = 0; i < flows.n; i++) {
        const struct flow_template_flow *fl = &flows.flows[i];

        CU_ASSERT(flow_template_is_chand_cookie(fl->cookie));
        if (fl->section == FLOW_TEMPLATE_CHANNEL) {
            n_channel++;
            CU_ASSERT_EQUAL(flow_template_cookie_chan_id(fl->cookie), 300);
            /* Every channel rule involves chand0's port. */
            CU_ASSERT(strstr(fl->text, "in_port=9") != NULL
                      || strstr(fl->text, "output:9") != NULL);
        } else {
            n_shared++;
            CU_ASSERT_EQUAL(flow_template_cookie_chan_id(fl->cookie), 0);
        }
        CU_ASSERT(strstr(fl->text, "${") == NULL);
    }
    CU_ASSERT(n_channel >= 2);
    CU_ASSERT(n_shared >= 1);

    /* The host -> guest rule has the channel's values. */
    bool found = false;
    for (size_t i = 0; i < flows.n; i++) {
        const char *t = flows.flows[i].text;
        if (strstr(t, "in_port=7") && strstr(t, "dl_vlan=100")) {
            found = true;
            CU_ASSERT(strstr(t, "nw_dst=169.254.2.44") != NULL);
            CU_ASSERT(strstr(t, "dl_dst=0a:c4:00:00:01:2c") != NULL);
            CU_ASSERT(strstr(t, "nw_src=169.254.0.1") != NULL);
            CU_ASSERT(strstr(t, "tp_dst=7433") != NULL);
            CU_ASSERT(strstr(t, "output:9") != NULL);
        }
    }
    CU_ASSERT(found);

    /* Other ports: same rules, other cookies. */
    struct flow_template_flows flows2 = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    CU_ASSERT_EQUAL(chan_flows_render_guest(ft, &cfg, 8, 9, &flows2, &diag,
                                            NULL), 0);
    CU_ASSERT_EQUAL(flows2.n, flows.n);
    size_t n_same = 0;
    for (size_t i = 0; i < flows.n && i < flows2.n; i++) {
        n_same += flows.flows[i].cookie == flows2.flows[i].cookie;
    }
    CU_ASSERT(n_same < flows.n);
    flow_template_flows_destroy(&flows2);
    flow_template_flows_destroy(&flows);
    flow_template_destroy(ft);
}

static void
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* bridge_create(), returning 0 or the errno it failed with. */
static int
create_bridge(const struct bridge_config *bc, struct bridge **brp)
{
    errno = 0;
    *brp = bridge_create(bc);
    return *brp ? 0 : errno;
}

static void
test_bridge_create(void)
{
    struct scratch sc;
    struct bridge *br = NULL;
    char bad[256], unknown_var[256];
    struct bridge_config bc = {
        .ovs_db = "unix:/nonexistent/db.sock",
        .ovs_rundir = "/nonexistent",
        .bridge = "br-chan",
        .vnic = "eth0",
        .port = "chand0",
        .flows = FLOWS_DIR "/guest.flows",
    };

    scratch_init(&sc, "rx");
    chan_config_default(5, &bc.chan);

    /* A good configuration: nothing runs until bridge_run(). */
    CU_ASSERT_EQUAL(create_bridge(&bc, &br), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(br);
    CU_ASSERT_FALSE(bridge_is_ready(br));
    CU_ASSERT_EQUAL(bridge_get_seqno(br), 0);
    CU_ASSERT_EQUAL(bridge_next_wakeup(br, 1000), 1000);
    json_t *st = bridge_status_json(br, 1000);
    CU_ASSERT(json_is_false(json_object_get(st, "ready")));
    CU_ASSERT(json_is_null(json_object_get(st, "syncing")));
    CU_ASSERT(json_is_null(json_object_get(st, "step")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(st, "bridge")),
                           "br-chan");
    json_decref(st);
    bridge_destroy(br);

    /* Bad names, clashing names. */
    bc.vnic = "eth0;reboot";
    CU_ASSERT_EQUAL(create_bridge(&bc, &br), EINVAL);
    CU_ASSERT_PTR_NULL(br);
    bc.vnic = "chand0";
    CU_ASSERT_EQUAL(create_bridge(&bc, &br), EINVAL);
    bc.vnic = "eth0";

    /* Missing, malformed, and unrenderable templates. */
    bc.flows = "/nonexistent/guest.flows";
    CU_ASSERT_EQUAL(create_bridge(&bc, &br), ENOENT);
    snprintf(bad, sizeof bad, "%s/bad.flows", sc.dir);
    write_text(bad, "priority=1,actions=drop\n");
    bc.flows = bad;
    CU_ASSERT_EQUAL(create_bridge(&bc, &br), EINVAL);
    snprintf(unknown_var, sizeof unknown_var, "%s/var.flows", sc.dir);
    write_text(unknown_var, "[bridge]\npriority=1,in_port=${NOPE},"
               "actions=drop\n");
    bc.flows = unknown_var;
    CU_ASSERT_EQUAL(create_bridge(&bc, &br), EINVAL);
    CU_ASSERT_PTR_NULL(br);
    scratch_destroy(&sc);
}

/* Without a reachable database the setup fails after
 * BRIDGE_OVSDB_WAIT_MS, is retried with the backoff, and bridge_run()
 * never waits. */
static void
test_bridge_no_database(void)
{
    struct bridge_config bc = {
        .ovs_db = "unix:/nonexistent/db.sock",
        .ovs_rundir = "/nonexistent",
        .bridge = "br-fake",
        .vnic = "fakevnic",
        .port = "fakechand0",
        .flows = FLOWS_DIR "/guest.flows",
        .retry_min_ms = 100,
        .retry_max_ms = 400,
    };
    long long start = time_msec(), max_run_ms = 0;
    struct bridge *br;
    json_t *st;

    chan_config_default(77, &bc.chan);
    CU_ASSERT_EQUAL_FATAL(create_bridge(&bc, &br), 0);
    for (;;) {
        long long t0 = time_msec();
        bridge_run(br, t0);
        if (time_msec() - t0 > max_run_ms) {
            max_run_ms = time_msec() - t0;
        }
        st = bridge_status_json(br, time_msec());
        if (json_integer_value(json_object_get(st, "setup_failures")) >= 2
            || time_msec() - start > 10000) {
            break;
        }
        json_decref(st);
        bridge_wait(br, time_msec());
        poll_block();
    }
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(st,
                                                       "setup_failures")),
                    2);
    CU_ASSERT(strstr(json_string_value(json_object_get(st, "last_error")),
                     "no connection to the Open vSwitch database") != NULL);
    CU_ASSERT(json_is_false(json_object_get(st, "ready")));
    CU_ASSERT(json_is_false(json_object_get(st, "ovsdb_connected")));
    CU_ASSERT(time_msec() - start >= 2 * BRIDGE_OVSDB_WAIT_MS);
    CU_ASSERT(max_run_ms < 100);
    json_decref(st);
    bridge_destroy(br);
}

/* The local API, driven in-process: one client connection, the server run
 * between the client's steps. */

struct api_fix {
    struct fix f;
    struct api *api;
    char name[64];
    int n_status;
};

static void
api_change_cb(void *api_, const struct ds_change *change)
{
    api_notify(api_, change);
}

static json_t *
api_status_cb(void *af_)
{
    struct api_fix *af = af_;

    af->n_status++;
    return json_pack("{s:i}", "calls", af->n_status);
}

static void
api_fix_init(struct api_fix *af)
{
    memset(af, 0, sizeof *af);
    fix_init(&af->f);
    snprintf(af->name, sizeof af->name, "@chand-test-api-%ld",
             (long) getpid());
    af->api = api_create(af->name, af->f.ds, api_status_cb, af);
    CU_ASSERT_PTR_NOT_NULL_FATAL(af->api);
    datastore_set_change_cb(af->f.ds, api_change_cb, af->api);
}

static void
api_fix_destroy(struct api_fix *af)
{
    datastore_set_change_cb(af->f.ds, NULL, NULL);
    api_destroy(af->api);
    fix_destroy(&af->f);
}

static struct jsonrpc *
api_connect(struct api_fix *af)
{
    char name[80];
    struct stream *stream;

    snprintf(name, sizeof name, "unix:%s", af->name);
    CU_ASSERT_EQUAL_FATAL(stream_open_block(name, &stream), 0);
    api_run(af->api);
    return jsonrpc_open(stream);
}

/* Runs server and client until the client has a message (returned, a new
 * reference) or 'tries' rounds passed (NULL). */
static json_t *
api_pump(struct api_fix *af, struct jsonrpc *c, int tries)
{
    for (int i = 0; i < tries; i++) {
        json_t *msg;

        api_run(af->api);
        jsonrpc_run(c);
        if (!jsonrpc_recv(c, &msg)) {
            return msg;
        }
        if (jsonrpc_get_status(c)) {
            return NULL;
        }
        poll_cancel();
    }
    return NULL;
}

/* Sends request 'method' with 'params' (stolen) and returns the answer (a
 * new reference). */
static json_t *
api_call(struct api_fix *af, struct jsonrpc *c, const char *method,
         json_t *params)
{
    CU_ASSERT_EQUAL(jsonrpc_send(c, jsonrpc_create_request(method, params,
                                                           NULL)), 0);
    json_t *reply = api_pump(af, c, 100);
    CU_ASSERT_PTR_NOT_NULL(reply);
    return reply;
}

static const char *
error_of(const json_t *reply)
{
    return json_string_value(jsonrpc_msg_error(reply));
}

static void
test_api(void)
{
    struct api_fix af;
    struct jsonrpc *c;
    struct api_stats st;
    json_t *r;

    api_fix_init(&af);
    start_session(&af.f, 5);        /* a=1, b=2. */
    c = api_connect(&af);

    r = api_call(&af, c, "get", json_pack("[s]", "a"));
    CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_REPLY);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        jsonrpc_msg_result(r), "value")), 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        jsonrpc_msg_result(r), "version")), 1);
    json_decref(r);

    r = api_call(&af, c, "get", json_pack("[s]", "zz"));
    CU_ASSERT_STRING_EQUAL(error_of(r), "not found");
    json_decref(r);

    r = api_call(&af, c, "list", NULL);
    CU_ASSERT_EQUAL(json_array_size(jsonrpc_msg_result(r)), 2);
    json_decref(r);
    r = api_call(&af, c, "list", json_pack("[s]", "b"));
    CU_ASSERT_EQUAL(json_array_size(jsonrpc_msg_result(r)), 1);
    json_decref(r);

    r = api_call(&af, c, "status", NULL);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        jsonrpc_msg_result(r), "calls")), 1);
    json_decref(r);
    json_t *expect = json_pack("[i{s:n}]", 1, "x");
    r = api_call(&af, c, "echo", json_incref(expect));
    CU_ASSERT(json_equal(jsonrpc_msg_result(r), expect));
    json_decref(expect);
    json_decref(r);

    /* Bad requests: errors, connection kept. */
    static const char *const bad[][2] = {
        { "get", "[]" }, { "get", "[1]" }, { "get", "[\"\"]" },
        { "get", "[\"a\", \"b\"]" }, { "list", "[1]" },
        { "list", "[\"a\", \"b\"]" }, { "watch", "[{}]" },
        { "status", "[1]" }, { "frob", "[]" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = api_call(&af, c, bad[i][0], json_loads(bad[i][1], 0, NULL));
        CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_ERROR);
        CU_ASSERT_PTR_NOT_NULL(error_of(r));
        json_decref(r);
    }
    api_get_stats(af.api, &st);
    CU_ASSERT_EQUAL(st.bad_requests, 1 + sizeof bad / sizeof bad[0]);
    /* A message that is not a request, with an id: an error reply. */
    jsonrpc_send(c, json_pack("{s:i, s:i}", "bogus", 1, "id", 7));
    r = api_pump(&af, c, 100);
    CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_ERROR);
    json_decref(r);

    /* Watch "a": updates for a only, after the commit. */
    r = api_call(&af, c, "watch", json_pack("[s]", "a"));
    CU_ASSERT(json_is_true(json_object_get(jsonrpc_msg_result(r),
                                           "watching")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        jsonrpc_msg_result(r), "position")), 2);
    json_decref(r);
    feed_data(&af.f, 5, 3, put1("b", "20", 2));
    feed_data(&af.f, 5, 4, put1("a", "{\"n\":[1]}", 3));
    feed_data(&af.f, 5, 5, del1("a", 4));
    CU_ASSERT_PTR_NULL(api_pump(&af, c, 5));    /* Not committed yet. */
    receiver_flush(af.f.rx, af.f.now);
    capture_clear(&af.f.cap);
    r = api_pump(&af, c, 100);
    CU_ASSERT_EQUAL_FATAL(jsonrpc_msg_type(r), JSONRPC_NOTIFY);
    CU_ASSERT_STRING_EQUAL(jsonrpc_msg_method(r), "update");
    json_t *u = json_array_get(jsonrpc_msg_params(r), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(u, "key")),
                           "a");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(u, "op")),
                           "put");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(u, "version")), 3);
    json_decref(r);
    r = api_pump(&af, c, 100);
    u = json_array_get(jsonrpc_msg_params(r), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(u, "op")),
                           "delete");
    CU_ASSERT_PTR_NULL(json_object_get(u, "value"));
    json_decref(r);
    CU_ASSERT_PTR_NULL(api_pump(&af, c, 5));    /* Nothing for b. */

    /* Not JSON: the connection is closed, the server goes on. */
    const char junk[] = "{]]]";
    struct stream *s2 = NULL;
    char name[80];
    snprintf(name, sizeof name, "unix:%s", af.name);
    CU_ASSERT_EQUAL_FATAL(stream_open_block(name, &s2), 0);
    api_run(af.api);
    CU_ASSERT_EQUAL(stream_send(s2, junk, strlen(junk)),
                    (ssize_t) strlen(junk));
    for (int i = 0; i < 10; i++) {
        api_run(af.api);
    }
    char buf[16];
    ssize_t n = stream_recv(s2, buf, sizeof buf);
    CU_ASSERT(n == 0 || n == -ECONNRESET);
    stream_close(s2);
    api_get_stats(af.api, &st);
    CU_ASSERT(st.conns_broken >= 1);

    jsonrpc_close(c);
    api_run(af.api);
    api_fix_destroy(&af);
}

/* A watcher that never reads is disconnected; the daemon never blocks. */
static void
test_api_slow_watcher(void)
{
    struct api_fix af;
    struct jsonrpc *c;
    struct api_stats st;
    json_t *r;
    char big[2048];
    char batch[4096];

    api_fix_init(&af);
    start_session(&af.f, 5);
    c = api_connect(&af);
    r = api_call(&af, c, "watch", NULL);
    json_decref(r);

    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    uint64_t seq = 3;
    for (int i = 0; i < 4000; i++) {
        snprintf(batch, sizeof batch, "{\"records\":[{\"op\":\"put\","
                 "\"key\":\"k%d\",\"value\":\"%s\",\"version\":1}]}", i, big);
        feed_data(&af.f, 5, seq++, batch);
        if (i % 100 == 99) {
            receiver_flush(af.f.rx, af.f.now);
            capture_clear(&af.f.cap);
            api_run(af.api);
        }
    }
    api_get_stats(af.api, &st);
    CU_ASSERT_EQUAL(st.conns_slow, 1);
    CU_ASSERT(st.notifications < 4000);
    jsonrpc_close(c);
    api_fix_destroy(&af);
}

/* Returns the "version" of a successful publish/unpublish reply, or -1
 * (asserting) if it is not one. */
static int64_t
reply_version(const json_t *r)
{
    json_t *v = json_object_get(jsonrpc_msg_result(r), "version");

    CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_REPLY);
    CU_ASSERT(json_is_integer(v));
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* Asserts that 'r' (stolen) is an error reply that starts with
 * 'prefix'. */
static void
assert_error_prefix(json_t *r, const char *prefix)
{
    const char *e = error_of(r);

    CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e && strncmp(e, prefix, strlen(prefix))) {
        fprintf(stderr, "error \"%s\" does not start with \"%s\"\n", e,
                prefix);
        CU_FAIL("wrong error");
    }
    json_decref(r);
}

static void
test_api_publish(void)
{
    struct api_fix af;
    struct jsonrpc *c;
    struct api_stats st;
    json_t *r, *res;

    api_fix_init(&af);
    c = api_connect(&af);

    /* Publish: versions from one counter, durable at the reply. */
    r = api_call(&af, c, "publish", json_pack("[s{s:i}]", "app/x", "a", 1));
    CU_ASSERT_EQUAL(reply_version(r), 1);
    json_decref(r);
    r = api_call(&af, c, "publish", json_pack("[s i]", "app/x", 2));
    CU_ASSERT_EQUAL(reply_version(r), 2);
    json_decref(r);
    r = api_call(&af, c, "publish", json_pack("[s n]", "app/n", 0));
    CU_ASSERT_EQUAL(reply_version(r), 3);
    json_decref(r);
    r = api_call(&af, c, "publish", json_pack("[s s]", "stats/app", "s"));
    CU_ASSERT_EQUAL(reply_version(r), 4);
    json_decref(r);
    char *value = NULL;
    int64_t version = 0;
    CU_ASSERT_EQUAL(datastore_get_published(af.f.ds, "app/x", &value,
                                            &version, NULL, NULL), 0);
    CU_ASSERT_STRING_EQUAL(value, "2");
    CU_ASSERT_EQUAL(version, 2);
    free(value);
    /* Downstream records are another table. */
    r = api_call(&af, c, "get", json_pack("[s]", "app/x"));
    CU_ASSERT_STRING_EQUAL(error_of(r), "not found");
    json_decref(r);

    /* Keys and values refused, each with its own error. */
    char long_key[300];
    memset(long_key, 'k', 257);
    long_key[257] = '\0';
    assert_error_prefix(api_call(&af, c, "publish",
                                 json_pack("[s i]", "from/vm2/x", 1)),
                        "invalid params: reserved key: ");
    assert_error_prefix(api_call(&af, c, "publish",
                                 json_pack("[s i]", "", 1)),
                        "invalid params: bad key: ");
    assert_error_prefix(api_call(&af, c, "publish",
                                 json_pack("[s i]", long_key, 1)),
                        "invalid params: bad key: ");
    json_t *deep = json_loads("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]"
                              "]]]]]]]]]]]]]]]]]]]]]]", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(deep);
    assert_error_prefix(api_call(&af, c, "publish",
                                 json_pack("[s o]", "deep", deep)),
                        "invalid params: bad value: ");
    static const char *const bad_params[] = {
        "[]", "[\"k\"]", "[1, 2]", "[\"k\", 1, 2]", "[null, 1]",
    };
    for (size_t i = 0; i < sizeof bad_params / sizeof bad_params[0]; i++) {
        assert_error_prefix(api_call(&af, c, "publish",
                                     json_loads(bad_params[i], 0, NULL)),
                            "invalid params: ");
    }

    /* Unpublish. */
    assert_error_prefix(api_call(&af, c, "unpublish",
                                 json_pack("[s]", "nope")), "not found");
    r = api_call(&af, c, "unpublish", json_pack("[s]", "app/n"));
    CU_ASSERT_EQUAL(reply_version(r), 5);
    json_decref(r);
    assert_error_prefix(api_call(&af, c, "unpublish",
                                 json_pack("[s]", "app/n")), "not found");
    assert_error_prefix(api_call(&af, c, "unpublish",
                                 json_pack("[s]", "from/x")),
                        "invalid params: reserved key: ");
    assert_error_prefix(api_call(&af, c, "unpublish", json_pack("[i]", 1)),
                        "invalid params: ");
    assert_error_prefix(api_call(&af, c, "unpublish", NULL),
                        "invalid params: ");

    /* The host acknowledges app/x's version 2. */
    struct ds_pub_ack ack = { "app/x", 2 };
    CU_ASSERT_EQUAL(datastore_ack_published(af.f.ds, &ack, 1, NULL), 0);

    /* Published: every row, withdrawals included, with its state. */
    r = api_call(&af, c, "published", NULL);
    res = jsonrpc_msg_result(r);
    json_t *expect = json_pack(
        "{s:[{s:s, s:i, s:i, s:i, s:b, s:s},"
        "    {s:s, s:n, s:i, s:i, s:b, s:s},"
        "    {s:s, s:s, s:i, s:i, s:b, s:s}],"
        " s:i, s:i, s:i}",
        "records",
        "key", "app/x", "value", 2, "version", 2, "acked_version", 2,
        "deleted", 0, "state", "delivered",
        "key", "app/n", "value", "version", 5, "acked_version", 0,
        "deleted", 1, "state", "pending",
        "key", "stats/app", "value", "s", "version", 4, "acked_version", 0,
        "deleted", 0, "state", "pending",
        "count", 2, "withdrawn", 1, "pending", 2);
    /* Key order: app/n, app/x, stats/app. */
    json_t *recs = json_object_get(expect, "records");
    json_t *first = json_incref(json_array_get(recs, 0));
    json_array_remove(recs, 0);
    json_array_insert_new(recs, 1, first);
    if (!json_equal(res, expect)) {
        char *a = json_dumps(res, JSON_SORT_KEYS);
        char *b = json_dumps(expect, JSON_SORT_KEYS);
        fprintf(stderr, "\ngot %s\nexpected %s\n", a, b);
        free(a);
        free(b);
    }
    CU_ASSERT(json_equal(res, expect));
    json_decref(expect);
    json_decref(r);

    r = api_call(&af, c, "published", json_pack("[s]", "stats/"));
    res = jsonrpc_msg_result(r);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(res, "records")), 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "count")), 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "pending")), 1);
    json_decref(r);
    assert_error_prefix(api_call(&af, c, "published", json_pack("[i]", 1)),
                        "invalid params: ");
    assert_error_prefix(api_call(&af, c, "published",
                                 json_pack("[s s]", "a", "b")),
                        "invalid params: ");

    /* Nothing a client sends brings the daemon down: random params. */
    uint64_t rng = 77;
    static const char *const methods[] = {
        "publish", "unpublish", "published",
    };
    for (int i = 0; i < 300; i++) {
        json_t *params = json_array();
        int n = unit_random(&rng) % 4;
        for (int j = 0; j < n; j++) {
            switch (unit_random(&rng) % 6) {
            case 0: json_array_append_new(params, json_integer(
                                              unit_random(&rng) % 100));
                break;
            case 1: json_array_append_new(params, json_string("from/z"));
                break;
            case 2: json_array_append_new(params, json_null());
                break;
            case 3: json_array_append_new(params, json_pack(
                                              "{s:[i, s]}", "x", 1, "y"));
                break;
            default: {
                char k[8];
                snprintf(k, sizeof k, "r%d",
                         (int) (unit_random(&rng) % 5));
                json_array_append_new(params, json_string(k));
                break;
            }
            }
        }
        if (!(unit_random(&rng) % 10)) {
            json_decref(params);
            params = json_pack("{s:i}", "not", 1);     /* Not an array. */
        }
        r = api_call(&af, c, methods[unit_random(&rng) % 3], params);
        CU_ASSERT(jsonrpc_msg_type(r) == JSONRPC_REPLY
                  || jsonrpc_msg_type(r) == JSONRPC_ERROR);
        json_decref(r);
    }
    CU_ASSERT_EQUAL(jsonrpc_get_status(c), 0);
    CU_ASSERT_EQUAL(datastore_check(af.f.ds), 0);
    api_get_stats(af.api, &st);
    CU_ASSERT(st.bad_requests > 15);
    CU_ASSERT(st.requests > 10);

    /* A key with U+0000: lib/jsonrpc takes no \u0000 at all, so the
     * connection is closed; the daemon goes on. */
    jsonrpc_send(c, jsonrpc_create_request("publish",
                                           json_pack("[s# i]", "a\0b",
                                                     (int) 3, 1), NULL));
    CU_ASSERT_PTR_NULL(api_pump(&af, c, 20));
    CU_ASSERT_NOT_EQUAL(jsonrpc_get_status(c), 0);
    jsonrpc_close(c);
    c = api_connect(&af);
    r = api_call(&af, c, "published", json_pack("[s]", "a"));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        jsonrpc_msg_result(r), "count")), 1);
    json_decref(r);

    /* Over a limit the host set: a clear error, nothing stored. */
    struct ds_pub_limits limits = { .max_value_bytes = 4 };
    datastore_set_publish_limits(af.f.ds, &limits);
    assert_error_prefix(api_call(&af, c, "publish",
                                 json_pack("[s s]", "lim", "long")),
                        "over limit: the value is 6 bytes");
    r = api_call(&af, c, "publish", json_pack("[s s]", "lim", "ok"));
    CU_ASSERT(reply_version(r) > 0);
    json_decref(r);

    jsonrpc_close(c);
    api_run(af.api);
    api_fix_destroy(&af);
}

/* Publications pipelined on one connection share one commit; their
 * replies come after it, in order, with the other requests' replies where
 * they were asked, and each one that succeeded is committed. */
static void
test_api_publish_group(void)
{
    struct ds_pub_limits limits = { .max_value_bytes = 4 };
    enum { N = 16 };
    json_t *ids[N], *r;
    struct api_stats st;
    struct api_fix af;
    struct jsonrpc *c;
    sqlite3 *db;
    sqlite3_stmt *s;
    int n;

    api_fix_init(&af);
    start_session(&af.f, 5);
    c = api_connect(&af);
    datastore_set_publish_limits(af.f.ds, &limits);

    /* 0..9: publications; 10: "published" sees them; 11: over a limit;
     * 12: a reserved key; 13: a key again; 14: a withdrawal; 15: an
     * unknown key withdrawn. */
    for (int i = 0; i < N; i++) {
        const char *method = "publish";
        json_t *params;
        char name[16];

        snprintf(name, sizeof name, "g/%d", i);
        if (i < 10) {
            params = json_pack("[s i]", name, i);
        } else if (i == 10) {
            method = "published";
            params = json_pack("[s]", "g/");
        } else if (i == 11) {
            params = json_pack("[s s]", "g/x", "long");
        } else if (i == 12) {
            params = json_pack("[s i]", "from/x", 1);
        } else if (i == 13) {
            params = json_pack("[s i]", "g/0", 100);
        } else {
            method = "unpublish";
            params = json_pack("[s]", i == 14 ? "g/1" : "g/none");
        }
        CU_ASSERT_EQUAL_FATAL(jsonrpc_send(c, jsonrpc_create_request(
                                               method, params, &ids[i])),
                              0);
    }
    for (int i = 0; i < N; i++) {
        r = api_pump(&af, c, 100);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT(json_equal(jsonrpc_msg_id(r), ids[i]));
        if (i < 10) {
            CU_ASSERT_EQUAL(reply_version(r), i + 1);
        } else if (i == 10) {
            CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                                jsonrpc_msg_result(r), "count")), 10);
        } else if (i == 11) {
            assert_error_prefix(json_incref(r), "over limit:");
        } else if (i == 12) {
            assert_error_prefix(json_incref(r),
                                "invalid params: reserved key");
        } else if (i == 13) {
            CU_ASSERT_EQUAL(reply_version(r), 11);
        } else if (i == 14) {
            CU_ASSERT_EQUAL(reply_version(r), 12);
        } else {
            assert_error_prefix(json_incref(r), "not found");
        }
        json_decref(r);
        json_decref(ids[i]);
    }
    CU_ASSERT(!datastore_in_transaction(af.f.ds));
    api_get_stats(af.api, &st);
    CU_ASSERT(st.publish_commits >= 2);     /* Before and after 10. */
    CU_ASSERT(st.publish_commits < 5);      /* Not one a publication. */

    /* Another connection sees what the replies said. */
    CU_ASSERT_FATAL(sqlite3_open(af.f.sc.path, &db) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_prepare_v2(db, "SELECT count(*), max(version)"
                                       " FROM published WHERE deleted = 0",
                                       -1, &s, NULL) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_step(s) == SQLITE_ROW);
    n = sqlite3_column_int(s, 0);
    CU_ASSERT_EQUAL(n, 9);
    CU_ASSERT_EQUAL(sqlite3_column_int(s, 1), 11);
    sqlite3_finalize(s);
    sqlite3_close(db);

    jsonrpc_close(c);
    api_run(af.api);
    api_fix_destroy(&af);
}

/* Writes 'len' bytes 'x' to the new file 'path'. */
static void
write_bytes(const char *path, size_t len)
{
    FILE *f = fopen(path, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (size_t i = 0; i < len; i++) {
        fputc('x', f);
    }
    fclose(f);
}

#define OBJ_D1 \
    "1111111111111111111111111111111111111111111111111111111111111111"
#define OBJ_D2 \
    "2222222222222222222222222222222222222222222222222222222222222222"

static void
test_api_objects(void)
{
    char a[128], b[128], link[128], dir[128];
    struct api_fix af;
    struct api_stats st;
    struct jsonrpc *c;
    char *value = NULL;
    json_t *r;

    api_fix_init(&af);
    c = api_connect(&af);
    scratch_file(&af.f.sc, "a", a, sizeof a);
    scratch_file(&af.f.sc, "b", b, sizeof b);
    scratch_file(&af.f.sc, "link", link, sizeof link);
    scratch_file(&af.f.sc, "d", dir, sizeof dir);
    write_bytes(a, 3);
    write_bytes(b, 3);
    CU_ASSERT_FATAL(symlink(a, link) == 0);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);

    /* Two paths, one digest: one record. */
    r = api_call(&af, c, "object-add", json_pack(
                     "[{s:s, s:s, s:i, s:[s], s:{s:s}}]", "path", a,
                     "digest", OBJ_D1, "size", 3, "flags", "x",
                     "params", "k", "v"));
    CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_REPLY);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                               jsonrpc_msg_result(r), "digest")), OBJ_D1);
    json_decref(r);
    r = api_call(&af, c, "object-add", json_pack(
                     "[{s:s, s:s, s:i}]", "path", b, "digest", OBJ_D1,
                     "size", 3));
    CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_REPLY);
    json_decref(r);
    CU_ASSERT_EQUAL(datastore_get_published(af.f.ds, "obj/" OBJ_D1, &value,
                                            NULL, NULL, NULL), 0);
    char *expect = xasprintf("{\"size\":3,\"paths\":[\"%s\",\"%s\"],"
                             "\"flags\":[\"x\"],\"params\":{\"k\":\"v\"}}",
                             a, b);
    CU_ASSERT_STRING_EQUAL(value, expect);
    free(expect);
    free(value);

    r = api_call(&af, c, "objects", NULL);
    CU_ASSERT_EQUAL(json_array_size(jsonrpc_msg_result(r)), 2);
    json_t *first = json_array_get(jsonrpc_msg_result(r), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(first, "path")),
                           a);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(first, "size")), 3);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                               json_object_get(first, "flags"), 0)), "x");
    json_decref(r);
    r = api_call(&af, c, "objects", json_pack("[{s:s}]", "digest", OBJ_D2));
    CU_ASSERT_EQUAL(json_array_size(jsonrpc_msg_result(r)), 0);
    json_decref(r);

    /* Refusals, each with its own error and counted. */
    assert_error_prefix(api_call(&af, c, "object-add", json_pack(
                                     "[{s:s, s:s, s:i}]", "path", link,
                                     "digest", OBJ_D1, "size", 3)),
                        "invalid params: bad file:");
    assert_error_prefix(api_call(&af, c, "object-add", json_pack(
                                     "[{s:s, s:s, s:i}]", "path", dir,
                                     "digest", OBJ_D1, "size", 3)),
                        "invalid params: bad file:");
    assert_error_prefix(api_call(&af, c, "object-add", json_pack(
                                     "[{s:s, s:s, s:i}]", "path", a,
                                     "digest", OBJ_D2, "size", 4)),
                        "invalid params: bad file:");
    char *dotdot = xasprintf("%s/../a", dir);
    assert_error_prefix(api_call(&af, c, "object-add", json_pack(
                                     "[{s:s, s:s, s:i}]", "path", dotdot,
                                     "digest", OBJ_D1, "size", 3)),
                        "invalid params: bad path:");
    free(dotdot);
    assert_error_prefix(api_call(&af, c, "object-add", json_pack(
                                     "[{s:s, s:s, s:i}]", "path", a,
                                     "digest", "abc", "size", 3)),
                        "invalid params: bad object:");
    assert_error_prefix(api_call(&af, c, "object-add", json_pack(
                                     "[{s:s, s:s, s:i, s:i}]", "path", a,
                                     "digest", OBJ_D1, "size", 3,
                                     "flags", 1)),
                        "invalid params: bad object:");
    assert_error_prefix(api_call(&af, c, "object-add", json_pack(
                                     "[{s:s, s:i}]", "path", a, "size", 3)),
                        "invalid params: object-add takes");
    assert_error_prefix(api_call(&af, c, "object-add", json_pack("[s]", a)),
                        "invalid params: object-add takes");
    assert_error_prefix(api_call(&af, c, "object-remove",
                                 json_pack("[{s:s}]", "path", link)),
                        "not found:");
    assert_error_prefix(api_call(&af, c, "object-remove", NULL),
                        "invalid params: object-remove takes");
    assert_error_prefix(api_call(&af, c, "objects", json_pack("[i]", 1)),
                        "invalid params: objects takes");
    assert_error_prefix(api_call(&af, c, "objects",
                                 json_pack("[{s:s}]", "digest", "x")),
                        "invalid params: bad digest:");
    assert_error_prefix(api_call(&af, c, "publish",
                                 json_pack("[s i]", "obj/" OBJ_D1, 1)),
                        "invalid params: reserved key:");
    api_get_stats(af.api, &st);
    CU_ASSERT_EQUAL(st.object_errors, 12);
    CU_ASSERT_EQUAL(st.objects_added, 2);

    /* Removing both paths withdraws the record. */
    r = api_call(&af, c, "object-remove", json_pack("[{s:s}]", "path", a));
    CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_REPLY);
    json_decref(r);
    r = api_call(&af, c, "object-remove", json_pack("[{s:s}]", "path", b));
    CU_ASSERT_EQUAL(jsonrpc_msg_type(r), JSONRPC_REPLY);
    json_decref(r);
    bool deleted = false;
    CU_ASSERT_EQUAL(datastore_get_published(af.f.ds, "obj/" OBJ_D1, NULL,
                                            NULL, NULL, &deleted), 0);
    CU_ASSERT(deleted);
    api_get_stats(af.api, &st);
    CU_ASSERT_EQUAL(st.objects_removed, 2);
    json_t *stats = api_stats_json(af.api);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(stats,
                                                       "object_errors")), 12);
    json_decref(stats);

    unlink(link);
    rmdir(dir);
    jsonrpc_close(c);
    api_run(af.api);
    api_fix_destroy(&af);
}

/* What the receiver advertises and learns of the host's MTU. */
static void
test_mtu(void)
{
    struct fix f;
    uint32_t ge;

    fix_init(&f);
    ge = state(f.ds).guest_epoch;
    CU_ASSERT_EQUAL(receiver_mtu(f.rx), 1500);  /* Nothing heard yet. */
    receiver_set_mtu(f.rx, 9000);
    CU_ASSERT_EQUAL(receiver_mtu(f.rx), 1500);
    receiver_run(f.rx, f.now);
    CU_ASSERT_EQUAL_FATAL(f.cap.n, 1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(f.cap.f[0].obj,
                                                       "mtu")), 9000);
    capture_clear(&f.cap);

    /* A SYNC that says 9000. */
    char payload[128];
    snprintf(payload, sizeof payload, "{\"guest_epoch\":%"PRIu32","
             "\"snapshot_end\":0,\"mtu\":9000}", ge);
    feed_raw(&f, CHAN_WIRE_SYNC, 0, VID, 5, 0, 0, 1, payload);
    receiver_flush(f.rx, f.now);
    CU_ASSERT_EQUAL(receiver_mtu(f.rx), 9000);
    CU_ASSERT_EQUAL_FATAL(f.cap.n, 1);
    CU_ASSERT_EQUAL(f.cap.f[0].h.type, CHAN_WIRE_ACK);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(f.cap.f[0].obj,
                                                       "mtu")), 9000);
    capture_clear(&f.cap);

    /* A HEARTBEAT that says 4000, one that says nothing. */
    feed_raw(&f, CHAN_WIRE_HEARTBEAT, 0, VID, 5, 0, 0, 1, "{\"mtu\":4000}");
    CU_ASSERT_EQUAL(receiver_mtu(f.rx), 4000);
    feed_heartbeat(&f, 5);
    CU_ASSERT_EQUAL(receiver_mtu(f.rx), 4000);
    receiver_flush(f.rx, f.now);
    capture_clear(&f.cap);

    /* Our own MTU is the limit. */
    receiver_set_mtu(f.rx, 1500);
    CU_ASSERT_EQUAL(receiver_mtu(f.rx), 1500);
    receiver_set_mtu(f.rx, 9000);

    /* A HELLO without "mtu" is an older host: 1500. */
    feed_raw(&f, CHAN_WIRE_HELLO, 0, VID, 5, 0, 0, 1, "{}");
    CU_ASSERT_EQUAL(receiver_mtu(f.rx), 1500);
    feed_raw(&f, CHAN_WIRE_HELLO, 0, VID, 5, 0, 0, 1, "{\"mtu\":9000}");
    CU_ASSERT_EQUAL(receiver_mtu(f.rx), 9000);

    json_t *st = receiver_status_json(f.rx, f.now);
    json_t *m = json_object_get(st, "mtu");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "local")), 9000);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "host")), 9000);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "effective")),
                    9000);
    json_decref(st);
    receiver_flush(f.rx, f.now);
    fix_destroy(&f);
}

static const struct unit_test tests[] = {
    { "HELLO until in session, liveness", test_hello_until_session },
    { "MTU advertised and learnt", test_mtu },
    { "SYNC and snapshot", test_sync_and_snapshot },
    { "SYNC repeated, for another guest, malformed",
      test_sync_repeat_and_other_guest },
    { "duplicates and gaps", test_duplicates_and_gaps },
    { "frames of another epoch", test_other_epoch },
    { "HELLO from the host", test_host_hello },
    { "rejections", test_rejections },
    { "unusable messages skipped", test_unusable_messages_skipped },
    { "chunked message", test_chunked_message },
    { "group commit and crash", test_group_commit },
    { "resume mid-snapshot", test_resume_mid_snapshot },
    { "notifications after commit", test_notifications },
    { "send failure and status", test_send_failure_and_status },
    { "datastore failure", test_datastore_failure },
    { "random, with the real sender", test_random_with_sender },
    { "keys: key file parsing", test_keyring_parse },
    { "keys: decoding with several keys", test_keyring_decode },
    { "keys: right key accepted, wrong key counted",
      test_keys_accept_reject },
    { "keys: rotation, tx generation follows the host", test_keys_rotation },
    { "keys: none (unauthenticated)", test_keys_unauthenticated },
    { "keys: key file reload", test_key_file },
    { "bridge: interface names", test_bridge_names },
    { "bridge: rendering guest.flows", test_bridge_render },
    { "bridge: create and refuse", test_bridge_create },
    { "bridge: no database: the setup fails without waiting",
      test_bridge_no_database },
    { "api: requests, errors, watch", test_api },
    { "api: slow watcher disconnected", test_api_slow_watcher },
    { "api: publish, unpublish, published", test_api_publish },
    { "api: pipelined publications share a commit",
      test_api_publish_group },
    { "api: object-add, object-remove, objects", test_api_objects },
};

int
unit_register(void)
{
    vlog_set_levels_from_string("ANY:off");
    return UNIT_ADD_SUITE("guest-receiver", tests);
}
