# test/replay: the packet-level replay tier (doc/replay.md).  The harness
# programs are built with 'make'; test/replay/run (called by scripts/check)
# drives them against a private ovs-vswitchd --enable-dummy=override.

REPLAY_CFLAGS = $(AM_CFLAGS) $(PCAP_CFLAGS)
REPLAY_LDADD = $(CHAND_LIBS) $(PCAP_LIBS)
REPLAY_COMMON = \
	test/replay/replay-pcap.c test/replay/replay-pcap.h \
	test/replay/frame-desc.c test/replay/frame-desc.h

REPLAY_TOOLS = \
	test/replay/render-flows \
	test/replay/replay-gen \
	test/replay/replay-feed \
	test/replay/replay-cmp
noinst_PROGRAMS += $(REPLAY_TOOLS)

test_replay_render_flows_SOURCES = test/replay/render-flows.c
test_replay_render_flows_CFLAGS = $(REPLAY_CFLAGS)
test_replay_render_flows_LDADD = $(CHAND_LIBS)

test_replay_replay_gen_SOURCES = test/replay/replay-gen.c $(REPLAY_COMMON)
test_replay_replay_gen_CFLAGS = $(REPLAY_CFLAGS)
test_replay_replay_gen_LDADD = $(REPLAY_LDADD)

test_replay_replay_feed_SOURCES = test/replay/replay-feed.c $(REPLAY_COMMON)
test_replay_replay_feed_CFLAGS = $(REPLAY_CFLAGS)
test_replay_replay_feed_LDADD = $(REPLAY_LDADD)

test_replay_replay_cmp_SOURCES = test/replay/replay-cmp.c $(REPLAY_COMMON)
test_replay_replay_cmp_CFLAGS = $(REPLAY_CFLAGS)
test_replay_replay_cmp_LDADD = $(REPLAY_LDADD)

EXTRA_DIST += test/replay/run test/replay/mutate test/replay/cases \
	test/replay/guest-replay.sh test/replay/make-guest-capture.py

# make replay-check: run the tier against this build.
# make replay-golden: regenerate every case's input pcaps from its scenario
# and rewrite its expected outputs from what the switch does now.  Only after
# a human has decided that the new behaviour is right (the run prints the
# diff first).
replay-check: $(REPLAY_TOOLS)
	CHAND_BUILD_DIR=$(abs_builddir) $(abs_top_srcdir)/test/replay/run

replay-golden: $(REPLAY_TOOLS)
	CHAND_BUILD_DIR=$(abs_builddir) $(abs_top_srcdir)/test/replay/run --golden

.PHONY: replay-check replay-golden
dist_doc_DATA += doc/replay.md
