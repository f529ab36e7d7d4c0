/* chand-guest's handler runner: see handler.h. */

#include <config.h>
#include "handler.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "datastore.h"
#include "keyq.h"
#include "hmap.h"
#include "list.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(handler);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

/* How often to look for a child's end without a pidfd, and to retry a
 * result the datastore refused, in ms. */
#define HANDLER_POLL_MS 100
#define HANDLER_RETRY_MS 1000

/* One run of a handler, from its start to its stored result. */
struct hrun {
    struct list list_node;      /* In 'runs'. */
    char *key;                  /* Owned. */
    const char *kind;           /* A constant. */
    int64_t version;
    struct child proc;          /* The handler's process. */
    long long started, deadline;    /* time_msec(). */
    bool timed_out;
    bool ended;                 /* The outcome is known. */
    struct handler_outcome outcome;
    long long retry_at;         /* When to try storing it again; 0: now. */
};

struct handler {
    struct datastore *ds;       /* Borrowed. */
    char *dir;
    char *user;                 /* Or NULL. */
    struct child_user cuser;    /* With 'user'. */
    unsigned int timeout;
    unsigned int max_running;
    char *quarantine_dir;       /* Or NULL. */
    handler_prepare_func *prepare;  /* Or NULL. */
    void *prepare_aux;
    struct keyq queue;          /* Keys to look at. */
    struct list runs;           /* struct hrun, started or ended. */
    size_t n_running;           /* Runs not yet ended. */
    struct handler_stats stats;
};

static const char *const kinds[] = HANDLER_KINDS;

/* The pure parts. */

const char *
handler_kind_of(const char *key)
{
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        size_t len = strlen(kinds[i]);

        if (!strncmp(key, kinds[i], len) && key[len] == '/') {
            return kinds[i];
        }
    }
    return NULL;
}

/* Checks that 'st', the status of 'what' ('path'), is owned by root or us
 * and not writable by group or others. */
static int
check_owner_mode(const struct stat *st, const char *what, const char *path,
                 char *reason, size_t size)
{
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        snprintf(reason, size, "unsafe handler: %s %s is owned by uid %u, "
                 "neither root nor chand-guest's", what, path,
                 (unsigned int) st->st_uid);
        return EPERM;
    } else if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(reason, size, "unsafe handler: %s %s is writable by group "
                 "or others", what, path);
        return EPERM;
    }
    return 0;
}

