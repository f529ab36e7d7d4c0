/* qemu-ga commands as chand calls: see commands.h. */

#include <config.h>
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "calls.h"
#include "ctl.h"
#include "list.h"
#include "poll-loop.h"
#include "qga-proto.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(commands);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

static struct qga_cmd_stats stats;

/* Argument types, named as QEMU names them in its errors. */
enum arg_type { A_INT, A_STR, A_BOOL, A_STRS, A_ANY };

struct arg_spec {
    const char *name;
    enum arg_type type;
    bool required;
};

struct qga_command;

/* A guest-exec whose pid is known to the client. */
struct qga_exec {
    struct list node;           /* In vm->execs. */
    struct qga_vm *vm;
    int64_t pid;
    struct call *call;          /* Until the response. */
    struct qga_job *job;        /* The guest-exec, in its first second. */
    json_t *status;             /* The guest-exec-status to return. */
    char *error;                /* Or the error to answer. */
};

struct qga_vm {
    const struct qga_env *env;
    char *name;
    int64_t next_pid;
    struct list execs;          /* struct qga_exec. */
    struct list waiting;        /* struct qga_job waiting for chand-host. */
};

/* Takes chand-host's answer to a job's call (host_ask()), or NULL and the
 * error.  Both are freed by the caller afterwards. */
typedef void host_answer_func(struct qga_job *, char *answer, char *error);

struct qga_job {
    struct qga_vm *vm;
    const struct qga_command *cmd;
    json_t *args;               /* The command's arguments (a copy). */
    qga_done_cb *done;
    void *aux;
    struct call *call;          /* Outstanding, or NULL. */
    bool finished;              /* 'done' was called. */
    bool in_start;              /* Inside qga_execute(). */

    /* guest-file-write. */
    uint8_t *data;
    size_t len, off;
    int64_t written;

    /* Waiting for a time or for chand-host: large guest-file-read, and
     * guest-exec's first second. */
    struct list node;           /* In vm->waiting while polling. */
    bool polling;
    void (*poll)(struct qga_job *);
    struct qga_exec *exec;      /* guest-exec: its exec. */
    char *digest;
    uint64_t size;
    bool eof;
    long long next_poll, deadline;
    struct ctl_call *host_call; /* Outstanding call to chand-host, or NULL. */
    const char *host_command;   /* Its command. */
    host_answer_func *host_answer;
};

/* What a call's result becomes: the "return" value (a new reference), or
 * NULL with '*descp' (malloc()ed) for a GenericError. */
typedef json_t *map_func(const json_t *result, const json_t *args,
                         char **descp);
typedef void start_func(struct qga_job *);

struct qga_command {
    const char *name;           /* qemu-ga's. */
    const struct arg_spec *args;
    start_func *start;
    const char *call;           /* For start_call: the chand command. */
    map_func *map;              /* For start_call. */
};

/* ----------------------------------------------------------------------
 * Ending jobs, and jobs that wait.
 */

/* Makes 'job' wait in its VM's list: 'poll' runs at job->next_poll. */
static void
job_wait(struct qga_job *job, void (*poll)(struct qga_job *),
         long long next_poll)
{
    job->poll = poll;
    job->next_poll = next_poll;
    if (!job->polling) {
        job->polling = true;
        list_push_back(&job->vm->waiting, &job->node);
    }
}


static void
job_free(struct qga_job *job)
{
    if (job->polling) {
        list_remove(&job->node);
    }
    if (job->exec) {
        job->exec->job = NULL;
    }
    ctl_call_destroy(job->host_call);
    json_decref(job->args);
    free(job->data);
    free(job->digest);
    free(job);
}

static void
job_end(struct qga_job *job, const json_t *ret, const char *class,
        const char *desc, bool sentinel)
{
    if (ret) {
        stats.ok++;
    } else {
        stats.errors++;
        VLOG_INFO_RL(&rl, "%s: %s: %s: %s", job->vm->name, job->cmd->name,
                     class, desc);
    }
    job->finished = true;
    job->done(job->aux, ret, class, desc, sentinel);
    if (!job->in_start) {
        job_free(job);
    }
}

static void
job_return(struct qga_job *job, json_t *ret)
{
    job_end(job, ret, NULL, NULL, false);
    json_decref(ret);
}

static void
job_error(struct qga_job *job, const char *class, const char *desc)
{
    job_end(job, NULL, class, desc, false);
}

