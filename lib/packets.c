/* packets: Ethernet / 802.1Q / IPv4 / UDP build and parse.  See packets.h. */

#include <config.h>
#include "packets.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

bool
eth_addr_equals(const struct eth_addr *a, const struct eth_addr *b)
{
    return !memcmp(a->ea, b->ea, ETH_ADDR_LEN);
}

bool
eth_addr_is_zero(const struct eth_addr *ea)
{
    static const struct eth_addr zero;
    return eth_addr_equals(ea, &zero);
}

bool
eth_addr_is_multicast(const struct eth_addr *ea)
{
    return (ea->ea[0] & 0x01) != 0;
}

bool
eth_addr_is_local(const struct eth_addr *ea)
{
    return (ea->ea[0] & 0x02) != 0;
}

char *
eth_addr_to_string(const struct eth_addr *ea, char buf[ETH_ADDR_STRLEN])
{
    snprintf(buf, ETH_ADDR_STRLEN, ETH_ADDR_FMT, ETH_ADDR_ARGS(*ea));
    return buf;
}

bool
eth_addr_from_string(const char *s, struct eth_addr *ea)
{
    for (int i = 0; i < ETH_ADDR_LEN; i++) {
        int hi = hexit_value(s[0]);
        int lo = hi >= 0 ? hexit_value(s[1]) : -1;
        if (lo < 0) {
            return false;
        }
        ea->ea[i] = hi << 4 | lo;
        s += 2;
        if (i < ETH_ADDR_LEN - 1) {
            if (*s != ':') {
                return false;
            }
            s++;
        }
    }
    return *s == '\0';
}

char *
ip_to_string(uint32_t ip, char buf[IP_STRLEN])
{
    snprintf(buf, IP_STRLEN, IP_FMT, IP_ARGS(ip));
    return buf;
}

bool
ip_from_string(const char *s, uint32_t *ip)
{
    uint32_t addr = 0;

    for (int i = 0; i < 4; i++) {
        unsigned int part = 0;
        int n = 0;

        while (s[n] >= '0' && s[n] <= '9') {
            if (n >= 3) {
                return false;
            }
            part = part * 10 + (s[n] - '0');
            n++;
        }
        if (!n || part > 255 || (n > 1 && s[0] == '0')) {
            return false;
        }
        addr = addr << 8 | part;
        s += n;
        if (i < 3) {
            if (*s != '.') {
                return false;
            }
            s++;
        }
    }
    if (*s != '\0') {
        return false;
    }
    *ip = addr;
    return true;
}

