"""The JSON Schemas in schema/ checked against the real llmops-ci binary.

The configuration schema must agree with `llmops-ci validate` (exit 0 or 2) on every case
of the table below, and every results file that a real run writes must match the results
schema. Rules that a JSON Schema cannot express are tested against the loader alone.
"""

import json
import os
import re
import subprocess

import jsonschema
import pytest
import yaml

from conftest import BASE_CONFIG, PASSWORD, ROOT, binary_path

CONFIG_SCHEMA_PATH = ROOT / "schema" / "llmops.schema.json"
RESULTS_SCHEMA_PATH = ROOT / "schema" / "results.schema.json"
CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"
LOADER_SOURCE = ROOT / "Sources" / "LLMOpsCI" / "Config" / "ConfigurationLoader.swift"


class ConfigYAMLLoader(yaml.SafeLoader):
    """PyYAML's safe loader without dates, so a date-like scalar stays the text llmops-ci reads."""


ConfigYAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text):
    """Parse YAML as an editor would before applying the schema; mapping keys become strings."""

    def with_string_keys(value):
        if isinstance(value, dict):
            return {str(key): with_string_keys(item) for key, item in value.items()}
        if isinstance(value, list):
            return [with_string_keys(item) for item in value]
        return value

    return with_string_keys(yaml.load(text, Loader=ConfigYAMLLoader))


