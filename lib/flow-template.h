/*
 * flow-template: chand's OpenFlow rule templates and their renderer.
 *
 * A template (flows/host.flows, flows/guest.flows; the format is defined in
 * flows/README.md) is text holding ovs-ofctl flow rules with ${NAME}
 * placeholders, grouped in sections: [channel] rules are rendered once per
 * channel, [vid] rules once per distinct vid in use on the bridge, [bridge]
 * rules once per bridge, and [port] rules once per bridge where chand-host
 * uses a chand port (doc/ovs-port.md).  flow_template_parse() checks the whole
 * text (sections, continuation lines, characters, placeholder syntax, that
 * every rule states its priority and actions and no cookie) and keeps it;
 * flow_template_render() substitutes a caller-supplied set of variables into
 * one section's rules and appends the results, each with its cookie, to a
 * list of rendered flows.
 *
 * Cookies: (0x43 << 56) | (24-bit hash of the rendered rule text) << 32 |
 * chan_id, where the hash is 32-bit FNV-1a folded to 24 bits by xor
 * ((h >> 24) ^ (h & 0xffffff)), and chan_id is 0 for [vid], [bridge] and
 * [port] rules.  Every chand flow therefore matches
 * cookie=0x4300000000000000/0xff00000000000000, and a channel's flows match
 * cookie=<chan_id>/0xffffffff.
 *
 * "cookie=0x<16 hex digits>," followed by a rendered text is one valid line
 * for `ovs-ofctl -O OpenFlow13 --bundle add-flows BRIDGE FILE`; such a file
 * may also hold "delete cookie=0x.../-1" lines, and ovs-vswitchd applies the
 * whole file atomically (verified with Open vSwitch 3.1.0).
 *
 * Counters: a rule may be preceded by a directive line "%counter NAME"
 * (NAME: [a-z][a-z0-9_]*, at most FLOW_TEMPLATE_MAX_NAME bytes).  The
 * rendered flow then carries NAME, so that whoever installs the flows can
 * add up the packet counts of every flow with the same counter and chan_id
 * (e.g. "isolation_drops" per channel).  The counter is not part of the
 * rule text and so not of its cookie.
 *
 * The module is pure: no I/O, no logging.  Values are validated by the
 * caller (a MAC is a MAC, and so on); the renderer only refuses values with
 * characters that could change a rule's structure.
 */
#ifndef FLOW_TEMPLATE_H
#define FLOW_TEMPLATE_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* All chand cookies carry this tag in their top byte. */
#define FLOW_TEMPLATE_COOKIE_TAG   UINT64_C(0x4300000000000000)
#define FLOW_TEMPLATE_COOKIE_MASK  UINT64_C(0xff00000000000000)
/* With cookie TAG | chan_id, matches every flow of one channel (chan_id 0:
 * every shared [vid] and [bridge] flow). */
#define FLOW_TEMPLATE_CHANNEL_MASK UINT64_C(0xff000000ffffffff)

/* Limits.  A variable name is [A-Z][A-Z0-9_]*, at most this long. */
#define FLOW_TEMPLATE_MAX_NAME   32
#define FLOW_TEMPLATE_MAX_VALUE  255   /* Bytes in one variable's value. */
#define FLOW_TEMPLATE_MAX_RULE   4096  /* Bytes in one rule, unrendered. */

enum flow_template_section {
    FLOW_TEMPLATE_BRIDGE,       /* [bridge]: once per bridge. */
    FLOW_TEMPLATE_VID,          /* [vid]: once per distinct vid in use. */
    FLOW_TEMPLATE_CHANNEL,      /* [channel]: once per channel. */
    FLOW_TEMPLATE_PORT,         /* [port]: once per bridge, with a chand
                                 * port. */
};
#define FLOW_TEMPLATE_N_SECTIONS 4

