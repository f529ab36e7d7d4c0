/* flow-template: chand's OpenFlow rule templates and their renderer. */

#include <config.h>
#include "flow-template.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One rule as written in the template, continuation lines joined, with its
 * ${NAME} placeholders still in place. */
struct ft_rule {
    enum flow_template_section section;
    unsigned int line;          /* Line where the rule starts. */
    char *text;                 /* Null-terminated, 'len' bytes. */
    size_t len;
    char *counter;              /* From a "%counter" line, or NULL. */
};

struct flow_template {
    struct ft_rule *rules;
    size_t n_rules;
    size_t allocated;
    bool seen[FLOW_TEMPLATE_N_SECTIONS];   /* Section header present? */
};

/* A growable byte string. */
struct ft_buf {
    char *s;
    size_t len;
    size_t cap;
};

static bool
ft_buf_append(struct ft_buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *s = realloc(b->s, cap);
        if (!s) {
            return false;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
    return true;
}

static const char *const section_names[FLOW_TEMPLATE_N_SECTIONS] = {
    [FLOW_TEMPLATE_BRIDGE] = "bridge",
    [FLOW_TEMPLATE_VID] = "vid",
    [FLOW_TEMPLATE_CHANNEL] = "channel",
    [FLOW_TEMPLATE_PORT] = "port",
};

static bool
section_is_valid(enum flow_template_section section)
{
    return (unsigned int) section < FLOW_TEMPLATE_N_SECTIONS;
}

const char *
flow_template_section_name(enum flow_template_section section)
{
    return section_is_valid(section) ? section_names[section] : "?";
}

const char *
flow_template_strerror(enum flow_template_error error)
{
    switch (error) {
    case FLOW_TEMPLATE_OK:
        return "success";
    case FLOW_TEMPLATE_ENOMEM:
        return "out of memory";
    case FLOW_TEMPLATE_EINVAL:
        return "invalid argument";
    case FLOW_TEMPLATE_ENO_SECTION:
        return "rule before any [section] line";
    case FLOW_TEMPLATE_EBAD_SECTION:
        return "malformed or unknown section (expected [bridge], [vid] or "
               "[channel])";
    case FLOW_TEMPLATE_EDUP_SECTION:
        return "section appears twice";
    case FLOW_TEMPLATE_ECONTINUATION:
        return "continuation line ('\\') followed by end of file, a blank "
               "line, a comment or a section";
    case FLOW_TEMPLATE_EBAD_CHAR:
        return "whitespace, '#', '\\', control or non-ASCII character inside "
               "a rule";
    case FLOW_TEMPLATE_EVAR_SYNTAX:
        return "'$' not starting a valid ${NAME} (NAME is [A-Z][A-Z0-9_]*, "
               "at most 32 characters)";
    case FLOW_TEMPLATE_ENO_PRIORITY:
        return "rule does not state priority=";
    case FLOW_TEMPLATE_ENO_ACTIONS:
        return "rule has no actions=";
    case FLOW_TEMPLATE_ECOOKIE:
        return "rule sets a cookie (the renderer adds it)";
    case FLOW_TEMPLATE_ETOO_LONG:
        return "rule too long";
    case FLOW_TEMPLATE_EUNKNOWN_VAR:
        return "template uses a variable that was not supplied";
    case FLOW_TEMPLATE_EMISSING_VALUE:
        return "variable used by the template has no value";
    case FLOW_TEMPLATE_EBAD_VALUE:
        return "variable value too long or with characters outside "
               "[A-Za-z0-9:._/-]";
    case FLOW_TEMPLATE_EBAD_VAR_NAME:
        return "invalid variable name supplied";
    case FLOW_TEMPLATE_EDUP_VAR:
        return "variable supplied twice";
    case FLOW_TEMPLATE_EBAD_CHAN_ID:
        return "chan-id must be nonzero for [channel] rules and 0 for [vid] "
               "and [bridge] rules";
    case FLOW_TEMPLATE_EDUP_COOKIE:
        return "rendered flow's cookie is already in use";
    case FLOW_TEMPLATE_EDIRECTIVE:
        return "bad directive (expected \"%counter NAME\", NAME "
               "[a-z][a-z0-9_]*, followed by a rule)";
    }
    return "unknown flow template error";
}

static void
diag_set(struct flow_template_diag *diag, unsigned int line,
         const char *detail, size_t detail_len)
{
    if (diag) {
        diag->line = line;
        if (detail_len >= sizeof diag->detail) {
            detail_len = sizeof diag->detail - 1;
        }
        if (detail_len) {
            memcpy(diag->detail, detail, detail_len);
        }
        diag->detail[detail_len] = '\0';
    }
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool
is_name_start(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool
is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '_';
}

/* Returns the length of the valid variable name at the start of the 'n'
 * bytes at 's' (stopping at the first non-name byte), or 0 if there is none
 * or it is longer than FLOW_TEMPLATE_MAX_NAME. */
static size_t
name_len(const char *s, size_t n)
{
    size_t i = 0;

    if (!n || !is_name_start(s[0])) {
        return 0;
    }
    while (i < n && is_name_char(s[i])) {
        i++;
    }
    return i <= FLOW_TEMPLATE_MAX_NAME ? i : 0;
}

static bool
value_char_ok(char c, bool action)
{
    return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9')
            || c == ':' || c == '.' || c == '_' || c == '/' || c == '-'
            || (action && (c == '(' || c == ')' || c == '=')));
}

/* Checks the syntax of the ${NAME} placeholder starting with the '$' at
 * 's[0]', within 'n' bytes.  Returns the placeholder's total length, or 0
 * if it is invalid. */
static size_t
placeholder_len(const char *s, size_t n)
{
    if (n < 4 || s[1] != '{') {
        return 0;
    }
    size_t nl = name_len(s + 2, n - 2);
    if (!nl || 2 + nl >= n || s[2 + nl] != '}') {
        return 0;
    }
    return nl + 3;
}

/* Checks the joined rule in 'r' and, if it is valid, moves it into 'ft'. */
static enum flow_template_error
finish_rule(struct flow_template *ft, enum flow_template_section section,
            unsigned int line, struct ft_buf *r, char **counterp,
            struct flow_template_diag *diag)
{
    const char *s = r->s ? r->s : "";
    size_t n = r->len;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x21 || c > 0x7e || c == '#' || c == '\\') {
            char detail[16];
            snprintf(detail, sizeof detail, "byte 0x%02x", c);
            diag_set(diag, line, detail, strlen(detail));
            return FLOW_TEMPLATE_EBAD_CHAR;
        }
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '$') {
            size_t pl = placeholder_len(s + i, n - i);
            if (!pl) {
                diag_set(diag, line, s + i, n - i);
                return FLOW_TEMPLATE_EVAR_SYNTAX;
            }
            i += pl - 1;
        }
    }

    /* Split off the match part: everything before the first "actions=" that
     * starts a field. */
    size_t match_len = SIZE_MAX;
    for (i = 0; i + 8 <= n; i++) {
        if ((i == 0 || s[i - 1] == ',') && !memcmp(s + i, "actions=", 8)) {
            match_len = i;
            break;
        }
    }
    if (match_len == SIZE_MAX) {
        diag_set(diag, line, s, n);
        return FLOW_TEMPLATE_ENO_ACTIONS;
    }
    bool has_priority = false;
    for (i = 0; i < match_len; ) {
        const char *field = s + i;
        const char *comma = memchr(field, ',', match_len - i);
        size_t flen = comma ? (size_t) (comma - field) : match_len - i;
        if (flen >= 9 && !memcmp(field, "priority=", 9)) {
            has_priority = true;
        } else if (flen >= 7 && !memcmp(field, "cookie=", 7)) {
            diag_set(diag, line, field, flen);
            return FLOW_TEMPLATE_ECOOKIE;
        }
        i += flen + 1;
    }
    if (!has_priority) {
        diag_set(diag, line, s, n);
        return FLOW_TEMPLATE_ENO_PRIORITY;
    }

    if (ft->n_rules >= ft->allocated) {
        size_t allocated = ft->allocated ? ft->allocated * 2 : 8;
        struct ft_rule *rules = realloc(ft->rules,
                                        allocated * sizeof *rules);
        if (!rules) {
            return FLOW_TEMPLATE_ENOMEM;
        }
        ft->rules = rules;
        ft->allocated = allocated;
    }
    char *text = malloc(n + 1);
    if (!text) {
        return FLOW_TEMPLATE_ENOMEM;
    }
    memcpy(text, s, n);
    text[n] = '\0';
    ft->rules[ft->n_rules++] = (struct ft_rule) {
        .section = section, .line = line, .text = text, .len = n,
        .counter = *counterp,
    };
    *counterp = NULL;
    return FLOW_TEMPLATE_OK;
}

