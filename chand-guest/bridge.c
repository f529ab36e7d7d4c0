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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan-flows.h"
#include "flow-counters.h"
#include "packets.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(bridge);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 10);

/* Timeouts given to the OVS utilities, in seconds. */
#define OVS_TIMEOUT "--timeout=10"

/* Most output kept from one command (for error messages). */
#define MAX_OUTPUT (1024 * 1024)

struct bridge {
    struct bridge_config cfg;   /* Strings owned (copies). */
    char *target;               /* "unix:RUNDIR/BRIDGE.mgmt". */
    struct flow_template *template;

    bool ready;
    unsigned int seqno;
    long long next_run;         /* When to set up or check next. */
    long long retry_ms;         /* Current setup backoff. */

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

static char *
xasprintf(const char *format, ...)
    __attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *format, ...)
{
    va_list args;
    char *s;

    va_start(args, format);
    if (vasprintf(&s, format, args) < 0) {
        abort();
    }
    va_end(args);
    return s;
}

static char *
xstrdup(const char *s)
{
    char *copy = strdup(s);

    if (!copy) {
        abort();
    }
    return copy;
}

/* Reads the whole file at 'path'.  Returns a malloc'd buffer and its
 * length, or NULL with errno set. */
static char *
read_file(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "r");
    size_t cap = 8192, len = 0, n;
    char *buf;

    if (!f) {
        return NULL;
    }
    buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
        errno = EIO;
    }
    fclose(f);
    *lenp = len;
    return buf;
}

enum flow_template_error
bridge_render(const struct flow_template *ft, const struct chan_config *chan,
              int64_t vnic_ofport, int64_t chand_ofport,
              struct flow_template_flows *flows,
              struct flow_template_diag *diag)
{
    struct chan_flows_vars v;
    enum flow_template_error e;

    chan_flows_guest_vars(chan, vnic_ofport, chand_ofport, &v);
    e = flow_template_render(ft, FLOW_TEMPLATE_BRIDGE, 0, v.vars, v.n,
                             flows, diag);
    if (!e) {
        e = flow_template_render(ft, FLOW_TEMPLATE_VID, 0, v.vars, v.n,
                                 flows, diag);
    }
    if (!e) {
        e = flow_template_render(ft, FLOW_TEMPLATE_CHANNEL, chan->chan_id,
                                 v.vars, v.n, flows, diag);
    }
    return e;
}

int
bridge_create(const struct bridge_config *config, struct bridge **brp)
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
    e = bridge_render(ft, &config->chan, 1, 2, &trial, &diag);
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
    br->target = xasprintf("unix:%s/%s.mgmt", config->ovs_rundir,
                           config->bridge);
    br->template = ft;
    br->next_run = LLONG_MIN;
    br->retry_ms = BRIDGE_RETRY_MIN_MS;
    *brp = br;
    return 0;
}

void
bridge_destroy(struct bridge *br)
{
    if (br) {
        free((char *) br->cfg.ovs_db);
        free((char *) br->cfg.ovs_rundir);
        free((char *) br->cfg.bridge);
        free((char *) br->cfg.vnic);
        free((char *) br->cfg.port);
        free((char *) br->cfg.flows);
        free(br->target);
        flow_template_flows_destroy(&br->flows);
        flow_counters_destroy(&br->counters);
        flow_template_destroy(br->template);
        free(br->cookies);
        free(br);
    }
}

/* Running programs. */

/* Runs 'argv' (argv[0] looked up in PATH) with standard input from
 * /dev/null, and returns its exit status (0 is success; -1 if it could
 * not be run or was killed).  Stores its standard output and error (at
 * most MAX_OUTPUT bytes, NUL-terminated, malloc'd; the caller frees it)
 * in '*outp' if 'outp' is nonnull. */
