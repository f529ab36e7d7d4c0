/* Unit tests for lib/flow-template: parsing, rendering, cookies, output
 * lines, and the real flows/host.flows and flows/guest.flows templates.
 *
 * The real templates are read from FLOWS_DIR (a -D set by automake.mk) or,
 * if the environment variable CHAND_FLOWS_DIR is set, from there. */

#include <config.h>
#include "unit.h"
#include "flow-template.h"
#include "chan-flows.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FLOWS_DIR
#define FLOWS_DIR "flows"
#endif

#define N_ELEMS(A) (sizeof (A) / sizeof (A)[0])

/* Parses null-terminated 'text'; returns the template or NULL, storing the
 * error in '*errorp' and the diagnostics in '*diag'. */
static struct flow_template *
parse_str(const char *text, enum flow_template_error *errorp,
          struct flow_template_diag *diag)
{
    struct flow_template *ft = (struct flow_template *) 0x1;
    enum flow_template_error error = flow_template_parse(text, strlen(text),
                                                         &ft, diag);
    if (errorp) {
        *errorp = error;
    }
    CU_ASSERT((error == FLOW_TEMPLATE_OK) == (ft != NULL));
    return ft;
}

/* Reads FLOWS_DIR/'name' into a new null-terminated buffer; NULL if it
 * cannot be read. */
static char *
read_flows_file(const char *name, size_t *lenp)
{
    const char *dir = getenv("CHAND_FLOWS_DIR");
    char path[4096];
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir ? dir : FLOWS_DIR, name);
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        char *p = realloc(buf, len + 4097);
        if (!p) {
            free(buf);
            fclose(f);
            return NULL;
        }
        buf = p;
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096) {
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    *lenp = len;
    return buf;
}

/* ------------------------------------------------------------------------ */

static void
test_hash_vectors(void)
{
    /* FNV-1a 32: "" 0x811c9dc5, "a" 0xe40c292c, "foobar" 0xbf9cf968;
     * folded (h >> 24) ^ (h & 0xffffff). */
    CU_ASSERT_EQUAL(flow_template_hash24("", 0), 0x1c9d44);
    CU_ASSERT_EQUAL(flow_template_hash24("a", 1), 0x0c29c8);
    CU_ASSERT_EQUAL(flow_template_hash24("foobar", 6), 0x9cf9d7);
    CU_ASSERT_EQUAL(flow_template_hash24("priority=1,actions=drop", 23),
                    0x66134d);
}

static void
test_cookie(void)
{
    const char *t = "priority=1,actions=drop";
    uint64_t c = flow_template_cookie(t, strlen(t), 7);

    CU_ASSERT_EQUAL(c, UINT64_C(0x4366134d00000007));
    CU_ASSERT(flow_template_is_chand_cookie(c));
    CU_ASSERT_EQUAL(flow_template_cookie_chan_id(c), 7);

    c = flow_template_cookie(t, strlen(t), 0xffffffff);
    CU_ASSERT_EQUAL(c, UINT64_C(0x4366134dffffffff));
    CU_ASSERT_EQUAL(flow_template_cookie_chan_id(c), 0xffffffff);
    c = flow_template_cookie(t, strlen(t), 0);
    CU_ASSERT_EQUAL(c, UINT64_C(0x4366134d00000000));
    CU_ASSERT_EQUAL(flow_template_cookie_chan_id(c), 0);

    CU_ASSERT(!flow_template_is_chand_cookie(0));
    CU_ASSERT(!flow_template_is_chand_cookie(UINT64_C(0x4200000000000007)));
    CU_ASSERT(!flow_template_is_chand_cookie(UINT64_C(0xc300000000000000)));
    CU_ASSERT(flow_template_is_chand_cookie(UINT64_C(0x43ffffffffffffff)));
}

static void
test_strerror(void)
{
    for (int i = FLOW_TEMPLATE_OK; i < FLOW_TEMPLATE_N_ERRORS; i++) {
        const char *s = flow_template_strerror(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT(strlen(s) > 5);
        CU_ASSERT(strcmp(s, "unknown flow template error"));
        for (int j = FLOW_TEMPLATE_OK; j < i; j++) {
            CU_ASSERT(strcmp(s, flow_template_strerror(j)));
        }
    }
    CU_ASSERT_STRING_EQUAL(flow_template_strerror(999),
                           "unknown flow template error");
    CU_ASSERT_STRING_EQUAL(flow_template_section_name(FLOW_TEMPLATE_BRIDGE),
                           "bridge");
    CU_ASSERT_STRING_EQUAL(flow_template_section_name(FLOW_TEMPLATE_VID),
                           "vid");
    CU_ASSERT_STRING_EQUAL(
        flow_template_section_name(FLOW_TEMPLATE_CHANNEL), "channel");
    CU_ASSERT_STRING_EQUAL(flow_template_section_name(FLOW_TEMPLATE_PORT),
                           "port");
    CU_ASSERT_STRING_EQUAL(flow_template_section_name(7), "?");
}

/* ------------------------------------------------------------------------ */

static const char basic_template[] =
    "# A comment.\n"
    "\n"
    "[bridge]\n"
    "  # Indented comment.\n"
    "priority=1,actions=drop\n"
    "[channel]\n"
    "priority=100,in_port=${PORT_A},dl_vlan=${VID}, \\\n"
    "    actions=mod_vlan_vid:${VID},output:${PORT_B}\t\\\n"
    "\n"
    "\r\n";
/* The last rule above is deliberately broken (continuation into a blank
 * line); basic_good is the good part. */

static const char basic_good[] =
    "# A comment.\n"
    "\n"
    "[bridge]\n"
    "  # Indented comment.\n"
    "priority=1,actions=drop\n"
    "[channel]\n"
    "priority=100,in_port=${PORT_A},dl_vlan=${VID}, \\\n"
    "    actions=mod_vlan_vid:${VID},output:${PORT_B}\n"
    "\t priority=50,in_port=${PORT_A},actions=drop \r\n"
    "[vid]\n"
    "priority=10,dl_vlan=${VID},actions=drop";   /* No final newline. */

static void
test_parse_basic(void)
{
    enum flow_template_error error;
    struct flow_template_diag diag;
    struct flow_template *ft;

    ft = parse_str(basic_template, &error, &diag);
    CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_ECONTINUATION);
    CU_ASSERT_EQUAL(diag.line, 9);

    ft = parse_str(basic_good, &error, &diag);
    CU_ASSERT_EQUAL_FATAL(error, FLOW_TEMPLATE_OK);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_BRIDGE), 1);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_CHANNEL), 2);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_VID), 1);
    CU_ASSERT_EQUAL(flow_template_n_rules(NULL, FLOW_TEMPLATE_VID), 0);

    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    const struct flow_template_var vars[] = {
        { "VID", "4094" }, { "PORT_A", "3" }, { "PORT_B", "LOCAL" },
        { "UNUSED", NULL },
    };
    error = flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 9, vars,
                                 N_ELEMS(vars), &flows, &diag);
    CU_ASSERT_EQUAL_FATAL(error, FLOW_TEMPLATE_OK);
    CU_ASSERT_EQUAL_FATAL(flows.n, 2);
    CU_ASSERT_STRING_EQUAL(flows.flows[0].text,
                           "priority=100,in_port=3,dl_vlan=4094,"
                           "actions=mod_vlan_vid:4094,output:LOCAL");
    CU_ASSERT_EQUAL(flows.flows[0].line, 7);
    CU_ASSERT_EQUAL(flows.flows[0].chan_id, 9);
    CU_ASSERT_EQUAL(flows.flows[0].section, FLOW_TEMPLATE_CHANNEL);
    CU_ASSERT_EQUAL(flows.flows[0].cookie,
                    flow_template_cookie(flows.flows[0].text,
                                         strlen(flows.flows[0].text), 9));
    CU_ASSERT_STRING_EQUAL(flows.flows[1].text,
                           "priority=50,in_port=3,actions=drop");
    CU_ASSERT_EQUAL(flows.flows[1].line, 9);

    error = flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0, NULL, 0,
                                 &flows, &diag);
    CU_ASSERT_EQUAL_FATAL(error, FLOW_TEMPLATE_OK);
    CU_ASSERT_EQUAL_FATAL(flows.n, 3);
    CU_ASSERT_STRING_EQUAL(flows.flows[2].text, "priority=1,actions=drop");
    CU_ASSERT_EQUAL(flows.flows[2].cookie, UINT64_C(0x4366134d00000000));
    CU_ASSERT_EQUAL(flows.flows[2].chan_id, 0);
    CU_ASSERT_EQUAL(flows.flows[2].section, FLOW_TEMPLATE_BRIDGE);

    error = flow_template_render(ft, FLOW_TEMPLATE_VID, 0, vars, 1, &flows,
                                 &diag);
    CU_ASSERT_EQUAL_FATAL(error, FLOW_TEMPLATE_OK);
    CU_ASSERT_EQUAL_FATAL(flows.n, 4);
    CU_ASSERT_STRING_EQUAL(flows.flows[3].text,
                           "priority=10,dl_vlan=4094,actions=drop");

    /* Same vid again: same text, same cookie: refused, list unchanged. */
    error = flow_template_render(ft, FLOW_TEMPLATE_VID, 0, vars, 1, &flows,
                                 &diag);
    CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_EDUP_COOKIE);
    CU_ASSERT_EQUAL(diag.line, 11);
    CU_ASSERT_EQUAL(flows.n, 4);

    /* Another channel with the same values: different cookies. */
    error = flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 10, vars,
                                 N_ELEMS(vars), &flows, NULL);
    CU_ASSERT_EQUAL_FATAL(error, FLOW_TEMPLATE_OK);
    CU_ASSERT_EQUAL_FATAL(flows.n, 6);
    CU_ASSERT_STRING_EQUAL(flows.flows[4].text, flows.flows[0].text);
    CU_ASSERT_EQUAL(flows.flows[4].cookie,
                    (flows.flows[0].cookie & ~UINT64_C(0xffffffff)) | 10);

    flow_template_flows_destroy(&flows);
    CU_ASSERT_EQUAL(flows.n, 0);
    CU_ASSERT_PTR_NULL(flows.flows);
    flow_template_flows_destroy(&flows);    /* Idempotent. */
    flow_template_flows_destroy(NULL);
    flow_template_destroy(ft);
    flow_template_destroy(NULL);
}

