/*
 * fuzz-upstream: chand-host's end of a channel's upstream stream
 * (chand-host/upstream.c; doc/SESSION.md, "Upstream"): the state machine
 * that takes a guest's SYNC and DATA frames, turns the records they carry
 * into batches of changes to the VM's Guest_Record rows and acknowledges
 * what the Chan DB has committed.  A guest controls everything it is fed,
 * so this is code a malicious VM talks to directly (through
 * chand-host/channel.c, which only authenticates the frames and decodes
 * SYNC's payload object).
 *
 * Each input is a script run against one fresh upstream.  The harness plays
 * the channel (it passes only what channel.c would: headers that pass
 * chan_wire_check_header(), SYNC payloads that are JSON objects) and the
 * Chan DB (it takes each batch when the script says so, and reports it
 * committed or failed when the script says so, so that frames can arrive
 * while a batch is in flight).  It keeps its own copy of what the Chan DB
 * holds, written only from the batches it committed.  Time only moves when
 * the script says so.
 *
 * Input layout:
 *
 *     byte 0    set-up: bits 0-2 the prior upstream epoch (0 none, 1-4
 *               the epochs A, B, C, MAX below, 5-6 4 more bytes, 7 A);
 *               bit 3 the prior position is 8 bytes (else 1); bits 4-6
 *               the number of prior rows, 2 bytes each (a record spec as
 *               below; reserved keys are left out: chand-host never
 *               writes one, so the Chan DB holds none)
 *     then      steps, each an opcode byte (low 3 bits: what, FUZZ_UP_* in
 *               fuzz.h; high bits: options) and its operands:
 *       0  SYNC: an epoch byte, a snapshot-end byte (bits 6-7: 0 the end is
 *          bits 0-5; 1 the same with extra members; 2 an 8-byte end from
 *          the input; 3 a bad payload object, bits 0-2 say which); bit 7
 *          ACK_VALID
 *       1  DATA: an epoch byte, a seq byte (0x00-0x3f: the next seq the
 *          upstream expects; 0x40-0x7f: near it; 0x80-0xbf: at or below
 *          the position; 0xc0-0xff: 8 bytes from the input), a chunk byte
 *          (bits 0-2: chunk count - 1; bits 3-5: chunk index, modulo the
 *          count), then, unless bit 4 (reuse the previous message), the
 *          message: with bit 3 raw bytes (16-bit length and bytes), else a
 *          record batch built with chan_batch_*() and chan_batch_encode():
 *          a count byte (bits 0-3) and that many record specs.  The message
 *          is cut into 'count' even slices; the frame carries slice
 *          'index', and with bit 6 the following slices too, at
 *          consecutive seqs.  Bit 5 SNAPSHOT, bit 7 ACK_VALID.
 *       2  HELLO
 *       3  take the next batch (upstream_next_batch())
 *       4  report the batch in flight committed (bit 3) or failed
 *       5  3 then 4
 *       6  limits: 4 bytes: max_records (bits 0-3 of the first; bit 7: the
 *          default limits instead), max_value_bytes, max_total_bytes / 16,
 *          max_publish_rate (0 is "no limit")
 *       7  advance time by (bits 3-7 + 1) * 25 ms
 *
 *     An epoch byte's bits 0-2 pick the epoch: 0 and 7 the upstream's
 *     current one (A if it has none), 1-4 A, B, C, MAX, 5 the prior one
 *     (A if none), 6 4 more bytes (an epoch 0 frame is not passed on).
 *     A record spec is 2 bytes, D VVV KKKK and vvvv XXXX: delete if D,
 *     key KKKK of keys[] (including keys under "from/" and keys of 200 and
 *     256 bytes), value XXXX of values[] (a few bytes to 1500), version
 *     vvvvVVV.
 *
 * Invariants checked besides memory safety, after every step (or as it
 * happens):
 *
 *   - upstream_rows() equals the harness's Chan DB: the prior rows plus
 *     every batch committed OK, as taken (a batch the upstream changed
 *     while in flight would show);
 *   - every batch: no two changes for one key; no key under "from/"; a
 *     delete only of a row that exists, an insert only of one that does
 *     not, an update only of one that does and with a new version or
 *     value; values that are JSON; the upstream's epoch; increasing ids;
 *     a position the guest sent;
 *   - limits (as they were when the batch was taken; rows stored before
 *     stay, upstream.h): every value written is at most max_value_bytes; a
 *     batch that inserts leaves at most max_records rows, and one that
 *     does not never adds rows; a batch that puts leaves at most
 *     max_total_bytes of keys and values, and one that does not never
 *     grows them;
 *   - within an upstream session (a SYNC that starts one resets this),
 *     upstream_position() never decreases and is never beyond the highest
 *     seq fed in that session (or the prior position);
 *   - every ACK: epoch upstream_epoch() at that moment; position 0 with
 *     epoch 0, else at most the highest seq fed in the session; a payload,
 *     if any, of exactly {"limits": the current limits};
 *   - the Chan DB's up_epoch and up_position (what a chand-host restart
 *     resumes from), as written by the batches with set_position, equal
 *     the upstream's epoch and position whenever it is not in a snapshot;
 *   - the epoch changes only on SYNC; upstream_status_json() agrees with
 *     the getters; a batch is never handed out while one is in flight.
 *
 * With FUZZ_UPSTREAM_TRACE set in the environment, the target prints each
 * step, ACK and batch and the upstream's status (to read a reproducer).
 */
