/* chand-guest's sending end of the upstream stream: see publisher.h. */

#include <config.h>
#include "publisher.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "chan-sender.h"
#include "datastore.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(publisher);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(20, 20);

/* Returned by scan_cb() to stop the query when a message is full. */
#define SCAN_STOP (-1)

/* Room for a SYNC frame: {"snapshot_end": up to 20 digits}. */
#define SYNC_BUF_SIZE 256

/* One record of a queued message: what to mark acknowledged. */
struct pub_mark {
    char *key;                  /* Owned. */
    int64_t version;
};

/* The cookie of a queued message. */
struct pub_msg {
    size_t n;
    struct pub_mark marks[];
};

struct publisher {
    struct publisher_config cfg;
    struct datastore *ds;
    publisher_send_func *send;
    void *aux;
    struct chan_sender *sender;
    uint64_t rng;

    /* Key. */
    uint32_t key_generation;
    uint8_t *key;
    size_t key_len;

    /* Session. */
    enum publisher_state state;
    uint32_t up_epoch;
    bool synced_once;           /* Some SYNC was sent: report up_epoch. */
    bool need_session;          /* Start a new session at 'retry_at'. */
    long long retry_at;
    long long next_sync;        /* While syncing. */
    uint64_t snapshot_end;      /* Last seq of the snapshot (0: empty). */
    int64_t snapshot_version;   /* Counter when the snapshot was taken. */
    bool snapshot_acked;
    bool limits_known;          /* The host told us 'limits'. */
    struct ds_pub_limits limits;

    /* What to queue next: every row with a version above 'cursor' is
     * dirty; 'scanned' is the counter at the last scan that found
     * everything above the cursor queued. */
    int64_t cursor;
    int64_t scanned;

    /* Acknowledgements to write, and tombstones to purge (up to
     * 'purge_version', if 'purge'). */
    struct pub_mark *marks;
    size_t n_marks, allocated_marks;
    bool purge;
    int64_t purge_version;
    long long write_at;         /* Not before (after a failure). */

    struct publisher_stats stats;
};

const char *
publisher_state_to_string(enum publisher_state state)
{
    switch (state) {
    case PUBLISHER_SYNCING:
        return "syncing";
    case PUBLISHER_ESTABLISHED:
        return "established";
    }
    return "?";
}

