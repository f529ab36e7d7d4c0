/* metrics: the Prometheus text exposition format (see metrics.h). */

#include <config.h>
#include "metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "hmap.h"
#include "latency-hist.h"
#include "util.h"

/* One metric family: its samples' lines, already rendered. */
struct metrics_family {
    struct hmap_node node;      /* In 'families', by hash_string_nocase(name). */
    size_t order;               /* When it was first added. */
    char *name;
    enum metrics_type type;
    char *help;
    FILE *lines;                /* Sample lines (open_memstream). */
    char *buf;                  /* 'lines''s buffer. */
    size_t size;
};

struct metrics {
    struct hmap families;
    size_t n_families;
};

void
metrics_labels_add(struct metrics_labels *labels, const char *name,
                   const char *value)
{
    if (!value) {
        return;
    }
    if (labels->n >= METRICS_MAX_LABELS) {
        abort();
    }
    labels->names[labels->n] = name;
    labels->values[labels->n] = value;
    labels->n++;
}

struct metrics *
metrics_create(void)
{
    struct metrics *m = xzalloc(sizeof *m);
    hmap_init(&m->families);
    return m;
}

void
metrics_destroy(struct metrics *m)
{
    if (!m) {
        return;
    }
    struct metrics_family *f;
    HMAP_FOR_EACH_SAFE (f, node, &m->families) {
        hmap_remove(&m->families, &f->node);
        fclose(f->lines);
        free(f->buf);
        free(f->name);
        free(f->help);
        free(f);
    }
    hmap_destroy(&m->families);
    free(m);
}

/* Returns family 'name', created with 'type' and 'help' if new (owned by
 * 'm'). */
static struct metrics_family *
get_family(struct metrics *m, const char *name, enum metrics_type type,
           const char *help)
{
    uint32_t hash = hash_string_nocase(name);
    struct metrics_family *f;
    HMAP_FOR_EACH_WITH_HASH (f, node, hash, &m->families) {
        if (!strcmp(f->name, name)) {
            return f;
        }
    }
    f = xzalloc(sizeof *f);
    f->order = m->n_families++;
    f->name = xstrdup(name);
    f->type = type;
    f->help = xstrdup(help);
    f->lines = open_memstream(&f->buf, &f->size);
    if (!f->lines) {
        out_of_memory();
    }
    hmap_insert(&m->families, &f->node, hash);
    return f;
}

char *
metrics_escape_label_value(const char *value)
{
    char *out = xmalloc(2 * strlen(value) + 1);
    char *p = out;
    for (; *value; value++) {
        switch (*value) {
        case '\\': *p++ = '\\'; *p++ = '\\'; break;
        case '"': *p++ = '\\'; *p++ = '"'; break;
        case '\n': *p++ = '\\'; *p++ = 'n'; break;
        default: *p++ = *value; break;
        }
    }
    *p = '\0';
    return out;
}

/* Writes '{a="x",b="y"' for 'labels' (may be NULL) and, if nonnull, the
 * extra label 'name'="value", then '}'; nothing if there are no labels. */
static void
put_labels(FILE *s, const struct metrics_labels *labels,
           const char *name, const char *value)
{
    size_t n = labels ? labels->n : 0;
    if (!n && !name) {
        return;
    }
    putc('{', s);
    for (size_t i = 0; i < n; i++) {
        char *v = metrics_escape_label_value(labels->values[i]);
        fprintf(s, "%s%s=\"%s\"", i ? "," : "", labels->names[i], v);
        free(v);
    }
    if (name) {
        char *v = metrics_escape_label_value(value);
        fprintf(s, "%s%s=\"%s\"", n ? "," : "", name, v);
        free(v);
    }
    putc('}', s);
}

/* Writes ' VALUE\n': an integer as such, otherwise the shortest decimal
 * that reads back as 'value'. */
