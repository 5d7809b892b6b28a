<?php
// "line 1" to "line 3", each flushed, 0.5 s apart: shows that output is streamed, not buffered to the end.
declare(strict_types=1);

header('Content-Type: text/plain');
while (ob_get_level() > 0) { // php.ini's output_buffering (4096 in the stock php.ini) would hold the short lines back
    ob_end_flush();
}
for ($n = 1; $n <= 3; $n++) {
    echo "line $n\n";
    flush();
    if ($n < 3) {
        usleep(500_000);
    }
}
