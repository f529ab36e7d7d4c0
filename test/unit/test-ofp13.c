/* Unit tests for lib/ofp13 (OpenFlow 1.3 codec). */

#include <config.h>
#include "unit.h"
#include "ofp13.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages captured from a real Open vSwitch 3.1.0 (ovs-vswitchd
 * --enable-dummy=override, bridge br0 with datapath_type=dummy) through a
 * byte-dumping proxy on br0.mgmt, and from ovs-ofctl 3.1.0. */

/* The test frame: broadcast UDP from 0a:c4:00:00:00:01 169.254.0.1:7433 to
 * 169.254.1.1:7433, 42 bytes. */
#define FRAME_HEX \
    "ffffffffffff0ac40000000108004500001c0001000040117ac5a9fe0001a9fe0101" \
    "1d091d090008f6b8"

/* The frame injected with "netdev-dummy/receive p1". */
#define FRAME2_HEX \
    "0ac4000000000ac40000000108004500001c0001000040117ac5a9fe0101a9fe0001" \
    "1d091d090008f6b8"

/* ovs-ofctl -O OpenFlow13 packet-out br0 "in_port=controller
 * packet=FRAME actions=set_field:7->pkt_mark,output:table" (xid 6). */
static const char ofctl_packet_out[] =
    "040d006200000006"                          /* header, len 98 */
    "ffffffff" "fffffffd" "0020" "000000000000" /* buffer, in_port, alen */
    "0019" "0010" "00014204" "00000007" "00000000"  /* set_field */
    "0000" "0010" "fffffff9" "0000" "000000000000"  /* output:TABLE */
    FRAME_HEX;

/* PACKET_IN sent by ovs-vswitchd for flow "in_port=1
 * actions=set_field:9->pkt_mark,controller" after netdev-dummy/receive. */
static const char ovs_packet_in[] =
    "040a005c00000000"                          /* header, len 92, xid 0 */
    "ffffffff" "002a" "01" "00"                 /* buffer, total, reason */
    "0000000000000000"                          /* cookie */
    "0001" "0014"                               /* OXM match, len 20 */
    "80000004" "00000001"                       /* OXM_OF_IN_PORT = 1 */
    "00014204" "00000009"                       /* NXM_NX_PKT_MARK = 9 */
    "00000000"                                  /* match padding */
    "0000"                                      /* 2 pad bytes */
    FRAME2_HEX;

/* The same with flow cookie 0x4300abcd00000005. */
static const char ovs_packet_in_cookie[] =
    "040a005c00000000ffffffff002a0100" "4300abcd00000005"
    "00010014800000040000000100014204000000090000000000"
    "00" FRAME2_HEX;

/* HELLO from a bridge with protocols=OpenFlow13, and with protocols unset
 * (OVS then says version 0x06 with no elements). */
static const char ovs_hello_13[] = "040000100000000c0001000800000010";
static const char ovs_hello_default[] = "060000080000001c";

static const char ovs_features_reply[] =
    "04060020000000020000feab334e804600000000fe0000000000004f00000000";
static const char ovs_get_async_reply[] =
    "041b002000000005000000020000000000000000000000000000000000000000";
static const char ovs_echo_reply[] = "0403000c0000000670696e67";
static const char ovs_barrier_reply[] = "0415000800000007";

/* OVS's answer to a PACKET_OUT whose first action type was 0x7719:
 * OFPET_BAD_ACTION/OFPBAC_BAD_TYPE with the whole request as data. */
static const char ovs_error[] =
    "0401006e0000000c" "0002" "0000"
    "040d00620000000cfffffffffffffffd0020000000000000"
    "7719001000014204000000070000000000000010fffffff9"
    "0000000000000000" FRAME_HEX;

/* Messages that real OVS accepted from this codec (our bytes). */
static const char our_set_async[] =
    "041c002000000004000000020000000000000000000000000000000000000000";
static const char our_set_controller_id[] =
    "040400180000000300002320000000140000000000001092";
static const char our_hello[] = "04000010000000010001000800000010";

/* Helpers. */

static size_t
unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (s[0]) {
        if (s[0] == ' ') {
            s++;
            continue;
        }
        unsigned int byte = 0;
        CU_ASSERT_FATAL(s[1] && sscanf(s, "%2x", &byte) == 1);
        CU_ASSERT_FATAL(n < cap);
        out[n++] = byte;
        s += 2;
    }
    return n;
}

static void
set_be16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}

static void
set_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

/* Returns a malloc'd copy of 'n' bytes of 'p' (at least 1 byte allocated)
 * so that ASan catches any read past 'n'. */
static uint8_t *
exact_copy(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    CU_ASSERT_FATAL(q != NULL);
    if (n) {
        memcpy(q, p, n);
    }
    return q;
}

static bool
within(const uint8_t *ptr, size_t len, const uint8_t *buf, size_t n)
{
    if (!len) {
        return ptr == NULL;
    }
    return ptr >= buf && ptr + len <= buf + n;
}

/* Runs every decoder on 'p'/'n'; on success checks that returned pointers
 * stay inside the input.  Returns the number of decoders that accepted. */
static int
decode_all(const uint8_t *p, size_t n)
{
    struct ofp13_header h;
    struct ofp13_echo echo;
    struct ofp13_error_msg em;
    struct ofp13_features f;
    struct ofp13_async_config ac;
    struct ofp13_packet_out po;
    struct ofp13_packet_in pin;
    uint32_t u32, u32b;
    uint16_t u16;
    uint8_t u8;
    size_t mlen;
    int ok = 0;

    if (!ofp13_decode_header(p, n, &h)) {
        CU_ASSERT(h.length >= 8);
        ok++;
    }
    int e = ofp13_frame(p, n, 0, &mlen);
    if (!e) {
        CU_ASSERT(mlen >= 8 && mlen <= n);
    } else if (e == OFP13_E_INCOMPLETE) {
        CU_ASSERT(mlen > n && mlen >= 8);
    } else {
        CU_ASSERT(mlen == 0);
    }
    ofp13_frame(p, n, OFP13_VERSION, &mlen);
    if (!ofp13_decode_hello(p, n, &u32)) {
        CU_ASSERT(u32 & (1u << 4));
        ok++;
    }
    if (!ofp13_decode_echo(p, n, &echo)) {
        CU_ASSERT(within(echo.data, echo.data_len, p, n));
        CU_ASSERT(echo.data_len == n - 8);
        ok++;
    }
    if (!ofp13_decode_error(p, n, &em)) {
        CU_ASSERT(within(em.data, em.data_len, p, n));
        ok++;
    }
    for (int t = 0; t < 32; t++) {
        if (!ofp13_decode_simple(p, n, t, &u32)) {
            CU_ASSERT(n == 8);
            ok++;
        }
    }
    if (!ofp13_decode_features_reply(p, n, &u32, &f)) {
        CU_ASSERT(n == 32);
        ok++;
    }
    if (!ofp13_decode_async_config(p, n, &u8, &u32, &ac)) {
        CU_ASSERT(n == 32);
        ok++;
    }
    if (!ofp13_decode_experimenter(p, n, &u32, &u32b)) {
        CU_ASSERT(n >= 16);
        ok++;
    }
    if (!ofp13_decode_set_controller_id(p, n, &u32, &u16)) {
        CU_ASSERT(n == 24);
        ok++;
    }
    if (!ofp13_decode_packet_out(p, n, &po)) {
        CU_ASSERT(within(po.data, po.data_len, p, n));
        ok++;
    }
    if (!ofp13_decode_packet_in(p, n, &pin)) {
        CU_ASSERT(within(pin.data, pin.data_len, p, n));
        CU_ASSERT(pin.data_len <= pin.total_len);
        ok++;
    }
    return ok;
}

/* Error strings. */

static void
test_strerror(void)
{
    for (int i = 0; i < OFP13_E_MAX; i++) {
        const char *s = ofp13_strerror(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT(strcmp(s, "unknown ofp13 error") != 0);
        for (int j = 0; j < i; j++) {
            CU_ASSERT(strcmp(s, ofp13_strerror(j)) != 0);
        }
    }
    CU_ASSERT_STRING_EQUAL(ofp13_strerror(0), "success");
    CU_ASSERT_STRING_EQUAL(ofp13_strerror(-1), "unknown ofp13 error");
    CU_ASSERT_STRING_EQUAL(ofp13_strerror(OFP13_E_MAX),
                           "unknown ofp13 error");
}

static void
test_error_string(void)
{
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(0, 0), "OFPHFC_INCOMPATIBLE");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(1, 1), "OFPBRC_BAD_TYPE");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(1, 4), "OFPBRC_BAD_EXP_TYPE");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(1, 6), "OFPBRC_BAD_LEN");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(1, 13),
                           "OFPBRC_MULTIPART_BUFFER_OVERFLOW");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(2, 0), "OFPBAC_BAD_TYPE");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(2, 4), "OFPBAC_BAD_OUT_PORT");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(2, 14),
                           "OFPBAC_BAD_SET_LEN");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(2, 15),
                           "OFPBAC_BAD_SET_ARGUMENT");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(3, 8), "OFPBIC_EPERM");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(4, 6), "OFPBMC_BAD_FIELD");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(4, 9), "OFPBMC_BAD_PREREQ");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(5, 1), "OFPFMFC_TABLE_FULL");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(10, 2), "OFPSCFC_EPERM");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(11, 0), "OFPRRFC_STALE");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(1, 14),
                           "OFPET_BAD_REQUEST (unknown code)");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(2, 0xffff),
                           "OFPET_BAD_ACTION (unknown code)");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(6, 0),
                           "OFPET_GROUP_MOD_FAILED (unknown code)");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(13, 0),
                           "OFPET_TABLE_FEATURES_FAILED (unknown code)");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(14, 0), "unknown error type");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(0xfffe, 0),
                           "unknown error type");
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(0xffff, 3),
                           "OFPET_EXPERIMENTER");
}

