/*
 * transfer: chand-host's side of the file transfer lane (doc/objects.md,
 * "File transfer" and "Content store").
 *
 * chand-host keeps objects' content in its content store (content-store.h,
 * --content-dir), once per digest, under a cap (--content-cap) with
 * eviction of content nobody uses: content is in use while a fetch of it
 * runs, while some VM references the object (Object.refs), or while the
 * allowlist names it.
 *
 * Every channel gets a lane (xfer-lane.h).  On it chand-host:
 *
 *   - serves a VM's GETs for an object its desired state entitles it to
 *     (chandb_vm_entitled(): an install, a restore answer, or an update
 *     notice naming the object), from the content store, at most
 *     'serve_rate' chunks a second to one VM; anything else is refused
 *     with "not_entitled" or "no_object" and counted;
 *
 *   - fetches objects from VMs into the content store.  A fetch has
 *     candidate VMs; it pulls from the first candidate whose channel is
 *     ready and that has not failed it, and moves on to the next when one
 *     refuses, sends content that does not match the digest, or its
 *     channel goes down for longer than TRANSFER_SOURCE_GRACE_MS (the
 *     checkpointed chunks are kept: the next source only sends what is
 *     missing).  When every candidate failed, the fetch fails with their
 *     reasons, until the candidates change.
 *
 * Fetches come from two places: the restore requests that need content
 * (chandb_restore_needs()), and the operator (transfer_fetch(), the control
 * command "object/fetch VM DIGEST [SIZE]"; with SIZE also content no Object
 * row names, such as a VM's file-export).  Their outcome reaches the
 * restore answers through chandb_set_content_source(), and anyone through
 * transfer_fetch_status() ("object/fetch-status DIGEST").
 */
#ifndef HOST_TRANSFER_H
#define HOST_TRANSFER_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct channel;
struct chandb;

#define TRANSFER_SOURCE_GRACE_MS 30000
#define TRANSFER_DEFAULT_CAP (UINT64_C(4) << 30)
#define TRANSFER_DEFAULT_SERVE_RATE 100000     /* Chunks/s: 142 MB/s. */

struct transfer_config {
    const char *content_dir;
    uint64_t cap;               /* Bytes; 0: TRANSFER_DEFAULT_CAP. */
    uint64_t max_size;          /* Largest object; 0: 1 GiB. */
    unsigned int mtu;           /* 0: the default. */
    unsigned int guest_rate;    /* Chunks/s asked of one VM; 0: no
                                 * limit (xfer_lane_config.max_rate). */
    unsigned int serve_rate;    /* Chunks/s sent to one VM at most; 0:
                                 * TRANSFER_DEFAULT_SERVE_RATE. */
};

struct transfer;

/* Opens the content store and registers as 'db''s content source ('db' is
 * borrowed and must outlive the transfer).  Returns NULL with the reason
 * logged. */
struct transfer *transfer_create(const struct transfer_config *,
                                 struct chandb *db);
void transfer_destroy(struct transfer *);

/* Gives channel 'ch' (borrowed until transfer_detach()) its lane. */
void transfer_attach(struct transfer *, struct channel *ch);
void transfer_detach(struct transfer *, struct channel *ch);

void transfer_run(struct transfer *, long long now);
void transfer_wait(struct transfer *, long long now);

/* Fetches object 'digest' of 'size' bytes (1 to the transfer limit; -1:
 * the size of its Object row, which must exist) from VM 'vm' into the
 * content store (the operator's "object/fetch").  Returns 0, or an errno
 * value with '*errorp' set (the caller frees it). */
int transfer_fetch(struct transfer *, const char *vm, const char *digest,
                   int64_t size, char **errorp);

/* Returns where 'digest' stands (the caller owns it):
 *     {"digest": D, "state": "done", "path": P, "size": N}
 *     {"digest": D, "state": "fetching", "source": VM or null, "size": N}
 *     {"digest": D, "state": "failed", "error": E}
 * or NULL with '*errorp' set (the caller frees it) when there is no fetch
 * of it and the content store does not hold it. */
json_t *transfer_fetch_status(const struct transfer *, const char *digest,
                              char **errorp);

/* Copies file 'path' into the content store; stores its digest and size.
 * Returns 0, or an errno value with '*errorp' set. */
int transfer_store_file(struct transfer *, const char *path,
                        char digest[65], uint64_t *sizep, char **errorp);

/* {"content_dir", "content_bytes", "content_cap", "fetches": [...],
 * "lanes": {vm: lane status}, "refused": {...}}.  The caller owns it. */
json_t *transfer_status_json(const struct transfer *, long long now);

/* The lane status of VM 'vm', or NULL.  The caller owns it. */
json_t *transfer_lane_json(const struct transfer *, const char *vm,
                           long long now);

#endif /* transfer.h */
