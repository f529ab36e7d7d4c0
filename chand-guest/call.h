/*
 * call: requests and responses on the channel (doc/adapters.md).
 *
 * A request is a delivered record "call/<id>" (DS_CALL_KEY_PREFIX, <id> 1 to
 * CALL_ID_MAX bytes of [A-Za-z0-9._-]) whose value is
 *
 *     {"command": C, "args"?: {...}, "timeout_ms"?: T, "at"?: A}
 *
 * C a command name, "args" an object (default {}), T milliseconds from 1
 * to CALL_TIMEOUT_MAX_MS (default CALL_DEFAULT_TIMEOUT_MS), A the unix ms
 * the request was written (the deadline is A + T; without A, the time the
 * guest first looked at it plus T).  The response is the published record
 * "result/call/<id>" (the handled records' "result/" + the request's key,
 * datastore.h) with the value
 *
 *     {"id": ID, "version": V, "at": unix ms, "result": R}
 *     {"id": ID, "version": V, "at": unix ms,
 *      "error": {"class": CLASS, "desc": TEXT}}
 *
 * V being the request record's version.  The error classes are the
 * CALL_E_* below.
 *
 * Exactly once.  The handled table (datastore.h) notes, per request key,
 * the version answered, in the transaction that publishes the response,
 * so a request already answered is never run again (a restart, a host
 * snapshot, a record delivered twice); its response stays published.  A
 * command that runs outside the loop (exec) first notes the version with
 * no response: if chand-guest stops (or dies) before it ends, the child
 * is killed with it (SIGKILL; a process it left in the background may live
 * on), and the next start finds the note without a response and answers
 * CALL_E_INTERRUPTED instead of running it again.  A deleted request's
 * handled row is deleted and its response withdrawn (and a running exec
 * killed).  A new version of the same key is a new request.
 *
 * Commands (the table in call.c): ping, info, os-info, time,
 * network-interfaces, file-open, file-read, file-write, file-seek,
 * file-close, file-export, exec,
 * fsfreeze-status, fsfreeze-freeze, fsfreeze-thaw.  All but exec run in
 * the loop and are short: file reads are at most CALL_FILE_READ_MAX bytes,
 * on regular files only.  exec runs a child process (child.h), only for an
 * executable listed in the allowlist file (off without one).
 *
 * file-export {"handle": N, "count"?: C} copies up to C bytes (1 to
 * call_config's 'max_export'; without C, up to the end of the file, at
 * most 'max_export') from the handle's position into a file of the export
 * directory, hashes them, and has the transfer lane serve them under that
 * digest and size ('export_add'): {"count": N, "digest": D, "size": N,
 * "eof": B}.  The position advances by N.  One export per handle: the next
 * file-export of the handle, or its file-close, removes it ('export_remove'
 * and the file).  The copy runs in the loop, as the other file commands:
 * up to 'max_export' bytes (--max-transfer).
 */
#ifndef CALL_H
#define CALL_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datastore.h"          /* DS_CALL_KEY_PREFIX, the requests' keys. */

struct datastore;
struct ds_change;

#define CALL_ID_MAX 64
#define CALL_DEFAULT_TIMEOUT_MS 30000
#define CALL_TIMEOUT_MAX_MS (24LL * 3600 * 1000)
#define CALL_FILE_READ_DEFAULT 4096         /* Bytes, as qemu-ga. */
#define CALL_FILE_READ_MAX (256 * 1024)     /* Bytes of one file-read. */
#define CALL_FILE_WRITE_MAX (256 * 1024)    /* Bytes of one file-write. */
#define CALL_MAX_FILES 64                   /* Open handles at once. */
#define CALL_EXEC_OUTPUT_MAX (64 * 1024)    /* Bytes kept of stdout and of
                                             * stderr. */
#define CALL_EXEC_INPUT_MAX (256 * 1024)    /* Bytes of input-data. */
#define CALL_MAX_RUNNING 4                  /* exec children at once. */

/* Error classes. */
#define CALL_E_BAD_REQUEST "InvalidRequest"     /* Not a request. */
#define CALL_E_NOT_FOUND "CommandNotFound"      /* No such command. */
#define CALL_E_BAD_ARGS "InvalidParameter"      /* Bad "args". */
#define CALL_E_DENIED "PermissionDenied"        /* exec not allowed. */
#define CALL_E_TIMEOUT "Timeout"                /* Past its deadline. */
#define CALL_E_INTERRUPTED "Interrupted"        /* chand-guest stopped while
                                                 * it ran. */