/* Header and framer. */

static void
test_header(void)
{
    struct ofp13_header h = { 4, 10, 92, 0xdeadbeef }, h2;
    uint8_t buf[8];

    CU_ASSERT_EQUAL(ofp13_encode_header(buf, sizeof buf, &h), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "\x04\x0a\x00\x5c\xde\xad\xbe\xef", 8), 0);
    CU_ASSERT_EQUAL(ofp13_decode_header(buf, 8, &h2), 0);
    CU_ASSERT_EQUAL(h2.version, 4);
    CU_ASSERT_EQUAL(h2.type, 10);
    CU_ASSERT_EQUAL(h2.length, 92);
    CU_ASSERT_EQUAL(h2.xid, 0xdeadbeef);

    /* Peeking needs only 8 bytes even though the length says 92. */
    for (size_t n = 0; n < 8; n++) {
        CU_ASSERT_EQUAL(ofp13_decode_header(buf, n, &h2), OFP13_E_TOO_SHORT);
        CU_ASSERT_EQUAL(h2.length, 0);
    }
    CU_ASSERT_EQUAL(ofp13_decode_header(NULL, 8, &h2), OFP13_E_TOO_SHORT);
    CU_ASSERT_EQUAL(ofp13_encode_header(buf, 7, &h), OFP13_E_NO_SPACE);
    CU_ASSERT_EQUAL(ofp13_encode_header(NULL, 8, &h), OFP13_E_NO_SPACE);
    h.length = 7;
    CU_ASSERT_EQUAL(ofp13_encode_header(buf, 8, &h), OFP13_E_BAD_LENGTH);
    buf[2] = 0;
    buf[3] = 7;
    CU_ASSERT_EQUAL(ofp13_decode_header(buf, 8, &h2), OFP13_E_BAD_LENGTH);
    buf[3] = 0;
    CU_ASSERT_EQUAL(ofp13_decode_header(buf, 8, &h2), OFP13_E_BAD_LENGTH);
}

static void
test_frame(void)
{
    uint8_t buf[256];
    size_t n = unhex(ovs_packet_in, buf, sizeof buf);
    size_t n2 = unhex(ovs_barrier_reply, buf + n, sizeof buf - n);
    size_t mlen;

    /* Every prefix of the first message is incomplete. */
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(ofp13_frame(buf, i, OFP13_VERSION, &mlen),
                        OFP13_E_INCOMPLETE);
        CU_ASSERT_EQUAL(mlen, i < 4 ? 8 : n);
    }
    CU_ASSERT_EQUAL(ofp13_frame(buf, n, OFP13_VERSION, &mlen), 0);
    CU_ASSERT_EQUAL(mlen, n);
    CU_ASSERT_EQUAL(ofp13_frame(buf, n + n2, OFP13_VERSION, &mlen), 0);
    CU_ASSERT_EQUAL(mlen, n);
    CU_ASSERT_EQUAL(ofp13_frame(buf + n, n2, OFP13_VERSION, &mlen), 0);
    CU_ASSERT_EQUAL(mlen, n2);
    CU_ASSERT_EQUAL(ofp13_frame(buf + n, n2 + 3, 0, &mlen), 0);
    CU_ASSERT_EQUAL(mlen, 8);
    CU_ASSERT_EQUAL(ofp13_frame(NULL, 0, 0, &mlen), OFP13_E_INCOMPLETE);
    CU_ASSERT_EQUAL(mlen, 8);
    CU_ASSERT_EQUAL(ofp13_frame(NULL, 5, 0, &mlen), OFP13_E_BAD_ARG);

    /* Before negotiation any nonzero version frames; a HELLO from OVS with
     * protocols unset says 0x06. */
    uint8_t hello[8];
    unhex(ovs_hello_default, hello, sizeof hello);
    CU_ASSERT_EQUAL(ofp13_frame(hello, 8, 0, &mlen), 0);
    CU_ASSERT_EQUAL(mlen, 8);
    CU_ASSERT_EQUAL(ofp13_frame(hello, 8, OFP13_VERSION, &mlen),
                    OFP13_E_BAD_VERSION);
    CU_ASSERT_EQUAL(mlen, 0);
    /* The version is judged as soon as its byte is present. */
    CU_ASSERT_EQUAL(ofp13_frame(hello, 1, OFP13_VERSION, &mlen),
                    OFP13_E_BAD_VERSION);
    hello[0] = 0;
    CU_ASSERT_EQUAL(ofp13_frame(hello, 1, 0, &mlen), OFP13_E_BAD_VERSION);
    CU_ASSERT_EQUAL(ofp13_frame(hello, 8, 0, &mlen), OFP13_E_BAD_VERSION);

    /* Length below 8 is invalid as soon as it is known. */
    uint8_t bad[8] = { 4, 0, 0, 7, 0, 0, 0, 0 };
    for (size_t i = 4; i <= 8; i++) {
        CU_ASSERT_EQUAL(ofp13_frame(bad, i, 4, &mlen), OFP13_E_BAD_LENGTH);
        CU_ASSERT_EQUAL(mlen, 0);
    }
    bad[3] = 0;
    CU_ASSERT_EQUAL(ofp13_frame(bad, 8, 4, &mlen), OFP13_E_BAD_LENGTH);
    bad[3] = 8;
    CU_ASSERT_EQUAL(ofp13_frame(bad, 8, 4, &mlen), 0);
    CU_ASSERT_EQUAL(mlen, 8);

    /* The largest message. */
    uint8_t *big = calloc(1, 65535);
    CU_ASSERT_FATAL(big != NULL);
    big[0] = 4;
    big[2] = 0xff;
    big[3] = 0xff;
    CU_ASSERT_EQUAL(ofp13_frame(big, 65534, 4, &mlen), OFP13_E_INCOMPLETE);
    CU_ASSERT_EQUAL(mlen, 65535);
    CU_ASSERT_EQUAL(ofp13_frame(big, 65535, 4, &mlen), 0);
    CU_ASSERT_EQUAL(mlen, 65535);
    free(big);

    /* Framing a stream of many messages byte by byte. */
    uint8_t stream[1024];
    size_t slen = 0, count = 0;
    const char *msgs[] = {
        ovs_hello_13, ovs_features_reply, ovs_packet_in, ovs_echo_reply,
        ovs_error, ovs_barrier_reply, ovs_get_async_reply,
    };
    for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++) {
        slen += unhex(msgs[i], stream + slen, sizeof stream - slen);
    }
    size_t have = 0, start = 0;
    while (have < slen) {
        have++;
        int e = ofp13_frame(stream + start, have - start, OFP13_VERSION,
                            &mlen);
        if (!e) {
            CU_ASSERT_EQUAL(have - start, mlen);
            start += mlen;
            count++;
        } else {
            CU_ASSERT_EQUAL(e, OFP13_E_INCOMPLETE);
        }
    }
    CU_ASSERT_EQUAL(start, slen);
    CU_ASSERT_EQUAL(count, sizeof msgs / sizeof *msgs);
}

/* HELLO. */

