/* Copyright (c) 2026 The chand authors.
 *
 * replay-cmp: compares, shows and normalizes the replay tier's pcaps.
 *
 * Usage:
 *   replay-cmp [--unordered] [--prefix=PREFIX] [--label=TEXT]
 *              EXPECTED_DIR ACTUAL_DIR
 *       Compares every PREFIX*.pcap (default "out-") found in either
 *       directory, frame by frame (bytes, and the .meta line if any; never
 *       timestamps).  A file missing on one side counts as empty.  With
 *       --unordered the frames of a file are compared as a multiset (for
 *       the OVS-DPDK run, where ports replay their files one after the
 *       other); with --timestamps timestamps must match too (for input
 *       files, whose timestamps carry the scenario's order and timing).
 *       Prints a per-packet diff of the decoded headers for every
 *       difference.  Exit status 0 if everything matches, 1 if not, 2 on
 *       an error.
 *
 *   replay-cmp --dump [-v] FILE.pcap...
 *       Prints one decoded line per packet (with -v every field), chand
 *       headers included: handy on an operator's tcpdump capture.
 *
 *   replay-cmp --normalize SRC.pcap DST.pcap
 *       Copies SRC (and its .meta) to DST with timestamps 1, 2, 3, ... s,
 *       so that regenerated golden files only change when a frame does.
 *
 *   replay-cmp --concat DST.pcap SRC.pcap...
 *       Writes the packets of every existing SRC, in turn, to DST.
 *
 *   replay-cmp --scenario=PORT FILE.pcap
 *       Prints each packet as a scenario line "PORT hex ..." preceded by a
 *       comment with its decoded summary: turns a capture (say, tcpdump -Q
 *       in on a vNIC) into a replay case.
 */

#include <config.h>

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame-desc.h"
#include "replay-pcap.h"
#include "util.h"

static bool unordered;
static bool with_timestamps;

/* Differences reported in the current file; after MAX_REPORTS only counted
 * (a rule that breaks every frame would otherwise print pages). */
#define MAX_REPORTS 8
static size_t n_reports;

static bool
report_more(void)
{
    return n_reports++ < MAX_REPORTS;
}
static const char *prefix = "out-";
static const char *label = "";

/* Decodes 'pkt' including its metadata words ("pin.pkt_mark" ...). */
static void
describe(const struct replay_pkt *pkt, struct frame_desc *desc)
{
    frame_desc_decode(pkt->data, pkt->len, desc);
    if (pkt->meta && *pkt->meta) {
        char *copy = xstrdup(pkt->meta), *save = NULL;
        for (char *w = strtok_r(copy, " ", &save); w;
             w = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(w, '=');
            char name[FRAME_DESC_NAME_LEN];
            if (eq) {
                *eq = '\0';
            }
            snprintf(name, sizeof name, "pin.%s", w);
            frame_desc_add(desc, name, eq ? eq + 1 : "");
        }
        free(copy);
    }
}

