#!/usr/bin/env python3
"""Multi-node rehearsal on one machine (issue 14): a three-node NATS cluster on loopback, two
schedulers and workers as separate "nodes"; workers join and leave, one worker and one NATS
node are stopped mid-run; prints whether every show arrived whole. See deploy/local/README.md."""

import sys

from streamwise.bench.rehearsal import main

if __name__ == "__main__":
    sys.exit(main())
