/* Copyright (c) 2026 The chand authors.
 *
 * replay-feed: replays a case's input pcaps into a running ovs-vswitchd and
 * captures what the bridge hands to chand-host.
 *
 * Usage:
 *   replay-feed --mgmt=SOCKET --unixctl=SOCKET --out=DIR
 *               [--ofport=NAME=NUMBER]... [--controller-id=ID]
 *               [--port=SOCKET [--port-ready=PROGRAM]
 *                [--unmarked-packet-out]]
 *               [--dpdk-start=DIR] [--timeout=SECONDS] IN.pcap...
 *
 * It opens one OpenFlow 1.3 service connection on the bridge's mgmt socket
 * and sets it up as chand-host does (HELLO, NXT_SET_CONTROLLER_ID 17224,
 * SET_ASYNC enabling PACKET_IN for reason "action"), then takes the packets
 * of all IN.pcap files in timestamp order:
 *
 *   - in-controller-M.pcap: each frame is sent as a PACKET_OUT with
 *     in_port=CONTROLLER and actions set_field:M->pkt_mark,output:TABLE
 *     (lib/ofp13's encoder, the one chand-host uses), followed by a barrier;
 *
 *   - in-PORT.pcap: each frame is handed to dummy port PORT with
 *     "netdev-dummy/receive PORT HEX" over the unixctl socket, and the tool
 *     waits until the datapath has processed it (the "packets received"
 *     counters of dpif-netdev/pmd-stats-show), so every packet sees the
 *     effects of the ones before it (MAC learning) and outputs keep the
 *     scenario's order.  Consecutive frames of one file with the same
 *     timestamp go in one command, so the datapath takes them as one batch
 *     (for meters); a gap of more than 1 ms between timestamps is waited
 *     out (the scenario's @wait);
 *
 *   - with --dpdk-start=DIR, PORT is an OVS-DPDK net_pcap port: at the
 *     first packet of in-PORT.pcap the tool runs the executable DIR/start-PORT
 *     (written by test/replay/run: it points the port's rx_pcap at this
 *     very file, which makes the PMD replay all of it), then waits until the
 *     datapath has received all of the file's packets.  Each port's packets
 *     thus keep their order, but not their order relative to other ports.
 *
 * Every PACKET_IN received on the connection is written, in arrival order,
 * to DIR/out-controller.pcap, with its metadata ("in_port=vnic1 pkt_mark=7
 * reason=action table=0") in DIR/out-controller.meta.  Ports are named with
 * the --ofport map.  A datapath upcall failure, an OpenFlow error or a
 * timeout is fatal (exit status 1).
 *
 * With --port=SOCKET, chand-host meets the bridge through a port of type
 * chand instead (Open vSwitch with ovs-patches/, doc/ovs-port.md), as
 * chand-host does when ovs-vswitchd supports it:
 *
 *   - in-controller-M.pcap: each frame is sent with pkt_mark M (0: none)
 *     through the port's socket SOCKET with lib/chan-port (chand-host's own
 *     code), and the tool waits until the datapath has received it, as for a
 *     dummy port;
 *
 *   - with --unmarked-packet-out, the frames of in-controller-0.pcap stand
 *     for other controllers' PACKET_OUTs, which never use chand's port, and
 *     still go as PACKET_OUT;
 *
 *   - the frames ovs-vswitchd outputs to the port go, in arrival order, to
 *     DIR/out-controller.pcap, each with "pkt_mark=M" in
 *     DIR/out-controller.meta (the port carries nothing else);
 *
 *   - PACKET_INs, which the flows must no longer send, go to
 *     DIR/out-packet-in.pcap (and .meta) for the caller to check.
 *
 * The tool connects to SOCKET before anything else and then runs PROGRAM
 * (--port-ready), which must return once ovs-vswitchd has accepted the
 * connection: until then, frames output to the port are dropped.  At the end
 * it prints what went through each path.  A malformed datagram from the port,
 * a frame this side could not send or a lost connection is fatal.
 */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan-port.h"
#include "jsonrpc.h"
#include "ofp13.h"
#include "replay-pcap.h"
#include "stream.h"
#include "util.h"

#define CHAND_CONTROLLER_ID 17224
#define MAX_PORTS 64

