/* chand-host's file transfer side: see transfer.h. */

#include <config.h>
#include "transfer.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chan-wire.h"
#include "chandb.h"
#include "channel.h"
#include "content-store.h"
#include "list.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"
#include "xfer-lane.h"

VLOG_DEFINE_THIS_MODULE(transfer);

/* A channel's lane. */
struct lane {
    struct list node;           /* In transfer's 'lanes'. */
    struct list busy_node;      /* In transfer's 'busy', if 'busy'. */
    bool busy;                  /* Not xfer_lane_is_idle() (or was not at
                                 * the last transfer_run()). */
    struct transfer *t;
    struct channel *ch;         /* Borrowed. */
    char *vm;
    struct xfer_lane *lane;
};

/* An object being fetched into the content store. */
struct fetch {
    struct list node;           /* In transfer's 'fetches'. */
    char digest[XFER_DIGEST_LEN + 1];
    uint64_t size;
    json_t *candidates;         /* Array of VM names, in order. */
    json_t *tried;              /* vm -> reason it failed. */
    bool operator;              /* Asked for by the operator. */
    char *source;               /* VM pulled from now, or NULL. */
    long long source_down;      /* When the source's channel went down,
                                 * or 0. */
    char *error;                /* Failed for good: why.  Or NULL. */
    long long started;
};

struct transfer {
    struct chandb *db;          /* Borrowed. */
    struct content_store *cs;
    struct xfer_lane_config lane_cfg;
    struct list lanes;
    struct list busy;           /* The lanes with work: transfer_run() and
                                 * transfer_wait() visit only these. */
    struct list fetches;
    uint64_t needs_seqno;
    uint64_t fetches_done;
    uint64_t fetches_failed;
    uint64_t refused_not_entitled;
    uint64_t refused_no_content;
    uint64_t digest_mismatches; /* Content a VM sent that did not match. */
};

static struct fetch *
find_fetch(const struct transfer *t, const char *digest)
{
    struct fetch *f;
    LIST_FOR_EACH (f, node, &t->fetches) {
        if (!strcmp(f->digest, digest)) {
            return f;
        }
    }
    return NULL;
}

static struct lane *
find_lane(const struct transfer *t, const char *vm)
{
    struct lane *l;
    LIST_FOR_EACH (l, node, &t->lanes) {
        if (!strcmp(l->vm, vm)) {
            return l;
        }
    }
    return NULL;
}

static void
fetch_free(struct fetch *f)
{
    list_remove(&f->node);
    json_decref(f->candidates);
    json_decref(f->tried);
    free(f->source);
    free(f->error);
    free(f);
}

/* Content source for chandb's restore answers. */
static json_t *
content_state(const json_t *digests, void *t_)
{
    struct transfer *t = t_;
    json_t *state = json_object();
    const char *digest;
    const json_t *v;

    json_object_foreach ((json_t *) digests, digest, v) {
        char *path = content_store_lookup(t->cs, digest);
        const struct fetch *f = find_fetch(t, digest);
        if (path) {
            json_object_set_new(state, digest, json_string("present"));
        } else if (f && f->error) {
            json_t *tried = json_array();
            const char *vm;
            json_t *reason;
            json_object_foreach (f->tried, vm, reason) {
                json_array_append_new(tried, json_string(vm));
            }
            json_object_set_new(state, digest,
                                json_pack("{ss so}", "error", f->error,
                                          "tried", tried));
        }
        free(path);
    }
    return state;
}

static bool
content_in_use(const char *digest, void *t_)
{
    struct transfer *t = t_;
    return find_fetch(t, digest) || chandb_content_in_use(t->db, digest);
}

struct transfer *
transfer_create(const struct transfer_config *cfg, struct chandb *db)
{
    char *error = NULL;
    struct content_store *cs = content_store_open(
        cfg->content_dir, cfg->cap ? cfg->cap : TRANSFER_DEFAULT_CAP,
        &error);
    if (!cs) {
        VLOG_ERR("content store: %s", error);
        free(error);
        return NULL;
    }
    struct transfer *t = xzalloc(sizeof *t);
    t->db = db;
    t->cs = cs;
    t->lane_cfg.mtu = cfg->mtu;
    t->lane_cfg.max_size = cfg->max_size;
    t->lane_cfg.max_rate = cfg->guest_rate;
    t->lane_cfg.serve_rate = (cfg->serve_rate ? cfg->serve_rate
                              : TRANSFER_DEFAULT_SERVE_RATE);
    list_init(&t->lanes);
    list_init(&t->busy);
    list_init(&t->fetches);
    chandb_set_content_source(db, content_state, t);
    VLOG_INFO("content store %s: %"PRIu64" bytes of %"PRIu64,
              content_store_dir(cs), content_store_usage(cs),
              content_store_cap(cs));
    return t;
}

