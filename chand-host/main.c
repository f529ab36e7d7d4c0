/* chand-host: the hypervisor end of chand's channels.  Option parsing and
 * the main loop; everything else is in host.c. */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan-mtu.h"
#include "daemon.h"
#include "host.h"
#include "metrics-http.h"
#include "stream-ssl.h"
#include "util.h"
#include "poll-loop.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(main);

#define DEFAULT_OVS_DB "unix:/var/run/openvswitch/db.sock"

static void
usage(void)
{
    printf("\
chand-host: hypervisor daemon of chand, the in-band VM control channel\n\
usage: chand-host [OPTIONS]\n\
\n\
Watches the local Open_vSwitch database for interfaces provisioned with\n\
external_ids:chand-vm (and chand-id, or one it allocates), installs chand's\n\
flows on the bridge, delivers the Chan DB's records to each VM and writes\n\
back what they applied.\n\
\n\
Options:\n\
  --ovs-db=REMOTE     local Open_vSwitch DB (default: %s)\n\
  --chan-db=REMOTE    Chan DB: unix:PATH, tcp:IP:PORT or ssl:IP:PORT, or\n\
                      several, comma-separated: any member of a cluster\n\
                      (default: the --ovs-db remote)\n\
  --private-key=FILE, --certificate=FILE, --ca-cert=FILE\n\
                      TLS for ssl: remotes: chand-host's key and\n\
                      certificate, and the CA certificate that signs the\n\
                      server's (peer certificates are verified)\n\
  --bootstrap-ca-cert=FILE\n\
                      as --ca-cert, but if FILE does not exist, trust the\n\
                      CA certificate the server presents first and save it\n\
  --chassis=NAME      this hypervisor's name in the Chan DB's Channel rows\n\
                      (default: the Open_vSwitch DB's external_ids:system-id,\n\
                      else the host name)\n\
  --monitor=WHAT      what of the Chan DB to replicate: own (only what\n\
                      concerns this chassis's VMs, and records for all\n\
                      VMs) or all (every row: needed to derive relayed\n\
                      records and object actions; run one such chand-host\n\
                      per Chan DB) (default: all for a unix: Chan DB,\n\
                      own for tcp: and ssl:)\n\
  --bridge=BRIDGE     host bridge carrying the VMs' vNICs (default: br-int)\n\
  --ovs-rundir=DIR    where BRIDGE.mgmt is (default: $OVS_RUNDIR or\n\
                      /var/run/openvswitch)\n\
  --flows=FILE        host flow template (default: %s/flows/host.flows)\n\
  --ctl=PATH          control socket (default: %s/chand-host.ctl)\n\
  --flow-check=SECS   re-read the bridge's chand flows this often and put\n\
                      back what is missing; 0: never (default: 5)\n\
  --inject=MODE       how frames meet the bridge: auto (the chand port if\n\
                      ovs-vswitchd has it, else OpenFlow), port, openflow\n\
                      (default: auto)\n\
  --chand-port=NAME   name of the chand port on BRIDGE (default: chand0)\n\
  --mtu=N|auto        channels' IP MTU, 576..65535, unless the vNIC's\n\
                      external_ids:chand-mtu says otherwise; never above\n\
                      the vNIC's MTU; auto: the vNIC's MTU (default: auto)\n\
  --metrics=ADDR:PORT serve the metrics of chanctl metrics over HTTP on\n\
                      GET /metrics, for Prometheus; ADDR is an IPv4\n\
                      address or a bracketed IPv6 one (default: off)\n\
  --vm-name-from=KEY  where an Interface's VM name comes from: chand-vm\n\
                      (external_ids:chand-vm) or iface-id (chand-vm if\n\
                      set, else external_ids:iface-id, as OVN and Nova\n\
                      set it) (default: chand-vm)\n\
\n\
Per-channel limits:\n\
  --max-record=BYTES  largest record value (default: 72M)\n\
  --max-batch=N       records per DATA message (default: 1000)\n\
  --window=FRAMES     frames in flight, unacknowledged (default: 256)\n\
  --window-bytes=BYTES  and their payload bytes at most, so that a burst\n\
                      fits the guest's receive buffer (default: 96K;\n\
                      0: frames only)\n\
  --max-queued=BYTES  bytes queued for one guest before it is resynced\n\
                      from a snapshot instead (default: 256M)\n\
  --guest-rate=PPS[/BURST]  meter on each guest's frames to the host,\n\
                      packets per second and burst (default: 2000/500);\n\
                      fetches from a VM ask for at most 80%% of PPS\n\
\n\
File transfer and the content store:\n\
  --content-dir=DIR   objects' content, once per digest\n\
                      (default: %s/content)\n\
  --content-cap=BYTES the content store's cap; content no VM references\n\
                      and the allowlist does not name is evicted to stay\n\
                      under it (default: 4G)\n\
  --max-transfer=BYTES largest object sent or fetched (default: 1G)\n\
\n\
",
           DEFAULT_OVS_DB, CHAND_PKGDATADIR, CHAND_RUNDIR, CHAND_DBDIR);
    daemon_usage("channel");
}

