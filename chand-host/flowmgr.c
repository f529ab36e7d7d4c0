/* flowmgr: chand-host's flows and meters on the host bridge.  See
 * flowmgr.h. */

#include <config.h>
#include "flowmgr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan-flows.h"
#include "flow-counters.h"
#include "flow-template.h"
#include "hmap.h"
#include "ofctrl.h"
#include "ofp13-flow.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(flowmgr);

/* A whole sync is stopped after this long. */
#define FLOWMGR_SYNC_TIMEOUT_MS 120000

struct fm_meter {
    uint32_t meter_id;
    uint32_t chan_id;
};

/* A channel's rendered [channel] rules, kept from one rebuild of the wanted
 * set to the next: a rebuild renders (and checks) only the channels whose
 * variables changed, and copies the others. */
struct fm_channel {
    struct hmap_node node;      /* In 'channels', by chan-id. */
    uint32_t chan_id;
    char *inputs;               /* The variables it was rendered with. */
    struct flow_template_flows flows;
    bool used;                  /* Added since the last flowmgr_clear(). */
};

struct flowmgr {
    struct flow_template *template;
    char *template_path;
    struct ofctrl *ofctrl;

    struct flow_template_flows wanted;
    struct flow_template_flows shared;  /* The chan-id 0 rules of 'wanted'
                                         * ([bridge], [port], [vid]). */
    struct hmap channels;       /* Of struct fm_channel. */
    uint16_t *vids;             /* Distinct vids in 'wanted'. */
    size_t n_vids;
    uint64_t wanted_hash;       /* Of 'wanted' (cookies and texts), in
                                 * order, and the meters. */
    uint64_t installed_hash;    /* wanted_hash() of the last good sync, 0
                                 * if none. */

    int64_t inject_ofport;      /* chand port's ofport, 0: OpenFlow. */

    unsigned int meter_pps, meter_burst;
    struct fm_meter *meters;    /* Wanted: one per channel. */
    size_t n_meters;
    struct flow_counters counters;  /* Counted flows, as of the last sync. */

    uint32_t *installed_ids;    /* Chan-ids whose flows are installed. */
    size_t n_installed_ids;
    size_t n_installed;

    /* The sync in progress. */
    bool syncing;
    uint64_t sync_hash;         /* wanted_hash() it is installing. */
    uint32_t *sync_ids;         /* Chan-ids of the flows it installs. */
    size_t n_sync_ids;
    size_t sync_n_flows;
};

static void add_bridge_flows(struct flowmgr *);
static void fm_channel_free(struct flowmgr *, struct fm_channel *);

/* Reads and parses the template at 'path'.  Returns it, or NULL with the
 * error logged. */
static struct flow_template *
load_template(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        VLOG_ERR("%s: cannot read flow template (%s)", path,
                 strerror(errno));
        return NULL;
    }
    struct flow_template *ft;
    struct flow_template_diag diag;
    enum flow_template_error e = flow_template_parse(text, len, &ft, &diag);
    free(text);
    if (e) {
        VLOG_ERR("%s:%u: %s%s%s", path, diag.line, flow_template_strerror(e),
                 *diag.detail ? ": " : "", diag.detail);
        return NULL;
    }
    return ft;
}

struct flowmgr *
flowmgr_create(const char *template_path, const char *target)
{
    struct flow_template *ft = load_template(template_path);
    if (!ft) {
        return NULL;
    }
    struct flowmgr *fm = xcalloc(1, sizeof *fm);
    fm->template = ft;
    fm->template_path = xstrdup(template_path);
    fm->ofctrl = ofctrl_create(target, template_path, OFCTRL_CHAND_FLOWS,
                               1, CHAN_FLOWS_MAX_METER);
    flow_template_flows_init(&fm->wanted);
    flow_template_flows_init(&fm->shared);
    hmap_init(&fm->channels);
    flow_counters_init(&fm->counters);
    fm->meter_pps = 2000;
    fm->meter_burst = 500;
    flowmgr_clear(fm);
    return fm;
}

void
flowmgr_destroy(struct flowmgr *fm)
{
    if (fm) {
        ofctrl_destroy(fm->ofctrl);
        flow_template_destroy(fm->template);
        flow_template_flows_destroy(&fm->wanted);
        flow_template_flows_destroy(&fm->shared);
        struct fm_channel *c;
        HMAP_FOR_EACH_SAFE (c, node, &fm->channels) {
            fm_channel_free(fm, c);
        }
        hmap_destroy(&fm->channels);
        free(fm->template_path);
        free(fm->vids);
        free(fm->installed_ids);
        free(fm->sync_ids);
        free(fm->meters);
        flow_counters_destroy(&fm->counters);
        free(fm);
    }
}