static void
job_errorf(struct qga_job *job, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void
job_errorf(struct qga_job *job, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char *desc = xvasprintf(format, args);
    va_end(args);
    job_error(job, QGA_E_GENERIC, desc);
    free(desc);
}

void
qga_job_cancel(struct qga_job *job)
{
    if (job->call) {
        calls_cancel(job->vm->env->calls, job->call);
    }
    job_free(job);
}

/* ----------------------------------------------------------------------
 * Calls.
 */

typedef void result_func(struct qga_job *, const json_t *result);

/* Maps a chand error to qemu-ga's: CommandNotFound stays, the rest is a
 * GenericError with chand's text. */
static void
job_call_error(struct qga_job *job, const char *class, const char *desc)
{
    if (!strcmp(class, "CommandNotFound")) {
        job_errorf(job, "the VM's chand-guest has no command for %s: %s",
                   job->cmd->name, desc);
        return;
    }
    job_errorf(job, "%s", desc);
}

struct call_ctx {
    struct qga_job *job;
    result_func *next;
};

static void
call_done(void *ctx_, const json_t *result, const char *class,
          const char *desc)
{
    struct call_ctx *ctx = ctx_;
    struct qga_job *job = ctx->job;
    result_func *next = ctx->next;

    free(ctx);
    job->call = NULL;
    if (result) {
        next(job, result);
    } else {
        job_call_error(job, class, desc);
    }
}

/* Sends chand 'command' with 'args' (stolen) for 'job'; 'next' gets the
 * result. */
static void
job_call(struct qga_job *job, const char *command, json_t *args,
         int64_t timeout_ms, result_func *next)
{
    struct call_ctx *ctx = xmalloc(sizeof *ctx);

    ctx->job = job;
    ctx->next = next;
    job->call = calls_start(job->vm->env->calls, job->vm->name, command,
                            args, timeout_ms, call_done, ctx);
}

/* ----------------------------------------------------------------------
 * Commands answered through one call: start_call() and the maps.
 */

/* Ends 'job' with 'map' of 'result'. */
static void
finish_mapped(struct qga_job *job, const json_t *result, map_func *map)
{
    char *desc = NULL;
    json_t *ret = map(result, job->args, &desc);

    if (ret) {
        job_return(job, ret);
    } else {
        job_errorf(job, "%s", desc ? desc : "unexpected response");
        free(desc);
    }
}

static void
mapped_result(struct qga_job *job, const json_t *result)
{
    finish_mapped(job, result, job->cmd->map);
}

static void
start_call(struct qga_job *job)
{
    job_call(job, job->cmd->call, json_deep_copy(job->args),
             job->vm->env->call_timeout_ms, mapped_result);
}

static json_t *
map_same(const json_t *result, const json_t *args, char **descp)
{
    (void) args;
    (void) descp;
    return json_incref((json_t *) result);
}

static json_t *
map_empty(const json_t *result, const json_t *args, char **descp)
{
    (void) result;
    (void) args;
    (void) descp;
    return json_object();
}

/* Returns member 'name' of 'result' if it has 'type', else NULL with
 * '*descp' set. */
static json_t *
member(const json_t *result, const char *name, json_type type,
       char **descp)
{
    json_t *v = json_object_get(result, name);

    if (!v || json_typeof(v) != type) {
        *descp = xasprintf("the VM's response lacks \"%s\"", name);
        return NULL;
    }
    return json_incref(v);
}

static json_t *
map_handle(const json_t *result, const json_t *args, char **descp)
{
    (void) args;
    return member(result, "handle", JSON_INTEGER, descp);
}

static json_t *
map_status(const json_t *result, const json_t *args, char **descp)
{
    (void) args;
    return member(result, "status", JSON_STRING, descp);
}

static json_t *
map_count(const json_t *result, const json_t *args, char **descp)
{
    (void) args;
    return member(result, "count", JSON_INTEGER, descp);
}

/* guest-file-read's return, in qemu-ga's member order. */
static json_t *
read_return(json_int_t count, json_t *buf, bool eof)
{
    json_t *r = json_object();

    json_object_set_new(r, "count", json_integer(count));
    json_object_set_new(r, "buf-b64", buf);
    json_object_set_new(r, "eof", json_boolean(eof));
    return r;
}

static json_t *
map_read(const json_t *result, const json_t *args, char **descp)
{
    json_t *count = json_object_get(result, "count");
    json_t *buf = json_object_get(result, "buf-b64");
    json_t *eof = json_object_get(result, "eof");

    (void) args;
    if (!json_is_integer(count) || !json_is_string(buf)
        || !json_is_boolean(eof)) {
        *descp = xstrdup("the VM's file-read response is malformed");
        return NULL;
    }
    return read_return(json_integer_value(count), json_incref(buf),
                       json_is_true(eof));
}

static json_t *
map_seek(const json_t *result, const json_t *args, char **descp)
{
    json_t *pos = json_object_get(result, "position");

    (void) args;
    if (!json_is_integer(pos)) {
        *descp = xstrdup("the VM's file-seek response is malformed");
        return NULL;
    }
    return json_pack("{s:O, s:b}", "position", pos, "eof", 0);
}

/* guest-info: qemu-ga's shape, with the commands chand-qga serves; exec
 * is enabled if the guest's info says so. */
static json_t *
map_info(const json_t *result, const json_t *args, char **descp)
{
    json_t *version = json_object_get(result, "version");
    json_t *guest_cmds = json_object_get(result, "supported_commands");
    bool exec = false;
    size_t i;
    json_t *c;

    (void) args;
    if (!json_is_string(version) || !json_is_array(guest_cmds)) {
        *descp = xstrdup("the VM's info response is malformed");
        return NULL;
    }
    json_array_foreach (guest_cmds, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (name && !strcmp(name, "exec")) {
            exec = json_is_true(json_object_get(c, "enabled"));
        }
    }

    json_t *list = json_array();
    for (i = 0; i < qga_n_commands(); i++) {
        const char *name = qga_command_name(i);
        /* guest-exec* as the VM's exec; guest-fsfreeze-freeze is always
         * refused (start_freeze_all()). */
        bool enabled = ((exec || strncmp(name, "guest-exec", 10))
                        && strcmp(name, "guest-fsfreeze-freeze"));
        json_array_append_new(list, json_pack("{s:b, s:s, s:b}",
                                              "enabled", enabled,
                                              "name", name,
                                              "success-response", 1));
    }
    return json_pack("{s:O, s:o}", "version", version,
                     "supported_commands", list);
}

/* ----------------------------------------------------------------------
 * Commands answered here.
 */

static void
start_sync(struct qga_job *job)
{
    job_return(job, json_incref(json_object_get(job->args, "id")));
}

static void
start_sync_delimited(struct qga_job *job)
{
    job_end(job, json_object_get(job->args, "id"), NULL, NULL, true);
}

static void
start_freeze_all(struct qga_job *job)
{
    job_errorf(job, "chand-guest freezes only the mount points it is given: "
               "use guest-fsfreeze-freeze-list");
}

/* ----------------------------------------------------------------------
 * guest-file-write: in pieces.
 */

static void write_next(struct qga_job *);

static void
write_result(struct qga_job *job, const json_t *result)
{
    json_t *count = json_object_get(result, "count");

    if (!json_is_integer(count) || json_integer_value(count) < 0) {
        job_errorf(job, "the VM's file-write response is malformed");
        return;
    }
    size_t piece = MIN(job->len - job->off, QGA_WRITE_CHUNK);
    job->written += json_integer_value(count);
    job->off += piece;
    if ((size_t) json_integer_value(count) < piece) {
        /* A short write: report what was written, as write(2). */
        job->off = job->len;
    }
    write_next(job);
}

static void
write_next(struct qga_job *job)
{
    if (job->off >= job->len) {
        job_return(job, json_pack("{s:I, s:b}", "count",
                                  (json_int_t) job->written, "eof", 0));
        return;
    }

    size_t piece = MIN(job->len - job->off, QGA_WRITE_CHUNK);
    char *b64 = base64_encode(job->data + job->off, piece);
    json_t *args = json_pack("{s:O, s:s}", "handle",
                             json_object_get(job->args, "handle"),
                             "buf-b64", b64);
    free(b64);
    job_call(job, "file-write", args, job->vm->env->call_timeout_ms,
             write_result);
}

static void
start_file_write(struct qga_job *job)
{
    const char *b64 = json_string_value(json_object_get(job->args,
                                                        "buf-b64"));
    json_t *count = json_object_get(job->args, "count");
    void *data;
    size_t len;

    if (!base64_decode(b64, &data, &len)) {
        job_errorf(job, "Base64 data contains invalid characters");
        return;
    }
    if (count) {
        json_int_t n = json_integer_value(count);
        if (n < 0 || (uint64_t) n > len) {
            free(data);
            job_errorf(job, "value '%"JSON_INTEGER_FORMAT"' is invalid for "
                       "argument count", n);
            return;
        }
        len = n;
    }
    if (len > job->vm->env->max_file_write) {
        free(data);
        job_errorf(job, "%zu bytes is over chand-qga's --max-file-write "
                   "(%"PRIu64" bytes)", len, job->vm->env->max_file_write);
        return;
    }
    job->data = data;
    job->len = len;
    write_next(job);
}

/* ----------------------------------------------------------------------
 * guest-file-read: inline, or through the transfer lane.
 *
 * A large read has the VM's chand-guest export the range (file-export),
 * then asks chand-host, over its control socket, whether its content store
 * holds those bytes or fetches them already (object/fetch-status), else to
 * fetch them from the VM (object/fetch), and then how that goes every
 * QGA_FETCH_POLL_MS.  Each question to chand-host is a non-blocking
 * ctl_call in the main loop: a slow or hung chand-host holds up the reads
 * that wait on it, for QGA_HOST_ANSWER_MS at most, never the other
 * requests.
 */

static void poll_fetch(struct qga_job *);
static void poll_host(struct qga_job *);

static void
read_result(struct qga_job *job, const json_t *result)
{
    finish_mapped(job, result, map_read);
}

/* Asks chand-host's control socket 'command' (a string constant) with
 * 'argc' arguments, without waiting: 'answer' runs with the answer once it
 * comes, or with NULL and the error, at the latest QGA_HOST_ANSWER_MS from
 * now or at the read's deadline.  Until then the job waits in its VM's
 * list, and every other request goes on. */
static void
host_ask(struct qga_job *job, const char *command, int argc, char *argv[],
         host_answer_func *answer)
{
    long long deadline = MIN(job->deadline,
                             time_msec() + QGA_HOST_ANSWER_MS);

    job->host_call = ctl_call_start(job->vm->env->host_ctl, command, argc,
                                    argv, deadline);
    job->host_command = command;
    job->host_answer = answer;
    job_wait(job, poll_host, 0);
}

/* Runs 'job''s call to chand-host; once it ended, hands the answer or the
 * error to the job's host_answer_func (which may end the job). */
static void
poll_host(struct qga_job *job)
{
    const struct qga_env *env = job->vm->env;
    char *answer, *error;
    int retval = ctl_call_run(job->host_call, &answer, &error);

    if (retval == EAGAIN) {
        return;
    }
    ctl_call_destroy(job->host_call);
    job->host_call = NULL;
    if (retval == ETIMEDOUT) {
        stats.host_errors++;
        error = xasprintf("chand-host's control socket %s did not answer "
                          "%s in time", env->host_ctl, job->host_command);
    } else if (retval) {
        stats.host_errors++;
        error = xasprintf("chand-host's control socket %s: %s",
                          env->host_ctl, strerror(retval));
    }
    job->host_answer(job, answer, error);
    free(answer);
    free(error);
}
/* Reads the fetched content at 'path' and ends 'job' with it. */
static void
read_content(struct qga_job *job, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0 || fstat(fd, &st) || (uint64_t) st.st_size != job->size) {
        job_errorf(job, "cannot read the fetched content %s: %s", path,
                   fd < 0 ? strerror(errno) : "wrong size");
        if (fd >= 0) {
            close(fd);
        }
        return;
    }

    uint8_t *data = xmalloc(job->size ? job->size : 1);
    size_t got = 0;
    while (got < job->size) {
        ssize_t n = read(fd, data + got, job->size - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        got += n;
    }
    close(fd);
    if (got != job->size) {
        free(data);
        job_errorf(job, "cannot read the fetched content %s: short read",
                   path);
        return;
    }

    char *b64 = base64_encode(data, job->size);
    free(data);
    stats.large_reads++;
    stats.large_read_bytes += job->size;
    job_return(job, read_return(job->size, json_string(b64), job->eof));
    free(b64);
}

/* How the fetch of a large read's content goes. */
enum fetch_state {
    FETCH_NONE,                 /* No fetch yet, or only a failed one. */
    FETCH_RUNNING,
    FETCH_ENDED                 /* The job ended (content read, or error). */
};

/* Reads chand-host's 'answer' to object/fetch-status (or its 'error')
 * about job->digest, and ends the job if the fetch is over.  Before the job
 * asked for a fetch ('initial'), no fetch or a failed one is FETCH_NONE;
 * afterwards, an error. */
static enum fetch_state
fetch_state_of(struct qga_job *job, const char *answer, const char *error,
               bool initial)
{
    if (!answer) {
        if (initial && strstr(error, "no fetch")) {
            return FETCH_NONE;
        }
        job_errorf(job, "the transfer of the file's content failed: %s",
                   error);
        return FETCH_ENDED;
    }

    json_t *status = json_loads(answer, 0, NULL);
    const char *state = json_string_value(json_object_get(status, "state"));
    enum fetch_state fs = FETCH_ENDED;
    if (state && !strcmp(state, "done")) {
        read_content(job, json_string_value(json_object_get(status,
                                                            "path")));
    } else if (state && !strcmp(state, "failed") && initial) {
        fs = FETCH_NONE;
    } else if (state && !strcmp(state, "failed")) {
        job_errorf(job, "the transfer of the file's content failed: %s",
                   json_string_value(json_object_get(status, "error")));
    } else if (state && !strcmp(state, "fetching")) {
        fs = FETCH_RUNNING;
    } else {
        job_errorf(job, "chand-host's object/fetch-status answer is "
                   "malformed");
    }
    json_decref(status);
    return fs;
}

static void first_status(struct qga_job *, char *answer, char *error);
static void fetch_started(struct qga_job *, char *answer, char *error);
static void fetch_status(struct qga_job *, char *answer, char *error);

static void
export_result(struct qga_job *job, const json_t *result)
{
    const char *digest = json_string_value(json_object_get(result,
                                                           "digest"));
    json_t *size = json_object_get(result, "size");

    if (!digest || !json_is_integer(size) || json_integer_value(size) < 0) {
        job_errorf(job, "the VM's file-export response is malformed");
        return;
    }
    job->digest = xstrdup(digest);
    job->size = json_integer_value(size);
    job->eof = json_is_true(json_object_get(result, "eof"));
    if (!job->size) {
        job_return(job, read_return(0, json_string(""), job->eof));
        return;
    }

    /* The content store may hold it already (the same bytes read before),
     * or be fetching it for another client. */
    char *argv[] = { job->digest };
    job->deadline = time_msec() + job->vm->env->file_timeout_ms;
    host_ask(job, "object/fetch-status", 1, argv, first_status);
}

static void
first_status(struct qga_job *job, char *answer, char *error)
{
    switch (fetch_state_of(job, answer, error, true)) {
    case FETCH_NONE: {
        char size_s[32];
        snprintf(size_s, sizeof size_s, "%"PRIu64, job->size);
        char *argv[] = { job->vm->name, job->digest, size_s };
        host_ask(job, "object/fetch", 3, argv, fetch_started);
        break;
    }
    case FETCH_RUNNING:
        job_wait(job, poll_fetch, time_msec() + QGA_FETCH_POLL_MS);
        break;
    case FETCH_ENDED:
        break;
    }
}

static void
fetch_started(struct qga_job *job, char *answer, char *error)
{
    if (!answer) {
        job_errorf(job, "cannot fetch the file's content through chand-host: "
                   "%s", error);
        return;
    }
    job_wait(job, poll_fetch, time_msec() + QGA_FETCH_POLL_MS);
}

static void
poll_fetch(struct qga_job *job)
{
    char *argv[] = { job->digest };
    host_ask(job, "object/fetch-status", 1, argv, fetch_status);
}

static void
fetch_status(struct qga_job *job, char *answer, char *error)
{
    long long now = time_msec();

    if (fetch_state_of(job, answer, error, false) != FETCH_RUNNING) {
        return;
    } else if (now >= job->deadline) {
        job_errorf(job, "the transfer of %"PRIu64" bytes did not end "
                   "within %"PRId64" ms", job->size,
                   job->vm->env->file_timeout_ms);
    } else {
        job_wait(job, poll_fetch, now + QGA_FETCH_POLL_MS);
    }
}

static void
start_file_read(struct qga_job *job)
{
    json_t *count = json_object_get(job->args, "count");
    json_int_t n = count ? json_integer_value(count) : 4096;
    json_t *handle = json_object_get(job->args, "handle");

    if (n < 0 || (uint64_t) n > job->vm->env->max_file_read) {
        job_errorf(job, "value '%"JSON_INTEGER_FORMAT"' is invalid for "
                   "argument count", n);
    } else if (n <= QGA_READ_INLINE_MAX) {
        job_call(job, "file-read",
                 json_pack("{s:O, s:I}", "handle", handle, "count", n),
                 job->vm->env->call_timeout_ms, read_result);
    } else {
        /* The export is a local copy in the VM: the usual call timeout,
         * so that a chand-guest that died during it is noticed as soon as
         * any other request's. */
        job_call(job, "file-export",
                 json_pack("{s:O, s:I}", "handle", handle, "count", n),
                 job->vm->env->call_timeout_ms, export_result);
    }
}


/* ----------------------------------------------------------------------
 * guest-exec and guest-exec-status.
 */

static struct qga_exec *
find_exec(struct qga_vm *vm, int64_t pid)
{
    struct qga_exec *e;

    LIST_FOR_EACH (e, node, &vm->execs) {
        if (e->pid == pid) {
            return e;
        }
    }
    return NULL;
}

static void
exec_free(struct qga_exec *e)
{
    if (e->call) {
        calls_cancel(e->vm->env->calls, e->call);
    }
    list_remove(&e->node);
    json_decref(e->status);
    free(e->error);
    free(e);
}

/* Copies member 'name' of 'from' to 'to' if present and, for a string,
 * nonempty, and for a boolean, true. */
static void
copy_member(json_t *to, const json_t *from, const char *name)
{
    json_t *v = json_object_get(from, name);

    if (v && !(json_is_string(v) && !json_string_length(v))
        && !json_is_false(v)) {
        json_object_set(to, name, v);
    }
}

/* Ends guest-exec 'job' with its pid. */
static void
job_exec_started(struct qga_job *job)
{
    struct qga_exec *e = job->exec;

    e->job = NULL;
    job->exec = NULL;
    job_return(job, json_pack("{s:I}", "pid", (json_int_t) e->pid));
}

static void
exec_done(void *e_, const json_t *result, const char *class,
          const char *desc)
{
    struct qga_exec *e = e_;
    struct qga_job *job = e->job;

    e->call = NULL;
    if (job && !result) {
        /* Refused before it ran (an executable not on the allowlist, no
         * such file): guest-exec fails, as qemu-ga's does when it cannot
         * start the process. */
        job->exec = NULL;
        e->job = NULL;
        exec_free(e);
        job_call_error(job, class, desc);
        return;
    }
    if (result) {
        static const char *const names[] = {
            "exitcode", "signal", "out-data", "err-data", "out-truncated",
            "err-truncated",
        };
        e->status = json_pack("{s:b}", "exited", 1);
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
            copy_member(e->status, result, names[i]);
        }
    } else {
        e->error = xasprintf("%s%s", !strcmp(class, "PermissionDenied")
                             ? "guest-exec refused by the VM: " : "", desc);
    }
    if (job) {
        job_exec_started(job);
    }
}