static void
test_hello(void)
{
    uint8_t buf[64], exp[64];
    size_t len;
    uint32_t versions;

    CU_ASSERT_EQUAL(ofp13_encode_hello(buf, sizeof buf, &len, 1), 0);
    CU_ASSERT_EQUAL(len, OFP13_HELLO_LEN);
    CU_ASSERT_EQUAL(unhex(our_hello, exp, sizeof exp), len);
    CU_ASSERT_EQUAL(memcmp(buf, exp, len), 0);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0x10);

    /* Real OVS HELLOs. */
    len = unhex(ovs_hello_13, buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0x10);
    len = unhex(ovs_hello_default, buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0x7e);

    /* Header-only HELLOs. */
    len = unhex("0100000800000001", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions),
                    OFP13_E_NO_COMMON_VERSION);
    CU_ASSERT_EQUAL(versions, 0x02);
    len = unhex("0300000800000001", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions),
                    OFP13_E_NO_COMMON_VERSION);
    CU_ASSERT_EQUAL(versions, 0x0e);
    len = unhex("0400000800000001", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0x1e);
    len = unhex("ff00000800000001", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0xfffffffe);
    len = unhex("0000000800000001", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions),
                    OFP13_E_BAD_VERSION);

    /* The bitmap wins over the header version. */
    len = unhex("06000010000000010001000800000042", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions),
                    OFP13_E_NO_COMMON_VERSION);
    CU_ASSERT_EQUAL(versions, 0x42);
    /* Bit 0 (version 0) is ignored. */
    len = unhex("04000010000000010001000800000011", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0x10);
    len = unhex("04000010000000010001000800000001", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions),
                    OFP13_E_NO_COMMON_VERSION);
    CU_ASSERT_EQUAL(versions, 0);
    /* Two-word bitmap with padding; only word 0 counts. */
    len = unhex("0400001800000001" "0001000c" "00000010" "ffffffff"
                "00000000", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0x10);
    /* Unknown element types are skipped, before and after. */
    len = unhex("0400002000000001" "00070005" "aa000000"
                "0001000800000010" "00080004" "00000000", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0x10);
    /* Only the first bitmap counts. */
    len = unhex("0400001800000001" "0001000800000010" "0001000800000002",
                buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions), 0);
    CU_ASSERT_EQUAL(versions, 0x10);

    /* Malformed elements. */
    static const char *const bad_elems[] = {
        "0001",                     /* Partial element header. */
        "00010003" "00000000",      /* Length below 4. */
        "00010000" "00000000",      /* Length 0. */
        "00010004" "00000000",      /* Empty bitmap. */
        "00010006" "00000000",      /* Bitmap not a multiple of 4. */
        "00010009" "0000001000000000", /* Ditto (9 -> padded 16). */
        "0001000c" "00000010",      /* Overruns message. */
        "00010008" "00000010" "00", /* Trailing byte. */
        "00010008" "00000010" "0007", /* Trailing partial header. */
        "00070010" "00000000",      /* Unknown element overruns. */
        "00010005" "00000010",      /* 1-byte bitmap (5 pads to 8). */
    };
    for (size_t i = 0; i < sizeof bad_elems / sizeof *bad_elems; i++) {
        len = 8 + unhex(bad_elems[i], buf + 8, sizeof buf - 8);
        unhex("04000000000000aa", buf, 8);
        buf[3] = len;
        CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions),
                        OFP13_E_HELLO_ELEM);
        CU_ASSERT_EQUAL(versions, 0);
    }

    /* Wrong type, length mismatch, truncation. */
    len = unhex(ovs_hello_13, buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len - 1, &versions),
                    OFP13_E_TOO_SHORT);
    buf[len] = 0;
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len + 1, &versions),
                    OFP13_E_LENGTH_MISMATCH);
    buf[1] = OFP13_ERROR;
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, len, &versions),
                    OFP13_E_BAD_TYPE);
    CU_ASSERT_EQUAL(ofp13_decode_hello(buf, 7, &versions),
                    OFP13_E_TOO_SHORT);

    /* Encoder space checks. */
    CU_ASSERT_EQUAL(ofp13_encode_hello(buf, 15, &len, 1), OFP13_E_NO_SPACE);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(ofp13_encode_hello(NULL, 64, &len, 1),
                    OFP13_E_NO_SPACE);
    CU_ASSERT_EQUAL(ofp13_encode_hello(buf, 16, NULL, 1), 0);
}

/* ECHO. */

static void
test_echo(void)
{
    uint8_t buf[128], exp[64];
    size_t len;
    struct ofp13_echo echo;

    CU_ASSERT_EQUAL(ofp13_encode_echo_request(buf, sizeof buf, &len, 6,
                                              "ping", 4), 0);
    CU_ASSERT_EQUAL(len, 12);
    CU_ASSERT_EQUAL(memcmp(buf, "\x04\x02\x00\x0c\x00\x00\x00\x06ping", 12),
                    0);
    CU_ASSERT_EQUAL(ofp13_decode_echo(buf, len, &echo), 0);
    CU_ASSERT_EQUAL(echo.type, OFP13_ECHO_REQUEST);
    CU_ASSERT_EQUAL(echo.xid, 6);
    CU_ASSERT_EQUAL(echo.data_len, 4);
    CU_ASSERT_PTR_EQUAL(echo.data, buf + 8);

    /* The reply echoes xid and payload: exactly what OVS answered. */
    uint8_t reply[64];
    size_t rlen;
    CU_ASSERT_EQUAL(ofp13_encode_echo_reply(reply, sizeof reply, &rlen,
                                            echo.xid, echo.data,
                                            echo.data_len), 0);
    CU_ASSERT_EQUAL(unhex(ovs_echo_reply, exp, sizeof exp), rlen);
    CU_ASSERT_EQUAL(memcmp(reply, exp, rlen), 0);
    CU_ASSERT_EQUAL(ofp13_decode_echo(exp, rlen, &echo), 0);
    CU_ASSERT_EQUAL(echo.type, OFP13_ECHO_REPLY);
    CU_ASSERT_EQUAL(echo.xid, 6);

    /* Empty payload. */
    CU_ASSERT_EQUAL(ofp13_encode_echo_request(buf, sizeof buf, &len, 1,
                                              NULL, 0), 0);
    CU_ASSERT_EQUAL(len, 8);
    CU_ASSERT_EQUAL(ofp13_decode_echo(buf, len, &echo), 0);
    CU_ASSERT_PTR_NULL(echo.data);
    CU_ASSERT_EQUAL(echo.data_len, 0);

    /* Largest payload. */
    size_t max = OFP13_MAX_MSG_LEN - 8;
    uint8_t *payload = calloc(1, max + 1);
    uint8_t *big = malloc(OFP13_MAX_MSG_LEN + 1);
    CU_ASSERT_FATAL(payload && big);
    payload[max - 1] = 0x5a;
    CU_ASSERT_EQUAL(ofp13_encode_echo_request(big, OFP13_MAX_MSG_LEN + 1,
                                              &len, 9, payload, max), 0);
    CU_ASSERT_EQUAL(len, OFP13_MAX_MSG_LEN);
    CU_ASSERT_EQUAL(ofp13_decode_echo(big, len, &echo), 0);
    CU_ASSERT_EQUAL(echo.data_len, max);
    CU_ASSERT_EQUAL(echo.data[max - 1], 0x5a);
    CU_ASSERT_EQUAL(ofp13_encode_echo_request(big, OFP13_MAX_MSG_LEN + 1,
                                              &len, 9, payload, max + 1),
                    OFP13_E_TOO_BIG);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(ofp13_encode_echo_reply(big, OFP13_MAX_MSG_LEN + 1,
                                            &len, 9, payload, max + 1),
                    OFP13_E_TOO_BIG);
    free(payload);
    free(big);

    CU_ASSERT_EQUAL(ofp13_encode_echo_request(buf, sizeof buf, &len, 1,
                                              NULL, 3), OFP13_E_BAD_ARG);
    CU_ASSERT_EQUAL(ofp13_encode_echo_request(buf, 11, &len, 1, "ping", 4),
                    OFP13_E_NO_SPACE);
    CU_ASSERT_EQUAL(len, 0);

    /* Other types are rejected. */
    len = unhex(ovs_barrier_reply, buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_echo(buf, len, &echo), OFP13_E_BAD_TYPE);
    CU_ASSERT_PTR_NULL(echo.data);
    /* Wrong version. */
    len = unhex("0302000800000001", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_echo(buf, len, &echo), OFP13_E_BAD_VERSION);
}

/* ERROR. */

static void
test_error(void)
{
    uint8_t buf[256], buf2[256];
    size_t len, len2;
    struct ofp13_error_msg em;

    /* Real OVS error, with the failed request as data. */
    len = unhex(ovs_error, buf, sizeof buf);
    CU_ASSERT_EQUAL(len, 110);
    CU_ASSERT_EQUAL(ofp13_decode_error(buf, len, &em), 0);
    CU_ASSERT_EQUAL(em.xid, 12);
    CU_ASSERT_EQUAL(em.type, OFP13_ET_BAD_ACTION);
    CU_ASSERT_EQUAL(em.code, 0);
    CU_ASSERT_EQUAL(em.experimenter, 0);
    CU_ASSERT_EQUAL(em.data_len, 98);
    CU_ASSERT_PTR_EQUAL(em.data, buf + 12);
    CU_ASSERT_STRING_EQUAL(ofp13_error_string(em.type, em.code),
                           "OFPBAC_BAD_TYPE");
    /* Peek at the failed request's header. */
    struct ofp13_header h;
    CU_ASSERT_EQUAL(ofp13_decode_header(em.data, em.data_len, &h), 0);
    CU_ASSERT_EQUAL(h.type, OFP13_PACKET_OUT);
    CU_ASSERT_EQUAL(h.xid, 12);
    /* OVS may send only the first 64 bytes: peeking still works. */
    CU_ASSERT_EQUAL(ofp13_decode_header(em.data, 8, &h), 0);
    CU_ASSERT_EQUAL(h.length, 98);

    /* Re-encoding gives the same bytes. */
    CU_ASSERT_EQUAL(ofp13_encode_error(buf2, sizeof buf2, &len2, 12, 2, 0,
                                       0xdead, em.data, em.data_len), 0);
    CU_ASSERT_EQUAL(len2, len);
    CU_ASSERT_EQUAL(memcmp(buf, buf2, len), 0);

    /* Without data. */
    CU_ASSERT_EQUAL(ofp13_encode_error(buf2, sizeof buf2, &len2, 77, 1, 6,
                                       0, NULL, 0), 0);
    CU_ASSERT_EQUAL(len2, 12);
    CU_ASSERT_EQUAL(ofp13_decode_error(buf2, len2, &em), 0);
    CU_ASSERT_EQUAL(em.xid, 77);
    CU_ASSERT_EQUAL(em.type, 1);
    CU_ASSERT_EQUAL(em.code, 6);
    CU_ASSERT_PTR_NULL(em.data);
    CU_ASSERT_EQUAL(em.data_len, 0);

    /* Experimenter error. */
    CU_ASSERT_EQUAL(ofp13_encode_error(buf2, sizeof buf2, &len2, 5,
                                       OFP13_ET_EXPERIMENTER, 0x1234,
                                       0x00002320, "abc", 3), 0);
    CU_ASSERT_EQUAL(len2, 19);
    CU_ASSERT_EQUAL(memcmp(buf2, "\x04\x01\x00\x13\x00\x00\x00\x05"
                           "\xff\xff\x12\x34\x00\x00\x23\x20" "abc", 19), 0);
    CU_ASSERT_EQUAL(ofp13_decode_error(buf2, len2, &em), 0);
    CU_ASSERT_EQUAL(em.type, OFP13_ET_EXPERIMENTER);
    CU_ASSERT_EQUAL(em.code, 0x1234);
    CU_ASSERT_EQUAL(em.experimenter, 0x2320);
    CU_ASSERT_EQUAL(em.data_len, 3);
    CU_ASSERT_EQUAL(memcmp(em.data, "abc", 3), 0);

    /* Short bodies. */
    len = unhex("0401000b00000001000100", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_error(buf, len, &em), OFP13_E_BAD_BODY_LEN);
    len = unhex("0401000800000001", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_error(buf, len, &em), OFP13_E_BAD_BODY_LEN);
    len = unhex("0401000f00000001ffff0001000023", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_error(buf, len, &em), OFP13_E_BAD_BODY_LEN);
    CU_ASSERT_EQUAL(em.type, 0);

    /* Encoder limits. */
    CU_ASSERT_EQUAL(ofp13_encode_error(buf2, sizeof buf2, &len2, 1, 1, 1, 0,
                                       NULL, 4), OFP13_E_BAD_ARG);
    CU_ASSERT_EQUAL(ofp13_encode_error(buf2, 11, &len2, 1, 1, 1, 0,
                                       NULL, 0), OFP13_E_NO_SPACE);
    CU_ASSERT_EQUAL(ofp13_encode_error(buf2, sizeof buf2, &len2, 1, 1, 1, 0,
                                       buf, 65535 - 11), OFP13_E_TOO_BIG);
    CU_ASSERT_EQUAL(ofp13_encode_error(buf2, sizeof buf2, &len2, 1, 0xffff,
                                       1, 0, buf, 65535 - 15),
                    OFP13_E_TOO_BIG);
}

