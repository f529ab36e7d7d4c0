/* Copyright (c) 2026 The chand authors.  See chand-bench.h.
 *
 * Packet-level roles: inject (PACKET_OUT), blast (UDP socket), count (UDP
 * socket), capture (AF_PACKET, DATA frame to ACK). */

#include <config.h>
#include "chand-bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan-endpoint.h"
#include "chan-wire.h"
#include "ofp13.h"
#include "packets.h"
#include "stream.h"
#include "util.h"

/* Common options of the senders. */
struct send_opts {
    uint64_t count;
    double rate;                /* Packets per second, 0: unpaced. */
    uint64_t size;              /* UDP payload bytes. */
    uint32_t tag;
    const char *from;           /* blast: source address. */
};

enum {
    OPT_COUNT = 256, OPT_RATE, OPT_SIZE, OPT_TAG, OPT_FROM, OPT_DEV,
    OPT_EXPECT, OPT_IDLE, OPT_MAX_WAIT, OPT_READY, OPT_DURATION, OPT_LOG,
};

static void
parse_send_opts(int argc, char *argv[], struct send_opts *o, int nargs)
{
    static const struct option longopts[] = {
        {"count", required_argument, NULL, OPT_COUNT},
        {"rate", required_argument, NULL, OPT_RATE},
        {"size", required_argument, NULL, OPT_SIZE},
        {"tag", required_argument, NULL, OPT_TAG},
        {"from", required_argument, NULL, OPT_FROM},
        {NULL, 0, NULL, 0},
    };
    int c;
    memset(o, 0, sizeof *o);
    o->size = 128;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_COUNT: o->count = bench_arg_u64("--count", optarg); break;
        case OPT_RATE: o->rate = bench_arg_double("--rate", optarg); break;
        case OPT_SIZE: o->size = bench_arg_u64("--size", optarg); break;
        case OPT_TAG: o->tag = bench_arg_u64("--tag", optarg); break;
        case OPT_FROM: o->from = optarg; break;
        default: exit(2);
        }
    }
    if (argc - optind != nargs) {
        bench_fatal("%s: wrong number of arguments", argv[0]);
    }
    if (!o->count) {
        bench_fatal("%s: --count is required", argv[0]);
    }
    if (o->size < BENCH_HDR_LEN || o->size > 1472) {
        bench_fatal("%s: --size must be %d..1472", argv[0], BENCH_HDR_LEN);
    }
}

/* inject: an OpenFlow 1.3 service connection to a bridge's mgmt socket. */

struct ofc {
    struct stream *stream;
    int fd;
    uint8_t *tx;
    size_t tx_len, tx_ofs, tx_size;
    uint8_t rx[2 * OFP13_MAX_MSG_LEN];
    size_t rx_len;
    bool got_hello;
    bool got_barrier;
    uint64_t errors;
    char first_error[128];
};

static void
ofc_append(struct ofc *c, const void *msg, size_t len)
{
    if (c->tx_ofs && c->tx_len + len > c->tx_size) {
        memmove(c->tx, c->tx + c->tx_ofs, c->tx_len - c->tx_ofs);
        c->tx_len -= c->tx_ofs;
        c->tx_ofs = 0;
    }
    if (c->tx_len + len > c->tx_size) {
        bench_fatal("inject: transmit buffer overflow");
    }
    memcpy(c->tx + c->tx_len, msg, len);
    c->tx_len += len;
}

static void
ofc_flush(struct ofc *c)
{
    while (c->tx_ofs < c->tx_len) {
        ssize_t n = stream_send(c->stream, c->tx + c->tx_ofs,
                                c->tx_len - c->tx_ofs);
        if (n == -EAGAIN) {
            return;
        } else if (n < 0) {
            bench_fatal("inject: send: %s", strerror(-n));
        }
        c->tx_ofs += n;
    }
    c->tx_ofs = c->tx_len = 0;
}

