/* chand-guest's channel keys and key file: see keyring.h. */

#include <config.h>
#include "keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(keyring);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 5);

/* The keyring. */

void
keyring_init(struct keyring *ring)
{
    memset(ring, 0, sizeof *ring);
}

int
keyring_add(struct keyring *ring, uint32_t generation, const void *key)
{
    size_t i;

    if (!generation || generation > KEYRING_GEN_MAX) {
        return EINVAL;
    }
    if (keyring_find(ring, generation)) {
        return EEXIST;
    }
    if (ring->n >= KEYRING_MAX) {
        return ENOSPC;
    }
    /* Keep newest first. */
    for (i = 0; i < ring->n && ring->keys[i].generation > generation; i++) {
        continue;
    }
    memmove(&ring->keys[i + 1], &ring->keys[i],
            (ring->n - i) * sizeof ring->keys[0]);
    ring->keys[i].generation = generation;
    memcpy(ring->keys[i].key, key, KEYRING_KEY_LEN);
    ring->n++;
    return 0;
}

static void
format_error(char *error, size_t error_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void
format_error(char *error, size_t error_size, const char *format, ...)
{
    va_list args;

    if (error && error_size) {
        va_start(args, format);
        vsnprintf(error, error_size, format, args);
        va_end(args);
    }
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* A field of a line: 'len' bytes at 's'. */
struct field {
    const char *s;
    size_t len;
};

/* Parses a generation field.  Returns 0 and stores it, or EINVAL with a
 * message. */
static int
parse_generation(const struct field *f, size_t line, uint32_t *genp,
                 char *error, size_t error_size)
{
    uint64_t value = 0;

    for (size_t i = 0; i < f->len; i++) {
        if (f->s[i] < '0' || f->s[i] > '9') {
            format_error(error, error_size, "line %zu: generation \"%.*s\" "
                         "is not a decimal number", line,
                         (int) (f->len > 24 ? 24 : f->len), f->s);
            return EINVAL;
        }
        if (value <= KEYRING_GEN_MAX) {
            value = value * 10 + (f->s[i] - '0');
        }
    }
    if (f->len > 1 && f->s[0] == '0') {
        format_error(error, error_size, "line %zu: generation \"%.*s\" has "
                     "leading zeros", line,
                     (int) (f->len > 24 ? 24 : f->len), f->s);
        return EINVAL;
    }
    if (!value || value > KEYRING_GEN_MAX) {
        format_error(error, error_size, "line %zu: generation %.*s is out "
                     "of range (1..%u)", line,
                     (int) (f->len > 24 ? 24 : f->len), f->s,
                     KEYRING_GEN_MAX);
        return EINVAL;
    }
    *genp = value;
    return 0;
}

/* Parses a key field.  Returns 0 and stores the key, or EINVAL with a
 * message (which never quotes the key: it is a secret). */
static int
parse_key(const struct field *f, size_t line, uint8_t key[KEYRING_KEY_LEN],
          char *error, size_t error_size)
{
    if (f->len != 2 * KEYRING_KEY_LEN) {
        format_error(error, error_size, "line %zu: key is %zu characters "
                     "long, not %d hex digits", line, f->len,
                     2 * KEYRING_KEY_LEN);
        return EINVAL;
    }
    for (size_t i = 0; i < f->len; i += 2) {
        int hi = hexit_value(f->s[i]);
        int lo = hexit_value(f->s[i + 1]);

        if (hi < 0 || lo < 0) {
            format_error(error, error_size, "line %zu: key has a character "
                         "that is not a hex digit at position %zu", line,
                         i + (hi < 0 ? 1 : 2));
            return EINVAL;
        }
        key[i / 2] = hi << 4 | lo;
    }
    return 0;
}

int
keyring_parse(const char *text, size_t len, struct keyring *ring,
              char *error, size_t error_size)
{
    size_t first_line[KEYRING_MAX];  /* Line of each key, in file order. */
    uint32_t gens[KEYRING_MAX];
    const char *p = text, *end = text + len;
    size_t line = 0, n = 0;

    keyring_init(ring);
    while (p < end) {
        const char *eol = memchr(p, '\n', end - p);
        const char *line_end = eol ? eol : end;
        const char *hash;
        struct field fields[3];
        size_t n_fields = 0;
        uint8_t key[KEYRING_KEY_LEN];
        uint32_t gen;

        line++;
        if (memchr(p, '\0', line_end - p)) {
            format_error(error, error_size, "line %zu: contains a NUL byte",
                         line);
            return EINVAL;
        }
        hash = memchr(p, '#', line_end - p);
        if (hash) {
            line_end = hash;
        }
        for (const char *s = p; s < line_end; ) {
            const char *start;

            while (s < line_end && is_blank(*s)) {
                s++;
            }
            if (s >= line_end) {
                break;
            }
            start = s;
            while (s < line_end && !is_blank(*s)) {
                s++;
            }
            if (n_fields < 3) {
                fields[n_fields].s = start;
                fields[n_fields].len = s - start;
            }
            n_fields++;
        }
        p = eol ? eol + 1 : end;

        if (!n_fields) {
            continue;           /* Blank or comment. */
        } else if (n_fields == 1) {
            format_error(error, error_size, "line %zu: expected "
                         "\"GENERATION HEXKEY\", found one field", line);
            return EINVAL;
        } else if (n_fields > 2) {
            format_error(error, error_size, "line %zu: expected "
                         "\"GENERATION HEXKEY\", found %zu fields", line,
                         n_fields);
            return EINVAL;
        }
        if (parse_generation(&fields[0], line, &gen, error, error_size)
            || parse_key(&fields[1], line, key, error, error_size)) {
            return EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            if (gens[i] == gen) {
                format_error(error, error_size, "line %zu: generation "
                             "%"PRIu32" appears again (first on line %zu)",
                             line, gen, first_line[i]);
                return EINVAL;
            }
        }
        if (n >= KEYRING_MAX) {
            format_error(error, error_size, "line %zu: more than %d keys",
                         line, KEYRING_MAX);
            return EINVAL;
        }
        gens[n] = gen;
        first_line[n] = line;
        n++;
        keyring_add(ring, gen, key);    /* Cannot fail: checked above. */
    }
    return 0;
}

const struct keyring_key *
keyring_find(const struct keyring *ring, uint32_t generation)
{
    for (size_t i = 0; i < ring->n; i++) {
        if (ring->keys[i].generation == generation) {
            return &ring->keys[i];
        }
    }
    return NULL;
}

const struct keyring_key *
keyring_newest(const struct keyring *ring)
{
    return ring->n ? &ring->keys[0] : NULL;
}

bool
keyring_equal(const struct keyring *a, const struct keyring *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->keys[i].generation != b->keys[i].generation
            || memcmp(a->keys[i].key, b->keys[i].key, KEYRING_KEY_LEN)) {
            return false;
        }
    }
    return true;
}