#include <config.h>
#include "fuzz.h"

#include <inttypes.h>
#include <limits.h>

#include "chan-wire.h"
#include "upstream.h"

#define MAX_STEPS 256
#define VID 4094
#define EPOCH_A 0x1234
#define EPOCH_B 0x5678
#define EPOCH_C 1
#define EPOCH_MAX 0xffffffffu

#define N_KEYS 16
#define N_VALUES 16

static char long_key[257];      /* CHAN_WIRE_MAX_KEY_LEN bytes. */
static char key_200[201];
static const char *keys[N_KEYS] = {
    "motd", "cfg/a", "cfg/b", "k", "from/vm2/motd", "from/", "from",
    "fromage", long_key, key_200, "x/from/y", "caf\xc3\xa9", "cfg/c",
    "a b", "FROM/x", "k2",
};

static bool trace;

static json_t *values[N_VALUES];
static char *value_texts[N_VALUES];   /* As upstream.c renders them. */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    trace = getenv("FUZZ_UPSTREAM_TRACE") != NULL;
    memset(long_key, 'L', sizeof long_key - 1);
    memcpy(key_200, "x/", 2);
    memset(key_200 + 2, 'y', sizeof key_200 - 3);

    static const char *const texts[N_VALUES - 3] = {
        "1", "2", "null", "true", "\"x\"", "\"\"", "{}", "[]", "{\"a\":1}",
        "[1,2,3]", "\"hello\"", "{\"n\":{\"m\":[null,-5]}}", "-5",
    };
    for (int i = 0; i < N_VALUES - 3; i++) {
        values[i] = json_loads(texts[i], JSON_DECODE_ANY, NULL);
    }
    static const size_t lens[3] = { 40, 300, 1500 };
    for (int i = 0; i < 3; i++) {
        char *s = fuzz_alloc(lens[i] + 1);
        memset(s, 'a' + i, lens[i]);
        values[N_VALUES - 3 + i] = json_string(s);
        free(s);
    }
    for (int i = 0; i < N_VALUES; i++) {
        FUZZ_CHECK(values[i]);
        value_texts[i] = json_dumps(values[i],
                                    JSON_COMPACT | JSON_ENCODE_ANY);
        FUZZ_CHECK(value_texts[i]);
    }
    return 0;
}

static bool
is_reserved(const char *key)
{
    return !strncmp(key, UPSTREAM_RESERVED_PREFIX,
                    strlen(UPSTREAM_RESERVED_PREFIX));
}

/* A change as the Chan DB got it (copied when the batch is taken). */
struct db_change {
    char *key;
    char *value;                /* NULL: delete. */
    int64_t version;
    bool insert;
};

/* The harness: the channel and the Chan DB around one upstream. */
static struct {
    struct upstream *up;
    struct upstream_limits limits;  /* As last set. */
    uint32_t prior_epoch;

    /* The Chan DB. */
    json_t *db_rows;            /* key -> [version, value]. */
    uint32_t db_epoch;          /* Channel.up_epoch, up_position. */
    uint64_t db_position;

