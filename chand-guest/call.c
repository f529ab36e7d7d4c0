/* chand-guest's requests and responses: see call.h and doc/adapters.md. */

#include <config.h>
#include "call.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netpacket/packet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "child.h"
#include "datastore.h"
#include "content-store.h"
#include "keyq.h"
#include "list.h"
#include "poll-loop.h"
#include "util.h"
#include "vlog.h"

VLOG_DEFINE_THIS_MODULE(call);

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(10, 20);

/* How often a response the datastore refused is tried again, in ms. */
#define CALL_RETRY_MS 1000

/* The environment of an exec child, before the request's own. */
#define CALL_EXEC_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:" \
                       "/usr/bin:/sbin:/bin"
#define CALL_EXEC_MAX_ARGS 256

/* One request being answered: an exec child under way, or a response
 * waiting to be stored. */
struct crun {
    struct list list_node;      /* In 'runs'. */
    char *key;                  /* Owned. */
    int64_t version;
    bool ended;                 /* 'response' is known. */
    char *response;             /* Owned, compact JSON, once ended. */
    const char *class;          /* Error class once ended, or NULL: ok. */
    long long retry_at;         /* When to try storing it again; 0: now. */

    /* exec. */
    bool running;               /* The child runs. */
    struct child proc;
    long long deadline;         /* time_msec(). */
    long long timeout_ms;
    bool timed_out;
    bool capture;               /* Keep its output. */
};

/* An open file. */
struct cfile {
    int64_t handle;             /* 0: the slot is free. */
    int fd;
    char *path;                 /* Owned. */
    char *export_path;          /* Its file-export's file, or NULL. */
    char export_digest[2 * 32 + 1];
};

struct call {
    struct datastore *ds;       /* Borrowed. */
    char *exec_allow;           /* Or NULL. */
    struct call_config export;  /* Its export members ('export_dir'
                                 * owned, NULL: file-export is off). */
    uint64_t export_seq;        /* Names the export files. */
    struct keyq queue;          /* Keys to look at. */
    struct list runs;           /* struct crun. */
    size_t n_running;
    struct cfile files[CALL_MAX_FILES];
    int64_t next_handle;
    bool frozen;                /* fsfreeze-freeze froze something. */
    char **frozen_paths;        /* Owned, 'n_frozen' of them. */
    size_t n_frozen;
    struct call_stats stats;
};

/* The codec. */

const char *
call_id_of(const char *key)
{
    size_t n = strlen(DS_CALL_KEY_PREFIX);
    const char *id = key + n;
    size_t len;

    if (strncmp(key, DS_CALL_KEY_PREFIX, n)) {
        return NULL;
    }
    len = strlen(id);
    if (!len || len > CALL_ID_MAX
        || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789._-") != len) {
        return NULL;
    }
    return id;
}

void
call_request_destroy(struct call_request *req)
{
    free(req->id);
    free(req->command);
    json_decref(req->args);
    memset(req, 0, sizeof *req);
}

/* Returns true if 'j' is an integer from 'min' to 'max', storing it in
 * '*vp'. */
static bool
get_int(const json_t *j, int64_t min, int64_t max, int64_t *vp)
{
    if (!json_is_integer(j) || json_integer_value(j) < min
        || json_integer_value(j) > max) {
        return false;
    }
    *vp = json_integer_value(j);
    return true;
}

bool
call_parse_request(const char *key, const char *value,
                   struct call_request *req, char **descp)
{
    const char *id = call_id_of(key);
    json_error_t jerr;
    json_t *v, *m;
    const char *name;

    memset(req, 0, sizeof *req);
    *descp = NULL;
    if (!id) {
        *descp = xasprintf("bad request key \"%s\": want %s and 1 to %d of "
                           "[A-Za-z0-9._-]", key, DS_CALL_KEY_PREFIX,
                           CALL_ID_MAX);
        return false;
    }
    v = json_loads(value, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        *descp = xasprintf("not JSON: %s", jerr.text);
        return false;
    } else if (!json_is_object(v)) {
        *descp = xstrdup("the request is not a JSON object");
        goto bad;
    }
    json_object_foreach (v, name, m) {
        if (strcmp(name, "command") && strcmp(name, "args")
            && strcmp(name, "timeout_ms") && strcmp(name, "at")) {
            *descp = xasprintf("unknown member \"%s\"", name);
            goto bad;
        }
    }
    m = json_object_get(v, "command");
    if (!json_is_string(m) || !json_string_length(m)) {
        *descp = xstrdup("\"command\" must be a nonempty string");
        goto bad;
    }
    req->command = xstrdup(json_string_value(m));
    m = json_object_get(v, "args");
    if (m && !json_is_object(m)) {
        *descp = xstrdup("\"args\" must be an object");
        goto bad;
    }
    req->args = m ? json_incref(m) : json_object();
    req->timeout_ms = CALL_DEFAULT_TIMEOUT_MS;
    m = json_object_get(v, "timeout_ms");
    if (m && !get_int(m, 1, CALL_TIMEOUT_MAX_MS, &req->timeout_ms)) {
        *descp = xasprintf("\"timeout_ms\" must be an integer from 1 to "
                           "%lld", CALL_TIMEOUT_MAX_MS);
        goto bad;
    }
    m = json_object_get(v, "at");
    if (m && !get_int(m, 1, INT64_MAX / 2, &req->at)) {
        *descp = xstrdup("\"at\" must be a positive integer (unix ms)");
        goto bad;
    }
    req->id = xstrdup(id);
    json_decref(v);
    return true;

bad:
    json_decref(v);
    call_request_destroy(req);
    return false;
}

/* Returns 'j' (owned, freed here) as compact JSON with sorted members,
 * malloc()ed. */
static char *
dump_and_free(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(j);
    if (!text) {
        out_of_memory();
    }
    return text;
}

char *
call_render_response(const char *id, int64_t version, int64_t at,
                     const json_t *result, const char *class,
                     const char *desc)
{
    json_t *v = json_pack("{s:s, s:I, s:I}", "id", id,
                          "version", (json_int_t) version,
                          "at", (json_int_t) at);

    if (class) {
        json_object_set_new(v, "error",
                            json_pack("{s:s, s:s}", "class", class,
                                      "desc", desc ? desc : ""));
    } else {
        json_object_set(v, "result", (json_t *) result);
    }
    return dump_and_free(v);
}

/* Commands. */

typedef json_t *call_func(struct call *, const json_t *args,
                          const char **classp, char **descp);

/* Sets the error and returns NULL, for the commands. */
static json_t *
fail(const char **classp, char **descp, const char *class,
     const char *format, ...) __attribute__((format(printf, 4, 5)));

static json_t *
fail(const char **classp, char **descp, const char *class,
     const char *format, ...)
{
    va_list args;

    va_start(args, format);
    *classp = class;
    if (vasprintf(descp, format, args) < 0) {
        out_of_memory();
    }
    va_end(args);
    return NULL;
}

