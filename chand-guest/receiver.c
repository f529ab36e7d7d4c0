/* chand-guest's end of a channel session: see receiver.h. */

#include <config.h>
#include "receiver.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chan-mtu.h"
#include "datastore.h"
#include "packets.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(receiver);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(20, 20);
static struct vlog_rate_limit dbg_rl = VLOG_RATE_LIMIT_INIT(60, 60);

/* Largest frame the receiver sends (HELLO/ACK with a small payload: at
 * most KEYRING_MAX generations of 10 digits, and a few integers). */
#define TX_BUF_SIZE 1024

struct receiver {
    struct receiver_config cfg; /* cfg.keys is NULL: see 'keys'. */
    struct keyring keys;        /* Channel keys, newest first. */
    uint64_t verified[KEYRING_MAX]; /* Frames verified by keys.keys[i]. */
    uint32_t rx_generation;     /* Verified the last valid frame. */
    struct datastore *ds;
    receiver_send_func *send;
    void *aux;
    struct chan_reasm *reasm;

    uint64_t next_seq;          /* Next DATA seq accepted. */
    bool in_session;
    long long last_rx;          /* Last frame of our epoch. */
    long long last_hello;       /* Last HELLO sent. */
    long long hello_interval;   /* Until the next HELLO of our own while
                                 * not in session: doubles after each
                                 * unanswered one up to
                                 * RECEIVER_HELLO_MAX_MS, back to
                                 * RECEIVER_HELLO_INTERVAL_MS in a
                                 * session. */
    bool hello_backoff;         /* A HELLO of our own went unanswered. */
    long long last_gap_ack;     /* Last ACK sent for a gap. */
    bool hello_due;             /* Send HELLO as soon as the rate allows. */
    bool ack_due;               /* Send ACK at the end of the burst. */
    bool gap_ack_due;           /* Send ACK as soon as the rate allows. */
    bool burst_failed;          /* The datastore failed in this burst. */
    unsigned int mtu;           /* Ours, advertised (receiver_set_mtu()). */
    unsigned int host_mtu;      /* The host's advertised MTU; 0: none. */

    /* For logging once the burst commits. */
    bool log_snapshot_finished;
    uint64_t log_snapshot_deleted;
    uint64_t snapshot_records;  /* Records applied to the active snapshot
                                 * by this process. */

    struct receiver_stats stats;
};

/* Discards any partial message and expects the frame after the
 * datastore's position (inside a transaction: including what the burst
 * applied so far). */
static void
reset_to_position(struct receiver *rx)
{
    struct ds_state st;

    datastore_get_state(rx->ds, &st);
    rx->next_seq = st.position + 1;
    chan_reasm_reset(rx->reasm);
}

struct receiver *
receiver_create(const struct receiver_config *config, struct datastore *ds,
                receiver_send_func *send, void *aux, long long now)
{
    struct receiver *rx = calloc(1, sizeof *rx);
    struct ds_state st;

    if (!rx) {
        return NULL;
    }
    rx->cfg = *config;
    rx->cfg.keys = NULL;
    rx->reasm = chan_reasm_create(config->max_msg);
    if (!rx->reasm) {
        free(rx);
        return NULL;
    }
    receiver_set_keys(rx, config->keys);
    rx->ds = ds;
    rx->send = send;
    rx->aux = aux;
    rx->last_rx = now;
    rx->last_hello = LLONG_MIN / 2;
    rx->hello_interval = RECEIVER_HELLO_INTERVAL_MS;
    rx->last_gap_ack = LLONG_MIN / 2;
    rx->mtu = config->mtu ? config->mtu : CHAN_WIRE_DEFAULT_MTU;
    reset_to_position(rx);

    datastore_get_state(ds, &st);
    if (st.host_epoch) {
        VLOG_INFO("datastore at host epoch %"PRIu32", seq %"PRIu64
                  ", snapshot %s%s; asking the host to resume",
                  st.host_epoch, st.position,
                  ds_snapshot_to_string(st.snapshot),
                  st.snapshot == DS_SNAPSHOT_ACTIVE ? " (unfinished)" : "");
    } else {
        VLOG_INFO("datastore has no session yet (guest epoch %"PRIu32"); "
                  "asking the host for one", st.guest_epoch);
    }
    return rx;
}

void
receiver_destroy(struct receiver *rx)
{
    if (rx) {
        datastore_rollback(rx->ds);
        chan_reasm_destroy(rx->reasm);
        explicit_bzero(&rx->keys, sizeof rx->keys);
        free(rx);
    }
}

