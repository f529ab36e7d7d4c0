/* chand-guest: the VM end of chand's channel.  Option parsing and the main
 * loop; everything else is in guest.c and the modules it uses. */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "chan-endpoint.h"
#include "chan-mtu.h"
#include "daemon.h"
#include "guest.h"
#include "handler.h"
#include "transfer.h"
#include "util.h"
#include "keyring.h"
#include "kvp.h"
#include "poll-loop.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(main);

#define DEFAULT_OVS_DB "unix:/var/run/openvswitch/db.sock"
#define DEFAULT_CTL "@chand-guest.ctl"

static void
usage(void)
{
    printf("\
chand-guest: guest daemon of chand, the in-band VM control channel\n\
usage: chand-guest --chan-id=N [OPTIONS]\n\
\n\
Sets up the guest bridge on the VM's own Open vSwitch, receives the records\n\
chand-host delivers over the channel, applies them to a local SQLite\n\
datastore (exactly once, acknowledged after each commit), and serves them\n\
to guest applications on a local socket.\n\
\n\
Channel (defaults derived from --chan-id, as on the host):\n\
  --chan-id=N         the channel's id, 1..4294967295 (required; the\n\
                      host's external_ids:chand-id for this VM)\n\
  --vid=VID           802.1Q vid of the channel, 1..4094 (default: 4094)\n\
  --guest-ip=IP       guest endpoint address (default: 169.254.X.Y from N)\n\
  --guest-mac=MAC     guest endpoint MAC (default: 0a:c4:<N, 4 bytes>)\n\
\n\
Datastore and keys:\n\
  --db=FILE           SQLite datastore, created if missing, with its\n\
                      directory (default: %s/guest.db)\n\
  --key-file=FILE     channel keys, \"GENERATION HEXKEY\" lines (default:\n\
                      %s; missing: not authenticated)\n\
  --stats-interval=SECS\n\
                      publish the daemon's statistics to the host as the\n\
                      record stats/chand-guest every SECS seconds\n\
                      (default: %d; 0: never)\n\
  --watch-dir=DIR     keep every regular file directly in DIR registered\n\
                      as an object (published as obj/SHA256)\n\
\n\
Handlers (run for verdict/, notice/, install/ and restore/ records):\n\
  --handlers-dir=DIR  the handlers' directory, DIR/KIND run for a record\n\
                      of KIND (default: %s)\n\
  --handler-user=USER run the handlers as USER (default: chand-guest's\n\
                      own user)\n\
  --handler-timeout=SECS\n\
                      kill a handler still running after SECS seconds\n\
                      (default: %d)\n\
  --handlers-max=N    run at most N handlers at once (default: %d)\n\
  --quarantine-dir=DIR\n\
                      CHAND_QUARANTINE_DIR for the handlers: where the\n\
                      built-in verdict handler moves files (default: its\n\
                      own, /var/lib/chand/quarantine)\n\
\n\
Requests (call/ records, answered as result/call/; doc/adapters.md):\n\
  --exec-allow=FILE   allow the exec command for the executables listed\n\
                      in FILE, one absolute path a line (default: exec\n\
                      is refused)\n\
\n\
File transfer (install/ and restore/ content, objects the host fetches):\n\
  --content-dir=DIR   where content pulled from the host is kept, and\n\
                      file-export's copies in DIR/export\n\
                      (default: content/ next to the datastore)\n\
  --install-dir=DIR   install/ records may only write inside DIR\n\
                      (default: %s)\n\
  --max-transfer=BYTES\n\
                      largest object sent or received, and of one\n\
                      file-export, with an optional K, M, G suffix\n\
                      (default: 1G)\n\
\n\
Hyper-V KVP view (off by default):\n\
  --kvp-prefix=PREFIX show the records PREFIX<pool>/<name> (pool 0-4) as\n\
                      entries of the Hyper-V KVP pool files, and publish\n\
                      the entries guest tools write in pool 1 as\n\
                      PREFIX1/<name> (e.g. --kvp-prefix=kvp/)\n\
  --kvp-dir=DIR       the pool files' directory (default: %s)\n\
\n\
Guest bridge:\n\
  --no-bridge         leave Open vSwitch alone: the guest endpoint address\n\
                      is configured by someone else (tests)\n\
  --ovs-db=REMOTE     the guest's Open_vSwitch database (default: %s)\n\
  --ovs-rundir=DIR    where BRIDGE.mgmt is (default: $OVS_RUNDIR or\n\
                      /var/run/openvswitch)\n\
  --bridge=NAME       guest bridge (default: br-chan)\n\
  --vnic=IFACE        the VM's NIC to put on it (default: eth0)\n\
  --port=IFACE        chand-guest's internal port (default: chand0)\n\
  --mtu=N|auto        the channel's IP MTU, 576..65535, never above the\n\
                      smaller of IFACE's and the vNIC's MTU (nor 9244);\n\
                      auto: that smaller MTU (default: auto)\n\
  --flows=FILE        guest flow template\n\
                      (default: %s/flows/guest.flows)\n\
\n\
Local sockets (\"@NAME\" is a Linux abstract socket, else a file path):\n\
  --api=PATH          JSON-RPC API for guest applications\n\
                      (default: %s)\n\
  --ctl=PATH          control socket for chanctl and ctl commands\n\
                      (default: %s)\n\
\n\
",
           CHAND_DBDIR, KEYRING_DEFAULT_FILE, GUEST_DEFAULT_STATS_INTERVAL,
           HANDLER_DEFAULT_DIR, HANDLER_DEFAULT_TIMEOUT,
           HANDLER_DEFAULT_MAX_RUNNING, TRANSFER_DEFAULT_INSTALL_DIR,
           KVP_DEFAULT_DIR, DEFAULT_OVS_DB,
           CHAND_PKGDATADIR, API_DEFAULT_PATH, DEFAULT_CTL);
    daemon_usage("receiver");
}