int
handler_check_file(const char *dir, const char *kind, char *reason,
                   size_t size)
{
    char *path = xasprintf("%s/%s", dir, kind);
    struct stat st;
    int error = 0;

    if (!*kind || strchr(kind, '/') || !strcmp(kind, ".")
        || !strcmp(kind, "..")) {
        snprintf(reason, size, "unsafe handler: bad kind \"%s\"", kind);
        error = EINVAL;
    } else if (stat(dir, &st)) {
        error = errno;
        snprintf(reason, size, "no handler: %s: %s", dir, strerror(error));
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(reason, size, "no handler: %s is not a directory", dir);
        error = ENOTDIR;
    } else if (!(error = check_owner_mode(&st, "directory", dir, reason,
                                          size))) {
        if (lstat(path, &st)) {
            error = errno;
            snprintf(reason, size, "no handler: %s: %s", path,
                     strerror(error));
        } else if (S_ISLNK(st.st_mode)) {
            snprintf(reason, size, "unsafe handler: %s is a symbolic link",
                     path);
            error = ELOOP;
        } else if (!S_ISREG(st.st_mode)) {
            snprintf(reason, size, "unsafe handler: %s is not a regular "
                     "file", path);
            error = EINVAL;
        } else if (!(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
            snprintf(reason, size, "unsafe handler: %s is not executable",
                     path);
            error = EACCES;
        } else {
            error = check_owner_mode(&st, "file", path, reason, size);
        }
    }
    free(path);
    return error;
}

/* Returns a malloc()ed copy of the 'len' bytes at 's' that is valid UTF-8
 * without control characters (each byte of an invalid sequence, and each
 * control character, becomes '?'), cut to at most 'max' bytes at a
 * character boundary. */
static char *
clean_text(const char *s, size_t len, size_t max)
{
    char *copy = xmemdup(s, len + 1);
    size_t i = 0, end = 0;

    copy[len] = '\0';
    while (i < len) {
        unsigned char c = copy[i];
        size_t n = (c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2
                    : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0);
        json_t *probe = n > 1 && i + n <= len ? json_stringn(copy + i, n)
                                                : NULL;

        if (n == 1 && (c < 0x20 || c == 0x7f)) {
            copy[i] = '?';
        } else if (n != 1 && !probe) {
            copy[i] = '?';
            n = 1;
        }
        json_decref(probe);
        if (i + n > max) {
            break;
        }
        i += n;
        end = i;
    }
    copy[end] = '\0';
    return copy;
}

/* Returns the reason of a failed exit: "exit status N" and the last line
 * of 'err' (borrowed), malloc()ed. */
static char *
exit_reason(int code, const char *err, size_t len)
{
    const char *line;
    char *text, *reason;

    while (len && (err[len - 1] == '\n' || err[len - 1] == '\r'
                   || err[len - 1] == ' ' || err[len - 1] == '\t')) {
        len--;
    }
    line = memrchr(err, '\n', len);
    line = line ? line + 1 : err;
    if (!len) {
        return xasprintf("exit status %d", code);
    }
    text = clean_text(line, err + len - line, HANDLER_REASON_MAX);
    reason = xasprintf("exit status %d: %s", code, text);
    free(text);
    return reason;
}

/* True if 'flags' is an array of flag names as datastore.h defines
 * them. */
static bool
valid_flags(const json_t *flags)
{
    const json_t *flag;
    size_t i;

    if (!json_is_array(flags) || json_array_size(flags) > DS_OBJ_MAX_FLAGS) {
        return false;
    }
    json_array_foreach (flags, i, flag) {
        const char *s = json_string_value(flag);
        size_t len = s ? strlen(s) : 0;

        if (!len || len > DS_OBJ_NAME_MAX
            || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len) {
            return false;
        }
    }
    return true;
}

/* Fills 'o' from the stdout of a run that exited 0. */
static void
parse_output(const char *out, size_t len, struct handler_outcome *o)
{
    size_t skip = 0;
    json_t *obj, *detail, *flags;

    while (skip < len && strchr(" \t\r\n", out[skip])) {
        skip++;
    }
    if (skip == len) {
        o->class = HANDLER_OK;
        return;
    }
    obj = json_loadb(out, len, JSON_REJECT_DUPLICATES, NULL);
    detail = json_object_get(obj, "detail");
    flags = json_object_get(obj, "object_flags");
    if (!json_is_object(obj) || (detail && !json_is_string(detail))
        || (flags && !valid_flags(flags))) {
        o->class = HANDLER_BAD_OUTPUT;
        o->reason = xstrdup("unreadable output");
    } else {
        o->class = HANDLER_OK;
        if (detail) {
            o->detail = clean_text(json_string_value(detail),
                                   json_string_length(detail),
                                   HANDLER_DETAIL_MAX);
        }
        o->object_flags = json_incref(flags);
    }
    json_decref(obj);
}

void
handler_evaluate(int status, bool timed_out, unsigned int timeout,
                 const char *out, size_t out_len,
                 const char *err, size_t err_len, struct handler_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->class = HANDLER_FAILED;
    if (timed_out) {
        o->class = HANDLER_TIMEOUT;
        o->reason = xasprintf("timed out after %u s", timeout);
    } else if (WIFSIGNALED(status)) {
        o->class = HANDLER_CRASH;
        o->reason = xasprintf("crashed: signal %d", WTERMSIG(status));
    } else if (!WIFEXITED(status)) {
        o->reason = xasprintf("ended with wait status %#x", status);
    } else if (WEXITSTATUS(status)) {
        o->reason = exit_reason(WEXITSTATUS(status), err, err_len);
    } else {
        parse_output(out, out_len, o);
    }
}

void
handler_outcome_destroy(struct handler_outcome *o)
{
    free(o->reason);
    free(o->detail);
    json_decref(o->object_flags);
    memset(o, 0, sizeof *o);
}

/* Returns the run of 'key', if one is under way or waiting to be
 * stored. */
static struct hrun *
find_run(const struct handler *h, const char *key)
{
    struct hrun *r;

    LIST_FOR_EACH (r, list_node, &h->runs) {
        if (!strcmp(r->key, key)) {
            return r;
        }
    }
    return NULL;
}

static int
queue_handled_cb(void *h_, const char *key, int64_t version, bool ok,
                 int64_t handled_at)
{
    (void) version;
    (void) ok;
    (void) handled_at;
    keyq_push(&((struct handler *) h_)->queue, key);
    return 0;
}

/* Queues every record of a kind and every handled key. */
static void
queue_all(struct handler *h)
{
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char *prefix = xasprintf("%s/", kinds[i]);

        if (datastore_list(h->ds, prefix, keyq_push_record_cb, &h->queue)) {
            VLOG_WARN("cannot list the %s records: %s", kinds[i],
                      datastore_last_error());
        }
        free(prefix);
    }
    if (datastore_list_handled(h->ds, queue_handled_cb, h)) {
        VLOG_WARN("cannot list the handled records: %s",
                  datastore_last_error());
    }
}

