#!/bin/bash
# The machine a GPU run was made on, for its hardware.txt: GPU, driver, memory, torch and CUDA versions, CPU cores.
#     bash scripts/hardware.sh [PYTHON] > OUT/hardware.txt
PY=${1:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
$PY -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.version.cuda, platform.processor())"
nproc
