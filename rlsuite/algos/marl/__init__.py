"""Multi-agent algorithms on PettingZoo parallel envs (rlsuite.envs.multiagent)."""
