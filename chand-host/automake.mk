# chand-host: the hypervisor daemon.

sbin_PROGRAMS += chand-host/chand-host
chand_host_chand_host_SOURCES = \
	chand-host/main.c \
	chand-host/host.c chand-host/host.h \
	chand-host/host-metrics.c chand-host/host-metrics.h \
	chand-host/provision.c chand-host/provision.h \
	chand-host/autoid.c chand-host/autoid.h \
	chand-host/flowmgr.c chand-host/flowmgr.h \
	chand-host/inject.c chand-host/inject.h \
	chand-host/chandb.c chand-host/chandb.h \
	chand-host/channel.c chand-host/channel.h \
	chand-host/upstream.c chand-host/upstream.h \
	chand-host/relay.c chand-host/relay.h \
	chand-host/objmap.c chand-host/objmap.h \
	chand-host/objaction.c chand-host/objaction.h \
	chand-host/transfer.c chand-host/transfer.h \
	chand-host/claim.c chand-host/claim.h
chand_host_chand_host_LDADD = $(CHAND_LIBS)
dist_man_MANS += doc/chand-host.8