static void
put_value(FILE *s, double value)
{
    if (isnan(value)) {
        fputs(" NaN\n", s);
    } else if (isinf(value)) {
        fputs(value > 0 ? " +Inf\n" : " -Inf\n", s);
    } else if (value > -9007199254740992.0 && value < 9007199254740992.0
               && value == (double) (long long) value) {
        fprintf(s, " %lld\n", (long long) value);
    } else {
        char buf[32];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, value);
            if (strtod(buf, NULL) == value) {
                break;
            }
        }
        fprintf(s, " %s\n", buf);
    }
}

/* Adds a sample line 'name'{labels,extra="value"} 'value' to 'f'. */
static void
put_sample(struct metrics_family *f, const char *name,
           const struct metrics_labels *labels, const char *extra,
           const char *extra_value, double value)
{
    fputs(name, f->lines);
    put_labels(f->lines, labels, extra, extra_value);
    put_value(f->lines, value);
}

void
metrics_add(struct metrics *m, const char *name, enum metrics_type type,
            const char *help, const struct metrics_labels *labels,
            double value)
{
    struct metrics_family *f = get_family(m, name, type, help);
    put_sample(f, name, labels, NULL, NULL, value);
}

void
metrics_add_histogram(struct metrics *m, const char *name, const char *help,
                      const struct metrics_labels *labels,
                      const struct latency_hist *h)
{
    struct metrics_family *f = get_family(m, name, METRICS_HISTOGRAM, help);
    char *bucket = xasprintf("%s_bucket", name);
    uint64_t cum = 0;
    unsigned int i = 0;
    for (unsigned int k = 0; k < 32; k++) {
        uint64_t bound = (1ULL << k) - 1;
        for (; i <= latency_hist_bucket(bound); i++) {
            cum += h->buckets[i];
        }
        char le[32];
        snprintf(le, sizeof le, "%.6f", bound / 1e6);
        put_sample(f, bucket, labels, "le", le, cum);
    }
    put_sample(f, bucket, labels, "le", "+Inf", h->count);
    free(bucket);

    char *sum = xasprintf("%s_sum", name);
    put_sample(f, sum, labels, NULL, NULL, h->sum_us / 1e6);
    free(sum);
    char *count = xasprintf("%s_count", name);
    put_sample(f, count, labels, NULL, NULL, h->count);
    free(count);
}

/* JSON objects. */

/* What metrics_add_json() carries down an object. */
struct json_walk {
    struct metrics *m;
    const char *prefix;
    const char *source;
    const struct metrics_labels *labels;
    const struct metrics_rule *rules;
};

/* Returns the rule for 'path' and, for a '*' rule, the part of 'path' it
 * matched with the '*' in '*restp'; NULL if none. */
