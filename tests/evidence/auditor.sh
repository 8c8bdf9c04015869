#!/usr/bin/env bash
# An auditor's check of one exported dr evidence record, with openssl, ssh-keygen,
# sha256sum and jq (and a POSIX shell). Usage: auditor.sh EXPORT_DIR
# The commands below the marker are the ones docs/evidence.md shows, in the same order;
# tests/evidence/test_auditor.py keeps the two identical and runs this script.
set -euo pipefail
cd "$1"
# --- commands from docs/evidence.md ---
ssh-keygen -Y verify -f allowed_signers -I dr -n dr-evidence -s envelope.sig < envelope.json
jq -j .payload envelope.json | openssl base64 -d -A > payload.json
jq -j '.signatures[0].sig' envelope.json | openssl base64 -d -A > payload.sig
type=$(jq -j .payloadType envelope.json)
printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < payload.json)" > pae.bin
cat payload.json >> pae.bin
openssl pkeyutl -verify -pubin -inkey evidence.pub.pem -rawin -in pae.bin -sigfile payload.sig
hex=$(openssl pkey -pubin -in evidence.pub.pem -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n')
keyid=$(printf '{"keytype":"ed25519","keyval":{"public":"%s"},"scheme":"ed25519"}' "$hex" | sha256sum | cut -d' ' -f1)
test "$(jq -r '.signatures[0].keyid' envelope.json)" = "$keyid"
jq -e '._type == "https://in-toto.io/Statement/v1" and .predicateType == "https://dr.dev/evidence/restore-run/v1"' payload.json
jq -r '.subject[] | "\(.digest.sha256)  \(.name)"' payload.json | sha256sum -c
jq '.predicate.results' payload.json
test "$(head -n 1 log/entries.jsonl | jq -r .envelope_sha256)" = "$(sha256sum < envelope.json | cut -d' ' -f1)"
prev=$(head -n 1 log/entries.jsonl | jq -r .prev)
seq=$(head -n 1 log/entries.jsonl | jq -r .seq)
while IFS= read -r line; do
  test "$(printf '%s\n' "$line" | jq -r .prev)" = "$prev" || { echo "entry $seq: chain broken"; exit 1; }
  test "$(printf '%s\n' "$line" | jq -r .seq)" = "$seq" || { echo "entry $seq: out of order"; exit 1; }
  prev=$(printf '%s\n' "$line" | sha256sum | cut -d' ' -f1)
  seq=$((seq + 1))
done < log/entries.jsonl
ssh-keygen -Y verify -f allowed_signers -I dr -n dr-evidence-checkpoint -s log/checkpoint.txt.sig < log/checkpoint.txt
openssl base64 -d -A -in log/checkpoint.txt.ed25519 > checkpoint.bin
openssl pkeyutl -verify -pubin -inkey evidence.pub.pem -rawin -in log/checkpoint.txt -sigfile checkpoint.bin
test "$(grep '^head ' log/checkpoint.txt | cut -d' ' -f2)" = "$prev" || { echo "checkpoint: head differs"; exit 1; }
test "$(grep '^size ' log/checkpoint.txt | cut -d' ' -f2)" = "$((seq - 1))" || { echo "checkpoint: size differs"; exit 1; }
echo "evidence verified"
