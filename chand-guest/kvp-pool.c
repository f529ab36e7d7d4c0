/* The Hyper-V KVP pool files: see kvp-pool.h. */

#include <config.h>
#include "kvp-pool.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

void
kvp_pool_init(struct kvp_pool *pool)
{
    memset(pool, 0, sizeof *pool);
}

void
kvp_pool_destroy(struct kvp_pool *pool)
{
    if (pool) {
        free(pool->recs);
        kvp_pool_init(pool);
    }
}

/* Makes room for at least 'n' records. */
static void
pool_reserve(struct kvp_pool *pool, size_t n)
{
    if (n > pool->allocated) {
        size_t room = pool->allocated ? pool->allocated * 2 : 16;

        while (room < n) {
            room *= 2;
        }
        pool->recs = xrealloc(pool->recs, room * KVP_RECORD_SIZE);
        pool->allocated = room;
    }
}

void
kvp_pool_parse(struct kvp_pool *pool, const uint8_t *data, size_t size)
{
    size_t n = size / KVP_RECORD_SIZE;

    pool->n = 0;
    pool_reserve(pool, n);
    if (n) {
        memcpy(pool->recs, data, n * KVP_RECORD_SIZE);
    }
    pool->n = n;
    pool->extra = size % KVP_RECORD_SIZE;
}

void
kvp_pool_get(const struct kvp_pool *pool, size_t i,
             const char **keyp, size_t *key_lenp,
             const char **valuep, size_t *value_lenp)
{
    const char *rec = (const char *) pool->recs + i * KVP_RECORD_SIZE;

    *keyp = rec;
    *key_lenp = strnlen(rec, KVP_KEY_SIZE);
    *valuep = rec + KVP_KEY_SIZE;
    *value_lenp = strnlen(rec + KVP_KEY_SIZE, KVP_VALUE_SIZE);
}

long
kvp_pool_find_n(const struct kvp_pool *pool, const char *key, size_t len)
{
    for (size_t i = 0; i < pool->n; i++) {
        const char *k, *v;
        size_t k_len, v_len;

        kvp_pool_get(pool, i, &k, &k_len, &v, &v_len);
        if (k_len == len && !memcmp(k, key, len)) {
            return i;
        }
    }
    return -1;
}

long
kvp_pool_find(const struct kvp_pool *pool, const char *key)
{
    return kvp_pool_find_n(pool, key, strlen(key));
}

void
kvp_pool_put(struct kvp_pool *pool, size_t i, const char *key,
             const char *value)
{
    size_t key_len = strlen(key), value_len = strlen(value);

    assert(i <= pool->n);
    assert(key_len <= KVP_KEY_MAX && value_len <= KVP_VALUE_MAX);
    if (i == pool->n) {
        pool_reserve(pool, pool->n + 1);
        pool->n++;
    }

    uint8_t *rec = pool->recs + i * KVP_RECORD_SIZE;
    memset(rec, 0, KVP_RECORD_SIZE);
    memcpy(rec, key, key_len);
    memcpy(rec + KVP_KEY_SIZE, value, value_len);
}

void
kvp_pool_remove(struct kvp_pool *pool, size_t i)
{
    assert(i < pool->n);
    memmove(pool->recs + i * KVP_RECORD_SIZE,
            pool->recs + (i + 1) * KVP_RECORD_SIZE,
            (pool->n - i - 1) * KVP_RECORD_SIZE);
    pool->n--;
}

const char *
kvp_check_entry(const char *key, size_t key_len, const char *value,
                size_t value_len)
{
    if (!key_len) {
        return "an empty name";
    } else if (key_len > KVP_KEY_MAX) {
        return "a name over KVP's limit of 511 bytes (512 with its NUL)";
    } else if (memchr(key, '\0', key_len)) {
        return "a name holding a NUL character";
    } else if (value_len > KVP_VALUE_MAX) {
        return "a value over KVP's limit of 2047 bytes (2048 with its NUL)";
    } else if (memchr(value, '\0', value_len)) {
        return "a value holding a NUL character";
    }
    return NULL;
}

/* Pool files. */

char *
kvp_pool_path(const char *dir, int pool)
{
    return xasprintf("%s/.kvp_pool_%d", dir, pool);
}

int
kvp_pool_lock(const char *path, bool write, bool create, int *fdp)
{
    int flags = (write ? O_RDWR : O_RDONLY) | O_CLOEXEC
                | (write && create ? O_CREAT : 0);
    struct flock fl = {
        .l_type = write ? F_WRLCK : F_RDLCK,
        .l_whence = SEEK_SET,
        .l_start = 0,
        .l_len = 0,             /* The whole file, however it grows. */
    };
    struct stat st;
    int fd, error;

    *fdp = -1;
    fd = open(path, flags, 0644);
    if (fd < 0) {
        return errno;
    }
    if (fstat(fd, &st)) {
        error = errno;
    } else if (!S_ISREG(st.st_mode)) {
        error = EINVAL;
    } else if (fcntl(fd, F_SETLK, &fl)) {
        error = errno == EACCES ? EAGAIN : errno;
    } else if (flock(fd, (write ? LOCK_EX : LOCK_SH) | LOCK_NB)) {
        error = errno == EWOULDBLOCK ? EAGAIN : errno;
    } else {
        *fdp = fd;
        return 0;
    }
    close(fd);
    return error;
}