static void __attribute__((format(printf, 1, 2), noreturn))
fatal(const char *format, ...)
{
    va_list args;

    fprintf(stderr, "replay-feed: ");
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}

static double timeout_s = 10.0;

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --ofport map. */
static struct {
    char *name;
    uint32_t ofport;
} ports[MAX_PORTS];
static size_t n_ports;

static const char *
port_name(uint32_t ofport, char buf[16])
{
    for (size_t i = 0; i < n_ports; i++) {
        if (ports[i].ofport == ofport) {
            return ports[i].name;
        }
    }
    switch (ofport) {
    case OFP13_PORT_CONTROLLER: return "CONTROLLER";
    case OFP13_PORT_LOCAL: return "LOCAL";
    default:
        snprintf(buf, 16, "%"PRIu32, ofport);
        return buf;
    }
}

/* The OpenFlow connection. */
struct ofconn {
    int fd;
    uint8_t *buf;
    size_t len, cap;
    uint32_t next_xid;
    struct replay_pcap pins;    /* PACKET_INs received. */
    size_t n_packet_outs;       /* PACKET_OUTs sent. */
};

static void
of_send(struct ofconn *c, const void *msg, size_t len)
{
    const uint8_t *p = msg;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            fatal("OpenFlow send: %s", strerror(errno));
        }
        p += n;
        len -= n;
    }
}

/* Receives one message into a malloc()ed buffer (caller frees) and stores
 * its length in '*lenp'; returns NULL if nothing complete arrived before
 * 'deadline'. */
static uint8_t *
of_recv(struct ofconn *c, double deadline, size_t *lenp)
{
    bool polled = false;

    for (;;) {
        size_t msg_len;
        int error = ofp13_frame(c->buf, c->len, 0, &msg_len);
        if (!error) {
            uint8_t *msg = memcpy(xmalloc(msg_len), c->buf, msg_len);
            memmove(c->buf, c->buf + msg_len, c->len - msg_len);
            c->len -= msg_len;
            *lenp = msg_len;
            return msg;
        } else if (error != OFP13_E_INCOMPLETE) {
            fatal("OpenFlow stream: %s", ofp13_strerror(error));
        }

        double left = deadline - now();
        if (left <= 0 && polled) {
            return NULL;
        }
        polled = true;
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        int retval = poll(&pfd, 1, left > 0 ? (int) (left * 1000) + 1 : 0);
        if (retval < 0 && errno != EINTR) {
            fatal("poll: %s", strerror(errno));
        } else if (retval <= 0) {
            continue;
        }
        if (c->cap - c->len < 65536) {
            c->cap = c->len + 65536 * 2;
            c->buf = xrealloc(c->buf, c->cap);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n == 0) {
            fatal("OpenFlow connection closed by ovs-vswitchd");
        } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
            fatal("OpenFlow recv: %s", strerror(errno));
        } else if (n > 0) {
            c->len += n;
        }
    }
}

/* Handles a message that is not the one being waited for: records
 * PACKET_INs, answers echo requests, dies on errors. */
