/* Copyright (c) 2026 The chand authors.  See upstream.h. */

#include <config.h>
#include "upstream.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A message received whole and not yet in a batch. */
struct up_msg {
    struct chan_batch records;  /* Empty for a skipped message. */
    uint64_t last_seq;
    bool in_snapshot;           /* Sent during the snapshot. */
    bool ends_snapshot;         /* Its last seq reaches the snapshot end. */
};

struct upstream {
    char *vm;
    upstream_ack_func *ack;
    void *aux;

    uint32_t epoch;             /* Current upstream epoch, 0: none. */
    uint64_t session;           /* Bumped at each new session: a guest may
                                 * come back to an epoch it used before. */
    uint64_t committed;         /* Position the Chan DB holds (or, during
                                 * the snapshot, has the rows of). */
    uint64_t next_seq;          /* Next DATA seq expected. */
    bool in_snapshot;           /* The snapshot has not committed yet. */
    bool snapshot_received;     /* Its last message is received. */
    uint64_t snapshot_end;
    json_t *seen;               /* Keys the snapshot carried: key -> true. */
    struct chan_reasm *reasm;

    struct up_msg *msgs;        /* Received, not yet in a batch. */
    size_t n_msgs, allocated_msgs;

    json_t *rows;               /* Committed: key -> [version, value]. */

    struct upstream_batch batch;
    bool writing;               /* 'batch' is in flight. */
    bool discard_batch;         /* Its rows are deleted after it commits
                                 * (upstream_drop()): do not note them. */
    uint64_t batch_session;     /* 'session' the batch belongs to. */
    bool batch_ends_snapshot;

    long long last_limited_ack;
    uint64_t acked;             /* Last position acknowledged: acks do not
                                 * go back within a session unless a batch
                                 * fails (the frames are then gone). */
    struct upstream_limits limits;
    uint64_t total_bytes;       /* Keys and values in 'rows'. */
    struct upstream_stats stats;
};

static uint64_t ack_position(const struct upstream *);

static void
send_ack(struct upstream *up, uint64_t position)
{
    up->stats.tx_ack++;
    up->acked = position;
    up->ack(up->epoch, position, NULL, up->aux);
}

/* An ACK that also tells the guest its limits. */
static void
send_ack_limits(struct upstream *up, uint64_t position)
{
    json_t *obj = json_pack("{so}", "limits",
                            upstream_limits_to_json(&up->limits));
    up->stats.tx_ack++;
    up->acked = position;
    up->ack(up->epoch, position, obj, up->aux);
    json_decref(obj);
}

json_t *
upstream_limits_to_json(const struct upstream_limits *l)
{
    return json_pack("{sI sI sI sI}",
                     "max_records", (json_int_t) l->max_records,
                     "max_value_bytes", (json_int_t) l->max_value_bytes,
                     "max_total_bytes", (json_int_t) l->max_total_bytes,
                     "max_publish_rate", (json_int_t) l->max_publish_rate);
}

static uint64_t
row_bytes(const char *key, const json_t *row)
{
    const char *value = json_string_value(json_array_get(row, 1));
    return strlen(key) + (value ? strlen(value) : 0);
}

void
upstream_set_limits(struct upstream *up, const struct upstream_limits *l)
{
    bool changed = memcmp(&up->limits, l, sizeof *l);
    up->limits = *l;
    if (changed && up->epoch && !up->in_snapshot) {
        send_ack_limits(up, ack_position(up));  /* Tell the guest now. */
    }
}

/* The position to acknowledge: the committed one, or, while the chunks of
 * a message after it are being reassembled and nothing else is waiting,
 * the last chunk absorbed (so that a message longer than the guest's
 * window gets through, as downstream). */
static uint64_t
ack_position(const struct upstream *up)
{
    uint64_t pos = up->committed;
    if (!up->n_msgs && !up->writing && chan_reasm_in_progress(up->reasm)) {
        pos = up->next_seq - 1;
    }
    /* Chunks acknowledged earlier are still held (in the reassembled
     * messages waiting for a batch, or in the batch in flight). */
    return pos > up->acked ? pos : up->acked;
}