/* Life cycle. */

/* Looks up 'h->user'.  Returns false with the reason logged if it cannot
 * be used. */
static bool
resolve_user(struct handler *h)
{
    struct passwd *pw = getpwnam(h->user);

    if (!pw) {
        VLOG_ERR("--handler-user: no user \"%s\"", h->user);
        return false;
    }
    h->cuser.name = h->user;
    h->cuser.uid = pw->pw_uid;
    h->cuser.gid = pw->pw_gid;
    if (geteuid() != 0 && h->cuser.uid != geteuid()) {
        VLOG_ERR("--handler-user: chand-guest must run as root to run "
                 "handlers as \"%s\"", h->user);
        return false;
    }
    return true;
}

struct handler *
handler_create(const struct handler_config *config, struct datastore *ds)
{
    struct handler *h = xzalloc(sizeof *h);

    h->ds = ds;
    h->dir = xstrdup(config->dir);
    h->user = config->user ? xstrdup(config->user) : NULL;
    h->timeout = config->timeout ? config->timeout : 1;
    h->max_running = config->max_running ? config->max_running : 1;
    h->quarantine_dir = (config->quarantine_dir
                         ? xstrdup(config->quarantine_dir) : NULL);
    h->prepare = config->prepare;
    h->prepare_aux = config->prepare_aux;
    signal(SIGPIPE, SIG_IGN);   /* A handler may close its stdin. */
    keyq_init(&h->queue);
    list_init(&h->runs);
    if (h->user && !resolve_user(h)) {
        handler_destroy(h);
        return NULL;
    }
    queue_all(h);
    VLOG_INFO("handlers in %s (timeout %u s, at most %u at once%s%s)",
              h->dir, h->timeout, h->max_running,
              h->user ? ", as " : "", h->user ? h->user : "");
    return h;
}

/* Frees 'r' (taken off the list by the caller), killing its process group
 * if it still runs. */
static void
run_free(struct hrun *r)
{
    child_destroy(&r->proc);
    free(r->key);
    handler_outcome_destroy(&r->outcome);
    free(r);
}

void
handler_destroy(struct handler *h)
{
    if (h) {
        struct hrun *r;

        keyq_destroy(&h->queue);
        LIST_FOR_EACH_SAFE (r, list_node, &h->runs) {
            list_remove(&r->list_node);
            run_free(r);
        }
        free(h->dir);
        free(h->user);
        free(h->quarantine_dir);
        free(h);
    }
}

void
handler_record_changed(struct handler *h, const struct ds_change *change)
{
    if (handler_kind_of(change->key)) {
        keyq_push(&h->queue, change->key);
    }
}

/* Starting a run. */

/* Returns 'j' (owned, freed here; NULL means out of memory) as compact
 * JSON with sorted members, malloc()ed. */
static char *
dump_and_free(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(j);
    if (!text) {
        out_of_memory();
    }
    return text;
}

/* Returns the stdin of a run: {"key", "kind", "version", "value"}, the
 * record's 'value' (borrowed) parsed, or as a string if it is not JSON.
 * malloc()ed. */
static char *
make_input(const char *key, const char *kind, int64_t version,
           const char *value, const json_t *extra)
{
    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
    json_t *in;

    if (!v) {
        v = json_string(value);
    }
    in = json_pack("{s:s, s:s, s:I, s:o*}", "key", key, "kind", kind,
                   "version", (json_int_t) version, "value", v);
    if (extra) {
        json_object_update_missing(in, (json_t *) extra);
    }
    return dump_and_free(in);
}

/* Forks and execs the handler of 'r' with 'input' (borrowed).  Returns 0
 * or an errno. */
