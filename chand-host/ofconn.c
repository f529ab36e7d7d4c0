/* Copyright (c) 2026 The chand authors.  See ofconn.h. */

#include <config.h>
#include "ofconn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ofp13.h"
#include "poll-loop.h"
#include "stream.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(ofconn);

#define OFCONN_TXBUF_MAX (4u * 1024 * 1024)
#define OFCONN_RXBUF_SIZE (2 * OFP13_MAX_MSG_LEN)
#define OFCONN_BACKOFF_MIN 250
#define OFCONN_BACKOFF_MAX 4000
#define OFCONN_PROBE_MS 5000

struct ofconn {
    char *target;
    ofconn_packet_in_func *packet_in;
    void *aux;

    struct stream *stream;
    bool connected;             /* stream_connect() completed. */
    bool ready;                 /* HELLO + SET_ASYNC sent. */
    unsigned int seqno;
    long long next_attempt;
    int backoff;
    long long last_rx;
    bool probe_sent;
    uint32_t next_xid;

    uint8_t *rx;                /* OFCONN_RXBUF_SIZE bytes. */
    size_t rx_len;
    uint8_t *tx;                /* Pending output. */
    size_t tx_len, tx_ofs, tx_cap;

    struct ofconn_stats stats;
};

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

struct ofconn *
ofconn_create(const char *target, ofconn_packet_in_func *packet_in, void *aux)
{
    struct ofconn *c = calloc(1, sizeof *c);
    c->target = strdup(target);
    c->packet_in = packet_in;
    c->aux = aux;
    c->rx = malloc(OFCONN_RXBUF_SIZE);
    c->backoff = OFCONN_BACKOFF_MIN;
    c->next_xid = 1;
    return c;
}

static void
disconnect(struct ofconn *c, const char *why)
{
    if (c->stream) {
        if (c->connected) {
            VLOG_WARN("%s: disconnected (%s)", c->target, why);
        }
        stream_close(c->stream);
        c->stream = NULL;
        c->seqno++;
    }
    c->connected = c->ready = false;
    c->rx_len = c->tx_len = c->tx_ofs = 0;
    c->next_attempt = time_msec() + c->backoff;
    c->backoff = c->backoff * 2 > OFCONN_BACKOFF_MAX ? OFCONN_BACKOFF_MAX
                                                      : c->backoff * 2;
}

void
ofconn_destroy(struct ofconn *c)
{
    if (c) {
        if (c->stream) {
            stream_close(c->stream);
        }
        free(c->target);
        free(c->rx);
        free(c->tx);
        free(c);
    }
}

/* Appends 'len' bytes to the output buffer.  Returns 0 or ENOBUFS. */
static int
tx_append(struct ofconn *c, const void *data, size_t len)
{
    if (c->tx_len + len > OFCONN_TXBUF_MAX) {
        if (c->tx_ofs) {
            memmove(c->tx, c->tx + c->tx_ofs, c->tx_len - c->tx_ofs);
            c->tx_len -= c->tx_ofs;
            c->tx_ofs = 0;
        }
        if (c->tx_len + len > OFCONN_TXBUF_MAX) {
            return ENOBUFS;
        }
    }
    if (c->tx_len + len > c->tx_cap) {
        size_t cap = c->tx_cap ? c->tx_cap : 65536;
        while (cap < c->tx_len + len) {
            cap *= 2;
        }
        uint8_t *tx = realloc(c->tx, cap);
        if (!tx) {
            return ENOBUFS;
        }
        c->tx = tx;
        c->tx_cap = cap;
    }
    memcpy(c->tx + c->tx_len, data, len);
    c->tx_len += len;
    return 0;
}

static void
flush(struct ofconn *c)
{
    while (c->stream && c->tx_ofs < c->tx_len) {
        ssize_t n = stream_send(c->stream, c->tx + c->tx_ofs,
                                c->tx_len - c->tx_ofs);
        if (n == -EAGAIN) {
            return;
        } else if (n < 0) {
            disconnect(c, strerror(-n));
            return;
        }
        c->tx_ofs += n;
    }
    c->tx_ofs = c->tx_len = 0;
}

static void
send_handshake(struct ofconn *c)
{
    uint8_t buf[64];
    size_t len;
    struct ofp13_async_config ac;

    ofp13_encode_hello(buf, sizeof buf, &len, c->next_xid++);
    tx_append(c, buf, len);
    ofp13_async_config_chand(&ac, false);
    ofp13_encode_set_async(buf, sizeof buf, &len, c->next_xid++, &ac);
    tx_append(c, buf, len);
    ofp13_encode_set_controller_id(buf, sizeof buf, &len, c->next_xid++,
                                   CHAND_CONTROLLER_ID);
    tx_append(c, buf, len);
    c->ready = true;
    c->seqno++;
    c->stats.connects++;
    VLOG_INFO("%s: connected", c->target);
}

