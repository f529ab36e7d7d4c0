/*
 * vlog: per-module, rate-limited logging, after Open vSwitch's lib/vlog.
 *
 * Each .c file that logs says VLOG_DEFINE_THIS_MODULE(name); once at file
 * scope and then uses VLOG_ERR/WARN/INFO/DBG(fmt, ...).  A module registers
 * itself at program start-up through a constructor function, so no linker
 * tricks are needed.  MODULE is a C identifier (e.g. chand_host) and must be
 * unique within a program.
 *
 * Every module has one level (off, err, warn, info, dbg; default info):
 * messages at a level more verbose than the module's are dropped cheaply.
 * Levels are set from strings such as "ANY:info", "jsonrpc:dbg",
 * "ctl:off" or a comma/space separated list of those (module and level
 * names are case-insensitive).
 *
 * Lines look like
 *     2026-11-22T00:00:00.123Z|00042|module|INFO|message
 * (UTC wall-clock time, a per-process sequence number, module, level) and go
 * to stderr and, after vlog_set_log_file(), also to a log file.  Newlines in
 * messages are written as-is; callers keep messages on one line.
 *
 * Rate limiting has OVS semantics: a struct vlog_rate_limit is a token
 * bucket of 'burst' messages refilled at 'rate' messages per minute; a
 * message that finds the bucket empty is dropped and counted, and the count
 * is reported with the next message that gets through.  The whole module is
 * single-threaded, like poll-loop.
 */
#ifndef VLOG_H
#define VLOG_H 1

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum vlog_level {
    VLL_OFF,
    VLL_ERR,
    VLL_WARN,
    VLL_INFO,
    VLL_DBG,
    VLL_N_LEVELS
};

/* "off", "err", "warn", "info", "dbg".  Returns NULL for an invalid
 * level. */
const char *vlog_get_level_name(enum vlog_level);
/* Parses a level name ("off", "err", "warn", "info", "dbg"; also "emer" as
 * err and "debug" as dbg).  Returns the level, or -1 if 'name' is not
 * one. */
int vlog_get_level_val(const char *name);

struct vlog_module {
    const char *name;
    enum vlog_level level;
    struct vlog_module *next;   /* Private to vlog.c. */
};

/* Adds 'm' to the list of modules (called by VLOG_DEFINE_THIS_MODULE's
 * constructor; 'm' must live forever).  Takes the level of an earlier
 * "ANY:" setting, if any. */
void vlog_insert_module(struct vlog_module *m);

/* Finds a registered module by name, or NULL. */
struct vlog_module *vlog_module_from_name(const char *name);

