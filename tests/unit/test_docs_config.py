"""The documentation is current: docs/configuration.md generated from config.yaml and the
settings model, docs/models.md's catalogue from the manifest, docs/api.md listing every route,
and a short README linking to real pages."""

from __future__ import annotations

import re

import yaml

from frontend.app import create_app
from frontend.core.config import ModelEntry, Settings
from tools import docs_config


def test_committed_page_is_the_generated_one() -> None:
    stale = docs_config.PAGE.read_text() != docs_config.render()
    assert not stale, "docs/configuration.md is stale: run .venv/bin/python -m tools.docs_config"


def test_models_page_has_the_manifests_catalogue() -> None:
    page = docs_config.MODELS_PAGE.read_text()
    stale = docs_config.models_page(page) != page
    assert not stale, "docs/models.md's catalogue is stale: run python -m tools.docs_config"
    assert "| `sentence-transformers/all-MiniLM-L6-v2` | all-MiniLM-L6-v2 |" in page


def test_every_section_of_config_yaml_and_every_setting_is_on_the_page() -> None:
    page = docs_config.render()
    for key in yaml.safe_load(docs_config.CONFIG.read_text()):
        assert f"### `{key}`" in page
    for name, field in Settings.model_fields.items():
        nested = docs_config.section_model(field.annotation)
        if nested is None:
            assert f"| `{name}` |" in page
        else:
            for sub in nested.model_fields:
                assert f"`{name}.{sub}" in page, f"{name}.{sub}"
    for name in ModelEntry.model_fields:
        assert f"| `models.<task>.<n>.{name}` |" in page


def test_sections_keep_their_comments_and_nested_lines() -> None:
    text = "# top\n\n# about a\na: 1\n\n# about b\nb:\n  c: 2\n\n  # inner\n  d: 3\n"
    assert docs_config.yaml_sections(text) == [
        ("a", "# about a\na: 1"),
        ("b", "# about b\nb:\n  c: 2\n\n  # inner\n  d: 3"),
    ]


def test_every_route_of_the_openapi_schema_is_in_the_api_reference() -> None:
    # a new route gets its row in docs/api.md ("## Routes"); path parameters may be renamed
    page = (docs_config.ROOT / "docs" / "api.md").read_text()
    routes = page.split("## Routes", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"/[^\s`,|()]*", re.sub(r"\{[^}]*\}", "{}", routes)))
    paths = create_app(Settings()).openapi()["paths"]
    missing = [p for p in paths if re.sub(r"\{[^}]*\}", "{}", p) not in listed]
    assert not missing, f"routes missing from docs/api.md: {missing}"


def test_readme_is_short_keeps_the_ci_command_and_links_only_to_real_pages() -> None:
    from markdown.extensions.toc import slugify  # mkdocs' heading ids (dev dependency)

    readme = (docs_config.ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    ci = (docs_config.ROOT / ".ci" / "run").read_text()
    command = "bash tools/install.sh --dev && bash tools/check.sh"
    assert command in ci.splitlines()[-1]  # .ci/run runs exactly the README's test command
    assert f"\n{command}\n" in readme
    assert "\nbash tools/install.sh && .venv/bin/homelab-ai serve\n" in readme
    links = re.findall(r"\]\((docs/[^)#]+)(?:#([^)]+))?\)", readme)
    assert len(links) > 20
    for path, anchor in links:
        target = docs_config.ROOT / path
        assert target.is_file(), path
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(), flags=re.MULTILINE)
            assert anchor in {slugify(h, "-") for h in headings}, f"{path}#{anchor}"


def test_every_curl_with_a_json_body_in_the_docs_says_it_is_json() -> None:
    # `curl -d` sends application/x-www-form-urlencoded, which the JSON routes refuse with a 400
    pages = [docs_config.ROOT / "README.md", *sorted((docs_config.ROOT / "docs").rglob("*.md"))]
    commands = []
    for page in pages:
        text = re.sub(r"\\\n", " ", page.read_text())  # shell line continuations
        commands += [(page.name, line) for line in text.splitlines() if "curl " in line]
    with_json = [(name, c) for name, c in commands if re.search(r"-d\s+['\"]\{", c)]
    assert len(with_json) > 10
    untyped = [(n, c) for n, c in with_json if "Content-Type: application/json" not in c]
    assert not untyped, untyped
