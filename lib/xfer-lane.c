/* xfer-lane: see xfer-lane.h. */

#include <config.h>
#include "xfer-lane.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan-wire.h"
#include "content-store.h"
#include "list.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(xfer_lane);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

/* An object this lane pulls. */
struct pull {
    struct list node;           /* In xfer_lane's 'pulls'. */
    char digest[XFER_DIGEST_LEN + 1];
    uint64_t size;
    uint32_t chunk_size;
    uint32_t id;                /* Transfer id: the frames' epoch. */
    struct xfer_rx *rx;
    struct content_partial *partial;
    unsigned int since_checkpoint;  /* Chunks written since the last. */
    unsigned int checkpoint_every;  /* Chunks between checkpoints. */
    long long last_checkpoint;
    long long started;
    long long last_chunk;       /* When the last new chunk arrived. */
};

/* An open file the lane serves from. */
struct served {
    struct list node;           /* In xfer_lane's 'served'. */
    char digest[XFER_DIGEST_LEN + 1];
    uint64_t size;
    int fd;                     /* -1 once closed for idleness. */
    uint8_t *sent;              /* Bitmap of chunks sent (for counting). */
    uint64_t n_chunks;
    uint32_t chunk_size;        /* Of 'sent'; a new size starts over. */
    uint64_t chunks_sent;
    uint64_t sent_again;
    long long last_used;
};

struct xfer_lane {
    struct xfer_lane_config cfg;
    const struct xfer_lane_ops *ops;
    void *aux;
    struct content_store *cs;
    struct list pulls;
    struct list served;
    struct xfer_lane_stats stats;
    uint8_t *frame;             /* Encoding buffer, CHAN_WIRE_MAX_FRAME. */
    uint8_t *chunk;             /* Read buffer, CHAN_WIRE_MAX_PAYLOAD. */
    json_t *recent;             /* The last XFER_LANE_RECENT pulls that
                                 * ended, as pull_json() plus "result" and
                                 * "ms". */
    double serve_tokens;        /* Chunks that may be sent now, with
                                 * 'serve_rate'. */
    long long serve_tokens_at;
    double tokens;              /* Chunks that may be asked for now, with
                                 * 'max_rate' (may go below 0). */
    long long tokens_at;        /* When 'tokens' was last brought up to
                                 * date. */
};

/* Brings the pacing tokens up to 'now'; true if a GET may go out. */
static bool
pace(struct xfer_lane *lane, long long now)
{
    unsigned int rate = lane->cfg.max_rate;
    if (!rate) {
        return true;
    }
    double burst = rate / 10.0 > XFER_DEFAULT_WINDOW ? rate / 10.0
                                                    : XFER_DEFAULT_WINDOW;
    if (now > lane->tokens_at) {
        lane->tokens += (now - lane->tokens_at) * (rate / 1000.0);
        if (lane->tokens > burst) {
            lane->tokens = burst;
        }
        lane->tokens_at = now;
    }
    return lane->tokens > 0;
}

/* When pace() will next allow a GET. */
static long long
pace_wakeup(const struct xfer_lane *lane, long long now)
{
    unsigned int rate = lane->cfg.max_rate;
    if (!rate || lane->tokens > 0) {
        return now;
    }
    long long t = lane->tokens_at + 1
                  + (long long) (-lane->tokens * 1000.0 / rate);
    return t > now ? t : now;
}

struct xfer_lane *
xfer_lane_create(const struct xfer_lane_config *cfg,
                 const struct xfer_lane_ops *ops, void *aux,
                 struct content_store *cs)
{
    struct xfer_lane *lane = xzalloc(sizeof *lane);

    lane->cfg = *cfg;
    if (!lane->cfg.max_size) {
        lane->cfg.max_size = XFER_DEFAULT_MAX_SIZE;
    }
    lane->ops = ops;
    lane->aux = aux;
    lane->cs = cs;
    list_init(&lane->pulls);
    list_init(&lane->served);
    lane->recent = json_array();
    lane->frame = xmalloc(CHAN_WIRE_MAX_FRAME);
    lane->chunk = xmalloc(CHAN_WIRE_MAX_PAYLOAD);
    return lane;
}

static void
served_free(struct served *s)
{
    list_remove(&s->node);
    if (s->fd >= 0) {
        close(s->fd);
    }
    free(s->sent);
    free(s);
}