/* Checks that 'args' has no members but the 'n' of 'names'.  Returns
 * true, or false with the error set. */
static bool
only_args(const json_t *args, const char *const names[], size_t n,
          const char **classp, char **descp)
{
    const char *name;
    json_t *v;

    json_object_foreach ((json_t *) args, name, v) {
        size_t i;

        for (i = 0; i < n && strcmp(name, names[i]); i++) {
            continue;
        }
        if (i == n) {
            fail(classp, descp, CALL_E_BAD_ARGS,
                 "unknown argument \"%s\"", name);
            return false;
        }
    }
    return true;
}
#define ONLY_ARGS(ARGS, CLASSP, DESCP, ...)                             \
    only_args(ARGS, (const char *const[]) { __VA_ARGS__ },              \
              sizeof ((const char *const[]) { __VA_ARGS__ })            \
              / sizeof (const char *), CLASSP, DESCP)
#define NO_ARGS(ARGS, CLASSP, DESCP) only_args(ARGS, NULL, 0, CLASSP, DESCP)

static json_t *
cmd_ping(struct call *c, const json_t *args, const char **classp,
         char **descp)
{
    (void) c;
    return NO_ARGS(args, classp, descp) ? json_object() : NULL;
}

static json_t *cmd_info(struct call *, const json_t *, const char **,
                        char **);

static json_t *
cmd_time(struct call *c, const json_t *args, const char **classp,
         char **descp)
{
    struct timespec ts;

    (void) c;
    if (!NO_ARGS(args, classp, descp)) {
        return NULL;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    return json_integer((json_int_t) ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* Sets member 'name' of 'o' to the value of NAME=VALUE line 'line' of
 * os-release if its name is 'key' (quotes removed). */
static void
os_release_member(json_t *o, const char *line, const char *key,
                  const char *name)
{
    size_t n = strlen(key);
    size_t len;
    char *v;

    if (strncmp(line, key, n) || line[n] != '=') {
        return;
    }
    v = xstrdup(line + n + 1);
    len = strcspn(v, "\n");
    v[len] = '\0';
    if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
        v[len - 1] = '\0';
        memmove(v, v + 1, len - 1);
    }
    json_t *j = json_string(v);

    json_object_set_new(o, name, j ? j : json_string("?"));
    free(v);
}

static json_t *
cmd_os_info(struct call *c, const json_t *args, const char **classp,
            char **descp)
{
    static const char *const map[][2] = {
        { "ID", "id" }, { "NAME", "name" }, { "PRETTY_NAME", "pretty-name" },
        { "VERSION", "version" }, { "VERSION_ID", "version-id" },
        { "VARIANT", "variant" }, { "VARIANT_ID", "variant-id" },
    };
    json_t *o = json_object();
    struct utsname u;
    char line[1024];
    FILE *f;

    (void) c;
    if (!NO_ARGS(args, classp, descp)) {
        json_decref(o);
        return NULL;
    }
    f = fopen("/etc/os-release", "r");
    if (!f) {
        f = fopen("/usr/lib/os-release", "r");
    }
    while (f && fgets(line, sizeof line, f)) {
        for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
            os_release_member(o, line, map[i][0], map[i][1]);
        }
    }
    if (f) {
        fclose(f);
    }
    if (!uname(&u)) {
        json_object_set_new(o, "kernel-release", json_string(u.release));
        json_object_set_new(o, "kernel-version", json_string(u.version));
        json_object_set_new(o, "machine", json_string(u.machine));
    }
    return o;
}

/* Returns the interface object of 'name' in 'list' (an array), adding it
 * if missing. */
static json_t *
iface_of(json_t *list, const char *name)
{
    size_t i;
    json_t *o;

    json_array_foreach (list, i, o) {
        if (!strcmp(json_string_value(json_object_get(o, "name")), name)) {
            return o;
        }
    }
    o = json_pack("{s:s, s:[]}", "name", name, "ip-addresses");
    json_array_append_new(list, o);
    return o;
}

/* Returns the number of leading one bits of the 'len' bytes of 'mask'. */
static int
prefix_len(const uint8_t *mask, size_t len)
{
    int n = 0;

    for (size_t i = 0; i < len; i++) {
        n += __builtin_popcount(mask[i]);
    }
    return n;
}

/* Adds the address of 'ifa' to 'iface'. */
static void
add_address(json_t *iface, const struct ifaddrs *ifa)
{
    int family = ifa->ifa_addr->sa_family;
    char text[INET6_ADDRSTRLEN];
    const void *addr, *mask = NULL;
    size_t len;

    if (family == AF_INET) {
        addr = &((const struct sockaddr_in *) ifa->ifa_addr)->sin_addr;
        if (ifa->ifa_netmask) {
            mask = &((const struct sockaddr_in *) ifa->ifa_netmask)->sin_addr;
        }
        len = 4;
    } else {
        addr = &((const struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr;
        if (ifa->ifa_netmask) {
            mask = &((const struct sockaddr_in6 *)
                     ifa->ifa_netmask)->sin6_addr;
        }
        len = 16;
    }
    if (!inet_ntop(family, addr, text, sizeof text)) {
        return;
    }
    json_array_append_new(json_object_get(iface, "ip-addresses"),
                          json_pack("{s:s, s:s, s:i}", "ip-address-type",
                                    family == AF_INET ? "ipv4" : "ipv6",
                                    "ip-address", text,
                                    "prefix", mask ? prefix_len(mask, len)
                                                   : (int) len * 8));
}

/* Sets 'iface''s "hardware-address" from AF_PACKET 'sll'. */
static void
set_mac(json_t *iface, const struct sockaddr_ll *sll)
{
    char mac[3 * 8];

    if (sll->sll_halen != 6) {
        return;
    }
    snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x",
             sll->sll_addr[0], sll->sll_addr[1], sll->sll_addr[2],
             sll->sll_addr[3], sll->sll_addr[4], sll->sll_addr[5]);
    json_object_set_new(iface, "hardware-address", json_string(mac));
}

static json_t *
cmd_network_interfaces(struct call *c, const json_t *args,
                       const char **classp, char **descp)
{
    struct ifaddrs *ifas, *ifa;
    json_t *list;

    (void) c;
    if (!NO_ARGS(args, classp, descp)) {
        return NULL;
    } else if (getifaddrs(&ifas)) {
        return fail(classp, descp, CALL_E_FAILED, "getifaddrs: %s",
                    strerror(errno));
    }
    list = json_array();
    for (ifa = ifas; ifa; ifa = ifa->ifa_next) {
        json_t *name = ifa->ifa_name ? json_string(ifa->ifa_name) : NULL;
        json_t *iface;

        if (!name) {
            continue;           /* Not UTF-8. */
        }
        json_decref(name);
        iface = iface_of(list, ifa->ifa_name);
        if (!ifa->ifa_addr) {
            continue;
        } else if (ifa->ifa_addr->sa_family == AF_PACKET) {
            set_mac(iface, (const struct sockaddr_ll *) ifa->ifa_addr);
        } else if (ifa->ifa_addr->sa_family == AF_INET
                   || ifa->ifa_addr->sa_family == AF_INET6) {
            add_address(iface, ifa);
        }
    }
    freeifaddrs(ifas);
    return list;
}

/* Files. */

/* Returns the open file of handle member "handle" of 'args', or NULL with
 * the error set. */
static struct cfile *
file_of(struct call *c, const json_t *args, const char **classp,
        char **descp)
{
    const json_t *h = json_object_get(args, "handle");

    if (!json_is_integer(h)) {
        fail(classp, descp, CALL_E_BAD_ARGS,
             "\"handle\" must be an integer");
        return NULL;
    }
    for (size_t i = 0; i < CALL_MAX_FILES; i++) {
        if (c->files[i].handle
            && c->files[i].handle == json_integer_value(h)) {
            return &c->files[i];
        }
    }
    fail(classp, descp, CALL_E_BAD_ARGS, "no open file with handle %"
         JSON_INTEGER_FORMAT, json_integer_value(h));
    return NULL;
}

/* Returns the open(2) flags of fopen() mode 'mode', or -1. */
static int
open_flags(const char *mode)
{
    static const struct { const char *mode; int flags; } modes[] = {
        { "r", O_RDONLY }, { "rb", O_RDONLY },
        { "r+", O_RDWR }, { "rb+", O_RDWR }, { "r+b", O_RDWR },
        { "w", O_WRONLY | O_CREAT | O_TRUNC },
        { "wb", O_WRONLY | O_CREAT | O_TRUNC },
        { "w+", O_RDWR | O_CREAT | O_TRUNC },
        { "wb+", O_RDWR | O_CREAT | O_TRUNC },
        { "w+b", O_RDWR | O_CREAT | O_TRUNC },
        { "a", O_WRONLY | O_CREAT | O_APPEND },
        { "ab", O_WRONLY | O_CREAT | O_APPEND },
        { "a+", O_RDWR | O_CREAT | O_APPEND },
        { "ab+", O_RDWR | O_CREAT | O_APPEND },
        { "a+b", O_RDWR | O_CREAT | O_APPEND },
    };

    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        if (!strcmp(mode, modes[i].mode)) {
            return modes[i].flags;
        }
    }
    return -1;
}

static json_t *
cmd_file_open(struct call *c, const json_t *args, const char **classp,
              char **descp)
{
    const char *path = json_string_value(json_object_get(args, "path"));
    const json_t *jmode = json_object_get(args, "mode");
    const char *mode = jmode ? json_string_value(jmode) : "r";
    struct cfile *slot = NULL;
    struct stat st;
    int flags, fd;

    if (!ONLY_ARGS(args, classp, descp, "path", "mode")) {
        return NULL;
    } else if (!path || path[0] != '/') {
        return fail(classp, descp, CALL_E_BAD_ARGS,
                    "\"path\" must be an absolute path");
    } else if (!mode || (flags = open_flags(mode)) < 0) {
        return fail(classp, descp, CALL_E_BAD_ARGS,
                    "\"mode\" must be one of r, r+, w, w+, a, a+ "
                    "(with an optional b)");
    }
    for (size_t i = 0; i < CALL_MAX_FILES && !slot; i++) {
        slot = c->files[i].handle ? NULL : &c->files[i];
    }
    if (!slot) {
        return fail(classp, descp, CALL_E_FAILED,
                    "%d files are open already", CALL_MAX_FILES);
    }
    /* O_NONBLOCK: a FIFO must not block the loop; it is refused below. */
    fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0) {
        return fail(classp, descp, CALL_E_FAILED, "%s: %s", path,
                    strerror(errno));
    } else if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(classp, descp, CALL_E_BAD_ARGS,
                    "%s: not a regular file", path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    slot->handle = c->next_handle++;
    slot->fd = fd;
    slot->path = xstrdup(path);
    VLOG_DBG("file-open %s (%s): handle %"PRId64, path, mode, slot->handle);
    return json_pack("{s:I}", "handle", (json_int_t) slot->handle);
}

/* Reads up to 'len' bytes from 'fd' into 'buf', fewer only at end of
 * file, and stores how many in '*np'.  Returns 0 or an errno value. */
static int
read_upto(int fd, char *buf, size_t len, size_t *np)
{
    *np = 0;
    while (*np < len) {
        ssize_t got = read(fd, buf + *np, len - *np);

        if (got < 0 && errno == EINTR) {
            continue;
        } else if (got < 0) {
            return errno;
        } else if (!got) {
            break;
        }
        *np += got;
    }
    return 0;
}

/* Writes the 'len' bytes of 'buf' to 'fd'.  Returns 0 or an errno
 * value. */
static int
write_all(int fd, const char *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0) {
            return errno;
        }
        done += n;
    }
    return 0;
}