#define STATS_INTERVAL_MAX 86400
#define HANDLER_TIMEOUT_MAX 86400
#define HANDLERS_MAX_MAX 64

/* Parses 's' as a whole number 'min'..'max'. */
static bool
parse_number(const char *s, unsigned int min, unsigned int max,
             unsigned int *np)
{
    char *end;
    unsigned long n;

    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    n = strtoul(s, &end, 10);
    if (errno || *end || n < min || n > max) {
        return false;
    }
    *np = n;
    return true;
}

/* Parses 's' as a whole number of seconds 0..STATS_INTERVAL_MAX. */
static bool
parse_seconds(const char *s, unsigned int *secondsp)
{
    return parse_number(s, 0, STATS_INTERVAL_MAX, secondsp);
}

/* Creates the guest daemon from 'opts' (a struct guest_options); the
 * caller owns the result. */
static void *
guest_create_(const void *opts)
{
    return guest_create(opts);
}

DAEMON_CLASS_DEFINE(guest, guest_create_);

int
main(int argc, char *argv[])
{
    enum { OPT_CHAN_ID = 256, OPT_VID, OPT_GUEST_IP, OPT_GUEST_MAC, OPT_DB,
           OPT_NO_BRIDGE, OPT_OVS_DB, OPT_OVS_RUNDIR, OPT_BRIDGE, OPT_VNIC,
           OPT_PORT, OPT_FLOWS, OPT_API, OPT_CTL, OPT_KEY_FILE,
           OPT_STATS_INTERVAL, OPT_WATCH_DIR, OPT_HANDLERS_DIR,
           OPT_HANDLER_USER, OPT_HANDLER_TIMEOUT, OPT_HANDLERS_MAX,
           OPT_QUARANTINE_DIR,
           OPT_CONTENT_DIR, OPT_INSTALL_DIR, OPT_MAX_TRANSFER, OPT_MTU,
           OPT_KVP_PREFIX, OPT_KVP_DIR,
           OPT_EXEC_ALLOW };
    static const struct option long_options[] = {
        { "chan-id", required_argument, NULL, OPT_CHAN_ID },
        { "vid", required_argument, NULL, OPT_VID },
        { "guest-ip", required_argument, NULL, OPT_GUEST_IP },
        { "guest-mac", required_argument, NULL, OPT_GUEST_MAC },
        { "db", required_argument, NULL, OPT_DB },
        { "key-file", required_argument, NULL, OPT_KEY_FILE },
        { "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
        { "watch-dir", required_argument, NULL, OPT_WATCH_DIR },
        { "handlers-dir", required_argument, NULL, OPT_HANDLERS_DIR },
        { "handler-user", required_argument, NULL, OPT_HANDLER_USER },
        { "handler-timeout", required_argument, NULL, OPT_HANDLER_TIMEOUT },
        { "handlers-max", required_argument, NULL, OPT_HANDLERS_MAX },
        { "quarantine-dir", required_argument, NULL, OPT_QUARANTINE_DIR },
        { "exec-allow", required_argument, NULL, OPT_EXEC_ALLOW },
        { "content-dir", required_argument, NULL, OPT_CONTENT_DIR },
        { "install-dir", required_argument, NULL, OPT_INSTALL_DIR },
        { "max-transfer", required_argument, NULL, OPT_MAX_TRANSFER },
        { "kvp-prefix", required_argument, NULL, OPT_KVP_PREFIX },
        { "kvp-dir", required_argument, NULL, OPT_KVP_DIR },
        { "no-bridge", no_argument, NULL, OPT_NO_BRIDGE },
        { "ovs-db", required_argument, NULL, OPT_OVS_DB },
        { "ovs-rundir", required_argument, NULL, OPT_OVS_RUNDIR },
        { "bridge", required_argument, NULL, OPT_BRIDGE },
        { "vnic", required_argument, NULL, OPT_VNIC },
        { "port", required_argument, NULL, OPT_PORT },
        { "mtu", required_argument, NULL, OPT_MTU },
        { "flows", required_argument, NULL, OPT_FLOWS },
        { "api", required_argument, NULL, OPT_API },
        { "ctl", required_argument, NULL, OPT_CTL },
        DAEMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *rundir = getenv("OVS_RUNDIR");
    struct guest_options opts = {
        .db = CHAND_DBDIR "/guest.db",
        .ovs_db = DEFAULT_OVS_DB,
        .ovs_rundir = rundir && *rundir ? rundir : "/var/run/openvswitch",
        .bridge = "br-chan",
        .vnic = "eth0",
        .port = "chand0",
        .flows = CHAND_PKGDATADIR "/flows/guest.flows",
        .api = API_DEFAULT_PATH,
        .ctl = DEFAULT_CTL,
        .key_file = KEYRING_DEFAULT_FILE,
        .stats_interval = GUEST_DEFAULT_STATS_INTERVAL,
        .handlers_dir = HANDLER_DEFAULT_DIR,
        .handler_timeout = HANDLER_DEFAULT_TIMEOUT,
        .handlers_max = HANDLER_DEFAULT_MAX_RUNNING,
    };
    const char *chan_id = NULL, *vid = NULL, *guest_ip = NULL;
    const char *guest_mac = NULL;
    struct daemon_options dopts = DAEMON_OPTIONS_INIT("chand-guest", usage);
    enum chan_ep_error ep_error;
    int c, status;

    vlog_init("chand-guest");
    while ((c = getopt_long(argc, argv, DAEMON_SHORT_OPTIONS, long_options,
                            NULL)) != -1) {
        switch (c) {
        case OPT_CHAN_ID: chan_id = optarg; break;
        case OPT_VID: vid = optarg; break;
        case OPT_GUEST_IP: guest_ip = optarg; break;
        case OPT_GUEST_MAC: guest_mac = optarg; break;
        case OPT_DB: opts.db = optarg; break;
        case OPT_KEY_FILE: opts.key_file = optarg; break;
        case OPT_STATS_INTERVAL:
            if (!parse_seconds(optarg, &opts.stats_interval)) {
                fprintf(stderr, "chand-guest: --stats-interval: '%s' is not "
                        "a number of seconds (0 to %d)\n", optarg,
                        STATS_INTERVAL_MAX);
                return 2;
            }
            break;
        case OPT_WATCH_DIR: opts.watch_dir = optarg; break;
        case OPT_HANDLERS_DIR: opts.handlers_dir = optarg; break;
        case OPT_HANDLER_USER: opts.handler_user = optarg; break;
        case OPT_QUARANTINE_DIR: opts.quarantine_dir = optarg; break;
        case OPT_EXEC_ALLOW: opts.exec_allow = optarg; break;
        case OPT_CONTENT_DIR: opts.content_dir = optarg; break;
        case OPT_INSTALL_DIR: opts.install_dir = optarg; break;
        case OPT_MAX_TRANSFER:
            if (!parse_byte_size(optarg, &opts.max_transfer)
                || !opts.max_transfer) {
                fprintf(stderr, "chand-guest: --max-transfer: '%s' is not "
                        "a size in bytes above 0 (such as 512M or 2G)\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_KVP_PREFIX: {
            const char *why = kvp_check_prefix(optarg);
            if (why) {
                fprintf(stderr, "chand-guest: --kvp-prefix: '%s' %s\n",
                        optarg, why);
                return 2;
            }
            opts.kvp_prefix = optarg;
            break;
        }
        case OPT_KVP_DIR:
            if (!*optarg) {
                fprintf(stderr, "chand-guest: --kvp-dir may not be empty\n");
                return 2;
            }
            opts.kvp_dir = optarg;
            break;
        case OPT_HANDLER_TIMEOUT:
            if (!parse_number(optarg, 1, HANDLER_TIMEOUT_MAX,
                              &opts.handler_timeout)) {
                fprintf(stderr, "chand-guest: --handler-timeout: '%s' is not "
                        "a number of seconds (1 to %d)\n", optarg,
                        HANDLER_TIMEOUT_MAX);
                return 2;
            }
            break;
        case OPT_HANDLERS_MAX:
            if (!parse_number(optarg, 1, HANDLERS_MAX_MAX,
                              &opts.handlers_max)) {
                fprintf(stderr, "chand-guest: --handlers-max: '%s' is not "
                        "a number from 1 to %d\n", optarg, HANDLERS_MAX_MAX);
                return 2;
            }
            break;
        case OPT_NO_BRIDGE: opts.no_bridge = true; break;
        case OPT_OVS_DB: opts.ovs_db = optarg; break;
        case OPT_OVS_RUNDIR: opts.ovs_rundir = optarg; break;
        case OPT_BRIDGE: opts.bridge = optarg; break;
        case OPT_VNIC: opts.vnic = optarg; break;
        case OPT_PORT: opts.port = optarg; break;
        case OPT_MTU: {
            const char *error = chan_mtu_parse(optarg, &opts.mtu);
            if (error) {
                fprintf(stderr, "chand-guest: --mtu: '%s': %s\n", optarg,
                        error);
                return 2;
            }
            break;
        }
        case OPT_FLOWS: opts.flows = optarg; break;
        case OPT_API: opts.api = optarg; break;
        case OPT_CTL: opts.ctl = optarg; break;
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
    if (!chan_id) {
        fprintf(stderr, "chand-guest: --chan-id is required (the id the "
                "host provisioned for this VM: external_ids:chand-id)\n");
        return 2;
    }
    ep_error = chan_config_from_strings(chan_id, vid, guest_ip, guest_mac,
                                        &opts.chan);
    if (ep_error) {
        fprintf(stderr, "chand-guest: invalid %s: %s\n",
                chan_ep_error_option(ep_error), chan_ep_strerror(ep_error));
        return 2;
    }
    if (!*opts.db || !*opts.api || !*opts.ctl || !*opts.key_file
        || !*opts.handlers_dir) {
        fprintf(stderr, "chand-guest: --db, --key-file, --api, --ctl and "
                "--handlers-dir may not be empty\n");
        return 2;
    }
    if (opts.exec_allow && access(opts.exec_allow, R_OK)) {
        fprintf(stderr, "chand-guest: --exec-allow: cannot read %s: %s\n",
                opts.exec_allow, strerror(errno));
        return 2;
    }
    return daemon_run(&guest_class, &opts, &dopts);
}
