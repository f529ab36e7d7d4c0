/* Unit tests for lib/chan-wire: frames, MAC, chunking, reassembly, JSON
 * payloads, and the example frames in doc/PROTOCOL.md (section 9, host to
 * guest, and section 9.1, upstream: guest to host).
 *
 * Set CHAND_GEN_PROTOCOL_EXAMPLE=<file> to make the "PROTOCOL.md example"
 * test write the example blocks (```hexdump and ```summary for section 9,
 * then ```hexdump-upstream and ```summary-upstream for section 9.1) to
 * <file> instead of checking them; paste them into doc/PROTOCOL.md. */

#include <config.h>
#include "unit.h"
#include "chan-wire.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan-endpoint.h"
#include "packets.h"
#include "util.h"
#include "xfer.h"

#ifndef PROTOCOL_MD
#error "PROTOCOL_MD must name doc/PROTOCOL.md"
#endif

#define N_ELEMS(ARRAY) (sizeof (ARRAY) / sizeof (ARRAY)[0])

static const char test_key[] = "channel-test-key";
#define KEY test_key, sizeof test_key - 1

#define BUF_MAX (CHAN_WIRE_MAX_FRAME + 64)

/* Helpers. */

/* A valid header of 'type' with typical values. */
static struct chan_wire_header
make_hdr(uint8_t type)
{
    struct chan_wire_header hdr = {
        .type = type,
        .flags = CHAN_WIRE_F_ACK_VALID,
        .vid = 4094,
        .epoch = 0x01020304,
        .seq = type == CHAN_WIRE_DATA ? 0x1112131415161718ULL : 0,
        .ack = 0x2122232425262728ULL,
        .chunk_index = 0,
        .chunk_count = 1,
    };
    if (type == CHAN_WIRE_CHUNK || type == CHAN_WIRE_XFER) {
        /* The transfer lane carries no ack. */
        hdr.flags = 0;
        hdr.ack = 0;
        hdr.seq = type == CHAN_WIRE_CHUNK ? 0x3132333435363738ULL : 0;
    }
    return hdr;
}

static size_t
encode_ok(const struct chan_wire_header *hdr, const void *payload,
          size_t payload_len, uint8_t *buf)
{
    size_t len = 0;
    enum chan_wire_error error = chan_wire_encode(hdr, payload, payload_len,
                                                  KEY, buf, BUF_MAX, &len);
    CU_ASSERT_EQUAL_FATAL(error, CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(len, CHAN_WIRE_OVERHEAD + payload_len);
    return len;
}

/* Recomputes the trailer of the 'len'-byte frame in 'buf' with the test
 * key, so that a patched field reaches the field checks. */
static void
remac(uint8_t *buf, size_t len)
{
    chan_wire_mac(KEY, buf, len - CHAN_WIRE_TRAILER_LEN,
                  buf + len - CHAN_WIRE_TRAILER_LEN);
}

/* Decodes from an exactly sized heap copy so that ASan catches overreads.
 * On success the payload pointer is translated back into 'buf'. */
static enum chan_wire_error
decode_copy_key(const uint8_t *buf, size_t len, const void *key,
                size_t key_len, struct chan_wire_header *hdr,
                const uint8_t **payloadp)
{
    uint8_t *copy = malloc(len ? len : 1);
    const uint8_t *payload = NULL;
    struct chan_wire_header h;

    memcpy(copy, buf, len);
    enum chan_wire_error error = chan_wire_decode(copy, len, key, key_len,
                                                  &h, &payload);
    if (!error) {
        CU_ASSERT(payload == copy + CHAN_WIRE_HEADER_LEN);
        if (hdr) {
            *hdr = h;
        }
        if (payloadp) {
            *payloadp = buf + (payload - copy);
        }
    }
    free(copy);
    return error;
}

static enum chan_wire_error
decode_copy(const uint8_t *buf, size_t len, struct chan_wire_header *hdr,
            const uint8_t **payloadp)
{
    return decode_copy_key(buf, len, KEY, hdr, payloadp);
}

static void
assert_hdr_equal(const struct chan_wire_header *a,
                 const struct chan_wire_header *b)
{
    CU_ASSERT_EQUAL(a->type, b->type);
    CU_ASSERT_EQUAL(a->flags, b->flags);
    CU_ASSERT_EQUAL(a->vid, b->vid);
    CU_ASSERT_EQUAL(a->epoch, b->epoch);
    CU_ASSERT_EQUAL(a->seq, b->seq);
    CU_ASSERT_EQUAL(a->ack, b->ack);
    CU_ASSERT_EQUAL(a->chunk_index, b->chunk_index);
    CU_ASSERT_EQUAL(a->chunk_count, b->chunk_count);
}

static void
expect_error(const char *what, int got, int expected)
{
    if (got != expected) {
        fprintf(stderr, "%s: got %s, expected %s\n", what,
                chan_wire_error_name(got), chan_wire_error_name(expected));
        CU_FAIL("unexpected result");
    }
}

static void
hex_to_bytes(const char *hex, uint8_t *out)
{
    for (size_t i = 0; hex[2 * i]; i++) {
        unsigned int x;
        sscanf(hex + 2 * i, "%2x", &x);
        out[i] = x;
    }
}

/* Constants, tables, MAC. */

static void
test_mtu_arithmetic(void)
{
    CU_ASSERT_EQUAL(CHAN_WIRE_HEADER_LEN, 36);
    CU_ASSERT_EQUAL(CHAN_WIRE_OVERHEAD, 52);
    CU_ASSERT_EQUAL(chan_wire_max_frame(1500), 1472);
    CU_ASSERT_EQUAL(chan_wire_max_payload(1500), 1420);
    CU_ASSERT_EQUAL(chan_wire_max_frame(9000), 8972);
    CU_ASSERT_EQUAL(chan_wire_max_payload(9000), 8920);
    CU_ASSERT_EQUAL(chan_wire_max_frame(576), 548);
    CU_ASSERT_EQUAL(chan_wire_max_payload(576), 496);
    CU_ASSERT_EQUAL(chan_wire_max_frame(65535), 65507);
    CU_ASSERT_EQUAL(chan_wire_max_payload(65535), CHAN_WIRE_MAX_PAYLOAD);
    CU_ASSERT_EQUAL(CHAN_WIRE_MAX_PAYLOAD, 65455);
    CU_ASSERT_EQUAL(chan_wire_max_frame(575), 0);
    CU_ASSERT_EQUAL(chan_wire_max_payload(575), 0);
    CU_ASSERT_EQUAL(chan_wire_max_frame(0), 0);
    CU_ASSERT_EQUAL(chan_wire_max_frame(65536), 0);
    CU_ASSERT_EQUAL(chan_wire_max_payload(65536), 0);
}

static void
test_types(void)
{
    static const char *const names[] = {
        NULL, "DATA", "ACK", "HELLO", "SYNC", "HEARTBEAT", "CHUNK", "XFER"
    };
    for (unsigned int t = 0; t < 512; t++) {
        bool valid = t >= 1 && t <= 7;
        CU_ASSERT_EQUAL(chan_wire_type_is_valid(t), valid);
        CU_ASSERT_STRING_EQUAL(chan_wire_type_name(t),
                               valid ? names[t] : "unknown");
    }
}

static void
test_strerror(void)
{
    for (int i = 0; i < CHAN_WIRE_N_ERRORS; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(chan_wire_strerror(i));
        CU_ASSERT_PTR_NOT_NULL_FATAL(chan_wire_error_name(i));
        for (int j = 0; j < i; j++) {
            if (!strcmp(chan_wire_strerror(i), chan_wire_strerror(j))
                || !strcmp(chan_wire_error_name(i),
                           chan_wire_error_name(j))) {
                fprintf(stderr, "errors %d and %d share a text\n", i, j);
                CU_FAIL("duplicate error text");
            }
        }
    }
    CU_ASSERT_STRING_EQUAL(chan_wire_strerror(0), "success");
    CU_ASSERT_STRING_EQUAL(chan_wire_error_name(CHAN_WIRE_ERR_AUTH), "auth");
    CU_ASSERT_PTR_NOT_NULL(chan_wire_strerror(CHAN_WIRE_N_ERRORS));
    CU_ASSERT_PTR_NOT_NULL(chan_wire_error_name(-1));
}

static void
test_hmac_vectors(void)
{
    static const struct {
        const char *key_hex;    /* NULL: see below. */
        const char *data;
        const char *mac_hex;    /* Full SHA-256 HMAC. */
    } cases[] = {
        /* Empty key, empty message. */
        { "", "",
          "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad" },
        /* RFC 4231 test case 1. */
        { "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There",
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
        /* RFC 4231 test case 2 ("Jefe"). */
        { "4a656665", "what do ya want for nothing?",
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
        /* RFC 4231 test case 6: key longer than the block size. */
        { NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        uint8_t key[256], expected[32], mac[CHAN_WIRE_TRAILER_LEN];
        size_t key_len;

        if (cases[i].key_hex) {
            key_len = strlen(cases[i].key_hex) / 2;
            hex_to_bytes(cases[i].key_hex, key);
        } else {
            key_len = 131;
            memset(key, 0xaa, key_len);
        }
        hex_to_bytes(cases[i].mac_hex, expected);
        memset(mac, 0, sizeof mac);
        chan_wire_mac(key_len ? key : NULL, key_len, cases[i].data,
                      strlen(cases[i].data), mac);
        CU_ASSERT(!memcmp(mac, expected, sizeof mac));
    }

    /* Keys of 64 (block size, used as is) and 65 bytes (hashed). */
    uint8_t key[65], mac[16], expected[32];
    memset(key, 'k', sizeof key);
    chan_wire_mac(key, 64, "abc", 3, mac);
    hex_to_bytes("ae0c0e4a2340cf50185eb46aaa8723f4"
                 "769153661612e212fb0d1fa3170c6202", expected);
    CU_ASSERT(!memcmp(mac, expected, 16));
    chan_wire_mac(key, 65, "abc", 3, mac);
    hex_to_bytes("ed378e5dfa30dc98814ba09b2e610d9b"
                 "6af66054922ceef9480da094a3f11b2d", expected);
    CU_ASSERT(!memcmp(mac, expected, 16));
}

/* Encoding. */

static void
test_encode_layout(void)
{
    static const uint8_t expected_hdr[CHAN_WIRE_HEADER_LEN] = {
        0x43, 0x48, 0x01, 0x01, 0x01, 0x00, 0x0f, 0xfe,
        0x01, 0x02, 0x03, 0x04,
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00,
    };
    struct chan_wire_header hdr = make_hdr(CHAN_WIRE_DATA);
    uint8_t buf[BUF_MAX];
    uint8_t mac[CHAN_WIRE_TRAILER_LEN];

    hdr.payload_len = 999;      /* Ignored by the encoder. */
    size_t len = encode_ok(&hdr, "{ }", 3, buf);
    CU_ASSERT_EQUAL(len, 36 + 3 + 16);
    CU_ASSERT(!memcmp(buf, expected_hdr, sizeof expected_hdr));
    CU_ASSERT(!memcmp(buf + 36, "{ }", 3));
    chan_wire_mac(KEY, buf, 39, mac);
    CU_ASSERT(!memcmp(buf + 39, mac, 16));

    /* Multi-chunk fields and SNAPSHOT. */
    hdr.flags = CHAN_WIRE_F_SNAPSHOT;
    hdr.ack = 0;
    hdr.chunk_index = 0x0102;
    hdr.chunk_count = 0xfffe;
    len = encode_ok(&hdr, NULL, 0, buf);
    CU_ASSERT_EQUAL(len, 52);
    CU_ASSERT_EQUAL(buf[4], 0x02);
    CU_ASSERT_EQUAL(pkt_get_be64(buf + 20), 0);
    CU_ASSERT_EQUAL(pkt_get_be16(buf + 28), 0x0102);
    CU_ASSERT_EQUAL(pkt_get_be16(buf + 30), 0xfffe);
    CU_ASSERT_EQUAL(pkt_get_be16(buf + 32), 0);
}

static void
test_round_trip_types(void)
{
    static const uint8_t types[] = {
        CHAN_WIRE_DATA, CHAN_WIRE_ACK, CHAN_WIRE_HELLO, CHAN_WIRE_SYNC,
        CHAN_WIRE_HEARTBEAT, CHAN_WIRE_CHUNK, CHAN_WIRE_XFER,
    };
    static const char payload[] = "{\"epoch\":1,\"applied\":42}";

    for (size_t i = 0; i < sizeof types; i++) {
        for (int with_payload = 0; with_payload < 2; with_payload++) {
            struct chan_wire_header hdr = make_hdr(types[i]), out;
            const uint8_t *p;
            uint8_t buf[BUF_MAX];
            size_t n = with_payload ? strlen(payload) : 0;
            size_t len = encode_ok(&hdr, payload, n, buf);

            CU_ASSERT_EQUAL_FATAL(decode_copy(buf, len, &out, &p),
                                  CHAN_WIRE_OK);
            assert_hdr_equal(&hdr, &out);
            CU_ASSERT_EQUAL(out.payload_len, n);
            CU_ASSERT(!memcmp(p, payload, n));
        }
    }

    /* HELLO with epoch 0 and no ack. */
    struct chan_wire_header hdr = make_hdr(CHAN_WIRE_HELLO), out;
    uint8_t buf[BUF_MAX];
    hdr.epoch = 0;
    hdr.flags = 0;
    hdr.ack = 0;
    size_t len = encode_ok(&hdr, NULL, 0, buf);
    CU_ASSERT_EQUAL(decode_copy(buf, len, &out, NULL), CHAN_WIRE_OK);
    assert_hdr_equal(&hdr, &out);

    /* Extreme values. */
    hdr = make_hdr(CHAN_WIRE_DATA);
    hdr.vid = 1;
    hdr.epoch = UINT32_MAX;
    hdr.seq = UINT64_MAX;
    hdr.ack = UINT64_MAX;
    len = encode_ok(&hdr, NULL, 0, buf);
    CU_ASSERT_EQUAL(decode_copy(buf, len, &out, NULL), CHAN_WIRE_OK);
    assert_hdr_equal(&hdr, &out);
}

static void
test_empty_key(void)
{
    struct chan_wire_header hdr = make_hdr(CHAN_WIRE_DATA), out;
    uint8_t buf[BUF_MAX];
    size_t len;

    CU_ASSERT_EQUAL(chan_wire_encode(&hdr, "{}", 2, NULL, 0, buf,
                                     sizeof buf, &len), CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(decode_copy_key(buf, len, NULL, 0, &out, NULL),
                    CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(decode_copy_key(buf, len, "", 0, &out, NULL),
                    CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(decode_copy(buf, len, &out, NULL), CHAN_WIRE_ERR_AUTH);

    /* And the other way round; also a key that is a prefix. */
    len = encode_ok(&hdr, "{}", 2, buf);
    CU_ASSERT_EQUAL(decode_copy_key(buf, len, NULL, 0, &out, NULL),
                    CHAN_WIRE_ERR_AUTH);
    CU_ASSERT_EQUAL(decode_copy_key(buf, len, test_key, sizeof test_key - 2,
                                    &out, NULL), CHAN_WIRE_ERR_AUTH);
    /* (HMAC pads keys with zero bytes to the block size, so a key with
     * trailing NULs added is the same key: see doc/PROTOCOL.md.) */
    CU_ASSERT_EQUAL(decode_copy_key(buf, len, test_key, sizeof test_key,
                                    &out, NULL), CHAN_WIRE_OK);
}

static void
test_encode_nospace(void)
{
    struct chan_wire_header hdr = make_hdr(CHAN_WIRE_DATA);
    uint8_t payload[100];

    memset(payload, 'p', sizeof payload);
    for (size_t size = 0; size < CHAN_WIRE_OVERHEAD + sizeof payload;
         size++) {
        uint8_t *buf = malloc(size ? size : 1);
        size_t len = 4321;
        CU_ASSERT_EQUAL(chan_wire_encode(&hdr, payload, sizeof payload, KEY,
                                         buf, size, &len),
                        CHAN_WIRE_ERR_NOSPACE);
        CU_ASSERT_EQUAL(len, 4321);
        free(buf);
    }
}

static void
test_encode_too_big(void)
{
    struct chan_wire_header hdr = make_hdr(CHAN_WIRE_DATA), out;
    size_t size = CHAN_WIRE_OVERHEAD + CHAN_WIRE_MAX_PAYLOAD + 1;
    uint8_t *payload = calloc(1, CHAN_WIRE_MAX_PAYLOAD + 1);
    uint8_t *buf = malloc(size);
    size_t len;

    CU_ASSERT_EQUAL(chan_wire_encode(&hdr, payload, CHAN_WIRE_MAX_PAYLOAD + 1,
                                     KEY, buf, size, &len),
                    CHAN_WIRE_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(chan_wire_encode(&hdr, payload, CHAN_WIRE_MAX_PAYLOAD,
                                     KEY, buf, size, &len), CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(len, CHAN_WIRE_MAX_FRAME);
    const uint8_t *p;
    CU_ASSERT_EQUAL(chan_wire_decode(buf, len, KEY, &out, &p), CHAN_WIRE_OK);
    CU_ASSERT(p == buf + CHAN_WIRE_HEADER_LEN);
    CU_ASSERT_EQUAL(out.payload_len, CHAN_WIRE_MAX_PAYLOAD);
    free(payload);
    free(buf);
}

/* Header field rules, shared by the encoder and the decoder. */
struct hdr_case {
    const char *name;
    uint8_t type;
    uint8_t flags;
    uint16_t vid;
    uint32_t epoch;
    uint64_t seq;
    uint64_t ack;
    uint16_t index;
    uint16_t count;
    enum chan_wire_error error;
};

#define AV CHAN_WIRE_F_ACK_VALID
#define SN CHAN_WIRE_F_SNAPSHOT

static const struct hdr_case hdr_cases[] = {
    /* name              type flags vid epoch seq ack idx cnt error */
    { "data ok", 1, 0, 4094, 1, 1, 0, 0, 1, CHAN_WIRE_OK },
    { "data all flags", 1, AV | SN, 1, 1, 1, 7, 0, 1, CHAN_WIRE_OK },
    { "ack ok", 2, AV, 10, 1, 0, 0, 0, 1, CHAN_WIRE_OK },
    { "hello epoch 0", 3, 0, 10, 0, 0, 0, 0, 1, CHAN_WIRE_OK },
    { "hello acking", 3, AV, 10, 5, 0, 3, 0, 1, CHAN_WIRE_OK },
    { "sync ok", 4, 0, 10, 5, 9, 0, 0, 1, CHAN_WIRE_OK },
    { "heartbeat ok", 5, AV, 10, 5, 0, 1, 0, 1, CHAN_WIRE_OK },
    { "last of max chunks", 1, 0, 10, 5, 65535, 0, 65534, 65535,
      CHAN_WIRE_OK },
    { "type 0", 0, 0, 10, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_TYPE },
    { "chunk ok", 6, 0, 10, 5, 0, 0, 0, 1, CHAN_WIRE_OK },
    { "chunk seq 9", 6, 0, 10, 5, 9, 0, 0, 1, CHAN_WIRE_OK },
    { "xfer ok", 7, 0, 10, 5, 0, 0, 0, 1, CHAN_WIRE_OK },
    { "chunk epoch 0", 6, 0, 10, 0, 0, 0, 0, 1, CHAN_WIRE_ERR_EPOCH },
    { "xfer epoch 0", 7, 0, 10, 0, 0, 0, 0, 1, CHAN_WIRE_ERR_EPOCH },
    { "chunk acking", 6, AV, 10, 5, 0, 1, 0, 1, CHAN_WIRE_ERR_FLAGS_TYPE },
    { "xfer snapshot", 7, SN, 10, 5, 0, 0, 0, 1, CHAN_WIRE_ERR_FLAGS_TYPE },
    { "chunk 2 chunks", 6, 0, 10, 5, 1, 0, 0, 2, CHAN_WIRE_ERR_CHUNK_TYPE },
    { "type 8", 8, 0, 10, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_TYPE },
    { "type 255", 255, 0, 10, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_TYPE },
    { "flag 0x04", 1, 0x04, 10, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_FLAGS },
    { "flag 0x80", 1, 0x80 | AV, 10, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_FLAGS },
    { "snapshot ack", 2, AV | SN, 10, 5, 0, 0, 0, 1,
      CHAN_WIRE_ERR_FLAGS_TYPE },
    { "snapshot hello", 3, SN, 10, 0, 0, 0, 0, 1, CHAN_WIRE_ERR_FLAGS_TYPE },
    { "snapshot sync", 4, SN, 10, 5, 0, 0, 0, 1, CHAN_WIRE_ERR_FLAGS_TYPE },
    { "snapshot hb", 5, SN, 10, 5, 0, 0, 0, 1, CHAN_WIRE_ERR_FLAGS_TYPE },
    { "vid 0", 1, 0, 0, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_VID },
    { "vid 4095", 1, 0, 4095, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_VID },
    { "vid upper bits", 1, 0, 0x1001, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_VID },
    { "vid 0xffff", 1, 0, 0xffff, 5, 1, 0, 0, 1, CHAN_WIRE_ERR_VID },
    { "data epoch 0", 1, 0, 10, 0, 1, 0, 0, 1, CHAN_WIRE_ERR_EPOCH },
    { "ack epoch 0", 2, AV, 10, 0, 0, 0, 0, 1, CHAN_WIRE_OK },
    { "sync epoch 0", 4, 0, 10, 0, 0, 0, 0, 1, CHAN_WIRE_ERR_EPOCH },
    { "hb epoch 0", 5, 0, 10, 0, 0, 0, 0, 1, CHAN_WIRE_ERR_EPOCH },
    { "data seq 0", 1, 0, 10, 5, 0, 0, 0, 1, CHAN_WIRE_ERR_SEQ },
    { "data first seq 0", 1, 0, 10, 5, 3, 0, 3, 4, CHAN_WIRE_ERR_SEQ },
    { "data seq wraps", 1, 0, 10, 5, UINT64_MAX, 0, 0, 2,
      CHAN_WIRE_ERR_SEQ },
    { "ack without flag", 1, 0, 10, 5, 1, 1, 0, 1, CHAN_WIRE_ERR_ACK },
    { "hb ack no flag", 5, 0, 10, 5, 0, 9, 0, 1, CHAN_WIRE_ERR_ACK },
    { "ack frame no flag", 2, 0, 10, 5, 0, 0, 0, 1,
      CHAN_WIRE_ERR_ACK_MISSING },
    { "count 0", 1, 0, 10, 5, 1, 0, 0, 0, CHAN_WIRE_ERR_CHUNK_COUNT },
    { "index = count", 1, 0, 10, 5, 9, 0, 3, 3, CHAN_WIRE_ERR_CHUNK_INDEX },
    { "index > count", 1, 0, 10, 5, 9, 0, 65535, 2,
      CHAN_WIRE_ERR_CHUNK_INDEX },
    { "chunked ack", 2, AV, 10, 5, 0, 0, 0, 2, CHAN_WIRE_ERR_CHUNK_TYPE },
    { "chunked hello", 3, 0, 10, 5, 1, 0, 1, 2, CHAN_WIRE_ERR_CHUNK_TYPE },
    { "chunked sync", 4, 0, 10, 5, 0, 0, 0, 9, CHAN_WIRE_ERR_CHUNK_TYPE },
    { "chunked hb", 5, 0, 10, 5, 0, 0, 0, 2, CHAN_WIRE_ERR_CHUNK_TYPE },
};

static struct chan_wire_header
hdr_from_case(const struct hdr_case *c)
{
    struct chan_wire_header hdr = {
        .type = c->type, .flags = c->flags, .vid = c->vid,
        .epoch = c->epoch, .seq = c->seq, .ack = c->ack,
        .chunk_index = c->index, .chunk_count = c->count,
    };
    return hdr;
}

/* Writes the raw header fields of 'c' into 'buf' without validation, then
 * appends 'payload_len' bytes and a correct trailer.  Returns the length. */
static size_t
raw_frame(const struct hdr_case *c, size_t payload_len, uint8_t *buf)
{
    memset(buf, 0, CHAN_WIRE_HEADER_LEN);
    pkt_put_be16(buf, CHAN_WIRE_MAGIC);
    buf[2] = CHAN_WIRE_VERSION;
    buf[3] = c->type;
    buf[4] = c->flags;
    pkt_put_be16(buf + 6, c->vid);
    pkt_put_be32(buf + 8, c->epoch);
    pkt_put_be64(buf + 12, c->seq);
    pkt_put_be64(buf + 20, c->ack);
    pkt_put_be16(buf + 28, c->index);
    pkt_put_be16(buf + 30, c->count);
    pkt_put_be16(buf + 32, payload_len);
    memset(buf + CHAN_WIRE_HEADER_LEN, 'z', payload_len);
    size_t len = CHAN_WIRE_OVERHEAD + payload_len;
    remac(buf, len);
    return len;
}

static void
test_header_rules(void)
{
    for (size_t i = 0; i < N_ELEMS(hdr_cases); i++) {
        const struct hdr_case *c = &hdr_cases[i];
        struct chan_wire_header hdr = hdr_from_case(c), out;
        uint8_t buf[BUF_MAX];
        size_t len;
        char what[128];

        snprintf(what, sizeof what, "check \"%s\"", c->name);
        expect_error(what, chan_wire_check_header(&hdr), c->error);

        snprintf(what, sizeof what, "encode \"%s\"", c->name);
        len = 0;
        expect_error(what, chan_wire_encode(&hdr, "x", 1, KEY, buf,
                                            sizeof buf, &len), c->error);
        if (c->error) {
            CU_ASSERT_EQUAL(len, 0);
        }

        /* The decoder rejects the same header in an authentic frame. */
        snprintf(what, sizeof what, "decode \"%s\"", c->name);
        len = raw_frame(c, 1, buf);
        expect_error(what, decode_copy(buf, len, &out, NULL), c->error);
        if (!c->error) {
            assert_hdr_equal(&hdr, &out);
        }
    }
}

/* Decoder rejection paths, one test each. */

static size_t
sample_frame(uint8_t *buf)
{
    struct chan_wire_header hdr = make_hdr(CHAN_WIRE_DATA);
    return encode_ok(&hdr, "{\"records\":[]}", 14, buf);
}

static void
test_reject_short(void)
{
    uint8_t buf[BUF_MAX];
    sample_frame(buf);
    for (size_t len = 0; len < CHAN_WIRE_OVERHEAD; len++) {
        CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL),
                        CHAN_WIRE_ERR_SHORT);
    }
}

static void
test_reject_magic(void)
{
    static const uint16_t magics[] = { 0, 0x4849, 0x4843, 0x4448, 0xffff };
    uint8_t buf[BUF_MAX];

    for (size_t i = 0; i < N_ELEMS(magics); i++) {
        size_t len = sample_frame(buf);
        pkt_put_be16(buf, magics[i]);
        remac(buf, len);
        CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL),
                        CHAN_WIRE_ERR_MAGIC);
    }
}

static void
test_reject_version(void)
{
    static const uint8_t versions[] = { 0, 2, 3, 0x81, 255 };
    uint8_t buf[BUF_MAX];

    for (size_t i = 0; i < sizeof versions; i++) {
        size_t len = sample_frame(buf);
        buf[2] = versions[i];
        remac(buf, len);
        CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL),
                        CHAN_WIRE_ERR_VERSION);
    }
}

static void
test_reject_truncated(void)
{
    uint8_t buf[BUF_MAX];

    /* Payload length larger than what is there. */
    for (unsigned int extra = 1; extra < 20; extra++) {
        size_t len = sample_frame(buf);
        pkt_put_be16(buf + 32, 14 + extra);
        CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL),
                        CHAN_WIRE_ERR_TRUNCATED);
    }
    size_t len = sample_frame(buf);
    pkt_put_be16(buf + 32, 0xffff);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL),
                    CHAN_WIRE_ERR_TRUNCATED);
}

