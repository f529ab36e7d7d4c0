/* Copyright (c) 2026 The chand authors.  See chand-bench.h.
 *
 * guests: the guest simulator, one process serving many channels, a load
 * generator for benchmarks and scale tests (doc/bench.md, "The guest
 * simulator").  Correctness tests keep using the real chand-guest.
 *
 * Each simulated VM is the guest protocol code of chand-guest itself: a
 * receiver (chand-guest/receiver.c) applying to its own SQLite datastore
 * (datastore.c, DIR/VM.db) with the keys of its key file (keyring.c,
 * reloaded as chand-guest reloads it).  What it does not have is the VM's
 * own Open vSwitch: instead of a UDP socket on chand0 behind the guest
 * bridge, each VM reads and writes raw Ethernet frames on its own veth
 * (the peer of its vNIC on the host bridge) with an AF_PACKET socket,
 * checking what the guest bridge's flows would (the vid, the exact
 * endpoints) and tagging its replies with the vid as the guest bridge
 * does.  All sockets are served by one poll loop; each read burst of a VM
 * is one receiver burst (one transaction, one ACK), as in chand-guest.
 *
 * The upstream direction is left out: no publisher, so a simulated VM
 * publishes nothing, its HELLOs carry no "up_epoch" and the host's
 * upstream ACKs are dropped (counted as drop_type).  The file transfer
 * lane is left out too (CHUNK and XFER frames are dropped the same way).
 *
 * Status: a JSON file (--status FILE, rewritten atomically every
 * --status-interval seconds and at once on SIGUSR1), with the aggregate
 * counters and, per VM, whether it is in session, its host epoch and
 * position, records applied, snapshots begun and finished, sessions
 * entered, frames in and out, drops.  With --watch-key KEY (repeatable),
 * each VM notes the wall-clock time at which it first committed a put of
 * KEY (its datastore's change callback, called after the commit), and the
 * status has, per KEY, how many VMs did and when (percentiles and the
 * sorted times).  It runs until SIGTERM or SIGINT, then prints the
 * aggregate as one JSON object on stdout. */

