/* Tests for lib/stream: real Unix sockets, file and abstract, and TCP over
 * IPv4 and IPv6 loopback.  TLS is in test-stream-ssl.c. */

#include <config.h>
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* The name an accepted TCP stream should have: the client's local
 * address. */
static void
expected_accepted_name(struct stream *c, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[INET6_ADDRSTRLEN];

    CU_ASSERT_EQUAL_FATAL(getsockname(stream_get_fd(c),
                                      (struct sockaddr *) &ss, &len), 0);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof addr);
        snprintf(buf, size, "tcp:[%s]:%u", addr, ntohs(sin6->sin6_port));
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr);
        snprintf(buf, size, "tcp:%s:%u", addr, ntohs(sin->sin_port));
    }
}

/* Connects a client to 'p' (via 'aname') and checks traffic both ways, a
 * large transfer, and EOF in both directions.  Closes 'p'. */
static void
exercise_listener(struct pstream *p, const char *aname)
{
    bool inet = !strncmp(aname, "tcp:", 4);
    struct stream *c, *s;

    /* Nothing pending yet. */
    CU_ASSERT_EQUAL(pstream_accept(p, &s), EAGAIN);
    CU_ASSERT_PTR_NULL(s);

    CU_ASSERT_EQUAL_FATAL(stream_open(aname, &c), 0);
    CU_ASSERT_STRING_EQUAL(stream_get_name(c), aname);
    CU_ASSERT_EQUAL(connect_one(c), 0);
    CU_ASSERT_EQUAL(stream_connect(c), 0);      /* Stays connected. */
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    if (inet) {
        char expected[128];
        expected_accepted_name(c, expected, sizeof expected);
        CU_ASSERT_STRING_EQUAL(stream_get_name(s), expected);
        CU_ASSERT_PTR_NULL(stream_get_peer_id(s));
    } else {
        CU_ASSERT_STRING_EQUAL(stream_get_name(s), aname);
        CU_ASSERT_EQUAL(pstream_get_bound_port(p), 0);
    }
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
exercise_pair(const char *pname, const char *aname)
{
    struct pstream *p;

    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);
    CU_ASSERT_STRING_EQUAL(pstream_get_name(p), pname);
    exercise_listener(p, aname);
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

    CU_ASSERT_FALSE(stream_verify_name("sctp:1.2.3.4:5"));
    CU_ASSERT_FALSE(stream_verify_name("unix:"));
    CU_ASSERT_FALSE(stream_verify_name("punix:/x"));
    CU_ASSERT_FALSE(stream_verify_name(NULL));
    CU_ASSERT_TRUE(stream_verify_name("unix:/x"));
    CU_ASSERT_TRUE(stream_verify_name("unix:@x"));
    CU_ASSERT_FALSE(pstream_verify_name("unix:/x"));
    CU_ASSERT_FALSE(pstream_verify_name("punix:"));
    CU_ASSERT_TRUE(pstream_verify_name("punix:@x"));

    CU_ASSERT_EQUAL(stream_open("sctp:127.0.0.1:1", &s), EAFNOSUPPORT);
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


/* Returns true if the kernel has an IPv6 loopback address. */
static bool
have_ipv6_loopback(void)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    bool ok = fd >= 0 && !bind(fd, (struct sockaddr *) &sin6, sizeof sin6);

    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* Opens 'pname' (with port 0) and checks that its name became
 * "PREFIX:PORT:ADDR" for the kernel's port; stores "tcp:ADDR:PORT" (with
 * 'aprefix') in 'aname'. */
static struct pstream *
open_inet_listener(const char *pname, const char *addr, const char *aprefix,
                   char *aname, size_t size)
{
    struct pstream *p;
    char expected[128];

    CU_ASSERT_EQUAL_FATAL(pstream_open(pname, &p), 0);
    int port = pstream_get_bound_port(p);
    CU_ASSERT_FATAL(port > 0 && port <= 65535);
    snprintf(expected, sizeof expected, "%.4s:%d:%s", pname, port, addr);
    CU_ASSERT_STRING_EQUAL(pstream_get_name(p), expected);
    snprintf(aname, size, "%s:%s:%d", aprefix, addr, port);
    return p;
}

static void
test_tcp_ipv4(void)
{
    char aname[128];
    struct pstream *p = open_inet_listener("ptcp:0:127.0.0.1", "127.0.0.1",
                                           "tcp", aname, sizeof aname);
    exercise_listener(p, aname);
}

