"""Config loading without a server: units, ${ENV} substitution, and errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config.loader import load, with_overrides
from gateway.config.schema import Config, Limits, ServerSettings
from gateway.config.units import parse_duration, parse_size
from gateway.errors import ConfigError
from gateway.routing.router import build_router


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    """The lines `gateway check` would print for this file."""
    with pytest.raises(ConfigError) as info:
        load(path)
    lines = info.value.lines()
    assert str(info.value) == "\n".join(lines)
    return lines


# Sizes and durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1024, 1024),
        ("1024", 1024),
        ("10MiB", 10 * 1024 * 1024),
        ("10 MiB", 10 * 1024 * 1024),
        ("10mib", 10 * 1024 * 1024),
        ("512KB", 512_000),
        ("512kb", 512_000),
        ("512KiB", 512 * 1024),
        ("1.5KiB", 1536),
        ("2M", 2_000_000),
        ("1GiB", 1024**3),
        ("100B", 100),
    ],
)
def test_sizes(value: object, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["ten", "10 parsecs", "-1", -1, True, 1.5, "", "MiB", None, [1]])
def test_bad_sizes_say_what_was_expected(value: object) -> None:
    with pytest.raises(ValueError, match=r"expected a size such as"):
        parse_size(value)


@pytest.mark.parametrize("value", ["1.5", "0.5B", "1.0001KB"])
def test_a_size_that_is_not_a_whole_number_of_bytes_is_refused(value: str) -> None:
    """ "1.5" used to be 1 byte: most likely a unit left out."""
    with pytest.raises(ValueError, match=r"a size is a whole number of bytes"):
        parse_size(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (30, 30.0),
        (0.5, 0.5),
        ("5s", 5.0),
        ("5", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        (" 3 s ", 3.0),
    ],
)
def test_durations(value: object, expected: float) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["soon", "5 days", "-5s", -1, False, "", "s", None])
def test_bad_durations_say_what_was_expected(value: object) -> None:
    with pytest.raises(ValueError, match=r"expected seconds such as"):
        parse_duration(value)


def test_units_in_a_config_file(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
            [limits]
            max_body_size = "10MiB"
            max_header_size = "16KB"
            max_request_line = 4096
            header_timeout = "5s"
            request_timeout = "2m"
            body_timeout = 45
            keepalive_timeout = "500ms"

            [server]
            shutdown_timeout = "1m"
            """,
        )
    )
    limits = config.limits
    assert limits.max_body_size == 10 * 1024 * 1024
    assert limits.max_header_size == 16_000
    assert limits.max_request_line == 4096
    assert (limits.header_timeout, limits.request_timeout, limits.body_timeout) == (5.0, 120.0, 45.0)
    assert limits.keepalive_timeout == 0.5
    assert config.server.shutdown_timeout == 60.0


def test_empty_file_gives_the_documented_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, ""))
    assert config.limits == Limits()
    assert config.server == ServerSettings()
    assert config.limits.max_body_size == 10 * 1024 * 1024
    assert config.server.listen == ("127.0.0.1:8080",)
    assert config.source == str(tmp_path / "gateway.toml")


