/* ofconn: an OpenFlow 1.3 connection to a bridge.  See ofconn.h. */

#include <config.h>
#include "ofconn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ofp13.h"
#include "poll-loop.h"
#include "reconnect.h"
#include "stream.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(ofconn);

#define OFCONN_PACKET_TXBUF_MAX (4u * 1024 * 1024)
#define OFCONN_RXBUF_SIZE (2 * OFP13_MAX_MSG_LEN)
#define OFCONN_BACKOFF_MIN 250
#define OFCONN_BACKOFF_MAX 4000
#define OFCONN_PROBE_MS 5000

struct ofconn {
    char *target;
    ofconn_packet_in_func *packet_in;   /* Packet path, or NULL. */
    ofconn_msg_func *msg_cb;            /* Flow programming, or NULL. */
    void *aux;

    struct reconnect *rc;
    struct stream *stream;
    bool connected;             /* stream_connect() completed. */
    bool ready;                 /* Handshake sent. */
    unsigned int seqno;
    uint32_t next_xid;          /* For the connection's own messages. */
    uint32_t next_user_xid;     /* For ofconn_alloc_xids(). */

    uint8_t *rx;                /* OFCONN_RXBUF_SIZE bytes. */
    size_t rx_len;
    uint8_t *tx;                /* Pending output. */
    size_t tx_len, tx_ofs, tx_cap, tx_max;

    struct ofconn_stats stats;
};

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

static struct ofconn *
ofconn_create__(const char *target, size_t tx_max)
{
    struct ofconn *c = xcalloc(1, sizeof *c);
    c->target = xstrdup(target);
    c->rx = xmalloc(OFCONN_RXBUF_SIZE);
    c->tx_max = tx_max;
    c->next_xid = UINT32_C(0x80000000);   /* Apart from the owner's. */
    c->next_user_xid = 1;
    c->rc = reconnect_create(time_msec());
    reconnect_set_name(c->rc, c->target);
    reconnect_set_backoff(c->rc, OFCONN_BACKOFF_MIN, OFCONN_BACKOFF_MAX);
    reconnect_set_probe_interval(c->rc, OFCONN_PROBE_MS);
    reconnect_enable(c->rc, time_msec());
    return c;
}

void
ofconn_set_probe_interval(struct ofconn *c, int ms)
{
    reconnect_set_probe_interval(c->rc, ms);
}

struct ofconn *
ofconn_create_packet(const char *target, ofconn_packet_in_func *packet_in,
                     void *aux)
{
    struct ofconn *c = ofconn_create__(target, OFCONN_PACKET_TXBUF_MAX);
    c->packet_in = packet_in;
    c->aux = aux;
    return c;
}

struct ofconn *
ofconn_create(const char *target, ofconn_msg_func *msg_cb, void *aux,
              size_t tx_max)
{
    struct ofconn *c = ofconn_create__(target, tx_max);
    c->msg_cb = msg_cb;
    c->aux = aux;
    return c;
}

/* Drops the connection, if any, because of 'error' (a positive errno, or 0
 * for a clean close), described by 'why'. */
static void
disconnect(struct ofconn *c, int error, const char *why)
{
    if (c->stream) {
        if (c->connected) {
            VLOG_WARN("%s: disconnected (%s)", c->target, why);
            reconnect_disconnected(c->rc, time_msec(), error);
        } else {
            reconnect_connect_failed(c->rc, time_msec(), error);
        }
        stream_close(c->stream);
        c->stream = NULL;
        c->seqno++;
    }
    c->connected = c->ready = false;
    c->rx_len = c->tx_len = c->tx_ofs = 0;
}