static uint64_t
next_random(struct publisher *pub)
{
    uint64_t x = pub->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    pub->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Returns a random nonzero epoch other than the current one. */
static uint32_t
new_epoch(struct publisher *pub)
{
    uint32_t epoch = 0;

    while (!epoch || epoch == pub->up_epoch) {
        epoch = next_random(pub) >> 32;
    }
    return epoch;
}

/* Messages. */

static void
pub_msg_free(struct pub_msg *msg)
{
    if (msg) {
        for (size_t i = 0; i < msg->n; i++) {
            free(msg->marks[i].key);
        }
        free(msg);
    }
}

/* Appends 'mark' (its key is taken over) to the acknowledgements to
 * write. */
static void
add_mark(struct publisher *pub, struct pub_mark mark)
{
    if (pub->n_marks >= pub->allocated_marks) {
        size_t n = pub->allocated_marks ? 2 * pub->allocated_marks : 64;
        struct pub_mark *m = realloc(pub->marks, n * sizeof *m);

        if (!m) {
            /* The record stays pending until the next session's
             * snapshot: nothing is lost but the bookkeeping. */
            free(mark.key);
            return;
        }
        pub->marks = m;
        pub->allocated_marks = n;
    }
    pub->marks[pub->n_marks++] = mark;
}

static void
clear_marks(struct publisher *pub)
{
    for (size_t i = 0; i < pub->n_marks; i++) {
        free(pub->marks[i].key);
    }
    pub->n_marks = 0;
}

/* chan_sender's 'done' callback. */
static void
msg_done(void *msg_, bool acked, void *pub_)
{
    struct pub_msg *msg = msg_;
    struct publisher *pub = pub_;

    if (acked) {
        pub->stats.msgs_acked++;
        pub->stats.records_acked += msg->n;
        for (size_t i = 0; i < msg->n; i++) {
            add_mark(pub, msg->marks[i]);
        }
        msg->n = 0;
    }
    pub_msg_free(msg);
}

/* A message being built: the batch to send and its cookie. */
struct builder {
    struct publisher *pub;
    struct chan_batch batch;
    struct pub_msg *msg;
    size_t allocated;
    size_t bytes;               /* Estimated payload size. */
    int64_t last_version;       /* Highest version in it. */
    uint8_t flags;
    int error;                  /* First failure queueing. */
};

static void
builder_init(struct builder *b, struct publisher *pub, uint8_t flags)
{
    memset(b, 0, sizeof *b);
    b->pub = pub;
    b->flags = flags;
    chan_batch_init(&b->batch);
}

static void
builder_reset(struct builder *b)
{
    chan_batch_destroy(&b->batch);
    pub_msg_free(b->msg);
    b->msg = NULL;
    b->allocated = 0;
    b->bytes = 0;
}

static bool
builder_full(const struct builder *b)
{
    const struct publisher_config *cfg = &b->pub->cfg;

    return (b->batch.n >= cfg->max_msg_records
            || b->bytes >= cfg->max_msg_bytes);
}

/* Estimates how many bytes 'p' adds to a batch. */
static size_t
record_bytes(const struct ds_published *p)
{
    return strlen(p->key) + (p->value ? strlen(p->value) : 0) + 48;
}

/* Adds row 'p' (borrowed) to the message.  Returns false if it cannot be
 * encoded (counted, skipped). */
static bool
builder_add(struct builder *b, const struct ds_published *p)
{
    struct publisher *pub = b->pub;
    json_t *value = NULL;

    if (!p->deleted) {
        json_error_t jerror;

        value = json_loads(p->value, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                           &jerror);
        if (!value) {
            pub->stats.bad_records++;
            VLOG_WARN_RL(&rl, "published record \"%s\" holds no valid "
                         "JSON (%s); not sending it", p->key, jerror.text);
            return false;
        }
    }

    if (!b->msg || b->msg->n >= b->allocated) {
        size_t n = b->allocated ? 2 * b->allocated : 16;
        struct pub_msg *m = realloc(b->msg, sizeof *m + n * sizeof *m->marks);

        if (!m) {
            json_decref(value);
            b->error = ENOMEM;
            return false;
        }
        if (!b->msg) {
            m->n = 0;
        }
        b->msg = m;
        b->allocated = n;
    }
    char *key = strdup(p->key);
    if (!key) {
        json_decref(value);
        b->error = ENOMEM;
        return false;
    }
    b->msg->marks[b->msg->n].key = key;
    b->msg->marks[b->msg->n].version = p->version;
    b->msg->n++;

    if (p->deleted) {
        chan_batch_add_delete(&b->batch, p->key, p->version);
    } else {
        chan_batch_add_put(&b->batch, p->key, value, p->version);
        json_decref(value);
    }
    b->bytes += record_bytes(p);
    if (p->version > b->last_version) {
        b->last_version = p->version;
    }
    return true;
}

/* Encodes the batch, dropping (and counting) any record that does not
 * encode on its own.  Returns 0 or an errno; on success '*textp' and
 * '*lenp' hold the payload (NULL, 0 if nothing is left). */
static int
builder_encode(struct builder *b, char **textp, size_t *lenp)
{
    const struct chan_wire_limits limits = {
        .max_depth = DS_PUB_MAX_DEPTH,
    };
    enum chan_wire_error werr;

    werr = chan_batch_encode(&b->batch, &limits, textp, lenp);
    if (werr == CHAN_WIRE_OK || werr == CHAN_WIRE_ERR_NOMEM) {
        return werr ? ENOMEM : 0;
    }

    /* Some row of the datastore breaks the wire's rules (it was changed
     * behind chand-guest's back): find it and leave it out. */
    struct chan_batch good;
    size_t kept = 0;

    chan_batch_init(&good);
    for (size_t i = 0; i < b->batch.n; i++) {
        const struct chan_record *r = &b->batch.records[i];
        struct chan_batch one;
        char *text;
        size_t len;

        chan_batch_init(&one);
        if (r->op == CHAN_OP_PUT) {
            chan_batch_add_put(&one, r->key, r->value, r->version);
        } else {
            chan_batch_add_delete(&one, r->key, r->version);
        }
        werr = chan_batch_encode(&one, &limits, &text, &len);
        chan_batch_destroy(&one);
        free(text);
        if (werr) {
            b->pub->stats.bad_records++;
            VLOG_WARN_RL(&rl, "published record \"%s\" cannot be sent "
                         "(%s); leaving it out", r->key,
                         chan_wire_strerror(werr));
            free(b->msg->marks[i].key);
            b->msg->marks[i].key = NULL;
            continue;
        }
        if (r->op == CHAN_OP_PUT) {
            chan_batch_add_put(&good, r->key, r->value, r->version);
        } else {
            chan_batch_add_delete(&good, r->key, r->version);
        }
        b->msg->marks[kept++] = b->msg->marks[i];
    }
    b->msg->n = kept;
    chan_batch_destroy(&b->batch);
    b->batch = good;
    if (!kept) {
        *textp = NULL;
        *lenp = 0;
        return 0;
    }
    werr = chan_batch_encode(&b->batch, &limits, textp, lenp);
    return werr ? EIO : 0;
}

/* Queues the message built so far, if it holds anything, and starts a new
 * one.  Returns 0 or an errno (also stored in b->error). */
static int
builder_flush(struct builder *b)
{
    struct publisher *pub = b->pub;
    char *text = NULL;
    size_t len = 0;
    int error;

    if (!b->batch.n) {
        builder_reset(b);
        return 0;
    }
    error = builder_encode(b, &text, &len);
    if (!error && text) {
        size_t n = b->msg->n;

        error = chan_sender_queue(pub->sender, b->flags, text, len, b->msg,
                                  NULL);
        if (!error) {
            b->msg = NULL;      /* The sender has it now. */
            pub->stats.msgs_queued++;
            pub->stats.records_queued += n;
            if (b->flags & CHAN_WIRE_F_SNAPSHOT) {
                pub->stats.snapshot_records += n;
            }
        }
    }
    free(text);
    builder_reset(b);
    if (error && !b->error) {
        b->error = error;
    }
    return error;
}

static void
builder_destroy(struct builder *b)
{
    builder_reset(b);
}

/* Sessions. */

/* datastore_list_published() callback for the snapshot. */
static int
snapshot_cb(void *b_, const struct ds_published *p)
{
    struct builder *b = b_;

    builder_add(b, p);
    if (b->error) {
        return b->error;
    }
    return builder_full(b) ? builder_flush(b) : 0;
}

/* Starts a new session: new epoch, sender reset, snapshot queued, SYNC
 * due at once.  On a datastore failure, tries again later. */
static void
start_session(struct publisher *pub, long long now)
{
    uint32_t old_epoch = pub->up_epoch;
    struct builder b;
    int error;

    pub->up_epoch = new_epoch(pub);
    chan_sender_reset(pub->sender, pub->up_epoch);
    pub->state = PUBLISHER_SYNCING;
    pub->snapshot_version = datastore_published_counter(pub->ds);
    pub->snapshot_acked = false;

    builder_init(&b, pub, CHAN_WIRE_F_SNAPSHOT);
    error = datastore_list_published(pub->ds, NULL, false, snapshot_cb, &b,
                                     NULL);
    if (!error) {
        error = builder_flush(&b);
    }
    builder_destroy(&b);
    if (error) {
        pub->stats.ds_errors++;
        VLOG_ERR_RL(&rl, "cannot take a snapshot of the published records "
                    "(%s): %s; trying again in %d ms", strerror(error),
                    datastore_last_error(), PUBLISHER_RETRY_MS);
        chan_sender_reset(pub->sender, pub->up_epoch);
        pub->need_session = true;
        pub->retry_at = now + PUBLISHER_RETRY_MS;
        return;
    }

    pub->need_session = false;
    pub->snapshot_end = chan_sender_last_seq(pub->sender);
    pub->cursor = pub->scanned = pub->snapshot_version;
    pub->next_sync = now;
    pub->stats.sessions++;
    if (old_epoch) {
        VLOG_INFO("new upstream session: epoch %"PRIu32" (was %"PRIu32"), "
                  "snapshot of %zu messages up to version %"PRId64,
                  pub->up_epoch, old_epoch,
                  chan_sender_queued_msgs(pub->sender),
                  pub->snapshot_version);
    } else {
        VLOG_INFO("upstream session: epoch %"PRIu32", snapshot of %zu "
                  "messages up to version %"PRId64, pub->up_epoch,
                  chan_sender_queued_msgs(pub->sender),
                  pub->snapshot_version);
    }
}

/* The host lost our session ('why' says how): start a new one at the next
 * publisher_run(). */
static void
lose_session(struct publisher *pub, const char *why, long long now)
{
    VLOG_INFO("host lost upstream session %"PRIu32" (%s); starting a new "
              "one", pub->up_epoch, why);
    pub->stats.sessions_lost++;
    pub->need_session = true;
    pub->retry_at = now;
}

/* Transmission. */

static void
emit(const uint8_t *frame, size_t len, void *pub_)
{
    struct publisher *pub = pub_;
    int error = pub->send(frame, len, pub->aux);

    if (error) {
        pub->stats.tx_errors++;
        VLOG_WARN_RL(&rl, "sending upstream DATA to the host failed: %s",
                     strerror(error));
    }
}

static void
send_sync(struct publisher *pub, long long now)
{
    struct chan_wire_header h = {
        .type = CHAN_WIRE_SYNC,
        .vid = pub->cfg.vid,
        .epoch = pub->up_epoch,
        .chunk_count = 1,
    };
    uint8_t buf[SYNC_BUF_SIZE];
    char *text = NULL;
    size_t text_len = 0, len;
    enum chan_wire_error werr;
    json_t *obj;

    /* While established, a repeat says so ("refresh"): a host that no
     * longer has the session answers with its own epoch instead of
     * starting one from it. */
    obj = json_pack("{sI}", "snapshot_end", (json_int_t) pub->snapshot_end);
    if (obj && pub->state != PUBLISHER_SYNCING) {
        json_object_set_new(obj, "refresh", json_true());
    }
    werr = obj ? chan_payload_encode_object(obj, NULL, &text, &text_len)
               : CHAN_WIRE_ERR_NOMEM;
    json_decref(obj);
    if (!werr) {
        werr = chan_wire_encode(&h, text, text_len, pub->key, pub->key_len,
                                buf, sizeof buf, &len);
    }
    free(text);
    pub->next_sync = now + PUBLISHER_SYNC_INTERVAL_MS;
    if (werr) {
        pub->stats.tx_errors++;
        VLOG_ERR_RL(&rl, "cannot encode SYNC: %s", chan_wire_strerror(werr));
        return;
    }
    int error = pub->send(buf, len, pub->aux);
    if (error) {
        pub->stats.tx_errors++;
        VLOG_WARN_RL(&rl, "sending upstream SYNC to the host failed: %s",
                     strerror(error));
        return;
    }
    pub->stats.tx_sync++;
    pub->synced_once = true;
    VLOG_DBG("sent upstream SYNC: epoch %"PRIu32", snapshot_end %"PRIu64,
             pub->up_epoch, pub->snapshot_end);
}

/* Queueing what changed. */

struct scan {
    struct builder b;
    size_t rows;                /* Rows the query returned. */
    bool stopped;               /* The message filled up before the end. */
};

static int
scan_cb(void *scan_, const struct ds_published *p)
{
    struct scan *scan = scan_;

    if (scan->b.batch.n && builder_full(&scan->b)) {
        scan->stopped = true;
        return SCAN_STOP;
    }
    scan->rows++;
    if (!builder_add(&scan->b, p) && scan->b.error) {
        return scan->b.error;
    }
    /* A skipped row still moves the cursor past it. */
    if (p->version > scan->b.last_version) {
        scan->b.last_version = p->version;
    }
    return 0;
}

static bool
has_room(const struct publisher *pub)
{
    return chan_sender_queued_msgs(pub->sender) < pub->cfg.max_queued_msgs;
}

/* Queues the records changed since the cursor while the sender has
 * room. */
static void
queue_changes(struct publisher *pub, long long now)
{
    while (has_room(pub)) {
        int64_t counter = datastore_published_counter(pub->ds);
        struct scan scan;
        int error;

        if (counter == pub->scanned) {
            return;
        }
        memset(&scan, 0, sizeof scan);
        builder_init(&scan.b, pub, 0);
        error = datastore_published_since(pub->ds, pub->cursor,
                                          pub->cfg.max_msg_records, scan_cb,
                                          &scan);
        if (error == SCAN_STOP) {
            error = 0;
        }
        int64_t last = scan.b.last_version;
        if (!error) {
            error = builder_flush(&scan.b);
        }
        builder_destroy(&scan.b);
        if (error) {
            pub->stats.ds_errors++;
            VLOG_ERR_RL(&rl, "cannot read the published records (%s): %s",
                        strerror(error), datastore_last_error());
            pub->write_at = now + PUBLISHER_RETRY_MS;
            return;
        }
        if (last > pub->cursor) {
            pub->cursor = last;
        }
        if (!scan.stopped && scan.rows < pub->cfg.max_msg_records) {
            pub->scanned = counter;     /* Everything is queued. */
        }
    }
}

/* Acknowledgements. */

/* Writes the acknowledgements and the purge due, in one transaction. */
static void
write_acks(struct publisher *pub, long long now)
{
    struct ds_pub_ack *acks;
    uint64_t removed = 0, purged = 0;
    int error;

    if ((!pub->n_marks && !pub->purge) || now < pub->write_at
        || datastore_in_transaction(pub->ds)) {
        return;
    }
    acks = malloc((pub->n_marks ? pub->n_marks : 1) * sizeof *acks);
    if (!acks) {
        return;
    }
    for (size_t i = 0; i < pub->n_marks; i++) {
        acks[i].key = pub->marks[i].key;
        acks[i].version = pub->marks[i].version;
    }
    error = datastore_begin(pub->ds);
    if (!error) {
        error = datastore_ack_published(pub->ds, acks, pub->n_marks,
                                        &removed);
    }
    if (!error && pub->purge) {
        error = datastore_purge_published(pub->ds, pub->purge_version,
                                          &purged);
    }
    if (!error) {
        error = datastore_commit(pub->ds);
    } else {
        datastore_rollback(pub->ds);
    }
    free(acks);
    if (error) {
        pub->stats.ds_errors++;
        pub->write_at = now + PUBLISHER_RETRY_MS;
        VLOG_ERR_RL(&rl, "cannot record acknowledged published records "
                    "(%s): %s; trying again in %d ms", strerror(error),
                    datastore_last_error(), PUBLISHER_RETRY_MS);
        return;
    }
    pub->stats.tombstones_removed += removed + purged;
    clear_marks(pub);
    pub->purge = false;
}

/* Notes that the session's snapshot is fully acknowledged, if it is. */
static void
check_snapshot_acked(struct publisher *pub)
{
    if (!pub->snapshot_acked
        && chan_sender_acked_seq(pub->sender) >= pub->snapshot_end) {
        pub->snapshot_acked = true;
        pub->stats.snapshots_acked++;
        if (!pub->purge || pub->snapshot_version > pub->purge_version) {
            pub->purge_version = pub->snapshot_version;
        }
        pub->purge = true;
    }
}

/* Public functions. */

struct publisher *
publisher_create(const struct publisher_config *config,
                 struct datastore *ds, publisher_send_func *send, void *aux,
                 long long now)
{
    struct publisher *pub = calloc(1, sizeof *pub);

    if (!pub) {
        return NULL;
    }
    pub->cfg = *config;
    if (!pub->cfg.max_msg_bytes) {
        pub->cfg.max_msg_bytes = PUBLISHER_MSG_MAX_BYTES;
    }
    if (!pub->cfg.max_msg_records) {
        pub->cfg.max_msg_records = PUBLISHER_MSG_MAX_RECORDS;
    }
    if (!pub->cfg.max_queued_msgs) {
        pub->cfg.max_queued_msgs = PUBLISHER_MAX_QUEUED_MSGS;
    }
    if (!pub->cfg.refresh_ms) {
        pub->cfg.refresh_ms = PUBLISHER_REFRESH_MS;
    } else if (pub->cfg.refresh_ms < 0) {
        pub->cfg.refresh_ms = 0;
    }
    pub->rng = config->seed;
    while (!pub->rng) {
        if (getrandom(&pub->rng, sizeof pub->rng, 0) != sizeof pub->rng) {
            pub->rng = (uint64_t) now * 0x9e3779b97f4a7c15ULL
                       ^ (uintptr_t) pub;
        }
    }
    pub->ds = ds;
    pub->send = send;
    pub->aux = aux;

    struct chan_sender_params p = {
        .vid = config->vid,
        .mtu = config->mtu,
        .window = config->window,
        .rto_ms = config->rto_ms,
        .rto_max_ms = config->rto_max_ms,
        .seed = next_random(pub),
    };
    /* A placeholder epoch: start_session() picks the real one. */
    pub->sender = chan_sender_create(&p, 1, NULL, 0, msg_done, pub);
    if (!pub->sender) {
        free(pub);
        return NULL;
    }
    pub->state = PUBLISHER_SYNCING;
    pub->need_session = true;
    pub->retry_at = now;
    pub->write_at = now;
    return pub;
}

void
publisher_destroy(struct publisher *pub)
{
    if (pub) {
        chan_sender_destroy(pub->sender);
        clear_marks(pub);
        free(pub->marks);
        if (pub->key) {
            explicit_bzero(pub->key, pub->key_len);
        }
        free(pub->key);
        free(pub);
    }
}

void
publisher_set_key(struct publisher *pub, uint32_t generation,
                  const void *key, size_t key_len)
{
    uint8_t *copy = NULL;

    if (!key) {
        key_len = 0;
    }
    if (generation == pub->key_generation && key_len == pub->key_len
        && (!key_len || !memcmp(key, pub->key, key_len))) {
        return;
    }
    if (key_len) {
        copy = malloc(key_len);
        if (!copy) {
            return;             /* Keep the old key; tried again later. */
        }
        memcpy(copy, key, key_len);
    }
    if (pub->key) {
        explicit_bzero(pub->key, pub->key_len);
    }
    free(pub->key);
    pub->key = copy;
    pub->key_len = key_len;
    pub->key_generation = generation;
    chan_sender_set_key(pub->sender, key, key_len);
    VLOG_DBG("sending upstream with key generation %"PRIu32, generation);
}

void
publisher_set_mtu(struct publisher *pub, unsigned int mtu, long long now)
{
    unsigned int old = chan_sender_mtu(pub->sender);
    if (mtu == old || chan_sender_set_mtu(pub->sender, mtu)) {
        return;
    }
    VLOG_INFO("sending upstream frames of up to MTU %u (was %u)", mtu, old);
    if (chan_sender_max_queued_chunk(pub->sender)
        > chan_wire_max_payload(mtu)) {
        /* Queued frames the host could not receive: start over. */
        lose_session(pub, "queued frames do not fit the new MTU", now);
    }
}

/* Reads member 'name' of 'obj' as a limit (a nonnegative integer; 0 if
 * absent).  Returns false if it is there but not one. */
static bool
get_limit(const json_t *obj, const char *name, uint64_t *valuep)
{
    const json_t *v = json_object_get(obj, name);

    if (!v) {
        *valuep = 0;
        return true;
    } else if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return false;
    }
    *valuep = json_integer_value(v);
    return true;
}

