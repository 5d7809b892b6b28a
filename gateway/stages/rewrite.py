"""The rewrite stage: internal rewrites of the path (and query) before routing goes on.

    rewrite = [{ from = "^/old/(.*)$", to = "/new/$1" }, { from = "^/p/(\\d+)$", to = "/post.php?id=$1" }]

- On a vhost, the rules run before its routes are matched (Router.__call__
  calls rewrite_scope); on a route, they run when that route matched and
  the request is routed again from the vhost's first route (Appweb's
  "rewrite then re-route"), at most MAX_PASSES times: a loop is a 500.
- The first rule whose `from` (a regex on the decoded path) matches
  applies; `to` may use $1…$9 and names the new path, with a query after
  "?" replacing the client's (`keep_query = true` appends the client's to it).
  Captures in the query are percent-encoded as values; the template's own
  text keeps its separators and escapes (anything else is encoded).
- The client sees nothing of it (an external redirect is the `redirect`
  handler's job); apps see the new path, and REQUEST_URI for PHP/CGI is the
  rewritten target, as with nginx's rewrite … last.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gateway.config.validate import did_you_mean
from gateway.http.parser import ENCODED_PATH_SAFE, PCHAR
from gateway.stages import Report
from gateway.stages.errors import plain_response
from gateway.types import ORIGINAL_TARGET, PASSES_KEY, ASGIApp, HandlerContext, Receive, Scope, Send

logger = logging.getLogger("gateway.error")
KEYS = ("rewrite",)
ORDER = 40
RULE_KEYS = ("from", "to", "keep_query")
MAX_PASSES = 10
_GROUP = re.compile(r"\$([1-9])")
# A capture put into the query is re-encoded (it comes from the decoded path): "a%26b=c" stays one value,
# "%0D%0A" never reaches a backend as a line break. What may stand bare inside a query value (RFC 3986
# query minus the separators & + = # ? and "%"), as nginx escapes rewrite captures in arguments.
QUERY_VALUE_SAFE = "/:@!$'()*,;"


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: re.Pattern[str]
    path: str  # the template before "?"
    query: str | None  # the template after "?", None to keep the client's
    keep_query: bool

    def apply(self, path: str, query: bytes) -> tuple[str, bytes] | None:
        match = self.pattern.search(path)
        if match is None:
            return None
        groups = match.groups()

        def fill(template: str, encode: bool = False) -> str:
            def group(found: re.Match[str]) -> str:
                number = int(found.group(1))
                value = (groups[number - 1] or "") if number <= len(groups) else ""
                return quote(value, safe=QUERY_VALUE_SAFE) if encode else value

            return _GROUP.sub(group, template)

        new_path = fill(self.path)  # decoded, as scope["path"]; raw_path is its encoding
        if self.query is None:
            return new_path, query
        new_query = quote(fill(self.query, encode=True), safe=ENCODED_PATH_SAFE + "?").encode("ascii")
        if self.keep_query and query:
            new_query = new_query + b"&" + query if new_query else query
        return new_path, new_query


@dataclass(frozen=True, slots=True)
class RewriteOptions:
    rules: tuple[Rule, ...]
    mount: str
    context: HandlerContext


def parse_rules(value: Any, report: Report) -> tuple[Rule, ...]:
    """Rules from the `rewrite` list; problems by index (shared by vhosts and routes)."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        report("rewrite", 'expected a list of rules, as in [{ from = "^/old/(.*)$", to = "/new/$1" }]')
        return ()
    rules = []
    for index, table in enumerate(value):
        rule = _rule(table, f"rewrite[{index}]", report)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _rule(table: Any, where: str, report: Report) -> Rule | None:
    if not isinstance(table, dict):
        report(where, 'expected a table, as in { from = "^/old/(.*)$", to = "/new/$1" }')
        return None
    for key in table:
        if key not in RULE_KEYS:
            report(f"{where}.{key}", f"unknown key{did_you_mean(key, RULE_KEYS)}; a rule has {', '.join(RULE_KEYS)}")
    source, target, keep = table.get("from"), table.get("to"), table.get("keep_query", False)
    if not isinstance(source, str) or not source:
        report(f"{where}.from", "missing; a regular expression matched against the path")
        return None
    if not isinstance(target, str) or not target.startswith("/"):
        report(f"{where}.to", f"expected the new path, starting with '/', got {target!r}")
        return None
    if not isinstance(keep, bool):
        report(f"{where}.keep_query", f"expected true or false, got {keep!r}")
        keep = False
    try:
        pattern = re.compile(source)
    except re.error as exc:
        report(f"{where}.from", f"not a valid regular expression: {exc}")
        return None
    path, question, query = target.partition("?")
    return Rule(pattern, path, query if question else None, keep)


def rewrite_scope(rules: tuple[Rule, ...], scope: Scope) -> bool:
    """Apply the first matching rule to scope (path, raw_path, query_string); whether one did."""
    for rule in rules:
        result = rule.apply(scope["path"], scope["query_string"])
        if result is not None:
            path, query = result
            if ORIGINAL_TARGET not in scope:
                scope[ORIGINAL_TARGET] = (scope.get("raw_path", b""), scope.get("query_string", b""))
            scope["path"] = path
            scope["raw_path"] = quote(path, safe=PCHAR).encode("ascii")
            scope["query_string"] = query
            return True
    return False


def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> RewriteOptions | None:
    rules = parse_rules(values["rewrite"], report)
    return RewriteOptions(rules, context.mount, context) if rules else None


def wrap(options: RewriteOptions, app: ASGIApp) -> ASGIApp:
    return RouteRewrite(options, app)


class RouteRewrite:
    """A route's rewrites: a match sends the request through the router again."""

    def __init__(self, options: RewriteOptions, app: ASGIApp) -> None:
        self.options = options
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dispatch = self.options.context.dispatch
        if scope["type"] == "lifespan" or dispatch is None or not rewrite_scope(self.options.rules, scope):
            await self.app(scope, receive, send)
            return
        passes = scope.get(PASSES_KEY, 0) + 1
        if passes > MAX_PASSES:
            await _loop_error(send, scope)
            return
        scope[PASSES_KEY] = passes
        mount = self.options.mount
        if mount and scope.get("root_path", "").endswith(mount):
            scope["root_path"] = scope["root_path"][: -len(mount)]  # the router adds the next route's own
        scope.pop("gateway.route_match", None)
        await dispatch(scope, receive, send)


async def _loop_error(send: Send, scope: Scope) -> None:
    logger.error("rewrite loop: %s was rewritten %d times; check the rewrite rules", scope["path"], MAX_PASSES)
    await plain_response(
        send, 500, "500 Internal Server Error\nThe rewrite rules loop; the server's log names the path.\n"
    )