/* Frees 'p', keeping its partial content's last checkpoint on disk. */
static void
pull_free(struct pull *p)
{
    list_remove(&p->node);
    if (p->partial) {
        content_partial_close(p->partial);
    }
    xfer_rx_destroy(p->rx);
    free(p);
}

void
xfer_lane_destroy(struct xfer_lane *lane)
{
    if (!lane) {
        return;
    }
    xfer_lane_reset(lane);
    json_decref(lane->recent);
    free(lane->frame);
    free(lane->chunk);
    free(lane);
}

void
xfer_lane_reset(struct xfer_lane *lane)
{
    struct pull *p;
    LIST_FOR_EACH_SAFE (p, node, &lane->pulls) {
        pull_free(p);
    }
    struct served *s;
    LIST_FOR_EACH_SAFE (s, node, &lane->served) {
        served_free(s);
    }
}

/* Sending. */

/* Encodes and sends one frame of 'type' for transfer 'id'. */
static int
send_frame(struct xfer_lane *lane, uint8_t type, uint32_t id, uint64_t seq,
           const void *payload, size_t len)
{
    struct chan_wire_header h = {
        .type = type,
        .vid = lane->cfg.vid,
        .epoch = id,
        .seq = seq,
        .chunk_count = 1,
    };
    const uint8_t *key = NULL;
    size_t key_len = 0, frame_len;

    lane->ops->key(lane->aux, &key, &key_len);
    enum chan_wire_error error = chan_wire_encode(&h, payload, len, key,
                                                  key_len, lane->frame,
                                                  CHAN_WIRE_MAX_FRAME,
                                                  &frame_len);
    if (error) {
        VLOG_WARN_RL(&rl, "cannot encode %s frame: %s",
                     chan_wire_type_name(type), chan_wire_strerror(error));
        lane->stats.tx_errors++;
        return EINVAL;
    }
    int err = lane->ops->send(lane->frame, frame_len, lane->aux);
    if (err) {
        lane->stats.tx_errors++;
    }
    return err;
}

static int
send_msg(struct xfer_lane *lane, uint32_t id, const struct xfer_msg *msg)
{
    json_t *j = xfer_msg_to_json(msg);
    char *text = json_dumps(j, JSON_COMPACT);
    int error;

    json_decref(j);
    if (!text) {
        out_of_memory();
    }
    error = send_frame(lane, CHAN_WIRE_XFER, id, 0, text, strlen(text));
    free(text);
    return error;
}

static void
send_fail(struct xfer_lane *lane, uint32_t id, const char *digest,
          const char *error, const char *reason)
{
    struct xfer_msg msg = { .op = XFER_OP_FAIL };

    snprintf(msg.digest, sizeof msg.digest, "%s", digest);
    snprintf(msg.error, sizeof msg.error, "%s", error);
    snprintf(msg.reason, sizeof msg.reason, "%s", reason ? reason : "");
    send_msg(lane, id, &msg);
}

/* Pulls. */

static struct pull *
find_pull(const struct xfer_lane *lane, const char *digest)
{
    struct pull *p;
    LIST_FOR_EACH (p, node, &lane->pulls) {
        if (!strcmp(p->digest, digest)) {
            return p;
        }
    }
    return NULL;
}

static struct pull *
find_pull_by_id(const struct xfer_lane *lane, uint32_t id)
{
    struct pull *p;
    LIST_FOR_EACH (p, node, &lane->pulls) {
        if (p->id == id) {
            return p;
        }
    }
    return NULL;
}

/* Chunks between checkpoints for an object of 'n_chunks': about a 32nd of
 * the object, so that a restart costs a small share of any object, within
 * XFER_LANE_CHECKPOINT_MIN..XFER_LANE_CHECKPOINT_CHUNKS. */
static unsigned int
checkpoint_interval(uint64_t n_chunks)
{
    uint64_t every = n_chunks / 32;
    return (every < XFER_LANE_CHECKPOINT_MIN ? XFER_LANE_CHECKPOINT_MIN
            : every > XFER_LANE_CHECKPOINT_CHUNKS
            ? XFER_LANE_CHECKPOINT_CHUNKS : every);
}