static int
run_cmd(char *const argv[], char **outp)
{
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    int fds[2], status;
    pid_t pid;

    if (outp) {
        *outp = NULL;
    }
    if (!out || pipe2(fds, O_CLOEXEC)) {
        free(out);
        return -1;
    }
    if (VLOG_IS_DBG_ENABLED()) {
        char line[1024];
        size_t n = 0;
        for (int i = 0; argv[i] && n < sizeof line; i++) {
            n += snprintf(line + n, sizeof line - n, "%s%s", i ? " " : "",
                          argv[i]);
        }
        VLOG_DBG("running: %s", line);
    }
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(out);
        return -1;
    } else if (!pid) {
        int null = open("/dev/null", O_RDONLY);

        if (null >= 0) {
            dup2(null, STDIN_FILENO);
        }
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t n;

        if (len + 1 >= cap && cap < MAX_OUTPUT) {
            char *bigger = realloc(out, cap * 2);
            if (bigger) {
                out = bigger;
                cap *= 2;
            }
        }
        if (len + 1 >= cap) {
            char discard[4096];
            n = read(fds[0], discard, sizeof discard);
        } else {
            n = read(fds[0], out + len, cap - len - 1);
            if (n > 0) {
                len += n;
            }
        }
        if (n == 0 || (n < 0 && errno != EINTR)) {
            break;
        }
    }
    out[len] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = -1;
            break;
        }
    }
    if (outp) {
        *outp = out;
    } else {
        free(out);
    }
    if (status != -1 && WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return -1;
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

/* Runs 'argv'; on failure records and logs 'what' with its output and
 * returns false. */
static bool
run_or_fail(struct bridge *br, char *const argv[], const char *what)
{
    char *out;
    int status = run_cmd(argv, &out);

    if (status) {
        set_error(br, what, out);
        VLOG_DBG("%s failed (status %d): %s", what, status,
                 out && *out ? out : "no output");
    }
    free(out);
    return status == 0;
}

/* Setup. */

static bool
ovs_add_ports(struct bridge *br)
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
    ok = run_or_fail(br, argv, "ovs-vsctl add-br/add-port");
    free(mac_arg);
    free(db);
    return ok;
}

/* Reads column 'column' of Interface 'iface'.  Returns the output
 * (malloc'd) or NULL. */
static char *
ovs_get_interface(struct bridge *br, const char *iface, const char *column)
{
    char *db = xasprintf("--db=%s", br->cfg.ovs_db);
    char *argv[] = { "ovs-vsctl", db, OVS_TIMEOUT, "get", "Interface",
                     (char *) iface, (char *) column, NULL };
    char *out;
    int status = run_cmd(argv, &out);

    free(db);
    if (status) {
        set_error(br, "ovs-vsctl get Interface", out);
        free(out);
        return NULL;
    }
    return out;
}

/* Reads the ofport of 'iface': > 0 once assigned, 0 while not yet, -1 if
 * OVS could not add it, -2 if it cannot be read. */