enum flow_template_error {
    FLOW_TEMPLATE_OK = 0,
    FLOW_TEMPLATE_ENOMEM,           /* Out of memory. */
    FLOW_TEMPLATE_EINVAL,           /* Bad argument (null, bad section). */
    FLOW_TEMPLATE_ENO_SECTION,      /* Rule before any [section] line. */
    FLOW_TEMPLATE_EBAD_SECTION,     /* Malformed or unknown [section]. */
    FLOW_TEMPLATE_EDUP_SECTION,     /* Same [section] twice. */
    FLOW_TEMPLATE_ECONTINUATION,    /* '\' before EOF, a blank line, a
                                     * comment or a [section]. */
    FLOW_TEMPLATE_EBAD_CHAR,        /* Space, '#', '\', control or non-ASCII
                                     * byte inside a rule. */
    FLOW_TEMPLATE_EVAR_SYNTAX,      /* '$' not starting a valid ${NAME}. */
    FLOW_TEMPLATE_ENO_PRIORITY,     /* Rule without priority=. */
    FLOW_TEMPLATE_ENO_ACTIONS,      /* Rule without actions=. */
    FLOW_TEMPLATE_ECOOKIE,          /* Rule sets its own cookie. */
    FLOW_TEMPLATE_ETOO_LONG,        /* Rule longer than MAX_RULE. */
    FLOW_TEMPLATE_EUNKNOWN_VAR,     /* Template uses a variable the caller
                                     * did not supply. */
    FLOW_TEMPLATE_EMISSING_VALUE,   /* Supplied variable with NULL or empty
                                     * value is used. */
    FLOW_TEMPLATE_EBAD_VALUE,       /* Used value too long or with a byte
                                     * outside [A-Za-z0-9:._/-]. */
    FLOW_TEMPLATE_EBAD_VAR_NAME,    /* Caller supplied an invalid name. */
    FLOW_TEMPLATE_EDUP_VAR,         /* Caller supplied a name twice. */
    FLOW_TEMPLATE_EBAD_CHAN_ID,     /* chan_id 0 for [channel], or not 0 for
                                     * [vid]/[bridge]. */
    FLOW_TEMPLATE_EDUP_COOKIE,      /* Rendered cookie already in the list
                                     * (same rule twice, or a hash
                                     * collision). */
    FLOW_TEMPLATE_EDIRECTIVE,       /* Bad '%' directive line, or one not
                                     * followed by a rule of its section. */
};
#define FLOW_TEMPLATE_N_ERRORS (FLOW_TEMPLATE_EDIRECTIVE + 1)

/* Returns a constant English description of 'error'. */
const char *flow_template_strerror(enum flow_template_error error);

/* Returns "bridge", "vid", "channel" or "port" (or "?" for a bad
 * value). */
const char *flow_template_section_name(enum flow_template_section);

/* Where an error was found, filled in by the functions below when their
 * 'diag' argument is nonnull. */
struct flow_template_diag {
    unsigned int line;          /* 1-based template line, or 0. */
    char detail[48];            /* Offending name or text (truncated), or
                                 * "". */
};

/* A parsed template.  Opaque. */
struct flow_template;

/* Parses the 'len' bytes at 'text' (need not be null-terminated).  On
 * success stores a new template in '*ftp', which the caller owns and frees
 * with flow_template_destroy(), and returns 0.  On error stores NULL in
 * '*ftp', fills '*diag' if nonnull, and returns the error.  Does not keep a
 * reference to 'text'. */
enum flow_template_error flow_template_parse(const char *text, size_t len,
                                             struct flow_template **ftp,
                                             struct flow_template_diag *diag);

/* Frees 'ft'.  Accepts NULL. */
void flow_template_destroy(struct flow_template *ft);

/* Returns the number of rules in 'section' of 'ft'. */
size_t flow_template_n_rules(const struct flow_template *ft,
                             enum flow_template_section section);

/* One variable for rendering.  Both strings are borrowed.
 *
 * A value may hold letters, digits and ":._/-".  An 'action' value, meant
 * for one OpenFlow action generated by the caller (never for text from
 * outside), may also hold "()=", e.g. "controller(id=17224)".  No value
 * may hold ',' or white space, so none can add a match field or an
 * action. */
struct flow_template_var {
    const char *name;           /* E.g. "VID". */
    const char *value;          /* E.g. "4094". */
    bool action;                /* Value is one action: "()=" allowed. */
};

/* One rendered flow. */
struct flow_template_flow {
    enum flow_template_section section;
    unsigned int line;          /* Template line where the rule starts. */
    uint32_t chan_id;           /* 0 for [vid] and [bridge] rules. */
    uint64_t cookie;
    char *text;                 /* Rendered rule without cookie; owned by
                                 * the containing list. */
    const char *counter;        /* "%counter" name, or NULL; borrowed from
                                 * the template, valid while it lives. */
};

