#!/bin/sh
printf 'Content-Type: text/plain\n\nindex of sub: %s\n' "$SCRIPT_NAME"
