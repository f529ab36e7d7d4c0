/* chand-guest's local API: see api.h. */

#include <config.h>
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <limits.h>

#include "jsonrpc.h"
#include "poll-loop.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(api);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(20, 20);

/* Requests handled per connection per api_run(), so that one busy client
 * cannot starve the others or the channel. */
#define API_MAX_RECV_PER_RUN 50

struct api_conn {
    struct jsonrpc *rpc;
    char **prefixes;            /* Watched prefixes ("" watches all). */
    size_t n_prefixes;
};

/* A reply held back until the publications before it are committed. */
struct api_held_reply {
    json_t *id;                 /* Owned reference. */
    json_t *result;             /* Owned; NULL for an error reply. */
    char *error;                /* The error text of an error reply. */
    bool uncommitted;           /* A success that waits for the group's
                                 * commit. */
};

struct api {
    struct pstream *listener;
    struct datastore *ds;
    api_status_func *status;
    api_restore_func *restore;
    void *restore_aux;
    void *aux;
    struct api_conn conns[API_MAX_CONNS];
    size_t n_conns;
    struct api_stats stats;

    /* Group commit of publications.  The publish and unpublish requests
     * that one connection sends in a row, within one conn_run(), share one
     * transaction (and so one fsync), and their replies are held until it
     * is committed: a reply still says that the record is durable.  Any
     * other request, and the end of the connection's turn, commits the
     * group and sends the held replies first, in order. */
    bool grouping;              /* Replies are being held. */
    bool group_txn;             /* The group's transaction is open. */
    struct api_held_reply *held;
    size_t n_held, allocated_held;
};

static char *
listen_name(const char *path)
{
    const char *prefix = strncmp(path, "punix:", 6) ? "punix:" : "";
    size_t len = strlen(prefix) + strlen(path) + 1;
    char *name = malloc(len);

    if (name) {
        snprintf(name, len, "%s%s", prefix, path);
    }
    return name;
}

struct api *
api_create(const char *path, struct datastore *ds, api_status_func *status,
           void *aux)
{
    struct api *api;
    char *name;
    int error;

    if (!path || !*path) {
        VLOG_ERR("no path for the local API socket");
        errno = EINVAL;
        return NULL;
    }
    name = listen_name(path);
    api = name ? calloc(1, sizeof *api) : NULL;
    if (!api) {
        VLOG_ERR("%s: out of memory", path);
        free(name);
        errno = ENOMEM;
        return NULL;
    }
    error = pstream_open(name, &api->listener);
    free(name);
    if (error) {
        VLOG_ERR("%s: cannot listen for the local API: %s", path,
                 strerror(error));
        free(api);
        errno = error;
        return NULL;
    }
    api->ds = ds;
    api->status = status;
    api->aux = aux;
    return api;
}

static void
conn_free(struct api_conn *c)
{
    jsonrpc_close(c->rpc);
    for (size_t i = 0; i < c->n_prefixes; i++) {
        free(c->prefixes[i]);
    }
    free(c->prefixes);
    memset(c, 0, sizeof *c);
}

/* Closes connection 'i', moving the last one into its slot. */
static void
conn_close(struct api *api, size_t i)
{
    conn_free(&api->conns[i]);
    api->conns[i] = api->conns[--api->n_conns];
    memset(&api->conns[api->n_conns], 0, sizeof api->conns[api->n_conns]);
}

void
api_destroy(struct api *api)
{
    if (api) {
        while (api->n_conns) {
            conn_close(api, api->n_conns - 1);
        }
        pstream_close(api->listener);
        free(api->held);        /* Empty: see group_flush(). */
        free(api);
    }
}

const char *
api_get_name(const struct api *api)
{
    return pstream_get_name(api->listener);
}

/* Replies. */

