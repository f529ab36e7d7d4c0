/* chand-guest's Hyper-V KVP view: see kvp.h. */

#include <config.h>
#include "kvp.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datastore.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(kvp);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 10);

#define KVP_PREFIX_MAX 64
#define KVP_STATUS_REFUSALS_MAX 32

struct pool_state {
    char *path;
    json_t *owned;              /* Name -> [values chand may have written]. */
    bool dirty;
    long long retry_at;
    bool seen_valid;            /* 'seen' is the file as last synced. */
    struct stat seen;
    size_t entries;             /* In the file at the last sync. */
};

struct kvp {
    char *dir;
    char *prefix;
    size_t prefix_len;
    char *owned_path;
    struct datastore *ds;
    struct pool_state pools[KVP_POOL_COUNT];
    bool names_dirty;           /* A key under the prefix that names no
                                 * pool changed. */
    json_t *refusals;           /* Record key -> {"pool", "version",
                                 * "reason"}; pool -1: no pool. */
    json_t *up_errors;          /* Pool 1 name -> reason. */
    long long next_poll;
    int inotify_fd;             /* -1 until the directory is watched. */
    struct kvp_stats stats;
};

const char *
kvp_check_prefix(const char *prefix)
{
    char *probe;
    int error;

    if (!*prefix || strlen(prefix) > KVP_PREFIX_MAX) {
        return "must be 1 to 64 bytes";
    }
    probe = xasprintf("%s1/x", prefix);
    error = datastore_check_published_key(probe);
    free(probe);
    return (error == EPERM ? "is under a prefix reserved for chand's own "
                             "records (from/, obj/, result/)"
            : error ? "is not UTF-8" : NULL);
}

/* Loads the ownership file into the pools.  A missing file means nothing
 * is owned; an unreadable one is logged and counted, and treated so. */
static void
load_owned(struct kvp *kvp)
{
    json_error_t jerr;
    json_t *root, *pools;

    if (access(kvp->owned_path, F_OK) && errno == ENOENT) {
        return;
    }
    root = json_load_file(kvp->owned_path, 0, &jerr);
    pools = json_object_get(root, "pools");
    if (!json_is_object(pools)) {
        VLOG_WARN("%s: unreadable (%s): chand's earlier entries will look "
                  "like other writers'", kvp->owned_path,
                  root ? "no \"pools\" object" : jerr.text);
        kvp->stats.io_errors++;
        json_decref(root);
        return;
    }
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        char name[2] = { '0' + p, '\0' };
        json_t *o = json_object_get(pools, name);
        const char *key;
        json_t *vals;

        json_object_foreach (o, key, vals) {
            if (json_is_array(vals)) {
                json_object_set(kvp->pools[p].owned, key, vals);
            }
        }
    }
    json_decref(root);
}

/* Writes the pools' ownership to the ownership file (a new file renamed
 * over it, synced).  Returns 0 or an errno (logged). */
static int
save_owned(struct kvp *kvp)
{
    json_t *pools = json_object();
    char *tmp = xasprintf("%s.tmp", kvp->owned_path);
    int error = 0;

    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        char name[2] = { '0' + p, '\0' };

        if (json_object_size(kvp->pools[p].owned)) {
            json_object_set(pools, name, kvp->pools[p].owned);
        }
    }
    json_t *root = json_pack("{s:i, s:o}", "version", 1, "pools", pools);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t) len || fsync(fd)
        || rename(tmp, kvp->owned_path)) {
        error = errno ? errno : EIO;
        VLOG_WARN_RL(&rl, "%s: cannot write: %s", kvp->owned_path,
                     strerror(error));
        kvp->stats.io_errors++;
        unlink(tmp);
    }
    if (fd >= 0) {
        close(fd);
    }
    free(text);
    free(tmp);
    return error;
}

