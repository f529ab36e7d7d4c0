/* qemu-guest-agent wire protocol: see qga-proto.h. */

#include <config.h>
#include "qga-proto.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

enum qga_state {
    QS_TOP,                     /* Between requests. */
    QS_OBJECT,                  /* Inside brackets, outside strings. */
    QS_STRING,                  /* Inside a string in brackets. */
    QS_ESCAPE,                  /* After a backslash in such a string. */
    QS_TOKEN,                   /* A stray token at top level. */
    QS_TOKEN_STRING,            /* A stray string at top level. */
    QS_TOKEN_ESCAPE             /* After a backslash in it. */
};

#define QGA_TOKEN_SHOWN 32      /* Bytes of a stray token in its error. */

struct qga_parser {
    size_t max_msg;
    char *buf;                  /* Input not looked at yet, and the current
                                 * request's bytes. */
    size_t len, alloc;
    size_t start;               /* Where the current request begins. */
    size_t scan;                /* Next byte to look at. */
    enum qga_state state;
    unsigned int depth;
    unsigned int max_depth;     /* Deepest in the current request. */
    bool oversized;             /* The current request is over max_msg:
                                 * its bytes are not kept. */
    size_t msg_len;             /* Bytes of the current request so far. */
    char token[QGA_TOKEN_SHOWN + 1];
    size_t token_len;
    char *error;                /* The last error's description. */
    struct qga_parser_stats stats;
};

struct qga_parser *
qga_parser_create(size_t max_msg)
{
    struct qga_parser *p = xzalloc(sizeof *p);
    p->max_msg = max_msg;
    return p;
}

void
qga_parser_destroy(struct qga_parser *p)
{
    if (p) {
        free(p->buf);
        free(p->error);
        free(p);
    }
}

void
qga_parser_feed(struct qga_parser *p, const void *data, size_t n)
{
    if (!n) {
        return;                 /* 'data' and 'p->buf' may be NULL. */
    }

    /* Drop what was handed out or skipped before making room. */
    if (p->start) {
        memmove(p->buf, p->buf + p->start, p->len - p->start);
        p->len -= p->start;
        p->scan -= p->start;
        p->start = 0;
    }
    if (p->len + n > p->alloc) {
        p->alloc = MAX(p->len + n, 2 * p->alloc);
        p->buf = xrealloc(p->buf, p->alloc);
    }
    memcpy(p->buf + p->len, data, n);
    p->len += n;
}

size_t
qga_parser_pending(const struct qga_parser *p)
{
    /* Not 'msg_len': the bytes of an oversized request or a stray token
     * are counted there but not kept. */
    return p->len - p->start;
}

void
qga_parser_get_stats(const struct qga_parser *p,
                     struct qga_parser_stats *stats)
{
    *stats = p->stats;
}

static enum qga_event
set_error(struct qga_parser *p, const char **textp, char *error)
{
    free(p->error);
    p->error = error;
    *textp = error;
    return QGA_ERROR;
}

static bool
is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Ends the stray token being read and returns its error. */
static enum qga_event
end_token(struct qga_parser *p, const char **textp)
{
    p->token[p->token_len] = '\0';
    p->state = QS_TOP;
    p->stats.bad_json++;
    p->start = p->scan;
    p->msg_len = 0;
    return set_error(p, textp, xasprintf(
                         "JSON parse error, stray '%s%s' outside a request "
                         "object", p->token,
                         p->token_len >= QGA_TOKEN_SHOWN ? "..." : ""));
}

static void
token_add(struct qga_parser *p, unsigned char c)
{
    if (p->token_len < QGA_TOKEN_SHOWN) {
        p->token[p->token_len++] = c >= 0x20 && c < 0x7f ? c : '?';
    }
}

/* Starts a request or a stray token at byte 'c', at top level. */
static void
begin(struct qga_parser *p, unsigned char c)
{
    p->msg_len = 0;
    p->oversized = false;
    p->max_depth = 0;
    if (c == '{' || c == '[') {
        p->state = QS_OBJECT;
        p->depth = 0;
    } else {
        p->state = c == '"' ? QS_TOKEN_STRING : QS_TOKEN;
        p->token_len = 0;
    }
}

/* The 0xFF byte: drops whatever was partial. */
static enum qga_event
reset(struct qga_parser *p, const char **textp)
{
    size_t dropped = p->state == QS_TOP ? 0 : p->msg_len;

    p->state = QS_TOP;
    p->stats.resets++;
    p->scan++;
    p->start = p->scan;
    p->msg_len = 0;
    return set_error(p, textp, xasprintf(
                         "JSON parse error, stray '\\xff' (the parser is "
                         "reset; %zu bytes of a partial request before it "
                         "are dropped)", dropped));
}

/* The current request ended at p->scan (exclusive). */
static enum qga_event
end_request(struct qga_parser *p, const char **textp, size_t *lenp)
{
    p->state = QS_TOP;
    if (p->oversized) {
        p->stats.oversized++;
        p->start = p->scan;
        return set_error(p, textp, xasprintf(
                             "request of %zu bytes is over the limit of %zu "
                             "bytes", p->msg_len, p->max_msg));
    } else if (p->max_depth > QGA_MAX_DEPTH) {
        p->stats.oversized++;
        p->start = p->scan;
        return set_error(p, textp, xasprintf(
                             "JSON nesting of the request is deeper than "
                             "%d", QGA_MAX_DEPTH));
    }
    p->stats.requests++;
    *textp = p->buf + p->start;
    *lenp = p->scan - p->start;
    p->start = p->scan;
    return QGA_REQUEST;
}

/* Looks at one byte 'c' of a request or token; returns true if it ends
 * it. */