/* Takes the limits in "limits" of ACK payload 'obj' (borrowed), if any.
 * Returns true if there were some (valid or not). */
static bool
take_limits(struct publisher *pub, const json_t *obj)
{
    const json_t *l = json_object_get(obj, "limits");
    struct ds_pub_limits limits;

    if (!l) {
        return false;
    }
    if (!json_is_object(l)
        || !get_limit(l, "max_records", &limits.max_records)
        || !get_limit(l, "max_value_bytes", &limits.max_value_bytes)
        || !get_limit(l, "max_total_bytes", &limits.max_total_bytes)
        || !get_limit(l, "max_publish_rate", &limits.max_publish_rate)) {
        pub->stats.bad_limits++;
        VLOG_WARN_RL(&rl, "host sent limits that are not valid; keeping "
                     "the ones in force");
        return true;
    }
    if (!pub->limits_known || memcmp(&limits, &pub->limits, sizeof limits)) {
        VLOG_INFO("host limits what this VM publishes to %"PRIu64" records, "
                  "%"PRIu64" bytes a value, %"PRIu64" bytes in all, %"PRIu64
                  " publications a second (0: no limit)", limits.max_records,
                  limits.max_value_bytes, limits.max_total_bytes,
                  limits.max_publish_rate);
        pub->limits = limits;
        pub->limits_known = true;
        pub->stats.limits_updates++;
        datastore_set_publish_limits(pub->ds, &limits);
    }
    return true;
}