void
receiver_set_keys(struct receiver *rx, const struct keyring *keys)
{
    uint64_t verified[KEYRING_MAX];
    struct keyring ring;

    if (keys) {
        ring = *keys;
    } else {
        keyring_init(&ring);
    }
    for (size_t i = 0; i < ring.n; i++) {
        const struct keyring_key *old;

        old = keyring_find(&rx->keys, ring.keys[i].generation);
        verified[i] = old ? rx->verified[old - rx->keys.keys] : 0;
    }
    rx->keys = ring;
    memset(rx->verified, 0, sizeof rx->verified);
    memcpy(rx->verified, verified, ring.n * sizeof verified[0]);
    explicit_bzero(&ring, sizeof ring);
}

uint32_t
receiver_rx_generation(const struct receiver *rx)
{
    return rx->rx_generation;
}

/* The key to send with: see receiver.h. */
static const struct keyring_key *
tx_key(const struct receiver *rx)
{
    const struct keyring_key *k = NULL;

    if (rx->rx_generation) {
        k = keyring_find(&rx->keys, rx->rx_generation);
    }
    return k ? k : keyring_newest(&rx->keys);
}

uint32_t
receiver_tx_generation(const struct receiver *rx)
{
    const struct keyring_key *k = tx_key(rx);

    return k ? k->generation : 0;
}

const struct keyring_key *
receiver_tx_key(const struct receiver *rx)
{
    return tx_key(rx);
}

/* Transmission. */

/* Sends a frame of 'type' with 'flags', 'epoch' and 'ack' and the object
 * 'obj' (stolen; NULL for an empty payload), with the tx key.  Returns true
 * if sent. */
static bool
send_frame(struct receiver *rx, uint8_t type, uint8_t flags, uint32_t epoch,
           uint64_t ack, json_t *obj)
{
    const struct keyring_key *k = tx_key(rx);
    struct chan_wire_header h = {
        .type = type,
        .flags = flags,
        .vid = rx->cfg.vid,
        .epoch = epoch,
        .ack = ack,
        .chunk_count = 1,
    };
    uint8_t buf[TX_BUF_SIZE];
    char *text = NULL;
    size_t text_len = 0, len;
    enum chan_wire_error error = 0;
    int send_error;

    if (obj) {
        error = chan_payload_encode_object(obj, NULL, &text, &text_len);
        json_decref(obj);
    }
    if (!error) {
        error = chan_wire_encode(&h, text, text_len, k ? k->key : NULL,
                                 k ? KEYRING_KEY_LEN : 0, buf, sizeof buf,
                                 &len);
    }
    free(text);
    if (error) {
        VLOG_ERR_RL(&rl, "cannot encode %s frame: %s",
                    chan_wire_type_name(type), chan_wire_strerror(error));
        rx->stats.tx_errors++;
        return false;
    }
    send_error = rx->send(buf, len, rx->aux);
    if (send_error) {
        VLOG_WARN_RL(&rl, "sending %s to the host failed: %s",
                     chan_wire_type_name(type), strerror(send_error));
        rx->stats.tx_errors++;
        return false;
    }
    return true;
}

static void
send_hello(struct receiver *rx, long long now)
{
    struct ds_state st;
    json_t *obj;

    datastore_get_state(rx->ds, &st);
    obj = json_pack("{sI so sI}", "guest_epoch",
                    (json_int_t) st.guest_epoch,
                    "keys", keyring_generations_json(&rx->keys),
                    CHAN_MTU_MEMBER, (json_int_t) rx->mtu);
    if (obj && st.snapshot == DS_SNAPSHOT_ACTIVE) {
        json_object_set_new(obj, "snapshot_end",
                            json_integer((json_int_t) st.snapshot_end));
    }
    if (obj && rx->cfg.up_epoch) {
        uint32_t up_epoch = rx->cfg.up_epoch(rx->cfg.upstream_aux);
        json_object_set_new(obj, "up_epoch",
                            json_integer((json_int_t) up_epoch));
    }
    if (send_frame(rx, CHAN_WIRE_HELLO, CHAN_WIRE_F_ACK_VALID, st.host_epoch,
                   st.position, obj)) {
        rx->stats.tx_hello++;
        VLOG_DBG("sent HELLO: epoch %"PRIu32", ack %"PRIu64,
                 st.host_epoch, st.position);
    }
    rx->last_hello = now;
    rx->hello_due = false;
}

static void
send_ack(struct receiver *rx)
{
    struct ds_state st;

    datastore_get_state(rx->ds, &st);
    if (!st.host_epoch) {
        return;                 /* No epoch to acknowledge in. */
    }
    /* The ack is the durable position, or, while a message is being
     * reassembled, the last of its chunks received in order: the host
     * counts a message as applied only once the ack covers its last chunk,
     * which is acknowledged after the commit that applies it.  Chunks
     * acknowledged but lost in a crash are sent again: the HELLO after a
     * restart reports the durable position, and the host rewinds to it. */
    uint64_t ack = st.position;
    if (chan_reasm_in_progress(rx->reasm) && rx->next_seq - 1 > ack) {
        ack = rx->next_seq - 1;
    }
    if (send_frame(rx, CHAN_WIRE_ACK, CHAN_WIRE_F_ACK_VALID, st.host_epoch,
                   ack,
                   json_pack("{so sI}", "keys",
                             keyring_generations_json(&rx->keys),
                             CHAN_MTU_MEMBER, (json_int_t) rx->mtu))) {
        rx->stats.tx_ack++;
    }
}