static void
of_handle(struct ofconn *c, const uint8_t *msg, size_t len)
{
    struct ofp13_header h;
    uint8_t reply[256];
    size_t reply_len;

    ofp13_decode_header(msg, len, &h);
    switch (h.type) {
    case OFP13_PACKET_IN: {
        struct ofp13_packet_in pin;
        char meta[160], mark[24], buf[16];
        int error = ofp13_decode_packet_in(msg, len, &pin);
        if (error) {
            fatal("bad PACKET_IN: %s", ofp13_strerror(error));
        }
        if (pin.total_len != pin.data_len) {
            fatal("PACKET_IN truncated (%zu of %u bytes)", pin.data_len,
                  pin.total_len);
        }
        if (pin.has_pkt_mark) {
            snprintf(mark, sizeof mark, "%"PRIu32, pin.pkt_mark);
        } else {
            snprintf(mark, sizeof mark, "none");
        }
        snprintf(meta, sizeof meta, "in_port=%s pkt_mark=%s reason=%s "
                 "table=%u",
                 pin.has_in_port ? port_name(pin.in_port, buf) : "none",
                 mark,
                 pin.reason == OFP13_R_ACTION ? "action"
                 : pin.reason == OFP13_R_NO_MATCH ? "no_match" : "other",
                 pin.table_id);
        replay_pcap_add(&c->pins, pin.data, pin.data_len, NULL, meta);
        break;
    }
    case OFP13_ECHO_REQUEST: {
        struct ofp13_echo echo;
        if (!ofp13_decode_echo(msg, len, &echo)
            && !ofp13_encode_echo_reply(reply, sizeof reply, &reply_len,
                                        echo.xid, echo.data,
                                        echo.data_len <= 128
                                        ? echo.data_len : 0)) {
            of_send(c, reply, reply_len);
        }
        break;
    }
    case OFP13_ERROR: {
        struct ofp13_error_msg err;
        if (ofp13_decode_error(msg, len, &err)) {
            fatal("malformed OpenFlow error");
        }
        fatal("OpenFlow error from the switch: %s (xid %"PRIu32")",
              ofp13_error_string(err.type, err.code), err.xid);
    }
    case OFP13_EXPERIMENTER: {
        uint32_t exp, subtype;
        if (!ofp13_decode_experimenter(msg, len, &exp, &subtype)
            && exp == OFP13_NX_VENDOR_ID
            && (subtype == OFP13_NXT_PACKET_IN
                || subtype == OFP13_NXT_PACKET_IN2)) {
            fatal("got a Nicira PACKET_IN; expected the OpenFlow 1.3 one");
        }
        break;
    }
    default:
        break;          /* PORT_STATUS and such: not ours. */
    }
}

/* Waits for a message of 'type' with 'xid', handling others meanwhile. */
static void
of_wait_for(struct ofconn *c, uint8_t type, uint32_t xid, const char *what)
{
    double deadline = now() + timeout_s;
    for (;;) {
        size_t len;
        uint8_t *msg = of_recv(c, deadline, &len);
        struct ofp13_header h;

        if (!msg) {
            fatal("timeout waiting for %s", what);
        }
        ofp13_decode_header(msg, len, &h);
        if (h.type == type && h.xid == xid) {
            free(msg);
            return;
        }
        of_handle(c, msg, len);
        free(msg);
    }
}

static void
of_barrier(struct ofconn *c)
{
    uint8_t msg[OFP13_HEADER_LEN];
    size_t len;
    uint32_t xid = c->next_xid++;

    ofp13_encode_simple(msg, sizeof msg, &len, OFP13_BARRIER_REQUEST, xid);
    of_send(c, msg, len);
    of_wait_for(c, OFP13_BARRIER_REPLY, xid, "a barrier reply");
}

/* Handles whatever has already arrived, without waiting. */
static void
of_drain(struct ofconn *c)
{
    size_t len;
    uint8_t *msg;

    while ((msg = of_recv(c, 0, &len))) {
        of_handle(c, msg, len);
        free(msg);
    }
}

static void
of_connect(struct ofconn *c, const char *path)
{
    struct sockaddr_un sun;
    uint8_t msg[64];
    size_t len;
    int error;

    memset(c, 0, sizeof *c);
    c->next_xid = 1;
    replay_pcap_init(&c->pins);
    if (strlen(path) >= sizeof sun.sun_path) {
        fatal("%s: socket path too long", path);
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &sun, sizeof sun)) {
        fatal("%s: %s", path, strerror(errno));
    }

    ofp13_encode_hello(msg, sizeof msg, &len, c->next_xid++);
    of_send(c, msg, len);
    uint8_t *hello = of_recv(c, now() + timeout_s, &len);
    uint32_t versions;
    if (!hello) {
        fatal("%s: no HELLO", path);
    }
    error = ofp13_decode_hello(hello, len, &versions);
    free(hello);
    if (error) {
        fatal("%s: HELLO: %s", path, ofp13_strerror(error));
    }

    ofp13_encode_set_controller_id(msg, sizeof msg, &len, c->next_xid++,
                                   CHAND_CONTROLLER_ID);
    of_send(c, msg, len);

    struct ofp13_async_config ac;
    ofp13_async_config_chand(&ac, false);
    ofp13_encode_set_async(msg, sizeof msg, &len, c->next_xid++, &ac);
    of_send(c, msg, len);
    of_barrier(c);
}

