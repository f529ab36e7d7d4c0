/* Copyright (c) 2026 The chand authors.  See content-store.h. */

#include <config.h>
#include "content-store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "list.h"
#include "packets.h"
#include "util.h"

#define FILE_MODE 0640
#define DIR_MODE 0700

#define SHA256_LEN 32

/* Map file layout (content-store.h). */
#define MAP_MAGIC "CHXM"
#define MAP_VERSION 1
#define MAP_HDR_LEN 24              /* Bytes covered by the check with... */
#define MAP_CHECK_LEN SHA256_LEN    /* ...the bitmap. */
#define MAP_BITMAP_OFS (MAP_HDR_LEN + MAP_CHECK_LEN)

/* Largest number of chunks of one object (as XFER_MAX_CHUNKS in xfer.h). */
#define MAX_CHUNKS (UINT64_C(1) << 32)

#define IO_BUF_SIZE (64 * 1024)

struct content_store {
    char *dir;                  /* Owned. */
    char *partial_dir;          /* Owned: DIR/partial. */
    uint64_t cap;               /* 0: none. */
    uint64_t usage;             /* Complete plus partial bytes. */
    struct list partials;       /* Open 'struct content_partial's. */
};

struct content_partial {
    struct list node;           /* In the store's 'partials'. */
    struct content_store *store;        /* Not owned. */
    char digest[CONTENT_DIGEST_LEN + 1];
    char *path;                 /* Owned: DIR/partial/<digest>. */
    char *map_path;             /* Owned: path + ".map". */
    int fd;                     /* The partial file, read-write. */
    uint64_t size;              /* Of the object. */
    uint32_t chunk_size;
    uint64_t n_chunks;
    size_t n_bytes;             /* Of each bitmap: (n_chunks + 7) / 8. */
    uint8_t *durable;           /* Owned: the last durable bitmap. */
    uint8_t *written;           /* Owned: durable plus chunks written. */
};

/* Helpers. */

/* Returns true if 's' is a digest: 64 lowercase hex digits. */
static bool
is_digest(const char *s)
{
    size_t i;

    for (i = 0; i < CONTENT_DIGEST_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[i] == '\0';
}

/* Returns the number of chunks of an object of 'size' bytes in
 * 'chunk_size' chunks (1 for an empty object), as xfer_n_chunks(). */
static uint64_t
n_chunks_of(uint64_t size, uint32_t chunk_size)
{
    return size ? (size - 1) / chunk_size + 1 : 1;
}

/* Returns the length of chunk 'index' of a partial. */
static uint64_t
chunk_len(const struct content_partial *p, uint64_t index)
{
    uint64_t ofs = index * p->chunk_size;
    uint64_t left = p->size - ofs;

    return left < p->chunk_size ? left : p->chunk_size;
}

static bool
bit_is_set(const uint8_t *bitmap, uint64_t i)
{
    return (bitmap[i / 8] >> (i % 8)) & 1;
}

/* Returns a new sha256 context.  The caller frees it with
 * EVP_MD_CTX_free(). */
static EVP_MD_CTX *
sha256_new(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        out_of_memory();
    }
    return ctx;
}

/* Finishes 'ctx' into 'md' and frees it. */
static void
sha256_final(EVP_MD_CTX *ctx, uint8_t md[SHA256_LEN])
{
    unsigned int len = 0;

    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
}

static void
sha256_to_hex(const uint8_t md[SHA256_LEN], char hex[CONTENT_DIGEST_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < SHA256_LEN; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[CONTENT_DIGEST_LEN] = '\0';
}

/* Writes all 'len' bytes at 'data' to 'fd' at 'ofs'.  Returns 0 or an
 * errno value. */
static int
pwrite_all(int fd, const void *data, size_t len, uint64_t ofs)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, ofs);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            return errno;
        } else if (n == 0) {
            return EIO;
        }
        p += n;
        len -= n;
        ofs += n;
    }
    return 0;
}

