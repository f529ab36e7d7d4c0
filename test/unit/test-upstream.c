/* CUnit suite for chand-host's upstream end (chand-host/upstream.c): the
 * records a guest publishes, driven with scripted guest frames, a fake
 * clock and a fake Chan DB (the batches are applied to a JSON object, or
 * made to fail). */

#include <config.h>
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "chan-wire.h"
#include "upstream.h"

#define EPOCH 0x1234
#define VID 4094

/* ACKs sent, latest last. */
static struct {
    uint32_t epoch;
    uint64_t position;
} acks[4096];
static size_t n_acks;

static bool last_ack_had_limits;

static void
record_ack(uint32_t epoch, uint64_t position, const json_t *obj, void *aux)
{
    (void) aux;
    last_ack_had_limits = json_object_get(obj, "limits") != NULL;
    CU_ASSERT_FATAL(n_acks < sizeof acks / sizeof acks[0]);
    acks[n_acks].epoch = epoch;
    acks[n_acks].position = position;
    n_acks++;
}

static bool
last_ack_is(uint32_t epoch, uint64_t position)
{
    return n_acks && acks[n_acks - 1].epoch == epoch
           && acks[n_acks - 1].position == position;
}

/* The fake Chan DB: key -> [version, value] and the stored position. */
static json_t *db_rows;
static uint32_t db_epoch;
static uint64_t db_position;
static size_t db_writes;

/* Writes the pending batch, if any, to the fake DB ('ok') or fails it.
 * Returns true if there was one. */
static bool
commit(struct upstream *up, bool ok, long long now)
{
    const struct upstream_batch *b = upstream_next_batch(up, now);
    if (!b) {
        return false;
    }
    if (ok) {
        for (size_t i = 0; i < b->n; i++) {
            const struct upstream_change *c = &b->changes[i];
            json_t *row = json_object_get(db_rows, c->key);
            if (!c->value) {
                CU_ASSERT_PTR_NOT_NULL(row);
                json_object_del(db_rows, c->key);
            } else {
                CU_ASSERT_EQUAL(c->insert, row == NULL);
                json_object_set_new(db_rows, c->key,
                                    json_pack("[Is]",
                                              (json_int_t) c->version,
                                              c->value));
            }
            db_writes++;
        }
        if (b->set_position) {
            db_epoch = b->epoch;
            db_position = b->position;
        }
    }
    upstream_batch_done(up, ok, now);
    return true;
}

static struct upstream *
make(uint32_t epoch, uint64_t position)
{
    n_acks = 0;
    db_writes = 0;
    db_epoch = epoch;
    db_position = position;
    return upstream_create("vm1", epoch, position, db_rows, record_ack,
                           NULL);
}

static void
send_sync(struct upstream *up, uint32_t epoch, uint64_t end)
{
    struct chan_wire_header h = {
        .type = CHAN_WIRE_SYNC, .vid = VID, .epoch = epoch,
        .chunk_count = 1,
    };
    json_t *obj = json_pack("{sI}", "snapshot_end", (json_int_t) end);
    upstream_receive_sync(up, &h, obj, 0);
    json_decref(obj);
}

/* Sends one message of records 'json' (a JSON array of [op, key, value,
 * version]) at seq 'seq' in 'epoch', chunked at 'mtu' (0: 1500).  Returns
 * the seq after its last frame. */
static uint64_t
send_msg(struct upstream *up, uint32_t epoch, uint64_t seq, bool snapshot,
         const char *records, unsigned int mtu)
{
    struct chan_batch b;
    json_t *list = json_loads(records, 0, NULL);
    size_t i;
    json_t *r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    chan_batch_init(&b);
    json_array_foreach (list, i, r) {
        const char *op = json_string_value(json_array_get(r, 0));
        const char *key = json_string_value(json_array_get(r, 1));
        int64_t version = json_integer_value(json_array_get(r, 3));
        if (!strcmp(op, "put")) {
            chan_batch_add_put(&b, key, json_array_get(r, 2), version);
        } else {
            chan_batch_add_delete(&b, key, version);
        }
    }
    char *text;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(chan_batch_encode(&b, NULL, &text, &len), 0);
    struct chan_wire_header tmpl = {
        .type = CHAN_WIRE_DATA, .vid = VID, .epoch = epoch, .seq = seq,
        .flags = snapshot ? CHAN_WIRE_F_SNAPSHOT : 0,
    };
    struct chan_chunker c;
    struct chan_wire_header h;
    const uint8_t *p;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(chan_chunker_init(&c, &tmpl, text, len,
                                            mtu ? mtu : 1500), 0);
    while (chan_chunker_next(&c, &h, &p, &n)) {
        upstream_receive_data(up, &h, p, 0);
        seq = h.seq + 1;
    }
    free(text);
    chan_batch_destroy(&b);
    json_decref(list);
    return seq;
}