static uint32_t
new_id(const struct xfer_lane *lane)
{
    uint32_t id;

    do {
        if (getrandom(&id, sizeof id, 0) != sizeof id) {
            id = (uint32_t) random() ^ (uint32_t) time_msec();
        }
    } while (!id || find_pull_by_id(lane, id));
    return id;
}

void
xfer_lane_set_mtu(struct xfer_lane *lane, unsigned int mtu)
{
    lane->cfg.mtu = mtu;
}

unsigned int
xfer_lane_mtu(const struct xfer_lane *lane)
{
    return lane->cfg.mtu ? lane->cfg.mtu : CHAN_WIRE_DEFAULT_MTU;
}

int
xfer_lane_pull(struct xfer_lane *lane, const char *digest, uint64_t size,
               long long now, char **errorp)
{
    *errorp = NULL;
    if (find_pull(lane, digest)) {
        return EEXIST;
    }
    if (size > lane->cfg.max_size) {
        *errorp = xasprintf("%"PRIu64" bytes is above the transfer limit "
                            "of %"PRIu64" bytes", size, lane->cfg.max_size);
        return EFBIG;
    }
    uint32_t chunk_size = chan_wire_max_payload(xfer_lane_mtu(lane));
    struct content_partial *partial = content_partial_open(lane->cs, digest,
                                                           size, chunk_size,
                                                           errorp);
    if (!partial) {
        return EIO;
    }
    struct xfer_rx *rx = xfer_rx_create(size, chunk_size, &lane->cfg.rx);
    if (!rx) {
        content_partial_close(partial);
        *errorp = xasprintf("%"PRIu64" bytes is too large to transfer",
                            size);
        return EFBIG;
    }
    size_t n_bytes;
    const uint8_t *bitmap = content_partial_bitmap(partial, &n_bytes);
    xfer_rx_load_bitmap(rx, bitmap, n_bytes);

    struct pull *p = xzalloc(sizeof *p);
    snprintf(p->digest, sizeof p->digest, "%s", digest);
    p->size = size;
    p->chunk_size = chunk_size;
    p->rx = rx;
    p->partial = partial;
    p->id = new_id(lane);
    p->started = p->last_chunk = p->last_checkpoint = now;
    p->checkpoint_every = checkpoint_interval(xfer_n_chunks(size,
                                                            chunk_size));
    list_push_back(&lane->pulls, &p->node);
    lane->stats.pulls_started++;

    struct xfer_rx_stats st;
    xfer_rx_get_stats(rx, &st);
    if (st.had_at_start) {
        VLOG_INFO("transfer %.12s: resuming with %"PRIu64" of %"PRIu64
                  " chunks", digest, st.had_at_start, st.n_chunks);
    } else {
        VLOG_INFO("transfer %.12s: pulling %"PRIu64" bytes in %"PRIu64
                  " chunks", digest, size, st.n_chunks);
    }
    return 0;
}

bool
xfer_lane_is_pulling(const struct xfer_lane *lane, const char *digest)
{
    return find_pull(lane, digest) != NULL;
}

/* Makes the chunks of 'p' written so far durable. */
static void
checkpoint(struct xfer_lane *lane, struct pull *p, long long now)
{
    size_t n_bytes;
    const uint8_t *bitmap = xfer_rx_bitmap(p->rx, &n_bytes);
    int error = content_partial_checkpoint(p->partial, bitmap, n_bytes);

    if (error) {
        VLOG_WARN_RL(&rl, "transfer %.12s: checkpoint failed: %s",
                     p->digest, strerror(error));
    } else {
        lane->stats.checkpoints++;
    }
    p->since_checkpoint = 0;
    p->last_checkpoint = now;
}

void
xfer_lane_cancel(struct xfer_lane *lane, const char *digest)
{
    struct pull *p = find_pull(lane, digest);
    if (p) {
        if (p->since_checkpoint) {
            checkpoint(lane, p, p->last_chunk);
        }
        pull_free(p);
    }
}

/* Ends pull 'p' with 'error' (NULL: success) and tells the owner. */
static json_t *pull_json(const struct pull *, long long now);