static void
test_tcp_ipv6(void)
{
    char aname[128];

    if (!have_ipv6_loopback()) {
        printf("\n    (no IPv6 loopback address ::1: IPv6 part skipped) ");
        return;
    }
    struct pstream *p = open_inet_listener("ptcp:0:[::1]", "[::1]", "tcp",
                                           aname, sizeof aname);
    exercise_listener(p, aname);

    /* The IPv6 wildcard accepts ::1 too. */
    p = open_inet_listener("ptcp:0:[::]", "[::]", "tcp", aname,
                           sizeof aname);
    snprintf(aname, sizeof aname, "tcp:[::1]:%d", pstream_get_bound_port(p));
    exercise_listener(p, aname);
}

static void
test_tcp_misc(void)
{
    char aname[128];
    struct pstream *p;
    struct stream *c, *s;

    /* Without an address, a listener takes every IPv4 address. */
    CU_ASSERT_EQUAL_FATAL(pstream_open("ptcp:0", &p), 0);
    int port = pstream_get_bound_port(p);
    char expected[64];
    snprintf(expected, sizeof expected, "ptcp:%d:0.0.0.0", port);
    CU_ASSERT_STRING_EQUAL(pstream_get_name(p), expected);
    snprintf(aname, sizeof aname, "tcp:127.0.0.1:%d", port);

    /* stream_open_block(). */
    CU_ASSERT_EQUAL_FATAL(stream_open_block(aname, &c), 0);
    CU_ASSERT_EQUAL(stream_connect(c), 0);
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    /* TCP_NODELAY on both ends. */
    int on = 0;
    socklen_t len = sizeof on;
    CU_ASSERT_EQUAL(getsockopt(stream_get_fd(c), IPPROTO_TCP, TCP_NODELAY,
                               &on, &len), 0);
    CU_ASSERT(on);
    on = 0;
    CU_ASSERT_EQUAL(getsockopt(stream_get_fd(s), IPPROTO_TCP, TCP_NODELAY,
                               &on, &len), 0);
    CU_ASSERT(on);

    /* Nonblocking: nothing to read yet on either side. */
    char buf[8];
    CU_ASSERT_EQUAL(stream_recv(c, buf, sizeof buf), -EAGAIN);
    CU_ASSERT_EQUAL(stream_recv(s, buf, sizeof buf), -EAGAIN);
    send_all(s, "abc", 3);
    CU_ASSERT_EQUAL(recv_exactly(c, buf, 3), 3);
    CU_ASSERT(!memcmp(buf, "abc", 3));
    stream_close(c);
    stream_close(s);

    /* The port is busy while listening. */
    struct pstream *p2;
    snprintf(expected, sizeof expected, "ptcp:%d:127.0.0.1", port);
    CU_ASSERT_EQUAL(pstream_open(expected, &p2), EADDRINUSE);
    CU_ASSERT_PTR_NULL(p2);
    pstream_close(p);

    /* Nobody listens any more: connection refused, reported by
     * stream_open() or, for a connection in progress, stream_connect(). */
    int error = stream_open(aname, &c);
    if (!error) {
        error = connect_one(c);
        CU_ASSERT_EQUAL(stream_connect(c), error);      /* Sticky. */
        CU_ASSERT_EQUAL(stream_recv(c, buf, 1), -error);
        CU_ASSERT_EQUAL(stream_send(c, buf, 1), -error);
        stream_close(c);
    } else {
        CU_ASSERT_PTR_NULL(c);
    }
    CU_ASSERT_EQUAL(error, ECONNREFUSED);
    CU_ASSERT_EQUAL(stream_open_block(aname, &c), ECONNREFUSED);
    CU_ASSERT_PTR_NULL(c);

    /* A host name, resolved with getaddrinfo(). */
    CU_ASSERT_EQUAL_FATAL(pstream_open("ptcp:0:localhost", &p), 0);
    snprintf(aname, sizeof aname, "tcp:localhost:%d",
             pstream_get_bound_port(p));
    CU_ASSERT_EQUAL_FATAL(stream_open_block(aname, &c), 0);
    CU_ASSERT_STRING_EQUAL(stream_get_name(c), aname);
    s = accept_one(p);
    CU_ASSERT_PTR_NOT_NULL(s);
    stream_close(s);
    stream_close(c);
    pstream_close(p);
}

