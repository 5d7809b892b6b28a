#!/bin/sh
printf 'Status: 201 Created\nContent-Type: text/plain\nX-Multi: one\nX-Multi: two\n\ncreated\n'
