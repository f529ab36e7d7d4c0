/*
 * ctl: a daemon's local control socket, after Open vSwitch's unixctl.
 *
 * A daemon registers commands with ctl_command_register() and serves them
 * on a Unix socket (a file path, or "@name" for an abstract socket) with
 * ctl_server_create() and ctl_server_run()/ctl_server_wait() in its main
 * loop.  Clients (chanctl) send JSON-RPC 1.0 requests
 *     {"method": "channel/list", "params": ["arg", ...], "id": N}
 * where every param is a string, and get back a reply whose "result" is a
 * string (the command's output), or an error whose "error" is a string.
 *
 * A callback must answer each call exactly once, with ctl_command_reply()
 * or ctl_command_reply_error(), either before returning or later (keep the
 * struct ctl_conn pointer; it stays valid until the reply, even if the
 * client goes away, and replying to a vanished client is harmless).  While
 * a call is outstanding, further requests on that connection wait.
 *
 * Built-in commands: "list-commands", "version", "ctl/stats".  Other
 * modules register their own (lib/vlog: "vlog/set", "vlog/list",
 * "vlog/reopen", at vlog_init()).
 *
 * Hostile input is counted and answered with an error, never fatal: bad
 * JSON or an oversized message closes the connection (the byte stream
 * cannot be resynchronized); a well-formed but invalid request (not a
 * request, params not all strings, unknown command, wrong number of
 * arguments) gets an error reply and the connection stays open.  At most
 * CTL_MAX_CONNS connections are served at once; more are refused.
 * Requests are capped at CTL_MAX_MSG bytes.  Only root and the server's own
 * effective uid may connect (checked with SO_PEERCRED, since abstract
 * sockets have no file permissions); others are disconnected at once.
 */
#ifndef CTL_H
#define CTL_H 1

#include <stddef.h>
#include <stdint.h>

struct ctl_conn;
struct ctl_server;

#define CTL_MAX_CONNS 64
#define CTL_MAX_MSG (1024 * 1024)
#define CTL_MAX_ARGS 256

/* Handles one command.  'argv[0]' is the command name, 'argv[1..argc-1]'
 * its arguments; all borrowed and valid only during the call.  Must arrange
 * for exactly one reply on 'conn' (see above). */
typedef void ctl_cb_func(struct ctl_conn *conn, int argc, const char *argv[],
                         void *aux);

/* Registers command 'name' with 'usage' (a short argument synopsis for
 * list-commands, may be NULL), accepting 'min_args'..'max_args' arguments
 * (not counting the name; max_args may be INT_MAX), handled by 'cb' with
 * 'aux'.  'name' and 'usage' are copied.  Registering a name again replaces
 * the earlier registration.  Registrations are process-wide and shared by
 * all servers. */
void ctl_command_register(const char *name, const char *usage,
                          int min_args, int max_args, ctl_cb_func *cb,
                          void *aux);

/* Removes command 'name' (no-op if not registered). */
void ctl_command_unregister(const char *name);

/* Replies to the call on 'conn' with 'body' (copied; NULL means "").  The
 * conn must not be used afterwards. */
void ctl_command_reply(struct ctl_conn *conn, const char *body);
/* Replies with an error message 'body' (copied; NULL means ""). */
void ctl_command_reply_error(struct ctl_conn *conn, const char *body);

/* Sets the string that "version" reports (copied; default PACKAGE_STRING). */
void ctl_set_version(const char *version);

/* Creates a server listening on 'path': a file path (removing a stale
 * socket, creating the directory 0755 if missing) or "@name" for an
 * abstract socket.  A "punix:" prefix is accepted too.  Returns the new
 * server, or NULL with the reason logged and errno set (EINVAL for a NULL
 * or empty 'path'). */
struct ctl_server *ctl_server_create(const char *path);

void ctl_server_run(struct ctl_server *);
void ctl_server_wait(struct ctl_server *);

/* Closes all connections and the listener (unlinking the socket file) and
 * frees 'server'.  Outstanding calls' conns stay valid until replied to;
 * the replies are discarded.  NULL is allowed. */
void ctl_server_destroy(struct ctl_server *);

/* The pstream name the server listens on (e.g. "punix:/run/chand/x.ctl").
 * Owned by the server. */
const char *ctl_server_get_name(const struct ctl_server *);

struct ctl_server_stats {
    uint64_t n_conns_accepted;  /* Connections accepted. */
    uint64_t n_conns_refused;   /* Refused because CTL_MAX_CONNS reached. */
    uint64_t n_conns_unauthorized; /* Refused: peer neither root nor our
                                    * effective uid (SO_PEERCRED). */
    uint64_t n_requests;        /* Valid requests dispatched to commands. */
    uint64_t n_bad_json;        /* Unparseable input (connection closed). */
    uint64_t n_oversized;       /* Messages over CTL_MAX_MSG (closed). */
    uint64_t n_bad_requests;    /* Not a request, or params not strings. */
    uint64_t n_unknown_commands;
    uint64_t n_bad_arg_counts;
    uint64_t n_errors_replied;  /* Error replies sent, of any cause. */
    unsigned int n_conns;       /* Currently open connections. */
};

/* Copies 'server''s counters into '*stats'. */
void ctl_server_get_stats(const struct ctl_server *,
                          struct ctl_server_stats *stats);

/* Client side, blocking, for command-line tools.
 *
 * Connects to the control socket at 'path' (same syntax as
 * ctl_server_create(); "unix:" prefix accepted too), sends 'command' with
 * the 'argc' strings in 'argv' (borrowed) as params, and waits for the
 * answer.  Returns 0 once an answer arrived: then exactly one of
 * '*resultp' (success) and '*errorp' (the command's error text) is a new
 * malloc'd string the caller frees, the other NULL.  Returns a positive
 * errno if the exchange itself failed (connection refused, EPROTO for a
 * malformed reply, ...), with both set to NULL. */
int ctl_client_transact(const char *path, const char *command, int argc,
                        char *argv[], char **resultp, char **errorp);

/* Client side, non-blocking, for daemons: one call, driven from a main
 * loop, that gives up at a deadline.
 *
 * ctl_call_start() connects to the control socket at 'path' (as
 * ctl_client_transact()) and sends 'command' with the 'argc' strings in
 * 'argv' (borrowed), without waiting; a time_msec() past 'deadline' ends
 * the call with ETIMEDOUT.  Never returns NULL: a call that cannot start
 * has already ended with its errno.  The caller owns the call and frees it
 * with ctl_call_destroy(), which may come at any time (an unanswered
 * request's connection is closed).
 *
 * ctl_call_run() returns EAGAIN while the answer has not come, otherwise
 * as ctl_client_transact(): 0 with exactly one of '*resultp' and '*errorp'
 * a new malloc'd string the caller frees, or a positive errno (ETIMEDOUT,
 * ECONNRESET, ECONNREFUSED, ENOENT, EPROTO...) with both NULL.  Once it
 * returned something other than EAGAIN, the call has ended; run it no
 * more.  ctl_call_wait() arranges for poll_block() to wake when
 * ctl_call_run() has something new to say (at once, if the call ended). */
struct ctl_call;
struct ctl_call *ctl_call_start(const char *path, const char *command,
                                int argc, char *argv[], long long deadline);
int ctl_call_run(struct ctl_call *, char **resultp, char **errorp);
void ctl_call_wait(const struct ctl_call *);
void ctl_call_destroy(struct ctl_call *);

#endif /* ctl.h */
