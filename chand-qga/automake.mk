# chand-qga: qemu-guest-agent compatible sockets on the host.

sbin_PROGRAMS += chand-qga/chand-qga
chand_qga_chand_qga_SOURCES = \
	chand-qga/main.c \
	chand-qga/qga.c chand-qga/qga.h \
	chand-qga/endpoint.c chand-qga/endpoint.h \
	chand-qga/commands.c chand-qga/commands.h \
	chand-qga/calls.c chand-qga/calls.h
chand_qga_chand_qga_LDADD = $(CHAND_LIBS)

dist_man_MANS += doc/chand-qga.8