int
kvp_pool_read(int fd, struct kvp_pool *pool)
{
    struct stat st;
    uint8_t *buf;
    size_t done = 0;

    if (fstat(fd, &st)) {
        return errno;
    }
    buf = xmalloc(st.st_size);
    while (done < (size_t) st.st_size) {
        ssize_t n = pread(fd, buf + done, st.st_size - done, done);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            int error = errno;
            free(buf);
            return error;
        } else if (!n) {
            break;              /* Shorter than it was: what is there. */
        }
        done += n;
    }
    kvp_pool_parse(pool, buf, done);
    free(buf);
    return 0;
}

int
kvp_pool_write(int fd, const struct kvp_pool *pool)
{
    size_t size = pool->n * KVP_RECORD_SIZE, done = 0;

    while (done < size) {
        ssize_t n = pwrite(fd, pool->recs + done, size - done, done);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            return errno;
        }
        done += n;
    }
    if (ftruncate(fd, size) || fdatasync(fd)) {
        return errno;
    }
    return 0;
}

/* Returns a malloc()ed copy of JSON text 'json' without the white space
 * outside its strings. */
static char *
strip_json_space(const char *json)
{
    char *out = xmalloc(strlen(json) + 1), *p = out;
    bool in_string = false, escaped = false;

    for (const char *s = json; *s; s++) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (*s == '\\') {
                escaped = true;
            } else if (*s == '"') {
                in_string = false;
            }
        } else if (*s == '"') {
            in_string = true;
        } else if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            continue;
        }
        *p++ = *s;
    }
    *p = '\0';
    return out;
}

int
kvp_value_text(const char *json, char **textp, size_t *lenp)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    if (!v) {
        return EINVAL;
    }
    if (json_is_string(v)) {
        *lenp = json_string_length(v);
        *textp = xmemdup(json_string_value(v), *lenp + 1);
    } else {
        *textp = strip_json_space(json);
        *lenp = strlen(*textp);
    }
    json_decref(v);
    return 0;
}

/* Ownership. */

bool
kvp_is_owned(const struct kvp_pool *pool, size_t i, const json_t *owned)
{
    char name[KVP_KEY_SIZE];
    const char *k, *v;
    size_t k_len, v_len, j;
    json_t *vals, *val;

    kvp_pool_get(pool, i, &k, &k_len, &v, &v_len);
    if (!k_len || k_len >= KVP_KEY_SIZE) {
        return false;
    }
    memcpy(name, k, k_len);
    name[k_len] = '\0';
    vals = json_object_get(owned, name);
    json_array_foreach (vals, j, val) {
        if (json_string_length(val) == v_len
            && !memcmp(json_string_value(val), v, v_len)) {
            return true;
        }
    }
    return false;
}

/* Returns true if record 'i' of 'pool' holds 'value'. */
static bool
value_is(const struct kvp_pool *pool, size_t i, const char *value)
{
    const char *k, *v;
    size_t k_len, v_len;

    kvp_pool_get(pool, i, &k, &k_len, &v, &v_len);
    return v_len == strlen(value) && !memcmp(v, value, v_len);
}

bool
kvp_merge(struct kvp_pool *pool, const json_t *want, const json_t *owned,
          json_t *new_owned, json_t *conflicts,
          struct kvp_merge_counts *counts)
{
    const char *name;
    json_t *val;
    bool changed = false;

    memset(counts, 0, sizeof *counts);

    /* Owned entries: given up if changed by others, removed if unwanted. */
    json_object_foreach ((json_t *) owned, name, val) {
        long i = kvp_pool_find(pool, name);

        if (i < 0) {
            continue;
        } else if (!kvp_is_owned(pool, i, owned)) {
            counts->given_up++;
        } else if (!json_object_get(want, name)) {
            kvp_pool_remove(pool, i);
            counts->removed++;
            changed = true;
        }
    }

    /* Wanted entries: written where chand may, conflicts elsewhere. */
    json_object_foreach ((json_t *) want, name, val) {
        const char *value = json_string_value(val);
        long i = kvp_pool_find(pool, name);

        if (i >= 0 && !kvp_is_owned(pool, i, owned)) {
            json_object_set_new(conflicts, name, json_true());
            continue;
        }
        if (i < 0 || !value_is(pool, i, value)) {
            kvp_pool_put(pool, i < 0 ? pool->n : (size_t) i, name, value);
            counts->written++;
            changed = true;
        }
        json_object_set_new(new_owned, name, json_pack("[s]", value));
    }
    return changed;
}