@pytest.fixture(scope="module")
def config_schema():
    schema = json.loads(CONFIG_SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def results_schema():
    schema = json.loads(RESULTS_SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def binary():
    return binary_path()


@pytest.fixture
def validate(binary, tmp_path):
    """Runs `llmops-ci validate` on config text; returns the completed process."""

    def run(text, environment=None, arguments=None, name="llmops.yml"):
        workdir = tmp_path / f"validate-{len(list(tmp_path.iterdir()))}"
        workdir.mkdir()
        if text is not None:
            path = workdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        variables = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
        variables.update(environment or {})
        command = [binary, "validate"] + (arguments if arguments is not None else ["--config", name])
        return subprocess.run(
            command, cwd=workdir, env=variables, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )

    return run


def schema_errors(validator, text):
    return [error.message for error in validator.iter_errors(parse_yaml(text))]


# -- the configurations of the table -------------------------------------------------

SERVER = """\
server:
  url: https://llmops.example.com
  token: ${LLMOPS_TOKEN}
"""

PROJECT = "project: demo\n"

EVALUATION = """\
evaluations:
  - name: support-bot
    dataset: golden-qa
    metrics: [faithfulness, bleu]
"""

MINIMAL = SERVER + PROJECT + EVALUATION

TOKEN = {"LLMOPS_TOKEN": "token-value"}


def with_server(lines):
    """A minimal config whose server section is `lines` (indented keys under server:)."""
    return "server:\n" + lines + PROJECT + EVALUATION


def with_evaluation(lines):
    """A minimal config with one evaluation made of `lines` (keys indented by four spaces)."""
    return SERVER + PROJECT + "evaluations:\n  - name: support-bot\n" + lines


FULL = """\
version: 1
server:
  url: https://llmops.example.com/api/
  email: ci@example.com
  password: ${LLMOPS_CI_PASSWORD}
  ca_bundle: certs/ca.pem
  request_timeout_seconds: 60
  connect_timeout_seconds: 5
  retry_seconds: 0
  web_url: https://llmops.example.com
  allow_insecure_http: false
project: 11111111-1111-4111-8111-111111111111
defaults:
  metrics: [faithfulness, answer_relevancy]
  judge: gpt-4o-judge
evaluations:
  - name: support-bot
    label: Support bot
    dataset: golden-qa
    endpoint: gpt-4o-prod
    judge: other-judge
    thresholds:
      faithfulness: { min: 0.8, level: warn }
  - name: matrix
    datasets: [golden-qa, edge-cases]
    endpoints: [gpt-4o-prod, llama-3-canary]
    metrics:
      - bleu
      - { code: toxicity, pass_threshold: 0.9, weight: 2, prompt: "Rate the answer." }
polling:
  interval_seconds: 0.5
  max_interval_seconds: 30
  timeout_minutes: 45
  max_concurrent: 8
gate:
  thresholds:
    faithfulness: { min: 0.7, max: 1 }
    latency: { max_raw: 2000, min_raw: 1 }
    bleu: { min_pass_rate: 0.5 }
  regression:
    baseline: latest-completed
    max_drop: 0.05
    confidence: 0.9
    min_paired_cases: 5
  failed_run: warn
  no_data: pass
  infrastructure_error: warn
  inconclusive: fail
  on_missing_secrets: fail
  waivers: [BLEU, support-bot/FAITHFULNESS]
  waiver_label: waive-llm
report:
  comment: hide-and-new
  comment_key: nightly
  worst_cases: 0
  junit: out/junit.xml
  json: out/results.json
  markdown: out/report.md
  web_url: https://llmops.example.com
  skip_label: skip-llm
  max_pairs: 10
"""

LONG_NAME = "n" * 121

# (case id, config text, environment, whether llmops-ci accepts it)
AGREEMENT_CASES = [
    # Complete and minimal files.
    ("minimal with token", MINIMAL, TOKEN, True),
    ("every key set", FULL, {"LLMOPS_CI_PASSWORD": PASSWORD}, True),
    ("email and password", with_server("  url: https://x.example\n  email: ci@example.com\n  password: pw\n"), {}, True),
    ("version quoted", "version: '1'\n" + MINIMAL, TOKEN, True),
    ("project as a number", SERVER + "project: 42\n" + EVALUATION, TOKEN, True),
    ("literal dollar", SERVER + "project: cost$$center\n" + EVALUATION, TOKEN, True),
    ("empty gate and thresholds", MINIMAL + "gate:\n  thresholds: {}\n", TOKEN, True),
    ("secret with hash and colon", with_server("  url: https://x.example\n  email: a@b.c\n  password: ${PW}\n"), {"PW": PASSWORD}, True),
    # ${VAR} in typed keys.
    ("variable in number", MINIMAL + "polling:\n  interval_seconds: ${POLL}\n", {**TOKEN, "POLL": "5"}, True),
    ("variable default in number", MINIMAL + "polling:\n  timeout_minutes: ${TIMEOUT:-20}\n", TOKEN, True),
    ("variable in integer", MINIMAL + "polling:\n  max_concurrent: ${JOBS:-2}\n", TOKEN, True),
    ("variable in boolean", with_server("  url: http://intranet\n  allow_insecure_http: ${INSECURE:-true}\n  token: t\n"), {}, True),
    ("unclosed variable", MINIMAL + "polling:\n  interval_seconds: ${POLL\n", TOKEN, False),
    ("variable name with dash", SERVER + "project: ${MY-PROJECT}\n" + EVALUATION, TOKEN, False),
    ("escaped reference in number", MINIMAL + "polling:\n  interval_seconds: $${POLL}\n", {**TOKEN, "POLL": "5"}, False),
    # Unknown keys.
    ("unknown root key", MINIMAL + "gates: {}\n", TOKEN, False),
    ("unknown server key", with_server("  url: https://x.example\n  token: t\n  user: ci\n"), {}, False),
    ("unknown evaluation key", with_evaluation("    dataset: golden-qa\n    metrics: [bleu]\n    model: x\n"), TOKEN, False),
    ("unknown threshold key", MINIMAL + "gate:\n  thresholds:\n    bleu: { minimum: 0.5 }\n", TOKEN, False),
    ("unknown metric key", with_evaluation("    dataset: golden-qa\n    metrics: [{ code: bleu, threshold: 0.5 }]\n"), TOKEN, False),
    # Wrong types.
    ("text for a number", MINIMAL + "polling:\n  interval_seconds: fast\n", TOKEN, False),
    ("fraction for an integer", MINIMAL + "report:\n  worst_cases: 2.5\n", TOKEN, False),
    ("evaluations as a mapping", SERVER + PROJECT + "evaluations:\n  name: a\n  dataset: b\n", TOKEN, False),
    ("server as a list", "server: [https://x.example]\n" + PROJECT + EVALUATION, {}, False),
    ("project as a list", SERVER + "project: [demo]\n" + EVALUATION, TOKEN, False),
    ("boolean maybe", with_server("  url: http://intranet\n  allow_insecure_http: maybe\n  token: t\n"), {}, False),
    ("boolean yes", with_server("  url: http://intranet\n  allow_insecure_http: yes\n  token: t\n"), {}, True),
    ("boolean in any case", with_server("  url: http://intranet\n  allow_insecure_http: 'tRuE'\n  token: t\n"), {}, True),
    ("empty project", SERVER + "project: ''\n" + EVALUATION, TOKEN, False),
    ("file is a list", "- server\n", {}, False),
    ("file is empty", "", {}, False),
    # Ranges.
    ("request timeout zero", MINIMAL.replace("token:", "request_timeout_seconds: 0\n  token:"), TOKEN, False),
    ("connect timeout 601", MINIMAL.replace("token:", "connect_timeout_seconds: 601\n  token:"), TOKEN, False),
    ("retry seconds zero", MINIMAL.replace("token:", "retry_seconds: 0\n  token:"), TOKEN, True),
    ("interval below minimum", MINIMAL + "polling:\n  interval_seconds: 0.001\n", TOKEN, False),
    ("timeout one week", MINIMAL + "polling:\n  timeout_minutes: 10080\n", TOKEN, True),
    ("timeout over a week", MINIMAL + "polling:\n  timeout_minutes: 10081\n", TOKEN, False),
    ("max concurrent 257", MINIMAL + "polling:\n  max_concurrent: 257\n", TOKEN, False),
    ("pass threshold 1.5", with_evaluation("    dataset: d\n    metrics: [{ code: bleu, pass_threshold: 1.5 }]\n"), TOKEN, False),
    ("weight 10", with_evaluation("    dataset: d\n    metrics: [{ code: bleu, weight: 10 }]\n"), TOKEN, True),
    ("weight 11", with_evaluation("    dataset: d\n    metrics: [{ code: bleu, weight: 11 }]\n"), TOKEN, False),
    ("threshold min negative", MINIMAL + "gate:\n  thresholds:\n    bleu: { min: -0.1 }\n", TOKEN, False),
    ("threshold raw negative", MINIMAL + "gate:\n  thresholds:\n    latency: { min_raw: -5 }\n", TOKEN, True),
    ("confidence 0.4", MINIMAL + "gate:\n  regression:\n    confidence: 0.4\n", TOKEN, False),
    ("min paired cases 1", MINIMAL + "gate:\n  regression:\n    min_paired_cases: 1\n", TOKEN, False),
    ("worst cases 101", MINIMAL + "report:\n  worst_cases: 101\n", TOKEN, False),
    ("max pairs zero", MINIMAL + "report:\n  max_pairs: 0\n", TOKEN, False),
    ("version 2", "version: 2\n" + MINIMAL, TOKEN, False),
    ("name of 121 characters", with_evaluation("    dataset: d\n    metrics: [bleu]\n").replace("support-bot", LONG_NAME), TOKEN, False),
    # Empty lists.
    ("empty evaluations", SERVER + PROJECT + "evaluations: []\n", TOKEN, False),
    ("empty metrics", with_evaluation("    dataset: d\n    metrics: []\n"), TOKEN, False),
    ("empty datasets", with_evaluation("    datasets: []\n    metrics: [bleu]\n"), TOKEN, False),
    ("empty waivers", MINIMAL + "gate:\n  waivers: []\n", TOKEN, False),
    ("datasets listed twice", with_evaluation("    datasets: [a, a]\n    metrics: [bleu]\n"), TOKEN, False),
    # One or many.
    ("datasets and endpoints", with_evaluation("    datasets: [a, b]\n    endpoints: [x, y]\n    metrics: [bleu]\n"), TOKEN, True),
    ("datasets as one value", with_evaluation("    datasets: a\n    metrics: [bleu]\n"), TOKEN, True),
    ("dataset and datasets", with_evaluation("    dataset: a\n    datasets: [b]\n    metrics: [bleu]\n"), TOKEN, False),
    ("endpoint and endpoints", with_evaluation("    dataset: a\n    endpoint: x\n    endpoints: [y]\n    metrics: [bleu]\n"), TOKEN, False),
    ("waivers as one value", MINIMAL + "gate:\n  waivers: bleu\n", TOKEN, True),
    # Credentials.
    ("token with password", with_server("  url: https://x.example\n  token: t\n  password: p\n"), {}, False),
    ("token with email", with_server("  url: https://x.example\n  token: t\n  email: a@b.c\n"), {}, False),
    ("email without password", with_server("  url: https://x.example\n  email: a@b.c\n"), {}, False),
    ("no credentials", with_server("  url: https://x.example\n"), {}, False),
    # Missing keys.
    ("missing server", PROJECT + EVALUATION, {}, False),
    ("missing project", SERVER + EVALUATION, TOKEN, False),
    ("missing evaluations", SERVER + PROJECT, TOKEN, False),
    ("missing url", with_server("  token: t\n"), {}, False),
    ("missing name", SERVER + PROJECT + "evaluations:\n  - dataset: d\n    metrics: [bleu]\n", TOKEN, False),
    ("missing dataset", with_evaluation("    endpoint: x\n    metrics: [bleu]\n"), TOKEN, False),
    ("missing metrics", with_evaluation("    dataset: d\n"), TOKEN, False),
    ("metrics from defaults", SERVER + PROJECT + "defaults:\n  metrics: [bleu]\n" + "evaluations:\n  - name: a\n    dataset: d\n", TOKEN, True),
    ("defaults without metrics", SERVER + PROJECT + "defaults:\n  judge: j\n" + "evaluations:\n  - name: a\n    dataset: d\n", TOKEN, False),
    ("metric mapping without code", with_evaluation("    dataset: d\n    metrics: [{ weight: 1 }]\n"), TOKEN, False),
    ("threshold with level only", MINIMAL + "gate:\n  thresholds:\n    bleu: { level: warn }\n", TOKEN, False),
    # Server addresses.
    ("http to localhost", with_server("  url: http://localhost:8080\n  token: t\n"), {}, True),
    ("http to 127.0.0.1 with user", with_server("  url: http://ci@127.0.0.1:8080/\n  token: t\n"), {}, False),
    ("http to IPv6 loopback", with_server("  url: http://[::1]:8080\n  token: t\n"), {}, True),
    ("http to a .localhost name", with_server("  url: http://llmops.localhost\n  token: t\n"), {}, True),
    ("http to another host", with_server("  url: http://llmops.internal\n  token: t\n"), {}, False),
    ("http with insecure off", with_server("  url: http://llmops.internal\n  allow_insecure_http: false\n  token: t\n"), {}, False),
    ("http with insecure on", with_server("  url: http://llmops.internal\n  allow_insecure_http: on\n  token: t\n"), {}, True),
    ("https in capitals", with_server("  url: HTTPS://LLMOPS.EXAMPLE.COM\n  token: t\n"), {}, True),
    ("ftp address", with_server("  url: ftp://llmops.example.com\n  token: t\n"), {}, False),
    ("scheme only", with_server("  url: https://\n  token: t\n"), {}, False),
    # Metric codes.
    ("metric code with dash", with_evaluation("    dataset: d\n    metrics: [answer-relevancy]\n"), TOKEN, True),
    ("metric code with space", with_evaluation("    dataset: d\n    metrics: [Answer Relevancy]\n"), TOKEN, True),
    ("metric code with dot", with_evaluation("    dataset: d\n    metrics: [rouge.l]\n"), TOKEN, False),
    ("threshold code with dot", MINIMAL + "gate:\n  thresholds:\n    rouge.l: { min: 0.5 }\n", TOKEN, False),
    # Regression: max_drop and baselines.
    ("max drop absolute", MINIMAL + "gate:\n  regression:\n    max_drop: 0.05\n", TOKEN, True),
    ("max drop percentage", MINIMAL + "gate:\n  regression:\n    max_drop: 5%\n", TOKEN, True),
    ("max drop 100 percent", MINIMAL + "gate:\n  regression:\n    max_drop: '100 %'\n", TOKEN, True),
    ("max drop 150 percent", MINIMAL + "gate:\n  regression:\n    max_drop: 150%\n", TOKEN, False),
    ("max drop above one", MINIMAL + "gate:\n  regression:\n    max_drop: 5\n", TOKEN, False),
    ("max drop in words", MINIMAL + "gate:\n  regression:\n    max_drop: five percent\n", TOKEN, False),
    ("baseline none", MINIMAL + "gate:\n  regression:\n    baseline: none\n", TOKEN, True),
    ("baseline run id", MINIMAL + "gate:\n  regression:\n    baseline: run:42\n", TOKEN, True),
    ("baseline file", MINIMAL + "gate:\n  regression:\n    baseline: file:previous/llmops-results.json\n", TOKEN, True),
    ("baseline run without id", MINIMAL + "gate:\n  regression:\n    baseline: 'run:'\n", TOKEN, False),
    ("baseline latest", MINIMAL + "gate:\n  regression:\n    baseline: latest\n", TOKEN, False),
    ("baseline in capitals", MINIMAL + "gate:\n  regression:\n    baseline: None\n", TOKEN, False),
    # Budgets.
    ("budget max", MINIMAL + "gate:\n  budgets:\n    total_tokens: { max: 200000 }\n", TOKEN, True),
    ("budget increase percentage", MINIMAL + "gate:\n  budgets:\n    latency_p95_ms: { max_increase: 250%, level: warn }\n", TOKEN, True),
    ("budget increase amount", MINIMAL + "gate:\n  budgets:\n    total_cost: { max_increase: 0.5 }\n", TOKEN, True),
    ("budget increase over 1000%", MINIMAL + "gate:\n  budgets:\n    total_cost: { max_increase: 1001% }\n", TOKEN, False),
    ("budget max negative", MINIMAL + "gate:\n  budgets:\n    total_cost: { max: -1 }\n", TOKEN, False),
    ("budget with level only", MINIMAL + "gate:\n  budgets:\n    latency_p50_ms: { level: warn }\n", TOKEN, False),
    ("unknown budget", MINIMAL + "gate:\n  budgets:\n    gpu_hours: { max: 1 }\n", TOKEN, False),
    # Choices.
    ("level warn", MINIMAL + "gate:\n  thresholds:\n    bleu: { min: 0.2, level: warn }\n", TOKEN, True),
    ("level error", MINIMAL + "gate:\n  thresholds:\n    bleu: { min: 0.2, level: error }\n", TOKEN, False),
    ("outcome in capitals", MINIMAL + "gate:\n  failed_run: WARN\n", TOKEN, True),
    ("outcome ignore", MINIMAL + "gate:\n  failed_run: ignore\n", TOKEN, False),
    ("cancelled run pass", MINIMAL + "gate:\n  cancelled_run: pass\n", TOKEN, True),
    ("missing secrets warn", MINIMAL + "gate:\n  on_missing_secrets: warn\n", TOKEN, False),
    ("comment update", MINIMAL + "report:\n  comment: update\n", TOKEN, True),
    ("comment new", MINIMAL + "report:\n  comment: new\n", TOKEN, True),
    ("comment off", MINIMAL + "report:\n  comment: off\n", TOKEN, True),
    ("comment delete-and-new", MINIMAL + "report:\n  comment: delete-and-new\n", TOKEN, True),
    ("comment update-or-new-on-change", MINIMAL + "report:\n  comment: update-or-new-on-change\n", TOKEN, True),
    ("comment in capitals", MINIMAL + "report:\n  comment: Hide-And-New\n", TOKEN, True),
    ("comment edit", MINIMAL + "report:\n  comment: edit\n", TOKEN, False),
    # Report files.
    ("report files off", MINIMAL + "report:\n  junit: false\n  json: off\n  markdown: 'No'\n", TOKEN, True),
    ("report file empty", MINIMAL + "report:\n  junit: ''\n", TOKEN, False),
    ("commit status yes", MINIMAL + "report:\n  commit_status: yes\n  require_comment: false\n", TOKEN, True),
    ("require comment sometimes", MINIMAL + "report:\n  require_comment: sometimes\n", TOKEN, False),
]


def test_agreement_table_size():
    assert len(AGREEMENT_CASES) >= 40
    identifiers = [case[0] for case in AGREEMENT_CASES]
    assert len(identifiers) == len(set(identifiers))


@pytest.mark.parametrize(
    "text, environment, accepted", [case[1:] for case in AGREEMENT_CASES], ids=[case[0] for case in AGREEMENT_CASES]
)
def test_schema_agrees_with_loader(config_schema, validate, text, environment, accepted):
    result = validate(text, environment)
    errors = schema_errors(config_schema, text)

    assert result.returncode == (0 if accepted else 2), result.stderr
    assert (not errors) == accepted, errors


# -- examples --------------------------------------------------------------------------


def documented_example():
    """The YAML block under the heading 'Complete example' of docs/configuration.md."""
    text = CONFIGURATION_DOC.read_text()
    match = re.search(r"^## Complete example\n.*?^```yaml\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/configuration.md has no ```yaml block under '## Complete example'"
    return match.group(1)


EXAMPLE_ENVIRONMENT = {"LLMOPS_CI_PASSWORD": PASSWORD, "LLMOPS_TOKEN": "token-value"}


def example_configurations():
    """The llmops.yml examples in examples/, without the CI workflow files kept there too.

    A file counts as a configuration when its top level has server, project or evaluations.
    """
    paths = []
    for path in sorted((ROOT / "examples").glob("*.yml")):
        document = parse_yaml(path.read_text())
        if isinstance(document, dict) and {"server", "project", "evaluations"} & set(document):
            paths.append(path)
    return paths


def test_examples_include_main_example():
    assert ROOT / "examples" / "llmops.yml" in example_configurations()


@pytest.mark.parametrize("path", example_configurations(), ids=lambda path: path.name)
def test_example_file_is_valid(config_schema, validate, path):
    text = path.read_text()

    errors = schema_errors(config_schema, text)
    result = validate(text, EXAMPLE_ENVIRONMENT)

    assert not errors, errors
    assert result.returncode == 0, result.stderr


def test_documented_example_is_valid(config_schema, validate):
    text = documented_example()

    errors = schema_errors(config_schema, text)
    result = validate(text, EXAMPLE_ENVIRONMENT)

    assert not errors, errors
    assert result.returncode == 0, result.stderr


# -- the schema's own shape ----------------------------------------------------------------


def swift_enum_raw_values(name):
    """The raw values of `enum name` in Configuration.swift, in declaration order."""
    source = (ROOT / "Sources" / "LLMOpsCI" / "Config" / "Configuration.swift").read_text()
    body = source[source.index(f"enum {name}") :]
    body = body[: body.index("\n    }\n")]
    values = []
    for case_name, raw_value in re.findall(r'case (\w+)(?: = "([^"]+)")?', body):
        values.append(raw_value or case_name)
    return values


def swift_key_lists():
    """The key lists of `enum ConfigKeys` in the loader source, by name.

    A list is either a literal array or the raw values of an enum (`X.allCases.map(\\.rawValue)`).
    """
    source = LOADER_SOURCE.read_text()
    body = source[source.index("enum ConfigKeys") :]
    body = body[: body.index("\n}\n")]
    lists = {}
    for name, items in re.findall(r"static let (\w+) = \[(.*?)\]", body, re.DOTALL):
        lists[name] = re.findall(r'"([^"]+)"', items)
    for name, enum_name in re.findall(r"static let (\w+) = Configuration\.(\w+)\.allCases\.map", body):
        lists[name] = swift_enum_raw_values(enum_name)
    return lists


def test_schema_keys_match_loader_keys():
    schema = json.loads(CONFIG_SCHEMA_PATH.read_text())
    definitions = schema["$defs"]
    properties = schema["properties"]
    schema_keys = {
        "root": properties,
        "server": properties["server"]["properties"],
        "defaults": properties["defaults"]["properties"],
        "evaluation": definitions["evaluation"]["properties"],
        "metric": definitions["metric"]["anyOf"][1]["properties"],
        "polling": properties["polling"]["properties"],
        "gate": properties["gate"]["properties"],
        "threshold": definitions["threshold"]["properties"],
        "budgets": properties["gate"]["properties"]["budgets"]["properties"],
        "budget": definitions["budget"]["properties"],
        "regression": properties["gate"]["properties"]["regression"]["properties"],
        "report": properties["report"]["properties"],
    }
    loader_keys = swift_key_lists()

    assert sorted(loader_keys) == sorted(schema_keys)
    for name, keys in loader_keys.items():
        assert sorted(schema_keys[name]) == sorted(keys), name


def every_property(schema, path=""):
    """Yields (key path, property schema) for every property in the schema, $defs included."""
    if isinstance(schema, dict):
        for key, value in schema.get("properties", {}).items():
            yield f"{path}.{key}", value
        for key, value in schema.items():
            yield from every_property(value, f"{path}/{key}" if key != "properties" else path)
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from every_property(item, f"{path}[{index}]")


def test_every_property_is_described():
    schema = json.loads(CONFIG_SCHEMA_PATH.read_text())
    conditions = ("/if", "/then", "/else")
    properties = [(path, value) for path, value in every_property(schema) if not any(part in path for part in conditions)]

    assert len(properties) > 60
    for path, value in properties:
        assert value.get("description"), path
        assert "default" in value or "examples" in value, path


def test_every_result_field_is_described():
    schema = json.loads(RESULTS_SCHEMA_PATH.read_text())
    properties = list(every_property(schema))

    assert len(properties) > 80
    for path, value in properties:
        assert value.get("description"), path
        assert "type" in value, path


def test_every_key_is_documented():
    document = CONFIGURATION_DOC.read_text()
    for name, keys in swift_key_lists().items():
        for key in keys:
            assert f"`{key}`" in document, f"{name}.{key}"


def test_results_schema_lists_the_written_fields():
    source = (ROOT / "Sources" / "LLMOpsCI" / "Rendering" / "ResultsFile.swift").read_text()
    encoder = source[source.index("public static func encode") : source.index("// MARK: Reading")]
    written = set(re.findall(r'"(\w+)":', encoder)) | set(re.findall(r'\["(\w+)"\] =', encoder))
    schema = json.loads(RESULTS_SCHEMA_PATH.read_text())
    documented = {path.rsplit(".", 1)[-1] for path, _ in every_property(schema)}

    assert written - documented == set()
    assert documented - written == set()


# -- rules of the loader that the schema cannot express ----------------------------------


def test_duplicate_key_names_place_and_key(validate):
    text = MINIMAL + "polling:\n  interval_seconds: 5\n  interval_seconds: 6\n"

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "llmops.yml:11:3: polling.interval_seconds:" in result.stderr
    assert "appears twice" in result.stderr


def test_duplicate_evaluation_names_rejected(validate):
    text = MINIMAL + "  - name: support-bot\n    dataset: edge-cases\n    metrics: [bleu]\n"

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "evaluations[1].name" in result.stderr
    assert "unique" in result.stderr


def test_duplicate_pair_rejected(validate):
    text = MINIMAL + "  - name: copy\n    datasets: [golden-qa]\n    metrics: [bleu, faithfulness]\n"

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "already evaluated by evaluations[0]" in result.stderr


def test_same_pair_with_other_metrics_accepted(validate):
    text = MINIMAL + "  - name: copy\n    dataset: golden-qa\n    metrics: [rouge_l]\n"

    result = validate(text, TOKEN)

    assert result.returncode == 0, result.stderr


def test_metric_listed_twice_in_other_case(validate):
    text = with_evaluation("    dataset: d\n    metrics: [bleu, BLEU]\n")

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "BLEU is listed twice" in result.stderr


def test_threshold_min_above_max_rejected(validate):
    text = MINIMAL + "gate:\n  thresholds:\n    bleu: { min: 0.9, max: 0.5 }\n"

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "gate.thresholds.bleu" in result.stderr


def test_max_interval_below_interval_rejected(validate):
    text = MINIMAL + "polling:\n  interval_seconds: 30\n  max_interval_seconds: 20\n"

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "polling.max_interval_seconds" in result.stderr


def test_unset_variable_names_variable_and_key(validate):
    result = validate(MINIMAL, {})

    assert result.returncode == 2
    assert "llmops.yml:3:10: server.token:" in result.stderr
    assert "LLMOPS_TOKEN is not set" in result.stderr


def test_empty_variable_uses_default(validate):
    text = SERVER + "project: ${PROJECT_NAME:-demo}\n" + EVALUATION

    result = validate(text, {**TOKEN, "PROJECT_NAME": ""})

    assert result.returncode == 0, result.stderr


def test_secret_never_printed(validate):
    text = with_server("  url: https://x.example\n  email: a@b.c\n  password: ${PW}\n  retry_seconds: ${PW}\n")

    result = validate(text, {"PW": PASSWORD})

    assert result.returncode == 2
    assert "server.retry_seconds" in result.stderr
    assert PASSWORD not in result.stderr


def test_merge_keys_rejected(validate):
    text = MINIMAL + "polling: &fast\n  interval_seconds: 1\ngate:\n  <<: *fast\n"

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "unknown key '<<'" in result.stderr


def test_aliases_expand(validate):
    text = SERVER + PROJECT + (
        "evaluations:\n"
        "  - name: a\n    dataset: d1\n    metrics: &metrics [bleu, faithfulness]\n"
        "  - name: b\n    dataset: d2\n    metrics: *metrics\n"
    )

    result = validate(text, TOKEN)

    assert result.returncode == 0, result.stderr


def test_second_document_rejected(validate):
    result = validate(MINIMAL + "---\n" + MINIMAL, TOKEN)

    assert result.returncode == 2
    assert "more than one YAML document" in result.stderr


def test_file_over_one_mebibyte_rejected(validate):
    text = MINIMAL + "# " + "x" * (1 << 20) + "\n"

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "more than the limit of 1048576 bytes" in result.stderr


def test_nesting_over_64_levels_rejected(validate):
    text = MINIMAL + "report: " + "[" * 70 + "]" * 70 + "\n"

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "nests deeper than 64 levels" in result.stderr


def test_alias_expansion_over_node_limit_rejected(validate):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [" + ", ".join([previous] * 10) + "]")
    text = "\n".join(lines) + "\n" + MINIMAL

    result = validate(text, TOKEN)

    assert result.returncode == 2
    assert "more than 100000 nodes" in result.stderr


# -- discovery and the fallback to the platform guide's variables ---------------------------


@pytest.mark.parametrize("name", ["llmops.yml", ".llmops.yml", ".github/llmops.yml"])
def test_discovery_finds_each_path(validate, name):
    result = validate(MINIMAL, TOKEN, arguments=[], name=name)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{name}: valid")


def run_validate_in(binary, directory, files, arguments):
    """Writes `files` (relative path to text) into `directory` and runs validate there."""
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory), **TOKEN}
    return subprocess.run(
        [binary, "validate"] + arguments, cwd=directory, env=environment, capture_output=True, text=True, timeout=60
    )


BROKEN = "broken: [\n"

DISCOVERY_CASES = [
    ("config option first", {"custom.yml": MINIMAL, "llmops.yml": BROKEN}, ["--config", "custom.yml"], "custom.yml"),
    ("llmops.yml second", {"llmops.yml": MINIMAL, ".llmops.yml": BROKEN, ".github/llmops.yml": BROKEN}, [], "llmops.yml"),
    ("hidden file third", {".llmops.yml": MINIMAL, ".github/llmops.yml": BROKEN}, [], ".llmops.yml"),
]


@pytest.mark.parametrize(
    "files, arguments, chosen", [case[1:] for case in DISCOVERY_CASES], ids=[case[0] for case in DISCOVERY_CASES]
)
def test_discovery_order(binary, tmp_path, files, arguments, chosen):
    result = run_validate_in(binary, tmp_path, files, arguments)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{chosen}: valid")


def test_missing_config_option_file(binary, tmp_path):
    result = run_validate_in(binary, tmp_path, {"llmops.yml": MINIMAL}, ["--config", "absent.yml"])

    assert result.returncode == 2
    assert "absent.yml" in result.stderr


GUIDE_VARIABLES = {
    "LLMOPS_API_URL": "https://llmops.example.com",
    "LLMOPS_CI_EMAIL": "ci@example.com",
    "LLMOPS_CI_PASSWORD": PASSWORD,
    "PROJECT_ID": "demo",
    "DATASET_ID": "golden-qa",
}


def test_guide_variables_without_file(validate):
    result = validate(None, {**GUIDE_VARIABLES, "ENDPOINT_ID": "gpt-4o-prod"}, arguments=[])

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("environment (LLMOPS_API_URL and related variables): valid")
    assert "1 pair" in result.stdout


def test_guide_variables_missing_one_named(validate):
    variables = dict(GUIDE_VARIABLES)
    del variables["DATASET_ID"]

    result = validate(None, variables, arguments=[])

    assert result.returncode == 2
    assert "DATASET_ID is not" in result.stderr


def test_no_file_and_no_variables(validate):
    result = validate(None, {}, arguments=[])

    assert result.returncode == 2
    assert "no configuration file found" in result.stderr


# -- where the loader seems wrong ------------------------------------------------------


@pytest.mark.parametrize("value", ["null", "~"])
def test_null_project_rejected(config_schema, validate, value):
    text = SERVER + f"project: {value}\n" + EVALUATION

    assert schema_errors(config_schema, text)
    assert validate(text, TOKEN).returncode == 2


def test_report_path_true_rejected(config_schema, validate):
    text = MINIMAL + "report:\n  junit: true\n"

    assert schema_errors(config_schema, text)
    assert validate(text, TOKEN).returncode == 2


def test_comment_false_accepted(config_schema, validate):
    text = MINIMAL + "report:\n  comment: false\n"

    assert not schema_errors(config_schema, text)
    assert validate(text, TOKEN).returncode == 0


@pytest.mark.parametrize("url", ["https://api", "https://api/"])
def test_host_named_api_accepted(config_schema, validate, url):
    text = with_server(f"  url: {url}\n  token: t\n")

    assert not schema_errors(config_schema, text)
    assert validate(text, {}).returncode == 0


def test_http_to_127_named_host_rejected(config_schema, validate):
    text = with_server("  url: http://127.attacker.example\n  email: a@b.c\n  password: p\n")

    assert schema_errors(config_schema, text)
    assert validate(text, {}).returncode == 2


def test_interval_above_default_cap_accepted(validate):
    text = MINIMAL + "polling:\n  interval_seconds: 120\n"

    assert validate(text, TOKEN).returncode == 0


def test_threshold_spellings_of_one_metric_rejected(validate):
    text = MINIMAL + "gate:\n  thresholds:\n    answer-relevancy: { min: 0.5 }\n    answer_relevancy: { min: 0.9 }\n"

    assert validate(text, TOKEN).returncode == 2


def test_version_zero_message_names_version_one(validate):
    result = validate("version: 0\n" + MINIMAL, TOKEN)

    assert result.returncode == 2
    assert "9223372036854775807" not in result.stderr
    assert "version: 1" in result.stderr


def test_validate_summary_singular(validate):
    result = validate(MINIMAL, TOKEN)

    assert "(1 evaluation, 1 pair)" in result.stdout


# -- results files of real runs ------------------------------------------------------------


def check_results(validator, result):
    document = result.json()
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]
    assert not errors, errors
    return document