static void
test_parse_empty(void)
{
    struct flow_template *ft = NULL;

    CU_ASSERT_EQUAL(flow_template_parse(NULL, 0, &ft, NULL),
                    FLOW_TEMPLATE_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ft);
    for (int s = 0; s < FLOW_TEMPLATE_N_SECTIONS; s++) {
        CU_ASSERT_EQUAL(flow_template_n_rules(ft, s), 0);
    }

    /* An empty section renders nothing and succeeds. */
    struct flow_template_flows flows;
    flow_template_flows_init(&flows);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 1, NULL,
                                         0, &flows, NULL), FLOW_TEMPLATE_OK);
    CU_ASSERT_EQUAL(flows.n, 0);
    flow_template_destroy(ft);

    ft = parse_str("# only comments\n\n[vid]\n[channel]\n[bridge]\n", NULL,
                   NULL);
    CU_ASSERT_PTR_NOT_NULL(ft);
    flow_template_destroy(ft);

    CU_ASSERT_EQUAL(flow_template_parse("x", 1, NULL, NULL),
                    FLOW_TEMPLATE_EINVAL);
    ft = (struct flow_template *) 0x1;
    CU_ASSERT_EQUAL(flow_template_parse(NULL, 1, &ft, NULL),
                    FLOW_TEMPLATE_EINVAL);
    CU_ASSERT_PTR_NULL(ft);
}

struct bad_template {
    const char *text;
    enum flow_template_error error;
    unsigned int line;
};

