/*
 * ofp13: a small, pure OpenFlow 1.3 message codec for chand-host.
 *
 * This module encodes and decodes exactly the OpenFlow 1.3 messages that
 * chand-host needs to drive an Open vSwitch bridge as a service connection
 * (<bridge>.mgmt): HELLO, ECHO_REQUEST/REPLY, ERROR, FEATURES_REQUEST/REPLY,
 * BARRIER_REQUEST/REPLY, SET_ASYNC (and GET_ASYNC_REPLY, same layout), the
 * Nicira NXT_SET_CONTROLLER_ID extension, PACKET_OUT carrying
 * "set_field:<mark>->pkt_mark, output:TABLE", and PACKET_IN with an OXM
 * match from which it extracts in_port and pkt_mark.  It also frames a byte
 * stream into messages.
 *
 * It does no I/O, allocates no memory and keeps no state: every encoder
 * writes into a caller buffer, every decoder reads a caller buffer that holds
 * exactly one message (as delimited by ofp13_frame()) and, where it returns
 * pointers, they point into that buffer.  Every byte is read with a
 * bounds-checked big-endian pull; nothing that came off the wire is trusted.
 * Data handed to an encoder (frames, payloads) is copied and stays owned by
 * the caller; it must not overlap the output buffer.  Encoders store the
 * message length in '*lenp' (0 on error; 'lenp' may be NULL).
 *
 * Functions return 0 on success or a positive 'enum ofp13_err' (not an errno
 * value); ofp13_strerror() describes each one.
 */
#ifndef OFP13_H
#define OFP13_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol constants. */
#define OFP13_VERSION 0x04
#define OFP13_HEADER_LEN 8
#define OFP13_MAX_MSG_LEN 65535

/* Message types (ofp_type) used here. */
enum ofp13_type {
    OFP13_HELLO = 0,
    OFP13_ERROR = 1,
    OFP13_ECHO_REQUEST = 2,
    OFP13_ECHO_REPLY = 3,
    OFP13_EXPERIMENTER = 4,
    OFP13_FEATURES_REQUEST = 5,
    OFP13_FEATURES_REPLY = 6,
    OFP13_PACKET_IN = 10,
    OFP13_PORT_STATUS = 12,
    OFP13_PACKET_OUT = 13,
    OFP13_FLOW_MOD = 14,
    OFP13_BARRIER_REQUEST = 20,
    OFP13_BARRIER_REPLY = 21,
    OFP13_GET_ASYNC_REQUEST = 26,
    OFP13_GET_ASYNC_REPLY = 27,
    OFP13_SET_ASYNC = 28,
};

/* Reserved port numbers (OF1.1+ 32-bit numbering). */
#define OFP13_PORT_MAX        0xffffff00u
#define OFP13_PORT_IN_PORT    0xfffffff8u
#define OFP13_PORT_TABLE      0xfffffff9u
#define OFP13_PORT_NORMAL     0xfffffffau
#define OFP13_PORT_FLOOD      0xfffffffbu
#define OFP13_PORT_ALL        0xfffffffcu
#define OFP13_PORT_CONTROLLER 0xfffffffdu
#define OFP13_PORT_LOCAL      0xfffffffeu
#define OFP13_PORT_ANY        0xffffffffu

#define OFP13_NO_BUFFER 0xffffffffu

/* Packet-in reasons (OF1.3), as bit numbers in SET_ASYNC packet_in_mask. */
enum ofp13_packet_in_reason {
    OFP13_R_NO_MATCH = 0,
    OFP13_R_ACTION = 1,
    OFP13_R_INVALID_TTL = 2,
};

/* Nicira vendor/experimenter id and the subtypes this module knows. */
#define OFP13_NX_VENDOR_ID 0x00002320u
#define OFP13_NXT_PACKET_IN 17
#define OFP13_NXT_SET_CONTROLLER_ID 20
#define OFP13_NXT_PACKET_IN2 30

/* OXM classes and fields used here. */
#define OFP13_OXM_CLASS_NXM1 0x0001
#define OFP13_OXM_CLASS_OPENFLOW_BASIC 0x8000
#define OFP13_OXM_CLASS_EXPERIMENTER 0xffff
#define OFP13_OXM_FIELD_IN_PORT 0          /* Class 0x8000, 4 bytes. */
#define OFP13_NXM_FIELD_PKT_MARK 33        /* Class 0x0001, 4 bytes. */

