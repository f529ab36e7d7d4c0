/*
 * ofconn: chand-host's OpenFlow 1.3 connection to one bridge, used for the
 * packet path only (flows are programmed by flowmgr).
 *
 * It connects to the bridge's management socket ("unix:<rundir>/<br>.mgmt",
 * a service connection), says HELLO, enables PACKET_IN for reason "action"
 * with SET_ASYNC (a service connection gets none otherwise), sets its
 * controller id, answers echo requests, and reconnects with backoff when
 * ovs-vswitchd goes away.  Outgoing frames become PACKET_OUT with
 * in_port=CONTROLLER and actions set_field:<chan-id>->pkt_mark,output:TABLE.
 * Incoming PACKET_INs are handed to a callback with their in_port and
 * pkt_mark.
 */
#ifndef OFCONN_H
#define OFCONN_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-flows.h"

/* Controller id chand-host gives its connection, so that flows can send
 * PACKET_IN to chand-host only: controller(id=CHAND_CONTROLLER_ID). */
#define CHAND_CONTROLLER_ID CHAN_FLOWS_CONTROLLER_ID

/* Called for each PACKET_IN.  'cookie' is that of the flow that sent it.
 * 'frame' is borrowed for the call.
 * 'has_mark' is false if the match carried no pkt_mark. */
typedef void ofconn_packet_in_func(uint64_t cookie, uint32_t in_port,
                                   bool has_mark, uint32_t pkt_mark,
                                   const uint8_t *frame, size_t len,
                                   void *aux);

struct ofconn_stats {
    uint64_t packet_outs;       /* Queued to the socket. */
    uint64_t packet_ins;
    uint64_t tx_dropped;        /* Output buffer full. */
    uint64_t bad_msgs;          /* Undecodable messages from the switch. */
    uint64_t errors;            /* OpenFlow ERROR messages received. */
    uint64_t connects;
};

/* Creates a connection to 'target' (copied), e.g.
 * "unix:/var/run/openvswitch/br-int.mgmt".  The caller owns the result. */
struct ofconn *ofconn_create(const char *target, ofconn_packet_in_func *,
                             void *aux);
void ofconn_destroy(struct ofconn *);

void ofconn_run(struct ofconn *);
void ofconn_wait(struct ofconn *);

/* True once HELLO and SET_ASYNC have been sent on a live connection. */
bool ofconn_is_ready(const struct ofconn *);

/* Changes each time the connection is established or lost. */
unsigned int ofconn_get_seqno(const struct ofconn *);

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
