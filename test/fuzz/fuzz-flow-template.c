/*
 * fuzz-flow-template: lib/flow-template's parser on fuzzed template text,
 * and its renderer with fuzzed variable values on fuzzed templates and on
 * the real flows/host.flows and flows/guest.flows.
 *
 * Input layout:
 *
 *     byte 0    bits 0-1: template: 1 host.flows, 2 guest.flows, else the
 *               text below; bit 2: keep chan_id as given (else it is made
 *               valid for the section); bit 3: the first value piece is an
 *               extra variable's name and the next one its value
 *     byte 1    section (% 3)
 *     bytes 2-5 chan_id, big-endian
 *     then      if the template comes from the input: a big-endian 16-bit
 *               length and that many bytes of template text
 *     then      values separated by NUL bytes, given in order to the
 *               variables of var_names[]; variables past the last piece
 *               are not supplied
 *
 * The central invariant: a value can never change a rule's structure.  Each
 * successful rendering is compared with a rendering of the same template
 * with harmless values ("v0", "v1", ...): with every byte a value may hold
 * ([A-Za-z0-9:._/-]) deleted from both texts, the two must be identical,
 * so no value added a ',', '=', '(', an "actions=", a space or a newline.
 * Also: cookies are what flow_template_cookie() says; a failed render
 * leaves the list unchanged (rendering twice into one list fails on
 * duplicate cookies); formatted lines and bundles have exactly the lines
 * they should; lib/ofp13-flow's parser either refuses a rendered rule with
 * a message or encodes it to one well-formed FLOW_MOD.
 */
#include <config.h>
#include "fuzz.h"

#include "flow-template.h"
#include "ofp13-flow.h"
#include "util.h"

#ifndef FLOWS_DIR
#error "build with -DFLOWS_DIR=\"<source>/flows\""
#endif

static const char *const var_names[] = {
    "CHAN_ID", "VID", "VNIC_OFPORT", "CHAND_OFPORT", "GUEST_MAC",
    "GUEST_IP", "HOST_MAC", "HOST_IP", "PORT", "A", "B_1", "C",
};
#define N_NAMES (sizeof var_names / sizeof var_names[0])
#define MAX_VARS (N_NAMES + 1)

struct text {
    char *data;
    size_t len;
};

static struct text real_templates[2];

/* Returns the flows/ template 'name', read whole (the caller owns 't.data');
 * aborts if it cannot be read. */
static struct text
read_template(const char *name)
{
    char path[4096];
    struct text t;

    snprintf(path, sizeof path, "%s/%s", FLOWS_DIR, name);
    t.data = read_file(path, &t.len);
    if (!t.data) {
        fprintf(stderr, "fuzz-flow-template: cannot read %s\n", path);
        abort();
    }
    return t;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    real_templates[0] = read_template("host.flows");
    real_templates[1] = read_template("guest.flows");

    /* The real templates must parse, or every input is wasted. */
    for (int i = 0; i < 2; i++) {
        struct flow_template *ft;
        FUZZ_CHECK(!flow_template_parse(real_templates[i].data,
                                        real_templates[i].len, &ft, NULL));
        flow_template_destroy(ft);
    }
    return 0;
}

static bool
is_value_char(char c)
{
    return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9')
            || c == ':' || c == '.' || c == '_' || c == '/' || c == '-');
}

