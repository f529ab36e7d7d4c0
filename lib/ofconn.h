/*
 * ofconn: an OpenFlow 1.3 connection to one bridge's management socket
 * ("unix:<rundir>/<br>.mgmt", a service connection).
 *
 * It connects, says HELLO, answers echo requests, and reconnects with the
 * backoff and inactivity probes of lib/reconnect when ovs-vswitchd goes
 * away.  What else it does depends on how it is used:
 *
 *   - The packet path (ofconn_create_packet()): it enables PACKET_IN for
 *     reason "action" with SET_ASYNC (a service connection gets none
 *     otherwise) and sets its controller id, so that flows can send frames
 *     to it alone with controller(id=...).  Outgoing frames become
 *     PACKET_OUT with in_port=CONTROLLER (or the chand port) and actions
 *     set_field:<chan-id>->pkt_mark,output:TABLE; incoming PACKET_INs go
 *     to a callback with their in_port and pkt_mark.
 *
 *   - Flow programming (ofconn_create()): no asynchronous messages; the
 *     owner sends requests with ofconn_send() and gets every reply and
 *     error through its message callback (lib/ofctrl).
 *
 * Keeping the two apart lets a large flow change (thousands of FLOW_MODs
 * in a bundle) stream to the switch without delaying channel frames.
 */
#ifndef OFCONN_H
#define OFCONN_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-flows.h"

/* Controller id chand-host gives its packet connection, so that flows can
 * send PACKET_IN to chand-host only: controller(id=CHAND_CONTROLLER_ID). */
#define CHAND_CONTROLLER_ID CHAN_FLOWS_CONTROLLER_ID

/* Called for each PACKET_IN.  'cookie' is that of the flow that sent it.
 * 'frame' is borrowed for the call.
 * 'has_mark' is false if the match carried no pkt_mark. */
typedef void ofconn_packet_in_func(uint64_t cookie, uint32_t in_port,
                                   bool has_mark, uint32_t pkt_mark,
                                   const uint8_t *frame, size_t len,
                                   void *aux);

/* Called for each message that is not HELLO, ECHO or PACKET_IN (errors,
 * barrier and multipart replies, bundle replies...).  'msg' holds one whole
 * message of 'len' bytes, borrowed for the call. */
typedef void ofconn_msg_func(const uint8_t *msg, size_t len, void *aux);

struct ofconn_stats {
    uint64_t packet_outs;       /* Queued to the socket. */
    uint64_t packet_ins;
    uint64_t tx_dropped;        /* Output buffer full. */
    uint64_t bad_msgs;          /* Undecodable messages from the switch. */
    uint64_t errors;            /* OpenFlow ERROR messages received. */
    uint64_t connects;
};

/* Creates a packet-path connection to 'target' (copied), e.g.
 * "unix:/var/run/openvswitch/br-int.mgmt".  The caller owns the result. */
struct ofconn *ofconn_create_packet(const char *target,
                                    ofconn_packet_in_func *, void *aux);

/* Creates a connection to 'target' (copied) that hands every reply to
 * 'msg_cb' and may queue up to 'tx_max' bytes.  The caller owns the
 * result. */
struct ofconn *ofconn_create(const char *target, ofconn_msg_func *msg_cb,
                             void *aux, size_t tx_max);
void ofconn_destroy(struct ofconn *);

/* Sends an echo request after 'ms' of silence and drops the connection if
 * nothing comes for as long again (default 5,000; 0: never). */
void ofconn_set_probe_interval(struct ofconn *, int ms);

void ofconn_run(struct ofconn *);
void ofconn_wait(struct ofconn *);

/* True once the handshake has been sent on a live connection. */
bool ofconn_is_ready(const struct ofconn *);

/* Changes each time the connection is established or lost. */
unsigned int ofconn_get_seqno(const struct ofconn *);

/* Returns 'n' consecutive fresh transaction ids; the first is returned. */
uint32_t ofconn_alloc_xids(struct ofconn *, uint32_t n);

/* Queues the 'len' bytes at 'msg' (one or more whole messages, copied).
 * Returns 0, ENOTCONN if not ready, or ENOBUFS if the output buffer would
 * grow past its limit (nothing is queued then). */
int ofconn_send(struct ofconn *, const void *msg, size_t len);

/* Bytes queued and not yet written to the socket. */
size_t ofconn_tx_backlog(const struct ofconn *);

/* Queues 'frame' (borrowed) as a PACKET_OUT marked with 'pkt_mark' that
 * enters the flow table as if received on 'in_port' (OFP13_PORT_CONTROLLER,
 * or the chand port while its socket is down).  Returns 0, ENOTCONN if not
 * ready, ENOBUFS if the output buffer is full (the frame is dropped and
 * counted; reliable delivery retransmits), or EMSGSIZE. */
int ofconn_send_frame(struct ofconn *, uint32_t in_port, uint32_t pkt_mark,
                      const uint8_t *frame, size_t len);

const char *ofconn_get_target(const struct ofconn *);
void ofconn_get_stats(const struct ofconn *, struct ofconn_stats *);

#endif /* ofconn.h */
