/*
 * api: chand-guest's local API for guest applications: JSON-RPC 1.0
 * (lib/jsonrpc) on a Unix socket, by default the Linux abstract socket
 * "@chand-guest" (private to the VM's network namespace).  Requests:
 *
 *   "get" [KEY]       -> {"key": K, "value": V, "version": N}
 *                        or the error "not found"
 *   "list" [PREFIX?]  -> [{"key", "value", "version"}, ...] in ascending
 *                        bytewise key order; every record without PREFIX
 *   "watch" [PREFIX?] -> {"watching": true, "prefix": P, "position": S}
 *                        then, for each change committed afterwards to a
 *                        key starting with P (every key without PREFIX),
 *                        a notification
 *                          {"method": "update", "id": null, "params":
 *                           [{"key": K, "op": "put"|"delete",
 *                             "value": V, "version": N}]}
 *                        ("value" and "version" only for "put"; "value"
 *                        is the value when the notification is sent).
 *                        Several watches on one connection add up; each
 *                        change is sent once.  Watch, then list, to see
 *                        every state with no gap.
 *   "publish" [KEY, VALUE]
 *                     -> {"version": N}: KEY (1..256 bytes of UTF-8, not
 *                        under "from/", "obj/" or "result/") is published with VALUE (any JSON
 *                        value) for the host (doc/SESSION.md, "Upstream"),
 *                        durably before the reply; N is its new version
 *   "unpublish" [KEY] -> {"version": N}: KEY is withdrawn (a tombstone of
 *                        version N until the host has it), or the error
 *                        "not found: unknown or already withdrawn key"
 *   "published" [PREFIX?]
 *                     -> {"records": [{"key", "value", "version",
 *                         "acked_version", "deleted", "state"}, ...],
 *                         "count": C, "withdrawn": W, "pending": P}: the
 *                        published records (withdrawals still pending
 *                        included, with "value" null and "deleted" true)
 *                        in ascending bytewise key order, "state"
 *                        "pending" until the host acknowledged the record's
 *                        version, then "delivered"; C counts the records
 *                        not withdrawn, W the pending withdrawals, P the
 *                        pending rows of either kind
 *   "object-add" [{"path": P, "digest": D, "size": N, "flags"?: [F...],
 *                  "params"?: {K: V...}}]
 *                     -> {"path": P, "digest": D}: registers the regular
 *                        file P (absolute and normalized, in a directory
 *                        named by its canonical path; not a symbolic link;
 *                        of N bytes, checked with lstat()) as the object D
 *                        (its sha256, 64 lowercase hex digits, computed by
 *                        the client) with flags and params
 *                        (datastore.h, "Objects"), and publishes the record
 *                        "obj/D" durably before the reply
 *   "object-remove" [{"path": P}]
 *                     -> {"path": P}: unregisters P, republishing "obj/D"
 *                        or withdrawing it with D's last path; the error
 *                        "not found: ..." if P is not registered
 *   "objects" [{"digest"?: D}]
 *                     -> [{"path", "digest", "size", "flags", "params",
 *                         "added_at"}, ...]: the registered paths (of D
 *                        only, with D) in ascending bytewise path order
 *   "object-restore" [{"digest": D, "path": P}]
 *                     -> {"key": "restore/D", "at": T}: asks the host for
 *                        object D, to be written to P (absolute,
 *                        normalized, in an existing directory) by the
 *                        restore handler; the outcome is published as
 *                        "result/restore/D" with an "at" of T or later
 *                        (doc/objects.md, "Restore from a sibling")
 *   "status" []       -> chand-guest's status object (as "guest/status"
 *                        on the control socket)
 *   "echo" [ANY...]   -> the params, unchanged
 *
 * V is the record's value as JSON (the datastore keeps JSON text).  Errors
 * are JSON-RPC error replies whose "error" is a string: "not found",
 * "unknown method: M", "invalid params: ...", "invalid request: ..." or
 * "internal error: ...".  A key or value "publish" or "unpublish" refuses
 * gives "invalid params: bad key: ...", "invalid params: reserved key:
 * ..." (under "from/": the prefix of records chand-host relays, or
 * "obj/": the object records, which only "object-add" writes, or
 * "result/": the handlers' results, which only chand-guest writes) or
 * "invalid params: bad value: ..." (nested deeper than 32 levels, longer
 * than 1 MiB in compact form, ...); a publication over a limit the host
 * set for the VM (records held, bytes of a value, bytes in all,
 * publications a second) gives "over limit: ...".  An object request
 * refused gives "invalid params: bad path: ...", "invalid params: bad
 * file: ..." (not a regular file, a symbolic link, a size that is not the
 * file's), "invalid params: bad object: ..." (digest, flags, params),
 * "not found: ..." or "over limit: ..." (more than 64 paths for one
 * digest, or a publication limit), and is counted in object_errors as
 * well.  Every bad request is
 * counted; a message that is not JSON, or longer than API_MAX_REQUEST,
 * closes the connection.  A watcher that does not read its notifications is
 * disconnected once more than API_MAX_BACKLOG bytes wait for it, so it
 * never slows the daemon.
 */