/* Reads up to 'len' bytes from 'fd' at 'ofs' into 'data', stopping only at
 * the end of the file.  Returns the bytes read, or -1 with errno set. */
static ssize_t
pread_full(int fd, void *data, size_t len, uint64_t ofs)
{
    char *p = data;
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, ofs + done);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            return -1;
        } else if (n == 0) {
            break;
        }
        done += n;
    }
    return done;
}

/* fsync()s the directory 'dir'.  Returns 0 or an errno value. */
static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int error;

    if (fd < 0) {
        return errno;
    }
    error = fsync(fd) ? errno : 0;
    close(fd);
    return error;
}

/* Removes 'path'; a missing file is no error.  Returns 0 or an errno
 * value. */
static int
remove_file(const char *path)
{
    return unlink(path) && errno != ENOENT ? errno : 0;
}

/* Returns a malloc'd message "PATH: WHAT: strerror(ERROR)". */
static char *
io_error(const char *path, const char *what, int error)
{
    return xasprintf("%s: %s: %s", path, what, strerror(error));
}

static void
set_error(char **errorp, char *msg)
{
    if (errorp) {
        *errorp = msg;
    } else {
        free(msg);
    }
}

/* Hashing. */

/* Copies what 'in' reads to 'out' (if 'out' >= 0), hashing it into 'md'
 * and counting it in '*sizep'.  Returns 0 or an errno value. */
static int
copy_and_hash(int in, int out, uint8_t md[SHA256_LEN], uint64_t *sizep)
{
    EVP_MD_CTX *ctx = sha256_new();
    char *buf = xmalloc(IO_BUF_SIZE);
    uint64_t size = 0;
    int error = 0;

    for (;;) {
        ssize_t n = read(in, buf, IO_BUF_SIZE);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            error = errno;
            break;
        } else if (n == 0) {
            break;
        }
        EVP_DigestUpdate(ctx, buf, n);
        error = out >= 0 ? pwrite_all(out, buf, n, size) : 0;
        if (error) {
            break;
        }
        size += n;
    }
    free(buf);
    sha256_final(ctx, md);
    *sizep = size;
    return error;
}


/* Hashes what 'fd' reads from its current offset to its end into 'md' and
 * stores the length in '*sizep'.  Returns 0 or an errno value. */
static int
hash_fd(int fd, uint8_t md[SHA256_LEN], uint64_t *sizep)
{
    return copy_and_hash(fd, -1, md, sizep);
}

/* Opens 'path' for reading, refusing anything but a regular file.  Returns
 * the fd, or -1 with errno set. */
static int
open_regular(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    int error;

    if (fd < 0) {
        return -1;
    }
    error = fstat(fd, &st) ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
    if (error) {
        close(fd);
        errno = error;
        return -1;
    }
    return fd;
}

int
content_hash_file(const char *path, char digest[CONTENT_DIGEST_LEN + 1],
                  uint64_t *sizep)
{
    uint8_t md[SHA256_LEN];
    int fd = open_regular(path);
    int error;

    if (fd < 0) {
        return errno;
    }
    error = hash_fd(fd, md, sizep);
    close(fd);
    if (!error) {
        sha256_to_hex(md, digest);
    }
    return error;
}

/* Maps. */

/* The damage check of a map: sha256 of its header and 'bitmap'. */
static void
map_check(const uint8_t hdr[MAP_HDR_LEN], const uint8_t *bitmap,
          size_t n_bytes, uint8_t md[SHA256_LEN])
{
    EVP_MD_CTX *ctx = sha256_new();

    EVP_DigestUpdate(ctx, hdr, MAP_HDR_LEN);
    EVP_DigestUpdate(ctx, bitmap, n_bytes);
    sha256_final(ctx, md);
}

/* Reads the map at 'path'.  If it is intact, returns true and stores the
 * object size and chunk size it records, and the bitmap (malloc'd, owned
 * by the caller) and its length.  Otherwise (missing, damaged, another
 * version) returns false. */
