/* subprocess: see subprocess.h. */

#include <config.h>
#include "subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "poll-loop.h"

/* Never: no timeout. */
#define NO_DEADLINE LLONG_MAX

/* The program's output as read so far.  'buf' has room for 'cap' bytes,
 * 'len' of them read, and is null-terminated. */
struct output {
    char *buf;
    size_t len, cap;
    size_t max;                 /* Most bytes kept. */
};

/* In the child: sets up standard input, output and error and executes
 * 'argv'.  Never returns. */
static void __attribute__((noreturn))
child_exec(char *const argv[], int input, int out_fd, bool own_group)
{
    int in = input >= 0 ? input : open("/dev/null", O_RDONLY);

    if (own_group) {
        setpgid(0, 0);          /* Also in the parent: whoever is first. */
    }
    if (in >= 0) {
        dup2(in, STDIN_FILENO);
    }
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Returns the milliseconds left until 'deadline', for poll(): -1 without a
 * deadline, 0 once it has passed. */
static int
poll_timeout(long long deadline)
{
    long long left;

    if (deadline == NO_DEADLINE) {
        return -1;
    }
    left = deadline - time_msec();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
}

/* Returns where the next read into 'out' goes and stores its size in
 * '*room': into the buffer, grown up to 'out->max' bytes, or into 'discard'
 * once the buffer is full or cannot grow. */
static char *
output_room(struct output *out, char *discard, size_t discard_size,
            size_t *room)
{
    if (out->len + 1 >= out->cap && out->cap <= out->max) {
        size_t cap = out->cap * 2 > out->max + 1 ? out->max + 1
                                                 : out->cap * 2;
        char *bigger = realloc(out->buf, cap);
        if (bigger) {
            out->buf = bigger;
            out->cap = cap;
        }
    }
    if (out->len + 1 >= out->cap) {
        *room = discard_size;
        return discard;
    }
    *room = out->cap - out->len - 1;
    return out->buf + out->len;
}

/* Reads 'fd' into 'out' until end of file (returns true) or 'deadline'
 * (returns false). */
static bool
read_output(int fd, struct output *out, long long deadline)
{
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char discard[4096];
        size_t room;
        char *dst;
        ssize_t n;
        int retval;

        retval = poll(&pfd, 1, poll_timeout(deadline));
        if (retval == 0) {
            return false;
        } else if (retval < 0) {
            if (errno == EINTR) {
                continue;
            }
            return true;
        }
        dst = output_room(out, discard, sizeof discard, &room);
        n = read(fd, dst, room);
        if (n > 0 && dst != discard) {
            out->len += n;
            out->buf[out->len] = '\0';
        } else if (n == 0 || (n < 0 && errno != EINTR)) {
            return true;
        }
    }
}

/* Kills 'pid', and its process group if it has one of its own. */
static void
kill_child(pid_t pid, bool own_group)
{
    if (own_group) {
        kill(-pid, SIGKILL);
    }
    kill(pid, SIGKILL);
}

/* Waits for 'pid' to exit, until 'deadline'; then kills it (see
 * kill_child()) and sets '*timed_out'.  Returns its wait status, or -1. */
static int
reap(pid_t pid, long long deadline, bool own_group, bool *timed_out)
{
    int status;

    if (*timed_out) {
        kill_child(pid, own_group);
    }
    for (;;) {
        bool wait = *timed_out || deadline == NO_DEADLINE;
        pid_t retval = waitpid(pid, &status, wait ? 0 : WNOHANG);

        if (retval == pid) {
            return status;
        } else if (retval < 0 && errno != EINTR) {
            return -1;
        } else if (!retval) {
            int ms = poll_timeout(deadline);
            if (!ms) {
                *timed_out = true;
                kill_child(pid, own_group);
            } else {
                struct timespec ts = { 0, (ms < 10 ? ms : 10) * 1000000L };
                nanosleep(&ts, NULL);
            }
        }
    }
}

/* Turns a wait status into subprocess_run()'s result. */
static int
exit_code(int status)
{
    if (status != -1 && WIFEXITED(status)) {
        return WEXITSTATUS(status);
    } else if (status != -1 && WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return SUBPROCESS_ERROR;
}

int
subprocess_run(char *const argv[], const struct subprocess_options *opts,
               char **outp)
{
    static const struct subprocess_options defaults = { .input = -1 };
    struct output out;
    long long deadline;
    bool own_group, timed_out;
    int fds[2], status;
    pid_t pid;

    if (!opts) {
        opts = &defaults;
    }
    if (outp) {
        *outp = NULL;
    }
    out.len = 0;
    out.max = opts->max_output ? opts->max_output : SUBPROCESS_MAX_OUTPUT;
    out.cap = out.max < 4095 ? out.max + 1 : 4096;
    out.buf = malloc(out.cap);
    if (!out.buf || pipe2(fds, O_CLOEXEC)) {
        free(out.buf);
        return SUBPROCESS_ERROR;
    }
    out.buf[0] = '\0';
    own_group = opts->timeout_ms > 0;

    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(out.buf);
        return SUBPROCESS_ERROR;
    } else if (!pid) {
        child_exec(argv, opts->input, fds[1], own_group);
    }
    close(fds[1]);
    if (own_group) {
        setpgid(pid, pid);
    }

    deadline = own_group ? time_msec() + opts->timeout_ms : NO_DEADLINE;
    timed_out = !read_output(fds[0], &out, deadline);
    close(fds[0]);
    status = reap(pid, deadline, own_group, &timed_out);

    if (outp) {
        *outp = out.buf;
    } else {
        free(out.buf);
    }
    return timed_out ? SUBPROCESS_TIMEOUT : exit_code(status);
}
