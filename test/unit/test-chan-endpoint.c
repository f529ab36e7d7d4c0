/* Unit tests for lib/chan-endpoint: derived addresses, provisioning
 * parsers. */

#include <config.h>
#include "unit.h"
#include "chan-endpoint.h"

#include <stdio.h>
#include <string.h>

static void
assert_mac(const struct eth_addr *mac, const char *expected)
{
    char buf[ETH_ADDR_STRLEN];
    CU_ASSERT_STRING_EQUAL(eth_addr_to_string(mac, buf), expected);
}

static void
assert_ip(uint32_t ip, const char *expected)
{
    char buf[IP_STRLEN];
    CU_ASSERT_STRING_EQUAL(ip_to_string(ip, buf), expected);
}

static void
test_host_endpoint(void)
{
    struct chan_endpoint ep;

    memset(&ep, 0xff, sizeof ep);
    chan_endpoint_host(&ep);
    assert_mac(&ep.mac, "0a:c4:00:00:00:00");
    assert_ip(ep.ip, "169.254.0.1");
    CU_ASSERT_EQUAL(ep.port, 7433);
    CU_ASSERT_EQUAL(CHAN_UDP_PORT, 7433);
}

static void
test_guest_endpoint(void)
{
    static const struct {
        uint32_t id;
        const char *ip;
        const char *mac;
    } cases[] = {
        { 1, "169.254.1.1", "0a:c4:00:00:00:01" },
        { 7, "169.254.1.7", "0a:c4:00:00:00:07" },
        { 255, "169.254.1.255", "0a:c4:00:00:00:ff" },
        { 256, "169.254.2.0", "0a:c4:00:00:01:00" },
        { 0x1234, "169.254.19.52", "0a:c4:00:00:12:34" },
        { 65023, "169.254.254.255", "0a:c4:00:00:fd:ff" },
        { 65024, "169.254.1.0", "0a:c4:00:00:fe:00" },
        { 0xffffffff, "169.254.8.255", "0a:c4:ff:ff:ff:ff" },
        { 0x01020304, "169.254.12.4", "0a:c4:01:02:03:04" },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chan_endpoint ep;
        struct eth_addr mac;

        chan_endpoint_guest(cases[i].id, &ep);
        assert_ip(ep.ip, cases[i].ip);
        assert_mac(&ep.mac, cases[i].mac);
        CU_ASSERT_EQUAL(ep.port, CHAN_UDP_PORT);
        CU_ASSERT_EQUAL(chan_endpoint_guest_ip(cases[i].id), ep.ip);
        chan_endpoint_guest_mac(cases[i].id, &mac);
        CU_ASSERT(eth_addr_equals(&mac, &ep.mac));
    }
}

/* Properties over many ids: link-local, never the host's address, third
 * octet 1..254, unicast locally administered MAC that encodes the id, and
 * the derived values are accepted by the parsers. */
static void
test_guest_properties(void)
{
    struct chan_endpoint host;
    uint64_t state = 42;

    chan_endpoint_host(&host);
    for (int i = 0; i < 100000; i++) {
        uint32_t id = i < 70000 ? (uint32_t) i + 1 : unit_random(&state);
        struct chan_endpoint ep;
        char ip_s[IP_STRLEN], mac_s[ETH_ADDR_STRLEN];
        uint32_t ip;
        struct eth_addr mac;

        if (!id) {
            continue;
        }
        chan_endpoint_guest(id, &ep);
        CU_ASSERT_EQUAL(ep.ip & CHAN_LINK_LOCAL_MASK, CHAN_LINK_LOCAL_NET);
        unsigned int third = (ep.ip >> 8) & 0xff;
        CU_ASSERT(third >= 1 && third <= 254);
        CU_ASSERT_EQUAL(ep.ip & 0xff, id & 0xff);
        CU_ASSERT_NOT_EQUAL(ep.ip, host.ip);
        CU_ASSERT(!eth_addr_is_multicast(&ep.mac));
        CU_ASSERT(eth_addr_is_local(&ep.mac));
        CU_ASSERT(!eth_addr_equals(&ep.mac, &host.mac));
        CU_ASSERT_EQUAL(pkt_get_be32(&ep.mac.ea[2]), id);

        /* Unique IPs for ids below 65024. */
        if (id < 65024) {
            CU_ASSERT_EQUAL(((third - 1) << 8 | (ep.ip & 0xff)), id);
        }

        CU_ASSERT_EQUAL(chan_parse_guest_ip(ip_to_string(ep.ip, ip_s), &ip),
                        CHAN_EP_OK);
        CU_ASSERT_EQUAL(ip, ep.ip);
        CU_ASSERT_EQUAL(chan_parse_guest_mac(eth_addr_to_string(&ep.mac,
                                                                mac_s),
                                             &mac), CHAN_EP_OK);
        CU_ASSERT(eth_addr_equals(&mac, &ep.mac));
    }
}

