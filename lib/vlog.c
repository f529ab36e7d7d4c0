/* vlog: see vlog.h. */

#include <config.h>
#include "vlog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "poll-loop.h"

/* Registered modules, in registration order. */
static struct vlog_module *modules;

/* Level for modules registered later; set by "ANY:LEVEL". */
static enum vlog_level default_level = VLL_INFO;

static char *program_name;
static char *log_file_name;
static int log_fd = -1;
static bool log_to_stderr = true;
static unsigned int msg_seq;

static vlog_hook_func *hook_fn;
static void *hook_aux;

static const char *const level_names[VLL_N_LEVELS] = {
    "off", "err", "warn", "info", "dbg"
};
static const char *const level_tags[VLL_N_LEVELS] = {
    "OFF", "ERR", "WARN", "INFO", "DBG"
};

const char *
vlog_get_level_name(enum vlog_level level)
{
    return (unsigned int) level < VLL_N_LEVELS ? level_names[level] : NULL;
}

int
vlog_get_level_val(const char *name)
{
    if (!name) {
        return -1;
    }
    for (int i = 0; i < VLL_N_LEVELS; i++) {
        if (!strcasecmp(name, level_names[i])) {
            return i;
        }
    }
    if (!strcasecmp(name, "emer")) {
        return VLL_ERR;
    } else if (!strcasecmp(name, "debug")) {
        return VLL_DBG;
    }
    return -1;
}

void
vlog_insert_module(struct vlog_module *m)
{
    for (struct vlog_module *p = modules; p; p = p->next) {
        if (p == m) {
            return;
        }
    }
    m->level = default_level;
    m->next = modules;
    modules = m;
}

struct vlog_module *
vlog_module_from_name(const char *name)
{
    for (struct vlog_module *m = modules; m; m = m->next) {
        if (!strcasecmp(m->name, name)) {
            return m;
        }
    }
    return NULL;
}

void
vlog_set_level(struct vlog_module *module, enum vlog_level level)
{
    if ((unsigned int) level >= VLL_N_LEVELS) {
        return;
    }
    if (module) {
        module->level = level;
    } else {
        default_level = level;
        for (struct vlog_module *m = modules; m; m = m->next) {
            m->level = level;
        }
    }
}

bool
vlog_is_enabled(const struct vlog_module *module, enum vlog_level level)
{
    return level > VLL_OFF && level < VLL_N_LEVELS && module->level >= level;
}

/* Parsing of level specs. */

struct level_setting {
    struct vlog_module *module;     /* NULL for ANY. */
    enum vlog_level level;
};

static int
parse_one_setting(char *item, struct level_setting *setting)
{
    char *colon = strchr(item, ':');
    const char *module_name, *level_name;

    if (colon) {
        *colon = '\0';
        module_name = item;
        level_name = colon + 1;
        if (strchr(level_name, ':') || !*module_name) {
            return EINVAL;
        }
    } else {
        module_name = "ANY";
        level_name = item;
    }

    int level = vlog_get_level_val(level_name);
    if (level < 0) {
        return EINVAL;
    }
    setting->level = level;
    if (!strcasecmp(module_name, "ANY")) {
        setting->module = NULL;
    } else {
        setting->module = vlog_module_from_name(module_name);
        if (!setting->module) {
            return EINVAL;
        }
    }
    return 0;
}

int
vlog_set_levels_from_string(const char *s)
{
    if (!s) {
        return EINVAL;
    }

    char *copy = strdup(s);
    size_t max_items = strlen(s) / 2 + 1;
    struct level_setting *settings = calloc(max_items, sizeof *settings);
    size_t n = 0;
    int error = 0;

    if (!copy || !settings) {
        error = ENOMEM;
        goto out;
    }

    char *save_ptr = NULL;
    for (char *item = strtok_r(copy, ", \t\n", &save_ptr); item;
         item = strtok_r(NULL, ", \t\n", &save_ptr)) {
        if (n >= max_items) {
            error = EINVAL;
            goto out;
        }
        error = parse_one_setting(item, &settings[n]);
        if (error) {
            goto out;
        }
        n++;
    }
    if (!n) {
        error = EINVAL;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        vlog_set_level(settings[i].module, settings[i].level);
    }

out:
    free(settings);
    free(copy);
    return error;
}

static int
compare_modules(const void *a_, const void *b_)
{
    const struct vlog_module *const *a = a_;
    const struct vlog_module *const *b = b_;
    return strcmp((*a)->name, (*b)->name);
}

char *
vlog_get_levels(void)
{
    size_t n = 0;
    for (struct vlog_module *m = modules; m; m = m->next) {
        n++;
    }

    struct vlog_module **sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted) {
        return NULL;
    }
    size_t i = 0;
    for (struct vlog_module *m = modules; m; m = m->next) {
        sorted[i++] = m;
    }
    qsort(sorted, n, sizeof *sorted, compare_modules);

    char *buf = NULL;
    size_t size = 0;
    FILE *stream = open_memstream(&buf, &size);
    if (!stream) {
        free(sorted);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        fprintf(stream, "%-20s %s\n", sorted[i]->name,
                level_names[sorted[i]->level]);
    }
    if (fclose(stream)) {
        free(buf);
        buf = NULL;
    }
    free(sorted);
    return buf;
}