static bool
map_read(const char *path, uint64_t *sizep, uint32_t *chunk_sizep,
         uint8_t **bitmapp, size_t *n_bytesp)
{
    uint8_t md[SHA256_LEN];
    uint64_t size, n_chunks;
    uint32_t chunk_size;
    size_t len, n_bytes;
    uint8_t *buf;
    bool ok;

    buf = (uint8_t *) read_file(path, &len);
    if (!buf || len < MAP_BITMAP_OFS
        || memcmp(buf, MAP_MAGIC, 4) || pkt_get_be32(buf + 4) != MAP_VERSION
        || pkt_get_be32(buf + 20) != 0) {
        free(buf);
        return false;
    }
    size = pkt_get_be64(buf + 8);
    chunk_size = pkt_get_be32(buf + 16);
    n_chunks = chunk_size ? n_chunks_of(size, chunk_size) : 0;
    n_bytes = (n_chunks + 7) / 8;
    if (!chunk_size || n_chunks > MAX_CHUNKS
        || len != MAP_BITMAP_OFS + n_bytes) {
        free(buf);
        return false;
    }
    map_check(buf, buf + MAP_BITMAP_OFS, n_bytes, md);
    ok = !memcmp(md, buf + MAP_HDR_LEN, SHA256_LEN);
    if (ok) {
        *sizep = size;
        *chunk_sizep = chunk_size;
        *bitmapp = xmemdup(buf + MAP_BITMAP_OFS, n_bytes);
        *n_bytesp = n_bytes;
    }
    free(buf);
    return ok;
}

/* Writes the map of 'p' with 'bitmap' durably: to "<map>.tmp", fsync()ed,
 * renamed over the map, and the directory fsync()ed.  Returns 0 or an
 * errno value. */
static int
map_write(const struct content_partial *p, const uint8_t *bitmap)
{
    size_t len = MAP_BITMAP_OFS + p->n_bytes;
    uint8_t *buf = xzalloc(len);
    char *tmp = xasprintf("%s.tmp", p->map_path);
    int error = 0;
    int fd;

    memcpy(buf, MAP_MAGIC, 4);
    pkt_put_be32(buf + 4, MAP_VERSION);
    pkt_put_be64(buf + 8, p->size);
    pkt_put_be32(buf + 16, p->chunk_size);
    memcpy(buf + MAP_BITMAP_OFS, bitmap, p->n_bytes);
    map_check(buf, bitmap, p->n_bytes, buf + MAP_HDR_LEN);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, FILE_MODE);
    if (fd < 0) {
        error = errno;
    } else {
        error = pwrite_all(fd, buf, len, 0);
        if (!error && fsync(fd)) {
            error = errno;
        }
        close(fd);
        if (!error && rename(tmp, p->map_path)) {
            error = errno;
        }
        if (error) {
            unlink(tmp);
        }
    }
    if (!error) {
        error = fsync_dir(p->store->partial_dir);
    }
    free(tmp);
    free(buf);
    return error;
}

/* Usage. */

/* Returns the bytes that the partial content of 'digest' counts for when
 * it is not open: its object size if its map is intact, else its file's
 * length (0 if there is none).  An open partial counts its object size;
 * so a partial counts the same whether the store was reopened or not. */
static uint64_t
partial_idle_usage(const struct content_store *store, const char *digest)
{
    char *path = xasprintf("%s/%s", store->partial_dir, digest);
    char *map_path = xasprintf("%s.map", path);
    uint64_t usage = 0, size;
    uint32_t chunk_size;
    uint8_t *bitmap;
    size_t n_bytes;
    struct stat st;

    if (!stat(path, &st) && S_ISREG(st.st_mode)) {
        usage = st.st_size;
        if (map_read(map_path, &size, &chunk_size, &bitmap, &n_bytes)) {
            free(bitmap);
            usage = size > usage ? size : usage;
        }
    }
    free(map_path);
    free(path);
    return usage;
}