static void
test_validity(void)
{
    CU_ASSERT(!chan_id_is_valid(0));
    CU_ASSERT(chan_id_is_valid(1));
    CU_ASSERT(chan_id_is_valid(UINT32_MAX));
    CU_ASSERT(!chan_vid_is_valid(0));
    CU_ASSERT(chan_vid_is_valid(1));
    CU_ASSERT(chan_vid_is_valid(4094));
    CU_ASSERT(!chan_vid_is_valid(4095));
    CU_ASSERT(!chan_vid_is_valid(65536 + 100));
    CU_ASSERT(chan_vid_is_valid(CHAN_VID_DEFAULT));
    CU_ASSERT_EQUAL(CHAN_VID_DEFAULT, 4094);
}

struct parse_case {
    const char *s;
    enum chan_ep_error error;
    uint64_t value;
};

static void
report(const char *what, const char *s, enum chan_ep_error got,
       enum chan_ep_error expected)
{
    if (got != expected) {
        fprintf(stderr, "%s \"%s\": got \"%s\", expected \"%s\"\n",
                what, s ? s : "(null)", chan_ep_strerror(got),
                chan_ep_strerror(expected));
        CU_FAIL("parse case");
    }
}

static void
test_parse_id(void)
{
    static const struct parse_case cases[] = {
        { "1", CHAN_EP_OK, 1 },
        { "7", CHAN_EP_OK, 7 },
        { "65535", CHAN_EP_OK, 65535 },
        { "4294967295", CHAN_EP_OK, 4294967295u },
        { NULL, CHAN_EP_ID_MISSING, 0 },
        { "", CHAN_EP_ID_MISSING, 0 },
        { "0", CHAN_EP_ID_ZERO, 0 },
        { "00", CHAN_EP_ID_LEADING_ZERO, 0 },
        { "007", CHAN_EP_ID_LEADING_ZERO, 0 },
        { "04294967296", CHAN_EP_ID_LEADING_ZERO, 0 },
        { "4294967296", CHAN_EP_ID_RANGE, 0 },
        { "9999999999", CHAN_EP_ID_RANGE, 0 },
        { "18446744073709551616", CHAN_EP_ID_RANGE, 0 },
        { "999999999999999999999999999999", CHAN_EP_ID_RANGE, 0 },
        { "99999999999999999999x", CHAN_EP_ID_SYNTAX, 0 },
        { "+1", CHAN_EP_ID_SYNTAX, 0 },
        { "-1", CHAN_EP_ID_SYNTAX, 0 },
        { " 1", CHAN_EP_ID_SYNTAX, 0 },
        { "1 ", CHAN_EP_ID_SYNTAX, 0 },
        { "\t1", CHAN_EP_ID_SYNTAX, 0 },
        { "1\n", CHAN_EP_ID_SYNTAX, 0 },
        { "1a", CHAN_EP_ID_SYNTAX, 0 },
        { "0x10", CHAN_EP_ID_SYNTAX, 0 },
        { "1.0", CHAN_EP_ID_SYNTAX, 0 },
        { "1e3", CHAN_EP_ID_SYNTAX, 0 },
        { "one", CHAN_EP_ID_SYNTAX, 0 },
        { " ", CHAN_EP_ID_SYNTAX, 0 },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t id = 123456;
        enum chan_ep_error error = chan_parse_id(cases[i].s, &id);
        report("chand-id", cases[i].s, error, cases[i].error);
        CU_ASSERT_EQUAL(id, error ? 123456 : cases[i].value);
    }
}