/* Header-only messages. */

static void
test_simple(void)
{
    static const uint8_t types[] = {
        OFP13_FEATURES_REQUEST, OFP13_BARRIER_REQUEST, OFP13_BARRIER_REPLY,
        OFP13_GET_ASYNC_REQUEST,
    };
    uint8_t buf[16];
    size_t len;
    uint32_t xid;

    for (size_t i = 0; i < sizeof types; i++) {
        CU_ASSERT_EQUAL(ofp13_encode_simple(buf, sizeof buf, &len, types[i],
                                            0x01020304 + i), 0);
        CU_ASSERT_EQUAL(len, 8);
        CU_ASSERT_EQUAL(buf[0], 4);
        CU_ASSERT_EQUAL(buf[1], types[i]);
        CU_ASSERT_EQUAL(buf[3], 8);
        CU_ASSERT_EQUAL(ofp13_decode_simple(buf, len, types[i], &xid), 0);
        CU_ASSERT_EQUAL(xid, 0x01020304 + i);
        CU_ASSERT_EQUAL(ofp13_decode_simple(buf, len, types[i] + 1, &xid),
                        OFP13_E_BAD_TYPE);
        CU_ASSERT_EQUAL(ofp13_decode_simple(buf, len, types[i], NULL), 0);
    }
    len = unhex(ovs_barrier_reply, buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_simple(buf, len, OFP13_BARRIER_REPLY, &xid),
                    0);
    CU_ASSERT_EQUAL(xid, 7);

    /* A body is not allowed. */
    len = unhex("0415000a000000070000", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_simple(buf, len, OFP13_BARRIER_REPLY, &xid),
                    OFP13_E_BAD_BODY_LEN);
    len = unhex("0115000800000007", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_simple(buf, len, OFP13_BARRIER_REPLY, &xid),
                    OFP13_E_BAD_VERSION);
    CU_ASSERT_EQUAL(ofp13_encode_simple(buf, 7, &len, 20, 1),
                    OFP13_E_NO_SPACE);
}

/* FEATURES_REPLY. */

static void
test_features(void)
{
    uint8_t buf[64], buf2[64];
    size_t len, len2;
    struct ofp13_features f;
    uint32_t xid;

    len = unhex(ovs_features_reply, buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_features_reply(buf, len, &xid, &f), 0);
    CU_ASSERT_EQUAL(xid, 2);
    CU_ASSERT_EQUAL(f.datapath_id, UINT64_C(0x0000feab334e8046));
    CU_ASSERT_EQUAL(f.n_buffers, 0);
    CU_ASSERT_EQUAL(f.n_tables, 254);
    CU_ASSERT_EQUAL(f.auxiliary_id, 0);
    CU_ASSERT_EQUAL(f.capabilities, 0x4f);
    CU_ASSERT_EQUAL(ofp13_encode_features_reply(buf2, sizeof buf2, &len2, 2,
                                                &f), 0);
    CU_ASSERT_EQUAL(len2, len);
    CU_ASSERT_EQUAL(memcmp(buf, buf2, len), 0);

    struct ofp13_features g = {
        .datapath_id = UINT64_C(0x8877665544332211), .n_buffers = 256,
        .n_tables = 3, .auxiliary_id = 9, .capabilities = 0x80000001,
    }, g2;
    CU_ASSERT_EQUAL(ofp13_encode_features_reply(buf2, sizeof buf2, &len2,
                                                0xffffffff, &g), 0);
    CU_ASSERT_EQUAL(ofp13_decode_features_reply(buf2, len2, NULL, &g2), 0);
    CU_ASSERT_EQUAL(g2.datapath_id, g.datapath_id);
    CU_ASSERT_EQUAL(g2.n_buffers, 256);
    CU_ASSERT_EQUAL(g2.n_tables, 3);
    CU_ASSERT_EQUAL(g2.auxiliary_id, 9);
    CU_ASSERT_EQUAL(g2.capabilities, 0x80000001);

    /* Longer body (as OF1.0's port list would be) is rejected. */
    memset(buf2 + 32, 0, 8);
    buf2[3] = 40;
    CU_ASSERT_EQUAL(ofp13_decode_features_reply(buf2, 40, NULL, &g2),
                    OFP13_E_BAD_BODY_LEN);
    CU_ASSERT_EQUAL(g2.datapath_id, 0);
    buf2[3] = 24;
    CU_ASSERT_EQUAL(ofp13_decode_features_reply(buf2, 24, NULL, &g2),
                    OFP13_E_BAD_BODY_LEN);
    CU_ASSERT_EQUAL(ofp13_encode_features_reply(buf2, 31, &len2, 1, &g),
                    OFP13_E_NO_SPACE);
}

/* SET_ASYNC. */

static void
test_async(void)
{
    uint8_t buf[64], exp[64];
    size_t len;
    struct ofp13_async_config ac, ac2;
    uint8_t type;
    uint32_t xid;

    ofp13_async_config_chand(&ac, false);
    CU_ASSERT_EQUAL(ac.packet_in_mask[0], 1u << OFP13_R_ACTION);
    CU_ASSERT_EQUAL(ac.packet_in_mask[1], 0);
    CU_ASSERT_EQUAL(ac.port_status_mask[0] | ac.port_status_mask[1]
                    | ac.flow_removed_mask[0] | ac.flow_removed_mask[1], 0);
    CU_ASSERT_EQUAL(ofp13_encode_set_async(buf, sizeof buf, &len, 4, &ac),
                    0);
    CU_ASSERT_EQUAL(len, 32);
    CU_ASSERT_EQUAL(unhex(our_set_async, exp, sizeof exp), 32);
    CU_ASSERT_EQUAL(memcmp(buf, exp, 32), 0);
    CU_ASSERT_EQUAL(ofp13_decode_async_config(buf, len, &type, &xid, &ac2),
                    0);
    CU_ASSERT_EQUAL(type, OFP13_SET_ASYNC);
    CU_ASSERT_EQUAL(xid, 4);
    CU_ASSERT_EQUAL(memcmp(&ac, &ac2, sizeof ac), 0);

    ofp13_async_config_chand(&ac, true);
    CU_ASSERT_EQUAL(ac.packet_in_mask[0], 3);

    struct ofp13_async_config all = {
        { 0x11111111, 0x22222222 }, { 0x33333333, 0x44444444 },
        { 0x55555555, 0x66666666 },
    };
    CU_ASSERT_EQUAL(ofp13_encode_set_async(buf, sizeof buf, &len, 1, &all),
                    0);
    CU_ASSERT_EQUAL(memcmp(buf + 8, "\x11\x11\x11\x11\x22\x22\x22\x22"
                           "\x33\x33\x33\x33\x44\x44\x44\x44"
                           "\x55\x55\x55\x55\x66\x66\x66\x66", 24), 0);
    CU_ASSERT_EQUAL(ofp13_decode_async_config(buf, len, NULL, NULL, &ac2),
                    0);
    CU_ASSERT_EQUAL(memcmp(&all, &ac2, sizeof all), 0);

    /* OVS's GET_ASYNC_REPLY after our SET_ASYNC. */
    len = unhex(ovs_get_async_reply, buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_async_config(buf, len, &type, &xid, &ac2),
                    0);
    CU_ASSERT_EQUAL(type, OFP13_GET_ASYNC_REPLY);
    CU_ASSERT_EQUAL(xid, 5);
    CU_ASSERT_EQUAL(ac2.packet_in_mask[0], 2);

    buf[1] = OFP13_PACKET_IN;
    CU_ASSERT_EQUAL(ofp13_decode_async_config(buf, len, &type, &xid, &ac2),
                    OFP13_E_BAD_TYPE);
    buf[1] = OFP13_SET_ASYNC;
    buf[3] = 36;
    memset(buf + 32, 0, 4);
    CU_ASSERT_EQUAL(ofp13_decode_async_config(buf, 36, &type, &xid, &ac2),
                    OFP13_E_BAD_BODY_LEN);
    buf[3] = 28;
    CU_ASSERT_EQUAL(ofp13_decode_async_config(buf, 28, &type, &xid, &ac2),
                    OFP13_E_BAD_BODY_LEN);
    CU_ASSERT_EQUAL(ofp13_encode_set_async(buf, 31, &len, 1, &all),
                    OFP13_E_NO_SPACE);
}