static const struct bad_template bad_templates[] = {
    /* "%counter NAME" directives. */
    { "%counter\n", FLOW_TEMPLATE_EDIRECTIVE, 1 },
    { "%counter x\n[bridge]\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 1 },
    { "[bridge]\n%counter x\n", FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%counter x\n\n# c\n[vid]\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%counter x\n%counter y\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 3 },
    { "[bridge]\n%counter X\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%counter 9x\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%counter _x\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%counter x y\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%counter x-y\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%counterx\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%count x\npriority=1,actions=drop\n",
      FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%\npriority=1,actions=drop\n", FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "[bridge]\n%counter abcdefghijklmnopqrstuvwxyz0123456\n"
      "priority=1,actions=drop\n", FLOW_TEMPLATE_EDIRECTIVE, 2 },
    { "priority=1,actions=drop\n", FLOW_TEMPLATE_ENO_SECTION, 1 },
    { "# c\n\npriority=1,actions=drop\n[bridge]\n",
      FLOW_TEMPLATE_ENO_SECTION, 3 },
    { "[bridges]\n", FLOW_TEMPLATE_EBAD_SECTION, 1 },
    { "[Bridge]\n", FLOW_TEMPLATE_EBAD_SECTION, 1 },
    { "[bridge\n", FLOW_TEMPLATE_EBAD_SECTION, 1 },
    { "[]\n", FLOW_TEMPLATE_EBAD_SECTION, 1 },
    { "[\n", FLOW_TEMPLATE_EBAD_SECTION, 1 },
    { "[ bridge]\n", FLOW_TEMPLATE_EBAD_SECTION, 1 },
    { "[bridge] # comment\n", FLOW_TEMPLATE_EBAD_SECTION, 1 },
    { "[vid]\n[bridge]\n\n[vid]\n", FLOW_TEMPLATE_EDUP_SECTION, 4 },
    { "[vid]\npriority=1,\\\n", FLOW_TEMPLATE_ECONTINUATION, 2 },
    { "[vid]\npriority=1,\\", FLOW_TEMPLATE_ECONTINUATION, 2 },
    { "[vid]\npriority=1,\\\n\nactions=drop\n",
      FLOW_TEMPLATE_ECONTINUATION, 3 },
    { "[vid]\npriority=1,\\\n# c\nactions=drop\n",
      FLOW_TEMPLATE_ECONTINUATION, 3 },
    { "[vid]\npriority=1,\\\n[bridge]\nactions=drop\n",
      FLOW_TEMPLATE_ECONTINUATION, 3 },
    { "[vid]\npriority=1 actions=drop\n", FLOW_TEMPLATE_EBAD_CHAR, 2 },
    { "[vid]\npriority=1,\tactions=drop\n", FLOW_TEMPLATE_EBAD_CHAR, 2 },
    { "[vid]\npriority=1,actions=drop # why\n", FLOW_TEMPLATE_EBAD_CHAR, 2 },
    { "[vid]\npriority=1,actions=drop#\n", FLOW_TEMPLATE_EBAD_CHAR, 2 },
    { "[vid]\npriority=1,act\\ions=drop\n", FLOW_TEMPLATE_EBAD_CHAR, 2 },
    { "[vid]\npriority=1,actions=dr\x01op\n", FLOW_TEMPLATE_EBAD_CHAR, 2 },
    { "[vid]\npriority=1,actions=dr\x7fop\n", FLOW_TEMPLATE_EBAD_CHAR, 2 },
    { "[vid]\npriority=1,actions=dr\xc3\xa9op\n", FLOW_TEMPLATE_EBAD_CHAR,
      2 },
    { "[vid]\npriority=1,\\\n  a=b c,actions=drop\n",
      FLOW_TEMPLATE_EBAD_CHAR, 2 },
    { "[vid]\npriority=1,dl_vlan=$VID,actions=drop\n",
      FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,dl_vlan=${VID,actions=drop\n",
      FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,actions=drop,${VID", FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,actions=drop,$", FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,actions=drop,${", FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,actions=drop,${}", FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,dl_vlan=${}x,actions=drop\n",
      FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,dl_vlan=${vid},actions=drop\n",
      FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,dl_vlan=${1VID},actions=drop\n",
      FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,dl_vlan=${_VID},actions=drop\n",
      FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,dl_vlan=${V-D},actions=drop\n",
      FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,dl_vlan=$${VID},actions=drop\n",
      FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\npriority=1,dl_vlan=${ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456},"
      "actions=drop\n", FLOW_TEMPLATE_EVAR_SYNTAX, 2 },
    { "[vid]\ndl_vlan=1,actions=drop\n", FLOW_TEMPLATE_ENO_PRIORITY, 2 },
    { "[vid]\nxpriority=1,actions=drop\n", FLOW_TEMPLATE_ENO_PRIORITY, 2 },
    { "[vid]\nactions=drop,priority=1\n", FLOW_TEMPLATE_ENO_PRIORITY, 2 },
    { "[vid]\npriority=1,dl_vlan=1\n", FLOW_TEMPLATE_ENO_ACTIONS, 2 },
    { "[vid]\npriority=1,xactions=drop\n", FLOW_TEMPLATE_ENO_ACTIONS, 2 },
    { "[vid]\npriority=1,actions:drop\n", FLOW_TEMPLATE_ENO_ACTIONS, 2 },
    { "[vid]\n\\\n\\\n", FLOW_TEMPLATE_ECONTINUATION, 3 },
    { "[vid]\ncookie=0x1,priority=1,actions=drop\n",
      FLOW_TEMPLATE_ECOOKIE, 2 },
    { "[vid]\npriority=1,cookie=${C},actions=drop\n",
      FLOW_TEMPLATE_ECOOKIE, 2 },
    { "[vid]\n\n# c\npriority=1,\\\n  cookie=0x1,actions=drop\n",
      FLOW_TEMPLATE_ECOOKIE, 4 },
};

static void
test_parse_errors(void)
{
    for (size_t i = 0; i < N_ELEMS(bad_templates); i++) {
        const struct bad_template *b = &bad_templates[i];
        struct flow_template_diag diag;
        enum flow_template_error error;
        struct flow_template *ft = parse_str(b->text, &error, &diag);

        if (error != b->error || diag.line != b->line) {
            fprintf(stderr, "bad_templates[%zu]: got %d (%s) line %u, "
                    "expected %d line %u\n", i, error,
                    flow_template_strerror(error), diag.line, b->error,
                    b->line);
        }
        CU_ASSERT_EQUAL(error, b->error);
        CU_ASSERT_EQUAL(diag.line, b->line);
        CU_ASSERT_PTR_NULL(ft);
        flow_template_destroy(ft);
    }
}

/* Things that look odd but are fine. */
static void
test_parse_accepts(void)
{
    static const char *const good[] = {
        /* "cookie" or "priority" inside actions do not count. */
        "[vid]\npriority=1,actions=learn(cookie=0x5,priority=3)\n",
        /* Placeholders anywhere, including the priority. */
        "[vid]\npriority=${P},actions=${A}\n",
        /* A name of exactly 32 characters. */
        ("[vid]\npriority=1,dl_vlan=${ABCDEFGHIJKLMNOPQRSTUVWXYZ012345},"
         "actions=drop\n"),
        /* CRLF, trailing blanks, backslash with spaces before it. */
        "[vid]\r\npriority=1,   \\   \r\n   actions=drop  \r\n",
        /* Leading blank lines, comments and whitespace everywhere. */
        "\n\n  \t\n# x\n   [channel]   \n\tpriority=1,actions=drop\n",
        /* Non-ASCII and control bytes in comments. */
        "# caf\xc3\xa9 \x01\n[bridge]\npriority=1,actions=drop\n",
        /* A counter with blanks around, comments before its rule, a name
         * of exactly 32 characters. */
        ("[bridge]\n  %counter \t a_1  \n# c\n\npriority=1,actions=drop\n"
         "%counter abcdefghijklmnopqrstuvwxyz012345\n"
         "priority=2,actions=drop\n"),
    };
    for (size_t i = 0; i < N_ELEMS(good); i++) {
        enum flow_template_error error;
        struct flow_template_diag diag;
        struct flow_template *ft = parse_str(good[i], &error, &diag);

        if (error) {
            fprintf(stderr, "good[%zu]: %s (line %u, '%s')\n", i,
                    flow_template_strerror(error), diag.line, diag.detail);
        }
        CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_OK);
        flow_template_destroy(ft);
    }

    /* The joined text keeps no whitespace. */
    struct flow_template *ft = parse_str(good[3], NULL, NULL);
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ft);
    CU_ASSERT_EQUAL_FATAL(flow_template_render(ft, FLOW_TEMPLATE_VID, 0,
                                               NULL, 0, &flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flows.n, 1);
    CU_ASSERT_STRING_EQUAL(flows.flows[0].text, "priority=1,actions=drop");
    flow_template_flows_destroy(&flows);
    flow_template_destroy(ft);
}

static void
test_parse_nul_byte(void)
{
    static const char text[] = "[vid]\npriority=1,actions=dr\0op\n";
    struct flow_template_diag diag;
    struct flow_template *ft;

    CU_ASSERT_EQUAL(flow_template_parse(text, sizeof text - 1, &ft, &diag),
                    FLOW_TEMPLATE_EBAD_CHAR);
    CU_ASSERT_EQUAL(diag.line, 2);
    CU_ASSERT_STRING_EQUAL(diag.detail, "byte 0x00");
    CU_ASSERT_PTR_NULL(ft);

    /* A NUL in a comment is ignored, like any other comment byte. */
    static const char text2[] = "# a\0b\n[vid]\npriority=1,actions=drop\n";
    CU_ASSERT_EQUAL(flow_template_parse(text2, sizeof text2 - 1, &ft, NULL),
                    FLOW_TEMPLATE_OK);
    flow_template_destroy(ft);
}

static void
test_parse_too_long(void)
{
    size_t n = FLOW_TEMPLATE_MAX_RULE;
    char *text = malloc(n + 64);
    struct flow_template_diag diag;
    struct flow_template *ft;

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);

    /* Exactly MAX_RULE bytes: accepted. */
    strcpy(text, "[vid]\npriority=1,actions=");
    size_t used = strlen("priority=1,actions=");
    size_t off = strlen(text);
    memset(text + off, 'x', n - used);
    text[off + n - used] = '\0';
    ft = parse_str(text, NULL, &diag);
    CU_ASSERT_PTR_NOT_NULL(ft);
    flow_template_destroy(ft);

    /* One more, split over two lines: refused, reported at the start. */
    strcpy(text, "[vid]\npriority=1,\\\nactions=");
    off = strlen(text);
    memset(text + off, 'x', n - used + 1);
    text[off + n - used + 1] = '\0';
    enum flow_template_error error;
    ft = parse_str(text, &error, &diag);
    CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_ETOO_LONG);
    CU_ASSERT_EQUAL(diag.line, 2);
    free(text);
}

static void
test_diag_detail(void)
{
    struct flow_template_diag diag;
    enum flow_template_error error;

    parse_str("[vid]\npriority=1,dl_vlan=${vid},actions=drop\n", &error,
              &diag);
    CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_EVAR_SYNTAX);
    CU_ASSERT_STRING_EQUAL(diag.detail, "${vid},actions=drop");

    parse_str("[nope]\n", &error, &diag);
    CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_EBAD_SECTION);
    CU_ASSERT_STRING_EQUAL(diag.detail, "[nope]");

    parse_str("[vid]\npriority=1,cookie=0x5,actions=drop\n", &error, &diag);
    CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_ECOOKIE);
    CU_ASSERT_STRING_EQUAL(diag.detail, "cookie=0x5");

    /* Long details are truncated, still terminated. */
    parse_str("[vid]\npriority=1,actions=drop,$xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", &error, &diag);
    CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_EVAR_SYNTAX);
    CU_ASSERT_EQUAL(strlen(diag.detail), sizeof diag.detail - 1);
}

