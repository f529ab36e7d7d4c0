/* chan-endpoint: channel endpoint addresses.  See chan-endpoint.h. */

#include <config.h>
#include "chan-endpoint.h"

#include <string.h>

bool
chan_vm_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > CHAN_VM_NAME_MAX) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!strchr("abcdefghijklmnopqrstuvwxyz"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p)) {
            return false;
        }
    }
    return true;
}

bool
chan_id_is_valid(uint32_t chan_id)
{
    return chan_id != 0;
}

bool
chan_vid_is_valid(unsigned int vid)
{
    return vid >= CHAN_VID_MIN && vid <= CHAN_VID_MAX;
}

static void
host_mac(struct eth_addr *mac)
{
    memset(mac, 0, sizeof *mac);
    mac->ea[0] = CHAN_MAC_PREFIX0;
    mac->ea[1] = CHAN_MAC_PREFIX1;
}

void
chan_endpoint_host(struct chan_endpoint *ep)
{
    host_mac(&ep->mac);
    ep->ip = CHAN_HOST_IP;
    ep->port = CHAN_UDP_PORT;
}

uint32_t
chan_endpoint_guest_ip(uint32_t chan_id)
{
    return (CHAN_LINK_LOCAL_NET | (1 + (chan_id >> 8) % 254) << 8
            | (chan_id & 0xff));
}

void
chan_endpoint_guest_mac(uint32_t chan_id, struct eth_addr *mac)
{
    host_mac(mac);
    pkt_put_be32(&mac->ea[2], chan_id);
}

void
chan_endpoint_guest(uint32_t chan_id, struct chan_endpoint *ep)
{
    chan_endpoint_guest_mac(chan_id, &ep->mac);
    ep->ip = chan_endpoint_guest_ip(chan_id);
    ep->port = CHAN_UDP_PORT;
}

void
chan_config_default(uint32_t chan_id, struct chan_config *cfg)
{
    cfg->chan_id = chan_id;
    cfg->vid = CHAN_VID_DEFAULT;
    chan_endpoint_host(&cfg->host);
    chan_endpoint_guest(chan_id, &cfg->guest);
}

static const char *const chan_ep_errors[CHAN_EP_N_ERRORS] = {
    [CHAN_EP_OK] = "success",
    [CHAN_EP_ID_MISSING] = "chand-id missing",
    [CHAN_EP_ID_SYNTAX] = "chand-id is not a decimal number",
    [CHAN_EP_ID_LEADING_ZERO] = "chand-id has leading zeros",
    [CHAN_EP_ID_ZERO] = "chand-id 0 is reserved",
    [CHAN_EP_ID_RANGE] = "chand-id out of range (1..4294967295)",
    [CHAN_EP_VID_SYNTAX] = "chand-vid is not a decimal number",
    [CHAN_EP_VID_LEADING_ZERO] = "chand-vid has leading zeros",
    [CHAN_EP_VID_RANGE] = "chand-vid out of range (1..4094)",
    [CHAN_EP_IP_SYNTAX] = "chand-guest-ip is not a dotted-quad IPv4 address",
    [CHAN_EP_IP_UNSPECIFIED] = "chand-guest-ip is 0.0.0.0",
    [CHAN_EP_IP_BROADCAST] = "chand-guest-ip is the broadcast address",
    [CHAN_EP_IP_MULTICAST] = "chand-guest-ip is a multicast address",
    [CHAN_EP_IP_HOST] = "chand-guest-ip is the host daemon's address",
    [CHAN_EP_MAC_SYNTAX] = "chand-guest-mac is not xx:xx:xx:xx:xx:xx",
    [CHAN_EP_MAC_ZERO] = "chand-guest-mac is all zeros",
    [CHAN_EP_MAC_MULTICAST] = "chand-guest-mac is a multicast address",
    [CHAN_EP_MAC_HOST] = "chand-guest-mac is the host daemon's MAC",
};

const char *
chan_ep_strerror(enum chan_ep_error error)
{
    return (unsigned int) error < CHAN_EP_N_ERRORS
           ? chan_ep_errors[error] : "unknown provisioning error";
}

const char *
chan_ep_error_option(enum chan_ep_error e)
{
    if (e <= CHAN_EP_ID_RANGE) {
        return "--chan-id";
    } else if (e <= CHAN_EP_VID_RANGE) {
        return "--vid";
    } else if (e <= CHAN_EP_IP_HOST) {
        return "--guest-ip";
    }
    return "--guest-mac";
}

