/*
 * qga: chand-qga's top level.  Keeps one qemu-ga socket (endpoint.h) per
 * VM that has a channel, in step with the Chan DB's Channel and VM_Id
 * rows, and serves the control socket (qga/list, qga/stats).  main.c
 * parses options into a struct qga_options and runs the daemon with
 * daemon_run().
 *
 * Which VMs: every VM with a Channel row that is not "released" (with
 * --chassis, only rows of that chassis).  The socket of VM NAME is
 * DIR/NAME.sock; with --socket-name=KIND (a VM_Id kind such as
 * libvirt-uuid) it is DIR/ID.sock with the VM's current id of that kind,
 * and a VM without one has no socket.  Sockets come and go with the rows;
 * a VM's exec pids go with its socket.
 */
#ifndef QGA_H
#define QGA_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"

struct qga_options {
    const char *chan_db;        /* Chan DB remote(s). */
    const char *socket_dir;     /* Where the sockets are. */
    const char *socket_name;    /* "vm", or a VM_Id kind. */
    const char *chassis;        /* Only this chassis's VMs, or NULL. */
    const char *host_ctl;       /* chand-host's control socket. */
    const char *ctl;            /* Our own control socket. */
    int64_t call_timeout_ms;
    int64_t exec_timeout_ms;
    int64_t file_timeout_ms;
    uint64_t max_request;       /* Bytes of one qemu-ga request. */
    uint64_t max_file_read;
    uint64_t max_file_write;
};

struct qga;

void *qga_create(const void *opts);
void qga_run(struct qga *);
void qga_wait(struct qga *);
bool qga_exiting(const struct qga *);
void qga_destroy(struct qga *);

#endif /* qga.h */