/* Fixed sizes of the messages this module builds. */
#define OFP13_HELLO_LEN 16              /* Header + version bitmap elem. */
#define OFP13_FEATURES_REPLY_LEN 32
#define OFP13_ASYNC_CONFIG_LEN 32
#define OFP13_SET_CONTROLLER_ID_LEN 24
#define OFP13_PACKET_OUT_OVERHEAD 56    /* 24 header + 16 set_field + 16
                                         * output; the frame follows. */
#define OFP13_PACKET_OUT_MAX_FRAME (OFP13_MAX_MSG_LEN \
                                    - OFP13_PACKET_OUT_OVERHEAD)
#define OFP13_MIN_FRAME 14              /* An Ethernet header. */

/* Errors.  0 means success; everything else is one of these. */
enum ofp13_err {
    OFP13_E_INCOMPLETE = 1,    /* Framer: need more bytes (not fatal). */
    OFP13_E_TOO_SHORT,         /* Buffer shorter than the header says. */
    OFP13_E_LENGTH_MISMATCH,   /* Buffer longer than the header says. */
    OFP13_E_BAD_LENGTH,        /* Header length < 8. */
    OFP13_E_BAD_VERSION,       /* Version is not the expected one. */
    OFP13_E_BAD_TYPE,          /* Message type not handled by decoder. */
    OFP13_E_BAD_BODY_LEN,      /* Body size wrong for the message type. */
    OFP13_E_UNSUPPORTED_MSG,   /* Known but unsupported (NXT_PACKET_IN2). */
    OFP13_E_BAD_EXPERIMENTER,  /* Experimenter id/subtype not expected. */
    OFP13_E_NO_SPACE,          /* Output buffer too small. */
    OFP13_E_TOO_BIG,           /* Message would exceed 65535 bytes. */
    OFP13_E_BAD_FRAME,         /* Frame shorter than an Ethernet header. */
    OFP13_E_HELLO_ELEM,        /* Malformed HELLO element. */
    OFP13_E_NO_COMMON_VERSION, /* Peer does not offer OpenFlow 1.3. */
    OFP13_E_BAD_PADDING,       /* Non-zero padding byte. */
    OFP13_E_MATCH_TYPE,        /* Match type is not OFPMT_OXM. */
    OFP13_E_MATCH_LEN,         /* Match length < 4 or overruns message. */
    OFP13_E_OXM_TRUNCATED,     /* OXM TLV overruns the match. */
    OFP13_E_OXM_EXP_LEN,       /* Experimenter OXM lacks its id. */
    OFP13_E_OXM_MASK_LEN,      /* Masked OXM payload length odd or 0. */
    OFP13_E_OXM_MASK_BITS,     /* OXM value has 1-bits outside mask. */
    OFP13_E_OXM_NOT_MASKABLE,  /* Masked OXM for an unmaskable field. */
    OFP13_E_OXM_FIELD_LEN,     /* Known OXM field with wrong length. */
    OFP13_E_OXM_DUP,           /* Known OXM field appears twice. */
    OFP13_E_TOTAL_LEN,         /* PACKET_IN total_len < data length. */
    OFP13_E_ACTIONS_LEN,       /* PACKET_OUT actions_len bad. */
    OFP13_E_ACTION_LEN,        /* Action length bad. */
    OFP13_E_ACTION_UNSUPPORTED,/* Action type not understood. */
    OFP13_E_ACTION_DUP,        /* Same action twice. */
    OFP13_E_SET_FIELD,         /* set_field other than exact pkt_mark. */
    OFP13_E_BAD_ARG,           /* Caller passed an invalid argument. */
    OFP13_E_MAX
};

/* Returns a static string describing 'error' (0 or an 'enum ofp13_err'). */
const char *ofp13_strerror(int error);

/* Header. */
struct ofp13_header {
    uint8_t version;
    uint8_t type;
    uint16_t length;
    uint32_t xid;
};