struct kvp *
kvp_create(const struct kvp_config *cfg, struct datastore *ds)
{
    const char *why = kvp_check_prefix(cfg->prefix);
    struct kvp *kvp;

    if (why) {
        VLOG_ERR("--kvp-prefix \"%s\" %s", cfg->prefix, why);
        return NULL;
    }
    kvp = xzalloc(sizeof *kvp);
    kvp->dir = xstrdup(cfg->dir ? cfg->dir : KVP_DEFAULT_DIR);
    kvp->prefix = xstrdup(cfg->prefix);
    kvp->prefix_len = strlen(kvp->prefix);
    kvp->owned_path = xasprintf("%s/%s", kvp->dir, KVP_OWNED_FILE);
    kvp->ds = ds;
    kvp->refusals = json_object();
    kvp->up_errors = json_object();
    kvp->names_dirty = true;
    kvp->inotify_fd = -1;
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        kvp->pools[p].path = kvp_pool_path(kvp->dir, p);
        kvp->pools[p].owned = json_object();
        kvp->pools[p].dirty = true;
    }
    load_owned(kvp);
    VLOG_INFO("KVP view: records %s<pool>/<name> in the pools of %s, "
              "pool %d published as %s%d/<name>", kvp->prefix, kvp->dir,
              KVP_POOL_GUEST, kvp->prefix, KVP_POOL_GUEST);
    return kvp;
}

void
kvp_destroy(struct kvp *kvp)
{
    if (kvp) {
        for (int p = 0; p < KVP_POOL_COUNT; p++) {
            free(kvp->pools[p].path);
            json_decref(kvp->pools[p].owned);
        }
        if (kvp->inotify_fd >= 0) {
            close(kvp->inotify_fd);
        }
        json_decref(kvp->refusals);
        json_decref(kvp->up_errors);
        free(kvp->owned_path);
        free(kvp->prefix);
        free(kvp->dir);
        free(kvp);
    }
}

/* Returns the pool that record 'key' (under the prefix) names, storing
 * its entry name in '*namep' (inside 'key'), or -1 if it names none. */
static int
pool_of_key(const struct kvp *kvp, const char *key, const char **namep)
{
    const char *rest = key + kvp->prefix_len;

    if (rest[0] >= '0' && rest[0] < '0' + KVP_POOL_COUNT && rest[1] == '/') {
        *namep = rest + 2;
        return rest[0] - '0';
    }
    return -1;
}

void
kvp_record_changed(struct kvp *kvp, const struct ds_change *change)
{
    const char *name;
    int p;

    if (strncmp(change->key, kvp->prefix, kvp->prefix_len)) {
        return;
    }
    p = pool_of_key(kvp, change->key, &name);
    if (p >= 0) {
        kvp->pools[p].dirty = true;
    } else {
        kvp->names_dirty = true;
    }
}

/* Starts watching the pools' directory with inotify, if it exists and is
 * not watched yet.  (File timestamps are only as fine as the kernel's
 * clock tick: inotify sees a change of the same size within one tick,
 * which the poll of the timestamps would miss.) */
static void
watch_dir(struct kvp *kvp)
{
    if (kvp->inotify_fd >= 0) {
        return;
    }
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        return;
    }
    if (inotify_add_watch(fd, kvp->dir,
                          IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE
                          | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE_SELF
                          | IN_MOVE_SELF) < 0) {
        close(fd);
        return;
    }
    kvp->inotify_fd = fd;
}

/* Reads the inotify events: a pool file's name makes it dirty; an
 * overflow or the directory going away makes every pool dirty. */
static void
read_events(struct kvp *kvp)
{
    char buf[16 * 1024] __attribute__((aligned(__alignof__(struct
                                                           inotify_event))));

    while (kvp->inotify_fd >= 0) {
        ssize_t n = read(kvp->inotify_fd, buf, sizeof buf);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n <= 0) {
            return;
        }
        for (char *p = buf; p < buf + n; ) {
            const struct inotify_event *ev = (const void *) p;
            int pool;

            if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF
                            | IN_MOVE_SELF)) {
                for (int i = 0; i < KVP_POOL_COUNT; i++) {
                    kvp->pools[i].dirty = true;
                }
                if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                    close(kvp->inotify_fd);     /* Watched again later. */
                    kvp->inotify_fd = -1;
                    return;
                }
            } else if (ev->len && sscanf(ev->name, ".kvp_pool_%d", &pool) == 1
                       && pool >= 0 && pool < KVP_POOL_COUNT) {
                kvp->pools[pool].dirty = true;
            }
            p += sizeof *ev + ev->len;
        }
    }
}