static long long min_ll(long long a, long long b);

/* Sends whatever HELLO is due at 'now'. */
static void
maybe_send_hello(struct receiver *rx, long long now)
{
    long long since = now - rx->last_hello;
    bool periodic = !rx->in_session && since >= rx->hello_interval;

    if (periodic || (rx->hello_due && since >= RECEIVER_HELLO_MIN_MS)) {
        send_hello(rx, now);
        if (periodic && rx->hello_backoff) {
            /* Nobody answers: the host is down, or its flows are not
             * there and a standalone bridge would flood every guest's
             * HELLOs to every port.  A host that comes back sends its
             * own HELLO, answered at once. */
            rx->hello_interval = min_ll(2 * rx->hello_interval,
                                        RECEIVER_HELLO_MAX_MS);
        }
        rx->hello_backoff |= periodic;
    }
}

/* Session state. */

static void
enter_session(struct receiver *rx, long long now)
{
    rx->last_rx = now;
    if (!rx->in_session) {
        struct ds_state st;

        datastore_get_state(rx->ds, &st);
        rx->in_session = true;
        rx->hello_interval = RECEIVER_HELLO_INTERVAL_MS;
        rx->hello_backoff = false;
        rx->hello_due = false;
        VLOG_INFO("in session with host epoch %"PRIu32" at seq %"PRIu64,
                  st.host_epoch, st.position);
    }
}

/* A frame of an epoch other than ours: tell the host where we are. */
static void
other_epoch(struct receiver *rx, const struct chan_wire_header *h)
{
    struct ds_state st;

    datastore_get_state(rx->ds, &st);
    rx->stats.drop_epoch++;
    if (rx->in_session) {
        VLOG_INFO("host sent %s of epoch %"PRIu32" but we follow epoch "
                  "%"PRIu32"; sending HELLO", chan_wire_type_name(h->type),
                  h->epoch, st.host_epoch);
    }
    rx->in_session = false;
    rx->hello_due = true;
}

/* Transactions. */

/* Gives up the burst's transaction after a datastore failure: nothing of
 * the burst is acknowledged, the rest of the burst is dropped, and the
 * receiver continues from the committed position. */
static void
fail_burst(struct receiver *rx, int error, const char *what)
{
    VLOG_ERR_RL(&rl, "%s failed (%s): %s; dropping this burst, the host "
                "will retransmit", what, strerror(error),
                datastore_last_error());
    datastore_rollback(rx->ds);
    rx->stats.commit_errors++;
    rx->stats.drop_txn++;
    rx->burst_failed = true;
    rx->ack_due = false;
    rx->log_snapshot_finished = false;
    reset_to_position(rx);
}

/* Makes sure the burst's transaction is open.  Returns 0, or an error
 * after fail_burst(). */
static int
ensure_txn(struct receiver *rx)
{
    int error;

    if (rx->burst_failed) {
        rx->stats.drop_txn++;
        return EAGAIN;
    }
    if (datastore_in_transaction(rx->ds)) {
        return 0;
    }
    error = datastore_begin(rx->ds);
    if (error) {
        fail_burst(rx, error, "beginning a transaction");
    }
    return error;
}

/* MTU (doc/PROTOCOL.md §4.1). */

/* Records the MTU the host advertises in control payload 'obj': a HELLO or
 * SYNC ('always') without it comes from an older host (1500); in other
 * frames no member means "not reported". */
static void
note_host_mtu(struct receiver *rx, const json_t *obj, bool always)
{
    if (always || json_object_get(obj, CHAN_MTU_MEMBER)) {
        unsigned int mtu = chan_mtu_from_json(obj);
        if (mtu != rx->host_mtu) {
            VLOG_INFO("host advertises MTU %u: sending frames of up to %u",
                      mtu, chan_mtu_effective(rx->mtu, mtu));
            rx->host_mtu = mtu;
        }
    }
}

void
receiver_set_mtu(struct receiver *rx, unsigned int mtu)
{
    if (mtu != rx->mtu) {
        rx->mtu = mtu;
        rx->ack_due |= rx->in_session;  /* Tell the host soon. */
    }
}

unsigned int
receiver_mtu(const struct receiver *rx)
{
    return chan_mtu_effective(rx->mtu, rx->host_mtu);
}

