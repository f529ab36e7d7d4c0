/* chanctl: guest commands that talk to chand-guest's local API (get, list,
 * watch, publish, unpublish, published, object-add, object-remove, objects,
 * object-restore, guest-status).  See chanctl.h.
 *
 * The API is JSON-RPC 1.0 on a Unix socket (by default the abstract socket
 * "@chand-guest"):
 *     "get" [KEY]          -> {"key", "value", "version"}, or error
 *                             "not found"
 *     "list" [PREFIX?]     -> [{"key", "value", "version"}, ...]
 *     "watch" [PREFIX?]    -> a reply, then "update" notifications whose
 *                             params are {"key", "op", "value"?, "version"}
 *     "publish" [KEY, VALUE] -> {"version"}
 *     "unpublish" [KEY]    -> {"version"}, or error "not found"
 *     "published" [PREFIX?] -> {"records": [{"key", "value", "version",
 *                             "acked_version", "deleted", "state"}, ...],
 *                             "count", "withdrawn", "pending"}
 *     "object-add" [{"path", "digest", "size", "flags"?, "params"?}]
 *                          -> {"path", "digest"}
 *     "object-remove" [{"path"}] -> {"path"}, or error "not found: ..."
 *     "objects" [{"digest"?}] -> [{"path", "digest", "size", "flags",
 *                             "params", "added_at"}, ...]
 *     "object-restore" [{"digest", "path"}] -> {"key": "restore/D", "at"};
 *                             the outcome is published as
 *                             "result/restore/D", {"at", "key", "status",
 *                             "reason"?, "detail"?, "version"}
 *     "status" []          -> an object
 */

#include <config.h>
#include "chanctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "jsonrpc.h"
#include "stream.h"
#include "util.h"

/* Connects to the guest API.  Returns the connection, or NULL after
 * printing why. */
static struct jsonrpc *
api_open(const struct chanctl_options *opts)
{
    char *name = chanctl_unix_name(opts->api);
    struct stream *stream;
    int error = stream_open_block(name, &stream);

    if (error) {
        chanctl_error("cannot connect to chand-guest API %s: %s (is "
                      "chand-guest running? use --api%s)", name,
                      strerror(error),
                      opts->api_origin == CHANCTL_FROM_ENV
                      ? " or unset CHAND_GUEST_API" : "");
        free(name);
        return NULL;
    }
    free(name);
    return jsonrpc_open(stream);
}

/* Returns a malloc'd description of a JSON-RPC "error" value (borrowed): a
 * string as is, an object's "error" (and "details"), anything else as
 * JSON. */
static char *
describe_error(const json_t *error)
{
    if (json_is_string(error)) {
        return xasprintf("%s", json_string_value(error));
    }
    const char *e = json_string_value(json_object_get(error, "error"));
    const char *d = json_string_value(json_object_get(error, "details"));
    if (e) {
        return xasprintf("%s%s%s", e, d ? ": " : "", d ? d : "");
    }
    char *text = json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY);
    char *msg = xasprintf("%s", text ? text : "error");
    free(text);
    return msg;
}

/* Prints 'json' (borrowed) on one line, compact. */
static void
print_compact(const json_t *json)
{
    char *text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);

    printf("%s\n", text ? text : "null");
    free(text);
}

static void
print_indented(const json_t *json)
{
    char *text = json_dumps(json, JSON_INDENT(2) | JSON_ENCODE_ANY);

    printf("%s\n", text ? text : "null");
    free(text);
}

/* Calls 'method' with 'params' (stolen) and stores the result (new
 * reference) in '*resultp'.  Returns an exit status; on failure prints an
 * error that starts with 'what', except that if 'api_errorp' is nonnull
 * the description of an error answer is stored there (malloc'd, owned by
 * the caller) instead of printed. */