static json_t *
cmd_file_read(struct call *c, const json_t *args, const char **classp,
              char **descp)
{
    struct cfile *f = NULL;
    int64_t count = CALL_FILE_READ_DEFAULT;
    const json_t *jcount = json_object_get(args, "count");
    size_t n = 0;
    char *buf, *b64;
    json_t *r;
    int error;

    if (!ONLY_ARGS(args, classp, descp, "handle", "count")
        || !(f = file_of(c, args, classp, descp))) {
        return NULL;
    } else if (jcount && !get_int(jcount, 0, CALL_FILE_READ_MAX, &count)) {
        return fail(classp, descp, CALL_E_BAD_ARGS, "\"count\" must be an "
                    "integer from 0 to %d", CALL_FILE_READ_MAX);
    }
    buf = xmalloc(count + 1);
    error = read_upto(f->fd, buf, count, &n);
    if (error) {
        free(buf);
        return fail(classp, descp, CALL_E_FAILED, "%s: %s", f->path,
                    strerror(error));
    }
    b64 = base64_encode(buf, n);
    r = json_pack("{s:I, s:s, s:b}", "count", (json_int_t) n,
                  "buf-b64", b64, "eof", n < (size_t) count);
    free(b64);
    free(buf);
    return r;
}

static json_t *
cmd_file_write(struct call *c, const json_t *args, const char **classp,
               char **descp)
{
    const char *b64 = json_string_value(json_object_get(args, "buf-b64"));
    const json_t *jcount = json_object_get(args, "count");
    struct cfile *f = NULL;
    int64_t count;
    size_t len;
    void *data;
    int error;

    if (!ONLY_ARGS(args, classp, descp, "handle", "buf-b64", "count")
        || !(f = file_of(c, args, classp, descp))) {
        return NULL;
    } else if (!b64 || !base64_decode(b64, &data, &len)) {
        return fail(classp, descp, CALL_E_BAD_ARGS,
                    "\"buf-b64\" must be a base64 string");
    }
    count = len;
    if (len > CALL_FILE_WRITE_MAX
        || (jcount && !get_int(jcount, 0, len, &count))) {
        free(data);
        return fail(classp, descp, CALL_E_BAD_ARGS, "at most %d bytes, and "
                    "\"count\" at most the bytes given",
                    CALL_FILE_WRITE_MAX);
    }
    error = write_all(f->fd, data, count);
    free(data);
    if (error) {
        return fail(classp, descp, CALL_E_FAILED, "%s: %s", f->path,
                    strerror(error));
    }
    return json_pack("{s:I, s:b}", "count", (json_int_t) count, "eof", 0);
}

