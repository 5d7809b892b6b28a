"""Records when it starts and ends (for the max_processes test), sleeping in between."""

import os
import sys
import time

log = os.path.join(os.environ["CGI_STATE"], f"slots-{sys.argv[1]}.log")
with open(log, "a") as out:
    out.write(f"start {time.time():.6f}\n")
time.sleep(float(sys.argv[2]))
with open(log, "a") as out:
    out.write(f"end {time.time():.6f}\n")
sys.stdout.write("Content-Type: text/plain\n\nslot done\n")
