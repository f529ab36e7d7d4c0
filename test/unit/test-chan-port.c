/* Tests for lib/chan-port: the header codec, then real sockets (socketpairs
 * and a listening socket standing in for ovs-vswitchd). */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "chan-port.h"
#include "poll-loop.h"

/* Builds a test frame of 'len' bytes whose contents depend on 'seed'. */
static void
fill_frame(uint8_t *frame, size_t len, unsigned int seed)
{
    for (size_t i = 0; i < len; i++) {
        frame[i] = (uint8_t) (seed * 31 + i * 7);
    }
}

/* Codec. */

static void
test_encode_header(void)
{
    uint8_t hdr[CHAN_PORT_HDR_LEN];
    static const uint8_t expect[CHAN_PORT_HDR_LEN] = {
        0x01, 0x08, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04
    };

    memset(hdr, 0xa5, sizeof hdr);
    chan_port_encode_header(hdr, 0x01020304);
    CU_ASSERT_EQUAL(memcmp(hdr, expect, sizeof hdr), 0);

    chan_port_encode_header(hdr, 0xffffffff);
    CU_ASSERT_EQUAL(hdr[4], 0xff);
    CU_ASSERT_EQUAL(hdr[7], 0xff);
    CU_ASSERT_EQUAL(hdr[2] | hdr[3], 0);
}

static void
test_round_trip(void)
{
    static const uint32_t marks[] = {
        0, 1, 7, 0xff, 0x100, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff
    };
    static const size_t lens[] = {
        CHAN_PORT_MIN_FRAME, 15, 60, 64, 1514, 1518, 9018, CHAN_PORT_MAX_FRAME
    };
    uint8_t *dgram = malloc(CHAN_PORT_HDR_LEN + CHAN_PORT_MAX_FRAME);

    CU_ASSERT_PTR_NOT_NULL_FATAL(dgram);
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            struct chan_port_frame f;

            chan_port_encode_header(dgram, marks[m]);
            fill_frame(dgram + CHAN_PORT_HDR_LEN, lens[l], m);
            CU_ASSERT_EQUAL(chan_port_decode(dgram,
                                             CHAN_PORT_HDR_LEN + lens[l],
                                             &f), CHAN_PORT_OK);
            CU_ASSERT_EQUAL(f.pkt_mark, marks[m]);
            CU_ASSERT_EQUAL(f.len, lens[l]);
            CU_ASSERT_PTR_EQUAL(f.data, dgram + CHAN_PORT_HDR_LEN);
        }
    }
    free(dgram);
}

/* Every prefix of a valid datagram: too short for the header, then too
 * short for a frame, then valid with a shorter frame. */
static void
test_truncation(void)
{
    uint8_t dgram[CHAN_PORT_HDR_LEN + 64];

    chan_port_encode_header(dgram, 42);
    fill_frame(dgram + CHAN_PORT_HDR_LEN, 64, 3);
    for (size_t len = 0; len <= sizeof dgram; len++) {
        struct chan_port_frame f;
        enum chan_port_error error = chan_port_decode(dgram, len, &f);

        if (len < CHAN_PORT_HDR_LEN) {
            CU_ASSERT_EQUAL(error, CHAN_PORT_E_SHORT);
        } else if (len < CHAN_PORT_HDR_LEN + CHAN_PORT_MIN_FRAME) {
            CU_ASSERT_EQUAL(error, CHAN_PORT_E_FRAME_SHORT);
        } else {
            CU_ASSERT_EQUAL(error, CHAN_PORT_OK);
            CU_ASSERT_EQUAL(f.pkt_mark, 42);
            CU_ASSERT_EQUAL(f.len, len - CHAN_PORT_HDR_LEN);
        }
        if (error) {
            CU_ASSERT_PTR_NULL(f.data);
            CU_ASSERT_EQUAL(f.len, 0);
            CU_ASSERT_EQUAL(f.pkt_mark, 0);
        }
    }
}