static bool
is_counter_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (!first && ((c >= '0' && c <= '9')
                                                 || c == '_'));
}

/* Parses the directive line in the 'n' bytes at 's' (trimmed, starting with
 * '%'): "%counter NAME".  On success stores the name (malloc'd) in
 * '*counterp', which must be NULL (two directives for one rule are an
 * error). */
static enum flow_template_error
parse_directive(const char *s, size_t n, unsigned int line, char **counterp,
                struct flow_template_diag *diag)
{
    static const char keyword[] = "%counter";
    size_t kl = sizeof keyword - 1;
    size_t i = kl;

    if (*counterp || n <= kl || memcmp(s, keyword, kl) || !is_blank(s[kl])) {
        goto error;
    }
    while (i < n && is_blank(s[i])) {
        i++;
    }
    const char *name = s + i;
    size_t nl = n - i;
    if (!nl || nl > FLOW_TEMPLATE_MAX_NAME) {
        goto error;
    }
    for (i = 0; i < nl; i++) {
        if (!is_counter_char(name[i], i == 0)) {
            goto error;
        }
    }
    *counterp = malloc(nl + 1);
    if (!*counterp) {
        return FLOW_TEMPLATE_ENOMEM;
    }
    memcpy(*counterp, name, nl);
    (*counterp)[nl] = '\0';
    return FLOW_TEMPLATE_OK;

error:
    diag_set(diag, line, s, n);
    return FLOW_TEMPLATE_EDIRECTIVE;
}