/* Marks the pools whose files changed since they were last synced. */
static void
poll_files(struct kvp *kvp)
{
    watch_dir(kvp);
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        struct pool_state *ps = &kvp->pools[p];
        struct stat st;
        bool exists = !stat(ps->path, &st);

        if (exists != ps->seen_valid
            || (exists && (st.st_ino != ps->seen.st_ino
                           || st.st_dev != ps->seen.st_dev
                           || st.st_size != ps->seen.st_size
                           || st.st_mtim.tv_sec != ps->seen.st_mtim.tv_sec
                           || st.st_mtim.tv_nsec != ps->seen.st_mtim.tv_nsec
                           || st.st_ctim.tv_sec != ps->seen.st_ctim.tv_sec
                           || st.st_ctim.tv_nsec
                              != ps->seen.st_ctim.tv_nsec))) {
            ps->dirty = true;
        }
    }
}

/* What the records under the prefix ask for, collected by one listing. */
struct wanted {
    json_t *want[KVP_POOL_COUNT];   /* Name -> value text. */
    json_t *keys[KVP_POOL_COUNT];   /* Name -> [record key, version]. */
    json_t *refused;                /* Record key -> {"pool", "version",
                                     * "reason"}. */
};

static void
add_refusal(json_t *refused, const char *key, int pool, int64_t version,
            const char *reason)
{
    json_object_set_new(refused, key,
                        json_pack("{s:i, s:I, s:s}", "pool", pool,
                                  "version", (json_int_t) version,
                                  "reason", reason));
}

/* Context of collect(): the view and what it collects. */
struct collect_ctx {
    const struct kvp *kvp;
    struct wanted *w;
};

static int
collect_record(void *ctx_, const char *key, const char *value,
               int64_t version)
{
    struct collect_ctx *ctx = ctx_;
    struct wanted *w = ctx->w;
    const char *name, *why;
    int p = pool_of_key(ctx->kvp, key, &name);
    char *text, *reason;
    size_t len;

    if (p < 0) {
        reason = xasprintf("not a KVP record: its key is not %s<pool 0-4>/"
                           "<name>", ctx->kvp->prefix);
        add_refusal(w->refused, key, -1, version, reason);
        free(reason);
        return 0;
    }
    if (kvp_value_text(value, &text, &len)) {
        add_refusal(w->refused, key, p, version, "the value is not JSON");
        return 0;
    }
    why = kvp_check_entry(name, strlen(name), text, len);
    if (why) {
        reason = xasprintf("cannot be a KVP entry: %s (name %zu bytes, "
                           "value %zu bytes)", why, strlen(name), len);
        add_refusal(w->refused, key, p, version, reason);
        free(reason);
    } else {
        json_object_set_new(w->want[p], name, json_string(text));
        json_object_set_new(w->keys[p], name,
                            json_pack("[s, I]", key, (json_int_t) version));
    }
    free(text);
    return 0;
}

/* Lists the records under the prefix into 'w' (initialized here; the
 * caller frees it with wanted_destroy()).  Returns 0 or an errno. */
static int
collect(const struct kvp *kvp, struct wanted *w)
{
    struct collect_ctx ctx = { kvp, w };

    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        w->want[p] = json_object();
        w->keys[p] = json_object();
    }
    w->refused = json_object();
    return datastore_list(kvp->ds, kvp->prefix, collect_record, &ctx);
}

static void
wanted_destroy(struct wanted *w)
{
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        json_decref(w->want[p]);
        json_decref(w->keys[p]);
    }
    json_decref(w->refused);
}

/* Returns a new JSON object: every name of 'a' and 'b' (ownership
 * objects) with the union of their values. */
static json_t *
owned_union(const json_t *a, const json_t *b)
{
    json_t *u = json_deep_copy(a);
    const char *name;
    json_t *vals, *val;
    size_t i;

    json_object_foreach ((json_t *) b, name, vals) {
        json_t *to = json_object_get(u, name);

        if (!to) {
            json_object_set_new(u, name, json_deep_copy(vals));
            continue;
        }
        json_array_foreach (vals, i, val) {
            bool found = false;
            size_t j;
            json_t *have;

            json_array_foreach (to, j, have) {
                found = found || json_equal(have, val);
            }
            if (!found) {
                json_array_append(to, val);
            }
        }
    }
    return u;
}