void
ofconn_destroy(struct ofconn *c)
{
    if (c) {
        if (c->stream) {
            stream_close(c->stream);
        }
        reconnect_destroy(c->rc);
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
    if (c->tx_len + len > c->tx_max && c->tx_ofs) {
        memmove(c->tx, c->tx + c->tx_ofs, c->tx_len - c->tx_ofs);
        c->tx_len -= c->tx_ofs;
        c->tx_ofs = 0;
    }
    if (c->tx_len + len > c->tx_max) {
        return ENOBUFS;
    }
    if (c->tx_len + len > c->tx_cap) {
        size_t cap = c->tx_cap ? c->tx_cap : 65536;
        while (cap < c->tx_len + len) {
            cap *= 2;
        }
        c->tx = xrealloc(c->tx, cap);
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
            disconnect(c, -n, strerror(-n));
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

    ofp13_encode_hello(buf, sizeof buf, &len, c->next_xid++);
    tx_append(c, buf, len);
    if (c->packet_in) {
        struct ofp13_async_config ac;
        ofp13_async_config_chand(&ac, false);
        ofp13_encode_set_async(buf, sizeof buf, &len, c->next_xid++, &ac);
        tx_append(c, buf, len);
        ofp13_encode_set_controller_id(buf, sizeof buf, &len,
                                       c->next_xid++, CHAND_CONTROLLER_ID);
        tx_append(c, buf, len);
    }
    c->ready = true;
    c->seqno++;
    c->stats.connects++;
    VLOG_INFO("%s: connected%s", c->target,
              c->packet_in ? "" : " (flow programming)");
}

static void
handle_packet_in(struct ofconn *c, const uint8_t *msg, size_t len)
{
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
}

static void
handle_echo_request(struct ofconn *c, const uint8_t *msg, size_t len)
{
    struct ofp13_echo echo;
    uint8_t buf[OFP13_MAX_MSG_LEN];
    size_t n;

    if (!ofp13_decode_echo(msg, len, &echo)
        && !ofp13_encode_echo_reply(buf, sizeof buf, &n, echo.xid,
                                    echo.data, echo.data_len)) {
        tx_append(c, buf, n);
    }
}

static void
handle_msg(struct ofconn *c, const uint8_t *msg, size_t len)
{
    struct ofp13_header h;
    ofp13_decode_header(msg, len, &h);

    if (h.type == OFP13_ERROR) {
        c->stats.errors++;
    }
    switch (h.type) {
    case OFP13_PACKET_IN:
        if (c->packet_in) {
            handle_packet_in(c, msg, len);
        }
        break;
    case OFP13_ECHO_REQUEST:
        handle_echo_request(c, msg, len);
        break;
    case OFP13_HELLO: {
        uint32_t versions;
        if (ofp13_decode_hello(msg, len, &versions)) {
            disconnect(c, EPROTO, "no common OpenFlow version (need 1.3)");
        }
        break;
    }
    case OFP13_ECHO_REPLY:
        break;
    default:
        if (c->msg_cb) {
            c->msg_cb(msg, len, c->aux);
        } else if (h.type == OFP13_ERROR) {
            struct ofp13_error_msg err;
            if (!ofp13_decode_error(msg, len, &err)) {
                VLOG_WARN_RL(&rl, "%s: switch reports error: %s", c->target,
                             ofp13_error_string(err.type, err.code));
            }
        }
        /* Otherwise: barrier replies, port status...: nothing to do. */
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
            disconnect(c, n ? -n : 0,
                       n ? strerror(-n) : "connection closed");
            return;
        }
        c->rx_len += n;
        reconnect_activity(c->rc, time_msec());

        size_t ofs = 0;
        while (c->stream) {
            size_t msg_len;
            int error = ofp13_frame(c->rx + ofs, c->rx_len - ofs, 0,
                                    &msg_len);
            if (error == OFP13_E_INCOMPLETE) {
                break;
            } else if (error) {
                c->stats.bad_msgs++;
                disconnect(c, EPROTO, ofp13_strerror(error));
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
send_probe(struct ofconn *c)
{
    uint8_t buf[16];
    size_t len;
    ofp13_encode_echo_request(buf, sizeof buf, &len, c->next_xid++, NULL, 0);
    tx_append(c, buf, len);
}

static void
start_connect(struct ofconn *c)
{
    int error = stream_open(c->target, &c->stream);
    if (error) {
        VLOG_WARN_RL(&rl, "%s: connect failed (%s)", c->target,
                     strerror(error));
        c->stream = NULL;
        reconnect_connect_failed(c->rc, time_msec(), error);
        return;
    }
    reconnect_connecting(c->rc, time_msec());
}

/* Completes a connection attempt in progress, if it is done. */
static void
finish_connect(struct ofconn *c)
{
    int error = stream_connect(c->stream);
    if (error == EAGAIN) {
        return;
    } else if (error) {
        VLOG_WARN_RL(&rl, "%s: connect failed (%s)", c->target,
                     strerror(error));
        disconnect(c, error, strerror(error));
        return;
    }
    c->connected = true;
    reconnect_connected(c->rc, time_msec());
    send_handshake(c);
}

void
ofconn_run(struct ofconn *c)
{
    switch (reconnect_run(c->rc, time_msec())) {
    case RECONNECT_CONNECT:
        if (!c->stream) {
            start_connect(c);
        }
        break;
    case RECONNECT_DISCONNECT:
        disconnect(c, ETIMEDOUT, c->connected ? "no response to echo request"
                                              : "connection timed out");
        break;
    case RECONNECT_PROBE:
        if (c->ready) {
            send_probe(c);
        }
        break;
    case RECONNECT_NONE:
        break;
    }
    if (c->stream && !c->connected) {
        finish_connect(c);
    }
    if (c->connected) {
        receive(c);
        flush(c);
    }
}

void
ofconn_wait(struct ofconn *c)
{
    if (c->stream && !c->connected) {
        stream_connect_wait(c->stream);
    } else if (c->connected) {
        stream_recv_wait(c->stream);
        if (c->tx_ofs < c->tx_len) {
            stream_send_wait(c->stream);
        }
    }
    poll_timer_wait_until(reconnect_wait(c->rc, time_msec()));
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

uint32_t
ofconn_alloc_xids(struct ofconn *c, uint32_t n)
{
    uint32_t first = c->next_user_xid;
    c->next_user_xid += n;
    return first;
}

int
ofconn_send(struct ofconn *c, const void *msg, size_t len)
{
    if (!c->ready) {
        return ENOTCONN;
    }
    int error = tx_append(c, msg, len);
    if (!error && c->tx_len - c->tx_ofs >= 65536) {
        flush(c);
    }
    return error;
}

size_t
ofconn_tx_backlog(const struct ofconn *c)
{
    return c->tx_len - c->tx_ofs;
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