void
flowmgr_set_inject_ofport(struct flowmgr *fm, int64_t ofport)
{
    fm->inject_ofport = ofport > 0 ? ofport : 0;
}

void
flowmgr_set_meter_rate(struct flowmgr *fm, unsigned int pps,
                       unsigned int burst)
{
    fm->meter_pps = pps;
    fm->meter_burst = burst;
}

/* Checks that every flow of 'flows' from index 'first' on can be encoded.
 * Returns NULL, or an error message (malloc'd) naming the template line. */
static char *
check_flows(const struct flowmgr *fm, const struct flow_template_flows *flows,
            size_t first)
{
    for (size_t i = first; i < flows->n; i++) {
        const struct flow_template_flow *f = &flows->flows[i];
        struct ofp13_flow flow;
        char err[128];
        if (ofp13_flow_parse(f->text, &flow, err, sizeof err)) {
            return xasprintf("%s:%u: %s", fm->template_path, f->line, err);
        }
    }
    return NULL;
}

static char *
render_error(const struct flowmgr *fm, const char *what,
             enum flow_template_error e, const struct flow_template_diag *diag)
{
    return xasprintf("%s flow template %s:%u: %s%s%s", what,
                     fm->template_path, diag->line, flow_template_strerror(e),
                     *diag->detail ? ": " : "", diag->detail);
}

/* Renders 'section' with 'v' into 'flows', whose own rules are the only
 * ones its cookies are checked against (rules of different chan-ids cannot
 * share a cookie: it carries the chan-id).  Returns NULL or an error
 * message (malloc'd); on error 'flows' is unchanged. */
static char *
render(const struct flowmgr *fm, enum flow_template_section section,
       uint32_t chan_id, const struct chan_flows_vars *v,
       struct flow_template_flows *flows)
{
    struct flow_template_diag diag;
    size_t n_before = flows->n;
    enum flow_template_error e = flow_template_render(
        fm->template, section, chan_id, v->vars, v->n, flows, &diag);
    if (e) {
        return render_error(fm, flow_template_section_name(section), e,
                            &diag);
    }
    char *error = check_flows(fm, flows, n_before);
    if (error) {
        while (flows->n > n_before) {
            free(flows->flows[--flows->n].text);
        }
    }
    return error;
}

/* Appends copies of 'flows' from index 'first' on to the wanted set. */
static void
want_flows(struct flowmgr *fm, const struct flow_template_flows *flows,
           size_t first)
{
    struct flow_template_flows *w = &fm->wanted;
    size_t n = flows->n - first;
    if (w->n + n > w->allocated) {
        w->allocated = w->allocated ? 2 * w->allocated : 64;
        if (w->allocated < w->n + n) {
            w->allocated = w->n + n;
        }
        w->flows = xrealloc(w->flows, w->allocated * sizeof *w->flows);
    }
    for (size_t i = first; i < flows->n; i++) {
        struct flow_template_flow *f = &w->flows[w->n++];
        *f = flows->flows[i];
        f->text = xstrdup(f->text);

        /* FNV-1a over the cookie and the text. */
        uint64_t h = fm->wanted_hash ^ f->cookie;
        h *= 1099511628211ULL;
        for (const char *p = f->text; *p; p++) {
            h = (h ^ (unsigned char) *p) * 1099511628211ULL;
        }
        fm->wanted_hash = h;
    }
}

/* What a sync installs: the wanted flows and meters, and the meters'
 * rate.  A rebuild that changes none of them needs no sync. */
static uint64_t
wanted_hash(const struct flowmgr *fm)
{
    uint64_t h = fm->wanted_hash;
    h = (h ^ fm->meter_pps) * 1099511628211ULL;
    h = (h ^ fm->meter_burst) * 1099511628211ULL;
    return h ? h : 1;
}

static int
compare_ids(const void *a_, const void *b_)
{
    uint32_t a = *(const uint32_t *) a_, b = *(const uint32_t *) b_;
    return a < b ? -1 : a > b;
}

/* Renders the [bridge] rules, and the [port] rules if frames go through a
 * chand port. */
static void
add_bridge_flows(struct flowmgr *fm)
{
    struct chan_flows_vars v;
    chan_flows_host_vars(NULL, 0, fm->inject_ofport, &v);
    char *error = render(fm, FLOW_TEMPLATE_BRIDGE, 0, &v, &fm->shared);
    if (!error && fm->inject_ofport) {
        error = render(fm, FLOW_TEMPLATE_PORT, 0, &v, &fm->shared);
    }
    if (error) {
        VLOG_ERR("%s", error);
        free(error);
    }
    want_flows(fm, &fm->shared, 0);
}