static void
test_reject_trailing(void)
{
    uint8_t buf[BUF_MAX];

    /* Payload length smaller than what is there, or bytes appended. */
    for (unsigned int less = 1; less <= 14; less++) {
        size_t len = sample_frame(buf);
        pkt_put_be16(buf + 32, 14 - less);
        CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL),
                        CHAN_WIRE_ERR_TRAILING);
    }
    for (unsigned int more = 1; more <= 20; more++) {
        size_t len = sample_frame(buf);
        memset(buf + len, 0, more);
        CU_ASSERT_EQUAL(decode_copy(buf, len + more, NULL, NULL),
                        CHAN_WIRE_ERR_TRAILING);
    }
}

static void
test_reject_auth(void)
{
    uint8_t buf[BUF_MAX];
    size_t len = sample_frame(buf);

    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(decode_copy_key(buf, len, "other", 5, NULL, NULL),
                    CHAN_WIRE_ERR_AUTH);

    /* Trailer zeroed; trailer from another frame. */
    uint8_t save[CHAN_WIRE_TRAILER_LEN];
    memcpy(save, buf + len - 16, 16);
    memset(buf + len - 16, 0, 16);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_ERR_AUTH);

    uint8_t other[BUF_MAX];
    struct chan_wire_header hdr = make_hdr(CHAN_WIRE_DATA);
    hdr.seq++;
    size_t other_len = encode_ok(&hdr, "{\"records\":[]}", 14, other);
    CU_ASSERT_EQUAL(other_len, len);
    memcpy(buf + len - 16, other + len - 16, 16);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_ERR_AUTH);

    /* Field damage without re-MAC is an authentication failure, even in
     * fields that would otherwise be invalid. */
    memcpy(buf + len - 16, save, 16);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_OK);
    buf[3] = 99;
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_ERR_AUTH);
}

/* Patches one raw field of the sample frame, re-MACs, expects 'error'. */
static void
check_patch(size_t ofs, const uint8_t *bytes, size_t n,
            enum chan_wire_error error)
{
    uint8_t buf[BUF_MAX];
    size_t len = sample_frame(buf);
    char what[64];

    memcpy(buf + ofs, bytes, n);
    remac(buf, len);
    snprintf(what, sizeof what, "patch at %zu", ofs);
    expect_error(what, decode_copy(buf, len, NULL, NULL), error);
}

static void
test_reject_type(void)
{
    for (unsigned int t = 0; t < 256; t++) {
        uint8_t b = t;
        /* The sample (ACK_VALID, nonzero epoch and seq, one chunk) is
         * valid as any known type but those of the transfer lane, which
         * carry no ack. */
        check_patch(3, &b, 1,
                    !chan_wire_type_is_valid(t) ? CHAN_WIRE_ERR_TYPE
                    : t == CHAN_WIRE_CHUNK || t == CHAN_WIRE_XFER
                    ? CHAN_WIRE_ERR_FLAGS_TYPE : CHAN_WIRE_OK);
    }
}

static void
test_reject_flags(void)
{
    for (int bit = 2; bit < 8; bit++) {
        uint8_t b = CHAN_WIRE_F_ACK_VALID | 1 << bit;
        check_patch(4, &b, 1, CHAN_WIRE_ERR_FLAGS);
    }
}

static void
test_reject_flags_type(void)
{
    static const uint8_t types[] = { CHAN_WIRE_ACK, CHAN_WIRE_HELLO,
                                     CHAN_WIRE_SYNC, CHAN_WIRE_HEARTBEAT };
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t tf[2] = { types[i], CHAN_WIRE_F_ACK_VALID
                                    | CHAN_WIRE_F_SNAPSHOT };
        check_patch(3, tf, 2, CHAN_WIRE_ERR_FLAGS_TYPE);
    }
}

static void
test_reject_reserved(void)
{
    for (int bit = 0; bit < 8; bit++) {
        uint8_t b = 1 << bit;
        check_patch(5, &b, 1, CHAN_WIRE_ERR_RESERVED);
        check_patch(34, &b, 1, CHAN_WIRE_ERR_RESERVED);
        check_patch(35, &b, 1, CHAN_WIRE_ERR_RESERVED);
    }
}

static void
test_reject_vid(void)
{
    static const uint16_t vids[] = { 0, 4095, 0x1001, 0x8ffe, 0xf000,
                                     0xffff };
    for (size_t i = 0; i < N_ELEMS(vids); i++) {
        uint8_t b[2];
        pkt_put_be16(b, vids[i]);
        check_patch(6, b, 2, CHAN_WIRE_ERR_VID);
    }
    uint8_t ok[2] = { 0, 1 };
    check_patch(6, ok, 2, CHAN_WIRE_OK);
}

static void
test_reject_epoch(void)
{
    uint8_t zero[4] = { 0, 0, 0, 0 };
    check_patch(8, zero, 4, CHAN_WIRE_ERR_EPOCH);

    /* HELLO and ACK may carry epoch 0. */
    uint8_t buf[BUF_MAX];
    size_t len = sample_frame(buf);
    buf[3] = CHAN_WIRE_HELLO;
    memcpy(buf + 8, zero, 4);
    remac(buf, len);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_OK);
    buf[3] = CHAN_WIRE_ACK;
    buf[4] = CHAN_WIRE_F_ACK_VALID;
    remac(buf, len);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_OK);
}

static void
test_reject_seq(void)
{
    uint8_t zero[8] = { 0 };
    check_patch(12, zero, 8, CHAN_WIRE_ERR_SEQ);

    /* Chunk 2 of 4 at seq 2: the first chunk would be at seq 0. */
    const struct hdr_case c = { "", 1, 0, 10, 5, 2, 0, 2, 4, 0 };
    uint8_t buf[BUF_MAX];
    size_t len = raw_frame(&c, 1, buf);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_ERR_SEQ);

    /* Chunk 0 of 2 at seq 2^64-1: the last chunk would wrap. */
    const struct hdr_case w = { "", 1, 0, 10, 5, UINT64_MAX, 0, 0, 2, 0 };
    len = raw_frame(&w, 1, buf);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_ERR_SEQ);
}

static void
test_reject_ack(void)
{
    /* ACK_VALID cleared while ack is nonzero. */
    uint8_t b = 0;
    check_patch(4, &b, 1, CHAN_WIRE_ERR_ACK);
}

static void
test_reject_ack_missing(void)
{
    uint8_t tf[2] = { CHAN_WIRE_ACK, 0 };
    uint8_t buf[BUF_MAX];
    size_t len = sample_frame(buf);
    memcpy(buf + 3, tf, 2);
    memset(buf + 12, 0, 16);        /* seq 0, ack 0. */
    remac(buf, len);
    CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL),
                    CHAN_WIRE_ERR_ACK_MISSING);
}

static void
test_reject_chunk_count(void)
{
    uint8_t b[4] = { 0, 0, 0, 0 };
    check_patch(28, b, 4, CHAN_WIRE_ERR_CHUNK_COUNT);
}

static void
test_reject_chunk_index(void)
{
    static const uint16_t pairs[][2] = {
        { 1, 1 }, { 2, 1 }, { 5, 5 }, { 0xffff, 0xffff }, { 0xffff, 2 },
    };
    for (size_t i = 0; i < N_ELEMS(pairs); i++) {
        uint8_t b[4];
        pkt_put_be16(b, pairs[i][0]);
        pkt_put_be16(b + 2, pairs[i][1]);
        check_patch(28, b, 4, CHAN_WIRE_ERR_CHUNK_INDEX);
    }
}