static void
of_packet_out(struct ofconn *c, uint32_t mark, const uint8_t *frame,
              size_t frame_len)
{
    size_t size = ofp13_packet_out_size(frame_len), len;
    uint8_t *msg = xmalloc(size);
    int error = ofp13_encode_packet_out(msg, size, &len, c->next_xid++,
                                        OFP13_PORT_CONTROLLER, mark, frame,
                                        frame_len);
    if (error) {
        fatal("cannot encode PACKET_OUT: %s", ofp13_strerror(error));
    }
    of_send(c, msg, len);
    free(msg);
    c->n_packet_outs++;
    of_barrier(c);
}

/* The chand port (--port): chand-host's end of it.  'chand_port' is owned
 * here (NULL without --port); 'port_frames' holds the frames received from
 * it, with their marks as metadata. */
static struct chan_port *chand_port;
static struct replay_pcap port_frames = REPLAY_PCAP_INITIALIZER;
static size_t n_port_sent;      /* Frames sent through the port. */

/* Receives every frame waiting on the chand port, if any, into
 * 'port_frames'. */
static void
port_drain(void)
{
    struct chan_port_frame frames[CHAN_PORT_BATCH];
    size_t n;
    int error;

    if (!chand_port) {
        return;
    }
    while (!(error = chan_port_recv_batch(chand_port, frames,
                                          CHAN_PORT_BATCH, &n))) {
        for (size_t i = 0; i < n; i++) {
            char meta[32];

            snprintf(meta, sizeof meta, "pkt_mark=%"PRIu32,
                     frames[i].pkt_mark);
            replay_pcap_add(&port_frames, frames[i].data, frames[i].len,
                            NULL, meta);
        }
    }
    if (error != EAGAIN) {
        fatal("chand port %s: %s", chan_port_get_name(chand_port),
              strerror(error));
    }
}

/* unixctl (ovs-appctl) over JSON-RPC. */
static struct jsonrpc *unixctl;

static void
unixctl_connect(const char *path)
{
    char *name = xasprintf("unix:%s", path);
    struct stream *stream;
    int error = stream_open_block(name, &stream);
    if (error) {
        fatal("%s: %s", path, strerror(error));
    }
    unixctl = jsonrpc_open(stream);
    free(name);
}

/* Runs unixctl command 'method' with 'params' (stolen) and returns its
 * result text (malloc()ed, caller frees). */
static char *
unixctl_call(const char *method, json_t *params)
{
    json_t *request = jsonrpc_create_request(method, params, NULL);
    json_t *reply;
    int error = jsonrpc_transact_block(unixctl, request, &reply);
    if (error) {
        fatal("unixctl %s: %s", method, strerror(error));
    }
    json_t *err = jsonrpc_msg_error(reply);
    if (err && !json_is_null(err)) {
        fatal("%s: %s", method,
              json_is_string(err) ? json_string_value(err) : "error");
    }
    json_t *result = jsonrpc_msg_result(reply);
    char *text = xstrdup(json_is_string(result)
                         ? json_string_value(result) : "");
    json_decref(reply);
    return text;
}

/* Sums every "LABEL: N" line of dpif-netdev/pmd-stats-show. */
static unsigned long long
stat_sum(const char *text, const char *label)
{
    unsigned long long total = 0;
    for (const char *p = strstr(text, label); p; p = strstr(p + 1, label)) {
        total += strtoull(p + strlen(label), NULL, 10);
    }
    return total;
}

static void
datapath_counts(unsigned long long *received, unsigned long long *failed)
{
    char *text = unixctl_call("dpif-netdev/pmd-stats-show",
                              json_array());
    *received = stat_sum(text, "packets received:");
    *failed = stat_sum(text, "miss with failed upcall:");
    free(text);
}

/* Waits until the datapath has received 'target' packets in all. */
static void
wait_received(unsigned long long target, struct ofconn *c)
{
    double deadline = now() + timeout_s;
    unsigned long long received, failed;
    useconds_t pause = 200;

    for (;;) {
        datapath_counts(&received, &failed);
        if (failed) {
            fatal("the datapath failed %llu upcall(s): packets were lost "
                  "(see ovs-vswitchd.log)", failed);
        }
        if (received >= target) {
            return;
        }
        if (now() > deadline) {
            fatal("timeout: the datapath received %llu of %llu packets",
                  received, target);
        }
        of_drain(c);
        port_drain();
        usleep(pause);
        pause = pause < 20000 ? pause * 2 : pause;
    }
}

