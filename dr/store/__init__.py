"""The artifact repository: deduplicated, compressed, encrypted (docs/repository-format.md).

Modules, from the bottom up: ``format`` (constants, durable writes), ``crypto`` (keys,
sealing, compression), ``passphrase`` (where it comes from), ``keyfile`` (the
passphrase-wrapped key), ``chunking`` (fixed blocks or FastCDC), ``blockmap``, ``packs``,
``index``, ``repository`` (open / init, blob I/O), ``lock``, ``chains`` (which kind of
version a run becomes), ``backup`` and ``blockfile`` (the in-file delta), ``restore``,
``verify``, ``prune``, ``repair``, ``report`` and ``catalog_link`` (the catalog's side).
"""