void
publisher_ack(struct publisher *pub, const struct chan_wire_header *h,
              const json_t *obj, long long now)
{
    uint64_t acked;
    bool answer;

    pub->stats.rx_ack++;
    answer = obj && take_limits(pub, obj);
    if (h->type != CHAN_WIRE_ACK || !(h->flags & CHAN_WIRE_F_ACK_VALID)
        || pub->need_session) {
        pub->stats.acks_ignored++;
        return;
    }

    if (pub->state == PUBLISHER_SYNCING) {
        if (h->epoch != pub->up_epoch) {
            pub->stats.acks_ignored++;
            return;
        }
        pub->state = PUBLISHER_ESTABLISHED;
        VLOG_INFO("upstream session %"PRIu32" established: snapshot of "
                  "seqs 1..%"PRIu64, pub->up_epoch, pub->snapshot_end);
        check_snapshot_acked(pub);
        return;
    }

    if (h->epoch != pub->up_epoch) {
        char why[64];

        snprintf(why, sizeof why, "its ACK shows epoch %"PRIu32, h->epoch);
        lose_session(pub, why, now);
        return;
    }
    acked = chan_sender_acked_seq(pub->sender);
    if (h->ack < acked) {
        if (chan_sender_can_rewind(pub->sender, h->ack)) {
            VLOG_INFO("host acknowledges upstream seq %"PRIu64" after %"
                      PRIu64"; sending again from there", h->ack, acked);
            chan_sender_rewind(pub->sender, h->ack, now);
            pub->stats.rewinds++;
        } else {
            char why[96];

            snprintf(why, sizeof why, "it acknowledges seq %"PRIu64" after "
                     "%"PRIu64, h->ack, acked);
            lose_session(pub, why, now);
        }
        return;
    } else if (answer && h->ack == acked) {
        /* The answer to our SYNC or HELLO: not a sign of a gap. */
        return;
    }
    if (chan_sender_ack(pub->sender, h->ack, now) == ERANGE) {
        pub->stats.bad_acks++;
        VLOG_WARN_RL(&rl, "host acknowledges upstream seq %"PRIu64" but "
                     "only %"PRIu64" were sent", h->ack,
                     chan_sender_last_seq(pub->sender));
        return;
    }
    check_snapshot_acked(pub);
}