static int
api_call__(const struct chanctl_options *opts, const char *what,
           const char *method, json_t *params, json_t **resultp,
           char **api_errorp)
{
    struct jsonrpc *rpc = api_open(opts);
    json_t *reply;

    *resultp = NULL;
    if (!rpc) {
        json_decref(params);
        return CHANCTL_FAIL;
    }
    int error = jsonrpc_transact_block(
        rpc, jsonrpc_create_request(method, params, NULL), &reply);
    if (error) {
        chanctl_error("%s: chand-guest API %s: %s", what,
                      jsonrpc_get_name(rpc),
                      error == EOF ? "connection closed"
                      : error == EPROTO ? "malformed reply"
                      : strerror(error));
        jsonrpc_close(rpc);
        return CHANCTL_FAIL;
    }
    jsonrpc_close(rpc);

    if (jsonrpc_msg_type(reply) == JSONRPC_ERROR) {
        char *msg = describe_error(jsonrpc_msg_error(reply));
        if (api_errorp) {
            *api_errorp = msg;
        } else {
            chanctl_error("%s: %s", what, msg);
            free(msg);
        }
        json_decref(reply);
        return CHANCTL_FAIL;
    } else if (jsonrpc_msg_type(reply) != JSONRPC_REPLY) {
        chanctl_error("%s: chand-guest API: malformed reply", what);
        json_decref(reply);
        return CHANCTL_FAIL;
    }
    *resultp = json_incref(jsonrpc_msg_result(reply));
    json_decref(reply);
    return CHANCTL_OK;
}

/* Calls 'method' with 'params' (stolen) and stores the result (new
 * reference) in '*resultp'.  Returns an exit status; on failure prints an
 * error that starts with 'what'. */
static int
api_call(const struct chanctl_options *opts, const char *what,
         const char *method, json_t *params, json_t **resultp)
{
    return api_call__(opts, what, method, params, resultp, NULL);
}

/* Calls 'method' with 'params' (stolen) as api_call() does, and checks
 * the result (stored in '*resultp', a new reference) with 'valid'.
 * Returns an exit status; on failure prints an error that starts with
 * 'what' and stores NULL. */
static int
api_query(const struct chanctl_options *opts, const char *what,
          const char *method, json_t *params,
          bool (*valid)(const json_t *), json_t **resultp)
{
    int error = api_call(opts, what, method, params, resultp);

    if (!error && !valid(*resultp)) {
        chanctl_error("%s: chand-guest API: malformed reply", what);
        json_decref(*resultp);
        *resultp = NULL;
        error = CHANCTL_FAIL;
    }
    return error;
}

/* Returns true if 'rec' (borrowed) looks like {"key": STRING, "value": ANY,
 * ...}. */
static bool
is_record(const json_t *rec)
{
    return (json_is_string(json_object_get(rec, "key"))
            && json_object_get(rec, "value"));
}

int
chanctl_cmd_get(const struct chanctl_options *opts, int argc, char *argv[])
{
    json_t *key = json_string(argv[0]);
    json_t *result;
    char *what;
    int error;

    (void) argc;
    if (!key) {
        return chanctl_usage_error("KEY is not valid UTF-8");
    }
    what = xasprintf("get %s", argv[0]);
    error = api_call(opts, what, "get", json_pack("[o]", key), &result);
    if (!error) {
        if (!is_record(result)) {
            chanctl_error("%s: chand-guest API: malformed reply", what);
            error = CHANCTL_FAIL;
        } else {
            print_compact(json_object_get(result, "value"));
        }
    }
    json_decref(result);
    free(what);
    return error;
}

/* Returns the params for "list" and "watch": [PREFIX] or []. */
static json_t *
prefix_params(int argc, char *argv[])
{
    json_t *params = json_array();

    if (argc > 0) {
        json_t *prefix = json_string(argv[0]);
        if (!prefix) {
            json_decref(params);
            return NULL;
        }
        json_array_append_new(params, prefix);
    }
    return params;
}

