/*
 * xfer-lane: one channel end's file transfer lane (doc/objects.md, "File
 * transfer"): the pulls it runs as a receiver and the GETs it serves as a
 * sender, over the CHUNK and XFER frames of xfer.h.
 *
 * Pulls.  xfer_lane_pull() starts (or resumes) fetching an object into the
 * content store: the partial content is opened (resuming from its last
 * checkpoint), an xfer_rx engine asks the peer for the missing chunks, each
 * chunk that arrives is written to the partial file, and a checkpoint
 * makes them durable every 32nd of the object (at least
 * XFER_LANE_CHECKPOINT_MIN, at most XFER_LANE_CHECKPOINT_CHUNKS chunks) or
 * every XFER_LANE_CHECKPOINT_MS ms.  When every chunk is held the content is
 * verified against its digest and becomes complete; the owner learns the
 * outcome through its 'pulled' callback: success, the peer's FAIL (error
 * name and reason), or "digest" when the content the peer sent does not
 * match (it is then removed).  A pull the owner cancels, or one whose lane
 * is destroyed, keeps its last checkpoint on disk for the next pull of the
 * same digest, from this peer or another.
 *
 * Serving.  A GET is answered with the chunks it names, read from the file
 * that the owner's 'resolve' callback names for the digest (it also says
 * whether the peer may have it at all), or with one FAIL.  The file's size
 * must be the size the GET names.  Open files are kept for a few seconds
 * for the following GETs.
 *
 * Counters (xfer_lane_status_json()): per pull the engine's statistics;
 * per digest served the chunks sent and how many of them had been sent
 * before ("sent_again"), and totals for the lane.
 *
 * Ownership: the lane borrows the content store, which must outlive it.
 * Frames go out through 'send' encoded with the key 'key' gives at that
 * moment.  No logging of payload bytes; refusals are logged rate-limited.
 */
#ifndef XFER_LANE_H
#define XFER_LANE_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xfer.h"

struct chan_wire_header;
struct content_store;

#define XFER_LANE_CHECKPOINT_CHUNKS 512
#define XFER_LANE_CHECKPOINT_MIN 16
#define XFER_LANE_CHECKPOINT_MS 250
#define XFER_LANE_FILE_IDLE_MS 10000    /* Open files kept this long. */
#define XFER_LANE_SERVED_IDLE_MS 60000  /* Served counters kept this long. */
#define XFER_LANE_RECENT 8              /* Ended pulls kept in the status. */

struct xfer_lane_ops {
    /* Sends 'frame' (borrowed).  Returns 0 or an errno value. */
    int (*send)(const uint8_t *frame, size_t len, void *aux);

    /* Stores the key to send with in '*keyp' (borrowed, may be NULL when
     * '*lenp' is 0). */
    void (*key)(void *aux, const uint8_t **keyp, size_t *lenp);

    /* Serving: may the peer have 'digest' ('size' bytes), and from which
     * file?  Returns NULL and sets '*pathp' (the caller frees it), or
     * returns an XFER_ERR_* name and sets '*reasonp' (the caller frees
     * it) to an English reason. */
    const char *(*resolve)(void *aux, const char *digest, uint64_t size,
                           char **pathp, char **reasonp);

    /* A pull ended.  'error' is NULL on success (the content is in the
     * store), else an XFER_ERR_* name from the peer, "digest" (the content
     * did not match its digest), or "store" (the content store failed);
     * 'reason' says more.  Both borrowed for the call.  The pull is gone
     * when this is called. */
    void (*pulled)(void *aux, const char *digest, const char *error,
                   const char *reason);
};

struct xfer_lane_config {
    uint16_t vid;               /* The channel's vid. */
    unsigned int mtu;           /* IP MTU: the chunk size of pulls. */
    uint64_t max_size;          /* Largest object pulled or served; 0:
                                 * XFER_DEFAULT_MAX_SIZE. */
    struct xfer_rx_config rx;   /* Zeros: defaults. */
    unsigned int max_rate;      /* Chunks this lane's pulls ask for per
                                 * second, all pulls together; 0: no
                                 * limit.  For a peer behind a meter (the
                                 * host's meter on a VM's frames), so that
                                 * the pulls stay under it instead of
                                 * losing chunks to it. */
    unsigned int serve_rate;    /* Chunks this lane sends per second at
                                 * most, answering GETs; 0: no limit.  A
                                 * GET beyond it is answered in part (the
                                 * peer asks again), so that one peer's
                                 * GETs cannot take the sender's CPU. */
};

