#!/bin/sh
# RFC 3875 §6.2.2: a Location path and nothing else makes the gateway serve that path itself.
printf 'Location: /cgi-bin/env.py?from=local\n\n'