/* Adds to '*usagep' the bytes of the content in 'dir' (digest-named regular
 * files), the idle usage of partials if 'partial' is true.  Returns 0 or an
 * errno value. */
static int
scan_dir(const struct content_store *store, const char *dir, bool partial,
         uint64_t *usagep)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d) {
        return errno;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (!is_digest(de->d_name)) {
            continue;
        } else if (partial) {
            *usagep += partial_idle_usage(store, de->d_name);
        } else if (!fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)
                   && S_ISREG(st.st_mode)) {
            *usagep += st.st_size;
        }
    }
    closedir(d);
    return 0;
}

/* The store. */

/* Creates directory 'dir' if it is missing.  Returns 0 or an errno value,
 * ENOTDIR if 'dir' is something else. */
static int
make_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, DIR_MODE) && errno != EEXIST) {
        return errno;
    } else if (stat(dir, &st)) {
        return errno;
    }
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

struct content_store *
content_store_open(const char *dir, uint64_t cap, char **errorp)
{
    struct content_store *store = xzalloc(sizeof *store);
    const char *failed;
    int error;

    store->dir = xstrdup(dir);
    store->partial_dir = xasprintf("%s/partial", dir);
    store->cap = cap;
    list_init(&store->partials);

    failed = store->dir;
    error = make_dir(store->dir);
    if (!error) {
        failed = store->partial_dir;
        error = make_dir(store->partial_dir);
    }
    if (!error) {
        failed = store->dir;
        error = scan_dir(store, store->dir, false, &store->usage);
    }
    if (!error) {
        failed = store->partial_dir;
        error = scan_dir(store, store->partial_dir, true, &store->usage);
    }
    if (error) {
        set_error(errorp, io_error(failed, "cannot open content store",
                                   error));
        content_store_close(store);
        return NULL;
    }
    return store;
}

/* Frees 'store'.  Every partial opened in it must have ended first. */
void
content_store_close(struct content_store *store)
{
    if (store) {
        free(store->dir);
        free(store->partial_dir);
        free(store);
    }
}

const char *
content_store_dir(const struct content_store *store)
{
    return store->dir;
}

uint64_t
content_store_usage(const struct content_store *store)
{
    return store->usage;
}

uint64_t
content_store_cap(const struct content_store *store)
{
    return store->cap;
}

static void
usage_sub(struct content_store *store, uint64_t n)
{
    store->usage = store->usage > n ? store->usage - n : 0;
}

/* Returns the malloc'd path of the complete content of 'digest'. */
static char *
complete_path(const struct content_store *store, const char *digest)
{
    return xasprintf("%s/%s", store->dir, digest);
}

char *
content_store_lookup(const struct content_store *store, const char *digest)
{
    struct stat st;
    char *path;

    if (!is_digest(digest)) {
        return NULL;
    }
    path = complete_path(store, digest);
    if (stat(path, &st) || !S_ISREG(st.st_mode)) {
        free(path);
        return NULL;
    }
    return path;
}

void
content_store_touch(struct content_store *store, const char *digest)
{
    if (is_digest(digest)) {
        char *path = complete_path(store, digest);

        utimensat(AT_FDCWD, path, NULL, 0);
        free(path);
    }
}

void
content_store_remove(struct content_store *store, const char *digest)
{
    struct stat st;
    char *path;

    if (!is_digest(digest)) {
        return;
    }
    path = complete_path(store, digest);
    if (!lstat(path, &st) && S_ISREG(st.st_mode) && !unlink(path)) {
        usage_sub(store, st.st_size);
    }
    free(path);
}

/* Eviction. */

struct lru_entry {
    char digest[CONTENT_DIGEST_LEN + 1];
    struct timespec mtime;
    uint64_t size;
};

static int
lru_compare(const void *a_, const void *b_)
{
    const struct lru_entry *a = a_, *b = b_;

    if (a->mtime.tv_sec != b->mtime.tv_sec) {
        return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
    } else if (a->mtime.tv_nsec != b->mtime.tv_nsec) {
        return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
    }
    return strcmp(a->digest, b->digest);
}

