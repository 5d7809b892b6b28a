#!/bin/sh
# Promises 200000 bytes and writes 100000 in two pieces (the first goes out before the second is written).
printf 'Content-Type: application/octet-stream\nContent-Length: 200000\n\n'
head -c 70000 /dev/zero
sleep 0.3
head -c 30000 /dev/zero
