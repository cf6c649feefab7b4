"""docker-compose.yml, Dockerfile, .dockerignore and .env.example, checked offline.

Each test names one promise of docs/stack.md and proves it from the files alone:
schema-valid compose, pinned images, localhost-only ports, healthy-before-start
ordering, bind mounts that exist, the exporter's DogStatsD-only flags, wiring
that matches bridge/ and grafana/, and no secret in anything committed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.stack import (
    COMPOSE_FILE,
    DOCKERFILE,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    ROOT,
    built_services,
    command_args,
    dockerfile_copies,
    dockerfile_exec_form,
    dockerfile_instructions,
    load_compose,
    services,
)
from tests.support import MAPPING, require_module

EXPORTER = "statsd-exporter"
DOGSTATSD_ONLY_FLAGS = (
    "--statsd.listen-tcp=",
    "--no-statsd.parse-influxdb-tags",
    "--no-statsd.parse-librato-tags",
    "--no-statsd.parse-signalfx-tags",
)
# exact version: 1.2.3, v1.2.3, 7.4.2-alpine, 3.11.13-slim-bookworm; optional digest
PINNED_IMAGE = re.compile(
    r"(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*):(?P<tag>v?\d+\.\d+\.\d+(?:-[A-Za-z0-9.-]+)?)(?:@sha256:[0-9a-f]{64})?"
)
#: who waits for whom (each edge must be `condition: service_healthy`)
EXPECTED_DEPENDS_ON = {
    "prometheus": {EXPORTER},
    "grafana": {"prometheus"},
    "app": {EXPORTER, "redis"},
    "worker": {EXPORTER, "redis"},
    "loadgen": {EXPORTER, "redis", "app"},
}


def flag_value(args: list[str], flag: str) -> str:
    """The value of ``--flag=value`` in ``args`` (fails if absent)."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(flag + "=")]
    assert len(values) == 1, f"expected exactly one {flag}=... in {args}"
    return values[0]


def bind_mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    """A service's bind mounts as long-syntax dicts (short syntax converted)."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append(volume)
            continue
        source, _, rest = volume.partition(":")
        if source.startswith((".", "/", "~")):  # a host path, not a named volume
            target, _, mode = rest.partition(":")
            mounts.append({"source": source, "target": target, "read_only": "ro" in mode.split(",")})
    return mounts


def named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """``{volume name: container path}`` for a service's named-volume mounts."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume":
                found[volume["source"]] = volume["target"]
        elif not volume.startswith((".", "/", "~")):
            name, _, rest = volume.partition(":")
            found[name] = rest.partition(":")[0]
    return found


def mount_source(service: str, target: str) -> Path:
    """The repo path bind-mounted at ``target`` in ``service``."""
    matches = [m for m in bind_mounts(services()[service]) if m["target"] == target]
    assert len(matches) == 1, f"{service}: expected one bind mount at {target}, found {matches}"
    return (ROOT / matches[0]["source"]).resolve()


def container_to_host(service: str, container_path: str) -> Path | None:
    """Map a path inside ``service`` to the repo path mounted there, or None if not bind-mounted."""
    path = PurePosixPath(container_path)
    for mount in bind_mounts(services()[service]):
        target = PurePosixPath(mount["target"])
        if path == target or target in path.parents:
            return (ROOT / mount["source"]).resolve() / path.relative_to(target)
    return None


def published_ports(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """``(host_ip, spec)`` of each published port; host_ip None when the port binds every interface."""
    found: list[tuple[str | None, str]] = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip"), str(port)))
            continue
        spec = str(port).partition("/")[0]
        parts = spec.rsplit(":", 2)
        found.append((parts[0] if len(parts) == 3 else None, str(port)))
    return found


def git_files(*args: str) -> list[str]:
    """``git ls-files`` in the repo (what is committed, or would be)."""
    result = subprocess.run(["git", "ls-files", "-z", *args], cwd=ROOT, capture_output=True, check=True)
    return [name for name in result.stdout.decode().split("\0") if name]


# --- the compose file itself -------------------------------------------------


def check_jsonschema_command() -> list[str]:
    """check-jsonschema from the running interpreter's environment (the test extra installs it)."""
    script = Path(sys.executable).with_name("check-jsonschema")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "check_jsonschema"]


def validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    """Validate ``path`` against check-jsonschema's vendored compose-spec schema, with no network.

    Every proxy variable points at a closed local port: had the validator tried
    to download a schema or a $ref, it would fail instead of passing.
    """
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead, "NO_PROXY": ""}
    env.update({k.lower(): v for k, v in env.items() if k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")})
    cmd = [*check_jsonschema_command(), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def test_compose_file_validates_against_the_compose_spec_offline() -> None:
    result = validate_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_an_invalid_compose_file(tmp_path: Path) -> None:
    """Control: the validation above is not vacuous (a misspelt service key fails)."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  app:\n    imagee: netauto-statsd:compose\n")
    result = validate_compose(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "imagee" in result.stdout + result.stderr


def test_compose_spec_layout_without_obsolete_version_key() -> None:
    compose = load_compose()
    assert "version" not in compose, "top-level `version:` is obsolete in the compose spec"
    assert set(services()) == {EXPORTER, "prometheus", "grafana", "redis", "app", "worker", "loadgen"}


# --- images ------------------------------------------------------------------


def test_every_image_is_pinned_to_an_exact_version() -> None:
    images = {f"service {name}": svc["image"] for name, svc in services().items() if "build" not in svc}
    images.update(
        {
            f"Dockerfile FROM #{i}": args.split()[0]
            for i, (kw, args) in enumerate(dockerfile_instructions())
            if kw == "FROM"
        }
    )
    assert images and any(k.startswith("Dockerfile") for k in images)
    unpinned = {where: image for where, image in images.items() if not PINNED_IMAGE.fullmatch(image)}
    assert not unpinned, f"pin these to an exact version tag (never latest / a bare major): {unpinned}"


def test_exporter_image_is_the_version_the_tests_run() -> None:
    """The compose exporter is the statsd_exporter release the test command installs."""
    tested = re.findall(r"statsd_exporter@(v[\d.]+)", (ROOT / "scripts" / "test").read_text())
    assert tested, "scripts/test no longer names the statsd_exporter version"
    assert services()[EXPORTER]["image"] == f"prom/statsd-exporter:{tested[0]}"


def test_app_services_share_one_image_built_from_the_dockerfile() -> None:
    built = built_services()
    assert set(built) == {"app", "worker", "loadgen"}
    assert {svc["image"] for svc in built.values()} == {"netauto-statsd:compose"}
    for name, svc in built.items():
        build = svc["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, name
    assert dockerfile_exec_form("ENTRYPOINT") == ["netauto-statsd"]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for kw, args in dockerfile_instructions() if kw == "USER"]
    assert users, "the image must switch to a non-root USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


# --- ports, mounts, ordering -------------------------------------------------


def test_every_published_port_is_bound_to_localhost_only() -> None:
    offenders = {}
    for name, svc in services().items():
        assert svc.get("network_mode") != "host", f"{name}: network_mode host would bypass the port bindings"
        bad = [spec for host_ip, spec in published_ports(svc) if host_ip != "127.0.0.1"]
        if bad:
            offenders[name] = bad
    assert not offenders, f"publish only on 127.0.0.1 (the exporter serves /debug/pprof): {offenders}"


def test_exporter_web_port_is_published_on_localhost() -> None:
    web = flag_value(command_args(services()[EXPORTER]), "--web.listen-address").rpartition(":")[2]
    specs = [spec for _, spec in published_ports(services()[EXPORTER])]
    assert f"127.0.0.1:{web}:{web}" in specs


def test_worker_can_be_scaled_out() -> None:
    """`docker compose up --scale worker=3` needs no fixed name and no fixed host port."""
    worker = services()["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_every_bind_mount_is_a_read_only_repo_path_that_exists() -> None:
    committed = set(git_files("--cached", "--others", "--exclude-standard"))
    problems = []
    for name, svc in services().items():
        for mount in bind_mounts(svc):
            source = (ROOT / mount["source"]).resolve()
            where = f"{name}: {mount['source']} -> {mount['target']}"
            if not mount["source"].startswith("./") or ROOT not in source.parents:
                problems.append(f"{where}: not a relative path inside the repo")
            elif not source.exists():
                problems.append(f"{where}: does not exist")
            elif not any(
                f == str(source.relative_to(ROOT)) or f.startswith(f"{source.relative_to(ROOT)}/") for f in committed
            ):
                problems.append(f"{where}: git-ignored, so absent from a fresh clone")
            if not mount.get("read_only"):
                problems.append(f"{where}: must be read-only")
    assert not problems, "\n".join(problems)


def test_named_volumes_are_declared() -> None:
    declared = set(load_compose().get("volumes") or {})
    used = {volume for svc in services().values() for volume in named_volumes(svc)}
    assert used <= declared, f"undeclared named volumes: {used - declared}"


def test_every_depends_on_waits_for_a_healthcheck() -> None:
    all_services = services()
    problems = []
    for name, svc in all_services.items():
        depends_on = svc.get("depends_on", {})
        if isinstance(depends_on, list):
            problems.append(f"{name}: list-form depends_on only waits for the container to start")
            continue
        for target, spec in depends_on.items():
            if (spec or {}).get("condition") != "service_healthy":
                problems.append(f"{name} -> {target}: needs condition: service_healthy")
            check = all_services.get(target, {}).get("healthcheck") or {}
            if not check.get("test") or check.get("disable") or check["test"][0] == "NONE":
                problems.append(f"{name} -> {target}: {target} defines no healthcheck")
    assert not problems, "\n".join(problems)
    graph = {name: set(svc.get("depends_on", {})) for name, svc in all_services.items() if svc.get("depends_on")}
    assert graph == EXPECTED_DEPENDS_ON


def test_app_healthcheck_is_valid_python_against_the_app_port() -> None:
    app = services()["app"]
    test = app["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], "python-slim has no curl/wget: the check runs python"
    compile(test[3], "<app healthcheck>", "exec")
    port = command_args(app)[command_args(app).index("--port") + 1]
    assert f"http://localhost:{port}/healthz" in test[3]
    assert f"127.0.0.1:{port}:{port}" in [spec for _, spec in published_ports(app)]


# --- wiring between the services and the repo's config -----------------------


def test_exporter_runs_dogstatsd_only_with_the_repo_mapping() -> None:
    args = command_args(services()[EXPORTER])
    for flag in DOGSTATSD_ONLY_FLAGS:
        assert flag in args, f"statsd-exporter is missing {flag}"
    assert flag_value(args, "--statsd.listen-tcp") == ""
    assert mount_source(EXPORTER, flag_value(args, "--statsd.mapping-config")) == MAPPING


def test_exporter_restarts_by_itself_and_has_a_large_read_buffer() -> None:
    """Issue 13: a crashed exporter must come back; a burst must not overflow the kernel's default buffer."""
    exporter = services()[EXPORTER]
    assert exporter["restart"] == "unless-stopped"
    assert int(flag_value(command_args(exporter), "--statsd.read-buffer")) >= 8 * 1024 * 1024


def test_app_services_push_to_the_exporter_and_share_the_database() -> None:
    udp_port = int(flag_value(command_args(services()[EXPORTER]), "--statsd.listen-udp").rpartition(":")[2])
    db_volumes = set()
    for name, svc in built_services().items():
        env = svc["environment"]
        target = urlsplit(env["DD_DOGSTATSD_URL"])
        assert (target.scheme, target.hostname, target.port) == ("udp", EXPORTER, udp_port), name
        assert env["NETAUTO_STATSD_ENV"] == "compose", name
        redis = urlsplit(env["REDIS_URL"])
        assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379), name
        assert redis.hostname in services()
        database = env["DATABASE_URL"]
        assert database.startswith("sqlite:////"), f"{name}: an absolute SQLite path, got {database}"
        db_dir = PurePosixPath(database.removeprefix("sqlite:///")).parent
        if name in ("app", "worker"):
            volume = [v for v, path in named_volumes(svc).items() if PurePosixPath(path) == db_dir]
            assert volume, f"{name}: {db_dir} is not on a named volume"
            db_volumes.add(volume[0])
    assert len(db_volumes) == 1, f"app and worker must share one database volume, got {db_volumes}"


def test_prometheus_loads_the_repo_config_and_rules() -> None:
    args = command_args(services()["prometheus"])
    config_path = flag_value(args, "--config.file")
    config_file = mount_source("prometheus", config_path)
    assert config_file == ROOT / "bridge" / "prometheus.yml"
    assert container_to_host("prometheus", "/etc/prometheus/rules") == ROOT / "bridge" / "rules"
    config = yaml.safe_load(config_file.read_text())
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    web_port = flag_value(command_args(services()[EXPORTER]), "--web.listen-address").rpartition(":")[2]
    assert f"{EXPORTER}:{web_port}" in targets, f"bridge/prometheus.yml does not scrape the exporter: {targets}"
    assert config.get("rule_files"), "bridge/prometheus.yml loads no rules"
    for pattern in config["rule_files"]:
        in_container = PurePosixPath(config_path).parent / pattern  # relative to the config file
        on_host = container_to_host("prometheus", str(in_container.parent))
        assert on_host is not None, f"rule_files {pattern}: {in_container.parent} is not mounted"
        assert list(on_host.glob(in_container.name)), f"rule_files {pattern} matches no file in {on_host}"


def yaml_strings(node: Any) -> list[str]:
    """Every string value in parsed YAML (what Grafana expands $VARS in; comments excluded)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in yaml_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in yaml_strings(value)]
    return [node] if isinstance(node, str) else []


def test_grafana_provisioning_matches_its_mounts_and_environment() -> None:
    grafana = services()["grafana"]
    provisioning = mount_source("grafana", "/etc/grafana/provisioning")
    assert provisioning == ROOT / "grafana" / "provisioning"
    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.yml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    assert providers
    for provider in providers:
        path = provider["options"]["path"]
        assert mount_source("grafana", path) == ROOT / "grafana" / "dashboards", f"nothing mounted at {path}"
        assert list((ROOT / "grafana" / "dashboards").glob("*.json"))
    env = grafana["environment"]
    for source in sorted(provisioning.rglob("*.yml")):
        for value in yaml_strings(yaml.safe_load(source.read_text())):
            for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", value):
                assert var in env, f"{source.relative_to(ROOT)} reads ${var}, which compose does not set for grafana"
    assert env["PROMETHEUS_URL"] == "${PROMETHEUS_URL:-http://prometheus:9090}"
    assert urlsplit(env["PROMETHEUS_URL"].split(":-", 1)[1].rstrip("}")).hostname in services()


# --- credentials and secrets --------------------------------------------------


def test_grafana_credentials_are_required_from_the_environment() -> None:
    env = services()["grafana"]["environment"]
    for key, var in (
        ("GF_SECURITY_ADMIN_USER", "GRAFANA_ADMIN_USER"),
        ("GF_SECURITY_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"),
    ):
        assert re.fullmatch(rf"\$\{{{var}:\?[^}}]+\}}", env[key]), f"{key} must be ${{{var}:?message}}"
    assert str(env["GF_AUTH_ANONYMOUS_ENABLED"]).lower() == "false"


def env_example() -> tuple[dict[str, str], set[str]]:
    """``(KEY=value settings, keys documented)`` of .env.example; ``#KEY=...`` documents an optional one."""
    values, documented = {}, set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.match(r"#\s*([A-Z][A-Z0-9_]*)=", line.strip()):
            documented.add(match.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=value: {line!r}"
            values[key.strip()] = value.strip().strip("\"'")
    return values, documented | set(values)


def test_env_example_documents_every_variable_with_placeholders() -> None:
    example, documented = env_example()
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE_FILE.read_text()))
    assert used <= documented, f".env.example does not document: {used - documented}"
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", COMPOSE_FILE.read_text()))
    assert required <= set(example), f".env.example must set the required {required - set(example)}"
    # Empty, not a placeholder: compose's ${VAR:?...} refuses an unset OR empty variable, so a copied,
    # unedited .env.example stops `docker compose up` instead of starting Grafana with a known password.
    for key in sorted(required):
        assert example[key] == "", f".env.example {key} must ship empty (compose then refuses to start)"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must stay git-ignored"


def test_docker_build_context_holds_only_what_the_image_copies() -> None:
    """.dockerignore, evaluated by the docker SDK with Docker's own matching rules."""
    exclude_paths = require_module("docker.utils.build", "pip install docker; it is in the test extra").exclude_paths
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()[:1] not in ("", "#")]
    context = set(exclude_paths(str(ROOT), patterns, dockerfile="Dockerfile"))
    never = (".git", ".venv", ".tools", "tests", ".env", "__pycache__", ".pytest_cache", ".mypy_cache", ".hypothesis")
    leaked = sorted(p for p in context if set(PurePosixPath(p).parts) & set(never) or p.endswith((".pyc", ".db")))
    assert not leaked, f"in the build context but must not be: {leaked[:20]}"
    for sources, _ in dockerfile_copies():
        for source in sources:
            assert source.rstrip("/") in context, f"Dockerfile copies {source}, which .dockerignore excludes"
    package = {p for p in context if p.startswith("netauto_statsd/") and p.endswith(".py")}
    assert package == {str(p.relative_to(ROOT)) for p in (ROOT / "netauto_statsd").rglob("*.py")}