/* SYNC. */

/* Reads a nonnegative integer member 'name' of 'obj' no larger than 'max'.
 * Returns true and stores it if it is one. */
static bool
get_uint_member(const json_t *obj, const char *name, uint64_t max,
                uint64_t *valuep)
{
    json_t *v = json_object_get(obj, name);

    if (!json_is_integer(v) || json_integer_value(v) < 0
        || (uint64_t) json_integer_value(v) > max) {
        return false;
    }
    *valuep = json_integer_value(v);
    return true;
}

static void
handle_sync(struct receiver *rx, const struct chan_wire_header *h,
            const uint8_t *payload, long long now)
{
    uint64_t guest_epoch, snapshot_end;
    enum chan_wire_error werr;
    struct ds_state st;
    json_t *obj;
    int error;

    werr = chan_payload_decode_object(payload, h->payload_len, NULL, &obj);
    if (werr) {
        rx->stats.drop_wire[werr]++;
        VLOG_WARN_RL(&rl, "dropped SYNC with bad payload: %s",
                     chan_wire_strerror(werr));
        return;
    }
    if (!get_uint_member(obj, "guest_epoch", UINT32_MAX, &guest_epoch)
        || !get_uint_member(obj, "snapshot_end", DS_SEQ_MAX,
                            &snapshot_end)) {
        json_decref(obj);
        rx->stats.drop_sync_payload++;
        VLOG_WARN_RL(&rl, "dropped SYNC without a valid guest_epoch and "
                     "snapshot_end");
        return;
    }
    note_host_mtu(rx, obj, true);
    json_decref(obj);

    datastore_get_state(rx->ds, &st);
    if (guest_epoch != st.guest_epoch) {
        /* Meant for an earlier store (wiped or replaced). */
        rx->stats.drop_sync_guest++;
        rx->hello_due = true;
        VLOG_INFO_RL(&rl, "ignoring SYNC for guest epoch %"PRIu64" (ours "
                     "is %"PRIu32"); sending HELLO", guest_epoch,
                     st.guest_epoch);
        return;
    }
    if (h->epoch == st.host_epoch) {
        /* Our ACK was lost, or the SYNC was duplicated. */
        rx->stats.rx_sync++;
        rx->stats.rx_sync_repeat++;
        rx->ack_due = true;
        enter_session(rx, now);
        return;
    }

    error = ensure_txn(rx);
    if (error) {
        return;
    }
    error = datastore_snapshot_begin(rx->ds, h->epoch, 0);
    if (!error) {
        error = datastore_set_snapshot_end(rx->ds, snapshot_end);
    }
    if (!error && !snapshot_end) {
        error = datastore_snapshot_finish(rx->ds,
                                          &rx->log_snapshot_deleted);
        rx->log_snapshot_finished = !error;
    }
    if (error) {
        fail_burst(rx, error, "starting a snapshot");
        return;
    }
    rx->stats.rx_sync++;
    rx->stats.snapshots_begun++;
    if (!snapshot_end) {
        rx->stats.snapshots_finished++;
    }
    rx->snapshot_records = 0;
    chan_reasm_reset(rx->reasm);
    rx->next_seq = 1;
    rx->ack_due = true;
    VLOG_INFO("new session: host epoch %"PRIu32", snapshot of seqs 1..%"
              PRIu64"%s", h->epoch, snapshot_end,
              snapshot_end ? "" : " (empty)");
    rx->in_session = false;     /* Logged again by enter_session(). */
    enter_session(rx, now);
}

/* DATA. */

/* Applies the message ending at 'last_seq' as if it held no records,
 * because it is unusable: 'why' is the wire error, or 0 if the datastore
 * refused its records ('detail' says why).  Counts it (in place of the
 * datagram that completed it).  Returns 0 or an error after
 * fail_burst(). */
static int
skip_message(struct receiver *rx, uint32_t epoch, uint64_t first_seq,
             uint64_t last_seq, enum chan_wire_error why, const char *detail)
{
    int error;

    VLOG_WARN_RL(&rl, "skipping unusable message at seqs %"PRIu64"..%"
                 PRIu64" from the host: %s", first_seq, last_seq,
                 why ? chan_wire_strerror(why) : detail);
    error = datastore_apply(rx->ds, epoch, last_seq, NULL, 0, NULL);
    if (error) {
        fail_burst(rx, error, "skipping a message");
        return error;
    }
    if (why) {
        rx->stats.drop_wire[why]++;
    } else {
        rx->stats.msgs_refused++;
    }
    rx->stats.msgs_skipped++;
    return 0;
}

/* Finishes the active snapshot if the message ending at 'last_seq' is its
 * last.  Returns 0 or an error after fail_burst(). */