static void
test_parse_vid(void)
{
    static const struct parse_case cases[] = {
        { "1", CHAN_EP_OK, 1 },
        { "100", CHAN_EP_OK, 100 },
        { "4094", CHAN_EP_OK, 4094 },
        { "0", CHAN_EP_VID_RANGE, 0 },
        { "4095", CHAN_EP_VID_RANGE, 0 },
        { "65536", CHAN_EP_VID_RANGE, 0 },
        { "99999999999999999999999", CHAN_EP_VID_RANGE, 0 },
        { "01", CHAN_EP_VID_LEADING_ZERO, 0 },
        { "04094", CHAN_EP_VID_LEADING_ZERO, 0 },
        { "05000", CHAN_EP_VID_LEADING_ZERO, 0 },
        { NULL, CHAN_EP_VID_SYNTAX, 0 },
        { "", CHAN_EP_VID_SYNTAX, 0 },
        { "-1", CHAN_EP_VID_SYNTAX, 0 },
        { "+5", CHAN_EP_VID_SYNTAX, 0 },
        { "5 ", CHAN_EP_VID_SYNTAX, 0 },
        { "0x10", CHAN_EP_VID_SYNTAX, 0 },
        { "abc", CHAN_EP_VID_SYNTAX, 0 },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t vid = 777;
        enum chan_ep_error error = chan_parse_vid(cases[i].s, &vid);
        report("chand-vid", cases[i].s, error, cases[i].error);
        CU_ASSERT_EQUAL(vid, error ? 777 : cases[i].value);
    }
}

static void
test_parse_guest_ip(void)
{
    static const struct parse_case cases[] = {
        { "169.254.1.7", CHAN_EP_OK, 0xa9fe0107 },
        { "169.254.0.2", CHAN_EP_OK, 0xa9fe0002 },
        { "10.0.0.1", CHAN_EP_OK, 0x0a000001 },
        { "1.2.3.4", CHAN_EP_OK, 0x01020304 },
        { "223.255.255.255", CHAN_EP_OK, 0xdfffffff },
        { "240.0.0.1", CHAN_EP_OK, 0xf0000001 },
        { "0.0.0.0", CHAN_EP_IP_UNSPECIFIED, 0 },
        { "255.255.255.255", CHAN_EP_IP_BROADCAST, 0 },
        { "224.0.0.1", CHAN_EP_IP_MULTICAST, 0 },
        { "239.255.255.255", CHAN_EP_IP_MULTICAST, 0 },
        { "224.0.0.0", CHAN_EP_IP_MULTICAST, 0 },
        { "169.254.0.1", CHAN_EP_IP_HOST, 0 },
        { NULL, CHAN_EP_IP_SYNTAX, 0 },
        { "", CHAN_EP_IP_SYNTAX, 0 },
        { "169.254.1", CHAN_EP_IP_SYNTAX, 0 },
        { "169.254.1.7.1", CHAN_EP_IP_SYNTAX, 0 },
        { "169.254.1.256", CHAN_EP_IP_SYNTAX, 0 },
        { "169.254.01.7", CHAN_EP_IP_SYNTAX, 0 },
        { " 169.254.1.7", CHAN_EP_IP_SYNTAX, 0 },
        { "169.254.1.7 ", CHAN_EP_IP_SYNTAX, 0 },
        { "169.254.1.7/16", CHAN_EP_IP_SYNTAX, 0 },
        { "fe80::1", CHAN_EP_IP_SYNTAX, 0 },
        { "host", CHAN_EP_IP_SYNTAX, 0 },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t ip = 99;
        enum chan_ep_error error = chan_parse_guest_ip(cases[i].s, &ip);
        report("chand-guest-ip", cases[i].s, error, cases[i].error);
        CU_ASSERT_EQUAL(ip, error ? 99 : cases[i].value);
    }
}