#include <config.h>
#include "chand-bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datastore.h"
#include "guests-spec.h"
#include "keyring.h"
#include "poll-loop.h"
#include "receiver.h"
#include "util.h"
#include "vlog.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define SIM_BURST 256           /* Frames read per VM per loop, at most
                                 * (chand-guest's UDP_BATCH). */
#define SIM_FRAME_MAX (9216 + 64)/* A jumbo datagram with its headers. */

struct sim;

struct sim_vm {
    struct guests_spec spec;
    const struct sim *sim;
    struct chan_config cfg;
    int fd;
    struct datastore *ds;
    struct keyring_file *keys;  /* NULL: no key file. */
    struct receiver *rx;

    bool in_session;
    uint64_t sessions;          /* Times it went into session. */
    long long session_since;    /* When it last did (ms). */
    uint64_t rx_frames;         /* Frames read from the veth. */
    uint64_t rx_accepted;       /* Handed to the receiver. */
    uint64_t rx_drops[GUESTS_N_DROPS];
    uint64_t rx_errors;
    uint64_t tx_frames;
    uint64_t tx_errors;

    /* When this VM first committed a put of each watched key (CLOCK_REALTIME
     * ms; 0: not yet). */
    long long watch_ms[GUESTS_WATCH_MAX];
};

struct sim {
    struct sim_vm *vms;
    size_t n, allocated;
    struct pollfd *pfds;
    const char *dir;
    const char *status_path;
    long long status_interval;  /* ms; 0: only on SIGUSR1 and at exit. */
    long long next_status;
    enum ds_sync sync;
    long long started;
    uint64_t loops;
    const char *watch[GUESTS_WATCH_MAX]; /* --watch-key arguments. */
    size_t n_watch;
};

static volatile sig_atomic_t dump_requested;

static void
on_sigusr1(int sig)
{
    (void) sig;
    dump_requested = 1;
}

static void
add_spec(struct sim *sim, const struct guests_spec *spec, const char *where)
{
    for (size_t i = 0; i < sim->n; i++) {
        const struct guests_spec *o = &sim->vms[i].spec;
        if (!strcmp(o->vm, spec->vm) || o->chan_id == spec->chan_id
            || !strcmp(o->iface, spec->iface)) {
            bench_fatal("guests: %s: VM %s (chan-id %"PRIu32", %s) repeats "
                        "VM %s (chan-id %"PRIu32", %s)", where, spec->vm,
                        spec->chan_id, spec->iface, o->vm, o->chan_id,
                        o->iface);
        }
    }
    if (sim->n == sim->allocated) {
        sim->allocated = sim->allocated ? 2 * sim->allocated : 64;
        sim->vms = realloc(sim->vms, sim->allocated * sizeof *sim->vms);
        if (!sim->vms) {
            bench_fatal("guests: out of memory");
        }
    }
    struct sim_vm *vm = &sim->vms[sim->n++];
    memset(vm, 0, sizeof *vm);
    vm->spec = *spec;
    vm->fd = -1;
    chan_config_default(spec->chan_id, &vm->cfg);
    vm->cfg.vid = spec->vid;
}

static void
read_channel_file(struct sim *sim, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    char line[2 * GUESTS_PATH_MAX];
    unsigned int lineno = 0;

    if (!f) {
        bench_fatal("guests: %s: %s", path, strerror(errno));
    }
    while (fgets(line, sizeof line, f)) {
        char error[GUESTS_ERROR_LEN], where[GUESTS_PATH_MAX + 32];
        struct guests_spec spec;

        lineno++;
        snprintf(where, sizeof where, "%s:%u", path, lineno);
        int r = guests_spec_parse(line, 0, &spec, error, sizeof error);
        if (r < 0) {
            bench_fatal("guests: %s: %s", where, error);
        } else if (r > 0) {
            add_spec(sim, &spec, where);
        }
    }
    if (f != stdin) {
        fclose(f);
    }
}

/* Raises the open file limit: each VM holds a packet socket and a
 * datastore (its file and WAL). */
static void
raise_nofile(size_t n)
{
    struct rlimit rl;
    rlim_t want = 8 * (rlim_t) n + 64;

    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int
send_frame(const uint8_t *frame, size_t len, void *vm_)
{
    struct sim_vm *vm = vm_;
    uint8_t buf[SIM_FRAME_MAX];
    size_t n;
    ssize_t r;

    if (guests_frame_build(&vm->cfg, frame, len, buf, sizeof buf, &n)) {
        vm->tx_errors++;
        return EMSGSIZE;
    }
    do {
        r = send(vm->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        vm->tx_errors++;
        return errno;
    }
    vm->tx_frames++;
    return 0;
}

static int
open_socket(const char *iface, int rcvbuf)
{
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ALL),
        .sll_ifindex = if_nametoindex(iface),
    };
    int one = 1;
    int fd;

    if (!sll.sll_ifindex) {
        return -errno;
    }
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
                htons(ETH_P_ALL));
    if (fd < 0) {
        return -errno;
    }
    /* The tag the host pushed arrives as metadata. */
    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one);
    /* Our own transmissions are no input (older kernels: filtered by
     * sll_pkttype below). */
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    if (rcvbuf > 0
        && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
                      sizeof rcvbuf)) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    if (bind(fd, (struct sockaddr *) &sll, sizeof sll)) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

/* Datastore change callback (only with --watch-key): notes the first put of
 * each watched key. */
static void
vm_changed(void *vm_, const struct ds_change *change)
{
    struct sim_vm *vm = vm_;

    if (change->op != DS_PUT) {
        return;
    }
    for (size_t i = 0; i < vm->sim->n_watch; i++) {
        if (!vm->watch_ms[i] && !strcmp(change->key, vm->sim->watch[i])) {
            vm->watch_ms[i] = time_wall_msec();
        }
    }
}

