/*
 * udp: chand-guest's channel socket.  An ordinary nonblocking UDP socket
 * bound to the guest endpoint address and port, optionally tied to one
 * interface (SO_BINDTODEVICE: chand-guest's internal port on the guest
 * bridge, so that only what the bridge delivers there reaches it and what
 * it sends leaves there, whatever the routing table says).  It reads many
 * datagrams per call (recvmmsg) and hands each to a callback with its
 * source address; it sends one datagram at a time.
 *
 * The address is bound with IP_FREEBIND, so the socket can be opened
 * before the address is configured (or while it is briefly gone, e.g. when
 * a restarting ovs-vswitchd recreates the port).
 */
#ifndef UDP_H
#define UDP_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Datagrams read by one udp_receive() call, at most. */
#define UDP_BATCH 256

/* Largest datagram received whole; longer ones are dropped and counted
 * (chand frames never exceed the path MTU; this allows jumbo frames). */
#define UDP_MAX_DATAGRAM 9216

struct udp;

struct udp_stats {
    uint64_t rx_datagrams;      /* Datagrams received and handed on. */
    uint64_t rx_truncated;      /* Longer than UDP_MAX_DATAGRAM: dropped. */
    uint64_t rx_errors;         /* recvmmsg() errors other than EAGAIN. */
    uint64_t rx_bursts;         /* udp_receive() calls that got data. */
    uint64_t tx_datagrams;
    uint64_t tx_errors;
};

/* Opens a socket bound to 'ip':'port' (host order).  Returns 0 and stores
 * it in '*udpp' (the caller frees it with udp_close()), or a positive errno
 * and stores NULL. */
int udp_open(uint32_t ip, uint16_t port, struct udp **udpp);

void udp_close(struct udp *);

/* Ties the socket to interface 'ifname' (SO_BINDTODEVICE), or unties it if
 * 'ifname' is NULL or "".  Call it again after the interface is recreated:
 * the binding is by interface index.  Returns 0 or a positive errno. */
int udp_bind_device(struct udp *, const char *ifname);

/* The MTU of interface 'ifname', or 0 if there is no such interface (or
 * it cannot be read). */
unsigned int udp_if_mtu(const struct udp *, const char *ifname);

/* Called for each datagram received: its payload ('len' bytes at 'data',
 * borrowed for the call) and source address and port (host order). */
typedef void udp_input_func(const uint8_t *data, size_t len,
                            uint32_t src_ip, uint16_t src_port, void *aux);

/* Reads up to UDP_BATCH datagrams that are already queued and calls
 * 'input' for each.  Stores the number read in '*np'.  Returns 0 (even if
 * nothing was queued) or a positive errno for a receive error. */
int udp_receive(struct udp *, udp_input_func *input, void *aux, size_t *np);

/* Sends 'len' bytes at 'data' to 'ip':'port' (host order).  Returns 0 or a
 * positive errno (EAGAIN if the socket buffer is full: the datagram is
 * lost, as on the wire). */
int udp_send(struct udp *, uint32_t ip, uint16_t port, const void *data,
             size_t len);

/* Makes the next poll_block() wake when a datagram is queued. */
void udp_wait(struct udp *);

void udp_get_stats(const struct udp *, struct udp_stats *);

#endif /* udp.h */