static bool
same_meta(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

static bool
same_pkt(const struct replay_pkt *a, const struct replay_pkt *b)
{
    return a->len == b->len && !memcmp(a->data, b->data, a->len)
           && same_meta(a->meta, b->meta)
           && (!with_timestamps
               || (a->ts.tv_sec == b->ts.tv_sec
                   && a->ts.tv_usec == b->ts.tv_usec));
}

static void
print_summary(const char *what, const struct replay_pkt *pkt)
{
    struct frame_desc desc;
    describe(pkt, &desc);
    printf("        %s %s%s%s\n", what, desc.summary,
           pkt->meta ? " | " : "", pkt->meta ? pkt->meta : "");
}

/* Number of fields that differ between 'a' and 'b'; prints them when
 * 'print'. */
static size_t
field_diff(const struct replay_pkt *a, const struct replay_pkt *b,
           bool print)
{
    struct frame_desc da, db;
    size_t n = 0;

    describe(a, &da);
    describe(b, &db);
    for (size_t i = 0; i < da.n; i++) {
        const char *vb = frame_desc_get(&db, da.fields[i].name);
        if (!vb || strcmp(vb, da.fields[i].value)) {
            if (print) {
                printf("          %-18s %s -> %s\n", da.fields[i].name,
                       da.fields[i].value, vb ? vb : "(absent)");
            }
            n++;
        }
    }
    for (size_t i = 0; i < db.n; i++) {
        if (!frame_desc_get(&da, db.fields[i].name)) {
            if (print) {
                printf("          %-18s (absent) -> %s\n", db.fields[i].name,
                       db.fields[i].value);
            }
            n++;
        }
    }
    if (with_timestamps && (a->ts.tv_sec != b->ts.tv_sec
                            || a->ts.tv_usec != b->ts.tv_usec)) {
        if (print) {
            printf("          %-18s %ld.%06ld -> %ld.%06ld\n", "timestamp",
                   (long) a->ts.tv_sec, (long) a->ts.tv_usec,
                   (long) b->ts.tv_sec, (long) b->ts.tv_usec);
        }
        n++;
    }
    if (!n && print) {
        size_t len = a->len < b->len ? a->len : b->len, off = 0;
        while (off < len && a->data[off] == b->data[off]) {
            off++;
        }
        if (off < len) {
            printf("          bytes differ from offset %zu: 0x%02x -> "
                   "0x%02x\n", off, a->data[off], b->data[off]);
        } else {
            printf("          lengths differ: %zu -> %zu\n", a->len,
                   b->len);
        }
    }
    return n;
}

static void
print_differs(size_t ie, const struct replay_pkt *e, size_t ia,
              const struct replay_pkt *a)
{
    printf("      expected #%zu, captured #%zu differ:\n", ie + 1, ia + 1);
    print_summary("expected:", e);
    print_summary("captured:", a);
    printf("        fields (expected -> captured):\n");
    field_diff(e, a, true);
}

/* Reports expected packets 'dels' and captured packets 'ins' that have no
 * equal counterpart, pairing each missing packet with the most similar
 * unexpected one for a field diff. */
static void
report_run(const struct replay_pcap *exp, const size_t *dels, size_t n_dels,
           const struct replay_pcap *act, const size_t *ins, size_t n_ins)
{
    bool *used = xcalloc(n_ins + 1, sizeof *used);

    for (size_t d = 0; d < n_dels; d++) {
        size_t best = SIZE_MAX, best_score = SIZE_MAX;
        for (size_t i = 0; i < n_ins; i++) {
            if (!used[i]) {
                size_t score;
                if (!unordered) {
                    best = i;       /* In order: pair by position. */
                    break;
                }
                score = field_diff(&exp->pkts[dels[d]], &act->pkts[ins[i]],
                                   false);
                if (score < best_score) {
                    best_score = score;
                    best = i;
                }
            }
        }
        if (best != SIZE_MAX) {
            used[best] = true;
            if (report_more()) {
                print_differs(dels[d], &exp->pkts[dels[d]], ins[best],
                              &act->pkts[ins[best]]);
            }
        } else if (report_more()) {
            printf("      expected #%zu missing (not captured):\n",
                   dels[d] + 1);
            print_summary("expected:", &exp->pkts[dels[d]]);
        }
    }
    for (size_t i = 0; i < n_ins; i++) {
        if (!used[i] && report_more()) {
            printf("      captured #%zu unexpected:\n", ins[i] + 1);
            print_summary("captured:", &act->pkts[ins[i]]);
        }
    }
    free(used);
}

/* Compares two packet lists; returns true if they match. */
static bool
compare_lists(const char *name, const struct replay_pcap *exp,
              const struct replay_pcap *act)
{
    size_t n = exp->n, m = act->n;
    size_t *dels = xmalloc((n + 1) * sizeof *dels);
    size_t *ins = xmalloc((m + 1) * sizeof *ins);
    size_t n_dels = 0, n_ins = 0;
    bool ok = true;

    n_reports = 0;

    if (unordered) {
        bool *taken = xcalloc(m + 1, sizeof *taken);
        for (size_t i = 0; i < n; i++) {
            size_t j;
            for (j = 0; j < m; j++) {
                if (!taken[j] && same_pkt(&exp->pkts[i], &act->pkts[j])) {
                    taken[j] = true;
                    break;
                }
            }
            if (j == m) {
                dels[n_dels++] = i;
            }
        }
        for (size_t j = 0; j < m; j++) {
            if (!taken[j]) {
                ins[n_ins++] = j;
            }
        }
        free(taken);
        ok = !n_dels && !n_ins;
        if (!ok) {
            printf("  %s%s: %zu expected, %zu captured (order ignored): "
                   "MISMATCH\n", label, name, n, m);
            report_run(exp, dels, n_dels, act, ins, n_ins);
        }
    } else {
        /* Longest common subsequence, then walk the edit script. */
        unsigned int *lcs = xcalloc((n + 1) * (m + 1),
                                    sizeof *lcs);
#define LCS(I, J) lcs[(I) * (m + 1) + (J)]
        for (size_t i = n; i-- > 0;) {
            for (size_t j = m; j-- > 0;) {
                LCS(i, j) = (same_pkt(&exp->pkts[i], &act->pkts[j])
                             ? LCS(i + 1, j + 1) + 1
                             : LCS(i + 1, j) > LCS(i, j + 1)
                               ? LCS(i + 1, j) : LCS(i, j + 1));
            }
        }
        ok = LCS(0, 0) == n && n == m;
        if (!ok) {
            printf("  %s%s: %zu expected, %zu captured: MISMATCH\n",
                   label, name, n, m);
        }
        size_t i = 0, j = 0;
        while (!ok && (i < n || j < m)) {
            if (i < n && j < m && same_pkt(&exp->pkts[i], &act->pkts[j])
                && LCS(i, j) == LCS(i + 1, j + 1) + 1) {
                report_run(exp, dels, n_dels, act, ins, n_ins);
                n_dels = n_ins = 0;
                i++;
                j++;
            } else if (j >= m || (i < n && LCS(i + 1, j) >= LCS(i, j + 1))) {
                dels[n_dels++] = i++;
            } else {
                ins[n_ins++] = j++;
            }
        }
        if (!ok) {
            report_run(exp, dels, n_dels, act, ins, n_ins);
        }
#undef LCS
        free(lcs);
    }
    if (n_reports > MAX_REPORTS) {
        printf("      ... and %zu more differences in %s\n",
               n_reports - MAX_REPORTS, name);
    }
    free(dels);
    free(ins);
    return ok;
}

/* Adds the names of 'dir''s PREFIX*.pcap files to 'names'. */
static int
list_dir(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d) {
        fprintf(stderr, "replay-cmp: %s: %m\n", dir);
        return 2;
    }
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, prefix, strlen(prefix)) || len < 5
            || strcmp(de->d_name + len - 5, ".pcap")) {
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < *n; i++) {
            dup |= !strcmp((*names)[i], de->d_name);
        }
        if (!dup) {
            *names = xrealloc(*names, (*n + 1) * sizeof **names);
            (*names)[(*n)++] = xstrdup(de->d_name);
        }
    }
    closedir(d);
    return 0;
}