/* Decodes the 8-byte header at the start of 'buf' ('len' bytes available)
 * into '*h'.  Checks only that 8 bytes are present and that the length field
 * is at least 8; it does not check the version or that the whole message is
 * present, so it also serves to peek at the header of the offending request
 * echoed in an ERROR's data.  '*h' is zeroed on error. */
int ofp13_decode_header(const void *buf, size_t len, struct ofp13_header *h);

/* Writes header 'h' into the first 8 bytes of 'buf' ('size' bytes). */
int ofp13_encode_header(void *buf, size_t size, const struct ofp13_header *h);

/* Stream framer.  Given the 'len' bytes at 'buf', which start at a message
 * boundary of an OpenFlow byte stream, returns:
 *   - 0, with '*msg_len' set to the length of the complete message at the
 *     start of 'buf';
 *   - OFP13_E_INCOMPLETE if more bytes are needed, with '*msg_len' set to
 *     the total needed so far (8 until the length field is known);
 *   - another error if the stream is invalid (length < 8, or version not
 *     'version' when 'version' is nonzero; pass 0 before HELLO negotiation
 *     completes, when any nonzero version is accepted).  '*msg_len' is 0.
 * An invalid stream cannot be resynchronized: close the connection. */
int ofp13_frame(const void *buf, size_t len, uint8_t version,
                size_t *msg_len);

/* Every decoder below takes 'msg'/'len' holding exactly one message (as
 * ofp13_frame() delimits it) and checks version 0x04 (except HELLO), the
 * type, and that the header length equals 'len'.  Pointers returned in
 * output structs point into 'msg' and are valid only while it is. */

/* Encodes a header-only message of 'type' (FEATURES_REQUEST,
 * BARRIER_REQUEST, BARRIER_REPLY, GET_ASYNC_REQUEST, ...) into 'buf'
 * ('size' bytes), storing the length written (8) in '*lenp'. */
int ofp13_encode_simple(void *buf, size_t size, size_t *lenp,
                        uint8_t type, uint32_t xid);

/* Decodes a header-only message that must be of 'type' and exactly 8
 * bytes long; stores its xid in '*xidp' (may be NULL). */
int ofp13_decode_simple(const void *msg, size_t len, uint8_t type,
                        uint32_t *xidp);

/* HELLO.  Encodes a 16-byte HELLO with version 0x04 and one VERSIONBITMAP
 * element advertising only OpenFlow 1.3. */
int ofp13_encode_hello(void *buf, size_t size, size_t *lenp, uint32_t xid);

/* Decodes a HELLO of any version.  Stores in '*versionsp' the bitmap of
 * versions the peer offers (bit N = version N): from the first
 * VERSIONBITMAP element's first word if present, otherwise every version
 * from 1 up to the header's.  Unknown element types are skipped.  Returns
 * OFP13_E_NO_COMMON_VERSION (with '*versionsp' still filled in) if bit 4
 * (OpenFlow 1.3) is clear. */
int ofp13_decode_hello(const void *msg, size_t len, uint32_t *versionsp);

/* ECHO_REQUEST / ECHO_REPLY.  'data' ('data_len' bytes, may be NULL if 0)
 * is copied after the header. */
int ofp13_encode_echo_request(void *buf, size_t size, size_t *lenp,
                              uint32_t xid, const void *data,
                              size_t data_len);
int ofp13_encode_echo_reply(void *buf, size_t size, size_t *lenp,
                            uint32_t xid, const void *data, size_t data_len);

struct ofp13_echo {
    uint8_t type;               /* OFP13_ECHO_REQUEST or OFP13_ECHO_REPLY. */
    uint32_t xid;
    const uint8_t *data;        /* Into 'msg'; NULL if data_len is 0. */
    size_t data_len;
};

/* Decodes an ECHO_REQUEST or ECHO_REPLY.  To answer a request, pass the
 * result's xid and data to ofp13_encode_echo_reply(). */
int ofp13_decode_echo(const void *msg, size_t len, struct ofp13_echo *);

