<?php
// A bare Location header and exit: php itself turns the response into a 302 (it emits "Status: 302 Found").
header('Location: /target?from=php');
exit;