static void
vm_start(struct sim *sim, struct sim_vm *vm, int rcvbuf, long long now)
{
    char path[GUESTS_PATH_MAX + 80];
    char error[KEYRING_ERROR_LEN];
    struct datastore_options dso = { .sync = sim->sync };
    uint32_t prev;
    int err;

    vm->fd = open_socket(vm->spec.iface, rcvbuf);
    if (vm->fd < 0) {
        bench_fatal("guests: %s: interface %s: %s", vm->spec.vm,
                    vm->spec.iface, strerror(-vm->fd));
    }
    if (vm->spec.keyfile[0]) {
        err = keyring_file_open(vm->spec.keyfile, now, &vm->keys, error,
                                sizeof error);
        if (err) {
            bench_fatal("guests: %s: %s", vm->spec.vm, error);
        }
    }
    snprintf(path, sizeof path, "%s/%s.db", sim->dir, vm->spec.vm);
    err = datastore_open_opts(path, &dso, &vm->ds);
    if (!err) {
        /* As chand-guest does: a store that served another chan-id is a
         * clone and forgets that channel. */
        err = datastore_claim_chan_id(vm->ds, vm->spec.chan_id, &prev);
    }
    if (err) {
        bench_fatal("guests: %s: datastore: %s", vm->spec.vm,
                    datastore_last_error());
    }
    vm->sim = sim;
    if (sim->n_watch) {
        datastore_set_change_cb(vm->ds, vm_changed, vm);
    }
    struct receiver_config rc = {
        .vid = vm->cfg.vid,
        .host_ip = vm->cfg.host.ip,
        .host_port = vm->cfg.host.port,
        .keys = vm->keys ? keyring_file_get(vm->keys) : NULL,
    };
    vm->rx = receiver_create(&rc, vm->ds, send_frame, vm, now);
    if (!vm->rx) {
        bench_fatal("guests: out of memory");
    }
}

static void
vm_stop(struct sim_vm *vm)
{
    receiver_destroy(vm->rx);
    keyring_file_destroy(vm->keys);
    datastore_close(vm->ds);
    if (vm->fd >= 0) {
        close(vm->fd);
    }
}

/* One read burst on 'vm's socket: up to SIM_BURST frames, one receiver
 * burst.  Returns true if the socket may hold more. */
static bool
vm_receive(struct sim_vm *vm, long long now)
{
    uint8_t buf[SIM_FRAME_MAX], frame[SIM_FRAME_MAX + 4];
    union {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
    } cbuf;
    size_t n;

    for (n = 0; n < SIM_BURST; n++) {
        struct sockaddr_ll from;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
        struct msghdr mh = {
            .msg_name = &from, .msg_namelen = sizeof from,
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = &cbuf, .msg_controllen = sizeof cbuf,
        };
        ssize_t r = recvmsg(vm->fd, &mh, MSG_DONTWAIT);

        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                vm->rx_errors++;
            }
            break;
        }
        if (from.sll_pkttype == PACKET_OUTGOING) {
            continue;
        }
        vm->rx_frames++;
        if (mh.msg_flags & MSG_TRUNC) {
            vm->rx_drops[GUESTS_DROP_PARSE]++;
            continue;
        }

        bool tagged = false;
        uint16_t tci = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
             c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == SOL_PACKET
                && c->cmsg_type == PACKET_AUXDATA) {
                struct tpacket_auxdata aux;
                memcpy(&aux, CMSG_DATA(c), sizeof aux);
                if (aux.tp_status & TP_STATUS_VLAN_VALID) {
                    tagged = true;
                    tci = aux.tp_vlan_tci;
                }
            }
        }

        size_t len;
        const uint8_t *payload;
        size_t payload_len;
        uint32_t src_ip;
        uint16_t src_port;
        enum guests_drop d;
        if (!guests_frame_retag(buf, r, tagged, tci, frame, sizeof frame,
                                &len)) {
            d = GUESTS_DROP_PARSE;
        } else {
            d = guests_frame_accept(&vm->cfg, frame, len, &payload,
                                    &payload_len, &src_ip, &src_port);
        }
        if (d) {
            vm->rx_drops[d]++;
            continue;
        }
        vm->rx_accepted++;
        receiver_input(vm->rx, payload, payload_len, src_ip, src_port, now);
    }
    receiver_flush(vm->rx, now);
    return n == SIM_BURST;
}