/* NXT_SET_CONTROLLER_ID and experimenter headers. */

static void
test_set_controller_id(void)
{
    uint8_t buf[64], exp[64];
    size_t len;
    uint32_t xid, experimenter, subtype;
    uint16_t id;

    CU_ASSERT_EQUAL(ofp13_encode_set_controller_id(buf, sizeof buf, &len, 3,
                                                   4242), 0);
    CU_ASSERT_EQUAL(len, OFP13_SET_CONTROLLER_ID_LEN);
    CU_ASSERT_EQUAL(unhex(our_set_controller_id, exp, sizeof exp), len);
    CU_ASSERT_EQUAL(memcmp(buf, exp, len), 0);
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, len, &xid, &id), 0);
    CU_ASSERT_EQUAL(xid, 3);
    CU_ASSERT_EQUAL(id, 4242);
    CU_ASSERT_EQUAL(ofp13_decode_experimenter(buf, len, &experimenter,
                                              &subtype), 0);
    CU_ASSERT_EQUAL(experimenter, OFP13_NX_VENDOR_ID);
    CU_ASSERT_EQUAL(subtype, 20);

    CU_ASSERT_EQUAL(ofp13_encode_set_controller_id(buf, sizeof buf, &len, 1,
                                                   0xffff), 0);
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, len, NULL, &id), 0);
    CU_ASSERT_EQUAL(id, 0xffff);

    /* Subtype 24 is NXT_TLV_TABLE_MOD, not SET_CONTROLLER_ID. */
    buf[15] = 24;
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, len, NULL, &id),
                    OFP13_E_BAD_EXPERIMENTER);
    CU_ASSERT_EQUAL(id, 0);
    buf[15] = 20;
    buf[11] = 0x21;
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, len, NULL, &id),
                    OFP13_E_BAD_EXPERIMENTER);
    buf[11] = 0x20;
    buf[16] = 1;
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, len, NULL, &id),
                    OFP13_E_BAD_PADDING);
    buf[16] = 0;
    buf[21] = 1;
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, len, NULL, &id),
                    OFP13_E_BAD_PADDING);
    buf[21] = 0;
    buf[3] = 32;
    memset(buf + 24, 0, 8);
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, 32, NULL, &id),
                    OFP13_E_BAD_BODY_LEN);
    buf[3] = 16;
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, 16, NULL, &id),
                    OFP13_E_BAD_BODY_LEN);
    CU_ASSERT_EQUAL(ofp13_decode_experimenter(buf, 16, &experimenter,
                                              &subtype), 0);
    buf[3] = 15;
    CU_ASSERT_EQUAL(ofp13_decode_experimenter(buf, 15, &experimenter,
                                              &subtype),
                    OFP13_E_BAD_BODY_LEN);
    CU_ASSERT_EQUAL(experimenter, 0);
    buf[3] = 12;
    CU_ASSERT_EQUAL(ofp13_decode_set_controller_id(buf, 12, NULL, &id),
                    OFP13_E_BAD_BODY_LEN);
    buf[1] = OFP13_ERROR;
    CU_ASSERT_EQUAL(ofp13_decode_experimenter(buf, 12, &experimenter,
                                              &subtype), OFP13_E_BAD_TYPE);
    CU_ASSERT_EQUAL(ofp13_encode_set_controller_id(buf, 23, &len, 1, 1),
                    OFP13_E_NO_SPACE);
}

/* PACKET_OUT. */

static void
test_packet_out_ofctl(void)
{
    uint8_t exp[256], frame[64], buf[256];
    size_t elen = unhex(ofctl_packet_out, exp, sizeof exp);
    size_t flen = unhex(FRAME_HEX, frame, sizeof frame);
    size_t len;

    CU_ASSERT_EQUAL(flen, 42);
    CU_ASSERT_EQUAL(ofp13_packet_out_size(flen), elen);
    CU_ASSERT_EQUAL(ofp13_encode_packet_out(buf, sizeof buf, &len, 6,
                                            OFP13_PORT_CONTROLLER, 7,
                                            frame, flen), 0);
    CU_ASSERT_EQUAL(len, elen);
    CU_ASSERT_EQUAL(memcmp(buf, exp, len), 0);

    struct ofp13_packet_out po;
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(exp, elen, &po), 0);
    CU_ASSERT_EQUAL(po.xid, 6);
    CU_ASSERT_EQUAL(po.buffer_id, OFP13_NO_BUFFER);
    CU_ASSERT_EQUAL(po.in_port, OFP13_PORT_CONTROLLER);
    CU_ASSERT(po.has_pkt_mark);
    CU_ASSERT_EQUAL(po.pkt_mark, 7);
    CU_ASSERT(po.has_output);
    CU_ASSERT_EQUAL(po.out_port, OFP13_PORT_TABLE);
    CU_ASSERT_EQUAL(po.max_len, 0);
    CU_ASSERT_EQUAL(po.data_len, 42);
    CU_ASSERT_PTR_EQUAL(po.data, exp + 56);
    CU_ASSERT_EQUAL(memcmp(po.data, frame, flen), 0);
}

static void
test_packet_out_roundtrip(void)
{
    uint8_t *frame = malloc(OFP13_MAX_MSG_LEN);
    uint8_t *buf = malloc(OFP13_MAX_MSG_LEN + 8);
    uint64_t seed = 0x1234;
    size_t sizes[] = { 14, 15, 42, 60, 1500, 9000,
                       OFP13_PACKET_OUT_MAX_FRAME };
    struct ofp13_packet_out po;
    size_t len;

    CU_ASSERT_FATAL(frame && buf);
    for (size_t i = 0; i < OFP13_MAX_MSG_LEN; i++) {
        frame[i] = unit_random(&seed);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t flen = sizes[i];
        uint32_t mark = unit_random(&seed);
        uint32_t in_port = i ? OFP13_PORT_CONTROLLER : 5;
        size_t want = ofp13_packet_out_size(flen);

        CU_ASSERT_EQUAL(ofp13_encode_packet_out(buf, want - 1, &len, i,
                                                in_port, mark, frame, flen),
                        OFP13_E_NO_SPACE);
        CU_ASSERT_EQUAL(len, 0);
        CU_ASSERT_EQUAL(ofp13_encode_packet_out(buf, want, &len, i, in_port,
                                                mark, frame, flen), 0);
        CU_ASSERT_EQUAL(len, want);
        CU_ASSERT_EQUAL(buf[2] << 8 | buf[3], want);
        CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, len, &po), 0);
        CU_ASSERT_EQUAL(po.xid, i);
        CU_ASSERT_EQUAL(po.in_port, in_port);
        CU_ASSERT_EQUAL(po.pkt_mark, mark);
        CU_ASSERT_EQUAL(po.out_port, OFP13_PORT_TABLE);
        CU_ASSERT_EQUAL(po.data_len, flen);
        CU_ASSERT_EQUAL(memcmp(po.data, frame, flen), 0);
    }

    /* pkt_mark 0 is still written explicitly. */
    CU_ASSERT_EQUAL(ofp13_encode_packet_out(buf, 256, &len, 1,
                                            OFP13_PORT_CONTROLLER, 0, frame,
                                            14), 0);
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, len, &po), 0);
    CU_ASSERT(po.has_pkt_mark);
    CU_ASSERT_EQUAL(po.pkt_mark, 0);

    /* Frame limits. */
    CU_ASSERT_EQUAL(ofp13_encode_packet_out(buf, 256, &len, 1, 1, 1, frame,
                                            13), OFP13_E_BAD_FRAME);
    CU_ASSERT_EQUAL(ofp13_encode_packet_out(buf, 256, &len, 1, 1, 1, NULL,
                                            60), OFP13_E_BAD_FRAME);
    CU_ASSERT_EQUAL(ofp13_encode_packet_out(buf, OFP13_MAX_MSG_LEN + 8, &len,
                                            1, 1, 1, frame,
                                            OFP13_PACKET_OUT_MAX_FRAME + 1),
                    OFP13_E_TOO_BIG);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(ofp13_encode_packet_out(NULL, 256, &len, 1, 1, 1, frame,
                                            60), OFP13_E_NO_SPACE);
    free(frame);
    free(buf);
}

/* Builds a PACKET_OUT with 'actions_hex' and a 14-byte frame.  Returns the
 * length. */
static size_t
make_packet_out(uint8_t *buf, size_t cap, const char *actions_hex)
{
    size_t alen = unhex(actions_hex, buf + 24, cap - 24 - 14);
    memset(buf + 24 + alen, 0xab, 14);
    size_t len = 24 + alen + 14;
    unhex("040d000000000001ffffffff" "fffffffd" "0000" "000000000000",
          buf, 24);
    set_be16(buf + 2, len);
    set_be16(buf + 16, alen);
    return len;
}

