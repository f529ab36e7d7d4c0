/*
 * host: chand-host's top level.  Ties together the provisioning watcher
 * (local Open_vSwitch DB), the flow manager, the OpenFlow connection, the
 * Chan DB client and the channels, and serves the control socket commands.
 * main.c parses options into a struct host_options and runs host_run() and
 * host_wait() in its loop.
 */
#ifndef HOST_H
#define HOST_H 1

#include <stdbool.h>
#include <stdint.h>

#include "channel.h"
#include "chandb.h"
#include "inject.h"
#include "provision.h"

struct host_options {
    const char *ovs_db;         /* Local Open_vSwitch DB remote. */
    const char *chan_db;        /* Chan DB remote. */
    const char *bridge;         /* Host bridge, e.g. "br-int". */
    const char *ovs_rundir;     /* Where <bridge>.mgmt lives. */
    const char *flows;          /* Host flow template file. */
    const char *ctl;            /* Control socket path. */
    struct channel_limits limits;
    unsigned int guest_pps;     /* Guest-to-host meter rate, packets/s. */
    unsigned int guest_burst;   /* ...and burst, packets. */
    long long flow_check_ms;    /* Periodic flow check interval, 0: none. */
    enum inject_mode inject;    /* How frames meet the bridge. */
    const char *chand_port;     /* Name of the chand port, e.g. "chand0". */
    const char *chassis;        /* This chand-host's name in the Chan DB,
                                 * or NULL: the local Open_vSwitch's
                                 * external_ids:system-id, else the host
                                 * name. */
    const char *content_dir;    /* Content store (transfer.h). */
    uint64_t content_cap;       /* Its cap in bytes; 0: the default. */
    uint64_t max_transfer;      /* Largest object; 0: the default. */
    enum chandb_monitor monitor;  /* What of the Chan DB to monitor. */
    unsigned int mtu;           /* --mtu: channels' MTU unless their
                                 * external_ids:chand-mtu says; 0: auto. */
    const char *metrics;        /* --metrics ADDR:PORT to serve metrics on
                                 * over HTTP, or NULL. */
    enum provision_vm_name vm_name;     /* --vm-name-from. */
};

/* Creates the host.  Returns NULL (after logging why) if it cannot start:
 * bad flow template, control socket in use... */
struct host *host_create(const struct host_options *);
void host_destroy(struct host *);
void host_run(struct host *);
void host_wait(struct host *);

/* True once 'exit' was requested on the control socket. */
bool host_exiting(const struct host *);

#endif /* host.h */
