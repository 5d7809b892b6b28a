<?php
// Guestbook front controller: the server runs it for every URL that is not an existing file.
declare(strict_types=1);

$path = rawurldecode(explode('?', $_SERVER['REQUEST_URI'] ?? '/', 2)[0]);
if (PHP_SAPI === 'cli-server' && $path !== '/' && file_exists(__DIR__ . $path)) {
    return false; // `php -S 127.0.0.1:8765 index.php`: the built-in server serves style.css and admin/
}

require __DIR__ . '/lib/store.php';

// The route is the path below the site's prefix ('' when the site sits at /), or the PATH_INFO of /index.php/...
$script = $_SERVER['SCRIPT_NAME'] ?? '/index.php';
define('BASE', rtrim(dirname($script), '/\\'));
$route = match (true) {
    str_starts_with($path, $script) => substr($path, strlen($script)),
    BASE !== '' && str_starts_with($path, BASE . '/') => substr($path, strlen(BASE)),
    default => $path,
};
$route = $route === '' ? '/' : $route;
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';

function e(mixed $value): string
{
    return htmlspecialchars((string) $value, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function render(string $title, string $body, int $status = 200): void
{
    http_response_code($status);
    header('Content-Type: text/html; charset=utf-8');
    $b = e(BASE);
    $t = e($title);
    echo <<<HTML
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>{$t} · Guestbook</title>
        <link rel="stylesheet" href="{$b}/style.css"></head>
        <body><header><a href="{$b}/">Guestbook</a>
        <nav><a href="{$b}/about">About</a><a href="{$b}/api/entries">JSON</a><a href="{$b}/admin/">Admin</a></nav></header>
        <main><h1>{$t}</h1>
        {$body}
        </main></body></html>

        HTML;
}

function entry_html(array $entry, bool $link): string
{
    $name = e($entry['name']);
    $when = gmdate('Y-m-d H:i', $entry['created_at']) . ' UTC';
    $title = $link ? '<a href="' . e(BASE . '/entry/' . $entry['id']) . "\">#{$entry['id']}</a> $name" : $name;
    return "<article class=\"entry\"><p><strong>$title</strong> <small>$when</small></p>"
        . '<p>' . nl2br(e($entry['message'])) . '</p></article>';
}

function home(array $errors = [], array $old = ['name' => '', 'message' => '']): void
{
    $html = isset($_SESSION['flash']) ? '<p class="flash">' . e($_SESSION['flash']) . '</p>' : '';
    unset($_SESSION['flash']);
    foreach ($errors as $error) {
        $html .= '<p class="error">' . e($error) . '</p>';
    }
    $html .= '<form method="post" action="' . e(BASE . '/sign') . '">'
        . '<input type="hidden" name="csrf" value="' . e($_SESSION['csrf']) . '">'
        . '<label>Name <input name="name" maxlength="60" required value="' . e($old['name']) . '"></label>'
        . '<label>Message <textarea name="message" rows="4" maxlength="1000" required>' . e($old['message'])
        . '</textarea></label><button>Sign the guestbook</button></form>';
    $entries = guestbook_store()->all();
    $html .= $entries === [] ? '<p>No entries yet: be the first.</p>' : implode("\n", array_map(
        fn (array $entry): string => entry_html($entry, true),
        $entries,
    ));
    render('Entries', $html, $errors === [] ? 200 : 422);
}

function sign(): void
{
    $field = fn (string $key): string => is_string($_POST[$key] ?? null) ? trim($_POST[$key]) : '';
    if (!hash_equals($_SESSION['csrf'], $field('csrf'))) {
        render('Forbidden', '<p class="error">The form token is missing or stale: reload the page and try again.</p>', 403);
        return;
    }
    $name = $field('name');
    $message = str_replace("\r\n", "\n", $field('message'));
    $errors = [];
    foreach (['name' => [$name, 60], 'message' => [$message, 1000]] as $label => [$value, $max]) {
        $length = preg_match_all('/./su', $value); // false when the value is not UTF-8
        if ($length === false) {
            $errors[] = "The $label is not valid UTF-8.";
        } elseif ($length === 0 || $length > $max) {
            $errors[] = "The $label must be 1 to $max characters long.";
        }
    }
    if ($errors !== []) {
        home($errors, ['name' => $name, 'message' => $message]);
        return;
    }
    $id = guestbook_store()->add($name, $message);
    $_SESSION['flash'] = "Thank you, $name: your entry #$id is signed.";
    header('Location: ' . BASE . '/', true, 303);
}

function about(): void
{
    $_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
    $rows = ['PHP version' => PHP_VERSION, 'SAPI' => PHP_SAPI];
    foreach (['SCRIPT_NAME', 'REQUEST_URI', 'PATH_INFO', 'SERVER_SOFTWARE', 'GATEWAY_INTERFACE'] as $key) {
        if (isset($_SERVER[$key])) {
            $rows[$key] = $_SERVER[$key];
        }
    }
    $rows['Visits to this page (session)'] = $_SESSION['visits'];
    $html = '<dl>';
    foreach ($rows as $label => $value) {
        $html .= '<dt>' . e($label) . '</dt><dd>' . e($value) . '</dd>';
    }
    render('About', $html . '</dl>');
}

function refuse(int $status, string $allow = ''): void
{
    if ($allow !== '') {
        header("Allow: $allow");
    }
    $title = $status === 404 ? 'Not found' : 'Method not allowed';
    render($title, '<p>Nothing here. <a href="' . e(BASE . '/') . '">Back to the guestbook</a>.</p>', $status);
}

if ($route === '/api/entries') {
    if ($method !== 'GET' && $method !== 'HEAD') {
        refuse(405, 'GET, HEAD');
        exit;
    }
    header('Content-Type: application/json');
    echo json_encode(guestbook_store()->all(), JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
        | JSON_THROW_ON_ERROR), "\n";
    exit;
}

session_start(['cookie_httponly' => true, 'cookie_samesite' => 'Lax', 'use_strict_mode' => true]);
$_SESSION['csrf'] ??= bin2hex(random_bytes(16));

if ($route === '/sign') {
    $method === 'POST' ? sign() : refuse(405, 'POST');
} elseif ($method !== 'GET' && $method !== 'HEAD') {
    refuse(preg_match('#^/(entry/\d+|about)?$#', $route) === 1 ? 405 : 404, 'GET, HEAD');
} elseif ($route === '/') {
    home();
} elseif (preg_match('#^/entry/(\d{1,9})$#', $route, $match) === 1) {
    $entry = guestbook_store()->find((int) $match[1]);
    $entry === null ? refuse(404) : render('Entry #' . $entry['id'], entry_html($entry, false));
} elseif ($route === '/about') {
    about();
} else {
    refuse(404);
}