/* Parses the section header in the 'n' bytes at 's' (trimmed, starting with
 * '['). */
static enum flow_template_error
parse_section(struct flow_template *ft, const char *s, size_t n,
              unsigned int line, int *sectionp,
              struct flow_template_diag *diag)
{
    if (n >= 2 && s[n - 1] == ']') {
        for (int i = 0; i < FLOW_TEMPLATE_N_SECTIONS; i++) {
            size_t nl = strlen(section_names[i]);
            if (n == nl + 2 && !memcmp(s + 1, section_names[i], nl)) {
                if (ft->seen[i]) {
                    diag_set(diag, line, s, n);
                    return FLOW_TEMPLATE_EDUP_SECTION;
                }
                ft->seen[i] = true;
                *sectionp = i;
                return FLOW_TEMPLATE_OK;
            }
        }
    }
    diag_set(diag, line, s, n);
    return FLOW_TEMPLATE_EBAD_SECTION;
}

enum flow_template_error
flow_template_parse(const char *text, size_t len, struct flow_template **ftp,
                    struct flow_template_diag *diag)
{
    enum flow_template_error error = FLOW_TEMPLATE_OK;
    struct ft_buf rule = { NULL, 0, 0 };
    unsigned int line_no = 0;
    unsigned int rule_line = 0;
    unsigned int counter_line = 0;
    char *counter = NULL;       /* Pending "%counter" for the next rule. */
    bool in_rule = false;
    int section = -1;
    size_t pos = 0;

    diag_set(diag, 0, "", 0);
    if (!ftp) {
        return FLOW_TEMPLATE_EINVAL;
    }
    *ftp = NULL;
    if (!text && len) {
        return FLOW_TEMPLATE_EINVAL;
    }

    struct flow_template *ft = calloc(1, sizeof *ft);
    if (!ft) {
        return FLOW_TEMPLATE_ENOMEM;
    }