static void
test_packet_out_malformed(void)
{
    static const struct {
        const char *actions;
        int error;
    } cases[] = {
        /* Good: output only, set_field only, reversed order, none. */
        { "0000 0010 00000001 ffff 000000000000", 0 },
        { "0019 0010 00014204 00000003 00000000", 0 },
        { "0000 0010 fffffff9 0000 000000000000"
          "0019 0010 00014204 00000003 00000000", 0 },
        { "", 0 },
        /* Action length 0, 4, 12, beyond the list. */
        { "0000 0000 00000001", OFP13_E_ACTION_LEN },
        { "0000 0004 00000001", OFP13_E_ACTION_LEN },
        { "0000 000c 00000001 0000 0000 00000000", OFP13_E_ACTION_LEN },
        { "0000 0018 00000001 0000 000000000000", OFP13_E_ACTION_LEN },
        /* OUTPUT of the wrong size. */
        { "0000 0018 00000001 0000 000000000000 0000000000000000",
          OFP13_E_ACTION_LEN },
        { "0000 0008 00000001", OFP13_E_ACTION_LEN },
        /* Non-zero OUTPUT padding. */
        { "0000 0010 00000001 0000 000000000001", OFP13_E_BAD_PADDING },
        /* Unknown action type (what OVS rejected with OFPBAC_BAD_TYPE). */
        { "7719 0010 00014204 00000007 00000000",
          OFP13_E_ACTION_UNSUPPORTED },
        { "ffff 0010 00002320 0000000000000000",
          OFP13_E_ACTION_UNSUPPORTED },
        /* set_field of another field, masked, wrong size, padding. */
        { "0019 0010 80000004 00000001 00000000", OFP13_E_SET_FIELD },
        { "0019 0010 00014308 00000001 ffffffff", OFP13_E_SET_FIELD },
        { "0019 0018 00014204 00000001 00000000 0000000000000000",
          OFP13_E_ACTION_LEN },
        { "0019 0008 00014204", OFP13_E_ACTION_LEN },
        { "0019 0010 00014204 00000001 00000100", OFP13_E_BAD_PADDING },
        /* Duplicates. */
        { "0000 0010 00000001 0000 000000000000"
          "0000 0010 00000002 0000 000000000000", OFP13_E_ACTION_DUP },
        { "0019 0010 00014204 00000003 00000000"
          "0019 0010 00014204 00000004 00000000", OFP13_E_ACTION_DUP },
    };
    uint8_t buf[256];
    struct ofp13_packet_out po;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = make_packet_out(buf, sizeof buf, cases[i].actions);
        int e = ofp13_decode_packet_out(buf, len, &po);
        if (e != cases[i].error) {
            printf("\ncase %zu: got %s, want %s\n", i, ofp13_strerror(e),
                   ofp13_strerror(cases[i].error));
        }
        CU_ASSERT_EQUAL(e, cases[i].error);
        if (!e) {
            CU_ASSERT_EQUAL(po.data_len, 14);
            CU_ASSERT_PTR_EQUAL(po.data, buf + len - 14);
        } else {
            CU_ASSERT_EQUAL(po.data_len, 0);
            CU_ASSERT(!po.has_output && !po.has_pkt_mark);
        }
    }

    /* actions_len not a multiple of 8, overrunning, header pad. */
    size_t len = make_packet_out(buf, sizeof buf,
                                 "0000 0010 00000001 0000 000000000000");
    set_be16(buf + 16, 12);
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, len, &po),
                    OFP13_E_ACTIONS_LEN);
    set_be16(buf + 16, 40);
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, len, &po),
                    OFP13_E_ACTIONS_LEN);
    /* Actions reaching into the frame: its bytes (0xabab...) are then an
     * action with a bad length. */
    set_be16(buf + 16, 24);
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, len, &po),
                    OFP13_E_ACTION_LEN);
    set_be16(buf + 16, 16);
    buf[23] = 1;
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, len, &po),
                    OFP13_E_BAD_PADDING);
    buf[23] = 0;
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, len, &po), 0);
    /* Body shorter than the fixed part. */
    set_be16(buf + 2, 20);
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, 20, &po),
                    OFP13_E_BAD_BODY_LEN);
    set_be16(buf + 2, 23);
    CU_ASSERT_EQUAL(ofp13_decode_packet_out(buf, 23, &po),
                    OFP13_E_BAD_BODY_LEN);
}

/* PACKET_IN. */

static void
test_packet_in_ovs(void)
{
    uint8_t buf[256], buf2[256], frame[64];
    size_t flen = unhex(FRAME2_HEX, frame, sizeof frame);
    struct ofp13_packet_in pin;
    size_t len, len2;

    len = unhex(ovs_packet_in, buf, sizeof buf);
    CU_ASSERT_EQUAL(len, 92);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin), 0);
    CU_ASSERT_EQUAL(pin.xid, 0);
    CU_ASSERT_EQUAL(pin.buffer_id, OFP13_NO_BUFFER);
    CU_ASSERT_EQUAL(pin.total_len, 42);
    CU_ASSERT_EQUAL(pin.reason, OFP13_R_ACTION);
    CU_ASSERT_EQUAL(pin.table_id, 0);
    CU_ASSERT_EQUAL(pin.cookie, 0);
    CU_ASSERT(pin.has_in_port);
    CU_ASSERT_EQUAL(pin.in_port, 1);
    CU_ASSERT(pin.has_pkt_mark);
    CU_ASSERT_EQUAL(pin.pkt_mark, 9);
    CU_ASSERT_EQUAL(pin.pkt_mark_mask, 0xffffffff);
    CU_ASSERT_EQUAL(pin.data_len, flen);
    CU_ASSERT_PTR_EQUAL(pin.data, buf + 50);
    CU_ASSERT_EQUAL(memcmp(pin.data, frame, flen), 0);

    /* Our encoder reproduces OVS's bytes exactly. */
    CU_ASSERT_EQUAL(ofp13_encode_packet_in(buf2, sizeof buf2, &len2, 0,
                                           OFP13_R_ACTION, 0, 0, 1, 9,
                                           frame, flen), 0);
    CU_ASSERT_EQUAL(len2, len);
    CU_ASSERT_EQUAL(memcmp(buf, buf2, len), 0);

    len = unhex(ovs_packet_in_cookie, buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin), 0);
    CU_ASSERT_EQUAL(pin.cookie, UINT64_C(0x4300abcd00000005));
    CU_ASSERT_EQUAL(pin.in_port, 1);
    CU_ASSERT_EQUAL(pin.pkt_mark, 9);
    CU_ASSERT_EQUAL(ofp13_encode_packet_in(buf2, sizeof buf2, &len2, 0,
                                           OFP13_R_ACTION, 0,
                                           UINT64_C(0x4300abcd00000005), 1,
                                           9, frame, flen), 0);
    CU_ASSERT_EQUAL(len2, len);
    CU_ASSERT_EQUAL(memcmp(buf, buf2, len), 0);

    /* Without pkt_mark the match is 12 bytes padded to 16. */
    CU_ASSERT_EQUAL(ofp13_encode_packet_in(buf2, sizeof buf2, &len2, 77,
                                           OFP13_R_NO_MATCH, 3, 0,
                                           OFP13_PORT_LOCAL, 0, frame,
                                           flen), 0);
    CU_ASSERT_EQUAL(len2, 8 + 16 + 16 + 2 + flen);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf2, len2, &pin), 0);
    CU_ASSERT_EQUAL(pin.xid, 77);
    CU_ASSERT_EQUAL(pin.reason, OFP13_R_NO_MATCH);
    CU_ASSERT_EQUAL(pin.table_id, 3);
    CU_ASSERT(pin.has_in_port);
    CU_ASSERT_EQUAL(pin.in_port, OFP13_PORT_LOCAL);
    CU_ASSERT(!pin.has_pkt_mark);
    CU_ASSERT_EQUAL(pin.data_len, flen);

    /* Empty frame, and encoder limits. */
    CU_ASSERT_EQUAL(ofp13_encode_packet_in(buf2, sizeof buf2, &len2, 1, 1,
                                           0, 0, 1, 1, NULL, 0), 0);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf2, len2, &pin), 0);
    CU_ASSERT_PTR_NULL(pin.data);
    CU_ASSERT_EQUAL(pin.data_len, 0);
    CU_ASSERT_EQUAL(ofp13_encode_packet_in(buf2, sizeof buf2, &len2, 1, 1,
                                           0, 0, 1, 1, NULL, 5),
                    OFP13_E_BAD_ARG);
    CU_ASSERT_EQUAL(ofp13_encode_packet_in(buf2, 91, &len2, 0, 1, 0, 0, 1,
                                           9, frame, flen),
                    OFP13_E_NO_SPACE);
    CU_ASSERT_EQUAL(ofp13_encode_packet_in(buf2, sizeof buf2, &len2, 0, 1,
                                           0, 0, 1, 9, frame,
                                           65535 - 50 + 1),
                    OFP13_E_TOO_BIG);
    uint8_t *big = calloc(1, 65536);
    uint8_t *bigframe = calloc(1, 65536);
    CU_ASSERT_FATAL(big && bigframe);
    bigframe[65535 - 51] = 0x77;
    CU_ASSERT_EQUAL(ofp13_encode_packet_in(big, 65536, &len2, 0, 1, 0, 0, 1,
                                           9, bigframe, 65535 - 50), 0);
    CU_ASSERT_EQUAL(len2, 65535);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(big, len2, &pin), 0);
    CU_ASSERT_EQUAL(pin.data_len, 65535 - 50);
    CU_ASSERT_EQUAL(pin.total_len, 65535 - 50);
    CU_ASSERT_EQUAL(pin.data[65535 - 51], 0x77);
    free(big);
    free(bigframe);
}

