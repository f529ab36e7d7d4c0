# utilities: chanctl, the operator CLI for host and guest.

bin_PROGRAMS += utilities/chanctl
utilities_chanctl_SOURCES = \
	utilities/chanctl.c utilities/chanctl.h \
	utilities/chanctl-db.c \
	utilities/chanctl-ctl.c \
	utilities/chanctl-guest.c
utilities_chanctl_LDADD = $(CHAND_LIBS)
dist_man_MANS += doc/chanctl.8

# The Chan DB reference, kept here with chanctl, its main client.  (chanctl's
# system test, test/system/chanctl.sh, is distributed with test/system.)
dist_doc_DATA += doc/chan-db.md