static void
lane_free(struct lane *l)
{
    list_remove(&l->node);
    if (l->busy) {
        list_remove(&l->busy_node);
    }
    channel_set_xfer(l->ch, NULL, NULL);
    xfer_lane_destroy(l->lane);
    free(l->vm);
    free(l);
}

void
transfer_destroy(struct transfer *t)
{
    if (!t) {
        return;
    }
    chandb_set_content_source(t->db, NULL, NULL);
    struct lane *l;
    LIST_FOR_EACH_SAFE (l, node, &t->lanes) {
        lane_free(l);
    }
    struct fetch *f;
    LIST_FOR_EACH_SAFE (f, node, &t->fetches) {
        fetch_free(f);
    }
    content_store_close(t->cs);
    free(t);
}

/* Makes transfer_run() and transfer_wait() visit lane 'l'. */
static void
lane_busy(struct lane *l)
{
    /* The lane's frames take the channel's MTU: chunks of the pulls that
     * start from now on, and the largest chunks served. */
    xfer_lane_set_mtu(l->lane, channel_mtu(l->ch));
    if (!l->busy) {
        list_push_back(&l->t->busy, &l->busy_node);
        l->busy = true;
    }
}

/* Lane callbacks (aux: struct lane). */

static int
lane_send(const uint8_t *frame, size_t len, void *l_)
{
    struct lane *l = l_;
    return channel_send_xfer(l->ch, frame, len);
}

static void
lane_key(void *l_, const uint8_t **keyp, size_t *lenp)
{
    struct lane *l = l_;
    channel_tx_key(l->ch, keyp, lenp);
}

static const char *
lane_resolve(void *l_, const char *digest, uint64_t size, char **pathp,
             char **reasonp)
{
    struct lane *l = l_;
    struct transfer *t = l->t;
    int64_t entitled_size;

    if (!chandb_vm_entitled(t->db, l->vm, digest, &entitled_size)) {
        t->refused_not_entitled++;
        *reasonp = xasprintf("VM %s is not entitled to object %.12s (no "
                             "install, restore or notice names it)", l->vm,
                             digest);
        return XFER_ERR_NOT_ENTITLED;
    }
    if (entitled_size >= 0 && (uint64_t) entitled_size != size) {
        *reasonp = xasprintf("object %.12s has %"PRId64" bytes, not %"PRIu64,
                             digest, entitled_size, size);
        return XFER_ERR_SIZE;
    }
    *pathp = content_store_lookup(t->cs, digest);
    if (!*pathp) {
        t->refused_no_content++;
        *reasonp = xasprintf("chand-host has no content for object %.12s "
                             "(chanctl object-store FILE puts it there)",
                             digest);
        return XFER_ERR_NO_OBJECT;
    }
    content_store_touch(t->cs, digest);
    return NULL;
}

static void
fetch_fail(struct transfer *t, struct fetch *f)
{
    json_t *parts = json_array();
    const char *vm;
    json_t *reason;
    json_object_foreach (f->tried, vm, reason) {
        json_array_append_new(parts, json_sprintf(
                                  "%s: %s", vm, json_string_value(reason)));
    }
    char *list = NULL;
    size_t i;
    json_t *p;
    json_array_foreach (parts, i, p) {
        char *next = xasprintf("%s%s%s", list ? list : "", list ? "; " : "",
                               json_string_value(p));
        free(list);
        list = next;
    }
    json_decref(parts);
    free(f->error);
    f->error = xasprintf("no VM could send object %.12s (%s)", f->digest,
                         list ? list : "no candidate");
    free(list);
    t->fetches_failed++;
    VLOG_WARN("fetch of %.12s failed: %s", f->digest, f->error);
    chandb_content_changed(t->db);
}