enum chan_wire_error
keyring_decode(const struct keyring *ring, const void *frame, size_t len,
               struct chan_wire_header *hdr, const uint8_t **payloadp,
               uint32_t *generationp)
{
    return keyring_decode_first(ring, 0, frame, len, hdr, payloadp,
                                generationp);
}

enum chan_wire_error
keyring_decode_first(const struct keyring *ring, uint32_t first,
                     const void *frame, size_t len,
                     struct chan_wire_header *hdr, const uint8_t **payloadp,
                     uint32_t *generationp)
{
    const struct keyring_key *k = first ? keyring_find(ring, first) : NULL;
    enum chan_wire_error error;

    if (!ring->n) {
        error = chan_wire_decode(frame, len, NULL, 0, hdr, payloadp);
        if (!error) {
            *generationp = 0;
        }
        return error;
    }
    for (size_t i = 0; i <= ring->n; i++) {
        /* 'k' first, if loaded, then the others newest first. */
        const struct keyring_key *key = (!i ? k
                                         : &ring->keys[i - 1] != k
                                         ? &ring->keys[i - 1] : NULL);
        if (!key) {
            continue;
        }
        error = chan_wire_decode(frame, len, key->key, KEYRING_KEY_LEN, hdr,
                                 payloadp);
        if (error != CHAN_WIRE_ERR_AUTH) {
            if (!error) {
                *generationp = key->generation;
            }
            return error;
        }
    }
    return CHAN_WIRE_ERR_AUTH;
}

json_t *
keyring_generations_json(const struct keyring *ring)
{
    json_t *array = json_array();

    for (size_t i = ring->n; i-- > 0; ) {
        json_array_append_new(array,
                              json_integer(ring->keys[i].generation));
    }
    return array;
}

char *
keyring_format(const struct keyring *ring, char *buf, size_t size)
{
    size_t used = 0;

    if (!size) {
        return buf;
    }
    buf[0] = '\0';
    if (!ring->n) {
        snprintf(buf, size, "none");
        return buf;
    }
    for (size_t i = ring->n; i-- > 0 && used < size; ) {
        int n = snprintf(buf + used, size - used, "%s%"PRIu32,
                         i == ring->n - 1 ? "" : ", ",
                         ring->keys[i].generation);
        if (n < 0) {
            break;
        }
        used += n;
    }
    return buf;
}

