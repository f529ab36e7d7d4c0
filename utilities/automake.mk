# utilities: chanctl, the operator CLI for host and guest.

bin_PROGRAMS += utilities/chanctl
utilities_chanctl_SOURCES = utilities/chanctl.c
utilities_chanctl_LDADD = $(CHAND_LIBS)