/* Malformed headers around a mark: each is rejected with its own error,
 * whatever the mark. */
static void
test_bad_headers(void)
{
    static const struct {
        uint8_t hdr[CHAN_PORT_HDR_LEN];
        enum chan_port_error error;
    } cases[] = {
        { { 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_VERSION },
        { { 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_VERSION },
        { { 0xff, 0x08, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff },
          CHAN_PORT_E_VERSION },
        { { 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_HDR_LEN },
        { { 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_HDR_LEN },
        { { 0x01, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_HDR_LEN },
        { { 0x01, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_HDR_LEN },
        { { 0x01, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_HDR_LEN },
        { { 0x01, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_FLAGS },
        { { 0x01, 0x08, 0x80, 0x00, 0x00, 0x00, 0x00, 0x07 },
          CHAN_PORT_E_FLAGS },
        { { 0x01, 0x08, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00 },
          CHAN_PORT_E_FLAGS },
        { { 0x01, 0x08, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff },
          CHAN_PORT_E_FLAGS },
    };
    uint8_t dgram[CHAN_PORT_HDR_LEN + 60];

    fill_frame(dgram + CHAN_PORT_HDR_LEN, 60, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chan_port_frame f;

        memcpy(dgram, cases[i].hdr, CHAN_PORT_HDR_LEN);
        CU_ASSERT_EQUAL(chan_port_decode(dgram, sizeof dgram, &f),
                        cases[i].error);
        CU_ASSERT_PTR_NULL(f.data);
        CU_ASSERT_EQUAL(f.pkt_mark, 0);
        /* A header-only datagram with the same bad header still reports
         * the header error first. */
        CU_ASSERT_EQUAL(chan_port_decode(dgram, CHAN_PORT_HDR_LEN, &f),
                        cases[i].error);
    }
}

static void
test_frame_lengths(void)
{
    size_t len = CHAN_PORT_HDR_LEN + CHAN_PORT_MAX_FRAME + 1;
    uint8_t *dgram = calloc(1, len);
    struct chan_port_frame f;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dgram);
    chan_port_encode_header(dgram, 1);
    CU_ASSERT_EQUAL(chan_port_decode(dgram, len, &f),
                    CHAN_PORT_E_FRAME_LONG);
    CU_ASSERT_EQUAL(chan_port_decode(dgram, len - 1, &f), CHAN_PORT_OK);
    CU_ASSERT_EQUAL(f.len, CHAN_PORT_MAX_FRAME);
    free(dgram);

    CU_ASSERT_EQUAL(chan_port_check_frame_len(0), CHAN_PORT_E_FRAME_SHORT);
    CU_ASSERT_EQUAL(chan_port_check_frame_len(CHAN_PORT_MIN_FRAME - 1),
                    CHAN_PORT_E_FRAME_SHORT);
    CU_ASSERT_EQUAL(chan_port_check_frame_len(CHAN_PORT_MIN_FRAME),
                    CHAN_PORT_OK);
    CU_ASSERT_EQUAL(chan_port_check_frame_len(CHAN_PORT_MAX_FRAME),
                    CHAN_PORT_OK);
    CU_ASSERT_EQUAL(chan_port_check_frame_len(CHAN_PORT_MAX_FRAME + 1),
                    CHAN_PORT_E_FRAME_LONG);
    CU_ASSERT_EQUAL(chan_port_check_frame_len(SIZE_MAX),
                    CHAN_PORT_E_FRAME_LONG);
}

/* Random datagrams: the decoder never reads out of bounds (ASan), and
 * whatever it accepts has a valid header and a frame of the right size.
 * Random valid frames round-trip. */
static void
test_random(void)
{
    uint64_t state = 0x43484e44;
    uint8_t dgram[256];

    for (int iter = 0; iter < 20000; iter++) {
        size_t len = unit_random(&state) % (sizeof dgram + 1);
        struct chan_port_frame f;

        for (size_t i = 0; i < len; i++) {
            dgram[i] = unit_random(&state);
        }
        if (iter % 2) {
            /* Mostly-valid headers get past the early checks. */
            if (len >= CHAN_PORT_HDR_LEN) {
                chan_port_encode_header(dgram, unit_random(&state));
                if (unit_random(&state) % 4 == 0) {
                    dgram[unit_random(&state) % 4] ^=
                        1u << (unit_random(&state) % 8);
                }
            }
        }

        /* Decode a heap copy of exactly 'len' bytes so ASan catches any
         * read past the end. */
        uint8_t *copy = malloc(len ? len : 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
        memcpy(copy, dgram, len);
        enum chan_port_error error = chan_port_decode(copy, len, &f);
        CU_ASSERT(error >= CHAN_PORT_OK && error < CHAN_PORT_N_ERRORS);
        if (!error) {
            CU_ASSERT_EQUAL(copy[0], CHAN_PORT_VERSION);
            CU_ASSERT_EQUAL(copy[1], CHAN_PORT_HDR_LEN);
            CU_ASSERT_EQUAL(copy[2] | copy[3], 0);
            CU_ASSERT_EQUAL(f.len, len - CHAN_PORT_HDR_LEN);
            CU_ASSERT(f.len >= CHAN_PORT_MIN_FRAME);
            CU_ASSERT_EQUAL(f.pkt_mark,
                            ((uint32_t) copy[4] << 24 | copy[5] << 16
                             | copy[6] << 8 | copy[7]));
        }
        free(copy);
    }
}

static void
test_strerror(void)
{
    for (int i = 0; i < CHAN_PORT_N_ERRORS; i++) {
        CU_ASSERT_PTR_NOT_NULL(chan_port_strerror(i));
        CU_ASSERT_PTR_NOT_NULL(chan_port_error_name(i));
        for (int j = 0; j < i; j++) {
            CU_ASSERT(strcmp(chan_port_strerror(i), chan_port_strerror(j)));
            CU_ASSERT(strcmp(chan_port_error_name(i),
                             chan_port_error_name(j)));
        }
    }
    CU_ASSERT_STRING_EQUAL(chan_port_error_name(CHAN_PORT_E_FLAGS), "flags");
    CU_ASSERT_STRING_EQUAL(chan_port_error_name(-1), "unknown");
    CU_ASSERT_STRING_EQUAL(chan_port_error_name(CHAN_PORT_N_ERRORS),
                           "unknown");
    CU_ASSERT_STRING_EQUAL(chan_port_strerror(CHAN_PORT_N_ERRORS),
                           "unknown chand port error");
}

/* Sockets. */

/* A socketpair: 'port' wraps fds[0]; the test plays ovs-vswitchd on
 * 'peer'. */
struct pair {
    struct chan_port *port;
    int fd;                     /* The port's socket (owned by the port). */
    int peer;
};

static void
pair_open(struct pair *p, chan_port_recv_func *cb, void *aux)
{
    int fds[2];

    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds), 0);
    p->port = chan_port_create_fd(fds[0], "pair", cb, aux);
    p->fd = fds[0];
    p->peer = fds[1];
    CU_ASSERT_TRUE(chan_port_is_connected(p->port));
    CU_ASSERT_STRING_EQUAL(chan_port_get_name(p->port), "pair");
}

static void
pair_close(struct pair *p)
{
    chan_port_destroy(p->port);
    if (p->peer >= 0) {
        close(p->peer);
    }
}

/* Sends a raw datagram from the peer side. */
static void
peer_send(int fd, const void *data, size_t len)
{
    CU_ASSERT_EQUAL((size_t) send(fd, data, len, 0), len);
}

static void
peer_send_frame(int fd, uint32_t mark, const uint8_t *frame, size_t len)
{
    uint8_t buf[CHAN_PORT_HDR_LEN + 2048];

    chan_port_encode_header(buf, mark);
    memcpy(buf + CHAN_PORT_HDR_LEN, frame, len);
    peer_send(fd, buf, CHAN_PORT_HDR_LEN + len);
}

/* Reads one datagram on the peer side, nonblocking.  Returns its length,
 * or -1 if none is waiting. */
static ssize_t
peer_recv(int fd, uint8_t *buf, size_t size)
{
    return recv(fd, buf, size, MSG_DONTWAIT);
}

static void
test_loopback_send(void)
{
    struct pair p;
    uint8_t frame[100], buf[256];
    struct chan_port_stats st;

    pair_open(&p, NULL, NULL);
    for (unsigned int i = 0; i < 100; i++) {
        fill_frame(frame, 60 + i % 40, i);
        CU_ASSERT_EQUAL(chan_port_send(p.port, 1000 + i, frame,
                                       60 + i % 40), 0);
    }
    /* Full batches went out as they filled; the rest is queued. */
    CU_ASSERT_EQUAL(chan_port_queued(p.port), 100 % CHAN_PORT_BATCH);
    CU_ASSERT_EQUAL(chan_port_flush(p.port), 0);
    CU_ASSERT_EQUAL(chan_port_queued(p.port), 0);

    for (unsigned int i = 0; i < 100; i++) {
        struct chan_port_frame f;
        ssize_t n = peer_recv(p.peer, buf, sizeof buf);

        CU_ASSERT_EQUAL_FATAL(n, CHAN_PORT_HDR_LEN + 60 + i % 40);
        CU_ASSERT_EQUAL(chan_port_decode(buf, n, &f), CHAN_PORT_OK);
        CU_ASSERT_EQUAL(f.pkt_mark, 1000 + i);
        fill_frame(frame, f.len, i);
        CU_ASSERT_EQUAL(memcmp(f.data, frame, f.len), 0);
    }
    CU_ASSERT_EQUAL(peer_recv(p.peer, buf, sizeof buf), -1);

    chan_port_get_stats(p.port, &st);
    CU_ASSERT_EQUAL(st.tx_frames, 100);
    CU_ASSERT_EQUAL(st.tx_batches, 4);      /* 32 + 32 + 32 + 4. */
    CU_ASSERT_EQUAL(st.tx_dropped, 0);

    /* Bad lengths are refused without queueing. */
    CU_ASSERT_EQUAL(chan_port_send(p.port, 1, frame, 13), EINVAL);
    CU_ASSERT_EQUAL(chan_port_send(p.port, 1, frame,
                                   CHAN_PORT_MAX_FRAME + 1), EINVAL);
    CU_ASSERT_EQUAL(chan_port_queued(p.port), 0);
    pair_close(&p);
}

static void
test_loopback_send_batch(void)
{
    struct pair p;
    struct chan_port_frame frames[70];
    uint8_t data[70][64], buf[256];
    size_t n_sent;

    pair_open(&p, NULL, NULL);
    for (size_t i = 0; i < 70; i++) {
        fill_frame(data[i], sizeof data[i], i);
        frames[i].pkt_mark = i;
        frames[i].data = data[i];
        frames[i].len = sizeof data[i];
    }

    /* A queued frame goes out first, then the batch. */
    CU_ASSERT_EQUAL(chan_port_send(p.port, 999, data[0], 64), 0);
    CU_ASSERT_EQUAL(chan_port_send_batch(p.port, frames, 70, &n_sent), 0);
    CU_ASSERT_EQUAL(n_sent, 70);
    for (int i = -1; i < 70; i++) {
        struct chan_port_frame f;
        ssize_t n = peer_recv(p.peer, buf, sizeof buf);

        CU_ASSERT_EQUAL_FATAL(n, CHAN_PORT_HDR_LEN + 64);
        CU_ASSERT_EQUAL(chan_port_decode(buf, n, &f), CHAN_PORT_OK);
        CU_ASSERT_EQUAL(f.pkt_mark, i < 0 ? 999 : i);
    }

    /* A bad frame stops the batch after the good ones before it. */
    frames[5].len = 3;
    CU_ASSERT_EQUAL(chan_port_send_batch(p.port, frames, 70, &n_sent),
                    EINVAL);
    CU_ASSERT_EQUAL(n_sent, 5);
    pair_close(&p);
}

static void
test_loopback_recv(void)
{
    struct pair p;
    struct chan_port_frame frames[CHAN_PORT_BATCH];
    struct chan_port_stats st;
    uint8_t frame[80];
    size_t n;

    pair_open(&p, NULL, NULL);
    CU_ASSERT_EQUAL(chan_port_recv_batch(p.port, frames, CHAN_PORT_BATCH,
                                         &n), EAGAIN);
    CU_ASSERT_EQUAL(n, 0);

    /* 40 good frames interleaved with every kind of bad datagram. */
    static const uint8_t bad_version[] = { 2, 8, 0, 0, 0, 0, 0, 7 };
    static const uint8_t bad_hdr_len[] = { 1, 12, 0, 0, 0, 0, 0, 7 };
    static const uint8_t bad_flags[] = { 1, 8, 0, 1, 0, 0, 0, 7 };
    uint8_t dgram[CHAN_PORT_HDR_LEN + 80];
    for (unsigned int i = 0; i < 40; i++) {
        fill_frame(frame, sizeof frame, i);
        peer_send_frame(p.peer, i * 0x01010101u, frame, sizeof frame);
        switch (i % 8) {
        case 1:
            peer_send(p.peer, "\x01\x08\x00", 3);
            break;
        case 3:
            memcpy(dgram, bad_version, CHAN_PORT_HDR_LEN);
            memcpy(dgram + CHAN_PORT_HDR_LEN, frame, 80);
            peer_send(p.peer, dgram, sizeof dgram);
            break;
        case 4:
            memcpy(dgram, bad_hdr_len, CHAN_PORT_HDR_LEN);
            peer_send(p.peer, dgram, sizeof dgram);
            break;
        case 5:
            memcpy(dgram, bad_flags, CHAN_PORT_HDR_LEN);
            peer_send(p.peer, dgram, sizeof dgram);
            break;
        case 6:
            chan_port_encode_header(dgram, 6);
            peer_send(p.peer, dgram, CHAN_PORT_HDR_LEN + 5);
            break;
        }
    }

    unsigned int got = 0;
    int batches = 0;
    while (!chan_port_recv_batch(p.port, frames, CHAN_PORT_BATCH, &n)) {
        batches++;
        for (size_t i = 0; i < n; i++, got++) {
            CU_ASSERT_EQUAL(frames[i].pkt_mark, got * 0x01010101u);
            CU_ASSERT_EQUAL(frames[i].len, sizeof frame);
            fill_frame(frame, sizeof frame, got);
            CU_ASSERT_EQUAL(memcmp(frames[i].data, frame, sizeof frame), 0);
        }
    }
    CU_ASSERT_EQUAL(got, 40);
    CU_ASSERT_EQUAL(batches, 3);        /* 65 datagrams: 32 + 32 + 1. */

    chan_port_get_stats(p.port, &st);
    CU_ASSERT_EQUAL(st.rx_frames, 40);
    CU_ASSERT_EQUAL(st.rx_bytes, 40 * sizeof frame);
    CU_ASSERT_EQUAL(st.rx_bad, 25);
    CU_ASSERT_EQUAL(st.rx_bad_by_error[CHAN_PORT_E_SHORT], 5);
    CU_ASSERT_EQUAL(st.rx_bad_by_error[CHAN_PORT_E_VERSION], 5);
    CU_ASSERT_EQUAL(st.rx_bad_by_error[CHAN_PORT_E_HDR_LEN], 5);
    CU_ASSERT_EQUAL(st.rx_bad_by_error[CHAN_PORT_E_FLAGS], 5);
    CU_ASSERT_EQUAL(st.rx_bad_by_error[CHAN_PORT_E_FRAME_SHORT], 5);
    CU_ASSERT_EQUAL(st.rx_batches, 3);

    /* 'max' caps the batch. */
    for (int i = 0; i < 3; i++) {
        peer_send_frame(p.peer, 5, frame, 60);
    }
    CU_ASSERT_EQUAL(chan_port_recv_batch(p.port, frames, 2, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(chan_port_recv_batch(p.port, frames, 2, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    pair_close(&p);
}

/* A datagram longer than the receive buffer is counted as truncated. */
static void
test_loopback_truncated(void)
{
    size_t len = CHAN_PORT_HDR_LEN + CHAN_PORT_MAX_FRAME + 100;
    uint8_t *big = calloc(1, len);
    struct chan_port_frame frames[4];
    struct chan_port_stats st;
    struct pair p;
    int size = 1024 * 1024;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    pair_open(&p, NULL, NULL);
    setsockopt(p.peer, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    chan_port_encode_header(big, 77);
    peer_send(p.peer, big, len);
    peer_send_frame(p.peer, 78, big + CHAN_PORT_HDR_LEN, 64);
    CU_ASSERT_EQUAL(chan_port_recv_batch(p.port, frames, 4, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(frames[0].pkt_mark, 78);
    chan_port_get_stats(p.port, &st);
    CU_ASSERT_EQUAL(st.rx_bad_by_error[CHAN_PORT_E_TRUNCATED], 1);
    pair_close(&p);
    free(big);
}

/* When the socket fills up, frames stay queued in order, the queue limit
 * drops and counts the excess, and everything queued arrives once the
 * peer reads. */
static void
test_loopback_backpressure(void)
{
    struct pair p;
    struct chan_port_stats st;
    uint8_t frame[1000], buf[2048];
    unsigned int sent = 0, refused = 0;
    int size = 4096;

    pair_open(&p, NULL, NULL);
    /* Shrink the port's send buffer (chan_port asked for 4 MB). */
    CU_ASSERT_EQUAL(setsockopt(p.fd, SOL_SOCKET, SO_SNDBUF, &size,
                               sizeof size), 0);

    for (unsigned int i = 0; i < 3000; i++) {
        fill_frame(frame, sizeof frame, i);
        int error = chan_port_send(p.port, i, frame, sizeof frame);
        if (!error) {
            sent++;
        } else {
            CU_ASSERT_EQUAL(error, ENOBUFS);
            refused++;
        }
    }
    CU_ASSERT(refused > 0);
    CU_ASSERT_EQUAL(chan_port_flush(p.port), EAGAIN);
    CU_ASSERT(chan_port_queued(p.port) > 0);
    chan_port_get_stats(p.port, &st);
    CU_ASSERT_EQUAL(st.tx_dropped, refused);

    /* Drain the peer while flushing; frames arrive in order. */
    unsigned int got = 0;
    alarm(30);
    while (got < sent) {
        ssize_t n = peer_recv(p.peer, buf, sizeof buf);
        if (n < 0) {
            int error = chan_port_flush(p.port);
            CU_ASSERT(error == 0 || error == EAGAIN);
            continue;
        }
        struct chan_port_frame f;
        CU_ASSERT_EQUAL_FATAL(chan_port_decode(buf, n, &f), CHAN_PORT_OK);
        CU_ASSERT_EQUAL_FATAL(f.pkt_mark, got);
        got++;
    }
    alarm(0);
    CU_ASSERT_EQUAL(chan_port_queued(p.port), 0);
    chan_port_get_stats(p.port, &st);
    CU_ASSERT_EQUAL(st.tx_frames, sent);
    pair_close(&p);
}

/* The peer closing the socket disconnects the port: frames already
 * received are still returned, queued frames are discarded, and a port
 * made from an fd never reconnects. */
static void
test_loopback_eof(void)
{
    struct pair p;
    struct chan_port_frame frames[4];
    struct chan_port_stats st;
    uint8_t frame[64];
    size_t n;

    pair_open(&p, NULL, NULL);
    unsigned int seqno = chan_port_get_seqno(p.port);
    fill_frame(frame, sizeof frame, 9);
    peer_send_frame(p.peer, 9, frame, sizeof frame);
    close(p.peer);
    p.peer = -1;

    CU_ASSERT_EQUAL(chan_port_recv_batch(p.port, frames, 4, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(frames[0].pkt_mark, 9);
    CU_ASSERT_FALSE(chan_port_is_connected(p.port));
    CU_ASSERT_NOT_EQUAL(chan_port_get_seqno(p.port), seqno);
    CU_ASSERT_EQUAL(chan_port_recv_batch(p.port, frames, 4, &n), ENOTCONN);
    CU_ASSERT_EQUAL(chan_port_send(p.port, 1, frame, sizeof frame),
                    ENOTCONN);
    CU_ASSERT_EQUAL(chan_port_flush(p.port), ENOTCONN);
    chan_port_run(p.port);
    CU_ASSERT_FALSE(chan_port_is_connected(p.port));
    chan_port_get_stats(p.port, &st);
    CU_ASSERT_EQUAL(st.disconnects, 1);
    pair_close(&p);

    /* Queued frames are discarded when sending finds the peer gone. */
    pair_open(&p, NULL, NULL);
    CU_ASSERT_EQUAL(chan_port_send(p.port, 1, frame, sizeof frame), 0);
    CU_ASSERT_EQUAL(chan_port_send(p.port, 2, frame, sizeof frame), 0);
    close(p.peer);
    p.peer = -1;
    CU_ASSERT_EQUAL(chan_port_flush(p.port), ENOTCONN);
    chan_port_get_stats(p.port, &st);
    CU_ASSERT_EQUAL(st.tx_discarded, 2);
    CU_ASSERT_EQUAL(st.tx_errors, 1);
    CU_ASSERT_EQUAL(chan_port_queued(p.port), 0);
    pair_close(&p);
}

/* Two chan_ports back to back, driven by chan_port_run() and
 * callbacks. */
struct echo_state {
    struct chan_port *port;
    unsigned int n;
    uint32_t last_mark;
    bool echo;
};

static void
echo_cb(uint32_t mark, const uint8_t *frame, size_t len, void *aux)
{
    struct echo_state *s = aux;
    s->n++;
    s->last_mark = mark;
    if (s->echo) {
        CU_ASSERT_EQUAL(chan_port_send(s->port, mark + 1, frame, len), 0);
    }
}

static void
test_loopback_callbacks(void)
{
    struct echo_state a = { .echo = false }, b = { .echo = true };
    uint8_t frame[64];
    int fds[2];

    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds), 0);
    a.port = chan_port_create_fd(fds[0], "a", echo_cb, &a);
    b.port = chan_port_create_fd(fds[1], "b", echo_cb, &b);

    fill_frame(frame, sizeof frame, 1);
    for (unsigned int i = 0; i < 500; i++) {
        CU_ASSERT_EQUAL(chan_port_send(a.port, 2 * i, frame, sizeof frame),
                        0);
    }
    alarm(30);
    for (;;) {
        chan_port_run(a.port);
        chan_port_run(b.port);
        if (a.n >= 500) {
            break;
        }
        chan_port_wait(a.port);
        chan_port_wait(b.port);
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL(b.n, 500);
    CU_ASSERT_EQUAL(a.n, 500);
    CU_ASSERT_EQUAL(a.last_mark, 2 * 499 + 1);
    chan_port_destroy(a.port);
    chan_port_destroy(b.port);
}

/* Connecting by path, as chand-host does: fails (and retries) while
 * nothing listens, connects once a listener exists, reconnects after the
 * listener drops the connection.  The path is longer than sun_path. */
static void
test_connect_path(void)
{
    char dir[64], path[512], cmd[600];
    struct sockaddr_un sun;
    struct chan_port_stats st;
    struct chan_port_frame frames[2];
    uint8_t frame[64], buf[128];
    size_t n;

    snprintf(dir, sizeof dir, "/tmp/test-chan-port-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%0120d", dir, 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
    strcat(path, "/p1.chand");
    CU_ASSERT(strlen(path) >= sizeof sun.sun_path);

    struct chan_port *port = chan_port_create(path, NULL, NULL);
    CU_ASSERT_FALSE(chan_port_is_connected(port));
    chan_port_run(port);
    CU_ASSERT_FALSE(chan_port_is_connected(port));
    chan_port_get_stats(port, &st);
    CU_ASSERT_EQUAL(st.connect_failures, 1);
    CU_ASSERT_EQUAL(chan_port_send(port, 1, frame, sizeof frame), ENOTCONN);

    /* Listen at 'path' (through /proc/self/fd, as chan_port does). */
    char sub[sizeof path];
    snprintf(sub, sizeof sub, "%s/%0120d", dir, 0);
    int dirfd = open(sub, O_DIRECTORY | O_PATH);
    CU_ASSERT_FATAL(dirfd >= 0);
    int lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "/proc/self/fd/%d/p1.chand",
             dirfd);
    CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *) &sun, sizeof sun), 0);
    CU_ASSERT_EQUAL_FATAL(listen(lfd, 4), 0);

    /* The retry comes after the backoff. */
    alarm(30);
    for (;;) {
        chan_port_run(port);
        if (chan_port_is_connected(port)) {
            break;
        }
        chan_port_wait(port);
        poll_block();
    }
    alarm(0);
    int cfd = accept(lfd, NULL, NULL);
    CU_ASSERT_FATAL(cfd >= 0);
    unsigned int seqno = chan_port_get_seqno(port);

    fill_frame(frame, sizeof frame, 5);
    CU_ASSERT_EQUAL(chan_port_send(port, 7, frame, sizeof frame), 0);
    chan_port_run(port);
    CU_ASSERT_EQUAL(recv(cfd, buf, sizeof buf, 0),
                    CHAN_PORT_HDR_LEN + sizeof frame);
    CU_ASSERT_EQUAL(buf[7], 7);
    peer_send_frame(cfd, 9, frame, sizeof frame);
    CU_ASSERT_EQUAL(chan_port_recv_batch(port, frames, 2, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(frames[0].pkt_mark, 9);

    /* ovs-vswitchd drops the connection (e.g. it restarts): the port
     * notices and connects again. */
    close(cfd);
    CU_ASSERT_EQUAL(chan_port_recv_batch(port, frames, 2, &n), ENOTCONN);
    CU_ASSERT_NOT_EQUAL(chan_port_get_seqno(port), seqno);
    alarm(30);
    for (;;) {
        chan_port_run(port);
        if (chan_port_is_connected(port)) {
            break;
        }
        chan_port_wait(port);
        poll_block();
    }
    alarm(0);
    cfd = accept(lfd, NULL, NULL);
    CU_ASSERT(cfd >= 0);
    chan_port_get_stats(port, &st);
    CU_ASSERT_EQUAL(st.connects, 2);
    CU_ASSERT_EQUAL(st.disconnects, 1);

    chan_port_destroy(port);
    close(cfd);
    close(lfd);
    close(dirfd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

int
unit_register(void)
{
    static const struct unit_test codec_tests[] = {
        { "encode header", test_encode_header },
        { "round trip", test_round_trip },
        { "truncation at every length", test_truncation },
        { "bad headers", test_bad_headers },
        { "frame lengths", test_frame_lengths },
        { "random datagrams", test_random },
        { "error strings", test_strerror },
    };
    static const struct unit_test socket_tests[] = {
        { "send", test_loopback_send },
        { "send batch", test_loopback_send_batch },
        { "receive", test_loopback_recv },
        { "receive truncated", test_loopback_truncated },
        { "backpressure", test_loopback_backpressure },
        { "peer closes", test_loopback_eof },
        { "callbacks", test_loopback_callbacks },
        { "connect by path", test_connect_path },
    };
    int error = UNIT_ADD_SUITE("chan-port codec", codec_tests);
    return error ? error : UNIT_ADD_SUITE("chan-port sockets", socket_tests);
}
