#!/bin/sh
# Header lines without end: past the head limit this is a 502, not memory.
yes 'X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' | head -c 8388608