#define CALL_E_TOO_LARGE "ResultTooLarge"       /* Over the publication
                                                 * limits. */
#define CALL_E_NOT_SUPPORTED "NotSupported"     /* Not in this guest. */
#define CALL_E_FAILED "GenericError"            /* The OS said no. */

struct call_config {
    const char *exec_allow;     /* The exec allowlist file, or NULL: exec
                                 * is refused. */

    /* file-export.  Without 'export_dir' it answers CALL_E_NOT_SUPPORTED.
     * The directory is the runner's: created if missing and emptied by
     * call_create(). */
    const char *export_dir;
    uint64_t max_export;        /* Bytes of one export, at least 1. */
    /* Serve the file 'path' as 'digest' of 'size' bytes, and stop it. */
    void (*export_add)(void *aux, const char *digest, uint64_t size,
                       const char *path);
    void (*export_remove)(void *aux, const char *digest, const char *path);
    void *export_aux;
};

struct call_stats {
    uint64_t requests;          /* Requests answered (each once). */
    uint64_t ok;
    uint64_t errors;            /* Every error response, the kinds below
                                 * too. */
    uint64_t bad_requests;      /* CALL_E_BAD_REQUEST. */
    uint64_t not_found;         /* CALL_E_NOT_FOUND. */
    uint64_t timeouts;          /* CALL_E_TIMEOUT. */
    uint64_t denied;            /* CALL_E_DENIED. */
    uint64_t interrupted;       /* CALL_E_INTERRUPTED. */
    uint64_t too_large;         /* CALL_E_TOO_LARGE. */
    uint64_t store_errors;      /* Responses the datastore refused (each
                                 * tried again later). */
    uint64_t exports;           /* file-exports made. */
    uint64_t exported_bytes;    /* Bytes they copied. */
};

struct call;

/* Creates the call runner for 'ds' (borrowed; must outlive it) with
 * 'config' (copied), and queues every request and every handled request
 * key.  Returns it; the caller frees it with call_destroy(). */
struct call *call_create(const struct call_config *config,
                         struct datastore *ds);

/* Kills running exec children (their requests stay unanswered: the next
 * start answers them CALL_E_INTERRUPTED) and closes the open files.  NULL
 * is a no-op. */
void call_destroy(struct call *);

/* Queues 'change''s key if it is a request.  For the datastore's change
 * callback. */
void call_record_changed(struct call *, const struct ds_change *);

void call_run(struct call *);
void call_wait(struct call *);

/* True if nothing is queued, running or waiting to be stored. */
bool call_is_idle(const struct call *);

void call_get_stats(const struct call *, struct call_stats *);

/* Returns a new JSON object: "exec_allow", "queued", "running", "files"
 * (open handles), "live_exports" (file-exports) and "counters". */
json_t *call_status_json(const struct call *);

/* The codec, for tests and chanctl. */

/* A parsed request. */
struct call_request {
    char *id;                   /* Owned. */
    char *command;              /* Owned. */
    json_t *args;               /* Owned, an object. */
    int64_t timeout_ms;
    int64_t at;                 /* Unix ms, or 0: not given. */
};

/* Returns the id of request key 'key' (a pointer into it), or NULL if
 * 'key' is not a valid request key. */
const char *call_id_of(const char *key);

/* Parses request 'value' (JSON text, borrowed) of record 'key'.  Returns
 * true with '*req' filled (the caller frees it with
 * call_request_destroy()), or false with '*descp' (malloc()ed) saying
 * why. */
bool call_parse_request(const char *key, const char *value,
                        struct call_request *req, char **descp);
void call_request_destroy(struct call_request *);

/* Returns the compact JSON of a response for request 'id' version
 * 'version' at unix ms 'at': 'result' (borrowed) if 'class' is NULL, else
 * the error 'class' and 'desc'.  malloc()ed. */
char *call_render_response(const char *id, int64_t version, int64_t at,
                           const json_t *result, const char *class,
                           const char *desc);

/* Runs the in-loop command of 'req' on 'c' and returns its result (owned
 * by the caller), or NULL with '*classp' (a CALL_E_* constant) and
 * '*descp' (malloc()ed) set.  For tests: exec answers here only its
 * refusals. */
json_t *call_dispatch(struct call *c, const struct call_request *req,
                      const char **classp, char **descp);

#endif /* call.h */
