"""Evidence an auditor verifies without trusting dr (FEATURES C3, E7).

A record per finished run — identity and scope, success criteria, the backups under test,
every step with its times, attempts, exit status and output digests, who approved each
destructive step, measured RTO and achieved RPO against the SLA, deviations — is an
in-toto Statement v1 (:mod:`intoto`) in a DSSE envelope signed with Ed25519 (:mod:`dsse`),
with a detached SSH signature over the envelope file (:mod:`sshsig`). Records are appended
to a hash-chained log with a signed checkpoint after each (:mod:`log`); :mod:`verify`
checks all of it offline. docs/evidence.md shows the same checks with openssl,
ssh-keygen, sha256sum and jq.
"""