/* Writes 'pool' to 'fd' for pool 'p' with ownership 'new_owned' (taken),
 * the ownership file written before (with both the old and the new
 * values) and after.  Returns 0 or an errno (logged, counted). */
static int
write_pool(struct kvp *kvp, int p, int fd, const struct kvp_pool *pool,
           json_t *new_owned)
{
    struct pool_state *ps = &kvp->pools[p];
    json_t *u = owned_union(ps->owned, new_owned);
    int error = 0;

    if (!json_equal(u, ps->owned)) {
        json_decref(ps->owned);
        ps->owned = json_incref(u);
        error = save_owned(kvp);
    }
    json_decref(u);
    if (!error) {
        error = kvp_pool_write(fd, pool);
        if (error) {
            VLOG_WARN_RL(&rl, "%s: cannot write: %s", ps->path,
                         strerror(error));
            kvp->stats.io_errors++;
        } else {
            kvp->stats.writes++;
        }
    }
    if (!error && !json_equal(new_owned, ps->owned)) {
        json_decref(ps->owned);
        ps->owned = json_incref(new_owned);
        save_owned(kvp);    /* A failure leaves more owned values: fine. */
    }
    json_decref(new_owned);
    return error;
}

/* Makes 's' printable for the log and the status: the bytes of 'len' that
 * are not printable ASCII become \xNN.  malloc()ed. */
static char *
printable(const char *s, size_t len)
{
    char *out = xmalloc(len * 4 + 1), *p = out;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];

        if (c >= 0x20 && c < 0x7f && c != '\\') {
            *p++ = c;
        } else {
            p += sprintf(p, "\\x%02x", c);
        }
    }
    *p = '\0';
    return out;
}

/* Notes that guest entry 'shown' (printable) cannot be published, for
 * 'reason'; counted and logged once per name and reason. */
static void
up_error(struct kvp *kvp, json_t *errors, const char *shown,
         const char *reason)
{
    const char *old = json_string_value(json_object_get(kvp->up_errors,
                                                        shown));

    if (!old || strcmp(old, reason)) {
        kvp->stats.publish_errors++;
        VLOG_WARN_RL(&rl, "pool %d entry \"%s\" cannot be published: %s",
                     KVP_POOL_GUEST, shown, reason);
    }
    json_object_set_new(errors, shown, json_string(reason));
}

static int
list_published_cb(void *map_, const struct ds_published *p)
{
    json_object_set_new(map_, p->key, json_string(p->value));
    return 0;
}

/* Publishes guest entry 'i' of 'pool' if it is not published as it is;
 * removes its key from 'published'.  Returns 0, or an errno worth a
 * retry. */
static int
publish_entry(struct kvp *kvp, const struct kvp_pool *pool, size_t i,
              json_t *published, json_t *errors)
{
    const char *k, *v;
    size_t k_len, v_len;
    char *shown, *key, *compact;
    json_t *str;
    int error = 0;

    kvp_pool_get(pool, i, &k, &k_len, &v, &v_len);
    shown = printable(k, k_len);
    key = xasprintf("%s%d/%.*s", kvp->prefix, KVP_POOL_GUEST, (int) k_len,
                    k);
    str = json_stringn(v, v_len);
    if (!k_len) {
        up_error(kvp, errors, shown, "an empty name");
    } else if (datastore_check_published_key(key)) {
        up_error(kvp, errors, shown, datastore_last_error());
    } else if (!str) {
        up_error(kvp, errors, shown, "the value is not UTF-8");
    } else {
        const char *old = json_string_value(json_object_get(published, key));

        compact = json_dumps(str, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!old || strcmp(old, compact)) {
            error = datastore_publish(kvp->ds, key, compact, NULL);
            if (error) {
                up_error(kvp, errors, shown, datastore_last_error());
            } else {
                kvp->stats.published++;
            }
        }
        json_object_del(published, key);
        free(compact);
    }
    json_decref(str);
    free(key);
    free(shown);
    return error == EDQUOT || (error && error != EINVAL && error != EPERM)
           ? error : 0;
}

/* Publishes the entries of guest pool 'pool' that chand does not own
 * ('owned') and withdraws the published ones that are gone, in one
 * transaction.  Returns 0, or an errno worth a retry. */
