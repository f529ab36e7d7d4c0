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

struct flowmgr {
    struct flow_template *template;
    char *template_path;
    struct ofctrl *ofctrl;

    struct flow_template_flows wanted;
    uint16_t *vids;             /* Distinct vids in 'wanted'. */
    size_t n_vids;
    uint64_t wanted_seqno;      /* Bumped when 'wanted' or a rate changes. */
    uint64_t installed_seqno;   /* 'wanted_seqno' of the last good sync. */

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
    uint64_t sync_seqno;        /* 'wanted_seqno' it is installing. */
    uint32_t *sync_ids;         /* Chan-ids of the flows it installs. */
    size_t n_sync_ids;
    size_t sync_n_flows;
};

static void add_bridge_flows(struct flowmgr *);

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
    fm->wanted_seqno++;
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

/* Drops the flows of 'fm->wanted' from index 'n' on. */
static void
truncate_wanted(struct flowmgr *fm, size_t n)
{
    while (fm->wanted.n > n) {
        free(fm->wanted.flows[--fm->wanted.n].text);
    }
}

static char *
render_error(const struct flowmgr *fm, const char *what,
             enum flow_template_error e, const struct flow_template_diag *diag)
{
    return xasprintf("%s flow template %s:%u: %s%s%s", what,
                     fm->template_path, diag->line, flow_template_strerror(e),
                     *diag->detail ? ": " : "", diag->detail);
}

/* Renders 'section' with 'v' into the wanted flows.  Returns NULL or an
 * error message (malloc'd); on error the wanted flows are unchanged. */
static char *
render(struct flowmgr *fm, enum flow_template_section section,
       uint32_t chan_id, const struct chan_flows_vars *v)
{
    struct flow_template_diag diag;
    size_t n_before = fm->wanted.n;
    enum flow_template_error e = flow_template_render(
        fm->template, section, chan_id, v->vars, v->n, &fm->wanted, &diag);
    if (e) {
        return render_error(fm, flow_template_section_name(section), e,
                            &diag);
    }
    char *error = check_flows(fm, &fm->wanted, n_before);
    if (error) {
        truncate_wanted(fm, n_before);
    }
    return error;
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
    char *error = render(fm, FLOW_TEMPLATE_BRIDGE, 0, &v);
    if (!error && fm->inject_ofport) {
        error = render(fm, FLOW_TEMPLATE_PORT, 0, &v);
    }
    if (error) {
        VLOG_ERR("%s", error);
        free(error);
    }
}

void
flowmgr_clear(struct flowmgr *fm)
{
    flow_template_flows_destroy(&fm->wanted);
    flow_template_flows_init(&fm->wanted);
    fm->n_vids = 0;
    fm->n_meters = 0;
    add_bridge_flows(fm);
    fm->wanted_seqno++;
}

char *
flowmgr_add_channel(struct flowmgr *fm, const struct chan_config *cfg,
                    int64_t ofport)
{
    uint32_t meter_id = chan_flows_meter_id(cfg->chan_id);
    for (size_t i = 0; i < fm->n_meters; i++) {
        if (fm->meters[i].meter_id == meter_id) {
            return xasprintf("meter %u already used by chan-id %u",
                             meter_id, fm->meters[i].chan_id);
        }
    }
    struct chan_flows_vars v;
    chan_flows_host_vars(cfg, ofport, fm->inject_ofport, &v);
    size_t n_before = fm->wanted.n;
    char *error = render(fm, FLOW_TEMPLATE_CHANNEL, cfg->chan_id, &v);
    if (error) {
        return error;
    }

    bool have_vid = false;
    for (size_t i = 0; i < fm->n_vids; i++) {
        have_vid |= fm->vids[i] == cfg->vid;
    }
    if (!have_vid) {
        error = render(fm, FLOW_TEMPLATE_VID, 0, &v);
        if (error) {
            truncate_wanted(fm, n_before);      /* This channel's flows. */
            return error;
        }
        fm->vids = xrealloc(fm->vids, (fm->n_vids + 1) * sizeof *fm->vids);
        fm->vids[fm->n_vids++] = cfg->vid;
    }
    fm->meters = xrealloc(fm->meters,
                          (fm->n_meters + 1) * sizeof *fm->meters);
    fm->meters[fm->n_meters++] = (struct fm_meter) {
        .meter_id = meter_id, .chan_id = cfg->chan_id,
    };
    fm->wanted_seqno++;
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
    fm->sync_seqno = fm->wanted_seqno;
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
        fm->installed_seqno = fm->sync_seqno;
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
    return fm->wanted_seqno != fm->installed_seqno;
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