static void
pull_end(struct xfer_lane *lane, struct pull *p, const char *error,
         const char *reason, long long now)
{
    char digest[XFER_DIGEST_LEN + 1];

    /* Keep its final counters for a while, for transfer/list. */
    json_t *done = pull_json(p, now);
    json_object_set_new(done, "result", json_string(error ? error : "ok"));
    json_object_set_new(done, "ms", json_integer(now - p->started));
    json_array_append_new(lane->recent, done);
    while (json_array_size(lane->recent) > XFER_LANE_RECENT) {
        json_array_remove(lane->recent, 0);
    }

    memcpy(digest, p->digest, sizeof digest);
    if (error) {
        lane->stats.pulls_failed++;
    } else {
        lane->stats.pulls_done++;
    }
    pull_free(p);
    lane->ops->pulled(lane->aux, digest, error, reason);
}

/* Every chunk of 'p' is held: verifies and completes the content. */
static void
pull_finish(struct xfer_lane *lane, struct pull *p, long long now)
{
    struct content_partial *partial = p->partial;
    char *error = NULL;
    int err;

    p->partial = NULL;
    err = content_partial_finish(partial, &error);
    if (!err) {
        struct xfer_msg msg = { .op = XFER_OP_DONE };

        snprintf(msg.digest, sizeof msg.digest, "%s", p->digest);
        send_msg(lane, p->id, &msg);
        VLOG_INFO("transfer %.12s: complete and verified (%"PRIu64" bytes "
                  "in %lld ms)", p->digest, p->size, now - p->started);
        pull_end(lane, p, NULL, NULL, now);
    } else {
        VLOG_WARN("transfer %.12s: %s", p->digest, error);
        pull_end(lane, p, err == EBADMSG ? "digest" : "store", error, now);
    }
    free(error);
}

static void
receive_chunk(struct xfer_lane *lane, const struct chan_wire_header *h,
              const uint8_t *payload, long long now)
{
    struct pull *p = find_pull_by_id(lane, h->epoch);

    if (!p) {
        lane->stats.chunks_stray++;
        return;
    }
    switch (xfer_rx_chunk(p->rx, h->seq, h->payload_len, now)) {
    case XFER_RX_NEW:
        break;
    case XFER_RX_DUPLICATE:
        lane->stats.chunks_duplicate++;
        return;
    case XFER_RX_OUT_OF_RANGE:
    case XFER_RX_BAD_LENGTH:
    default:
        lane->stats.chunks_stray++;
        VLOG_WARN_RL(&rl, "transfer %.12s: dropped chunk %"PRIu64" of %u "
                     "bytes (not a chunk of this object)", p->digest,
                     h->seq, h->payload_len);
        return;
    }
    int error = content_partial_write(p->partial, h->seq, payload,
                                      h->payload_len);
    if (error) {
        xfer_rx_lost(p->rx, h->seq);
        VLOG_WARN_RL(&rl, "transfer %.12s: cannot store chunk %"PRIu64": "
                     "%s", p->digest, h->seq, strerror(error));
        return;
    }
    lane->stats.chunks_received++;
    p->last_chunk = now;
    p->since_checkpoint++;
    if (xfer_rx_is_complete(p->rx)) {
        pull_finish(lane, p, now);
    } else if (p->since_checkpoint >= p->checkpoint_every) {
        checkpoint(lane, p, now);
    }
}

/* Sends the GETs pull 'p' has to send at 'now'. */
static void
pull_run(struct xfer_lane *lane, struct pull *p, long long now)
{
    struct xfer_msg msg = { .op = XFER_OP_GET };

    snprintf(msg.digest, sizeof msg.digest, "%s", p->digest);
    msg.size = p->size;
    msg.chunk_size = p->chunk_size;
    while (pace(lane, now)
           && (msg.n_ranges = xfer_rx_next_get(p->rx, now, msg.ranges)) > 0) {
        lane->stats.gets_sent++;
        for (size_t i = 0; i < msg.n_ranges; i++) {
            lane->tokens -= msg.ranges[i].count;
        }
        if (send_msg(lane, p->id, &msg)) {
            break;
        }
    }
    if (p->since_checkpoint
        && now - p->last_checkpoint >= XFER_LANE_CHECKPOINT_MS) {
        checkpoint(lane, p, now);
    }
}

/* Serving. */

static struct served *
find_served(const struct xfer_lane *lane, const char *digest)
{
    struct served *s;
    LIST_FOR_EACH (s, node, &lane->served) {
        if (!strcmp(s->digest, digest)) {
            return s;
        }
    }
    return NULL;
}

