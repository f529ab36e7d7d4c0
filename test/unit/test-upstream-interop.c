/* CUnit suite: the two ends of the upstream stream (doc/SESSION.md,
 * "Upstream") against each other, in one process: chand-guest's publisher
 * (with a real datastore in a mkdtemp() directory) and chand-host's
 * upstream end, every frame and ACK through the wire codec, over a link
 * that loses frames both ways (seeded), with Chan DB transactions that
 * sometimes fail or take a while, and chand-host restarting, once from
 * what it committed and once from nothing.  In the end the host's rows
 * must equal what the guest holds as published, nothing may be pending,
 * and no row version may have been written twice. */

#include <config.h>
#include "unit.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan-wire.h"
#include "datastore.h"
#include "publisher.h"
#include "upstream.h"
#include "vlog.h"

#define VID 100
#define MAX_QUEUE 20000

static const char key[] = "interop-key-0123456789abcdef-012";

struct frame {
    uint8_t *data;
    size_t len;
};

struct link {
    uint64_t rng;
    unsigned int drop_percent;
    size_t n_dropped;

    struct frame g2h[MAX_QUEUE];        /* Guest to host. */
    size_t n_g2h;
    struct frame h2g[MAX_QUEUE];        /* Host to guest. */
    size_t n_h2g;

    struct upstream *up;
    struct publisher *pub;
    struct datastore *ds;
    long long now;
    size_t n_bad;                       /* Frames that did not decode. */
    bool batch_pending;                 /* A batch waits for its commit. */
    uint64_t batches_failed;
};

static bool
lose(struct link *l)
{
    if (l->drop_percent && unit_random(&l->rng) % 100 < l->drop_percent) {
        l->n_dropped++;
        return true;
    }
    return false;
}

static void
push(struct link *l, struct frame *q, size_t *n, const uint8_t *data,
     size_t len)
{
    if (lose(l)) {
        return;
    }
    CU_ASSERT_FATAL(*n < MAX_QUEUE);
    q[*n].data = malloc(len);
    memcpy(q[*n].data, data, len);
    q[*n].len = len;
    (*n)++;
}

/* The publisher's send function. */
static int
guest_send(const uint8_t *frame, size_t len, void *l_)
{
    struct link *l = l_;

    push(l, l->g2h, &l->n_g2h, frame, len);
    return 0;
}

/* chand-host's ACK function: encodes the ACK as chand-host does. */
static void
host_ack(uint32_t epoch, uint64_t position, const json_t *obj, void *l_)
{
    struct link *l = l_;
    struct chan_wire_header h = {
        .type = CHAN_WIRE_ACK, .flags = CHAN_WIRE_F_ACK_VALID, .vid = VID,
        .epoch = epoch, .ack = position, .chunk_count = 1,
    };
    uint8_t buf[2048];
    char *text = NULL;
    size_t text_len = 0, len;

    CU_ASSERT_FATAL(chan_payload_encode_object(obj, NULL, &text, &text_len)
                    == 0);
    CU_ASSERT_FATAL(chan_wire_encode(&h, text, text_len, key, strlen(key),
                                     buf, sizeof buf, &len) == 0);
    free(text);
    push(l, l->h2g, &l->n_h2g, buf, len);
}

/* chand-host takes the frames that reached it and writes its batches:
 * most commit at once, some later, a few fail. */
static void
host_step(struct link *l)
{
    for (size_t i = 0; i < l->n_g2h; i++) {
        struct chan_wire_header h;
        const uint8_t *payload;

        if (chan_wire_decode(l->g2h[i].data, l->g2h[i].len, key,
                             strlen(key), &h, &payload) || h.vid != VID) {
            l->n_bad++;
        } else if (h.type == CHAN_WIRE_SYNC) {
            json_t *obj = NULL;
            CU_ASSERT_FATAL(chan_payload_decode_object(payload,
                                                       h.payload_len, NULL,
                                                       &obj) == 0);
            upstream_receive_sync(l->up, &h, obj, l->now);
            json_decref(obj);
        } else if (h.type == CHAN_WIRE_DATA) {
            upstream_receive_data(l->up, &h, payload, l->now);
        } else {
            l->n_bad++;
        }
        free(l->g2h[i].data);
    }
    l->n_g2h = 0;

    for (int i = 0; i < 4; i++) {
        if (!l->batch_pending) {
            l->batch_pending = upstream_next_batch(l->up, l->now) != NULL;
        }
        if (!l->batch_pending || unit_random(&l->rng) % 4 == 0) {
            break;              /* Nothing to write, or still writing. */
        }
        bool ok = unit_random(&l->rng) % 20 != 0;
        l->batches_failed += !ok;
        upstream_batch_done(l->up, ok, l->now);
        l->batch_pending = false;
    }
}

/* The guest takes the ACKs that reached it, as chand-guest's receiver
 * does. */
static void
guest_step(struct link *l)
{
    for (size_t i = 0; i < l->n_h2g; i++) {
        struct chan_wire_header h;
        const uint8_t *payload;
        json_t *obj = NULL;

        CU_ASSERT_FATAL(chan_wire_decode(l->h2g[i].data, l->h2g[i].len, key,
                                         strlen(key), &h, &payload) == 0);
        CU_ASSERT_FATAL(h.type == CHAN_WIRE_ACK);
        CU_ASSERT_FATAL(chan_payload_decode_object(payload, h.payload_len,
                                                   NULL, &obj) == 0);
        publisher_ack(l->pub, &h, obj, l->now);
        json_decref(obj);
        free(l->h2g[i].data);
    }
    l->n_h2g = 0;
}

static void
step(struct link *l)
{
    publisher_run(l->pub, l->now);
    host_step(l);
    guest_step(l);
}