static int
maybe_finish_snapshot(struct receiver *rx, uint64_t last_seq)
{
    struct ds_state st;
    int error;

    datastore_get_state(rx->ds, &st);
    if (st.snapshot != DS_SNAPSHOT_ACTIVE || !st.snapshot_end
        || last_seq < st.snapshot_end) {
        return 0;
    }
    error = datastore_snapshot_finish(rx->ds, &rx->log_snapshot_deleted);
    if (error) {
        fail_burst(rx, error, "finishing the snapshot");
        return error;
    }
    rx->log_snapshot_finished = true;
    rx->stats.snapshots_finished++;
    return 0;
}

/* Bookkeeping after the message ending at 'last_seq' was applied or
 * skipped. */
static void
message_done(struct receiver *rx, uint64_t last_seq)
{
    rx->stats.msgs_applied++;
    rx->next_seq = last_seq + 1;
    rx->ack_due = true;
    maybe_finish_snapshot(rx, last_seq);
}

/* Frees the value texts of the first 'n' records of 'recs' and the
 * array. */
static void
free_records(struct ds_record *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *) recs[i].value);
    }
    free(recs);
}

/* Converts 'batch' (borrowed) into datastore records: the keys are
 * borrowed from 'batch', the values are new JSON texts.  Returns the array
 * (free it with free_records()) or NULL if out of memory. */
static struct ds_record *
batch_to_records(const struct chan_batch *batch)
{
    struct ds_record *recs = calloc(batch->n ? batch->n : 1, sizeof *recs);

    if (!recs) {
        return NULL;
    }
    for (size_t i = 0; i < batch->n; i++) {
        const struct chan_record *r = &batch->records[i];

        recs[i].key = r->key;
        recs[i].version = r->version;
        if (r->op == CHAN_OP_PUT) {
            recs[i].op = DS_PUT;
            recs[i].value = json_dumps(r->value,
                                       JSON_COMPACT | JSON_ENCODE_ANY);
            if (!recs[i].value) {
                free_records(recs, i);
                return NULL;
            }
        } else {
            recs[i].op = DS_DELETE;
        }
    }
    return recs;
}

/* Applies the complete message 'msg', which arrived with its last frame,
 * in the burst's open transaction. */
static void
apply_message(struct receiver *rx, const struct chan_msg *msg)
{
    struct chan_batch batch;
    struct ds_record *recs;
    enum chan_wire_error werr;
    int error;

    chan_batch_init(&batch);
    werr = chan_batch_decode(msg->data, msg->len, NULL, &batch);
    if (werr) {
        if (!skip_message(rx, msg->epoch, msg->first_seq, msg->last_seq,
                          werr, NULL)) {
            message_done(rx, msg->last_seq);
        }
        return;
    }

    recs = batch_to_records(&batch);
    if (!recs) {
        fail_burst(rx, ENOMEM, "applying a message");
        chan_batch_destroy(&batch);
        return;
    }
    error = datastore_apply(rx->ds, msg->epoch, msg->last_seq, recs,
                            batch.n, NULL);
    if (!error) {
        struct ds_state st;

        rx->stats.rx_data++;
        rx->stats.records_applied += batch.n;
        datastore_get_state(rx->ds, &st);
        if (st.snapshot == DS_SNAPSHOT_ACTIVE) {
            rx->snapshot_records += batch.n;
        }
        message_done(rx, msg->last_seq);
    } else if (error == EINVAL && datastore_in_transaction(rx->ds)) {
        /* A record the datastore refuses; the frame had no effect. */
        if (!skip_message(rx, msg->epoch, msg->first_seq, msg->last_seq, 0,
                          datastore_last_error())) {
            message_done(rx, msg->last_seq);
        }
    } else {
        fail_burst(rx, error, "applying a message");
    }
    free_records(recs, batch.n);
    chan_batch_destroy(&batch);
}