def test_a_full_config_loads(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
            app = "tests.support.apps:echo"
            [server]
            listen = ["127.0.0.1:8080", "[::1]:8080", "unix:/tmp/gw.sock", "fd:3"]
            access_log = "off"
            access_log_format = "json"
            loop = "asyncio"
            [limits]
            max_connections = 10
            max_connections_per_client = 2
            """,
        )
    )
    assert config.app == "tests.support.apps:echo"
    assert config.server.listen == ("127.0.0.1:8080", "[::1]:8080", "unix:/tmp/gw.sock", "fd:3")
    assert (config.server.access_log, config.server.access_log_format) == ("off", "json")
    assert (config.limits.max_connections, config.limits.max_connections_per_client) == (10, 2)


def test_listen_may_be_a_single_string(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[server]\nlisten = "127.0.0.1:9000"\n'))
    assert config.server.listen == ("127.0.0.1:9000",)


# ${ENV} substitution ------------------------------------------------------------------------------


def test_env_variable_is_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_PORT", "9123")
    monkeypatch.setenv("GW_TEST_BODY", "2MiB")
    config = load(
        write(
            tmp_path, '[server]\nlisten = ["127.0.0.1:${GW_TEST_PORT}"]\n[limits]\nmax_body_size = "${GW_TEST_BODY}"\n'
        )
    )
    assert config.server.listen == ("127.0.0.1:9123",)
    assert config.limits.max_body_size == 2 * 1024 * 1024


def test_env_default_is_used_when_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_TEST_UNSET", raising=False)
    config = load(write(tmp_path, '[server]\nlisten = ["${GW_TEST_UNSET:-127.0.0.1:8181}"]\n'))
    assert config.server.listen == ("127.0.0.1:8181",)


def test_env_default_is_used_when_set_but_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell's ${VAR:-default}: env files and Kubernetes often set VAR= ; ${VAR} alone keeps the empty value."""
    monkeypatch.setenv("GW_TEST_EMPTY", "")
    text = '[server]\nlisten = ["${GW_TEST_EMPTY:-127.0.0.1:8181}"]\nserver_header = "gw${GW_TEST_EMPTY}"\n'
    config = load(write(tmp_path, text))
    assert (config.server.listen, config.server.server_header) == (("127.0.0.1:8181",), "gw")


def test_a_number_from_the_environment_is_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TOML cannot put ${VAR} in an integer: a quoted ${VAR} is read as the number the key takes."""
    monkeypatch.setenv("GW_TEST_WORKERS", "3")
    text = '[server]\nworkers = "${GW_TEST_WORKERS}"\nbacklog = "${GW_TEST_UNSET:-512}"\n'
    text += '[limits]\nrequest_timeout = "${GW_TEST_UNSET:-2.5}"\n'
    config = load(write(tmp_path, text))
    assert (config.server.workers, config.server.backlog, config.limits.request_timeout) == (3, 512, 2.5)
    lines = problems(write(tmp_path, '[server]\nworkers = "3"\n'))  # quoted by hand: still a mistake
    assert lines and "expected a whole number" in lines[0]


def test_env_value_wins_over_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_SET", "/var/log/gw.log")
    config = load(write(tmp_path, '[server]\naccess_log = "${GW_TEST_SET:-off}"\n'))
    assert config.server.access_log == "/var/log/gw.log"


def test_env_empty_default_is_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_TEST_UNSET", raising=False)
    config = load(write(tmp_path, '[server]\nserver_header = "gw${GW_TEST_UNSET:-}"\n'))
    assert config.server.server_header == "gw"


def test_several_variables_in_one_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_HOST", "127.0.0.1")
    monkeypatch.setenv("GW_TEST_PORT", "8282")
    config = load(write(tmp_path, '[server]\nlisten = ["${GW_TEST_HOST}:${GW_TEST_PORT}"]\n'))
    assert config.server.listen == ("127.0.0.1:8282",)


def test_unset_variable_without_default_names_the_variable_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GW_TEST_MISSING", raising=False)
    path = write(tmp_path, '[server]\nlisten = ["127.0.0.1:${GW_TEST_MISSING}"]\n')
    lines = problems(path)
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: server.listen[0]: ")
    assert "GW_TEST_MISSING" in lines[0]
    assert "${GW_TEST_MISSING:-default}" in lines[0]


def test_substituted_value_is_still_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_BODY", "lots")
    path = write(tmp_path, '[limits]\nmax_body_size = "${GW_TEST_BODY}"\n')
    (line,) = problems(path)
    assert line.startswith(f"{path}: limits.max_body_size: ")
    assert "'lots'" in line


def test_dollar_without_braces_is_left_alone(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[server]\nserver_header = "cost $5"\n'))
    assert config.server.server_header == "cost $5"


# Errors ---------------------------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest_one(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nmax_body = 10\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}: limits.max_body: unknown key")
    assert "did you mean 'max_body_size'?" in line


def test_unknown_server_key_suggests_the_closest_one(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nlisen = ["127.0.0.1:8080"]\n')
    (line,) = problems(path)
    assert line.startswith(f"{path}: server.lisen: ")
    assert "did you mean 'listen'?" in line


def test_unknown_table_suggests_the_closest_one(tmp_path: Path) -> None:
    path = write(tmp_path, "[limit]\nmax_body_size = 10\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}: limit: unknown key")
    assert "did you mean 'limits'?" in line


def test_unknown_key_far_from_any_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nzzz = 1\n")
    (line,) = problems(path)
    assert "did you mean" not in line
    assert "max_body_size" in line and "header_timeout" in line


def test_every_problem_is_reported_one_line_each(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [server]
        workrs = 2
        [limits]
        header_timeout = "soon"
        """,
    )
    lines = problems(path)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{path}: server.workrs: unknown key (did you mean 'workers'?)")
    assert lines[1].startswith(f"{path}: limits.header_timeout: expected seconds")
    assert all("\n" not in line for line in lines)


