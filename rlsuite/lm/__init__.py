"""What every language-model algorithm shares: the model and tokenizer (the built-in one or any
Hugging Face causal LM on disk), generation behind one interface, prompts from a text task,
evaluation by a verifier, and the export with `save_pretrained`.

The heavy stack (transformers, tokenizers, peft, math-verify, datasets) is the `llm` extra and
is imported only here and in rlsuite.algos.llm, never by `rlsuite --help` or `rlsuite list`.
"""
