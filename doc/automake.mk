# doc/: operator documentation.
dist_doc_DATA += doc/design.md doc/PROTOCOL.md doc/SESSION.md doc/objects.md doc/operations.md doc/ovs-port.md doc/fuzzing.md doc/reliability.md doc/python-client.md doc/adapters.md
