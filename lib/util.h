/*
 * util: the small helpers every part of chand uses, in one place.
 *
 * Out of memory.  chand has one policy for an allocation that fails: it is
 * not an error to handle but the end of the process.  Every x*() function
 * below, and out_of_memory() itself, logs "out of memory" through vlog (at
 * ERR, from a stack buffer, so the message needs no heap), then calls
 * abort().  A daemon is restarted by its supervisor; a tool exits non-zero.
 * Code that can shed load instead (a queue that may refuse one more entry)
 * calls malloc() or realloc() itself, checks the result and keeps the old
 * block on failure; it never writes "p = realloc(p, ...)".
 *
 * Ownership.  Every pointer an x*() function returns is malloc'd and owned
 * by the caller, who frees it with free().
 *
 * Files.  read_file() reads a whole file into one buffer.
 *
 * Hex.  hexit_value() gives the value of one hex digit, as in Open vSwitch.
 */
#ifndef UTIL_H
#define UTIL_H 1

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns the address of the struct of type STRUCT that contains 'POINTER'
 * as its member MEMBER. */
#define CONTAINER_OF(POINTER, STRUCT, MEMBER)                           \
    ((STRUCT *) (void *) ((char *) (POINTER) - offsetof(STRUCT, MEMBER)))

#ifndef MIN
#define MIN(A, B) ((A) < (B) ? (A) : (B))
#endif
#ifndef MAX
#define MAX(A, B) ((A) > (B) ? (A) : (B))
#endif
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(A) (sizeof (A) / sizeof (A)[0])
#endif

/* Logs that memory ran out and aborts.  Never returns. */
void out_of_memory(void) __attribute__((noreturn));

/* Like malloc(), calloc(), realloc() and strdup(), but never return NULL:
 * on failure they call out_of_memory().  A 'size' of 0 allocates 1 byte,
 * so the result is always a distinct pointer.  The caller owns (frees) the
 * result; xrealloc() takes ownership of 'p'. */
void *xmalloc(size_t size) __attribute__((malloc));
void *xcalloc(size_t n, size_t size) __attribute__((malloc));
void *xzalloc(size_t size) __attribute__((malloc));
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s) __attribute__((malloc));

/* Returns a malloc'd copy of the 'size' bytes at 'p' (which may be NULL if
 * 'size' is 0).  The caller owns (frees) it. */
void *xmemdup(const void *p, size_t size) __attribute__((malloc));

/* Returns a malloc'd, printf-formatted string.  The caller owns (frees)
 * it. */
char *xasprintf(const char *format, ...)
    __attribute__((format(printf, 1, 2), malloc));
char *xvasprintf(const char *format, va_list args)
    __attribute__((format(printf, 1, 0), malloc));

/* Reads the whole file at 'path'.  Returns a malloc'd buffer (owned by the
 * caller) holding the file's bytes and a '\0' after them, and stores their
 * number in '*lenp' (which may be NULL).  On failure returns NULL with errno
 * set: the error from open or read, or EINVAL if 'path' is NULL.  Running
 * out of memory aborts (see above). */
char *read_file(const char *path, size_t *lenp);

/* Returns the value of hex digit 'c' (0..15), or -1 if 'c' is not one. */
int hexit_value(int c);

/* Parses 's', a number of bytes with an optional binary suffix K, M, G or
 * T (KiB, MiB, GiB, TiB; case-insensitive, "B" after it allowed), into
 * '*np'.  Returns false if 's' is anything else or overflows 64 bits. */
bool parse_byte_size(const char *s, uint64_t *np);

#endif /* util.h */