int
chanctl_cmd_list(const struct chanctl_options *opts, int argc, char *argv[])
{
    json_t *params = prefix_params(argc, argv);
    json_t *result;

    if (!params) {
        return chanctl_usage_error("PREFIX is not valid UTF-8");
    }
    int error = api_call(opts, "list", "list", params, &result);
    if (error) {
        return error;
    }
    size_t i;
    json_t *rec;
    bool ok = json_is_array(result);
    json_array_foreach (result, i, rec) {
        ok = ok && is_record(rec);
    }
    if (!ok) {
        chanctl_error("list: chand-guest API: malformed reply");
        json_decref(result);
        return CHANCTL_FAIL;
    }
    if (opts->json) {
        print_indented(result);
    } else {
        json_array_foreach (result, i, rec) {
            char *text = json_dumps(json_object_get(rec, "value"),
                                    JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%s\t%s\n", json_string_value(json_object_get(rec, "key")),
                   text ? text : "null");
            free(text);
        }
    }
    json_decref(result);
    return CHANCTL_OK;
}

/* Prints one update (or, with op "current", one record the watch reply
 * listed) as "OP<TAB>KEY<TAB>VERSION[<TAB>JSON]", or compact JSON. */
static void
print_update(const json_t *update, bool as_json)
{
    if (as_json) {
        print_compact(update);
    } else {
        const char *key = json_string_value(json_object_get(update, "key"));
        const char *op = json_string_value(json_object_get(update, "op"));
        const json_t *version = json_object_get(update, "version");
        const json_t *value = json_object_get(update, "value");

        printf("%s\t%s\t", op ? op : "?", key ? key : "?");
        if (json_is_integer(version)) {
            printf("%"JSON_INTEGER_FORMAT, json_integer_value(version));
        } else {
            printf("-");
        }
        if (value) {
            char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("\t%s", text ? text : "null");
            free(text);
        }
        printf("\n");
    }
    fflush(stdout);
}

/* Prints the records a "watch" reply's result (borrowed) lists, as updates
 * with op "current". */
static void
print_current(const json_t *result, bool as_json)
{
    size_t i;
    json_t *rec;

    json_array_foreach (result, i, rec) {
        if (is_record(rec)) {
            json_t *u = json_deep_copy(rec);
            json_object_set_new(u, "op", json_string("current"));
            print_update(u, as_json);
            json_decref(u);
        }
    }
}

/* Prints the updates of an "update" notification's params (borrowed):
 * [UPDATE...], or (leniently) a bare UPDATE object. */
static void
print_updates(const json_t *params, bool as_json)
{
    size_t i;
    json_t *u;

    if (json_is_object(params)) {
        print_update(params, as_json);
    }
    json_array_foreach (params, i, u) {
        if (json_is_object(u)) {
            print_update(u, as_json);
        }
    }
}

/* Handles one message 'msg' (borrowed) of a watch whose request had 'id':
 * prints what it brings.  Returns false after printing why if it is the
 * error reply to the watch, otherwise true. */
static bool
watch_handle(const struct chanctl_options *opts, const json_t *id,
             const json_t *msg)
{
    enum jsonrpc_msg_type type = jsonrpc_msg_type(msg);
    const char *method = jsonrpc_msg_method(msg);

    if (type == JSONRPC_ERROR && jsonrpc_id_equal(jsonrpc_msg_id(msg), id)) {
        char *text = describe_error(jsonrpc_msg_error(msg));
        chanctl_error("watch: %s", text);
        free(text);
        return false;
    } else if (type == JSONRPC_REPLY) {
        print_current(jsonrpc_msg_result(msg), opts->json);
    } else if (method && !strcmp(method, "update")
               && type != JSONRPC_REQUEST) {
        print_updates(json_object_get(msg, "params"), opts->json);
    }
    return true;
}

