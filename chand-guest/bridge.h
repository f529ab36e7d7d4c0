/*
 * bridge: chand-guest's bridge on the guest's own Open vSwitch.
 *
 * The guest bridge (default br-chan, datapath_type=netdev, OpenFlow13,
 * fail_mode=secure) holds the VM's vNIC (default eth0: the userspace
 * datapath reads it with AF_PACKET, so the guest kernel keeps seeing every
 * frame and the VM's own networking is unaffected) and chand-guest's
 * internal port (default chand0) carrying the guest endpoint's MAC and IP.
 * The bridge belongs to chand entirely: its flows are exactly those
 * rendered from flows/guest.flows, installed with `ovs-ofctl --bundle
 * replace-flows`, which move channel frames between the two ports (untag
 * towards chand0, tag towards the vNIC) and drop everything else.
 *
 * Setting the bridge up adds it and its ports (idempotently: ovs-vsctl
 * --may-exist), reads the two OpenFlow port numbers back (waiting up to
 * BRIDGE_OFPORT_WAIT_MS for them), configures chand0 with `ip`, and
 * installs the flows.  Once set up, every check interval (BRIDGE_CHECK_MS)
 * the bridge is checked: chand0 must be the same interface with its
 * address (looked up in-process) and the bridge must hold exactly the
 * expected flows (`ovs-ofctl dump-flows`, whose n_packets also give the
 * counted flows' totals, e.g. "isolation_drops").  An ovs-vswitchd restart
 * loses the flows and recreates chand0; a failed check is logged and the
 * bridge set up again at once.
 *
 * The caller never waits for Open vSwitch.  A setup or a check (the part
 * that runs programs) runs in a child process, the worker, one at a time:
 * it runs ovs-vsctl, ovs-ofctl and ip (each with --timeout=10 where the
 * program has one) and reports what the parent needs on a pipe (the port
 * numbers and chand0's ifindex; the dump-flows output), and exits.
 * bridge_run() starts workers and reads their reports without blocking;
 * all the state (ready, seqno, ofports, expected cookies, counters, last
 * error) lives in the caller's process and changes only in bridge_run().
 * A worker still running at its deadline (the setup or check timeout) is
 * killed together with its process group, and counts as a failure.  A
 * worker holds none of its parent's file descriptors but the pipe, and is
 * killed if its parent dies.  So a wedged or stopped ovs-vswitchd delays
 * only the bridge: bridge_run() returns at once, and the caller's loop
 * (acks, the local API) keeps running.
 *
 * Failed setups are retried with lib/reconnect's backoff: the first retry
 * after BRIDGE_RETRY_MIN_MS, each further one doubling, up to
 * BRIDGE_RETRY_MAX_MS.  After a failed check the setup starts at once; the
 * backoff starts over if the bridge had been ready for BRIDGE_RETRY_MAX_MS.
 *
 * The flows are rendered by chan_flows_render_guest() (lib/chan-flows.h).
 * bridge_parse_report() and bridge_compare_flows() are pure.
 */
#ifndef BRIDGE_H
#define BRIDGE_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"
#include "flow-template.h"

/* Defaults of the timing in struct bridge_config, in ms. */
#define BRIDGE_CHECK_MS 5000            /* Period of the check. */
#define BRIDGE_SETUP_TIMEOUT_MS 30000   /* A setup is stopped after this. */
#define BRIDGE_CHECK_TIMEOUT_MS 15000   /* A check is stopped after this. */
#define BRIDGE_RETRY_MIN_MS 1000        /* First retry after a failed setup. */
#define BRIDGE_RETRY_MAX_MS 10000       /* Retry backoff ceiling. */

#define BRIDGE_OFPORT_WAIT_MS 10000     /* How long a setup waits for
                                         * OpenFlow port numbers. */

struct bridge_config {
    const char *ovs_db;         /* OVSDB remote, e.g. "unix:/var/run/
                                 * openvswitch/db.sock". */
    const char *ovs_rundir;     /* Where BRIDGE.mgmt is. */
    const char *bridge;         /* Bridge name, e.g. "br-chan". */
    const char *vnic;           /* The VM's NIC, e.g. "eth0". */
    const char *port;           /* chand-guest's port, e.g. "chand0". */
    const char *flows;          /* Template file (flows/guest.flows). */
    struct chan_config chan;    /* The channel (its chan_id is used for
                                 * the flows' cookies). */

