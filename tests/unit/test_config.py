"""Settings: the shipped config.yaml, HOMELAB_* overrides, and errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from frontend import cli
from frontend.core.config import ConfigError, CrawlSection, Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO_ROOT / "config.yaml"
VALID_HASH = "ab" * 32


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def embedding(model_id: str = "m", hf_model: str = "org/name", **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "hf_model": hf_model, **extra}


# --- the shipped file --------------------------------------------------------------------


def test_shipped_config_loads_with_minilm_as_default_embedding() -> None:
    settings = load_settings(SHIPPED_CONFIG)

    assert isinstance(settings, Settings)
    defaults = [e for e in settings.models.entries("text_embedding") if e.default]
    assert len(defaults) == 1
    minilm = defaults[0]
    assert minilm.id == "minilm"
    assert minilm.hf_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.dimensions == 384
    assert minilm.enabled is True


def test_shipped_config_paths_derive_from_data_dir() -> None:
    settings = load_settings(SHIPPED_CONFIG)

    assert settings.data_dir == Path("data")
    assert settings.models_dir == Path("data") / "models"
    assert settings.triton_repository_dir == Path("data") / "triton" / "repository"


def test_crawl_slots_follow_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """crawl.max_concurrent null (the shipped file) or unset: one crawl per usable core,
    2 to 8; a number is kept."""
    for cores, slots in ((1, 2), (4, 4), (64, 8)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert load_settings(SHIPPED_CONFIG).crawl.max_concurrent == slots
        assert load_settings(None).crawl.max_concurrent == slots
    assert CrawlSection(max_concurrent=3).max_concurrent == 3


def test_no_file_gives_defaults() -> None:
    settings = load_settings(None)

    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8000
    assert settings.triton.url is None
    assert settings.models.entries("text_embedding") == []


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing but a comment\n", encoding="utf-8")

    assert load_settings(path).server.port == 8000


# --- environment overrides ----------------------------------------------------------------


def test_env_overrides_win_over_shipped_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOMELAB_SERVER__PORT", "9123")
    monkeypatch.setenv("HOMELAB_TRITON__URL", "triton:8001")
    monkeypatch.setenv("HOMELAB_DATA_DIR", str(tmp_path / "env-data"))

    settings = load_settings(SHIPPED_CONFIG)

    assert settings.server.port == 9123
    assert settings.triton.url == "triton:8001"
    assert settings.data_dir == tmp_path / "env-data"
    # Keys not overridden keep their YAML values.
    assert settings.server.host == "127.0.0.1"
    assert settings.models.entries("text_embedding")[0].id == "minilm"


def test_nested_env_override_merges_with_yaml_section(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write_yaml(
        tmp_path / "config.yaml",
        {
            "server": {"host": "0.0.0.0", "port": 8001},
            "triton": {"url": "yaml-host:8001", "startup_timeout_seconds": 7, "log_verbose": 2},
        },
    )
    monkeypatch.setenv("HOMELAB_TRITON__URL", "env-host:9001")
    monkeypatch.setenv("HOMELAB_SERVER__PORT", "9123")

    settings = load_settings(path)

    assert settings.triton.url == "env-host:9001"
    assert settings.triton.startup_timeout_seconds == 7
    assert settings.triton.log_verbose == 2
    assert settings.server.port == 9123
    assert settings.server.host == "0.0.0.0"


def test_invalid_env_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMELAB_SERVER__PORT", "not-a-port")

    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(SHIPPED_CONFIG)


# --- invalid configurations ---------------------------------------------------------------

INVALID_CONFIGS = [
    pytest.param(
        {"models": {"text_embedding": [embedding(dimensions=-1)]}},
        ["models.text_embedding.0.dimensions"],
        id="negative-dimensions",
    ),
    pytest.param({"server": {"prot": 1}}, ["server.prot"], id="typo-in-section"),
    pytest.param({"sever": {"port": 1}}, ["sever"], id="typo-in-top-level"),
    pytest.param({"server": {"port": 70000}}, ["server.port"], id="port-out-of-range"),
    pytest.param(
        {
            "models": {
                "text_embedding": [embedding("dup")],
                "image_caption": [embedding("dup", "org/other")],
            }
        },
        ["models", "dup", "more than once"],
        id="duplicate-id-across-tasks",
    ),
    pytest.param(
        {
            "models": {
                "text_embedding": [
                    embedding("a", default=True),
                    embedding("b", "org/b", default=True),
                ]
            }
        },
        ["models", "text_embedding", "more than one model has default"],
        id="two-defaults-in-one-task",
    ),
    pytest.param(
        {"models": {"text_embedding": [embedding(hf_model="../etc")]}},
        ["models.text_embedding.0.hf_model"],
        id="hf-model-path-traversal",
    ),
    pytest.param(
        {"models": {"text_embedding": [embedding(hf_model="org/..")]}},
        ["models.text_embedding.0.hf_model"],
        id="hf-model-dotdot-name",
    ),
    pytest.param(
        {"models": {"text_embedding": [embedding("ok"), embedding("a/b", "org/b")]}},
        ["models.text_embedding.1.id"],
        id="id-with-slash",
    ),
    pytest.param(
        {"models": {"text_embedding": [embedding("minilm\n")]}},
        ["models.text_embedding.0.id"],
        id="id-with-trailing-newline",
    ),
    pytest.param(
        {"models": {"text_embedding": [embedding(hf_model="org/name\n")]}},
        ["models.text_embedding.0.hf_model"],
        id="hf-model-with-trailing-newline",
    ),
    pytest.param(
        {"models": {"ocr": [embedding(device="tpu")]}},
        ["models.ocr.0.device"],
        id="unknown-device",
    ),
    pytest.param(
        {"models": {"text_embedding": [embedding(colour="red")]}},
        ["models.text_embedding.0.colour"],
        id="unknown-model-key",
    ),
    pytest.param(
        {"security": {"api_keys": [{"key_hash": "abc123", "name": "app"}]}},
        ["security.api_keys.0.key_hash"],
        id="short-key-hash",
    ),
    pytest.param(
        {"security": {"api_keys": [{"key_hash": "AB" * 32, "name": "app"}]}},
        ["security.api_keys.0.key_hash"],
        id="uppercase-key-hash",
    ),
    pytest.param(
        {"security": {"api_keys": [{"key_hash": "g" * 64, "name": "app"}]}},
        ["security.api_keys.0.key_hash"],
        id="non-hex-key-hash",
    ),
    pytest.param(
        {"models": {"ocr": [embedding("caption", "org/reader")]}},
        ["models", "'caption' is reserved"],
        id="id-that-names-a-task",
    ),
    pytest.param({"log_level": "verbose"}, ["log_level"], id="unknown-log-level"),
    pytest.param(
        {"limits": {"max_texts_per_request": 0}},
        ["limits.max_texts_per_request"],
        id="zero-texts-per-request",
    ),
]


@pytest.mark.parametrize(("data", "expected"), INVALID_CONFIGS)
def test_invalid_config_names_the_key(tmp_path: Path, data: Any, expected: list[str]) -> None:
    path = write_yaml(tmp_path / "config.yaml", data)

    with pytest.raises(ConfigError) as excinfo:
        load_settings(path)

    message = str(excinfo.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_valid_key_hash_is_accepted(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "config.yaml",
        {"security": {"api_keys": [{"key_hash": VALID_HASH, "name": "app"}]}},
    )

    assert load_settings(path).security.api_keys[0].key_hash == VALID_HASH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("- just\n- a list\n", "mapping at the top level", id="list-top-level"),
        pytest.param("just a string\n", "mapping at the top level", id="scalar-top-level"),
        pytest.param("server: {port: 1\n", "not valid YAML", id="unclosed-flow-mapping"),
        pytest.param("server:\n  port: 1\n    host: x\n", "not valid YAML", id="bad-indent"),
    ],
)
def test_unusable_yaml_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=expected) as excinfo:
        load_settings(path)
    assert str(path) in str(excinfo.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError, match="cannot read config file") as excinfo:
        load_settings(path)
    assert str(path) in str(excinfo.value)


# --- the CLI ------------------------------------------------------------------------------


def test_serve_with_invalid_config_exits_2_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    bad = write_yaml(
        tmp_path / "config.yaml",
        {"data_dir": str(data_dir), "models": {"text_embedding": [embedding(dimensions=-1)]}},
    )

    def no_server(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("uvicorn.run must not be reached with an invalid config")

    monkeypatch.setattr(uvicorn, "run", no_server)

    assert cli.main(["serve", "--config", str(bad)]) == 2

    captured = capsys.readouterr()
    assert "models.text_embedding.0.dimensions" in captured.err
    assert captured.out == ""
    assert not data_dir.exists()


def test_serve_with_missing_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_data_dir_flag_beats_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.setenv("HOMELAB_DATA_DIR", str(tmp_path / "from-env"))
    flag_dir = tmp_path / "from-flag"

    argv = ["models", "import", str(source), "--id", "org/name", "--data-dir", str(flag_dir)]
    assert cli.main(argv) == 0

    assert (flag_dir / "models" / "hub" / "models--org--name").is_dir()
    assert not (tmp_path / "from-env").exists()


def test_the_old_keep_alive_in_minutes_is_still_read_as_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings(None).resources.keep_alive_seconds == 1800
    old = load_settings(None, resources={"model_keep_alive_minutes": 2})
    assert old.resources.keep_alive_seconds == 120
    both = load_settings(None, resources={"model_keep_alive_minutes": 2, "keep_alive_seconds": 7})
    assert both.resources.keep_alive_seconds == 7  # the new name wins
    with pytest.raises(ConfigError, match="model_keep_alive_minutes"):
        load_settings(None, resources={"model_keep_alive_minutes": "soon"})
    monkeypatch.setenv("HOMELAB_RESOURCES__MODEL_KEEP_ALIVE_MINUTES", "3")
    assert load_settings(None).resources.keep_alive_seconds == 180
