/* chand-guest's bridge on the guest's Open vSwitch: see bridge.h. */

#include <config.h>
#include "bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan-flows.h"
#include "flow-counters.h"
#include "packets.h"
#include "poll-loop.h"
#include "reconnect.h"
#include "subprocess.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(bridge);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 10);

/* Timeout given to the OVS utilities, in seconds. */
#define OVS_TIMEOUT_S 10
#define OVS_TIMEOUT "--timeout=" STRINGIZE(OVS_TIMEOUT_S)
#define STRINGIZE(X) STRINGIZE_(X)
#define STRINGIZE_(X) #X

/* Most output kept from one command (for error messages). */
#define MAX_OUTPUT (1024 * 1024)

/* Most of a worker's report kept: a dump of MAX_OUTPUT bytes and the rest.
 * A longer report is a failure. */
#define MAX_REPORT (MAX_OUTPUT + 64 * 1024)

/* What a worker does. */
enum bridge_task {
    TASK_SETUP,
    TASK_CHECK,
};

/* A setup or check in progress, in a child process. */
struct bridge_worker {
    enum bridge_task task;
    pid_t pid;                  /* Also its process group. */
    int fd;                     /* Read end of the report pipe. */
    long long started;
    long long deadline;         /* Killed if not done by then. */
    char *report;               /* What it wrote so far, null-terminated. */
    size_t len, cap;
    bool overflow;              /* Wrote more than MAX_REPORT. */
};

struct bridge {
    struct bridge_config cfg;   /* Strings owned (copies); timing with the
                                 * defaults filled in. */
    char *target;               /* "unix:RUNDIR/BRIDGE.mgmt". */
    struct flow_template *template;

    bool ready;
    unsigned int seqno;
    struct reconnect *retry;    /* Setup attempts and their backoff. */
    long long next_check;       /* While ready: when to check next. */
    struct bridge_worker *worker;   /* Setup or check running, or NULL. */

    /* As of the last successful setup. */
    int64_t vnic_ofport;
    int64_t chand_ofport;
    unsigned int ifindex;
    uint64_t *cookies;          /* Expected flows, sorted. */
    size_t n_cookies;
    struct flow_template_flows flows;   /* Installed flows (counters). */
    struct flow_counters counters;      /* Counted flows' packets. */

    /* Counters. */
    uint64_t n_setups;
    uint64_t n_setup_failures;
    uint64_t n_checks;
    uint64_t n_check_failures;
    char last_error[256];
};

static void worker_kill(struct bridge_worker *);

bool
bridge_name_is_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;

    if (!len || len >= IFNAMSIZ || name[0] == '-' || !strcmp(name, ".")
        || !strcmp(name, "..")) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'
              || *p == '-')) {
            return false;
        }
    }
    return true;
}

static int
default_ms(int ms, int def)
{
    return ms > 0 ? ms : def;
}

/* bridge_create()'s work: returns 0 or a positive errno, with the reason
 * logged. */
static int
bridge_create__(const struct bridge_config *config, struct bridge **brp)
{
    struct flow_template_flows trial = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;
    enum flow_template_error e;
    struct flow_template *ft;
    struct bridge *br;
    size_t len;
    char *text;

    *brp = NULL;
    const char *names[] = { config->bridge, config->vnic, config->port };
    for (size_t i = 0; i < 3; i++) {
        if (!bridge_name_is_valid(names[i])) {
            VLOG_ERR("\"%s\" is not a valid interface name (1 to %d "
                     "characters from A-Z a-z 0-9 _ . -)",
                     names[i] ? names[i] : "", IFNAMSIZ - 1);
            return EINVAL;
        }
    }
    if (!strcmp(config->vnic, config->port)
        || !strcmp(config->bridge, config->port)
        || !strcmp(config->bridge, config->vnic)) {
        VLOG_ERR("the bridge (%s), the vNIC (%s) and chand-guest's port "
                 "(%s) must have three different names", config->bridge,
                 config->vnic, config->port);
        return EINVAL;
    }

    text = read_file(config->flows, &len);
    if (!text) {
        int error = errno ? errno : EIO;
        VLOG_ERR("%s: cannot read the guest flow template (%s)",
                 config->flows, strerror(error));
        return error;
    }
    e = flow_template_parse(text, len, &ft, &diag);
    free(text);
    if (e) {
        VLOG_ERR("%s:%u: %s%s%s", config->flows, diag.line,
                 flow_template_strerror(e), *diag.detail ? ": " : "",
                 diag.detail);
        return EINVAL;
    }
    /* Render once with made-up ports, to find template problems now. */
    e = chan_flows_render_guest(ft, &config->chan, 1, 2, &trial, &diag,
                                NULL);
    flow_template_flows_destroy(&trial);
    if (e) {
        VLOG_ERR("%s:%u: %s%s%s", config->flows, diag.line,
                 flow_template_strerror(e), *diag.detail ? ": " : "",
                 diag.detail);
        flow_template_destroy(ft);
        return EINVAL;
    }

    br = calloc(1, sizeof *br);
    if (!br) {
        flow_template_destroy(ft);
        return ENOMEM;
    }
    br->cfg = *config;
    br->cfg.ovs_db = xstrdup(config->ovs_db);
    br->cfg.ovs_rundir = xstrdup(config->ovs_rundir);
    br->cfg.bridge = xstrdup(config->bridge);
    br->cfg.vnic = xstrdup(config->vnic);
    br->cfg.port = xstrdup(config->port);
    br->cfg.flows = xstrdup(config->flows);
    br->cfg.check_ms = default_ms(config->check_ms, BRIDGE_CHECK_MS);
    br->cfg.setup_timeout_ms = default_ms(config->setup_timeout_ms,
                                          BRIDGE_SETUP_TIMEOUT_MS);
    br->cfg.check_timeout_ms = default_ms(config->check_timeout_ms,
                                          BRIDGE_CHECK_TIMEOUT_MS);
    br->cfg.retry_min_ms = default_ms(config->retry_min_ms,
                                      BRIDGE_RETRY_MIN_MS);
    br->cfg.retry_max_ms = default_ms(config->retry_max_ms,
                                      BRIDGE_RETRY_MAX_MS);
    br->target = xasprintf("unix:%s/%s.mgmt", config->ovs_rundir,
                           config->bridge);
    br->template = ft;
    flow_counters_init(&br->counters);

    /* Enabled at the first bridge_run(), which has the time. */
    br->retry = reconnect_create(0);
    reconnect_set_name(br->retry, br->cfg.bridge);
    reconnect_set_backoff(br->retry, br->cfg.retry_min_ms,
                          br->cfg.retry_max_ms);
    reconnect_set_probe_interval(br->retry, 0);
    *brp = br;
    return 0;
}

