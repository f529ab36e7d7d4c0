/*
 * daemon: the few things every chand daemon does to become one: take the
 * same daemon options (--log-file, --pidfile, --detach, --vlog, -v, -h,
 * -V), detach from the terminal and write a pidfile, the way Open vSwitch
 * daemons do.
 *
 * daemon_detach_start() forks; the parent waits until the child calls
 * daemon_detach_finish() (after it has opened its sockets), so that when the
 * command returns the daemon is ready to serve.  If the child exits before,
 * the parent exits with the child's status.
 */
#ifndef DAEMON_H
#define DAEMON_H 1

#include <stdbool.h>

/* The command-line options every chand daemon takes, parsed the same way by
 * each: --log-file, --pidfile, --detach, --vlog, -v/--verbose, -h/--help and
 * -V/--version.  A daemon's main() lists DAEMON_LONG_OPTIONS in its
 * getopt_long() table, passes DAEMON_SHORT_OPTIONS as its short options,
 * hands every value getopt_long() returns that is not one of its own
 * options to daemon_parse_option() (the switch's default case), then calls
 * daemon_parse_end() and finally daemon_run():
 *
 *     struct daemon_options dopts = DAEMON_OPTIONS_INIT("chand-x", usage);
 *     ...
 *     while ((c = getopt_long(argc, argv, DAEMON_SHORT_OPTIONS,
 *                             long_options, NULL)) != -1) {
 *         switch (c) {
 *         case OPT_FOO: ...; break;
 *         default:
 *             status = daemon_parse_option(&dopts, c, optarg);
 *             if (status >= 0) {
 *                 return status;
 *             }
 *             break;
 *         }
 *     }
 *     if (daemon_parse_end(&dopts, argc, argv)) {
 *         return 2;
 *     }
 *
 * The daemon's usage text documents the common options itself, since each
 * words them a little differently. */
struct daemon_options {
    /* Set by the daemon, e.g. with DAEMON_OPTIONS_INIT. */
    const char *program;        /* Program name, for messages and -V. */
    void (*usage)(void);        /* Prints the --help text to stdout. */

    /* Set by daemon_parse_option().  The strings are the caller's argv. */
    const char *log_file;       /* --log-file=FILE, or NULL. */
    const char *pidfile;        /* --pidfile=FILE, or NULL. */
    bool detach;                /* --detach. */
};

#define DAEMON_OPTIONS_INIT(PROGRAM, USAGE)     \
    { .program = (PROGRAM), .usage = (USAGE) }

/* getopt_long() values of the long options without a short form, above
 * those of any daemon's own options (which start at 256). */
enum {
    DAEMON_OPT_LOG_FILE = 0x10000,
    DAEMON_OPT_PIDFILE,
    DAEMON_OPT_DETACH,
    DAEMON_OPT_VLOG,
};

#define DAEMON_SHORT_OPTIONS "vhV"

/* The common long options, for a daemon's getopt_long() table.  Where
 * they stand in the table matters only to the order in which getopt_long()
 * lists the candidates of an ambiguous abbreviation ("--v"). */
#define DAEMON_LONG_OPTIONS                                             \
    { "log-file", required_argument, NULL, DAEMON_OPT_LOG_FILE },       \
    { "pidfile", required_argument, NULL, DAEMON_OPT_PIDFILE },         \
    { "detach", no_argument, NULL, DAEMON_OPT_DETACH },                 \
    { "vlog", required_argument, NULL, DAEMON_OPT_VLOG },               \
    { "verbose", no_argument, NULL, 'v' },                              \
    { "help", no_argument, NULL, 'h' },                                 \
    { "version", no_argument, NULL, 'V' }

/* Handles 'c', a value getopt_long() returned that is none of the daemon's
 * own options: one of the common options (with its argument 'arg'), or
 * '?' for an unknown option or a missing or extra argument (getopt_long()
 * already said what was wrong).  Returns -1 if parsing goes on, otherwise
 * the status with which the program exits right away: 0 after printing
 * --help or --version, 2 after printing a bad --vlog value or a hint to use
 * --help. */
int daemon_parse_option(struct daemon_options *, int c, const char *arg);

/* Checks that no argument is left after the options, once getopt_long()
 * returned -1.  Returns 0, or 2 after printing the first such argument. */
int daemon_parse_end(const struct daemon_options *, int argc,
                     char *argv[]);

/* Prints the "Daemon:" paragraph of a daemon's --help: the common options,
 * one line each, as every chand daemon words them.  'vlog_module' is one of
 * the daemon's log modules, named in the example of --vlog. */
void daemon_usage(const char *vlog_module);

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

/* Runs a daemon to the end, as 'dopts' says: opens the log file (if
 * any), detaches if 'dopts->detach' (the command returns once
 * 'class->create' succeeded), handles SIGTERM/SIGINT/SIGHUP, writes the
 * pidfile (if any) once started, loops on run/wait/poll_block until a fatal
 * signal or 'class->exiting', then destroys it and removes the pidfile.
 * 'opts' is the daemon's own options, for 'class->create'.  Returns the
 * process exit status: 0, or 1 if it could not start. */
int daemon_run(const struct daemon_class *class, const void *opts,
               const struct daemon_options *dopts);

#endif /* daemon.h */