static void
test_parse_guest_mac(void)
{
    static const struct {
        const char *s;
        enum chan_ep_error error;
    } cases[] = {
        { "0a:c4:00:00:00:07", CHAN_EP_OK },
        { "0A:C4:00:00:00:08", CHAN_EP_OK },
        { "02:00:00:00:00:01", CHAN_EP_OK },
        { "52:54:00:12:34:56", CHAN_EP_OK },
        { "00:00:00:00:00:01", CHAN_EP_OK },
        { "00:00:00:00:00:00", CHAN_EP_MAC_ZERO },
        { "01:00:5e:00:00:01", CHAN_EP_MAC_MULTICAST },
        { "33:33:00:00:00:01", CHAN_EP_MAC_MULTICAST },
        { "ff:ff:ff:ff:ff:ff", CHAN_EP_MAC_MULTICAST },
        { "0a:c4:00:00:00:00", CHAN_EP_MAC_HOST },
        { NULL, CHAN_EP_MAC_SYNTAX },
        { "", CHAN_EP_MAC_SYNTAX },
        { "0a:c4:00:00:00", CHAN_EP_MAC_SYNTAX },
        { "0a:c4:00:00:00:07:08", CHAN_EP_MAC_SYNTAX },
        { "0a-c4-00-00-00-07", CHAN_EP_MAC_SYNTAX },
        { "0a:c4:0:00:00:07", CHAN_EP_MAC_SYNTAX },
        { "0a:c4:00:00:00:0g", CHAN_EP_MAC_SYNTAX },
        { "0a:c4:00:00:00:07 ", CHAN_EP_MAC_SYNTAX },
        { "0ac4.0000.0007", CHAN_EP_MAC_SYNTAX },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct eth_addr mac = { { 1, 2, 3, 4, 5, 6 } };
        struct eth_addr expected;
        enum chan_ep_error error = chan_parse_guest_mac(cases[i].s, &mac);
        report("chand-guest-mac", cases[i].s, error, cases[i].error);
        if (!error) {
            CU_ASSERT(eth_addr_from_string(cases[i].s, &expected));
            CU_ASSERT(eth_addr_equals(&mac, &expected));
        } else {
            CU_ASSERT_EQUAL(mac.ea[0], 1);
            CU_ASSERT_EQUAL(mac.ea[5], 6);
        }
    }
}