static void
handle_msg(struct ofconn *c, const uint8_t *msg, size_t len)
{
    struct ofp13_header h;
    ofp13_decode_header(msg, len, &h);

    switch (h.type) {
    case OFP13_PACKET_IN: {
        struct ofp13_packet_in pin;
        int error = ofp13_decode_packet_in(msg, len, &pin);
        if (error || !pin.has_in_port) {
            c->stats.bad_msgs++;
            VLOG_WARN_RL(&rl, "%s: bad PACKET_IN (%s)", c->target,
                         error ? ofp13_strerror(error) : "no in_port");
            return;
        }
        c->stats.packet_ins++;
        c->packet_in(pin.cookie, pin.in_port, pin.has_pkt_mark, pin.pkt_mark,
                     pin.data, pin.data_len, c->aux);
        break;
    }
    case OFP13_ECHO_REQUEST: {
        struct ofp13_echo echo;
        uint8_t buf[OFP13_MAX_MSG_LEN];
        size_t n;
        if (!ofp13_decode_echo(msg, len, &echo)
            && !ofp13_encode_echo_reply(buf, sizeof buf, &n, echo.xid,
                                        echo.data, echo.data_len)) {
            tx_append(c, buf, n);
        }
        break;
    }
    case OFP13_ERROR: {
        struct ofp13_error_msg err;
        c->stats.errors++;
        if (!ofp13_decode_error(msg, len, &err)) {
            VLOG_WARN_RL(&rl, "%s: switch reports error: %s", c->target,
                         ofp13_error_string(err.type, err.code));
        }
        break;
    }
    case OFP13_HELLO: {
        uint32_t versions;
        if (ofp13_decode_hello(msg, len, &versions)) {
            disconnect(c, "no common OpenFlow version (need 1.3)");
        }
        break;
    }
    default:
        /* Echo replies, barrier replies, port status...: nothing to do. */
        break;
    }
}

static void
receive(struct ofconn *c)
{
    for (int i = 0; i < 64 && c->stream; i++) {
        ssize_t n = stream_recv(c->stream, c->rx + c->rx_len,
                                OFCONN_RXBUF_SIZE - c->rx_len);
        if (n == -EAGAIN) {
            return;
        } else if (n <= 0) {
            disconnect(c, n ? strerror(-n) : "connection closed");
            return;
        }
        c->rx_len += n;
        c->last_rx = time_msec();
        c->probe_sent = false;

        size_t ofs = 0;
        while (c->stream) {
            size_t msg_len;
            int error = ofp13_frame(c->rx + ofs, c->rx_len - ofs, 0,
                                    &msg_len);
            if (error == OFP13_E_INCOMPLETE) {
                break;
            } else if (error) {
                c->stats.bad_msgs++;
                disconnect(c, ofp13_strerror(error));
                return;
            }
            handle_msg(c, c->rx + ofs, msg_len);
            ofs += msg_len;
        }
        if (c->stream) {
            memmove(c->rx, c->rx + ofs, c->rx_len - ofs);
            c->rx_len -= ofs;
        }
    }
}

static void
probe(struct ofconn *c)
{
    long long now = time_msec();
    if (now - c->last_rx < OFCONN_PROBE_MS) {
        return;
    }
    if (c->probe_sent) {
        disconnect(c, "no response to echo request");
        return;
    }
    uint8_t buf[16];
    size_t len;
    ofp13_encode_echo_request(buf, sizeof buf, &len, c->next_xid++, NULL, 0);
    tx_append(c, buf, len);
    c->probe_sent = true;
    c->last_rx = now;
}

void
ofconn_run(struct ofconn *c)
{
    if (!c->stream) {
        if (time_msec() < c->next_attempt) {
            return;
        }
        int error = stream_open(c->target, &c->stream);
        if (error) {
            VLOG_WARN_RL(&rl, "%s: connect failed (%s)", c->target,
                         strerror(error));
            c->stream = NULL;
            disconnect(c, strerror(error));
            return;
        }
    }
    if (!c->connected) {
        int error = stream_connect(c->stream);
        if (error == EAGAIN) {
            return;
        } else if (error) {
            VLOG_WARN_RL(&rl, "%s: connect failed (%s)", c->target,
                         strerror(error));
            stream_close(c->stream);
            c->stream = NULL;
            disconnect(c, strerror(error));
            return;
        }
        c->connected = true;
        c->backoff = OFCONN_BACKOFF_MIN;
        c->last_rx = time_msec();
        c->probe_sent = false;
        send_handshake(c);
    }
    receive(c);
    if (c->stream) {
        probe(c);
    }
    flush(c);
}

void
ofconn_wait(struct ofconn *c)
{
    if (!c->stream) {
        poll_timer_wait_until(c->next_attempt);
    } else if (!c->connected) {
        stream_connect_wait(c->stream);
    } else {
        stream_recv_wait(c->stream);
        if (c->tx_ofs < c->tx_len) {
            stream_send_wait(c->stream);
        }
        poll_timer_wait_until(c->last_rx + OFCONN_PROBE_MS);
    }
}

bool
ofconn_is_ready(const struct ofconn *c)
{
    return c->ready;
}

unsigned int
ofconn_get_seqno(const struct ofconn *c)
{
    return c->seqno;
}

int
ofconn_send_frame(struct ofconn *c, uint32_t in_port, uint32_t pkt_mark,
                  const uint8_t *frame, size_t len)
{
    uint8_t buf[OFP13_MAX_MSG_LEN];
    size_t n;

    if (!c->ready) {
        return ENOTCONN;
    }
    if (ofp13_encode_packet_out(buf, sizeof buf, &n, c->next_xid++,
                                in_port, pkt_mark,
                                frame, len)) {
        return EMSGSIZE;
    }
    if (tx_append(c, buf, n)) {
        c->stats.tx_dropped++;
        return ENOBUFS;
    }
    c->stats.packet_outs++;
    if (c->tx_len - c->tx_ofs >= 65536) {
        flush(c);
    }
    return 0;
}

const char *
ofconn_get_target(const struct ofconn *c)
{
    return c->target;
}

void
ofconn_get_stats(const struct ofconn *c, struct ofconn_stats *stats)
{
    *stats = c->stats;
}
