<?php
// Sleeps ?s= seconds (default 5, fractions allowed) before printing "done"; creates the file ?mark= names
// first, so a test knows the script is running in a child.
declare(strict_types=1);

if (isset($_GET['mark'])) {
    touch((string) $_GET['mark']);
}

usleep((int) (max(0.0, (float) ($_GET['s'] ?? 5)) * 1_000_000));
header('Content-Type: text/plain');
echo 'done';
