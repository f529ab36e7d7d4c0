/*
 * packets: build and parse the Ethernet II / 802.1Q / IPv4 / UDP frames that
 * carry chand's channel traffic.  Pure codec: no I/O, no logging, no
 * allocation.
 *
 * Conventions:
 *
 *   - MAC addresses are 'struct eth_addr' (6 bytes, wire order).
 *
 *   - IPv4 addresses and UDP ports are plain integers in HOST byte order
 *     (169.254.0.1 is 0xa9fe0001).  Conversion to and from network order
 *     happens only inside the builder and the parser, through the
 *     pkt_get_be*() / pkt_put_be*() helpers below; nothing casts a struct
 *     onto wire bytes.
 *
 *   - The builder writes a complete frame (Ethernet header, optional 802.1Q
 *     tag, IPv4 header without options, UDP header, payload) into a caller
 *     buffer, with the IPv4 header checksum and the UDP checksum (over the
 *     pseudo-header) filled in.  It never emits a zero UDP checksum: a
 *     computed 0 is sent as 0xffff (RFC 768).  The IPv4 identification is 0
 *     and DF is set, since chand never fragments.
 *
 *   - The parser accepts exactly such frames and rejects anything else with
 *     a distinct 'enum pkt_error'.  It accepts a UDP checksum of 0 ("no
 *     checksum", legal in IPv4) unless PKT_PARSE_REQUIRE_UDP_CSUM is passed.
 *     Ethernet padding after the IPv4 total length is allowed and ignored.
 *     Results point into the caller's buffer; nothing is copied.
 */
#ifndef PACKETS_H
#define PACKETS_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Byte-order helpers: read or write big-endian integers at 'p', which need
 * not be aligned.  The caller guarantees the bytes are in bounds. */
static inline uint16_t
pkt_get_be16(const uint8_t *p)
{
    return (uint16_t) ((p[0] << 8) | p[1]);
}

static inline uint32_t
pkt_get_be32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}

static inline uint64_t
pkt_get_be64(const uint8_t *p)
{
    return ((uint64_t) pkt_get_be32(p) << 32) | pkt_get_be32(p + 4);
}

static inline void
pkt_put_be16(uint8_t *p, uint16_t x)
{
    p[0] = x >> 8;
    p[1] = x;
}

static inline void
pkt_put_be32(uint8_t *p, uint32_t x)
{
    p[0] = x >> 24;
    p[1] = x >> 16;
    p[2] = x >> 8;
    p[3] = x;
}

static inline void
pkt_put_be64(uint8_t *p, uint64_t x)
{
    pkt_put_be32(p, x >> 32);
    pkt_put_be32(p + 4, x);
}

/* Ethernet. */
#define ETH_ADDR_LEN 6
#define ETH_HEADER_LEN 14
#define VLAN_HEADER_LEN 4
#define ETH_TYPE_IP 0x0800
#define ETH_TYPE_VLAN 0x8100        /* 802.1Q C-tag. */
#define ETH_TYPE_VLAN_8021AD 0x88a8 /* 802.1ad S-tag. */
#define ETH_TYPE_VLAN_QINQ 0x9100   /* Pre-standard QinQ. */
#define VLAN_VID_MASK 0x0fff
#define VLAN_PCP_SHIFT 13
#define VLAN_CFI 0x1000

/* IPv4 / UDP. */
#define IP_HEADER_LEN 20            /* No options, ever. */
#define IP_PROTO_UDP 17
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_FRAG_OFF_MASK 0x1fff
#define IP_MAX_LEN 65535
#define UDP_HEADER_LEN 8
#define PKT_DEFAULT_TTL 64

/* Largest UDP payload one IPv4 packet can carry (65535 - 20 - 8). */
#define PKT_MAX_UDP_PAYLOAD (IP_MAX_LEN - IP_HEADER_LEN - UDP_HEADER_LEN)