struct xfer_lane;

/* Creates a lane.  'cfg' is copied; 'ops' and 'cs' are borrowed and must
 * outlive the lane.  Returns the lane (the caller frees it with
 * xfer_lane_destroy()). */
struct xfer_lane *xfer_lane_create(const struct xfer_lane_config *cfg,
                                   const struct xfer_lane_ops *ops,
                                   void *aux, struct content_store *cs);
void xfer_lane_destroy(struct xfer_lane *);

/* Sets the IP MTU the lane's frames may take ('mtu' 0: the default): the
 * chunk size of the pulls started from now on (a pull resumed with another
 * chunk size starts over, content-store.h) and the largest chunks it
 * serves. */
void xfer_lane_set_mtu(struct xfer_lane *, unsigned int mtu);
unsigned int xfer_lane_mtu(const struct xfer_lane *);

/* Feeds a decoded, authenticated CHUNK or XFER frame of this channel
 * (header and payload borrowed). */
void xfer_lane_input(struct xfer_lane *, const struct chan_wire_header *,
                     const uint8_t *payload, long long now);

/* Starts pulling 'digest' of 'size' bytes from the peer.  Returns 0, or
 * EEXIST if this lane already pulls it, EFBIG above the size limit, or
 * another errno value from the content store with '*errorp' set (the
 * caller frees it). */
int xfer_lane_pull(struct xfer_lane *, const char *digest, uint64_t size,
                   long long now, char **errorp);

/* True if the lane pulls 'digest'. */
bool xfer_lane_is_pulling(const struct xfer_lane *, const char *digest);

/* Stops pulling 'digest' (if it does), keeping its last checkpoint. */
void xfer_lane_cancel(struct xfer_lane *, const char *digest);

/* Closes the file kept open for serving 'digest', if any: the next GET of
 * it asks 'resolve' again (for an owner that stopped serving a file). */
void xfer_lane_close_served(struct xfer_lane *, const char *digest);

/* Stops every pull, keeping their checkpoints, and forgets served state:
 * for a peer that went away.  Pulls may start again afterwards. */
void xfer_lane_reset(struct xfer_lane *);

void xfer_lane_run(struct xfer_lane *, long long now);
long long xfer_lane_next_wakeup(const struct xfer_lane *, long long now);

/* True if the lane has nothing to run and no wakeup: no pull and nothing
 * served.  Only xfer_lane_input() and xfer_lane_pull() make it busy. */
bool xfer_lane_is_idle(const struct xfer_lane *);

/* Lane totals. */
struct xfer_lane_stats {
    uint64_t pulls_started;
    uint64_t pulls_done;
    uint64_t pulls_failed;
    uint64_t chunks_received;   /* New chunks stored. */
    uint64_t chunks_duplicate;  /* Chunks already held. */
    uint64_t chunks_stray;      /* CHUNKs of no pull of this lane. */
    uint64_t gets_sent;
    uint64_t gets_served;
    uint64_t gets_refused;      /* Answered with FAIL. */
    uint64_t chunks_sent;
    uint64_t chunks_sent_again; /* Sent to this peer before. */
    uint64_t chunks_throttled;  /* Asked for beyond serve_rate, not sent. */
    uint64_t bad_messages;      /* XFER payloads that did not parse. */
    uint64_t tx_errors;         /* Frames 'send' refused. */
    uint64_t checkpoints;
};

void xfer_lane_get_stats(const struct xfer_lane *, struct xfer_lane_stats *);

/* {"pulls": [{"digest", "size", "id", "have", "n_chunks",
 * "had_at_start", "requested", "rerequested", "duplicates", ...}],
 * "served": [{"digest", "chunks_sent", "sent_again"}], "recent": [the
 * last XFER_LANE_RECENT pulls that ended, as in "pulls" with "result"
 * ("ok" or the error) and "ms" (how long they took)], "counters": {...}}.
 * The caller owns it. */
json_t *xfer_lane_status_json(const struct xfer_lane *, long long now);

#endif /* xfer-lane.h */