def test_results_of_passing_run(results_schema, llmops_server, run_agent):
    server = llmops_server()

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    document = check_results(results_schema, result)
    assert document["verdict"] == "passed"
    assert document["pairs"][0]["run"]["status"] == "COMPLETED"
    assert document["pairs"][0]["cases"]


def test_results_of_failing_run(results_schema, llmops_server, run_agent):
    server = llmops_server()
    config = BASE_CONFIG + "gate:\n  thresholds:\n    faithfulness: { min: 0.95 }\n"

    result = run_agent(["run"], config=config, server=server)

    assert result.exit_code == 1, result
    document = check_results(results_schema, result)
    assert document["verdict"] == "failed"
    assert document["pairs"][0]["outcome"] == "fail"


def test_results_of_failed_evaluation(results_schema, llmops_server, run_agent):
    server = llmops_server({"runs": [{"final_status": "FAILED", "error_message": "judge quota exceeded"}]})

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 3, result
    document = check_results(results_schema, result)
    assert document["verdict"] == "incomplete"
    pair = document["pairs"][0]
    assert pair["state"] == "failed"
    assert pair["run"]["status"] == "FAILED"
    assert "judge quota exceeded" in pair["problem"]


def test_results_with_file_baseline(results_schema, llmops_server, run_agent, tmp_path):
    server = llmops_server()
    first = run_agent(["run"], config=BASE_CONFIG, server=server)
    assert first.exit_code == 0, first
    baseline_path = tmp_path / "baseline-results.json"
    baseline_path.write_text(first.file("llmops-results.json"))
    config = BASE_CONFIG + f"gate:\n  regression:\n    baseline: file:{baseline_path}\n"

    result = run_agent(["run", "--fresh"], config=config, server=server)

    assert result.exit_code == 0, result
    document = check_results(results_schema, result)
    pair = document["pairs"][0]
    assert pair["baseline"] is not None
    assert any(metric["comparison"] is not None for metric in pair["metrics"])


def test_results_with_budgets(results_schema, llmops_server, run_agent):
    server = llmops_server()
    config = BASE_CONFIG + "gate:\n  budgets:\n    latency_p95_ms: { max: 1 }\n    total_tokens: { max: 1000000000 }\n"

    result = run_agent(["run"], config=config, server=server)

    document = check_results(results_schema, result)
    codes = [metric["code"] for metric in document["pairs"][0]["metrics"]]
    assert "LATENCY_P95_MS" in codes
    assert "TOTAL_TOKENS" in codes


def test_results_schema_rejects_unknown_verdict(results_schema, llmops_server, run_agent):
    server = llmops_server()
    document = run_agent(["run"], config=BASE_CONFIG, server=server).json()
    document["verdict"] = "maybe"
    del document["pairs"][0]["metrics"][0]["mean"]

    messages = [error.message for error in results_schema.iter_errors(document)]

    assert any("'maybe'" in message for message in messages), messages
    assert any("'mean' is a required property" in message for message in messages), messages
