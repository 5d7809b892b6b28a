#!/bin/sh
# 8 MiB of body at once: a slow client takes longer to read it than the /short/ route's timeout.
printf 'Content-Type: application/octet-stream\nContent-Length: 8388608\n\n'
head -c 8388608 /dev/zero
