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

#endif /* daemon.h */
