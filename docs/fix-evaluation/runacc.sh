#!/bin/bash
# usage: runacc.sh TAG LOGNAME [env...]  -- starts the QuickFIX acceptor in background, pid in runs/acc.pid
TAG=$1; LOG=$2; shift 2
cd /tmp/fixeval && env TAG=$TAG "$@" nohup venv/bin/python -u acceptor.py > runs/$LOG 2>&1 &
echo $! > /tmp/fixeval/runs/acc.pid
sleep 1.5
