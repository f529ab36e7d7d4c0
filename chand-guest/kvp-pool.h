/*
 * kvp-pool: the Hyper-V KVP pool files of Linux's hv_kvp_daemon
 * (tools/hv/hv_kvp_daemon.c): their format, their locks, and the ownership
 * rules of chand-guest's KVP view (kvp.h, doc/kvp.md).
 *
 * A pool file has no header: an array of records, each a key field of
 * KVP_KEY_SIZE bytes followed by a value field of KVP_VALUE_SIZE bytes
 * (HV_KVP_EXCHANGE_MAX_KEY_SIZE and _VALUE_SIZE of <linux/hyperv.h>),
 * each a NUL-terminated string.  Records chand writes are NUL-padded to
 * the end of both fields; records others wrote are kept byte for byte.
 * Whoever reads or writes a pool holds an fcntl() record lock over the
 * whole file (hv_kvp_daemon takes F_WRLCK for everything; chand takes
 * F_WRLCK to write and F_RDLCK to only read) and rewrites the file in
 * place (same inode: the daemon keeps the descriptor it locks with open),
 * whole records only.  Some tools lock with flock() instead (cloud-init's
 * Hyper-V reporter appends to pool 1 under flock(LOCK_EX)); on Linux the
 * two kinds do not exclude each other, so chand takes both.
 */
#ifndef KVP_POOL_H
#define KVP_POOL_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVP_POOL_COUNT 5
#define KVP_POOL_EXTERNAL 0
#define KVP_POOL_GUEST 1            /* Written by guest tools, read by the
                                     * host. */
#define KVP_KEY_SIZE 512            /* HV_KVP_EXCHANGE_MAX_KEY_SIZE. */
#define KVP_VALUE_SIZE 2048         /* HV_KVP_EXCHANGE_MAX_VALUE_SIZE. */
#define KVP_RECORD_SIZE (KVP_KEY_SIZE + KVP_VALUE_SIZE)
#define KVP_KEY_MAX (KVP_KEY_SIZE - 1)      /* Bytes, without the NUL. */
#define KVP_VALUE_MAX (KVP_VALUE_SIZE - 1)

/* One pool's content: 'n' whole records, raw. */
struct kvp_pool {
    uint8_t *recs;              /* n * KVP_RECORD_SIZE bytes, malloc()ed. */
    size_t n;
    size_t allocated;           /* Records room. */
    size_t extra;               /* Bytes after the last whole record in
                                 * what was parsed (dropped, as
                                 * hv_kvp_daemon does). */
};

void kvp_pool_init(struct kvp_pool *);
void kvp_pool_destroy(struct kvp_pool *);

/* Replaces 'pool''s content with the records in 'data' ('size' bytes,
 * borrowed). */
void kvp_pool_parse(struct kvp_pool *, const uint8_t *data, size_t size);

/* Stores in '*keyp' and '*valuep' pointers to record 'i''s key and value
 * (inside 'pool', not NUL-terminated if they fill their field) and their
 * lengths up to the first NUL. */
void kvp_pool_get(const struct kvp_pool *, size_t i,
                  const char **keyp, size_t *key_lenp,
                  const char **valuep, size_t *value_lenp);

/* Returns the index of the first record whose key is 'key', or -1. */
long kvp_pool_find(const struct kvp_pool *, const char *key);

/* The same, for the 'len' bytes at 'key'. */
long kvp_pool_find_n(const struct kvp_pool *, const char *key, size_t len);

/* Writes record 'i' (< n, or n to append one) as 'key' and 'value', both
 * within the limits (kvp_check_entry()), NUL-padded. */
void kvp_pool_put(struct kvp_pool *, size_t i, const char *key,
                  const char *value);

/* Removes record 'i'; the ones after it move up, in order. */
void kvp_pool_remove(struct kvp_pool *, size_t i);

/* Returns NULL if 'key' ('key_len' bytes) and 'value' ('value_len')
 * can be a pool entry, else why not (a static string). */
const char *kvp_check_entry(const char *key, size_t key_len,
                            const char *value, size_t value_len);

/* Pool files. */

/* Returns DIR/.kvp_pool_N, malloc()ed. */
char *kvp_pool_path(const char *dir, int pool);

/* Opens 'path' and tries its locks over the whole file: fcntl() F_WRLCK
 * and flock() LOCK_EX if 'write' (creating the file, mode 0644, if
 * 'create'), else F_RDLCK and LOCK_SH.
 * Returns 0 with the descriptor in '*fdp' (close() releases the lock),
 * EAGAIN if another process holds a conflicting lock, ENOENT (no file
 * and not 'create'), or another errno. */
int kvp_pool_lock(const char *path, bool write, bool create, int *fdp);

/* Reads the whole file 'fd' into 'pool'.  Returns 0 or an errno. */
int kvp_pool_read(int fd, struct kvp_pool *pool);

/* Writes 'pool' over file 'fd' in place (then truncates it to its
 * records and syncs it).  Returns 0 or an errno. */
int kvp_pool_write(int fd, const struct kvp_pool *pool);

/* The value a record shows in a pool: a JSON string's characters, else
 * the JSON text 'json' without white space outside strings.  Returns 0
 * with a malloc()ed string in '*textp' and its length in '*lenp' (a
 * string may hold a NUL: check with kvp_check_entry()), or EINVAL if
 * 'json' is not JSON. */
int kvp_value_text(const char *json, char **textp, size_t *lenp);

/* What kvp_merge() did. */
struct kvp_merge_counts {
    size_t written;             /* Entries of chand's added or changed. */
    size_t removed;             /* Entries of chand's removed. */
    size_t given_up;            /* Owned entries found changed by someone
                                 * else: theirs now. */
};

/* Ownership (kvp.h, "Ownership").  'want' maps names to the values chand
 * wants in the pool (JSON object of strings, borrowed), 'owned' names to
 * the values chand may have written (JSON object of arrays of strings,
 * borrowed).  Brings 'pool' in line with 'want' without touching what is
 * not chand's.  Stores in 'new_owned' (an empty JSON object, filled) the
 * ownership afterwards, in 'conflicts' (an empty JSON object, filled) the
 * wanted names held by another writer's entry (name -> true), and what it
 * did in '*counts'.  Returns true if 'pool' changed. */
bool kvp_merge(struct kvp_pool *pool, const json_t *want,
               const json_t *owned, json_t *new_owned, json_t *conflicts,
               struct kvp_merge_counts *counts);

/* True if record 'i' of 'pool' is chand's according to 'owned' (as for
 * kvp_merge()). */
bool kvp_is_owned(const struct kvp_pool *pool, size_t i,
                  const json_t *owned);

#endif /* kvp-pool.h */
