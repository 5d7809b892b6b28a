#!/bin/sh
# 16 MiB of stderr lines, then 4 MiB in one line, then a small response.
yes 'an error line from flood-err' | head -c 16777216 >&2
head -c 4194304 /dev/zero | tr '\0' x >&2
printf 'Content-Type: text/plain\n\nsurvived\n'
