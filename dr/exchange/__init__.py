"""Exchange knowledge, pure and fast to test: log file naming and generations (``logs``),
the backup-type rules and log-chain checks (``rules``), and parsers for ``eseutil``
(``eseutil``) and ``wbadmin`` (``wbadmin``) output. Nothing here does I/O.
"""