static void reply_error(struct api *api, struct api_conn *c,
                        const json_t *id, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends a held reply to request 'id' (borrowed): 'result' (stolen) or
 * else 'error' (copied). */
static void
hold_reply(struct api *api, const json_t *id, json_t *result,
           const char *error)
{
    if (api->n_held >= api->allocated_held) {
        api->allocated_held = (api->allocated_held
                               ? 2 * api->allocated_held : 64);
        api->held = xrealloc(api->held,
                             api->allocated_held * sizeof *api->held);
    }
    api->held[api->n_held++] = (struct api_held_reply) {
        .id = json_incref((json_t *) id),
        .result = result,
        .error = result ? NULL : xstrdup(error),
        .uncommitted = result && api->group_txn,
    };
}

/* Sends an error reply 'text' to request 'id' (borrowed) and counts a bad
 * request. */
static void
send_error(struct api *api, struct api_conn *c, const json_t *id,
           const char *text)
{
    api->stats.bad_requests++;
    jsonrpc_send(c->rpc, jsonrpc_create_error(json_string(text), id));
}

/* Sends a reply with 'result' (stolen) to request 'id' (borrowed) and
 * counts a good request. */
static void
send_reply(struct api *api, struct api_conn *c, json_t *result,
           const json_t *id)
{
    int error = jsonrpc_send(c->rpc, jsonrpc_create_reply(result, id));

    if (error == EMSGSIZE) {
        /* Not sticky: the reply was too large (a huge "list"). */
        reply_error(api, c, id, "internal error: reply larger than %d "
                    "bytes", JSONRPC_MAX_MSG);
    } else {
        api->stats.requests++;
    }
}

/* Sends (or, in a group of publications, holds) an error reply with a
 * formatted string to request 'id' (borrowed). */
static void
reply_error(struct api *api, struct api_conn *c, const json_t *id,
            const char *format, ...)
{
    char text[512];
    va_list args;

    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (api->grouping) {
        hold_reply(api, id, NULL, text);
    } else {
        send_error(api, c, id, text);
    }
}

/* Sends (or, in a group of publications, holds) a reply with 'result'
 * (stolen) to request 'id' (borrowed). */
static void
reply(struct api *api, struct api_conn *c, json_t *result, const json_t *id)
{
    if (api->grouping) {
        hold_reply(api, id, result, NULL);
    } else {
        send_reply(api, c, result, id);
    }
}

/* Group commit of publications (see struct api). */

/* Turns the held successes that wait for the group's transaction into
 * errors: the transaction is lost ('why' says why). */
static void
group_fail(struct api *api, const char *why)
{
    for (size_t i = 0; i < api->n_held; i++) {
        struct api_held_reply *h = &api->held[i];

        if (h->uncommitted) {
            json_decref(h->result);
            h->result = NULL;
            h->error = xasprintf("internal error: %s", why);
            h->uncommitted = false;
        }
    }
    api->group_txn = false;
}

/* Called before a publish or unpublish request: holds the replies from now
 * on and makes sure that the group's transaction is open.  If another
 * transaction is open, or one cannot begin, the request goes its own way
 * (it reports the error). */
static void
group_begin(struct api *api)
{
    if (!api->grouping) {
        if (datastore_in_transaction(api->ds)) {
            return;             /* Not ours: publish into it as before. */
        }
        api->grouping = true;
    }
    if (!api->group_txn && !datastore_in_transaction(api->ds)
        && !datastore_begin(api->ds)) {
        api->group_txn = true;
    }
}

/* Called after a publication in the group: if the datastore gave up the
 * whole transaction, the publications held before are lost. */
static void
group_check(struct api *api)
{
    if (api->group_txn && !datastore_in_transaction(api->ds)) {
        group_fail(api, datastore_last_error());
    }
}

/* Commits the group's transaction, if any, and sends the held replies to
 * 'c' in order. */
static void
group_flush(struct api *api, struct api_conn *c)
{
    if (!api->grouping) {
        return;
    }
    if (api->group_txn) {
        int error = datastore_commit(api->ds);

        api->group_txn = false;
        api->stats.publish_commits++;
        if (error) {
            VLOG_ERR_RL(&rl, "committing %zu publications failed: %s",
                        api->n_held, datastore_last_error());
            group_fail(api, datastore_last_error());
        }
    }
    api->grouping = false;
    for (size_t i = 0; i < api->n_held; i++) {
        struct api_held_reply *h = &api->held[i];

        if (h->result) {
            send_reply(api, c, h->result, h->id);
        } else {
            send_error(api, c, h->id, h->error);
            free(h->error);
        }
        json_decref(h->id);
    }
    api->n_held = 0;
}

/* Parses stored JSON text 'text' into a new reference.  The datastore only
 * ever holds JSON produced by chand-guest, so failure means corruption:
 * the text is returned as a JSON string instead. */
static json_t *
parse_value(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    return v ? v : json_string(text);
}

static json_t *
record_json(const char *key, const char *value, int64_t version)
{
    json_t *v = parse_value(value);

    return json_pack("{s:s, s:o, s:I}", "key", key, "value",
                     v ? v : json_null(), "version", (json_int_t) version);
}

/* Returns true if 'params' (borrowed) is an array of at most one string,
 * and stores that string or NULL in '*argp'. */
static bool
get_optional_string(const json_t *params, const char **argp)
{
    *argp = NULL;
    if (json_array_size(params) == 0) {
        return true;
    } else if (json_array_size(params) == 1
               && json_is_string(json_array_get(params, 0))) {
        *argp = json_string_value(json_array_get(params, 0));
        return true;
    }
    return false;
}

/* Returns true if 'key' is usable with the datastore (no NUL inside:
 * jansson strings may hold one). */
static bool
string_is_clean(const json_t *s)
{
    return strlen(json_string_value(s)) == json_string_length(s);
}

static void
handle_get(struct api *api, struct api_conn *c, const json_t *params,
           const json_t *id)
{
    const json_t *k = json_array_get(params, 0);
    char *value = NULL;
    int64_t version;
    int error;

    if (json_array_size(params) != 1 || !json_is_string(k)
        || !string_is_clean(k) || !json_string_length(k)) {
        reply_error(api, c, id, "invalid params: get takes one nonempty "
                    "string, the key");
        return;
    }
    error = datastore_get(api->ds, json_string_value(k), &value, &version);
    if (error == ENOENT) {
        reply_error(api, c, id, "not found");
    } else if (error == EINVAL) {
        reply_error(api, c, id, "invalid params: %s",
                    datastore_last_error());
    } else if (error) {
        reply_error(api, c, id, "internal error: %s",
                    datastore_last_error());
    } else {
        reply(api, c, record_json(json_string_value(k), value, version),
              id);
    }
    free(value);
}

static int
list_cb(void *array, const char *key, const char *value, int64_t version)
{
    json_array_append_new(array, record_json(key, value, version));
    return 0;
}

static void
handle_list(struct api *api, struct api_conn *c, const json_t *params,
            const json_t *id)
{
    const char *prefix;
    json_t *array;
    int error;

    if (!get_optional_string(params, &prefix)
        || (prefix && !string_is_clean(json_array_get(params, 0)))) {
        reply_error(api, c, id, "invalid params: list takes an optional "
                    "string, the key prefix");
        return;
    }
    array = json_array();
    error = datastore_list(api->ds, prefix, list_cb, array);
    if (error) {
        json_decref(array);
        reply_error(api, c, id, "internal error: %s",
                    datastore_last_error());
        return;
    }
    reply(api, c, array, id);
}

static void
handle_watch(struct api *api, struct api_conn *c, const json_t *params,
             const json_t *id)
{
    const char *prefix;
    struct ds_state st;
    char **p;

    if (!get_optional_string(params, &prefix)
        || (prefix && !string_is_clean(json_array_get(params, 0)))) {
        reply_error(api, c, id, "invalid params: watch takes an optional "
                    "string, the key prefix");
        return;
    }
    if (c->n_prefixes >= 64) {
        reply_error(api, c, id, "invalid params: too many watches on one "
                    "connection (64)");
        return;
    }
    p = realloc(c->prefixes, (c->n_prefixes + 1) * sizeof *p);
    if (!p || !(p[c->n_prefixes] = strdup(prefix ? prefix : ""))) {
        if (p) {
            c->prefixes = p;
        }
        reply_error(api, c, id, "internal error: out of memory");
        return;
    }
    c->prefixes = p;
    c->n_prefixes++;

    datastore_get_state(api->ds, &st);
    reply(api, c, json_pack("{s:b, s:s, s:I}", "watching", 1,
                            "prefix", prefix ? prefix : "",
                            "position", (json_int_t) st.position), id);
}

/* Checks published key 'k' (a JSON string, borrowed); replies with the
 * error and returns false if it is bad. */
static bool
check_published_key(struct api *api, struct api_conn *c, const json_t *id,
                     const json_t *k)
{
    int error;

    if (!string_is_clean(k)) {
        reply_error(api, c, id, "invalid params: bad key: key contains "
                    "U+0000");
        return false;
    }
    error = datastore_check_published_key(json_string_value(k));
    if (error == EPERM) {
        reply_error(api, c, id, "invalid params: reserved key: %s",
                    datastore_last_error());
        return false;
    } else if (error) {
        reply_error(api, c, id, "invalid params: bad key: %s",
                    datastore_last_error());
        return false;
    }
    return true;
}

static void
handle_publish(struct api *api, struct api_conn *c, const json_t *params,
               const json_t *id)
{
    const json_t *k = json_array_get(params, 0);
    const json_t *v = json_array_get(params, 1);
    int64_t version;
    char *text;
    int error;

    if (json_array_size(params) != 2 || !json_is_string(k)) {
        reply_error(api, c, id, "invalid params: publish takes two, the "
                    "key (a string) and the value (any JSON value)");
        return;
    }
    if (!check_published_key(api, c, id, k)) {
        return;
    }
    error = datastore_check_published_json(v, &text);
    if (error == ENOMEM) {
        reply_error(api, c, id, "invalid params: bad value: it cannot be "
                    "rendered as JSON");
        return;
    }
    if (!error) {
        error = datastore_publish_checked(api->ds, json_string_value(k),
                                          text, &version);
        group_check(api);
    }
    if (!error) {
        reply(api, c, json_pack("{s:I}", "version", (json_int_t) version),
              id);
    } else if (error == EINVAL) {
        /* The key was checked above: it is the value. */
        reply_error(api, c, id, "invalid params: bad value: %s",
                    datastore_last_error());
    } else if (error == EDQUOT) {
        reply_error(api, c, id, "over limit: %s", datastore_last_error());
    } else {
        reply_error(api, c, id, "internal error: %s",
                    datastore_last_error());
    }
    free(text);
}

static void
handle_unpublish(struct api *api, struct api_conn *c, const json_t *params,
                 const json_t *id)
{
    const json_t *k = json_array_get(params, 0);
    int64_t version;
    int error;

    if (json_array_size(params) != 1 || !json_is_string(k)) {
        reply_error(api, c, id, "invalid params: unpublish takes one "
                    "string, the key");
        return;
    }
    if (!check_published_key(api, c, id, k)) {
        return;
    }
    error = datastore_unpublish(api->ds, json_string_value(k), &version);
    group_check(api);
    if (error == ENOENT) {
        reply_error(api, c, id, "not found: unknown or already withdrawn "
                    "key");
    } else if (error) {
        reply_error(api, c, id, "internal error: %s",
                    datastore_last_error());
    } else {
        reply(api, c, json_pack("{s:I}", "version", (json_int_t) version),
              id);
    }
}

static int
published_cb(void *array, const struct ds_published *p)
{
    json_t *value = p->deleted ? json_null() : parse_value(p->value);

    json_array_append_new(array, json_pack(
                              "{s:s, s:o, s:I, s:I, s:b, s:s}",
                              "key", p->key,
                              "value", value ? value : json_null(),
                              "version", (json_int_t) p->version,
                              "acked_version",
                              (json_int_t) p->acked_version,
                              "deleted", p->deleted,
                              "state", (ds_published_pending(p)
                                        ? "pending" : "delivered")));
    return 0;
}

static void
handle_published(struct api *api, struct api_conn *c, const json_t *params,
                 const json_t *id)
{
    struct ds_pub_counts counts;
    const char *prefix;
    json_t *array;
    int error;

    if (!get_optional_string(params, &prefix)
        || (prefix && !string_is_clean(json_array_get(params, 0)))) {
        reply_error(api, c, id, "invalid params: published takes an "
                    "optional string, the key prefix");
        return;
    }
    array = json_array();
    error = datastore_list_published(api->ds, prefix, true, published_cb,
                                     array, &counts);
    if (error) {
        json_decref(array);
        reply_error(api, c, id, "internal error: %s",
                    datastore_last_error());
        return;
    }
    reply(api, c, json_pack("{s:o, s:I, s:I, s:I}", "records", array,
                            "count", (json_int_t) counts.records,
                            "withdrawn", (json_int_t) counts.withdrawn,
                            "pending", (json_int_t) counts.pending), id);
}

/* Objects. */

/* Sends the error reply for a refused object request, counting it. */
static void
reply_object_error(struct api *api, struct api_conn *c, const json_t *id,
                   int error, const char *what)
{
    api->stats.object_errors++;
    if (error == EINVAL) {
        reply_error(api, c, id, "invalid params: %s: %s", what,
                    datastore_last_error());
    } else if (error == ENOENT) {
        reply_error(api, c, id, "not found: %s", datastore_last_error());
    } else if (error == EDQUOT) {
        reply_error(api, c, id, "over limit: %s", datastore_last_error());
    } else {
        reply_error(api, c, id, "internal error: %s",
                    datastore_last_error());
    }
}

/* Returns the single object of 'params' (borrowed), or NULL. */
static const json_t *
object_params(const json_t *params)
{
    const json_t *o = json_array_get(params, 0);

    return json_array_size(params) == 1 && json_is_object(o) ? o : NULL;
}

/* Returns member 'name' of 'o' if it is a string without U+0000, else
 * NULL. */
static const char *
member_string(const json_t *o, const char *name)
{
    const json_t *s = json_object_get(o, name);

    return json_is_string(s) && string_is_clean(s)
           ? json_string_value(s) : NULL;
}

/* Checks that 'path' is a regular file (not a symbolic link) of 'size'
 * bytes in a directory named by its canonical path.  Returns NULL if so,
 * else a message (malloc()ed, owned by the caller). */
static char *
check_object_file(const char *path, int64_t size)
{
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    char *real, *problem = NULL;
    struct stat st;

    *slash = '\0';
    real = realpath(*dir ? dir : "/", NULL);
    if (!real) {
        problem = xasprintf("%s: %s", *dir ? dir : "/", strerror(errno));
    } else if (strcmp(real, *dir ? dir : "/")) {
        problem = xasprintf("%s: the directory is not named by its "
                            "canonical path (%s): a symbolic link", dir,
                            real);
    } else if (lstat(path, &st)) {
        problem = xasprintf("%s: %s", path, strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
        problem = xasprintf("%s: a symbolic link, not a regular file", path);
    } else if (!S_ISREG(st.st_mode)) {
        problem = xasprintf("%s: not a regular file", path);
    } else if (st.st_size != size) {
        problem = xasprintf("%s: the file has %lld bytes, not %"PRId64,
                            path, (long long) st.st_size, size);
    }
    free(real);
    free(dir);
    return problem;
}

/* Renders member 'name' of 'o' (NULL if absent) as JSON text in '*textp'
 * (malloc()ed, owned by the caller). */
static void
member_text(const json_t *o, const char *name, char **textp)
{
    const json_t *v = json_object_get(o, name);

    *textp = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static void
handle_object_add(struct api *api, struct api_conn *c, const json_t *params,
                  const json_t *id)
{
    const json_t *o = object_params(params);
    const char *path = member_string(o, "path");
    const char *digest = member_string(o, "digest");
    const json_t *size = json_object_get(o, "size");
    char *flags, *param_text, *problem;
    int error;

    if (!path || !digest || !json_is_integer(size)) {
        api->stats.object_errors++;
        reply_error(api, c, id, "invalid params: object-add takes one "
                    "object {\"path\": string, \"digest\": string, "
                    "\"size\": integer, \"flags\"?: [string], "
                    "\"params\"?: {string: string}}");
        return;
    }
    error = datastore_check_object_path(path);
    if (error) {
        reply_object_error(api, c, id, error, "bad path");
        return;
    }
    problem = check_object_file(path, json_integer_value(size));
    if (problem) {
        api->stats.object_errors++;
        reply_error(api, c, id, "invalid params: bad file: %s", problem);
        free(problem);
        return;
    }
    member_text(o, "flags", &flags);
    member_text(o, "params", &param_text);
    error = datastore_object_add(api->ds, path, digest,
                                 json_integer_value(size), flags,
                                 param_text);
    if (error) {
        reply_object_error(api, c, id, error, "bad object");
    } else {
        api->stats.objects_added++;
        reply(api, c, json_pack("{s:s, s:s}", "path", path,
                                "digest", digest), id);
    }
    free(flags);
    free(param_text);
}

static void
handle_object_remove(struct api *api, struct api_conn *c,
                     const json_t *params, const json_t *id)
{
    const char *path = member_string(object_params(params), "path");
    int error;

    if (!path) {
        api->stats.object_errors++;
        reply_error(api, c, id, "invalid params: object-remove takes one "
                    "object {\"path\": string}");
        return;
    }
    error = datastore_object_remove(api->ds, path);
    if (error) {
        reply_object_error(api, c, id, error, "bad path");
    } else {
        api->stats.objects_removed++;
        reply(api, c, json_pack("{s:s}", "path", path), id);
    }
}

static int
objects_cb(void *array, const struct ds_object *o)
{
    json_t *flags = parse_value(o->flags);
    json_t *params = parse_value(o->params);

    json_array_append_new(array, json_pack(
                              "{s:s, s:s, s:I, s:o, s:o, s:I}",
                              "path", o->path, "digest", o->digest,
                              "size", (json_int_t) o->size,
                              "flags", flags ? flags : json_array(),
                              "params", params ? params : json_object(),
                              "added_at", (json_int_t) o->added_at));
    return 0;
}

static void
handle_objects(struct api *api, struct api_conn *c, const json_t *params,
               const json_t *id)
{
    const json_t *o = object_params(params);
    const char *digest = member_string(o, "digest");
    json_t *array;
    int error;

    if (json_array_size(params) && (!o || (json_object_get(o, "digest")
                                           && !digest))) {
        api->stats.object_errors++;
        reply_error(api, c, id, "invalid params: objects takes nothing or "
                    "one object {\"digest\"?: string}");
        return;
    }
    array = json_array();
    error = datastore_list_objects(api->ds, digest, objects_cb, array);
    if (error) {
        json_decref(array);
        reply_object_error(api, c, id, error, "bad digest");
        return;
    }
    reply(api, c, array, id);
}

void
api_set_restore(struct api *api, api_restore_func *restore, void *aux)
{
    api->restore = restore;
    api->restore_aux = aux;
}

static void
handle_object_restore(struct api *api, struct api_conn *c,
                      const json_t *params, const json_t *id)
{
    const json_t *o = object_params(params);
    const char *digest = member_string(o, "digest");
    const char *path = member_string(o, "path");
    char *error = NULL;

    if (!digest || !path) {
        api->stats.object_errors++;
        reply_error(api, c, id, "invalid params: object-restore takes one "
                    "object {\"digest\": string, \"path\": string}");
        return;
    }
    if (!api->restore) {
        api->stats.object_errors++;
        reply_error(api, c, id, "not supported: no transfer lane");
        return;
    }
    int64_t at = 0;
    int err = api->restore(api->restore_aux, digest, path, &at, &error);
    if (err) {
        api->stats.object_errors++;
        reply_error(api, c, id, "%s: %s",
                    err == EINVAL || err == ENOENT ? "invalid params"
                    : err == EDQUOT ? "over limit" : "internal error",
                    error ? error : strerror(err));
    } else {
        char *key = xasprintf("restore/%s", digest);
        reply(api, c, json_pack("{s:s, s:I}", "key", key,
                                "at", (json_int_t) at), id);
        free(key);
    }
    free(error);
}

static void
handle_request(struct api *api, struct api_conn *c, const json_t *msg)
{
    const char *method = jsonrpc_msg_method(msg);
    const json_t *params = jsonrpc_msg_params(msg);
    const json_t *id = jsonrpc_msg_id(msg);

    if (!strcmp(method, "publish") || !strcmp(method, "unpublish")) {
        group_begin(api);
    } else {
        /* Everything else sees (and answers after) what was published. */
        group_flush(api, c);
    }
    if (!strcmp(method, "get")) {
        handle_get(api, c, params, id);
    } else if (!strcmp(method, "list")) {
        handle_list(api, c, params, id);
    } else if (!strcmp(method, "watch")) {
        handle_watch(api, c, params, id);
    } else if (!strcmp(method, "publish")) {
        handle_publish(api, c, params, id);
    } else if (!strcmp(method, "unpublish")) {
        handle_unpublish(api, c, params, id);
    } else if (!strcmp(method, "published")) {
        handle_published(api, c, params, id);
    } else if (!strcmp(method, "object-add")) {
        handle_object_add(api, c, params, id);
    } else if (!strcmp(method, "object-remove")) {
        handle_object_remove(api, c, params, id);
    } else if (!strcmp(method, "objects")) {
        handle_objects(api, c, params, id);
    } else if (!strcmp(method, "object-restore")) {
        handle_object_restore(api, c, params, id);
    } else if (!strcmp(method, "status")) {
        if (json_array_size(params)) {
            reply_error(api, c, id, "invalid params: status takes none");
        } else {
            json_t *status = api->status ? api->status(api->aux) : NULL;

            reply(api, c, status ? status : json_object(), id);
        }
    } else if (!strcmp(method, "echo")) {
        reply(api, c, json_incref((json_t *) params), id);
    } else {
        reply_error(api, c, id, "unknown method: %.64s", method);
    }
}

/* Handles one received message. */
static void
handle_msg(struct api *api, struct api_conn *c, const json_t *msg)
{
    const char *why = NULL;
    enum jsonrpc_msg_type type = jsonrpc_msg_classify(msg, &why);
    const json_t *id;

    switch (type) {
    case JSONRPC_REQUEST:
        handle_request(api, c, msg);
        break;
    case JSONRPC_NOTIFY:
    case JSONRPC_REPLY:
    case JSONRPC_ERROR:
        /* Nothing to answer: count it. */
        api->stats.bad_requests++;
        VLOG_DBG_RL(&rl, "%s: ignoring a %s", jsonrpc_get_name(c->rpc),
                    jsonrpc_msg_type_name(type));
        break;
    case JSONRPC_INVALID:
    default:
        id = json_object_get(msg, "id");
        if (id && !json_is_null(id)) {
            reply_error(api, c, id, "invalid request: %s",
                        why ? why : "malformed");
        } else {
            api->stats.bad_requests++;
        }
        VLOG_DBG_RL(&rl, "%s: invalid request: %s",
                    jsonrpc_get_name(c->rpc), why ? why : "malformed");
        break;
    }
}

/* Serves connection 'i'.  Returns false if it was closed. */
static bool
conn_run(struct api *api, size_t i)
{
    struct api_conn *c = &api->conns[i];

    jsonrpc_run(c->rpc);
    for (int n = 0; n < API_MAX_RECV_PER_RUN; n++) {
        json_t *msg;
        int error = jsonrpc_recv(c->rpc, &msg);

        if (error == EAGAIN || error == EOF) {
            break;              /* On EOF, answer what was asked first. */
        } else if (error) {
            group_flush(api, c);
            api->stats.conns_broken++;
            VLOG_INFO_RL(&rl, "%s: closing connection: %s",
                         jsonrpc_get_name(c->rpc),
                         error == EPROTO ? "not JSON-RPC" : strerror(error));
            conn_close(api, i);
            return false;
        }
        handle_msg(api, c, msg);
        json_decref(msg);
    }
    group_flush(api, c);
    jsonrpc_run(c->rpc);
    int status = jsonrpc_get_status(c->rpc);
    if (status == EOF && !jsonrpc_get_backlog(c->rpc)) {
        conn_close(api, i);     /* The client is done and has its answers. */
        return false;
    } else if (status && status != EOF) {
        api->stats.conns_broken++;
        conn_close(api, i);
        return false;
    } else if (jsonrpc_get_backlog(c->rpc) > API_MAX_BACKLOG) {
        api->stats.conns_slow++;
        VLOG_WARN_RL(&rl, "%s: client does not keep up (%zu bytes "
                     "waiting); disconnecting it",
                     jsonrpc_get_name(c->rpc),
                     jsonrpc_get_backlog(c->rpc));
        conn_close(api, i);
        return false;
    }
    return true;
}

void
api_run(struct api *api)
{
    for (int n = 0; n < 16; n++) {
        struct stream *stream;
        int error = pstream_accept(api->listener, &stream);

        if (error) {
            if (error != EAGAIN) {
                VLOG_WARN_RL(&rl, "%s: accept failed: %s",
                             api_get_name(api), strerror(error));
            }
            break;
        }
        if (api->n_conns >= API_MAX_CONNS) {
            api->stats.conns_refused++;
            VLOG_WARN_RL(&rl, "%s: refusing a client: %d connections "
                         "already", api_get_name(api), API_MAX_CONNS);
            stream_close(stream);
            continue;
        }
        struct api_conn *c = &api->conns[api->n_conns++];
        memset(c, 0, sizeof *c);
        c->rpc = jsonrpc_open(stream);
        jsonrpc_set_max_msg(c->rpc, API_MAX_REQUEST);
        api->stats.conns_accepted++;
    }

    for (size_t i = 0; i < api->n_conns; ) {
        if (conn_run(api, i)) {
            i++;
        }
    }
}

void
api_wait(struct api *api)
{
    pstream_wait(api->listener);
    for (size_t i = 0; i < api->n_conns; i++) {
        jsonrpc_wait(api->conns[i].rpc);
        if (!jsonrpc_get_status(api->conns[i].rpc)) {
            jsonrpc_recv_wait(api->conns[i].rpc);
        }
    }
}

static bool
conn_watches(const struct api_conn *c, const char *key)
{
    for (size_t i = 0; i < c->n_prefixes; i++) {
        if (!strncmp(key, c->prefixes[i], strlen(c->prefixes[i]))) {
            return true;
        }
    }
    return false;
}

void
api_notify(struct api *api, const struct ds_change *change)
{
    json_t *update = NULL;

    for (size_t i = 0; i < api->n_conns; ) {
        struct api_conn *c = &api->conns[i];

        if (!conn_watches(c, change->key)) {
            i++;
            continue;
        }
        if (!update) {
            update = json_pack("{s:s, s:s}", "key", change->key, "op",
                               change->op == DS_PUT ? "put" : "delete");
            if (change->op == DS_PUT) {
                char *value = NULL;

                if (!datastore_get(api->ds, change->key, &value, NULL)) {
                    json_object_set_new(update, "value", parse_value(value));
                    free(value);
                }
                json_object_set_new(update, "version",
                                    json_integer(change->version));
            }
        }
        jsonrpc_send(c->rpc, jsonrpc_create_notify(
                         "update", json_pack("[O]", update)));
        api->stats.notifications++;
        int status = jsonrpc_get_status(c->rpc);
        if (status && status != EOF) {
            api->stats.conns_broken++;
            conn_close(api, i);
        } else if (jsonrpc_get_backlog(c->rpc) > API_MAX_BACKLOG) {
            api->stats.conns_slow++;
            VLOG_WARN_RL(&rl, "%s: watcher does not keep up (%zu bytes "
                         "waiting); disconnecting it",
                         jsonrpc_get_name(c->rpc),
                         jsonrpc_get_backlog(c->rpc));
            conn_close(api, i);
        } else {
            i++;
        }
    }
    json_decref(update);
}

void
api_get_stats(const struct api *api, struct api_stats *stats)
{
    *stats = api->stats;
}

json_t *
api_stats_json(const struct api *api)
{
    const struct api_stats *s = &api->stats;
    size_t n_watchers = 0;

    for (size_t i = 0; i < api->n_conns; i++) {
        n_watchers += api->conns[i].n_prefixes > 0;
    }
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                     " s:I, s:I, s:I, s:I}",
                     "socket", api_get_name(api),
                     "connections", (json_int_t) api->n_conns,
                     "watchers", (json_int_t) n_watchers,
                     "conns_accepted", (json_int_t) s->conns_accepted,
                     "conns_refused", (json_int_t) s->conns_refused,
                     "conns_slow", (json_int_t) s->conns_slow,
                     "conns_broken", (json_int_t) s->conns_broken,
                     "requests", (json_int_t) s->requests,
                     "bad_requests", (json_int_t) s->bad_requests,
                     "notifications", (json_int_t) s->notifications,
                     "objects_added", (json_int_t) s->objects_added,
                     "objects_removed", (json_int_t) s->objects_removed,
                     "object_errors", (json_int_t) s->object_errors,
                     "publish_commits", (json_int_t) s->publish_commits);
}
