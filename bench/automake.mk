# bench/: the benchmark harness (scripts/bench, doc/bench.md).  chand-bench
# holds the measuring roles the harness runs in each namespace; it is built
# with 'make' and never installed.

noinst_PROGRAMS += bench/chand-bench
bench_chand_bench_SOURCES = \
	bench/chand-bench.c bench/chand-bench.h \
	bench/bench-util.c \
	bench/bench-net.c \
	bench/bench-db.c \
	bench/bench-cluster.c \
	bench/bench-guest.c
bench_chand_bench_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
bench_chand_bench_LDADD = $(CHAND_LIBS) $(SQLITE_LIBS)

EXTRA_DIST += bench/report.py bench/results
dist_doc_DATA += doc/bench.md