    while (pos < len && !error) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t) (nl - s) : len - pos;

        pos += n + (nl != NULL);
        line_no++;
        while (n && is_blank(s[n - 1])) {
            n--;
        }
        while (n && is_blank(s[0])) {
            s++;
            n--;
        }

        if (!in_rule) {
            if (!n || s[0] == '#') {
                continue;
            }
            if (s[0] == '[' && counter) {
                diag_set(diag, counter_line, "%counter", 8);
                error = FLOW_TEMPLATE_EDIRECTIVE;
                break;
            }
            if (s[0] == '[') {
                error = parse_section(ft, s, n, line_no, &section, diag);
                continue;
            }
            if (s[0] == '%') {
                counter_line = line_no;
                error = parse_directive(s, n, line_no, &counter, diag);
                continue;
            }
            if (section < 0) {
                diag_set(diag, line_no, s, n);
                error = FLOW_TEMPLATE_ENO_SECTION;
                break;
            }
            in_rule = true;
            rule_line = line_no;
            rule.len = 0;
        } else if (!n || s[0] == '#' || s[0] == '[') {
            diag_set(diag, line_no, s, n);
            error = FLOW_TEMPLATE_ECONTINUATION;
            break;
        }

        bool cont = n && s[n - 1] == '\\';
        if (cont) {
            n--;
            while (n && is_blank(s[n - 1])) {
                n--;
            }
        }
        if (rule.len + n > FLOW_TEMPLATE_MAX_RULE) {
            diag_set(diag, rule_line, "", 0);
            error = FLOW_TEMPLATE_ETOO_LONG;
            break;
        }
        if (!ft_buf_append(&rule, s, n)) {
            error = FLOW_TEMPLATE_ENOMEM;
            break;
        }
        if (!cont) {
            in_rule = false;
            error = finish_rule(ft, section, rule_line, &rule, &counter,
                                diag);
        }
    }
    if (!error && in_rule) {
        diag_set(diag, line_no, "", 0);
        error = FLOW_TEMPLATE_ECONTINUATION;
    }
    if (!error && counter) {
        diag_set(diag, counter_line, "%counter", 8);
        error = FLOW_TEMPLATE_EDIRECTIVE;
    }
    free(counter);
    free(rule.s);

    if (error) {
        flow_template_destroy(ft);
        return error;
    }
    *ftp = ft;
    return FLOW_TEMPLATE_OK;
}

void
flow_template_destroy(struct flow_template *ft)
{
    if (ft) {
        for (size_t i = 0; i < ft->n_rules; i++) {
            free(ft->rules[i].text);
            free(ft->rules[i].counter);
        }
        free(ft->rules);
        free(ft);
    }
}

size_t
flow_template_n_rules(const struct flow_template *ft,
                      enum flow_template_section section)
{
    size_t n = 0;

    for (size_t i = 0; ft && i < ft->n_rules; i++) {
        n += ft->rules[i].section == section;
    }
    return n;
}

void
flow_template_flows_init(struct flow_template_flows *flows)
{
    flows->flows = NULL;
    flows->n = 0;
    flows->allocated = 0;
}

void
flow_template_flows_destroy(struct flow_template_flows *flows)
{
    if (flows) {
        for (size_t i = 0; i < flows->n; i++) {
            free(flows->flows[i].text);
        }
        free(flows->flows);
        flow_template_flows_init(flows);
    }
}

uint32_t
flow_template_hash24(const void *data_, size_t len)
{
    const uint8_t *data = data_;
    uint32_t h = 0x811c9dc5;    /* FNV-1a 32-bit offset basis. */

    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 0x01000193;        /* FNV 32-bit prime. */
    }
    return (h >> 24) ^ (h & 0xffffff);
}

uint64_t
flow_template_cookie(const char *text, size_t len, uint32_t chan_id)
{
    return (FLOW_TEMPLATE_COOKIE_TAG
            | (uint64_t) flow_template_hash24(text, len) << 32
            | chan_id);
}

bool
flow_template_is_chand_cookie(uint64_t cookie)
{
    return (cookie & FLOW_TEMPLATE_COOKIE_MASK) == FLOW_TEMPLATE_COOKIE_TAG;
}

uint32_t
flow_template_cookie_chan_id(uint64_t cookie)
{
    return cookie & UINT32_MAX;
}