static void
handle_data(struct receiver *rx, const struct chan_wire_header *h,
            const uint8_t *payload, long long now)
{
    enum chan_wire_error werr;
    struct chan_msg msg;
    struct ds_state st;
    bool complete;

    enter_session(rx, now);
    if (h->seq < rx->next_seq) {
        rx->stats.rx_data++;
        rx->stats.rx_duplicate++;
        rx->ack_due = true;
        return;
    } else if (h->seq > rx->next_seq) {
        rx->stats.drop_gap++;
        rx->gap_ack_due = true;
        VLOG_DBG_RL(&dbg_rl, "gap: got seq %"PRIu64", expected %"PRIu64,
                    h->seq, rx->next_seq);
        return;
    } else if (rx->burst_failed) {
        rx->stats.drop_txn++;
        return;
    }

    werr = chan_reasm_feed(rx->reasm, h, payload, &msg, &complete);
    if (werr == CHAN_WIRE_ERR_NOMEM) {
        rx->stats.drop_wire[werr]++;
        VLOG_ERR_RL(&rl, "out of memory reassembling a message; the host "
                    "will retransmit");
        reset_to_position(rx);
    } else if (werr) {
        /* The partial message (if any) is gone; skip through this frame,
         * so that the remaining chunks of a broken message are skipped one
         * by one too and the channel moves on. */
        if (!ensure_txn(rx)) {
            datastore_get_state(rx->ds, &st);
            if (!skip_message(rx, h->epoch, st.position + 1, h->seq, werr,
                              NULL)) {
                message_done(rx, h->seq);
            }
        }
    } else if (!complete) {
        /* A chunk of a message still being reassembled: acknowledge it (see
         * send_ack()) so that the host's window moves on and a message of
         * any number of chunks gets through. */
        rx->stats.rx_data++;
        rx->next_seq = h->seq + 1;
        rx->ack_due = true;
    } else if (!ensure_txn(rx)) {
        apply_message(rx, &msg);
    }
}

/* HELLO from the host: it has no session with us (it restarted, or lost
 * track); answer with our HELLO at once, and until we are in a session
 * again, every second. */
static void
handle_host_hello(struct receiver *rx, const struct chan_wire_header *h,
                  const uint8_t *payload)
{
    enum chan_wire_error werr;
    json_t *obj;

    werr = chan_payload_decode_object(payload, h->payload_len, NULL, &obj);
    if (werr) {
        rx->stats.drop_wire[werr]++;
        VLOG_DBG_RL(&dbg_rl, "dropped HELLO with bad payload: %s",
                    chan_wire_strerror(werr));
        return;
    }
    note_host_mtu(rx, obj, true);
    json_decref(obj);           /* Nothing else in it is used. */
    rx->stats.rx_hello++;
    if (rx->in_session) {
        VLOG_INFO("host has no session with us (epoch %"PRIu32" in its "
                  "HELLO); answering with HELLO", h->epoch);
    }
    rx->in_session = false;
    rx->hello_due = true;
}

/* ACK from the host: an acknowledgement of the upstream stream, for the
 * publisher. */
static void
handle_upstream_ack(struct receiver *rx, const struct chan_wire_header *h,
                    const uint8_t *payload, long long now)
{
    enum chan_wire_error werr;
    json_t *obj;

    if (!rx->cfg.upstream_ack) {
        rx->stats.drop_type++;
        VLOG_DBG_RL(&dbg_rl, "dropped ACK frame from the host (nothing "
                    "published upstream)");
        return;
    }
    werr = chan_payload_decode_object(payload, h->payload_len, NULL, &obj);
    if (werr) {
        rx->stats.drop_wire[werr]++;
        VLOG_DBG_RL(&dbg_rl, "dropped ACK with bad payload: %s",
                    chan_wire_strerror(werr));
        return;
    }
    rx->stats.rx_upstream_ack++;
    note_host_mtu(rx, obj, false);
    rx->cfg.upstream_ack(h, obj, now, rx->cfg.upstream_aux);
    json_decref(obj);
}

/* Input. */