static void
test_reject_chunk_type(void)
{
    static const uint8_t types[] = { CHAN_WIRE_ACK, CHAN_WIRE_HELLO,
                                     CHAN_WIRE_SYNC, CHAN_WIRE_HEARTBEAT };
    for (size_t i = 0; i < sizeof types; i++) {
        const struct hdr_case c = { "", types[i], AV, 10, 5, 0, 0, 0, 2, 0 };
        uint8_t buf[BUF_MAX];
        size_t len = raw_frame(&c, 3, buf);
        CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL),
                        CHAN_WIRE_ERR_CHUNK_TYPE);
    }
}

/* A table of malformed frames: byte patches on the sample frame, with or
 * without re-MAC, and the expected error. */
static void
test_malformed_table(void)
{
    static const struct {
        const char *name;
        int cut;                /* Bytes removed from the end (<0: added).*/
        bool remac;
        struct { int ofs; uint8_t value; } patches[4];
        enum chan_wire_error error;
    } cases[] = {
        { "empty", 1000, false, { { -1, 0 } }, CHAN_WIRE_ERR_SHORT },
        { "header only", 30, false, { { -1, 0 } }, CHAN_WIRE_ERR_SHORT },
        { "no trailer", 16, false, { { -1, 0 } }, CHAN_WIRE_ERR_SHORT },
        { "half the trailer", 8, false, { { -1, 0 } },
          CHAN_WIRE_ERR_TRUNCATED },
        { "one trailer byte short", 1, false, { { -1, 0 } },
          CHAN_WIRE_ERR_TRUNCATED },
        { "one byte appended", -1, false, { { -1, 0 } },
          CHAN_WIRE_ERR_TRAILING },
        { "magic lowercase", 0, true, { { 0, 'c' }, { -1, 0 } },
          CHAN_WIRE_ERR_MAGIC },
        { "magic swapped", 0, true, { { 0, 'H' }, { 1, 'C' }, { -1, 0 } },
          CHAN_WIRE_ERR_MAGIC },
        { "version 0", 0, true, { { 2, 0 }, { -1, 0 } },
          CHAN_WIRE_ERR_VERSION },
        { "version 2", 0, true, { { 2, 2 }, { -1, 0 } },
          CHAN_WIRE_ERR_VERSION },
        { "stale trailer", 0, false, { { 15, 0x99 }, { -1, 0 } },
          CHAN_WIRE_ERR_AUTH },
        { "payload byte", 0, false, { { 40, '!' }, { -1, 0 } },
          CHAN_WIRE_ERR_AUTH },
        { "trailer byte", 0, false, { { 50, 0x00 }, { 51, 0x00 },
                                      { -1, 0 } },
          CHAN_WIRE_ERR_AUTH },
        { "type 0", 0, true, { { 3, 0 }, { -1, 0 } }, CHAN_WIRE_ERR_TYPE },
        { "type 200", 0, true, { { 3, 200 }, { -1, 0 } },
          CHAN_WIRE_ERR_TYPE },
        { "flags 0xff", 0, true, { { 4, 0xff }, { -1, 0 } },
          CHAN_WIRE_ERR_FLAGS },
        { "snapshot heartbeat", 0, true, { { 3, 5 }, { 4, 3 }, { -1, 0 } },
          CHAN_WIRE_ERR_FLAGS_TYPE },
        { "reserved 5", 0, true, { { 5, 0x80 }, { -1, 0 } },
          CHAN_WIRE_ERR_RESERVED },
        { "reserved 34", 0, true, { { 34, 1 }, { -1, 0 } },
          CHAN_WIRE_ERR_RESERVED },
        { "vid 0", 0, true, { { 6, 0 }, { 7, 0 }, { -1, 0 } },
          CHAN_WIRE_ERR_VID },
        { "vid pcp bits", 0, true, { { 6, 0xef }, { -1, 0 } },
          CHAN_WIRE_ERR_VID },
        { "epoch 0", 0, true, { { 8, 0 }, { 9, 0 }, { 10, 0 }, { 11, 0 } },
          CHAN_WIRE_ERR_EPOCH },
        { "ack flag cleared", 0, true, { { 4, 0 }, { -1, 0 } },
          CHAN_WIRE_ERR_ACK },
        { "chunk count 0", 0, true, { { 31, 0 }, { -1, 0 } },
          CHAN_WIRE_ERR_CHUNK_COUNT },
        { "chunk index 1 of 1", 0, true, { { 29, 1 }, { -1, 0 } },
          CHAN_WIRE_ERR_CHUNK_INDEX },
        { "hello in 2 chunks", 0, true, { { 3, 3 }, { 31, 2 }, { -1, 0 } },
          CHAN_WIRE_ERR_CHUNK_TYPE },
        { "valid: chunk 1 of 2", 0, true, { { 29, 1 }, { 31, 2 }, { -1, 0 } },
          CHAN_WIRE_OK },
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        uint8_t buf[BUF_MAX];
        size_t len = sample_frame(buf);

        for (size_t j = 0; j < N_ELEMS(cases[i].patches); j++) {
            if (cases[i].patches[j].ofs < 0) {
                break;
            }
            buf[cases[i].patches[j].ofs] = cases[i].patches[j].value;
        }
        if (cases[i].remac) {
            remac(buf, len);
        }
        if (cases[i].cut < 0) {
            memset(buf + len, 0, -cases[i].cut);
            len -= cases[i].cut;
        } else {
            len = (size_t) cases[i].cut > len ? 0 : len - cases[i].cut;
        }
        expect_error(cases[i].name, decode_copy(buf, len, NULL, NULL),
                     cases[i].error);
    }
}

/* Random frames. */

static struct chan_wire_header
random_hdr(uint64_t *state)
{
    static const uint8_t types[] = { 1, 2, 3, 4, 5 };
    struct chan_wire_header hdr;

    memset(&hdr, 0, sizeof hdr);
    hdr.type = types[unit_random(state) % 5];
    hdr.vid = 1 + unit_random(state) % 4094;
    hdr.epoch = unit_random(state);
    if (!hdr.epoch && hdr.type != CHAN_WIRE_HELLO) {
        hdr.epoch = 1;
    }
    hdr.flags = unit_random(state) & CHAN_WIRE_F_ACK_VALID;
    if (hdr.type == CHAN_WIRE_ACK) {
        hdr.flags |= CHAN_WIRE_F_ACK_VALID;
    }
    if (hdr.flags & CHAN_WIRE_F_ACK_VALID) {
        unsigned int shift = unit_random(state) % 64;
        hdr.ack = unit_random(state) >> shift;
    }
    hdr.chunk_count = 1;
    if (hdr.type == CHAN_WIRE_DATA) {
        hdr.flags |= unit_random(state) & CHAN_WIRE_F_SNAPSHOT;
        hdr.chunk_count = 1 + unit_random(state) % 65535;
        hdr.chunk_index = unit_random(state) % hdr.chunk_count;
        hdr.seq = hdr.chunk_index + 1 + unit_random(state) % 1000000;
    } else {
        hdr.seq = unit_random(state) % 3 ? 0 : unit_random(state) >> 1;
    }
    return hdr;
}

static void
test_random_round_trips(void)
{
    uint64_t state = 0xc0ffee;
    uint8_t payload[1420];
    uint8_t buf[BUF_MAX];

    for (int i = 0; i < 5000; i++) {
        struct chan_wire_header hdr = random_hdr(&state), out;
        size_t n = unit_random(&state) % (sizeof payload + 1);
        uint8_t key[40];
        size_t key_len = unit_random(&state) % sizeof key;
        const uint8_t *p;
        size_t len;

        CU_ASSERT_EQUAL_FATAL(chan_wire_check_header(&hdr), CHAN_WIRE_OK);
        for (size_t j = 0; j < n; j++) {
            payload[j] = unit_random(&state);
        }
        for (size_t j = 0; j < key_len; j++) {
            key[j] = unit_random(&state);
        }
        CU_ASSERT_EQUAL_FATAL(chan_wire_encode(&hdr, payload, n, key,
                                               key_len, buf, sizeof buf,
                                               &len), CHAN_WIRE_OK);
        CU_ASSERT_EQUAL(len, n + CHAN_WIRE_OVERHEAD);
        CU_ASSERT_EQUAL_FATAL(decode_copy_key(buf, len, key, key_len, &out,
                                              &p), CHAN_WIRE_OK);
        assert_hdr_equal(&hdr, &out);
        CU_ASSERT_EQUAL(out.payload_len, n);
        CU_ASSERT(!memcmp(p, payload, n));
    }
}

/* Every valid frame cut at every shorter length is rejected, never read
 * beyond its end. */
static void
test_truncated_everywhere(void)
{
    static const size_t sizes[] = { 0, 1, 2, 15, 100, 1420 };
    uint8_t payload[1420];
    uint8_t buf[BUF_MAX];

    memset(payload, '#', sizeof payload);
    for (int type = 1; type <= 5; type++) {
        for (size_t s = 0; s < N_ELEMS(sizes); s++) {
            struct chan_wire_header hdr = make_hdr(type);
            size_t len = encode_ok(&hdr, payload, sizes[s], buf);
            for (size_t cut = 0; cut < len; cut++) {
                enum chan_wire_error error = decode_copy(buf, cut, NULL,
                                                         NULL);
                CU_ASSERT(error == CHAN_WIRE_ERR_SHORT
                          || error == CHAN_WIRE_ERR_TRUNCATED);
            }
            CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_OK);
        }
    }
}

/* Flipping any single bit of any byte of a frame is rejected. */
static void
test_bit_flips(void)
{
    static const size_t sizes[] = { 0, 1, 37, 300 };
    uint8_t payload[300];
    uint8_t buf[BUF_MAX];
    uint64_t state = 5;

    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = unit_random(&state);
    }
    for (int type = 1; type <= 5; type++) {
        for (size_t s = 0; s < N_ELEMS(sizes); s++) {
            struct chan_wire_header hdr = make_hdr(type);
            size_t len = encode_ok(&hdr, payload, sizes[s], buf);
            int counts[CHAN_WIRE_N_ERRORS] = { 0 };

            for (size_t ofs = 0; ofs < len; ofs++) {
                for (int bit = 0; bit < 8; bit++) {
                    buf[ofs] ^= 1 << bit;
                    enum chan_wire_error error = decode_copy(buf, len, NULL,
                                                             NULL);
                    buf[ofs] ^= 1 << bit;
                    CU_ASSERT_NOT_EQUAL(error, CHAN_WIRE_OK);
                    if (error < CHAN_WIRE_N_ERRORS) {
                        counts[error]++;
                    }
                }
            }
            /* Only framing errors and MAC failures can result. */
            CU_ASSERT_EQUAL(counts[CHAN_WIRE_ERR_MAGIC], 16);
            CU_ASSERT_EQUAL(counts[CHAN_WIRE_ERR_VERSION], 8);
            CU_ASSERT_EQUAL(counts[CHAN_WIRE_ERR_AUTH]
                            + counts[CHAN_WIRE_ERR_MAGIC]
                            + counts[CHAN_WIRE_ERR_VERSION]
                            + counts[CHAN_WIRE_ERR_TRUNCATED]
                            + counts[CHAN_WIRE_ERR_TRAILING], len * 8);
            CU_ASSERT_EQUAL(decode_copy(buf, len, NULL, NULL), CHAN_WIRE_OK);
        }
    }
}

static void
test_random_garbage(void)
{
    uint64_t state = 0xfeed;
    uint8_t buf[600];

    for (int i = 0; i < 20000; i++) {
        size_t len = unit_random(&state) % sizeof buf;
        for (size_t j = 0; j < len; j++) {
            buf[j] = unit_random(&state);
        }
        if (i % 2 && len >= CHAN_WIRE_OVERHEAD) {
            /* Plausible framing, so that the MAC check is reached. */
            pkt_put_be16(buf, CHAN_WIRE_MAGIC);
            buf[2] = 1;
            pkt_put_be16(buf + 32, len - CHAN_WIRE_OVERHEAD);
        }
        enum chan_wire_error error = decode_copy(buf, len, NULL, NULL);
        CU_ASSERT_NOT_EQUAL(error, CHAN_WIRE_OK);
        if (i % 2 && len >= CHAN_WIRE_OVERHEAD) {
            CU_ASSERT_EQUAL(error, CHAN_WIRE_ERR_AUTH);
        }
    }
}

/* Chunker. */

static void
test_chunker_counts(void)
{
    static const struct {
        size_t len;
        unsigned int mtu;
        unsigned int count;
    } cases[] = {
        { 0, 1500, 1 }, { 1, 1500, 1 }, { 1420, 1500, 1 }, { 1421, 1500, 2 },
        { 2840, 1500, 2 }, { 2841, 1500, 3 }, { 496, 576, 1 },
        { 497, 576, 2 }, { 8920 * 3, 9000, 3 }, { 65455, 65535, 1 },
        { 65456, 65535, 2 }, { 496 * 65535, 576, 65535 },
    };
    struct chan_wire_header tmpl = make_hdr(CHAN_WIRE_DATA);
    static const uint8_t dummy[1];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct chan_chunker c;
        CU_ASSERT_EQUAL_FATAL(chan_chunker_init(&c, &tmpl, dummy,
                                                cases[i].len, cases[i].mtu),
                              CHAN_WIRE_OK);
        CU_ASSERT_EQUAL(chan_chunker_count(&c), cases[i].count);
    }
}

static void
test_chunker_errors(void)
{
    struct chan_wire_header tmpl = make_hdr(CHAN_WIRE_DATA);
    static const uint8_t dummy[1];
    struct chan_chunker c;

    CU_ASSERT_EQUAL(chan_chunker_init(&c, &tmpl, dummy, 10, 575),
                    CHAN_WIRE_ERR_MTU);
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &tmpl, dummy, 10, 65536),
                    CHAN_WIRE_ERR_MTU);
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &tmpl, dummy, 10, 0),
                    CHAN_WIRE_ERR_MTU);
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &tmpl, dummy, 496 * 65535 + 1,
                                      576), CHAN_WIRE_ERR_TOO_BIG);

    /* Non-DATA payloads must fit one frame. */
    struct chan_wire_header hello = make_hdr(CHAN_WIRE_HELLO);
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &hello, dummy, 1420, 1500),
                    CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &hello, dummy, 1421, 1500),
                    CHAN_WIRE_ERR_CHUNK_TYPE);

    /* The seq range must not wrap; DATA may not start at 0. */
    tmpl.seq = UINT64_MAX;
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &tmpl, dummy, 1420, 1500),
                    CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &tmpl, dummy, 1421, 1500),
                    CHAN_WIRE_ERR_SEQ);
    tmpl.seq = 0;
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &tmpl, dummy, 5, 1500),
                    CHAN_WIRE_ERR_SEQ);

    /* Template field errors. */
    tmpl = make_hdr(CHAN_WIRE_DATA);
    tmpl.vid = 0;
    CU_ASSERT_EQUAL(chan_chunker_init(&c, &tmpl, dummy, 5, 1500),
                    CHAN_WIRE_ERR_VID);
}

static void
test_chunker_frames(void)
{
    struct chan_wire_header tmpl = make_hdr(CHAN_WIRE_DATA), hdr;
    uint8_t msg[3000];
    struct chan_chunker c;
    const uint8_t *p;
    size_t n;

    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = i * 7;
    }
    tmpl.seq = 100;
    tmpl.flags = CHAN_WIRE_F_SNAPSHOT | CHAN_WIRE_F_ACK_VALID;
    tmpl.ack = 55;
    CU_ASSERT_EQUAL_FATAL(chan_chunker_init(&c, &tmpl, msg, sizeof msg,
                                            1500), CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(chan_chunker_count(&c), 3);

    static const size_t sizes[] = { 1420, 1420, 160 };
    for (unsigned int i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(chan_chunker_next(&c, &hdr, &p, &n));
        CU_ASSERT_EQUAL(hdr.seq, 100 + i);
        CU_ASSERT_EQUAL(hdr.chunk_index, i);
        CU_ASSERT_EQUAL(hdr.chunk_count, 3);
        CU_ASSERT_EQUAL(hdr.payload_len, sizes[i]);
        CU_ASSERT_EQUAL(hdr.flags, tmpl.flags);
        CU_ASSERT_EQUAL(hdr.ack, 55);
        CU_ASSERT_EQUAL(hdr.epoch, tmpl.epoch);
        CU_ASSERT_EQUAL(n, sizes[i]);
        CU_ASSERT(p == msg + 1420 * i);
        CU_ASSERT_EQUAL(chan_wire_check_header(&hdr), CHAN_WIRE_OK);
    }
    CU_ASSERT(!chan_chunker_next(&c, &hdr, &p, &n));
    CU_ASSERT(!chan_chunker_next(&c, &hdr, &p, &n));

    /* An empty message is one empty frame. */
    CU_ASSERT_EQUAL_FATAL(chan_chunker_init(&c, &tmpl, NULL, 0, 1500),
                          CHAN_WIRE_OK);
    CU_ASSERT_FATAL(chan_chunker_next(&c, &hdr, &p, &n));
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(hdr.chunk_count, 1);
    CU_ASSERT(!chan_chunker_next(&c, &hdr, &p, &n));
}

/* Chunks, encodes, decodes and reassembles 'len' bytes at 'msg'; checks the
 * message comes out exactly once, at the last chunk, intact. */
