/* Placeholder until lib/util lands: allocation that aborts on failure. */
#ifndef UTIL_H
#define UTIL_H 1
#include <stdlib.h>
#include <string.h>
static inline void *xmalloc(size_t n) { void *p = malloc(n ? n : 1); if (!p) abort(); return p; }
static inline void *xcalloc(size_t c, size_t n) { void *p = calloc(c ? c : 1, n ? n : 1); if (!p) abort(); return p; }
static inline void *xrealloc(void *q, size_t n) { void *p = realloc(q, n ? n : 1); if (!p) abort(); return p; }
static inline char *xstrdup(const char *s) { char *p = strdup(s); if (!p) abort(); return p; }
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
static inline char *xasprintf(const char *f, ...) __attribute__((format(printf,1,2)));
static inline char *xasprintf(const char *f, ...) { va_list a; char *s; va_start(a, f); if (vasprintf(&s, f, a) < 0) abort(); va_end(a); return s; }
static inline char *read_file(const char *path, size_t *lenp) {
    FILE *f = fopen(path, "r"); if (!f) return NULL;
    size_t cap = 8192, len = 0, n; char *buf = xmalloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) { len += n; if (len + 1 == cap) { cap *= 2; buf = xrealloc(buf, cap); } }
    int e = ferror(f) ? EIO : 0; fclose(f); if (e) { free(buf); errno = e; return NULL; }
    buf[len] = 0; *lenp = len; return buf; }
#endif