static void
start_exec(struct qga_job *job)
{
    struct qga_vm *vm = job->vm;
    json_t *capture = json_object_get(job->args, "capture-output");
    json_t *args = json_deep_copy(job->args);

    if (capture && json_is_string(capture)) {
        /* qemu-ga 8's GuestExecCaptureOutputMode: chand captures stdout and
         * stderr separately, or neither. */
        const char *mode = json_string_value(capture);
        if (strcmp(mode, "none") && strcmp(mode, "separated")) {
            json_decref(args);
            job_errorf(job, "capture-output '%s' is not supported (none or "
                       "separated, or a boolean)", mode);
            return;
        }
        json_object_set_new(args, "capture-output",
                            json_boolean(!strcmp(mode, "separated")));
    } else if (capture && !json_is_boolean(capture)) {
        json_decref(args);
        job_errorf(job, "Invalid parameter type for 'capture-output', "
                   "expected: boolean");
        return;
    } else if (!capture) {
        json_object_set_new(args, "capture-output", json_false());
    }
    if (list_size(&vm->execs) >= QGA_MAX_EXECS) {
        json_decref(args);
        job_errorf(job, "%d guest-exec processes of this VM are not reaped "
                   "yet (guest-exec-status until they exit)",
                   QGA_MAX_EXECS);
        return;
    }
    json_object_set_new(args, "timeout_ms",
                        json_integer(vm->env->exec_timeout_ms));

    struct qga_exec *e = xzalloc(sizeof *e);
    e->vm = vm;
    e->pid = vm->next_pid++;
    list_push_back(&vm->execs, &e->node);
    e->call = calls_start(vm->env->calls, vm->name, "exec", args,
                          vm->env->exec_timeout_ms, exec_done, e);
    e->job = job;
    job->exec = e;
    job_wait(job, job_exec_started, time_msec() + QGA_EXEC_START_MS);
}