static void
chunk_reasm_round_trip(struct chan_reasm *r, const uint8_t *msg, size_t len,
                       unsigned int mtu, uint64_t first_seq)
{
    struct chan_wire_header tmpl = make_hdr(CHAN_WIRE_DATA), hdr, out;
    struct chan_chunker c;
    const uint8_t *p;
    size_t n;
    uint8_t *buf = malloc(chan_wire_max_frame(mtu));
    unsigned int frames = 0;
    bool done = false;

    tmpl.seq = first_seq;
    CU_ASSERT_EQUAL_FATAL(chan_chunker_init(&c, &tmpl, msg, len, mtu),
                          CHAN_WIRE_OK);
    unsigned int count = chan_chunker_count(&c);
    CU_ASSERT_EQUAL(count, len ? (len + chan_wire_max_payload(mtu) - 1)
                               / chan_wire_max_payload(mtu) : 1);
    while (chan_chunker_next(&c, &hdr, &p, &n)) {
        size_t frame_len;
        const uint8_t *payload;
        struct chan_msg m;
        bool complete;

        CU_ASSERT_EQUAL_FATAL(chan_wire_encode(&hdr, p, n, KEY, buf,
                                               chan_wire_max_frame(mtu),
                                               &frame_len), CHAN_WIRE_OK);
        CU_ASSERT(frame_len <= chan_wire_max_frame(mtu));
        CU_ASSERT_EQUAL_FATAL(chan_wire_decode(buf, frame_len, KEY, &out,
                                               &payload), CHAN_WIRE_OK);
        CU_ASSERT_EQUAL_FATAL(chan_reasm_feed(r, &out, payload, &m,
                                              &complete), CHAN_WIRE_OK);
        frames++;
        CU_ASSERT_EQUAL(complete, frames == count);
        CU_ASSERT_EQUAL(chan_reasm_in_progress(r), frames < count);
        if (complete) {
            CU_ASSERT(!done);
            done = true;
            CU_ASSERT_EQUAL(m.len, len);
            CU_ASSERT(!len || !memcmp(m.data, msg, len));
            CU_ASSERT_EQUAL(m.first_seq, first_seq);
            CU_ASSERT_EQUAL(m.last_seq, first_seq + count - 1);
            CU_ASSERT_EQUAL(m.n_chunks, count);
            CU_ASSERT_EQUAL(m.type, CHAN_WIRE_DATA);
            CU_ASSERT_EQUAL(m.epoch, tmpl.epoch);
            CU_ASSERT_EQUAL(m.vid, tmpl.vid);
            CU_ASSERT_EQUAL(m.ack, tmpl.ack);
            CU_ASSERT_EQUAL(m.flags, tmpl.flags);
        }
    }
    CU_ASSERT_EQUAL(frames, count);
    CU_ASSERT(done);
    free(buf);
}

static void
test_chunk_reasm_round_trips(void)
{
    static const unsigned int mtus[] = { 576, 1500, 9000, 65535 };
    size_t max_len = 300000;
    uint8_t *msg = malloc(max_len);
    struct chan_reasm *r = chan_reasm_create(0);
    uint64_t state = 0xabc;

    for (size_t i = 0; i < max_len; i++) {
        msg[i] = unit_random(&state);
    }

    /* Boundaries: 0, and around exact multiples of the chunk size. */
    for (size_t m = 0; m < N_ELEMS(mtus); m++) {
        size_t chunk = chan_wire_max_payload(mtus[m]);
        static const size_t k[] = { 1, 2, 3 };

        chunk_reasm_round_trip(r, msg, 0, mtus[m], 1);
        for (size_t j = 0; j < N_ELEMS(k); j++) {
            for (int d = -1; d <= 1; d++) {
                chunk_reasm_round_trip(r, msg, k[j] * chunk + d, mtus[m],
                                       1 + j);
            }
        }
    }

    /* Random sizes, MTUs and first seqs. */
    for (int i = 0; i < 400; i++) {
        unsigned int mtu = unit_random(&state) % 2
                           ? mtus[unit_random(&state) % N_ELEMS(mtus)]
                           : 576 + unit_random(&state) % (65535 - 576 + 1);
        size_t len = unit_random(&state) % 4 ? unit_random(&state) % 5000
                     : unit_random(&state) % max_len;
        chunk_reasm_round_trip(r, msg, len, mtu,
                               1 + unit_random(&state) % 1000000);
    }
    chan_reasm_destroy(r);
    free(msg);
}

/* Reassembler rejections.  Each builds a 3-chunk message and disturbs
 * it. */
static void
reasm_chunk(struct chan_wire_header *hdr, unsigned int index,
            unsigned int count, uint64_t first_seq, size_t len)
{
    *hdr = make_hdr(CHAN_WIRE_DATA);
    hdr->seq = first_seq + index;
    hdr->chunk_index = index;
    hdr->chunk_count = count;
    hdr->payload_len = len;
}

static enum chan_wire_error
feed(struct chan_reasm *r, const struct chan_wire_header *hdr, bool *done)
{
    static const uint8_t data[CHAN_WIRE_MAX_PAYLOAD];
    struct chan_msg m;
    bool complete;
    enum chan_wire_error error = chan_reasm_feed(r, hdr, data, &m,
                                                 &complete);
    if (done) {
        *done = complete;
    }
    if (error) {
        CU_ASSERT(!complete);
        CU_ASSERT(!chan_reasm_in_progress(r));
    }
    return error;
}

static void
test_reasm_single(void)
{
    struct chan_reasm *r = chan_reasm_create(0);
    struct chan_wire_header hdr;
    struct chan_msg m;
    bool done = false;

    reasm_chunk(&hdr, 0, 1, 7, 5);
    CU_ASSERT_EQUAL(chan_reasm_feed(r, &hdr, (const uint8_t *) "hello", &m,
                                    &done), CHAN_WIRE_OK);
    CU_ASSERT(done);
    CU_ASSERT_EQUAL(m.len, 5);
    CU_ASSERT(!memcmp(m.data, "hello", 5));
    CU_ASSERT_EQUAL(m.first_seq, 7);
    CU_ASSERT_EQUAL(m.last_seq, 7);
    CU_ASSERT(!chan_reasm_in_progress(r));

    /* Empty single-chunk message. */
    reasm_chunk(&hdr, 0, 1, 8, 0);
    CU_ASSERT_EQUAL(chan_reasm_feed(r, &hdr, NULL, &m, &done), CHAN_WIRE_OK);
    CU_ASSERT(done);
    CU_ASSERT_EQUAL(m.len, 0);
    chan_reasm_destroy(r);
    chan_reasm_destroy(NULL);
}

static void
test_reasm_reject_index(void)
{
    struct chan_reasm *r = chan_reasm_create(0);
    struct chan_wire_header hdr;
    bool done = false;

    /* Starting in the middle. */
    reasm_chunk(&hdr, 1, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_ERR_REASM_INDEX);

    /* Skipping a chunk (with a consistent seq). */
    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
    CU_ASSERT(!done);
    reasm_chunk(&hdr, 2, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_ERR_REASM_INDEX);

    /* Repeating a chunk. */
    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_ERR_REASM_INDEX);

    /* The offending chunk 0 can be fed again to start over. */
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
    CU_ASSERT(chan_reasm_in_progress(r));
    chan_reasm_destroy(r);
}

static void
test_reasm_reject_count(void)
{
    struct chan_reasm *r = chan_reasm_create(0);
    struct chan_wire_header hdr;

    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_OK);
    reasm_chunk(&hdr, 1, 4, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_ERR_REASM_COUNT);

    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_OK);
    reasm_chunk(&hdr, 1, 2, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_ERR_REASM_COUNT);
    chan_reasm_destroy(r);
}

static void
test_reasm_reject_seq(void)
{
    struct chan_reasm *r = chan_reasm_create(0);
    struct chan_wire_header hdr;

    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_OK);
    reasm_chunk(&hdr, 1, 3, 11, 100);         /* seq 12, expected 11. */
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_ERR_REASM_SEQ);

    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_OK);
    reasm_chunk(&hdr, 1, 3, 9, 100);          /* seq 10, expected 11. */
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_ERR_REASM_SEQ);
    chan_reasm_destroy(r);
}

static void
test_reasm_reject_mismatch(void)
{
    struct chan_reasm *r = chan_reasm_create(0);

    for (int what = 0; what < 4; what++) {
        struct chan_wire_header hdr;
        reasm_chunk(&hdr, 0, 3, 10, 100);
        CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_OK);
        reasm_chunk(&hdr, 1, 3, 10, 100);
        switch (what) {
        case 0:
            hdr.epoch++;
            break;
        case 1:
            hdr.vid = 5;
            break;
        case 2:
            hdr.flags |= CHAN_WIRE_F_SNAPSHOT;
            break;
        case 3:
            hdr.type = CHAN_WIRE_SYNC;
            break;
        }
        CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_ERR_REASM_MISMATCH);
    }

    /* ACK_VALID and ack may change between chunks: the last one wins. */
    struct chan_wire_header hdr;
    struct chan_msg m;
    bool done = false;
    static const uint8_t data[300];
    reasm_chunk(&hdr, 0, 2, 10, 100);
    hdr.flags = 0;
    hdr.ack = 0;
    CU_ASSERT_EQUAL(chan_reasm_feed(r, &hdr, data, &m, &done), CHAN_WIRE_OK);
    reasm_chunk(&hdr, 1, 2, 10, 100);
    hdr.ack = 77;
    CU_ASSERT_EQUAL(chan_reasm_feed(r, &hdr, data, &m, &done), CHAN_WIRE_OK);
    CU_ASSERT(done);
    CU_ASSERT_EQUAL(m.ack, 77);
    CU_ASSERT_EQUAL(m.flags, CHAN_WIRE_F_ACK_VALID);
    chan_reasm_destroy(r);
}

static void
test_reasm_reject_empty(void)
{
    struct chan_reasm *r = chan_reasm_create(0);
    struct chan_wire_header hdr;

    reasm_chunk(&hdr, 0, 3, 10, 0);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_ERR_REASM_EMPTY);

    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_OK);
    reasm_chunk(&hdr, 1, 3, 10, 0);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_ERR_REASM_EMPTY);

    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_OK);
    reasm_chunk(&hdr, 1, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_OK);
    reasm_chunk(&hdr, 2, 3, 10, 0);
    CU_ASSERT_EQUAL(feed(r, &hdr, NULL), CHAN_WIRE_ERR_REASM_EMPTY);
    chan_reasm_destroy(r);
}

static void
test_reasm_too_big(void)
{
    struct chan_reasm *r = chan_reasm_create(1000);
    struct chan_wire_header hdr;
    bool done = false;

    /* Exactly at the limit is fine. */
    for (unsigned int i = 0; i < 4; i++) {
        reasm_chunk(&hdr, i, 4, 10, 250);
        CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
    }
    CU_ASSERT(done);

    /* One byte more is not, and the state is clean afterwards. */
    for (unsigned int i = 0; i < 4; i++) {
        reasm_chunk(&hdr, i, 4, 10, i < 3 ? 250 : 251);
        CU_ASSERT_EQUAL(feed(r, &hdr, &done),
                        i < 3 ? CHAN_WIRE_OK : CHAN_WIRE_ERR_MSG_TOO_BIG);
    }
    reasm_chunk(&hdr, 0, 1, 10, 1001);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_ERR_MSG_TOO_BIG);
    reasm_chunk(&hdr, 0, 1, 10, 1000);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
    CU_ASSERT(done);
    chan_reasm_destroy(r);
}

/* The default limit is 80 MiB: a message of exactly that size is accepted
 * and one byte more is refused. */
static void
test_reasm_default_limit(void)
{
    struct chan_reasm *r = chan_reasm_create(0);
    size_t limit = CHAN_WIRE_DEFAULT_MAX_MSG;
    size_t chunk = CHAN_WIRE_MAX_PAYLOAD;
    unsigned int count = (limit + chunk - 1) / chunk;
    struct chan_wire_header hdr;
    bool done = false;

    CU_ASSERT_EQUAL(limit, 80 * 1024 * 1024);
    for (int extra = 0; extra < 2; extra++) {
        size_t left = limit + extra;
        for (unsigned int i = 0; i < count; i++) {
            size_t n = i + 1 < count ? chunk : left;
            reasm_chunk(&hdr, i, count, 1, n);
            enum chan_wire_error error = feed(r, &hdr, &done);
            if (i + 1 < count) {
                CU_ASSERT_EQUAL_FATAL(error, CHAN_WIRE_OK);
            } else {
                CU_ASSERT_EQUAL(error, extra ? CHAN_WIRE_ERR_MSG_TOO_BIG
                                             : CHAN_WIRE_OK);
                CU_ASSERT_EQUAL(done, !extra);
            }
            left -= n;
        }
    }
    chan_reasm_destroy(r);
}

static void
test_reasm_reset(void)
{
    struct chan_reasm *r = chan_reasm_create(0);
    struct chan_wire_header hdr;
    bool done = false;

    reasm_chunk(&hdr, 0, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
    CU_ASSERT(chan_reasm_in_progress(r));
    chan_reasm_reset(r);
    CU_ASSERT(!chan_reasm_in_progress(r));

    /* After a reset, a continuation is refused and a new message works. */
    reasm_chunk(&hdr, 1, 3, 10, 100);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_ERR_REASM_INDEX);
    for (unsigned int i = 0; i < 2; i++) {
        reasm_chunk(&hdr, i, 2, 50, 100);
        CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
        CU_ASSERT_EQUAL(done, i == 1);
    }

    /* Reset when idle is harmless; reset after a big message frees. */
    chan_reasm_reset(r);
    chan_reasm_reset(r);
    for (unsigned int i = 0; i < 40; i++) {
        reasm_chunk(&hdr, i, 40, 50, 60000);
        CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
    }
    CU_ASSERT(done);
    chan_reasm_reset(r);
    reasm_chunk(&hdr, 0, 1, 90, 10);
    CU_ASSERT_EQUAL(feed(r, &hdr, &done), CHAN_WIRE_OK);
    CU_ASSERT(done);
    chan_reasm_destroy(r);
}

/* Record batches. */

static const char example_batch_json[] =
    "{\"records\":[{\"op\":\"put\",\"key\":\"motd\","
    "\"value\":{\"text\":\"hello\",\"lang\":\"en\"},\"version\":3},"
    "{\"op\":\"delete\",\"key\":\"old-motd\",\"version\":4}]}";

static void
make_example_batch(struct chan_batch *batch)
{
    json_t *value = json_pack("{s:s, s:s}", "text", "hello", "lang", "en");
    chan_batch_init(batch);
    chan_batch_add_put(batch, "motd", value, 3);
    chan_batch_add_delete(batch, "old-motd", 4);
    json_decref(value);
}

