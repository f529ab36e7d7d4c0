/*
 * chan-mtu: the channel MTU, as both daemons work it out (doc/PROTOCOL.md
 * §4.1).  Pure functions: no I/O.
 *
 * Each side has its own MTU: the configured value ("--mtu=N", or
 * chand-host's Interface external_ids:chand-mtu), capped at what its
 * interfaces carry; or, with "auto" (the default), what its interfaces
 * carry (chand-host: the vNIC's Interface "mtu" column; chand-guest: the
 * smaller of its vNIC's and its internal port's MTU).  It advertises that
 * value to the peer as the "mtu" member of its HELLO, SYNC, HEARTBEAT and
 * ACK payloads, and sends frames (and asks for transfer chunks) no larger
 * than the smaller of its own MTU and the peer's.  A peer that advertises
 * nothing is taken to carry CHAN_WIRE_DEFAULT_MTU (1500), which is what
 * every version before the option used.
 */
#ifndef CHAN_MTU_H
#define CHAN_MTU_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The JSON member that carries an advertised MTU. */
#define CHAN_MTU_MEMBER "mtu"

/* Parses 'text': "auto" stores 0 in '*mtup'; a decimal number in
 * CHAN_WIRE_MIN_MTU..CHAN_WIRE_MAX_MTU (no sign, no leading zeros) stores
 * it.  Returns NULL, or a static English reason on error. */
const char *chan_mtu_parse(const char *text, unsigned int *mtup);

/* A side's own MTU: 'configured' (0: auto) capped at 'detected' (the MTU
 * its interfaces carry, 0 if unknown) and at 'limit' (what its receive or
 * send path can hold at most, 0: no limit), and never outside
 * CHAN_WIRE_MIN_MTU..CHAN_WIRE_MAX_MTU.  Auto with nothing detected is
 * CHAN_WIRE_DEFAULT_MTU. */
unsigned int chan_mtu_local(unsigned int configured, unsigned int detected,
                            unsigned int limit);

/* The MTU that a peer advertises in control payload 'obj' (may be NULL):
 * its "mtu" member, clamped to CHAN_WIRE_MAX_MTU; CHAN_WIRE_DEFAULT_MTU if
 * absent or not an integer of at least CHAN_WIRE_MIN_MTU. */
unsigned int chan_mtu_from_json(const json_t *obj);

/* Adds member "mtu": 'mtu' to object 'obj'. */
void chan_mtu_to_json(json_t *obj, unsigned int mtu);

/* What a side sends with: the smaller of its own MTU and the peer's
 * advertised one ('peer' 0: not heard, CHAN_WIRE_DEFAULT_MTU). */
unsigned int chan_mtu_effective(unsigned int local, unsigned int peer);

/* The record batch size chand-host aims at for a message to fit one frame
 * at 'mtu': the frame's payload less a margin for the batch's JSON
 * framing (1380 bytes at 1500). */
size_t chan_mtu_batch_budget(unsigned int mtu);

#endif /* chan-mtu.h */