struct bridge *
bridge_create(const struct bridge_config *config)
{
    struct bridge *br;
    int error = bridge_create__(config, &br);

    if (error) {
        errno = error;
        return NULL;
    }
    return br;
}

void
bridge_destroy(struct bridge *br)
{
    if (br) {
        worker_kill(br->worker);
        free((char *) br->cfg.ovs_db);
        free((char *) br->cfg.ovs_rundir);
        free((char *) br->cfg.bridge);
        free((char *) br->cfg.vnic);
        free((char *) br->cfg.port);
        free((char *) br->cfg.flows);
        free(br->target);
        reconnect_destroy(br->retry);
        flow_template_flows_destroy(&br->flows);
        flow_counters_destroy(&br->counters);
        flow_template_destroy(br->template);
        free(br->cookies);
        free(br);
    }
}

/* The worker's side.
 *
 * A worker is a fork of chand-guest: it has a copy of the bridge (config,
 * template, ofports) and works on that copy, runs the programs, writes its
 * report (see struct bridge_report) and exits.  It does not log (its copy
 * of vlog is turned off): what it has to say goes into the report, as
 * "log" lines when chand-guest logs at debug level. */

/* Whether the worker writes "log" lines: the parent's bridge:dbg. */
static bool worker_debug;

/* Writes a "log" line to 'report' if 'worker_debug', with newlines in the
 * text made into " | ". */
