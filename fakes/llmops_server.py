#!/usr/bin/env python3
"""Fake LLMOps Eval server for the llmops-ci demo and end-to-end tests.

The server keeps everything in memory and serves the part of the LLMOps Eval
REST API that a CI agent uses: login, catalogue lookups, evaluation runs and
their per-case results. Seed data has fixed ids, scores are deterministic, and
a scenario file scripts run outcomes and transport faults. It mirrors the
quirks of the real Spring Boot server, such as flat login responses, a fixed
401 body, HTTP 500 for malformed input and runs that never leave PENDING.

Only the Python 3 standard library is used. README.md next to this file lists
the seed data and the scenario keys.
"""

import argparse
import hashlib
import hmac
import base64
import ipaddress
import itertools
import json
import logging
import math
import os
import re
import secrets
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit

LOG = logging.getLogger("llmops_fake")

# ---------------------------------------------------------------------------
# Fixed identities and seed data
# ---------------------------------------------------------------------------

USER_ID = "44444444-4444-4444-8444-000000000001"
USER_EMAIL = "ci@example.com"
USER_FULL_NAME = "CI Agent"
USER_ROLE = "DEVELOPER"
ORGANIZATION_ID = "55555555-5555-4555-8555-000000000001"
ORGANIZATION_NAME = "Demo Org"
DEFAULT_PASSWORD = "demo-password"
PASSWORD_ENV_VAR = "FAKE_LLMOPS_PASSWORD"

DEMO_PROJECT_ID = "11111111-1111-4111-8111-111111111111"
OTHER_PROJECT_ID = "11111111-1111-4111-8111-111111111112"
GOLDEN_QA_DATASET_ID = "22222222-2222-4222-8222-000000000001"
EDGE_CASES_DATASET_ID = "22222222-2222-4222-8222-000000000002"
GPT4O_PROD_ENDPOINT_ID = "33333333-3333-4333-8333-000000000001"
LLAMA_CANARY_ENDPOINT_ID = "33333333-3333-4333-8333-000000000002"
GPT4O_JUDGE_ENDPOINT_ID = "33333333-3333-4333-8333-000000000003"

# Namespace for every uuid5 id that the fake derives (metric ids, test case
# ids, ids of scenario entities without an explicit id). Changing it changes
# those ids, which configs and tests may have pinned.
FAKE_NAMESPACE = uuid.UUID("6f1e2d3c-4b5a-4978-8a1b-2c3d4e5f6a7b")

# The signing key is public on purpose, so tests can verify the tokens.
JWT_SECRET = b"llmops-fake-server-signing-key"
JWT_ISSUER = "llmops-platform"
# The real server hard-codes expiresIn to 1800, independent of the JWT exp claim.
LOGIN_EXPIRES_IN = 1800
REFRESH_TOKEN_TTL_SECONDS = 7 * 24 * 3600

# Spring Data's default upper bound for the page size.
MAX_PAGE_SIZE = 2000
# Oldest request log entries are dropped beyond this count.
REQUEST_LOG_LIMIT = 50000

UNAUTHORIZED_BODY = (
    b'{"success":false,"statusCode":401,"error":"Unauthorized - Please login again"}'
)
INTERNAL_ERROR_MESSAGE = "An unexpected error occurred"

EVALUATION_STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
EVALUATION_MODES = ("PRE_GENERATED", "LIVE_GENERATION")
TRIGGER_TYPES = ("MANUAL", "CI_CD", "SCHEDULED")
LLM_TYPES = ("CLIENT", "JUDGE")
PROVIDER_TYPES = ("OPENAI", "ANTHROPIC", "AZURE_OPENAI", "AWS_BEDROCK", "GOOGLE_VERTEX", "CUSTOM")
ACCESS_LEVELS = ("ADMIN", "WRITE", "READ", "NONE")
STUCK_STATUS = "STUCK"

# (code, displayName, description, category, requiresGroundTruth,
#  requiresContext, requiresJudgeLlm, defaultWeight, defaultThreshold)
METRIC_CATALOGUE = [
    ("BLEU", "BLEU Score", "N-gram overlap with the reference answer",
     "TRADITIONAL_NLP", True, False, False, 1.0, 0.3),
    ("ROUGE_1", "ROUGE-1", "Unigram overlap with the reference answer",
     "TRADITIONAL_NLP", True, False, False, 1.0, 0.4),
    ("ROUGE_2", "ROUGE-2", "Bigram overlap with the reference answer",
     "TRADITIONAL_NLP", True, False, False, 1.0, 0.2),
    ("ROUGE_L", "ROUGE-L", "Longest common subsequence with the reference answer",
     "TRADITIONAL_NLP", True, False, False, 1.0, 0.35),
    ("EXACT_MATCH", "Exact Match", "1 when the output equals the reference answer",
     "TRADITIONAL_NLP", True, False, False, 1.0, 1.0),
    ("CONTAINS", "Contains Match", "1 when the output contains the reference answer",
     "TRADITIONAL_NLP", True, False, False, 1.0, 1.0),
    ("LEVENSHTEIN", "Levenshtein Similarity", "1 minus the normalized edit distance",
     "TRADITIONAL_NLP", True, False, False, 1.0, 0.7),
    ("SEMANTIC_SIMILARITY", "Semantic Similarity", "Cosine similarity of sentence embeddings",
     "SEMANTIC", True, False, False, 1.0, 0.7),
    ("BERTSCORE", "BERTScore", "Similarity of contextual BERT embeddings",
     "SEMANTIC", True, False, False, 1.0, 0.7),
    ("FAITHFULNESS", "Faithfulness", "Whether the answer is grounded in the context",
     "RAG_SPECIFIC", False, True, True, 1.0, 0.7),
    ("ANSWER_RELEVANCY", "Answer Relevancy", "Whether the answer addresses the question",
     "RAG_SPECIFIC", False, True, True, 1.0, 0.7),
    ("CONTEXT_PRECISION", "Context Precision", "Share of the retrieved context that is useful",
     "RAG_SPECIFIC", True, True, True, 1.0, 0.7),
    ("CONTEXT_RECALL", "Context Recall", "Share of the relevant information that was retrieved",
     "RAG_SPECIFIC", True, True, True, 1.0, 0.7),
    ("CONTEXT_RELEVANCY", "Context Relevancy", "Relevance of the retrieved context to the question",
     "RAG_SPECIFIC", False, True, True, 1.0, 0.7),
    ("RELEVANCE", "Relevance (Judge)", "Judge rating of relevance to the query",
     "LLM_AS_JUDGE", False, False, True, 1.0, 0.6),
    ("COHERENCE", "Coherence (Judge)", "Judge rating of logical flow and structure",
     "LLM_AS_JUDGE", False, False, True, 1.0, 0.6),
    ("FLUENCY", "Fluency (Judge)", "Judge rating of grammar and readability",
     "LLM_AS_JUDGE", False, False, True, 1.0, 0.6),
    ("TOXICITY", "Toxicity Detection", "Judge rating of safety; higher is safer",
     "LLM_AS_JUDGE", False, False, True, 1.0, 0.8),
    ("ANSWER_CORRECTNESS", "Answer Correctness (Judge)", "Judge rating of factual correctness",
     "LLM_AS_JUDGE", True, False, True, 1.0, 0.7),
    ("CUSTOM_JUDGE", "Custom Judge Metric", "Judge rating from a user-defined prompt template",
     "LLM_AS_JUDGE", False, False, True, 1.0, None),
    ("LATENCY", "Response Latency", "Time the LLM took to respond, in milliseconds",
     "PERFORMANCE", False, False, False, 0.5, None),
    ("TOKEN_COUNT", "Token Count", "Input plus output tokens",
     "PERFORMANCE", False, False, False, 0.5, None),
    ("COST", "API Cost", "Estimated API cost in USD",
     "PERFORMANCE", False, False, False, 0.5, None),
]
METRIC_CODES = tuple(entry[0] for entry in METRIC_CATALOGUE)

# Performance metrics score 1.0 up to these targets (ms, tokens, USD) and
# decay as target / value above them. rawScore carries the value itself.
PERFORMANCE_TARGETS = {"LATENCY": 2000.0, "TOKEN_COUNT": 1000.0, "COST": 0.01}

DEFAULT_QUALITY = 0.8
# Half-width of the per-case deviation around the mean score.
SCORE_SPREAD = 0.1

UUID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
MISSING = object()


# ---------------------------------------------------------------------------
# Timestamps and JSON
# ---------------------------------------------------------------------------

_FRACTION_DIGIT_CYCLE = (3, 6, 9, 0)
_fraction_counter = itertools.count()
_ISO_PATTERN = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


class Instant:
    """UTC time with a fixed count of fractional-second digits (0, 3, 6 or 9).

    Jackson writes a Java Instant with as many digit groups as it needs, so a
    client must parse all four forms. New instants take the next count of a
    cycle so every form shows up in ordinary traffic.
    """

    __slots__ = ("moment", "digits", "nanos")

    def __init__(self, moment: datetime, digits: Optional[int] = None, nanos: Optional[int] = None):
        self.moment = moment.astimezone(timezone.utc)
        if digits is None:
            digits = _FRACTION_DIGIT_CYCLE[next(_fraction_counter) % len(_FRACTION_DIGIT_CYCLE)]
        self.digits = digits
        # Digits 7-9 of the fraction, which datetime cannot store.
        self.nanos = (moment.microsecond * 7 + 123) % 1000 if nanos is None else nanos

    @classmethod
    def now(cls) -> "Instant":
        return cls(datetime.now(timezone.utc))

    @classmethod
    def parse(cls, text: str) -> "Instant":
        """Parse an ISO-8601 timestamp with an offset, raising ValueError if it is invalid."""
        match = _ISO_PATTERN.match(text)
        if match is None:
            raise ValueError(f"invalid ISO-8601 timestamp {text!r}, expected e.g. 2026-11-30T10:00:00Z")
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        fraction = fraction or ""
        micros = int((fraction + "000000")[:6])
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          micros, tzinfo=timezone.utc)
        if offset != "Z":
            sign = 1 if offset[0] == "+" else -1
            moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        digits = 0 if not fraction else min(9, 3 * math.ceil(len(fraction) / 3))
        return cls(moment, digits, int((fraction + "000000000")[6:9]))

    def plus(self, seconds: float) -> "Instant":
        return Instant(self.moment + timedelta(seconds=seconds))

    def iso(self) -> str:
        base = self.moment.strftime("%Y-%m-%dT%H:%M:%S")
        micros = self.moment.microsecond
        if self.digits == 0:
            return base + "Z"
        if self.digits == 3:
            return f"{base}.{micros // 1000:03d}Z"
        if self.digits == 6:
            return f"{base}.{micros:06d}Z"
        return f"{base}.{micros:06d}{self.nanos:03d}Z"