static void
ofc_handle(struct ofc *c, const uint8_t *msg, size_t len, uint32_t barrier)
{
    struct ofp13_header h;
    uint8_t buf[OFP13_MAX_MSG_LEN];
    size_t n;
    ofp13_decode_header(msg, len, &h);
    switch (h.type) {
    case OFP13_HELLO:
        c->got_hello = true;
        break;
    case OFP13_ECHO_REQUEST: {
        struct ofp13_echo e;
        if (!ofp13_decode_echo(msg, len, &e)
            && !ofp13_encode_echo_reply(buf, sizeof buf, &n, e.xid, e.data,
                                        e.data_len)) {
            ofc_append(c, buf, n);
        }
        break;
    }
    case OFP13_ERROR: {
        struct ofp13_error_msg e;
        c->errors++;
        if (!c->first_error[0] && !ofp13_decode_error(msg, len, &e)) {
            snprintf(c->first_error, sizeof c->first_error, "%s",
                     ofp13_error_string(e.type, e.code));
        }
        break;
    }
    case OFP13_BARRIER_REPLY:
        if (h.xid == barrier) {
            c->got_barrier = true;
        }
        break;
    default:
        break;
    }
}

static void
ofc_receive(struct ofc *c, uint32_t barrier)
{
    for (;;) {
        ssize_t n = stream_recv(c->stream, c->rx + c->rx_len,
                                sizeof c->rx - c->rx_len);
        if (n == -EAGAIN) {
            return;
        } else if (n <= 0) {
            bench_fatal("inject: connection closed by the switch (%s)",
                        n ? strerror(-n) : "EOF");
        }
        c->rx_len += n;
        size_t ofs = 0, msg_len;
        while (!ofp13_frame(c->rx + ofs, c->rx_len - ofs, 0, &msg_len)) {
            ofc_handle(c, c->rx + ofs, msg_len, barrier);
            ofs += msg_len;
        }
        memmove(c->rx, c->rx + ofs, c->rx_len - ofs);
        c->rx_len -= ofs;
    }
}

static void
ofc_wait(struct ofc *c, int timeout_ms)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    if (c->tx_ofs < c->tx_len) {
        pfd.events |= POLLOUT;
    }
    poll(&pfd, 1, timeout_ms);
}

int
bench_cmd_inject(int argc, char *argv[])
{
    struct send_opts o;
    parse_send_opts(argc, argv, &o, 2);
    const char *mgmt = argv[optind];
    uint64_t id = bench_arg_u64("CHAN-ID", argv[optind + 1]);
    if (!id || id > UINT32_MAX) {
        bench_fatal("inject: bad chan-id");
    }

    char *name = NULL;
    if (asprintf(&name, "%s%s", strncmp(mgmt, "unix:", 5) ? "unix:" : "",
                 mgmt) < 0) {
        abort();
    }
    struct ofc c;
    memset(&c, 0, sizeof c);
    int error = stream_open_block(name, &c.stream);
    if (error) {
        bench_fatal("inject: %s: %s", name, strerror(error));
    }
    c.fd = stream_get_fd(c.stream);
    c.tx_size = 4 * 1024 * 1024;
    c.tx = malloc(c.tx_size);

    uint8_t msg[OFP13_MAX_MSG_LEN];
    size_t n;
    ofp13_encode_hello(msg, sizeof msg, &n, 1);
    ofc_append(&c, msg, n);
    int64_t deadline = bench_now() + 5000000000LL;
    while (!c.got_hello) {
        ofc_flush(&c);
        ofc_receive(&c, 0);
        if (bench_now() > deadline) {
            bench_fatal("inject: no HELLO from the switch");
        }
        if (!c.got_hello) {
            ofc_wait(&c, 100);
        }
    }

    struct chan_config cfg;
    chan_config_default(id, &cfg);
    uint8_t payload[1472], frame[1600];
    struct pkt_udp pkt = {
        .eth_src = cfg.host.mac, .eth_dst = cfg.guest.mac,
        .ip_src = cfg.host.ip, .ip_dst = cfg.guest.ip,
        .ttl = 64, .udp_src = cfg.host.port, .udp_dst = cfg.guest.port,
        .payload = payload, .payload_len = o.size,
    };

    struct bench_pacer pacer = { .start = bench_now(), .rate = o.rate };
    uint64_t sent = 0;
    uint32_t xid = 100;
    while (sent < o.count && !bench_stop) {
        int64_t now = bench_now();
        uint64_t due = bench_pacer_due(&pacer, now);
        while (sent < o.count && sent < due
               && c.tx_len - c.tx_ofs < c.tx_size / 2) {
            size_t frame_len;
            bench_payload(payload, o.size, o.tag, sent);
            pkt_udp_build(&pkt, frame, sizeof frame, &frame_len);
            ofp13_encode_packet_out(msg, sizeof msg, &n, xid++,
                                    OFP13_PORT_CONTROLLER, id, frame,
                                    frame_len);
            ofc_append(&c, msg, n);
            sent++;
            if (c.tx_len - c.tx_ofs >= 65536) {
                ofc_flush(&c);
            }
        }
        ofc_flush(&c);
        ofc_receive(&c, 0);
        if (sent >= o.count) {
            break;
        }
        if (c.tx_len - c.tx_ofs >= c.tx_size / 2) {
            ofc_wait(&c, 10);
        } else if (sent >= due) {
            bench_sleep_until(bench_pacer_time_of(&pacer, sent));
        }
    }
    int64_t t_sent = bench_now();

    uint32_t barrier = 0xbe4c0001;
    ofp13_encode_simple(msg, sizeof msg, &n, OFP13_BARRIER_REQUEST, barrier);
    ofc_append(&c, msg, n);
    deadline = bench_now() + 60000000000LL;
    while (!c.got_barrier && !bench_stop) {
        ofc_flush(&c);
        ofc_receive(&c, barrier);
        if (bench_now() > deadline) {
            bench_fatal("inject: no BARRIER_REPLY");
        }
        if (!c.got_barrier) {
            ofc_wait(&c, 100);
        }
    }
    int64_t t_barrier = bench_now();
    stream_close(c.stream);
    free(c.tx);
    free(name);

    bench_print_json(json_pack(
        "{sI sI sI sI sI sf sI ss}",
        "sent", (json_int_t) sent,
        "size", (json_int_t) o.size,
        "t_start", (json_int_t) pacer.start,
        "t_sent", (json_int_t) t_sent,
        "t_barrier", (json_int_t) t_barrier,
        "offered_pps", sent / ((t_sent - pacer.start) / 1e9 + 1e-9),
        "of_errors", (json_int_t) c.errors,
        "first_error", c.first_error));
    return 0;
}