static void
start_exec_status(struct qga_job *job)
{
    int64_t pid = json_integer_value(json_object_get(job->args, "pid"));
    struct qga_exec *e = find_exec(job->vm, pid);

    if (!e) {
        job_errorf(job, "Invalid parameter 'pid'");
    } else if (e->error) {
        char *desc = xstrdup(e->error);
        exec_free(e);
        job_errorf(job, "%s", desc);
        free(desc);
    } else if (e->status) {
        json_t *status = json_incref(e->status);
        exec_free(e);
        job_return(job, status);
    } else {
        job_return(job, json_pack("{s:b}", "exited", 0));
    }
}

/* ----------------------------------------------------------------------
 * The table.
 */

static const struct arg_spec no_args[] = { { NULL, 0, false } };
static const struct arg_spec sync_args[] = {
    { "id", A_INT, true }, { NULL, 0, false } };
static const struct arg_spec open_args[] = {
    { "path", A_STR, true }, { "mode", A_STR, false }, { NULL, 0, false } };
static const struct arg_spec read_args[] = {
    { "handle", A_INT, true }, { "count", A_INT, false },
    { NULL, 0, false } };
static const struct arg_spec write_args[] = {
    { "handle", A_INT, true }, { "buf-b64", A_STR, true },
    { "count", A_INT, false }, { NULL, 0, false } };