/* ------------------------------------------------------------------------ */

static const char render_template[] =
    "[channel]\n"
    "priority=100,in_port=${A},actions=output:${B}\n"
    "priority=90,in_port=${C},actions=drop\n"
    "[vid]\n"
    "priority=10,dl_vlan=${VID},actions=drop\n"
    "[bridge]\n"
    "priority=1,dl_dst=${MAC},actions=drop\n";

/* Renders 'section' with 'vars' and checks that it fails with 'expected'
 * at 'line' naming 'name', leaving a list with one flow untouched. */
static void
expect_render_error(const struct flow_template *ft,
                    enum flow_template_section section, uint32_t chan_id,
                    const struct flow_template_var *vars, size_t n_vars,
                    enum flow_template_error expected, unsigned int line,
                    const char *name)
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    const struct flow_template_var ok_vars[] = { { "MAC", "0a:c4:0:0:0:0" } };
    struct flow_template_diag diag;

    CU_ASSERT_EQUAL_FATAL(flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0,
                                               ok_vars, 1, &flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flows.n, 1);
    char *before = strdup(flows.flows[0].text);

    enum flow_template_error error = flow_template_render(
        ft, section, chan_id, vars, n_vars, &flows, &diag);
    if (error != expected) {
        fprintf(stderr, "expected %s, got %s\n",
                flow_template_strerror(expected),
                flow_template_strerror(error));
    }
    CU_ASSERT_EQUAL(error, expected);
    CU_ASSERT_EQUAL(diag.line, line);
    if (name) {
        CU_ASSERT_STRING_EQUAL(diag.detail, name);
    }
    CU_ASSERT_EQUAL(flows.n, 1);
    CU_ASSERT_STRING_EQUAL(flows.flows[0].text, before);
    free(before);
    flow_template_flows_destroy(&flows);
}