static json_t *
cmd_file_seek(struct call *c, const json_t *args, const char **classp,
              char **descp)
{
    static const char *const names[] = { "set", "cur", "end" };
    const json_t *jw = json_object_get(args, "whence");
    struct cfile *f = NULL;
    int64_t offset, w = -1;
    off_t pos;

    if (!ONLY_ARGS(args, classp, descp, "handle", "offset", "whence")
        || !(f = file_of(c, args, classp, descp))) {
        return NULL;
    } else if (!get_int(json_object_get(args, "offset"), INT64_MIN,
                        INT64_MAX, &offset)) {
        return fail(classp, descp, CALL_E_BAD_ARGS,
                    "\"offset\" must be an integer");
    }
    for (int i = 0; i < 3; i++) {
        if ((json_is_string(jw) && !strcmp(json_string_value(jw), names[i]))
            || (json_is_integer(jw) && json_integer_value(jw) == i)) {
            w = i;
        }
    }
    if (w < 0) {
        return fail(classp, descp, CALL_E_BAD_ARGS,
                    "\"whence\" must be \"set\", \"cur\" or \"end\" "
                    "(or 0, 1, 2)");
    }
    pos = lseek(f->fd, offset,
                w == 0 ? SEEK_SET : w == 1 ? SEEK_CUR : SEEK_END);
    if (pos < 0) {
        return fail(classp, descp, CALL_E_FAILED, "%s: %s", f->path,
                    strerror(errno));
    }
    return json_pack("{s:I, s:b}", "position", (json_int_t) pos, "eof", 0);
}

/* file-export. */

/* Creates the export directory 'dir' (mode 0700) if missing and removes
 * the files in it, a previous run's exports.  Returns 0 or an errno
 * value. */
static int
export_dir_reset(const char *dir)
{
    struct dirent *de;
    DIR *d;

    if (mkdir(dir, 0700) && errno != EEXIST) {
        return errno;
    }
    d = opendir(dir);
    if (!d) {
        return errno;
    }
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")
            && unlinkat(dirfd(d), de->d_name, 0) && errno != ENOENT) {
            VLOG_WARN("cannot remove %s/%s: %s", dir, de->d_name,
                      strerror(errno));
        }
    }
    closedir(d);
    return 0;
}

/* Ends 'f''s export, if any: the lane stops serving it and its file is
 * removed. */
static void
export_drop(struct call *c, struct cfile *f)
{
    if (!f->export_path) {
        return;
    }
    c->export.export_remove(c->export.export_aux, f->export_digest,
                            f->export_path);
    if (unlink(f->export_path) && errno != ENOENT) {
        VLOG_WARN_RL(&rl, "cannot remove %s: %s", f->export_path,
                     strerror(errno));
    }
    free(f->export_path);
    f->export_path = NULL;
}

/* Copies up to 'max' bytes from 'in' to 'out', fewer only at the end of
 * 'in', and stores how many in '*np'.  Returns 0, or an errno value with
 * '*writingp' saying whether writing failed (else reading did). */
static int
copy_upto(int in, int out, uint64_t max, uint64_t *np, bool *writingp)
{
    size_t bufsize = max < 256 * 1024 ? max : 256 * 1024;
    char *buf = xmalloc(bufsize ? bufsize : 1);
    int error = 0;

    *np = 0;
    while (*np < max && !error) {
        uint64_t left = max - *np;
        size_t len = left < bufsize ? left : bufsize, n;

        *writingp = false;
        error = read_upto(in, buf, len, &n);
        if (!error && n) {
            *writingp = true;
            error = write_all(out, buf, n);
            *np += error ? 0 : n;
        }
        if (!error && n < len) {
            break;              /* End of file. */
        }
    }
    free(buf);
    return error;
}

/* Copies up to 'count' bytes of 'f' from its position into new file
 * 'path' and hashes them into 'digest'.  Stores how many in '*np'.
 * Returns true, or false with the error set and nothing left behind. */
static bool
export_copy(struct cfile *f, const char *path, uint64_t count,
            char digest[CONTENT_DIGEST_LEN + 1], uint64_t *np,
            const char **classp, char **descp)
{
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool writing = true;
    uint64_t size = 0;
    int error;

    *np = 0;
    if (out < 0) {
        error = errno;
    } else {
        error = copy_upto(f->fd, out, count, np, &writing);
        if (close(out) && !error) {
            error = errno;
            writing = true;
        }
    }
    if (!error) {
        error = content_hash_file(path, digest, &size);
        writing = true;
        if (!error && size != *np) {
            error = EIO;        /* Someone else wrote to it. */
        }
    }
    if (error) {
        unlink(path);
        fail(classp, descp, CALL_E_FAILED, "%s: %s",
             writing ? path : f->path, strerror(error));
        return false;
    }
    return true;
}

static json_t *
cmd_file_export(struct call *c, const json_t *args, const char **classp,
                char **descp)
{
    const json_t *jcount = json_object_get(args, "count");
    int64_t count = c->export.max_export;
    char digest[CONTENT_DIGEST_LEN + 1];
    struct cfile *f = NULL;
    struct stat st;
    uint64_t n;
    off_t pos;

    if (!c->export.export_dir) {
        return fail(classp, descp, CALL_E_NOT_SUPPORTED,
                    "file-export is off in this guest (no export "
                    "directory)");
    } else if (!ONLY_ARGS(args, classp, descp, "handle", "count")
               || !(f = file_of(c, args, classp, descp))) {
        return NULL;
    } else if (jcount && !get_int(jcount, 1, c->export.max_export,
                                  &count)) {
        return fail(classp, descp, CALL_E_BAD_ARGS, "\"count\" must be an "
                    "integer from 1 to %"PRIu64" (--max-transfer)",
                    c->export.max_export);
    }
    pos = lseek(f->fd, 0, SEEK_CUR);
    if (pos < 0) {
        return fail(classp, descp, CALL_E_FAILED, "%s: %s", f->path,
                    strerror(errno));
    }
    char *path = xasprintf("%s/%"PRId64".%"PRIu64, c->export.export_dir,
                           f->handle, ++c->export_seq);
    if (!export_copy(f, path, count, digest, &n, classp, descp)) {
        if (lseek(f->fd, pos, SEEK_SET) < 0) {
            VLOG_WARN_RL(&rl, "%s: %s", f->path, strerror(errno));
        }
        free(path);
        return NULL;
    }
    export_drop(c, f);
    f->export_path = path;
    memcpy(f->export_digest, digest, sizeof f->export_digest);
    c->export.export_add(c->export.export_aux, digest, n, path);
    c->stats.exports++;
    c->stats.exported_bytes += n;
    bool eof = (n < (uint64_t) count
                || (!fstat(f->fd, &st) && pos + (off_t) n >= st.st_size));
    VLOG_DBG("file-export handle %"PRId64" (%s): %"PRIu64" bytes as %.12s",
             f->handle, f->path, n, digest);
    return json_pack("{s:I, s:s, s:I, s:b}", "count", (json_int_t) n,
                     "digest", digest, "size", (json_int_t) n, "eof", eof);
}