static void
limited_ack(struct upstream *up, long long now)
{
    if (now - up->last_limited_ack >= UPSTREAM_ACK_MIN_MS) {
        up->last_limited_ack = now;
        send_ack(up, ack_position(up));
    }
}

struct upstream *
upstream_create(const char *vm, uint32_t epoch, uint64_t position,
                const json_t *rows, upstream_ack_func *ack, void *aux)
{
    struct upstream *up = xzalloc(sizeof *up);
    up->vm = xstrdup(vm);
    up->ack = ack;
    up->aux = aux;
    up->epoch = epoch;
    up->committed = epoch ? position : 0;
    up->next_seq = up->committed + 1;
    up->seen = json_object();
    up->reasm = chan_reasm_create(0);
    up->rows = rows ? json_deep_copy(rows) : json_object();
    up->last_limited_ack = LLONG_MIN / 2;
    up->limits = (struct upstream_limits) UPSTREAM_LIMITS_DEFAULT;
    const char *key;
    json_t *row;
    json_object_foreach (up->rows, key, row) {
        up->total_bytes += row_bytes(key, row);
    }
    if (!up->seen || !up->reasm || !up->rows) {
        out_of_memory();
    }
    return up;
}

static void
clear_msgs(struct upstream *up)
{
    for (size_t i = 0; i < up->n_msgs; i++) {
        chan_batch_destroy(&up->msgs[i].records);
    }
    up->n_msgs = 0;
}

static void
clear_batch(struct upstream_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->changes[i].key);
        free(b->changes[i].value);
    }
    b->n = 0;
}

void
upstream_destroy(struct upstream *up)
{
    if (up) {
        clear_msgs(up);
        free(up->msgs);
        clear_batch(&up->batch);
        free(up->batch.changes);
        chan_reasm_destroy(up->reasm);
        json_decref(up->seen);
        json_decref(up->rows);
        free(up->vm);
        free(up);
    }
}

/* Appends a received message; takes the records of 'records'. */
static void
add_msg(struct upstream *up, struct chan_batch *records, uint64_t last_seq)
{
    if (up->n_msgs >= up->allocated_msgs) {
        size_t n = up->allocated_msgs ? 2 * up->allocated_msgs : 8;
        up->msgs = xrealloc(up->msgs, n * sizeof *up->msgs);
        up->allocated_msgs = n;
    }
    struct up_msg *m = &up->msgs[up->n_msgs++];
    m->records = *records;
    chan_batch_init(records);
    m->last_seq = last_seq;
    m->in_snapshot = up->in_snapshot && !up->snapshot_received;
    m->ends_snapshot = m->in_snapshot && last_seq >= up->snapshot_end;
    up->snapshot_received |= m->ends_snapshot;
}

void
upstream_receive_sync(struct upstream *up, const struct chan_wire_header *h,
                      const json_t *obj, long long now)
{
    const json_t *end = json_object_get(obj, "snapshot_end");
    if (!json_is_integer(end) || json_integer_value(end) < 0) {
        up->stats.drop_payload++;
        return;
    }
    up->stats.rx_sync++;
    if (h->epoch == up->epoch) {
        send_ack_limits(up, ack_position(up));      /* A repeat. */
        return;
    } else if (json_is_true(json_object_get(obj, "refresh"))) {
        /* A repeat of a session we do not have: say which one we have,
         * so that the guest starts a new one. */
        if (now - up->last_limited_ack >= UPSTREAM_ACK_MIN_MS) {
            up->last_limited_ack = now;
            send_ack_limits(up, ack_position(up));
        }
        return;
    }

    /* A new session: whatever was received of the old one and is not
     * committed is forgotten (a batch in flight still commits its rows;
     * the snapshot's end makes the table right). */
    up->stats.sessions++;
    up->session++;
    up->epoch = h->epoch;
    up->committed = 0;
    up->acked = 0;
    up->next_seq = 1;
    up->in_snapshot = true;
    up->snapshot_received = false;
    up->snapshot_end = json_integer_value(end);
    json_object_clear(up->seen);
    chan_reasm_reset(up->reasm);
    clear_msgs(up);
    if (!up->snapshot_end) {
        /* Nothing published: the snapshot ends now, with a batch that
         * deletes every row; acknowledged once it commits. */
        struct chan_batch empty;
        chan_batch_init(&empty);
        add_msg(up, &empty, 0);
    } else {
        send_ack_limits(up, 0);
    }
}