static int
compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
do_compare(const char *exp_dir, const char *act_dir)
{
    char **names = NULL;
    size_t n = 0;
    int status = 0;

    if (list_dir(exp_dir, &names, &n) || list_dir(act_dir, &names, &n)) {
        return 2;
    }
    qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        struct replay_pcap exp = REPLAY_PCAP_INITIALIZER;
        struct replay_pcap act = REPLAY_PCAP_INITIALIZER;
        char *ep = xasprintf("%s/%s", exp_dir, names[i]);
        char *ap = xasprintf("%s/%s", act_dir, names[i]);
        char *err;

        if (replay_pcap_read(ep, true, &exp, &err)
            || replay_pcap_read(ap, true, &act, &err)) {
            fprintf(stderr, "replay-cmp: %s\n", err);
            free(err);
            status = 2;
        } else if (!compare_lists(names[i], &exp, &act) && !status) {
            status = 1;
        }
        replay_pcap_destroy(&exp);
        replay_pcap_destroy(&act);
        free(ep);
        free(ap);
        free(names[i]);
    }
    free(names);
    return status;
}

static int
do_dump(int argc, char *argv[], bool verbose)
{
    int status = 0;

    for (int i = 0; i < argc; i++) {
        struct replay_pcap pcap = REPLAY_PCAP_INITIALIZER;
        char *err;

        if (replay_pcap_read(argv[i], false, &pcap, &err)) {
            fprintf(stderr, "replay-cmp: %s\n", err);
            free(err);
            status = 2;
            continue;
        }
        printf("%s: %zu packets\n", argv[i], pcap.n);
        for (size_t j = 0; j < pcap.n; j++) {
            struct frame_desc desc;
            describe(&pcap.pkts[j], &desc);
            printf("%4zu %s%s%s\n", j + 1, desc.summary,
                   pcap.pkts[j].meta ? " | " : "",
                   pcap.pkts[j].meta ? pcap.pkts[j].meta : "");
            for (size_t k = 0; verbose && k < desc.n; k++) {
                printf("       %-18s %s\n", desc.fields[k].name,
                       desc.fields[k].value);
            }
        }
        replay_pcap_destroy(&pcap);
    }
    return status;
}

