/* Copyright (c) 2026 The chand authors.  See flowmgr.h. */

#include <config.h>
#include "flowmgr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan-flows.h"
#include "flow-template.h"
#include "packets.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(flowmgr);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

struct fm_meter {
    uint32_t meter_id;
    uint32_t chan_id;
    uint64_t drops;
};

struct flowmgr {
    struct flow_template *template;
    char *target;

    struct flow_template_flows wanted;
    uint16_t *vids;             /* Distinct vids in 'wanted'. */
    size_t n_vids;
    bool dirty;                 /* 'wanted' changed since the last sync. */

    unsigned int meter_pps, meter_burst;
    struct fm_meter *meters;    /* Wanted: one per channel. */
    size_t n_meters;
    struct fm_meter *meter_drops;   /* Drops read at the last sync. */
    size_t n_meter_drops;

    uint32_t *installed_ids;    /* Chan-ids whose flows are installed. */
    size_t n_installed_ids;
    size_t n_installed;
};

static char *
read_file(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return NULL;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    *lenp = len;
    return buf;
}

static void add_bridge_flows(struct flowmgr *);

int
flowmgr_create(const char *template_path, const char *target,
               struct flowmgr **fmp)
{
    size_t len;
    char *text = read_file(template_path, &len);
    *fmp = NULL;
    if (!text) {
        int error = errno;
        VLOG_ERR("%s: cannot read flow template (%s)", template_path,
                 strerror(error));
        return error;
    }
    struct flow_template *ft;
    struct flow_template_diag diag;
    enum flow_template_error e = flow_template_parse(text, len, &ft, &diag);
    free(text);
    if (e) {
        VLOG_ERR("%s:%u: %s%s%s", template_path, diag.line,
                 flow_template_strerror(e), *diag.detail ? ": " : "",
                 diag.detail);
        return EINVAL;
    }

    struct flowmgr *fm = calloc(1, sizeof *fm);
    fm->template = ft;
    fm->target = strdup(target);
    flow_template_flows_init(&fm->wanted);
    fm->meter_pps = 2000;
    fm->meter_burst = 500;
    flowmgr_clear(fm);
    *fmp = fm;
    return 0;
}

void
flowmgr_destroy(struct flowmgr *fm)
{
    if (fm) {
        flow_template_destroy(fm->template);
        flow_template_flows_destroy(&fm->wanted);
        free(fm->target);
        free(fm->vids);
        free(fm->installed_ids);
        free(fm->meters);
        free(fm->meter_drops);
        free(fm);
    }
}

void
flowmgr_set_meter_rate(struct flowmgr *fm, unsigned int pps,
                       unsigned int burst)
{
    fm->meter_pps = pps;
    fm->meter_burst = burst;
    fm->dirty = true;
}

