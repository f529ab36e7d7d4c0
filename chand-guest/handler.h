/*
 * handler: runs the executables of chand-guest's handlers directory for
 * the delivered records that ask for action (doc/objects.md, "Handlers").
 *
 * Kinds.  A record whose key is "<kind>/..." with kind one of
 * HANDLER_KINDS ("verdict", "notice", "install", "restore") is handled
 * once per version, by the executable <dir>/<kind>.  The kind names are
 * fixed, so the path never leaves the directory.
 *
 * Running.  The handler runs in a child process of its own process group,
 * through execve() (no shell), with:
 *   - stdin: {"key": K, "kind": KIND, "version": N, "value": V}, V being
 *     the record's JSON value, plus the members the configured prepare
 *     step adds (see handler_prepare_func; chand-guest's adds "content"
 *     and "path" for install and restore, transfer.h);
 *   - stdout and stderr captured, HANDLER_OUTPUT_MAX bytes of each (the
 *     rest is read and dropped);
 *   - the environment PATH, LANG=C, CHAND_HANDLER_KIND=KIND and, if
 *     configured, CHAND_QUARANTINE_DIR;
 *   - the working directory "/", every other descriptor closed, default
 *     signal dispositions, and, with a configured user, that user's uid,
 *     gid and supplementary groups (initgroups, setgid, setuid).
 * At most 'max_running' run at once; the others wait in order.  Nothing
 * blocks chand-guest's loop: the pipes are non-blocking and the child's
 * end is noticed through a pidfd (or every 100 ms where there is none).
 * When the handler exits, whatever is left of its process group is
 * killed.
 *
 * Safety.  Before each run the directory must be a directory owned by
 * root or chand-guest's effective uid and not writable by group or
 * others, and <dir>/<kind> a regular file (a symbolic link is refused,
 * not followed), executable, not writable by group or others, owned by
 * root or chand-guest's effective uid.  Otherwise the run fails at once
 * with the reason.
 *
 * Outcome, in this order:
 *   - past 'timeout' seconds: the process group gets SIGKILL, failed
 *     "timed out after N s";
 *   - killed by a signal: failed "crashed: signal N";
 *   - exit status N other than 0: failed "exit status N: " and the last
 *     line of stderr (at most HANDLER_REASON_MAX bytes), or "exit status
 *     N" without stderr;
 *   - exit status 0 and stdout empty (or white space): ok;
 *   - exit status 0 and stdout exactly one JSON object: ok, keeping its
 *     "detail" (a string) and "object_flags" (an array of flag names);
 *     anything else on stdout: failed "unreadable output".
 *
 * Results.  The outcome is written with datastore_set_handled(): the
 * handled table notes the version, and "result/<key>" is published with
 * {"at": unix ms, "detail"?: D, "key": K, "reason"?: R, "status": "ok" |
 * "failed", "version": N}, in one transaction.  For a "verdict/<digest>"
 * record handled ok with "object_flags", the flags are added to every
 * path of that digest (datastore_object_add_flags()) in the same
 * transaction.  A result the datastore refuses (a publication limit) is
 * tried again every second.
 *
 * Versions.  A key is looked at when the datastore reports a change of it
 * (handler_record_changed()) and, for every record of a kind and every
 * handled row, when the runner is created.  A record whose version is the
 * handled one is left alone; a deleted record's handled row is deleted and
 * its result withdrawn.  A key being handled is not run again before its
 * run ends; a newer version that arrived meanwhile runs after it.  A run
 * that had not ended when chand-guest stopped (or crashed) left no handled
 * row, so it runs again at the next start: handlers run at least once per
 * version, and should be idempotent.
 */
#ifndef HANDLER_H
#define HANDLER_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct datastore;
struct ds_change;

#define HANDLER_KINDS { "verdict", "notice", "install", "restore" }

#define HANDLER_DEFAULT_DIR "/etc/chand/handlers.d"
#define HANDLER_DEFAULT_TIMEOUT 30          /* Seconds. */
#define HANDLER_DEFAULT_MAX_RUNNING 2
#define HANDLER_OUTPUT_MAX (64 * 1024)      /* Bytes kept of stdout and of
                                             * stderr. */
#define HANDLER_REASON_MAX 256              /* Bytes of stderr in a
                                             * reason. */
#define HANDLER_DETAIL_MAX 1024             /* Bytes of a detail kept. */
#define HANDLER_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:" \
                     "/sbin:/bin"

