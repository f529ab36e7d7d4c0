/*
 * chan-port: the daemon side of Open vSwitch's "chand" port, the datapath
 * extension in ovs-patches/ (doc/design.md §6, path 2).
 *
 * With the patched Open vSwitch, a bridge port of type "chand" carries
 * frames between the userspace datapath and a local daemon together with
 * their pkt_mark, so channel frames take the datapath fast path (megaflow
 * cache) instead of OpenFlow PACKET_OUT / PACKET_IN.  Frames the daemon sends
 * enter the bridge with in_port=<the port> and the pkt_mark it chose; frames
 * the flows output to the port reach the daemon with their pkt_mark.
 *
 * Wire format.  ovs-vswitchd listens on a SOCK_SEQPACKET Unix socket per
 * port (Interface options:socket, default <OVS rundir>/<port>.chand; the
 * absolute path is in Interface status:socket) and accepts one daemon at a
 * time; a new connection replaces the old one.  Each datagram, in either
 * direction, is one Ethernet frame behind an 8-byte header, big-endian:
 *
 *     0   u8   version, CHAN_PORT_VERSION (1)
 *     1   u8   header length in bytes, CHAN_PORT_HDR_LEN (8)
 *     2   u16  flags, 0 (none defined)
 *     4   u32  pkt_mark (0: no mark)
 *     8   the frame: CHAN_PORT_MIN_FRAME..CHAN_PORT_MAX_FRAME bytes
 *
 * Every pkt_mark value is valid on the wire (0 means "no mark", as in OVS);
 * what a mark means is the flows' business.  Open vSwitch drops (and counts
 * in the Interface statistics) datagrams with another version, header
 * length or flags, and frames longer than the port's MTU + 18.
 *
 * The module has two layers:
 *
 *   - A pure codec, chan_port_encode_header() and chan_port_decode(): no
 *     I/O, no allocation, no logging; bounds-checked big-endian access.
 *
 *   - A connection, struct chan_port (opaque), for chand's poll loop: it
 *     connects to the port's socket (retrying with backoff, and again after
 *     ovs-vswitchd restarts or the port is re-created), queues frames and
 *     sends them in batches with one sendmmsg() call, receives batches with
 *     one recvmmsg() call, and keeps counters.  Everything is nonblocking:
 *     call chan_port_run() from the main loop and chan_port_wait() before
 *     poll_block().  Single-threaded, like poll-loop.
 *
 * Functions that act return 0 or a positive errno value; questions return
 * bool.  The codec's errors are 'enum chan_port_error' values instead, with
 * chan_port_strerror().
 */
#ifndef CHAN_PORT_H
#define CHAN_PORT_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wire constants. */
#define CHAN_PORT_VERSION 1
#define CHAN_PORT_HDR_LEN 8
#define CHAN_PORT_MIN_FRAME 14          /* An Ethernet header. */
#define CHAN_PORT_MAX_FRAME 65535       /* Open vSwitch's packet buffers are
                                         * at most this long. */

/* Frames per sendmmsg()/recvmmsg() call (Open vSwitch's NETDEV_MAX_BURST). */
#define CHAN_PORT_BATCH 32

/* Codec. */

enum chan_port_error {
    CHAN_PORT_OK = 0,
    CHAN_PORT_E_SHORT,          /* Datagram shorter than the header. */
    CHAN_PORT_E_VERSION,        /* Version is not CHAN_PORT_VERSION. */
    CHAN_PORT_E_HDR_LEN,        /* Header length is not CHAN_PORT_HDR_LEN. */
    CHAN_PORT_E_FLAGS,          /* Nonzero flags. */
    CHAN_PORT_E_FRAME_SHORT,    /* Frame shorter than CHAN_PORT_MIN_FRAME. */
    CHAN_PORT_E_FRAME_LONG,     /* Frame longer than CHAN_PORT_MAX_FRAME. */
    CHAN_PORT_E_TRUNCATED,      /* Datagram longer than the receive buffer
                                 * (reported by the connection layer). */
    CHAN_PORT_N_ERRORS
};

