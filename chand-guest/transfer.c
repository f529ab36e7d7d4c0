/* chand-guest's file transfer side: see transfer.h. */

#include <config.h>
#include "transfer.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chan-wire.h"
#include "content-store.h"
#include "datastore.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"
#include "xfer-lane.h"

VLOG_DEFINE_THIS_MODULE(transfer);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

struct transfer {
    const struct transfer_ops *ops;
    void *aux;
    struct datastore *ds;
    struct content_store *cs;
    struct xfer_lane *lane;
    char *install_dir;
    uint64_t max_size;          /* Largest object pulled. */
    json_t *waiting;            /* digest -> {"keys": {key: true},
                                 * "error"?: reason}. */
    json_t *exports;            /* path -> {"digest": D, "size": S}. */
    uint64_t refused_allowlist; /* Install of a digest not allowed. */
    uint64_t refused_path;      /* Install path outside the directory. */
    uint64_t refused_request;   /* Restore nobody here asked for. */
    uint64_t refused_other;     /* Malformed records, failed pulls. */
};

/* Lane callbacks. */

static int
lane_send(const uint8_t *frame, size_t len, void *t_)
{
    struct transfer *t = t_;
    return t->ops->send(frame, len, t->aux);
}

static void
lane_key(void *t_, const uint8_t **keyp, size_t *lenp)
{
    struct transfer *t = t_;
    t->ops->key(t->aux, keyp, lenp);
}

struct find_path_ctx {
    uint64_t size;
    char *path;
};

static int
find_path_cb(void *ctx_, const struct ds_object *o)
{
    struct find_path_ctx *ctx = ctx_;
    struct stat st;

    if (o->size >= 0 && (uint64_t) o->size == ctx->size
        && !stat(o->path, &st) && S_ISREG(st.st_mode)
        && (uint64_t) st.st_size == ctx->size) {
        ctx->path = xstrdup(o->path);
        return 1;
    }
    return 0;
}

/* Returns the path of an export of 'digest' and 'size' (malloc()ed), or
 * NULL. */
static char *
find_export(const struct transfer *t, const char *digest, uint64_t size)
{
    const char *path;
    json_t *e;

    json_object_foreach (t->exports, path, e) {
        if (!strcmp(json_string_value(json_object_get(e, "digest")), digest)
            && (uint64_t) json_integer_value(json_object_get(e, "size"))
               == size) {
            return xstrdup(path);
        }
    }
    return NULL;
}

/* Serves only objects this VM registered (the objects table) and
 * exports. */
static const char *
lane_resolve(void *t_, const char *digest, uint64_t size, char **pathp,
             char **reasonp)
{
    struct transfer *t = t_;
    struct find_path_ctx ctx = { .size = size };

    ctx.path = find_export(t, digest, size);
    if (!ctx.path) {
        datastore_list_objects(t->ds, digest, find_path_cb, &ctx);
    }
    if (!ctx.path) {
        *reasonp = xasprintf("this VM holds no object %.12s of %"PRIu64
                             " bytes", digest, size);
        return XFER_ERR_NO_OBJECT;
    }
    *pathp = ctx.path;
    return NULL;
}

static void
lane_pulled(void *t_, const char *digest, const char *error,
            const char *reason)
{
    struct transfer *t = t_;
    json_t *w = json_object_get(t->waiting, digest);

    if (!w) {
        return;
    }
    if (error) {
        json_object_set_new(w, "error", json_sprintf(
                                "transfer from the host failed: %s (%s)",
                                reason && *reason ? reason : error, error));
    }
    json_t *keys = json_incref(json_object_get(w, "keys"));
    if (!error) {
        json_object_del(t->waiting, digest);
    }
    const char *key;
    json_t *v;
    json_object_foreach (keys, key, v) {
        t->ops->poke(t->aux, key);
    }
    json_decref(keys);
}

static const struct xfer_lane_ops lane_ops = {
    .send = lane_send,
    .key = lane_key,
    .resolve = lane_resolve,
    .pulled = lane_pulled,
};

