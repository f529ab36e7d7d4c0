/*
 * transfer: chand-guest's side of the file transfer lane (xfer-lane.h,
 * doc/objects.md "File transfer") and the guest's rules for the records
 * that need content: install and restore.
 *
 * Content.  Objects pulled from the host land in the guest's content store
 * (content-store.h, --content-dir), complete and verified, before any
 * handler sees them.  The lane serves the host's GETs from the files the
 * objects table registers for the digest (the first registered path whose
 * file has the object's size), and from the exports (below); anything
 * else is refused with "no_object".
 *
 * Exports.  call.c's file-export writes part of an open file to a file of
 * its own and registers it here (transfer_export_add()) under its digest
 * and size, until it removes it (transfer_export_remove()).  An export is
 * private to the transfer: no object record, no Object_Ref; the host
 * fetches it with "object/fetch VM DIGEST SIZE".
 *
 * Install.  A record "install/<digest>" with value {"path": P, "size": S}
 * (and optionally "mode", an octal string such as "0755") is handled only
 * if:
 *   - the digest is on the allowlist: the host delivers it as the record
 *     "allow/<digest>" (doc/objects.md, "Approved install"), and it is
 *     checked again after the content arrived, just before the handler
 *     runs;
 *   - P is absolute, normalized (no "." or ".." component) and inside the
 *     install directory (--install-dir).
 * The handler then gets, besides the record, "content" (the verified
 * content's path), "path" (P) and "mode".
 *
 * Restore.  chand-guest asks for an object with the local API's
 * "object-restore": it publishes "restore/<digest>" with {"digest": D,
 * "path": P, "at": T} (T, unix ms, tells requests apart).  The host
 * answers with the record "restore/<digest>": {"digest": D, "size": S,
 * "request": T} once it has the content, or {"digest": D, "request": T,
 * "error": E} when it cannot.  The handler runs for an answer to the
 * standing request with "content" and "path" (the request's P, never one
 * from the host); an error answer fails at once with E as the reason.
 *
 * transfer_prepare() is the handler runner's prepare callback
 * (handler.h).
 */
#ifndef GUEST_TRANSFER_H
#define GUEST_TRANSFER_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chan_wire_header;
struct datastore;

#define TRANSFER_DEFAULT_INSTALL_DIR "/var/lib/chand/installed"
#define TRANSFER_ALLOW_PREFIX "allow/"
#define TRANSFER_INSTALL_PREFIX "install/"
#define TRANSFER_RESTORE_PREFIX "restore/"

struct transfer_config {
    const char *content_dir;    /* The content store. */
    uint64_t max_size;          /* Largest object; 0: 1 GiB. */
    unsigned int mtu;
    uint16_t vid;
    const char *install_dir;    /* NULL: TRANSFER_DEFAULT_INSTALL_DIR. */
};

/* What the transfer needs from chand-guest. */
struct transfer_ops {
    /* Sends a frame to the host.  Returns 0 or an errno value. */
    int (*send)(const uint8_t *frame, size_t len, void *aux);
    /* The key the receiver sends with (NULL, 0: the empty key). */
    void (*key)(void *aux, const uint8_t **keyp, size_t *lenp);
    /* A pull for record 'key' ended; look at the record again. */
    void (*poke)(void *aux, const char *key);
};

struct transfer;

/* Creates the transfer side, opening the content store.  Returns NULL
 * with the reason logged.  'ds' and 'ops' are borrowed. */
struct transfer *transfer_create(const struct transfer_config *,
                                 const struct transfer_ops *, void *aux,
                                 struct datastore *ds);
void transfer_destroy(struct transfer *);

/* A decoded CHUNK or XFER frame from the host. */
void transfer_input(struct transfer *, const struct chan_wire_header *,
                    const uint8_t *payload, long long now);

/* Sets the IP MTU of the lane's frames (xfer_lane_set_mtu()). */
void transfer_set_mtu(struct transfer *, unsigned int mtu);

void transfer_run(struct transfer *, long long now);
void transfer_wait(struct transfer *, long long now);

/* The handler runner's prepare callback (handler.h): for an install or
 * restore record, checks the rules above and makes the content present.
 * Returns 0 with '*extrap' (owned by the caller) holding the members to
 * add to the handler's input; EINPROGRESS while the content is on its way
 * (the record is looked at again when the pull ends); or another errno
 * value with '*reasonp' (owned by the caller) saying why the record is
 * refused. */
int transfer_prepare(void *t, const char *key, const char *kind,
                     const char *value, json_t **extrap, char **reasonp);

/* Validates and publishes a restore request for 'digest' to 'path'
 * (absolute, normalized, not inside the content store) and stores its
 * "at" in '*atp'.  Returns 0, or an errno value with '*errorp' set (the
 * caller frees it). */
int transfer_request_restore(struct transfer *, const char *digest,
                             const char *path, int64_t *atp, char **errorp);

/* Serves the file 'path' (copied) as content 'digest' of 'size' bytes
 * until transfer_export_remove().  't' is a struct transfer, as
 * call_config's 'export_aux'. */
void transfer_export_add(void *t, const char *digest, uint64_t size,
                         const char *path);

/* Stops serving the export of 'digest' from 'path' (registered with
 * transfer_export_add()); a GET of it under way ends with the next one.
 * The file itself is the caller's. */
void transfer_export_remove(void *t, const char *digest, const char *path);

/* Status: the lane's pulls, served objects and counters, plus
 * "refused" (records refused, by reason class). */
json_t *transfer_status_json(const struct transfer *, long long now);

#endif /* transfer.h */
