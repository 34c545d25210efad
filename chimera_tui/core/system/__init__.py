"""Machine readings: NVML GPUs, the host monitor, the environment snapshot."""
