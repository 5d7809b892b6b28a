<?php
// The CGI variables php sees ($_SERVER subset, every HTTP_*), $_GET, $_POST and getenv('GATEWAY_TEST_SECRET') as JSON.
declare(strict_types=1);

$keys = ['GATEWAY_INTERFACE', 'SERVER_SOFTWARE', 'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'REQUEST_METHOD',
    'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'DOCUMENT_ROOT', 'REMOTE_ADDR',
    'REMOTE_PORT', 'CONTENT_TYPE', 'CONTENT_LENGTH', 'HTTPS', 'REDIRECT_STATUS', 'REMOTE_USER', 'PHP_SELF',
    'REQUEST_SCHEME', 'SERVER_ADDR'];
$out = [];
foreach ($_SERVER as $key => $value) {
    if (in_array($key, $keys, true) || str_starts_with((string) $key, 'HTTP_')) {
        $out[$key] = $value;
    }
}
ksort($out);
$out['get'] = $_GET;
$out['post'] = $_POST;
$out['env_secret'] = getenv('GATEWAY_TEST_SECRET');
header('Content-Type: application/json');
echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR);
