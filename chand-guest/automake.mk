# chand-guest: the guest daemon.

sbin_PROGRAMS += chand-guest/chand-guest
chand_guest_chand_guest_SOURCES = \
	chand-guest/main.c \
	chand-guest/datastore.c chand-guest/datastore.h
chand_guest_chand_guest_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(PCAP_CFLAGS)
chand_guest_chand_guest_LDADD = $(CHAND_LIBS) $(SQLITE_LIBS) $(PCAP_LIBS)