static void
worker_log(FILE *report, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void
worker_log(FILE *report, const char *format, ...)
{
    va_list args;
    char *s;

    if (!worker_debug) {
        return;
    }
    va_start(args, format);
    if (vasprintf(&s, format, args) >= 0) {
        fputs("log ", report);
        for (const char *p = s; *p; p++) {
            if (*p == '\n') {
                fputs(p[1] ? " | " : "", report);
            } else {
                putc(*p, report);
            }
        }
        putc('\n', report);
        free(s);
    }
    va_end(args);
}

/* Runs 'argv' (argv[0] looked up in PATH, no shell) with standard input
 * from 'input' (a file descriptor, or -1 for /dev/null), and returns its
 * exit status (0 is success; 128 + N if signal N killed it; -1 if it could
 * not be run).  Stores its standard output and error (at most MAX_OUTPUT
 * bytes, NUL-terminated, malloc'd; the caller frees it) in '*outp' if
 * 'outp' is nonnull.  No timeout of its own: the program stays in the
 * worker's process group, which is killed at the worker's deadline. */
static int
run_cmd(FILE *report, char *const argv[], int input, char **outp)
{
    struct subprocess_options opts = {
        .input = input,
        .max_output = MAX_OUTPUT,
    };

    if (worker_debug) {
        char line[1024];
        size_t n = 0;
        for (int i = 0; argv[i] && n < sizeof line; i++) {
            n += snprintf(line + n, sizeof line - n, "%s%s", i ? " " : "",
                          argv[i]);
        }
        worker_log(report, "running: %s", line);
    }
    fflush(report);
    return subprocess_run(argv, &opts, outp);
}

/* Copies the first line of 'out' (without the newline) into the bridge's
 * last error, prefixed with 'what'. */
static void
set_error(struct bridge *br, const char *what, const char *out)
{
    size_t n = out ? strcspn(out, "\n") : 0;

    snprintf(br->last_error, sizeof br->last_error, "%s%s%.*s", what,
             n ? ": " : "", (int) n, out ? out : "");
}

/* Records why the program that ran as 'what' failed with 'status' and
 * output 'out'.  The OVS utilities die of SIGALRM at their --timeout. */
static void
set_cmd_error(struct bridge *br, const char *what, int status,
              const char *out)
{
    if (status == 128 + SIGALRM) {
        snprintf(br->last_error, sizeof br->last_error,
                 "%s: no answer within %d s", what, OVS_TIMEOUT_S);
    } else {
        set_error(br, what, out);
    }
}

/* Runs 'argv'; on failure records 'what' with its output as the error and
 * returns false. */
static bool
run_or_fail(struct bridge *br, FILE *report, char *const argv[],
            const char *what)
{
    char *out;
    int status = run_cmd(report, argv, -1, &out);

    if (status) {
        set_cmd_error(br, what, status, out);
        worker_log(report, "%s failed (status %d): %s", what, status,
                   out && *out ? out : "no output");
    }
    free(out);
    return status == 0;
}

static bool
ovs_add_ports(struct bridge *br, FILE *report)
{
    char mac[ETH_ADDR_STRLEN];
    char *db = xasprintf("--db=%s", br->cfg.ovs_db);
    char *mac_arg;
    bool ok;

    eth_addr_to_string(&br->cfg.chan.guest.mac, mac);
    mac_arg = xasprintf("mac=\"%s\"", mac);
    char *argv[] = {
        "ovs-vsctl", db, OVS_TIMEOUT,
        "--", "--may-exist", "add-br", (char *) br->cfg.bridge,
        "--", "set", "Bridge", (char *) br->cfg.bridge,
        "datapath_type=netdev", "protocols=OpenFlow13", "fail_mode=secure",
        "--", "--may-exist", "add-port", (char *) br->cfg.bridge,
        (char *) br->cfg.vnic,
        "--", "--may-exist", "add-port", (char *) br->cfg.bridge,
        (char *) br->cfg.port,
        "--", "set", "Interface", (char *) br->cfg.port, "type=internal",
        mac_arg,
        NULL
    };
    ok = run_or_fail(br, report, argv, "ovs-vsctl add-br/add-port");
    free(mac_arg);
    free(db);
    return ok;
}

/* Reads column 'column' of Interface 'iface'.  Returns the output
 * (malloc'd) or NULL. */
static char *
ovs_get_interface(struct bridge *br, FILE *report, const char *iface,
                  const char *column)
{
    char *db = xasprintf("--db=%s", br->cfg.ovs_db);
    char *argv[] = { "ovs-vsctl", db, OVS_TIMEOUT, "get", "Interface",
                     (char *) iface, (char *) column, NULL };
    char *out;
    int status = run_cmd(report, argv, -1, &out);

    free(db);
    if (status) {
        set_cmd_error(br, "ovs-vsctl get Interface", status, out);
        free(out);
        return NULL;
    }
    return out;
}

/* Reads the ofport of 'iface': > 0 once assigned, 0 while not yet, -1 if
 * OVS could not add it, -2 if it cannot be read. */
static int64_t
ovs_get_ofport(struct bridge *br, FILE *report, const char *iface)
{
    char *out = ovs_get_interface(br, report, iface, "ofport");
    char *end;
    long long v;

    if (!out) {
        return -2;
    }
    errno = 0;
    v = strtoll(out, &end, 10);
    if (end == out || errno) {
        v = 0;                  /* "[]": not assigned yet. */
    }
    free(out);
    return v;
}

static void
sleep_msec(long long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) && errno == EINTR) {
        continue;
    }
}

/* Waits until both ports have OpenFlow port numbers.  (The worker may:
 * nobody waits for it but its deadline.) */
static bool
ovs_wait_ofports(struct bridge *br, FILE *report)
{
    const char *ifaces[2] = { br->cfg.vnic, br->cfg.port };
    int64_t ofports[2] = { 0, 0 };

    for (int waited = 0; waited <= BRIDGE_OFPORT_WAIT_MS; waited += 100) {
        for (int i = 0; i < 2; i++) {
            if (ofports[i] <= 0) {
                ofports[i] = ovs_get_ofport(br, report, ifaces[i]);
            }
            if (ofports[i] == -2) {
                return false;
            } else if (ofports[i] == -1) {
                char *err = ovs_get_interface(br, report, ifaces[i],
                                              "error");
                char *what = xasprintf("Open vSwitch cannot add %s",
                                       ifaces[i]);
                set_error(br, what, err);
                free(what);
                free(err);
                return false;
            }
        }
        if (ofports[0] > 0 && ofports[1] > 0) {
            br->vnic_ofport = ofports[0];
            br->chand_ofport = ofports[1];
            return true;
        }
        sleep_msec(100);
    }
    snprintf(br->last_error, sizeof br->last_error,
             "no OpenFlow port number for %s after %d ms",
             ofports[0] <= 0 ? br->cfg.vnic : br->cfg.port,
             BRIDGE_OFPORT_WAIT_MS);
    return false;
}