/* blast: paced UDP from an ordinary socket. */

int
bench_cmd_blast(int argc, char *argv[])
{
    struct send_opts o;
    parse_send_opts(argc, argv, &o, 1);
    uint32_t ip;
    uint16_t port;
    if (!bench_parse_ipport(argv[optind], &ip, &port)) {
        bench_fatal("blast: bad address '%s'", argv[optind]);
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        bench_fatal("blast: socket: %s", strerror(errno));
    }
    int sndbuf = 8 * 1024 * 1024;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf)) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    if (o.from) {
        struct sockaddr_in src = { .sin_family = AF_INET };
        if (inet_pton(AF_INET, o.from, &src.sin_addr) != 1
            || bind(fd, (struct sockaddr *) &src, sizeof src)) {
            bench_fatal("blast: bind %s: %s", o.from, strerror(errno));
        }
    }
    struct sockaddr_in dst = { .sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(ip) };
    if (connect(fd, (struct sockaddr *) &dst, sizeof dst)) {
        bench_fatal("blast: connect: %s", strerror(errno));
    }

    enum { BATCH = 64 };
    static uint8_t bufs[BATCH][1472];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct bench_pacer pacer = { .start = bench_now(), .rate = o.rate };
    uint64_t sent = 0, errors = 0;
    while (sent < o.count && !bench_stop) {
        uint64_t due = bench_pacer_due(&pacer, bench_now());
        if (due > o.count) {
            due = o.count;
        }
        while (sent < due && !bench_stop) {
            size_t k = due - sent < BATCH ? due - sent : BATCH;
            for (size_t i = 0; i < k; i++) {
                bench_payload(bufs[i], o.size, o.tag, sent + i);
                iov[i].iov_base = bufs[i];
                iov[i].iov_len = o.size;
                memset(&msgs[i], 0, sizeof msgs[i]);
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            int r = sendmmsg(fd, msgs, k, 0);
            if (r <= 0) {
                errors++;
                r = k;          /* Counted as sent: the kernel dropped. */
            }
            sent += r;
        }
        if (sent < o.count) {
            bench_sleep_until(bench_pacer_time_of(&pacer, sent));
        }
    }
    int64_t t_sent = bench_now();
    close(fd);
    bench_print_json(json_pack(
        "{sI sI sI sI sf sI}",
        "sent", (json_int_t) sent,
        "size", (json_int_t) o.size,
        "t_start", (json_int_t) pacer.start,
        "t_sent", (json_int_t) t_sent,
        "offered_pps", sent / ((t_sent - pacer.start) / 1e9 + 1e-9),
        "send_errors", (json_int_t) errors));
    return 0;
}