static const struct arg_spec seek_args[] = {
    { "handle", A_INT, true }, { "offset", A_INT, true },
    { "whence", A_ANY, true }, { NULL, 0, false } };
static const struct arg_spec handle_args[] = {
    { "handle", A_INT, true }, { NULL, 0, false } };
static const struct arg_spec exec_args[] = {
    { "path", A_STR, true }, { "arg", A_STRS, false },
    { "env", A_STRS, false }, { "input-data", A_STR, false },
    { "capture-output", A_ANY, false }, { NULL, 0, false } };
static const struct arg_spec pid_args[] = {
    { "pid", A_INT, true }, { NULL, 0, false } };
static const struct arg_spec freeze_list_args[] = {
    { "mountpoints", A_STRS, false }, { NULL, 0, false } };

static const struct qga_command commands[] = {
    { "guest-sync-delimited", sync_args, start_sync_delimited, NULL, NULL },
    { "guest-sync", sync_args, start_sync, NULL, NULL },
    { "guest-ping", no_args, start_call, "ping", map_empty },
    { "guest-info", no_args, start_call, "info", map_info },
    { "guest-get-osinfo", no_args, start_call, "os-info", map_same },
    { "guest-get-time", no_args, start_call, "time", map_same },
    { "guest-network-get-interfaces", no_args, start_call,
      "network-interfaces", map_same },
    { "guest-file-open", open_args, start_call, "file-open", map_handle },
    { "guest-file-read", read_args, start_file_read, NULL, NULL },
    { "guest-file-write", write_args, start_file_write, NULL, NULL },
    { "guest-file-seek", seek_args, start_call, "file-seek", map_seek },
    { "guest-file-close", handle_args, start_call, "file-close",
      map_empty },
    { "guest-exec", exec_args, start_exec, NULL, NULL },
    { "guest-exec-status", pid_args, start_exec_status, NULL, NULL },
    { "guest-fsfreeze-status", no_args, start_call, "fsfreeze-status",
      map_status },
    { "guest-fsfreeze-freeze", no_args, start_freeze_all, NULL, NULL },
    { "guest-fsfreeze-freeze-list", freeze_list_args, start_call,
      "fsfreeze-freeze", map_count },
    { "guest-fsfreeze-thaw", no_args, start_call, "fsfreeze-thaw",
      map_count },
};