void
receiver_input(struct receiver *rx, const uint8_t *payload, size_t len,
               uint32_t src_ip, uint16_t src_port, long long now)
{
    struct chan_wire_header h;
    const uint8_t *body;
    enum chan_wire_error werr;
    uint32_t generation;
    struct ds_state st;

    rx->stats.rx_datagrams++;
    if (len > rx->stats.rx_max_frame) {
        rx->stats.rx_max_frame = len;
    }
    if (src_ip != rx->cfg.host_ip || src_port != rx->cfg.host_port) {
        rx->stats.drop_source++;
        VLOG_DBG_RL(&dbg_rl, "dropped datagram from "IP_FMT":%u (not the "
                    "host endpoint)", IP_ARGS(src_ip), src_port);
        return;
    }
    werr = keyring_decode_first(&rx->keys, rx->rx_generation, payload, len,
                                &h, &body, &generation);
    if (werr) {
        rx->stats.drop_wire[werr]++;
        if (werr == CHAN_WIRE_ERR_AUTH) {
            char gens[128];

            VLOG_WARN_RL(&rl, "dropped frame of %zu bytes from the host: "
                         "no key verifies it (key generations loaded: %s%s)",
                         len, keyring_format(&rx->keys, gens, sizeof gens),
                         rx->keys.n ? "" : ", so only the empty key");
        } else {
            VLOG_DBG_RL(&dbg_rl, "dropped frame of %zu bytes: %s", len,
                        chan_wire_strerror(werr));
        }
        return;
    }
    if (generation) {
        const struct keyring_key *k = keyring_find(&rx->keys, generation);
        rx->verified[k - rx->keys.keys]++;
    }
    if (h.vid != rx->cfg.vid) {
        rx->stats.drop_vid++;
        VLOG_DBG_RL(&dbg_rl, "dropped frame for vid %u (ours is %u)",
                    h.vid, rx->cfg.vid);
        return;
    }
    if (generation != rx->rx_generation) {
        char was[32] = "";

        if (rx->rx_generation) {
            snprintf(was, sizeof was, " (was generation %"PRIu32")",
                     rx->rx_generation);
        } else if (rx->stats.rx_generation_changes) {
            snprintf(was, sizeof was, " (was the empty key)");
        }
        if (generation) {
            VLOG_INFO("host sends with key generation %"PRIu32"%s; "
                      "answering with it", generation, was);
        } else {
            VLOG_INFO("host sends with the empty key%s", was);
        }
        rx->rx_generation = generation;
        rx->stats.rx_generation_changes++;
    }

    datastore_get_state(rx->ds, &st);
    switch (h.type) {
    case CHAN_WIRE_SYNC:
        handle_sync(rx, &h, body, now);
        break;
    case CHAN_WIRE_DATA:
        if (!st.host_epoch || h.epoch != st.host_epoch) {
            other_epoch(rx, &h);
        } else {
            handle_data(rx, &h, body, now);
        }
        break;
    case CHAN_WIRE_HEARTBEAT:
        if (!st.host_epoch || h.epoch != st.host_epoch) {
            other_epoch(rx, &h);
        } else {
            json_t *obj;
            rx->stats.rx_heartbeat++;
            if (h.payload_len
                && !chan_payload_decode_object(body, h.payload_len, NULL,
                                               &obj)) {
                note_host_mtu(rx, obj, false);
                json_decref(obj);
            }
            rx->ack_due = true;
            enter_session(rx, now);
        }
        break;
    case CHAN_WIRE_HELLO:
        handle_host_hello(rx, &h, body);
        break;
    case CHAN_WIRE_ACK:
        handle_upstream_ack(rx, &h, body, now);
        break;
    case CHAN_WIRE_CHUNK:
    case CHAN_WIRE_XFER:
        if (rx->cfg.xfer) {
            rx->stats.rx_xfer++;
            rx->cfg.xfer(&h, body, now, rx->cfg.xfer_aux);
            break;
        }
        /* fall through */
    default:
        rx->stats.drop_type++;
        VLOG_DBG_RL(&dbg_rl, "dropped %s frame from the host",
                    chan_wire_type_name(h.type));
        break;
    }
}

void
receiver_flush(struct receiver *rx, long long now)
{
    if (datastore_in_transaction(rx->ds)) {
        int error = datastore_commit(rx->ds);

        if (error) {
            fail_burst(rx, error, "committing");
        } else {
            rx->stats.commits++;
        }
    }
    if (rx->log_snapshot_finished) {
        struct ds_state st;

        datastore_get_state(rx->ds, &st);
        VLOG_INFO("snapshot of host epoch %"PRIu32" complete at seq %"PRIu64
                  ": %"PRIu64" records received, %"PRIu64" stale records "
                  "deleted", st.host_epoch, st.position,
                  rx->snapshot_records, rx->log_snapshot_deleted);
        rx->log_snapshot_finished = false;
        rx->snapshot_records = 0;
    }
    rx->burst_failed = false;

    if (rx->ack_due) {
        send_ack(rx);
        rx->ack_due = false;
        rx->gap_ack_due = false;
    } else if (rx->gap_ack_due
               && now - rx->last_gap_ack >= RECEIVER_GAP_ACK_MIN_MS) {
        send_ack(rx);
        rx->last_gap_ack = now;
        rx->gap_ack_due = false;
    }
    maybe_send_hello(rx, now);
}

void
receiver_run(struct receiver *rx, long long now)
{
    if (datastore_in_transaction(rx->ds)) {
        receiver_flush(rx, now);
    }
    if (rx->in_session && now - rx->last_rx >= RECEIVER_LIVENESS_MS) {
        rx->in_session = false;
        rx->stats.sessions_lost++;
        rx->hello_due = true;
        VLOG_WARN("nothing from the host for %d ms; sending HELLO",
                  RECEIVER_LIVENESS_MS);
    }
    if (rx->gap_ack_due
        && now - rx->last_gap_ack >= RECEIVER_GAP_ACK_MIN_MS) {
        send_ack(rx);
        rx->last_gap_ack = now;
        rx->gap_ack_due = false;
    }
    maybe_send_hello(rx, now);
}

static long long
min_ll(long long a, long long b)
{
    return a < b ? a : b;
}

