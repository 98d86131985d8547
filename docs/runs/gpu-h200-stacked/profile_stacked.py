# The 4th call of the 2026-12-04 window, verbatim (run as `PYTHONPATH=src python3 - < this file` from the repo root,
# on the H200, output in profile_stacked.txt): one stacked training of 6 pruned Conv-2s (plus the spare), 20 steps,
# batch 60, Adam, random CIFAR-shaped data, after one warm-up training of the same shape, under torch.profiler.
import sys, time, torch
sys.path.insert(0,'benchmarks')
from stacked import get_data, pruned_networks
from lottery_ticket.config import TrainConfig
from lottery_ticket.training.stacked import StackedTrainer
from torch.profiler import profile, ProfilerActivity
data,_=get_data('cifar10','/nonexistent')
for steps in (20,):
  cfg=TrainConfig(optimizer='adam',lr=1e-3,batch_size=60,budget=f'{steps}it',sparse_training='off')
  m,k=pruned_networks('conv2',data,6,'cuda')
  t=StackedTrainer(cfg,data,'cuda'); t.train(m,k,list(range(6))); torch.cuda.synchronize()
  m,k=pruned_networks('conv2',data,6,'cuda')
  t=StackedTrainer(cfg,data,'cuda')
  with profile(activities=[ProfilerActivity.CPU,ProfilerActivity.CUDA]) as p:
    s=time.perf_counter(); t.train(m,k,list(range(6))); torch.cuda.synchronize(); e=time.perf_counter()-s
  print('K=6 conv2 20 steps', e, 's', e/20*1e3,'ms/step')
  print(p.key_averages().table(sort_by='self_cpu_time_total', row_limit=30))
  print(p.key_averages().table(sort_by='cuda_time_total', row_limit=12))