#: high-signal secret shapes, checked in every committed file
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Grafana token": re.compile(r"\b(?:glsa_[A-Za-z0-9]{32}_[0-9a-f]{8}|glc_[A-Za-z0-9+/=]{32,})"),
    "Datadog key": re.compile(r"(?i)\bDD_(?:API|APP)_KEY\s*[:=]\s*['\"]?[0-9a-f]{32}"),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?!\$\{)[^@\s/'\"]+@"),
}
#: `key = value` with a secret-sounding key, checked in config files (code is full of such names)
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b[\w.-]*(?:password|passwd|secret|api[_-]?key|access[_-]?key|token)[\w.-]*['\"]?\s*[:=]\s*['\"]?([^\s'\"#,}]+)"
)
CONFIG_SUFFIXES = {".yml", ".yaml", ".json", ".toml", ".ini", ".cfg", ".conf", ".env", ".example", ".properties"}
PLACEHOLDER = re.compile(
    r"(?i)^(?:\$.*|<[^>]*>|change-?me.*|x{3,}|\*+|example.*|dummy.*|placeholder.*|redacted|null|none|)$"
)


def find_secrets(name: str, text: str) -> list[str]:
    """Lines of ``text`` that look like a committed secret, as ``name:line: kind``."""
    found = []
    config = Path(name).suffix in CONFIG_SUFFIXES or Path(name).name in {"Dockerfile", ".env.example"}
    for number, line in enumerate(text.splitlines(), 1):
        found += [f"{name}:{number}: {kind}" for kind, rx in SECRET_PATTERNS.items() if rx.search(line)]
        if config and not line.lstrip().startswith("#"):
            for value in SECRET_ASSIGNMENT.findall(line):
                if not PLACEHOLDER.match(value):
                    found.append(f"{name}:{number}: secret-like assignment")
    return found