def test_many_problems_across_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        app = "no-colon-here"
        [server]
        listen = ["localhost"]
        access_log_format = "combind"
        backlog = -5
        [limits]
        max_body_size = "huge"
        max_connections = "many"
        """,
    )
    lines = problems(path)
    keys = [line.split(": ")[1] for line in lines]
    assert sorted(keys) == sorted(
        [
            "app",
            "server.listen[0]",
            "server.access_log_format",
            "server.backlog",
            "limits.max_body_size",
            "limits.max_connections",
        ]
    ), lines
    format_line = next(line for line in lines if "access_log_format" in line)
    assert "did you mean 'combined'?" in format_line


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('[limits]\nmax_header_count = "100"\n', "limits.max_header_count", "whole number"),
        ("[limits]\nmax_header_count = true\n", "limits.max_header_count", "whole number"),
        ("[limits]\nmax_connections = -1\n", "limits.max_connections", "whole number"),
        ("[server]\naccess_log = 1\n", "server.access_log", "expected a string"),
        ("[server]\nlisten = [1, 2]\n", "server.listen", "list of strings"),
        ("[server]\nlisten = []\n", "server.listen", "at least one address"),
        ('[server]\nlisten = ["::1:80"]\n', "server.listen[0]", "brackets"),
        ('[server]\nlisten = ["unix:"]\n', "server.listen[0]", "path"),
        ('[server]\nloop = "trio"\n', "server.loop", "'auto'"),
        ("[server]\nworkers = -2\n", "server.workers", "whole number"),
        ('[server]\nmax_memory = "lots"\n', "server.max_memory", "size"),
        ('server = "x"\n', "server", "expected a table"),
        ('app = "module_only"\n', "app", "module:attribute"),
    ],
)
def test_bad_value_names_the_key_and_what_was_expected(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = write(tmp_path, text)
    lines = problems(path)
    assert any(line.startswith(f"{path}: {key}: ") and fragment in line for line in lines), lines


def test_invalid_toml_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nlisten = 1\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}: not valid TOML")


def test_missing_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    (line,) = problems(path)
    assert line.startswith(f"{path}: cannot read the file")


# Command-line overrides --------------------------------------------------------------------------


def test_overrides_replace_only_what_is_given() -> None:
    config = Config()
    changed = with_overrides(config, listen=("fd:3",), loop=None, access_log="off")
    assert changed.server.listen == ("fd:3",)
    assert changed.server.access_log == "off"
    assert changed.server.loop == config.server.loop
    assert config.server.listen == ("127.0.0.1:8080",)  # the original is untouched
    assert with_overrides(config, listen=None) is config


@pytest.mark.parametrize(
    ("options", "line"),
    [
        ({"workers": -1}, "command line: --workers: expected a whole number from 0 to 2147483647, got -1"),
        ({"loop": "bogus"}, "command line: --loop: expected one of 'auto', 'uvloop', 'asyncio', got 'bogus'"),
        ({"access_log_format": "xml"}, "command line: --access-log-format: expected one of 'combined', 'json'"),
        ({"listen": ("nonsense",)}, "command line: server.listen[0]: expected 'host:port'"),
        ({"workers": 5000}, "command line: server.workers: at most 1024 processes, got 5000"),
    ],
)
def test_command_line_settings_are_checked_as_the_configs_keys_are(options: dict[str, object], line: str) -> None:
    """They used to bypass validation: --workers -1 bound the port and served nothing."""
    with pytest.raises(ConfigError) as info:
        with_overrides(Config(), **options)
    assert info.value.lines()[0].startswith(line), info.value.lines()


# Includes -----------------------------------------------------------------------------------------

SITE = '[[vhost]]\nnames = ["{name}.test"]\n  [[vhost.route]]\n  handler = "redirect"\n  to = "https://x{{path}}"\n'


def test_an_include_of_the_config_itself_is_refused(tmp_path: Path) -> None:
    """Its vhosts were loaded twice, the only sign a warning about a duplicate name."""
    main = write(tmp_path, 'include = ["*.toml"]\n' + SITE.format(name="main"))
    assert problems(main) == [f"{main}: included twice, or it is the config itself: each file is read once"]


def test_an_included_file_holds_vhosts_only(tmp_path: Path) -> None:
    """Its [server], nested include and typos were dropped without a word."""
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "a.toml").write_text(
        'include = ["../other/*.toml"]\nvhostt = 1\n[server]\nlisten = ["127.0.0.1:9999"]\n' + SITE.format(name="a")
    )
    main = write(tmp_path, 'include = ["sites/*.toml"]\n' + SITE.format(name="main"))
    included = tmp_path / "sites" / "a.toml"
    assert problems(main) == [
        f"{included}: {key}: an included file holds [[vhost]] tables only; `{key}` belongs in {main}"
        for key in ("include", "vhostt", "server")
    ]
    (tmp_path / "sites" / "a.toml").write_text(SITE.format(name="a"))
    assert [vhost.names for vhost in load(main).vhosts] == [("main.test",), ("a.test",)]


@pytest.mark.parametrize("handler", ["static", "cgi", "php", "fastcgi"])
def test_every_file_handler_says_when_its_root_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handler: str
) -> None:
    """Tests run as root, which reads every folder: os.access is what the check asks, so it answers no here."""
    (tmp_path / "www").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path / "www" and real_access(path, mode))
    extra = '  address = "127.0.0.1:9000"\n' if handler == "fastcgi" else ""
    config = write(
        tmp_path, f'[[vhost]]\nnames = ["a.test"]\n  [[vhost.route]]\n  handler = "{handler}"\n  root = "www"\n{extra}'
    )
    found = [(key, message) for _, key, message in build_router(load(config))[1]]
    unreadable = f"{str(tmp_path / 'www')!r} cannot be read by this server (check its permissions)"
    assert ("vhost[0].route[0].root", unreadable) in found, found


def test_an_include_that_is_not_toml_hides_no_other_problem(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "a.toml").write_text("[[vhost]\n")
    (tmp_path / "sites" / "b.toml").write_text(SITE.format(name="b") + "  statuss = 301\n")
    main = write(tmp_path, 'include = ["sites/*.toml"]\n[server]\nworkers = -5\n' + SITE.format(name="main"))
    found = problems(main)
    assert len(found) == 3, found
    assert found[0] == f"{main}: server.workers: expected a whole number from 0 to 2147483647, got -5"
    assert found[1].startswith(f"{tmp_path / 'sites' / 'a.toml'}: not valid TOML")
    assert found[2].startswith(f"{tmp_path / 'sites' / 'b.toml'}: vhost[1].route[0].statuss: unknown key")


def test_a_limit_of_zero_is_refused_with_what_to_write_instead(tmp_path: Path) -> None:
    """gunicorn's timeout = 0 and nginx's client_max_body_size 0 mean "no limit"; here 0 would refuse everything."""
    text = "[limits]\nrequest_timeout = 0\nmax_body_size = 0\nmax_header_count = 0\nkeepalive_timeout = 0\n"
    lines = problems(write(tmp_path, text))
    keys = [line.split(": ")[1] for line in lines]
    assert keys == ["limits.max_header_count", "limits.max_body_size", "limits.request_timeout"]
    assert all("must be more than 0" in line and "set a large value" in line for line in lines)


def test_an_empty_methods_list_is_refused(tmp_path: Path) -> None:
    """methods = [] took every method: the opposite of what an empty list says."""
    text = '[[vhost]]\nnames = ["a.test"]\n  [[vhost.route]]\n  methods = []\n  handler = "health"\n'
    lines = problems(write(tmp_path, text))
    assert len(lines) == 1 and "vhost[0].route[0].methods: an empty list would take no method" in lines[0]