static void
fm_channel_free(struct flowmgr *fm, struct fm_channel *c)
{
    hmap_remove(&fm->channels, &c->node);
    free(c->inputs);
    flow_template_flows_destroy(&c->flows);
    free(c);
}

static struct fm_channel *
fm_channel_find(const struct flowmgr *fm, uint32_t chan_id)
{
    struct fm_channel *c;
    HMAP_FOR_EACH_WITH_HASH (c, node, chan_id * 2654435761u, &fm->channels) {
        if (c->chan_id == chan_id) {
            return c;
        }
    }
    return NULL;
}

void
flowmgr_clear(struct flowmgr *fm)
{
    /* Rendered channels the last rebuild did not add are gone. */
    struct fm_channel *c;
    HMAP_FOR_EACH_SAFE (c, node, &fm->channels) {
        if (!c->used) {
            fm_channel_free(fm, c);
        } else {
            c->used = false;
        }
    }
    flow_template_flows_destroy(&fm->wanted);
    flow_template_flows_init(&fm->wanted);
    flow_template_flows_destroy(&fm->shared);
    flow_template_flows_init(&fm->shared);
    fm->wanted_hash = 1469598103934665603ULL;
    fm->n_vids = 0;
    fm->n_meters = 0;
    add_bridge_flows(fm);
}

/* Returns the text that identifies variables 'v' (a new string). */
static char *
vars_inputs(const struct chan_flows_vars *v)
{
    size_t size = 1;
    for (size_t i = 0; i < v->n; i++) {
        size += strlen(v->vars[i].name) + strlen(v->vars[i].value) + 2;
    }
    char *s = xmalloc(size), *p = s;
    for (size_t i = 0; i < v->n; i++) {
        p += sprintf(p, "%s=%s;", v->vars[i].name, v->vars[i].value);
    }
    *p = '\0';
    return s;
}

/* Returns channel 'cfg''s rendered [channel] rules for variables 'v',
 * rendering them only if they are not kept from an earlier rebuild, or
 * NULL with an error message in '*errorp'. */
static struct fm_channel *
channel_flows(struct flowmgr *fm, const struct chan_config *cfg,
              const struct chan_flows_vars *v, char **errorp)
{
    char *inputs = vars_inputs(v);
    struct fm_channel *c = fm_channel_find(fm, cfg->chan_id);
    if (c && !strcmp(c->inputs, inputs)) {
        free(inputs);
        return c;
    }
    if (c) {
        fm_channel_free(fm, c);
    }
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    *errorp = render(fm, FLOW_TEMPLATE_CHANNEL, cfg->chan_id, v, &flows);
    if (*errorp) {
        free(inputs);
        flow_template_flows_destroy(&flows);
        return NULL;
    }
    c = xzalloc(sizeof *c);
    c->chan_id = cfg->chan_id;
    c->inputs = inputs;
    c->flows = flows;
    hmap_insert(&fm->channels, &c->node, cfg->chan_id * 2654435761u);
    return c;
}

char *
flowmgr_add_channel(struct flowmgr *fm, const struct chan_config *cfg,
                    int64_t ofport)
{
    uint32_t meter_id = chan_flows_meter_id(cfg->chan_id);
    if (meter_id != cfg->chan_id) {
        /* A folded meter id (chan_flows_meter_id()) may be taken. */
        for (size_t i = 0; i < fm->n_meters; i++) {
            if (fm->meters[i].meter_id == meter_id) {
                return xasprintf("meter %u already used by chan-id %u",
                                 meter_id, fm->meters[i].chan_id);
            }
        }
    }
    struct chan_flows_vars v;
    chan_flows_host_vars(cfg, ofport, fm->inject_ofport, &v);
    char *error;
    struct fm_channel *c = channel_flows(fm, cfg, &v, &error);
    if (!c) {
        return error;
    }

    bool have_vid = false;
    for (size_t i = 0; i < fm->n_vids; i++) {
        have_vid |= fm->vids[i] == cfg->vid;
    }
    if (!have_vid) {
        size_t n_shared = fm->shared.n;
        error = render(fm, FLOW_TEMPLATE_VID, 0, &v, &fm->shared);
        if (error) {
            return error;
        }
        want_flows(fm, &fm->shared, n_shared);
        fm->vids = xrealloc(fm->vids, (fm->n_vids + 1) * sizeof *fm->vids);
        fm->vids[fm->n_vids++] = cfg->vid;
    }
    c->used = true;
    want_flows(fm, &c->flows, 0);
    fm->meters = xrealloc(fm->meters,
                          (fm->n_meters + 1) * sizeof *fm->meters);
    fm->meters[fm->n_meters++] = (struct fm_meter) {
        .meter_id = meter_id, .chan_id = cfg->chan_id,
    };
    fm->wanted_hash = (fm->wanted_hash ^ meter_id) * 1099511628211ULL;
    return NULL;
}