    /* The batch in flight, as taken. */
    bool writing;
    struct db_change *changes;
    size_t n_changes;
    bool set_position;
    uint32_t batch_epoch;
    uint64_t batch_position;
    struct upstream_limits batch_limits;
    uint64_t last_batch_id;

    /* The current upstream session. */
    uint64_t sessions;          /* stats.sessions when last looked. */
    uint64_t max_fed;           /* Highest DATA seq fed in the session. */
    uint64_t position;          /* Highest upstream_position() seen. */

    uint8_t *msg;               /* The last DATA message. */
    size_t msg_len;
    size_t n_acks;
} h;

static uint64_t
fuzz_be64(struct fuzz_input *in)
{
    uint64_t hi = fuzz_be32(in);
    return (hi << 32) | fuzz_be32(in);
}

/* Notices a new upstream session (a SYNC with a new epoch). */
static void
note_session(void)
{
    struct upstream_stats st;
    upstream_get_stats(h.up, &st);
    if (st.sessions != h.sessions) {
        FUZZ_CHECK(st.sessions == h.sessions + 1);
        h.sessions = st.sessions;
        h.max_fed = 0;
        h.position = 0;
    }
}

/* upstream_ack_func: checks every ACK the upstream sends the guest. */
static void
on_ack(uint32_t epoch, uint64_t position, const json_t *obj, void *aux)
{
    FUZZ_CHECK(aux == &h);
    FUZZ_CHECK(h.up);
    if (trace) {
        fprintf(stderr, "  ACK epoch %#"PRIx32" position %"PRIu64"%s\n",
                epoch, position, obj ? " with limits" : "");
    }
    note_session();
    FUZZ_CHECK(epoch == upstream_epoch(h.up));
    if (!epoch) {
        FUZZ_CHECK(position == 0);
    } else {
        FUZZ_CHECK(position <= h.max_fed);
    }
    if (obj) {
        json_t *limits = upstream_limits_to_json(&h.limits);
        FUZZ_CHECK(json_is_object(obj) && json_object_size(obj) == 1);
        FUZZ_CHECK(json_equal(json_object_get(obj, "limits"), limits));
        json_decref(limits);
    }
    h.n_acks++;
}

static uint64_t
status_u64(const char *name)
{
    json_t *st = upstream_status_json(h.up);
    json_t *v = json_object_get(st, name);
    FUZZ_CHECK(json_is_integer(v));
    uint64_t x = json_integer_value(v);
    json_decref(st);
    return x;
}

static uint32_t
pick_epoch(struct fuzz_input *in)
{
    uint8_t e = fuzz_u8(in);
    switch (e & 7) {
    case FUZZ_UP_EPOCH_A:
        return EPOCH_A;
    case FUZZ_UP_EPOCH_B:
        return EPOCH_B;
    case FUZZ_UP_EPOCH_C:
        return EPOCH_C;
    case FUZZ_UP_EPOCH_MAX:
        return EPOCH_MAX;
    case FUZZ_UP_EPOCH_PRIOR:
        return h.prior_epoch ? h.prior_epoch : EPOCH_A;
    case FUZZ_UP_EPOCH_INPUT:
        return fuzz_be32(in);
    default:
        return upstream_epoch(h.up) ? upstream_epoch(h.up) : EPOCH_A;
    }
}

/* Decodes a 2-byte record spec. */
static void
record_spec(struct fuzz_input *in, bool *delete, const char **key,
            int *value, int64_t *version)
{
    uint8_t b0 = fuzz_u8(in);
    uint8_t b1 = fuzz_u8(in);
    *delete = b0 & 0x80;
    *key = keys[b0 & 15];
    *value = b1 & 15;
    *version = ((b1 >> 4) << 3) | ((b0 >> 4) & 7);
}

/* Replaces the current message with one from the input. */
static void
read_message(struct fuzz_input *in, bool raw)
{
    free(h.msg);
    h.msg = NULL;
    h.msg_len = 0;
    if (raw) {
        const uint8_t *p;
        h.msg_len = fuzz_take(in, fuzz_be16(in), &p);
        h.msg = fuzz_dup(p, h.msg_len);
        return;
    }

    struct chan_batch batch;
    chan_batch_init(&batch);
    int n = fuzz_u8(in) & 15;
    for (int i = 0; i < n; i++) {
        bool delete;
        const char *key;
        int value;
        int64_t version;
        record_spec(in, &delete, &key, &value, &version);
        if (delete) {
            chan_batch_add_delete(&batch, key, version);
        } else {
            chan_batch_add_put(&batch, key, values[value], version);
        }
    }
    char *text;
    size_t len;
    FUZZ_CHECK(!chan_batch_encode(&batch, NULL, &text, &len));
    chan_batch_destroy(&batch);
    h.msg = fuzz_dup(text, len);
    h.msg_len = len;
    free(text);
}