/* ERROR. */
enum ofp13_error_type {
    OFP13_ET_HELLO_FAILED = 0,
    OFP13_ET_BAD_REQUEST = 1,
    OFP13_ET_BAD_ACTION = 2,
    OFP13_ET_BAD_INSTRUCTION = 3,
    OFP13_ET_BAD_MATCH = 4,
    OFP13_ET_FLOW_MOD_FAILED = 5,
    OFP13_ET_GROUP_MOD_FAILED = 6,
    OFP13_ET_PORT_MOD_FAILED = 7,
    OFP13_ET_TABLE_MOD_FAILED = 8,
    OFP13_ET_QUEUE_OP_FAILED = 9,
    OFP13_ET_SWITCH_CONFIG_FAILED = 10,
    OFP13_ET_ROLE_REQUEST_FAILED = 11,
    OFP13_ET_METER_MOD_FAILED = 12,
    OFP13_ET_TABLE_FEATURES_FAILED = 13,
    OFP13_ET_EXPERIMENTER = 0xffff,
};

struct ofp13_error_msg {
    uint32_t xid;
    uint16_t type;              /* enum ofp13_error_type. */
    uint16_t code;              /* For EXPERIMENTER: exp_code. */
    uint32_t experimenter;      /* Only for type EXPERIMENTER, else 0. */
    const uint8_t *data;        /* Into 'msg' (usually the start of the
                                 * failed request); NULL if data_len 0. */
    size_t data_len;
};

/* Encodes an ERROR.  For type OFP13_ET_EXPERIMENTER, 'code' is the exp_code
 * and 'experimenter' is written; otherwise 'experimenter' is ignored. */
int ofp13_encode_error(void *buf, size_t size, size_t *lenp, uint32_t xid,
                       uint16_t type, uint16_t code, uint32_t experimenter,
                       const void *data, size_t data_len);
int ofp13_decode_error(const void *msg, size_t len, struct ofp13_error_msg *);

/* Returns a static string naming the (type, code) pair by its code name,
 * e.g. "OFPBRC_BAD_TYPE" for (OFPET_BAD_REQUEST, 1) (the code prefix names
 * the type).  For a code this module does not name, returns the type, e.g.
 * "OFPET_BAD_ACTION (unknown code)"; "OFPET_EXPERIMENTER" for experimenter
 * errors; "unknown error type" otherwise.  Never NULL. */
const char *ofp13_error_string(uint16_t type, uint16_t code);

/* FEATURES_REPLY. */
struct ofp13_features {
    uint64_t datapath_id;
    uint32_t n_buffers;
    uint8_t n_tables;
    uint8_t auxiliary_id;
    uint32_t capabilities;
};

int ofp13_encode_features_reply(void *buf, size_t size, size_t *lenp,
                                uint32_t xid, const struct ofp13_features *);
/* Decodes a FEATURES_REPLY of exactly 32 bytes; the 2 pad bytes and the
 * 4 reserved bytes are not checked (OpenFlow says to ignore them). */
int ofp13_decode_features_reply(const void *msg, size_t len, uint32_t *xidp,
                                struct ofp13_features *);

/* SET_ASYNC / GET_ASYNC_REPLY (OF1.3 layout).  Index 0 applies to the
 * master and equal roles, index 1 to the slave role.  Bit N of a mask enables
 * reason N. */
struct ofp13_async_config {
    uint32_t packet_in_mask[2];
    uint32_t port_status_mask[2];
    uint32_t flow_removed_mask[2];
};

/* Initializes '*ac' to what chand-host wants: PACKET_IN for reason ACTION
 * (and NO_MATCH if 'no_match') for master/equal, nothing else. */
void ofp13_async_config_chand(struct ofp13_async_config *ac, bool no_match);

/* Encodes a 32-byte SET_ASYNC. */
int ofp13_encode_set_async(void *buf, size_t size, size_t *lenp,
                           uint32_t xid, const struct ofp13_async_config *);
/* Decodes a 32-byte SET_ASYNC or GET_ASYNC_REPLY; stores the type in
 * '*typep' (may be NULL). */
int ofp13_decode_async_config(const void *msg, size_t len, uint8_t *typep,
                              uint32_t *xidp, struct ofp13_async_config *);

/* Nicira experimenter messages. */

/* Encodes the 24-byte NXT_SET_CONTROLLER_ID (experimenter 0x00002320,
 * subtype 20; note that 24 is NXT_TLV_TABLE_MOD) setting this connection's
 * controller id to 'id'.  Measured on OVS 3.1.0: once a connection has id N,
 * it gets PACKET_IN only from "controller(id=N)" actions; a plain
 * "controller" action means id 0, the default of every connection. */