static int
publish_guest_pool(struct kvp *kvp, const struct kvp_pool *pool,
                   const json_t *owned)
{
    char *prefix = xasprintf("%s%d/", kvp->prefix, KVP_POOL_GUEST);
    json_t *published = json_object(), *errors = json_object();
    const char *key;
    json_t *val;
    int error, retry = 0;

    error = datastore_begin(kvp->ds);
    if (!error) {
        error = datastore_list_published(kvp->ds, prefix, false,
                                         list_published_cb, published, NULL);
    }
    for (size_t i = 0; !error && i < pool->n; i++) {
        const char *k, *v;
        size_t k_len, v_len;

        kvp_pool_get(pool, i, &k, &k_len, &v, &v_len);
        if (!kvp_is_owned(pool, i, owned)
            && kvp_pool_find_n(pool, k, k_len) == (long) i) {
            int e = publish_entry(kvp, pool, i, published, errors);
            retry = retry ? retry : e;
        }
    }
    json_object_foreach (published, key, val) {
        if (!error && !datastore_unpublish(kvp->ds, key, NULL)) {
            kvp->stats.withdrawn++;
        }
    }
    if (!error) {
        error = datastore_commit(kvp->ds);
    } else {
        datastore_rollback(kvp->ds);
    }
    if (error) {
        VLOG_WARN_RL(&rl, "cannot publish pool %d: %s", KVP_POOL_GUEST,
                     datastore_last_error());
        kvp->stats.publish_errors++;
    } else {
        json_decref(kvp->up_errors);
        kvp->up_errors = json_incref(errors);
    }
    json_decref(errors);
    json_decref(published);
    free(prefix);
    return error ? error : retry;
}

/* Synchronizing one pool. */

/* Notes in 'w' that the wanted names of pool 'p' in 'conflicts' are held
 * by other writers' entries. */
static void
add_conflicts(const struct kvp *kvp, struct wanted *w, int p,
              const json_t *conflicts)
{
    const char *name;
    json_t *val;

    json_object_foreach ((json_t *) conflicts, name, val) {
        json_t *k = json_object_get(w->keys[p], name);
        char *reason = xasprintf("conflict: %s already holds an entry \"%s\" "
                                 "that chand did not write",
                                 kvp->pools[p].path, name);

        add_refusal(w->refused, json_string_value(json_array_get(k, 0)), p,
                    json_integer_value(json_array_get(k, 1)), reason);
        free(reason);
    }
}

/* Locks and reads pool 'p' into 'pool' (initialized by the caller), for
 * writing if 'write' (creating it if 'create').  Stores the locked
 * descriptor in '*fdp' (-1 if there is no file and nothing to create).
 * Returns 0 or an errno (logged, counted, except EAGAIN). */
static int
lock_and_read(struct kvp *kvp, int p, bool write, bool create,
              struct kvp_pool *pool, int *fdp)
{
    struct pool_state *ps = &kvp->pools[p];
    int error;

    if (create && mkdir(kvp->dir, 0755) && errno != EEXIST) {
        error = errno;
        VLOG_WARN_RL(&rl, "%s: cannot create: %s", kvp->dir,
                     strerror(error));
        kvp->stats.io_errors++;
        return error;
    }
    error = kvp_pool_lock(ps->path, write, create, fdp);
    if (error == EAGAIN) {
        kvp->stats.lock_busy++;
        return error;
    } else if (error == ENOENT && !create) {
        return 0;               /* No file: no entries. */
    } else if (!error) {
        error = kvp_pool_read(*fdp, pool);
    }
    if (error) {
        VLOG_WARN_RL(&rl, "%s: %s", ps->path, strerror(error));
        kvp->stats.io_errors++;
    } else if (pool->extra) {
        VLOG_WARN_RL(&rl, "%s: %zu bytes after the last whole record, "
                     "ignored (and dropped at the next write), as "
                     "hv_kvp_daemon does", ps->path, pool->extra);
        kvp->stats.partial++;
    }
    return error;
}

/* Adds to each name's value in 'new_owned' (as kvp_merge() leaves it:
 * one value) the value chand wrote before it, from 'old_owned' (the
 * first value of each name is the latest), so that a stale write-back of
 * chand's previous value (hv_kvp_daemon rewrites a pool from what it read
 * a moment before, with its lock released in between) is still known as
 * chand's. */
