#!/bin/sh
# Writes its pid to $CGI_STATE/<tag>.pid, then sleeps far past any test's timeout.
echo $$ > "$CGI_STATE/$1.pid"
sleep 30
printf 'Content-Type: text/plain\n\ntoo late\n'
