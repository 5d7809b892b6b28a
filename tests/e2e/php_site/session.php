<?php
// A PHP session: increments $_SESSION['n'] and prints it (1 on a first visit, 2 when the cookie comes back).
declare(strict_types=1);

session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
header('Content-Type: text/plain');
echo $_SESSION['n'];