static void
keep_previous(json_t *new_owned, const json_t *old_owned)
{
    const char *name;
    json_t *vals;

    json_object_foreach (new_owned, name, vals) {
        json_t *old = json_object_get(old_owned, name);
        json_t *prev = json_array_get(old, 0);

        if (prev && json_equal(prev, json_array_get(vals, 0))) {
            prev = json_array_get(old, 1);
        }
        if (prev) {
            json_array_append(vals, prev);
        }
    }
}

/* Brings 'pool' (read from pool 'p''s file, locked with 'fd') in line
 * with 'w', writing the file if that changes it.  Returns 0 or an
 * errno (logged, counted). */
static int
merge_and_write(struct kvp *kvp, int p, int fd, struct kvp_pool *pool,
                struct wanted *w)
{
    struct pool_state *ps = &kvp->pools[p];
    json_t *new_owned = json_object(), *conflicts = json_object();
    struct kvp_merge_counts c;
    int error = 0;

    bool changed = kvp_merge(pool, w->want[p], ps->owned, new_owned,
                             conflicts, &c);
    if (c.given_up) {
        VLOG_WARN("%s: %zu of chand's entries were changed by another "
                  "writer: they are theirs now", ps->path, c.given_up);
        kvp->stats.given_up += c.given_up;
    }
    add_conflicts(kvp, w, p, conflicts);
    json_decref(conflicts);
    keep_previous(new_owned, ps->owned);
    if (changed && fd < 0) {
        json_decref(new_owned);     /* Cannot happen: a wanted entry
                                     * creates the file. */
        error = EBADF;
    } else if (changed) {
        error = write_pool(kvp, p, fd, pool, new_owned);
        if (!error) {
            kvp->stats.entries_written += c.written;
            kvp->stats.entries_removed += c.removed;
        }
    } else {
        if (!json_equal(new_owned, ps->owned)) {
            json_decref(ps->owned);
            ps->owned = json_incref(new_owned);
            save_owned(kvp);
        }
        json_decref(new_owned);
    }
    return error;
}

/* Synchronizes pool 'p' with 'w'.  Returns true if it is done, false if
 * it is to be tried again (at 'retry_at'). */
static bool
sync_pool(struct kvp *kvp, int p, struct wanted *w, long long now)
{
    struct pool_state *ps = &kvp->pools[p];
    bool create = json_object_size(w->want[p]) > 0;
    bool write = create || json_object_size(ps->owned) > 0;
    struct kvp_pool pool;
    int fd = -1, error;

    if (!write && p != KVP_POOL_GUEST) {
        ps->seen_valid = !stat(ps->path, &ps->seen);
        return true;            /* Nothing of chand's, nothing to read. */
    }
    kvp_pool_init(&pool);
    error = lock_and_read(kvp, p, write, create, &pool, &fd);
    if (!error && write) {
        /* Without a file (fd -1) nothing is wanted: the merge only lets
         * go of what chand owned there. */
        error = merge_and_write(kvp, p, fd, &pool, w);
    }
    if (fd >= 0) {
        ps->seen_valid = !fstat(fd, &ps->seen);
        close(fd);              /* Releases the lock. */
    } else {
        ps->seen_valid = !stat(ps->path, &ps->seen);
    }
    if (!error) {
        kvp->stats.syncs++;
        ps->entries = pool.n;
        if (p == KVP_POOL_GUEST) {
            error = publish_guest_pool(kvp, &pool, ps->owned);
        }
    }
    kvp_pool_destroy(&pool);
    if (error) {
        ps->retry_at = now + (error == EAGAIN ? KVP_RETRY_MS
                              : KVP_ERROR_RETRY_MS);
        return false;
    }
    ps->retry_at = 0;
    return true;
}

/* Results. */

/* Returns true if 'key''s published result is refusal 'r' already. */
static bool
result_is(struct kvp *kvp, const char *key, const json_t *r)
{
    char *rkey = xasprintf("%s%s", DS_RESULT_KEY_PREFIX, key);
    char *value = NULL;
    bool same = false;

    if (!datastore_get_published(kvp->ds, rkey, &value, NULL, NULL, NULL)
        && value) {
        json_t *old = json_loads(value, 0, NULL);

        same = (old
                && json_equal(json_object_get(old, "reason"),
                              json_object_get(r, "reason"))
                && json_equal(json_object_get(old, "version"),
                              json_object_get(r, "version"))
                && json_is_string(json_object_get(old, "status"))
                && !strcmp(json_string_value(json_object_get(old, "status")),
                           "failed"));
        json_decref(old);
    }
    free(value);
    free(rkey);
    return same;
}

