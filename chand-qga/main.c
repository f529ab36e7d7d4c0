/* chand-qga: a qemu-guest-agent compatible socket per VM, over chand's
 * channel.  Option parsing and the main loop; everything else is in
 * qga.c. */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "qga.h"
#include "stream-ssl.h"
#include "util.h"
#include "vlog.h"

#define DEFAULT_CHAN_DB "unix:/var/run/openvswitch/db.sock"

static void
usage(void)
{
    printf("\
chand-qga: qemu-guest-agent compatible sockets for VMs served by chand\n\
usage: chand-qga [OPTIONS]\n\
\n\
Serves, for every VM with a channel in the Chan DB, a Unix socket that\n\
speaks the qemu-guest-agent protocol, and answers its commands through\n\
the VM's channel (requests to chand-guest), so that libvirt or any\n\
qemu-ga client manages a VM that runs no qemu-ga.\n\
\n\
Options:\n\
  --chan-db=REMOTE    Chan DB: unix:PATH, tcp:IP:PORT or ssl:IP:PORT, or\n\
                      several, comma-separated (default: %s)\n\
  --private-key=FILE, --certificate=FILE, --ca-cert=FILE\n\
                      TLS for ssl: remotes\n\
  --socket-dir=DIR    where the sockets are (default: %s/qga)\n\
  --socket-name=KIND  name each socket DIR/NAME.sock by the VM's name (vm)\n\
                      or by its current id of a kind: libvirt-uuid,\n\
                      iface-id, nova-uuid or platform-id; VMs without one\n\
                      get no socket (default: vm)\n\
  --chassis=NAME      serve only the VMs whose channel is on this chassis\n\
                      (default: every VM with a channel)\n\
  --host-ctl=PATH     chand-host's control socket, for large file reads\n\
                      (default: %s/chand-host.ctl)\n\
  --ctl=PATH          control socket (default: %s/chand-qga.ctl)\n\
  --call-timeout=SECS how long a VM has to answer one request (default: 30)\n\
  --exec-timeout=SECS how long a guest-exec may run (default: 3600)\n\
  --file-timeout=SECS how long a large guest-file-read may take\n\
                      (default: 600)\n\
  --max-request=BYTES largest qemu-ga request (default: 96M)\n\
  --max-file-read=BYTES   largest guest-file-read count (default: 256M)\n\
  --max-file-write=BYTES  largest guest-file-write (default: 64M)\n\
\n\
",
           DEFAULT_CHAN_DB, CHAND_RUNDIR, CHAND_RUNDIR, CHAND_RUNDIR);
    daemon_usage("endpoint");
}

static int
bad_value(const char *option, const char *value)
{
    fprintf(stderr, "chand-qga: invalid %s '%s' (see --help)\n", option,
            value);
    return 2;
}

/* Parses whole seconds, 1 to 86400, into milliseconds. */
static bool
parse_secs(const char *s, int64_t *msp)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 86400) {
        return false;
    }
    *msp = v * 1000LL;
    return true;
}

/* Parses a byte size, 1 to 'max'. */
static bool
parse_bytes(const char *s, uint64_t max, uint64_t *np)
{
    return parse_byte_size(s, np) && *np >= 1 && *np <= max;
}

static void *
qga_create_(const void *opts)
{
    return qga_create(opts);
}

DAEMON_CLASS_DEFINE(qga, qga_create_);