/* Absorbs DATA frame 'h' with payload 'body', whose seq is the next one. */
static void
absorb(struct upstream *up, const struct chan_wire_header *h,
       const uint8_t *body)
{
    struct chan_msg msg;
    bool complete = false;
    enum chan_wire_error error = chan_reasm_feed(up->reasm, h, body, &msg,
                                                 &complete);
    up->next_seq = h->seq + 1;
    if (error) {
        /* A chunk sequence no correct guest sends: skip the frame, so the
         * stream does not wedge on it. */
        struct chan_batch none;
        chan_batch_init(&none);
        up->stats.msgs_bad++;
        add_msg(up, &none, h->seq);
        return;
    }
    if (!complete) {
        return;
    }
    struct chan_batch records;
    chan_batch_init(&records);
    up->stats.msgs++;
    if (chan_batch_decode(msg.data, msg.len, NULL, &records)) {
        up->stats.msgs_bad++;
    } else {
        up->stats.records += records.n;
    }
    add_msg(up, &records, msg.last_seq);
}

void
upstream_receive_data(struct upstream *up, const struct chan_wire_header *h,
                      const uint8_t *body, long long now)
{
    if (!up->epoch || h->epoch != up->epoch) {
        up->stats.drop_epoch++;
        limited_ack(up, now);
        return;
    }
    up->stats.rx_data++;
    if (h->seq < up->next_seq) {
        up->stats.rx_duplicate++;
        send_ack(up, ack_position(up));
    } else if (h->seq > up->next_seq) {
        up->stats.drop_gap++;
        limited_ack(up, now);
    } else {
        bool partial = chan_reasm_in_progress(up->reasm);
        absorb(up, h, body);
        if (chan_reasm_in_progress(up->reasm)
            && (!partial || (h->seq & 15) == 0)
            && ack_position(up) > up->acked) {
            /* Chunks of a message longer than the guest's window must be
             * acknowledged before the message is whole; an ACK that does
             * not move on would look like a gap to the guest. */
            send_ack(up, ack_position(up));
        }
    }
}

void
upstream_receive_hello(struct upstream *up, long long now)
{
    if (now - up->last_limited_ack >= UPSTREAM_ACK_MIN_MS) {
        up->last_limited_ack = now;
        send_ack_limits(up, ack_position(up));
    }
}

/* Finds key 'key' among the first 'n' changes of 'b' (linear: batches are
 * indexed through 'index'). */
static struct upstream_change *
find_change(struct upstream_batch *b, json_t *index, const char *key)
{
    json_t *i = json_object_get(index, key);
    return i ? &b->changes[json_integer_value(i)] : NULL;
}

static struct upstream_change *
add_change(struct upstream_batch *b, json_t *index, const char *key)
{
    if (b->n >= b->allocated) {
        size_t n = b->allocated ? 2 * b->allocated : 16;
        b->changes = xrealloc(b->changes, n * sizeof *b->changes);
        b->allocated = n;
    }
    struct upstream_change *c = &b->changes[b->n];
    memset(c, 0, sizeof *c);
    c->key = xstrdup(key);
    json_object_set_new(index, key, json_integer(b->n++));
    return c;
}

/* Records one record's effect on the batch: the last operation on a key
 * wins. */
static void
collapse(struct upstream *up, json_t *index, const struct chan_record *r)
{
    struct upstream_change *c = find_change(&up->batch, index, r->key);
    if (!c) {
        c = add_change(&up->batch, index, r->key);
    }
    free(c->value);
    c->value = NULL;
    c->version = r->version;
    if (r->op == CHAN_OP_PUT) {
        c->value = json_dumps(r->value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!c->value) {
            out_of_memory();
        }
    }
}

/* Returns true if the put 'c' is within the limits, given 'n_rows' rows
 * and 'total' bytes held once the batch's earlier changes apply (both
 * updated); counts a refusal otherwise. */
