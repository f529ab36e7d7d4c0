# doc/: operator documentation.
dist_doc_DATA += doc/PROTOCOL.md doc/SESSION.md doc/operations.md
