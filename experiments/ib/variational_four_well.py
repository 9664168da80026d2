"""Neural (variational) information bottleneck on the four-well Langevin system (issue 8, neural IB).

Compress x_t into a 1-D stochastic latent h that predicts the bin of x_{t+τ} (τ = 3 transition steps of
99 × 0.002): minimise E[−log p(x_{t+τ} | h)] + KL(q(h|x_t) ‖ N(0,1)) / β. At high compression (small β)
the latent should follow the slowest transfer-operator eigenfunction (left vs right pair of wells).

  python -m tools.train --config experiments/ib/variational_four_well.py:tiny --workdir /tmp/zoo/vib
  python -m tools.eval  --config experiments/ib/variational_four_well.py:tiny --workdir /tmp/zoo/vib

Arguments: tiny, beta=<float>, sigma=<float>, steps=<int>.
Expected: eval/eigenfunction/abs_corr_slowest_eigenfunction > 0.95 (claim of the issue); measured value
and command in zoo/ib/README.md.
"""
import ml_collections as mlc

from experiments import args as config_args


def get_config(arg=None):
  arg = config_args.parse(arg, tiny=False, beta=2.0, sigma=0.3, steps=0)
  c = mlc.ConfigDict()
  c.task = "ib.variational"
  c.seed = 0
  c.beta = arg.beta
  c.system = dict(mu=3.0, sigma=arg.sigma, bins=100 if arg.tiny else 500, lag_transitions=3)
  c.data = dict(num_pairs=20_000 if arg.tiny else 200_000)
  c.batch_size = 256
  c.total_steps = arg.steps or (600 if arg.tiny else 5000)
  c.model = dict(latent_dim=1, hidden=32 if arg.tiny else 64, num_layers=2)
  c.optimizer = dict(name="adamw", learning_rate=3e-3, warmup_steps=50, decay="cosine",
                     end_learning_rate_factor=0.1, weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8,
                     grad_clip_norm=1.0, flatten=False)
  c.ema_decay = 0.0
  c.mesh = dict(data=-1, fsdp=1, tensor=1, context=1)
  c.axis_rules = [("batch", ("data", "fsdp"))]
  c.log_every_steps = 100
  c.eval_every_steps = c.total_steps
  c.evals = dict(eigenfunction=dict())
  c.checkpoint = dict(every_steps=c.total_steps, keep=2, async_save=True)
  c.profile_every_steps = 0
  return c
