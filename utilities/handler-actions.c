/* The built-in handlers' actions: see handler-actions.h. */

#include <config.h>
#include "handler-actions.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util.h"

/* Input. */

bool
ha_valid_digest(const char *digest)
{
    return (digest && strlen(digest) == 64
            && strspn(digest, "0123456789abcdef") == 64);
}

bool
ha_valid_path(const char *path)
{
    const char *p = path;

    if (!path || path[0] != '/' || strlen(path) > 4096) {
        return false;
    }
    while (*p == '/') {
        const char *c = p + 1;
        size_t len = strcspn(c, "/");

        if (!len || (len == 1 && c[0] == '.')
            || (len == 2 && c[0] == '.' && c[1] == '.')) {
            return false;
        }
        p = c + len;
    }
    return true;
}

bool
ha_parse_mode(const char *text, unsigned int *modep)
{
    size_t len = text ? strlen(text) : 0;
    unsigned long mode;

    if (!len || len > 4 || strspn(text, "01234567") != len) {
        return false;
    }
    mode = strtoul(text, NULL, 8);
    if (mode > 0777) {
        return false;
    }
    *modep = mode;
    return true;
}

void
ha_input_destroy(struct ha_input *in)
{
    for (size_t i = 0; i < in->n_paths; i++) {
        free(in->paths[i]);
    }
    free(in->paths);
    free(in->kind);
    free(in->digest);
    free(in->action);
    free(in->superseded_by);
    free(in->content);
    free(in->path);
    memset(in, 0, sizeof *in);
}

/* Fills 'in''s paths from 'paths'.  Returns NULL or a message. */
static char *
parse_paths(const json_t *paths, struct ha_input *in)
{
    const json_t *p;
    size_t i;

    if (!json_is_array(paths)) {
        return xstrdup("\"paths\" is not an array");
    }
    in->paths = xcalloc(json_array_size(paths) + 1, sizeof *in->paths);
    json_array_foreach (paths, i, p) {
        if (!ha_valid_path(json_string_value(p))) {
            return xasprintf("path %zu is not an absolute, normalized "
                             "path", i);
        }
        in->paths[in->n_paths++] = xstrdup(json_string_value(p));
    }
    return NULL;
}

/* Fills 'in' from the record's value 'v' of kind 'in->kind'.  Returns
 * NULL or a message. */
static char *
parse_value(const json_t *v, struct ha_input *in)
{
    const char *digest = json_string_value(json_object_get(v, "digest"));
    const char *action = json_string_value(json_object_get(v, "action"));
    const char *new = json_string_value(json_object_get(v, "superseded_by"));
    const json_t *size = json_object_get(v, "size");

    if (!json_is_object(v)) {
        return xstrdup("the value is not a JSON object");
    } else if (!ha_valid_digest(digest)) {
        return xstrdup("\"digest\" is not a sha256 digest");
    }
    in->digest = xstrdup(digest);
    in->size = json_is_integer(size) ? json_integer_value(size) : -1;
    if (!strcmp(in->kind, "verdict")) {
        action = action ? action : "quarantine";
        if (strcmp(action, "quarantine") && strcmp(action, "delete")) {
            return xasprintf("unknown action \"%s\"", action);
        }
        in->action = xstrdup(action);
    } else if (!ha_valid_digest(new)) {
        return xstrdup("\"superseded_by\" is not a sha256 digest");
    } else {
        in->superseded_by = xstrdup(new);
    }
    return parse_paths(json_object_get(v, "paths"), in);
}

/* Fills 'in' from record 'j' of kind 'in->kind', "install" or "restore":
 * the digest from its key, and the members chand-guest adds, "content",
 * "path" and (install) "mode".  Returns NULL or a message. */
