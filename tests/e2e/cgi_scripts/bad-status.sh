#!/bin/sh
printf 'Status: 99 Nope\nContent-Type: text/plain\n\nbody\n'
