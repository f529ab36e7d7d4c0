/* Unit tests for lib/xfer-lane: two lanes connected in memory, each with a
 * content store of its own in a mkdtemp() directory, one pulling objects
 * and the other serving them from real files.  Every frame is encoded and
 * authenticated by the sending lane and decoded with the key by the link,
 * which delivers it after a fixed delay or drops it (a seeded PRNG, a
 * configurable percentage each way), on a simulated clock that jumps to
 * the lanes' next wakeup.  Covered: a clean pull (no duplicates), a pull
 * under 20% loss both ways, resumption from the last checkpoint after the
 * receiver is killed, content that does not match its digest, a refused
 * and a wrongly sized GET, stray chunks, malformed XFER payloads, pacing
 * by max_rate and an empty object. */

#include <config.h>
#include "unit.h"
#include "xfer-lane.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan-wire.h"
#include "content-store.h"
#include "util.h"
#include "vlog.h"

#define N_ELEMS(ARRAY) (sizeof (ARRAY) / sizeof (ARRAY)[0])

#define VID 7
#define START_MS 1000000LL      /* The simulated clock's start. */
#define LINK_DELAY_MS 1         /* One way. */

static const uint8_t key[32] = "xfer-lane unit test key 0123456";

/* A frame on its way, decoded. */
struct pending {
    int to;                     /* Index of the receiving side. */
    long long at;               /* When it arrives. */
    struct chan_wire_header h;
    uint8_t *payload;
};

struct side;

/* The link and the clock. */
struct net {
    long long now;
    uint64_t prng;
    unsigned int loss_pct[2];   /* Frames sent by side i dropped, %. */
    struct pending *q;          /* FIFO: every frame has the same delay. */
    size_t q_head, q_n, q_alloc;
    struct side *sides[2];

    /* Pacing check: the GETs side 'paced' sends. */
    int paced;                  /* -1: no check. */
    unsigned int rate;
    double burst;
    long long pace_start;
    uint64_t asked;             /* Chunks named by its GETs. */
    uint64_t max_excess;        /* Largest asked - rate * elapsed - burst,
                                 * if ever positive. */
    uint64_t gets;
};

struct side {
    struct net *net;
    int idx;
    char *dir;
    struct content_store *cs;
    struct xfer_lane *lane;
    struct xfer_lane_config cfg;
    uint64_t frames_sent;

    /* Serving. */
    char *serve_path;           /* The file 'resolve' names. */
    const char *refuse_error;   /* Non-null: 'resolve' refuses. */
    const char *refuse_reason;
    unsigned int n_resolved;

    /* Pulling. */
    unsigned int n_pulled;
    char *pulled_digest;
    char *pulled_error;
    char *pulled_reason;
    long long pulled_at;
};

/* Fixture. */

static int
remove_entry(const char *path, const struct stat *st,
             int flag, struct FTW *ftw)
{
    return remove(path);
}

