#!/bin/sh
# Redirects to itself: the gateway must stop after a few hops.
printf 'Location: %s\n\n' "$SCRIPT_NAME"