struct transfer *
transfer_create(const struct transfer_config *cfg,
                const struct transfer_ops *ops, void *aux,
                struct datastore *ds)
{
    char *error = NULL;
    uint64_t max_size = cfg->max_size ? cfg->max_size
                                      : XFER_DEFAULT_MAX_SIZE;
    struct content_store *cs = content_store_open(cfg->content_dir,
                                                  2 * max_size, &error);
    if (!cs) {
        VLOG_ERR("content store: %s", error);
        free(error);
        return NULL;
    }

    struct transfer *t = xzalloc(sizeof *t);
    t->ops = ops;
    t->aux = aux;
    t->ds = ds;
    t->cs = cs;
    t->install_dir = xstrdup(cfg->install_dir ? cfg->install_dir
                                              : TRANSFER_DEFAULT_INSTALL_DIR);
    t->max_size = max_size;
    t->waiting = json_object();
    t->exports = json_object();

    struct xfer_lane_config lc = {
        .vid = cfg->vid,
        .mtu = cfg->mtu,
        .max_size = max_size,
    };
    t->lane = xfer_lane_create(&lc, &lane_ops, t, cs);
    return t;
}

void
transfer_destroy(struct transfer *t)
{
    if (t) {
        xfer_lane_destroy(t->lane);
        content_store_close(t->cs);
        json_decref(t->waiting);
        json_decref(t->exports);
        free(t->install_dir);
        free(t);
    }
}

void
transfer_input(struct transfer *t, const struct chan_wire_header *h,
               const uint8_t *payload, long long now)
{
    xfer_lane_input(t->lane, h, payload, now);
}

void
transfer_set_mtu(struct transfer *t, unsigned int mtu)
{
    xfer_lane_set_mtu(t->lane, mtu);
}

void
transfer_run(struct transfer *t, long long now)
{
    xfer_lane_run(t->lane, now);
}

void
transfer_wait(struct transfer *t, long long now)
{
    long long next = xfer_lane_next_wakeup(t->lane, now);
    if (next != LLONG_MAX) {
        poll_timer_wait_until(next);
    }
}

/* Content. */

static bool
in_use(const char *digest, void *t_)
{
    struct transfer *t = t_;
    return json_object_get(t->waiting, digest) != NULL;
}

/* Makes the content of 'digest' ('size' bytes) present for record 'key'.
 * Returns 0 with '*pathp' set, EINPROGRESS, or an errno value with
 * '*reasonp' set. */
static int
fetch(struct transfer *t, const char *key, const char *digest,
      uint64_t size, char **pathp, char **reasonp)
{
    *pathp = content_store_lookup(t->cs, digest);
    if (*pathp) {
        content_store_touch(t->cs, digest);
        return 0;
    }

    json_t *w = json_object_get(t->waiting, digest);
    const char *error = json_string_value(json_object_get(w, "error"));
    if (error) {
        *reasonp = xstrdup(error);
        json_object_del(t->waiting, digest);
        return EIO;
    }
    if (!w) {
        w = json_pack("{s{}}", "keys");
        json_object_set_new(t->waiting, digest, w);
    }
    json_object_set_new(json_object_get(w, "keys"), key, json_true());
    if (xfer_lane_is_pulling(t->lane, digest)) {
        return EINPROGRESS;
    }
    if (size > t->max_size) {
        *reasonp = xasprintf("cannot fetch %.12s: %"PRIu64" bytes is above "
                             "the transfer limit of %"PRIu64" bytes "
                             "(--max-transfer)", digest, size, t->max_size);
        json_object_del(t->waiting, digest);
        return EFBIG;
    }

    char *msg = NULL;
    int err = content_store_reserve(t->cs, size, in_use, t, NULL, &msg);
    if (!err) {
        err = xfer_lane_pull(t->lane, digest, size, time_msec(), &msg);
    }
    if (err) {
        *reasonp = xasprintf("cannot fetch %.12s: %s", digest,
                             msg ? msg : strerror(err));
        free(msg);
        json_object_del(t->waiting, digest);
        return err;
    }
    return EINPROGRESS;
}