static void
remove_tree(const char *dir)
{
    CU_ASSERT_EQUAL(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static int
lane_send(const uint8_t *frame, size_t len, void *aux)
{
    struct side *s = aux;
    struct net *net = s->net;
    struct chan_wire_header h;
    const uint8_t *payload;

    CU_ASSERT_EQUAL_FATAL(chan_wire_decode(frame, len, key, sizeof key, &h,
                                           &payload), 0);
    CU_ASSERT_EQUAL(h.vid, VID);
    s->frames_sent++;

    if (s->idx == net->paced && h.type == CHAN_WIRE_XFER) {
        struct xfer_msg msg;
        CU_ASSERT_PTR_NULL_FATAL(xfer_msg_parse(payload, h.payload_len,
                                                &msg));
        if (msg.op == XFER_OP_GET) {
            net->gets++;
            for (size_t i = 0; i < msg.n_ranges; i++) {
                net->asked += msg.ranges[i].count;
            }
            double allowed = net->rate * (net->now - net->pace_start)
                             / 1000.0 + net->burst;
            if (net->asked > allowed
                && net->asked - allowed > net->max_excess) {
                net->max_excess = net->asked - allowed;
            }
        }
    }

    if (unit_random(&net->prng) % 100 < net->loss_pct[s->idx]) {
        return 0;
    }
    if (net->q_head + net->q_n >= net->q_alloc) {
        if (net->q_head) {
            memmove(net->q, &net->q[net->q_head], net->q_n * sizeof *net->q);
            net->q_head = 0;
        }
        if (net->q_n >= net->q_alloc) {
            net->q_alloc = net->q_alloc ? net->q_alloc * 2 : 256;
            net->q = xrealloc(net->q, net->q_alloc * sizeof *net->q);
        }
    }
    struct pending *p = &net->q[net->q_head + net->q_n++];
    p->to = !s->idx;
    p->at = net->now + LINK_DELAY_MS;
    p->h = h;
    p->payload = xmemdup(payload, h.payload_len ? h.payload_len : 1);
    return 0;
}

static void
lane_key(void *aux, const uint8_t **keyp, size_t *lenp)
{
    *keyp = key;
    *lenp = sizeof key;
}

static const char *
lane_resolve(void *aux, const char *digest,
             uint64_t size, char **pathp, char **reasonp)
{
    struct side *s = aux;

    s->n_resolved++;
    if (s->refuse_error) {
        *reasonp = xstrdup(s->refuse_reason);
        return s->refuse_error;
    }
    if (!s->serve_path) {
        *reasonp = xstrdup("no such object");
        return XFER_ERR_NO_OBJECT;
    }
    *pathp = xstrdup(s->serve_path);
    return NULL;
}

static void
lane_pulled(void *aux, const char *digest, const char *error,
            const char *reason)
{
    struct side *s = aux;

    s->n_pulled++;
    free(s->pulled_digest);
    free(s->pulled_error);
    free(s->pulled_reason);
    s->pulled_digest = xstrdup(digest);
    s->pulled_error = error ? xstrdup(error) : NULL;
    s->pulled_reason = reason ? xstrdup(reason) : NULL;
    s->pulled_at = s->net->now;
}

static const struct xfer_lane_ops ops = {
    .send = lane_send,
    .key = lane_key,
    .resolve = lane_resolve,
    .pulled = lane_pulled,
};

static void
side_open_store(struct side *s)
{
    char *error = NULL;

    s->cs = content_store_open(s->dir, 0, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->cs);
    CU_ASSERT_PTR_NULL(error);
}

static void
side_start_lane(struct side *s)
{
    s->lane = xfer_lane_create(&s->cfg, &ops, s, s->cs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->lane);
}

/* Creates the two sides: 0 pulls, 1 serves (both can do both). */
static void
net_init(struct net *net, unsigned int mtu, unsigned int max_rate,
         uint64_t seed)
{
    memset(net, 0, sizeof *net);
    net->now = START_MS;
    net->prng = seed;
    net->paced = -1;
    vlog_set_levels_from_string("xfer_lane:warn");
    for (int i = 0; i < 2; i++) {
        struct side *s = xzalloc(sizeof *s);
        s->net = net;
        s->idx = i;
        s->dir = xstrdup("/tmp/test-xfer-lane-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(s->dir));
        s->cfg.vid = VID;
        s->cfg.mtu = mtu;
        s->cfg.max_rate = i == 0 ? max_rate : 0;
        side_open_store(s);
        side_start_lane(s);
        net->sides[i] = s;
    }
}

/* Drops every frame on its way. */
static void
net_flush(struct net *net)
{
    for (size_t i = 0; i < net->q_n; i++) {
        free(net->q[net->q_head + i].payload);
    }
    net->q_head = net->q_n = 0;
}

static void
net_destroy(struct net *net)
{
    net_flush(net);
    free(net->q);
    for (int i = 0; i < 2; i++) {
        struct side *s = net->sides[i];
        xfer_lane_destroy(s->lane);
        content_store_close(s->cs);
        remove_tree(s->dir);
        free(s->dir);
        free(s->serve_path);
        free(s->pulled_digest);
        free(s->pulled_error);
        free(s->pulled_reason);
        free(s);
    }
}

/* Delivers the frames due at 'now'. */
static void
net_deliver(struct net *net)
{
    while (net->q_n && net->q[net->q_head].at <= net->now) {
        struct pending p = net->q[net->q_head++];
        net->q_n--;
        xfer_lane_input(net->sides[p.to]->lane, &p.h, p.payload, net->now);
        free(p.payload);
    }
}

typedef bool stop_func(const struct net *);

/* Runs the lanes until 'stop' says so (checked after every step) or
 * 'limit_ms' of simulated time have passed.  Returns true if 'stop'
 * ended it. */
static bool
net_run(struct net *net, stop_func *stop, long long limit_ms)
{
    long long deadline = net->now + limit_ms;

    while (net->now <= deadline) {
        net_deliver(net);
        for (int i = 0; i < 2; i++) {
            xfer_lane_run(net->sides[i]->lane, net->now);
        }
        if (stop(net)) {
            return true;
        }
        long long next = LLONG_MAX;
        for (int i = 0; i < 2; i++) {
            long long t = xfer_lane_next_wakeup(net->sides[i]->lane,
                                                net->now);
            next = t < next ? t : next;
        }
        if (net->q_n && net->q[net->q_head].at < next) {
            next = net->q[net->q_head].at;
        }
        if (next == LLONG_MAX) {
            return false;       /* Nothing will ever happen again. */
        }
        net->now = next > net->now ? next : net->now + 1;
    }
    return false;
}

static bool
pulled(const struct net *net)
{
    return net->sides[0]->n_pulled > 0;
}

/* Test data. */

/* Writes 'size' pseudo-random bytes from 'seed' to a new file in 'dir' and
 * returns its path (the caller frees it); the bytes in '*datap' (the
 * caller frees them) and the digest in 'digest'. */
static char *
make_object(const char *dir, const char *name, uint64_t size, uint64_t seed,
            uint8_t **datap, char digest[CONTENT_DIGEST_LEN + 1])
{
    uint8_t *data = xmalloc(size ? size : 1);
    uint64_t state = seed;

    for (uint64_t i = 0; i < size; i += 8) {
        uint64_t r = unit_random(&state);
        memcpy(&data[i], &r, size - i < 8 ? size - i : 8);
    }
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, size, f), size);
    CU_ASSERT_EQUAL(fclose(f), 0);

    uint64_t hashed;
    CU_ASSERT_EQUAL_FATAL(content_hash_file(path, digest, &hashed), 0);
    CU_ASSERT_EQUAL(hashed, size);
    if (datap) {
        *datap = data;
    } else {
        free(data);
    }
    return path;
}

/* True if 'cs' holds 'digest' with exactly the 'size' bytes 'data'. */
static bool
store_has(const struct content_store *cs, const char *digest,
          const uint8_t *data, uint64_t size)
{
    char *path = content_store_lookup(cs, digest);
    if (!path) {
        return false;
    }
    bool same = false;
    FILE *f = fopen(path, "rb");
    if (f) {
        uint8_t *buf = xmalloc(size + 1);
        size_t n = fread(buf, 1, size + 1, f);
        same = n == size && !memcmp(buf, data, size);
        free(buf);
        fclose(f);
    }
    free(path);
    return same;
}

/* Number of files in the store's partial directory. */
static int
n_partial_files(const struct side *s)
{
    char *path = xasprintf("%s/partial", s->dir);
    DIR *d = opendir(path);
    int n = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (struct dirent *de; (de = readdir(d)) != NULL; ) {
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    }
    closedir(d);
    free(path);
    return n;
}

static uint64_t
chunk_size(unsigned int mtu)
{
    return chan_wire_max_payload(mtu ? mtu : CHAN_WIRE_DEFAULT_MTU);
}

/* Member 'name' of the first pull of 's''s status, or -1. */
static json_int_t
pull_status(const struct side *s, const char *name)
{
    json_t *st = xfer_lane_status_json(s->lane, s->net->now);
    json_t *p = json_array_get(json_object_get(st, "pulls"), 0);
    json_int_t v = p ? json_integer_value(json_object_get(p, name)) : -1;
    json_decref(st);
    return v;
}

static void
start_pull(struct side *s, const char *digest, uint64_t size)
{
    char *error = NULL;

    CU_ASSERT_EQUAL_FATAL(xfer_lane_pull(s->lane, digest, size, s->net->now,
                                         &error), 0);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_TRUE(xfer_lane_is_pulling(s->lane, digest));
}

/* Pulls an object of 'size' bytes from side 1 to side 0 with 'loss_pct'
 * loss both ways; checks that it arrives intact, exactly once. */
static void
pull_and_check(uint64_t size, unsigned int loss_pct, uint64_t seed)
{
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1];
    uint8_t *data;

    net_init(&net, 0, 0, seed);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    net.loss_pct[0] = net.loss_pct[1] = loss_pct;
    tx->serve_path = make_object(tx->dir, "object", size, seed, &data,
                                 digest);
    uint64_t n_chunks = xfer_n_chunks(size, chunk_size(0));

    start_pull(rx, digest, size);
    CU_ASSERT_EQUAL(pull_status(rx, "n_chunks"), n_chunks);
    CU_ASSERT_EQUAL(pull_status(rx, "had_at_start"), 0);
    CU_ASSERT_TRUE(net_run(&net, pulled, 600 * 1000));

    CU_ASSERT_EQUAL(rx->n_pulled, 1);
    CU_ASSERT_PTR_NULL(rx->pulled_error);
    CU_ASSERT_PTR_NULL(rx->pulled_reason);
    CU_ASSERT_STRING_EQUAL(rx->pulled_digest, digest);
    CU_ASSERT_FALSE(xfer_lane_is_pulling(rx->lane, digest));
    CU_ASSERT_TRUE(store_has(rx->cs, digest, data, size));
    CU_ASSERT_EQUAL(n_partial_files(rx), 0);

    struct xfer_lane_stats rs, ts;
    xfer_lane_get_stats(rx->lane, &rs);
    xfer_lane_get_stats(tx->lane, &ts);
    CU_ASSERT_EQUAL(rs.pulls_started, 1);
    CU_ASSERT_EQUAL(rs.pulls_done, 1);
    CU_ASSERT_EQUAL(rs.pulls_failed, 0);
    CU_ASSERT_EQUAL(rs.chunks_received, n_chunks);
    CU_ASSERT_EQUAL(rs.chunks_stray, 0);
    CU_ASSERT_EQUAL(rs.bad_messages, 0);
    CU_ASSERT_EQUAL(ts.bad_messages, 0);
    CU_ASSERT_EQUAL(ts.gets_refused, 0);
    CU_ASSERT_EQUAL(rs.tx_errors + ts.tx_errors, 0);
    CU_ASSERT_TRUE(ts.gets_served >= 1);
    CU_ASSERT_EQUAL(tx->n_resolved, 1);
    if (!loss_pct) {
        CU_ASSERT_EQUAL(rs.chunks_duplicate, 0);
        CU_ASSERT_EQUAL(ts.chunks_sent, n_chunks);
        CU_ASSERT_EQUAL(ts.chunks_sent_again, 0);
        CU_ASSERT_EQUAL(rs.gets_sent, ts.gets_served);
    } else {
        /* Lost chunks were sent again. */
        CU_ASSERT_TRUE(ts.chunks_sent > n_chunks);
        CU_ASSERT_TRUE(ts.chunks_sent_again > 0);
    }

    /* The object stays served for its peer's next GETs only for a while:
     * the lane forgets it once idle. */
    net.now += XFER_LANE_SERVED_IDLE_MS;
    xfer_lane_run(tx->lane, net.now);
    CU_ASSERT_EQUAL(xfer_lane_next_wakeup(tx->lane, net.now), LLONG_MAX);

    free(data);
    net_destroy(&net);
}