static char *
parse_content_record(const json_t *j, struct ha_input *in)
{
    const char *key = json_string_value(json_object_get(j, "key"));
    const json_t *v = json_object_get(j, "value");
    const char *digest = json_string_value(json_object_get(v, "digest"));
    const char *content = json_string_value(json_object_get(j, "content"));
    const char *path = json_string_value(json_object_get(j, "path"));
    const json_t *mode = json_object_get(j, "mode");
    const json_t *size = json_object_get(v, "size");
    size_t klen = strlen(in->kind);

    in->mode = 0755;
    if (!json_is_object(v)) {
        return xstrdup("the value is not a JSON object");
    } else if (!key || strncmp(key, in->kind, klen) || key[klen] != '/'
               || !ha_valid_digest(key + klen + 1)) {
        return xasprintf("\"key\" is not \"%s/\" and a sha256 digest",
                         in->kind);
    } else if (digest && strcmp(digest, key + klen + 1)) {
        return xstrdup("the value's digest is not the key's");
    } else if (!ha_valid_path(content)) {
        return xstrdup("\"content\" is not an absolute, normalized path");
    } else if (!ha_valid_path(path)) {
        return xstrdup("\"path\" is not an absolute, normalized path");
    } else if (!strcmp(in->kind, "install") && mode
               && !ha_parse_mode(json_string_value(mode), &in->mode)) {
        return xstrdup("\"mode\" is not an octal mode of at most 0777 "
                       "(no setuid, setgid or sticky bit)");
    }
    in->digest = xstrdup(key + klen + 1);
    in->size = json_is_integer(size) ? json_integer_value(size) : -1;
    in->content = xstrdup(content);
    in->path = xstrdup(path);
    return NULL;
}

bool
ha_known_kind(const char *kind)
{
    return (kind && (!strcmp(kind, "verdict") || !strcmp(kind, "notice")
                     || !strcmp(kind, "install")
                     || !strcmp(kind, "restore")));
}

char *
ha_parse_input(const char *text, size_t len, struct ha_input *in)
{
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *kind = json_string_value(json_object_get(j, "kind"));
    char *error = NULL;

    memset(in, 0, sizeof *in);
    if (!json_is_object(j)) {
        error = xstrdup("stdin is not a JSON object");
    } else if (!ha_known_kind(kind)) {
        error = xstrdup("\"kind\" is not \"verdict\", \"notice\", "
                        "\"install\" or \"restore\"");
    } else {
        in->kind = xstrdup(kind);
        error = (!strcmp(kind, "install") || !strcmp(kind, "restore")
                 ? parse_content_record(j, in)
                 : parse_value(json_object_get(j, "value"), in));
    }
    if (error) {
        ha_input_destroy(in);
    }
    json_decref(j);
    return error;
}

/* Hashing. */

/* Writes the 'n' bytes of 'buf' to 'fd'.  Returns 0 or an errno. */
static int
write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);

        if (w < 0 && errno == EINTR) {
            continue;
        } else if (w <= 0) {
            return w < 0 ? errno : EIO;
        }
        buf += w;
        n -= w;
    }
    return 0;
}

/* Reads what is left of open file 'in', writing it to 'out' unless 'out'
 * is negative, and stores the sha256 of what was read into 'hex'.
 * Returns 0 or an errno (then 'hex' holds nothing). */