static void
test_inet_names(void)
{
    static const char *good_active[] = {
        "tcp:1.2.3.4:5", "tcp:127.0.0.1:65535", "tcp:[::1]:6641",
        "tcp:[2001:db8::1]:1", "tcp:[::ffff:1.2.3.4]:80",
        "tcp:localhost:6641", "tcp:db-1.example.com:6641",
        "ssl:1.2.3.4:6641", "ssl:[::1]:6641", "ssl:chan-db:6641",
    };
    static const char *bad_active[] = {
        "tcp:", "tcp:1.2.3.4", "tcp:1.2.3.4:", "tcp::80", "tcp:[::1]",
        "tcp:[::1:80", "tcp:::1]:80", "tcp:[::1]]:80", "tcp:[[::1]]:80",
        "tcp:[::1]x:80", "tcp:x[::1]:80", "tcp:[]:80", "tcp:[1.2.3.4:80]",
        "tcp:::1:80", "tcp:::1", "tcp:1.2.3.4:80:90", "tcp:1.2.3.4:0",
        "tcp:1.2.3.4:65536", "tcp:1.2.3.4:99999999", "tcp:1.2.3.4:-1",
        "tcp:1.2.3.4:+80", "tcp:1.2.3.4:80x", "tcp:1.2.3.4: 80",
        "tcp:1.2.3.4:[80]", "tcp:1.2.3.256:80", "tcp:1.2.3:80x",
        "tcp:[zz::1]:80", "tcp:bad_host:80", "tcp:a b:80", "ssl:",
        "ssl:1.2.3.4", "ssl:[::1]", "ssl:1.2.3.4:65536",
        "ptcp:80", "pssl:80", "unix:", "tcp1.2.3.4:80",
    };
    static const char *good_passive[] = {
        "ptcp:0", "ptcp:6641", "ptcp:65535", "ptcp:6641:127.0.0.1",
        "ptcp:6641:[::1]", "ptcp:6641:[::]", "ptcp:6641:0.0.0.0",
        "ptcp:6641:localhost", "pssl:6641", "pssl:0:[::1]",
    };
    static const char *bad_passive[] = {
        "ptcp:", "ptcp:65536", "ptcp:abc", "ptcp:-1", "ptcp::127.0.0.1",
        "ptcp:80:", "ptcp:80:::1", "ptcp:80:[::1", "ptcp:80:::1]",
        "ptcp:[80]", "ptcp:80:[]", "ptcp:80:1.2.3.256",
        "ptcp:127.0.0.1:80", "ptcp:80:1.2.3.4:5", "pssl:", "pssl:x",
        "tcp:1.2.3.4:80", "ssl:1.2.3.4:80",
    };

    for (size_t i = 0; i < sizeof good_active / sizeof *good_active; i++) {
        if (!stream_verify_name(good_active[i])) {
            CU_FAIL("a good active name is refused");
            printf("\n    refused: %s ", good_active[i]);
        }
    }
    for (size_t i = 0; i < sizeof bad_active / sizeof *bad_active; i++) {
        const char *name = bad_active[i];
        struct stream *s = (struct stream *) 1;
        int expected = (!strncmp(name, "tcp:", 4) || !strncmp(name, "ssl:", 4)
                        || !strncmp(name, "unix:", 5)
                        ? EINVAL : EAFNOSUPPORT);
        int error = stream_open(name, &s);
        if (stream_verify_name(name) || error != expected) {
            CU_FAIL("a bad active name is accepted");
            printf("\n    accepted: %s (%d) ", name, error);
        }
        CU_ASSERT_PTR_NULL(s);
    }
    for (size_t i = 0; i < sizeof good_passive / sizeof *good_passive;
         i++) {
        if (!pstream_verify_name(good_passive[i])) {
            CU_FAIL("a good passive name is refused");
            printf("\n    refused: %s ", good_passive[i]);
        }
    }
    for (size_t i = 0; i < sizeof bad_passive / sizeof *bad_passive; i++) {
        const char *name = bad_passive[i];
        struct pstream *p = (struct pstream *) 1;
        int expected = (!strncmp(name, "ptcp:", 5)
                        || !strncmp(name, "pssl:", 5)
                        ? EINVAL : EAFNOSUPPORT);
        int error = pstream_open(name, &p);
        if (pstream_verify_name(name) || error != expected) {
            CU_FAIL("a bad passive name is accepted");
            printf("\n    accepted: %s (%d) ", name, error);
        }
        CU_ASSERT_PTR_NULL(p);
    }

    /* A host name that does not resolve. */
    struct stream *s;
    CU_ASSERT_EQUAL(stream_open("tcp:no-such-host.invalid:80", &s),
                    EADDRNOTAVAIL);
    CU_ASSERT_PTR_NULL(s);
}

static const struct unit_test tests[] = {
    { "file socket", test_file_socket },
    { "abstract socket", test_abstract_socket },
    { "open block", test_open_block },
    { "stale socket", test_stale_socket },
    { "bad names", test_bad_names },
    { "many clients", test_many_clients },
    { "tcp ipv4", test_tcp_ipv4 },
    { "tcp ipv6", test_tcp_ipv6 },
    { "tcp misc", test_tcp_misc },
    { "inet names", test_inet_names },
};

int
unit_register(void)
{
    return UNIT_ADD_SUITE("stream", tests);
}
