/*
 * commands: qemu-guest-agent commands translated into chand calls
 * (doc/adapters.md §7, whose table this module implements).
 *
 * qga_execute() runs one qemu-ga command for one VM: it checks the
 * arguments the way qemu-ga does (unknown, missing and ill-typed members,
 * with qemu-ga's error texts), then answers at once (guest-sync,
 * guest-sync-delimited, guest-exec-status) or through one or more calls
 * (calls.h), and reports the outcome exactly once through its callback:
 * a "return" value, or an error class and desc (qga-proto.h's classes;
 * chand's own error classes become GenericError with chand's text, except
 * CommandNotFound).
 *
 * Files.  guest-file-read of up to QGA_READ_INLINE_MAX bytes is one
 * file-read call.  A larger one (up to --max-file-read, far over qemu-ga's
 * 48 MiB) is a file-export call, which has chand-guest set the bytes aside
 * for the channel's file transfer lane, then chand-host's object/fetch of
 * that export into its content store (through chand-host's control
 * socket), then a read of the content there.  guest-file-write splits its
 * data into file-write calls of QGA_WRITE_CHUNK bytes, in order.
 *
 * guest-exec.  qemu-ga answers guest-exec with a pid at once and
 * guest-exec-status polls; a chand exec call answers when the process
 * ends.  So guest-exec starts the call and returns a pid of chand-qga's
 * own (per VM, from QGA_FIRST_PID) after QGA_EXEC_START_MS, or at once if
 * the call ends before (an error then fails guest-exec itself, as
 * qemu-ga's does when the process cannot start: an executable not on the
 * VM's allowlist, exec off), and guest-exec-status answers
 * "exited": false until the call's response is there, then the exit
 * status and output once, after which the pid is forgotten (as qemu-ga
 * does).  The exec is not tied to the client's connection.
 */
#ifndef COMMANDS_H
#define COMMANDS_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct calls;
struct qga_vm;
struct qga_job;

#define QGA_READ_INLINE_MAX (48 * 1024)  /* guest-file-read bytes read by a
                                          * file-read call. */
#define QGA_WRITE_CHUNK (128 * 1024)     /* Bytes of one file-write call. */
#define QGA_FIRST_PID 1000
#define QGA_MAX_EXECS 256                /* Per VM, not yet reaped. */
#define QGA_FETCH_POLL_MS 50
#define QGA_HOST_ANSWER_MS 10000      /* Longest wait for one answer from
                                       * chand-host's control socket. */
#define QGA_EXEC_START_MS 1000         /* guest-exec waits this long for a
                                         * refusal before it returns the
                                         * pid. */

/* What every command needs, shared by all VMs. */
struct qga_env {
    struct calls *calls;
    const char *host_ctl;       /* chand-host's control socket. */
    int64_t call_timeout_ms;    /* One call. */
    int64_t exec_timeout_ms;    /* A guest-exec. */
    int64_t file_timeout_ms;    /* The transfer of one large read. */
    uint64_t max_file_read;     /* Largest guest-file-read. */
    uint64_t max_file_write;    /* Largest guest-file-write. */
};

/* The end of a command: 'ret' (borrowed) on success, else 'class' and
 * 'desc' (borrowed); 'sentinel': the response is preceded by 0xFF. */
typedef void qga_done_cb(void *aux, const json_t *ret, const char *class,
                         const char *desc, bool sentinel);

/* Per-VM state (the guest-exec pids), for VM 'vm' (copied); 'env' is
 * borrowed and must outlive it. */
struct qga_vm *qga_vm_create(const struct qga_env *env, const char *vm);
/* Frees 'vm'; its exec calls are cancelled.  Jobs must be cancelled
 * first.  NULL is ignored. */
void qga_vm_destroy(struct qga_vm *vm);
const char *qga_vm_name(const struct qga_vm *vm);

/* Drives the jobs that wait for chand-host (large reads). */
void qga_vm_run(struct qga_vm *vm);
void qga_vm_wait(struct qga_vm *vm);

/* Runs qemu-ga command 'execute' with 'args' (borrowed; NULL for none) for
 * 'vm'.  'done' is called exactly once, possibly before this returns (then
 * NULL is returned), else later from calls_run() or qga_vm_run(), and the
 * returned job is valid until then.  qga_job_cancel() ends a job without
 * calling back (a client gone). */
struct qga_job *qga_execute(struct qga_vm *vm, const char *execute,
                            const json_t *args, qga_done_cb *done,
                            void *aux);
void qga_job_cancel(struct qga_job *job);

/* The qemu-ga commands served, in the order of the table. */
size_t qga_n_commands(void);
const char *qga_command_name(size_t i);

/* Counters, summed over VMs. */
struct qga_cmd_stats {
    uint64_t commands;          /* qga_execute() calls. */
    uint64_t ok;
    uint64_t errors;            /* Commands that ended in an error. */
    uint64_t bad_args;          /* ...of which: arguments refused here. */
    uint64_t not_found;         /* ...of which: unknown commands. */
    uint64_t large_reads;       /* guest-file-read through the transfer
                                 * lane. */
    uint64_t large_read_bytes;
    uint64_t host_errors;       /* Calls to chand-host's control socket
                                 * that got no answer (refused, timed
                                 * out...). */
};
void qga_get_cmd_stats(struct qga_cmd_stats *);

#endif /* commands.h */