static char *
hex(const uint8_t *data, size_t len)
{
    char *s = xmalloc(2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        sprintf(s + 2 * i, "%02x", data[i]);
    }
    return s;
}

/* Runs 'program' with argument-less argv and waits for it. */
static void
run_program(const char *program)
{
    char *argv[] = { (char *) program, NULL };
    pid_t pid = fork();
    if (pid < 0) {
        fatal("fork: %s", strerror(errno));
    } else if (!pid) {
        execv(argv[0], argv);
        fprintf(stderr, "%s: %s\n", program, strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        continue;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fatal("%s failed", program);
    }
}

/* Connects to the chand port's socket 'path', then runs 'ready' (if
 * nonnull), which returns once ovs-vswitchd has accepted the connection. */
static void
port_connect(const char *path, const char *ready)
{
    double deadline = now() + timeout_s;

    chand_port = chan_port_create(path, NULL, NULL);
    for (;;) {
        chan_port_run(chand_port);
        if (chan_port_is_connected(chand_port)) {
            break;
        } else if (now() > deadline) {
            fatal("%s: cannot connect to the chand port", path);
        }
        usleep(10000);
    }
    if (ready) {
        run_program(ready);
    }
}

/* Sends the 'len'-byte 'frame' marked 'mark' through the chand port. */
static void
port_send(uint32_t mark, const uint8_t *frame, size_t len)
{
    double deadline = now() + timeout_s;
    int error;

    error = chan_port_send(chand_port, mark, frame, len);
    if (error) {
        fatal("chand port: cannot send a %zu-byte frame: %s", len,
              strerror(error));
    }
    while ((error = chan_port_flush(chand_port)) == EAGAIN) {
        if (now() > deadline) {
            fatal("chand port: timeout sending a frame");
        }
        port_drain();
        usleep(1000);
    }
    if (error) {
        fatal("chand port: %s", strerror(error));
    }
    n_port_sent++;
}

/* Checks the port's counters at the end of the replay and closes it. */
static void
port_finish(void)
{
    struct chan_port_stats stats;

    chan_port_get_stats(chand_port, &stats);
    if (stats.rx_bad) {
        fatal("chand port: %"PRIu64" malformed datagram(s) from "
              "ovs-vswitchd", stats.rx_bad);
    }
    if (stats.tx_dropped || stats.tx_discarded || stats.tx_errors
        || stats.disconnects) {
        fatal("chand port: frames lost on the way to ovs-vswitchd "
              "(%"PRIu64" dropped, %"PRIu64" discarded, %"PRIu64" errors, "
              "%"PRIu64" disconnections)", stats.tx_dropped,
              stats.tx_discarded, stats.tx_errors, stats.disconnects);
    }
    chan_port_destroy(chand_port);
    chand_port = NULL;
}

/* One input file. */
struct input {
    char *port;                 /* NULL for controller. */
    uint32_t mark;
    struct replay_pcap pcap;
    bool started;               /* DPDK mode: rx_pcap set. */
};

/* One packet to feed, in order. */
struct step {
    struct input *input;
    const struct replay_pkt *pkt;
};

static int
compare_steps(const void *a_, const void *b_)
{
    const struct step *a = a_, *b = b_;
    if (a->pkt->ts.tv_sec != b->pkt->ts.tv_sec) {
        return a->pkt->ts.tv_sec < b->pkt->ts.tv_sec ? -1 : 1;
    }
    if (a->pkt->ts.tv_usec != b->pkt->ts.tv_usec) {
        return a->pkt->ts.tv_usec < b->pkt->ts.tv_usec ? -1 : 1;
    }
    if (a->input == b->input) {
        /* Same file: keep the file's order (its packets are an array). */
        return a->pkt < b->pkt ? -1 : a->pkt > b->pkt;
    }
    return 0;
}

/* Writes 'pcap' to DIR/'name' (and its .meta). */
static void
write_capture(const char *dir, const char *name,
              const struct replay_pcap *pcap)
{
    char *path = xasprintf("%s/%s", dir, name);
    char *err;

    if (replay_pcap_write(path, pcap, false, &err)) {
        fatal("%s", err);
    }
    free(path);
}

static long long
ts_us(const struct replay_pkt *pkt)
{
    return pkt->ts.tv_sec * 1000000LL + pkt->ts.tv_usec;
}

static void
parse_input_name(const char *path, struct input *in)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t len = strlen(base);
    unsigned long long mark;
    char *end;

    if (len < 9 || strncmp(base, "in-", 3)
        || strcmp(base + len - 5, ".pcap")) {
        fatal("%s: input files are named in-PORT.pcap or "
              "in-controller-MARK.pcap", path);
    }
    if (!strncmp(base, "in-controller-", 14)) {
        errno = 0;
        mark = strtoull(base + 14, &end, 10);
        if (errno || end != base + len - 5 || mark > UINT32_MAX
            || end == base + 14) {
            fatal("%s: bad pkt_mark in the file name", path);
        }
        in->port = NULL;
        in->mark = mark;
    } else {
        in->port = xasprintf("%.*s", (int) (len - 8), base + 3);
        in->mark = 0;
    }
}