/* Buffer sizes for the string formatters, including the terminating NUL. */
#define ETH_ADDR_STRLEN 18          /* "xx:xx:xx:xx:xx:xx" */
#define IP_STRLEN 16                /* "255.255.255.255" */

struct eth_addr {
    uint8_t ea[ETH_ADDR_LEN];
};

#define ETH_ADDR_FMT "%02x:%02x:%02x:%02x:%02x:%02x"
#define ETH_ADDR_ARGS(EA) \
    (EA).ea[0], (EA).ea[1], (EA).ea[2], (EA).ea[3], (EA).ea[4], (EA).ea[5]

/* printf() helpers for a host-order IPv4 address. */
#define IP_FMT "%u.%u.%u.%u"
#define IP_ARGS(IP) \
    (unsigned int) (((IP) >> 24) & 0xff), \
    (unsigned int) (((IP) >> 16) & 0xff), \
    (unsigned int) (((IP) >> 8) & 0xff), \
    (unsigned int) ((IP) & 0xff)

bool eth_addr_equals(const struct eth_addr *, const struct eth_addr *);
bool eth_addr_is_zero(const struct eth_addr *);
bool eth_addr_is_multicast(const struct eth_addr *);  /* Broadcast too. */
bool eth_addr_is_local(const struct eth_addr *);   /* Locally administered. */

/* Formats 'ea' as "xx:xx:xx:xx:xx:xx" (lowercase) into 'buf', which the
 * caller provides.  Returns 'buf'. */
char *eth_addr_to_string(const struct eth_addr *ea,
                         char buf[ETH_ADDR_STRLEN]);

/* Parses exactly "xx:xx:xx:xx:xx:xx" (six groups of two hex digits, either
 * case, no surrounding space) into '*ea'.  Returns true on success; on
 * failure '*ea' is unspecified. */
bool eth_addr_from_string(const char *s, struct eth_addr *ea);

/* Formats host-order 'ip' as a dotted quad into 'buf'.  Returns 'buf'. */
char *ip_to_string(uint32_t ip, char buf[IP_STRLEN]);

/* Parses a strict dotted quad: exactly four decimal parts 0..255, each
 * without sign, spaces or leading zeros ("0" itself is fine; "01" is
 * rejected because some parsers read it as octal).  Stores the address in
 * host order in '*ip'.  Returns true on success. */
bool ip_from_string(const char *s, uint32_t *ip);

/* The internet checksum (RFC 1071).  pkt_csum_add() adds 'n' bytes at
 * 'data' to a running 32-bit sum; 'data' is treated as starting at an even
 * offset of the checksummed area, so split only at even lengths.
 * pkt_csum_finish() folds the sum and returns its one's complement, in host
 * order, ready for pkt_put_be16().  pkt_csum() does both for one buffer.
 * A buffer whose checksum field is correct sums to 0 with pkt_csum(). */
uint32_t pkt_csum_add(uint32_t sum, const void *data, size_t n);
uint16_t pkt_csum_finish(uint32_t sum);
uint16_t pkt_csum(const void *data, size_t n);

/* Errors from pkt_udp_build() and pkt_udp_parse().  0 is success. */
enum pkt_error {
    PKT_OK = 0,
    PKT_ERR_NOSPACE,        /* Build: caller buffer too small. */
    PKT_ERR_INVALID,        /* Build: bad argument (vid, pcp, length). */
    PKT_ERR_ETH_TRUNC,      /* Shorter than an Ethernet header. */
    PKT_ERR_VLAN_TRUNC,     /* 802.1Q tag cut short. */
    PKT_ERR_ETH_TYPE,       /* Ethertype is not IPv4 (or not 802.1Q). */
    PKT_ERR_VLAN_DOUBLE,    /* A VLAN tag inside a VLAN tag. */
    PKT_ERR_IP_TRUNC,       /* Shorter than an IPv4 header. */
    PKT_ERR_IP_VERSION,     /* IP version is not 4. */
    PKT_ERR_IP_IHL,         /* IHL < 5. */
    PKT_ERR_IP_OPTIONS,     /* IHL > 5: IP options are not accepted. */
    PKT_ERR_IP_LEN,         /* Total length < header or > frame. */
    PKT_ERR_IP_CSUM,        /* IPv4 header checksum wrong. */
    PKT_ERR_IP_FRAG,        /* MF set or fragment offset != 0. */
    PKT_ERR_IP_PROTO,       /* IP protocol is not UDP. */
    PKT_ERR_UDP_TRUNC,      /* IP payload shorter than a UDP header. */
    PKT_ERR_UDP_LEN,        /* UDP length != IP payload length. */
    PKT_ERR_UDP_CSUM,       /* UDP checksum wrong. */
    PKT_ERR_UDP_NO_CSUM,    /* Zero UDP checksum with REQUIRE_UDP_CSUM. */
    PKT_N_ERRORS
};

