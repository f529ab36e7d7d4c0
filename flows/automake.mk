# flows: OpenFlow rule templates, installed for chand-host and chand-guest.
flowsdir = $(pkgdatadir)/flows
dist_flows_DATA = flows/host.flows flows/guest.flows
EXTRA_DIST += flows/README.md