/* Publishes refusal 'r' of record 'key' as its result record, unless it
 * is published already. */
static void
publish_result(struct kvp *kvp, const char *key, const json_t *r)
{
    json_int_t version = json_integer_value(json_object_get(r, "version"));
    const char *reason = json_string_value(json_object_get(r, "reason"));

    if (result_is(kvp, key, r)) {
        return;
    }
    json_t *res = json_pack("{s:I, s:s, s:s, s:s, s:I}",
                            "at", (json_int_t) time_wall_msec(), "key", key,
                            "reason", reason, "status", "failed",
                            "version", version);
    char *text = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
    if (datastore_set_handled(kvp->ds, key, version, false, text)) {
        VLOG_WARN_RL(&rl, "%s: cannot publish its result: %s", key,
                     datastore_last_error());
        kvp->stats.publish_errors++;
    }
    free(text);
    json_decref(res);
}

/* Withdraws the result record of 'key', if any. */
static void
forget_result(struct kvp *kvp, const char *key)
{
    int64_t version;

    if (!datastore_get_handled(kvp->ds, key, &version)
        && datastore_forget_handled(kvp->ds, key)) {
        VLOG_WARN_RL(&rl, "%s: cannot withdraw its result: %s", key,
                     datastore_last_error());
        kvp->stats.publish_errors++;
    }
}

/* True if refusal 'r' (of pool -1: no pool) was looked at again in this
 * round. */
static bool
refusal_renewed(const json_t *r, const bool synced[KVP_POOL_COUNT],
                bool names)
{
    json_int_t p = json_integer_value(json_object_get(r, "pool"));

    return p < 0 ? names : synced[p];
}

/* Replaces the refusals of the pools synced in this round (and those of
 * keys that name no pool, if 'names') with the ones 'w' found: counts,
 * logs and publishes the new ones, withdraws the results of the ones
 * gone, and of the records shown. */
static void
update_refusals(struct kvp *kvp, const struct wanted *w,
                const bool synced[KVP_POOL_COUNT], bool names)
{
    json_t *next = json_object(), *r;
    const char *key;

    json_object_foreach (kvp->refusals, key, r) {
        if (!refusal_renewed(r, synced, names)) {
            json_object_set(next, key, r);
        }
    }
    json_object_foreach (w->refused, key, r) {
        if (!refusal_renewed(r, synced, names)) {
            continue;
        }
        if (!json_equal(json_object_get(kvp->refusals, key), r)) {
            const char *reason = json_string_value(json_object_get(r,
                                                                   "reason"));
            kvp->stats.refused++;
            if (!strncmp(reason, "conflict", 8)) {
                kvp->stats.conflicts++;
            }
            VLOG_WARN_RL(&rl, "%s: not shown in the KVP pools: %s", key,
                         reason);
        }
        publish_result(kvp, key, r);
        json_object_set(next, key, r);
    }
    json_object_foreach (kvp->refusals, key, r) {
        if (!json_object_get(next, key)) {
            forget_result(kvp, key);
        }
    }
    json_decref(kvp->refusals);
    kvp->refusals = next;
}

/* Withdraws stale results of the records of the synced pools that are
 * shown (left by a refusal before a restart). */
static void
forget_shown(struct kvp *kvp, const struct wanted *w,
             const bool synced[KVP_POOL_COUNT])
{
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        const char *name;
        json_t *k;

        if (!synced[p]) {
            continue;
        }
        json_object_foreach (w->keys[p], name, k) {
            const char *key = json_string_value(json_array_get(k, 0));

            if (!json_object_get(kvp->refusals, key)) {
                forget_result(kvp, key);
            }
        }
    }
}

/* Running. */

