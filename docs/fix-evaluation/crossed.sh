#!/bin/bash
# crossed resend scenario: orders -> logout -> acceptor sends 2 ERs while down -> acceptor target lowered by 8 -> reconnect
# usage: crossed.sh TAG BIN [env for initiator...]
TAG=$1; BIN=$2; shift 2
cd /tmp/fixeval
./stopacc.sh
./runacc.sh $TAG x-$TAG-acc-a.log SEND_WHILE_DOWN=1 REQUIRE_PASSWORD=${REQPW:-0}
(cd $TAG-sample && env RUST_LOG=warn "$@" timeout 40 $BIN orders > ../runs/x-$TAG-orders.log 2>&1)
sleep 2.5
./stopacc.sh
f=$(ls qf_store_$TAG/*.seqnums)
python3 - "$f" <<'PY'
import sys
p=sys.argv[1]; s=open(p).read(); a,b=[x.strip() for x in s.split(':')]
n=int(b)-8; open(p,'w').write(f"{a} : {n:010d}"); print("QF seqnums now", open(p).read())
PY
./runacc.sh $TAG x-$TAG-acc-b.log REQUIRE_PASSWORD=${REQPW:-0}
(cd $TAG-sample && env RUST_LOG=warn "$@" timeout 40 $BIN idle 3 > ../runs/x-$TAG-recover.log 2>&1)
./stopacc.sh
