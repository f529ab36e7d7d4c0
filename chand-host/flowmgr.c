/* Copyright (c) 2026 The chand authors.  See flowmgr.h. */

#include <config.h>
#include "flowmgr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan-flows.h"
#include "flow-counters.h"
#include "flow-template.h"
#include "packets.h"
#include "poll-loop.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(flowmgr);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

/* Each ovs-ofctl run gives up after this long (ovs-vswitchd without its
 * database, for one, accepts OpenFlow connections and does not answer). */
#define OFCTL_TIMEOUT "--timeout=10"

/* A whole sync is stopped after this long. */
#define FLOWMGR_WORKER_TIMEOUT_MS 120000

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
    uint64_t wanted_seqno;      /* Bumped when 'wanted' or a rate changes. */
    uint64_t installed_seqno;   /* 'wanted_seqno' of the last good sync. */

    int64_t inject_ofport;      /* chand port's ofport, 0: OpenFlow. */

    unsigned int meter_pps, meter_burst;
    struct fm_meter *meters;    /* Wanted: one per channel. */
    size_t n_meters;
    struct fm_meter *meter_drops;   /* Drops read at the last sync. */
    size_t n_meter_drops;
    struct flow_counters counters;  /* Counted flows, as of the last sync. */

    uint32_t *installed_ids;    /* Chan-ids whose flows are installed. */
    size_t n_installed_ids;
    size_t n_installed;

    struct fm_worker *worker;   /* Sync in progress, or NULL. */
};

/* A sync runs in a child process (the worker), because ovs-ofctl can block
 * for as long as ovs-vswitchd does not answer and chand-host's loop must
 * not.  The worker reports on a pipe, one line each:
 *
 *     error <errno>
 *     meter <meter-id> <drops>
 *     count <chan-id> <counter> <packets>
 *
 * and exits. */
