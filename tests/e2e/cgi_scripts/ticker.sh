#!/bin/sh
# One line every 0.3 s: the client must see each before the script ends.
printf 'Content-Type: text/plain\n\n'
for i in 1 2 3 4 5; do
    echo "line $i"
    sleep 0.3
done