int
chanctl_cmd_watch(const struct chanctl_options *opts, int argc, char *argv[])
{
    json_t *params = prefix_params(argc, argv);
    bool refused = false;
    json_t *id;

    if (!params) {
        return chanctl_usage_error("PREFIX is not valid UTF-8");
    }
    struct jsonrpc *rpc = api_open(opts);
    if (!rpc) {
        json_decref(params);
        return CHANCTL_FAIL;
    }
    int error = jsonrpc_send_block(
        rpc, jsonrpc_create_request("watch", params, &id));
    while (!error && !refused) {
        json_t *msg;

        error = jsonrpc_recv_block_noecho(rpc, &msg);
        if (!error) {
            refused = !watch_handle(opts, id, msg);
            json_decref(msg);
        }
    }
    if (!refused) {
        chanctl_error("watch: chand-guest API %s: %s", jsonrpc_get_name(rpc),
                      error == EOF ? "connection closed by chand-guest"
                      : error == EPROTO ? "malformed message"
                      : strerror(error));
    }
    json_decref(id);
    jsonrpc_close(rpc);
    return CHANCTL_FAIL;
}

/* Returns the reserved prefix 'key' starts with (a string constant), or
 * NULL. */
static const char *
reserved_prefix(const char *key)
{
    static const char *const prefixes[] = CHANCTL_PUB_RESERVED;

    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        if (!strncmp(key, prefixes[i], strlen(prefixes[i]))) {
            return prefixes[i];
        }
    }
    return NULL;
}

/* Returns what the reserved prefix 'prefix' is for. */
static const char *
reserved_owner(const char *prefix)
{
    return (!strcmp(prefix, "obj/") ? "objects: use object-add"
            : !strcmp(prefix, "result/") ? "handler results"
            : "records chand-host relays");
}

/* Checks KEY for publish and unpublish as chand-guest would (1..256
 * bytes of UTF-8, not under "from/", "obj/" or "result/") and returns it
 * as a JSON string, or returns NULL after printing a usage error in
 * '*errorp'. */
static json_t *
published_key(const char *key, int *errorp)
{
    json_t *k = json_string(key);

    if (!k) {
        *errorp = chanctl_usage_error("KEY is not valid UTF-8");
    } else if (!*key || strlen(key) > CHANCTL_PUB_KEY_MAX) {
        *errorp = chanctl_usage_error("KEY must be 1 to %d bytes long",
                                      CHANCTL_PUB_KEY_MAX);
    } else if (reserved_prefix(key)) {
        *errorp = chanctl_usage_error("keys starting with \"%s\" are "
                                      "reserved (%s); they cannot be "
                                      "published", reserved_prefix(key),
                                      reserved_owner(reserved_prefix(key)));
    } else {
        return k;
    }
    json_decref(k);
    return NULL;
}

/* Calls 'method' ("publish" or "unpublish") for 'key' with 'params'
 * (stolen) and checks the reply, {"version": N}; with -v prints "'done'
 * KEY version N".  Returns an exit status. */
static int
publish_call(const struct chanctl_options *opts, const char *method,
             const char *done, const char *key, json_t *params)
{
    char *what = xasprintf("%s %s", method, key);
    json_t *result;
    int error = api_call(opts, what, method, params, &result);

    if (!error) {
        json_t *version = json_object_get(result, "version");
        if (!json_is_integer(version)) {
            chanctl_error("%s: chand-guest API: malformed reply", what);
            error = CHANCTL_FAIL;
        } else if (opts->verbose) {
            printf("%s %s version %"JSON_INTEGER_FORMAT"\n", done, key,
                   json_integer_value(version));
        }
    }
    json_decref(result);
    free(what);
    return error;
}

int
chanctl_cmd_publish(const struct chanctl_options *opts, int argc,
                    char *argv[])
{
    json_error_t jerror;
    json_t *key, *value;
    int error = 0;

    (void) argc;
    key = published_key(argv[0], &error);
    if (!key) {
        return error;
    }
    value = json_loads(argv[1], JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                       &jerror);
    if (!value) {
        json_decref(key);
        return chanctl_usage_error("value for %s is not valid JSON: %s "
                                   "(line %d, column %d)", argv[0],
                                   jerror.text, jerror.line, jerror.column);
    }
    return publish_call(opts, "publish", "published", argv[0],
                        json_pack("[oo]", key, value));
}

int
chanctl_cmd_unpublish(const struct chanctl_options *opts, int argc,
                      char *argv[])
{
    json_t *key;
    int error = 0;

    (void) argc;
    key = published_key(argv[0], &error);
    if (!key) {
        return error;
    }
    return publish_call(opts, "unpublish", "unpublished", argv[0],
                        json_pack("[o]", key));
}