/* The key file. */

/* What the file looked like when it was last loaded. */
struct stamp {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct keyring_file {
    char *path;
    struct keyring ring;
    bool present;               /* The file existed at the last load. */
    struct stamp stamp;         /* Of the last load attempt. */
    bool stamp_valid;           /* False: reload at the next check. */
    long long next_check;
    uint64_t loads;
    uint64_t load_errors;
    char last_error[KEYRING_ERROR_LEN];
};

static void
stamp_from_stat(const struct stat *st, struct stamp *stamp)
{
    memset(stamp, 0, sizeof *stamp);
    stamp->exists = true;
    stamp->dev = st->st_dev;
    stamp->ino = st->st_ino;
    stamp->size = st->st_size;
    stamp->mtime = st->st_mtim;
}

static bool
stamp_equal(const struct stamp *a, const struct stamp *b)
{
    if (a->exists != b->exists) {
        return false;
    }
    return !a->exists
           || (a->dev == b->dev && a->ino == b->ino && a->size == b->size
               && a->mtime.tv_sec == b->mtime.tv_sec
               && a->mtime.tv_nsec == b->mtime.tv_nsec);
}

/* Looks at 'path' now. */
static int
stamp_get(const char *path, struct stamp *stamp)
{
    struct stat st;

    if (stat(path, &st)) {
        memset(stamp, 0, sizeof *stamp);
        return errno;
    }
    stamp_from_stat(&st, stamp);
    return 0;
}

/* Reads and parses 'path' into '*ring'.  Stores in '*stampp' what the file
 * looked like (exists = false if it is missing: then '*ring' is empty and
 * 0 is returned) and in '*stablep' whether it stayed the same while it was
 * read.  Returns 0 or a positive errno with a message in 'error'. */
static int
load(const char *path, struct keyring *ring, struct stamp *stampp,
     bool *stablep, char *error, size_t error_size)
{
    struct stamp after;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    ssize_t n;
    int fd, err;

    keyring_init(ring);
    memset(stampp, 0, sizeof *stampp);
    *stablep = true;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        err = errno;
        format_error(error, error_size, "%s: cannot open: %s", path,
                     strerror(err));
        stamp_get(path, stampp);
        return err;
    }
    if (fstat(fd, &st)) {
        err = errno;
        format_error(error, error_size, "%s: cannot stat: %s", path,
                     strerror(err));
        close(fd);
        return err;
    }
    stamp_from_stat(&st, stampp);
    if (!S_ISREG(st.st_mode)) {
        format_error(error, error_size, "%s: not a regular file", path);
        close(fd);
        return EINVAL;
    }
    if (st.st_size > KEYRING_FILE_MAX) {
        format_error(error, error_size, "%s: larger than %d bytes", path,
                     KEYRING_FILE_MAX);
        close(fd);
        return EFBIG;
    }

    buf = malloc(KEYRING_FILE_MAX + 1);
    if (!buf) {
        format_error(error, error_size, "%s: out of memory", path);
        close(fd);
        return ENOMEM;
    }
    while (len <= KEYRING_FILE_MAX) {
        n = read(fd, buf + len, KEYRING_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            err = errno;
            format_error(error, error_size, "%s: cannot read: %s", path,
                         strerror(err));
            close(fd);
            free(buf);
            return err;
        } else if (!n) {
            break;
        }
        len += n;
    }
    close(fd);
    if (len > KEYRING_FILE_MAX) {
        format_error(error, error_size, "%s: larger than %d bytes", path,
                     KEYRING_FILE_MAX);
        free(buf);
        return EFBIG;
    }

    /* A file replaced or rewritten while we read it is read again at the
     * next check, whatever we got now. */
    *stablep = !stamp_get(path, &after) && stamp_equal(&after, stampp);

    char parse_error[KEYRING_ERROR_LEN];
    err = keyring_parse(buf, len, ring, parse_error, sizeof parse_error);
    explicit_bzero(buf, len);
    free(buf);
    if (err) {
        format_error(error, error_size, "%s: %s", path, parse_error);
        keyring_init(ring);
        return err;
    }
    if (ring->n && (st.st_mode & (S_IRWXG | S_IRWXO))) {
        VLOG_WARN_RL(&rl, "%s: readable by group or others (mode %03o); "
                     "channel keys should be mode 600", path,
                     (unsigned int) (st.st_mode & 0777));
    }
    return 0;
}