static void
test_config(void)
{
    struct chan_config cfg;

    /* Defaults. */
    CU_ASSERT_EQUAL(chan_config_from_strings("7", NULL, NULL, NULL, &cfg),
                    CHAN_EP_OK);
    CU_ASSERT_EQUAL(cfg.chan_id, 7);
    CU_ASSERT_EQUAL(cfg.vid, 4094);
    assert_ip(cfg.host.ip, "169.254.0.1");
    assert_mac(&cfg.host.mac, "0a:c4:00:00:00:00");
    CU_ASSERT_EQUAL(cfg.host.port, 7433);
    assert_ip(cfg.guest.ip, "169.254.1.7");
    assert_mac(&cfg.guest.mac, "0a:c4:00:00:00:07");
    CU_ASSERT_EQUAL(cfg.guest.port, 7433);

    struct chan_config def;
    chan_config_default(7, &def);
    CU_ASSERT(eth_addr_equals(&def.host.mac, &cfg.host.mac));
    CU_ASSERT(eth_addr_equals(&def.guest.mac, &cfg.guest.mac));
    CU_ASSERT_EQUAL(def.host.ip, cfg.host.ip);
    CU_ASSERT_EQUAL(def.guest.ip, cfg.guest.ip);
    CU_ASSERT_EQUAL(def.host.port, cfg.host.port);
    CU_ASSERT_EQUAL(def.guest.port, cfg.guest.port);
    CU_ASSERT_EQUAL(def.vid, cfg.vid);

    /* Overrides. */
    CU_ASSERT_EQUAL(chan_config_from_strings("300", "12", "10.1.2.3",
                                             "02:00:00:00:00:09", &cfg),
                    CHAN_EP_OK);
    CU_ASSERT_EQUAL(cfg.chan_id, 300);
    CU_ASSERT_EQUAL(cfg.vid, 12);
    assert_ip(cfg.guest.ip, "10.1.2.3");
    assert_mac(&cfg.guest.mac, "02:00:00:00:00:09");
    assert_ip(cfg.host.ip, "169.254.0.1");

    /* Only the MAC overridden: IP stays derived. */
    CU_ASSERT_EQUAL(chan_config_from_strings("300", NULL, NULL,
                                             "02:00:00:00:00:09", &cfg),
                    CHAN_EP_OK);
    assert_ip(cfg.guest.ip, "169.254.2.44");

    /* Errors, first one wins in the order id, vid, ip, mac. */
    CU_ASSERT_EQUAL(chan_config_from_strings(NULL, "0", "x", "y", &cfg),
                    CHAN_EP_ID_MISSING);
    CU_ASSERT_EQUAL(chan_config_from_strings("0", "0", "x", "y", &cfg),
                    CHAN_EP_ID_ZERO);
    CU_ASSERT_EQUAL(chan_config_from_strings("5", "0", "x", "y", &cfg),
                    CHAN_EP_VID_RANGE);
    CU_ASSERT_EQUAL(chan_config_from_strings("5", "", NULL, NULL, &cfg),
                    CHAN_EP_VID_SYNTAX);
    CU_ASSERT_EQUAL(chan_config_from_strings("5", "5", "x", "y", &cfg),
                    CHAN_EP_IP_SYNTAX);
    CU_ASSERT_EQUAL(chan_config_from_strings("5", NULL, "", NULL, &cfg),
                    CHAN_EP_IP_SYNTAX);
    CU_ASSERT_EQUAL(chan_config_from_strings("5", "5", "1.2.3.4", "y", &cfg),
                    CHAN_EP_MAC_SYNTAX);
    CU_ASSERT_EQUAL(chan_config_from_strings("5", NULL, NULL,
                                             "ff:ff:ff:ff:ff:ff", &cfg),
                    CHAN_EP_MAC_MULTICAST);
}

static void
test_strerror(void)
{
    for (int i = 0; i < CHAN_EP_N_ERRORS; i++) {
        const char *s = chan_ep_strerror(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        if (i) {
            /* Each reason names the external_ids key it is about. */
            CU_ASSERT(!strncmp(s, "chand-", 6));
        }
        for (int j = 0; j < i; j++) {
            CU_ASSERT(strcmp(s, chan_ep_strerror(j)));
        }
    }
    CU_ASSERT_STRING_EQUAL(chan_ep_strerror(CHAN_EP_OK), "success");
    CU_ASSERT_PTR_NOT_NULL(chan_ep_strerror(CHAN_EP_N_ERRORS));
}

static void
test_vm_name(void)
{
    static const char *const good[] = {
        "vm1", "a", "web-01.prod_eu", "A.B-C_D",
        "0123456789012345678901234567890123456789012345678901234567890123",
    };
    static const char *const bad[] = {
        "", "vm 1", "vm/1", "vm1;", "\xc3\xa9", "vm\t",
        "01234567890123456789012345678901234567890123456789012345678901234",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        CU_ASSERT_TRUE(chan_vm_name_is_valid(good[i]));
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_FALSE(chan_vm_name_is_valid(bad[i]));
    }
}

static const struct unit_test tests[] = {
    { "VM names", test_vm_name },
    { "host endpoint", test_host_endpoint },
    { "guest endpoint", test_guest_endpoint },
    { "guest endpoint properties", test_guest_properties },
    { "validity", test_validity },
    { "parse chand-id", test_parse_id },
    { "parse chand-vid", test_parse_vid },
    { "parse chand-guest-ip", test_parse_guest_ip },
    { "parse chand-guest-mac", test_parse_guest_mac },
    { "config from strings", test_config },
    { "strerror", test_strerror },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("chan-endpoint", tests);
}
