#!/bin/sh
# Promises 100 bytes and writes 6.
printf 'Content-Type: text/plain\nContent-Length: 100\n\nshort\n'