/* True if 'path' is 'dir' itself or inside it. */
static bool
path_is_inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* Reads "size" of record value 'v'. */
static bool
value_size(const json_t *v, uint64_t *sizep)
{
    const json_t *s = json_object_get(v, "size");
    if (!json_is_integer(s) || json_integer_value(s) < 0) {
        return false;
    }
    *sizep = json_integer_value(s);
    return true;
}

static int
refuse(uint64_t *counter, char **reasonp, char *reason)
{
    (*counter)++;
    *reasonp = reason;
    return EPERM;
}

static int
prepare_install(struct transfer *t, const char *key, const char *digest,
                const json_t *v, json_t **extrap, char **reasonp)
{
    char *allow_key = xasprintf(TRANSFER_ALLOW_PREFIX"%s", digest);
    int error = datastore_get(t->ds, allow_key, NULL, NULL);
    free(allow_key);
    if (error) {
        return refuse(&t->refused_allowlist, reasonp, xasprintf(
                          "%.12s is not on the allowlist", digest));
    }

    const char *path = json_string_value(json_object_get(v, "path"));
    uint64_t size;
    if (!path || !value_size(v, &size)) {
        return refuse(&t->refused_other, reasonp, xstrdup(
                          "install record needs \"path\" and \"size\""));
    }
    if (datastore_check_object_path(path)) {
        return refuse(&t->refused_path, reasonp, xasprintf(
                          "install path refused: %s",
                          datastore_last_error()));
    }
    if (!path_is_inside(path, t->install_dir)
        || !strcmp(path, t->install_dir)) {
        return refuse(&t->refused_path, reasonp, xasprintf(
                          "install path %s is outside the install directory "
                          "%s", path, t->install_dir));
    }
    const char *mode = json_string_value(json_object_get(v, "mode"));
    if (mode && (strspn(mode, "01234567") != strlen(mode) || !*mode
                 || strlen(mode) > 4 || strtol(mode, NULL, 8) & 07000)) {
        return refuse(&t->refused_other, reasonp, xasprintf(
                          "install mode \"%.16s\" is not an octal mode "
                          "without setuid, setgid or sticky bits", mode));
    }

    char *content;
    error = fetch(t, key, digest, size, &content, reasonp);
    if (error) {
        if (error != EINPROGRESS) {
            t->refused_other++;
        }
        return error;
    }
    *extrap = json_pack("{ss ss ss}", "content", content, "path", path,
                        "mode", mode ? mode : "0755");
    free(content);
    return 0;
}

static int
prepare_restore(struct transfer *t, const char *key, const char *digest,
                const json_t *v, json_t **extrap, char **reasonp)
{
    char *request = NULL;
    bool deleted = true;
    int error = datastore_get_published(t->ds, key, &request, NULL, NULL,
                                        &deleted);
    json_t *req = !error && !deleted && request
                  ? json_loads(request, 0, NULL) : NULL;
    free(request);
    const char *path = json_string_value(json_object_get(req, "path"));
    const json_t *at = json_object_get(req, "at");
    if (!path || !json_is_integer(at)) {
        json_decref(req);
        return refuse(&t->refused_request, reasonp, xasprintf(
                          "no restore of %.12s was asked for in this VM",
                          digest));
    }
    if (!json_equal(at, json_object_get(v, "request"))) {
        /* The host has not answered the standing request yet. */
        json_decref(req);
        return EINPROGRESS;
    }
    const char *host_error = json_string_value(json_object_get(v, "error"));
    uint64_t size;
    if (host_error || !value_size(v, &size)) {
        char *reason = xstrdup(host_error ? host_error
                               : "restore answer without a size");
        json_decref(req);
        return refuse(&t->refused_other, reasonp, reason);
    }

    char *content;
    error = fetch(t, key, digest, size, &content, reasonp);
    if (error) {
        if (error != EINPROGRESS) {
            t->refused_other++;
        }
        json_decref(req);
        return error;
    }
    *extrap = json_pack("{ss ss}", "content", content, "path", path);
    free(content);
    json_decref(req);
    return 0;
}

