/* Tests for lib/stream: real Unix sockets, file and abstract. */

#include <config.h>
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "poll-loop.h"
#include "stream.h"

static char tmpdir[64];

static void
make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test-stream-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
}

static void
remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Accepts one connection on 'p', waiting in poll_block() as needed. */
static struct stream *
accept_one(struct pstream *p)
{
    struct stream *s = NULL;
    int error;

    alarm(30);
    while ((error = pstream_accept(p, &s)) == EAGAIN) {
        pstream_wait(p);
        poll_block();
    }
    alarm(0);
    CU_ASSERT_EQUAL(error, 0);
    return s;
}

/* Finishes connecting 's'. */
static int
connect_one(struct stream *s)
{
    int error;

    alarm(30);
    while ((error = stream_connect(s)) == EAGAIN) {
        stream_connect_wait(s);
        poll_block();
    }
    alarm(0);
    return error;
}

/* Receives exactly 'n' bytes into 'buf'; returns the last stream_recv()
 * result if it was not positive. */
static ssize_t
recv_exactly(struct stream *s, char *buf, size_t n)
{
    size_t got = 0;

    alarm(30);
    while (got < n) {
        ssize_t r = stream_recv(s, buf + got, n - got);
        if (r == -EAGAIN) {
            stream_recv_wait(s);
            poll_block();
        } else if (r <= 0) {
            alarm(0);
            return r;
        } else {
            got += r;
        }
    }
    alarm(0);
    return got;
}

static void
send_all(struct stream *s, const char *buf, size_t n)
{
    alarm(30);
    while (n > 0) {
        ssize_t r = stream_send(s, buf, n);
        if (r == -EAGAIN) {
            stream_send_wait(s);
            poll_block();
            continue;
        }
        CU_ASSERT_FATAL(r > 0);
        buf += r;
        n -= r;
    }
    alarm(0);
}

/* Connects a client to 'pname' (via 'aname') and checks traffic both ways,
 * a large transfer, and EOF in both directions. */
static void
exercise_pair(const char *pname, const char *aname)
{
    struct pstream *p;
    struct stream *c, *s;

    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);
    CU_ASSERT_STRING_EQUAL(pstream_get_name(p), pname);

    /* Nothing pending yet. */
    CU_ASSERT_EQUAL(pstream_accept(p, &s), EAGAIN);
    CU_ASSERT_PTR_NULL(s);

    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    CU_ASSERT_STRING_EQUAL(stream_get_name(c), aname);
    CU_ASSERT_EQUAL(connect_one(c), 0);
    CU_ASSERT_EQUAL(stream_connect(c), 0);      /* Stays connected. */
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(stream_get_name(s), aname);
    CU_ASSERT(stream_get_fd(s) >= 0);
    CU_ASSERT_EQUAL(stream_connect(s), 0);

    /* Nothing to read yet. */
    char buf[64];
    CU_ASSERT_EQUAL(stream_recv(s, buf, sizeof buf), -EAGAIN);
    CU_ASSERT_EQUAL(stream_send(c, buf, 0), 0);
    CU_ASSERT_EQUAL(stream_recv(s, buf, 0), 0);

    send_all(c, "hello", 5);
    CU_ASSERT_EQUAL(recv_exactly(s, buf, 5), 5);
    CU_ASSERT(!memcmp(buf, "hello", 5));
    send_all(s, "world!", 6);
    CU_ASSERT_EQUAL(recv_exactly(c, buf, 6), 6);
    CU_ASSERT(!memcmp(buf, "world!", 6));

    /* A transfer larger than the socket buffers, interleaving the two
     * sides through the poll loop. */
    size_t big = 4 * 1024 * 1024;
    char *out = malloc(big), *in = malloc(big);
    uint64_t seed = 7;
    for (size_t i = 0; i < big; i++) {
        out[i] = unit_random(&seed);
    }
    size_t sent = 0, rcvd = 0;
    alarm(60);
    while (rcvd < big) {
        if (sent < big) {
            ssize_t r = stream_send(c, out + sent, big - sent);
            CU_ASSERT_FATAL(r > 0 || r == -EAGAIN);
            if (r > 0) {
                sent += r;
            }
        }
        ssize_t r = stream_recv(s, in + rcvd, big - rcvd);
        CU_ASSERT_FATAL(r > 0 || r == -EAGAIN);
        if (r > 0) {
            rcvd += r;
        }
        if (rcvd >= big) {
            break;
        }
        if (sent < big) {
            stream_send_wait(c);
        }
        stream_recv_wait(s);
        poll_block();
    }
    alarm(0);
    CU_ASSERT(!memcmp(in, out, big));
    free(in);
    free(out);

    /* EOF: closing the client gives 0 on the server, repeatedly. */
    stream_close(c);
    CU_ASSERT_EQUAL(recv_exactly(s, buf, 1), 0);
    CU_ASSERT_EQUAL(stream_recv(s, buf, 1), 0);
    /* Sending to a closed peer fails with EPIPE (no SIGPIPE). */
    ssize_t r;
    alarm(30);
    do {
        r = stream_send(s, "x", 1);
    } while (r == 1);
    alarm(0);
    CU_ASSERT(r == -EPIPE || r == -ECONNRESET);
    stream_close(s);

    /* Server-side close gives EOF on the client. */
    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    CU_ASSERT_EQUAL(connect_one(c), 0);
    s = accept_one(p);
    stream_close(s);
    CU_ASSERT_EQUAL(recv_exactly(c, buf, 1), 0);
    stream_close(c);

    pstream_close(p);
}