static void
test_render_errors(void)
{
    struct flow_template *ft = parse_str(render_template, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ft);
    enum flow_template_section ch = FLOW_TEMPLATE_CHANNEL;

    /* B missing: the first rule already fails. */
    const struct flow_template_var v1[] = { { "A", "1" } };
    expect_render_error(ft, ch, 5, v1, 1, FLOW_TEMPLATE_EUNKNOWN_VAR, 2, "B");

    /* The second rule fails after the first rendered: still atomic. */
    const struct flow_template_var v2[] = { { "A", "1" }, { "B", "2" },
                                            { "C", "2,x" } };
    expect_render_error(ft, ch, 5, v2, 3, FLOW_TEMPLATE_EBAD_VALUE, 3, "C");
    const struct flow_template_var v2b[] = { { "A", "1" }, { "B", "2" },
                                             { "C", NULL } };
    expect_render_error(ft, ch, 5, v2b, 3, FLOW_TEMPLATE_EMISSING_VALUE, 3,
                        "C");
    const struct flow_template_var v2c[] = { { "A", "1" }, { "B", "2" },
                                             { "C", "" } };
    expect_render_error(ft, ch, 5, v2c, 3, FLOW_TEMPLATE_EMISSING_VALUE, 3,
                        "C");
    const struct flow_template_var v2d[] = { { "A", "1" }, { "B", "2" } };
    expect_render_error(ft, ch, 5, v2d, 2, FLOW_TEMPLATE_EUNKNOWN_VAR, 3,
                        "C");

    /* Values that would change the rule's structure. */
    static const char *const bad_values[] = {
        "1,actions=NORMAL", "1 2", "1\t", "1\n", "${A}", "$A", "#", "a\\b",
        "a=b", "(1)", "\x80", "a\"b", "a'b", "a;b", "1*2",
    };
    for (size_t i = 0; i < N_ELEMS(bad_values); i++) {
        const struct flow_template_var v[] = {
            { "A", bad_values[i] }, { "B", "2" }, { "C", "3" },
        };
        expect_render_error(ft, ch, 5, v, 3, FLOW_TEMPLATE_EBAD_VALUE, 2,
                            "A");
    }
    /* An action value may also hold "()=", and nothing else more. */
    const struct flow_template_var va[] = {
        { "A", "1" }, { "B", "controller(id=17224)", true }, { "C", "3" },
    };
    struct flow_template_flows act = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    CU_ASSERT_EQUAL_FATAL(flow_template_render(ft, ch, 5, va, 3, &act, NULL),
                          0);
    CU_ASSERT_STRING_EQUAL(act.flows[0].text, "priority=100,in_port=1,"
                           "actions=output:controller(id=17224)");
    flow_template_flows_destroy(&act);
    static const char *const bad_actions[] = {
        "controller(id=1),NORMAL", "a b", "${A}", "#", "a;b", "a\"b",
    };
    for (size_t i = 0; i < N_ELEMS(bad_actions); i++) {
        const struct flow_template_var v[] = {
            { "A", "1" }, { "B", bad_actions[i], true }, { "C", "3" },
        };
        expect_render_error(ft, ch, 5, v, 3, FLOW_TEMPLATE_EBAD_VALUE, 2,
                            "B");
    }

    char long_value[FLOW_TEMPLATE_MAX_VALUE + 2];
    memset(long_value, '1', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    const struct flow_template_var v3[] = { { "A", long_value },
                                            { "B", "2" }, { "C", "3" } };
    expect_render_error(ft, ch, 5, v3, 3, FLOW_TEMPLATE_EBAD_VALUE, 2, "A");
    long_value[FLOW_TEMPLATE_MAX_VALUE] = '\0';     /* Just fits. */
    struct flow_template_flows fits = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    CU_ASSERT_EQUAL(flow_template_render(ft, ch, 5, v3, 3, &fits, NULL), 0);
    flow_template_flows_destroy(&fits);

    /* Bad or duplicate names supplied, even if unused. */
    static const char *const bad_names[] = {
        "", "a", "1A", "_A", "A-B", "A B", "A$",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
    };
    for (size_t i = 0; i < N_ELEMS(bad_names); i++) {
        const struct flow_template_var v[] = {
            { "A", "1" }, { "B", "2" }, { "C", "3" }, { bad_names[i], "3" },
        };
        expect_render_error(ft, ch, 5, v, 4, FLOW_TEMPLATE_EBAD_VAR_NAME, 0,
                            bad_names[i]);
    }
    const struct flow_template_var v4[] = { { "A", "1" }, { NULL, "2" } };
    expect_render_error(ft, ch, 5, v4, 2, FLOW_TEMPLATE_EBAD_VAR_NAME, 0, "");
    const struct flow_template_var v5[] = { { "A", "1" }, { "B", "2" },
                                            { "A", "1" } };
    expect_render_error(ft, ch, 5, v5, 3, FLOW_TEMPLATE_EDUP_VAR, 0, "A");

    /* chan_id rules. */
    const struct flow_template_var ok[] = { { "A", "1" }, { "B", "2" },
                                            { "C", "3" }, { "VID", "4094" },
                                            { "MAC", "0a:c4:00:00:00:00" } };
    expect_render_error(ft, ch, 0, ok, 5, FLOW_TEMPLATE_EBAD_CHAN_ID, 0,
                        NULL);
    expect_render_error(ft, FLOW_TEMPLATE_VID, 1, ok, 5,
                        FLOW_TEMPLATE_EBAD_CHAN_ID, 0, NULL);
    expect_render_error(ft, FLOW_TEMPLATE_BRIDGE, 1, ok, 5,
                        FLOW_TEMPLATE_EBAD_CHAN_ID, 0, NULL);

    /* Bad arguments. */
    expect_render_error(ft, FLOW_TEMPLATE_N_SECTIONS, 0, ok, 5,
                        FLOW_TEMPLATE_EINVAL, 0, NULL);
    expect_render_error(ft, (enum flow_template_section) -1, 0, ok, 5,
                        FLOW_TEMPLATE_EINVAL, 0, NULL);
    expect_render_error(ft, ch, 5, NULL, 2, FLOW_TEMPLATE_EINVAL, 0, NULL);
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    CU_ASSERT_EQUAL(flow_template_render(NULL, ch, 5, ok, 5, &flows, NULL),
                    FLOW_TEMPLATE_EINVAL);
    CU_ASSERT_EQUAL(flow_template_render(ft, ch, 5, ok, 5, NULL, NULL),
                    FLOW_TEMPLATE_EINVAL);

    /* Good: allowed value characters, every section. */
    const struct flow_template_var good[] = {
        { "A", "aZ09:._/-" }, { "B", "0x1/0xffff" }, { "C", "LOCAL" },
        { "VID", "4094" }, { "MAC", "0a:c4:00:00:00:00" },
    };
    CU_ASSERT_EQUAL(flow_template_render(ft, ch, 0xffffffff, good, 5,
                                         &flows, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_VID, 0, good, 5,
                                         &flows, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0, good,
                                         5, &flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flows.n, 4);
    CU_ASSERT_STRING_EQUAL(flows.flows[0].text,
                           "priority=100,in_port=aZ09:._/-,"
                           "actions=output:0x1/0xffff");
    CU_ASSERT_EQUAL(flows.flows[0].cookie & 0xffffffff, 0xffffffff);
    CU_ASSERT_STRING_EQUAL(flows.flows[3].text,
                           "priority=1,dl_dst=0a:c4:00:00:00:00,"
                           "actions=drop");
    /* Same channel twice: refused. */
    CU_ASSERT_EQUAL(flow_template_render(ft, ch, 0xffffffff, good, 5,
                                         &flows, NULL),
                    FLOW_TEMPLATE_EDUP_COOKIE);
    CU_ASSERT_EQUAL(flows.n, 4);
    flow_template_flows_destroy(&flows);

    /* Two identical rules in one section collide within one render. */
    struct flow_template *dup = parse_str(
        "[bridge]\npriority=1,actions=drop\npriority=1,actions=drop\n",
        NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dup);
    struct flow_template_diag diag;
    CU_ASSERT_EQUAL(flow_template_render(dup, FLOW_TEMPLATE_BRIDGE, 0, NULL,
                                         0, &flows, &diag),
                    FLOW_TEMPLATE_EDUP_COOKIE);
    CU_ASSERT_EQUAL(diag.line, 3);
    CU_ASSERT_STRING_EQUAL(diag.detail, "0x4366134d00000000");
    CU_ASSERT_EQUAL(flows.n, 0);
    flow_template_destroy(dup);
    flow_template_destroy(ft);
}

/* ------------------------------------------------------------------------ */

static void
test_format(void)
{
    struct flow_template_flow flow = {
        .section = FLOW_TEMPLATE_CHANNEL, .line = 1, .chan_id = 7,
        .cookie = UINT64_C(0x43abcdef00000007),
        .text = (char *) "priority=1,actions=drop",
    };
    char *s;

    s = flow_template_format_flow(&flow);
    CU_ASSERT_STRING_EQUAL(s, "cookie=0x43abcdef00000007,"
                           "priority=1,actions=drop");
    free(s);
    s = flow_template_format_add(&flow);
    CU_ASSERT_STRING_EQUAL(s, "add cookie=0x43abcdef00000007,"
                           "priority=1,actions=drop");
    free(s);
    s = flow_template_format_delete(UINT64_C(0x4300000000000001));
    CU_ASSERT_STRING_EQUAL(s, "delete cookie=0x4300000000000001/-1");
    free(s);
    s = flow_template_format_delete(0);
    CU_ASSERT_STRING_EQUAL(s, "delete cookie=0x0000000000000000/-1");
    free(s);
    s = flow_template_format_delete_masked(FLOW_TEMPLATE_COOKIE_TAG | 7,
                                           FLOW_TEMPLATE_CHANNEL_MASK);
    CU_ASSERT_STRING_EQUAL(s, "delete cookie=0x4300000000000007"
                           "/0xff000000ffffffff");
    free(s);
    s = flow_template_format_delete_masked(FLOW_TEMPLATE_COOKIE_TAG,
                                           FLOW_TEMPLATE_COOKIE_MASK);
    CU_ASSERT_STRING_EQUAL(s, "delete cookie=0x4300000000000000"
                           "/0xff00000000000000");
    free(s);

    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template *ft = parse_str(
        "[vid]\npriority=1,dl_vlan=${VID},actions=drop\n", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ft);
    const struct flow_template_var v[] = { { "VID", "4094" } };
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_VID, 0, v, 1,
                                         &flows, NULL), 0);
    const struct flow_template_var v2[] = { { "VID", "100" } };
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_VID, 0, v2, 1,
                                         &flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flows.n, 2);

    const uint64_t del[] = { UINT64_C(0x4311111100000007),
                             UINT64_C(0x4322222200000000) };
    char expected[512];
    snprintf(expected, sizeof expected,
             "delete cookie=0x4311111100000007/-1\n"
             "delete cookie=0x4322222200000000/-1\n"
             "add cookie=0x%016"PRIx64",priority=1,dl_vlan=4094,actions=drop\n"
             "add cookie=0x%016"PRIx64",priority=1,dl_vlan=100,actions=drop\n",
             flows.flows[0].cookie, flows.flows[1].cookie);
    s = flow_template_format_bundle(del, 2, &flows);
    CU_ASSERT_STRING_EQUAL(s, expected);
    free(s);

    s = flow_template_format_bundle(del, 1, NULL);
    CU_ASSERT_STRING_EQUAL(s, "delete cookie=0x4311111100000007/-1\n");
    free(s);
    s = flow_template_format_bundle(NULL, 0, NULL);
    CU_ASSERT_STRING_EQUAL(s, "");
    free(s);
    flow_template_flows_destroy(&flows);
    flow_template_destroy(ft);
}

/* ------------------------------------------------------------------------ */
/* The real templates. */

#define HOST_CHANNEL_VARS(ID, PORT, GMAC, GIP)          \
    { "CHAN_ID", ID }, { "VID", "4094" }, { "METER_ID", ID }, \
    { "VNIC_OFPORT", PORT }, { "GUEST_MAC", GMAC },     \
    { "GUEST_IP", GIP }, { "HOST_MAC", "0a:c4:00:00:00:00" }, \
    { "HOST_IP", "169.254.0.1" }, { "PORT", "7433" },     \
    { "INJECT_PORT", "CONTROLLER" },                    \
    { "TO_HOST", "controller(id=17224)", true }

static struct flow_template *
parse_real(const char *name)
{
    size_t len = 0;
    char *text = read_flows_file(name, &len);
    struct flow_template_diag diag;
    struct flow_template *ft = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    enum flow_template_error error = flow_template_parse(text, len, &ft,
                                                         &diag);
    if (error) {
        fprintf(stderr, "%s:%u: %s ('%s')\n", name, diag.line,
                flow_template_strerror(error), diag.detail);
    }
    CU_ASSERT_EQUAL(error, FLOW_TEMPLATE_OK);
    free(text);
    return ft;
}

