"""Language-model post-training: SFT and GRPO (more in later issues), on rlsuite.lm's plumbing."""