static bool
step(struct qga_parser *p, unsigned char c)
{
    switch (p->state) {
    case QS_OBJECT:
        if (c == '"') {
            p->state = QS_STRING;
        } else if (c == '{' || c == '[') {
            if (++p->depth > p->max_depth) {
                p->max_depth = p->depth;
            }
        } else if (c == '}' || c == ']') {
            return --p->depth == 0;
        }
        return false;
    case QS_STRING:
        p->state = c == '\\' ? QS_ESCAPE : c == '"' ? QS_OBJECT : QS_STRING;
        return false;
    case QS_ESCAPE:
        p->state = QS_STRING;
        return false;
    case QS_TOKEN_STRING:
        token_add(p, c);
        p->state = (c == '\\' ? QS_TOKEN_ESCAPE
                    : c == '"' && p->token_len > 1 ? QS_TOKEN
                    : QS_TOKEN_STRING);
        return false;
    case QS_TOKEN_ESCAPE:
        token_add(p, c);
        p->state = QS_TOKEN_STRING;
        return false;
    case QS_TOP:
    case QS_TOKEN:
    default:
        abort();
    }
}

enum qga_event
qga_parser_next(struct qga_parser *p, const char **textp, size_t *lenp)
{
    *textp = NULL;
    *lenp = 0;
    while (p->scan < p->len) {
        unsigned char c = p->buf[p->scan];

        if (c == QGA_SENTINEL) {
            return reset(p, textp);
        }
        if (p->state == QS_TOP) {
            if (is_space(c)) {
                p->start = ++p->scan;
                continue;
            }
            p->start = p->scan;
            begin(p, c);
            if (p->state == QS_OBJECT) {
                p->depth = 1;
                p->max_depth = 1;
                p->msg_len = 1;
                p->scan++;
                continue;
            }
        }
        if (p->state == QS_TOKEN) {
            if (is_space(c) || c == '{' || c == '[' || c == '"') {
                /* The token ends before 'c', which is looked at again. */
                return end_token(p, textp);
            }
            token_add(p, c);
            p->scan++;
            p->msg_len++;
            p->start = p->scan;     /* A token's bytes are not kept. */
            continue;
        }

        bool ended = step(p, c);
        p->scan++;
        p->msg_len++;
        if (p->msg_len > p->max_msg && !p->oversized
            && p->state != QS_TOKEN && p->state != QS_TOKEN_STRING
            && p->state != QS_TOKEN_ESCAPE) {
            p->oversized = true;
        }
        if (p->oversized || p->state >= QS_TOKEN) {
            /* Keep nothing of it. */
            p->start = p->scan;
        }
        if (ended) {
            return end_request(p, textp, lenp);
        } else if (p->state == QS_TOKEN && p->token_len
                   && p->token[0] == '"') {
            /* A stray string ended. */
            return end_token(p, textp);
        }
    }
    return QGA_NONE;
}

/* ----------------------------------------------------------------------
 * Requests and responses.
 */

char *
qga_request_parse(const char *text, size_t len, json_t **requestp,
                  json_t **idp)
{
    json_error_t jerr;
    json_t *req = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    *requestp = NULL;
    *idp = NULL;
    if (!req) {
        return xasprintf("JSON parse error, %s", jerr.text);
    }
    if (!json_is_object(req)) {
        json_decref(req);
        return xstrdup("QMP input must be a JSON object");
    }

    json_t *id = json_object_get(req, "id");
    const char *name;
    json_t *v;
    char *error = NULL;

    json_object_foreach (req, name, v) {
        if (strcmp(name, "execute") && strcmp(name, "arguments")
            && strcmp(name, "id")) {
            error = xasprintf("QMP input member '%s' is unexpected", name);
            break;
        }
    }
    if (!error) {
        json_t *execute = json_object_get(req, "execute");
        json_t *args = json_object_get(req, "arguments");
        if (!execute) {
            error = xstrdup("QMP input lacks member 'execute'");
        } else if (!json_is_string(execute)) {
            error = xstrdup("QMP input member 'execute' must be a string");
        } else if (args && !json_is_object(args)) {
            error = xstrdup("QMP input member 'arguments' must be an "
                            "object");
        }
    }
    if (error) {
        *idp = json_incref(id);
        json_decref(req);
        return error;
    }
    *requestp = req;
    *idp = id;
    return NULL;
}

/* Renders 'response' (owned) as one line, with 0xFF before it if
 * 'sentinel'. */
static char *
render(json_t *response, bool sentinel, size_t *lenp)
{
    char *text = json_dumps(response, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    size_t n = strlen(text);
    char *line = xmalloc(n + 3);
    size_t off = 0;

    if (sentinel) {
        line[off++] = (char) QGA_SENTINEL;
    }
    memcpy(line + off, text, n);
    off += n;
    line[off++] = '\n';
    line[off] = '\0';
    *lenp = off;
    free(text);
    json_decref(response);
    return line;
}

char *
qga_response_return(const json_t *value, const json_t *id, bool sentinel,
                    size_t *lenp)
{
    json_t *r = json_object();

    json_object_set(r, "return", (json_t *) value);
    if (id) {
        json_object_set(r, "id", (json_t *) id);
    }
    return render(r, sentinel, lenp);
}

char *
qga_response_error(const char *class, const char *desc, const json_t *id,
                   size_t *lenp)
{
    json_t *d = json_string(desc);
    json_t *r = json_object();

    if (!d) {
        d = json_string("(the error's text is not valid UTF-8)");
    }
    json_object_set_new(r, "error", json_pack("{s:s, s:o}", "class", class,
                                              "desc", d));
    if (id) {
        json_object_set(r, "id", (json_t *) id);
    }
    return render(r, false, lenp);
}