/* Returns a static English description of 'error' (0 or an enum
 * chan_port_error value); never NULL. */
const char *chan_port_strerror(int error);

/* Returns a static short name for 'error' suitable as a counter name
 * ("ok", "short", "version", "hdr_len", "flags", "frame_short",
 * "frame_long", "truncated", or "unknown"); never NULL. */
const char *chan_port_error_name(int error);

/* One frame and its mark.  'data' is borrowed: who owns it is stated by the
 * function that fills in or takes the struct. */
struct chan_port_frame {
    uint32_t pkt_mark;
    const uint8_t *data;
    size_t len;
};

/* Writes the header for a frame marked 'pkt_mark' into 'hdr'. */
void chan_port_encode_header(uint8_t hdr[CHAN_PORT_HDR_LEN],
                             uint32_t pkt_mark);

/* Decodes the 'len'-byte datagram at 'dgram'.  On success returns 0 and
 * fills '*frame', whose 'data' then points into 'dgram' (borrowed: valid as
 * long as 'dgram' is).  On error returns an enum chan_port_error and sets
 * '*frame' to all-zeros. */
enum chan_port_error chan_port_decode(const void *dgram, size_t len,
                                      struct chan_port_frame *frame);

/* Returns 0 if a frame of 'len' bytes may be sent, otherwise
 * CHAN_PORT_E_FRAME_SHORT or CHAN_PORT_E_FRAME_LONG. */
enum chan_port_error chan_port_check_frame_len(size_t len);

/* Connection. */

struct chan_port;

/* Called by chan_port_run() for each good frame received.  'frame' is
 * borrowed for the duration of the call.  The callback may queue frames with
 * chan_port_send() but must not call chan_port_recv_batch(),
 * chan_port_run() or chan_port_destroy() on the same port. */
typedef void chan_port_recv_func(uint32_t pkt_mark, const uint8_t *frame,
                                 size_t len, void *aux);

struct chan_port_stats {
    uint64_t tx_frames;         /* Frames handed to the kernel. */
    uint64_t tx_bytes;          /* Their frame bytes (headers excluded). */
    uint64_t tx_batches;        /* sendmmsg() calls that sent >= 1 frame. */
    uint64_t tx_dropped;        /* Not queued: queue full (ENOBUFS). */
    uint64_t tx_discarded;      /* Queued, then thrown away on
                                 * disconnection. */
    uint64_t tx_errors;         /* sendmmsg() failures other than EAGAIN. */
    uint64_t rx_frames;         /* Good frames received. */
    uint64_t rx_bytes;          /* Their frame bytes. */
    uint64_t rx_batches;        /* recvmmsg() calls that got >= 1 datagram. */
    uint64_t rx_bad;            /* Malformed datagrams dropped, total... */
    uint64_t rx_bad_by_error[CHAN_PORT_N_ERRORS]; /* ...and by cause. */
    uint64_t connects;          /* Connections established. */
    uint64_t connect_failures;  /* Failed connection attempts. */
    uint64_t disconnects;       /* Connections lost or closed. */
};

/* Creates a connection to the chand port socket at 'path' (copied), e.g.
 * "/var/run/openvswitch/chand0.chand"; paths longer than a sockaddr_un can
 * hold work too.  It connects on the next chan_port_run(), and reconnects
 * with lib/reconnect's backoff (250 ms doubling to 4 s) whenever the
 * connection fails or is lost.  If 'recv_cb' is nonnull, chan_port_run() receives frames and calls
 * it with 'aux'; if it is NULL, the caller receives with
 * chan_port_recv_batch().  The caller owns the result and frees it with
 * chan_port_destroy(). */
struct chan_port *chan_port_create(const char *path,
                                   chan_port_recv_func *recv_cb, void *aux);

/* Like chan_port_create(), for an already connected SOCK_SEQPACKET socket
 * 'fd' (e.g. one end of a socketpair), whose ownership passes to the new
 * port; 'name' (copied) is for logs.  Such a port never reconnects: once its
 * socket fails or its peer closes it, it stays disconnected. */
