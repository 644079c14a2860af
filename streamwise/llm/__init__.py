"""The screenplay LLM: backends (:mod:`.backends`: local transformers, vLLM, OpenAI-compatible) and the
screenplay's JSON format, prompt and streaming parser (:mod:`.format`)."""
