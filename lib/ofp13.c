/* ofp13: pure OpenFlow 1.3 message codec.  See ofp13.h. */

#include <config.h>
#include "ofp13.h"

#include <string.h>

/* Wire constants private to the codec. */
#define HELLO_ELEM_VERSIONBITMAP 1
#define MATCH_TYPE_OXM 1
#define ACTION_OUTPUT 0
#define ACTION_SET_FIELD 25
#define ACTION_OUTPUT_LEN 16
#define ACTION_SET_FIELD_PKT_MARK_LEN 16
#define PACKET_OUT_FIXED_LEN 16         /* After the header. */
#define PACKET_IN_FIXED_LEN 16          /* After the header, before match. */
#define NX_HEADER_LEN 16                /* Header, experimenter, subtype. */

/* OXM header (class:16, field:7, hasmask:1, length:8) for a field. */
#define OXM_HEADER(CLASS, FIELD, HASMASK, LEN) \
    (((uint32_t) (CLASS) << 16) | ((uint32_t) (FIELD) << 9) \
     | ((uint32_t) (HASMASK) << 8) | (uint32_t) (LEN))
#define OXM_IN_PORT OXM_HEADER(OFP13_OXM_CLASS_OPENFLOW_BASIC, \
                               OFP13_OXM_FIELD_IN_PORT, 0, 4)
#define OXM_PKT_MARK OXM_HEADER(OFP13_OXM_CLASS_NXM1, \
                                OFP13_NXM_FIELD_PKT_MARK, 0, 4)

static size_t
round_up8(size_t n)
{
    return (n + 7) & ~(size_t) 7;
}

/* Big-endian accessors.  Callers check bounds first. */

static uint16_t
get_be16(const uint8_t *p)
{
    return (uint16_t) ((p[0] << 8) | p[1]);
}

static uint32_t
get_be32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}

static uint64_t
get_be64(const uint8_t *p)
{
    return ((uint64_t) get_be32(p) << 32) | get_be32(p + 4);
}

static uint8_t *
put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *
put_be16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
    return p + 2;
}

static uint8_t *
put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
    return p + 4;
}

static uint8_t *
put_be64(uint8_t *p, uint64_t v)
{
    p = put_be32(p, v >> 32);
    return put_be32(p, v);
}

static uint8_t *
put_zeros(uint8_t *p, size_t n)
{
    if (n) {
        memset(p, 0, n);
    }
    return p + n;
}

static uint8_t *
put_bytes(uint8_t *p, const void *src, size_t n)
{
    if (n) {
        memcpy(p, src, n);
    }
    return p + n;
}

/* Bounds-checked reader over a byte range. */
struct reader {
    const uint8_t *p;
    size_t left;
};

