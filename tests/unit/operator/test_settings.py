"""Operator settings from flags and ECHELON_* variables."""

from __future__ import annotations

import pytest

from echelon_operator.main import build_parser, settings_from_args
from echelon_operator.settings import OperatorSettings, SettingsError


def test_defaults() -> None:
    s = OperatorSettings()
    assert (s.data_port, s.admin_port, s.poll_interval) == (8080, 9090, 10.0)
    assert s.clusterwide and s.peering is None and s.liveness is None


def test_environment_variables() -> None:
    s = OperatorSettings.from_env({
        "ECHELON_NAMESPACES": "a, b",
        "ECHELON_SIDECAR_IMAGE": "img:1",
        "ECHELON_SIDECAR_RESOURCES": '{"limits": {"memory": "1Gi"}}',
        "ECHELON_POLL_INTERVAL": "2.5",
        "ECHELON_SIDECAR_ADMIN_PORT": "9999",
        "ECHELON_OPERATOR_NAMESPACE": "ops",
    })
    assert s.namespaces == ("a", "b") and not s.clusterwide
    assert s.sidecar_image == "img:1"
    assert s.sidecar_resources == {"limits": {"memory": "1Gi"}}
    assert (s.poll_interval, s.admin_port, s.operator_namespace) == (2.5, 9999, "ops")


@pytest.mark.parametrize(("env", "message"), [
    ({"ECHELON_SIDECAR_ADMIN_PORT": "x"}, "ECHELON_SIDECAR_ADMIN_PORT='x'"),
    ({"ECHELON_SIDECAR_ADMIN_PORT": "8080"}, "must differ"),
    ({"ECHELON_POLL_INTERVAL": "0"}, "must be > 0"),
    ({"ECHELON_SIDECAR_RESOURCES": "[1]"}, "expected a JSON object"),
    ({"ECHELON_SIDECAR_IMAGE_PULL_POLICY": "Sometimes"}, "Always, IfNotPresent or Never"),
    ({"ECHELON_SIDECAR_MODE": "sometimes"}, "use auto, native or container"),
])
def test_bad_values_name_the_variable_or_setting(env: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        OperatorSettings.from_env(env)


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHELON_NAMESPACES", "from-env")
    monkeypatch.setenv("ECHELON_PEERING", "env-peering")
    args = build_parser().parse_args(["-n", "a", "-n", "b", "--admin-port", "9191",
                                      "--standalone", "--liveness", "http://127.0.0.1:1/healthz"])
    s = settings_from_args(args)
    assert s.namespaces == ("a", "b") and s.admin_port == 9191
    assert s.peering is None and s.liveness == "http://127.0.0.1:1/healthz"
    all_ns = settings_from_args(build_parser().parse_args(["--all-namespaces"]))
    assert all_ns.clusterwide and all_ns.namespaces == ()


def test_the_sidecar_mode_is_auto_unless_a_flag_or_variable_forces_a_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert OperatorSettings().sidecar_mode == "auto"
    assert OperatorSettings.from_env({"ECHELON_SIDECAR_MODE": "container"}).sidecar_mode == \
        "container"
    monkeypatch.setenv("ECHELON_SIDECAR_MODE", "container")
    args = build_parser().parse_args(["--sidecar-mode", "native"])
    assert settings_from_args(args).sidecar_mode == "native"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--sidecar-mode", "sidecar"])


def test_namespace_and_all_namespaces_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-n", "a", "-A"])


@pytest.mark.parametrize("content", [None, "clusters: [\n", "apiVersion: v1\nkind: Config\n"])
def test_without_usable_credentials_the_operator_stops_with_a_clear_message(
    content: str | None, tmp_path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    from echelon_operator.main import main

    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["--namespace", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "echelon-operator: error: no Kubernetes credentials" in err
    assert f"KUBECONFIG={path}" in err and "Traceback" not in err


def test_sidecar_env_comes_from_a_json_object_and_refuses_reserved_names() -> None:
    from echelon_operator.settings import OperatorSettings, SettingsError
    env = {"ECHELON_SIDECAR_ENV": '{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}'}
    assert OperatorSettings.from_env(env).sidecar_env == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}
    with pytest.raises(SettingsError, match="ECHELON_ prefix is reserved"):
        OperatorSettings(sidecar_env={"ECHELON_POOL": "x"})
    with pytest.raises(SettingsError, match="must be a string"):
        OperatorSettings(sidecar_env={"OTEL_SDK_DISABLED": True})  # type: ignore[dict-item]
    with pytest.raises(SettingsError, match="ECHELON_SIDECAR_ENV"):
        OperatorSettings.from_env({"ECHELON_SIDECAR_ENV": "[1]"})