static void
add_bridge_flows(struct flowmgr *fm)
{
    struct chan_flows_vars v;
    chan_flows_host_vars(NULL, 0, &v);
    struct flow_template_diag diag;
    enum flow_template_error e = flow_template_render(
        fm->template, FLOW_TEMPLATE_BRIDGE, 0, v.vars, v.n, &fm->wanted,
        &diag);
    if (e) {
        VLOG_ERR("flow template line %u: %s", diag.line,
                 flow_template_strerror(e));
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
    fm->dirty = true;
}

static char *
render_error(const char *what, enum flow_template_error e,
             const struct flow_template_diag *diag)
{
    char *msg;
    if (asprintf(&msg, "%s flow template line %u: %s%s%s", what, diag->line,
                 flow_template_strerror(e), *diag->detail ? ": " : "",
                 diag->detail) < 0) {
        abort();
    }
    return msg;
}

char *
flowmgr_add_channel(struct flowmgr *fm, const struct chan_config *cfg,
                    int64_t ofport)
{
    uint32_t meter_id = chan_flows_meter_id(cfg->chan_id);
    for (size_t i = 0; i < fm->n_meters; i++) {
        if (fm->meters[i].meter_id == meter_id) {
            char *msg;
            if (asprintf(&msg, "meter %u already used by chand-id %u",
                         meter_id, fm->meters[i].chan_id) < 0) {
                abort();
            }
            return msg;
        }
    }
    struct chan_flows_vars v;
    chan_flows_host_vars(cfg, ofport, &v);
    struct flow_template_diag diag;
    size_t n_before = fm->wanted.n;

    enum flow_template_error e = flow_template_render(
        fm->template, FLOW_TEMPLATE_CHANNEL, cfg->chan_id, v.vars, v.n,
        &fm->wanted, &diag);
    if (e) {
        return render_error("channel", e, &diag);
    }

    bool have_vid = false;
    for (size_t i = 0; i < fm->n_vids; i++) {
        have_vid |= fm->vids[i] == cfg->vid;
    }
    if (!have_vid) {
        e = flow_template_render(fm->template, FLOW_TEMPLATE_VID, 0,
                                 v.vars, v.n, &fm->wanted, &diag);
        if (e) {
            /* Roll back this channel's flows. */
            while (fm->wanted.n > n_before) {
                free(fm->wanted.flows[--fm->wanted.n].text);
            }
            return render_error("vid", e, &diag);
        }
        fm->vids = realloc(fm->vids, (fm->n_vids + 1) * sizeof *fm->vids);
        fm->vids[fm->n_vids++] = cfg->vid;
    }
    fm->meters = realloc(fm->meters, (fm->n_meters + 1) * sizeof *fm->meters);
    fm->meters[fm->n_meters++] = (struct fm_meter) {
        .meter_id = meter_id, .chan_id = cfg->chan_id,
    };
    fm->dirty = true;
    return NULL;
}

/* Runs 'argv' and returns its standard output (malloc'd) or NULL with a
 * log message.  '*statusp' gets the exit status. */
static char *
run_capture(char *const argv[], int *statusp)
{
    int fds[2];
    if (pipe(fds)) {
        return NULL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (!pid) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 65536, len = 0;
    char *out = malloc(cap);
    ssize_t n;
    while ((n = read(fds[0], out + len, cap - len - 1)) != 0) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        len += n;
        if (len + 1 == cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
    }
    out[len] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        continue;
    }
    *statusp = status;
    return out;
}

/* Reads the chand cookies installed on the bridge into a malloc'd array.
 * Returns 0 or an errno. */
static int
dump_installed(const struct flowmgr *fm, uint64_t **cookiesp, size_t *np)
{
    char *argv[] = { "ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
                     fm->target,
                     "cookie=0x4300000000000000/0xff00000000000000", NULL };
    int status;
    char *out = run_capture(argv, &status);
    *cookiesp = NULL;
    *np = 0;
    if (!out || !WIFEXITED(status) || WEXITSTATUS(status)) {
        free(out);
        VLOG_WARN_RL(&rl, "%s: ovs-ofctl dump-flows failed", fm->target);
        return EAGAIN;
    }
    size_t cap = 0;
    for (char *p = strstr(out, "cookie=0x"); p; p = strstr(p, "cookie=0x")) {
        uint64_t cookie = strtoull(p + 9, &p, 16);
        if (flow_template_is_chand_cookie(cookie)) {
            if (*np >= cap) {
                cap = cap ? 2 * cap : 64;
                *cookiesp = realloc(*cookiesp, cap * sizeof **cookiesp);
            }
            (*cookiesp)[(*np)++] = cookie;
        }
    }
    free(out);
    return 0;
}

static bool
cookie_in(uint64_t cookie, const uint64_t *cookies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (cookies[i] == cookie) {
            return true;
        }
    }
    return false;
}

