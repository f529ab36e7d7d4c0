/*
 * metrics: a daemon's counters and gauges in the Prometheus text exposition
 * format, version 0.0.4 (what Prometheus scrapes from "Content-Type:
 * text/plain; version=0.0.4").
 *
 * A caller collects samples into a struct metrics, in any order, then
 * renders them once: metrics_render() groups them by metric family, each
 * family with its "# HELP" and "# TYPE" lines, in the order the families
 * were first added.  Label values are escaped as the format wants
 * (backslash, double quote and new-line).  Every chand daemon renders its
 * metrics here, whether they go out through its control socket or over
 * HTTP (metrics-http.h).
 *
 * Most of a daemon's counters live in the JSON objects its status commands
 * return (host/status, channel/show, guest/status), so metrics_add_json()
 * turns such an object into samples: every number and boolean in it
 * becomes one sample, named after its path, unless a rule (struct
 * metrics_rule) names it, types it or leaves it out.  A member of an
 * object called "counters" is a counter; anything else is a gauge; a
 * member ending in "_us" or "_ms" is converted to seconds.  So a counter
 * the daemon adds later still shows up, with a name derived from its JSON
 * name, without a change here.
 *
 * latency-hist.h histograms become Prometheus histograms in seconds
 * (metrics_add_histogram()).
 */
#ifndef METRICS_H
#define METRICS_H 1

#include <jansson.h>
#include <stddef.h>

struct latency_hist;

enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
    METRICS_STATE,              /* Rules only: a string member, as a gauge
                                 * of 1 with its value in a label. */
    METRICS_SKIP                /* Rules only: left out. */
};

/* Labels of one sample.  Names and values are borrowed. */
#define METRICS_MAX_LABELS 8
struct metrics_labels {
    size_t n;
    const char *names[METRICS_MAX_LABELS];
    const char *values[METRICS_MAX_LABELS];
};

/* Appends label NAME="VALUE" to 'labels' (both borrowed; NULL 'value' is
 * left out).  Aborts beyond METRICS_MAX_LABELS, a programming error. */
void metrics_labels_add(struct metrics_labels *, const char *name,
                        const char *value);

/* Creates an empty collection.  The caller destroys it with
 * metrics_destroy(). */
struct metrics *metrics_create(void);
void metrics_destroy(struct metrics *);

/* Adds one sample of family 'name' (a valid metric name; a counter's ends
 * in "_total").  The family's type and help are those of its first
 * sample.  'labels' may be NULL.  Everything is copied. */
void metrics_add(struct metrics *, const char *name, enum metrics_type,
                 const char *help, const struct metrics_labels *,
                 double value);

/* Adds the latency histogram 'h' (values in microseconds) as histogram
 * 'name' (ending in "_seconds"): buckets at 2^k - 1 microseconds for k = 0
 * to 31, which are bucket bounds of latency-hist, so every cumulative
 * count is exact, then "+Inf", "_sum" and "_count". */
void metrics_add_histogram(struct metrics *, const char *name,
                           const char *help, const struct metrics_labels *,
                           const struct latency_hist *h);

/* How metrics_add_json() treats the member at 'path', the dot-separated
 * names from the object given to it down to the member, e.g.
 * "counters.rx_ack".  A 'path' ending in '*' matches every path that
 * starts with what precedes it; with a 'label', the rest of the member's
 * name then goes in that label (e.g. "counters.rx_drop_*" with label
 * "reason") and the series is named after 'name' or the path before the
 * '*'; without one, each member is named after its own path (so a '*'
 * rule with a 'name' needs a 'label').  An
 * object's path matches too: a rule on an object applies to every member
 * under it that has no rule of its own.  Rules are tried in order. */
struct metrics_rule {
    const char *path;
    enum metrics_type type;
    const char *name;           /* Without the prefix; NULL: derived from
                                 * the path. */
    const char *help;           /* NULL: names the source and path. */
    const char *label;          /* For a '*' path or METRICS_STATE. */
    double scale;               /* Factor to the unit in the name; 0: from
                                 * the path ("_us", "_ms" to seconds). */
};

/* Adds every number and boolean of JSON object 'obj' (borrowed) as a
 * sample named 'prefix' + "_" + its path (without "counters" components,
 * with "_total" for counters and "_seconds" for "_us" and "_ms" members),
 * with 'labels' (may be NULL), as 'rules' (an array ending with a rule
 * whose 'path' is NULL; may be NULL) say.  Strings, arrays and nulls are
 * left out unless a rule says METRICS_STATE.  'source' names where 'obj'
 * came from, for the default help text, e.g. "chand-host host/status". */
void metrics_add_json(struct metrics *, const char *prefix,
                      const char *source, const json_t *obj,
                      const struct metrics_labels *,
                      const struct metrics_rule *rules);

/* Adds the control socket counters of 'server' (lib/ctl, what ctl/stats
 * shows) as 'prefix'_ctl_* series with 'labels' (may be NULL). */
struct ctl_server;
void metrics_add_ctl(struct metrics *, const char *prefix,
                     const struct ctl_server *,
                     const struct metrics_labels *);

/* Returns the exposition text of everything added (a new string owned by
 * the caller; "" for nothing). */
char *metrics_render(const struct metrics *);

/* Returns 'value' escaped for a label value in the text format: backslash,
 * double quote and new-line as \\, \" and \n (a new string owned by the
 * caller). */
char *metrics_escape_label_value(const char *value);

/* The content type of metrics_render()'s text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif /* metrics.h */