/* count: the receiving end of inject and blast. */

int
bench_cmd_count(int argc, char *argv[])
{
    static const struct option longopts[] = {
        {"dev", required_argument, NULL, OPT_DEV},
        {"tag", required_argument, NULL, OPT_TAG},
        {"expect", required_argument, NULL, OPT_EXPECT},
        {"idle-ms", required_argument, NULL, OPT_IDLE},
        {"max-wait-ms", required_argument, NULL, OPT_MAX_WAIT},
        {"ready", required_argument, NULL, OPT_READY},
        {NULL, 0, NULL, 0},
    };
    const char *dev = NULL, *ready = NULL;
    uint64_t expect = 0, idle_ms = 500, max_wait_ms = 10000;
    uint32_t tag = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DEV: dev = optarg; break;
        case OPT_TAG: tag = bench_arg_u64("--tag", optarg); break;
        case OPT_EXPECT: expect = bench_arg_u64("--expect", optarg); break;
        case OPT_IDLE: idle_ms = bench_arg_u64("--idle-ms", optarg); break;
        case OPT_MAX_WAIT:
            max_wait_ms = bench_arg_u64("--max-wait-ms", optarg);
            break;
        case OPT_READY: ready = optarg; break;
        default: exit(2);
        }
    }
    uint32_t ip;
    uint16_t port;
    if (argc - optind != 1 || !bench_parse_ipport(argv[optind], &ip, &port)) {
        bench_fatal("count: expected IP:PORT");
    }

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1, rcvbuf = 64 * 1024 * 1024;
    if (fd < 0) {
        bench_fatal("count: socket: %s", strerror(errno));
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf)) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
    if (dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev,
                          strlen(dev) + 1)) {
        bench_fatal("count: SO_BINDTODEVICE %s: %s", dev, strerror(errno));
    }
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(ip) };
    if (bind(fd, (struct sockaddr *) &sin, sizeof sin)) {
        bench_fatal("count: bind %s: %s", argv[optind], strerror(errno));
    }
    bench_touch(ready);

    enum { BATCH = 64 };
    static uint8_t bufs[BATCH][2048];
    static uint8_t cmsgs[BATCH][CMSG_SPACE(sizeof(uint32_t))];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    uint64_t received = 0, others = 0, max_seq = 0, bytes = 0;
    uint32_t drops = 0;
    int64_t t_begin = bench_now(), t_first = 0, t_last = 0;
    while (!bench_stop) {
        for (size_t i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = sizeof bufs[i];
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = cmsgs[i];
            msgs[i].msg_hdr.msg_controllen = sizeof cmsgs[i];
        }
        int r = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        int64_t now = bench_now();
        if (r > 0) {
            for (int i = 0; i < r; i++) {
                uint64_t seq;
                struct msghdr *mh = &msgs[i].msg_hdr;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
                     cm = CMSG_NXTHDR(mh, cm)) {
                    if (cm->cmsg_level == SOL_SOCKET
                        && cm->cmsg_type == SO_RXQ_OVFL) {
                        memcpy(&drops, CMSG_DATA(cm), sizeof drops);
                    }
                }
                if (bench_payload_check(bufs[i], msgs[i].msg_len, tag,
                                        &seq)) {
                    if (!received) {
                        t_first = now;
                    }
                    received++;
                    bytes += msgs[i].msg_len;
                    t_last = now;
                    if (seq > max_seq) {
                        max_seq = seq;
                    }
                } else {
                    others++;
                }
            }
            if (expect && received >= expect) {
                break;
            }
            continue;
        }
        if (received && now - t_last > (int64_t) idle_ms * 1000000) {
            break;
        }
        if (!received && now - t_begin > (int64_t) max_wait_ms * 1000000) {
            break;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        poll(&pfd, 1, 20);
    }
    close(fd);
    double span = (t_last - t_first) / 1e9;
    bench_print_json(json_pack(
        "{sI sI sI sI sI sI sI sf}",
        "received", (json_int_t) received,
        "bytes", (json_int_t) bytes,
        "others", (json_int_t) others,
        "max_seq", (json_int_t) max_seq,
        "socket_drops", (json_int_t) drops,
        "t_first", (json_int_t) t_first,
        "t_last", (json_int_t) t_last,
        "rate_pps", received > 1 && span > 0 ? (received - 1) / span : 0.0));
    return 0;
}