/* Called before a run of a record of 'kind' ('key', JSON text 'value', all
 * borrowed).  Returns 0 to run it, with '*extrap' (owned by the caller,
 * may stay NULL) holding members to add to the handler's input; returns
 * EINPROGRESS to run it later (after handler_poke() on the key, or a new
 * version); returns another errno value to fail the version at once with
 * '*reasonp' (owned by the caller) as the reason. */
typedef int handler_prepare_func(void *aux, const char *key,
                                 const char *kind, const char *value,
                                 json_t **extrap, char **reasonp);

struct handler_config {
    const char *dir;            /* The handlers directory. */
    const char *user;           /* User to run as, or NULL: chand-guest's
                                 * own. */
    unsigned int timeout;       /* Seconds, >= 1. */
    unsigned int max_running;   /* Concurrent runs, >= 1. */
    const char *quarantine_dir; /* CHAND_QUARANTINE_DIR for the handlers,
                                 * or NULL: not set. */
    handler_prepare_func *prepare;  /* Or NULL: run every record as is. */
    void *prepare_aux;
};

struct handler_stats {
    uint64_t runs;              /* Runs ended (refused ones included). */
    uint64_t ok;
    uint64_t failed;            /* Every failure, the kinds below too. */
    uint64_t timeouts;
    uint64_t crashes;           /* Killed by a signal (not by us). */
    uint64_t bad_output;        /* Unreadable output. */
    uint64_t refused;           /* Missing or unsafe handler. */
    uint64_t waiting;           /* Versions the prepare step held back
                                 * (each time). */
    uint64_t store_errors;      /* Results the datastore refused (each
                                 * tried again later). */
};

struct handler;

/* Creates a runner for the records of 'ds' (borrowed; must outlive the
 * runner) with 'config' (copied, strings too), and queues every record of
 * a kind and every handled key (see above).  SIGPIPE is ignored from then
 * on (a handler may close its stdin unread).  Returns the runner (the
 * caller frees it with handler_destroy()), or NULL with the reason logged
 * (an unknown user, or a user other than chand-guest's own when
 * chand-guest is not root). */
struct handler *handler_create(const struct handler_config *config,
                               struct datastore *ds);

/* Kills the running handlers (their process groups) and reaps them; their
 * versions stay unhandled.  NULL is a no-op. */
void handler_destroy(struct handler *);

/* Queues 'change''s key if it is of a kind.  For the datastore's change
 * callback. */
void handler_record_changed(struct handler *, const struct ds_change *);

/* Looks at record 'key' again (its prepare step may now let it run). */
void handler_poke(struct handler *, const char *key);

/* Moves the runs on: feeds stdin, reads stdout and stderr, notices ends
 * and timeouts, stores outcomes, starts queued runs. */
void handler_run(struct handler *);
void handler_wait(struct handler *);

/* True if nothing is queued, running or waiting to be stored. */
bool handler_is_idle(const struct handler *);

void handler_get_stats(const struct handler *, struct handler_stats *);

/* Returns a new JSON object: the configuration, "queued", "running" (an
 * array of {"key", "version", "pid", "seconds"}) and "counters". */
json_t *handler_status_json(const struct handler *);

/* The pure parts, for tests. */

/* Returns the kind of record 'key' (a string constant), or NULL if it has
 * none. */
const char *handler_kind_of(const char *key);

/* Checks the handler of 'kind' in 'dir' as described above.  Returns 0, or
 * an errno with the reason in 'reason' ('size' bytes). */
int handler_check_file(const char *dir, const char *kind, char *reason,
                       size_t size);

/* What a run came to. */
enum handler_class {
    HANDLER_OK,
    HANDLER_FAILED,             /* Exit status other than 0, or refused. */
    HANDLER_TIMEOUT,
    HANDLER_CRASH,
    HANDLER_BAD_OUTPUT,
};

struct handler_outcome {
    enum handler_class class;
    char *reason;               /* Failures: owned. */
    char *detail;               /* Ok: owned, or NULL. */
    json_t *object_flags;       /* Ok: an array of strings, owned, or
                                 * NULL. */
};

/* Works out the outcome of a run from its wait status 'status', whether
 * it was killed at its 'timeout' ('timed_out') and what it wrote to
 * stdout and stderr (borrowed).  The caller frees '*o' with
 * handler_outcome_destroy(). */
void handler_evaluate(int status, bool timed_out, unsigned int timeout,
                      const char *out, size_t out_len,
                      const char *err, size_t err_len,
                      struct handler_outcome *o);
void handler_outcome_destroy(struct handler_outcome *);

#endif /* handler.h */