long long
receiver_next_wakeup(const struct receiver *rx, long long now)
{
    long long next = LLONG_MAX;

    if (datastore_in_transaction(rx->ds)) {
        return now;
    }
    if (!rx->in_session) {
        next = min_ll(next, rx->last_hello + rx->hello_interval);
    } else {
        next = min_ll(next, rx->last_rx + RECEIVER_LIVENESS_MS);
    }
    if (rx->hello_due) {
        next = min_ll(next, rx->last_hello + RECEIVER_HELLO_MIN_MS);
    }
    if (rx->gap_ack_due) {
        next = min_ll(next, rx->last_gap_ack + RECEIVER_GAP_ACK_MIN_MS);
    }
    return next;
}

bool
receiver_in_session(const struct receiver *rx)
{
    return rx->in_session;
}

uint64_t
receiver_next_seq(const struct receiver *rx)
{
    return rx->next_seq;
}

void
receiver_get_stats(const struct receiver *rx, struct receiver_stats *stats)
{
    *stats = rx->stats;
}

static void
put_counter(json_t *obj, const char *name, uint64_t value)
{
    if (value) {
        json_object_set_new(obj, name, json_integer((json_int_t) value));
    }
}

json_t *
receiver_status_json(const struct receiver *rx, long long now)
{
    const struct receiver_stats *s = &rx->stats;
    json_t *counters = json_object();
    struct ds_state st;

#define COUNTER(NAME) put_counter(counters, #NAME, s->NAME)
    COUNTER(rx_datagrams);
    COUNTER(rx_data);
    COUNTER(rx_sync);
    COUNTER(rx_heartbeat);
    COUNTER(rx_hello);
    COUNTER(rx_duplicate);
    COUNTER(rx_sync_repeat);
    COUNTER(rx_generation_changes);
    COUNTER(rx_upstream_ack);
    COUNTER(rx_xfer);
    COUNTER(drop_source);
    COUNTER(drop_vid);
    COUNTER(drop_type);
    COUNTER(drop_epoch);
    COUNTER(drop_gap);
    COUNTER(drop_sync_payload);
    COUNTER(drop_sync_guest);
    COUNTER(drop_txn);
    COUNTER(msgs_applied);
    COUNTER(records_applied);
    COUNTER(msgs_skipped);
    COUNTER(msgs_refused);
    COUNTER(commits);
    COUNTER(commit_errors);
    COUNTER(snapshots_begun);
    COUNTER(snapshots_finished);
    COUNTER(sessions_lost);
    COUNTER(tx_ack);
    COUNTER(tx_hello);
    COUNTER(tx_errors);
    COUNTER(rx_max_frame);
#undef COUNTER
    for (int i = 1; i < CHAN_WIRE_N_ERRORS; i++) {
        char name[96];

        snprintf(name, sizeof name, "drop_%s", chan_wire_error_name(i));
        put_counter(counters, name, s->drop_wire[i]);
    }

    json_t *verified = json_object();
    for (size_t i = 0; i < rx->keys.n; i++) {
        char gen[16];

        snprintf(gen, sizeof gen, "%"PRIu32, rx->keys.keys[i].generation);
        json_object_set_new(verified, gen,
                            json_integer((json_int_t) rx->verified[i]));
    }
    uint32_t tx_gen = receiver_tx_generation(rx);
    json_t *keys = json_pack(
        "{s:o, s:o, s:o, s:I, s:o}",
        "generations", keyring_generations_json(&rx->keys),
        "rx_generation", (rx->rx_generation
                          ? json_integer(rx->rx_generation) : json_null()),
        "tx_generation", tx_gen ? json_integer(tx_gen) : json_null(),
        "auth_failures", (json_int_t) s->drop_wire[CHAN_WIRE_ERR_AUTH],
        "verified", verified);

    json_t *mtu = json_pack("{sI so sI}", "local", (json_int_t) rx->mtu,
                            "host", (rx->host_mtu
                                     ? json_integer(rx->host_mtu)
                                     : json_null()),
                            "effective", (json_int_t) receiver_mtu(rx));

    datastore_get_state(rx->ds, &st);
    return json_pack("{sI sI sI ss sI sb sI sI sI sI so so so}",
                     "host_epoch", (json_int_t) st.host_epoch,
                     "guest_epoch", (json_int_t) st.guest_epoch,
                     "position", (json_int_t) st.position,
                     "snapshot", ds_snapshot_to_string(st.snapshot),
                     "snapshot_end", (json_int_t) st.snapshot_end,
                     "in_session", rx->in_session,
                     "next_seq", (json_int_t) rx->next_seq,
                     "last_rx_ms_ago", (json_int_t) (now - rx->last_rx),
                     "frames_applied", (json_int_t) st.frames_applied,
                     "ops_applied", (json_int_t) st.ops_applied,
                     "keys", keys,
                     "mtu", mtu,
                     "counters", counters);
}
