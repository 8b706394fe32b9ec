"""The main job end to end: the real binary against the fake LLMOps Eval server."""

from conftest import BASE_CONFIG, PASSWORD


def test_passing_run_prints_report_and_exits_zero(llmops_server, run_agent):
    server = llmops_server()

    result = run_agent(["run"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    assert "LLMOps evaluation passed" in result.stdout
    assert "| FAITHFULNESS |" in result.stdout
    assert result.json()["verdict"] == "passed"


def test_threshold_above_score_exits_one_and_names_pair(llmops_server, run_agent):
    server = llmops_server()
    config = BASE_CONFIG + "gate:\n  thresholds:\n    faithfulness: { min: 0.95 }\n"

    result = run_agent(["run"], config=config, server=server)

    assert result.exit_code == 1, result
    assert "support-bot" in result.stdout
    assert "FAITHFULNESS" in result.stdout
    assert "below the minimum 0.95" in result.stdout


def test_password_appears_nowhere(llmops_server, run_agent):
    server = llmops_server()

    result = run_agent(["run", "--verbose"], config=BASE_CONFIG, server=server)

    assert result.exit_code == 0, result
    for text in (result.stdout, result.stderr, result.file("llmops-report.md"), result.file("llmops-results.json")):
        assert PASSWORD not in text