static int
bad_value(const char *option, const char *value)
{
    fprintf(stderr, "chand-host: invalid %s '%s' (see --help)\n", option,
            value);
    return 2;
}

/* Parses a decimal size with an optional K, M or G suffix (powers of 1024)
 * into '*value', which must lie in [min, max].  Returns 0 or EINVAL. */
static int
parse_size(const char *s, unsigned long long min, unsigned long long max,
           size_t *value)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') {
        return EINVAL;
    }
    int shift = (*end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0);
    if (shift) {
        end++;
    }
    if (*end || v > max >> shift || (v << shift) < min) {
        return EINVAL;
    }
    *value = v << shift;
    return 0;
}

/* Parses "PPS" or "PPS/BURST". */
static int
parse_rate(const char *s, unsigned int *pps, unsigned int *burst)
{
    size_t p, b;
    char *copy = strdup(s);
    char *slash = strchr(copy, '/');
    if (slash) {
        *slash = '\0';
    }
    int error = (parse_size(copy, 1, 10000000, &p)
                 || (slash && parse_size(slash + 1, 1, 10000000, &b)));
    free(copy);
    if (error) {
        return EINVAL;
    }
    *pps = p;
    *burst = slash ? b : (p / 4 ? p / 4 : 1);
    return 0;
}

/* Creates the host daemon from 'opts' (a struct host_options); the caller
 * owns the result. */
static void *
host_create_(const void *opts)
{
    return host_create(opts);
}

DAEMON_CLASS_DEFINE(host, host_create_);