/* Returns 's' without the bytes a value may contain (malloc()ed). */
static char *
skeleton(const char *s)
{
    size_t n = strlen(s);
    char *out = fuzz_strdup(s, n);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_value_char(s[i])) {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

/* chand-host's parser on the rendered rule: it may refuse it (with a
 * message), and what it accepts encodes to one well-formed FLOW_MOD. */
static void
check_encoding(const struct flow_template_flow *f)
{
    static uint8_t msg[OFP13_MAX_MSG_LEN];
    struct ofp13_flow flow;
    char err[128];
    size_t len, framed;

    if (ofp13_flow_parse(f->text, &flow, err, sizeof err)) {
        FUZZ_CHECK(err[0] != '\0' && strlen(err) < sizeof err);
        return;
    }
    FUZZ_CHECK(flow.match_len <= sizeof flow.match
               && flow.insts_len <= sizeof flow.insts);
    FUZZ_CHECK(!ofp13_encode_flow_add(msg, sizeof msg, &len, 1, f->cookie,
                                      &flow));
    FUZZ_CHECK(!ofp13_frame(msg, len, OFP13_VERSION, &framed)
               && framed == len && len % 8 == 0);
}

static void
check_flows(const struct flow_template_flows *flows, size_t n_before,
            enum flow_template_section section, uint32_t chan_id)
{
    for (size_t i = n_before; i < flows->n; i++) {
        const struct flow_template_flow *f = &flows->flows[i];
        size_t len = strlen(f->text);

        FUZZ_CHECK(f->section == section && f->chan_id == chan_id);
        FUZZ_CHECK(f->cookie == flow_template_cookie(f->text, len,
                                                     chan_id));
        FUZZ_CHECK(flow_template_is_chand_cookie(f->cookie));
        FUZZ_CHECK(flow_template_cookie_chan_id(f->cookie) == chan_id);
        FUZZ_CHECK(!strchr(f->text, '\n') && !strchr(f->text, ' '));
        FUZZ_CHECK(strstr(f->text, "actions=") != NULL);
        FUZZ_CHECK(strstr(f->text, "priority=") != NULL);

        char *line = flow_template_format_flow(f);
        FUZZ_CHECK(line && !strncmp(line, "cookie=0x", 9));
        FUZZ_CHECK(!strchr(line, '\n'));
        FUZZ_CHECK(!strcmp(line + 9 + 16 + 1, f->text));
        free(line);
        line = flow_template_format_add(f);
        FUZZ_CHECK(line && !strncmp(line, "add cookie=0x", 13));
        free(line);
        check_encoding(f);
    }

    /* A bundle deleting every cookie and adding every flow. */
    uint64_t *del = fuzz_alloc((flows->n + 1) * sizeof *del);
    for (size_t i = 0; i < flows->n; i++) {
        del[i] = flows->flows[i].cookie;
    }
    char *bundle = flow_template_format_bundle(del, flows->n, flows);
    FUZZ_CHECK(bundle);
    FUZZ_CHECK(count_lines(bundle) == 2 * flows->n);
    free(bundle);
    free(del);
}

/* Renders 'section' of 'ft' with 'vars' and checks the results against a
 * rendering with harmless values. */
static void
fuzz_render(const struct flow_template *ft, enum flow_template_section section,
            uint32_t chan_id, const struct flow_template_var *vars,
            size_t n_vars)
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;

    enum flow_template_error error = flow_template_render(
        ft, section, chan_id, vars, n_vars, &flows, &diag);
    FUZZ_CHECK(flow_template_strerror(error) != NULL);
    FUZZ_CHECK(memchr(diag.detail, '\0', sizeof diag.detail));
    if (error) {
        FUZZ_CHECK(flows.n == 0);
        flow_template_flows_destroy(&flows);
        return;
    }
    FUZZ_CHECK(flows.n == flow_template_n_rules(ft, section));
    check_flows(&flows, 0, section, chan_id);

    /* Rendering the same again into the same list duplicates every cookie:
     * it must fail and change nothing. */
    if (flows.n) {
        size_t n = flows.n;
        error = flow_template_render(ft, section, chan_id, vars, n_vars,
                                     &flows, &diag);
        FUZZ_CHECK(error == FLOW_TEMPLATE_EDUP_COOKIE);
        FUZZ_CHECK(flows.n == n);
    }

    /* The same template with harmless values. */
    char safe_values[MAX_VARS][8];
    struct flow_template_var safe[MAX_VARS];
    memset(safe, 0, sizeof safe);
    for (size_t i = 0; i < n_vars; i++) {
        snprintf(safe_values[i], sizeof safe_values[i], "v%zu", i);
        safe[i].name = vars[i].name;
        safe[i].value = vars[i].value && vars[i].value[0]
                        ? safe_values[i] : vars[i].value;
    }
    struct flow_template_flows safe_flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    error = flow_template_render(ft, section, chan_id, safe, n_vars,
                                 &safe_flows, &diag);
    FUZZ_CHECK(error == FLOW_TEMPLATE_OK
               || error == FLOW_TEMPLATE_EDUP_COOKIE);
    if (!error) {
        FUZZ_CHECK(safe_flows.n == flows.n);
        for (size_t i = 0; i < flows.n; i++) {
            char *a = skeleton(flows.flows[i].text);
            char *b = skeleton(safe_flows.flows[i].text);
            if (strcmp(a, b)) {
                fprintf(stderr, "value changed rule structure:\n  %s\n  %s\n",
                        flows.flows[i].text, safe_flows.flows[i].text);
            }
            FUZZ_CHECK(!strcmp(a, b));
            FUZZ_CHECK(flows.flows[i].line == safe_flows.flows[i].line);
            free(a);
            free(b);
        }
    }
    flow_template_flows_destroy(&safe_flows);
    flow_template_flows_destroy(&flows);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    uint8_t mode = fuzz_u8(&in);
    enum flow_template_section section = fuzz_u8(&in) % 3;
    uint32_t chan_id = fuzz_be32(&in);

    if (!(mode & 4)) {
        if (section == FLOW_TEMPLATE_CHANNEL) {
            chan_id = chan_id ? chan_id : 1;
        } else {
            chan_id = 0;
        }
    }

    /* The template. */
    char *text;
    size_t text_len;
    if ((mode & 3) == 1 || (mode & 3) == 2) {
        const struct text *t = &real_templates[(mode & 3) - 1];
        text = (char *) fuzz_dup(t->data, t->len);
        text_len = t->len;
    } else {
        const uint8_t *p;
        text_len = fuzz_take(&in, fuzz_be16(&in), &p);
        text = (char *) fuzz_dup(p, text_len);
    }

    struct flow_template *ft;
    struct flow_template_diag diag;
    enum flow_template_error error = flow_template_parse(text, text_len, &ft,
                                                         &diag);
    free(text);
    FUZZ_CHECK(flow_template_strerror(error) != NULL);
    if (error) {
        FUZZ_CHECK(!ft);
        FUZZ_CHECK(memchr(diag.detail, '\0', sizeof diag.detail));
        return 0;
    }
    for (int s = 0; s < FLOW_TEMPLATE_N_SECTIONS; s++) {
        FUZZ_CHECK(flow_template_n_rules(ft, s) < 65536);
        FUZZ_CHECK(flow_template_section_name(s) != NULL);
    }

    /* The values: NUL-separated pieces of the rest of the input. */
    char *rest = fuzz_strdup(in.data, in.size);
    struct flow_template_var vars[MAX_VARS];   /* No 'action' values. */
    memset(vars, 0, sizeof vars);
    size_t n_vars = 0;
    char *p = rest, *end = rest + in.size;
    const char *extra_name = NULL;

    if (mode & 8 && p < end) {
        extra_name = p;
        p += strlen(p) + 1;
    }
    if (extra_name && p <= end) {
        vars[n_vars].name = extra_name;
        vars[n_vars].value = p;
        n_vars++;
        p += strlen(p) + 1;
    }
    for (size_t i = 0; i < N_NAMES && p <= end; i++) {
        vars[n_vars].name = var_names[i];
        vars[n_vars].value = p;
        n_vars++;
        p += strlen(p) + 1;
    }

    fuzz_render(ft, section, chan_id, vars, n_vars);
    free(rest);
    flow_template_destroy(ft);
    return 0;
}