/* capture: DATA frames leaving the host on a vNIC, and the guest's ACKs
 * coming back, timestamped by the kernel. */

struct cap_frame {
    bool from_host;
    uint8_t type, flags;
    uint32_t epoch;
    uint64_t seq, ack;
    uint16_t chunk_count;
    const uint8_t *payload;     /* Into the captured frame. */
    size_t payload_len;
};

static uint64_t
get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Parses a chand frame out of an Ethernet frame, tagged or not (AF_PACKET
 * shows received frames with the tag stripped into metadata). */
static bool
cap_parse(const uint8_t *p, size_t len, struct cap_frame *f)
{
    size_t ofs = 12;
    if (len < 14) {
        return false;
    }
    uint16_t type = get_be(p + ofs, 2);
    if (type == 0x8100) {
        ofs += 4;
        if (len < ofs + 2) {
            return false;
        }
        type = get_be(p + ofs, 2);
    }
    ofs += 2;
    if (type != 0x0800 || len < ofs + 20 || (p[ofs] >> 4) != 4
        || p[ofs + 9] != 17) {
        return false;
    }
    size_t ihl = (p[ofs] & 0xf) * 4;
    uint32_t src = get_be(p + ofs + 12, 4);
    ofs += ihl;
    if (len < ofs + 8 + CHAN_WIRE_HEADER_LEN
        || get_be(p + ofs + 2, 2) != 7433) {
        return false;
    }
    const uint8_t *h = p + ofs + 8;
    if (get_be(h, 2) != CHAN_WIRE_MAGIC || h[2] != CHAN_WIRE_VERSION) {
        return false;
    }
    f->from_host = src == CHAN_HOST_IP;
    f->type = h[3];
    f->flags = h[4];
    f->epoch = get_be(h + 8, 4);
    f->seq = get_be(h + 12, 8);
    f->ack = get_be(h + 20, 8);
    f->chunk_count = get_be(h + 30, 2);
    f->payload = h + CHAN_WIRE_HEADER_LEN;
    f->payload_len = get_be(h + 32, 2);
    if (f->payload_len > len - (ofs + 8 + CHAN_WIRE_HEADER_LEN)) {
        f->payload_len = 0;
    }
    return true;
}

struct pending {
    uint64_t seq;
    int64_t t;
    char *recs;                 /* "KEY VERSION" lines, or NULL. */
};

/* Returns the records of a single-frame DATA payload as malloc()ed
 * "KEY VERSION" lines (VERSION -1 for a delete), or NULL. */
static char *
cap_records(const struct cap_frame *f)
{
    struct chan_batch batch;
    char *text = NULL;
    size_t size = 0;
    if (f->chunk_count != 1 || !f->payload_len) {
        return NULL;
    }
    chan_batch_init(&batch);
    if (chan_batch_decode(f->payload, f->payload_len, NULL, &batch)) {
        return NULL;
    }
    FILE *s = open_memstream(&text, &size);
    for (size_t i = 0; i < batch.n; i++) {
        const struct chan_record *r = &batch.records[i];
        fprintf(s, "%s %lld\n", r->key,
                r->op == CHAN_OP_PUT ? (long long) r->version : -1LL);
    }
    fclose(s);
    chan_batch_destroy(&batch);
    return text;
}

/* Writes "KEY VERSION T_FRAME T_ACK" for each record of 'p'. */
static void
cap_log(FILE *log, const struct pending *p, int64_t t_ack)
{
    const char *line = p->recs;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        fprintf(log, "%.*s %lld %lld\n", (int) (nl - line), line,
                (long long) p->t, (long long) t_ack);
        line = nl + 1;
    }
}