/* Tests. */

static void
test_clean(void)
{
    pull_and_check(2 * 1024 * 1024, 0, 1);
}

static void
test_loss(void)
{
    pull_and_check(2 * 1024 * 1024, 20, 2);
}

static void
test_empty(void)
{
    pull_and_check(0, 0, 3);
}

static uint64_t kill_at;        /* Chunks received before the kill. */

static bool
received_half(const struct net *net)
{
    struct xfer_lane_stats st;

    xfer_lane_get_stats(net->sides[0]->lane, &st);
    return st.chunks_received >= kill_at;
}

/* The receiver is killed halfway (its lane destroyed without a word, its
 * content store closed and opened again: only what the last checkpoint
 * made durable counts), and a new lane pulls the same object from the
 * same sender.  It resumes from the checkpoint: the chunks it asks for
 * again are at most those received since the last checkpoint and those
 * still on their way, which is why the object is more than 10 times
 * XFER_LANE_CHECKPOINT_CHUNKS + the window chunks large. */
static void
test_resume(void)
{
    const unsigned int mtu = CHAN_WIRE_MIN_MTU;
    const uint64_t n_chunks = 12 * (XFER_LANE_CHECKPOINT_CHUNKS
                                    + XFER_DEFAULT_WINDOW);
    const uint64_t size = n_chunks * chunk_size(mtu) - 100;
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1];
    uint8_t *data;

    net_init(&net, mtu, 0, 4);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    tx->serve_path = make_object(tx->dir, "object", size, 4, &data, digest);
    CU_ASSERT_EQUAL_FATAL(xfer_n_chunks(size, chunk_size(mtu)), n_chunks);

    start_pull(rx, digest, size);
    kill_at = n_chunks / 2;
    CU_ASSERT_TRUE_FATAL(net_run(&net, received_half, 600 * 1000));
    CU_ASSERT_EQUAL(rx->n_pulled, 0);

    struct xfer_lane_stats rs, ts;
    xfer_lane_get_stats(rx->lane, &rs);
    uint64_t received = rs.chunks_received;
    CU_ASSERT_TRUE(rs.checkpoints > 0);
    xfer_lane_get_stats(tx->lane, &ts);
    CU_ASSERT_EQUAL(ts.chunks_sent_again, 0);

    /* kill -9. */
    xfer_lane_destroy(rx->lane);
    content_store_close(rx->cs);
    net_flush(&net);
    side_open_store(rx);
    CU_ASSERT_PTR_NULL(content_store_lookup(rx->cs, digest));
    side_start_lane(rx);
    net.now += 1000;

    start_pull(rx, digest, size);
    json_int_t had = pull_status(rx, "had_at_start");
    CU_ASSERT_TRUE(had > 0);
    CU_ASSERT_TRUE(had <= (json_int_t) received);
    /* A checkpoint comes at least every XFER_LANE_CHECKPOINT_CHUNKS. */
    CU_ASSERT_TRUE(had + XFER_LANE_CHECKPOINT_CHUNKS > (json_int_t) received);
    CU_ASSERT_EQUAL(pull_status(rx, "have"), had);

    CU_ASSERT_TRUE_FATAL(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_EQUAL(rx->n_pulled, 1);
    CU_ASSERT_PTR_NULL(rx->pulled_error);
    CU_ASSERT_TRUE(store_has(rx->cs, digest, data, size));
    CU_ASSERT_EQUAL(n_partial_files(rx), 0);

    xfer_lane_get_stats(rx->lane, &rs);
    xfer_lane_get_stats(tx->lane, &ts);
    CU_ASSERT_EQUAL(rs.chunks_received, n_chunks - had);
    CU_ASSERT_EQUAL(rs.chunks_duplicate, 0);
    CU_ASSERT_TRUE(ts.chunks_sent_again * 10 < n_chunks);
    CU_ASSERT_TRUE(ts.chunks_sent_again
                   <= XFER_LANE_CHECKPOINT_CHUNKS + XFER_DEFAULT_WINDOW);
    /* Every chunk was sent once, and those lost to the kill again. */
    CU_ASSERT_EQUAL(ts.chunks_sent - ts.chunks_sent_again, n_chunks);

    free(data);
    net_destroy(&net);
}

