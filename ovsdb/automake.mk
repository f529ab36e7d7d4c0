# ovsdb: the Chan DB schema.
dist_pkgdata_DATA += ovsdb/chan.ovsschema