static bool
is_link_local(uint32_t ip)
{
    return (ip & CHAN_LINK_LOCAL_MASK) == CHAN_LINK_LOCAL_NET;
}

/* Configures chand0: MAC, up, the guest endpoint address, a host route to
 * the host endpoint, and its neighbour entry (the guest flows also answer
 * ARP for it).  A link-local address gets its /16 but with noprefixroute:
 * chand0 must not capture the rest of 169.254.0.0/16, which the VM may
 * reach through its own NIC (cloud metadata services at 169.254.169.254,
 * for one). */
static bool
configure_port(struct bridge *br, FILE *report)
{
    const struct chan_config *c = &br->cfg.chan;
    char mac[ETH_ADDR_STRLEN], host_mac[ETH_ADDR_STRLEN];
    char ip[IP_STRLEN], host_ip[IP_STRLEN];
    char *port = (char *) br->cfg.port;
    char *addr;
    bool ok;

    eth_addr_to_string(&c->guest.mac, mac);
    eth_addr_to_string(&c->host.mac, host_mac);
    ip_to_string(c->guest.ip, ip);
    ip_to_string(c->host.ip, host_ip);
    addr = xasprintf("%s/%d", ip, is_link_local(c->guest.ip) ? 16 : 32);

    char *set_mac[] = { "ip", "link", "set", "dev", port, "address", mac,
                        NULL };
    char *up[] = { "ip", "link", "set", "dev", port, "up", NULL };
    char *add_addr[] = { "ip", "addr", "replace", addr, "dev", port,
                         "noprefixroute", NULL };
    char *route[] = { "ip", "route", "replace", host_ip, "dev", port,
                      "scope", "link", "src", ip, NULL };
    char *neigh[] = { "ip", "neigh", "replace", host_ip, "lladdr", host_mac,
                      "dev", port, "nud", "permanent", NULL };

    ok = (run_or_fail(br, report, set_mac, "ip link set address")
          && run_or_fail(br, report, up, "ip link set up")
          && run_or_fail(br, report, add_addr, "ip addr replace")
          && run_or_fail(br, report, route, "ip route replace"));
    if (ok && run_cmd(report, neigh, -1, NULL)) {
        /* Not needed: the bridge answers ARP for the host endpoint. */
        worker_log(report, "could not add a neighbour entry for %s on %s",
                   host_ip, port);
    }
    free(addr);
    return ok;
}

/* Renders the flows for the ofports found and installs them with
 * replace-flows, given on standard input (an unnamed temporary file: a
 * killed worker leaves nothing behind). */
static bool
install_flows(struct bridge *br, FILE *report)
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;
    enum flow_template_error e;
    FILE *f = NULL;
    bool ok = false;

    e = chan_flows_render_guest(br->template, &br->cfg.chan,
                                br->vnic_ofport, br->chand_ofport, &flows,
                                &diag, NULL);
    if (e) {
        snprintf(br->last_error, sizeof br->last_error, "%s:%u: %s",
                 br->cfg.flows, diag.line, flow_template_strerror(e));
        goto out;
    }

    f = tmpfile();
    if (!f) {
        snprintf(br->last_error, sizeof br->last_error,
                 "cannot create a temporary file: %s", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < flows.n; i++) {
        char *line = flow_template_format_flow(&flows.flows[i]);
        if (line) {
            fprintf(f, "%s\n", line);
            free(line);
        }
    }
    if (fflush(f) || ferror(f) || fseek(f, 0, SEEK_SET)) {
        snprintf(br->last_error, sizeof br->last_error,
                 "cannot write the flows to a temporary file: %s",
                 strerror(errno));
        goto out;
    }

    char *argv[] = { "ovs-ofctl", "-O", "OpenFlow13", "--bundle",
                     OVS_TIMEOUT, "replace-flows", br->target, "-", NULL };
    char *output;
    int status = run_cmd(report, argv, fileno(f), &output);
    if (status) {
        set_cmd_error(br, "ovs-ofctl replace-flows", status, output);
        worker_log(report, "ovs-ofctl replace-flows failed (status %d): %s",
                   status, output && *output ? output : "no output");
    } else {
        worker_log(report, "%zu flows installed", flows.n);
        ok = true;
    }
    free(output);
out:
    if (f) {
        fclose(f);
    }
    flow_template_flows_destroy(&flows);
    return ok;
}

/* A setup, in the worker: reports the port numbers and chand0's ifindex.
 * (The parent renders the flows again from the port numbers: the same
 * template and ports give the same flows.) */
static bool
worker_setup(struct bridge *br, FILE *report)
{
    if (!ovs_add_ports(br, report) || !ovs_wait_ofports(br, report)
        || !configure_port(br, report) || !install_flows(br, report)) {
        return false;
    }
    fprintf(report, "ofports %"PRId64" %"PRId64"\n", br->vnic_ofport,
            br->chand_ofport);
    fprintf(report, "ifindex %u\n", if_nametoindex(br->cfg.port));
    return true;
}