int
bench_cmd_capture(int argc, char *argv[])
{
    static const struct option longopts[] = {
        {"duration-s", required_argument, NULL, OPT_DURATION},
        {"ready", required_argument, NULL, OPT_READY},
        {"log", required_argument, NULL, OPT_LOG},
        {NULL, 0, NULL, 0},
    };
    double duration = 0;
    const char *ready = NULL;
    FILE *log = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DURATION:
            duration = bench_arg_double("--duration-s", optarg);
            break;
        case OPT_READY: ready = optarg; break;
        case OPT_LOG:
            log = fopen(optarg, "w");
            if (!log) {
                bench_fatal("%s: %s", optarg, strerror(errno));
            }
            setvbuf(log, NULL, _IOFBF, 1 << 20);
            break;
        default: exit(2);
        }
    }
    if (argc - optind != 1) {
        bench_fatal("capture: expected IFACE");
    }
    const char *iface = argv[optind];
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) {
        bench_fatal("capture: socket: %s", strerror(errno));
    }
    int one = 1, rcvbuf = 64 * 1024 * 1024;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf)) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    struct sockaddr_ll sll = { .sll_family = AF_PACKET,
                               .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = if_nametoindex(iface) };
    if (!sll.sll_ifindex
        || bind(fd, (struct sockaddr *) &sll, sizeof sll)) {
        bench_fatal("capture: %s: %s", iface, strerror(errno));
    }
    int64_t offset = bench_realtime_offset();
    bench_touch(ready);

    size_t n_lat = 0, cap_lat = 1 << 16;
    int64_t *lat = malloc(cap_lat * sizeof *lat);
    size_t n_pend = 0, head = 0, cap_pend = 1 << 16;
    struct pending *pend = malloc(cap_pend * sizeof *pend);
    uint32_t epoch = 0;
    uint64_t max_seq = 0, data = 0, resent = 0, acks = 0, others = 0;
    uint64_t data_bytes = 0;
    int64_t t_first_data = 0, t_last_data = 0, t_last_ack = 0;
    int64_t t_end = duration > 0 ? bench_now() + duration * 1e9 : INT64_MAX;

    uint8_t buf[70000];
    uint8_t cbuf[256];
    while (!bench_stop && bench_now() < t_end) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        for (;;) {
            struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
            struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                                 .msg_control = cbuf,
                                 .msg_controllen = sizeof cbuf };
            ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
            if (r <= 0) {
                break;
            }
            int64_t t = 0;
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
                 cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level == SOL_SOCKET
                    && cm->cmsg_type == SO_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                    t = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec
                        - offset;
                }
            }
            if (!t) {
                t = bench_now();
            }
            struct cap_frame f;
            if (!cap_parse(buf, r, &f)) {
                others++;
                continue;
            }
            if (f.from_host && f.type == 1 /* DATA */) {
                if (f.epoch != epoch) {
                    epoch = f.epoch;
                    for (size_t i = head; i < n_pend; i++) {
                        free(pend[i].recs);
                    }
                    n_pend = head = 0;
                    max_seq = 0;
                }
                if (!t_first_data) {
                    t_first_data = t;
                }
                t_last_data = t;
                data_bytes += r;
                if (f.seq <= max_seq) {
                    resent++;
                    continue;
                }
                data++;
                max_seq = f.seq;
                if (head && n_pend == cap_pend) {
                    memmove(pend, pend + head, (n_pend - head) * sizeof *pend);
                    n_pend -= head;
                    head = 0;
                }
                if (n_pend == cap_pend) {
                    cap_pend *= 2;
                    pend = xrealloc(pend, cap_pend * sizeof *pend);
                }
                pend[n_pend].seq = f.seq;
                pend[n_pend].t = t;
                pend[n_pend].recs = log ? cap_records(&f) : NULL;
                n_pend++;
            } else if (!f.from_host && (f.flags & CHAN_WIRE_F_ACK_VALID)
                       && f.epoch == epoch) {
                acks++;
                t_last_ack = t;
                while (head < n_pend && pend[head].seq <= f.ack) {
                    if (n_lat == cap_lat) {
                        cap_lat *= 2;
                        lat = xrealloc(lat, cap_lat * sizeof *lat);
                    }
                    lat[n_lat++] = t - pend[head].t;
                    if (log) {
                        cap_log(log, &pend[head], t);
                    }
                    free(pend[head].recs);
                    head++;
                }
            }
        }
    }
    close(fd);
    if (log) {
        fclose(log);
    }
    json_t *out = json_pack("{sI sI sI sI sI sI sI sI sI}",
                            "data_frames", (json_int_t) data,
                            "data_bytes", (json_int_t) data_bytes,
                            "resent_frames", (json_int_t) resent,
                            "ack_frames", (json_int_t) acks,
                            "unacked", (json_int_t) (n_pend - head),
                            "others", (json_int_t) others,
                            "t_first_data", (json_int_t) t_first_data,
                            "t_last_data", (json_int_t) t_last_data,
                            "t_last_ack", (json_int_t) t_last_ack);
    json_object_set_new(out, "frame_to_ack", bench_percentiles(lat, n_lat));
    bench_print_json(out);
    free(lat);
    free(pend);
    return 0;
}