/* Checks properties every rendered chand flow must have. */
static void
check_rendered(const struct flow_template_flows *flows)
{
    for (size_t i = 0; i < flows->n; i++) {
        const struct flow_template_flow *f = &flows->flows[i];

        CU_ASSERT(flow_template_is_chand_cookie(f->cookie));
        CU_ASSERT_EQUAL(flow_template_cookie_chan_id(f->cookie), f->chan_id);
        CU_ASSERT_EQUAL(f->cookie & FLOW_TEMPLATE_CHANNEL_MASK,
                        FLOW_TEMPLATE_COOKIE_TAG | f->chan_id);
        CU_ASSERT_EQUAL(f->cookie, flow_template_cookie(f->text,
                                                        strlen(f->text),
                                                        f->chan_id));
        CU_ASSERT(!strncmp(f->text, "priority=", 9));
        CU_ASSERT_PTR_NULL(strchr(f->text, '$'));
        CU_ASSERT_PTR_NULL(strchr(f->text, ' '));
        CU_ASSERT_PTR_NOT_NULL(strstr(f->text, ",actions="));
        /* chand never forwards with NORMAL or floods. */
        CU_ASSERT_PTR_NULL(strstr(f->text, "NORMAL"));
        CU_ASSERT_PTR_NULL(strstr(f->text, "FLOOD"));
        CU_ASSERT_PTR_NULL(strstr(f->text, "ALL"));
        for (size_t j = 0; j < i; j++) {
            CU_ASSERT(f->cookie != flows->flows[j].cookie);
        }
    }
}

/* Returns the first rendered flow whose text contains every string in
 * the null-terminated 'needles'. */
static const struct flow_template_flow *
find_flow(const struct flow_template_flows *flows, const char *const *needles)
{
    for (size_t i = 0; i < flows->n; i++) {
        bool all = true;
        for (size_t j = 0; needles[j] && all; j++) {
            all = strstr(flows->flows[i].text, needles[j]) != NULL;
        }
        if (all) {
            return &flows->flows[i];
        }
    }
    return NULL;
}

/* Renders channel 7 (vNIC at ofport 5) of the real host template with
 * chan_flows_host_vars() and 'inject_ofport'; returns the flows' texts
 * joined by newlines (malloc'd). */
static char *
render_real_channel(struct flow_template *ft, int64_t inject_ofport)
{
    struct chan_config cfg;
    CU_ASSERT_EQUAL_FATAL(chan_config_from_strings("7", NULL, NULL, NULL,
                                                   &cfg), 0);
    struct chan_flows_vars v;
    chan_flows_host_vars(&cfg, 5, inject_ofport, &v);
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    CU_ASSERT_EQUAL_FATAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 7,
                                               v.vars, v.n, &flows, NULL),
                          0);
    size_t len = 1;
    for (size_t i = 0; i < flows.n; i++) {
        len += strlen(flows.flows[i].text) + 1;
    }
    char *all = calloc(1, len);
    for (size_t i = 0; i < flows.n; i++) {
        strcat(strcat(all, flows.flows[i].text), "\n");
    }
    flow_template_flows_destroy(&flows);
    return all;
}

static void
test_real_host_paths(void)
{
    struct flow_template *ft = parse_real("host.flows");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ft);

    /* OpenFlow: PACKET_OUT from CONTROLLER, PACKET_IN to chand-host's
     * controller id. */
    char *of = render_real_channel(ft, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(of, "priority=40100,in_port=CONTROLLER,"
                                  "pkt_mark=7,udp,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(of, "priority=40050,in_port=CONTROLLER,"
                                  "pkt_mark=7,actions=drop"));
    CU_ASSERT_PTR_NOT_NULL(strstr(of, "set_field:7->pkt_mark,"
                                  "controller(id=17224)\n"));

    /* The chand port at ofport 3: in from it, out to it, nothing else
     * changes. */
    char *port = render_real_channel(ft, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(port, "priority=40100,in_port=3,"
                                  "pkt_mark=7,udp,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(port, "priority=40050,in_port=3,"
                                  "pkt_mark=7,actions=drop"));
    CU_ASSERT_PTR_NOT_NULL(strstr(port, "set_field:7->pkt_mark,"
                                  "output:3\n"));
    CU_ASSERT_PTR_NULL(strstr(port, "CONTROLLER"));
    CU_ASSERT_PTR_NULL(strstr(port, "controller"));
    CU_ASSERT_STRING_NOT_EQUAL(of, port);

    /* [port]: frames tagged 4095 and anything else from the port drop. */
    struct chan_flows_vars v;
    chan_flows_host_vars(NULL, 0, 3, &v);
    struct flow_template_flows pf = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_PORT), 2);
    CU_ASSERT_EQUAL_FATAL(flow_template_render(ft, FLOW_TEMPLATE_PORT, 0,
                                               v.vars, v.n, &pf, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pf.n, 2);
    CU_ASSERT_STRING_EQUAL(pf.flows[0].text,
                           "priority=40020,dl_vlan=4095,actions=drop");
    CU_ASSERT_STRING_EQUAL(pf.flows[1].text,
                           "priority=40001,in_port=3,actions=drop");
    CU_ASSERT_EQUAL(pf.flows[1].chan_id, 0);
    flow_template_flows_destroy(&pf);

    free(of);
    free(port);
    flow_template_destroy(ft);
}