static void
vm_note_session(struct sim_vm *vm, long long now)
{
    bool in = receiver_in_session(vm->rx);

    if (in && !vm->in_session) {
        vm->sessions++;
        vm->session_since = now;
    }
    vm->in_session = in;
}

/* Status. */

struct sim_totals {
    uint64_t in_session, sessions, records_applied, msgs_applied,
             snapshots_begun, snapshots_finished, sessions_lost, commits,
             commit_errors, rx_frames, rx_accepted, rx_dropped, rx_errors,
             tx_frames, tx_errors, drop_auth, drop_other, drop_upstream;
};

static json_t *
vm_json(const struct sim_vm *vm, long long now, struct sim_totals *t)
{
    struct receiver_stats s;
    struct ds_state st;
    uint64_t dropped = 0, drop_other;

    receiver_get_stats(vm->rx, &s);
    datastore_get_state(vm->ds, &st);
    for (int i = 1; i < GUESTS_N_DROPS; i++) {
        dropped += vm->rx_drops[i];
    }
    drop_other = s.drop_source + s.drop_vid + s.drop_epoch + s.drop_gap
                 + s.drop_sync_payload + s.drop_sync_guest + s.drop_txn;
    for (int i = 1; i < CHAN_WIRE_N_ERRORS; i++) {
        if (i != CHAN_WIRE_ERR_AUTH) {
            drop_other += s.drop_wire[i];
        }
    }

    t->in_session += vm->in_session;
    t->sessions += vm->sessions;
    t->records_applied += s.records_applied;
    t->msgs_applied += s.msgs_applied;
    t->snapshots_begun += s.snapshots_begun;
    t->snapshots_finished += s.snapshots_finished;
    t->sessions_lost += s.sessions_lost;
    t->commits += s.commits;
    t->commit_errors += s.commit_errors;
    t->rx_frames += vm->rx_frames;
    t->rx_accepted += vm->rx_accepted;
    t->rx_dropped += dropped;
    t->rx_errors += vm->rx_errors;
    t->tx_frames += vm->tx_frames;
    t->tx_errors += vm->tx_errors;
    t->drop_auth += s.drop_wire[CHAN_WIRE_ERR_AUTH];
    t->drop_other += drop_other;
    t->drop_upstream += s.drop_type;

    json_t *drops = json_object();
    for (int i = 1; i < GUESTS_N_DROPS; i++) {
        if (vm->rx_drops[i]) {
            json_object_set_new(drops, guests_drop_name(i),
                                json_integer(vm->rx_drops[i]));
        }
    }
    json_t *j = json_pack(
        "{sI sI sb sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI so}",
        "chan_id", (json_int_t) vm->spec.chan_id,
        "vid", (json_int_t) vm->spec.vid,
        "in_session", vm->in_session,
        "sessions", (json_int_t) vm->sessions,
        "session_age_ms", (json_int_t) (vm->in_session
                                        ? now - vm->session_since : 0),
        "host_epoch", (json_int_t) st.host_epoch,
        "guest_epoch", (json_int_t) st.guest_epoch,
        "position", (json_int_t) st.position,
        "records_applied", (json_int_t) s.records_applied,
        "msgs_applied", (json_int_t) s.msgs_applied,
        "ops_applied_ever", (json_int_t) st.ops_applied,
        "snapshots_begun", (json_int_t) s.snapshots_begun,
        "snapshots_finished", (json_int_t) s.snapshots_finished,
        "sessions_lost", (json_int_t) s.sessions_lost,
        "rx_frames", (json_int_t) vm->rx_frames,
        "tx_frames", (json_int_t) vm->tx_frames,
        "tx_errors", (json_int_t) vm->tx_errors,
        "drop_auth", (json_int_t) s.drop_wire[CHAN_WIRE_ERR_AUTH],
        "drop_protocol", (json_int_t) drop_other,
        "drop_upstream", (json_int_t) s.drop_type,
        "rx_generation", (json_int_t) receiver_rx_generation(vm->rx),
        "drop_frame", drops);
    if (j && vm->sim && vm->sim->n_watch) {
        json_t *watch = json_object();
        for (size_t i = 0; i < vm->sim->n_watch; i++) {
            json_object_set_new(watch, vm->sim->watch[i],
                                vm->watch_ms[i]
                                ? json_integer(vm->watch_ms[i])
                                : json_null());
        }
        json_object_set_new(j, "watch", watch);
    }
    return j;
}

