/* chand-guest's child processes: see child.h. */

#include <config.h>
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "poll-loop.h"
#include "util.h"

static void
close_fd(int *fdp)
{
    if (*fdp >= 0) {
        close(*fdp);
        *fdp = -1;
    }
}

void
child_init(struct child *c, size_t out_max)
{
    memset(c, 0, sizeof *c);
    c->pidfd = c->in_fd = c->out.fd = c->err.fd = -1;
    c->out.max = c->err.max = out_max;
    c->out.data = xmalloc(out_max + 1);
    c->err.data = xmalloc(out_max + 1);
}

/* Opens pipes for the child: 'fds'[0..2] are the child's stdin, stdout and
 * stderr, 'fds'[3..5] our ends.  Returns 0 or an errno. */
static int
open_pipes(int fds[6])
{
    int p[3][2];

    for (int i = 0; i < 3; i++) {
        if (pipe2(p[i], O_CLOEXEC)) {
            int error = errno;

            for (int j = 0; j < i; j++) {
                close(p[j][0]);
                close(p[j][1]);
            }
            return error;
        }
    }
    fds[0] = p[0][0];
    fds[3] = p[0][1];
    fds[1] = p[1][1];
    fds[4] = p[1][0];
    fds[2] = p[2][1];
    fds[5] = p[2][0];
    for (int i = 3; i < 6; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    return 0;
}

/* In the child: closes every descriptor above 2. */
static void
close_other_fds(void)
{
#ifdef SYS_close_range
    if (!syscall(SYS_close_range, 3U, ~0U, 0U)) {
        return;
    }
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++) {
        close(fd);
    }
}

/* In the child: writes "chand-guest: 'what': <errno>" to stderr and exits
 * with 'code'. */
static void
child_fail(const char *what, int code)
{
    dprintf(2, "chand-guest: %s: %s\n", what, strerror(errno));
    _exit(code);
}

/* In the child, after fork(): sets up and execs 'path'.  Never returns. */
static void
child_main(const char *path, char *const argv[], char *const envp[],
           const struct child_user *user, const int fds[6],
           bool die_with_parent, pid_t parent)
{
    sigset_t none;

    setpgid(0, 0);
    if (die_with_parent
        && (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)) {
        _exit(126);             /* The parent is gone already. */
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(fds[i], i) < 0) {
            _exit(126);
        }
    }
    close_other_fds();
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++) {
        signal(sig, SIG_DFL);
    }
    if (user) {
        if (initgroups(user->name, user->gid)) {
            child_fail("initgroups", 126);
        } else if (setgid(user->gid)) {
            child_fail("setgid", 126);
        } else if (setuid(user->uid)) {
            child_fail("setuid", 126);
        }
    }
    if (chdir("/")) {
        child_fail("chdir /", 126);
    }
    execve(path, argv, envp);
    child_fail(path, 127);
}

/* Returns a pidfd for 'pid', or -1 if the kernel has none. */
static int
open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd = syscall(SYS_pidfd_open, pid, 0);

    if (fd >= 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
#else
    (void) pid;
#endif
    return -1;
}

int
child_spawn(struct child *c, const char *path, char *const argv[],
            char *const envp[], const struct child_user *user,
            const char *input, size_t input_len)
{
    pid_t parent = getpid();
    int fds[6];
    int error = open_pipes(fds);
    pid_t pid;

    if (error) {
        return error;
    }
    pid = fork();
    if (pid == 0) {
        child_main(path, argv, envp, user, fds, c->die_with_parent, parent);
    }
    error = pid < 0 ? errno : 0;
    for (int i = 0; i < 3; i++) {
        close(fds[i]);
    }
    if (error) {
        for (int i = 3; i < 6; i++) {
            close(fds[i]);
        }
        return error;
    }
    setpgid(pid, pid);          /* Also in the child: no race. */
    c->pid = pid;
    c->pidfd = open_pidfd(pid);
    c->in_fd = fds[3];
    c->out.fd = fds[4];
    c->err.fd = fds[5];
    c->input = input_len ? xmemdup(input, input_len) : NULL;
    c->input_len = input_len;
    c->input_done = 0;
    return 0;
}

/* Writes what it can of 'c''s stdin; closes it when done or when the
 * child does not want it. */
static void
feed_input(struct child *c)
{
    while (c->in_fd >= 0 && c->input_done < c->input_len) {
        ssize_t n = write(c->in_fd, c->input + c->input_done,
                          c->input_len - c->input_done);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return;
        } else if (n < 0) {
            break;              /* EPIPE: it closed its stdin. */
        }
        c->input_done += n;
    }
    close_fd(&c->in_fd);
}

/* Reads what is there from 'b', keeping at most 'b->max' bytes; closes it
 * at end of file. */
static void
drain(struct child_buf *b)
{
    char scratch[4096];

    while (b->fd >= 0) {
        size_t room = b->max - b->len;
        char *dst = room ? b->data + b->len : scratch;
        ssize_t n = read(b->fd, dst, room ? room : sizeof scratch);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return;
        } else if (n <= 0) {
            close_fd(&b->fd);
        } else if (room) {
            b->len += n;
        }
    }
}

/* Checks whether 'c''s process ended; if so kills what is left of its
 * process group and reaps it.  Returns true once reaped. */
static bool
reap(struct child *c)
{
    siginfo_t info;

    memset(&info, 0, sizeof info);
    if (waitid(P_PID, c->pid, &info, WEXITED | WNOHANG | WNOWAIT)
        || !info.si_pid) {
        return false;
    }
    kill(-c->pid, SIGKILL);     /* Leftovers; the zombie keeps the id. */
    if (waitpid(c->pid, &c->status, 0) < 0) {
        c->status = 0;
    }
    c->pid = 0;
    return true;
}

bool
child_step(struct child *c)
{
    feed_input(c);
    drain(&c->out);
    drain(&c->err);
    if (!reap(c)) {
        return false;
    }
    drain(&c->out);
    drain(&c->err);
    close_fd(&c->pidfd);
    close_fd(&c->in_fd);
    close_fd(&c->out.fd);
    close_fd(&c->err.fd);
    return true;
}

void
child_kill(struct child *c)
{
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL);
    }
}

void
child_wait(const struct child *c)
{
    if (c->in_fd >= 0) {
        poll_fd_wait(c->in_fd, POLLOUT);
    }
    if (c->out.fd >= 0) {
        poll_fd_wait(c->out.fd, POLLIN);
    }
    if (c->err.fd >= 0) {
        poll_fd_wait(c->err.fd, POLLIN);
    }
    if (c->pidfd >= 0) {
        poll_fd_wait(c->pidfd, POLLIN);
    } else if (c->pid > 0) {
        poll_timer_wait(CHILD_POLL_MS);
    }
}

void
child_destroy(struct child *c)
{
    if (c->pid > 0) {
        child_kill(c);
        while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {
            continue;
        }
        c->pid = 0;
    }
    close_fd(&c->pidfd);
    close_fd(&c->in_fd);
    close_fd(&c->out.fd);
    close_fd(&c->err.fd);
    free(c->out.data);
    free(c->err.data);
    free(c->input);
    c->out.data = c->err.data = c->input = NULL;
}