/* Returns a short constant English description of 'error' ("success" for
 * 0, "unknown packet error" if out of range).  Never NULL. */
const char *pkt_strerror(enum pkt_error error);

/* Returns a short constant identifier for 'error' suitable for counters
 * and logs, e.g. "ip_csum".  Never NULL. */
const char *pkt_error_name(enum pkt_error error);

/* One Ethernet/[802.1Q]/IPv4/UDP frame, as given to the builder or as
 * filled in by the parser. */
struct pkt_udp {
    struct eth_addr eth_dst;
    struct eth_addr eth_src;

    bool vlan;                  /* 802.1Q tag present? */
    uint16_t vid;               /* VLAN id 0..4095 (0 if !vlan). */
    uint8_t pcp;                /* Priority 0..7 (0 if !vlan). */

    uint32_t ip_src;            /* Host byte order. */
    uint32_t ip_dst;            /* Host byte order. */
    uint8_t ttl;
    uint8_t tos;

    uint16_t udp_src;           /* Host byte order. */
    uint16_t udp_dst;           /* Host byte order. */
    bool udp_csum_present;      /* Parser only: false if checksum was 0. */

    /* Builder: the payload to copy into the frame (borrowed).
     * Parser: points into the parsed buffer (borrowed from the caller). */
    const uint8_t *payload;
    size_t payload_len;
};

/* Size of the frame pkt_udp_build() writes for a 'payload_len'-byte
 * payload, with or without an 802.1Q tag (no Ethernet padding is added). */
size_t pkt_udp_frame_len(size_t payload_len, bool vlan);

/* Writes the frame described by 'pkt' into 'buf' (of 'size' bytes) and
 * stores its length in '*lenp'.  'pkt->udp_csum_present' is ignored (a
 * checksum is always written).  The payload may not overlap 'buf'.
 *
 * Returns 0, PKT_ERR_NOSPACE if 'size' is too small (nothing useful is
 * written then), or PKT_ERR_INVALID if vid > 4095, pcp > 7, the payload is
 * longer than PKT_MAX_UDP_PAYLOAD, or payload_len is nonzero with a null
 * payload. */
enum pkt_error pkt_udp_build(const struct pkt_udp *pkt, uint8_t *buf,
                             size_t size, size_t *lenp);

/* Flags for pkt_udp_parse(). */
#define PKT_PARSE_REQUIRE_UDP_CSUM 0x1  /* Reject a zero UDP checksum. */

/* Parses the 'len' bytes at 'data' as an Ethernet II frame, optionally with
 * one 802.1Q (TPID 0x8100) tag, carrying IPv4 without options or fragments
 * carrying UDP, verifying both checksums.  On success returns 0 and fills
 * in '*pkt', whose 'payload' points into 'data' (so 'data' must outlive
 * that use).  On failure returns the first problem found; '*pkt' is then
 * partially filled in and should not be used.  Never reads outside
 * [data, data + len). */
enum pkt_error pkt_udp_parse(const void *data, size_t len, unsigned int flags,
                             struct pkt_udp *pkt);

#endif /* packets.h */
