#!/usr/bin/env bash
# The GPU check (issues 7, 8 and 9), for a machine with a CUDA GPU: SFT, GRPO and the preference and RLHF algorithms for a few
# steps with --device cuda (bfloat16 where supported), step times printed, then the vLLM
# generation path if vLLM installs. Writes everything under ${OUT:-gpu-check}/. Nothing here
# runs in CI; no code path requires a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
bash scripts/setup.sh > "$OUT/setup.log" 2>&1 || { echo "setup failed: see $OUT/setup.log"; exit 1; }
PY=.venv/bin/python
$PY - <<'PY' 2>&1 | tee "$OUT/device.txt"
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
print("bf16 supported:", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
PY
run() {  # name, then rlsuite train arguments
    local name=$1; shift
    local start=$(date +%s.%N)
    .venv/bin/rlsuite train "$@" --run-dir "$OUT/$name" --overwrite --quiet > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: exit $rc, $(echo "$(date +%s.%N) - $start" | bc) s; $(tail -2 "$OUT/$name.log" | head -1)"
    $PY -c "
import sys; from rlsuite import open_run
r = open_run('$OUT/$name'); m = r.metrics
col = 'charts/optimizer_steps_per_second'
print('   ', r.summary(), '| steps/s', [round(float(x), 2) for x in m[col]][-3:] if col in m else '-')
" 2>/dev/null
}
run sft-cuda-bf16 sft --task arithmetic --total-steps 50 --eval-every 25 --device cuda --dtype auto
run grpo-cuda-bf16 grpo --task arithmetic --total-steps 20 --eval-every 10 --device cuda --dtype auto
run grpo-cuda-fp32 grpo --task arithmetic --total-steps 20 --eval-every 10 --device cuda --dtype float32
run grpo-cuda-lora grpo --task arithmetic --total-steps 10 --eval-every 0 --device cuda --lora-r 8 --beta 0.04
# Issue 8's algorithms: every model (policy, reference, value, reward, teacher) on the GPU.
run rm-cuda-bf16 reward_model --task arithmetic --total-steps 20 --eval-every 0 --eval-size 64 --device cuda
run dpo-cuda-bf16 dpo --task arithmetic --total-steps 20 --eval-every 0 --eval-size 64 --device cuda
run dpo-cuda-lora dpo --task arithmetic --total-steps 10 --eval-every 0 --eval-size 64 --device cuda --lora-r 8
run kto-cuda-bf16 kto --task arithmetic --total-steps 10 --eval-every 0 --eval-size 64 --device cuda
run ppo-rlhf-cuda ppo_rlhf --task arithmetic --reward-model "$OUT/rm-cuda-bf16" --total-steps 8 --eval-every 0 --eval-size 64 --device cuda
run rejection-cuda rejection_sampling --task arithmetic --total-steps 64 --device cuda
run distill-cuda distill --task arithmetic --total-steps 20 --eval-every 0 --eval-size 64 --device cuda
# Issue 9's deep RL algorithms on CUDA (replay and rollouts on the GPU, env actions back on the host).
run sac-cuda sac --env Pendulum-v1 --total-steps 600 --learning-starts 100 --eval-every 300 --device cuda
run td3-cuda td3 --env Pendulum-v1 --total-steps 600 --learning-starts 100 --eval-every 300 --device cuda
run trpo-cuda trpo --env Pendulum-v1 --total-steps 4096 --eval-every 2048 --device cuda
run mappo-cuda mappo --env mpe2/simple_spread_v3 --total-steps 3200 --eval-every 1600 --eval-episodes 4 --device cuda
run a2c-cuda a2c --env CartPole-v1 --total-steps 4000 --eval-every 2000 --device cuda
run reinforce-cuda reinforce --env CartPole-v1 --total-steps 4000 --eval-every 2000 --device cuda
# Issue 11: a CUDA learner with CPU Ray workers (the weights go to the workers as CPU tensors), and Ape-X.
run ppo-ray-cuda ppo --env CartPole-v1 --total-steps 8192 --eval-every 4096 --device cuda --backend ray --num-workers 2
run dqn-apex-cuda dqn --env CartPole-v1 --total-steps 4096 --eval-every 2048 --device cuda --backend ray --num-workers 2 --num-envs 2
# One GPU: the launcher with one process (a single process is rlsuite's SINGLE path; two ranks
# cannot share a GPU under NCCL). With two GPUs or more: GRPO under each shipped configuration,
# in bf16 as the files ask (the CPU tests run them on gloo).
echo "== sft-accelerate-1gpu"
.venv/bin/accelerate launch --num_processes 1 --main_process_port 0 -m rlsuite.cli train sft --task arithmetic --total-steps 20 \
    --eval-every 0 --device cuda --run-dir "$OUT/sft-accelerate-1gpu" --overwrite || echo "sft-accelerate-1gpu FAILED"
if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
    for config in ddp fsdp deepspeed_zero2 deepspeed_zero3; do
        echo "== grpo-$config"
        .venv/bin/accelerate launch --config_file "docs/accelerate/$config.yaml" --num_processes 2 -m rlsuite.cli train grpo \
            --task arithmetic --model builtin-sft --total-steps 4 --eval-every 2 --dtype float32 --generator torch \
            --run-dir "$OUT/grpo-$config" --overwrite || echo "grpo-$config FAILED"
    done
else
    echo "one GPU: the FSDP and DeepSpeed configurations need two (not run)"
fi
if .venv/bin/python -m pip install --quiet vllm > "$OUT/vllm-install.log" 2>&1; then
    run grpo-vllm grpo --task arithmetic --total-steps 10 --eval-every 0 --device cuda --generator vllm
else
    echo "vllm did not install: see $OUT/vllm-install.log"
fi