def test_the_secret_scan_catches_what_it_should() -> None:
    """Control: the scanner flags real-looking secrets and passes placeholders (samples built here, not committed)."""
    key_header = "-----BEGIN " + "OPENSSH PRIVATE KEY-----"
    bad = {
        "id_ed25519": key_header,
        "settings.yml": "admin_password: " + "hunter2",
        ".env.example": "GRAFANA_ADMIN_PASSWORD=" + "s3cr3t-Value",
        "conf.py": "URL = 'redis://default:" + "pw123@redis:6379/0'",
        "deploy.sh": "export AWS_KEY=AKIA" + "ABCDEFGHIJKLMNOP",
    }
    for name, text in bad.items():
        assert find_secrets(name, text), f"not flagged: {name}: {text}"
    good = {
        ".env.example": "GRAFANA_ADMIN_PASSWORD=change-me",
        "docker-compose.yml": "GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD:?set it}",
        "conf.py": "password = settings.password",
    }
    for name, text in good.items():
        assert not find_secrets(name, text), f"false positive: {name}: {text}"


def test_no_committed_file_holds_a_secret() -> None:
    """Every tracked file, and every untracked one that is not ignored (it would be committed)."""
    problems = []
    for name in git_files("--cached", "--others", "--exclude-standard"):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        problems += find_secrets(name, data.decode(errors="replace"))
    assert not problems, "possible secrets committed:\n" + "\n".join(problems)
