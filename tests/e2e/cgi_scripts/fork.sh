#!/bin/sh
# Leaves a child behind that still holds stdout, writes the child's pid, and exits.
sleep 30 &
echo $! > "$CGI_STATE/$1.pid"
printf 'Content-Type: text/plain\n\nforked\n'