#ifndef API_H
#define API_H 1

#include <jansson.h>
#include <stdint.h>

#include "datastore.h"

#define API_DEFAULT_PATH "@chand-guest"
#define API_MAX_CONNS 64
#define API_MAX_REQUEST (1024 * 1024)
#define API_MAX_BACKLOG (4 * 1024 * 1024)

struct api;

/* Returns a new JSON object (owned by the caller) with the daemon's
 * status, for the "status" request. */
typedef json_t *api_status_func(void *aux);

/* Asks for object 'digest' to be restored to 'path' (both borrowed), for
 * the "object-restore" request.  Returns 0, or an errno value with
 * '*errorp' (owned by the caller) saying why not. */
typedef int api_restore_func(void *aux, const char *digest,
                             const char *path, int64_t *atp,
                             char **errorp);

/* Sets the "object-restore" handler (NULL: the request is refused with
 * "not supported"). */
void api_set_restore(struct api *, api_restore_func *, void *aux);

struct api_stats {
    uint64_t conns_accepted;
    uint64_t conns_refused;     /* Over API_MAX_CONNS. */
    uint64_t conns_slow;        /* Closed for an overlong backlog. */
    uint64_t conns_broken;      /* Closed for bad JSON or I/O errors. */
    uint64_t requests;          /* Valid requests answered. */
    uint64_t bad_requests;      /* Anything answered with an error, plus
                                 * messages that could not be answered. */
    uint64_t notifications;     /* "update" notifications sent. */
    uint64_t objects_added;     /* "object-add" requests done. */
    uint64_t objects_removed;   /* "object-remove" requests done. */
    uint64_t object_errors;     /* Object requests refused (also counted
                                 * in bad_requests). */
    uint64_t publish_commits;   /* Commits of a group of publish and
                                 * unpublish requests (see api.c). */
};

/* Listens on 'path': a file path, "@name" for an abstract socket, or a
 * "punix:" name.  Serves records from 'ds' (borrowed; must outlive the
 * api) and status from 'status' with 'aux'.  Returns the new api (the
 * caller frees it with api_destroy()), or NULL with the reason logged and
 * errno set. */
struct api *api_create(const char *path, struct datastore *ds,
                       api_status_func *status, void *aux);

/* Closes every connection and the listener.  NULL is a no-op. */
void api_destroy(struct api *);

/* Accepts connections, answers requests, flushes notifications. */
void api_run(struct api *);
void api_wait(struct api *);

/* Sends the notification for 'change' (borrowed) to every watcher it
 * concerns.  Call it from the datastore's change callback. */
void api_notify(struct api *, const struct ds_change *change);

/* The name the api listens on ("punix:..."), owned by the api. */
const char *api_get_name(const struct api *);

void api_get_stats(const struct api *, struct api_stats *);

/* Returns a new JSON object with the counters and the number of
 * connections and watchers. */
json_t *api_stats_json(const struct api *);

#endif /* api.h */