/* Lists the complete content that 'in_use' lets go, least recently used
 * first, in '*entriesp' (malloc'd, owned by the caller) and '*np', and
 * their total size in '*totalp'.  Returns 0 or an errno value. */
static int
list_evictable(const struct content_store *store,
               content_in_use_func *in_use, void *aux,
               struct lru_entry **entriesp, size_t *np, uint64_t *totalp)
{
    struct lru_entry *entries = NULL;
    size_t n = 0, allocated = 0;
    DIR *d = opendir(store->dir);
    struct dirent *de;

    *entriesp = NULL;
    *np = 0;
    *totalp = 0;
    if (!d) {
        return errno;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (!is_digest(de->d_name)
            || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)
            || !S_ISREG(st.st_mode)
            || (in_use && in_use(de->d_name, aux))) {
            continue;
        }
        if (n >= allocated) {
            allocated = allocated ? 2 * allocated : 16;
            entries = xrealloc(entries, allocated * sizeof *entries);
        }
        memcpy(entries[n].digest, de->d_name, CONTENT_DIGEST_LEN + 1);
        entries[n].mtime = st.st_mtim;
        entries[n].size = st.st_size;
        *totalp += st.st_size;
        n++;
    }
    closedir(d);
    if (n) {
        qsort(entries, n, sizeof *entries, lru_compare);
    }
    *entriesp = entries;
    *np = n;
    return 0;
}

/* Appends a copy of 'digest' to the NULL-terminated array '*arrayp'. */
static void
append_digest(char ***arrayp, const char *digest)
{
    size_t n = 0;

    while ((*arrayp)[n]) {
        n++;
    }
    *arrayp = xrealloc(*arrayp, (n + 2) * sizeof **arrayp);
    (*arrayp)[n] = xstrdup(digest);
    (*arrayp)[n + 1] = NULL;
}

int
content_store_reserve(struct content_store *store, uint64_t size,
                      content_in_use_func *in_use, void *aux,
                      char ***evictedp, char **errorp)
{
    struct lru_entry *entries;
    uint64_t evictable;
    size_t n, i;
    int error;

    if (evictedp && !*evictedp) {
        *evictedp = xzalloc(sizeof **evictedp);
    }
    if (!store->cap || (size <= store->cap
                        && store->usage <= store->cap - size)) {
        return 0;
    } else if (size > store->cap) {
        set_error(errorp, xasprintf("%s: no room for %"PRIu64" bytes: the "
                                    "content store's cap is %"PRIu64" bytes",
                                    store->dir, size, store->cap));
        return ENOSPC;
    }

    error = list_evictable(store, in_use, aux, &entries, &n, &evictable);
    if (error) {
        set_error(errorp, io_error(store->dir, "cannot list content", error));
        return error;
    }
    if (store->usage - (evictable < store->usage ? evictable : store->usage)
        > store->cap - size) {
        set_error(errorp, xasprintf("%s: no room for %"PRIu64" bytes under "
                                    "the cap of %"PRIu64" bytes: %"PRIu64
                                    " bytes are used and only %"PRIu64" of "
                                    "them are content not in use",
                                    store->dir, size, store->cap,
                                    store->usage, evictable));
        free(entries);
        return ENOSPC;
    }
    for (i = 0; i < n && store->usage > store->cap - size; i++) {
        uint64_t before = store->usage;

        content_store_remove(store, entries[i].digest);
        if (store->usage != before && evictedp) {
            append_digest(evictedp, entries[i].digest);
        }
    }
    free(entries);
    if (store->usage > store->cap - size) {
        set_error(errorp, xasprintf("%s: no room for %"PRIu64" bytes under "
                                    "the cap of %"PRIu64" bytes: evicting "
                                    "content did not free enough",
                                    store->dir, size, store->cap));
        return ENOSPC;
    }
    return 0;
}