static const char *
db_value(const char *key)
{
    return json_string_value(json_array_get(json_object_get(db_rows, key),
                                            1));
}

static void
setup_db(const char *rows)
{
    json_decref(db_rows);
    db_rows = json_loads(rows, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db_rows);
}

/* A new session's snapshot makes the rows exactly what it carried: new
 * keys inserted, changed ones updated, unchanged ones left alone, the
 * others deleted; the position is stored with the batch that ends the
 * snapshot and acknowledged after the commit. */
static void
test_snapshot(void)
{
    setup_db("{\"old\": [1, \"1\"], \"same\": [5, \"\\\"s\\\"\"], "
             "\"chg\": [2, \"2\"]}");
    struct upstream *up = make(0, 0);

    send_sync(up, EPOCH, 2);
    CU_ASSERT(last_ack_is(EPOCH, 0));
    CU_ASSERT_FALSE(commit(up, true, 0));       /* Nothing stored yet. */

    send_msg(up, EPOCH, 1, true, "[[\"put\", \"same\", \"s\", 5],"
             " [\"put\", \"chg\", 3, 7]]", 0);
    size_t acks_before = n_acks;
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_EQUAL(n_acks, acks_before + 1);
    CU_ASSERT(last_ack_is(EPOCH, 1));
    CU_ASSERT_EQUAL(db_position, 0);             /* Snapshot unfinished. */
    CU_ASSERT_PTR_NOT_NULL(json_object_get(db_rows, "old"));
    CU_ASSERT_STRING_EQUAL(db_value("chg"), "3");
    CU_ASSERT_EQUAL(db_writes, 1);              /* "same" left alone. */

    send_msg(up, EPOCH, 2, true, "[[\"put\", \"new\", {\"a\": [1]}, 8]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT(last_ack_is(EPOCH, 2));
    CU_ASSERT_EQUAL(db_epoch, EPOCH);
    CU_ASSERT_EQUAL(db_position, 2);
    CU_ASSERT_PTR_NULL(json_object_get(db_rows, "old"));
    CU_ASSERT_STRING_EQUAL(db_value("new"), "{\"a\":[1]}");
    CU_ASSERT_EQUAL(json_object_size(db_rows), 3);
    CU_ASSERT_TRUE(json_equal(upstream_rows(up), db_rows));

    /* After the snapshot: deletes and updates, position stored each
     * time. */
    send_msg(up, EPOCH, 3, false, "[[\"delete\", \"same\", null, 9],"
             " [\"delete\", \"nosuch\", null, 10]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_EQUAL(db_position, 3);
    CU_ASSERT_PTR_NULL(json_object_get(db_rows, "same"));
    CU_ASSERT(last_ack_is(EPOCH, 3));

    struct upstream_stats st;
    upstream_get_stats(up, &st);
    CU_ASSERT_EQUAL(st.sessions, 1);
    CU_ASSERT_EQUAL(st.snapshots, 1);
    CU_ASSERT_EQUAL(st.msgs, 3);
    CU_ASSERT_EQUAL(st.records, 5);
    upstream_destroy(up);
}

/* An empty snapshot deletes every row, and is acknowledged only once that
 * has committed. */
static void
test_empty_snapshot(void)
{
    setup_db("{\"a\": [1, \"1\"], \"b\": [2, \"2\"]}");
    struct upstream *up = make(0, 0);
    send_sync(up, EPOCH, 0);
    CU_ASSERT_EQUAL(n_acks, 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_EQUAL(json_object_size(db_rows), 0);
    CU_ASSERT_EQUAL(db_epoch, EPOCH);
    CU_ASSERT_EQUAL(db_position, 0);
    CU_ASSERT(last_ack_is(EPOCH, 0));

    /* The same SYNC again: only an ACK. */
    size_t writes = db_writes;
    send_sync(up, EPOCH, 0);
    CU_ASSERT_FALSE(commit(up, true, 0));
    CU_ASSERT(last_ack_is(EPOCH, 0));
    CU_ASSERT_EQUAL(db_writes, writes);
    upstream_destroy(up);
}

/* Duplicates are acknowledged again and applied once; a gap is dropped
 * with a (rate-limited) ACK; DATA of another epoch gets an ACK of the
 * current one. */
static void
test_duplicates_gaps_epochs(void)
{
    setup_db("{}");
    struct upstream *up = make(0, 0);
    send_sync(up, EPOCH, 0);
    commit(up, true, 0);

    send_msg(up, EPOCH, 1, false, "[[\"put\", \"k\", 1, 1]]", 0);
    commit(up, true, 0);
    CU_ASSERT(last_ack_is(EPOCH, 1));
    size_t writes = db_writes;
    send_msg(up, EPOCH, 1, false, "[[\"put\", \"k\", 2, 2]]", 0);
    CU_ASSERT_FALSE(commit(up, true, 0));
    CU_ASSERT(last_ack_is(EPOCH, 1));
    CU_ASSERT_EQUAL(db_writes, writes);
    CU_ASSERT_STRING_EQUAL(db_value("k"), "1");

    size_t n = n_acks;
    send_msg(up, EPOCH, 5, false, "[[\"put\", \"k\", 5, 5]]", 0);
    CU_ASSERT_FALSE(commit(up, true, 0));
    CU_ASSERT_EQUAL(n_acks, n + 1);
    CU_ASSERT(last_ack_is(EPOCH, 1));
    send_msg(up, EPOCH, 6, false, "[[\"put\", \"k\", 6, 6]]", 0);
    CU_ASSERT_EQUAL(n_acks, n + 1);              /* Rate-limited. */

    send_msg(up, EPOCH + 1, 2, false, "[[\"put\", \"k\", 7, 7]]", 0);
    CU_ASSERT_FALSE(commit(up, true, 0));
    CU_ASSERT_STRING_EQUAL(db_value("k"), "1");

    struct upstream_stats st;
    upstream_get_stats(up, &st);
    CU_ASSERT_EQUAL(st.rx_duplicate, 1);
    CU_ASSERT_EQUAL(st.drop_gap, 2);
    CU_ASSERT_EQUAL(st.drop_epoch, 1);
    upstream_destroy(up);
}

/* A batch that fails changes nothing and sends the position back: the
 * guest's retransmission then goes in. */
static void
test_batch_failure(void)
{
    setup_db("{}");
    struct upstream *up = make(0, 0);
    send_sync(up, EPOCH, 0);
    commit(up, true, 0);
    send_msg(up, EPOCH, 1, false, "[[\"put\", \"a\", 1, 1]]", 0);
    send_msg(up, EPOCH, 2, false, "[[\"put\", \"b\", 2, 2]]", 0);
    CU_ASSERT_TRUE(commit(up, false, 0));
    CU_ASSERT(last_ack_is(EPOCH, 0));
    CU_ASSERT_EQUAL(json_object_size(db_rows), 0);
    CU_ASSERT_EQUAL(upstream_position(up), 0);

    /* seq 2 alone is now a gap; from 1 again it goes in. */
    send_msg(up, EPOCH, 2, false, "[[\"put\", \"b\", 2, 2]]", 0);
    CU_ASSERT_FALSE(commit(up, true, 0));
    send_msg(up, EPOCH, 1, false, "[[\"put\", \"a\", 1, 1]]", 0);
    send_msg(up, EPOCH, 2, false, "[[\"put\", \"b\", 2, 2]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT(last_ack_is(EPOCH, 2));
    CU_ASSERT_EQUAL(json_object_size(db_rows), 2);
    CU_ASSERT_EQUAL(db_position, 2);
    upstream_destroy(up);
}

/* Messages that arrive while a batch is in flight go into the next one;
 * several messages in one batch collapse to the last operation per key. */
static void
test_group_commit(void)
{
    setup_db("{}");
    struct upstream *up = make(0, 0);
    send_sync(up, EPOCH, 0);
    commit(up, true, 0);

    send_msg(up, EPOCH, 1, false, "[[\"put\", \"k\", 1, 1]]", 0);
    const struct upstream_batch *b = upstream_next_batch(up, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->n, 1);
    CU_ASSERT_TRUE(upstream_is_writing(up));
    CU_ASSERT_PTR_NULL(upstream_next_batch(up, 0));
    uint64_t seq = 2;
    for (int i = 2; i <= 20; i++) {
        char rec[64];
        snprintf(rec, sizeof rec, "[[\"put\", \"k\", %d, %d]]", i, i);
        seq = send_msg(up, EPOCH, seq, false, rec, 0);
    }
    send_msg(up, EPOCH, seq, false, "[[\"put\", \"x\", 0, 21],"
             " [\"delete\", \"x\", null, 22]]", 0);
    /* Nothing acknowledged past the committed position meanwhile. */
    CU_ASSERT(!n_acks || acks[n_acks - 1].position <= 1);
    /* Finish the first batch by hand, then the rest in one. */
    json_object_set_new(db_rows, "k", json_pack("[is]", 1, "1"));
    upstream_batch_done(up, true, 0);
    db_writes = 0;
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_EQUAL(db_writes, 1);              /* k updated once. */
    CU_ASSERT_STRING_EQUAL(db_value("k"), "20");
    CU_ASSERT_PTR_NULL(json_object_get(db_rows, "x"));
    CU_ASSERT(last_ack_is(EPOCH, 21));
    upstream_destroy(up);
}

/* Records under "from/" are refused and counted; the stream goes on. */
static void
test_reserved(void)
{
    setup_db("{}");
    struct upstream *up = make(0, 0);
    send_sync(up, EPOCH, 0);
    commit(up, true, 0);
    send_msg(up, EPOCH, 1, false, "[[\"put\", \"from/vm2/k\", 1, 1],"
             " [\"put\", \"ok\", 1, 2]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_PTR_NULL(json_object_get(db_rows, "from/vm2/k"));
    CU_ASSERT_PTR_NOT_NULL(json_object_get(db_rows, "ok"));
    CU_ASSERT(last_ack_is(EPOCH, 1));
    struct upstream_stats st;
    upstream_get_stats(up, &st);
    CU_ASSERT_EQUAL(st.refused_reserved, 1);
    upstream_destroy(up);
}

/* A restarted host goes on from the stored epoch and position; the guest's
 * HELLO is answered with them. */
static void
test_resume(void)
{
    setup_db("{\"a\": [3, \"\\\"x\\\"\"]}");
    struct upstream *up = make(EPOCH, 7);
    upstream_receive_hello(up, 0);
    CU_ASSERT(last_ack_is(EPOCH, 7));
    send_msg(up, EPOCH, 8, false, "[[\"put\", \"a\", \"y\", 4]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_STRING_EQUAL(db_value("a"), "\"y\"");
    CU_ASSERT_EQUAL(db_position, 8);
    CU_ASSERT(last_ack_is(EPOCH, 8));

    /* A host without a session answers with epoch 0. */
    upstream_destroy(up);
    up = make(0, 0);
    upstream_receive_hello(up, 0);
    CU_ASSERT(last_ack_is(0, 0));
    upstream_destroy(up);
}

/* A message longer than the guest's window: its chunks are acknowledged
 * as they arrive, and the whole message is applied once. */
static void
test_chunked(void)
{
    setup_db("{}");
    struct upstream *up = make(0, 0);
    send_sync(up, EPOCH, 0);
    commit(up, true, 0);

    char big[20000 + 64];
    memset(big, 0, sizeof big);
    strcpy(big, "[[\"put\", \"big\", \"");
    memset(big + strlen(big), 'x', 20000);
    strcat(big, "\", 1]]");
    n_acks = 0;
    uint64_t next = send_msg(up, EPOCH, 1, false, big, 576);
    CU_ASSERT(next > 30);
    CU_ASSERT(n_acks >= 2);                      /* Chunks acknowledged. */
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT(last_ack_is(EPOCH, next - 1));
    CU_ASSERT_EQUAL(strlen(db_value("big")), 20002);
    upstream_destroy(up);
}

/* Garbage in a DATA message that authenticates: skipped, stream goes on. */
static void
test_bad_payload(void)
{
    setup_db("{}");
    struct upstream *up = make(0, 0);
    send_sync(up, EPOCH, 0);
    commit(up, true, 0);
    static const char junk[] = "{\"records\": 5}";
    struct chan_wire_header h = {
        .type = CHAN_WIRE_DATA, .vid = VID, .epoch = EPOCH, .seq = 1,
        .chunk_count = 1, .payload_len = sizeof junk - 1,
    };
    upstream_receive_data(up, &h, (const uint8_t *) junk, 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT(last_ack_is(EPOCH, 1));
    send_msg(up, EPOCH, 2, false, "[[\"put\", \"k\", 1, 1]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT(last_ack_is(EPOCH, 2));

    /* A SYNC without snapshot_end is dropped. */
    struct chan_wire_header s = {
        .type = CHAN_WIRE_SYNC, .vid = VID, .epoch = EPOCH + 5,
        .chunk_count = 1,
    };
    json_t *obj = json_pack("{ss}", "snapshot_end", "x");
    upstream_receive_sync(up, &s, obj, 0);
    json_decref(obj);
    CU_ASSERT_EQUAL(upstream_epoch(up), EPOCH);
    struct upstream_stats st;
    upstream_get_stats(up, &st);
    CU_ASSERT_EQUAL(st.msgs_bad, 1);
    CU_ASSERT_EQUAL(st.drop_payload, 1);
    upstream_destroy(up);
    json_decref(db_rows);
    db_rows = NULL;
}

/* Over a limit a record is refused and counted; what is stored stays; the
 * guest learns the limits from the ACKs that answer its SYNC and HELLO. */
static void
test_limits(void)
{
    setup_db("{\"kept\": [1, \"\\\"old\\\"\"]}");
    struct upstream *up = make(EPOCH, 4);
    const struct upstream_limits l = { 2, 10, 40, 5 };
    upstream_set_limits(up, &l);
    upstream_receive_hello(up, 0);
    CU_ASSERT_TRUE(last_ack_had_limits);

    send_msg(up, EPOCH, 5, false,
             "[[\"put\", \"a\", 1, 1],"                /* 2nd record: ok */
             " [\"put\", \"b\", 2, 2],"                /* 3rd: refused */
             " [\"put\", \"kept\", \"0123456789abc\", 3]]", /* too big */
             0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_FALSE(last_ack_had_limits);
    CU_ASSERT_EQUAL(json_object_size(db_rows), 2);
    CU_ASSERT_STRING_EQUAL(db_value("kept"), "\"old\"");
    CU_ASSERT_STRING_EQUAL(db_value("a"), "1");
    CU_ASSERT_EQUAL(db_position, 5);              /* The stream went on. */

    /* A delete makes room; the total bytes limit still applies. */
    send_msg(up, EPOCH, 6, false,
             "[[\"delete\", \"a\", null, 4], [\"put\", \"c\", \"xxxxxxxx\", 5],"
             " [\"put\", \"kept\", \"yyyyyyyy\", 6]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_PTR_NULL(json_object_get(db_rows, "a"));
    CU_ASSERT_STRING_EQUAL(db_value("c"), "\"xxxxxxxx\"");
    CU_ASSERT_STRING_EQUAL(db_value("kept"), "\"yyyyyyyy\"");
    send_msg(up, EPOCH, 7, false,
             "[[\"put\", \"c\", \"zzzzzzzz\", 7]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    struct upstream_stats st;
    upstream_get_stats(up, &st);
    CU_ASSERT_EQUAL(st.refused_records, 1);
    CU_ASSERT_EQUAL(st.refused_value_size, 1);
    CU_ASSERT_EQUAL(st.refused_total_bytes, 0);

    /* Total: 4 + 10 ("kept" + "yyyyyyyy" quoted) + 1 + 10 = 25 held; a
     * 10-byte value under a 16-byte key goes over 40. */
    send_msg(up, EPOCH, 8, false,
             "[[\"put\", \"sixteen-byte-key\", \"12345678\", 8]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    upstream_get_stats(up, &st);
    CU_ASSERT_EQUAL(st.refused_records, 2);     /* Third record, again. */
    send_sync(up, EPOCH + 1, 1);
    CU_ASSERT_TRUE(last_ack_had_limits);
    upstream_destroy(up);

    setup_db("{}");
    up = make(EPOCH, 1);
    const struct upstream_limits small = { 100, 100, 20, 0 };
    upstream_set_limits(up, &small);
    send_msg(up, EPOCH, 2, false, "[[\"put\", \"k\", \"0123456789\", 1],"
             " [\"put\", \"m\", \"0123456789\", 2]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_PTR_NOT_NULL(json_object_get(db_rows, "k"));
    CU_ASSERT_PTR_NULL(json_object_get(db_rows, "m"));
    upstream_get_stats(up, &st);
    CU_ASSERT_EQUAL(st.refused_total_bytes, 1);
    upstream_destroy(up);
}

/* upstream_drop() forgets the session and the rows, also those of a batch
 * in flight, and says so with an ACK of epoch 0; the guest's next session
 * then inserts every row again. */
static void
test_drop(void)
{
    setup_db("{}");
    struct upstream *up = make(0, 0);
    send_sync(up, EPOCH, 1);
    send_msg(up, EPOCH, 1, true, "[[\"put\", \"a\", 1, 1],"
             " [\"put\", \"b\", 2, 2]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_EQUAL(json_object_size(db_rows), 2);

    /* A batch in flight when the rows are dropped. */
    send_msg(up, EPOCH, 2, false, "[[\"put\", \"c\", 3, 3]]", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(upstream_next_batch(up, 0));
    upstream_drop(up);
    CU_ASSERT(last_ack_is(0, 0));
    CU_ASSERT_TRUE(last_ack_had_limits);
    CU_ASSERT_EQUAL(upstream_epoch(up), 0);
    CU_ASSERT_EQUAL(upstream_position(up), 0);
    CU_ASSERT_EQUAL(json_object_size(upstream_rows(up)), 0);
    upstream_batch_done(up, true, 0);           /* Its rows are not noted. */
    CU_ASSERT_EQUAL(json_object_size(upstream_rows(up)), 0);
    setup_db("{}");                             /* The caller's delete. */

    /* The old session's DATA is refused; the new session inserts all. */
    send_msg(up, EPOCH, 3, false, "[[\"put\", \"d\", 4, 4]]", 0);
    CU_ASSERT_FALSE(commit(up, true, 0));
    send_sync(up, EPOCH + 1, 1);
    CU_ASSERT(last_ack_is(EPOCH + 1, 0));
    send_msg(up, EPOCH + 1, 1, true, "[[\"put\", \"a\", 1, 1],"
             " [\"put\", \"b\", 2, 2], [\"put\", \"c\", 3, 3]]", 0);
    CU_ASSERT_TRUE(commit(up, true, 0));
    CU_ASSERT_EQUAL(json_object_size(db_rows), 3);
    CU_ASSERT_EQUAL(db_epoch, EPOCH + 1);
    CU_ASSERT_EQUAL(db_position, 1);
    CU_ASSERT_TRUE(json_equal(upstream_rows(up), db_rows));

    struct upstream_stats st;
    upstream_get_stats(up, &st);
    CU_ASSERT_EQUAL(st.drops, 1);
    CU_ASSERT_EQUAL(st.sessions, 2);
    upstream_destroy(up);
}

static const struct unit_test tests[] = {
    { "limits", test_limits },
    { "snapshot", test_snapshot },
    { "empty snapshot", test_empty_snapshot },
    { "duplicates, gaps, epochs", test_duplicates_gaps_epochs },
    { "batch failure", test_batch_failure },
    { "group commit", test_group_commit },
    { "reserved prefix", test_reserved },
    { "resume after a host restart", test_resume },
    { "chunked message", test_chunked },
    { "bad payload", test_bad_payload },
    { "drop the session and the rows", test_drop },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("upstream", tests);
}
