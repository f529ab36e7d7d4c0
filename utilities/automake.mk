# utilities: chanctl, the operator CLI for host and guest, and
# chand-guest-replay, the offline replay of a channel capture into a guest
# datastore.

bin_PROGRAMS += utilities/chanctl
utilities_chanctl_SOURCES = \
	utilities/chanctl.c utilities/chanctl.h \
	utilities/chanctl-db.c \
	utilities/chanctl-ctl.c \
	utilities/chanctl-guest.c
utilities_chanctl_LDADD = $(CHAND_LIBS)
dist_man_MANS += doc/chanctl.8

# chand-guest-replay runs chand-guest's own receiver, datastore and keyring
# on a capture; it, not the daemon, links libpcap.
bin_PROGRAMS += utilities/chand-guest-replay
utilities_chand_guest_replay_SOURCES = \
	utilities/chand-guest-replay.c \
	utilities/guest-replay.c utilities/guest-replay.h \
	chand-guest/receiver.c chand-guest/receiver.h \
	chand-guest/datastore.c chand-guest/datastore.h \
	chand-guest/keyring.c chand-guest/keyring.h \
	chand-guest/udp.h
utilities_chand_guest_replay_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/chand-guest
utilities_chand_guest_replay_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) \
	$(PCAP_CFLAGS)
utilities_chand_guest_replay_LDADD = $(CHAND_LIBS) $(SQLITE_LIBS) \
	$(PCAP_LIBS)
dist_man_MANS += doc/chand-guest-replay.8

# The Chan DB reference, kept here with chanctl, its main client.  (chanctl's
# system test, test/system/chanctl.sh, is distributed with test/system.)
dist_doc_DATA += doc/chan-db.md

# chand-handler, the built-in handlers of chand-guest; installed also as
# the default handlers verdict, notice, install and restore (copies: the
# runner refuses symbolic links).
sbin_PROGRAMS += utilities/chand-handler
utilities_chand_handler_SOURCES = \
	utilities/chand-handler.c \
	utilities/handler-actions.c utilities/handler-actions.h
utilities_chand_handler_LDADD = $(CHAND_LIBS)
dist_man_MANS += doc/chand-handler.8

handlersdir = $(sysconfdir)/chand/handlers.d
install-exec-hook: install-default-handlers
install-default-handlers:
	$(MKDIR_P) -m 755 '$(DESTDIR)$(handlersdir)'
	for kind in verdict notice install restore; do \
	  $(INSTALL_PROGRAM) utilities/chand-handler \
	    '$(DESTDIR)$(handlersdir)'/$$kind || exit 1; \
	done
uninstall-local: uninstall-default-handlers
uninstall-default-handlers:
	for kind in verdict notice install restore; do \
	  rm -f '$(DESTDIR)$(handlersdir)'/$$kind; \
	done
.PHONY: install-default-handlers uninstall-default-handlers