/* Parses 's' as plain decimal digits (no sign, no spaces, no leading
 * zeros) with a value up to 'max'.  Returns 0 and stores the value, or 1
 * (syntax), 2 (leading zero), 3 (above 'max'). */
static int
parse_decimal(const char *s, uint64_t max, uint64_t *valuep)
{
    uint64_t value = 0;
    size_t n;

    for (n = 0; s[n] >= '0' && s[n] <= '9'; n++) {
        value = value * 10 + (s[n] - '0');
        if (value > max) {
            /* Keep scanning so that "99999999999x" is a syntax error. */
            while (s[n] >= '0' && s[n] <= '9') {
                n++;
            }
            return s[n] ? 1 : s[0] == '0' ? 2 : 3;
        }
    }
    if (!n || s[n]) {
        return 1;
    } else if (n > 1 && s[0] == '0') {
        return 2;
    }
    *valuep = value;
    return 0;
}

enum chan_ep_error
chan_parse_id(const char *s, uint32_t *chan_id)
{
    uint64_t value;

    if (!s || !*s) {
        return CHAN_EP_ID_MISSING;
    }
    switch (parse_decimal(s, UINT32_MAX, &value)) {
    case 0:
        break;
    case 2:
        return CHAN_EP_ID_LEADING_ZERO;
    case 3:
        return CHAN_EP_ID_RANGE;
    default:
        return CHAN_EP_ID_SYNTAX;
    }
    if (!value) {
        return CHAN_EP_ID_ZERO;
    }
    *chan_id = value;
    return CHAN_EP_OK;
}

enum chan_ep_error
chan_parse_vid(const char *s, uint16_t *vid)
{
    uint64_t value;

    switch (parse_decimal(s ? s : "", CHAN_VID_MAX, &value)) {
    case 0:
        break;
    case 2:
        return CHAN_EP_VID_LEADING_ZERO;
    case 3:
        return CHAN_EP_VID_RANGE;
    default:
        return CHAN_EP_VID_SYNTAX;
    }
    if (!chan_vid_is_valid(value)) {
        return CHAN_EP_VID_RANGE;
    }
    *vid = value;
    return CHAN_EP_OK;
}

enum chan_ep_error
chan_parse_guest_ip(const char *s, uint32_t *ipp)
{
    uint32_t ip;

    if (!s || !ip_from_string(s, &ip)) {
        return CHAN_EP_IP_SYNTAX;
    } else if (ip == 0) {
        return CHAN_EP_IP_UNSPECIFIED;
    } else if (ip == UINT32_MAX) {
        return CHAN_EP_IP_BROADCAST;
    } else if ((ip & 0xf0000000u) == 0xe0000000u) {
        return CHAN_EP_IP_MULTICAST;
    } else if (ip == CHAN_HOST_IP) {
        return CHAN_EP_IP_HOST;
    }
    *ipp = ip;
    return CHAN_EP_OK;
}

enum chan_ep_error
chan_parse_guest_mac(const char *s, struct eth_addr *macp)
{
    struct eth_addr mac, host;

    if (!s || !eth_addr_from_string(s, &mac)) {
        return CHAN_EP_MAC_SYNTAX;
    } else if (eth_addr_is_zero(&mac)) {
        return CHAN_EP_MAC_ZERO;
    } else if (eth_addr_is_multicast(&mac)) {
        return CHAN_EP_MAC_MULTICAST;
    }
    host_mac(&host);
    if (eth_addr_equals(&mac, &host)) {
        return CHAN_EP_MAC_HOST;
    }
    *macp = mac;
    return CHAN_EP_OK;
}

enum chan_ep_error
chan_config_from_strings(const char *id, const char *vid,
                         const char *guest_ip, const char *guest_mac,
                         struct chan_config *cfg)
{
    enum chan_ep_error error;
    uint32_t chan_id;

    error = chan_parse_id(id, &chan_id);
    if (error) {
        return error;
    }
    chan_config_default(chan_id, cfg);
    if (vid) {
        error = chan_parse_vid(vid, &cfg->vid);
        if (error) {
            return error;
        }
    }
    if (guest_ip) {
        error = chan_parse_guest_ip(guest_ip, &cfg->guest.ip);
        if (error) {
            return error;
        }
    }
    if (guest_mac) {
        error = chan_parse_guest_mac(guest_mac, &cfg->guest.mac);
        if (error) {
            return error;
        }
    }
    return CHAN_EP_OK;
}