static int
copy_hash_fd(int in, int out, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    static char buf[64 * 1024];
    unsigned int len = 0;
    int error = 0;
    ssize_t n;

    if (!ctx) {
        out_of_memory();
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while (!error && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            error = errno == EINTR ? 0 : errno;
        } else {
            EVP_DigestUpdate(ctx, buf, n);
            error = out < 0 ? 0 : write_all(out, buf, n);
        }
    }
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (unsigned int i = 0; !error && i < len && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return error;
}

/* Hashes what is left of open file 'fd' into 'hex'.  Returns 0 or an
 * errno. */
static int
sha256_fd(int fd, char hex[65])
{
    return copy_hash_fd(fd, -1, hex);
}

/* Opens regular file 'path' for reading without following a final
 * symbolic link, storing its status in '*st'.  Returns the descriptor, or
 * -1 with errno set (ELOOP, EINVAL: not a regular file). */
static int
open_regular(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                  | O_NOCTTY);

    if (fd >= 0 && fstat(fd, st)) {
        int error = errno;
        close(fd);
        errno = error;
        return -1;
    } else if (fd >= 0 && !S_ISREG(st->st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

int
ha_sha256_file(const char *path, char hex[65])
{
    struct stat st;
    int fd = open_regular(path, &st);
    int error;

    if (fd < 0) {
        return errno;
    }
    error = sha256_fd(fd, hex);
    close(fd);
    return error;
}

/* Files. */

/* Copies regular file 'from' to new file 'to' (mode 'mode'), then fsyncs
 * it.  Returns 0 or an errno (then 'to' is removed). */
static int
copy_file(const char *from, const char *to, mode_t mode)
{
    struct stat st;
    int in = open_regular(from, &st);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                                 mode);
    int error = in < 0 || out < 0 ? errno : 0;
    char hex[65];

    if (!error) {
        error = copy_hash_fd(in, out, hex);
    }
    if (!error && fsync(out)) {
        error = errno;
    }
    if (in >= 0) {
        close(in);
    }
    if (out >= 0) {
        close(out);
        if (error) {
            unlink(to);
        }
    }
    return error;
}

/* Moves 'from' to 'to' (which must not exist), copying across file
 * systems.  Returns 0 or an errno. */
static int
move_file(const char *from, const char *to, mode_t mode)
{
    struct stat st;
    int error;

    if (!lstat(to, &st)) {
        return EEXIST;
    } else if (!rename(from, to)) {
        return 0;
    } else if (errno != EXDEV) {
        return errno;
    }
    error = copy_file(from, to, mode);
    if (!error && unlink(from)) {
        error = errno;
        unlink(to);
    }
    return error;
}

/* Writes 'j' to new file 'path' (mode 0600; EEXIST if it exists, so that
 * of several writers only one gets a name), fsynced.  Returns 0 or an
 * errno. */
static int
write_json_file(const char *path, const json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t len = text ? strlen(text) : 0;
    int error = 0;

    if (!text) {
        out_of_memory();
    }
    if (fd < 0) {
        error = errno;
    } else if (write(fd, text, len) != (ssize_t) len || write(fd, "\n", 1)
               != 1 || fsync(fd)) {
        error = errno ? errno : EIO;
        unlink(path);
    }
    if (fd >= 0) {
        close(fd);
    }
    free(text);
    return error;
}

/* Creates 'dir' and its missing parents, mode 0700.  Returns 0 or an
 * errno. */
static int
make_dirs(const char *dir)
{
    char *copy = xstrdup(dir);
    int error = 0;

    for (char *p = copy + 1; !error; p++) {
        if (*p == '/' || !*p) {
            char c = *p;

            *p = '\0';
            if (mkdir(copy, 0700) && errno != EEXIST) {
                error = errno;
            }
            *p = c;
            if (!c) {
                break;
            }
        }
    }
    free(copy);
    return error;
}

/* Verdicts. */

/* Returns the metadata of a file at 'path' whose status is 'st'. */
static json_t *
metadata(const char *digest, const char *path, const struct stat *st,
         long long now_ms)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "digest", digest, "path", path,
                     "mode", (json_int_t) (st->st_mode & 07777),
                     "uid", (json_int_t) st->st_uid,
                     "gid", (json_int_t) st->st_gid,
                     "mtime", (json_int_t) st->st_mtim.tv_sec,
                     "mtime_nsec", (json_int_t) st->st_mtim.tv_nsec,
                     "quarantined_at", (json_int_t) now_ms);
}

/* Moves 'path' (status 'st') into 'dir' (the digest's quarantine
 * directory) with its metadata.  Returns 0 or an errno. */
static int
quarantine(const char *dir, const char *digest, const char *path,
           const struct stat *st, long long now_ms)
{
    json_t *meta = metadata(digest, path, st, now_ms);
    int error = make_dirs(dir);

    for (unsigned int n = 1; !error; n++) {
        char *file = xasprintf("%s/%u", dir, n);
        char *json = xasprintf("%s/%u.json", dir, n);
        struct stat taken;
        int claim = lstat(file, &taken) ? write_json_file(json, meta) : EEXIST;
        bool done = !claim;

        if (done) {
            error = move_file(path, file, 0400);
            if (error) {
                unlink(json);
            } else {
                chmod(file, 0400);
            }
        } else if (claim != EEXIST) {
            error = claim;
        }
        free(file);
        free(json);
        if (done) {
            break;
        }
    }
    json_decref(meta);
    return error;
}

/* Appends ", " and 'text' (or just 'text' at first) to '*sp'. */
static void
append(char **sp, const char *text)
{
    char *s = xasprintf("%s%s%s", *sp ? *sp : "", *sp ? ", " : "", text);

    free(*sp);
    *sp = s;
}

/* What happened to one verdict's paths. */
struct ha_tally {
    size_t done;
    char *changed;              /* Paths left alone, with why. */
    char *errors;               /* Paths that failed, with why. */
};