static void
test_real_host(void)
{
    struct flow_template *ft = parse_real("host.flows");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ft);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_CHANNEL), 10);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_VID), 1);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_BRIDGE), 5);

    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    const struct flow_template_var bridge[] = {
        { "HOST_MAC", "0a:c4:00:00:00:00" }, { "HOST_IP", "169.254.0.1" },
        { "PORT", "7433" },
    };
    const struct flow_template_var vid[] = { { "VID", "4094" } };
    const struct flow_template_var ch7[] = {
        HOST_CHANNEL_VARS("7", "5", "0a:c4:00:00:00:07", "169.254.1.7"),
    };
    const struct flow_template_var ch8[] = {
        HOST_CHANNEL_VARS("8", "6", "0a:c4:00:00:00:08", "169.254.1.8"),
    };
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0, bridge,
                                         N_ELEMS(bridge), &flows, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_VID, 0, vid,
                                         N_ELEMS(vid), &flows, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 7, ch7,
                                         N_ELEMS(ch7), &flows, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 8, ch8,
                                         N_ELEMS(ch8), &flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flows.n, 5 + 1 + 10 + 10);
    check_rendered(&flows);

    /* Injection: only chand-host's marked frame, exact endpoints, out of
     * this vNIC only, tagged. */
    const char *const inject7[] = {
        "in_port=CONTROLLER,pkt_mark=7,udp,", "vlan_tci=0x0000/0x1000",
        "ip_frag=no", "dl_src=0a:c4:00:00:00:00,nw_src=169.254.0.1",
        "dl_dst=0a:c4:00:00:00:07,nw_dst=169.254.1.7,tp_dst=7433",
        "actions=mod_vlan_vid:4094,output:5", NULL,
    };
    const struct flow_template_flow *f = find_flow(&flows, inject7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->chan_id, 7);
    CU_ASSERT(!strncmp(f->text, "priority=40100,", 15));

    /* Guest -> host: vNIC, vid, exact endpoints, pop, mark, controller. */
    const char *const rx8[] = {
        "in_port=6,dl_vlan=4094,udp,ip_frag=no",
        "dl_src=0a:c4:00:00:00:08,nw_src=169.254.1.8",
        "dl_dst=0a:c4:00:00:00:00,nw_dst=169.254.0.1,tp_dst=7433",
        "actions=meter:8,pop_vlan,set_field:8->pkt_mark,",
        "controller(id=17224)", NULL,
    };
    f = find_flow(&flows, rx8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->chan_id, 8);
    CU_ASSERT(!strncmp(f->text, "priority=40100,", 15));

    /* Other marked frames, other vid frames, host-MAC frames: dropped. */
    const char *const markdrop[] = {
        "priority=40050,in_port=CONTROLLER,pkt_mark=7,actions=drop", NULL,
    };
    CU_ASSERT_PTR_NOT_NULL(find_flow(&flows, markdrop));
    const char *const viddrop[] = {
        "priority=40020,dl_vlan=4094,actions=drop", NULL,
    };
    f = find_flow(&flows, viddrop);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->chan_id, 0);

    /* Isolation: the channel space from this VM's vNIC (counted as the
     * VM's), to its endpoint from elsewhere (counted as probes of it), and
     * from any port (the bridge's); the host's addresses as source. */
    static const struct {
        const char *rule;
        uint32_t chan_id;
        const char *counter;
    } isolation[] = {
        { "priority=40040,in_port=6,dl_dst=0a:c4:00:00:00:00/"
          "ff:ff:00:00:00:00,actions=drop", 8, "isolation_drops" },
        { "priority=40040,in_port=5,udp,nw_dst=169.254.0.0/16,tp_dst=7433,"
          "actions=drop", 7, "isolation_drops" },
        { "priority=40040,in_port=5,dl_src=0a:c4:00:00:00:00,actions=drop",
          7, "isolation_drops" },
        { "priority=40040,in_port=5,ip,nw_src=169.254.0.1,actions=drop",
          7, "isolation_drops" },
        { "priority=40040,in_port=5,arp,arp_spa=169.254.0.1,actions=drop",
          7, "isolation_drops" },
        { "priority=40035,dl_dst=0a:c4:00:00:00:07,actions=drop",
          7, "probe_drops" },
        { "priority=40035,udp,nw_dst=169.254.1.8,tp_dst=7433,actions=drop",
          8, "probe_drops" },
        { "priority=40030,dl_dst=0a:c4:00:00:00:00/ff:ff:00:00:00:00,"
          "actions=drop", 0, "isolation_drops" },
        { "priority=40030,udp,nw_dst=169.254.0.0/16,tp_dst=7433,"
          "actions=drop", 0, "isolation_drops" },
        { "priority=40030,dl_src=0a:c4:00:00:00:00,actions=drop",
          0, "isolation_drops" },
        { "priority=40030,ip,nw_src=169.254.0.1,actions=drop",
          0, "isolation_drops" },
        { "priority=40030,arp,arp_spa=169.254.0.1,actions=drop",
          0, "isolation_drops" },
    };
    for (size_t i = 0; i < N_ELEMS(isolation); i++) {
        const char *const want[] = { isolation[i].rule, NULL };
        f = find_flow(&flows, want);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_STRING_EQUAL(f->text, isolation[i].rule);
        CU_ASSERT_EQUAL(f->chan_id, isolation[i].chan_id);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f->counter);
        CU_ASSERT_STRING_EQUAL(f->counter, isolation[i].counter);
    }
    /* Every drop in the channel space is counted; nothing else is. */
    for (size_t i = 0; i < flows.n; i++) {
        const char *t = flows.flows[i].text;
        bool isolation_rule = (strstr(t, "priority=40040,")
                               || strstr(t, "priority=40035,")
                               || strstr(t, "priority=40030,"));
        CU_ASSERT_EQUAL(flows.flows[i].counter != NULL, isolation_rule);
    }

    /* Every channel variable is needed: dropping any one fails. */
    for (size_t skip = 0; skip < N_ELEMS(ch7); skip++) {
        struct flow_template_var v[N_ELEMS(ch7)];
        struct flow_template_diag diag;
        size_t n = 0;
        for (size_t i = 0; i < N_ELEMS(ch7); i++) {
            if (i != skip) {
                v[n++] = ch7[i];
            }
        }
        CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 9,
                                             v, n, &flows, &diag),
                        FLOW_TEMPLATE_EUNKNOWN_VAR);
        CU_ASSERT_STRING_EQUAL(diag.detail, ch7[skip].name);
    }
    /* [bridge] and [vid] use only their own variables. */
    struct flow_template_flows other = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0, bridge,
                                         N_ELEMS(bridge), &other, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_VID, 0, vid,
                                         N_ELEMS(vid), &other, NULL), 0);
    CU_ASSERT_EQUAL(other.n, 6);
    flow_template_flows_destroy(&other);

    /* A bundle file for ovs-ofctl: every line well formed. */
    char *bundle = flow_template_format_bundle(NULL, 0, &flows);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bundle);
    size_t lines = 0;
    for (char *p = bundle; *p; p = strchr(p, '\n') + 1) {
        CU_ASSERT(!strncmp(p, "add cookie=0x43", 15));
        CU_ASSERT_PTR_NOT_NULL_FATAL(strchr(p, '\n'));
        lines++;
    }
    CU_ASSERT_EQUAL(lines, flows.n);
    free(bundle);

    flow_template_flows_destroy(&flows);
    flow_template_destroy(ft);
}

static void
test_real_guest(void)
{
    struct flow_template *ft = parse_real("guest.flows");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ft);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_CHANNEL), 3);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_VID), 0);
    CU_ASSERT_EQUAL(flow_template_n_rules(ft, FLOW_TEMPLATE_BRIDGE), 3);

    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    const struct flow_template_var ch[] = {
        { "VID", "4094" }, { "VNIC_OFPORT", "1" }, { "CHAND_OFPORT", "2" },
        { "GUEST_MAC", "0a:c4:00:00:00:07" }, { "GUEST_IP", "169.254.1.7" },
        { "HOST_MAC", "0a:c4:00:00:00:00" }, { "HOST_IP", "169.254.0.1" },
        { "PORT", "7433" },
    };
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0, NULL,
                                         0, &flows, NULL),
                    FLOW_TEMPLATE_EUNKNOWN_VAR);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0, ch,
                                         N_ELEMS(ch), &flows, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_VID, 0, ch,
                                         N_ELEMS(ch), &flows, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 7, ch,
                                         N_ELEMS(ch), &flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flows.n, 6);
    check_rendered(&flows);

    const char *const drop[] = { "priority=1,actions=drop", NULL };
    const struct flow_template_flow *f = find_flow(&flows, drop);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NULL(f->counter);
    const char *const isolation[][2] = {
        { "priority=40000,dl_dst=0a:c4:00:00:00:00/ff:ff:00:00:00:00,"
          "actions=drop", NULL },
        { "priority=40000,udp,nw_dst=169.254.0.0/16,tp_dst=7433,"
          "actions=drop", NULL },
    };
    for (size_t i = 0; i < N_ELEMS(isolation); i++) {
        f = find_flow(&flows, isolation[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_STRING_EQUAL(f->text, isolation[i][0]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f->counter);
        CU_ASSERT_STRING_EQUAL(f->counter, "isolation_drops");
    }
    const char *const rx[] = {
        "in_port=1,dl_vlan=4094,udp,ip_frag=no",
        "dl_src=0a:c4:00:00:00:00,nw_src=169.254.0.1",
        "dl_dst=0a:c4:00:00:00:07,nw_dst=169.254.1.7,tp_dst=7433",
        "actions=pop_vlan,output:2", NULL,
    };
    CU_ASSERT_PTR_NOT_NULL(find_flow(&flows, rx));
    const char *const tx[] = {
        "in_port=2,udp,vlan_tci=0x0000/0x1000",
        "dl_src=0a:c4:00:00:00:07,nw_src=169.254.1.7",
        "dl_dst=0a:c4:00:00:00:00,nw_dst=169.254.0.1,tp_dst=7433",
        "actions=mod_vlan_vid:4094,output:1", NULL,
    };
    CU_ASSERT_PTR_NOT_NULL(find_flow(&flows, tx));
    const char *const arp[] = {
        "in_port=2,arp,arp_op=1,arp_tpa=169.254.0.1",
        "set_field:0a:c4:00:00:00:00->eth_src", "set_field:2->arp_op",
        "set_field:169.254.0.1->arp_spa", ",IN_PORT", NULL,
    };
    CU_ASSERT_PTR_NOT_NULL(find_flow(&flows, arp));

    for (size_t skip = 0; skip < N_ELEMS(ch); skip++) {
        struct flow_template_var v[N_ELEMS(ch)];
        size_t n = 0;
        for (size_t i = 0; i < N_ELEMS(ch); i++) {
            if (i != skip) {
                v[n++] = ch[i];
            }
        }
        CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 9,
                                             v, n, &flows, NULL),
                        FLOW_TEMPLATE_EUNKNOWN_VAR);
    }
    flow_template_flows_destroy(&flows);
    flow_template_destroy(ft);
}