int
transfer_prepare(void *t_, const char *key, const char *kind,
                 const char *value, json_t **extrap, char **reasonp)
{
    struct transfer *t = t_;
    bool install = !strcmp(kind, "install");
    const char *digest = strchr(key, '/');

    *extrap = NULL;
    *reasonp = NULL;
    if (!install && strcmp(kind, "restore")) {
        return 0;
    }
    digest = digest ? digest + 1 : "";
    if (!xfer_digest_is_valid(digest)) {
        return refuse(&t->refused_other, reasonp, xasprintf(
                          "\"%.80s\" does not end in a sha256 digest", key));
    }
    json_t *v = json_loads(value, 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return refuse(&t->refused_other, reasonp,
                      xstrdup("record value is not a JSON object"));
    }
    int error = (install ? prepare_install : prepare_restore)(
        t, key, digest, v, extrap, reasonp);
    json_decref(v);
    if (error && error != EINPROGRESS) {
        VLOG_WARN_RL(&rl, "%s: refused: %s", key, *reasonp);
    }
    return error;
}

int
transfer_request_restore(struct transfer *t, const char *digest,
                         const char *path, int64_t *atp, char **errorp)
{
    *errorp = NULL;
    if (datastore_check_object_digest(digest)
        || datastore_check_object_path(path)) {
        *errorp = xstrdup(datastore_last_error());
        return EINVAL;
    }
    if (path_is_inside(path, content_store_dir(t->cs))) {
        *errorp = xasprintf("%s is inside chand-guest's content store",
                            path);
        return EINVAL;
    }
    char *parent = xstrdup(path);
    char *slash = strrchr(parent, '/');
    struct stat st;
    if (slash == parent) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    if (stat(parent, &st) || !S_ISDIR(st.st_mode)) {
        *errorp = xasprintf("%s is not a directory", parent);
        free(parent);
        return ENOENT;
    }
    free(parent);

    char *key = xasprintf(TRANSFER_RESTORE_PREFIX"%s", digest);
    *atp = time_wall_msec();
    json_t *req = json_pack("{ss ss sI}", "digest", digest, "path", path,
                            "at", (json_int_t) *atp);
    char *text = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    int error = datastore_publish(t->ds, key, text, NULL);
    if (error) {
        *errorp = xstrdup(datastore_last_error());
    } else {
        VLOG_INFO("asked the host to restore %.12s to %s", digest, path);
    }
    free(text);
    json_decref(req);
    free(key);
    return error;
}

void
transfer_export_add(void *t_, const char *digest, uint64_t size,
                    const char *path)
{
    struct transfer *t = t_;

    json_object_set_new(t->exports, path, json_pack(
                            "{ss sI}", "digest", digest,
                            "size", (json_int_t) size));
    VLOG_DBG("exporting %s as %.12s (%"PRIu64" bytes)", path, digest, size);
}

void
transfer_export_remove(void *t_, const char *digest, const char *path)
{
    struct transfer *t = t_;

    json_object_del(t->exports, path);
    xfer_lane_close_served(t->lane, digest);
}

json_t *
transfer_status_json(const struct transfer *t, long long now)
{
    json_t *j = xfer_lane_status_json(t->lane, now);
    json_object_set_new(j, "refused", json_pack(
                            "{sI sI sI sI}",
                            "allowlist", (json_int_t) t->refused_allowlist,
                            "path", (json_int_t) t->refused_path,
                            "request", (json_int_t) t->refused_request,
                            "other", (json_int_t) t->refused_other));
    json_object_set_new(j, "content_dir",
                        json_string(content_store_dir(t->cs)));
    json_object_set_new(j, "content_bytes", json_integer(
                            content_store_usage(t->cs)));
    return j;
}