static void
lane_pulled(void *l_, const char *digest, const char *error,
            const char *reason)
{
    struct lane *l = l_;
    struct transfer *t = l->t;
    struct fetch *f = find_fetch(t, digest);

    if (!error) {
        VLOG_INFO("fetched %.12s from %s", digest, l->vm);
        if (f) {
            t->fetches_done++;
            fetch_free(f);
        }
        chandb_content_changed(t->db);
        return;
    }
    if (!strcmp(error, "digest")) {
        t->digest_mismatches++;
    }
    VLOG_WARN("fetch of %.12s from %s failed: %s (%s)", digest, l->vm,
              reason ? reason : "", error);
    if (f) {
        json_object_set_new(f->tried, l->vm, json_sprintf(
                                "%s", reason && *reason ? reason : error));
        free(f->source);
        f->source = NULL;
    }
}

static const struct xfer_lane_ops lane_ops = {
    .send = lane_send,
    .key = lane_key,
    .resolve = lane_resolve,
    .pulled = lane_pulled,
};

static void
lane_input(struct channel *ch, const struct chan_wire_header *h,
           const uint8_t *payload, long long now, void *l_)
{
    struct lane *l = l_;
    (void) ch;
    lane_busy(l);
    xfer_lane_input(l->lane, h, payload, now);
}

void
transfer_attach(struct transfer *t, struct channel *ch)
{
    struct lane *l = xzalloc(sizeof *l);
    struct xfer_lane_config cfg = t->lane_cfg;

    cfg.vid = channel_config(ch)->vid;
    l->t = t;
    l->ch = ch;
    l->vm = xstrdup(channel_vm(ch));
    l->lane = xfer_lane_create(&cfg, &lane_ops, l, t->cs);
    list_push_back(&t->lanes, &l->node);
    channel_set_xfer(ch, lane_input, l);
}

void
transfer_detach(struct transfer *t, struct channel *ch)
{
    struct lane *l;
    LIST_FOR_EACH (l, node, &t->lanes) {
        if (l->ch == ch) {
            struct fetch *f;
            LIST_FOR_EACH (f, node, &t->fetches) {
                if (f->source && !strcmp(f->source, l->vm)) {
                    free(f->source);
                    f->source = NULL;
                }
            }
            lane_free(l);
            return;
        }
    }
}

/* Fetches. */

static struct fetch *
fetch_create(struct transfer *t, const char *digest, uint64_t size,
             const json_t *candidates, bool operator, long long now)
{
    struct fetch *f = xzalloc(sizeof *f);
    snprintf(f->digest, sizeof f->digest, "%s", digest);
    f->size = size;
    f->candidates = json_deep_copy(candidates);
    f->tried = json_object();
    f->operator = operator;
    f->started = now;
    list_push_back(&t->fetches, &f->node);
    return f;
}

/* True if 'candidates' has a VM 'f' has not tried. */
static bool
has_untried(const struct fetch *f, const json_t *candidates)
{
    size_t i;
    const json_t *vm;
    json_array_foreach (candidates, i, vm) {
        if (!json_object_get(f->tried, json_string_value(vm))) {
            return true;
        }
    }
    return false;
}

/* Brings the fetches in step with what restore requests need. */
static void
sync_needs(struct transfer *t, long long now)
{
    uint64_t seqno = chandb_get_needs_seqno(t->db);
    if (seqno == t->needs_seqno) {
        return;
    }
    t->needs_seqno = seqno;

    const json_t *needs = chandb_restore_needs(t->db);
    struct fetch *f;
    LIST_FOR_EACH_SAFE (f, node, &t->fetches) {
        const json_t *need = json_object_get(needs, f->digest);
        if (!need && !f->operator && !f->error) {
            if (f->source) {
                struct lane *l = find_lane(t, f->source);
                if (l) {
                    xfer_lane_cancel(l->lane, f->digest);
                }
            }
            fetch_free(f);
        }
    }
    const char *digest;
    const json_t *need;
    json_object_foreach ((json_t *) needs, digest, need) {
        const json_t *candidates = json_object_get(need, "candidates");
        char *path = content_store_lookup(t->cs, digest);
        f = find_fetch(t, digest);
        if (path) {
            free(path);
            chandb_content_changed(t->db);
        } else if (!f) {
            fetch_create(t, digest,
                         json_integer_value(json_object_get(need, "size")),
                         candidates, false, now);
        } else if (!f->operator) {
            json_decref(f->candidates);
            f->candidates = json_deep_copy(candidates);
            if (f->error && has_untried(f, candidates)) {
                /* A new holder: try again. */
                free(f->error);
                f->error = NULL;
            }
        }
    }
}