int ofp13_encode_set_controller_id(void *buf, size_t size, size_t *lenp,
                                   uint32_t xid, uint16_t id);
int ofp13_decode_set_controller_id(const void *msg, size_t len,
                                   uint32_t *xidp, uint16_t *idp);

/* Decodes the experimenter id and subtype of an EXPERIMENTER message (at
 * least 16 bytes). */
int ofp13_decode_experimenter(const void *msg, size_t len,
                              uint32_t *experimenterp, uint32_t *subtypep);

/* PACKET_OUT. */

/* Returns the size of the PACKET_OUT that ofp13_encode_packet_out() builds
 * for a 'frame_len'-byte frame. */
size_t ofp13_packet_out_size(size_t frame_len);

/* Encodes a PACKET_OUT with buffer_id NO_BUFFER, 'in_port' (usually
 * OFP13_PORT_CONTROLLER), actions "set_field:'pkt_mark'->pkt_mark" (OFPAT
 * SET_FIELD with NXM_NX_PKT_MARK, 16 bytes) and "output:TABLE" (max_len 0),
 * followed by a copy of 'frame'.  'frame_len' must be between
 * OFP13_MIN_FRAME and OFP13_PACKET_OUT_MAX_FRAME.  Stores the length
 * written in '*lenp'. */
int ofp13_encode_packet_out(void *buf, size_t size, size_t *lenp,
                            uint32_t xid, uint32_t in_port,
                            uint32_t pkt_mark, const void *frame,
                            size_t frame_len);

struct ofp13_packet_out {
    uint32_t xid;
    uint32_t buffer_id;
    uint32_t in_port;
    bool has_pkt_mark;
    uint32_t pkt_mark;
    bool has_output;
    uint32_t out_port;
    uint16_t max_len;
    const uint8_t *data;        /* Into 'msg'; NULL if data_len is 0. */
    size_t data_len;
};

/* Decodes a PACKET_OUT whose actions are at most one exact pkt_mark
 * set_field and at most one OUTPUT, in any order (what chand builds); any
 * other action is OFP13_E_ACTION_UNSUPPORTED.  For tests and tools. */
int ofp13_decode_packet_out(const void *msg, size_t len,
                            struct ofp13_packet_out *);

/* PACKET_IN. */
struct ofp13_packet_in {
    uint32_t xid;
    uint32_t buffer_id;
    uint16_t total_len;
    uint8_t reason;             /* enum ofp13_packet_in_reason. */
    uint8_t table_id;
    uint64_t cookie;
    bool has_in_port;
    uint32_t in_port;
    bool has_pkt_mark;
    uint32_t pkt_mark;
    uint32_t pkt_mark_mask;     /* 0xffffffff unless the OXM was masked. */
    const uint8_t *data;        /* Frame, into 'msg'; NULL if data_len 0. */
    size_t data_len;
};

/* Decodes an OF1.3 PACKET_IN: fixed part, OXM match (every TLV bounds
 * checked; OXM_OF_IN_PORT and NXM_NX_PKT_MARK extracted, other fields
 * skipped, experimenter-class TLVs honoured), the padding to 8 bytes and the
 * 2 pad bytes (must be zero), then the frame.  Nicira NXT_PACKET_IN and
 * NXT_PACKET_IN2 give OFP13_E_UNSUPPORTED_MSG. */
int ofp13_decode_packet_in(const void *msg, size_t len,
                           struct ofp13_packet_in *);

/* Encodes a PACKET_IN exactly as Open vSwitch 3.1 does for an unbuffered
 * "controller" action: buffer_id NO_BUFFER, total_len = frame_len, the
 * match holding OXM_OF_IN_PORT then (if 'pkt_mark' is nonzero)
 * NXM_NX_PKT_MARK, padded to 8, 2 pad bytes, the frame.  For tests and
 * replay tools. */
int ofp13_encode_packet_in(void *buf, size_t size, size_t *lenp,
                           uint32_t xid, uint8_t reason, uint8_t table_id,
                           uint64_t cookie, uint32_t in_port,
                           uint32_t pkt_mark, const void *frame,
                           size_t frame_len);

#endif /* ofp13.h */
