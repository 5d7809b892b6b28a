#!/bin/sh
# A local redirect to a path only the vhost's rewrite maps to a script (/from-local/here → /cgi-bin/env.py/here).
printf 'Location: /from-local/here\n\n'