/* Hands DATA frame 'hdr' with the 'len' bytes at 'p' to the upstream, as
 * channel.c would: only a header that could have been decoded. */
static void
feed_data(struct chan_wire_header *hdr, const uint8_t *p, size_t len,
          long long now)
{
    if (chan_wire_check_header(hdr) || len > CHAN_WIRE_MAX_PAYLOAD) {
        return;
    }
    hdr->payload_len = len;
    if (trace) {
        fprintf(stderr, "  DATA epoch %#"PRIx32" seq %"PRIu64" chunk %u/%u "
                "flags %#x, %zu bytes: %.*s\n", hdr->epoch, hdr->seq,
                hdr->chunk_index, hdr->chunk_count, hdr->flags, len,
                (int) (len > 200 ? 200 : len), (const char *) p);
    }
    if (hdr->epoch == upstream_epoch(h.up) && hdr->seq > h.max_fed) {
        h.max_fed = hdr->seq;
    }
    uint8_t *copy = fuzz_dup(p, len);
    upstream_receive_data(h.up, hdr, copy, now);
    free(copy);
}

static void
step_data(struct fuzz_input *in, uint8_t op, long long now)
{
    struct chan_wire_header hdr = {
        .type = CHAN_WIRE_DATA,
        .vid = VID,
    };
    hdr.epoch = pick_epoch(in);

    uint8_t s = fuzz_u8(in);
    uint64_t next = status_u64("next_seq");
    uint64_t pos = upstream_position(h.up);
    uint64_t seq;
    if (s < 0x40) {
        seq = next;
    } else if (s < 0x80) {
        uint64_t d = s & 0x3f;
        seq = d >= 32 ? next + (d - 32) : next > 32 - d ? next - (32 - d) : 1;
    } else if (s < 0xc0) {
        seq = pos > (s & 0x3f) ? pos - (s & 0x3f) : 1;
    } else {
        seq = fuzz_be64(in);
    }

    uint8_t c = fuzz_u8(in);
    unsigned int count = (c & 7) + 1;
    unsigned int index = ((c >> 3) & 7) % count;

    if (!(op & FUZZ_UP_DATA_REUSE) || !h.msg) {
        read_message(in, op & FUZZ_UP_DATA_RAW);
    }
    if (op & FUZZ_UP_DATA_SNAPSHOT) {
        hdr.flags |= CHAN_WIRE_F_SNAPSHOT;
    }
    if (op & FUZZ_UP_ACK_VALID) {
        hdr.flags |= CHAN_WIRE_F_ACK_VALID;
        hdr.ack = c >> 6;
    }
    hdr.chunk_count = count;

    unsigned int last = op & FUZZ_UP_DATA_ALL ? count - 1 : index;
    for (unsigned int i = index; i <= last; i++) {
        size_t start = h.msg_len * i / count;
        size_t end = h.msg_len * (i + 1) / count;
        hdr.chunk_index = i;
        hdr.seq = seq + (i - index);
        if (hdr.seq < seq) {
            break;
        }
        feed_data(&hdr, h.msg + start, end - start, now);
    }
}

