#!/bin/sh
# Everything a CGI script is given: its environment (RFC 3875 meta-variables, PATH and the
# route's `env`, nothing else of the server's) and its arguments (a query without "=" is split
# on "+" into argv, RFC 3875 §4.4).
printf 'Content-Type: text/plain; charset=utf-8\n\n'
printf 'Environment:\n'
env | LC_ALL=C sort | sed 's/^/  /'
printf '\nArguments (%d):\n' "$#"
for arg in "$@"; do
    printf '  %s\n' "$arg"
done
printf '\nWorking directory: %s\n' "$(pwd)"