int
main(int argc, char *argv[])
{
    static const struct option long_options[] = {
        { "mgmt", required_argument, NULL, 'm' },
        { "unixctl", required_argument, NULL, 'u' },
        { "out", required_argument, NULL, 'o' },
        { "ofport", required_argument, NULL, 'p' },
        { "port", required_argument, NULL, 'P' },
        { "port-ready", required_argument, NULL, 'r' },
        { "unmarked-packet-out", no_argument, NULL, 'U' },
        { "dpdk-start", required_argument, NULL, 'd' },
        { "timeout", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    const char *mgmt = NULL, *unixctl_path = NULL, *out = NULL;
    const char *dpdk_start = NULL, *port_path = NULL, *port_ready = NULL;
    bool unmarked_packet_out = false;
    int c;

    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': mgmt = optarg; break;
        case 'u': unixctl_path = optarg; break;
        case 'o': out = optarg; break;
        case 'd': dpdk_start = optarg; break;
        case 'P': port_path = optarg; break;
        case 'r': port_ready = optarg; break;
        case 'U': unmarked_packet_out = true; break;
        case 't': timeout_s = atof(optarg); break;
        case 'p': {
            char *eq = strchr(optarg, '=');
            if (!eq || n_ports >= MAX_PORTS) {
                fatal("--ofport=NAME=NUMBER");
            }
            ports[n_ports].name = xasprintf("%.*s",
                                            (int) (eq - optarg),
                                            optarg);
            ports[n_ports++].ofport = strtoul(eq + 1, NULL, 10);
            break;
        }
        default:
            fprintf(stderr, "usage: replay-feed --mgmt=SOCKET "
                    "--unixctl=SOCKET --out=DIR [--ofport=NAME=N]... "
                    "[--port=SOCKET [--port-ready=PROGRAM] "
                    "[--unmarked-packet-out]] "
                    "[--dpdk-start=DIR] [--timeout=S] IN.pcap...\n");
            return 2;
        }
    }
    if (!mgmt || !unixctl_path || !out || optind >= argc) {
        fatal("--mgmt, --unixctl, --out and at least one input are "
              "required");
    }
    if ((port_ready || unmarked_packet_out) && !port_path) {
        fatal("--port-ready and --unmarked-packet-out need --port");
    }

    /* Load inputs and order their packets. */
    size_t n_inputs = argc - optind, n_steps = 0;
    struct input *inputs = xcalloc(n_inputs, sizeof *inputs);
    for (size_t i = 0; i < n_inputs; i++) {
        char *err;
        parse_input_name(argv[optind + i], &inputs[i]);
        if (replay_pcap_read(argv[optind + i], false, &inputs[i].pcap,
                             &err)) {
            fatal("%s", err);
        }
        n_steps += inputs[i].pcap.n;
    }
    struct step *steps = xmalloc(n_steps * sizeof *steps);
    n_steps = 0;
    for (size_t i = 0; i < n_inputs; i++) {
        for (size_t j = 0; j < inputs[i].pcap.n; j++) {
            steps[n_steps].input = &inputs[i];
            steps[n_steps++].pkt = &inputs[i].pcap.pkts[j];
        }
    }
    qsort(steps, n_steps, sizeof *steps, compare_steps);
    for (size_t i = 1; i < n_steps; i++) {
        if (ts_us(steps[i - 1].pkt) == ts_us(steps[i].pkt)
            && (steps[i - 1].input != steps[i].input
                || !steps[i].input->port)) {
            fatal("input packets in different files (or PACKET_OUTs) have "
                  "the same timestamp %ld.%06ld: the order is ambiguous",
                  (long) steps[i].pkt->ts.tv_sec,
                  (long) steps[i].pkt->ts.tv_usec);
        }
    }

    signal(SIGPIPE, SIG_IGN);
    if (port_path) {
        port_connect(port_path, port_ready);
    }
    struct ofconn conn;
    of_connect(&conn, mgmt);
    unixctl_connect(unixctl_path);

    unsigned long long received, failed;
    datapath_counts(&received, &failed);
    for (size_t i = 0, n; i < n_steps; i += n) {
        struct input *in = steps[i].input;
        const struct replay_pkt *pkt = steps[i].pkt;

        /* Packets of one port with the same timestamp form a batch. */
        for (n = 1; i + n < n_steps && steps[i + n].input == in && in->port
             && ts_us(steps[i + n].pkt) == ts_us(pkt); n++) {
            continue;
        }
        /* Reproduce the scenario's pauses (@wait). */
        long long gap = i ? ts_us(pkt) - ts_us(steps[i - 1].pkt) : 0;
        if (gap > 1000) {
            struct timespec ts = { .tv_sec = gap / 1000000,
                                   .tv_nsec = gap % 1000000 * 1000 };
            while (nanosleep(&ts, &ts) && errno == EINTR) {
                continue;
            }
        }

        if (!in->port && chand_port && (in->mark || !unmarked_packet_out)) {
            port_send(in->mark, pkt->data, pkt->len);
            received++;
            wait_received(received, &conn);
        } else if (!in->port) {
            of_packet_out(&conn, in->mark, pkt->data, pkt->len);
        } else if (dpdk_start) {
            if (!in->started) {
                char *program = xasprintf("%s/start-%s", dpdk_start,
                                          in->port);
                in->started = true;
                run_program(program);
                free(program);
                received += in->pcap.n;
                wait_received(received, &conn);
            }
        } else {
            json_t *params = json_array();
            json_array_append_new(params, json_string(in->port));
            for (size_t j = 0; j < n; j++) {
                const struct replay_pkt *p = steps[i + j].pkt;
                char *h = hex(p->data, p->len);
                json_array_append_new(params, json_string(h));
                free(h);
            }
            free(unixctl_call("netdev-dummy/receive", params));
            received += n;
            wait_received(received, &conn);
        }
        of_drain(&conn);
        port_drain();
    }
    /* Every PACKET_IN caused by the packets above has been queued to the
     * connection before the datapath counters said they were processed;
     * two barriers make sure they were all sent and read.  Frames output to
     * the chand port were in its socket by then too. */
    of_barrier(&conn);
    of_barrier(&conn);
    port_drain();

    if (chand_port) {
        port_finish();
        write_capture(out, "out-controller.pcap", &port_frames);
        write_capture(out, "out-packet-in.pcap", &conn.pins);
        printf("replay-feed: chand port: %zu frame(s) sent, %zu received; "
               "OpenFlow: %zu PACKET_OUT(s) sent, %zu PACKET_IN(s) "
               "received\n", n_port_sent, port_frames.n, conn.n_packet_outs,
               conn.pins.n);
        replay_pcap_destroy(&port_frames);
    } else {
        write_capture(out, "out-controller.pcap", &conn.pins);
    }

    replay_pcap_destroy(&conn.pins);
    free(conn.buf);
    close(conn.fd);
    jsonrpc_close(unixctl);
    for (size_t i = 0; i < n_inputs; i++) {
        free(inputs[i].port);
        replay_pcap_destroy(&inputs[i].pcap);
    }
    free(inputs);
    free(steps);
    for (size_t i = 0; i < n_ports; i++) {
        free(ports[i].name);
    }
    return 0;
}