int
main(int argc, char *argv[])
{
    enum { OPT_CHAN_DB = 256, OPT_SOCKET_DIR, OPT_SOCKET_NAME, OPT_CHASSIS,
           OPT_HOST_CTL, OPT_CTL, OPT_CALL_TIMEOUT, OPT_EXEC_TIMEOUT,
           OPT_FILE_TIMEOUT, OPT_MAX_REQUEST, OPT_MAX_FILE_READ,
           OPT_MAX_FILE_WRITE, OPT_PRIVATE_KEY, OPT_CERTIFICATE,
           OPT_CA_CERT };
    static const struct option long_options[] = {
        { "chan-db", required_argument, NULL, OPT_CHAN_DB },
        { "socket-dir", required_argument, NULL, OPT_SOCKET_DIR },
        { "socket-name", required_argument, NULL, OPT_SOCKET_NAME },
        { "chassis", required_argument, NULL, OPT_CHASSIS },
        { "host-ctl", required_argument, NULL, OPT_HOST_CTL },
        { "ctl", required_argument, NULL, OPT_CTL },
        { "call-timeout", required_argument, NULL, OPT_CALL_TIMEOUT },
        { "exec-timeout", required_argument, NULL, OPT_EXEC_TIMEOUT },
        { "file-timeout", required_argument, NULL, OPT_FILE_TIMEOUT },
        { "max-request", required_argument, NULL, OPT_MAX_REQUEST },
        { "max-file-read", required_argument, NULL, OPT_MAX_FILE_READ },
        { "max-file-write", required_argument, NULL, OPT_MAX_FILE_WRITE },
        { "private-key", required_argument, NULL, OPT_PRIVATE_KEY },
        { "certificate", required_argument, NULL, OPT_CERTIFICATE },
        { "ca-cert", required_argument, NULL, OPT_CA_CERT },
        DAEMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    struct qga_options opts = {
        .chan_db = DEFAULT_CHAN_DB,
        .socket_dir = CHAND_RUNDIR "/qga",
        .socket_name = "vm",
        .host_ctl = CHAND_RUNDIR "/chand-host.ctl",
        .ctl = CHAND_RUNDIR "/chand-qga.ctl",
        .call_timeout_ms = 30000,
        .exec_timeout_ms = 3600 * 1000,
        .file_timeout_ms = 600 * 1000,
        .max_request = 96 << 20,
        .max_file_read = 256 << 20,
        .max_file_write = 64 << 20,
    };
    struct daemon_options dopts = DAEMON_OPTIONS_INIT("chand-qga", usage);
    int c, status;

    vlog_init("chand-qga");
    while ((c = getopt_long(argc, argv, DAEMON_SHORT_OPTIONS, long_options,
                            NULL)) != -1) {
        switch (c) {
        case OPT_CHAN_DB: opts.chan_db = optarg; break;
        case OPT_SOCKET_DIR: opts.socket_dir = optarg; break;
        case OPT_SOCKET_NAME: opts.socket_name = optarg; break;
        case OPT_CHASSIS: opts.chassis = optarg; break;
        case OPT_HOST_CTL: opts.host_ctl = optarg; break;
        case OPT_CTL: opts.ctl = optarg; break;
        case OPT_CALL_TIMEOUT:
            if (!parse_secs(optarg, &opts.call_timeout_ms)) {
                return bad_value("--call-timeout", optarg);
            }
            break;
        case OPT_EXEC_TIMEOUT:
            if (!parse_secs(optarg, &opts.exec_timeout_ms)) {
                return bad_value("--exec-timeout", optarg);
            }
            break;
        case OPT_FILE_TIMEOUT:
            if (!parse_secs(optarg, &opts.file_timeout_ms)) {
                return bad_value("--file-timeout", optarg);
            }
            break;
        case OPT_MAX_REQUEST:
            if (!parse_bytes(optarg, 1ull << 30, &opts.max_request)) {
                return bad_value("--max-request", optarg);
            }
            break;
        case OPT_MAX_FILE_READ:
            if (!parse_bytes(optarg, 1ull << 30, &opts.max_file_read)) {
                return bad_value("--max-file-read", optarg);
            }
            break;
        case OPT_MAX_FILE_WRITE:
            if (!parse_bytes(optarg, 1ull << 30, &opts.max_file_write)) {
                return bad_value("--max-file-write", optarg);
            }
            break;
        case OPT_PRIVATE_KEY: stream_ssl_set_private_key_file(optarg); break;
        case OPT_CERTIFICATE: stream_ssl_set_certificate_file(optarg); break;
        case OPT_CA_CERT: stream_ssl_set_ca_cert_file(optarg, false); break;
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
    return daemon_run(&qga_class, &opts, &dopts);
}
