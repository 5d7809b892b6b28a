#!/bin/sh
# 64 MiB of body: the gateway must pass it on without holding it.
printf 'Content-Type: application/octet-stream\n\n'
head -c 67108864 /dev/zero