/* Returns true if 'result' (borrowed) looks like a "published" reply. */
static bool
is_published_reply(const json_t *result)
{
    const json_t *records = json_object_get(result, "records");
    const json_t *rec;
    size_t i;

    if (!json_is_array(records)
        || !json_is_integer(json_object_get(result, "count"))
        || !json_is_integer(json_object_get(result, "pending"))) {
        return false;
    }
    json_array_foreach (records, i, rec) {
        if (!json_is_string(json_object_get(rec, "key"))
            || !json_object_get(rec, "value")
            || !json_is_integer(json_object_get(rec, "version"))
            || !json_is_string(json_object_get(rec, "state"))) {
            return false;
        }
    }
    return true;
}

int
chanctl_cmd_published(const struct chanctl_options *opts, int argc,
                      char *argv[])
{
    if (opts->vm) {
        /* On the host: what the VM published, from the Chan DB. */
        return chanctl_cmd_published_vm(opts, argc, argv);
    }

    json_t *params = prefix_params(argc, argv);
    json_t *result;

    if (!params) {
        return chanctl_usage_error("PREFIX is not valid UTF-8");
    }
    int error = api_query(opts, "published", "published", params,
                          is_published_reply, &result);
    if (error) {
        return error;
    }
    if (opts->json) {
        print_indented(result);
    } else {
        const json_t *rec;
        size_t i;

        json_array_foreach (json_object_get(result, "records"), i, rec) {
            const json_t *value = json_object_get(rec, "value");
            bool withdrawn = json_is_true(json_object_get(rec, "deleted"));
            char *text = (withdrawn ? NULL
                          : json_dumps(value, JSON_COMPACT
                                       | JSON_ENCODE_ANY));

            printf("%s\t%s\t%"JSON_INTEGER_FORMAT"\t%s\n",
                   json_string_value(json_object_get(rec, "key")),
                   json_string_value(json_object_get(rec, "state")),
                   json_integer_value(json_object_get(rec, "version")),
                   withdrawn ? "withdrawn" : text ? text : "null");
            free(text);
        }
        printf("%"JSON_INTEGER_FORMAT" records, %"JSON_INTEGER_FORMAT
               " pending\n",
               json_integer_value(json_object_get(result, "count")),
               json_integer_value(json_object_get(result, "pending")));
    }
    json_decref(result);
    return CHANCTL_OK;
}

/* Objects. */

/* Bytes read at a time while hashing: files may be many GiB. */
#define HASH_CHUNK (1024 * 1024)

/* Hashes the open regular file 'fd' (named 'path', for messages) with
 * sha256, reading it to its end, into 'hex' (64 lowercase hex digits and
 * a '\0') and its size into '*sizep'.  Returns 0 or an exit status after
 * printing why. */
static int
hash_fd(int fd, const char *path, char hex[65], off_t *sizep)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *buf = xmalloc(HASH_CHUNK);
    off_t size = 0;
    ssize_t n;

    if (!ctx) {
        out_of_memory();
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while ((n = read(fd, buf, HASH_CHUNK)) > 0
           || (n < 0 && errno == EINTR)) {
        if (n > 0) {
            EVP_DigestUpdate(ctx, buf, n);
            size += n;
        }
    }
    int error = errno;
    EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    free(buf);
    if (n < 0) {
        chanctl_error("object-add: %s: %s", path, strerror(error));
        return CHANCTL_FAIL;
    }
    for (unsigned int i = 0; i < md_len && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    *sizep = size;
    return 0;
}

/* Returns 'path' made absolute and normalized (malloc()ed, owned by the
 * caller): the canonical path of its directory (symbolic links resolved)
 * and its last component, which is not resolved.  Returns NULL after
 * printing why, for 'what' (the command), if that cannot be done. */
static char *
object_path(const char *what, const char *path)
{
    char *copy = xstrdup(path), *slash, *dir, *real;
    const char *base;
    char *result = NULL;

    slash = strrchr(copy, '/');
    if (slash) {
        *slash = '\0';
        dir = slash == copy ? "/" : copy;
        base = slash + 1;
    } else {
        dir = ".";
        base = copy;
    }
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
        chanctl_error("%s: %s: not a file name", what, path);
    } else if (!(real = realpath(dir, NULL))) {
        chanctl_error("%s: %s: %s", what, dir, strerror(errno));
    } else {
        result = xasprintf("%s/%s", strcmp(real, "/") ? real : "", base);
        free(real);
    }
    free(copy);
    return result;
}