/* A growable list of rendered flows.  Initialize with
 * FLOW_TEMPLATE_FLOWS_INITIALIZER or flow_template_flows_init(); free with
 * flow_template_flows_destroy(). */
struct flow_template_flows {
    struct flow_template_flow *flows;
    size_t n;
    size_t allocated;
};
#define FLOW_TEMPLATE_FLOWS_INITIALIZER { NULL, 0, 0 }

void flow_template_flows_init(struct flow_template_flows *);

/* Frees every flow's text and the array, and leaves 'flows' empty and
 * reusable. */
void flow_template_flows_destroy(struct flow_template_flows *flows);

/* Renders every rule of 'section' of 'ft', in template order, substituting
 * the 'n_vars' variables in 'vars', and appends the results to 'flows'.
 * 'chan_id' must be nonzero for FLOW_TEMPLATE_CHANNEL and 0 otherwise.
 * Variables the section does not use are ignored (their names must still be
 * valid and distinct).  A rendered flow whose cookie is already in 'flows'
 * is an error, so rendering every section of a bridge into one list checks
 * that every cookie is unique.
 *
 * Returns 0 on success.  On error 'flows' is unchanged, '*diag' (if
 * nonnull) says which line and variable, and the error is returned.
 * 'vars' is borrowed; the appended texts are owned by 'flows'. */
enum flow_template_error flow_template_render(
    const struct flow_template *ft, enum flow_template_section section,
    uint32_t chan_id, const struct flow_template_var *vars, size_t n_vars,
    struct flow_template_flows *flows, struct flow_template_diag *diag);

/* Returns the cookie for a rule whose rendered text (without cookie) is the
 * 'len' bytes at 'text', for channel 'chan_id' (0 for shared rules). */
uint64_t flow_template_cookie(const char *text, size_t len, uint32_t chan_id);

/* Returns the 24-bit folded FNV-1a hash of the 'len' bytes at 'data'. */
uint32_t flow_template_hash24(const void *data, size_t len);

/* Returns true if 'cookie' is one of chand's (top byte 0x43). */
bool flow_template_is_chand_cookie(uint64_t cookie);

/* Returns the chan-id in the low 32 bits of 'cookie' (0: shared rule). */
uint32_t flow_template_cookie_chan_id(uint64_t cookie);

/* Each of these returns a new null-terminated string without newline, which
 * the caller frees with free(), or NULL if out of memory:
 *
 *   flow_template_format_flow():   "cookie=0x<16 hex>,<text>"
 *   flow_template_format_add():    "add cookie=0x<16 hex>,<text>"
 *   flow_template_format_delete(): "delete cookie=0x<16 hex>/-1"
 *   flow_template_format_delete_masked():
 *                                  "delete cookie=0x<16 hex>/0x<16 hex>"
 *
 * E.g. flow_template_format_delete_masked(FLOW_TEMPLATE_COOKIE_TAG | id,
 * FLOW_TEMPLATE_CHANNEL_MASK) deletes all of channel 'id''s flows, and
 * (FLOW_TEMPLATE_COOKIE_TAG, FLOW_TEMPLATE_COOKIE_MASK) all of chand's.
 * 'flow' is borrowed. */
char *flow_template_format_flow(const struct flow_template_flow *flow);
char *flow_template_format_add(const struct flow_template_flow *flow);
char *flow_template_format_delete(uint64_t cookie);
char *flow_template_format_delete_masked(uint64_t cookie, uint64_t mask);

/* Returns a new string holding a whole file for `ovs-ofctl -O OpenFlow13
 * --bundle add-flows BRIDGE FILE`: one delete line for each of the 'n_del'
 * cookies in 'del', then one add line for each flow in 'add' (may be NULL),
 * each line ending in '\n'.  ovs-vswitchd applies it as one atomic
 * transaction, deletes first.  The caller frees the result with free();
 * NULL if out of memory.  Arguments are borrowed. */
char *flow_template_format_bundle(const uint64_t *del, size_t n_del,
                                  const struct flow_template_flows *add);

#endif /* flow-template.h */