static int
spawn(struct handler *h, struct hrun *r, const char *input)
{
    char *path = xasprintf("%s/%s", h->dir, r->kind);
    char *env_kind = xasprintf("CHAND_HANDLER_KIND=%s", r->kind);
    char *env_q = (h->quarantine_dir
                   ? xasprintf("CHAND_QUARANTINE_DIR=%s", h->quarantine_dir)
                   : NULL);
    char *envp[] = { (char *) "PATH=" HANDLER_PATH, (char *) "LANG=C",
                     env_kind, env_q, NULL };
    char *const argv[] = { (char *) r->kind, NULL };
    int error = child_spawn(&r->proc, path, argv, envp,
                            h->user ? &h->cuser : NULL, input,
                            strlen(input));

    free(path);
    free(env_kind);
    free(env_q);
    return error;
}

/* Ends 'r' at once as failed with 'reason' (owned by the caller). */
static void
end_refused(struct hrun *r, const char *reason)
{
    memset(&r->outcome, 0, sizeof r->outcome);
    r->outcome.class = HANDLER_FAILED;
    r->outcome.reason = xstrdup(reason);
    r->ended = true;
}

/* Counts 'r''s outcome and logs it. */
static void
count_outcome(struct handler *h, const struct hrun *r)
{
    const struct handler_outcome *o = &r->outcome;

    h->stats.runs++;
    if (o->class == HANDLER_OK) {
        h->stats.ok++;
        VLOG_INFO("%s version %"PRId64": ok%s%s", r->key, r->version,
                  o->detail ? ": " : "", o->detail ? o->detail : "");
        return;
    }
    h->stats.failed++;
    h->stats.timeouts += o->class == HANDLER_TIMEOUT;
    h->stats.crashes += o->class == HANDLER_CRASH;
    h->stats.bad_output += o->class == HANDLER_BAD_OUTPUT;
    VLOG_WARN_RL(&rl, "%s version %"PRId64": failed: %s", r->key,
                 r->version, o->reason);
}

/* Starts a run of version 'version' of 'key' of 'kind' with 'value' and
 * 'extra' (see make_input()); or, if 'refusal' is nonnull, ends it at once
 * as failed with that reason.  All borrowed. */
static void
start_run(struct handler *h, const char *key, const char *kind,
          int64_t version, const char *value, const json_t *extra,
          const char *refusal)
{
    struct hrun *r = xzalloc(sizeof *r);
    char reason[512];

    r->key = xstrdup(key);
    r->kind = kind;
    r->version = version;
    child_init(&r->proc, HANDLER_OUTPUT_MAX);
    r->started = time_msec();
    r->deadline = r->started + (long long) h->timeout * 1000;
    list_push_back(&h->runs, &r->list_node);

    if (refusal) {
        h->stats.refused++;
        end_refused(r, refusal);
        count_outcome(h, r);
        return;
    }
    if (handler_check_file(h->dir, kind, reason, sizeof reason)) {
        h->stats.refused++;
        end_refused(r, reason);
        count_outcome(h, r);
        return;
    }
    char *input = make_input(key, kind, version, value, extra);
    int error = spawn(h, r, input);
    free(input);
    if (error) {
        snprintf(reason, sizeof reason, "cannot start the handler: %s",
                 strerror(error));
        end_refused(r, reason);
        count_outcome(h, r);
        return;
    }
    h->n_running++;
    VLOG_DBG("%s version %"PRId64": handler %s/%s started, pid %ld", key,
             version, h->dir, kind, (long) r->proc.pid);
}

/* Runs the prepare step for version 'version' of 'key' of 'kind' with
 * 'value' (all borrowed), then starts the run, fails it, or leaves it for
 * later. */
static void
prepare_and_start(struct handler *h, const char *key, const char *kind,
                  int64_t version, const char *value)
{
    json_t *extra = NULL;
    char *reason = NULL;
    int error = h->prepare ? h->prepare(h->prepare_aux, key, kind, value,
                                        &extra, &reason)
                           : 0;

    if (error == EINPROGRESS) {
        h->stats.waiting++;
        VLOG_DBG("%s version %"PRId64": waiting for its content", key,
                 version);
    } else if (error) {
        start_run(h, key, kind, version, value, NULL,
                  reason ? reason : strerror(error));
    } else {
        start_run(h, key, kind, version, value, extra, NULL);
    }
    json_decref(extra);
    free(reason);
}