/* Adding files. */

/* Copies 'path', whose content has 'digest' and 'size', into the store
 * through a temporary file.  Returns 0 or an errno value with '*errorp'
 * set. */
static int
copy_in(struct content_store *store, const char *path, const char *digest,
        uint64_t size, char **errorp)
{
    char *tmp = xasprintf("%s/.tmp-XXXXXX", store->dir);
    char *dst = complete_path(store, digest);
    char copied[CONTENT_DIGEST_LEN + 1];
    uint8_t md[SHA256_LEN];
    uint64_t copied_size;
    int in, out, error;

    in = open_regular(path);
    if (in < 0) {
        error = errno;
        set_error(errorp, io_error(path, "cannot open", error));
        goto out;
    }
    out = mkstemp(tmp);
    if (out < 0) {
        error = errno;
        set_error(errorp, io_error(tmp, "cannot create", error));
        close(in);
        goto out;
    }
    error = copy_and_hash(in, out, md, &copied_size);
    if (!error && fchmod(out, FILE_MODE)) {
        error = errno;
    }
    if (!error && fsync(out)) {
        error = errno;
    }
    close(in);
    close(out);
    sha256_to_hex(md, copied);
    if (error) {
        set_error(errorp, io_error(tmp, "cannot copy in", error));
    } else if (copied_size != size || strcmp(copied, digest)) {
        error = EAGAIN;
        set_error(errorp, xasprintf("%s: the file changed while it was being "
                                    "copied into the content store", path));
    } else if (rename(tmp, dst)) {
        error = errno;
        set_error(errorp, io_error(dst, "cannot rename into place", error));
    } else {
        store->usage += size;
        error = fsync_dir(store->dir);
        if (error) {
            set_error(errorp, io_error(store->dir, "cannot sync", error));
        }
        goto out;
    }
    unlink(tmp);
out:
    free(dst);
    free(tmp);
    return error;
}

int
content_store_add_file(struct content_store *store, const char *path,
                       content_in_use_func *in_use, void *aux,
                       char digest[CONTENT_DIGEST_LEN + 1],
                       uint64_t *sizep, char **errorp)
{
    char *existing;
    int error;

    error = content_hash_file(path, digest, sizep);
    if (error) {
        set_error(errorp, io_error(path, "cannot read", error));
        return error;
    }
    existing = content_store_lookup(store, digest);
    if (existing) {
        free(existing);
        content_store_touch(store, digest);
        return 0;
    }
    error = content_store_reserve(store, *sizep, in_use, aux, NULL, errorp);
    return error ? error : copy_in(store, path, digest, *sizep, errorp);
}

/* Partial content. */

static struct content_partial *
find_open_partial(const struct content_store *store, const char *digest)
{
    struct content_partial *p;

    LIST_FOR_EACH (p, node, &store->partials) {
        if (!strcmp(p->digest, digest)) {
            return p;
        }
    }
    return NULL;
}

static void
partial_free(struct content_partial *p)
{
    if (p) {
        list_remove(&p->node);
        if (p->fd >= 0) {
            close(p->fd);
        }
        free(p->path);
        free(p->map_path);
        free(p->durable);
        free(p->written);
        free(p);
    }
}

/* Loads the map of 'p' if it matches 'p' and the partial file holds every
 * chunk it names.  Returns true if it did. */
static bool
partial_resume(struct content_partial *p)
{
    uint64_t size, i;
    uint32_t chunk_size;
    uint8_t *bitmap;
    size_t n_bytes;
    struct stat st;

    if (!map_read(p->map_path, &size, &chunk_size, &bitmap, &n_bytes)) {
        return false;
    } else if (size != p->size || chunk_size != p->chunk_size
               || fstat(p->fd, &st)) {
        free(bitmap);
        return false;
    }
    for (i = 0; i < p->n_chunks; i++) {
        if (bit_is_set(bitmap, i)
            && (uint64_t) st.st_size < i * p->chunk_size + chunk_len(p, i)) {
            free(bitmap);
            return false;
        }
    }
    memcpy(p->durable, bitmap, n_bytes);
    memcpy(p->written, bitmap, n_bytes);
    free(bitmap);
    return true;
}