void
publisher_run(struct publisher *pub, long long now)
{
    if (pub->need_session && now >= pub->retry_at
        && !datastore_in_transaction(pub->ds)) {
        start_session(pub, now);
    }
    write_acks(pub, now);
    if (pub->need_session) {
        return;
    }
    if (pub->state == PUBLISHER_SYNCING) {
        if (now >= pub->next_sync) {
            send_sync(pub, now);
        }
        return;
    }
    if (now >= pub->write_at) {
        queue_changes(pub, now);
    }
    chan_sender_run(pub->sender, now, emit, pub);
    if (pub->cfg.refresh_ms && now >= pub->next_sync) {
        /* A repeat of the session's SYNC: the host answers with its
         * position and the VM's limits (and, if it lost the session,
         * with another epoch). */
        send_sync(pub, now);
        pub->next_sync = now + pub->cfg.refresh_ms;
    }
}

static long long
min_ll(long long a, long long b)
{
    return a < b ? a : b;
}

long long
publisher_next_wakeup(const struct publisher *pub, long long now)
{
    long long next = LLONG_MAX;

    if (pub->n_marks || pub->purge) {
        next = min_ll(next, pub->write_at);
    }
    if (pub->need_session) {
        return min_ll(next, pub->retry_at);
    }
    if (pub->state == PUBLISHER_SYNCING) {
        return min_ll(next, pub->next_sync);
    }
    if (pub->cfg.refresh_ms) {
        next = min_ll(next, pub->next_sync);
    }
    if (has_room(pub)
        && datastore_published_counter(pub->ds) != pub->scanned) {
        next = min_ll(next, pub->write_at > now ? pub->write_at : now);
    }
    return min_ll(next, chan_sender_next_deadline(pub->sender, now));
}