/* Closes 'f', ending its export, and frees its slot. */
static void
close_file(struct call *c, struct cfile *f)
{
    export_drop(c, f);
    close(f->fd);
    free(f->path);
    memset(f, 0, sizeof *f);
}

static json_t *
cmd_file_close(struct call *c, const json_t *args, const char **classp,
               char **descp)
{
    struct cfile *f = NULL;

    if (!ONLY_ARGS(args, classp, descp, "handle")
        || !(f = file_of(c, args, classp, descp))) {
        return NULL;
    }
    VLOG_DBG("file-close handle %"PRId64" (%s)", f->handle, f->path);
    close_file(c, f);
    return json_object();
}

/* fsfreeze. */

static json_t *
cmd_fsfreeze_status(struct call *c, const json_t *args, const char **classp,
                    char **descp)
{
    if (!NO_ARGS(args, classp, descp)) {
        return NULL;
    }
    return json_pack("{s:s}", "status", c->frozen ? "frozen" : "thawed");
}

/* Thaws the filesystems 'c' froze.  Returns how many were thawed. */
static size_t
thaw_all(struct call *c)
{
    size_t n = 0;

    for (size_t i = 0; i < c->n_frozen; i++) {
        int fd = open(c->frozen_paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd >= 0 && !ioctl(fd, FITHAW, 0)) {
            n++;
        } else {
            VLOG_WARN("fsfreeze-thaw %s: %s", c->frozen_paths[i],
                      strerror(errno));
        }
        if (fd >= 0) {
            close(fd);
        }
        free(c->frozen_paths[i]);
    }
    free(c->frozen_paths);
    c->frozen_paths = NULL;
    c->n_frozen = 0;
    c->frozen = false;
    return n;
}

static json_t *
cmd_fsfreeze_thaw(struct call *c, const json_t *args, const char **classp,
                  char **descp)
{
    return (NO_ARGS(args, classp, descp)
            ? json_pack("{s:I}", "count", (json_int_t) thaw_all(c))
            : NULL);
}

/* Freezes the mount point 'path'.  Returns 0 or an errno. */
static int
freeze_one(struct call *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int error = 0;

    if (fd < 0) {
        return errno;
    } else if (ioctl(fd, FIFREEZE, 0)) {
        error = errno;
    }
    close(fd);
    if (!error) {
        size_t n = c->n_frozen + 1;

        c->frozen_paths = xrealloc(c->frozen_paths,
                                   n * sizeof *c->frozen_paths);
        c->frozen_paths[c->n_frozen++] = xstrdup(path);
        c->frozen = true;
    }
    return error;
}

static json_t *
cmd_fsfreeze_freeze(struct call *c, const json_t *args, const char **classp,
                    char **descp)
{
    const json_t *mps = json_object_get(args, "mountpoints");
    size_t i;
    json_t *mp;

    if (!ONLY_ARGS(args, classp, descp, "mountpoints")) {
        return NULL;
    } else if (!json_is_array(mps) || !json_array_size(mps)) {
        return fail(classp, descp, CALL_E_BAD_ARGS,
                    "\"mountpoints\" must be a nonempty array of paths "
                    "(nothing is frozen without it)");
    }
    json_array_foreach (mps, i, mp) {
        const char *path = json_string_value(mp);
        int error = path && path[0] == '/' ? freeze_one(c, path) : EINVAL;

        if (error) {
            thaw_all(c);
            return fail(classp, descp,
                        (error == EOPNOTSUPP || error == ENOTTY
                         ? CALL_E_NOT_SUPPORTED : CALL_E_FAILED),
                        "cannot freeze %s: %s (nothing is frozen)",
                        path ? path : "(not a string)", strerror(error));
        }
    }
    return json_pack("{s:I}", "count", (json_int_t) c->n_frozen);
}

/* exec: only refusals here; call_start_exec() runs it. */
static json_t *
cmd_exec(struct call *c, const json_t *args, const char **classp,
         char **descp)
{
    (void) args;
    if (!c->exec_allow) {
        return fail(classp, descp, CALL_E_DENIED,
                    "exec is off in this guest (no --exec-allow)");
    }
    return fail(classp, descp, CALL_E_FAILED, "exec runs outside the loop");
}

struct call_command {
    const char *name;
    call_func *func;
};

static const struct call_command commands[] = {
    { "ping", cmd_ping },
    { "info", cmd_info },
    { "os-info", cmd_os_info },
    { "time", cmd_time },
    { "network-interfaces", cmd_network_interfaces },
    { "file-open", cmd_file_open },
    { "file-read", cmd_file_read },
    { "file-write", cmd_file_write },
    { "file-seek", cmd_file_seek },
    { "file-close", cmd_file_close },
    { "file-export", cmd_file_export },
    { "exec", cmd_exec },
    { "fsfreeze-status", cmd_fsfreeze_status },
    { "fsfreeze-freeze", cmd_fsfreeze_freeze },
    { "fsfreeze-thaw", cmd_fsfreeze_thaw },
};

static json_t *
cmd_info(struct call *c, const json_t *args, const char **classp,
         char **descp)
{
    json_t *list;

    if (!NO_ARGS(args, classp, descp)) {
        return NULL;
    }
    list = json_array();
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        bool enabled = commands[i].func != cmd_exec || c->exec_allow;

        json_array_append_new(list, json_pack("{s:s, s:b}", "name",
                                              commands[i].name,
                                              "enabled", enabled));
    }
    return json_pack("{s:s, s:o}", "version", PACKAGE_VERSION,
                     "supported_commands", list);
}

static const struct call_command *
find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}

json_t *
call_dispatch(struct call *c, const struct call_request *req,
              const char **classp, char **descp)
{
    const struct call_command *cmd = find_command(req->command);

    *classp = NULL;
    *descp = NULL;
    if (!cmd) {
        return fail(classp, descp, CALL_E_NOT_FOUND,
                    "no command \"%s\" (\"info\" lists them)",
                    req->command);
    }
    return cmd->func(c, req->args, classp, descp);
}