def fixed_instant(text: str) -> Instant:
    return Instant.parse(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, Instant):
        return value.iso()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def encode_json(value: Any) -> bytes:
    """Encode like Jackson's defaults: compact, UTF-8, non-ASCII unescaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      default=_json_default).encode("utf-8")


# ---------------------------------------------------------------------------
# Errors and responses
# ---------------------------------------------------------------------------


class ApiError(Exception):
    """Error response in the real server's error shape."""

    def __init__(self, status: int, error_code: str, message: str, data: Any = MISSING,
                 note: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.data = data
        self.note = note


class UnauthorizedError(Exception):
    """No valid Bearer token: the security entry point sends its fixed 401 body."""


def internal_error(reason: str) -> ApiError:
    """Build the catch-all 500. The reason goes to the log and the request log, not to the client."""
    return ApiError(500, "INTERNAL_ERROR", INTERNAL_ERROR_MESSAGE, note=reason)


def validation_error(errors: Dict[str, str]) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", "Validation failed", data=errors)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: List[Tuple[str, str]] = field(default_factory=list)
    note: Optional[str] = None


def json_response(status: int, payload: Any) -> Response:
    return Response(status, encode_json(payload))


def wrapped_response(status: int, message: str, data: Any = MISSING) -> Response:
    """Build the APIResponse envelope. Cancel and delete responses omit the data key."""
    envelope: Dict[str, Any] = {"success": True, "statusCode": status, "message": message}
    if data is not MISSING:
        envelope["data"] = data
    envelope["timestamp"] = Instant.now()
    return json_response(status, envelope)


def error_response(error: ApiError) -> Response:
    envelope: Dict[str, Any] = {
        "success": False,
        "statusCode": error.status,
        "errorCode": error.error_code,
        "error": error.message,
        "timestamp": Instant.now(),
    }
    if error.data is not MISSING:
        envelope["data"] = error.data
    response = json_response(error.status, envelope)
    response.note = error.note
    return response


# ---------------------------------------------------------------------------
# Scenario
# ---------------------------------------------------------------------------


class ScenarioError(ValueError):
    """Invalid scenario JSON. The message names the offending key."""


@dataclass
class QualitySpec:
    """Mean score per metric code, with "*" (or a plain number) as the default."""

    default: Optional[float] = None
    per_metric: Dict[str, float] = field(default_factory=dict)


@dataclass
class Outcome:
    """Final status, timing and result shape of a run, from a `runs` rule or a seed run."""

    final_status: str = "COMPLETED"
    polls_before_final: int = 0
    complete_after_seconds: Optional[float] = None
    show_running: bool = False
    error_message: Optional[str] = None
    overall_score: Any = MISSING
    metric_summaries: bool = False
    results: str = "normal"
    quality: Optional[QualitySpec] = None
    null_score_cases: int = 0
    skipped_cases: int = 0
    failed_cases: int = 0
    case_outputs: Optional[List[str]] = None


@dataclass
class RunRule:
    match_name: Optional[str]
    match_dataset: Optional[str]
    match_endpoint: Optional[str]
    outcome: Outcome
    source: Dict[str, Any]


@dataclass
class Fault:
    method: Optional[str]
    path_pattern: "re.Pattern[str]"
    after: int
    times: Optional[int]
    kind: str
    status: int
    retry_after: Any
    delay_seconds: float
    message: Optional[str]
    seen: int = 0
    applied: int = 0


@dataclass
class Scenario:
    source: Dict[str, Any]
    cases: Dict[str, int]
    default_judge: bool
    page_shape: str
    results_page_size_cap: Optional[int]
    token_ttl_seconds: int
    expire_tokens_after_requests: Optional[int]
    revoke_refresh_tokens: bool
    quality: Optional[QualitySpec]
    runs: List[RunRule]
    seed_runs: List[Dict[str, Any]]
    faults: List[Fault]
    datasets: List[Dict[str, Any]]
    endpoints: List[Dict[str, Any]]
    project_access: Dict[str, str]


SCENARIO_KEYS = {
    "cases", "default_judge", "page_shape", "results_page_size_cap", "auth", "runs",
    "seed_runs", "faults", "quality", "datasets", "endpoints", "project_access",
}
AUTH_KEYS = {"token_ttl_seconds", "expire_tokens_after_requests", "revoke_refresh_tokens"}
OUTCOME_KEYS = {
    "error_message", "overall_score", "metric_summaries", "results", "quality",
    "null_score_cases", "skipped_cases", "failed_cases", "case_outputs",
}
RULE_KEYS = OUTCOME_KEYS | {
    "match", "final_status", "polls_before_final", "complete_after_seconds", "show_running",
}
MATCH_KEYS = {"name", "dataset", "endpoint"}
SEED_RUN_KEYS = OUTCOME_KEYS | {
    "name", "project", "dataset", "endpoint", "judge", "status", "metrics",
    "trigger_reference", "trigger_type", "evaluation_mode", "created_at", "completed_at", "id",
}
FAULT_KEYS = {
    "method", "path_regex", "after", "times", "kind", "status", "retry_after",
    "delay_seconds", "message",
}
FAULT_KINDS = ("status", "html", "malformed_json", "delay", "reset", "success_false")
DATASET_KEYS = {"name", "id", "project", "cases", "description", "active"}
ENDPOINT_KEYS = {
    "name", "id", "project", "llm_type", "provider_type", "model_name", "is_default", "active",
}


def _check_keys(value: Any, allowed: set, where: str) -> Dict[str, Any]:
    """Return value as a dict, or raise ScenarioError on another type or an unknown key.

    Keys that start with "_" are ignored, so a scenario can carry comments.
    """
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a JSON object, got {type(value).__name__}")
    unknown = sorted(key for key in value if key not in allowed and not key.startswith("_"))
    if unknown:
        raise ScenarioError(f"{where} has unknown key(s) {unknown}. Allowed keys: {sorted(allowed)}")
    return value


def _expect_int(value: Any, where: str, minimum: int = 0, nullable: bool = False) -> Optional[int]:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "an integer or null" if nullable else "an integer"
        raise ScenarioError(f"{where} must be {kind} >= {minimum}, got {value!r}")
    return value


def _expect_number(value: Any, where: str, minimum: float = 0.0, maximum: Optional[float] = None,
                   nullable: bool = False) -> Optional[float]:
    if value is None and nullable:
        return None
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    if valid and value >= minimum and (maximum is None or value <= maximum):
        return float(value)
    bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
    raise ScenarioError(f"{where} must be a number {bounds}, got {value!r}")


def _expect_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{where} must be true or false, got {value!r}")
    return value


def _expect_string(value: Any, where: str, nullable: bool = False) -> Optional[str]:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _expect_choice(value: Any, choices: Tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ScenarioError(f"{where} must be one of {list(choices)}, got {value!r}")
    return value


def _parse_quality(value: Any, where: str) -> Optional[QualitySpec]:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return QualitySpec(default=_expect_number(value, where, 0.0, 1.0))
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a number or an object of metric code to number")
    spec = QualitySpec()
    for code, mean in value.items():
        if code == "*":
            spec.default = _expect_number(mean, f"{where}.*", 0.0, 1.0)
        elif code in METRIC_CODES:
            spec.per_metric[code] = _expect_number(mean, f"{where}.{code}", 0.0, 1.0)
        else:
            raise ScenarioError(f"{where} has unknown metric code {code!r}. Use \"*\" or one of {list(METRIC_CODES)}")
    return spec


def _parse_outcome(source: Dict[str, Any], where: str, outcome: Outcome) -> Outcome:
    """Fill the result-shaping keys shared by `runs` rules and `seed_runs`."""
    if "error_message" in source:
        outcome.error_message = _expect_string(source["error_message"], f"{where}.error_message",
                                               nullable=True)
    if "overall_score" in source:
        outcome.overall_score = _expect_number(source["overall_score"], f"{where}.overall_score",
                                               0.0, 1.0, nullable=True)
    if "metric_summaries" in source:
        outcome.metric_summaries = _expect_bool(source["metric_summaries"], f"{where}.metric_summaries")
    if "results" in source:
        outcome.results = _expect_choice(source["results"], ("normal", "empty", "endless"),
                                         f"{where}.results")
    outcome.quality = _parse_quality(source.get("quality"), f"{where}.quality")
    for key in ("null_score_cases", "skipped_cases", "failed_cases"):
        if key in source:
            setattr(outcome, key, _expect_int(source[key], f"{where}.{key}"))
    outputs = source.get("case_outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not outputs or not all(isinstance(x, str) for x in outputs):
            raise ScenarioError(f"{where}.case_outputs must be a non-empty list of strings or null")
        outcome.case_outputs = list(outputs)
    return outcome


def _parse_rule(source: Any, where: str) -> RunRule:
    source = _check_keys(source, RULE_KEYS, where)
    match = _check_keys(source.get("match") or {}, MATCH_KEYS, f"{where}.match")
    outcome = Outcome()
    if "final_status" in source:
        outcome.final_status = _expect_string(source["final_status"], f"{where}.final_status")
    if "polls_before_final" in source:
        outcome.polls_before_final = _expect_int(source["polls_before_final"],
                                                 f"{where}.polls_before_final")
    outcome.complete_after_seconds = _expect_number(
        source.get("complete_after_seconds"), f"{where}.complete_after_seconds", nullable=True)
    if "show_running" in source:
        outcome.show_running = _expect_bool(source["show_running"], f"{where}.show_running")
    _parse_outcome(source, where, outcome)
    return RunRule(
        match_name=_expect_string(match.get("name"), f"{where}.match.name", nullable=True),
        match_dataset=_expect_string(match.get("dataset"), f"{where}.match.dataset", nullable=True),
        match_endpoint=_expect_string(match.get("endpoint"), f"{where}.match.endpoint", nullable=True),
        outcome=outcome,
        source=source,
    )


def _parse_fault(source: Any, where: str) -> Fault:
    source = _check_keys(source, FAULT_KEYS, where)
    kind = _expect_choice(source.get("kind"), FAULT_KINDS, f"{where}.kind")
    pattern_text = source.get("path_regex", "")
    if not isinstance(pattern_text, str):
        raise ScenarioError(f"{where}.path_regex must be a string")
    try:
        pattern = re.compile(pattern_text)
    except re.error as exc:
        raise ScenarioError(f"{where}.path_regex is not a valid regular expression: {exc}") from None
    method = _expect_string(source.get("method"), f"{where}.method", nullable=True)
    default_status = 502 if kind == "html" else 503
    retry_after = source.get("retry_after")
    if retry_after is not None and not isinstance(retry_after, (int, str)):
        raise ScenarioError(f"{where}.retry_after must be seconds (integer) or an HTTP date string")
    return Fault(
        method=method.upper() if method else None,
        path_pattern=pattern,
        after=_expect_int(source.get("after", 0), f"{where}.after"),
        times=_expect_int(source.get("times"), f"{where}.times", minimum=1, nullable=True),
        kind=kind,
        status=_expect_int(source.get("status", default_status), f"{where}.status", minimum=100),
        retry_after=retry_after,
        delay_seconds=_expect_number(source.get("delay_seconds", 0.5), f"{where}.delay_seconds"),
        message=_expect_string(source.get("message"), f"{where}.message", nullable=True),
    )


def _parse_list(value: Any, where: str) -> List[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ScenarioError(f"{where} must be a list")
    return value


def parse_scenario(source: Any) -> Scenario:
    """Validate scenario JSON and return it with defaults filled in.

    References to datasets, endpoints and projects are resolved later, when the
    catalogue and the seed runs are built from the scenario.
    """
    if source is None:
        source = {}
    source = _check_keys(source, SCENARIO_KEYS, "scenario")
    auth = _check_keys(source.get("auth") or {}, AUTH_KEYS, "auth")

    cases = source.get("cases") or {}
    if not isinstance(cases, dict):
        raise ScenarioError("cases must be an object of dataset name or id to case count")
    for dataset_ref, count in cases.items():
        _expect_int(count, f"cases.{dataset_ref}")

    access = source.get("project_access") or {}
    if not isinstance(access, dict):
        raise ScenarioError("project_access must be an object of project name or id to access level")
    for project_ref, level in access.items():
        _expect_choice(level, ACCESS_LEVELS, f"project_access.{project_ref}")

    seed_runs = _parse_list(source.get("seed_runs"), "seed_runs")
    for index, seed in enumerate(seed_runs):
        _check_keys(seed, SEED_RUN_KEYS, f"seed_runs[{index}]")
    datasets = _parse_list(source.get("datasets"), "datasets")
    for index, entry in enumerate(datasets):
        _check_keys(entry, DATASET_KEYS, f"datasets[{index}]")
    endpoints = _parse_list(source.get("endpoints"), "endpoints")
    for index, entry in enumerate(endpoints):
        _check_keys(entry, ENDPOINT_KEYS, f"endpoints[{index}]")

    rules = _parse_list(source.get("runs"), "runs")
    faults = _parse_list(source.get("faults"), "faults")
    return Scenario(
        source=source,
        cases=dict(cases),
        default_judge=_expect_bool(source.get("default_judge", True), "default_judge"),
        page_shape=_expect_choice(source.get("page_shape", "direct"), ("direct", "via_dto"),
                                  "page_shape"),
        results_page_size_cap=_expect_int(source.get("results_page_size_cap"),
                                          "results_page_size_cap", minimum=1, nullable=True),
        token_ttl_seconds=_expect_int(auth.get("token_ttl_seconds", LOGIN_EXPIRES_IN),
                                      "auth.token_ttl_seconds"),
        expire_tokens_after_requests=_expect_int(auth.get("expire_tokens_after_requests"),
                                                 "auth.expire_tokens_after_requests",
                                                 minimum=1, nullable=True),
        revoke_refresh_tokens=_expect_bool(auth.get("revoke_refresh_tokens", False),
                                           "auth.revoke_refresh_tokens"),
        quality=_parse_quality(source.get("quality"), "quality"),
        runs=[_parse_rule(rule, f"runs[{index}]") for index, rule in enumerate(rules)],
        seed_runs=seed_runs,
        faults=[_parse_fault(fault, f"faults[{index}]") for index, fault in enumerate(faults)],
        datasets=datasets,
        endpoints=endpoints,
        project_access=dict(access),
    )


# ---------------------------------------------------------------------------
# Catalogue: projects, datasets, endpoints, metrics
# ---------------------------------------------------------------------------


@dataclass
class Project:
    id: str
    name: str
    description: str
    created_at: Instant
    access_level: str


@dataclass
class Dataset:
    id: str
    project_id: str
    name: str
    description: str
    case_count: int
    active: bool
    created_at: Instant
    updated_at: Instant


@dataclass
class Endpoint:
    id: str
    project_id: str
    name: str
    provider_type: str
    model_name: str
    llm_type: str
    active: bool
    is_default: bool
    created_at: Instant


def derived_id(*parts: Any) -> str:
    return str(uuid.uuid5(FAKE_NAMESPACE, "|".join(str(part) for part in parts)))


def _build_metrics() -> List[Dict[str, Any]]:
    created_at = fixed_instant("2026-01-01T00:00:00.000Z")
    metrics = []
    for (code, display_name, description, category, ground_truth, context, judge,
         weight, threshold) in METRIC_CATALOGUE:
        metrics.append({
            "id": derived_id("metric", code),
            "code": code,
            "displayName": display_name,
            "description": description,
            "category": category,
            "requiresGroundTruth": ground_truth,
            "requiresContext": context,
            "requiresJudgeLlm": judge,
            "defaultWeight": weight,
            "defaultThreshold": threshold,
            "isSystem": True,
            "isActive": True,
            "createdAt": created_at,
        })
    return metrics


METRICS = _build_metrics()
METRICS_BY_ID = {metric["id"]: metric for metric in METRICS}
METRICS_BY_CODE = {metric["code"]: metric for metric in METRICS}


class Catalogue:
    """Projects, datasets and LLM endpoints built from a scenario."""

    def __init__(self, scenario: Scenario):
        self.projects: Dict[str, Project] = {}
        self.datasets: Dict[str, Dataset] = {}
        self.endpoints: Dict[str, Endpoint] = {}
        self._add_seed_entities(scenario)
        for index, entry in enumerate(scenario.datasets):
            self._add_scenario_dataset(entry, f"datasets[{index}]")
        for index, entry in enumerate(scenario.endpoints):
            self._add_scenario_endpoint(entry, f"endpoints[{index}]")
        for dataset_ref, count in scenario.cases.items():
            self.find_dataset(dataset_ref, f"cases.{dataset_ref}").case_count = count
        for project_ref, level in scenario.project_access.items():
            self.find_project(project_ref, f"project_access.{project_ref}").access_level = level

    def _add_seed_entities(self, scenario: Scenario) -> None:
        for project in (
            Project(DEMO_PROJECT_ID, "demo", "Demo project for llmops-ci",
                    fixed_instant("2026-01-05T09:00:00.123Z"), "ADMIN"),
            # READ access lets tests see a 403 on start, cancel and delete.
            Project(OTHER_PROJECT_ID, "other", "Second project with read-only access",
                    fixed_instant("2026-01-06T09:00:00.654321Z"), "READ"),
        ):
            self.projects[project.id] = project
        for dataset in (
            Dataset(GOLDEN_QA_DATASET_ID, DEMO_PROJECT_ID, "golden-qa",
                    "Curated question-answer pairs", 20, True,
                    fixed_instant("2026-01-10T08:00:00.100Z"),
                    fixed_instant("2026-02-01T12:30:00.250000Z")),
            Dataset(EDGE_CASES_DATASET_ID, DEMO_PROJECT_ID, "edge-cases",
                    "Adversarial and unusual inputs", 12, True,
                    fixed_instant("2026-01-11T08:00:00Z"),
                    fixed_instant("2026-02-02T12:30:00.123456789Z")),
        ):
            self.datasets[dataset.id] = dataset
        for endpoint in (
            Endpoint(GPT4O_PROD_ENDPOINT_ID, DEMO_PROJECT_ID, "gpt-4o-prod", "OPENAI", "gpt-4o",
                     "CLIENT", True, False, fixed_instant("2026-01-12T08:00:00.500Z")),
            Endpoint(LLAMA_CANARY_ENDPOINT_ID, DEMO_PROJECT_ID, "llama-3-canary", "CUSTOM",
                     "llama-3-70b-instruct", "CLIENT", True, False,
                     fixed_instant("2026-01-13T08:00:00.000001Z")),
            Endpoint(GPT4O_JUDGE_ENDPOINT_ID, DEMO_PROJECT_ID, "gpt-4o-judge", "OPENAI", "gpt-4o",
                     "JUDGE", True, scenario.default_judge, fixed_instant("2026-01-14T08:00:00Z")),
        ):
            self.endpoints[endpoint.id] = endpoint

    def _entity_id(self, entry: Dict[str, Any], kind: str, name: str, where: str) -> str:
        if "id" not in entry:
            return derived_id(kind, name)
        entity_id = _expect_string(entry["id"], f"{where}.id")
        if not UUID_PATTERN.match(entity_id):
            raise ScenarioError(f"{where}.id must be a UUID, got {entity_id!r}")
        return entity_id.lower()

    def _add_scenario_dataset(self, entry: Dict[str, Any], where: str) -> None:
        name = _expect_string(entry.get("name"), f"{where}.name")
        project = self.find_project(entry.get("project", "demo"), f"{where}.project")
        now = Instant.now()
        dataset = Dataset(
            id=self._entity_id(entry, "dataset", name, where),
            project_id=project.id,
            name=name,
            description=entry.get("description") or f"Scenario dataset {name}",
            case_count=_expect_int(entry.get("cases", 10), f"{where}.cases"),
            active=_expect_bool(entry.get("active", True), f"{where}.active"),
            created_at=now,
            updated_at=now,
        )
        self.datasets[dataset.id] = dataset

    def _add_scenario_endpoint(self, entry: Dict[str, Any], where: str) -> None:
        name = _expect_string(entry.get("name"), f"{where}.name")
        project = self.find_project(entry.get("project", "demo"), f"{where}.project")
        endpoint = Endpoint(
            id=self._entity_id(entry, "endpoint", name, where),
            project_id=project.id,
            name=name,
            provider_type=_expect_choice(entry.get("provider_type", "OPENAI"), PROVIDER_TYPES,
                                         f"{where}.provider_type"),
            model_name=_expect_string(entry.get("model_name", "gpt-4o-mini"), f"{where}.model_name"),
            llm_type=_expect_choice(entry.get("llm_type", "CLIENT"), LLM_TYPES, f"{where}.llm_type"),
            active=_expect_bool(entry.get("active", True), f"{where}.active"),
            is_default=_expect_bool(entry.get("is_default", False), f"{where}.is_default"),
            created_at=Instant.now(),
        )
        self.endpoints[endpoint.id] = endpoint

    @staticmethod
    def _find(entities: Dict[str, Any], reference: Any, kind: str, where: str) -> Any:
        if isinstance(reference, str):
            if reference.lower() in entities:
                return entities[reference.lower()]
            for entity in entities.values():
                if entity.name == reference:
                    return entity
        raise ScenarioError(f"{where}: {kind} {reference!r} not found. Refer to it by name or id.")

    def find_project(self, reference: Any, where: str) -> Project:
        return self._find(self.projects, reference, "project", where)

    def find_dataset(self, reference: Any, where: str) -> Dataset:
        return self._find(self.datasets, reference, "dataset", where)

    def find_endpoint(self, reference: Any, where: str) -> Endpoint:
        return self._find(self.endpoints, reference, "LLM endpoint", where)

    def default_judge(self, project_id: str) -> Optional[Endpoint]:
        for endpoint in self.endpoints.values():
            if endpoint.project_id == project_id and endpoint.llm_type == "JUDGE" and endpoint.is_default:
                return endpoint
        return None


# ---------------------------------------------------------------------------
# Runs and deterministic scores
# ---------------------------------------------------------------------------


@dataclass
class RunMetric:
    metric: Dict[str, Any]
    weight: float
    pass_threshold: Optional[float]
    custom_prompt: Optional[str]


@dataclass
class Run:
    id: str
    project: Project
    dataset: Dataset
    name: str
    run_number: int
    mode: str
    target: Optional[Endpoint]
    judge: Optional[Endpoint]
    metrics: List[RunMetric]
    trigger_type: str
    trigger_reference: Optional[str]
    created_at: Instant
    total_cases: int
    outcome: Outcome
    quality_specs: Tuple[Optional[QualitySpec], ...]
    seeded: bool = False
    rule_source: Optional[Dict[str, Any]] = None
    request_body: Any = None
    status: str = "PENDING"
    started_at: Optional[Instant] = None
    completed_at: Optional[Instant] = None
    completed_cases: int = 0
    failed_cases: int = 0
    overall_score: Optional[float] = None
    metric_summaries: Optional[Dict[str, Any]] = None
    total_tokens: int = 0
    total_cost: float = 0
    error_message: Optional[str] = None
    polls: int = 0
    # True once the scripted lifecycle no longer changes the status.
    settled: bool = False
    case_results: List[Dict[str, Any]] = field(default_factory=list)


def deterministic_unit(*parts: Any) -> float:
    """Map the parts to a fixed pseudo-random number in [0, 1)."""
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def resolve_quality(code: str, specs: Tuple[Optional[QualitySpec], ...]) -> float:
    """Return the mean score for a metric: the run rule first, then the scenario, then 0.8."""
    for spec in specs:
        if spec is None:
            continue
        if code in spec.per_metric:
            return spec.per_metric[code]
        if spec.default is not None:
            return spec.default
    return DEFAULT_QUALITY


def case_score(dataset_id: str, index: int, code: str, mean: float) -> float:
    deviation = (deterministic_unit(dataset_id, index, code) * 2 - 1) * SCORE_SPREAD
    return round(min(1.0, max(0.0, mean + deviation)), 4)


def performance_raw_value(code: str, score: float, dataset_id: str, index: int) -> Union[int, float]:
    """Invert the decay: a score of 1.0 maps to a value within target, s < 1 to target / s."""
    target = PERFORMANCE_TARGETS[code]
    if score >= 1.0:
        raw = target * (0.4 + 0.6 * deterministic_unit(dataset_id, index, code, "within-target"))
    else:
        raw = target / max(score, 0.01)
    if code == "COST":
        return round(raw, 6)
    return int(round(raw))


def build_case_results(run: Run) -> List[Dict[str, Any]]:
    """Compute the per-case result DTOs of a run. The same inputs always give the same scores."""
    outcome = run.outcome
    count = run.total_cases
    skipped_start = max(0, count - outcome.skipped_cases)
    failed_start = max(0, skipped_start - outcome.failed_cases)
    null_score_end = min(failed_start, outcome.null_score_cases)
    dataset_id = run.dataset.id
    live = run.mode == "LIVE_GENERATION"
    results = []
    for index in range(count):
        test_case = generated_test_case(run.dataset, index)
        if outcome.case_outputs:
            output = outcome.case_outputs[index % len(outcome.case_outputs)]
        else:
            output = test_case["llmOutput"]

        def quality_score(code: str) -> float:
            return case_score(dataset_id, index, code, resolve_quality(code, run.quality_specs))

        latency_ms = performance_raw_value("LATENCY", quality_score("LATENCY"), dataset_id, index)
        tokens = performance_raw_value("TOKEN_COUNT", quality_score("TOKEN_COUNT"), dataset_id, index)
        cost = performance_raw_value("COST", quality_score("COST"), dataset_id, index)
        input_tokens = int(tokens * 0.4)
        result = {
            "id": derived_id("result", run.id, index),
            "testCaseId": test_case["id"],
            "question": test_case["question"],
            "groundTruth": test_case["groundTruth"],
            "llmOutput": None if live else output,
            "generatedOutput": output if live else None,
            "status": "COMPLETED",
            "llmLatencyMs": latency_ms,
            "processingTimeMs": latency_ms + 40 + index,
            "inputTokens": input_tokens,
            "outputTokens": tokens - input_tokens,
            "errorMessage": None,
            "createdAt": run.created_at.plus(0.001 * (index + 1)),
            "scores": [],
            # Internal field, removed before the DTO is sent.
            "_cost": cost,
        }
        if index >= skipped_start:
            result.update(status="SKIPPED", llmOutput=None, generatedOutput=None,
                          llmLatencyMs=None, processingTimeMs=None, inputTokens=None,
                          outputTokens=None, _cost=0,
                          errorMessage="Skipped: the test case has no LLM output")
        elif index >= failed_start:
            result.update(status="FAILED", llmOutput=None, generatedOutput=None,
                          llmLatencyMs=None, inputTokens=None, outputTokens=None, _cost=0,
                          errorMessage="LLM request failed: read timed out after 30000 ms")
        else:
            result["scores"] = [
                _score_entry(run_metric, dataset_id, index, quality_score, index < null_score_end)
                for run_metric in run.metrics
            ]
        results.append(result)
    return results


def _score_entry(run_metric: RunMetric, dataset_id: str, index: int,
                 quality_score: Callable[[str], float], null_score: bool) -> Dict[str, Any]:
    metric = run_metric.metric
    code = metric["code"]
    entry = {
        "metricCode": code,
        "metricName": metric["displayName"],
        "score": None,
        "rawScore": None,
        "passed": None,
        "details": {},
        "judgeReasoning": None,
        "errorMessage": None,
    }
    if null_score:
        entry["errorMessage"] = f"{code} could not be computed for this test case"
        return entry
    score = quality_score(code)
    entry["score"] = score
    if code in PERFORMANCE_TARGETS:
        entry["rawScore"] = performance_raw_value(code, score, dataset_id, index)
    else:
        entry["rawScore"] = score
    if run_metric.pass_threshold is not None:
        entry["passed"] = score >= run_metric.pass_threshold
    if metric["requiresJudgeLlm"]:
        entry["judgeReasoning"] = f"The answer rates {score:.2f} on {metric['displayName']}."
    return entry


def generated_test_case(dataset: Dataset, index: int) -> Dict[str, Any]:
    number = index + 1
    return {
        "id": derived_id("test-case", dataset.id, index),
        "question": f"Question {number} of {dataset.name}: what does item {number} describe?",
        "groundTruth": f"Item {number} describes reference fact {number}.",
        "context": f"Reference document {number} for {dataset.name}.",
        "llmOutput": f"Item {number} describes fact {number}.",
    }


def _scored_values(run: Run, code: str) -> List[Dict[str, Any]]:
    entries = []
    for result in run.case_results:
        for entry in result["scores"]:
            if entry["metricCode"] == code and entry["score"] is not None:
                entries.append(entry)
    return entries


def compute_overall_score(run: Run) -> Optional[float]:
    """Return the weighted mean of the per-metric mean scores, or None if no metric has a score."""
    weighted_sum = 0.0
    weight_total = 0.0
    means = []
    for run_metric in run.metrics:
        entries = _scored_values(run, run_metric.metric["code"])
        if not entries:
            continue
        mean = sum(entry["score"] for entry in entries) / len(entries)
        means.append(mean)
        weighted_sum += run_metric.weight * mean
        weight_total += run_metric.weight
    if not means:
        return None
    if weight_total == 0:
        return round(sum(means) / len(means), 4)
    return round(weighted_sum / weight_total, 4)


def compute_metric_summaries(run: Run) -> Dict[str, Any]:
    summaries = {}
    for run_metric in run.metrics:
        metric = run_metric.metric
        entries = _scored_values(run, metric["code"])
        scores = [entry["score"] for entry in entries]
        judged = [entry["passed"] for entry in entries if entry["passed"] is not None]
        summary = {
            "metricCode": metric["code"],
            "metricName": metric["displayName"],
            "averageScore": None,
            "minScore": None,
            "maxScore": None,
            "stdDev": None,
            "passRate": round(sum(judged) / len(judged), 4) if judged else None,
            "totalEvaluated": len(scores),
        }
        if scores:
            mean = sum(scores) / len(scores)
            variance = sum((score - mean) ** 2 for score in scores) / len(scores)
            summary.update(averageScore=round(mean, 4), minScore=min(scores),
                           maxScore=max(scores), stdDev=round(math.sqrt(variance), 4))
        summaries[metric["code"]] = summary
    return summaries


# ---------------------------------------------------------------------------
# DTOs
# ---------------------------------------------------------------------------


def project_dto(project: Project) -> Dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "status": "ACTIVE",
        "teamCount": 1,
        "memberCount": 3,
        "createdAt": project.created_at,
        "myAccessLevel": project.access_level,
    }


def dataset_dto(dataset: Dataset) -> Dict[str, Any]:
    return {
        "id": dataset.id,
        "projectId": dataset.project_id,
        "name": dataset.name,
        "description": dataset.description,
        "isActive": dataset.active,
        "testCaseCount": dataset.case_count,
        "createdByName": USER_FULL_NAME,
        "createdAt": dataset.created_at,
        "updatedAt": dataset.updated_at,
    }


def endpoint_dto(endpoint: Endpoint, project: Project) -> Dict[str, Any]:
    return {
        "id": endpoint.id,
        "projectId": endpoint.project_id,
        "projectName": project.name,
        "name": endpoint.name,
        "providerType": endpoint.provider_type,
        "modelName": endpoint.model_name,
        "llmType": endpoint.llm_type,
        "isActive": endpoint.active,
        "isDefault": endpoint.is_default,
        "createdAt": endpoint.created_at,
    }


def run_dto(run: Run, include_metrics: bool) -> Dict[str, Any]:
    """Build EvaluationRunResponse. Its metrics stay null in start and retrigger responses."""
    metrics = None
    if include_metrics:
        metrics = [{
            "metricId": run_metric.metric["id"],
            "metricCode": run_metric.metric["code"],
            "metricName": run_metric.metric["displayName"],
            "category": run_metric.metric["category"],
            "weight": run_metric.weight,
            "passThreshold": run_metric.pass_threshold,
            "hasCustomPrompt": run_metric.custom_prompt is not None,
        } for run_metric in run.metrics]
    return {
        "id": run.id,
        "projectId": run.project.id,
        "projectName": run.project.name,
        "datasetId": run.dataset.id,
        "datasetName": run.dataset.name,
        "name": run.name,
        "runNumber": run.run_number,
        "evaluationMode": run.mode,
        "targetLlmEndpointId": run.target.id if run.target else None,
        "targetLlmEndpointName": run.target.name if run.target else None,
        "judgeLlmEndpointId": run.judge.id if run.judge else None,
        "judgeLlmEndpointName": run.judge.name if run.judge else None,
        "status": run.status,
        "totalTestCases": run.total_cases,
        "completedTestCases": run.completed_cases,
        "failedTestCases": run.failed_cases,
        "overallScore": run.overall_score,
        "metricSummaries": run.metric_summaries,
        "totalTokens": run.total_tokens,
        "totalCost": run.total_cost,
        "triggerType": run.trigger_type,
        "triggerReference": run.trigger_reference,
        "errorMessage": run.error_message,
        "createdById": USER_ID,
        "createdByName": USER_FULL_NAME,
        "createdAt": run.created_at,
        "startedAt": run.started_at,
        "completedAt": run.completed_at,
        "metrics": metrics,
    }


def run_summary_dto(run: Run) -> Dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "runNumber": run.run_number,
        "datasetName": run.dataset.name,
        "status": run.status,
        "totalTestCases": run.total_cases,
        "completedTestCases": run.completed_cases,
        "overallScore": run.overall_score,
        "createdAt": run.created_at,
        "completedAt": run.completed_at,
    }


def result_dto(result: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in result.items() if not key.startswith("_")}


# ---------------------------------------------------------------------------
# Paging and sorting (Spring Data Pageable semantics)
# ---------------------------------------------------------------------------


@dataclass
class PageRequest:
    page: int
    size: int
    orders: List[Tuple[str, bool]]  # (property, descending)


def _parse_bounded_int(text: str, upper: int) -> int:
    """Parse like Spring's resolver: invalid text gives 0, the value is clamped to [0, upper]."""
    try:
        value = int(text)
    except ValueError:
        return 0
    return min(max(value, 0), upper)


def parse_page_request(query: Dict[str, List[str]], default_size: int,
                       default_orders: List[Tuple[str, bool]]) -> PageRequest:
    page = _parse_bounded_int(query["page"][0], 2 ** 31 - 1) if "page" in query else 0
    size = default_size
    if "size" in query:
        size = _parse_bounded_int(query["size"][0], MAX_PAGE_SIZE)
        if size < 1:
            size = default_size
    orders: List[Tuple[str, bool]] = []
    for value in query.get("sort", []):
        tokens = [token.strip() for token in value.split(",") if token.strip()]
        descending = False
        if tokens and tokens[-1].lower() in ("asc", "desc"):
            descending = tokens.pop().lower() == "desc"
        orders.extend((token, descending) for token in tokens)
    return PageRequest(page, size, orders or list(default_orders))


def _sort_key(value: Any) -> Any:
    if isinstance(value, Instant):
        return value.moment
    if isinstance(value, bool):
        return int(value)
    return value


def sort_items(items: List[Any], orders: List[Tuple[str, bool]],
               accessors: Dict[str, Callable[[Any], Any]]) -> List[Any]:
    """Sort like PostgreSQL: NULLs last when ascending and first when descending.

    Raises the catch-all 500 for an unknown property, as Spring Data's
    PropertyReferenceException does.
    """
    for prop, _ in orders:
        if prop not in accessors:
            raise internal_error(f"no property {prop!r} to sort by. Known properties: {sorted(accessors)}")
    result = list(items)
    for prop, descending in reversed(orders):
        getter = accessors[prop]

        def key(item: Any, getter: Callable[[Any], Any] = getter) -> Tuple[int, Any]:
            value = getter(item)
            return (1, 0) if value is None else (0, _sort_key(value))

        result.sort(key=key, reverse=descending)
    return result


def build_page(items: List[Any], request: PageRequest, shape: str,
               endless: bool = False) -> Dict[str, Any]:
    """Slice sorted items into a Page in the DIRECT (PageImpl) or VIA_DTO shape.

    An endless page repeats the items and always reports one more page.
    """
    size = request.size
    number = request.page
    if endless:
        content = [items[(number * size + i) % len(items)] for i in range(size)] if items else []
        total_pages = number + 2
        total = total_pages * size
    else:
        offset = number * size
        content = items[offset:offset + size]
        total = len(items)
        total_pages = math.ceil(total / size)
    if shape == "via_dto":
        return {
            "content": content,
            "page": {"size": size, "number": number, "totalElements": total,
                     "totalPages": total_pages},
        }
    sort = {"empty": not request.orders, "sorted": bool(request.orders),
            "unsorted": not request.orders}
    return {
        "content": content,
        "pageable": {"pageNumber": number, "pageSize": size, "sort": sort,
                     "offset": number * size, "paged": True, "unpaged": False},
        "last": number + 1 >= total_pages,
        "totalElements": total,
        "totalPages": total_pages,
        "size": size,
        "number": number,
        "sort": sort,
        "first": number == 0,
        "numberOfElements": len(content),
        "empty": not content,
    }


RUN_SORT_ACCESSORS: Dict[str, Callable[[Run], Any]] = {
    "id": lambda run: run.id,
    "name": lambda run: run.name,
    "runNumber": lambda run: run.run_number,
    "evaluationMode": lambda run: run.mode,
    "status": lambda run: run.status,
    "totalTestCases": lambda run: run.total_cases,
    "completedTestCases": lambda run: run.completed_cases,
    "failedTestCases": lambda run: run.failed_cases,
    "overallScore": lambda run: run.overall_score,
    "totalTokens": lambda run: run.total_tokens,
    "totalCost": lambda run: run.total_cost,
    "triggerType": lambda run: run.trigger_type,
    "triggerReference": lambda run: run.trigger_reference,
    "createdAt": lambda run: run.created_at,
    "startedAt": lambda run: run.started_at,
    "completedAt": lambda run: run.completed_at,
}
RESULT_SORT_ACCESSORS: Dict[str, Callable[[Dict[str, Any]], Any]] = {
    name: (lambda result, name=name: result[name])
    for name in ("id", "status", "llmLatencyMs", "processingTimeMs", "inputTokens",
                 "outputTokens", "errorMessage", "createdAt")
}
NAMED_SORT_ACCESSORS: Dict[str, Callable[[Any], Any]] = {
    "id": lambda entity: entity.id,
    "name": lambda entity: entity.name,
    "createdAt": lambda entity: entity.created_at,
}


# ---------------------------------------------------------------------------
# Request parsing helpers (Jackson and bean validation behaviour)
# ---------------------------------------------------------------------------


@dataclass
class ApiRequest:
    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Any
    body: bytes


def query_value(request: ApiRequest, name: str) -> Optional[str]:
    values = request.query.get(name)
    return values[0] if values else None


def query_bool(request: ApiRequest, name: str, default: bool) -> bool:
    value = query_value(request, name)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "on", "yes", "1"):
        return True
    if lowered in ("false", "off", "no", "0"):
        return False
    raise internal_error(f"query parameter {name}={value!r} is not a boolean")


def query_enum(request: ApiRequest, name: str, choices: Tuple[str, ...]) -> Optional[str]:
    value = query_value(request, name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise internal_error(f"query parameter {name}={value!r} is not one of {list(choices)}")
    return value


def path_uuid(text: str) -> str:
    if not UUID_PATTERN.match(text):
        raise internal_error(f"path segment {text!r} is not a UUID")
    return text.lower()


def read_json_body(request: ApiRequest, required: bool) -> Any:
    """Parse the body as Spring's @RequestBody does. Every failure becomes the catch-all 500."""
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if not request.body:
        if required:
            raise internal_error("required request body is missing")
        return None
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise internal_error(f"Content-Type {content_type or '(none)'!r} is not supported. Send application/json.")
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise internal_error(f"request body is not valid JSON: {exc}") from None


def coerce_text(value: Any, where: str) -> Optional[str]:
    """Coerce a JSON scalar to a string as Jackson does, and reject objects and arrays."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise internal_error(f"{where} must be a string, got {type(value).__name__}")


def coerce_uuid(value: Any, where: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if isinstance(value, str) and UUID_PATTERN.match(value):
        return value.lower()
    raise internal_error(f"{where} is not a UUID: {value!r}")


def coerce_number(value: Any, where: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool):
        raise internal_error(f"{where} must be a number, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise internal_error(f"{where} must be a number, got {value!r}")


def coerce_enum(body: Dict[str, Any], key: str, choices: Tuple[str, ...], default: str) -> Optional[str]:
    """Return the enum value, the default when absent, or None for an explicit null."""
    if key not in body:
        return default
    value = body[key]
    if value is None:
        return None
    if value not in choices:
        raise internal_error(f"{key} {value!r} is not one of {list(choices)}")
    return value


def utf16_length(text: str) -> int:
    """Return the length as Java's String.length() counts it."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class MetricConfig:
    metric_id: Optional[str]
    weight: Optional[float]
    pass_threshold: Optional[float]
    custom_prompt: Optional[str]


@dataclass
class StartRequest:
    name: Optional[str]
    dataset_id: Optional[str]
    mode: Optional[str]
    target_id: Optional[str]
    judge_id: Optional[str]
    metrics: Optional[List[Optional[MetricConfig]]]
    trigger_type: Optional[str]
    trigger_reference: Optional[str]


def parse_start_request(body: Any) -> StartRequest:
    """Deserialize StartEvaluationRequest. Any type error is the catch-all 500."""
    if not isinstance(body, dict):
        raise internal_error("request body is not a JSON object")
    metrics_value = body.get("metrics")
    metrics: Optional[List[Optional[MetricConfig]]] = None
    if metrics_value is not None:
        if not isinstance(metrics_value, list):
            raise internal_error("metrics must be a JSON array of objects")
        metrics = []
        for index, item in enumerate(metrics_value):
            where = f"metrics[{index}]"
            if item is None:
                metrics.append(None)
                continue
            if not isinstance(item, dict):
                raise internal_error(f"{where} must be an object with metricId, got {item!r}")
            metrics.append(MetricConfig(
                metric_id=coerce_uuid(item.get("metricId"), f"{where}.metricId"),
                weight=coerce_number(item.get("weight"), f"{where}.weight"),
                pass_threshold=coerce_number(item.get("passThreshold"), f"{where}.passThreshold"),
                custom_prompt=coerce_text(item.get("customPromptTemplate"),
                                          f"{where}.customPromptTemplate"),
            ))
    return StartRequest(
        name=coerce_text(body.get("name"), "name"),
        dataset_id=coerce_uuid(body.get("datasetId"), "datasetId"),
        mode=coerce_enum(body, "evaluationMode", EVALUATION_MODES, "PRE_GENERATED"),
        target_id=coerce_uuid(body.get("targetLlmEndpointId"), "targetLlmEndpointId"),
        judge_id=coerce_uuid(body.get("judgeLlmEndpointId"), "judgeLlmEndpointId"),
        metrics=metrics,
        trigger_type=coerce_enum(body, "triggerType", TRIGGER_TYPES, "MANUAL"),
        trigger_reference=coerce_text(body.get("triggerReference"), "triggerReference"),
    )


def validate_start_request(request: StartRequest) -> None:
    """Apply the bean validation of StartEvaluationRequest (400 VALIDATION_ERROR).

    The metrics list has no @Valid, so its elements are not validated here:
    a missing metricId fails later with a 500 and weights are not range-checked.
    """
    errors = {}
    if request.name is None or not request.name.strip():
        errors["name"] = "Evaluation name is required"
    elif utf16_length(request.name) > 200:
        errors["name"] = "size must be between 1 and 200"
    if request.dataset_id is None:
        errors["datasetId"] = "Dataset ID is required"
    if not request.metrics:
        errors["metrics"] = "At least one metric is required"
    if errors:
        raise validation_error(errors)


# ---------------------------------------------------------------------------
# JWT
# ---------------------------------------------------------------------------


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: Dict[str, Any]) -> str:
    header = _b64url_encode(json.dumps({"alg": "HS256"}, separators=(",", ":")).encode())
    payload = _b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(JWT_SECRET, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url_encode(signature)}"


def decode_jwt(token: str) -> Optional[Dict[str, Any]]:
    """Return the claims of a correctly signed, unexpired token, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    expected = hmac.new(JWT_SECRET, signing_input, hashlib.sha256).digest()
    try:
        signature = _b64url_decode(parts[2])
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(signature, expected) or not isinstance(claims, dict):
        return None
    expires_at = claims.get("exp")
    if not isinstance(expires_at, (int, float)) or time.time() >= expires_at:
        return None
    return claims


# ---------------------------------------------------------------------------
# Server state
# ---------------------------------------------------------------------------


class Store:
    """All mutable state of the fake, guarded by one re-entrant lock."""

    def __init__(self, scenario: Scenario, password: str):
        self.lock = threading.RLock()
        self.password = password
        self.scenario = scenario
        self.catalogue = Catalogue(scenario)
        self.runs: Dict[str, Run] = {}
        self.access_tokens: set = set()
        self.refresh_tokens: Dict[str, float] = {}
        self.authenticated_requests = 0
        self.request_log: List[Dict[str, Any]] = []
        self.events: List[Dict[str, Any]] = []
        for run in self._build_seed_runs(scenario, self.catalogue):
            self.runs[run.id] = run

    # -- scenario ----------------------------------------------------------

    def replace_scenario(self, scenario: Scenario) -> None:
        """Swap in a new scenario and recreate seed runs. API-created runs and sessions stay."""
        catalogue = Catalogue(scenario)
        seed_runs = self._build_seed_runs(scenario, catalogue)
        with self.lock:
            self.scenario = scenario
            self.catalogue = catalogue
            self.authenticated_requests = 0
            kept = [run for run in self.runs.values() if not run.seeded]
            self.runs = {run.id: run for run in seed_runs + kept}
            self._record_event("scenario_loaded", runs=len(scenario.runs), faults=len(scenario.faults))

    def reset(self) -> None:
        """Clear runs, sessions, the request log and events, then recreate seed runs."""
        with self.lock:
            for fault in self.scenario.faults:
                fault.seen = 0
                fault.applied = 0
            self.catalogue = Catalogue(self.scenario)
            self.runs = {run.id: run for run in self._build_seed_runs(self.scenario, self.catalogue)}
            self.access_tokens.clear()
            self.refresh_tokens.clear()
            self.authenticated_requests = 0
            self.request_log.clear()
            self.events.clear()

    def _build_seed_runs(self, scenario: Scenario, catalogue: Catalogue) -> List[Run]:
        runs: List[Run] = []
        base_time = Instant.now()
        for index, seed in enumerate(scenario.seed_runs):
            where = f"seed_runs[{index}]"
            default_created = base_time.plus(-3600.0 * (len(scenario.seed_runs) - index))
            run = self._build_seed_run(seed, where, catalogue, scenario, runs, default_created)
            if any(earlier.id == run.id for earlier in runs):
                raise ScenarioError(f"{where}.id {run.id} is already used by another seed run")
            runs.append(run)
        return runs

    def _build_seed_run(self, seed: Dict[str, Any], where: str, catalogue: Catalogue,
                        scenario: Scenario, earlier: List[Run], default_created: Instant) -> Run:
        name = _expect_string(seed.get("name"), f"{where}.name")
        project = catalogue.find_project(seed.get("project", "demo"), f"{where}.project")
        dataset = catalogue.find_dataset(seed.get("dataset", "golden-qa"), f"{where}.dataset")
        target = None
        if seed.get("endpoint") is not None:
            target = catalogue.find_endpoint(seed["endpoint"], f"{where}.endpoint")
        codes = seed.get("metrics", ["FAITHFULNESS"])
        if not isinstance(codes, list) or not codes:
            raise ScenarioError(f"{where}.metrics must be a non-empty list of metric codes")
        run_metrics = []
        for code in codes:
            if not isinstance(code, str) or code not in METRICS_BY_CODE:
                raise ScenarioError(f"{where}.metrics has unknown code {code!r}. Known codes: {list(METRIC_CODES)}")
            metric = METRICS_BY_CODE[code]
            run_metrics.append(RunMetric(metric, metric["defaultWeight"], metric["defaultThreshold"], None))
        if "judge" in seed:
            judge = catalogue.find_endpoint(seed["judge"], f"{where}.judge") if seed["judge"] else None
        elif any(rm.metric["requiresJudgeLlm"] for rm in run_metrics):
            judge = catalogue.default_judge(project.id)
        else:
            judge = None
        status = _expect_string(seed.get("status", "COMPLETED"), f"{where}.status")
        mode = _expect_choice(seed.get("evaluation_mode", "LIVE_GENERATION" if target else "PRE_GENERATED"),
                              EVALUATION_MODES, f"{where}.evaluation_mode")
        try:
            created_at = Instant.parse(seed["created_at"]) if "created_at" in seed else default_created
            completed_at = Instant.parse(seed["completed_at"]) if seed.get("completed_at") else None
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        run_id = seed.get("id") or derived_id("seed-run", where, name)
        if not isinstance(run_id, str) or not UUID_PATTERN.match(run_id):
            raise ScenarioError(f"{where}.id must be a UUID, got {run_id!r}")
        outcome = _parse_outcome(seed, where, Outcome(final_status=status))
        run = Run(
            id=run_id.lower(),
            project=project,
            dataset=dataset,
            name=name,
            run_number=1 + max((r.run_number for r in earlier
                                if r.project.id == project.id and r.name == name), default=0),
            mode=mode,
            target=target,
            judge=judge,
            metrics=run_metrics,
            trigger_type=_expect_choice(seed.get("trigger_type", "CI_CD"), TRIGGER_TYPES,
                                        f"{where}.trigger_type"),
            trigger_reference=_expect_string(seed.get("trigger_reference"),
                                             f"{where}.trigger_reference", nullable=True),
            created_at=created_at,
            total_cases=dataset.case_count,
            outcome=outcome,
            quality_specs=(outcome.quality, scenario.quality),
            seeded=True,
            rule_source=seed,
        )
        run.case_results = build_case_results(run)
        if status in ("PENDING", "RUNNING"):
            run.status = status
            run.settled = True
            if status == "RUNNING":
                run.started_at = created_at.plus(5)
                run.completed_cases = run.total_cases // 2
        else:
            self._apply_final_status(run, status, completed_at or created_at.plus(420))
        return run

    # -- events and the request log ----------------------------------------

    def _record_event(self, event: str, **details: Any) -> None:
        self.events.append({"event": event, "time": Instant.now(), **details})

    def record_request(self, entry: Dict[str, Any]) -> None:
        with self.lock:
            self.request_log.append(entry)
            if len(self.request_log) > REQUEST_LOG_LIMIT:
                del self.request_log[0]

    def take_fault(self, method: str, path: str) -> Optional[Fault]:
        """Count the request against each matching fault and return the first fault that applies."""
        with self.lock:
            for index, fault in enumerate(self.scenario.faults):
                if fault.method is not None and fault.method != method:
                    continue
                if not fault.path_pattern.search(path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.times is not None and fault.applied >= fault.times:
                    continue
                fault.applied += 1
                self._record_event("fault_applied", fault=index, kind=fault.kind,
                                   method=method, path=path)
                return fault
        return None

    # -- auth ----------------------------------------------------------------

    def issue_session(self) -> Dict[str, Any]:
        """Create an access and a refresh token and return the flat LoginResponse."""
        with self.lock:
            issued_at = int(time.time())
            claims = {
                "sub": USER_ID,
                "iss": JWT_ISSUER,
                "iat": issued_at,
                # Whole seconds, as the JWT exp claim is.
                "exp": issued_at + self.scenario.token_ttl_seconds,
                "email": USER_EMAIL,
                "role": USER_ROLE,
                "org_id": ORGANIZATION_ID,
                "org_name": ORGANIZATION_NAME,
            }
            access_token = encode_jwt(claims)
            refresh_token = secrets.token_urlsafe(32)
            self.access_tokens.add(access_token)
            self.refresh_tokens[refresh_token] = time.time() + REFRESH_TOKEN_TTL_SECONDS
        return {
            "accessToken": access_token,
            "refreshToken": refresh_token,
            "tokenType": "Bearer",
            "expiresIn": LOGIN_EXPIRES_IN,
            "userId": USER_ID,
            "email": USER_EMAIL,
            "fullName": USER_FULL_NAME,
            "role": USER_ROLE,
            "organizationId": ORGANIZATION_ID,
            "organizationName": ORGANIZATION_NAME,
            "mustChangePassword": False,
        }

    def rotate_refresh_token(self, token: str) -> bool:
        """Revoke a refresh token and return whether it was valid (known, not revoked, not expired)."""
        with self.lock:
            expires_at = self.refresh_tokens.pop(token, None)
            return expires_at is not None and time.time() < expires_at

    def revoke_refresh_tokens(self, token: Optional[str]) -> int:
        """Revoke one refresh token, or every one when token is None, and return how many were revoked."""
        with self.lock:
            if token is None:
                count = len(self.refresh_tokens)
                self.refresh_tokens.clear()
                self._record_event("logout_all_sessions", revoked=count)
                LOG.warning("logout without refreshToken revoked all %d sessions of %s", count, USER_EMAIL)
                return count
            return 1 if self.refresh_tokens.pop(token, None) is not None else 0

    def authenticate(self, header: Optional[str]) -> Optional[Dict[str, Any]]:
        """Return the claims for a valid Bearer header and count the request, else None.

        After `auth.expire_tokens_after_requests` authenticated requests, every
        access token issued so far is revoked once (and, with
        `auth.revoke_refresh_tokens`, every refresh token).
        """
        if not header or not header.startswith("Bearer "):
            return None
        token = header[len("Bearer "):]
        claims = decode_jwt(token)
        with self.lock:
            if claims is None or token not in self.access_tokens:
                return None
            self.authenticated_requests += 1
            limit = self.scenario.expire_tokens_after_requests
            if limit is not None and self.authenticated_requests == limit:
                revoked_access = len(self.access_tokens)
                self.access_tokens.clear()
                revoked_refresh = 0
                if self.scenario.revoke_refresh_tokens:
                    revoked_refresh = len(self.refresh_tokens)
                    self.refresh_tokens.clear()
                self._record_event("tokens_invalidated", after_requests=limit,
                                   access_tokens=revoked_access, refresh_tokens=revoked_refresh)
                LOG.info("invalidated %d access token(s) after %d authenticated requests",
                         revoked_access, limit)
        return claims

    # -- run lifecycle -------------------------------------------------------

    def observe(self, run: Run, count_poll: bool) -> None:
        """Advance the scripted lifecycle. Only a GET of the run itself counts as a poll."""
        if run.settled:
            return
        outcome = run.outcome
        if count_poll:
            run.polls += 1
        if outcome.final_status == STUCK_STATUS:
            self._show_progress(run, 0.5)
            return
        if outcome.complete_after_seconds is not None:
            elapsed = (datetime.now(timezone.utc) - run.created_at.moment).total_seconds()
            if elapsed >= outcome.complete_after_seconds:
                self._apply_final_status(run, outcome.final_status, Instant.now())
            elif elapsed > 0:
                self._show_progress(run, elapsed / max(outcome.complete_after_seconds, 1e-9))
            return
        if run.polls > outcome.polls_before_final:
            self._apply_final_status(run, outcome.final_status, Instant.now())
        elif run.polls > 0:
            self._show_progress(run, run.polls / (outcome.polls_before_final + 1))

    @staticmethod
    def _show_progress(run: Run, fraction: float) -> None:
        """Report RUNNING with progress counts if the rule sets show_running, else stay PENDING."""
        if not run.outcome.show_running:
            return
        run.status = "RUNNING"
        if run.started_at is None:
            run.started_at = Instant.now()
        run.completed_cases = min(run.total_cases - 1, int(run.total_cases * fraction))
        run.completed_cases = max(run.completed_cases, 0)

    @staticmethod
    def _apply_final_status(run: Run, status: str, finished_at: Instant) -> None:
        outcome = run.outcome
        run.status = status
        run.settled = True
        run.completed_at = finished_at
        run.error_message = outcome.error_message
        if outcome.overall_score is not MISSING:
            run.overall_score = outcome.overall_score
        if status == "COMPLETED":
            completed = [r for r in run.case_results if r["status"] == "COMPLETED"]
            run.completed_cases = len(completed)
            run.failed_cases = sum(1 for r in run.case_results if r["status"] == "FAILED")
            if outcome.overall_score is MISSING:
                run.overall_score = compute_overall_score(run)
            if outcome.metric_summaries:
                run.metric_summaries = compute_metric_summaries(run)
            run.total_tokens = sum(r["inputTokens"] + r["outputTokens"] for r in completed)
            run.total_cost = round(sum(r["_cost"] for r in completed), 6)
        elif status == "FAILED":
            run.completed_cases = 0
            run.failed_cases = run.total_cases
            run.error_message = outcome.error_message or "Evaluation engine reported a failure"

    def cancel(self, run: Run) -> None:
        run.status = "CANCELLED"
        run.settled = True
        run.completed_at = Instant.now()


# ---------------------------------------------------------------------------
# API routes
# ---------------------------------------------------------------------------

PUBLIC_PATHS = {"/api/auth/login", "/api/auth/refresh", "/api/auth/logout", "/api/auth/health"}
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")


class ApiApplication:
    """Routes /api requests to handlers that mirror the real controllers."""

    def __init__(self, store: Store):
        self.store = store
        uuid_segment = r"(?P<{}>[^/]+)"
        self.routes: List[Tuple[str, "re.Pattern[str]", Callable[..., Response]]] = []
        for method, pattern, handler in (
            ("POST", "/api/auth/login", self.login),
            ("POST", "/api/auth/refresh", self.refresh),
            ("POST", "/api/auth/logout", self.logout),
            ("GET", "/api/auth/health", self.auth_health),
            ("GET", "/api/projects", self.list_projects),
            ("GET", "/api/projects/{project_id}", self.get_project),
            ("GET", "/api/projects/{project_id}/metrics", self.list_metrics),
            ("GET", "/api/projects/{project_id}/datasets", self.list_project_datasets),
            ("GET", "/api/datasets", self.list_all_datasets),
            ("GET", "/api/datasets/{dataset_id}", self.get_dataset),
            ("GET", "/api/projects/{project_id}/llm-endpoints", self.list_project_endpoints),
            ("GET", "/api/llm-endpoints", self.list_all_endpoints),
            ("GET", "/api/llm-endpoints/{endpoint_id}", self.get_endpoint),
            ("POST", "/api/projects/{project_id}/evaluations", self.start_evaluation),
            ("GET", "/api/projects/{project_id}/evaluations", self.list_evaluations),
            ("GET", "/api/evaluations/{run_id}", self.get_evaluation),
            ("DELETE", "/api/evaluations/{run_id}", self.delete_evaluation),
            ("GET", "/api/evaluations/{run_id}/results", self.get_results),
            ("POST", "/api/evaluations/{run_id}/cancel", self.cancel_evaluation),
            ("POST", "/api/evaluations/{run_id}/retrigger", self.retrigger_evaluation),
        ):
            regex = re.sub(r"\{(\w+)\}", lambda m: uuid_segment.format(m.group(1)), pattern)
            self.routes.append((method, re.compile(regex), handler))

    def handle(self, request: ApiRequest) -> Response:
        try:
            claims = self.store.authenticate(request.headers.get("Authorization"))
            if claims is None and request.path not in PUBLIC_PATHS:
                raise UnauthorizedError()
            with self.store.lock:
                return self._dispatch(request, claims)
        except UnauthorizedError:
            return Response(401, UNAUTHORIZED_BODY)
        except ApiError as error:
            if error.status == 500:
                LOG.warning("%s %s -> 500: %s", request.method, request.path, error.note)
            return error_response(error)
        except Exception as exc:  # the real server's catch-all handler
            LOG.exception("%s %s failed", request.method, request.path)
            return error_response(internal_error(f"unhandled {type(exc).__name__}: {exc}"))

    def _dispatch(self, request: ApiRequest, claims: Optional[Dict[str, Any]]) -> Response:
        path_matched = False
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            path_matched = True
            if method == request.method:
                return handler(request, claims, **match.groupdict())
        if path_matched:
            raise internal_error(f"method {request.method} is not supported for {request.path}")
        raise internal_error(f"no handler for {request.method} {request.path}")

    # -- lookups shared by handlers ----------------------------------------

    @property
    def catalogue(self) -> Catalogue:
        return self.store.catalogue

    def _project(self, project_id: str) -> Project:
        project = self.catalogue.projects.get(path_uuid(project_id))
        if project is None:
            raise ApiError(404, "PROJECT_NOT_FOUND", f"Project not found: {project_id}")
        return project

    @staticmethod
    def _require_access(project: Project, levels: Tuple[str, ...] = ("ADMIN", "WRITE", "READ"),
                        denied_message: str = "You don't have access to this project") -> None:
        if project.access_level == "NONE":
            raise ApiError(403, "FORBIDDEN", "You don't have access to this project")
        if project.access_level not in levels:
            raise ApiError(403, "FORBIDDEN", denied_message)

    def _run(self, run_id: str) -> Run:
        run = self.store.runs.get(path_uuid(run_id))
        if run is None:
            raise ApiError(404, "EVALUATION_NOT_FOUND", f"Evaluation run not found: {run_id}")
        return run

    def _page(self, request: ApiRequest, items: List[Any], accessors: Dict[str, Callable[[Any], Any]],
              to_dto: Callable[[Any], Any], default_size: int = 20,
              default_orders: Tuple[Tuple[str, bool], ...] = (("createdAt", True),),
              size_cap: Optional[int] = None, endless: bool = False) -> Dict[str, Any]:
        page_request = parse_page_request(request.query, default_size, list(default_orders))
        if size_cap is not None:
            page_request.size = min(page_request.size, size_cap)
        ordered = sort_items(items, page_request.orders, accessors)
        page = build_page(ordered, page_request, self.store.scenario.page_shape, endless)
        page["content"] = [to_dto(item) for item in page["content"]]
        return page

    @staticmethod
    def _search_filter(request: ApiRequest) -> Callable[[str], bool]:
        search = query_value(request, "search")
        if search is None or not search.strip():
            return lambda name: True
        needle = search.lower()
        return lambda name: needle in name.lower()

    # -- auth ------------------------------------------------------------------

    def login(self, request: ApiRequest, claims: Any) -> Response:
        body = read_json_body(request, required=True)
        if not isinstance(body, dict):
            raise internal_error("login body is not a JSON object")
        email = coerce_text(body.get("email"), "email")
        password = coerce_text(body.get("password"), "password")
        errors = {}
        if email is None or not email.strip():
            errors["email"] = "Email is required"
        elif not EMAIL_PATTERN.match(email.strip()):
            errors["email"] = "Invalid email format"
        if password is None or not password.strip():
            errors["password"] = "Password is required"
        if errors:
            raise validation_error(errors)
        if email.lower().strip() != USER_EMAIL or password != self.store.password:
            raise ApiError(401, "AUTHENTICATION_FAILED", "Invalid email or password")
        return json_response(200, self.store.issue_session())

    def refresh(self, request: ApiRequest, claims: Any) -> Response:
        body = read_json_body(request, required=True)
        if not isinstance(body, dict):
            raise internal_error("refresh body is not a JSON object")
        token = coerce_text(body.get("refreshToken"), "refreshToken")
        if token is None or not token.strip():
            raise validation_error({"refreshToken": "Refresh token is required"})
        if not self.store.rotate_refresh_token(token):
            raise ApiError(401, "INVALID_TOKEN", "Invalid or expired refresh token")
        return json_response(200, self.store.issue_session())

    def logout(self, request: ApiRequest, claims: Any) -> Response:
        body = read_json_body(request, required=False)
        if body is not None and not isinstance(body, dict):
            raise internal_error("logout body is not a JSON object")
        if claims is None:
            # The handler dereferences the missing principal.
            raise internal_error("logout without a valid Bearer token (no principal)")
        token = coerce_text(body.get("refreshToken"), "refreshToken") if body else None
        self.store.revoke_refresh_tokens(token if token and token.strip() else None)
        return json_response(200, {"message": "Logged out successfully"})

    def auth_health(self, request: ApiRequest, claims: Any) -> Response:
        return json_response(200, {"success": True, "statusCode": 200,
                                   "message": "Auth service is healthy"})

    # -- projects, datasets, endpoints, metrics --------------------------------

    def list_projects(self, request: ApiRequest, claims: Any) -> Response:
        # Parsed for its 500 on a bad value only, because every fake project is ACTIVE.
        query_bool(request, "includeArchived", False)
        matches = self._search_filter(request)
        projects = [project for project in self.catalogue.projects.values()
                    if project.access_level != "NONE" and matches(project.name)]
        page = self._page(request, projects, NAMED_SORT_ACCESSORS, project_dto)
        return wrapped_response(200, "Projects retrieved successfully", page)

    def get_project(self, request: ApiRequest, claims: Any, project_id: str) -> Response:
        project = self._project(project_id)
        self._require_access(project)
        return wrapped_response(200, "Project retrieved successfully", project_dto(project))

    def list_metrics(self, request: ApiRequest, claims: Any, project_id: str) -> Response:
        self._project(project_id)  # the real handler checks existence only, not access
        return wrapped_response(200, "Metrics retrieved successfully", list(METRICS))

    def _datasets_page(self, request: ApiRequest, datasets: List[Dataset]) -> Dict[str, Any]:
        include_inactive = query_bool(request, "includeInactive", False)
        matches = self._search_filter(request)
        selected = [dataset for dataset in datasets
                    if (include_inactive or dataset.active) and matches(dataset.name)]
        return self._page(request, selected, NAMED_SORT_ACCESSORS, dataset_dto)

    def list_project_datasets(self, request: ApiRequest, claims: Any, project_id: str) -> Response:
        project = self._project(project_id)
        self._require_access(project)
        datasets = [d for d in self.catalogue.datasets.values() if d.project_id == project.id]
        return wrapped_response(200, "Datasets retrieved successfully",
                                self._datasets_page(request, datasets))

    def list_all_datasets(self, request: ApiRequest, claims: Any) -> Response:
        datasets = [d for d in self.catalogue.datasets.values()
                    if self.catalogue.projects[d.project_id].access_level != "NONE"]
        return wrapped_response(200, "Datasets retrieved successfully",
                                self._datasets_page(request, datasets))

    def get_dataset(self, request: ApiRequest, claims: Any, dataset_id: str) -> Response:
        dataset = self.catalogue.datasets.get(path_uuid(dataset_id))
        if dataset is None:
            raise ApiError(404, "DATASET_NOT_FOUND", f"Dataset not found: {dataset_id}")
        self._require_access(self.catalogue.projects[dataset.project_id])
        dto = dataset_dto(dataset)
        dto["testCases"] = None
        if query_bool(request, "includeTestCases", False):
            dto["testCases"] = [generated_test_case(dataset, index)
                                for index in range(dataset.case_count)]
        return wrapped_response(200, "Dataset retrieved successfully", dto)

    def _endpoints_page(self, request: ApiRequest, endpoints: List[Endpoint],
                        llm_type: Optional[str]) -> Dict[str, Any]:
        include_inactive = query_bool(request, "includeInactive", False)
        matches = self._search_filter(request)
        selected = [endpoint for endpoint in endpoints
                    if (include_inactive or endpoint.active) and matches(endpoint.name)
                    and (llm_type is None or endpoint.llm_type == llm_type)]
        projects = self.catalogue.projects
        return self._page(request, selected, NAMED_SORT_ACCESSORS,
                          lambda endpoint: endpoint_dto(endpoint, projects[endpoint.project_id]))

    def list_project_endpoints(self, request: ApiRequest, claims: Any, project_id: str) -> Response:
        project = self._project(project_id)
        llm_type = query_enum(request, "llmType", LLM_TYPES)
        self._require_access(project)
        endpoints = [e for e in self.catalogue.endpoints.values() if e.project_id == project.id]
        return wrapped_response(200, "LLM endpoints retrieved successfully",
                                self._endpoints_page(request, endpoints, llm_type))

    def list_all_endpoints(self, request: ApiRequest, claims: Any) -> Response:
        llm_type = query_enum(request, "type", LLM_TYPES)
        if llm_type is None:
            raise internal_error("required query parameter 'type' is missing")
        endpoints = [e for e in self.catalogue.endpoints.values()
                     if self.catalogue.projects[e.project_id].access_level != "NONE"]
        return wrapped_response(200, "LLM endpoints retrieved successfully",
                                self._endpoints_page(request, endpoints, llm_type))

    def get_endpoint(self, request: ApiRequest, claims: Any, endpoint_id: str) -> Response:
        endpoint = self.catalogue.endpoints.get(path_uuid(endpoint_id))
        if endpoint is None:
            raise ApiError(404, "LLM_ENDPOINT_NOT_FOUND", f"LLM endpoint not found: {endpoint_id}")
        project = self.catalogue.projects[endpoint.project_id]
        self._require_access(project)
        return wrapped_response(200, "LLM endpoint retrieved successfully",
                                endpoint_dto(endpoint, project))

    # -- evaluations ------------------------------------------------------------

    def start_evaluation(self, request: ApiRequest, claims: Any, project_id: str) -> Response:
        path_uuid(project_id)
        body = read_json_body(request, required=True)
        start = parse_start_request(body)
        validate_start_request(start)
        run = self._create_run(project_id, start, body)
        return wrapped_response(201, "Evaluation started successfully", run_dto(run, False))

    def _create_run(self, project_id: str, start: StartRequest, body: Any) -> Run:
        """Apply the service checks in the real server's order, then store a PENDING run."""
        catalogue = self.catalogue
        project = self._project(project_id)
        self._require_access(project, ("ADMIN", "WRITE"),
                             "You don't have permission to run evaluations in this project")

        dataset = catalogue.datasets.get(start.dataset_id)
        if dataset is None:
            raise ApiError(400, "EVALUATION_VALIDATION_ERROR", f"Dataset not found: {start.dataset_id}")
        if dataset.project_id != project.id:
            raise ApiError(400, "EVALUATION_VALIDATION_ERROR", "Dataset does not belong to this project")
        if dataset.case_count == 0:
            raise ApiError(400, "EVALUATION_VALIDATION_ERROR", "Dataset has no test cases")

        # The real server reads targetLlmEndpointId only in LIVE_GENERATION mode.
        target = None
        if start.mode == "LIVE_GENERATION":
            if start.target_id is None:
                raise ApiError(400, "EVALUATION_VALIDATION_ERROR",
                               "Target LLM endpoint is required for LIVE_GENERATION mode")
            target = catalogue.endpoints.get(start.target_id)
            if target is None:
                raise ApiError(404, "LLM_ENDPOINT_NOT_FOUND", "Target LLM endpoint not found")

        run_metrics = []
        for index, config in enumerate(start.metrics or []):
            if config is None:
                raise internal_error(f"metrics[{index}] is null")
            if config.metric_id is None:
                raise internal_error(f"metrics[{index}].metricId is missing, so the metric lookup gets a null id")
            metric = METRICS_BY_ID.get(config.metric_id)
            if metric is None:
                raise ApiError(400, "EVALUATION_VALIDATION_ERROR", f"Metric not found: {config.metric_id}")
            run_metrics.append(RunMetric(
                metric=metric,
                weight=config.weight if config.weight is not None else metric["defaultWeight"],
                pass_threshold=(config.pass_threshold if config.pass_threshold is not None
                                else metric["defaultThreshold"]),
                custom_prompt=config.custom_prompt,
            ))

        # The judge is kept only when a metric needs one, and the server never falls back
        # to a default judge.
        judge = None
        if any(run_metric.metric["requiresJudgeLlm"] for run_metric in run_metrics):
            if start.judge_id is None:
                raise ApiError(400, "EVALUATION_VALIDATION_ERROR",
                               "Judge LLM endpoint is required for selected metrics")
            judge = catalogue.endpoints.get(start.judge_id)
            if judge is None:
                raise ApiError(404, "LLM_ENDPOINT_NOT_FOUND", "Judge LLM endpoint not found")

        # NOT NULL and varchar(255) columns reject these on insert.
        if start.mode is None or start.trigger_type is None:
            raise internal_error("evaluationMode or triggerType is null (NOT NULL column)")
        if start.trigger_reference is not None and len(start.trigger_reference) > 255:
            raise internal_error("triggerReference is longer than 255 characters")

        rule = self._match_rule(start, dataset)
        outcome = rule.outcome if rule else Outcome()
        run = Run(
            id=str(uuid.uuid4()),
            project=project,
            dataset=dataset,
            name=start.name,
            run_number=1 + max((r.run_number for r in self.store.runs.values()
                                if r.project.id == project.id and r.name == start.name), default=0),
            mode=start.mode,
            target=target,
            judge=judge,
            metrics=run_metrics,
            trigger_type=start.trigger_type,
            trigger_reference=start.trigger_reference,
            created_at=Instant.now(),
            total_cases=dataset.case_count,
            outcome=outcome,
            quality_specs=(outcome.quality, self.store.scenario.quality),
            rule_source=rule.source if rule else None,
            request_body=body,
        )
        run.case_results = build_case_results(run)
        self.store.runs[run.id] = run
        LOG.info("run %s created: name=%r dataset=%s status PENDING, final %s",
                 run.id, run.name, dataset.name, outcome.final_status)
        return run

    def _match_rule(self, start: StartRequest, dataset: Dataset) -> Optional[RunRule]:
        """Return the first `runs` rule whose match keys all fit the start request."""
        requested_target = self.catalogue.endpoints.get(start.target_id) if start.target_id else None
        for rule in self.store.scenario.runs:
            if rule.match_name is not None and rule.match_name not in (start.name or ""):
                continue
            if rule.match_dataset is not None and rule.match_dataset not in (dataset.name, dataset.id):
                continue
            if rule.match_endpoint is not None:
                target_keys = (requested_target.name, requested_target.id) if requested_target else ()
                if rule.match_endpoint not in target_keys and rule.match_endpoint != start.target_id:
                    continue
            return rule
        return None

    def list_evaluations(self, request: ApiRequest, claims: Any, project_id: str) -> Response:
        project_uuid = path_uuid(project_id)
        status = query_enum(request, "status", EVALUATION_STATUSES)
        project = self._project(project_uuid)
        self._require_access(project)
        search = query_value(request, "search")
        runs = [run for run in self.store.runs.values() if run.project.id == project.id]
        for run in runs:
            self.store.observe(run, count_poll=False)
        if search is not None and search.strip():
            needle = search.lower()
            runs = [run for run in runs
                    if needle in run.name.lower() or needle in run.dataset.name.lower()]
        elif status is not None:
            runs = [run for run in runs if run.status == status]
        page = self._page(request, runs, RUN_SORT_ACCESSORS, run_summary_dto)
        return wrapped_response(200, "Evaluations retrieved successfully", page)

    def get_evaluation(self, request: ApiRequest, claims: Any, run_id: str) -> Response:
        run = self._run(run_id)
        self._require_access(run.project)
        self.store.observe(run, count_poll=True)
        return wrapped_response(200, "Evaluation retrieved successfully", run_dto(run, True))

    def get_results(self, request: ApiRequest, claims: Any, run_id: str) -> Response:
        run = self._run(run_id)
        self._require_access(run.project)
        self.store.observe(run, count_poll=False)
        results: List[Dict[str, Any]] = []
        if run.status == "COMPLETED" and run.outcome.results != "empty":
            results = run.case_results
        page = self._page(request, results, RESULT_SORT_ACCESSORS, result_dto, default_size=50,
                          default_orders=(("createdAt", False),),
                          size_cap=self.store.scenario.results_page_size_cap,
                          endless=run.outcome.results == "endless" and bool(results))
        return wrapped_response(200, "Evaluation results retrieved successfully", page)

    def cancel_evaluation(self, request: ApiRequest, claims: Any, run_id: str) -> Response:
        run = self._run(run_id)
        self._require_access(run.project, ("ADMIN", "WRITE"),
                             "You don't have permission to cancel this evaluation")
        self.store.observe(run, count_poll=False)
        if run.status not in ("PENDING", "RUNNING"):
            raise ApiError(400, "EVALUATION_VALIDATION_ERROR",
                           f"Cannot cancel evaluation with status: {run.status}")
        self.store.cancel(run)
        return wrapped_response(200, "Evaluation cancelled successfully")

    def retrigger_evaluation(self, request: ApiRequest, claims: Any, run_id: str) -> Response:
        original = self._run(run_id)
        self._require_access(original.project, ("ADMIN", "WRITE"),
                             "You don't have permission to run evaluations in this project")
        start = StartRequest(
            name=original.name,
            dataset_id=original.dataset.id,
            mode=original.mode,
            target_id=original.target.id if original.target else None,
            judge_id=original.judge.id if original.judge else None,
            metrics=[MetricConfig(rm.metric["id"], rm.weight, rm.pass_threshold, rm.custom_prompt)
                     for rm in original.metrics],
            trigger_type="MANUAL",
            trigger_reference=f"Retrigger of run #{original.run_number}",
        )
        run = self._create_run(original.project.id, start, {"retriggerOf": original.id})
        return wrapped_response(201, "Evaluation retriggered successfully", run_dto(run, False))

    def delete_evaluation(self, request: ApiRequest, claims: Any, run_id: str) -> Response:
        run = self._run(run_id)
        self._require_access(run.project, ("ADMIN",), "Only admins can delete evaluation runs")
        self.store.observe(run, count_poll=False)
        if run.status in ("PENDING", "RUNNING"):
            raise ApiError(400, "EVALUATION_VALIDATION_ERROR",
                           f"Cannot delete evaluation while it is {run.status}. "
                           "Please cancel it first or wait for completion.")
        del self.store.runs[run.id]
        return wrapped_response(200, "Evaluation deleted successfully")


# ---------------------------------------------------------------------------
# Control routes (/__fake/*, no auth, not logged, no faults)
# ---------------------------------------------------------------------------


class ControlRoutes:
    def __init__(self, store: Store):
        self.store = store

    def handle(self, request: ApiRequest) -> Response:
        key = (request.method, request.path.rstrip("/"))
        if key == ("GET", "/__fake/health"):
            return json_response(200, {"status": "UP"})
        if key == ("GET", "/__fake/requests"):
            with self.store.lock:
                return json_response(200, list(self.store.request_log))
        if key == ("GET", "/__fake/events"):
            with self.store.lock:
                return json_response(200, list(self.store.events))
        if key == ("GET", "/__fake/runs"):
            return json_response(200, self._runs())
        if key == ("GET", "/__fake/scenario"):
            return json_response(200, self.store.scenario.source)
        if key == ("POST", "/__fake/scenario"):
            return self._load_scenario(request)
        if key == ("POST", "/__fake/reset"):
            self.store.reset()
            LOG.info("state reset")
            return json_response(200, {"reset": True})
        return json_response(404, {"error": f"unknown control route {request.method} {request.path}"})

    def _runs(self) -> List[Dict[str, Any]]:
        with self.store.lock:
            records = []
            for run in self.store.runs.values():
                self.store.observe(run, count_poll=False)
                record = run_dto(run, True)
                record["fake"] = {
                    "seeded": run.seeded,
                    "polls": run.polls,
                    "finalStatus": run.outcome.final_status,
                    "rule": run.rule_source,
                    "request": run.request_body,
                }
                record["results"] = [result_dto(result) for result in run.case_results]
                records.append(record)
            return records

    def _load_scenario(self, request: ApiRequest) -> Response:
        try:
            source = json.loads(request.body.decode("utf-8")) if request.body else {}
            scenario = parse_scenario(source)
            self.store.replace_scenario(scenario)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return json_response(400, {"error": f"scenario is not valid JSON: {exc}"})
        except ScenarioError as exc:
            return json_response(400, {"error": f"invalid scenario: {exc}"})
        LOG.info("scenario loaded: %d run rule(s), %d seed run(s), %d fault(s)",
                 len(scenario.runs), len(scenario.seed_runs), len(scenario.faults))
        return json_response(200, {"loaded": True})


# ---------------------------------------------------------------------------
# HTTP transport and faults
# ---------------------------------------------------------------------------

NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
FAULT_ERROR_CODES = {
    400: "BAD_REQUEST", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
    429: "TOO_MANY_REQUESTS", 500: "INTERNAL_ERROR", 502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT",
}


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def fault_response(fault: Fault) -> Response:
    """Build the response of a status, html, malformed_json or success_false fault."""
    if fault.kind == "html":
        page = NGINX_PAGE.format(status=fault.status, reason=_reason_phrase(fault.status))
        response = Response(fault.status, page.encode("utf-8"), content_type="text/html")
    elif fault.kind == "malformed_json":
        response = Response(200, b'{"success":true,"statusCode":200,"message":"Evaluation retri'
                                 b'eved successfully","data":{"id":"9f0c2a51-')
    elif fault.kind == "success_false":
        response = json_response(200, {
            "success": False, "statusCode": 200,
            "error": fault.message or "Request could not be processed",
            "timestamp": Instant.now(),
        })
    elif fault.status == 401:
        response = Response(401, UNAUTHORIZED_BODY)
    else:
        response = json_response(fault.status, {
            "success": False,
            "statusCode": fault.status,
            "errorCode": FAULT_ERROR_CODES.get(fault.status, "ERROR"),
            "error": fault.message or (INTERNAL_ERROR_MESSAGE if fault.status == 500
                                       else _reason_phrase(fault.status)),
            "timestamp": Instant.now(),
        })
    if fault.retry_after is not None:
        response.headers.append(("Retry-After", str(fault.retry_after)))
    return response


def _decode_logged_body(body: bytes) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class FakeRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llmops-fake"
    sys_version = ""
    server: "FakeServer"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            self._handle_request()
        except Exception:  # reply as the catch-all handler does
            LOG.exception("%s %s failed in the fake itself", self.command, self.path)
            self.close_connection = True
            self._send(error_response(internal_error("fake server error")))

    def _handle_request(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except (ValueError, OSError) as exc:
            LOG.warning("unreadable request body on %s %s: %s", self.command, url.path, exc)
            self.close_connection = True
            self._send(json_response(400, {"error": f"unreadable request body: {exc}"}))
            return
        request = ApiRequest(self.command, url.path, parse_qs(url.query, keep_blank_values=True),
                             self.headers, body)
        if url.path == "/__fake" or url.path.startswith("/__fake/"):
            self._send(self.server.control.handle(request))
            return

        fault = self.server.store.take_fault(self.command, url.path)
        if fault is not None:
            LOG.info("fault %s on %s %s", fault.kind, self.command, url.path)
            if fault.kind == "delay":
                time.sleep(fault.delay_seconds)
        if fault is None or fault.kind == "delay":
            response = self.server.app.handle(request)
            self._send(response)
            self._log_request(request, response.status, fault.kind if fault else None, response.note)
        elif fault.kind == "reset":
            self._send_reset()
            self._log_request(request, 200, fault.kind, None)
        else:
            response = fault_response(fault)
            self._send(response)
            self._log_request(request, response.status, fault.kind, None)

    def _log_request(self, request: ApiRequest, status: int, fault_kind: Optional[str],
                     note: Optional[str]) -> None:
        headers: Dict[str, str] = {}
        for name, value in request.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.server.store.record_request({
            "method": request.method,
            "path": request.path,
            "query": {name: values[0] for name, values in request.query.items()},
            "headers": headers,
            "body": _decode_logged_body(request.body),
            "status": status,
            "fault": fault_kind,
            "note": note,
            "time": Instant.now(),
        })

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError) as exc:
            LOG.debug("client went away during the response: %s", exc)
            self.close_connection = True

    def _send_reset(self) -> None:
        """Send headers and half of the promised body, then abort the connection with RST."""
        body = encode_json({"success": True, "statusCode": 200,
                            "message": "Evaluation retrieved successfully",
                            "data": {"id": str(uuid.uuid4()), "status": "PENDING"},
                            "timestamp": Instant.now()})
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError as exc:
            LOG.debug("reset fault: client already gone: %s", exc)
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], store: Store,
                 tls_context: Optional[ssl.SSLContext]):
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__(address, FakeRequestHandler)
        self.store = store
        self.app = ApiApplication(store)
        self.control = ControlRoutes(store)
        self.tls_context = tls_context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the connection's thread, so a slow TLS handshake blocks only that thread.
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls_socket = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            LOG.warning("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(tls_socket, client_address)
        finally:
            tls_socket.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.exception("connection from %s failed", client_address)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def write_port_file(path: str, port: int) -> None:
    """Write the port atomically, so a reader never sees a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".port-", dir=directory)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(f"{port}\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def parse_arguments(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fake LLMOps Eval server for demos and tests.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0,
                        help="TCP port, where 0 picks a free port (default 0)")
    parser.add_argument("--port-file", help="file that receives the bound port number")
    parser.add_argument("--scenario", help="scenario JSON file (see README.md)")
    parser.add_argument("--tls-cert", help="PEM certificate chain, so the server speaks HTTPS (needs --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"),
                        help="log level on stderr, where debug logs every request (default info)")
    arguments = parser.parse_args(argv)
    if not is_loopback(arguments.host):
        parser.error(f"--host {arguments.host!r} is not a loopback address; use 127.0.0.1 or ::1")
    if bool(arguments.tls_cert) != bool(arguments.tls_key):
        parser.error("--tls-cert and --tls-key must be given together")
    if not 0 <= arguments.port <= 65535:
        parser.error(f"--port {arguments.port} is out of range 0-65535")
    return arguments


def load_scenario_file(path: Optional[str]) -> Scenario:
    if path is None:
        return parse_scenario({})
    with open(path, encoding="utf-8") as stream:
        return parse_scenario(json.load(stream))


def main(argv: Optional[List[str]] = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    # Installed before the listening line is printed, so a caller that stops
    # the server right after reading it still gets a clean exit.
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    logging.basicConfig(stream=sys.stderr, level=arguments.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        scenario = load_scenario_file(arguments.scenario)
    except (OSError, json.JSONDecodeError, ScenarioError) as exc:
        print(f"error: cannot load scenario {arguments.scenario}: {exc}", file=sys.stderr)
        return 2
    try:
        store = Store(scenario, os.environ.get(PASSWORD_ENV_VAR, DEFAULT_PASSWORD))
    except ScenarioError as exc:
        print(f"error: invalid scenario {arguments.scenario}: {exc}", file=sys.stderr)
        return 2

    tls_context = None
    if arguments.tls_cert:
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            tls_context.load_cert_chain(arguments.tls_cert, arguments.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"error: cannot load TLS certificate or key: {exc}", file=sys.stderr)
            return 2
    try:
        server = FakeServer((arguments.host, arguments.port), store, tls_context)
    except OSError as exc:
        print(f"error: cannot listen on {arguments.host}:{arguments.port}: {exc}", file=sys.stderr)
        return 1

    port = server.server_address[1]
    if arguments.port_file:
        write_port_file(arguments.port_file, port)
    scheme = "https" if tls_context else "http"
    host = f"[{arguments.host}]" if ":" in arguments.host else arguments.host
    print(f"llmops fake listening on {scheme}://{host}:{port}", flush=True)
    LOG.info("started on port %d with %d run rule(s), %d seed run(s), %d fault(s)",
             port, len(scenario.runs), len(scenario.seed_runs), len(scenario.faults))

    serve_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                    name="serve", daemon=True)
    serve_thread.start()
    while not stop_requested.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