size_t
qga_n_commands(void)
{
    return ARRAY_SIZE(commands);
}

const char *
qga_command_name(size_t i)
{
    return commands[i].name;
}

static const struct qga_command *
find_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}

static bool
has_type(const json_t *v, enum arg_type type)
{
    switch (type) {
    case A_INT:
        return json_is_integer(v);
    case A_STR:
        return json_is_string(v);
    case A_BOOL:
        return json_is_boolean(v);
    case A_STRS: {
        size_t i;
        json_t *e;
        if (!json_is_array(v)) {
            return false;
        }
        json_array_foreach (v, i, e) {
            if (!json_is_string(e)) {
                return false;
            }
        }
        return true;
    }
    case A_ANY:
    default:
        return true;
    }
}

static const char *
type_name(enum arg_type type)
{
    return (type == A_INT ? "integer" : type == A_STR ? "string"
            : type == A_BOOL ? "boolean" : type == A_STRS ? "array"
            : "any");
}

/* Checks 'args' against 'spec' as QEMU's QAPI visitor does; returns NULL
 * or the error (malloc()ed). */
static char *
check_args(const struct arg_spec *spec, const json_t *args)
{
    const char *name;
    json_t *v;

    json_object_foreach ((json_t *) args, name, v) {
        const struct arg_spec *s;
        for (s = spec; s->name; s++) {
            if (!strcmp(s->name, name)) {
                break;
            }
        }
        if (!s->name) {
            return xasprintf("Parameter '%s' is unexpected", name);
        } else if (!has_type(v, s->type)) {
            return xasprintf("Invalid parameter type for '%s', expected: "
                             "%s", name, type_name(s->type));
        }
    }
    for (const struct arg_spec *s = spec; s->name; s++) {
        if (s->required && !json_object_get(args, s->name)) {
            return xasprintf("Parameter '%s' is missing", s->name);
        }
    }
    return NULL;
}

