#!/usr/bin/env bash
# Remake the shipped built-in SFT model (rlsuite/lm/builtin_sft) with its recipe: ~2 minutes of
# SFT on the built-in arithmetic task from random weights (seed 1), ~27% held-out accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/rlsuite train sft --task arithmetic --level mixed --seed 1 --run-dir runs/builtin-sft --overwrite "$@"
rm -rf rlsuite/lm/builtin_sft
mkdir -p rlsuite/lm/builtin_sft
cp runs/builtin-sft/model/* rlsuite/lm/builtin_sft/
chmod 644 rlsuite/lm/builtin_sft/*
echo "wrote rlsuite/lm/builtin_sft from runs/builtin-sft"