/* Builds a PACKET_IN from 'match_hex' (the OXM TLVs only), with the given
 * match type, correct padding and a 20-byte frame.  Returns the length. */
static size_t
make_packet_in(uint8_t *buf, size_t cap, uint16_t match_type,
               const char *oxms_hex)
{
    size_t olen = unhex(oxms_hex, buf + 28, cap - 28 - 40);
    size_t mlen = 4 + olen;
    size_t padded = (mlen + 7) / 8 * 8;
    memset(buf + 24 + mlen, 0, padded - mlen + 2);
    memset(buf + 24 + padded + 2, 0xcd, 20);
    size_t len = 24 + padded + 2 + 20;
    unhex("040a000000000063" "ffffffff" "0014" "01" "00" "0000000000000000",
          buf, 24);
    set_be16(buf + 2, len);
    set_be16(buf + 24, match_type);
    set_be16(buf + 26, mlen);
    return len;
}

static void
test_packet_in_match(void)
{
    static const struct {
        const char *oxms;
        int error;
        bool in_port;           /* Expect in_port 0x11 when no error. */
        bool pkt_mark;          /* Expect pkt_mark ...  */
        uint32_t mark, mask;
    } cases[] = {
        /* Empty match. */
        { "", 0, false, false, 0, 0 },
        /* in_port only; pkt_mark only; both reversed. */
        { "80000004 00000011", 0, true, false, 0, 0 },
        { "00014204 00000009", 0, false, true, 9, 0xffffffff },
        { "00014204 00000009 80000004 00000011", 0, true, true, 9,
          0xffffffff },
        /* Masked pkt_mark. */
        { "80000004 00000011 00014308 00000010 000000f0", 0, true, true,
          0x10, 0xf0 },
        /* Unknown fields around them: metadata (8), tun_id masked,
         * reg0 masked, eth_dst, ct_state, zero-length unknown. */
        { "80000408 0102030405060708 80000004 00000011"
          "00014f10 0000000000000001 00000000000000ff"
          "00010108 00000001 0000000f 80000606 0ac400000001"
          "0001d204 00000021 0001fe00 00014204 00000009", 0, true, true, 9,
          0xffffffff },
        /* Experimenter OXM (class 0xffff) whose length includes the
         * 4-byte experimenter id, unmasked and masked. */
        { "ffff0208 4f4e4600 00000001 80000004 00000011"
          "ffff030c 00002320 0000ff00 0000ffff 00014204 00000009", 0, true,
          true, 9, 0xffffffff },
        /* Experimenter OXM that looks like in_port/pkt_mark by field
         * number is not them. */
        { "ffff0008 00002320 00000005 ffff4208 00002320 00000006", 0, false,
          false, 0, 0 },
        /* Experimenter OXM with just its id. */
        { "ffff0004 00002320", 0, false, false, 0, 0 },

        /* Truncated entries. */
        { "8000", OFP13_E_OXM_TRUNCATED, false, false, 0, 0 },
        { "80000004 000000", OFP13_E_OXM_TRUNCATED, false, false, 0, 0 },
        { "80000004 00000011 000142", OFP13_E_OXM_TRUNCATED, false, false,
          0, 0 },
        { "80000408 01020304", OFP13_E_OXM_TRUNCATED, false, false, 0, 0 },
        { "000142ff 00000009", OFP13_E_OXM_TRUNCATED, false, false, 0, 0 },
        /* Experimenter too short for its id. */
        { "ffff0002 0000", OFP13_E_OXM_EXP_LEN, false, false, 0, 0 },
        { "ffff0000", OFP13_E_OXM_EXP_LEN, false, false, 0, 0 },
        /* Bad masks. */
        { "80000503 010203", OFP13_E_OXM_MASK_LEN, false, false, 0, 0 },
        { "80000500", OFP13_E_OXM_MASK_LEN, false, false, 0, 0 },
        { "ffff0305 00002320 00", OFP13_E_OXM_MASK_LEN, false, false, 0, 0 },
        { "ffff0304 00002320", OFP13_E_OXM_MASK_LEN, false, false, 0, 0 },
        { "80000508 00000003 00000001", OFP13_E_OXM_MASK_BITS, false, false,
          0, 0 },
        { "00014308 00000011 000000f0", OFP13_E_OXM_MASK_BITS, false, false,
          0, 0 },
        { "ffff0306 00002320 0100", OFP13_E_OXM_MASK_BITS, false, false, 0,
          0 },
        /* in_port cannot be masked and is 4 bytes. */
        { "80000108 00000011 ffffffff", OFP13_E_OXM_NOT_MASKABLE, false,
          false, 0, 0 },
        { "80000103 000000", OFP13_E_OXM_NOT_MASKABLE, false, false, 0, 0 },
        { "80000002 0011", OFP13_E_OXM_FIELD_LEN, false, false, 0, 0 },
        { "80000008 00000000 00000011", OFP13_E_OXM_FIELD_LEN, false, false,
          0, 0 },
        { "80000000", OFP13_E_OXM_FIELD_LEN, false, false, 0, 0 },
        /* pkt_mark is 4 bytes (8 masked). */
        { "00014202 0009", OFP13_E_OXM_FIELD_LEN, false, false, 0, 0 },
        { "00014208 00000009 ffffffff", OFP13_E_OXM_FIELD_LEN, false, false,
          0, 0 },
        { "00014304 00000009", OFP13_E_OXM_FIELD_LEN, false, false, 0, 0 },
        { "00014200", OFP13_E_OXM_FIELD_LEN, false, false, 0, 0 },
        /* Duplicates. */
        { "80000004 00000011 80000004 00000011", OFP13_E_OXM_DUP, false,
          false, 0, 0 },
        { "00014204 00000009 00014308 00000009 ffffffff", OFP13_E_OXM_DUP,
          false, false, 0, 0 },
    };
    uint8_t buf[512];
    struct ofp13_packet_in pin;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = make_packet_in(buf, sizeof buf, 1, cases[i].oxms);
        int e = ofp13_decode_packet_in(buf, len, &pin);
        if (e != cases[i].error) {
            printf("\ncase %zu: got %s, want %s\n", i, ofp13_strerror(e),
                   ofp13_strerror(cases[i].error));
        }
        CU_ASSERT_EQUAL(e, cases[i].error);
        if (!e) {
            CU_ASSERT_EQUAL(pin.has_in_port, cases[i].in_port);
            CU_ASSERT_EQUAL(pin.in_port, cases[i].in_port ? 0x11 : 0);
            CU_ASSERT_EQUAL(pin.has_pkt_mark, cases[i].pkt_mark);
            CU_ASSERT_EQUAL(pin.pkt_mark, cases[i].mark);
            CU_ASSERT_EQUAL(pin.pkt_mark_mask, cases[i].mask);
            CU_ASSERT_EQUAL(pin.xid, 0x63);
            CU_ASSERT_EQUAL(pin.total_len, 20);
            CU_ASSERT_EQUAL(pin.data_len, 20);
            CU_ASSERT_PTR_EQUAL(pin.data, buf + len - 20);
        } else {
            /* Nothing half-decoded leaks out. */
            CU_ASSERT(!pin.has_in_port && !pin.has_pkt_mark);
            CU_ASSERT_PTR_NULL(pin.data);
        }
    }
}