/* Checks that the caller's variables have valid, distinct names. */
static enum flow_template_error
check_vars(const struct flow_template_var *vars, size_t n_vars,
           struct flow_template_diag *diag)
{
    for (size_t i = 0; i < n_vars; i++) {
        const char *name = vars[i].name;
        size_t len = name ? strlen(name) : 0;

        if (!len || name_len(name, len) != len) {
            diag_set(diag, 0, name ? name : "", len);
            return FLOW_TEMPLATE_EBAD_VAR_NAME;
        }
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(vars[j].name, name)) {
                diag_set(diag, 0, name, len);
                return FLOW_TEMPLATE_EDUP_VAR;
            }
        }
    }
    return FLOW_TEMPLATE_OK;
}

static const struct flow_template_var *
find_var(const struct flow_template_var *vars, size_t n_vars,
         const char *name, size_t len)
{
    for (size_t i = 0; i < n_vars; i++) {
        if (strlen(vars[i].name) == len && !memcmp(vars[i].name, name, len)) {
            return &vars[i];
        }
    }
    return NULL;
}

/* Renders 'rule' into 'out' (cleared first). */
static enum flow_template_error
render_rule(const struct ft_rule *rule, const struct flow_template_var *vars,
            size_t n_vars, struct ft_buf *out,
            struct flow_template_diag *diag)
{
    const char *s = rule->text;
    size_t n = rule->len;
    size_t lit = 0;             /* Start of the pending literal. */
    size_t i = 0;

    out->len = 0;
    while (i < n) {
        if (s[i] != '$') {
            i++;
            continue;
        }
        /* Syntax was checked by flow_template_parse(). */
        const char *name = s + i + 2;
        size_t nlen = placeholder_len(s + i, n - i) - 3;
        const struct flow_template_var *var = find_var(vars, n_vars, name,
                                                       nlen);
        if (!var) {
            diag_set(diag, rule->line, name, nlen);
            return FLOW_TEMPLATE_EUNKNOWN_VAR;
        }
        size_t vlen = var->value ? strlen(var->value) : 0;
        if (!vlen) {
            diag_set(diag, rule->line, name, nlen);
            return FLOW_TEMPLATE_EMISSING_VALUE;
        }
        bool ok = vlen <= FLOW_TEMPLATE_MAX_VALUE;
        for (size_t j = 0; ok && j < vlen; j++) {
            ok = value_char_ok(var->value[j], var->action);
        }
        if (!ok) {
            diag_set(diag, rule->line, name, nlen);
            return FLOW_TEMPLATE_EBAD_VALUE;
        }
        if (!ft_buf_append(out, s + lit, i - lit)
            || !ft_buf_append(out, var->value, vlen)) {
            return FLOW_TEMPLATE_ENOMEM;
        }
        i += nlen + 3;
        lit = i;
    }
    return (ft_buf_append(out, s + lit, n - lit)
            ? FLOW_TEMPLATE_OK : FLOW_TEMPLATE_ENOMEM);
}

static bool
cookie_in(const struct flow_template_flow *flows, size_t n, uint64_t cookie)
{
    for (size_t i = 0; i < n; i++) {
        if (flows[i].cookie == cookie) {
            return true;
        }
    }
    return false;
}

enum flow_template_error
flow_template_render(const struct flow_template *ft,
                     enum flow_template_section section, uint32_t chan_id,
                     const struct flow_template_var *vars, size_t n_vars,
                     struct flow_template_flows *flows,
                     struct flow_template_diag *diag)
{
    enum flow_template_error error;

    diag_set(diag, 0, "", 0);
    if (!ft || !flows || !section_is_valid(section) || (n_vars && !vars)) {
        return FLOW_TEMPLATE_EINVAL;
    }
    if ((section == FLOW_TEMPLATE_CHANNEL) != (chan_id != 0)) {
        return FLOW_TEMPLATE_EBAD_CHAN_ID;
    }
    error = check_vars(vars, n_vars, diag);
    if (error) {
        return error;
    }

    size_t n_new = flow_template_n_rules(ft, section);
    if (!n_new) {
        return FLOW_TEMPLATE_OK;
    }
    struct flow_template_flow *new = calloc(n_new, sizeof *new);
    if (!new) {
        return FLOW_TEMPLATE_ENOMEM;
    }