struct fm_worker {
    pid_t pid;
    int fd;                     /* Read end of the report pipe. */
    long long deadline;         /* Killed if not done by then. */
    uint64_t seqno;             /* 'wanted_seqno' it is installing. */
    uint32_t *ids;              /* Chan-ids of the flows it is installing. */
    size_t n_ids;
    size_t n_flows;
    char *report;               /* What it wrote so far. */
    size_t len, cap;
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
static void worker_reap(const struct fm_worker *);
static void worker_destroy(struct fm_worker *);

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
    flow_counters_init(&fm->counters);
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
        if (fm->worker) {
            worker_reap(fm->worker);
            worker_destroy(fm->worker);
        }
        flow_template_destroy(fm->template);
        flow_template_flows_destroy(&fm->wanted);
        free(fm->target);
        free(fm->vids);
        free(fm->installed_ids);
        free(fm->meters);
        free(fm->meter_drops);
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

static void
add_section(struct flowmgr *fm, enum flow_template_section section,
            const struct chan_flows_vars *v)
{
    struct flow_template_diag diag;
    enum flow_template_error e = flow_template_render(
        fm->template, section, 0, v->vars, v->n, &fm->wanted, &diag);
    if (e) {
        VLOG_ERR("flow template line %u: %s", diag.line,
                 flow_template_strerror(e));
    }
}

/* Renders the [bridge] rules, and the [port] rules if frames go through a
 * chand port. */
static void
add_bridge_flows(struct flowmgr *fm)
{
    struct chan_flows_vars v;
    chan_flows_host_vars(NULL, 0, fm->inject_ofport, &v);
    add_section(fm, FLOW_TEMPLATE_BRIDGE, &v);
    if (fm->inject_ofport) {
        add_section(fm, FLOW_TEMPLATE_PORT, &v);
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
    chan_flows_host_vars(cfg, ofport, fm->inject_ofport, &v);
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
    fm->wanted_seqno++;
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

/* Reads the chand cookies installed on the bridge into a malloc'd array,
 * and writes the sums of the wanted counted flows to 'report'.  Returns 0
 * or an errno. */
static int
dump_installed(const struct flowmgr *fm, uint64_t **cookiesp, size_t *np,
               FILE *report)
{
    char *argv[] = { "ovs-ofctl", OFCTL_TIMEOUT, "-O", "OpenFlow13",
                     "dump-flows", fm->target,
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
    struct flow_count *counts;
    size_t n_counts = flow_counters_sum(&fm->wanted, out, &counts);
    for (size_t i = 0; i < n_counts; i++) {
        fprintf(report, "count %"PRIu32" %s %"PRIu64"\n", counts[i].chan_id,
                counts[i].name, counts[i].packets);
    }
    free(counts);
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
    char *argv[] = { "ovs-ofctl", OFCTL_TIMEOUT, "-O", "OpenFlow13",
                     "--bundle", "add-flows", fm->target, path, NULL };
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

/* Runs ovs-ofctl with 'args' (NULL-terminated, after "ovs-ofctl -O
 * OpenFlow13") and returns its output (malloc'd) or NULL on failure. */
static char *
ofctl(const struct flowmgr *fm, const char *cmd, const char *arg)
{
    char *argv[] = { "ovs-ofctl", OFCTL_TIMEOUT, "-O", "OpenFlow13",
                     (char *) cmd, fm->target, (char *) arg, NULL };
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
flowmgr_counter(const struct flowmgr *fm, uint32_t chan_id, const char *name)
{
    return flow_counters_get(&fm->counters, chan_id, name);
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

/* Pushes, as one bundle, the deletes and adds that turn the chand flows
 * 'installed' (cookies) into 'fm->wanted'. */
static int
push_difference(const struct flowmgr *fm, const uint64_t *installed,
                size_t n_installed)
{
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

    int error = 0;
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
    return error;
}

/* The worker's side: makes the bridge hold 'fm->wanted' and reports on
 * 'fd'.  Returns the error it reported. */
static int
sync_now(struct flowmgr *fm, FILE *report)
{
    int error = dump_meters(fm);
    if (!error) {
        error = add_meters(fm, fm->installed_seqno == 0);
    }
    uint64_t *installed = NULL;
    size_t n_installed = 0;
    if (!error) {
        error = dump_installed(fm, &installed, &n_installed, report);
    }
    if (!error) {
        error = push_difference(fm, installed, n_installed);
    }
    free(installed);
    if (!error) {
        remove_meters(fm);
    }
    fprintf(report, "error %d\n", error);
    for (size_t i = 0; i < fm->n_meter_drops; i++) {
        fprintf(report, "meter %"PRIu32" %"PRIu64"\n",
                fm->meter_drops[i].meter_id, fm->meter_drops[i].drops);
    }
    return error;
}

static void
worker_main(struct flowmgr *fm, int fd)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        signal(sigs[i], SIG_DFL);
    }
    setpgid(0, 0);              /* So a timeout kills its ovs-ofctl too. */
    FILE *report = fdopen(fd, "w");
    int error = report ? sync_now(fm, report) : errno;
    if (report && fclose(report)) {
        error = EPIPE;
    }
    _exit(error ? 1 : 0);
}

static void
worker_destroy(struct fm_worker *w)
{
    if (w) {
        close(w->fd);
        free(w->ids);
        free(w->report);
        free(w);
    }
}

/* Kills 'w' and whatever it runs, if still running, and reaps it. */
static void
worker_reap(const struct fm_worker *w)
{
    kill(-w->pid, SIGKILL);
    kill(w->pid, SIGKILL);
    while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR) {
        continue;
    }
}

void
flowmgr_sync(struct flowmgr *fm, bool force, long long now)
{
    if (fm->worker || (!force && !flowmgr_needs_sync(fm))) {
        return;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        VLOG_WARN_RL(&rl, "pipe failed (%s)", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        VLOG_WARN_RL(&rl, "fork failed (%s)", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (!pid) {
        close(fds[0]);
        worker_main(fm, fds[1]);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);

    struct fm_worker *w = calloc(1, sizeof *w);
    w->pid = pid;
    w->fd = fds[0];
    w->deadline = now + FLOWMGR_WORKER_TIMEOUT_MS;
    w->seqno = fm->wanted_seqno;
    w->ids = calloc(fm->wanted.n + 1, sizeof *w->ids);
    for (size_t i = 0; i < fm->wanted.n; i++) {
        if (fm->wanted.flows[i].chan_id) {
            w->ids[w->n_ids++] = fm->wanted.flows[i].chan_id;
        }
    }
    w->n_flows = fm->wanted.n;
    fm->worker = w;
}

static int
compare_count(const void *a_, const void *b_)
{
    const struct flow_count *a = a_, *b = b_;

    if (a->chan_id != b->chan_id) {
        return a->chan_id < b->chan_id ? -1 : 1;
    }
    return strcmp(a->name, b->name);
}

/* Parses a "count <chan-id> <counter> <packets>" report line into '*c',
 * with the name pointing into 'line'.  Returns true if it is one. */
static bool
parse_count(char *line, struct flow_count *c)
{
    char *save = NULL;
    char *word = strtok_r(line, " ", &save);
    char *id = strtok_r(NULL, " ", &save);
    char *name = strtok_r(NULL, " ", &save);
    char *packets = strtok_r(NULL, " ", &save);

    if (!word || strcmp(word, "count") || !id || !name || !packets) {
        return false;
    }
    *c = (struct flow_count) {
        .chan_id = strtoul(id, NULL, 10), .name = name,
        .packets = strtoull(packets, NULL, 10),
    };
    return true;
}

/* Parses the worker's report into 'fm'.  Returns the error it reports, or
 * EPROTO if it is garbled. */
static int
take_report(struct flowmgr *fm, const struct fm_worker *w)
{
    int error = EPROTO;
    bool have_error = false;
    size_t n_drops = 0;
    struct fm_meter *drops = NULL;
    size_t n_counts = 0;
    struct flow_count *counts = NULL;

    char *save = NULL;
    for (char *line = strtok_r(w->report, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        uint32_t id;
        uint64_t count;
        int e;
        if (sscanf(line, "error %d", &e) == 1) {
            error = e;
            have_error = true;
        } else if (sscanf(line, "meter %"SCNu32" %"SCNu64, &id, &count)
                   == 2) {
            drops = realloc(drops, (n_drops + 1) * sizeof *drops);
            drops[n_drops++] = (struct fm_meter) { .meter_id = id,
                                                   .drops = count };
        } else if (!strncmp(line, "count ", 6)) {
            struct flow_count c;
            struct flow_count *bigger;
            if (parse_count(line, &c)
                && (bigger = realloc(counts,
                                     (n_counts + 1) * sizeof *counts))) {
                counts = bigger;
                counts[n_counts++] = c;
            }
        }
    }
    if (n_counts) {
        /* Names point into 'w->report', which lives until we return. */
        qsort(counts, n_counts, sizeof *counts, compare_count);
        flow_counters_update(&fm->counters, counts, n_counts);
    }
    free(counts);
    if (!have_error) {
        free(drops);
        return EPROTO;
    }
    if (n_drops || !error) {
        free(fm->meter_drops);
        fm->meter_drops = drops;
        fm->n_meter_drops = n_drops;
    } else {
        free(drops);
    }
    return error;
}

/* Reads what the worker has written; returns true at end of file. */
static bool
read_report(struct fm_worker *w)
{
    for (;;) {
        if (w->cap - w->len < 4096) {
            w->cap = w->cap ? 2 * w->cap : 8192;
            w->report = realloc(w->report, w->cap);
        }
        ssize_t n = read(w->fd, w->report + w->len, w->cap - w->len - 1);
        if (n > 0) {
            w->len += n;
            w->report[w->len] = '\0';
        } else if (n == 0) {
            return true;
        } else if (errno != EINTR) {
            return errno != EAGAIN;
        }
    }
}

bool
flowmgr_run(struct flowmgr *fm, long long now, int *errorp)
{
    struct fm_worker *w = fm->worker;
    if (!w) {
        return false;
    }
    int error;
    if (read_report(w)) {
        error = w->report ? take_report(fm, w) : EPROTO;
    } else if (now >= w->deadline) {
        VLOG_WARN("%s: flow sync took longer than %d s, stopped",
                  fm->target, FLOWMGR_WORKER_TIMEOUT_MS / 1000);
        error = ETIMEDOUT;
    } else {
        return false;
    }
    fm->worker = NULL;
    worker_reap(w);
    if (!error) {
        free(fm->installed_ids);
        fm->installed_ids = w->ids;
        fm->n_installed_ids = w->n_ids;
        fm->n_installed = w->n_flows;
        fm->installed_seqno = w->seqno;
        w->ids = NULL;
    }
    worker_destroy(w);
    *errorp = error;
    return true;
}

void
flowmgr_wait(const struct flowmgr *fm)
{
    if (fm->worker) {
        poll_fd_wait(fm->worker->fd, POLLIN);
        poll_timer_wait_until(fm->worker->deadline);
    }
}

bool
flowmgr_is_syncing(const struct flowmgr *fm)
{
    return fm->worker != NULL;
}

bool
flowmgr_needs_sync(const struct flowmgr *fm)
{
    return fm->wanted_seqno != fm->installed_seqno;
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