/* Returns the "params" object of the --param options (new reference), or
 * NULL after printing a usage error in '*errorp'. */
static json_t *
object_params_json(const struct chanctl_options *opts, int *errorp)
{
    json_t *params = json_object();

    for (size_t i = 0; i < opts->n_params; i++) {
        const char *eq = strchr(opts->params[i], '=');
        char *name = xmemdup(opts->params[i], eq - opts->params[i] + 1);
        json_t *value = json_string(eq + 1);

        name[eq - opts->params[i]] = '\0';
        if (!value || json_object_get(params, name)) {
            *errorp = chanctl_usage_error("--param %s: %s", opts->params[i],
                                          value ? "name given twice"
                                          : "not valid UTF-8");
            json_decref(value);
            json_decref(params);
            free(name);
            return NULL;
        }
        json_object_set_new(params, name, value);
        free(name);
    }
    return params;
}

/* Hashes the file at 'path' (absolute, normalized) without following a
 * final symbolic link and registers it with chand-guest with 'flags' and
 * 'params' (borrowed).  Returns an exit status. */
static int
object_add_one(const struct chanctl_options *opts, const char *path,
               const json_t *flags, const json_t *params)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    char hex[65];
    off_t size;
    int error;

    if (fd < 0) {
        chanctl_error("object-add: %s: %s", path, errno == ELOOP
                      ? "a symbolic link (give the file itself)"
                      : strerror(errno));
        return CHANCTL_FAIL;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        chanctl_error("object-add: %s: not a regular file", path);
        close(fd);
        return CHANCTL_FAIL;
    }
    error = hash_fd(fd, path, hex, &size);
    close(fd);
    if (error) {
        return error;
    }

    json_t *result;
    char *what = xasprintf("object-add %s", path);
    error = api_call(opts, what, "object-add",
                     json_pack("[{s:s, s:s, s:I, s:O, s:O}]", "path", path,
                               "digest", hex, "size", (json_int_t) size,
                               "flags", flags, "params", params), &result);
    free(what);
    if (!error && opts->verbose) {
        printf("added %s %s %lld\n", path, hex, (long long) size);
    }
    json_decref(result);
    return error;
}

int
chanctl_cmd_object_add(const struct chanctl_options *opts, int argc,
                       char *argv[])
{
    json_t *flags = json_array(), *params;
    int status = CHANCTL_OK;

    for (size_t i = 0; i < opts->n_flags; i++) {
        json_array_append_new(flags, json_string(opts->flags[i]));
    }
    params = object_params_json(opts, &status);
    if (!params) {
        json_decref(flags);
        return status;
    }
    for (int i = 0; i < argc; i++) {
        char *path = object_path("object-add", argv[i]);
        int error = (path ? object_add_one(opts, path, flags, params)
                     : CHANCTL_FAIL);

        if (error && !status) {
            status = error;
        }
        free(path);
    }
    json_decref(flags);
    json_decref(params);
    return status;
}

int
chanctl_cmd_object_remove(const struct chanctl_options *opts, int argc,
                          char *argv[])
{
    int status = CHANCTL_OK;

    for (int i = 0; i < argc; i++) {
        char *path = object_path("object-remove", argv[i]);
        int error = CHANCTL_FAIL;

        if (path) {
            char *what = xasprintf("object-remove %s", path);
            json_t *result;

            error = api_call(opts, what, "object-remove",
                             json_pack("[{s:s}]", "path", path), &result);
            if (!error && opts->verbose) {
                printf("removed %s\n", path);
            }
            json_decref(result);
            free(what);
        }
        if (error && !status) {
            status = error;
        }
        free(path);
    }
    return status;
}