/* The sender's file has the right size and other bytes: the receiver
 * throws the content away and says "digest". */
static void
test_digest_mismatch(void)
{
    const uint64_t size = 300 * 1000;
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1], other[CONTENT_DIGEST_LEN + 1];

    net_init(&net, 0, 0, 5);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    char *real = make_object(tx->dir, "real", size, 5, NULL, digest);
    tx->serve_path = make_object(tx->dir, "forged", size, 6, NULL, other);
    CU_ASSERT_STRING_NOT_EQUAL(digest, other);
    free(real);

    start_pull(rx, digest, size);
    CU_ASSERT_TRUE(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_EQUAL(rx->n_pulled, 1);
    CU_ASSERT_STRING_EQUAL(rx->pulled_digest, digest);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx->pulled_error);
    CU_ASSERT_STRING_EQUAL(rx->pulled_error, "digest");
    CU_ASSERT_PTR_NOT_NULL(rx->pulled_reason);
    CU_ASSERT_PTR_NULL(content_store_lookup(rx->cs, digest));
    CU_ASSERT_PTR_NULL(content_store_lookup(rx->cs, other));
    CU_ASSERT_EQUAL(n_partial_files(rx), 0);
    CU_ASSERT_FALSE(xfer_lane_is_pulling(rx->lane, digest));

    struct xfer_lane_stats rs;
    xfer_lane_get_stats(rx->lane, &rs);
    CU_ASSERT_EQUAL(rs.pulls_failed, 1);
    CU_ASSERT_EQUAL(rs.pulls_done, 0);

    /* A new pull starts from nothing. */
    start_pull(rx, digest, size);
    CU_ASSERT_EQUAL(pull_status(rx, "had_at_start"), 0);
    xfer_lane_cancel(rx->lane, digest);

    net_destroy(&net);
}

