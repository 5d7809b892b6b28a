#!/bin/sh
printf 'Content-Type: text/plain\n\nshould never run\n'