    struct ft_buf buf = { NULL, 0, 0 };
    size_t k = 0;
    for (size_t i = 0; i < ft->n_rules && !error; i++) {
        const struct ft_rule *rule = &ft->rules[i];
        if (rule->section != section) {
            continue;
        }
        error = render_rule(rule, vars, n_vars, &buf, diag);
        if (error) {
            break;
        }
        uint64_t cookie = flow_template_cookie(buf.s, buf.len, chan_id);
        if (cookie_in(flows->flows, flows->n, cookie)
            || cookie_in(new, k, cookie)) {
            char detail[24];
            snprintf(detail, sizeof detail, "0x%016"PRIx64, cookie);
            diag_set(diag, rule->line, detail, strlen(detail));
            error = FLOW_TEMPLATE_EDUP_COOKIE;
            break;
        }
        char *text = malloc(buf.len + 1);
        if (!text) {
            error = FLOW_TEMPLATE_ENOMEM;
            break;
        }
        memcpy(text, buf.s, buf.len + 1);
        new[k++] = (struct flow_template_flow) {
            .section = section, .line = rule->line, .chan_id = chan_id,
            .cookie = cookie, .text = text, .counter = rule->counter,
        };
    }
    free(buf.s);

    if (!error && flows->n + k > flows->allocated) {
        size_t allocated = flows->allocated ? flows->allocated : 8;
        while (allocated < flows->n + k) {
            allocated *= 2;
        }
        struct flow_template_flow *p = realloc(flows->flows,
                                               allocated * sizeof *p);
        if (p) {
            flows->flows = p;
            flows->allocated = allocated;
        } else {
            error = FLOW_TEMPLATE_ENOMEM;
        }
    }
    if (error) {
        for (size_t i = 0; i < k; i++) {
            free(new[i].text);
        }
    } else {
        memcpy(flows->flows + flows->n, new, k * sizeof *new);
        flows->n += k;
    }
    free(new);
    return error;
}

/* Returns a new string: 'prefix', "cookie=0x<16 hex>", then 'suffix'. */
static char *
format_cookie_line(const char *prefix, uint64_t cookie, const char *suffix)
{
    size_t len = strlen(prefix) + strlen("cookie=0x") + 16 + strlen(suffix);
    char *s = malloc(len + 1);

    if (s) {
        snprintf(s, len + 1, "%scookie=0x%016"PRIx64"%s",
                 prefix, cookie, suffix);
    }
    return s;
}

/* Returns a new string: 'prefix' then 'flow' in add form, ','-joined. */
static char *
format_flow(const char *prefix, const struct flow_template_flow *flow)
{
    size_t tlen = strlen(flow->text);
    char *suffix = malloc(tlen + 2);
    char *s;

    if (!suffix) {
        return NULL;
    }
    suffix[0] = ',';
    memcpy(suffix + 1, flow->text, tlen + 1);
    s = format_cookie_line(prefix, flow->cookie, suffix);
    free(suffix);
    return s;
}

char *
flow_template_format_flow(const struct flow_template_flow *flow)
{
    return format_flow("", flow);
}

char *
flow_template_format_add(const struct flow_template_flow *flow)
{
    return format_flow("add ", flow);
}

char *
flow_template_format_delete(uint64_t cookie)
{
    return format_cookie_line("delete ", cookie, "/-1");
}

char *
flow_template_format_delete_masked(uint64_t cookie, uint64_t mask)
{
    char suffix[24];

    snprintf(suffix, sizeof suffix, "/0x%016"PRIx64, mask);
    return format_cookie_line("delete ", cookie, suffix);
}

char *
flow_template_format_bundle(const uint64_t *del, size_t n_del,
                            const struct flow_template_flows *add)
{
    struct ft_buf b = { NULL, 0, 0 };
    size_t n_add = add ? add->n : 0;
    bool ok = ft_buf_append(&b, "", 0);

    for (size_t i = 0; ok && i < n_del + n_add; i++) {
        char *line = (i < n_del
                      ? flow_template_format_delete(del[i])
                      : flow_template_format_add(&add->flows[i - n_del]));
        ok = (line
              && ft_buf_append(&b, line, strlen(line))
              && ft_buf_append(&b, "\n", 1));
        free(line);
    }
    if (!ok) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