/* A check, in the worker: reports the bridge's flows, as dump-flows shows
 * them.  The parent compares them and adds up the counters. */
static bool
worker_check(struct bridge *br, FILE *report)
{
    char *argv[] = { "ovs-ofctl", "-O", "OpenFlow13", OVS_TIMEOUT,
                     "dump-flows", br->target, NULL };
    char *out;
    int status = run_cmd(report, argv, -1, &out);

    if (status) {
        set_cmd_error(br, "cannot read the flows: ovs-ofctl dump-flows",
                      status, out);
        worker_log(report, "ovs-ofctl dump-flows failed (status %d): %s",
                   status, out && *out ? out : "no output");
        free(out);
        return false;
    }
    size_t len = strlen(out);
    fprintf(report, "dump %zu\n", len);
    fwrite(out, 1, len, report);
    putc('\n', report);
    free(out);
    return true;
}

/* Closes every file descriptor above 2 but 'keep'. */
static void
close_fds_except(int keep)
{
    if (keep > 3) {
        close_range(3, keep - 1, 0);
    }
    if (close_range(keep + 1, ~0U, 0)) {
        long max = sysconf(_SC_OPEN_MAX);

        for (int fd = keep + 1; fd < (max > 0 && max < 65536 ? max : 65536);
             fd++) {
            close(fd);
        }
    }
}

static void __attribute__((noreturn))
worker_main(struct bridge *br, enum bridge_task task, int fd, pid_t parent)
{
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGALRM };
    FILE *report;
    bool ok;

    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        signal(sigs[i], SIG_DFL);
    }
    setpgid(0, 0);              /* So a timeout kills its programs too. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(1);               /* chand-guest died before the prctl. */
    }
    worker_debug = VLOG_IS_DBG_ENABLED();
    vlog_set_levels_from_string("ANY:off");
    close_fds_except(fd);       /* Sockets, datastore, log file... */

    report = fdopen(fd, "w");
    if (!report) {
        _exit(1);
    }
    ok = task == TASK_SETUP ? worker_setup(br, report)
                            : worker_check(br, report);
    if (ok) {
        fputs("ok\n", report);
    } else {
        fprintf(report, "error %s\n",
                *br->last_error ? br->last_error : "failed");
    }
    _exit(fclose(report) ? 1 : 0);
}

/* The parent's side. */

static const char *
task_name(enum bridge_task task)
{
    return task == TASK_SETUP ? "setup" : "check";
}

/* Kills 'w' (if nonnull) and whatever it runs, reaps it, and frees it. */
static void
worker_kill(struct bridge_worker *w)
{
    if (w) {
        kill(-w->pid, SIGKILL);
        kill(w->pid, SIGKILL);
        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR) {
            continue;
        }
        close(w->fd);
        free(w->report);
        free(w);
    }
}

/* Starts 'task' in a worker.  Returns 0 or an errno. */
static int
worker_start(struct bridge *br, enum bridge_task task, long long now)
{
    struct bridge_worker *w;
    pid_t parent = getpid();
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC)) {
        return errno;
    }
    w = calloc(1, sizeof *w);
    if (!w) {
        close(fds[0]);
        close(fds[1]);
        return ENOMEM;
    }
    pid = fork();
    if (pid < 0) {
        int error = errno;
        close(fds[0]);
        close(fds[1]);
        free(w);
        return error;
    } else if (!pid) {
        close(fds[0]);
        worker_main(br, task, fds[1], parent);
    }
    close(fds[1]);
    setpgid(pid, pid);          /* Also in the child: whoever is first. */
    fcntl(fds[0], F_SETFL, O_NONBLOCK);

    w->task = task;
    w->pid = pid;
    w->fd = fds[0];
    w->started = now;
    w->deadline = now + (task == TASK_SETUP ? br->cfg.setup_timeout_ms
                                            : br->cfg.check_timeout_ms);
    br->worker = w;
    return 0;
}

/* Reads what the worker has written, without waiting.  Returns true once
 * it is all there (end of file). */
static bool
worker_read(struct bridge_worker *w)
{
    for (;;) {
        char discard[4096];
        char *buf = discard;
        size_t room = sizeof discard;
        ssize_t n;

        if (!w->overflow) {
            if (w->cap - w->len < 4096) {
                size_t cap = w->cap ? 2 * w->cap : 16384;
                char *bigger = realloc(w->report, cap);
                if (!bigger) {
                    w->overflow = true;
                    continue;
                }
                w->report = bigger;
                w->cap = cap;
            }
            buf = w->report + w->len;
            room = w->cap - w->len - 1;
        }
        n = read(w->fd, buf, room);
        if (n > 0) {
            if (!w->overflow) {
                w->len += n;
                w->report[w->len] = '\0';
                if (w->len > MAX_REPORT) {
                    w->overflow = true;
                }
            }
        } else if (n == 0) {
            return true;
        } else if (errno != EINTR) {
            return errno != EAGAIN;
        }
    }
}

