<?php
// Front controller: URLs that are no file land here; prints what it was asked as JSON.
declare(strict_types=1);

header('Content-Type: application/json');
echo json_encode([
    'front' => true,
    'request_uri' => $_SERVER['REQUEST_URI'] ?? null,
    'script_name' => $_SERVER['SCRIPT_NAME'] ?? null,
    'path_info' => $_SERVER['PATH_INFO'] ?? null,
    'query' => $_SERVER['QUERY_STRING'] ?? null,
], JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
