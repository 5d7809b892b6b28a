#!/bin/sh
# Writes its pid, then ticks every 0.1 s (for at most 30 s) until it is killed.
echo $$ > "$CGI_STATE/$1.pid"
printf 'Content-Type: text/plain\n\n'
i=0
while [ $i -lt 300 ]; do
    echo "tick $i"
    sleep 0.1
    i=$((i + 1))
done