static void
log_worker_line(const char *text, void *w_)
{
    const struct bridge_worker *w = w_;

    VLOG_DBG("%s worker %ld: %s", task_name(w->task), (long) w->pid, text);
}

static int
compare_cookies(const void *a_, const void *b_)
{
    uint64_t a = *(const uint64_t *) a_, b = *(const uint64_t *) b_;

    return a < b ? -1 : a > b;
}

/* Makes the flows for the reported ports the expected ones. */
static bool
take_flows(struct bridge *br, int64_t vnic_ofport, int64_t chand_ofport)
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;
    enum flow_template_error e;
    uint64_t *cookies;

    e = chan_flows_render_guest(br->template, &br->cfg.chan, vnic_ofport,
                                chand_ofport, &flows, &diag, NULL);
    cookies = e ? NULL : malloc((flows.n ? flows.n : 1) * sizeof *cookies);
    if (!cookies) {
        snprintf(br->last_error, sizeof br->last_error, "%s:%u: %s",
                 br->cfg.flows, diag.line,
                 e ? flow_template_strerror(e) : "out of memory");
        flow_template_flows_destroy(&flows);
        return false;
    }
    for (size_t i = 0; i < flows.n; i++) {
        cookies[i] = flows.flows[i].cookie;
    }
    qsort(cookies, flows.n, sizeof *cookies, compare_cookies);
    free(br->cookies);
    br->cookies = cookies;
    br->n_cookies = flows.n;
    flow_template_flows_destroy(&br->flows);
    br->flows = flows;
    br->vnic_ofport = vnic_ofport;
    br->chand_ofport = chand_ofport;
    return true;
}

/* Adds up the counted flows' packets in 'dump' (dump-flows output). */
static void
take_counters(struct bridge *br, const char *dump)
{
    struct flow_count *counts;
    size_t n = flow_counters_sum(&br->flows, dump, &counts);

    flow_counters_update(&br->counters, counts, n);
    free(counts);
}

/* Reads the cookies of every flow in 'dump' (dump-flows output) into a
 * malloc'd array, sorted.  Returns NULL if memory runs out. */
static uint64_t *
dump_cookies(const char *dump, size_t *np)
{
    size_t n = 0, cap = 16;
    uint64_t *cookies = malloc(cap * sizeof *cookies);

    for (const char *p = dump; cookies && (p = strstr(p, "cookie=0x")); ) {
        char *end;
        uint64_t cookie = strtoull(p + 9, &end, 16);

        p = end;
        if (n >= cap) {
            uint64_t *bigger = realloc(cookies, 2 * cap * sizeof *cookies);
            if (!bigger) {
                free(cookies);
                return NULL;
            }
            cookies = bigger;
            cap *= 2;
        }
        cookies[n++] = cookie;
    }
    if (cookies) {
        qsort(cookies, n, sizeof *cookies, compare_cookies);
    }
    *np = n;
    return cookies;
}

void
bridge_compare_flows(const uint64_t *expected, size_t n_expected,
                     const char *dump, size_t *missingp, size_t *extrap)
{
    size_t n;
    uint64_t *cookies = dump_cookies(dump, &n);
    size_t missing = 0, extra = 0, i = 0, j = 0;

    if (!cookies) {
        n = 0;
    }
    while (i < n_expected || j < n) {
        if (j >= n || (i < n_expected && expected[i] < cookies[j])) {
            missing++;
            i++;
        } else if (i >= n_expected || cookies[j] < expected[i]) {
            extra++;
            j++;
        } else {
            i++;
            j++;
        }
    }
    free(cookies);
    *missingp = missing;
    *extrap = extra;
}

/* Returns true if 'ifname' has IPv4 address 'ip'. */
static bool
has_address(const char *ifname, uint32_t ip)
{
    struct ifaddrs *ifas, *ifa;
    bool found = false;

    if (getifaddrs(&ifas)) {
        return true;            /* Cannot tell: assume so. */
    }
    for (ifa = ifas; ifa && !found; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET
            && !strcmp(ifa->ifa_name, ifname)) {
            const struct sockaddr_in *sin = (const void *) ifa->ifa_addr;
            found = ntohl(sin->sin_addr.s_addr) == ip;
        }
    }
    freeifaddrs(ifas);
    return found;
}

static int
parse_int64(const char *s, int64_t *v)
{
    char *end;

    errno = 0;
    *v = strtoll(s, &end, 10);
    return end != s && !*end && !errno;
}