static void
test_batch_encode(void)
{
    struct chan_batch batch;
    char *text;
    size_t len;

    make_example_batch(&batch);
    CU_ASSERT_EQUAL_FATAL(chan_batch_encode(&batch, NULL, &text, &len),
                          CHAN_WIRE_OK);
    CU_ASSERT_STRING_EQUAL(text, example_batch_json);
    CU_ASSERT_EQUAL(len, strlen(example_batch_json));
    free(text);
    chan_batch_destroy(&batch);
    CU_ASSERT_EQUAL(batch.n, 0);
    CU_ASSERT_PTR_NULL(batch.records);

    /* Empty batch. */
    CU_ASSERT_EQUAL(chan_batch_encode(&batch, NULL, &text, &len),
                    CHAN_WIRE_OK);
    CU_ASSERT_STRING_EQUAL(text, "{\"records\":[]}");
    free(text);

    /* Put with a null value, a value containing U+0000, UTF-8 key. */
    json_t *nul = json_stringn("a\0b", 3);
    chan_batch_add_put(&batch, "k\xc3\xa9", json_null(), 0);
    chan_batch_add_put(&batch, "n", nul, INT64_MAX);
    json_decref(nul);
    CU_ASSERT_EQUAL(chan_batch_encode(&batch, NULL, &text, &len),
                    CHAN_WIRE_OK);
    CU_ASSERT_STRING_EQUAL(text,
        "{\"records\":[{\"op\":\"put\",\"key\":\"k\xc3\xa9\",\"value\":null,"
        "\"version\":0},{\"op\":\"put\",\"key\":\"n\",\"value\":"
        "\"a\\u0000b\",\"version\":9223372036854775807}]}");

    struct chan_batch out;
    chan_batch_init(&out);
    CU_ASSERT_EQUAL_FATAL(chan_batch_decode(text, len, NULL, &out),
                          CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(out.n, 2);
    CU_ASSERT(json_is_null(out.records[0].value));
    CU_ASSERT_EQUAL(json_string_length(out.records[1].value), 3);
    CU_ASSERT_EQUAL(out.records[1].version, INT64_MAX);
    chan_batch_destroy(&out);
    free(text);
    chan_batch_destroy(&batch);
}

static void
test_batch_decode(void)
{
    struct chan_batch batch;

    chan_batch_init(&batch);
    CU_ASSERT_EQUAL_FATAL(chan_batch_decode(example_batch_json,
                                            strlen(example_batch_json),
                                            NULL, &batch), CHAN_WIRE_OK);
    CU_ASSERT_EQUAL_FATAL(batch.n, 2);
    CU_ASSERT_EQUAL(batch.records[0].op, CHAN_OP_PUT);
    CU_ASSERT_STRING_EQUAL(batch.records[0].key, "motd");
    CU_ASSERT_EQUAL(batch.records[0].version, 3);
    CU_ASSERT_STRING_EQUAL(json_string_value(
                               json_object_get(batch.records[0].value,
                                               "text")), "hello");
    CU_ASSERT_EQUAL(batch.records[1].op, CHAN_OP_DELETE);
    CU_ASSERT_STRING_EQUAL(batch.records[1].key, "old-motd");
    CU_ASSERT_PTR_NULL(batch.records[1].value);
    CU_ASSERT_EQUAL(batch.records[1].version, 4);

    /* The value is an independent reference: it outlives the parse. */
    CU_ASSERT_EQUAL(batch.records[0].value->refcount, 1);
    chan_batch_destroy(&batch);

    /* Whitespace and member order do not matter. */
    static const char spaced[] =
        " { \"records\" : [ { \"version\" : 1 , \"value\" : [ 1 , 2 ] ,"
        " \"key\" : \"a\" , \"op\" : \"put\" } ] } \n";
    CU_ASSERT_EQUAL(chan_batch_decode(spaced, strlen(spaced), NULL, &batch),
                    CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(batch.n, 1);
    chan_batch_destroy(&batch);
}

/* Builds "{"records":[<rec>]}" for the decode error table. */
static char *
wrap_record(const char *rec)
{
    size_t n = strlen(rec) + 32;
    char *s = malloc(n);
    snprintf(s, n, "{\"records\":[%s]}", rec);
    return s;
}

static void
test_batch_decode_errors(void)
{
    static const struct {
        const char *json;       /* Whole payload. */
        const char *record;     /* Or: one record, wrapped. */
        enum chan_wire_error error;
    } cases[] = {
        { "", NULL, CHAN_WIRE_ERR_JSON },
        { "{", NULL, CHAN_WIRE_ERR_JSON },
        { "{\"records\":[]} x", NULL, CHAN_WIRE_ERR_JSON },
        { "{\"records\":[]}{}", NULL, CHAN_WIRE_ERR_JSON },
        { "{\"records\":[],\"records\":[]}", NULL, CHAN_WIRE_ERR_JSON },
        { "{'records':[]}", NULL, CHAN_WIRE_ERR_JSON },
        { "{\"records\":[],}", NULL, CHAN_WIRE_ERR_JSON },
        { "\xef\xbb\xbf{\"records\":[]}", NULL, CHAN_WIRE_ERR_JSON },
        { "[]", NULL, CHAN_WIRE_ERR_JSON_NOT_OBJECT },
        { "null", NULL, CHAN_WIRE_ERR_JSON_NOT_OBJECT },
        { "42", NULL, CHAN_WIRE_ERR_JSON_NOT_OBJECT },
        { "\"records\"", NULL, CHAN_WIRE_ERR_JSON_NOT_OBJECT },
        { "{}", NULL, CHAN_WIRE_ERR_BATCH_NO_RECORDS },
        { "{\"Records\":[]}", NULL, CHAN_WIRE_ERR_BATCH_MEMBER },
        { "{\"records\":[],\"x\":1}", NULL, CHAN_WIRE_ERR_BATCH_MEMBER },
        { "{\"x\":1,\"records\":[]}", NULL, CHAN_WIRE_ERR_BATCH_MEMBER },
        { "{\"records\":{}}", NULL, CHAN_WIRE_ERR_BATCH_NOT_ARRAY },
        { "{\"records\":null}", NULL, CHAN_WIRE_ERR_BATCH_NOT_ARRAY },
        { "{\"records\":\"[]\"}", NULL, CHAN_WIRE_ERR_BATCH_NOT_ARRAY },
        { NULL, "1", CHAN_WIRE_ERR_RECORD_NOT_OBJECT },
        { NULL, "[]", CHAN_WIRE_ERR_RECORD_NOT_OBJECT },
        { NULL, "null", CHAN_WIRE_ERR_RECORD_NOT_OBJECT },
        { NULL, "\"put\"", CHAN_WIRE_ERR_RECORD_NOT_OBJECT },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,\"version\":1,"
          "\"extra\":1}", CHAN_WIRE_ERR_RECORD_MEMBER },
        { NULL, "{\"Op\":\"put\"}", CHAN_WIRE_ERR_RECORD_MEMBER },
        { NULL, "{}", CHAN_WIRE_ERR_OP_MISSING },
        { NULL, "{\"key\":\"k\",\"value\":1,\"version\":1}",
          CHAN_WIRE_ERR_OP_MISSING },
        { NULL, "{\"op\":1,\"key\":\"k\",\"version\":1}",
          CHAN_WIRE_ERR_OP_INVALID },
        { NULL, "{\"op\":\"PUT\",\"key\":\"k\",\"version\":1}",
          CHAN_WIRE_ERR_OP_INVALID },
        { NULL, "{\"op\":\"\",\"key\":\"k\",\"version\":1}",
          CHAN_WIRE_ERR_OP_INVALID },
        { NULL, "{\"op\":\"put\\u0000\",\"key\":\"k\",\"version\":1}",
          CHAN_WIRE_ERR_OP_INVALID },
        { NULL, "{\"op\":\"remove\",\"key\":\"k\",\"version\":1}",
          CHAN_WIRE_ERR_OP_INVALID },
        { NULL, "{\"op\":null,\"key\":\"k\",\"version\":1}",
          CHAN_WIRE_ERR_OP_INVALID },
        { NULL, "{\"op\":\"put\",\"value\":1,\"version\":1}",
          CHAN_WIRE_ERR_KEY_MISSING },
        { NULL, "{\"op\":\"put\",\"key\":1,\"value\":1,\"version\":1}",
          CHAN_WIRE_ERR_KEY_TYPE },
        { NULL, "{\"op\":\"put\",\"key\":null,\"value\":1,\"version\":1}",
          CHAN_WIRE_ERR_KEY_TYPE },
        { NULL, "{\"op\":\"put\",\"key\":[\"k\"],\"value\":1,\"version\":1}",
          CHAN_WIRE_ERR_KEY_TYPE },
        { NULL, "{\"op\":\"put\",\"key\":\"\",\"value\":1,\"version\":1}",
          CHAN_WIRE_ERR_KEY_EMPTY },
        { NULL, "{\"op\":\"delete\",\"key\":\"a\\u0000b\",\"version\":1}",
          CHAN_WIRE_ERR_KEY_NUL },
        { NULL, "{\"op\":\"delete\",\"key\":\"\\u0000\",\"version\":1}",
          CHAN_WIRE_ERR_KEY_NUL },
        { NULL, "{\"op\":\"delete\",\"key\":\"\xff\",\"version\":1}",
          CHAN_WIRE_ERR_JSON },
        { NULL, "{\"op\":\"delete\",\"key\":\"\\ud800\",\"version\":1}",
          CHAN_WIRE_ERR_JSON },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1}",
          CHAN_WIRE_ERR_VERSION_MISSING },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,\"version\":\"1\"}",
          CHAN_WIRE_ERR_VERSION_TYPE },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,\"version\":1.0}",
          CHAN_WIRE_ERR_VERSION_TYPE },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,\"version\":1e2}",
          CHAN_WIRE_ERR_VERSION_TYPE },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,\"version\":true}",
          CHAN_WIRE_ERR_VERSION_TYPE },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,\"version\":null}",
          CHAN_WIRE_ERR_VERSION_TYPE },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,\"version\":-1}",
          CHAN_WIRE_ERR_VERSION_NEGATIVE },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,"
          "\"version\":-9223372036854775808}",
          CHAN_WIRE_ERR_VERSION_NEGATIVE },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":1,"
          "\"version\":9223372036854775808}", CHAN_WIRE_ERR_JSON },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"version\":1}",
          CHAN_WIRE_ERR_VALUE_MISSING },
        { NULL, "{\"op\":\"delete\",\"key\":\"k\",\"value\":1,"
          "\"version\":1}", CHAN_WIRE_ERR_VALUE_UNEXPECTED },
        { NULL, "{\"op\":\"delete\",\"key\":\"k\",\"value\":null,"
          "\"version\":1}", CHAN_WIRE_ERR_VALUE_UNEXPECTED },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":{\"a\\u0000\":1},"
          "\"version\":1}", CHAN_WIRE_ERR_JSON },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":{\"a\":1,\"a\":2},"
          "\"version\":1}", CHAN_WIRE_ERR_JSON },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"key\":\"j\",\"value\":1,"
          "\"version\":1}", CHAN_WIRE_ERR_JSON },
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":NaN,"
          "\"version\":1}", CHAN_WIRE_ERR_JSON },
        /* Accepted edge cases. */
        { NULL, "{\"op\":\"put\",\"key\":\"k\",\"value\":\"a\\u0000\","
          "\"version\":0}", CHAN_WIRE_OK },
        { NULL, "{\"op\":\"put\",\"key\":\"\\u00e9\\ud83d\\ude00\","
          "\"value\":[],\"version\":9223372036854775807}", CHAN_WIRE_OK },
        { NULL, "{\"op\":\"put\",\"key\":\" \",\"value\":-0.5e-3,"
          "\"version\":0}", CHAN_WIRE_OK },
        /* A bad record after a good one: nothing leaks (ASan). */
        { "{\"records\":[{\"op\":\"put\",\"key\":\"k\",\"value\":{\"x\":[1]},"
          "\"version\":1},{\"op\":\"put\",\"key\":\"\",\"value\":1,"
          "\"version\":1}]}", NULL, CHAN_WIRE_ERR_KEY_EMPTY },
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *json = cases[i].json ? strdup(cases[i].json)
                                   : wrap_record(cases[i].record);
        struct chan_batch batch;

        chan_batch_init(&batch);
        expect_error(json, chan_batch_decode(json, strlen(json), NULL,
                                             &batch), cases[i].error);
        if (cases[i].error) {
            CU_ASSERT_EQUAL(batch.n, 0);
            CU_ASSERT_PTR_NULL(batch.records);
        } else {
            CU_ASSERT_EQUAL(batch.n, 1);
        }
        chan_batch_destroy(&batch);
        free(json);
    }
}

static void
test_batch_key_length(void)
{
    char rec[1024];
    char key[300];
    struct chan_batch batch;

    /* 256 ASCII bytes: accepted; 257: too long. */
    for (size_t n = 255; n <= 257; n++) {
        memset(key, 'k', n);
        key[n] = '\0';
        snprintf(rec, sizeof rec, "{\"records\":[{\"op\":\"delete\","
                 "\"key\":\"%s\",\"version\":1}]}", key);
        chan_batch_init(&batch);
        CU_ASSERT_EQUAL(chan_batch_decode(rec, strlen(rec), NULL, &batch),
                        n <= 256 ? CHAN_WIRE_OK
                                 : CHAN_WIRE_ERR_KEY_TOO_LONG);
        chan_batch_destroy(&batch);
    }

    /* Bytes, not characters: 254 + "é" (2 bytes) fits, 255 + "é" does
     * not, and an escaped \u00e9 counts as its 2 UTF-8 bytes. */
    for (size_t n = 254; n <= 255; n++) {
        memset(key, 'k', n);
        strcpy(key + n, "\\u00e9");
        snprintf(rec, sizeof rec, "{\"records\":[{\"op\":\"delete\","
                 "\"key\":\"%s\",\"version\":1}]}", key);
        chan_batch_init(&batch);
        CU_ASSERT_EQUAL(chan_batch_decode(rec, strlen(rec), NULL, &batch),
                        n == 254 ? CHAN_WIRE_OK
                                 : CHAN_WIRE_ERR_KEY_TOO_LONG);
        if (n == 254) {
            CU_ASSERT_EQUAL(strlen(batch.records[0].key), 256);
        }
        chan_batch_destroy(&batch);
    }
}

/* Builds a value nested 'depth' levels deep ([[...]] or {"a":{...}}). */
static char *
nested_value(size_t depth, bool objects)
{
    char *s = malloc(depth * 6 + 2);
    size_t n = 0;

    for (size_t i = 0; i < depth; i++) {
        n += sprintf(s + n, objects ? "{\"a\":" : "[");
    }
    s[n++] = '1';
    for (size_t i = 0; i < depth; i++) {
        s[n++] = objects ? '}' : ']';
    }
    s[n] = '\0';
    return s;
}

static void
test_batch_limits(void)
{
    struct chan_wire_limits limits = { .max_records = 3, .max_depth = 4 };
    struct chan_batch batch;
    char json[4096];

    /* Record count. */
    for (size_t n = 0; n <= 4; n++) {
        size_t len = sprintf(json, "{\"records\":[");
        for (size_t i = 0; i < n; i++) {
            len += sprintf(json + len, "%s{\"op\":\"delete\",\"key\":\"k%zu\","
                           "\"version\":%zu}", i ? "," : "", i, i);
        }
        len += sprintf(json + len, "]}");
        chan_batch_init(&batch);
        CU_ASSERT_EQUAL(chan_batch_decode(json, len, &limits, &batch),
                        n <= 3 ? CHAN_WIRE_OK : CHAN_WIRE_ERR_BATCH_TOO_MANY);
        CU_ASSERT_EQUAL(batch.n, n <= 3 ? n : 0);
        chan_batch_destroy(&batch);
    }

    /* Value nesting: custom limit 4, and the default 32. */
    for (int objects = 0; objects < 2; objects++) {
        for (size_t depth = 0; depth <= 40; depth++) {
            char *value = nested_value(depth, objects);
            snprintf(json, sizeof json, "{\"records\":[{\"op\":\"put\","
                     "\"key\":\"k\",\"value\":%s,\"version\":1}]}", value);
            chan_batch_init(&batch);
            CU_ASSERT_EQUAL(chan_batch_decode(json, strlen(json), &limits,
                                              &batch),
                            depth <= 4 ? CHAN_WIRE_OK
                                       : CHAN_WIRE_ERR_JSON_TOO_DEEP);
            chan_batch_destroy(&batch);
            CU_ASSERT_EQUAL(chan_batch_decode(json, strlen(json), NULL,
                                              &batch),
                            depth <= CHAN_WIRE_DEFAULT_MAX_DEPTH
                            ? CHAN_WIRE_OK : CHAN_WIRE_ERR_JSON_TOO_DEEP);
            chan_batch_destroy(&batch);
            free(value);
        }
    }

    /* Extremely deep input is refused (by jansson's own limit) without
     * crashing. */
    char *deep = nested_value(100000, false);
    chan_batch_init(&batch);
    CU_ASSERT_NOT_EQUAL(chan_batch_decode(deep, strlen(deep), NULL, &batch),
                        CHAN_WIRE_OK);
    chan_batch_destroy(&batch);
    free(deep);
}

static void
test_batch_default_record_limit(void)
{
    size_t n = CHAN_WIRE_DEFAULT_MAX_RECORDS;
    size_t size = (n + 1) * 48 + 32;
    char *json = malloc(size);
    struct chan_batch batch;

    for (int extra = 0; extra < 2; extra++) {
        size_t len = sprintf(json, "{\"records\":[");
        for (size_t i = 0; i < n + extra; i++) {
            len += sprintf(json + len, "%s{\"op\":\"delete\",\"key\":\"%zu\","
                           "\"version\":1}", i ? "," : "", i);
        }
        len += sprintf(json + len, "]}");
        chan_batch_init(&batch);
        CU_ASSERT_EQUAL(chan_batch_decode(json, len, NULL, &batch),
                        extra ? CHAN_WIRE_ERR_BATCH_TOO_MANY : CHAN_WIRE_OK);
        CU_ASSERT_EQUAL(batch.n, extra ? 0 : n);
        chan_batch_destroy(&batch);
    }
    free(json);
}

static void
test_batch_encode_errors(void)
{
    struct chan_batch batch;
    char *text = (char *) "unchanged";
    size_t len;
    char key[300];
    json_t *one = json_integer(1);

#define EXPECT_ENCODE(LIMITS, ERROR)                                    \
    do {                                                                \
        CU_ASSERT_EQUAL(chan_batch_encode(&batch, LIMITS, &text, &len), \
                        ERROR);                                         \
        CU_ASSERT_PTR_NULL(text);                                       \
        chan_batch_destroy(&batch);                                     \
    } while (0)

    chan_batch_init(&batch);
    chan_batch_add_put(&batch, "", one, 1);
    EXPECT_ENCODE(NULL, CHAN_WIRE_ERR_KEY_EMPTY);

    memset(key, 'k', 257);
    key[257] = '\0';
    chan_batch_add_put(&batch, key, one, 1);
    EXPECT_ENCODE(NULL, CHAN_WIRE_ERR_KEY_TOO_LONG);

    chan_batch_add_delete(&batch, "\xc3(", 1);
    EXPECT_ENCODE(NULL, CHAN_WIRE_ERR_KEY_UTF8);

    chan_batch_add_delete(&batch, "k", -1);
    EXPECT_ENCODE(NULL, CHAN_WIRE_ERR_VERSION_NEGATIVE);

    chan_batch_add_put(&batch, "k", NULL, 1);
    EXPECT_ENCODE(NULL, CHAN_WIRE_ERR_VALUE_MISSING);

    chan_batch_add_delete(&batch, "k", 1);
    batch.records[0].value = json_incref(one);
    EXPECT_ENCODE(NULL, CHAN_WIRE_ERR_VALUE_UNEXPECTED);

    chan_batch_add_delete(&batch, "k", 1);
    batch.records[0].op = 0;
    EXPECT_ENCODE(NULL, CHAN_WIRE_ERR_OP_INVALID);

    struct chan_wire_limits limits = { .max_records = 1, .max_depth = 2 };
    chan_batch_add_delete(&batch, "a", 1);
    chan_batch_add_delete(&batch, "b", 1);
    EXPECT_ENCODE(&limits, CHAN_WIRE_ERR_BATCH_TOO_MANY);

    json_t *deep = json_loads("[[[1]]]", 0, NULL);
    chan_batch_add_put(&batch, "k", deep, 1);
    EXPECT_ENCODE(&limits, CHAN_WIRE_ERR_JSON_TOO_DEEP);
    chan_batch_add_put(&batch, "k", deep, 1);
    CU_ASSERT_EQUAL(chan_batch_encode(&batch, NULL, &text, &len),
                    CHAN_WIRE_OK);
    free(text);
    chan_batch_destroy(&batch);
    json_decref(deep);

#if JANSSON_VERSION_HEX >= 0x020e00
    /* A member name with U+0000 cannot be decoded, so is not encoded. */
    json_t *obj = json_object();
    json_object_setn_new(obj, "a\0b", 3, json_true());
    chan_batch_add_put(&batch, "k", obj, 1);
    EXPECT_ENCODE(NULL, CHAN_WIRE_ERR_JSON);
    json_decref(obj);
#endif

    json_decref(one);
#undef EXPECT_ENCODE
}

/* Random JSON values and batches. */