struct chan_port *chan_port_create_fd(int fd, const char *name,
                                      chan_port_recv_func *recv_cb,
                                      void *aux);

/* Closes the connection, discards queued frames and frees 'port'.  Accepts
 * NULL. */
void chan_port_destroy(struct chan_port *port);

/* Does the port's work: connects when due, sends queued frames, and, with a
 * receive callback, receives up to 8 batches and calls the callback for
 * each good frame. */
void chan_port_run(struct chan_port *port);

/* Arranges for poll_block() to wake when chan_port_run() has work: a
 * reconnection is due, frames arrived (or the connection closed), or the
 * socket has room for queued frames.  It always waits for incoming frames,
 * so a caller without a receive callback must call chan_port_recv_batch()
 * until it returns EAGAIN after every wake-up. */
void chan_port_wait(struct chan_port *port);

/* True while connected to the port. */
bool chan_port_is_connected(const struct chan_port *port);

/* Changes each time the connection is established or lost. */
unsigned int chan_port_get_seqno(const struct chan_port *port);

/* The path given to chan_port_create() or the name given to
 * chan_port_create_fd(). */
const char *chan_port_get_name(const struct chan_port *port);

/* Queues a copy of the 'len'-byte 'frame' (borrowed), marked 'pkt_mark'.
 * The queue is flushed with one sendmmsg() per CHAN_PORT_BATCH frames once
 * it holds that many, by chan_port_flush() and by chan_port_run().  Returns
 * 0; ENOTCONN if not connected (nothing queued, nothing counted); EINVAL if
 * 'len' is out of range (chan_port_check_frame_len()); or ENOBUFS if the
 * queue is full (the frame is dropped and counted in tx_dropped; the
 * channel's reliable delivery retransmits it). */
int chan_port_send(struct chan_port *port, uint32_t pkt_mark,
                   const void *frame, size_t len);

/* Sends queued frames, in order, as long as the socket takes them.  Returns
 * 0 if the queue is empty afterwards, EAGAIN if the socket is full (the rest
 * stays queued; chan_port_wait() wakes when there is room), or ENOTCONN if
 * not connected (or the connection just failed: queued frames are
 * discarded and counted in tx_discarded). */
int chan_port_flush(struct chan_port *port);

/* Sends the 'n' frames in 'frames' (borrowed; no copy, no queue) with as
 * few sendmmsg() calls as possible, after flushing the queue so that order
 * is kept.  Stores in '*n_sent' how many were sent, in order from the first.
 * Returns 0 if all were sent, EAGAIN if the socket filled up (or the queue
 * could not be flushed: then '*n_sent' is 0), EINVAL if a frame's length is
 * out of range (frames before it were sent), or ENOTCONN. */
int chan_port_send_batch(struct chan_port *port,
                         const struct chan_port_frame *frames, size_t n,
                         size_t *n_sent);

/* Receives at most 'max' (capped at CHAN_PORT_BATCH) datagrams with one
 * recvmmsg() call and stores the good frames in 'frames', their number in
 * '*n'.  Malformed datagrams are skipped and counted.  The frames' data
 * point into the port's receive buffers (owned by the port): they stay valid
 * until the next chan_port_recv_batch(), chan_port_run() or
 * chan_port_destroy().  Returns 0 if at least one datagram was read ('*n'
 * may still be 0 if all were malformed), EAGAIN if none was waiting, or
 * ENOTCONN if not connected (including when the peer just closed the
 * connection or it failed: the port then reconnects later). */
int chan_port_recv_batch(struct chan_port *port,
                         struct chan_port_frame *frames, size_t max,
                         size_t *n);

/* Number of frames waiting in the send queue. */
size_t chan_port_queued(const struct chan_port *port);

/* Copies the port's counters into '*stats'. */
void chan_port_get_stats(const struct chan_port *port,
                         struct chan_port_stats *stats);

#endif /* chan-port.h */