uint32_t
pkt_csum_add(uint32_t sum, const void *data_, size_t n)
{
    const uint8_t *data = data_;
    size_t i;

    for (i = 0; i + 1 < n; i += 2) {
        sum += pkt_get_be16(data + i);
        /* Fold early so that large buffers cannot overflow 32 bits. */
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if (i < n) {
        sum += (uint32_t) data[i] << 8;
    }
    return sum;
}

uint16_t
pkt_csum_finish(uint32_t sum)
{
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return ~sum & 0xffff;
}

uint16_t
pkt_csum(const void *data, size_t n)
{
    return pkt_csum_finish(pkt_csum_add(0, data, n));
}

static const struct {
    const char *name;
    const char *text;
} pkt_errors[PKT_N_ERRORS] = {
    [PKT_OK] = { "ok", "success" },
    [PKT_ERR_NOSPACE] = { "nospace", "buffer too small for frame" },
    [PKT_ERR_INVALID] = { "invalid", "invalid frame parameters" },
    [PKT_ERR_ETH_TRUNC] = { "eth_trunc", "truncated Ethernet header" },
    [PKT_ERR_VLAN_TRUNC] = { "vlan_trunc", "truncated 802.1Q tag" },
    [PKT_ERR_ETH_TYPE] = { "eth_type", "ethertype is not IPv4" },
    [PKT_ERR_VLAN_DOUBLE] = { "vlan_double", "more than one VLAN tag" },
    [PKT_ERR_IP_TRUNC] = { "ip_trunc", "truncated IPv4 header" },
    [PKT_ERR_IP_VERSION] = { "ip_version", "IP version is not 4" },
    [PKT_ERR_IP_IHL] = { "ip_ihl", "IPv4 header length below 20 bytes" },
    [PKT_ERR_IP_OPTIONS] = { "ip_options", "IPv4 options not accepted" },
    [PKT_ERR_IP_LEN] = { "ip_len",
                         "IPv4 total length inconsistent with frame" },
    [PKT_ERR_IP_CSUM] = { "ip_csum", "bad IPv4 header checksum" },
    [PKT_ERR_IP_FRAG] = { "ip_frag", "IPv4 fragment" },
    [PKT_ERR_IP_PROTO] = { "ip_proto", "IP protocol is not UDP" },
    [PKT_ERR_UDP_TRUNC] = { "udp_trunc", "truncated UDP header" },
    [PKT_ERR_UDP_LEN] = { "udp_len",
                          "UDP length inconsistent with IPv4 length" },
    [PKT_ERR_UDP_CSUM] = { "udp_csum", "bad UDP checksum" },
    [PKT_ERR_UDP_NO_CSUM] = { "udp_no_csum", "UDP checksum missing" },
};

const char *
pkt_strerror(enum pkt_error error)
{
    return (unsigned int) error < PKT_N_ERRORS
           ? pkt_errors[error].text : "unknown packet error";
}

const char *
pkt_error_name(enum pkt_error error)
{
    return (unsigned int) error < PKT_N_ERRORS
           ? pkt_errors[error].name : "unknown";
}

/* Returns the UDP checksum for the 'udp_len' bytes at 'udp' (UDP header
 * with its checksum field included as stored) and the pseudo-header. */
static uint16_t
udp_csum(uint32_t ip_src, uint32_t ip_dst, const uint8_t *udp, size_t udp_len)
{
    uint8_t pseudo[12];

    pkt_put_be32(pseudo, ip_src);
    pkt_put_be32(pseudo + 4, ip_dst);
    pseudo[8] = 0;
    pseudo[9] = IP_PROTO_UDP;
    pkt_put_be16(pseudo + 10, udp_len);
    return pkt_csum_finish(pkt_csum_add(pkt_csum_add(0, pseudo,
                                                     sizeof pseudo),
                                        udp, udp_len));
}

size_t
pkt_udp_frame_len(size_t payload_len, bool vlan)
{
    return (ETH_HEADER_LEN + (vlan ? VLAN_HEADER_LEN : 0)
            + IP_HEADER_LEN + UDP_HEADER_LEN + payload_len);
}

enum pkt_error
pkt_udp_build(const struct pkt_udp *pkt, uint8_t *buf, size_t size,
              size_t *lenp)
{
    if (pkt->payload_len > PKT_MAX_UDP_PAYLOAD
        || (pkt->payload_len && !pkt->payload)
        || (pkt->vlan && (pkt->vid > VLAN_VID_MASK || pkt->pcp > 7))) {
        return PKT_ERR_INVALID;
    }

    size_t len = pkt_udp_frame_len(pkt->payload_len, pkt->vlan);
    if (size < len) {
        return PKT_ERR_NOSPACE;
    }

    uint8_t *p = buf;

    /* Ethernet header, optional 802.1Q tag. */
    memcpy(p, pkt->eth_dst.ea, ETH_ADDR_LEN);
    memcpy(p + 6, pkt->eth_src.ea, ETH_ADDR_LEN);
    p += 12;
    if (pkt->vlan) {
        pkt_put_be16(p, ETH_TYPE_VLAN);
        pkt_put_be16(p + 2, (pkt->pcp << VLAN_PCP_SHIFT) | pkt->vid);
        p += VLAN_HEADER_LEN;
    }
    pkt_put_be16(p, ETH_TYPE_IP);
    p += 2;

    /* IPv4 header. */
    uint8_t *ip = p;
    size_t ip_len = IP_HEADER_LEN + UDP_HEADER_LEN + pkt->payload_len;
    ip[0] = 0x45;                         /* Version 4, IHL 5. */
    ip[1] = pkt->tos;
    pkt_put_be16(ip + 2, ip_len);
    pkt_put_be16(ip + 4, 0);              /* Identification. */
    pkt_put_be16(ip + 6, IP_DF);
    ip[8] = pkt->ttl;
    ip[9] = IP_PROTO_UDP;
    pkt_put_be16(ip + 10, 0);
    pkt_put_be32(ip + 12, pkt->ip_src);
    pkt_put_be32(ip + 16, pkt->ip_dst);
    pkt_put_be16(ip + 10, pkt_csum(ip, IP_HEADER_LEN));
    p += IP_HEADER_LEN;

    /* UDP header and payload. */
    uint8_t *udp = p;
    size_t udp_len = UDP_HEADER_LEN + pkt->payload_len;
    pkt_put_be16(udp, pkt->udp_src);
    pkt_put_be16(udp + 2, pkt->udp_dst);
    pkt_put_be16(udp + 4, udp_len);
    pkt_put_be16(udp + 6, 0);
    if (pkt->payload_len) {
        memcpy(udp + UDP_HEADER_LEN, pkt->payload, pkt->payload_len);
    }
    uint16_t csum = udp_csum(pkt->ip_src, pkt->ip_dst, udp, udp_len);
    pkt_put_be16(udp + 6, csum ? csum : 0xffff);

    *lenp = len;
    return PKT_OK;
}

enum pkt_error
pkt_udp_parse(const void *data_, size_t len, unsigned int flags,
              struct pkt_udp *pkt)
{
    const uint8_t *data = data_;
    const uint8_t *p = data;
    size_t left = len;

    memset(pkt, 0, sizeof *pkt);

    /* Ethernet. */
    if (left < ETH_HEADER_LEN) {
        return PKT_ERR_ETH_TRUNC;
    }
    memcpy(pkt->eth_dst.ea, p, ETH_ADDR_LEN);
    memcpy(pkt->eth_src.ea, p + 6, ETH_ADDR_LEN);
    uint16_t eth_type = pkt_get_be16(p + 12);
    p += ETH_HEADER_LEN;
    left -= ETH_HEADER_LEN;

    /* 802.1Q.  'p' now points just past the (outer) ethertype. */
    if (eth_type == ETH_TYPE_VLAN) {
        if (left < VLAN_HEADER_LEN) {
            return PKT_ERR_VLAN_TRUNC;
        }
        uint16_t tci = pkt_get_be16(p);
        pkt->vlan = true;
        pkt->vid = tci & VLAN_VID_MASK;
        pkt->pcp = tci >> VLAN_PCP_SHIFT;
        eth_type = pkt_get_be16(p + 2);
        p += VLAN_HEADER_LEN;
        left -= VLAN_HEADER_LEN;
        if (eth_type == ETH_TYPE_VLAN || eth_type == ETH_TYPE_VLAN_8021AD
            || eth_type == ETH_TYPE_VLAN_QINQ) {
            return PKT_ERR_VLAN_DOUBLE;
        }
    }
    if (eth_type != ETH_TYPE_IP) {
        return PKT_ERR_ETH_TYPE;
    }

    /* IPv4. */
    if (left < IP_HEADER_LEN) {
        return PKT_ERR_IP_TRUNC;
    }
    const uint8_t *ip = p;
    if (ip[0] >> 4 != 4) {
        return PKT_ERR_IP_VERSION;
    }
    size_t ihl = (ip[0] & 0x0f) * 4;
    if (ihl < IP_HEADER_LEN) {
        return PKT_ERR_IP_IHL;
    } else if (ihl > IP_HEADER_LEN) {
        return PKT_ERR_IP_OPTIONS;
    }
    size_t ip_len = pkt_get_be16(ip + 2);
    if (ip_len < IP_HEADER_LEN || ip_len > left) {
        return PKT_ERR_IP_LEN;
    }
    if (pkt_csum(ip, IP_HEADER_LEN)) {
        return PKT_ERR_IP_CSUM;
    }
    uint16_t frag = pkt_get_be16(ip + 6);
    if (frag & (IP_MF | IP_FRAG_OFF_MASK)) {
        return PKT_ERR_IP_FRAG;
    }
    if (ip[9] != IP_PROTO_UDP) {
        return PKT_ERR_IP_PROTO;
    }
    pkt->tos = ip[1];
    pkt->ttl = ip[8];
    pkt->ip_src = pkt_get_be32(ip + 12);
    pkt->ip_dst = pkt_get_be32(ip + 16);

    /* UDP.  Bytes past the IPv4 total length are Ethernet padding. */
    const uint8_t *udp = ip + IP_HEADER_LEN;
    size_t udp_len = ip_len - IP_HEADER_LEN;
    if (udp_len < UDP_HEADER_LEN) {
        return PKT_ERR_UDP_TRUNC;
    }
    if (pkt_get_be16(udp + 4) != udp_len) {
        return PKT_ERR_UDP_LEN;
    }
    pkt->udp_src = pkt_get_be16(udp);
    pkt->udp_dst = pkt_get_be16(udp + 2);
    if (pkt_get_be16(udp + 6)) {
        pkt->udp_csum_present = true;
        /* Summing a packet with a correct checksum field yields 0, except
         * that a transmitted 0xffff (for a computed 0) sums to 0 too. */
        if (udp_csum(pkt->ip_src, pkt->ip_dst, udp, udp_len)) {
            return PKT_ERR_UDP_CSUM;
        }
    } else if (flags & PKT_PARSE_REQUIRE_UDP_CSUM) {
        return PKT_ERR_UDP_NO_CSUM;
    }
    pkt->payload = udp + UDP_HEADER_LEN;
    pkt->payload_len = udp_len - UDP_HEADER_LEN;
    return PKT_OK;
}