static int
do_normalize(const char *src, const char *dst)
{
    struct replay_pcap pcap = REPLAY_PCAP_INITIALIZER;
    char *err;
    int status = 0;

    if (replay_pcap_read(src, false, &pcap, &err)
        || replay_pcap_write(dst, &pcap, true, &err)) {
        fprintf(stderr, "replay-cmp: %s\n", err);
        free(err);
        status = 2;
    }
    replay_pcap_destroy(&pcap);
    return status;
}

static int
do_concat(const char *dst, int n_src, char *src[])
{
    struct replay_pcap pcap = REPLAY_PCAP_INITIALIZER;
    char *err = NULL;
    int status = 0;

    for (int i = 0; i < n_src && !status; i++) {
        status = replay_pcap_read(src[i], true, &pcap, &err);
    }
    if (!status) {
        status = replay_pcap_write(dst, &pcap, false, &err);
    }
    if (status) {
        fprintf(stderr, "replay-cmp: %s\n", err);
        free(err);
    }
    replay_pcap_destroy(&pcap);
    return status ? 2 : 0;
}

static int
do_scenario(const char *port, const char *path)
{
    struct replay_pcap pcap = REPLAY_PCAP_INITIALIZER;
    char *err;

    if (replay_pcap_read(path, false, &pcap, &err)) {
        fprintf(stderr, "replay-cmp: %s\n", err);
        free(err);
        return 2;
    }
    printf("# %zu packets from %s\n", pcap.n, path);
    for (size_t i = 0; i < pcap.n; i++) {
        struct frame_desc desc;
        describe(&pcap.pkts[i], &desc);
        printf("# %s\n%s hex ", desc.summary, port);
        for (size_t j = 0; j < pcap.pkts[i].len; j++) {
            printf("%02x", pcap.pkts[i].data[j]);
        }
        putchar('\n');
    }
    replay_pcap_destroy(&pcap);
    return 0;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: replay-cmp [--unordered] [--timestamps] "
            "[--prefix=PREFIX] [--label=TEXT] EXPECTED_DIR ACTUAL_DIR\n"
            "       replay-cmp --dump [-v] FILE.pcap...\n"
            "       replay-cmp --normalize SRC.pcap DST.pcap\n"
            "       replay-cmp --concat DST.pcap SRC.pcap...\n"
            "       replay-cmp --scenario=PORT FILE.pcap\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    enum { COMPARE, DUMP, NORMALIZE, CONCAT, SCENARIO } mode = COMPARE;
    const char *scenario_port = NULL;
    static const struct option long_options[] = {
        { "unordered", no_argument, NULL, 'u' },
        { "timestamps", no_argument, NULL, 't' },
        { "prefix", required_argument, NULL, 'p' },
        { "label", required_argument, NULL, 'l' },
        { "dump", no_argument, NULL, 'd' },
        { "normalize", no_argument, NULL, 'n' },
        { "concat", no_argument, NULL, 'c' },
        { "scenario", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    bool verbose = false;
    int c;

    while ((c = getopt_long(argc, argv, "v", long_options, NULL)) != -1) {
        switch (c) {
        case 'u': unordered = true; break;
        case 't': with_timestamps = true; break;
        case 'p': prefix = optarg; break;
        case 'l': label = optarg; break;
        case 'd': mode = DUMP; break;
        case 'n': mode = NORMALIZE; break;
        case 'c': mode = CONCAT; break;
        case 's': mode = SCENARIO; scenario_port = optarg; break;
        case 'v': verbose = true; break;
        default: usage();
        }
    }
    argc -= optind;
    argv += optind;
    switch (mode) {
    case DUMP:
        if (argc < 1) {
            usage();
        }
        return do_dump(argc, argv, verbose);
    case NORMALIZE:
        if (argc != 2) {
            usage();
        }
        return do_normalize(argv[0], argv[1]);
    case CONCAT:
        if (argc < 2) {
            usage();
        }
        return do_concat(argv[0], argc - 1, argv + 1);
    case SCENARIO:
        if (argc != 1) {
            usage();
        }
        return do_scenario(scenario_port, argv[0]);
    case COMPARE:
    default:
        if (argc != 2) {
            usage();
        }
        return do_compare(argv[0], argv[1]);
    }
}
