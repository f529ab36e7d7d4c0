/*
 * inject: how chand-host's frames enter and leave the host bridge.
 *
 * Two paths, chosen at run time (doc/ovs-port.md):
 *
 *   - OpenFlow: frames go in as PACKET_OUT (in_port=CONTROLLER) and come
 *     back as PACKET_IN, on chand-host's OpenFlow connection.  Works with
 *     stock Open vSwitch.
 *
 *   - The chand port: with an ovs-vswitchd built with ovs-patches/ (its
 *     Open_vSwitch row lists "chand" in iface_types), chand-host creates a
 *     port of type chand on the bridge (default name chand0) and exchanges
 *     frames with their pkt_mark over the port's Unix socket, in batches,
 *     through the datapath's fast path.  The port is created as an access
 *     port of VLAN 4095, a vid that never carries traffic, so that NORMAL
 *     floods never reach it (OpenFlow 1.3 has no no-flood flag).
 *
 * With --inject=auto (the default) the port is used whenever ovs-vswitchd
 * supports it; --inject=port says so too, but logs an error when it has to
 * fall back; --inject=openflow never uses the port.  Each decision is
 * logged once, when it changes.  The flows are the same template for both
 * (INJECT_PORT and TO_HOST, see lib/chan-flows.h): inject_ofport() is what
 * they are rendered with.  While the port's socket is down, frames go as
 * PACKET_OUT with in_port=<the port>, which the same flows accept.
 *
 * The module reads the local Open_vSwitch database through chand-host's
 * replica (inject_add_columns() declares what it needs) and writes to it
 * only to create its port or set the port's VLAN.
 */
#ifndef INJECT_H
#define INJECT_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-port.h"

struct ofconn;
struct ovsdb_replica;

enum inject_mode {
    INJECT_AUTO,                /* The port if supported, else OpenFlow. */
    INJECT_PORT,                /* The same, but a fallback is an error. */
    INJECT_OPENFLOW,            /* Always OpenFlow. */
};

/* The VLAN of the chand port (an access port): none of the channels'. */
#define INJECT_PORT_VLAN 4095

/* Parses "auto", "port" or "openflow".  Returns true on success. */
bool inject_mode_from_string(const char *, enum inject_mode *);
const char *inject_mode_to_string(enum inject_mode);

/* Declares the columns inject_run() reads on 'ovs', which must not be
 * connected yet, beyond those chand-host replicates for provisioning
 * (Bridge name and ports, Port name and interfaces, Interface name and
 * ofport). */
void inject_add_columns(struct ovsdb_replica *ovs);

/* Creates the injection path manager for bridge 'bridge', chand port
 * 'port_name' and OVS run directory 'ovs_rundir' (all copied).  Frames
 * received from the chand port are passed to 'recv_cb' with 'aux'.  It
 * starts on the OpenFlow path; inject_run() switches.  Caller owns the
 * result. */
struct inject *inject_create(enum inject_mode, const char *bridge,
                             const char *port_name, const char *ovs_rundir,
                             chan_port_recv_func *recv_cb, void *aux);
void inject_destroy(struct inject *);

/* Decides the path from the replica 'ovs' (once it is synced), creates or
 * fixes the chand port if needed, and runs the port's connection.  'now' is
 * time_msec(). */
void inject_run(struct inject *, struct ovsdb_replica *ovs, long long now);
void inject_wait(struct inject *);

/* The chand port's ofport if frames go through the port, 0 if through
 * OpenFlow.  Changes when inject_run() switches paths. */
int64_t inject_ofport(const struct inject *);

/* The largest MTU the channels want ('mtu', 0: none above the default): on
 * the chand port path, chand-host asks for it on the port (Interface
 * mtu_request) if the port's MTU is smaller. */
void inject_set_mtu(struct inject *, unsigned int mtu);

/* The largest IP MTU the path takes now: the chand port's MTU on that
 * path, 0 (no limit) on the OpenFlow path. */
unsigned int inject_max_mtu(const struct inject *);

/* Sends 'frame' (borrowed, 'len' bytes) marked 'pkt_mark': through the
 * chand port if it is in use and connected, otherwise as a PACKET_OUT on
 * 'of' (with in_port CONTROLLER, or the chand port while its socket is
 * down).  Returns 0, ENOTCONN, ENOBUFS or EMSGSIZE, as ofconn_send_frame(). */
int inject_send(struct inject *, struct ofconn *of, uint32_t pkt_mark,
                const uint8_t *frame, size_t len);

/* Sends what inject_send() queued on the chand port. */
void inject_flush(struct inject *);

/* A new JSON object describing the path for host/status: "path" ("port" or
 * "openflow"), "mode", "reason" (why OpenFlow), and for the port its name,
 * ofport, socket, connection state and counters. */
json_t *inject_status(const struct inject *);

#endif /* inject.h */