static void
test_file_socket(void)
{
    char pname[256], aname[256], path[128];

    make_tmpdir();
    snprintf(path, sizeof path, "%s/sub/test.sock", tmpdir);
    snprintf(pname, sizeof pname, "punix:%s", path);
    snprintf(aname, sizeof aname, "unix:%s", path);
    exercise_pair(pname, aname);

    /* The missing directory was created with mode 0755. */
    char dir[256];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/sub", tmpdir);
    CU_ASSERT_EQUAL_FATAL(stat(dir, &st), 0);
    CU_ASSERT(S_ISDIR(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0755);

    /* pstream_close() removed the socket file. */
    CU_ASSERT_EQUAL(access(path, F_OK), -1);

    /* Connecting to a missing socket fails at once. */
    struct stream *c;
    CU_ASSERT_EQUAL(stream_open(aname, &c), ENOENT);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(stream_open_block(aname, &c), ENOENT);
    CU_ASSERT_PTR_NULL(c);
    remove_tmpdir();
}

static void
test_abstract_socket(void)
{
    char pname[128], aname[128];

    snprintf(pname, sizeof pname, "punix:@chand-test-stream-%ld",
             (long) getpid());
    snprintf(aname, sizeof aname, "unix:@chand-test-stream-%ld",
             (long) getpid());
    exercise_pair(pname, aname);

    /* After close, the name is free: connecting is refused. */
    struct stream *c;
    CU_ASSERT_EQUAL(stream_open(aname, &c), ECONNREFUSED);
    CU_ASSERT_PTR_NULL(c);

    /* An abstract name is exclusive while in use. */
    struct pstream *p1, *p2;
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p1), 0);
    CU_ASSERT_EQUAL(pstream_open(pname, &p2), EADDRINUSE);
    CU_ASSERT_PTR_NULL(p2);
    pstream_close(p1);
}

static void
test_open_block(void)
{
    char pname[128], aname[128];
    struct pstream *p;
    struct stream *c, *s;

    snprintf(pname, sizeof pname, "punix:@chand-test-block-%ld",
             (long) getpid());
    snprintf(aname, sizeof aname, "unix:@chand-test-block-%ld",
             (long) getpid());
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);
    CU_ASSERT_EQUAL_FATAL(stream_open_block(aname, &c), 0);
    CU_ASSERT_EQUAL(stream_connect(c), 0);
    s = accept_one(p);
    send_all(c, "abc", 3);
    char buf[3];
    CU_ASSERT_EQUAL(recv_exactly(s, buf, 3), 3);
    CU_ASSERT(!memcmp(buf, "abc", 3));
    stream_close(s);
    stream_close(c);
    pstream_close(p);
}

static void
test_stale_socket(void)
{
    char path[96], pname[128];
    struct pstream *p, *p2;

    make_tmpdir();
    snprintf(path, sizeof path, "%s/stale.sock", tmpdir);
    snprintf(pname, sizeof pname, "punix:%s", path);

    /* Leave a socket file behind with nobody listening. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *) &sun, sizeof sun), 0);
    close(fd);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);

    /* pstream_open() replaces it. */
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);

    /* But a live listener is not stolen. */
    CU_ASSERT_EQUAL(pstream_open(pname, &p2), EADDRINUSE);
    CU_ASSERT_PTR_NULL(p2);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    pstream_close(p);

    /* A regular file is never removed. */
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    CU_ASSERT_EQUAL(pstream_open(pname, &p2), EADDRINUSE);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);

    /* A parent that is a file, not a directory. */
    char pname2[256];
    snprintf(pname2, sizeof pname2, "punix:%s/x.sock", path);
    CU_ASSERT_EQUAL(pstream_open(pname2, &p2), ENOTDIR);

    /* A parent two levels down is not created. */
    snprintf(pname2, sizeof pname2, "punix:%s/a/b/x.sock", tmpdir);
    CU_ASSERT_EQUAL(pstream_open(pname2, &p2), ENOENT);
    remove_tmpdir();
}