/* Control commands. */

/* "vlog/set SPEC...": applies each SPEC, stopping at the first invalid
 * one. */
static void
vlog_ctl_set(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    for (int i = 1; i < argc; i++) {
        if (vlog_set_levels_from_string(argv[i])) {
            char *msg;
            if (asprintf(&msg, "invalid log level setting \"%s\" (use "
                         "MODULE:LEVEL or ANY:LEVEL; levels are off, err, "
                         "warn, info, dbg)", argv[i]) < 0) {
                msg = NULL;
            }
            ctl_command_reply_error(conn, msg ? msg : "invalid setting");
            free(msg);
            return;
        }
    }
    ctl_command_reply(conn, "");
}

/* "vlog/list": each module and its level. */
static void
vlog_ctl_list(struct ctl_conn *conn, int argc, const char *argv[], void *aux)
{
    char *levels = vlog_get_levels();
    ctl_command_reply(conn, levels ? levels : "");
    free(levels);
}

/* "vlog/reopen": reopens the log file (after rotation). */
static void
vlog_ctl_reopen(struct ctl_conn *conn, int argc, const char *argv[],
                void *aux)
{
    int error = vlog_reopen_log_file();
    if (error) {
        ctl_command_reply_error(conn, strerror(error));
    } else {
        ctl_command_reply(conn, "");
    }
}

/* Registers the vlog/ control commands with lib/ctl, once. */
static void
vlog_register_ctl_commands(void)
{
    static bool done;

    if (!done) {
        done = true;
        ctl_command_register("vlog/set",
                             "{ANY|MODULE}:{off|err|warn|info|dbg}...",
                             1, INT_MAX, vlog_ctl_set, NULL);
        ctl_command_register("vlog/list", "", 0, 0, vlog_ctl_list, NULL);
        ctl_command_register("vlog/reopen", "", 0, 0, vlog_ctl_reopen, NULL);
    }
}

/* Output. */

void
vlog_init(const char *name)
{
    free(program_name);
    program_name = name ? strdup(name) : NULL;
    vlog_register_ctl_commands();
}

const char *
vlog_get_program_name(void)
{
    return program_name;
}

/* Creates the directories leading to 'path' (the file itself excluded)
 * that do not exist yet, each mode VLOG_DIR_MODE whatever the umask.
 * Returns 0 or a positive errno. */
static int
make_log_dirs(const char *path)
{
    char *copy = strdup(path);
    int error = 0;

    if (!copy) {
        return ENOMEM;
    }
    char *slash = strrchr(copy, '/');
    if (!slash || slash == copy) {
        free(copy);             /* In the current or root directory. */
        return 0;
    }
    *slash = '\0';

    /* Each leading directory in turn, skipping the root and repeated
     * slashes. */
    for (char *p = copy + 1; ; p++) {
        bool end = !*p;

        if ((end || *p == '/') && p[-1] != '/') {
            *p = '\0';
            if (!mkdir(copy, VLOG_DIR_MODE)) {
                chmod(copy, VLOG_DIR_MODE);
            } else if (errno != EEXIST) {
                error = errno;
                break;
            }
            *p = end ? '\0' : '/';
        }
        if (end) {
            break;
        }
    }
    free(copy);
    return error;
}

static int
open_log_file(const char *path)
{
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
    int fd = open(path, flags, 0640);
    if (fd < 0 && errno == ENOENT) {
        int error = make_log_dirs(path);
        if (error) {
            return -error;
        }
        fd = open(path, flags, 0640);
    }
    return fd < 0 ? -errno : fd;
}

int
vlog_set_log_file(const char *path)
{
    if (!path) {
        if (log_fd >= 0) {
            close(log_fd);
        }
        log_fd = -1;
        free(log_file_name);
        log_file_name = NULL;
        return 0;
    }

    char *name = strdup(path);
    if (!name) {
        return ENOMEM;
    }
    int fd = open_log_file(path);
    if (fd < 0) {
        free(name);
        return -fd;
    }
    if (log_fd >= 0) {
        close(log_fd);
    }
    log_fd = fd;
    free(log_file_name);
    log_file_name = name;
    return 0;
}

int
vlog_reopen_log_file(void)
{
    if (!log_file_name) {
        return 0;
    }
    int fd = open_log_file(log_file_name);
    if (fd < 0) {
        return -fd;
    }
    if (log_fd >= 0) {
        close(log_fd);
    }
    log_fd = fd;
    return 0;
}

void
vlog_set_stderr(bool enable)
{
    log_to_stderr = enable;
}