bool
bridge_parse_report(char *text, size_t len, struct bridge_report *r,
                    bridge_report_log_func *log, void *aux)
{
    char *p = text, *end = text + len;
    bool done = false;

    memset(r, 0, sizeof *r);
    while (p < end) {
        char *nl = memchr(p, '\n', end - p);
        int64_t a, b;

        if (!nl || done) {
            return false;       /* Cut short, or more after the outcome. */
        }
        *nl = '\0';
        if (!strncmp(p, "log ", 4)) {
            if (log) {
                log(p + 4, aux);
            }
        } else if (!strncmp(p, "ofports ", 8)) {
            char *space = strchr(p + 8, ' ');
            if (!space) {
                return false;
            }
            *space = '\0';
            if (!parse_int64(p + 8, &a) || !parse_int64(space + 1, &b)
                || a <= 0 || b <= 0) {
                return false;
            }
            r->vnic_ofport = a;
            r->chand_ofport = b;
        } else if (!strncmp(p, "ifindex ", 8)) {
            if (!parse_int64(p + 8, &a) || a < 0 || a > UINT_MAX) {
                return false;
            }
            r->ifindex = a;
        } else if (!strncmp(p, "dump ", 5)) {
            char *dump = nl + 1;
            if (!parse_int64(p + 5, &a) || a < 0 || a >= end - dump
                || dump[a] != '\n') {
                return false;
            }
            dump[a] = '\0';
            r->dump = dump;
            nl = dump + a;
        } else if (!strcmp(p, "ok")) {
            r->ok = done = true;
        } else if (!strncmp(p, "error ", 6)) {
            snprintf(r->error, sizeof r->error, "%s", p + 6);
            done = true;
        } else {
            return false;
        }
        p = nl + 1;
    }
    return done;
}

/* Starts a setup, or counts a failure if it cannot. */
static void
start_setup(struct bridge *br, long long now)
{
    int error;

    reconnect_connecting(br->retry, now);
    error = worker_start(br, TASK_SETUP, now);
    if (error) {
        snprintf(br->last_error, sizeof br->last_error,
                 "cannot start a setup: %s", strerror(error));
        br->n_setup_failures++;
        reconnect_connect_failed(br->retry, now, error);
        VLOG_ERR_RL(&rl, "guest bridge %s: %s", br->cfg.bridge,
                    br->last_error);
    }
}

/* The bridge is not as set up: 'reason' says why.  Sets it up again at
 * once (the backoff grows if it was ready for a short while only). */
static void
check_failed(struct bridge *br, const char *reason, long long now)
{
    snprintf(br->last_error, sizeof br->last_error, "%s", reason);
    br->n_check_failures++;
    br->ready = false;
    VLOG_WARN("guest bridge %s: %s; setting it up again", br->cfg.bridge,
              reason);
    reconnect_force_reconnect(br->retry, now);
    reconnect_disconnected(br->retry, now, EAGAIN);
}

/* Starts a check: the interface checks here, the flows in a worker. */
static void
start_check(struct bridge *br, long long now)
{
    char why[256];
    int error;

    br->n_checks++;
    if (if_nametoindex(br->cfg.port) != br->ifindex) {
        snprintf(why, sizeof why, "%s was removed or recreated "
                 "(ovs-vswitchd restarted?)", br->cfg.port);
    } else if (!has_address(br->cfg.port, br->cfg.chan.guest.ip)) {
        snprintf(why, sizeof why, "%s lost its address", br->cfg.port);
    } else if ((error = worker_start(br, TASK_CHECK, now)) != 0) {
        /* Not the bridge's fault: try again at the next period. */
        VLOG_WARN_RL(&rl, "guest bridge %s: cannot start a check: %s",
                     br->cfg.bridge, strerror(error));
        br->next_check = now + br->cfg.check_ms;
        return;
    } else {
        return;
    }
    check_failed(br, why, now);
}

static void
setup_done(struct bridge *br, const struct bridge_report *r, long long now)
{
    if (r && r->ok && (r->vnic_ofport <= 0 || r->chand_ofport <= 0)) {
        snprintf(br->last_error, sizeof br->last_error,
                 "the setup worker reported no OpenFlow port numbers");
    } else if (r && r->ok
               && take_flows(br, r->vnic_ofport, r->chand_ofport)) {
        br->ifindex = r->ifindex;
        br->ready = true;
        br->seqno++;
        br->n_setups++;
        br->next_check = now + br->cfg.check_ms;
        br->last_error[0] = '\0';
        reconnect_connected(br->retry, now);
        VLOG_INFO("guest bridge %s ready: %s is OpenFlow port %"PRId64", %s "
                  "is OpenFlow port %"PRId64", %zu flows installed",
                  br->cfg.bridge, br->cfg.vnic, br->vnic_ofport,
                  br->cfg.port, br->chand_ofport, br->n_cookies);
        return;
    }
    br->n_setup_failures++;
    reconnect_connect_failed(br->retry, now, EAGAIN);
    VLOG_ERR_RL(&rl, "guest bridge %s setup failed: %s; retrying in %lld "
                "ms", br->cfg.bridge, br->last_error,
                reconnect_wait(br->retry, now) - now);
}