static void
step_sync(struct fuzz_input *in, uint8_t op, long long now)
{
    struct chan_wire_header hdr = {
        .type = CHAN_WIRE_SYNC,
        .vid = VID,
        .chunk_count = 1,
        .flags = op & FUZZ_UP_ACK_VALID ? CHAN_WIRE_F_ACK_VALID : 0,
    };
    hdr.epoch = pick_epoch(in);

    uint8_t m = fuzz_u8(in);
    json_t *obj = json_object();
    json_t *end = NULL;
    switch (m >> 6) {
    case 0:
        end = json_integer(m & 0x3f);
        break;
    case 1:
        end = json_integer(m & 0x3f);
        json_object_set_new(obj, "guest_epoch", json_integer(1));
        json_object_set_new(obj, "keys", json_pack("[ii]", 1, 2));
        break;
    case 2:
        end = json_integer(fuzz_be64(in) & INT64_MAX);
        break;
    default:
        switch (m & 7) {
        case 1:
            end = json_string("3");
            break;
        case 2:
            end = json_integer(-1);
            break;
        case 3:
            end = json_real(2.0);
            break;
        case 4:
            end = json_true();
            break;
        case 5:
            end = json_null();
            break;
        case 6:
            end = json_integer(INT64_MIN);
            break;
        case 7:
            end = json_pack("[i]", 1);
            break;
        }
        break;
    }
    if (end) {
        json_object_set_new(obj, "snapshot_end", end);
    }
    if (!chan_wire_check_header(&hdr)) {
        if (trace) {
            char *text = json_dumps(obj, JSON_COMPACT);
            fprintf(stderr, "  SYNC epoch %#"PRIx32" %s\n", hdr.epoch, text);
            free(text);
        }
        upstream_receive_sync(h.up, &hdr, obj, now);
    }
    json_decref(obj);
}

static uint64_t
rows_bytes(const json_t *rows)
{
    const char *key;
    json_t *row;
    uint64_t total = 0;
    json_object_foreach ((json_t *) rows, key, row) {
        const char *value = json_string_value(json_array_get(row, 1));
        total += strlen(key) + (value ? strlen(value) : 0);
    }
    return total;
}

static void
free_changes(void)
{
    for (size_t i = 0; i < h.n_changes; i++) {
        free(h.changes[i].key);
        free(h.changes[i].value);
    }
    free(h.changes);
    h.changes = NULL;
    h.n_changes = 0;
}

/* Checks batch 'b' against the Chan DB and keeps a copy of it, as the Chan
 * DB's transaction does. */
static void
take_batch(const struct upstream_batch *b)
{
    FUZZ_CHECK(b->epoch == upstream_epoch(h.up));
    FUZZ_CHECK(b->id > h.last_batch_id);
    FUZZ_CHECK(b->n <= b->allocated);
    FUZZ_CHECK(!b->set_position || b->position <= h.max_fed);
    h.last_batch_id = b->id;
    if (trace) {
        fprintf(stderr, "  batch %"PRIu64": %zu changes, epoch %#"PRIx32
                ", position %"PRIu64"%s\n", b->id, b->n, b->epoch,
                b->position, b->set_position ? " (stored)" : "");
    }

    const struct upstream_limits *l = &h.limits;
    json_t *keys_seen = json_object();
    h.changes = fuzz_alloc(b->n * sizeof *h.changes);
    h.n_changes = b->n;
    for (size_t i = 0; i < b->n; i++) {
        const struct upstream_change *c = &b->changes[i];
        FUZZ_CHECK(c->key && c->key[0]);
        FUZZ_CHECK(strlen(c->key) <= CHAN_WIRE_MAX_KEY_LEN);
        FUZZ_CHECK(!is_reserved(c->key));
        FUZZ_CHECK(!json_object_get(keys_seen, c->key));
        json_object_set_new_nocheck(keys_seen, c->key, json_true());

        const json_t *row = json_object_get(h.db_rows, c->key);
        if (!c->value) {
            FUZZ_CHECK(row);
        } else {
            FUZZ_CHECK(c->insert == !row);
            FUZZ_CHECK(c->version >= 0);
            json_t *v = json_loads(c->value, JSON_DECODE_ANY, NULL);
            FUZZ_CHECK(v);
            json_decref(v);
            if (row) {
                /* A row is written only when its version or value
                 * changes. */
                FUZZ_CHECK(json_integer_value(json_array_get(row, 0))
                           != c->version
                           || strcmp(json_string_value(json_array_get(row,
                                                                      1)),
                                     c->value));
            }
            if (l->max_value_bytes) {
                FUZZ_CHECK(strlen(c->value) <= l->max_value_bytes);
            }
        }
        if (trace) {
            fprintf(stderr, "  change %s %.40s: %.40s v%"PRId64"\n",
                    !c->value ? "delete" : c->insert ? "insert" : "update",
                    c->key, c->value ? c->value : "", c->version);
        }
        h.changes[i] = (struct db_change) {
            .key = fuzz_strdup(c->key, strlen(c->key)),
            .value = c->value ? fuzz_strdup(c->value, strlen(c->value))
                              : NULL,
            .version = c->version,
            .insert = c->insert,
        };
    }
    json_decref(keys_seen);
    h.set_position = b->set_position;
    h.batch_epoch = b->epoch;
    h.batch_position = b->position;
    h.batch_limits = *l;
    h.writing = true;
}

