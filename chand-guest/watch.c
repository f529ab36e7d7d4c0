/* chand-guest's --watch-dir: see watch.h. */

#include <config.h>
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "datastore.h"
#include "hmap.h"
#include "list.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(watch);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

/* The hasher. */

int
watch_hasher_open(struct watch_hasher *h, const char *path)
{
    memset(h, 0, sizeof *h);
    h->fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                 | O_NOCTTY);
    if (h->fd < 0) {
        return errno;
    }
    if (fstat(h->fd, &h->start)) {
        int error = errno;
        watch_hasher_close(h);
        return error;
    } else if (!S_ISREG(h->start.st_mode)) {
        watch_hasher_close(h);
        return EINVAL;
    }
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx) {
        out_of_memory();
    }
    EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
    return 0;
}

/* True if 'a' and 'b' describe the same, unchanged file. */
static bool
same_file(const struct stat *a, const struct stat *b)
{
    return (a->st_dev == b->st_dev && a->st_ino == b->st_ino
            && a->st_size == b->st_size
            && a->st_mtim.tv_sec == b->st_mtim.tv_sec
            && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
            && a->st_ctim.tv_sec == b->st_ctim.tv_sec
            && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec);
}

/* At the end of the file: checks it is unchanged, and finishes. */
static enum watch_hash_result
hasher_finish(struct watch_hasher *h, int *errorp)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    struct stat now;

    if (fstat(h->fd, &now)) {
        *errorp = errno;
        return WATCH_HASH_FAILED;
    } else if (!same_file(&h->start, &now) || h->done != now.st_size) {
        return WATCH_HASH_CHANGED;
    }
    EVP_DigestFinal_ex(h->ctx, md, &len);
    for (unsigned int i = 0; i < len && i < 32; i++) {
        snprintf(h->digest + 2 * i, 3, "%02x", md[i]);
    }
    return WATCH_HASH_DONE;
}

enum watch_hash_result
watch_hasher_step(struct watch_hasher *h, size_t budget, int *errorp)
{
    static char buf[64 * 1024];

    *errorp = 0;
    while (budget > 0) {
        size_t want = budget < sizeof buf ? budget : sizeof buf;
        ssize_t n = read(h->fd, buf, want);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            *errorp = errno;
            return WATCH_HASH_FAILED;
        } else if (n == 0) {
            return hasher_finish(h, errorp);
        }
        EVP_DigestUpdate(h->ctx, buf, n);
        h->done += n;
        budget -= n;
        if (h->done > h->start.st_size) {
            return WATCH_HASH_CHANGED;      /* It grew. */
        }
    }
    return WATCH_HASH_MORE;
}

void
watch_hasher_close(struct watch_hasher *h)
{
    if (h->fd >= 0) {
        close(h->fd);
    }
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    h->fd = -1;
}

/* The watch. */

/* A name waiting to be looked at. */
struct watch_name {
    struct hmap_node node;      /* In 'names', by hash of 'name'. */
    struct list list_node;      /* In 'queue'. */
    char *name;                 /* Owned. */
};

struct watch {
    char *dir;                  /* Canonical path, owned. */
    struct datastore *ds;       /* Borrowed. */
    int fd;                     /* inotify. */
    bool dead;                  /* The directory went away. */
    bool scan;                  /* A scan is due. */
    struct hmap names;          /* struct watch_name, all in 'queue'. */
    struct list queue;          /* The order to look at them. */
    char *current;              /* Name being hashed, owned, or NULL. */
    struct watch_hasher hasher;
    size_t chunk;
    struct watch_stats stats;
};

static size_t
name_hash(const char *name)
{
    return hash_string_nocase(name);
}

static struct watch_name *
find_name(const struct watch *w, const char *name)
{
    struct watch_name *wn;

    HMAP_FOR_EACH_WITH_HASH (wn, node, name_hash(name), &w->names) {
        if (!strcmp(wn->name, name)) {
            return wn;
        }
    }
    return NULL;
}

/* Queues 'name' (borrowed, copied) unless it is queued already.  If it is
 * being hashed, the hash is abandoned: the file changed. */
static void
queue_name(struct watch *w, const char *name)
{
    if (w->current && !strcmp(w->current, name)) {
        watch_hasher_close(&w->hasher);
        free(w->current);
        w->current = NULL;
        w->stats.rehashed++;
    }
    if (!find_name(w, name)) {
        struct watch_name *wn = xmalloc(sizeof *wn);

        wn->name = xstrdup(name);
        hmap_insert(&w->names, &wn->node, name_hash(name));
        list_push_back(&w->queue, &wn->list_node);
    }
}