/* Starts 'p' afresh: no map, an empty file.  Returns 0 or an errno value
 * with '*errorp' set. */
static int
partial_restart(struct content_partial *p, char **errorp)
{
    struct stat st;
    int error;

    if (!lstat(p->map_path, &st)) {
        /* A map that is gone for good, so it can never come back to name
         * chunks of the truncated file. */
        error = remove_file(p->map_path);
        if (!error) {
            error = fsync_dir(p->store->partial_dir);
        }
        if (error) {
            set_error(errorp, io_error(p->map_path, "cannot remove", error));
            return error;
        }
    }
    if (ftruncate(p->fd, 0)) {
        error = errno;
        set_error(errorp, io_error(p->path, "cannot truncate", error));
        return error;
    }
    return 0;
}

struct content_partial *
content_partial_open(struct content_store *store, const char *digest,
                     uint64_t size, uint32_t chunk_size, char **errorp)
{
    struct content_partial *p;
    uint64_t idle_usage;
    int error;

    if (!is_digest(digest) || !chunk_size
        || n_chunks_of(size, chunk_size) > MAX_CHUNKS) {
        set_error(errorp, xasprintf("%s: cannot receive content of %"PRIu64
                                    " bytes in %"PRIu32"-byte chunks as "
                                    "\"%s\": invalid", store->partial_dir,
                                    size, chunk_size, digest));
        return NULL;
    } else if (find_open_partial(store, digest)) {
        set_error(errorp, xasprintf("%s/%s: partial content already open",
                                    store->partial_dir, digest));
        return NULL;
    }

    p = xzalloc(sizeof *p);
    list_init(&p->node);
    p->store = store;
    memcpy(p->digest, digest, CONTENT_DIGEST_LEN + 1);
    p->path = xasprintf("%s/%s", store->partial_dir, digest);
    p->map_path = xasprintf("%s.map", p->path);
    p->size = size;
    p->chunk_size = chunk_size;
    p->n_chunks = n_chunks_of(size, chunk_size);
    p->n_bytes = (p->n_chunks + 7) / 8;
    p->durable = xzalloc(p->n_bytes);
    p->written = xzalloc(p->n_bytes);

    idle_usage = partial_idle_usage(store, digest);
    p->fd = open(p->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                 FILE_MODE);
    if (p->fd < 0) {
        error = errno;
        set_error(errorp, io_error(p->path, "cannot open", error));
        partial_free(p);
        return NULL;
    }
    if (!partial_resume(p)) {
        error = partial_restart(p, errorp);
        if (error) {
            partial_free(p);
            return NULL;
        }
    }
    usage_sub(store, idle_usage);
    store->usage += size;
    list_push_back(&store->partials, &p->node);
    return p;
}

const uint8_t *
content_partial_bitmap(const struct content_partial *p, size_t *n_bytes)
{
    *n_bytes = p->n_bytes;
    return p->durable;
}

uint64_t
content_partial_durable(const struct content_partial *p)
{
    uint64_t n = 0;

    for (uint64_t i = 0; i < p->n_chunks; i++) {
        n += bit_is_set(p->durable, i);
    }
    return n;
}

int
content_partial_write(struct content_partial *p, uint64_t index,
                      const void *data, size_t len)
{
    int error;

    if (index >= p->n_chunks || len != chunk_len(p, index)) {
        return EINVAL;
    }
    error = pwrite_all(p->fd, data, len, index * p->chunk_size);
    if (!error) {
        p->written[index / 8] |= 1u << (index % 8);
    }
    return error;
}