/* Prints one object of an "objects" reply (borrowed) as "PATH DIGEST SIZE
 * FLAGS", tab-separated, FLAGS comma-separated or "-". */
static void
print_object(const json_t *o)
{
    const json_t *flags = json_object_get(o, "flags"), *flag;
    size_t i;

    printf("%s\t%s\t%"JSON_INTEGER_FORMAT"\t",
           json_string_value(json_object_get(o, "path")),
           json_string_value(json_object_get(o, "digest")),
           json_integer_value(json_object_get(o, "size")));
    json_array_foreach (flags, i, flag) {
        printf("%s%s", i ? "," : "", json_string_value(flag));
    }
    printf("%s\n", json_array_size(flags) ? "" : "-");
}

/* Returns true if 'result' (borrowed) looks like an "objects" reply. */
static bool
is_objects_reply(const json_t *result)
{
    const json_t *o;
    size_t i;

    if (!json_is_array(result)) {
        return false;
    }
    json_array_foreach (result, i, o) {
        if (!json_is_string(json_object_get(o, "path"))
            || !json_is_string(json_object_get(o, "digest"))
            || !json_is_integer(json_object_get(o, "size"))
            || !json_is_array(json_object_get(o, "flags"))) {
            return false;
        }
    }
    return true;
}

int
chanctl_cmd_objects(const struct chanctl_options *opts, int argc,
                    char *argv[])
{
    json_t *params = (argc ? json_pack("[{s:s}]", "digest", argv[0])
                      : json_array());
    json_t *result, *o;
    size_t i;

    if (!params) {
        return chanctl_usage_error("DIGEST is not valid UTF-8");
    }
    int error = api_query(opts, "objects", "objects", params,
                          is_objects_reply, &result);
    if (error) {
        return error;
    }
    if (opts->json) {
        print_indented(result);
    } else {
        json_array_foreach (result, i, o) {
            print_object(o);
        }
    }
    json_decref(result);
    return CHANCTL_OK;
}

int
chanctl_cmd_guest_status(const struct chanctl_options *opts, int argc,
                         char *argv[])
{
    json_t *result;

    (void) argc;
    (void) argv;
    int error = api_call(opts, "guest-status", "status", json_array(),
                         &result);
    if (error) {
        return error;
    }
    if (opts->json || !json_is_object(result)) {
        print_indented(result);
    } else {
        const char *name;
        json_t *v;
        json_object_foreach (result, name, v) {
            if (json_is_string(v)) {
                printf("%s: %s\n", name, json_string_value(v));
            } else {
                char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                printf("%s: %s\n", name, text ? text : "null");
                free(text);
            }
        }
    }
    json_decref(result);
    return CHANCTL_OK;
}

/* Restore. */

/* Returns true if 'result' (borrowed) looks like an "object-restore"
 * reply. */
static bool
is_restore_reply(const json_t *result)
{
    return (json_is_string(json_object_get(result, "key"))
            && json_is_integer(json_object_get(result, "at")));
}

/* Returns the value of the record 'key' in a "published" reply 'result'
 * (borrowed) if it is an object with an "at" of 'at' or later, otherwise
 * NULL. */
static const json_t *
find_result(const json_t *result, const char *key, json_int_t at)
{
    const json_t *rec;
    size_t i;

    json_array_foreach (json_object_get(result, "records"), i, rec) {
        const json_t *value = json_object_get(rec, "value");
        const json_t *rec_at = json_object_get(value, "at");

        if (!strcmp(json_string_value(json_object_get(rec, "key")), key)
            && !json_is_true(json_object_get(rec, "deleted"))
            && json_is_integer(rec_at)
            && json_integer_value(rec_at) >= at) {
            return value;
        }
    }
    return NULL;
}

/* Withdraws the restore request 'key' after it failed; a request that is
 * gone already is no error.  Prints why if it cannot. */