/* The Chan DB commits the batch in flight. */
static void
commit_batch(void)
{
    const struct upstream_limits *l = &h.batch_limits;
    size_t n_before = json_object_size(h.db_rows);
    uint64_t bytes_before = rows_bytes(h.db_rows);
    bool inserts = false, puts = false;

    for (size_t i = 0; i < h.n_changes; i++) {
        const struct db_change *c = &h.changes[i];
        if (!c->value) {
            json_object_del(h.db_rows, c->key);
        } else {
            FUZZ_CHECK(c->insert == !json_object_get(h.db_rows, c->key));
            json_object_set_new_nocheck(h.db_rows, c->key,
                                        json_pack("[Is]",
                                                  (json_int_t) c->version,
                                                  c->value));
            inserts |= c->insert;
            puts = true;
        }
    }
    if (h.set_position) {
        h.db_epoch = h.batch_epoch;
        h.db_position = h.batch_position;
    }

    size_t n_after = json_object_size(h.db_rows);
    uint64_t bytes_after = rows_bytes(h.db_rows);
    if (l->max_records) {
        FUZZ_CHECK(inserts ? n_after <= l->max_records
                   : n_after <= n_before);
    }
    if (l->max_total_bytes) {
        FUZZ_CHECK(puts ? bytes_after <= l->max_total_bytes
                   : bytes_after <= bytes_before);
    }
}

static void
step_take(long long now)
{
    bool was_writing = upstream_is_writing(h.up);
    FUZZ_CHECK(was_writing == h.writing);
    const struct upstream_batch *b = upstream_next_batch(h.up, now);
    if (was_writing) {
        FUZZ_CHECK(!b);
    } else if (b) {
        take_batch(b);
    }
    FUZZ_CHECK(upstream_is_writing(h.up) == h.writing);
}

static void
step_done(bool ok, long long now)
{
    if (trace) {
        fprintf(stderr, "  batch %s\n", !h.writing ? "(none in flight)"
                : ok ? "committed" : "failed");
    }
    if (h.writing && ok) {
        commit_batch();
    }
    free_changes();
    h.writing = false;
    upstream_batch_done(h.up, ok, now);
    FUZZ_CHECK(!upstream_is_writing(h.up));
}

static void
step_limits(struct fuzz_input *in)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = fuzz_u8(in);
    }
    if (b[0] & 0x80) {
        h.limits = (struct upstream_limits) UPSTREAM_LIMITS_DEFAULT;
    } else {
        h.limits = (struct upstream_limits) {
            .max_records = b[0] & 15,
            .max_value_bytes = b[1],
            .max_total_bytes = b[2] * 16,
            .max_publish_rate = b[3],
        };
    }
    upstream_set_limits(h.up, &h.limits);
}

