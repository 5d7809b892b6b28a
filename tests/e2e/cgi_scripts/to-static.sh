#!/bin/sh
printf 'Location: /files/hello.txt\n\n'
