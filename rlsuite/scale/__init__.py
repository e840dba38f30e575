"""Scale-out on engines the field already runs: Ray actors for rollout workers, Ray Tune for
sweeps, `accelerate` for language-model training (which lives with the trainers, in rlsuite.lm).
Nothing here is imported unless `--backend ray` or `rlsuite sweep` asks for it."""