/* The invariants that hold between steps. */
static void
check_state(uint32_t epoch_before, bool sync)
{
    note_session();
    FUZZ_CHECK(json_equal((json_t *) upstream_rows(h.up), h.db_rows));

    uint32_t epoch = upstream_epoch(h.up);
    uint64_t pos = upstream_position(h.up);
    if (!sync) {
        FUZZ_CHECK(epoch == epoch_before);
    }
    FUZZ_CHECK(pos >= h.position);
    h.position = pos;
    if (!epoch) {
        FUZZ_CHECK(pos == 0);
    } else {
        FUZZ_CHECK(pos <= h.max_fed);
    }
    FUZZ_CHECK(upstream_is_writing(h.up) == h.writing);

    json_t *st = upstream_status_json(h.up);
    if (trace) {
        json_t *copy = json_deep_copy(st);
        json_object_del(copy, "counters");
        char *text = json_dumps(copy, JSON_COMPACT);
        fprintf(stderr, "  -> %s, Chan DB at %#"PRIx32"/%"PRIu64", "
                "%zu rows, max fed %"PRIu64"\n", text, h.db_epoch,
                h.db_position, json_object_size(h.db_rows), h.max_fed);
        free(text);
        json_decref(copy);
    }
    FUZZ_CHECK(json_integer_value(json_object_get(st, "epoch")) == epoch);
    FUZZ_CHECK(json_integer_value(json_object_get(st, "position")) == pos);
    FUZZ_CHECK(json_integer_value(json_object_get(st, "records"))
               == (json_int_t) json_object_size(h.db_rows));
    FUZZ_CHECK(json_is_boolean(json_object_get(st, "writing"))
               && json_is_true(json_object_get(st, "writing")) == h.writing);
    json_t *snapshot = json_object_get(st, "snapshot");
    FUZZ_CHECK(json_is_boolean(snapshot));
    if (json_is_false(snapshot)) {
        /* What a restarted chand-host would resume from. */
        FUZZ_CHECK(h.db_epoch == epoch && h.db_position == pos);
    }
    json_decref(st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    long long now = 0;

    memset(&h, 0, sizeof h);
    h.limits = (struct upstream_limits) UPSTREAM_LIMITS_DEFAULT;

    /* Set-up. */
    uint8_t setup = fuzz_u8(&in);
    static const uint32_t prior_epochs[] = {
        0, EPOCH_A, EPOCH_B, EPOCH_C, EPOCH_MAX, 0, 0, EPOCH_A,
    };
    uint32_t epoch = prior_epochs[setup & 7];
    if ((setup & 7) == 5 || (setup & 7) == 6) {
        epoch = fuzz_be32(&in);
    }
    uint64_t position = setup & 8 ? fuzz_be64(&in) & INT64_MAX
                                  : fuzz_u8(&in);
    h.db_rows = json_object();
    for (int i = 0; i < ((setup >> 4) & 7); i++) {
        bool delete;
        const char *key;
        int value;
        int64_t version;
        record_spec(&in, &delete, &key, &value, &version);
        if (!is_reserved(key)) {
            json_object_set_new(h.db_rows, key,
                                json_pack("[Is]", (json_int_t) version,
                                          value_texts[value]));
        }
    }
    h.prior_epoch = epoch;
    h.db_epoch = epoch;
    h.db_position = epoch ? position : 0;
    h.max_fed = h.db_position;
    h.up = upstream_create("vm1", epoch, position, h.db_rows, on_ack, &h);
    check_state(epoch, false);

    for (int i = 0; i < MAX_STEPS && in.size; i++) {
        uint8_t op = fuzz_u8(&in);
        uint32_t epoch_before = upstream_epoch(h.up);
        if (trace) {
            static const char *const names[] = {
                "SYNC", "DATA", "HELLO", "TAKE", "DONE", "COMMIT", "LIMITS",
                "TIME",
            };
            fprintf(stderr, "step %d: %s (%#04x) at %lld ms\n", i,
                    names[op & 7], op, now);
        }
        switch (op & 7) {
        case FUZZ_UP_SYNC:
            step_sync(&in, op, now);
            break;
        case FUZZ_UP_DATA:
            step_data(&in, op, now);
            break;
        case FUZZ_UP_HELLO:
            upstream_receive_hello(h.up, now);
            break;
        case FUZZ_UP_TAKE:
            step_take(now);
            break;
        case FUZZ_UP_DONE:
            step_done(op & FUZZ_UP_OK, now);
            break;
        case FUZZ_UP_COMMIT:
            step_take(now);
            step_done(op & FUZZ_UP_OK, now);
            break;
        case FUZZ_UP_LIMITS:
            step_limits(&in);
            break;
        case FUZZ_UP_TIME:
            now += ((op >> 3) + 1) * 25;
            break;
        }
        check_state(epoch_before, (op & 7) == FUZZ_UP_SYNC);
    }

    /* Everything chanctl would read. */
    json_t *counters = json_object();
    upstream_add_counters(h.up, counters);
    struct upstream_stats st;
    upstream_get_stats(h.up, &st);
    FUZZ_CHECK(json_integer_value(json_object_get(counters, "up_tx_ack"))
               == (json_int_t) h.n_acks);
    FUZZ_CHECK(st.tx_ack == h.n_acks);
    json_decref(counters);

    upstream_destroy(h.up);
    free_changes();
    json_decref(h.db_rows);
    free(h.msg);
    return 0;
}
