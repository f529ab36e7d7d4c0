/*
 * child: a child process that chand-guest runs without ever waiting for
 * it, for the handler runner (handler.h) and the calls' exec command
 * (call.h).
 *
 * child_spawn() forks and execve()s an executable directly (no shell) in a
 * process group of its own, with the working directory "/", every
 * descriptor but stdin, stdout and stderr closed, default signal
 * dispositions and, with a user, that user's uid, gid and supplementary
 * groups (initgroups, setgid, setuid).  Its stdin gets the given bytes,
 * then end of file; at most 'out_max' bytes of stdout and of stderr are
 * kept (the rest is read and dropped).  All pipes are non-blocking; the
 * child's end is noticed through a pidfd, or every CHILD_POLL_MS where
 * the kernel has none.  When the child has exited, whatever is left of its
 * process group is killed and the child reaped.
 */
#ifndef CHILD_H
#define CHILD_H 1

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CHILD_POLL_MS 100

/* Bytes read from one of the child's pipes. */
struct child_buf {
    int fd;                     /* -1 once closed. */
    char *data;                 /* Owned; 'max' + 1 bytes. */
    size_t len, max;
};

/* Who the child runs as. */
struct child_user {
    const char *name;           /* For initgroups(). */
    uid_t uid;
    gid_t gid;
};

struct child {
    pid_t pid;                  /* 0 once reaped (or never started). */
    int pidfd;                  /* -1: none. */
    int in_fd;                  /* -1 once all of 'input' is written. */
    char *input;                /* Owned. */
    size_t input_len, input_done;
    struct child_buf out, err;
    int status;                 /* Wait status, once reaped. */
    bool die_with_parent;       /* Set before child_spawn(): the child gets
                                 * SIGKILL if chand-guest dies (even by
                                 * SIGKILL) before it exits. */
};

/* Initializes 'c' as not started, with room for 'out_max' bytes of each
 * output. */
void child_init(struct child *c, size_t out_max);

/* Starts 'path' with 'argv' and 'envp' (NULL-terminated, borrowed), as
 * 'user' (NULL: chand-guest's own), feeding it 'input_len' bytes of
 * 'input' (copied; may be NULL).  Returns 0 or an errno. */
int child_spawn(struct child *c, const char *path, char *const argv[],
                char *const envp[], const struct child_user *user,
                const char *input, size_t input_len);

/* Moves 'c' (started) on: feeds stdin, reads stdout and stderr, notices its
 * end.  Returns true once it has exited and been reaped ('c->status'
 * holds its wait status, its pipes are read to the end and closed). */
bool child_step(struct child *c);

/* Kills 'c''s process group, if it runs. */
void child_kill(struct child *c);

/* Registers what child_step() waits for. */
void child_wait(const struct child *c);

/* Kills and reaps 'c' if it still runs, and frees what it owns. */
void child_destroy(struct child *c);

#endif /* child.h */
