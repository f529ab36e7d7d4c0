/*
 * content-store: objects' content on disk, once per digest (doc/objects.md,
 * "Content store").
 *
 * A content store is one directory that its daemon owns:
 *
 *     DIR/<digest>               complete content, verified against its
 *                                digest (sha256, 64 lowercase hex)
 *     DIR/partial/<digest>       content being received, chunk by chunk
 *     DIR/partial/<digest>.map   which chunks of it are durable
 *
 * Files in DIR whose names are not digests, and anything else, are left
 * alone and not counted.
 *
 * Partial content.  A transfer writes each chunk it receives at its offset
 * in the partial file (content_partial_write()).  A checkpoint
 * (content_partial_checkpoint()) makes the chunks written so far durable:
 * fdatasync() of the partial file, then the map (a header and the
 * held-chunk bitmap of xfer.h) written to "<digest>.map.tmp", fsync()ed
 * and renamed over "<digest>.map", and the directory fsync()ed.  The map
 * therefore never names a chunk that is not on disk, whatever stops the
 * process; a chunk written after the last checkpoint is simply fetched
 * again.  Opening a partial that has a map with the same size and chunk
 * size resumes it; any other map (or none, or a damaged one) starts the
 * partial afresh.
 *
 * Map file layout (all integers big-endian):
 *     0   4  magic "CHXM"
 *     4   4  version 1
 *     8   8  object size
 *     16  4  chunk size
 *     20  4  reserved, 0
 *     24  32 sha256 of bytes 0..23 and of the bitmap (damage check)
 *     56  .. bitmap, (n_chunks + 7) / 8 bytes
 *
 * Finishing.  content_partial_finish() reads the whole partial file back,
 * compares its sha256 with the digest and its length with the size, and
 * only then renames it to DIR/<digest> (and removes the map).  Content
 * that does not match is removed, so it is never used; the transfer starts
 * again from nothing.
 *
 * Cap and eviction.  The store has a cap in bytes (0: none) on the total
 * size of complete and partial content (a partial counts its whole object
 * size while it is open or once it has a map, else its file's length).
 * content_store_reserve() makes room for a new object by removing complete
 * content that the owner says is not in use, least recently used first (by
 * the files' modification time, which content_store_touch() bumps); it
 * fails with ENOSPC when the rest is in use.
 *
 * Errors are returned as errno values with an English message in
 * '*errorp' where there is one (the caller frees it).  No logging; the
 * caller logs.  Not thread-safe.
 */
#ifndef CONTENT_STORE_H
#define CONTENT_STORE_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTENT_DIGEST_LEN 64

struct content_store;
struct content_partial;

/* Opens the content store in 'dir', creating it and DIR/partial (mode
 * 0700) if missing, with a cap of 'cap' bytes (0: no cap).  Returns the
 * store, or NULL with '*errorp' set.  The caller owns the store and frees
 * it with content_store_close(). */
struct content_store *content_store_open(const char *dir, uint64_t cap,
                                         char **errorp);

/* Frees the store.  Every partial opened in it must have ended first. */
void content_store_close(struct content_store *);

const char *content_store_dir(const struct content_store *);

/* Bytes of complete plus partial content, and the cap. */
uint64_t content_store_usage(const struct content_store *);
uint64_t content_store_cap(const struct content_store *);

/* Returns the path of the complete content of 'digest' (the caller frees
 * it) if the store has it, else NULL.  Does not verify it again. */
char *content_store_lookup(const struct content_store *, const char *digest);

/* Marks the content of 'digest' recently used (for eviction). */
void content_store_touch(struct content_store *, const char *digest);

/* Removes the complete content of 'digest', if any. */
void content_store_remove(struct content_store *, const char *digest);

/* Called by content_store_reserve() for each complete object; returns true
 * if it must stay. */
typedef bool content_in_use_func(const char *digest, void *aux);

/* Makes room for 'size' more bytes under the cap, evicting complete
 * content not in use (least recently used first).  Returns 0, or ENOSPC
 * with '*errorp' set if the cap cannot be met (and then evicts nothing).
 * Every eviction's digest is appended to '*evictedp' (a NULL-terminated
 * array the caller frees with its strings) if 'evictedp' is nonnull; if
 * '*evictedp' is NULL on entry it is set to a new, possibly empty, array. */
int content_store_reserve(struct content_store *, uint64_t size,
                          content_in_use_func *in_use, void *aux,
                          char ***evictedp, char **errorp);

/* Copies the file 'path' into the store: hashes it, and unless the store
 * has that digest already, copies it in through a temporary file (fsync()ed
 * and renamed).  Stores the digest in 'digest' and the size in '*sizep'.
 * Returns 0 or an errno value with '*errorp' set.  Room is made with
 * content_store_reserve() and 'in_use'. */
int content_store_add_file(struct content_store *, const char *path,
                           content_in_use_func *in_use, void *aux,
                           char digest[CONTENT_DIGEST_LEN + 1],
                           uint64_t *sizep, char **errorp);

/* Hashes the file 'path' (sha256) into 'digest' and stores its size in
 * '*sizep'.  Returns 0 or an errno value. */
int content_hash_file(const char *path, char digest[CONTENT_DIGEST_LEN + 1],
                      uint64_t *sizep);

/* Opens the partial content of 'digest', 'size' bytes in 'chunk_size'
 * chunks, resuming from its map when that matches (see above).  From then
 * on the partial counts 'size' bytes in the store's usage (make room first
 * with content_store_reserve()).  Returns the partial, or NULL with
 * '*errorp' set (also if that partial is open already).  The caller owns
 * it: it ends with content_partial_finish(), content_partial_abort() or
 * content_partial_close(). */
struct content_partial *content_partial_open(struct content_store *,
                                             const char *digest,
                                             uint64_t size,
                                             uint32_t chunk_size,
                                             char **errorp);

/* The durable held-chunk bitmap (xfer.h layout): the one loaded at open,
 * then the one of the last checkpoint; and its length, and how many chunks
 * it holds.  Borrowed, valid until the next checkpoint. */
const uint8_t *content_partial_bitmap(const struct content_partial *,
                                      size_t *n_bytes);
uint64_t content_partial_durable(const struct content_partial *);

/* Writes chunk 'index' ('len' bytes at 'data') at its offset.  Returns 0
 * or an errno value: EINVAL if there is no such chunk or 'len' is not its
 * length. */
int content_partial_write(struct content_partial *, uint64_t index,
                          const void *data, size_t len);

/* Makes every chunk whose bit is set in 'bitmap' (xfer.h layout, as from
 * xfer_rx_bitmap()) durable, as described above.  Only chunks written with
 * content_partial_write() (or durable already) may be set; bits past the
 * last chunk are ignored.  Returns 0 or an errno value: EINVAL for a bit
 * of a chunk not written or an 'n_bytes' other than the bitmap's. */
int content_partial_checkpoint(struct content_partial *,
                               const uint8_t *bitmap, size_t n_bytes);

/* Verifies the partial content and makes it complete.  Returns 0 and
 * frees the partial; or EBADMSG ("content does not match its digest") or
 * another errno value with '*errorp' set, and then the partial's files are
 * removed and the partial freed. */
int content_partial_finish(struct content_partial *, char **errorp);

/* Removes the partial's files and frees it. */
void content_partial_abort(struct content_partial *);

/* Frees the partial, leaving its files (and its last checkpoint) on disk
 * for a later content_partial_open(). */
void content_partial_close(struct content_partial *);

#endif /* content-store.h */