static void
withdraw_request(const struct chanctl_options *opts, const char *key)
{
    char *what = xasprintf("unpublish %s", key);
    char *api_error = NULL;
    json_t *result;

    api_call__(opts, what, "unpublish", json_pack("[s]", key), &result,
               &api_error);
    if (api_error && strncmp(api_error, "not found", 9)) {
        chanctl_error("%s: %s", what, api_error);
    }
    free(api_error);
    json_decref(result);
    free(what);
}

/* Reports the result 'value' (borrowed) of the restore of 'digest' to
 * 'path' with request 'key'.  Returns an exit status. */
static int
report_restore(const struct chanctl_options *opts, const char *digest,
               const char *path, const char *key, const json_t *value)
{
    const char *status = json_string_value(json_object_get(value, "status"));

    if (status && !strcmp(status, "ok")) {
        printf("restored %s to %s\n", digest, path);
        return CHANCTL_OK;
    }
    const char *reason = json_string_value(json_object_get(value, "reason"));
    const char *detail = json_string_value(json_object_get(value, "detail"));
    if (!reason) {
        reason = detail;
        detail = NULL;
    }
    chanctl_error("restore of %s failed: %s%s%s%s", digest,
                  reason ? reason : status ? status : "no reason given",
                  detail ? " (" : "", detail ? detail : "",
                  detail ? ")" : "");
    withdraw_request(opts, key);
    return CHANCTL_FAIL;
}

/* Polls "published" until the result of restore request 'key' made at
 * 'at' appears or opts->timeout passes.  Returns an exit status. */
static int
wait_for_restore(const struct chanctl_options *opts, const char *digest,
                 const char *path, const char *key, json_int_t at)
{
    long long int deadline = chanctl_deadline(opts->timeout);
    char *result_key = xasprintf("result/%s", key);
    int error;

    for (;;) {
        json_t *result;

        error = api_query(opts, "object-restore", "published",
                          json_pack("[s]", result_key), is_published_reply,
                          &result);
        if (error) {
            break;
        }
        const json_t *value = find_result(result, result_key, at);
        if (value) {
            error = report_restore(opts, digest, path, key, value);
            json_decref(result);
            break;
        }
        json_decref(result);
        if (deadline && chanctl_time_msec() >= deadline) {
            chanctl_error("object-restore: no result for %s after %g "
                          "seconds; the request stays (see chanctl "
                          "published %s; withdraw it with chanctl "
                          "unpublish %s)", key, opts->timeout, result_key,
                          key);
            error = CHANCTL_FAIL;
            break;
        }
        chanctl_poll_sleep(deadline);
    }
    free(result_key);
    return error;
}

/* chanctl object-restore DIGEST PATH [--no-wait]: asks chand-guest to
 * restore object DIGEST from the host to PATH and, unless --no-wait, waits
 * for the outcome. */
int
chanctl_cmd_object_restore(const struct chanctl_options *opts, int argc,
                           char *argv[])
{
    const char *digest = argv[0];
    json_t *result;
    int error;

    (void) argc;
    if ((error = chanctl_check_digest(digest))) {
        return error;
    }
    char *path = object_path("object-restore", argv[1]);
    if (!path) {
        return CHANCTL_FAIL;
    }
    json_t *params = json_pack("[{s:s, s:s}]", "digest", digest,
                               "path", path);
    if (!params) {
        free(path);
        return chanctl_usage_error("PATH is not valid UTF-8");
    }
    char *what = xasprintf("object-restore %.12s", digest);
    error = api_query(opts, what, "object-restore", params,
                      is_restore_reply, &result);
    free(what);
    if (!error) {
        const char *key = json_string_value(json_object_get(result, "key"));
        json_int_t at = json_integer_value(json_object_get(result, "at"));

        if (opts->verbose) {
            printf("requested %s (restore of %s to %s)\n", key, digest,
                   path);
        }
        if (!opts->no_wait) {
            error = wait_for_restore(opts, digest, path, key, at);
        }
    }
    json_decref(result);
    free(path);
    return error;
}