struct qga_job *
qga_execute(struct qga_vm *vm, const char *execute, const json_t *args,
            qga_done_cb *done, void *aux)
{
    const struct qga_command *cmd = find_command(execute);
    json_t *empty = json_object();

    stats.commands++;
    if (!args) {
        args = empty;
    }
    if (!cmd) {
        char *desc = xasprintf("The command %s has not been found",
                               execute);
        stats.not_found++;
        stats.errors++;
        done(aux, NULL, QGA_E_NOT_FOUND, desc, false);
        free(desc);
        json_decref(empty);
        return NULL;
    }
    char *error = check_args(cmd->args, args);
    if (error) {
        stats.bad_args++;
        stats.errors++;
        done(aux, NULL, QGA_E_GENERIC, error, false);
        free(error);
        json_decref(empty);
        return NULL;
    }

    struct qga_job *job = xzalloc(sizeof *job);
    job->vm = vm;
    job->cmd = cmd;
    job->args = json_deep_copy(args);
    job->done = done;
    job->aux = aux;
    job->in_start = true;
    json_decref(empty);
    cmd->start(job);
    job->in_start = false;
    if (job->finished) {
        job_free(job);
        return NULL;
    }
    return job;
}

/* ----------------------------------------------------------------------
 * Per-VM state.
 */

