/*
 * watch: keeps every regular file directly in one directory registered as
 * an object (doc/objects.md, "Objects in the guest"), for chand-guest's
 * --watch-dir.
 *
 * At start, and again whenever the kernel's inotify queue overflowed, the
 * watch scans the directory: every entry, and every object the datastore
 * has registered directly in the directory, goes into a queue of names to
 * look at.  After that inotify reports the names that change
 * (IN_CLOSE_WRITE, IN_MOVED_TO, IN_DELETE, IN_MOVED_FROM) and they join the
 * queue; a name is queued at most once.
 *
 * Looking at a name: if it is a regular file (not a symbolic link), it is
 * hashed with sha256 and registered with datastore_object_add() (no flags
 * or params); anything else (gone, a directory, a symbolic link, a FIFO)
 * is unregistered with datastore_object_remove() if it was registered.
 * Hashing never stalls the daemon: watch_run() reads at most one chunk
 * (WATCH_CHUNK bytes) of one file per call and asks the poll loop to come
 * back at once while work remains.  A file that changes while it is hashed
 * (an inotify event for its name, or a size, inode, mtime or ctime at the
 * end that is not what it was at the start) is hashed again from the
 * start.  The watch writes to the datastore only when no transaction is
 * open (the receiver's group commits go first).  A registration the
 * datastore refuses (a path that is not valid UTF-8 or too long, a
 * publication limit) is logged and counted, and tried again when the name
 * changes or at the next scan.
 *
 * The incremental hasher (struct watch_hasher) is usable on its own.
 */
#ifndef WATCH_H
#define WATCH_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct datastore;

/* Bytes read and hashed per watch_run(). */
#define WATCH_CHUNK (1024 * 1024)

/* Names looked at without hashing (unregistered, skipped) per
 * watch_run(), so that a scan of a big directory does not stall either. */
#define WATCH_MAX_LOOKS 32

/* The incremental hasher: sha256 of one open regular file, a chunk at a
 * time. */
struct watch_hasher {
    int fd;                     /* -1 when closed. */
    void *ctx;                  /* EVP_MD_CTX *, owned. */
    struct stat start;          /* fstat() when opened. */
    int64_t done;               /* Bytes hashed so far. */
    char digest[65];            /* With WATCH_HASH_DONE: lowercase hex. */
};

enum watch_hash_result {
    WATCH_HASH_MORE,            /* Call watch_hasher_step() again. */
    WATCH_HASH_DONE,            /* 'digest' and 'done' (the size) are set. */
    WATCH_HASH_CHANGED,         /* The file changed meanwhile: start over. */
    WATCH_HASH_FAILED,          /* A read error (errno in '*errorp'). */
};

/* Opens 'path' (borrowed) for hashing, without following a final symbolic
 * link and without blocking on a FIFO.  Returns 0, ELOOP (a symbolic link),
 * EINVAL (not a regular file) or the errno of open() or fstat(); on error
 * 'h' is closed.  The caller closes it with watch_hasher_close(). */
int watch_hasher_open(struct watch_hasher *h, const char *path);

/* Reads and hashes at most 'budget' bytes (> 0).  At the end of the file,
 * checks that it is what it was when opened (size, inode, mtime, ctime). */
enum watch_hash_result watch_hasher_step(struct watch_hasher *h,
                                         size_t budget, int *errorp);

/* Frees what 'h' holds; 'h' is closed afterwards (closing twice is
 * fine). */
void watch_hasher_close(struct watch_hasher *h);

struct watch_stats {
    uint64_t scans;             /* Scans, the first included. */
    uint64_t overflows;         /* inotify queue overflows (each rescans). */
    uint64_t events;            /* inotify events with a name. */
    uint64_t hashed;            /* Files hashed to their end. */
    uint64_t bytes_hashed;
    uint64_t rehashed;          /* Hashes restarted: the file changed. */
    uint64_t added;             /* Registrations (a path that is already
                                 * registered with the same content
                                 * counts too). */
    uint64_t removed;           /* Paths unregistered. */
    uint64_t errors;            /* Refused or failed registrations,
                                 * read errors. */
};

struct watch;

/* Starts watching 'dir' (borrowed; its canonical path is used, and it
 * must be a directory), registering objects in 'ds' (borrowed; must
 * outlive the watch).  Returns the new watch (the caller frees it with
 * watch_destroy()), or NULL with the reason logged and errno set. */
struct watch *watch_create(const char *dir, struct datastore *ds);

/* Stops watching.  Objects stay registered.  NULL is a no-op. */
void watch_destroy(struct watch *);

/* Reads inotify events, scans if needed, and does one step of work. */
void watch_run(struct watch *);
void watch_wait(struct watch *);

/* True if nothing is queued or being hashed. */
bool watch_is_idle(const struct watch *);

/* The canonical path of the directory watched (owned by the watch). */
const char *watch_get_dir(const struct watch *);

/* Sets the bytes hashed per watch_run() (0: WATCH_CHUNK).  For tests. */
void watch_set_chunk(struct watch *, size_t chunk);

void watch_get_stats(const struct watch *, struct watch_stats *);

/* Returns a new JSON object: "dir", "queued", "hashing" (the name or
 * null) and the counters. */
json_t *watch_status_json(const struct watch *);

#endif /* watch.h */
