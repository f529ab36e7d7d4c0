/* chand-guest-replay: applies a capture of a channel to a guest datastore,
 * offline, through chand-guest's own receiver.  Option parsing; the replay
 * itself is in guest-replay.c. */

#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "chan-endpoint.h"
#include "guest-replay.h"
#include "keyring.h"
#include "vlog.h"

static void
usage(void)
{
    printf("\
chand-guest-replay: offline replay of a chand channel capture\n\
usage: chand-guest-replay --db=FILE (--chan-id=N | --guest-ip=IP)\n\
                          [OPTIONS] CAPTURE\n\
\n\
Applies the host's frames in CAPTURE (pcap or pcapng, as tcpdump records\n\
it on the VM's NIC or on chand0) to the guest datastore --db through\n\
chand-guest's receiver, exactly as the daemon would, and prints a summary.\n\
No Open vSwitch, no sockets: nothing is sent.\n\
\n\
Channel (defaults derived from --chan-id, as in chand-guest):\n\
  --chan-id=N         the channel's id, 1..4294967295\n\
  --vid=VID           802.1Q vid of the channel, 1..4094 (default: 4094)\n\
  --guest-ip=IP       guest endpoint address (default: 169.254.X.Y from N;\n\
                      required without --chan-id)\n\
\n\
Datastore and keys:\n\
  --db=FILE           SQLite datastore to apply the capture to, created if\n\
                      missing (required: never the live one by default)\n\
  --key-file=FILE     channel keys, \"GENERATION HEXKEY\" lines (default:\n\
                      %s; missing: not authenticated)\n\
\n\
Other:\n\
  --log-file=FILE     also log to FILE\n\
  --vlog=SPEC         log levels, e.g. ANY:info or receiver:dbg\n\
  -v, --verbose       same as --vlog=ANY:dbg\n\
  -h, --help          show this help and exit\n\
  -V, --version       show the version and exit\n",
           KEYRING_DEFAULT_FILE);
}

/* Fills in 'ro->chan' from the channel options.  Without a chan-id, "1"
 * stands in for it: the guest IP is given, and nothing else derived from it
 * is used.  Returns false after printing an error. */
static bool
parse_channel(const char *chan_id, const char *vid, const char *guest_ip,
              struct replay_options *ro)
{
    enum chan_ep_error e;

    if (!chan_id && !guest_ip) {
        fprintf(stderr, "chand-guest-replay: --chan-id or --guest-ip is "
                "required (the channel whose frames to apply)\n");
        return false;
    }
    e = chan_config_from_strings(chan_id ? chan_id : "1", vid, guest_ip,
                                 NULL, &ro->chan);
    if (e) {
        fprintf(stderr, "chand-guest-replay: invalid %s: %s\n",
                chan_ep_error_option(e), chan_ep_strerror(e));
        return false;
    }
    if (!chan_id) {
        ro->chan.chan_id = 0;
    }
    return true;
}

int
main(int argc, char *argv[])
{
    enum { OPT_CHAN_ID = 256, OPT_VID, OPT_GUEST_IP, OPT_DB, OPT_KEY_FILE,
           OPT_LOG_FILE, OPT_VLOG };
    static const struct option long_options[] = {
        { "chan-id", required_argument, NULL, OPT_CHAN_ID },
        { "vid", required_argument, NULL, OPT_VID },
        { "guest-ip", required_argument, NULL, OPT_GUEST_IP },
        { "db", required_argument, NULL, OPT_DB },
        { "key-file", required_argument, NULL, OPT_KEY_FILE },
        { "log-file", required_argument, NULL, OPT_LOG_FILE },
        { "vlog", required_argument, NULL, OPT_VLOG },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct replay_options ro = { .key_file = KEYRING_DEFAULT_FILE };
    const char *chan_id = NULL, *vid = NULL, *guest_ip = NULL;
    const char *log_file = NULL;
    int c;

    vlog_init("chand-guest-replay");
    while ((c = getopt_long(argc, argv, "vhV", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_CHAN_ID: chan_id = optarg; break;
        case OPT_VID: vid = optarg; break;
        case OPT_GUEST_IP: guest_ip = optarg; break;
        case OPT_DB: ro.db = optarg; break;
        case OPT_KEY_FILE: ro.key_file = optarg; break;
        case OPT_LOG_FILE: log_file = optarg; break;
        case OPT_VLOG:
            if (vlog_set_levels_from_string(optarg)) {
                fprintf(stderr, "chand-guest-replay: bad --vlog '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'v': vlog_set_levels_from_string("ANY:dbg"); break;
        case 'h': usage(); return 0;
        case 'V':
            printf("chand-guest-replay %s\n", PACKAGE_VERSION);
            return 0;
        default:
            fprintf(stderr, "Try 'chand-guest-replay --help'.\n");
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "chand-guest-replay: %s (the capture to apply)\n",
                optind < argc ? "one CAPTURE argument only"
                              : "CAPTURE is required");
        return 2;
    }
    ro.pcap = argv[optind];
    if (!ro.db || !*ro.db) {
        fprintf(stderr, "chand-guest-replay: --db is required (the datastore "
                "to apply the capture to; never the live one by default)\n");
        return 2;
    }
    if (!*ro.key_file) {
        fprintf(stderr, "chand-guest-replay: --key-file may not be empty\n");
        return 2;
    }
    if (!parse_channel(chan_id, vid, guest_ip, &ro)) {
        return 2;
    }
    if (log_file && vlog_set_log_file(log_file)) {
        fprintf(stderr, "chand-guest-replay: cannot open log file %s\n",
                log_file);
        return 1;
    }
    return replay_run(&ro, stdout) ? 1 : 0;
}