/* Picks a source for 'f' and starts pulling, or fails 'f'. */
static void
start_fetch(struct transfer *t, struct fetch *f, long long now)
{
    bool waiting = false;
    size_t i;
    const json_t *v;

    json_array_foreach (f->candidates, i, v) {
        const char *vm = json_string_value(v);
        struct lane *l = find_lane(t, vm);
        if (json_object_get(f->tried, vm)) {
            continue;
        }
        if (!l || channel_get_state(l->ch, now) != CHANNEL_READY) {
            waiting = true;
            continue;
        }
        char *error = NULL;
        int err = content_store_reserve(t->cs, f->size, content_in_use, t,
                                        NULL, &error);
        if (!err) {
            lane_busy(l);
            err = xfer_lane_pull(l->lane, f->digest, f->size, now, &error);
        }
        if (err && err != EEXIST) {
            json_object_set_new(f->tried, vm, json_string(
                                    error ? error : strerror(err)));
            free(error);
            continue;
        }
        free(error);
        f->source = xstrdup(vm);
        f->source_down = 0;
        VLOG_INFO("fetching %.12s (%"PRIu64" bytes) from %s", f->digest,
                  f->size, vm);
        return;
    }
    if (!waiting) {
        fetch_fail(t, f);
    }
}

/* Moves to another source when the current one's channel stayed down. */
static void
check_source(struct transfer *t, struct fetch *f, long long now)
{
    struct lane *l = find_lane(t, f->source);
    enum channel_state state = l ? channel_get_state(l->ch, now)
                                 : CHANNEL_DOWN;
    if (state == CHANNEL_READY) {
        f->source_down = 0;
        return;
    }
    if (!f->source_down) {
        f->source_down = now;
    } else if (now - f->source_down >= TRANSFER_SOURCE_GRACE_MS) {
        VLOG_WARN("fetch of %.12s: %s unreachable for %d s, trying "
                  "another source", f->digest, f->source,
                  TRANSFER_SOURCE_GRACE_MS / 1000);
        if (l) {
            xfer_lane_cancel(l->lane, f->digest);
        }
        json_object_set_new(f->tried, f->source,
                            json_string("channel down"));
        free(f->source);
        f->source = NULL;
    }
}

void
transfer_run(struct transfer *t, long long now)
{
    sync_needs(t, now);

    struct fetch *f;
    LIST_FOR_EACH (f, node, &t->fetches) {
        if (f->error) {
            continue;
        } else if (!f->source) {
            start_fetch(t, f, now);
        } else {
            check_source(t, f, now);
        }
    }

    struct lane *l;
    LIST_FOR_EACH_SAFE (l, busy_node, &t->busy) {
        xfer_lane_run(l->lane, now);
        if (xfer_lane_is_idle(l->lane)) {
            list_remove(&l->busy_node);
            l->busy = false;
        }
    }
}

void
transfer_wait(struct transfer *t, long long now)
{
    long long next = LLONG_MAX;
    struct lane *l;
    LIST_FOR_EACH (l, busy_node, &t->busy) {
        long long w = xfer_lane_next_wakeup(l->lane, now);
        next = w < next ? w : next;
    }
    struct fetch *f;
    LIST_FOR_EACH (f, node, &t->fetches) {
        if (!f->error && f->source_down) {
            /* Sources come and go with their channels (transfer_run() runs
             * when they do); a source down too long is given up. */
            long long w = f->source_down + TRANSFER_SOURCE_GRACE_MS;
            next = w < next ? w : next;
        }
    }
    if (next != LLONG_MAX) {
        poll_timer_wait_until(next);
    }
}

/* Checks 'digest'.  Returns 0, or EINVAL with '*errorp' set. */
static int
check_digest(const char *digest, char **errorp)
{
    if (!xfer_digest_is_valid(digest)) {
        *errorp = xasprintf("\"%.80s\" is not a sha256 digest (64 lowercase "
                            "hex digits)", digest);
        return EINVAL;
    }
    return 0;
}