static int
apply_bundle(const struct flowmgr *fm, const char *bundle)
{
    char path[] = "/tmp/chand-flows-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        return errno;
    }
    size_t len = strlen(bundle);
    bool ok = write(fd, bundle, len) == (ssize_t) len;
    close(fd);
    int status = 0;
    char *argv[] = { "ovs-ofctl", "-O", "OpenFlow13", "--bundle",
                     "add-flows", fm->target, path, NULL };
    char *out = ok ? run_capture(argv, &status) : NULL;
    unlink(path);
    free(out);
    if (!out || !WIFEXITED(status) || WEXITSTATUS(status)) {
        VLOG_WARN_RL(&rl, "%s: ovs-ofctl --bundle add-flows failed",
                     fm->target);
        return EAGAIN;
    }
    return 0;
}

static void
record_installed(struct flowmgr *fm)
{
    free(fm->installed_ids);
    fm->installed_ids = calloc(fm->wanted.n + 1, sizeof *fm->installed_ids);
    fm->n_installed_ids = 0;
    for (size_t i = 0; i < fm->wanted.n; i++) {
        uint32_t id = fm->wanted.flows[i].chan_id;
        if (id) {
            fm->installed_ids[fm->n_installed_ids++] = id;
        }
    }
    fm->n_installed = fm->wanted.n;
}

/* Runs ovs-ofctl with 'args' (NULL-terminated, after "ovs-ofctl -O
 * OpenFlow13") and returns its output (malloc'd) or NULL on failure. */
static char *
ofctl(const struct flowmgr *fm, const char *cmd, const char *arg)
{
    char *argv[] = { "ovs-ofctl", "-O", "OpenFlow13", (char *) cmd,
                     fm->target, (char *) arg, NULL };
    int status;
    char *out = run_capture(argv, &status);
    if (out && (!WIFEXITED(status) || WEXITSTATUS(status))) {
        VLOG_WARN_RL(&rl, "%s: ovs-ofctl %s %s failed", fm->target, cmd,
                     arg ? arg : "");
        free(out);
        out = NULL;
    }
    return out;
}

/* Reads the meters on the bridge and their drop counts into 'drops'.
 * Returns 0 or an errno. */
static int
dump_meters(struct flowmgr *fm)
{
    char *out = ofctl(fm, "meter-stats", NULL);
    if (!out) {
        return EAGAIN;
    }
    fm->n_meter_drops = 0;
    for (char *p = strstr(out, "meter:"); p; p = strstr(p + 1, "meter:")) {
        uint32_t id = strtoul(p + 6, NULL, 10);
        /* "meter:7 flow_count:0 packet_in_count:N ... bands:\n0:
         * packet_count:D ...": D is what the drop band dropped. */
        char *band = strstr(p, "packet_count:");
        char *next = strstr(p + 1, "meter:");
        uint64_t drops = band && (!next || band < next)
                         ? strtoull(band + 13, NULL, 10) : 0;
        fm->meter_drops = realloc(fm->meter_drops, (fm->n_meter_drops + 1)
                                  * sizeof *fm->meter_drops);
        fm->meter_drops[fm->n_meter_drops++] = (struct fm_meter) {
            .meter_id = id, .drops = drops,
        };
    }
    free(out);
    return 0;
}

static bool
meter_installed(const struct flowmgr *fm, uint32_t meter_id)
{
    for (size_t i = 0; i < fm->n_meter_drops; i++) {
        if (fm->meter_drops[i].meter_id == meter_id) {
            return true;
        }
    }
    return false;
}

static bool
meter_wanted(const struct flowmgr *fm, uint32_t meter_id)
{
    for (size_t i = 0; i < fm->n_meters; i++) {
        if (fm->meters[i].meter_id == meter_id) {
            return true;
        }
    }
    return false;
}

/* Creates the wanted meters that are missing (and, with 'force', sets the
 * rate of the others again). */
static int
add_meters(struct flowmgr *fm, bool force)
{
    for (size_t i = 0; i < fm->n_meters; i++) {
        uint32_t id = fm->meters[i].meter_id;
        bool have = meter_installed(fm, id);
        if (have && !force) {
            continue;
        }
        char spec[128];
        snprintf(spec, sizeof spec,
                 "meter=%u,pktps,burst,stats,band=type=drop,rate=%u,"
                 "burst_size=%u", id, fm->meter_pps, fm->meter_burst);
        char *out = ofctl(fm, have ? "mod-meter" : "add-meter", spec);
        if (!out) {
            return EAGAIN;
        }
        free(out);
    }
    return 0;
}