static void
random_utf8(uint64_t *state, char *buf, size_t max_bytes)
{
    static const char *const pieces[] = {
        "a", "Z", "0", "-", "_", "/", ".", " ", "\"", "\\", "\t",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xd0\x96",
    };
    size_t target = 1 + unit_random(state) % max_bytes;
    size_t n = 0;

    for (;;) {
        const char *p = pieces[unit_random(state) % N_ELEMS(pieces)];
        size_t len = strlen(p);
        if (n + len > target) {
            break;
        }
        memcpy(buf + n, p, len);
        n += len;
    }
    if (!n) {
        buf[n++] = 'x';
    }
    buf[n] = '\0';
}

static json_t *
random_json(uint64_t *state, int depth)
{
    char s[64];

    switch (unit_random(state) % (depth > 0 ? 8 : 6)) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(unit_random(state) & 1);
    case 2: {
        unsigned int shift = unit_random(state) % 64;
        return json_integer((json_int_t) (unit_random(state) >> shift));
    }
    case 3:
        return json_real((double) (int64_t) unit_random(state) / 1024.0);
    case 4:
        random_utf8(state, s, 40);
        return json_string(s);
    case 5:
        return json_stringn("nul\0inside", 10);
    case 6: {
        json_t *a = json_array();
        int n = unit_random(state) % 4;
        for (int i = 0; i < n; i++) {
            json_array_append_new(a, random_json(state, depth - 1));
        }
        return a;
    }
    default: {
        json_t *o = json_object();
        int n = unit_random(state) % 4;
        for (int i = 0; i < n; i++) {
            random_utf8(state, s, 12);
            json_object_set_new(o, s, random_json(state, depth - 1));
        }
        return o;
    }
    }
}

static void
random_batch(uint64_t *state, struct chan_batch *batch, size_t max_records)
{
    size_t n = unit_random(state) % (max_records + 1);
    char key[CHAN_WIRE_MAX_KEY_LEN + 1];

    chan_batch_init(batch);
    for (size_t i = 0; i < n; i++) {
        random_utf8(state, key, CHAN_WIRE_MAX_KEY_LEN);
        unsigned int shift = 1 + unit_random(state) % 63;
        int64_t version = unit_random(state) >> shift;
        if (unit_random(state) % 3) {
            json_t *value = random_json(state, 4);
            chan_batch_add_put(batch, key, value, version);
            json_decref(value);
        } else {
            chan_batch_add_delete(batch, key, version);
        }
    }
}

static void
assert_batch_equal(const struct chan_batch *a, const struct chan_batch *b)
{
    CU_ASSERT_EQUAL_FATAL(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        CU_ASSERT_EQUAL(a->records[i].op, b->records[i].op);
        CU_ASSERT_STRING_EQUAL(a->records[i].key, b->records[i].key);
        CU_ASSERT_EQUAL(a->records[i].version, b->records[i].version);
        CU_ASSERT_EQUAL(!a->records[i].value, !b->records[i].value);
        if (a->records[i].value) {
            CU_ASSERT(json_equal(a->records[i].value, b->records[i].value));
        }
    }
}

static void
test_batch_random_round_trips(void)
{
    uint64_t state = 0x1234;

    for (int i = 0; i < 1000; i++) {
        struct chan_batch batch, out;
        char *text;
        size_t len;

        random_batch(&state, &batch, 20);
        CU_ASSERT_EQUAL_FATAL(chan_batch_encode(&batch, NULL, &text, &len),
                              CHAN_WIRE_OK);
        CU_ASSERT_EQUAL(strlen(text), len);
        chan_batch_init(&out);
        CU_ASSERT_EQUAL_FATAL(chan_batch_decode(text, len, NULL, &out),
                              CHAN_WIRE_OK);
        assert_batch_equal(&batch, &out);

        /* Strict prefixes of the text are rejected: all of them for short
         * texts, a random sample for long ones. */
        if (i < 200) {
            for (size_t j = 0; j < len && j < 200; j++) {
                size_t cut = len <= 200 ? j : unit_random(&state) % len;
                struct chan_batch tmp;
                chan_batch_init(&tmp);
                CU_ASSERT_NOT_EQUAL(chan_batch_decode(text, cut, NULL, &tmp),
                                    CHAN_WIRE_OK);
                CU_ASSERT_EQUAL(tmp.n, 0);
            }
        }
        free(text);
        chan_batch_destroy(&out);
        chan_batch_destroy(&batch);
    }
}

/* Object payloads (HELLO, SYNC, HEARTBEAT, ACK). */

static void
test_object_payloads(void)
{
    json_t *obj;
    char *text;
    size_t len;

    CU_ASSERT_EQUAL(chan_payload_decode_object(NULL, 0, NULL, &obj),
                    CHAN_WIRE_OK);
    CU_ASSERT(json_is_object(obj));
    CU_ASSERT_EQUAL(json_object_size(obj), 0);
    json_decref(obj);

    static const char hello[] = "{\"applied\":{\"epoch\":3,\"seq\":99},"
                                "\"name\":\"vm-7\",\"s\":\"\\u0000\"}";
    CU_ASSERT_EQUAL_FATAL(chan_payload_decode_object(hello, strlen(hello),
                                                     NULL, &obj),
                          CHAN_WIRE_OK);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                        json_object_get(obj, "applied"), "seq")), 99);
    CU_ASSERT_EQUAL(obj->refcount, 1);
    CU_ASSERT_EQUAL(chan_payload_encode_object(obj, NULL, &text, &len),
                    CHAN_WIRE_OK);
    CU_ASSERT_STRING_EQUAL(text, hello);
    CU_ASSERT_EQUAL(len, strlen(hello));
    free(text);
    json_decref(obj);

    static const struct {
        const char *json;
        enum chan_wire_error error;
    } bad[] = {
        { " ", CHAN_WIRE_ERR_JSON },
        { "{", CHAN_WIRE_ERR_JSON },
        { "{}x", CHAN_WIRE_ERR_JSON },
        { "{\"a\":1,\"a\":1}", CHAN_WIRE_ERR_JSON },
        { "{\"a\\u0000\":1}", CHAN_WIRE_ERR_JSON },
        { "[]", CHAN_WIRE_ERR_JSON_NOT_OBJECT },
        { "1", CHAN_WIRE_ERR_JSON_NOT_OBJECT },
        { "\"x\"", CHAN_WIRE_ERR_JSON_NOT_OBJECT },
        { "null", CHAN_WIRE_ERR_JSON_NOT_OBJECT },
        { "{\"a\":{\"b\":{}}}", CHAN_WIRE_ERR_JSON_TOO_DEEP },
        { "{\"a\":[1]}", CHAN_WIRE_OK },
    };
    struct chan_wire_limits limits = { .max_depth = 2 };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        obj = (json_t *) 1;
        enum chan_wire_error error = chan_payload_decode_object(
            bad[i].json, strlen(bad[i].json), &limits, &obj);
        expect_error(bad[i].json, error, bad[i].error);
        if (error) {
            CU_ASSERT_PTR_NULL(obj);
        } else {
            json_decref(obj);
        }
    }

    /* Encoding. */
    CU_ASSERT_EQUAL(chan_payload_encode_object(NULL, NULL, &text, &len),
                    CHAN_WIRE_OK);
    CU_ASSERT_PTR_NULL(text);
    CU_ASSERT_EQUAL(len, 0);
    obj = json_object();
    CU_ASSERT_EQUAL(chan_payload_encode_object(obj, NULL, &text, &len),
                    CHAN_WIRE_OK);
    CU_ASSERT_PTR_NULL(text);
    CU_ASSERT_EQUAL(len, 0);
    json_object_set_new(obj, "a", json_pack("{s:{s:i}}", "b", "c", 1));
    CU_ASSERT_EQUAL(chan_payload_encode_object(obj, &limits, &text, &len),
                    CHAN_WIRE_ERR_JSON_TOO_DEEP);
    CU_ASSERT_PTR_NULL(text);
    json_decref(obj);
    obj = json_array();
    CU_ASSERT_EQUAL(chan_payload_encode_object(obj, NULL, &text, &len),
                    CHAN_WIRE_ERR_JSON_NOT_OBJECT);
    json_decref(obj);
}

/* End to end: a random batch is encoded, chunked, framed, wrapped in
 * Ethernet/802.1Q/IPv4/UDP, parsed, decoded, reassembled and decoded back
 * into the same batch. */
static void
test_end_to_end(void)
{
    struct chan_reasm *r = chan_reasm_create(0);
    struct chan_endpoint host, guest;
    uint64_t state = 0xe2e;
    uint64_t seq = 1;

    chan_endpoint_host(&host);
    chan_endpoint_guest(7, &guest);
    for (int i = 0; i < 60; i++) {
        struct chan_batch batch, out;
        unsigned int mtu = i % 2 ? 1500 : 576;
        struct chan_wire_header tmpl = make_hdr(CHAN_WIRE_DATA), hdr;
        struct chan_chunker c;
        const uint8_t *p;
        char *text;
        size_t len, n;
        bool complete = false;
        struct chan_msg m;

        random_batch(&state, &batch, i < 50 ? 30 : 400);
        CU_ASSERT_EQUAL_FATAL(chan_batch_encode(&batch, NULL, &text, &len),
                              CHAN_WIRE_OK);
        tmpl.seq = seq;
        CU_ASSERT_EQUAL_FATAL(chan_chunker_init(&c, &tmpl, text, len, mtu),
                              CHAN_WIRE_OK);
        seq += chan_chunker_count(&c);
        while (chan_chunker_next(&c, &hdr, &p, &n)) {
            uint8_t frame[1500], eth[1600];
            size_t frame_len, eth_len;
            struct pkt_udp pkt = {
                .eth_dst = guest.mac, .eth_src = host.mac,
                .vlan = true, .vid = 4094,
                .ip_src = host.ip, .ip_dst = guest.ip, .ttl = 64,
                .udp_src = host.port, .udp_dst = guest.port,
            }, rx;
            const uint8_t *payload;

            CU_ASSERT_FATAL(!complete);
            CU_ASSERT_EQUAL_FATAL(chan_wire_encode(&hdr, p, n, KEY, frame,
                                                   sizeof frame, &frame_len),
                                  CHAN_WIRE_OK);
            CU_ASSERT(frame_len + CHAN_WIRE_IP_UDP_LEN <= mtu);
            pkt.payload = frame;
            pkt.payload_len = frame_len;
            CU_ASSERT_EQUAL_FATAL(pkt_udp_build(&pkt, eth, sizeof eth,
                                                &eth_len), PKT_OK);
            CU_ASSERT_EQUAL(eth_len, 18 + 28 + frame_len);
            CU_ASSERT_EQUAL_FATAL(pkt_udp_parse(eth, eth_len,
                                                PKT_PARSE_REQUIRE_UDP_CSUM,
                                                &rx), PKT_OK);
            CU_ASSERT_EQUAL(rx.vid, 4094);
            CU_ASSERT_EQUAL_FATAL(chan_wire_decode(rx.payload,
                                                   rx.payload_len, KEY,
                                                   &hdr, &payload),
                                  CHAN_WIRE_OK);
            CU_ASSERT_EQUAL_FATAL(chan_reasm_feed(r, &hdr, payload, &m,
                                                  &complete), CHAN_WIRE_OK);
        }
        CU_ASSERT_FATAL(complete);
        chan_batch_init(&out);
        CU_ASSERT_EQUAL_FATAL(chan_batch_decode(m.data, m.len, NULL, &out),
                              CHAN_WIRE_OK);
        assert_batch_equal(&batch, &out);
        chan_batch_destroy(&out);
        chan_batch_destroy(&batch);
        free(text);
    }
    chan_reasm_destroy(r);
}

/* The example frames in doc/PROTOCOL.md: section 9 (a DATA frame from the
 * host daemon to a guest) and section 9.1 (an upstream DATA frame from a
 * guest to the host daemon).  Each has a ```hexdump<suffix> and a
 * ```summary<suffix> block; the same code renders and checks both. */

#define EXAMPLE_CHAN_ID 7
#define EXAMPLE_VID 4094
#define EXAMPLE_KEY "example-key"

static void
make_upstream_example_batch(struct chan_batch *batch)
{
    json_t *value = json_pack("{s:i}", "uptime", 42);
    chan_batch_init(batch);
    chan_batch_add_put(batch, "stats/app", value, 9);
    chan_batch_add_delete(batch, "obj/old", 10);
    json_decref(value);
}

struct example {
    const char *section;        /* Where in PROTOCOL.md, for messages. */
    const char *suffix;         /* Of the block tags: "" or "-upstream". */
    bool upstream;              /* Guest to host daemon (else the reverse). */
    struct chan_wire_header hdr;        /* payload_len is ignored. */
    void (*make_batch)(struct chan_batch *);
};

static const struct example examples[] = {
    {
        .section = "section 9", .suffix = "", .upstream = false,
        .hdr = {
            .type = CHAN_WIRE_DATA, .flags = CHAN_WIRE_F_ACK_VALID,
            .vid = EXAMPLE_VID, .epoch = 1, .seq = 42, .ack = 17,
            .chunk_index = 0, .chunk_count = 1,
        },
        .make_batch = make_example_batch,
    },
    {
        .section = "section 9.1", .suffix = "-upstream", .upstream = true,
        .hdr = {
            .type = CHAN_WIRE_DATA, .flags = 0,
            .vid = EXAMPLE_VID, .epoch = 0x5eed, .seq = 3, .ack = 0,
            .chunk_index = 0, .chunk_count = 1,
        },
        .make_batch = make_upstream_example_batch,
    },
};

/* The endpoints of 'ex': source and destination, with the words the
 * annotations use for them. */
struct example_ends {
    struct chan_endpoint host, guest;
    const struct chan_endpoint *src, *dst;
    char guest_name[32];
    const char *src_name, *dst_name;
};

static void
example_ends_init(const struct example *ex, uint32_t chan_id,
                  struct example_ends *e)
{
    chan_endpoint_host(&e->host);
    chan_endpoint_guest(chan_id, &e->guest);
    snprintf(e->guest_name, sizeof e->guest_name, "guest of chan-id %"PRIu32,
             chan_id);
    e->src = ex->upstream ? &e->guest : &e->host;
    e->dst = ex->upstream ? &e->host : &e->guest;
    e->src_name = ex->upstream ? e->guest_name : "host daemon";
    e->dst_name = ex->upstream ? "host daemon" : e->guest_name;
}

/* The header flags as the summary and the annotations write them: the
 * names separated by '|', or "none". */
static const char *
example_flags(uint8_t flags)
{
    static const char *const names[4] = {
        "none", "ACK_VALID", "SNAPSHOT", "ACK_VALID|SNAPSHOT",
    };
    return flags < 4 ? names[flags] : "invalid";
}

/* Writes one hexdump line: offset, 'n' bytes, annotation.  The bytes field
 * is padded to 16 bytes so that annotations line up. */
static void
dump_line(FILE *f, const uint8_t *frame, size_t *ofs, size_t n,
          const char *fmt, ...)
{
    char note[256];
    va_list args;
    int col;

    va_start(args, fmt);
    vsnprintf(note, sizeof note, fmt, args);
    va_end(args);

    fprintf(f, "%04zx  ", *ofs);
    col = 0;
    for (size_t i = 0; i < n; i++) {
        col += fprintf(f, i ? " %02x" : "%02x", frame[*ofs + i]);
    }
    fprintf(f, "%*s  %s\n", 47 - col, "", note);
    *ofs += n;
}

/* Renders the ```hexdump<suffix> and ```summary<suffix> blocks of 'ex'
 * into 's'. */