/* The sender's owner refuses the object. */
static void
test_not_entitled(void)
{
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1];

    net_init(&net, 0, 0, 7);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    tx->serve_path = make_object(tx->dir, "object", 100000, 7, NULL, digest);
    tx->refuse_error = XFER_ERR_NOT_ENTITLED;
    tx->refuse_reason = "VM vm2 never held this object";

    start_pull(rx, digest, 100000);
    CU_ASSERT_TRUE(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_EQUAL(rx->n_pulled, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx->pulled_error);
    CU_ASSERT_STRING_EQUAL(rx->pulled_error, XFER_ERR_NOT_ENTITLED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx->pulled_reason);
    CU_ASSERT_STRING_EQUAL(rx->pulled_reason,
                           "VM vm2 never held this object");
    CU_ASSERT_PTR_NULL(content_store_lookup(rx->cs, digest));
    CU_ASSERT_FALSE(xfer_lane_is_pulling(rx->lane, digest));

    struct xfer_lane_stats rs, ts;
    xfer_lane_get_stats(rx->lane, &rs);
    xfer_lane_get_stats(tx->lane, &ts);
    CU_ASSERT_EQUAL(rs.pulls_failed, 1);
    CU_ASSERT_EQUAL(rs.chunks_received, 0);
    CU_ASSERT_TRUE(ts.gets_refused >= 1);
    CU_ASSERT_EQUAL(ts.gets_served, 0);
    CU_ASSERT_EQUAL(ts.chunks_sent, 0);
    CU_ASSERT_TRUE(tx->n_resolved >= 1);

    net_destroy(&net);
}

