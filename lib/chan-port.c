/* Copyright (c) 2026 The chand authors.  See chan-port.h. */

#include <config.h>
#include "chan-port.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "packets.h"
#include "poll-loop.h"
#include "reconnect.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(chan_port);

/* Header field offsets. */
#define OFS_VERSION 0
#define OFS_HDR_LEN 1
#define OFS_FLAGS 2
#define OFS_PKT_MARK 4

/* Reconnection backoff, in ms. */
#define CHAN_PORT_BACKOFF_MIN 250
#define CHAN_PORT_BACKOFF_MAX 4000

/* Send queue limits. */
#define CHAN_PORT_TXQ_MAX_FRAMES 1024
#define CHAN_PORT_TXQ_MAX_BYTES (4u * 1024 * 1024)

/* Kernel send buffer asked for (capped by net.core.wmem_max unless the
 * process may use SO_SNDBUFFORCE). */
#define CHAN_PORT_SNDBUF (4 * 1024 * 1024)

/* Batches chan_port_run() receives per call, at most. */
#define CHAN_PORT_RUN_BATCHES 8

/* One receive buffer: a header and the longest frame. */
#define RX_SLOT (CHAN_PORT_HDR_LEN + CHAN_PORT_MAX_FRAME)

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

/* A queued datagram: 'len' bytes at 'ofs' in the port's 'txbuf'. */
struct txq_entry {
    size_t ofs;
    size_t len;
};

struct chan_port {
    char *name;                 /* Socket path, or a name for logs. */
    struct reconnect *rc;       /* When to connect; NULL for
                                 * chan_port_create_fd(). */
    int fd;                     /* Connected socket, or -1. */
    unsigned int seqno;

    chan_port_recv_func *recv_cb;
    void *aux;

    /* Send queue: datagrams (header + frame) packed in 'txbuf', described
     * by txq[txq_head..txq_n). */
    uint8_t *txbuf;
    size_t txbuf_len, txbuf_cap;
    struct txq_entry *txq;
    size_t txq_head, txq_n, txq_cap;

    /* Receive buffers: CHAN_PORT_BATCH slots of RX_SLOT bytes, allocated on
     * first use. */
    uint8_t *rxbuf;

    struct chan_port_stats stats;
};

/* Codec. */

static const char *const error_names[CHAN_PORT_N_ERRORS] = {
    [CHAN_PORT_OK] = "ok",
    [CHAN_PORT_E_SHORT] = "short",
    [CHAN_PORT_E_VERSION] = "version",
    [CHAN_PORT_E_HDR_LEN] = "hdr_len",
    [CHAN_PORT_E_FLAGS] = "flags",
    [CHAN_PORT_E_FRAME_SHORT] = "frame_short",
    [CHAN_PORT_E_FRAME_LONG] = "frame_long",
    [CHAN_PORT_E_TRUNCATED] = "truncated",
};

const char *
chan_port_strerror(int error)
{
    switch (error) {
    case CHAN_PORT_OK:
        return "success";
    case CHAN_PORT_E_SHORT:
        return "datagram shorter than the chand port header";
    case CHAN_PORT_E_VERSION:
        return "unknown chand port header version";
    case CHAN_PORT_E_HDR_LEN:
        return "bad chand port header length";
    case CHAN_PORT_E_FLAGS:
        return "unknown chand port header flags";
    case CHAN_PORT_E_FRAME_SHORT:
        return "frame shorter than an Ethernet header";
    case CHAN_PORT_E_FRAME_LONG:
        return "frame longer than 65535 bytes";
    case CHAN_PORT_E_TRUNCATED:
        return "datagram longer than the receive buffer";
    default:
        return "unknown chand port error";
    }
}

const char *
chan_port_error_name(int error)
{
    return (error >= 0 && error < CHAN_PORT_N_ERRORS
            ? error_names[error] : "unknown");
}