static int
compare_ll(const void *a_, const void *b_)
{
    const long long *a = a_, *b = b_;

    return *a < *b ? -1 : *a > *b;
}

/* The watched keys: per key, how many VMs committed it and when (ms,
 * CLOCK_REALTIME): first, p50, p90, p99, max and all times, ascending. */
static json_t *
watch_json(const struct sim *sim)
{
    json_t *watch = json_object();
    long long *t = xmalloc((sim->n ? sim->n : 1) * sizeof *t);

    for (size_t w = 0; w < sim->n_watch; w++) {
        size_t n = 0;
        for (size_t i = 0; i < sim->n; i++) {
            if (sim->vms[i].watch_ms[w]) {
                t[n++] = sim->vms[i].watch_ms[w];
            }
        }
        qsort(t, n, sizeof *t, compare_ll);
        json_t *times = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(times, json_integer(t[i]));
        }
        json_t *o = json_pack("{sI sI so}", "vms", (json_int_t) n,
                              "of", (json_int_t) sim->n, "times_ms", times);
        static const struct {
            const char *name;
            double p;
        } pcts[] = {
            { "first_ms", 0 }, { "p50_ms", 50 }, { "p90_ms", 90 },
            { "p99_ms", 99 }, { "max_ms", 100 },
        };
        for (size_t i = 0; i < sizeof pcts / sizeof *pcts; i++) {
            json_object_set_new(o, pcts[i].name,
                                n ? json_integer(guests_percentile(
                                                     t, n, pcts[i].p))
                                  : json_null());
        }
        json_object_set_new(watch, sim->watch[w], o);
    }
    free(t);
    return watch;
}

static json_t *
totals_json(const struct sim *sim, const struct sim_totals *t,
            long long now)
{
    return json_pack(
        "{sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI}",
        "channels", (json_int_t) sim->n,
        "in_session", (json_int_t) t->in_session,
        "sessions", (json_int_t) t->sessions,
        "records_applied", (json_int_t) t->records_applied,
        "msgs_applied", (json_int_t) t->msgs_applied,
        "snapshots_begun", (json_int_t) t->snapshots_begun,
        "snapshots_finished", (json_int_t) t->snapshots_finished,
        "sessions_lost", (json_int_t) t->sessions_lost,
        "commits", (json_int_t) t->commits,
        "commit_errors", (json_int_t) t->commit_errors,
        "rx_frames", (json_int_t) t->rx_frames,
        "rx_accepted", (json_int_t) t->rx_accepted,
        "rx_dropped", (json_int_t) t->rx_dropped,
        "rx_errors", (json_int_t) t->rx_errors,
        "tx_frames", (json_int_t) t->tx_frames,
        "tx_errors", (json_int_t) t->tx_errors,
        "drop_auth", (json_int_t) t->drop_auth,
        "drop_protocol", (json_int_t) t->drop_other,
        "drop_upstream", (json_int_t) t->drop_upstream,
        "loops", (json_int_t) sim->loops,
        "uptime_ms", (json_int_t) (now - sim->started));
}

/* Returns the status (a new object) and stores the totals in '*t'. */
static json_t *
status_json(const struct sim *sim, long long now, struct sim_totals *t)
{
    json_t *vms = json_object();

    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < sim->n; i++) {
        json_object_set_new(vms, sim->vms[i].spec.vm,
                            vm_json(&sim->vms[i], now, t));
    }
    json_t *status = json_pack("{sI so so}", "pid", (json_int_t) getpid(),
                               "total", totals_json(sim, t, now),
                               "vms", vms);
    if (status && sim->n_watch) {
        json_object_set_new(status, "watch", watch_json(sim));
    }
    return status;
}