/* The sender's owner stops serving the object halfway: once the lane
 * closes its file (xfer_lane_close_served()), the next GET asks 'resolve'
 * again, which refuses it. */
static void
test_close_served(void)
{
    const uint64_t n_chunks = 8 * XFER_DEFAULT_WINDOW;
    const uint64_t size = n_chunks * chunk_size(0);
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1];

    net_init(&net, 0, 0, 9);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    tx->serve_path = make_object(tx->dir, "object", size, 9, NULL, digest);

    start_pull(rx, digest, size);
    kill_at = n_chunks / 2;
    CU_ASSERT_TRUE_FATAL(net_run(&net, received_half, 600 * 1000));
    CU_ASSERT_EQUAL(tx->n_resolved, 1);
    tx->refuse_error = XFER_ERR_NO_OBJECT;
    tx->refuse_reason = "no longer exported";
    xfer_lane_close_served(tx->lane, digest);
    xfer_lane_close_served(tx->lane, "no such digest");     /* No-op. */

    CU_ASSERT_TRUE(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_EQUAL(rx->n_pulled, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx->pulled_error);
    CU_ASSERT_STRING_EQUAL(rx->pulled_error, XFER_ERR_NO_OBJECT);
    CU_ASSERT_TRUE(tx->n_resolved >= 2);
    CU_ASSERT_PTR_NULL(content_store_lookup(rx->cs, digest));
    net_destroy(&net);
}