int
content_partial_checkpoint(struct content_partial *p,
                           const uint8_t *bitmap, size_t n_bytes)
{
    uint8_t *durable;
    int error;

    if (n_bytes != p->n_bytes) {
        return EINVAL;
    }
    durable = xmemdup(bitmap, n_bytes);
    if (p->n_chunks % 8) {
        /* Bits past the last chunk are no chunks. */
        durable[n_bytes - 1] &= (1u << (p->n_chunks % 8)) - 1;
    }
    for (size_t i = 0; i < n_bytes; i++) {
        if (durable[i] & ~p->written[i]) {
            free(durable);
            return EINVAL;
        }
    }
    error = fdatasync(p->fd) ? errno : map_write(p, durable);
    if (error) {
        free(durable);
        return error;
    }
    free(p->durable);
    p->durable = durable;
    return 0;
}

/* Reads 'p''s file back and checks it against its digest and size.
 * Returns 0, EBADMSG if it does not match, or another errno value, with
 * '*errorp' set. */
static int
partial_verify(struct content_partial *p, char **errorp)
{
    EVP_MD_CTX *ctx = sha256_new();
    char *buf = xmalloc(IO_BUF_SIZE);
    char hex[CONTENT_DIGEST_LEN + 1];
    uint8_t md[SHA256_LEN];
    uint64_t ofs = 0;
    int error = 0;
    ssize_t n;

    while ((n = pread_full(p->fd, buf, IO_BUF_SIZE, ofs)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
        ofs += n;
    }
    if (n < 0) {
        error = errno;
    }
    free(buf);
    sha256_final(ctx, md);
    sha256_to_hex(md, hex);
    if (error) {
        set_error(errorp, io_error(p->path, "cannot read back", error));
    } else if (ofs != p->size || strcmp(hex, p->digest)) {
        error = EBADMSG;
        set_error(errorp, xasprintf("%s: content does not match its digest "
                                    "%.12s...", p->path, p->digest));
    }
    return error;
}

/* Renames 'p''s verified file to its complete path.  Returns 0 or an
 * errno value with '*errorp' set (and then the file is still partial).
 * Once the file is renamed the content is complete; syncing the
 * directories and removing the map are then done as well as can be: at
 * worst a crash brings back a partial that finishing verifies again, and a
 * map without its file names chunks beyond the end of the (new, empty)
 * file and so is not resumed. */
static int
partial_install(struct content_partial *p, char **errorp)
{
    struct content_store *store = p->store;
    char *dst = complete_path(store, p->digest);
    struct stat old;
    bool had_old;
    int error;

    had_old = !lstat(dst, &old) && S_ISREG(old.st_mode);
    if (fdatasync(p->fd)) {
        error = errno;
        set_error(errorp, io_error(p->path, "cannot sync", error));
    } else if (rename(p->path, dst)) {
        error = errno;
        set_error(errorp, io_error(dst, "cannot rename into place", error));
    } else {
        error = 0;
        if (had_old) {
            usage_sub(store, old.st_size);      /* Replaced. */
        }
        fsync_dir(store->dir);
        remove_file(p->map_path);
        fsync_dir(store->partial_dir);
    }
    free(dst);
    return error;
}

int
content_partial_finish(struct content_partial *p, char **errorp)
{
    int error = partial_verify(p, errorp);

    if (!error) {
        error = partial_install(p, errorp);
    }
    if (error) {
        content_partial_abort(p);
    } else {
        partial_free(p);
    }
    return error;
}

void
content_partial_abort(struct content_partial *p)
{
    if (p) {
        remove_file(p->path);
        remove_file(p->map_path);
        fsync_dir(p->store->partial_dir);
        usage_sub(p->store, p->size);
        partial_free(p);
    }
}

void
content_partial_close(struct content_partial *p)
{
    if (p) {
        struct content_store *store = p->store;
        char digest[CONTENT_DIGEST_LEN + 1];

        memcpy(digest, p->digest, sizeof digest);
        usage_sub(store, p->size);
        partial_free(p);
        store->usage += partial_idle_usage(store, digest);
    }
}
