/*
 * qga-proto: the qemu-guest-agent wire protocol, as chand-qga serves it
 * (doc/adapters.md §7).
 *
 * The stream from a qemu-ga client is a sequence of JSON objects, each a
 * request
 *
 *     {"execute": "guest-ping", "arguments": {...}, "id": ANY}
 *
 * with optional "arguments" (an object) and "id" (echoed in the response),
 * separated by any whitespace or nothing at all.  The agent answers every
 * request, in order, with one line:
 *
 *     {"return": VALUE, "id": ANY}\n
 *     {"error": {"class": CLASS, "desc": TEXT}, "id": ANY}\n
 *
 * "id" only if the request had one.  A response to guest-sync-delimited is
 * preceded by the sentinel byte 0xFF.  A client may send 0xFF to make the
 * agent drop any partial request (after a client-side timeout, or when
 * taking over a connection another client left half-written): 0xFF is
 * never valid in JSON text, so qemu-ga's lexer resets on it, and answers
 * it as a parse error.  This module does the same.
 *
 * The parser (struct qga_parser) is a pure state machine: it is fed bytes
 * as they arrive, in pieces of any size, and hands out one event at a
 * time: a complete request text, or an error to answer (bad JSON, a stray
 * token outside an object, an oversized or too deeply nested request, a
 * 0xFF reset).  It finds the end of a top-level object by counting
 * brackets outside strings, so a request split anywhere (inside a string,
 * between the two bytes of an escape) is reassembled, and several in one
 * read are split.  A request longer than the parser's 'max_msg' bytes is
 * skipped to its end without being kept (one error answers it) and the
 * stream stays in step.  It holds at most 'max_msg' bytes plus one read
 * (its buffer, grown by doubling, may be up to twice that): nothing in the
 * input can make it grow without bound.
 *
 * qga_request_parse() checks a request text the way QEMU's QMP dispatcher
 * does, with its error texts, and qga_response_*() render responses as
 * qemu-ga does (one line, ", " and ": " separators).
 */
#ifndef QGA_PROTO_H
#define QGA_PROTO_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QGA_SENTINEL 0xff
#define QGA_MAX_DEPTH 1024              /* Nesting, as QEMU's parser. */

/* Error classes, as QEMU's QAPI ErrorClass. */
#define QGA_E_GENERIC "GenericError"
#define QGA_E_NOT_FOUND "CommandNotFound"

struct qga_parser;

enum qga_event {
    QGA_NONE,                   /* Needs more input. */
    QGA_REQUEST,                /* A complete top-level object. */
    QGA_ERROR                   /* Something to answer with an error. */
};

/* Creates a parser that keeps requests of up to 'max_msg' bytes.  Free it
 * with qga_parser_destroy(). */
struct qga_parser *qga_parser_create(size_t max_msg);
void qga_parser_destroy(struct qga_parser *);

/* Feeds 'n' bytes of 'data' (copied) to the parser. */
void qga_parser_feed(struct qga_parser *, const void *data, size_t n);

/* Returns the next event.  For QGA_REQUEST, '*textp' and '*lenp' are the
 * request's bytes (owned by the parser, valid until the next call to
 * qga_parser_next() or qga_parser_feed()); for
 * QGA_ERROR, '*textp' is the error's description (a string owned by the
 * parser, valid until the next call).  QGA_NONE: all input is used up. */
enum qga_event qga_parser_next(struct qga_parser *, const char **textp,
                               size_t *lenp);

/* Counters of what the parser met. */
struct qga_parser_stats {
    uint64_t requests;          /* QGA_REQUEST events. */
    uint64_t resets;            /* 0xFF bytes. */
    uint64_t bad_json;          /* Stray tokens (a request that is not
                                 * JSON is found by qga_request_parse()). */
    uint64_t oversized;         /* Requests over max_msg or too deep. */
};
void qga_parser_get_stats(const struct qga_parser *,
                          struct qga_parser_stats *);

/* Bytes the parser holds: of a request not complete yet (never more than
 * 'max_msg'; none of an oversized request or a stray token), and input fed
 * but not looked at by qga_parser_next() yet. */
size_t qga_parser_pending(const struct qga_parser *);

/* Checks request text 'text' ('len' bytes, from QGA_REQUEST).  On success
 * returns NULL and sets '*requestp' to the parsed object (a new reference)
 * whose "execute" is a string and whose "arguments", if any, is an object;
 * '*idp' to its "id" (borrowed from '*requestp') or NULL.  On failure
 * returns the error's description (malloc()ed), sets '*idp' to a new
 * reference to the request's "id" if it could be read (else NULL) and
 * '*requestp' to NULL. */
char *qga_request_parse(const char *text, size_t len, json_t **requestp,
                        json_t **idp);

/* Returns the response {"return": 'value', "id": 'id'} as one line with a
 * trailing newline (malloc()ed), preceded by 0xFF if 'sentinel'.  'value'
 * and 'id' (which may be NULL) are borrowed.  '*lenp' gets its length. */
char *qga_response_return(const json_t *value, const json_t *id,
                          bool sentinel, size_t *lenp);

/* Returns the response {"error": {"class": 'class', "desc": 'desc'},
 * "id": 'id'} likewise.  'desc' that is not valid UTF-8 is replaced by a
 * note saying so. */
char *qga_response_error(const char *class, const char *desc,
                         const json_t *id, size_t *lenp);

#endif /* qga-proto.h */
