/*
 * daemon: the few things every chand daemon does to become one: detach
 * from the terminal and write a pidfile, the way Open vSwitch daemons do
 * (--detach, --pidfile).
 *
 * daemon_detach_start() forks; the parent waits until the child calls
 * daemon_detach_finish() (after it has opened its sockets), so that when the
 * command returns the daemon is ready to serve.  If the child exits before,
 * the parent exits with the child's status.
 */
#ifndef DAEMON_H
#define DAEMON_H 1

#include <stdbool.h>

/* Forks into the background: returns in the child only.  The parent exits
 * 0 once the child calls daemon_detach_finish(), or the child's exit status
 * if it dies first. */
void daemon_detach_start(void);

/* Tells the waiting parent that the daemon is ready, detaches from the
 * session and redirects standard input/output/error to /dev/null.  Does
 * nothing if daemon_detach_start() was not called. */
void daemon_detach_finish(void);

/* Writes the current pid to 'path' (atomically, via a temporary file).
 * Returns 0 or an errno. */
int daemon_write_pidfile(const char *path);

/* A daemon's top level, for daemon_run(). */
struct daemon_class {
    /* Creates the daemon's state from 'opts' (its own options struct);
     * returns NULL, after logging why, if it cannot start. */
    void *(*create)(const void *opts);
    void (*run)(void *);
    void (*wait)(void *);
    bool (*exiting)(const void *);
    void (*destroy)(void *);
};

/* Defines 'static const struct daemon_class NAME##_class' for a daemon whose
 * state is a 'struct NAME' driven by NAME##_run(), NAME##_wait(),
 * NAME##_exiting() and NAME##_destroy() (the usual chand daemon life cycle),
 * plus CREATE, a 'void *CREATE(const void *opts)' that returns a new 'struct
 * NAME' (owned by daemon_run()) or NULL.  The class's functions are small
 * trampolines from 'void *' to 'struct NAME *'. */
#define DAEMON_CLASS_DEFINE(NAME, CREATE)                               \
    static void                                                         \
    NAME##_run__(void *d)                                               \
    {                                                                   \
        NAME##_run(d);                                                  \
    }                                                                   \
    static void                                                         \
    NAME##_wait__(void *d)                                              \
    {                                                                   \
        NAME##_wait(d);                                                 \
    }                                                                   \
    static bool                                                         \
    NAME##_exiting__(const void *d)                                     \
    {                                                                   \
        return NAME##_exiting(d);                                       \
    }                                                                   \
    static void                                                         \
    NAME##_destroy__(void *d)                                           \
    {                                                                   \
        NAME##_destroy(d);                                              \
    }                                                                   \
    static const struct daemon_class NAME##_class = {                   \
        CREATE, NAME##_run__, NAME##_wait__, NAME##_exiting__,          \
        NAME##_destroy__,                                               \
    }

/* Runs a daemon to the end: detaches if 'detach' (the command returns once
 * 'class->create' succeeded), handles SIGTERM/SIGINT/SIGHUP, writes
 * 'pidfile' (if nonnull) once started, loops on run/wait/poll_block until a
 * fatal signal or 'class->exiting', then destroys it and removes the
 * pidfile.  Returns the process exit status: 0, or 1 if it could not
 * start. */
int daemon_run(const struct daemon_class *class, const void *opts,
               bool detach, const char *pidfile);

#endif /* daemon.h */