void
chan_port_encode_header(uint8_t hdr[CHAN_PORT_HDR_LEN], uint32_t pkt_mark)
{
    hdr[OFS_VERSION] = CHAN_PORT_VERSION;
    hdr[OFS_HDR_LEN] = CHAN_PORT_HDR_LEN;
    pkt_put_be16(hdr + OFS_FLAGS, 0);
    pkt_put_be32(hdr + OFS_PKT_MARK, pkt_mark);
}

enum chan_port_error
chan_port_check_frame_len(size_t len)
{
    return (len < CHAN_PORT_MIN_FRAME ? CHAN_PORT_E_FRAME_SHORT
            : len > CHAN_PORT_MAX_FRAME ? CHAN_PORT_E_FRAME_LONG
            : CHAN_PORT_OK);
}

enum chan_port_error
chan_port_decode(const void *dgram_, size_t len, struct chan_port_frame *frame)
{
    const uint8_t *dgram = dgram_;
    enum chan_port_error error;

    memset(frame, 0, sizeof *frame);
    if (len < CHAN_PORT_HDR_LEN) {
        return CHAN_PORT_E_SHORT;
    }
    if (dgram[OFS_VERSION] != CHAN_PORT_VERSION) {
        return CHAN_PORT_E_VERSION;
    }
    if (dgram[OFS_HDR_LEN] != CHAN_PORT_HDR_LEN) {
        return CHAN_PORT_E_HDR_LEN;
    }
    if (pkt_get_be16(dgram + OFS_FLAGS)) {
        return CHAN_PORT_E_FLAGS;
    }
    error = chan_port_check_frame_len(len - CHAN_PORT_HDR_LEN);
    if (error) {
        return error;
    }
    frame->pkt_mark = pkt_get_be32(dgram + OFS_PKT_MARK);
    frame->data = dgram + CHAN_PORT_HDR_LEN;
    frame->len = len - CHAN_PORT_HDR_LEN;
    return CHAN_PORT_OK;
}

/* Connection. */

static struct chan_port *
chan_port_alloc(const char *name, chan_port_recv_func *recv_cb, void *aux)
{
    struct chan_port *port = xzalloc(sizeof *port);
    port->name = xstrdup(name);
    port->fd = -1;
    port->recv_cb = recv_cb;
    port->aux = aux;
    return port;
}

struct chan_port *
chan_port_create(const char *path, chan_port_recv_func *recv_cb, void *aux)
{
    struct chan_port *port = chan_port_alloc(path, recv_cb, aux);
    port->rc = reconnect_create(time_msec());
    reconnect_set_name(port->rc, port->name);
    reconnect_set_backoff(port->rc, CHAN_PORT_BACKOFF_MIN,
                          CHAN_PORT_BACKOFF_MAX);
    reconnect_set_probe_interval(port->rc, 0);
    reconnect_enable(port->rc, time_msec());
    return port;
}

static void
set_sndbuf(int fd)
{
    int size = CHAN_PORT_SNDBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size)) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
}

static void
set_connected(struct chan_port *port, int fd)
{
    port->fd = fd;
    port->seqno++;
    port->stats.connects++;
    set_sndbuf(fd);
}

struct chan_port *
chan_port_create_fd(int fd, const char *name, chan_port_recv_func *recv_cb,
                    void *aux)
{
    struct chan_port *port = chan_port_alloc(name, recv_cb, aux);
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) {
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
    set_connected(port, fd);
    return port;
}

static void
txq_clear(struct chan_port *port)
{
    port->txq_head = port->txq_n = 0;
    port->txbuf_len = 0;
}

size_t
chan_port_queued(const struct chan_port *port)
{
    return port->txq_n - port->txq_head;
}

static void
disconnect(struct chan_port *port, const char *reason)
{
    if (port->fd < 0) {
        return;
    }
    VLOG_INFO("%s: disconnected (%s)", port->name, reason);
    close(port->fd);
    port->fd = -1;
    port->seqno++;
    port->stats.disconnects++;
    port->stats.tx_discarded += chan_port_queued(port);
    txq_clear(port);
    if (port->rc) {
        reconnect_disconnected(port->rc, time_msec(), 0);
    }
}