/* Acts on one path of verdict 'in'. */
static void
verdict_path(const struct ha_input *in, const char *dir, const char *path,
             long long now_ms, struct ha_tally *t)
{
    char hex[65], *note;
    struct stat st, now;
    int fd = open_regular(path, &st);
    int error = fd < 0 ? errno : sha256_fd(fd, hex);

    if (fd >= 0) {
        close(fd);
    }
    if (error) {
        note = xasprintf("%s (%s)", path, error == ENOENT ? "missing"
                         : error == ELOOP ? "a symbolic link"
                         : error == EINVAL ? "not a regular file"
                         : strerror(error));
        append(&t->changed, note);
    } else if (strcmp(hex, in->digest)
               || lstat(path, &now) || now.st_ino != st.st_ino
               || now.st_dev != st.st_dev || now.st_size != st.st_size
               || now.st_mtim.tv_sec != st.st_mtim.tv_sec
               || now.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
        note = xasprintf("%s (content changed)", path);
        append(&t->changed, note);
    } else {
        error = (!strcmp(in->action, "delete")
                 ? (unlink(path) ? errno : 0)
                 : quarantine(dir, in->digest, path, &st, now_ms));
        note = error ? xasprintf("%s: %s", path, strerror(error)) : NULL;
        if (error) {
            append(&t->errors, note);
        } else {
            t->done++;
        }
    }
    free(note);
}

void
ha_verdict(const struct ha_input *in, const char *qdir, long long now_ms,
           struct ha_result *res)
{
    char *dir = xasprintf("%s/%s", qdir, in->digest);
    bool del = !strcmp(in->action, "delete");
    struct ha_tally t = { 0, NULL, NULL };
    json_t *out = json_object();
    char *detail;

    for (size_t i = 0; i < in->n_paths; i++) {
        verdict_path(in, dir, in->paths[i], now_ms, &t);
    }
    detail = xasprintf("%s %zu of %zu path%s%s%s%s%s",
                       del ? "deleted" : "quarantined", t.done, in->n_paths,
                       in->n_paths == 1 ? "" : "s",
                       del ? "" : " in ", del ? "" : dir,
                       t.changed ? "; left alone: " : "",
                       t.changed ? t.changed : "");
    if (t.done) {
        json_object_set_new(out, "object_flags",
                            json_pack("[s]", del ? "deleted"
                                                 : "quarantined"));
    }
    json_object_set_new(out, "detail", json_string(detail));
    res->exit_code = t.errors ? 1 : 0;
    res->error = t.errors ? xasprintf("%s failed: %s",
                                      del ? "delete" : "quarantine",
                                      t.errors) : NULL;
    res->output = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    if (!res->output) {
        out_of_memory();
    }
    json_decref(out);
    free(detail);
    free(t.changed);
    free(t.errors);
    free(dir);
}

void
ha_notice(const struct ha_input *in, struct ha_result *res)
{
    char *detail = (in->size >= 0
                    ? xasprintf("superseded by %s (%"PRId64" bytes); not "
                                "fetched", in->superseded_by, in->size)
                    : xasprintf("superseded by %s; not fetched",
                                in->superseded_by));
    json_t *out = json_pack("{s:s}", "detail", detail);

    res->exit_code = 0;
    res->error = NULL;
    res->output = json_dumps(out, JSON_COMPACT);
    if (!res->output) {
        out_of_memory();
    }
    json_decref(out);
    free(detail);
}

/* Release. */

/* Puts back the quarantined file 'file' described by 'json' (paths in
 * the digest's directory).  Returns NULL or a message. */
static char *
release_one(const char *digest, const char *file, const char *json)
{
    json_t *meta = json_load_file(json, 0, NULL);
    const char *path = json_string_value(json_object_get(meta, "path"));
    char hex[65];
    char *error = NULL;
    int e;

    if (!meta || !ha_valid_path(path)) {
        error = xasprintf("%s: unreadable metadata", json);
    } else if ((e = ha_sha256_file(file, hex)) || strcmp(hex, digest)) {
        error = xasprintf("%s: %s", file, e ? strerror(e)
                          : "content is no longer the object");
    } else if ((e = move_file(file, path, 0600))) {
        error = xasprintf("%s: cannot put it back: %s", path, strerror(e));
    } else {
        struct timespec times[2] = {
            { .tv_nsec = UTIME_OMIT },
            { .tv_sec = json_integer_value(json_object_get(meta, "mtime")),
              .tv_nsec = json_integer_value(json_object_get(meta,
                                                            "mtime_nsec")) },
        };
        if (lchown(path, json_integer_value(json_object_get(meta, "uid")),
                   json_integer_value(json_object_get(meta, "gid")))
            && errno != EPERM) {
            error = xasprintf("%s: chown: %s", path, strerror(errno));
        }
        chmod(path, json_integer_value(json_object_get(meta, "mode"))
              & 07777);
        utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW);
        unlink(json);
    }
    json_decref(meta);
    return error;
}