int
keyring_file_open(const char *path, long long now, struct keyring_file **kfp,
                  char *error, size_t error_size)
{
    struct keyring_file *kf;
    char gens[128];
    bool stable;
    int err;

    *kfp = NULL;
    kf = calloc(1, sizeof *kf);
    if (!kf || !(kf->path = strdup(path))) {
        free(kf);
        format_error(error, error_size, "%s: out of memory", path);
        return ENOMEM;
    }
    err = load(path, &kf->ring, &kf->stamp, &stable, error, error_size);
    if (err) {
        keyring_file_destroy(kf);
        return err;
    }
    kf->present = kf->stamp.exists;
    kf->stamp_valid = stable;
    kf->next_check = now + KEYRING_CHECK_MS;
    kf->loads = 1;
    if (!kf->present) {
        VLOG_WARN("%s: no key file: channel frames are not authenticated "
                  "(empty key)", path);
    } else {
        VLOG_INFO("%s: loaded key generations %s", path,
                  keyring_format(&kf->ring, gens, sizeof gens));
    }
    *kfp = kf;
    return 0;
}

void
keyring_file_destroy(struct keyring_file *kf)
{
    if (kf) {
        explicit_bzero(&kf->ring, sizeof kf->ring);
        free(kf->path);
        free(kf);
    }
}

/* Loads the file into 'kf'.  On failure keeps the previous keys. */
static int
reload(struct keyring_file *kf, bool *changedp, char *error,
       size_t error_size)
{
    char old_gens[128], new_gens[128];
    char buf[KEYRING_ERROR_LEN];
    struct keyring ring;
    struct stamp stamp;
    bool stable, changed;
    int err;

    if (changedp) {
        *changedp = false;
    }
    err = load(kf->path, &ring, &stamp, &stable, buf, sizeof buf);
    kf->stamp = stamp;
    kf->stamp_valid = stable;
    if (err) {
        kf->load_errors++;
        snprintf(kf->last_error, sizeof kf->last_error, "%s", buf);
        format_error(error, error_size, "%s", buf);
        keyring_format(&kf->ring, old_gens, sizeof old_gens);
        VLOG_ERR("%s; keeping key generations %s", buf, old_gens);
        explicit_bzero(&ring, sizeof ring);
        return err;
    }

    kf->loads++;
    changed = !keyring_equal(&ring, &kf->ring);
    keyring_format(&kf->ring, old_gens, sizeof old_gens);
    keyring_format(&ring, new_gens, sizeof new_gens);
    if (!stamp.exists) {
        if (kf->present) {
            VLOG_WARN("%s: key file removed: channel frames are no longer "
                      "authenticated (empty key; was generations %s)",
                      kf->path, old_gens);
        }
    } else if (changed) {
        VLOG_INFO("%s: loaded key generations %s (was %s)", kf->path,
                  new_gens, old_gens);
    } else {
        VLOG_INFO("%s: reloaded, key generations %s unchanged", kf->path,
                  new_gens);
    }
    kf->present = stamp.exists;
    kf->ring = ring;
    explicit_bzero(&ring, sizeof ring);
    if (changedp) {
        *changedp = changed;
    }
    return 0;
}

bool
keyring_file_run(struct keyring_file *kf, long long now)
{
    struct stamp stamp;
    bool changed = false;

    if (now < kf->next_check) {
        return false;
    }
    kf->next_check = now + KEYRING_CHECK_MS;
    stamp_get(kf->path, &stamp);
    if (!kf->stamp_valid || !stamp_equal(&stamp, &kf->stamp)) {
        reload(kf, &changed, NULL, 0);
    }
    return changed;
}

long long
keyring_file_next_check(const struct keyring_file *kf)
{
    return kf->next_check;
}

int
keyring_file_reload(struct keyring_file *kf, bool *changedp, char *error,
                    size_t error_size)
{
    return reload(kf, changedp, error, error_size);
}

const struct keyring *
keyring_file_get(const struct keyring_file *kf)
{
    return &kf->ring;
}

const char *
keyring_file_path(const struct keyring_file *kf)
{
    return kf->path;
}

json_t *
keyring_file_status_json(const struct keyring_file *kf)
{
    return json_pack("{s:s, s:b, s:I, s:I, s:s}",
                     "path", kf->path,
                     "present", kf->present,
                     "loads", (json_int_t) kf->loads,
                     "load_errors", (json_int_t) kf->load_errors,
                     "last_error", kf->last_error);
}