void
vlog_set_hook(vlog_hook_func *fn, void *aux)
{
    hook_fn = fn;
    hook_aux = aux;
}

int
vlog_format_line(char *buf, size_t size, long long int wall_msec,
                 unsigned int seq, const char *module_name,
                 enum vlog_level level, const char *msg)
{
    time_t secs = wall_msec / 1000;
    int msecs = wall_msec % 1000;
    struct tm tm;
    char date[32];

    if (msecs < 0) {
        msecs += 1000;
        secs--;
    }
    if (!gmtime_r(&secs, &tm)
        || !strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(date, sizeof date, "0000-00-00T00:00:00");
    }
    const char *tag = ((unsigned int) level < VLL_N_LEVELS
                       ? level_tags[level] : "???");
    return snprintf(buf, size, "%s.%03dZ|%05u|%s|%s|%s", date, msecs, seq,
                    module_name, tag, msg);
}

static void
write_fully(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t retval = write(fd, s, n);
        if (retval < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        s += retval;
        n -= retval;
    }
}

static void
emit_line(const char *module_name, enum vlog_level level, const char *msg)
{
    char small[1024];
    char *line = small;
    long long int now = time_wall_msec();
    unsigned int seq = ++msg_seq;

    int len = vlog_format_line(small, sizeof small, now, seq, module_name,
                               level, msg);
    if (len < 0) {
        return;
    }
    if ((size_t) len + 2 > sizeof small) {
        line = malloc(len + 2);
        if (!line) {
            line = small;
            len = sizeof small - 2;
        } else {
            vlog_format_line(line, len + 2, now, seq, module_name, level,
                             msg);
        }
    }

    if (hook_fn) {
        hook_fn(line, hook_aux);
    } else {
        line[len] = '\n';
        line[len + 1] = '\0';
        if (log_to_stderr) {
            write_fully(STDERR_FILENO, line, len + 1);
        }
        if (log_fd >= 0) {
            write_fully(log_fd, line, len + 1);
        }
    }
    if (line != small) {
        free(line);
    }
}

void
vlog_valist(const struct vlog_module *module, enum vlog_level level,
            const char *format, va_list args)
{
    if (!vlog_is_enabled(module, level)) {
        return;
    }

    char small[512];
    char *msg = small;
    va_list args2;

    va_copy(args2, args);
    int len = vsnprintf(small, sizeof small, format, args);
    if (len >= (int) sizeof small) {
        msg = malloc(len + 1);
        if (msg) {
            vsnprintf(msg, len + 1, format, args2);
        } else {
            msg = small;
        }
    } else if (len < 0) {
        snprintf(small, sizeof small, "(bad log format \"%s\")", format);
    }
    va_end(args2);

    emit_line(module->name, level, msg);
    if (msg != small) {
        free(msg);
    }
}

void
vlog(const struct vlog_module *module, enum vlog_level level,
     const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vlog_valist(module, level, format, args);
    va_end(args);
}

/* Rate limiting. */

bool
vlog_should_drop_at(struct vlog_rate_limit *rl, long long int now)
{
    unsigned long long int max = (unsigned long long int) rl->burst
                                 * VLOG_MSG_TOKENS;

    if (rl->last_fill == LLONG_MIN) {
        rl->tokens = max;
        rl->last_fill = now;
    } else if (now > rl->last_fill) {
        unsigned long long int elapsed = now - rl->last_fill;
        if (rl->rate && elapsed > (max - rl->tokens) / rl->rate) {
            rl->tokens = max;
        } else {
            rl->tokens += elapsed * rl->rate;
        }
        rl->last_fill = now;
    }

    if (rl->tokens >= VLOG_MSG_TOKENS) {
        rl->tokens -= VLOG_MSG_TOKENS;
        return false;
    }
    if (!rl->n_dropped) {
        rl->first_dropped = now;
    }
    rl->last_dropped = now;
    if (rl->n_dropped < UINT_MAX) {
        rl->n_dropped++;
    }
    return true;
}

unsigned int
vlog_rate_limit_dropped(const struct vlog_rate_limit *rl)
{
    return rl->n_dropped;
}

void
vlog_rate_limit(const struct vlog_module *module, enum vlog_level level,
                struct vlog_rate_limit *rl, const char *format, ...)
{
    if (!vlog_is_enabled(module, level)) {
        return;
    }

    long long int now = time_msec();
    if (vlog_should_drop_at(rl, now)) {
        return;
    }

    va_list args;
    va_start(args, format);
    vlog_valist(module, level, format, args);
    va_end(args);

    if (rl->n_dropped) {
        long long int span = (now - rl->first_dropped + 500) / 1000;
        long long int ago = (now - rl->last_dropped + 500) / 1000;
        vlog(module, level,
             "Dropped %u log messages in last %lld seconds (most recently, "
             "%lld seconds ago) due to excessive rate",
             rl->n_dropped, span, ago);
        rl->n_dropped = 0;
    }
}