char *
ha_release(const char *qdir, const char *digest, size_t *releasedp)
{
    char *dir = xasprintf("%s/%s", qdir, digest);
    char *errors = NULL;
    struct dirent *de;
    DIR *d;

    *releasedp = 0;
    if (!ha_valid_digest(digest)) {
        free(dir);
        return xasprintf("%s is not a sha256 digest", digest);
    }
    d = opendir(dir);
    if (!d) {
        errors = xasprintf("%s: %s", dir, strerror(errno));
        free(dir);
        return errors;
    }
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);

        if (len > 5 && !strcmp(de->d_name + len - 5, ".json")
            && strspn(de->d_name, "0123456789") == len - 5) {
            char *json = xasprintf("%s/%s", dir, de->d_name);
            char *file = xasprintf("%s/%.*s", dir, (int) len - 5,
                                   de->d_name);
            char *error = release_one(digest, file, json);

            if (error) {
                append(&errors, error);
            } else {
                ++*releasedp;
            }
            free(error);
            free(json);
            free(file);
        }
    }
    closedir(d);
    rmdir(dir);
    free(dir);
    return errors;
}

/* Install and restore. */

/* Opens the directory of 'path' (absolute, normalized) into '*dirfdp'.
 * Returns NULL or a message naming the directory. */
static char *
open_parent(const char *path, int *dirfdp)
{
    size_t len = strrchr(path, '/') - path;
    char *dir = len ? xasprintf("%.*s", (int) len, path) : xstrdup("/");
    char *error = NULL;

    *dirfdp = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dirfdp < 0) {
        error = (errno == ENOENT
                 ? xasprintf("directory %s does not exist", dir)
                 : xasprintf("directory %s: %s", dir, strerror(errno)));
    }
    free(dir);
    return error;
}

/* Stores in '*st' the status of 'base' in directory 'dirfd' ('path' in
 * messages), not following a symbolic link; st->st_mode is 0 if it does
 * not exist.  Returns NULL, or a message if it exists as anything but a
 * regular file or cannot be looked at. */
static char *
check_target(int dirfd, const char *base, const char *path, struct stat *st)
{
    if (fstatat(dirfd, base, st, AT_SYMLINK_NOFOLLOW)) {
        int error = errno;

        memset(st, 0, sizeof *st);
        return error == ENOENT ? NULL : xasprintf("%s: %s", path,
                                                  strerror(error));
    }
    return (S_ISLNK(st->st_mode) ? xasprintf("%s is a symbolic link", path)
            : S_ISDIR(st->st_mode) ? xasprintf("%s is a directory", path)
            : !S_ISREG(st->st_mode)
            ? xasprintf("%s is not a regular file", path)
            : NULL);
}

/* Creates a new, empty file (mode 0600) under a random name in directory
 * 'dirfd', storing the name in 'name'.  Returns the descriptor, or -1
 * with errno set. */
static int
open_temp(int dirfd, char name[32])
{
    for (int i = 0; i < 16; i++) {
        uint64_t r;
        int fd;

        if (getrandom(&r, sizeof r, 0) != sizeof r) {
            return -1;
        }
        snprintf(name, 32, ".chand-%016"PRIx64".tmp", r);
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                    | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST) {
            return fd;
        }
    }
    errno = EEXIST;
    return -1;
}

/* Copies 'content' into a new temporary file in directory 'dirfd' (the
 * directory of 'path'), storing its name in 'tmp' (left empty if none was
 * created).  What was copied must hash to 'digest'.  The file gets 'mode'
 * and, as root, the owner of 'owner' unless it is NULL, and is fsynced.
 * Returns NULL or a message. */
