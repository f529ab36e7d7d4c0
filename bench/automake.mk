# bench/: the benchmark harness (scripts/bench, doc/bench.md).  chand-bench
# holds the measuring roles the harness runs in each namespace; it is built
# with 'make' and never installed.

noinst_PROGRAMS += bench/chand-bench
# The guest simulator ('guests') runs chand-guest's own protocol code.
BENCH_GUESTS_SOURCES = bench/bench-guests.c bench/guests-spec.c \
	bench/guests-spec.h chand-guest/receiver.c chand-guest/keyring.c \
	chand-guest/datastore.c
bench_chand_bench_SOURCES = \
	bench/chand-bench.c bench/chand-bench.h \
	bench/bench-util.c \
	bench/bench-net.c \
	bench/bench-db.c \
	bench/bench-cluster.c \
	bench/bench-guest.c \
	$(BENCH_GUESTS_SOURCES)
bench_chand_bench_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) -I$(top_srcdir)/chand-guest
bench_chand_bench_LDADD = $(CHAND_LIBS) $(SQLITE_LIBS)

EXTRA_DIST += bench/report.py bench/soak-report.py bench/qga-bench.py \
	bench/results
dist_doc_DATA += doc/bench.md
