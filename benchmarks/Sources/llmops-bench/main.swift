import LLMOpsCI

print("llmops-bench: no measurement selected")
