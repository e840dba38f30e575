#!/usr/bin/env bash
# Create .venv (if missing) and install rlsuite with its test, language-model, MuJoCo, multi-agent, Ray and DeepSpeed extras.
# torch is installed first, pinned to the CPU build, so nothing pulls a multi-GB CUDA wheel.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${RLSUITE_TORCH:-2.13.0}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# Some machines' pip configuration names local indexes that do not exist; pip warns once per
# package about them, which only buries real errors.
exec 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    # The pinned CPU wheel; on a CUDA machine install the torch build you want into .venv first.
    "${PIP[@]}" "torch==${TORCH_VERSION}"
fi
"${PIP[@]}" -e ".[dev,llm,mujoco,marl,ray,deepspeed${RLSUITE_EXTRAS:+,$RLSUITE_EXTRAS}]"