/* Takes the first queued name off the queue and returns it (the caller
 * owns and frees it), or NULL if none. */
static char *
pop_name(struct watch *w)
{
    if (list_is_empty(&w->queue)) {
        return NULL;
    }
    struct watch_name *wn = LIST_ELEM(list_front(&w->queue),
                                      struct watch_name, list_node);
    char *name = wn->name;

    list_remove(&wn->list_node);
    hmap_remove(&w->names, &wn->node);
    free(wn);
    return name;
}

struct watch *
watch_create(const char *dir, struct datastore *ds)
{
    char *real = realpath(dir, NULL);
    struct watch *w;
    int error;

    if (!real) {
        error = errno;
        VLOG_ERR("--watch-dir %s: %s", dir, strerror(error));
        errno = error;
        return NULL;
    }
    w = xzalloc(sizeof *w);
    w->dir = real;
    w->ds = ds;
    w->chunk = WATCH_CHUNK;
    w->hasher.fd = -1;
    w->scan = true;
    hmap_init(&w->names);
    list_init(&w->queue);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0
        || inotify_add_watch(w->fd, w->dir,
                             IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE
                             | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF
                             | IN_ONLYDIR) < 0) {
        error = errno;
        VLOG_ERR("--watch-dir %s: cannot watch it: %s", w->dir,
                 strerror(error));
        watch_destroy(w);
        errno = error;
        return NULL;
    }
    VLOG_INFO("watching %s: its regular files are registered as objects",
              w->dir);
    return w;
}

void
watch_destroy(struct watch *w)
{
    if (w) {
        char *name;

        while ((name = pop_name(w))) {
            free(name);
        }
        hmap_destroy(&w->names);
        watch_hasher_close(&w->hasher);
        free(w->current);
        if (w->fd >= 0) {
            close(w->fd);
        }
        free(w->dir);
        free(w);
    }
}

/* Handles one inotify event. */
static void
handle_event(struct watch *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        w->stats.overflows++;
        w->scan = true;
        VLOG_WARN_RL(&rl, "%s: inotify queue overflowed: scanning again",
                     w->dir);
    } else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        if (!w->dead) {
            VLOG_ERR("%s: the watched directory went away: no longer "
                     "watching it (its objects stay registered)", w->dir);
        }
        w->dead = true;
    } else if (ev->len && ev->name[0]) {
        w->stats.events++;
        queue_name(w, ev->name);
    }
}

/* Reads what inotify has (a bounded amount per call). */
static void
read_events(struct watch *w)
{
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct
                                                           inotify_event))));

    for (int i = 0; i < 16 && !w->dead; i++) {
        ssize_t n = read(w->fd, buf, sizeof buf);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n <= 0) {
            if (n < 0 && errno != EAGAIN) {
                VLOG_WARN_RL(&rl, "%s: reading inotify events: %s", w->dir,
                             strerror(errno));
            }
            return;
        }
        for (char *p = buf; p < buf + n; ) {
            const struct inotify_event *ev = (const void *) p;

            handle_event(w, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

/* Queues the registered objects directly in the directory, so that those
 * whose file went away while nobody watched are unregistered. */
static int
queue_registered_cb(void *w_, const struct ds_object *o)
{
    struct watch *w = w_;
    size_t len = strlen(w->dir);

    if (!strncmp(o->path, w->dir, len) && o->path[len] == '/') {
        const char *name = o->path + len + 1;

        if (*name && !strchr(name, '/')) {
            queue_name(w, name);
        }
    }
    return 0;
}

/* Queues every entry of the directory and every object registered in
 * it. */
static void
scan(struct watch *w)
{
    DIR *d = opendir(w->dir);
    struct dirent *de;

    w->scan = false;
    w->stats.scans++;
    if (!d) {
        w->stats.errors++;
        VLOG_WARN_RL(&rl, "%s: cannot scan it: %s", w->dir, strerror(errno));
        return;
    }
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            queue_name(w, de->d_name);
        }
    }
    closedir(d);
    if (datastore_list_objects(w->ds, NULL, queue_registered_cb, w)) {
        w->stats.errors++;
        VLOG_WARN_RL(&rl, "%s: %s", w->dir, datastore_last_error());
    }
}

/* Unregisters 'path' (borrowed) if it is registered. */
static void
unregister(struct watch *w, const char *path)
{
    int error = datastore_object_remove(w->ds, path);

    if (!error) {
        w->stats.removed++;
        VLOG_INFO("%s: unregistered", path);
    } else if (error != ENOENT) {
        w->stats.errors++;
        VLOG_WARN_RL(&rl, "%s", datastore_last_error());
    }
}