static void
generate_example(FILE *s, const struct example *ex)
{
    struct example_ends e;
    struct chan_batch batch;
    char *json;
    size_t json_len;

    example_ends_init(ex, EXAMPLE_CHAN_ID, &e);
    ex->make_batch(&batch);
    CU_ASSERT_EQUAL_FATAL(chan_batch_encode(&batch, NULL, &json, &json_len),
                          CHAN_WIRE_OK);

    const struct chan_wire_header hdr = ex->hdr;
    uint8_t chan[1472];
    size_t chan_len;
    CU_ASSERT_EQUAL_FATAL(chan_wire_encode(&hdr, json, json_len, EXAMPLE_KEY,
                                           strlen(EXAMPLE_KEY), chan,
                                           sizeof chan, &chan_len),
                          CHAN_WIRE_OK);

    struct pkt_udp pkt = {
        .eth_dst = e.dst->mac, .eth_src = e.src->mac,
        .vlan = true, .vid = EXAMPLE_VID, .pcp = 0,
        .ip_src = e.src->ip, .ip_dst = e.dst->ip, .ttl = PKT_DEFAULT_TTL,
        .udp_src = e.src->port, .udp_dst = e.dst->port,
        .payload = chan, .payload_len = chan_len,
    };
    uint8_t f[1600];
    size_t len;
    CU_ASSERT_EQUAL_FATAL(pkt_udp_build(&pkt, f, sizeof f, &len), PKT_OK);

    size_t ofs = 0;
    char mac_s[ETH_ADDR_STRLEN], ip_s[IP_STRLEN];

    fprintf(s, "```hexdump%s\n", ex->suffix);
    fprintf(s, "# Ethernet II header with 802.1Q tag (18 bytes)\n");
    dump_line(s, f, &ofs, 6, "destination MAC %s (%s)",
              eth_addr_to_string(&e.dst->mac, mac_s), e.dst_name);
    dump_line(s, f, &ofs, 6, "source MAC %s (%s)",
              eth_addr_to_string(&e.src->mac, mac_s), e.src_name);
    dump_line(s, f, &ofs, 2, "TPID 0x8100 (802.1Q)");
    dump_line(s, f, &ofs, 2, "TCI: PCP 0, DEI 0, VID %d", EXAMPLE_VID);
    dump_line(s, f, &ofs, 2, "ethertype 0x0800 (IPv4)");
    fprintf(s, "# IPv4 header (20 bytes, no options)\n");
    dump_line(s, f, &ofs, 2, "version 4, IHL 5; DSCP/ECN 0");
    dump_line(s, f, &ofs, 2, "total length %u",
              pkt_get_be16(f + 18 + 2));
    dump_line(s, f, &ofs, 2, "identification 0");
    dump_line(s, f, &ofs, 2, "flags DF, fragment offset 0");
    dump_line(s, f, &ofs, 2, "TTL %d, protocol 17 (UDP)", PKT_DEFAULT_TTL);
    dump_line(s, f, &ofs, 2, "header checksum 0x%04x",
              pkt_get_be16(f + 18 + 10));
    dump_line(s, f, &ofs, 4, "source %s (%s)",
              ip_to_string(e.src->ip, ip_s), e.src_name);
    dump_line(s, f, &ofs, 4, "destination %s (%s)",
              ip_to_string(e.dst->ip, ip_s), e.dst_name);
    fprintf(s, "# UDP header (8 bytes)\n");
    dump_line(s, f, &ofs, 2, "source port %u", e.src->port);
    dump_line(s, f, &ofs, 2, "destination port %u", e.dst->port);
    dump_line(s, f, &ofs, 2, "length %u", pkt_get_be16(f + 38 + 4));
    dump_line(s, f, &ofs, 2, "checksum 0x%04x (with pseudo-header)",
              pkt_get_be16(f + 38 + 6));
    fprintf(s, "# chand header (36 bytes)\n");
    dump_line(s, f, &ofs, 2, "magic 0x4348 \"CH\"");
    dump_line(s, f, &ofs, 1, "version 1");
    dump_line(s, f, &ofs, 1, "type %u (%s)", hdr.type,
              chan_wire_type_name(hdr.type));
    dump_line(s, f, &ofs, 1, "flags 0x%02x (%s)", hdr.flags,
              example_flags(hdr.flags));
    dump_line(s, f, &ofs, 1, "reserved");
    dump_line(s, f, &ofs, 2, "vid %u", hdr.vid);
    if (ex->upstream) {
        dump_line(s, f, &ofs, 4, "epoch %"PRIu32" (0x%"PRIx32
                  ", the guest's upstream epoch)", hdr.epoch, hdr.epoch);
    } else {
        dump_line(s, f, &ofs, 4, "epoch %"PRIu32, hdr.epoch);
    }
    dump_line(s, f, &ofs, 8, "seq %"PRIu64, hdr.seq);
    dump_line(s, f, &ofs, 8, "ack %"PRIu64"%s", hdr.ack,
              hdr.flags & CHAN_WIRE_F_ACK_VALID ? "" : " (no ACK_VALID)");
    dump_line(s, f, &ofs, 2, "chunk index %u", hdr.chunk_index);
    dump_line(s, f, &ofs, 2, "chunk count %u", hdr.chunk_count);
    dump_line(s, f, &ofs, 2, "payload length %zu", json_len);
    dump_line(s, f, &ofs, 2, "reserved");
    fprintf(s, "# payload: %zu bytes of JSON\n", json_len);
    for (size_t left = json_len; left; ) {
        size_t n = left < 16 ? left : 16;
        char ascii[17];
        for (size_t i = 0; i < n; i++) {
            uint8_t c = f[ofs + i];
            ascii[i] = c >= 0x20 && c < 0x7f ? c : '.';
        }
        ascii[n] = '\0';
        dump_line(s, f, &ofs, n, "%s", ascii);
        left -= n;
    }
    fprintf(s, "# trailer: HMAC-SHA256(\"%s\", chand header || payload),"
            " first 16 bytes\n", EXAMPLE_KEY);
    dump_line(s, f, &ofs, 16, "trailer");
    fprintf(s, "```\n");
    CU_ASSERT_EQUAL(ofs, len);

    fprintf(s, "\n```summary%s\n", ex->suffix);
    fprintf(s, "chan-id %d\n", EXAMPLE_CHAN_ID);
    fprintf(s, "key %s\n", EXAMPLE_KEY);
    fprintf(s, "frame-length %zu\n", len);
    fprintf(s, "vid %d\n", EXAMPLE_VID);
    fprintf(s, "eth-dst %s\n", eth_addr_to_string(&e.dst->mac, mac_s));
    fprintf(s, "eth-src %s\n", eth_addr_to_string(&e.src->mac, mac_s));
    fprintf(s, "ip-dst %s\n", ip_to_string(e.dst->ip, ip_s));
    fprintf(s, "ip-src %s\n", ip_to_string(e.src->ip, ip_s));
    fprintf(s, "udp-dst %u\n", e.dst->port);
    fprintf(s, "udp-src %u\n", e.src->port);
    fprintf(s, "ttl %d\n", PKT_DEFAULT_TTL);
    fprintf(s, "type %s\n", chan_wire_type_name(hdr.type));
    fprintf(s, "flags %s\n", example_flags(hdr.flags));
    fprintf(s, "epoch %"PRIu32"\n", hdr.epoch);
    fprintf(s, "seq %"PRIu64"\n", hdr.seq);
    fprintf(s, "ack %"PRIu64"\n", hdr.ack);
    fprintf(s, "chunk %u/%u\n", hdr.chunk_index, hdr.chunk_count);
    fprintf(s, "payload-length %zu\n", json_len);
    for (size_t i = 0; i < batch.n; i++) {
        const struct chan_record *r = &batch.records[i];
        if (r->op == CHAN_OP_PUT) {
            char *value = json_dumps(r->value, JSON_COMPACT | JSON_ENCODE_ANY
                                               | JSON_PRESERVE_ORDER);
            CU_ASSERT_PTR_NOT_NULL_FATAL(value);
            fprintf(s, "record put %s %"PRId64" %s\n", r->key, r->version,
                    value);
            free(value);
        } else {
            fprintf(s, "record delete %s %"PRId64"\n", r->key, r->version);
        }
    }
    fprintf(s, "```\n");
    chan_batch_destroy(&batch);
    free(json);
}

/* Renders the blocks of every example, in the order of PROTOCOL.md (each
 * example's blocks separated by a blank line, as in the document), into a
 * malloc()ed string. */
static char *
generate_examples(void)
{
    char *out;
    size_t out_len;
    FILE *s = open_memstream(&out, &out_len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (size_t i = 0; i < N_ELEMS(examples); i++) {
        if (i) {
            fprintf(s, "\n");
        }
        generate_example(s, &examples[i]);
    }
    fclose(s);
    return out;
}

/* Returns a malloc()ed copy of the first fenced block that starts with the
 * line "```<tag>" in 'doc', including both fence lines, or NULL.  The whole
 * line must match: tag "hexdump" does not find "```hexdump-upstream". */
static char *
extract_block(const char *doc, const char *tag)
{
    char open[64];
    snprintf(open, sizeof open, "```%s\n", tag);

    for (const char *p = doc; (p = strstr(p, open)) != NULL; p++) {
        if (p != doc && p[-1] != '\n') {
            continue;
        }
        const char *end = strstr(p + strlen(open), "\n```\n");
        if (!end) {
            return NULL;
        }
        return strndup(p, end + 5 - p);
    }
    return NULL;
}

/* Parses a ```hexdump block (format defined in doc/PROTOCOL.md) into
 * 'bytes'.  Returns the number of bytes, or -1 on a format error. */
static int
parse_hexdump(const char *block, uint8_t *bytes, size_t max)
{
    size_t n = 0;
    const char *line = strchr(block, '\n') + 1;     /* Skip ```hexdump. */

    for (; strncmp(line, "```", 3); line = strchr(line, '\n') + 1) {
        const char *p = line;
        unsigned int ofs;

        if (*p == '\n' || *p == '#') {
            continue;
        }
        for (int i = 0; i < 4; i++) {
            if (!isxdigit((unsigned char) p[i])) {
                return -1;
            }
        }
        if (sscanf(p, "%4x", &ofs) != 1 || ofs != n
            || p[4] != ' ' || p[5] != ' ') {
            return -1;
        }
        p += 6;
        for (;;) {
            unsigned int byte;
            if (!isxdigit((unsigned char) p[0])
                || !isxdigit((unsigned char) p[1])
                || sscanf(p, "%2x", &byte) != 1 || n >= max) {
                return -1;
            }
            bytes[n++] = byte;
            p += 2;
            if (p[0] == ' ' && isxdigit((unsigned char) p[1])) {
                p++;
                continue;
            }
            break;
        }
        if (*p != '\n' && strncmp(p, "  ", 2)) {
            return -1;
        }
    }
    return n;
}

/* Looks up "<name> <value>" in a ```summary block; returns a pointer to
 * the value (up to the end of the line) or NULL. */
static const char *
summary_get(const char *block, const char *name, const char *after)
{
    size_t len = strlen(name);
    const char *p = after ? after : block;

    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (!strncmp(p, name, len) && p[len] == ' ') {
            return p + len + 1;
        }
    }
    return NULL;
}

static unsigned long long
summary_num(const char *block, const char *name)
{
    const char *v = summary_get(block, name, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    return strtoull(v, NULL, 10);
}

static bool
summary_is(const char *block, const char *name, const char *expected)
{
    const char *v = summary_get(block, name, NULL);
    size_t len = strlen(expected);
    return v && !strncmp(v, expected, len) && v[len] == '\n';
}

/* Returns a malloc()ed string "<base><suffix>". */
static char *
example_tag(const char *base, const struct example *ex)
{
    char *tag = malloc(strlen(base) + strlen(ex->suffix) + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tag);
    strcpy(tag, base);
    strcat(tag, ex->suffix);
    return tag;
}

/* Counts the lines "```<tag>" in 'doc' (exactly that tag). */
static int
count_blocks(const char *doc, const char *tag)
{
    char open[64];
    int n = 0;

    snprintf(open, sizeof open, "```%s\n", tag);
    for (const char *p = doc; (p = strstr(p, open)) != NULL; p++) {
        n += p == doc || p[-1] == '\n';
    }
    return n;
}

/* Checks the example 'ex' in 'doc' against 'generated' (the output of
 * generate_examples()), then decodes its hexdump independently and checks
 * it against its summary and against 'ex'. */
static void
check_example(const char *doc, const char *generated, const struct example *ex)
{
    char *hexdump_tag = example_tag("hexdump", ex);
    char *summary_tag = example_tag("summary", ex);

    /* Exactly one block of each, so that the check below cannot look at
     * a copy while another, stale one is what readers see. */
    CU_ASSERT_EQUAL(count_blocks(doc, hexdump_tag), 1);
    CU_ASSERT_EQUAL(count_blocks(doc, summary_tag), 1);
    char *hexdump = extract_block(doc, hexdump_tag);
    char *summary = extract_block(doc, summary_tag);
    if (!hexdump || !summary) {
        fprintf(stderr, "doc/PROTOCOL.md %s: no ```%s or ```%s block\n",
                ex->section, hexdump_tag, summary_tag);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(hexdump);
    CU_ASSERT_PTR_NOT_NULL_FATAL(summary);

    /* 1. The document shows exactly what the code produces today. */
    char *gen_hexdump = extract_block(generated, hexdump_tag);
    char *gen_summary = extract_block(generated, summary_tag);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gen_hexdump);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gen_summary);
    if (strcmp(hexdump, gen_hexdump) || strcmp(summary, gen_summary)) {
        fprintf(stderr, "doc/PROTOCOL.md example (%s) is stale; regenerate "
                "with CHAND_GEN_PROTOCOL_EXAMPLE=/tmp/ex "
                "test/unit/test-chan-wire\n--- generated ---\n%s%s",
                ex->section, gen_hexdump, gen_summary);
        CU_FAIL("PROTOCOL.md example differs from the code's output");
    }

    /* 2. Independently, the hexdump decodes to what the summary says, and
     *    that is the example as specified. */
    uint8_t frame[2048];
    int len = parse_hexdump(hexdump, frame, sizeof frame);
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL(len, summary_num(summary, "frame-length"));

    uint32_t chan_id = summary_num(summary, "chan-id");
    CU_ASSERT_EQUAL(chan_id, EXAMPLE_CHAN_ID);
    CU_ASSERT(summary_is(summary, "key", EXAMPLE_KEY));
    struct example_ends e;
    char mac_s[ETH_ADDR_STRLEN], ip_s[IP_STRLEN], num[32];
    example_ends_init(ex, chan_id, &e);

    struct pkt_udp pkt;
    CU_ASSERT_EQUAL_FATAL(pkt_udp_parse(frame, len,
                                        PKT_PARSE_REQUIRE_UDP_CSUM, &pkt),
                          PKT_OK);
    CU_ASSERT(pkt.vlan);
    CU_ASSERT_EQUAL(pkt.vid, summary_num(summary, "vid"));
    CU_ASSERT_EQUAL(pkt.vid, EXAMPLE_VID);
    CU_ASSERT(eth_addr_equals(&pkt.eth_dst, &e.dst->mac));
    CU_ASSERT(eth_addr_equals(&pkt.eth_src, &e.src->mac));
    CU_ASSERT(summary_is(summary, "eth-dst",
                         eth_addr_to_string(&pkt.eth_dst, mac_s)));
    CU_ASSERT(summary_is(summary, "eth-src",
                         eth_addr_to_string(&pkt.eth_src, mac_s)));
    CU_ASSERT_EQUAL(pkt.ip_dst, e.dst->ip);
    CU_ASSERT_EQUAL(pkt.ip_src, e.src->ip);
    CU_ASSERT(summary_is(summary, "ip-dst", ip_to_string(pkt.ip_dst, ip_s)));
    CU_ASSERT(summary_is(summary, "ip-src", ip_to_string(pkt.ip_src, ip_s)));
    CU_ASSERT_EQUAL(pkt.udp_dst, summary_num(summary, "udp-dst"));
    CU_ASSERT_EQUAL(pkt.udp_src, summary_num(summary, "udp-src"));
    CU_ASSERT_EQUAL(pkt.udp_dst, CHAN_UDP_PORT);
    CU_ASSERT_EQUAL(pkt.udp_src, CHAN_UDP_PORT);
    CU_ASSERT_EQUAL(pkt.ttl, summary_num(summary, "ttl"));

    struct chan_wire_header hdr;
    const uint8_t *payload;
    CU_ASSERT_EQUAL(chan_wire_decode(pkt.payload, pkt.payload_len, "wrong",
                                     5, &hdr, &payload), CHAN_WIRE_ERR_AUTH);
    CU_ASSERT_EQUAL_FATAL(chan_wire_decode(pkt.payload, pkt.payload_len,
                                           EXAMPLE_KEY, strlen(EXAMPLE_KEY),
                                           &hdr, &payload), CHAN_WIRE_OK);
    CU_ASSERT(summary_is(summary, "type", chan_wire_type_name(hdr.type)));
    CU_ASSERT_EQUAL(hdr.type, ex->hdr.type);
    CU_ASSERT_EQUAL(hdr.vid, pkt.vid);
    CU_ASSERT_EQUAL(hdr.flags, ex->hdr.flags);
    CU_ASSERT(summary_is(summary, "flags", example_flags(hdr.flags)));
    CU_ASSERT_EQUAL(hdr.epoch, summary_num(summary, "epoch"));
    CU_ASSERT_EQUAL(hdr.epoch, ex->hdr.epoch);
    CU_ASSERT_EQUAL(hdr.seq, summary_num(summary, "seq"));
    CU_ASSERT_EQUAL(hdr.seq, ex->hdr.seq);
    CU_ASSERT_EQUAL(hdr.ack, summary_num(summary, "ack"));
    CU_ASSERT_EQUAL(hdr.ack, ex->hdr.ack);
    snprintf(num, sizeof num, "%u/%u", hdr.chunk_index, hdr.chunk_count);
    CU_ASSERT(summary_is(summary, "chunk", num));
    CU_ASSERT_EQUAL(hdr.chunk_index, ex->hdr.chunk_index);
    CU_ASSERT_EQUAL(hdr.chunk_count, ex->hdr.chunk_count);
    CU_ASSERT_EQUAL(hdr.payload_len, summary_num(summary, "payload-length"));

    struct chan_batch batch, expected_batch;
    chan_batch_init(&batch);
    CU_ASSERT_EQUAL_FATAL(chan_batch_decode(payload, hdr.payload_len, NULL,
                                            &batch), CHAN_WIRE_OK);
    ex->make_batch(&expected_batch);
    assert_batch_equal(&batch, &expected_batch);
    size_t n_expected = expected_batch.n;
    chan_batch_destroy(&expected_batch);

    const char *rec = NULL;
    size_t i = 0;
    while ((rec = summary_get(summary, "record", rec)) != NULL) {
        char op[16], key[300];
        long long version;
        int consumed;

        CU_ASSERT_FATAL(i < batch.n);
        CU_ASSERT_FATAL(sscanf(rec, "%15s %299s %lld%n", op, key, &version,
                               &consumed) == 3);
        const struct chan_record *r = &batch.records[i++];
        CU_ASSERT_STRING_EQUAL(op, r->op == CHAN_OP_PUT ? "put" : "delete");
        CU_ASSERT_STRING_EQUAL(key, r->key);
        CU_ASSERT_EQUAL(version, r->version);
        if (r->op == CHAN_OP_PUT) {
            const char *v = rec + consumed + 1;
            json_t *expected = json_loadb(v, strcspn(v, "\n"), 0, NULL);
            CU_ASSERT_PTR_NOT_NULL(expected);
            CU_ASSERT(json_equal(expected, r->value));
            json_decref(expected);
        } else {
            CU_ASSERT_EQUAL(rec[consumed], '\n');
        }
    }
    CU_ASSERT_EQUAL(i, batch.n);
    CU_ASSERT_EQUAL(i, n_expected);
    chan_batch_destroy(&batch);

    free(gen_hexdump);
    free(gen_summary);
    free(hexdump);
    free(summary);
    free(hexdump_tag);
    free(summary_tag);
}