static void
check_done(struct bridge *br, const struct bridge_report *r, long long now)
{
    size_t missing, extra;
    char why[256];

    if (r && r->ok && r->dump) {
        bridge_compare_flows(br->cookies, br->n_cookies, r->dump, &missing,
                             &extra);
        take_counters(br, r->dump);
        if (!missing && !extra) {
            br->next_check = now + br->cfg.check_ms;
            return;
        }
        snprintf(why, sizeof why, "%zu of %zu flows missing and %zu "
                 "unexpected flows on %s", missing, br->n_cookies, extra,
                 br->cfg.bridge);
    } else if (r && r->ok) {
        snprintf(why, sizeof why, "the check reported no flows");
    } else {
        snprintf(why, sizeof why, "%s", br->last_error);
    }
    check_failed(br, why, now);
}

/* Takes the report of a worker that ended, or stops one past its
 * deadline, and acts on the outcome.  Returns false if it still runs. */
static bool
worker_finish(struct bridge *br, long long now)
{
    struct bridge_worker *w = br->worker;
    struct bridge_report report, *r = NULL;

    if (worker_read(w)) {
        if (w->overflow) {
            snprintf(br->last_error, sizeof br->last_error,
                     "the %s worker reported more than %d bytes",
                     task_name(w->task), MAX_REPORT);
        } else if (!bridge_parse_report(w->report ? w->report : "", w->len,
                                        &report, log_worker_line, w)) {
            snprintf(br->last_error, sizeof br->last_error,
                     "the %s worker ended without a complete report",
                     task_name(w->task));
        } else {
            r = &report;
            if (!r->ok) {
                snprintf(br->last_error, sizeof br->last_error, "%.*s",
                         (int) sizeof br->last_error - 1, r->error);
            }
        }
    } else if (now >= w->deadline) {
        snprintf(br->last_error, sizeof br->last_error,
                 "the %s took longer than %lld ms (Open vSwitch does not "
                 "answer?), stopped", task_name(w->task),
                 w->deadline - w->started);
    } else {
        return false;
    }

    /* 'report' points into the worker's buffer: act before freeing it. */
    br->worker = NULL;
    if (w->task == TASK_SETUP) {
        setup_done(br, r, now);
    } else {
        check_done(br, r, now);
    }
    worker_kill(w);
    return true;
}

void
bridge_run(struct bridge *br, long long now)
{
    if (!reconnect_is_enabled(br->retry)) {
        reconnect_enable(br->retry, now);
    }
    if (br->worker && !worker_finish(br, now)) {
        return;
    }
    if (br->ready) {
        if (now >= br->next_check) {
            start_check(br, now);
        }
        if (br->ready || br->worker) {
            return;
        }
    }
    if (reconnect_run(br->retry, now) == RECONNECT_CONNECT) {
        start_setup(br, now);
    }
}

long long
bridge_next_wakeup(const struct bridge *br, long long now)
{
    long long next;

    if (br->worker) {
        next = br->worker->deadline;
    } else if (br->ready) {
        next = br->next_check;
    } else if (!reconnect_is_enabled(br->retry)) {
        next = now;
    } else {
        next = reconnect_wait(br->retry, now);
    }
    return next < now ? now : next;
}

void
bridge_wait(const struct bridge *br, long long now)
{
    if (br->worker) {
        poll_fd_wait(br->worker->fd, POLLIN);
    }
    poll_timer_wait_until(bridge_next_wakeup(br, now));
}

bool
bridge_is_busy(const struct bridge *br)
{
    return br->worker != NULL;
}

bool
bridge_is_ready(const struct bridge *br)
{
    return br->ready;
}

unsigned int
bridge_get_seqno(const struct bridge *br)
{
    return br->seqno;
}

json_t *
bridge_status_json(const struct bridge *br, long long now)
{
    const struct bridge_worker *w = br->worker;
    long long next = bridge_next_wakeup(br, now);

    return json_pack("{s:s, s:b, s:s, s:I, s:s, s:I, s:I, s:s, s:I, s:I, "
                     "s:I, s:I, s:s, s:I, s:s?, s:I, s:I, s:I}",
                     "bridge", br->cfg.bridge,
                     "ready", br->ready,
                     "vnic", br->cfg.vnic,
                     "vnic_ofport", (json_int_t) br->vnic_ofport,
                     "port", br->cfg.port,
                     "port_ofport", (json_int_t) br->chand_ofport,
                     "flows", (json_int_t) br->n_cookies,
                     "flow_template", br->cfg.flows,
                     "setups", (json_int_t) br->n_setups,
                     "setup_failures", (json_int_t) br->n_setup_failures,
                     "checks", (json_int_t) br->n_checks,
                     "check_failures", (json_int_t) br->n_check_failures,
                     "last_error", br->last_error,
                     "isolation_drops", (json_int_t) flow_counters_get(
                         &br->counters, br->cfg.chan.chan_id,
                         "isolation_drops") + (json_int_t) flow_counters_get(
                         &br->counters, 0, "isolation_drops"),
                     "task", w ? task_name(w->task) : NULL,
                     "task_ms", (json_int_t) (w ? now - w->started : 0),
                     "backoff_ms",
                     (json_int_t) reconnect_get_backoff(br->retry),
                     "next_run_ms", (json_int_t) (w ? 0 : next - now));
}