/* Looks at 'name' (borrowed): starts hashing it (returns true) or
 * unregisters it (returns false). */
static bool
look_at(struct watch *w, const char *name)
{
    char *path = xasprintf("%s/%s", w->dir, name);
    int error = watch_hasher_open(&w->hasher, path);

    if (!error) {
        w->current = xstrdup(name);
    } else {
        if (error != ENOENT && error != ELOOP && error != EINVAL) {
            w->stats.errors++;
            VLOG_WARN_RL(&rl, "%s: %s", path, strerror(error));
        }
        unregister(w, path);
    }
    free(path);
    return !error;
}

/* Registers the file just hashed. */
static void
register_current(struct watch *w)
{
    char *path = xasprintf("%s/%s", w->dir, w->current);
    int error = datastore_object_add(w->ds, path, w->hasher.digest,
                                     w->hasher.done, NULL, NULL);

    if (error) {
        w->stats.errors++;
        VLOG_WARN_RL(&rl, "%s", datastore_last_error());
    } else {
        w->stats.added++;
        VLOG_DBG("%s: registered as %s", path, w->hasher.digest);
    }
    free(path);
}

/* Stops hashing the current file. */
static void
end_current(struct watch *w)
{
    watch_hasher_close(&w->hasher);
    free(w->current);
    w->current = NULL;
}

/* Hashes one chunk of the current file, and registers it at its end. */
static void
hash_step(struct watch *w)
{
    int64_t before = w->hasher.done;
    int error;
    enum watch_hash_result r = watch_hasher_step(&w->hasher, w->chunk,
                                                 &error);

    w->stats.bytes_hashed += w->hasher.done - before;
    switch (r) {
    case WATCH_HASH_MORE:
        return;
    case WATCH_HASH_DONE:
        w->stats.hashed++;
        register_current(w);
        end_current(w);
        break;
    case WATCH_HASH_CHANGED: {
        char *name = xstrdup(w->current);

        w->stats.rehashed++;
        end_current(w);
        queue_name(w, name);
        free(name);
        break;
    }
    case WATCH_HASH_FAILED:
        w->stats.errors++;
        VLOG_WARN_RL(&rl, "%s/%s: %s", w->dir, w->current, strerror(error));
        end_current(w);
        break;
    }
}

void
watch_run(struct watch *w)
{
    if (w->dead) {
        return;
    }
    read_events(w);
    if (w->scan) {
        scan(w);
    }
    if (datastore_in_transaction(w->ds)) {
        return;                 /* Someone else's; watch_wait() wakes us. */
    }
    for (int n = 0; !w->current && n < WATCH_MAX_LOOKS; n++) {
        char *name = pop_name(w);

        if (!name) {
            return;
        }
        look_at(w, name);
        free(name);
    }
    if (w->current) {
        hash_step(w);
    }
}

void
watch_wait(struct watch *w)
{
    if (w->dead) {
        return;
    }
    poll_fd_wait(w->fd, POLLIN);
    if (!watch_is_idle(w) || w->scan) {
        poll_immediate_wake();
    }
}

bool
watch_is_idle(const struct watch *w)
{
    return !w->current && list_is_empty(&w->queue) && !w->scan;
}

const char *
watch_get_dir(const struct watch *w)
{
    return w->dir;
}

void
watch_set_chunk(struct watch *w, size_t chunk)
{
    w->chunk = chunk ? chunk : WATCH_CHUNK;
}

void
watch_get_stats(const struct watch *w, struct watch_stats *stats)
{
    *stats = w->stats;
}

json_t *
watch_status_json(const struct watch *w)
{
    const struct watch_stats *s = &w->stats;
    const struct {
        const char *name;
        uint64_t value;
    } counters[] = {
        { "scans", s->scans }, { "overflows", s->overflows },
        { "events", s->events }, { "hashed", s->hashed },
        { "bytes_hashed", s->bytes_hashed }, { "rehashed", s->rehashed },
        { "added", s->added }, { "removed", s->removed },
        { "errors", s->errors },
    };
    json_t *status = json_pack("{s:s, s:b, s:I, s:s?}", "dir", w->dir,
                               "watching", !w->dead,
                               "queued", (json_int_t) hmap_count(&w->names),
                               "hashing", w->current);

    for (size_t i = 0; i < sizeof counters / sizeof *counters; i++) {
        json_object_set_new(status, counters[i].name,
                            json_integer(counters[i].value));
    }
    return status;
}
