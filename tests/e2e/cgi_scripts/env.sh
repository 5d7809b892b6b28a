#!/bin/sh
# The variables the tests read, one "NAME=value" line each, then the arguments.
printf 'Content-Type: text/plain\n\n'
for name in GATEWAY_INTERFACE REQUEST_METHOD SCRIPT_NAME PATH_INFO QUERY_STRING SERVER_PROTOCOL; do
    eval "printf '%s=%s\n' $name \"\${$name}\""
done
for arg in "$@"; do
    printf 'ARG=%s\n' "$arg"
done