static void
test_protocol_md(void)
{
    char *generated = generate_examples();
    const char *gen_file = getenv("CHAND_GEN_PROTOCOL_EXAMPLE");

    if (gen_file && *gen_file) {
        FILE *f = fopen(gen_file, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(generated, f);
        fclose(f);
        free(generated);
        return;
    }

    char *doc = read_file(PROTOCOL_MD, NULL);
    if (!doc) {
        fprintf(stderr, "cannot read %s\n", PROTOCOL_MD);
        CU_FAIL_FATAL("doc/PROTOCOL.md missing");
    }
    for (size_t i = 0; i < N_ELEMS(examples); i++) {
        check_example(doc, generated, &examples[i]);
    }
    free(doc);
    free(generated);
}


/* The transfer lane's example (doc/PROTOCOL.md §7.4): a GET for chunks 0
 * and 1 of a 1,500-byte object in 1,420-byte chunks, and the CHUNK that
 * carries chunk 1, both chand frames alone (the UDP payload). */
#define XFER_EXAMPLE_DIGEST \
    "9f4a11c43dde2b48c06d6a3ff4d6e0a0c6e1c5bb1a7e2c1a1f0ad3c4b0e6f2a7"
#define XFER_EXAMPLE_ID 0x1d2c3b4a
#define XFER_EXAMPLE_SIZE 1500

/* Byte i of the example object. */
static uint8_t
xfer_example_byte(size_t i)
{
    return (uint8_t) (i * 7 + 3);
}

static size_t
xfer_example_frame(bool chunk, uint8_t *buf, size_t size)
{
    struct chan_wire_header h = {
        .type = chunk ? CHAN_WIRE_CHUNK : CHAN_WIRE_XFER,
        .vid = EXAMPLE_VID,
        .epoch = XFER_EXAMPLE_ID,
        .seq = chunk ? 1 : 0,
        .chunk_count = 1,
    };
    uint8_t payload[1420];
    size_t n;
    char *text = NULL;

    if (chunk) {
        n = xfer_chunk_len(XFER_EXAMPLE_SIZE, 1420, 1);
        for (size_t i = 0; i < n; i++) {
            payload[i] = xfer_example_byte(1420 + i);
        }
    } else {
        struct xfer_msg msg = {
            .op = XFER_OP_GET,
            .digest = XFER_EXAMPLE_DIGEST,
            .size = XFER_EXAMPLE_SIZE,
            .chunk_size = 1420,
            .n_ranges = 1,
            .ranges = { { 0, 2 } },
        };
        json_t *j = xfer_msg_to_json(&msg);
        text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        n = strlen(text);
        memcpy(payload, text, n);
    }
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(chan_wire_encode(&h, payload, n, EXAMPLE_KEY,
                                           strlen(EXAMPLE_KEY), buf, size,
                                           &len), CHAN_WIRE_OK);
    free(text);
    return len;
}

/* Writes the ```TAG block of 'frame' ('len' bytes, a chand frame) to
 * 's', in the hexdump format of §9: the header a field group per line,
 * the payload 16 bytes per line, then the trailer. */
static void
xfer_example_block(FILE *s, const char *tag, const uint8_t *f, size_t len)
{
    static const struct {
        size_t n;
        const char *what;
    } groups[] = {
        { 4, "magic \"CH\", version 1, type" },
        { 4, "flags 0, reserved, vid" },
        { 4, "epoch: the transfer id" },
        { 8, "seq" },
        { 8, "ack 0" },
        { 4, "chunk index 0, chunk count 1" },
        { 4, "payload length, reserved" },
    };
    size_t ofs = 0, payload_len = pkt_get_be16(f + 32);

    fprintf(s, "```%s\n# chand header (36 bytes)\n", tag);
    for (size_t g = 0; g < N_ELEMS(groups); g++) {
        fprintf(s, "%04zx ", ofs);
        for (size_t i = 0; i < groups[g].n; i++) {
            fprintf(s, " %02x", f[ofs++]);
        }
        fprintf(s, "%*s%s\n", (int) (3 * (16 - groups[g].n) + 2), "",
                groups[g].what);
    }
    fprintf(s, "# payload (%zu bytes)\n", payload_len);
    while (ofs < 36 + payload_len) {
        size_t n = 36 + payload_len - ofs < 16 ? 36 + payload_len - ofs : 16;
        fprintf(s, "%04zx ", ofs);
        for (size_t i = 0; i < n; i++) {
            fprintf(s, " %02x", f[ofs + i]);
        }
        fprintf(s, "\n");
        ofs += n;
    }
    fprintf(s, "# trailer: HMAC-SHA256(\"%s\", header || payload)[0..15]\n",
            EXAMPLE_KEY);
    fprintf(s, "%04zx ", ofs);
    for (size_t i = 0; i < 16 && ofs < len; i++) {
        fprintf(s, " %02x", f[ofs++]);
    }
    fprintf(s, "\n```\n");
}

static char *
generate_xfer_example(void)
{
    char *out;
    size_t out_len;
    uint8_t frame[2048];
    FILE *s = open_memstream(&out, &out_len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    size_t len = xfer_example_frame(false, frame, sizeof frame);
    xfer_example_block(s, "hexdump-xfer-get", frame, len);
    fprintf(s, "\n");
    len = xfer_example_frame(true, frame, sizeof frame);
    xfer_example_block(s, "hexdump-xfer-chunk", frame, len);
    fclose(s);
    return out;
}

/* doc/PROTOCOL.md §7.4 shows what the code produces, and its bytes decode
 * to the GET and the CHUNK it describes. */
static void
test_protocol_md_xfer(void)
{
    char *generated = generate_xfer_example();
    const char *gen_file = getenv("CHAND_GEN_XFER_EXAMPLE");

    if (gen_file && *gen_file) {
        FILE *f = fopen(gen_file, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(generated, f);
        fclose(f);
        free(generated);
        return;
    }
    char *doc = read_file(PROTOCOL_MD, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    static const char *const tags[] = { "hexdump-xfer-get",
                                        "hexdump-xfer-chunk" };
    for (size_t t = 0; t < N_ELEMS(tags); t++) {
        CU_ASSERT_EQUAL(count_blocks(doc, tags[t]), 1);
        char *block = extract_block(doc, tags[t]);
        char *gen = extract_block(generated, tags[t]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(block);
        CU_ASSERT_PTR_NOT_NULL_FATAL(gen);
        if (strcmp(block, gen)) {
            fprintf(stderr, "doc/PROTOCOL.md §7.4 (%s) is stale; "
                    "regenerate with CHAND_GEN_XFER_EXAMPLE=/tmp/x "
                    "test/unit/test-chan-wire\n%s", tags[t], gen);
            CU_FAIL("PROTOCOL.md transfer example differs from the code");
        }

        uint8_t frame[2048];
        int len = parse_hexdump(block, frame, sizeof frame);
        struct chan_wire_header h;
        const uint8_t *payload;
        CU_ASSERT_FATAL(len > 0);
        CU_ASSERT_EQUAL_FATAL(chan_wire_decode(frame, len, EXAMPLE_KEY,
                                               strlen(EXAMPLE_KEY), &h,
                                               &payload), CHAN_WIRE_OK);
        CU_ASSERT_EQUAL(h.epoch, XFER_EXAMPLE_ID);
        CU_ASSERT_EQUAL(h.vid, EXAMPLE_VID);
        if (t == 0) {
            struct xfer_msg msg;
            CU_ASSERT_EQUAL(h.type, CHAN_WIRE_XFER);
            CU_ASSERT_PTR_NULL(xfer_msg_parse(payload, h.payload_len,
                                              &msg));
            CU_ASSERT_EQUAL(msg.op, XFER_OP_GET);
            CU_ASSERT_STRING_EQUAL(msg.digest, XFER_EXAMPLE_DIGEST);
            CU_ASSERT_EQUAL(msg.size, XFER_EXAMPLE_SIZE);
            CU_ASSERT_EQUAL(msg.n_ranges, 1);
            CU_ASSERT_EQUAL(msg.ranges[0].first, 0);
            CU_ASSERT_EQUAL(msg.ranges[0].count, 2);
        } else {
            CU_ASSERT_EQUAL(h.type, CHAN_WIRE_CHUNK);
            CU_ASSERT_EQUAL(h.seq, 1);
            CU_ASSERT_EQUAL(h.payload_len, XFER_EXAMPLE_SIZE - 1420);
            for (size_t i = 0; i < h.payload_len; i++) {
                CU_ASSERT_EQUAL_FATAL(payload[i],
                                      xfer_example_byte(1420 + i));
            }
        }
        free(block);
        free(gen);
    }
    free(doc);
    free(generated);
}

/* The hexdump parser itself: it must reject what the format forbids, so
 * that the check above means something. */
static void
test_hexdump_parser(void)
{
    uint8_t b[64];

    CU_ASSERT_EQUAL(parse_hexdump("```hexdump\n# c\n0000  01 02  x\n"
                                  "0002  ff\n\n```\n", b, sizeof b), 3);
    CU_ASSERT_EQUAL(b[2], 0xff);
    CU_ASSERT_EQUAL(parse_hexdump("```hexdump\n0001  01\n```\n", b,
                                  sizeof b), -1);
    CU_ASSERT_EQUAL(parse_hexdump("```hexdump\n0000 01\n```\n", b,
                                  sizeof b), -1);
    CU_ASSERT_EQUAL(parse_hexdump("```hexdump\n0000  01 x\n```\n", b,
                                  sizeof b), -1);
    CU_ASSERT_EQUAL(parse_hexdump("```hexdump\n0000  0g\n```\n", b,
                                  sizeof b), -1);
    CU_ASSERT_EQUAL(parse_hexdump("```hexdump\n000  01\n```\n", b,
                                  sizeof b), -1);
}

/* Block extraction takes the exact tag: "hexdump" is not the start of
 * "hexdump-upstream", whichever comes first, and a tag only counts at the
 * start of a line. */
static void
test_extract_block(void)
{
    static const char doc[] =
        "x ```hexdump\nno\n```\n"
        "```hexdump-upstream\nup\n```\n"
        "```hexdump\ndown\n```\n"
        "```summary-upstream\nsu\n```\n"
        "```summary\nsd\n```\n";
    char *b;

    b = extract_block(doc, "hexdump");
    CU_ASSERT_STRING_EQUAL(b, "```hexdump\ndown\n```\n");
    free(b);
    b = extract_block(doc, "hexdump-upstream");
    CU_ASSERT_STRING_EQUAL(b, "```hexdump-upstream\nup\n```\n");
    free(b);
    b = extract_block(doc, "summary");
    CU_ASSERT_STRING_EQUAL(b, "```summary\nsd\n```\n");
    free(b);
    b = extract_block(doc, "summary-upstream");
    CU_ASSERT_STRING_EQUAL(b, "```summary-upstream\nsu\n```\n");
    free(b);
    CU_ASSERT_PTR_NULL(extract_block(doc, "hexdump-up"));
    CU_ASSERT_EQUAL(count_blocks(doc, "hexdump"), 1);
    CU_ASSERT_EQUAL(count_blocks(doc, "hexdump-upstream"), 1);
    CU_ASSERT_EQUAL(count_blocks(doc, "summary"), 1);
    CU_ASSERT_EQUAL(count_blocks(doc, "hexdump-up"), 0);
}

/* A put given as JSON text renders as the same put given parsed; a batch
 * mixing both decodes back to every record. */
static void
test_batch_encode_raw(void)
{
    static const char *const literals[] = {
        "\"\"", "\"plain\"", "\"esc \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u20ac\"",
    };
    for (size_t i = 0; i < sizeof literals / sizeof *literals; i++) {
        const char *lit = literals[i];
        CU_ASSERT_TRUE(chan_json_string_is_simple(lit, strlen(lit)));
        json_t *parsed = json_loads(lit, JSON_DECODE_ANY, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(parsed);

        struct chan_batch a, b;
        chan_batch_init(&a);
        chan_batch_init(&b);
        json_t *text = json_string(lit);
        chan_batch_add_delete(&a, "gone", 1);
        chan_batch_add_put_raw(&a, "k\"ey", text, 7);
        chan_batch_add_put(&a, "n", json_null(), 8);
        json_decref(text);
        chan_batch_add_delete(&b, "gone", 1);
        chan_batch_add_put(&b, "k\"ey", parsed, 7);
        chan_batch_add_put(&b, "n", json_null(), 8);

        char *ta, *tb;
        size_t la, lb;
        CU_ASSERT_EQUAL_FATAL(chan_batch_encode(&a, NULL, &ta, &la), 0);
        CU_ASSERT_EQUAL_FATAL(chan_batch_encode(&b, NULL, &tb, &lb), 0);
        struct chan_batch back;
        chan_batch_init(&back);
        CU_ASSERT_EQUAL_FATAL(chan_batch_decode(ta, la, NULL, &back), 0);
        CU_ASSERT_EQUAL(back.n, 3);
        CU_ASSERT_TRUE(json_equal(back.records[1].value, parsed));
        CU_ASSERT_STRING_EQUAL(back.records[1].key, "k\"ey");
        CU_ASSERT_EQUAL(back.records[1].version, 7);
        if (!strcmp(lit, "\"plain\"") || !strcmp(lit, "\"\"")) {
            /* Nothing to render differently: the same bytes. */
            CU_ASSERT_STRING_EQUAL(ta, tb);
        }
        free(ta);
        free(tb);
        chan_batch_destroy(&back);
        chan_batch_destroy(&a);
        chan_batch_destroy(&b);
        json_decref(parsed);
    }
}

/* chan_json_string_is_simple() accepts only what jansson reads as a
 * string: random texts from an alphabet of the tricky bytes. */
static void
test_json_string_is_simple(void)
{
    static const char *const no[] = {
        "", "\"", "x\"\"", "\"\"x", " \"a\"", "\"a\" ", "\"\\\"", "\"\\x\"",
        "\"\\u12\"", "\"\\u0000\"", "\"\\ud800\"", "\"\\udfff\"", "\"\\u12g4\"",
        "\"a\"b\"", "\"\x01\"", "\"\x7f\"", "\"\xc3\xa9\"", "\"tab\there\"",
    };
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        CU_ASSERT_FALSE(chan_json_string_is_simple(no[i], strlen(no[i])));
    }
    static const char alphabet[] = "\"\\/bfnrtu0dD8aA9 x\x01\x7f\xc3";
    uint64_t rng = 0x5171;
    for (int round = 0; round < 20000; round++) {
        char text[16];
        size_t n = 2 + unit_random(&rng) % 12;
        text[0] = '"';
        for (size_t i = 1; i < n - 1; i++) {
            text[i] = alphabet[unit_random(&rng) % (sizeof alphabet - 1)];
        }
        text[n - 1] = '"';
        if (chan_json_string_is_simple(text, n)) {
            json_t *j = json_loadb(text, n, JSON_DECODE_ANY, NULL);
            CU_ASSERT_PTR_NOT_NULL(j);
            CU_ASSERT_TRUE(json_is_string(j));
            json_decref(j);
        }
    }
}

static const struct unit_test tests[] = {
    { "mtu arithmetic", test_mtu_arithmetic },
    { "batch encode with a value as text", test_batch_encode_raw },
    { "simple JSON string literals", test_json_string_is_simple },
    { "types", test_types },
    { "strerror", test_strerror },
    { "hmac vectors", test_hmac_vectors },
    { "encode layout", test_encode_layout },
    { "round trip every type", test_round_trip_types },
    { "empty key", test_empty_key },
    { "encode no space", test_encode_nospace },
    { "encode too big", test_encode_too_big },
    { "header rules", test_header_rules },
    { "reject short", test_reject_short },
    { "reject magic", test_reject_magic },
    { "reject version", test_reject_version },
    { "reject truncated", test_reject_truncated },
    { "reject trailing", test_reject_trailing },
    { "reject auth", test_reject_auth },
    { "reject type", test_reject_type },
    { "reject flags", test_reject_flags },
    { "reject flags for type", test_reject_flags_type },
    { "reject reserved", test_reject_reserved },
    { "reject vid", test_reject_vid },
    { "reject epoch", test_reject_epoch },
    { "reject seq", test_reject_seq },
    { "reject ack", test_reject_ack },
    { "reject ack missing", test_reject_ack_missing },
    { "reject chunk count", test_reject_chunk_count },
    { "reject chunk index", test_reject_chunk_index },
    { "reject chunk type", test_reject_chunk_type },
    { "malformed table", test_malformed_table },
    { "random round trips", test_random_round_trips },
    { "truncated at every length", test_truncated_everywhere },
    { "single bit flips", test_bit_flips },
    { "random garbage", test_random_garbage },
    { "chunker counts", test_chunker_counts },
    { "chunker errors", test_chunker_errors },
    { "chunker frames", test_chunker_frames },
    { "chunk+reassemble round trips", test_chunk_reasm_round_trips },
    { "reassemble single", test_reasm_single },
    { "reassemble reject index", test_reasm_reject_index },
    { "reassemble reject count", test_reasm_reject_count },
    { "reassemble reject seq", test_reasm_reject_seq },
    { "reassemble reject mismatch", test_reasm_reject_mismatch },
    { "reassemble reject empty chunk", test_reasm_reject_empty },
    { "reassemble size limit", test_reasm_too_big },
    { "reassemble default 80 MiB limit", test_reasm_default_limit },
    { "reassemble reset", test_reasm_reset },
    { "batch encode", test_batch_encode },
    { "batch decode", test_batch_decode },
    { "batch decode errors", test_batch_decode_errors },
    { "batch key length", test_batch_key_length },
    { "batch limits", test_batch_limits },
    { "batch default record limit", test_batch_default_record_limit },
    { "batch encode errors", test_batch_encode_errors },
    { "batch random round trips", test_batch_random_round_trips },
    { "object payloads", test_object_payloads },
    { "end to end", test_end_to_end },
    { "hexdump parser", test_hexdump_parser },
    { "example block extraction", test_extract_block },
    { "PROTOCOL.md example", test_protocol_md },
    { "PROTOCOL.md transfer example", test_protocol_md_xfer },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("chan-wire", tests);
}
