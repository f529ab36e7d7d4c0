/*
 * chan-endpoint: the addresses of a channel's two ends, and strict parsing
 * of the provisioning values (Interface external_ids) that override them.
 * Pure functions: no I/O, no allocation.
 *
 * Every channel has a chan-id (1..0xffffffff; 0 is invalid because pkt_mark
 * 0 means "unset") and a vid (802.1Q VLAN id 1..4094, default 4094).  The
 * endpoint addresses are derived from the chan-id so that nothing needs
 * configuring:
 *
 *     host daemon   169.254.0.1                       0a:c4:00:00:00:00
 *     guest daemon  169.254.(1 + (id >> 8) % 254).(id & 0xff)
 *                                                     0a:c4:<id, 4 bytes BE>
 *     UDP port      7433 at both ends
 *
 * The guest's third octet is 1..254, so a guest address is never the host
 * daemon's, 169.254.0.0/24 or 169.254.255.0/24 (reserved by RFC 3927).  The
 * derived guest IP is unique per chan-id only for ids below 254 * 256 =
 * 65024; that is enough because the IP only has to be unique per vNIC
 * segment (each VM sees one channel), and the MAC is unique for every id.
 * IPv4 addresses are host-order uint32_t, as in packets.h.
 *
 * Provisioning keys (Interface external_ids) and what the parsers accept:
 *
 *     chand-id         decimal 1..4294967295: digits only, no sign, no
 *                      spaces, no leading zeros.
 *     chand-vid        decimal 1..4094, same syntax.
 *     chand-guest-ip   strict dotted quad (see ip_from_string()); any unicast
 *                      address, i.e. not 0.0.0.0, not 255.255.255.255, not
 *                      multicast 224.0.0.0/4, and not the host daemon's
 *                      169.254.0.1.
 *     chand-guest-mac  "xx:xx:xx:xx:xx:xx"; unicast, not all-zero, and not
 *                      the host daemon's 0a:c4:00:00:00:00.
 *
 * Errors are 'enum chan_ep_error'; chan_ep_strerror() gives the text that
 * chand-host writes as "error: <reason>" into external_ids:chand-status, so
 * each text names the key it is about.
 */
#ifndef CHAN_ENDPOINT_H
#define CHAN_ENDPOINT_H 1

#include <stdbool.h>
#include <stdint.h>
#include "packets.h"

#define CHAN_UDP_PORT 7433
#define CHAN_VID_MIN 1
#define CHAN_VID_MAX 4094
#define CHAN_VID_DEFAULT 4094
#define CHAN_HOST_IP 0xa9fe0001u        /* 169.254.0.1 */
#define CHAN_LINK_LOCAL_NET 0xa9fe0000u /* 169.254.0.0/16 */
#define CHAN_LINK_LOCAL_MASK 0xffff0000u
#define CHAN_MAC_PREFIX0 0x0a           /* 0a:c4: locally administered, */
#define CHAN_MAC_PREFIX1 0xc4           /* unicast. */

/* One end of a channel. */
struct chan_endpoint {
    struct eth_addr mac;
    uint32_t ip;                /* Host byte order. */
    uint16_t port;              /* Host byte order. */
};

/* A channel's identifiers and both endpoints, defaults applied. */
struct chan_config {
    uint32_t chan_id;
    uint16_t vid;
    struct chan_endpoint host;
    struct chan_endpoint guest;
};

/* VM names (chand-vm, Record.vm, Channel.vm): 1 to CHAN_VM_NAME_MAX
 * characters from A-Z a-z 0-9 . _ -. */
#define CHAN_VM_NAME_MAX 64
bool chan_vm_name_is_valid(const char *name);

bool chan_id_is_valid(uint32_t chan_id);
bool chan_vid_is_valid(unsigned int vid);

/* The host daemon's endpoint (same for every channel). */
void chan_endpoint_host(struct chan_endpoint *);

/* The default guest endpoint for 'chan_id', which must be valid. */
void chan_endpoint_guest(uint32_t chan_id, struct chan_endpoint *);
uint32_t chan_endpoint_guest_ip(uint32_t chan_id);
void chan_endpoint_guest_mac(uint32_t chan_id, struct eth_addr *);

/* Fills '*cfg' with the defaults for 'chan_id' (valid) : vid 4094, derived
 * addresses. */
void chan_config_default(uint32_t chan_id, struct chan_config *cfg);

enum chan_ep_error {
    CHAN_EP_OK = 0,
    CHAN_EP_ID_MISSING,         /* chand-id absent or empty. */
    CHAN_EP_ID_SYNTAX,          /* Not plain decimal digits. */
    CHAN_EP_ID_LEADING_ZERO,    /* "007". */
    CHAN_EP_ID_ZERO,            /* 0 is reserved (pkt_mark unset). */
    CHAN_EP_ID_RANGE,           /* > 4294967295. */
    CHAN_EP_VID_SYNTAX,
    CHAN_EP_VID_LEADING_ZERO,
    CHAN_EP_VID_RANGE,          /* Not 1..4094. */
    CHAN_EP_IP_SYNTAX,
    CHAN_EP_IP_UNSPECIFIED,     /* 0.0.0.0. */
    CHAN_EP_IP_BROADCAST,       /* 255.255.255.255. */
    CHAN_EP_IP_MULTICAST,       /* 224.0.0.0/4. */
    CHAN_EP_IP_HOST,            /* Same as the host daemon's address. */
    CHAN_EP_MAC_SYNTAX,
    CHAN_EP_MAC_ZERO,
    CHAN_EP_MAC_MULTICAST,      /* Group bit set (broadcast too). */
    CHAN_EP_MAC_HOST,           /* Same as the host daemon's MAC. */
    CHAN_EP_N_ERRORS
};

/* Returns a constant, never-NULL reason such as "chand-vid out of range
 * (1..4094)"; "success" for CHAN_EP_OK. */
const char *chan_ep_strerror(enum chan_ep_error);

/* Returns the command-line option of chand-guest and chand-guest-replay
 * that 'error' is about: "--chan-id", "--vid", "--guest-ip" or
 * "--guest-mac". */
const char *chan_ep_error_option(enum chan_ep_error);

/* Strict parsers for one provisioning value each.  's' is borrowed and may
 * be NULL (treated like ""); on success the result is stored and 0
 * returned, otherwise the output is left unchanged. */
enum chan_ep_error chan_parse_id(const char *s, uint32_t *chan_id);
enum chan_ep_error chan_parse_vid(const char *s, uint16_t *vid);
enum chan_ep_error chan_parse_guest_ip(const char *s, uint32_t *ip);
enum chan_ep_error chan_parse_guest_mac(const char *s, struct eth_addr *);

/* Builds a channel's configuration from its external_ids values: 'id' is
 * required; 'vid', 'guest_ip' and 'guest_mac' are optional (NULL means
 * "absent, use the default"; an empty string is a syntax error).  Checks
 * in the order id, vid, ip, mac and returns the first error, leaving
 * '*cfg' unspecified; on success fills in '*cfg' and returns 0.  All
 * strings are borrowed. */
enum chan_ep_error chan_config_from_strings(const char *id, const char *vid,
                                            const char *guest_ip,
                                            const char *guest_mac,
                                            struct chan_config *cfg);

#endif /* chan-endpoint.h */