#define VLOG_DEFINE_THIS_MODULE(MODULE)                                 \
    static struct vlog_module this_module_ = {                          \
        #MODULE, VLL_INFO, NULL };                                      \
    static struct vlog_module *const this_module                        \
        __attribute__((unused)) = &this_module_;                        \
    static void vlog_register_##MODULE(void)                            \
        __attribute__((constructor));                                   \
    static void                                                         \
    vlog_register_##MODULE(void)                                        \
    {                                                                   \
        vlog_insert_module(&this_module_);                              \
    }                                                                   \
    struct vlog_dummy_##MODULE

/* Token bucket for rate-limited logging.  Initialize statically with
 * VLOG_RATE_LIMIT_INIT(RATE, BURST): at most BURST messages at once, refilled
 * at RATE messages per minute. */
struct vlog_rate_limit {
    unsigned int rate;          /* Messages per minute. */
    unsigned int burst;         /* Maximum messages at once (>= 1). */
    unsigned long long int tokens; /* VLOG_MSG_TOKENS per message. */
    long long int last_fill;    /* Time of last refill; LLONG_MIN at first. */
    long long int first_dropped; /* Time of first drop since last success. */
    long long int last_dropped; /* Time of latest drop. */
    unsigned int n_dropped;     /* Messages dropped since last success. */
};

/* Tokens one message costs; 'rate' tokens accrue per millisecond, so a
 * bucket refills at 'rate' messages per minute. */
#define VLOG_MSG_TOKENS (60 * 1000)

#define VLOG_RATE_LIMIT_INIT(RATE, BURST)                               \
    {                                                                   \
        (RATE), (BURST) < 1 ? 1 : (BURST), 0,                           \
        -9223372036854775807LL - 1, 0, 0, 0                             \
    }

/* Returns true if 'rl' has no token left at time 'now' (msec): the message
 * must be dropped and is counted.  Otherwise consumes one token and returns
 * false.  A fresh bucket is full (BURST messages pass at once).  Depends only
 * on 'rl' and 'now' (tests pass fake times). */
bool vlog_should_drop_at(struct vlog_rate_limit *rl, long long int now);

/* Number of messages 'rl' dropped since the last one it let through. */
unsigned int vlog_rate_limit_dropped(const struct vlog_rate_limit *rl);

/* Returns true if 'module' would log a message at 'level'. */
bool vlog_is_enabled(const struct vlog_module *module, enum vlog_level level);

/* Logs one message (printf-style) for 'module' at 'level'. */
void vlog(const struct vlog_module *module, enum vlog_level level,
          const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void vlog_valist(const struct vlog_module *module, enum vlog_level level,
                 const char *format, va_list args)
    __attribute__((format(printf, 3, 0)));

/* Like vlog(), but drops the message if 'rl' says so (using time_msec()).
 * When a message does get through after drops, it is followed by a note
 * of how many were dropped. */
void vlog_rate_limit(const struct vlog_module *module, enum vlog_level level,
                     struct vlog_rate_limit *rl, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

#define VLOG__(LEVEL, ...)                                      \
    do {                                                        \
        if (this_module->level >= (LEVEL)) {                    \
            vlog(this_module, LEVEL, __VA_ARGS__);              \
        }                                                       \
    } while (0)
#define VLOG_RL__(RL, LEVEL, ...)                               \
    do {                                                        \
        if (this_module->level >= (LEVEL)) {                    \
            vlog_rate_limit(this_module, LEVEL, RL, __VA_ARGS__); \
        }                                                       \
    } while (0)

#define VLOG_ERR(...) VLOG__(VLL_ERR, __VA_ARGS__)
#define VLOG_WARN(...) VLOG__(VLL_WARN, __VA_ARGS__)
#define VLOG_INFO(...) VLOG__(VLL_INFO, __VA_ARGS__)
#define VLOG_DBG(...) VLOG__(VLL_DBG, __VA_ARGS__)

#define VLOG_ERR_RL(RL, ...) VLOG_RL__(RL, VLL_ERR, __VA_ARGS__)
#define VLOG_WARN_RL(RL, ...) VLOG_RL__(RL, VLL_WARN, __VA_ARGS__)
#define VLOG_INFO_RL(RL, ...) VLOG_RL__(RL, VLL_INFO, __VA_ARGS__)
#define VLOG_DBG_RL(RL, ...) VLOG_RL__(RL, VLL_DBG, __VA_ARGS__)

#define VLOG_IS_DBG_ENABLED() (this_module->level >= VLL_DBG)
#define VLOG_IS_INFO_ENABLED() (this_module->level >= VLL_INFO)

/* Records the program name ('program_name' is copied; NULL clears it) for
 * vlog_get_program_name(), and registers vlog's control commands with
 * lib/ctl (process-wide, so every control socket the program serves has
 * them): "vlog/set SPEC..." (vlog_set_levels_from_string() for each SPEC),
 * "vlog/list" (vlog_get_levels()) and "vlog/reopen"
 * (vlog_reopen_log_file()).  Optional: logging works without it. */
void vlog_init(const char *program_name);

/* The name given to vlog_init(), or NULL. */
const char *vlog_get_program_name(void);

/* Sets levels from 's': one or more "MODULE:LEVEL" items separated by
 * commas or spaces, MODULE being a registered module name or "ANY" (all
 * modules, including ones registered later).  "LEVEL" alone means
 * "ANY:LEVEL".  Either all items apply or none does.  Returns 0, or EINVAL
 * for an unknown module or level or bad syntax. */
int vlog_set_levels_from_string(const char *s);

/* Returns a string listing each module and its level, one "module level"
 * line per module, sorted by name.  The caller frees it with free(). */
char *vlog_get_levels(void);

/* Sets the level of one module (or all modules if 'module' is NULL). */
void vlog_set_level(struct vlog_module *module, enum vlog_level level);

/* Mode of the directories vlog_set_log_file() and vlog_reopen_log_file()
 * create. */
#define VLOG_DIR_MODE 0750

/* Also writes log lines to the file at 'path' (appending, created mode 0640),
 * or stops writing to a file if 'path' is NULL.  'path' is copied.  The
 * directories leading to 'path' that do not exist are created, mode
 * VLOG_DIR_MODE (e.g. /var/log/chand on a fresh install).  Returns 0 or an
 * errno value (the old file is kept on failure). */
int vlog_set_log_file(const char *path);

/* Closes and reopens the log file (for log rotation), creating its
 * directories again if they are gone, as vlog_set_log_file() does.  Returns
 * 0 or an errno value (the old file is kept on failure). */
int vlog_reopen_log_file(void);

/* Enables or disables writing to stderr (enabled by default). */
void vlog_set_stderr(bool enable);

/* Test hook: if 'fn' is nonnull, every formatted log line (without the
 * trailing newline) is passed to 'fn' instead of being written anywhere.
 * 'line' is only valid during the call. */
typedef void vlog_hook_func(const char *line, void *aux);
void vlog_set_hook(vlog_hook_func *fn, void *aux);

/* Formats a log line for 'module_name' at 'level' with the message 'msg'
 * and sequence number 'seq' at wall-clock time 'wall_msec' (milliseconds
 * since the epoch) into 'buf' of 'size' bytes, truncating if needed.
 * Returns the length the full line would have (like snprintf). */
int vlog_format_line(char *buf, size_t size, long long int wall_msec,
                     unsigned int seq, const char *module_name,
                     enum vlog_level level, const char *msg);

#endif /* vlog.h */