int
main(int argc, char *argv[])
{
    enum { OPT_OVS_DB = 256, OPT_CHAN_DB, OPT_BRIDGE, OPT_OVS_RUNDIR,
           OPT_FLOWS, OPT_CTL, OPT_MAX_RECORD, OPT_MAX_BATCH, OPT_WINDOW,
           OPT_WINDOW_BYTES,
           OPT_MAX_QUEUED, OPT_GUEST_RATE, OPT_FLOW_CHECK, OPT_INJECT,
           OPT_CHAND_PORT, OPT_CONTENT_DIR, OPT_CONTENT_CAP,
           OPT_MAX_TRANSFER, OPT_PRIVATE_KEY, OPT_CERTIFICATE, OPT_CA_CERT,
           OPT_BOOTSTRAP_CA_CERT, OPT_CHASSIS, OPT_MONITOR, OPT_MTU,
           OPT_METRICS,
           OPT_VM_NAME_FROM };
    static const struct option long_options[] = {
        { "ovs-db", required_argument, NULL, OPT_OVS_DB },
        { "chan-db", required_argument, NULL, OPT_CHAN_DB },
        { "bridge", required_argument, NULL, OPT_BRIDGE },
        { "ovs-rundir", required_argument, NULL, OPT_OVS_RUNDIR },
        { "flows", required_argument, NULL, OPT_FLOWS },
        { "ctl", required_argument, NULL, OPT_CTL },
        DAEMON_LONG_OPTIONS,
        { "max-record", required_argument, NULL, OPT_MAX_RECORD },
        { "max-batch", required_argument, NULL, OPT_MAX_BATCH },
        { "window", required_argument, NULL, OPT_WINDOW },
        { "window-bytes", required_argument, NULL, OPT_WINDOW_BYTES },
        { "max-queued", required_argument, NULL, OPT_MAX_QUEUED },
        { "guest-rate", required_argument, NULL, OPT_GUEST_RATE },
        { "content-dir", required_argument, NULL, OPT_CONTENT_DIR },
        { "private-key", required_argument, NULL, OPT_PRIVATE_KEY },
        { "chassis", required_argument, NULL, OPT_CHASSIS },
        { "monitor", required_argument, NULL, OPT_MONITOR },
        { "certificate", required_argument, NULL, OPT_CERTIFICATE },
        { "ca-cert", required_argument, NULL, OPT_CA_CERT },
        { "bootstrap-ca-cert", required_argument, NULL,
          OPT_BOOTSTRAP_CA_CERT },
        { "content-cap", required_argument, NULL, OPT_CONTENT_CAP },
        { "max-transfer", required_argument, NULL, OPT_MAX_TRANSFER },
        { "flow-check", required_argument, NULL, OPT_FLOW_CHECK },
        { "inject", required_argument, NULL, OPT_INJECT },
        { "chand-port", required_argument, NULL, OPT_CHAND_PORT },
        { "mtu", required_argument, NULL, OPT_MTU },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "vm-name-from", required_argument, NULL, OPT_VM_NAME_FROM },
        { NULL, 0, NULL, 0 },
    };
    const char *rundir = getenv("OVS_RUNDIR");
    struct host_options opts = {
        .ovs_db = DEFAULT_OVS_DB,
        .bridge = "br-int",
        .ovs_rundir = rundir && *rundir ? rundir : "/var/run/openvswitch",
        .flows = CHAND_PKGDATADIR "/flows/host.flows",
        .ctl = CHAND_RUNDIR "/chand-host.ctl",
        .limits = CHANNEL_LIMITS_DEFAULT,
        .guest_pps = 2000,
        .guest_burst = 500,
        .flow_check_ms = 5000,
        .inject = INJECT_AUTO,
        .chand_port = "chand0",
        .content_dir = CHAND_DBDIR "/content",
    };
    struct daemon_options dopts = DAEMON_OPTIONS_INIT("chand-host", usage);
    int c, status;

    vlog_init("chand-host");
    while ((c = getopt_long(argc, argv, DAEMON_SHORT_OPTIONS, long_options,
                            NULL)) != -1) {
        switch (c) {
        case OPT_OVS_DB: opts.ovs_db = optarg; break;
        case OPT_CHAN_DB: opts.chan_db = optarg; break;
        case OPT_BRIDGE: opts.bridge = optarg; break;
        case OPT_OVS_RUNDIR: opts.ovs_rundir = optarg; break;
        case OPT_FLOWS: opts.flows = optarg; break;
        case OPT_CTL: opts.ctl = optarg; break;
        case OPT_MAX_RECORD:
            if (parse_size(optarg, 1, 1ull << 30, &opts.limits.max_record)) {
                return bad_value("--max-record", optarg);
            }
            break;
        case OPT_MAX_BATCH:
            if (parse_size(optarg, 1, 100000,
                           &opts.limits.max_batch_records)) {
                return bad_value("--max-batch", optarg);
            }
            break;
        case OPT_WINDOW: {
            size_t window;
            if (parse_size(optarg, 1, 65536, &window)) {
                return bad_value("--window", optarg);
            }
            opts.limits.window = window;
            break;
        }
        case OPT_WINDOW_BYTES:
            if (parse_size(optarg, 0, 1ull << 30,
                           &opts.limits.window_bytes)) {
                return bad_value("--window-bytes", optarg);
            }
            break;
        case OPT_MAX_QUEUED:
            if (parse_size(optarg, 1 << 16, 1ull << 40,
                           &opts.limits.max_queued)) {
                return bad_value("--max-queued", optarg);
            }
            break;
        case OPT_CONTENT_DIR: opts.content_dir = optarg; break;
        case OPT_MTU:
            if (chan_mtu_parse(optarg, &opts.mtu)) {
                return bad_value("--mtu", optarg);
            }
            break;
        case OPT_METRICS:
            if (!metrics_http_verify_addr(optarg)) {
                return bad_value("--metrics", optarg);
            }
            opts.metrics = optarg;
            break;
        case OPT_VM_NAME_FROM:
            if (!provision_vm_name_from_string(optarg, &opts.vm_name)) {
                fprintf(stderr, "chand-host: invalid --vm-name-from '%s': "
                        "use chand-vm or iface-id\n", optarg);
                return 2;
            }
            break;
        case OPT_PRIVATE_KEY: stream_ssl_set_private_key_file(optarg); break;
        case OPT_CHASSIS:
            if (!*optarg || strlen(optarg) > 255) {
                return bad_value("--chassis", optarg);
            }
            opts.chassis = optarg;
            break;
        case OPT_MONITOR:
            if (!strcmp(optarg, "all")) {
                opts.monitor = CHANDB_MONITOR_ALL;
            } else if (!strcmp(optarg, "own")) {
                opts.monitor = CHANDB_MONITOR_OWN;
            } else {
                return bad_value("--monitor", optarg);
            }
            break;
        case OPT_CERTIFICATE: stream_ssl_set_certificate_file(optarg); break;
        case OPT_CA_CERT:
        case OPT_BOOTSTRAP_CA_CERT:
            stream_ssl_set_ca_cert_file(optarg, c == OPT_BOOTSTRAP_CA_CERT);
            break;
        case OPT_CONTENT_CAP:
            if (!parse_byte_size(optarg, &opts.content_cap)
                || !opts.content_cap) {
                return bad_value("--content-cap", optarg);
            }
            break;
        case OPT_MAX_TRANSFER:
            if (!parse_byte_size(optarg, &opts.max_transfer)
                || !opts.max_transfer) {
                return bad_value("--max-transfer", optarg);
            }
            break;
        case OPT_GUEST_RATE:
            if (parse_rate(optarg, &opts.guest_pps, &opts.guest_burst)) {
                return bad_value("--guest-rate", optarg);
            }
            break;
        case OPT_FLOW_CHECK: {
            size_t secs;
            if (optarg[strspn(optarg, "0123456789")]
                || parse_size(optarg, 0, 86400, &secs)) {
                return bad_value("--flow-check", optarg);
            }
            opts.flow_check_ms = secs * 1000;
            break;
        }
        case OPT_INJECT:
            if (!inject_mode_from_string(optarg, &opts.inject)) {
                return bad_value("--inject", optarg);
            }
            break;
        case OPT_CHAND_PORT:
            if (!*optarg || strlen(optarg) > 15 || strchr(optarg, '/')) {
                return bad_value("--chand-port", optarg);
            }
            opts.chand_port = optarg;
            break;
        default:
            status = daemon_parse_option(&dopts, c, optarg);
            if (status >= 0) {
                return status;
            }
            break;
        }
    }
    if (daemon_parse_end(&dopts, argc, argv)) {
        return 2;
    }
    if (!opts.chan_db) {
        opts.chan_db = opts.ovs_db;
    }
    return daemon_run(&host_class, &opts, &dopts);
}