/* A GET for another size than the file's is refused with "size". */
static void
test_wrong_size(void)
{
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1];
    uint8_t *data;

    net_init(&net, 0, 0, 8);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    tx->serve_path = make_object(tx->dir, "object", 50000, 8, &data, digest);

    start_pull(rx, digest, 50001);
    CU_ASSERT_TRUE(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_EQUAL(rx->n_pulled, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx->pulled_error);
    CU_ASSERT_STRING_EQUAL(rx->pulled_error, XFER_ERR_SIZE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx->pulled_reason);
    CU_ASSERT_PTR_NOT_NULL(strstr(rx->pulled_reason, "50000"));
    CU_ASSERT_PTR_NULL(content_store_lookup(rx->cs, digest));

    struct xfer_lane_stats ts;
    xfer_lane_get_stats(tx->lane, &ts);
    CU_ASSERT_TRUE(ts.gets_refused >= 1);
    CU_ASSERT_EQUAL(ts.gets_served, 0);
    CU_ASSERT_EQUAL(ts.chunks_sent, 0);

    /* The right size afterwards is served. */
    start_pull(rx, digest, 50000);
    rx->n_pulled = 0;
    CU_ASSERT_TRUE(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_EQUAL(rx->n_pulled, 1);
    CU_ASSERT_PTR_NULL(rx->pulled_error);
    CU_ASSERT_TRUE(store_has(rx->cs, digest, data, 50000));

    free(data);
    net_destroy(&net);
}

/* Feeds side 's' a frame made up here. */
static void
inject(struct side *s, uint8_t type, uint32_t id, uint64_t seq,
       const void *payload, size_t len)
{
    struct chan_wire_header h = {
        .type = type,
        .vid = VID,
        .epoch = id,
        .seq = seq,
        .chunk_count = 1,
        .payload_len = len,
    };
    xfer_lane_input(s->lane, &h, payload, s->net->now);
}

static bool
requested_some(const struct net *net)
{
    struct xfer_lane_stats st;

    xfer_lane_get_stats(net->sides[0]->lane, &st);
    return st.gets_sent > 0;
}

/* CHUNKs of no pull of this lane, or outside the object, are counted and
 * change nothing. */
static void
test_stray(void)
{
    const uint64_t size = 200000;
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1];
    uint8_t *data;
    uint8_t junk[1420];     /* The chunk size at the default MTU. */

    CU_ASSERT_EQUAL_FATAL(chunk_size(0), sizeof junk);
    memset(junk, 0xa5, sizeof junk);
    net_init(&net, 0, 0, 9);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    tx->serve_path = make_object(tx->dir, "object", size, 9, &data, digest);

    /* No pull at all. */
    inject(rx, CHAN_WIRE_CHUNK, 12345, 0, junk, sizeof junk);
    struct xfer_lane_stats rs;
    xfer_lane_get_stats(rx->lane, &rs);
    CU_ASSERT_EQUAL(rs.chunks_stray, 1);

    start_pull(rx, digest, size);
    uint32_t id = pull_status(rx, "id");
    uint32_t other = id + 1 ? id + 1 : 2;
    CU_ASSERT_TRUE(net_run(&net, requested_some, 1000));
    uint64_t frames = rx->frames_sent;

    /* Another transfer id, for every chunk of the object. */
    for (uint64_t i = 0; i < xfer_n_chunks(size, sizeof junk); i++) {
        inject(rx, CHAN_WIRE_CHUNK, other, i, junk,
               xfer_chunk_len(size, sizeof junk, i));
    }
    /* The right id, past the last chunk; and with a wrong length. */
    inject(rx, CHAN_WIRE_CHUNK, id, xfer_n_chunks(size, sizeof junk), junk,
           sizeof junk);
    inject(rx, CHAN_WIRE_CHUNK, id, 0, junk, 10);

    uint64_t n_stray = 1 + xfer_n_chunks(size, sizeof junk) + 2;
    xfer_lane_get_stats(rx->lane, &rs);
    CU_ASSERT_EQUAL(rs.chunks_stray, n_stray);
    CU_ASSERT_EQUAL(rs.chunks_received, 0);
    CU_ASSERT_EQUAL(rs.chunks_duplicate, 0);
    CU_ASSERT_EQUAL(pull_status(rx, "have"), 0);
    CU_ASSERT_EQUAL(rx->frames_sent, frames);
    CU_ASSERT_EQUAL(rx->n_pulled, 0);

    /* The pull goes on and gets the real bytes. */
    CU_ASSERT_TRUE(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_EQUAL(rx->n_pulled, 1);
    CU_ASSERT_PTR_NULL(rx->pulled_error);
    CU_ASSERT_TRUE(store_has(rx->cs, digest, data, size));
    xfer_lane_get_stats(rx->lane, &rs);
    CU_ASSERT_EQUAL(rs.chunks_stray, n_stray);
    CU_ASSERT_EQUAL(rs.chunks_duplicate, 0);

    /* Late chunks of the finished pull are stray too. */
    inject(rx, CHAN_WIRE_CHUNK, id, 0, data, sizeof junk);
    xfer_lane_get_stats(rx->lane, &rs);
    CU_ASSERT_EQUAL(rs.chunks_stray, n_stray + 1);

    struct xfer_lane_stats ts;
    xfer_lane_get_stats(tx->lane, &ts);
    CU_ASSERT_EQUAL(ts.chunks_stray, 0);

    free(data);
    net_destroy(&net);
}

/* XFER payloads that do not parse are counted in bad_messages and
 * answered with nothing. */
static void
test_bad_messages(void)
{
    static const char *const bad[] = {
        "{",
        "[]",
        "",
        "{\"op\":\"get\"}",
        "{\"op\":\"put\",\"digest\":\"" "0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef\"}",
        "{\"op\":\"get\",\"digest\":\"0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef\",\"size\":10,\"chunk_size\":1,"
        "\"ranges\":[[10,1]]}",
    };
    struct net net;

    net_init(&net, 0, 0, 10);
    struct side *a = net.sides[0], *b = net.sides[1];
    b->serve_path = xstrdup("/nonexistent");

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        inject(b, CHAN_WIRE_XFER, 99, 0, bad[i], strlen(bad[i]));
    }
    struct xfer_lane_stats st;
    xfer_lane_get_stats(b->lane, &st);
    CU_ASSERT_EQUAL(st.bad_messages, N_ELEMS(bad));
    CU_ASSERT_EQUAL(st.gets_served + st.gets_refused, 0);
    CU_ASSERT_EQUAL(b->frames_sent, 0);
    CU_ASSERT_EQUAL(b->n_resolved, 0);

    /* A FAIL for no pull of this lane is a bad message too, and ends
     * nothing. */
    static const char fail[] =
        "{\"op\":\"fail\",\"digest\":\"0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef\",\"error\":\"io\","
        "\"reason\":\"x\"}";
    inject(a, CHAN_WIRE_XFER, 99, 0, fail, strlen(fail));
    xfer_lane_get_stats(a->lane, &st);
    CU_ASSERT_EQUAL(st.bad_messages, 1);
    CU_ASSERT_EQUAL(a->n_pulled, 0);

    net_destroy(&net);
}