static int64_t
ovs_get_ofport(struct bridge *br, const char *iface)
{
    char *out = ovs_get_interface(br, iface, "ofport");
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

/* Waits until both ports have OpenFlow port numbers. */
static bool
ovs_wait_ofports(struct bridge *br)
{
    const char *ifaces[2] = { br->cfg.vnic, br->cfg.port };
    int64_t ofports[2] = { 0, 0 };

    for (int waited = 0; waited <= BRIDGE_OFPORT_WAIT_MS; waited += 100) {
        for (int i = 0; i < 2; i++) {
            if (ofports[i] <= 0) {
                ofports[i] = ovs_get_ofport(br, ifaces[i]);
            }
            if (ofports[i] == -2) {
                return false;
            } else if (ofports[i] == -1) {
                char *err = ovs_get_interface(br, ifaces[i], "error");
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
configure_port(struct bridge *br)
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

    ok = (run_or_fail(br, set_mac, "ip link set address")
          && run_or_fail(br, up, "ip link set up")
          && run_or_fail(br, add_addr, "ip addr replace")
          && run_or_fail(br, route, "ip route replace"));
    if (ok && run_cmd(neigh, NULL)) {
        /* Not needed: the bridge answers ARP for the host endpoint. */
        VLOG_DBG("could not add a neighbour entry for %s on %s", host_ip,
                 port);
    }
    free(addr);
    return ok;
}

static int
compare_cookies(const void *a_, const void *b_)
{
    uint64_t a = *(const uint64_t *) a_, b = *(const uint64_t *) b_;

    return a < b ? -1 : a > b;
}

/* Renders the flows for the current ofports, installs them with
 * replace-flows, and remembers their cookies. */
static bool
install_flows(struct bridge *br)
{
    struct flow_template_flows flows = FLOW_TEMPLATE_FLOWS_INITIALIZER;
    struct flow_template_diag diag;
    enum flow_template_error e;
    char path[] = "/tmp/chand-guest-flows-XXXXXX";
    FILE *f = NULL;
    bool ok = false;
    int fd;

    e = bridge_render(br->template, &br->cfg.chan, br->vnic_ofport,
                      br->chand_ofport, &flows, &diag);
    if (e) {
        snprintf(br->last_error, sizeof br->last_error, "%s:%u: %s",
                 br->cfg.flows, diag.line, flow_template_strerror(e));
        VLOG_ERR_RL(&rl, "%s", br->last_error);
        goto out;
    }

    fd = mkstemp(path);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        snprintf(br->last_error, sizeof br->last_error,
                 "cannot create a temporary file: %s", strerror(errno));
        VLOG_ERR_RL(&rl, "%s", br->last_error);
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        goto out;
    }
    for (size_t i = 0; i < flows.n; i++) {
        char *line = flow_template_format_flow(&flows.flows[i]);
        if (line) {
            fprintf(f, "%s\n", line);
            free(line);
        }
    }
    if (fclose(f)) {
        snprintf(br->last_error, sizeof br->last_error,
                 "cannot write %s: %s", path, strerror(errno));
        VLOG_ERR_RL(&rl, "%s", br->last_error);
        unlink(path);
        goto out;
    }

    char *argv[] = { "ovs-ofctl", "-O", "OpenFlow13", "--bundle",
                     OVS_TIMEOUT, "replace-flows", br->target, path, NULL };
    ok = run_or_fail(br, argv, "ovs-ofctl replace-flows");
    unlink(path);
    if (ok) {
        uint64_t *cookies = malloc((flows.n ? flows.n : 1)
                                   * sizeof *cookies);
        if (!cookies) {
            ok = false;
            goto out;
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
        flow_template_flows_init(&flows);
    }
out:
    flow_template_flows_destroy(&flows);
    return ok;
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

/* Reads the cookies of every flow on the bridge, sorted.  Returns false if
 * they cannot be read. */
static bool
dump_cookies(struct bridge *br, uint64_t **cookiesp, size_t *np)
{
    char *argv[] = { "ovs-ofctl", "-O", "OpenFlow13", OVS_TIMEOUT,
                     "dump-flows", br->target, NULL };
    size_t n = 0, cap = 16;
    uint64_t *cookies;
    char *out;

    *cookiesp = NULL;
    *np = 0;
    if (run_cmd(argv, &out)) {
        set_error(br, "ovs-ofctl dump-flows", out);
        free(out);
        return false;
    }
    cookies = malloc(cap * sizeof *cookies);
    for (char *p = out; cookies && (p = strstr(p, "cookie=0x")); ) {
        char *end;
        uint64_t cookie = strtoull(p + 9, &end, 16);

        p = end;
        if (n >= cap) {
            uint64_t *bigger = realloc(cookies, 2 * cap * sizeof *cookies);
            if (!bigger) {
                break;
            }
            cookies = bigger;
            cap *= 2;
        }
        cookies[n++] = cookie;
    }
    take_counters(br, out);
    free(out);
    if (!cookies) {
        return false;
    }
    qsort(cookies, n, sizeof *cookies, compare_cookies);
    *cookiesp = cookies;
    *np = n;
    return true;
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

static bool
setup(struct bridge *br)
{
    if (!ovs_add_ports(br) || !ovs_wait_ofports(br) || !configure_port(br)
        || !install_flows(br)) {
        return false;
    }
    br->ifindex = if_nametoindex(br->cfg.port);
    return true;
}

/* Checks that the bridge still looks as set up.  Returns NULL if so, or a
 * static reason. */
static const char *
check(struct bridge *br, char *buf, size_t size)
{
    uint64_t *cookies;
    size_t n;

    if (if_nametoindex(br->cfg.port) != br->ifindex) {
        snprintf(buf, size, "%s was removed or recreated (ovs-vswitchd "
                 "restarted?)", br->cfg.port);
        return buf;
    } else if (!has_address(br->cfg.port, br->cfg.chan.guest.ip)) {
        snprintf(buf, size, "%s lost its address", br->cfg.port);
        return buf;
    } else if (!dump_cookies(br, &cookies, &n)) {
        snprintf(buf, size, "cannot read the flows (%.200s)",
                 br->last_error);
        return buf;
    }

    size_t missing = 0, extra = 0, i = 0, j = 0;
    while (i < br->n_cookies || j < n) {
        if (j >= n || (i < br->n_cookies && br->cookies[i] < cookies[j])) {
            missing++;
            i++;
        } else if (i >= br->n_cookies || cookies[j] < br->cookies[i]) {
            extra++;
            j++;
        } else {
            i++;
            j++;
        }
    }
    free(cookies);
    if (missing || extra) {
        snprintf(buf, size, "%zu of %zu flows missing and %zu unexpected "
                 "flows on %s", missing, br->n_cookies, extra,
                 br->cfg.bridge);
        return buf;
    }
    return NULL;
}

void
bridge_run(struct bridge *br, long long now)
{
    char why[256];

    if (now < br->next_run) {
        return;
    }
    if (br->ready) {
        const char *reason;

        br->n_checks++;
        reason = check(br, why, sizeof why);
        if (!reason) {
            br->next_run = now + BRIDGE_CHECK_MS;
            return;
        }
        br->n_check_failures++;
        br->ready = false;
        VLOG_WARN("guest bridge %s: %s; setting it up again",
                  br->cfg.bridge, reason);
    }

    if (setup(br)) {
        br->ready = true;
        br->seqno++;
        br->n_setups++;
        br->retry_ms = BRIDGE_RETRY_MIN_MS;
        br->next_run = now + BRIDGE_CHECK_MS;
        br->last_error[0] = '\0';
        VLOG_INFO("guest bridge %s ready: %s is OpenFlow port %"PRId64", %s "
                  "is OpenFlow port %"PRId64", %zu flows installed",
                  br->cfg.bridge, br->cfg.vnic, br->vnic_ofport,
                  br->cfg.port, br->chand_ofport, br->n_cookies);
    } else {
        br->n_setup_failures++;
        VLOG_ERR_RL(&rl, "guest bridge %s setup failed: %s; retrying in %lld "
                    "ms", br->cfg.bridge, br->last_error, br->retry_ms);
        br->next_run = now + br->retry_ms;
        br->retry_ms = (br->retry_ms * 2 > BRIDGE_RETRY_MAX_MS
                        ? BRIDGE_RETRY_MAX_MS : br->retry_ms * 2);
    }
}

long long
bridge_next_wakeup(const struct bridge *br, long long now)
{
    return br->next_run < now ? now : br->next_run;
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
    return json_pack("{s:s, s:b, s:s, s:I, s:s, s:I, s:I, s:s, s:I, s:I, "
                     "s:I, s:I, s:s, s:I, s:I}",
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
                     "next_run_ms", (json_int_t) (br->next_run > now
                                                  ? br->next_run - now : 0));
}