/* exec. */

/* Returns true if 'path' is a line of the allowlist file 'file' (blank
 * lines and lines starting with '#' skipped, white space around a line
 * ignored).  On failure to read it, false with the error set. */
static bool
exec_allowed(const char *file, const char *path, const char **classp,
             char **descp)
{
    FILE *f = fopen(file, "r");
    char line[PATH_MAX + 2];
    bool found = false;

    if (!f) {
        fail(classp, descp, CALL_E_DENIED, "cannot read the exec allowlist "
             "%s: %s", file, strerror(errno));
        return false;
    }
    while (!found && fgets(line, sizeof line, f)) {
        char *s = line + strspn(line, " \t");
        size_t len = strlen(s);

        while (len && strchr(" \t\r\n", s[len - 1])) {
            s[--len] = '\0';
        }
        found = *s != '#' && !strcmp(s, path);
    }
    fclose(f);
    if (!found) {
        fail(classp, descp, CALL_E_DENIED,
             "%s is not in the exec allowlist %s", path, file);
    }
    return found;
}

/* Appends the strings of array member 'name' of 'args' to 'v' (at most
 * 'max' in all).  Returns true, or false with the error set. */
static bool
add_strings(const json_t *args, const char *name, char **v, size_t *n,
            size_t max, const char **classp, char **descp)
{
    const json_t *a = json_object_get(args, name);
    size_t i;
    json_t *s;

    if (a && !json_is_array(a)) {
        fail(classp, descp, CALL_E_BAD_ARGS, "\"%s\" must be an array of "
             "strings", name);
        return false;
    }
    json_array_foreach (a, i, s) {
        if (!json_is_string(s) || strlen(json_string_value(s))
            != json_string_length(s) || *n >= max) {
            fail(classp, descp, CALL_E_BAD_ARGS, "\"%s\" must be an array of "
                 "at most %zu strings without NUL", name, max - 1);
            return false;
        }
        v[(*n)++] = (char *) json_string_value(s);
    }
    return true;
}

/* Checks exec 'args' and starts the child of 'r'.  Returns true, or false
 * with the error set. */
static bool
exec_start(struct call *c, struct crun *r, const json_t *args,
           long long timeout_ms, const char **classp, char **descp)
{
    const char *path = json_string_value(json_object_get(args, "path"));
    const json_t *in64 = json_object_get(args, "input-data");
    const json_t *cap = json_object_get(args, "capture-output");
    const json_t *jt = json_object_get(args, "timeout_ms");
    char *argv[CALL_EXEC_MAX_ARGS + 2], *envp[CALL_EXEC_MAX_ARGS + 3];
    size_t argc = 1, envc = 2, in_len = 0;
    void *in = NULL;
    int64_t t = 0;
    int error;

    if (!c->exec_allow) {
        fail(classp, descp, CALL_E_DENIED,
             "exec is off in this guest (no --exec-allow)");
        return false;
    } else if (!ONLY_ARGS(args, classp, descp, "path", "arg", "env",
                          "input-data", "capture-output", "timeout_ms")) {
        return false;
    } else if (!path || path[0] != '/') {
        fail(classp, descp, CALL_E_BAD_ARGS,
             "\"path\" must be an absolute path");
        return false;
    } else if (cap && !json_is_boolean(cap)) {
        fail(classp, descp, CALL_E_BAD_ARGS,
             "\"capture-output\" must be a boolean");
        return false;
    } else if (jt && !get_int(jt, 1, CALL_TIMEOUT_MAX_MS, &t)) {
        fail(classp, descp, CALL_E_BAD_ARGS,
             "\"timeout_ms\" must be a positive integer");
        return false;
    } else if (in64 && (!json_is_string(in64)
                        || !base64_decode(json_string_value(in64), &in,
                                          &in_len)
                        || in_len > CALL_EXEC_INPUT_MAX)) {
        free(in);
        fail(classp, descp, CALL_E_BAD_ARGS, "\"input-data\" must be "
             "base64 of at most %d bytes", CALL_EXEC_INPUT_MAX);
        return false;
    }
    argv[0] = (char *) path;
    envp[0] = (char *) CALL_EXEC_PATH;
    envp[1] = (char *) "LANG=C";
    if (!add_strings(args, "arg", argv, &argc, CALL_EXEC_MAX_ARGS + 1,
                     classp, descp)
        || !add_strings(args, "env", envp, &envc, CALL_EXEC_MAX_ARGS + 2,
                        classp, descp)
        || !exec_allowed(c->exec_allow, path, classp, descp)) {
        free(in);
        return false;
    }
    argv[argc] = NULL;
    envp[envc] = NULL;
    if (jt && t < timeout_ms) {
        timeout_ms = t;
    }
    child_init(&r->proc, CALL_EXEC_OUTPUT_MAX);
    r->proc.die_with_parent = true;
    error = child_spawn(&r->proc, path, argv, envp, NULL, in, in_len);
    free(in);
    if (error) {
        child_destroy(&r->proc);
        fail(classp, descp, CALL_E_FAILED, "cannot start %s: %s", path,
             strerror(error));
        return false;
    }
    r->running = true;
    r->capture = !cap || json_is_true(cap);
    r->timeout_ms = timeout_ms;
    r->deadline = time_msec() + timeout_ms;
    c->n_running++;
    VLOG_INFO("%s: exec %s, pid %ld", r->key, path, (long) r->proc.pid);
    return true;
}

/* Returns the result of exec run 'r' whose child ended. */
static json_t *
exec_result(const struct crun *r)
{
    const struct child *p = &r->proc;
    json_t *o = json_object();

    if (WIFEXITED(p->status)) {
        json_object_set_new(o, "exitcode",
                            json_integer(WEXITSTATUS(p->status)));
    } else if (WIFSIGNALED(p->status)) {
        json_object_set_new(o, "signal", json_integer(WTERMSIG(p->status)));
    }
    if (r->capture) {
        char *out = base64_encode(p->out.data, p->out.len);
        char *err = base64_encode(p->err.data, p->err.len);

        json_object_set_new(o, "out-data", json_string(out));
        json_object_set_new(o, "err-data", json_string(err));
        json_object_set_new(o, "out-truncated",
                            json_boolean(p->out.len >= p->out.max));
        json_object_set_new(o, "err-truncated",
                            json_boolean(p->err.len >= p->err.max));
        free(out);
        free(err);
    }
    return o;
}

/* The runner. */

/* Counts a response of 'class' (NULL: ok). */
static void
count(struct call *c, const char *class)
{
    struct call_stats *s = &c->stats;

    s->requests++;
    if (!class) {
        s->ok++;
        return;
    }
    s->errors++;
    s->bad_requests += !strcmp(class, CALL_E_BAD_REQUEST);
    s->not_found += !strcmp(class, CALL_E_NOT_FOUND);
    s->timeouts += !strcmp(class, CALL_E_TIMEOUT);
    s->denied += !strcmp(class, CALL_E_DENIED);
    s->interrupted += !strcmp(class, CALL_E_INTERRUPTED);
    s->too_large += !strcmp(class, CALL_E_TOO_LARGE);
}