static bool
within_limits(struct upstream *up, const struct upstream_change *c,
              const json_t *row, uint64_t *n_rows, uint64_t *total)
{
    const struct upstream_limits *l = &up->limits;
    uint64_t old = row ? row_bytes(c->key, row) : 0;
    uint64_t new = strlen(c->key) + strlen(c->value);

    if (l->max_value_bytes && strlen(c->value) > l->max_value_bytes) {
        up->stats.refused_value_size++;
    } else if (!row && l->max_records && *n_rows >= l->max_records) {
        up->stats.refused_records++;
    } else if (l->max_total_bytes && *total - old + new > l->max_total_bytes) {
        up->stats.refused_total_bytes++;
    } else {
        *n_rows += !row;
        *total = *total - old + new;
        return true;
    }
    return false;
}

/* Drops the changes that would leave a row as it is, and those over the
 * limits, and sets 'insert'. */
static void
prune_changes(struct upstream *up)
{
    struct upstream_batch *b = &up->batch;
    uint64_t n_rows = json_object_size(up->rows);
    uint64_t total = up->total_bytes;
    size_t k = 0;

    /* Deletes first: they make room. */
    for (size_t i = 0; i < b->n; i++) {
        const struct upstream_change *c = &b->changes[i];
        const json_t *row = json_object_get(up->rows, c->key);
        if (!c->value && row) {
            n_rows--;
            total -= row_bytes(c->key, row);
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        struct upstream_change *c = &b->changes[i];
        const json_t *row = json_object_get(up->rows, c->key);
        bool keep;
        if (!c->value) {
            keep = row != NULL;
        } else {
            const char *text = json_string_value(json_array_get(row, 1));
            keep = (!row || json_integer_value(json_array_get(row, 0))
                            != c->version
                    || !text || strcmp(text, c->value))
                   && within_limits(up, c, row, &n_rows, &total);
            c->insert = !row;
        }
        if (keep) {
            b->changes[k++] = *c;
        } else {
            free(c->key);
            free(c->value);
        }
    }
    b->n = k;
}

const struct upstream_batch *
upstream_next_batch(struct upstream *up, long long now)
{
    if (up->writing || !up->n_msgs) {
        return NULL;
    }
    struct upstream_batch *b = &up->batch;
    json_t *index = json_object();
    bool ends_snapshot = false;

    clear_batch(b);
    for (size_t i = 0; i < up->n_msgs; i++) {
        const struct up_msg *m = &up->msgs[i];
        for (size_t j = 0; j < m->records.n; j++) {
            const struct chan_record *r = &m->records.records[j];
            if (!strncmp(r->key, UPSTREAM_RESERVED_PREFIX,
                         strlen(UPSTREAM_RESERVED_PREFIX))) {
                up->stats.refused_reserved++;
                continue;
            }
            if (m->in_snapshot && r->op == CHAN_OP_PUT) {
                json_object_set_new(up->seen, r->key, json_true());
            }
            collapse(up, index, r);
        }
        ends_snapshot |= m->ends_snapshot;
        b->position = m->last_seq;
    }
    if (ends_snapshot) {
        /* Rows the snapshot did not carry go, unless this batch puts them
         * back after the snapshot's end. */
        const char *key;
        json_t *row;
        json_object_foreach (up->rows, key, row) {
            if (!json_object_get(up->seen, key)) {
                struct upstream_change *c = find_change(b, index, key);
                if (!c) {
                    c = add_change(b, index, key);
                    c->version = json_integer_value(json_array_get(row, 0));
                } else if (c->value) {
                    continue;
                }
            }
        }
    }
    json_decref(index);
    prune_changes(up);
    b->id++;
    b->epoch = up->epoch;
    up->batch_session = up->session;
    b->set_position = !up->in_snapshot || ends_snapshot;
    up->batch_ends_snapshot = ends_snapshot;
    up->writing = true;
    clear_msgs(up);
    (void) now;
    return b;
}

/* Applies the committed batch to 'rows'. */
static void
apply_batch(struct upstream *up)
{
    const struct upstream_batch *b = &up->batch;
    for (size_t i = 0; i < b->n; i++) {
        const struct upstream_change *c = &b->changes[i];
        const json_t *row = json_object_get(up->rows, c->key);
        if (row) {
            up->total_bytes -= row_bytes(c->key, row);
        }
        if (c->value) {
            json_t *new = json_pack("[Is]", (json_int_t) c->version,
                                    c->value);
            up->total_bytes += row_bytes(c->key, new);
            json_object_set_new(up->rows, c->key, new);
        } else {
            json_object_del(up->rows, c->key);
        }
    }
    up->stats.rows_written += b->n;
}

void
upstream_batch_done(struct upstream *up, bool ok, long long now)
{
    if (!up->writing) {
        return;
    }
    up->writing = false;
    bool current = up->batch_session == up->session;
    if (ok) {
        up->stats.batches++;
        if (!up->discard_batch) {
            apply_batch(up);
        }
        if (current) {
            up->committed = up->batch.position;
            if (up->batch_ends_snapshot) {
                up->in_snapshot = false;
                json_object_clear(up->seen);
                up->stats.snapshots++;
            }
            if (up->next_seq <= up->committed) {
                up->next_seq = up->committed + 1;
            }
        }
    } else {
        up->stats.batch_errors++;
        if (current) {
            /* Go back to the committed position: the guest sends again
             * from there (the ACK below repeats it, which also makes the
             * guest go back at once). */
            up->next_seq = up->committed + 1;
            up->acked = up->committed;
            up->snapshot_received = false;
            chan_reasm_reset(up->reasm);
            clear_msgs(up);
        }
    }
    up->discard_batch = false;
    clear_batch(&up->batch);
    if (current && up->epoch) {
        send_ack(up, ack_position(up));
    }
    (void) now;
}

void
upstream_drop(struct upstream *up)
{
    up->stats.drops++;
    up->session++;
    up->epoch = 0;
    up->committed = 0;
    up->next_seq = 1;
    up->in_snapshot = false;
    up->snapshot_received = false;
    up->snapshot_end = 0;
    up->discard_batch = up->writing;
    json_object_clear(up->seen);
    json_object_clear(up->rows);
    up->total_bytes = 0;
    chan_reasm_reset(up->reasm);
    clear_msgs(up);
    send_ack_limits(up, 0);
}

bool
upstream_is_writing(const struct upstream *up)
{
    return up->writing;
}

uint32_t
upstream_epoch(const struct upstream *up)
{
    return up->epoch;
}

uint64_t
upstream_position(const struct upstream *up)
{
    return up->committed;
}

const json_t *
upstream_rows(const struct upstream *up)
{
    return up->rows;
}

void
upstream_get_stats(const struct upstream *up, struct upstream_stats *stats)
{
    *stats = up->stats;
}

#define UPSTREAM_COUNTERS                       \
    C(rx_sync)                                  \
    C(rx_data)                                  \
    C(rx_duplicate)                             \
    C(drop_gap)                                 \
    C(drop_epoch)                               \
    C(drop_payload)                             \
    C(msgs)                                     \
    C(msgs_bad)                                 \
    C(records)                                  \
    C(refused_reserved)                         \
    C(refused_value_size)                       \
    C(refused_records)                          \
    C(refused_total_bytes)                      \
    C(sessions)                                 \
    C(drops)                                    \
    C(snapshots)                                \
    C(batches)                                  \
    C(batch_errors)                             \
    C(rows_written)                             \
    C(tx_ack)

void
upstream_add_counters(const struct upstream *up, json_t *counters)
{
#define C(NAME)                                                     \
    if (up->stats.NAME) {                                           \
        json_object_set_new(counters, "up_" #NAME,                  \
                            json_integer(up->stats.NAME));          \
    }
    UPSTREAM_COUNTERS
#undef C
}

json_t *
upstream_status_json(const struct upstream *up)
{
    json_t *counters = json_object();
    upstream_add_counters(up, counters);
    return json_pack("{sI sI sI sb sI sI sb so}",
                     "epoch", (json_int_t) up->epoch,
                     "position", (json_int_t) up->committed,
                     "next_seq", (json_int_t) up->next_seq,
                     "snapshot", up->in_snapshot,
                     "snapshot_end", (json_int_t) up->snapshot_end,
                     "records", (json_int_t) json_object_size(up->rows),
                     "writing", up->writing,
                     "counters", counters);
}
