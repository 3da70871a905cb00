#!/bin/sh
# The research pipeline end to end (make demo runs it in bin/demo/research):
# a local web site, the six research plugins built and enrolled, one
# `hall run cap.research.ingest` whose five hops are decided, run and
# recorded under its decision, the receipt tree, and the audit.
# Usage: demo.sh HALL_SRC (hall on PATH; run in an empty directory).
set -eu
SRC=$1
(cd "$SRC" && go build -o "$OLDPWD/research-serve" ./examples/research/serve)
./research-serve -dir "$SRC/examples/quickstart" -addr-file addr &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
for i in $(seq 100); do [ -s addr ] && break; sleep 0.1; done
ADDR=$(cat addr)
echo "# a local web site at http://$ADDR"
cp "$SRC/examples/research/rules.json" rules.json
mkdir -p research
# The records the plugins ship name example.com and /var/lib/hall/research;
# here web_fetch may reach the local site only, and research_register
# writes ./research only.
sed "s#\"example.com:443\"#\"$ADDR\"#" "$SRC/plugins/web_fetch/registry_record.json" > web_fetch.json
sed "s#/var/lib/hall/research#$PWD/research#g" "$SRC/plugins/research_register/registry_record.json" > research_register.json
run() { echo "\$ $*"; "$@"; }
for p in doc_chunk embed doc_hash research_ingest; do run hall build "$SRC/plugins/$p" --no-input; done
run hall build "$SRC/plugins/web_fetch" --no-input --record web_fetch.json
run hall build "$SRC/plugins/research_register" --no-input --record research_register.json
for p in web_fetch doc_chunk embed doc_hash research_register research_ingest; do run hall enroll $p.wasm; done
printf '{"url": "http://%s/document.txt", "tokens": 120}\n' "$ADDR" > request.json
echo "\$ hall run cap.research.ingest --tenant org.acme --correlation-id research-demo < request.json"
hall run cap.research.ingest --tenant org.acme --correlation-id research-demo < request.json 2> run.err
cat run.err >&2
ROOT=$(sed -n 's/.*receipt \([0-9a-f-]*\)).*/\1/p' run.err)
run hall receipts --correlation-id research-demo
run hall receipts show "$ROOT" --tree
run wc -l research/research.jsonl
run hall audit verify