static bool
rd_bytes(struct reader *r, size_t n, const uint8_t **out)
{
    if (r->left < n) {
        return false;
    }
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static bool
rd_u8(struct reader *r, uint8_t *v)
{
    const uint8_t *p;
    if (!rd_bytes(r, 1, &p)) {
        return false;
    }
    *v = p[0];
    return true;
}

static bool
rd_be16(struct reader *r, uint16_t *v)
{
    const uint8_t *p;
    if (!rd_bytes(r, 2, &p)) {
        return false;
    }
    *v = get_be16(p);
    return true;
}

static bool
rd_be32(struct reader *r, uint32_t *v)
{
    const uint8_t *p;
    if (!rd_bytes(r, 4, &p)) {
        return false;
    }
    *v = get_be32(p);
    return true;
}

static bool
rd_be64(struct reader *r, uint64_t *v)
{
    const uint8_t *p;
    if (!rd_bytes(r, 8, &p)) {
        return false;
    }
    *v = get_be64(p);
    return true;
}

/* Pulls 'n' bytes that must all be zero. */
static int
rd_zeros(struct reader *r, size_t n)
{
    const uint8_t *p;
    if (!rd_bytes(r, n, &p)) {
        return OFP13_E_BAD_BODY_LEN;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return OFP13_E_BAD_PADDING;
        }
    }
    return 0;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* Errors. */

static const char *const err_strings[OFP13_E_MAX] = {
    [0] = "success",
    [OFP13_E_INCOMPLETE] = "incomplete message: more bytes needed",
    [OFP13_E_TOO_SHORT] = "message shorter than its header length",
    [OFP13_E_LENGTH_MISMATCH] = "buffer longer than the header length",
    [OFP13_E_BAD_LENGTH] = "header length below 8",
    [OFP13_E_BAD_VERSION] = "unexpected OpenFlow version",
    [OFP13_E_BAD_TYPE] = "unexpected message type",
    [OFP13_E_BAD_BODY_LEN] = "message body has the wrong size",
    [OFP13_E_UNSUPPORTED_MSG] = "unsupported message "
                                "(e.g. Nicira packet-in format)",
    [OFP13_E_BAD_EXPERIMENTER] = "unexpected experimenter id or subtype",
    [OFP13_E_NO_SPACE] = "output buffer too small",
    [OFP13_E_TOO_BIG] = "message would exceed 65535 bytes",
    [OFP13_E_BAD_FRAME] = "frame shorter than an Ethernet header",
    [OFP13_E_HELLO_ELEM] = "malformed HELLO element",
    [OFP13_E_NO_COMMON_VERSION] = "peer does not offer OpenFlow 1.3",
    [OFP13_E_BAD_PADDING] = "non-zero padding",
    [OFP13_E_MATCH_TYPE] = "match type is not OXM",
    [OFP13_E_MATCH_LEN] = "match length invalid or overruns message",
    [OFP13_E_OXM_TRUNCATED] = "OXM entry overruns match",
    [OFP13_E_OXM_EXP_LEN] = "experimenter OXM shorter than its "
                            "experimenter id",
    [OFP13_E_OXM_MASK_LEN] = "masked OXM payload length odd or zero",
    [OFP13_E_OXM_MASK_BITS] = "OXM value has bits set outside its mask",
    [OFP13_E_OXM_NOT_MASKABLE] = "masked OXM for a field that cannot "
                                 "be masked",
    [OFP13_E_OXM_FIELD_LEN] = "OXM field has the wrong length",
    [OFP13_E_OXM_DUP] = "OXM field appears twice",
    [OFP13_E_TOTAL_LEN] = "packet-in total_len smaller than its data",
    [OFP13_E_ACTIONS_LEN] = "actions length invalid or overruns message",
    [OFP13_E_ACTION_LEN] = "action length invalid",
    [OFP13_E_ACTION_UNSUPPORTED] = "unsupported action",
    [OFP13_E_ACTION_DUP] = "action appears twice",
    [OFP13_E_SET_FIELD] = "set_field is not an exact pkt_mark",
    [OFP13_E_BAD_ARG] = "invalid argument",
};

const char *
ofp13_strerror(int error)
{
    if (error >= 0 && error < OFP13_E_MAX && err_strings[error]) {
        return err_strings[error];
    }
    return "unknown ofp13 error";
}

/* Header and framing. */

int
ofp13_decode_header(const void *buf, size_t len, struct ofp13_header *h)
{
    const uint8_t *p = buf;

    memset(h, 0, sizeof *h);
    if (!buf || len < OFP13_HEADER_LEN) {
        return OFP13_E_TOO_SHORT;
    }
    uint16_t length = get_be16(p + 2);
    if (length < OFP13_HEADER_LEN) {
        return OFP13_E_BAD_LENGTH;
    }
    h->version = p[0];
    h->type = p[1];
    h->length = length;
    h->xid = get_be32(p + 4);
    return 0;
}

int
ofp13_encode_header(void *buf, size_t size, const struct ofp13_header *h)
{
    if (!buf || size < OFP13_HEADER_LEN) {
        return OFP13_E_NO_SPACE;
    }
    if (h->length < OFP13_HEADER_LEN) {
        return OFP13_E_BAD_LENGTH;
    }
    uint8_t *p = buf;
    p = put_u8(p, h->version);
    p = put_u8(p, h->type);
    p = put_be16(p, h->length);
    put_be32(p, h->xid);
    return 0;
}

int
ofp13_frame(const void *buf, size_t len, uint8_t version, size_t *msg_len)
{
    const uint8_t *p = buf;

    *msg_len = 0;
    if (len && !buf) {
        return OFP13_E_BAD_ARG;
    }
    if (len >= 1 && (!p[0] || (version && p[0] != version))) {
        return OFP13_E_BAD_VERSION;
    }
    if (len < 4) {
        *msg_len = OFP13_HEADER_LEN;
        return OFP13_E_INCOMPLETE;
    }

    /* The length field is 16 bits, so it can never exceed
     * OFP13_MAX_MSG_LEN. */
    size_t length = get_be16(p + 2);
    if (length < OFP13_HEADER_LEN) {
        return OFP13_E_BAD_LENGTH;
    }
    *msg_len = length;
    return len < length ? OFP13_E_INCOMPLETE : 0;
}

/* Checks that 'msg'/'len' is exactly one OpenFlow 1.3 message of 'type',
 * fills in '*h', and initializes '*body' to the bytes after the header. */
static int
start_decode(const void *msg, size_t len, uint8_t type,
             struct ofp13_header *h, struct reader *body)
{
    int error = ofp13_decode_header(msg, len, h);
    if (error) {
        return error;
    }
    if (len < h->length) {
        return OFP13_E_TOO_SHORT;
    }
    if (len > h->length) {
        return OFP13_E_LENGTH_MISMATCH;
    }
    if (h->version != OFP13_VERSION) {
        return OFP13_E_BAD_VERSION;
    }
    if (h->type != type) {
        return OFP13_E_BAD_TYPE;
    }
    body->p = (const uint8_t *) msg + OFP13_HEADER_LEN;
    body->left = len - OFP13_HEADER_LEN;
    return 0;
}

/* Checks that a 'total'-byte message fits the protocol and 'size', writes
 * its header into 'buf', and stores the position after the header in
 * '*pp'. */
static int
start_encode(void *buf, size_t size, size_t *lenp, size_t total,
             uint8_t type, uint32_t xid, uint8_t **pp)
{
    if (lenp) {
        *lenp = 0;
    }
    if (total > OFP13_MAX_MSG_LEN) {
        return OFP13_E_TOO_BIG;
    }
    if (!buf || size < total) {
        return OFP13_E_NO_SPACE;
    }
    uint8_t *p = buf;
    p = put_u8(p, OFP13_VERSION);
    p = put_u8(p, type);
    p = put_be16(p, total);
    p = put_be32(p, xid);
    *pp = p;
    return 0;
}

static void
finish_encode(const void *buf, const uint8_t *end, size_t *lenp)
{
    if (lenp) {
        *lenp = end - (const uint8_t *) buf;
    }
}

/* Header-only messages. */

int
ofp13_encode_simple(void *buf, size_t size, size_t *lenp, uint8_t type,
                    uint32_t xid)
{
    uint8_t *p;
    int error = start_encode(buf, size, lenp, OFP13_HEADER_LEN, type, xid,
                             &p);
    if (!error) {
        finish_encode(buf, p, lenp);
    }
    return error;
}

int
ofp13_decode_simple(const void *msg, size_t len, uint8_t type,
                    uint32_t *xidp)
{
    struct ofp13_header h;
    struct reader body;
    int error = start_decode(msg, len, type, &h, &body);
    if (error) {
        return error;
    }
    if (body.left) {
        return OFP13_E_BAD_BODY_LEN;
    }
    if (xidp) {
        *xidp = h.xid;
    }
    return 0;
}

/* HELLO. */

int
ofp13_encode_hello(void *buf, size_t size, size_t *lenp, uint32_t xid)
{
    uint8_t *p;
    int error = start_encode(buf, size, lenp, OFP13_HELLO_LEN, OFP13_HELLO,
                             xid, &p);
    if (error) {
        return error;
    }
    p = put_be16(p, HELLO_ELEM_VERSIONBITMAP);
    p = put_be16(p, 8);
    p = put_be32(p, UINT32_C(1) << OFP13_VERSION);
    finish_encode(buf, p, lenp);
    return 0;
}

int
ofp13_decode_hello(const void *msg, size_t len, uint32_t *versionsp)
{
    struct ofp13_header h;
    int error;

    *versionsp = 0;
    error = ofp13_decode_header(msg, len, &h);
    if (error) {
        return error;
    }
    if (len < h.length) {
        return OFP13_E_TOO_SHORT;
    }
    if (len > h.length) {
        return OFP13_E_LENGTH_MISMATCH;
    }
    if (!h.version) {
        return OFP13_E_BAD_VERSION;
    }
    if (h.type != OFP13_HELLO) {
        return OFP13_E_BAD_TYPE;
    }

    /* Without a bitmap, the peer supports every version up to its own. */
    uint32_t versions = (h.version >= 31 ? UINT32_MAX
                         : (UINT32_C(1) << (h.version + 1)) - 1) & ~1u;
    bool have_bitmap = false;

    /* Elements: type, length (header included, padding excluded), padded
     * to a multiple of 8.  Padding content is ignored, as OpenFlow says. */
    struct reader r = {
        .p = (const uint8_t *) msg + OFP13_HEADER_LEN,
        .left = len - OFP13_HEADER_LEN,
    };
    while (r.left) {
        const uint8_t *elem;
        if (r.left < 4) {
            return OFP13_E_HELLO_ELEM;
        }
        uint16_t type = get_be16(r.p);
        size_t elen = get_be16(r.p + 2);
        if (elen < 4 || !rd_bytes(&r, round_up8(elen), &elem)) {
            return OFP13_E_HELLO_ELEM;
        }
        if (type == HELLO_ELEM_VERSIONBITMAP && !have_bitmap) {
            size_t blen = elen - 4;
            if (!blen || blen % 4) {
                return OFP13_E_HELLO_ELEM;
            }
            /* Only the first word matters (versions 0..31); version 0 does
             * not exist. */
            versions = get_be32(elem + 4) & ~1u;
            have_bitmap = true;
        }
    }

    *versionsp = versions;
    return versions & (UINT32_C(1) << OFP13_VERSION)
           ? 0 : OFP13_E_NO_COMMON_VERSION;
}

/* ECHO_REQUEST / ECHO_REPLY. */

static int
encode_echo(void *buf, size_t size, size_t *lenp, uint8_t type,
            uint32_t xid, const void *data, size_t data_len)
{
    uint8_t *p;
    int error;

    if (lenp) {
        *lenp = 0;
    }
    if (data_len && !data) {
        return OFP13_E_BAD_ARG;
    }
    if (data_len > OFP13_MAX_MSG_LEN - OFP13_HEADER_LEN) {
        return OFP13_E_TOO_BIG;
    }
    error = start_encode(buf, size, lenp, OFP13_HEADER_LEN + data_len,
                         type, xid, &p);
    if (error) {
        return error;
    }
    p = put_bytes(p, data, data_len);
    finish_encode(buf, p, lenp);
    return 0;
}

int
ofp13_encode_echo_request(void *buf, size_t size, size_t *lenp,
                          uint32_t xid, const void *data, size_t data_len)
{
    return encode_echo(buf, size, lenp, OFP13_ECHO_REQUEST, xid,
                       data, data_len);
}

int
ofp13_encode_echo_reply(void *buf, size_t size, size_t *lenp,
                        uint32_t xid, const void *data, size_t data_len)
{
    return encode_echo(buf, size, lenp, OFP13_ECHO_REPLY, xid,
                       data, data_len);
}

int
ofp13_decode_echo(const void *msg, size_t len, struct ofp13_echo *echo)
{
    struct ofp13_header h;
    struct reader body;
    int error;

    memset(echo, 0, sizeof *echo);
    error = ofp13_decode_header(msg, len, &h);
    if (error) {
        return error;
    }
    error = start_decode(msg, len,
                         h.type == OFP13_ECHO_REPLY
                         ? OFP13_ECHO_REPLY : OFP13_ECHO_REQUEST,
                         &h, &body);
    if (error) {
        return error;
    }
    echo->type = h.type;
    echo->xid = h.xid;
    echo->data = body.left ? body.p : NULL;
    echo->data_len = body.left;
    return 0;
}

/* ERROR. */

int
ofp13_encode_error(void *buf, size_t size, size_t *lenp, uint32_t xid,
                   uint16_t type, uint16_t code, uint32_t experimenter,
                   const void *data, size_t data_len)
{
    bool exp = type == OFP13_ET_EXPERIMENTER;
    size_t fixed = OFP13_HEADER_LEN + (exp ? 8 : 4);
    uint8_t *p;
    int error;

    if (lenp) {
        *lenp = 0;
    }
    if (data_len && !data) {
        return OFP13_E_BAD_ARG;
    }
    if (data_len > OFP13_MAX_MSG_LEN - fixed) {
        return OFP13_E_TOO_BIG;
    }
    error = start_encode(buf, size, lenp, fixed + data_len, OFP13_ERROR,
                         xid, &p);
    if (error) {
        return error;
    }
    p = put_be16(p, type);
    p = put_be16(p, code);
    if (exp) {
        p = put_be32(p, experimenter);
    }
    p = put_bytes(p, data, data_len);
    finish_encode(buf, p, lenp);
    return 0;
}

int
ofp13_decode_error(const void *msg, size_t len, struct ofp13_error_msg *em)
{
    struct ofp13_header h;
    struct reader body;
    int error;

    memset(em, 0, sizeof *em);
    error = start_decode(msg, len, OFP13_ERROR, &h, &body);
    if (error) {
        return error;
    }
    uint16_t type, code;
    uint32_t experimenter = 0;
    if (!rd_be16(&body, &type) || !rd_be16(&body, &code)) {
        return OFP13_E_BAD_BODY_LEN;
    }
    if (type == OFP13_ET_EXPERIMENTER && !rd_be32(&body, &experimenter)) {
        return OFP13_E_BAD_BODY_LEN;
    }
    em->xid = h.xid;
    em->type = type;
    em->code = code;
    em->experimenter = experimenter;
    em->data = body.left ? body.p : NULL;
    em->data_len = body.left;
    return 0;
}

static const char *const hello_failed_codes[] = {
    "OFPHFC_INCOMPATIBLE", "OFPHFC_EPERM",
};

static const char *const bad_request_codes[] = {
    "OFPBRC_BAD_VERSION", "OFPBRC_BAD_TYPE", "OFPBRC_BAD_MULTIPART",
    "OFPBRC_BAD_EXPERIMENTER", "OFPBRC_BAD_EXP_TYPE", "OFPBRC_EPERM",
    "OFPBRC_BAD_LEN", "OFPBRC_BUFFER_EMPTY", "OFPBRC_BUFFER_UNKNOWN",
    "OFPBRC_BAD_TABLE_ID", "OFPBRC_IS_SLAVE", "OFPBRC_BAD_PORT",
    "OFPBRC_BAD_PACKET", "OFPBRC_MULTIPART_BUFFER_OVERFLOW",
};

static const char *const bad_action_codes[] = {
    "OFPBAC_BAD_TYPE", "OFPBAC_BAD_LEN", "OFPBAC_BAD_EXPERIMENTER",
    "OFPBAC_BAD_EXP_TYPE", "OFPBAC_BAD_OUT_PORT", "OFPBAC_BAD_ARGUMENT",
    "OFPBAC_EPERM", "OFPBAC_TOO_MANY", "OFPBAC_BAD_QUEUE",
    "OFPBAC_BAD_OUT_GROUP", "OFPBAC_MATCH_INCONSISTENT",
    "OFPBAC_UNSUPPORTED_ORDER", "OFPBAC_BAD_TAG", "OFPBAC_BAD_SET_TYPE",
    "OFPBAC_BAD_SET_LEN", "OFPBAC_BAD_SET_ARGUMENT",
};

static const char *const bad_instruction_codes[] = {
    "OFPBIC_UNKNOWN_INST", "OFPBIC_UNSUP_INST", "OFPBIC_BAD_TABLE_ID",
    "OFPBIC_UNSUP_METADATA", "OFPBIC_UNSUP_METADATA_MASK",
    "OFPBIC_BAD_EXPERIMENTER", "OFPBIC_BAD_EXP_TYPE", "OFPBIC_BAD_LEN",
    "OFPBIC_EPERM",
};

static const char *const bad_match_codes[] = {
    "OFPBMC_BAD_TYPE", "OFPBMC_BAD_LEN", "OFPBMC_BAD_TAG",
    "OFPBMC_BAD_DL_ADDR_MASK", "OFPBMC_BAD_NW_ADDR_MASK",
    "OFPBMC_BAD_WILDCARDS", "OFPBMC_BAD_FIELD", "OFPBMC_BAD_VALUE",
    "OFPBMC_BAD_MASK", "OFPBMC_BAD_PREREQ", "OFPBMC_DUP_FIELD",
    "OFPBMC_EPERM",
};

static const char *const flow_mod_failed_codes[] = {
    "OFPFMFC_UNKNOWN", "OFPFMFC_TABLE_FULL", "OFPFMFC_BAD_TABLE_ID",
    "OFPFMFC_OVERLAP", "OFPFMFC_EPERM", "OFPFMFC_BAD_TIMEOUT",
    "OFPFMFC_BAD_COMMAND", "OFPFMFC_BAD_FLAGS",
};

static const char *const switch_config_failed_codes[] = {
    "OFPSCFC_BAD_FLAGS", "OFPSCFC_BAD_LEN", "OFPSCFC_EPERM",
};

static const char *const role_request_failed_codes[] = {
    "OFPRRFC_STALE", "OFPRRFC_UNSUP", "OFPRRFC_BAD_ROLE",
};

struct error_type_info {
    const char *unknown;        /* "OFPET_... (unknown code)" */
    const char *const *codes;   /* Code names, indexed by code. */
    size_t n_codes;
};

#define ET_CODES(NAME, CODES) \
    { NAME " (unknown code)", CODES, sizeof CODES / sizeof *CODES }
#define ET_NOCODES(NAME) { NAME " (unknown code)", NULL, 0 }

static const struct error_type_info error_types[] = {
    ET_CODES("OFPET_HELLO_FAILED", hello_failed_codes),
    ET_CODES("OFPET_BAD_REQUEST", bad_request_codes),
    ET_CODES("OFPET_BAD_ACTION", bad_action_codes),
    ET_CODES("OFPET_BAD_INSTRUCTION", bad_instruction_codes),
    ET_CODES("OFPET_BAD_MATCH", bad_match_codes),
    ET_CODES("OFPET_FLOW_MOD_FAILED", flow_mod_failed_codes),
    ET_NOCODES("OFPET_GROUP_MOD_FAILED"),
    ET_NOCODES("OFPET_PORT_MOD_FAILED"),
    ET_NOCODES("OFPET_TABLE_MOD_FAILED"),
    ET_NOCODES("OFPET_QUEUE_OP_FAILED"),
    ET_CODES("OFPET_SWITCH_CONFIG_FAILED", switch_config_failed_codes),
    ET_CODES("OFPET_ROLE_REQUEST_FAILED", role_request_failed_codes),
    ET_NOCODES("OFPET_METER_MOD_FAILED"),
    ET_NOCODES("OFPET_TABLE_FEATURES_FAILED"),
};

const char *
ofp13_error_string(uint16_t type, uint16_t code)
{
    if (type == OFP13_ET_EXPERIMENTER) {
        return "OFPET_EXPERIMENTER";
    }
    if (type >= sizeof error_types / sizeof *error_types) {
        return "unknown error type";
    }
    const struct error_type_info *et = &error_types[type];
    return code < et->n_codes ? et->codes[code] : et->unknown;
}

/* FEATURES_REPLY. */

int
ofp13_encode_features_reply(void *buf, size_t size, size_t *lenp,
                            uint32_t xid, const struct ofp13_features *f)
{
    uint8_t *p;
    int error = start_encode(buf, size, lenp, OFP13_FEATURES_REPLY_LEN,
                             OFP13_FEATURES_REPLY, xid, &p);
    if (error) {
        return error;
    }
    p = put_be64(p, f->datapath_id);
    p = put_be32(p, f->n_buffers);
    p = put_u8(p, f->n_tables);
    p = put_u8(p, f->auxiliary_id);
    p = put_zeros(p, 2);
    p = put_be32(p, f->capabilities);
    p = put_zeros(p, 4);                /* reserved */
    finish_encode(buf, p, lenp);
    return 0;
}

int
ofp13_decode_features_reply(const void *msg, size_t len, uint32_t *xidp,
                            struct ofp13_features *f)
{
    struct ofp13_header h;
    struct reader body;
    int error;

    memset(f, 0, sizeof *f);
    error = start_decode(msg, len, OFP13_FEATURES_REPLY, &h, &body);
    if (error) {
        return error;
    }
    if (len != OFP13_FEATURES_REPLY_LEN) {
        return OFP13_E_BAD_BODY_LEN;
    }
    const uint8_t *pad;
    uint32_t reserved;
    if (!rd_be64(&body, &f->datapath_id)
        || !rd_be32(&body, &f->n_buffers)
        || !rd_u8(&body, &f->n_tables)
        || !rd_u8(&body, &f->auxiliary_id)
        || !rd_bytes(&body, 2, &pad)
        || !rd_be32(&body, &f->capabilities)
        || !rd_be32(&body, &reserved)) {
        memset(f, 0, sizeof *f);
        return OFP13_E_BAD_BODY_LEN;
    }
    if (xidp) {
        *xidp = h.xid;
    }
    return 0;
}

/* SET_ASYNC / GET_ASYNC_REPLY. */

void
ofp13_async_config_chand(struct ofp13_async_config *ac, bool no_match)
{
    memset(ac, 0, sizeof *ac);
    ac->packet_in_mask[0] = UINT32_C(1) << OFP13_R_ACTION;
    if (no_match) {
        ac->packet_in_mask[0] |= UINT32_C(1) << OFP13_R_NO_MATCH;
    }
}

int
ofp13_encode_set_async(void *buf, size_t size, size_t *lenp, uint32_t xid,
                       const struct ofp13_async_config *ac)
{
    uint8_t *p;
    int error = start_encode(buf, size, lenp, OFP13_ASYNC_CONFIG_LEN,
                             OFP13_SET_ASYNC, xid, &p);
    if (error) {
        return error;
    }
    for (int i = 0; i < 2; i++) {
        p = put_be32(p, ac->packet_in_mask[i]);
    }
    for (int i = 0; i < 2; i++) {
        p = put_be32(p, ac->port_status_mask[i]);
    }
    for (int i = 0; i < 2; i++) {
        p = put_be32(p, ac->flow_removed_mask[i]);
    }
    finish_encode(buf, p, lenp);
    return 0;
}

int
ofp13_decode_async_config(const void *msg, size_t len, uint8_t *typep,
                          uint32_t *xidp, struct ofp13_async_config *ac)
{
    struct ofp13_header h;
    struct reader body;
    int error;

    memset(ac, 0, sizeof *ac);
    error = ofp13_decode_header(msg, len, &h);
    if (error) {
        return error;
    }
    error = start_decode(msg, len,
                         h.type == OFP13_GET_ASYNC_REPLY
                         ? OFP13_GET_ASYNC_REPLY : OFP13_SET_ASYNC,
                         &h, &body);
    if (error) {
        return error;
    }
    if (len != OFP13_ASYNC_CONFIG_LEN) {
        return OFP13_E_BAD_BODY_LEN;
    }
    uint32_t masks[6];
    for (int i = 0; i < 6; i++) {
        if (!rd_be32(&body, &masks[i])) {
            return OFP13_E_BAD_BODY_LEN;
        }
    }
    ac->packet_in_mask[0] = masks[0];
    ac->packet_in_mask[1] = masks[1];
    ac->port_status_mask[0] = masks[2];
    ac->port_status_mask[1] = masks[3];
    ac->flow_removed_mask[0] = masks[4];
    ac->flow_removed_mask[1] = masks[5];
    if (typep) {
        *typep = h.type;
    }
    if (xidp) {
        *xidp = h.xid;
    }
    return 0;
}

/* Nicira experimenter messages. */

int
ofp13_encode_set_controller_id(void *buf, size_t size, size_t *lenp,
                               uint32_t xid, uint16_t id)
{
    uint8_t *p;
    int error = start_encode(buf, size, lenp, OFP13_SET_CONTROLLER_ID_LEN,
                             OFP13_EXPERIMENTER, xid, &p);
    if (error) {
        return error;
    }
    p = put_be32(p, OFP13_NX_VENDOR_ID);
    p = put_be32(p, OFP13_NXT_SET_CONTROLLER_ID);
    p = put_zeros(p, 6);
    p = put_be16(p, id);
    finish_encode(buf, p, lenp);
    return 0;
}

int
ofp13_decode_experimenter(const void *msg, size_t len,
                          uint32_t *experimenterp, uint32_t *subtypep)
{
    struct ofp13_header h;
    struct reader body;
    int error;

    *experimenterp = 0;
    *subtypep = 0;
    error = start_decode(msg, len, OFP13_EXPERIMENTER, &h, &body);
    if (error) {
        return error;
    }
    uint32_t experimenter, subtype;
    if (!rd_be32(&body, &experimenter) || !rd_be32(&body, &subtype)) {
        return OFP13_E_BAD_BODY_LEN;
    }
    *experimenterp = experimenter;
    *subtypep = subtype;
    return 0;
}

int
ofp13_decode_set_controller_id(const void *msg, size_t len, uint32_t *xidp,
                               uint16_t *idp)
{
    uint32_t experimenter, subtype;
    struct ofp13_header h;
    int error;

    *idp = 0;
    error = ofp13_decode_experimenter(msg, len, &experimenter, &subtype);
    if (error) {
        return error;
    }
    if (experimenter != OFP13_NX_VENDOR_ID
        || subtype != OFP13_NXT_SET_CONTROLLER_ID) {
        return OFP13_E_BAD_EXPERIMENTER;
    }
    if (len != OFP13_SET_CONTROLLER_ID_LEN) {
        return OFP13_E_BAD_BODY_LEN;
    }
    const uint8_t *p = msg;
    if (!all_zero(p + NX_HEADER_LEN, 6)) {
        return OFP13_E_BAD_PADDING;
    }
    ofp13_decode_header(msg, len, &h);
    if (xidp) {
        *xidp = h.xid;
    }
    *idp = get_be16(p + NX_HEADER_LEN + 6);
    return 0;
}

/* PACKET_OUT. */

size_t
ofp13_packet_out_size(size_t frame_len)
{
    return OFP13_PACKET_OUT_OVERHEAD + frame_len;
}

int
ofp13_encode_packet_out(void *buf, size_t size, size_t *lenp, uint32_t xid,
                        uint32_t in_port, uint32_t pkt_mark,
                        const void *frame, size_t frame_len)
{
    uint8_t *p;
    int error;

    if (lenp) {
        *lenp = 0;
    }
    if (!frame || frame_len < OFP13_MIN_FRAME) {
        return OFP13_E_BAD_FRAME;
    }
    if (frame_len > OFP13_PACKET_OUT_MAX_FRAME) {
        return OFP13_E_TOO_BIG;
    }
    error = start_encode(buf, size, lenp, ofp13_packet_out_size(frame_len),
                         OFP13_PACKET_OUT, xid, &p);
    if (error) {
        return error;
    }
    p = put_be32(p, OFP13_NO_BUFFER);
    p = put_be32(p, in_port);
    p = put_be16(p, ACTION_SET_FIELD_PKT_MARK_LEN + ACTION_OUTPUT_LEN);
    p = put_zeros(p, 6);

    /* OFPAT_SET_FIELD: type, len, OXM header + value, pad to 8. */
    p = put_be16(p, ACTION_SET_FIELD);
    p = put_be16(p, ACTION_SET_FIELD_PKT_MARK_LEN);
    p = put_be32(p, OXM_PKT_MARK);
    p = put_be32(p, pkt_mark);
    p = put_zeros(p, 4);

    /* OFPAT_OUTPUT: type, len, port, max_len, pad. */
    p = put_be16(p, ACTION_OUTPUT);
    p = put_be16(p, ACTION_OUTPUT_LEN);
    p = put_be32(p, OFP13_PORT_TABLE);
    p = put_be16(p, 0);
    p = put_zeros(p, 6);

    p = put_bytes(p, frame, frame_len);
    finish_encode(buf, p, lenp);
    return 0;
}

static int
decode_action(uint16_t type, struct reader *a, struct ofp13_packet_out *po)
{
    int error;

    switch (type) {
    case ACTION_OUTPUT:
        if (a->left != ACTION_OUTPUT_LEN - 4) {
            return OFP13_E_ACTION_LEN;
        }
        if (po->has_output) {
            return OFP13_E_ACTION_DUP;
        }
        rd_be32(a, &po->out_port);
        rd_be16(a, &po->max_len);
        error = rd_zeros(a, 6);
        if (error) {
            return error;
        }
        po->has_output = true;
        return 0;

    case ACTION_SET_FIELD: {
        uint32_t oxm, value;
        if (!rd_be32(a, &oxm)) {
            return OFP13_E_ACTION_LEN;
        }
        if (oxm != OXM_PKT_MARK) {
            return OFP13_E_SET_FIELD;
        }
        if (a->left != ACTION_SET_FIELD_PKT_MARK_LEN - 8) {
            return OFP13_E_ACTION_LEN;
        }
        if (po->has_pkt_mark) {
            return OFP13_E_ACTION_DUP;
        }
        rd_be32(a, &value);
        error = rd_zeros(a, 4);
        if (error) {
            return error;
        }
        po->has_pkt_mark = true;
        po->pkt_mark = value;
        return 0;
    }

    default:
        return OFP13_E_ACTION_UNSUPPORTED;
    }
}

int
ofp13_decode_packet_out(const void *msg, size_t len,
                        struct ofp13_packet_out *po)
{
    struct ofp13_header h;
    struct reader body;
    int error;

    memset(po, 0, sizeof *po);
    error = start_decode(msg, len, OFP13_PACKET_OUT, &h, &body);
    if (error) {
        return error;
    }
    uint32_t buffer_id, in_port;
    uint16_t actions_len;
    if (!rd_be32(&body, &buffer_id) || !rd_be32(&body, &in_port)
        || !rd_be16(&body, &actions_len)) {
        return OFP13_E_BAD_BODY_LEN;
    }
    error = rd_zeros(&body, 6);
    if (error) {
        return error;
    }

    struct reader actions;
    if (actions_len % 8 || !rd_bytes(&body, actions_len, &actions.p)) {
        return OFP13_E_ACTIONS_LEN;
    }
    actions.left = actions_len;

    struct ofp13_packet_out tmp = {
        .xid = h.xid,
        .buffer_id = buffer_id,
        .in_port = in_port,
    };
    while (actions.left) {
        /* actions_len is a multiple of 8, so 8 bytes are always here. */
        uint16_t type = get_be16(actions.p);
        uint16_t alen = get_be16(actions.p + 2);
        if (alen < 8 || alen % 8 || alen > actions.left) {
            return OFP13_E_ACTION_LEN;
        }
        struct reader a = { .p = actions.p + 4, .left = alen - 4 };
        error = decode_action(type, &a, &tmp);
        if (error) {
            return error;
        }
        actions.p += alen;
        actions.left -= alen;
    }

    tmp.data = body.left ? body.p : NULL;
    tmp.data_len = body.left;
    *po = tmp;
    return 0;
}

/* PACKET_IN. */

/* Parses the OXM TLVs in the 'n' bytes at 'p' (the match after its 4-byte
 * header, before padding), storing in_port and pkt_mark into 'pin'. */
static int
parse_oxms(const uint8_t *p, size_t n, struct ofp13_packet_in *pin)
{
    struct reader r = { .p = p, .left = n };

    while (r.left) {
        uint32_t header;
        const uint8_t *payload;

        if (!rd_be32(&r, &header)) {
            return OFP13_E_OXM_TRUNCATED;
        }
        uint16_t class = header >> 16;
        uint8_t field = (header >> 9) & 0x7f;
        bool hasmask = (header >> 8) & 1;
        size_t plen = header & 0xff;
        if (!rd_bytes(&r, plen, &payload)) {
            return OFP13_E_OXM_TRUNCATED;
        }

        /* An experimenter OXM's length includes its 4-byte experimenter
         * id, which precedes the value. */
        const uint8_t *value = payload;
        size_t vlen = plen;
        if (class == OFP13_OXM_CLASS_EXPERIMENTER) {
            if (plen < 4) {
                return OFP13_E_OXM_EXP_LEN;
            }
            value += 4;
            vlen -= 4;
        }

        if (class == OFP13_OXM_CLASS_OPENFLOW_BASIC
            && field == OFP13_OXM_FIELD_IN_PORT) {
            if (hasmask) {
                return OFP13_E_OXM_NOT_MASKABLE;
            }
            if (plen != 4) {
                return OFP13_E_OXM_FIELD_LEN;
            }
            if (pin->has_in_port) {
                return OFP13_E_OXM_DUP;
            }
            pin->has_in_port = true;
            pin->in_port = get_be32(value);
        } else if (class == OFP13_OXM_CLASS_NXM1
                   && field == OFP13_NXM_FIELD_PKT_MARK) {
            if (plen != (hasmask ? 8 : 4)) {
                return OFP13_E_OXM_FIELD_LEN;
            }
            if (pin->has_pkt_mark) {
                return OFP13_E_OXM_DUP;
            }
        }

        if (hasmask) {
            size_t width = vlen / 2;
            if (!vlen || vlen % 2) {
                return OFP13_E_OXM_MASK_LEN;
            }
            for (size_t i = 0; i < width; i++) {
                if (value[i] & ~value[width + i]) {
                    return OFP13_E_OXM_MASK_BITS;
                }
            }
        }

        if (class == OFP13_OXM_CLASS_NXM1
            && field == OFP13_NXM_FIELD_PKT_MARK) {
            pin->has_pkt_mark = true;
            pin->pkt_mark = get_be32(value);
            pin->pkt_mark_mask = hasmask ? get_be32(value + 4) : UINT32_MAX;
        }
    }
    return 0;
}

int
ofp13_decode_packet_in(const void *msg, size_t len,
                       struct ofp13_packet_in *pin)
{
    struct ofp13_header h;
    struct reader body;
    int error;

    memset(pin, 0, sizeof *pin);
    error = ofp13_decode_header(msg, len, &h);
    if (error) {
        return error;
    }
    if (h.type == OFP13_EXPERIMENTER) {
        uint32_t experimenter, subtype;
        error = ofp13_decode_experimenter(msg, len, &experimenter, &subtype);
        if (error) {
            return error;
        }
        if (experimenter == OFP13_NX_VENDOR_ID
            && (subtype == OFP13_NXT_PACKET_IN
                || subtype == OFP13_NXT_PACKET_IN2)) {
            return OFP13_E_UNSUPPORTED_MSG;
        }
        return OFP13_E_BAD_TYPE;
    }
    error = start_decode(msg, len, OFP13_PACKET_IN, &h, &body);
    if (error) {
        return error;
    }

    struct ofp13_packet_in tmp = { .xid = h.xid };
    if (!rd_be32(&body, &tmp.buffer_id)
        || !rd_be16(&body, &tmp.total_len)
        || !rd_u8(&body, &tmp.reason)
        || !rd_u8(&body, &tmp.table_id)
        || !rd_be64(&body, &tmp.cookie)) {
        return OFP13_E_BAD_BODY_LEN;
    }

    /* Match: type, length (header included, padding excluded), OXMs, zero
     * padding to a multiple of 8. */
    uint16_t match_type, match_len;
    if (body.left < 4) {
        return OFP13_E_MATCH_LEN;
    }
    match_type = get_be16(body.p);
    match_len = get_be16(body.p + 2);
    if (match_type != MATCH_TYPE_OXM) {
        return OFP13_E_MATCH_TYPE;
    }
    const uint8_t *match;
    if (match_len < 4 || !rd_bytes(&body, round_up8(match_len), &match)) {
        return OFP13_E_MATCH_LEN;
    }
    error = parse_oxms(match + 4, match_len - 4, &tmp);
    if (error) {
        return error;
    }
    if (!all_zero(match + match_len, round_up8(match_len) - match_len)) {
        return OFP13_E_BAD_PADDING;
    }

    /* Exactly 2 zero bytes so that the IP header is 32-bit aligned. */
    error = rd_zeros(&body, 2);
    if (error) {
        return error;
    }

    tmp.data = body.left ? body.p : NULL;
    tmp.data_len = body.left;
    if (tmp.data_len > tmp.total_len) {
        return OFP13_E_TOTAL_LEN;
    }
    *pin = tmp;
    return 0;
}

int
ofp13_encode_packet_in(void *buf, size_t size, size_t *lenp, uint32_t xid,
                       uint8_t reason, uint8_t table_id, uint64_t cookie,
                       uint32_t in_port, uint32_t pkt_mark,
                       const void *frame, size_t frame_len)
{
    size_t match_len = 4 + 8 + (pkt_mark ? 8 : 0);
    size_t fixed = (OFP13_HEADER_LEN + PACKET_IN_FIXED_LEN
                    + round_up8(match_len) + 2);
    uint8_t *p;
    int error;

    if (lenp) {
        *lenp = 0;
    }
    if (frame_len && !frame) {
        return OFP13_E_BAD_ARG;
    }
    if (frame_len > OFP13_MAX_MSG_LEN - fixed) {
        return OFP13_E_TOO_BIG;
    }
    error = start_encode(buf, size, lenp, fixed + frame_len,
                         OFP13_PACKET_IN, xid, &p);
    if (error) {
        return error;
    }
    p = put_be32(p, OFP13_NO_BUFFER);
    p = put_be16(p, frame_len);
    p = put_u8(p, reason);
    p = put_u8(p, table_id);
    p = put_be64(p, cookie);

    p = put_be16(p, MATCH_TYPE_OXM);
    p = put_be16(p, match_len);
    p = put_be32(p, OXM_IN_PORT);
    p = put_be32(p, in_port);
    if (pkt_mark) {
        p = put_be32(p, OXM_PKT_MARK);
        p = put_be32(p, pkt_mark);
    }
    p = put_zeros(p, round_up8(match_len) - match_len);
    p = put_zeros(p, 2);

    p = put_bytes(p, frame, frame_len);
    finish_encode(buf, p, lenp);
    return 0;
}