void
handler_poke(struct handler *h, const char *key)
{
    keyq_push(&h->queue, key);
}

/* Looks at queued 'key' (borrowed): forgets a deleted record, starts a run
 * for an unhandled version. */
static void
look_at(struct handler *h, const char *key)
{
    const char *kind = handler_kind_of(key);
    int64_t version = 0, handled = 0;
    char *value = NULL;
    int error;

    error = datastore_get(h->ds, key, &value, &version);
    if (error == ENOENT) {
        if (datastore_forget_handled(h->ds, key)) {
            VLOG_WARN_RL(&rl, "%s: %s", key, datastore_last_error());
        }
        return;
    } else if (error) {
        VLOG_WARN_RL(&rl, "%s: %s", key, datastore_last_error());
        return;
    }
    error = datastore_get_handled(h->ds, key, &handled);
    if (kind && (error == ENOENT || (!error && handled != version))) {
        prepare_and_start(h, key, kind, version, value);
    } else if (error && error != ENOENT) {
        VLOG_WARN_RL(&rl, "%s: %s", key, datastore_last_error());
    }
    free(value);
}

/* Looks at queued keys while there is room for a run. */
static void
start_queued(struct handler *h)
{
    struct keyq_entry *k;

    LIST_FOR_EACH_SAFE (k, list_node, &h->queue.order) {
        if (h->n_running >= h->max_running) {
            return;
        }
        if (!find_run(h, k->key)) {
            char *key = xstrdup(k->key);

            keyq_remove(&h->queue, k);
            look_at(h, key);
            free(key);
        }
    }
}

/* A run under way. */

/* Moves 'r' (under way) on. */
static void
step_run(struct handler *h, struct hrun *r)
{
    struct child *c = &r->proc;

    if (!r->timed_out && time_msec() >= r->deadline) {
        child_kill(c);
        r->timed_out = true;
    }
    if (!child_step(c)) {
        return;
    }
    handler_evaluate(c->status, r->timed_out, h->timeout, c->out.data,
                     c->out.len, c->err.data, c->err.len, &r->outcome);
    r->ended = true;
    h->n_running--;
    count_outcome(h, r);
}

/* Storing outcomes. */

/* Returns the result record's value for 'r', compact JSON, malloc()ed. */
static char *
result_json(const struct hrun *r)
{
    const struct handler_outcome *o = &r->outcome;
    json_t *v = json_pack("{s:I, s:s, s:s, s:I}",
                          "at", (json_int_t) time_wall_msec(),
                          "key", r->key,
                          "status", o->class == HANDLER_OK ? "ok" : "failed",
                          "version", (json_int_t) r->version);

    if (v && o->detail) {
        json_object_set_new(v, "detail", json_string(o->detail));
    }
    if (v && o->reason) {
        json_object_set_new(v, "reason", json_string(o->reason));
    }
    return dump_and_free(v);
}

/* Adds the object flags of a verdict handled ok, inside the open
 * transaction.  A digest no path holds any more is not an error. */
static void
add_object_flags(struct handler *h, const struct hrun *r)
{
    const char *digest = r->key + strlen("verdict/");
    char *flags;

    if (strcmp(r->kind, "verdict") || r->outcome.class != HANDLER_OK
        || !r->outcome.object_flags
        || datastore_check_object_digest(digest)) {
        return;
    }
    flags = json_dumps(r->outcome.object_flags, JSON_COMPACT);
    if (!flags) {
        out_of_memory();
    }
    if (datastore_object_add_flags(h->ds, digest, flags)) {
        VLOG_WARN_RL(&rl, "%s: cannot set the object flags %s: %s", r->key,
                     flags, datastore_last_error());
    }
    free(flags);
}

/* Stores the outcome of ended run 'r' in one transaction.  A record
 * deleted meanwhile gets no result.  Returns 0 or an errno. */