/* Removes chand's meters nobody wants any more.  Meters outside chand's
 * range of use are never touched: only ids some channel could have. */
static void
remove_meters(struct flowmgr *fm)
{
    for (size_t i = 0; i < fm->n_meter_drops; i++) {
        uint32_t id = fm->meter_drops[i].meter_id;
        if (!meter_wanted(fm, id) && id >= 1 && id <= CHAN_FLOWS_MAX_METER) {
            char spec[32];
            snprintf(spec, sizeof spec, "meter=%u", id);
            free(ofctl(fm, "del-meter", spec));
        }
    }
}

uint64_t
flowmgr_meter_drops(const struct flowmgr *fm, uint32_t chan_id)
{
    uint32_t id = chan_flows_meter_id(chan_id);
    for (size_t i = 0; i < fm->n_meter_drops; i++) {
        if (fm->meter_drops[i].meter_id == id) {
            return fm->meter_drops[i].drops;
        }
    }
    return 0;
}

int
flowmgr_sync(struct flowmgr *fm, bool force)
{
    if (!fm->dirty && !force) {
        return 0;
    }

    int error = dump_meters(fm);
    if (!error) {
        error = add_meters(fm, false);
    }
    if (error) {
        return error;
    }

    uint64_t *installed;
    size_t n_installed;
    error = dump_installed(fm, &installed, &n_installed);
    if (error) {
        return error;
    }

    /* Deletes: installed cookies nobody wants.  Adds: wanted flows whose
     * cookie is not installed. */
    uint64_t *del = malloc((n_installed + 1) * sizeof *del);
    size_t n_del = 0;
    uint64_t *wanted_cookies = malloc((fm->wanted.n + 1) * sizeof *del);
    for (size_t i = 0; i < fm->wanted.n; i++) {
        wanted_cookies[i] = fm->wanted.flows[i].cookie;
    }
    for (size_t i = 0; i < n_installed; i++) {
        if (!cookie_in(installed[i], wanted_cookies, fm->wanted.n)
            && !cookie_in(installed[i], del, n_del)) {
            del[n_del++] = installed[i];
        }
    }
    struct flow_template_flows add = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    for (size_t i = 0; i < fm->wanted.n; i++) {
        if (!cookie_in(fm->wanted.flows[i].cookie, installed, n_installed)) {
            if (add.n >= add.allocated) {
                add.allocated = add.allocated ? 2 * add.allocated : 16;
                add.flows = realloc(add.flows,
                                    add.allocated * sizeof *add.flows);
            }
            add.flows[add.n++] = fm->wanted.flows[i];   /* Borrowed. */
        }
    }

    if (n_del || add.n) {
        char *bundle = flow_template_format_bundle(del, n_del, &add);
        error = bundle ? apply_bundle(fm, bundle) : ENOMEM;
        free(bundle);
        if (!error) {
            VLOG_INFO("%s: flows synced: %zu removed, %zu added, %zu chand "
                      "flows in all", fm->target, n_del, add.n,
                      fm->wanted.n);
        }
    }
    free(add.flows);            /* Texts belong to 'wanted'. */
    free(del);
    free(wanted_cookies);
    free(installed);
    if (!error) {
        remove_meters(fm);
        fm->dirty = false;
        record_installed(fm);
    }
    return error;
}

bool
flowmgr_needs_sync(const struct flowmgr *fm)
{
    return fm->dirty;
}

bool
flowmgr_is_installed(const struct flowmgr *fm, uint32_t chan_id)
{
    for (size_t i = 0; i < fm->n_installed_ids; i++) {
        if (fm->installed_ids[i] == chan_id) {
            return true;
        }
    }
    return false;
}

size_t
flowmgr_n_installed(const struct flowmgr *fm)
{
    return fm->n_installed;
}