static const struct metrics_rule *
find_rule(const struct metrics_rule *rules, const char *path,
          const char **restp)
{
    *restp = NULL;
    for (const struct metrics_rule *r = rules; r && r->path; r++) {
        size_t len = strlen(r->path);
        if (len && r->path[len - 1] == '*') {
            if (!strncmp(path, r->path, len - 1) && path[len - 1]) {
                *restp = path + len - 1;
                return r;
            }
        } else if (!strcmp(path, r->path)) {
            return r;
        }
    }
    return NULL;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Returns a metric name (new string) for 'path' under 'prefix': path
 * components joined with '_', "counters" components left out, characters
 * a metric name cannot hold as '_'; "_us"/"_ms" become "_seconds" (with
 * the factor to seconds in '*scalep'); "_total" for a counter. */
static char *
derive_name(const char *prefix, const char *path, enum metrics_type type,
            double *scalep)
{
    size_t size = 0;
    char *buf = NULL;
    FILE *s = open_memstream(&buf, &size);
    fputs(prefix, s);
    char *copy = xstrdup(path);
    char *save = NULL;
    for (char *c = strtok_r(copy, ".", &save); c;
         c = strtok_r(NULL, ".", &save)) {
        if (!strcmp(c, "counters")) {
            continue;
        }
        putc('_', s);
        for (const char *p = c; *p; p++) {
            bool ok = ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                       || *p == '_');
            putc(ok ? *p : (*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : '_',
                 s);
        }
    }
    free(copy);
    fclose(s);

    *scalep = 1;
    size_t len = strlen(buf);
    if (ends_with(buf, "_us") || ends_with(buf, "_ms")) {
        *scalep = buf[len - 2] == 'u' ? 1e-6 : 1e-3;
        buf[len - 3] = '\0';
        char *secs = xasprintf("%s_seconds", buf);
        free(buf);
        buf = secs;
    }
    if (type == METRICS_COUNTER && !ends_with(buf, "_total")) {
        char *total = xasprintf("%s_total", buf);
        free(buf);
        buf = total;
    }
    return buf;
}

/* Adds the sample of leaf 'v' at 'path' (see metrics_add_json()). */
static void
walk_leaf(const struct json_walk *w, const char *path, const json_t *v,
          const struct metrics_rule *rule, const char *rest)
{
    enum metrics_type type = (rule ? rule->type
                              : strstr(path, "counters.") == path
                                || strstr(path, ".counters.")
                              ? METRICS_COUNTER : METRICS_GAUGE);
    if (type == METRICS_SKIP || json_is_null(v) || json_is_array(v)
        || (json_is_string(v) != (type == METRICS_STATE))) {
        return;
    }

    /* A '*' rule with a label puts the rest of the name in the label. */
    if (!rest || !rule->label) {
        rest = NULL;
    }
    double scale;
    char *name;
    if (rule && rule->name) {
        free(derive_name("", path, type, &scale));  /* For 'scale'. */
        name = xasprintf("%s_%s", w->prefix, rule->name);
    } else if (rest) {
        /* Named after the rule's path, without the '*'. */
        char *stem = xstrdup(rule->path);
        size_t n = strlen(stem) - 1;
        while (n && (stem[n - 1] == '_' || stem[n - 1] == '.')) {
            n--;
        }
        stem[n] = '\0';
        name = derive_name(w->prefix, stem, type, &scale);
        free(stem);
    } else {
        name = derive_name(w->prefix, path, type, &scale);
    }
    if (rule && rule->scale) {
        scale = rule->scale;
    }
    char *help = (rule && rule->help ? xstrdup(rule->help)
                  : xasprintf("%s: %s", w->source, path));
    struct metrics_family *f = get_family(w->m, name,
                                          type == METRICS_STATE
                                          ? METRICS_GAUGE : type, help);
    if (type == METRICS_STATE) {
        put_sample(f, name, w->labels, rule->label, json_string_value(v), 1);
    } else {
        double value = (json_is_boolean(v) ? json_is_true(v)
                        : json_number_value(v) * scale);
        put_sample(f, name, w->labels, rest ? rule->label : NULL, rest,
                   value);
    }
    free(help);
    free(name);
}

/* Walks 'obj' at 'path' ("" at the top), with 'inherited' the rule of the
 * closest enclosing object that had one. */
static void
walk(const struct json_walk *w, const char *path, const json_t *obj,
     const struct metrics_rule *inherited)
{
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *) obj, key, v) {
        char *sub = *path ? xasprintf("%s.%s", path, key) : xstrdup(key);
        const char *rest;
        const struct metrics_rule *rule = find_rule(w->rules, sub, &rest);
        struct metrics_rule derived;
        if (!rule && inherited) {
            /* The enclosing object's type, not its name or help. */
            derived = (struct metrics_rule) { sub, inherited->type,
                                              NULL, NULL, NULL, 0 };
            rule = &derived;
        }
        if (json_is_object(v)) {
            if (!rule || rule->type != METRICS_SKIP) {
                walk(w, sub, v, rule);
            }
        } else {
            walk_leaf(w, sub, v, rule, rest);
        }
        free(sub);
    }
}

void
metrics_add_json(struct metrics *m, const char *prefix, const char *source,
                 const json_t *obj, const struct metrics_labels *labels,
                 const struct metrics_rule *rules)
{
    struct json_walk w = { m, prefix, source, labels, rules };
    if (json_is_object(obj)) {
        walk(&w, "", obj, NULL);
    }
}

/* The control socket. */