static void
write_status(struct sim *sim, long long now)
{
    struct sim_totals t;
    json_t *status = status_json(sim, now, &t);

    if (sim->status_path) {
        char tmp[GUESTS_PATH_MAX + 16];
        snprintf(tmp, sizeof tmp, "%s.tmp", sim->status_path);
        if (json_dump_file(status, tmp, JSON_COMPACT)
            || rename(tmp, sim->status_path)) {
            bench_warn("guests: writing %s: %s", sim->status_path,
                       strerror(errno));
        }
    } else {
        /* No file: SIGUSR1 dumps to stderr. */
        char *s = json_dumps(status, JSON_COMPACT);
        if (s) {
            fprintf(stderr, "%s\n", s);
            free(s);
        }
    }
    json_decref(status);
}

enum {
    OPT_CHANNELS = 256, OPT_CHANNEL, OPT_DIR, OPT_STATUS,
    OPT_STATUS_INTERVAL, OPT_SYNC, OPT_RCVBUF, OPT_LOG_FILE, OPT_VERBOSE,
    OPT_READY, OPT_WATCH_KEY,
};

int
bench_cmd_guests(int argc, char *argv[])
{
    static const struct option longopts[] = {
        {"channels", required_argument, NULL, OPT_CHANNELS},
        {"channel", required_argument, NULL, OPT_CHANNEL},
        {"dir", required_argument, NULL, OPT_DIR},
        {"status", required_argument, NULL, OPT_STATUS},
        {"status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
        {"sync", required_argument, NULL, OPT_SYNC},
        {"rcvbuf", required_argument, NULL, OPT_RCVBUF},
        {"log-file", required_argument, NULL, OPT_LOG_FILE},
        {"verbose", required_argument, NULL, OPT_VERBOSE},
        {"ready", required_argument, NULL, OPT_READY},
        {"watch-key", required_argument, NULL, OPT_WATCH_KEY},
        {NULL, 0, NULL, 0},
    };
    struct sim sim = { .status_interval = 1000, .sync = DS_SYNC_FULL };
    const char *verbose = "warn", *log_file = NULL, *ready = NULL;
    int rcvbuf = 0;
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_CHANNELS:
            read_channel_file(&sim, optarg);
            break;
        case OPT_CHANNEL: {
            struct guests_spec spec;
            char error[GUESTS_ERROR_LEN];
            if (guests_spec_parse(optarg, ',', &spec, error,
                                  sizeof error) <= 0) {
                bench_fatal("guests: --channel %s: %s", optarg,
                            strchr(optarg, ',') ? error
                            : "expected VM,CHAN_ID,VID,IFACE[,KEYFILE]");
            }
            add_spec(&sim, &spec, "--channel");
            break;
        }
        case OPT_DIR: sim.dir = optarg; break;
        case OPT_STATUS: sim.status_path = optarg; break;
        case OPT_STATUS_INTERVAL:
            sim.status_interval = (long long) (1000 * bench_arg_double(
                                      "--status-interval", optarg));
            break;
        case OPT_SYNC:
            if (!strcmp(optarg, "full")) {
                sim.sync = DS_SYNC_FULL;
            } else if (!strcmp(optarg, "normal")) {
                sim.sync = DS_SYNC_NORMAL;
            } else {
                bench_fatal("guests: --sync: full or normal");
            }
            break;
        case OPT_RCVBUF:
            rcvbuf = (int) bench_arg_u64("--rcvbuf", optarg);
            break;
        case OPT_LOG_FILE: log_file = optarg; break;
        case OPT_VERBOSE: verbose = optarg; break;
        case OPT_READY: ready = optarg; break;
        case OPT_WATCH_KEY: {
            char error[GUESTS_ERROR_LEN];
            if (guests_watch_key_check(optarg, sim.watch, sim.n_watch,
                                       error, sizeof error)) {
                bench_fatal("guests: --watch-key %s: %s", optarg, error);
            }
            sim.watch[sim.n_watch++] = optarg;
            break;
        }
        default: exit(2);
        }
    }
    if (optind != argc) {
        bench_fatal("guests: unexpected argument '%s'", argv[optind]);
    }
    if (!sim.n) {
        bench_fatal("guests: no channels (--channels FILE or --channel "
                    "VM,CHAN_ID,VID,IFACE[,KEYFILE])");
    }
    if (!sim.dir) {
        bench_fatal("guests: --dir DIR is required (the datastores: "
                    "DIR/VM.db)");
    }
    if (mkdir(sim.dir, 0755) && errno != EEXIST) {
        bench_fatal("guests: %s: %s", sim.dir, strerror(errno));
    }
    vlog_init("chand-bench-guests");
    if (vlog_set_levels_from_string(verbose)) {
        bench_fatal("guests: --verbose %s: bad log levels", verbose);
    }
    if (log_file && vlog_set_log_file(log_file)) {
        bench_fatal("guests: --log-file %s: %s", log_file, strerror(errno));
    }

    struct sigaction sa = { .sa_handler = on_sigusr1 };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    raise_nofile(sim.n);
    sim.started = time_msec();
    for (size_t i = 0; i < sim.n; i++) {
        vm_start(&sim, &sim.vms[i], rcvbuf, time_msec());
    }
    sim.pfds = calloc(sim.n, sizeof *sim.pfds);
    if (!sim.pfds) {
        bench_fatal("guests: out of memory");
    }
    for (size_t i = 0; i < sim.n; i++) {
        sim.pfds[i].fd = sim.vms[i].fd;
        sim.pfds[i].events = POLLIN;
    }
    fprintf(stderr, "chand-bench guests: %zu channels, datastores in %s, "
            "started in %lld ms\n", sim.n, sim.dir,
            time_msec() - sim.started);
    sim.next_status = time_msec();
    bench_touch(ready);

    while (!bench_stop) {
        long long now = time_msec();
        long long next = now + 1000;

        /* Timed work, and the earliest next one. */
        for (size_t i = 0; i < sim.n; i++) {
            struct sim_vm *vm = &sim.vms[i];
            if (vm->keys) {
                if (keyring_file_run(vm->keys, now)) {
                    receiver_set_keys(vm->rx, keyring_file_get(vm->keys));
                }
                long long k = keyring_file_next_check(vm->keys);
                next = k < next ? k : next;
            }
            receiver_run(vm->rx, now);
            vm_note_session(vm, now);
            long long w = receiver_next_wakeup(vm->rx, now);
            next = w < next ? w : next;
        }
        if (dump_requested || (sim.status_interval
                               && now >= sim.next_status)) {
            dump_requested = 0;
            write_status(&sim, now);
            if (sim.status_interval) {
                while (sim.next_status <= now) {
                    sim.next_status += sim.status_interval;
                }
            }
        }
        if (sim.status_interval && sim.next_status < next) {
            next = sim.next_status;
        }

        int timeout = next <= now ? 0 : (int) (next - now);
        int r = poll(sim.pfds, sim.n, timeout);
        if (r < 0) {
            if (errno != EINTR) {
                bench_fatal("guests: poll: %s", strerror(errno));
            }
            continue;
        }
        sim.loops++;
        now = time_msec();
        for (size_t i = 0; r > 0 && i < sim.n; i++) {
            if (sim.pfds[i].revents) {
                r--;
                vm_receive(&sim.vms[i], now);
                vm_note_session(&sim.vms[i], now);
            }
        }
    }

    long long now = time_msec();
    struct sim_totals t;
    write_status(&sim, now);
    json_decref(status_json(&sim, now, &t));
    bench_print_json(totals_json(&sim, &t, now));
    for (size_t i = 0; i < sim.n; i++) {
        vm_stop(&sim.vms[i]);
    }
    free(sim.pfds);
    free(sim.vms);
    return 0;
}