void
kvp_run(struct kvp *kvp, long long now)
{
    bool synced[KVP_POOL_COUNT] = { false };
    bool due = kvp->names_dirty;
    struct wanted w;

    read_events(kvp);
    if (now >= kvp->next_poll) {
        poll_files(kvp);
        kvp->next_poll = now + KVP_POLL_MS;
    }
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        due = due || (kvp->pools[p].dirty && kvp->pools[p].retry_at <= now);
    }
    if (!due || datastore_in_transaction(kvp->ds)) {
        return;
    }
    if (collect(kvp, &w)) {
        VLOG_WARN_RL(&rl, "cannot list the %s records: %s", kvp->prefix,
                     datastore_last_error());
        kvp->stats.io_errors++;
        for (int p = 0; p < KVP_POOL_COUNT; p++) {
            kvp->pools[p].retry_at = now + KVP_ERROR_RETRY_MS;
        }
        wanted_destroy(&w);
        return;
    }
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        struct pool_state *ps = &kvp->pools[p];

        if (ps->dirty && ps->retry_at <= now) {
            ps->dirty = false;
            synced[p] = sync_pool(kvp, p, &w, now);
            ps->dirty = !synced[p];
        }
    }
    update_refusals(kvp, &w, synced, kvp->names_dirty);
    forget_shown(kvp, &w, synced);
    kvp->names_dirty = false;
    wanted_destroy(&w);
}

void
kvp_wait(struct kvp *kvp, long long now)
{
    long long next = kvp->next_poll;

    (void) now;
    if (kvp->names_dirty) {
        poll_immediate_wake();
    }
    if (kvp->inotify_fd >= 0) {
        poll_fd_wait(kvp->inotify_fd, POLLIN);
    }
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        if (kvp->pools[p].dirty && kvp->pools[p].retry_at < next) {
            next = kvp->pools[p].retry_at;
        }
    }
    poll_timer_wait_until(next);
}

bool
kvp_is_idle(const struct kvp *kvp)
{
    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        if (kvp->pools[p].dirty) {
            return false;
        }
    }
    return !kvp->names_dirty;
}

void
kvp_get_stats(const struct kvp *kvp, struct kvp_stats *stats)
{
    *stats = kvp->stats;
}

json_t *
kvp_counters_json(const struct kvp *kvp)
{
    const struct kvp_stats *s = &kvp->stats;

    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                     " s:I, s:I, s:I}",
                     "syncs", (json_int_t) s->syncs,
                     "writes", (json_int_t) s->writes,
                     "entries_written", (json_int_t) s->entries_written,
                     "entries_removed", (json_int_t) s->entries_removed,
                     "refused", (json_int_t) s->refused,
                     "conflicts", (json_int_t) s->conflicts,
                     "given_up", (json_int_t) s->given_up,
                     "lock_busy", (json_int_t) s->lock_busy,
                     "io_errors", (json_int_t) s->io_errors,
                     "published", (json_int_t) s->published,
                     "withdrawn", (json_int_t) s->withdrawn,
                     "publish_errors", (json_int_t) s->publish_errors,
                     "partial", (json_int_t) s->partial);
}

/* Returns at most KVP_STATUS_REFUSALS_MAX members of object 'o' (as a new
 * object). */
static json_t *
first_members(const json_t *o)
{
    json_t *out = json_object(), *v;
    const char *key;

    json_object_foreach ((json_t *) o, key, v) {
        if (json_object_size(out) >= KVP_STATUS_REFUSALS_MAX) {
            break;
        }
        json_object_set(out, key, v);
    }
    return out;
}

json_t *
kvp_status_json(const struct kvp *kvp)
{
    json_t *pools = json_array();

    for (int p = 0; p < KVP_POOL_COUNT; p++) {
        const struct pool_state *ps = &kvp->pools[p];

        json_array_append_new(pools, json_pack(
                                  "{s:i, s:s, s:I, s:I, s:b}",
                                  "pool", p, "file", ps->path,
                                  "owned",
                                  (json_int_t) json_object_size(ps->owned),
                                  "entries", (json_int_t) ps->entries,
                                  "pending", ps->dirty));
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:o}",
                     "dir", kvp->dir, "prefix", kvp->prefix,
                     "owned_file", kvp->owned_path, "pools", pools,
                     "n_refusals",
                     (json_int_t) json_object_size(kvp->refusals),
                     "refusals", first_members(kvp->refusals),
                     "unpublishable", first_members(kvp->up_errors),
                     "counters", kvp_counters_json(kvp));
}
