/* Copyright (c) 2026 The chand authors.  See util.h. */

#include <config.h>
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(util);

/* Logs and aborts: the one out-of-memory policy (see util.h). */
void
out_of_memory(void)
{
    VLOG_ERR("out of memory");
    abort();
}

/* Returns a new block of 'size' bytes, owned by the caller. */
void *
xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (!p) {
        out_of_memory();
    }
    return p;
}

/* Returns a new zeroed array of 'n' elements of 'size' bytes, owned by the
 * caller. */
void *
xcalloc(size_t n, size_t size)
{
    void *p = n && size ? calloc(n, size) : calloc(1, 1);

    if (!p) {
        out_of_memory();
    }
    return p;
}

/* Returns a new zeroed block of 'size' bytes, owned by the caller. */
void *
xzalloc(size_t size)
{
    return xcalloc(1, size);
}

/* Resizes 'p' (owned by the caller, or NULL) to 'size' bytes and returns
 * the block, which the caller owns in its place. */
void *
xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    if (!q) {
        out_of_memory();
    }
    return q;
}

/* Returns a copy of 's', owned by the caller. */
char *
xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

/* Returns a copy of the 'size' bytes at 'p', owned by the caller. */
void *
xmemdup(const void *p, size_t size)
{
    void *copy = xmalloc(size);

    if (size) {
        memcpy(copy, p, size);
    }
    return copy;
}

/* Returns the formatted string, owned by the caller. */
char *
xvasprintf(const char *format, va_list args)
{
    char *s;

    if (vasprintf(&s, format, args) < 0) {
        out_of_memory();
    }
    return s;
}

/* Returns the formatted string, owned by the caller. */
char *
xasprintf(const char *format, ...)
{
    va_list args;
    char *s;

    va_start(args, format);
    s = xvasprintf(format, args);
    va_end(args);
    return s;
}

/* Reads all of 'f' (borrowed) into a buffer the caller owns, NUL
 * terminated.  Returns NULL with errno set on a read error. */
static char *
read_stream(FILE *f, size_t *lenp)
{
    size_t cap = 8192, len = 0, n;
    char *buf = xmalloc(cap);

    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    if (ferror(f)) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[len] = '\0';            /* 'len' < 'cap' here. */
    *lenp = len;
    return buf;
}

/* Reads the file at 'path' into a buffer the caller owns; see util.h. */
char *
read_file(const char *path, size_t *lenp)
{
    size_t len = 0;
    int error;
    char *buf;
    FILE *f;

    if (lenp) {
        *lenp = 0;
    }
    if (!path) {
        errno = EINVAL;
        return NULL;
    }
    f = fopen(path, "r");
    if (!f) {
        return NULL;
    }
    buf = read_stream(f, &len);
    error = errno;
    fclose(f);
    if (!buf) {
        errno = error;
    } else if (lenp) {
        *lenp = len;
    }
    return buf;
}

/* Returns the value of hex digit 'c', or -1. */
int
hexit_value(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    } else if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool
parse_byte_size(const char *s, uint64_t *np)
{
    static const char suffixes[] = "kmgt";
    unsigned long long n;
    char *end;

    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno) {
        return false;
    }
    if (*end) {
        const char *p = strchr(suffixes, tolower((unsigned char) *end));
        if (!p) {
            return false;
        }
        int shift = 10 * (int) (p - suffixes + 1);
        end++;
        if (*end == 'b' || *end == 'B') {
            end++;
        }
        if (*end || n > (UINT64_MAX >> shift)) {
            return false;
        }
        n <<= shift;
    }
    *np = n;
    return true;
}