/* Ends 'r' with 'result' (owned, freed here) or, if 'class' is nonnull,
 * that error and 'desc' (borrowed). */
static void
end_run(struct call *c, struct crun *r, json_t *result, const char *class,
        const char *desc)
{
    const char *id = r->key + strlen(DS_CALL_KEY_PREFIX);

    r->response = call_render_response(id, r->version, time_wall_msec(),
                                       result, class, desc);
    r->class = class;
    r->ended = true;
    if (class) {
        VLOG_WARN_RL(&rl, "%s version %"PRId64": %s: %s", r->key, r->version,
                     class, desc);
    } else {
        VLOG_DBG("%s version %"PRId64": ok", r->key, r->version);
    }
    json_decref(result);
}

static struct crun *
new_run(struct call *c, const char *key, int64_t version)
{
    struct crun *r = xzalloc(sizeof *r);

    r->key = xstrdup(key);
    r->version = version;
    list_push_back(&c->runs, &r->list_node);
    return r;
}

static void
run_free(struct call *c, struct crun *r)
{
    list_remove(&r->list_node);
    if (r->running) {
        c->n_running--;
        child_destroy(&r->proc);
    }
    free(r->response);
    free(r->key);
    free(r);
}

static struct crun *
find_run(const struct call *c, const char *key)
{
    struct crun *r;

    LIST_FOR_EACH (r, list_node, &c->runs) {
        if (!strcmp(r->key, key)) {
            return r;
        }
    }
    return NULL;
}

static int
queue_handled_cb(void *c, const char *key, int64_t version, bool ok,
                 int64_t handled_at)
{
    (void) version;
    (void) ok;
    (void) handled_at;
    if (call_id_of(key)) {
        keyq_push(&((struct call *) c)->queue, key);
    }
    return 0;
}

/* Takes 'config''s file-export members, resetting the export
 * directory. */
static void
set_export(struct call *c, const struct call_config *config)
{
    int error;

    if (!config->export_dir) {
        return;
    }
    error = export_dir_reset(config->export_dir);
    if (error) {
        VLOG_ERR("file-export is off: export directory %s: %s",
                 config->export_dir, strerror(error));
        return;
    }
    c->export = *config;
    c->export.exec_allow = NULL;
    c->export.export_dir = xstrdup(config->export_dir);
    if (!c->export.max_export) {
        c->export.max_export = 1;
    }
}

struct call *
call_create(const struct call_config *config, struct datastore *ds)
{
    struct call *c = xzalloc(sizeof *c);

    c->ds = ds;
    c->exec_allow = config->exec_allow ? xstrdup(config->exec_allow) : NULL;
    set_export(c, config);
    keyq_init(&c->queue);
    list_init(&c->runs);
    c->next_handle = time_wall_msec();  /* Not one of a previous run's. */
    if (datastore_list(ds, DS_CALL_KEY_PREFIX, keyq_push_record_cb,
                       &c->queue)) {
        VLOG_WARN("cannot list the requests: %s", datastore_last_error());
    }
    if (datastore_list_handled(ds, queue_handled_cb, c)) {
        VLOG_WARN("cannot list the handled requests: %s",
                  datastore_last_error());
    }
    return c;
}

void
call_destroy(struct call *c)
{
    if (c) {
        struct crun *r;

        keyq_destroy(&c->queue);
        LIST_FOR_EACH_SAFE (r, list_node, &c->runs) {
            run_free(c, r);
        }
        for (size_t i = 0; i < CALL_MAX_FILES; i++) {
            if (c->files[i].handle) {
                close_file(c, &c->files[i]);
            }
        }
        thaw_all(c);
        free(c->exec_allow);
        free((char *) c->export.export_dir);
        free(c);
    }
}

void
call_record_changed(struct call *c, const struct ds_change *change)
{
    if (!strncmp(change->key, DS_CALL_KEY_PREFIX, strlen(DS_CALL_KEY_PREFIX))) {
        keyq_push(&c->queue, change->key);
    }
}

/* Returns true if a response to version 'version' of 'key' is published. */
static bool
answered(struct call *c, const char *key, int64_t version)
{
    char *rkey = xasprintf(DS_RESULT_KEY_PREFIX "%s", key);
    char *value = NULL;
    bool deleted = true, yes = false;

    if (!datastore_get_published(c->ds, rkey, &value, NULL, NULL, &deleted)
        && !deleted) {
        json_t *j = json_loads(value, 0, NULL);

        yes = json_integer_value(json_object_get(j, "version")) == version;
        json_decref(j);
    }
    free(value);
    free(rkey);
    return yes;
}

/* Answers version 'version' of request 'key' with JSON text 'value'
 * (borrowed): at once, or by starting its exec. */
static void
start_request(struct call *c, const char *key, int64_t version,
              const char *value)
{
    struct crun *r = new_run(c, key, version);
    struct call_request req;
    const char *class = NULL;
    char *desc = NULL;
    json_t *result = NULL;

    if (!call_parse_request(key, value, &req, &desc)) {
        end_run(c, r, NULL, CALL_E_BAD_REQUEST, desc);
        free(desc);
        return;
    }
    long long left = (req.at
                      ? req.at + req.timeout_ms - time_wall_msec()
                      : req.timeout_ms);

    if (left > req.timeout_ms) {
        left = req.timeout_ms;  /* The guest's clock is behind. */
    }
    if (left <= 0) {
        desc = xasprintf("the request expired %lld ms before it could run",
                         -left);
        end_run(c, r, NULL, CALL_E_TIMEOUT, desc);
    } else if (!strcmp(req.command, "exec")) {
        if (exec_start(c, r, req.args, left, &class, &desc)) {
            /* Noted without a response: never run twice. */
            if (datastore_set_handled(c->ds, key, version, false, NULL)) {
                VLOG_WARN_RL(&rl, "%s: %s", key, datastore_last_error());
            }
        } else {
            end_run(c, r, NULL, class, desc);
        }
    } else {
        result = call_dispatch(c, &req, &class, &desc);
        end_run(c, r, result, class, desc);
    }
    free(desc);
    call_request_destroy(&req);
}

/* Looks at queued 'key' (borrowed): forgets a deleted request, answers an
 * unanswered version. */