static int
store_outcome(struct handler *h, const struct hrun *r)
{
    int64_t version;
    char *value = NULL;
    int error = datastore_get(h->ds, r->key, NULL, &version);

    if (error == ENOENT) {
        return 0;
    } else if (error) {
        return error;
    }
    error = datastore_begin(h->ds);
    if (!error) {
        add_object_flags(h, r);
        value = result_json(r);
        error = datastore_set_handled(h->ds, r->key, r->version,
                                      r->outcome.class == HANDLER_OK, value);
        if (error == EINVAL) {
            /* No result can be published for this key (too long): note
             * the version all the same. */
            VLOG_WARN_RL(&rl, "%s: %s", r->key, datastore_last_error());
            error = datastore_set_handled(h->ds, r->key, r->version,
                                          r->outcome.class == HANDLER_OK,
                                          NULL);
        }
        if (!error) {
            error = datastore_commit(h->ds);
        } else {
            datastore_rollback(h->ds);
        }
    }
    free(value);
    return error;
}

/* Stores the outcomes of the ended runs, unless a transaction is open. */
static void
store_ended(struct handler *h)
{
    long long now = time_msec();
    struct hrun *r;

    if (datastore_in_transaction(h->ds)) {
        return;
    }
    LIST_FOR_EACH_SAFE (r, list_node, &h->runs) {
        if (!r->ended || r->retry_at > now) {
            continue;
        }
        if (store_outcome(h, r)) {
            VLOG_WARN_RL(&rl, "%s version %"PRId64": cannot store the "
                         "result (trying again): %s", r->key, r->version,
                         datastore_last_error());
            h->stats.store_errors++;
            r->retry_at = now + HANDLER_RETRY_MS;
            continue;
        }
        keyq_push(&h->queue, r->key);   /* A newer version may be waiting. */
        list_remove(&r->list_node);
        run_free(r);
    }
}

void
handler_run(struct handler *h)
{
    struct hrun *r;

    LIST_FOR_EACH (r, list_node, &h->runs) {
        if (!r->ended) {
            step_run(h, r);
        }
    }
    store_ended(h);
    if (!datastore_in_transaction(h->ds)) {
        start_queued(h);
    }
    store_ended(h);             /* Runs refused at their start. */
}

/* True if a queued key has no run: one can start. */
static bool
can_start(const struct handler *h)
{
    struct keyq_entry *k;

    LIST_FOR_EACH (k, list_node, &h->queue.order) {
        if (!find_run(h, k->key)) {
            return true;
        }
    }
    return false;
}

void
handler_wait(struct handler *h)
{
    struct hrun *r;

    LIST_FOR_EACH (r, list_node, &h->runs) {
        if (r->ended) {
            poll_timer_wait_until(r->retry_at);
            continue;
        }
        child_wait(&r->proc);
        if (!r->timed_out) {
            poll_timer_wait_until(r->deadline);
        } else {
            poll_timer_wait(HANDLER_POLL_MS);
        }
    }
    if (h->n_running < h->max_running && can_start(h)) {
        poll_immediate_wake();
    }
}

bool
handler_is_idle(const struct handler *h)
{
    return keyq_is_empty(&h->queue) && list_is_empty(&h->runs);
}

void
handler_get_stats(const struct handler *h, struct handler_stats *stats)
{
    *stats = h->stats;
}

json_t *
handler_status_json(const struct handler *h)
{
    const struct handler_stats *s = &h->stats;
    json_t *running = json_array();
    long long now = time_msec();
    struct hrun *r;

    LIST_FOR_EACH (r, list_node, &h->runs) {
        if (!r->ended) {
            json_array_append_new(running, json_pack(
                "{s:s, s:I, s:I, s:I}", "key", r->key,
                "version", (json_int_t) r->version,
                "pid", (json_int_t) r->proc.pid,
                "seconds", (json_int_t) ((now - r->started) / 1000)));
        }
    }
    return json_pack(
        "{s:s, s:s?, s:I, s:I, s:s?, s:I, s:o,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "dir", h->dir, "user", h->user,
        "timeout", (json_int_t) h->timeout,
        "max_running", (json_int_t) h->max_running,
        "quarantine_dir", h->quarantine_dir,
        "queued", (json_int_t) keyq_size(&h->queue),
        "running", running,
        "counters",
        "runs", (json_int_t) s->runs, "ok", (json_int_t) s->ok,
        "failed", (json_int_t) s->failed,
        "timeouts", (json_int_t) s->timeouts,
        "crashes", (json_int_t) s->crashes,
        "bad_output", (json_int_t) s->bad_output,
        "refused", (json_int_t) s->refused,
        "waiting", (json_int_t) s->waiting,
        "store_errors", (json_int_t) s->store_errors);
}