    /* Timing in ms; 0 means the default (BRIDGE_*).  Tests shorten it. */
    int check_ms;               /* Check period. */
    int setup_timeout_ms;       /* Deadline of a setup's worker. */
    int check_timeout_ms;       /* Deadline of a check's worker. */
    int retry_min_ms;           /* Setup retry backoff, first... */
    int retry_max_ms;           /* ...and largest. */
};

struct bridge;

/* Returns true if 'name' is usable as a Linux interface or OVS bridge name
 * (1..15 bytes of [A-Za-z0-9_.-], not starting with '-', not "." or
 * ".."). */
bool bridge_name_is_valid(const char *name);

/* Checks 'config' (copied) and loads and checks the template.  Does not
 * touch Open vSwitch yet.  Returns the new bridge (the caller frees it
 * with bridge_destroy()), or NULL with the reason logged and errno set. */
struct bridge *bridge_create(const struct bridge_config *config);

/* Frees the bridge; a running worker is killed (with its process group)
 * and reaped.  The guest bridge itself is left as it is. */
void bridge_destroy(struct bridge *);

/* Takes the report of a worker that is done (or kills one past its
 * deadline) and starts a setup or a check if it is time to.  Never waits
 * for the worker or for Open vSwitch. */
void bridge_run(struct bridge *, long long now);

/* Makes the next poll_block() wake when bridge_run() has something to do:
 * the worker wrote or ended, its deadline, or the next setup or check. */
void bridge_wait(const struct bridge *, long long now);

/* When bridge_run() next has something to do by the clock (the worker's
 * deadline while one runs; at least 'now'). */
long long bridge_next_wakeup(const struct bridge *, long long now);

/* True while a setup or check runs in a worker. */
bool bridge_is_busy(const struct bridge *);

/* True if the last setup succeeded and no check has failed since. */
bool bridge_is_ready(const struct bridge *);

/* A number that changes after every successful setup: chand0 may be a new
 * interface, so a socket bound to it must be bound again. */
unsigned int bridge_get_seqno(const struct bridge *);

/* Returns a new JSON object describing the bridge and its counters:
 * "bridge", "ready", "vnic", "vnic_ofport", "port", "port_ofport",
 * "flows" (how many are expected), "flow_template", "setups",
 * "setup_failures", "checks", "check_failures", "last_error" (why the last
 * setup or check failed; "" after a successful setup), "isolation_drops",
 * "task" ("setup" or "check" while a worker runs, else null), "task_ms"
 * (how long it has run), "backoff_ms" (the current retry backoff) and
 * "next_run_ms" (time to the next setup or check; 0 while one runs). */
json_t *bridge_status_json(const struct bridge *, long long now);

/* A worker's report, parsed.  The worker writes lines:
 *
 *     log TEXT             any number; the parent logs them (debug level)
 *     ofports VNIC PORT    a setup's two OpenFlow port numbers
 *     ifindex N            a setup's chand0 interface index
 *     dump LEN             a check's `ovs-ofctl dump-flows` output: LEN
 *                          bytes follow, then a newline
 *     ok                   last: success
 *     error TEXT           last: failure, and why
 */
struct bridge_report {
    bool ok;                    /* "ok" (else "error"). */
    char error[256];            /* TEXT of "error", or "". */
    int64_t vnic_ofport;        /* From "ofports", or 0. */
    int64_t chand_ofport;
    unsigned int ifindex;       /* From "ifindex", or 0. */
    const char *dump;           /* The "dump" bytes, null-terminated, in
                                 * the parsed text; or NULL. */
};

/* Called with the TEXT of each "log" line. */
typedef void bridge_report_log_func(const char *text, void *aux);

/* Parses the 'len' bytes at 'text' (modified: line ends become NULs) into
 * '*r', calling 'log' (if nonnull) for each "log" line.  Returns true if
 * the report is complete and well formed (one outcome line, last);
 * otherwise false (a worker killed or garbled), with '*r' unspecified. */
bool bridge_parse_report(char *text, size_t len, struct bridge_report *r,
                         bridge_report_log_func *log, void *aux);

/* Compares the cookies of the flows in 'dump' (`ovs-ofctl dump-flows`
 * output, null-terminated) with the 'n' expected cookies at 'expected'
 * (sorted, ascending): stores in '*missing' how many expected cookies have
 * no flow, and in '*extra' how many flows have no expected cookie (each
 * flow counts; a cookie twice on the bridge is one extra). */
void bridge_compare_flows(const uint64_t *expected, size_t n,
                          const char *dump, size_t *missing, size_t *extra);

#endif /* bridge.h */