static char *
write_temp(int dirfd, char tmp[32], const char *path, const char *digest,
           const char *content, mode_t mode, const struct stat *owner)
{
    struct stat st;
    char hex[65];
    int in = open_regular(content, &st);
    int out = in < 0 ? -1 : open_temp(dirfd, tmp);
    int e = in < 0 || out < 0 ? errno : copy_hash_fd(in, out, hex);
    char *error = (in < 0
                   ? xasprintf("content %s: %s", content,
                               e == ELOOP ? "a symbolic link"
                               : e == EINVAL ? "not a regular file"
                               : strerror(e))
                   : out < 0
                   ? xasprintf("cannot create a file beside %s: %s", path,
                               strerror(e))
                   : e ? xasprintf("cannot copy %s: %s", content, strerror(e))
                   : strcmp(hex, digest)
                   ? xstrdup("content does not match its digest")
                   : NULL);

    if (out < 0) {
        tmp[0] = '\0';
    }
    if (!error && owner && !geteuid()
        && fchown(out, owner->st_uid, owner->st_gid)) {
        error = xasprintf("cannot chown a file for %s: %s", path,
                          strerror(errno));
    }
    if (!error && (fchmod(out, mode) || fsync(out))) {
        error = xasprintf("cannot write a file for %s: %s", path,
                          strerror(errno));
    }
    if (out >= 0 && close(out) && !error) {
        error = xasprintf("cannot write a file for %s: %s", path,
                          strerror(errno));
    }
    if (in >= 0) {
        close(in);
    }
    return error;
}

/* Puts a copy of 'content', which must hash to 'digest', at 'path'
 * atomically (see handler-actions.h): the copy replaces a regular file
 * but never a symbolic link, a directory or anything else.  The copy gets
 * 'mode' or, if 'keep' and 'path' is a regular file, its permission bits
 * (and, as root, its owner).  Returns NULL or a message. */
static char *
place_content(const char *digest, const char *content, const char *path,
              mode_t mode, bool keep)
{
    const char *base = NULL;
    char tmp[32] = "";
    struct stat st;
    int dirfd = -1;
    char *error = (!ha_valid_path(path)
                   ? xstrdup("the target is not an absolute, normalized path")
                   : mode & ~0777
                   ? xasprintf("mode %04o is over 0777", (unsigned) mode)
                   : open_parent(path, &dirfd));

    if (!error) {
        base = strrchr(path, '/') + 1;
        error = check_target(dirfd, base, path, &st);
    }
    if (!error) {
        bool replace = keep && S_ISREG(st.st_mode);

        error = write_temp(dirfd, tmp, path, digest, content,
                           replace ? st.st_mode & 0777 : mode,
                           replace ? &st : NULL);
    }
    if (!error) {
        /* Once more, just before the rename, which replaces a symbolic
         * link rather than following it. */
        error = check_target(dirfd, base, path, &st);
    }
    if (!error && renameat(dirfd, tmp, dirfd, base)) {
        error = xasprintf("cannot rename a file to %s: %s", path,
                          strerror(errno));
    } else if (!error) {
        tmp[0] = '\0';
        if (fsync(dirfd)) {
            error = xasprintf("%s is in place but its directory could not "
                              "be synced: %s", path, strerror(errno));
        }
    }
    if (tmp[0]) {
        unlinkat(dirfd, tmp, 0);
    }
    if (dirfd >= 0) {
        close(dirfd);
    }
    return error;
}

/* Fills 'res' with 'detail' (for stdout) or 'error' (for stderr), taking
 * ownership of both; exactly one is nonnull. */
static void
content_result(struct ha_result *res, char *detail, char *error)
{
    res->exit_code = error ? 1 : 0;
    res->error = error;
    res->output = NULL;
    if (detail) {
        json_t *out = json_pack("{s:s}", "detail", detail);

        res->output = json_dumps(out, JSON_COMPACT);
        if (!res->output) {
            out_of_memory();
        }
        json_decref(out);
        free(detail);
    }
}

void
ha_install(const struct ha_input *in, struct ha_result *res)
{
    char *error = place_content(in->digest, in->content, in->path, in->mode,
                                false);

    content_result(res, error ? NULL
                   : xasprintf("installed %.12s at %s (mode %04o)",
                               in->digest, in->path, in->mode), error);
}

void
ha_restore(const struct ha_input *in, struct ha_result *res)
{
    char hex[65];
    char *error;

    if (ha_valid_path(in->path) && !ha_sha256_file(in->path, hex)
        && !strcmp(hex, in->digest)) {
        content_result(res, xasprintf("%s already holds %.12s", in->path,
                                      in->digest), NULL);
        return;
    }
    error = place_content(in->digest, in->content, in->path, 0644, true);
    content_result(res, error ? NULL
                   : xasprintf("restored %.12s to %s", in->digest,
                               in->path), error);
}
