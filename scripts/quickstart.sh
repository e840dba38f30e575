#!/usr/bin/env bash
# Set up .venv and train PPO on CartPole-v1 with the built-in defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/rlsuite train ppo --env CartPole-v1 --overwrite "$@"