/* Every prefix of the real templates parses or fails cleanly, and a
 * successful parse of a prefix renders or fails cleanly. */
static void
test_truncation(void)
{
    static const char *const names[] = { "host.flows", "guest.flows" };

    for (size_t k = 0; k < N_ELEMS(names); k++) {
        size_t len = 0;
        char *text = read_flows_file(names[k], &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        size_t n_ok = 0;
        for (size_t n = 0; n <= len; n++) {
            /* A private copy, so ASan catches any read past 'n'. */
            char *copy = malloc(n ? n : 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
            memcpy(copy, text, n);
            struct flow_template *ft = NULL;
            enum flow_template_error error = flow_template_parse(copy, n,
                                                                 &ft, NULL);
            CU_ASSERT((error == FLOW_TEMPLATE_OK) == (ft != NULL));
            if (ft) {
                const struct flow_template_var v[] = {
                    HOST_CHANNEL_VARS("7", "5", "0a:c4:00:00:00:07",
                                      "169.254.1.7"),
                    { "CHAND_OFPORT", "2" },
                };
                struct flow_template_flows flows
                    = FLOW_TEMPLATE_FLOWS_INITIALIZER;
                error = flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 7, v,
                                             N_ELEMS(v), &flows, NULL);
                CU_ASSERT(error == FLOW_TEMPLATE_OK
                          || error == FLOW_TEMPLATE_EUNKNOWN_VAR);
                n_ok++;
                flow_template_flows_destroy(&flows);
            } else {
                CU_ASSERT(error != FLOW_TEMPLATE_ENOMEM
                          && error != FLOW_TEMPLATE_EINVAL);
            }
            flow_template_destroy(ft);
            free(copy);
        }
        CU_ASSERT(n_ok > 0);
        free(text);
    }
}

/* Random mutations of a valid template never crash, and whatever parses
 * renders to text without whitespace, '#' or '$'. */
static void
test_random(void)
{
    static const char alphabet[] = "[]${}\\#\n \t,=_Aa0\r\x01\x80";
    uint64_t seed = 0x5eed0f10ULL;
    uint64_t state = seed;
    size_t len = 0;
    char *text = read_flows_file("host.flows", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);

    for (int iter = 0; iter < 2000; iter++) {
        char *m = malloc(len + 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        memcpy(m, text, len);
        size_t mlen = len;
        int n_mut = 1 + unit_random(&state) % 4;
        for (int k = 0; k < n_mut; k++) {
            size_t pos = unit_random(&state) % mlen;
            uint64_t r = unit_random(&state);
            switch (r % 3) {
            case 0:
                m[pos] = alphabet[(r >> 8) % (sizeof alphabet - 1)];
                break;
            case 1:
                m[pos] = (char) (r >> 8);
                break;
            default:
                mlen = pos;     /* Truncate. */
                break;
            }
            if (!mlen) {
                break;
            }
        }
        struct flow_template *ft = NULL;
        struct flow_template_diag diag;
        enum flow_template_error error = flow_template_parse(m, mlen, &ft,
                                                             &diag);
        CU_ASSERT(strlen(diag.detail) < sizeof diag.detail);
        if (!error) {
            const struct flow_template_var v[] = {
                HOST_CHANNEL_VARS("7", "5", "0a:c4:00:00:00:07",
                                  "169.254.1.7"),
            };
            struct flow_template_flows flows
                = FLOW_TEMPLATE_FLOWS_INITIALIZER;
            for (int s = 0; s < FLOW_TEMPLATE_N_SECTIONS; s++) {
                flow_template_render(ft, s, s == FLOW_TEMPLATE_CHANNEL, v,
                                     N_ELEMS(v), &flows, NULL);
            }
            for (size_t i = 0; i < flows.n; i++) {
                const char *t = flows.flows[i].text;
                CU_ASSERT_PTR_NULL(strpbrk(t, " \t\r\n#$\\"));
            }
            flow_template_flows_destroy(&flows);
        }
        flow_template_destroy(ft);
        free(m);
    }
    if (CU_get_number_of_failures()) {
        fprintf(stderr, "test_random seed 0x%"PRIx64"\n", seed);
    }
    free(text);
}

/* A "%counter" directive names the counter of the one rule after it, in
 * every rendering of that rule, and of no other rule. */
static void
test_counters(void)
{
    static const char text[] =
        "[bridge]\n"
        "priority=1,actions=drop\n"
        "%counter drops\n"
        "priority=2,\\\n    dl_dst=${MAC},actions=drop\n"
        "[channel]\n"
        "%counter drops\n"
        "priority=3,in_port=${P},actions=drop\n"
        "%counter other_1\n"
        "priority=4,in_port=${P},actions=drop\n"
        "priority=5,in_port=${P},actions=drop\n";
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    const struct flow_template_var vars[] = {
        { "MAC", "0a:c4:00:00:00:00" }, { "P", "1" },
    };
    struct flow_template *ft = parse_str(text, NULL, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(ft);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0, vars,
                                         N_ELEMS(vars), &flows, NULL), 0);
    CU_ASSERT_EQUAL(flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, 7, vars,
                                         N_ELEMS(vars), &flows, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(flows.n, 5);
    CU_ASSERT_PTR_NULL(flows.flows[0].counter);
    CU_ASSERT_STRING_EQUAL(flows.flows[1].counter, "drops");
    CU_ASSERT_STRING_EQUAL(flows.flows[1].text,
                           "priority=2,dl_dst=0a:c4:00:00:00:00,actions=drop");
    CU_ASSERT_STRING_EQUAL(flows.flows[2].counter, "drops");
    CU_ASSERT_EQUAL(flows.flows[2].chan_id, 7);
    CU_ASSERT_STRING_EQUAL(flows.flows[3].counter, "other_1");
    CU_ASSERT_PTR_NULL(flows.flows[4].counter);

    /* The counter is not part of the rule's cookie. */
    CU_ASSERT_EQUAL(flows.flows[2].cookie,
                    flow_template_cookie(flows.flows[2].text,
                                         strlen(flows.flows[2].text), 7));
    flow_template_flows_destroy(&flows);
    flow_template_destroy(ft);
}

static const struct unit_test tests[] = {
    { "counters", test_counters },
    { "hash vectors", test_hash_vectors },
    { "cookie", test_cookie },
    { "strerror", test_strerror },
    { "parse basic", test_parse_basic },
    { "parse empty", test_parse_empty },
    { "parse errors", test_parse_errors },
    { "parse accepts", test_parse_accepts },
    { "parse nul byte", test_parse_nul_byte },
    { "parse too long", test_parse_too_long },
    { "diag detail", test_diag_detail },
    { "render errors", test_render_errors },
    { "format", test_format },
    { "real host.flows", test_real_host },
    { "real host.flows, both injection paths", test_real_host_paths },
    { "real guest.flows", test_real_guest },
    { "truncation", test_truncation },
    { "random", test_random },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("flow-template", tests);
}