struct qga_vm *
qga_vm_create(const struct qga_env *env, const char *name)
{
    struct qga_vm *vm = xzalloc(sizeof *vm);

    vm->env = env;
    vm->name = xstrdup(name);
    vm->next_pid = QGA_FIRST_PID;
    list_init(&vm->execs);
    list_init(&vm->waiting);
    return vm;
}

void
qga_vm_destroy(struct qga_vm *vm)
{
    if (!vm) {
        return;
    }
    struct qga_exec *e;
    LIST_FOR_EACH_SAFE (e, node, &vm->execs) {
        exec_free(e);
    }
    free(vm->name);
    free(vm);
}

const char *
qga_vm_name(const struct qga_vm *vm)
{
    return vm->name;
}

void
qga_vm_run(struct qga_vm *vm)
{
    struct qga_job *job;

    LIST_FOR_EACH_SAFE (job, node, &vm->waiting) {
        if (time_msec() >= job->next_poll) {
            job->poll(job);
        }
    }
}

void
qga_vm_wait(struct qga_vm *vm)
{
    struct qga_job *job;

    LIST_FOR_EACH (job, node, &vm->waiting) {
        if (job->host_call) {
            ctl_call_wait(job->host_call);
        } else {
            poll_timer_wait_until(job->next_poll);
        }
    }
}

void
qga_get_cmd_stats(struct qga_cmd_stats *s)
{
    *s = stats;
}