int
transfer_fetch(struct transfer *t, const char *vm, const char *digest,
               int64_t size, char **errorp)
{
    uint64_t max = (t->lane_cfg.max_size ? t->lane_cfg.max_size
                    : XFER_DEFAULT_MAX_SIZE);

    *errorp = NULL;
    if (check_digest(digest, errorp)) {
        return EINVAL;
    }
    if (size >= 0 && (!size || (uint64_t) size > max)) {
        *errorp = xasprintf("size %"PRId64" of %.12s is not from 1 to the "
                            "transfer limit of %"PRIu64" bytes "
                            "(--max-transfer; the empty object needs no "
                            "fetch)", size, digest, max);
        return EINVAL;
    }
    if (size < 0 && !chandb_object_size(t->db, digest, &size)) {
        *errorp = xasprintf("no Object row for %.12s: no VM reported it "
                            "(give its size to fetch it anyway)", digest);
        return ENOENT;
    }
    char *path = content_store_lookup(t->cs, digest);
    if (path) {
        free(path);
        *errorp = xasprintf("the content store already has %.12s", digest);
        return EEXIST;
    }
    struct fetch *f = find_fetch(t, digest);
    if (f && !f->error) {
        *errorp = xasprintf("%.12s is being fetched already (from %s)",
                            digest, f->source ? f->source : "nobody yet");
        return EALREADY;
    }
    if (f) {
        fetch_free(f);
    }
    json_t *candidates = json_pack("[s]", vm);
    fetch_create(t, digest, size, candidates, true, time_msec());
    json_decref(candidates);
    return 0;
}

int
transfer_store_file(struct transfer *t, const char *path, char digest[65],
                    uint64_t *sizep, char **errorp)
{
    int error = content_store_add_file(t->cs, path, content_in_use, t,
                                       digest, sizep, errorp);
    if (!error) {
        VLOG_INFO("stored %s as %.12s (%"PRIu64" bytes)", path, digest,
                  *sizep);
        chandb_ensure_object(t->db, digest, *sizep);
        chandb_content_changed(t->db);
    }
    return error;
}

json_t *
transfer_fetch_status(const struct transfer *t, const char *digest,
                      char **errorp)
{
    *errorp = NULL;
    if (check_digest(digest, errorp)) {
        return NULL;
    }
    char *path = content_store_lookup(t->cs, digest);
    struct stat st;
    if (path && !stat(path, &st)) {
        json_t *j = json_pack("{ss ss ss sI}", "digest", digest,
                              "state", "done", "path", path,
                              "size", (json_int_t) st.st_size);
        free(path);
        return j;
    }
    free(path);

    const struct fetch *f = find_fetch(t, digest);
    if (f && f->error) {
        return json_pack("{ss ss ss}", "digest", digest, "state", "failed",
                         "error", f->error);
    } else if (f) {
        return json_pack("{ss ss ss? sI}", "digest", digest,
                         "state", "fetching", "source", f->source,
                         "size", (json_int_t) f->size);
    }
    *errorp = xasprintf("no fetch of %s and the content store does not "
                        "hold it", digest);
    return NULL;
}

static json_t *
fetch_json(const struct fetch *f)
{
    return json_pack("{ss sI sO sO sb ss? ss?}",
                     "digest", f->digest, "size", (json_int_t) f->size,
                     "candidates", f->candidates, "tried", f->tried,
                     "operator", f->operator, "source", f->source,
                     "error", f->error);
}

json_t *
transfer_lane_json(const struct transfer *t, const char *vm, long long now)
{
    const struct lane *l = find_lane(t, vm);
    return l ? xfer_lane_status_json(l->lane, now) : NULL;
}

json_t *
transfer_status_json(const struct transfer *t, long long now)
{
    json_t *fetches = json_array();
    const struct fetch *f;
    LIST_FOR_EACH (f, node, &t->fetches) {
        json_array_append_new(fetches, fetch_json(f));
    }
    json_t *lanes = json_object();
    const struct lane *l;
    LIST_FOR_EACH (l, node, &t->lanes) {
        json_object_set_new(lanes, l->vm,
                            xfer_lane_status_json(l->lane, now));
    }
    return json_pack("{ss sI sI so so s{sI sI sI sI sI}}",
                     "content_dir", content_store_dir(t->cs),
                     "content_bytes",
                     (json_int_t) content_store_usage(t->cs),
                     "content_cap", (json_int_t) content_store_cap(t->cs),
                     "fetches", fetches, "lanes", lanes,
                     "counters",
                     "fetches_done", (json_int_t) t->fetches_done,
                     "fetches_failed", (json_int_t) t->fetches_failed,
                     "refused_not_entitled",
                     (json_int_t) t->refused_not_entitled,
                     "refused_no_content",
                     (json_int_t) t->refused_no_content,
                     "digest_mismatches",
                     (json_int_t) t->digest_mismatches);
}
