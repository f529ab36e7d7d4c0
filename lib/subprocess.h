/*
 * subprocess: runs a program to completion and captures its output, for the
 * parts of chand that drive command-line tools (ovs-vsctl, ovs-ofctl, ip).
 *
 * The program is started with execvp(): no shell, so arguments need no
 * quoting and are never interpreted.  Its standard input is a file
 * descriptor the caller gives, or /dev/null; its standard output and error
 * go, interleaved, into one buffer.  The call blocks until the program has
 * exited and closed its output, or until an optional timeout.
 *
 * Process groups: with a timeout, the program runs in a process group of
 * its own, and at the timeout the whole group (the program and whatever it
 * started) is killed with SIGKILL.  Without one, it stays in the caller's
 * process group, so that a caller running in a group of its own (as
 * chand-guest's bridge worker does) is killed together with its programs.
 *
 * Blocking: meant for command-line tools and for worker processes, never
 * for a daemon's main loop.
 */
#ifndef SUBPROCESS_H
#define SUBPROCESS_H 1

#include <stddef.h>

/* Output kept by default: 1 MiB. */
#define SUBPROCESS_MAX_OUTPUT (1024 * 1024)

/* subprocess_run() results that are not exit statuses. */
#define SUBPROCESS_ERROR (-1)       /* Not started (pipe, fork, memory). */
#define SUBPROCESS_TIMEOUT (-2)     /* Killed at the timeout. */

struct subprocess_options {
    int input;                  /* Standard input: a file descriptor (left
                                 * open), or -1 for /dev/null. */
    size_t max_output;          /* Output bytes kept; the rest is read and
                                 * discarded.  0: SUBPROCESS_MAX_OUTPUT. */
    int timeout_ms;             /* > 0: kill its process group after this
                                 * long.  0: wait as long as it runs. */
};

/* Runs 'argv' (argv[0] looked up in PATH; 'argv' null-terminated and
 * borrowed) with 'opts' (NULL: standard input /dev/null, the default
 * output limit, no timeout).
 *
 * Returns the program's exit status (0 is success; 127 if it could not be
 * executed, with "cannot run PROGRAM: REASON" in its output), 128 + N if
 * signal N killed it, SUBPROCESS_TIMEOUT if it was killed at the timeout,
 * or SUBPROCESS_ERROR if it could not be started.
 *
 * If 'outp' is nonnull, stores in '*outp' the output (null-terminated,
 * malloc'd, freed by the caller; what was read before a timeout), or NULL
 * on SUBPROCESS_ERROR. */
int subprocess_run(char *const argv[], const struct subprocess_options *opts,
                   char **outp);

#endif /* subprocess.h */
