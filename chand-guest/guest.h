/*
 * guest: chand-guest put together.  Owns the datastore, the guest bridge
 * (unless disabled), the channel socket, the receiver, the local API and
 * the control socket, and runs them from one poll loop:
 *
 *     while (!guest_exiting(g)) {
 *         guest_run(g);
 *         guest_wait(g);
 *         poll_block();
 *     }
 *
 * Control socket commands (besides lib/ctl's built-ins): "guest/status"
 * (the status object as indented JSON), "guest/reload-keys" (reload the
 * key file now; the reply names the generations loaded, or the error) and
 * "exit".
 *
 * The channel keys come from the key file (keyring.h), checked every
 * second and reloaded when it changes.
 *
 * The handler runner (handler.h) runs the handlers of the delivered
 * records that ask for action and publishes their results.
 *
 * The call runner (call.h) answers the requests delivered as "call/<id>"
 * records with "result/call/<id>" records.
 *
 * The publisher (publisher.h) carries what guest applications publish
 * (the local API's "publish" and "unpublish") to the host, with the
 * receiver's key; the receiver hands it the host's ACKs.  Every
 * 'stats_interval' seconds chand-guest publishes its own statistics as the
 * record GUEST_STATS_KEY: {"version", "receiver" and "publisher" (their
 * counters), "datastore_bytes" (the database and its WAL), "records"
 * (delivered by the host), "published" (records published, not
 * withdrawn), "pending" (published rows not yet acknowledged), "uptime"
 * (the daemon's, seconds), "system_uptime" (seconds, or null), "loadavg"
 * ([1, 5, 15 minutes] from /proc/loadavg, or null)}, plus "kvp" (the KVP
 * view's counters) with --kvp-prefix.
 */
#ifndef GUEST_H
#define GUEST_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan-endpoint.h"

#define GUEST_STATS_KEY "stats/chand-guest"
#define GUEST_DEFAULT_STATS_INTERVAL 10     /* Seconds. */

struct guest_options {
    struct chan_config chan;    /* Channel identifiers and endpoints. */
    const char *db;             /* Datastore file; its directory is
                                 * created if missing. */
    bool no_bridge;             /* Do not touch Open vSwitch. */
    const char *ovs_db;         /* Guest OVSDB remote. */
    const char *ovs_rundir;     /* Where BRIDGE.mgmt is. */
    const char *bridge;         /* Guest bridge name. */
    const char *vnic;           /* The VM's NIC. */
    const char *port;           /* chand-guest's internal port. */
    unsigned int mtu;           /* --mtu; 0: auto (chan-mtu.h). */
    const char *flows;          /* Guest flow template. */
    const char *api;            /* Local API socket ("@name" or path). */
    const char *ctl;            /* Control socket ("@name" or path). */
    const char *key_file;       /* Channel key file (keyring.h). */
    unsigned int stats_interval;    /* Seconds between statistics records;
                                     * 0: none. */
    const char *watch_dir;      /* Directory whose files are kept
                                 * registered as objects (watch.h), or
                                 * NULL. */
    const char *handlers_dir;   /* Handlers (handler.h). */
    const char *handler_user;   /* Or NULL: chand-guest's own user. */
    unsigned int handler_timeout;   /* Seconds. */
    unsigned int handlers_max;      /* Concurrent runs. */
    const char *quarantine_dir; /* For the handlers, or NULL. */
    const char *content_dir;    /* Content store (transfer.h), or NULL:
                                 * "content" next to the datastore. */
    const char *install_dir;    /* Or NULL: the default. */
    uint64_t max_transfer;      /* Bytes; 0: the default (1 GiB). */
    const char *kvp_prefix;     /* Records shown in the Hyper-V KVP pools
                                 * (kvp.h), or NULL: no KVP view. */
    const char *kvp_dir;        /* The pools' directory, or NULL: the
                                 * default. */
    const char *exec_allow;     /* The calls' exec allowlist file, or NULL:
                                 * exec is refused (call.h). */
};

struct guest;

/* Creates everything; the first bridge setup runs to its end (or is
 * stopped at its deadline, bridge.h) before this returns (a failure there
 * is retried later, not fatal), so that a daemon that reports itself ready
 * has its flows installed if Open vSwitch is up.  From then on the bridge
 * is set up and checked in the background: guest_run() never waits for
 * Open vSwitch.  An invalid key file is an error; a missing one means no keys.
 * Returns the new guest, or NULL with the reason logged.  'opts' is
 * copied (strings too). */
struct guest *guest_create(const struct guest_options *opts);
void guest_destroy(struct guest *);

void guest_run(struct guest *);
void guest_wait(struct guest *);

/* True once "exit" was requested on the control socket. */
bool guest_exiting(const struct guest *);

/* Returns a new JSON object: the session state, keys and counters (see
 * receiver_status_json()) at the top level, plus the channel
 * configuration, "records", and "bridge", "api", "socket", "key_file"
 * (keyring_file_status_json()) and "publisher"
 * (publisher_status_json()) objects, "watch" (watch_status_json(), or
 * null without --watch-dir), "handlers" (handler_status_json()), "kvp"
 * (kvp_status_json(), or null without --kvp-prefix) and "calls"
 * (call_status_json()). */
json_t *guest_status_json(const struct guest *);

#endif /* guest.h */