static void
test_packet_in_structure(void)
{
    uint8_t buf[512];
    struct ofp13_packet_in pin;
    const char *oxms = "80000004 00000011 00014204 00000009";
    size_t len;

    /* Baseline. */
    len = make_packet_in(buf, sizeof buf, 1, oxms);
    CU_ASSERT_EQUAL(len, 24 + 24 + 2 + 20);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin), 0);

    /* Match type must be OXM (1); OFPMT_STANDARD is 0. */
    len = make_packet_in(buf, sizeof buf, 0, oxms);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_MATCH_TYPE);
    len = make_packet_in(buf, sizeof buf, 2, oxms);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_MATCH_TYPE);

    /* Match length below 4, or padded length past the message. */
    len = make_packet_in(buf, sizeof buf, 1, oxms);
    set_be16(buf + 26, 3);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_MATCH_LEN);
    set_be16(buf + 26, 0);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_MATCH_LEN);
    set_be16(buf + 26, len - 24 + 1);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_MATCH_LEN);
    set_be16(buf + 26, 0xffff);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_MATCH_LEN);
    /* A match that swallows the pads and part of the frame: its "OXMs"
     * then include a zero-length TLV (the match padding) and a TLV made of
     * the 2 pad bytes and frame bytes 0xcdcd, which overruns. */
    set_be16(buf + 26, 40);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_OXM_TRUNCATED);
    /* Match ending exactly at the message end leaves no 2-byte pad. */
    len = make_packet_in(buf, sizeof buf, 1, oxms);
    set_be16(buf + 2, 48);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, 48, &pin),
                    OFP13_E_BAD_BODY_LEN);
    set_be16(buf + 2, 49);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, 49, &pin),
                    OFP13_E_BAD_BODY_LEN);
    set_be16(buf + 2, 50);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, 50, &pin), 0);
    CU_ASSERT_EQUAL(pin.data_len, 0);
    CU_ASSERT_PTR_NULL(pin.data);
    /* Too short for the match header, or the fixed part. */
    for (size_t n = 8; n < 28; n++) {
        set_be16(buf + 2, n);
        CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, n, &pin),
                        n < 24 ? OFP13_E_BAD_BODY_LEN : OFP13_E_MATCH_LEN);
    }

    /* Non-zero match padding / 2-byte pad. */
    len = make_packet_in(buf, sizeof buf, 1, "80000004 00000011");
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin), 0);
    for (size_t i = 36; i < 42; i++) {
        buf[i] = 0x80;
        CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                        OFP13_E_BAD_PADDING);
        buf[i] = 0;
    }
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin), 0);

    /* total_len smaller than the data; larger is fine (truncated). */
    len = make_packet_in(buf, sizeof buf, 1, oxms);
    set_be16(buf + 12, 19);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_TOTAL_LEN);
    set_be16(buf + 12, 1500);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin), 0);
    CU_ASSERT_EQUAL(pin.total_len, 1500);
    CU_ASSERT_EQUAL(pin.data_len, 20);

    /* Buffered packet-in: buffer_id is reported. */
    set_be32(buf + 8, 0x100);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin), 0);
    CU_ASSERT_EQUAL(pin.buffer_id, 0x100);

    /* Wrong version, type, lengths. */
    buf[0] = 1;
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_BAD_VERSION);
    buf[0] = 4;
    buf[1] = OFP13_PACKET_OUT;
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_BAD_TYPE);
    buf[1] = OFP13_PACKET_IN;
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len - 1, &pin),
                    OFP13_E_TOO_SHORT);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len + 1, &pin),
                    OFP13_E_LENGTH_MISMATCH);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(NULL, 0, &pin),
                    OFP13_E_TOO_SHORT);

    /* Nicira packet-in formats are unsupported; other experimenter
     * messages are simply not packet-ins. */
    len = unhex("0404002000000001" "00002320" "0000001e"
                "0000000000000000" "0000000000000000", buf, sizeof buf);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_UNSUPPORTED_MSG);
    set_be32(buf + 12, OFP13_NXT_PACKET_IN);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_UNSUPPORTED_MSG);
    set_be32(buf + 12, OFP13_NXT_SET_CONTROLLER_ID);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_BAD_TYPE);
    set_be32(buf + 12, OFP13_NXT_PACKET_IN2);
    set_be32(buf + 8, 0x4f4e4600);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, len, &pin),
                    OFP13_E_BAD_TYPE);
    set_be16(buf + 2, 12);
    CU_ASSERT_EQUAL(ofp13_decode_packet_in(buf, 12, &pin),
                    OFP13_E_BAD_BODY_LEN);
}

/* Every message, truncated at every length. */

struct sample {
    const char *name;
    uint8_t bytes[256];
    size_t len;
};

static size_t
make_samples(struct sample *s, size_t cap)
{
    static const char *const hexes[] = {
        ofctl_packet_out, ovs_packet_in, ovs_packet_in_cookie, ovs_hello_13,
        ovs_hello_default, ovs_features_reply, ovs_get_async_reply,
        ovs_echo_reply, ovs_barrier_reply, ovs_error, our_set_async,
        our_set_controller_id, our_hello,
    };
    uint8_t frame[60];
    size_t n = 0;

    memset(frame, 0x42, sizeof frame);
    for (size_t i = 0; i < sizeof hexes / sizeof *hexes; i++) {
        CU_ASSERT_FATAL(n < cap);
        s[n].name = hexes[i];
        s[n].len = unhex(hexes[i], s[n].bytes, sizeof s[n].bytes);
        n++;
    }

    /* Encoder output for each message kind. */
    struct ofp13_features f = { 1, 2, 3, 4, 5 };
    struct ofp13_async_config ac;
    ofp13_async_config_chand(&ac, true);
#define SAMPLE(NAME, CALL)                                              \
    do {                                                                \
        uint8_t *b_ = s[n].bytes;                                       \
        size_t *l_ = &s[n].len;                                         \
        CU_ASSERT_FATAL(n < cap);                                       \
        s[n].name = NAME;                                               \
        CU_ASSERT_EQUAL(CALL, 0);                                       \
        n++;                                                            \
    } while (0)
    SAMPLE("hello", ofp13_encode_hello(b_, 256, l_, 1));
    SAMPLE("echo", ofp13_encode_echo_request(b_, 256, l_, 2, "abcdefg", 7));
    SAMPLE("error", ofp13_encode_error(b_, 256, l_, 3, 1, 1, 0, frame, 20));
    SAMPLE("experr", ofp13_encode_error(b_, 256, l_, 3, 0xffff, 1, 0x2320,
                                        frame, 5));
    SAMPLE("features", ofp13_encode_features_reply(b_, 256, l_, 4, &f));
    SAMPLE("async", ofp13_encode_set_async(b_, 256, l_, 5, &ac));
    SAMPLE("cid", ofp13_encode_set_controller_id(b_, 256, l_, 6, 1));
    SAMPLE("barrier", ofp13_encode_simple(b_, 256, l_, 20, 7));
    SAMPLE("packet_out", ofp13_encode_packet_out(b_, 256, l_, 8, 1, 2,
                                                 frame, 60));
    SAMPLE("packet_in", ofp13_encode_packet_in(b_, 256, l_, 9, 1, 0, 0, 1,
                                               2, frame, 60));
    SAMPLE("packet_in_nomark", ofp13_encode_packet_in(b_, 256, l_, 9, 1, 0,
                                                      0, 1, 0, frame, 14));
#undef SAMPLE
    return n;
}

static void
test_truncation(void)
{
    struct sample *s = calloc(32, sizeof *s);
    CU_ASSERT_FATAL(s != NULL);
    size_t n = make_samples(s, 32);

    for (size_t i = 0; i < n; i++) {
        /* The whole message is accepted by at least one decoder. */
        uint8_t *full = exact_copy(s[i].bytes, s[i].len);
        if (decode_all(full, s[i].len) < 2) {
            printf("\nsample %s not decoded\n", s[i].name);
            CU_FAIL("sample not decoded");
        }
        free(full);

        for (size_t cut = 0; cut < s[i].len; cut++) {
            /* Plain truncation: only the header peek may succeed. */
            uint8_t *p = exact_copy(s[i].bytes, cut);
            int ok = decode_all(p, cut);
            CU_ASSERT_EQUAL(ok, cut >= 8 ? 1 : 0);
            size_t mlen;
            CU_ASSERT_EQUAL(ofp13_frame(p, cut, 0, &mlen),
                            OFP13_E_INCOMPLETE);

            /* Truncation with the length field patched to match: must not
             * crash or read out of bounds; decode_all checks pointers. */
            if (cut >= 8) {
                set_be16(p + 2, cut);
                decode_all(p, cut);
            }
            free(p);
        }
    }
    free(s);
}

/* Random bytes and random mutations of valid messages. */

static void
test_fuzz(void)
{
    struct sample *s = calloc(32, sizeof *s);
    CU_ASSERT_FATAL(s != NULL);
    size_t n = make_samples(s, 32);
    uint64_t seed = 0xc0ffee;
    unsigned int accepted = 0;

    /* Pure random input with a plausible header. */
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = unit_random(&seed) % 200;
        uint8_t *p = malloc(len ? len : 1);
        CU_ASSERT_FATAL(p != NULL);
        for (size_t i = 0; i < len; i++) {
            p[i] = unit_random(&seed);
        }
        if (len >= 4 && unit_random(&seed) % 2) {
            p[0] = 4;
            p[1] = unit_random(&seed) % 30;
            set_be16(p + 2, len);
        }
        decode_all(p, len);
        free(p);
    }

    /* Mutations of real messages: flip 1..4 bytes, keeping the length
     * field consistent half of the time. */
    for (int iter = 0; iter < 100000; iter++) {
        const struct sample *sm = &s[unit_random(&seed) % n];
        uint8_t *p = exact_copy(sm->bytes, sm->len);
        int flips = 1 + unit_random(&seed) % 4;
        for (int k = 0; k < flips; k++) {
            size_t pos = unit_random(&seed) % sm->len;
            switch (unit_random(&seed) % 3) {
            case 0:
                p[pos] = unit_random(&seed);
                break;
            case 1:
                p[pos] ^= 1u << (unit_random(&seed) % 8);
                break;
            default:
                p[pos] = (uint8_t[]) { 0, 0xff, 4, 8, 0x80 }
                    [unit_random(&seed) % 5];
                break;
            }
        }
        if (unit_random(&seed) % 2) {
            set_be16(p + 2, sm->len);
        }
        accepted += decode_all(p, sm->len) > 1;
        free(p);
    }
    /* Some mutations hit only payload bytes and stay valid. */
    CU_ASSERT(accepted > 1000);
    free(s);
}

int
unit_register(void)
{
    static const struct unit_test tests[] = {
        { "strerror", test_strerror },
        { "error_string", test_error_string },
        { "header", test_header },
        { "frame", test_frame },
        { "hello", test_hello },
        { "echo", test_echo },
        { "error", test_error },
        { "simple", test_simple },
        { "features", test_features },
        { "async", test_async },
        { "set_controller_id", test_set_controller_id },
        { "packet_out_ofctl", test_packet_out_ofctl },
        { "packet_out_roundtrip", test_packet_out_roundtrip },
        { "packet_out_malformed", test_packet_out_malformed },
        { "packet_in_ovs", test_packet_in_ovs },
        { "packet_in_match", test_packet_in_match },
        { "packet_in_structure", test_packet_in_structure },
        { "truncation", test_truncation },
        { "fuzz", test_fuzz },
    };
    return UNIT_ADD_SUITE("ofp13", tests);
}