static const struct metrics_rule ctl_rules[] = {
    { "ctl.conns", METRICS_GAUGE, "ctl_connections",
      "Control socket connections open now.", NULL },
    { "ctl.conns_accepted", METRICS_COUNTER, "ctl_connections_total",
      "Control socket connections accepted.", NULL },
    { "ctl.conns_refused", METRICS_COUNTER, "ctl_refused_connections_total",
      "Control socket connections refused: too many open.", NULL },
    { "ctl.conns_unauthorized", METRICS_COUNTER,
      "ctl_unauthorized_connections_total",
      "Control socket connections refused: peer neither root nor the "
      "daemon's user.", NULL },
    { "ctl.requests", METRICS_COUNTER, "ctl_requests_total",
      "Control commands run.", NULL },
    { "ctl.bad_json", METRICS_COUNTER, "ctl_bad_json_total",
      "Control socket input that was not JSON (connection closed).",
      NULL },
    { "ctl.oversized", METRICS_COUNTER, "ctl_oversized_total",
      "Control socket messages over the size limit (connection closed).",
      NULL },
    { "ctl.bad_requests", METRICS_COUNTER, "ctl_bad_requests_total",
      "Control socket messages that were not a valid request.", NULL },
    { "ctl.unknown_commands", METRICS_COUNTER, "ctl_unknown_commands_total",
      "Control requests for a command that does not exist.", NULL },
    { "ctl.bad_arg_counts", METRICS_COUNTER, "ctl_bad_arg_counts_total",
      "Control requests with the wrong number of arguments.", NULL },
    { "ctl.errors_replied", METRICS_COUNTER, "ctl_errors_replied_total",
      "Control requests answered with an error, of any cause.", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

void
metrics_add_ctl(struct metrics *m, const char *prefix,
                const struct ctl_server *server,
                const struct metrics_labels *labels)
{
    struct ctl_server_stats st;
    ctl_server_get_stats(server, &st);
    json_t *j = json_pack(
        "{s{sI sI sI sI sI sI sI sI sI sI sI}}", "ctl",
        "conns", (json_int_t) st.n_conns,
        "conns_accepted", (json_int_t) st.n_conns_accepted,
        "conns_refused", (json_int_t) st.n_conns_refused,
        "conns_unauthorized", (json_int_t) st.n_conns_unauthorized,
        "requests", (json_int_t) st.n_requests,
        "bad_json", (json_int_t) st.n_bad_json,
        "oversized", (json_int_t) st.n_oversized,
        "bad_requests", (json_int_t) st.n_bad_requests,
        "unknown_commands", (json_int_t) st.n_unknown_commands,
        "bad_arg_counts", (json_int_t) st.n_bad_arg_counts,
        "errors_replied", (json_int_t) st.n_errors_replied);
    metrics_add_json(m, prefix, "ctl/stats", j, labels, ctl_rules);
    json_decref(j);
}

/* Rendering. */

static const char *
type_name(enum metrics_type type)
{
    return (type == METRICS_COUNTER ? "counter"
            : type == METRICS_HISTOGRAM ? "histogram"
            : "gauge");
}

/* Writes 'help' with backslash and new-line escaped, as HELP wants. */
static void
put_help(FILE *s, const char *help)
{
    for (; *help; help++) {
        if (*help == '\\') {
            fputs("\\\\", s);
        } else if (*help == '\n') {
            fputs("\\n", s);
        } else {
            putc(*help, s);
        }
    }
}

char *
metrics_render(const struct metrics *m)
{
    struct metrics_family **order = xcalloc(m->n_families + 1,
                                            sizeof *order);
    struct metrics_family *f;
    HMAP_FOR_EACH_SAFE (f, node, &m->families) {
        order[f->order] = f;
    }

    size_t size = 0;
    char *buf = NULL;
    FILE *s = open_memstream(&buf, &size);
    for (size_t i = 0; i < m->n_families; i++) {
        f = order[i];
        fflush(f->lines);
        fprintf(s, "# HELP %s ", f->name);
        put_help(s, f->help);
        fprintf(s, "\n# TYPE %s %s\n", f->name, type_name(f->type));
        fwrite(f->buf, 1, f->size, s);
    }
    fclose(s);
    free(order);
    return buf;
}