static void
look_at(struct call *c, const char *key)
{
    int64_t version = 0, handled = 0;
    struct crun *r = find_run(c, key);
    char *value = NULL;
    int error;

    error = datastore_get(c->ds, key, &value, &version);
    if (error == ENOENT) {
        if (r) {
            VLOG_INFO("%s: deleted while it ran", key);
            run_free(c, r);
        }
        if (datastore_forget_handled(c->ds, key)) {
            VLOG_WARN_RL(&rl, "%s: %s", key, datastore_last_error());
        }
        return;
    } else if (error) {
        VLOG_WARN_RL(&rl, "%s: %s", key, datastore_last_error());
        return;
    } else if (r) {
        free(value);
        return;                 /* Looked at again once it is stored. */
    }
    error = datastore_get_handled(c->ds, key, &handled);
    if (error == ENOENT || (!error && handled != version)) {
        start_request(c, key, version, value);
    } else if (!error && !answered(c, key, version)) {
        r = new_run(c, key, version);
        end_run(c, r, NULL, CALL_E_INTERRUPTED, "chand-guest stopped while "
                "it ran; it is not run again");
    } else if (error) {
        VLOG_WARN_RL(&rl, "%s: %s", key, datastore_last_error());
    }
    free(value);
}

/* Moves exec run 'r' on. */
static void
step_exec(struct call *c, struct crun *r)
{
    if (!r->timed_out && time_msec() >= r->deadline) {
        child_kill(&r->proc);
        r->timed_out = true;
    }
    if (!child_step(&r->proc)) {
        return;
    }
    r->running = false;
    c->n_running--;
    if (r->timed_out) {
        char *desc = xasprintf("killed after %lld ms", r->timeout_ms);

        end_run(c, r, NULL, CALL_E_TIMEOUT, desc);
        free(desc);
    } else {
        end_run(c, r, exec_result(r), NULL, NULL);
    }
    child_destroy(&r->proc);
}

/* Stores the response of ended run 'r'.  A request deleted meanwhile gets
 * none.  Returns 0 or an errno. */
static int
store_response(struct call *c, struct crun *r)
{
    int error = datastore_get(c->ds, r->key, NULL, NULL);

    if (error == ENOENT) {
        return 0;
    } else if (error) {
        return error;
    }
    error = datastore_set_handled(c->ds, r->key, r->version, !r->class,
                                  r->response);
    if (error == EDQUOT || error == EINVAL) {
        struct ds_pub_limits limits;
        size_t len = strlen(r->response);

        datastore_get_publish_limits(c->ds, &limits);
        if (len <= DS_PUB_VALUE_MAX
            && (!limits.max_value_bytes || len <= limits.max_value_bytes)) {
            return error;       /* Another limit (rate, count, total): the
                                 * caller tries again later. */
        }
        /* Over the value limits: say so in a response that fits. */
        char *desc = xasprintf("the response is %zu bytes, over %s", len,
                               len > DS_PUB_VALUE_MAX
                               ? "the largest value a record may have"
                               : "this VM's publication limit for a value");

        free(r->response);
        end_run(c, r, NULL, CALL_E_TOO_LARGE, desc);
        free(desc);
        error = datastore_set_handled(c->ds, r->key, r->version, false,
                                      r->response);
    }
    return error;
}

/* Stores the responses of the ended runs, unless a transaction is open. */
static void
store_ended(struct call *c)
{
    long long now = time_msec();
    struct crun *r;

    if (datastore_in_transaction(c->ds)) {
        return;
    }
    LIST_FOR_EACH_SAFE (r, list_node, &c->runs) {
        if (!r->ended || r->retry_at > now) {
            continue;
        }
        if (store_response(c, r)) {
            VLOG_WARN_RL(&rl, "%s version %"PRId64": cannot store the "
                         "response (trying again): %s", r->key, r->version,
                         datastore_last_error());
            c->stats.store_errors++;
            r->retry_at = now + CALL_RETRY_MS;
            continue;
        }
        count(c, r->class);
        keyq_push(&c->queue, r->key);   /* A newer version may be waiting. */
        run_free(c, r);
    }
}

/* Looks at the queued keys, while exec children may start. */
static void
start_queued(struct call *c)
{
    struct keyq_entry *k;

    LIST_FOR_EACH_SAFE (k, list_node, &c->queue.order) {
        char *key;

        if (c->n_running >= CALL_MAX_RUNNING) {
            return;
        }
        key = xstrdup(k->key);
        keyq_remove(&c->queue, k);
        look_at(c, key);
        free(key);
    }
}

void
call_run(struct call *c)
{
    struct crun *r;

    LIST_FOR_EACH (r, list_node, &c->runs) {
        if (r->running) {
            step_exec(c, r);
        }
    }
    if (!datastore_in_transaction(c->ds)) {
        start_queued(c);
    }
    store_ended(c);
}

void
call_wait(struct call *c)
{
    struct crun *r;

    LIST_FOR_EACH (r, list_node, &c->runs) {
        if (r->ended) {
            poll_timer_wait_until(r->retry_at);
        } else if (r->running) {
            child_wait(&r->proc);
            poll_timer_wait_until(r->timed_out ? time_msec() + CHILD_POLL_MS
                                               : r->deadline);
        }
    }
    if (!keyq_is_empty(&c->queue) && c->n_running < CALL_MAX_RUNNING) {
        poll_immediate_wake();
    }
}

bool
call_is_idle(const struct call *c)
{
    return keyq_is_empty(&c->queue) && list_is_empty(&c->runs);
}

void
call_get_stats(const struct call *c, struct call_stats *stats)
{
    *stats = c->stats;
}

json_t *
call_status_json(const struct call *c)
{
    const struct call_stats *s = &c->stats;
    json_t *running = json_array();
    size_t n_files = 0, n_exports = 0;
    struct crun *r;

    LIST_FOR_EACH (r, list_node, &c->runs) {
        if (r->running) {
            json_array_append_new(running, json_pack(
                "{s:s, s:I, s:I}", "key", r->key,
                "version", (json_int_t) r->version,
                "pid", (json_int_t) r->proc.pid));
        }
    }
    for (size_t i = 0; i < CALL_MAX_FILES; i++) {
        n_files += c->files[i].handle != 0;
        n_exports += c->files[i].export_path != NULL;
    }
    return json_pack(
        "{s:s?, s:I, s:o, s:I, s:I, s:s,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "exec_allow", c->exec_allow,
        "queued", (json_int_t) keyq_size(&c->queue),
        "running", running,
        "files", (json_int_t) n_files,
        "live_exports", (json_int_t) n_exports,
        "fsfreeze", c->frozen ? "frozen" : "thawed",
        "counters",
        "requests", (json_int_t) s->requests, "ok", (json_int_t) s->ok,
        "errors", (json_int_t) s->errors,
        "bad_requests", (json_int_t) s->bad_requests,
        "not_found", (json_int_t) s->not_found,
        "timeouts", (json_int_t) s->timeouts,
        "denied", (json_int_t) s->denied,
        "interrupted", (json_int_t) s->interrupted,
        "too_large", (json_int_t) s->too_large,
        "store_errors", (json_int_t) s->store_errors,
        "exports", (json_int_t) s->exports,
        "exported_bytes", (json_int_t) s->exported_bytes);
}