void
chan_port_destroy(struct chan_port *port)
{
    if (port) {
        if (port->fd >= 0) {
            close(port->fd);
        }
        reconnect_destroy(port->rc);
        free(port->name);
        free(port->txbuf);
        free(port->txq);
        free(port->rxbuf);
        free(port);
    }
}

/* Connects 'fd' to the Unix socket at 'path'.  A path too long for
 * sockaddr_un is reached through /proc/self/fd/<dirfd>/<basename>.
 * Returns 0 or a positive errno value. */
static int
connect_path(int fd, const char *path)
{
    struct sockaddr_un sun;
    int dirfd = -1;
    int error = 0;

    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) < sizeof sun.sun_path) {
        memcpy(sun.sun_path, path, strlen(path));
    } else {
        const char *slash = strrchr(path, '/');
        char *dir;

        if (!slash || !slash[1]) {
            return ENAMETOOLONG;
        }
        dir = slash == path ? strdup("/") : strndup(path, slash - path);
        if (!dir) {
            return ENOMEM;
        }
        dirfd = open(dir, O_DIRECTORY | O_PATH | O_CLOEXEC);
        error = dirfd < 0 ? errno : 0;
        free(dir);
        if (error) {
            return error;
        }
        int n = snprintf(sun.sun_path, sizeof sun.sun_path,
                         "/proc/self/fd/%d/%s", dirfd, slash + 1);
        if (n < 0 || (size_t) n >= sizeof sun.sun_path) {
            close(dirfd);
            return ENAMETOOLONG;
        }
    }
    if (connect(fd, (struct sockaddr *) &sun, sizeof sun) < 0) {
        error = errno;
    }
    if (dirfd >= 0) {
        close(dirfd);
    }
    return error;
}

static void
try_connect(struct chan_port *port)
{
    int fd, error;

    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = errno;
    } else {
        error = connect_path(fd, port->name);
        if (error == EINPROGRESS) {
            /* Unix sockets connect at once or fail; EINPROGRESS should not
             * happen, but treat it like a full backlog. */
            error = EAGAIN;
        }
    }
    if (!error) {
        set_connected(port, fd);
        reconnect_connected(port->rc, time_msec());
        VLOG_INFO("%s: connected", port->name);
        return;
    }

    if (fd >= 0) {
        close(fd);
    }
    port->stats.connect_failures++;
    VLOG_WARN_RL(&rl, "%s: connect failed (%s)%s", port->name,
                 strerror(error),
                 error == ENOENT || error == ECONNREFUSED
                 ? "; is ovs-vswitchd running with the chand port?" : "");
    reconnect_connect_failed(port->rc, time_msec(), error);
}

bool
chan_port_is_connected(const struct chan_port *port)
{
    return port->fd >= 0;
}

unsigned int
chan_port_get_seqno(const struct chan_port *port)
{
    return port->seqno;
}

const char *
chan_port_get_name(const struct chan_port *port)
{
    return port->name;
}

void
chan_port_get_stats(const struct chan_port *port,
                    struct chan_port_stats *stats)
{
    *stats = port->stats;
}

/* Sending. */

/* Moves the unsent part of the queue to the front of its buffers. */
static void
txq_compact(struct chan_port *port)
{
    if (!port->txq_head) {
        return;
    }
    if (port->txq_head == port->txq_n) {
        txq_clear(port);
        return;
    }
    size_t base = port->txq[port->txq_head].ofs;
    size_t n = port->txq_n - port->txq_head;
    memmove(port->txbuf, port->txbuf + base, port->txbuf_len - base);
    port->txbuf_len -= base;
    memmove(port->txq, port->txq + port->txq_head, n * sizeof *port->txq);
    for (size_t i = 0; i < n; i++) {
        port->txq[i].ofs -= base;
    }
    port->txq_head = 0;
    port->txq_n = n;
}