/* Returns the served entry for the GET 'msg', with its file open, or NULL
 * after answering with FAIL. */
static struct served *
open_served(struct xfer_lane *lane, uint32_t id, const struct xfer_msg *msg,
            long long now)
{
    struct served *s = find_served(lane, msg->digest);
    if (s && s->fd >= 0 && s->size == msg->size) {
        s->last_used = now;
        return s;
    }

    char *path = NULL, *reason = NULL;
    const char *error = NULL;
    int fd = -1;
    struct stat st;

    if (msg->size > lane->cfg.max_size) {
        error = XFER_ERR_TOO_BIG;
        reason = xasprintf("%"PRIu64" bytes is above the transfer limit of "
                           "%"PRIu64" bytes", msg->size, lane->cfg.max_size);
    } else {
        error = lane->ops->resolve(lane->aux, msg->digest, msg->size, &path,
                                   &reason);
    }
    if (!error) {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            error = XFER_ERR_IO;
            reason = xasprintf("cannot open %s: %s", path, strerror(errno));
        } else if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
            error = XFER_ERR_IO;
            reason = xasprintf("%s is not a regular file", path);
        } else if ((uint64_t) st.st_size != msg->size) {
            error = XFER_ERR_SIZE;
            reason = xasprintf("%s has %lld bytes, not %"PRIu64, path,
                               (long long) st.st_size, msg->size);
        }
    }
    free(path);
    if (error) {
        if (fd >= 0) {
            close(fd);
        }
        lane->stats.gets_refused++;
        VLOG_WARN_RL(&rl, "refused GET of %.12s: %s", msg->digest,
                     reason ? reason : error);
        send_fail(lane, id, msg->digest, error, reason);
        free(reason);
        return NULL;
    }
    free(reason);
    if (!s) {
        s = xzalloc(sizeof *s);
        snprintf(s->digest, sizeof s->digest, "%s", msg->digest);
        s->fd = -1;
        list_push_back(&lane->served, &s->node);
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    s->fd = fd;
    s->size = msg->size;
    s->last_used = now;
    return s;
}

/* Brings the serving tokens up to 'now'; true if one more chunk may be
 * sent (and takes it). */
static bool
serve_token(struct xfer_lane *lane, long long now)
{
    unsigned int rate = lane->cfg.serve_rate;
    if (!rate) {
        return true;
    }
    double burst = rate / 10.0 > 4 * XFER_MAX_GET_CHUNKS
                   ? rate / 10.0 : 4 * XFER_MAX_GET_CHUNKS;
    if (now > lane->serve_tokens_at) {
        lane->serve_tokens += (now - lane->serve_tokens_at) * (rate / 1000.0);
        if (lane->serve_tokens > burst) {
            lane->serve_tokens = burst;
        }
        lane->serve_tokens_at = now;
    }
    if (lane->serve_tokens < 1) {
        return false;
    }
    lane->serve_tokens--;
    return true;
}

/* Notes that chunk 'index' of 's' is sent, for the "sent again" count. */
static void
note_sent(struct xfer_lane *lane, struct served *s, uint32_t chunk_size,
          uint64_t index)
{
    if (s->chunk_size != chunk_size || !s->sent) {
        free(s->sent);
        s->chunk_size = chunk_size;
        s->n_chunks = xfer_n_chunks(s->size, chunk_size);
        s->sent = xzalloc((s->n_chunks + 7) / 8);
    }
    if (index < s->n_chunks) {
        uint8_t bit = 1u << (index % 8);
        if (s->sent[index / 8] & bit) {
            s->sent_again++;
            lane->stats.chunks_sent_again++;
        }
        s->sent[index / 8] |= bit;
    }
    s->chunks_sent++;
    lane->stats.chunks_sent++;
}

