/* chand-guest's channel socket: see udp.h. */

#include <config.h>
#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "poll-loop.h"

struct udp {
    int fd;
    struct udp_stats stats;

    /* Receive buffers for one recvmmsg() call. */
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iovs[UDP_BATCH];
    struct sockaddr_in addrs[UDP_BATCH];
    uint8_t bufs[UDP_BATCH][UDP_MAX_DATAGRAM];
};

int
udp_open(uint32_t ip, uint16_t port, struct udp **udpp)
{
    struct sockaddr_in sin = {
        .sin_family = AF_INET,
        .sin_port = htons(port),
        .sin_addr.s_addr = htonl(ip),
    };
    int one = 1;
    int rcvbuf = 4 * 1024 * 1024;
    struct udp *udp;
    int fd, error;

    *udpp = NULL;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return errno;
    }
    /* Best effort: a bigger buffer absorbs bursts of a window of frames. */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) < 0
        || bind(fd, (struct sockaddr *) &sin, sizeof sin) < 0) {
        error = errno;
        close(fd);
        return error;
    }
    udp = calloc(1, sizeof *udp);
    if (!udp) {
        close(fd);
        return ENOMEM;
    }
    udp->fd = fd;
    *udpp = udp;
    return 0;
}

void
udp_close(struct udp *udp)
{
    if (udp) {
        close(udp->fd);
        free(udp);
    }
}

int
udp_bind_device(struct udp *udp, const char *ifname)
{
    const char *name = ifname ? ifname : "";

    if (setsockopt(udp->fd, SOL_SOCKET, SO_BINDTODEVICE, name,
                   strlen(name)) < 0) {
        return errno;
    }
    return 0;
}

unsigned int
udp_if_mtu(const struct udp *udp, const char *ifname)
{
    struct ifreq ifr;

    if (!ifname || !*ifname || strlen(ifname) >= sizeof ifr.ifr_name) {
        return 0;
    }
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(udp->fd, SIOCGIFMTU, &ifr) < 0 || ifr.ifr_mtu <= 0) {
        return 0;
    }
    return ifr.ifr_mtu;
}

int
udp_receive(struct udp *udp, udp_input_func *input, void *aux, size_t *np)
{
    int n;

    *np = 0;
    for (int i = 0; i < UDP_BATCH; i++) {
        udp->iovs[i].iov_base = udp->bufs[i];
        udp->iovs[i].iov_len = sizeof udp->bufs[i];
        memset(&udp->msgs[i], 0, sizeof udp->msgs[i]);
        udp->msgs[i].msg_hdr.msg_iov = &udp->iovs[i];
        udp->msgs[i].msg_hdr.msg_iovlen = 1;
        udp->msgs[i].msg_hdr.msg_name = &udp->addrs[i];
        udp->msgs[i].msg_hdr.msg_namelen = sizeof udp->addrs[i];
    }
    do {
        n = recvmmsg(udp->fd, udp->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        udp->stats.rx_errors++;
        return errno;
    }
    if (n > 0) {
        udp->stats.rx_bursts++;
    }
    for (int i = 0; i < n; i++) {
        const struct msghdr *mh = &udp->msgs[i].msg_hdr;
        const struct sockaddr_in *from = &udp->addrs[i];

        if (mh->msg_flags & MSG_TRUNC) {
            udp->stats.rx_truncated++;
            continue;
        }
        if (mh->msg_namelen < sizeof *from || from->sin_family != AF_INET) {
            udp->stats.rx_errors++;
            continue;
        }
        udp->stats.rx_datagrams++;
        input(udp->bufs[i], udp->msgs[i].msg_len,
              ntohl(from->sin_addr.s_addr), ntohs(from->sin_port), aux);
    }
    *np = n;
    return 0;
}

int
udp_send(struct udp *udp, uint32_t ip, uint16_t port, const void *data,
         size_t len)
{
    struct sockaddr_in sin = {
        .sin_family = AF_INET,
        .sin_port = htons(port),
        .sin_addr.s_addr = htonl(ip),
    };
    ssize_t n;

    do {
        n = sendto(udp->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                   (struct sockaddr *) &sin, sizeof sin);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        udp->stats.tx_errors++;
        return errno;
    }
    udp->stats.tx_datagrams++;
    return 0;
}

void
udp_wait(struct udp *udp)
{
    poll_fd_wait(udp->fd, POLLIN);
}

void
udp_get_stats(const struct udp *udp, struct udp_stats *stats)
{
    *stats = udp->stats;
}
