# chand-guest: the guest daemon.

sbin_PROGRAMS += chand-guest/chand-guest
chand_guest_chand_guest_SOURCES = \
	chand-guest/main.c \
	chand-guest/guest.c chand-guest/guest.h \
	chand-guest/guest-metrics.c chand-guest/guest-metrics.h \
	chand-guest/receiver.c chand-guest/receiver.h \
	chand-guest/publisher.c chand-guest/publisher.h \
	chand-guest/udp.c chand-guest/udp.h \
	chand-guest/api.c chand-guest/api.h \
	chand-guest/bridge.c chand-guest/bridge.h \
	chand-guest/datastore.c chand-guest/datastore.h \
	chand-guest/keyring.c chand-guest/keyring.h \
	chand-guest/watch.c chand-guest/watch.h \
	chand-guest/kvp.c chand-guest/kvp.h \
	chand-guest/kvp-pool.c chand-guest/kvp-pool.h \
	chand-guest/keyq.c chand-guest/keyq.h \
	chand-guest/child.c chand-guest/child.h \
	chand-guest/call.c chand-guest/call.h \
	chand-guest/handler.c chand-guest/handler.h \
	chand-guest/transfer.c chand-guest/transfer.h
chand_guest_chand_guest_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
chand_guest_chand_guest_LDADD = $(CHAND_LIBS) $(SQLITE_LIBS)

dist_man_MANS += doc/chand-guest.8