/* Answers GET 'msg' for transfer 'id'. */
static void
serve_get(struct xfer_lane *lane, uint32_t id, const struct xfer_msg *msg,
          long long now)
{
    if (msg->chunk_size > chan_wire_max_payload(xfer_lane_mtu(lane))) {
        lane->stats.gets_refused++;
        char *reason = xasprintf("chunks of %"PRIu32" bytes do not fit this "
                                 "side's MTU", msg->chunk_size);
        send_fail(lane, id, msg->digest, XFER_ERR_CHUNK_SIZE, reason);
        free(reason);
        return;
    }
    struct served *s = open_served(lane, id, msg, now);
    if (!s) {
        return;
    }
    lane->stats.gets_served++;
    for (size_t i = 0; i < msg->n_ranges; i++) {
        const struct xfer_range *r = &msg->ranges[i];
        for (uint64_t index = r->first; index < r->first + r->count;
             index++) {
            if (!serve_token(lane, now)) {
                /* Over the rate: the peer asks again for the rest. */
                lane->stats.chunks_throttled += r->first + r->count - index;
                for (size_t j = i + 1; j < msg->n_ranges; j++) {
                    lane->stats.chunks_throttled += msg->ranges[j].count;
                }
                return;
            }
            uint32_t len = xfer_chunk_len(msg->size, msg->chunk_size, index);
            ssize_t n = len ? pread(s->fd, lane->chunk, len,
                                    (off_t) (index * msg->chunk_size))
                            : 0;
            if (n != (ssize_t) len) {
                lane->stats.gets_refused++;
                send_fail(lane, id, msg->digest, XFER_ERR_IO,
                          "the file changed while it was being sent");
                close(s->fd);
                s->fd = -1;
                return;
            }
            int error = send_frame(lane, CHAN_WIRE_CHUNK, id, index,
                                   lane->chunk, len);
            if (error == EAGAIN || error == EWOULDBLOCK
                || error == ENOBUFS) {
                /* No room: the peer asks again for what it lacks. */
                return;
            } else if (!error) {
                note_sent(lane, s, msg->chunk_size, index);
            }
        }
    }
}

static void
receive_msg(struct xfer_lane *lane, const struct chan_wire_header *h,
            const uint8_t *payload, long long now)
{
    struct xfer_msg msg;
    const char *error = xfer_msg_parse(payload, h->payload_len, &msg);

    if (error) {
        lane->stats.bad_messages++;
        VLOG_WARN_RL(&rl, "dropped XFER message: %s", error);
        return;
    }
    if (msg.op == XFER_OP_GET) {
        serve_get(lane, h->epoch, &msg, now);
        return;
    }

    struct served *s;
    struct pull *p;
    switch (msg.op) {
    case XFER_OP_DONE:
        s = find_served(lane, msg.digest);
        if (s) {
            VLOG_INFO("transfer %.12s: peer verified it (%"PRIu64" chunks "
                      "sent, %"PRIu64" of them again)", s->digest,
                      s->chunks_sent, s->sent_again);
            if (s->fd >= 0) {
                close(s->fd);
                s->fd = -1;
            }
        }
        break;
    case XFER_OP_FAIL:
        p = find_pull_by_id(lane, h->epoch);
        if (p && !strcmp(p->digest, msg.digest)) {
            VLOG_WARN("transfer %.12s: peer refused: %s (%s)", p->digest,
                      msg.reason, msg.error);
            if (p->since_checkpoint) {
                checkpoint(lane, p, now);
            }
            pull_end(lane, p, msg.error, msg.reason, now);
        } else {
            lane->stats.bad_messages++;
        }
        break;
    case XFER_OP_GET:
    default:
        break;
    }
}

void
xfer_lane_input(struct xfer_lane *lane, const struct chan_wire_header *h,
                const uint8_t *payload, long long now)
{
    if (h->type == CHAN_WIRE_CHUNK) {
        receive_chunk(lane, h, payload, now);
    } else if (h->type == CHAN_WIRE_XFER) {
        receive_msg(lane, h, payload, now);
    }
}