/* chand-host restarts: with what it committed ('keep'), or with nothing
 * (a Chan DB without the channel's upstream columns). */
static void
host_restart(struct link *l, bool keep)
{
    uint32_t epoch = upstream_epoch(l->up);
    uint64_t position = upstream_position(l->up);
    json_t *rows = json_deep_copy(upstream_rows(l->up));
    struct upstream_limits none = { 0, 0, 0, 0 };

    if (l->batch_pending) {
        upstream_batch_done(l->up, false, l->now);  /* Lost in the crash. */
        l->batch_pending = false;
    }
    upstream_destroy(l->up);
    l->up = upstream_create("vm1", keep ? epoch : 0, keep ? position : 0,
                            rows, host_ack, l);
    upstream_set_limits(l->up, &none);
    json_decref(rows);
}

static int
compare_cb(void *rows_, const struct ds_published *p)
{
    const json_t *row = json_object_get(rows_, p->key);

    CU_ASSERT_PTR_NOT_NULL(row);
    if (row) {
        CU_ASSERT_EQUAL(json_integer_value(json_array_get(row, 0)),
                        p->version);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(row, 1)),
                               p->value);
    }
    return 0;
}

static void
scratch_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        char file[512];

        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
            unlink(file);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(dir);
}

static void
run_seed(uint64_t seed)
{
    struct link *l = calloc(1, sizeof *l);
    char dir[64], path[128];
    uint64_t n_ops = 0;
    struct upstream_limits none = { 0, 0, 0, 0 };

    CU_ASSERT_FATAL(l != NULL);
    snprintf(dir, sizeof dir, "/tmp/chand-interop-XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/guest.db", dir);
    CU_ASSERT_FATAL(datastore_open(path, &l->ds) == 0);
    l->rng = seed;
    l->now = 1000000;
    l->drop_percent = 20;
    l->up = upstream_create("vm1", 0, 0, NULL, host_ack, l);
    upstream_set_limits(l->up, &none);
    struct publisher_config pc = {
        .vid = VID, .seed = seed, .mtu = 576, .max_msg_records = 16,
    };
    l->pub = publisher_create(&pc, l->ds, guest_send, l, l->now);
    CU_ASSERT_FATAL(l->pub != NULL);
    publisher_set_key(l->pub, 1, key, strlen(key));

    for (int round = 0; round < 1500; round++) {
        int n = unit_random(&l->rng) % 3;
        for (int i = 0; i < n; i++) {
            char k[32], value[1500];
            unsigned int which = unit_random(&l->rng) % 50;

            snprintf(k, sizeof k, "k/%u", which);
            if (unit_random(&l->rng) % 5 == 0) {
                n_ops += !datastore_unpublish(l->ds, k, NULL);
            } else {
                size_t len = unit_random(&l->rng) % 4 == 0 ? 1200 : 20;
                memset(value, 'a' + which % 26, len);
                value[0] = '"';
                snprintf(value + len - 8, 9, "%06u\"",
                         (unsigned int) (unit_random(&l->rng) % 1000000));
                CU_ASSERT_EQUAL(datastore_publish(l->ds, k, value, NULL), 0);
                n_ops++;
            }
        }
        if (round == 500 || round == 1000) {
            host_restart(l, round == 500);
        }
        step(l);
        l->now += 1 + unit_random(&l->rng) % 40;
    }

    /* Then until everything is through, on a link that still loses. */
    l->drop_percent = 10;
    for (int i = 0; i < 100000; i++) {
        step(l);
        if (publisher_is_idle(l->pub) && !l->n_g2h && !l->n_h2g
            && !l->batch_pending && !upstream_is_writing(l->up)) {
            break;
        }
        long long next = publisher_next_wakeup(l->pub, l->now);
        l->now = next <= l->now ? l->now + 1
                 : next < l->now + 50 ? next : l->now + 50;
    }
    CU_ASSERT_TRUE(publisher_is_idle(l->pub));

    /* The host's rows are what the guest published; nothing pending. */
    const json_t *rows = upstream_rows(l->up);
    struct ds_pub_counts c;
    uint64_t pending = 1;
    CU_ASSERT_EQUAL(datastore_list_published(l->ds, NULL, false, compare_cb,
                                             (void *) rows, &c), 0);
    CU_ASSERT_EQUAL(json_object_size(rows), c.records);
    CU_ASSERT_EQUAL(c.withdrawn, 0);
    CU_ASSERT_EQUAL(datastore_count_pending(l->ds, &pending), 0);
    CU_ASSERT_EQUAL(pending, 0);
    CU_ASSERT_EQUAL(l->n_bad, 0);
    CU_ASSERT(l->n_dropped > 100);
    CU_ASSERT(l->batches_failed > 0);

    /* Each version was written at most once (plus the deletes of the
     * restart from nothing, at most one per key). */
    struct upstream_stats us;
    upstream_get_stats(l->up, &us);
    CU_ASSERT(us.rows_written <= n_ops + 50);
    struct publisher_stats ps;
    publisher_get_stats(l->pub, &ps);
    CU_ASSERT(ps.sessions >= 2);
    CU_ASSERT_EQUAL(ps.bad_acks, 0);

    publisher_destroy(l->pub);
    upstream_destroy(l->up);
    datastore_close(l->ds);
    scratch_remove(dir);
    free(l);
}

static void
test_interop_lossy(void)
{
    static const uint64_t seeds[] = { 1, 2, 3, 0x5eed };

    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        run_seed(seeds[i]);
    }
}

static const struct unit_test tests[] = {
    { "publisher and host upstream over a lossy link", test_interop_lossy },
};

int
unit_register(void)
{
    vlog_set_levels_from_string("ANY:off");
    return UNIT_ADD_SUITE("upstream-interop", tests);
}