static void
test_bad_names(void)
{
    struct stream *s = (struct stream *) 1;
    struct pstream *p = (struct pstream *) 1;
    char long_name[300];

    CU_ASSERT_FALSE(stream_verify_name("tcp:1.2.3.4:5"));
    CU_ASSERT_FALSE(stream_verify_name("unix:"));
    CU_ASSERT_FALSE(stream_verify_name("punix:/x"));
    CU_ASSERT_FALSE(stream_verify_name(NULL));
    CU_ASSERT_TRUE(stream_verify_name("unix:/x"));
    CU_ASSERT_TRUE(stream_verify_name("unix:@x"));
    CU_ASSERT_FALSE(pstream_verify_name("unix:/x"));
    CU_ASSERT_FALSE(pstream_verify_name("punix:"));
    CU_ASSERT_TRUE(pstream_verify_name("punix:@x"));

    CU_ASSERT_EQUAL(stream_open("tcp:127.0.0.1:1", &s), EAFNOSUPPORT);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(stream_open("/tmp/x", &s), EAFNOSUPPORT);
    CU_ASSERT_EQUAL(stream_open(NULL, &s), EAFNOSUPPORT);
    CU_ASSERT_EQUAL(stream_open("unix:", &s), EINVAL);
    CU_ASSERT_EQUAL(stream_open("unix:@", &s), EINVAL);
    CU_ASSERT_EQUAL(stream_open("punix:/tmp/x", &s), EAFNOSUPPORT);
    CU_ASSERT_EQUAL(pstream_open("unix:/tmp/x", &p), EAFNOSUPPORT);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(pstream_open("punix:", &p), EINVAL);
    CU_ASSERT_EQUAL(pstream_open("punix:@", &p), EINVAL);
    CU_ASSERT_EQUAL(pstream_open(NULL, &p), EAFNOSUPPORT);

    /* sun_path holds 107 characters plus a NUL; longer is rejected. */
    snprintf(long_name, sizeof long_name, "unix:/%0*d", 107, 0);
    CU_ASSERT_EQUAL(stream_open(long_name, &s), ENAMETOOLONG);
    snprintf(long_name, sizeof long_name, "punix:/%0*d", 107, 0);
    CU_ASSERT_EQUAL(pstream_open(long_name, &p), ENAMETOOLONG);
    snprintf(long_name, sizeof long_name, "unix:@%0*d", 108, 0);
    CU_ASSERT_EQUAL(stream_open(long_name, &s), ENAMETOOLONG);

    /* 107 characters of abstract name fit. */
    snprintf(long_name, sizeof long_name, "punix:@%0*ld", 107,
             (long) getpid());
    CU_ASSERT_EQUAL(pstream_open(long_name, &p), 0);
    long_name[0] = ' ';
    struct stream *c;
    CU_ASSERT_EQUAL(stream_open(long_name + 1, &c), 0);
    CU_ASSERT_EQUAL(connect_one(c), 0);
    stream_close(c);
    pstream_close(p);

    /* NULL is fine to close. */
    stream_close(NULL);
    pstream_close(NULL);
}

static void
test_many_clients(void)
{
    enum { N = 150 };           /* More than the listen backlog. */
    char pname[128], aname[128];
    struct pstream *p;
    struct stream *c[N], *s[N];

    snprintf(pname, sizeof pname, "punix:@chand-test-many-%ld",
             (long) getpid());
    snprintf(aname, sizeof aname, "unix:@chand-test-many-%ld",
             (long) getpid());
    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);

    /* Start every connection before accepting any: some find the backlog
     * full and must retry. */
    int n_pending = 0;
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c[i]), 0);
        n_pending += stream_connect(c[i]) == EAGAIN;
    }
    /* The listen backlog (64) is smaller than N, so some had to wait. */
    CU_ASSERT(n_pending > 0);
    int n_accepted = 0, n_connected = 0;
    alarm(60);
    while (n_accepted < N || n_connected < N) {
        struct stream *x;
        while (n_accepted < N && !pstream_accept(p, &x)) {
            s[n_accepted++] = x;
        }
        n_connected = 0;
        for (int i = 0; i < N; i++) {
            int error = stream_connect(c[i]);
            CU_ASSERT_FATAL(error == 0 || error == EAGAIN);
            if (!error) {
                n_connected++;
            } else {
                stream_connect_wait(c[i]);
            }
        }
        pstream_wait(p);
        if (n_accepted < N || n_connected < N) {
            poll_block();
        } else {
            poll_cancel();
        }
    }
    alarm(0);

    /* Each client reaches exactly one server stream. */
    for (int i = 0; i < N; i++) {
        send_all(c[i], (char *) &i, sizeof i);
    }
    bool seen[N] = { false };
    for (int i = 0; i < N; i++) {
        int v;
        CU_ASSERT_EQUAL(recv_exactly(s[i], (char *) &v, sizeof v),
                        sizeof v);
        CU_ASSERT_FATAL(v >= 0 && v < N);
        CU_ASSERT_FALSE(seen[v]);
        seen[v] = true;
    }
    for (int i = 0; i < N; i++) {
        stream_close(c[i]);
        stream_close(s[i]);
    }
    pstream_close(p);
}

static const struct unit_test tests[] = {
    { "file socket", test_file_socket },
    { "abstract socket", test_abstract_socket },
    { "open block", test_open_block },
    { "stale socket", test_stale_socket },
    { "bad names", test_bad_names },
    { "many clients", test_many_clients },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("stream", tests);
}
