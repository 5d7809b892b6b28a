#!/bin/sh
# Sends Date and Server of its own (the core writes both).
printf 'Date: Sat, 01 Jan 2000 00:00:00 GMT\nServer: my-app/1.0\nX-App: yes\nContent-Type: text/plain\n\nown fields'