/* With max_rate chunks per second, the GETs of a pull never ask for more
 * than the rate allows since the pull started plus a burst of
 * max(rate / 10, window) chunks (and the last GET's overdraft). */
static void
test_pacing(void)
{
    const unsigned int rate = 1000;
    const uint64_t n_chunks = 2000;
    const uint64_t size = n_chunks * chunk_size(0);
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1];
    uint8_t *data;

    net_init(&net, 0, rate, 11);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    tx->serve_path = make_object(tx->dir, "object", size, 11, &data, digest);
    net.paced = 0;
    net.rate = rate;
    net.burst = rate / 10.0 > XFER_DEFAULT_WINDOW ? rate / 10.0
                                                  : XFER_DEFAULT_WINDOW;
    net.pace_start = net.now;

    start_pull(rx, digest, size);
    CU_ASSERT_TRUE_FATAL(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_PTR_NULL(rx->pulled_error);
    CU_ASSERT_TRUE(store_has(rx->cs, digest, data, size));

    long long elapsed = rx->pulled_at - net.pace_start;
    CU_ASSERT_TRUE(elapsed >= 1800);
    CU_ASSERT_TRUE(elapsed < 2500);
    CU_ASSERT_EQUAL(net.asked, n_chunks);
    /* A GET goes out while any token is left and names up to a window of
     * chunks (the tokens then go below 0 and the next GETs wait): the
     * bucket is exceeded by less than one window, never more. */
    CU_ASSERT_TRUE(net.max_excess < XFER_DEFAULT_WINDOW);
    if (net.max_excess >= XFER_DEFAULT_WINDOW || elapsed < 1800) {
        fprintf(stderr, "paced pull: %lld ms, %"PRIu64" GETs, asked up to "
                "%"PRIu64" chunks above the rate\n", elapsed, net.gets,
                net.max_excess);
    }

    free(data);
    net_destroy(&net);
}


/* A server whose serve_rate is below what the puller asks for answers
 * GETs in part (counted as throttled), and the pull still completes, no
 * faster than the rate. */
static void
test_serve_rate(void)
{
    const unsigned int rate = 1000;
    const uint64_t n_chunks = 3000;
    const uint64_t size = n_chunks * chunk_size(0);
    struct net net;
    char digest[CONTENT_DIGEST_LEN + 1];
    uint8_t *data;

    net_init(&net, 0, 0, 12);
    struct side *rx = net.sides[0], *tx = net.sides[1];
    xfer_lane_destroy(tx->lane);
    tx->cfg.serve_rate = rate;
    side_start_lane(tx);
    tx->serve_path = make_object(tx->dir, "object", size, 12, &data, digest);

    long long start = net.now;
    start_pull(rx, digest, size);
    CU_ASSERT_TRUE_FATAL(net_run(&net, pulled, 600 * 1000));
    CU_ASSERT_PTR_NULL(rx->pulled_error);
    CU_ASSERT_TRUE(store_has(rx->cs, digest, data, size));

    struct xfer_lane_stats st;
    xfer_lane_get_stats(tx->lane, &st);
    long long elapsed = rx->pulled_at - start;
    /* The bucket starts with a burst of 4 GETs' worth (1024 chunks). */
    CU_ASSERT_TRUE(elapsed >= (long long) (n_chunks - 1024) * 1000 / rate
                              - 100);
    CU_ASSERT_TRUE(st.chunks_throttled > 0);
    CU_ASSERT_TRUE(st.chunks_sent >= n_chunks);

    free(data);
    net_destroy(&net);
}

static const struct unit_test tests[] = {
    { "2 MiB, no loss", test_clean },
    { "2 MiB, 20% loss both ways", test_loss },
    { "empty object", test_empty },
    { "resume after the receiver is killed", test_resume },
    { "content that does not match its digest", test_digest_mismatch },
    { "resolve refuses: not entitled", test_not_entitled },
    { "GET of the wrong size", test_wrong_size },
    { "a served file closed halfway", test_close_served },
    { "stray chunks", test_stray },
    { "malformed XFER payloads", test_bad_messages },
    { "pacing by max_rate", test_pacing },
    { "serving under serve_rate", test_serve_rate },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("xfer-lane", tests);
}