uint64_t
flowmgr_counter(const struct flowmgr *fm, uint32_t chan_id, const char *name)
{
    return flow_counters_get(&fm->counters, chan_id, name);
}

uint64_t
flowmgr_meter_drops(const struct flowmgr *fm, uint32_t chan_id)
{
    return ofctrl_meter_drops(fm->ofctrl, chan_flows_meter_id(chan_id));
}

void
flowmgr_sync(struct flowmgr *fm, bool force, long long now)
{
    if (fm->syncing || (!force && !flowmgr_needs_sync(fm))) {
        return;
    }
    struct ofctrl_meter *meters = xmalloc((fm->n_meters + 1)
                                          * sizeof *meters);
    for (size_t i = 0; i < fm->n_meters; i++) {
        meters[i] = (struct ofctrl_meter) {
            .meter_id = fm->meters[i].meter_id,
            .rate = fm->meter_pps, .burst = fm->meter_burst,
        };
    }
    if (ofctrl_sync_start(fm->ofctrl, &fm->wanted, meters, fm->n_meters,
                          now + FLOWMGR_SYNC_TIMEOUT_MS)) {
        free(meters);
        return;
    }
    free(meters);

    fm->syncing = true;
    fm->sync_hash = wanted_hash(fm);
    fm->sync_ids = xrealloc(fm->sync_ids,
                            (fm->wanted.n + 1) * sizeof *fm->sync_ids);
    fm->n_sync_ids = 0;
    for (size_t i = 0; i < fm->wanted.n; i++) {
        if (fm->wanted.flows[i].chan_id) {
            fm->sync_ids[fm->n_sync_ids++] = fm->wanted.flows[i].chan_id;
        }
    }
    /* Sorted and unique, for flowmgr_is_installed()'s binary search. */
    qsort(fm->sync_ids, fm->n_sync_ids, sizeof *fm->sync_ids, compare_ids);
    size_t n = 0;
    for (size_t i = 0; i < fm->n_sync_ids; i++) {
        if (!n || fm->sync_ids[n - 1] != fm->sync_ids[i]) {
            fm->sync_ids[n++] = fm->sync_ids[i];
        }
    }
    fm->n_sync_ids = n;
    fm->sync_n_flows = fm->wanted.n;
}

/* Adds up the counted flows' packets from the sync's flow statistics. */
static void
take_counters(struct flowmgr *fm)
{
    size_t n_stats;
    const struct flow_packets *stats = ofctrl_flow_stats(fm->ofctrl,
                                                         &n_stats);
    struct flow_count *counts;
    size_t n = flow_counters_sum_packets(&fm->wanted, stats, n_stats,
                                         &counts);
    if (n) {
        flow_counters_update(&fm->counters, counts, n);
    }
    free(counts);
}

bool
flowmgr_run(struct flowmgr *fm, long long now, int *errorp)
{
    int error;

    ofctrl_run(fm->ofctrl, now);
    if (!fm->syncing || !ofctrl_sync_result(fm->ofctrl, &error)) {
        return false;
    }
    fm->syncing = false;
    if (!error) {
        take_counters(fm);
        uint32_t *ids = fm->installed_ids;
        fm->installed_ids = fm->sync_ids;
        fm->n_installed_ids = fm->n_sync_ids;
        fm->sync_ids = ids;
        fm->n_installed = fm->sync_n_flows;
        fm->installed_hash = fm->sync_hash;
    }
    *errorp = error;
    return true;
}

void
flowmgr_wait(const struct flowmgr *fm)
{
    ofctrl_wait(fm->ofctrl);
}

bool
flowmgr_is_connected(const struct flowmgr *fm)
{
    return ofctrl_is_connected(fm->ofctrl);
}

unsigned int
flowmgr_get_seqno(const struct flowmgr *fm)
{
    return ofctrl_get_seqno(fm->ofctrl);
}

bool
flowmgr_is_syncing(const struct flowmgr *fm)
{
    return fm->syncing;
}

bool
flowmgr_needs_sync(const struct flowmgr *fm)
{
    return wanted_hash(fm) != fm->installed_hash;
}

bool
flowmgr_is_installed(const struct flowmgr *fm, uint32_t chan_id)
{
    return fm->n_installed_ids
           && bsearch(&chan_id, fm->installed_ids, fm->n_installed_ids,
                      sizeof *fm->installed_ids, compare_ids);
}

size_t
flowmgr_n_installed(const struct flowmgr *fm)
{
    return fm->n_installed;
}

uint64_t
flowmgr_n_errors(const struct flowmgr *fm)
{
    return ofctrl_n_errors(fm->ofctrl);
}