/* Sends the 'n' datagrams described by 'iovs' (one iovec each) with as few
 * sendmmsg() calls as possible.  Stores the number sent in '*n_sent' and
 * their frame bytes in '*bytes_sent'.  Returns 0, EAGAIN (socket full),
 * EMSGSIZE (datagram '*n_sent' can never be sent) or another errno value
 * (the connection is broken). */
static int
send_iovs(struct chan_port *port, struct iovec *iovs, size_t n,
          size_t *n_sent)
{
    struct mmsghdr msgs[CHAN_PORT_BATCH];

    *n_sent = 0;
    while (*n_sent < n) {
        size_t k = n - *n_sent < CHAN_PORT_BATCH ? n - *n_sent
                                                  : CHAN_PORT_BATCH;
        memset(msgs, 0, k * sizeof msgs[0]);
        for (size_t i = 0; i < k; i++) {
            msgs[i].msg_hdr.msg_iov = &iovs[*n_sent + i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }

        int retval = sendmmsg(port->fd, msgs, k, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (retval > 0) {
            for (int i = 0; i < retval; i++) {
                port->stats.tx_bytes += (iovs[*n_sent + i].iov_len
                                         - CHAN_PORT_HDR_LEN);
            }
            *n_sent += retval;
            port->stats.tx_frames += retval;
            port->stats.tx_batches++;
        } else if (retval < 0 && errno == EINTR) {
            continue;
        } else {
            int error = retval < 0 ? errno : EAGAIN;
            return error == EWOULDBLOCK ? EAGAIN : error;
        }
    }
    return 0;
}

/* Handles 'error' from send_iovs(): counts it and disconnects on a broken
 * connection.  Returns the error to report. */
static int
send_error(struct chan_port *port, int error)
{
    if (error == EAGAIN || error == EMSGSIZE) {
        if (error == EMSGSIZE) {
            port->stats.tx_errors++;
        }
        return error;
    }
    port->stats.tx_errors++;
    VLOG_WARN_RL(&rl, "%s: send failed (%s)", port->name, strerror(error));
    disconnect(port, strerror(error));
    return ENOTCONN;
}

int
chan_port_flush(struct chan_port *port)
{
    struct iovec iovs[CHAN_PORT_BATCH];

    if (port->fd < 0) {
        return ENOTCONN;
    }
    while (port->txq_head < port->txq_n) {
        size_t k = port->txq_n - port->txq_head;
        size_t n_sent;

        if (k > CHAN_PORT_BATCH) {
            k = CHAN_PORT_BATCH;
        }
        for (size_t i = 0; i < k; i++) {
            const struct txq_entry *e = &port->txq[port->txq_head + i];
            iovs[i].iov_base = port->txbuf + e->ofs;
            iovs[i].iov_len = e->len;
        }
        int error = send_iovs(port, iovs, k, &n_sent);
        port->txq_head += n_sent;
        if (error == EMSGSIZE) {
            /* Too big for the socket buffer: it never will fit. */
            send_error(port, error);
            port->txq_head++;
            continue;
        } else if (error) {
            error = send_error(port, error);
            if (error == EAGAIN) {
                txq_compact(port);
            }
            return error;
        }
    }
    txq_clear(port);
    return 0;
}

/* Makes room in the send queue for one more datagram of 'len' bytes.
 * Returns false if the queue is full. */
static bool
txq_reserve(struct chan_port *port, size_t len)
{
    if (chan_port_queued(port) >= CHAN_PORT_TXQ_MAX_FRAMES
        || port->txbuf_len - (port->txq_head < port->txq_n
                              ? port->txq[port->txq_head].ofs
                              : port->txbuf_len) + len
           > CHAN_PORT_TXQ_MAX_BYTES) {
        return false;
    }
    if (port->txq_n == port->txq_cap
        || port->txbuf_len + len > port->txbuf_cap) {
        txq_compact(port);
    }
    if (port->txq_n == port->txq_cap) {
        size_t cap = port->txq_cap ? port->txq_cap * 2 : 64;
        struct txq_entry *txq = realloc(port->txq, cap * sizeof *txq);
        if (!txq) {
            return false;
        }
        port->txq = txq;
        port->txq_cap = cap;
    }
    if (port->txbuf_len + len > port->txbuf_cap) {
        size_t cap = port->txbuf_cap ? port->txbuf_cap : 65536;
        while (cap < port->txbuf_len + len) {
            cap *= 2;
        }
        uint8_t *buf = realloc(port->txbuf, cap);
        if (!buf) {
            return false;
        }
        port->txbuf = buf;
        port->txbuf_cap = cap;
    }
    return true;
}

int
chan_port_send(struct chan_port *port, uint32_t pkt_mark, const void *frame,
               size_t len)
{
    if (port->fd < 0) {
        return ENOTCONN;
    }
    if (chan_port_check_frame_len(len)) {
        return EINVAL;
    }
    size_t dgram_len = CHAN_PORT_HDR_LEN + len;
    if (!txq_reserve(port, dgram_len)) {
        port->stats.tx_dropped++;
        return ENOBUFS;
    }

    uint8_t *p = port->txbuf + port->txbuf_len;
    chan_port_encode_header(p, pkt_mark);
    memcpy(p + CHAN_PORT_HDR_LEN, frame, len);
    port->txq[port->txq_n].ofs = port->txbuf_len;
    port->txq[port->txq_n].len = dgram_len;
    port->txq_n++;
    port->txbuf_len += dgram_len;

    if (chan_port_queued(port) >= CHAN_PORT_BATCH) {
        chan_port_flush(port);
    }
    return 0;
}

int
chan_port_send_batch(struct chan_port *port,
                     const struct chan_port_frame *frames, size_t n,
                     size_t *n_sent)
{
    uint8_t hdrs[CHAN_PORT_BATCH][CHAN_PORT_HDR_LEN];
    struct iovec iovs[CHAN_PORT_BATCH][2];
    struct mmsghdr msgs[CHAN_PORT_BATCH];

    *n_sent = 0;
    int error = chan_port_flush(port);
    if (error) {
        return error;
    }
    while (*n_sent < n) {
        size_t k = 0;

        /* Build up to one batch, stopping before a bad frame. */
        while (k < CHAN_PORT_BATCH && *n_sent + k < n) {
            const struct chan_port_frame *f = &frames[*n_sent + k];
            if (chan_port_check_frame_len(f->len)) {
                break;
            }
            chan_port_encode_header(hdrs[k], f->pkt_mark);
            iovs[k][0].iov_base = hdrs[k];
            iovs[k][0].iov_len = CHAN_PORT_HDR_LEN;
            iovs[k][1].iov_base = (void *) f->data;
            iovs[k][1].iov_len = f->len;
            memset(&msgs[k], 0, sizeof msgs[k]);
            msgs[k].msg_hdr.msg_iov = iovs[k];
            msgs[k].msg_hdr.msg_iovlen = 2;
            k++;
        }
        if (!k) {
            return EINVAL;
        }

        size_t done = 0;
        while (done < k) {
            int retval = sendmmsg(port->fd, &msgs[done], k - done,
                                  MSG_DONTWAIT | MSG_NOSIGNAL);
            if (retval > 0) {
                for (int i = 0; i < retval; i++) {
                    port->stats.tx_bytes += iovs[done + i][1].iov_len;
                }
                done += retval;
                *n_sent += retval;
                port->stats.tx_frames += retval;
                port->stats.tx_batches++;
            } else if (retval < 0 && errno == EINTR) {
                continue;
            } else {
                error = retval < 0 ? errno : EAGAIN;
                return send_error(port, error == EWOULDBLOCK ? EAGAIN
                                                             : error);
            }
        }
    }
    return 0;
}

/* Receiving. */

/* Receives up to 'max' datagrams with one recvmmsg() call and decodes them
 * into 'frames' ('*n' good ones).  Stores the number of datagrams read in
 * '*n_read'.  Returns 0, EAGAIN or ENOTCONN, as chan_port_recv_batch(). */
static int
recv__(struct chan_port *port, struct chan_port_frame *frames, size_t max,
       size_t *n, size_t *n_read)
{
    struct mmsghdr msgs[CHAN_PORT_BATCH];
    struct iovec iovs[CHAN_PORT_BATCH];
    bool eof = false;
    int retval;

    *n = *n_read = 0;
    if (port->fd < 0) {
        return ENOTCONN;
    }
    if (!port->rxbuf) {
        port->rxbuf = malloc((size_t) CHAN_PORT_BATCH * RX_SLOT);
        if (!port->rxbuf) {
            return ENOMEM;
        }
    }
    if (max > CHAN_PORT_BATCH) {
        max = CHAN_PORT_BATCH;
    }
    if (!max) {
        return 0;
    }

    memset(msgs, 0, max * sizeof msgs[0]);
    for (size_t i = 0; i < max; i++) {
        iovs[i].iov_base = port->rxbuf + i * RX_SLOT;
        iovs[i].iov_len = RX_SLOT;
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    do {
        retval = recvmmsg(port->fd, msgs, max, MSG_DONTWAIT, NULL);
    } while (retval < 0 && errno == EINTR);
    if (retval < 0) {
        int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK) {
            return EAGAIN;
        }
        disconnect(port, strerror(error));
        return ENOTCONN;
    }

    for (int i = 0; i < retval; i++) {
        size_t len = msgs[i].msg_len;
        enum chan_port_error error;

        if (!len) {
            /* Zero bytes from a SOCK_SEQPACKET socket: the peer closed the
             * connection (the protocol has no empty datagrams). */
            eof = true;
            break;
        }
        (*n_read)++;
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            error = CHAN_PORT_E_TRUNCATED;
        } else {
            error = chan_port_decode(iovs[i].iov_base, len, &frames[*n]);
        }
        if (error) {
            port->stats.rx_bad++;
            port->stats.rx_bad_by_error[error]++;
            VLOG_WARN_RL(&rl, "%s: dropped %zu-byte datagram (%s)",
                         port->name, len, chan_port_strerror(error));
            continue;
        }
        port->stats.rx_frames++;
        port->stats.rx_bytes += frames[*n].len;
        (*n)++;
    }
    if (*n_read) {
        port->stats.rx_batches++;
    }
    if (eof) {
        disconnect(port, "closed by ovs-vswitchd");
        if (!*n_read) {
            return ENOTCONN;
        }
    }
    return 0;
}

int
chan_port_recv_batch(struct chan_port *port, struct chan_port_frame *frames,
                     size_t max, size_t *n)
{
    size_t n_read;
    return recv__(port, frames, max, n, &n_read);
}

void
chan_port_run(struct chan_port *port)
{
    if (port->fd < 0) {
        if (!port->rc
            || reconnect_run(port->rc, time_msec()) != RECONNECT_CONNECT) {
            return;
        }
        reconnect_connecting(port->rc, time_msec());
        try_connect(port);
        if (port->fd < 0) {
            return;
        }
    }

    chan_port_flush(port);
    if (port->recv_cb) {
        struct chan_port_frame frames[CHAN_PORT_BATCH];

        for (int b = 0; b < CHAN_PORT_RUN_BATCHES; b++) {
            size_t n, n_read;
            if (recv__(port, frames, CHAN_PORT_BATCH, &n, &n_read)) {
                break;
            }
            for (size_t i = 0; i < n; i++) {
                port->recv_cb(frames[i].pkt_mark, frames[i].data,
                              frames[i].len, port->aux);
            }
            if (n_read < CHAN_PORT_BATCH) {
                break;
            }
        }
    }
}

void
chan_port_wait(struct chan_port *port)
{
    if (port->fd < 0) {
        if (port->rc) {
            poll_timer_wait_until(reconnect_wait(port->rc, time_msec()));
        }
        return;
    }
    poll_fd_wait(port->fd, chan_port_queued(port) ? POLLIN | POLLOUT
                                                  : POLLIN);
}
