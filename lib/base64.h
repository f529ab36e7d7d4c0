/*
 * base64: the RFC 4648 alphabet with padding, as qemu-ga's "buf-b64" and
 * "out-data" use it.  Pure; no I/O.
 */
#ifndef BASE64_H
#define BASE64_H 1

#include <stdbool.h>
#include <stddef.h>

/* Returns 'len' bytes of 'data' encoded, NUL-terminated, malloc()ed. */
char *base64_encode(const void *data, size_t len);

/* Decodes 'text' (NUL-terminated; white space is not allowed).  Returns
 * true with the bytes in '*datap' (malloc()ed, NUL-terminated for
 * convenience) and their number in '*lenp', or false if 'text' is not
 * base64 (a bad character, a bad length or bad padding). */
bool base64_decode(const char *text, void **datap, size_t *lenp);

#endif /* base64.h */