uint32_t
publisher_up_epoch(const struct publisher *pub)
{
    return pub->synced_once ? pub->up_epoch : 0;
}

enum publisher_state
publisher_get_state(const struct publisher *pub)
{
    return pub->state;
}

bool
publisher_is_idle(const struct publisher *pub)
{
    return (pub->state == PUBLISHER_ESTABLISHED && !pub->need_session
            && chan_sender_is_idle(pub->sender) && !pub->n_marks
            && !pub->purge
            && datastore_published_counter(pub->ds) == pub->scanned);
}

void
publisher_get_stats(const struct publisher *pub,
                    struct publisher_stats *stats)
{
    *stats = pub->stats;
}

json_t *
publisher_status_json(const struct publisher *pub, long long now)
{
    const struct publisher_stats *s = &pub->stats;
    struct chan_sender_stats ss;
    uint64_t pending;
    json_t *counters = json_object();

    (void) now;
#define COUNTER(NAME) \
    json_object_set_new(counters, #NAME, json_integer((json_int_t) s->NAME))
    COUNTER(sessions);
    COUNTER(sessions_lost);
    COUNTER(tx_sync);
    COUNTER(tx_errors);
    COUNTER(rx_ack);
    COUNTER(acks_ignored);
    COUNTER(bad_acks);
    COUNTER(rewinds);
    COUNTER(msgs_queued);
    COUNTER(records_queued);
    COUNTER(snapshot_records);
    COUNTER(msgs_acked);
    COUNTER(records_acked);
    COUNTER(snapshots_acked);
    COUNTER(tombstones_removed);
    COUNTER(ds_errors);
    COUNTER(bad_records);
    COUNTER(limits_updates);
    COUNTER(bad_limits);
#undef COUNTER

    chan_sender_get_stats(pub->sender, &ss);
    json_t *sender = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "frames_sent", (json_int_t) ss.frames_sent,
        "frames_resent", (json_int_t) ss.frames_resent,
        "frames_acked", (json_int_t) ss.frames_acked,
        "msgs_queued", (json_int_t) ss.msgs_queued,
        "msgs_acked", (json_int_t) ss.msgs_acked,
        "timeouts", (json_int_t) ss.timeouts,
        "fast_retransmits", (json_int_t) ss.fast_retransmits,
        "bad_acks", (json_int_t) ss.bad_acks,
        "mtu", (json_int_t) chan_sender_mtu(pub->sender),
        "max_frame", (json_int_t) ss.max_frame);

    json_t *limits = json_null();
    if (pub->limits_known) {
        limits = json_pack("{s:I, s:I, s:I, s:I}",
                           "max_records",
                           (json_int_t) pub->limits.max_records,
                           "max_value_bytes",
                           (json_int_t) pub->limits.max_value_bytes,
                           "max_total_bytes",
                           (json_int_t) pub->limits.max_total_bytes,
                           "max_publish_rate",
                           (json_int_t) pub->limits.max_publish_rate);
    }

    return json_pack(
        "{s:s, s:I, s:I, s:I, s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:o,"
        " s:o, s:o, s:o}",
        "state", (pub->need_session ? "starting"
                  : publisher_state_to_string(pub->state)),
        "up_epoch", (json_int_t) publisher_up_epoch(pub),
        "snapshot_end", (json_int_t) pub->snapshot_end,
        "snapshot_version", (json_int_t) pub->snapshot_version,
        "snapshot_acked", pub->snapshot_acked,
        "pending", (!datastore_count_pending(pub->ds, &pending)
                    ? json_integer((json_int_t) pending) : json_null()),
        "queued_msgs", (json_int_t) chan_sender_queued_msgs(pub->sender),
        "in_flight", (json_int_t) chan_sender_in_flight(pub->sender),
        "last_seq", (json_int_t) chan_sender_last_seq(pub->sender),
        "acked_seq", (json_int_t) chan_sender_acked_seq(pub->sender),
        "cwnd", (json_int_t) chan_sender_cwnd(pub->sender),
        "key_generation", (pub->key_generation
                           ? json_integer(pub->key_generation)
                           : json_null()),
        "sender", sender,
        "limits", limits,
        "counters", counters);
}
