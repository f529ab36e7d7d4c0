/* Copyright (c) 2026 The chand authors.  See chand-bench.h.
 *
 * main(): dispatches to the subcommands. */

#include <config.h>
#include "chand-bench.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char *argv[]);
    const char *usage;
} commands[] = {
    { "inject", bench_cmd_inject,
      "MGMT-SOCKET CHAN-ID --count N [--rate PPS] [--size B] [--tag T]" },
    { "blast", bench_cmd_blast,
      "IP:PORT --count N [--rate PPS] [--size B] [--tag T] [--from IP]" },
    { "count", bench_cmd_count,
      "IP:PORT [--dev IF] [--tag T] [--expect N] [--idle-ms MS] "
      "[--max-wait-ms MS] [--ready FILE]" },
    { "capture", bench_cmd_capture,
      "IFACE [--duration-s S] [--ready FILE]  (until SIGTERM)" },
    { "push", bench_cmd_push,
      "DB --vm VM|--all --prefix P --count N [--per-txn K] "
      "[--value-size B] [--wait-applied N] [--timeout-s S] [--set NAME]" },
    { "pushrate", bench_cmd_pushrate,
      "DB --vm VM|--all --prefix P --keys K --rate R --count N --log FILE "
      "[--settle N]" },
    { "pushbig", bench_cmd_pushbig,
      "DB --vm VM --key K --bytes B [--version V]" },
    { "cpwrite", bench_cmd_cpwrite,
      "DB --vm VM|--all --key K --count N --interval-ms MS --log FILE" },
    { "watch", bench_cmd_watch,
      "API --prefix P [--count N] [--log FILE] [--ready FILE] "
      "[--timeout-s S]" },
    { "dbpoll", bench_cmd_dbpoll,
      "GUEST-DB --count N [--interval-us US] [--timeout-s S] "
      "[--ready FILE]" },
    { "publish", bench_cmd_publish,
      "API --prefix P --count N --log FILE [--keys K] [--inflight N] "
      "[--rate R] [--value-size B] [--wait-session S] [--timeout-s S]" },
    { "grwatch", bench_cmd_grwatch,
      "DB --vm VM --prefix P [--count N] [--log FILE] [--relay-prefix RP "
      "--relay-log FILE] [--ready FILE] [--idle-s S] [--timeout-s S]" },
    { "now", bench_cmd_now, "" },
    { "failover", bench_cmd_failover,
      "REMOTES --vm VM --key K --kill-pid PID [--retry-ms MS] "
      "[--attempt-ms MS] [--timeout-s S]" },
    { "chwait", bench_cmd_chwait,
      "REMOTES --vm VM --chassis C [--log FILE] [--ready FILE] "
      "[--timeout-s S]" },
    { "simhosts", bench_cmd_simhosts,
      "REMOTES --hosts N [--vms-per-host V] [--pushes P] [--prefix P] "
      "[--settle-ms MS] [--idle-ms MS] [--cpu NAME=PID]... [--timeout-s S]" },
    { "guests", bench_cmd_guests,
      "{--channels FILE|--channel VM,ID,VID,IFACE[,KEYFILE]}... --dir DIR "
      "[--status FILE] [--status-interval S] [--sync full|normal] "
      "[--rcvbuf B] [--log-file F] [--verbose LEVELS] [--ready FILE]  "
      "(until SIGTERM; SIGUSR1: status now)" },
};

static void
usage(void)
{
    printf("chand-bench: measuring helpers for scripts/bench "
           "(doc/bench.md)\nusage:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        printf("  chand-bench %s %s\n", commands[i].name, commands[i].usage);
    }
    printf("Chan DB roles take --private-key FILE --certificate FILE "
           "--ca-cert FILE for ssl: remotes.\n"
           "Times are CLOCK_MONOTONIC nanoseconds; results are one JSON "
           "object on stdout.\n");
}

int
main(int argc, char *argv[])
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    bench_catch_signals();
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (!strcmp(argv[1], commands[i].name)) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "chand-bench: unknown command '%s' (--help lists "
            "them)\n", argv[1]);
    return 2;
}