void
xfer_lane_close_served(struct xfer_lane *lane, const char *digest)
{
    struct served *s = find_served(lane, digest);
    if (s && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

void
xfer_lane_run(struct xfer_lane *lane, long long now)
{
    struct pull *p;
    LIST_FOR_EACH_SAFE (p, node, &lane->pulls) {
        pull_run(lane, p, now);
    }

    struct served *s;
    LIST_FOR_EACH_SAFE (s, node, &lane->served) {
        if (s->fd >= 0 && now - s->last_used >= XFER_LANE_FILE_IDLE_MS) {
            close(s->fd);
            s->fd = -1;
        }
        if (now - s->last_used >= XFER_LANE_SERVED_IDLE_MS) {
            served_free(s);
        }
    }
}

bool
xfer_lane_is_idle(const struct xfer_lane *lane)
{
    return list_is_empty(&lane->pulls) && list_is_empty(&lane->served);
}

long long
xfer_lane_next_wakeup(const struct xfer_lane *lane, long long now)
{
    long long next = LLONG_MAX;
    const struct pull *p;
    LIST_FOR_EACH (p, node, &lane->pulls) {
        long long t = xfer_rx_next_wakeup(p->rx, now);
        if (lane->cfg.max_rate && lane->tokens <= 0) {
            /* Paced: nothing goes out before the tokens are back. */
            t = pace_wakeup(lane, now);
        }
        if (p->since_checkpoint) {
            long long c = p->last_checkpoint + XFER_LANE_CHECKPOINT_MS;
            t = c < t ? c : t;
        }
        next = t < next ? t : next;
    }
    const struct served *s;
    LIST_FOR_EACH (s, node, &lane->served) {
        long long t = s->last_used + (s->fd >= 0 ? XFER_LANE_FILE_IDLE_MS
                                                 : XFER_LANE_SERVED_IDLE_MS);
        next = t < next ? t : next;
    }
    return next;
}

void
xfer_lane_get_stats(const struct xfer_lane *lane,
                    struct xfer_lane_stats *stats)
{
    *stats = lane->stats;
}

static json_t *
pull_json(const struct pull *p, long long now)
{
    struct xfer_rx_stats st;

    xfer_rx_get_stats(p->rx, &st);
    return json_pack("{ss sI sI sI sI sI sI sI sI sI sI sI sI si si sI}",
                     "digest", p->digest,
                     "size", (json_int_t) p->size,
                     "id", (json_int_t) p->id,
                     "n_chunks", (json_int_t) st.n_chunks,
                     "have", (json_int_t) st.have,
                     "had_at_start", (json_int_t) st.had_at_start,
                     "requested", (json_int_t) st.requested,
                     "rerequested", (json_int_t) st.rerequested,
                     "rerequested_fast", (json_int_t) st.rerequested_fast,
                     "timeouts", (json_int_t) st.timeouts,
                     "received", (json_int_t) st.received,
                     "duplicates", (json_int_t) st.duplicates,
                     "gets", (json_int_t) st.gets,
                     "outstanding", (int) st.outstanding,
                     "rto", (int) st.rto,
                     "idle_ms", (json_int_t) (now - p->last_chunk));
}

json_t *
xfer_lane_status_json(const struct xfer_lane *lane, long long now)
{
    json_t *pulls = json_array();
    const struct pull *p;
    LIST_FOR_EACH (p, node, &lane->pulls) {
        json_array_append_new(pulls, pull_json(p, now));
    }
    json_t *served = json_array();
    const struct served *s;
    LIST_FOR_EACH (s, node, &lane->served) {
        json_array_append_new(served, json_pack(
                                  "{ss sI sI sI}", "digest", s->digest,
                                  "size", (json_int_t) s->size,
                                  "chunks_sent", (json_int_t) s->chunks_sent,
                                  "sent_again", (json_int_t) s->sent_again));
    }
    const struct xfer_lane_stats *c = &lane->stats;
    json_t *counters = json_pack(
        "{sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI}",
        "pulls_started", (json_int_t) c->pulls_started,
        "pulls_done", (json_int_t) c->pulls_done,
        "pulls_failed", (json_int_t) c->pulls_failed,
        "chunks_received", (json_int_t) c->chunks_received,
        "chunks_duplicate", (json_int_t) c->chunks_duplicate,
        "chunks_stray", (json_int_t) c->chunks_stray,
        "gets_sent", (json_int_t) c->gets_sent,
        "gets_served", (json_int_t) c->gets_served,
        "gets_refused", (json_int_t) c->gets_refused,
        "chunks_sent", (json_int_t) c->chunks_sent,
        "chunks_sent_again", (json_int_t) c->chunks_sent_again,
        "chunks_throttled", (json_int_t) c->chunks_throttled,
        "bad_messages", (json_int_t) c->bad_messages,
        "tx_errors", (json_int_t) c->tx_errors,
        "checkpoints", (json_int_t) c->checkpoints);
    return json_pack("{so so sO so}", "pulls", pulls, "served", served,
                     "recent", lane->recent, "counters", counters);
}
